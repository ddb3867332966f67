//! The chosen device: its logical device, queues and memory allocator. A [`Gpu`] is shared
//! (`Arc`) by everything made from it, so it outlives its buffers and pipelines.

use super::error::{check, VulkanError};
use super::instance::{DeviceInfo, DeviceKind, Instance};
use ash::vk;
use gpu_allocator::vulkan::{Allocator, AllocatorCreateDesc};
use std::mem::ManuallyDrop;
use std::sync::{Arc, Mutex};

/// Which device to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GpuChoice {
    /// The first discrete GPU, else the first integrated one; never a CPU implementation.
    Auto,
    /// Device `N` in `tandem devices`' order, whatever its kind.
    Index(usize),
    /// No GPU.
    None,
}

impl GpuChoice {
    /// `none`, `auto` or a device index.
    pub fn parse(s: &str) -> Option<GpuChoice> {
        match s {
            "none" => Some(GpuChoice::None),
            "auto" => Some(GpuChoice::Auto),
            _ => s.parse().ok().map(GpuChoice::Index),
        }
    }
}

/// How to open a device.
#[derive(Clone, Copy, Debug)]
pub struct GpuOptions {
    /// Use subgroup reductions where the device has them (false forces the shared-memory
    /// fallback, which the tests run on devices that have both).
    pub subgroups: bool,
    /// The newest Vulkan version to ask for (`vk::make_api_version` form). Below 1.1 every
    /// device is refused: the tests use it to check the fall back from a device too old.
    pub max_api: u32,
    /// A lower cap than the device's on the bytes one buffer holds (for a driver that misreports
    /// its limits; the tests use it to split small tensors and batches the way large ones are).
    pub buffer_limit: Option<u64>,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            subgroups: true,
            max_api: vk::API_VERSION_1_3,
            buffer_limit: None,
        }
    }
}

pub(crate) struct Queue {
    pub family: u32,
    /// Submissions to one queue must not overlap in time (Vulkan's external synchronisation).
    pub raw: Mutex<vk::Queue>,
}

pub struct Gpu {
    pub info: DeviceInfo,
    pub(crate) device: ash::Device,
    pub(crate) compute: Queue,
    /// A transfer-only queue (a DMA engine) where the device has one: uploads there can overlap
    /// compute.
    pub(crate) transfer: Option<Queue>,
    pub(crate) allocator: ManuallyDrop<Mutex<Allocator>>,
    /// The reductions the kernels use: subgroup arithmetic, or shared memory.
    pub subgroups: bool,
    buffer_limit: Option<u64>,
    instance: ManuallyDrop<Instance>,
}

impl Gpu {
    /// Opens the device `choice` names (`GpuChoice::None` names none: an error here).
    pub fn open(choice: GpuChoice, options: GpuOptions) -> Result<Arc<Gpu>, VulkanError> {
        let instance = Instance::with_max_api(options.max_api)?;
        let devices = instance.devices()?;
        if devices.is_empty() {
            return Err(VulkanError::NoDevice);
        }
        let info = match choice {
            GpuChoice::Index(index) => {
                devices
                    .get(index)
                    .cloned()
                    .ok_or(VulkanError::NoSuchDevice {
                        index,
                        count: devices.len(),
                    })?
            }
            GpuChoice::None => {
                return Err(VulkanError::Unsupported(
                    "no device was asked for (GpuChoice::None)".into(),
                ))
            }
            GpuChoice::Auto => {
                let pick = |kind| {
                    devices
                        .iter()
                        .find(|d| d.kind == kind && d.unsuitable().is_none())
                };
                pick(DeviceKind::Discrete)
                    .or_else(|| pick(DeviceKind::Integrated))
                    .cloned()
                    .ok_or_else(|| {
                        let found: Vec<String> = devices
                            .iter()
                            .map(|d| format!("{} `{}`", d.kind.name(), d.name))
                            .collect();
                        VulkanError::NoGpu(found.join(", "))
                    })?
            }
        };
        if let Some(why) = info.unsuitable() {
            return Err(VulkanError::Unsuitable {
                index: info.index,
                name: info.name.clone(),
                why,
            });
        }
        Self::create(instance, info, options)
    }

