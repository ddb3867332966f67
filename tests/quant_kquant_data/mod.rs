//! Test inputs for the K-quant tests: a seeded generator, weight and activation blocks of three
//! kinds (realistic, random bits, extreme), and the error scale that dot tolerances are built on.
#![allow(dead_code)]

use half::f16;
use tandem::quant::simd::SimdDot;
use tandem::quant::{BlockQ4_K, BlockQ5_K, BlockQ6_K, BlockQ8_K, Quantize, QK_K};

/// SplitMix64: small, seeded, good enough to make test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let u = 1.0 - self.uniform() as f64; // (0, 1]
        let v = self.uniform() as f64;
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }

    pub fn bytes(&mut self, out: &mut [u8]) {
        for b in out {
            *b = self.next_u64() as u8;
        }
    }

    /// A finite f16 of magnitude in [1e-5, 1), random sign.
    pub fn scale(&mut self) -> f16 {
        let mag = 10f32.powf(-5.0 * self.uniform());
        f16::from_f32(if self.next_u64() & 1 == 0 { mag } else { -mag })
    }
}

/// The kinds of block the tests draw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Quantized from normal values (weights N(0, 0.02); activations N(0, 1) with outliers).
    Realistic,
    /// Random bytes with finite scales of random sign and size.
    RandomBits,
    /// Every quant and scale at its largest magnitude, scales near the f16 maximum.
    Extreme,
}

pub const KINDS: [Kind; 3] = [Kind::Realistic, Kind::RandomBits, Kind::Extreme];

/// Block counts to try: every count up to 20, then the rows of Mixtral's 4096- and 14336-wide
/// matrices.
pub fn block_counts() -> impl Iterator<Item = usize> {
    (1..=20).chain([4096 / QK_K, 14336 / QK_K])
}

/// Activation values like a transformer's: mostly N(0, 1), one in 64 an outlier up to ±40.
pub fn activations_f32(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let v = rng.normal();
            if rng.next_u64().is_multiple_of(64) {
                v * 40.0
            } else {
                v
            }
        })
        .collect()
}

pub fn activations(rng: &mut Rng, nb: usize, kind: Kind) -> Vec<BlockQ8_K> {
    match kind {
        Kind::Realistic => {
            let mut out = vec![zeroed(); nb];
            tandem::quant::quantize_q8_k_scalar(&activations_f32(rng, nb * QK_K), &mut out);
            out
        }
        Kind::RandomBits | Kind::Extreme => (0..nb)
            .map(|_| {
                let mut b: BlockQ8_K = zeroed();
                if kind == Kind::RandomBits {
                    rng.bytes(bytemuck::cast_slice_mut(&mut b.qs));
                    b.d = rng.scale().to_f32() * 100.0;
                } else {
                    // Full range, including −128, which the quantizer never writes.
                    for (i, q) in b.qs.iter_mut().enumerate() {
                        *q = if (i / 3) % 2 == 0 { 127 } else { -128 };
                    }
                    b.d = 1000.0;
                }
                for (s, g) in b.bsums.iter_mut().zip(b.qs.chunks_exact(16)) {
                    *s = g.iter().map(|&q| q as i16).sum();
                }
                b
            })
            .collect(),
    }
}

pub fn zeroed<T: bytemuck::Zeroable>() -> T {
    T::zeroed()
}

/// A weight format the tests know how to fill and bound.
pub trait TestBlock: SimdDot<Act = BlockQ8_K> + std::fmt::Debug {
    /// Random bytes, with finite super-scales.
    fn random(rng: &mut Rng) -> Self;
    /// Every quant and scale at its largest magnitude.
    fn extreme(rng: &mut Rng) -> Self;
    /// `Σ_i (|d·sc_i·q_i| + |dmin·m_i|)·|x_i|` in f64, or a bound of it: the size of every partial
    /// sum a dot product forms, so its f32 rounding errors are at most `u` times this each.
    fn magnitude(w: &[Self], x: &[BlockQ8_K]) -> f64;
}

pub fn weights<W: TestBlock>(rng: &mut Rng, nb: usize, kind: Kind) -> Vec<W> {
    match kind {
        Kind::Realistic => {
            let src: Vec<f32> = (0..nb * QK_K).map(|_| 0.02 * rng.normal()).collect();
            let mut out = vec![zeroed(); nb];
            W::quantize(&src, &mut out);
            out
        }
        Kind::RandomBits => (0..nb).map(|_| W::random(rng)).collect(),
        Kind::Extreme => (0..nb).map(|_| W::extreme(rng)).collect(),
    }
}

