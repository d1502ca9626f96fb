//! The one request path every model call takes: resolve the model, check it,
//! run it through its provider, and meter it (store record, cost, metrics) —
//! whether it finishes, fails, times out or is cancelled by the client.

pub mod config;
mod guard;
mod metrics;

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use basalt_guardrails::Guardrails;
use basalt_providers::source::Progress;
use basalt_providers::{EventStream, LocalEmbedder, LocalModel, Provider};
use basalt_store::{Invocation, Store};
use basalt_types::{
    ChatRequest, ChatResponse, EmbedRequest, EmbedResponse, Error, RerankRequest, RerankResponse,
    Result, StopReason, StreamEvent, Usage,
};

pub use config::{Config, ConfigError, ModelConfig, ModelKind};
pub use metrics::{render_family, CallOutcome, Metrics};

/// Errors while starting the gateway.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] basalt_store::StoreError),
    #[error("model {model}: {source}")]
    Fetch {
        model: String,
        source: basalt_providers::source::FetchError,
    },
    #[error("model {0}: invalid source")]
    Source(String),
}

/// A model in the catalog with the provider that serves it.
pub struct ModelEntry {
    pub config: ModelConfig,
    pub provider: Arc<dyn Provider>,
}

/// Which API a call came through and its request id, for metering.
#[derive(Debug, Clone)]
pub struct CallContext {
    pub api: &'static str,
    pub request_id: String,
}

pub struct Gateway {
    config: Config,
    models: Vec<ModelEntry>,
    by_id: HashMap<String, usize>,
    store: Store,
    metrics: Metrics,
    guardrails: Arc<Guardrails>,
}

/// Fetches any missing weights for the catalog (blocking; shows progress).
pub fn fetch_models(
    config: &Config,
    progress: &dyn Progress,
) -> std::result::Result<(), StartError> {
    for m in &config.models {
        let fetch = m.fetch().ok_or_else(|| StartError::Source(m.id.clone()))?;
        fetch
            .ensure(&config.store.models_dir, progress)
            .map_err(|source| StartError::Fetch {
                model: m.id.clone(),
                source,
            })?;
    }
    Ok(())
}

impl Gateway {
    /// Opens the store and loads every local model (blocking). Weights must be
    /// present (see [`fetch_models`]); a model that fails to load is kept and
    /// answers ServiceUnavailable.
    pub fn start(config: Config) -> std::result::Result<Self, StartError> {
        let store = Store::open(&config.store.data_dir)?;
        let mut providers: Vec<(ModelConfig, Arc<dyn Provider>)> = Vec::new();
        for m in &config.models {
            let fetch = m.fetch().ok_or_else(|| StartError::Source(m.id.clone()))?;
            let path = fetch.local_path(&config.store.models_dir);
            tracing::info!(model = %m.id, path = %path.display(), "loading model");
            let provider: Arc<dyn Provider> = match m.kind {
                ModelKind::Chat => Arc::new(LocalModel::load(m.local_settings(path))),
                ModelKind::Embedding => {
                    Arc::new(LocalEmbedder::load(&m.id, m.embedder_config(path)))
                }
            };
            providers.push((m.clone(), provider));
        }
        Ok(Self::with_providers(config, store, providers))
    }

    /// A gateway over the given providers (tests and custom setups).
    #[must_use]
    pub fn with_providers(
        config: Config,
        store: Store,
        providers: Vec<(ModelConfig, Arc<dyn Provider>)>,
    ) -> Self {
        let models: Vec<ModelEntry> = providers
            .into_iter()
            .map(|(config, provider)| ModelEntry { config, provider })
            .collect();
        let by_id = models
            .iter()
            .enumerate()
            .map(|(i, m)| (m.config.id.clone(), i))
            .collect();
        // The first embedding model in the catalog serves the guardrails'
        // semantic policies.
        let embedder = models
            .iter()
            .find(|m| m.config.kind == ModelKind::Embedding)
            .map(|m| Arc::clone(&m.provider));
        let guardrails = Arc::new(Guardrails::new(store.clone(), embedder));
        Self {
            config,
            models,
            by_id,
            store,
            metrics: Metrics::default(),
            guardrails,
        }
    }

    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The guardrails every call may ask for.
    #[must_use]
    pub fn guardrails(&self) -> &Arc<Guardrails> {
        &self.guardrails
    }

