//! Q8_0 arithmetic shared by basalt's own kernels (`output_head`, `encoder`):
//! activations quantized exactly as ggml quantizes them for a Q8_0 product,
//! the CPU check, and the OpenMP team the kernels run on.

// FFI (libgomp) and CPU feature checks: every `unsafe` here has its SAFETY
// line, and none leaves this module.
#![expect(unsafe_code)]

use std::ffi::c_void;

use crate::half::{f16_to_f32, f32_to_f16};

/// Values per Q8_0 block, and bytes per block (an f16 scale, then 32 i8).
pub(crate) const QK: usize = 32;
pub(crate) const BLOCK_BYTES: usize = 34;
/// Whether this CPU runs basalt's kernels (AVX-512 with VNNI).
pub(crate) fn cpu_supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx512vnni")
            && std::arch::is_x86_feature_detected!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Hidden states quantized as ggml quantizes them for a Q8_0 product: per
/// block of 32, the scale `max/127` (kept as f16) and the values rounded half
/// to even, stored here offset by 128 (unsigned, as `vpdpbusd` takes them).
pub(crate) struct Quantized {
    pub n: usize,
    pub blocks: usize,
    pub values: Vec<u8>,
    /// Per sequence and block.
    pub scales: Vec<f32>,
}

pub(crate) fn quantize(hidden: &[f32], n_embd: usize) -> Quantized {
    let n = hidden.len() / n_embd;
    let blocks = n_embd / QK;
    let mut values = Vec::with_capacity(n * n_embd);
    let mut scales = Vec::with_capacity(n * blocks);
    for block in hidden.chunks_exact(QK) {
        let max = block.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let inverse = if max == 0.0 { 0.0 } else { 127.0 / max };
        values.extend(
            block
                .iter()
                .map(|x| ((x * inverse).round_ties_even() as i32 + 128) as u8),
        );
        scales.push(f16_to_f32(f32_to_f16(max / 127.0)));
    }
    Quantized {
        n,
        blocks,
        values,
        scales,
    }
}

// libgomp, which llama.cpp's CPU backend runs its graphs on (the `openmp`
// feature): `GOMP_parallel` is what `#pragma omp parallel` compiles to.
extern "C" {
    fn GOMP_parallel(
        f: unsafe extern "C" fn(*mut c_void),
        data: *mut c_void,
        num_threads: u32,
        flags: u32,
    );
    fn omp_get_thread_num() -> i32;
    fn omp_get_num_threads() -> i32;
}

/// Runs `f(thread)` for every `thread` in `0..threads` on OpenMP's thread
/// team, the one llama.cpp just computed the graph on: its workers are still
/// spinning for work when the kernel starts, so they take it at once instead
/// of competing for the cores with threads of our own. OpenMP may give a
/// smaller team than asked (`OMP_THREAD_LIMIT`, `OMP_DYNAMIC`); each member
/// then also runs the missing members' shares, so every `thread` runs once.
pub(crate) fn parallel(threads: usize, f: &(dyn Fn(usize) + Sync)) {
    struct Work<'a> {
        f: &'a (dyn Fn(usize) + Sync),
        threads: usize,
    }
    unsafe extern "C" fn trampoline(data: *mut c_void) {
        // SAFETY: `data` is the `Work` below, alive for the whole region.
        let work = unsafe { &*data.cast::<Work<'_>>() };
        // SAFETY: called inside a parallel region.
        let (member, team) = unsafe { (omp_get_thread_num(), omp_get_num_threads()) };
        let member = usize::try_from(member).unwrap_or(0);
        let team = usize::try_from(team).unwrap_or(1).max(1);
        for thread in (member..work.threads).step_by(team) {
            (work.f)(thread);
        }
    }
    let mut work = Work { f, threads };
    // SAFETY: GOMP_parallel runs `trampoline` on up to `threads` threads and
    // returns when all have finished; `work` outlives the call.
    unsafe {
        GOMP_parallel(
            trampoline,
            std::ptr::from_mut(&mut work).cast(),
            u32::try_from(threads).unwrap_or(1),
            0,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_states_quantize_as_ggml_does() {
        let mut hidden = vec![0.0f32; 64];
        hidden[0] = 127.0; // the block's largest magnitude: scale 1
        hidden[1] = -63.5; // ties round to even
        hidden[2] = 0.5;
        hidden[3] = 1.5;
        let q = quantize(&hidden, 64);
        let v = |i: usize| i32::from(q.values[i]) - 128;
        assert_eq!((v(0), v(1), v(2), v(3)), (127, -64, 0, 2));
        assert_eq!(q.scales[0], 1.0);
        // An all-zero block has scale 0 and values 0.
        assert!(q.values[32..].iter().all(|&x| x == 128));
        assert_eq!(q.scales[1], 0.0);
    }
}
