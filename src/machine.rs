//! Facts about the machine that benchmarks and defaults need: memory read bandwidth (the
//! yardstick decode speed is reported against), physical cores, and peak resident memory.
//!
//! Decoding reads every active weight once per token, so the best a matvec can do is the rate at
//! which the machine streams memory into the cores. [`read_bandwidth`] measures that rate with the
//! same thread pool the kernels use, on a buffer far larger than any cache.

use rayon::prelude::*;
use std::time::Instant;

/// Bytes read per pass; large enough to defeat the last-level cache of desktop and server CPUs.
pub const DEFAULT_BYTES: usize = 1 << 30;

/// Measures read bandwidth in bytes per second over a `bytes`-sized buffer, in the current rayon
/// pool. Takes the best of `passes` passes (the first pass also faults the pages in).
pub fn read_bandwidth(bytes: usize, passes: usize) -> f64 {
    ReadProbe::new(bytes).measure(passes)
}

/// A buffer for repeated read-bandwidth measurements, so that a benchmark can measure the
/// bandwidth next to each of its repetitions (machines whose bandwidth drifts, such as shared
/// VMs, are then compared with themselves at the same moment).
pub struct ReadProbe {
    buf: Vec<u64>,
}

impl ReadProbe {
    /// Allocates and fills `bytes` of memory.
    pub fn new(bytes: usize) -> ReadProbe {
        let words = (bytes / 8).max(1);
        // Non-zero contents, so no OS shares zero pages behind our back.
        let buf = (0..words as u64).into_par_iter().map(|i| i | 1).collect();
        ReadProbe { buf }
    }

    /// Bytes per second read by the current rayon pool: the best of `passes` passes.
    pub fn measure(&self, passes: usize) -> f64 {
        let chunk = 1 << 16; // 512 KiB per task
        let mut best = 0.0f64;
        for _ in 0..passes.max(1) {
            let start = Instant::now();
            let sum: u64 = self
                .buf
                .par_chunks(chunk)
                .map(sum_words)
                .reduce(|| 0, u64::wrapping_add);
            let secs = start.elapsed().as_secs_f64();
            std::hint::black_box(sum);
            best = best.max((self.buf.len() * 8) as f64 / secs);
        }
        best
    }
}

/// Sums with eight independent accumulators so the loop is bound by loads, not by an add chain
/// (the compiler vectorises it with whatever the build targets; SSE2 suffices to saturate DRAM).
fn sum_words(words: &[u64]) -> u64 {
    let mut acc = [0u64; 8];
    let mut it = words.chunks_exact(8);
    for c in &mut it {
        for (a, &w) in acc.iter_mut().zip(c) {
            *a = a.wrapping_add(w);
        }
    }
    let tail = it.remainder().iter().fold(0u64, |s, &w| s.wrapping_add(w));
    acc.iter().fold(tail, |s, &a| s.wrapping_add(a))
}

/// Physical cores: hyper-threads share a core's load units, so memory-bound decoding gains
/// nothing from them. Falls back to logical CPUs where the topology is unknown.
pub fn physical_cores() -> usize {
    let logical = std::thread::available_parallelism().map_or(1, |n| n.get());
    let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else {
        return logical;
    };
    let mut cores = std::collections::HashSet::new();
    let mut package = String::new();
    for line in info.lines() {
        let value = || line.split(':').nth(1).unwrap_or("").trim().to_string();
        if line.starts_with("physical id") {
            package = value();
        } else if line.starts_with("core id") {
            cores.insert((package.clone(), value()));
        }
    }
    if cores.is_empty() {
        logical
    } else {
        cores.len().min(logical)
    }
}

/// The process's peak resident set size in bytes (Linux `VmHWM`), if the OS reports it.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
