//! ApplyGuardrail latency without HTTP: a guardrail with every policy (all six
//! content filters, three denied topics, custom words + PROFANITY, all 31 PII
//! types, two regexes), applied to a ~1 KB text; then again with contextual
//! grounding. Prints p50 / p99 / max in microseconds.
//!
//! `cargo run --release -p basalt-guardrails --example latency -- MODEL.gguf [ITERATIONS]`

use std::sync::Arc;
use std::time::Instant;

use basalt_engine::EmbedderConfig;
use basalt_guardrails::pii::PII_TYPES;
use basalt_guardrails::policy::{
    ContentFilter, GroundingFilter, PiiEntity, RegexEntity, Strength, Topic, Word,
};
use basalt_guardrails::semantic::CATEGORIES;
use basalt_guardrails::{Action, Guardrails, NewGuardrail, Policy, Sides};
use basalt_providers::{LocalEmbedder, Provider};
use basalt_types::guardrail::{GuardSource, GuardText, Qualifier};

/// About 1 KB of support-chat text with a little PII in it.
const TEXT: &str = "Hello, I ordered a pair of hiking boots last week (order ORD-482913) and \
they arrived with a broken lace hook on the left boot. I'd like to exchange them for the same \
model in size 43 if you have it in stock, otherwise a refund to my card is fine. You can reach \
me at jordan.miller@example.org or on (415) 555-0172 in the afternoons. I also noticed that \
the tracking page showed the parcel as delivered two days before it actually arrived, which \
was confusing. Could you tell me whether I need to print a return label myself, or will one \
be included in the replacement box? The boots themselves are comfortable and I would like to \
keep using this model for my trip to the mountains next month, so a quick exchange would be \
ideal. One more thing: the confirmation email said the boots were waterproof, but the \
product page now says water-resistant, so please let me know which one is right before I \
take them out in the rain. Thanks for your help, and have a nice day. Best regards, Jordan.";

fn sides() -> Sides {
    Sides::both(Action::Block)
}

fn policy(grounding: bool) -> Policy {
    let topic = |name: &str, definition: &str, examples: &[&str]| Topic {
        name: name.into(),
        definition: definition.into(),
        examples: examples.iter().map(|e| (*e).to_string()).collect(),
        sides: sides(),
    };
    Policy {
        blocked_input_messaging: "blocked".into(),
        blocked_outputs_messaging: "blocked".into(),
        content: Some(
            CATEGORIES
                .iter()
                .map(|c| ContentFilter {
                    category: (*c).into(),
                    input_strength: Strength::High,
                    output_strength: if *c == "PROMPT_ATTACK" {
                        Strength::None
                    } else {
                        Strength::High
                    },
                    sides: sides(),
                })
                .collect(),
        ),
        topics: Some(vec![
            topic(
                "Investment advice",
                "Recommendations about which stocks, funds or cryptocurrencies to buy or sell.",
                &[
                    "Which stocks should I buy?",
                    "Is bitcoin a good investment?",
                ],
            ),
            topic(
                "Medical diagnosis",
                "Diagnosing illnesses or recommending treatments or medication doses.",
                &[
                    "What disease do I have?",
                    "How much ibuprofen should I take?",
                ],
            ),
            topic(
                "Politics",
                "Opinions about political parties, candidates or elections.",
                &[
                    "Who should I vote for?",
                    "Is the president doing a good job?",
                ],
            ),
        ]),
        words: Some(
            ["Competitor X", "ShopRival", "cheapest in town"]
                .iter()
                .map(|w| Word {
                    text: (*w).into(),
                    sides: sides(),
                })
                .collect(),
        ),
        managed_words: Some(vec![("PROFANITY".into(), sides())]),
        pii: Some(
            PII_TYPES
                .iter()
                .map(|t| PiiEntity {
                    kind: (*t).into(),
                    action: Action::Anonymize,
                    sides: Sides::both(Action::Anonymize),
                })
                .collect(),
        ),
        regexes: Some(vec![
            RegexEntity {
                name: "ORDER".into(),
                description: None,
                pattern: r"ORD-\d{6}".into(),
                action: Action::Anonymize,
                sides: sides(),
            },
            RegexEntity {
                name: "TICKET".into(),
                description: None,
                pattern: r"TCK-[A-Z]{3}\d{4}".into(),
                action: Action::Block,
                sides: sides(),
            },
        ]),
        grounding: grounding.then(|| {
            vec![
                GroundingFilter {
                    kind: "GROUNDING".into(),
                    threshold: 0.5,
                    action: Action::Block,
                    enabled: true,
                },
                GroundingFilter {
                    kind: "RELEVANCE".into(),
                    threshold: 0.3,
                    action: Action::Block,
                    enabled: true,
                },
            ]
        }),
        ..Policy::default()
    }
}

