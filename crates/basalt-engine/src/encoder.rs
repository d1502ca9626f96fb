//! basalt's own forward pass of a BERT embedding model (all-MiniLM-L6-v2 and
//! its family) on AVX-512 VNNI, for inputs of up to 256 tokens.
//!
//! A Retrieve embeds one short query, 5–30 tokens. llama.cpp runs that as a
//! graph of ~150 nodes whose weight products go to ggml's 256-bit
//! `tinyBLAS_Q0_AVX<q8_0>`, which handles so few columns at a fraction of the
//! CPU's rate (68% of a lone query's time, `perf`). This encoder reads the
//! same Q8_0 weights from the GGUF file once, interleaves each matrix 16 rows
//! at a time (lane `l` of a 64-byte vector holds 4 consecutive weights of row
//! `16g + l`, plus 128), and multiplies with `vpdpbusd`: one load of weights
//! serves up to 12 tokens, each token's 4 activation bytes broadcast from
//! memory inside the instruction, and each lane ends a block holding one
//! (token, row) block sum — no horizontal sums, no lanes wasted on tokens
//! that are not there. Activations are quantized exactly as ggml quantizes
//! them for a Q8_0 product (`q8::quantize`), so each product is ggml's
//! integer arithmetic. Everything else (layer norms, attention, GELU, mean
//! pooling) is f32. GELU is the exact (erf) form the model was trained with;
//! llama.cpp looks the tanh approximation up in a table of f16 values, and
//! its attention keeps keys and values in f16, so embeddings from the two
//! agree to about 1e-4 cosine distance, not bit for bit
//! (`tests/embed_model.rs` compares both with a numpy reference).
//!
//! Anything this encoder does not know — another architecture, weights that
//! are not Q8_0, sizes not a multiple of 32 — is reported by [`Encoder::load`]
//! and the embedder keeps llama.cpp for everything.

// SIMD intrinsics: every `unsafe` here has its SAFETY line, and none leaves
// this module.
#![expect(unsafe_code)]

use std::path::Path;

use llama_cpp_2::token::LlamaToken;

use crate::gguf::{Gguf, TensorInfo, F16, F32, Q8_0};
use crate::half::f16_to_f32;
use crate::q8::{quantize, Quantized, BLOCK_BYTES, QK};
use crate::team::{Items, Team};

/// Passes of fewer tokens (a Retrieve's query) run on the embedding thread
/// alone. Measured on a 2-vCPU VM with the embedder idle 5 ms between
/// queries (`examples/embed_speed`, `EMBED_GAP_MS=5`): waking a parked
/// helper made a 10-token query 2.8–3.0 ms against 2.0 alone, 15–18 tokens
/// 3.2–3.7 against 2.8; from 25 tokens the helper wins (3.1 against 4.3).
const TEAM_FROM_TOKENS: usize = 24;

/// Rows per interleaved group (one 512-bit vector of 32-bit lanes).
const ROWS: usize = 16;
/// Bytes of one group's block: 8 steps × 16 rows × 4 weights.
const GROUP_BLOCK: usize = 8 * ROWS * 4;

/// A Q8_0 weight matrix (`rows` outputs of `cols` inputs) interleaved for the
/// kernel, with its bias.
struct Matrix {
    rows: usize,
    cols: usize,
    /// `[(group * blocks + block) * 512 + step * 64 + lane * 4 + j]`: weight
    /// `block * 32 + step * 4 + j` of row `group * 16 + lane`, plus 128 (as
    /// `vpdpbusd` takes its unsigned operand).
    weights: Vec<u8>,
    /// Per (group, block), 16 lanes: the row's block scale.
    scales: Vec<f32>,
    bias: Vec<f32>,
}

impl Matrix {
    fn blocks(&self) -> usize {
        self.cols / QK
    }
}

struct Norm {
    weight: Vec<f32>,
    bias: Vec<f32>,
}

struct Layer {
    q: Matrix,
    k: Matrix,
    v: Matrix,
    out: Matrix,
    attn_norm: Norm,
    up: Matrix,
    down: Matrix,
    out_norm: Norm,
}

