//! `basalt bench`: measures a running basalt server against llama.cpp peers in
//! the same run — single-stream decode vs `llama-bench` tg128, aggregate decode
//! with concurrent ConverseStream clients vs `llama-server` with as many slots,
//! TTFT with a cached 1,000-token prefix vs cold, and resident memory.
//! `scripts/bench` builds the peers and runs this; results go to BENCHMARKS.md.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use basalt_gateway::Config;
use bytes::BytesMut;
use serde_json::{json, Value};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// URL of the basalt server under test.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Model id (default: the first model in the catalog).
    #[arg(long)]
    model: Option<String>,
    /// PID of the basalt server, for resident-memory readings.
    #[arg(long)]
    pid: Option<u32>,
    /// URL of a llama-server peer (OpenAI-compatible) for the aggregate comparison.
    #[arg(long)]
    peer_url: Option<String>,
    /// PID of the llama-server peer, for its resident memory.
    #[arg(long)]
    peer_pid: Option<u32>,
    /// llama-bench binary, for the single-stream comparison.
    #[arg(long)]
    llama_bench: Option<PathBuf>,
    /// The GGUF file llama-bench should load (the same weights basalt serves).
    #[arg(long)]
    gguf: Option<PathBuf>,
    /// Threads for llama-bench (use the same as the model's `threads`).
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// Concurrent clients in the aggregate benchmark.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Tokens generated per request.
    #[arg(long, default_value_t = 128)]
    max_tokens: u32,
    /// Repetitions of each measurement (the median is reported).
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// What one streamed request showed the client.
#[derive(Debug, Clone, Copy, Default)]
struct Timing {
    /// Time to the first byte of the response body (the first event).
    first_event: Duration,
    first_text: Option<Duration>,
    last_text: Option<Duration>,
    output_tokens: u32,
    input_tokens: u32,
}

