//! Grouped kernels: 1–4 weight rows dotted with 1–4 prepared activation rows, 8 blocks per step.
//!
//! The per-block kernels redo, for every weight block, work that depends only on the
//! activations: the offset term of Q4_0 (`Σ 8·y`), the f16 → f32 conversion of the activation
//! scale, the broadcast of one scale product. Decoding on a few cores is bound by exactly those
//! instructions, not by memory. Here each activation row is *prepared* once per matmul:
//!
//! - its bytes are laid out the way the kernel consumes the weight bytes (for Q4_0: the low
//!   halves of 4 blocks, then their high halves, matching the low and high nibbles of `qs`),
//! - the offset term is folded into i32 lane initialisers, so `vpdpbusd` on the raw unsigned
//!   codes lands on the exact signed sum,
//! - its block scales are widened to f32 once.
//!
//! The kernel then reads 8 blocks of each of up to [`MAX_WEIGHT_ROWS`] weight rows in place (no
//! repacking: the weights stay in the mmap), pulls their 8 f16 scales out with one permute and
//! converts them in one instruction, and dots the unpacked codes with up to [`MAX_ACTS`]
//! activation rows. Several weight rows share each activation load (decode: the activation row
//! would otherwise be read from cache once per weight row, more bytes than the weights); several
//! activation rows share each weight unpacking (prefill).
//!
//! Integer sums are exact, as in the per-block kernels; each block's sum is split over a few
//! lanes (2 on AVX-512, 4 for Q4_0 on AVX2) that are scaled separately, so the result differs
//! from the scalar reference only in f32 rounding and addition order (see `check_grouped` in
//! tests/simd_legacy.rs for the bound).

// The kernels are x86-64 only so far: elsewhere the layouts and checks wait for NEON ones.
#![cfg_attr(
    not(target_arch = "x86_64"),
    allow(dead_code, unused_imports, unused_macros)
)]

use super::{Isa, SimdDot};
use crate::quant::{BlockQ4_0, BlockQ8_0, DotWith};

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;

/// Weight blocks per kernel step; a row must hold a whole number of groups.
pub const GROUP: usize = 8;

/// The most weight rows one kernel call takes.
pub const MAX_WEIGHT_ROWS: usize = 4;
/// The most activation rows one kernel call takes.
pub const MAX_ACTS: usize = 4;
/// The most (weight row, activation row) pairs one call takes: each has two f32 accumulators,
/// which must stay in registers.
pub const MAX_PAIRS: usize = 8;

/// One activation row in a grouped kernel's layout. `G` groups of [`GROUP`] blocks.
#[derive(Clone, Debug, Default)]
pub struct Prepared {
    /// `[G, 256]`: the activation codes, in the order the format's kernel reads them.
    ys: Vec<i8>,
    /// `[G, lanes]`: i32 lane initialisers, minus the offset term of each lane's values (as
    /// many lanes per block as the kernel splits a block over).
    init: Vec<i32>,
    /// `[G, 8]`, or `[G, 16]` with each scale twice where the kernel's lanes want it so: the
    /// activation block scales as f32.
    dx: Vec<f32>,
}

impl Prepared {
    /// Groups of [`GROUP`] blocks in the row.
    pub fn groups(&self) -> usize {
        self.ys.len() / 256
    }

    /// Empties the row, keeping its buffers for the next one.
    fn clear(&mut self) {
        self.ys.clear();
        self.init.clear();
        self.dx.clear();
    }
}

/// `(w, stride, rows, xs, out)`: `rows` weight rows, row `r` being the blocks of `w` from
/// `r * stride` on, times `xs.len()` prepared rows; all rows have the prepared rows' length
/// and `stride` is a whole number of groups. `out[r * xs.len() + t] = w_r · x_t`. Up to
/// [`MAX_WEIGHT_ROWS`] weight rows, [`MAX_ACTS`] activation rows and [`MAX_PAIRS`] pairs.
///
/// The stride lets a call take rows that lie far apart: matmul gives each call one row from each
/// of several distant parts of the matrix, so that every part is read as one long sequential
/// stream (adjacent rows read side by side make short interleaved streams, which the hardware
/// prefetchers follow worse).
pub type GroupedFn<W> = fn(&[W], usize, usize, &[Prepared], &mut [f32]);

