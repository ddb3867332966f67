//! Every SIMD kernel of the float and 32-value formats against the scalar reference, on every
//! instruction set this CPU has, for row lengths 0..=40 blocks and Mixtral's 4096 and 14336.
//!
//! Tolerance. The integer part of each block is exact in both paths, so they differ only in how
//! the f32 terms are rounded and added. With u = 2^-24 and T = Σ|terms| (computed exactly in
//! f64 from the dequantized values: Σ_j |w_j·x_j|, and Σ_j (|d·q_j| + |m|)·|x_j| for the
//! min formats, whose two terms may cancel), recursive summation of k terms in any order is off
//! by at most (k−1)·u·T, and each term carries ≤ 2 roundings of its own (the scale product and
//! the multiply). The kernels split the sum into ≤ 16 lanes and reduce them in ≤ 5 more adds.
//! So each result is within (k + 8)·u·T of the exact value, and the two within (2k + 16)·u·T
//! of each other, where k is the number of f32 terms (values for floats, blocks for Q8_0 and
//! the offset formats, 2 per block for the min formats). An integer error of a single product
//! (the saturation or sign bugs these kernels avoid) is far larger than that.

mod common;

use half::{bf16, f16};
use tandem::quant::simd::grouped::{grouped, GROUP, MAX_ACTS, MAX_PAIRS, MAX_WEIGHT_ROWS};
use tandem::quant::simd::legacy::quantize_q8_0_fn;
use tandem::quant::simd::{available, dot_fn, Isa, SimdDot, SimdQuantize};
use tandem::quant::{BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0, DotWith, Quantize};

/// SplitMix64: small, deterministic, good enough to spread test inputs.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f32 {
        let u1 = 1.0 - self.uniform() as f64;
        let u2 = self.uniform() as f64;
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }
    fn bytes(&mut self, out: &mut [u8]) {
        for b in out {
            *b = self.next_u64() as u8;
        }
    }
    /// A finite f16 scale of either sign with magnitude in [2^-24, 2^8], or zero.
    fn scale(&mut self) -> f16 {
        match self.next_u64() % 16 {
            0 => f16::ZERO,
            1 => f16::from_bits(1 + (self.next_u64() % 0x3ff) as u16), // subnormal
            _ => {
                let mag = 2f32.powf(-14.0 + 22.0 * self.uniform());
                let sign = if self.next_u64().is_multiple_of(2) {
                    1.0
                } else {
                    -1.0
                };
                f16::from_f32(sign * mag)
            }
        }
    }
}

/// Block counts to test: every short row (tails of every kind) and Mixtral's row lengths.
fn block_counts() -> impl Iterator<Item = usize> {
    (0..=40).chain([4096 / 32, 14336 / 32])
}

/// Values that look like a weight row: N(0, 0.02) with a few large outliers.
fn weights_f32(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let v = 0.02 * rng.normal();
            if rng.next_u64().is_multiple_of(97) {
                v * 20.0
            } else {
                v
            }
        })
        .collect()
}

/// Values that look like an activation row: N(0, 1) with some channels 30x larger.
fn acts_f32(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| rng.normal() * if i % 61 == 7 { 30.0 } else { 1.0 })
        .collect()
}

fn quantized<B: Quantize + Default + Copy>(v: &[f32]) -> Vec<B> {
    let mut out = vec![B::default(); v.len() / 32];
    B::quantize(v, &mut out);
    out
}

/// Random bytes for every field, then finite scales: every code pattern, -128 included.
fn raw_blocks<B: bytemuck::Pod>(rng: &mut Rng, n: usize, fix: impl Fn(&mut B, &mut Rng)) -> Vec<B> {
    let mut v: Vec<B> = vec![bytemuck::Zeroable::zeroed(); n];
    rng.bytes(bytemuck::cast_slice_mut(&mut v));
    for b in &mut v {
        fix(b, rng);
    }
    v
}

fn raw_q8_0(rng: &mut Rng, n: usize) -> Vec<BlockQ8_0> {
    raw_blocks(rng, n, |b: &mut BlockQ8_0, r| b.d = r.scale())
}

/// Activation rows to dot with: realistic, random bytes, and the extreme codes ±127/-128.
fn act_rows(rng: &mut Rng, n: usize) -> Vec<Vec<BlockQ8_0>> {
    let real = quantized::<BlockQ8_0>(&acts_f32(rng, n * 32));
    let raw = raw_q8_0(rng, n);
    let mut extreme = raw.clone();
    for (i, b) in extreme.iter_mut().enumerate() {
        b.qs = [[-128, 127, -127][i % 3]; 32];
    }
    vec![real, raw, extreme]
}

