//! Ingestion: scan a data source's directory, parse, chunk, embed and index
//! each document; skip unchanged ones, replace changed ones, remove deleted
//! ones. Statistics are saved after every document, in the same transaction
//! as the document's own change (so a crash never leaves one uncounted or
//! counted twice), so GetIngestionJob shows progress and a restart resumes
//! with what is left.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::db::{self, NewChunk};
use crate::model::{
    now_ms, Chunking, DataSource, IngestionJob, KnowledgeBase, Location, SourceKind,
};
use crate::{blocking, chunk, parse, Knowledge};

/// Sidecar files Bedrock reads metadata from: `<document>.metadata.json`.
const SIDECAR: &str = ".metadata.json";

/// Identifies a document's content, metadata and chunking: equal hashes mean
/// nothing to redo.
pub(crate) fn content_hash(
    bytes: &[u8],
    metadata: &Map<String, Value>,
    chunking: Chunking,
) -> String {
    let mut h = Sha256::new();
    h.update(bytes);
    h.update(Value::Object(metadata.clone()).to_string().as_bytes());
    h.update(format!("{chunking:?}").as_bytes());
    hex::encode(h.finalize())
}

/// A short hash of a document's metadata alone.
fn metadata_hash(metadata: &Map<String, Value>) -> String {
    let digest = Sha256::digest(Value::Object(metadata.clone()).to_string().as_bytes());
    hex::encode(&digest[..8])
}

/// Reads a `.metadata.json` sidecar: `{"metadataAttributes": {...}}`, where a
/// value is plain JSON or Bedrock's typed form `{"value": {"type": ..., "stringValue": ...}}`.
pub(crate) fn sidecar_metadata(bytes: &[u8]) -> Result<Map<String, Value>, String> {
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("invalid metadata JSON: {e}"))?;
    let attrs = v
        .get("metadataAttributes")
        .and_then(Value::as_object)
        .ok_or("the metadata file has no metadataAttributes object")?;
    let mut out = Map::new();
    for (k, v) in attrs {
        let value = match v.get("value").and_then(Value::as_object) {
            Some(typed) => match typed.get("type").and_then(Value::as_str) {
                Some("STRING") => typed.get("stringValue").cloned(),
                Some("NUMBER") => typed.get("numberValue").cloned(),
                Some("BOOLEAN") => typed.get("booleanValue").cloned(),
                Some("STRING_LIST") => typed.get("stringListValue").cloned(),
                _ => None,
            }
            .ok_or_else(|| format!("metadata attribute {k}: malformed typed value"))?,
            None => v.clone(),
        };
        out.insert(k.clone(), value);
    }
    Ok(out)
}

/// The metadata key that holds a chunk's data source id.
pub(crate) const DATA_SOURCE_KEY: &str = "x-amz-bedrock-kb-data-source-id";

fn s3_uri(bucket: &str, key: &str) -> String {
    format!("s3://{bucket}/{key}")
}

/// Runs one ingestion job to the end.
pub(crate) async fn run_job(k: &Arc<Knowledge>, mut job: IngestionJob) {
    if job.status == "IN_PROGRESS" {
        // Resumed after a stop: the scan starts over, the indexing done so far
        // (new, modified, deleted) stays counted and is not redone.
        let s = &mut job.statistics;
        s.documents_scanned = 0;
        s.metadata_documents_scanned = 0;
        s.documents_skipped = 0;
        s.documents_failed = 0;
        job.failure_reasons.clear();
    }
    job.status = "IN_PROGRESS".into();
    job.updated_at_ms = now_ms();
    if let Err(e) = k.save_running_job(&mut job) {
        tracing::error!(job = %job.id, error = %e, "could not save ingestion job");
    }
    let outcome = sync(k, &mut job).await;
    job.status = match outcome {
        Ok(Finished::Complete) => "COMPLETE".into(),
        Ok(Finished::Stopped) => "STOPPED".into(),
        Err(e) => {
            job.failure_reasons.push(e.message);
            "FAILED".into()
        }
    };
    job.updated_at_ms = now_ms();
    if let Err(e) = db::save_job(k.store(), &job) {
        tracing::error!(job = %job.id, error = %e, "could not save ingestion job");
    }
    tracing::info!(job = %job.id, status = %job.status, stats = ?job.statistics, "ingestion job finished");
}

/// How a sync ended.
enum Finished {
    /// Every document was scanned, and those gone from the source removed.
    Complete,
    /// Asked to stop (StopIngestionJob): the documents indexed so far stay;
    /// no deletions, since the scan did not see every document.
    Stopped,
}

