//! IEEE half precision (f16) conversions, as ggml stores Q8_0 block scales.

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
