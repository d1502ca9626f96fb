//! Bedrock Agent Runtime for knowledge bases: Retrieve and
//! RetrieveAndGenerate, translated to and from `basalt-knowledge`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use basalt_knowledge::{
    Filter, Location, RagRequest, Rerank, RerankMetadata, RetrieveQuery, Retrieved, SearchType,
};
use basalt_types::guardrail::{GuardSource, GuardText, GuardrailRef};
use basalt_types::{Error, InferenceConfig};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::AwsError;
use crate::{parse_json, AppState, RequestId};

/// Parses a RetrievalFilter (a union: exactly one operator per level).
pub(crate) fn parse_filter(v: &Value) -> Result<Filter, Error> {
    let obj = v
        .as_object()
        .filter(|o| o.len() == 1)
        .ok_or_else(|| Error::validation("A retrieval filter must have exactly one operator."))?;
    let (op, arg) = obj
        .iter()
        .next()
        .ok_or_else(|| Error::validation("A retrieval filter must have exactly one operator."))?;
    let combine = |arg: &Value| -> Result<Vec<Filter>, Error> {
        let items = arg.as_array().filter(|a| a.len() >= 2).ok_or_else(|| {
            Error::validation(format!("{op} takes a list of at least 2 filters."))
        })?;
        items.iter().map(parse_filter).collect()
    };
    if op == "andAll" {
        return Ok(Filter::AndAll(combine(arg)?));
    }
    if op == "orAll" {
        return Ok(Filter::OrAll(combine(arg)?));
    }
    let key = arg
        .get("key")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty() && k.len() <= 100)
        .ok_or_else(|| Error::validation(format!("{op}.key (1-100 characters) is required.")))?
        .to_string();
    let value = arg
        .get("value")
        .cloned()
        .ok_or_else(|| Error::validation(format!("{op}.value is required.")))?;
    let number = |v: &Value| {
        v.as_f64()
            .ok_or_else(|| Error::validation(format!("{op}.value must be a number.")))
    };
    let list = |v: Value| match v {
        Value::Array(a) => Ok(a),
        _ => Err(Error::validation(format!("{op}.value must be a list."))),
    };
    let string = |v: &Value| {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| Error::validation(format!("{op}.value must be a string.")))
    };
    Ok(match op.as_str() {
        "equals" => Filter::Equals(key, value),
        "notEquals" => Filter::NotEquals(key, value),
        "greaterThan" => Filter::GreaterThan(key, number(&value)?),
        "greaterThanOrEquals" => Filter::GreaterThanOrEquals(key, number(&value)?),
        "lessThan" => Filter::LessThan(key, number(&value)?),
        "lessThanOrEquals" => Filter::LessThanOrEquals(key, number(&value)?),
        "in" => Filter::In(key, list(value)?),
        "notIn" => Filter::NotIn(key, list(value)?),
        "startsWith" => Filter::StartsWith(key, string(&value)?),
        "listContains" => Filter::ListContains(key, value),
        "stringContains" => Filter::StringContains(key, string(&value)?),
        other => {
            return Err(Error::validation(format!(
                "Unknown retrieval filter operator {other}."
            )))
        }
    })
}

/// Reads a KnowledgeBaseRetrievalConfiguration into a query.
fn retrieve_query(
    text: String,
    config: Option<&Value>,
    next_token: Option<&str>,
) -> Result<RetrieveQuery, Error> {
    let vector = config.and_then(|c| c.get("vectorSearchConfiguration"));
    let n = count(
        vector.and_then(|v| v.get("numberOfResults")),
        "numberOfResults",
        1..=100,
    )?
    .unwrap_or(5);
    let search_type = match vector
        .and_then(|v| v.get("overrideSearchType"))
        .and_then(Value::as_str)
    {
        None | Some("SEMANTIC") => SearchType::Semantic,
        Some("HYBRID") => SearchType::Hybrid,
        Some(other) => {
            return Err(Error::validation(format!(
                "overrideSearchType must be HYBRID or SEMANTIC, got {other}."
            )))
        }
    };
    let rerank = vector
        .and_then(|v| v.get("rerankingConfiguration"))
        .map(parse_vector_rerank)
        .transpose()?;
    if vector
        .and_then(|v| v.get("implicitFilterConfiguration"))
        .is_some()
    {
        return Err(Error::validation(
            "implicitFilterConfiguration is not supported by basalt.",
        ));
    }
    let filter = vector
        .and_then(|v| v.get("filter"))
        .map(parse_filter)
        .transpose()?;
    let offset = match next_token {
        None => 0,
        Some(t) => t
            .parse()
            .map_err(|_| Error::validation("nextToken is not one this service issued."))?,
    };
    Ok(RetrieveQuery {
        text,
        number_of_results: n,
        search_type,
        filter,
        offset,
        rerank,
    })
}

