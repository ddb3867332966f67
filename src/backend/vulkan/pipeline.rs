//! Compute pipelines: a SPIR-V module, its descriptor layout (storage buffers only) and push
//! constants.

use super::device::Gpu;
use super::error::{check, VulkanError};
use ash::vk;
use std::sync::Arc;

pub struct Kernel {
    pub(crate) pipeline: vk::Pipeline,
    pub(crate) layout: vk::PipelineLayout,
    pub(crate) set_layout: vk::DescriptorSetLayout,
    /// Storage buffers at bindings `0 .. bindings`.
    pub bindings: u32,
    /// Bytes of push constants.
    pub push_bytes: u32,
    pub name: &'static str,
    gpu: Arc<Gpu>,
}

impl Kernel {
    /// Builds a pipeline from `spirv` with the given specialisation constants `(id, value)`.
    pub fn new(
        gpu: &Arc<Gpu>,
        name: &'static str,
        spirv: &[u8],
        bindings: u32,
        push_bytes: u32,
        specialization: &[(u32, u32)],
    ) -> Result<Kernel, VulkanError> {
        let code = ash::util::read_spv(&mut std::io::Cursor::new(spirv))
            .map_err(|e| VulkanError::Unsupported(format!("shader {name}: {e}")))?;
        let device = &gpu.device;
        let layout_bindings: Vec<_> = (0..bindings)
            .map(|b| {
                vk::DescriptorSetLayoutBinding::default()
                    .binding(b)
                    .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                    .descriptor_count(1)
                    .stage_flags(vk::ShaderStageFlags::COMPUTE)
            })
            .collect();
        let ranges = [vk::PushConstantRange::default()
            .stage_flags(vk::ShaderStageFlags::COMPUTE)
            .size(push_bytes)];
        let entries: Vec<_> = specialization
            .iter()
            .enumerate()
            .map(|(i, &(id, _))| vk::SpecializationMapEntry {
                constant_id: id,
                offset: 4 * i as u32,
                size: 4,
            })
            .collect();
        let values: Vec<u8> = specialization
            .iter()
            .flat_map(|&(_, v)| v.to_le_bytes())
            .collect();
        let spec = vk::SpecializationInfo::default()
            .map_entries(&entries)
            .data(&values);
        // SAFETY (this block): every create-info and what it points to lives across its call;
        // each object is destroyed on the error paths below or by `Drop`.
        unsafe {
            let module = device
                .create_shader_module(&vk::ShaderModuleCreateInfo::default().code(&code), None)
                .map_err(check("vkCreateShaderModule"))?;
            let set_layout = device
                .create_descriptor_set_layout(
                    &vk::DescriptorSetLayoutCreateInfo::default().bindings(&layout_bindings),
                    None,
                )
                .map_err(check("vkCreateDescriptorSetLayout"));
            let set_layout = match set_layout {
                Ok(l) => l,
                Err(e) => {
                    device.destroy_shader_module(module, None);
                    return Err(e);
                }
            };
            let set_layouts = [set_layout];
            let mut layout_info = vk::PipelineLayoutCreateInfo::default().set_layouts(&set_layouts);
            if push_bytes > 0 {
                layout_info = layout_info.push_constant_ranges(&ranges);
            }
            let layout = match device.create_pipeline_layout(&layout_info, None) {
                Ok(l) => l,
                Err(e) => {
                    device.destroy_descriptor_set_layout(set_layout, None);
                    device.destroy_shader_module(module, None);
                    return Err(check("vkCreatePipelineLayout")(e));
                }
            };
            let stage = vk::PipelineShaderStageCreateInfo::default()
                .stage(vk::ShaderStageFlags::COMPUTE)
                .module(module)
                .name(c"main")
                .specialization_info(&spec);
            let info = vk::ComputePipelineCreateInfo::default()
                .stage(stage)
                .layout(layout);
            let pipeline =
                device.create_compute_pipelines(vk::PipelineCache::null(), &[info], None);
            device.destroy_shader_module(module, None);
            let pipeline = match pipeline {
                Ok(p) => p[0],
                Err((_, e)) => {
                    device.destroy_pipeline_layout(layout, None);
                    device.destroy_descriptor_set_layout(set_layout, None);
                    return Err(check("vkCreateComputePipelines")(e));
                }
            };
            Ok(Kernel {
                pipeline,
                layout,
                set_layout,
                bindings,
                push_bytes,
                name,
                gpu: gpu.clone(),
            })
        }
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        // SAFETY: kernels are dropped with their executor, after its last submission finished.
        unsafe {
            let d = &self.gpu.device;
            d.destroy_pipeline(self.pipeline, None);
            d.destroy_pipeline_layout(self.layout, None);
            d.destroy_descriptor_set_layout(self.set_layout, None);
        }
    }
}
