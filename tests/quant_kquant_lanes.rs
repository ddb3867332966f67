//! The lane-parallel K-quant scale searches (`fit_affine_x8`, `fit_symmetric_x8`) against the
//! scalar references (`fit_affine`, `fit_symmetric`), bit for bit: every scale, every min and
//! every quant, on sub-blocks of many kinds mixed within one call (so lanes that return early sit
//! beside lanes that search), and the whole quantizers' bytes with either search.

mod quant_kquant_data;

use quant_kquant_data::Rng;
use tandem::quant::{
    fit_affine, fit_affine_x8, fit_symmetric, fit_symmetric_x8, AffineSearch, BlockQ4_K, BlockQ5_K,
    BlockQ6_K, ScaleSearch, AFFINE_SUB, QK_K, SYMMETRIC_SUB,
};

/// Sub-blocks per lane-parallel call.
const LANES: usize = 8;

/// Q6_K's `nmax` (its quants are `l − 32`).
const Q6_K_NMAX: i32 = 32;

/// The kinds of sub-block drawn.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// N(0, σ) with σ from 1e-8 to 1e8.
    Normal,
    /// Uniform in [−a, a].
    Uniform,
    /// Cauchy: most values small, a few very large.
    HeavyTailed,
    /// Magnitudes around 1e-30 (their squares underflow to subnormals or zero).
    Tiny,
    /// Magnitudes around 1e30 (their squares overflow to infinity).
    Huge,
    /// One value repeated (max == min: the scalar searches return early).
    Constant,
    /// All values in [0.1, 2].
    AllPositive,
    /// All values in [−2, −0.1].
    AllNegative,
    /// +0.0 and −0.0 only.
    Zeros,
    /// Multiples of 0.25 with the range chosen so the first grid's `iscale` is exactly 2: about
    /// half of the products `iscale·x` fall on ties of `nearest_int`.
    Ties,
    /// Subnormal values.
    Subnormal,
    /// Mostly normal values with infinities and NaNs mixed in.
    NonFinite,
    /// Small normal values and one large outlier.
    Outlier,
}

const KINDS: [Kind; 13] = [
    Kind::Normal,
    Kind::Uniform,
    Kind::HeavyTailed,
    Kind::Tiny,
    Kind::Huge,
    Kind::Constant,
    Kind::AllPositive,
    Kind::AllNegative,
    Kind::Zeros,
    Kind::Ties,
    Kind::Subnormal,
    Kind::NonFinite,
    Kind::Outlier,
];

fn pick<T: Copy>(rng: &mut Rng, items: &[T]) -> T {
    items[(rng.next_u64() % items.len() as u64) as usize]
}

fn sign(rng: &mut Rng) -> f32 {
    if rng.next_u64() & 1 == 0 {
        1.0
    } else {
        -1.0
    }
}

