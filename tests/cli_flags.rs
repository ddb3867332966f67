//! Flags and inputs a new user gets wrong, through the binary: each must give one `error:` line
//! that says what is wrong (exit 2 for a bad flag, 1 for a failure), or do what was asked.
//! They use the demo model shipped in `tests/data`, so they run from a fresh clone.

mod common;

use common::gguf_edit::{rewrite, rewrite_adding};
use std::path::PathBuf;
use std::process::{Command, Output};
use tandem::gguf::Value;
use tandem::sample::Param;

/// The stories260K MoE (8 experts, 512-token context), shipped with the repository.
fn demo() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/stories260K-moe8x-finetuned-Q8_0.gguf")
        .to_str()
        .unwrap()
        .to_string()
}

fn tandem(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(args)
        .output()
        .expect("running tandem")
}

fn ok(args: &[&str]) -> Output {
    let out = tandem(args);
    assert!(
        out.status.success(),
        "tandem {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs a command that must fail with `code`; returns its one stderr line, `error: …`.
fn fails(code: i32, args: &[&str]) -> String {
    let out = tandem(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "tandem {args:?}: {stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "one error line: {stderr}");
    assert!(errors[0].starts_with("error: "), "{stderr}");
    assert!(stderr.ends_with(&format!("{}\n", errors[0])), "{stderr}");
    errors[0].to_string()
}

/// `run` on the demo model with `extra`, plus `-p "The little dog"` and `-n 4` unless `extra`
/// gives a prompt file or a count.
fn run_args(extra: &[&str]) -> Vec<String> {
    let mut args = vec!["run".to_string(), "-m".into(), demo()];
    args.extend(extra.iter().map(|a| a.to_string()));
    if !extra.contains(&"--prompt-file") {
        args.extend(["-p".into(), "The little dog".into()]);
    }
    if !extra.contains(&"-n") {
        args.extend(["-n".into(), "4".into()]);
    }
    args
}

fn run_fails(code: i32, extra: &[&str]) -> String {
    let args = run_args(extra);
    fails(code, &args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn run_ok(extra: &[&str]) -> Output {
    let args = run_args(extra);
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

/// The values the issue found accepted are refused by the rule `/set` uses, space or `=`.
#[test]
fn bad_sampling_values_are_refused_like_the_repl_refuses_them() {
    for (flag, value, param, v) in [
        ("--temp", "nan", Param::Temperature, f32::NAN),
        ("--temp", "-1", Param::Temperature, -1.0),
        ("--repeat-penalty", "nan", Param::RepeatPenalty, f32::NAN),
        ("--repeat-penalty", "0", Param::RepeatPenalty, 0.0),
        ("--top-p", "nan", Param::TopP, f32::NAN),
        ("--min-p", "2", Param::MinP, 2.0),
    ] {
        let rule = param.check(v).unwrap_err();
        for args in [vec![flag, value], vec![&*format!("{flag}={value}")]] {
            let e = run_fails(2, &args);
            assert!(e.contains(flag) && e.ends_with(&rule), "{args:?}: {e}");
        }
    }
    let e = run_fails(2, &["--top-k", "-1"]);
    assert!(
        e.contains("--top-k") && e.contains("not a whole number"),
        "{e}"
    );
}

#[test]
fn thread_counts_are_checked_against_the_machine() {
    let cpus = std::thread::available_parallelism().unwrap().get();
    for t in ["0", "100000"] {
        let e = run_fails(2, &["-t", t]);
        assert!(
            e.contains(&format!("{cpus} logical CPUs; use 1 to {cpus}")),
            "-t {t}: {e}"
        );
    }
}

/// `--ctx 0` is refused; a KV cache too large for memory (or for 64 bits) is refused before it is
/// allocated, saying how much it would take; a context past the trained one is a warning.
#[test]
fn context_sizes_are_checked_before_allocating() {
    let e = run_fails(2, &["--ctx", "0"]);
    assert!(e.contains("at least 1"), "{e}");
    // 2^40 tokens × 5 layers × 2 × 4 heads × 8 × 2 bytes = 640 TiB.
    let e = run_fails(1, &["--ctx", "1099511627776"]);
    assert!(
        e.contains("KV cache for 1099511627776 tokens") && e.contains("would take 655360.0 GiB"),
        "{e}"
    );
    let e = run_fails(1, &["--ctx", "18446744073709551615"]);
    assert!(e.contains("more bytes than memory can address"), "{e}");
    let out = run_ok(&["--ctx", "1024"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "warning: --ctx 1024 is longer than the 512 tokens this model was trained on"
        ),
        "{stderr}"
    );
    let out = run_ok(&["--ctx", "512"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("warning"));
}

/// Without `--seed` every run draws its own seed and reports it; passing it back repeats the run.
#[test]
fn default_seed_is_random_printed_and_repeatable() {
    let sample = [
        "--temp",
        "1",
        "--top-k",
        "0",
        "--min-p",
        "0",
        "-n",
        "24",
        "--ignore-eos",
    ];
    let run = |extra: &[&str]| json(&run_ok(&[&sample[..], extra, &["--json"]].concat()));
    let (a, b) = (run(&[]), run(&[]));
    let seed = a["seed"].as_u64().expect("seed in --json");
    assert_ne!(
        Some(seed),
        b["seed"].as_u64(),
        "two runs drew the same seed"
    );
    let again = run(&["--seed", &seed.to_string()]);
    assert_eq!(again["generated_ids"], a["generated_ids"]);
    assert_eq!(again["seed"], a["seed"]);
    let out = run_ok(&sample);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("| seed "), "{stderr}");
}

/// `text` in `--json` is what streaming prints: the first token keeps its leading space, so
/// prompt + text reads as the model wrote it ("The little dog was", not "dogwas").
#[test]
fn json_text_is_decoded_after_the_prompt() {
    let greedy = ["--temp", "0", "-n", "12"];
    let obj = json(&run_ok(&[&greedy[..], &["--json"]].concat()));
    let text = obj["text"].as_str().unwrap();
    assert!(text.starts_with(' '), "{text:?}");
    let streamed = run_ok(&greedy);
    assert_eq!(
        String::from_utf8_lossy(&streamed.stdout),
        format!("{text}\n")
    );
}

/// `--echo` prints the prompt before the generation (a terminal gets it dimmed by default).
#[test]
fn echo_prints_the_prompt_first() {
    let out = run_ok(&["--temp", "0", "-n", "12", "--echo"]);
    let plain = run_ok(&["--temp", "0", "-n", "12"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("The little dog{}", String::from_utf8_lossy(&plain.stdout))
    );
}

/// A huge `-n` stops at the end of the context instead of asking for memory.
#[test]
fn huge_n_predict_stops_at_the_context() {
    let out = run_ok(&[
        "-n",
        "18446744073709551615",
        "--ctx",
        "32",
        "--ignore-eos",
        "--json",
    ]);
    let obj = json(&out);
    assert_eq!(obj["stop"], "contextfull", "{obj}");
}

#[test]
fn files_that_are_missing_or_directories_are_named_once() {
    let e = fails(1, &["run", "-m", "/nonexistent/model.gguf", "-p", "hi"]);
    assert_eq!(
        e,
        "error: cannot read /nonexistent/model.gguf: No such file or directory (os error 2)"
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    for args in [
        vec!["run", "-m", d, "-p", "hi"],
        vec!["info", d],
        vec!["tokenize", "-m", d, "x"],
    ] {
        let e = fails(1, &args);
        assert_eq!(
            e,
            format!("error: cannot read {d}: it is a directory, not a GGUF file")
        );
    }
}

#[test]
fn info_takes_the_model_flag_too() {
    let m = demo();
    let by_flag = ok(&["info", "-m", &m]);
    let by_position = ok(&["info", &m]);
    assert_eq!(by_flag.stdout, by_position.stdout);
    assert!(String::from_utf8_lossy(&by_flag.stdout).contains("llama.expert_count"));
}

#[test]
fn prompt_file_that_is_not_utf8_names_the_byte() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("prompt.txt");
    std::fs::write(&f, b"Once upon a\xff time").unwrap();
    let e = run_fails(1, &["--prompt-file", f.to_str().unwrap()]);
    assert!(e.ends_with("prompt.txt: not UTF-8 at byte 11"), "{e}");
}

/// An output path that cannot be written fails before the prompt is run, and leaves nothing.
#[test]
fn unwritable_outputs_fail_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("missing-dir/logits.bin");
    for flag in ["--logits-out", "--routing-out"] {
        let args = run_args(&[flag, bad.to_str().unwrap()]);
        let out = tandem(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.starts_with(&format!("error: {flag} ")), "{stderr}");
        assert!(!stderr.contains("prompt:"), "ran before failing: {stderr}");
    }
    let good = dir.path().join("logits.bin");
    run_ok(&["--logits-out", good.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "only logits.bin"
    );
}

#[test]
fn perplexity_help_states_its_own_default_context() {
    let out = ok(&["perplexity", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("for perplexity, 512"), "{help}");
}

/// Hyper-parameters no model has are refused at load, naming the key and the value.
#[test]
fn impossible_hyper_parameters_are_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    for (key, value, says) in [
        (
            "llama.rope.freq_base",
            Value::F32(f32::NAN),
            "llama.rope.freq_base = NaN",
        ),
        (
            "llama.rope.freq_base",
            Value::F32(0.0),
            "llama.rope.freq_base = 0",
        ),
        (
            "llama.rope.freq_base",
            Value::F32(-1.0),
            "llama.rope.freq_base = -1",
        ),
        (
            "llama.rope.freq_base",
            Value::F32(f32::INFINITY),
            "llama.rope.freq_base = inf",
        ),
        (
            "llama.attention.layer_norm_rms_epsilon",
            Value::F32(f32::NAN),
            "llama.attention.layer_norm_rms_epsilon = NaN",
        ),
        (
            "llama.attention.layer_norm_rms_epsilon",
            Value::F32(-1.0),
            "llama.attention.layer_norm_rms_epsilon = -1",
        ),
        (
            "llama.rope.dimension_count",
            Value::U32(0),
            "llama.rope.dimension_count = 0",
        ),
        (
            "llama.attention.value_length",
            Value::U32(0),
            "llama.attention.value_length = 0",
        ),
        (
            "llama.attention.head_count_kv",
            Value::U32(0),
            "llama.attention.head_count_kv = 0",
        ),
        (
            "llama.attention.head_count_kv",
            Value::U32(3),
            "llama.attention.head_count_kv = 3",
        ),
    ] {
        let bad = dir.path().join("bad.gguf");
        // The demo file has every one of these keys.
        let edited = |k: &str, v: &Value| if k == key { value.clone() } else { v.clone() };
        rewrite(demo().as_ref(), &bad, edited, |_| None);
        let e = fails(
            1,
            &["run", "-m", bad.to_str().unwrap(), "-p", "hi", "-n", "1"],
        );
        assert!(e.contains(says), "{key} = {value:?}: {e}");
    }
}

/// Scaled RoPE (YaRN, linear) would change every angle; tandem computes plain RoPE, so such a
/// file is refused rather than run wrong. `none` is plain RoPE and loads.
#[test]
fn scaled_rope_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scaled.gguf");
    for (t, refused) in [("yarn", true), ("linear", true), ("none", false)] {
        let extra = [("llama.rope.scaling.type", Value::from(t))];
        rewrite_adding(demo().as_ref(), &file, &extra, |_, v| v.clone(), |_| None);
        let args = ["run", "-m", file.to_str().unwrap(), "-p", "hi", "-n", "1"];
        if refused {
            let e = fails(1, &args);
            assert!(e.contains(&format!("llama.rope.scaling.type = {t}")), "{e}");
        } else {
            assert_eq!(tandem(&args).status.code(), Some(0), "{t}");
        }
    }
}

/// A bare `tandem` still prints the whole usage (only error messages are cut to one line).
#[test]
fn no_command_prints_the_usage() {
    let out = tandem(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("Usage:") && stderr.contains("perplexity"),
        "{stderr}"
    );
}
