//! Bedrock Agent control plane for knowledge bases: knowledge bases, data
//! sources, ingestion jobs and direct document ingestion, translated to and
//! from `basalt-knowledge` (shapes and status codes per botocore's
//! `bedrock-agent` model).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use basalt_knowledge::{
    Chunking, DataSource, DeletionPolicy, DocumentRecord, IngestionJob, InlineContent,
    InlineDocument, KnowledgeBase, NewDataSource, NewKnowledgeBase, SourceKind,
};
use basalt_types::Error;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::error::AwsError;
use crate::{parse_json, AppState, RequestId};

/// Account id in the ARNs basalt makes up (a 12-digit placeholder).
pub(crate) const ACCOUNT: &str = "000000000000";

pub(crate) fn timestamp(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&f).unwrap_or_default()
}

pub(crate) fn accepted(v: Value) -> Response {
    (StatusCode::ACCEPTED, Json(v)).into_response()
}

fn check_name(name: &str, what: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(Error::validation(format!(
            "{what} {name:?} is not valid: use 1-100 letters, digits, '_' or '-', starting with a letter or digit."
        )))
    }
}

fn check_description(d: Option<&String>) -> Result<(), Error> {
    match d {
        Some(d) if d.is_empty() || d.chars().count() > 200 => Err(Error::validation(
            "description must be 1 to 200 characters.",
        )),
        _ => Ok(()),
    }
}

/// `maxResults`/`nextToken` of list calls: a token is the offset of the next page.
pub(crate) fn page(
    max_results: Option<i64>,
    next_token: Option<&str>,
) -> Result<(usize, usize), Error> {
    let size = match max_results {
        None => 1000,
        Some(n) if (1..=1000).contains(&n) => n as usize,
        Some(n) => {
            return Err(Error::validation(format!(
                "maxResults must be between 1 and 1000, got {n}."
            )))
        }
    };
    let offset = match next_token {
        None => 0,
        Some(t) => t
            .parse()
            .map_err(|_| Error::validation("nextToken is not one this service issued."))?,
    };
    Ok((offset, size))
}

pub(crate) fn paged<T>(items: Vec<T>, offset: usize, size: usize) -> (Vec<T>, Option<String>) {
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(offset).take(size).collect();
    let next = (offset + size < total).then(|| (offset + size).to_string());
    (page, next)
}

pub(crate) fn with_next(mut v: Value, next: Option<String>) -> Value {
    if let Some(n) = next {
        v["nextToken"] = Value::from(n);
    }
    v
}

// ---------- knowledge bases ----------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KnowledgeBaseBody {
    name: String,
    description: Option<String>,
    role_arn: String,
    knowledge_base_configuration: Value,
    storage_configuration: Option<Value>,
    #[serde(default)]
    #[expect(dead_code, reason = "read by the idempotency middleware")]
    client_token: Option<String>,
    tags: Option<Value>,
    metadata_configurations: Option<Value>,
}

impl KnowledgeBaseBody {
    fn into_new(self) -> Result<NewKnowledgeBase, Error> {
        check_name(&self.name, "name")?;
        check_description(self.description.as_ref())?;
        if self.role_arn.len() > 2048 {
            return Err(Error::validation("roleArn is longer than 2048 characters."));
        }
        let config = &self.knowledge_base_configuration;
        match config.get("type").and_then(Value::as_str) {
            Some("VECTOR") => {}
            Some(other) => {
                return Err(Error::validation(format!(
                    "knowledgeBaseConfiguration.type {other} is not supported; basalt serves VECTOR knowledge bases."
                )))
            }
            None => return Err(Error::validation("knowledgeBaseConfiguration.type is required.")),
        }
        let model = config
            .pointer("/vectorKnowledgeBaseConfiguration/embeddingModelArn")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                Error::validation(
                    "knowledgeBaseConfiguration.vectorKnowledgeBaseConfiguration.embeddingModelArn is required.",
                )
            })?
            .to_string();
        let mut echo = json!({
            "knowledgeBaseConfiguration": self.knowledge_base_configuration,
        });
        if let Some(s) = self.storage_configuration {
            echo["storageConfiguration"] = s;
        }
        if let Some(t) = self.tags {
            echo["tags"] = t;
        }
        if let Some(m) = self.metadata_configurations {
            echo["metadataConfigurations"] = m;
        }
        Ok(NewKnowledgeBase {
            name: self.name,
            description: self.description,
            role_arn: self.role_arn,
            embedding_model: model,
            echo,
        })
    }
}

