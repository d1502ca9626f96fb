//! The output projection — final hidden state × the vocabulary matrix — on
//! basalt's own AVX-512 kernel instead of llama.cpp's.
//!
//! For a small model the projection is most of a decode step: Gemma 3 270M
//! multiplies every sampled position by a 262,144 × 640 Q8_0 matrix (178 MB),
//! and `perf` puts 44% of an 8-sequence decode in that one `mul_mat`, run by
//! ggml's 256-bit `tinyBLAS_Q0_AVX<q8_0>`. This kernel does the same integer
//! arithmetic in 512-bit lanes laid out so that no lane needs a horizontal
//! sum: lane `s` is sequence `s` against an even row, lane `8 + s` the same
//! sequence against the next row; each `vpdpbusd` multiplies 4 activation
//! bytes of every sequence by 4 broadcast weight bytes of both rows, so after
//! a block's 8 steps each lane holds that (sequence, row) block sum, which is
//! scaled and added in one fused multiply-add. It runs on llama.cpp's own
//! OpenMP team, whose workers are still spinning when the graph ends (threads
//! of our own would have fought them for the cores). Measured with
//! `examples/decode_speed` on 2 vCPUs: 8 sequences decode 1.56–1.62× as fast,
//! 4 sequences 1.07–1.16×, 2 sequences 1.14–1.17×; a lone sequence is a
//! matrix-vector product that ggml streams faster, so it keeps llama.cpp's
//! ([`MIN_SAMPLED`]).
//!
//! How llama.cpp is told to skip its own projection: the context's graph
//! evaluation callback ([`Tap`]) asks to see the `result_norm` node (the hidden
//! state after the final norm), copies it, and answers "stop", so the scheduler
//! never runs the `result_output` node that follows it. Only steps where every
//! token is sampled and the sequence ids rise along the batch are taken this
//! way, because then llama.cpp's output rows come in batch order (one token
//! per sequence, split into runs of consecutive ids); any other step runs the
//! whole graph and samples llama.cpp's logits. Before the first such step the
//! tap checks, on a normal step, that the graph ends `result_norm` →
//! `result_output = mul_mat(Q8_0 weights in host memory, result_norm)` and
//! nothing else, so a model with logit soft-capping, an output scale, a LoRA
//! adapter or a different weight type keeps llama.cpp's projection.
//!
//! Numerics follow ggml's: the hidden state is quantized to Q8_0 per block of
//! 32 (scale `max/127` stored as f16, values rounded half to even), and each
//! block's integer dot product is scaled by the product of the two f16
//! scales. Only the order of the float additions differs: logits agree with
//! llama.cpp's to about 1e-5, and `tests/real_model.rs` runs both on the same
//! hidden states and checks they pick the same tokens.

// FFI (llama.cpp's graph callback, ggml tensors) and SIMD intrinsics: every
// `unsafe` here has its SAFETY line, and none leaves this module.
#![expect(unsafe_code)]

use std::ffi::{c_void, CStr};
use std::ptr::NonNull;

use llama_cpp_2::context::params::LlamaContextParams;

use crate::q8::{parallel, quantize, Quantized, BLOCK_BYTES, QK};
use llama_cpp_sys_2 as sys;

/// Fewest sampled positions a step needs to take the kernel. One position is
/// a matrix-vector product, which ggml's `vec_dot` streams faster (single
/// stream: 27–29 tok/s against 31–32 with llama.cpp's); from two on the kernel
/// is faster (measured at 2, 3, 4 and 8 sequences with
/// `examples/decode_speed`).
pub(crate) const MIN_SAMPLED: usize = 2;

/// Sequences multiplied together per pass over the weights (16 lanes: 8
/// sequences × 2 rows).
const GROUP: usize = 8;

