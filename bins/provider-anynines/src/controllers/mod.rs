//! The controllers of the provider, one module per kind (spec 1.1).

pub mod common;
pub mod instance;

pub use instance::InstanceController;
