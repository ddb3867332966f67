//! The Vulkan compute backend (through `ash`, with libvulkan opened at run time).
//!
//! One concern per file: [`instance`] (the loader and what each device offers), [`device`] (the
//! chosen device, its queues and allocator), [`memory`] (buffers), [`pipeline`] (compute
//! pipelines from the committed SPIR-V in `shaders/spv`), [`commands`] (recording, submitting,
//! waiting), [`kernels`] (one typed wrapper per shader), [`matrix`] (a weight matrix in device
//! buffers) and [`experts`] (the [`crate::model::experts::ExpertExecutor`] that runs experts on
//! the device).

pub mod bench;
pub mod commands;
pub mod device;
pub mod error;
pub mod experts;
pub mod instance;
pub mod kernels;
pub mod matrix;
pub mod memory;
pub mod pipeline;
pub mod shaders;
pub mod upload;

pub use device::{Gpu, GpuChoice, GpuOptions};
pub use error::VulkanError;
pub use experts::{GpuExperts, VulkanExperts};
pub use instance::{DeviceInfo, DeviceKind, Instance};