pub(crate) struct Encoder {
    gguf: Gguf,
    dim: usize,
    heads: usize,
    eps: f32,
    /// The token embedding table stays in the file (it is most of the model);
    /// a pass reads its tokens' rows.
    tokens: TensorInfo,
    vocab: usize,
    /// Position embeddings plus token type 0's, `[position][dim]`.
    positions: Vec<f32>,
    embed_norm: Norm,
    layers: Vec<Layer>,
}

/// A reason the encoder does not take this model.
type Unsupported = String;

impl Encoder {
    /// Reads and interleaves the model's weights, or says why this model is
    /// not one the encoder runs.
    pub(crate) fn load(path: &Path) -> Result<Self, Unsupported> {
        if !crate::q8::cpu_supported() {
            return Err("the CPU has no AVX-512 VNNI".into());
        }
        let gguf = Gguf::open(path).map_err(|e| e.to_string())?;
        let arch = gguf.str("general.architecture").unwrap_or_default();
        if arch != "bert" {
            return Err(format!("architecture {arch:?} (only \"bert\")"));
        }
        let int = |key: &str| {
            gguf.int(&format!("bert.{key}"))
                .and_then(|v| usize::try_from(v).ok())
                .ok_or_else(|| format!("no bert.{key}"))
        };
        let dim = int("embedding_length")?;
        let ff = int("feed_forward_length")?;
        let heads = int("attention.head_count")?;
        let n_layers = int("block_count")?;
        if matches!(
            gguf.kv.get("bert.attention.causal"),
            Some(crate::gguf::Value::Bool(true))
        ) {
            return Err("causal attention".into());
        }
        let eps = gguf
            .float("bert.attention.layer_norm_epsilon")
            .ok_or("no layer norm epsilon")? as f32;
        if dim == 0
            || ff == 0
            || dim % QK != 0
            || ff % QK != 0
            || dim % ROWS != 0
            || ff % ROWS != 0
            || heads == 0
            || dim % heads != 0
            || (dim / heads) % LANES != 0
        {
            return Err(format!("sizes {dim}/{ff}/{heads} heads"));
        }
        let tensor = |name: &str| {
            gguf.tensors
                .get(name)
                .cloned()
                .ok_or_else(|| format!("no tensor {name}"))
        };
        let vector = |name: &str, len: usize| -> Result<Vec<f32>, Unsupported> {
            let t = tensor(name)?;
            if t.elements() != len as u64 {
                return Err(format!("{name} has {} values, not {len}", t.elements()));
            }
            let data = gguf.data(&t).map_err(|e| format!("{name}: {e}"))?;
            to_f32(&data, t.ggml_type).ok_or_else(|| format!("{name} is of type {}", t.ggml_type))
        };
        let norm = |prefix: &str| -> Result<Norm, Unsupported> {
            Ok(Norm {
                weight: vector(&format!("{prefix}.weight"), dim)?,
                bias: vector(&format!("{prefix}.bias"), dim)?,
            })
        };
        let matrix = |prefix: &str, rows: usize, cols: usize| -> Result<Matrix, Unsupported> {
            let name = format!("{prefix}.weight");
            let t = tensor(&name)?;
            if t.ggml_type != Q8_0 || t.dims != [cols as u64, rows as u64] {
                return Err(format!(
                    "{name} is type {} {:?}, not Q8_0 [{cols}, {rows}]",
                    t.ggml_type, t.dims
                ));
            }
            let data = gguf.data(&t).map_err(|e| format!("{name}: {e}"))?;
            Ok(interleave(
                &data,
                rows,
                cols,
                vector(&format!("{prefix}.bias"), rows)?,
            ))
        };
        let tokens = tensor("token_embd.weight")?;
        if !matches!(tokens.ggml_type, F32 | F16)
            || tokens.dims.len() != 2
            || tokens.dims[0] != dim as u64
        {
            return Err(format!(
                "token_embd.weight is type {} {:?}",
                tokens.ggml_type, tokens.dims
            ));
        }
        let vocab = tokens.dims[1] as usize;
        let n_pos = int("context_length")?;
        let mut positions = vector("position_embd.weight", dim * n_pos)?;
        if let Some(types) = gguf.tensors.get("token_types.weight") {
            let d = dim as u64;
            if types.dims.first() != Some(&d) || !(d..=16 * d).contains(&types.elements()) {
                return Err(format!("token_types.weight is {:?}", types.dims));
            }
            let data = gguf
                .data(types)
                .map_err(|e| format!("token_types.weight: {e}"))?;
            let types = to_f32(&data, types.ggml_type).ok_or("token_types.weight type")?;
            for p in positions.chunks_exact_mut(dim) {
                p.iter_mut().zip(&types[..dim]).for_each(|(p, t)| *p += t);
            }
        }
        let layers = (0..n_layers)
            .map(|i| {
                let b = |n: &str| format!("blk.{i}.{n}");
                Ok(Layer {
                    q: matrix(&b("attn_q"), dim, dim)?,
                    k: matrix(&b("attn_k"), dim, dim)?,
                    v: matrix(&b("attn_v"), dim, dim)?,
                    out: matrix(&b("attn_output"), dim, dim)?,
                    attn_norm: norm(&b("attn_output_norm"))?,
                    up: matrix(&b("ffn_up"), ff, dim)?,
                    down: matrix(&b("ffn_down"), dim, ff)?,
                    out_norm: norm(&b("layer_output_norm"))?,
                })
            })
            .collect::<Result<Vec<_>, Unsupported>>()?;
        Ok(Self {
            embed_norm: norm("token_embd_norm")?,
            gguf,
            dim,
            heads,
            eps,
            tokens,
            vocab,
            positions,
            layers,
        })
    }

