//! Knowledge bases: data sources (a directory behind an S3 bucket name, or
//! documents pushed directly), parsing, chunking, embedding through the
//! gateway, a hybrid index (vectors and BM25 in memory over the chunks kept in
//! SQLite, fused by reciprocal rank) with metadata filters, incremental
//! ingestion jobs that survive a restart, and RetrieveAndGenerate with
//! citations and sessions.
//!
//! Nothing here knows a wire format: `basalt-server` translates the Bedrock
//! Agent APIs into these calls.

mod bm25;
mod bucket;
pub mod chunk;
mod db;
pub mod filter;
mod index;
mod ingest;
pub mod model;
pub mod parse;
mod rag;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use basalt_gateway::{render_family, CallContext, Gateway};
use basalt_store::Store;
use basalt_types::{EmbedRequest, Error, RerankRequest, Result};
use serde_json::Value;

pub use filter::Filter;
pub use index::{IndexEntry, KbIndex, VectorIndex};
pub use model::{
    Chunking, DataSource, DeletionPolicy, DocumentRecord, IngestionJob, InlineContent,
    InlineDocument, JobStatistics, KnowledgeBase, Location, Rerank, RerankMetadata, Retrieved,
    SearchType, SourceKind,
};
pub use rag::{Citation, RagRequest, RagResponse};

use model::{new_id, now_ms};

/// A knowledge base to create.
#[derive(Debug, Clone)]
pub struct NewKnowledgeBase {
    pub name: String,
    pub description: Option<String>,
    pub role_arn: String,
    /// Embedding model id or ARN, as the client named it.
    pub embedding_model: String,
    pub echo: Value,
}

/// A data source to create (or the new state of one).
#[derive(Debug, Clone)]
pub struct NewDataSource {
    pub name: String,
    pub description: Option<String>,
    pub source: SourceKind,
    pub chunking: Chunking,
    pub deletion_policy: DeletionPolicy,
    pub echo: Value,
}

/// What to retrieve.
#[derive(Debug, Clone)]
pub struct RetrieveQuery {
    pub text: String,
    pub number_of_results: usize,
    pub search_type: SearchType,
    pub filter: Option<Filter>,
    /// Results to skip (from a `nextToken`).
    pub offset: usize,
    /// Rerank the page of results with a local model.
    pub rerank: Option<Rerank>,
}

/// Most results one retrieval returns.
pub const MAX_RESULTS: usize = 100;

/// Result ranks are fused with this reciprocal-rank constant.
const RRF_K: f64 = 60.0;

/// Knowledge bases over the store and the gateway.
pub struct Knowledge {
    store: Store,
    gateway: Arc<Gateway>,
    buckets: HashMap<String, bucket::Bucket>,
    indexes: Mutex<Indexes>,
    running: Mutex<HashSet<String>>,
    /// Jobs asked to stop (StopIngestionJob) that have not stopped yet. A
    /// job saves its status under this lock, so it never writes
    /// IN_PROGRESS over the STOPPING a stop request has just written.
    stopping: Mutex<HashSet<String>>,
    queries: QueryCache,
    /// Where each knowledge base's HNSW graph is saved (`<kb id>.usearch`).
    graph_dir: std::path::PathBuf,
    /// Chunks from which a knowledge base searches a graph.
    graph_from: usize,
}

/// One of the ingestion registries (`running`, `stopping`), locked.
fn registry(set: &Mutex<HashSet<String>>) -> Result<std::sync::MutexGuard<'_, HashSet<String>>> {
    set.lock()
        .map_err(|_| Error::internal("the ingestion registry lock was poisoned"))
}

/// A running job's hold on its data source (and any stop asked of it),
/// released when the job ends, even by a panic. A stop marks a job and
/// records it under the `stopping` lock, only while the store says it runs,
/// so it cannot record a job whose claim is already released.
struct JobClaim {
    knowledge: Arc<Knowledge>,
    ds_id: String,
    job_id: String,
}

impl Drop for JobClaim {
    fn drop(&mut self) {
        let k = &self.knowledge;
        if let Ok(mut stopping) = k.stopping.lock() {
            stopping.remove(&self.job_id);
        }
        if let Ok(mut running) = k.running.lock() {
            running.remove(&self.ds_id);
        }
    }
}

/// The loaded search indexes, by knowledge base.
#[derive(Default)]
struct Indexes {
    ready: HashMap<String, Arc<RwLock<KbIndex>>>,
    /// Knowledge bases whose index is being read from the store, with the
    /// writes committed meanwhile (the read may or may not have seen them;
    /// applying a write twice changes nothing, so they are applied again).
    loading: HashMap<String, Vec<IndexWrite>>,
}

/// A committed write to an index: chunks removed, chunks added.
type IndexWrite = (Vec<i64>, Vec<IndexEntry>);

/// Embeddings of recent Retrieve queries by (model, text): a repeated question
/// (an FAQ, a retried call, the pages of one search) skips the embedding
/// model. Bounded; the oldest entry goes first.
#[derive(Default)]
struct QueryCache {
    inner: Mutex<QueryCacheInner>,
}

/// The cached vectors, and their keys oldest first.
type QueryCacheInner = (
    HashMap<(String, String), Arc<Vec<f32>>>,
    std::collections::VecDeque<(String, String)>,
);

/// Queries whose embeddings are kept.
const QUERY_CACHE_ENTRIES: usize = 1024;

