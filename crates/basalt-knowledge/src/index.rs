//! The in-memory vector side of a knowledge base's index: every chunk's
//! unit-length vector in one contiguous array, with its metadata for filters.
//! SQLite holds the durable copy (the vector BLOB, written in one transaction
//! with the chunk); this is loaded from it on first use and kept in step with
//! every write, so search is a pass over memory that applies metadata filters
//! before ranking. The words side is `bm25.rs`; [`KbIndex`] holds both.
//!
//! Beyond [`EXACT_UP_TO`] chunks the pass reads an int8 copy of the vectors
//! (a quarter of the memory traffic), keeps the best `4k + 32` candidates, and
//! rescores those exactly with the f32 vectors, so the returned scores are
//! exact and the ranking all but always is.
//!
//! From [`ANN_FROM`] chunks on (configurable) an HNSW graph (`usearch`, its
//! own copy of the vectors in f16, half the memory an f32 one reads per
//! distance; results are rescored with the f32 vectors) is made once, on a thread of its own while searches go on with
//! the exact passes, and then kept in step with every insert and remove
//! (changes made meanwhile are replayed onto the graph when it is installed).
//! A search walks the graph for its `k` best (filters applied during the
//! walk). A filter so narrow that the walk finds fewer than `k` chunks falls
//! back to the int8 pass, which sees every chunk.
//!
//! The graph is saved to a file ([`save_graph`]) and, at the next start, read
//! back instead of built again ([`GraphJob::build`]): every chunk's vector is
//! checked against the file's, chunks written since it was saved are patched
//! in, and a file that cannot be read, holds a chunk the store no longer has,
//! or would need more than half its chunks patched is thrown away and the
//! graph built afresh.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use serde_json::{Map, Value};

use crate::bm25::WordIndex;
use crate::filter::Filter;

/// A chunk to add to the index.
#[derive(Clone)]
pub struct IndexEntry {
    pub id: i64,
    /// Unit length.
    pub vector: Vec<f32>,
    pub metadata: Arc<Map<String, Value>>,
    /// What BM25 searches.
    pub text: String,
}

/// A knowledge base's search index: its chunks' vectors and words.
pub struct KbIndex {
    pub vectors: VectorIndex,
    pub words: WordIndex,
}

impl KbIndex {
    /// An empty index; its vector side walks a graph from `graph_from` chunks on.
    #[must_use]
    pub fn new(dimension: usize, graph_from: usize) -> Self {
        let mut vectors = VectorIndex::new(dimension);
        vectors.ann_from = graph_from;
        Self {
            vectors,
            words: WordIndex::new(),
        }
    }

    /// Applies a committed write: chunks removed, then chunks added.
    pub fn apply(&mut self, removed: &[i64], added: &[IndexEntry]) {
        for id in removed {
            self.vectors.remove(*id);
            self.words.remove(*id);
        }
        for e in added {
            if self
                .vectors
                .insert(e.id, &e.vector, Arc::clone(&e.metadata))
            {
                self.words.insert(e.id, &e.text);
            }
        }
    }
}

/// Up to this many chunks, search scans the f32 vectors directly.
pub const EXACT_UP_TO: usize = 20_000;

/// From this many chunks on, search walks an HNSW graph (unless
/// `knowledge.hnsw_from_chunks` says otherwise).
pub use basalt_gateway::config::DEFAULT_HNSW_FROM_CHUNKS as ANN_FROM;

/// Neighbours per graph node, and candidate lists while building and
/// searching (a search asking for more than this uses its own count).
const ANN_CONNECTIVITY: usize = 16;
const ANN_EXPANSION_ADD: usize = 128;
const ANN_EXPANSION_SEARCH: usize = 128;

#[derive(Default)]
pub struct VectorIndex {
    dimension: usize,
    ids: Vec<i64>,
    vectors: Vec<f32>,
    /// Each vector scaled so its largest component is ±127, as int8.
    codes: Vec<i8>,
    /// The factor that turns a code back into the vector: v ≈ code × scale.
    scales: Vec<f32>,
    metadata: Vec<Arc<Map<String, Value>>>,
    positions: HashMap<i64, usize>,
    /// The HNSW graph, once the index has [`ANN_FROM`] chunks.
    ann: Option<usearch::Index>,
    ann_from: usize,
    /// A graph is being built elsewhere ([`VectorIndex::graph_job`]).
    building: bool,
    /// Chunks inserted or removed while it is: replayed onto it on install.
    touched: Vec<i64>,
    /// The graph has changed since it was last saved.
    graph_dirty: AtomicBool,
    /// Held while the graph is being saved (and while it is retired): a
    /// second save waits for the first. Shared, so it outlives a lock guard.
    saving: Arc<Mutex<()>>,
    /// The knowledge base is gone: its graph is never saved again.
    retired: AtomicBool,
}