    /// Longest input, in tokens (the model's positions).
    pub(crate) fn max_tokens(&self) -> usize {
        self.positions.len() / self.dim
    }

    /// The mean of the last hidden states of each input (what llama.cpp's
    /// mean pooling returns), not normalized, computed by `team` (by the
    /// calling thread alone for a pass under [`TEAM_FROM_TOKENS`]).
    pub(crate) fn embed(
        &self,
        inputs: &[&[LlamaToken]],
        team: &Team,
    ) -> Result<Vec<Vec<f32>>, String> {
        let n: usize = inputs.iter().map(|i| i.len()).sum();
        let alone;
        let team = if n < TEAM_FROM_TOKENS {
            alone = Team::new(1);
            &alone
        } else {
            // Parked helpers wake while the tokens' rows are read.
            team.wake();
            team
        };
        let dim = self.dim;
        let mut x = Vec::with_capacity(n * dim);
        let row_bytes = dim * if self.tokens.ggml_type == F32 { 4 } else { 2 };
        for input in inputs {
            if input.len() > self.max_tokens() {
                return Err(format!(
                    "{} tokens, more than the model's {}",
                    input.len(),
                    self.max_tokens()
                ));
            }
            for (p, &t) in input.iter().enumerate() {
                let t = usize::try_from(t.0)
                    .ok()
                    .filter(|&t| t < self.vocab)
                    .ok_or_else(|| format!("token {t}"))?;
                let row = self
                    .gguf
                    .read_at(self.tokens.offset + (t * row_bytes) as u64, row_bytes)
                    .map_err(|e| e.to_string())?;
                let row = to_f32(&row, self.tokens.ggml_type).unwrap_or_default();
                x.extend(
                    row.iter()
                        .zip(&self.positions[p * dim..(p + 1) * dim])
                        .map(|(a, b)| a + b),
                );
            }
        }
        // SAFETY: the CPU's support was checked when the encoder was made.
        unsafe { self.forward(&mut x, inputs, team) }?;
        let mut at = 0;
        Ok(inputs
            .iter()
            .map(|input| {
                let mut mean = vec![0.0f32; dim];
                for t in at..at + input.len() {
                    mean.iter_mut()
                        .zip(&x[t * dim..(t + 1) * dim])
                        .for_each(|(m, x)| *m += x);
                }
                at += input.len();
                let scale = 1.0 / input.len().max(1) as f32;
                mean.iter_mut().for_each(|m| *m *= scale);
                mean
            })
            .collect())
    }

