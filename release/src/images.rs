//! Container images of klutch's binaries, built without a container engine.
//!
//! Each image is one layer on an empty base: the static (musl) release binary in
//! `/usr/local/bin`, `/etc/passwd` and `/etc/group` with the non-root user `nonroot` (65532),
//! its home, a `/tmp`, and the CA certificates of the build machine in
//! `/etc/ssl/certs/ca-certificates.crt`. There is no shell and no package manager. The layer is a
//! tar written here with sorted entries, fixed owners and a fixed mtime ([`ImageBuild::mtime`],
//! `SOURCE_DATE_EPOCH` by convention), so the same binary and CA bundle always give the same
//! digest. go-containerregistry's `crane` does the OCI work: `crane append` pushes the layer on
//! an empty OCI base, `crane mutate` sets user, entrypoint, environment, platform and the OCI
//! labels ([`labels`]) and pushes the final manifest.
//!
//! ```
//! use klutch_release::images::{IMAGES, labels};
//! let konnector = IMAGES.iter().find(|i| i.name == "konnector").unwrap();
//! let labels = labels(konnector, "1.6.0", "0123abc");
//! assert_eq!(labels["org.opencontainers.image.version"], "v1.6.0");
//! assert_eq!(labels["org.opencontainers.image.revision"], "0123abc");
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use klutch_sdk::deploy::images::{
    OCI_DESCRIPTION, OCI_LICENSES, OCI_REVISION, OCI_SOURCE, OCI_TITLE, OCI_VERSION, SOURCE_URL,
    repository,
};

/// Errors of building or pushing images.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file the image needs could not be read.
    #[error("reading {what} {path}")]
    Read {
        /// What the file is for.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The layer or an output file could not be written.
    #[error("writing {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `crane` could not be started.
    #[error("starting {program} (set --crane or KLUTCH_CRANE)")]
    Spawn {
        /// The program.
        program: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `crane` failed.
    #[error("crane {args} failed ({status}): {stderr}")]
    Crane {
        /// Its arguments.
        args: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// The end of its stderr.
        stderr: String,
    },
    /// `crane` succeeded but printed no `…@sha256:` reference.
    #[error("crane {args} printed no digest reference: {stdout:?}")]
    NoDigest {
        /// Its arguments.
        args: String,
        /// What it printed.
        stdout: String,
    },
    /// An image name is not one of [`IMAGES`].
    #[error("unknown image {0:?}; known: example-backend, konnector, provider-anynines-controller")]
    UnknownImage(String),
}

/// Result alias of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One image: which binary it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageSpec {
    /// The repository name under the registry, e.g. `konnector`.
    pub name: &'static str,
    /// The binary (cargo package and bin name), e.g. `konnector`.
    pub binary: &'static str,
    /// The `org.opencontainers.image.description` label.
    pub description: &'static str,
}

impl ImageSpec {
    /// The entrypoint: `/usr/local/bin/<binary>`.
    pub fn entrypoint(&self) -> String {
        format!("/{BINARY_DIR}/{}", self.binary)
    }
}

/// Every image `klutch-release images` builds.
///
/// The provider's runtime image is `provider-anynines-controller`: the name `provider-anynines`
/// belongs to its Crossplane package. An image is added by a line here; [`cargo_build_args`]
/// builds every binary listed.
pub const IMAGES: &[ImageSpec] = &[
    ImageSpec {
        name: "example-backend",
        binary: "example-backend",
        description: "klutch's reference binding backend (the bind protocol for a provider cluster)",
    },
    ImageSpec {
        name: "konnector",
        binary: "konnector",
        description: "klutch's konnector: syncs bound APIs between an app cluster and a provider cluster",
    },
    ImageSpec {
        name: "provider-anynines-controller",
        binary: "provider-anynines",
        description: "klutch's Crossplane provider for a9s data services (runtime of the provider-anynines package)",
    },
    ImageSpec {
        name: "a9s-dev-broker",
        binary: "a9s-dev-broker",
        description: "klutch's a9s-compatible development broker backed by a PostgreSQL server (not for production)",
    },
];

