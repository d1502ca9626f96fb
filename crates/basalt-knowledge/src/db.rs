//! SQL over the store's knowledge tables. Every function here is blocking;
//! async callers run them on a blocking thread.

use std::sync::Arc;

use basalt_store::rusqlite::{params, Connection, OptionalExtension};
use basalt_store::Store;
use basalt_types::{Error, Result};
use serde_json::{Map, Value};

use crate::model::{now_ms, DataSource, DocumentRecord, IngestionJob, KnowledgeBase, Location};
use crate::IndexEntry;

fn internal(e: impl std::fmt::Display) -> Error {
    Error::internal(format!("knowledge store: {e}"))
}

fn with<T>(
    store: &Store,
    f: impl FnOnce(&mut Connection) -> basalt_store::rusqlite::Result<T>,
) -> Result<T> {
    store
        .with_connection(|c| f(c).map_err(basalt_store::StoreError::from))
        .map_err(internal)
}

/// Runs a read on one of the store's read-only connections: it does not wait
/// for a write under way (a large document being committed).
fn read<T>(
    store: &Store,
    f: impl FnOnce(&Connection) -> basalt_store::rusqlite::Result<T>,
) -> Result<T> {
    store
        .read(|c| f(c).map_err(basalt_store::StoreError::from))
        .map_err(internal)
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(internal)
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> basalt_store::rusqlite::Result<T> {
    serde_json::from_str(s).map_err(|e| {
        basalt_store::rusqlite::Error::FromSqlConversionFailure(
            0,
            basalt_store::rusqlite::types::Type::Text,
            Box::new(e),
        )
    })
}

// ---------- knowledge bases ----------

pub fn insert_kb(store: &Store, kb: &KnowledgeBase) -> Result<bool> {
    let config = to_json(kb)?;
    with(store, |c| {
        let n = c.execute(
            "INSERT OR IGNORE INTO knowledge_bases (id, name, config, status, created_at_ms, updated_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![kb.id, kb.name, config, kb.status, kb.created_at_ms, kb.updated_at_ms],
        )?;
        Ok(n == 1)
    })
}

pub fn update_kb(store: &Store, kb: &KnowledgeBase) -> Result<bool> {
    let config = to_json(kb)?;
    with(store, |c| {
        let taken: Option<String> = c
            .query_row(
                "SELECT id FROM knowledge_bases WHERE name = ?1 AND id != ?2",
                params![kb.name, kb.id],
                |r| r.get(0),
            )
            .optional()?;
        if taken.is_some() {
            return Ok(false);
        }
        c.execute(
            "UPDATE knowledge_bases SET name = ?2, config = ?3, status = ?4, updated_at_ms = ?5 WHERE id = ?1",
            params![kb.id, kb.name, config, kb.status, kb.updated_at_ms],
        )?;
        Ok(true)
    })
}

pub fn get_kb(store: &Store, id: &str) -> Result<Option<KnowledgeBase>> {
    read(store, |c| {
        c.query_row(
            "SELECT config FROM knowledge_bases WHERE id = ?1",
            [id],
            |r| from_json(&r.get::<_, String>(0)?),
        )
        .optional()
    })
}

pub fn list_kbs(store: &Store) -> Result<Vec<KnowledgeBase>> {
    read(store, |c| {
        let mut stmt =
            c.prepare("SELECT config FROM knowledge_bases ORDER BY created_at_ms, id")?;
        let rows = stmt.query_map([], |r| from_json(&r.get::<_, String>(0)?))?;
        rows.collect()
    })
}

/// Deletes a knowledge base with everything in it.
pub fn delete_kb(store: &Store, id: &str) -> Result<()> {
    with(store, |c| {
        let tx = c.transaction()?;
        tx.execute("DELETE FROM kb_chunks WHERE kb_id = ?1", [id])?;
        tx.execute("DELETE FROM kb_documents WHERE kb_id = ?1", [id])?;
        tx.execute("DELETE FROM ingestion_jobs WHERE kb_id = ?1", [id])?;
        tx.execute("DELETE FROM data_sources WHERE kb_id = ?1", [id])?;
        tx.execute("DELETE FROM knowledge_bases WHERE id = ?1", [id])?;
        tx.commit()
    })
}

// ---------- data sources ----------

pub fn insert_ds(store: &Store, ds: &DataSource) -> Result<bool> {
    let config = to_json(ds)?;
    with(store, |c| {
        let n = c.execute(
            "INSERT OR IGNORE INTO data_sources (id, kb_id, name, config, status, created_at_ms, updated_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![ds.id, ds.kb_id, ds.name, config, ds.status, ds.created_at_ms, ds.updated_at_ms],
        )?;
        Ok(n == 1)
    })
}

pub fn update_ds(store: &Store, ds: &DataSource) -> Result<bool> {
    let config = to_json(ds)?;
    with(store, |c| {
        let taken: Option<String> = c
            .query_row(
                "SELECT id FROM data_sources WHERE kb_id = ?1 AND name = ?2 AND id != ?3",
                params![ds.kb_id, ds.name, ds.id],
                |r| r.get(0),
            )
            .optional()?;
        if taken.is_some() {
            return Ok(false);
        }
        c.execute(
            "UPDATE data_sources SET name = ?2, config = ?3, status = ?4, updated_at_ms = ?5 WHERE id = ?1",
            params![ds.id, ds.name, config, ds.status, ds.updated_at_ms],
        )?;
        Ok(true)
    })
}

pub fn get_ds(store: &Store, kb_id: &str, id: &str) -> Result<Option<DataSource>> {
    read(store, |c| {
        c.query_row(
            "SELECT config FROM data_sources WHERE kb_id = ?1 AND id = ?2",
            [kb_id, id],
            |r| from_json(&r.get::<_, String>(0)?),
        )
        .optional()
    })
}

pub fn list_ds(store: &Store, kb_id: &str) -> Result<Vec<DataSource>> {
    read(store, |c| {
        let mut stmt = c.prepare(
            "SELECT config FROM data_sources WHERE kb_id = ?1 ORDER BY created_at_ms, id",
        )?;
        let rows = stmt.query_map([kb_id], |r| from_json(&r.get::<_, String>(0)?))?;
        rows.collect()
    })
}

/// Deletes a data source; its chunks too unless `keep_chunks`. Returns the
/// removed chunk ids.
pub fn delete_ds(store: &Store, id: &str, keep_chunks: bool) -> Result<Vec<i64>> {
    with(store, |c| {
        let tx = c.transaction()?;
        let mut removed = Vec::new();
        if !keep_chunks {
            {
                let mut stmt = tx.prepare("SELECT id FROM kb_chunks WHERE ds_id = ?1")?;
                let ids = stmt.query_map([id], |r| r.get::<_, i64>(0))?;
                for i in ids {
                    removed.push(i?);
                }
            }
            tx.execute("DELETE FROM kb_chunks WHERE ds_id = ?1", [id])?;
        }
        tx.execute("DELETE FROM kb_documents WHERE ds_id = ?1", [id])?;
        tx.execute("DELETE FROM ingestion_jobs WHERE ds_id = ?1", [id])?;
        tx.execute("DELETE FROM data_sources WHERE id = ?1", [id])?;
        tx.commit()?;
        Ok(removed)
    })
}

// ---------- ingestion jobs ----------

pub fn save_job(store: &Store, job: &IngestionJob) -> Result<()> {
    let stats = to_json(&job.statistics)?;
    let reasons = to_json(&job.failure_reasons)?;
    with(store, |c| {
        c.execute(
            "INSERT OR REPLACE INTO ingestion_jobs (id, kb_id, ds_id, description, status, statistics,
                failure_reasons, started_at_ms, updated_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                job.id,
                job.kb_id,
                job.ds_id,
                job.description,
                job.status,
                stats,
                reasons,
                job.started_at_ms,
                job.updated_at_ms
            ],
        )?;
        Ok(())
    })
}