async fn sync(k: &Arc<Knowledge>, job: &mut IngestionJob) -> basalt_types::Result<Finished> {
    let kb = k.knowledge_base(&job.kb_id)?;
    let ds = k.data_source(&job.kb_id, &job.ds_id)?;
    let SourceKind::S3 { bucket, prefixes } = &ds.source else {
        // A CUSTOM data source has nothing to scan: its documents are pushed.
        return Ok(Finished::Complete);
    };
    let listing = {
        let source = k.bucket(bucket).ok_or_else(|| {
            basalt_types::Error::validation(format!("The bucket {bucket} is no longer configured."))
        })?;
        crate::bucket::list(source, prefixes)
            .await
            .map_err(basalt_types::Error::validation)?
    };
    for key in &listing.outside {
        job.statistics.documents_failed += 1;
        job.failure_reasons.push(format!(
            "{key}: refused, it resolves outside the data source's root"
        ));
    }
    for (key, size) in &listing.too_large {
        job.statistics.documents_scanned += 1;
        job.statistics.documents_failed += 1;
        job.failure_reasons.push(format!(
            "{key}: {size} bytes is over the {} MiB limit for one file",
            crate::bucket::MAX_OBJECT_BYTES >> 20
        ));
    }
    let known: HashMap<String, String> = {
        let (store, ds_id) = (k.store().clone(), ds.id.clone());
        blocking(move || db::document_hashes(&store, &ds_id))
            .await?
            .into_iter()
            .collect()
    };
    let by_key: HashSet<&str> = listing.keys.iter().map(String::as_str).collect();
    let mut present = HashSet::new();
    let mut pending: Vec<Prepared> = Vec::new();
    let mut pending_chunks = 0usize;
    for key in &listing.keys {
        if k.stop_requested(&job.id) {
            // Chunks prepared but not yet embedded are dropped: their
            // documents are not marked indexed, so the next job does them.
            return Ok(Finished::Stopped);
        }
        if let Some(doc_key) = key.strip_suffix(SIDECAR) {
            job.statistics.metadata_documents_scanned += 1;
            if !by_key.contains(doc_key) {
                job.failure_reasons
                    .push(format!("{key}: metadata file without a document"));
            }
            continue;
        }
        job.statistics.documents_scanned += 1;
        present.insert(key.clone());
        if !parse::is_supported(key) {
            job.statistics.documents_skipped += 1;
            job.failure_reasons
                .push(format!("{key}: skipped, unsupported file type"));
            save_progress(k, job);
            continue;
        }
        let bytes = match listing.read(key).await {
            Ok(b) => b,
            Err(e) => {
                fail(k, job, &kb, &ds, key, &e).await;
                continue;
            }
        };
        let sidecar_key = format!("{key}{SIDECAR}");
        let mut metadata = if by_key.contains(sidecar_key.as_str()) {
            match listing
                .read(&sidecar_key)
                .await
                .and_then(|b| sidecar_metadata(&b))
            {
                Ok(m) => m,
                Err(e) => {
                    fail(k, job, &kb, &ds, key, &format!("{sidecar_key}: {e}")).await;
                    continue;
                }
            }
        } else {
            Map::new()
        };
        // Stored as `content.metadata`: the first part decides whether the
        // document changed, the second whether its sidecar did.
        let content = content_hash(&bytes, &metadata, ds.chunking);
        let meta = metadata_hash(&metadata);
        let hash = format!("{content}.{meta}");
        let previous = known.get(key);
        let (previous_content, previous_meta) = previous
            .map(|h| h.split_once('.').unwrap_or((h.as_str(), "")))
            .unwrap_or_default();
        if previous_content == content {
            continue;
        }
        let meta_changed = !previous_meta.is_empty() && previous_meta != meta;
        let text = match parse_bytes(key, bytes).await {
            Ok(t) => t,
            Err(e) => {
                fail(k, job, &kb, &ds, key, &e).await;
                continue;
            }
        };
        let uri = s3_uri(bucket, key);
        metadata.insert(
            "x-amz-bedrock-kb-source-uri".into(),
            Value::from(uri.clone()),
        );
        let replaces = previous.is_some_and(|h| !h.is_empty());
        match prepare(
            k,
            &kb,
            &ds,
            key,
            &text,
            metadata,
            &Location::S3 { uri },
            &hash,
            replaces,
            &job.id,
        )
        .await
        {
            Ok(mut doc) => {
                doc.meta_changed = meta_changed;
                pending_chunks += doc.texts.len();
                pending.push(doc);
            }
            Err(reason) => fail(k, job, &kb, &ds, key, &reason).await,
        }
        if pending_chunks >= EMBED_BATCH_CHUNKS {
            flush(k, job, &kb, &ds, std::mem::take(&mut pending)).await;
            pending_chunks = 0;
        }
    }
    flush(k, job, &kb, &ds, pending).await;
    for key in known.keys().filter(|key| !present.contains(*key)) {
        if k.stop_requested(&job.id) {
            return Ok(Finished::Stopped);
        }
        let (store, ds_id, key_owned) = (k.store().clone(), ds.id.clone(), key.clone());
        let mut counted = job.statistics;
        counted.documents_deleted += 1;
        let job_id = job.id.clone();
        if let Some(removed) = blocking(move || {
            let progress = db::JobProgress {
                job_id: &job_id,
                statistics: &counted,
            };
            db::delete_document(&store, &ds_id, &key_owned, Some(&progress))
        })
        .await?
        {
            k.forget(&kb.id, &removed)?;
            job.statistics = counted;
        }
    }
    Ok(Finished::Complete)
}

