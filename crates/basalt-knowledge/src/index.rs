//! The in-memory vector side of a knowledge base's index: every chunk's
//! unit-length vector in one contiguous array, with its metadata for filters.
//! SQLite holds the durable copy (vector BLOB + FTS5 row, written in one
//! transaction with the chunk); this is loaded from it on first use and kept in
//! step with every write, so exact search is a single pass over memory that
//! applies metadata filters before ranking.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::filter::Filter;

/// A chunk to add: id, unit vector, metadata.
pub type IndexEntry = (i64, Vec<f32>, Arc<Map<String, Value>>);

#[derive(Default)]
pub struct VectorIndex {
    dimension: usize,
    ids: Vec<i64>,
    vectors: Vec<f32>,
    metadata: Vec<Arc<Map<String, Value>>>,
    positions: HashMap<i64, usize>,
}

impl VectorIndex {
    #[must_use]
    pub fn new(dimension: usize) -> Self {
        Self {
            dimension,
            ..Self::default()
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
        self.metadata.push(metadata);
        true
    }

    /// Removes a chunk (the last one moves into its place).
    pub fn remove(&mut self, id: i64) {
        let Some(pos) = self.positions.remove(&id) else {
            return;
        };
        let last = self.ids.len() - 1;
        let d = self.dimension;
        if pos != last {
            let moved = self.ids[last];
            self.ids.swap(pos, last);
            self.metadata.swap(pos, last);
            let (head, tail) = self.vectors.split_at_mut(last * d);
            head[pos * d..(pos + 1) * d].copy_from_slice(&tail[..d]);
            self.positions.insert(moved, pos);
        }
        self.ids.pop();
        self.metadata.pop();
        self.vectors.truncate(last * d);
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
        let mut best: Vec<(i64, f32)> = Vec::with_capacity(k + 1);
        let mut floor = f32::NEG_INFINITY;
        for (i, row) in self.vectors.chunks_exact(self.dimension).enumerate() {
            let score = dot(row, query);
            if best.len() == k && score <= floor {
                continue;
            }
            if let Some(f) = filter {
                if !f.matches(&self.metadata[i]) {
                    continue;
                }
            }
            let at = best.partition_point(|(_, s)| *s >= score);
            best.insert(at, (self.ids[i], score));
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

/// Dot product, written so the compiler vectorises it (8 independent lanes).
#[must_use]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for l in 0..8 {
            lanes[l] += x[l] * y[l];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

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
        assert!(!idx.insert(9, &[1.0, 2.0, 3.0], meta("i", 9)), "wrong dimension");
    }

    #[test]
    fn dot_matches_the_plain_sum() {
        let a: Vec<f32> = (0..19).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..19).map(|i| 1.0 - i as f32 * 0.1).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-3);
    }
}