fn job_from_row(
    r: &basalt_store::rusqlite::Row<'_>,
) -> basalt_store::rusqlite::Result<IngestionJob> {
    Ok(IngestionJob {
        id: r.get(0)?,
        kb_id: r.get(1)?,
        ds_id: r.get(2)?,
        description: r.get(3)?,
        status: r.get(4)?,
        statistics: from_json(&r.get::<_, String>(5)?)?,
        failure_reasons: from_json(&r.get::<_, String>(6)?)?,
        started_at_ms: r.get(7)?,
        updated_at_ms: r.get(8)?,
    })
}

const JOB_COLUMNS: &str = "id, kb_id, ds_id, description, status, statistics, failure_reasons, started_at_ms, updated_at_ms";

pub fn get_job(store: &Store, ds_id: &str, id: &str) -> Result<Option<IngestionJob>> {
    read(store, |c| {
        c.query_row(
            &format!("SELECT {JOB_COLUMNS} FROM ingestion_jobs WHERE ds_id = ?1 AND id = ?2"),
            [ds_id, id],
            job_from_row,
        )
        .optional()
    })
}

pub fn list_jobs(store: &Store, ds_id: &str) -> Result<Vec<IngestionJob>> {
    read(store, |c| {
        let mut stmt = c.prepare(&format!(
            "SELECT {JOB_COLUMNS} FROM ingestion_jobs WHERE ds_id = ?1 ORDER BY started_at_ms, id"
        ))?;
        let rows = stmt.query_map([ds_id], job_from_row)?;
        rows.collect()
    })
}

