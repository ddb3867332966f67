//! Facts about the machine that benchmarks and defaults need: memory read bandwidth (the
//! yardstick decode speed is reported against), physical cores, and peak resident memory.
//!
//! Decoding reads every active weight once per token, so the best a matvec can do is the rate at
//! which the machine streams memory into the cores. [`read_bandwidth`] measures that rate with the
//! same thread pool the kernels use, on a buffer far larger than any cache.
//!
//! Page size matters to that rate: streaming through 4 KiB pages costs a TLB miss every 4 KiB
//! (a two-level walk under virtualisation). The probe asks for huge pages, as the model map does
//! (see [`crate::gguf::GgufFile::open`]), and [`huge_page_bytes`] tells how much of a mapping got
//! them.

use memmap2::MmapMut;
use rayon::prelude::*;
use std::time::Instant;

/// Bytes read per pass; large enough to defeat the last-level cache of desktop and server CPUs.
pub const DEFAULT_BYTES: usize = 1 << 30;

/// Measures read bandwidth in bytes per second over a `bytes`-sized buffer, in the current rayon
/// pool. Takes the best of `passes` passes (the first pass also faults the pages in).
pub fn read_bandwidth(bytes: usize, passes: usize) -> std::io::Result<f64> {
    Ok(ReadProbe::new(bytes)?.measure(passes))
}

/// A buffer for repeated read-bandwidth measurements, so that a benchmark can measure the
/// bandwidth next to each of its repetitions (machines whose bandwidth drifts, such as shared
/// VMs, are then compared with themselves at the same moment).
pub struct ReadProbe {
    /// Anonymous memory, in huge pages where the OS grants them.
    buf: MmapMut,
}

impl ReadProbe {
    /// Maps and fills `bytes` of memory (rounded up to whole words).
    pub fn new(bytes: usize) -> std::io::Result<ReadProbe> {
        let mut buf = MmapMut::map_anon(bytes.max(8).next_multiple_of(8))?;
        // The best rate this machine streams at is the yardstick; in THP `madvise` mode only an
        // advised mapping gets 2 MiB pages (+40% on the Zen 4 VM this was written on). Where THP
        // is off the advice fails and the probe measures 4 KiB pages, like everything else.
        #[cfg(target_os = "linux")]
        let _ = buf.advise(memmap2::Advice::HugePage);
        // Non-zero contents, so no OS shares zero pages behind our back.
        bytemuck::cast_slice_mut::<u8, u64>(&mut buf)
            .par_iter_mut()
            .enumerate()
            .for_each(|(i, w)| *w = i as u64 | 1);
        Ok(ReadProbe { buf })
    }

    /// Bytes per second read by the current rayon pool: the best of `passes` passes.
    pub fn measure(&self, passes: usize) -> f64 {
        let mut best = 0.0f64;
        for _ in 0..passes.max(1) {
            let start = Instant::now();
            let sum = self.pass();
            let secs = start.elapsed().as_secs_f64();
            std::hint::black_box(sum);
            best = best.max(self.buf.len() as f64 / secs);
        }
        best
    }

    /// One timed pass: the wrapping sum of every word of the buffer, read by the current rayon
    /// pool in 512 KiB tasks.
    fn pass(&self) -> u64 {
        let chunk = 1 << 16;
        bytemuck::cast_slice::<u8, u64>(&self.buf)
            .par_chunks(chunk)
            .map(sum_words)
            .reduce(|| 0, u64::wrapping_add)
    }

    /// The size of the probe's buffer in bytes.
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// Bytes of the probe's buffer in huge pages (see [`huge_page_bytes`]).
    pub fn huge_page_bytes(&self) -> Option<u64> {
        huge_page_bytes(&self.buf)
    }
}

/// Bytes of the mappings under `region` that the kernel maps with huge pages (Linux
/// `/proc/self/smaps`: `AnonHugePages` + `FilePmdMapped`); `None` where the OS does not say.
pub fn huge_page_bytes(region: &[u8]) -> Option<u64> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
    let (start, end) = (
        region.as_ptr() as u64,
        region.as_ptr() as u64 + region.len() as u64,
    );
    Some(huge_page_kib(&smaps, start, end) * 1024)
}