impl QueryCache {
    fn get(&self, model: &str, text: &str) -> Option<Arc<Vec<f32>>> {
        let key = (model.to_string(), text.to_string());
        self.inner.lock().ok()?.0.get(&key).cloned()
    }

    fn put(&self, model: &str, text: &str, vector: Arc<Vec<f32>>) {
        let Ok(mut guard) = self.inner.lock() else {
            return;
        };
        let (map, order) = &mut *guard;
        let key = (model.to_string(), text.to_string());
        if map.insert(key.clone(), vector).is_none() {
            order.push_back(key);
        }
        while order.len() > QUERY_CACHE_ENTRIES {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
    }
}

fn blocking_err(e: tokio::task::JoinError) -> Error {
    Error::internal(format!("a knowledge task failed: {e}"))
}

/// Runs blocking store work off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(blocking_err)?
}

impl Knowledge {
    /// Opens the knowledge side of the store and resumes the ingestion jobs a
    /// stop or crash interrupted (ingestion is incremental, so rerunning a job
    /// redoes only what did not finish). Call from within a tokio runtime.
    pub fn start(
        store: Store,
        gateway: Arc<Gateway>,
        buckets: &std::collections::BTreeMap<String, basalt_gateway::config::BucketConfig>,
    ) -> Result<Arc<Self>> {
        let buckets = buckets
            .iter()
            .map(|(name, config)| {
                bucket::Bucket::open(name, config)
                    .map(|b| (name.clone(), b))
                    .map_err(Error::validation)
            })
            .collect::<Result<_>>()?;
        let config = gateway.config();
        let graph_dir = config.store.data_dir.join("hnsw");
        let graph_from = config.knowledge.hnsw_from_chunks;
        let me = Arc::new(Self {
            store,
            gateway,
            buckets,
            indexes: Mutex::new(Indexes::default()),
            running: Mutex::new(HashSet::new()),
            stopping: Mutex::new(HashSet::new()),
            queries: QueryCache::default(),
            graph_dir,
            graph_from,
        });
        // A job asked to stop before the server went down has stopped.
        db::settle_stopping_jobs(&me.store)?;
        for job in db::unfinished_jobs(&me.store)? {
            tracing::info!(job = %job.id, data_source = %job.ds_id, "resuming ingestion job");
            me.spawn_job(job);
        }
        // Load every knowledge base's index now, so the first Retrieve after
        // a restart does not wait for it.
        let warm = Arc::clone(&me);
        tokio::spawn(async move {
            let kbs = match db::list_kbs(&warm.store) {
                Ok(kbs) => kbs,
                Err(e) => {
                    tracing::warn!(error = %e.message, "knowledge bases not listed; indexes load on first use");
                    return;
                }
            };
            warm.remove_orphan_graphs(&kbs);
            for kb in kbs {
                if let Err(e) = warm.index(&kb).await {
                    tracing::warn!(knowledge_base = %kb.id, error = %e.message, "index not loaded");
                }
            }
        });
        Ok(me)
    }