/// Marks a STARTING or IN_PROGRESS job STOPPING; whether it was one.
pub fn mark_stopping(store: &Store, id: &str) -> Result<bool> {
    with(store, |c| {
        c.execute(
            "UPDATE ingestion_jobs SET status = 'STOPPING', updated_at_ms = ?2
             WHERE id = ?1 AND status IN ('STARTING', 'IN_PROGRESS')",
            params![id, now_ms()],
        )
    })
    .map(|n| n > 0)
}

/// Marks every STOPPING job STOPPED (at start: nothing runs them any more).
pub fn settle_stopping_jobs(store: &Store) -> Result<()> {
    with(store, |c| {
        c.execute(
            "UPDATE ingestion_jobs SET status = 'STOPPED', updated_at_ms = ?1 WHERE status = 'STOPPING'",
            params![now_ms()],
        )
    })
    .map(drop)
}

/// Jobs a crash or restart interrupted.
pub fn unfinished_jobs(store: &Store) -> Result<Vec<IngestionJob>> {
    read(store, |c| {
        let mut stmt = c.prepare(&format!(
            "SELECT {JOB_COLUMNS} FROM ingestion_jobs WHERE status IN ('STARTING', 'IN_PROGRESS') ORDER BY started_at_ms"
        ))?;
        let rows = stmt.query_map([], job_from_row)?;
        rows.collect()
    })
}

// ---------- documents and chunks ----------

/// A chunk ready to be written.
pub struct NewChunk {
    pub text: String,
    pub parent_text: Option<String>,
    pub metadata: Map<String, Value>,
    pub embedding: Vec<f32>,
}

