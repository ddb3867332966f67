//! `tandem devices [--json]` on the test device: every field the listing promises, and what
//! `--gpu auto` would pick.

mod common;

use std::process::Command;

fn devices(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .arg("devices")
        .args(args)
        .output()
        .expect("running tandem");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn devices_lists_what_each_offers() {
    let Some(gpu) = common::gpu::open(Default::default()) else {
        return;
    };
    let v: serde_json::Value = serde_json::from_str(devices(&["--json"]).trim()).unwrap();
    let d = &v["devices"][common::gpu::index()];
    assert_eq!(d["name"], gpu.info.name.as_str());
    assert_eq!(d["type"], gpu.info.kind.name());
    assert!(d["driver"].as_str().is_some_and(|s| !s.is_empty()), "{d}");
    assert!(d["vulkan"].as_str().unwrap().starts_with("1."), "{d}");
    let heaps = d["device_local_heaps"].as_array().unwrap();
    assert!(
        !heaps.is_empty() && heaps.iter().all(|h| h["bytes"].as_u64() > Some(0)),
        "{d}"
    );
    assert!(d["subgroup_size"].as_u64() >= Some(1), "{d}");
    assert!(
        d["max_storage_buffer_range"].as_u64() >= Some(1 << 20),
        "{d}"
    );
    for f in [
        "storage_8bit",
        "storage_16bit",
        "float16",
        "int8",
        "int_dot_product",
        "subgroup_arithmetic",
    ] {
        assert!(d["features"][f].is_boolean(), "{f}: {d}");
    }
    assert_eq!(d["usable"], true);
    // `auto` never picks a CPU driver.
    if gpu.info.kind == tandem::backend::vulkan::DeviceKind::Cpu {
        assert_eq!(d["auto"], false);
    }
    let text = devices(&[]);
    let head = format!(
        "{}: {} ({})",
        common::gpu::index(),
        gpu.info.name,
        gpu.info.kind.name()
    );
    assert!(text.contains(&head), "{text}");
    assert!(
        text.contains("subgroup size") && text.contains("features:"),
        "{text}"
    );
}
