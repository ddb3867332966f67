//! Checks the test helpers themselves against the fixtures, so that tests built on them stand on
//! known ground.

mod common;

/// The f32 GGUF of stories-moe was converted by llama.cpp from the HF checkpoint, bit for bit after
/// the Q/K permutation (fixtures README). Reading its raw tensors through the manifest offsets and
/// comparing with the HF loader checks the name mapping and the permutation exactly.
#[test]
fn hf_loader_matches_llamacpp_conversion() {
    let Some(fx) = common::fixtures() else { return };
    let dir = fx.join("stories-moe");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("gguf-manifest.json")).unwrap()).unwrap();
    let rec = manifest
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["file"] == "stories260K-moe8x-finetuned-f32.gguf")
        .unwrap();
    let bytes = std::fs::read(dir.join("stories260K-moe8x-finetuned-f32.gguf")).unwrap();
    let base = rec["tensor_data_offset"].as_u64().unwrap() as usize;
    let hf = common::hf::HfCheckpoint::open(&dir.join("stories260K-moe8x-finetuned"));
    let mut checked = 0;
    for t in rec["tensors"].as_array().unwrap() {
        let name = t["name"].as_str().unwrap();
        let off = base + t["offset"].as_u64().unwrap() as usize;
        let n = t["nbytes"].as_u64().unwrap() as usize;
        let gguf: Vec<f32> = bytes[off..off + n]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        let (want, cols) = hf.gguf_tensor(name);
        assert_eq!(cols as u64, t["ne"][0].as_u64().unwrap(), "{name}: row length");
        assert!(gguf == want, "{name}: HF loader disagrees with the llama.cpp conversion");
        checked += 1;
    }
    assert!(checked > 40, "only {checked} tensors checked");
}
