//! Prints the content classifier's margins for a labelled TSV
//! (`CATEGORY<TAB>text`, NEUTRAL for benign) and precision/recall per category
//! at each confidence, to choose `semantic::MARGINS`.
//!
//! `cargo run --release -p basalt-guardrails --example calibrate -- MODEL.gguf bench/guardrails/content_eval.tsv`
//!
//! With a `.json` file (`bench/guardrails/topics_eval.json`) it prints denied
//! topic scores and precision/recall per threshold instead, to choose
//! `semantic::TOPIC_THRESHOLD`.

use std::sync::Arc;

use basalt_engine::EmbedderConfig;
use basalt_guardrails::semantic::{ContentModel, Embedded, TopicModel, CATEGORIES};
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
            express_lane: true,
            encoder_kernel: true,
        },
    ));
    let statics = provider.static_embeddings().await?;
    if data.ends_with(".json") {
        return topics(&statics, &ContentModel::new(&statics), data);
    }
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

fn topics(
    statics: &basalt_providers::StaticEmbeddings,
    background: &ContentModel,
    data: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let spec: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(data)?)?;
    let mut models = Vec::new();
    for t in spec["topics"].as_array().ok_or("no topics")? {
        let examples: Vec<String> = t["examples"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let name = t["name"].as_str().unwrap_or_default().to_string();
        let definition = t["definition"].as_str().unwrap_or_default();
        models.push((name, TopicModel::new(statics, definition, &examples)));
    }
    let mut rows = Vec::new();
    for q in spec["queries"].as_array().ok_or("no queries")? {
        let text = q["text"].as_str().unwrap_or_default();
        let want = q["topic"].as_str().map(str::to_string);
        let embedded = Embedded::new(statics, text);
        let scores: Vec<(f32, f32)> = models
            .iter()
            .map(|(_, m)| (m.score(&embedded), m.margin(&embedded, background)))
            .collect();
        println!(
            "{:<20} {:?}  {text}",
            want.as_deref().unwrap_or("-"),
            scores
                .iter()
                .map(|s| format!("{:.2}/{:+.2}", s.0, s.1))
                .collect::<Vec<_>>()
        );
        rows.push((want, scores));
    }
    for raw in [0.40f32, 0.45, 0.50] {
        for margin in [-1.0f32, 0.0, 0.04, 0.08] {
            let (mut tp, mut fp, mut pos) = (0, 0, 0);
            for (want, scores) in &rows {
                for (i, (name, _)) in models.iter().enumerate() {
                    let hit = scores[i].0 >= raw && scores[i].1 >= margin;
                    let is = want.as_deref() == Some(name.as_str());
                    tp += usize::from(hit && is);
                    fp += usize::from(hit && !is);
                    pos += usize::from(is);
                }
            }
            println!(
                "raw >= {raw:.2}, margin >= {margin:+.2}: precision {:.2} recall {:.2}",
                tp as f32 / (tp + fp).max(1) as f32,
                tp as f32 / pos.max(1) as f32
            );
        }
    }
    Ok(())
}
