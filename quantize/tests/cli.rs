//! `tandem-quantize` errors through the binary: one `error:` line, as `tandem` prints them (no
//! `Error:` debug dump, no backtrace), exit 2 for a usage error and 1 for a failed conversion.

use std::process::{Command, Output};

fn quantize(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tandem-quantize"))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("running tandem-quantize")
}

/// The command's stderr, after checking it failed with `code` and printed one `error:` line.
fn fails(code: i32, args: &[&str]) -> String {
    let out = quantize(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    stderr
}

#[test]
fn a_failed_conversion_prints_one_error_line_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.gguf");
    let e = fails(
        1,
        &[
            "/nonexistent/model",
            out.to_str().unwrap(),
            "--type",
            "q8_0",
        ],
    );
    assert!(e.contains("/nonexistent/model"), "{e}");
    assert!(!out.exists());
}

#[test]
fn usage_errors_exit_2() {
    let e = fails(2, &["a", "b.gguf", "--type", "q3_x"]);
    assert!(e.contains("q3_x"), "{e}");
    let cpus = std::thread::available_parallelism().unwrap().get();
    let e = fails(2, &["a", "b.gguf", "--type", "q8_0", "-t", "0"]);
    assert!(e.contains(&format!("{cpus} logical CPUs")), "{e}");
}