/// Chunks of several documents embedded in one go during a sync.
const EMBED_BATCH_CHUNKS: usize = 128;

async fn flush(
    k: &Knowledge,
    job: &mut IngestionJob,
    kb: &KnowledgeBase,
    ds: &DataSource,
    docs: Vec<Prepared>,
) {
    if docs.is_empty() {
        return;
    }
    let request_id = job.id.clone();
    // Each commit stores the job's statistics with it (new or modified
    // counted), so a crash never leaves an indexed document uncounted.
    for (doc, result) in embed_and_commit(k, kb, ds, docs, &request_id, Some(job)).await {
        if let Err(reason) = result {
            fail(k, job, kb, ds, &doc.key, &reason).await;
        }
    }
    save_progress(k, job);
}

fn save_progress(k: &Knowledge, job: &mut IngestionJob) {
    job.updated_at_ms = now_ms();
    if let Err(e) = k.save_running_job(job) {
        tracing::warn!(job = %job.id, error = %e, "could not save ingestion progress");
    }
}

async fn fail(
    k: &Knowledge,
    job: &mut IngestionJob,
    kb: &KnowledgeBase,
    ds: &DataSource,
    key: &str,
    reason: &str,
) {
    job.statistics.documents_failed += 1;
    job.failure_reasons.push(format!("{key}: {reason}"));
    let (store, kb_id, ds_id, key, reason) = (
        k.store().clone(),
        kb.id.clone(),
        ds.id.clone(),
        key.to_string(),
        reason.to_string(),
    );
    if let Err(e) =
        blocking(move || db::mark_failed(&store, &kb_id, &ds_id, &key, &reason, now_ms())).await
    {
        tracing::warn!(error = %e, "could not record a failed document");
    }
    save_progress(k, job);
}

/// A document cut into chunks, waiting for its vectors.
pub(crate) struct Prepared {
    key: String,
    hash: String,
    location: Location,
    metadata: Arc<Map<String, Value>>,
    texts: Vec<String>,
    parents: Vec<Option<String>>,
    /// Whether the index had an earlier version (modified, not new).
    replaces: bool,
    /// Whether its `.metadata.json` sidecar changed since that version
    /// (counted when the document is committed).
    meta_changed: bool,
}

impl Prepared {
    /// The document's key in its data source.
    pub(crate) fn key(&self) -> &str {
        &self.key
    }
}

/// Chunks one document's text with the data source's strategy.
#[expect(clippy::too_many_arguments, reason = "one document's context")]
pub(crate) async fn prepare(
    k: &Knowledge,
    kb: &KnowledgeBase,
    ds: &DataSource,
    key: &str,
    text: &str,
    metadata: Map<String, Value>,
    location: &Location,
    hash: &str,
    replaces: bool,
    request_id: &str,
) -> Result<Prepared, String> {
    if text.trim().is_empty() {
        return Err("the document has no text".into());
    }
    // Filterable like any attribute, as on Bedrock.
    let mut metadata = metadata;
    metadata.insert(DATA_SOURCE_KEY.into(), Value::from(ds.id.clone()));
    let spans = cut(k, kb, text, ds.chunking, request_id)
        .await
        .map_err(|e| e.message)?;
    Ok(Prepared {
        key: key.to_string(),
        hash: hash.to_string(),
        location: location.clone(),
        metadata: Arc::new(metadata),
        texts: spans
            .iter()
            .map(|c| text[c.start..c.end].to_string())
            .collect(),
        parents: spans
            .iter()
            .map(|c| c.parent.map(|(s, e)| text[s..e].to_string()))
            .collect(),
        replaces,
        meta_changed: false,
    })
}

