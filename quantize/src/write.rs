//! Streams a plan into a GGUF file: one output tensor in memory at a time, its source read in
//! chunks of rows, quantized in parallel, then written through [`GgufWriter`] (temp file, fsync,
//! rename; removed on any error).

use crate::encode::encode;
use crate::plan::Planned;
use crate::source::Source;
use anyhow::{ensure, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::path::Path;
use tandem::gguf::{GgufWriter, Metadata, TensorSpec};

/// f32 values read from the source per step: 16 MiB, the fixed margin above the largest output
/// tensor that bounds peak memory.
const CHUNK_VALUES: u64 = 1 << 22;

/// Writes `plan` from `source` to `out`. Shows a progress bar (output bytes, rate, ETA) when
/// `progress` is set and stderr is a terminal.
pub fn write_gguf(
    out: &Path,
    metadata: &Metadata,
    plan: &[Planned],
    source: &dyn Source,
    progress: bool,
) -> Result<()> {
    let specs: Vec<TensorSpec> = plan.iter().map(Planned::spec).collect();
    let mut writer = GgufWriter::create(out, metadata, &specs)?;
    let total: u64 = plan.iter().map(Planned::nbytes).sum();
    let bar = progress_bar(total, progress);
    let mut bytes = Vec::new();
    let mut values = Vec::new();
    for p in plan {
        bar.set_message(p.name.clone());
        fill_tensor(p, source, &mut bytes, &mut values, &bar)
            .with_context(|| format!("tensor `{}`", p.name))?;
        writer.write_tensor(&p.name, &bytes)?;
    }
    writer.finish()?;
    bar.finish_and_clear();
    Ok(())
}

fn progress_bar(total: u64, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {wide_msg}",
    ) {
        bar.set_style(style);
    }
    bar
}

/// Makes the bytes of one output tensor in `bytes`.
fn fill_tensor(
    p: &Planned,
    source: &dyn Source,
    bytes: &mut Vec<u8>,
    values: &mut Vec<f32>,
    bar: &ProgressBar,
) -> Result<()> {
    let nbytes = usize::try_from(p.nbytes())?;
    bytes.clear();
    bytes.resize(nbytes, 0);
    let row_len = p.ne.first().copied().unwrap_or(1).max(1);
    let n_values: u64 = p.ne.iter().product();
    let total_rows = n_values / row_len;
    let n_parts = p.parts.len() as u64;
    ensure!(
        n_parts > 0 && total_rows.is_multiple_of(n_parts),
        "no source rows"
    );
    let part_rows = total_rows / n_parts;
    let row_bytes = (nbytes as u64).checked_div(total_rows).unwrap_or(0);
    // Permuted rows are handled a head at a time, so chunks hold whole heads.
    let group = match p.permute_heads {
        Some(h) => part_rows / u64::from(h),
        None => 1,
    };
    let chunk_rows = ((CHUNK_VALUES / row_len) / group * group).max(group);
    for (k, &part) in p.parts.iter().enumerate() {
        let src = &source.tensors()[part];
        ensure!(
            src.n_rows() == part_rows && src.row_len() == row_len,
            "source `{}` has shape {:?}, expected {part_rows} rows of {row_len}",
            src.name,
            src.shape
        );
        let mut row0 = 0;
        while row0 < part_rows {
            let n = chunk_rows.min(part_rows - row0);
            values.clear();
            values.resize(usize::try_from(n * row_len)?, 0.0);
            source
                .read_rows(part, row0, values)
                .with_context(|| format!("reading `{}`", src.name))?;
            source.release(part, row0, n);
            if p.permute_heads.is_some() {
                permute_qk_rows(values, row_len as usize, group as usize);
            }
            let start = usize::try_from((k as u64 * part_rows + row0) * row_bytes)?;
            let len = usize::try_from(n * row_bytes)?;
            encode(p.ty, values, &mut bytes[start..start + len])?;
            bar.inc(len as u64);
            row0 += n;
        }
    }
    Ok(())
}

/// llama.cpp's converter permutation of Q/K rows, per head of `head_dim` rows: HF's
/// rotate_half order (RoPE pairs `i`, `i + hd/2`) becomes adjacent pairs (`2i`, `2i + 1`), i.e.
/// `w.reshape(n_head, 2, hd/2, cols).swapaxes(1, 2)`. `rows` holds whole heads.
pub fn permute_qk_rows(rows: &mut [f32], row_len: usize, head_dim: usize) {
    let head_values = head_dim * row_len;
    let half = head_dim / 2;
    let mut head = vec![0.0f32; head_values];
    for h in rows.chunks_exact_mut(head_values) {
        head.copy_from_slice(h);
        for i in 0..half {
            for j in 0..2 {
                let src = (j * half + i) * row_len;
                let dst = (2 * i + j) * row_len;
                h[dst..dst + row_len].copy_from_slice(&head[src..src + row_len]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_matches_the_numpy_formula() {
        // 2 heads of width 4, rows of 1 value holding their own index: numpy's
        // arange(8).reshape(2, 2, 2, 1).swapaxes(1, 2).reshape(8) = [0, 2, 1, 3, 4, 6, 5, 7].
        let mut rows: Vec<f32> = (0..8).map(|i| i as f32).collect();
        permute_qk_rows(&mut rows, 1, 4);
        assert_eq!(rows, [0.0, 2.0, 1.0, 3.0, 4.0, 6.0, 5.0, 7.0]);
        // Rows of 3 values move as a whole.
        let mut rows: Vec<f32> = (0..12).map(|i| i as f32).collect();
        permute_qk_rows(&mut rows, 3, 4);
        assert_eq!(&rows[3..6], &[6.0, 7.0, 8.0]);
    }
}
