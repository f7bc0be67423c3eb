//! The localhost listener the backend redirects the browser to after `/bind` (spec §3.7).
//!
//! `GET /callback?response=<base64(JSON BindingResponse)>`: the first valid response ends the
//! wait; later hits get `Already authenticated`; undecodable input gets 500 and the wait goes on.
//! `error`/`error_description` (ours) and a response for another session end the wait with an
//! error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Html;
use tokio::sync::mpsc;

use super::error::{Error, Result};
use crate::api::wire::BindingResponse;

/// What the browser sees after a successful login.
pub const SUCCESS_PAGE: &str =
    "<h1>You have been authenticated successfully! Please head back to the command line</h1>";

/// The outcome of one hit on `/callback`.
#[derive(Debug)]
pub struct Hit {
    /// Status for the browser.
    pub status: StatusCode,
    /// Body for the browser.
    pub body: String,
    /// What the CLI learns, if this hit ends the wait.
    pub outcome: Option<Result<BindingResponse>>,
}

/// Decides one hit (sans-IO). `done` tells whether an earlier hit already ended the wait.
pub fn handle(query: &HashMap<String, String>, sid: &str, done: bool) -> Hit {
    if done {
        return Hit {
            status: StatusCode::OK,
            body: "Already authenticated".into(),
            outcome: None,
        };
    }
    if let Some(error) = query.get("error") {
        let description = query
            .get("error_description")
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        let message = format!("{error}{description}");
        return Hit {
            status: StatusCode::BAD_REQUEST,
            body: format!("Login failed ({message}). Please head back to the command line"),
            outcome: Some(Err(Error::LoginFailed(message))),
        };
    }
    let Some(response) = query.get("response") else {
        return Hit {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            body: "internal error".into(),
            outcome: None,
        };
    };
    match BindingResponse::decode(response) {
        Err(_) => Hit {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            body: "internal error".into(),
            outcome: None,
        },
        Ok(doc) => {
            let got = doc
                .authentication
                .oauth2_code_grant
                .as_ref()
                .map(|g| g.sid.clone())
                .unwrap_or_default();
            if got != sid {
                return Hit {
                    status: StatusCode::BAD_REQUEST,
                    body: "This login belongs to another kubectl bind session. Please head back to the command line".into(),
                    outcome: Some(Err(Error::WrongSession {
                        expected: sid.into(),
                        got,
                    })),
                };
            }
            Hit {
                status: StatusCode::OK,
                body: SUCCESS_PAGE.into(),
                outcome: Some(Ok(doc)),
            }
        }
    }
}

struct Shared {
    sid: String,
    done: Mutex<bool>,
    tx: mpsc::UnboundedSender<Result<BindingResponse>>,
}