/// The target the release binaries are built for: static, no libc needed in the image.
pub const MUSL_TARGET: &str = "x86_64-unknown-linux-musl";
/// User and group id of `nonroot`, the images' user.
pub const NONROOT_ID: u64 = 65532;
/// Where the binary lives in an image (no leading `/`, as in the layer).
pub const BINARY_DIR: &str = "usr/local/bin";
/// Where the CA certificates live in an image (no leading `/`, as in the layer).
pub const CA_BUNDLE_PATH: &str = "etc/ssl/certs/ca-certificates.crt";
/// The CA bundle copied into images by default (Debian's `ca-certificates`).
pub const DEFAULT_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The cargo arguments that build every image's binary for [`MUSL_TARGET`] in release mode.
pub fn cargo_build_args() -> Vec<String> {
    cargo_build_args_with_profile("release")
}

/// The cargo profile tests and CI build image binaries with: the release recipe's target and
/// binaries without optimisation or LTO (a cold optimised musl build of every binary takes tens
/// of minutes on two cores). Released images use [`cargo_build_args`].
pub const TEST_PROFILE: &str = "ci-image";

/// [`cargo_build_args`] with another cargo profile; the binaries land in
/// `<target dir>/<MUSL_TARGET>/<profile>` ([`profile_dir`]).
pub fn cargo_build_args_with_profile(profile: &str) -> Vec<String> {
    let mut args = vec![
        "build".to_owned(),
        "--locked".to_owned(),
        format!("--profile={profile}"),
        "--target".to_owned(),
        MUSL_TARGET.to_owned(),
    ];
    for spec in IMAGES {
        args.push("-p".to_owned());
        args.push(spec.binary.to_owned());
    }
    args
}

/// The directory under `<target dir>/<MUSL_TARGET>` that cargo writes `profile`'s binaries to
/// (`dev` writes to `debug`).
pub fn profile_dir(profile: &str) -> &str {
    match profile {
        "dev" | "test" => "debug",
        "bench" => "release",
        other => other,
    }
}

/// Finds an image by name.
pub fn find(name: &str) -> Result<&'static ImageSpec> {
    IMAGES
        .iter()
        .find(|i| i.name == name)
        .ok_or_else(|| Error::UnknownImage(name.to_owned()))
}

/// The OCI labels of an image: source, version (`v<version>`), revision, title, description and
/// licence.
pub fn labels(spec: &ImageSpec, version: &str, revision: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (OCI_SOURCE.to_owned(), SOURCE_URL.to_owned()),
        (OCI_VERSION.to_owned(), format!("v{version}")),
        (OCI_REVISION.to_owned(), revision.to_owned()),
        (OCI_TITLE.to_owned(), spec.name.to_owned()),
        (OCI_DESCRIPTION.to_owned(), spec.description.to_owned()),
        (OCI_LICENSES.to_owned(), "Apache-2.0".to_owned()),
    ])
}

const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\n\
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nnonroot:x:65532:\n";

/// The image's only layer as an uncompressed tar: entries sorted by path, owned by root (the
/// home directory by `nonroot`), every mtime `mtime`. Same inputs, same bytes.
pub fn layer(spec: &ImageSpec, binary: &[u8], ca_bundle: &[u8], mtime: u64) -> Vec<u8> {
    // (path, mode, owner, contents; None for a directory)
    let bin_path = format!("{BINARY_DIR}/{}", spec.binary);
    let mut entries: Vec<(&str, u32, u64, Option<&[u8]>)> = vec![
        ("etc/", 0o755, 0, None),
        ("etc/group", 0o644, 0, Some(GROUP.as_bytes())),
        ("etc/passwd", 0o644, 0, Some(PASSWD.as_bytes())),
        ("etc/ssl/", 0o755, 0, None),
        ("etc/ssl/certs/", 0o755, 0, None),
        (CA_BUNDLE_PATH, 0o644, 0, Some(ca_bundle)),
        ("home/", 0o755, 0, None),
        ("home/nonroot/", 0o700, NONROOT_ID, None),
        ("tmp/", 0o1777, 0, None),
        ("usr/", 0o755, 0, None),
        ("usr/local/", 0o755, 0, None),
        ("usr/local/bin/", 0o755, 0, None),
        (&bin_path, 0o755, 0, Some(binary)),
    ];
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = tar::Builder::new(Vec::new());
    for (path, mode, owner, contents) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_mode(mode);
        header.set_uid(owner);
        header.set_gid(owner);
        header.set_mtime(mtime);
        let data = contents.unwrap_or_default();
        header.set_entry_type(if contents.is_some() {
            tar::EntryType::Regular
        } else {
            tar::EntryType::Directory
        });
        header.set_size(data.len() as u64);
        // Appending to a Vec cannot fail; paths are short, relative and valid.
        out.append_data(&mut header, path, data)
            .expect("appending to an in-memory tar");
    }
    out.into_inner().expect("finishing an in-memory tar")
}

