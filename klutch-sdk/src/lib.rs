//! # klutch-sdk
//!
//! The building blocks of [Klutch](https://github.com/anynines/klutch)-compatible components in
//! Rust: the `klutch.anynines.com/v1alpha1` API, the bind protocol and the sync primitives that
//! keep an app cluster and a control-plane cluster in step, so that a platform team can write its
//! own binding backend or sync agent.
//!
//! This release provides:
//!
//! - [`api`]: the `klutch.anynines.com/v1alpha1` kinds as Rust types, wire compatible with
//!   Klutch v1.5, their CRDs and the identifiers of the bind protocol ([`api::ids`]).
//! - [`sync`]: sans-IO decisions of a sync agent (clean copies, namespace mapping, isolation,
//!   claim selection and ownership, spec/status/deletion planning).
//! - [`deploy`]: manifests generated from Rust: the konnector's and the example backend's
//!   Deployments and RBAC.
//! - [`tls`]: the one place where the process-wide rustls crypto provider is chosen. Every klutch
//!   binary and test calls [`tls::install_crypto_provider`] first.
//! - `backend` (cargo feature `backend`): the binding-backend SDK: the `BindingBackend` trait,
//!   the bind protocol server, OIDC login, binding spaces, RBAC and the provider controllers;
//!   with only the feature `client`, `backend::client`: the protocol client `kubectl bind` uses.
//! - `konnector` (cargo feature `konnector`): the konnector engine, the sync agent of an app
//!   cluster behind a builder (`Konnector::builder`), with the resource and claimed-resource
//!   syncers, provider connections, heartbeat, kubeconfig rotation, metrics and Events.
//! - [`runtime`] (cargo feature `runtime`; `duration` and `signals` always): what every binary
//!   shares: leader election on a Lease with health state, the `/healthz` + `/metrics` server,
//!   logging, signals, Go-style durations, the request-counting client layer, the TLS listener
//!   and HTTP metrics.
//! - `crossplane` (cargo feature `crossplane`): a Crossplane managed-resource runtime, the
//!   counterpart of crossplane-runtime's managed reconciler: the `Managed` trait, the
//!   reconciler generic over a provider's state, management and deletion policies,
//!   ProviderConfigUsage tracking and connection Secrets.
//! - `testenv` (cargo feature `testenv`): real local Kubernetes clusters (etcd, kube-apiserver,
//!   kube-controller-manager) and a real OIDC provider (Dex) for tests, like controller-runtime's
//!   envtest but native to Rust and able to run several isolated clusters at once.
//!
//! The re-export of [`kube`] lets downstream crates use exactly the kube version klutch is built
//! against.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use kube;

pub mod api;
#[cfg(feature = "client")]
pub mod backend;
#[cfg(feature = "crossplane")]
pub mod crossplane;
pub mod deploy;
#[cfg(feature = "konnector")]
pub mod konnector;
pub mod runtime;
pub mod sync;
pub mod tls;

#[cfg(feature = "testenv")]
pub mod testenv;
