//! The float and 32-value block formats against gguf-py's numpy quantizers (vectors committed in
//! tests/data/legacy, made by its `make_vectors.py`), and round-trip error bounds.

use half::{bf16, f16};
use tandem::quant::{
    Block, BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0, GgmlType, Quantize,
};

macro_rules! data {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/legacy/",
            $name
        ))
        .as_slice()
    };
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Copies raw bytes into a (properly aligned) vector of blocks.
fn pod_vec<B: bytemuck::Pod>(bytes: &[u8]) -> Vec<B> {
    let mut v = vec![B::zeroed(); bytes.len() / std::mem::size_of::<B>()];
    bytemuck::cast_slice_mut::<B, u8>(&mut v).copy_from_slice(bytes);
    v
}

fn as_bytes<B: bytemuck::Pod>(v: &[B]) -> &[u8] {
    bytemuck::cast_slice(v)
}

/// Quantizes the committed input with `B` and dequantizes gguf-py's bytes: both must match
/// gguf-py bit for bit.
fn check_vectors<B: Quantize + Default + Copy>(want_bytes: &[u8], want_dequant: &[u8]) {
    let x = f32s(data!("input.f32.bin"));
    assert_eq!(x.len(), 8 * 256);
    let mut q = vec![B::default(); x.len() / B::VALUES];
    B::quantize(&x, &mut q);
    let name = B::TYPE.name();
    let got = as_bytes(&q);
    assert_eq!(got.len(), want_bytes.len(), "{name}: size");
    if let Some(i) = (0..got.len()).find(|&i| got[i] != want_bytes[i]) {
        let bb = std::mem::size_of::<B>();
        panic!(
            "{name}: byte {i} (block {}, byte {} of it) is {:#04x}, gguf-py wrote {:#04x}",
            i / bb,
            i % bb,
            got[i],
            want_bytes[i]
        );
    }
    let blocks: Vec<B> = pod_vec(want_bytes);
    let mut y = vec![0.0f32; x.len()];
    B::dequantize(&blocks, &mut y);
    for (i, (a, b)) in y.iter().zip(f32s(want_dequant)).enumerate() {
        assert_eq!(
            a.to_bits(),
            b.to_bits(),
            "{name}: dequantized value {i}: {a} vs gguf-py {b}"
        );
    }
}

#[test]
fn q8_0_matches_gguf_py() {
    check_vectors::<BlockQ8_0>(data!("q8_0.bin"), data!("q8_0.dequant.f32.bin"));
}

#[test]
fn q4_0_matches_gguf_py() {
    check_vectors::<BlockQ4_0>(data!("q4_0.bin"), data!("q4_0.dequant.f32.bin"));
}

#[test]
fn q4_1_matches_gguf_py() {
    check_vectors::<BlockQ4_1>(data!("q4_1.bin"), data!("q4_1.dequant.f32.bin"));
}

#[test]
fn q5_0_matches_gguf_py() {
    check_vectors::<BlockQ5_0>(data!("q5_0.bin"), data!("q5_0.dequant.f32.bin"));
}

#[test]
fn q5_1_matches_gguf_py() {
    check_vectors::<BlockQ5_1>(data!("q5_1.bin"), data!("q5_1.dequant.f32.bin"));
}

/// f32 → f16/bf16 against gguf-py on the inputs and on the rounding edge cases (ties, overflow,
/// subnormals, infinities, NaN), and the way back, which is exact.
#[test]
fn f16_and_bf16_match_gguf_py() {
    fn check<B: Quantize + Default + Copy>(src: &[u8], want: &[u8]) {
        let x = f32s(src);
        let mut q = vec![B::default(); x.len()];
        B::quantize(&x, &mut q);
        let got = as_bytes(&q);
        for i in 0..x.len() {
            assert_eq!(
                &got[2 * i..2 * i + 2],
                &want[2 * i..2 * i + 2],
                "{}: value {i} ({:e})",
                B::TYPE.name(),
                x[i]
            );
        }
    }
    check::<f16>(data!("input.f32.bin"), data!("input.f16.bin"));
    check::<f16>(data!("specials.f32.bin"), data!("specials.f16.bin"));
    check::<bf16>(data!("input.f32.bin"), data!("input.bf16.bin"));
    check::<bf16>(data!("specials.f32.bin"), data!("specials.bf16.bin"));

    // Widening: f16 and bf16 values are exactly representable in f32.
    let h: Vec<f16> = pod_vec(data!("specials.f16.bin"));
    let mut y = vec![0.0f32; h.len()];
    f16::dequantize(&h, &mut y);
    for (a, b) in h.iter().zip(&y) {
        assert!(a.is_nan() && b.is_nan() || f16::from_f32(*b).to_bits() == a.to_bits());
    }
    let b: Vec<bf16> = pod_vec(data!("specials.bf16.bin"));
    let mut y = vec![0.0f32; b.len()];
    bf16::dequantize(&b, &mut y);
    for (a, v) in b.iter().zip(&y) {
        assert_eq!((v.to_bits() >> 16) as u16, a.to_bits());
        assert_eq!(v.to_bits() & 0xffff, 0);
    }
}

#[test]
fn block_geometry_matches_the_type_table() {
    fn check<B: Block>() {
        assert_eq!(B::VALUES, B::TYPE.block_values(), "{}", B::TYPE);
        assert_eq!(
            std::mem::size_of::<B>(),
            B::TYPE.block_bytes(),
            "{}",
            B::TYPE
        );
    }
    check::<f32>();
    check::<f16>();
    check::<bf16>();
    check::<BlockQ8_0>();
    check::<BlockQ4_0>();
    check::<BlockQ4_1>();
    check::<BlockQ5_0>();
    check::<BlockQ5_1>();
    assert_eq!(<f16 as Block>::TYPE, GgmlType::F16);
}

