//! The K-quant SIMD kernels against their scalar references, on every instruction set this CPU
//! has: the Q4_K / Q5_K / Q6_K · Q8_K dots, and the Q8_K activation quantizer (exact bytes).

mod common;

mod quant_kquant_data;

use quant_kquant_data::{
    activations, activations_f32, block_counts, weights, Kind, Rng, TestBlock, KINDS,
};
use tandem::quant::simd::kquant::q8_k_quantizer;
use tandem::quant::simd::{self, Isa, SimdDot};
use tandem::quant::{
    quantize_q8_k_scalar, BlockQ4_K, BlockQ5_K, BlockQ6_K, BlockQ8_K, DotWith, QK_K,
};

/// The SIMD instruction sets this CPU has (the scalar path is the reference, not a candidate).
fn simd_isas() -> Vec<Isa> {
    simd::available()
        .into_iter()
        .filter(|&i| i != Isa::Scalar)
        .collect()
}

/// Each kernel forms the same exact integer sums per block as the scalar reference and differs
/// only in how the f32 products and sums are ordered. Each result is within
/// `(3·nb + 32)·u·M` of the exact value, where u = 2⁻²⁴, nb is the block count and M bounds
/// every partial sum (`TestBlock::magnitude`): per block at most two rounded scale products, two
/// int→f32 conversions and two accumulating adds (fused or not) land in each lane, and the
/// final reduction of at most 16 lanes adds 4 more roundings. The two results therefore agree
/// within twice that.
fn check_dots<W: TestBlock>(seed: u64) {
    let isas = simd_isas();
    for &isa in &isas {
        assert!(
            W::kernel(isa).is_some(),
            "{}: no {} kernel",
            W::TYPE,
            isa.name()
        );
    }
    let mut rng = Rng::new(seed);
    let mut checked = 0;
    for nb in block_counts() {
        for wk in KINDS {
            for xk in KINDS {
                let w: Vec<W> = weights(&mut rng, nb, wk);
                let x = activations(&mut rng, nb, xk);
                let want = W::dot_scalar(&w, &x);
                let tol =
                    2.0 * (3 * nb + 32) as f64 * f32::EPSILON as f64 / 2.0 * W::magnitude(&w, &x);
                assert!(
                    want.is_finite(),
                    "{}: scalar dot not finite ({nb} blocks, {wk:?}/{xk:?})",
                    W::TYPE
                );
                for &isa in &isas {
                    let got = simd::dot_fn::<W>(isa)(&w, &x);
                    assert!(
                        (got as f64 - want as f64).abs() <= tol,
                        "{} {}: {nb} blocks, weights {wk:?}, activations {xk:?}: {got} vs scalar {want} (tolerance {tol})",
                        W::TYPE,
                        isa.name()
                    );
                    checked += 1;
                }
            }
        }
    }
    eprintln!("{}: {checked} kernel results checked", W::TYPE);
}

/// The multi-row dots (one weight row against 1..=4 activation rows) give, for each row, exactly
/// the one-row kernel's result: same integer sums, same f32 operations in the same order.
fn check_multi<W: TestBlock>(seed: u64) {
    let mut rng = Rng::new(seed);
    let mut checked = 0;
    for isa in simd::available() {
        let Some(multi) = W::multi(isa) else {
            continue;
        };
        let single = simd::dot_fn::<W>(isa);
        for nb in block_counts() {
            for wk in KINDS {
                let w: Vec<W> = weights(&mut rng, nb, wk);
                let xs: Vec<Vec<BlockQ8_K>> = (0..simd::MULTI_ACTS)
                    .map(|i| activations(&mut rng, nb, KINDS[i % KINDS.len()]))
                    .collect();
                for n in 1..=simd::MULTI_ACTS {
                    let refs: Vec<&[BlockQ8_K]> = xs[..n].iter().map(|x| x.as_slice()).collect();
                    let mut got = vec![f32::NAN; n];
                    multi(&w, &refs, &mut got);
                    for (t, (&g, x)) in got.iter().zip(&xs).enumerate() {
                        let want = single(&w, x);
                        assert_eq!(
                            g.to_bits(),
                            want.to_bits(),
                            "{} {} multi, {nb} blocks, {n} rows, row {t}: {g} vs one-row {want}",
                            W::TYPE,
                            isa.name()
                        );
                        checked += 1;
                    }
                }
            }
        }
    }
    eprintln!("{}: {checked} multi-row results checked", W::TYPE);
    if simd::available().contains(&Isa::Avx512) {
        assert!(checked > 0, "{}: AVX-512 has no multi-row dot", W::TYPE);
    }
}

#[test]
fn multi_row_dots_equal_one_row_dots() {
    common::isa::tested("multi_row_dots_equal_one_row_dots");
    check_multi::<BlockQ4_K>(11);
    check_multi::<BlockQ5_K>(12);
    check_multi::<BlockQ6_K>(13);
}

