//! `tandem perplexity` with llama.cpp's chunking, against the fixtures' exact (float64 numpy)
//! statistics and llama.cpp's own numbers on the same tokens. Prints the comparison table.

mod common;

use common::model::read_json;
use std::path::Path;
use std::process::Command;
use tandem::quant::GgmlType;

fn perplexity(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .arg("perplexity")
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tandem perplexity {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

struct Row {
    file: String,
    /// tandem with 8-bit activations (as llama.cpp).
    ours: serde_json::Value,
    /// tandem with `--activations q16`.
    ours16: serde_json::Value,
    exact: serde_json::Value,
    llamacpp: serde_json::Value,
}

/// Prints ours / llama.cpp / exact side by side, then checks the bounds.
fn report(title: &str, rows: &[Row]) {
    println!("{title}");
    println!(
        "{:<40} {:>9} {:>9} {:>9} {:>9} | {:>6} {:>6} {:>6} {:>6}",
        "mean KLD / same top %",
        "t q8",
        "t q16",
        "llama",
        "exact",
        "t q8",
        "t q16",
        "llama",
        "exact"
    );
    for r in rows {
        let k = |v: &serde_json::Value| v["mean_kld"].as_f64().unwrap();
        let p = |v: &serde_json::Value| v["same_top_pct"].as_f64().unwrap();
        println!(
            "{:<40} {:>9.6} {:>9.6} {:>9.6} {:>9.6} | {:>6.2} {:>6.2} {:>6.2} {:>6.2}",
            r.file,
            k(&r.ours),
            k(&r.ours16),
            k(&r.llamacpp),
            k(&r.exact),
            p(&r.ours),
            p(&r.ours16),
            p(&r.llamacpp),
            p(&r.exact),
        );
    }
}

/// Bounds on one quantized file's statistics against the exact ones.
///
/// The exact numbers use float64 throughout with no activation quantization; tandem keeps an
/// f32 KV cache here.
/// - With 8-bit activations (like llama.cpp) the mean KLD is the weight error plus an
///   activation term: `q8_slack` bounds that term from above per file (measured: see the
///   callers). The term is noise, not only growth: it lowered mini Q4_0's KLD by 0.5%, so the
///   lower bound is exact − 2%; a KLD of 0 fails it. llama.cpp quantizes activations the same
///   way, so its KLD is within 10% of ours (measured ≤ 6.2%, stories Q8_0); without activation
///   quantization stories Q8_0 would be 46% below llama.cpp's. Same-top-token rates over
///   1–2 k positions move when a handful of near-ties flip; 1.5 points allows ~20 flips.
/// - With `--activations q16` the activation error is ~2^-16 relative, so what is left is f32
///   arithmetic: the mean KLD must be within 2% (+1e-6) of exact and the same-top rate within
///   0.5 points (a few flips of exact ties), and strictly closer to exact than llama.cpp's KLD
///   (the claim of q16; true of every file here).
fn check(row: &Row, q8_slack: f64) {
    let k = |v: &serde_json::Value| v["mean_kld"].as_f64().unwrap();
    let p = |v: &serde_json::Value| v["same_top_pct"].as_f64().unwrap();
    let exact = k(&row.exact);
    let ours = k(&row.ours);
    let llama = k(&row.llamacpp);
    assert!(
        ours <= exact + q8_slack && ours >= 0.98 * exact,
        "{}: q8 mean KLD {ours:.6} outside [0.98, +{q8_slack:e}] of exact {exact:.6}",
        row.file
    );
    assert!(
        (ours - llama).abs() <= 0.1 * llama,
        "{}: q8 mean KLD {ours:.6} vs llama.cpp's {llama:.6} (same activation rounding)",
        row.file
    );
    assert!(
        (p(&row.ours) - p(&row.exact)).abs() <= 1.5,
        "{}: q8 same top {:.2}% vs exact {:.2}%",
        row.file,
        p(&row.ours),
        p(&row.exact)
    );
    let ours16 = k(&row.ours16);
    let band = 0.02 * exact + 1e-6;
    assert!(
        (ours16 - exact).abs() <= band,
        "{}: q16 mean KLD {ours16:.6} vs exact {exact:.6}",
        row.file
    );
    let llama_err = (llama - exact).abs();
    assert!(
        (ours16 - exact).abs() < llama_err,
        "{}: q16 KLD error {:.2e} not below llama.cpp's {llama_err:.2e}",
        row.file,
        (ours16 - exact).abs()
    );
    assert!(
        (p(&row.ours16) - p(&row.exact)).abs() <= 0.5,
        "{}: q16 same top {:.2}% vs exact {:.2}%",
        row.file,
        p(&row.ours16),
        p(&row.exact)
    );
}

fn llamacpp(summary: &serde_json::Value, file: &str) -> serde_json::Value {
    let runs = summary["kld_runs"].as_object().unwrap();
    runs.values()
        .find(|r| r["model"] == file)
        .unwrap_or_else(|| panic!("no llama.cpp run for {file}"))
        .clone()
}

fn run_suite(
    kld_dir: &Path,
    base_model: &Path,
    quantized: &[(&Path, &str, f64)],
    title: &str,
) -> Vec<Row> {
    let exact = read_json(&kld_dir.join("numpy-exact.json"));
    let summary = read_json(&kld_dir.join("llamacpp-summary.json"));
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.tklb");
    let tokens = kld_dir.join("tokens.json");
    let b = perplexity(&[
        "-m",
        base_model.to_str().unwrap(),
        "--tokens-json",
        tokens.to_str().unwrap(),
        "--ctx",
        "512",
        "--kv-type",
        "f32",
        "--save-kl-base",
        base.to_str().unwrap(),
    ]);
    let base_name = exact["base"].as_str().unwrap();
    let exact_ppl = exact["files"][base_name]["ppl_base"].as_f64().unwrap();
    let ppl = b["ppl"].as_f64().unwrap();
    println!("base perplexity: tandem {ppl:.4}, exact {exact_ppl:.4}");
    // The base model in f32 weights with an f32 KV cache: only f32 rounding separates it from
    // float64, and llama.cpp itself lands within 1e-4 relative.
    assert!(
        (ppl / exact_ppl - 1.0).abs() < 2e-4,
        "base ppl {ppl} vs {exact_ppl}"
    );
    assert_eq!(
        b["n_scored"].as_u64(),
        exact["files"][base_name]["n_scored"].as_u64()
    );

    let mut rows = Vec::new();
    for (path, name, _) in quantized {
        let run = |acts: &str| {
            perplexity(&[
                "-m",
                path.to_str().unwrap(),
                "--kl-base",
                base.to_str().unwrap(),
                "--kv-type",
                "f32",
                "--activations",
                acts,
            ])["kl"]
                .clone()
        };
        rows.push(Row {
            file: name.to_string(),
            ours: run("q8"),
            ours16: run("q16"),
            exact: exact["files"][*name].clone(),
            llamacpp: llamacpp(&summary, name),
        });
    }
    report(title, &rows);
    for (row, (_, _, slack)) in rows.iter().zip(quantized) {
        check(row, *slack);
    }
    rows
}

#[test]
fn stories_moe_kld_against_exact() {
    let Some(fx) = common::fixtures() else {
        return;
    };
    let d = fx.join("stories-moe");
    let q8 = d.join("stories260K-moe8x-finetuned-Q8_0.gguf");
    let q4 = d.join("stories260K-moe8x-finetuned-Q4_0.gguf");
    run_suite(
        &d.join("kld"),
        &d.join("stories260K-moe8x-finetuned-f32.gguf"),
        &[
            // Q8_0: exact 0.00088; 8-bit activations on this 64-wide model add about as much
            // again (measured +6.4e-4; llama.cpp: 0.00162).
            (&q8, "stories260K-moe8x-finetuned-Q8_0.gguf", 1e-3),
            // Q4_0: the weight error dominates (0.101); activations move it by < 1% (measured
            // +9.7e-4).
            (&q4, "stories260K-moe8x-finetuned-Q4_0.gguf", 3e-3),
        ],
        "stories-moe, held-out TinyStories, base f32",
    );
}

#[test]
fn mixtral_mini_kld_against_exact() {
    let Some(fx) = common::fixtures() else {
        return;
    };
    let d = fx.join("mixtral-mini");
    let dir = tempfile::tempdir().unwrap();
    // The f16 base is not shipped: convert it from the bf16 checkpoint (bit-identical to
    // llama.cpp's f16 file, see model_mixtral_mini.rs).
    let base = dir.path().join("mixtral-mini-f16.gguf");
    common::convert::hf_to_gguf(
        &d.join("mixtral-mini-hf"),
        &d.join("mixtral-mini-Q4_0.gguf"),
        &base,
        GgmlType::F16,
    );
    let files = ["Q4_0", "Q4_K_M", "Q5_K_M"].map(|t| d.join(format!("mixtral-mini-{t}.gguf")));
    run_suite(
        &d.join("kld"),
        &base,
        &[
            // Exact mean KLDs are 0.0020 / 0.0011 / 0.0006; llama.cpp is within 4e-5 of each,
            // ours within 1.0e-5 / 2.3e-5 / 2.7e-5 (measured).
            (&files[0], "mixtral-mini-Q4_0.gguf", 1e-4),
            (&files[1], "mixtral-mini-Q4_K_M.gguf", 1e-4),
            (&files[2], "mixtral-mini-Q5_K_M.gguf", 1e-4),
        ],
        "mixtral-mini, wikitext, base f16",
    );
}
