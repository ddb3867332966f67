//! A test-side GGUF encoder, written independently of `tandem::gguf`'s writer, that records where
//! each length, count, dimension and offset field lands so tests can corrupt exactly those fields.
#![allow(dead_code)]

use tandem::gguf::{Array, Value};
use tandem::quant::GgmlType;

/// Raw GGUF bytes under construction, with the positions of the fields written so far.
#[derive(Clone, Default)]
pub struct Raw {
    pub bytes: Vec<u8>,
    /// Positions of u64 fields: counts, string and array lengths, ne[], tensor offsets.
    pub u64_fields: Vec<usize>,
    /// Positions of u32 fields: version, value types, n_dims, tensor types.
    pub u32_fields: Vec<usize>,
}

impl Raw {
    pub fn pos(&self) -> usize {
        self.bytes.len()
    }

    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.bytes.push(v);
        self
    }

    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.u32_fields.push(self.pos());
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.u64_fields.push(self.pos());
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(b);
        self
    }

    /// A GGUF string: u64 length, bytes.
    pub fn str(&mut self, s: &[u8]) -> &mut Self {
        self.u64(s.len() as u64).raw(s)
    }

    /// Magic, version, tensor count, kv count.
    pub fn header(&mut self, version: u32, n_tensors: u64, n_kv: u64) -> &mut Self {
        self.raw(b"GGUF").u32(version).u64(n_tensors).u64(n_kv)
    }

    /// One metadata entry.
    pub fn kv(&mut self, key: &str, v: &Value) -> &mut Self {
        self.str(key.as_bytes()).u32(type_id(v)).value(v)
    }

    pub fn value(&mut self, v: &Value) -> &mut Self {
        match v {
            Value::U8(x) => self.u8(*x),
            Value::I8(x) => self.u8(*x as u8),
            Value::U16(x) => self.raw(&x.to_le_bytes()),
            Value::I16(x) => self.raw(&x.to_le_bytes()),
            Value::U32(x) => self.raw(&x.to_le_bytes()),
            Value::I32(x) => self.raw(&x.to_le_bytes()),
            Value::F32(x) => self.raw(&x.to_bits().to_le_bytes()),
            Value::Bool(x) => self.u8(*x as u8),
            Value::String(s) => self.str(s.as_bytes()),
            Value::Array(a) => self.array(a),
            Value::U64(x) => self.raw(&x.to_le_bytes()),
            Value::I64(x) => self.raw(&x.to_le_bytes()),
            Value::F64(x) => self.raw(&x.to_bits().to_le_bytes()),
        }
    }

    pub fn array(&mut self, a: &Array) -> &mut Self {
        self.u32(array_elem_id(a)).u64(a.len() as u64);
        match a {
            Array::U8(v) => {
                for x in v {
                    self.u8(*x);
                }
            }
            Array::I8(v) => {
                for x in v {
                    self.u8(*x as u8);
                }
            }
            Array::U16(v) => {
                for x in v {
                    self.raw(&x.to_le_bytes());
                }
            }
            Array::I16(v) => {
                for x in v {
                    self.raw(&x.to_le_bytes());
                }
            }
            Array::U32(v) => {
                for x in v {
                    self.raw(&x.to_le_bytes());
                }
            }
            Array::I32(v) => {
                for x in v {
                    self.raw(&x.to_le_bytes());
                }
            }
            Array::F32(v) => {
                for x in v {
                    self.raw(&x.to_bits().to_le_bytes());
                }
            }
            Array::Bool(v) => {
                for x in v {
                    self.u8(*x as u8);
                }
            }
            Array::String(v) => {
                for s in v {
                    self.str(s.as_bytes());
                }
            }
            Array::Array(v) => {
                for inner in v {
                    self.array(inner);
                }
            }
            Array::U64(v) => {
                for x in v {
                    self.raw(&x.to_le_bytes());
                }
            }
            Array::I64(v) => {
                for x in v {
                    self.raw(&x.to_le_bytes());
                }
            }
            Array::F64(v) => {
                for x in v {
                    self.raw(&x.to_bits().to_le_bytes());
                }
            }
        }
        self
    }

    /// One tensor info record.
    pub fn tensor_info(&mut self, name: &str, ne: &[u64], type_id: u32, offset: u64) -> &mut Self {
        self.str(name.as_bytes()).u32(ne.len() as u32);
        for &n in ne {
            self.u64(n);
        }
        self.u32(type_id).u64(offset)
    }

    /// Zero bytes up to a multiple of `alignment`.
    pub fn pad(&mut self, alignment: usize) -> &mut Self {
        while !self.bytes.len().is_multiple_of(alignment) {
            self.bytes.push(0);
        }
        self
    }
}

