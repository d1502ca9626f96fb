//! Embedding models (BERT-family GGUF with a pooling type, e.g. all-MiniLM-L6-v2)
//! on llama.cpp. One worker thread owns the context; requests queue on a bounded
//! channel and the worker packs the inputs of every waiting request into shared
//! batches (up to `batch_tokens` tokens and `batch_sequences` inputs), so many
//! small calls cost about what one batched call does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use llama_cpp_2::context::params::{LlamaContextParams, LlamaPoolingType};
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

use crate::{backend, load_model, non_zero, EngineError};

/// How to run one embedding model.
#[derive(Debug, Clone)]
pub struct EmbedderConfig {
    pub model_path: std::path::PathBuf,
    /// Longest input in tokens (special tokens included); longer inputs are
    /// truncated, as sentence-transformers does.
    pub max_input_tokens: u32,
    pub threads: u32,
    /// Requests that may wait before new ones are throttled.
    pub max_queue: u32,
    /// Most tokens in one forward pass.
    pub batch_tokens: u32,
    /// Most inputs in one forward pass.
    pub batch_sequences: u32,
}

/// Live counters of one embedding model.
#[derive(Debug, Default)]
pub struct EmbedStats {
    pub inputs: AtomicU64,
    pub tokens: AtomicU64,
    pub batches: AtomicU64,
}

/// One vector per input of a job, or why the job failed.
pub type EmbedResult = Result<Vec<Vec<f32>>, EngineError>;

type Reply = tokio::sync::oneshot::Sender<EmbedResult>;

struct EmbedJob {
    inputs: Vec<Vec<LlamaToken>>,
    reply: Reply,
}

/// A loaded embedding model and its worker thread.
pub struct Embedder {
    model: Arc<LlamaModel>,
    jobs: SyncSender<EmbedJob>,
    config: EmbedderConfig,
    dimension: usize,
    stats: Arc<EmbedStats>,
}

impl Embedder {
    /// Loads the model and starts its worker. Blocking.
    pub fn load(config: EmbedderConfig) -> Result<Self, EngineError> {
        let backend = backend()?;
        let model = load_model(&config.model_path)?;
        let load_err = |reason: String| EngineError::Load {
            path: config.model_path.clone(),
            reason,
        };
        let dimension = usize::try_from(model.n_embd()).unwrap_or(0);
        if config.max_input_tokens > model.n_ctx_train() {
            return Err(load_err(format!(
                "max input of {} tokens is more than the model's {} positions",
                config.max_input_tokens,
                model.n_ctx_train()
            )));
        }
        let model = Arc::new(model);
        let stats = Arc::new(EmbedStats::default());
        let (jobs, rx) = sync_channel::<EmbedJob>(config.max_queue.max(1) as usize);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (m, s, c) = (Arc::clone(&model), Arc::clone(&stats), config.clone());
        std::thread::Builder::new()
            .name("basalt-embed".into())
            .spawn(move || run(backend, &m, &c, &s, &rx, &ready_tx))
            .map_err(|e| EngineError::Backend(e.to_string()))?;
        ready_rx.recv().map_err(|_| EngineError::Stopped)??;
        Ok(Self {
            model,
            jobs,
            config,
            dimension,
            stats,
        })
    }

    /// Length of every embedding vector.
    #[must_use]
    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// The loaded model (its vocabulary and tokenizer).
    #[must_use]
    pub fn model(&self) -> Arc<LlamaModel> {
        Arc::clone(&self.model)
    }

    #[must_use]
    pub fn config(&self) -> &EmbedderConfig {
        &self.config
    }

    #[must_use]
    pub fn stats(&self) -> &EmbedStats {
        &self.stats
    }

    /// Tokens of `text` as the model sees it: with its special tokens
    /// (`[CLS] … [SEP]`), truncated to `max_input_tokens` (the final `[SEP]` kept).
    #[must_use]
    pub fn tokenize(&self, text: &str) -> Vec<LlamaToken> {
        let mut tokens = self.model.vocab().tokenize(text.as_bytes(), true, false);
        let max = self.config.max_input_tokens as usize;
        if tokens.len() > max && max >= 2 {
            let last = tokens[tokens.len() - 1];
            tokens.truncate(max - 1);
            tokens.push(last);
        }
        tokens
    }

    /// Word-piece tokens of `text` without special tokens or truncation: what
    /// chunkers count.
    #[must_use]
    pub fn count_tokens(&self, text: &str) -> usize {
        self.model
            .vocab()
            .tokenize(text.as_bytes(), false, false)
            .len()
    }

