//! Parsing and validation of everything before the tensor data: header, metadata, tensor infos.
//!
//! Every count, length, dimension, type id and offset read from disk is checked against the bytes
//! that are left and against fixed caps before it is used to allocate or index, so any byte string
//! gives either a header or an error, never a panic or a huge allocation.

use super::cursor::{Cursor, Field};
use super::error::{GgufError, Result};
use super::keys;
use super::metadata::Metadata;
use super::tensor::{tensor_nbytes, TensorInfo, MAX_DIMS};
use super::value::{Array, Value, ValueType};
use crate::quant::GgmlType;
use std::collections::HashMap;
use std::ops::Range;

/// The four bytes every GGUF file starts with.
pub const MAGIC: [u8; 4] = *b"GGUF";

/// The alignment of tensor data when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// The deepest nesting of arrays accepted (llama.cpp accepts none; gguf-py any). The cap keeps
/// the recursive reader's stack bounded on hostile input.
pub const MAX_ARRAY_DEPTH: usize = 8;

/// Fewest bytes a metadata entry takes: key length (8), value type (4), a one-byte value.
const MIN_KV_BYTES: u64 = 8 + 4 + 1;
/// Fewest bytes a tensor info takes: name length (8), n_dims (4), type (4), offset (8).
const MIN_TENSOR_INFO_BYTES: u64 = 8 + 4 + 4 + 8;
/// Lists of strings, arrays, entries and tensors are grown as they are read; a count from disk
/// reserves at most this many slots up front, so memory follows the bytes actually parsed.
const PREALLOC_CAP: usize = 1 << 12;

/// Everything in a GGUF file except the tensor data, validated against the file's size.
#[derive(Clone, Debug)]
pub struct GgufHeader {
    version: u32,
    metadata: Metadata,
    tensors: Vec<TensorInfo>,
    index: HashMap<String, usize>,
    alignment: u64,
    header_len: u64,
    data_offset: u64,
    file_size: u64,
}

impl GgufHeader {
    /// Parses the header of the GGUF file `bytes` (the whole file: tensor ranges are checked
    /// against its length).
    pub fn parse(bytes: &[u8]) -> Result<GgufHeader> {
        let mut c = Cursor::new(bytes);
        let magic = c.take(4, &|| "magic".into())?;
        if magic != MAGIC {
            return Err(GgufError::BadMagic {
                found: magic.escape_ascii().to_string(),
            });
        }
        let version = c.u32(&|| "version".into())?;
        match version {
            2 | 3 => {}
            // A big-endian writer stores 3 as 0x03000000.
            v if v > 0xffff && (1..=0xffff).contains(&v.swap_bytes()) => {
                return Err(GgufError::BigEndian {
                    swapped: v.swap_bytes(),
                })
            }
            v => return Err(GgufError::UnsupportedVersion { version: v }),
        }
        let tensor_count_at = c.pos();
        let tensor_count = c.u64(&|| "tensor_count".into())?;
        let kv_count_at = c.pos();
        let kv_count = c.u64(&|| "kv_count".into())?;
        check_count(&c, "kv_count", kv_count_at, kv_count, MIN_KV_BYTES)?;
        check_count(
            &c,
            "tensor_count",
            tensor_count_at,
            tensor_count,
            MIN_TENSOR_INFO_BYTES,
        )?;
        let both = tensor_count * MIN_TENSOR_INFO_BYTES + kv_count * MIN_KV_BYTES;
        if both > c.left() {
            return Err(GgufError::invalid(
                "tensor_count + kv_count",
                tensor_count_at,
                format!(
                    "{tensor_count} tensors and {kv_count} metadata entries need at least {both} bytes, {} left",
                    c.left()
                ),
            ));
        }

        let metadata = read_metadata(&mut c, kv_count)?;
        let alignment = alignment(&metadata)?;
        let (tensors, index) = read_tensor_infos(&mut c, tensor_count)?;
        let header_len = c.pos();
        let data_offset = align_up(header_len, alignment)
            .ok_or_else(|| GgufError::invalid("data section", header_len, "offset overflows"))?;
        let header = GgufHeader {
            version,
            metadata,
            tensors,
            index,
            alignment,
            header_len,
            data_offset,
            file_size: bytes.len() as u64,
        };
        header.check_tensor_ranges()?;
        Ok(header)
    }