    #[must_use]
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Every model, in catalog order.
    pub fn models(&self) -> impl Iterator<Item = &ModelEntry> {
        self.models.iter()
    }

    /// Resolves a model id, or a Bedrock ARN whose last segment is a model id.
    pub fn model(&self, id_or_arn: &str) -> Result<&ModelEntry> {
        let id = if id_or_arn.starts_with("arn:") {
            id_or_arn.rsplit('/').next().unwrap_or(id_or_arn)
        } else {
            id_or_arn
        };
        self.by_id
            .get(id)
            .map(|&i| &self.models[i])
            .ok_or_else(|| Error::not_found(format!("The model {id_or_arn} was not found. Call ListFoundationModels to see the models basalt serves.")))
    }

    /// Prometheus text for `/metrics`.
    #[must_use]
    pub fn render_metrics(&self) -> String {
        let mut out = self.metrics.render(
            self.models
                .iter()
                .filter_map(|m| m.provider.engine_stats().map(|s| (m.config.id.as_str(), s))),
        );
        let embedders: Vec<_> = self
            .models
            .iter()
            .filter_map(|m| m.provider.embed_stats().map(|s| (m.config.id.as_str(), s)))
            .collect();
        metrics::render_embedders(&mut out, &embedders);
        metrics::render_guardrails(&mut out, &self.guardrails.counters());
        out
    }

    /// Counts input tokens exactly as a call would.
    pub async fn count_tokens(&self, request: &ChatRequest) -> Result<u32> {
        self.model(&request.model_id)?
            .provider
            .count_tokens(request)
            .await
    }

    /// Starts a streamed generation. Errors here are before any output; the
    /// returned stream meters the call however it ends. A guardrail the
    /// request names checks the input first and the output in chunks.
    pub async fn converse_stream(
        self: &Arc<Self>,
        ctx: CallContext,
        request: ChatRequest,
    ) -> Result<GatewayStream> {
        self.start_stream(ctx, request, true).await
    }

    async fn start_stream(
        self: &Arc<Self>,
        ctx: CallContext,
        request: ChatRequest,
        streamed: bool,
    ) -> Result<GatewayStream> {
        let mut meter = Meter::new(Arc::clone(self), ctx, request.model_id.clone());
        let entry = match self.model(&request.model_id) {
            Ok(e) => e,
            Err(e) => {
                meter.finish(e.kind.label());
                return Err(e);
            }
        };
        meter.model_id.clone_from(&entry.config.id);
        let deadline =
            Instant::now() + Duration::from_secs(self.config.server.request_timeout_seconds);
        let (request, guard) = match guard::check_input(&self.guardrails, request, streamed).await {
            Ok(guard::InputCheck::Proceed(request, guard)) => (request, guard),
            Ok(guard::InputCheck::Blocked(events)) => {
                meter.finish("guardrail_intervened");
                return Ok(GatewayStream {
                    events: closed_events(),
                    meter,
                    deadline,
                    queue: events.into_iter().map(Ok).collect(),
                    guard: None,
                });
            }
            Err(e) => {
                meter.finish(e.kind.label());
                return Err(e);
            }
        };
        match entry.provider.stream(*request).await {
            Ok(events) => Ok(GatewayStream {
                events,
                meter,
                deadline,
                queue: VecDeque::new(),
                guard,
            }),
            Err(e) => {
                meter.finish(e.kind.label());
                Err(e)
            }
        }
    }

    /// Runs a generation to the end and returns the whole answer (a guardrail
    /// checks the output once, whole).
    pub async fn converse(
        self: &Arc<Self>,
        ctx: CallContext,
        request: ChatRequest,
    ) -> Result<ChatResponse> {
        let mut stream = self.start_stream(ctx, request, false).await?;
        let mut text = String::new();
        let mut guardrail = None;
        while let Some(event) = stream.next().await {
            match event? {
                StreamEvent::Start { .. } => {}
                StreamEvent::TextDelta(t) => text.push_str(&t),
                StreamEvent::Guardrail(trace) => guardrail = Some(*trace),
                StreamEvent::Stop {
                    reason,
                    stop_sequence,
                    usage,
                } => {
                    return Ok(ChatResponse {
                        text,
                        stop_reason: reason,
                        stop_sequence,
                        usage,
                        latency_ms: stream.elapsed_ms(),
                        guardrail,
                    })
                }
            }
        }
        Err(Error::internal("the generation ended without a stop event"))
    }

