//! Putting a model's experts on a GPU: which device, which experts fit the VRAM budget, the
//! upload, and what happened (one line for the user when it fell back to the CPU).

use super::vulkan::{Gpu, GpuChoice, GpuExperts, GpuOptions, VulkanError, VulkanExperts};
use crate::model::Model;

/// How many experts to put on the GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpertsOnGpu {
    /// Every expert that fits the budget, in (layer, expert) order.
    All,
    /// At most this many, in (layer, expert) order.
    Count(usize),
}

impl ExpertsOnGpu {
    /// `all`, `none` or a count.
    pub fn parse(s: &str) -> Option<ExpertsOnGpu> {
        match s {
            "all" => Some(ExpertsOnGpu::All),
            "none" => Some(ExpertsOnGpu::Count(0)),
            _ => s.parse().ok().map(ExpertsOnGpu::Count),
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct GpuSettings {
    pub choice: GpuChoice,
    pub experts: ExpertsOnGpu,
    /// Device bytes the experts may take; `None` for what the device reports free, less a margin.
    pub vram_budget: Option<u64>,
    pub options: GpuOptions,
}

impl Default for GpuSettings {
    fn default() -> Self {
        GpuSettings {
            choice: GpuChoice::Auto,
            experts: ExpertsOnGpu::All,
            vram_budget: None,
            options: GpuOptions::default(),
        }
    }
}

/// Where the experts ended up.
#[derive(Clone, Debug, PartialEq)]
pub enum GpuStatus {
    /// No GPU was asked for, or none was found where any would do (`--gpu auto`).
    Cpu,
    /// A GPU was asked for and could not be used: why, in one line. The model runs on the CPU.
    Fallback(String),
    /// `experts` of the model's `of` experts run on `device`, taking `bytes` of its memory.
    Gpu {
        device: String,
        experts: usize,
        of: usize,
        bytes: u64,
    },
}

/// Device memory kept free of experts when the budget is the device's own figure: room for the
/// step buffers, the driver and other programs.
fn default_budget(gpu: &Gpu) -> u64 {
    let free = gpu.info.available_bytes();
    free.saturating_sub((free / 10).max(512 << 20))
}

/// The model with the experts `settings` asks for on the GPU, or unchanged with the reason.
/// `progress(done, total)` follows the upload in bytes.
pub fn offload<'a>(
    model: Model<'a>,
    settings: &GpuSettings,
    progress: &mut dyn FnMut(u64, u64),
) -> (Model<'a>, GpuStatus) {
    if settings.choice == GpuChoice::None || settings.experts == ExpertsOnGpu::Count(0) {
        return (model, GpuStatus::Cpu);
    }
    let total_experts = model.config.n_layer * model.config.n_expert;
    if total_experts == 0 {
        let status = match settings.choice {
            GpuChoice::Index(_) => {
                GpuStatus::Fallback("the model has no experts to put on the GPU".into())
            }
            _ => GpuStatus::Cpu,
        };
        return (model, status);
    }
    let gpu = match Gpu::open(settings.choice, settings.options) {
        Ok(gpu) => gpu,
        // `auto` on a machine without a GPU is the ordinary CPU-only case: nothing to say.
        Err(VulkanError::NoLoader(_) | VulkanError::NoDevice | VulkanError::NoGpu(_))
            if settings.choice == GpuChoice::Auto =>
        {
            return (model, GpuStatus::Cpu)
        }
        Err(e) => return (model, GpuStatus::Fallback(e.to_string())),
    };
    let budget = settings.vram_budget.unwrap_or_else(|| default_budget(&gpu));
    let limit = match settings.experts {
        ExpertsOnGpu::All => None,
        ExpertsOnGpu::Count(n) => Some(n),
    };
    let plan = GpuExperts::plan(&gpu, &model.weights, budget, limit);
    if plan.count == 0 {
        let why = if plan.smallest == u64::MAX {
            "the GPU kernels cannot take this model's expert formats or shapes".to_string()
        } else {
            format!(
                "a VRAM budget of {} holds no expert (one takes {})",
                human_bytes(budget),
                human_bytes(plan.smallest)
            )
        };
        return (
            model,
            GpuStatus::Fallback(format!("{}: {why}", gpu.info.name)),
        );
    }
    let weights_total = plan.bytes;
    let experts = VulkanExperts::upload(&gpu, &model.weights, &plan.placement, &mut |done| {
        progress(done, weights_total)
    });
    match experts {
        Ok(experts) => {
            let status = GpuStatus::Gpu {
                device: gpu.info.name.clone(),
                experts: plan.count,
                of: total_experts,
                bytes: plan.bytes,
            };
            (
                model.with_expert_executor(Box::new(experts), plan.placement),
                status,
            )
        }
        Err(e) => (
            model,
            GpuStatus::Fallback(format!("{}: uploading the experts: {e}", gpu.info.name)),
        ),
    }
}

/// Bytes in binary units: `512 B`, `3.0 KiB`, `1.5 GiB`.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A byte count with an optional binary suffix: `4G`, `512M`, `1K`, `4096` (`GiB`/`GB`/`g` and
/// so on are accepted too).
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let v: f64 = num.parse().ok()?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return None,
    };
    let bytes = v * (1u64 << shift) as f64;
    (v.is_finite() && bytes < u64::MAX as f64).then_some(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_parse_and_print() {
        assert_eq!(parse_bytes("4G"), Some(4 << 30));
        assert_eq!(parse_bytes("1.5GiB"), Some(3 << 29));
        assert_eq!(parse_bytes("512m"), Some(512 << 20));
        assert_eq!(parse_bytes("4096"), Some(4096));
        assert_eq!(parse_bytes("1K"), Some(1024));
        assert_eq!(parse_bytes("-1G"), None);
        assert_eq!(parse_bytes("lots"), None);
        assert_eq!(parse_bytes("1Q"), None);
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(100), "100 B");
        assert_eq!(human_bytes(3 << 29), "1.5 GiB");
    }

    #[test]
    fn expert_counts_parse() {
        assert_eq!(ExpertsOnGpu::parse("all"), Some(ExpertsOnGpu::All));
        assert_eq!(ExpertsOnGpu::parse("none"), Some(ExpertsOnGpu::Count(0)));
        assert_eq!(ExpertsOnGpu::parse("12"), Some(ExpertsOnGpu::Count(12)));
        assert_eq!(ExpertsOnGpu::parse("-3"), None);
    }
}