/// Everything a graph build needs, copied out of the index so the build holds
/// no lock.
pub struct GraphJob {
    dimension: usize,
    ids: Vec<i64>,
    vectors: Vec<f32>,
}

/// Where an installed graph came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphOrigin {
    /// Read from its file, which matched the chunks exactly.
    Saved,
    /// Read from its file; this many chunks written since were added to it.
    Patched(usize),
    /// Built from the vectors (no usable file).
    Built,
}

impl GraphJob {
    /// The graph over the job's chunks: read from `saved` (and patched) when
    /// that file holds a graph of these chunks, otherwise built (seconds per
    /// 10k chunks). `None` if it could not be built (out of memory).
    #[must_use]
    pub fn build(self, saved: Option<&Path>) -> Option<(usearch::Index, GraphOrigin)> {
        if let Some(found) = saved.and_then(|path| self.restore(path)) {
            return Some(found);
        }
        let ann = with_metric(usearch::Index::new(&self.options()).ok()?, self.dimension)?;
        ann.reserve(self.ids.len() * 2).ok()?;
        for (&id, v) in self
            .ids
            .iter()
            .zip(self.vectors.chunks_exact(self.dimension))
        {
            ann.add(id as u64, v).ok()?;
        }
        Some((ann, GraphOrigin::Built))
    }

    fn options(&self) -> usearch::IndexOptions {
        usearch::IndexOptions {
            dimensions: self.dimension,
            metric: usearch::MetricKind::IP,
            quantization: usearch::ScalarKind::F16,
            connectivity: ANN_CONNECTIVITY,
            expansion_add: ANN_EXPANSION_ADD,
            expansion_search: ANN_EXPANSION_SEARCH,
            multi: false,
        }
    }

    /// The saved graph, if `path` holds one of the same shape whose chunks are
    /// all still in the job with the same vectors (missing ones are added).
    fn restore(&self, path: &Path) -> Option<(usearch::Index, GraphOrigin)> {
        let name = path.to_str()?;
        if !path.exists() {
            return None;
        }
        let want = self.options();
        let ann = match usearch::Index::metadata(name) {
            Ok(m)
                if usize::try_from(m.dimensions).ok() == Some(want.dimensions)
                    && m.metric == want.metric
                    && m.quantization == want.quantization
                    && !m.multi =>
            {
                let ann = usearch::Index::new(&want).ok()?;
                // Loading sets usearch's own metric (and shape) from the
                // file's header; `with_metric` checks the shape again.
                ann.load(name)
                    .ok()
                    .and_then(|()| with_metric(ann, want.dimensions))
            }
            _ => None,
        };
        let Some(ann) = ann else {
            tracing::warn!(path = %path.display(), "the saved HNSW graph is unreadable; building it again");
            return None;
        };
        ann.change_expansion_add(ANN_EXPANSION_ADD);
        ann.change_expansion_search(ANN_EXPANSION_SEARCH);
        ann.reserve(self.ids.len().max(ann.size()) * 2).ok()?;
        let d = self.dimension;
        let mut stored = vec![0.0f32; d];
        let mut stale = Vec::new();
        for (i, &id) in self.ids.iter().enumerate() {
            let v = &self.vectors[i * d..(i + 1) * d];
            let same = ann.contains(id as u64)
                && ann.get(id as u64, &mut stored).ok() == Some(1)
                && same_as_f16(&stored, v);
            if !same {
                stale.push(i);
            }
        }
        // Past half the chunks, patching costs what building does and leaves
        // a graph with more holes.
        if stale.len() * 2 > self.ids.len() {
            return None;
        }
        for &i in &stale {
            let id = self.ids[i] as u64;
            if ann.contains(id) {
                ann.remove(id).ok()?;
            }
            ann.add(id, &self.vectors[i * d..(i + 1) * d]).ok()?;
        }
        // Every chunk is in the graph now: any more entries are chunks the
        // store no longer has, which the file does not let us find.
        if ann.size() != self.ids.len() {
            tracing::info!(path = %path.display(), "the saved HNSW graph holds removed chunks; building it again");
            return None;
        }
        let origin = if stale.is_empty() {
            GraphOrigin::Saved
        } else {
            GraphOrigin::Patched(stale.len())
        };
        Some((ann, origin))
    }
}

