//! Experts on the GPU: the [`ExpertExecutor`] that runs a layer's offloaded experts in one
//! submission (per expert: gate and up products, `silu(g)·u·weight`, the down product, each
//! output row arriving already scaled by its router weight).

use super::commands::{Commands, QueueKind};
use super::device::Gpu;
use super::error::VulkanError;
use super::kernels::matmul::{self, Product, Rows};
use super::kernels::{swiglu, Kernels};
use super::matrix::GpuMatrix;
use super::memory::{Buffer, Place};
use super::upload::Uploader;
use crate::model::experts::{ExpertExecutor, ExpertWork, Placement};
use crate::model::forward::ForwardError;
use crate::model::weights::{Ffn, Mlp, Weights};
use std::sync::{Arc, Mutex};

/// One expert's matrices on the device.
pub struct GpuMlp {
    pub gate: GpuMatrix, // [n_ff, d_model]
    pub up: GpuMatrix,   // [n_ff, d_model]
    pub down: GpuMatrix, // [d_model, n_ff]
}

/// Which experts go to the GPU, and what they take there.
pub struct GpuExperts {
    pub placement: Placement,
    /// Device bytes of the experts placed.
    pub bytes: u64,
    /// Device bytes of the smallest expert, for a message when none fits.
    pub smallest: u64,
    pub count: usize,
}

impl GpuExperts {
    /// Places experts in (layer, expert) order until `budget` bytes are used; `limit` caps how many
    /// (None: all that fit). An expert whose format or shape the kernels cannot take stays on the
    /// CPU.
    pub fn plan(gpu: &Gpu, weights: &Weights, budget: u64, limit: Option<usize>) -> GpuExperts {
        let n_layer = weights.layers.len();
        let n_expert = weights
            .layers
            .iter()
            .map(|l| match &l.ffn {
                Ffn::Moe { experts, .. } => experts.len(),
                Ffn::Dense(_) => 0,
            })
            .max()
            .unwrap_or(0);
        let mut plan = GpuExperts {
            placement: Placement::cpu(n_layer, n_expert),
            bytes: 0,
            smallest: u64::MAX,
            count: 0,
        };
        for (l, layer) in weights.layers.iter().enumerate() {
            let Ffn::Moe { experts, .. } = &layer.ffn else {
                continue;
            };
            for (e, mlp) in experts.iter().enumerate() {
                let Ok(bytes) = mlp_bytes(gpu, mlp) else {
                    continue;
                };
                plan.smallest = plan.smallest.min(bytes);
                let full = limit.is_some_and(|n| plan.count >= n);
                if !full && plan.bytes + bytes <= budget {
                    plan.placement.set(l, e, true);
                    plan.bytes += bytes;
                    plan.count += 1;
                }
            }
        }
        plan
    }
}

fn mlp_bytes(gpu: &Gpu, mlp: &Mlp) -> Result<u64, VulkanError> {
    Ok(GpuMatrix::device_bytes(gpu, &mlp.gate)?
        + GpuMatrix::device_bytes(gpu, &mlp.up)?
        + GpuMatrix::device_bytes(gpu, &mlp.down)?)
}

/// The buffers one layer's submission uses, grown when a step has more rows.
struct Step {
    cmds: Commands,
    /// Rows the buffers below hold.
    rows: usize,
    x: Option<Buffer>,       // [rows, d_model], written by the CPU
    weights: Option<Buffer>, // [rows]: each row's router weight
    gate: Option<Buffer>,    // [rows, n_ff]
    up: Option<Buffer>,      // [rows, n_ff]
    out: Option<Buffer>,     // [rows, d_model], read by the CPU
    /// The pieces of the submission in flight, whose outputs `finish` reads back.
    pending: Vec<Piece>,
}

/// Rows `range` of `work[index]`.
type Piece = (usize, std::ops::Range<usize>);

pub struct VulkanExperts {
    kernels: Kernels,
    /// `[layer][expert]`: `None` where the CPU runs the expert.
    experts: Vec<Vec<Option<GpuMlp>>>,
    d_model: usize,
    n_ff: usize,
    step: Mutex<Step>,
}

