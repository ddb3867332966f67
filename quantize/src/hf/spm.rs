//! A minimal reader of SentencePiece's `tokenizer.model` (a `ModelProto` protobuf): the pieces
//! with their scores and types. Everything else in the file (trainer and normalizer specs) is
//! skipped.

use anyhow::{bail, ensure, Result};

/// One vocabulary entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Piece {
    pub piece: Vec<u8>,
    pub score: f32,
    /// SentencePiece's `Type`: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
    pub kind: i32,
}

/// Protobuf wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.buf.get(self.pos) else {
                bail!("truncated varint at byte {}", self.pos);
            };
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        bail!("varint longer than 10 bytes at byte {}", self.pos)
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8]> {
        let end = usize::try_from(n)
            .ok()
            .and_then(|n| self.pos.checked_add(n))
            .filter(|&e| e <= self.buf.len());
        let Some(end) = end else {
            bail!("field of {n} bytes at byte {} runs past the end", self.pos);
        };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// The next (field number, wire type).
    fn key(&mut self) -> Result<(u64, u8)> {
        let k = self.varint()?;
        Ok((k >> 3, (k & 7) as u8))
    }

    fn skip(&mut self, wire: u8) -> Result<()> {
        match wire {
            VARINT => {
                self.varint()?;
            }
            FIXED64 => {
                self.take(8)?;
            }
            LEN => {
                let n = self.varint()?;
                self.take(n)?;
            }
            FIXED32 => {
                self.take(4)?;
            }
            w => bail!("unsupported protobuf wire type {w} at byte {}", self.pos),
        }
        Ok(())
    }
}

/// The pieces of a `ModelProto` (field 1, repeated `SentencePiece { piece = 1; score = 2;
/// type = 3 }`), in id order.
pub fn parse_model(buf: &[u8]) -> Result<Vec<Piece>> {
    let mut r = Reader { buf, pos: 0 };
    let mut pieces = Vec::new();
    while !r.done() {
        let (field, wire) = r.key()?;
        if field == 1 && wire == LEN {
            let n = r.varint()?;
            let start = r.pos;
            let msg = r.take(n)?;
            pieces.push(
                parse_piece(msg).map_err(|e| {
                    anyhow::anyhow!("piece {} (at byte {start}): {e}", pieces.len())
                })?,
            );
        } else {
            r.skip(wire)?;
        }
    }
    ensure!(!pieces.is_empty(), "no pieces: not a SentencePiece model");
    Ok(pieces)
}

fn parse_piece(buf: &[u8]) -> Result<Piece> {
    let mut r = Reader { buf, pos: 0 };
    let mut p = Piece {
        piece: Vec::new(),
        score: 0.0,
        kind: 1,
    };
    while !r.done() {
        match r.key()? {
            (1, LEN) => {
                let n = r.varint()?;
                p.piece = r.take(n)?.to_vec();
            }
            (2, FIXED32) => {
                let b = r.take(4)?;
                p.score = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
            (3, VARINT) => p.kind = r.varint()? as i32,
            (_, wire) => r.skip(wire)?,
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hand_encoded_pieces_and_skips_other_fields() {
        // field 1 (piece): {1: "ab", 2: 1.5f32, 3: 3}; field 2 (trainer spec) skipped.
        let mut piece = vec![0x0a, 2, b'a', b'b', 0x15];
        piece.extend_from_slice(&1.5f32.to_le_bytes());
        piece.extend_from_slice(&[0x18, 3]);
        let mut buf = vec![0x0a, piece.len() as u8];
        buf.extend_from_slice(&piece);
        buf.extend_from_slice(&[0x12, 1, 0x08]);
        buf.extend_from_slice(&[0x0a, 3, 0x0a, 1, b'c']);
        let p = parse_model(&buf).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            p[0],
            Piece {
                piece: b"ab".to_vec(),
                score: 1.5,
                kind: 3
            }
        );
        assert_eq!(
            p[1],
            Piece {
                piece: b"c".to_vec(),
                score: 0.0,
                kind: 1
            }
        );
        // Truncations are errors, never panics.
        for n in 0..buf.len() {
            let _ = parse_model(&buf[..n]);
        }
        assert!(parse_model(&[0x0a, 0xff]).is_err());
    }
}
