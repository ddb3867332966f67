//! KV-cache rows: the keys or values of one layer, `[n_ctx, n_kv_heads * head_dim]`, stored in f32,
//! f16 (the default, as in llama.cpp) or Q8_0.

use crate::quant::simd::{self, DotFn, Isa};
use crate::quant::{BlockQ8_0, Quantize};
use half::f16;
use half::slice::HalfFloatSliceExt;

/// The element type of the KV cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvType {
    F32,
    F16,
    Q8_0,
}

impl KvType {
    pub fn parse(s: &str) -> Option<KvType> {
        match s.to_ascii_lowercase().as_str() {
            "f32" => Some(KvType::F32),
            "f16" => Some(KvType::F16),
            "q8_0" => Some(KvType::Q8_0),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            KvType::F32 => "f32",
            KvType::F16 => "f16",
            KvType::Q8_0 => "q8_0",
        }
    }

    /// Bytes per stored value (Q8_0: 34 bytes per 32 values).
    pub fn bytes_per_value(self) -> f64 {
        match self {
            KvType::F32 => 4.0,
            KvType::F16 => 2.0,
            KvType::Q8_0 => 34.0 / 32.0,
        }
    }
}

/// `n` zeroed values from the allocator's zeroed pages (untouched pages cost no memory until
/// written), or `None` if the allocation fails instead of aborting the process.
fn zeroed<T: bytemuck::Zeroable>(n: usize) -> Option<Vec<T>> {
    bytemuck::allocation::try_zeroed_slice_box(n)
        .ok()
        .map(|b| b.into_vec())
}

/// A query head prepared for dotting with cached keys of a given type.
pub enum QueryHead<'a> {
    F32(&'a [f32]),
    Q8_0(Vec<BlockQ8_0>),
}

/// One layer's keys or values.
pub enum KvRows {
    F32(Vec<f32>),
    F16(Vec<f16>),
    Q8_0(Vec<BlockQ8_0>),
}

/// The dot kernels used by [`KvRows::dot`], picked once.
#[derive(Clone, Copy)]
pub struct KvKernels {
    f32: DotFn<f32>,
    f16: DotFn<f16>,
    q8_0: DotFn<BlockQ8_0>,
}

impl KvKernels {
    pub fn new(isa: Isa) -> Self {
        KvKernels {
            f32: simd::dot_fn::<f32>(isa),
            f16: simd::dot_fn::<f16>(isa),
            q8_0: simd::dot_fn::<BlockQ8_0>(isa),
        }
    }
}

impl KvRows {
    /// Zeroed storage for `n_ctx` rows of `row_len` values, or `None` when the count overflows or
    /// the allocation fails (the caller has checked the size against the memory available; this
    /// catches what that check cannot see, such as a `ulimit`). `row_len` must be whole Q8_0
    /// blocks for [`KvType::Q8_0`] (heads are quantized separately, so `head_dim % 32 == 0` is
    /// checked by the caller).
    pub fn new(ty: KvType, n_ctx: usize, row_len: usize) -> Option<Self> {
        let n = n_ctx.checked_mul(row_len)?;
        Some(match ty {
            KvType::F32 => KvRows::F32(zeroed(n)?),
            KvType::F16 => KvRows::F16(zeroed(n)?),
            KvType::Q8_0 => KvRows::Q8_0(zeroed(n / 32)?),
        })
    }

    /// Stores `row` (`[row_len]`) at position `pos`.
    pub fn write(&mut self, pos: usize, row: &[f32]) {
        let n = row.len();
        match self {
            KvRows::F32(d) => d[pos * n..(pos + 1) * n].copy_from_slice(row),
            KvRows::F16(d) => {
                for (o, &v) in d[pos * n..(pos + 1) * n].iter_mut().zip(row) {
                    *o = f16::from_f32(v);
                }
            }
            KvRows::Q8_0(d) => BlockQ8_0::quantize(row, &mut d[pos * n / 32..(pos + 1) * n / 32]),
        }
    }

    /// Prepares query head `q` (`[head_dim]`) for [`KvRows::dot`].
    pub fn query<'a>(&self, q: &'a [f32]) -> QueryHead<'a> {
        match self {
            KvRows::Q8_0(_) => {
                let mut b = vec![bytemuck::Zeroable::zeroed(); q.len() / 32];
                BlockQ8_0::quantize(q, &mut b);
                QueryHead::Q8_0(b)
            }
            _ => QueryHead::F32(q),
        }
    }

    /// `q · row[pos][off .. off + head_dim]` where `off` is the value offset of the KV head.
    pub fn dot(&self, k: &KvKernels, pos: usize, row_len: usize, off: usize, q: &QueryHead) -> f32 {
        let start = pos * row_len + off;
        match (self, q) {
            (KvRows::F32(d), QueryHead::F32(q)) => (k.f32)(&d[start..start + q.len()], q),
            (KvRows::F16(d), QueryHead::F32(q)) => (k.f16)(&d[start..start + q.len()], q),
            (KvRows::Q8_0(d), QueryHead::Q8_0(q)) => {
                (k.q8_0)(&d[start / 32..start / 32 + q.len()], q)
            }
            _ => unreachable!("query prepared for a different KV type"),
        }
    }

    /// `out += p * row[pos][off .. off + out.len()]`.
    pub fn add_scaled(&self, pos: usize, row_len: usize, off: usize, p: f32, out: &mut [f32]) {
        let start = pos * row_len + off;
        let hd = out.len();
        match self {
            KvRows::F32(d) => crate::tensor::ops::add_scaled(out, &d[start..start + hd], p),
            KvRows::F16(d) => {
                // Widened a chunk at a time by `half`'s slice conversion (F16C when the CPU has
                // it), not value by value.
                let mut wide = [0.0f32; 64];
                for (o, h) in out.chunks_mut(64).zip(d[start..start + hd].chunks(64)) {
                    let wide = &mut wide[..h.len()];
                    h.convert_to_f32_slice(wide);
                    crate::tensor::ops::add_scaled(o, wide, p);
                }
            }
            KvRows::Q8_0(d) => {
                for (chunk, b) in out
                    .chunks_exact_mut(32)
                    .zip(&d[start / 32..(start + hd) / 32])
                {
                    let s = p * b.d.to_f32();
                    for (o, &q) in chunk.iter_mut().zip(&b.qs) {
                        *o += s * q as f32;
                    }
                }
            }
        }
    }
}
