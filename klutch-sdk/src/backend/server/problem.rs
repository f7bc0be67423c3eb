//! The server's error answers: plain-text problems with a status, and how authentication errors
//! and internal failures map onto them.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::backend::contract::AuthError;
use crate::runtime::report::error_chain;

/// A plain-text error answer.
#[derive(Debug)]
pub(super) struct Problem(pub(super) StatusCode, pub(super) String);

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        (
            self.0,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.1,
        )
            .into_response()
    }
}

pub(super) fn bad_request(msg: impl Into<String>) -> Problem {
    Problem(StatusCode::BAD_REQUEST, msg.into())
}

pub(super) fn internal(what: &str, err: &dyn std::error::Error) -> Problem {
    tracing::error!(error = %error_chain(err), "{what}");
    Problem(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
}

pub(super) fn auth_problem(err: AuthError) -> Problem {
    match &err {
        AuthError::Provider { .. } => {
            tracing::warn!(error = %error_chain(&err), "identity provider failed");
            Problem(
                StatusCode::BAD_GATEWAY,
                "identity provider unavailable".into(),
            )
        }
        AuthError::Unsupported => Problem(StatusCode::NOT_IMPLEMENTED, err.to_string()),
        _ => {
            tracing::info!(error = %error_chain(&err), "login refused");
            Problem(StatusCode::UNAUTHORIZED, error_chain(&err))
        }
    }
}

/// `[A-Za-z0-9]{1,64}`: the accepted form of `sid` and `cid`.
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_alphanumeric_and_bounded() {
        assert!(valid_id("aB3xYz"));
        assert!(valid_id(&"a".repeat(64)));
        assert!(!valid_id(&"a".repeat(65)));
        assert!(!valid_id(""));
        assert!(!valid_id("a-b"));
        assert!(!valid_id("a b"));
    }
}