/// Σ|terms| (see the header) of one weight row and one activation row.
trait Magnitude: DotWith {
    /// Σ|terms| and the number of f32 terms the sum adds.
    fn magnitude(w: &[Self], x: &[Self::Act]) -> (f64, usize);
}

fn dequantized<B: Quantize>(b: &[B]) -> Vec<f32> {
    let mut out = vec![0.0; b.len() * B::VALUES];
    B::dequantize(b, &mut out);
    out
}

macro_rules! offset_magnitude {
    ($($ty:ty),*) => {$(
        impl Magnitude for $ty {
            fn magnitude(w: &[Self], x: &[BlockQ8_0]) -> (f64, usize) {
                let (w, x) = (dequantized(w), dequantized(x));
                let t = w.iter().zip(&x).map(|(&a, &b)| (a as f64 * b as f64).abs()).sum();
                (t, w.len() / 32)
            }
        }
    )*};
}
offset_magnitude!(BlockQ8_0, BlockQ4_0, BlockQ5_0);

macro_rules! min_magnitude {
    ($($ty:ty),*) => {$(
        impl Magnitude for $ty {
            fn magnitude(w: &[Self], x: &[BlockQ8_0]) -> (f64, usize) {
                let xs = dequantized(x);
                let mut t = 0.0;
                for (i, b) in w.iter().enumerate() {
                    // d*q_j is the dequantized value minus m, up to f32 rounding; take it exactly.
                    let mut vals = [0.0f32; 32];
                    let mut zero_min = *b;
                    zero_min.m = f16::ZERO;
                    <$ty>::dequantize(&[zero_min], &mut vals);
                    let m = b.m.to_f32().abs() as f64;
                    for (j, &v) in vals.iter().enumerate() {
                        t += ((v as f64).abs() + m) * (xs[32 * i + j] as f64).abs();
                    }
                }
                (t, 2 * w.len())
            }
        }
    )*};
}
min_magnitude!(BlockQ4_1, BlockQ5_1);

macro_rules! float_magnitude {
    ($($ty:ty),*) => {$(
        impl Magnitude for $ty {
            fn magnitude(w: &[Self], x: &[f32]) -> (f64, usize) {
                let w = dequantized(w);
                let t = w.iter().zip(x).map(|(&a, &b)| (a as f64 * b as f64).abs()).sum();
                (t, w.len())
            }
        }
    )*};
}
float_magnitude!(f32, f16, bf16);

/// The instruction sets that must have their own kernel for `W` (no silent fallback).
fn expect_kernel<W: SimdDot>(isa: Isa, vnni: bool) {
    let own = match isa {
        Isa::Scalar => false,
        Isa::Avx512Vnni => vnni,
        Isa::Avx2 | Isa::Avx512 | Isa::Neon => true,
    };
    if own {
        assert!(
            W::kernel(isa).is_some(),
            "{} has no {} kernel",
            std::any::type_name::<W>(),
            isa.name()
        );
    }
}

fn check_rows<W: SimdDot + Magnitude>(w: &[W], x: &[W::Act], what: &str) -> usize {
    let want = W::dot_scalar(w, x);
    let (t, k) = W::magnitude(w, x);
    let tol = (2 * k + 16) as f64 * 2f64.powi(-24) * t;
    for isa in available() {
        let got = dot_fn::<W>(isa)(w, x);
        assert!(
            ((got - want) as f64).abs() <= tol,
            "{} {what}, {} blocks/values on {}: kernel {got}, scalar {want}, tolerance {tol:e}",
            std::any::type_name::<W>(),
            w.len(),
            isa.name()
        );
    }
    available().len()
}

/// Runs `check_rows` for a block format over every length and every kind of input.
fn check_block_format<W>(seed: u64, vnni: bool, raw: impl Fn(&mut Rng, usize) -> Vec<W>)
where
    W: SimdDot<Act = BlockQ8_0> + Magnitude + Default + Copy,
{
    for isa in available() {
        expect_kernel::<W>(isa, vnni);
    }
    let mut rng = Rng(seed);
    let mut checks = 0;
    for n in block_counts() {
        let real = quantized::<W>(&weights_f32(&mut rng, n * 32));
        let random = raw(&mut rng, n);
        for x in act_rows(&mut rng, n) {
            checks += check_rows(&real, &x, "quantized weights");
            checks += check_rows(&random, &x, "random bytes");
        }
    }
    assert!(checks > 0);
}