/// `ann` measuring distance (`1 - dot product`, what usearch's own `IP`
/// gives) with basalt's [`basalt_engine::dot_f16`] on the graph's f16
/// vectors. usearch is built without its SIMD kernels (`numkong`, see
/// ARCHITECTURE.md): its own f32 inner product was a loop vectorized only
/// for SSE (34% of a cached HYBRID Retrieve's time at 100k chunks, `perf`),
/// and its f16 one converts every component in software. `None` if `ann`
/// does not hold f16 vectors of `dimension` values (the metric reads that
/// many).
#[expect(unsafe_code, reason = "usearch hands a metric raw pointers")]
fn with_metric(mut ann: usearch::Index, dimension: usize) -> Option<usearch::Index> {
    if ann.dimensions() != dimension || ann.scalar_kind() != usearch::ScalarKind::F16 {
        return None;
    }
    ann.change_metric::<usearch::f16>(Box::new(
        move |a: *const usearch::f16, b: *const usearch::f16| {
            // SAFETY: usearch calls the metric with two vectors of the
            // index's `dimension` f16 values each (its own, or a query it
            // converted: `search` and `add` refuse another length), 16-bit
            // aligned.
            let (a, b) = unsafe {
                (
                    std::slice::from_raw_parts(a.cast::<u16>(), dimension),
                    std::slice::from_raw_parts(b.cast::<u16>(), dimension),
                )
            };
            1.0 - basalt_engine::dot_f16(a, b)
        },
    ));
    Some(ann)
}

/// Whether `stored` (read back from the graph's f16) is `v` as f16 holds it.
fn same_as_f16(stored: &[f32], v: &[f32]) -> bool {
    stored.len() == v.len()
        && stored
            .iter()
            .zip(v)
            .all(|(s, v)| (s - v).abs() <= v.abs() * 1e-3 + 1e-7)
}

impl VectorIndex {
    #[must_use]
    pub fn new(dimension: usize) -> Self {
        Self {
            dimension,
            ann_from: ANN_FROM,
            ..Self::default()
        }
    }

    /// Whether searches walk the HNSW graph.
    #[must_use]
    pub fn is_approximate(&self) -> bool {
        self.ann.is_some()
    }

    /// When the index has grown to [`ANN_FROM`] chunks and has no graph yet:
    /// the job that builds one (from now on, changes are recorded for
    /// [`VectorIndex::install_graph`]).
    pub fn graph_job(&mut self) -> Option<GraphJob> {
        if self.ann.is_some() || self.building || self.len() < self.ann_from.max(1) {
            return None;
        }
        self.building = true;
        self.touched.clear();
        Some(GraphJob {
            dimension: self.dimension,
            ids: self.ids.clone(),
            vectors: self.vectors.clone(),
        })
    }

    /// Installs a graph from [`GraphJob::build`], replaying the changes made
    /// since its job was taken. No graph (the build failed) leaves the exact
    /// passes for good.
    pub fn install_graph(&mut self, graph: Option<(usearch::Index, GraphOrigin)>) {
        self.building = false;
        let mut touched = std::mem::take(&mut self.touched);
        let Some((ann, origin)) = graph else {
            tracing::warn!(
                chunks = self.len(),
                "the HNSW index could not be built; searches stay exact"
            );
            self.ann_from = usize::MAX;
            return;
        };
        touched.sort_unstable();
        touched.dedup();
        self.graph_dirty.store(
            origin != GraphOrigin::Saved || !touched.is_empty(),
            Ordering::Relaxed,
        );
        self.ann = Some(ann);
        for id in touched {
            if let Some(ann) = &self.ann {
                let _ = ann.remove(id as u64);
            }
            if let Some(&p) = self.positions.get(&id) {
                let v = self.vectors[p * self.dimension..(p + 1) * self.dimension].to_vec();
                self.ann_add(id, &v);
            }
        }
    }

    /// Writes the graph to `tmp` if it changed since it was last saved (and
    /// its knowledge base is not retired), checking the file's length. Whether
    /// it wrote one. The caller holds [`VectorIndex::saving`].
    fn write_graph(&self, tmp: &Path) -> std::io::Result<bool> {
        let Some(ann) = &self.ann else {
            return Ok(false);
        };
        if self.retired.load(Ordering::Relaxed) || !self.graph_dirty.swap(false, Ordering::Relaxed)
        {
            return Ok(false);
        }
        let written = (|| {
            if let Some(dir) = tmp.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let name = tmp
                .to_str()
                .ok_or_else(|| std::io::Error::other("the data directory's path is not UTF-8"))?;
            ann.save(name)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            // usearch does not report a failed final flush (a full disk).
            let len = std::fs::metadata(tmp)?.len();
            if len != ann.serialized_length() as u64 {
                return Err(std::io::Error::other(format!(
                    "wrote {len} of {} bytes",
                    ann.serialized_length()
                )));
            }
            Ok(())
        })();
        if written.is_err() {
            self.graph_dirty.store(true, Ordering::Relaxed);
        }
        written.map(|()| true)
    }

