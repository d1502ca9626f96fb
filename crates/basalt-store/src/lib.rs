//! Durable state in one embedded SQLite file under the data directory: the
//! record of every model invocation (metering) and the usage queries over it,
//! and the knowledge-base tables (knowledge bases, data sources, ingestion jobs,
//! documents, chunks with their text and vectors, RAG sessions), which
//! `basalt-knowledge` reads and writes through [`Store::with_connection`]
//! (and reads through [`Store::read`]), and the guardrails with their
//! versions (`basalt-guardrails`).
//! Schema changes are numbered migrations applied at open.
//!
//! Writes go through one connection, one at a time. Reads that must not wait
//! for them (a Retrieve's chunks while a large document is being written, an
//! index loaded at start while metering records land) use read-only
//! connections of their own: in WAL mode each sees the last committed state
//! and neither blocks nor is blocked by the writer.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OpenFlags};

/// The SQLite binding the store uses, for crates that query its tables.
pub use rusqlite;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the store lock was poisoned by a panic")]
    Poisoned,
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// One metered model call.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub request_id: String,
    /// Unix time in milliseconds when the call started.
    pub started_at_ms: i64,
    pub api: String,
    pub model_id: String,
    pub input_tokens: u32,
    pub output_tokens: u32,
    pub cached_input_tokens: u32,
    pub latency_ms: u64,
    /// Time to first token; `None` when no token was produced.
    pub ttft_ms: Option<u64>,
    pub cost_usd: f64,
    /// `ok`, `cancelled`, or an error label.
    pub status: String,
}

/// Totals for one model on one day (UTC).
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRow {
    pub day: String,
    pub model_id: String,
    pub requests: u64,
    pub errors: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
}

const MIGRATIONS: &[&str] = &[
    "CREATE TABLE invocations (
        request_id TEXT PRIMARY KEY,
        started_at_ms INTEGER NOT NULL,
        api TEXT NOT NULL,
        model_id TEXT NOT NULL,
        input_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        cached_input_tokens INTEGER NOT NULL,
        latency_ms INTEGER NOT NULL,
        ttft_ms INTEGER,
        cost_usd REAL NOT NULL,
        status TEXT NOT NULL
    );
    CREATE INDEX invocations_by_time ON invocations(started_at_ms);",
    // Knowledge bases. Configurations are JSON written by basalt-knowledge;
    // a chunk, its vector (little-endian f32) and its FTS5 row are written in
    // one transaction.
    "CREATE TABLE knowledge_bases (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        config TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL
    );
    CREATE TABLE data_sources (
        id TEXT PRIMARY KEY,
        kb_id TEXT NOT NULL REFERENCES knowledge_bases(id),
        name TEXT NOT NULL,
        config TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        UNIQUE (kb_id, name)
    );
    CREATE TABLE ingestion_jobs (
        id TEXT PRIMARY KEY,
        kb_id TEXT NOT NULL,
        ds_id TEXT NOT NULL,
        description TEXT,
        status TEXT NOT NULL,
        statistics TEXT NOT NULL,
        failure_reasons TEXT NOT NULL,
        started_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL
    );
    CREATE INDEX ingestion_jobs_by_source ON ingestion_jobs(ds_id, started_at_ms);
    CREATE TABLE kb_documents (
        ds_id TEXT NOT NULL,
        doc_key TEXT NOT NULL,
        kb_id TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        status TEXT NOT NULL,
        status_reason TEXT,
        updated_at_ms INTEGER NOT NULL,
        PRIMARY KEY (ds_id, doc_key)
    );
    CREATE TABLE kb_chunks (
        id INTEGER PRIMARY KEY,
        kb_id TEXT NOT NULL,
        ds_id TEXT NOT NULL,
        doc_key TEXT NOT NULL,
        text TEXT NOT NULL,
        parent_text TEXT,
        metadata TEXT NOT NULL,
        location TEXT NOT NULL,
        embedding BLOB NOT NULL
    );
    CREATE INDEX kb_chunks_by_doc ON kb_chunks(ds_id, doc_key);
    CREATE INDEX kb_chunks_by_kb ON kb_chunks(kb_id);
    CREATE VIRTUAL TABLE kb_chunks_fts USING fts5(text, tokenize = 'porter unicode61');
    CREATE TABLE rag_sessions (
        id TEXT PRIMARY KEY,
        turns TEXT NOT NULL,
        updated_at_ms INTEGER NOT NULL
    );",
    // The knowledge base's id becomes an indexed FTS5 column, so a BM25 query
    // is scoped to one knowledge base inside FTS5 (`kb : "ID" AND (...)`)
    // instead of by a join over every match.
    "DROP TABLE kb_chunks_fts;
    CREATE VIRTUAL TABLE kb_chunks_fts USING fts5(text, kb, tokenize = 'porter unicode61');
    INSERT INTO kb_chunks_fts (rowid, text, kb) SELECT id, text, kb_id FROM kb_chunks;",
    // Guardrails: one row per version (`DRAFT` or a number); the policy is JSON
    // written by basalt-guardrails. Names are unique among drafts.
    "CREATE TABLE guardrails (
        id TEXT NOT NULL,
        version TEXT NOT NULL,
        name TEXT NOT NULL,
        description TEXT,
        policy TEXT NOT NULL,
        kms_key_id TEXT,
        tags TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        PRIMARY KEY (id, version)
    );
    CREATE UNIQUE INDEX guardrails_by_name ON guardrails(name) WHERE version = 'DRAFT';",
    // The last version number each guardrail published, so a deleted
    // version's number is never given to a new one (as in Bedrock).
    "CREATE TABLE guardrail_versions (
        id TEXT PRIMARY KEY,
        last_version INTEGER NOT NULL
    );",
    // The answer to each request that carried a clientToken, so a retry with
    // the same token gets the same answer instead of a second resource.
    "CREATE TABLE idempotency (
        operation TEXT NOT NULL,
        token TEXT NOT NULL,
        request_sha256 TEXT NOT NULL,
        status INTEGER NOT NULL,
        body BLOB NOT NULL,
        created_at_ms INTEGER NOT NULL,
        PRIMARY KEY (operation, token)
    );",
    // BM25 moved into memory next to the vectors (basalt-knowledge's bm25.rs,
    // built from kb_chunks.text): FTS5 took 10-30 ms a query at 100k chunks,
    // and its index cost every write.
    "DROP TABLE kb_chunks_fts;",
];