#[test]
fn q8_0_kernels_match_scalar() {
    common::isa::tested("q8_0_kernels_match_scalar");
    check_block_format::<BlockQ8_0>(1, false, raw_q8_0);
}

#[test]
fn q4_0_kernels_match_scalar() {
    common::isa::tested("q4_0_kernels_match_scalar");
    check_block_format::<BlockQ4_0>(2, true, |r, n| {
        raw_blocks(r, n, |b: &mut BlockQ4_0, r| b.d = r.scale())
    });
}

#[test]
fn q4_1_kernels_match_scalar() {
    common::isa::tested("q4_1_kernels_match_scalar");
    check_block_format::<BlockQ4_1>(3, true, |r, n| {
        raw_blocks(r, n, |b: &mut BlockQ4_1, r| {
            b.d = r.scale();
            b.m = r.scale();
        })
    });
}

#[test]
fn q5_0_kernels_match_scalar() {
    common::isa::tested("q5_0_kernels_match_scalar");
    check_block_format::<BlockQ5_0>(4, true, |r, n| {
        raw_blocks(r, n, |b: &mut BlockQ5_0, r| b.d = r.scale())
    });
}

#[test]
fn q5_1_kernels_match_scalar() {
    common::isa::tested("q5_1_kernels_match_scalar");
    check_block_format::<BlockQ5_1>(5, true, |r, n| {
        raw_blocks(r, n, |b: &mut BlockQ5_1, r| {
            b.d = r.scale();
            b.m = r.scale();
        })
    });
}

/// Float rows of every length from 0 to 40·32 values (every tail of 8/16/64-value loops) and
/// the two Mixtral lengths, realistic and with magnitudes spread over [2^-20, 2^12] (within f16).
fn check_float_format<W: SimdDot<Act = f32> + Magnitude + Quantize + Default + Copy>(seed: u64) {
    for isa in available() {
        expect_kernel::<W>(isa, false);
    }
    let mut rng = Rng(seed);
    let lengths = (0..=40 * 32).chain([4096, 14336]);
    for n in lengths {
        let x = acts_f32(&mut rng, n);
        let mut w = vec![W::default(); n];
        W::quantize(&weights_f32(&mut rng, n), &mut w);
        check_rows(&w, &x, "realistic");
        if n % 7 == 0 {
            let spread: Vec<f32> = (0..n)
                .map(|_| rng.normal() * 2f32.powf(32.0 * rng.uniform() - 20.0))
                .collect();
            W::quantize(&spread, &mut w);
            check_rows(&w, &x, "spread magnitudes");
        }
    }
}

#[test]
fn f32_kernels_match_scalar() {
    common::isa::tested("f32_kernels_match_scalar");
    check_float_format::<f32>(6);
}

#[test]
fn f16_kernels_match_scalar() {
    common::isa::tested("f16_kernels_match_scalar");
    check_float_format::<f16>(7);
}

#[test]
fn bf16_kernels_match_scalar() {
    common::isa::tested("bf16_kernels_match_scalar");
    check_float_format::<bf16>(8);
}

