//! The Vulkan device GPU tests run on: `TANDEM_TEST_GPU=N`, else device 0 (any kind: CI's is
//! lavapipe). Without one the test skips with a message, and fails instead under
//! `TANDEM_REQUIRE_VULKAN=1`, so CI always runs the GPU path.

use std::sync::Arc;
use tandem::backend::vulkan::{Gpu, GpuChoice, GpuOptions};

pub fn required() -> bool {
    std::env::var("TANDEM_REQUIRE_VULKAN").is_ok_and(|v| v == "1" || v == "true")
}

/// The test device's index.
pub fn index() -> usize {
    std::env::var("TANDEM_TEST_GPU")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Opens the test device, or returns `None` after saying why (a failure when required).
pub fn open(options: GpuOptions) -> Option<Arc<Gpu>> {
    match Gpu::open(GpuChoice::Index(index()), options) {
        Ok(gpu) => {
            eprintln!(
                "GPU: {} ({}, subgroup size {}, {} reductions)",
                gpu.info.name,
                gpu.info.kind.name(),
                gpu.info.subgroup_size,
                if gpu.subgroups {
                    "subgroup"
                } else {
                    "shared-memory"
                }
            );
            Some(gpu)
        }
        Err(e) if required() => panic!("TANDEM_REQUIRE_VULKAN=1 but no usable device: {e}"),
        Err(e) => {
            eprintln!(
                "SKIPPED: no Vulkan device ({e}); set TANDEM_REQUIRE_VULKAN=1 to fail instead"
            );
            None
        }
    }
}
