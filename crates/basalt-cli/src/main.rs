//! The `basalt` binary: a thin shell over the library crates — serve, chat,
//! models, usage, kb, bench.

mod bench;
mod chat;
mod client;
mod kb;
mod progress;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use basalt_gateway::{Config, Gateway};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "basalt",
    version,
    about = "Self-hosted generative-AI platform: Bedrock and OpenAI APIs over local models"
)]
struct Cli {
    /// Config file (TOML). Default: ./basalt.toml if it exists, else built-in defaults.
    #[arg(long, global = true, env = "BASALT_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the server (fetches missing model weights first).
    Serve {
        /// Listen address, overriding server.listen.
        #[arg(long)]
        listen: Option<String>,
        /// Validate the config and exit.
        #[arg(long)]
        check: bool,
    },
    /// Interactive streaming chat with a running server.
    Chat(chat::ChatArgs),
    /// Manage model weights.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Token and cost totals by model and day, from the store.
    Usage {
        /// Only the last N days.
        #[arg(long, default_value_t = 30)]
        days: u32,
    },
    /// Knowledge bases of a running server.
    Kb {
        #[command(subcommand)]
        command: kb::KbCommand,
    },
    /// Benchmarks against a peer (see BENCHMARKS.md).
    Bench(bench::BenchArgs),
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// List the catalog and whether each model's weights are present.
    List,
    /// Fetch (and verify) the weights of every model, or of one.
    Pull { model: Option<String> },
}

fn load_config(path: Option<&Path>) -> Result<Config> {
    let default = Path::new("basalt.toml");
    match path {
        Some(p) => Ok(Config::load(p)?),
        None if default.is_file() => Ok(Config::load(default)?),
        None => Ok(Config::default()),
    }
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BASALT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let mut config = load_config(cli.config.as_deref())?;
    match cli.command {
        Command::Serve { listen, check } => {
            if let Some(listen) = listen {
                config.server.listen = listen;
                config.validate()?;
            }
            if check {
                println!(
                    "config ok: {} model(s), listening on {} when served",
                    config.models.len(),
                    config.server.listen
                );
                return Ok(());
            }
            serve(config)
        }
        Command::Chat(args) => chat::run(&config, args),
        Command::Models { command } => models(&config, command),
        Command::Usage { days } => usage(&config, days),
        Command::Kb { command } => kb::run(&config, command),
        Command::Bench(args) => bench::run(&config, args),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn serve(mut config: Config) -> Result<()> {
    let mut addr: std::net::SocketAddr = config.server.listen.parse()?;
    if !config.auth.enabled() && !addr.ip().is_loopback() {
        tracing::warn!(
            requested = %addr,
            "no [auth] keys are configured: binding to loopback only. Add auth.access_keys or auth.api_keys to listen on other interfaces"
        );
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        config.server.listen = addr.to_string();
    }
    // Bind first: a busy port is reported before minutes of fetching and loading.
    let listener =
        std::net::TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    listener.set_nonblocking(true)?;
    basalt_gateway::fetch_models(&config, &progress::Bar::default())?;
    let gateway = Arc::new(Gateway::start(config)?);
    for m in gateway.models() {
        match m.provider.unavailable_reason() {
            None => tracing::info!(model = %m.config.id, "model ready"),
            Some(reason) => {
                tracing::error!(model = %m.config.id, %reason, "model unavailable: requests to it answer ServiceUnavailableException")
            }
        }
    }
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let local = listener.local_addr()?;
        if gateway.config().auth.enabled() {
            tracing::info!("authentication required: SigV4 (access_keys) or Bearer (api_keys)");
        } else {
            tracing::warn!(
                "no auth keys configured: accepting unauthenticated requests on loopback only"
            );
        }
        eprintln!("basalt listening on http://{local}");
        let shutdown = async {
            let ctrl_c = tokio::signal::ctrl_c();
            #[cfg(unix)]
            {
                let mut term =
                    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    {
                        Ok(t) => t,
                        Err(_) => return std::future::pending().await,
                    };
                tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
            }
            #[cfg(not(unix))]
            let _ = ctrl_c.await;
            tracing::info!("shutting down");
        };
        let knowledge = basalt_knowledge::Knowledge::start(
            gateway.store().clone(),
            Arc::clone(&gateway),
            &gateway.config().knowledge.buckets,
        )?;
        // Distil (first run) or load the guardrails' static embeddings now, so
        // the first guarded call does not wait for them.
        let guardrails = Arc::clone(gateway.guardrails());
        tokio::spawn(async move {
            if let Err(e) = guardrails.warm().await {
                tracing::warn!(error = %e, "guardrail embeddings are not available");
            }
        });
        basalt_server::serve(gateway, Arc::clone(&knowledge), listener, shutdown).await?;
        // The next start reads the HNSW graphs instead of building them again.
        tokio::task::spawn_blocking(move || knowledge.save_graphs(None)).await?;
        Ok(())
    })
}

