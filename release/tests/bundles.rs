//! The bundles' contents: which objects each holds (snapshots), the configure placeholders, and
//! the command that writes them.

use klutch_release::{BundleKind, Options};
use serde_json::Value;

fn index(objects: &[Value]) -> Vec<String> {
    objects
        .iter()
        .map(|o| {
            let ns = o["metadata"]["namespace"]
                .as_str()
                .map(|n| format!("{n}/"))
                .unwrap_or_default();
            format!(
                "{} {} {ns}{}",
                o["apiVersion"].as_str().unwrap(),
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn install_holds_crossplane_packages_crds_and_backend() {
    let opts = Options::new("1.6.0").unwrap();
    let install = klutch_release::install(&opts).unwrap();
    insta::assert_yaml_snapshot!(index(&install.objects));
}

#[test]
fn update_holds_only_image_references() {
    let opts = Options::new("1.6.0").unwrap();
    let update = klutch_release::update(&opts).unwrap();
    insta::assert_snapshot!(update.to_yaml(&opts).unwrap());
}

#[test]
fn configure_has_placeholders_for_every_local_value() {
    let opts = Options::new("1.6.0").unwrap();
    let configure = klutch_release::configure(&opts).unwrap();
    insta::assert_snapshot!(configure.to_yaml(&opts).unwrap());
    insta::assert_yaml_snapshot!(klutch_release::configure_variables());
}

#[test]
fn patch_releases_ship_no_configure_bundle() {
    let kinds = |v| {
        klutch_release::bundles(&Options::new(v).unwrap())
            .unwrap()
            .into_iter()
            .map(|b| b.kind)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        kinds("1.6.0"),
        [
            BundleKind::Install,
            BundleKind::Update,
            BundleKind::Configure
        ]
    );
    assert_eq!(kinds("1.6.1"), [BundleKind::Install, BundleKind::Update]);
}

#[test]
fn versions_are_checked_and_images_follow_them() {
    for bad in ["", "1.6", "1.6.0.1", "x.y.z", "1.6.0-", "v"] {
        let err = Options::new(bad).unwrap_err();
        assert!(err.to_string().contains("expected X.Y.Z"), "{bad:?}: {err}");
    }
    let mut opts = Options::new("v2.0.0-rc.1").unwrap();
    opts.registry = "registry.example.com/klutch".into();
    let install = klutch_release::install(&opts).unwrap();
    let packages: Vec<_> = install
        .objects
        .iter()
        .filter_map(|o| o["spec"]["package"].as_str())
        .collect();
    assert!(
        packages.contains(&"registry.example.com/klutch/dataservices:v2.0.0-rc.1"),
        "{packages:?}"
    );
    assert!(
        packages.contains(&"registry.example.com/klutch/provider-anynines:v2.0.0-rc.1"),
        "{packages:?}"
    );
}

#[test]
fn the_command_writes_the_bundles() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_klutch-release"))
        .args(["1.6.0", "--out-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "configure-v1.6.0.yaml",
            "install-v1.6.0.yaml",
            "update-v1.6.0.yaml"
        ]
    );
    let install = std::fs::read_to_string(dir.path().join("install-v1.6.0.yaml")).unwrap();
    assert!(install.starts_with("# klutch install bundle, version v1.6.0"));

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_klutch-release"))
        .arg("1.6")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid release version \"1.6\""));
}
