//! The HTTP face of basalt: one axum router for every wire API (Bedrock
//! Runtime, Bedrock control plane (models and guardrails), Bedrock Agent and Agent Runtime for
//! knowledge bases, OpenAI-compatible), AWS event-stream and SSE
//! encoding, SigV4 / API-key auth, AWS- and OpenAI-shaped errors, `/metrics`.
//!
//! Only this crate knows HTTP and wire JSON: each API module translates into the
//! canonical `basalt-types` request and back.

mod auth;
mod bedrock;
mod bedrock_agent;
mod bedrock_agent_runtime;
mod bedrock_runtime;
pub mod error;
pub mod eventstream;
mod guardrails;
mod idempotency;
mod openai;
pub mod sigv4;
mod streaming;

use std::future::Future;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use basalt_gateway::Gateway;
use basalt_knowledge::Knowledge;
use basalt_types::Error;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub gateway: Arc<Gateway>,
    pub knowledge: Arc<Knowledge>,
}

/// The id of the current request, as returned in `x-amzn-RequestId`.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Parses a JSON body; any failure is a ValidationException naming the problem.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(body)
        .map_err(|e| Error::validation(format!("The request body is not valid: {e}")))
}

/// Runs blocking work (store calls, deleting a large data source) on the
/// blocking pool, so the async workers keep serving other requests.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("a blocking task failed: {e}")))?
}

async fn ping() -> &'static str {
    "ok"
}

async fn metrics(State(state): State<AppState>) -> Response {
    let mut body = state.gateway.render_metrics();
    state.knowledge.render_metrics(&mut body);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

async fn unknown_route(uri: Uri) -> Response {
    let path = uri.path();
    let error = Error::not_found(format!("No API operation matches {path}."));
    let mut resp = error::error_for_path(path, error, Some(StatusCode::NOT_FOUND));
    if !error::is_openai_path(path) {
        resp.headers_mut().insert(
            "x-amzn-errortype",
            axum::http::HeaderValue::from_static("UnknownOperationException"),
        );
    }
    resp
}

/// The router with every API and the auth / limits guard.
pub fn router(gateway: Arc<Gateway>, knowledge: Arc<Knowledge>) -> Router {
    let state = AppState { gateway, knowledge };
    use bedrock_agent as agent;
    const KB: &str = "/knowledgebases/{knowledge_base_id}";
    const DS: &str = "/knowledgebases/{knowledge_base_id}/datasources/{data_source_id}";
    // Routes with operations that take a clientToken.
    let idem = |m: axum::routing::MethodRouter<AppState>| {
        m.route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::guard,
        ))
    };
    Router::new()
        .route("/ping", get(ping))
        .route("/metrics", get(metrics))
        .route(
            "/model/{model_id}/converse",
            post(bedrock_runtime::converse),
        )
        .route(
            "/model/{model_id}/converse-stream",
            post(bedrock_runtime::converse_stream),
        )
        .route("/model/{model_id}/invoke", post(bedrock_runtime::invoke))
        .route(
            "/model/{model_id}/invoke-with-response-stream",
            post(bedrock_runtime::invoke_stream),
        )
        .route(
            "/model/{model_id}/count-tokens",
            post(bedrock_runtime::count_tokens),
        )
        .route(
            "/guardrail/{guardrail_id}/version/{guardrail_version}/apply",
            post(guardrails::apply_guardrail),
        )
        .route(
            "/guardrails",
            idem(post(guardrails::create_guardrail).get(guardrails::list_guardrails)),
        )
        .route(
            "/guardrails/{guardrail_id}",
            idem(
                get(guardrails::get_guardrail)
                    .put(guardrails::update_guardrail)
                    .delete(guardrails::delete_guardrail)
                    .post(guardrails::create_guardrail_version),
            ),
        )
        .route("/foundation-models", get(bedrock::list_foundation_models))
        .route(
            "/foundation-models/{model_id}",
            get(bedrock::get_foundation_model),
        )
        .route(
            "/knowledgebases/",
            idem(put(agent::create_knowledge_base).post(agent::list_knowledge_bases)),
        )
        .route(
            KB,
            get(agent::get_knowledge_base)
                .put(agent::update_knowledge_base)
                .delete(agent::delete_knowledge_base),
        )
        .route(
            &format!("{KB}/datasources/"),
            idem(put(agent::create_data_source).post(agent::list_data_sources)),
        )
        .route(
            DS,
            get(agent::get_data_source)
                .put(agent::update_data_source)
                .delete(agent::delete_data_source),
        )
        .route(
            &format!("{DS}/ingestionjobs/"),
            idem(put(agent::start_ingestion_job).post(agent::list_ingestion_jobs)),
        )
        .route(
            &format!("{DS}/ingestionjobs/{{ingestion_job_id}}"),
            get(agent::get_ingestion_job),
        )
        .route(
            &format!("{DS}/ingestionjobs/{{ingestion_job_id}}/stop"),
            post(agent::stop_ingestion_job),
        )
        .route(
            &format!("{DS}/documents"),
            idem(put(agent::ingest_documents).post(agent::list_documents)),
        )
        .route(
            &format!("{DS}/documents/getDocuments"),
            post(agent::get_documents),
        )
        .route(
            &format!("{DS}/documents/deleteDocuments"),
            idem(post(agent::delete_documents)),
        )
        .route(
            &format!("{KB}/retrieve"),
            post(bedrock_agent_runtime::retrieve),
        )
        .route(
            "/retrieveAndGenerate",
            post(bedrock_agent_runtime::retrieve_and_generate),
        )
        .route("/rerank", post(bedrock_agent_runtime::rerank))
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/embeddings", post(openai::embeddings))
        .route("/v1/models", get(openai::list_models))
        .route("/v1/models/{model_id}", get(openai::get_model))
        .fallback(unknown_route)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::guard,
        ))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    gateway: Arc<Gateway>,
    knowledge: Arc<Knowledge>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(gateway, knowledge))
        .with_graceful_shutdown(shutdown)
        .await
}
