//! The engine against the real default model (Gemma 3 270M GGUF): generation,
//! determinism, prefix cache, continuous batching, queue limits, cancellation.
//! Needs BASALT_TEST_MODEL (scripts/test sets it after `basalt models pull`).

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "helpers of a test file fail loudly"
)]
use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use basalt_engine::{Engine, EngineConfig, EngineError, Job, SamplingParams};
use basalt_types::{ChatRequest, InferenceConfig, Message, Role, StopReason, StreamEvent};

fn model_path() -> Option<std::path::PathBuf> {
    match std::env::var_os("BASALT_TEST_MODEL") {
        Some(p) => Some(p.into()),
        None => {
            eprintln!("BASALT_TEST_MODEL is not set: skipping real-model engine tests (scripts/test sets it)");
            None
        }
    }
}

fn config(parallel: u32, max_queue: u32) -> Option<EngineConfig> {
    Some(EngineConfig {
        model_path: model_path()?,
        chat_template: Some("gemma".into()),
        context_window: 2048,
        threads: 2,
        parallel,
        max_queue,
        batch_tokens: 512,
        default_top_k: 40,
        output_kernel: true,
        verify_output_kernel: false,
    })
}

/// One shared engine for the tests that only look at their own outputs. Tests
/// that read the engine's counters load their own, since tests run in parallel.
fn engine() -> Option<&'static Engine> {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    let cfg = config(4, 16)?;
    Some(ENGINE.get_or_init(|| Engine::load(cfg).unwrap()))
}

fn request(text: &str) -> ChatRequest {
    ChatRequest {
        model_id: "m".into(),
        system: vec![],
        messages: vec![Message::text(Role::User, text)],
        raw_prompt: None,
        guardrail: None,
        inference: InferenceConfig::default(),
    }
}

struct Outcome {
    text: String,
    reason: StopReason,
    output_tokens: u32,
    input_tokens: u32,
    cached: u32,
}

fn submit(
    engine: &Engine,
    text: &str,
    max_tokens: u32,
    stops: Vec<String>,
) -> tokio::sync::mpsc::Receiver<basalt_types::Result<StreamEvent>> {
    let prompt = engine.prompt_tokens(&request(text)).unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(max_tokens as usize + 8);
    engine
        .submit(Job {
            prompt,
            max_tokens,
            sampling: SamplingParams::greedy(),
            stop_sequences: stops,
            events: tx,
            score: None,
        })
        .unwrap();
    rx
}

fn collect(mut rx: tokio::sync::mpsc::Receiver<basalt_types::Result<StreamEvent>>) -> Outcome {
    let mut text = String::new();
    let mut cached = 0;
    loop {
        match rx
            .blocking_recv()
            .expect("engine closed the stream")
            .unwrap()
        {
            StreamEvent::Start { cached_tokens, .. } => cached = cached_tokens,
            StreamEvent::TextDelta(t) => text.push_str(&t),
            StreamEvent::Guardrail(_) => {}
            StreamEvent::Stop { reason, usage, .. } => {
                return Outcome {
                    text,
                    reason,
                    output_tokens: usage.output_tokens,
                    input_tokens: usage.input_tokens,
                    cached,
                }
            }
        }
    }
}