/// `{type: BEDROCK_RERANKING_MODEL, bedrockRerankingConfiguration: {modelConfiguration: {modelArn}, …}}`:
/// the part both Rerank and a retrieval's rerankingConfiguration share.
/// Returns the model and the `bedrockRerankingConfiguration` object.
fn rerank_model<'a>(v: &'a Value, at: &str) -> Result<(String, &'a Value), Error> {
    match v.get("type").and_then(Value::as_str) {
        Some("BEDROCK_RERANKING_MODEL") => {}
        other => {
            return Err(Error::validation(format!(
                "{at}.type must be BEDROCK_RERANKING_MODEL, got {}.",
                other.unwrap_or("nothing")
            )))
        }
    }
    let bedrock = v
        .get("bedrockRerankingConfiguration")
        .filter(|b| b.is_object())
        .ok_or_else(|| {
            Error::validation(format!("{at}.bedrockRerankingConfiguration is required."))
        })?;
    let model = bedrock
        .get("modelConfiguration")
        .and_then(|m| m.get("modelArn"))
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            Error::validation(format!(
                "{at}.bedrockRerankingConfiguration.modelConfiguration.modelArn is required."
            ))
        })?;
    Ok((model.to_string(), bedrock))
}

/// An optional integer count within `range`.
fn count(
    v: Option<&Value>,
    name: &str,
    range: std::ops::RangeInclusive<u64>,
) -> Result<Option<usize>, Error> {
    match v {
        None => Ok(None),
        Some(x) => match x.as_u64() {
            Some(n) if range.contains(&n) => Ok(Some(n as usize)),
            _ => Err(Error::validation(format!(
                "{name} must be an integer from {} to {}.",
                range.start(),
                range.end()
            ))),
        },
    }
}

/// A VectorSearchRerankingConfiguration.
fn parse_vector_rerank(v: &Value) -> Result<Rerank, Error> {
    let at = "rerankingConfiguration";
    let (model_id, bedrock) = rerank_model(v, at)?;
    let number_of_results = count(
        bedrock.get("numberOfRerankedResults"),
        "numberOfRerankedResults",
        1..=100,
    )?;
    let metadata = match bedrock.get("metadataConfiguration") {
        None => RerankMetadata::None,
        Some(m) => {
            let fields = |key: &str| -> Option<Result<Vec<String>, Error>> {
                let list = m.get("selectiveModeConfiguration")?.get(key)?;
                Some(
                    list.as_array()
                        .filter(|a| !a.is_empty() && a.len() <= 100)
                        .and_then(|a| {
                            a.iter()
                                .map(|f| f.get("fieldName")?.as_str().map(str::to_string))
                                .collect::<Option<Vec<_>>>()
                        })
                        .ok_or_else(|| {
                            Error::validation(format!(
                                "{key} takes 1 to 100 entries of {{fieldName}}."
                            ))
                        }),
                )
            };
            match m.get("selectionMode").and_then(Value::as_str) {
                Some("ALL") => RerankMetadata::All,
                Some("SELECTIVE") => match (fields("fieldsToInclude"), fields("fieldsToExclude")) {
                    (Some(i), None) => RerankMetadata::Include(i?),
                    (None, Some(e)) => RerankMetadata::Exclude(e?),
                    _ => {
                        return Err(Error::validation(
                            "selectiveModeConfiguration needs exactly one of fieldsToInclude and fieldsToExclude.",
                        ))
                    }
                },
                _ => {
                    return Err(Error::validation(
                        "metadataConfiguration.selectionMode must be ALL or SELECTIVE.",
                    ))
                }
            }
        }
    };
    Ok(Rerank {
        model_id,
        number_of_results,
        metadata,
    })
}

fn location_json(l: &Location) -> Value {
    match l {
        Location::S3 { uri } => json!({ "type": "S3", "s3Location": { "uri": uri } }),
        Location::Custom { id } => {
            json!({ "type": "CUSTOM", "customDocumentLocation": { "id": id } })
        }
    }
}

