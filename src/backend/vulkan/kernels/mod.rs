//! One typed wrapper per shader, and [`Kernels`]: the device's pipelines, each built the first
//! time it is used (building all 35 up front would cost seconds on a CPU driver).

pub mod matmul;
pub mod probe;
pub mod swiglu;

use super::device::Gpu;
use super::error::VulkanError;
use super::pipeline::Kernel;
use super::shaders;
use crate::quant::GgmlType;
use std::sync::{Arc, Mutex};

/// Which pipeline: per format, or one of the format-free kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Which {
    Matvec(usize),
    Matmul(usize),
    Swiglu,
    Probe,
}

pub struct Kernels {
    gpu: Arc<Gpu>,
    built: Mutex<Vec<(Which, Arc<Kernel>)>>,
}

impl Kernels {
    pub fn new(gpu: &Arc<Gpu>) -> Kernels {
        Kernels {
            gpu: gpu.clone(),
            built: Mutex::new(Vec::new()),
        }
    }

    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }

    fn get(&self, which: Which) -> Result<Arc<Kernel>, VulkanError> {
        let mut built = self.built.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, k)) = built.iter().find(|(w, _)| *w == which) {
            return Ok(k.clone());
        }
        let gpu = &self.gpu;
        let kernel = match which {
            Which::Matvec(slot) => {
                let m = shaders::format_modules(slot);
                let (code, name) = if gpu.subgroups {
                    (m.matvec_subgroup, "matvec (subgroup)")
                } else {
                    (m.matvec, "matvec")
                };
                let push = matmul::PUSH_WORDS as u32 * 4;
                Kernel::new(gpu, name, code, 3, push, &[(0, gpu.matvec_workgroup())])?
            }
            Which::Matmul(slot) => {
                let code = shaders::format_modules(slot).matmul;
                Kernel::new(gpu, "matmul", code, 3, matmul::PUSH_WORDS as u32 * 4, &[])?
            }
            Which::Swiglu => Kernel::new(gpu, "swiglu", shaders::SWIGLU, 3, 16, &[])?,
            Which::Probe => Kernel::new(gpu, "probe", shaders::PROBE, 2, 4, &[])?,
        };
        let kernel = Arc::new(kernel);
        built.push((which, kernel.clone()));
        Ok(kernel)
    }

    /// The format's slot, or an error naming a format without GPU kernels.
    fn slot(ty: GgmlType) -> Result<usize, VulkanError> {
        shaders::format_slot(ty)
            .ok_or_else(|| VulkanError::Unsupported(format!("no GPU kernels for {ty} weights")))
    }

    pub(crate) fn matvec(&self, ty: GgmlType) -> Result<Arc<Kernel>, VulkanError> {
        self.get(Which::Matvec(Self::slot(ty)?))
    }

    pub(crate) fn matmul(&self, ty: GgmlType) -> Result<Arc<Kernel>, VulkanError> {
        self.get(Which::Matmul(Self::slot(ty)?))
    }

    pub(crate) fn swiglu(&self) -> Result<Arc<Kernel>, VulkanError> {
        self.get(Which::Swiglu)
    }

    pub(crate) fn probe(&self) -> Result<Arc<Kernel>, VulkanError> {
        self.get(Which::Probe)
    }
}
