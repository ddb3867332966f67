//! The streaming writer: byte-identical rewrites of every fixture GGUF (written by llama.cpp and
//! gguf-py), alignment and padding against the test-side encoder, and the temp-file protocol.

mod common;
mod gguf_support;

use gguf_support::{FileSpec, TensorData};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tandem::gguf::{Array, GgufFile, GgufWriter, Metadata, TensorSpec, Value};
use tandem::quant::GgmlType;

fn fixture_ggufs(fx: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for sub in ["tokenizers", "stories260k", "stories-moe", "mixtral-mini"] {
        for entry in std::fs::read_dir(fx.join(sub)).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|e| e == "gguf") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Reads `src` and writes it back through the writer, one tensor at a time.
fn rewrite(src: &Path, dest: &Path) {
    let f = GgufFile::open(src).unwrap();
    let specs: Vec<TensorSpec> = f.tensors().iter().map(|t| t.spec()).collect();
    let mut w = GgufWriter::create(dest, f.metadata(), &specs).unwrap();
    for t in f.tensors() {
        w.write_tensor(t.name(), f.tensor_bytes(t)).unwrap();
    }
    w.finish().unwrap();
}

/// Same metadata (order, value types), same tensors, same order: the writer must reproduce the
/// original bytes, which proves header layout, value encodings, offsets and padding.
#[test]
fn fixture_files_rewrite_byte_identical() {
    let Some(fx) = common::fixtures() else { return };
    let dir = tempfile::tempdir().unwrap();
    let files = fixture_ggufs(&fx);
    assert_eq!(
        files.len(),
        10,
        "expected the 10 shipped fixture GGUFs: {files:?}"
    );
    for src in &files {
        let dest = dir.path().join(src.file_name().unwrap());
        rewrite(src, &dest);
        let (a, b) = (std::fs::read(src).unwrap(), std::fs::read(&dest).unwrap());
        assert_eq!(a.len(), b.len(), "{}: size", src.display());
        assert_eq!(
            Sha256::digest(&a),
            Sha256::digest(&b),
            "{}: sha256",
            src.display()
        );
        assert!(a == b, "{}: bytes differ", src.display());
        println!("byte-identical: {} ({} bytes)", src.display(), a.len());
        std::fs::remove_file(&dest).unwrap();
    }
}

fn spec_file(alignment: Option<u32>) -> FileSpec {
    let mut kvs = vec![
        ("general.architecture".to_string(), Value::from("llama")),
        (
            "nested".to_string(),
            Value::Array(Array::Array(vec![
                Array::U16(vec![1, 2]),
                Array::String(vec!["x".into()]),
            ])),
        ),
    ];
    if let Some(a) = alignment {
        kvs.push(("general.alignment".to_string(), Value::U32(a)));
    }
    let tensor = |name: &str, ty: GgmlType, ne: &[u64], fill: u8| TensorData {
        name: name.to_string(),
        ty,
        ne: ne.to_vec(),
        data: vec![fill; gguf_support::nbytes(ty, ne) as usize],
    };
    FileSpec {
        version: 3,
        kvs,
        tensors: vec![
            tensor("a", GgmlType::F32, &[3], 1),
            tensor("b", GgmlType::Q4_0, &[64, 3], 2),
            tensor("c", GgmlType::F16, &[5, 1, 1], 3),
            tensor("d", GgmlType::Q6_K, &[256], 4),
        ],
    }
}

fn write_spec(spec: &FileSpec, dest: &Path) {
    let mut md = Metadata::new();
    for (k, v) in &spec.kvs {
        md.push(k.clone(), v.clone()).unwrap();
    }
    let specs: Vec<TensorSpec> = spec
        .tensors
        .iter()
        .map(|t| TensorSpec::new(t.name.clone(), t.ty, &t.ne))
        .collect();
    let mut w = GgufWriter::create(dest, &md, &specs).unwrap();
    for t in &spec.tensors {
        w.write_tensor(&t.name, &t.data).unwrap();
    }
    w.finish().unwrap();
}

/// Odd-sized tensors and several alignments: the writer's bytes equal the independent encoder's,
/// and every tensor offset is a multiple of the alignment.
#[test]
fn alignment_and_padding_match_the_encoder() {
    let dir = tempfile::tempdir().unwrap();
    for alignment in [None, Some(1), Some(8), Some(64), Some(4096)] {
        let spec = spec_file(alignment);
        let dest = dir.path().join("x.gguf");
        write_spec(&spec, &dest);
        let enc = spec.encode();
        let (raw, offsets, data_start) = (enc.raw, enc.offsets, enc.data_start);
        let got = std::fs::read(&dest).unwrap();
        assert!(
            got == raw.bytes,
            "alignment {alignment:?}: writer and encoder differ"
        );
        let f = GgufFile::open(&dest).unwrap();
        let a = u64::from(alignment.unwrap_or(32));
        assert_eq!(f.alignment(), a);
        assert_eq!(f.data_offset(), data_start as u64);
        assert_eq!(f.data_offset() % a, 0);
        for (t, want) in f.tensors().iter().zip(&offsets) {
            assert_eq!(t.offset(), *want);
            assert_eq!(t.offset() % a, 0);
        }
        // The file ends padded after the last tensor.
        assert_eq!(got.len() as u64 % a, 0);
    }
}

fn tmp_of(dest: &Path) -> PathBuf {
    dest.with_file_name(format!(
        "{}.tmp",
        dest.file_name().unwrap().to_str().unwrap()
    ))
}

#[test]
fn temp_file_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.gguf");
    let tmp = tmp_of(&dest);
    let md = Metadata::new();
    let specs = [
        TensorSpec::new("a", GgmlType::F32, &[4]),
        TensorSpec::new("b", GgmlType::F32, &[2]),
    ];

    // Dropped unfinished: the temp file goes, the destination never appears.
    let mut w = GgufWriter::create(&dest, &md, &specs).unwrap();
    assert!(tmp.exists() && !dest.exists());
    w.write_tensor("a", &[0; 16]).unwrap();
    drop(w);
    assert!(!tmp.exists() && !dest.exists());

    // A wrong byte count is an error naming the tensor, and cleans up.
    std::fs::write(&dest, b"old").unwrap();
    let mut w = GgufWriter::create(&dest, &md, &specs).unwrap();
    let err = w.write_tensor("a", &[0; 15]).unwrap_err().to_string();
    assert!(
        err.contains("tensor `a`") && err.contains("15 bytes given") && err.contains("16"),
        "{err}"
    );
    assert!(!tmp.exists());
    assert!(
        w.write_tensor("a", &[0; 16]).is_err(),
        "a failed writer must stay failed"
    );
    drop(w);
    assert_eq!(
        std::fs::read(&dest).unwrap(),
        b"old",
        "destination untouched on failure"
    );

    // Out of order.
    let mut w = GgufWriter::create(&dest, &md, &specs).unwrap();
    let err = w.write_tensor("b", &[0; 8]).unwrap_err().to_string();
    assert!(
        err.contains("tensor `b`") && err.contains("out of order") && err.contains("`a`"),
        "{err}"
    );
    assert!(!tmp.exists());

    // Finishing early names the first missing tensor.
    let mut w = GgufWriter::create(&dest, &md, &specs).unwrap();
    w.write_tensor("a", &[0; 16]).unwrap();
    let err = w.finish().unwrap_err().to_string();
    assert!(
        err.contains("tensor `b`") && err.contains("1 of 2"),
        "{err}"
    );
    assert!(!tmp.exists());
    assert_eq!(std::fs::read(&dest).unwrap(), b"old");

    // One too many.
    let mut w = GgufWriter::create(&dest, &md, &specs[..1]).unwrap();
    w.write_tensor("a", &[0; 16]).unwrap();
    assert!(w
        .write_tensor("b", &[0; 8])
        .unwrap_err()
        .to_string()
        .contains("already written"));

    // Success replaces the destination and leaves no temp file.
    let mut w = GgufWriter::create(&dest, &md, &specs).unwrap();
    w.write_tensor("a", &[1; 16]).unwrap();
    w.write_tensor("b", &[2; 8]).unwrap();
    w.finish().unwrap();
    assert!(!tmp.exists());
    let f = GgufFile::open(&dest).unwrap();
    assert_eq!(f.tensor_bytes(f.tensor("b").unwrap()), &[2; 8]);
}

