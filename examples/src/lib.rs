//! Runnable examples for the klutch crates. Each example is a file beside this crate's
//! `Cargo.toml`; run one with `cargo run -p klutch-examples --example <name>`.
