//! `tandem devices [--json]`: every Vulkan device, what it offers tandem, and which one `--gpu auto`
//! would pick.

use anyhow::Result;
use serde_json::json;
use tandem::backend::offload::human_bytes;
use tandem::backend::vulkan::error::version_string;
use tandem::backend::vulkan::{DeviceInfo, DeviceKind, Instance};

#[derive(clap::Args, Debug)]
pub struct DevicesArgs {
    /// Print one JSON object instead of text.
    #[arg(long = "json")]
    json: bool,
}

pub fn run(args: &DevicesArgs) -> Result<()> {
    // No loader or no device is an answer, not an error: the CPU path needs neither.
    let devices = match Instance::new().and_then(|i| i.devices()) {
        Ok(d) => d,
        Err(e) => {
            if args.json {
                println!("{}", json!({ "devices": [], "error": e.to_string() }));
            } else {
                println!("no Vulkan devices: {e}");
            }
            return Ok(());
        }
    };
    let auto = auto_pick(&devices);
    if args.json {
        let list: Vec<_> = devices
            .iter()
            .map(|d| to_json(d, auto == Some(d.index)))
            .collect();
        println!("{}", json!({ "devices": list, "auto": auto }));
        return Ok(());
    }
    if devices.is_empty() {
        println!("no Vulkan devices found");
    }
    for d in &devices {
        print!("{}", render(d, auto == Some(d.index)));
    }
    Ok(())
}

/// What `--gpu auto` picks: the first usable discrete GPU, else integrated.
fn auto_pick(devices: &[DeviceInfo]) -> Option<usize> {
    let pick = |kind| {
        devices
            .iter()
            .find(|d| d.kind == kind && d.unsuitable().is_none())
            .map(|d| d.index)
    };
    pick(DeviceKind::Discrete).or_else(|| pick(DeviceKind::Integrated))
}

fn features(d: &DeviceInfo) -> Vec<&'static str> {
    let f = d.features;
    [
        (f.storage_8bit, "storage8"),
        (f.storage_16bit, "storage16"),
        (f.float16, "float16"),
        (f.int8, "int8"),
        (f.int_dot_product, "int-dot-product"),
        (f.subgroup_arithmetic, "subgroup-arithmetic"),
    ]
    .into_iter()
    .filter_map(|(has, name)| has.then_some(name))
    .collect()
}

fn render(d: &DeviceInfo, auto: bool) -> String {
    let heaps: Vec<String> = d
        .local_heaps
        .iter()
        .map(|h| match h.budget {
            Some(b) => format!("{} (budget {})", human_bytes(h.size), human_bytes(b)),
            None => human_bytes(h.size),
        })
        .collect();
    let usable = match d.unsuitable() {
        Some(why) => format!("not usable: {why}"),
        None if auto => "used by --gpu auto".into(),
        None if d.kind == DeviceKind::Cpu => "used only when named (--gpu N)".into(),
        None => "usable with --gpu N".into(),
    };
    format!(
        "{index}: {name} ({kind}) - {usable}\n\
         \x20  driver {driver}, Vulkan {api}\n\
         \x20  device-local memory {heaps}\n\
         \x20  subgroup size {sg}, max storage buffer {range}, max allocation {alloc}\n\
         \x20  features: {features}\n",
        index = d.index,
        name = d.name,
        kind = d.kind.name(),
        driver = d.driver,
        api = version_string(d.api_version),
        heaps = if heaps.is_empty() {
            "none".into()
        } else {
            heaps.join(", ")
        },
        sg = d.subgroup_size,
        range = human_bytes(d.max_storage_buffer_range),
        alloc = human_bytes(d.max_allocation_size),
        features = features(d).join(", "),
    )
}

fn to_json(d: &DeviceInfo, auto: bool) -> serde_json::Value {
    json!({
        "index": d.index,
        "name": d.name,
        "type": d.kind.name(),
        "driver": d.driver,
        "vulkan": version_string(d.api_version),
        "device_local_heaps": d.local_heaps.iter().map(|h| json!({
            "bytes": h.size,
            "budget_bytes": h.budget,
        })).collect::<Vec<_>>(),
        "subgroup_size": d.subgroup_size,
        "max_storage_buffer_range": d.max_storage_buffer_range,
        "max_allocation_size": d.max_allocation_size,
        "features": {
            "storage_8bit": d.features.storage_8bit,
            "storage_16bit": d.features.storage_16bit,
            "float16": d.features.float16,
            "int8": d.features.int8,
            "int_dot_product": d.features.int_dot_product,
            "subgroup_arithmetic": d.features.subgroup_arithmetic,
        },
        "usable": d.unsuitable().is_none(),
        "unusable_reason": d.unsuitable(),
        "auto": auto,
    })
}
