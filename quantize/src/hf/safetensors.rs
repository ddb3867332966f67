//! Safetensors checkpoints, single-file or sharded with `model.safetensors.index.json`, read
//! through memory maps. Headers are parsed and validated by the `safetensors` crate; when it
//! rejects a file, the header is examined again to name the offending tensor.

use crate::source::{Source, SourceTensor};
use anyhow::{anyhow, bail, ensure, Context, Result};
use memmap2::Mmap;
use rayon::prelude::*;
use safetensors::tensor::{Dtype, Metadata, SafeTensorError};
use safetensors::SafeTensors;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

/// The element types a weight may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Elem {
    F32,
    F16,
    Bf16,
}

impl Elem {
    fn size(self) -> usize {
        match self {
            Elem::F32 => 4,
            Elem::F16 | Elem::Bf16 => 2,
        }
    }
}

struct Shard {
    path: PathBuf,
    map: Mmap,
}

/// Where a tensor's bytes are.
#[derive(Clone, Copy, Debug)]
struct Loc {
    shard: usize,
    /// Absolute byte offset in the shard file.
    start: usize,
    elem: Elem,
}

/// A set of safetensors files read as one checkpoint.
pub struct SafetensorsSource {
    shards: Vec<Shard>,
    tensors: Vec<SourceTensor>,
    locs: Vec<Loc>,
    input_bytes: u64,
}

impl SafetensorsSource {
    /// Opens `files` (in this order; each file's tensors are listed sorted by name, as the
    /// Python `safe_open(...).keys()` that llama.cpp's converter iterates). With `index`, checks
    /// that the index and the files agree tensor by tensor.
    pub fn open(files: &[PathBuf], index: Option<&Path>) -> Result<SafetensorsSource> {
        ensure!(!files.is_empty(), "no safetensors files");
        let mut shards = Vec::new();
        let mut tensors = Vec::new();
        let mut locs = Vec::new();
        let mut owner: HashMap<String, usize> = HashMap::new();
        let mut input_bytes = 0;
        for (si, path) in files.iter().enumerate() {
            let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
            input_bytes += file.metadata().map(|m| m.len()).unwrap_or(0);
            // SAFETY: read-only map. Like every mmap reader, it assumes nobody truncates the
            // checkpoint while it is being converted.
            let map = unsafe { Mmap::map(&file) }
                .with_context(|| format!("mapping {}", path.display()))?;
            let (header_len, meta) = read_header(&map, path)?;
            let data_start = 8 + header_len;
            let mut names: Vec<(String, &safetensors::tensor::TensorInfo)> =
                meta.tensors().into_iter().collect();
            names.sort_by(|a, b| a.0.cmp(&b.0));
            for (name, info) in names {
                let elem = match info.dtype {
                    Dtype::F32 => Elem::F32,
                    Dtype::F16 => Elem::F16,
                    Dtype::BF16 => Elem::Bf16,
                    other => bail!(
                        "{}: tensor `{name}` has dtype {other:?}; weights must be F32, F16 or BF16",
                        path.display()
                    ),
                };
                if let Some(&prev) = owner.get(&name) {
                    bail!(
                        "tensor `{name}` is in both {} and {}",
                        files[prev].display(),
                        path.display()
                    );
                }
                owner.insert(name.clone(), si);
                let (s, e) = info.data_offsets;
                let shape: Vec<u64> = info.shape.iter().map(|&d| d as u64).collect();
                tensors.push(SourceTensor {
                    name,
                    shape,
                    dtype: format!("{:?}", info.dtype),
                    nbytes: (e - s) as u64,
                });
                locs.push(Loc {
                    shard: si,
                    start: data_start + s,
                    elem,
                });
            }
            shards.push(Shard {
                path: path.clone(),
                map,
            });
        }
        if let Some(index) = index {
            check_index(index, files, &owner)?;
        }
        Ok(SafetensorsSource {
            shards,
            tensors,
            locs,
            input_bytes,
        })
    }
}

/// The header of one file, validated by the `safetensors` crate (offsets contiguous, sizes
/// matching shapes, data ending exactly at the end of the file).
fn read_header(map: &[u8], path: &Path) -> Result<(usize, Metadata)> {
    let file = path.display();
    match SafeTensors::read_metadata(map) {
        Ok(ok) => Ok(ok),
        Err(e) => {
            let detail = diagnose(map).unwrap_or_default();
            let what = match e {
                SafeTensorError::HeaderTooSmall => "shorter than the 8-byte header length".into(),
                SafeTensorError::InvalidHeaderLength => format!(
                    "header length {} runs past the end of the file ({} bytes)",
                    header_len_field(map),
                    map.len()
                ),
                SafeTensorError::HeaderTooLarge => format!(
                    "header length {} exceeds the 100 MB limit",
                    header_len_field(map)
                ),
                SafeTensorError::MetadataIncompleteBuffer => format!(
                    "the tensor data does not end at the end of the file ({} bytes): truncated or padded",
                    map.len()
                ),
                SafeTensorError::InvalidOffset(t) => {
                    format!("tensor `{t}` has data offsets that overlap or leave a gap")
                }
                other => format!("invalid header ({other:?})"),
            };
            Err(anyhow!("{file}: {what}{detail}"))
        }
    }
}

fn header_len_field(map: &[u8]) -> u64 {
    map.get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .unwrap_or(0)
}