/// Embeds the chunks of several documents in shared calls, then writes each
/// document (chunks, vectors, FTS rows) in its own transaction. Returns each
/// document's outcome, in order.
pub(crate) async fn embed_and_commit(
    k: &Knowledge,
    kb: &KnowledgeBase,
    ds: &DataSource,
    docs: Vec<Prepared>,
    request_id: &str,
    mut job: Option<&mut IngestionJob>,
) -> Vec<(Prepared, Result<usize, String>)> {
    let texts: Vec<String> = docs.iter().flat_map(|d| d.texts.iter().cloned()).collect();
    let vectors = match k
        .embed(
            &kb.embedding_model,
            texts,
            "KnowledgeBaseIngestion",
            request_id,
        )
        .await
    {
        Ok(v) => v,
        Err(e) => {
            let reason = format!("embedding failed: {}", e.message);
            return docs.into_iter().map(|d| (d, Err(reason.clone()))).collect();
        }
    };
    let mut vectors = vectors.into_iter();
    let mut out = Vec::with_capacity(docs.len());
    for doc in docs {
        let doc_vectors: Vec<Vec<f32>> = vectors.by_ref().take(doc.texts.len()).collect();
        let counted = job.as_deref().map(|j| {
            let mut s = j.statistics;
            if doc.replaces {
                s.modified_documents_indexed += 1;
            } else {
                s.new_documents_indexed += 1;
            }
            if doc.meta_changed {
                s.metadata_documents_modified += 1;
            }
            (j.id.clone(), s)
        });
        let result = commit(k, kb, ds, &doc, doc_vectors, counted.clone()).await;
        if let (Ok(_), Some(job), Some((_, s))) = (&result, job.as_deref_mut(), counted) {
            job.statistics = s;
        }
        out.push((doc, result));
    }
    out
}

async fn commit(
    k: &Knowledge,
    kb: &KnowledgeBase,
    ds: &DataSource,
    doc: &Prepared,
    vectors: Vec<Vec<f32>>,
    counted: Option<(String, crate::model::JobStatistics)>,
) -> Result<usize, String> {
    if vectors.len() != doc.texts.len() {
        return Err("the embedding model returned too few vectors".into());
    }
    let chunks: Vec<NewChunk> = doc
        .texts
        .iter()
        .zip(&doc.parents)
        .zip(&vectors)
        .map(|((t, p), v)| NewChunk {
            text: t.clone(),
            parent_text: p.clone(),
            metadata: (*doc.metadata).clone(),
            embedding: v.clone(),
        })
        .collect();
    let n = chunks.len();
    let (store, kb_id, ds_id, key, hash, location) = (
        k.store().clone(),
        kb.id.clone(),
        ds.id.clone(),
        doc.key.clone(),
        doc.hash.clone(),
        doc.location.clone(),
    );
    let (removed, added) = blocking(move || {
        let progress = counted
            .as_ref()
            .map(|(job_id, statistics)| db::JobProgress { job_id, statistics });
        db::replace_document(
            &store,
            &kb_id,
            &ds_id,
            &key,
            &hash,
            &location,
            &chunks,
            now_ms(),
            progress.as_ref(),
        )
    })
    .await
    .map_err(|e| e.message)?;
    let added: Vec<crate::IndexEntry> = added
        .into_iter()
        .zip(vectors)
        .zip(&doc.texts)
        .map(|((id, vector), text)| crate::IndexEntry {
            id,
            vector,
            metadata: Arc::clone(&doc.metadata),
            text: text.clone(),
        })
        .collect();
    k.apply(&kb.id, &removed, &added).map_err(|e| e.message)?;
    Ok(n)
}

