//! The streaming GGUF writer. Metadata and tensor specs are declared up front, so the whole
//! header (with every tensor's offset) is written first; then each tensor's bytes are streamed in
//! order and the caller needs to hold only one tensor at a time.
//!
//! Output goes to `OUT.tmp` beside `OUT`, which is fsynced and renamed over `OUT` by
//! [`GgufWriter::finish`]. On any error, or if the writer is dropped unfinished, the temp file is
//! removed, so `OUT` is either the complete new file or untouched.

use super::encode;
use super::error::{GgufError, Result};
use super::keys;
use super::metadata::Metadata;
use super::reader::DEFAULT_ALIGNMENT;
use super::tensor::TensorSpec;
use super::value::Value;
use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The version written: the current one, as llama.cpp writes it.
const VERSION: u32 = 3;

/// llama.cpp stores tensor names in a 64-byte buffer with a terminating NUL (`GGML_MAX_NAME`) and
/// refuses files with longer names.
const MAX_NAME_BYTES: usize = 63;

const ZEROS: [u8; 256] = [0; 256];

/// A GGUF file being written. See the module docs for the protocol.
pub struct GgufWriter {
    /// `None` once finished or failed.
    out: Option<BufWriter<File>>,
    tmp: PathBuf,
    dest: PathBuf,
    /// Each declared tensor with its byte size.
    tensors: Vec<(TensorSpec, u64)>,
    /// The next tensor to be written.
    next: usize,
    alignment: u64,
}

impl GgufWriter {
    /// Validates the declarations, creates `path.tmp` and writes the header.
    pub fn create(
        path: impl AsRef<Path>,
        metadata: &Metadata,
        tensors: &[TensorSpec],
    ) -> Result<GgufWriter> {
        let dest = path.as_ref().to_path_buf();
        let alignment = alignment(metadata)?;
        let mut sized = Vec::with_capacity(tensors.len());
        let mut offsets = Vec::with_capacity(tensors.len());
        let mut names = HashSet::new();
        let mut offset = 0u64;
        for t in tensors {
            let field = || format!("tensor `{}`", t.name);
            if !names.insert(t.name.as_str()) {
                return Err(GgufError::write(field(), "duplicate tensor name"));
            }
            if t.name.len() > MAX_NAME_BYTES {
                return Err(GgufError::write(
                    field(),
                    format!(
                        "name is {} bytes, llama.cpp reads at most {MAX_NAME_BYTES}",
                        t.name.len()
                    ),
                ));
            }
            let nbytes = t
                .nbytes()
                .map_err(|reason| GgufError::write(field(), reason))?;
            offsets.push(offset);
            offset = offset
                .checked_add(nbytes)
                .and_then(|end| pad_to(end, alignment).checked_add(end))
                .ok_or_else(|| GgufError::write(field(), "data section size overflows"))?;
            sized.push((t.clone(), nbytes));
        }
        let header = encode::header(VERSION, metadata, tensors, &offsets);

        let file_name = dest
            .file_name()
            .ok_or_else(|| GgufError::write(dest.display().to_string(), "not a file path"))?;
        let mut tmp_name = file_name.to_os_string();
        tmp_name.push(".tmp");
        let tmp = dest.with_file_name(tmp_name);
        let file = File::create(&tmp).map_err(|e| GgufError::io(&tmp, e))?;
        let mut writer = GgufWriter {
            out: Some(BufWriter::with_capacity(1 << 20, file)),
            tmp,
            dest,
            tensors: sized,
            next: 0,
            alignment,
        };
        writer.emit(&header)?;
        // The data section starts aligned. A file without tensors ends right after its header
        // (as gguf-py and llama.cpp write vocab-only files).
        if !tensors.is_empty() {
            writer.emit_padding(header.len() as u64)?;
        }
        Ok(writer)
    }

