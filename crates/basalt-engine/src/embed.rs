//! Embedding models (BERT-family GGUF with a pooling type, e.g. all-MiniLM-L6-v2)
//! on llama.cpp. A worker thread owns the main context; requests queue on a bounded
//! channel and the worker packs the inputs of waiting requests into shared
//! forward passes (up to `batch_tokens` tokens and `batch_sequences` inputs),
//! so many small calls cost about what one batched call does. It chooses each
//! pass anew, shortest request first, and answers a request as soon as its
//! last input is embedded (see `plan_pass`). A short request that arrives
//! while the worker has more than a short request's work in hand takes an
//! express lane instead (a second context with its own thread and a small
//! queue), which embeds it beside the passes under way: a Retrieve's query
//! during ingestion waits for neither the rest of a 64-chunk batch nor the
//! pass under way.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use llama_cpp_2::context::params::{LlamaContextParams, LlamaPoolingType};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

use crate::encoder::Encoder;
use crate::team::Team;
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
    /// Run the express lane beside the main worker (see [`Embedder::submit`]).
    pub express_lane: bool,
    /// Embed passes whose inputs are all at most [`KERNEL_INPUT_TOKENS`]
    /// tokens with basalt's own encoder (see `encoder`) where the CPU and
    /// model allow it, instead of llama.cpp. Off: always llama.cpp.
    pub encoder_kernel: bool,
}

/// Longest input basalt's own encoder takes: a pass with a longer input goes
/// to llama.cpp. Measured on 2 vCPUs (`examples/embed_speed`, in-process,
/// against `ENCODER_KERNEL=0`): an 8-token query embeds 3.7–4.1× as fast as
/// with llama.cpp, a 26-token one 3.2–3.5×, 32 short texts 3.4×, a 202-token
/// input 1.8×, 64 chunks of 243 tokens 1.7×. Longer inputs (a
/// `context_window` above 256) were not measured, so they keep llama.cpp.
pub const KERNEL_INPUT_TOKENS: usize = 256;

/// Live counters of one embedding model (both lanes together).
#[derive(Debug, Default)]
pub struct EmbedStats {
    pub inputs: AtomicU64,
    pub tokens: AtomicU64,
    pub batches: AtomicU64,
    /// Requests the express lane took.
    pub express: AtomicU64,
    /// Passes basalt's own encoder embedded (the rest were llama.cpp's).
    pub kernel_passes: AtomicU64,
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
    /// The express lane's queue (see [`Embedder::submit`]), if it runs.
    express: Option<SyncSender<EmbedJob>>,
    /// The main worker has more than a short request's worth of work in hand.
    busy: Arc<AtomicBool>,
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
        let encoder = if config.encoder_kernel {
            match Encoder::load(&config.model_path) {
                Ok(e) => Some(Arc::new(e)),
                Err(reason) => {
                    tracing::info!(model = %config.model_path.display(), %reason, "llama.cpp embeds every pass");
                    None
                }
            }
        } else {
            None
        };
        let stats = Arc::new(EmbedStats::default());
        let busy = Arc::new(AtomicBool::new(false));
        let spawn = |name: &str, config: EmbedderConfig, busy: Arc<AtomicBool>| {
            let (jobs, rx) = sync_channel::<EmbedJob>(config.max_queue.max(1) as usize);
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let (m, s, e) = (Arc::clone(&model), Arc::clone(&stats), encoder.clone());
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    run(
                        backend,
                        &m,
                        e.as_deref(),
                        &config,
                        &s,
                        &rx,
                        &ready_tx,
                        &busy,
                    )
                })
                .map_err(|e| EngineError::Backend(e.to_string()))?;
            ready_rx.recv().map_err(|_| EngineError::Stopped)??;
            Ok::<_, EngineError>(jobs)
        };
        let jobs = spawn("basalt-embed", config.clone(), Arc::clone(&busy))?;
        // One thread, so it runs beside the main worker's team without
        // making it wait at every barrier for a thread the lane displaced.
        // Only an optimisation: without it, everything takes the main queue.
        let express = config
            .express_lane
            .then(|| {
                spawn(
                    "basalt-embed-express",
                    EmbedderConfig {
                        threads: 1,
                        max_queue: EXPRESS_QUEUE,
                        batch_tokens: config.max_input_tokens,
                        batch_sequences: EXPRESS_INPUTS as u32,
                        express_lane: false,
                        ..config.clone()
                    },
                    Arc::new(AtomicBool::new(false)),
                )
                .inspect_err(|e| {
                    tracing::warn!(error = %e, "no express lane for the embedding model");
                })
                .ok()
            })
            .flatten();
        Ok(Self {
            model,
            jobs,
            express,
            busy,
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
    ///
    /// A short request (a Retrieve's query) that finds the main worker busy
    /// (embedding a document's chunks) goes to an express lane instead: a
    /// second context on one thread, which embeds it beside the pass under
    /// way rather than after it. When the lane's small queue is full, it
    /// takes the main queue like any other.
    pub fn submit(
        &self,
        inputs: Vec<Vec<LlamaToken>>,
    ) -> Result<tokio::sync::oneshot::Receiver<EmbedResult>, EngineError> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let short = inputs.len() <= EXPRESS_INPUTS
            && inputs.iter().map(Vec::len).sum::<usize>() <= EXPRESS_TOKENS;
        let mut job = EmbedJob { inputs, reply };
        if let Some(express) = self.express.as_ref().filter(|_| short) {
            if self.busy.load(Ordering::Relaxed) {
                match express.try_send(job) {
                    Ok(()) => {
                        self.stats.express.fetch_add(1, Ordering::Relaxed);
                        return Ok(rx);
                    }
                    Err(TrySendError::Full(j) | TrySendError::Disconnected(j)) => job = j,
                }
            }
        }
        match self.jobs.try_send(job) {
            Ok(()) => Ok(rx),
            Err(TrySendError::Full(_)) => Err(EngineError::QueueFull(self.config.max_queue)),
            Err(TrySendError::Disconnected(_)) => Err(EngineError::Stopped),
        }
    }
}

