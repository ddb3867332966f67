//! The scalar K-quant code against independent references: the dots against dequantized values
//! multiplied in f64, the Q8_K quantizer against its rounding bound, block geometry against
//! ggml's type table, and quantizers fed hostile values.

mod quant_kquant_data;

use quant_kquant_data::{activations, block_counts, weights, zeroed, Rng, TestBlock, KINDS};
use tandem::quant::{
    quantize_q8_k_scalar, Block, BlockQ4_K, BlockQ5_K, BlockQ6_K, BlockQ8_K, Quantize, QK_K,
};

fn dequantized<B: Quantize>(b: &[B]) -> Vec<f32> {
    let mut out = vec![0.0; b.len() * QK_K];
    B::dequantize(b, &mut out);
    out
}

/// `dot_scalar(w, x)` against `Σ dequantize(w)·dequantize(x)` computed in f64.
///
/// Tolerance `(nb + 16)·u·M` (u = 2⁻²⁴, M from `TestBlock::magnitude`): the dequantized weights
/// carry at most 3 roundings (`d·sc`, `·q`, `− dmin·m`) and the activations 1, against M; the
/// scalar dot rounds each block's two scale products, two int→f32 conversions and a difference,
/// then adds nb block terms in sequence.
fn check_dot<W: TestBlock>(seed: u64) {
    let mut rng = Rng::new(seed);
    for nb in block_counts() {
        for wk in KINDS {
            for xk in KINDS {
                let w: Vec<W> = weights(&mut rng, nb, wk);
                let x = activations(&mut rng, nb, xk);
                let reference: f64 = dequantized(&w)
                    .iter()
                    .zip(&dequantized(&x))
                    .map(|(&a, &b)| a as f64 * b as f64)
                    .sum();
                let got = W::dot_scalar(&w, &x) as f64;
                let tol = (nb + 16) as f64 * (f32::EPSILON as f64 / 2.0) * W::magnitude(&w, &x);
                assert!(
                    (got - reference).abs() <= tol,
                    "{}: {nb} blocks, {wk:?}/{xk:?}: {got} vs f64 reference {reference} (tolerance {tol})",
                    W::TYPE
                );
            }
        }
    }
}

#[test]
fn q4_k_dot_matches_dequantized_f64() {
    check_dot::<BlockQ4_K>(21);
}

#[test]
fn q5_k_dot_matches_dequantized_f64() {
    check_dot::<BlockQ5_K>(22);
}

#[test]
fn q6_k_dot_matches_dequantized_f64() {
    check_dot::<BlockQ6_K>(23);
}

/// Q8_K rounds to nearest: every value comes back within half a step `|d|/2` (plus the f32
/// rounding of `x·iscale` and of `d·q`, a few ulps of |x|), the largest magnitude maps to ∓127,
/// and `bsums` are the group sums.
#[test]
fn q8_k_round_trip_within_half_a_step() {
    let mut rng = Rng::new(31);
    let src: Vec<f32> = (0..64 * QK_K)
        .map(|_| rng.normal() * 10f32.powi((rng.next_u64() % 9) as i32 - 4))
        .collect();
    let mut q = vec![zeroed::<BlockQ8_K>(); 64];
    quantize_q8_k_scalar(&src, &mut q);
    let back = dequantized(&q);
    for (b, (xs, ys)) in q
        .iter()
        .zip(src.chunks_exact(QK_K).zip(back.chunks_exact(QK_K)))
    {
        for (&x, &y) in xs.iter().zip(ys) {
            let bound = b.d.abs() / 2.0 + 4.0 * f32::EPSILON * x.abs();
            assert!((x - y).abs() <= bound, "{x} came back as {y} (d = {})", b.d);
        }
        let amax = xs.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let first = xs.iter().position(|v| v.abs() == amax).unwrap();
        assert_eq!(b.qs[first], -127);
        for (s, g) in b.bsums.iter().zip(b.qs.chunks_exact(16)) {
            assert_eq!(*s as i32, g.iter().map(|&q| q as i32).sum::<i32>());
        }
    }
}

/// Each block's size and value count agree with ggml's type table.
#[test]
fn block_geometry_matches_ggml() {
    fn check<B: Block>() {
        assert_eq!(B::VALUES, B::TYPE.block_values(), "{}", B::TYPE);
        assert_eq!(
            std::mem::size_of::<B>(),
            B::TYPE.block_bytes(),
            "{}",
            B::TYPE
        );
    }
    check::<BlockQ4_K>();
    check::<BlockQ5_K>();
    check::<BlockQ6_K>();
    check::<BlockQ8_K>();
}

/// Quantizers never panic on hostile values (NaN, infinities, huge, subnormal), zeros come back
/// as zeros, and finite moderate inputs give finite values back.
#[test]
fn quantizers_survive_hostile_input() {
    fn check<B: Quantize>() {
        let name = B::TYPE;
        let cases: Vec<(&str, Vec<f32>)> = vec![
            ("zeros", vec![0.0; QK_K]),
            ("negative zeros", vec![-0.0; QK_K]),
            ("NaN", vec![f32::NAN; QK_K]),
            (
                "inf",
                (0..QK_K)
                    .map(|i| if i % 2 == 0 { f32::INFINITY } else { -1.0 })
                    .collect(),
            ),
            (
                "huge",
                (0..QK_K)
                    .map(|i| if i % 3 == 0 { 3e38 } else { -3e38 })
                    .collect(),
            ),
            ("subnormal", (0..QK_K).map(|i| i as f32 * 1e-42).collect()),
            ("constant", vec![-2.5; QK_K]),
            (
                "one spike",
                (0..QK_K).map(|i| if i == 77 { 1.0 } else { 0.0 }).collect(),
            ),
        ];
        for (what, src) in cases {
            let mut out = vec![zeroed::<B>(); 1];
            B::quantize(&src, &mut out);
            let back = dequantized(&out);
            if what.contains("zeros") {
                assert!(back.iter().all(|&v| v == 0.0), "{name} {what}");
            }
            if matches!(what, "constant" | "one spike") {
                assert!(back.iter().all(|v| v.is_finite()), "{name} {what}");
                let err = src
                    .iter()
                    .zip(&back)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f32::max);
                assert!(err < 0.1, "{name} {what}: max error {err}");
            }
        }
    }
    check::<BlockQ4_K>();
    check::<BlockQ5_K>();
    check::<BlockQ6_K>();
    check::<BlockQ8_K>();
}
