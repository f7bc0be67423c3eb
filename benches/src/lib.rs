//! Benchmarks for klutch. Each benchmark is a file beside this crate's `Cargo.toml`; run one with
//! `cargo bench -p klutch-benches --bench <name>`. Results and the commands that produced them are
//! in `docs/benchmarks.md`.