    /// The layers, on the embedded tokens `x`. Compiled for AVX-512 so the
    /// f32 work between the products (norms, attention, GELU) is vectorized.
    #[cfg_attr(
        target_arch = "x86_64",
        target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma")
    )]
    unsafe fn forward(
        &self,
        x: &mut [f32],
        inputs: &[&[LlamaToken]],
        team: &Team,
    ) -> Result<(), String> {
        let dim = self.dim;
        layer_norm(x, &self.embed_norm, dim, self.eps);
        let (mut q, mut k, mut v, mut a, mut h, mut f) = Default::default();
        for l in &self.layers {
            let xq = quantize(x, dim);
            matmul(
                &mut [(&l.q, &mut q), (&l.k, &mut k), (&l.v, &mut v)],
                &xq,
                team,
                false,
            )?;
            self.attention(inputs, &q, &k, &v, &mut a, team)?;
            matmul(&mut [(&l.out, &mut f)], &quantize(&a, dim), team, false)?;
            x.iter_mut().zip(&f).for_each(|(x, f)| *x += f);
            layer_norm(x, &l.attn_norm, dim, self.eps);
            matmul(&mut [(&l.up, &mut h)], &quantize(x, dim), team, true)?;
            matmul(
                &mut [(&l.down, &mut f)],
                &quantize(&h, l.down.cols),
                team,
                false,
            )?;
            x.iter_mut().zip(&f).for_each(|(x, f)| *x += f);
            layer_norm(x, &l.out_norm, dim, self.eps);
        }
        Ok(())
    }

    /// Multi-head self-attention within each input, heads shared out
    /// among the team.
    fn attention(
        &self,
        inputs: &[&[LlamaToken]],
        q: &[f32],
        k: &[f32],
        v: &[f32],
        out: &mut Vec<f32>,
        team: &Team,
    ) -> Result<(), String> {
        out.clear();
        out.resize(q.len(), 0.0);
        debug_assert_eq!(out.len(), q.len());
        let out_addr = out.as_mut_ptr() as usize;
        let heads = Items::new(self.heads, team.size());
        team.run(&|_| {
            while let Some(heads) = heads.take() {
                // SAFETY: `out` holds as many values as `q`; each member
                // writes only the columns of the heads it took, through
                // slices of exactly those columns; the CPU's support was
                // checked when the encoder was made.
                unsafe {
                    self.heads_attention(inputs, heads, q, k, v, out_addr as *mut f32);
                }
            }
        })
    }

    /// Attention of `heads`, written into their columns of `out` (as many
    /// values as `q`; other threads may be writing other heads' columns).
    #[cfg_attr(
        target_arch = "x86_64",
        target_feature(enable = "avx512f,avx512bw,avx512vl,fma")
    )]
    unsafe fn heads_attention(
        &self,
        inputs: &[&[LlamaToken]],
        heads: std::ops::Range<usize>,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        out: *mut f32,
    ) {
        let dim = self.dim;
        let hd = dim / self.heads;
        let scale = 1.0 / (hd as f32).sqrt();
        // Per input and head, the keys transposed (`kt[d * padded + j]`),
        // so a query's scores are `hd` multiply-adds along all keys at once
        // instead of one short dot product per key; rows are padded to whole
        // vectors. Sums stay in registers and are stored once: sums kept in
        // memory (a vector store per key) cost 15–30% of a short query's
        // pass, as each load waited for the store before it.
        let mut kt = Vec::new();
        let mut p = Vec::new();
        let mut first = 0;
        for input in inputs {
            let (range, len) = (first..first + input.len(), input.len());
            let padded = len.div_ceil(LANES) * LANES;
            for h in heads.clone() {
                kt.clear();
                kt.resize(hd * padded, 0.0);
                for (j, t) in range.clone().enumerate() {
                    for (d, x) in k[t * dim + h * hd..t * dim + (h + 1) * hd]
                        .iter()
                        .enumerate()
                    {
                        kt[d * padded + j] = *x;
                    }
                }
                for i in range.clone() {
                    p.clear();
                    p.resize(padded, 0.0);
                    // SAFETY: `kt` holds `hd` rows of `padded` values, `p`
                    // `padded`; the CPU's support was checked when the
                    // encoder was made.
                    unsafe {
                        scores(
                            &q[i * dim + h * hd..i * dim + (h + 1) * hd],
                            scale,
                            &kt,
                            &mut p,
                        )
                    };
                    let p = &mut p[..len];
                    let max = p.iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s));
                    p.iter_mut().for_each(|s| *s = exp(*s - max));
                    let inverse = 1.0 / p.iter().sum::<f32>();
                    p.iter_mut().for_each(|s| *s *= inverse);
                    // SAFETY: rows `range` of `v` hold this head's columns
                    // `h * hd..(h + 1) * hd`; the `hd` values at
                    // `out[i * dim + h * hd]` are this head's columns of
                    // token `i`, which no other member writes.
                    unsafe {
                        weighted_sum(
                            p,
                            &v[range.start * dim + h * hd..],
                            dim,
                            hd,
                            out.add(i * dim + h * hd),
                        );
                    }
                }
            }
            first = range.end;
        }
    }
}

