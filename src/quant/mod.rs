//! Block formats: one file per format, each with a `#[repr(C)]` block, a compile-time size assert,
//! and scalar quantize / dequantize / dot. The scalar code is the reference that the SIMD kernels
//! in [`simd`] are tested against; it is always compiled.
//!
//! Matmuls dot a weight row with an activation row that was quantized once into the format ggml
//! pairs with the weight type ([`DotWith::Act`]): Q8_0 for the 32-value formats, Q8_K for the
//! K-quants, and plain f32 for the float formats (activations are not rounded to 16 bits).

#![allow(non_camel_case_types)] // block names follow ggml: BlockQ4_0, BlockQ8_K, ...

mod float;
mod kquant_lanes;
mod kquant_search;
pub mod q4_0;
pub mod q4_1;
mod q4_k;
pub mod q5_0;
pub mod q5_1;
mod q5_k;
mod q6_k;
pub mod q8_0;
mod q8_k;
pub mod simd;
mod types;

pub use kquant_lanes::{fit_affine_x8, fit_symmetric_x8};
pub use kquant_search::{
    fit_affine, fit_symmetric, AffineSearch, ScaleSearch, AFFINE_SUB, QK_K, SYMMETRIC_SUB,
};
pub use q4_0::BlockQ4_0;
pub use q4_1::BlockQ4_1;
pub use q4_k::BlockQ4_K;
pub use q5_0::BlockQ5_0;
pub use q5_1::BlockQ5_1;
pub use q5_k::BlockQ5_K;
pub use q6_k::BlockQ6_K;
pub use q8_0::BlockQ8_0;
pub use q8_k::{quantize_q8_k_scalar, BlockQ8_K};
pub use types::GgmlType;

/// A fixed-size group of values stored as one unit. Plain scalar types are blocks of one value.
pub trait Block: bytemuck::Pod + Send + Sync {
    /// The ggml type this block stores.
    const TYPE: GgmlType;
    /// Values per block.
    const VALUES: usize;
}

/// A block format that can be quantized from and dequantized to f32.
pub trait Quantize: Block {
    /// Quantizes `src` into `out`. `src.len()` must equal `out.len() * VALUES`.
    fn quantize(src: &[f32], out: &mut [Self]);
    /// Dequantizes `blocks` into `out`. `out.len()` must equal `blocks.len() * VALUES`.
    fn dequantize(blocks: &[Self], out: &mut [f32]);
}

/// A weight format with a dot product against its paired activation format.
pub trait DotWith: Quantize {
    /// The activation block this format is dotted with.
    type Act: Quantize;
    /// The scalar reference dot product of a weight row with an activation row (same length in
    /// values). This is the oracle for every SIMD kernel.
    fn dot_scalar(w: &[Self], x: &[Self::Act]) -> f32;
}

/// Runs `$body` with `$W` bound to the block type of the weight type `$ty`, or `$fallback` with
/// `$other` bound to the type when it cannot be a matmul weight (Q8_K, and types without kernels).
#[macro_export]
macro_rules! dispatch_weight_type {
    ($ty:expr, $W:ident => $body:expr, else $other:ident => $fallback:expr) => {{
        use $crate::quant::GgmlType as T;
        match $ty {
            T::F32 => {
                type $W = f32;
                $body
            }
            T::F16 => {
                type $W = half::f16;
                $body
            }
            T::BF16 => {
                type $W = half::bf16;
                $body
            }
            T::Q8_0 => {
                type $W = $crate::quant::BlockQ8_0;
                $body
            }
            T::Q4_0 => {
                type $W = $crate::quant::BlockQ4_0;
                $body
            }
            T::Q4_1 => {
                type $W = $crate::quant::BlockQ4_1;
                $body
            }
            T::Q5_0 => {
                type $W = $crate::quant::BlockQ5_0;
                $body
            }
            T::Q5_1 => {
                type $W = $crate::quant::BlockQ5_1;
                $body
            }
            T::Q4_K => {
                type $W = $crate::quant::BlockQ4_K;
                $body
            }
            T::Q5_K => {
                type $W = $crate::quant::BlockQ5_K;
                $body
            }
            T::Q6_K => {
                type $W = $crate::quant::BlockQ6_K;
                $body
            }
            $other => $fallback,
        }
    }};
}