    /// Every tensor's data must be aligned, inside the file, and not overlap another's.
    fn check_tensor_ranges(&self) -> Result<()> {
        for t in &self.tensors {
            let field = || format!("tensor `{}` offset", t.name);
            if t.offset % self.alignment != 0 {
                return Err(GgufError::invalid(
                    field(),
                    offset_field_pos(t),
                    format!(
                        "data offset {} is not a multiple of the alignment {}",
                        t.offset, self.alignment
                    ),
                ));
            }
            let end = self
                .data_offset
                .checked_add(t.offset)
                .and_then(|s| s.checked_add(t.nbytes));
            if end.is_none_or(|e| e > self.file_size) {
                return Err(GgufError::invalid(
                    field(),
                    offset_field_pos(t),
                    format!(
                        "data ({} bytes at data offset {}, data section at byte {}) runs past the end of the file ({} bytes)",
                        t.nbytes, t.offset, self.data_offset, self.file_size
                    ),
                ));
            }
        }
        // In range now, so offset + nbytes cannot overflow.
        let mut by_start: Vec<&TensorInfo> = self.tensors.iter().filter(|t| t.nbytes > 0).collect();
        by_start.sort_by_key(|t| t.offset);
        for pair in by_start.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if b.offset < a.offset + a.nbytes {
                return Err(GgufError::invalid(
                    format!("tensor `{}` offset", b.name),
                    offset_field_pos(b),
                    format!(
                        "data [{}, {}) overlaps tensor `{}` [{}, {})",
                        b.offset,
                        b.offset + b.nbytes,
                        a.name,
                        a.offset,
                        a.offset + a.nbytes
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The metadata, in file order.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The tensor infos, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The tensor named `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.index.get(name).map(|&i| &self.tensors[i])
    }

    /// The alignment of the data section and of every tensor in it.
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// The byte length of header, metadata and tensor infos (before the alignment padding).
    pub fn header_len(&self) -> u64 {
        self.header_len
    }

    /// The absolute offset of the tensor data section.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// The size of the file this header was read from.
    pub fn file_size(&self) -> u64 {
        self.file_size
    }

    /// The absolute byte range of `info`'s data in the file.
    pub fn tensor_range(&self, info: &TensorInfo) -> Range<usize> {
        // Checked at parse time to lie inside the file, whose length is a usize.
        let start = (self.data_offset + info.offset) as usize;
        start..start + info.nbytes as usize
    }
}

/// Where the `offset` field of a tensor info sits: after name, n_dims, ne[] and type.
fn offset_field_pos(t: &TensorInfo) -> u64 {
    t.info_offset + 8 + t.name.len() as u64 + 4 + 8 * t.ne.len() as u64 + 4
}

fn align_up(x: u64, alignment: u64) -> Option<u64> {
    Some(x.checked_add(alignment - 1)? / alignment * alignment)
}

/// A count of records each taking at least `min_bytes` must fit in the bytes left.
fn check_count(c: &Cursor, field: &str, at: u64, count: u64, min_bytes: u64) -> Result<()> {
    let most = c.left() / min_bytes;
    if count > most {
        return Err(GgufError::invalid(
            field,
            at,
            format!(
                "{count} records cannot fit in the {} bytes left (at most {most})",
                c.left()
            ),
        ));
    }
    Ok(())
}

fn read_metadata(c: &mut Cursor, kv_count: u64) -> Result<Metadata> {
    let mut metadata = Metadata::new();
    for i in 0..kv_count {
        let at = c.pos();
        let key = c.utf8(&|| format!("metadata entry #{i} key"))?;
        let field = || format!("metadata `{key}`");
        if metadata.contains(&key) {
            return Err(GgufError::invalid(field(), at, "duplicate key"));
        }
        let ty = read_type(c, &|| format!("{} value type", field()))?;
        let value = read_value(c, ty, &field)?;
        metadata.insert_new(key, value, Some(at));
    }
    Ok(metadata)
}

/// `general.alignment` (default 32): an integer that is a nonzero power of two.
fn alignment(metadata: &Metadata) -> Result<u64> {
    let Some(value) = metadata.get_opt::<u32>(keys::GENERAL_ALIGNMENT)? else {
        return Ok(DEFAULT_ALIGNMENT);
    };
    if !value.is_power_of_two() {
        let at = metadata
            .entry(keys::GENERAL_ALIGNMENT)
            .and_then(|e| e.offset)
            .unwrap_or(0);
        return Err(GgufError::invalid(
            format!("metadata `{}`", keys::GENERAL_ALIGNMENT),
            at,
            format!("alignment {value} is not a nonzero power of two"),
        ));
    }
    Ok(value.into())
}

fn read_type(c: &mut Cursor, field: Field) -> Result<ValueType> {
    let at = c.pos();
    let id = c.u32(field)?;
    ValueType::from_id(id)
        .ok_or_else(|| GgufError::invalid(field(), at, format!("unknown value type id {id}")))
}

fn read_value(c: &mut Cursor, ty: ValueType, field: Field) -> Result<Value> {
    Ok(match ty {
        ValueType::U8 => Value::U8(c.u8(field)?),
        ValueType::I8 => Value::I8(c.u8(field)? as i8),
        ValueType::U16 => Value::U16(c.u16(field)?),
        ValueType::I16 => Value::I16(c.u16(field)? as i16),
        ValueType::U32 => Value::U32(c.u32(field)?),
        ValueType::I32 => Value::I32(c.u32(field)? as i32),
        ValueType::U64 => Value::U64(c.u64(field)?),
        ValueType::I64 => Value::I64(c.u64(field)? as i64),
        ValueType::F32 => Value::F32(f32::from_bits(c.u32(field)?)),
        ValueType::F64 => Value::F64(f64::from_bits(c.u64(field)?)),
        ValueType::Bool => {
            let at = c.pos();
            Value::Bool(to_bool(c.u8(field)?, field, at)?)
        }
        ValueType::String => Value::String(c.string(field)?),
        ValueType::Array => Value::Array(read_array(c, field, 0)?),
    })
}

/// A bool is one byte, 0 or 1; anything else is corruption.
fn to_bool(byte: u8, field: Field, at: u64) -> Result<bool> {
    match byte {
        0 => Ok(false),
        1 => Ok(true),
        b => Err(GgufError::invalid(
            field(),
            at,
            format!("bool byte is {b:#04x}, not 0 or 1"),
        )),
    }
}

/// An array: element type (u32), length (u64), elements. Arrays of arrays recurse, up to
/// [`MAX_ARRAY_DEPTH`] levels.
fn read_array(c: &mut Cursor, field: Field, depth: usize) -> Result<Array> {
    if depth >= MAX_ARRAY_DEPTH {
        return Err(GgufError::invalid(
            field(),
            c.pos(),
            format!("arrays nested more than {MAX_ARRAY_DEPTH} deep"),
        ));
    }
    let elem = read_type(c, &|| format!("{} element type", field()))?;
    let len_at = c.pos();
    let len = c.u64(&|| format!("{} length", field()))?;
    // Every element takes at least `min_size` bytes, so this bounds `len` (and every
    // allocation below) by the bytes left in the file.
    if len > c.left() / elem.min_size() as u64 {
        return Err(GgufError::invalid(
            format!("{} length", field()),
            len_at,
            format!(
                "array of {len} {elem} elements cannot fit in the {} bytes left",
                c.left()
            ),
        ));
    }
    let n = len as usize;
    let data_at = c.pos();
    Ok(match elem {
        ValueType::U8 => Array::U8(c.take(len, field)?.to_vec()),
        ValueType::I8 => Array::I8(c.take(len, field)?.iter().map(|&b| b as i8).collect()),
        ValueType::U16 => Array::U16(fixed(c, len, field, u16::from_le_bytes)?),
        ValueType::I16 => Array::I16(fixed(c, len, field, i16::from_le_bytes)?),
        ValueType::U32 => Array::U32(fixed(c, len, field, u32::from_le_bytes)?),
        ValueType::I32 => Array::I32(fixed(c, len, field, i32::from_le_bytes)?),
        ValueType::U64 => Array::U64(fixed(c, len, field, u64::from_le_bytes)?),
        ValueType::I64 => Array::I64(fixed(c, len, field, i64::from_le_bytes)?),
        ValueType::F32 => Array::F32(fixed(c, len, field, f32::from_le_bytes)?),
        ValueType::F64 => Array::F64(fixed(c, len, field, f64::from_le_bytes)?),
        ValueType::Bool => Array::Bool(
            c.take(len, field)?
                .iter()
                .enumerate()
                .map(|(i, &b)| to_bool(b, &|| format!("{}[{i}]", field()), data_at + i as u64))
                .collect::<Result<_>>()?,
        ),
        ValueType::String => {
            let mut out = Vec::with_capacity(n.min(PREALLOC_CAP));
            for i in 0..n {
                out.push(c.string(&|| format!("{}[{i}]", field()))?);
            }
            Array::String(out)
        }
        ValueType::Array => {
            let mut out = Vec::with_capacity(n.min(PREALLOC_CAP));
            for i in 0..n {
                out.push(read_array(c, &|| format!("{}[{i}]", field()), depth + 1)?);
            }
            Array::Array(out)
        }
    })
}

/// `len` fixed-size little-endian values. The caller has checked that `len * N` bytes are left,
/// so the vector's size is bounded by the file.
fn fixed<const N: usize, T>(
    c: &mut Cursor,
    len: u64,
    field: Field,
    from_le: fn([u8; N]) -> T,
) -> Result<Vec<T>> {
    let bytes = c.take(len * N as u64, field)?;
    Ok(bytes
        .chunks_exact(N)
        .map(|chunk| {
            let mut a = [0u8; N];
            a.copy_from_slice(chunk);
            from_le(a)
        })
        .collect())
}

type TensorIndex = HashMap<String, usize>;

fn read_tensor_infos(c: &mut Cursor, count: u64) -> Result<(Vec<TensorInfo>, TensorIndex)> {
    let mut tensors = Vec::with_capacity((count as usize).min(PREALLOC_CAP));
    let mut index = HashMap::with_capacity((count as usize).min(PREALLOC_CAP));
    for i in 0..count {
        let info_offset = c.pos();
        let name = c.utf8(&|| format!("tensor #{i} name"))?;
        let field = |what: &str| format!("tensor `{name}` {what}");
        if index.contains_key(&name) {
            return Err(GgufError::invalid(
                field("name"),
                info_offset,
                "duplicate tensor name",
            ));
        }
        let dims_at = c.pos();
        let n_dims = c.u32(&|| field("n_dims"))?;
        if n_dims as usize > MAX_DIMS {
            return Err(GgufError::invalid(
                field("n_dims"),
                dims_at,
                format!("n_dims is {n_dims}, at most {MAX_DIMS}"),
            ));
        }
        let ne_at = c.pos();
        let ne = (0..n_dims)
            .map(|j| c.u64(&|| field(&format!("ne[{j}]"))))
            .collect::<Result<Vec<u64>>>()?;
        let type_at = c.pos();
        let type_id = c.u32(&|| field("type"))?;
        let ty = GgmlType::from_id(type_id).ok_or_else(|| {
            GgufError::invalid(
                field("type"),
                type_at,
                format!("unknown ggml type id {type_id}"),
            )
        })?;
        let offset = c.u64(&|| field("offset"))?;
        let nbytes = tensor_nbytes(ty, &ne)
            .map_err(|reason| GgufError::invalid(field("shape"), ne_at, reason))?;
        index.insert(name.clone(), tensors.len());
        tensors.push(TensorInfo {
            name,
            ty,
            ne,
            offset,
            nbytes,
            info_offset,
        });
    }
    Ok((tensors, index))
}
