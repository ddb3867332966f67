//! `g = silu(g) · u · weight[row]` over rows of an expert's hidden layer (`shaders/swiglu.comp`).

use super::Kernels;
use crate::backend::vulkan::commands::Commands;
use crate::backend::vulkan::error::VulkanError;
use crate::backend::vulkan::memory::Buffer;

/// Threads per workgroup in the shader.
const WORKGROUP: usize = 256;

/// Records the product for `n` rows of `n_ff` values, starting at row `row0` of `gate` and `up`
/// (`[rows, n_ff]` each) and at `weights[row0]`.
#[allow(clippy::too_many_arguments)]
pub fn record(
    cmds: &mut Commands,
    kernels: &Kernels,
    gate: &Buffer,
    up: &Buffer,
    weights: &Buffer,
    row0: usize,
    n: usize,
    n_ff: usize,
) -> Result<(), VulkanError> {
    let count = n * n_ff;
    let end = ((row0 + n) * n_ff) as u64 * 4;
    if end > gate.size || end > up.size || ((row0 + n) * 4) as u64 > weights.size {
        return Err(VulkanError::Unsupported(format!(
            "swiglu: rows {row0}..{} of {n_ff} values exceed their buffers",
            row0 + n
        )));
    }
    let groups = count.div_ceil(WORKGROUP);
    let max_x = cmds.max_groups()[0] as usize;
    let (gx, gy) = if groups <= max_x {
        (groups, 1)
    } else {
        (max_x, groups.div_ceil(max_x))
    };
    let push = [n_ff, count, row0 * n_ff, row0].map(|v| v as u32);
    cmds.dispatch(
        &*kernels.swiglu()?,
        &[gate, up, weights],
        &push,
        [gx as u32, gy as u32, 1],
    )
}
