//! Property test of the command line: random values (NaN, infinities, 0, negatives, huge, junk)
//! for every sampling and size flag of `tandem run`, on the demo model in `tests/data`. Each run
//! must either succeed or exit with 1 or 2 and end with one `error:` line; never a panic, an
//! abort or a signal. It runs under a 4 GiB address-space limit, so an allocation sized by a flag
//! beyond what the run needs shows up as an abort instead of passing unnoticed.
//!
//! The seed is printed; `CI=true` fixes it and `TANDEM_PROPTEST_SEED=N` repeats a run.
//! `PROPTEST_CASES` overrides the number of cases.

mod common;

use proptest::prelude::*;
use proptest::test_runner::{RngAlgorithm, TestCaseError, TestRng};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

static RAN: AtomicU64 = AtomicU64::new(0);
static REFUSED: AtomicU64 = AtomicU64::new(0);

/// Address space each run may use: far above what the 2 MB model needs, far below what an
/// unchecked `--ctx` would ask for.
const ADDRESS_SPACE_KIB: u64 = 4 << 20;

/// A flag value: special and edge numbers, random integers and floats, and text that is not a
/// number at all.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "nan",
            "NaN",
            "inf",
            "-inf",
            "infinity",
            "0",
            "-0",
            "1",
            "-1",
            "0.5",
            "1e30",
            "-1e30",
            "1e-45",
            "4294967296",
            "1099511627776",
            "18446744073709551615",
            "18446744073709551616",
            "340282366920938463463374607431768211456",
            "",
            "abc",
            "1,2",
            "0x10",
            " 1",
        ])
        .prop_map(String::from),
        any::<u64>().prop_map(|v| v.to_string()),
        any::<i64>().prop_map(|v| v.to_string()),
        (0u64..4096).prop_map(|v| v.to_string()),
        any::<f32>().prop_map(|v| v.to_string()),
        (-2.0f32..2.0).prop_map(|v| v.to_string()),
    ]
}

/// `-n` stays small when it is a valid count (a valid huge `-n` with a huge `--ctx` would only
/// take long, which `cli_flags` checks once); anything else is fair game.
fn n_predict() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (0u64..8).prop_map(|v| v.to_string()),
        1 => prop::sample::select(vec!["-1", "nan", "1e3", "18446744073709551616", "x"])
            .prop_map(String::from),
    ]
}

/// Each flag, with values a user would plausibly give it: most cases then mix plausible values
/// with a few hostile ones, so both runs and errors are exercised.
fn flags() -> Vec<(&'static str, BoxedStrategy<String>)> {
    let float = |r: std::ops::Range<f32>| r.prop_map(|v| v.to_string()).boxed();
    let int = |r: std::ops::RangeInclusive<u64>| r.prop_map(|v| v.to_string()).boxed();
    vec![
        ("--temp", float(0.0..2.0)),
        ("--top-k", int(0..=64)),
        ("--top-p", float(0.0..1.0)),
        ("--min-p", float(0.0..1.0)),
        ("--repeat-penalty", float(0.5..2.0)),
        ("--repeat-last-n", int(0..=128)),
        ("--seed", any::<u64>().prop_map(|v| v.to_string()).boxed()),
        ("--ctx", int(8..=2048)),
        ("-t", int(1..=2)),
    ]
}

/// A value for each flag: absent, plausible, or anything.
fn flag_values() -> impl Strategy<Value = Vec<Option<String>>> {
    flags()
        .into_iter()
        .map(|(_, plausible)| {
            prop_oneof![3 => Just(None), 6 => plausible.prop_map(Some), 1 => value().prop_map(Some)]
        })
        .collect::<Vec<_>>()
}

fn demo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/stories260K-moe8x-finetuned-Q8_0.gguf")
}

fn check(values: &[Option<String>], n: &str) -> Result<(), TestCaseError> {
    let mut args = vec![
        "run".to_string(),
        "-m".into(),
        demo().to_str().unwrap().into(),
        "-p".into(),
        "Once upon a time".into(),
        format!("-n={n}"),
    ];
    for ((flag, _), v) in flags().iter().zip(values) {
        if let Some(v) = v {
            // `--flag=value`, so that a value starting with `-` is never taken for a flag.
            args.push(format!("{flag}={v}"));
        }
    }
    // `ulimit -v` is Linux's; elsewhere the run goes unlimited (the checks on its output stay).
    let limit = if cfg!(target_os = "linux") {
        format!("ulimit -v {ADDRESS_SPACE_KIB} && ")
    } else {
        String::new()
    };
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("{limit}exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_tandem"))
        // glibc reserves 64 MiB of address space per malloc arena, up to 8 per core: on a
        // many-core machine that alone could pass the limit.
        .env("MALLOC_ARENA_MAX", "2")
        .args(&args)
        .output()
        .expect("running sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ctx = format!("tandem {args:?}:\n{stderr}");
    prop_assert!(!stderr.contains("panicked"), "panic: {}", ctx);
    prop_assert!(!stderr.contains("memory allocation"), "abort: {}", ctx);
    let Some(code) = out.status.code() else {
        return Err(TestCaseError::fail(format!("killed by a signal: {ctx}")));
    };
    if code == 0 {
        RAN.fetch_add(1, Relaxed);
    } else {
        REFUSED.fetch_add(1, Relaxed);
        prop_assert!(code == 1 || code == 2, "exit {}: {}", code, ctx);
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        prop_assert_eq!(errors.len(), 1, "one error line: {}", ctx);
        prop_assert!(
            stderr.trim_end().ends_with(errors[0]),
            "the error is the last line: {}",
            ctx
        );
    }
    Ok(())
}

#[test]
fn random_flag_values_run_or_give_one_error_line() {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let config = ProptestConfig {
        cases,
        // A failing case shrinks through fresh processes; a few dozen steps pin it down.
        max_shrink_iters: 64,
        // No regression files: the printed seed repeats a run.
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let seed = common::proptest_seed(0x16_f1a9);
    println!("cli_fuzz: seed {seed} (TANDEM_PROPTEST_SEED={seed} repeats this run)");
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_exact_mut(8) {
        chunk.copy_from_slice(&seed.to_le_bytes());
    }
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    let mut runner = proptest::test_runner::TestRunner::new_with_rng(config, rng);
    if let Err(e) = runner.run(&(flag_values(), n_predict()), |(values, n)| {
        check(&values, &n)
    }) {
        panic!("seed {seed}: {e}");
    }
    println!(
        "cli_fuzz: {} runs generated text, {} gave one error line",
        RAN.load(Relaxed),
        REFUSED.load(Relaxed)
    );
}