/// What to build and where to push it.
#[derive(Clone, Debug)]
pub struct ImageBuild {
    /// The version, `X.Y.Z` (tags are `v<version>`).
    pub version: String,
    /// Registry and path prefix, e.g. `ghcr.io/klutch-rs/klutch` or `127.0.0.1:5000/klutch`.
    pub registry: String,
    /// The source revision for the `org.opencontainers.image.revision` label.
    pub revision: String,
    /// Where the release binaries are (`<target dir>/x86_64-unknown-linux-musl/release`).
    pub bin_dir: PathBuf,
    /// The CA certificates to put into every image.
    pub ca_bundle: PathBuf,
    /// The `crane` program.
    pub crane: PathBuf,
    /// Where to write the layers.
    pub work_dir: PathBuf,
    /// The mtime of every layer entry (seconds since the epoch).
    pub mtime: u64,
    /// `SSL_CERT_FILE` for crane: the CA that signed the registry's certificate, when it is not a
    /// public one.
    pub registry_ca: Option<PathBuf>,
    /// Which images; empty means all of [`IMAGES`].
    pub only: Vec<String>,
}

/// An image that was pushed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltImage {
    /// The image's name, e.g. `konnector`.
    pub name: String,
    /// The repository, e.g. `127.0.0.1:5000/klutch/konnector`.
    pub repository: String,
    /// The tag, `v<version>`.
    pub tag: String,
    /// The manifest digest, `sha256:…`.
    pub digest: String,
}

impl BuiltImage {
    /// `<repository>@<digest>`: what a release bundle should reference.
    pub fn by_digest(&self) -> String {
        format!("{}@{}", self.repository, self.digest)
    }

    /// `<repository>:<tag>`.
    pub fn by_tag(&self) -> String {
        format!("{}:{}", self.repository, self.tag)
    }
}

