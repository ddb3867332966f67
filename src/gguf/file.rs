//! A GGUF file opened for reading: the mmap plus its parsed header, with zero-copy tensor views.

use super::error::{GgufError, Result};
use super::metadata::Metadata;
use super::reader::GgufHeader;
use super::tensor::TensorInfo;
use crate::quant::Block;
use memmap2::Mmap;
use std::fs::File;
use std::path::Path;

/// A memory-mapped GGUF file. Tensor data is never copied: views borrow from the map.
pub struct GgufFile {
    map: Option<Mmap>,
    header: GgufHeader,
}

impl GgufFile {
    /// Maps `path` and parses its header.
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| GgufError::io(path, e))?;
        let len = file.metadata().map_err(|e| GgufError::io(path, e))?.len();
        // An empty file cannot be mapped on every platform; it is simply too short to parse.
        let map = if len == 0 {
            None
        } else {
            // SAFETY: the map is read-only. Like every mmap-based reader, it assumes no other
            // process truncates or rewrites the file while it is open.
            let map = unsafe { Mmap::map(&file) }.map_err(|e| GgufError::io(path, e))?;
            // Decoding streams every active weight once per token, and through 4 KiB pages each
            // 4 KiB costs a TLB miss. With this advice, pages the map faults in from disk come in
            // 2 MiB folios mapped whole (THP `madvise` mode); a file the page cache already holds
            // in small folios stays in 4 KiB pages. Failure (THP off) changes nothing else.
            #[cfg(target_os = "linux")]
            let _ = map.advise(memmap2::Advice::HugePage);
            Some(map)
        };
        let header = GgufHeader::parse(map.as_deref().unwrap_or(&[]))?;
        Ok(GgufFile { map, header })
    }

    /// The whole file.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    /// The parsed header.
    pub fn header(&self) -> &GgufHeader {
        &self.header
    }

    /// The GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.header.version()
    }

    /// The alignment of the data section and of every tensor in it.
    pub fn alignment(&self) -> u64 {
        self.header.alignment()
    }

    /// The absolute offset of the tensor data section.
    pub fn data_offset(&self) -> u64 {
        self.header.data_offset()
    }

    /// The file size in bytes.
    pub fn file_size(&self) -> u64 {
        self.header.file_size()
    }

    /// The metadata, in file order.
    pub fn metadata(&self) -> &Metadata {
        self.header.metadata()
    }

    /// The tensor infos, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        self.header.tensors()
    }

    /// The tensor named `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.header.tensor(name)
    }

    /// The raw bytes of a tensor of this file.
    ///
    /// # Panics
    /// If `info` comes from another file and its range lies outside this one.
    pub fn tensor_bytes(&self, info: &TensorInfo) -> &[u8] {
        &self.bytes()[self.header.tensor_range(info)]
    }

    /// The tensor's data as blocks of `B`. Fails if `B` is not the tensor's type, or the bytes
    /// are not a whole number of `B`s, or are not aligned for `B` (possible only when the file's
    /// alignment is smaller than `B`'s).
    pub fn tensor_data<B: Block>(&self, info: &TensorInfo) -> Result<&[B]> {
        let view_err = |reason: String| GgufError::TensorView {
            name: info.name().to_string(),
            reason,
        };
        if B::TYPE != info.ty() {
            return Err(view_err(format!(
                "is {}, not {} as requested",
                info.ty(),
                B::TYPE
            )));
        }
        if std::mem::size_of::<B>() != B::TYPE.block_bytes() {
            return Err(view_err(format!(
                "block type is {} bytes but a {} block is {}",
                std::mem::size_of::<B>(),
                B::TYPE,
                B::TYPE.block_bytes()
            )));
        }
        bytemuck::try_cast_slice(self.tensor_bytes(info)).map_err(|e| {
            view_err(format!(
                "cannot view {} bytes at data offset {} as {}: {e}",
                info.nbytes(),
                info.offset(),
                B::TYPE
            ))
        })
    }
}