    #[must_use]
    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gateway
    }

    // ---------- knowledge bases ----------

    fn check_embedding_model(&self, id: &str) -> Result<String> {
        let entry = self.gateway.model(id).map_err(|_| {
            Error::validation(format!(
                "The embedding model {id} is not in the catalog; call ListFoundationModels with byOutputModality=EMBEDDING."
            ))
        })?;
        if entry.provider.embedding_dimension().is_none()
            && entry.config.kind != basalt_gateway::ModelKind::Embedding
        {
            return Err(Error::validation(format!(
                "The model {id} is not an embedding model."
            )));
        }
        Ok(entry.config.id.clone())
    }

    pub fn create_knowledge_base(&self, new: NewKnowledgeBase) -> Result<KnowledgeBase> {
        let embedding_model = self.check_embedding_model(&new.embedding_model)?;
        let now = now_ms();
        let kb = KnowledgeBase {
            id: new_id(),
            name: new.name,
            description: new.description,
            role_arn: new.role_arn,
            embedding_model,
            echo: new.echo,
            status: "ACTIVE".into(),
            created_at_ms: now,
            updated_at_ms: now,
        };
        // A new knowledge base has nothing in the store to load: its index is
        // ready now, so ingestion fills it (and builds its HNSW graph as it
        // grows) instead of the first Retrieve loading everything at once.
        let index = Arc::new(RwLock::new(self.empty_index(&kb.embedding_model)?));
        if !db::insert_kb(&self.store, &kb)? {
            return Err(Error::conflict(format!(
                "A knowledge base named {} already exists.",
                kb.name
            )));
        }
        // The start-up load may have listed the new row and loaded it first.
        self.indexes_lock()?
            .ready
            .entry(kb.id.clone())
            .or_insert(index);
        Ok(kb)
    }

    pub fn knowledge_base(&self, id: &str) -> Result<KnowledgeBase> {
        db::get_kb(&self.store, id)?
            .ok_or_else(|| Error::not_found(format!("The knowledge base {id} does not exist.")))
    }

    pub fn knowledge_bases(&self) -> Result<Vec<KnowledgeBase>> {
        db::list_kbs(&self.store)
    }

    /// Changes a knowledge base's name, description and role. Its embedding
    /// configuration cannot change (the index was built with it).
    pub fn update_knowledge_base(&self, id: &str, new: NewKnowledgeBase) -> Result<KnowledgeBase> {
        let mut kb = self.knowledge_base(id)?;
        let model = self.check_embedding_model(&new.embedding_model)?;
        if model != kb.embedding_model {
            return Err(Error::validation(format!(
                "The embedding model of a knowledge base cannot change (it is {}).",
                kb.embedding_model
            )));
        }
        kb.name = new.name;
        kb.description = new.description;
        kb.role_arn = new.role_arn;
        kb.echo = new.echo;
        kb.updated_at_ms = now_ms();
        if !db::update_kb(&self.store, &kb)? {
            return Err(Error::conflict(format!(
                "A knowledge base named {} already exists.",
                kb.name
            )));
        }
        Ok(kb)
    }

    pub fn delete_knowledge_base(&self, id: &str) -> Result<KnowledgeBase> {
        let mut kb = self.knowledge_base(id)?;
        if self.busy_in(id)? {
            return Err(Error::conflict(
                "An ingestion job is running in this knowledge base; wait for it to finish.",
            ));
        }
        db::delete_kb(&self.store, id)?;
        let mut indexes = self.indexes_lock()?;
        let index = indexes.ready.remove(id);
        indexes.loading.remove(id);
        drop(indexes);
        match index {
            Some(idx) => index::retire_graph(&idx, &self.graph_path(id)),
            None => {
                let _ = std::fs::remove_file(self.graph_path(id));
            }
        }
        kb.status = "DELETING".into();
        Ok(kb)
    }

    // ---------- data sources ----------

    fn check_source(&self, source: &SourceKind) -> Result<()> {
        if let SourceKind::S3 { bucket, prefixes } = source {
            if !self.buckets.contains_key(bucket) {
                return Err(Error::validation(format!(
                    "The bucket {bucket} is not configured: map it to a directory or an S3 endpoint under [knowledge.buckets] in the basalt config."
                )));
            }
            if let Some(p) = prefixes
                .iter()
                .find(|p| p.split('/').any(|seg| seg == "..") || p.starts_with('/'))
            {
                return Err(Error::validation(format!(
                    "The inclusion prefix {p:?} would leave the bucket."
                )));
            }
        }
        Ok(())
    }

    /// Chunks must fit the embedding model's input (its `context_window`
    /// less `[CLS]` and `[SEP]`): a longer chunk would be embedded from its
    /// first tokens only.
    fn check_chunking(&self, kb: &KnowledgeBase, chunking: Chunking) -> Result<()> {
        let Some(max) = chunking.embedded_max_tokens() else {
            return Ok(());
        };
        let window = self
            .gateway
            .model(&kb.embedding_model)?
            .config
            .context_window;
        let fits = window.saturating_sub(2);
        if max > fits {
            return Err(Error::validation(format!(
                "Chunks of up to {max} tokens do not fit the embedding model {}, which reads {fits} tokens of text (context_window {window}); use maxTokens of at most {fits}, or a larger context_window for the model.",
                kb.embedding_model
            )));
        }
        Ok(())
    }

    pub fn create_data_source(&self, kb_id: &str, new: NewDataSource) -> Result<DataSource> {
        let kb = self.knowledge_base(kb_id)?;
        self.check_source(&new.source)?;
        self.check_chunking(&kb, new.chunking)?;
        let now = now_ms();
        let ds = DataSource {
            id: new_id(),
            kb_id: kb_id.to_string(),
            name: new.name,
            description: new.description,
            source: new.source,
            chunking: new.chunking,
            deletion_policy: new.deletion_policy,
            echo: new.echo,
            status: "AVAILABLE".into(),
            created_at_ms: now,
            updated_at_ms: now,
        };
        if !db::insert_ds(&self.store, &ds)? {
            return Err(Error::conflict(format!(
                "A data source named {} already exists in this knowledge base.",
                ds.name
            )));
        }
        Ok(ds)
    }

    pub fn data_source(&self, kb_id: &str, id: &str) -> Result<DataSource> {
        self.knowledge_base(kb_id)?;
        db::get_ds(&self.store, kb_id, id)?.ok_or_else(|| {
            Error::not_found(format!(
                "The data source {id} does not exist in knowledge base {kb_id}."
            ))
        })
    }

    pub fn data_sources(&self, kb_id: &str) -> Result<Vec<DataSource>> {
        self.knowledge_base(kb_id)?;
        db::list_ds(&self.store, kb_id)
    }

    /// Changes a data source. Its chunking cannot change (the indexed chunks
    /// were cut with it), as in Bedrock.
    pub fn update_data_source(
        &self,
        kb_id: &str,
        id: &str,
        new: NewDataSource,
    ) -> Result<DataSource> {
        let mut ds = self.data_source(kb_id, id)?;
        if new.chunking != ds.chunking {
            return Err(Error::validation(
                "The chunking configuration of a data source cannot change; create a new data source.",
            ));
        }
        self.check_source(&new.source)?;
        ds.name = new.name;
        ds.description = new.description;
        ds.source = new.source;
        ds.deletion_policy = new.deletion_policy;
        ds.echo = new.echo;
        ds.updated_at_ms = now_ms();
        if !db::update_ds(&self.store, &ds)? {
            return Err(Error::conflict(format!(
                "A data source named {} already exists in this knowledge base.",
                ds.name
            )));
        }
        Ok(ds)
    }

    /// Deletes a data source. With the DELETE policy its chunks leave the
    /// index; with RETAIN they stay searchable.
    pub fn delete_data_source(&self, kb_id: &str, id: &str) -> Result<DataSource> {
        let mut ds = self.data_source(kb_id, id)?;
        if self.running_lock()?.contains(id) {
            return Err(Error::conflict(
                "An ingestion job is running for this data source; wait for it to finish.",
            ));
        }
        let removed = db::delete_ds(
            &self.store,
            id,
            ds.deletion_policy == DeletionPolicy::Retain,
        )?;
        self.forget(kb_id, &removed)?;
        ds.status = "DELETING".into();
        Ok(ds)
    }

    // ---------- ingestion jobs ----------

    fn running_lock(&self) -> Result<std::sync::MutexGuard<'_, HashSet<String>>> {
        registry(&self.running)
    }

    fn busy_in(&self, kb_id: &str) -> Result<bool> {
        let running = self.running_lock()?.clone();
        Ok(db::list_ds(&self.store, kb_id)?
            .iter()
            .any(|ds| running.contains(&ds.id)))
    }

    /// Starts syncing a data source with its bucket directory. One job runs
    /// per data source at a time (ConflictException otherwise).
    pub fn start_ingestion_job(
        self: &Arc<Self>,
        kb_id: &str,
        ds_id: &str,
        description: Option<String>,
    ) -> Result<IngestionJob> {
        let ds = self.data_source(kb_id, ds_id)?;
        // Check and claim in one step, so two concurrent starts cannot both run.
        if !self.running_lock()?.insert(ds.id.clone()) {
            return Err(Error::conflict(
                "An ingestion job is already running for this data source.",
            ));
        }
        let now = now_ms();
        let job = IngestionJob {
            id: new_id(),
            kb_id: kb_id.to_string(),
            ds_id: ds.id,
            description,
            status: "STARTING".into(),
            statistics: JobStatistics::default(),
            failure_reasons: Vec::new(),
            started_at_ms: now,
            updated_at_ms: now,
        };
        if let Err(e) = db::save_job(&self.store, &job) {
            self.running_lock()?.remove(&job.ds_id);
            return Err(e);
        }
        self.spawn_job(job.clone());
        Ok(job)
    }

    pub fn ingestion_job(&self, kb_id: &str, ds_id: &str, id: &str) -> Result<IngestionJob> {
        self.data_source(kb_id, ds_id)?;
        db::get_job(&self.store, ds_id, id)?
            .ok_or_else(|| Error::not_found(format!("The ingestion job {id} does not exist.")))
    }

    /// Asks a STARTING or IN_PROGRESS job to stop: it is STOPPING at once
    /// and STOPPED when it has finished the document it is on (what it
    /// indexed stays; nothing is deleted for documents it did not reach). A
    /// new job takes up the rest. A job STOPPING already is returned as it
    /// is (a retried request); ConflictException for a job that has ended.
    pub fn stop_ingestion_job(&self, kb_id: &str, ds_id: &str, id: &str) -> Result<IngestionJob> {
        let job = self.ingestion_job(kb_id, ds_id, id)?;
        let mut stopping = registry(&self.stopping)?;
        let marked = db::mark_stopping(&self.store, &job.id)?;
        if marked {
            stopping.insert(job.id.clone());
        }
        drop(stopping);
        let job = self.ingestion_job(kb_id, ds_id, id)?;
        // Once marked, the stop was taken, whatever the job has reached
        // since; STOPPING also answers a retried request.
        if marked || job.status == "STOPPING" {
            return Ok(job);
        }
        Err(Error::conflict(format!(
            "The ingestion job {id} is {}; only a STARTING or IN_PROGRESS job can be stopped.",
            job.status
        )))
    }

    /// Whether job `id` has been asked to stop.
    pub(crate) fn stop_requested(&self, id: &str) -> bool {
        self.stopping.lock().is_ok_and(|s| s.contains(id))
    }

    /// Saves a running job, as STOPPING if it has been asked to stop.
    pub(crate) fn save_running_job(&self, job: &mut IngestionJob) -> Result<()> {
        let stopping = registry(&self.stopping)?;
        if stopping.contains(&job.id) {
            job.status = "STOPPING".into();
        }
        db::save_job(&self.store, job)
    }

    pub fn ingestion_jobs(&self, kb_id: &str, ds_id: &str) -> Result<Vec<IngestionJob>> {
        self.data_source(kb_id, ds_id)?;
        db::list_jobs(&self.store, ds_id)
    }

    fn spawn_job(self: &Arc<Self>, job: IngestionJob) {
        if let Ok(mut running) = self.running.lock() {
            running.insert(job.ds_id.clone());
        }
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let kb_id = job.kb_id.clone();
            let claim = JobClaim {
                knowledge: Arc::clone(&me),
                ds_id: job.ds_id.clone(),
                job_id: job.id.clone(),
            };
            ingest::run_job(&me, job).await;
            drop(claim);
            // A job may have changed many chunks: save the graph now rather
            // than patch them in after a crash.
            let _ = tokio::task::spawn_blocking(move || me.save_graphs(Some(&kb_id))).await;
        });
    }

    // ---------- documents ----------

    /// Indexes documents pushed into a CUSTOM data source, now. Each comes back
    /// INDEXED or FAILED with the reason; a document identical to the indexed
    /// one (same text, metadata and chunking) is not redone.
    pub async fn ingest_documents(
        self: &Arc<Self>,
        kb_id: &str,
        ds_id: &str,
        docs: Vec<InlineDocument>,
        request_id: &str,
    ) -> Result<Vec<DocumentRecord>> {
        let kb = self.knowledge_base(kb_id)?;
        let ds = self.data_source(kb_id, ds_id)?;
        if ds.source != SourceKind::Custom {
            return Err(Error::validation(
                "Documents can be pushed only into a CUSTOM data source; sync an S3 data source with StartIngestionJob.",
            ));
        }
        // Every changed document is cut first, then all their chunks are
        // embedded in shared batches and each document committed on its own.
        let keys: Vec<String> = docs.iter().map(|d| d.id.clone()).collect();
        let mut prepared = Vec::new();
        let mut failed: Vec<(String, String)> = Vec::new();
        for doc in docs {
            let hash = ingest::content_hash(doc.content.bytes(), &doc.metadata, ds.chunking);
            if db::document_hash(&self.store, &ds.id, &doc.id)?.as_deref() == Some(hash.as_str()) {
                continue;
            }
            let text = match doc.content {
                InlineContent::Text(t) => t,
                InlineContent::File { name, bytes } => {
                    match ingest::parse_bytes(&name, bytes).await {
                        Ok(t) => t,
                        Err(reason) => {
                            failed.push((doc.id, reason));
                            continue;
                        }
                    }
                }
            };
            let location = Location::Custom { id: doc.id.clone() };
            match ingest::prepare(
                self,
                &kb,
                &ds,
                &doc.id,
                &text,
                doc.metadata,
                &location,
                &hash,
                false,
                request_id,
            )
            .await
            {
                Ok(p) => prepared.push(p),
                Err(reason) => failed.push((doc.id, reason)),
            }
        }
        if !prepared.is_empty() {
            for (doc, result) in
                ingest::embed_and_commit(self, &kb, &ds, prepared, request_id, None).await
            {
                if let Err(reason) = result {
                    failed.push((doc.key().to_string(), reason));
                }
            }
        }
        for (key, reason) in failed {
            let (store, kb_id, ds_id) = (self.store.clone(), kb.id.clone(), ds.id.clone());
            blocking(move || db::mark_failed(&store, &kb_id, &ds_id, &key, &reason, now_ms()))
                .await?;
        }
        keys.iter()
            .map(|key| self.document(kb_id, ds_id, key))
            .collect()
    }

    /// A document's status; NOT_FOUND status when the data source never saw it.
    pub fn document(&self, kb_id: &str, ds_id: &str, key: &str) -> Result<DocumentRecord> {
        Ok(
            db::get_document(&self.store, ds_id, key)?.unwrap_or_else(|| DocumentRecord {
                kb_id: kb_id.to_string(),
                ds_id: ds_id.to_string(),
                key: key.to_string(),
                status: "NOT_FOUND".into(),
                status_reason: None,
                updated_at_ms: now_ms(),
            }),
        )
    }

    pub fn documents(
        &self,
        kb_id: &str,
        ds_id: &str,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<DocumentRecord>> {
        self.data_source(kb_id, ds_id)?;
        db::list_documents(&self.store, ds_id, offset, limit)
    }

    /// Removes documents and their chunks from the index.
    pub fn delete_documents(
        &self,
        kb_id: &str,
        ds_id: &str,
        keys: &[String],
    ) -> Result<Vec<DocumentRecord>> {
        self.data_source(kb_id, ds_id)?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let status = match db::delete_document(&self.store, ds_id, key, None)? {
                Some(removed) => {
                    self.forget(kb_id, &removed)?;
                    "DELETING"
                }
                None => "NOT_FOUND",
            };
            out.push(DocumentRecord {
                kb_id: kb_id.to_string(),
                ds_id: ds_id.to_string(),
                key: key.clone(),
                status: status.into(),
                status_reason: None,
                updated_at_ms: now_ms(),
            });
        }
        Ok(out)
    }

    // ---------- index ----------

    fn indexes_lock(&self) -> Result<std::sync::MutexGuard<'_, Indexes>> {
        self.indexes
            .lock()
            .map_err(|_| Error::internal("the index registry lock was poisoned"))
    }

    /// Appends the in-memory indexes' gauges (Prometheus text): chunks per
    /// knowledge base, and whether its HNSW graph answers vector searches.
    pub fn render_metrics(&self, out: &mut String) {
        let ready = self.ready_indexes(None);
        // (id, chunks, graph in use). An index busy with a long write (a graph
        // being installed) is left out of this scrape rather than stalling it.
        let rows: Vec<(String, usize, bool)> = ready
            .into_iter()
            .filter_map(|(id, idx)| {
                let i = idx.try_read().ok()?;
                Some((id, i.vectors.len(), i.vectors.is_approximate()))
            })
            .collect();
        render_family(
            out,
            "basalt_knowledge_index_chunks",
            "gauge",
            "Chunks in each knowledge base's in-memory search index.",
            "knowledge_base",
            rows.iter().map(|(id, n, _)| (id, n)),
        );
        render_family(
            out,
            "basalt_knowledge_index_graph",
            "gauge",
            "1 when an HNSW graph answers the knowledge base's vector searches, 0 while they scan.",
            "knowledge_base",
            rows.iter().map(|(id, _, graph)| (id, u8::from(*graph))),
        );
    }

    /// The loaded indexes (only `kb_id`'s, if given), by knowledge-base id,
    /// taken out of the registry so its lock is not held while they are read.
    fn ready_indexes(&self, kb_id: Option<&str>) -> Vec<(String, Arc<RwLock<KbIndex>>)> {
        let Ok(indexes) = self.indexes_lock() else {
            return Vec::new();
        };
        let mut ready: Vec<_> = indexes
            .ready
            .iter()
            .filter(|(id, _)| kb_id.is_none_or(|k| k == id.as_str()))
            .map(|(id, idx)| (id.clone(), Arc::clone(idx)))
            .collect();
        drop(indexes);
        ready.sort_by(|a, b| a.0.cmp(&b.0));
        ready
    }

    /// An empty index for vectors of `model`.
    fn empty_index(&self, model: &str) -> Result<KbIndex> {
        let dimension = self
            .gateway
            .model(model)?
            .provider
            .embedding_dimension()
            .unwrap_or(0);
        Ok(KbIndex::new(dimension, self.graph_from))
    }

    /// Reads a knowledge base's chunks from the store into a new index.
    async fn load_index(&self, kb: &KnowledgeBase) -> Result<KbIndex> {
        let mut idx = self.empty_index(&kb.embedding_model)?;
        let (store, kb_id) = (self.store.clone(), kb.id.clone());
        blocking(move || {
            idx.apply(&[], &db::kb_index_chunks(&store, &kb_id)?);
            Ok(idx)
        })
        .await
    }

    /// The knowledge base's search index, loaded from the store on first use.
    async fn index(&self, kb: &KnowledgeBase) -> Result<Arc<RwLock<KbIndex>>> {
        {
            let mut indexes = self.indexes_lock()?;
            if let Some(idx) = indexes.ready.get(&kb.id) {
                return Ok(Arc::clone(idx));
            }
            // From here on, writes are kept for the loaded index.
            indexes.loading.entry(kb.id.clone()).or_default();
        }
        let loaded = self.load_index(kb).await;
        let idx = match loaded {
            Ok(idx) => idx,
            Err(e) => {
                self.indexes_lock()?.loading.remove(&kb.id);
                return Err(e);
            }
        };
        let (entry, job) = {
            let mut indexes = self.indexes_lock()?;
            if let Some(idx) = indexes.ready.get(&kb.id).cloned() {
                // Another load finished first, or the knowledge base was just
                // created with an empty index.
                indexes.loading.remove(&kb.id);
                return Ok(idx);
            }
            let mut idx = idx;
            for (removed, added) in indexes.loading.remove(&kb.id).unwrap_or_default() {
                idx.apply(&removed, &added);
            }
            let job = idx.vectors.graph_job();
            let idx = Arc::new(RwLock::new(idx));
            indexes.ready.insert(kb.id.clone(), Arc::clone(&idx));
            (idx, job)
        };
        build_graph(&entry, job, self.graph_path(&kb.id));
        Ok(entry)
    }

    /// Applies a committed write to the loaded index; an index being loaded
    /// gets it when the load ends; one not loaded will read it from the store.
    fn apply(&self, kb_id: &str, removed: &[i64], added: &[IndexEntry]) -> Result<()> {
        let idx = {
            let mut indexes = self.indexes_lock()?;
            if let Some(idx) = indexes.ready.get(kb_id) {
                Arc::clone(idx)
            } else {
                if let Some(writes) = indexes.loading.get_mut(kb_id) {
                    writes.push((removed.to_vec(), added.to_vec()));
                }
                return Ok(());
            }
        };
        let job = {
            let mut i = idx
                .write()
                .map_err(|_| Error::internal("the index lock was poisoned"))?;
            i.apply(removed, added);
            i.vectors.graph_job()
        };
        build_graph(&idx, job, self.graph_path(kb_id));
        Ok(())
    }

    /// The file a knowledge base's HNSW graph is saved in.
    fn graph_path(&self, kb_id: &str) -> std::path::PathBuf {
        self.graph_dir.join(format!("{kb_id}.usearch"))
    }

    /// Saves the HNSW graphs that changed since they were last saved (when
    /// the server stops, and after an ingestion job), so the next start reads
    /// them instead of building them again. Blocking: seconds per million chunks.
    pub fn save_graphs(&self, kb_id: Option<&str>) {
        for (id, idx) in self.ready_indexes(kb_id) {
            let started = std::time::Instant::now();
            match index::save_graph(&idx, &self.graph_path(&id)) {
                Ok(true) => tracing::info!(
                    knowledge_base = %id,
                    seconds = started.elapsed().as_secs_f32(),
                    "HNSW graph saved"
                ),
                Ok(false) => {}
                Err(e) => tracing::warn!(knowledge_base = %id, error = %e, "HNSW graph not saved"),
            }
        }
    }

    /// Deletes saved graphs (and temporary files) of knowledge bases that no
    /// longer exist, e.g. one deleted while the server was down mid-save.
    fn remove_orphan_graphs(&self, kbs: &[KnowledgeBase]) {
        let Ok(entries) = std::fs::read_dir(&self.graph_dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let known = path
                .file_stem()
                .and_then(|s| s.to_str())
                .is_some_and(|stem| kbs.iter().any(|kb| kb.id == stem));
            let ours = path
                .extension()
                .is_some_and(|e| e == "usearch" || e == "tmp");
            if ours && !known {
                let _ = std::fs::remove_file(&path);
            }
        }
    }

    fn forget(&self, kb_id: &str, removed: &[i64]) -> Result<()> {
        self.apply(kb_id, removed, &[])
    }

    /// Embeds texts with the knowledge base's model, through the gateway.
    async fn embed(
        &self,
        model: &str,
        texts: Vec<String>,
        api: &'static str,
        request_id: &str,
    ) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(64) {
            let resp = self
                .gateway
                .embed(
                    CallContext {
                        api,
                        // One metering record per call: the store keys records
                        // by request id, and a job or a RetrieveAndGenerate makes
                        // several embedding calls under one request.
                        request_id: format!("{request_id}-{}", basalt_types::new_request_id()),
                    },
                    EmbedRequest {
                        model_id: model.to_string(),
                        inputs: batch.to_vec(),
                        normalize: true,
                        dimensions: None,
                    },
                )
                .await?;
            out.extend(resp.vectors);
        }
        Ok(out)
    }

    fn token_counter(&self, model: &str) -> Result<impl Fn(&str) -> usize + Send + 'static> {
        let provider = Arc::clone(&self.gateway.model(model)?.provider);
        // Validate once; afterwards a failure counts as one token per byte/4.
        provider.count_embedding_tokens("probe")?;
        Ok(move |s: &str| {
            provider
                .count_embedding_tokens(s)
                .unwrap_or_else(|_| s.len().div_ceil(4))
        })
    }

    // ---------- retrieval ----------

    /// The query's embedding: from the cache of recent queries, or embedded
    /// (and then cached).
    async fn query_vector(
        &self,
        kb: &KnowledgeBase,
        text: &str,
        request_id: &str,
    ) -> Result<Arc<Vec<f32>>> {
        if let Some(v) = self.queries.get(&kb.embedding_model, text) {
            return Ok(v);
        }
        let v = Arc::new(
            self.embed(
                &kb.embedding_model,
                vec![text.to_string()],
                "Retrieve",
                request_id,
            )
            .await?
            .pop()
            .unwrap_or_default(),
        );
        self.queries.put(&kb.embedding_model, text, Arc::clone(&v));
        Ok(v)
    }

    /// Searches a knowledge base. Returns one page of results and whether more
    /// follow.
    pub async fn retrieve(
        &self,
        kb_id: &str,
        q: &RetrieveQuery,
        request_id: &str,
    ) -> Result<(Vec<Retrieved>, bool)> {
        let kb = self.knowledge_base(kb_id)?;
        if q.text.trim().is_empty() {
            return Err(Error::validation(
                "The retrieval query text must not be empty.",
            ));
        }
        let n = q.number_of_results.clamp(1, MAX_RESULTS);
        let want = q.offset + n + 1;
        let idx = self.index(&kb).await?;
        let candidates = want.max(50) * 2;
        let read = || {
            idx.read()
                .map_err(|_| Error::internal("the index lock was poisoned"))
        };
        // A HYBRID search's words are searched while the embedder embeds
        // the query (the embedding is polled first, so it is queued before
        // this thread turns to the words).
        let lexical = async {
            if q.search_type != SearchType::Hybrid {
                return Ok(Vec::new());
            }
            let idx = read()?;
            let terms = idx.words.query_terms(&q.text);
            // Both sides hold the same chunks: only a filter needs a lookup.
            Ok::<_, Error>(
                idx.words
                    .search(&terms, candidates, |id| {
                        q.filter
                            .as_ref()
                            .is_none_or(|f| idx.vectors.metadata(id).is_some_and(|m| f.matches(m)))
                    })
                    .into_iter()
                    .map(|(id, _)| id)
                    .collect::<Vec<_>>(),
            )
        };
        let (query_vec, lexical) =
            tokio::join!(biased; self.query_vector(&kb, &q.text, request_id), lexical);
        let (query_vec, lexical) = (query_vec?, lexical?);
        let ranked: Vec<(i64, f64)> = {
            let idx = read()?;
            let semantic = idx
                .vectors
                .search(&query_vec, candidates, q.filter.as_ref());
            match q.search_type {
                SearchType::Semantic => semantic
                    .iter()
                    .map(|(id, s)| (*id, f64::from((1.0 + s) / 2.0)))
                    .collect(),
                SearchType::Hybrid => fuse(
                    &semantic.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
                    &lexical,
                ),
            }
        };
        let page: Vec<(i64, f64)> = ranked.into_iter().skip(q.offset).take(n + 1).collect();
        let more = page.len() > n;
        let page: Vec<(i64, f64)> = page.into_iter().take(n).collect();
        let ids: Vec<i64> = page.iter().map(|(id, _)| *id).collect();
        let store = self.store.clone();
        let rows = blocking(move || db::chunks(&store, &ids)).await?;
        let scores: HashMap<i64, f64> = page.into_iter().collect();
        // Children of one HIERARCHICAL parent come back as that parent, once
        // (so a page can hold fewer results than asked for, as on Bedrock).
        let mut rows = rows;
        rows.sort_by(|a, b| {
            let score = |id| scores.get(&id).copied().unwrap_or(0.0);
            score(b.id).total_cmp(&score(a.id))
        });
        let mut parents_seen = HashSet::new();
        rows.retain(|row| {
            row.parent_text.as_ref().is_none_or(|parent| {
                parents_seen.insert((row.ds_id.clone(), row.doc_key.clone(), parent.clone()))
            })
        });
        let mut results: Vec<Retrieved> = rows
            .into_iter()
            .map(|row| {
                let mut metadata = row.metadata;
                metadata.insert(
                    "x-amz-bedrock-kb-chunk-id".into(),
                    Value::from(row.id.to_string()),
                );
                metadata.insert(
                    ingest::DATA_SOURCE_KEY.into(),
                    Value::from(row.ds_id.clone()),
                );
                Retrieved {
                    chunk_id: row.id,
                    text: row.parent_text.unwrap_or(row.text),
                    score: scores.get(&row.id).copied().unwrap_or(0.0),
                    metadata,
                    location: row.location,
                    document_id: row.doc_key,
                }
            })
            .collect();
        results.sort_by(|a, b| b.score.total_cmp(&a.score));
        if let Some(rerank) = &q.rerank {
            results = self.rerank(rerank, &q.text, results, request_id).await?;
        }
        Ok((results, more))
    }

    /// Orders results by a reranking model's relevance score (which becomes
    /// their score) and keeps the best `number_of_results`.
    async fn rerank(
        &self,
        rerank: &Rerank,
        query: &str,
        mut results: Vec<Retrieved>,
        request_id: &str,
    ) -> Result<Vec<Retrieved>> {
        if results.is_empty() {
            return Ok(results);
        }
        let documents = results
            .iter()
            .map(|r| rerank.metadata.document(&r.text, &r.metadata))
            .collect();
        let scored = self
            .gateway
            .rerank(
                CallContext {
                    api: "Retrieve",
                    request_id: format!("{request_id}-{}", basalt_types::new_request_id()),
                },
                RerankRequest {
                    model_id: rerank.model_id.clone(),
                    query: query.to_string(),
                    documents,
                },
            )
            .await?;
        for (r, s) in results.iter_mut().zip(scored.scores) {
            r.score = f64::from(s);
        }
        // Stable: equal scores keep the retrieval order.
        results.sort_by(|a, b| b.score.total_cmp(&a.score));
        results.truncate(rerank.number_of_results.unwrap_or(usize::MAX));
        Ok(results)
    }

    /// A configured bucket.
    pub(crate) fn bucket(&self, name: &str) -> Option<&bucket::Bucket> {
        self.buckets.get(name)
    }

    #[must_use]
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }
}

