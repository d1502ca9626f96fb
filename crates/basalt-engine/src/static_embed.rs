//! Static (per-token) embeddings distilled from an embedding model, for checks
//! that must take microseconds rather than a forward pass: every vocabulary
//! token is run through the model once in the context `[CLS] token [SEP]`, the
//! vectors are centred on their mean (which removes the component all tokens
//! share, as the PCA step of model2vec-style distillation does), and a text's
//! embedding is the normalized mean of its tokens' vectors. Built once per
//! model and cached next to its weights.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use llama_cpp_2::model::LlamaModel;

use crate::embed::{normalize, Embedder};
use crate::EngineError;

/// Tokens per job while distilling.
const DISTILL_JOB: usize = 256;
/// Marks a cache file of this format.
const MAGIC: &[u8; 8] = b"BSTATIC1";

/// A token-vector table plus the tokenizer that indexes it.
pub struct StaticEmbeddings {
    model: Arc<LlamaModel>,
    dim: usize,
    table: Vec<f32>,
    /// Per token: how much it counts in a text's mean. Function words and
    /// punctuation count little, so the content words carry the meaning (the
    /// role frequency weighting plays in SIF and model2vec).
    weights: Vec<f32>,
}

/// English function words, down-weighted in text embeddings.
const FUNCTION_WORDS: &str = "a about above after again against all am an and any are as at be because been before being below between both but by can could did do does doing down during each few for from further had has have having he her here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off on once only or other our ours ourselves out over own same she should so some such than that the their theirs them themselves then there these they this those through to too under until up very was we were what when where which while who whom why will with would you your yours yourself yourselves 's 't 're 've 'll 'd";

/// Weight of a function word or punctuation token.
const LIGHT: f32 = 0.2;

fn token_weights(model: &LlamaModel) -> Vec<f32> {
    let vocab = usize::try_from(model.n_vocab()).unwrap_or(0);
    let mut weights = vec![1.0f32; vocab];
    for (token, bytes) in model.tokens(false) {
        let Ok(id) = usize::try_from(token.0) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes).trim().to_lowercase();
        let light = text.is_empty()
            || text.chars().all(|c| !c.is_alphanumeric())
            || FUNCTION_WORDS.split(' ').any(|w| w == text);
        if light && id < weights.len() {
            weights[id] = LIGHT;
        }
    }
    weights
}

impl StaticEmbeddings {
    /// Length of every vector.
    #[must_use]
    pub fn dimension(&self) -> usize {
        self.dim
    }

    /// The unit-length embedding of `text` (zero when it has no tokens).
    #[must_use]
    pub fn embed(&self, text: &str) -> Vec<f32> {
        let mut out = vec![0.0f32; self.dim];
        let tokens = self.model.vocab().tokenize(text.as_bytes(), false, false);
        let mut n = 0usize;
        for t in tokens {
            let Ok(id) = usize::try_from(t.0) else {
                continue;
            };
            let Some(row) = self.table.get(id * self.dim..(id + 1) * self.dim) else {
                continue;
            };
            let w = self.weights.get(id).copied().unwrap_or(1.0);
            out.iter_mut().zip(row).for_each(|(o, v)| *o += w * v);
            n += 1;
        }
        if n > 0 {
            normalize(&mut out);
        }
        out
    }

    /// Builds the table with `embedder` (about one forward pass per 32 tokens
    /// of the vocabulary), or reads it from `cache` when a previous run wrote it.
    pub async fn load_or_build(embedder: &Embedder, cache: &Path) -> Result<Self, EngineError> {
        let model = embedder.model();
        let vocab = usize::try_from(model.n_vocab()).unwrap_or(0);
        let dim = embedder.dimension();
        let weights = token_weights(&model);
        if let Ok(table) = read_cache(cache, vocab, dim) {
            return Ok(Self {
                model,
                dim,
                table,
                weights,
            });
        }
        tracing::info!(
            tokens = vocab,
            "distilling static token embeddings (once per model)"
        );
        let framed = model.vocab().tokenize(b"", true, false);
        let (cls, sep) = match framed.as_slice() {
            [c, s] => (*c, *s),
            _ => {
                return Err(EngineError::Backend(
                    "the embedding model does not frame inputs as [CLS] … [SEP]".into(),
                ))
            }
        };
        let mut table = Vec::with_capacity(vocab * dim);
        let ids: Vec<i32> = (0..i32::try_from(vocab).unwrap_or(0)).collect();
        for chunk in ids.chunks(DISTILL_JOB) {
            let inputs = chunk
                .iter()
                .map(|&id| vec![cls, llama_cpp_2::token::LlamaToken(id), sep])
                .collect();
            let vectors = embedder
                .submit(inputs)?
                .await
                .map_err(|_| EngineError::Stopped)??;
            for mut v in vectors {
                normalize(&mut v);
                table.extend_from_slice(&v);
            }
        }
        let mut mean = vec![0.0f32; dim];
        for row in table.chunks(dim) {
            mean.iter_mut()
                .zip(row)
                .for_each(|(m, v)| *m += v / vocab as f32);
        }
        for row in table.chunks_mut(dim) {
            row.iter_mut().zip(&mean).for_each(|(v, m)| *v -= m);
        }
        if let Err(e) = write_cache(cache, vocab, dim, &table) {
            tracing::warn!(path = %cache.display(), error = %e, "could not cache static embeddings");
        }
        Ok(Self {
            model,
            dim,
            table,
            weights,
        })
    }

    /// Where the table of the model at `model_path` is cached.
    #[must_use]
    pub fn cache_path(model_path: &Path) -> PathBuf {
        model_path.with_extension("static.bin")
    }
}

fn read_cache(path: &Path, vocab: usize, dim: usize) -> std::io::Result<Vec<f32>> {
    let mut f = std::fs::File::open(path)?;
    let mut head = [0u8; 24];
    f.read_exact(&mut head)?;
    let v = u64::from_le_bytes(head[8..16].try_into().unwrap_or_default());
    let d = u64::from_le_bytes(head[16..24].try_into().unwrap_or_default());
    if &head[..8] != MAGIC || v != vocab as u64 || d != dim as u64 {
        return Err(std::io::Error::other("stale cache"));
    }
    let mut bytes = Vec::with_capacity(vocab * dim * 4);
    f.read_to_end(&mut bytes)?;
    if bytes.len() != vocab * dim * 4 {
        return Err(std::io::Error::other("truncated cache"));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// Writes to a temporary file and renames it, so a crash leaves no half file.
fn write_cache(path: &Path, vocab: usize, dim: usize, table: &[f32]) -> std::io::Result<()> {
    let tmp = path.with_extension("static.bin.tmp");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        f.write_all(MAGIC)?;
        f.write_all(&(vocab as u64).to_le_bytes())?;
        f.write_all(&(dim as u64).to_le_bytes())?;
        for x in table {
            f.write_all(&x.to_le_bytes())?;
        }
        f.flush()?;
    }
    std::fs::rename(tmp, path)
}
