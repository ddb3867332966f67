//! Recording dispatches into one command buffer, submitting it, and waiting for it. Descriptor
//! sets come from pools that are reset at each [`Commands::begin`], so a submission may hold any
//! number of dispatches.

use super::device::Gpu;
use super::error::{check, VulkanError};
use super::memory::Buffer;
use super::pipeline::Kernel;
use ash::vk;
use std::sync::Arc;

/// Sets per descriptor pool; another pool is added when one runs out.
const SETS_PER_POOL: u32 = 256;

/// Which queue a command buffer goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueKind {
    Compute,
    /// The transfer-only queue where the device has one, else the compute queue.
    Transfer,
}

pub struct Commands {
    pool: vk::CommandPool,
    cmd: vk::CommandBuffer,
    fence: vk::Fence,
    descriptor_pools: Vec<vk::DescriptorPool>,
    /// Pools `0 .. used` have handed out sets since the last `begin`.
    used: usize,
    queue: QueueKind,
    /// Submitted and not yet waited for.
    in_flight: bool,
    gpu: Arc<Gpu>,
}

impl Commands {
    pub fn new(gpu: &Arc<Gpu>, queue: QueueKind) -> Result<Commands, VulkanError> {
        let device = &gpu.device;
        let family = match (queue, &gpu.transfer) {
            (QueueKind::Transfer, Some(t)) => t.family,
            _ => gpu.compute.family,
        };
        // SAFETY (this block): create-infos live across their calls; on error the objects made so
        // far are destroyed.
        unsafe {
            let pool = device
                .create_command_pool(
                    &vk::CommandPoolCreateInfo::default()
                        .queue_family_index(family)
                        .flags(vk::CommandPoolCreateFlags::TRANSIENT),
                    None,
                )
                .map_err(check("vkCreateCommandPool"))?;
            let cmd = device.allocate_command_buffers(
                &vk::CommandBufferAllocateInfo::default()
                    .command_pool(pool)
                    .level(vk::CommandBufferLevel::PRIMARY)
                    .command_buffer_count(1),
            );
            let fence = device.create_fence(&vk::FenceCreateInfo::default(), None);
            match (cmd, fence) {
                (Ok(cmd), Ok(fence)) => Ok(Commands {
                    pool,
                    cmd: cmd[0],
                    fence,
                    descriptor_pools: Vec::new(),
                    used: 0,
                    queue,
                    in_flight: false,
                    gpu: gpu.clone(),
                }),
                (cmd, fence) => {
                    if let Ok(f) = fence {
                        device.destroy_fence(f, None);
                    }
                    device.destroy_command_pool(pool, None);
                    Err(match cmd {
                        Err(e) => check("vkAllocateCommandBuffers")(e),
                        Ok(_) => check("vkCreateFence")(fence.err().unwrap_or_default()),
                    })
                }
            }
        }
    }

