//! The embedder against the real all-MiniLM-L6-v2 (converted to GGUF by
//! `basalt models pull`): reference values, batching, truncation, queue limits,
//! short requests beside long ones.
//! Needs BASALT_TEST_EMBED_MODEL (scripts/test sets it).

#![expect(clippy::unwrap_used, reason = "helpers of a test file fail loudly")]
use std::sync::atomic::Ordering;
use std::sync::OnceLock;

use basalt_engine::{normalize, EmbedResult, Embedder, EmbedderConfig, EngineError};
use llama_cpp_2::token::LlamaToken;
use tokio::sync::oneshot::error::TryRecvError;
use tokio::sync::oneshot::Receiver;

fn config(max_queue: u32) -> Option<EmbedderConfig> {
    let Some(path) = std::env::var_os("BASALT_TEST_EMBED_MODEL") else {
        eprintln!("BASALT_TEST_EMBED_MODEL is not set: skipping embedding model tests (scripts/test sets it)");
        return None;
    };
    Some(EmbedderConfig {
        model_path: path.into(),
        max_input_tokens: 256,
        threads: 2,
        max_queue,
        batch_tokens: 4096,
        batch_sequences: 32,
        express_lane: true,
        encoder_kernel: true,
    })
}

fn embedder() -> Option<&'static Embedder> {
    static E: OnceLock<Embedder> = OnceLock::new();
    let cfg = config(16)?;
    Some(E.get_or_init(|| Embedder::load(cfg).unwrap()))
}

