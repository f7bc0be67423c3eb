//! The container images as operators get them: built by `klutch_release::images` from the musl
//! release binaries, pushed with crane to a real Distribution registry over TLS (test CA), pulled
//! back by digest, inspected, unpacked, and each image's binary run from the image's root file
//! system with `--version` (chroot, so nothing from the host is borrowed).
//!
//! The binaries come from `$KLUTCH_IMAGE_BIN_DIR` when set (CI builds them once in its own step);
//! otherwise this test builds them itself with the unoptimised `ci-image` profile
//! ([`images::TEST_PROFILE`]), which cargo skips when it is fresh.

use std::path::{Path, PathBuf};
use std::process::Command;

use klutch_release::images::{self, BuiltImage, IMAGES, ImageBuild, MUSL_TARGET, NONROOT_ID};
use klutch_sdk::deploy::images::{OCI_REVISION, OCI_SOURCE, OCI_VERSION, SOURCE_URL};
use klutch_sdk::testenv::{Binaries, Registry};

const VERSION: &str = env!("CARGO_PKG_VERSION");
const REVISION: &str = "0123456789abcdef0123456789abcdef01234567";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("release/ is in the workspace")
        .to_owned()
}

/// The musl binaries: `$KLUTCH_IMAGE_BIN_DIR`, or built now (a no-op when fresh).
fn musl_binaries() -> PathBuf {
    if let Some(dir) = std::env::var_os("KLUTCH_IMAGE_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(images::cargo_build_args_with_profile(images::TEST_PROFILE))
        .current_dir(workspace_root())
        .env("CARGO_TARGET_DIR", &target_dir)
        .status()
        .expect("running cargo build for the musl release binaries");
    assert!(
        status.success(),
        "cargo build --target {MUSL_TARGET} failed"
    );
    target_dir
        .join(MUSL_TARGET)
        .join(images::profile_dir(images::TEST_PROFILE))
}

fn build(registry: &Registry, binaries: &Binaries, bin_dir: &Path, prefix: &str) -> ImageBuild {
    ImageBuild {
        version: VERSION.to_owned(),
        registry: format!("{}/{prefix}", registry.host()),
        revision: REVISION.to_owned(),
        bin_dir: bin_dir.to_owned(),
        ca_bundle: images::DEFAULT_CA_BUNDLE.into(),
        crane: binaries.crane().unwrap(),
        work_dir: tempfile::tempdir().unwrap().keep(),
        mtime: 0,
        registry_ca: Some(registry.ca_file().to_owned()),
        only: Vec::new(),
    }
}

fn crane(build: &ImageBuild, args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    build.crane(&args).unwrap()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[tokio::test]
async fn images_are_reproducible_complete_and_run_from_their_own_root() {
    let registry = Registry::start().await.unwrap();
    let binaries = Binaries::find().unwrap();
    let bin_dir = musl_binaries();

    let first = build(&registry, &binaries, &bin_dir, "klutch");
    let built = first.run().unwrap();
    assert_eq!(built.len(), IMAGES.len());
    // Same inputs, same digests: a second build into another repository changes nothing.
    let again = build(&registry, &binaries, &bin_dir, "again")
        .run()
        .unwrap();
    let digests = |images: &[BuiltImage]| -> Vec<String> {
        images.iter().map(|i| i.digest.clone()).collect()
    };
    assert_eq!(digests(&built), digests(&again), "builds are reproducible");

    let root_base = tempfile::tempdir().unwrap();
    for (image, spec) in built.iter().zip(IMAGES) {
        let by_digest = image.by_digest();
        // The tag points at the same manifest as the digest we were given.
        assert_eq!(
            crane(&first, &["digest", &image.by_tag()]).trim(),
            image.digest
        );
        let manifest = json(&crane(&first, &["manifest", &by_digest]));
        assert_eq!(
            manifest["mediaType"],
            "application/vnd.oci.image.manifest.v1+json"
        );
        assert_eq!(
            manifest["layers"].as_array().unwrap().len(),
            1,
            "{manifest}"
        );

        let config = json(&crane(&first, &["config", &by_digest]));
        assert_eq!(config["os"], "linux");
        assert_eq!(config["architecture"], "amd64");
        let c = &config["config"];
        assert_eq!(c["User"], format!("{NONROOT_ID}:{NONROOT_ID}"));
        assert_eq!(c["Entrypoint"], serde_json::json!([spec.entrypoint()]));
        assert_eq!(c["Labels"][OCI_SOURCE], SOURCE_URL);
        assert_eq!(c["Labels"][OCI_VERSION], format!("v{VERSION}"));
        assert_eq!(c["Labels"][OCI_REVISION], REVISION);

        // Pull by digest and unpack: the root file system is all the binary gets.
        let tarball = root_base.path().join(format!("{}.tar", image.name));
        crane(&first, &["export", &by_digest, tarball.to_str().unwrap()]);
        let root = root_base.path().join(image.name.as_str());
        std::fs::create_dir_all(&root).unwrap();
        let file = std::fs::File::open(&tarball).unwrap();
        let mut archive = tar::Archive::new(file);
        archive.set_preserve_permissions(true);
        archive.unpack(&root).unwrap();
        assert!(!root.join("bin/sh").exists(), "no shell in {}", image.name);
        assert!(root.join(images::CA_BUNDLE_PATH).is_file());
        let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
        assert!(passwd.contains("nonroot:x:65532:65532:"), "{passwd}");

        let output = Command::new("chroot")
            .arg(&root)
            .arg(spec.entrypoint())
            .arg("--version")
            .output()
            .expect("running chroot (the test runs as root, as CI does)");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{} --version in its image failed: {}{}",
            spec.binary,
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            stdout.contains(VERSION),
            "{} --version says {stdout:?}",
            spec.binary
        );
    }

    // The Crossplane packages: the provider with the controller image embedded as its runtime,
    // and the configuration; pushed with the Crossplane CLI and read back by digest.
    let controller = built
        .iter()
        .find(|i| i.name == "provider-anynines-controller")
        .unwrap();
    let packages = klutch_release::packages::PackageBuild {
        version: VERSION.to_owned(),
        registry: first.registry.clone(),
        crossplane: binaries.dir().join("crossplane"),
        crane: first.crane.clone(),
        registry_ca: first.registry_ca.clone(),
        provider_root: workspace_root().join("bins/provider-anynines/package"),
        configuration_root: workspace_root().join("crossplane-api"),
        work_dir: first.work_dir.clone(),
    }
    .run(controller)
    .unwrap();
    for package in &packages {
        let manifest = json(&crane(&first, &["manifest", &package.by_digest()]));
        let layers = manifest["layers"].as_array().unwrap();
        let xpkg_layers = layers
            .iter()
            .filter(|l| l["annotations"]["io.crossplane.xpkg"] == "base")
            .count();
        assert_eq!(xpkg_layers, 1, "{}: {manifest}", package.name);
        let tarball = root_base.path().join(format!("{}.tar", package.name));
        crane(
            &first,
            &["export", &package.by_digest(), tarball.to_str().unwrap()],
        );
        let mut archive = tar::Archive::new(std::fs::File::open(&tarball).unwrap());
        let mut package_yaml = String::new();
        let mut has_binary = false;
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().display().to_string();
            if path == "package.yaml" {
                std::io::Read::read_to_string(&mut entry, &mut package_yaml).unwrap();
            }
            has_binary |= path == "usr/local/bin/provider-anynines";
        }
        if package.name == "provider-anynines" {
            assert!(
                package_yaml.contains("kind: Provider"),
                "{package_yaml:.300}"
            );
            assert!(package_yaml.contains("kind: CustomResourceDefinition"));
            assert!(has_binary, "the runtime image is embedded");
            assert!(layers.len() > 1, "runtime layer + package layer");
        } else {
            assert!(
                package_yaml.contains("kind: Configuration"),
                "{package_yaml:.300}"
            );
            assert!(package_yaml.contains("kind: CompositeResourceDefinition"));
        }
    }

    // The release bundles pin the images by digest.
    let mut opts = klutch_release::Options::new(VERSION).unwrap();
    opts.registry = format!("{}/klutch", registry.host());
    for image in &built {
        opts.digests
            .insert(image.name.clone(), image.digest.clone());
    }
    let install = klutch_release::install(&opts)
        .unwrap()
        .to_yaml(&opts)
        .unwrap();
    let backend = built.iter().find(|i| i.name == "example-backend").unwrap();
    assert!(
        install.contains(&format!("{}@{}", backend.by_tag(), backend.digest)),
        "install bundle pins the backend by digest"
    );
}