/// Most tokens multiplied per load of weights (accumulators and sums for
/// each, in 32 vector registers).
const TILE: usize = 12;

/// `out = x · mᵀ + bias` for each `(m, out)` (`x.n × m.rows` values), the
/// matrices' row groups shared out among the team; with `gelu`, GELU of
/// that, each member applying it to the rows it computed.
fn matmul(
    products: &mut [(&Matrix, &mut Vec<f32>)],
    x: &Quantized,
    team: &Team,
    gelu: bool,
) -> Result<(), String> {
    // (matrix, group) work items, and where each matrix's output is.
    let mut items = Vec::new();
    let mut outs = Vec::new();
    for (i, (m, out)) in products.iter_mut().enumerate() {
        out.clear();
        out.resize(x.n * m.rows, 0.0);
        outs.push(out.as_mut_ptr() as usize);
        items.extend((0..m.rows / ROWS).map(|g| (i, g)));
    }
    let work = Items::new(items.len(), team.size());
    // Tokens split into even tiles: 13 tokens are 7 + 6, not 12 + 1.
    let tiles = x.n.div_ceil(TILE);
    let run = |_| {
        while let Some(taken) = work.take() {
            for &(i, g) in &items[taken] {
                let m = products[i].0;
                let out = outs[i] as *mut f32;
                let mut t = 0;
                for i in 0..tiles {
                    let tile = (x.n - t) / (tiles - i);
                    // SAFETY: CPU support was checked when the encoder was made;
                    // members write disjoint row groups of the outputs, each of
                    // which holds `x.n × m.rows` values.
                    unsafe {
                        match tile {
                            12 => group::<12>(m, g, x, t, out),
                            11 => group::<11>(m, g, x, t, out),
                            10 => group::<10>(m, g, x, t, out),
                            9 => group::<9>(m, g, x, t, out),
                            8 => group::<8>(m, g, x, t, out),
                            7 => group::<7>(m, g, x, t, out),
                            6 => group::<6>(m, g, x, t, out),
                            5 => group::<5>(m, g, x, t, out),
                            4 => group::<4>(m, g, x, t, out),
                            3 => group::<3>(m, g, x, t, out),
                            2 => group::<2>(m, g, x, t, out),
                            _ => group::<1>(m, g, x, t, out),
                        }
                    }
                    t += tile;
                }
                if gelu {
                    for t in 0..x.n {
                        // SAFETY: as above: this member's rows of token `t`.
                        unsafe {
                            gelu_in_place(std::slice::from_raw_parts_mut(
                                out.add(t * m.rows + g * ROWS),
                                ROWS,
                            ));
                        }
                    }
                }
            }
        }
    };
    team.run(&run)
}

