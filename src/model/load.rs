//! Reading a model out of a GGUF file: the hyper-parameters from metadata, and every tensor bound
//! by llama.cpp's name as a zero-copy view of the mmap.

use super::config::ModelConfig;
use super::tensors::Role;
use super::weights::{Ffn, Layer, Mlp, Weights};
use crate::gguf::{keys, GgufError, GgufFile};
use crate::quant::GgmlType;
use crate::tensor::matmul::dequantize_row;
use crate::tensor::{MatrixError, QMatrix};
use std::borrow::Cow;

/// Why a model could not be read from a file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("unsupported architecture `{0}`: tandem runs `llama`-architecture models (Llama, Mistral, Mixtral)")]
    Architecture(String),
    #[error("bad model hyper-parameter: {0}")]
    Config(String),
    #[error("tensor `{0}` is missing")]
    Missing(String),
    #[error(
        "tensor `{name}` has shape {found:?}, expected {expected:?} (ggml order, row length first)"
    )]
    Shape {
        name: String,
        expected: Vec<u64>,
        found: Vec<u64>,
    },
    #[error("tensor `{name}`: {source}")]
    Matrix { name: String, source: MatrixError },
    #[error(transparent)]
    Gguf(#[from] GgufError),
}

/// The architectures whose tensors and metadata follow llama.cpp's `llama` layout.
const ARCHITECTURES: &[&str] = &["llama"];

impl ModelConfig {
    pub fn from_gguf(file: &GgufFile) -> Result<Self, LoadError> {
        let m = file.metadata();
        let arch = m.string(keys::GENERAL_ARCHITECTURE)?.to_string();
        if !ARCHITECTURES.contains(&arch.as_str()) {
            return Err(LoadError::Architecture(arch));
        }
        let key = |k: &str| keys::arch_key(&arch, k);
        let usize_of = |k: &str| -> Result<usize, LoadError> { Ok(m.u64(&key(k))? as usize) };
        let opt_usize = |k: &str| -> Result<Option<usize>, LoadError> {
            Ok(m.get_opt::<u64>(&key(k))?.map(|v| v as usize))
        };
        let d_model = usize_of(keys::EMBEDDING_LENGTH_SUFFIX)?;
        let n_head = usize_of(keys::HEAD_COUNT_SUFFIX)?;
        if n_head == 0 || d_model == 0 {
            return Err(LoadError::Config(format!(
                "embedding_length {d_model}, head_count {n_head}"
            )));
        }
        let n_kv_head = opt_usize(keys::HEAD_COUNT_KV_SUFFIX)?.unwrap_or(n_head);
        let head_dim = opt_usize(keys::KEY_LENGTH_SUFFIX)?.unwrap_or(d_model / n_head);
        // tandem's attention reads values of the same size as keys.
        if let Some(v) = opt_usize(keys::VALUE_LENGTH_SUFFIX)?.filter(|&v| v != head_dim) {
            return Err(LoadError::Config(format!(
                "{} = {v} differs from the key length {head_dim}; tandem needs them equal",
                key(keys::VALUE_LENGTH_SUFFIX)
            )));
        }
        // Scaled RoPE (linear, YaRN) changes every angle; tandem computes plain RoPE only.
        let scaling = key(keys::ROPE_SCALING_TYPE_SUFFIX);
        if let Some(t) = m.get_opt::<&str>(&scaling)?.filter(|&t| t != "none") {
            return Err(LoadError::Config(format!(
                "{scaling} = {t}: scaled RoPE is not supported"
            )));
        }
        let n_rot = opt_usize(keys::ROPE_DIMENSION_COUNT_SUFFIX)?.unwrap_or(head_dim);
        let n_expert = opt_usize(keys::EXPERT_COUNT_SUFFIX)?.unwrap_or(0);
        let n_expert_used = opt_usize(keys::EXPERT_USED_COUNT_SUFFIX)?.unwrap_or(0);
        let n_vocab = match opt_usize(keys::VOCAB_SIZE_SUFFIX)? {
            Some(v) => v,
            None => match file.tensor(&Role::TokenEmbedding.name(0)) {
                Some(t) if t.ne().len() == 2 => t.ne()[1] as usize,
                _ => return Err(LoadError::Missing(Role::TokenEmbedding.name(0))),
            },
        };
        let c = ModelConfig {
            name: m
                .get_opt::<&str>(keys::GENERAL_NAME)?
                .unwrap_or("unnamed")
                .to_string(),
            n_layer: usize_of(keys::BLOCK_COUNT_SUFFIX)?,
            d_model,
            n_head,
            n_kv_head,
            head_dim,
            n_rot,
            n_ff: usize_of(keys::FEED_FORWARD_LENGTH_SUFFIX)?,
            n_vocab,
            n_ctx_train: usize_of(keys::CONTEXT_LENGTH_SUFFIX)?,
            rope_theta: m
                .get_opt::<f32>(&key(keys::ROPE_FREQ_BASE_SUFFIX))?
                .unwrap_or(10_000.0),
            norm_eps: m.f32(&key(keys::LAYER_NORM_RMS_EPS_SUFFIX))?,
            n_expert,
            n_expert_used,
            sliding_window: opt_usize(keys::SLIDING_WINDOW_SUFFIX)?.filter(|&w| w > 0),
        };
        c.validate(&arch).map_err(LoadError::Config)?;
        Ok(c)
    }

    /// Whether the feed-forward layers are mixtures of experts.
    pub fn is_moe(&self) -> bool {
        self.n_expert > 0
    }
}

