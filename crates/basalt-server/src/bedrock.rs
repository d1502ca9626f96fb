//! Bedrock control plane: ListFoundationModels (with its filters) and
//! GetFoundationModel, answered from the catalog.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use basalt_gateway::{ModelConfig, ModelKind};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::AwsError;
use crate::AppState;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListFilters {
    by_provider: Option<String>,
    by_customization_type: Option<String>,
    by_output_modality: Option<String>,
    by_inference_type: Option<String>,
}

fn output_modality(m: &ModelConfig) -> &'static str {
    match m.kind {
        ModelKind::Chat => "TEXT",
        ModelKind::Embedding => "EMBEDDING",
    }
}

fn summary(m: &ModelConfig, region: &str) -> Value {
    json!({
        "modelArn": format!("arn:aws:bedrock:{region}::foundation-model/{}", m.id),
        "modelId": m.id,
        "modelName": m.display_name(),
        "providerName": m.provider,
        "inputModalities": ["TEXT"],
        "outputModalities": [output_modality(m)],
        "responseStreamingSupported": m.kind == ModelKind::Chat,
        "customizationsSupported": [],
        "inferenceTypesSupported": ["ON_DEMAND"],
        "modelLifecycle": { "status": "ACTIVE" },
    })
}

fn matches(m: &ModelConfig, f: &ListFilters) -> bool {
    f.by_provider.as_ref().is_none_or(|p| p.eq_ignore_ascii_case(&m.provider))
        && f.by_output_modality.as_ref().is_none_or(|o| o == output_modality(m))
        && f.by_inference_type.as_ref().is_none_or(|t| t == "ON_DEMAND")
        // No local model supports customization (fine-tuning) yet.
        && f.by_customization_type.is_none()
}

pub(crate) async fn list_foundation_models(
    State(state): State<AppState>,
    Query(filters): Query<ListFilters>,
) -> Response {
    let region = &state.gateway.config().server.region;
    let models: Vec<Value> = state
        .gateway
        .models()
        .map(|e| &e.config)
        .filter(|m| matches(m, &filters))
        .map(|m| summary(m, region))
        .collect();
    Json(json!({ "modelSummaries": models })).into_response()
}

pub(crate) async fn get_foundation_model(
    State(state): State<AppState>,
    Path(model_id): Path<String>,
) -> Result<Response, AwsError> {
    let entry = state.gateway.model(&model_id)?;
    let region = &state.gateway.config().server.region;
    Ok(Json(json!({ "modelDetails": summary(&entry.config, region) })).into_response())
}
