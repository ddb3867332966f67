//! The scale searches behind ggml's K-quant reference quantizers (llama.cpp `ggml-quants.c`,
//! `quantize_row_q{4,5,6}_K_ref`, used by `llama-quantize` when no importance matrix is given).
//!
//! A K-quant super-block holds 256 values in sub-blocks of 32 (Q4_K, Q5_K) or 16 (Q6_K), each
//! with its own scale (and min). The scales are not simply max/min: for every sub-block ggml tries
//! a handful of slightly different grid spacings, refits the scale (and min) by weighted least
//! squares for each, and keeps the fit with the smallest error. The same arithmetic is done here
//! in the same order, in f32, so that the chosen integers match llama.cpp's files; where GCC fused
//! a multiply-add into an FMA the last bit of a sum can differ, which very rarely flips a choice.
//!
//! [`fit_affine`] and [`fit_symmetric`] are the scalar references; the quantizers run the same
//! searches eight sub-blocks at a time in `kquant_lanes`, which is bit-identical to them.

use super::kquant_lanes::{fit_affine_x8_rms_weighted, LANES};
use super::q8_k::BlockQ8_K;
use half::f16;

/// Values per K-quant super-block.
pub const QK_K: usize = 256;

/// Which implementation of the sub-block scale searches a K-quant quantizer runs. Both write
/// the same bytes: the lanes are tested against the scalar reference bit for bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleSearch {
    /// One sub-block at a time: [`fit_affine`] and [`fit_symmetric`].
    Scalar,
    /// Eight sub-blocks at once, one per SIMD lane (`kquant_lanes`). What `quantize` runs.
    Lanes,
}

/// Round to nearest, ties to even, as ggml's `nearest_int`: adding 1.5·2^23 leaves the rounded
/// integer in the low mantissa bits. Exact for |x| < 2^22; larger, infinite or NaN inputs give
/// some integer (never a panic), which every caller clamps.
#[inline]
pub(crate) fn nearest_int(x: f32) -> i32 {
    let v = x + 12_582_912.0;
    (v.to_bits() as i32 & 0x007f_ffff) - 0x0040_0000
}

/// The grid-spacing search of one affine format: `nmax` is the largest quant, and the candidate
/// inverse scales are `(rmin + rdelta·is + nmax) / (max − min)` for `is` in `0..=nstep`.
#[derive(Clone, Copy, Debug)]
pub struct AffineSearch {
    pub nmax: u8,
    pub rmin: f32,
    pub rdelta: f32,
    pub nstep: u8,
}

/// Values per sub-block of the affine K-quants (Q4_K, Q5_K).
pub const AFFINE_SUB: usize = 32;

