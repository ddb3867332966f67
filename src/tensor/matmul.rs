//! Matrix products with quantized weights: `Y = X · Wᵀ` for a row-major weight matrix `W`.
//!
//! Each activation row is quantized once into the format the weight type is paired with
//! ([`DotWith::Act`]), then dotted with every weight row by the best SIMD kernel. Weight rows are
//! split across the current rayon pool; each task reads its weight rows once and dots them with
//! all activation rows, so a batch reads the weights once.

use super::matrix::{MatrixError, QMatrix};
use crate::quant::simd::grouped::{
    GroupedFn, Prepared, GROUP, MAX_ACTS, MAX_PAIRS, MAX_WEIGHT_ROWS,
};
use crate::quant::simd::{self, DotFn, Isa, MultiDotFn, SimdDot, SimdQuantize, MULTI_ACTS};
use crate::quant::{Block, DotWith, GgmlType, Quantize};
use rayon::prelude::*;

/// Weight rows per rayon task: small enough to balance 2–64 threads on 4096-row matrices, large
/// enough that scheduling costs nothing next to reading the rows.
const ROWS_PER_TASK: usize = 16;

/// How activations are quantized before the integer dot products.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Activations {
    /// One 8-bit pass, as llama.cpp does: the fastest.
    #[default]
    Q8,
    /// Two 8-bit passes, the second over the first one's rounding error, each dotted with the
    /// weights: about 16-bit activations for twice the dot-product work and no extra weight
    /// traffic (the second dot re-reads the row from L1). Brings quantized models' outputs
    /// close to the exact answer for their weights (see tests/perplexity_kld.rs).
    Q16,
}

impl Activations {
    pub fn parse(s: &str) -> Option<Activations> {
        match s.to_ascii_lowercase().as_str() {
            "q8" => Some(Activations::Q8),
            "q16" => Some(Activations::Q16),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Activations::Q8 => "q8",
            Activations::Q16 => "q16",
        }
    }
}

/// The second pass quantizes the residual times this power of two, which lifts it back to the
/// first pass's range: Q8_0 keeps its scale in f16, and a residual ~256× smaller than the
/// activations could otherwise fall into f16's subnormals and lose its precision.
const RESIDUAL_SCALE: f32 = 256.0;

/// A matmul's working buffers, kept from call to call by whoever makes many products (the
/// forward pass): the quantized activation rows, the grouped kernels' prepared rows and the
/// transposed batch output. Every call overwrites what it uses, so the contents are never read
/// stale.
#[derive(Default)]
pub struct MatmulScratch {
    /// The quantized activation rows (and their rounding error's, for two passes) of whatever
    /// block type the weights pair with, as raw words (8-byte aligned, which every block type
    /// fits).
    acts: Vec<u64>,
    prepared: Vec<Prepared>,
    /// `[rows, n]`: a batch's products before the transpose.
    yt: Vec<f32>,
    /// The grouped kernels' products in part order.
    dots: Vec<f32>,
}

/// `len` activation blocks of type `A` for the rows and, with `two_pass`, `len` more for their
/// residual's (else none), from a word buffer grown when short. Every block type is at most
/// 8-byte aligned, like the words.
fn act_rows<A: bytemuck::Pod>(
    words: &mut Vec<u64>,
    len: usize,
    two_pass: bool,
) -> (&mut [A], &mut [A]) {
    let bytes = (1 + usize::from(two_pass)) * len * std::mem::size_of::<A>();
    if words.len() * 8 < bytes {
        words.resize(bytes.div_ceil(8), 0);
    }
    let all: &mut [A] =
        bytemuck::cast_slice_mut(&mut bytemuck::cast_slice_mut::<u64, u8>(words)[..bytes]);
    all.split_at_mut(len)
}

/// A buffer of at least `len` values, grown when short; its contents are left as they were.
fn at_least(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    &mut buf[..len]
}

/// `Y = X · Wᵀ` (`x: [n, cols]`, `y: [n, rows]`, both row-major) with the kernels of `isa`
/// (which must be in [`simd::available`]) and activations quantized at `acts` precision.
pub fn matmul_with(
    w: &QMatrix,
    x: &[f32],
    n: usize,
    y: &mut [f32],
    isa: Isa,
    acts: Activations,
) -> Result<(), MatrixError> {
    matmul_in(w, x, n, y, isa, acts, &mut MatmulScratch::default())
}

