//! Guardrails on the wire: the Bedrock control plane (CreateGuardrail,
//! GetGuardrail, ListGuardrails, UpdateGuardrail, DeleteGuardrail,
//! CreateGuardrailVersion), Bedrock Runtime ApplyGuardrail, and the
//! assessment and trace shapes that Converse and InvokeModel return — all per
//! botocore's `bedrock` and `bedrock-runtime` models.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use basalt_guardrails::policy::{
    ContentFilter, GroundingFilter, PiiEntity, RegexEntity, Strength, Topic, Word,
};
use basalt_guardrails::{Action, Guardrail, NewGuardrail, Policy, Sides};
use basalt_types::guardrail::{
    Assessment, FindingAction, GuardSource, GuardText, GuardrailOutcome, GuardrailRef,
    GuardrailTrace, Qualifier, StreamMode, TraceLevel,
};
use basalt_types::Error;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::bedrock_agent::{accepted, timestamp, ACCOUNT};
use crate::error::AwsError;
use crate::{blocking, parse_json, AppState};

pub(crate) fn arn(id: &str) -> String {
    format!("arn:aws:bedrock:us-east-1:{ACCOUNT}:guardrail/{id}")
}

// ---------- configuration wire shapes ----------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireSides {
    input_action: Option<String>,
    output_action: Option<String>,
    input_enabled: Option<bool>,
    output_enabled: Option<bool>,
}