/// Cuts a document with the data source's strategy.
async fn cut(
    k: &Knowledge,
    kb: &KnowledgeBase,
    text: &str,
    chunking: Chunking,
    request_id: &str,
) -> basalt_types::Result<Vec<chunk::Chunk>> {
    // Cutting counts tokens word by word: on the blocking pool, so a long
    // document does not hold an async worker (and the Retrieves behind it).
    let count = k.token_counter(&kb.embedding_model)?;
    let owned = text.to_string();
    match chunking {
        Chunking::FixedSize {
            max_tokens,
            overlap_percentage,
        } => {
            blocking(move || {
                Ok(chunk::fixed_size(
                    &owned,
                    max_tokens as usize,
                    overlap_percentage as usize,
                    &count,
                ))
            })
            .await
        }
        Chunking::Hierarchical {
            parent_max_tokens,
            child_max_tokens,
            overlap_tokens,
        } => {
            blocking(move || {
                Ok(chunk::hierarchical(
                    &owned,
                    parent_max_tokens as usize,
                    child_max_tokens as usize,
                    overlap_tokens as usize,
                    &count,
                ))
            })
            .await
        }
        Chunking::Semantic {
            max_tokens,
            buffer_size,
            breakpoint_percentile_threshold,
        } => {
            let (sentences, windows) = blocking(move || {
                let sentences = chunk::sentences(&owned);
                let windows = chunk::buffered_windows(&owned, &sentences, buffer_size as usize);
                Ok((sentences, windows))
            })
            .await?;
            let vectors = if windows.len() < 2 {
                Vec::new()
            } else {
                k.embed(
                    &kb.embedding_model,
                    windows,
                    "KnowledgeBaseIngestion",
                    request_id,
                )
                .await?
            };
            let owned = text.to_string();
            blocking(move || {
                Ok(chunk::semantic(
                    &owned,
                    &sentences,
                    &vectors,
                    max_tokens as usize,
                    breakpoint_percentile_threshold as usize,
                    &count,
                ))
            })
            .await
        }
        Chunking::None => Ok(chunk::whole(text)),
    }
}

/// Parses a document's bytes on the blocking pool (PDF text extraction can
/// take seconds).
pub(crate) async fn parse_bytes(name: &str, bytes: Vec<u8>) -> Result<String, String> {
    let name = name.to_string();
    tokio::task::spawn_blocking(move || {
        parse::parse_document(&name, &bytes).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| format!("the parser failed: {e}"))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bucket::scan;

    #[test]
    fn sidecars_accept_plain_and_typed_values() {
        let m = sidecar_metadata(
            br#"{"metadataAttributes": {"year": 2021, "genre": {"value": {"type": "STRING", "stringValue": "news"}, "includeForEmbedding": false}, "tags": {"value": {"type": "STRING_LIST", "stringListValue": ["a", "b"]}}}}"#,
        )
        .unwrap();
        assert_eq!(m["year"], Value::from(2021));
        assert_eq!(m["genre"], Value::from("news"));
        assert_eq!(m["tags"], serde_json::json!(["a", "b"]));
        assert!(sidecar_metadata(b"{}").is_err());
        assert!(sidecar_metadata(b"not json").is_err());
    }

    #[test]
    fn hashes_change_with_content_metadata_and_chunking() {
        let m = Map::new();
        let a = content_hash(b"x", &m, Chunking::None);
        assert_eq!(a, content_hash(b"x", &m, Chunking::None));
        assert_ne!(a, content_hash(b"y", &m, Chunking::None));
        assert_ne!(a, content_hash(b"x", &m, Chunking::DEFAULT));
        let mut m2 = Map::new();
        m2.insert("k".into(), Value::from(1));
        assert_ne!(a, content_hash(b"x", &m2, Chunking::None));
    }

    #[test]
    fn scan_filters_prefixes_and_refuses_links_out_of_the_root() {
        let base = std::env::temp_dir().join(format!("basalt-scan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("bucket");
        std::fs::create_dir_all(root.join("docs/sub")).unwrap();
        std::fs::create_dir_all(root.join("other")).unwrap();
        std::fs::write(root.join("docs/a.txt"), "a").unwrap();
        std::fs::write(root.join("docs/sub/b.md"), "b").unwrap();
        std::fs::write(root.join("other/c.txt"), "c").unwrap();
        std::fs::write(base.join("secret.txt"), "s").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(base.join("secret.txt"), root.join("docs/link.txt")).unwrap();
        let (files, outside) = scan(&root, &["docs/".into()]).unwrap();
        let keys: Vec<&str> = files.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(keys, vec!["docs/a.txt", "docs/sub/b.md"]);
        #[cfg(unix)]
        assert_eq!(outside, vec!["docs/link.txt".to_string()]);
        let (all, _) = scan(&root, &[]).unwrap();
        assert_eq!(all.len(), 3);
        let _ = std::fs::remove_dir_all(&base);
    }
}