/// [`matmul_with`], with its working buffers from `scratch`.
pub fn matmul_in(
    w: &QMatrix,
    x: &[f32],
    n: usize,
    y: &mut [f32],
    isa: Isa,
    acts: Activations,
    scratch: &mut MatmulScratch,
) -> Result<(), MatrixError> {
    assert_eq!(x.len(), n * w.cols, "matmul: x must be [n, cols]");
    assert_eq!(y.len(), n * w.rows, "matmul: y must be [n, rows]");
    crate::dispatch_weight_type!(w.ty, W => matmul_typed::<W>(w, x, n, y, isa, acts, scratch),
        else t => Err(MatrixError::Unsupported(t)))
}

fn matmul_typed<W: SimdDot>(
    w: &QMatrix,
    x: &[f32],
    n: usize,
    y: &mut [f32],
    isa: Isa,
    acts: Activations,
    scratch: &mut MatmulScratch,
) -> Result<(), MatrixError>
where
    W::Act: SimdQuantize,
{
    let blocks: &[W] = w.blocks()?; // [rows, cols / W::VALUES]
    let w_per_row = w.cols / W::VALUES;
    let x_per_row = w.cols / <W::Act as Block>::VALUES;
    let MatmulScratch {
        acts: words,
        prepared,
        yt,
        dots,
    } = scratch;

    let quantize = <W::Act as SimdQuantize>::quantizer(isa);
    // f32 activations (float weights) are exact already: no second pass.
    let two_pass = acts == Activations::Q16 && <W::Act as Block>::TYPE != GgmlType::F32;
    // [n, cols / Act::VALUES] each: the quantized rows, and the rounding error of `xq`,
    // quantized (empty for one pass).
    let (xq, xr) = act_rows::<W::Act>(words, n * x_per_row, two_pass);
    if two_pass {
        xq.par_chunks_mut(x_per_row)
            .zip(xr.par_chunks_mut(x_per_row))
            .zip(x.par_chunks(w.cols))
            // One residual buffer per rayon split, not per row.
            .for_each_init(
                || vec![0.0f32; w.cols],
                |residual, ((q, r), row)| {
                    quantize(row, q);
                    <W::Act as Quantize>::dequantize(q, residual);
                    for (e, &v) in residual.iter_mut().zip(row) {
                        *e = (v - *e) * RESIDUAL_SCALE;
                    }
                    quantize(residual, r);
                },
            );
    } else {
        xq.par_chunks_mut(x_per_row)
            .zip(x.par_chunks(w.cols))
            .for_each(|(q, row)| quantize(row, q));
    }

    let grouped = simd::grouped::grouped::<W>(isa).filter(|_| w_per_row.is_multiple_of(GROUP));
    // Tasks own whole weight rows, so for a batch they fill a transposed [rows, n] buffer.
    let yt = at_least(yt, if n == 1 { 0 } else { w.rows * n });
    let out = if n == 1 { &mut *y } else { &mut yt[..] };
    if let Some(kernel) = grouped {
        // [n main rows, then n residual rows when two-pass]
        let all = xq.len() / x_per_row + xr.len() / x_per_row;
        if prepared.len() < all {
            prepared.resize_with(all, Prepared::default);
        }
        let prepared = &mut prepared[..all];
        prepared
            .par_iter_mut()
            .zip(xq.par_chunks(x_per_row).chain(xr.par_chunks(x_per_row)))
            .for_each(|(p, x)| (kernel.prepare)(x, p));
        grouped_rows_times_batch(kernel.dot, blocks, w_per_row, prepared, out, dots);
    } else {
        let acts = Acts {
            main: xq,
            residual: xr,
            per_row: x_per_row,
        };
        rows_times_batch(
            simd::dot_fn::<W>(isa),
            W::multi(isa),
            blocks,
            w_per_row,
            &acts,
            out,
        );
    }
    if n == 1 {
        return Ok(());
    }
    transpose_into(yt, n, y);
    Ok(())
}