/// The vocabulary matrix, as llama.cpp holds it (Q8_0, rows of `n_embd`).
pub(crate) struct OutputKernel {
    weights: *const u8,
    rows: usize,
    n_embd: usize,
    threads: usize,
    /// Per row and block, −128 × the sum of the block's weights: the
    /// activations go in as unsigned bytes (value + 128), and this takes the
    /// offset back out of each block's integer sum.
    corrections: Vec<i32>,
}

// SAFETY: the weights are the model's read-only tensor data, alive as long as
// the model the scheduler borrows; the kernel only reads them.
unsafe impl Send for OutputKernel {}
unsafe impl Sync for OutputKernel {}

/// Up to 8 sequences laid out for the kernel's 16 lanes: lane `s` holds
/// sequence `s` against an even row, lane `8 + s` the same sequence against
/// the next row. `lanes[(block * 8 + step) * 16 + lane]` is the sequence's 4
/// activation bytes at `block * 32 + step * 4`; `scales[block * 16 + lane]`
/// its block scale. Missing sequences are zeros.
struct Group {
    lanes: Vec<i32>,
    scales: Vec<f32>,
}

fn group(q: &Quantized, first: usize) -> Group {
    let mut lanes = vec![i32::from_le_bytes([128; 4]); q.blocks * 8 * 16];
    let mut scales = vec![0.0f32; q.blocks * 16];
    for s in 0..(q.n - first).min(GROUP) {
        let seq = first + s;
        for b in 0..q.blocks {
            for step in 0..8 {
                let at = (seq * q.blocks + b) * QK + step * 4;
                // Offset by 128: `vpdpbusd` takes the activations unsigned.
                let v = i32::from_le_bytes(std::array::from_fn(|j| q.values[at + j] as u8 ^ 0x80));
                lanes[(b * 8 + step) * 16 + s] = v;
                lanes[(b * 8 + step) * 16 + 8 + s] = v;
            }
            scales[b * 16 + s] = q.scales[seq * q.blocks + b];
            scales[b * 16 + 8 + s] = q.scales[seq * q.blocks + b];
        }
    }
    Group { lanes, scales }
}

/// −128 × each block's weight sum, row after row (see `OutputKernel`).
fn corrections(weights: &[u8], blocks: usize) -> Vec<i32> {
    weights
        .chunks_exact(BLOCK_BYTES)
        .take(weights.len() / BLOCK_BYTES / blocks * blocks)
        .map(|b| -128 * b[2..].iter().map(|&x| i32::from(x as i8)).sum::<i32>())
        .collect()
}

impl OutputKernel {
    fn new(weights: *const u8, rows: usize, n_embd: usize, threads: usize) -> Self {
        let blocks = n_embd / QK;
        // SAFETY: `weights` is a rows × n_embd Q8_0 matrix (checked by the
        // caller against the tensor's shape and strides).
        let bytes = unsafe { std::slice::from_raw_parts(weights, rows * blocks * BLOCK_BYTES) };
        Self {
            weights,
            rows,
            n_embd,
            threads,
            corrections: corrections(bytes, blocks),
        }
    }

    /// Logits for each hidden state in `hidden` (`n × n_embd`, row after row)
    /// into `out` (`n × rows`).
    pub(crate) fn logits(&self, hidden: &[f32], out: &mut Vec<f32>) {
        let q = quantize(hidden, self.n_embd);
        // Every value is written below; only a change of size clears.
        out.resize(q.n * self.rows, 0.0);
        let groups: Vec<(usize, Group)> =
            (0..q.n).step_by(GROUP).map(|g| (g, group(&q, g))).collect();
        let threads = self.threads.clamp(1, 64);
        // Whole row pairs per thread.
        let per = self.rows.div_ceil(threads).next_multiple_of(2);
        let out_addr = out.as_mut_ptr() as usize;
        let run = |thread: usize| {
            let first = thread * per;
            let last = (first + per).min(self.rows);
            for (g, lanes) in &groups {
                let members = (q.n - g).min(GROUP);
                // SAFETY: CPU support was checked before the kernel was made;
                // threads write disjoint row ranges of `out`.
                unsafe {
                    rows_avx512(
                        self,
                        q.blocks,
                        lanes,
                        *g,
                        members,
                        first,
                        last,
                        out_addr as *mut f32,
                    );
                }
            }
        };
        parallel(threads, &run);
    }
}

