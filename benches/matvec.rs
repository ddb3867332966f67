//! Decode-shaped matvec throughput against the machine's own memory read bandwidth.
//!
//! For each weight type and instruction set this times `y = W · x` on the two Mixtral 8x7B expert
//! shapes (ffn_up/gate `[14336, 4096]` and ffn_down `[4096, 14336]`), cycling over enough distinct
//! copies of the matrix that every call streams its weights from DRAM, as decoding does. It prints
//! GB/s of weight bytes and the fraction of a plain memory-read benchmark measured in the same run.
//!
//! `cargo bench --bench matvec`; `TANDEM_BENCH_TYPES=q4_0,q8_0` limits the types,
//! `TANDEM_BENCH_ALL_ISAS=1` adds the slower instruction sets, `RAYON_NUM_THREADS` sets threads.

use std::time::{Duration, Instant};
use tandem::quant::simd::{self, Isa};
use tandem::quant::{GgmlType, Quantize};
use tandem::tensor::{matmul, QMatrix};

/// Bytes of weights cycled through per type: several times any last-level cache.
const WORKING_SET: usize = 768 << 20;
const MIN_TIME: Duration = Duration::from_millis(1500);

fn main() {
    let threads = rayon::current_num_threads();
    let bw = tandem::machine::read_bandwidth(tandem::machine::DEFAULT_BYTES, 5)
        .expect("map the bandwidth probe");
    println!(
        "memory read bandwidth: {:.2} GB/s ({threads} threads)",
        bw / 1e9
    );
    println!(
        "{:<6} {:<12} {:<13} {:>10} {:>9} {:>9}",
        "type", "isa", "shape", "us/call", "GB/s", "of read"
    );

    let wanted = std::env::var("TANDEM_BENCH_TYPES").ok();
    let types = [
        GgmlType::Q4_0,
        GgmlType::Q8_0,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::F16,
    ];
    let all_isas = std::env::var_os("TANDEM_BENCH_ALL_ISAS").is_some();
    let best = simd::detected();
    for ty in types {
        if let Some(list) = &wanted {
            if !list.split(',').any(|t| t.eq_ignore_ascii_case(ty.name())) {
                continue;
            }
        }
        for (rows, cols) in [(14336, 4096), (4096, 14336)] {
            let one = random_matrix(ty, rows, cols);
            let copies = (WORKING_SET / one.len()).max(2);
            // Copies 8-byte aligned, so every block type's alignment holds.
            let stride = one.len().next_multiple_of(8);
            let mut store =
                memmap2::MmapMut::map_anon(stride * copies).expect("map bench matrices");
            // Huge pages like the probe's and the model map's (see tandem::machine).
            #[cfg(target_os = "linux")]
            let _ = store.advise(memmap2::Advice::HugePage);
            for c in 0..copies {
                store[c * stride..][..one.len()].copy_from_slice(&one);
            }
            let mats: Vec<QMatrix> = (0..copies)
                .map(|c| {
                    let bytes = &store[c * stride..][..one.len()];
                    QMatrix::new(ty, rows, cols, bytes).expect("bench matrix")
                })
                .collect();
            let x: Vec<f32> = (0..cols)
                .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
                .collect();
            let mut y = vec![0.0f32; rows];
            for isa in simd::available() {
                if !all_isas && isa != best && isa != Isa::Scalar {
                    continue;
                }
                if isa == Isa::Scalar && !all_isas && ty != GgmlType::Q4_0 {
                    continue;
                }
                let secs = time_per_call(&mats, &x, &mut y, isa);
                let gbs = one.len() as f64 / secs / 1e9;
                println!(
                    "{:<6} {:<12} {:<13} {:>10.1} {:>9.2} {:>8.1}%",
                    ty.name(),
                    isa.name(),
                    format!("{rows}x{cols}"),
                    secs * 1e6,
                    gbs,
                    100.0 * gbs * 1e9 / bw
                );
            }
        }
    }
}

/// Median seconds per matvec, cycling through `mats` so no call finds its weights in cache.
fn time_per_call(mats: &[QMatrix], x: &[f32], y: &mut [f32], isa: Isa) -> f64 {
    for m in mats {
        matmul::matmul_with(m, x, 1, y, isa, matmul::Activations::Q8).expect("matvec");
    }
    let mut samples = Vec::new();
    let start = Instant::now();
    while start.elapsed() < MIN_TIME || samples.len() < 10 {
        for m in mats {
            let t = Instant::now();
            matmul::matmul_with(m, x, 1, y, isa, matmul::Activations::Q8).expect("matvec");
            samples.push(t.elapsed().as_secs_f64());
        }
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// A `[rows, cols]` matrix of `ty` from weights drawn like a trained model's (std ≈ 0.02).
fn random_matrix(ty: GgmlType, rows: usize, cols: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let src: Vec<f32> = (0..rows * cols)
        .map(|_| {
            // Sum of 4 uniforms: roughly normal, cheap and deterministic.
            let mut s = 0.0f32;
            for _ in 0..4 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                s += (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            }
            s * 0.035
        })
        .collect();
    tandem::dispatch_weight_type!(ty, W => quantize_to_bytes::<W>(&src),
        else t => panic!("{t} is not a weight type"))
}

fn quantize_to_bytes<W: Quantize>(src: &[f32]) -> Vec<u8> {
    use rayon::prelude::*;
    let mut blocks = vec![<W as bytemuck::Zeroable>::zeroed(); src.len() / W::VALUES];
    let per_task = 4096; // values; a multiple of every block size
    blocks
        .par_chunks_mut(per_task / W::VALUES)
        .zip(src.par_chunks(per_task))
        .for_each(|(b, s)| W::quantize(s, b));
    bytemuck::cast_slice(&blocks).to_vec()
}
