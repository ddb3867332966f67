//! SIMD dot-product kernels, chosen once at run time.
//!
//! Every kernel has a scalar reference ([`DotWith::dot_scalar`]) that is always compiled; tests
//! compare each kernel the CPU can run with it. A stock build is fast: instruction sets are
//! detected with `is_x86_feature_detected!`, never assumed from `target-cpu`.
//!
//! `TANDEM_ISA=scalar|avx2|avx512|avx512vnni|neon` caps the choice (for benchmarks and for
//! reproducing a bug on a lesser machine); it can lower the choice, never raise it above what
//! the CPU has.

use super::q8_0::BlockQ8_0;
use super::q8_k::BlockQ8_K;
use super::{DotWith, Quantize};
use std::sync::OnceLock;

pub mod grouped;
pub mod kquant;
pub mod legacy;

/// An instruction set with its own kernels, in increasing order of preference per architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    Scalar,
    Neon,
    Avx2,
    Avx512,
    Avx512Vnni,
}

impl Isa {
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Neon => "neon",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Avx512Vnni => "avx512vnni",
        }
    }

    fn from_name(s: &str) -> Option<Isa> {
        [
            Isa::Scalar,
            Isa::Neon,
            Isa::Avx2,
            Isa::Avx512,
            Isa::Avx512Vnni,
        ]
        .into_iter()
        .find(|i| i.name().eq_ignore_ascii_case(s))
    }

    /// The next instruction set to try when a format has no kernel for this one.
    fn fallback(self) -> Isa {
        match self {
            Isa::Avx512Vnni => Isa::Avx512,
            Isa::Avx512 => Isa::Avx2,
            Isa::Avx2 | Isa::Neon | Isa::Scalar => Isa::Scalar,
        }
    }
}

/// Every instruction set this CPU can run, scalar first.
pub fn available() -> Vec<Isa> {
    let mut out = vec![Isa::Scalar];
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            out.push(Isa::Avx2);
            // Every AVX-512 CPU has F16C; the AVX-512 kernels convert f16 scales with it.
            if is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("f16c")
            {
                out.push(Isa::Avx512);
                if is_x86_feature_detected!("avx512vnni") {
                    out.push(Isa::Avx512Vnni);
                }
            }
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("neon") {
            out.push(Isa::Neon);
        }
    }
    out
}

/// The instruction set used for this process: the best available, capped by `TANDEM_ISA`.
pub fn detected() -> Isa {
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(|| {
        let best = available().into_iter().max().unwrap_or(Isa::Scalar);
        match std::env::var("TANDEM_ISA")
            .ok()
            .as_deref()
            .map(Isa::from_name)
        {
            Some(Some(cap)) => {
                let mut isa = best;
                while isa > cap {
                    isa = isa.fallback();
                }
                isa
            }
            Some(None) => {
                eprintln!("warning: TANDEM_ISA not understood; using {}", best.name());
                best
            }
            None => best,
        }
    })
}

/// A safe dot-product entry point: weight row · activation row (same number of values).
pub type DotFn<W> = fn(&[W], &[<W as DotWith>::Act]) -> f32;

/// A weight format with SIMD kernels.
pub trait SimdDot: DotWith {
    /// This format's own kernel for `isa`, or `None` when it has none for that instruction set.
    ///
    /// Callers must only ask for an `isa` listed by [`available`]: the returned function calls
    /// `#[target_feature]` code without checking again.
    fn kernel(isa: Isa) -> Option<DotFn<Self>>;

    /// This format's grouped kernel for `isa` (see [`grouped`]), under the same rule.
    fn grouped(_isa: Isa) -> Option<grouped::Grouped<Self>> {
        None
    }

    /// This format's multi-row dot for `isa`, under the same rule: one weight row against up to
    /// [`MULTI_ACTS`] activation rows, sharing the weight unpacking (prefill); each row's result
    /// is exactly what [`SimdDot::kernel`] gives for it.
    fn multi(_isa: Isa) -> Option<MultiDotFn<Self>> {
        None
    }
}

/// The most activation rows a [`MultiDotFn`] takes.
pub const MULTI_ACTS: usize = 4;

/// A weight row against 1..=[`MULTI_ACTS`] activation rows: `out[t] = w · xs[t]`.
pub type MultiDotFn<W> = fn(&[W], &[&[<W as DotWith>::Act]], &mut [f32]);

/// An activation format with a fast row quantizer (activations are quantized once per matmul
/// row, so on small batches this is a visible share of the time).
pub trait SimdQuantize: Quantize {
    /// The row quantizer for `isa` (which must be in [`available`]). Every one writes exactly
    /// the bytes of [`Quantize::quantize`], which stays the reference.
    fn quantizer(isa: Isa) -> fn(&[f32], &mut [Self]);
}

impl SimdQuantize for BlockQ8_0 {
    fn quantizer(isa: Isa) -> fn(&[f32], &mut [Self]) {
        legacy::quantize_q8_0_fn(isa)
    }
}

impl SimdQuantize for BlockQ8_K {
    fn quantizer(isa: Isa) -> fn(&[f32], &mut [Self]) {
        kquant::q8_k_quantizer(isa)
    }
}

/// Float weights take f32 activations as they are: the "quantizer" is a copy.
impl SimdQuantize for f32 {
    fn quantizer(_: Isa) -> fn(&[f32], &mut [Self]) {
        <f32 as Quantize>::quantize
    }
}

/// The fastest kernel for `W` on `isa` (which must be [`available`]), falling back to lesser
/// instruction sets and finally to the scalar reference.
pub fn dot_fn<W: SimdDot>(isa: Isa) -> DotFn<W> {
    let mut isa = isa;
    loop {
        if isa == Isa::Scalar {
            return W::dot_scalar;
        }
        if let Some(f) = W::kernel(isa) {
            return f;
        }
        isa = isa.fallback();
    }
}
