//! A GPU that cannot be used never stops a run: a device too old for the kernels, a VRAM budget
//! too small for one expert, no Vulkan driver at all, a device index that does not exist. Each
//! gives one `gpu:` line on stderr naming the reason, and the run goes on on the CPU with the
//! same output as `--gpu none`.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};
use tandem::backend::offload::{offload, GpuSettings, GpuStatus};
use tandem::backend::vulkan::{GpuChoice, GpuOptions};
use tandem::model::Logits;

fn demo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/stories260K-moe8x-finetuned-Q8_0.gguf")
}

fn tandem(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("running tandem")
}

/// `run` on the demo model with `extra` flags: (stdout, the stderr lines starting `gpu:`).
fn run(extra: &[&str], env: &[(&str, &str)]) -> (String, Vec<String>) {
    let demo = demo();
    let mut args = vec![
        "run",
        "-m",
        demo.to_str().unwrap(),
        "-p",
        "Once upon a time",
    ];
    args.extend_from_slice(&["-n", "12", "--temp", "0"]);
    args.extend_from_slice(extra);
    let out = tandem(&args, env);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "tandem {args:?} failed:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let gpu_lines = stderr
        .lines()
        .filter(|l| l.starts_with("gpu:"))
        .map(String::from)
        .collect();
    (String::from_utf8(out.stdout).unwrap(), gpu_lines)
}

/// Exactly one `gpu:` line, saying the run went on on the CPU, and containing `why`.
fn one_fallback_line(lines: &[String], why: &str) {
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains(why) && lines[0].ends_with("running on the CPU"),
        "{lines:?}"
    );
}

#[test]
fn no_vulkan_driver_falls_back_with_one_line() {
    // The loader finds no driver at all.
    let none = [
        ("VK_ICD_FILENAMES", "/nonexistent.json"),
        ("VK_DRIVER_FILES", "/nonexistent.json"),
    ];
    let (cpu, lines) = run(&["--gpu", "none"], &[]);
    assert!(lines.is_empty(), "{lines:?}");
    let (text, lines) = run(&["--gpu", "0"], &none);
    one_fallback_line(&lines, "no Vulkan device found");
    assert_eq!(text, cpu);
    // `auto` on a machine without a GPU is the ordinary CPU-only case: nothing is said.
    let (text, lines) = run(&[], &none);
    assert!(lines.is_empty(), "{lines:?}");
    assert_eq!(text, cpu);

    // `devices` answers rather than fails.
    let out = tandem(&["devices"], &none);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("no Vulkan devices"));
    let out = tandem(&["devices", "--json"], &none);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["devices"], serde_json::json!([]));
    assert!(v["error"].as_str().unwrap().contains("no Vulkan device"));
}

#[test]
fn a_budget_too_small_for_one_expert_falls_back_with_one_line() {
    if common::gpu::open(GpuOptions::default()).is_none() {
        return;
    }
    let gpu = common::gpu::index().to_string();
    let (cpu, _) = run(&["--gpu", "none"], &[]);
    let (text, lines) = run(&["--gpu", &gpu, "--vram-budget", "1K"], &[]);
    one_fallback_line(
        &lines,
        "a VRAM budget of 1.0 KiB holds no expert (one takes",
    );
    assert_eq!(text, cpu);
    // A device index that does not exist.
    let (text, lines) = run(&["--gpu", "99"], &[]);
    one_fallback_line(&lines, "there is no Vulkan device 99");
    assert_eq!(text, cpu);
    // And a budget with room: every expert goes, and the story is the same.
    let (text, lines) = run(&["--gpu", &gpu, "--vram-budget", "64M"], &[]);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("gpu: 40 of 40 experts on"),
        "{lines:?}"
    );
    assert_eq!(text, cpu);
}

/// A device without what the kernels need (here: Vulkan 1.0, as an instance capped at 1.0
/// reports every device) is refused with the reason, and the model runs on the CPU.
#[test]
fn a_device_too_old_falls_back_and_the_model_runs() {
    if common::gpu::open(GpuOptions::default()).is_none() {
        return;
    }
    let engine = tandem::engine::Engine::open(&demo(), Default::default()).unwrap();
    let settings = GpuSettings {
        choice: GpuChoice::Index(common::gpu::index()),
        options: GpuOptions {
            max_api: ash::vk::API_VERSION_1_0,
            ..GpuOptions::default()
        },
        ..GpuSettings::default()
    };
    let (model, status) = offload(engine.model().unwrap(), &settings, &mut |_, _| {});
    let GpuStatus::Fallback(why) = status else {
        panic!("expected a fall back, got {status:?}");
    };
    assert!(
        why.contains("it supports Vulkan 1.0") && why.contains("need 1.1"),
        "{why}"
    );
    let ids = engine.tokenizer.encode("Once upon a time", true).unwrap();
    let mut s = engine.session(&model, 32).unwrap();
    let got = s.prefill(&ids, Logits::Last, None).unwrap();
    let cpu = engine.model().unwrap();
    let mut s = engine.session(&cpu, 32).unwrap();
    assert_eq!(got, s.prefill(&ids, Logits::Last, None).unwrap());
}

#[test]
fn bad_gpu_flags_are_named() {
    let demo = demo();
    for (flag, value, says) in [
        ("--gpu", "first", "is not a device"),
        ("--gpu-experts", "most", "is not an expert count"),
        ("--vram-budget", "6Q", "is not a size"),
    ] {
        let out = tandem(
            &["run", "-m", demo.to_str().unwrap(), "-p", "x", flag, value],
            &[],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(flag) && stderr.contains(says), "{stderr}");
    }
}