/// Rows `first..last` against one group: two rows at a time, each lane
/// accumulating one (sequence, row) block sum in `vpdpbusd` over the block's
/// eight 4-byte steps (so no horizontal sums), then scaled into a float sum.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,f16c")]
#[expect(clippy::too_many_arguments)]
unsafe fn rows_avx512(
    k: &OutputKernel,
    blocks: usize,
    g: &Group,
    group: usize,
    members: usize,
    first: usize,
    last: usize,
    out: *mut f32,
) {
    use std::arch::x86_64::*;
    let row_bytes = blocks * BLOCK_BYTES;
    let mut r = first;
    while r < last {
        // An odd last row is paired with itself and stored once.
        let r1 = if r + 1 < last { r + 1 } else { r };
        let w0 = k.weights.add(r * row_bytes);
        let w1 = k.weights.add(r1 * row_bytes);
        let c0 = k.corrections.as_ptr().add(r * blocks);
        let c1 = k.corrections.as_ptr().add(r1 * blocks);
        let mut sum = _mm512_setzero_ps();
        for b in 0..blocks {
            let b0 = w0.add(b * BLOCK_BYTES);
            let b1 = w1.add(b * BLOCK_BYTES);
            let mut acc = _mm512_mask_set1_epi32(_mm512_set1_epi32(*c0.add(b)), 0xff00, *c1.add(b));
            let lanes = g.lanes.as_ptr().add(b * 8 * 16);
            for step in 0..8 {
                let x0 = b0.add(2 + step * 4).cast::<i32>().read_unaligned();
                let x1 = b1.add(2 + step * 4).cast::<i32>().read_unaligned();
                let w = _mm512_mask_set1_epi32(_mm512_set1_epi32(x0), 0xff00, x1);
                let a = _mm512_loadu_si512(lanes.add(step * 16).cast());
                acc = _mm512_dpbusd_epi32(acc, a, w);
            }
            let d = _mm256_mask_set1_epi16(
                _mm256_set1_epi16(b0.cast::<i16>().read_unaligned()),
                0xff00,
                b1.cast::<i16>().read_unaligned(),
            );
            let scale = _mm512_mul_ps(
                _mm512_cvtph_ps(d),
                _mm512_loadu_ps(g.scales.as_ptr().add(b * 16)),
            );
            sum = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), scale, sum);
        }
        let mut lanes = [0.0f32; 16];
        _mm512_storeu_ps(lanes.as_mut_ptr(), sum);
        for (s, v) in lanes.iter().enumerate().take(members) {
            *out.add((group + s) * k.rows + r) = *v;
            if r1 != r {
                *out.add((group + s) * k.rows + r1) = lanes[8 + s];
            }
        }
        r += 2;
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[expect(clippy::too_many_arguments)]
unsafe fn rows_avx512(
    _: &OutputKernel,
    _: usize,
    _: &Group,
    _: usize,
    _: usize,
    _: usize,
    _: usize,
    _: *mut f32,
) {
    unreachable!("the kernel is only made on x86-64 with AVX-512")
}

/// What the graph callback does on the next decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TapMode {
    /// Nothing: llama.cpp computes its logits.
    Off,
    /// Look at the graph's tail (and let it run) to find the vocabulary matrix.
    Discover,
    /// Copy the hidden states and stop before llama.cpp's projection.
    Capture,
}

