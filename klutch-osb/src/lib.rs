//! # klutch-osb
//!
//! An Open Service Broker API v2.17 client (being built).