fn kb_arn(state: &AppState, id: &str) -> String {
    format!(
        "arn:aws:bedrock:{}:{ACCOUNT}:knowledge-base/{id}",
        state.gateway.config().server.region
    )
}

fn kb_json(state: &AppState, kb: &KnowledgeBase) -> Value {
    let mut v = json!({
        "knowledgeBaseId": kb.id,
        "name": kb.name,
        "knowledgeBaseArn": kb_arn(state, &kb.id),
        "roleArn": kb.role_arn,
        "knowledgeBaseConfiguration": kb.echo["knowledgeBaseConfiguration"],
        "status": kb.status,
        "createdAt": timestamp(kb.created_at_ms),
        "updatedAt": timestamp(kb.updated_at_ms),
    });
    if let Some(d) = &kb.description {
        v["description"] = Value::from(d.clone());
    }
    for key in ["storageConfiguration", "metadataConfigurations"] {
        if let Some(s) = kb.echo.get(key) {
            v[key] = s.clone();
        }
    }
    v
}

pub(crate) async fn create_knowledge_base(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, AwsError> {
    let body: KnowledgeBaseBody = parse_json(&body)?;
    let kb = state.knowledge.create_knowledge_base(body.into_new()?)?;
    Ok(accepted(json!({ "knowledgeBase": kb_json(&state, &kb) })))
}

pub(crate) async fn get_knowledge_base(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AwsError> {
    let kb = state.knowledge.knowledge_base(&id)?;
    Ok(Json(json!({ "knowledgeBase": kb_json(&state, &kb) })).into_response())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ListBody {
    max_results: Option<i64>,
    next_token: Option<String>,
}

fn list_body(body: &[u8]) -> Result<ListBody, Error> {
    if body.is_empty() {
        Ok(ListBody::default())
    } else {
        parse_json(body)
    }
}

pub(crate) async fn list_knowledge_bases(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, AwsError> {
    let b = list_body(&body)?;
    let (offset, size) = page(b.max_results, b.next_token.as_deref())?;
    let (items, next) = paged(state.knowledge.knowledge_bases()?, offset, size);
    let summaries: Vec<Value> = items
        .iter()
        .map(|kb| {
            let mut v = json!({
                "knowledgeBaseId": kb.id, "name": kb.name, "status": kb.status,
                "updatedAt": timestamp(kb.updated_at_ms),
            });
            if let Some(d) = &kb.description {
                v["description"] = Value::from(d.clone());
            }
            v
        })
        .collect();
    Ok(Json(with_next(
        json!({ "knowledgeBaseSummaries": summaries }),
        next,
    ))
    .into_response())
}

pub(crate) async fn update_knowledge_base(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, AwsError> {
    let body: KnowledgeBaseBody = parse_json(&body)?;
    let kb = state
        .knowledge
        .update_knowledge_base(&id, body.into_new()?)?;
    Ok(accepted(json!({ "knowledgeBase": kb_json(&state, &kb) })))
}

pub(crate) async fn delete_knowledge_base(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AwsError> {
    let knowledge = Arc::clone(&state.knowledge);
    let kb = crate::blocking(move || knowledge.delete_knowledge_base(&id)).await?;
    Ok(accepted(
        json!({ "knowledgeBaseId": kb.id, "status": kb.status }),
    ))
}

// ---------- data sources ----------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DataSourceBody {
    name: String,
    description: Option<String>,
    data_source_configuration: Value,
    data_deletion_policy: Option<String>,
    vector_ingestion_configuration: Option<Value>,
    server_side_encryption_configuration: Option<Value>,
    #[serde(default)]
    #[expect(dead_code, reason = "read by the idempotency middleware")]
    client_token: Option<String>,
}

fn int_field(v: &Value, path: &str, min: i64, max: i64) -> Result<u32, Error> {
    let name = path.trim_start_matches('/').replace('/', ".");
    let n = v
        .pointer(path)
        .ok_or_else(|| Error::validation(format!("chunkingConfiguration.{name} is required.")))?
        .as_i64()
        .ok_or_else(|| {
            Error::validation(format!("chunkingConfiguration.{name} must be an integer."))
        })?;
    if !(min..=max).contains(&n) {
        return Err(Error::validation(format!(
            "chunkingConfiguration.{name} must be between {min} and {max}, got {n}."
        )));
    }
    Ok(n as u32)
}

/// Parses a chunkingConfiguration with botocore's limits.
fn chunking(v: Option<&Value>) -> Result<Chunking, Error> {
    let Some(c) = v else {
        return Ok(Chunking::DEFAULT);
    };
    match c.get("chunkingStrategy").and_then(Value::as_str) {
        Some("FIXED_SIZE") => Ok(Chunking::FixedSize {
            max_tokens: int_field(c, "/fixedSizeChunkingConfiguration/maxTokens", 1, 8192)?,
            overlap_percentage: int_field(
                c,
                "/fixedSizeChunkingConfiguration/overlapPercentage",
                1,
                99,
            )?,
        }),
        Some("HIERARCHICAL") => {
            let levels = c
                .pointer("/hierarchicalChunkingConfiguration/levelConfigurations")
                .and_then(Value::as_array)
                .filter(|l| l.len() == 2)
                .ok_or_else(|| {
                    Error::validation(
                        "hierarchicalChunkingConfiguration.levelConfigurations needs exactly 2 levels (parent, then child).",
                    )
                })?;
            let parent = int_field(&levels[0], "/maxTokens", 1, 8192)?;
            let child = int_field(&levels[1], "/maxTokens", 1, 8192)?;
            if child >= parent {
                return Err(Error::validation(
                    "The child level's maxTokens must be smaller than the parent level's.",
                ));
            }
            Ok(Chunking::Hierarchical {
                parent_max_tokens: parent,
                child_max_tokens: child,
                overlap_tokens: int_field(
                    c,
                    "/hierarchicalChunkingConfiguration/overlapTokens",
                    1,
                    i64::from(child.saturating_sub(1).max(1)),
                )?,
            })
        }
        Some("SEMANTIC") => Ok(Chunking::Semantic {
            max_tokens: int_field(c, "/semanticChunkingConfiguration/maxTokens", 1, 8192)?,
            buffer_size: int_field(c, "/semanticChunkingConfiguration/bufferSize", 0, 1)?,
            breakpoint_percentile_threshold: int_field(
                c,
                "/semanticChunkingConfiguration/breakpointPercentileThreshold",
                50,
                99,
            )?,
        }),
        Some("NONE") => Ok(Chunking::None),
        Some(other) => Err(Error::validation(format!(
            "chunkingStrategy must be FIXED_SIZE, HIERARCHICAL, SEMANTIC or NONE, got {other}."
        ))),
        None => Err(Error::validation(
            "chunkingConfiguration.chunkingStrategy is required.",
        )),
    }
}

fn source_kind(v: &Value) -> Result<SourceKind, Error> {
    match v.get("type").and_then(Value::as_str) {
        Some("S3") => {
            let arn = v
                .pointer("/s3Configuration/bucketArn")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::validation("s3Configuration.bucketArn is required."))?;
            let bucket = arn
                .strip_prefix("arn:aws:s3:::")
                .filter(|b| !b.is_empty() && !b.contains('/'))
                .ok_or_else(|| {
                    Error::validation(format!("bucketArn {arn:?} is not an S3 bucket ARN (arn:aws:s3:::name)."))
                })?;
            let prefixes: Vec<String> = match v.pointer("/s3Configuration/inclusionPrefixes") {
                None => Vec::new(),
                Some(p) => serde_json::from_value(p.clone()).map_err(|_| {
                    Error::validation("s3Configuration.inclusionPrefixes must be a list of strings.")
                })?,
            };
            if prefixes.len() > 1 {
                return Err(Error::validation("s3Configuration.inclusionPrefixes takes at most 1 prefix."));
            }
            Ok(SourceKind::S3 {
                bucket: bucket.to_string(),
                prefixes,
            })
        }
        Some("CUSTOM") => Ok(SourceKind::Custom),
        Some(other) => Err(Error::validation(format!(
            "dataSourceConfiguration.type {other} is not supported; basalt reads S3 (a configured directory) and CUSTOM data sources."
        ))),
        None => Err(Error::validation("dataSourceConfiguration.type is required.")),
    }
}

impl DataSourceBody {
    fn into_new(self) -> Result<NewDataSource, Error> {
        check_name(&self.name, "name")?;
        check_description(self.description.as_ref())?;
        let source = source_kind(&self.data_source_configuration)?;
        let vic = self.vector_ingestion_configuration.as_ref();
        if let Some(v) = vic {
            for unsupported in [
                "customTransformationConfiguration",
                "parsingConfiguration",
                "contextEnrichmentConfiguration",
            ] {
                if v.get(unsupported).is_some() {
                    return Err(Error::validation(format!(
                        "vectorIngestionConfiguration.{unsupported} is not supported by basalt."
                    )));
                }
            }
        }
        let chunking = chunking(vic.and_then(|v| v.get("chunkingConfiguration")))?;
        let deletion_policy = match self.data_deletion_policy.as_deref() {
            None | Some("DELETE") => DeletionPolicy::Delete,
            Some("RETAIN") => DeletionPolicy::Retain,
            Some(other) => {
                return Err(Error::validation(format!(
                    "dataDeletionPolicy must be DELETE or RETAIN, got {other}."
                )))
            }
        };
        let mut echo = json!({ "dataSourceConfiguration": self.data_source_configuration });
        if let Some(v) = self.vector_ingestion_configuration {
            echo["vectorIngestionConfiguration"] = v;
        }
        if let Some(v) = self.server_side_encryption_configuration {
            echo["serverSideEncryptionConfiguration"] = v;
        }
        Ok(NewDataSource {
            name: self.name,
            description: self.description,
            source,
            chunking,
            deletion_policy,
            echo,
        })
    }
}

fn policy(p: DeletionPolicy) -> &'static str {
    match p {
        DeletionPolicy::Delete => "DELETE",
        DeletionPolicy::Retain => "RETAIN",
    }
}

fn ds_json(ds: &DataSource) -> Value {
    let mut v = json!({
        "knowledgeBaseId": ds.kb_id,
        "dataSourceId": ds.id,
        "name": ds.name,
        "status": ds.status,
        "dataSourceConfiguration": ds.echo["dataSourceConfiguration"],
        "dataDeletionPolicy": policy(ds.deletion_policy),
        "createdAt": timestamp(ds.created_at_ms),
        "updatedAt": timestamp(ds.updated_at_ms),
    });
    if let Some(d) = &ds.description {
        v["description"] = Value::from(d.clone());
    }
    for key in [
        "vectorIngestionConfiguration",
        "serverSideEncryptionConfiguration",
    ] {
        if let Some(s) = ds.echo.get(key) {
            v[key] = s.clone();
        }
    }
    v
}

pub(crate) async fn create_data_source(
    State(state): State<AppState>,
    Path(kb_id): Path<String>,
    body: Bytes,
) -> Result<Response, AwsError> {
    let body: DataSourceBody = parse_json(&body)?;
    let ds = state
        .knowledge
        .create_data_source(&kb_id, body.into_new()?)?;
    Ok(Json(json!({ "dataSource": ds_json(&ds) })).into_response())
}

pub(crate) async fn get_data_source(
    State(state): State<AppState>,
    Path((kb_id, id)): Path<(String, String)>,
) -> Result<Response, AwsError> {
    let ds = state.knowledge.data_source(&kb_id, &id)?;
    Ok(Json(json!({ "dataSource": ds_json(&ds) })).into_response())
}

pub(crate) async fn list_data_sources(
    State(state): State<AppState>,
    Path(kb_id): Path<String>,
    body: Bytes,
) -> Result<Response, AwsError> {
    let b = list_body(&body)?;
    let (offset, size) = page(b.max_results, b.next_token.as_deref())?;
    let (items, next) = paged(state.knowledge.data_sources(&kb_id)?, offset, size);
    let summaries: Vec<Value> = items
        .iter()
        .map(|ds| {
            let mut v = json!({
                "knowledgeBaseId": ds.kb_id, "dataSourceId": ds.id, "name": ds.name,
                "status": ds.status, "updatedAt": timestamp(ds.updated_at_ms),
            });
            if let Some(d) = &ds.description {
                v["description"] = Value::from(d.clone());
            }
            v
        })
        .collect();
    Ok(Json(with_next(json!({ "dataSourceSummaries": summaries }), next)).into_response())
}

pub(crate) async fn update_data_source(
    State(state): State<AppState>,
    Path((kb_id, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, AwsError> {
    let body: DataSourceBody = parse_json(&body)?;
    let ds = state
        .knowledge
        .update_data_source(&kb_id, &id, body.into_new()?)?;
    Ok(Json(json!({ "dataSource": ds_json(&ds) })).into_response())
}

pub(crate) async fn delete_data_source(
    State(state): State<AppState>,
    Path((kb_id, id)): Path<(String, String)>,
) -> Result<Response, AwsError> {
    let knowledge = Arc::clone(&state.knowledge);
    let ds = crate::blocking(move || knowledge.delete_data_source(&kb_id, &id)).await?;
    Ok(accepted(
        json!({ "knowledgeBaseId": ds.kb_id, "dataSourceId": ds.id, "status": ds.status }),
    ))
}

// ---------- ingestion jobs ----------

fn stats_json(job: &IngestionJob) -> Value {
    let s = &job.statistics;
    json!({
        "numberOfDocumentsScanned": s.documents_scanned,
        "numberOfMetadataDocumentsScanned": s.metadata_documents_scanned,
        "numberOfNewDocumentsIndexed": s.new_documents_indexed,
        "numberOfModifiedDocumentsIndexed": s.modified_documents_indexed,
        "numberOfMetadataDocumentsModified": s.metadata_documents_modified,
        "numberOfDocumentsDeleted": s.documents_deleted,
        "numberOfDocumentsFailed": s.documents_failed,
        "numberOfDocumentsSkipped": s.documents_skipped,
    })
}

fn job_json(job: &IngestionJob) -> Value {
    let mut v = json!({
        "knowledgeBaseId": job.kb_id,
        "dataSourceId": job.ds_id,
        "ingestionJobId": job.id,
        "status": job.status,
        "statistics": stats_json(job),
        "startedAt": timestamp(job.started_at_ms),
        "updatedAt": timestamp(job.updated_at_ms),
    });
    if let Some(d) = &job.description {
        v["description"] = Value::from(d.clone());
    }
    if !job.failure_reasons.is_empty() {
        v["failureReasons"] = json!(job.failure_reasons);
    }
    v
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct StartJobBody {
    description: Option<String>,
    #[serde(default)]
    #[expect(dead_code, reason = "read by the idempotency middleware")]
    client_token: Option<String>,
}

pub(crate) async fn start_ingestion_job(
    State(state): State<AppState>,
    Path((kb_id, ds_id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, AwsError> {
    let body: StartJobBody = if body.is_empty() {
        StartJobBody::default()
    } else {
        parse_json(&body)?
    };
    check_description(body.description.as_ref())?;
    let job = state
        .knowledge
        .start_ingestion_job(&kb_id, &ds_id, body.description)?;
    Ok(accepted(json!({ "ingestionJob": job_json(&job) })))
}

pub(crate) async fn get_ingestion_job(
    State(state): State<AppState>,
    Path((kb_id, ds_id, id)): Path<(String, String, String)>,
) -> Result<Response, AwsError> {
    let job = state.knowledge.ingestion_job(&kb_id, &ds_id, &id)?;
    Ok(Json(json!({ "ingestionJob": job_json(&job) })).into_response())
}

pub(crate) async fn stop_ingestion_job(
    State(state): State<AppState>,
    Path((kb_id, ds_id, id)): Path<(String, String, String)>,
) -> Result<Response, AwsError> {
    let job = state.knowledge.stop_ingestion_job(&kb_id, &ds_id, &id)?;
    Ok(accepted(json!({ "ingestionJob": job_json(&job) })))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ListJobsBody {
    max_results: Option<i64>,
    next_token: Option<String>,
    filters: Option<Vec<JobFilter>>,
    sort_by: Option<JobSort>,
}

#[derive(Deserialize)]
struct JobFilter {
    attribute: String,
    operator: String,
    values: Vec<String>,
}

#[derive(Deserialize)]
struct JobSort {
    attribute: String,
    order: String,
}

pub(crate) async fn list_ingestion_jobs(
    State(state): State<AppState>,
    Path((kb_id, ds_id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, AwsError> {
    let b: ListJobsBody = if body.is_empty() {
        ListJobsBody::default()
    } else {
        parse_json(&body)?
    };
    let (offset, size) = page(b.max_results, b.next_token.as_deref())?;
    let mut jobs = state.knowledge.ingestion_jobs(&kb_id, &ds_id)?;
    if let Some(filters) = &b.filters {
        let [f] = filters.as_slice() else {
            return Err(Error::validation("filters takes exactly 1 filter.").into());
        };
        if f.attribute != "STATUS" || f.operator != "EQ" {
            return Err(Error::validation(
                "Only the filter attribute STATUS with operator EQ is supported.",
            )
            .into());
        }
        jobs.retain(|j| f.values.contains(&j.status));
    }
    if let Some(sort) = &b.sort_by {
        match sort.attribute.as_str() {
            "STATUS" => jobs.sort_by(|a, b| a.status.cmp(&b.status)),
            "STARTED_AT" => jobs.sort_by_key(|j| j.started_at_ms),
            other => {
                return Err(Error::validation(format!(
                    "sortBy.attribute {other} is not STATUS or STARTED_AT."
                ))
                .into())
            }
        }
        match sort.order.as_str() {
            "ASCENDING" => {}
            "DESCENDING" => jobs.reverse(),
            other => {
                return Err(Error::validation(format!(
                    "sortBy.order {other} is not ASCENDING or DESCENDING."
                ))
                .into())
            }
        }
    }
    let (items, next) = paged(jobs, offset, size);
    let summaries: Vec<Value> = items.iter().map(job_json).collect();
    Ok(Json(with_next(
        json!({ "ingestionJobSummaries": summaries }),
        next,
    ))
    .into_response())
}

// ---------- documents (CUSTOM data sources) ----------

/// A document as botocore's `KnowledgeBaseDocumentDetail`, identified as its
/// data source identifies documents (an S3 data source by `s3://bucket/key`).
fn doc_json(d: &DocumentRecord, source: &SourceKind) -> Value {
    let identifier = match source {
        SourceKind::S3 { bucket, .. } => {
            json!({ "dataSourceType": "S3", "s3": { "uri": format!("s3://{bucket}/{}", d.key) } })
        }
        SourceKind::Custom => {
            json!({ "dataSourceType": "CUSTOM", "custom": { "id": d.key } })
        }
    };
    let mut v = json!({
        "knowledgeBaseId": d.kb_id,
        "dataSourceId": d.ds_id,
        "status": d.status,
        "identifier": identifier,
        "updatedAt": timestamp(d.updated_at_ms),
    });
    if let Some(r) = &d.status_reason {
        v["statusReason"] = Value::from(r.clone());
    }
    v
}

fn metadata_attributes(v: Option<&Value>) -> Result<Map<String, Value>, Error> {
    let Some(meta) = v else {
        return Ok(Map::new());
    };
    if meta.get("type").and_then(Value::as_str) != Some("IN_LINE_ATTRIBUTE") {
        return Err(Error::validation(
            "metadata.type must be IN_LINE_ATTRIBUTE (S3_LOCATION metadata is not supported).",
        ));
    }
    let attrs = meta
        .get("inlineAttributes")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::validation("metadata.inlineAttributes is required."))?;
    let mut out = Map::new();
    for a in attrs {
        let key = a
            .get("key")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty() && k.len() <= 200)
            .ok_or_else(|| {
                Error::validation("Every inline attribute needs a key of 1-200 characters.")
            })?;
        let value = a
            .get("value")
            .ok_or_else(|| Error::validation(format!("attribute {key}: value is required.")))?;
        let typed = match value.get("type").and_then(Value::as_str) {
            Some("STRING") => value.get("stringValue"),
            Some("NUMBER") => value.get("numberValue"),
            Some("BOOLEAN") => value.get("booleanValue"),
            Some("STRING_LIST") => value.get("stringListValue"),
            _ => None,
        }
        .ok_or_else(|| {
            Error::validation(format!(
                "attribute {key}: value needs a type and the matching field."
            ))
        })?;
        out.insert(key.to_string(), typed.clone());
    }
    Ok(out)
}

fn inline_document(d: &Value) -> Result<InlineDocument, Error> {
    let content = d
        .get("content")
        .ok_or_else(|| Error::validation("Every document needs content."))?;
    if content.get("dataSourceType").and_then(Value::as_str) != Some("CUSTOM") {
        return Err(Error::validation(
            "content.dataSourceType must be CUSTOM (documents of S3 data sources are synced with StartIngestionJob).",
        ));
    }
    let custom = content
        .get("custom")
        .ok_or_else(|| Error::validation("content.custom is required."))?;
    let id = custom
        .pointer("/customDocumentIdentifier/id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty() && id.len() <= 2048)
        .ok_or_else(|| {
            Error::validation("custom.customDocumentIdentifier.id (1-2048 characters) is required.")
        })?;
    if custom.get("sourceType").and_then(Value::as_str) != Some("IN_LINE") {
        return Err(Error::validation(
            "custom.sourceType must be IN_LINE (S3_LOCATION is not supported).",
        ));
    }
    let inline = custom
        .get("inlineContent")
        .ok_or_else(|| Error::validation("custom.inlineContent is required."))?;
    let content = match inline.get("type").and_then(Value::as_str) {
        Some("TEXT") => InlineContent::Text(
            inline
                .pointer("/textContent/data")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    Error::validation("inlineContent.textContent.data is required and non-empty.")
                })?
                .to_string(),
        ),
        Some("BYTE") => {
            use base64::Engine as _;
            let mime = inline
                .pointer("/byteContent/mimeType")
                .and_then(Value::as_str)
                .unwrap_or("");
            let data = inline
                .pointer("/byteContent/data")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::validation("inlineContent.byteContent.data is required."))?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data)
                .map_err(|_| Error::validation("inlineContent.byteContent.data is not base64."))?;
            let ext = match mime {
                "text/plain" => "txt",
                "text/markdown" => "md",
                "text/html" => "html",
                "text/csv" => "csv",
                "application/json" => "json",
                "application/pdf" => "pdf",
                other => {
                    return Err(Error::validation(format!(
                        "byteContent.mimeType {other:?} is not supported."
                    )))
                }
            };
            // Parsed when the document is ingested: one that does not parse
            // is a FAILED document, not a failed request.
            InlineContent::File {
                name: format!("inline.{ext}"),
                bytes,
            }
        }
        _ => {
            return Err(Error::validation(
                "inlineContent.type must be TEXT or BYTE.",
            ))
        }
    };
    Ok(InlineDocument {
        id: id.to_string(),
        content,
        metadata: metadata_attributes(d.get("metadata"))?,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IngestDocsBody {
    documents: Vec<Value>,
    #[serde(default)]
    #[expect(dead_code, reason = "read by the idempotency middleware")]
    client_token: Option<String>,
}

pub(crate) async fn ingest_documents(
    State(state): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Path((kb_id, ds_id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, AwsError> {
    let body: IngestDocsBody = parse_json(&body)?;
    if !(1..=10).contains(&body.documents.len()) {
        return Err(Error::validation("documents takes 1 to 10 documents.").into());
    }
    let docs = body
        .documents
        .iter()
        .map(inline_document)
        .collect::<Result<Vec<_>, _>>()?;
    let knowledge = Arc::clone(&state.knowledge);
    let details = knowledge
        .ingest_documents(&kb_id, &ds_id, docs, &rid.0)
        .await?;
    let details: Vec<Value> = details
        .iter()
        .map(|d| doc_json(d, &SourceKind::Custom))
        .collect();
    Ok(accepted(json!({ "documentDetails": details })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DocIdsBody {
    document_identifiers: Vec<Value>,
    #[serde(default)]
    #[expect(dead_code, reason = "read by the idempotency middleware")]
    client_token: Option<String>,
}

/// Document keys from identifiers: custom ids, or S3 URIs of this data
/// source's bucket (the key is the path after the bucket).
/// The document keys of `documentIdentifiers`, each of the kind `source`
/// identifies documents by (an S3 one by `s3://` and its own bucket).
fn doc_keys(ids: &[Value], source: &SourceKind) -> Result<Vec<String>, Error> {
    if !(1..=10).contains(&ids.len()) {
        return Err(Error::validation(
            "documentIdentifiers takes 1 to 10 identifiers.",
        ));
    }
    ids.iter()
        .map(
            |i| match (i.get("dataSourceType").and_then(Value::as_str), source) {
                (Some("CUSTOM"), SourceKind::Custom) => i
                    .pointer("/custom/id")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| Error::validation("custom.id is required.")),
                (Some("S3"), SourceKind::S3 { bucket, .. }) => i
                    .pointer("/s3/uri")
                    .and_then(Value::as_str)
                    .and_then(|u| u.strip_prefix("s3://"))
                    .and_then(|u| u.split_once('/'))
                    .filter(|(b, key)| b == bucket && !key.is_empty())
                    .map(|(_, key)| key.to_string())
                    .ok_or_else(|| {
                        Error::validation(format!(
                            "s3.uri must be s3://{bucket}/KEY, in this data source's bucket."
                        ))
                    }),
                (Some("S3"), SourceKind::Custom) => Err(Error::validation(
                    "This is a CUSTOM data source: identify documents by custom.id.",
                )),
                (Some("CUSTOM"), SourceKind::S3 { .. }) => Err(Error::validation(
                    "This is an S3 data source: identify documents by s3.uri.",
                )),
                _ => Err(Error::validation("dataSourceType must be CUSTOM or S3.")),
            },
        )
        .collect()
}

pub(crate) async fn get_documents(
    State(state): State<AppState>,
    Path((kb_id, ds_id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, AwsError> {
    let body: DocIdsBody = parse_json(&body)?;
    let ds = state.knowledge.data_source(&kb_id, &ds_id)?;
    let mut details = Vec::new();
    for key in doc_keys(&body.document_identifiers, &ds.source)? {
        details.push(doc_json(
            &state.knowledge.document(&kb_id, &ds_id, &key)?,
            &ds.source,
        ));
    }
    Ok(Json(json!({ "documentDetails": details })).into_response())
}

pub(crate) async fn list_documents(
    State(state): State<AppState>,
    Path((kb_id, ds_id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, AwsError> {
    let b = list_body(&body)?;
    let (offset, size) = page(b.max_results, b.next_token.as_deref())?;
    let ds = state.knowledge.data_source(&kb_id, &ds_id)?;
    let docs = state
        .knowledge
        .documents(&kb_id, &ds_id, offset, size + 1)?;
    let more = docs.len() > size;
    let details: Vec<Value> = docs
        .iter()
        .take(size)
        .map(|d| doc_json(d, &ds.source))
        .collect();
    let next = more.then(|| (offset + size).to_string());
    Ok(Json(with_next(json!({ "documentDetails": details }), next)).into_response())
}

pub(crate) async fn delete_documents(
    State(state): State<AppState>,
    Path((kb_id, ds_id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, AwsError> {
    let body: DocIdsBody = parse_json(&body)?;
    let ds = state.knowledge.data_source(&kb_id, &ds_id)?;
    let names = doc_keys(&body.document_identifiers, &ds.source)?;
    let done = state.knowledge.delete_documents(&kb_id, &ds_id, &names)?;
    let details: Vec<Value> = done.iter().map(|d| doc_json(d, &ds.source)).collect();
    Ok(accepted(json!({ "documentDetails": details })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunking_limits_follow_botocore() {
        let c = |v: Value| chunking(Some(&v));
        assert_eq!(
            c(json!({"chunkingStrategy": "NONE"})).unwrap(),
            Chunking::None
        );
        assert!(c(json!({"chunkingStrategy": "FIXED_SIZE", "fixedSizeChunkingConfiguration": {"maxTokens": 100, "overlapPercentage": 0}})).is_err());
        assert!(c(json!({"chunkingStrategy": "SEMANTIC", "semanticChunkingConfiguration": {"maxTokens": 100, "bufferSize": 2, "breakpointPercentileThreshold": 90}})).is_err());
        assert!(c(json!({"chunkingStrategy": "HIERARCHICAL", "hierarchicalChunkingConfiguration": {"levelConfigurations": [{"maxTokens": 100}], "overlapTokens": 10}})).is_err());
        assert_eq!(
            c(json!({"chunkingStrategy": "HIERARCHICAL", "hierarchicalChunkingConfiguration": {"levelConfigurations": [{"maxTokens": 300}, {"maxTokens": 60}], "overlapTokens": 10}})).unwrap(),
            Chunking::Hierarchical { parent_max_tokens: 300, child_max_tokens: 60, overlap_tokens: 10 }
        );
        assert!(c(json!({"chunkingStrategy": "BOGUS"})).is_err());
        assert_eq!(chunking(None).unwrap(), Chunking::DEFAULT);
    }

    #[test]
    fn timestamps_are_iso8601_with_millis() {
        assert_eq!(timestamp(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn pages_use_offsets_as_tokens() {
        let (items, next) = paged((0..5).collect::<Vec<_>>(), 0, 2);
        assert_eq!((items, next.as_deref()), (vec![0, 1], Some("2")));
        let (items, next) = paged((0..5).collect::<Vec<_>>(), 4, 2);
        assert_eq!((items, next), (vec![4], None));
        assert!(page(Some(0), None).is_err());
        assert!(page(None, Some("x")).is_err());
    }
}
