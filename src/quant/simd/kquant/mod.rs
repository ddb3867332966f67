//! SIMD kernels for the K-quants: dot products of Q4_K / Q5_K / Q6_K weight rows with Q8_K
//! activation rows, and the Q8_K activation quantizer.
//!
//! Each kernel computes the same exact integer sums per block as the scalar reference
//! (`dot_scalar` in `quant::q{4,5,6}_k`); only the order of the f32 additions across blocks
//! differs. The Q8_K quantizers write exactly the bytes of [`quantize_q8_k_scalar`].

/// `$body::<$pre.. N>(w, xs)` copied into `out` for the runtime row count `xs.len()` (checked by
/// `check_multi`); `$pre` are the body's leading generic arguments, e.g. `[true,]`.
#[cfg(target_arch = "x86_64")]
macro_rules! by_acts {
    ($body:ident, [$($pre:tt)*], $w:expr, $xs:expr, $out:expr) => {
        match $xs.len() {
            1 => $out.copy_from_slice(&$body::<$($pre)* 1>($w, $xs.try_into().expect("1 row"))),
            2 => $out.copy_from_slice(&$body::<$($pre)* 2>($w, $xs.try_into().expect("2 rows"))),
            3 => $out.copy_from_slice(&$body::<$($pre)* 3>($w, $xs.try_into().expect("3 rows"))),
            _ => $out.copy_from_slice(&$body::<$($pre)* 4>($w, $xs.try_into().expect("4 rows"))),
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "aarch64")]
mod neon;

#[cfg(target_arch = "x86_64")]
use super::MULTI_ACTS;
use super::{DotFn, Isa, MultiDotFn, SimdDot};
use crate::quant::{quantize_q8_k_scalar, BlockQ4_K, BlockQ5_K, BlockQ6_K, BlockQ8_K};

impl SimdDot for BlockQ4_K {
    fn kernel(isa: Isa) -> Option<DotFn<Self>> {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => Some(avx2::dot_q4_k),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Some(avx512::dot_q4_k),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => Some(avx512::dot_q4_k_vnni),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => Some(neon::dot_q4_k),
            _ => None,
        }
    }

    fn multi(isa: Isa) -> Option<MultiDotFn<Self>> {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => Some(avx2::multi_q4_k),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Some(avx512::multi_q4_k),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => Some(avx512::multi_q4_k_vnni),
            _ => None,
        }
    }
}

impl SimdDot for BlockQ5_K {
    fn kernel(isa: Isa) -> Option<DotFn<Self>> {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => Some(avx2::dot_q5_k),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Some(avx512::dot_q5_k),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => Some(avx512::dot_q5_k_vnni),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => Some(neon::dot_q5_k),
            _ => None,
        }
    }

    fn multi(isa: Isa) -> Option<MultiDotFn<Self>> {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => Some(avx2::multi_q5_k),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Some(avx512::multi_q5_k),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => Some(avx512::multi_q5_k_vnni),
            _ => None,
        }
    }
}

impl SimdDot for BlockQ6_K {
    fn kernel(isa: Isa) -> Option<DotFn<Self>> {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => Some(avx2::dot_q6_k),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Some(avx512::dot_q6_k),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => Some(avx512::dot_q6_k_vnni),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => Some(neon::dot_q6_k),
            _ => None,
        }
    }

    fn multi(isa: Isa) -> Option<MultiDotFn<Self>> {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => Some(avx2::multi_q6_k),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Some(avx512::multi_q6_k),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => Some(avx512::multi_q6_k_vnni),
            _ => None,
        }
    }
}

/// A Q8_K row quantizer: `src.len()` must be `out.len() * 256`.
pub type QuantizeFn = fn(&[f32], &mut [BlockQ8_K]);