/// State shared with llama.cpp's graph evaluation callback; lives as long as
/// the context it is registered with, and is only touched on the thread that
/// calls `llama_decode`.
pub(crate) struct Tap {
    pub(crate) mode: TapMode,
    n_embd: usize,
    n_vocab: usize,
    threads: usize,
    /// Captured hidden states, `rows × n_embd`.
    pub(crate) hidden: Vec<f32>,
    /// A capture found something it did not expect and let llama.cpp finish
    /// the graph: this step's logits are llama.cpp's.
    pub(crate) fell_back: bool,
    /// Let llama.cpp's projection run after each capture, to compare.
    pub(crate) verify: bool,
    // Discovery.
    norm: *const sys::ggml_tensor,
    norms: usize,
    after_norm: usize,
    outputs: usize,
    weights: Option<*const u8>,
    rejected: Option<String>,
}

impl Tap {
    pub(crate) fn new(n_embd: usize, n_vocab: usize, threads: usize, verify: bool) -> Self {
        Self {
            mode: TapMode::Off,
            n_embd,
            n_vocab,
            threads,
            hidden: Vec::new(),
            fell_back: false,
            verify,
            norm: std::ptr::null(),
            norms: 0,
            after_norm: 0,
            outputs: 0,
            weights: None,
            rejected: None,
        }
    }

    /// Prepares for the next decode.
    pub(crate) fn begin(&mut self, mode: TapMode) {
        self.mode = mode;
        self.hidden.clear();
        self.fell_back = false;
        self.norm = std::ptr::null();
        self.norms = 0;
        self.after_norm = 0;
        self.outputs = 0;
    }

    /// After a decode in [`TapMode::Discover`]: the kernel, or why not.
    pub(crate) fn discovered(&mut self) -> Result<OutputKernel, String> {
        if let Some(reason) = self.rejected.take() {
            return Err(reason);
        }
        if self.norms == 0 || self.outputs != self.norms || self.after_norm != self.norms {
            return Err(format!(
                "the graph does not end in result_norm → result_output ({} norms, {} outputs, {} nodes after the norm)",
                self.norms, self.outputs, self.after_norm
            ));
        }
        let weights = self.weights.ok_or("no output weights seen")?;
        Ok(OutputKernel::new(
            weights,
            self.n_vocab,
            self.n_embd,
            self.threads,
        ))
    }

    fn reject(&mut self, reason: String) {
        self.rejected.get_or_insert(reason);
    }

    /// The callback's body; `ask` is true when the scheduler asks whether we
    /// want to see `t`, false when `t` has been computed. Returning false to
    /// a computed node stops the graph.
    fn on_node(&mut self, t: &sys::ggml_tensor, ask: bool) -> bool {
        // SAFETY: ggml names are NUL-terminated within their 64 bytes.
        let name = unsafe { CStr::from_ptr(t.name.as_ptr()) }.to_bytes();
        match (self.mode, ask) {
            (TapMode::Off, _) => false,
            (TapMode::Capture, true) => name == b"result_norm",
            (TapMode::Capture, false) => {
                if let Some(rows) = self.host_rows(t) {
                    self.hidden.extend_from_slice(rows);
                    // Verifying: let llama.cpp compute its logits too.
                    self.verify
                } else {
                    self.fell_back = true;
                    true
                }
            }
            (TapMode::Discover, true) => {
                if name == b"result_norm" {
                    self.norms += 1;
                    self.norm = t;
                    false
                } else if !self.norm.is_null() {
                    self.after_norm += 1;
                    name == b"result_output"
                } else {
                    false
                }
            }
            (TapMode::Discover, false) => {
                self.outputs += 1;
                self.check_output(t);
                true
            }
        }
    }

