//! `basalt chat`: an interactive, streaming chat with a running server over its
//! OpenAI-compatible endpoint, keeping the conversation as it goes.

use std::io::{BufRead, Write};

use anyhow::{bail, Result};
use basalt_gateway::Config;
use serde_json::{json, Value};

#[derive(clap::Args)]
pub struct ChatArgs {
    /// Server URL (default: the configured listen address).
    #[arg(long)]
    url: Option<String>,
    /// Model id (default: the first model in the catalog).
    #[arg(long)]
    model: Option<String>,
    /// System prompt.
    #[arg(long)]
    system: Option<String>,
    /// Bearer API key, when the server requires one.
    #[arg(long, env = "BASALT_API_KEY")]
    api_key: Option<String>,
    /// Most tokens per answer.
    #[arg(long, default_value_t = 256)]
    max_tokens: u32,
    /// Sampling temperature.
    #[arg(long, default_value_t = 0.7)]
    temperature: f32,
}

pub fn run(config: &Config, args: ChatArgs) -> Result<()> {
    let url = args
        .url
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.server.listen));
    let model = crate::client::model_or_default(config, args.model.clone())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = reqwest::Client::new();
    let mut messages: Vec<Value> = Vec::new();
    if let Some(system) = &args.system {
        messages.push(json!({ "role": "system", "content": system }));
    }
    eprintln!("chatting with {model} at {url} — an empty line or Ctrl-D ends");
    let stdin = std::io::stdin();
    loop {
        eprint!("> ");
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 || line.trim().is_empty() {
            return Ok(());
        }
        messages.push(json!({ "role": "user", "content": line.trim_end() }));
        let body = json!({
            "model": model, "messages": messages, "stream": true,
            "max_tokens": args.max_tokens, "temperature": args.temperature,
        });
        let answer =
            runtime.block_on(stream_answer(&client, &url, args.api_key.as_deref(), &body))?;
        messages.push(json!({ "role": "assistant", "content": answer }));
    }
}

async fn stream_answer(
    client: &reqwest::Client,
    url: &str,
    key: Option<&str>,
    body: &Value,
) -> Result<String> {
    let mut req = client.post(format!("{url}/v1/chat/completions")).json(body);
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let mut resp = crate::client::send(req, &format!("{url} (is `basalt serve` running?)")).await?;
    let mut answer = String::new();
    let mut sse = crate::client::SseReader::default();
    let mut out = std::io::stdout();
    while let Some(chunk) = resp.chunk().await? {
        for v in sse.push(&chunk)? {
            if let Some(err) = v.get("error") {
                bail!("{}", err["message"]);
            }
            if let Some(text) = v["choices"][0]["delta"]["content"].as_str() {
                answer.push_str(text);
                print!("{text}");
                out.flush()?;
            }
        }
    }
    println!();
    Ok(answer)
}
