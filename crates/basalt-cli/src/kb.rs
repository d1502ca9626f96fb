//! `basalt kb ingest DIR`: syncs a directory into a knowledge base of a running
//! server through the Bedrock Agent API, with a progress bar. The knowledge
//! base (named after the directory unless `--name`) and its CUSTOM data source
//! are created on first use; each file goes in as a document whose id is its
//! path under DIR, with its `.metadata.json` sidecar as metadata. Unchanged
//! files cost nothing on the server (content hashes), and documents whose
//! files are gone are deleted, so running it again keeps the index in step.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use basalt_gateway::Config;
use base64::Engine as _;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use crate::client::send;

#[derive(clap::Subcommand)]
pub enum KbCommand {
    /// Index every supported file under DIR into a knowledge base.
    Ingest(IngestArgs),
}

#[derive(clap::Args)]
pub struct IngestArgs {
    /// The directory to ingest.
    dir: PathBuf,
    /// Server URL (default: the configured listen address).
    #[arg(long)]
    url: Option<String>,
    /// Knowledge base name (default: the directory's name).
    #[arg(long)]
    name: Option<String>,
    /// Embedding model of a new knowledge base.
    #[arg(long, default_value = "sentence-transformers.all-minilm-l6-v2")]
    embedding_model: String,
    /// Bearer API key, when the server requires one.
    #[arg(long, env = "BASALT_API_KEY")]
    api_key: Option<String>,
}

const SIDECAR: &str = ".metadata.json";
const DATA_SOURCE: &str = "cli";

fn mime(path: &Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "txt" => "text/plain",
        "md" | "markdown" => "text/markdown",
        "html" | "htm" => "text/html",
        "csv" => "text/csv",
        "json" => "application/json",
        "pdf" => "application/pdf",
        _ => return None,
    })
}

