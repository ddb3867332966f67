//! SIMD kernels for the float formats (F32, F16, BF16 · f32) and the 32-value block formats
//! (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 · Q8_0), plus a fast Q8_0 activation quantizer.
//!
//! The integer part of every kernel is exact for every possible block byte (a Q8_0 code of -128
//! included), so a kernel differs from the scalar reference only in the order of its f32
//! additions. The quantizer gives exactly the scalar bytes.
//!
//! `kernel` checks the CPU features itself before it hands out a function, so every function
//! pointer it returns is sound to call on this CPU.

use super::grouped::{self, Grouped};
use super::{DotFn, Isa, SimdDot};
use crate::quant::{BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0};
use half::{bf16, f16};

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
pub(super) use avx2::hsum;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "aarch64")]
mod neon;

/// What the kernels read from a 4- or 5-bit block (Q4_0, Q4_1, Q5_0, Q5_1), so that one generic
/// kernel per instruction set serves all four.
pub(crate) trait Nibbles: Copy {
    /// Whether `qh` holds a fifth bit per value.
    const FIVE_BITS: bool;
    /// Whether the block stores a minimum `m` (`x = d*q + m`) instead of a fixed offset
    /// (`x = d*(q - OFFSET)`).
    const MIN: bool;
    /// The offset subtracted from every code (zero when `MIN`).
    const OFFSET: u8;
    fn d(&self) -> f16;
    /// The block minimum; zero for the offset formats.
    fn m(&self) -> f16;
    /// Low 4 bits: value `j` in the low nibble of byte `j`, value `j + 16` in its high nibble.
    fn qs(&self) -> &[u8; 16];
    /// Fifth bits, value `j` at bit `j`; zero for the 4-bit formats.
    fn qh(&self) -> u32;
}

impl Nibbles for BlockQ4_0 {
    const FIVE_BITS: bool = false;
    const MIN: bool = false;
    const OFFSET: u8 = 8;
    fn d(&self) -> f16 {
        self.d
    }
    fn m(&self) -> f16 {
        f16::ZERO
    }
    fn qs(&self) -> &[u8; 16] {
        &self.qs
    }
    fn qh(&self) -> u32 {
        0
    }
}

impl Nibbles for BlockQ4_1 {
    const FIVE_BITS: bool = false;
    const MIN: bool = true;
    const OFFSET: u8 = 0;
    fn d(&self) -> f16 {
        self.d
    }
    fn m(&self) -> f16 {
        self.m
    }
    fn qs(&self) -> &[u8; 16] {
        &self.qs
    }
    fn qh(&self) -> u32 {
        0
    }
}

impl Nibbles for BlockQ5_0 {
    const FIVE_BITS: bool = true;
    const MIN: bool = false;
    const OFFSET: u8 = 16;
    fn d(&self) -> f16 {
        self.d
    }
    fn m(&self) -> f16 {
        f16::ZERO
    }
    fn qs(&self) -> &[u8; 16] {
        &self.qs
    }
    fn qh(&self) -> u32 {
        u32::from_le_bytes(self.qh)
    }
}

impl Nibbles for BlockQ5_1 {
    const FIVE_BITS: bool = true;
    const MIN: bool = true;
    const OFFSET: u8 = 0;
    fn d(&self) -> f16 {
        self.d
    }
    fn m(&self) -> f16 {
        self.m
    }
    fn qs(&self) -> &[u8; 16] {
        &self.qs
    }
    fn qh(&self) -> u32 {
        u32::from_le_bytes(self.qh)
    }
}

/// `impl SimdDot` from one kernel per instruction set (`None`: fall back to the next lesser set).
/// Each arm checks the features its kernels were compiled for.
macro_rules! simd_dot {
    ($ty:ty, avx2: $avx2:expr, avx512: $avx512:expr, vnni: $vnni:expr,
     neon: $neon:expr, neon_dotprod: $neon_dot:expr $(, grouped: $grouped:expr)? $(,)?) => {
        impl SimdDot for $ty {
            $(fn grouped(isa: Isa) -> Option<Grouped<Self>> {
                $grouped(isa)
            })?
            fn kernel(isa: Isa) -> Option<DotFn<Self>> {
                match isa {
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2 if avx2::supported() => $avx2,
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 if avx512::supported() => $avx512,
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512Vnni if avx512::supported_vnni() => $vnni,
                    #[cfg(target_arch = "aarch64")]
                    Isa::Neon if neon::supported_dotprod() => $neon_dot,
                    #[cfg(target_arch = "aarch64")]
                    Isa::Neon if neon::supported() => $neon,
                    _ => None,
                }
            }
        }
    };
}

