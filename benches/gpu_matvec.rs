//! GPU matrix-vector throughput against the device's own read bandwidth: per weight format, the
//! two Mixtral 8x7B expert shapes, GB/s of weight bytes and the fraction of a probe kernel's
//! bandwidth measured in the same run (the GPU counterpart of `benches/matvec.rs`).
//!
//! `cargo bench --bench gpu_matvec`; `TANDEM_BENCH_GPU=N` picks the device (default 0, any kind),
//! `TANDEM_BENCH_TYPES=q4_0,q8_0` limits the formats. Prints a line and exits when there is no
//! Vulkan device.

use tandem::backend::vulkan::bench::{self, MIXTRAL_EXPERT_SHAPES};
use tandem::backend::vulkan::kernels::{probe, Kernels};
use tandem::backend::vulkan::shaders::GPU_FORMATS;
use tandem::backend::vulkan::{Gpu, GpuChoice, GpuOptions};

fn main() {
    let index = std::env::var("TANDEM_BENCH_GPU")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let gpu = match Gpu::open(GpuChoice::Index(index), GpuOptions::default()) {
        Ok(g) => g,
        Err(e) => {
            println!("no GPU to benchmark: {e}");
            return;
        }
    };
    let kernels = Kernels::new(&gpu);
    let bw = probe::read_bandwidth(&kernels, 1 << 30, 20).expect("bandwidth probe");
    println!(
        "{} ({}): read bandwidth {:.1} GB/s",
        gpu.info.name,
        gpu.info.kind.name(),
        bw / 1e9
    );
    println!(
        "{:<6} {:<12} {:>10} {:>9} {:>8}",
        "type", "shape", "us/call", "GB/s", "of read"
    );
    let wanted = std::env::var("TANDEM_BENCH_TYPES").ok();
    for ty in GPU_FORMATS {
        if let Some(list) = &wanted {
            if !list.split(',').any(|t| t.eq_ignore_ascii_case(ty.name())) {
                continue;
            }
        }
        for (rows, cols) in MIXTRAL_EXPERT_SHAPES {
            let t = bench::matvec(&kernels, ty, rows, cols).expect("matvec");
            println!(
                "{:<6} {:<12} {:>10.1} {:>9.2} {:>7.1}%",
                ty.name(),
                format!("{rows}x{cols}"),
                t.seconds * 1e6,
                t.bytes_per_second() / 1e9,
                100.0 * t.bytes_per_second() / bw
            );
        }
    }
}
