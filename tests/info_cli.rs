//! `tandem info`, run as a binary: its report must agree with the fixtures' manifests, and a bad
//! file must give a non-zero exit with a clear message, not a panic.

mod common;

use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

fn tandem_info(file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tandem"))
        .arg("info")
        .arg(file)
        // anyhow prints a captured backtrace with the error when these are set; the check below
        // is about panics, so run as a user would.
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .output()
        .unwrap()
}

/// The whitespace-separated columns after `prefix` on the line that starts with it (after
/// indentation, and followed by whitespace).
fn row<'a>(out: &'a str, prefix: &str) -> Vec<&'a str> {
    out.lines()
        .map(str::trim_start)
        .find_map(|l| l.strip_prefix(prefix).filter(|rest| rest.starts_with(' ')))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{out}"))
        .split_whitespace()
        .collect()
}

#[test]
fn report_agrees_with_the_manifest() {
    let Some(fx) = common::fixtures() else { return };
    let dir = fx.join("mixtral-mini");
    let manifest: Json =
        serde_json::from_slice(&std::fs::read(dir.join("gguf-manifest.json")).unwrap()).unwrap();
    let rec = manifest
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["file"] == "mixtral-mini-Q4_K_M.gguf")
        .unwrap();
    let out = tandem_info(&dir.join("mixtral-mini-Q4_K_M.gguf"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = String::from_utf8(out.stdout).unwrap();

    let tensors = rec["tensors"].as_array().unwrap();
    let meta = rec["metadata"].as_object().unwrap();
    assert_eq!(row(&out, "tensors")[0], tensors.len().to_string());
    assert_eq!(row(&out, "metadata keys")[0], meta.len().to_string());
    assert_eq!(
        row(&out, "GGUF version")[0],
        rec["gguf_version"].to_string()
    );
    assert_eq!(row(&out, "alignment")[0], rec["alignment"].to_string());
    assert_eq!(
        row(&out, "data offset")[0],
        rec["tensor_data_offset"].to_string()
    );
    assert_eq!(row(&out, "file size")[0], rec["size"].to_string());
    for key in meta.keys() {
        assert!(row(&out, key).len() >= 2, "metadata `{key}` not shown");
    }
    assert_eq!(
        row(&out, "tokenizer.ggml.tokens")[..4],
        ["array", "of", "string", "[32000]"]
    );

    let (mut total, mut params) = (0u64, 0u64);
    let mut by_type: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for t in tensors {
        let name = t["name"].as_str().unwrap();
        let ty = t["type"].as_str().unwrap();
        let nbytes = t["nbytes"].as_u64().unwrap();
        let ne: Vec<u64> = t["ne"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_u64().unwrap())
            .collect();
        let cols = row(&out, name);
        assert_eq!(cols[0], ty, "{name}: type");
        assert_eq!(
            cols[1..cols.len() - 2].join(" "),
            format!("{ne:?}"),
            "{name}: shape"
        );
        assert_eq!(cols[cols.len() - 2], nbytes.to_string(), "{name}: bytes");
        assert_eq!(
            cols[cols.len() - 1],
            t["offset"].to_string(),
            "{name}: offset"
        );
        total += nbytes;
        params += ne.iter().product::<u64>();
        let e = by_type.entry(ty.to_string()).or_default();
        e.0 += 1;
        e.1 += nbytes;
    }
    assert_eq!(row(&out, "total tensor bytes")[0], total.to_string());
    assert_eq!(row(&out, "parameters")[0], params.to_string());
    // The per-type table comes after its heading; the type names also appear in the tensor table.
    let per_type = &out[out.find("bytes by type:").unwrap()..];
    for (ty, (n, b)) in &by_type {
        let cols = row(per_type, ty);
        assert_eq!(cols[0], n.to_string(), "{ty}: tensors");
        assert_eq!(cols[1], b.to_string(), "{ty}: bytes");
        let pct: f64 = cols[2].parse().unwrap();
        // Printed with two decimals.
        assert!(
            (pct - 100.0 * *b as f64 / total as f64).abs() <= 0.005,
            "{ty}: {pct}%"
        );
    }
}

#[test]
fn bad_files_exit_non_zero_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, Vec<u8>, &str); 3] = [
        (
            "text.gguf",
            b"hello world, not gguf".to_vec(),
            "not a GGUF file",
        ),
        (
            "v1.gguf",
            [&b"GGUF"[..], &1u32.to_le_bytes(), &[0; 16]].concat(),
            "unsupported GGUF version 1",
        ),
        (
            "short.gguf",
            [&b"GGUF"[..], &3u32.to_le_bytes(), &[0; 3]].concat(),
            "tensor_count at byte 8",
        ),
    ];
    for (name, bytes, needle) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let out = tandem_info(&path);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{name}: exit status {:?}",
            out.status
        );
        assert!(
            stderr.contains(needle) && stderr.contains(name),
            "{name}: {stderr}"
        );
        assert!(
            !stderr.contains("panicked") && !stderr.contains("backtrace"),
            "{name}: {stderr}"
        );
    }
    let out = tandem_info(&dir.path().join("missing.gguf"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.gguf"));
}
