//! Writes Klutch's Crossplane configuration package, generated from `klutch_a9s::claims`, to a
//! directory (default: `crossplane-api/` in the repository).
//!
//! ```text
//! cargo run -p klutch-a9s --example crossplane-api [-- <dir>]
//! ```
//!
//! Environment:
//!
//! * `KLUTCH_ORGANIZATION_GUID`, `KLUTCH_SPACE_GUID`: the organization and space GUIDs the a9s
//!   compositions provision instances in. Default: Klutch v1.5's values (the committed package
//!   uses them). Set both to give a platform its own broker-side accounting; write such a
//!   package to another directory, the tests compare `crossplane-api/` with the defaults.

use std::path::PathBuf;

use klutch_a9s::claims::composition::Options;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crossplane-api"));
    let mut options = Options::default();
    if let Ok(guid) = std::env::var("KLUTCH_ORGANIZATION_GUID") {
        options.organization_guid = guid;
    }
    if let Ok(guid) = std::env::var("KLUTCH_SPACE_GUID") {
        options.space_guid = guid;
    }
    for (path, yaml) in klutch_a9s::claims::package::files_with(&options)? {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, yaml)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