/// Files under `dir` (relative ids with `/`), sorted; symlinks are not followed.
fn files(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in
            std::fs::read_dir(&d).with_context(|| format!("cannot read {}", d.display()))?
        {
            let entry = entry?;
            let kind = entry.file_type()?;
            let path = entry.path();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                let id = path
                    .strip_prefix(dir)
                    .map(|p| p.to_string_lossy().replace('\\', "/"))
                    .unwrap_or_default();
                out.push((id, path));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Inline attributes from a Bedrock `.metadata.json` sidecar.
fn sidecar_attributes(path: &Path) -> Result<Option<Value>> {
    let side = PathBuf::from(format!("{}{SIDECAR}", path.display()));
    if !side.is_file() {
        return Ok(None);
    }
    let v: Value = serde_json::from_slice(&std::fs::read(&side)?)
        .with_context(|| format!("{} is not JSON", side.display()))?;
    let Some(attrs) = v.get("metadataAttributes").and_then(Value::as_object) else {
        bail!("{} has no metadataAttributes object", side.display());
    };
    let mut inline = Vec::new();
    for (key, value) in attrs {
        let value = match value.get("value") {
            Some(typed) => typed.clone(),
            None => match value {
                Value::String(s) => json!({"type": "STRING", "stringValue": s}),
                Value::Number(n) => json!({"type": "NUMBER", "numberValue": n}),
                Value::Bool(b) => json!({"type": "BOOLEAN", "booleanValue": b}),
                Value::Array(a) => json!({"type": "STRING_LIST", "stringListValue": a}),
                _ => bail!(
                    "{}: attribute {key} has an unsupported value",
                    side.display()
                ),
            },
        };
        inline.push(json!({"key": key, "value": value}));
    }
    Ok(Some(
        json!({"type": "IN_LINE_ATTRIBUTE", "inlineAttributes": inline}),
    ))
}

struct Api {
    http: reqwest::Client,
    url: String,
    key: Option<String>,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(k) = &self.key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = send(req, &self.url).await?;
        Ok(resp.json().await?)
    }
}

pub fn run(config: &Config, command: KbCommand) -> Result<()> {
    let KbCommand::Ingest(args) = command;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(ingest(config, args))
}

async fn ingest(config: &Config, args: IngestArgs) -> Result<()> {
    let dir = args
        .dir
        .canonicalize()
        .with_context(|| format!("no directory {}", args.dir.display()))?;
    let name = match &args.name {
        Some(n) => n.clone(),
        None => dir
            .file_name()
            .map(|n| {
                n.to_string_lossy()
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                            c
                        } else {
                            '-'
                        }
                    })
                    .collect()
            })
            .unwrap_or_else(|| "docs".into()),
    };
    let api = Api {
        http: reqwest::Client::new(),
        url: args
            .url
            .clone()
            .unwrap_or_else(|| format!("http://{}", config.server.listen)),
        key: args.api_key.clone(),
    };
    use reqwest::Method;
    let kbs = api
        .call(Method::POST, "/knowledgebases/", Some(json!({})))
        .await?;
    let existing = kbs["knowledgeBaseSummaries"]
        .as_array()
        .and_then(|a| a.iter().find(|k| k["name"] == name.as_str()))
        .and_then(|k| k["knowledgeBaseId"].as_str().map(str::to_string));
    let kb_id = match existing {
        Some(id) => id,
        None => {
            let created = api
                .call(Method::PUT, "/knowledgebases/", Some(json!({
                    "name": name,
                    "roleArn": "arn:aws:iam::000000000000:role/basalt-cli",
                    "knowledgeBaseConfiguration": {"type": "VECTOR", "vectorKnowledgeBaseConfiguration": {"embeddingModelArn": args.embedding_model}},
                })))
                .await?;
            created["knowledgeBase"]["knowledgeBaseId"]
                .as_str()
                .context("the server did not return a knowledge base id")?
                .to_string()
        }
    };
    let sources = api
        .call(
            Method::POST,
            &format!("/knowledgebases/{kb_id}/datasources/"),
            Some(json!({})),
        )
        .await?;
    let ds_id = match sources["dataSourceSummaries"]
        .as_array()
        .and_then(|a| a.iter().find(|d| d["name"] == DATA_SOURCE))
        .and_then(|d| d["dataSourceId"].as_str().map(str::to_string))
    {
        Some(id) => id,
        None => api
            .call(
                Method::PUT,
                &format!("/knowledgebases/{kb_id}/datasources/"),
                Some(json!({
                    "name": DATA_SOURCE, "dataSourceConfiguration": {"type": "CUSTOM"},
                })),
            )
            .await?["dataSource"]["dataSourceId"]
            .as_str()
            .context("the server did not return a data source id")?
            .to_string(),
    };
    let docs_path = format!("/knowledgebases/{kb_id}/datasources/{ds_id}/documents");

    let all = files(&dir)?;
    let (wanted, skipped): (Vec<_>, Vec<_>) = all
        .into_iter()
        .filter(|(id, _)| !id.ends_with(SIDECAR))
        .partition(|(_, p)| mime(p).is_some());
    let bar = ProgressBar::new(wanted.len() as u64).with_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} files ({per_sec}, {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(format!("ingesting into {name}"));
    let (mut indexed, mut failed) = (0usize, Vec::new());
    for batch in wanted.chunks(10) {
        let mut documents = Vec::new();
        for (id, path) in batch {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let mut doc = json!({"content": {"dataSourceType": "CUSTOM", "custom": {
                "customDocumentIdentifier": {"id": id}, "sourceType": "IN_LINE",
                "inlineContent": {"type": "BYTE", "byteContent": {
                    "mimeType": mime(path).unwrap_or("text/plain"),
                    "data": base64::engine::general_purpose::STANDARD.encode(bytes)}}}}});
            if let Some(meta) = sidecar_attributes(path)? {
                doc["metadata"] = meta;
            }
            documents.push(doc);
        }
        match api
            .call(
                Method::PUT,
                &docs_path,
                Some(json!({"documents": documents})),
            )
            .await
        {
            Ok(resp) => {
                for d in resp["documentDetails"].as_array().into_iter().flatten() {
                    if d["status"] == "INDEXED" {
                        indexed += 1;
                    } else {
                        failed.push(format!(
                            "{}: {}",
                            d["identifier"]["custom"]["id"], d["statusReason"]
                        ));
                    }
                }
            }
            // A batch the server refuses (e.g. an unreadable PDF) goes file by file.
            Err(_) if batch.len() > 1 => {
                for one in documents {
                    match api
                        .call(
                            Method::PUT,
                            &docs_path,
                            Some(json!({"documents": [one.clone()]})),
                        )
                        .await
                    {
                        Ok(_) => indexed += 1,
                        Err(e) => failed.push(format!(
                            "{}: {e}",
                            one["content"]["custom"]["customDocumentIdentifier"]["id"]
                        )),
                    }
                }
            }
            Err(e) => failed.push(format!("{}: {e}", batch[0].0)),
        }
        bar.inc(batch.len() as u64);
    }
    bar.finish();

    // Documents whose files are gone leave the index.
    let present: std::collections::HashSet<&str> =
        wanted.iter().map(|(id, _)| id.as_str()).collect();
    let mut stale = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"maxResults": 1000});
        if let Some(t) = &token {
            body["nextToken"] = Value::from(t.clone());
        }
        let page = api.call(Method::POST, &docs_path, Some(body)).await?;
        for d in page["documentDetails"].as_array().into_iter().flatten() {
            if let Some(id) = d["identifier"]["custom"]["id"].as_str() {
                if !present.contains(id) {
                    stale.push(id.to_string());
                }
            }
        }
        token = page["nextToken"].as_str().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    for ids in stale.chunks(10) {
        let identifiers: Vec<Value> = ids
            .iter()
            .map(|id| json!({"dataSourceType": "CUSTOM", "custom": {"id": id}}))
            .collect();
        api.call(
            Method::POST,
            &format!("{docs_path}/deleteDocuments"),
            Some(json!({"documentIdentifiers": identifiers})),
        )
        .await?;
    }
    println!(
        "knowledge base {name} ({kb_id}): {indexed} indexed, {} removed, {} failed, {} skipped (unsupported type)",
        stale.len(),
        failed.len(),
        skipped.len()
    );
    for f in &failed {
        eprintln!("  failed: {f}");
    }
    Ok(())
}
