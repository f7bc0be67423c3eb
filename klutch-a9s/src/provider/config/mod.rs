//! ProviderConfigs: credential extraction, cached clients per config, and the translation of
//! client errors into user-facing messages.

pub mod clients;
pub mod credentials;
pub mod errors;

pub use clients::{BackupEndpoint, BrokerEndpoint, ClientCache};
