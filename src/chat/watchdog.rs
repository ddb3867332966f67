//! A last-resort guard around template rendering.
//!
//! Fuel stops almost every runaway template, but minijinja 3.1 materializes a deep chain of
//! list concatenations (`{% set ns.l = ns.l + ns.l %}` 33 times or more) without charging
//! fuel, which can allocate until the machine runs out of memory. A render cannot be stopped
//! from outside, so when one grows the process by more than [`MAX_GROWTH`] or runs longer than
//! [`MAX_TIME`], the process says why and exits instead of being killed by the OOM killer.

use std::time::{Duration, Instant};

/// Real templates allocate kilobytes; fuel alone caps a render near 64 MiB.
const MAX_GROWTH: u64 = 1 << 30;
/// Fuel stops runaway loops in well under a second.
const MAX_TIME: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(5);

/// The process's resident set size (Linux `VmRSS`), if the OS reports it.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Runs `f` on a worker thread while watching the process's memory and the clock.
pub fn guarded<T: Send>(what: &str, f: impl FnOnce() -> T + Send) -> T {
    let base = rss_bytes();
    let start = Instant::now();
    std::thread::scope(|s| {
        let waiter = std::thread::current();
        let worker = s.spawn(move || {
            let out = f();
            waiter.unpark();
            out
        });
        while !worker.is_finished() {
            std::thread::park_timeout(POLL);
            let grown = base
                .zip(rss_bytes())
                .map_or(0, |(b, now)| now.saturating_sub(b));
            let took = start.elapsed();
            if grown > MAX_GROWTH || took > MAX_TIME {
                eprintln!(
                    "error: {what} ran away past its fuel budget ({} MiB allocated, {:.1} s); stopping",
                    grown >> 20,
                    took.as_secs_f64()
                );
                std::process::exit(1);
            }
        }
        worker
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
