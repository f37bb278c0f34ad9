//! Finding Weft's own binaries next to the running one.

use std::path::{Path, PathBuf};

/// A Weft binary that is not where it should be.
#[derive(Debug, thiserror::Error)]
#[error(
    "{name} not found (looked in {looked}); build it first with `cargo build --bins`, or set WEFT_BIN_DIR"
)]
pub struct BinError {
    /// The binary.
    pub name: String,
    /// Where it was looked for.
    pub looked: String,
}

/// The path of the Weft binary `name`: in `$WEFT_BIN_DIR`, else beside the current executable
/// or one directory up (test binaries live in `target/<profile>/deps`).
pub fn bin_path(name: &str) -> Result<PathBuf, BinError> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::var_os("WEFT_BIN_DIR") {
        dirs.push(dir.into());
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        dirs.push(dir.to_path_buf());
        if let Some(up) = dir.parent() {
            dirs.push(up.to_path_buf());
        }
    }
    dirs.iter()
        .map(|d| d.join(name))
        .find(|p| is_file(p))
        .ok_or_else(|| BinError {
            name: name.to_string(),
            looked: dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

fn is_file(p: &Path) -> bool {
    p.metadata().map(|m| m.is_file()).unwrap_or(false)
}