pub fn document_hashes(store: &Store, ds_id: &str) -> Result<Vec<(String, String)>> {
    read(store, |c| {
        let mut stmt =
            c.prepare("SELECT doc_key, content_hash FROM kb_documents WHERE ds_id = ?1")?;
        let rows = stmt.query_map([ds_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect()
    })
}

/// The content hash a document was indexed with (empty after a failure).
pub fn document_hash(store: &Store, ds_id: &str, key: &str) -> Result<Option<String>> {
    read(store, |c| {
        c.query_row(
            "SELECT content_hash FROM kb_documents WHERE ds_id = ?1 AND doc_key = ?2",
            [ds_id, key],
            |r| r.get(0),
        )
        .optional()
    })
}

fn embedding_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn blob_embedding(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// An ingestion job's statistics to store in the same transaction as a
/// document's change, so that a crash never leaves a change uncounted (or
/// counted twice when the resumed job finds it already made).
pub struct JobProgress<'a> {
    pub job_id: &'a str,
    pub statistics: &'a crate::model::JobStatistics,
}

impl JobProgress<'_> {
    /// The job id and its statistics as stored.
    fn row(progress: Option<&Self>) -> Result<Option<(String, String)>> {
        progress
            .map(|p| Ok((p.job_id.to_string(), to_json(p.statistics)?)))
            .transpose()
    }
}

fn save_progress(
    tx: &Connection,
    progress: Option<&(String, String)>,
    now_ms: i64,
) -> basalt_store::rusqlite::Result<()> {
    if let Some((job_id, statistics)) = progress {
        tx.execute(
            "UPDATE ingestion_jobs SET statistics = ?2, updated_at_ms = ?3 WHERE id = ?1",
            params![job_id, statistics, now_ms],
        )?;
    }
    Ok(())
}

/// Replaces a document's chunks (text, vectors) and records it, with the
/// job's progress when a job makes the change, in one transaction. Returns
/// (removed chunk ids, new chunk ids).
#[expect(clippy::too_many_arguments, reason = "one transaction's inputs")]
pub fn replace_document(
    store: &Store,
    kb_id: &str,
    ds_id: &str,
    key: &str,
    hash: &str,
    location: &Location,
    chunks: &[NewChunk],
    now_ms: i64,
    progress: Option<&JobProgress<'_>>,
) -> Result<(Vec<i64>, Vec<i64>)> {
    let location = to_json(location)?;
    let progress = JobProgress::row(progress)?;
    let metas: Vec<String> = chunks
        .iter()
        .map(|c| to_json(&c.metadata))
        .collect::<Result<_>>()?;
    with(store, |c| {
        let tx = c.transaction()?;
        let removed = remove_chunks(&tx, ds_id, key)?;
        let mut added = Vec::with_capacity(chunks.len());
        {
            let mut chunk_stmt = tx.prepare(
                "INSERT INTO kb_chunks (kb_id, ds_id, doc_key, text, parent_text, metadata, location, embedding)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for (chunk, meta) in chunks.iter().zip(&metas) {
                chunk_stmt.execute(params![
                    kb_id,
                    ds_id,
                    key,
                    chunk.text,
                    chunk.parent_text,
                    meta,
                    location,
                    embedding_blob(&chunk.embedding)
                ])?;
                added.push(tx.last_insert_rowid());
            }
        }
        tx.execute(
            "INSERT OR REPLACE INTO kb_documents (ds_id, doc_key, kb_id, content_hash, status, status_reason, updated_at_ms)
             VALUES (?1, ?2, ?3, ?4, 'INDEXED', NULL, ?5)",
            params![ds_id, key, kb_id, hash, now_ms],
        )?;
        save_progress(&tx, progress.as_ref(), now_ms)?;
        tx.commit()?;
        Ok((removed, added))
    })
}

fn remove_chunks(
    tx: &Connection,
    ds_id: &str,
    key: &str,
) -> basalt_store::rusqlite::Result<Vec<i64>> {
    let mut removed = Vec::new();
    {
        let mut stmt = tx.prepare("SELECT id FROM kb_chunks WHERE ds_id = ?1 AND doc_key = ?2")?;
        for id in stmt.query_map([ds_id, key], |r| r.get::<_, i64>(0))? {
            removed.push(id?);
        }
    }
    tx.execute(
        "DELETE FROM kb_chunks WHERE ds_id = ?1 AND doc_key = ?2",
        [ds_id, key],
    )?;
    Ok(removed)
}

/// Records a document that could not be indexed (its old chunks stay).
pub fn mark_failed(
    store: &Store,
    kb_id: &str,
    ds_id: &str,
    key: &str,
    reason: &str,
    now_ms: i64,
) -> Result<()> {
    with(store, |c| {
        c.execute(
            "INSERT INTO kb_documents (ds_id, doc_key, kb_id, content_hash, status, status_reason, updated_at_ms)
             VALUES (?1, ?2, ?3, '', 'FAILED', ?4, ?5)
             ON CONFLICT (ds_id, doc_key) DO UPDATE SET status = 'FAILED', status_reason = ?4, updated_at_ms = ?5, content_hash = ''",
            params![ds_id, key, kb_id, reason, now_ms],
        )?;
        Ok(())
    })
}

/// Removes a document and its chunks; returns the removed chunk ids, or
/// `None` when there was no such document.
pub fn delete_document(
    store: &Store,
    ds_id: &str,
    key: &str,
    progress: Option<&JobProgress<'_>>,
) -> Result<Option<Vec<i64>>> {
    let progress = JobProgress::row(progress)?;
    with(store, |c| {
        let tx = c.transaction()?;
        let removed = remove_chunks(&tx, ds_id, key)?;
        let n = tx.execute(
            "DELETE FROM kb_documents WHERE ds_id = ?1 AND doc_key = ?2",
            [ds_id, key],
        )?;
        if n > 0 {
            save_progress(&tx, progress.as_ref(), crate::model::now_ms())?;
        }
        tx.commit()?;
        Ok((n > 0).then_some(removed))
    })
}

fn doc_from_row(
    r: &basalt_store::rusqlite::Row<'_>,
) -> basalt_store::rusqlite::Result<DocumentRecord> {
    Ok(DocumentRecord {
        kb_id: r.get(0)?,
        ds_id: r.get(1)?,
        key: r.get(2)?,
        status: r.get(3)?,
        status_reason: r.get(4)?,
        updated_at_ms: r.get(5)?,
    })
}

pub fn get_document(store: &Store, ds_id: &str, key: &str) -> Result<Option<DocumentRecord>> {
    read(store, |c| {
        c.query_row(
            "SELECT kb_id, ds_id, doc_key, status, status_reason, updated_at_ms FROM kb_documents WHERE ds_id = ?1 AND doc_key = ?2",
            [ds_id, key],
            doc_from_row,
        )
        .optional()
    })
}

pub fn list_documents(
    store: &Store,
    ds_id: &str,
    offset: usize,
    limit: usize,
) -> Result<Vec<DocumentRecord>> {
    read(store, |c| {
        let mut stmt = c.prepare(
            "SELECT kb_id, ds_id, doc_key, status, status_reason, updated_at_ms FROM kb_documents
             WHERE ds_id = ?1 ORDER BY doc_key LIMIT ?2 OFFSET ?3",
        )?;
        let rows = stmt.query_map(params![ds_id, limit as i64, offset as i64], doc_from_row)?;
        rows.collect()
    })
}

/// Every chunk vector of a knowledge base, with its metadata (to build the
/// in-memory index).
/// Every chunk of a knowledge base, for building its search index.
pub fn kb_index_chunks(store: &Store, kb_id: &str) -> Result<Vec<IndexEntry>> {
    read(store, |c| {
        let mut stmt = c.prepare(
            "SELECT id, metadata, embedding, text, ds_id FROM kb_chunks WHERE kb_id = ?1",
        )?;
        let rows = stmt.query_map([kb_id], |r| {
            let mut metadata: Map<String, Value> = from_json(&r.get::<_, String>(1)?)?;
            // Chunks stored before the data source id was part of their
            // metadata get it here, so filters on it see every chunk.
            if !metadata.contains_key(crate::ingest::DATA_SOURCE_KEY) {
                metadata.insert(
                    crate::ingest::DATA_SOURCE_KEY.into(),
                    Value::from(r.get::<_, String>(4)?),
                );
            }
            Ok(IndexEntry {
                id: r.get(0)?,
                metadata: Arc::new(metadata),
                vector: blob_embedding(&r.get::<_, Vec<u8>>(2)?),
                text: r.get(3)?,
            })
        })?;
        rows.collect()
    })
}

/// A chunk's stored fields, for building results.
pub struct ChunkRow {
    pub id: i64,
    pub ds_id: String,
    pub doc_key: String,
    pub text: String,
    pub parent_text: Option<String>,
    pub metadata: Map<String, Value>,
    pub location: Location,
}

pub fn chunks(store: &Store, ids: &[i64]) -> Result<Vec<ChunkRow>> {
    read(store, |c| {
        // One snapshot for all the rows.
        let tx = c.unchecked_transaction()?;
        let mut stmt = tx.prepare_cached(
            "SELECT id, ds_id, doc_key, text, parent_text, metadata, location FROM kb_chunks WHERE id = ?1",
        )?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let row = stmt
                .query_row([id], |r| {
                    Ok(ChunkRow {
                        id: r.get(0)?,
                        ds_id: r.get(1)?,
                        doc_key: r.get(2)?,
                        text: r.get(3)?,
                        parent_text: r.get(4)?,
                        metadata: from_json(&r.get::<_, String>(5)?)?,
                        location: from_json(&r.get::<_, String>(6)?)?,
                    })
                })
                .optional()?;
            out.extend(row);
        }
        drop(stmt);
        tx.commit()?;
        Ok(out)
    })
}