    /// Streams the data of the next declared tensor, which must be `name`, with exactly the byte
    /// size its type and shape imply.
    pub fn write_tensor(&mut self, name: &str, data: &[u8]) -> Result<()> {
        let Some((spec, nbytes)) = self.tensors.get(self.next) else {
            return self.fail(GgufError::write(
                format!("tensor `{name}`"),
                format!(
                    "all {} declared tensors are already written",
                    self.tensors.len()
                ),
            ));
        };
        if spec.name != name {
            let expected = spec.name.clone();
            return self.fail(GgufError::write(
                format!("tensor `{name}`"),
                format!(
                    "written out of order: tensor #{} is `{expected}`",
                    self.next
                ),
            ));
        }
        if data.len() as u64 != *nbytes {
            let reason = format!(
                "{} bytes given, but {} {:?} takes {nbytes}",
                data.len(),
                spec.ty,
                spec.ne
            );
            return self.fail(GgufError::write(format!("tensor `{name}`"), reason));
        }
        let nbytes = *nbytes;
        self.emit(data)?;
        self.emit_padding(nbytes)?;
        self.next += 1;
        Ok(())
    }

    /// Checks that every tensor was written, then flushes, fsyncs and renames the temp file
    /// over the destination.
    pub fn finish(mut self) -> Result<()> {
        if self.next != self.tensors.len() {
            let reason = format!(
                "{} of {} declared tensors were written",
                self.next,
                self.tensors.len()
            );
            let field = format!("tensor `{}`", self.tensors[self.next].0.name);
            return self.fail(GgufError::write(field, reason));
        }
        let Some(out) = self.out.take() else {
            return Err(failed_earlier());
        };
        let result = out
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|file| file.sync_all())
            .and_then(|()| std::fs::rename(&self.tmp, &self.dest));
        if let Err(e) = result {
            // Best effort: the error being reported matters more than a failed cleanup.
            let _ = std::fs::remove_file(&self.tmp);
            return Err(GgufError::io(&self.dest, e));
        }
        sync_parent_dir(&self.dest)
    }

    /// Writes `bytes`, cleaning up on failure.
    fn emit(&mut self, bytes: &[u8]) -> Result<()> {
        let Some(out) = self.out.as_mut() else {
            return Err(failed_earlier());
        };
        if let Err(e) = out.write_all(bytes) {
            let err = GgufError::io(&self.tmp, e);
            return self.fail(err);
        }
        Ok(())
    }

    /// Zeros up to the next multiple of the alignment after `len` bytes.
    fn emit_padding(&mut self, len: u64) -> Result<()> {
        let mut pad = pad_to(len, self.alignment);
        while pad > 0 {
            let n = pad.min(ZEROS.len() as u64);
            self.emit(&ZEROS[..n as usize])?;
            pad -= n;
        }
        Ok(())
    }

    /// Closes and removes the temp file, and returns `err`.
    fn fail<T>(&mut self, err: GgufError) -> Result<T> {
        self.discard();
        Err(err)
    }

    /// Closes and removes the temp file if it is still open (not finished, not yet cleaned up).
    fn discard(&mut self) {
        if self.out.take().is_some() {
            // Best effort: the error being reported matters more than a failed cleanup.
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

impl Drop for GgufWriter {
    fn drop(&mut self) {
        self.discard();
    }
}

fn failed_earlier() -> GgufError {
    GgufError::write("writer", "an earlier call failed or the file is finished")
}

/// Bytes of padding after `len` bytes to reach a multiple of `alignment` (a power of two).
fn pad_to(len: u64, alignment: u64) -> u64 {
    (alignment - len % alignment) % alignment
}

/// `general.alignment` if set: llama.cpp requires a u32 that is a nonzero power of two.
fn alignment(metadata: &Metadata) -> Result<u64> {
    let field = || format!("metadata `{}`", keys::GENERAL_ALIGNMENT);
    match metadata.get(keys::GENERAL_ALIGNMENT) {
        None => Ok(DEFAULT_ALIGNMENT),
        Some(Value::U32(a)) if a.is_power_of_two() => Ok((*a).into()),
        Some(Value::U32(a)) => Err(GgufError::write(
            field(),
            format!("alignment {a} is not a nonzero power of two"),
        )),
        Some(v) => Err(GgufError::write(
            field(),
            format!("must be a u32, found {}", v.type_description()),
        )),
    }
}

/// Makes the rename durable: on Unix a directory entry is persisted by fsyncing the directory.
fn sync_parent_dir(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| GgufError::io(dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
