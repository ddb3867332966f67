//! The source tree's dependencies point one way: the top-level modules form no cycle, and the
//! block formats in `src/quant` do not reach into the SIMD kernels (the kernels depend on the
//! formats, which read as the specification the shaders mirror).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MODULES: [&str; 14] = [
    "gguf",
    "quant",
    "tensor",
    "model",
    "tokenizer",
    "sample",
    "session",
    "machine",
    "chat",
    "cli",
    "backend",
    "progress",
    "usage",
    "engine",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a source file belongs to (`src/model/forward.rs` → `model`,
/// `src/session.rs` → `session`); `None` for `lib.rs` and `main.rs`.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    MODULES.contains(&name).then(|| name.to_string())
}

/// The code of a file without its comment lines (doc links are not dependencies).
fn code(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::X` a file names, for X a top-level module.
fn crate_refs(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if MODULES.contains(&name.as_str()) {
            out.insert(name);
        }
    }
    out
}

#[test]
fn top_level_modules_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let Some(m) = module_of(&src, f) else {
            continue;
        };
        let refs = crate_refs(&code(f));
        deps.entry(m.clone())
            .or_default()
            .extend(refs.into_iter().filter(|r| *r != m));
    }
    // Depth-first search for a back edge.
    fn visit(
        m: &str,
        deps: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if done.contains(m) {
            return;
        }
        if let Some(i) = path.iter().position(|p| p == m) {
            panic!("module cycle: {} -> {m}", path[i..].join(" -> "));
        }
        path.push(m.to_string());
        for d in deps.get(m).into_iter().flatten() {
            visit(d, deps, path, done);
        }
        path.pop();
        done.insert(m.to_string());
    }
    let mut done = BTreeSet::new();
    for m in deps.keys() {
        visit(m, &deps, &mut Vec::new(), &mut done);
    }
    for (m, d) in &deps {
        eprintln!("{m} -> {d:?}");
    }
    assert!(
        deps["quant"].is_empty(),
        "quant is a leaf: {:?}",
        deps["quant"]
    );
}

#[test]
fn block_formats_do_not_import_the_kernels() {
    let quant = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/quant");
    let mut checked = 0;
    for e in std::fs::read_dir(&quant).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "rs") || p.ends_with("mod.rs") {
            continue;
        }
        let text = code(&p);
        for pattern in ["simd::", "super::simd", "quant::simd"] {
            assert!(
                !text.contains(pattern),
                "{} names `{pattern}`: block formats must not depend on the kernels",
                p.display()
            );
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} format files found");
}