    fn ann_add(&mut self, id: i64, vector: &[f32]) {
        let Some(ann) = &self.ann else {
            return;
        };
        self.graph_dirty.store(true, Ordering::Relaxed);
        let ok = (ann.size() < ann.capacity() || ann.reserve(ann.capacity() * 2).is_ok())
            && ann.add(id as u64, vector).is_ok();
        if !ok {
            tracing::warn!("the HNSW index could not take a chunk; searches stay exact");
            self.ann = None;
            self.ann_from = usize::MAX;
        }
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Adds (or replaces) a chunk's vector. Vectors of another dimension are
    /// refused (the knowledge base's model decides the dimension).
    pub fn insert(&mut self, id: i64, vector: &[f32], metadata: Arc<Map<String, Value>>) -> bool {
        if self.dimension == 0 {
            self.dimension = vector.len();
        }
        if vector.len() != self.dimension {
            return false;
        }
        self.remove(id);
        self.positions.insert(id, self.ids.len());
        self.ids.push(id);
        self.vectors.extend_from_slice(vector);
        let (codes, scale) = quantize(vector);
        self.codes.extend_from_slice(&codes);
        self.scales.push(scale);
        self.metadata.push(metadata);
        if self.ann.is_some() {
            self.ann_add(id, vector);
        }
        if self.building {
            self.touched.push(id);
        }
        true
    }

    /// Removes a chunk (the last one moves into its place).
    pub fn remove(&mut self, id: i64) {
        let Some(pos) = self.positions.remove(&id) else {
            return;
        };
        if let Some(ann) = &self.ann {
            let _ = ann.remove(id as u64);
            self.graph_dirty.store(true, Ordering::Relaxed);
        }
        if self.building {
            self.touched.push(id);
        }
        let last = self.ids.len() - 1;
        let d = self.dimension;
        if pos != last {
            let moved = self.ids[last];
            self.ids.swap(pos, last);
            self.metadata.swap(pos, last);
            let (head, tail) = self.vectors.split_at_mut(last * d);
            head[pos * d..(pos + 1) * d].copy_from_slice(&tail[..d]);
            let (head, tail) = self.codes.split_at_mut(last * d);
            head[pos * d..(pos + 1) * d].copy_from_slice(&tail[..d]);
            self.scales.swap(pos, last);
            self.positions.insert(moved, pos);
        }
        self.ids.pop();
        self.metadata.pop();
        self.scales.pop();
        self.vectors.truncate(last * d);
        self.codes.truncate(last * d);
    }

    /// Metadata of a chunk, for filtering candidates found elsewhere (BM25).
    #[must_use]
    pub fn metadata(&self, id: i64) -> Option<&Map<String, Value>> {
        self.positions.get(&id).map(|&p| self.metadata[p].as_ref())
    }

    /// The stored vector of a chunk.
    #[must_use]
    pub fn vector(&self, id: i64) -> Option<&[f32]> {
        let d = self.dimension;
        self.positions
            .get(&id)
            .map(|&p| &self.vectors[p * d..(p + 1) * d])
    }

    /// The `k` chunks most similar to `query` (dot product of unit vectors =
    /// cosine) that pass `filter`, best first.
    #[must_use]
    pub fn search(&self, query: &[f32], k: usize, filter: Option<&Filter>) -> Vec<(i64, f32)> {
        if query.len() != self.dimension || k == 0 {
            return Vec::new();
        }
        let d = self.dimension;
        if let Some(ann) = &self.ann {
            // The walk's k best (by f16 distance), rescored exactly.
            let want = k;
            let found = match filter {
                None => ann.search(query, want),
                Some(f) => ann.filtered_search(query, want, |key| {
                    self.positions
                        .get(&(key as i64))
                        .is_some_and(|&p| f.matches(&self.metadata[p]))
                }),
            };
            if let Ok(found) = found {
                if found.keys.len() >= k {
                    return self.rescore(found.keys.iter().map(|&key| key as i64), query, k);
                }
            }
        }
        if self.len() <= EXACT_UP_TO {
            let rows = self.vectors.chunks_exact(d).map(|row| dot(row, query));
            return self
                .top(rows, k, filter)
                .into_iter()
                .map(|(i, s)| (self.ids[i], s))
                .collect();
        }
        let (q, q_scale) = quantize(query);
        let approx = self
            .codes
            .chunks_exact(d)
            .zip(&self.scales)
            .map(|(row, scale)| dot_i8(row, &q) as f32 * scale * q_scale);
        let candidates: Vec<i64> = self
            .top(approx, 4 * k + 32, filter)
            .into_iter()
            .map(|(i, _)| self.ids[i])
            .collect();
        self.rescore(candidates.into_iter(), query, k)
    }

    /// The `k` best of `candidates` by their exact f32 score.
    fn rescore(
        &self,
        candidates: impl Iterator<Item = i64>,
        query: &[f32],
        k: usize,
    ) -> Vec<(i64, f32)> {
        let mut exact: Vec<(i64, f32)> = candidates
            .filter_map(|id| Some((id, dot(self.vector(id)?, query))))
            .collect();
        exact.sort_by(|a, b| b.1.total_cmp(&a.1));
        exact.truncate(k);
        exact
    }

    /// Positions of the `k` best scores that pass `filter`, best first.
    fn top(
        &self,
        scores: impl Iterator<Item = f32>,
        k: usize,
        filter: Option<&Filter>,
    ) -> Vec<(usize, f32)> {
        let mut best: Vec<(usize, f32)> = Vec::with_capacity(k + 1);
        let mut floor = f32::NEG_INFINITY;
        for (i, score) in scores.enumerate() {
            if best.len() == k && score <= floor {
                continue;
            }
            if let Some(f) = filter {
                if !f.matches(&self.metadata[i]) {
                    continue;
                }
            }
            let at = best.partition_point(|(_, s)| *s >= score);
            best.insert(at, (i, score));
            if best.len() > k {
                best.pop();
            }
            if best.len() == k {
                floor = best[k - 1].1;
            }
        }
        best
    }
}

/// Saves the HNSW graph of the index behind `lock` to `path` if it changed
/// since it was last saved, waiting for a save already under way. Whether it
/// wrote one. The read lock is held only while the graph is written to a
/// temporary file (writers wait that long; searches do not); the file is
/// synced and then renamed to `path`, so `path` always holds a whole graph
/// (a torn one could hold links out of bounds).
pub fn save_graph(lock: &RwLock<KbIndex>, path: &Path) -> std::io::Result<bool> {
    let poisoned = || std::io::Error::other("the index lock was poisoned");
    let saving = Arc::clone(&lock.read().map_err(|_| poisoned())?.vectors.saving);
    let _one = saving.lock().unwrap_or_else(PoisonError::into_inner);
    let tmp = path.with_extension("tmp");
    if !lock
        .read()
        .map_err(|_| poisoned())?
        .vectors
        .write_graph(&tmp)?
    {
        return Ok(false);
    }
    let moved = (|| {
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if moved.is_err() {
        if let Ok(i) = lock.read() {
            i.vectors.graph_dirty.store(true, Ordering::Relaxed);
        }
    }
    moved.map(|()| true)
}

/// Deletes the saved graph of a knowledge base being deleted, and makes sure
/// no save still under way (a build, the end of a job) writes it back.
pub fn retire_graph(lock: &RwLock<KbIndex>, path: &Path) {
    let Ok(saving) = lock.read().map(|i| Arc::clone(&i.vectors.saving)) else {
        return;
    };
    let _one = saving.lock().unwrap_or_else(PoisonError::into_inner);
    if let Ok(i) = lock.read() {
        i.vectors.retired.store(true, Ordering::Relaxed);
    }
    let _ = std::fs::remove_file(path.with_extension("tmp"));
    let _ = std::fs::remove_file(path);
}

/// int8 codes of a vector and the scale that restores it.
fn quantize(v: &[f32]) -> (Vec<i8>, f32) {
    let max = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    if max == 0.0 {
        return (vec![0; v.len()], 0.0);
    }
    let inv = 127.0 / max;
    (
        v.iter().map(|x| (x * inv).round() as i8).collect(),
        max / 127.0,
    )
}

/// Integer dot product of int8 codes, in 16 independent i32 lanes.
fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    let mut lanes = [0i32; 16];
    let (ac, bc) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: i32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| i32::from(*x) * i32::from(*y))
        .sum();
    for (x, y) in ac.zip(bc) {
        for l in 0..16 {
            lanes[l] += i32::from(x[l]) * i32::from(y[l]);
        }
    }
    lanes.iter().sum::<i32>() + tail
}

/// Dot product (8 SIMD-friendly lanes), shared with the guardrails.
pub use basalt_engine::dot;

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(k: &str, v: i64) -> Arc<Map<String, Value>> {
        let mut m = Map::new();
        m.insert(k.into(), Value::from(v));
        Arc::new(m)
    }

