//! The K-quant scale searches of [`super::kquant_search`], run for eight sub-blocks at once: one
//! sub-block per f32x8 lane.
//!
//! Bit-exact by construction. Every lane performs the scalar code's IEEE-754 operations (add,
//! mul, div, compare) in the same order: each lane accumulates its own sub-block's sums over
//! `i = 0..n` in sequence, with no FMA and no reassociation. Each branch becomes a compare whose
//! mask selects between the two outcomes, and the compares are the ordered ones, false on NaN like
//! the scalar `<` / `>` (`!=` is written as the negation of an ordered `==`, true on NaN like the
//! scalar `!=`). Lanes whose scalar search returns early compute garbage that is discarded at the
//! end. So every lane's scale, min and quants equal the scalar [`fit_affine`] / [`fit_symmetric`]
//! result bit for bit, whatever the input; `tests/quant_kquant_lanes.rs` checks it.
//!
//! `wide` picks the instructions at compile time (two SSE2 halves on a stock x86-64 build, one
//! AVX register where AVX is enabled, NEON on aarch64); none of them changes a result.
//!
//! [`fit_affine`]: super::kquant_search::fit_affine
//! [`fit_symmetric`]: super::kquant_search::fit_symmetric

use super::kquant_search::{AffineSearch, AFFINE_SUB, GROUP_MAX_EPS, SYMMETRIC_SUB};
use std::array::from_fn;
use wide::{f32x8, i32x8, CmpEq, CmpGt, CmpLt};

/// Sub-blocks searched at once.
pub const LANES: usize = 8;

/// `N` values of `LANES` sub-blocks, transposed: vector `i` holds value `i` of every sub-block.
fn transpose<const N: usize>(x: &[[f32; N]; LANES]) -> [f32x8; N] {
    from_fn(|i| f32x8::new(from_fn(|k| x[k][i])))
}

/// Lane-wise `nearest_int(x).clamp(lo, hi)` (see `kquant_search::nearest_int`), as f32. The
/// integer is in `−2^22..2^22` whatever `x` is, so its conversion to f32 is exact and order
/// preserving, and the clamp can be done on the floats (no NaN among them, so the plain
/// max / min instructions are exact).
#[inline(always)]
fn quant(x: f32x8, lo: f32x8, hi: f32x8) -> f32x8 {
    let v: i32x8 = bytemuck::cast(x + f32x8::splat(12_582_912.0));
    let q = (v & i32x8::splat(0x007f_ffff)) - i32x8::splat(0x0040_0000);
    q.round_float().fast_max(lo).fast_min(hi)
}

/// Bit `k` of a compare mask: lane `k`'s outcome.
fn lane(mask: f32x8, k: usize) -> bool {
    (mask.move_mask() >> k) & 1 == 1
}

/// [`fit_affine`](super::kquant_search::fit_affine) for eight sub-blocks: lane `k` fits `x[k]`
/// with weights `w[k]` and writes its quants to `l[k]`. Returns each sub-block's `(scale, min)`.
pub fn fit_affine_x8(
    x: &[[f32; AFFINE_SUB]; LANES],
    w: &[[f32; AFFINE_SUB]; LANES],
    s: AffineSearch,
    l: &mut [[u8; AFFINE_SUB]; LANES],
) -> ([f32; LANES], [f32; LANES]) {
    fit_affine_lanes(&transpose(x), &transpose(w), s, l)
}

/// [`fit_affine_x8`] with ggml's Q4_K / Q5_K weights, computed in the lanes: each value's
/// error is weighted by its sub-block's rms plus its own magnitude (the scalar
/// `quantize_affine`'s weights, operation for operation).
pub(crate) fn fit_affine_x8_rms_weighted(
    x: &[[f32; AFFINE_SUB]; LANES],
    s: AffineSearch,
    l: &mut [[u8; AFFINE_SUB]; LANES],
) -> ([f32; LANES], [f32; LANES]) {
    let x = transpose(x);
    let mut sum_x2 = f32x8::splat(0.0);
    for &v in &x {
        sum_x2 += v * v;
    }
    let av_x = (sum_x2 / f32x8::splat(AFFINE_SUB as f32)).sqrt();
    let w = x.map(|v| av_x + v.abs());
    fit_affine_lanes(&x, &w, s, l)
}

