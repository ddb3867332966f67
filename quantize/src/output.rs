//! What every command does around the write: refuse to overwrite, check free space, print the
//! plan (`--dry-run`), reopen and check the result, and the closing summary.

use crate::plan::Planned;
use anyhow::{bail, ensure, Context, Result};
use std::path::Path;
use std::time::Duration;
use tandem::gguf::GgufFile;

/// Room kept free beyond the estimated file size (the header, and other writers' margin).
const DISK_MARGIN: u64 = 64 << 20;

/// Fails if `out` exists and `force` is not set, or if its filesystem has too little room for
/// `bytes` more (checked up front so a long conversion does not die at 95%).
pub fn check_destination(out: &Path, force: bool, bytes: u64) -> Result<()> {
    if out.exists() && !force {
        bail!("{} exists; pass --force to overwrite it", out.display());
    }
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    ensure!(
        dir.is_dir(),
        "output directory {} does not exist",
        dir.display()
    );
    let free = fs4::available_space(dir)
        .with_context(|| format!("checking free space in {}", dir.display()))?;
    let need = bytes.saturating_add(DISK_MARGIN);
    ensure!(
        free >= need,
        "{} has {} free, the output needs about {}",
        dir.display(),
        human(free),
        human(need)
    );
    Ok(())
}

/// The plan as a table: name, type, shape, bytes, source.
pub fn print_plan(plan: &[Planned], source_names: &dyn Fn(&Planned) -> String) {
    println!(
        "{:<34} {:<5} {:<22} {:>14}  source",
        "tensor", "type", "shape", "bytes"
    );
    for p in plan {
        println!(
            "{:<34} {:<5} {:<22} {:>14}  {}",
            p.name,
            p.ty.name(),
            format!("{:?}", p.ne),
            p.nbytes(),
            source_names(p)
        );
    }
    let total: u64 = plan.iter().map(Planned::nbytes).sum();
    let values: u64 = plan.iter().map(|p| p.ne.iter().product::<u64>()).sum();
    println!(
        "{} tensors, {} of tensor data, {:.2} bits per weight",
        plan.len(),
        human(total),
        bits_per_weight(total, values)
    );
}

/// Reopens the written file and checks its tensor count, names, shapes and types against the
/// plan.
pub fn check_written(out: &Path, plan: &[Planned]) -> Result<GgufFile> {
    let file = GgufFile::open(out).with_context(|| format!("reopening {}", out.display()))?;
    ensure!(
        file.tensors().len() == plan.len(),
        "{}: {} tensors written, {} planned",
        out.display(),
        file.tensors().len(),
        plan.len()
    );
    for (t, p) in file.tensors().iter().zip(plan) {
        ensure!(
            t.name() == p.name && t.ne() == p.ne.as_slice() && t.ty() == p.ty,
            "{}: tensor `{}` {:?} {} does not match the plan (`{}` {:?} {})",
            out.display(),
            t.name(),
            t.ne(),
            t.ty(),
            p.name,
            p.ne,
            p.ty
        );
    }
    Ok(file)
}

/// The closing summary.
pub fn print_summary(input_bytes: u64, file: &GgufFile, elapsed: Duration) {
    let values: u64 = file.tensors().iter().map(|t| t.n_elements()).sum();
    let data: u64 = file.tensors().iter().map(|t| t.nbytes()).sum();
    let secs = elapsed.as_secs_f64();
    let rss = tandem::machine::peak_rss_bytes()
        .map(human)
        .unwrap_or_else(|| "unknown".into());
    eprintln!(
        "input {}, output {} ({} tensors), {:.2} bits per weight, {:.1} s ({}/s), peak RSS {}",
        human(input_bytes),
        human(file.file_size()),
        file.tensors().len(),
        bits_per_weight(data, values),
        secs,
        human((file.file_size() as f64 / secs.max(1e-9)) as u64),
        rss
    );
}

fn bits_per_weight(bytes: u64, values: u64) -> f64 {
    if values == 0 {
        0.0
    } else {
        bytes as f64 * 8.0 / values as f64
    }
}

/// Bytes in binary units (`3.25 GiB`).
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}