/// A format's grouped kernel with the activation preparation it needs.
pub struct Grouped<W: DotWith> {
    /// Prepares one activation row (whole groups only) into a `Prepared`, reusing its buffers.
    pub prepare: fn(&[W::Act], &mut Prepared),
    pub dot: GroupedFn<W>,
}

impl<W: DotWith> Grouped<W> {
    /// One activation row, prepared into fresh buffers.
    pub fn prepared(&self, x: &[W::Act]) -> Prepared {
        let mut p = Prepared::default();
        (self.prepare)(x, &mut p);
        p
    }
}

/// The grouped kernel of `W` for `isa` (which must be in [`super::available`]), if `W` has one
/// there. Rows whose block count is not a multiple of [`GROUP`] must use the per-row kernels.
pub fn grouped<W: SimdDot>(isa: Isa) -> Option<Grouped<W>> {
    W::grouped(isa)
}

pub(super) fn q4_0(isa: Isa) -> Option<Grouped<BlockQ4_0>> {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512Vnni if avx512::supported() => Some(Grouped {
            prepare: prepare_q4_0_interleaved,
            dot: avx512::dot_q4_0,
        }),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 | Isa::Avx512 | Isa::Avx512Vnni if avx2::supported() => Some(Grouped {
            prepare: prepare_q4_0_halves,
            dot: avx2::dot_q4_0,
        }),
        _ => None,
    }
}

pub(super) fn q8_0(isa: Isa) -> Option<Grouped<BlockQ8_0>> {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512Vnni if avx512::supported() => Some(Grouped {
            prepare: prepare_q8_0,
            dot: avx512::dot_q8_0,
        }),
        _ => None,
    }
}

/// Calls `$kernel::<ROWS, ACTS>($args)` for a runtime shape that [`check_call`] accepted.
macro_rules! by_shape {
    ($kernel:ident, $rows:expr, $acts:expr, ($($arg:expr),*)) => {
        match ($rows, $acts) {
            (1, 1) => $kernel::<1, 1>($($arg),*),
            (2, 1) => $kernel::<2, 1>($($arg),*),
            (3, 1) => $kernel::<3, 1>($($arg),*),
            (4, 1) => $kernel::<4, 1>($($arg),*),
            (1, 2) => $kernel::<1, 2>($($arg),*),
            (2, 2) => $kernel::<2, 2>($($arg),*),
            (3, 2) => $kernel::<3, 2>($($arg),*),
            (4, 2) => $kernel::<4, 2>($($arg),*),
            (1, 3) => $kernel::<1, 3>($($arg),*),
            (2, 3) => $kernel::<2, 3>($($arg),*),
            (1, 4) => $kernel::<1, 4>($($arg),*),
            (2, 4) => $kernel::<2, 4>($($arg),*),
            shape => unreachable!("check_call lets no {shape:?} tile through"),
        }
    };
}
use by_shape;

/// A safe grouped entry point `$name` for `$kernel` (handed out only after the file's
/// `supported()`): checks the call, then runs the kernel for the call's tile shape.
macro_rules! entry_point {
    ($name:ident, $block:ty, $what:literal, $kernel:ident) => {
        pub(super) fn $name(
            w: &[$block],
            stride: usize,
            rows: usize,
            xs: &[Prepared],
            out: &mut [f32],
        ) {
            let (groups, stride) = check_call($what, w.len(), stride, rows, xs, out);
            // SAFETY: the CPU has the features (see `supported`); `check_call` checked every
            // length the kernel reads.
            unsafe { by_shape!($kernel, rows, xs.len(), (w, groups, stride, xs, out)) }
        }
    };
}
use entry_point;

/// Panics unless `x` holds whole groups.
fn check_groups(what: &str, blocks: usize) -> usize {
    assert!(
        blocks.is_multiple_of(GROUP),
        "{what}: {blocks} blocks are not whole groups of {GROUP}"
    );
    blocks / GROUP
}