impl VulkanExperts {
    /// Uploads the experts `placement` marks, calling `progress` with the bytes done so far.
    pub fn upload(
        gpu: &Arc<Gpu>,
        weights: &Weights,
        placement: &Placement,
        progress: &mut dyn FnMut(u64),
    ) -> Result<VulkanExperts, VulkanError> {
        let mut uploader = Uploader::new(gpu);
        let mut done = 0u64;
        let mut experts = Vec::new();
        let (mut d_model, mut n_ff) = (0, 0);
        for (l, layer) in weights.layers.iter().enumerate() {
            let mut row = Vec::new();
            if let Ffn::Moe { experts: mlps, .. } = &layer.ffn {
                for (e, mlp) in mlps.iter().enumerate() {
                    if !placement.is_offloaded(l, e) {
                        row.push(None);
                        continue;
                    }
                    let name = format!("blk.{l} expert {e}");
                    let mut up = |m| {
                        let g = GpuMatrix::upload(gpu, m, &mut uploader, &name);
                        done += m.data.len() as u64;
                        progress(done);
                        g
                    };
                    row.push(Some(GpuMlp {
                        gate: up(&mlp.gate)?,
                        up: up(&mlp.up)?,
                        down: up(&mlp.down)?,
                    }));
                    (d_model, n_ff) = (mlp.gate.cols, mlp.gate.rows);
                }
            }
            experts.push(row);
        }
        Ok(VulkanExperts {
            kernels: Kernels::new(gpu),
            experts,
            d_model,
            n_ff,
            step: Mutex::new(Step {
                cmds: Commands::new(gpu, QueueKind::Compute)?,
                rows: 0,
                x: None,
                weights: None,
                gate: None,
                up: None,
                out: None,
                pending: Vec::new(),
            }),
        })
    }

    /// Rows one submission can take: the hidden-layer buffers must stay within the device's
    /// buffer limit.
    fn max_rows(&self) -> usize {
        let widest = self.n_ff.max(self.d_model).max(1) * 4;
        (self.kernels.gpu().max_buffer_bytes() as usize / widest).max(1)
    }

    /// Makes sure the step's buffers hold `rows` rows.
    fn grow(&self, step: &mut Step, rows: usize) -> Result<(), VulkanError> {
        if rows <= step.rows {
            return Ok(());
        }
        let rows = rows.next_power_of_two().min(self.max_rows()).max(rows);
        let gpu = self.kernels.gpu();
        let (d, f) = (self.d_model as u64, self.n_ff as u64);
        let r = rows as u64;
        step.x = Some(Buffer::new(gpu, r * d * 4, Place::Upload, "expert inputs")?);
        step.weights = Some(Buffer::new(gpu, r * 4, Place::Upload, "router weights")?);
        step.gate = Some(Buffer::new(
            gpu,
            r * f * 4,
            Place::Device,
            "expert hidden (gate)",
        )?);
        step.up = Some(Buffer::new(
            gpu,
            r * f * 4,
            Place::Device,
            "expert hidden (up)",
        )?);
        step.out = Some(Buffer::new(
            gpu,
            r * d * 4,
            Place::Readback,
            "expert outputs",
        )?);
        step.rows = rows;
        Ok(())
    }

