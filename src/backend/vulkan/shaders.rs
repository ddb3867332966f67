//! The committed SPIR-V (`shaders/spv`, made by `shaders/build.sh`), embedded in the binary.

use crate::quant::GgmlType;

/// One embedded module.
macro_rules! spv {
    ($($part:expr),+) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/spv/", $($part),+, ".spv"))
    };
}

/// Per weight format: the matrix-vector kernel with shared-memory reductions, with subgroup
/// reductions, and the tiled matrix-matrix kernel.
pub(crate) struct FormatModules {
    pub matvec: &'static [u8],
    pub matvec_subgroup: &'static [u8],
    pub matmul: &'static [u8],
}

macro_rules! format_modules {
    ($f:literal) => {
        FormatModules {
            matvec: spv!("matvec_", $f),
            matvec_subgroup: spv!("matvec_sg_", $f),
            matmul: spv!("matmul_", $f),
        }
    };
}

/// The weight formats with GPU kernels, in the order of [`format_slot`].
pub const GPU_FORMATS: [GgmlType; 11] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q8_0,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
];

/// Where `ty` sits in [`GPU_FORMATS`].
pub(crate) fn format_slot(ty: GgmlType) -> Option<usize> {
    GPU_FORMATS.iter().position(|&t| t == ty)
}

pub(crate) fn format_modules(slot: usize) -> FormatModules {
    match slot {
        0 => format_modules!("f32"),
        1 => format_modules!("f16"),
        2 => format_modules!("bf16"),
        3 => format_modules!("q8_0"),
        4 => format_modules!("q4_0"),
        5 => format_modules!("q4_1"),
        6 => format_modules!("q5_0"),
        7 => format_modules!("q5_1"),
        8 => format_modules!("q4_k"),
        9 => format_modules!("q5_k"),
        _ => format_modules!("q6_k"),
    }
}

/// Values per block as the shaders see them: the format's own block, except that the float
/// formats work in groups of 16.
pub(crate) fn shader_block_values(ty: GgmlType) -> usize {
    ty.block_values().max(16)
}

pub(crate) const SWIGLU: &[u8] = spv!("swiglu");
pub(crate) const PROBE: &[u8] = spv!("probe");
