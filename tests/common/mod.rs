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

/// Like [`fixtures`], joined with `rel`.
pub fn fixture(rel: &str) -> Option<PathBuf> {
    fixtures().map(|d| d.join(rel))
}

pub mod convert;
pub mod gguf_edit;
pub mod hf;
pub mod isa;
pub mod model;