#[test]
fn multi_row_dots_reject_bad_calls() {
    common::isa::tested("multi_row_dots_reject_bad_calls");
    for isa in simd::available() {
        let Some(multi) = BlockQ4_K::multi(isa) else {
            continue;
        };
        let w = vec![bytemuck::Zeroable::zeroed(); 2];
        let x: Vec<BlockQ8_K> = vec![bytemuck::Zeroable::zeroed(); 2];
        let short: Vec<BlockQ8_K> = vec![bytemuck::Zeroable::zeroed(); 1];
        let five: Vec<&[BlockQ8_K]> = vec![&x; 5];
        for (what, xs, n) in [
            ("no rows", Vec::new(), 0),
            ("five rows", five, 5),
            ("a short row", vec![&x[..], &short[..]], 2),
        ] {
            let r = std::panic::catch_unwind(|| multi(&w, &xs, &mut vec![0.0; n]));
            assert!(r.is_err(), "{}: no panic on {what}", isa.name());
        }
    }
}

#[test]
fn q4_k_kernels_match_scalar() {
    common::isa::tested("q4_k_kernels_match_scalar");
    check_dots::<BlockQ4_K>(1);
}

#[test]
fn q5_k_kernels_match_scalar() {
    common::isa::tested("q5_k_kernels_match_scalar");
    check_dots::<BlockQ5_K>(2);
}

#[test]
fn q6_k_kernels_match_scalar() {
    common::isa::tested("q6_k_kernels_match_scalar");
    check_dots::<BlockQ6_K>(3);
}

/// With d = dy = 1, small scales and small quants, every f32 operation in every kernel is exact
/// (all partial sums stay below 2²⁴), so kernels and scalar must agree to the bit: a check that
/// needs no tolerance.
#[test]
fn kernels_exact_on_small_integers() {
    common::isa::tested("kernels_exact_on_small_integers");
    fn check<W: TestBlock>(shrink: impl Fn(&mut W)) {
        let mut rng = Rng::new(7);
        for nb in block_counts() {
            let mut w: Vec<W> = weights(&mut rng, nb, Kind::RandomBits);
            w.iter_mut().for_each(&shrink);
            let mut x = activations(&mut rng, nb, Kind::RandomBits);
            for b in &mut x {
                b.d = 1.0;
                b.qs.iter_mut().for_each(|q| *q &= 0x0F);
                for (s, g) in b.bsums.iter_mut().zip(b.qs.chunks_exact(16)) {
                    *s = g.iter().map(|&q| q as i16).sum();
                }
            }
            // The premise: every partial sum is an integer below 2²⁴, so exact in f32.
            let magnitude = W::magnitude(&w, &x);
            assert!(
                magnitude < (1 << 24) as f64,
                "{}: {nb} blocks reach {magnitude}, not exact in f32",
                W::TYPE
            );
            let want = W::dot_scalar(&w, &x);
            for isa in simd::available() {
                let got = simd::dot_fn::<W>(isa)(&w, &x);
                assert_eq!(got, want, "{} {}: {nb} blocks", W::TYPE, isa.name());
            }
        }
    }
    // Activations in 0..16. Q4_K/Q5_K: the 12 packed bytes hold the low 6 bits of scales and
    // mins 0..4 in bytes 0..8 (bit 0 kept: 0 or 1; bits 4 and 6..8 would give 16, 17 and the
    // high bits of 4..8) and the low nibbles of scales and mins 4..8 in bytes 8..12 (0x11: 0 or
    // 1 each). Quants ≤ 3 (+16 for Q5_K's fifth bit, so ≤ 19): at most 256·19·15 + 256·15 <
    // 2¹⁷ per block. Q6_K: quants 32..34 stored (≤ 34 unbiased), scales −1..=1: under 2¹⁸ per
    // block. At most 56 blocks: under 2²⁴ in every partial sum (asserted above).
    let one = half::f16::ONE;
    let small_scales = |scales: &mut [u8; 12]| {
        scales[..8].iter_mut().for_each(|s| *s &= 0x01);
        scales[8..].iter_mut().for_each(|s| *s &= 0x11);
    };
    check::<BlockQ4_K>(|b| {
        (b.d, b.dmin) = (one, one);
        small_scales(&mut b.scales);
        b.qs.iter_mut().for_each(|q| *q &= 0x33);
    });
    check::<BlockQ5_K>(|b| {
        (b.d, b.dmin) = (one, one);
        small_scales(&mut b.scales);
        b.qs.iter_mut().for_each(|q| *q &= 0x33);
    });
    check::<BlockQ6_K>(|b| {
        b.d = one;
        b.ql.iter_mut().for_each(|q| *q &= 0x11);
        b.qh = [0xAA; QK_K / 4];
        b.scales.iter_mut().for_each(|s| *s %= 2);
    });
}