/// The Q8_K quantizer for `isa` (which must be in [`super::available`]). All of them write the
/// bytes that [`quantize_q8_k_scalar`] writes.
pub fn q8_k_quantizer(isa: Isa) -> QuantizeFn {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 | Isa::Avx512Vnni => avx512::quantize_q8_k,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => avx2::quantize_q8_k,
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => neon::quantize_q8_k,
        _ => quantize_q8_k_scalar,
    }
}

/// Panics unless `xs` holds 1..=[`MULTI_ACTS`] rows as long as `w`, and `out` one value per row.
#[cfg(target_arch = "x86_64")]
fn check_multi(what: &str, w: usize, xs: &[&[BlockQ8_K]], out: &[f32]) {
    assert!(
        (1..=MULTI_ACTS).contains(&xs.len()) && out.len() == xs.len(),
        "{what} dot: {} activation rows and {} outputs (1..={MULTI_ACTS}, equal)",
        xs.len(),
        out.len()
    );
    for x in xs {
        assert_eq!(w, x.len(), "{what} dot: rows differ in length");
    }
}

/// The CPU features a file's kernels need. The safe entry points call [`Features::require`] once
/// per row, so a kernel handed out for the wrong CPU cannot run; the check itself runs once
/// (matching feature names per call was ~2% of Q4_K_M decode time).
#[cfg(target_arch = "x86_64")]
struct Features {
    names: &'static [&'static str],
    checked: std::sync::Once,
}

#[cfg(target_arch = "x86_64")]
impl Features {
    const fn new(names: &'static [&'static str]) -> Features {
        Features {
            names,
            checked: std::sync::Once::new(),
        }
    }

    /// Panics unless this CPU has every feature.
    fn require(&self) {
        self.checked.call_once(|| {
            let has = |f: &str| match f {
                "avx2" => std::arch::is_x86_feature_detected!("avx2"),
                "fma" => std::arch::is_x86_feature_detected!("fma"),
                "f16c" => std::arch::is_x86_feature_detected!("f16c"),
                "avx512f" => std::arch::is_x86_feature_detected!("avx512f"),
                "avx512bw" => std::arch::is_x86_feature_detected!("avx512bw"),
                "avx512vnni" => std::arch::is_x86_feature_detected!("avx512vnni"),
                _ => false,
            };
            for f in self.names {
                assert!(
                    has(f),
                    "K-quant kernel needs the CPU feature {f}, which this CPU lacks"
                );
            }
        });
    }
}

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

// Unaligned loads and stores from array references: the reference guarantees the bytes, and the
// `loadu`/`storeu` forms need no alignment, which makes each of these safe.

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
fn load_u8x32(v: &[u8; 32]) -> __m256i {
    // SAFETY: `v` covers 32 readable bytes; no alignment needed.
    unsafe { _mm256_loadu_si256(v.as_ptr().cast()) }
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
fn load_i8x32(v: &[i8; 32]) -> __m256i {
    // SAFETY: `v` covers 32 readable bytes; no alignment needed.
    unsafe { _mm256_loadu_si256(v.as_ptr().cast()) }
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
fn load_i16x16(v: &[i16; 16]) -> __m256i {
    // SAFETY: `v` covers 32 readable bytes; no alignment needed.
    unsafe { _mm256_loadu_si256(v.as_ptr().cast()) }
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
fn load_f32x8(v: &[f32; 8]) -> __m256 {
    // SAFETY: `v` covers 32 readable bytes; no alignment needed.
    unsafe { _mm256_loadu_ps(v.as_ptr()) }
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
fn store_i8x32(out: &mut [i8; 32], v: __m256i) {
    // SAFETY: `out` covers 32 writable bytes; no alignment needed.
    unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), v) }
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
fn store_i16x8(out: &mut [i16; 8], v: __m128i) {
    // SAFETY: `out` covers 16 writable bytes; no alignment needed.
    unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), v) }
}

/// The sum of the 8 lanes.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
fn hsum256(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
}

/// The largest of the 8 lanes (none may be NaN).
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
fn hmax256(v: __m256) -> f32 {
    let s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)))
}
