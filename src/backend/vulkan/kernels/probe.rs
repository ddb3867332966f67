//! The device's read bandwidth (`shaders/probe.comp`), the yardstick the matrix-vector figures are
//! a fraction of, as the CPU benchmark measures RAM.

use super::Kernels;
use crate::backend::vulkan::commands::{Commands, QueueKind};
use crate::backend::vulkan::error::VulkanError;
use crate::backend::vulkan::memory::{Buffer, Place};
use std::time::Instant;

/// Workgroups the probe runs: enough to fill any device, each striding over the buffer.
const GROUPS: u32 = 4096;

/// Reads a `bytes`-long device buffer `passes` times in one submission, after one warm-up pass,
/// and returns bytes per second.
pub fn read_bandwidth(kernels: &Kernels, bytes: u64, passes: u32) -> Result<f64, VulkanError> {
    let gpu = kernels.gpu();
    let bytes = bytes.min(gpu.max_buffer_bytes()) / 16 * 16;
    let src = Buffer::new(gpu, bytes, Place::Device, "bandwidth probe")?;
    let dst = Buffer::new(
        gpu,
        GROUPS as u64 * 4,
        Place::Device,
        "bandwidth probe sums",
    )?;
    let kernel = kernels.probe()?;
    let mut cmds = Commands::new(gpu, QueueKind::Compute)?;
    let push = [(bytes / 16) as u32];
    let mut time = |passes: u32| -> Result<f64, VulkanError> {
        cmds.begin()?;
        for _ in 0..passes {
            cmds.dispatch(&kernel, &[&src, &dst], &push, [GROUPS, 1, 1])?;
            cmds.barrier();
        }
        let start = Instant::now();
        cmds.run()?;
        Ok(start.elapsed().as_secs_f64())
    };
    time(1)?;
    let seconds = time(passes)?;
    Ok(bytes as f64 * passes as f64 / seconds)
}