fn result_json(r: &Retrieved) -> Value {
    let mut v = json!({
        "content": { "type": "TEXT", "text": r.text },
        "location": location_json(&r.location),
        "score": r.score,
    });
    if !r.metadata.is_empty() {
        v["metadata"] = Value::Object(r.metadata.clone());
    }
    v
}

/// The knowledge base id from an id or an ARN (`…:knowledge-base/ID`).
fn kb_id(raw: &str) -> &str {
    raw.rsplit_once("knowledge-base/").map_or(raw, |(_, id)| id)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RetrieveBody {
    retrieval_query: Value,
    retrieval_configuration: Option<Value>,
    guardrail_configuration: Option<Value>,
    next_token: Option<String>,
}

/// A `guardrailConfiguration` (`{guardrailId, guardrailVersion}`).
fn guardrail_config(v: Option<&Value>) -> Result<Option<GuardrailRef>, Error> {
    let Some(v) = v else {
        return Ok(None);
    };
    let field = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| Error::validation(format!("guardrailConfiguration.{k} is required.")))
    };
    Ok(Some(GuardrailRef::new(
        field("guardrailId")?,
        field("guardrailVersion")?,
    )))
}

pub(crate) async fn retrieve(
    State(state): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Path(raw_id): Path<String>,
    body: Bytes,
) -> Result<Response, AwsError> {
    let body: RetrieveBody = parse_json(&body)?;
    let guardrail = guardrail_config(body.guardrail_configuration.as_ref())?;
    if body.retrieval_query.get("type").and_then(Value::as_str) == Some("IMAGE") {
        return Err(Error::validation("Image queries are not supported by basalt.").into());
    }
    let text = body
        .retrieval_query
        .get("text")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::validation("retrievalQuery.text is required."))?;
    if text.chars().count() > 20_000 {
        return Err(
            Error::validation("retrievalQuery.text is longer than 20000 characters.").into(),
        );
    }
    let q = retrieve_query(
        text.to_string(),
        body.retrieval_configuration.as_ref(),
        body.next_token.as_deref(),
    )?;
    // A guardrail checks the query; a blocked query retrieves nothing.
    if let Some(g) = &guardrail {
        let outcome = state
            .gateway
            .guardrails()
            .apply(
                &g.identifier,
                &g.version,
                GuardSource::Input,
                &[GuardText::plain(text)],
            )
            .await?;
        if outcome.blocked() {
            return Ok(
                Json(json!({ "retrievalResults": [], "guardrailAction": "INTERVENED" }))
                    .into_response(),
            );
        }
    }
    let (results, more) = state.knowledge.retrieve(kb_id(&raw_id), &q, &rid.0).await?;
    let mut out = json!({
        "retrievalResults": results.iter().map(result_json).collect::<Vec<_>>(),
    });
    if more {
        out["nextToken"] = Value::from((q.offset + q.number_of_results).to_string());
    }
    if guardrail.is_some() {
        out["guardrailAction"] = Value::from("NONE");
    }
    Ok(Json(out).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RerankBody {
    queries: Vec<Value>,
    sources: Vec<Value>,
    reranking_configuration: Value,
    next_token: Option<String>,
}

/// Rerank: scores inline documents against a query with a local model and
/// returns them best first.
pub(crate) async fn rerank(
    State(state): State<AppState>,
    Extension(rid): Extension<RequestId>,
    body: Bytes,
) -> Result<Response, AwsError> {
    let body: RerankBody = parse_json(&body)?;
    if body.next_token.is_some() {
        return Err(Error::validation("nextToken is not one this service issued.").into());
    }
    let [query] = &body.queries[..] else {
        return Err(Error::validation("queries must contain exactly one query.").into());
    };
    if query.get("type").and_then(Value::as_str) != Some("TEXT") {
        return Err(Error::validation("queries[0].type must be TEXT.").into());
    }
    let query = query
        .get("textQuery")
        .and_then(|t| t.get("text"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty() && t.chars().count() <= 32_000)
        .ok_or_else(|| {
            Error::validation("queries[0].textQuery.text (1-32000 characters) is required.")
        })?;
    let (model_id, bedrock) =
        rerank_model(&body.reranking_configuration, "rerankingConfiguration")?;
    let keep = count(bedrock.get("numberOfResults"), "numberOfResults", 1..=1000)?;
    if body.sources.is_empty() || body.sources.len() > 1000 {
        return Err(Error::validation("sources takes 1 to 1000 documents.").into());
    }
    let mut documents = Vec::with_capacity(body.sources.len());
    for (i, source) in body.sources.iter().enumerate() {
        let doc = source
            .get("inlineDocumentSource")
            .filter(|_| source.get("type").and_then(Value::as_str) == Some("INLINE"))
            .ok_or_else(|| {
                Error::validation(format!(
                    "sources[{i}] must be an INLINE source with inlineDocumentSource."
                ))
            })?;
        let text = match doc.get("type").and_then(Value::as_str) {
            Some("TEXT") => doc
                .get("textDocument")
                .and_then(|t| t.get("text"))
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty() && t.chars().count() <= 32_000)
                .map(str::to_string),
            Some("JSON") => doc
                .get("jsonDocument")
                .filter(|j| !j.is_null())
                .map(Value::to_string),
            _ => None,
        }
        .ok_or_else(|| {
            Error::validation(format!(
                "sources[{i}].inlineDocumentSource needs type TEXT with textDocument.text (1-32000 characters) or type JSON with jsonDocument."
            ))
        })?;
        documents.push((doc, text));
    }
    let scored = state
        .gateway
        .rerank(
            basalt_gateway::CallContext {
                api: "Rerank",
                request_id: rid.0.clone(),
            },
            basalt_types::RerankRequest {
                model_id,
                query: query.to_string(),
                documents: documents.iter().map(|(_, t)| t.clone()).collect(),
            },
        )
        .await?;
    let mut order: Vec<usize> = (0..documents.len()).collect();
    order.sort_by(|&a, &b| scored.scores[b].total_cmp(&scored.scores[a]));
    order.truncate(keep.unwrap_or(usize::MAX));
    let results: Vec<Value> = order
        .into_iter()
        .map(|i| {
            json!({
                "index": i,
                "relevanceScore": scored.scores[i],
                "document": documents[i].0,
            })
        })
        .collect();
    Ok(Json(json!({ "results": results })).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RagBody {
    input: Value,
    retrieve_and_generate_configuration: Option<Value>,
    session_id: Option<String>,
    session_configuration: Option<Value>,
}

fn text_inference(v: Option<&Value>) -> Result<InferenceConfig, Error> {
    let Some(t) = v.and_then(|v| v.get("textInferenceConfig")) else {
        return Ok(InferenceConfig::default());
    };
    let f = |name: &str| -> Result<Option<f32>, Error> {
        match t.get(name) {
            None => Ok(None),
            Some(x) => match x.as_f64() {
                Some(x) if (0.0..=1.0).contains(&x) => Ok(Some(x as f32)),
                _ => Err(Error::validation(format!(
                    "textInferenceConfig.{name} must be between 0 and 1."
                ))),
            },
        }
    };
    let max_tokens = match t.get("maxTokens") {
        None => None,
        Some(x) => match x.as_u64() {
            Some(n) if (1..=65_536).contains(&n) => Some(n as u32),
            _ => {
                return Err(Error::validation(
                    "textInferenceConfig.maxTokens must be from 1 to 65536.",
                ))
            }
        },
    };
    let stop_sequences = match t.get("stopSequences") {
        None => Vec::new(),
        Some(s) => serde_json::from_value::<Vec<String>>(s.clone())
            .ok()
            .filter(|s| s.len() <= 4)
            .ok_or_else(|| {
                Error::validation("textInferenceConfig.stopSequences takes up to 4 strings.")
            })?,
    };
    Ok(InferenceConfig {
        max_tokens,
        temperature: f("temperature")?,
        top_p: f("topP")?,
        top_k: None,
        stop_sequences,
        seed: None,
    })
}

pub(crate) async fn retrieve_and_generate(
    State(state): State<AppState>,
    Extension(rid): Extension<RequestId>,
    body: Bytes,
) -> Result<Response, AwsError> {
    let body: RagBody = parse_json(&body)?;
    if body.session_configuration.is_some() {
        return Err(
            Error::validation("sessionConfiguration (KMS) is not supported by basalt.").into(),
        );
    }
    let query = body
        .input
        .get("text")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::validation("input.text is required."))?
        .to_string();
    if query.chars().count() > 1000 {
        return Err(Error::validation("input.text is longer than 1000 characters.").into());
    }
    if let Some(sid) = &body.session_id {
        let ok = (2..=100).contains(&sid.len())
            && sid
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._:-".contains(c));
        if !ok {
            return Err(Error::validation(
                "sessionId must be 2-100 characters of [0-9a-zA-Z._:-].",
            )
            .into());
        }
    }
    let config = body
        .retrieve_and_generate_configuration
        .ok_or_else(|| Error::validation("retrieveAndGenerateConfiguration is required."))?;
    if config.get("type").and_then(Value::as_str) != Some("KNOWLEDGE_BASE") {
        return Err(Error::validation(
            "retrieveAndGenerateConfiguration.type must be KNOWLEDGE_BASE (EXTERNAL_SOURCES is not supported).",
        )
        .into());
    }
    let kb = config
        .get("knowledgeBaseConfiguration")
        .ok_or_else(|| Error::validation("knowledgeBaseConfiguration is required."))?;
    let kb_id = kb
        .get("knowledgeBaseId")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            Error::validation("knowledgeBaseConfiguration.knowledgeBaseId is required.")
        })?;
    let model = kb
        .get("modelArn")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::validation("knowledgeBaseConfiguration.modelArn is required."))?;
    let generation = kb.get("generationConfiguration");
    let guardrail = guardrail_config(generation.and_then(|g| g.get("guardrailConfiguration")))?;
    if kb.get("orchestrationConfiguration").is_some() {
        return Err(
            Error::validation("orchestrationConfiguration is not supported by basalt.").into(),
        );
    }
    let template = generation
        .and_then(|g| g.pointer("/promptTemplate/textPromptTemplate"))
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(t) = &template {
        if t.is_empty() || t.chars().count() > 4000 {
            return Err(
                Error::validation("textPromptTemplate must be 1 to 4000 characters.").into(),
            );
        }
    }
    let inference = text_inference(generation.and_then(|g| g.get("inferenceConfig")))?;
    let retrieval = retrieve_query(query.clone(), kb.get("retrievalConfiguration"), None)?;
    let req = RagRequest {
        kb_id: kb_id.to_string(),
        model_id: model.to_string(),
        query,
        retrieval,
        prompt_template: template,
        inference,
        session_id: body.session_id,
        guardrail,
    };
    let knowledge = Arc::clone(&state.knowledge);
    let resp = knowledge.retrieve_and_generate(req, &rid.0).await?;
    let citations: Vec<Value> = resp
        .citations
        .iter()
        .map(|c| {
            json!({
                "generatedResponsePart": { "textResponsePart": { "text": c.text, "span": { "start": c.start, "end": c.end } } },
                "retrievedReferences": c.references.iter().map(|r| {
                    let mut v = json!({ "content": { "type": "TEXT", "text": r.text }, "location": location_json(&r.location) });
                    if !r.metadata.is_empty() { v["metadata"] = Value::Object(r.metadata.clone()); }
                    v
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut out = json!({
        "output": { "text": resp.text },
        "sessionId": resp.session_id,
        "citations": citations,
    });
    if let Some(intervened) = resp.guardrail_intervened {
        out["guardrailAction"] = Value::from(if intervened { "INTERVENED" } else { "NONE" });
    }
    Ok(Json(out).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_recursively_and_reject_malformed_ones() {
        let f = parse_filter(&json!({"andAll": [
            {"equals": {"key": "genre", "value": "news"}},
            {"orAll": [{"greaterThan": {"key": "year", "value": 2020}}, {"in": {"key": "tag", "value": ["a", "b"]}}]}
        ]}))
        .unwrap();
        let Filter::AndAll(parts) = f else {
            panic!("not andAll")
        };
        assert_eq!(parts.len(), 2);
        assert!(parse_filter(&json!({"andAll": [{"equals": {"key": "a", "value": 1}}]})).is_err());
        assert!(parse_filter(
            &json!({"equals": {"key": "a", "value": 1}, "notEquals": {"key": "a", "value": 1}})
        )
        .is_err());
        assert!(parse_filter(&json!({"greaterThan": {"key": "a", "value": "x"}})).is_err());
        assert!(parse_filter(&json!({"fuzzy": {"key": "a", "value": 1}})).is_err());
    }

    #[test]
    fn knowledge_base_ids_come_from_ids_or_arns() {
        assert_eq!(kb_id("ABCDEFGHIJ"), "ABCDEFGHIJ");
        assert_eq!(
            kb_id("arn:aws:bedrock:us-east-1:000000000000:knowledge-base/ABCDEFGHIJ"),
            "ABCDEFGHIJ"
        );
    }
}
