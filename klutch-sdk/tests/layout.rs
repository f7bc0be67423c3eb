//! The library-first layout, kept true: no import cycle between the modules of any crate, and the
//! reference binaries stay wiring (their `src/` within the line budgets of docs/architecture.md).

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("klutch-sdk lives in the workspace")
        .to_path_buf()
}

fn lines_of_rust(dir: &Path) -> usize {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            total += lines_of_rust(&path);
        } else if path.extension().is_some_and(|e| e == "rs") {
            total += std::fs::read_to_string(&path)
                .expect("a source file")
                .lines()
                .count();
        }
    }
    total
}

#[test]
fn no_module_of_any_crate_imports_in_a_cycle() {
    let root = workspace();
    let out = Command::new("python3")
        .arg(root.join("scripts/module-cycles"))
        .current_dir(&root)
        .output()
        .expect("python3 runs scripts/module-cycles");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "scripts/module-cycles found import cycles:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("no import cycles"), "{stdout}");
}

#[test]
fn the_reference_binaries_are_wiring() {
    let root = workspace();
    for (bin, budget) in [
        ("konnector", 400),
        ("provider-anynines", 600),
        ("example-backend", 600),
        ("a9s-dev-broker", 200),
    ] {
        let lines = lines_of_rust(&root.join("bins").join(bin).join("src"));
        assert!(
            lines <= budget,
            "bins/{bin}/src has {lines} lines, more than its budget of {budget}: move the engine into the crates"
        );
    }
}