/// The grouped kernels (1..=4 weight rows, adjacent or strided, against 1..=4 prepared
/// activation rows) against the scalar reference. They split each block's exact integer sum over
/// up to `lanes` i32 lanes (2 on AVX-512, 4 for Q4_0 on AVX2), each scaled and added on its
/// own: `lanes` f32 terms per block instead of one, so the bound of the header becomes
/// (k_scalar + k_grouped + 16)·u·T with k_grouped = lanes·k.
fn check_grouped<W>(
    seed: u64,
    lanes: usize,
    must_have: &[Isa],
    raw: impl Fn(&mut Rng, usize) -> Vec<W>,
) where
    W: SimdDot<Act = BlockQ8_0> + Magnitude + Default + Copy,
{
    let mut rng = Rng(seed);
    let mut checks = 0;
    for isa in available() {
        let Some(kernel) = grouped::<W>(isa) else {
            assert!(
                !must_have.contains(&isa),
                "{} has no grouped {} kernel",
                std::any::type_name::<W>(),
                isa.name()
            );
            continue;
        };
        for groups in [1, 2, 3, 16, 56] {
            let n = groups * GROUP;
            // Weight rows alternate realistic and random bytes.
            let w_rows: Vec<Vec<W>> = (0..MAX_WEIGHT_ROWS)
                .map(|r| {
                    if r % 2 == 0 {
                        quantized::<W>(&weights_f32(&mut rng, n * 32))
                    } else {
                        raw(&mut rng, n)
                    }
                })
                .collect();
            let mut acts = act_rows(&mut rng, n);
            acts.push(quantized::<BlockQ8_0>(&acts_f32(&mut rng, n * 32)));
            let prepared: Vec<_> = acts.iter().map(|x| kernel.prepared(x)).collect();
            // Rows back to back, and rows apart with foreign blocks (random bytes) between them.
            let gap = raw(&mut rng, 2 * GROUP);
            for (stride, spaced) in [(n, false), (n + 2 * GROUP, true)] {
                for rows in 1..=MAX_WEIGHT_ROWS {
                    let mut w = Vec::new();
                    for row in &w_rows[..rows] {
                        w.extend_from_slice(row);
                        if spaced {
                            w.extend_from_slice(&gap);
                        }
                    }
                    for n_acts in (1..=MAX_ACTS).filter(|a| a * rows <= MAX_PAIRS) {
                        let mut got = vec![0.0f32; rows * n_acts];
                        (kernel.dot)(&w, stride, rows, &prepared[..n_acts], &mut got);
                        for (i, &got) in got.iter().enumerate() {
                            let (r, t) = (i / n_acts, i % n_acts);
                            let (w, x) = (&w_rows[r], &acts[t]);
                            let want = W::dot_scalar(w, x);
                            let (mag, k) = W::magnitude(w, x);
                            let tol = ((1 + lanes) * k + 16) as f64 * 2f64.powi(-24) * mag;
                            assert!(
                                ((got - want) as f64).abs() <= tol,
                                "{} grouped on {}, {n} blocks, stride {stride}, {rows}x{n_acts} \
                                 tile, ({r}, {t}): {got} vs scalar {want}, tolerance {tol:e}",
                                std::any::type_name::<W>(),
                                isa.name()
                            );
                            checks += 1;
                        }
                    }
                }
            }
        }
    }
    if must_have.iter().any(|i| available().contains(i)) {
        assert!(checks > 0);
    }
}

/// x86 CPUs with these instruction sets must get the grouped kernels (no silent fallback).
fn x86_isas(list: &[Isa]) -> Vec<Isa> {
    if cfg!(target_arch = "x86_64") {
        list.to_vec()
    } else {
        Vec::new()
    }
}

#[test]
fn grouped_q4_0_matches_scalar() {
    common::isa::tested("grouped_q4_0_matches_scalar");
    let must = x86_isas(&[Isa::Avx2, Isa::Avx512, Isa::Avx512Vnni]);
    check_grouped::<BlockQ4_0>(10, 4, &must, |r, n| {
        raw_blocks(r, n, |b: &mut BlockQ4_0, r| b.d = r.scale())
    });
}

#[test]
fn grouped_q8_0_matches_scalar() {
    common::isa::tested("grouped_q8_0_matches_scalar");
    check_grouped::<BlockQ8_0>(11, 2, &x86_isas(&[Isa::Avx512Vnni]), raw_q8_0);
}

/// A call that must panic.
type BadCall<'a> = dyn Fn() + std::panic::RefUnwindSafe + 'a;

#[test]
fn grouped_kernels_reject_bad_calls() {
    common::isa::tested("grouped_kernels_reject_bad_calls");
    let x = vec![BlockQ8_0::default(); 2 * GROUP];
    for isa in available() {
        let Some(k) = grouped::<BlockQ4_0>(isa) else {
            continue;
        };
        let p = k.prepared(&x);
        let w = vec![BlockQ4_0::default(); GROUP]; // one group against two
        let one = k.prepared(&x[..GROUP]);
        let four = vec![one.clone(); 4];
        let w4 = [w.clone(), w.clone(), w.clone(), w.clone()].concat();
        let calls: [(&str, Box<BadCall>); 7] = [
            (
                "a weight row shorter than the activations",
                Box::new(|| (k.dot)(&w, GROUP, 1, std::slice::from_ref(&p), &mut [0.0])),
            ),
            (
                "no activation rows",
                Box::new(|| (k.dot)(&w, GROUP, 1, &[], &mut [])),
            ),
            (
                "activation rows of different lengths",
                Box::new(|| (k.dot)(&w4, GROUP, 1, &[one.clone(), p.clone()], &mut [0.0; 2])),
            ),
            (
                "a 4x4 tile",
                Box::new(|| (k.dot)(&w4, GROUP, 4, &four, &mut [0.0; 16])),
            ),
            (
                "rows running past the weights",
                Box::new(|| (k.dot)(&w4, 2 * GROUP, 3, &four[..1], &mut [0.0; 3])),
            ),
            (
                "a stride shorter than a row",
                Box::new(|| (k.dot)(&w4, GROUP / 2, 2, &four[..1], &mut [0.0; 2])),
            ),
            (
                "partial group",
                Box::new(|| drop(k.prepared(&x[..GROUP + 1]))),
            ),
        ];
        for (what, call) in calls {
            assert!(
                std::panic::catch_unwind(&call).is_err(),
                "{}: no panic on {what}",
                isa.name()
            );
        }
    }
}