impl<'a> Weights<'a> {
    /// Binds every tensor the model needs, checking names and shapes.
    pub fn from_gguf(file: &'a GgufFile, c: &ModelConfig) -> Result<Self, LoadError> {
        let (d, q_len, kv_len) = (c.d_model, c.n_head * c.head_dim, c.n_kv_head * c.head_dim);
        let tok_embd = matrix(file, &Role::TokenEmbedding.name(0), c.n_vocab, d)?;
        let output = match file.tensor(&Role::Output.name(0)) {
            Some(_) => matrix(file, &Role::Output.name(0), c.n_vocab, d)?,
            None => tok_embd, // tied embeddings
        };
        let layers = (0..c.n_layer)
            .map(|l| {
                let name = |r: Role| r.name(l);
                let ffn = if c.is_moe() {
                    Ffn::Moe {
                        router: matrix(file, &name(Role::Router), c.n_expert, d)?,
                        experts: experts(file, l, c)?,
                    }
                } else {
                    Ffn::Dense(Mlp {
                        gate: matrix(file, &name(Role::FfnGate), c.n_ff, d)?,
                        up: matrix(file, &name(Role::FfnUp), c.n_ff, d)?,
                        down: matrix(file, &name(Role::FfnDown), d, c.n_ff)?,
                    })
                };
                Ok(Layer {
                    attn_norm: vector(file, &name(Role::AttnNorm), d)?,
                    wq: matrix(file, &name(Role::AttnQ), q_len, d)?,
                    wk: matrix(file, &name(Role::AttnK), kv_len, d)?,
                    wv: matrix(file, &name(Role::AttnV), kv_len, d)?,
                    wo: matrix(file, &name(Role::AttnOutput), d, q_len)?,
                    ffn_norm: vector(file, &name(Role::FfnNorm), d)?,
                    ffn,
                })
            })
            .collect::<Result<_, LoadError>>()?;
        Ok(Weights {
            tok_embd,
            layers,
            output_norm: vector(file, &Role::OutputNorm.name(0), d)?,
            output,
        })
    }
}

/// The experts of layer `l`: stacked `ffn_{gate,up,down}_exps` (sliced per expert, still zero
/// copy), or the older per-expert `ffn_{gate,up,down}.E` tensors.
fn experts<'a>(file: &'a GgufFile, l: usize, c: &ModelConfig) -> Result<Vec<Mlp<'a>>, LoadError> {
    let (d, f, n) = (c.d_model, c.n_ff, c.n_expert);
    if file.tensor(&Role::ExpertGate.name(l)).is_some() {
        let gate = stacked(file, &Role::ExpertGate.name(l), f, d, n)?;
        let up = stacked(file, &Role::ExpertUp.name(l), f, d, n)?;
        let down = stacked(file, &Role::ExpertDown.name(l), d, f, n)?;
        return Ok(gate
            .into_iter()
            .zip(up)
            .zip(down)
            .map(|((gate, up), down)| Mlp { gate, up, down })
            .collect());
    }
    let name = |r: Role, e| r.per_expert_name(l, e).expect("an expert role");
    (0..n)
        .map(|e| {
            Ok(Mlp {
                gate: matrix(file, &name(Role::ExpertGate, e), f, d)?,
                up: matrix(file, &name(Role::ExpertUp, e), f, d)?,
                down: matrix(file, &name(Role::ExpertDown, e), d, f)?,
            })
        })
        .collect()
}

fn info<'a>(
    file: &'a GgufFile,
    name: &str,
    expected: &[u64],
) -> Result<&'a crate::gguf::TensorInfo, LoadError> {
    let t = file
        .tensor(name)
        .ok_or_else(|| LoadError::Missing(name.to_string()))?;
    if t.ne() != expected {
        return Err(LoadError::Shape {
            name: name.into(),
            expected: expected.to_vec(),
            found: t.ne().to_vec(),
        });
    }
    Ok(t)
}

/// A `[rows, cols]` weight matrix (ggml `ne = [cols, rows]`).
fn matrix<'a>(
    file: &'a GgufFile,
    name: &str,
    rows: usize,
    cols: usize,
) -> Result<QMatrix<'a>, LoadError> {
    let t = info(file, name, &[cols as u64, rows as u64])?;
    QMatrix::new(t.ty(), rows, cols, file.tensor_bytes(t)).map_err(|source| LoadError::Matrix {
        name: name.into(),
        source,
    })
}

/// `n` matrices `[rows, cols]` stacked in one tensor (ggml `ne = [cols, rows, n]`).
fn stacked<'a>(
    file: &'a GgufFile,
    name: &str,
    rows: usize,
    cols: usize,
    n: usize,
) -> Result<Vec<QMatrix<'a>>, LoadError> {
    let t = info(file, name, &[cols as u64, rows as u64, n as u64])?;
    let bytes = file.tensor_bytes(t);
    let per = bytes.len() / n;
    bytes
        .chunks_exact(per)
        .map(|b| {
            QMatrix::new(t.ty(), rows, cols, b).map_err(|source| LoadError::Matrix {
                name: name.into(),
                source,
            })
        })
        .collect()
}

/// A `[len]` vector (norm weights): borrowed when stored as F32, else widened once.
fn vector<'a>(file: &'a GgufFile, name: &str, len: usize) -> Result<Cow<'a, [f32]>, LoadError> {
    let t = info(file, name, &[len as u64])?;
    if t.ty() == GgmlType::F32 {
        return Ok(Cow::Borrowed(file.tensor_data::<f32>(t)?));
    }
    let m =
        QMatrix::new(t.ty(), 1, len, file.tensor_bytes(t)).map_err(|source| LoadError::Matrix {
            name: name.into(),
            source,
        })?;
    let mut out = vec![0.0; len];
    dequantize_row(&m, 0, &mut out).map_err(|source| LoadError::Matrix {
        name: name.into(),
        source,
    })?;
    Ok(Cow::Owned(out))
}