/// Panics unless the weight rows, the prepared rows and `out` agree; returns the groups per row
/// and the stride in groups.
fn check_call(
    what: &str,
    w_blocks: usize,
    stride: usize,
    rows: usize,
    xs: &[Prepared],
    out: &[f32],
) -> (usize, usize) {
    assert!(
        (1..=MAX_WEIGHT_ROWS).contains(&rows)
            && (1..=MAX_ACTS).contains(&xs.len())
            && rows * xs.len() <= MAX_PAIRS
            && out.len() == rows * xs.len(),
        "{what}: {rows} weight rows, {} activation rows and {} outputs",
        xs.len(),
        out.len()
    );
    let groups = xs[0].groups();
    let row_blocks = groups * GROUP;
    let needed = (rows - 1)
        .checked_mul(stride)
        .and_then(|b| b.checked_add(row_blocks));
    assert!(
        stride >= row_blocks
            && stride.is_multiple_of(GROUP)
            && needed.is_some_and(|b| b <= w_blocks),
        "{what}: {rows} rows of {row_blocks} blocks, {stride} apart, do not fit {w_blocks} blocks"
    );
    for x in xs {
        assert!(
            x.groups() == groups && x.ys.len() == groups * 256,
            "{what}: activation rows of {groups} and {} groups",
            x.groups()
        );
    }
    (groups, stride / GROUP)
}

/// The sum of a few activation codes.
fn code_sum(codes: &[i8]) -> i32 {
    codes.iter().map(|&v| v as i32).sum()
}

/// Q4_0 layout of the AVX2 kernel. Per group, two halves of 4 blocks, each `[low values 0..16
/// of its 4 blocks (64 bytes), high values 16..32 (64 bytes)]`: byte `16b + j` of each part
/// meets byte `16b + j` of the weights' `qs`, whose low nibble is value `j` and high nibble
/// value `j + 16`. Lane `l` of a half covers bytes `4l..4l+4` of both parts.
fn prepare_q4_0_halves(x: &[BlockQ8_0], p: &mut Prepared) {
    check_groups("Q4_0 prepare", x.len());
    p.clear();
    for half in x.chunks_exact(4) {
        for b in half {
            p.ys.extend_from_slice(&b.qs[..16]);
        }
        for b in half {
            p.ys.extend_from_slice(&b.qs[16..]);
        }
    }
    for half in p.ys.chunks_exact(128) {
        let (lo, hi) = half.split_at(64);
        let lanes = lo.chunks_exact(4).zip(hi.chunks_exact(4));
        p.init
            .extend(lanes.map(|(l, h)| -8 * (code_sum(l) + code_sum(h))));
    }
    p.dx.extend(x.iter().map(|b| b.d.to_f32()));
}

/// Q4_0 layout of the AVX-512 kernel. Per group, four 64-byte parts holding 8 values of each
/// block, `8b + j` ↔ block `b`: values `j`, `16 + j`, `8 + j`, `24 + j` (the low and high
/// nibbles of `qs[j]`, then of `qs[8 + j]`). Lane `l` (bytes `4l..4l+4` of all four parts, 16
/// values) belongs to block `l / 2`, so `dx` holds each block's scale twice.
fn prepare_q4_0_interleaved(x: &[BlockQ8_0], p: &mut Prepared) {
    check_groups("Q4_0 prepare", x.len());
    p.clear();
    for group in x.chunks_exact(GROUP) {
        for values in [0..8, 16..24, 8..16, 24..32] {
            for b in group {
                p.ys.extend_from_slice(&b.qs[values.clone()]);
            }
        }
        let parts = &p.ys[p.ys.len() - 256..];
        p.init.extend((0..16).map(|l| {
            let lane = |part: &[i8]| code_sum(&part[4 * l..4 * l + 4]);
            -8 * parts.chunks_exact(64).map(lane).sum::<i32>()
        }));
    }
    p.dx.extend(x.iter().flat_map(|b| [b.d.to_f32(); 2]));
}

/// Q8_0 layout: the codes in order. The kernels flip the weight bytes' sign bit, reading
/// `q + 128` as an unsigned byte; lane `l` covers bytes `4l..4l+4`.
fn prepare_q8_0(x: &[BlockQ8_0], p: &mut Prepared) {
    check_groups("Q8_0 prepare", x.len());
    p.clear();
    for b in x {
        p.ys.extend_from_slice(&b.qs);
    }
    p.init
        .extend(p.ys.chunks_exact(4).map(|l| -128 * code_sum(l)));
    p.dx.extend(x.iter().map(|b| b.d.to_f32()));
}
