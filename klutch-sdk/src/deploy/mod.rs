//! Deployment manifests generated from Rust, one source for every installer.
//!
//! [`konnector`] builds the objects that run the konnector in an app cluster: `kubectl bind`
//! applies them when it installs or upgrades the konnector, and a release bundle can render the
//! same objects to YAML. Every object is a typed `k8s-openapi` value wrapped in
//! [`Manifest`](konnector::Manifest), so callers can inspect it before applying it.
//!
//! [`backend`] builds the objects that run the reference binding backend (`example-backend`) on
//! a provider cluster, as JSON values with `${VAR}` placeholders; the release bundles use them.
//!
//! [`images`] says who we are in a registry: our default repository, the OCI labels of our
//! images, and the labels by which installers recognise our objects.

pub mod backend;
pub mod images;
pub mod konnector;