    #[test]
    fn search_ranks_by_similarity_and_applies_filters_before_ranking() {
        let mut idx = VectorIndex::new(2);
        idx.insert(1, &[1.0, 0.0], meta("year", 2020));
        idx.insert(2, &[0.8, 0.6], meta("year", 2021));
        idx.insert(3, &[0.0, 1.0], meta("year", 2022));
        let top = idx.search(&[1.0, 0.0], 2, None);
        assert_eq!(top.iter().map(|r| r.0).collect::<Vec<_>>(), vec![1, 2]);
        let f = Filter::GreaterThan("year".into(), 2020.5);
        let top = idx.search(&[1.0, 0.0], 1, Some(&f));
        assert_eq!(top[0].0, 2);
    }

    #[test]
    fn basalts_metric_goes_only_on_a_graph_of_f16_vectors_of_its_length() {
        let options = |dimensions, quantization| usearch::IndexOptions {
            dimensions,
            metric: usearch::MetricKind::IP,
            quantization,
            ..usearch::IndexOptions::default()
        };
        let f16 = usearch::ScalarKind::F16;
        let new = |o| usearch::Index::new(&o).unwrap();
        assert!(with_metric(new(options(4, usearch::ScalarKind::F32)), 4).is_none());
        assert!(with_metric(new(options(8, f16)), 4).is_none());
        let ann = with_metric(new(options(4, f16)), 4).unwrap();
        ann.reserve(4).unwrap();
        ann.add(1, &[1.0f32, 0.0, 0.0, 0.0]).unwrap();
        ann.add(2, &[0.6f32, 0.8, 0.0, 0.0]).unwrap();
        let found = ann.search(&[0.0f32, 1.0, 0.0, 0.0], 2).unwrap();
        assert_eq!(found.keys, vec![2, 1]);
        // 1 - dot product, from basalt's f16 kernel.
        assert!((found.distances[0] - 0.2).abs() < 1e-3);
        assert!((found.distances[1] - 1.0).abs() < 1e-3);
    }