/// The most inputs, and tokens in all, of a request the express lane takes.
const EXPRESS_INPUTS: usize = 4;
const EXPRESS_TOKENS: usize = 128;
/// Requests that may wait for the express lane (more take the main queue).
const EXPRESS_QUEUE: u32 = 4;

/// Dot product, written so the compiler vectorises it: 32 independent
/// lanes (four 256-bit or two 512-bit accumulators), so consecutive
/// multiply-adds do not wait for each other.
#[must_use]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 32;
    let mut lanes = [0.0f32; LANES];
    let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for l in 0..LANES {
            lanes[l] = x[l].mul_add(y[l], lanes[l]);
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

#[expect(clippy::too_many_arguments)]
fn run(
    backend: &'static llama_cpp_2::llama_backend::LlamaBackend,
    model: &LlamaModel,
    encoder: Option<&Encoder>,
    config: &EmbedderConfig,
    stats: &EmbedStats,
    jobs: &Receiver<EmbedJob>,
    ready: &std::sync::mpsc::Sender<Result<(), EngineError>>,
    busy: &AtomicBool,
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
    let limits = PassLimits {
        tokens: batch_tokens as usize,
        sequences: max_seqs,
    };
    // basalt's encoder runs on this thread and helpers of its own, which
    // park soon after a pass (libgomp's, llama.cpp's, spin for milliseconds).
    let team = encoder.map(|_| Team::new(config.threads as usize));
    // Jobs in hand (at most `max_queue`; more wait in the channel).
    let mut pending: Vec<Pending> = Vec::new();
    let mut order = Order::ShortestFirst;
    loop {
        if pending.is_empty() {
            busy.store(false, Ordering::Relaxed);
            match jobs.recv() {
                Ok(job) => pending.push(Pending::new(job)),
                Err(_) => return,
            }
        }
        while pending.len() < config.max_queue.max(1) as usize {
            match jobs.try_recv() {
                Ok(job) => pending.push(Pending::new(job)),
                Err(_) => break,
            }
        }
        // A client that went away (or an empty job) frees its place now.
        pending.retain_mut(|p| p.wanted() && !p.answer_if_done());
        if pending.is_empty() {
            continue;
        }
        // With more than a short request's worth of work in hand, short
        // requests take the express lane rather than wait for it.
        let left: usize = pending.iter().map(|p| p.tokens_left(limits)).sum();
        busy.store(left > EXPRESS_TOKENS, Ordering::Relaxed);
        let plan = plan_pass(&pending, order, limits);
        order = if plan.held_back {
            Order::Arrival
        } else {
            Order::ShortestFirst
        };
        let inputs: Vec<&[LlamaToken]> = plan
            .parts
            .iter()
            .flat_map(|&(i, from, to)| &pending[i].inputs[from..to])
            .map(|input| &input[..input.len().min(limits.tokens)])
            .collect();
        let used: usize = inputs.iter().map(|i| i.len()).sum();
        let limit = encoder.map_or(0, |e| e.max_tokens().min(KERNEL_INPUT_TOKENS));
        let by_encoder = match encoder.zip(team.as_ref()) {
            Some((e, team)) if inputs.iter().all(|i| i.len() <= limit) => {
                match e.embed(&inputs, team) {
                    Ok(v) => {
                        stats.kernel_passes.fetch_add(1, Ordering::Relaxed);
                        Some(v)
                    }
                    Err(reason) => {
                        // llama.cpp embeds this pass instead.
                        tracing::warn!(%reason, "basalt's encoder failed a pass");
                        None
                    }
                }
            }
            _ => None,
        };
        let vectors = match by_encoder {
            Some(v) => Ok(v),
            None => decode(&mut ctx, &mut batch, &inputs),
        };
        let seq = inputs.len();
        let (vectors, failure) = match vectors {
            Ok(v) => (v, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let mut vectors = vectors.into_iter();
        for &(i, from, to) in &plan.parts {
            let p = &mut pending[i];
            p.vectors.extend(vectors.by_ref().take(to - from));
            p.done = to;
        }
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.tokens.fetch_add(used as u64, Ordering::Relaxed);
        stats.inputs.fetch_add(seq as u64, Ordering::Relaxed);
        if let Some(e) = &failure {
            // The jobs of a failed pass fail; the others go on.
            let mut failed: Vec<usize> = plan.parts.iter().map(|&(i, _, _)| i).collect();
            failed.sort_unstable();
            for i in failed.into_iter().rev() {
                pending.remove(i).fail(e);
            }
        }
        // A job is answered as soon as its last input is embedded.
        pending.retain_mut(|p| !p.answer_if_done());
    }
}

/// llama.cpp's forward pass over `inputs`, one sequence each: their pooled
/// embeddings.
fn decode(
    ctx: &mut LlamaContext,
    batch: &mut LlamaBatch,
    inputs: &[&[LlamaToken]],
) -> Result<Vec<Vec<f32>>, EngineError> {
    batch.clear();
    for (seq, input) in (0i32..).zip(inputs) {
        batch
            .add_sequence(input, seq, true)
            .map_err(|e| EngineError::Decode(e.to_string()))?;
    }
    ctx.clear_kv_cache();
    ctx.decode(batch)
        .map_err(|e| EngineError::Decode(e.to_string()))?;
    (0i32..)
        .take(inputs.len())
        .map(|seq| {
            ctx.embeddings_seq_ith(seq)
                .map(<[f32]>::to_vec)
                .map_err(|e| EngineError::Decode(e.to_string()))
        })
        .collect()
}

/// A job in the worker's hands, with the vectors of its inputs so far.
struct Pending {
    inputs: Vec<Vec<LlamaToken>>,
    /// Taken when the job is answered.
    reply: Option<Reply>,
    /// Inputs embedded so far (their vectors are in `vectors`).
    done: usize,
    vectors: Vec<Vec<f32>>,
}

impl Pending {
    fn new(job: EmbedJob) -> Self {
        Self {
            vectors: Vec::with_capacity(job.inputs.len()),
            inputs: job.inputs,
            reply: Some(job.reply),
            done: 0,
        }
    }

    fn left(&self) -> &[Vec<LlamaToken>] {
        &self.inputs[self.done..]
    }

    /// What the inputs left cost in passes of `limits`.
    fn tokens_left(&self, limits: PassLimits) -> usize {
        self.left().iter().map(|input| limits.cost(input)).sum()
    }

    /// Whether the client is still waiting.
    fn wanted(&self) -> bool {
        self.reply.as_ref().is_some_and(|r| !r.is_closed())
    }

    /// Sends the vectors if every input is embedded; whether it did.
    fn answer_if_done(&mut self) -> bool {
        if !self.left().is_empty() {
            return false;
        }
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(Ok(std::mem::take(&mut self.vectors)));
        }
        true
    }

    fn fail(mut self, error: &EngineError) {
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(Err(EngineError::Decode(error.to_string())));
        }
    }
}

/// What one forward pass may hold.
#[derive(Debug, Clone, Copy)]
struct PassLimits {
    tokens: usize,
    sequences: usize,
}

impl PassLimits {
    /// The tokens an input takes in a pass (a longer one is cut to fit).
    fn cost(self, input: &[LlamaToken]) -> usize {
        input.len().clamp(1, self.tokens)
    }
}

/// The order in which a pass takes the jobs in hand.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Order {
    /// Fewest tokens left first (a Retrieve's lone query before the rest of a
    /// 64-chunk ingestion batch).
    ShortestFirst,
    /// Oldest first: the pass after one that held a job back, so a stream of
    /// small jobs cannot starve a large one.
    Arrival,
}

