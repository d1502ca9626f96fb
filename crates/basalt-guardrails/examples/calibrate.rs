//! Prints the content classifier's margins for a labelled TSV
//! (`CATEGORY<TAB>text`, NEUTRAL for benign) and precision/recall per category
//! at each confidence, to choose `semantic::MARGINS`.
//!
//! `cargo run --release -p basalt-guardrails --example calibrate -- MODEL.gguf bench/guardrails/content_eval.tsv`

use std::sync::Arc;

use basalt_engine::EmbedderConfig;
use basalt_guardrails::semantic::{ContentModel, Embedded, CATEGORIES};
use basalt_providers::{LocalEmbedder, Provider};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(model), Some(data)) = (args.get(1), args.get(2)) else {
        return Err("usage: calibrate MODEL.gguf DATA.tsv".into());
    };
    let provider: Arc<dyn Provider> = Arc::new(LocalEmbedder::load(
        "e",
        EmbedderConfig {
            model_path: model.into(),
            max_input_tokens: 256,
            threads: 2,
            max_queue: 64,
            batch_tokens: 4096,
            batch_sequences: 32,
        },
    ));
    let statics = provider.static_embeddings().await?;
    let content = ContentModel::new(&statics);
    let text = std::fs::read_to_string(data)?;
    let mut rows = Vec::new();
    for line in text.lines() {
        let Some((label, t)) = line.split_once('\t') else {
            continue;
        };
        let m = content.margins(&Embedded::new(&statics, t));
        let best = m
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i);
        println!("{label:<14} {:<14} {:+.3}  {t}", CATEGORIES[best], m[best]);
        rows.push((label.to_string(), m));
    }
    for threshold in [0.02f32, 0.04, 0.06, 0.08, 0.10, 0.12, 0.15] {
        print!("margin {threshold:.2}:");
        for (i, c) in CATEGORIES.iter().enumerate() {
            let tp = rows
                .iter()
                .filter(|(l, m)| l == c && m[i] >= threshold)
                .count();
            let fp = rows
                .iter()
                .filter(|(l, m)| l != c && m[i] >= threshold)
                .count();
            let pos = rows.iter().filter(|(l, _)| l == c).count();
            print!(
                " {c} P{:.2}/R{:.2}",
                tp as f32 / (tp + fp).max(1) as f32,
                tp as f32 / pos.max(1) as f32
            );
        }
        println!();
    }
    Ok(())
}