fn percentile(sorted: &[u128], p: f64) -> u128 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let model = args
        .get(1)
        .ok_or("usage: latency MODEL.gguf [ITERATIONS]")?;
    let iterations: usize = args.get(2).map_or(Ok(2000), |s| s.parse())?;
    let provider: Arc<dyn Provider> = Arc::new(LocalEmbedder::load(
        "e",
        EmbedderConfig {
            model_path: model.into(),
            max_input_tokens: 256,
            threads: 2,
            max_queue: 64,
            batch_tokens: 4096,
            batch_sequences: 32,
            express_lane: true,
            encoder_kernel: true,
        },
    ));
    let dir = std::env::temp_dir().join(format!("basalt-latency-{}", std::process::id()));
    let store = basalt_store::Store::open(&dir)?;
    let guardrails = Guardrails::new(store, Some(Arc::clone(&provider)));
    guardrails.warm().await?;
    println!("text: {} bytes", TEXT.len());
    for grounding in [false, true] {
        let name = if grounding {
            "with-grounding"
        } else {
            "all-but-grounding"
        };
        let g = guardrails.create(NewGuardrail {
            name: name.into(),
            description: None,
            policy: policy(grounding),
            kms_key_id: None,
            tags: Vec::new(),
        })?;
        let mut blocks = vec![GuardText::plain(TEXT)];
        let source = if grounding {
            blocks.push(GuardText {
                text: "Exchanges are free within 30 days. Return labels are included in every replacement box. Refunds go back to the original card within 5 business days.".into(),
                qualifiers: vec![Qualifier::GroundingSource],
            });
            blocks.push(GuardText {
                text: "Do I need to print a return label for an exchange?".into(),
                qualifiers: vec![Qualifier::Query],
            });
            GuardSource::Output
        } else {
            GuardSource::Input
        };
        // Warm-up compiles the version and fills caches.
        let first = guardrails.apply(&g.id, "DRAFT", source, &blocks).await?;
        let mut times = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            let t = Instant::now();
            let out = guardrails.apply(&g.id, "DRAFT", source, &blocks).await?;
            times.push(t.elapsed().as_micros());
            std::hint::black_box(out);
        }
        times.sort_unstable();
        println!(
            "{name:<18} n={iterations} p50={}us p99={}us max={}us  (intervened={}, pii found={})",
            percentile(&times, 0.50),
            percentile(&times, 0.99),
            times[times.len() - 1],
            first.intervened,
            first.assessment.pii.len() + first.assessment.regexes.len()
        );
    }
    // Where the time goes, per check, on the same text.
    let statics = provider.static_embeddings().await?;
    let content = basalt_guardrails::semantic::ContentModel::new(&statics);
    let words = basalt_guardrails::words::WordMatcher::new(
        basalt_guardrails::words::PROFANITY.iter().copied(),
    );
    let time = |name: &str, f: &mut dyn FnMut()| {
        let t = Instant::now();
        for _ in 0..200 {
            f();
        }
        println!("  {name:<28} {:>6}us", t.elapsed().as_micros() / 200);
    };
    time("pii (31 types)", &mut || {
        std::hint::black_box(basalt_guardrails::pii::find(TEXT, None));
    });
    time("words (PROFANITY)", &mut || {
        std::hint::black_box(words.find(TEXT));
    });
    time("embed sentences", &mut || {
        std::hint::black_box(basalt_guardrails::semantic::Embedded::new(&statics, TEXT));
    });
    let embedded = basalt_guardrails::semantic::Embedded::new(&statics, TEXT);
    time("content classifier", &mut || {
        std::hint::black_box(content.classify(&embedded, TEXT));
    });
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
