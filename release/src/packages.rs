//! The Crossplane packages (`xpkg`) of a release, built with the Crossplane CLI's `xpkg build`
//! and pushed with `xpkg push`:
//!
//! | Package | Package root | Runtime |
//! |---|---|---|
//! | `provider-anynines` | `bins/provider-anynines/package` (its `crossplane.yaml` and CRDs) | the `provider-anynines-controller` image, pulled by digest and embedded |
//! | `dataservices` | `crossplane-api/` (XRDs, Compositions, examples) | none |
//!
//! Needs the Crossplane v1 CLI (`testbins/build.sh crossplane`) and `crane` (to fetch the
//! runtime image as a tarball). The release bundles' `Configuration` and `Provider` reference
//! these by name ([`crate::Options::image`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use klutch_sdk::deploy::images::repository;

use crate::images::{self, BuiltImage};

/// Errors of building or pushing packages.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The runtime image could not be fetched.
    #[error("fetching the runtime image")]
    Image(#[source] images::Error),
    /// The Crossplane CLI could not be started.
    #[error("starting {program} (set --crossplane or KLUTCH_CROSSPLANE)")]
    Spawn {
        /// The program.
        program: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The Crossplane CLI failed.
    #[error("crossplane {args} failed ({status}): {output}")]
    Crossplane {
        /// Its arguments.
        args: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// The end of its output.
        output: String,
    },
    /// The pushed package's digest could not be read back.
    #[error("reading the digest of {reference}")]
    Digest {
        /// The reference.
        reference: String,
        /// The crane error.
        #[source]
        source: images::Error,
    },
}

/// Result alias of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Name of the provider package.
pub const PROVIDER_PACKAGE: &str = "provider-anynines";
/// Name of the configuration package.
pub const CONFIGURATION_PACKAGE: &str = "dataservices";

/// What to build and where to push it.
#[derive(Clone, Debug)]
pub struct PackageBuild {
    /// The version, `X.Y.Z` (tags are `v<version>`).
    pub version: String,
    /// Registry and path prefix.
    pub registry: String,
    /// The Crossplane v1 CLI.
    pub crossplane: PathBuf,
    /// `crane`.
    pub crane: PathBuf,
    /// `SSL_CERT_FILE` for both tools, when the registry's CA is not a public one.
    pub registry_ca: Option<PathBuf>,
    /// The provider's package root (`bins/provider-anynines/package`).
    pub provider_root: PathBuf,
    /// The configuration's package root (`crossplane-api`).
    pub configuration_root: PathBuf,
    /// Where to write the runtime tarball and the `.xpkg` files.
    pub work_dir: PathBuf,
}

impl PackageBuild {
    /// Builds and pushes both packages, the provider with `controller` embedded as its runtime.
    pub fn run(&self, controller: &BuiltImage) -> Result<Vec<BuiltImage>> {
        let runtime = self.work_dir.join("provider-anynines-controller.tar");
        images::crane(
            &self.crane,
            self.registry_ca.as_deref(),
            &[
                "pull".into(),
                controller.by_digest(),
                runtime.display().to_string(),
            ],
        )
        .map_err(Error::Image)?;
        let provider = self.build_one(
            PROVIDER_PACKAGE,
            &self.provider_root,
            &[format!(
                "--embed-runtime-image-tarball={}",
                runtime.display()
            )],
        )?;
        let configuration = self.build_one(
            CONFIGURATION_PACKAGE,
            &self.configuration_root,
            &[format!(
                "--examples-root={}",
                self.configuration_root.join("examples").display()
            )],
        )?;
        Ok(vec![provider, configuration])
    }

    fn build_one(&self, name: &str, root: &Path, extra: &[String]) -> Result<BuiltImage> {
        let file = self.work_dir.join(format!("{name}.xpkg"));
        let mut args = vec![
            "xpkg".to_owned(),
            "build".into(),
            format!("--package-root={}", root.display()),
            format!("--package-file={}", file.display()),
        ];
        args.extend(extra.iter().cloned());
        self.crossplane(&args)?;
        let repository = repository(&self.registry, name);
        let tag = format!("v{}", self.version);
        let reference = format!("{repository}:{tag}");
        self.crossplane(&[
            "xpkg".into(),
            "push".into(),
            format!("--package-files={}", file.display()),
            reference.clone(),
        ])?;
        let digest = images::crane(
            &self.crane,
            self.registry_ca.as_deref(),
            &["digest".into(), reference.clone()],
        )
        .map_err(|source| Error::Digest {
            reference: reference.clone(),
            source,
        })?;
        Ok(BuiltImage {
            name: name.to_owned(),
            repository,
            tag,
            digest: digest.trim().to_owned(),
        })
    }

    fn crossplane(&self, args: &[String]) -> Result<()> {
        let mut command = Command::new(&self.crossplane);
        command.args(args);
        if let Some(ca) = &self.registry_ca {
            command.env("SSL_CERT_FILE", ca);
        }
        let output = command.output().map_err(|source| Error::Spawn {
            program: self.crossplane.clone(),
            source,
        })?;
        if !output.status.success() {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            let start = text.len().saturating_sub(2000);
            let start = (start..text.len())
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(0);
            return Err(Error::Crossplane {
                args: args.join(" "),
                status: output.status,
                output: text[start..].to_owned(),
            });
        }
        Ok(())
    }
}
