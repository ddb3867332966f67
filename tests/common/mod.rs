//! Shared helpers for integration tests: locating `../shared/fixtures`.
#![allow(dead_code)]

use std::path::PathBuf;

/// The fixtures directory (`$TANDEM_FIXTURES`, or `../shared/fixtures` beside the checkout).
///
/// Returns `None` (and says so on stderr) when it is missing, so the caller can skip. Under CI
/// (`CI=true`) a missing fixtures directory is a failure, never a skip.
pub fn fixtures() -> Option<PathBuf> {
    let dir = std::env::var_os("TANDEM_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures"));
    if dir.join("README.md").is_file() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!(
            "fixtures missing at {} (CI=true: this is a failure, not a skip)",
            dir.display()
        );
    }
    eprintln!("SKIPPED: fixtures missing at {}", dir.display());
    None
}

/// A property test's seed: `TANDEM_PROPTEST_SEED`, else `ci` under CI (`CI=true`) so that a
/// failure there reproduces, else a fresh one per run so that local runs explore. The caller
/// prints it.
pub fn proptest_seed(ci: u64) -> u64 {
    if let Ok(v) = std::env::var("TANDEM_PROPTEST_SEED") {
        return v
            .parse()
            .unwrap_or_else(|_| panic!("TANDEM_PROPTEST_SEED={v:?} is not a u64"));
    }
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        return ci;
    }
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now())
}

/// Like [`fixtures`], joined with `rel`.
pub fn fixture(rel: &str) -> Option<PathBuf> {
    fixtures().map(|d| d.join(rel))
}

pub mod convert;
pub mod gguf_edit;
pub mod gpu;
pub mod hf;
pub mod isa;
pub mod model;