/// `N` values of `kind`. `nmax` (the format's largest quant magnitude) sets the tie grid, and
/// `negative_ties` mirrors it for the symmetric search, whose first grid maps the largest
/// magnitude (made negative here) to −nmax.
fn sub_block<const N: usize>(
    rng: &mut Rng,
    kind: Kind,
    nmax: i32,
    negative_ties: bool,
) -> [f32; N] {
    let mut x = [0.0f32; N];
    match kind {
        Kind::Normal => {
            let sigma = 10f32.powf(16.0 * rng.uniform() - 8.0);
            x.iter_mut().for_each(|v| *v = sigma * rng.normal());
        }
        Kind::Uniform => {
            let a = 10f32.powf(4.0 * rng.uniform() - 2.0);
            x.iter_mut()
                .for_each(|v| *v = a * (2.0 * rng.uniform() - 1.0));
        }
        Kind::HeavyTailed => x
            .iter_mut()
            .for_each(|v| *v = (std::f32::consts::PI * (rng.uniform() - 0.5)).tan()),
        Kind::Tiny => x.iter_mut().for_each(|v| *v = 1e-30 * rng.normal()),
        Kind::Huge => x.iter_mut().for_each(|v| *v = 1e30 * rng.normal()),
        Kind::Constant => {
            let c = pick(rng, &[0.0, 1.0, -1.0, 0.37, -5e-3, 1e-20, -1e20]) * rng.uniform();
            x.fill(c);
        }
        Kind::AllPositive => x.iter_mut().for_each(|v| *v = 0.1 + 1.9 * rng.uniform()),
        Kind::AllNegative => x.iter_mut().for_each(|v| *v = -0.1 - 1.9 * rng.uniform()),
        Kind::Zeros => x.iter_mut().for_each(|v| *v = sign(rng) * 0.0),
        Kind::Ties => {
            let n = nmax as u64;
            if negative_ties {
                // k/4 − nmax/2 for k in 0..4·nmax, with −nmax/2 (the largest magnitude) present:
                // iscale = −nmax / (−nmax/2) = 2.
                x.iter_mut().for_each(|v| {
                    *v = (rng.next_u64() % (4 * n)) as f32 * 0.25 - nmax as f32 * 0.5
                });
                x[rng.next_u64() as usize % N] = -(nmax as f32) * 0.5;
            } else {
                // k/4 for k in 0..=2·nmax, with 0 and nmax/2 present: iscale = nmax / (nmax/2) = 2.
                x.iter_mut()
                    .for_each(|v| *v = (rng.next_u64() % (2 * n + 1)) as f32 * 0.25);
                x[0] = 0.0;
                x[N - 1] = nmax as f32 * 0.5;
            }
        }
        Kind::Subnormal => x
            .iter_mut()
            .for_each(|v| *v = f32::from_bits((rng.next_u64() as u32) & 0x807f_ffff)),
        Kind::NonFinite => {
            for v in x.iter_mut() {
                *v = match rng.next_u64() % 8 {
                    0 => f32::NAN,
                    1 => f32::INFINITY,
                    2 => f32::NEG_INFINITY,
                    _ => rng.normal(),
                };
            }
        }
        Kind::Outlier => {
            x.iter_mut().for_each(|v| *v = 0.01 * rng.normal());
            x[rng.next_u64() as usize % N] = sign(rng) * 10f32.powf(3.0 * rng.uniform());
        }
    }
    x
}

/// Eight sub-blocks: all of one kind, or each of a random kind.
fn sub_blocks<const N: usize>(rng: &mut Rng, nmax: i32, negative_ties: bool) -> [[f32; N]; LANES] {
    let same = rng.next_u64().is_multiple_of(4);
    let first = pick(rng, &KINDS);
    std::array::from_fn(|_| {
        let kind = if same { first } else { pick(rng, &KINDS) };
        sub_block(rng, kind, nmax, negative_ties)
    })
}

/// ggml's weights for Q4_K / Q5_K: the sub-block's rms plus each value's magnitude.
fn ggml_weights(x: &[f32; AFFINE_SUB]) -> [f32; AFFINE_SUB] {
    let mut sum_x2 = 0.0f32;
    for &v in x {
        sum_x2 += v * v;
    }
    let av_x = (sum_x2 / AFFINE_SUB as f32).sqrt();
    std::array::from_fn(|i| av_x + x[i].abs())
}

/// Weights for one sub-block: ggml's, or others that reach other branches of the search (all
/// equal; random; some zero, which can make the least-squares determinant zero; all zero).
fn weights(rng: &mut Rng, x: &[f32; AFFINE_SUB]) -> [f32; AFFINE_SUB] {
    match rng.next_u64() % 6 {
        0 | 1 => ggml_weights(x),
        2 => [1.0; AFFINE_SUB],
        3 => std::array::from_fn(|_| 2.0 * rng.uniform()),
        4 => std::array::from_fn(|_| pick(rng, &[0.0, 0.0, 1.0, 0.5])),
        _ => [0.0; AFFINE_SUB],
    }
}

