//! Expert executors other than the CPU's (which lives beside the forward pass, in
//! `model::experts`): today the Vulkan one.

pub mod offload;
pub mod vulkan;