#[test]
fn mismatched_lengths_panic_on_every_isa() {
    common::isa::tested("mismatched_lengths_panic_on_every_isa");
    let w = vec![BlockQ4_0::default(); 3];
    let x = vec![BlockQ8_0::default(); 2];
    for isa in available() {
        let f = dot_fn::<BlockQ4_0>(isa);
        let r = std::panic::catch_unwind(|| f(&w, &x));
        assert!(r.is_err(), "{}: no panic on 3 vs 2 blocks", isa.name());
        let f = dot_fn::<f16>(isa);
        let r = std::panic::catch_unwind(|| f(&[f16::ZERO; 9], &[0.0; 8]));
        assert!(r.is_err(), "{}: no panic on 9 vs 8 values", isa.name());
    }
}

/// Blocks that stress the quantizer: rounding ties, zeros, NaN, infinities, subnormals, huge
/// and tiny magnitudes (where 1/d overflows to infinity).
fn hard_blocks(rng: &mut Rng) -> Vec<[f32; 32]> {
    let mut v = Vec::new();
    // amax = 127 makes d = 1 and id = 1: the codes are roundf of the values themselves.
    let mut ties = [0.0f32; 32];
    ties[0] = 127.0;
    for (j, t) in ties.iter_mut().enumerate().skip(1) {
        *t = (j as f32 - 16.0) * 4.0 + 0.5;
    }
    v.push(ties);
    v.push(ties.map(|t| -t));
    v.push([0.0; 32]);
    v.push([-0.0; 32]);
    let mut special = [1.0f32; 32];
    special[3] = f32::NAN;
    v.push(special);
    special[5] = f32::INFINITY;
    v.push(special);
    special[6] = f32::NEG_INFINITY;
    v.push(special);
    v.push([f32::NAN; 32]);
    v.push(std::array::from_fn(|_| rng.normal() * 1e-40)); // subnormal inputs
    v.push(std::array::from_fn(|_| rng.normal() * 1e-37)); // 1/d overflows
    v.push(std::array::from_fn(|_| rng.normal() * 3e38));
    let mut one = [0.0f32; 32];
    one[31] = -3.0;
    v.push(one);
    v
}

#[test]
fn fast_q8_0_quantize_gives_the_scalar_bytes() {
    common::isa::tested("fast_q8_0_quantize_gives_the_scalar_bytes");
    let mut rng = Rng(9);
    let mut rows: Vec<Vec<f32>> = Vec::new();
    for n in block_counts() {
        rows.push(acts_f32(&mut rng, n * 32));
        rows.push(
            (0..n * 32)
                .map(|_| rng.normal() * 2f32.powf(60.0 * rng.uniform() - 30.0))
                .collect(),
        );
    }
    rows.push(hard_blocks(&mut rng).concat());
    for row in &rows {
        let n = row.len() / 32;
        let mut want = vec![BlockQ8_0::default(); n];
        BlockQ8_0::quantize(row, &mut want);
        for isa in available() {
            let mut got = vec![BlockQ8_0::default(); n];
            quantize_q8_0_fn(isa)(row, &mut got);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert_eq!(
                    bytemuck::bytes_of(g),
                    bytemuck::bytes_of(w),
                    "{}: block {i} of a {n}-block row differs",
                    isa.name()
                );
            }
        }
        // And the quantizer the matmul picks for this CPU.
        let mut got = vec![BlockQ8_0::default(); n];
        <BlockQ8_0 as SimdQuantize>::quantizer(tandem::quant::simd::detected())(row, &mut got);
        let bytes = |b: &[BlockQ8_0]| bytemuck::cast_slice::<BlockQ8_0, u8>(b).to_vec();
        assert_eq!(bytes(&got), bytes(&want), "the detected quantizer");
    }
}