/// Every Q8_K quantizer writes exactly the scalar reference's bytes.
#[test]
fn q8_k_quantizers_match_scalar() {
    common::isa::tested("q8_k_quantizers_match_scalar");
    let isas = simd_isas();
    let mut rng = Rng::new(11);
    let special: [fn(&mut Rng, usize) -> Vec<f32>; 8] = [
        // Realistic activations with outliers.
        |r, n| activations_f32(r, n),
        // Uniform in ±1e-3 (small values), and values at every power of two up to 2^60.
        |r, n| (0..n).map(|_| (r.uniform() - 0.5) * 2e-3).collect(),
        |r, n| {
            (0..n)
                .map(|i| {
                    (i % 61) as f32
                        * if r.next_u64() & 1 == 0 {
                            2f32.powi(i as i32 % 61)
                        } else {
                            -1.0
                        }
                })
                .collect()
        },
        // Ties for the largest magnitude with both signs, the negative one first or second.
        |r, n| {
            let mut v: Vec<f32> = (0..n).map(|_| r.normal()).collect();
            for b in v.chunks_exact_mut(QK_K) {
                let (i, j) = ((r.next_u64() % 256) as usize, (r.next_u64() % 256) as usize);
                let s = if r.next_u64() & 1 == 0 { 1.0 } else { -1.0 };
                b[i] = 9.0 * s;
                b[j] = -9.0 * s;
            }
            v
        },
        // Zeros, negative zeros and single non-zero values.
        |r, n| {
            (0..n)
                .map(|i| match (i / QK_K) % 3 {
                    0 => 0.0,
                    1 => -0.0,
                    _ => {
                        if i % QK_K == (r.next_u64() % 256) as usize {
                            3.5
                        } else {
                            0.0
                        }
                    }
                })
                .collect()
        },
        // Exact halves of the quantization grid: x·iscale lands on k + 0.5 (ties to even).
        |r, n| {
            (0..n)
                .map(|i| {
                    if i % QK_K == 0 {
                        -127.0
                    } else {
                        (r.next_u64() % 255) as f32 - 127.0 + 0.5
                    }
                })
                .collect()
        },
        // Subnormals and huge values.
        |r, n| {
            (0..n)
                .map(|i| {
                    if i % 2 == 0 {
                        r.normal() * 1e-40
                    } else {
                        r.normal() * 1e37
                    }
                })
                .collect()
        },
        // Hostile: NaN and infinities mixed in.
        |r, n| {
            (0..n)
                .map(|_| match r.next_u64() % 16 {
                    0 => f32::NAN,
                    1 => f32::INFINITY,
                    2 => f32::NEG_INFINITY,
                    _ => r.normal(),
                })
                .collect()
        },
    ];
    let mut checked = 0;
    for nb in block_counts() {
        for (case, make) in special.iter().enumerate() {
            let src = make(&mut rng, nb * QK_K);
            let mut want = vec![
                BlockQ8_K {
                    d: 0.0,
                    qs: [0; QK_K],
                    bsums: [0; 16]
                };
                nb
            ];
            quantize_q8_k_scalar(&src, &mut want);
            for &isa in &isas {
                // Start from garbage so that every byte must be written.
                let mut got = vec![
                    BlockQ8_K {
                        d: 7.0,
                        qs: [5; QK_K],
                        bsums: [3; 16]
                    };
                    nb
                ];
                q8_k_quantizer(isa)(&src, &mut got);
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        bytemuck::bytes_of(g) == bytemuck::bytes_of(w),
                        "{}: case {case}, {nb} blocks, block {i}: {g:?} vs {w:?}",
                        isa.name()
                    );
                }
                checked += 1;
            }
        }
    }
    eprintln!("Q8_K: {checked} quantizer results checked");
}

/// The Q8_K quantizer the matmul picks for this CPU gives the reference's bytes.
#[test]
fn detected_q8_k_quantizer_is_the_reference() {
    common::isa::tested("detected_q8_k_quantizer_is_the_reference");
    let mut rng = Rng::new(5);
    let src = activations_f32(&mut rng, 16 * QK_K);
    let mut a = vec![quant_kquant_data::zeroed::<BlockQ8_K>(); 16];
    let mut b = a.clone();
    <BlockQ8_K as simd::SimdQuantize>::quantizer(simd::detected())(&src, &mut a);
    quantize_q8_k_scalar(&src, &mut b);
    assert!(bytemuck::cast_slice::<_, u8>(&a) == bytemuck::cast_slice::<_, u8>(&b));
    // And a dot through the default dispatch agrees with the scalar reference.
    let w: Vec<BlockQ4_K> = weights(&mut rng, 16, Kind::Realistic);
    let got = simd::dot_fn::<BlockQ4_K>(simd::detected())(&w, &a);
    let want = BlockQ4_K::dot_scalar(&w, &a);
    assert!(
        (got - want).abs() <= 1e-4 * want.abs().max(1.0),
        "{got} vs {want}"
    );
}