/// Looks through a rejected header for the tensor at fault: an unknown dtype, or a byte range
/// that does not match its shape. Returns `"; tensor `x`: ..."` or `None`.
fn diagnose(map: &[u8]) -> Option<String> {
    let n = usize::try_from(header_len_field(map)).ok()?;
    let json = map.get(8..8usize.checked_add(n)?)?;
    let header: serde_json::Value = serde_json::from_slice(json).ok()?;
    const KNOWN: [&str; 13] = [
        "BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64",
    ];
    for (name, t) in header.as_object()? {
        if name == "__metadata__" {
            continue;
        }
        let dtype = t.get("dtype").and_then(|d| d.as_str()).unwrap_or("");
        if !KNOWN.contains(&dtype) {
            return Some(format!("; tensor `{name}` has unknown dtype `{dtype}`"));
        }
        let size: u64 = match dtype {
            "BOOL" | "U8" | "I8" => 1,
            "I16" | "U16" | "F16" | "BF16" => 2,
            "I32" | "U32" | "F32" => 4,
            _ => 8,
        };
        let shape: Option<Vec<u64>> = t
            .get("shape")?
            .as_array()?
            .iter()
            .map(|d| d.as_u64())
            .collect();
        let offsets: Option<Vec<u64>> = t
            .get("data_offsets")?
            .as_array()?
            .iter()
            .map(|d| d.as_u64())
            .collect();
        let (shape, offsets) = (shape?, offsets?);
        let want = shape.iter().try_fold(size, |acc, &d| acc.checked_mul(d));
        if offsets.len() != 2 || want != offsets[1].checked_sub(offsets[0]) {
            return Some(format!(
                "; tensor `{name}`: {dtype} {shape:?} does not fit data_offsets {offsets:?}"
            ));
        }
    }
    None
}

/// Checks `model.safetensors.index.json` against the files: every file it names exists among
/// `files`, and every tensor is where it says.
fn check_index(index: &Path, files: &[PathBuf], owner: &HashMap<String, usize>) -> Result<()> {
    let text = std::fs::read(index).with_context(|| format!("reading {}", index.display()))?;
    let json: serde_json::Value = serde_json::from_slice(&text)
        .with_context(|| format!("{}: not valid JSON", index.display()))?;
    let map = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| anyhow!("{}: no `weight_map` object", index.display()))?;
    let by_name: BTreeMap<String, usize> = files
        .iter()
        .enumerate()
        .filter_map(|(i, f)| Some((f.file_name()?.to_string_lossy().into_owned(), i)))
        .collect();
    for (tensor, file) in map {
        let file = file
            .as_str()
            .ok_or_else(|| anyhow!("{}: `{tensor}` maps to a non-string", index.display()))?;
        let Some(&fi) = by_name.get(file) else {
            bail!(
                "{}: tensor `{tensor}` is in {file}, which is missing",
                index.display()
            );
        };
        match owner.get(tensor) {
            Some(&actual) if actual == fi => {}
            Some(&actual) => bail!(
                "{}: tensor `{tensor}` is listed in {file} but found in {}",
                index.display(),
                files[actual].display()
            ),
            None => bail!(
                "{}: tensor `{tensor}` is listed in {file} but is not in it",
                index.display()
            ),
        }
    }
    if let Some(extra) = owner.keys().find(|t| !map.contains_key(t.as_str())) {
        bail!(
            "{}: tensor `{extra}` (in {}) is not listed in the index",
            index.display(),
            files[owner[extra]].display()
        );
    }
    Ok(())
}

impl Source for SafetensorsSource {
    fn tensors(&self) -> &[SourceTensor] {
        &self.tensors
    }

    fn read_rows(&self, index: usize, row0: u64, out: &mut [f32]) -> Result<()> {
        let t = &self.tensors[index];
        let loc = self.locs[index];
        let shard = &self.shards[loc.shard];
        let size = loc.elem.size();
        let first = usize::try_from(row0 * t.row_len())?;
        let start = loc.start + first * size;
        let end = start + out.len() * size;
        ensure!(
            (first + out.len()) as u64 * size as u64 <= t.nbytes,
            "{}: rows past the end of `{}`",
            shard.path.display(),
            t.name
        );
        let bytes = &shard.map[start..end];
        const TASK: usize = 1 << 14;
        out.par_chunks_mut(TASK)
            .zip(bytes.par_chunks(TASK * size))
            .for_each(|(y, b)| widen(loc.elem, b, y));
        Ok(())
    }

    fn input_bytes(&self) -> u64 {
        self.input_bytes
    }

    #[cfg(unix)]
    fn release(&self, index: usize, row0: u64, rows: u64) {
        let t = &self.tensors[index];
        let loc = self.locs[index];
        let map = &self.shards[loc.shard].map;
        let row_bytes = t.nbytes / t.n_rows().max(1);
        let first = (row0 * row_bytes).min(t.nbytes) as usize;
        let end = ((row0 + rows) * row_bytes).min(t.nbytes) as usize;
        // SAFETY: the map is a read-only private file mapping and no slice of this range is
        // alive (rows were copied out as f32). MADV_DONTNEED only drops the resident pages; a
        // later read faults them in again from the file. The advice is best effort: a failure
        // costs memory, not correctness.
        let _ = unsafe {
            map.unchecked_advise_range(
                memmap2::UncheckedAdvice::DontNeed,
                loc.start + first,
                end - first,
            )
        };
    }
}

/// Little-endian elements to f32 (exact for all three types).
fn widen(elem: Elem, b: &[u8], y: &mut [f32]) {
    match elem {
        Elem::F32 => {
            for (v, c) in y.iter_mut().zip(b.chunks_exact(4)) {
                *v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
        Elem::F16 => {
            for (v, c) in y.iter_mut().zip(b.chunks_exact(2)) {
                *v = half::f16::from_le_bytes([c[0], c[1]]).to_f32();
            }
        }
        Elem::Bf16 => {
            for (v, c) in y.iter_mut().zip(b.chunks_exact(2)) {
                *v = f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16);
            }
        }
    }
}