    /// Starts a new recording. Waits for the previous submission first, if it is still running.
    pub fn begin(&mut self) -> Result<(), VulkanError> {
        self.wait()?;
        let device = &self.gpu.device;
        // SAFETY: the previous submission finished (waited above), so the pool's command buffer
        // and the descriptor sets are no longer in use.
        unsafe {
            device
                .reset_command_pool(self.pool, vk::CommandPoolResetFlags::empty())
                .map_err(check("vkResetCommandPool"))?;
            for &p in &self.descriptor_pools[..self.used] {
                device
                    .reset_descriptor_pool(p, vk::DescriptorPoolResetFlags::empty())
                    .map_err(check("vkResetDescriptorPool"))?;
            }
            self.used = 0;
            device
                .begin_command_buffer(
                    self.cmd,
                    &vk::CommandBufferBeginInfo::default()
                        .flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT),
                )
                .map_err(check("vkBeginCommandBuffer"))
        }
    }

    /// A descriptor set for `kernel` with `buffers` bound whole at bindings `0 ..`.
    fn descriptor_set(
        &mut self,
        kernel: &Kernel,
        buffers: &[&Buffer],
    ) -> Result<vk::DescriptorSet, VulkanError> {
        let device = &self.gpu.device;
        let layouts = [kernel.set_layout];
        let set = loop {
            self.used = self.used.max(1);
            if self.used > self.descriptor_pools.len() {
                let sizes = [vk::DescriptorPoolSize {
                    ty: vk::DescriptorType::STORAGE_BUFFER,
                    descriptor_count: SETS_PER_POOL * 4,
                }];
                // SAFETY: the create-info lives across the call.
                let pool = unsafe {
                    device.create_descriptor_pool(
                        &vk::DescriptorPoolCreateInfo::default()
                            .max_sets(SETS_PER_POOL)
                            .pool_sizes(&sizes),
                        None,
                    )
                }
                .map_err(check("vkCreateDescriptorPool"))?;
                self.descriptor_pools.push(pool);
            }
            let pool = self.descriptor_pools[self.used - 1];
            // SAFETY: the pool and layout are live; the info lives across the call.
            let sets = unsafe {
                device.allocate_descriptor_sets(
                    &vk::DescriptorSetAllocateInfo::default()
                        .descriptor_pool(pool)
                        .set_layouts(&layouts),
                )
            };
            match sets {
                Ok(sets) => break sets[0],
                // This pool is full: go on to the next (made on the next turn when missing).
                Err(vk::Result::ERROR_OUT_OF_POOL_MEMORY | vk::Result::ERROR_FRAGMENTED_POOL) => {
                    self.used += 1
                }
                Err(e) => return Err(check("vkAllocateDescriptorSets")(e)),
            }
        };
        let infos: Vec<[vk::DescriptorBufferInfo; 1]> = buffers
            .iter()
            .map(|b| {
                [vk::DescriptorBufferInfo {
                    buffer: b.raw,
                    offset: 0,
                    range: vk::WHOLE_SIZE,
                }]
            })
            .collect();
        let writes: Vec<_> = infos
            .iter()
            .enumerate()
            .map(|(i, info)| {
                vk::WriteDescriptorSet::default()
                    .dst_set(set)
                    .dst_binding(i as u32)
                    .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                    .buffer_info(info)
            })
            .collect();
        // SAFETY: the set is fresh and unused; the infos live across the call.
        unsafe { device.update_descriptor_sets(&writes, &[]) };
        Ok(set)
    }

    /// Records one dispatch of `kernel` over `groups` workgroups. `buffers` must match the
    /// kernel's bindings and `push` its push-constant size.
    pub fn dispatch(
        &mut self,
        kernel: &Kernel,
        buffers: &[&Buffer],
        push: &[u32],
        groups: [u32; 3],
    ) -> Result<(), VulkanError> {
        assert_eq!(
            buffers.len() as u32,
            kernel.bindings,
            "{}: bindings",
            kernel.name
        );
        assert_eq!(
            4 * push.len() as u32,
            kernel.push_bytes,
            "{}: push constants",
            kernel.name
        );
        let limits = self.gpu.info.max_workgroup_count;
        if groups.iter().zip(limits).any(|(&g, l)| g > l) {
            return Err(VulkanError::Unsupported(format!(
                "{}: {groups:?} workgroups exceed the device's limit {limits:?}",
                kernel.name
            )));
        }
        if groups.contains(&0) {
            return Ok(());
        }
        let set = self.descriptor_set(kernel, buffers)?;
        let device = &self.gpu.device;
        // SAFETY: recording into a command buffer in the recording state; every handle is live
        // and stays so until the submission is waited for.
        unsafe {
            device.cmd_bind_pipeline(self.cmd, vk::PipelineBindPoint::COMPUTE, kernel.pipeline);
            device.cmd_bind_descriptor_sets(
                self.cmd,
                vk::PipelineBindPoint::COMPUTE,
                kernel.layout,
                0,
                &[set],
                &[],
            );
            if !push.is_empty() {
                device.cmd_push_constants(
                    self.cmd,
                    kernel.layout,
                    vk::ShaderStageFlags::COMPUTE,
                    0,
                    bytemuck::cast_slice(push),
                );
            }
            device.cmd_dispatch(self.cmd, groups[0], groups[1], groups[2]);
        }
        Ok(())
    }

    /// Makes every earlier shader or transfer write visible to every later shader or transfer.
    pub fn barrier(&mut self) {
        let barrier = vk::MemoryBarrier::default()
            .src_access_mask(vk::AccessFlags::SHADER_WRITE | vk::AccessFlags::TRANSFER_WRITE)
            .dst_access_mask(
                vk::AccessFlags::SHADER_READ
                    | vk::AccessFlags::SHADER_WRITE
                    | vk::AccessFlags::TRANSFER_READ
                    | vk::AccessFlags::HOST_READ,
            );
        let stages = vk::PipelineStageFlags::COMPUTE_SHADER | vk::PipelineStageFlags::TRANSFER;
        // SAFETY: recording state; the barrier struct lives across the call.
        unsafe {
            self.gpu.device.cmd_pipeline_barrier(
                self.cmd,
                stages,
                stages | vk::PipelineStageFlags::HOST,
                vk::DependencyFlags::empty(),
                &[barrier],
                &[],
                &[],
            )
        };
    }

    /// Records a copy of `bytes` from `src` at `src_offset` to `dst` at `dst_offset`.
    pub fn copy(
        &mut self,
        src: &Buffer,
        src_offset: u64,
        dst: &Buffer,
        dst_offset: u64,
        bytes: u64,
    ) {
        let region = vk::BufferCopy {
            src_offset,
            dst_offset,
            size: bytes,
        };
        // SAFETY: recording state; both buffers are live until the submission is waited for.
        unsafe {
            self.gpu
                .device
                .cmd_copy_buffer(self.cmd, src.raw, dst.raw, &[region])
        };
    }

    /// Ends the recording and submits it; [`Commands::wait`] waits for it to finish.
    pub fn submit(&mut self) -> Result<(), VulkanError> {
        let device = &self.gpu.device;
        let queue = match (self.queue, &self.gpu.transfer) {
            (QueueKind::Transfer, Some(t)) => &t.raw,
            _ => &self.gpu.compute.raw,
        };
        let cmds = [self.cmd];
        let submit = vk::SubmitInfo::default().command_buffers(&cmds);
        // SAFETY: the command buffer was recorded by `begin` and the dispatches; the queue is
        // locked for the submission; the fence is unsignalled (reset by `wait`).
        unsafe {
            device
                .end_command_buffer(self.cmd)
                .map_err(check("vkEndCommandBuffer"))?;
            let q = queue.lock().unwrap_or_else(|p| p.into_inner());
            device
                .queue_submit(*q, &[submit], self.fence)
                .map_err(check("vkQueueSubmit"))?;
        }
        self.in_flight = true;
        Ok(())
    }

    /// Waits for the submitted work, if any.
    pub fn wait(&mut self) -> Result<(), VulkanError> {
        if !self.in_flight {
            return Ok(());
        }
        let device = &self.gpu.device;
        // SAFETY: the fence belongs to this device and was submitted with the work.
        unsafe {
            device
                .wait_for_fences(&[self.fence], true, u64::MAX)
                .map_err(check("vkWaitForFences"))?;
            device
                .reset_fences(&[self.fence])
                .map_err(check("vkResetFences"))?;
        }
        self.in_flight = false;
        Ok(())
    }

    /// Submits and waits.
    pub fn run(&mut self) -> Result<(), VulkanError> {
        self.submit()?;
        self.wait()
    }
}

impl Drop for Commands {
    fn drop(&mut self) {
        let _ = self.wait();
        // SAFETY: nothing of this recorder is in use after the wait.
        unsafe {
            let d = &self.gpu.device;
            for &p in &self.descriptor_pools {
                d.destroy_descriptor_pool(p, None);
            }
            d.destroy_fence(self.fence, None);
            d.destroy_command_pool(self.pool, None);
        }
    }
}

impl Commands {
    /// The device's workgroup-count limits.
    pub fn max_groups(&self) -> [u32; 3] {
        self.gpu.info.max_workgroup_count
    }
}
