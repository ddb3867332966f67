//! Who computes the experts. The MoE block of the forward pass gathers, per layer, the rows
//! routed to each expert and hands them to an [`ExpertExecutor`]; it gets each expert's output
//! rows back and combines them itself. [`CpuExperts`] is the executor that reads the weights
//! where they lie in the mapped file; another (a GPU's) implements the same trait, and a
//! [`Placement`] says per (layer, expert) which of the two runs it.

use super::forward::ForwardError;
use super::weights::{Ffn, Mlp, Weights};
use crate::quant::simd::Isa;
use crate::tensor::matmul::{matmul_in, Activations, MatmulScratch};
use crate::tensor::ops::swiglu;
use crate::tensor::{MatrixError, QMatrix};
use std::sync::Mutex;

/// The rows routed to one expert of one layer, and room for the expert's output.
pub struct ExpertWork<'s> {
    pub expert: usize,
    /// `[rows, d_model]`: the normalised hidden states of the tokens routed to `expert`, in the
    /// order of the batch.
    pub input: &'s [f32],
    /// `[rows]`: each row's router weight for this expert.
    pub weights: &'s [f32],
    /// `[rows, d_model]`: receives the expert's FFN output for each input row, times its weight.
    pub output: &'s mut [f32],
}

impl ExpertWork<'_> {
    pub fn rows(&self, d_model: usize) -> usize {
        self.input.len() / d_model
    }
}

/// Computes experts' feed-forward networks, weighted: `weight · down(silu(gate·x) * up·x)`. One
/// call carries
/// every expert this executor runs in `layer` for the current step, so that a device can take
/// them in one submission.
///
/// A device works in two halves, so that the CPU's experts run while it computes: [`start`]
/// submits the work, [`finish`] waits for it and fills every `output`. The forward pass calls
/// both, with the same `work`, around its CPU work; [`run`] is the two in a row.
///
/// [`start`]: ExpertExecutor::start
/// [`finish`]: ExpertExecutor::finish
/// [`run`]: ExpertExecutor::run
pub trait ExpertExecutor: Sync {
    /// Begins the work; an executor that computes in place does all of it here.
    fn start(&self, layer: usize, work: &mut [ExpertWork<'_>]) -> Result<(), ForwardError>;

    /// Completes what `start` began for the same `work`.
    fn finish(&self, _layer: usize, _work: &mut [ExpertWork<'_>]) -> Result<(), ForwardError> {
        Ok(())
    }

    fn run(&self, layer: usize, work: &mut [ExpertWork<'_>]) -> Result<(), ForwardError> {
        self.start(layer, work)?;
        self.finish(layer, work)
    }
}

/// The kernels a CPU product uses: the instruction set and the activation precision.
#[derive(Clone, Copy, Debug)]
pub struct CpuKernels {
    pub isa: Isa,
    pub acts: Activations,
}

/// Buffers the CPU products reuse from call to call: a feed-forward network's intermediates and
/// the matmul's own.
#[derive(Default)]
pub struct KernelScratch {
    /// `[2, rows, n_ff]`: gate and up products; grows when short.
    ffn: Vec<f32>,
    pub(super) mm: MatmulScratch,
}

impl CpuKernels {
    /// `y = x · wᵀ`: `x: [n, w.cols]`, `y: [n, w.rows]`.
    pub fn mm(
        &self,
        w: &QMatrix,
        x: &[f32],
        n: usize,
        y: &mut [f32],
        scratch: &mut MatmulScratch,
    ) -> Result<(), MatrixError> {
        matmul_in(w, x, n, y, self.isa, self.acts, scratch)
    }

    /// `out = down(silu(gate · x) * (up · x))` for `n` rows; `x, out: [n, d_model]`.
    pub fn mlp(
        &self,
        mlp: &Mlp,
        x: &[f32],
        n: usize,
        out: &mut [f32],
        scratch: &mut KernelScratch,
    ) -> Result<(), MatrixError> {
        let n_ff = mlp.gate.rows;
        let KernelScratch { ffn, mm } = scratch;
        if ffn.len() < 2 * n * n_ff {
            ffn.resize(2 * n * n_ff, 0.0);
        }
        let (g, u) = ffn[..2 * n * n_ff].split_at_mut(n * n_ff); // [n, n_ff] each
        self.mm(&mlp.gate, x, n, g, mm)?;
        self.mm(&mlp.up, x, n, u, mm)?;
        swiglu(g, u);
        self.mm(&mlp.down, g, n, out, mm)
    }
}

/// The CPU executor: the experts' matrices as views into the mapped file (nothing is copied).
pub struct CpuExperts<'a> {
    /// `[layer][expert]`; empty for dense layers.
    experts: Vec<Vec<Mlp<'a>>>,
    kernels: CpuKernels,
    /// Reused from call to call (one step runs at a time).
    scratch: Mutex<KernelScratch>,
}

impl<'a> CpuExperts<'a> {
    pub fn new(weights: &Weights<'a>, kernels: CpuKernels) -> Self {
        let experts = weights
            .layers
            .iter()
            .map(|l| match &l.ffn {
                Ffn::Moe { experts, .. } => experts.clone(),
                Ffn::Dense(_) => Vec::new(),
            })
            .collect();
        CpuExperts {
            experts,
            kernels,
            scratch: Mutex::default(),
        }
    }
}

impl ExpertExecutor for CpuExperts<'_> {
    fn start(&self, layer: usize, work: &mut [ExpertWork<'_>]) -> Result<(), ForwardError> {
        let experts = &self.experts[layer];
        // A poisoned lock only means an earlier call panicked; the buffer is scratch.
        let mut scratch = self.scratch.lock().unwrap_or_else(|p| p.into_inner());
        for w in work {
            let mlp = &experts[w.expert];
            let rows = w.rows(mlp.gate.cols);
            self.kernels
                .mlp(mlp, w.input, rows, w.output, &mut scratch)?;
            for (row, &weight) in w.output.chunks_exact_mut(mlp.gate.cols).zip(w.weights) {
                row.iter_mut().for_each(|v| *v *= weight);
            }
        }
        Ok(())
    }
}

/// Which executor runs each (layer, expert): the CPU, or the one other executor a model may
/// have (a GPU's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// `[layer][expert]`: true where the other executor runs the expert.
    offloaded: Vec<Vec<bool>>,
}

impl Placement {
    /// Every expert on the CPU.
    pub fn cpu(n_layer: usize, n_expert: usize) -> Self {
        Placement {
            offloaded: vec![vec![false; n_expert]; n_layer],
        }
    }

    /// Every expert on the other executor.
    pub fn all_offloaded(n_layer: usize, n_expert: usize) -> Self {
        Placement {
            offloaded: vec![vec![true; n_expert]; n_layer],
        }
    }

    pub fn set(&mut self, layer: usize, expert: usize, offloaded: bool) {
        self.offloaded[layer][expert] = offloaded;
    }

    pub fn is_offloaded(&self, layer: usize, expert: usize) -> bool {
        self.offloaded[layer][expert]
    }
}
