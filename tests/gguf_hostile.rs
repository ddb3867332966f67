//! Hand-built bad files: each must give an error (never a panic) whose message names the field
//! and the byte offset where it was read. Offsets are computed by the test-side encoder.

mod gguf_support;

use gguf_support::Raw;
use tandem::gguf::{Array, GgufFile, GgufHeader, Value};

const F32: u32 = 0;
const Q4_0: u32 = 2;

/// Parses `bytes`, expects an error, and checks that its message contains every needle.
fn expect_err(bytes: &[u8], needles: &[&str]) -> String {
    let err = match GgufHeader::parse(bytes) {
        Ok(_) => panic!("parsed a bad file; expected an error containing {needles:?}"),
        Err(e) => e.to_string(),
    };
    for n in needles {
        assert!(err.contains(n), "error {err:?} does not contain {n:?}");
    }
    err
}

/// A valid file: two metadata entries and one F32 tensor `w` of shape [8, 2] (64 bytes).
fn valid() -> Raw {
    let mut r = Raw::default();
    r.header(3, 1, 2);
    r.kv("general.name", &Value::from("t"));
    r.kv("general.alignment", &Value::U32(32));
    r.tensor_info("w", &[8, 2], F32, 0).pad(32).raw(&[0u8; 64]);
    r
}

#[test]
fn the_valid_base_file_parses() {
    let h = GgufHeader::parse(&valid().bytes).unwrap();
    assert_eq!(h.tensors()[0].nbytes(), 64);
    assert_eq!(h.data_offset() % 32, 0);
}

#[test]
fn truncated_header() {
    let mut r = Raw::default();
    r.raw(b"GGUF").u32(3).raw(&[0; 4]);
    expect_err(
        &r.bytes,
        &[
            "truncated",
            "tensor_count",
            "at byte 8",
            "needs 8 bytes but only 4",
        ],
    );
    expect_err(b"GG", &["truncated", "magic", "at byte 0"]);
    expect_err(b"", &["magic"]);
    // Every prefix of a valid file is an error up to the end of the tensor data.
    let full = valid().bytes;
    for len in 0..full.len() {
        assert!(
            GgufHeader::parse(&full[..len]).is_err(),
            "prefix of {len} bytes parsed"
        );
    }
}

#[test]
fn bad_magic_and_versions() {
    expect_err(
        b"GGML\x03\0\0\0",
        &["not a GGUF file", "\"GGML\"", "byte 0"],
    );
    let mut r = Raw::default();
    r.header(1, 0, 0);
    expect_err(&r.bytes, &["unsupported GGUF version 1", "at byte 4"]);
    let mut r = Raw::default();
    r.header(4, 0, 0);
    expect_err(&r.bytes, &["unsupported GGUF version 4"]);
    // A big-endian v3 file: the version's bytes are 00 00 00 03.
    let mut r = Raw::default();
    r.raw(b"GGUF")
        .raw(&3u32.to_be_bytes())
        .raw(&0u64.to_be_bytes())
        .raw(&0u64.to_be_bytes());
    expect_err(
        &r.bytes,
        &["big-endian GGUF is not supported", "version", "byte 4"],
    );
}

#[test]
fn string_length_past_eof() {
    let mut r = Raw::default();
    r.header(3, 0, 1).str(b"general.name").u32(8);
    let at = r.pos();
    r.u64(1 << 40).raw(b"abc");
    expect_err(
        &r.bytes,
        &[
            "metadata `general.name` length",
            &format!("at byte {at}"),
            "string length 1099511627776 runs past",
        ],
    );
    // A key whose length runs past the end.
    let mut r = Raw::default();
    r.header(3, 0, 1);
    r.u64(u64::MAX).raw(&[0; 16]);
    expect_err(&r.bytes, &["metadata entry #0 key length", "at byte 24"]);
}

#[test]
fn absurd_array_length() {
    let mut r = Raw::default();
    r.header(3, 0, 1)
        .str(b"tokenizer.ggml.scores")
        .u32(9)
        .u32(6);
    let at = r.pos();
    r.u64(u64::MAX / 2).raw(&[0; 16]);
    expect_err(
        &r.bytes,
        &[
            "metadata `tokenizer.ggml.scores` length",
            &format!("at byte {at}"),
            "cannot fit",
        ],
    );
    // Nested: the inner array's length is absurd; the field names the element.
    let mut r = Raw::default();
    r.header(3, 0, 1).str(b"nested").u32(9).u32(9).u64(2);
    r.u32(0).u64(1).u8(7);
    r.u32(10);
    let at = r.pos();
    r.u64(1 << 61);
    expect_err(
        &r.bytes,
        &["metadata `nested`[1] length", &format!("at byte {at}")],
    );
}