/// Runs a due HNSW graph build (from [`VectorIndex::graph_job`]) on a thread
/// of its own, starting from the graph saved at `path` when it still fits;
/// searches use the exact passes until it is installed. A graph that was
/// built or patched is saved for the next start.
fn build_graph(idx: &Arc<RwLock<KbIndex>>, job: Option<index::GraphJob>, path: std::path::PathBuf) {
    let Some(job) = job else {
        return;
    };
    let idx = Arc::clone(idx);
    let spawned = std::thread::Builder::new()
        .name("basalt-hnsw".into())
        .spawn(move || {
            let started = std::time::Instant::now();
            let graph = job.build(Some(&path));
            let origin = graph.as_ref().map(|g| g.1);
            let Ok(mut i) = idx.write() else { return };
            i.vectors.install_graph(graph);
            let Some(origin) = origin else { return };
            let ready = started.elapsed().as_secs_f32();
            let chunks = i.vectors.len();
            drop(i);
            let saving = std::time::Instant::now();
            let saved = index::save_graph(&idx, &path);
            if let Err(e) = &saved {
                tracing::warn!(path = %path.display(), error = %e, "HNSW graph not saved");
            }
            tracing::info!(
                chunks,
                seconds = ready,
                origin = ?origin,
                saved = saved.unwrap_or(false),
                save_seconds = saving.elapsed().as_secs_f32(),
                "HNSW graph ready"
            );
        });
    if spawned.is_err() {
        tracing::warn!("no thread for the HNSW build; searches stay exact");
    }
}

