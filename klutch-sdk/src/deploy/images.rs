//! Who we are in a registry: the default repository of klutch's images and packages, the OCI
//! labels every image carries, and the labels by which installers recognise objects as ours.
//!
//! klutch (this Rust workspace) and Klutch (anynines' Go implementation) run side by side in the
//! wild, and their konnectors install into the same namespace. Installers compare versions only
//! with images they recognise as ours, by [`DEFAULT_REGISTRY`] (or the repository configured at
//! run time) or by [`PART_OF_LABEL`]; [`KLUTCH_GO_REGISTRY`] is anynines' repository, never ours.
//!
//! ```
//! use klutch_sdk::deploy::images::{DEFAULT_REGISTRY, repository};
//! assert_eq!(repository(DEFAULT_REGISTRY, "konnector"), format!("{DEFAULT_REGISTRY}/konnector"));
//! ```

/// Registry and path prefix of our images: `KLUTCH_IMAGE_REGISTRY` at build time, else
/// `ghcr.io/klutch-rs/klutch`. Installers also take it at run time (flags with env fallbacks).
pub const DEFAULT_REGISTRY: &str = match option_env!("KLUTCH_IMAGE_REGISTRY") {
    Some(registry) => registry,
    None => "ghcr.io/klutch-rs/klutch",
};

/// The repository of anynines' Go Klutch images (its konnector is
/// `public.ecr.aws/w5n9a2g2/klutch/konnector`): recognised, and never treated as ours.
pub const KLUTCH_GO_REGISTRY: &str = "public.ecr.aws/w5n9a2g2/klutch";

/// The source repository, the `org.opencontainers.image.source` label of every image.
pub const SOURCE_URL: &str = "https://github.com/klutch-rs/klutch";

/// `app.kubernetes.io/part-of: klutch-rs` on the objects our installers create.
pub const PART_OF_LABEL: (&str, &str) = ("app.kubernetes.io/part-of", "klutch-rs");

/// `app.kubernetes.io/version: v<version>` on the objects our installers create.
pub const VERSION_LABEL: &str = "app.kubernetes.io/version";

/// OCI image label: where the source lives ([`SOURCE_URL`]).
pub const OCI_SOURCE: &str = "org.opencontainers.image.source";
/// OCI image label: the version, `v<X.Y.Z>`.
pub const OCI_VERSION: &str = "org.opencontainers.image.version";
/// OCI image label: the source revision (git commit).
pub const OCI_REVISION: &str = "org.opencontainers.image.revision";
/// OCI image label: the image's name.
pub const OCI_TITLE: &str = "org.opencontainers.image.title";
/// OCI image label: what the image runs.
pub const OCI_DESCRIPTION: &str = "org.opencontainers.image.description";
/// OCI image label: the licence (SPDX).
pub const OCI_LICENSES: &str = "org.opencontainers.image.licenses";

/// `<registry>/<name>`, without a trailing `/` doubled.
pub fn repository(registry: &str, name: &str) -> String {
    format!("{}/{name}", registry.trim_end_matches('/'))
}