    /// Queues inputs (already tokenized with [`Embedder::tokenize`]); the reply
    /// carries one mean-pooled, unnormalized vector per input, in order. Never
    /// blocks: a full queue is an error at once.
    pub fn submit(
        &self,
        inputs: Vec<Vec<LlamaToken>>,
    ) -> Result<tokio::sync::oneshot::Receiver<EmbedResult>, EngineError> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        match self.jobs.try_send(EmbedJob { inputs, reply }) {
            Ok(()) => Ok(rx),
            Err(TrySendError::Full(_)) => Err(EngineError::QueueFull(self.config.max_queue)),
            Err(TrySendError::Disconnected(_)) => Err(EngineError::Stopped),
        }
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

/// Scales `v` to unit length (a zero vector stays zero).
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

fn run(
    backend: &'static llama_cpp_2::llama_backend::LlamaBackend,
    model: &LlamaModel,
    config: &EmbedderConfig,
    stats: &EmbedStats,
    jobs: &Receiver<EmbedJob>,
    ready: &std::sync::mpsc::Sender<Result<(), EngineError>>,
) {
    let batch_tokens = config.batch_tokens.max(config.max_input_tokens);
    let threads = i32::try_from(config.threads).unwrap_or(1);
    let params = LlamaContextParams::default()
        .with_n_ctx(non_zero(batch_tokens))
        .with_n_batch(batch_tokens)
        .with_n_ubatch(batch_tokens)
        .with_n_seq_max(config.batch_sequences.max(1))
        .with_embeddings(true)
        .with_pooling_type(LlamaPoolingType::Mean)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let mut ctx = match model.new_context(backend, params) {
        Ok(ctx) => {
            let _ = ready.send(Ok(()));
            ctx
        }
        Err(e) => {
            let _ = ready.send(Err(EngineError::Load {
                path: config.model_path.clone(),
                reason: e.to_string(),
            }));
            return;
        }
    };
    let max_seqs = config.batch_sequences.max(1) as usize;
    let mut batch = LlamaBatch::new(batch_tokens as usize, max_seqs as i32);
    while let Ok(first) = jobs.recv() {
        // Every request waiting now shares the batches.
        let mut pending = vec![first];
        while let Ok(more) = jobs.try_recv() {
            pending.push(more);
        }
        pending.retain(|j| !j.reply.is_closed());
        let inputs: Vec<&[LlamaToken]> = pending
            .iter()
            .flat_map(|j| j.inputs.iter().map(Vec::as_slice))
            .collect();
        let mut vectors: Vec<Vec<f32>> = Vec::with_capacity(inputs.len());
        let mut failure = None;
        let mut start = 0;
        while start < inputs.len() {
            batch.clear();
            let mut used = 0usize;
            let mut end = start;
            while end < inputs.len() && end - start < max_seqs {
                let len = inputs[end].len().min(batch_tokens as usize);
                if end > start && used + len > batch_tokens as usize {
                    break;
                }
                let seq = (end - start) as i32;
                if let Err(e) = batch.add_sequence(&inputs[end][..len], seq, true) {
                    failure = Some(EngineError::Decode(e.to_string()));
                    break;
                }
                used += len;
                end += 1;
            }
            if failure.is_some() {
                break;
            }
            ctx.clear_kv_cache();
            if let Err(e) = ctx.decode(&mut batch) {
                failure = Some(EngineError::Decode(e.to_string()));
                break;
            }
            for seq in 0..(end - start) {
                match ctx.embeddings_seq_ith(seq as i32) {
                    Ok(v) => vectors.push(v.to_vec()),
                    Err(e) => {
                        failure = Some(EngineError::Decode(e.to_string()));
                        break;
                    }
                }
            }
            stats.batches.fetch_add(1, Ordering::Relaxed);
            stats.tokens.fetch_add(used as u64, Ordering::Relaxed);
            stats
                .inputs
                .fetch_add((end - start) as u64, Ordering::Relaxed);
            if failure.is_some() {
                break;
            }
            start = end;
        }
        let mut vectors = vectors.into_iter();
        for job in pending {
            let result = match &failure {
                Some(e) => Err(EngineError::Decode(e.to_string())),
                None => Ok(vectors.by_ref().take(job.inputs.len()).collect()),
            };
            let _ = job.reply.send(result);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_gives_unit_length_and_keeps_zero() {
        let mut v = vec![3.0, 4.0];
        normalize(&mut v);
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        let mut z = vec![0.0, 0.0];
        normalize(&mut z);
        assert_eq!(z, vec![0.0, 0.0]);
    }
}