    /// Records `pieces` as one submission and submits it; [`Self::read_back`] waits for it.
    fn submit(
        &self,
        step: &mut Step,
        layer: usize,
        work: &[ExpertWork<'_>],
        pieces: Vec<Piece>,
    ) -> Result<(), VulkanError> {
        if pieces.is_empty() {
            return Ok(());
        }
        let d = self.d_model;
        let rows: usize = pieces.iter().map(|(_, r)| r.len()).sum();
        // The buffers are about to be rewritten: whatever used them must be done.
        step.cmds.wait()?;
        self.grow(step, rows)?;
        let Step {
            cmds,
            x,
            weights,
            gate,
            up,
            out,
            ..
        } = step;
        let (x, weights, gate, up, out) = (
            x.as_mut().expect("grown"),
            weights.as_mut().expect("grown"),
            gate.as_ref().expect("grown"),
            up.as_ref().expect("grown"),
            out.as_ref().expect("grown"),
        );
        let mut at = 0;
        for (i, r) in &pieces {
            let w = &work[*i];
            x.write(at * d * 4, &w.input[r.start * d..r.end * d])?;
            weights.write(at * 4, &w.weights[r.clone()])?;
            at += r.len();
        }

        cmds.begin()?;
        let rows_of = |buffer, offset, stride| Rows {
            buffer,
            offset,
            stride,
        };
        let mut at = 0;
        for (i, r) in &pieces {
            let mlp = self.mlp(layer, work[*i].expert)?;
            let n = r.len();
            let xs = rows_of(&*x, at * d, d);
            let auto = Product::Auto;
            matmul::record(
                cmds,
                &self.kernels,
                &mlp.gate,
                xs,
                n,
                rows_of(gate, at * self.n_ff, self.n_ff),
                auto,
            )?;
            matmul::record(
                cmds,
                &self.kernels,
                &mlp.up,
                xs,
                n,
                rows_of(up, at * self.n_ff, self.n_ff),
                auto,
            )?;
            at += n;
        }
        cmds.barrier();
        swiglu::record(cmds, &self.kernels, gate, up, weights, 0, rows, self.n_ff)?;
        cmds.barrier();
        let mut at = 0;
        for (i, r) in &pieces {
            let mlp = self.mlp(layer, work[*i].expert)?;
            let n = r.len();
            let hs = rows_of(gate, at * self.n_ff, self.n_ff);
            matmul::record(
                cmds,
                &self.kernels,
                &mlp.down,
                hs,
                n,
                rows_of(out, at * d, d),
                Product::Auto,
            )?;
            at += n;
        }
        cmds.barrier();
        cmds.submit()?;
        step.pending = pieces;
        Ok(())
    }

    /// Waits for the submission in flight and copies its outputs into `work`.
    fn read_back(&self, step: &mut Step, work: &mut [ExpertWork<'_>]) -> Result<(), VulkanError> {
        step.cmds.wait()?;
        let d = self.d_model;
        let Some(out) = step.out.as_ref() else {
            return Ok(());
        };
        let mut at = 0;
        for (i, r) in std::mem::take(&mut step.pending) {
            let w = &mut work[i];
            out.read_f32(at * d * 4, &mut w.output[r.start * d..r.end * d])?;
            at += r.len();
        }
        Ok(())
    }

    fn mlp(&self, layer: usize, expert: usize) -> Result<&GpuMlp, VulkanError> {
        self.experts
            .get(layer)
            .and_then(|l| l.get(expert))
            .and_then(Option::as_ref)
            .ok_or_else(|| {
                VulkanError::Unsupported(format!("layer {layer} expert {expert} is not on the GPU"))
            })
    }
}

impl ExpertExecutor for VulkanExperts {
    /// Submits the layer's work and returns while the device computes it, in submissions of at
    /// most `max_rows` rows (an expert's rows cut if needed); all but the last are waited for
    /// here.
    fn start(&self, layer: usize, work: &mut [ExpertWork<'_>]) -> Result<(), ForwardError> {
        let max = self.max_rows();
        let mut step = self.step.lock().unwrap_or_else(|p| p.into_inner());
        let mut pieces: Vec<Piece> = Vec::new();
        let mut rows = 0;
        for i in 0..work.len() {
            let n = work[i].rows(self.d_model);
            let mut start = 0;
            while start < n {
                if rows == max {
                    self.submit(&mut step, layer, work, std::mem::take(&mut pieces))
                        .and_then(|()| self.read_back(&mut step, work))
                        .map_err(gpu_error)?;
                    rows = 0;
                }
                let take = (n - start).min(max - rows);
                pieces.push((i, start..start + take));
                rows += take;
                start += take;
            }
        }
        self.submit(&mut step, layer, work, pieces)
            .map_err(gpu_error)
    }

    fn finish(&self, _layer: usize, work: &mut [ExpertWork<'_>]) -> Result<(), ForwardError> {
        let mut step = self.step.lock().unwrap_or_else(|p| p.into_inner());
        self.read_back(&mut step, work).map_err(gpu_error)
    }
}

fn gpu_error(e: VulkanError) -> ForwardError {
    ForwardError::Gpu(e.to_string())
}
