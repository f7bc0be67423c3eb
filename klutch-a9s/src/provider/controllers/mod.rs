//! The controllers of the provider, one module per kind (spec 1.1).

pub mod backup;
pub mod binding;
pub mod common;
pub mod instance;
pub mod provider_config;
pub mod restore;

pub use backup::BackupController;
pub use binding::BindingController;
pub use instance::InstanceController;
pub use restore::RestoreController;
