//! Writes the CRDs of `klutch_sdk::api` as YAML, one file per CRD, named like Klutch's
//! (`<group>_<plural>.yaml`):
//!
//! ```text
//! cargo run -p klutch-sdk --example crdgen              # into deploy/crd/ of this repository
//! cargo run -p klutch-sdk --example crdgen -- DIR       # somewhere else
//! ```
//!
//! The test `crds_are_up_to_date` fails when the committed files differ from the types.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args_os().nth(1).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/crd"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir)?;
    for (file, yaml) in klutch_sdk::api::crd_files()? {
        let path = dir.join(file);
        std::fs::write(&path, yaml)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
