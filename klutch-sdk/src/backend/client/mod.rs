//! The client side of the bind protocol (cargo feature `client`, also part of `backend`): what
//! `kubectl bind` does before it touches a cluster, for any tool that binds from a Klutch
//! backend.
//!
//! - [`provider`]: fetch `GET /export` and check the [`BindingProvider`] document;
//! - [`login`]: a session id and the browser login URL;
//! - [`callback`]: the localhost listener the backend redirects the browser to with the
//!   [`BindingResponse`];
//! - [`device`]: the device-authorization login (no browser on this machine) up to the
//!   [`BindingResponse`].
//!
//! Every document is a type of [`crate::api::wire`], shared with the server
//! ([`crate::backend::server`]). The client needs no server-side dependency (OIDC, cookies,
//! leases).
//!
//! ```no_run
//! # async fn demo() -> klutch_sdk::backend::client::Result<()> {
//! use klutch_sdk::backend::client::{Error, callback::Listener, login_url, new_session_id, provider};
//!
//! let http = reqwest::Client::new();
//! let provider = provider::fetch(&http, "https://bind.example.com/export").await?;
//! let grant = provider.document.oauth2_code_grant().ok_or_else(|| Error::NoLoginMethod {
//!     url: provider.url.clone(),
//!     reason: "no code grant".into(),
//! })?;
//! let sid = new_session_id();
//! let mut listener = Listener::start(&sid).await?;
//! println!("open {}", login_url(&grant.authenticated_url, listener.port, &sid, "Qw7Lm2")?);
//! let response = listener.next().await?; // the kubeconfig and the export request
//! # let _ = response; Ok(()) }
//! ```
//!
//! [`BindingProvider`]: crate::api::wire::BindingProvider
//! [`BindingResponse`]: crate::api::wire::BindingResponse

pub mod callback;
pub mod device;
mod error;
pub mod login;
pub mod provider;

pub use error::{Error, Result, one_line};
pub use login::{login_url, new_session_id};