/// Deterministic N(0, 1) values (SplitMix64 + Box–Muller).
fn normals(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed;
    let mut next = move || {
        s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let (u1, u2) = (1.0 - next(), next());
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
        })
        .collect()
}

/// Random rows at several scales, 64 blocks each.
fn rows() -> Vec<Vec<f32>> {
    [1e-4f32, 0.02, 1.0, 300.0]
        .iter()
        .enumerate()
        .map(|(i, &s)| normals(i as u64, 64 * 32).iter().map(|v| v * s).collect())
        .collect()
}

/// How a 32-value format spaces its levels, from the block's own values (the reference
/// formulas, computed here independently of the library).
struct Grid {
    /// Step between levels, in f32 as the quantizer computes it (before f16 rounding).
    step: f32,
    /// Value of code 0 in f32 (the block minimum for Q*_1, `-offset·step` for Q*_0).
    base: f32,
    /// Highest code.
    top: u32,
}

/// Checks that every value dequantizes to within half a step of itself (one full step at the
/// top code of the offset formats, whose range is asymmetric: `+|max|` clamps to `top`), plus
/// what rounding the step and base to f16 adds: `|code|·|Δstep| + |Δbase|`, and 2 ulp of f32.
fn check_round_trip<B: Quantize + Default + Copy>(
    grid: impl Fn(&[f32]) -> Grid,
    step16: impl Fn(&B) -> (f32, f32),
) {
    for row in rows() {
        let mut q = vec![B::default(); row.len() / 32];
        B::quantize(&row, &mut q);
        let mut y = vec![0.0; row.len()];
        B::dequantize(&q, &mut y);
        for (b, (x, y)) in q.iter().zip(row.chunks_exact(32).zip(y.chunks_exact(32))) {
            let g = grid(x);
            let (s16, b16) = step16(b);
            let (ds, db) = ((s16 - g.step).abs(), (b16 - g.base).abs());
            for (&x, &y) in x.iter().zip(y) {
                let code = ((x - g.base) / g.step).round().clamp(0.0, g.top as f32);
                let at_top = (x - g.base) / g.step > g.top as f32 + 0.5;
                let half = if at_top { 1.0 } else { 0.5 } * g.step.abs() * (1.0 + 1e-5);
                let bound = half + code * ds + db + 2.0 * f32::EPSILON * (x.abs() + y.abs());
                assert!(
                    (x - y).abs() <= bound,
                    "{}: {x} came back as {y}, more than {bound:e} away (step {})",
                    B::TYPE.name(),
                    g.step
                );
            }
        }
    }
}

fn signed_max(x: &[f32]) -> f32 {
    x.iter()
        .copied()
        .fold(0.0f32, |m, v| if v.abs() > m.abs() { v } else { m })
}

fn min_max(x: &[f32]) -> (f32, f32) {
    let min = x.iter().copied().fold(f32::INFINITY, f32::min);
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    (min, max)
}

#[test]
fn round_trip_within_half_a_step() {
    check_round_trip::<BlockQ8_0>(
        |x| {
            let d = x.iter().fold(0.0f32, |m, v| m.max(v.abs())) / 127.0;
            Grid {
                step: d,
                base: -128.0 * d,
                top: 255,
            }
        },
        |b| (b.d.to_f32(), -128.0 * b.d.to_f32()),
    );
    check_round_trip::<BlockQ4_0>(
        |x| {
            let d = signed_max(x) / -8.0;
            Grid {
                step: d,
                base: -8.0 * d,
                top: 15,
            }
        },
        |b| (b.d.to_f32(), -8.0 * b.d.to_f32()),
    );
    check_round_trip::<BlockQ5_0>(
        |x| {
            let d = signed_max(x) / -16.0;
            Grid {
                step: d,
                base: -16.0 * d,
                top: 31,
            }
        },
        |b| (b.d.to_f32(), -16.0 * b.d.to_f32()),
    );
    check_round_trip::<BlockQ4_1>(
        |x| {
            let (min, max) = min_max(x);
            Grid {
                step: (max - min) / 15.0,
                base: min,
                top: 15,
            }
        },
        |b| (b.d.to_f32(), b.m.to_f32()),
    );
    check_round_trip::<BlockQ5_1>(
        |x| {
            let (min, max) = min_max(x);
            Grid {
                step: (max - min) / 31.0,
                base: min,
                top: 31,
            }
        },
        |b| (b.d.to_f32(), b.m.to_f32()),
    );
}

/// f16 and bf16 round to the nearest representable value: within half an ulp (relative 2^-11
/// and 2^-8 for normal values; 2^-25 absolute in f16's subnormal range).
#[test]
fn float_round_trip_within_half_an_ulp() {
    for row in rows() {
        let mut h = vec![f16::ZERO; row.len()];
        f16::quantize(&row, &mut h);
        let mut b = vec![bf16::ZERO; row.len()];
        bf16::quantize(&row, &mut b);
        for ((&x, h), b) in row.iter().zip(&h).zip(&b) {
            let eh = (x - h.to_f32()).abs();
            assert!(
                eh <= (x.abs() * 2f32.powi(-11)).max(2f32.powi(-25)),
                "f16: {x} → {h}"
            );
            let eb = (x - b.to_f32()).abs();
            assert!(eb <= x.abs() * 2f32.powi(-8), "bf16: {x} → {b}");
        }
    }
}
