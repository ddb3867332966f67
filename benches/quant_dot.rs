//! Dot-product kernels per weight format and instruction set, in GB/s of weight bytes read.
//!
//! The operands are one 4096-value row (Mixtral's d_model) and stay in L1, so this measures the
//! kernels' arithmetic throughput; `benches/matvec.rs` measures them against DRAM. Grouped
//! kernels are timed on their decode tile (4 weight rows × 1 activation row) and prefill tile
//! (2 × 4); the GB/s are of weight bytes, so the prefill tile does 4× the products per byte.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;
use tandem::quant::simd::{self, SimdDot};
use tandem::quant::{Block, GgmlType, Quantize};

const COLS: usize = 4096;

fn bench_format<W: SimdDot>(c: &mut Criterion) {
    let src: Vec<f32> = (0..COLS)
        .map(|i| ((i * 7919) % 2003) as f32 / 1001.0 - 1.0)
        .collect();
    let mut w = vec![<W as bytemuck::Zeroable>::zeroed(); COLS / W::VALUES];
    W::quantize(&src, &mut w);
    let mut x = vec![<W::Act as bytemuck::Zeroable>::zeroed(); COLS / <W::Act as Block>::VALUES];
    <W::Act as Quantize>::quantize(&src, &mut x);

    let mut group = c.benchmark_group(format!("dot/{}", W::TYPE.name()));
    group.throughput(Throughput::Bytes(std::mem::size_of_val(w.as_slice()) as u64));
    group.warm_up_time(Duration::from_millis(300));
    group.measurement_time(Duration::from_millis(800));
    for isa in simd::available() {
        let dot = simd::dot_fn::<W>(isa);
        group.bench_with_input(BenchmarkId::from_parameter(isa.name()), &(), |b, _| {
            b.iter(|| dot(std::hint::black_box(&w), std::hint::black_box(&x)))
        });
        let Some(grouped) = simd::grouped::grouped::<W>(isa) else {
            continue;
        };
        let prepared = vec![grouped.prepared(&x); 4];
        // (weight rows, activation rows): one pair, decode's tile, prefill's tile.
        for (rows, acts) in [(1, 1), (4, 1), (2, 4)] {
            let w_rows = w.repeat(rows);
            let mut out = vec![0.0f32; rows * acts];
            let id = BenchmarkId::new(format!("grouped-{rows}x{acts}"), isa.name());
            group.throughput(Throughput::Bytes(
                std::mem::size_of_val(w_rows.as_slice()) as u64
            ));
            group.bench_with_input(id, &(), |b, _| {
                b.iter(|| {
                    (grouped.dot)(
                        std::hint::black_box(&w_rows),
                        w.len(),
                        rows,
                        std::hint::black_box(&prepared[..acts]),
                        &mut out,
                    )
                })
            });
        }
        group.throughput(Throughput::Bytes(std::mem::size_of_val(w.as_slice()) as u64));
    }
    group.finish();
}

fn dots(c: &mut Criterion) {
    for ty in [
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
        GgmlType::F16,
        GgmlType::BF16,
        GgmlType::F32,
    ] {
        tandem::dispatch_weight_type!(ty, W => bench_format::<W>(c), else t => panic!("{t}"));
    }
}

criterion_group!(benches, dots);
criterion_main!(benches);