/// The inputs one pass embeds: `(job, first input, end)` ranges.
#[derive(Debug, PartialEq)]
struct Plan {
    parts: Vec<(usize, usize, usize)>,
    /// A job with inputs left was kept out so the pass stayed small.
    held_back: bool,
}

/// Chooses the next pass. In [`Order::ShortestFirst`] a pass takes whole jobs
/// while they fit and keeps the rest for later, so a short job waits for at
/// most the pass under way, not for every input queued before it; only when
/// the first job does not fit whole does the pass take as many of its inputs
/// as fit (and nothing else). In [`Order::Arrival`] it fills up in arrival
/// order, as many inputs as fit.
fn plan_pass(pending: &[Pending], order: Order, limits: PassLimits) -> Plan {
    let mut jobs: Vec<usize> = (0..pending.len())
        .filter(|&i| !pending[i].left().is_empty())
        .collect();
    if order == Order::ShortestFirst {
        jobs.sort_by_key(|&i| pending[i].tokens_left(limits));
    }
    let mut plan = Plan {
        parts: Vec::new(),
        held_back: false,
    };
    let (mut tokens, mut seqs) = (0usize, 0usize);
    for i in jobs {
        let p = &pending[i];
        let rest = p.left();
        let need = p.tokens_left(limits);
        if tokens + need <= limits.tokens && seqs + rest.len() <= limits.sequences {
            plan.parts.push((i, p.done, p.inputs.len()));
            tokens += need;
            seqs += rest.len();
            continue;
        }
        if order == Order::ShortestFirst && !plan.parts.is_empty() {
            plan.held_back = true;
            break;
        }
        let mut end = p.done;
        for input in rest {
            if seqs == limits.sequences || (seqs > 0 && tokens + limits.cost(input) > limits.tokens)
            {
                break;
            }
            tokens += limits.cost(input);
            seqs += 1;
            end += 1;
        }
        if end > p.done {
            plan.parts.push((i, p.done, end));
        }
        break;
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(lengths: &[usize]) -> Pending {
        let (reply, _) = tokio::sync::oneshot::channel();
        Pending::new(EmbedJob {
            inputs: lengths.iter().map(|&n| vec![LlamaToken(1); n]).collect(),
            reply,
        })
    }

    const LIMITS: PassLimits = PassLimits {
        tokens: 512,
        sequences: 32,
    };

    #[test]
    fn a_short_job_gets_a_pass_of_its_own_then_the_oldest_goes_on() {
        // An ingestion batch of 64 chunks of 250 tokens, two already embedded,
        // and a Retrieve's 9-token query that arrived meanwhile.
        let mut ingest = job(&[250; 64]);
        ingest.done = 2;
        let pending = vec![ingest, job(&[9])];
        let first = plan_pass(&pending, Order::ShortestFirst, LIMITS);
        assert_eq!(
            first,
            Plan {
                parts: vec![(1, 0, 1)],
                held_back: true
            }
        );
        let next = plan_pass(&pending, Order::Arrival, LIMITS);
        assert_eq!(
            next,
            Plan {
                parts: vec![(0, 2, 4)],
                held_back: false
            }
        );
    }

    #[test]
    fn whole_jobs_share_a_pass_and_a_long_one_alone_fills_it() {
        let pending = vec![job(&[300, 300]), job(&[20, 20]), job(&[30])];
        // Shortest first: the 30- and 40-token jobs fit whole; the long one
        // would not, so it waits for the next pass.
        let plan = plan_pass(&pending, Order::ShortestFirst, LIMITS);
        assert_eq!(plan.parts, vec![(2, 0, 1), (1, 0, 2)]);
        assert!(plan.held_back);
        // Alone, the long job fills the pass as far as it goes.
        let plan = plan_pass(&pending[..1], Order::ShortestFirst, LIMITS);
        assert_eq!(plan.parts, vec![(0, 0, 1)]);
        assert!(!plan.held_back);
        // In arrival order a pass fills up across jobs.
        let plan = plan_pass(&pending, Order::Arrival, LIMITS);
        assert_eq!(plan.parts, vec![(0, 0, 1)]);
        let pending = vec![job(&[100, 100]), job(&[100, 100, 100, 100])];
        let plan = plan_pass(&pending, Order::Arrival, LIMITS);
        assert_eq!(plan.parts, vec![(0, 0, 2), (1, 0, 3)]);
    }

    #[test]
    fn a_pass_respects_the_sequence_limit_and_takes_an_overlong_input_alone() {
        let pending = vec![job(&[5; 40])];
        let plan = plan_pass(&pending, Order::ShortestFirst, LIMITS);
        assert_eq!(plan.parts, vec![(0, 0, 32)]);
        let pending = vec![job(&[2000, 3])];
        let plan = plan_pass(&pending, Order::Arrival, LIMITS);
        assert_eq!(plan.parts, vec![(0, 0, 1)]);
        let mut done = job(&[3]);
        done.done = 1;
        assert!(plan_pass(&[done], Order::Arrival, LIMITS).parts.is_empty());
    }

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
