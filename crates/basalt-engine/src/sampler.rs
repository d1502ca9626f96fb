//! Per-request token sampling over raw logits: greedy, or temperature with top-k
//! and top-p, seeded. Done in Rust over the logits slice so a step costs one pass
//! over the vocabulary, not a copy of it.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// How to pick the next token.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// 0 means greedy (always the most likely token).
    pub temperature: f32,
    pub top_p: f32,
    /// Candidates considered before top-p; 0 means "the engine default".
    pub top_k: u32,
    pub seed: u64,
}

impl SamplingParams {
    /// Always the most likely token: deterministic output for a given prompt.
    #[must_use]
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            seed: 0,
        }
    }
}

/// A token candidate ordered by logit (reversed, for a min-heap of the best k).
#[derive(Clone, Copy)]
struct Candidate {
    logit: f32,
    token: u32,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reverse: the heap's top is the smallest logit kept so far.
        other.logit.total_cmp(&self.logit)
    }
}

/// The sampling state of one sequence.
pub struct Sampler {
    params: SamplingParams,
    top_k: usize,
    rng: u64,
    heap: BinaryHeap<Candidate>,
    probs: Vec<(f32, u32)>,
}

impl Sampler {
    #[must_use]
    pub fn new(params: SamplingParams, default_top_k: u32) -> Self {
        let top_k = if params.top_k == 0 {
            default_top_k
        } else {
            params.top_k
        }
        .max(1) as usize;
        // SplitMix64 seeding so nearby seeds give unrelated streams.
        let rng = params.seed ^ 0x9E37_79B9_7F4A_7C15;
        Self {
            params,
            top_k,
            rng,
            heap: BinaryHeap::with_capacity(top_k + 1),
            probs: Vec::with_capacity(top_k),
        }
    }

    fn next_f32(&mut self) -> f32 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // 24 random bits -> [0, 1)
        (z >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Picks the next token from the logits of one position.
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        if self.params.temperature <= 0.0 || self.top_k == 1 {
            return argmax(logits);
        }
        self.heap.clear();
        let mut floor = f32::NEG_INFINITY;
        for (i, &logit) in logits.iter().enumerate() {
            if logit > floor || self.heap.len() < self.top_k {
                self.heap.push(Candidate {
                    logit,
                    token: i as u32,
                });
                if self.heap.len() > self.top_k {
                    self.heap.pop();
                }
                if self.heap.len() == self.top_k {
                    floor = self.heap.peek().map_or(f32::NEG_INFINITY, |c| c.logit);
                }
            }
        }
        self.probs.clear();
        self.probs
            .extend(self.heap.drain().map(|c| (c.logit, c.token)));
        self.probs.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
        let max = self.probs.first().map_or(0.0, |p| p.0);
        let inv_t = 1.0 / self.params.temperature;
        let mut sum = 0.0;
        for p in &mut self.probs {
            p.0 = ((p.0 - max) * inv_t).exp();
            sum += p.0;
        }
        // Top-p: keep the smallest prefix whose mass reaches top_p.
        let mut kept = self.probs.len();
        if self.params.top_p < 1.0 {
            let mut acc = 0.0;
            for (i, p) in self.probs.iter().enumerate() {
                acc += p.0 / sum;
                if acc >= self.params.top_p {
                    kept = i + 1;
                    break;
                }
            }
        }
        let mass: f32 = self.probs[..kept].iter().map(|p| p.0).sum();
        let mut r = self.next_f32() * mass;
        for p in &self.probs[..kept] {
            r -= p.0;
            if r <= 0.0 {
                return p.1;
            }
        }
        self.probs[kept - 1].1
    }
}

/// Index of the first largest logit. Two passes over the vocabulary: the
/// maximum in 16 independent lanes (which the compiler vectorises), then the
/// first position holding it; faster than one scalar pass with a dependency.
pub(crate) fn argmax(logits: &[f32]) -> u32 {
    const LANES: usize = 16;
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = logits.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane = if x > *lane { x } else { *lane };
        }
    }
    let max = lanes
        .iter()
        .chain(rest)
        .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m });
    logits.iter().position(|&x| x == max).unwrap_or(0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(temperature: f32, top_p: f32, top_k: u32, seed: u64) -> SamplingParams {
        SamplingParams {
            temperature,
            top_p,
            top_k,
            seed,
        }
    }

    #[test]
    fn greedy_picks_the_largest_logit() {
        let mut s = Sampler::new(params(0.0, 1.0, 0, 1), 40);
        assert_eq!(s.sample(&[0.1, 3.0, -1.0, 2.9]), 1);
    }

    #[test]
    fn argmax_finds_the_first_maximum_anywhere() {
        let mut v: Vec<f32> = (0..1000).map(|i| (i % 97) as f32).collect();
        assert_eq!(argmax(&v), 96);
        v[999] = 500.0; // in the remainder after the 16-lane chunks
        assert_eq!(argmax(&v), 999);
        v[17] = 500.0;
        assert_eq!(argmax(&v), 17);
        assert_eq!(argmax(&[f32::NAN, 1.0, f32::NAN]), 1);
        assert_eq!(argmax(&[]), 0);
    }

    #[test]
    fn top_k_one_is_greedy() {
        let mut s = Sampler::new(params(1.0, 1.0, 1, 7), 40);
        assert_eq!(s.sample(&[0.1, 3.0, -1.0, 2.9]), 1);
    }

    #[test]
    fn same_seed_same_tokens_and_only_top_k_candidates() {
        let logits: Vec<f32> = (0..1000).map(|i| ((i * 37) % 101) as f32 / 10.0).collect();
        let run = |seed| {
            let mut s = Sampler::new(params(1.0, 1.0, 3, seed), 40);
            (0..50).map(|_| s.sample(&logits)).collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        let mut top: Vec<(f32, u32)> = logits
            .iter()
            .enumerate()
            .map(|(i, &l)| (l, i as u32))
            .collect();
        top.sort_by(|a, b| b.0.total_cmp(&a.0));
        let allowed: Vec<u32> = top[..3].iter().map(|p| p.1).collect();
        assert!(run(42).iter().all(|t| allowed.contains(t)));
    }

    #[test]
    fn tiny_top_p_keeps_only_the_best() {
        let mut s = Sampler::new(params(1.0, 0.01, 10, 3), 40);
        for _ in 0..20 {
            assert_eq!(s.sample(&[0.0, 5.0, 1.0, 4.0]), 1);
        }
    }

    #[test]
    fn sampling_follows_the_distribution() {
        // logits ln(1), ln(3): token 1 should win about 75% of draws.
        let logits = [0.0f32, 3.0f32.ln()];
        let mut s = Sampler::new(params(1.0, 1.0, 2, 9), 40);
        let ones = (0..4000).filter(|_| s.sample(&logits) == 1).count();
        assert!((2800..3200).contains(&ones), "{ones}");
    }
}