#[test]
fn arrays_nested_too_deep() {
    let mut r = Raw::default();
    r.header(3, 0, 1).str(b"deep").u32(9);
    for _ in 0..20 {
        r.u32(9).u64(1);
    }
    r.u32(0).u64(0);
    expect_err(
        &r.bytes,
        &[
            "metadata `deep`[0][0][0][0][0][0][0][0]",
            "nested more than 8",
        ],
    );
    // 8 levels are accepted.
    let inner = (0..7).fold(Array::U8(vec![1]), |a, _| Array::Array(vec![a]));
    let mut r = Raw::default();
    r.header(3, 0, 1).kv("ok", &Value::Array(inner.clone()));
    let h = GgufHeader::parse(&r.bytes).unwrap();
    assert_eq!(h.metadata().get("ok"), Some(&Value::Array(inner)));
}

#[test]
fn n_dims_9() {
    let mut r = Raw::default();
    r.header(3, 1, 0).str(b"blk.0.attn_q.weight");
    let at = r.pos();
    r.u32(9);
    r.raw(&[0; 128]);
    expect_err(
        &r.bytes,
        &[
            "tensor `blk.0.attn_q.weight` n_dims",
            &format!("at byte {at}"),
            "n_dims is 9",
        ],
    );
}

fn one_tensor(ne: &[u64], type_id: u32, offset: u64, data: usize) -> (Raw, usize, usize) {
    let mut r = Raw::default();
    r.header(3, 1, 0).str(b"w").u32(ne.len() as u32);
    let ne_at = r.pos();
    for &n in ne {
        r.u64(n);
    }
    let type_at = r.pos();
    r.u32(type_id).u64(offset).pad(32).raw(&vec![0; data]);
    (r, ne_at, type_at)
}

#[test]
fn tensor_offset_past_eof() {
    let (r, _, type_at) = one_tensor(&[8], F32, 1 << 20, 32);
    let at = type_at + 4;
    expect_err(
        &r.bytes,
        &[
            "tensor `w` offset",
            &format!("at byte {at}"),
            "runs past the end of the file",
        ],
    );
    // offset + nbytes overflowing u64 is the same error, not a wrap-around.
    let (r, _, _) = one_tensor(&[8], F32, u64::MAX - 31, 32);
    expect_err(&r.bytes, &["tensor `w` offset", "runs past the end"]);
    // Data that starts inside the file but ends past it.
    let (r, _, _) = one_tensor(&[16], F32, 0, 32);
    expect_err(
        &r.bytes,
        &["tensor `w` offset", "64 bytes at data offset 0"],
    );
}

#[test]
fn misaligned_offset() {
    let (r, _, type_at) = one_tensor(&[8], F32, 4, 64);
    expect_err(
        &r.bytes,
        &[
            "tensor `w` offset",
            &format!("at byte {}", type_at + 4),
            "not a multiple of the alignment 32",
        ],
    );
}

#[test]
fn unknown_type_id() {
    for id in [4, 5, 31, 99, u32::MAX] {
        let (r, _, type_at) = one_tensor(&[8], id, 0, 64);
        expect_err(
            &r.bytes,
            &[
                "tensor `w` type",
                &format!("at byte {type_at}"),
                &format!("unknown ggml type id {id}"),
            ],
        );
    }
}

#[test]
fn bad_shapes() {
    let (r, ne_at, _) = one_tensor(&[16], Q4_0, 0, 64);
    expect_err(
        &r.bytes,
        &[
            "tensor `w` shape",
            &format!("at byte {ne_at}"),
            "not a multiple of the Q4_0 block size 32",
        ],
    );
    let (r, _, _) = one_tensor(&[1 << 40, 1 << 40], F32, 0, 64);
    expect_err(&r.bytes, &["tensor `w` shape", "overflows"]);
    let (r, _, _) = one_tensor(&[u64::MAX], F32, 0, 64);
    expect_err(&r.bytes, &["tensor `w` shape", "exceeds i64::MAX"]);
}

#[test]
fn unknown_value_type() {
    let mut r = Raw::default();
    r.header(3, 0, 1).str(b"k");
    let at = r.pos();
    r.u32(13).u64(0);
    expect_err(
        &r.bytes,
        &[
            "metadata `k` value type",
            &format!("at byte {at}"),
            "unknown value type id 13",
        ],
    );
}

#[test]
fn bad_bool_byte() {
    let mut r = Raw::default();
    r.header(3, 0, 1).str(b"flag").u32(7);
    let at = r.pos();
    r.u8(2);
    expect_err(
        &r.bytes,
        &["metadata `flag`", &format!("at byte {at}"), "0x02"],
    );
}