// ---------- RAG sessions ----------

/// A session's turns, unless it was last used before `since_ms`.
pub fn get_session(
    store: &Store,
    id: &str,
    since_ms: i64,
) -> Result<Option<Vec<(String, String)>>> {
    read(store, |c| {
        c.query_row(
            "SELECT turns FROM rag_sessions WHERE id = ?1 AND updated_at_ms >= ?2",
            params![id, since_ms],
            |r| from_json(&r.get::<_, String>(0)?),
        )
        .optional()
    })
}

/// Stores a session's turns, and drops sessions last used before
/// `expired_before_ms`.
pub fn save_session(
    store: &Store,
    id: &str,
    turns: &[(String, String)],
    now_ms: i64,
    expired_before_ms: i64,
) -> Result<()> {
    let turns = to_json(&turns)?;
    with(store, |c| {
        c.execute(
            "INSERT OR REPLACE INTO rag_sessions (id, turns, updated_at_ms) VALUES (?1, ?2, ?3)",
            params![id, turns, now_ms],
        )?;
        c.execute(
            "DELETE FROM rag_sessions WHERE updated_at_ms < ?1",
            [expired_before_ms],
        )?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{IngestionJob, JobStatistics};

    #[test]
    fn only_running_jobs_are_marked_stopping_and_a_restart_settles_them() {
        let dir = std::env::temp_dir().join(format!("basalt-db-stopping-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir).unwrap();
        for (id, status) in [
            ("RUN", "IN_PROGRESS"),
            ("NEW", "STARTING"),
            ("DONE", "COMPLETE"),
        ] {
            let job = IngestionJob {
                id: id.into(),
                kb_id: "KB1".into(),
                ds_id: "DS1".into(),
                description: None,
                status: status.into(),
                statistics: JobStatistics::default(),
                failure_reasons: Vec::new(),
                started_at_ms: 1,
                updated_at_ms: 1,
            };
            save_job(&store, &job).unwrap();
        }
        assert!(mark_stopping(&store, "RUN").unwrap());
        assert!(mark_stopping(&store, "NEW").unwrap());
        assert!(!mark_stopping(&store, "DONE").unwrap());
        assert!(!mark_stopping(&store, "RUN").unwrap());
        assert!(!mark_stopping(&store, "NONE").unwrap());
        let status = |id| get_job(&store, "DS1", id).unwrap().unwrap().status;
        assert_eq!(
            (status("RUN"), status("DONE")),
            ("STOPPING".into(), "COMPLETE".into())
        );
        // Neither is resumed at start: both end STOPPED.
        assert!(unfinished_jobs(&store).unwrap().is_empty());
        settle_stopping_jobs(&store).unwrap();
        assert_eq!(
            (status("RUN"), status("NEW")),
            ("STOPPED".into(), "STOPPED".into())
        );
        assert_eq!(status("DONE"), "COMPLETE");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_document_change_stores_its_job_progress_with_it() {
        let dir = std::env::temp_dir().join(format!("basalt-db-progress-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir).unwrap();
        let mut job = IngestionJob {
            id: "JOB1".into(),
            kb_id: "KB1".into(),
            ds_id: "DS1".into(),
            description: None,
            status: "IN_PROGRESS".into(),
            statistics: JobStatistics::default(),
            failure_reasons: Vec::new(),
            started_at_ms: 1,
            updated_at_ms: 1,
        };
        save_job(&store, &job).unwrap();
        let chunk = NewChunk {
            text: "a note".into(),
            parent_text: None,
            metadata: Map::new(),
            embedding: vec![1.0, 0.0],
        };
        let location = Location::Custom { id: "note".into() };
        let progress = |statistics| JobProgress {
            job_id: "JOB1",
            statistics,
        };
        let saved = || get_job(&store, "DS1", "JOB1").unwrap().unwrap().statistics;
        job.statistics.new_documents_indexed = 1;
        let counted = job.statistics;
        let p = progress(&counted);
        replace_document(
            &store,
            "KB1",
            "DS1",
            "note",
            "h",
            &location,
            &[chunk],
            2,
            Some(&p),
        )
        .unwrap();
        assert_eq!(saved().new_documents_indexed, 1);
        // The job has counted `n` deletions when it deletes the document.
        let mut delete = |n| {
            job.statistics.documents_deleted = n;
            let p = JobProgress {
                job_id: "JOB1",
                statistics: &job.statistics,
            };
            delete_document(&store, "DS1", "note", Some(&p))
                .unwrap()
                .is_some()
        };
        assert!(delete(1));
        assert_eq!(saved().documents_deleted, 1);
        // Deleting what is not there changes nothing, the job's counts included.
        assert!(!delete(2));
        assert_eq!(saved().documents_deleted, 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
