//! The lexical side of a knowledge base's index: BM25 over its chunks' words,
//! in memory, next to the vectors (`index.rs`). Built from the chunk texts in
//! SQLite on first use and kept in step with every write, like the vectors.
//!
//! Words are the text's alphanumeric runs, lowercased and stemmed (Snowball
//! English, the Porter family). English function words count toward a chunk's
//! length but get no postings: they match nearly every chunk and weigh
//! nothing. A query's score for a chunk is the sum over its distinct words of
//! `idf × tf·(k1+1) / (tf + k1·(1 − b + b·len/avglen))` with Lucene's
//! `idf = ln(1 + (N − df + 0.5)/(df + 0.5))`, k1 = 1.2, b = 0.75.
//!
//! Scoring walks only the postings of the query's words (an accumulator per
//! chunk), so a query costs about the number of chunks holding its words, not
//! the size of the knowledge base. Removed chunks are marked dead and their
//! postings dropped in a compaction once they are more than the live ones.

use std::collections::{HashMap, HashSet};

use rust_stemmers::{Algorithm, Stemmer};

const K1: f32 = 1.2;
const B: f32 = 0.75;

/// English function words: not searched, not posted.
const STOPWORDS: &[&str] = &[
    "a", "about", "all", "also", "an", "and", "any", "are", "as", "at", "be", "been", "but", "by",
    "can", "could", "did", "do", "does", "for", "from", "had", "has", "have", "how", "i", "if",
    "in", "into", "is", "it", "its", "may", "me", "my", "no", "not", "of", "on", "or", "our",
    "should", "so", "some", "such", "than", "that", "the", "their", "them", "then", "there",
    "these", "they", "this", "those", "to", "was", "we", "were", "what", "when", "where", "which",
    "who", "why", "will", "with", "would", "you", "your",
];

#[derive(Clone, Copy)]
struct Posting {
    slot: u32,
    tf: u32,
}

/// One chunk: its id and length in words (`None` once removed).
struct Slot {
    id: i64,
    len: Option<u32>,
}

pub struct WordIndex {
    stemmer: Stemmer,
    stopwords: HashSet<&'static str>,
    terms: HashMap<String, u32>,
    postings: Vec<Vec<Posting>>,
    slots: Vec<Slot>,
    slot_of: HashMap<i64, u32>,
    live: usize,
    total_len: u64,
}

impl Default for WordIndex {
    fn default() -> Self {
        Self {
            stemmer: Stemmer::create(Algorithm::English),
            stopwords: STOPWORDS.iter().copied().collect(),
            terms: HashMap::new(),
            postings: Vec::new(),
            slots: Vec::new(),
            slot_of: HashMap::new(),
            live: 0,
            total_len: 0,
        }
    }
}

