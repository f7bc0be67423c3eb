//! The library side of `klutch-testenv`: fixtures that need every part of the workspace at once
//! (clusters, Crossplane, the backend, `kubectl bind`, the konnector, provider-anynines and the
//! a9s fakes) and that the `klutch-testenv demo` command, this crate's tests and the benchmarks
//! share. The clusters themselves are `klutch_sdk::testenv`'s.

pub mod journey;