/// The affine search on transposed sub-blocks: `x[i]` and `w[i]` hold value `i` of every lane.
fn fit_affine_lanes(
    x: &[f32x8; AFFINE_SUB],
    w: &[f32x8; AFFINE_SUB],
    s: AffineSearch,
    l: &mut [[u8; AFFINE_SUB]; LANES],
) -> ([f32; LANES], [f32; LANES]) {
    let zero = f32x8::splat(0.0);
    let nmax = s.nmax as f32;
    let (lo, hi) = (zero, f32x8::splat(nmax));

    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = w[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..AFFINE_SUB {
        min = x[i].cmp_lt(min).blend(x[i], min);
        max = x[i].cmp_gt(max).blend(x[i], max);
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    min = min.cmp_gt(zero).blend(zero, min);
    // Lanes where the scalar code returns early with `(0, −min)` and all-zero quants.
    let flat = max.cmp_eq(min);
    let flat_min = min;
    if flat.all() {
        *l = [[0; AFFINE_SUB]; LANES];
        return ([0.0; LANES], flat_min.to_array().map(|m| -m));
    }

    let mut iscale = f32x8::splat(nmax) / (max - min);
    let mut scale = f32x8::splat(1.0) / iscale;
    let mut best_error = zero;
    let mut best_l = [zero; AFFINE_SUB];
    // x − min, kept until `min` changes.
    let mut xm: [f32x8; AFFINE_SUB] = from_fn(|i| x[i] - min);
    for i in 0..AFFINE_SUB {
        let q = quant(iscale * xm[i], lo, hi);
        best_l[i] = q;
        let diff = scale * q + min - x[i];
        best_error += w[i] * (diff * diff);
    }

    let mut laux = [zero; AFFINE_SUB];
    for is in 0..=s.nstep as i32 {
        // `min` is per lane and changes as better fits are found, as in the scalar search.
        iscale = f32x8::splat(s.rmin + s.rdelta * is as f32 + nmax) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (zero, zero, zero);
        for i in 0..AFFINE_SUB {
            let q = quant(iscale * xm[i], lo, hi);
            laux[i] = q;
            let wl = w[i] * q;
            sum_l += wl;
            sum_l2 += wl * q;
            sum_xl += wl * x[i];
        }
        let det = sum_w * sum_l2 - sum_l * sum_l;
        let solvable = det.cmp_gt(zero);
        if solvable.none() {
            continue;
        }
        let this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
        let this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
        let positive = this_min.cmp_gt(zero);
        let this_min = positive.blend(zero, this_min);
        let this_scale = positive.blend(sum_xl / sum_l2, this_scale);
        let mut cur_error = zero;
        for i in 0..AFFINE_SUB {
            let diff = this_scale * laux[i] + this_min - x[i];
            cur_error += w[i] * (diff * diff);
        }
        let better = solvable & cur_error.cmp_lt(best_error);
        // Later grids rarely improve on earlier ones: skip the selects when no lane does.
        if better.any() {
            for (b, &q) in best_l.iter_mut().zip(&laux) {
                *b = better.blend(q, *b);
            }
            best_error = better.blend(cur_error, best_error);
            scale = better.blend(this_scale, scale);
            min = better.blend(this_min, min);
            xm = from_fn(|i| x[i] - min);
        }
    }

    let (scale, min, flat_min) = (scale.to_array(), min.to_array(), flat_min.to_array());
    let best_l = best_l.map(f32x8::to_array);
    let mut scales = [0.0; LANES];
    let mut mins = [0.0; LANES];
    for (k, lk) in l.iter_mut().enumerate() {
        if lane(flat, k) {
            lk.fill(0);
            mins[k] = -flat_min[k];
        } else {
            for (q, b) in lk.iter_mut().zip(&best_l) {
                *q = b[k] as u8; // in 0..=nmax
            }
            scales[k] = scale[k];
            mins[k] = -min[k];
        }
    }
    (scales, mins)
}

/// [`fit_symmetric`](super::kquant_search::fit_symmetric) for eight sub-blocks: lane `k` fits
/// `x[k]` and writes its biased quants to `l[k]`. Returns each sub-block's scale.
pub fn fit_symmetric_x8(
    x: &[[f32; SYMMETRIC_SUB]; LANES],
    nmax: i32,
    l: &mut [[u8; SYMMETRIC_SUB]; LANES],
) -> [f32; LANES] {
    let x = transpose(x); // [SYMMETRIC_SUB] vectors of [LANES]
    let zero = f32x8::splat(0.0);
    let mut max = zero;
    let mut amax = zero;
    for &v in &x {
        let av = v.abs();
        let larger = av.cmp_gt(amax);
        amax = larger.blend(av, amax);
        max = larger.blend(v, max);
    }
    // Lanes where the scalar code returns early with scale 0 and all-zero quants.
    let empty = amax.cmp_lt(f32x8::splat(GROUP_MAX_EPS));
    if empty.all() {
        *l = [[0; SYMMETRIC_SUB]; LANES];
        return [0.0; LANES];
    }

    let (lo, hi) = (
        f32x8::splat((-nmax) as f32),
        f32x8::splat((nmax - 1) as f32),
    );
    // The weights w = x² and the products w·x, the same for every grid.
    let w: [f32x8; SYMMETRIC_SUB] = x.map(|v| v * v);
    let wx: [f32x8; SYMMETRIC_SUB] = from_fn(|i| w[i] * x[i]);
    // Σ w·x·l and Σ w·l² for the quants that `iscale` gives (written to `q`).
    let sums = |iscale: f32x8, q: &mut [f32x8; SYMMETRIC_SUB]| {
        let (mut sumlx, mut suml2) = (zero, zero);
        for i in 0..SYMMETRIC_SUB {
            q[i] = quant(iscale * x[i], lo, hi);
            sumlx += wx[i] * q[i];
            suml2 += w[i] * q[i] * q[i];
        }
        (sumlx, suml2)
    };

    let mut best_q = [zero; SYMMETRIC_SUB];
    let (sumlx, suml2) = sums(f32x8::splat(-(nmax as f32)) / max, &mut best_q);
    let nonzero = !suml2.cmp_eq(zero);
    let mut scale = nonzero.blend(sumlx / suml2, zero);
    let mut best = scale * sumlx;
    let mut q = [zero; SYMMETRIC_SUB];
    for is in -9..=9 {
        if is == 0 {
            continue;
        }
        let iscale = f32x8::splat(-(nmax as f32 + 0.1 * is as f32)) / max;
        let (sumlx, suml2) = sums(iscale, &mut q);
        let better = suml2.cmp_gt(zero) & (sumlx * sumlx).cmp_gt(best * suml2);
        if better.any() {
            for (b, &v) in best_q.iter_mut().zip(&q) {
                *b = better.blend(v, *b);
            }
            let this_scale = sumlx / suml2;
            scale = better.blend(this_scale, scale);
            best = better.blend(this_scale * sumlx, best);
        }
    }

    let scale = scale.to_array();
    let best_q = best_q.map(f32x8::to_array);
    let mut scales = [0.0; LANES];
    for (k, lk) in l.iter_mut().enumerate() {
        if lane(empty, k) {
            lk.fill(0);
        } else {
            for (q, b) in lk.iter_mut().zip(&best_q) {
                *q = (b[k] as i32 + nmax) as u8; // in 0..2·nmax
            }
            scales[k] = scale[k];
        }
    }
    scales
}
