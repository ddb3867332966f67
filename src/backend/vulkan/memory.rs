//! Buffers in device memory, each holding an `Arc` of its [`Gpu`] so that it is freed before the
//! device is destroyed.

use super::device::Gpu;
use super::error::{check, VulkanError};
use ash::vk;
use gpu_allocator::vulkan::{Allocation, AllocationCreateDesc, AllocationScheme};
use gpu_allocator::MemoryLocation;
use std::sync::Arc;

/// Where a buffer lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// Device-local: weights and intermediates.
    Device,
    /// Host-visible, written by the CPU: inputs and upload staging.
    Upload,
    /// Host-visible and cached, read by the CPU: outputs.
    Readback,
}

pub struct Buffer {
    pub(crate) raw: vk::Buffer,
    allocation: Option<Allocation>,
    /// Bytes (a multiple of 4).
    pub size: u64,
    gpu: Arc<Gpu>,
}

impl Buffer {
    /// A storage buffer of `size` bytes (rounded up to whole words), named `what` in errors.
    pub fn new(gpu: &Arc<Gpu>, size: u64, place: Place, what: &str) -> Result<Buffer, VulkanError> {
        let size = size.max(4).next_multiple_of(4);
        let families = gpu.families();
        let mut info = vk::BufferCreateInfo::default().size(size).usage(
            vk::BufferUsageFlags::STORAGE_BUFFER
                | vk::BufferUsageFlags::TRANSFER_SRC
                | vk::BufferUsageFlags::TRANSFER_DST,
        );
        // Shared by the compute and transfer queues without ownership transfers.
        info = if families.len() > 1 {
            info.sharing_mode(vk::SharingMode::CONCURRENT)
                .queue_family_indices(&families)
        } else {
            info.sharing_mode(vk::SharingMode::EXCLUSIVE)
        };
        let device = &gpu.device;
        // SAFETY: `info` and the family list live across the call.
        let raw = unsafe { device.create_buffer(&info, None) }.map_err(|e| match e {
            vk::Result::ERROR_OUT_OF_DEVICE_MEMORY | vk::Result::ERROR_OUT_OF_HOST_MEMORY => {
                VulkanError::OutOfMemory {
                    what: what.into(),
                    bytes: size,
                    detail: e.to_string(),
                }
            }
            e => check("vkCreateBuffer")(e),
        })?;
        // SAFETY: `raw` was just created on this device.
        let requirements = unsafe { device.get_buffer_memory_requirements(raw) };
        let location = match place {
            Place::Device => MemoryLocation::GpuOnly,
            Place::Upload => MemoryLocation::CpuToGpu,
            Place::Readback => MemoryLocation::GpuToCpu,
        };
        let allocation = gpu
            .allocator
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .allocate(&AllocationCreateDesc {
                name: what,
                requirements,
                location,
                linear: true,
                // Weights are large and long-lived: their own blocks.
                allocation_scheme: if size >= 32 << 20 {
                    AllocationScheme::DedicatedBuffer(raw)
                } else {
                    AllocationScheme::GpuAllocatorManaged
                },
            });
        let allocation = match allocation {
            Ok(a) => a,
            Err(e) => {
                // SAFETY: the buffer is unbound and unused.
                unsafe { device.destroy_buffer(raw, None) };
                return Err(VulkanError::OutOfMemory {
                    what: what.into(),
                    bytes: size,
                    detail: e.to_string(),
                });
            }
        };
        // SAFETY: the allocation was made for this buffer's requirements.
        let bound =
            unsafe { device.bind_buffer_memory(raw, allocation.memory(), allocation.offset()) };
        let buffer = Buffer {
            raw,
            allocation: Some(allocation),
            size,
            gpu: gpu.clone(),
        };
        bound.map_err(check("vkBindBufferMemory"))?;
        Ok(buffer)
    }

    /// The buffer's bytes, when the CPU can see them (host-visible memory: always for `Upload`
    /// and `Readback`, and for `Device` on unified-memory devices and lavapipe).
    pub fn mapped(&self) -> Option<&[u8]> {
        self.allocation.as_ref()?.mapped_slice()
    }

    pub fn mapped_mut(&mut self) -> Option<&mut [u8]> {
        self.allocation.as_mut()?.mapped_slice_mut()
    }

    /// Copies `data` to byte `offset` of a host-visible buffer.
    pub fn write<T: bytemuck::Pod>(
        &mut self,
        offset: usize,
        data: &[T],
    ) -> Result<(), VulkanError> {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        let map = self.mapped_mut().ok_or_else(|| {
            VulkanError::Unsupported("writing a buffer the CPU cannot see".into())
        })?;
        map[offset..offset + bytes.len()].copy_from_slice(bytes);
        Ok(())
    }

    /// Copies f32s from byte `offset` of a host-visible buffer into `out`.
    pub fn read_f32(&self, offset: usize, out: &mut [f32]) -> Result<(), VulkanError> {
        let map = self.mapped().ok_or_else(|| {
            VulkanError::Unsupported("reading a buffer the CPU cannot see".into())
        })?;
        let bytes = &map[offset..offset + out.len() * 4];
        for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
            *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        Ok(())
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: callers wait for the submissions that use a buffer before dropping it.
        unsafe { self.gpu.device.destroy_buffer(self.raw, None) };
        if let Some(a) = self.allocation.take() {
            let _ = self
                .gpu
                .allocator
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .free(a);
        }
    }
}