    /// Embeds texts with an embedding model, metered like any model call
    /// (input tokens, no output tokens).
    pub async fn embed(
        self: &Arc<Self>,
        ctx: CallContext,
        request: EmbedRequest,
    ) -> Result<EmbedResponse> {
        let model_id = request.model_id.clone();
        self.metered(
            ctx,
            &model_id,
            |p| p.embed(request),
            |r| Usage {
                input_tokens: r.total_tokens(),
                ..Usage::default()
            },
        )
        .await
    }

    /// Scores documents against a query with a reranking model, metered on the
    /// prompt tokens of every query/document pair.
    pub async fn rerank(
        self: &Arc<Self>,
        ctx: CallContext,
        request: RerankRequest,
    ) -> Result<RerankResponse> {
        let model_id = request.model_id.clone();
        self.metered(
            ctx,
            &model_id,
            |p| p.rerank(request),
            |r| Usage {
                input_tokens: r.input_tokens,
                cache_read_input_tokens: r.cached_tokens,
                ..Usage::default()
            },
        )
        .await
    }

    /// Runs one non-streamed provider call under the request timeout and
    /// meters it (usage from the answer, or the error's status).
    async fn metered<'a, T, F, Fut>(
        self: &'a Arc<Self>,
        ctx: CallContext,
        model_id: &str,
        call: F,
        usage: impl FnOnce(&T) -> Usage,
    ) -> Result<T>
    where
        F: FnOnce(&'a Arc<dyn Provider>) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut meter = Meter::new(Arc::clone(self), ctx, model_id.to_string());
        let result = async {
            let entry = self.model(model_id)?;
            meter.model_id.clone_from(&entry.config.id);
            let timeout = Duration::from_secs(self.config.server.request_timeout_seconds);
            match tokio::time::timeout(timeout, call(&entry.provider)).await {
                Ok(r) => r,
                Err(_) => Err(Error::timeout(format!(
                    "The model did not finish within {} seconds.",
                    timeout.as_secs()
                ))),
            }
        }
        .await;
        match &result {
            Ok(r) => {
                meter.usage = usage(r);
                meter.finish("ok");
            }
            Err(e) => meter.finish(e.kind.label()),
        }
        result
    }

    fn record(&self, inv: Invocation, outcome: &CallOutcome<'_>) {
        self.metrics.observe(outcome);
        let store = self.store.clone();
        let write = move || {
            if let Err(e) = store.record(&inv) {
                tracing::error!(error = %e, request_id = %inv.request_id, "could not record invocation");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn_blocking(write);
            }
            Err(_) => write(),
        }
    }
}

/// Meters one call: records it exactly once, when finished or dropped.
struct Meter {
    gateway: Arc<Gateway>,
    ctx: CallContext,
    model_id: String,
    started: Instant,
    started_at_ms: i64,
    ttft: Option<Duration>,
    usage: Usage,
    done: bool,
}

impl Meter {
    fn new(gateway: Arc<Gateway>, ctx: CallContext, model_id: String) -> Self {
        let started_at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        Self {
            gateway,
            ctx,
            model_id,
            started: Instant::now(),
            started_at_ms,
            ttft: None,
            usage: Usage::default(),
            done: false,
        }
    }

    fn finish(&mut self, status: &str) {
        if self.done {
            return;
        }
        self.done = true;
        let elapsed = self.started.elapsed();
        let cost = self.gateway.model(&self.model_id).map_or(0.0, |m| {
            m.config
                .cost(self.usage.input_tokens, self.usage.output_tokens)
        });
        let inv = Invocation {
            request_id: self.ctx.request_id.clone(),
            started_at_ms: self.started_at_ms,
            api: self.ctx.api.to_string(),
            model_id: self.model_id.clone(),
            input_tokens: self.usage.input_tokens,
            output_tokens: self.usage.output_tokens,
            cached_input_tokens: self.usage.cache_read_input_tokens,
            latency_ms: elapsed.as_millis() as u64,
            ttft_ms: self.ttft.map(|t| t.as_millis() as u64),
            cost_usd: cost,
            status: status.to_string(),
        };
        let outcome = CallOutcome {
            api: self.ctx.api,
            model: &self.model_id,
            status,
            input_tokens: self.usage.input_tokens,
            output_tokens: self.usage.output_tokens,
            cached_tokens: self.usage.cache_read_input_tokens,
            seconds: elapsed.as_secs_f64(),
            ttft_seconds: self.ttft.map(|t| t.as_secs_f64()),
        };
        self.gateway.record(inv, &outcome);
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        // The client went away before the generation ended.
        self.finish("cancelled");
    }
}