impl WordIndex {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Chunks indexed.
    #[must_use]
    pub fn len(&self) -> usize {
        self.live
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// The text's words as they are searched: stems of the words that are not
    /// function words (repeats kept), and the count of all words.
    fn words(&self, text: &str) -> (Vec<String>, usize) {
        let mut all = 0;
        let mut kept = Vec::new();
        for word in text.split(|c: char| !c.is_alphanumeric()) {
            if word.is_empty() {
                continue;
            }
            all += 1;
            let word = word.to_lowercase();
            if !self.stopwords.contains(word.as_str()) {
                kept.push(self.stemmer.stem(&word).into_owned());
            }
        }
        (kept, all)
    }

    /// The distinct stems a query searches for, in the order they appear.
    #[must_use]
    pub fn query_terms(&self, text: &str) -> Vec<String> {
        let mut seen = HashSet::new();
        self.words(text)
            .0
            .into_iter()
            .filter(|t| seen.insert(t.clone()))
            .collect()
    }

    /// Adds (or replaces) a chunk's text.
    pub fn insert(&mut self, id: i64, text: &str) {
        self.remove(id);
        let (words, len) = self.words(text);
        let slot = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
        let mut counts: HashMap<String, u32> = HashMap::new();
        for w in words {
            *counts.entry(w).or_default() += 1;
        }
        for (term, tf) in counts {
            let next = u32::try_from(self.postings.len()).unwrap_or(u32::MAX);
            let t = *self.terms.entry(term).or_insert(next);
            if t == next {
                self.postings.push(Vec::new());
            }
            self.postings[t as usize].push(Posting { slot, tf });
        }
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        self.slots.push(Slot { id, len: Some(len) });
        self.slot_of.insert(id, slot);
        self.live += 1;
        self.total_len += u64::from(len);
    }

    /// Removes a chunk; its postings go at the next compaction.
    pub fn remove(&mut self, id: i64) {
        let Some(slot) = self.slot_of.remove(&id) else {
            return;
        };
        if let Some(len) = self.slots[slot as usize].len.take() {
            self.live -= 1;
            self.total_len -= u64::from(len);
        }
        let dead = self.slots.len() - self.live;
        if dead > 1024 && dead > self.live {
            self.compact();
        }
    }

    /// Drops dead chunks and their postings, renumbering the live ones.
    fn compact(&mut self) {
        let mut renumber = vec![u32::MAX; self.slots.len()];
        let mut slots = Vec::with_capacity(self.live);
        for (old, slot) in self.slots.drain(..).enumerate() {
            if slot.len.is_some() {
                renumber[old] = u32::try_from(slots.len()).unwrap_or(u32::MAX);
                slots.push(slot);
            }
        }
        for list in &mut self.postings {
            list.retain_mut(|p| {
                p.slot = renumber[p.slot as usize];
                p.slot != u32::MAX
            });
        }
        self.slot_of = slots
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id, u32::try_from(i).unwrap_or(u32::MAX)))
            .collect();
        self.slots = slots;
    }

    /// The `k` chunks with the best BM25 score for `terms` (from
    /// [`WordIndex::query_terms`]) that `keep` accepts, best first.
    #[must_use]
    pub fn search(
        &self,
        terms: &[String],
        k: usize,
        keep: impl Fn(i64) -> bool,
    ) -> Vec<(i64, f32)> {
        if self.live == 0 || k == 0 {
            return Vec::new();
        }
        let n = self.live as f32;
        let avg = self.total_len as f32 / n;
        let mut scores = vec![0.0f32; self.slots.len()];
        let mut touched: Vec<u32> = Vec::new();
        for term in terms {
            let Some(&t) = self.terms.get(term) else {
                continue;
            };
            let list = &self.postings[t as usize];
            // Dead postings linger until a compaction: close enough for df.
            let df = list.len() as f32;
            let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
            for p in list {
                let Some(len) = self.slots[p.slot as usize].len else {
                    continue;
                };
                let tf = p.tf as f32;
                let norm = K1 * (1.0 - B + B * len as f32 / avg);
                let s = &mut scores[p.slot as usize];
                if *s == 0.0 {
                    touched.push(p.slot);
                }
                *s += idf * tf * (K1 + 1.0) / (tf + norm);
            }
        }
        // The best k that pass `keep`: the filter runs only on chunks that
        // would enter the list.
        let mut best: Vec<(u32, f32)> = Vec::with_capacity(k + 1);
        for slot in touched {
            let score = scores[slot as usize];
            if best.len() == k && score <= best[k - 1].1 {
                continue;
            }
            if !keep(self.slots[slot as usize].id) {
                continue;
            }
            let at = best.partition_point(|(_, s)| *s >= score);
            best.insert(at, (slot, score));
            best.truncate(k);
        }
        best.into_iter()
            .map(|(slot, s)| (self.slots[slot as usize].id, s))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(texts: &[&str]) -> WordIndex {
        let mut idx = WordIndex::new();
        for (i, t) in texts.iter().enumerate() {
            idx.insert(i as i64, t);
        }
        idx
    }

    fn ids(idx: &WordIndex, query: &str, k: usize) -> Vec<i64> {
        idx.search(&idx.query_terms(query), k, |_| true)
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    }

    #[test]
    fn stems_match_and_function_words_are_not_searched() {
        let idx = index(&[
            "The library catalogues its books.",
            "Cataloguing rules for libraries",
            "Weather in the mountains",
        ]);
        assert_eq!(
            idx.query_terms("the Libraries of THE world"),
            vec!["librari", "world"]
        );
        let mut found = ids(&idx, "library cataloguing", 10);
        found.sort_unstable();
        assert_eq!(found, vec![0, 1]);
        assert!(ids(&idx, "the of and", 10).is_empty());
    }

    #[test]
    fn rare_words_and_short_chunks_score_higher() {
        let idx = index(&[
            "indexing indexing thesaurus",
            "indexing of journals and indexing of books and indexing of maps in libraries",
            "indexing",
            "indexing",
        ]);
        // "thesaurus" is in one chunk, "indexing" in all: the rare word wins.
        assert_eq!(ids(&idx, "indexing thesaurus", 1), vec![0]);
        // Said once in one word beats said three times in thirteen.
        let order = ids(&idx, "indexing", 4);
        assert!(order.iter().position(|&i| i == 2) < order.iter().position(|&i| i == 1));
        // Scores are exact BM25 (Lucene idf, k1 1.2, b 0.75).
        let s = idx.search(&idx.query_terms("thesaurus"), 1, |_| true)[0].1;
        let (n, df, len, avg) = (4.0f32, 1.0f32, 3.0f32, 18.0f32 / 4.0);
        let want = (1.0 + (n - df + 0.5) / (df + 0.5)).ln() * 2.2
            / (1.0 + 1.2 * (0.25 + 0.75 * len / avg));
        assert!((s - want).abs() < 1e-5, "{s} vs {want}");
    }

    #[test]
    fn removed_and_replaced_chunks_leave_and_compaction_keeps_the_rest() {
        let mut idx = WordIndex::new();
        for i in 0..3000 {
            idx.insert(
                i,
                if i % 2 == 0 {
                    "even numbers"
                } else {
                    "odd numbers"
                },
            );
        }
        idx.insert(1, "even now");
        for i in 2..2000 {
            idx.remove(i);
        }
        assert_eq!(idx.len(), 1002);
        assert!(idx.slots.len() < 3000, "compacted");
        let mut even = ids(&idx, "even", 2000);
        even.sort_unstable();
        let want: Vec<i64> = [0, 1].into_iter().chain((2000..3000).step_by(2)).collect();
        assert_eq!(even, want);
        assert_eq!(ids(&idx, "odd", 2000).len(), 500);
    }

    #[test]
    fn the_filter_applies_before_the_cut() {
        let idx = index(&["cats cats cats", "cats cats", "cats"]);
        let kept = idx.search(&idx.query_terms("cats"), 1, |id| id == 2);
        assert_eq!(kept.iter().map(|r| r.0).collect::<Vec<_>>(), vec![2]);
    }
}