fn embed(e: &Embedder, texts: &[&str]) -> Vec<Vec<f32>> {
    let tokens = texts.iter().map(|t| e.tokenize(t)).collect();
    let rx = e.submit(tokens).unwrap();
    let mut v = rx.blocking_recv().unwrap().unwrap();
    v.iter_mut().for_each(|x| normalize(x));
    v
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Full reference vectors, computed in numpy from the model's safetensors
/// (`fixtures/minilm_reference.py`). An unquantized conversion must match them
/// component by component; a Q8_0 one (the default) to 0.999 cosine.
#[test]
fn embeddings_match_the_reference_forward_pass() {
    let Some(e) = embedder() else { return };
    assert_eq!(e.dimension(), 384);
    // [CLS] hello world [SEP]
    assert_eq!(e.tokenize("hello world").len(), 4);
    assert_eq!(e.count_tokens("hello world"), 2);
    let references: Vec<serde_json::Value> =
        serde_json::from_str(include_str!("fixtures/minilm_reference.json")).unwrap();
    let file_type = e
        .model()
        .meta_val_str("general.file_type")
        .unwrap_or_default();
    let texts: Vec<&str> = references
        .iter()
        .map(|r| r["text"].as_str().unwrap())
        .collect();
    let got = embed(e, &texts);
    for ((r, text), v) in references.iter().zip(&texts).zip(&got) {
        assert_eq!(
            e.tokenize(text).len() as u64,
            r["tokens"].as_u64().unwrap(),
            "{text}"
        );
        let want: Vec<f32> = serde_json::from_value(r["embedding"].clone()).unwrap();
        let worst = v
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        let cos = cosine(v, &want);
        match file_type.as_str() {
            // Q8_0: the layers' matrices are 8-bit.
            "7" => assert!(cos > 0.999, "{text}: cosine {cos}"),
            // Unquantized: flash attention's f16 keys and values are the only
            // loss.
            _ => assert!(
                worst < 5e-4 && cos > 0.99999,
                "{text}: a component is {worst} off, cosine {cos}"
            ),
        }
    }
}

#[test]
fn batched_inputs_embed_as_they_do_alone_and_similar_texts_are_close() {
    let Some(e) = embedder() else { return };
    let texts = [
        "The cat sat on the mat.",
        "A kitten was sitting on the rug.",
        "Quarterly revenue grew by twelve percent.",
    ];
    let together = embed(e, &texts);
    for (i, t) in texts.iter().enumerate() {
        let alone = &embed(e, &[t])[0];
        assert!(
            cosine(alone, &together[i]) > 0.9999,
            "input {i} differs in a batch"
        );
    }
    assert!(cosine(&together[0], &together[1]) > cosine(&together[0], &together[2]) + 0.3);
}

#[test]
fn long_inputs_are_truncated_to_the_model_limit_keeping_sep() {
    let Some(e) = embedder() else { return };
    let long = "word ".repeat(1000);
    let tokens = e.tokenize(&long);
    assert_eq!(tokens.len(), 256);
    assert_eq!(
        tokens[255],
        e.tokenize("x")[2],
        "the last token stays [SEP]"
    );
    assert_eq!(e.count_tokens(&long), 1000);
    // Many inputs of mixed length over several batches come back in order.
    let mut texts: Vec<String> = (0..70).map(|i| format!("sentence number {i}")).collect();
    texts[35] = long;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let all = embed(e, &refs);
    assert_eq!(all.len(), 70);
    let again = &embed(e, &[refs[50]])[0];
    // Neighbours ("sentence number 49", "… 51") are about 0.85 alike; a Q8_0
    // model's result moves by about 1e-4 with the shape of the batch.
    assert!(cosine(again, &all[50]) > 0.999);
}

#[test]
fn a_full_queue_is_refused_at_once() {
    let Some(cfg) = config(1) else { return };
    let e = Embedder::load(cfg).unwrap();
    let big: Vec<_> = (0..64)
        .map(|i| e.tokenize(&format!("text {i} ").repeat(20)))
        .collect();
    let mut receivers = Vec::new();
    let mut refused = false;
    for _ in 0..8 {
        match e.submit(big.clone()) {
            Ok(rx) => receivers.push(rx),
            Err(EngineError::QueueFull(1)) => refused = true,
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert!(
        refused,
        "eight large jobs against a queue of one must be throttled"
    );
    for rx in receivers {
        assert_eq!(rx.blocking_recv().unwrap().unwrap().len(), 64);
    }
}

/// An embedder whose passes hold `batch_tokens` tokens, with or without its
/// express lane, and an ingestion-sized request for it: 64 chunks of about
/// 250 tokens.
fn with_a_long_request(
    batch_tokens: u32,
    express_lane: bool,
) -> Option<(Embedder, Vec<Vec<LlamaToken>>)> {
    let e = Embedder::load(EmbedderConfig {
        batch_tokens,
        express_lane,
        ..config(16)?
    })
    .unwrap();
    let long = (0..64)
        .map(|i| e.tokenize(&format!("chunk {i} of a document ").repeat(50)))
        .collect();
    Some((e, long))
}

/// Asserts that a request has no answer yet, then waits for its 64 vectors.
fn finishes_later(mut rx: Receiver<EmbedResult>) {
    assert!(
        matches!(rx.try_recv(), Err(TryRecvError::Empty)),
        "the long request was over before the short one"
    );
    assert_eq!(rx.blocking_recv().unwrap().unwrap().len(), 64);
}

#[test]
fn a_short_request_is_answered_before_a_long_one_queued_ahead_of_it() {
    // Without the express lane: the main worker's pass planning alone.
    let Some((e, long)) = with_a_long_request(512, false) else {
        return;
    };
    let long_rx = e.submit(long).unwrap();
    let short_rx = e.submit(vec![e.tokenize("a lone query")]).unwrap();
    assert_eq!(short_rx.blocking_recv().unwrap().unwrap().len(), 1);
    assert_eq!(e.stats().express.load(Ordering::Relaxed), 0);
    finishes_later(long_rx);
}

#[test]
fn a_short_request_during_a_long_pass_takes_the_express_lane() {
    let Some((e, long)) = with_a_long_request(256, true) else {
        return;
    };
    let query = e.tokenize("a lone query");
    let ask = || {
        let reply = e.submit(vec![query.clone()]).unwrap().blocking_recv();
        let mut v = reply.unwrap().unwrap().pop().unwrap();
        normalize(&mut v);
        v
    };
    let idle = ask();
    assert_eq!(e.stats().express.load(Ordering::Relaxed), 0);
    let long_rx = e.submit(long).unwrap();
    while e.stats().batches.load(Ordering::Relaxed) < 2 {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    // The main worker now has most of the long request in hand, so a short
    // request goes to the express lane (retried only in case it raced the
    // worker's bookkeeping).
    for _ in 0..20 {
        let v = ask();
        assert!(cosine(&v, &idle) > 0.9999, "the lanes embed alike");
        if e.stats().express.load(Ordering::Relaxed) > 0 {
            break;
        }
    }
    assert!(e.stats().express.load(Ordering::Relaxed) > 0);
    finishes_later(long_rx);
}

/// basalt's own encoder (inputs of up to `KERNEL_INPUT_TOKENS` tokens) against
/// llama.cpp's forward pass and the numpy reference: both are Q8_0
/// approximations of the same model, so each is close to the reference and
/// to the other, and the encoder is the one that ran.
#[test]
fn the_own_encoder_embeds_as_llama_cpp_does() {
    let Some(cfg) = config(16) else { return };
    // Room for an input longer than the encoder takes.
    let cfg = EmbedderConfig {
        max_input_tokens: 512,
        batch_tokens: 512,
        ..cfg
    };
    let file_type = embedder()
        .unwrap()
        .model()
        .meta_val_str("general.file_type");
    if file_type.as_deref() != Ok("7") {
        return; // the encoder takes Q8_0 weights only
    }
    let on = Embedder::load(EmbedderConfig {
        encoder_kernel: true,
        ..cfg.clone()
    })
    .unwrap();
    let off = Embedder::load(EmbedderConfig {
        encoder_kernel: false,
        ..cfg
    })
    .unwrap();
    let references: Vec<serde_json::Value> =
        serde_json::from_str(include_str!("fixtures/minilm_reference.json")).unwrap();
    let mut texts: Vec<String> = references
        .iter()
        .map(|r| r["text"].as_str().unwrap().to_owned())
        .collect();
    texts.extend([
        "information retrieval evaluation measures".to_owned(),
        "x".to_owned(),
        "the use of citation indexes in science ".repeat(6),
        // Longer than the encoder takes: llama.cpp embeds it on both.
        "word ".repeat(300),
    ]);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    // One text per call: each is its own pass, as a lone query is.
    let mut by_kernel = Vec::new();
    let mut by_llama = Vec::new();
    for t in &refs {
        by_kernel.push(embed(&on, &[t]).pop().unwrap());
        by_llama.push(embed(&off, &[t]).pop().unwrap());
    }
    let supported = std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512vl")
        && std::arch::is_x86_feature_detected!("avx512vnni");
    let short = refs
        .iter()
        .filter(|t| on.tokenize(t).len() <= basalt_engine::KERNEL_INPUT_TOKENS)
        .count() as u64;
    assert_eq!(
        on.stats().kernel_passes.load(Ordering::Relaxed),
        if supported { short } else { 0 }
    );
    assert_eq!(off.stats().kernel_passes.load(Ordering::Relaxed), 0);
    for (i, t) in refs.iter().enumerate() {
        let between = cosine(&by_kernel[i], &by_llama[i]);
        eprintln!("{t:?}: kernel vs llama.cpp {between}");
        assert!(between > 0.9995, "{t:?}: cosine {between}");
        if let Some(r) = references.get(i) {
            let want: Vec<f32> = serde_json::from_value(r["embedding"].clone()).unwrap();
            let (k, l) = (cosine(&by_kernel[i], &want), cosine(&by_llama[i], &want));
            eprintln!("  against the reference: kernel {k}, llama.cpp {l}");
            assert!(k > 0.999 && l > 0.999, "{t:?}: {k} and {l}");
        }
    }
    // Several inputs in one pass embed as they do alone.
    let together = embed(&on, &refs[..4]);
    for (i, v) in together.iter().enumerate() {
        assert!(
            cosine(v, &by_kernel[i]) > 0.99999,
            "input {i} differs in a pass"
        );
    }
}
