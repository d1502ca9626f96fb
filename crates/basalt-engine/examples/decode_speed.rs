//! Engine-only decode speed, without HTTP: `cargo run --release --example
//! decode_speed -- MODEL.gguf [threads] [tokens] [parallel] [filler words]`. Useful to tell
//! engine cost from server cost when `basalt bench` disagrees with llama-bench.

use std::time::Instant;

use basalt_engine::{Engine, EngineConfig, Job, SamplingParams};
use basalt_types::{ChatRequest, InferenceConfig, Message, Role, StreamEvent};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .ok_or("usage: decode_speed MODEL.gguf [threads] [tokens] [parallel] [filler words]")?;
    let threads: u32 = args.get(2).map_or(Ok(2), |s| s.parse())?;
    let tokens: u32 = args.get(3).map_or(Ok(128), |s| s.parse())?;
    let parallel: u32 = args.get(4).map_or(Ok(1), |s| s.parse())?;
    // Optional filler before each prompt, to measure prompt processing.
    let words: usize = args.get(5).map_or(Ok(0), |s| s.parse())?;
    let engine = Engine::load(EngineConfig {
        model_path: path.into(),
        chat_template: Some("gemma".into()),
        context_window: 4096,
        threads,
        parallel,
        max_queue: 64,
        batch_tokens: 512,
        default_top_k: 40,
        // OUTPUT_KERNEL=0: llama.cpp's output projection, for comparison.
        output_kernel: std::env::var("OUTPUT_KERNEL").map_or(true, |v| v != "0"),
        verify_output_kernel: false,
    })?;
    let start = Instant::now();
    let mut receivers = Vec::new();
    for i in 0..parallel {
        let request = ChatRequest {
            model_id: "m".into(),
            system: vec![],
            messages: vec![Message::text(
                Role::User,
                format!(
                    "{}Write a long numbered list of facts about {i}.\n1.",
                    "lorem ipsum dolor sit amet ".repeat(words)
                ),
            )],
            raw_prompt: None,
            guardrail: None,
            inference: InferenceConfig::default(),
        };
        let (tx, rx) = tokio::sync::mpsc::channel(tokens as usize + 8);
        engine.submit(Job {
            prompt: engine.prompt_tokens(&request)?,
            max_tokens: tokens,
            sampling: SamplingParams::greedy(),
            stop_sequences: vec![],
            events: tx,
            score: None,
        })?;
        receivers.push(rx);
    }
    let mut total = 0;
    let mut first_token = None;
    for mut rx in receivers {
        while let Some(event) = rx.blocking_recv() {
            match event? {
                StreamEvent::TextDelta(_) => {
                    first_token.get_or_insert_with(Instant::now);
                }
                StreamEvent::Stop { usage, .. } => {
                    total += usage.output_tokens;
                    break;
                }
                StreamEvent::Start { .. } | StreamEvent::Guardrail(_) => {}
            }
        }
    }
    let end = Instant::now();
    let decode = end
        .duration_since(first_token.unwrap_or(start))
        .as_secs_f64();
    let ttft = first_token
        .unwrap_or(end)
        .duration_since(start)
        .as_secs_f64();
    println!(
        "{total} tokens from {parallel} sequence(s): first token after {ttft:.2} s, {:.1} tok/s decode, {:.2} s total",
        f64::from(total.saturating_sub(parallel)) / decode,
        end.duration_since(start).as_secs_f64()
    );
    println!(
        "decode steps {}",
        engine
            .stats()
            .decode_steps
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    Ok(())
}