impl ImageBuild {
    /// The images this build makes.
    pub fn specs(&self) -> Result<Vec<&'static ImageSpec>> {
        if self.only.is_empty() {
            return Ok(IMAGES.iter().collect());
        }
        self.only.iter().map(|n| find(n)).collect()
    }

    /// Builds and pushes every image; returns them with their digests.
    pub fn run(&self) -> Result<Vec<BuiltImage>> {
        let ca_bundle = read(&self.ca_bundle, "the CA bundle")?;
        std::fs::create_dir_all(&self.work_dir).map_err(|source| Error::Write {
            path: self.work_dir.clone(),
            source,
        })?;
        let mut built = Vec::new();
        for spec in self.specs()? {
            built.push(self.build_one(spec, &ca_bundle)?);
        }
        Ok(built)
    }

    fn build_one(&self, spec: &ImageSpec, ca_bundle: &[u8]) -> Result<BuiltImage> {
        let binary = read(&self.bin_dir.join(spec.binary), "the release binary")?;
        let layer_path = self.work_dir.join(format!("{}.tar", spec.name));
        std::fs::write(&layer_path, layer(spec, &binary, ca_bundle, self.mtime)).map_err(
            |source| Error::Write {
                path: layer_path.clone(),
                source,
            },
        )?;
        let repository = repository(&self.registry, spec.name);
        let tag = format!("v{}", self.version);
        let reference = format!("{repository}:{tag}");
        self.crane(&[
            "append".into(),
            "--oci-empty-base".into(),
            "-f".into(),
            layer_path.display().to_string(),
            "-t".into(),
            reference.clone(),
        ])?;
        let mut args = vec![
            "mutate".to_owned(),
            reference.clone(),
            "--set-platform".into(),
            "linux/amd64".into(),
            "--user".into(),
            format!("{NONROOT_ID}:{NONROOT_ID}"),
            "--workdir".into(),
            "/".into(),
            "--entrypoint".into(),
            spec.entrypoint(),
            "--env".into(),
            format!("SSL_CERT_FILE=/{CA_BUNDLE_PATH}"),
        ];
        for (key, value) in labels(spec, &self.version, &self.revision) {
            args.push("--label".into());
            args.push(format!("{key}={value}"));
        }
        args.push("-t".into());
        args.push(reference);
        let stdout = self.crane(&args)?;
        let digest = stdout
            .lines()
            .filter_map(|l| l.trim().rsplit_once('@'))
            .map(|(_, d)| d.to_owned())
            .next_back()
            .filter(|d| d.starts_with("sha256:"))
            .ok_or_else(|| Error::NoDigest {
                args: args.join(" "),
                stdout: stdout.clone(),
            })?;
        Ok(BuiltImage {
            name: spec.name.to_owned(),
            repository,
            tag,
            digest,
        })
    }

    /// Runs `crane` with `args` (trusting [`ImageBuild::registry_ca`]); returns its stdout.
    pub fn crane(&self, args: &[String]) -> Result<String> {
        crane(&self.crane, self.registry_ca.as_deref(), args)
    }
}

/// Runs the `crane` program with `args`, trusting `registry_ca` when given; returns its stdout.
pub fn crane(program: &Path, registry_ca: Option<&Path>, args: &[String]) -> Result<String> {
    let mut command = Command::new(program);
    command.args(args);
    if let Some(ca) = registry_ca {
        command.env("SSL_CERT_FILE", ca);
    }
    let output = command.output().map_err(|source| Error::Spawn {
        program: program.to_owned(),
        source,
    })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: String = stderr
            .chars()
            .rev()
            .take(2000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        return Err(Error::Crane {
            args: args.join(" "),
            status: output.status,
            stderr: tail,
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_are_reproducible_sorted_and_owned_by_root() {
        let spec = find("konnector").unwrap();
        let a = layer(spec, b"\x7fELF", b"CERTS", 0);
        assert_eq!(a, layer(spec, b"\x7fELF", b"CERTS", 0));
        assert_ne!(a, layer(spec, b"\x7fELF", b"CERTS", 1));
        let mut archive = tar::Archive::new(a.as_slice());
        let mut paths = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let h = entry.header();
            let path = entry.path().unwrap().display().to_string();
            assert_eq!(h.mtime().unwrap(), 0);
            let owner = if path == "home/nonroot/" {
                NONROOT_ID
            } else {
                0
            };
            assert_eq!(
                (h.uid().unwrap(), h.gid().unwrap()),
                (owner, owner),
                "{path}"
            );
            if path == "usr/local/bin/konnector" {
                assert_eq!(h.mode().unwrap(), 0o755);
            }
            paths.push(path);
        }
        let mut sorted = paths.clone();
        sorted.sort();
        assert_eq!(paths, sorted);
        assert!(paths.contains(&CA_BUNDLE_PATH.to_owned()));
        assert!(!paths.iter().any(|p| p.starts_with("bin")), "no shell");
    }

    #[test]
    fn unknown_images_are_named_in_the_error() {
        assert!(find("provider-anynines-controller").is_ok());
        let err = find("nope").unwrap_err().to_string();
        assert!(err.contains("konnector"), "{err}");
        assert_eq!(cargo_build_args()[4], MUSL_TARGET);
    }
}
