//! Embedding speed without HTTP: `cargo run --release --example embed_speed --
//! MODEL.gguf [threads] [batch_tokens] [batch_sequences] [calls]`. Times lone
//! short queries (what a Retrieve embeds), a batch of 32 short texts, and 64
//! chunks of about 240 tokens (what ingestion embeds). Useful to compare model
//! files (`convert_weights`) and pass sizes (`batch_tokens`). Environment:
//! `ENCODER_KERNEL=0` embeds everything with llama.cpp (basalt's own encoder
//! otherwise takes inputs of up to 128 tokens), `QUERY_WORDS=N` makes the
//! lone query N words long, `EMBED_GAP_MS` idles before each lone query.

use std::time::Instant;

use basalt_engine::{Embedder, EmbedderConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).ok_or(
        "usage: embed_speed MODEL.gguf [threads] [batch_tokens] [batch_sequences] [calls]",
    )?;
    let threads: u32 = args.get(2).map_or(Ok(2), |s| s.parse())?;
    let batch_tokens: u32 = args.get(3).map_or(Ok(512), |s| s.parse())?;
    let batch_sequences: u32 = args.get(4).map_or(Ok(32), |s| s.parse())?;
    let calls: usize = args.get(5).map_or(Ok(100), |s| s.parse())?;
    let e = Embedder::load(EmbedderConfig {
        model_path: path.into(),
        max_input_tokens: 256,
        threads,
        max_queue: 64,
        batch_tokens,
        batch_sequences,
        express_lane: true,
        encoder_kernel: std::env::var("ENCODER_KERNEL").map_or(true, |v| v != "0"),
    })?;
    let queries = [
        "how do libraries catalogue their collections",
        "information retrieval evaluation measures",
        "the use of citation indexes in science",
        "automatic indexing of documents by computer",
    ];
    // EMBED_GAP_MS: idle time before each lone query (a client's think time).
    let gap: u64 = std::env::var("EMBED_GAP_MS").map_or(Ok(0), |s| s.parse())?;
    // QUERY_WORDS: the lone query is this many words (about one token each)
    // instead of the four short titles, to time inputs by length.
    let words: usize = std::env::var("QUERY_WORDS").map_or(Ok(0), |s| s.parse())?;
    let long_query = "information retrieval evaluation measures of indexing quality "
        .repeat(words.div_ceil(8))
        .split_whitespace()
        .take(words)
        .collect::<Vec<_>>()
        .join(" ");
    let mut times = Vec::new();
    for i in 0..calls {
        std::thread::sleep(std::time::Duration::from_millis(gap));
        let text = if words > 0 {
            &long_query
        } else {
            queries[i % queries.len()]
        };
        let tokens = e.tokenize(text);
        let start = Instant::now();
        e.submit(vec![tokens])?.blocking_recv()??;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() - 1) as f64 * p) as usize];
    println!(
        "single query ({} tokens): p50 {:.2} ms, p95 {:.2} ms, min {:.2} ms",
        e.tokenize(if words > 0 { &long_query } else { queries[0] })
            .len(),
        pct(0.5),
        pct(0.95),
        times[0]
    );
    let short: Vec<_> = (0..32)
        .map(|i| {
            e.tokenize(&format!(
                "{} number {i} with a few more words",
                queries[i % 4]
            ))
        })
        .collect();
    let start = Instant::now();
    e.submit(short)?.blocking_recv()??;
    println!(
        "32 short texts: {:.1} ms",
        start.elapsed().as_secs_f64() * 1000.0
    );
    let sentence = "the study of how libraries catalogue and index their collections of documents, and how readers find what they need ";
    let long: Vec<_> = (0..64)
        .map(|i| e.tokenize(&format!("{i} {}", sentence.repeat(12))))
        .collect();
    let tokens: usize = long.iter().map(Vec::len).sum();
    let start = Instant::now();
    e.submit(long)?.blocking_recv()??;
    let s = start.elapsed().as_secs_f64();
    println!(
        "64 chunks ({tokens} tokens): {:.0} ms, {:.1} chunks/s",
        s * 1000.0,
        64.0 / s
    );
    Ok(())
}
