//! The scheduler thread: owns the llama.cpp context, admits queued jobs into
//! sequence slots (reusing the longest cached KV prefix, copied from any slot),
//! and runs one decode step at a time over every active sequence together —
//! prompt chunks and next tokens in the same batch — so new requests join
//! between steps (continuous batching).

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender, TryRecvError};

use basalt_types::{Error, StopReason, StreamEvent, Usage};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::DecodeError;

use crate::output_head::{self, OutputKernel, Tap, TapHandle, TapMode};
use crate::sampler::Sampler;
use crate::stop::StopMatcher;
use crate::{non_zero, EngineConfig, EngineError, EngineStats, Job};

/// A shared prefix shorter than this is not worth copying from another slot
/// (the copy moves the whole KV stream: about 72 MiB at 4,096 cells for the
/// default model).
const MIN_SHARED_PREFIX: usize = 32;

struct Active {
    job: Job,
    /// Prompt tokens already in the KV cache.
    evaluated: usize,
    /// Prompt tokens that came from the prefix cache.
    reused: usize,
    generated: u32,
    /// Sampled but not yet decoded.
    next_token: Option<LlamaToken>,
    sampler: Sampler,
    stop: StopMatcher,
    utf8: Vec<u8>,
    started: bool,
    /// Waiting for another active slot to finish evaluating a prompt prefix
    /// this job shares (slot index, prefix length), to copy it instead of
    /// computing it again.
    follow: Option<(usize, usize)>,
}

struct Slot {
    seq: i32,
    /// Tokens whose KV entries this sequence holds, at positions 0..len.
    cached: Vec<LlamaToken>,
    last_used: u64,
    active: Option<Active>,
}

struct Scheduler<'a> {
    model: &'a LlamaModel,
    ctx: LlamaContext<'a>,
    config: &'a EngineConfig,
    stats: &'a EngineStats,
    slots: Vec<Slot>,
    batch: LlamaBatch<'static>,
    tick: u64,
    /// The graph callback's state (see `output_head`), registered with `ctx`
    /// when the output kernel may be used; declared after `ctx`, so dropped
    /// after it.
    tap: Option<TapHandle>,
    /// Whether the next step that samples every token should look for the
    /// vocabulary matrix.
    discovering: bool,
    kernel: Option<OutputKernel>,
    /// The kernel's logits for the last step, one row per sampled position.
    logits: Vec<f32>,
}

pub(crate) fn run(
    backend: &LlamaBackend,
    model: &LlamaModel,
    config: &EngineConfig,
    stats: &EngineStats,
    jobs: &Receiver<Job>,
    ready: &Sender<Result<(), EngineError>>,
) {
    let threads = i32::try_from(config.threads.max(1)).unwrap_or(1);
    let params = LlamaContextParams::default()
        .with_n_ctx(non_zero(
            config.context_window.saturating_mul(config.parallel.max(1)),
        ))
        .with_n_batch(config.batch_tokens)
        .with_n_ubatch(config.batch_tokens)
        .with_n_seq_max(config.parallel.max(1))
        .with_n_threads(threads)
        .with_n_threads_batch(threads)
        .with_kv_unified(false)
        .with_swa_full(true);
    let mut tap = None;
    let params = if config.output_kernel && crate::q8::cpu_supported() {
        let handle = TapHandle::new(Tap::new(
            model.n_embd() as usize,
            model.n_vocab() as usize,
            threads as usize,
            config.verify_output_kernel,
        ));
        if let Some(with) = output_head::with_eval_callback(params.clone(), &handle) {
            tap = Some(handle);
            with
        } else {
            tracing::warn!("llama.cpp's context parameters could not take a graph callback; using its output projection");
            params
        }
    } else {
        params
    };
    let ctx = match model.new_context(backend, params) {
        Ok(ctx) => ctx,
        Err(e) => {
            let _ = ready.send(Err(EngineError::Backend(format!("context: {e}"))));
            return;
        }
    };
    let slots = (0..config.parallel.max(1))
        .map(|i| Slot {
            seq: i as i32,
            cached: Vec::new(),
            last_used: 0,
            active: None,
        })
        .collect();
    let mut scheduler = Scheduler {
        model,
        ctx,
        config,
        stats,
        slots,
        batch: LlamaBatch::new(config.batch_tokens.max(1) as usize, 1),
        tick: 0,
        discovering: tap.is_some(),
        tap,
        kernel: None,
        logits: Vec::new(),
    };
    let _ = ready.send(Ok(()));
    scheduler.run(jobs);
}

