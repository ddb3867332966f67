//! `tandem info FILE`: header, metadata (arrays and long strings abbreviated), tensor table, and
//! totals per ggml type.

use anyhow::Context;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use tandem::gguf::{Array, GgufFile, GgufString, Value};
use tandem::quant::GgmlType;

/// Array elements shown before the rest is elided.
const ARRAY_HEAD: usize = 5;
/// Characters of a string value shown before it is shortened.
const STRING_HEAD: usize = 64;
/// Characters of a string inside an array shown before it is shortened.
const ELEMENT_STRING_HEAD: usize = 24;

#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    /// The GGUF file.
    #[arg(required_unless_present = "model", conflicts_with = "model")]
    file: Option<PathBuf>,
    /// The GGUF file, as the other commands take it.
    #[arg(short = 'm', long = "model")]
    model: Option<PathBuf>,
}

pub fn run(args: &InfoArgs) -> anyhow::Result<()> {
    let file = args
        .file
        .as_deref()
        .or(args.model.as_deref())
        .context("give the GGUF file")?;
    let gguf = super::common::open_gguf(file)?;
    let text = render(file, &gguf);
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .context("writing to stdout")
}

fn render(path: &Path, f: &GgufFile) -> String {
    let mut s = String::new();
    header(&mut s, path, f);
    metadata(&mut s, f);
    tensors(&mut s, f);
    s
}

fn header(s: &mut String, path: &Path, f: &GgufFile) {
    let _ = writeln!(s, "file           {}", path.display());
    let _ = writeln!(s, "file size      {}", bytes(f.file_size()));
    let _ = writeln!(s, "GGUF version   {}", f.version());
    let _ = writeln!(s, "alignment      {}", f.alignment());
    let _ = writeln!(s, "tensors        {}", f.tensors().len());
    let _ = writeln!(s, "metadata keys  {}", f.metadata().len());
    let _ = writeln!(s, "data offset    {}", f.data_offset());
}

fn metadata(s: &mut String, f: &GgufFile) {
    let entries = f.metadata().entries();
    let _ = writeln!(s, "\nmetadata ({} keys):", entries.len());
    let key_width = entries
        .iter()
        .map(|e| e.key.len())
        .max()
        .unwrap_or(0)
        .min(48);
    for e in entries {
        let _ = writeln!(
            s,
            "  {:key_width$}  {:<16}  {}",
            e.key,
            e.value.type_description(),
            value(&e.value)
        );
    }
}

fn tensors(s: &mut String, f: &GgufFile) {
    let ts = f.tensors();
    let _ = writeln!(s, "\ntensors ({}):", ts.len());
    let name_width = ts.iter().map(|t| t.name().len()).max().unwrap_or(4).max(4);
    let shapes: Vec<String> = ts.iter().map(|t| format!("{:?}", t.ne())).collect();
    let shape_width = shapes.iter().map(String::len).max().unwrap_or(5).max(5);
    let _ = writeln!(
        s,
        "  {:name_width$}  {:<7}  {:shape_width$}  {:>12}  {:>12}",
        "name", "type", "shape", "bytes", "offset"
    );
    for (t, shape) in ts.iter().zip(&shapes) {
        let _ = writeln!(
            s,
            "  {:name_width$}  {:<7}  {:shape_width$}  {:>12}  {:>12}",
            t.name(),
            t.ty().name(),
            shape,
            t.nbytes(),
            t.offset()
        );
    }

    let total: u64 = ts.iter().map(|t| t.nbytes()).sum();
    let params: u64 = ts.iter().map(|t| t.n_elements()).sum();
    let _ = writeln!(s, "\ntotal tensor bytes  {}", bytes(total));
    let _ = writeln!(s, "parameters          {params} ({})", count(params));

    let mut by_type: BTreeMap<GgmlType, (usize, u64)> = BTreeMap::new();
    for t in ts {
        let e = by_type.entry(t.ty()).or_default();
        e.0 += 1;
        e.1 += t.nbytes();
    }
    let mut rows: Vec<_> = by_type.into_iter().collect();
    rows.sort_by(|a, b| b.1 .1.cmp(&a.1 .1).then(a.0.cmp(&b.0)));
    let _ = writeln!(s, "\nbytes by type:");
    let _ = writeln!(
        s,
        "  {:<7}  {:>7}  {:>12}  {:>6}",
        "type", "tensors", "bytes", "%"
    );
    for (ty, (n, b)) in rows {
        let pct = if total == 0 {
            0.0
        } else {
            100.0 * b as f64 / total as f64
        };
        let _ = writeln!(s, "  {:<7}  {n:>7}  {b:>12}  {pct:>6.2}", ty.name());
    }
}

/// A value for display: scalars as they are, strings quoted and shortened, arrays by length
/// and first elements.
fn value(v: &Value) -> String {
    match v {
        Value::String(st) => string(st, STRING_HEAD),
        Value::Array(a) => array(a),
        Value::F32(x) => x.to_string(),
        Value::F64(x) => x.to_string(),
        Value::Bool(x) => x.to_string(),
        v => v.as_i128().map(|i| i.to_string()).unwrap_or_default(),
    }
}

fn array(a: &Array) -> String {
    let head: Vec<String> = match a {
        Array::String(v) => v
            .iter()
            .take(ARRAY_HEAD)
            .map(|st| string(st, ELEMENT_STRING_HEAD))
            .collect(),
        Array::Array(v) => v
            .iter()
            .take(ARRAY_HEAD)
            .map(|inner| format!("[array of {}; {}]", inner.elem_type(), inner.len()))
            .collect(),
        Array::U8(v) => first(v),
        Array::I8(v) => first(v),
        Array::U16(v) => first(v),
        Array::I16(v) => first(v),
        Array::U32(v) => first(v),
        Array::I32(v) => first(v),
        Array::F32(v) => first(v),
        Array::Bool(v) => first(v),
        Array::U64(v) => first(v),
        Array::I64(v) => first(v),
        Array::F64(v) => first(v),
    };
    let more = if a.len() > ARRAY_HEAD { ", ..." } else { "" };
    format!("[{}] = [{}{more}]", a.len(), head.join(", "))
}

fn first<T: ToString>(v: &[T]) -> Vec<String> {
    v.iter().take(ARRAY_HEAD).map(T::to_string).collect()
}

/// Quoted with escapes; beyond `max` characters, shortened with the full byte length noted.
fn string(st: &GgufString, max: usize) -> String {
    let text = st.to_string_lossy();
    if text.chars().count() <= max {
        return format!("{text:?}");
    }
    let head: String = text.chars().take(max).collect();
    format!("{head:?}... ({} bytes)", st.as_bytes().len())
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut x = n as f64 / 1024.0;
    let mut unit = 0;
    while x >= 1024.0 && unit + 1 < UNITS.len() {
        x /= 1024.0;
        unit += 1;
    }
    format!("{n} bytes ({x:.1} {})", UNITS[unit])
}

fn count(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.2} B", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.2} M", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.2} K", n as f64 / 1e3),
        n => n.to_string(),
    }
}
