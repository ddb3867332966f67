//! Element-wise and row-wise operations of the transformer block, on f32 rows.
//!
//! These are a small share of decode time next to the matmuls; they are written so the compiler
//! vectorises them (no SIMD intrinsics needed), and each is checked in tests against its formula.

/// `out = x / sqrt(mean(x²) + eps) * weight`, one row. `x`, `weight`, `out`: `[dim]`.
pub fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    debug_assert_eq!(x.len(), weight.len());
    // Accumulate in f64: the mean of squares of a 4096-wide residual loses ~3 digits in f32.
    let ss: f64 = x.iter().map(|&v| v as f64 * v as f64).sum();
    let scale = (1.0 / (ss / x.len() as f64 + eps as f64).sqrt()) as f32;
    for ((o, &v), &w) in out.iter_mut().zip(x).zip(weight) {
        *o = v * scale * w;
    }
}

/// Rotary position embedding in ggml's "normal" layout: adjacent pairs `(2i, 2i+1)` of each head
/// are rotated by the angles in `cos_sin` (from [`rope_cos_sin`]); only the first
/// `2 * cos_sin.len()` values of each head rotate. `x: [n_heads, head_dim]`.
pub fn rope(x: &mut [f32], head_dim: usize, cos_sin: &[(f32, f32)]) {
    for head in x.chunks_exact_mut(head_dim) {
        for (pair, &(cos, sin)) in head.chunks_exact_mut(2).zip(cos_sin) {
            let (a, b) = (pair[0], pair[1]);
            pair[0] = a * cos - b * sin;
            pair[1] = a * sin + b * cos;
        }
    }
}

/// `(cos, sin)` of the angles `pos * theta^(-2i / n_rot)` for `i < n_rot / 2`: computed once per
/// position and shared by every head and layer. Angles are formed in f64, since at position 30k
/// an f32 product would lose the low bits.
/// `out: [n_rot / 2]`.
pub fn rope_cos_sin(pos: usize, n_rot: usize, theta: f32, out: &mut [(f32, f32)]) {
    assert_eq!(
        out.len(),
        n_rot / 2,
        "rope_cos_sin: out must be [n_rot / 2]"
    );
    for (i, cs) in out.iter_mut().enumerate() {
        let freq = (theta as f64).powf(-2.0 * i as f64 / n_rot as f64);
        let (sin, cos) = (pos as f64 * freq).sin_cos();
        *cs = (cos as f32, sin as f32);
    }
}

/// In-place softmax of one row.
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f64;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += *v as f64;
    }
    let inv = (1.0 / sum) as f32;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// SwiGLU: `gate = silu(gate) * up`, in place on `gate`.
pub fn swiglu(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + (-*g).exp()) * u;
    }
}

/// `acc += x * scale`.
pub fn add_scaled(acc: &mut [f32], x: &[f32], scale: f32) {
    for (a, &v) in acc.iter_mut().zip(x) {
        *a += v * scale;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rms_norm_matches_formula() {
        let x = [1.0f32, -2.0, 3.0, 0.5];
        let w = [1.0f32, 0.5, 2.0, -1.0];
        let mut out = [0.0; 4];
        rms_norm(&x, &w, 1e-5, &mut out);
        let rms = ((1.0 + 4.0 + 9.0 + 0.25) / 4.0 + 1e-5f64).sqrt();
        for i in 0..4 {
            let want = x[i] as f64 / rms * w[i] as f64;
            assert!((out[i] as f64 - want).abs() < 1e-6, "{i}");
        }
    }

    #[test]
    fn rope_rotates_adjacent_pairs() {
        // head_dim 4, both pairs rotate: pair 0 at pos*1, pair 1 at pos*theta^-0.5.
        let mut x = [1.0f32, 0.0, 0.0, 1.0];
        let mut cs = [(0.0, 0.0); 2];
        rope_cos_sin(3, 4, 100.0, &mut cs);
        rope(&mut x, 4, &cs);
        let (a0, a1) = (3.0f64, 3.0f64 / 10.0);
        let want = [a0.cos(), a0.sin(), -a1.sin(), a1.cos()];
        for i in 0..4 {
            assert!(
                (x[i] as f64 - want[i]).abs() < 1e-6,
                "{i}: {} vs {}",
                x[i],
                want[i]
            );
        }
        // Position 0 is the identity; values past n_rot are untouched.
        let mut y = [0.3f32, -0.7, 0.2, 0.9];
        let mut cs = [(0.0, 0.0); 1];
        rope_cos_sin(0, 2, 1e4, &mut cs);
        rope(&mut y, 4, &cs);
        assert_eq!(y, [0.3, -0.7, 0.2, 0.9]);
    }

    #[test]
    fn softmax_sums_to_one_and_is_shift_invariant() {
        let mut a = [1.0f32, 2.0, 3.0];
        let mut b = [1001.0f32, 1002.0, 1003.0];
        softmax(&mut a);
        softmax(&mut b);
        assert!((a.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        let e = [1.0f64.exp(), 2.0f64.exp(), 3.0f64.exp()];
        let s: f64 = e.iter().sum();
        for i in 0..3 {
            assert!((a[i] as f64 - e[i] / s).abs() < 1e-6);
            assert!((a[i] - b[i]).abs() < 1e-6);
        }
    }

    #[test]
    fn swiglu_matches_formula() {
        let mut g = [0.0f32, 1.0, -2.0];
        swiglu(&mut g, &[5.0, 2.0, 3.0]);
        let silu = |v: f64| v / (1.0 + (-v).exp());
        for (i, (gv, u)) in [(0.0, 5.0), (1.0, 2.0), (-2.0, 3.0)].iter().enumerate() {
            assert!((g[i] as f64 - silu(*gv) * u).abs() < 1e-6);
        }
    }
}
