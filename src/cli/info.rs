//! `tandem info FILE`.

use std::path::Path;

pub fn run(file: &Path) -> anyhow::Result<()> {
    anyhow::bail!("{}: not implemented yet", file.display())
}