/// KiB in huge pages over the `smaps` entries that overlap `[start, end)`.
fn huge_page_kib(smaps: &str, start: u64, end: u64) -> u64 {
    let mut inside = false;
    let mut kib = 0;
    for line in smaps.lines() {
        // An entry starts with its address range, `lo-hi perms offset dev inode [path]`.
        if let Some((lo, hi)) = line
            .split_whitespace()
            .next()
            .and_then(|range| range.split_once('-'))
            .and_then(|(lo, hi)| {
                Some((
                    u64::from_str_radix(lo, 16).ok()?,
                    u64::from_str_radix(hi, 16).ok()?,
                ))
            })
        {
            inside = lo < end && start < hi;
        } else if inside {
            let mut fields = line.split_whitespace();
            if let (Some("AnonHugePages:" | "FilePmdMapped:"), Some(v)) =
                (fields.next(), fields.next())
            {
                kib += v.parse::<u64>().unwrap_or(0);
            }
        }
    }
    kib
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
    let logical = logical_cpus();
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

/// Logical CPUs the process may run on.
pub fn logical_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A thread count a user asked for, if it is one this machine can use: at least 1 and at most its
/// logical CPUs (more threads than CPUs only take turns on them, and tens of thousands take a
/// minute to start before the OS refuses).
pub fn check_threads(n: usize) -> Result<usize, String> {
    let cpus = logical_cpus();
    if (1..=cpus).contains(&n) {
        Ok(n)
    } else {
        Err(format!(
            "{n} threads: this machine has {} physical cores and {cpus} logical CPUs; use 1 to {cpus}",
            physical_cores()
        ))
    }
}

/// Memory the OS could give the process without swapping (Linux `MemAvailable`), if it says.
pub fn available_memory() -> Option<u64> {
    mem_available(&std::fs::read_to_string("/proc/meminfo").ok()?)
}

fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The process's peak resident set size in bytes (Linux `VmHWM`), if the OS reports it.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Two entries as Linux 6.x prints them: a file map partly in PMD mappings, then anonymous
    // memory in transparent huge pages.
    const SMAPS: &str = "\
7f0000000000-7f0000600000 r--s 00000000 fe:00 5308518    /models/m.gguf
Size:               6144 kB
Rss:                6144 kB
AnonHugePages:         0 kB
FilePmdMapped:      4096 kB
VmFlags: rd mr me ms hg
7f0000600000-7f0000a00000 rw-p 00000000 00:00 0
Size:               4096 kB
AnonHugePages:      2048 kB
FilePmdMapped:         0 kB
VmFlags: rd wr mr mw me ac hg
";

    #[test]
    fn mem_available_is_read_in_bytes() {
        let info = "MemTotal:       24000000 kB\nMemFree:        14000000 kB\nMemAvailable:   22000000 kB\n";
        assert_eq!(mem_available(info), Some(22_000_000 * 1024));
        assert_eq!(mem_available("MemTotal: 5 kB\n"), None);
    }

    #[test]
    fn thread_counts_outside_the_machine_are_refused() {
        let cpus = logical_cpus();
        assert_eq!(check_threads(1), Ok(1));
        assert_eq!(check_threads(cpus), Ok(cpus));
        for n in [0, cpus + 1, 100_000] {
            let e = check_threads(n).unwrap_err();
            assert!(
                e.contains(&format!("{cpus} logical CPUs; use 1 to {cpus}")),
                "{e}"
            );
        }
    }

    #[test]
    fn huge_pages_are_counted_per_overlapping_entry() {
        let (a, b, c) = (0x7f00_0000_0000, 0x7f00_0060_0000, 0x7f00_00a0_0000);
        assert_eq!(huge_page_kib(SMAPS, a, a + 4096), 4096);
        assert_eq!(huge_page_kib(SMAPS, b, c), 2048);
        assert_eq!(huge_page_kib(SMAPS, a, c), 6144);
        assert_eq!(huge_page_kib(SMAPS, c, c + 4096), 0);
    }

    /// A pass reads every word once: its sum equals the closed form of the fill `i | 1`. The
    /// buffer is 1 MiB + 3 words, so the last task is short and `sum_words` has a remainder.
    #[test]
    fn probe_reads_its_whole_buffer() {
        let words = (1 << 17) + 3;
        let probe = ReadProbe::new(words * 8).expect("map 1 MiB");
        assert_eq!(probe.bytes(), words * 8);
        // Σ (i | 1) over 0..n: every even i is raised by one.
        let n = words as u64;
        let want = n * (n - 1) / 2 + n.div_ceil(2);
        assert_eq!(probe.pass(), want);
        assert!(probe.measure(1) > 0.0);
        // Linux always reports the field, even as 0; elsewhere there is nothing to read.
        assert_eq!(probe.huge_page_bytes().is_some(), cfg!(target_os = "linux"));
    }
}