    /// The computed hidden state's values, if they are what the kernel takes.
    fn host_rows<'t>(&self, t: &'t sys::ggml_tensor) -> Option<&'t [f32]> {
        let n = usize::try_from(t.ne[1]).ok()?;
        let ok = t.type_ == sys::GGML_TYPE_F32
            && t.ne[0] as usize == self.n_embd
            && t.ne[2] == 1
            && t.ne[3] == 1
            && t.nb[0] == 4
            && t.nb[1] == 4 * self.n_embd
            && !t.data.is_null()
            // SAFETY: the tensor's buffer pointer is valid during the callback.
            && !t.buffer.is_null()
            && unsafe { sys::ggml_backend_buffer_is_host(t.buffer) };
        // SAFETY: checked above: host memory, contiguous f32, n rows.
        ok.then(|| unsafe { std::slice::from_raw_parts(t.data.cast::<f32>(), n * self.n_embd) })
    }

    fn check_output(&mut self, t: &sys::ggml_tensor) {
        let w = t.src[0];
        if t.op != sys::GGML_OP_MUL_MAT || w.is_null() || t.src[1].cast_const() != self.norm {
            return self.reject("result_output is not mul_mat(weights, result_norm)".into());
        }
        // SAFETY: a graph node's sources are valid tensors during the callback.
        let w = unsafe { &*w };
        let row_bytes = self.n_embd / QK * BLOCK_BYTES;
        if w.type_ != sys::GGML_TYPE_Q8_0 {
            return self.reject(format!(
                "the output weights are ggml type {}, not Q8_0",
                w.type_
            ));
        }
        let shape_ok = w.ne[0] as usize == self.n_embd
            && w.ne[1] as usize == self.n_vocab
            && w.ne[2] == 1
            && w.nb[1] == row_bytes
            && self.n_embd.is_multiple_of(QK);
        // SAFETY: as above.
        let host = !w.buffer.is_null()
            && unsafe { sys::ggml_backend_buffer_is_host(w.buffer) }
            && w.extra.is_null()
            && !w.data.is_null();
        if !shape_ok || !host {
            return self.reject(format!(
                "the output weights are not a plain {} × {} matrix in host memory",
                self.n_vocab, self.n_embd
            ));
        }
        let data = w.data.cast::<u8>().cast_const();
        if self.weights.is_some_and(|p| p != data) {
            return self.reject("the output weights moved between graphs".into());
        }
        self.weights = Some(data);
    }
}

/// Owns a [`Tap`] at a fixed address for llama.cpp to call back into; drop it
/// only after the context it is registered with.
pub(crate) struct TapHandle(NonNull<Tap>);

impl TapHandle {
    pub(crate) fn new(tap: Tap) -> Self {
        Self(NonNull::from(Box::leak(Box::new(tap))))
    }

    pub(crate) fn get(&mut self) -> &mut Tap {
        // SAFETY: the callback only touches the tap inside `llama_decode`,
        // while no reference made here is alive (the scheduler calls
        // neither from the other).
        unsafe { self.0.as_mut() }
    }
}

