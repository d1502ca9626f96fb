//! Q8_0 arithmetic shared by basalt's own kernels (`output_head`, `encoder`):
//! activations quantized exactly as ggml quantizes them for a Q8_0 product,
//! the CPU check, and the OpenMP team the kernels run on.

// FFI (libgomp) and CPU feature checks: every `unsafe` here has its SAFETY
// line, and none leaves this module.
#![expect(unsafe_code)]

use std::ffi::c_void;

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
            && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Activations (rows of hidden states) quantized as ggml quantizes them for
/// a Q8_0 product: per block of 32, the scale `max/127` (kept as f16) and
/// the values rounded half to even.
pub(crate) struct Quantized {
    /// Rows.
    pub n: usize,
    /// Blocks per row.
    pub blocks: usize,
    pub values: Vec<i8>,
    /// Per row and block.
    pub scales: Vec<f32>,
    /// Per row and block, −128 × the block's value sum: for a product with
    /// weights that go in as unsigned bytes (weight + 128), this takes the
    /// offset out.
    pub corrections: Vec<i32>,
}

/// `x`, rows of `cols` values (a multiple of 32), quantized. Only on CPUs
/// with [`cpu_supported`]: the kernels that call it are made only there.
pub(crate) fn quantize(x: &[f32], cols: usize) -> Quantized {
    assert!(cpu_supported(), "Q8_0 quantization needs AVX-512 and F16C");
    let blocks = x.len() / QK;
    let mut acts = Quantized {
        n: x.len() / cols,
        blocks: cols / QK,
        values: vec![0i8; blocks * QK],
        scales: vec![0.0; blocks],
        corrections: vec![0; blocks],
    };
    // SAFETY: the CPU's support is checked above; every block read and
    // written is inside `x` and `acts`.
    unsafe { quantize_blocks(x, &mut acts) };
    acts
}

/// ggml's x86 `quantize_row_q8_0`, block by block: the scale `max/127`
/// rounded to f16, the values `x · 127/max` rounded half to even.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
unsafe fn quantize_blocks(x: &[f32], acts: &mut Quantized) {
    use std::arch::x86_64::*;
    let abs = _mm512_set1_ps(-0.0);
    for b in 0..acts.scales.len() {
        let lo = _mm512_loadu_ps(x.as_ptr().add(b * QK));
        let hi = _mm512_loadu_ps(x.as_ptr().add(b * QK + 16));
        let max = _mm512_reduce_max_ps(_mm512_max_ps(
            _mm512_andnot_ps(abs, lo),
            _mm512_andnot_ps(abs, hi),
        ));
        let inverse = _mm512_set1_ps(if max == 0.0 { 0.0 } else { 127.0 / max });
        // Round to nearest even (the default rounding mode), as ggml does.
        let qlo = _mm512_cvtps_epi32(_mm512_mul_ps(lo, inverse));
        let qhi = _mm512_cvtps_epi32(_mm512_mul_ps(hi, inverse));
        let out = acts.values.as_mut_ptr().add(b * QK);
        _mm_storeu_si128(out.cast(), _mm512_cvtepi32_epi8(qlo));
        _mm_storeu_si128(out.add(16).cast(), _mm512_cvtepi32_epi8(qhi));
        // Wrapping: a non-finite activation would make the lanes INT_MIN.
        acts.corrections[b] =
            _mm512_reduce_add_epi32(_mm512_add_epi32(qlo, qhi)).wrapping_mul(-128);
        let half = _mm_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm_set_ss(max / 127.0));
        acts.scales[b] = _mm_cvtss_f32(_mm_cvtph_ps(half));
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn quantize_blocks(_: &[f32], _: &mut Quantized) {
    unreachable!("basalt's kernels are only made on x86-64 with AVX-512")
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
        if !cpu_supported() {
            return;
        }
        let mut hidden = vec![0.0f32; 64];
        hidden[0] = 127.0; // the block's largest magnitude: scale 1
        hidden[1] = -63.5; // ties round to even
        hidden[2] = 0.5;
        hidden[3] = 1.5;
        let q = quantize(&hidden, 64);
        let v = |i: usize| i32::from(q.values[i]);
        assert_eq!((v(0), v(1), v(2), v(3)), (127, -64, 0, 2));
        assert_eq!(q.scales[0], 1.0);
        // An all-zero block has scale 0 and values 0.
        assert!(q.values[32..].iter().all(|&x| x == 0));
        assert_eq!(q.scales[1], 0.0);
        assert_eq!(q.corrections, [-128 * (127 - 64 + 2), 0]);
    }
}