#[test]
fn duplicates_and_overlaps() {
    let mut r = Raw::default();
    r.header(3, 0, 2).kv("a", &Value::U8(1));
    let at = r.pos();
    r.kv("a", &Value::U8(2));
    expect_err(
        &r.bytes,
        &["metadata `a`", &format!("at byte {at}"), "duplicate key"],
    );

    let mut r = Raw::default();
    r.header(3, 2, 0).tensor_info("w", &[8], F32, 0);
    let at = r.pos();
    r.tensor_info("w", &[8], F32, 32).pad(32).raw(&[0; 64]);
    expect_err(
        &r.bytes,
        &[
            "tensor `w` name",
            &format!("at byte {at}"),
            "duplicate tensor name",
        ],
    );

    // `b` starts inside `a`'s data.
    let mut r = Raw::default();
    r.header(3, 2, 0)
        .tensor_info("a", &[16], F32, 0)
        .tensor_info("b", &[8], F32, 32);
    r.pad(32).raw(&[0; 128]);
    expect_err(
        &r.bytes,
        &["tensor `b` offset", "overlaps tensor `a` [0, 64)"],
    );
}

#[test]
fn bad_alignment() {
    for (value, needle) in [
        (Value::U32(3), "alignment 3 is not a nonzero power of two"),
        (Value::U32(0), "alignment 0 is not a nonzero power of two"),
        (Value::from("32"), "expected u32, found string"),
        (Value::I64(-32), "expected u32, found i64 -32"),
    ] {
        let mut r = Raw::default();
        r.header(3, 0, 1).kv("general.alignment", &value);
        expect_err(&r.bytes, &["`general.alignment`", "at byte 24", needle]);
    }
    // Any integer type that fits is accepted (gguf-py writes what it is given).
    let mut r = Raw::default();
    r.header(3, 1, 1)
        .kv("general.alignment", &Value::U64(64))
        .tensor_info("w", &[8], F32, 0);
    r.pad(64).raw(&[0; 64]);
    assert_eq!(GgufHeader::parse(&r.bytes).unwrap().data_offset() % 64, 0);
}

#[test]
fn counts_beyond_the_file() {
    let mut r = Raw::default();
    r.header(3, 0, u64::MAX);
    expect_err(&r.bytes, &["kv_count", "at byte 16", "cannot fit"]);
    let mut r = Raw::default();
    r.header(3, 1 << 50, 0).raw(&[0; 100]);
    expect_err(&r.bytes, &["tensor_count", "at byte 8", "cannot fit"]);
    // Each fits alone, both together do not.
    let mut r = Raw::default();
    r.header(3, 4, 7).raw(&[0; 100]);
    expect_err(
        &r.bytes,
        &[
            "tensor_count + kv_count",
            "need at least 187 bytes, 100 left",
        ],
    );
}

#[test]
fn invalid_utf8_names() {
    let mut r = Raw::default();
    r.header(3, 0, 1).str(b"k\xff").u32(0).u8(0);
    expect_err(
        &r.bytes,
        &["metadata entry #0 key", "at byte 24", "not valid UTF-8"],
    );
    let mut r = Raw::default();
    r.header(3, 1, 0).str(b"\xc3").raw(&[0; 40]);
    expect_err(
        &r.bytes,
        &["tensor #0 name", "at byte 24", "not valid UTF-8"],
    );
    // Invalid UTF-8 in a string *value* is kept (as bytes): only the &str getter refuses it.
    let mut r = Raw::default();
    r.header(3, 0, 1)
        .kv("s", &Value::String(b"\xff".to_vec().into()));
    let h = GgufHeader::parse(&r.bytes).unwrap();
    assert_eq!(h.metadata().string_bytes("s").unwrap().as_bytes(), b"\xff");
    let err = h.metadata().string("s").unwrap_err().to_string();
    assert!(
        err.contains("`s`") && err.contains("invalid UTF-8") && err.contains("at byte 24"),
        "{err}"
    );
}

#[test]
fn files_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.gguf");
    std::fs::write(&empty, b"").unwrap();
    let err = GgufFile::open(&empty).err().unwrap().to_string();
    assert!(err.contains("magic"), "{err}");
    let missing = dir.path().join("missing.gguf");
    let err = GgufFile::open(&missing).err().unwrap().to_string();
    assert!(err.contains("missing.gguf"), "{err}");
    let ok = dir.path().join("ok.gguf");
    std::fs::write(&ok, valid().bytes).unwrap();
    let f = GgufFile::open(&ok).unwrap();
    assert_eq!(f.tensor_bytes(f.tensor("w").unwrap()), &[0u8; 64]);
}
