//! The GPU half of `tandem bench --gpu N`: the device's read bandwidth (a probe kernel, as the CPU
//! half measures RAM) and, per weight format, matrix-vector GB/s on the Mixtral expert shapes and
//! their fraction of it.

use anyhow::Result;
use serde_json::json;
use tandem::backend::vulkan::bench::{self, MIXTRAL_EXPERT_SHAPES};
use tandem::backend::vulkan::kernels::{probe, Kernels};
use tandem::backend::vulkan::shaders::GPU_FORMATS;
use tandem::backend::vulkan::{Gpu, GpuChoice, GpuOptions};

/// Bytes the probe reads per pass (capped by the device's buffer limit).
const PROBE_BYTES: u64 = 1 << 30;

/// Prints the table (or, with `json`, one JSON object) for device `choice`; `types` limits the
/// formats (empty: all).
pub fn run(choice: GpuChoice, types: &[String], json: bool) -> Result<()> {
    let gpu = Gpu::open(choice, GpuOptions::default())?;
    let kernels = Kernels::new(&gpu);
    let bw = probe::read_bandwidth(&kernels, PROBE_BYTES, 20)?;
    if !json {
        println!(
            "GPU {} ({}, {} reductions): read bandwidth {:.1} GB/s",
            gpu.info.name,
            gpu.info.kind.name(),
            if gpu.subgroups {
                "subgroup"
            } else {
                "shared-memory"
            },
            bw / 1e9
        );
        println!(
            "{:<6} {:<12} {:>10} {:>9} {:>8}",
            "type", "shape", "us/call", "GB/s", "of read"
        );
    }
    let mut rows = Vec::new();
    for ty in GPU_FORMATS {
        if !types.is_empty() && !types.iter().any(|t| t.eq_ignore_ascii_case(ty.name())) {
            continue;
        }
        for (r, c) in MIXTRAL_EXPERT_SHAPES {
            let t = bench::matvec(&kernels, ty, r, c)?;
            let gbs = t.bytes_per_second() / 1e9;
            if json {
                rows.push(json!({
                    "type": ty.name(), "rows": r, "cols": c, "seconds": t.seconds,
                    "bytes_per_s": t.bytes_per_second(), "bw_fraction": t.bytes_per_second() / bw,
                }));
            } else {
                println!(
                    "{:<6} {:<12} {:>10.1} {:>9.2} {:>7.1}%",
                    ty.name(),
                    format!("{r}x{c}"),
                    t.seconds * 1e6,
                    gbs,
                    100.0 * t.bytes_per_second() / bw
                );
            }
        }
    }
    if json {
        println!(
            "{}",
            json!({
                "device": gpu.info.name, "type": gpu.info.kind.name(),
                "subgroup_reductions": gpu.subgroups, "read_bw_bytes_per_s": bw, "matvec": rows,
            })
        );
    }
    Ok(())
}
