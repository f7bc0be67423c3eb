//! `testbins/build.sh` fails with one clear message when Go is missing, too old, or a build
//! breaks, and leaves no half-built cache entry behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testbins/build.sh")
}

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("klutch-build-script-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A fake `go` that reports `version` and fails every build.
fn fake_go(dir: &Path, version: &str) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let go = bin.join("go");
    std::fs::write(
        &go,
        format!(
            "#!/bin/sh\ncase \"$1 $2\" in\n  'env GOVERSION') echo {version} ;;\n  'env GOOS') echo linux ;;\n  \
             'env GOARCH') echo amd64 ;;\n  build*) echo 'pkg/x.go:1: undefined: y' >&2; exit 1 ;;\nesac\n"
        ),
    )
    .unwrap();
    Command::new("chmod").arg("+x").arg(&go).status().unwrap();
    bin
}

fn run(path_env: &str, cache: &Path, args: &[&str]) -> Output {
    Command::new("bash")
        .arg(script())
        .args(args)
        .env("PATH", path_env)
        .env("KLUTCH_TESTBIN_CACHE", cache.join("cache"))
        .env("KLUTCH_TESTBIN_DIR", cache.join("bin-out"))
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn missing_go_says_what_to_install() {
    let dir = scratch("nogo");
    let out = run("/usr/bin:/bin", &dir, &["etcd"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("no Go toolchain on PATH") && err.contains("KLUTCH_TESTBIN_DIR"),
        "{err}"
    );
    assert!(
        !err.contains("line "),
        "one message, not a shell trace: {err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn old_go_is_refused() {
    let dir = scratch("oldgo");
    let bin = fake_go(&dir, "go1.22.5");
    let out = run(&format!("{}:/usr/bin:/bin", bin.display()), &dir, &["etcd"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("Go go1.22.5 is too old"),
        "{}",
        stderr(&out)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn failed_build_shows_the_error_and_caches_nothing() {
    let dir = scratch("fail");
    let bin = fake_go(&dir, "go1.26.8");
    let out = run(&format!("{}:/usr/bin:/bin", bin.display()), &dir, &["etcd"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("undefined: y"),
        "the compiler's message is shown: {err}"
    );
    assert!(
        err.contains("building etcd v3.6.14 failed; full log:"),
        "{err}"
    );
    let entries: Vec<String> = std::fs::read_dir(dir.join("cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("etcd-") && !n.ends_with(".lock") && !n.ends_with(".log"))
        .collect();
    assert!(
        entries.is_empty(),
        "no cache entry for a failed build: {entries:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unknown_component_is_named() {
    let dir = scratch("unknown");
    let bin = fake_go(&dir, "go1.26.8");
    let out = run(&format!("{}:/usr/bin:/bin", bin.display()), &dir, &["kind"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("unknown component 'kind'"),
        "{}",
        stderr(&out)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