async fn callback(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> (StatusCode, Html<String>) {
    let hit = {
        let mut done = shared.done.lock().expect("callback lock");
        let hit = handle(&query, &shared.sid, *done);
        if hit.outcome.is_some() {
            *done = true;
        }
        hit
    };
    if let Some(outcome) = hit.outcome {
        let _ = shared.tx.send(outcome);
    }
    (hit.status, Html(hit.body))
}

/// A running listener on `localhost:<port>`.
pub struct Listener {
    /// The port (query parameter `p` of `/authorize`).
    pub port: u16,
    rx: mpsc::UnboundedReceiver<Result<BindingResponse>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Listener {
    /// Listens on 127.0.0.1 on a free port, and on `[::1]` with the same port where IPv6 works
    /// (browsers may resolve `localhost` to either).
    pub async fn start(sid: &str) -> Result<Listener> {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            sid: sid.into(),
            done: Mutex::new(false),
            tx,
        });
        let app = axum::Router::new()
            .route("/callback", axum::routing::get(callback))
            .with_state(shared);
        let v4 = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|source| Error::Io {
                op: "listen on localhost for the login callback".into(),
                source,
            })?;
        let port = v4
            .local_addr()
            .map_err(|source| Error::Io {
                op: "read the callback port".into(),
                source,
            })?
            .port();
        let mut tasks = vec![tokio::spawn({
            let app = app.clone();
            async move {
                let _ = axum::serve(v4, app).await;
            }
        })];
        if let Ok(v6) = tokio::net::TcpListener::bind(("::1", port)).await {
            tasks.push(tokio::spawn(async move {
                let _ = axum::serve(v6, app).await;
            }));
        }
        Ok(Listener { port, rx, tasks })
    }

    /// The next outcome (a valid response or an error that ends the wait).
    pub async fn next(&mut self) -> Result<BindingResponse> {
        match self.rx.recv().await {
            Some(outcome) => outcome,
            None => Err(Error::LoginFailed("the callback listener stopped".into())),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::wire::encode_base64_url;

    fn response(sid: &str) -> String {
        let doc = serde_json::json!({
            "kind": "BindingResponse", "apiVersion": "klutch.anynines.com/v1alpha1",
            "authentication": {"oauth2CodeGrant": {"sid": sid, "id": "https://idp/x"}},
            "kubeconfig": "YXBpVmVyc2lvbjogdjEK",
            "requests": [{"kind": "APIServiceExportRequest", "apiVersion": "klutch.anynines.com/v1alpha1",
                          "metadata": {"name": "mangodbs.mangodb.com"},
                          "spec": {"resources": [{"group": "mangodb.com", "resource": "mangodbs"}]}, "status": {}}]
        });
        encode_base64_url(doc.to_string().as_bytes())
    }

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_valid_response_for_this_session_ends_the_wait() {
        let hit = handle(&q(&[("response", &response("abc"))]), "abc", false);
        assert_eq!(hit.status, StatusCode::OK);
        assert_eq!(hit.body, SUCCESS_PAGE);
        assert!(hit.outcome.unwrap().is_ok());
        let again = handle(&q(&[("response", &response("abc"))]), "abc", true);
        assert_eq!(again.body, "Already authenticated");
        assert!(again.outcome.is_none());
    }

    #[test]
    fn a_response_for_another_session_is_an_error() {
        let hit = handle(&q(&[("response", &response("other"))]), "abc", false);
        assert_eq!(hit.status, StatusCode::BAD_REQUEST);
        let err = hit.outcome.unwrap().unwrap_err();
        assert!(matches!(err, Error::WrongSession { .. }), "{err}");
    }

    #[test]
    fn error_parameters_end_the_wait_with_them() {
        let hit = handle(
            &q(&[
                ("error", "access_denied"),
                ("error_description", "user said no"),
            ]),
            "abc",
            false,
        );
        let err = hit.outcome.unwrap().unwrap_err();
        assert!(
            err.to_string().contains("access_denied: user said no"),
            "{err}"
        );
    }

    #[test]
    fn garbage_keeps_waiting() {
        for query in [
            q(&[]),
            q(&[("response", "%%%")]),
            q(&[("response", &encode_base64_url(b"{}"))]),
        ] {
            let hit = handle(&query, "abc", false);
            assert_eq!(hit.status, StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(hit.body, "internal error");
            assert!(hit.outcome.is_none());
        }
    }

    #[tokio::test]
    async fn the_listener_serves_callback_over_http() {
        crate::tls::install_crypto_provider();
        let mut listener = Listener::start("abc").await.unwrap();
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{}/callback", listener.port);
        let bad = http
            .get(&base)
            .query(&[("response", "%%%")])
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status().as_u16(), 500);
        let ok = http
            .get(&base)
            .query(&[("response", response("abc"))])
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status().as_u16(), 200);
        assert_eq!(ok.text().await.unwrap(), SUCCESS_PAGE);
        let doc = listener.next().await.unwrap();
        assert_eq!(
            doc.requests[0].metadata.name.as_deref(),
            Some("mangodbs.mangodb.com")
        );
        let later = http
            .get(&base)
            .query(&[("response", response("abc"))])
            .send()
            .await
            .unwrap();
        assert_eq!(later.text().await.unwrap(), "Already authenticated");
    }
}