/// Row group `g` of `m` against tokens `first..first + T` of `x`, plus bias,
/// into `out` (`[token][row]`). Each step loads 4 weights of each of the 16
/// rows once and multiplies them by every token's 4 activations, broadcast
/// from memory inside the `vpdpbusd`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn group<const T: usize>(m: &Matrix, g: usize, x: &Quantized, first: usize, out: *mut f32) {
    use std::arch::x86_64::*;
    let blocks = m.blocks();
    let mut sums = [_mm512_setzero_ps(); T];
    let values = x.values.as_ptr().add(first * m.cols);
    for b in 0..blocks {
        let at = g * blocks + b;
        let mut acc = [_mm512_setzero_si512(); T];
        for (t, acc) in acc.iter_mut().enumerate() {
            *acc = _mm512_set1_epi32(*x.corrections.get_unchecked((first + t) * blocks + b));
        }
        let w = m.weights.as_ptr().add(at * GROUP_BLOCK);
        for step in 0..8 {
            let wv = _mm512_loadu_si512(w.add(step * 64).cast());
            for (t, acc) in acc.iter_mut().enumerate() {
                let a = values
                    .add(t * m.cols + b * QK + step * 4)
                    .cast::<i32>()
                    .read_unaligned();
                *acc = _mm512_dpbusd_epi32(*acc, wv, _mm512_set1_epi32(a));
            }
        }
        let ws = _mm512_loadu_ps(m.scales.as_ptr().add(at * ROWS));
        for (t, sum) in sums.iter_mut().enumerate() {
            let s = _mm512_mul_ps(
                ws,
                _mm512_set1_ps(*x.scales.get_unchecked((first + t) * blocks + b)),
            );
            *sum = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[t]), s, *sum);
        }
    }
    let bias = _mm512_loadu_ps(m.bias.as_ptr().add(g * ROWS));
    for (t, sum) in sums.iter().enumerate() {
        _mm512_storeu_ps(
            out.add((first + t) * m.rows + g * ROWS),
            _mm512_add_ps(*sum, bias),
        );
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn group<const T: usize>(_: &Matrix, _: usize, _: &Quantized, _: usize, _: *mut f32) {
    unreachable!("the encoder is only made on x86-64 with AVX-512")
}

/// Interleaves a `rows × cols` Q8_0 matrix for [`group`].
fn interleave(data: &[u8], rows: usize, cols: usize, bias: Vec<f32>) -> Matrix {
    let blocks = cols / QK;
    let groups = rows / ROWS;
    let mut weights = vec![0u8; groups * blocks * GROUP_BLOCK];
    let mut scales = vec![0f32; groups * blocks * ROWS];
    for r in 0..rows {
        let (g, lane) = (r / ROWS, r % ROWS);
        for b in 0..blocks {
            let block = &data[(r * blocks + b) * BLOCK_BYTES..(r * blocks + b + 1) * BLOCK_BYTES];
            let at = g * blocks + b;
            scales[at * ROWS + lane] = f16_to_f32(u16::from_le_bytes([block[0], block[1]]));
            let values = &block[2..];
            for step in 0..8 {
                for j in 0..4 {
                    weights[at * GROUP_BLOCK + step * 64 + lane * 4 + j] =
                        values[step * 4 + j] ^ 0x80;
                }
            }
        }
    }
    Matrix {
        rows,
        cols,
        weights,
        scales,
        bias,
    }
}

fn to_f32(data: &[u8], ggml_type: u32) -> Option<Vec<f32>> {
    match ggml_type {
        F32 => Some(
            data.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        ),
        F16 => Some(
            data.chunks_exact(2)
                .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
                .collect(),
        ),
        _ => None,
    }
}

#[cfg_attr(
    target_arch = "x86_64",
    target_feature(enable = "avx512f,avx512bw,avx512vl,fma")
)]
fn layer_norm(x: &mut [f32], norm: &Norm, dim: usize, eps: f32) {
    for row in x.chunks_exact_mut(dim) {
        let mean = row.iter().sum::<f32>() / dim as f32;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / dim as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, w), b) in row.iter_mut().zip(&norm.weight).zip(&norm.bias) {
            *v = (*v - mean) * inv * w + b;
        }
    }
}

/// GELU in its exact form, `x/2 · (1 + erf(x/√2))`, with erf from Abramowitz
/// and Stegun 7.1.26 (absolute error below 1.5e-7) and an `exp` the compiler
/// vectorizes.
#[cfg_attr(
    target_arch = "x86_64",
    target_feature(enable = "avx512f,avx512bw,avx512vl,fma")
)]
fn gelu_in_place(x: &mut [f32]) {
    for v in x.iter_mut() {
        let z = *v * std::f32::consts::FRAC_1_SQRT_2;
        let a = z.abs();
        let t = 1.0 / (1.0 + 0.327_591_1 * a);
        let poly = ((((1.061_405_4 * t - 1.453_152_1) * t + 1.421_413_7) * t - 0.284_496_74) * t
            + 0.254_829_6)
            * t;
        let erf = (1.0 - poly * exp(-a * a)).copysign(z);
        *v = 0.5 * *v * (1.0 + erf);
    }
}

