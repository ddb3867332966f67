//! Quantizing a 4096×256 f32 matrix (1 M weight-like values) to Q4_K, Q5_K and Q6_K on one
//! thread, with the scalar scale search (the reference) and the lane-parallel one, in M values/s.
//! A plain harness: one line per format and search (best of several runs), then the speedup.

use std::hint::black_box;
use std::time::Instant;
use tandem::quant::{BlockQ4_K, BlockQ5_K, BlockQ6_K, ScaleSearch, QK_K};

const ROWS: usize = 4096;
const COLS: usize = 256;
const RUNS: usize = 5;

/// Weight-like values: N(0, 0.02), one in 256 an outlier ten times larger (SplitMix64 and
/// Box–Muller, seeded, so every run quantizes the same matrix).
fn matrix() -> Vec<f32> {
    let mut state = 0x5eed_u64;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    (0..ROWS * COLS)
        .map(|_| {
            let u = 1.0 - (next() >> 11) as f64 / (1u64 << 53) as f64; // (0, 1]
            let v = (next() >> 11) as f64 / (1u64 << 53) as f64;
            let n = (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos();
            let outlier = if next().is_multiple_of(256) {
                10.0
            } else {
                1.0
            };
            (0.02 * n * outlier) as f32
        })
        .collect()
}

fn bench<B: bytemuck::Pod>(name: &str, src: &[f32], quantize: fn(&[f32], &mut [B], ScaleSearch)) {
    let mut out = vec![<B as bytemuck::Zeroable>::zeroed(); src.len() / QK_K];
    let mut rates = [0.0f64; 2];
    for (rate, search) in rates
        .iter_mut()
        .zip([ScaleSearch::Scalar, ScaleSearch::Lanes])
    {
        let mut best = f64::INFINITY;
        for _ in 0..RUNS {
            let t = Instant::now();
            quantize(black_box(src), &mut out, search);
            black_box(&out);
            best = best.min(t.elapsed().as_secs_f64());
        }
        *rate = src.len() as f64 / best / 1e6;
        println!("{name} {search:?}: {rate:.1} M values/s");
    }
    println!("{name} speedup: {:.2}x", rates[1] / rates[0]);
}

fn main() {
    let src = matrix();
    println!("quantize_rows: {ROWS}x{COLS} f32, one thread, best of {RUNS}");
    bench("Q4_K", &src, BlockQ4_K::quantize_with);
    bench("Q5_K", &src, BlockQ5_K::quantize_with);
    bench("Q6_K", &src, BlockQ6_K::quantize_with);
}
