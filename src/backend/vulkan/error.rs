//! Why the Vulkan backend could not do something. Each message names what failed, so the CLI can
//! print it as the one line that explains a fall back to the CPU.

use ash::vk;

#[derive(Debug, thiserror::Error)]
pub enum VulkanError {
    #[error("no Vulkan loader (libvulkan): {0}")]
    NoLoader(String),
    #[error("the Vulkan loader offers version {0}; tandem needs 1.1")]
    OldLoader(String),
    #[error("no Vulkan device found (check the driver, or VK_ICD_FILENAMES / VK_DRIVER_FILES)")]
    NoDevice,
    #[error("no GPU found (only {0}); name one with --gpu N to use it anyway")]
    NoGpu(String),
    #[error("there is no Vulkan device {index}: {count} found (see `tandem devices`)")]
    NoSuchDevice { index: usize, count: usize },
    #[error("device {index} ({name}) cannot run tandem's kernels: {why}")]
    Unsuitable {
        index: usize,
        name: String,
        why: String,
    },
    #[error("{call} failed: {result}")]
    Call {
        call: &'static str,
        result: vk::Result,
    },
    #[error("the device was lost during {0} (a driver reset or crash)")]
    DeviceLost(&'static str),
    #[error("out of device memory allocating {what} ({bytes} bytes): {detail}")]
    OutOfMemory {
        what: String,
        bytes: u64,
        detail: String,
    },
    #[error("{0}")]
    Unsupported(String),
}

/// Maps a failed Vulkan call to an error that names it; a lost device gets its own message.
pub(crate) fn check(call: &'static str) -> impl Fn(vk::Result) -> VulkanError {
    move |result| match result {
        vk::Result::ERROR_DEVICE_LOST => VulkanError::DeviceLost(call),
        result => VulkanError::Call { call, result },
    }
}

/// `major.minor.patch` of a Vulkan version number.
pub fn version_string(v: u32) -> String {
    format!(
        "{}.{}.{}",
        vk::api_version_major(v),
        vk::api_version_minor(v),
        vk::api_version_patch(v)
    )
}