/// `e^x` for `x ≤ 0` to about 1e-7 relative: `2^n · e^r` with `|r| ≤ ln2/2`
/// and a degree-6 Taylor polynomial for `e^r`; below −87 it is `e^−87`. `n` is
/// rounded by adding 1.5 · 2^23, which leaves it in the low mantissa bits,
/// from where it becomes the exponent of `2^n`: float adds and integer
/// shifts only, so the loops that call it vectorize.
#[inline]
fn exp(x: f32) -> f32 {
    const SHIFTER: f32 = 12_582_912.0;
    let x = x.max(-87.0);
    let k = x * std::f32::consts::LOG2_E + SHIFTER;
    let n = k - SHIFTER;
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // The low bits of `k` hold n (two's complement); shifted into the
    // exponent field with its bias, everything above them falls off.
    p * f32::from_bits(k.to_bits().wrapping_add(127) << 23)
}

/// Floats per vector register (AVX-512).
const LANES: usize = 16;

/// `p[j] = scale · Σ_d q[d] · kt[d * p.len() + j]` for a head's query `q`
/// and its keys transposed in `kt` (`q.len()` rows of `p.len()` values, a
/// multiple of [`LANES`]), each vector of `p` summed in a register.
///
/// # Safety
/// The CPU must have AVX-512F and FMA; `kt` must hold `q.len() · p.len()`
/// values and `p.len()` be a multiple of [`LANES`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn scores(q: &[f32], scale: f32, kt: &[f32], p: &mut [f32]) {
    use std::arch::x86_64::*;
    let padded = p.len();
    debug_assert!(kt.len() >= q.len() * padded && padded.is_multiple_of(LANES));
    for c in (0..padded).step_by(LANES) {
        // Two sums (even and odd rows), so each multiply-add does not
        // wait for the one before.
        let (mut s0, mut s1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
        let mut rows = q.chunks_exact(2);
        let mut d = 0;
        for pair in rows.by_ref() {
            s0 = _mm512_fmadd_ps(
                _mm512_set1_ps(pair[0]),
                _mm512_loadu_ps(kt.as_ptr().add(d * padded + c)),
                s0,
            );
            s1 = _mm512_fmadd_ps(
                _mm512_set1_ps(pair[1]),
                _mm512_loadu_ps(kt.as_ptr().add((d + 1) * padded + c)),
                s1,
            );
            d += 2;
        }
        if let [last] = rows.remainder() {
            s0 = _mm512_fmadd_ps(
                _mm512_set1_ps(*last),
                _mm512_loadu_ps(kt.as_ptr().add(d * padded + c)),
                s0,
            );
        }
        let sum = _mm512_mul_ps(_mm512_add_ps(s0, s1), _mm512_set1_ps(scale));
        _mm512_storeu_ps(p.as_mut_ptr().add(c), sum);
    }
}

