//! A bounds-checked little-endian reader over the file bytes. Every read names its field (built
//! lazily, only when it fails) so that errors say what was being read and where.

use super::error::{GgufError, Result};
use super::value::GgufString;

/// Names the field being read; called only to build an error message.
pub(crate) type Field<'f> = &'f dyn Fn() -> String;

pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, pos: 0 }
    }

    /// The current byte offset.
    pub(crate) fn pos(&self) -> u64 {
        self.pos as u64
    }

    /// Bytes left after the current offset.
    pub(crate) fn left(&self) -> u64 {
        (self.bytes.len() - self.pos) as u64
    }

    /// The next `n` bytes. `n` comes from disk, so it is compared with what is left before use.
    pub(crate) fn take(&mut self, n: u64, field: Field) -> Result<&'a [u8]> {
        if n > self.left() {
            return Err(GgufError::Truncated {
                field: field(),
                offset: self.pos(),
                need: n,
                left: self.left(),
            });
        }
        let start = self.pos;
        // n <= left <= usize::MAX, so the cast is lossless.
        self.pos += n as usize;
        Ok(&self.bytes[start..self.pos])
    }

    fn array<const N: usize>(&mut self, field: Field) -> Result<[u8; N]> {
        let bytes = self.take(N as u64, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: Field) -> Result<u8> {
        Ok(self.array::<1>(field)?[0])
    }

    pub(crate) fn u16(&mut self, field: Field) -> Result<u16> {
        self.array(field).map(u16::from_le_bytes)
    }

    pub(crate) fn u32(&mut self, field: Field) -> Result<u32> {
        self.array(field).map(u32::from_le_bytes)
    }

    pub(crate) fn u64(&mut self, field: Field) -> Result<u64> {
        self.array(field).map(u64::from_le_bytes)
    }

    /// A length-prefixed string: u64 byte count, then the bytes.
    pub(crate) fn string(&mut self, field: Field) -> Result<GgufString> {
        let at = self.pos();
        let len = self.u64(&|| format!("{} length", field()))?;
        if len > self.left() {
            return Err(GgufError::invalid(
                format!("{} length", field()),
                at,
                format!(
                    "string length {len} runs past the end of the file ({} bytes left)",
                    self.left()
                ),
            ));
        }
        Ok(GgufString::from(self.take(len, field)?))
    }

    /// A length-prefixed string that must be UTF-8 (keys and tensor names).
    pub(crate) fn utf8(&mut self, field: Field) -> Result<String> {
        let at = self.pos();
        String::from_utf8(self.string(field)?.into_bytes())
            .map_err(|_| GgufError::invalid(field(), at, "not valid UTF-8"))
    }
}
