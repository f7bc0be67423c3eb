//! Writes Klutch's Crossplane configuration package, generated from `klutch_a9s::claims`, to a
//! directory (default: `crossplane-api/` in the repository).
//!
//! ```text
//! cargo run -p klutch-a9s --example crossplane-api [-- <dir>]
//! ```

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crossplane-api"));
    for (path, yaml) in klutch_a9s::claims::package::files()? {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, yaml)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