    #[test]
    fn remove_keeps_the_rest_consistent() {
        let mut idx = VectorIndex::new(2);
        for i in 0..5 {
            idx.insert(i, &[i as f32, 1.0], meta("i", i));
        }
        idx.remove(1);
        idx.remove(4);
        idx.remove(42);
        assert_eq!(idx.len(), 3);
        for i in [0, 2, 3] {
            assert_eq!(idx.vector(i), Some(&[i as f32, 1.0][..]));
            assert_eq!(idx.metadata(i).unwrap()["i"], Value::from(i));
        }
        assert!(idx.vector(1).is_none());
        assert!(
            !idx.insert(9, &[1.0, 2.0, 3.0], meta("i", 9)),
            "wrong dimension"
        );
    }

    /// Pseudo-random unit vectors (a fixed LCG, so the test is repeatable).
    fn random_unit(seed: &mut u64, d: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..d)
            .map(|_| {
                *seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((*seed >> 33) as f32 / (1u64 << 31) as f32) - 0.5
            })
            .collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= n);
        v
    }

    #[test]
    fn the_int8_pass_finds_what_the_exact_scan_finds() {
        let (d, n) = (64, EXACT_UP_TO + 500);
        let mut seed = 7;
        let mut idx = VectorIndex::new(d);
        for i in 0..n {
            idx.insert(
                i as i64,
                &random_unit(&mut seed, d),
                meta("even", (i % 2) as i64),
            );
        }
        for _ in 0..20 {
            let q = random_unit(&mut seed, d);
            let exact: Vec<(usize, f32)> = {
                let rows = idx.vectors.chunks_exact(d).map(|row| dot(row, &q));
                idx.top(rows, 10, None)
            };
            let got = idx.search(&q, 10, None);
            let want: Vec<i64> = exact.iter().map(|(i, _)| idx.ids[*i]).collect();
            assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), want);
            assert!((got[0].1 - exact[0].1).abs() < 1e-6, "scores are exact");
            let f = Filter::Equals("even".into(), Value::from(1));
            assert!(idx
                .search(&q, 10, Some(&f))
                .iter()
                .all(|(id, _)| id % 2 == 1));
        }
        idx.remove(3);
        assert_eq!(idx.codes.len(), (n - 1) * d);
        assert_eq!(idx.scales.len(), n - 1);
    }

    #[test]
    fn the_hnsw_graph_finds_nearly_what_the_exact_scan_finds() {
        let (d, n) = (48, 6_000);
        let mut seed = 11;
        let mut idx = VectorIndex::new(d);
        idx.ann_from = 5_000;
        let mut vectors = Vec::new();
        for i in 0..n {
            let v = random_unit(&mut seed, d);
            idx.insert(i as i64, &v, meta("even", (i % 2) as i64));
            vectors.push(v);
            if i + 1 == 4_999 {
                assert!(idx.graph_job().is_none(), "not yet due");
            }
        }
        assert!(!idx.is_approximate(), "built only when asked");
        let job = idx.graph_job().expect("due at 5,000 chunks");
        assert!(idx.graph_job().is_none(), "one build at a time");
        // Changes made while the graph builds are replayed onto it: a replaced
        // chunk takes its new vector, a removed one leaves, a new one joins.
        idx.insert(0, &vectors[1], meta("even", 0));
        idx.remove(2);
        let late = random_unit(&mut seed, d);
        idx.insert(n as i64, &late, meta("even", 0));
        idx.install_graph(job.build(None));
        assert!(idx.is_approximate());
        assert_eq!(idx.search(&late, 1, None)[0].0, n as i64);
        let top2: Vec<i64> = idx
            .search(&vectors[1], 2, None)
            .iter()
            .map(|r| r.0)
            .collect();
        assert!(top2.contains(&0) && top2.contains(&1), "{top2:?}");
        // And so are changes made after it.
        idx.remove(n as i64);
        assert_ne!(idx.search(&late, 1, None)[0].0, n as i64);
        let (mut hits, mut total) = (0, 0);
        for _ in 0..30 {
            let q = random_unit(&mut seed, d);
            let exact: Vec<i64> = {
                let rows = idx.vectors.chunks_exact(d).map(|row| dot(row, &q));
                idx.top(rows, 10, None)
                    .into_iter()
                    .map(|(i, _)| idx.ids[i])
                    .collect()
            };
            let got = idx.search(&q, 10, None);
            assert_eq!(got.len(), 10);
            assert!(got.iter().all(|(id, _)| *id != 2));
            for (id, score) in &got {
                assert!(
                    (score - dot(idx.vector(*id).unwrap(), &q)).abs() < 1e-6,
                    "exact scores"
                );
            }
            hits += got.iter().filter(|(id, _)| exact.contains(id)).count();
            total += 10;
            let f = Filter::Equals("even".into(), Value::from(1));
            let odd = idx.search(&q, 10, Some(&f));
            assert_eq!(odd.len(), 10);
            assert!(odd.iter().all(|(id, _)| id % 2 == 1));
        }
        let recall = hits as f64 / total as f64;
        assert!(recall >= 0.95, "recall@10 {recall}");
        // A filter only 3 chunks pass: the walk cannot find 10, the scan can.
        let rare = Filter::In("even".into(), vec![Value::from(7)]);
        for id in [10, 20, 30] {
            idx.insert(id, &vectors[id as usize], meta("even", 7));
        }
        let q = random_unit(&mut seed, d);
        let mut found: Vec<i64> = idx
            .search(&q, 10, Some(&rare))
            .iter()
            .map(|r| r.0)
            .collect();
        found.sort_unstable();
        assert_eq!(found, vec![10, 20, 30]);
    }

    #[test]
    fn the_graph_keeps_taking_chunks_past_its_first_capacity() {
        let (d, n) = (16, 26_000);
        let mut seed = 5;
        let mut idx = VectorIndex::new(d);
        idx.ann_from = 5_000;
        let mut job = None;
        let mut last = Vec::new();
        for i in 0..n {
            last = random_unit(&mut seed, d);
            idx.insert(i as i64, &last, meta("even", 0));
            if i == 5_000 {
                job = idx.graph_job();
            }
            if i == 7_000 {
                idx.install_graph(job.take().expect("taken at 5,000").build(None));
            }
        }
        assert!(idx.is_approximate(), "the graph survived growing 5x");
        assert_eq!(idx.search(&last, 1, None)[0].0, n as i64 - 1);
    }

    /// An index of `vectors` (ids 0..) that wants a graph from 100 chunks.
    fn index_of(d: usize, vectors: &[Vec<f32>]) -> VectorIndex {
        let mut idx = VectorIndex::new(d);
        idx.ann_from = 100;
        for (i, v) in vectors.iter().enumerate() {
            idx.insert(i as i64, v, meta("even", (i % 2) as i64));
        }
        idx
    }

    /// Saves `idx`'s graph as the knowledge base's lock would.
    fn save(idx: &mut VectorIndex, path: &Path) -> bool {
        let kb = RwLock::new(KbIndex {
            vectors: std::mem::take(idx),
            words: WordIndex::new(),
        });
        let wrote = save_graph(&kb, path).unwrap();
        *idx = kb.into_inner().unwrap().vectors;
        wrote
    }

    #[test]
    fn a_saved_graph_is_read_back_patched_or_refused() {
        let (d, n) = (16, 300);
        let mut seed = 3;
        let dir = std::env::temp_dir().join(format!("basalt-hnsw-test-{}", std::process::id()));
        let path = dir.join("kb.usearch");
        let _ = std::fs::remove_dir_all(&dir);
        let vectors: Vec<Vec<f32>> = (0..n).map(|_| random_unit(&mut seed, d)).collect();

        // No file yet: built, then saved once (nothing changed since).
        let mut idx = index_of(d, &vectors);
        let built = idx.graph_job().unwrap().build(Some(&path)).unwrap();
        assert_eq!(built.1, GraphOrigin::Built);
        idx.install_graph(Some(built));
        assert!(save(&mut idx, &path));
        assert!(!save(&mut idx, &path), "unchanged: not saved again");
        assert!(!dir.join("kb.tmp").exists());

        // The same chunks: read back as saved, and searches walk it.
        let mut idx = index_of(d, &vectors);
        let read = idx.graph_job().unwrap().build(Some(&path)).unwrap();
        assert_eq!(read.1, GraphOrigin::Saved);
        idx.install_graph(Some(read));
        assert!(idx.is_approximate());
        assert!(!save(&mut idx, &path), "read back as saved: not dirty");
        for (i, v) in vectors.iter().enumerate().step_by(37) {
            assert_eq!(idx.search(v, 1, None)[0].0, i as i64);
        }

        // Written since the save: two new chunks and one new vector for an
        // old chunk are patched in.
        let mut more = vectors.clone();
        more[7] = random_unit(&mut seed, d);
        more.push(random_unit(&mut seed, d));
        more.push(random_unit(&mut seed, d));
        let mut idx = index_of(d, &more);
        let patched = idx.graph_job().unwrap().build(Some(&path)).unwrap();
        assert_eq!(patched.1, GraphOrigin::Patched(3));
        idx.install_graph(Some(patched));
        for id in [7, n, n + 1] {
            assert_eq!(idx.search(&more[id], 1, None)[0].0, id as i64);
        }
        assert!(save(&mut idx, &path), "patched: saved again");

        // A chunk the file has but the store lost: the graph is built again.
        let fewer = &more[..n];
        let mut idx = index_of(d, fewer);
        let again = idx.graph_job().unwrap().build(Some(&path)).unwrap();
        assert_eq!(again.1, GraphOrigin::Built);
        idx.install_graph(Some(again));
        assert_eq!(idx.search(&fewer[5], 1, None)[0].0, 5);

        // A file of other vectors, or not a graph at all: built again.
        let other: Vec<Vec<f32>> = (0..n).map(|_| random_unit(&mut seed, 8)).collect();
        let mut small = index_of(8, &other);
        let g = small.graph_job().unwrap().build(None);
        small.install_graph(g);
        let eight = dir.join("eight.usearch");
        assert!(save(&mut small, &eight));
        std::fs::copy(&eight, &path).unwrap();
        let job = index_of(d, &vectors).graph_job().unwrap();
        assert_eq!(job.build(Some(&path)).unwrap().1, GraphOrigin::Built);
        std::fs::write(&path, b"not a graph").unwrap();
        let job = index_of(d, &vectors).graph_job().unwrap();
        assert_eq!(job.build(Some(&path)).unwrap().1, GraphOrigin::Built);

        // A retired knowledge base's graph is deleted and never saved again.
        let kb = RwLock::new(KbIndex {
            vectors: small,
            words: WordIndex::new(),
        });
        kb.write().unwrap().vectors.remove(3);
        retire_graph(&kb, &eight);
        assert!(!eight.exists());
        assert!(!save_graph(&kb, &eight).unwrap());
        assert!(!eight.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn dot_matches_the_plain_sum() {
        let a: Vec<f32> = (0..19).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..19).map(|i| 1.0 - i as f32 * 0.1).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-3);
    }
}
