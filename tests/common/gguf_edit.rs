//! Rewriting a GGUF file with edited metadata or tensor types, for tests of bad model files.

use std::path::Path;
use tandem::gguf::{GgufFile, GgufWriter, Metadata, TensorSpec, Value};
use tandem::quant::GgmlType;

/// Rewrites `src` into `dst` with `edit` applied to the metadata and `retype` to the tensors.
pub fn rewrite(
    src: &Path,
    dst: &Path,
    edit: impl Fn(&str, &Value) -> Value,
    retype: impl Fn(&TensorSpec) -> Option<(GgmlType, Vec<u8>)>,
) {
    rewrite_adding(src, dst, &[], edit, retype)
}

/// [`rewrite`], with the `extra` metadata entries appended.
pub fn rewrite_adding(
    src: &Path,
    dst: &Path,
    extra: &[(&str, Value)],
    edit: impl Fn(&str, &Value) -> Value,
    retype: impl Fn(&TensorSpec) -> Option<(GgmlType, Vec<u8>)>,
) {
    let f = GgufFile::open(src).unwrap();
    let mut md = Metadata::new();
    for e in f.metadata().entries() {
        md.push(e.key.clone(), edit(&e.key, &e.value)).unwrap();
    }
    for (k, v) in extra {
        md.push(k.to_string(), v.clone()).unwrap();
    }
    let mut specs = Vec::new();
    let mut data = Vec::new();
    for t in f.tensors() {
        let mut spec = t.spec();
        let bytes = match retype(&spec) {
            Some((ty, bytes)) => {
                spec.ty = ty;
                bytes
            }
            None => f.tensor_bytes(t).to_vec(),
        };
        specs.push(spec);
        data.push(bytes);
    }
    let mut w = GgufWriter::create(dst, &md, &specs).unwrap();
    for (s, d) in specs.iter().zip(&data) {
        w.write_tensor(&s.name, d).unwrap();
    }
    w.finish().unwrap();
}