impl Timing {
    /// Decode speed: tokens after the first over the time they took.
    fn decode_tps(&self) -> Option<f64> {
        let (a, b) = (self.first_text?, self.last_text?);
        let span = (b - a).as_secs_f64();
        (self.output_tokens > 1 && span > 0.0).then(|| f64::from(self.output_tokens - 1) / span)
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn rss_mib(pid: Option<u32>) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn user_body(text: &str, max_tokens: u32) -> Value {
    converse_body(None, text, max_tokens)
}

fn converse_body(system: Option<&str>, text: &str, max_tokens: u32) -> Value {
    let mut body = json!({
        "messages": [{ "role": "user", "content": [{ "text": text }] }],
        "inferenceConfig": { "maxTokens": max_tokens, "temperature": 0.0 },
    });
    if let Some(system) = system {
        body["system"] = json!([{ "text": system }]);
    }
    body
}

async fn converse_stream(
    client: &reqwest::Client,
    url: &str,
    model: &str,
    body: &Value,
) -> Result<Timing> {
    let start = Instant::now();
    let request = client
        .post(format!("{url}/model/{model}/converse-stream"))
        .json(body);
    let mut resp = crate::client::send(request, &format!("basalt at {url}")).await?;
    let mut t = Timing::default();
    let mut buf = BytesMut::new();
    let mut first = true;
    while let Some(chunk) = resp.chunk().await? {
        let now = start.elapsed();
        if first {
            t.first_event = now;
            first = false;
        }
        buf.extend_from_slice(&chunk);
        for frame in basalt_server::eventstream::decode_frames(&mut buf)? {
            let kind = frame.header(":event-type").unwrap_or_default();
            match kind {
                "contentBlockDelta" => {
                    t.first_text.get_or_insert(now);
                    t.last_text = Some(now);
                }
                "metadata" => {
                    let v: Value = serde_json::from_slice(&frame.payload)?;
                    t.output_tokens = v["usage"]["outputTokens"].as_u64().unwrap_or(0) as u32;
                    t.input_tokens = v["usage"]["inputTokens"].as_u64().unwrap_or(0) as u32;
                }
                _ if frame.header(":message-type") == Some("exception") => {
                    bail!("stream error: {}", String::from_utf8_lossy(&frame.payload));
                }
                _ => {}
            }
        }
    }
    Ok(t)
}

/// One streamed chat completion against an OpenAI-compatible peer.
async fn peer_stream(
    client: &reqwest::Client,
    url: &str,
    system: Option<&str>,
    text: &str,
    max_tokens: u32,
) -> Result<Timing> {
    let start = Instant::now();
    let mut messages = Vec::new();
    if let Some(system) = system {
        messages.push(json!({ "role": "system", "content": system }));
    }
    messages.push(json!({ "role": "user", "content": text }));
    let body = json!({
        "messages": messages,
        "max_tokens": max_tokens, "temperature": 0.0, "stream": true,
        "stream_options": { "include_usage": true },
    });
    let request = client
        .post(format!("{url}/v1/chat/completions"))
        .json(&body);
    let mut resp = crate::client::send(request, &format!("the peer at {url}")).await?;
    let mut t = Timing::default();
    let mut sse = crate::client::SseReader::default();
    let mut chunks = 0u32;
    let mut first = true;
    while let Some(chunk) = resp.chunk().await? {
        let now = start.elapsed();
        if first {
            t.first_event = now;
            first = false;
        }
        for v in sse.push(&chunk)? {
            if v["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
            {
                chunks += 1;
                t.first_text.get_or_insert(now);
                t.last_text = Some(now);
            }
            if let Some(n) = v["usage"]["completion_tokens"].as_u64() {
                t.output_tokens = n as u32;
                t.input_tokens = v["usage"]["prompt_tokens"].as_u64().unwrap_or(0) as u32;
            }
        }
    }
    if t.output_tokens == 0 {
        t.output_tokens = chunks;
    }
    Ok(t)
}

/// Prompts that make a base model keep writing (numbered lists continue).
fn open_prompt(i: usize) -> String {
    format!(
        "Write a long numbered list of facts about the number {}.\n1.",
        100 + i * 7
    )
}

/// About `words` words of text that no earlier request has seen.
fn unique_text(words: usize, nonce: u128) -> String {
    let vocab = [
        "granite", "river", "lantern", "copper", "meadow", "signal", "harbor", "quartz", "ember",
        "willow", "falcon", "canyon", "orbit", "velvet", "marble", "thunder", "cedar", "prism",
        "glacier", "saffron",
    ];
    let mut x = nonce as u64 | 1;
    let mut out = format!("Document {nonce}.");
    for i in 0..words {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push(' ');
        out.push_str(vocab[(x % vocab.len() as u64) as usize]);
        if i % 12 == 11 {
            out.push('.');
        }
    }
    out
}

fn llama_bench_tg(bin: &PathBuf, gguf: &PathBuf, threads: u32, n: u32) -> Result<f64> {
    let out = std::process::Command::new(bin)
        .args(["-m"])
        .arg(gguf)
        .args([
            "-t",
            &threads.to_string(),
            "-p",
            "0",
            "-n",
            &n.to_string(),
            "-r",
            "3",
            "-o",
            "json",
        ])
        .output()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "llama-bench failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: Value = serde_json::from_slice(&out.stdout).context("llama-bench output is not JSON")?;
    v.as_array()
        .and_then(|a| a.iter().find(|r| r["n_gen"].as_u64() == Some(u64::from(n))))
        .and_then(|r| r["avg_ts"].as_f64())
        .context("llama-bench printed no tg result")
}

pub fn run(config: &Config, args: BenchArgs) -> Result<()> {
    let model = crate::client::model_or_default(config, args.model.clone())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_async(&args, &model))
}

async fn run_async(args: &BenchArgs, model: &str) -> Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()?;
    let url = args.url.trim_end_matches('/');
    let mut results = serde_json::Map::new();
    results.insert("rss_idle_mib".into(), json!(rss_mib(args.pid)));
    results.insert("peer_rss_idle_mib".into(), json!(rss_mib(args.peer_pid)));

    // Warm-up: pages the weights in and compiles nothing else.
    converse_stream(&client, url, model, &user_body("Hello", 8)).await?;

    // 1. Single-stream decode. Each basalt run is paired with a llama-bench
    // run right after it; the median of the pairs' ratios is reported, which
    // holds up better than two separate medians on a machine whose speed drifts.
    let peer_tg = args.llama_bench.as_ref().zip(args.gguf.as_ref());
    let (mut single, mut tg, mut single_ratios) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..args.repeats {
        let body = user_body(&open_prompt(r), args.max_tokens);
        let t = converse_stream(&client, url, model, &body).await?;
        let Some(tps) = t.decode_tps() else { continue };
        single.push(tps);
        let mut line = format!(
            "single stream {r}: {} tokens, {tps:.1} tok/s",
            t.output_tokens
        );
        if let Some((bin, gguf)) = peer_tg {
            let peer = llama_bench_tg(bin, gguf, args.threads, 128)?;
            tg.push(peer);
            single_ratios.push(tps / peer);
            line.push_str(&format!(
                "; llama-bench tg128 {peer:.1} tok/s; ratio {:.3}",
                tps / peer
            ));
        }
        eprintln!("{line}");
    }
    results.insert("single_stream_decode_tps".into(), json!(median(single)));
    if !tg.is_empty() {
        results.insert("llama_bench_tg128_tps".into(), json!(median(tg)));
        results.insert("single_stream_ratio".into(), json!(median(single_ratios)));
    }

    // 2. Aggregate decode with concurrent clients: distinct prompts, then one
    // long system prompt shared by all (fresh each round, so nothing is cached
    // from an earlier round on either side).
    let aggregate = |peer: bool, system: Option<String>| {
        let client = client.clone();
        let url = if peer {
            args.peer_url.clone().unwrap_or_default()
        } else {
            url.to_string()
        };
        let model = model.to_string();
        let (clients, max_tokens) = (args.clients, args.max_tokens);
        async move {
            let start = Instant::now();
            let mut tasks = Vec::new();
            for i in 0..clients {
                let (client, url, model, system) =
                    (client.clone(), url.clone(), model.clone(), system.clone());
                tasks.push(tokio::spawn(async move {
                    let prompt = open_prompt(i + 10);
                    let system = system.as_deref();
                    if peer {
                        peer_stream(&client, &url, system, &prompt, max_tokens).await
                    } else {
                        let body = converse_body(system, &prompt, max_tokens);
                        converse_stream(&client, &url, &model, &body).await
                    }
                }));
            }
            let mut tokens = 0u64;
            for t in tasks {
                tokens += u64::from(t.await??.output_tokens);
            }
            let wall = start.elapsed().as_secs_f64();
            anyhow::Ok((tokens, wall, tokens as f64 / wall))
        }
    };
    for (name, shared_system) in [("aggregate", false), ("aggregate_shared_system", true)] {
        let (mut ours, mut theirs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for r in 0..args.repeats {
            let system = shared_system.then(|| {
                let nonce = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos());
                format!("Follow these instructions. {}", unique_text(300, nonce))
            });
            let (tokens, wall, tps) = aggregate(false, system.clone()).await?;
            eprintln!("basalt {name} {r}: {tokens} tokens in {wall:.2}s = {tps:.1} tok/s");
            ours.push(tps);
            if args.peer_url.is_some() {
                let (tokens, wall, peer) = aggregate(true, system).await?;
                eprintln!("peer {name} {r}: {tokens} tokens in {wall:.2}s = {peer:.1} tok/s");
                theirs.push(peer);
                ratios.push(tps / peer);
            }
        }
        results.insert(format!("{name}_tps"), json!(median(ours)));
        if !theirs.is_empty() {
            results.insert(format!("peer_{name}_tps"), json!(median(theirs)));
            results.insert(format!("{name}_ratio"), json!(median(ratios)));
        }
    }

    // 3. TTFT: a 1,000-token prefix, cold and then seen before.
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let prefix = unique_text(900, nonce);
    let cold = converse_stream(
        &client,
        url,
        model,
        &user_body(&format!("{prefix}\nQuestion 0: what is the first word?"), 4),
    )
    .await?;
    let mut warm = Vec::new();
    for q in 1..=args.repeats.max(3) {
        let t = converse_stream(
            &client,
            url,
            model,
            &user_body(&format!("{prefix}\nQuestion {q}: what is word {q}?"), 4),
        )
        .await?;
        warm.push(t.first_event.as_secs_f64());
    }
    let warm = median(warm);
    let cold_s = cold.first_event.as_secs_f64();
    eprintln!(
        "TTFT: prompt {} tokens, cold {:.1} ms, cached prefix {:.1} ms",
        cold.input_tokens,
        cold_s * 1e3,
        warm * 1e3
    );
    results.insert("ttft_prompt_tokens".into(), json!(cold.input_tokens));
    results.insert("ttft_cold_ms".into(), json!(cold_s * 1e3));
    results.insert("ttft_cached_prefix_ms".into(), json!(warm * 1e3));
    results.insert("ttft_ratio".into(), json!(warm / cold_s));

    results.insert("rss_loaded_mib".into(), json!(rss_mib(args.pid)));
    results.insert("peer_rss_loaded_mib".into(), json!(rss_mib(args.peer_pid)));
    let out = Value::Object(results);
    println!("{}", serde_json::to_string_pretty(&out)?);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&out)?)?;
    }
    Ok(())
}
