//! `basalt chat`: an interactive, streaming chat with a running server over its
//! OpenAI-compatible endpoint, keeping the conversation as it goes.

use std::io::{BufRead, Write};

use anyhow::{bail, Context, Result};
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
    let model = match args
        .model
        .clone()
        .or_else(|| config.models.first().map(|m| m.id.clone()))
    {
        Some(m) => m,
        None => bail!("no model: pass --model"),
    };
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
    let mut resp = req
        .send()
        .await
        .with_context(|| format!("cannot reach {url}: is `basalt serve` running?"))?;
    if !resp.status().is_success() {
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        bail!("server answered {status}: {text}");
    }
    let mut answer = String::new();
    let mut buf = String::new();
    let mut out = std::io::stdout();
    while let Some(chunk) = resp.chunk().await? {
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            let Some(data) = event.trim().strip_prefix("data: ") else {
                continue;
            };
            if data == "[DONE]" {
                continue;
            }
            let v: Value = serde_json::from_str(data)?;
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
