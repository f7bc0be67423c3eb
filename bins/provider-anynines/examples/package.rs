//! Writes the Crossplane provider package: `package/crossplane.yaml` and one CRD per file in
//! `package/crds/`, named like Klutch's (`<group>_<plural>.yaml`).
//!
//! ```text
//! cargo run -p provider-anynines --example package            # into bins/provider-anynines/package
//! cargo run -p provider-anynines --example package -- DIR     # somewhere else
//! ```
//!
//! The test `committed_package_is_up_to_date` fails when the committed files differ.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args_os().nth(1).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("package"),
        PathBuf::from,
    );
    for (file, text) in klutch_a9s::provider::package_files()? {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
