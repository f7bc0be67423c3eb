//! klutch-osb embedded in a program that is not part of this workspace: a host crate is
//! generated in a temporary directory (path dependency on this crate), built with cargo, and
//! run against a local HTTPS server whose CA only the host knows. The host makes requests with
//! its own `reqwest::Client` (built the plain way, relying on reqwest's defaults) and with a
//! `klutch_osb::Client`, then checks that no process-wide rustls provider was installed.
//!
//! Two hosts: reqwest with its default features (rustls on aws-lc-rs), and reqwest with
//! `default-features = false` and native-tls (OpenSSL). klutch-osb adds reqwest's
//! `rustls-no-provider` feature and rustls' `ring` to the host's graph; neither may make the
//! host's own client panic, and klutch-osb's client must work without a global provider.
//!
//! The build reuses `<target dir>/osb-embed-host` (first run: a few minutes, mostly aws-lc-sys
//! and OpenSSL bindings; later runs: klutch-osb and the host only). It runs `cargo build
//! --offline` against the local registry cache and fetches only when something is missing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::tls::{pki, serve};

const HOST_MAIN: &str = r##"
//! A host program embedding klutch-osb.
#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let url = args.next().expect("url");
    let ca = std::fs::read(args.next().expect("CA file")).expect("CA readable");

    // The host's own client, built the ordinary way: reqwest picks its TLS backend and, for
    // rustls, its crypto provider; nobody installed a process-wide provider.
    let own = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA is PEM"))
        .build()
        .expect("the host's reqwest client builds");
    let r = own
        .get(format!("{url}/v2/catalog"))
        .header("X-Broker-API-Version", "2.17")
        .send()
        .await
        .expect("HTTPS with the host's own client");
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(r.text().await.unwrap(), r#"{"services":[]}"#);

    // klutch-osb's client, with its explicit TLS configuration.
    let osb = klutch_osb::Client::builder(&url)
        .ca_bundle_pem(ca.clone())
        .build()
        .expect("the klutch-osb client builds");
    let catalog = osb.catalog().await.expect("HTTPS with klutch-osb's client").outcome;
    assert!(catalog.services.is_empty());

    // The host's client again, after klutch-osb's was used.
    own.get(format!("{url}/v2/catalog"))
        .send()
        .await
        .expect("the host's client still works");

    assert!(
        rustls::crypto::CryptoProvider::get_default().is_none(),
        "a process-wide rustls provider was installed"
    );
    println!("embedded-ok");
}
"##;

/// The workspace's target directory, from this test binary's path
/// (`<target>/<profile>/deps/<binary>`), unless `CARGO_TARGET_DIR` says otherwise.
fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().expect("test binary path");
    exe.ancestors()
        .nth(3)
        .expect("test binary lives in <target>/<profile>/deps")
        .to_path_buf()
}

fn write_host(dir: &Path, name: &str, reqwest_dep: &str) {
    let osb = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = format!(
        r#"[package]
name = "{name}"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
klutch-osb = {{ path = {osb:?} }}
{reqwest_dep}
rustls = {{ version = "0.23", default-features = false }}
tokio = {{ version = "1", features = ["macros", "rt-multi-thread"] }}

[workspace]
"#,
        osb = osb.display().to_string()
    );
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    std::fs::write(dir.join("src/main.rs"), HOST_MAIN).unwrap();
    // Start from the workspace's lock file: the versions klutch-osb is tested with, and a
    // resolution the local registry cache can satisfy.
    std::fs::copy(osb.join("../Cargo.lock"), dir.join("Cargo.lock")).unwrap();
}

fn cargo(dir: &Path, target: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO"))
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo runs")
}

/// Builds the host (offline; fetching first only when the cache lacks a crate) and returns its
/// binary.
fn build_host(name: &str, reqwest_dep: &str) -> PathBuf {
    let src = tempfile::tempdir().unwrap();
    write_host(src.path(), name, reqwest_dep);
    let target = target_dir().join("osb-embed-host");
    let started = Instant::now();
    let mut out = cargo(src.path(), &target, &["build", "--offline"]);
    if !out.status.success() {
        eprintln!(
            "offline build of {name} failed; fetching its dependencies:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let fetch = cargo(src.path(), &target, &["fetch"]);
        assert!(
            fetch.status.success(),
            "cargo fetch for {name}:\n{}",
            String::from_utf8_lossy(&fetch.stderr)
        );
        out = cargo(src.path(), &target, &["build", "--offline"]);
    }
    assert!(
        out.status.success(),
        "building host {name}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "host {name} built in {:.1} s (target dir {})",
        started.elapsed().as_secs_f64(),
        target.display()
    );
    target.join("debug").join(name)
}

fn run_host(bin: &Path, url: &str, ca: &Path) {
    let out = Command::new(bin)
        .args([url, &ca.display().to_string()])
        .output()
        .expect("host runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("embedded-ok"),
        "host {} failed ({}):\n{stdout}\n{}",
        bin.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn host_programs_keep_their_own_tls_whatever_reqwest_features_they_chose() {
    let p = pki();
    let port = serve(&p);
    let url = format!("https://localhost:{port}");
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &p.ca_pem).unwrap();

    let default_tls = build_host("osb-host-default-tls", r#"reqwest = "0.13.5""#);
    run_host(&default_tls, &url, &ca);

    let native_tls = build_host(
        "osb-host-native-tls",
        r#"reqwest = { version = "0.13.5", default-features = false, features = ["native-tls"] }"#,
    );
    run_host(&native_tls, &url, &ca);
}