/// GGUF value type ids, from the spec (not from the crate).
pub fn type_id(v: &Value) -> u32 {
    match v {
        Value::U8(_) => 0,
        Value::I8(_) => 1,
        Value::U16(_) => 2,
        Value::I16(_) => 3,
        Value::U32(_) => 4,
        Value::I32(_) => 5,
        Value::F32(_) => 6,
        Value::Bool(_) => 7,
        Value::String(_) => 8,
        Value::Array(_) => 9,
        Value::U64(_) => 10,
        Value::I64(_) => 11,
        Value::F64(_) => 12,
    }
}

pub fn array_elem_id(a: &Array) -> u32 {
    match a {
        Array::U8(_) => 0,
        Array::I8(_) => 1,
        Array::U16(_) => 2,
        Array::I16(_) => 3,
        Array::U32(_) => 4,
        Array::I32(_) => 5,
        Array::F32(_) => 6,
        Array::Bool(_) => 7,
        Array::String(_) => 8,
        Array::Array(_) => 9,
        Array::U64(_) => 10,
        Array::I64(_) => 11,
        Array::F64(_) => 12,
    }
}

/// A whole file described in memory.
#[derive(Clone, Debug)]
pub struct FileSpec {
    pub version: u32,
    pub kvs: Vec<(String, Value)>,
    pub tensors: Vec<TensorData>,
}

#[derive(Clone, Debug)]
pub struct TensorData {
    pub name: String,
    pub ty: GgmlType,
    pub ne: Vec<u64>,
    pub data: Vec<u8>,
}

/// Byte size from the block geometry: values / values-per-block * bytes-per-block.
pub fn nbytes(ty: GgmlType, ne: &[u64]) -> u64 {
    let n: u64 = ne.iter().product();
    n / ty.block_values() as u64 * ty.block_bytes() as u64
}

impl FileSpec {
    /// `general.alignment` if the spec sets it as a u32, else 32.
    pub fn alignment(&self) -> usize {
        self.kvs
            .iter()
            .find_map(|(k, v)| match (k.as_str(), v) {
                ("general.alignment", Value::U32(a)) => Some(*a as usize),
                _ => None,
            })
            .unwrap_or(32)
    }

    /// Encodes the file, computing offsets and padding independently of the crate.
    pub fn encode(&self) -> Encoded {
        let align = self.alignment();
        let mut raw = Raw::default();
        raw.header(
            self.version,
            self.tensors.len() as u64,
            self.kvs.len() as u64,
        );
        for (k, v) in &self.kvs {
            raw.kv(k, v);
        }
        let mut offsets = Vec::new();
        let mut off = 0u64;
        for t in &self.tensors {
            offsets.push(off);
            raw.tensor_info(&t.name, &t.ne, t.ty as u32, off);
            off += t.data.len() as u64;
            off = off.div_ceil(align as u64) * align as u64;
        }
        let header_len = raw.pos();
        let data_start = header_len.div_ceil(align) * align;
        // Bytes a reader needs: the header, and every tensor's data.
        let required = self
            .tensors
            .iter()
            .zip(&offsets)
            .map(|(t, o)| data_start + (*o as usize) + t.data.len())
            .max()
            .unwrap_or(header_len);
        if !self.tensors.is_empty() {
            raw.pad(align);
            for t in &self.tensors {
                raw.raw(&t.data).pad(align);
            }
        }
        Encoded {
            raw,
            offsets,
            header_len,
            data_start,
            required,
        }
    }
}

/// An encoded [`FileSpec`].
pub struct Encoded {
    pub raw: Raw,
    /// Each tensor's offset in the data section.
    pub offsets: Vec<u64>,
    /// Bytes before the alignment padding.
    pub header_len: usize,
    /// Absolute start of the data section.
    pub data_start: usize,
    /// The shortest prefix a reader accepts: up to the end of the last tensor's data.
    pub required: usize,
}

/// Bitwise equality of values (NaN payloads included), which `PartialEq` on floats is not.
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::F32(x), Value::F32(y)) => x.to_bits() == y.to_bits(),
        (Value::F64(x), Value::F64(y)) => x.to_bits() == y.to_bits(),
        (Value::Array(x), Value::Array(y)) => same_array(x, y),
        _ => a == b,
    }
}

pub fn same_array(a: &Array, b: &Array) -> bool {
    match (a, b) {
        (Array::F32(x), Array::F32(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits())
        }
        (Array::F64(x), Array::F64(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits())
        }
        (Array::Array(x), Array::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_array(p, q))
        }
        _ => a == b,
    }
}