/// Reciprocal-rank fusion of two rankings, scores scaled to 0..1.
fn fuse(a: &[i64], b: &[i64]) -> Vec<(i64, f64)> {
    let mut scores: HashMap<i64, f64> = HashMap::new();
    for list in [a, b] {
        for (rank, id) in list.iter().enumerate() {
            *scores.entry(*id).or_default() += 1.0 / (RRF_K + rank as f64 + 1.0);
        }
    }
    let max = 2.0 / (RRF_K + 1.0);
    let mut out: Vec<(i64, f64)> = scores.into_iter().map(|(id, s)| (id, s / max)).collect();
    out.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fusion_rewards_agreement() {
        let fused = fuse(&[1, 2, 3], &[3, 4]);
        assert_eq!(fused[0].0, 3, "in both lists beats first in one");
        assert!(fused.iter().all(|(_, s)| *s > 0.0 && *s <= 1.0));
        assert_eq!(fused.len(), 4);
    }
}

#[cfg(test)]
mod query_cache_tests {
    use super::*;

    #[test]
    fn query_cache_is_bounded_and_keyed_by_model_and_text() {
        let c = QueryCache::default();
        c.put("m", "q", Arc::new(vec![1.0]));
        assert_eq!(c.get("m", "q").as_deref(), Some(&vec![1.0]));
        assert!(c.get("other", "q").is_none());
        for i in 0..QUERY_CACHE_ENTRIES {
            c.put("m", &format!("q{i}"), Arc::new(vec![0.0]));
        }
        assert!(c.get("m", "q").is_none(), "the oldest entry was evicted");
        assert!(c
            .get("m", &format!("q{}", QUERY_CACHE_ENTRIES - 1))
            .is_some());
    }
}