fn models(config: &Config, command: ModelsCommand) -> Result<()> {
    let dir = &config.store.models_dir;
    match command {
        ModelsCommand::List => {
            println!(
                "{:<40} {:<9} {:<8} {:>8}  PATH",
                "ID", "KIND", "PRESENT", "CONTEXT"
            );
            for m in &config.models {
                let Some(fetch) = m.fetch() else { continue };
                println!(
                    "{:<40} {:<9} {:<8} {:>8}  {}",
                    m.id,
                    match m.kind {
                        basalt_gateway::ModelKind::Chat => "chat",
                        basalt_gateway::ModelKind::Embedding => "embedding",
                    },
                    if fetch.is_present(dir) { "yes" } else { "no" },
                    m.context_window,
                    fetch.local_path(dir).display()
                );
            }
            Ok(())
        }
        ModelsCommand::Pull { model } => {
            let bar = progress::Bar::default();
            let mut found = false;
            for m in config
                .models
                .iter()
                .filter(|m| model.as_ref().is_none_or(|id| &m.id == id))
            {
                found = true;
                let Some(fetch) = m.fetch() else { continue };
                let path = fetch
                    .ensure(dir, &bar)
                    .with_context(|| format!("model {}", m.id))?;
                if m.kind == basalt_gateway::ModelKind::Embedding {
                    prepare_static_embeddings(m, &path)?;
                }
                println!("{}: {}", m.id, path.display());
            }
            if !found {
                bail!("no model {:?} in the catalog", model.unwrap_or_default());
            }
            Ok(())
        }
    }
}

/// Distils the embedding model's static token table (used by the guardrails)
/// once, at pull time, so no request waits for it.
fn prepare_static_embeddings(
    m: &basalt_gateway::ModelConfig,
    path: &std::path::Path,
) -> Result<()> {
    use basalt_providers::Provider as _;
    let cache = basalt_providers::StaticEmbeddings::cache_path(path);
    if cache.exists() {
        return Ok(());
    }
    eprintln!(
        "{}: distilling static token embeddings for the guardrails (once)",
        m.id
    );
    let embedder =
        basalt_providers::LocalEmbedder::load(&m.id, m.embedder_config(path.to_path_buf()));
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(embedder.static_embeddings())
        .map_err(|e| anyhow::anyhow!("model {}: {e}", m.id))?;
    Ok(())
}

fn usage(config: &Config, days: u32) -> Result<()> {
    let store = basalt_store::Store::open(&config.store.data_dir)?;
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64
        - i64::from(days) * 86_400_000;
    let rows = store.usage_by_model_and_day(since)?;
    println!(
        "{:<12} {:<28} {:>9} {:>7} {:>12} {:>12} {:>12}",
        "DAY", "MODEL", "REQUESTS", "ERRORS", "INPUT_TOK", "OUTPUT_TOK", "COST_USD"
    );
    let (mut req, mut err, mut inp, mut out, mut cost) = (0, 0, 0, 0, 0.0);
    for r in &rows {
        println!(
            "{:<12} {:<28} {:>9} {:>7} {:>12} {:>12} {:>12.6}",
            r.day, r.model_id, r.requests, r.errors, r.input_tokens, r.output_tokens, r.cost_usd
        );
        req += r.requests;
        err += r.errors;
        inp += r.input_tokens;
        out += r.output_tokens;
        cost += r.cost_usd;
    }
    println!(
        "{:<12} {:<28} {req:>9} {err:>7} {inp:>12} {out:>12} {cost:>12.6}",
        "TOTAL", ""
    );
    Ok(())
}
