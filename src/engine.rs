//! The library's entry point: a model file opened with what running it needs (its
//! configuration, tokenizer, a thread pool of its own, the KV cache type and the activation
//! precision), so that every program (the CLI's commands, a server) starts the same way.
//!
//! The pool is the engine's own, not rayon's global one: [`Engine::install`] runs work on it,
//! and every parallel loop inside (matmuls, attention, norms) runs on its threads. A server can
//! keep one engine per model, each with its own threads.

use crate::backend::offload::{self, GpuSettings, GpuStatus};
use crate::gguf::{GgufError, GgufFile};
use crate::model::{LoadError, Model, ModelConfig};
use crate::session::Session;
use crate::tensor::kv::KvType;
use crate::tensor::matmul::Activations;
use crate::tokenizer::{Tokenizer, TokenizerError};
use std::path::{Path, PathBuf};

/// How to run a model.
#[derive(Clone, Copy, Debug)]
pub struct EngineOptions {
    /// Worker threads; `None` for the machine's physical cores.
    pub threads: Option<usize>,
    pub kv_type: KvType,
    pub activations: Activations,
    /// Which GPU runs which experts.
    pub gpu: GpuSettings,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            threads: None,
            kv_type: KvType::F16,
            activations: Activations::default(),
            gpu: GpuSettings::default(),
        }
    }
}

/// Why an engine could not be opened or used. Each names the file; the CLI adds flag names.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot read {}: it is a directory, not a GGUF file", .0.display())]
    Directory(PathBuf),
    /// An operating-system error (the message starts with the path).
    #[error("cannot read {0}")]
    Read(GgufError),
    #[error("cannot read {}: {source}", path.display())]
    Open { path: PathBuf, source: GgufError },
    #[error("{}: {source}", path.display())]
    Model { path: PathBuf, source: LoadError },
    #[error("{}: {source}", path.display())]
    Tokenizer {
        path: PathBuf,
        source: TokenizerError,
    },
    #[error("{0}")]
    Threads(String),
    #[error("{0}")]
    Session(String),
}

pub struct Engine {
    pub path: PathBuf,
    pub file: GgufFile,
    pub config: ModelConfig,
    pub tokenizer: Tokenizer,
    pub options: EngineOptions,
    pool: rayon::ThreadPool,
}

impl Engine {
    /// Maps the file, reads its configuration and tokenizer, and starts the thread pool. The
    /// weights are bound by [`Engine::model`].
    pub fn open(path: &Path, options: EngineOptions) -> Result<Engine, EngineError> {
        let file = open_file(path)?;
        let config = ModelConfig::from_gguf(&file).map_err(|source| EngineError::Model {
            path: path.to_path_buf(),
            source,
        })?;
        let tokenizer = Tokenizer::from_gguf(&file).map_err(|source| EngineError::Tokenizer {
            path: path.to_path_buf(),
            source,
        })?;
        let threads = match options.threads {
            Some(n) => crate::machine::check_threads(n).map_err(EngineError::Threads)?,
            None => crate::machine::physical_cores(),
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("tandem-{i}"))
            .build()
            .map_err(|e| EngineError::Threads(format!("starting {threads} threads: {e}")))?;
        Ok(Engine {
            path: path.to_path_buf(),
            file,
            config,
            tokenizer,
            options,
            pool,
        })
    }

    /// The model with its weights bound (views into the map, nothing copied).
    pub fn model(&self) -> Result<Model<'_>, EngineError> {
        let weights = crate::model::weights::Weights::from_gguf(&self.file, &self.config).map_err(
            |source| EngineError::Model {
                path: self.path.clone(),
                source,
            },
        )?;
        Ok(Model::new(self.config.clone(), weights).with_activations(self.options.activations))
    }

    /// [`Engine::model`] with the experts the options put on a GPU uploaded there, and what
    /// became of them. A GPU that cannot be used is not an error: the model runs on the CPU and
    /// the status says why. `progress(done, total)` follows the upload in bytes.
    pub fn model_with_gpu(
        &self,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(Model<'_>, GpuStatus), EngineError> {
        Ok(offload::offload(self.model()?, &self.options.gpu, progress))
    }

    /// A conversation of up to `n_ctx` tokens with the engine's KV cache type.
    pub fn session<'m, 'w>(
        &self,
        model: &'m Model<'w>,
        n_ctx: usize,
    ) -> Result<Session<'m, 'w>, EngineError> {
        Session::new(model, n_ctx, self.options.kv_type).map_err(EngineError::Session)
    }

    /// Worker threads in the engine's pool.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Runs `work` on one of the engine's threads and waits for it: the parallel loops inside
    /// then run on the engine's pool, and start on a worker that takes part in them.
    pub fn install<R: Send>(&self, work: impl FnOnce() -> R + Send) -> R {
        self.pool.install(work)
    }
}

/// Maps a GGUF file, with errors that name the path once and say when it is a directory (also for
/// programs that read a file without running it).
pub fn open_file(path: &Path) -> Result<GgufFile, EngineError> {
    if path.is_dir() {
        return Err(EngineError::Directory(path.to_path_buf()));
    }
    GgufFile::open(path).map_err(|e| match e {
        // Its message starts with the path already.
        GgufError::Io { .. } => EngineError::Read(e),
        source => EngineError::Open {
            path: path.to_path_buf(),
            source,
        },
    })
}