/// How long a clientToken is remembered.
pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 60 * 60 * 1000;

/// The answer given to a request that carried a clientToken.
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotentAnswer {
    /// SHA-256 (hex) of the request that got it.
    pub request_sha256: String,
    pub status: u16,
    pub body: Vec<u8>,
}

/// The embedded store. Cheap to clone; calls block briefly on SQLite, so async
/// callers run them on a blocking thread.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    /// Idle read-only connections (see [`Store::read`]).
    readers: Arc<Mutex<Vec<Connection>>>,
    path: PathBuf,
}

/// Idle read-only connections kept open for the next reads.
const IDLE_READERS: usize = 4;

impl Store {
    /// Opens (creating if needed) `basalt.db` in `data_dir` and migrates it.
    pub fn open(data_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join("basalt.db");
        let conn = Connection::open(&path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let store = Self {
            conn: Arc::new(Mutex::new(conn)),
            readers: Arc::new(Mutex::new(Vec::new())),
            path,
        };
        store.migrate()?;
        Ok(store)
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        f(&mut conn)
    }

    /// Runs `f` on the store's connection (blocking; serialised with every
    /// other store call). For crates that own a part of the schema's queries.
    pub fn with_connection<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        self.with(f)
    }

    /// Runs `f` on a read-only connection (blocking): it sees everything
    /// committed before it starts and does not wait for a write under way,
    /// nor holds one up. Reads run side by side, each on its own connection.
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let idle = self.readers.lock().map_err(|_| StoreError::Poisoned)?.pop();
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let conn = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                conn.busy_timeout(std::time::Duration::from_secs(5))?;
                conn
            }
        };
        let out = f(&conn);
        let mut idle = self.readers.lock().map_err(|_| StoreError::Poisoned)?;
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
        out
    }

    fn migrate(&self) -> Result<()> {
        self.with(|conn| {
            let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
                let tx = conn.transaction()?;
                tx.execute_batch(sql)?;
                tx.pragma_update(None, "user_version", (i + 1) as i64)?;
                tx.commit()?;
            }
            Ok(())
        })
    }

    /// Records one invocation.
    pub fn record(&self, inv: &Invocation) -> Result<()> {
        self.with(|conn| {
            conn.execute(
                "INSERT OR REPLACE INTO invocations (request_id, started_at_ms, api, model_id, input_tokens,
                    output_tokens, cached_input_tokens, latency_ms, ttft_ms, cost_usd, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    inv.request_id,
                    inv.started_at_ms,
                    inv.api,
                    inv.model_id,
                    inv.input_tokens,
                    inv.output_tokens,
                    inv.cached_input_tokens,
                    inv.latency_ms as i64,
                    inv.ttft_ms.map(|t| t as i64),
                    inv.cost_usd,
                    inv.status,
                ],
            )?;
            Ok(())
        })
    }

    /// The answer remembered for `token` on `operation`, if it is younger than
    /// [`IDEMPOTENCY_TTL_MS`].
    pub fn idempotent_answer(
        &self,
        operation: &str,
        token: &str,
        now_ms: i64,
    ) -> Result<Option<IdempotentAnswer>> {
        self.with(|conn| {
            let mut stmt = conn.prepare(
                "SELECT request_sha256, status, body FROM idempotency
                 WHERE operation = ?1 AND token = ?2 AND created_at_ms > ?3",
            )?;
            let mut rows = stmt.query(params![operation, token, now_ms - IDEMPOTENCY_TTL_MS])?;
            Ok(match rows.next()? {
                Some(r) => Some(IdempotentAnswer {
                    request_sha256: r.get(0)?,
                    status: r.get(1)?,
                    body: r.get(2)?,
                }),
                None => None,
            })
        })
    }

    /// Remembers the answer to a request that carried `token`, and forgets
    /// answers older than [`IDEMPOTENCY_TTL_MS`].
    pub fn remember_answer(
        &self,
        operation: &str,
        token: &str,
        answer: &IdempotentAnswer,
        now_ms: i64,
    ) -> Result<()> {
        self.with(|conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "DELETE FROM idempotency WHERE created_at_ms <= ?1",
                [now_ms - IDEMPOTENCY_TTL_MS],
            )?;
            tx.execute(
                "INSERT OR REPLACE INTO idempotency
                   (operation, token, request_sha256, status, body, created_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    operation,
                    token,
                    answer.request_sha256,
                    answer.status,
                    answer.body,
                    now_ms
                ],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    /// The most recent invocations, newest first.
    pub fn recent(&self, limit: u32) -> Result<Vec<Invocation>> {
        self.with(|conn| {
            let mut stmt = conn.prepare(
                "SELECT request_id, started_at_ms, api, model_id, input_tokens, output_tokens,
                        cached_input_tokens, latency_ms, ttft_ms, cost_usd, status
                 FROM invocations ORDER BY started_at_ms DESC, rowid DESC LIMIT ?1",
            )?;
            let rows = stmt.query_map([limit], |r| {
                Ok(Invocation {
                    request_id: r.get(0)?,
                    started_at_ms: r.get(1)?,
                    api: r.get(2)?,
                    model_id: r.get(3)?,
                    input_tokens: r.get(4)?,
                    output_tokens: r.get(5)?,
                    cached_input_tokens: r.get(6)?,
                    latency_ms: r.get::<_, i64>(7)? as u64,
                    ttft_ms: r.get::<_, Option<i64>>(8)?.map(|t| t as u64),
                    cost_usd: r.get(9)?,
                    status: r.get(10)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Totals by UTC day and model, newest day first, for calls started at or
    /// after `since_ms`.
    pub fn usage_by_model_and_day(&self, since_ms: i64) -> Result<Vec<UsageRow>> {
        self.with(|conn| {
            let mut stmt = conn.prepare(
                "SELECT date(started_at_ms / 1000, 'unixepoch') AS day, model_id, COUNT(*),
                        SUM(status NOT IN ('ok', 'cancelled')), SUM(input_tokens), SUM(output_tokens), SUM(cost_usd)
                 FROM invocations WHERE started_at_ms >= ?1
                 GROUP BY day, model_id ORDER BY day DESC, model_id",
            )?;
            let rows = stmt.query_map([since_ms], |r| {
                Ok(UsageRow {
                    day: r.get(0)?,
                    model_id: r.get(1)?,
                    requests: r.get::<_, i64>(2)? as u64,
                    errors: r.get::<_, i64>(3)? as u64,
                    input_tokens: r.get::<_, i64>(4)? as u64,
                    output_tokens: r.get::<_, i64>(5)? as u64,
                    cost_usd: r.get(6)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(id: &str, model: &str, at_ms: i64, status: &str) -> Invocation {
        Invocation {
            request_id: id.into(),
            started_at_ms: at_ms,
            api: "Converse".into(),
            model_id: model.into(),
            input_tokens: 10,
            output_tokens: 5,
            cached_input_tokens: 0,
            latency_ms: 12,
            ttft_ms: Some(3),
            cost_usd: 0.5,
            status: status.into(),
        }
    }

    #[test]
    fn a_read_neither_waits_for_a_write_under_way_nor_sees_it() {
        use std::sync::mpsc;
        use std::time::Duration;
        let dir = std::env::temp_dir().join(format!("basalt-store-read-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir).unwrap();
        store.record(&inv("a", "m1", 1000, "ok")).unwrap();
        let status = |store: &Store| {
            store.read(|c| {
                Ok(c.query_row(
                    "SELECT status FROM invocations WHERE request_id = 'a'",
                    [],
                    |r| r.get::<_, String>(0),
                )?)
            })
        };
        let (writing_tx, writing) = mpsc::channel();
        let (commit, commit_rx) = mpsc::channel::<()>();
        let writer = {
            let store = store.clone();
            std::thread::spawn(move || {
                store.with_connection(|c| {
                    let tx = c.transaction()?;
                    tx.execute("UPDATE invocations SET status = 'changed'", [])?;
                    writing_tx.send(()).unwrap();
                    commit_rx.recv().unwrap();
                    tx.commit()?;
                    Ok(())
                })
            })
        };
        writing.recv().unwrap();
        // The writer holds its connection mid-transaction until told to commit.
        let (read_tx, read) = mpsc::channel();
        let reader = {
            let store = store.clone();
            std::thread::spawn(move || read_tx.send(status(&store)).unwrap())
        };
        let seen = read
            .recv_timeout(Duration::from_secs(20))
            .expect("the read waited for the write to finish");
        assert_eq!(seen.unwrap(), "ok");
        commit.send(()).unwrap();
        writer.join().unwrap().unwrap();
        reader.join().unwrap();
        assert_eq!(status(&store).unwrap(), "changed");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn records_survive_reopen_and_aggregate_by_day_and_model() {
        let dir = std::env::temp_dir().join(format!("basalt-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let day1 = 1_763_769_600_000; // 2025-11-22T00:00:00Z
        {
            let store = Store::open(&dir).unwrap();
            store.record(&inv("a", "m1", day1 + 1000, "ok")).unwrap();
            store
                .record(&inv("b", "m1", day1 + 2000, "throttled"))
                .unwrap();
            store
                .record(&inv("c", "m2", day1 + 86_400_000, "ok"))
                .unwrap();
        }
        let store = Store::open(&dir).unwrap();
        let rows = store.usage_by_model_and_day(0).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].day, "2025-11-23");
        assert_eq!(rows[1].model_id, "m1");
        assert_eq!(
            (rows[1].requests, rows[1].errors, rows[1].input_tokens),
            (2, 1, 20)
        );
        assert!((rows[1].cost_usd - 1.0).abs() < 1e-9);
        assert_eq!(store.recent(1).unwrap()[0].request_id, "c");
        assert!(
            store
                .usage_by_model_and_day(day1 + 86_400_000)
                .unwrap()
                .len()
                == 1
        );
    }

    #[test]
    fn idempotent_answers_are_kept_for_a_day() {
        let dir = std::env::temp_dir().join(format!("basalt-idem-{}", std::process::id()));
        let store = Store::open(&dir).unwrap();
        let answer = IdempotentAnswer {
            request_sha256: "abc".into(),
            status: 202,
            body: b"{}".to_vec(),
        };
        store
            .remember_answer("PUT /x", "t1", &answer, 1_000)
            .unwrap();
        assert_eq!(
            store.idempotent_answer("PUT /x", "t1", 2_000).unwrap(),
            Some(answer.clone())
        );
        assert_eq!(
            store.idempotent_answer("PUT /y", "t1", 2_000).unwrap(),
            None
        );
        let later = 1_000 + IDEMPOTENCY_TTL_MS;
        assert_eq!(
            store.idempotent_answer("PUT /x", "t1", later).unwrap(),
            None
        );
        store
            .remember_answer("PUT /x", "t2", &answer, later)
            .unwrap();
        let kept: i64 = store
            .with_connection(|c| {
                Ok(c.query_row("SELECT COUNT(*) FROM idempotency", [], |r| r.get(0))?)
            })
            .unwrap();
        assert_eq!(kept, 1, "the expired answer was forgotten");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