impl WireSides {
    fn sides(&self, default: Action, field: &str, anonymize: bool) -> Result<Sides, Error> {
        let parse = |v: &Option<String>, name: &str| match v {
            Some(s) => Action::parse(s, &format!("{field}.{name}"), anonymize),
            None => Ok(default),
        };
        Ok(Sides {
            input_action: parse(&self.input_action, "inputAction")?,
            output_action: parse(&self.output_action, "outputAction")?,
            input_enabled: self.input_enabled.unwrap_or(true),
            output_enabled: self.output_enabled.unwrap_or(true),
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Tier {
    tier_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireContentFilter {
    #[serde(rename = "type")]
    kind: String,
    input_strength: String,
    output_strength: String,
    #[serde(flatten)]
    sides: WireSides,
    #[serde(default)]
    #[expect(dead_code, reason = "text is the only modality basalt checks")]
    input_modalities: Option<Vec<String>>,
    #[serde(default)]
    #[expect(dead_code, reason = "text is the only modality basalt checks")]
    output_modalities: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireContentPolicy {
    filters_config: Vec<WireContentFilter>,
    tier_config: Option<Tier>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireTopic {
    name: String,
    definition: String,
    #[serde(default)]
    examples: Vec<String>,
    #[serde(rename = "type")]
    kind: String,
    #[serde(flatten)]
    sides: WireSides,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireTopicPolicy {
    topics_config: Vec<WireTopic>,
    tier_config: Option<Tier>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireWord {
    text: String,
    #[serde(flatten)]
    sides: WireSides,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireManagedWords {
    #[serde(rename = "type")]
    kind: String,
    #[serde(flatten)]
    sides: WireSides,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireWordPolicy {
    words_config: Option<Vec<WireWord>>,
    managed_word_lists_config: Option<Vec<WireManagedWords>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WirePii {
    #[serde(rename = "type")]
    kind: String,
    action: String,
    #[serde(flatten)]
    sides: WireSides,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireRegex {
    name: String,
    description: Option<String>,
    pattern: String,
    action: String,
    #[serde(flatten)]
    sides: WireSides,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireSensitivePolicy {
    pii_entities_config: Option<Vec<WirePii>>,
    regexes_config: Option<Vec<WireRegex>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireGrounding {
    #[serde(rename = "type")]
    kind: String,
    threshold: f64,
    action: Option<String>,
    enabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireGroundingPolicy {
    filters_config: Vec<WireGrounding>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireTag {
    key: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GuardrailBody {
    name: String,
    description: Option<String>,
    topic_policy_config: Option<WireTopicPolicy>,
    content_policy_config: Option<WireContentPolicy>,
    word_policy_config: Option<WireWordPolicy>,
    sensitive_information_policy_config: Option<WireSensitivePolicy>,
    contextual_grounding_policy_config: Option<WireGroundingPolicy>,
    automated_reasoning_policy_config: Option<Value>,
    cross_region_config: Option<Value>,
    blocked_input_messaging: String,
    blocked_outputs_messaging: String,
    kms_key_id: Option<String>,
    #[serde(default)]
    tags: Vec<WireTag>,
    #[serde(default)]
    #[expect(
        dead_code,
        reason = "idempotency tokens are accepted; creates are not deduplicated yet"
    )]
    client_request_token: Option<String>,
}

fn tier(t: Option<&Tier>) -> Result<Option<String>, Error> {
    match t.map(|t| t.tier_name.as_str()) {
        None => Ok(None),
        Some(n @ ("CLASSIC" | "STANDARD")) => Ok(Some(n.to_string())),
        Some(n) => Err(Error::validation(format!(
            "tierName must be CLASSIC or STANDARD, got {n:?}."
        ))),
    }
}

impl GuardrailBody {
    fn into_new(self) -> Result<NewGuardrail, Error> {
        if self.automated_reasoning_policy_config.is_some() {
            return Err(Error::validation(
                "Automated reasoning policies are not available in basalt.",
            ));
        }
        if self.cross_region_config.is_some() {
            return Err(Error::validation(
                "crossRegionConfig does not apply: basalt runs guardrails on this machine.",
            ));
        }
        let mut policy = Policy {
            blocked_input_messaging: self.blocked_input_messaging,
            blocked_outputs_messaging: self.blocked_outputs_messaging,
            ..Policy::default()
        };
        if let Some(c) = self.content_policy_config {
            policy.content_tier = tier(c.tier_config.as_ref())?;
            let mut filters = Vec::new();
            for (i, f) in c.filters_config.iter().enumerate() {
                let at = format!("contentPolicyConfig.filtersConfig.{i}");
                filters.push(ContentFilter {
                    category: f.kind.clone(),
                    input_strength: Strength::parse(
                        &f.input_strength,
                        &format!("{at}.inputStrength"),
                    )?,
                    output_strength: Strength::parse(
                        &f.output_strength,
                        &format!("{at}.outputStrength"),
                    )?,
                    sides: f.sides.sides(Action::Block, &at, false)?,
                });
            }
            policy.content = Some(filters);
        }
        if let Some(t) = self.topic_policy_config {
            policy.topic_tier = tier(t.tier_config.as_ref())?;
            let mut topics = Vec::new();
            for (i, t) in t.topics_config.into_iter().enumerate() {
                let at = format!("topicPolicyConfig.topicsConfig.{i}");
                if t.kind != "DENY" {
                    return Err(Error::validation(format!("{at}.type must be DENY.")));
                }
                topics.push(Topic {
                    sides: t.sides.sides(Action::Block, &at, false)?,
                    name: t.name,
                    definition: t.definition,
                    examples: t.examples,
                });
            }
            policy.topics = Some(topics);
        }
        if let Some(w) = self.word_policy_config {
            if let Some(words) = w.words_config {
                let mut out = Vec::new();
                for (i, word) in words.into_iter().enumerate() {
                    let at = format!("wordPolicyConfig.wordsConfig.{i}");
                    out.push(Word {
                        sides: word.sides.sides(Action::Block, &at, false)?,
                        text: word.text,
                    });
                }
                policy.words = Some(out);
            }
            if let Some(lists) = w.managed_word_lists_config {
                let mut out = Vec::new();
                for (i, l) in lists.into_iter().enumerate() {
                    let at = format!("wordPolicyConfig.managedWordListsConfig.{i}");
                    out.push((l.kind, l.sides.sides(Action::Block, &at, false)?));
                }
                policy.managed_words = Some(out);
            }
        }
        if let Some(s) = self.sensitive_information_policy_config {
            if let Some(entities) = s.pii_entities_config {
                let mut out = Vec::new();
                for (i, e) in entities.into_iter().enumerate() {
                    let at = format!("sensitiveInformationPolicyConfig.piiEntitiesConfig.{i}");
                    let action = Action::parse(&e.action, &format!("{at}.action"), true)?;
                    out.push(PiiEntity {
                        sides: e.sides.sides(action, &at, true)?,
                        kind: e.kind,
                        action,
                    });
                }
                policy.pii = Some(out);
            }
            if let Some(regexes) = s.regexes_config {
                let mut out = Vec::new();
                for (i, r) in regexes.into_iter().enumerate() {
                    let at = format!("sensitiveInformationPolicyConfig.regexesConfig.{i}");
                    let action = Action::parse(&r.action, &format!("{at}.action"), true)?;
                    out.push(RegexEntity {
                        sides: r.sides.sides(action, &at, true)?,
                        name: r.name,
                        description: r.description,
                        pattern: r.pattern,
                        action,
                    });
                }
                policy.regexes = Some(out);
            }
        }
        if let Some(g) = self.contextual_grounding_policy_config {
            let mut out = Vec::new();
            for (i, f) in g.filters_config.into_iter().enumerate() {
                let at = format!("contextualGroundingPolicyConfig.filtersConfig.{i}.action");
                out.push(GroundingFilter {
                    kind: f.kind,
                    threshold: f.threshold,
                    action: match &f.action {
                        Some(a) => Action::parse(a, &at, false)?,
                        None => Action::Block,
                    },
                    enabled: f.enabled.unwrap_or(true),
                });
            }
            policy.grounding = Some(out);
        }
        Ok(NewGuardrail {
            name: self.name,
            description: self.description,
            policy,
            kms_key_id: self.kms_key_id,
            tags: self.tags.into_iter().map(|t| (t.key, t.value)).collect(),
        })
    }
}

// ---------- control plane ----------

pub(crate) async fn create_guardrail(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, AwsError> {
    let new = parse_json::<GuardrailBody>(&body)?.into_new()?;
    let guardrails = state.gateway.guardrails().clone();
    let g = blocking(move || guardrails.create(new)).await?;
    Ok(accepted(json!({
        "guardrailId": g.id,
        "guardrailArn": arn(&g.id),
        "version": g.version,
        "createdAt": timestamp(g.created_at_ms),
    })))
}

pub(crate) async fn update_guardrail(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, AwsError> {
    let new = parse_json::<GuardrailBody>(&body)?.into_new()?;
    let guardrails = state.gateway.guardrails().clone();
    let g = blocking(move || guardrails.update(&id, new)).await?;
    Ok(accepted(json!({
        "guardrailId": g.id,
        "guardrailArn": arn(&g.id),
        "version": g.version,
        "updatedAt": timestamp(g.updated_at_ms),
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VersionQuery {
    guardrail_version: Option<String>,
}

fn sides_json(v: &mut serde_json::Map<String, Value>, s: &Sides) {
    v.insert("inputAction".into(), s.input_action.as_str().into());
    v.insert("outputAction".into(), s.output_action.as_str().into());
    v.insert("inputEnabled".into(), s.input_enabled.into());
    v.insert("outputEnabled".into(), s.output_enabled.into());
}

fn with_sides(mut v: Value, s: &Sides) -> Value {
    if let Some(m) = v.as_object_mut() {
        sides_json(m, s);
    }
    v
}

fn guardrail_json(g: &Guardrail) -> Value {
    let p = &g.policy;
    let mut v = json!({
        "name": g.name,
        "guardrailId": g.id,
        "guardrailArn": arn(&g.id),
        "version": g.version,
        "status": "READY",
        "blockedInputMessaging": p.blocked_input_messaging,
        "blockedOutputsMessaging": p.blocked_outputs_messaging,
        "createdAt": timestamp(g.created_at_ms),
        "updatedAt": timestamp(g.updated_at_ms),
    });
    if let Some(d) = &g.description {
        v["description"] = d.clone().into();
    }
    if let Some(k) = &g.kms_key_id {
        v["kmsKeyArn"] = k.clone().into();
    }
    if let Some(topics) = &p.topics {
        v["topicPolicy"] = json!({ "topics": topics.iter().map(|t| with_sides(json!({
            "name": t.name, "definition": t.definition, "examples": t.examples, "type": "DENY",
        }), &t.sides)).collect::<Vec<_>>() });
        if let Some(t) = &p.topic_tier {
            v["topicPolicy"]["tier"] = json!({ "tierName": t });
        }
    }
    if let Some(filters) = &p.content {
        v["contentPolicy"] = json!({ "filters": filters.iter().map(|f| with_sides(json!({
            "type": f.category,
            "inputStrength": f.input_strength.level().as_str(),
            "outputStrength": f.output_strength.level().as_str(),
            "inputModalities": ["TEXT"], "outputModalities": ["TEXT"],
        }), &f.sides)).collect::<Vec<_>>() });
        if let Some(t) = &p.content_tier {
            v["contentPolicy"]["tier"] = json!({ "tierName": t });
        }
    }
    if p.words.is_some() || p.managed_words.is_some() {
        let mut w = json!({});
        if let Some(words) = &p.words {
            w["words"] = words
                .iter()
                .map(|x| with_sides(json!({ "text": x.text }), &x.sides))
                .collect();
        }
        if let Some(lists) = &p.managed_words {
            w["managedWordLists"] = lists
                .iter()
                .map(|(t, s)| with_sides(json!({ "type": t }), s))
                .collect();
        }
        v["wordPolicy"] = w;
    }
    if p.pii.is_some() || p.regexes.is_some() {
        let mut s = json!({});
        if let Some(entities) = &p.pii {
            s["piiEntities"] = entities
                .iter()
                .map(|e| {
                    with_sides(
                        json!({ "type": e.kind, "action": e.action.as_str() }),
                        &e.sides,
                    )
                })
                .collect();
        }
        if let Some(regexes) = &p.regexes {
            s["regexes"] = regexes
                .iter()
                .map(|r| {
                    let mut x = json!({ "name": r.name, "pattern": r.pattern, "action": r.action.as_str() });
                    if let Some(d) = &r.description {
                        x["description"] = d.clone().into();
                    }
                    with_sides(x, &r.sides)
                })
                .collect();
        }
        v["sensitiveInformationPolicy"] = s;
    }
    if let Some(filters) = &p.grounding {
        v["contextualGroundingPolicy"] = json!({ "filters": filters.iter().map(|f| json!({
            "type": f.kind, "threshold": f.threshold, "action": f.action.as_str(), "enabled": f.enabled,
        })).collect::<Vec<_>>() });
    }
    v
}

pub(crate) async fn get_guardrail(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<VersionQuery>,
) -> Result<Response, AwsError> {
    let guardrails = state.gateway.guardrails().clone();
    let g = blocking(move || guardrails.get(&id, q.guardrail_version.as_deref())).await?;
    Ok(Json(guardrail_json(&g)).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListQuery {
    guardrail_identifier: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

pub(crate) async fn list_guardrails(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Response, AwsError> {
    let (offset, size) = crate::bedrock_agent::page(q.max_results, q.next_token.as_deref())?;
    let guardrails = state.gateway.guardrails().clone();
    let all = blocking(move || guardrails.list(q.guardrail_identifier.as_deref())).await?;
    let (page, next) = crate::bedrock_agent::paged(all, offset, size);
    let items: Vec<Value> = page
        .iter()
        .map(|g| {
            let mut v = json!({
                "id": g.id, "arn": arn(&g.id), "status": "READY", "name": g.name,
                "version": g.version,
                "createdAt": timestamp(g.created_at_ms), "updatedAt": timestamp(g.updated_at_ms),
            });
            if let Some(d) = &g.description {
                v["description"] = d.clone().into();
            }
            v
        })
        .collect();
    Ok(Json(crate::bedrock_agent::with_next(
        json!({ "guardrails": items }),
        next,
    ))
    .into_response())
}

pub(crate) async fn delete_guardrail(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<VersionQuery>,
) -> Result<Response, AwsError> {
    let guardrails = state.gateway.guardrails().clone();
    blocking(move || guardrails.delete(&id, q.guardrail_version.as_deref())).await?;
    Ok(accepted(json!({})))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct VersionBody {
    description: Option<String>,
    #[serde(default)]
    #[expect(
        dead_code,
        reason = "idempotency tokens are accepted; versions are not deduplicated yet"
    )]
    client_request_token: Option<String>,
}

pub(crate) async fn create_guardrail_version(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, AwsError> {
    let b: VersionBody = if body.is_empty() {
        VersionBody::default()
    } else {
        parse_json(&body)?
    };
    let guardrails = state.gateway.guardrails().clone();
    let g = blocking(move || guardrails.create_version(&id, b.description)).await?;
    Ok(accepted(
        json!({ "guardrailId": g.id, "version": g.version }),
    ))
}

// ---------- assessments ----------

fn action(a: FindingAction) -> &'static str {
    match a {
        FindingAction::Blocked => "BLOCKED",
        FindingAction::Anonymized => "ANONYMIZED",
        FindingAction::None => "NONE",
    }
}

/// One assessment in botocore's `GuardrailAssessment` shape. `full` keeps
/// findings that did not intervene (outputScope FULL, trace enabled_full).
pub(crate) fn assessment_json(a: &Assessment, full: bool) -> Value {
    let keep = |detected: bool| full || detected;
    let mut v = json!({});
    let topics: Vec<Value> = a
        .topics
        .iter()
        .filter(|t| keep(t.detected))
        .map(|t| json!({ "name": t.name, "type": "DENY", "action": action(t.action), "detected": t.detected }))
        .collect();
    if !topics.is_empty() {
        v["topicPolicy"] = json!({ "topics": topics });
    }
    let filters: Vec<Value> = a
        .content
        .iter()
        .filter(|f| keep(f.detected))
        .map(|f| json!({
            "type": f.category, "confidence": f.confidence.as_str(),
            "filterStrength": f.strength.as_str(), "action": action(f.action), "detected": f.detected,
        }))
        .collect();
    if !filters.is_empty() {
        v["contentPolicy"] = json!({ "filters": filters });
    }
    if !a.words.is_empty() {
        let (managed, custom): (Vec<_>, Vec<_>) =
            a.words.iter().partition(|w| w.managed_list.is_some());
        v["wordPolicy"] = json!({
            "customWords": custom.iter().map(|w| json!({ "match": w.matched, "action": action(w.action), "detected": w.detected })).collect::<Vec<_>>(),
            "managedWordLists": managed.iter().map(|w| json!({
                "match": w.matched, "type": w.managed_list, "action": action(w.action), "detected": w.detected,
            })).collect::<Vec<_>>(),
        });
    }
    if !a.pii.is_empty() || !a.regexes.is_empty() {
        v["sensitiveInformationPolicy"] = json!({
            "piiEntities": a.pii.iter().map(|p| json!({ "match": p.matched, "type": p.kind, "action": action(p.action), "detected": p.detected })).collect::<Vec<_>>(),
            "regexes": a.regexes.iter().map(|r| json!({ "name": r.kind, "match": r.matched, "regex": r.regex, "action": action(r.action), "detected": r.detected })).collect::<Vec<_>>(),
        });
    }
    let grounding: Vec<Value> = a
        .grounding
        .iter()
        .filter(|g| keep(g.detected))
        .map(|g| json!({ "type": g.kind, "threshold": g.threshold, "score": g.score, "action": action(g.action), "detected": g.detected }))
        .collect();
    if !grounding.is_empty() {
        v["contextualGroundingPolicy"] = json!({ "filters": grounding });
    }
    v["invocationMetrics"] = json!({
        "guardrailProcessingLatency": a.latency_ms,
        "usage": usage_json(a),
        "guardrailCoverage": coverage_json(a),
    });
    v
}

fn usage_json(a: &Assessment) -> Value {
    let u = &a.units;
    json!({
        "topicPolicyUnits": u.topic,
        "contentPolicyUnits": u.content,
        "wordPolicyUnits": u.word,
        "sensitiveInformationPolicyUnits": u.sensitive_information,
        "sensitiveInformationPolicyFreeUnits": u.sensitive_information_free,
        "contextualGroundingPolicyUnits": u.contextual_grounding,
    })
}

fn coverage_json(a: &Assessment) -> Value {
    json!({ "textCharacters": { "guarded": a.characters_guarded, "total": a.characters_total } })
}

/// The `guardrail` member of a Converse trace (`GuardrailTraceAssessment`).
pub(crate) fn trace_json(id: &str, t: &GuardrailTrace) -> Value {
    let full = t.level == TraceLevel::Full;
    let key = id.rsplit('/').next().unwrap_or(id);
    let mut v = json!({});
    if let Some(input) = &t.input {
        v["inputAssessment"] = json!({ key: assessment_json(input, full) });
    }
    if !t.outputs.is_empty() {
        v["outputAssessments"] = json!({
            key: t.outputs.iter().map(|a| assessment_json(a, full)).collect::<Vec<_>>()
        });
    }
    if let Some(m) = &t.model_output {
        v["modelOutput"] = json!([m]);
    }
    if let Some(r) = &t.action_reason {
        v["actionReason"] = r.clone().into();
    }
    v
}

/// Parses a content qualifier.
pub(crate) fn qualifier(q: &str) -> Result<Qualifier, Error> {
    match q {
        "grounding_source" => Ok(Qualifier::GroundingSource),
        "query" => Ok(Qualifier::Query),
        "guard_content" => Ok(Qualifier::GuardContent),
        other => Err(Error::validation(format!(
            "qualifiers may contain grounding_source, query and guard_content, got {other:?}."
        ))),
    }
}

/// A `{"text": {"text": …, "qualifiers": […]}}` block (ApplyGuardrail content,
/// Converse `guardContent`).
pub(crate) fn guard_text(block: &Value, at: &str) -> Result<GuardText, Error> {
    if block.get("image").is_some() {
        return Err(Error::validation(format!(
            "{at}: image content is not supported by basalt's guardrails; send text."
        )));
    }
    let t = block
        .get("text")
        .ok_or_else(|| Error::validation(format!("{at} must have a text member.")))?;
    let text = t
        .get("text")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::validation(format!("{at}.text.text must be a string.")))?;
    let qualifiers = match t.get("qualifiers") {
        None => Vec::new(),
        Some(Value::Array(qs)) => qs
            .iter()
            .map(|q| {
                q.as_str().map_or_else(
                    || Err(Error::validation("qualifiers must be strings.")),
                    qualifier,
                )
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(Error::validation(format!(
                "{at}.text.qualifiers must be a list."
            )))
        }
    };
    Ok(GuardText {
        text: text.to_string(),
        qualifiers,
    })
}

// ---------- ApplyGuardrail ----------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ApplyBody {
    source: String,
    content: Vec<Value>,
    output_scope: Option<String>,
}

pub(crate) async fn apply_guardrail(
    State(state): State<AppState>,
    Path((id, version)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, AwsError> {
    let b: ApplyBody = parse_json(&body)?;
    let source = match b.source.as_str() {
        "INPUT" => GuardSource::Input,
        "OUTPUT" => GuardSource::Output,
        s => {
            return Err(
                Error::validation(format!("source must be INPUT or OUTPUT, got {s:?}.")).into(),
            )
        }
    };
    let full = match b.output_scope.as_deref() {
        None | Some("INTERVENTIONS") => false,
        Some("FULL") => true,
        Some(s) => {
            return Err(Error::validation(format!(
                "outputScope must be INTERVENTIONS or FULL, got {s:?}."
            ))
            .into())
        }
    };
    if b.content.is_empty() {
        return Err(Error::validation("content must contain at least one block.").into());
    }
    let blocks = b
        .content
        .iter()
        .enumerate()
        .map(|(i, c)| guard_text(c, &format!("content.{i}")))
        .collect::<Result<Vec<_>, _>>()?;
    let outcome = state
        .gateway
        .guardrails()
        .apply(&id, &version, source, &blocks)
        .await?;
    Ok(Json(apply_json(&outcome, full)).into_response())
}

fn apply_json(o: &GuardrailOutcome, full: bool) -> Value {
    json!({
        "usage": usage_json(&o.assessment),
        "action": if o.intervened { "GUARDRAIL_INTERVENED" } else { "NONE" },
        "actionReason": o.action_reason,
        "outputs": o.outputs.iter().map(|t| json!({ "text": t })).collect::<Vec<_>>(),
        "assessments": [assessment_json(&o.assessment, full)],
        "guardrailCoverage": coverage_json(&o.assessment),
    })
}

/// Parses the InvokeModel guardrail headers into a guardrail reference.
pub(crate) fn from_headers(headers: &axum::http::HeaderMap) -> Result<Option<GuardrailRef>, Error> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let Some(identifier) = get("x-amzn-bedrock-guardrailidentifier").filter(|s| !s.is_empty())
    else {
        return Ok(None);
    };
    let version = get("x-amzn-bedrock-guardrailversion").filter(|s| !s.is_empty()).ok_or_else(|| {
        Error::validation("X-Amzn-Bedrock-GuardrailVersion is required with X-Amzn-Bedrock-GuardrailIdentifier.")
    })?;
    let trace = match get("x-amzn-bedrock-trace").as_deref() {
        None | Some("DISABLED") => TraceLevel::Disabled,
        Some("ENABLED") => TraceLevel::Enabled,
        Some("ENABLED_FULL") => TraceLevel::Full,
        Some(t) => {
            return Err(Error::validation(format!(
                "X-Amzn-Bedrock-Trace must be ENABLED, DISABLED or ENABLED_FULL, got {t:?}."
            )))
        }
    };
    Ok(Some(GuardrailRef {
        trace,
        ..GuardrailRef::new(identifier, version)
    }))
}

/// `guardrailConfig` of Converse and ConverseStream.
pub(crate) fn from_config(v: &Value, stream: bool) -> Result<GuardrailRef, Error> {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let identifier = s("guardrailIdentifier")
        .filter(|x| !x.is_empty())
        .ok_or_else(|| Error::validation("guardrailConfig.guardrailIdentifier is required."))?;
    let version = s("guardrailVersion")
        .filter(|x| !x.is_empty())
        .ok_or_else(|| Error::validation("guardrailConfig.guardrailVersion is required."))?;
    let trace = match s("trace").as_deref() {
        None | Some("disabled") => TraceLevel::Disabled,
        Some("enabled") => TraceLevel::Enabled,
        Some("enabled_full") => TraceLevel::Full,
        Some(t) => {
            return Err(Error::validation(format!(
                "guardrailConfig.trace must be enabled, disabled or enabled_full, got {t:?}."
            )))
        }
    };
    let stream_mode = match s("streamProcessingMode").as_deref() {
        None | Some("sync") => StreamMode::Sync,
        Some("async") if stream => StreamMode::Async,
        Some(m) => {
            return Err(Error::validation(format!(
                "guardrailConfig.streamProcessingMode must be sync or async (ConverseStream only), got {m:?}."
            )))
        }
    };
    const KNOWN: [&str; 4] = [
        "guardrailIdentifier",
        "guardrailVersion",
        "trace",
        "streamProcessingMode",
    ];
    if let Some(obj) = v.as_object() {
        if let Some(k) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(Error::validation(format!(
                "guardrailConfig has an unknown member {k:?}."
            )));
        }
    }
    Ok(GuardrailRef {
        trace,
        stream_mode,
        ..GuardrailRef::new(identifier, version)
    })
}
