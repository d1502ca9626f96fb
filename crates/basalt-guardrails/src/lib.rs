//! Guardrails that run locally with Bedrock's policies: content filters,
//! denied topics, word filters, sensitive information (PII types and custom
//! regexes) and contextual grounding. Guardrails and their immutable numbered
//! versions live in the store; each version is compiled once (patterns,
//! automata, topic vectors) and cached. The gateway applies them to every model
//! call that asks; ApplyGuardrail applies them to any text.

pub mod pii;
pub mod policy;
pub mod semantic;
pub mod words;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use basalt_providers::{Provider, StaticEmbeddings};
use basalt_store::rusqlite::{params, OptionalExtension, Row};
use basalt_store::Store;
use basalt_types::guardrail::{
    Assessment, ContentFinding, FindingAction, GroundingFinding, GuardSource, GuardText,
    GuardrailOutcome, GuardrailUnits, PiiFinding, Qualifier, TopicFinding, WordFinding,
};
use basalt_types::{Error, Result};
use regex::Regex;

pub use policy::{Action, Policy, Sides};
use semantic::{blocks_from, ContentModel, Embedded, TopicModel, CATEGORIES};
use words::{WordMatcher, PROFANITY};

/// Version name of a guardrail's working copy.
pub const DRAFT: &str = "DRAFT";

/// One version of a guardrail.
#[derive(Debug, Clone, PartialEq)]
pub struct Guardrail {
    pub id: String,
    pub version: String,
    pub name: String,
    pub description: Option<String>,
    pub policy: Policy,
    pub kms_key_id: Option<String>,
    pub tags: Vec<(String, String)>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// What CreateGuardrail and UpdateGuardrail set.
#[derive(Debug, Clone)]
pub struct NewGuardrail {
    pub name: String,
    pub description: Option<String>,
    pub policy: Policy,
    pub kms_key_id: Option<String>,
    pub tags: Vec<(String, String)>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::internal(format!("guardrail store: {e}"))
}

/// The id in a guardrail id or ARN (`arn:…:guardrail/ID`).
fn id_of(identifier: &str) -> &str {
    identifier.rsplit('/').next().unwrap_or(identifier)
}

fn not_found(identifier: &str, version: &str) -> Error {
    Error::not_found(format!(
        "The guardrail {identifier} (version {version}) was not found. Check the identifier and version and try again."
    ))
}

const COLUMNS: &str =
    "id, version, name, description, policy, kms_key_id, tags, created_at_ms, updated_at_ms";

fn row(r: &Row<'_>) -> basalt_store::rusqlite::Result<(Guardrail, String, String)> {
    Ok((
        Guardrail {
            id: r.get(0)?,
            version: r.get(1)?,
            name: r.get(2)?,
            description: r.get(3)?,
            policy: Policy::default(),
            kms_key_id: r.get(5)?,
            tags: Vec::new(),
            created_at_ms: r.get(7)?,
            updated_at_ms: r.get(8)?,
        },
        r.get(4)?,
        r.get(6)?,
    ))
}

fn decode(raw: (Guardrail, String, String)) -> Result<Guardrail> {
    let (mut g, policy, tags) = raw;
    g.policy = serde_json::from_str(&policy).map_err(internal)?;
    g.tags = serde_json::from_str(&tags).map_err(internal)?;
    Ok(g)
}

/// The guardrail service: storage, compilation cache, evaluation.
pub struct Guardrails {
    store: Store,
    embedder: Option<Arc<dyn Provider>>,
    statics: tokio::sync::OnceCell<(Arc<StaticEmbeddings>, Arc<ContentModel>)>,
    compiled: Mutex<HashMap<(String, String), Arc<Compiled>>>,
    counters: Mutex<std::collections::BTreeMap<CounterKey, Counter>>,
    /// Bumped by every change, so a compile that raced with one is not cached.
    generation: std::sync::atomic::AtomicU64,
}

/// (guardrail id, source, action) of evaluations, for `/metrics`.
type CounterKey = (String, &'static str, &'static str);

/// How many evaluations ended one way, and the text units they processed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counter {
    pub evaluations: u64,
    pub text_units: u64,
}