/// Fits a sub-block as `x ≈ scale·l − min` with `l` in `0..=nmax` (ggml's `make_qkx2_quants`
/// with squared error). `w` weights each value's error. Writes the quants to `l` and returns
/// `(scale, min)`; `min ≥ 0` (the offset is never positive, so a sub-block of positive values
/// starts its grid at zero).
pub fn fit_affine(
    x: &[f32; AFFINE_SUB],
    w: &[f32; AFFINE_SUB],
    s: AffineSearch,
    l: &mut [u8; AFFINE_SUB],
) -> (f32, f32) {
    let nmax = s.nmax as i32;
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = w[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..AFFINE_SUB {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l.fill(0);
        return (0.0, -min);
    }

    // The plain min/max grid is the first candidate.
    let mut iscale = nmax as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0.0f32;
    for i in 0..AFFINE_SUB {
        let q = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
        l[i] = q as u8;
        let diff = scale * q as f32 + min - x[i];
        best_error += w[i] * (diff * diff);
    }

    let mut laux = [0u8; AFFINE_SUB];
    for is in 0..=s.nstep as i32 {
        iscale = (s.rmin + s.rdelta * is as f32 + nmax as f32) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0.0f32, 0.0f32, 0.0f32);
        for i in 0..AFFINE_SUB {
            let q = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
            laux[i] = q as u8;
            let wl = w[i] * q as f32;
            sum_l += wl;
            sum_l2 += wl * q as f32;
            sum_xl += wl * x[i];
        }
        // Weighted least squares for (scale, min) given these quants.
        let det = sum_w * sum_l2 - sum_l * sum_l;
        if det > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0.0f32;
            for i in 0..AFFINE_SUB {
                let diff = this_scale * laux[i] as f32 + this_min - x[i];
                cur_error += w[i] * (diff * diff);
            }
            if cur_error < best_error {
                *l = laux;
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// Values per sub-block of Q6_K.
pub const SYMMETRIC_SUB: usize = 16;

/// Below this largest magnitude a group counts as all zero (ggml's `GROUP_MAX_EPS`).
pub(crate) const GROUP_MAX_EPS: f32 = 1e-15;

/// Fits a sub-block as `x ≈ scale·(l − nmax)` with `l` in `0..2·nmax` (ggml's `make_qx_quants`
/// with `rmse_type = 1`: errors weighted by x²). Starts from the grid that maps the largest
/// magnitude to `−nmax`, then tries 18 nearby spacings and keeps the one whose least-squares
/// scale explains most of the weighted energy. Writes the biased quants to `l`; returns `scale`
/// (which may be negative: the sign of the largest value is folded into it).
pub fn fit_symmetric(x: &[f32; SYMMETRIC_SUB], nmax: i32, l: &mut [u8; SYMMETRIC_SUB]) -> f32 {
    let mut max = 0.0f32;
    let mut amax = 0.0f32;
    for &v in x {
        let av = v.abs();
        if av > amax {
            amax = av;
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        l.fill(0);
        return 0.0;
    }

    // Σ w·x·l and Σ w·l² for the quants that `iscale` gives, with w = x².
    let sums = |iscale: f32| {
        let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
        for &v in x {
            let q = nearest_int(iscale * v).clamp(-nmax, nmax - 1) as f32;
            let w = v * v;
            sumlx += w * v * q;
            suml2 += w * q * q;
        }
        (sumlx, suml2)
    };
    let quantize = |iscale: f32, l: &mut [u8; SYMMETRIC_SUB]| {
        for (q, &v) in l.iter_mut().zip(x) {
            *q = (nearest_int(iscale * v).clamp(-nmax, nmax - 1) + nmax) as u8;
        }
    };

    let iscale = -(nmax as f32) / max;
    quantize(iscale, l);
    let (sumlx, suml2) = sums(iscale);
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in -9..=9 {
        if is == 0 {
            continue;
        }
        let iscale = -(nmax as f32 + 0.1 * is as f32) / max;
        let (sumlx, suml2) = sums(iscale);
        // Maximising sumlx²/suml2 minimises the weighted squared error.
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            quantize(iscale, l);
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// Packs the 8 sub-block scales and mins of Q4_K and Q5_K (6 bits each) into 12 bytes.
///
/// Bytes 0–3 hold scales 0–3 and bytes 4–7 mins 0–3 in their low 6 bits. Byte 8+k holds the low
/// 4 bits of scale 4+k (low nibble) and of min 4+k (high nibble); their top 2 bits go into the
/// top 2 bits of byte k (scale) and byte 4+k (min).
pub(crate) fn pack_scales_mins(sc: &[u8; 8], mn: &[u8; 8]) -> [u8; 12] {
    let mut b = [0u8; 12];
    for k in 0..4 {
        b[k] = (sc[k] & 63) | ((sc[4 + k] >> 4) << 6);
        b[4 + k] = (mn[k] & 63) | ((mn[4 + k] >> 4) << 6);
        b[8 + k] = (sc[4 + k] & 0xF) | ((mn[4 + k] & 0xF) << 4);
    }
    b
}

/// The inverse of [`pack_scales_mins`]: `(scales, mins)`, each in `0..64`.
#[inline]
pub(crate) fn unpack_scales_mins(b: &[u8; 12]) -> ([u8; 8], [u8; 8]) {
    // Four lanes at a time in u32 words: w0 = bytes 0–3, w1 = bytes 4–7, w2 = bytes 8–11.
    let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let (w0, w1, w2) = (word(0), word(4), word(8));
    const LOW6: u32 = 0x3f3f_3f3f;
    const LOW4: u32 = 0x0f0f_0f0f;
    const LOW2: u32 = 0x0303_0303;
    let sc_lo = w0 & LOW6;
    let sc_hi = (w2 & LOW4) | (((w0 >> 6) & LOW2) << 4);
    let mn_lo = w1 & LOW6;
    let mn_hi = ((w2 >> 4) & LOW4) | (((w1 >> 6) & LOW2) << 4);
    let join = |lo: u32, hi: u32| {
        let (l, h) = (lo.to_le_bytes(), hi.to_le_bytes());
        [l[0], l[1], l[2], l[3], h[0], h[1], h[2], h[3]]
    };
    (join(sc_lo, sc_hi), join(mn_lo, mn_hi))
}

/// A Q4_K / Q5_K super-block before bit-packing: `value ≈ d·sc_j·l − dmin·m_j` for sub-block j.
pub(crate) struct AffineSuperBlock {
    pub d: f16,
    pub dmin: f16,
    /// 6-bit scales and mins, packed by [`pack_scales_mins`].
    pub scales: [u8; 12],
    /// One quant per value, in `0..=nmax`.
    pub l: [u8; QK_K],
}

/// The body of ggml's `quantize_row_q4_K_ref` / `quantize_row_q5_K_ref` for one super-block:
/// fit each 32-value sub-block (errors weighted by `rms + |x|`), quantize the 8 scales and the 8
/// mins to 6 bits against their maxima, round the two super-scales to f16, and requantize every
/// value with the scales as stored. `search` picks the implementation of the sub-block fits.
pub(crate) fn quantize_affine(
    x: &[f32; QK_K],
    s: AffineSearch,
    search: ScaleSearch,
) -> AffineSuperBlock {
    const SUBS: usize = QK_K / AFFINE_SUB;
    const _: () = assert!(SUBS == LANES);
    let subs: &[[f32; AFFINE_SUB]; SUBS] = bytemuck::cast_ref(x);
    let mut l = [[0u8; AFFINE_SUB]; SUBS];
    let (scales, mins) = match search {
        ScaleSearch::Scalar => {
            let mut scales = [0.0f32; SUBS];
            let mut mins = [0.0f32; SUBS];
            for j in 0..SUBS {
                let xs = &subs[j];
                let mut sum_x2 = 0.0f32;
                for &v in xs {
                    sum_x2 += v * v;
                }
                let av_x = (sum_x2 / AFFINE_SUB as f32).sqrt();
                let w: [f32; AFFINE_SUB] = std::array::from_fn(|i| av_x + xs[i].abs());
                (scales[j], mins[j]) = fit_affine(xs, &w, s, &mut l[j]);
            }
            (scales, mins)
        }
        ScaleSearch::Lanes => fit_affine_x8_rms_weighted(subs, s, &mut l),
    };
    let mut max_scale = 0.0f32;
    let mut max_min = 0.0f32;
    for j in 0..SUBS {
        if scales[j] > max_scale {
            max_scale = scales[j];
        }
        if mins[j] > max_min {
            max_min = mins[j];
        }
    }

    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    // ggml stores the rounded value in a u8 before clamping, so out-of-range values wrap first.
    let ls: [u8; 8] = std::array::from_fn(|j| (nearest_int(inv_scale * scales[j]) as u8).min(63));
    let lm: [u8; 8] = std::array::from_fn(|j| (nearest_int(inv_min * mins[j]) as u8).min(63));
    let d = f16::from_f32(max_scale / 63.0);
    let dmin = f16::from_f32(max_min / 63.0);

    let nmax = s.nmax as i32;
    for (j, (xs, lsub)) in subs.iter().zip(l.iter_mut()).enumerate() {
        let dj = d.to_f32() * ls[j] as f32;
        if dj == 0.0 {
            continue; // keeps the search's quants, as ggml does
        }
        let mj = dmin.to_f32() * lm[j] as f32;
        for (q, &v) in lsub.iter_mut().zip(xs) {
            *q = nearest_int((v + mj) / dj).clamp(0, nmax) as u8;
        }
    }
    AffineSuperBlock {
        d,
        dmin,
        scales: pack_scales_mins(&ls, &lm),
        l: bytemuck::cast(l),
    }
}

/// Dequantizes one Q4_K/Q5_K super-block from its unpacked quants (`q: [256]`, `out: [256]`):
/// `x = d·sc_j·q − dmin·m_j` per sub-block `j`, as gguf-py computes it.
pub(crate) fn dequantize_affine(
    d: f16,
    dmin: f16,
    scales: &[u8; 12],
    q: &[u8; QK_K],
    out: &mut [f32],
) {
    let (sc, mn) = unpack_scales_mins(scales);
    let (d, dmin) = (d.to_f32(), dmin.to_f32());
    for (j, (ys, qs)) in out.chunks_exact_mut(32).zip(q.chunks_exact(32)).enumerate() {
        let dj = d * sc[j] as f32;
        let mj = dmin * mn[j] as f32;
        for (v, &q) in ys.iter_mut().zip(qs) {
            *v = dj * q as f32 - mj;
        }
    }
}

/// The scalar dot of one Q4_K/Q5_K super-block (unpacked quants `q`) with a Q8_K block: in
/// exact integers `Σ_j sc_j·Σ q·y` and `Σ_j m_j·Σ y` (the latter from the activation's
/// `bsums`), then `d·dy·first − dmin·dy·second` in f32.
pub(crate) fn dot_affine(
    d: f16,
    dmin: f16,
    scales: &[u8; 12],
    q: &[u8; QK_K],
    a: &BlockQ8_K,
) -> f32 {
    let (sc, mn) = unpack_scales_mins(scales);
    let mut qdot = 0i32;
    for ((&s, qs), ys) in sc.iter().zip(q.chunks_exact(32)).zip(a.qs.chunks_exact(32)) {
        let dot: i32 = qs.iter().zip(ys).map(|(&q, &y)| q as i32 * y as i32).sum();
        qdot += s as i32 * dot;
    }
    let mdot: i32 = (0..8)
        .map(|j| mn[j] as i32 * (a.bsums[2 * j] as i32 + a.bsums[2 * j + 1] as i32))
        .sum();
    let dy = a.d * d.to_f32();
    let dminy = a.d * dmin.to_f32();
    dy * qdot as f32 - dminy * mdot as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_int_rounds_half_to_even() {
        let cases = [
            (0.5, 0),
            (1.5, 2),
            (2.5, 2),
            (-0.5, 0),
            (-1.5, -2),
            (-2.5, -2),
            (0.49999997, 0),
            (3.7, 4),
            (-3.7, -4),
            (4_194_303.0, 4_194_303),
            (-4_194_303.0, -4_194_303),
        ];
        for (x, want) in cases {
            assert_eq!(nearest_int(x), want, "nearest_int({x})");
            assert_eq!(nearest_int(x), x.round_ties_even() as i32);
        }
    }

    #[test]
    fn scales_mins_round_trip() {
        for seed in 0..64u32 {
            let sc: [u8; 8] = std::array::from_fn(|i| ((seed * 7 + i as u32 * 13) % 64) as u8);
            let mn: [u8; 8] = std::array::from_fn(|i| ((seed * 11 + i as u32 * 29 + 5) % 64) as u8);
            assert_eq!(unpack_scales_mins(&pack_scales_mins(&sc, &mn)), (sc, mn));
        }
    }

    #[test]
    fn nearest_int_never_panics_on_garbage() {
        for x in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e30, -1e30] {
            let _ = nearest_int(x);
        }
    }

    /// A sub-block that is already on an affine grid is reproduced exactly.
    #[test]
    fn fit_affine_recovers_an_exact_grid() {
        let x: [f32; 32] = std::array::from_fn(|i| (i % 16) as f32 * 0.25 - 1.0);
        let w = [1.0f32; 32];
        let mut l = [0u8; 32];
        let s = AffineSearch {
            nmax: 15,
            rmin: -1.0,
            rdelta: 0.1,
            nstep: 20,
        };
        let (scale, min) = fit_affine(&x, &w, s, &mut l);
        for i in 0..32 {
            assert_eq!(scale * l[i] as f32 - min, x[i], "value {i}");
        }
    }

    #[test]
    fn fit_affine_constant_block() {
        let w = [1.0f32; 32];
        let mut l = [7u8; 32];
        let s = AffineSearch {
            nmax: 31,
            rmin: -0.5,
            rdelta: 0.1,
            nstep: 15,
        };
        assert_eq!(fit_affine(&[-2.0; 32], &w, s, &mut l), (0.0, 2.0));
        assert_eq!(l, [0; 32]);
    }

    #[test]
    fn fit_symmetric_zero_and_grid() {
        let mut l = [5u8; 16];
        assert_eq!(fit_symmetric(&[0.0; 16], 32, &mut l), 0.0);
        assert_eq!(l, [0; 16]);
        // Values on the grid k·0.5 with the largest magnitude negative map back exactly.
        let x: [f32; 16] = std::array::from_fn(|i| i as f32 * 0.5 - 16.0);
        // (The least-squares refit may round the scale by an ulp, hence the tiny tolerance.)
        let scale = fit_symmetric(&x, 32, &mut l);
        for i in 0..16 {
            let got = scale * (l[i] as f32 - 32.0);
            assert!((got - x[i]).abs() <= 1e-5, "value {i}: {got} vs {}", x[i]);
        }
    }
}
