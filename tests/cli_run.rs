//! The `tandem run` and `tandem tokenize` command lines, end to end through the binary, against
//! the fixtures' references; and bad input, which must give a clear error and exit 1.

mod common;

use common::gguf_edit::rewrite;
use common::model::{floats, ids, read_json, read_logits, rel_l2};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tandem::gguf::Value;

fn tandem(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(args)
        .output()
        .expect("running tandem")
}

fn ok(args: &[&str]) -> String {
    let out = tandem(args);
    assert!(
        out.status.success(),
        "tandem {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail with exit status 1 and an `error:` line; returns stderr.
fn fails(args: &[&str]) -> String {
    let out = tandem(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "tandem {args:?}: {stderr}");
    assert!(stderr.contains("error:"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn csv(ids: &[u32]) -> String {
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

fn moe8x(fx: &Path) -> PathBuf {
    fx.join("stories-moe/stories260K-moe8x-finetuned-f32.gguf")
}

/// `--json`, `--logits-out` and `--routing-out` on the fine-tuned MoE against the numpy
/// reference: the same prompt, the same greedy ids, the same logits and experts.
#[test]
fn run_json_logits_and_routing() {
    let Some(fx) = common::fixtures() else {
        return;
    };
    let reference = read_json(&fx.join("stories-moe/reference/moe8x-finetuned-f32.numpy.json"));
    let ref_logits =
        read_logits(&fx.join("stories-moe/reference/moe8x-finetuned-f32.numpy.logits.f32.bin"));
    let prompt = ids(&reference["prompt_tokens"]);
    let greedy = ids(&reference["greedy_tokens"]);
    let dir = tempfile::tempdir().unwrap();
    let logits_path = dir.path().join("logits.bin");
    let routing_path = dir.path().join("routing.json");
    let out = ok(&[
        "run",
        "-m",
        moe8x(&fx).to_str().unwrap(),
        "--tokens",
        &csv(&prompt),
        "-n",
        &greedy.len().to_string(),
        "--temp",
        "0",
        "--ignore-eos",
        "--kv-type",
        "f32",
        "--json",
        "--logits-out",
        logits_path.to_str().unwrap(),
        "--routing-out",
        routing_path.to_str().unwrap(),
    ]);
    let obj: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(ids(&obj["prompt_ids"]), prompt);
    // The reference's greedy run does not stop at BOS (id 1, the story separator) and neither
    // does --ignore-eos, so all 64 ids compare.
    assert_eq!(ids(&obj["generated_ids"]), greedy);
    assert!(obj["text"].as_str().unwrap().len() > 100);
    assert_eq!(obj["timings"]["prompt_tokens"], prompt.len());
    assert_eq!(obj["timings"]["gen_tokens"], greedy.len());

    // [n_prompt, n_vocab]: the reference's first rows are the same prompt positions.
    let logits = read_logits(&logits_path);
    let n_vocab = 512;
    assert_eq!(logits.len(), prompt.len() * n_vocab);
    let err = rel_l2(&logits, &ref_logits[..logits.len()]);
    // 1e-4 is the issue's bound for an f32 KV cache; the engine measures ~2e-7 (f32 rounding
    // of a float64 reference).
    assert!(err < 1e-4, "logits rel L2 {err:.3e}");

    // One entry per layer, the prompt's positions, the reference's experts in the same order
    // wherever the 2nd/3rd router gap is large enough not to flip on rounding.
    let routing = read_json(&routing_path);
    let layers = routing.as_array().unwrap();
    let ref_layers = reference["routing"].as_array().unwrap();
    assert_eq!(layers.len(), ref_layers.len());
    let mut compared = 0;
    for (got, want) in layers.iter().zip(ref_layers) {
        assert_eq!(got["layer"], want["layer"]);
        let gaps = floats(&want["kth_gap"]);
        let experts = got["experts"].as_array().unwrap();
        assert_eq!(experts.len(), prompt.len());
        for (t, e) in experts.iter().enumerate() {
            let w: Vec<f64> = floats(&got["weights"][t]);
            assert!(w[0] >= w[1] && (w[0] + w[1] - 1.0).abs() < 1e-5, "{w:?}");
            if gaps[t] >= 1e-3 {
                assert_eq!(e, &want["experts"][t], "layer {} token {t}", want["layer"]);
                compared += 1;
            }
        }
    }
    assert!(compared > 40, "only {compared} routing decisions compared");
}

/// Streaming output: the text on stdout is the decoded greedy ids, and timings go to stderr.
#[test]
fn run_streams_text_and_reports_speed() {
    let Some(fx) = common::fixtures() else {
        return;
    };
    let model = moe8x(&fx);
    let args = [
        "run",
        "-m",
        model.to_str().unwrap(),
        "-p",
        "Once upon a time",
        "-n",
        "24",
        "--temp",
        "0",
    ];
    let out = tandem(&args);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("prompt:") && stderr.contains("tok/s"),
        "{stderr}"
    );
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let obj: serde_json::Value = serde_json::from_str(ok(&json_args).trim()).unwrap();
    assert_eq!(stdout.trim_end_matches('\n'), obj["text"].as_str().unwrap());
}

/// `tandem tokenize --file` gives the fixture ids for every vocab test string, including empty
/// strings, newlines, tabs and leading spaces.
#[test]
fn tokenize_file_matches_vocab_cases() {
    let Some(fx) = common::fixtures() else {
        return;
    };
    let vocab = fx.join("tokenizers/ggml-vocab-mixtral.gguf");
    let inp = std::fs::read_to_string(vocab.with_extension("gguf.inp")).unwrap();
    let out = std::fs::read_to_string(vocab.with_extension("gguf.out")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text_path = dir.path().join("case.txt");
    for (text, want) in inp.split("\n__ggml_vocab_test__\n").zip(out.lines()) {
        std::fs::write(&text_path, text).unwrap();
        let args = [
            "tokenize",
            "-m",
            vocab.to_str().unwrap(),
            "--file",
            text_path.to_str().unwrap(),
            "--no-bos",
        ];
        assert_eq!(ok(&args).trim(), want.trim(), "{text:?}");
    }
    // With BOS, as JSON.
    let json = ok(&["tokenize", "-m", vocab.to_str().unwrap(), "Hello", "--json"]);
    let ids: Vec<u32> = serde_json::from_str(&json).unwrap();
    assert_eq!(ids[0], 1);
}

#[test]
fn prompt_longer_than_context() {
    let Some(fx) = common::fixtures() else {
        return;
    };
    let model = moe8x(&fx);
    let m = model.to_str().unwrap();
    let long = "Once upon a time there was a little girl who liked to play.";
    let err = fails(&["run", "-m", m, "-p", long, "--ctx", "8", "-n", "1"]);
    assert!(
        err.contains("--truncate") && err.contains("context"),
        "{err}"
    );
    // With --truncate the last tokens are kept, as many as leave room for the -n 4 tokens: 4
    // prompt tokens, then 4 generated, not 8 and "context full" after one.
    let out = ok(&[
        "run",
        "-m",
        m,
        "-p",
        long,
        "--ctx",
        "8",
        "-n",
        "4",
        "--truncate",
        "--ignore-eos",
        "--json",
    ]);
    let obj: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let kept = ids(&obj["prompt_ids"]);
    // The whole prompt as `tokenize` gives it (BOS first); the kept ones are its last 4.
    let all: serde_json::Value =
        serde_json::from_str(ok(&["tokenize", "-m", m, long, "--json"]).trim()).unwrap();
    let all = ids(&all);
    assert!(all.len() > 8, "{all:?}");
    assert_eq!(kept, all[all.len() - 4..], "the prompt's last 4 tokens");
    assert_eq!(ids(&obj["generated_ids"]).len(), 4, "{obj}");
    assert_eq!(obj["stop"], "length", "{obj}");
}

#[test]
fn unknown_architecture_is_named() {
    let Some(fx) = common::fixtures() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("gpt2.gguf");
    rewrite(
        &moe8x(&fx),
        &bad,
        |k, v| {
            if k == "general.architecture" {
                Value::from("gpt2")
            } else {
                v.clone()
            }
        },
        |_| None,
    );
    let err = fails(&["run", "-m", bad.to_str().unwrap(), "-p", "hi"]);
    assert!(
        err.contains("gpt2") && err.contains("architecture"),
        "{err}"
    );
}

#[test]
fn unsupported_tensor_type_is_named() {
    let Some(fx) = common::fixtures() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("q2k.gguf");
    // IQ4_NL is a valid ggml type with 32-value blocks that tandem does not run.
    rewrite(
        &moe8x(&fx),
        &bad,
        |_, v| v.clone(),
        |s| {
            (s.name == "blk.0.attn_q.weight").then(|| {
                let ty = tandem::quant::GgmlType::IQ4_NL;
                let n = tandem::gguf::tensor_nbytes(ty, &s.ne).unwrap() as usize;
                (ty, vec![0u8; n])
            })
        },
    );
    let err = fails(&["run", "-m", bad.to_str().unwrap(), "-p", "hi"]);
    assert!(
        err.contains("blk.0.attn_q.weight") && err.contains("IQ4_NL"),
        "{err}"
    );
}

#[test]
fn truncated_file_fails_at_load() {
    let Some(fx) = common::fixtures() else {
        return;
    };
    let bytes = std::fs::read(moe8x(&fx)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("truncated.gguf");
    // Cut inside the tensor data: the header parses, the last tensors run past the end.
    std::fs::write(&bad, &bytes[..bytes.len() * 3 / 4]).unwrap();
    let err = fails(&["run", "-m", bad.to_str().unwrap(), "-p", "hi"]);
    assert!(err.contains("truncated.gguf"), "{err}");
    let err = fails(&["info", bad.to_str().unwrap()]);
    assert!(err.contains("truncated.gguf"), "{err}");
}

/// `tandem bench --json` reports what the issue asks for; speeds are not asserted (benchmarks,
/// not timed tests), only that they were measured.
#[test]
fn bench_json_has_the_fields() {
    let Some(fx) = common::fixtures() else {
        return;
    };
    let out = ok(&[
        "bench",
        "-m",
        moe8x(&fx).to_str().unwrap(),
        "-p",
        "16",
        "-n",
        "8",
        "-r",
        "2",
        "--json",
    ]);
    let obj: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    for key in ["pp_tps", "tg_tps", "bytes_per_token", "bw_fraction"] {
        let v = obj[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing: {obj}"));
        assert!(v.is_finite() && v > 0.0, "{key} = {v}");
    }
    // Per token: every layer's attention (q and o 64×64; k and v 32×64 with 4 of 8 KV heads)
    // and router (8×64), top-2 of 8 experts (3 matrices 64×172 each), then the output head
    // (512×64) and one embedding row (64), all f32 in this file. Norm vectors are not counted.
    let per_layer = 2 * 64 * 64 + 2 * 32 * 64 + 8 * 64 + 2 * 3 * 64 * 172;
    let values = 5 * per_layer + 512 * 64 + 64;
    assert_eq!(
        obj["bytes_per_token"].as_f64().unwrap(),
        (values * 4) as f64
    );
}

/// Sampling is reproducible: the same seed gives the same ids, another seed other ids.
#[test]
fn same_seed_same_output() {
    let Some(fx) = common::fixtures() else {
        return;
    };
    let model = moe8x(&fx);
    let gen = |seed: &str| {
        let out = ok(&[
            "run",
            "-m",
            model.to_str().unwrap(),
            "-p",
            "Once upon a time",
            "-n",
            "48",
            "--temp",
            "1.0",
            "--top-k",
            "0",
            "--top-p",
            "1",
            "--min-p",
            "0",
            "--seed",
            seed,
            "--ignore-eos",
            "--json",
        ]);
        let obj: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        ids(&obj["generated_ids"])
    };
    let a = gen("42");
    assert_eq!(a.len(), 48);
    assert_eq!(a, gen("42"));
    assert_ne!(a, gen("43"));
}