#[test]
fn declarations_are_checked_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.gguf");
    let create_err = |md: &Metadata, specs: &[TensorSpec]| {
        let err = GgufWriter::create(&dest, md, specs)
            .err()
            .unwrap()
            .to_string();
        assert!(!tmp_of(&dest).exists() && !dest.exists());
        err
    };
    let md = Metadata::new();
    let err = create_err(&md, &[TensorSpec::new("q", GgmlType::Q4_0, &[16])]);
    assert!(
        err.contains("tensor `q`") && err.contains("block size 32"),
        "{err}"
    );
    let err = create_err(&md, &[TensorSpec::new("t", GgmlType::F32, &[1; 5])]);
    assert!(
        err.contains("tensor `t`") && err.contains("5 dimensions"),
        "{err}"
    );
    let dup = [
        TensorSpec::new("t", GgmlType::F32, &[1]),
        TensorSpec::new("t", GgmlType::F32, &[1]),
    ];
    assert!(create_err(&md, &dup).contains("duplicate tensor name"));
    let long = "x".repeat(64);
    assert!(create_err(&md, &[TensorSpec::new(long, GgmlType::F32, &[1])]).contains("at most 63"));

    let mut md = Metadata::new();
    md.push("general.alignment", 48u32).unwrap();
    assert!(create_err(&md, &[]).contains("alignment 48 is not a nonzero power of two"));
    let mut md = Metadata::new();
    md.push("general.alignment", 64u64).unwrap();
    assert!(create_err(&md, &[]).contains("must be a u32, found u64"));
}
