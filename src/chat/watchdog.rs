//! A last-resort guard around template rendering.
//!
//! Fuel stops almost every runaway template, but minijinja 3.1 materializes a deep chain of
//! list concatenations (`{% set ns.l = ns.l + ns.l %}` 33 times or more) without charging
//! fuel, which can allocate until the machine runs out of memory. A render cannot be stopped
//! from outside, so it runs on a thread of its own: when it grows the process by more than
//! [`MAX_GROWTH`] or runs longer than [`MAX_TIME`], [`guarded`] returns an error and abandons
//! the thread. The thread may go on allocating, so a caller that gets [`Stopped::RanAway`]
//! should end the process soon (the CLI does); the library never exits on its own.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Real templates allocate kilobytes; fuel alone caps a render near 64 MiB.
const MAX_GROWTH: u64 = 1 << 30;
/// Fuel stops runaway loops in well under a second.
const MAX_TIME: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(5);

/// Why a guarded job produced nothing.
#[derive(Debug, thiserror::Error)]
pub enum Stopped {
    #[error(
        "ran away past its fuel budget ({allocated_mib} MiB allocated, {:.1} s); stopped",
        elapsed.as_secs_f64()
    )]
    RanAway {
        allocated_mib: u64,
        elapsed: Duration,
    },
    #[error("could not start a thread to run it: {0}")]
    Spawn(std::io::Error),
}

/// The process's resident set size (Linux `VmRSS`), if the OS reports it.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Runs `f` on a thread of its own while watching the process's memory and the clock. A panic
/// in `f` is resumed on the caller's thread.
pub fn guarded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Stopped> {
    let base = rss_bytes();
    let start = Instant::now();
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::Builder::new()
        .name("chat-template".into())
        .spawn(move || {
            // The receiver is gone only when the watchdog gave up on this job.
            let _ = tx.send(f());
        })
        .map_err(Stopped::Spawn)?;
    loop {
        match rx.recv_timeout(POLL) {
            Ok(out) => return Ok(out),
            // The sender was dropped without sending: `f` panicked.
            Err(RecvTimeoutError::Disconnected) => match worker.join() {
                Err(panic) => std::panic::resume_unwind(panic),
                Ok(()) => unreachable!("the worker sends before it returns"),
            },
            Err(RecvTimeoutError::Timeout) => {
                let grown = base
                    .zip(rss_bytes())
                    .map_or(0, |(b, now)| now.saturating_sub(b));
                let elapsed = start.elapsed();
                if grown > MAX_GROWTH || elapsed > MAX_TIME {
                    return Err(Stopped::RanAway {
                        allocated_mib: grown >> 20,
                        elapsed,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_jobs_result() {
        assert_eq!(guarded(|| 6 * 7).unwrap(), 42);
    }

    /// A job past the time limit is abandoned with an error; the test binary lives on.
    #[test]
    fn a_job_past_the_time_limit_is_an_error_not_an_exit() {
        let e = guarded(|| std::thread::sleep(MAX_TIME + Duration::from_secs(60))).unwrap_err();
        assert!(
            matches!(e, Stopped::RanAway { elapsed, .. } if elapsed > MAX_TIME),
            "{e}"
        );
    }

    #[test]
    #[should_panic(expected = "boom")]
    fn a_panic_in_the_job_reaches_the_caller() {
        let _ = guarded(|| panic!("boom"));
    }
}
