//! IEEE half precision (f16): conversions, as ggml stores Q8_0 block scales,
//! and the dot product of two f16 vectors (a knowledge base's HNSW graph
//! keeps its vectors in f16).

// The dot product's AVX-512 path (`_mm512_cvtph_ps`): its `unsafe` has its
// SAFETY lines and does not leave this module.
#![expect(unsafe_code)]

/// IEEE half precision from single, rounding to nearest even.
pub fn f32_to_f16(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32;
    let man = bits & 0x007f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if man == 0 { 0 } else { 0x0200 };
    }
    let e = exp - 112; // re-biased from 127 to 15
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    let (base, rest, shift) = if e <= 0 {
        // Subnormal in f16: the implicit 1 becomes explicit.
        let shift = (14 - e) as u32;
        if shift > 24 {
            return sign;
        }
        let m = man | 0x0080_0000;
        ((m >> shift) as u16, m & ((1 << shift) - 1), shift)
    } else {
        (((e as u32) << 10 | man >> 13) as u16, man & 0x1fff, 13)
    };
    let half = 1u32 << (shift - 1);
    let round_up = rest > half || (rest == half && base & 1 == 1);
    sign | (base + u16::from(round_up))
}

/// IEEE single from half precision (exact).
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 == 0 { 1.0 } else { -1.0 };
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x03ff);
    match exp {
        0 => sign * man as f32 * 2f32.powi(-24),
        0x1f if man == 0 => sign * f32::INFINITY,
        0x1f => f32::NAN,
        _ => f32::from_bits(u32::from(h & 0x8000) << 16 | (exp + 112) << 23 | man << 13),
    }
}

/// Dot product of two vectors of f16 bits, summed in f32 (the shorter
/// length counts).
#[must_use]
pub fn dot_f16(a: &[u16], b: &[u16]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F, checked just above.
        return unsafe { dot_f16_avx512(a, b) };
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| f16_to_f32(*x) * f16_to_f32(*y))
        .sum()
}

/// [`dot_f16`] converting 16 values at a time (`vcvtph2ps`), in two sums.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn dot_f16_avx512(a: &[u16], b: &[u16]) -> f32 {
    use std::arch::x86_64::*;
    const LANES: usize = 16;
    let n = a.len().min(b.len());
    let whole = n / (2 * LANES) * (2 * LANES);
    let (mut s0, mut s1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    let mut i = 0;
    while i < whole {
        // SAFETY: `i + 2 * LANES <= n`: both 32-value loads are inside both
        // slices.
        unsafe {
            let (pa, pb) = (a.as_ptr().add(i), b.as_ptr().add(i));
            let (a0, b0) = (
                _mm512_cvtph_ps(_mm256_loadu_si256(pa.cast())),
                _mm512_cvtph_ps(_mm256_loadu_si256(pb.cast())),
            );
            let (a1, b1) = (
                _mm512_cvtph_ps(_mm256_loadu_si256(pa.add(LANES).cast())),
                _mm512_cvtph_ps(_mm256_loadu_si256(pb.add(LANES).cast())),
            );
            s0 = _mm512_fmadd_ps(a0, b0, s0);
            s1 = _mm512_fmadd_ps(a1, b1, s1);
        }
        i += 2 * LANES;
    }
    let tail: f32 = a[whole..n]
        .iter()
        .zip(&b[whole..n])
        .map(|(x, y)| f16_to_f32(*x) * f16_to_f32(*y))
        .sum();
    _mm512_reduce_add_ps(_mm512_add_ps(s0, s1)) + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_f16_is_the_sum_of_the_converted_products() {
        for n in [0, 5, 31, 32, 384, 391] {
            let a: Vec<u16> = (0..n)
                .map(|i| f32_to_f16(((i * 37 % 101) as f32 - 50.0) / 400.0))
                .collect();
            let b: Vec<u16> = (0..n)
                .map(|i| f32_to_f16(((i * 53 % 97) as f32 - 48.0) / 300.0))
                .collect();
            let want: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| f64::from(f16_to_f32(*x)) * f64::from(f16_to_f32(*y)))
                .sum();
            let got = f64::from(dot_f16(&a, &b));
            assert!((got - want).abs() < 1e-5, "n {n}: {got} against {want}");
        }
    }
}