impl Guardrails {
    /// Guardrails over `store`; `embedder` (an embedding model) serves the
    /// semantic policies, which are refused without one.
    #[must_use]
    pub fn new(store: Store, embedder: Option<Arc<dyn Provider>>) -> Self {
        Self {
            store,
            embedder,
            statics: tokio::sync::OnceCell::new(),
            compiled: Mutex::new(HashMap::new()),
            counters: Mutex::new(std::collections::BTreeMap::new()),
            generation: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Builds (or loads) the static embeddings and the content classifier, so
    /// the first guarded call does not wait for them.
    pub async fn warm(&self) -> Result<()> {
        if self.embedder.is_some() {
            self.semantic().await?;
        }
        Ok(())
    }

    async fn semantic(&self) -> Result<&(Arc<StaticEmbeddings>, Arc<ContentModel>)> {
        let embedder = self.embedder.as_ref().ok_or_else(|| {
            Error::validation(
                "Content filters, denied topics and contextual grounding need an embedding model in the catalog.",
            )
        })?;
        self.statics
            .get_or_try_init(|| async {
                let statics = embedder.static_embeddings().await?;
                let content = Arc::new(ContentModel::new(&statics));
                Ok::<_, Error>((statics, content))
            })
            .await
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut basalt_store::rusqlite::Connection) -> basalt_store::rusqlite::Result<T>,
    ) -> Result<T> {
        self.store
            .with_connection(|c| f(c).map_err(basalt_store::StoreError::from))
            .map_err(internal)
    }

    fn check(&self, new: &NewGuardrail) -> Result<()> {
        policy::check_name(&new.name)?;
        check_description(new.description.as_deref())?;
        new.policy.validate()?;
        if new.policy.needs_embeddings() && self.embedder.is_none() {
            return Err(Error::validation(
                "Content filters, denied topics and contextual grounding need an embedding model in the catalog; add one (kind = \"embedding\") or remove those policies.",
            ));
        }
        Ok(())
    }

    /// Creates a guardrail (its DRAFT).
    pub fn create(&self, new: NewGuardrail) -> Result<Guardrail> {
        self.check(&new)?;
        let now = now_ms();
        let g = Guardrail {
            id: new_id(),
            version: DRAFT.into(),
            name: new.name,
            description: new.description,
            policy: new.policy,
            kms_key_id: new.kms_key_id,
            tags: new.tags,
            created_at_ms: now,
            updated_at_ms: now,
        };
        let policy = serde_json::to_string(&g.policy).map_err(internal)?;
        let tags = serde_json::to_string(&g.tags).map_err(internal)?;
        let inserted = self.with(|c| {
            let taken: Option<String> = c
                .query_row(
                    "SELECT id FROM guardrails WHERE name = ?1 AND version = 'DRAFT'",
                    [&g.name],
                    |r| r.get(0),
                )
                .optional()?;
            if taken.is_some() {
                return Ok(false);
            }
            c.execute(
                &format!("INSERT INTO guardrails ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
                params![g.id, g.version, g.name, g.description, policy, g.kms_key_id, tags, g.created_at_ms, g.updated_at_ms],
            )?;
            Ok(true)
        })?;
        if !inserted {
            return Err(Error::conflict(format!(
                "A guardrail named {} already exists.",
                g.name
            )));
        }
        Ok(g)
    }

    /// One version (`None` = DRAFT) of a guardrail.
    pub fn get(&self, identifier: &str, version: Option<&str>) -> Result<Guardrail> {
        let version = version.unwrap_or(DRAFT);
        let id = id_of(identifier);
        let raw = self.with(|c| {
            c.query_row(
                &format!("SELECT {COLUMNS} FROM guardrails WHERE id = ?1 AND version = ?2"),
                params![id, version],
                row,
            )
            .optional()
        })?;
        decode(raw.ok_or_else(|| not_found(identifier, version))?)
    }

    /// Every guardrail's DRAFT, or every version of one guardrail, oldest first.
    pub fn list(&self, identifier: Option<&str>) -> Result<Vec<Guardrail>> {
        let rows = self.with(|c| {
            let (sql, arg) = match identifier {
                Some(i) => (
                    format!("SELECT {COLUMNS} FROM guardrails WHERE id = ?1 ORDER BY version = 'DRAFT' DESC, CAST(version AS INTEGER)"),
                    id_of(i).to_string(),
                ),
                None => (
                    format!("SELECT {COLUMNS} FROM guardrails WHERE version = ?1 ORDER BY created_at_ms, id"),
                    DRAFT.to_string(),
                ),
            };
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map([arg], row)?.collect::<std::result::Result<Vec<_>, _>>();
            rows
        })?;
        if let Some(i) = identifier {
            if rows.is_empty() {
                return Err(not_found(i, DRAFT));
            }
        }
        rows.into_iter().map(decode).collect()
    }

    /// Replaces the DRAFT's configuration.
    pub fn update(&self, identifier: &str, new: NewGuardrail) -> Result<Guardrail> {
        self.check(&new)?;
        let mut g = self.get(identifier, None)?;
        g.name = new.name;
        g.description = new.description;
        g.policy = new.policy;
        g.kms_key_id = new.kms_key_id;
        g.updated_at_ms = now_ms();
        let policy = serde_json::to_string(&g.policy).map_err(internal)?;
        let updated = self.with(|c| {
            let taken: Option<String> = c
                .query_row(
                    "SELECT id FROM guardrails WHERE name = ?1 AND version = 'DRAFT' AND id != ?2",
                    params![g.name, g.id],
                    |r| r.get(0),
                )
                .optional()?;
            if taken.is_some() {
                return Ok(false);
            }
            c.execute(
                "UPDATE guardrails SET name = ?1, description = ?2, policy = ?3, kms_key_id = ?4, updated_at_ms = ?5
                 WHERE id = ?6 AND version = 'DRAFT'",
                params![g.name, g.description, policy, g.kms_key_id, g.updated_at_ms, g.id],
            )?;
            Ok(true)
        })?;
        if !updated {
            return Err(Error::conflict(format!(
                "A guardrail named {} already exists.",
                g.name
            )));
        }
        self.forget(&g.id, DRAFT);
        Ok(g)
    }

    /// Publishes the DRAFT as the next numbered version, which never changes.
    pub fn create_version(
        &self,
        identifier: &str,
        description: Option<String>,
    ) -> Result<Guardrail> {
        check_description(description.as_deref())?;
        let draft = self.get(identifier, None)?;
        let now = now_ms();
        let version = self.with(|c| {
            let tx = c.transaction()?;
            let max: Option<i64> = tx.query_row(
                "SELECT MAX(CAST(version AS INTEGER)) FROM guardrails WHERE id = ?1 AND version != 'DRAFT'",
                [&draft.id],
                |r| r.get(0),
            )?;
            let last: Option<i64> = tx
                .query_row(
                    "SELECT last_version FROM guardrail_versions WHERE id = ?1",
                    [&draft.id],
                    |r| r.get(0),
                )
                .optional()?;
            let next = max.unwrap_or(0).max(last.unwrap_or(0)) + 1;
            tx.execute(
                "INSERT INTO guardrail_versions (id, last_version) VALUES (?1, ?2)
                 ON CONFLICT(id) DO UPDATE SET last_version = excluded.last_version",
                params![draft.id, next],
            )?;
            let version = next.to_string();
            tx.execute(
                &format!("INSERT INTO guardrails ({COLUMNS})
                 SELECT id, ?2, name, COALESCE(?3, description), policy, kms_key_id, tags, ?4, ?4
                 FROM guardrails WHERE id = ?1 AND version = 'DRAFT'"),
                params![draft.id, version, description, now],
            )?;
            tx.commit()?;
            Ok(version)
        })?;
        self.get(&draft.id, Some(&version))
    }

    /// Deletes one numbered version, or (`None`) the guardrail with all versions.
    pub fn delete(&self, identifier: &str, version: Option<&str>) -> Result<()> {
        let id = id_of(identifier).to_string();
        if let Some(v) = version {
            if v.parse::<u32>().map_or(true, |n| n == 0) {
                return Err(Error::validation(format!(
                    "guardrailVersion must be a published version number, got {v:?}; omit it to delete the guardrail."
                )));
            }
        }
        let n = self.with(|c| match version {
            Some(v) => c.execute(
                "DELETE FROM guardrails WHERE id = ?1 AND version = ?2",
                params![id, v],
            ),
            None => {
                c.execute("DELETE FROM guardrail_versions WHERE id = ?1", params![id])?;
                c.execute("DELETE FROM guardrails WHERE id = ?1", params![id])
            }
        })?;
        if n == 0 {
            return Err(not_found(identifier, version.unwrap_or(DRAFT)));
        }
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if let Ok(mut cache) = self.compiled.lock() {
            cache.retain(|(i, v), _| *i != id || version.is_some_and(|w| w != v));
        }
        Ok(())
    }

    fn forget(&self, id: &str, version: &str) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if let Ok(mut cache) = self.compiled.lock() {
            cache.remove(&(id.to_string(), version.to_string()));
        }
    }

    async fn compiled(&self, identifier: &str, version: &str) -> Result<Arc<Compiled>> {
        let version = if version.is_empty() { DRAFT } else { version };
        let key = (id_of(identifier).to_string(), version.to_string());
        if let Some(c) = self.compiled.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(c);
        }
        let generation = self.generation.load(std::sync::atomic::Ordering::SeqCst);
        let guardrail = self.get(identifier, Some(version))?;
        let semantic = if guardrail.policy.needs_embeddings() {
            Some(self.semantic().await?.clone())
        } else {
            None
        };
        let compiled = Arc::new(Compiled::new(guardrail, semantic)?);
        // A change while this compiled (the embeddings can take a while on
        // first use) means the row read above may be stale: use it for this
        // call only.
        if let Ok(mut m) = self.compiled.lock() {
            if self.generation.load(std::sync::atomic::Ordering::SeqCst) == generation {
                m.insert(key, Arc::clone(&compiled));
            }
        }
        Ok(compiled)
    }

    /// Applies a guardrail version to text blocks from `source`.
    pub async fn apply(
        &self,
        identifier: &str,
        version: &str,
        source: GuardSource,
        blocks: &[GuardText],
    ) -> Result<GuardrailOutcome> {
        let compiled = self.compiled(identifier, version).await?;
        let outcome = compiled.evaluate(source, blocks);
        let action = if outcome.blocked() {
            "blocked"
        } else if outcome.intervened {
            "masked"
        } else {
            "none"
        };
        let source = match source {
            GuardSource::Input => "input",
            GuardSource::Output => "output",
        };
        let units = outcome.assessment.units.total();
        if let Ok(mut c) = self.counters.lock() {
            let e = c
                .entry((compiled.guardrail.id.clone(), source, action))
                .or_default();
            e.evaluations += 1;
            e.text_units += u64::from(units);
        }
        Ok(outcome)
    }

    /// Evaluations so far by guardrail id, source (`input`/`output`) and
    /// action (`none`/`masked`/`blocked`), with the text units they processed.
    #[must_use]
    pub fn counters(&self) -> Vec<(String, &'static str, &'static str, Counter)> {
        self.counters.lock().map_or_else(
            |_| Vec::new(),
            |c| {
                c.iter()
                    .map(|((g, s, a), n)| (g.clone(), *s, *a, *n))
                    .collect()
            },
        )
    }
}

/// A guardrail's or a version's description: 1 to 200 characters.
fn check_description(d: Option<&str>) -> Result<()> {
    match d {
        Some(d) if d.is_empty() || d.chars().count() > 200 => Err(Error::validation(
            "description must be 1 to 200 characters.",
        )),
        _ => Ok(()),
    }
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// A guardrail version ready to evaluate.
struct Compiled {
    guardrail: Guardrail,
    words: WordMatcher,
    /// Per word rule: the managed list it came from, and its switches.
    word_rules: Vec<(Option<&'static str>, Sides)>,
    regexes: Vec<Regex>,
    topics: Vec<TopicModel>,
    semantic: Option<(Arc<StaticEmbeddings>, Arc<ContentModel>)>,
}

fn finding(action: Action) -> FindingAction {
    match action {
        Action::Block => FindingAction::Blocked,
        Action::Anonymize => FindingAction::Anonymized,
        Action::None => FindingAction::None,
    }
}

/// Units billed for `chars` characters: one per started 1,000.
fn units(chars: usize) -> u32 {
    chars.div_ceil(1000) as u32
}

impl Compiled {
    fn new(
        guardrail: Guardrail,
        semantic: Option<(Arc<StaticEmbeddings>, Arc<ContentModel>)>,
    ) -> Result<Self> {
        let p = &guardrail.policy;
        let mut texts: Vec<&str> = Vec::new();
        let mut word_rules = Vec::new();
        for w in p.words.iter().flatten() {
            texts.push(&w.text);
            word_rules.push((None, w.sides));
        }
        for (_, sides) in p.managed_words.iter().flatten() {
            for w in PROFANITY {
                texts.push(w);
                word_rules.push((Some("PROFANITY"), *sides));
            }
        }
        let words = WordMatcher::new(texts);
        let regexes = p
            .regexes
            .iter()
            .flatten()
            .map(|r| Regex::new(&r.pattern).map_err(|e| Error::validation(e.to_string())))
            .collect::<Result<Vec<_>>>()?;
        let topics = match &semantic {
            Some((statics, _)) => p
                .topics
                .iter()
                .flatten()
                .map(|t| TopicModel::new(statics, &t.definition, &t.examples))
                .collect(),
            None => Vec::new(),
        };
        Ok(Self {
            guardrail,
            words,
            word_rules,
            regexes,
            topics,
            semantic,
        })
    }

    fn blocked_message(&self, source: GuardSource) -> &str {
        match source {
            GuardSource::Input => &self.guardrail.policy.blocked_input_messaging,
            GuardSource::Output => &self.guardrail.policy.blocked_outputs_messaging,
        }
    }

    fn evaluate(&self, source: GuardSource, blocks: &[GuardText]) -> GuardrailOutcome {
        let started = Instant::now();
        let p = &self.guardrail.policy;
        let guarded: Vec<&GuardText> = blocks.iter().filter(|b| b.is_checked()).collect();
        let joined = |q: Qualifier| {
            blocks
                .iter()
                .filter(|b| b.has(q))
                .map(|b| b.text.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        };
        let mut a = Assessment::default();
        let mut masked_texts = Vec::new();
        for block in &guarded {
            let text = block.text.as_str();
            let mut replacements: Vec<(usize, usize, String)> = Vec::new();
            for m in self.words.find(text) {
                let (managed, sides) = self.word_rules[m.rule];
                if let Some(action) = sides.on(source) {
                    a.words.push(WordFinding {
                        matched: text[m.start..m.end].to_string(),
                        managed_list: managed.map(str::to_string),
                        action: finding(action),
                        detected: true,
                    });
                }
            }
            let entities: Vec<&policy::PiiEntity> = p
                .pii
                .iter()
                .flatten()
                .filter(|e| e.sides.on(source).is_some())
                .collect();
            if !entities.is_empty() {
                let kinds: Vec<&str> = entities.iter().map(|e| e.kind.as_str()).collect();
                for e in pii::find(text, Some(&kinds)) {
                    let Some(rule) = entities.iter().find(|r| r.kind == e.kind) else {
                        continue;
                    };
                    let action = rule.sides.on(source).unwrap_or(Action::None);
                    if action == Action::Anonymize {
                        replacements.push((e.start, e.end, format!("{{{}}}", e.kind)));
                    }
                    a.pii.push(PiiFinding {
                        kind: e.kind.to_string(),
                        regex: None,
                        matched: text[e.start..e.end].to_string(),
                        action: finding(action),
                        detected: true,
                    });
                }
            }
            for (rule, re) in p.regexes.iter().flatten().zip(&self.regexes) {
                let Some(action) = rule.sides.on(source) else {
                    continue;
                };
                for m in re.find_iter(text).filter(|m| !m.is_empty()) {
                    if action == Action::Anonymize {
                        replacements.push((m.start(), m.end(), format!("{{{}}}", rule.name)));
                    }
                    a.regexes.push(PiiFinding {
                        kind: rule.name.clone(),
                        regex: Some(rule.pattern.clone()),
                        matched: m.as_str().to_string(),
                        action: finding(action),
                        detected: true,
                    });
                }
            }
            if let Some((statics, content)) = &self.semantic {
                let embedded = Embedded::new(statics, text);
                for (topic, model) in p.topics.iter().flatten().zip(&self.topics) {
                    let Some(action) = topic.sides.on(source) else {
                        continue;
                    };
                    let detected = model.detects(&embedded, content);
                    a.topics.push(TopicFinding {
                        name: topic.name.clone(),
                        action: if detected {
                            finding(action)
                        } else {
                            FindingAction::None
                        },
                        detected,
                    });
                }
                let filters: Vec<_> = p
                    .content
                    .iter()
                    .flatten()
                    .filter_map(|f| {
                        let action = f.sides.on(source)?;
                        let strength = match source {
                            GuardSource::Input => f.input_strength,
                            GuardSource::Output => f.output_strength,
                        }
                        .level();
                        let threshold = blocks_from(strength)?;
                        Some((f, action, strength, threshold))
                    })
                    .collect();
                if !filters.is_empty() {
                    let levels = content.classify(&embedded, text);
                    for (f, action, strength, threshold) in filters {
                        let i = CATEGORIES
                            .iter()
                            .position(|c| *c == f.category)
                            .unwrap_or(0);
                        let confidence = levels[i];
                        let detected = confidence >= threshold;
                        merge_content(
                            &mut a.content,
                            ContentFinding {
                                category: f.category.clone(),
                                confidence,
                                strength,
                                action: if detected {
                                    finding(action)
                                } else {
                                    FindingAction::None
                                },
                                detected,
                            },
                        );
                    }
                }
            }
            if !replacements.is_empty() {
                masked_texts.push(apply_replacements(text, replacements));
            } else {
                masked_texts.push(text.to_string());
            }
        }
        let guarded_chars: usize = guarded.iter().map(|b| b.text.chars().count()).sum();
        if source == GuardSource::Output {
            if let (Some(filters), Some((statics, _))) = (&p.grounding, &self.semantic) {
                let reference = joined(Qualifier::GroundingSource);
                let query = joined(Qualifier::Query);
                let answer: String = guarded
                    .iter()
                    .map(|b| b.text.as_str())
                    .collect::<Vec<_>>()
                    .join("\n");
                if !reference.is_empty() {
                    let scores = semantic::grounding(statics, &reference, &query, &answer);
                    for f in filters.iter().filter(|f| f.enabled) {
                        let score = if f.kind == "GROUNDING" {
                            scores.grounding
                        } else {
                            scores.relevance
                        };
                        let detected = score < f.threshold;
                        a.grounding.push(GroundingFinding {
                            kind: f.kind.clone(),
                            threshold: f.threshold,
                            score: (score * 100.0).round() / 100.0,
                            action: if detected {
                                finding(f.action)
                            } else {
                                FindingAction::None
                            },
                            detected,
                        });
                    }
                    a.units.contextual_grounding =
                        units(guarded_chars + reference.chars().count() + query.chars().count());
                }
            }
        }
        let u = units(guarded_chars);
        let on = |enabled: bool| if enabled { u } else { 0 };
        a.units = GuardrailUnits {
            topic: on(p.topics.as_ref().is_some_and(|t| !t.is_empty())),
            content: on(p.content.as_ref().is_some_and(|c| !c.is_empty())),
            word: on(p.words.is_some() || p.managed_words.is_some()),
            sensitive_information: on(p.regexes.is_some()),
            sensitive_information_free: on(p.pii.is_some()),
            contextual_grounding: a.units.contextual_grounding,
        };
        a.characters_guarded = guarded_chars as u32;
        a.characters_total = blocks.iter().map(|b| b.text.chars().count() as u32).sum();
        let all_actions = a
            .topics
            .iter()
            .map(|f| f.action)
            .chain(a.content.iter().map(|f| f.action))
            .chain(a.words.iter().map(|f| f.action))
            .chain(a.pii.iter().map(|f| f.action))
            .chain(a.regexes.iter().map(|f| f.action))
            .chain(a.grounding.iter().map(|f| f.action));
        let (mut blocked, mut masked) = (false, false);
        for action in all_actions {
            blocked |= action == FindingAction::Blocked;
            masked |= action == FindingAction::Anonymized;
        }
        a.latency_ms = started.elapsed().as_millis() as u64;
        let (outputs, action_reason) = if blocked {
            (
                vec![self.blocked_message(source).to_string()],
                "Guardrail blocked.".to_string(),
            )
        } else if masked {
            (masked_texts, "Guardrail masked.".to_string())
        } else {
            (Vec::new(), "No action.".to_string())
        };
        GuardrailOutcome {
            intervened: blocked || masked,
            action_reason,
            outputs,
            assessment: a,
        }
    }
}

/// Keeps one finding per category: the most confident over all blocks.
fn merge_content(findings: &mut Vec<ContentFinding>, new: ContentFinding) {
    match findings.iter_mut().find(|f| f.category == new.category) {
        Some(f) if new.confidence > f.confidence || (new.detected && !f.detected) => *f = new,
        Some(_) => {}
        None => findings.push(new),
    }
}

/// Replaces byte ranges (overlaps: the earliest, longest wins).
fn apply_replacements(text: &str, mut r: Vec<(usize, usize, String)>) -> String {
    r.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end, placeholder) in r {
        if start < at {
            continue;
        }
        out.push_str(&text[at..start]);
        out.push_str(&placeholder);
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sides(action: Action) -> Sides {
        Sides::both(action)
    }

    fn store() -> (tempdir::Dir, Store) {
        let dir = tempdir::Dir::new();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    mod tempdir {
        pub struct Dir(std::path::PathBuf);
        impl Dir {
            pub fn new() -> Self {
                let p = std::env::temp_dir().join(format!("basalt-guard-{}", uuid::Uuid::new_v4()));
                std::fs::create_dir_all(&p).unwrap();
                Self(p)
            }
            pub fn path(&self) -> &std::path::Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    fn policy() -> Policy {
        Policy {
            blocked_input_messaging: "Sorry, I can't take that.".into(),
            blocked_outputs_messaging: "Sorry, I can't say that.".into(),
            words: Some(vec![policy::Word {
                text: "competitor x".into(),
                sides: sides(Action::Block),
            }]),
            pii: Some(vec![
                policy::PiiEntity {
                    kind: "EMAIL".into(),
                    action: Action::Anonymize,
                    sides: sides(Action::Anonymize),
                },
                policy::PiiEntity {
                    kind: "US_SOCIAL_SECURITY_NUMBER".into(),
                    action: Action::Block,
                    sides: sides(Action::Block),
                },
            ]),
            regexes: Some(vec![policy::RegexEntity {
                name: "ORDER".into(),
                description: None,
                pattern: r"ORD-\d{6}".into(),
                action: Action::Anonymize,
                sides: sides(Action::Anonymize),
            }]),
            ..Policy::default()
        }
    }

    fn new(name: &str) -> NewGuardrail {
        NewGuardrail {
            name: name.into(),
            description: None,
            policy: policy(),
            kms_key_id: None,
            tags: Vec::new(),
        }
    }

    #[tokio::test]
    async fn versions_are_snapshots_and_drafts_change() {
        let (_d, store) = store();
        let g = Guardrails::new(store, None);
        let created = g.create(new("support")).unwrap();
        assert!(
            g.create(new("support")).is_err(),
            "duplicate names are refused"
        );
        let v1 = g.create_version(&created.id, Some("first".into())).unwrap();
        assert_eq!(v1.version, "1");
        let mut changed = new("support");
        changed.policy.blocked_input_messaging = "changed".into();
        g.update(&created.id, changed).unwrap();
        assert_eq!(
            g.get(&created.id, Some("1"))
                .unwrap()
                .policy
                .blocked_input_messaging,
            "Sorry, I can't take that."
        );
        assert_eq!(
            g.get(&created.id, None)
                .unwrap()
                .policy
                .blocked_input_messaging,
            "changed"
        );
        assert_eq!(g.list(Some(&created.id)).unwrap().len(), 2);
        g.delete(&created.id, Some("1")).unwrap();
        assert!(g.get(&created.id, Some("1")).is_err());
        let v2 = g.create_version(&created.id, None).unwrap();
        assert_eq!(v2.version, "2", "a deleted version's number is not reused");
        g.delete(&created.id, None).unwrap();
        assert!(g.list(None).unwrap().is_empty());
    }

    #[tokio::test]
    async fn masks_blocks_and_passes() {
        let (_d, store) = store();
        let g = Guardrails::new(store, None);
        let id = g.create(new("p")).unwrap().id;
        let masked = g
            .apply(
                &id,
                "DRAFT",
                GuardSource::Input,
                &[GuardText::plain("Mail a@b.com about ORD-123456 please")],
            )
            .await
            .unwrap();
        assert!(masked.intervened);
        assert_eq!(masked.outputs, vec!["Mail {EMAIL} about {ORDER} please"]);
        let blocked = g
            .apply(
                &id,
                "DRAFT",
                GuardSource::Output,
                &[GuardText::plain("Try Competitor X instead")],
            )
            .await
            .unwrap();
        assert_eq!(blocked.outputs, vec!["Sorry, I can't say that."]);
        let ok = g
            .apply(
                &id,
                "DRAFT",
                GuardSource::Input,
                &[GuardText::plain("What are your opening hours?")],
            )
            .await
            .unwrap();
        assert!(!ok.intervened && ok.outputs.is_empty());
        assert_eq!(ok.assessment.units.word, 1);
    }
}
