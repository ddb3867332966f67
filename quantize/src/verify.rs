//! `--verify`: dequantize a sample of rows of every written tensor and compare them with the
//! source rows they were made from.

use crate::encode::decode;
use crate::plan::Planned;
use crate::source::Source;
use crate::write::permute_qk_rows;
use anyhow::{ensure, Context, Result};
use tandem::gguf::GgufFile;

/// Rows sampled per tensor (spread evenly, always including the first and last).
const SAMPLE_ROWS: u64 = 8;

/// The error of one tensor's sampled rows.
#[derive(Clone, Debug)]
pub struct TensorError {
    pub name: String,
    pub rmse: f64,
    /// RMSE divided by the RMS of the source values.
    pub relative: f64,
}

/// Compares sampled rows of each tensor in `file` with the source.
pub fn verify(file: &GgufFile, plan: &[Planned], source: &dyn Source) -> Result<Vec<TensorError>> {
    let mut report = Vec::new();
    for (p, info) in plan.iter().zip(file.tensors()) {
        let row_len = p.ne.first().copied().unwrap_or(1).max(1);
        let total_rows: u64 = p.ne.iter().product::<u64>() / row_len;
        let part_rows = total_rows / p.parts.len() as u64;
        let row_bytes = info.nbytes() / total_rows.max(1);
        let bytes = file.tensor_bytes(info);
        // Permuted tensors are compared a whole head at a time.
        let group = p.permute_heads.map_or(1, |h| part_rows / u64::from(h));
        let (mut err2, mut ref2, mut n) = (0.0f64, 0.0f64, 0u64);
        for k in 0..SAMPLE_ROWS.min(total_rows / group) {
            let step = (total_rows / group - 1) / (SAMPLE_ROWS - 1).max(1);
            let row = (k * step.max(1)).min(total_rows / group - 1) * group;
            let (part, row_in_part) = (row / part_rows, row % part_rows);
            let mut want = vec![0.0f32; (group * row_len) as usize];
            source
                .read_rows(p.parts[part as usize], row_in_part, &mut want)
                .with_context(|| format!("verify: reading the source of `{}`", p.name))?;
            if p.permute_heads.is_some() {
                permute_qk_rows(&mut want, row_len as usize, group as usize);
            }
            let start = (row * row_bytes) as usize;
            let end = start + (group * row_bytes) as usize;
            ensure!(end <= bytes.len(), "verify: `{}` is too short", p.name);
            let mut got = vec![0.0f32; want.len()];
            decode(p.ty, &bytes[start..end], &mut got)?;
            for (&a, &b) in got.iter().zip(&want) {
                err2 += (f64::from(a) - f64::from(b)).powi(2);
                ref2 += f64::from(b).powi(2);
            }
            n += want.len() as u64;
        }
        let rmse = (err2 / n.max(1) as f64).sqrt();
        let rms = (ref2 / n.max(1) as f64).sqrt();
        report.push(TensorError {
            name: p.name.clone(),
            rmse,
            relative: if rms > 0.0 { rmse / rms } else { 0.0 },
        });
    }
    Ok(report)
}

/// Prints the report, one line per tensor.
pub fn print_report(plan: &[Planned], report: &[TensorError]) {
    println!(
        "{:<34} {:<5} {:>12} {:>10}",
        "tensor", "type", "RMSE", "rel. RMSE"
    );
    for (p, e) in plan.iter().zip(report) {
        println!(
            "{:<34} {:<5} {:>12.3e} {:>10.3e}",
            e.name,
            p.ty.name(),
            e.rmse,
            e.relative
        );
    }
}