/// `y[t * rows + r] = yt[r * n + t]`: `yt: [rows, n]` into `y: [n, rows]`, in parallel blocks of
/// rows (a serial element-by-element transpose of a 14336-row batch was ~5% of prefill).
fn transpose_into(yt: &[f32], n: usize, y: &mut [f32]) {
    const BLOCK: usize = 256; // rows per task: [BLOCK, n] of `yt` stays in L2
    let rows = yt.len() / n;
    // Per block of rows, its piece of each of the n output rows.
    let mut pieces: Vec<Vec<&mut [f32]>> = (0..rows.div_ceil(BLOCK))
        .map(|_| Vec::with_capacity(n))
        .collect();
    for out_row in y.chunks_mut(rows) {
        for (b, piece) in out_row.chunks_mut(BLOCK).enumerate() {
            pieces[b].push(piece);
        }
    }
    pieces
        .into_par_iter()
        .zip(yt.par_chunks(BLOCK * n))
        .for_each(|(mut dst, src)| {
            for (t, piece) in dst.iter_mut().enumerate() {
                for (r, v) in piece.iter_mut().enumerate() {
                    *v = src[r * n + t];
                }
            }
        });
}

/// Quantized activation rows, `[n, per_row]` each; `residual` is empty for one-pass activations.
struct Acts<'a, A> {
    main: &'a [A],
    residual: &'a [A],
    per_row: usize,
}

/// `out[r * n + t] = dot(W[r], X[t])` for all weight rows `r` and activation rows `t`. With a
/// multi-row dot, each weight row meets the activation rows a tile at a time, unpacked once per
/// tile instead of once per activation row (the results are the same, bit for bit).
fn rows_times_batch<W: DotWith>(
    dot: DotFn<W>,
    multi: Option<MultiDotFn<W>>,
    blocks: &[W],
    w_per_row: usize,
    acts: &Acts<W::Act>,
    out: &mut [f32],
) {
    let n = acts.main.len() / acts.per_row;
    let multi = multi.filter(|_| n > 1);
    // `o[t] (+)= scale · w · x_t` for the activation rows `xs: [n, per_row]`.
    let dots = |row: &[W], xs: &[W::Act], o: &mut [f32], scale: f32, add: bool| {
        let put = |v: &mut f32, d: f32| *v = if add { *v + d * scale } else { d };
        match multi {
            Some(multi) => {
                let mut tile = [0.0f32; MULTI_ACTS];
                for (o, xs) in o
                    .chunks_mut(MULTI_ACTS)
                    .zip(xs.chunks(MULTI_ACTS * acts.per_row))
                {
                    let mut refs: [&[W::Act]; MULTI_ACTS] = [&[]; MULTI_ACTS];
                    for (r, x) in refs.iter_mut().zip(xs.chunks_exact(acts.per_row)) {
                        *r = x;
                    }
                    let tile = &mut tile[..o.len()];
                    multi(row, &refs[..o.len()], tile);
                    for (v, &d) in o.iter_mut().zip(tile.iter()) {
                        put(v, d);
                    }
                }
            }
            None => {
                for (v, x) in o.iter_mut().zip(xs.chunks_exact(acts.per_row)) {
                    put(v, dot(row, x));
                }
            }
        }
    };
    out.par_chunks_mut(ROWS_PER_TASK * n)
        .zip(blocks.par_chunks(ROWS_PER_TASK * w_per_row))
        .for_each(|(out, rows)| {
            for (o, row) in out.chunks_exact_mut(n).zip(rows.chunks_exact(w_per_row)) {
                dots(row, acts.main, o, 1.0, false);
                if !acts.residual.is_empty() {
                    dots(row, acts.residual, o, 1.0 / RESIDUAL_SCALE, true);
                }
            }
        });
}