fn dequantized<B: Quantize>(b: &[B]) -> Vec<f32> {
    let mut out = vec![0.0; b.len() * QK_K];
    B::dequantize(b, &mut out);
    out
}

/// For Q4_K / Q5_K: `Σ_i (|d·sc_i·q_i| + |dmin·m_i|)·|x_i|`. Dequantizing a copy with d = 1,
/// dmin = 0 gives `sc·q` exactly, and with d = 0, dmin = 1 gives `−m` exactly.
fn affine_magnitude<W: Quantize + Copy>(
    w: &[W],
    x: &[BlockQ8_K],
    get: impl Fn(&W) -> (f16, f16),
    set: impl Fn(&mut W, f16, f16),
) -> f64 {
    let with = |d: f16, dmin: f16| {
        let b: Vec<W> = w
            .iter()
            .map(|&b| {
                let mut b = b;
                set(&mut b, d, dmin);
                b
            })
            .collect();
        dequantized(&b)
    };
    let (sq, m) = (with(f16::ONE, f16::ZERO), with(f16::ZERO, f16::ONE));
    let xs = dequantized(x);
    let mut total = 0.0f64;
    for (i, b) in w.iter().enumerate() {
        let (d, dmin) = get(b);
        let (d, dmin) = (d.to_f64().abs(), dmin.to_f64().abs());
        for j in QK_K * i..QK_K * (i + 1) {
            total += (d * (sq[j] as f64).abs() + dmin * (m[j] as f64).abs()) * (xs[j] as f64).abs();
        }
    }
    total
}

impl TestBlock for BlockQ4_K {
    fn random(rng: &mut Rng) -> Self {
        let mut b: Self = zeroed();
        rng.bytes(bytemuck::bytes_of_mut(&mut b));
        b.d = rng.scale();
        b.dmin = rng.scale();
        b
    }

    fn extreme(_: &mut Rng) -> Self {
        BlockQ4_K {
            d: f16::MAX,
            dmin: f16::MAX,
            scales: [0xFF; 12],
            qs: [0xFF; QK_K / 2],
        }
    }

    fn magnitude(w: &[Self], x: &[BlockQ8_K]) -> f64 {
        affine_magnitude(
            w,
            x,
            |b| (b.d, b.dmin),
            |b, d, dmin| (b.d, b.dmin) = (d, dmin),
        )
    }
}

impl TestBlock for BlockQ5_K {
    fn random(rng: &mut Rng) -> Self {
        let mut b: Self = zeroed();
        rng.bytes(bytemuck::bytes_of_mut(&mut b));
        b.d = rng.scale();
        b.dmin = rng.scale();
        b
    }

    fn extreme(_: &mut Rng) -> Self {
        BlockQ5_K {
            d: f16::MAX,
            dmin: f16::MAX,
            scales: [0xFF; 12],
            qh: [0xFF; QK_K / 8],
            qs: [0xFF; QK_K / 2],
        }
    }

    fn magnitude(w: &[Self], x: &[BlockQ8_K]) -> f64 {
        affine_magnitude(
            w,
            x,
            |b| (b.d, b.dmin),
            |b, d, dmin| (b.d, b.dmin) = (d, dmin),
        )
    }
}

impl TestBlock for BlockQ6_K {
    fn random(rng: &mut Rng) -> Self {
        let mut b: Self = zeroed();
        rng.bytes(bytemuck::bytes_of_mut(&mut b));
        b.d = rng.scale();
        b
    }

    /// Quants at 0 (the −32 extreme) against scales of −128.
    fn extreme(_: &mut Rng) -> Self {
        BlockQ6_K {
            ql: [0; QK_K / 2],
            qh: [0; QK_K / 4],
            scales: [-128; QK_K / 16],
            d: f16::MAX,
        }
    }

    /// `Σ_i |d·sc_i|·95·|x_i|`: kernels may work on the unbiased quants (up to 63) and subtract
    /// the bias (32) separately, so 63 + 32 bounds every partial sum.
    fn magnitude(w: &[Self], x: &[BlockQ8_K]) -> f64 {
        let xs = dequantized(x);
        let mut total = 0.0f64;
        for (i, b) in w.iter().enumerate() {
            for j in 0..QK_K {
                let dsc = (b.d.to_f64() * b.scales[j / 16] as f64).abs();
                total += dsc * 95.0 * (xs[QK_K * i + j] as f64).abs();
            }
        }
        total
    }
}