fn common_prefix(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Splits off the longest valid UTF-8 prefix of `bytes`, keeping an incomplete
/// trailing character for the next token.
fn take_utf8(bytes: &mut Vec<u8>) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => {
            let s = s.to_string();
            bytes.clear();
            s
        }
        Err(e) if e.error_len().is_none() => {
            let valid = e.valid_up_to();
            let s = String::from_utf8_lossy(&bytes[..valid]).into_owned();
            bytes.drain(..valid);
            s
        }
        Err(_) => {
            let s = String::from_utf8_lossy(bytes).into_owned();
            bytes.clear();
            s
        }
    }
}

impl Scheduler<'_> {
    fn run(&mut self, jobs: &Receiver<Job>) {
        let mut deferred: Option<Job> = None;
        loop {
            // Intake: block only when there is nothing else to do.
            if deferred.is_none() && !self.any_active() {
                match jobs.recv() {
                    Ok(job) => deferred = Some(job),
                    Err(_) => return,
                }
            }
            loop {
                let job = match deferred.take() {
                    Some(job) => job,
                    None if self.has_free_slot() => match jobs.try_recv() {
                        Ok(job) => job,
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => {
                            if self.any_active() {
                                break;
                            }
                            return;
                        }
                    },
                    None => break,
                };
                if job.events.is_closed() {
                    self.stats.queue_depth.fetch_sub(1, Ordering::Relaxed);
                    continue;
                }
                if let Err(job) = self.admit(job) {
                    deferred = Some(job);
                    break;
                }
                self.stats.queue_depth.fetch_sub(1, Ordering::Relaxed);
            }
            self.drop_cancelled();
            if self.any_active() {
                self.step();
            }
        }
    }

    fn any_active(&self) -> bool {
        self.slots.iter().any(|s| s.active.is_some())
    }

    fn has_free_slot(&self) -> bool {
        self.slots.iter().any(|s| s.active.is_none())
    }

    fn clear_seq(&mut self, i: usize) {
        let seq = self.slots[i].seq as u32;
        let _ = self.ctx.clear_kv_cache_seq(Some(seq), None, None);
        self.slots[i].cached.clear();
    }

    /// Gives slot `target` the first `n` cached tokens of slot `donor`. Each slot
    /// has its own KV stream, so llama.cpp copies the whole stream (cell
    /// metadata now, data before the next decode) and the copy is then trimmed
    /// to the prefix. Returns how many tokens the target now holds.
    fn copy_prefix(&mut self, donor: usize, target: usize, n: usize) -> usize {
        self.clear_seq(target);
        let (src, dst) = (self.slots[donor].seq, self.slots[target].seq);
        let copied = self.ctx.copy_kv_cache_seq(src, dst, None, None).is_ok()
            && self
                .ctx
                .clear_kv_cache_seq(Some(dst as u32), Some(n as u32), None)
                .unwrap_or(false);
        if !copied {
            self.clear_seq(target);
            return 0;
        }
        let prefix = self.slots[donor].cached[..n].to_vec();
        self.slots[target].cached = prefix;
        n
    }

    /// Places a job in a free slot, reusing the longest cached prefix of any
    /// slot. Gives the job back when no slot is free.
    fn admit(&mut self, job: Job) -> Result<(), Job> {
        let prompt_len = job.prompt.len();
        let Some(target) = (0..self.slots.len())
            .filter(|&i| self.slots[i].active.is_none())
            .max_by_key(|&i| {
                (
                    common_prefix(&self.slots[i].cached, &job.prompt),
                    std::cmp::Reverse(self.slots[i].last_used),
                )
            })
        else {
            return Err(job);
        };
        let own = common_prefix(&self.slots[target].cached, &job.prompt);
        let (donor, shared) = (0..self.slots.len())
            .map(|i| (i, common_prefix(&self.slots[i].cached, &job.prompt)))
            .max_by_key(|&(_, n)| n)
            .unwrap_or((target, own));
        let mut keep = own;
        if donor != target && shared > own && shared >= MIN_SHARED_PREFIX {
            keep = self.copy_prefix(donor, target, shared);
        }
        // The last prompt token is always evaluated: its logits start generation.
        keep = keep.min(prompt_len.saturating_sub(1));
        if self.slots[target].cached.len() > keep {
            let seq = self.slots[target].seq as u32;
            let trimmed = self
                .ctx
                .clear_kv_cache_seq(Some(seq), Some(keep as u32), None)
                .unwrap_or(false);
            if trimmed {
                self.slots[target].cached.truncate(keep);
            } else {
                self.clear_seq(target);
                keep = 0;
            }
        }
        // A prefix another request is still evaluating (e.g. the same system
        // prompt arriving at once): wait for it rather than compute it twice.
        let follow = (0..self.slots.len())
            .filter(|&i| i != target)
            .filter_map(|i| {
                let a = self.slots[i].active.as_ref()?;
                let n = common_prefix(&a.job.prompt, &job.prompt).min(prompt_len.saturating_sub(1));
                (n > self.slots[i].cached.len()).then_some((i, n))
            })
            .max_by_key(|&(_, n)| n)
            .filter(|&(_, n)| n >= keep + MIN_SHARED_PREFIX);
        self.count_reuse(0, keep);
        let sampler = Sampler::new(job.sampling.clone(), self.config.default_top_k);
        let stop = StopMatcher::new(job.stop_sequences.clone());
        self.tick += 1;
        let slot = &mut self.slots[target];
        slot.last_used = self.tick;
        slot.active = Some(Active {
            job,
            evaluated: keep,
            reused: keep,
            generated: 0,
            next_token: None,
            sampler,
            stop,
            utf8: Vec::new(),
            started: false,
            follow,
        });
        self.stats.active_sequences.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Frees the slots of jobs whose client went away. Their KV entries stay
    /// valid and remain available for prefix reuse.
    fn drop_cancelled(&mut self) {
        for slot in &mut self.slots {
            if slot
                .active
                .as_ref()
                .is_some_and(|a| a.job.events.is_closed())
            {
                slot.active = None;
                self.stats.active_sequences.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    fn fail(&mut self, i: usize, error: Error) {
        if let Some(active) = self.slots[i].active.take() {
            let _ = active.job.events.try_send(Err(error));
            self.stats.active_sequences.fetch_sub(1, Ordering::Relaxed);
        }
        self.clear_seq(i);
    }

    /// Counts a request's prompt tokens served from cache growing from `had`
    /// to `now`: a hit the first time any are, and the tokens gained.
    fn count_reuse(&self, had: usize, now: usize) {
        if had == 0 && now > 0 {
            self.stats.prefix_cache_hits.fetch_add(1, Ordering::Relaxed);
        }
        self.stats
            .prefix_cache_hit_tokens
            .fetch_add(now.saturating_sub(had) as u64, Ordering::Relaxed);
    }

    /// Copies shared prefixes into slots that were waiting for them, once the
    /// donor has evaluated them (or has stopped, in which case whatever it did
    /// evaluate is copied and the rest is computed here).
    fn resolve_followers(&mut self) {
        for i in 0..self.slots.len() {
            let Some((donor, n)) = self.slots[i].active.as_ref().and_then(|a| a.follow) else {
                continue;
            };
            let donor_slot = &self.slots[donor];
            if donor_slot.active.is_some() && donor_slot.cached.len() < n {
                continue;
            }
            let Some(active) = self.slots[i].active.as_ref() else {
                continue;
            };
            let avail = common_prefix(&donor_slot.cached, &active.job.prompt).min(n);
            let had = active.evaluated;
            if avail > had {
                let reused = self.copy_prefix(donor, i, avail);
                self.count_reuse(had, reused);
            }
            let slot = &mut self.slots[i];
            if let Some(active) = slot.active.as_mut() {
                active.follow = None;
                active.evaluated = slot.cached.len();
                active.reused = active.evaluated;
            }
        }
    }

    /// One decode step over every active sequence.
    fn step(&mut self) {
        self.resolve_followers();
        self.batch.clear();
        let budget = self.config.batch_tokens.max(1) as usize;
        // (slot, batch index) of every position whose logits we sample.
        let mut sample_at: Vec<(usize, i32)> = Vec::new();
        let mut in_batch: Vec<usize> = Vec::new();
        for i in 0..self.slots.len() {
            let slot = &mut self.slots[i];
            let Some(active) = slot.active.as_mut() else {
                continue;
            };
            if let Some(token) = active.next_token.take() {
                let pos = slot.cached.len() as i32;
                if self.batch.add(token, pos, &[slot.seq], true).is_err() {
                    active.next_token = Some(token);
                    continue;
                }
                slot.cached.push(token);
                sample_at.push((i, self.batch.n_tokens() - 1));
                in_batch.push(i);
            }
        }
        for i in 0..self.slots.len() {
            let room = budget.saturating_sub(self.batch.n_tokens() as usize);
            if room == 0 {
                break;
            }
            let slot = &mut self.slots[i];
            let Some(active) = slot.active.as_mut() else {
                continue;
            };
            let prompt_len = active.job.prompt.len();
            if active.evaluated >= prompt_len || active.follow.is_some() {
                continue;
            }
            let mut take = room.min(prompt_len - active.evaluated);
            // The last prompt token gets a step of its own, exactly as when the
            // rest of the prompt comes from the prefix cache: a repeated request
            // then computes the same logits whether cached or not, so greedy
            // decoding gives the same answer (batch shape changes the kernels'
            // rounding).
            if active.evaluated + take == prompt_len && take > 1 {
                take -= 1;
            }
            let mut added = 0;
            for j in active.evaluated..active.evaluated + take {
                let last = j + 1 == prompt_len;
                let token = active.job.prompt[j];
                if self
                    .batch
                    .add(token, slot.cached.len() as i32, &[slot.seq], last)
                    .is_err()
                {
                    break;
                }
                slot.cached.push(token);
                added += 1;
                if last {
                    sample_at.push((i, self.batch.n_tokens() - 1));
                }
            }
            active.evaluated += added;
            self.stats
                .prompt_tokens_evaluated
                .fetch_add(added as u64, Ordering::Relaxed);
            in_batch.push(i);
        }
        if self.batch.n_tokens() == 0 {
            return;
        }
        // The output kernel takes steps that sample every token, in rising
        // sequence order (see `output_head` for why).
        let every_token_sampled = sample_at.len() == self.batch.n_tokens() as usize
            && sample_at.windows(2).all(|w| w[0].0 < w[1].0);
        let mode = match (&self.kernel, self.discovering) {
            (Some(_), _) if every_token_sampled && sample_at.len() >= output_head::MIN_SAMPLED => {
                TapMode::Capture
            }
            (None, true) if every_token_sampled => TapMode::Discover,
            _ => TapMode::Off,
        };
        if let Some(tap) = self.tap_mut() {
            tap.begin(mode);
        }
        let result = self.ctx.decode(&mut self.batch);
        if let Err(e) = result {
            let error = match e {
                DecodeError::NoKvCacheSlot => Error::internal(
                    "the sequence's KV cache is full (prompt + maxTokens should have been bounded by the context window)",
                ),
                other => Error::internal(format!("decoding failed: {other}")),
            };
            for i in in_batch {
                self.fail(i, error.clone());
            }
            return;
        }
        self.stats.decode_steps.fetch_add(1, Ordering::Relaxed);
        let own_logits = match self.after_decode(mode, sample_at.len()) {
            Ok(own) => own,
            Err(error) => {
                for i in in_batch {
                    self.fail(i, error.clone());
                }
                return;
            }
        };
        let kernel_logits = std::mem::take(&mut self.logits);
        let n_vocab = self.model.n_vocab() as usize;
        for (k, (i, idx)) in sample_at.into_iter().enumerate() {
            let logits = if own_logits {
                &kernel_logits[k * n_vocab..(k + 1) * n_vocab]
            } else {
                self.ctx.get_logits_ith(idx)
            };
            let Some(active) = self.slots[i].active.as_mut() else {
                continue;
            };
            if let Some(score) = active.job.score.take() {
                let _ = score
                    .reply
                    .send(crate::candidate_logprobs(logits, &score.candidates));
                self.finish(i, StopReason::EndTurn, None);
                continue;
            }
            let token = LlamaToken(active.sampler.sample(logits) as i32);
            if !active.started {
                active.started = true;
                let start = StreamEvent::Start {
                    input_tokens: active.job.prompt.len() as u32,
                    cached_tokens: active.reused as u32,
                };
                if active.job.events.try_send(Ok(start)).is_err() {
                    continue;
                }
            }
            self.on_token(i, token);
        }
        self.logits = kernel_logits;
    }

    /// With `verify_output_kernel`: counts the sampled positions where the
    /// kernel's and llama.cpp's logits pick different greedy tokens.
    fn compare_with_llama(&self, sampled: usize) {
        let n_vocab = self.model.n_vocab() as usize;
        for k in 0..sampled {
            let ours = crate::sampler::argmax(&self.logits[k * n_vocab..(k + 1) * n_vocab]);
            // In a step that samples every token, output k is batch index k.
            let theirs = crate::sampler::argmax(self.ctx.get_logits_ith(k as i32));
            if ours != theirs {
                self.stats
                    .output_kernel_disagreements
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn tap_mut(&mut self) -> Option<&mut Tap> {
        self.tap.as_mut().map(TapHandle::get)
    }

    /// After a successful decode: finish discovery, or run the output kernel
    /// on the captured hidden states. `Ok(true)` when this step's logits are
    /// the kernel's (in `self.logits`), `Ok(false)` when they are llama.cpp's.
    fn after_decode(&mut self, mode: TapMode, sampled: usize) -> Result<bool, Error> {
        let n_embd = self.model.n_embd() as usize;
        let Some(tap) = self.tap_mut() else {
            return Ok(false);
        };
        match mode {
            TapMode::Off => Ok(false),
            TapMode::Discover => {
                let found = tap.discovered();
                self.discovering = false;
                match found {
                    Ok(kernel) => {
                        tracing::info!("output projection: basalt's AVX-512 Q8_0 kernel");
                        self.kernel = Some(kernel);
                    }
                    Err(reason) => tracing::info!("output projection: llama.cpp's ({reason})"),
                }
                Ok(false)
            }
            TapMode::Capture => {
                let hidden = std::mem::take(&mut tap.hidden);
                let fell_back = tap.fell_back;
                let verify = tap.verify;
                if fell_back && hidden.is_empty() {
                    // llama.cpp ran its own projection: its logits stand.
                    tracing::warn!(
                        "output projection: the hidden state was not as expected; back to llama.cpp's"
                    );
                    self.kernel = None;
                    return Ok(false);
                }
                if fell_back || hidden.len() != sampled * n_embd {
                    tracing::error!(
                        "output projection: captured {} values for {sampled} positions; back to llama.cpp's",
                        hidden.len()
                    );
                    self.kernel = None;
                    return Err(Error::internal(
                        "the output projection lost this step's hidden states; retry the request",
                    ));
                }
                if let Some(kernel) = &self.kernel {
                    kernel.logits(&hidden, &mut self.logits);
                }
                self.stats
                    .output_kernel_steps
                    .fetch_add(1, Ordering::Relaxed);
                if verify {
                    self.compare_with_llama(sampled);
                }
                if let Some(tap) = self.tap_mut() {
                    tap.hidden = hidden;
                }
                Ok(true)
            }
        }
    }

    fn on_token(&mut self, i: usize, token: LlamaToken) {
        self.stats.tokens_generated.fetch_add(1, Ordering::Relaxed);
        let model: &LlamaModel = self.model;
        let vocab = model.vocab();
        let Some(active) = self.slots[i].active.as_mut() else {
            return;
        };
        active.generated += 1;
        if vocab.is_eog(token) {
            self.finish(i, StopReason::EndTurn, None);
            return;
        }
        active.utf8.extend(vocab.token_to_piece(token, false, None));
        let text = take_utf8(&mut active.utf8);
        if !text.is_empty() {
            let released = active.stop.push(&text);
            if !released.text.is_empty()
                && active
                    .job
                    .events
                    .try_send(Ok(StreamEvent::TextDelta(released.text)))
                    .is_err()
            {
                return; // the client is gone; the next sweep frees the slot
            }
            if let Some(stop) = released.stopped {
                self.finish(i, StopReason::StopSequence, Some(stop));
                return;
            }
        }
        if active.generated >= active.job.max_tokens {
            self.finish(i, StopReason::MaxTokens, None);
        } else {
            active.next_token = Some(token);
        }
    }

    fn finish(&mut self, i: usize, reason: StopReason, stop_sequence: Option<String>) {
        let slot = &mut self.slots[i];
        let Some(mut active) = slot.active.take() else {
            return;
        };
        self.stats.active_sequences.fetch_sub(1, Ordering::Relaxed);
        self.tick += 1;
        slot.last_used = self.tick;
        if stop_sequence.is_none() {
            let mut rest = active.stop.flush();
            rest.push_str(&String::from_utf8_lossy(&active.utf8));
            if !rest.is_empty() {
                let _ = active.job.events.try_send(Ok(StreamEvent::TextDelta(rest)));
            }
        }
        let usage = Usage {
            input_tokens: active.job.prompt.len() as u32,
            output_tokens: active.generated,
            cache_read_input_tokens: active.reused as u32,
        };
        let _ = active.job.events.try_send(Ok(StreamEvent::Stop {
            reason,
            stop_sequence,
            usage,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_is_split_only_at_character_boundaries() {
        let mut bytes = "aé".as_bytes().to_vec();
        bytes.push(0xE2); // first byte of a 3-byte character
        assert_eq!(take_utf8(&mut bytes), "aé");
        assert_eq!(bytes, vec![0xE2]);
        bytes.extend([0x82, 0xAC]);
        assert_eq!(take_utf8(&mut bytes), "€");
        assert!(bytes.is_empty());
    }

    #[test]
    fn common_prefix_counts_equal_leading_tokens() {
        let a = [LlamaToken(1), LlamaToken(2), LlamaToken(3)];
        let b = [LlamaToken(1), LlamaToken(2), LlamaToken(4)];
        assert_eq!(common_prefix(&a, &b), 2);
        assert_eq!(common_prefix(&a, &[]), 0);
    }
}