simd_dot!(f32,
    avx2: Some(avx2::dot_f32), avx512: Some(avx512::dot_f32), vnni: None,
    neon: Some(neon::dot_f32), neon_dotprod: Some(neon::dot_f32));
simd_dot!(f16,
    avx2: Some(avx2::dot_f16), avx512: Some(avx512::dot_f16), vnni: None,
    neon: Some(neon::dot_f16), neon_dotprod: Some(neon::dot_f16));
simd_dot!(bf16,
    avx2: Some(avx2::dot_bf16), avx512: Some(avx512::dot_bf16), vnni: None,
    neon: Some(neon::dot_bf16), neon_dotprod: Some(neon::dot_bf16));
// Q8_0 · Q8_0 is signed × signed: VNNI's unsigned × signed `vpdpbusd` does not fit it exactly.
simd_dot!(BlockQ8_0,
    avx2: Some(avx2::dot_q8_0), avx512: Some(avx512::dot_q8_0), vnni: None,
    neon: Some(neon::dot_q8_0), neon_dotprod: Some(neon::dot_q8_0_dotprod), grouped: grouped::q8_0);
simd_dot!(BlockQ4_0,
    avx2: Some(avx2::dot_nibbles::<BlockQ4_0>),
    avx512: Some(avx512::dot_nibbles::<BlockQ4_0>),
    vnni: Some(avx512::dot_nibbles_vnni::<BlockQ4_0>),
    neon: Some(neon::dot_nibbles::<BlockQ4_0>),
    neon_dotprod: Some(neon::dot_nibbles_dotprod::<BlockQ4_0>),
    grouped: grouped::q4_0);
simd_dot!(BlockQ4_1,
    avx2: Some(avx2::dot_nibbles::<BlockQ4_1>),
    avx512: Some(avx512::dot_nibbles::<BlockQ4_1>),
    vnni: Some(avx512::dot_nibbles_vnni::<BlockQ4_1>),
    neon: Some(neon::dot_nibbles::<BlockQ4_1>),
    neon_dotprod: Some(neon::dot_nibbles_dotprod::<BlockQ4_1>));
simd_dot!(BlockQ5_0,
    avx2: Some(avx2::dot_nibbles::<BlockQ5_0>),
    avx512: Some(avx512::dot_nibbles::<BlockQ5_0>),
    vnni: Some(avx512::dot_nibbles_vnni::<BlockQ5_0>),
    neon: Some(neon::dot_nibbles::<BlockQ5_0>),
    neon_dotprod: Some(neon::dot_nibbles_dotprod::<BlockQ5_0>));
simd_dot!(BlockQ5_1,
    avx2: Some(avx2::dot_nibbles::<BlockQ5_1>),
    avx512: Some(avx512::dot_nibbles::<BlockQ5_1>),
    vnni: Some(avx512::dot_nibbles_vnni::<BlockQ5_1>),
    neon: Some(neon::dot_nibbles::<BlockQ5_1>),
    neon_dotprod: Some(neon::dot_nibbles_dotprod::<BlockQ5_1>));

/// An f32 row → Q8_0 row quantizer.
pub type QuantizeFn = fn(&[f32], &mut [BlockQ8_0]);

/// The fastest Q8_0 quantizer for `isa` (or the scalar reference where `isa` has none or the CPU
/// lacks its features). Every one gives exactly the bytes of [`crate::quant::Quantize::quantize`].
pub fn quantize_q8_0_fn(isa: Isa) -> QuantizeFn {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 | Isa::Avx512 | Isa::Avx512Vnni if avx2::supported() => avx2::quantize_q8_0,
        #[cfg(target_arch = "aarch64")]
        Isa::Neon if neon::supported() => neon::quantize_q8_0,
        _ => crate::quant::q8_0::quantize_row_scalar,
    }
}