/// Bitwise equality, except that any two NaNs are equal: a NaN's sign and payload depend on
/// which operand of a commutative add or mul the compiler puts first, which is not part of the
/// arithmetic being reproduced (and no NaN scale survives into a file: the quantizers' `>`
/// comparisons skip it).
fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn check_affine(search: AffineSearch, seed: u64) {
    let mut rng = Rng::new(seed);
    for call in 0..20_000 {
        let x: [[f32; AFFINE_SUB]; LANES] = sub_blocks(&mut rng, search.nmax as i32, false);
        let w: [[f32; AFFINE_SUB]; LANES] = std::array::from_fn(|k| weights(&mut rng, &x[k]));
        let mut l = [[0xAAu8; AFFINE_SUB]; LANES];
        let (scales, mins) = fit_affine_x8(&x, &w, search, &mut l);
        for k in 0..LANES {
            let mut want_l = [0x55u8; AFFINE_SUB];
            let (scale, min) = fit_affine(&x[k], &w[k], search, &mut want_l);
            let ctx = || {
                format!(
                    "{search:?}, call {call}, lane {k}: x {:?}, w {:?}",
                    x[k], w[k]
                )
            };
            assert!(
                same(scales[k], scale),
                "scale {} vs scalar {scale}; {}",
                scales[k],
                ctx()
            );
            assert!(
                same(mins[k], min),
                "min {} vs scalar {min}; {}",
                mins[k],
                ctx()
            );
            assert_eq!(l[k], want_l, "quants; {}", ctx());
        }
    }
}

#[test]
fn fit_affine_x8_matches_scalar_q4_k() {
    check_affine(BlockQ4_K::SEARCH, 1);
}

#[test]
fn fit_affine_x8_matches_scalar_q5_k() {
    check_affine(BlockQ5_K::SEARCH, 2);
}

#[test]
fn fit_symmetric_x8_matches_scalar_q6_k() {
    let mut rng = Rng::new(3);
    for call in 0..40_000 {
        let x: [[f32; SYMMETRIC_SUB]; LANES] = sub_blocks(&mut rng, Q6_K_NMAX, true);
        let mut l = [[0xAAu8; SYMMETRIC_SUB]; LANES];
        let scales = fit_symmetric_x8(&x, Q6_K_NMAX, &mut l);
        for k in 0..LANES {
            let mut want_l = [0x55u8; SYMMETRIC_SUB];
            let scale = fit_symmetric(&x[k], Q6_K_NMAX, &mut want_l);
            let ctx = || format!("call {call}, lane {k}: x {:?}", x[k]);
            assert!(
                same(scales[k], scale),
                "scale {} vs scalar {scale}; {}",
                scales[k],
                ctx()
            );
            assert_eq!(l[k], want_l, "quants; {}", ctx());
        }
    }
}

/// Rows of 1 to 5 super-blocks, each made of sub-blocks of mixed kinds (32 values per kind, so
/// Q6_K's 16-value sub-blocks see each kind twice).
fn rows(seed: u64) -> impl Iterator<Item = Vec<f32>> {
    let mut rng = Rng::new(seed);
    (0..3000).map(move |_| {
        let blocks = 1 + (rng.next_u64() % 5) as usize;
        let mut row = Vec::with_capacity(blocks * QK_K);
        for _ in 0..blocks {
            let subs: [[f32; AFFINE_SUB]; LANES] = sub_blocks(&mut rng, 15, false);
            row.extend(subs.iter().flatten());
        }
        row
    })
}

/// Quantizes `row` with both searches and compares the bytes.
fn check_quantizer<B: bytemuck::Pod>(
    name: &str,
    seed: u64,
    quantize: fn(&[f32], &mut [B], ScaleSearch),
) {
    for (n, row) in rows(seed).enumerate() {
        let zero = <B as bytemuck::Zeroable>::zeroed();
        let mut want = vec![zero; row.len() / QK_K];
        let mut got = vec![zero; row.len() / QK_K];
        quantize(&row, &mut want, ScaleSearch::Scalar);
        quantize(&row, &mut got, ScaleSearch::Lanes);
        let (want, got): (&[u8], &[u8]) = (bytemuck::cast_slice(&want), bytemuck::cast_slice(&got));
        assert!(
            want == got,
            "{name}, row {n}: lane and scalar bytes differ; row {row:?}"
        );
    }
}

#[test]
fn q4_k_lanes_write_the_scalar_bytes() {
    check_quantizer("Q4_K", 4, BlockQ4_K::quantize_with);
}

#[test]
fn q5_k_lanes_write_the_scalar_bytes() {
    check_quantizer("Q5_K", 5, BlockQ5_K::quantize_with);
}

#[test]
fn q6_k_lanes_write_the_scalar_bytes() {
    check_quantizer("Q6_K", 6, BlockQ6_K::quantize_with);
}
