//! Test-side conversion of an HF checkpoint to an unquantized GGUF, with a llama.cpp-made file of
//! the same model as the template for metadata, tensor names, order and shapes.
#![allow(dead_code)]

use super::hf::HfCheckpoint;
use std::path::Path;
use tandem::gguf::{GgufFile, GgufWriter, TensorSpec};
use tandem::quant::GgmlType;

/// Writes `out` with `template`'s metadata and tensor list, each tensor taken from the HF
/// checkpoint and stored as `ty` (F32 or F16); 1-D tensors (norms) stay F32.
pub fn hf_to_gguf(hf_dir: &Path, template: &Path, out: &Path, ty: GgmlType) {
    let hf = HfCheckpoint::open(hf_dir);
    let t = GgufFile::open(template).unwrap();
    let specs: Vec<TensorSpec> = t
        .tensors()
        .iter()
        .map(|i| {
            let tty = if i.ne().len() == 1 || i.name().ends_with("ffn_gate_inp.weight") {
                GgmlType::F32
            } else {
                ty
            };
            TensorSpec::new(i.name(), tty, i.ne())
        })
        .collect();
    let mut w = GgufWriter::create(out, t.metadata(), &specs).unwrap();
    for s in &specs {
        let (values, _) = hf.gguf_tensor(&s.name);
        let bytes: Vec<u8> = match s.ty {
            GgmlType::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            GgmlType::F16 => values
                .iter()
                .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                .collect(),
            other => panic!("hf_to_gguf writes F32/F16, not {other}"),
        };
        w.write_tensor(&s.name, &bytes).unwrap();
    }
    w.finish().unwrap();
}