/// A metered stream of generation events. Dropping it cancels the generation
/// and records the call as cancelled.
pub struct GatewayStream {
    events: EventStream,
    meter: Meter,
    deadline: Instant,
    /// Events ready for the client (a guardrail can turn one model event into
    /// several).
    queue: VecDeque<Result<StreamEvent>>,
    guard: Option<Box<guard::OutputGuard>>,
}

/// An event stream that has already ended (its sender is gone).
fn closed_events() -> EventStream {
    tokio::sync::mpsc::channel(1).1
}

impl GatewayStream {
    /// The next event; `None` after the stop event or an error.
    pub async fn next(&mut self) -> Option<Result<StreamEvent>> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Some(event);
            }
            let event = self.model_next().await?;
            let Some(guard) = self.guard.as_mut() else {
                return Some(event);
            };
            let event = match event {
                Ok(event) => event,
                Err(e) => return Some(Err(e)),
            };
            let is_stop = matches!(event, StreamEvent::Stop { .. });
            match guard.step(event, self.meter.usage, &mut self.queue).await {
                Ok(guard::Step::Continue) if is_stop => {
                    let status = if guard.intervened() {
                        "guardrail_intervened"
                    } else {
                        "ok"
                    };
                    self.meter.finish(status);
                }
                Ok(guard::Step::Continue) => {}
                Ok(guard::Step::Stop) => {
                    // Dropping the receiver cancels the generation.
                    self.events = closed_events();
                    self.meter.finish("guardrail_intervened");
                }
                Err(e) => {
                    self.events = closed_events();
                    self.queue.clear();
                    self.meter.finish(e.kind.label());
                    return Some(Err(e));
                }
            }
        }
    }

    /// The next event from the model, metered.
    async fn model_next(&mut self) -> Option<Result<StreamEvent>> {
        if self.meter.done {
            return None;
        }
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        let event = match tokio::time::timeout(remaining, self.events.recv()).await {
            Ok(Some(event)) => event,
            Ok(None) => Err(Error::internal(
                "the model stopped without finishing the response",
            )),
            Err(_) => Err(Error::timeout(format!(
                "The model did not finish within {} seconds.",
                self.meter.gateway.config.server.request_timeout_seconds
            ))),
        };
        match &event {
            Ok(StreamEvent::Start {
                input_tokens,
                cached_tokens,
            }) => {
                self.meter.usage.input_tokens = *input_tokens;
                self.meter.usage.cache_read_input_tokens = *cached_tokens;
            }
            Ok(StreamEvent::TextDelta(_)) => {
                self.meter
                    .ttft
                    .get_or_insert_with(|| self.meter.started.elapsed());
                // Approximate until the stop event brings the exact count.
                self.meter.usage.output_tokens += 1;
            }
            Ok(StreamEvent::Guardrail(_)) => {}
            Ok(StreamEvent::Stop { usage, .. }) => {
                self.meter
                    .ttft
                    .get_or_insert_with(|| self.meter.started.elapsed());
                self.meter.usage = *usage;
                // With a guardrail the call is finished after the output check.
                if self.guard.is_none() {
                    self.meter.finish("ok");
                }
            }
            Err(e) => self.meter.finish(e.kind.label()),
        }
        Some(event)
    }

    /// Milliseconds since the call started.
    #[must_use]
    pub fn elapsed_ms(&self) -> u64 {
        self.meter.started.elapsed().as_millis() as u64
    }

    /// The request id of the call.
    #[must_use]
    pub fn request_id(&self) -> &str {
        &self.meter.ctx.request_id
    }
}

/// Human-readable stop reason, for logs and the CLI.
#[must_use]
pub fn stop_reason_label(r: StopReason) -> &'static str {
    match r {
        StopReason::EndTurn => "end_turn",
        StopReason::MaxTokens => "max_tokens",
        StopReason::StopSequence => "stop_sequence",
        StopReason::GuardrailIntervened => "guardrail_intervened",
    }
}

/// True when `path` holds the weights of every model in the config.
#[must_use]
pub fn models_present(config: &Config, models_dir: &Path) -> bool {
    config
        .models
        .iter()
        .all(|m| m.fetch().is_some_and(|f| f.is_present(models_dir)))
}