/// [`rows_times_batch`] with a grouped kernel: `prepared` holds the `n` activation rows, then
/// (two-pass) their `n` residual rows; `out: [rows, n]`.
///
/// The matrix is cut into `parts` contiguous parts of `part_rows` rows, and each kernel call takes
/// row `i` of every part: the parts' rows share each activation load, and each part is still read
/// front to back as one stream (see [`GroupedFn`]; on Zen 4 this reads a 14336×4096 Q4_0 matrix
/// ~15% faster than one row at a time, where four adjacent rows at a time were ~40% slower).
/// Rows past `parts · part_rows` go one per call.
fn grouped_rows_times_batch<W: DotWith>(
    dot: GroupedFn<W>,
    blocks: &[W],
    w_per_row: usize,
    prepared: &[Prepared],
    out: &mut [f32],
    dots: &mut Vec<f32>,
) {
    let rows = blocks.len() / w_per_row;
    if rows == 0 {
        return;
    }
    let n = out.len() / rows;
    let all = prepared.len(); // n or 2n
    let acts_tile = all.min(MAX_ACTS);
    let parts = (MAX_PAIRS / acts_tile).min(MAX_WEIGHT_ROWS).min(rows);
    let part_rows = rows / parts;
    let stride = part_rows * w_per_row;
    // All dot products of `blocks` from `first` on, taking `k` rows `stride` apart per call, for
    // each activation tile: `dots: [k, all]`.
    let tile = |first: usize, k: usize, dots: &mut [f32]| {
        let mut tile_out = [0.0f32; MAX_PAIRS]; // [k, acts_tile]
        for (a, acts) in prepared.chunks(acts_tile).enumerate() {
            let tile_out = &mut tile_out[..k * acts.len()];
            dot(&blocks[first..], stride, k, acts, tile_out);
            for (p, v) in tile_out.chunks_exact(acts.len()).enumerate() {
                let at = p * all + a * acts_tile;
                dots[at..at + acts.len()].copy_from_slice(v);
            }
        }
    };
    // [part_rows, parts, all]: row p·part_rows + i at [i, p]; every value is written below.
    let dots = at_least(dots, part_rows * parts * all);
    dots.par_chunks_mut(ROWS_PER_TASK * parts * all)
        .enumerate()
        .for_each(|(task, d)| {
            for (k, d) in d.chunks_exact_mut(parts * all).enumerate() {
                tile((task * ROWS_PER_TASK + k) * w_per_row, parts, d);
            }
        });
    let main_rows = parts * part_rows;
    // [rows - main_rows, all]
    let mut tail = vec![0.0f32; (rows - main_rows) * all];
    for (j, d) in tail.chunks_exact_mut(all).enumerate() {
        tile((main_rows + j) * w_per_row, 1, d);
    }
    out.par_chunks_mut(COMBINE_ROWS * n)
        .enumerate()
        .for_each(|(c, out)| {
            for (k, o) in out.chunks_exact_mut(n).enumerate() {
                let r = c * COMBINE_ROWS + k;
                let d = if r < main_rows {
                    let (p, i) = (r / part_rows, r % part_rows);
                    &dots[(i * parts + p) * all..][..all]
                } else {
                    &tail[(r - main_rows) * all..][..all]
                };
                if all == n {
                    o.copy_from_slice(d);
                } else {
                    for ((v, &main), &res) in o.iter_mut().zip(&d[..n]).zip(&d[n..]) {
                        *v = main + res * (1.0 / RESIDUAL_SCALE);
                    }
                }
            }
        });
}

/// Output rows per task when the grouped products are put in row order.
const COMBINE_ROWS: usize = 2048;

/// The scalar reference for [`matmul`]: dequantize each weight row to f32 and dot it with the
/// f32 activations in f64. No activation quantization, so it is independent of the kernels.
pub fn matmul_reference(w: &QMatrix, x: &[f32], n: usize) -> Result<Vec<f32>, MatrixError> {
    let wf = dequantize(w)?; // [rows, cols]
    let mut y = vec![0.0f32; n * w.rows];
    for t in 0..n {
        let xr = &x[t * w.cols..(t + 1) * w.cols];
        for r in 0..w.rows {
            let wr = &wf[r * w.cols..(r + 1) * w.cols];
            y[t * w.rows + r] = wr
                .iter()
                .zip(xr)
                .map(|(&a, &b)| a as f64 * b as f64)
                .sum::<f64>() as f32;
        }
    }
    Ok(y)
}

/// Row `r` of the matrix as f32 (`out: [cols]`): an embedding lookup.
pub fn dequantize_row(w: &QMatrix, r: usize, out: &mut [f32]) -> Result<(), MatrixError> {
    crate::dispatch_weight_type!(w.ty, W => {
        let per_row = w.cols / W::VALUES;
        <W as Quantize>::dequantize(&w.blocks::<W>()?[r * per_row..(r + 1) * per_row], out);
        Ok(())
    }, else t => Err(MatrixError::Unsupported(t)))
}

/// The whole matrix as f32, `[rows, cols]`.
pub fn dequantize(w: &QMatrix) -> Result<Vec<f32>, MatrixError> {
    let mut out = vec![0.0f32; w.rows * w.cols];
    crate::dispatch_weight_type!(w.ty, W => {
        <W as Quantize>::dequantize(w.blocks::<W>()?, &mut out);
        Ok(out)
    }, else t => Err(MatrixError::Unsupported(t)))
}