    fn create(
        instance: Instance,
        info: DeviceInfo,
        options: GpuOptions,
    ) -> Result<Arc<Gpu>, VulkanError> {
        let compute_family = info.compute_family.expect("checked by unsuitable()");
        let priority = [1.0f32];
        let mut queues = vec![vk::DeviceQueueCreateInfo::default()
            .queue_family_index(compute_family)
            .queue_priorities(&priority)];
        if let Some(t) = info.transfer_family {
            queues.push(
                vk::DeviceQueueCreateInfo::default()
                    .queue_family_index(t)
                    .queue_priorities(&priority),
            );
        }
        let create = vk::DeviceCreateInfo::default().queue_create_infos(&queues);
        // SAFETY: `create` and its queue list live across the call; the physical device is the
        // instance's.
        let device = unsafe { instance.raw.create_device(info.handle, &create, None) }
            .map_err(check("vkCreateDevice"))?;
        // SAFETY: both families were requested with one queue each above.
        let queue = |family| Queue {
            family,
            raw: Mutex::new(unsafe { device.get_device_queue(family, 0) }),
        };
        let compute = queue(compute_family);
        let transfer = info.transfer_family.map(queue);
        let allocator = Allocator::new(&AllocatorCreateDesc {
            instance: instance.raw.clone(),
            device: device.clone(),
            physical_device: info.handle,
            debug_settings: Default::default(),
            buffer_device_address: false,
            allocation_sizes: Default::default(),
        });
        let allocator = match allocator {
            Ok(a) => a,
            Err(e) => {
                // SAFETY: nothing was made from the device yet.
                unsafe { device.destroy_device(None) };
                return Err(VulkanError::Unsupported(format!(
                    "starting the allocator: {e}"
                )));
            }
        };
        let subgroups = options.subgroups && info.features.subgroup_arithmetic;
        Ok(Arc::new(Gpu {
            info,
            device,
            compute,
            transfer,
            allocator: ManuallyDrop::new(Mutex::new(allocator)),
            subgroups,
            buffer_limit: options.buffer_limit,
            instance: ManuallyDrop::new(instance),
        }))
    }

    /// The queue families a buffer is shared between (compute, and transfer where there is one).
    pub(crate) fn families(&self) -> Vec<u32> {
        let mut f = vec![self.compute.family];
        if let Some(t) = &self.transfer {
            f.push(t.family);
        }
        f
    }

    /// The most bytes one buffer may hold and bind: the storage range and allocation limits.
    pub fn max_buffer_bytes(&self) -> u64 {
        self.info
            .max_storage_buffer_range
            .min(self.info.max_allocation_size)
            .min(self.buffer_limit.unwrap_or(u64::MAX))
            .min(1 << 30)
    }

    /// Threads per workgroup for the matrix-vector kernel: four subgroups, between 32 and 256.
    pub(crate) fn matvec_workgroup(&self) -> u32 {
        let wg = (self.info.subgroup_size * 4)
            .clamp(32, 256)
            .min(self.info.max_workgroup_invocations);
        1 << wg.ilog2() // a power of two, for the shared-memory tree
    }
}

impl Drop for Gpu {
    fn drop(&mut self) {
        // SAFETY: every buffer, pipeline and command pool holds an `Arc<Gpu>`, so all of them are
        // gone; the allocator's memory is freed before its device, and the device before its
        // instance.
        unsafe {
            let _ = self.device.device_wait_idle();
            ManuallyDrop::drop(&mut self.allocator);
            self.device.destroy_device(None);
            ManuallyDrop::drop(&mut self.instance);
        }
    }
}