impl Drop for TapHandle {
    fn drop(&mut self) {
        // SAFETY: made by Box::leak in `new`, dropped once.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

/// `params` with [`eval_callback`] and `tap` registered. llama-cpp-2 keeps the
/// raw `llama_context_params` in a private field of its one-field wrapper, so
/// the wrapper is reinterpreted (same size, checked at compile time) and the
/// round trip is checked against the wrapper's own getters; `None` if they
/// disagree, and the caller then runs without the callback.
pub(crate) fn with_eval_callback(
    params: LlamaContextParams,
    tap: &TapHandle,
) -> Option<LlamaContextParams> {
    const _: () = assert!(
        std::mem::size_of::<LlamaContextParams>()
            == std::mem::size_of::<sys::llama_context_params>()
    );
    let (n_batch, n_ubatch, threads) = (params.n_batch(), params.n_ubatch(), params.n_threads());
    // SAFETY: same size; the wrapper's only field is this struct.
    let mut raw: sys::llama_context_params = unsafe { std::mem::transmute(params) };
    if raw.n_batch != n_batch || raw.n_ubatch != n_ubatch || raw.n_threads != threads {
        return None;
    }
    raw.cb_eval = Some(eval_callback);
    raw.cb_eval_user_data = tap.0.as_ptr().cast();
    // SAFETY: as above.
    let with: LlamaContextParams = unsafe { std::mem::transmute(raw) };
    (with.n_batch() == n_batch && with.n_threads() == threads).then_some(with)
}

/// The `cb_eval` registered with the context; `data` is the scheduler's [`Tap`].
unsafe extern "C" fn eval_callback(t: *mut sys::ggml_tensor, ask: bool, data: *mut c_void) -> bool {
    if t.is_null() || data.is_null() {
        return false;
    }
    // SAFETY: `data` is the Tap registered with this context, used only on
    // the decoding thread; `t` is a node of the graph being computed.
    let (tap, t) = unsafe { (&mut *data.cast::<Tap>(), &*t) };
    tap.on_node(t, ask)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::half::{f16_to_f32, f32_to_f16};
    use crate::q8::cpu_supported;

    /// A random Q8_0 matrix, and the exact logits of ggml's arithmetic
    /// (integer block sums scaled by both f16 scales) in f64.
    fn matrix(rows: usize, n_embd: usize, seed: &mut u64) -> Vec<u8> {
        let mut next = move || {
            *seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (*seed >> 33) as u32
        };
        let mut w = Vec::new();
        for _ in 0..rows * n_embd / QK {
            w.extend(f32_to_f16(0.001 + (next() % 1000) as f32 * 1e-5).to_le_bytes());
            w.extend((0..QK).map(|_| (next() % 255) as u8 ^ 0x80));
        }
        w
    }

    fn reference(w: &[u8], rows: usize, n_embd: usize, hidden: &[f32]) -> Vec<f64> {
        let q = quantize(hidden, n_embd);
        let blocks = n_embd / QK;
        let mut out = Vec::new();
        for s in 0..q.n {
            for r in 0..rows {
                let mut sum = 0f64;
                for b in 0..blocks {
                    let blk = &w[(r * blocks + b) * BLOCK_BYTES..];
                    let dw = f16_to_f32(u16::from_le_bytes([blk[0], blk[1]]));
                    let at = (s * blocks + b) * QK;
                    let dot: i32 = (0..QK)
                        .map(|i| i32::from(blk[2 + i] as i8) * i32::from(q.values[at + i]))
                        .sum();
                    sum += f64::from(dw) * f64::from(q.scales[s * blocks + b]) * f64::from(dot);
                }
                out.push(sum);
            }
        }
        out
    }

    #[test]
    fn the_kernel_computes_ggmls_q8_0_arithmetic_for_any_number_of_sequences() {
        if !cpu_supported() {
            return;
        }
        let (rows, n_embd) = (203, 128);
        let mut seed = 7;
        let w = matrix(rows, n_embd, &mut seed);
        for n in [1, 3, 8, 11] {
            let hidden: Vec<f32> = (0..n * n_embd)
                .map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 100.0)
                .collect();
            for threads in [1, 2, 3] {
                let k = OutputKernel::new(w.as_ptr(), rows, n_embd, threads);
                let mut out = Vec::new();
                k.logits(&hidden, &mut out);
                let want = reference(&w, rows, n_embd, &hidden);
                assert_eq!(out.len(), want.len());
                for (i, (got, want)) in out.iter().zip(&want).enumerate() {
                    let err = (f64::from(*got) - want).abs();
                    assert!(
                        err <= 1e-5 * (1.0 + want.abs()),
                        "n {n}, threads {threads}, logit {i}: {got} against {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn half_precision_round_trips() {
        for x in [0.0f32, 1.0, -2.5, 0.000_123, 65504.0] {
            let h = f32_to_f16(x);
            assert!((f16_to_f32(h) - x).abs() <= x.abs() * 1e-3, "{x}");
        }
    }
}
