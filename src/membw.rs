//! A plain memory-read benchmark: the yardstick that decode speed is reported against.
//!
//! Decoding reads every active weight once per token, so the best a matvec can do is the rate at
//! which the machine streams memory into the cores. This measures that rate with the same thread
//! pool the kernels use, on a buffer far larger than any cache.

use rayon::prelude::*;
use std::time::Instant;

/// Bytes read per pass; large enough to defeat the last-level cache of desktop and server CPUs.
pub const DEFAULT_BYTES: usize = 1 << 30;

/// Measures read bandwidth in bytes per second over a `bytes`-sized buffer, in the current rayon
/// pool. Takes the best of `passes` passes (the first pass also faults the pages in).
pub fn read_bandwidth(bytes: usize, passes: usize) -> f64 {
    let words = (bytes / 8).max(1);
    // Non-zero contents, so no OS shares zero pages behind our back.
    let buf: Vec<u64> = (0..words as u64).into_par_iter().map(|i| i | 1).collect();
    let chunk = 1 << 16; // 512 KiB per task
    let mut best = 0.0f64;
    for _ in 0..passes.max(1) {
        let start = Instant::now();
        let sum: u64 = buf.par_chunks(chunk).map(sum_words).reduce(|| 0, u64::wrapping_add);
        let secs = start.elapsed().as_secs_f64();
        std::hint::black_box(sum);
        best = best.max((words * 8) as f64 / secs);
    }
    best
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