/// `out[c] = Σ_j w[j] · v[j * stride + c]` for `c` in `0..hd` (a multiple
/// of [`LANES`]), each vector summed in a register and stored once.
///
/// # Safety
/// The CPU must have AVX-512F and FMA; `v` must hold `(w.len() - 1) ·
/// stride + hd` values; `out` must be valid for `hd` writes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn weighted_sum(w: &[f32], v: &[f32], stride: usize, hd: usize, out: *mut f32) {
    use std::arch::x86_64::*;
    debug_assert!(
        hd.is_multiple_of(LANES) && (w.is_empty() || v.len() >= (w.len() - 1) * stride + hd)
    );
    for c in (0..hd).step_by(LANES) {
        let mut sum = _mm512_setzero_ps();
        for (j, wj) in w.iter().enumerate() {
            sum = _mm512_fmadd_ps(
                _mm512_set1_ps(*wj),
                _mm512_loadu_ps(v.as_ptr().add(j * stride + c)),
                sum,
            );
        }
        _mm512_storeu_ps(out.add(c), sum);
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn scores(_: &[f32], _: f32, _: &[f32], _: &mut [f32]) {
    unreachable!("the encoder is only made on x86-64 with AVX-512")
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn weighted_sum(_: &[f32], _: &[f32], _: usize, _: usize, _: *mut f32) {
    unreachable!("the encoder is only made on x86-64 with AVX-512")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_gelu_follow_the_library_functions() {
        let simd = crate::q8::cpu_supported();
        for i in 0..=4000 {
            let x = -20.0 + i as f32 * 0.01;
            if x <= 0.0 {
                let (got, want) = (exp(x), x.exp());
                assert!(
                    (got - want).abs() <= want * 2e-6,
                    "exp({x}): {got} against {want}"
                );
            }
            if !simd {
                continue;
            }
            let mut g = [x];
            // SAFETY: the CPU has the features the function is compiled for.
            unsafe { gelu_in_place(&mut g) };
            let want = 0.5 * f64::from(x) * (1.0 + erf64(f64::from(x) / std::f64::consts::SQRT_2));
            assert!(
                (f64::from(g[0]) - want).abs() <= 1e-6 * (1.0 + want.abs()),
                "gelu({x}): {} against {want}",
                g[0]
            );
        }
    }

    /// erf by its Taylor series (|x| < 3) or continued fraction, in f64.
    fn erf64(x: f64) -> f64 {
        let a = x.abs();
        let v = if a < 3.0 {
            let (mut term, mut sum, mut k) = (a, a, 0.0);
            while term.abs() > 1e-17 {
                k += 1.0;
                term *= -a * a / k;
                sum += term / (2.0 * k + 1.0);
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            let mut f = 0.0;
            for k in (1..60).rev() {
                f = f64::from(k) / 2.0 / (a + f);
            }
            1.0 - (-a * a).exp() / std::f64::consts::PI.sqrt() / (a + f)
        };
        v.copysign(x)
    }

    /// The kernel against the plain sum over dequantized weights and ggml's
    /// quantized activations.
    #[test]
    fn the_interleaved_product_is_ggmls_q8_0_arithmetic() {
        if !crate::q8::cpu_supported() {
            return;
        }
        let (rows, cols) = (48, 96);
        let mut seed = 11u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) as u32
        };
        let mut data = Vec::new();
        for _ in 0..rows * cols / QK {
            data.extend(
                crate::half::f32_to_f16(0.001 + (next() % 1000) as f32 * 1e-5).to_le_bytes(),
            );
            data.extend((0..QK).map(|_| (next() % 255) as u8 ^ 0x80));
        }
        let bias: Vec<f32> = (0..rows).map(|r| r as f32 * 0.25).collect();
        let m = interleave(&data, rows, cols, bias.clone());
        for n in [1, 5, 8, 13] {
            let x: Vec<f32> = (0..n * cols)
                .map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 100.0)
                .collect();
            let q = quantize(&x, cols);
            for threads in [1, 2] {
                let team = Team::new(threads);
                let mut out = Vec::new();
                matmul(&mut [(&m, &mut out)], &q, &team, false).unwrap();
                for t in 0..n {
                    for r in 0..rows {
                        let mut want = f64::from(bias[r]);
                        for b in 0..cols / QK {
                            let blk = &data[(r * cols / QK + b) * BLOCK_BYTES..];
                            let dw = f16_to_f32(u16::from_le_bytes([blk[0], blk[1]]));
                            let at = t * cols + b * QK;
                            let dot: i32 = (0..QK)
                                .map(|i| i32::from(blk[2 + i] as i8) * i32::from(q.values[at + i]))
                                .sum();
                            want += f64::from(dw)
                                * f64::from(q.scales[t * cols / QK + b])
                                * f64::from(dot);
                        }
                        let got = f64::from(out[t * rows + r]);
                        assert!(
                            (got - want).abs() <= 1e-5 * (1.0 + want.abs()),
                            "n {n} token {t} row {r}: {got} against {want}"
                        );
                    }
                }
            }
        }
    }
}