fn wait_idle(engine: &Engine) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while engine.stats().active_sequences.load(Ordering::Relaxed) != 0 {
        assert!(Instant::now() < deadline, "sequences stayed active");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_scoring_job_gives_the_log_probabilities_greedy_decoding_follows() {
    let Some(engine) = engine() else { return };
    let text = "Count: 1, 2, 3, 4,";
    let first = collect(submit(engine, text, 1, vec![])).text;
    let candidates = engine.word_tokens(&[first.trim(), "zebra", "Paris"]);
    let greedy = candidates
        .iter()
        .position(|&t| engine.token_text(t) == first)
        .expect("the greedy token is among the candidates");
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let (reply, answer) = tokio::sync::oneshot::channel();
    engine
        .submit(Job {
            prompt: engine.prompt_tokens(&request(text)).unwrap(),
            max_tokens: 1,
            sampling: SamplingParams::greedy(),
            stop_sequences: vec![],
            events: tx,
            score: Some(basalt_engine::Score {
                candidates: candidates.clone(),
                reply,
            }),
        })
        .unwrap();
    let logprobs = answer.blocking_recv().expect("the scheduler answers");
    assert_eq!(logprobs.len(), candidates.len());
    assert!(logprobs.iter().all(|l| l.is_finite() && *l <= 0.0));
    assert!(logprobs.iter().map(|l| l.exp()).sum::<f32>() <= 1.0 + 1e-4);
    let best = (0..logprobs.len())
        .max_by(|&a, &b| logprobs[a].total_cmp(&logprobs[b]))
        .unwrap();
    assert_eq!(best, greedy, "{logprobs:?}");
    // It ends like a generation with no output tokens, and frees its slot.
    let done = collect(rx);
    assert_eq!(done.output_tokens, 0);
    assert!(done.text.is_empty());
}

#[test]
fn greedy_generation_is_deterministic_and_bounded() {
    let Some(engine) = engine() else { return };
    let a = collect(submit(engine, "Count: 1, 2, 3, 4,", 12, vec![]));
    let b = collect(submit(engine, "Count: 1, 2, 3, 4,", 12, vec![]));
    assert_eq!(a.text, b.text);
    assert!(a.output_tokens >= 1 && a.output_tokens <= 12);
    if a.reason == StopReason::MaxTokens {
        assert_eq!(a.output_tokens, 12);
    }
    let expected_input = engine
        .prompt_tokens(&request("Count: 1, 2, 3, 4,"))
        .unwrap()
        .len() as u32;
    assert_eq!(a.input_tokens, expected_input);
    assert!(b.cached > 0, "the repeated prompt reused its cached prefix");
}

#[test]
fn shared_prefix_is_reused_and_gives_the_same_answer() {
    let Some(engine) = engine() else { return };
    let long: String = (0..150).map(|i| format!("item {i}; ")).collect();
    let cold = collect(submit(engine, &format!("{long}\nSay A."), 6, vec![]));
    let warm = collect(submit(engine, &format!("{long}\nSay A."), 6, vec![]));
    let other = collect(submit(engine, &format!("{long}\nSay B."), 6, vec![]));
    assert_eq!(cold.text, warm.text);
    assert!(warm.cached as usize >= warm.input_tokens as usize - 1);
    assert!(
        other.cached > 400,
        "only {} prefix tokens reused",
        other.cached
    );
}

#[test]
fn concurrent_requests_decode_in_shared_batches() {
    let Some(cfg) = config(4, 16) else { return };
    let engine = &Engine::load(cfg).unwrap();
    let steps_before = engine.stats().decode_steps.load(Ordering::Relaxed);
    let receivers: Vec<_> = (0..4)
        .map(|i| submit(engine, &format!("List {i}: a, b, c,"), 16, vec![]))
        .collect();
    let outcomes: Vec<_> = receivers.into_iter().map(collect).collect();
    let tokens: u32 = outcomes.iter().map(|o| o.output_tokens).sum();
    let steps = engine.stats().decode_steps.load(Ordering::Relaxed) - steps_before;
    assert!(outcomes.iter().all(|o| o.output_tokens > 0));
    assert!(
        steps < u64::from(tokens),
        "{steps} steps for {tokens} tokens: no batching"
    );
}

#[test]
fn stop_sequences_end_generation_without_the_stop_text() {
    let Some(engine) = engine() else { return };
    let free = collect(submit(engine, "Count: 1, 2, 3, 4,", 16, vec![]));
    let Some(cut) = free.text.char_indices().nth(3).map(|(i, _)| i) else {
        return;
    };
    let stop = free.text[cut..].chars().take(2).collect::<String>();
    let stopped = collect(submit(engine, "Count: 1, 2, 3, 4,", 16, vec![stop.clone()]));
    assert_eq!(stopped.reason, StopReason::StopSequence);
    assert!(!stopped.text.contains(&stop));
    assert!(free.text.starts_with(&stopped.text));
}

#[test]
fn a_dropped_receiver_frees_its_sequence() {
    let Some(cfg) = config(2, 16) else { return };
    let engine = &Engine::load(cfg).unwrap();
    let mut rx = submit(
        engine,
        "Write a very long story about a river.",
        2000,
        vec![],
    );
    let mut seen = 0;
    while seen < 3 {
        if let Some(Ok(StreamEvent::TextDelta(_))) = rx.blocking_recv() {
            seen += 1;
        }
    }
    drop(rx);
    wait_idle(engine);
}

#[test]
fn a_full_queue_is_refused_at_once() {
    let Some(cfg) = config(1, 1) else { return };
    let engine = Engine::load(cfg).unwrap();
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..6 {
        let prompt = engine
            .prompt_tokens(&request("Tell me a long story."))
            .unwrap();
        let (tx, rx) = tokio::sync::mpsc::channel(600);
        let job = Job {
            prompt,
            max_tokens: 500,
            sampling: SamplingParams::greedy(),
            stop_sequences: vec![],
            events: tx,
            score: None,
        };
        match engine.submit(job) {
            Ok(()) => held.push(rx),
            Err(EngineError::QueueFull(1)) => refused += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(refused >= 1, "a queue of 1 accepted everything");
    drop(held);
    wait_idle(&engine);
}

#[test]
fn simultaneous_requests_share_a_prefix_still_being_computed() {
    let Some(cfg) = config(4, 16) else { return };
    let engine = Engine::load(cfg).unwrap();
    let system: String = (0..120).map(|i| format!("rule {i}: be kind; ")).collect();
    let before = engine
        .stats()
        .prompt_tokens_evaluated
        .load(Ordering::Relaxed);
    let receivers: Vec<_> = (0..4)
        .map(|i| submit(&engine, &format!("{system}\nQuestion {i}?"), 4, vec![]))
        .collect();
    let outcomes: Vec<_> = receivers.into_iter().map(collect).collect();
    let evaluated = engine
        .stats()
        .prompt_tokens_evaluated
        .load(Ordering::Relaxed)
        - before;
    let total_input: u32 = outcomes.iter().map(|o| o.input_tokens).sum();
    let shared: u32 = outcomes.iter().map(|o| o.cached).sum();
    assert!(
        outcomes.iter().skip(1).all(|o| o.cached > 300),
        "followers reused {:?}",
        outcomes.iter().map(|o| o.cached).collect::<Vec<_>>()
    );
    assert_eq!(
        evaluated,
        u64::from(total_input - shared),
        "every prompt token is computed once"
    );
    // A follower answers exactly as the same prompt does on its own later.
    let alone = collect(submit(
        &engine,
        &format!("{system}\nQuestion 3?"),
        4,
        vec![],
    ));
    assert_eq!(alone.text, outcomes[3].text);
}

#[test]
fn a_repeated_prompt_gets_the_same_greedy_answer_cached_or_not() {
    let Some(cfg) = config(2, 16) else { return };
    let engine = &Engine::load(cfg).unwrap();
    for i in 0..40 {
        let prompt = format!("Note {i}: the weather in city number {i} is");
        let cold = collect(submit(engine, &prompt, 16, vec![]));
        let warm = collect(submit(engine, &prompt, 16, vec![]));
        // The first run may reuse a few template tokens from the previous prompt.
        assert!(cold.cached < 10, "prompt {i} reused {} tokens", cold.cached);
        assert_eq!(
            warm.cached,
            warm.input_tokens - 1,
            "prompt {i} did not reuse its prefix"
        );
        assert_eq!(cold.text, warm.text, "prompt {i}");
        assert_eq!(cold.output_tokens, warm.output_tokens, "prompt {i}");
    }
}

/// basalt's output kernel (`output_head`, used for steps that sample two or
/// more positions) picks the same greedy tokens as llama.cpp's own projection
/// of the same hidden states: with verification on, the engine runs both for
/// every kernel step and counts disagreements.
#[test]
fn the_output_kernel_picks_the_tokens_llama_cpps_projection_picks() {
    let Some(cfg) = config(4, 16) else { return };
    #[cfg(target_arch = "x86_64")]
    let supported = std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512dq")
        && std::arch::is_x86_feature_detected!("avx512vl")
        && std::arch::is_x86_feature_detected!("avx512vnni");
    #[cfg(not(target_arch = "x86_64"))]
    let supported = false;
    let engine = &Engine::load(EngineConfig {
        verify_output_kernel: true,
        ..cfg
    })
    .unwrap();
    let prompts = [
        "List three rivers in Europe.",
        "Name a colour and a fruit.",
        "Count: 1, 2, 3,",
        "Say hello in French.",
    ];
    let receivers: Vec<_> = prompts
        .iter()
        .map(|p| submit(engine, p, 24, vec![]))
        .collect();
    let outcomes: Vec<_> = receivers.into_iter().map(collect).collect();
    assert!(outcomes.iter().all(|o| o.output_tokens > 0));
    let stats = engine.stats();
    let steps = stats.output_kernel_steps.load(Ordering::Relaxed);
    if supported {
        assert!(
            steps > 0,
            "the kernel was not used on a CPU with AVX-512 VNNI"
        );
    }
    assert_eq!(stats.output_kernel_disagreements.load(Ordering::Relaxed), 0);
}
