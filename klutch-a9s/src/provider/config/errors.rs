//! Turning client errors into the curated messages of spec 2.4: 4xx descriptions verbatim,
//! `cannot reach <service type> at <url>: <short cause>` for transport problems, timeouts,
//! malformed answers; anything else is an internal error.

use klutch_sdk::crossplane::ExternalError;

use crate::transport::CallError;

fn last_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

fn status_message(what: &str, url: &str, status: u16, description: Option<&str>) -> String {
    if status == 401 || status == 403 {
        return format!(
            "{what} at {url} rejected the credentials of the ProviderConfig (HTTP {status})"
        );
    }
    match description.filter(|d| !d.is_empty()) {
        Some(d) if (400..500).contains(&status) => d.to_owned(),
        Some(d) => format!("{what} at {url} answered HTTP {status}: {d}"),
        None => format!("{what} at {url} answered HTTP {status}"),
    }
}

/// A `klutch-osb` error of a call to the service broker at `url`.
pub fn osb(url: &str, e: klutch_osb::Error) -> ExternalError {
    use klutch_osb::Error as E;
    let what = "service broker";
    let msg = match &e {
        E::Broker(b) => status_message(what, url, b.status.as_u16(), b.description.as_deref()),
        E::Connect { source } | E::Transport { source } => {
            format!("cannot reach {what} at {url}: {}", last_cause(source))
        }
        E::Timeout { .. } => format!("{what} at {url} did not answer within the timeout"),
        E::Decode { status, .. } => {
            format!("{what} at {url} sent a malformed answer (HTTP {status})")
        }
        E::Protocol { status, violation } => {
            format!("{what} at {url} violated the OSB spec (HTTP {status}): {violation}")
        }
        E::InvalidRequest { reason } => format!("invalid request: {reason}"),
        _ => return ExternalError::internal(e),
    };
    ExternalError::with_source(msg, e)
}

/// An a9s transport error of a call to `what` (service broker / Backup Manager) at `url`.
pub fn call(what: &str, url: &str, e: &CallError) -> String {
    match e {
        CallError::Api(a) => status_message(what, url, a.status, a.description.as_deref()),
        CallError::Connect { source } | CallError::Transport { source } => {
            format!("cannot reach {what} at {url}: {}", last_cause(source))
        }
        CallError::Timeout { .. } => format!("{what} at {url} did not answer within the timeout"),
        CallError::Decode { status, .. } => {
            format!("{what} at {url} sent a malformed answer (HTTP {status})")
        }
        CallError::InvalidRequest { reason } => format!("invalid request: {reason}"),
        CallError::Config { reason } => format!("invalid {what} configuration: {reason}"),
        // `CallError` is non-exhaustive for other crates; inside this one the arm is
        // unreachable today but keeps new variants from breaking the build.
        #[allow(unreachable_patterns)]
        _ => "Internal error in provider".to_owned(),
    }
}

/// An error of the a9s broker extension client.
pub fn broker_ext(url: &str, e: crate::broker::BrokerExtError) -> ExternalError {
    use crate::broker::BrokerExtError as B;
    match e {
        B::FetchInstance { source, .. } | B::LastOperation { source, .. } => osb(url, source),
        B::GetInstance { ref source, .. }
        | B::CheckInstanceId { ref source, .. }
        | B::ListInstances { ref source }
        | B::Health { ref source } => {
            let msg = call("service broker", url, source);
            ExternalError::with_source(msg, e)
        }
        B::MatchService { .. } | B::MatchPlan { .. } => ExternalError::user(e.to_string()),
        other => ExternalError::internal(other),
    }
}

/// An error of the Backup Manager client.
pub fn backup_manager(url: &str, e: crate::backup::BackupManagerError) -> ExternalError {
    let msg = call("Backup Manager", url, e.call_error());
    ExternalError::with_source(msg, e)
}

/// The metrics outcome label of a call: `ok`, the HTTP status, `timeout` or `transport`.
pub fn outcome_osb<T>(r: &Result<T, klutch_osb::Error>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(klutch_osb::Error::Timeout { .. }) => "timeout".into(),
        Err(e) => e
            .status()
            .map_or_else(|| "transport".into(), |s| s.to_string()),
    }
}

/// The metrics outcome label of an a9s transport result.
pub fn outcome_call(e: Option<&CallError>) -> String {
    match e {
        None => "ok".into(),
        Some(CallError::Timeout { .. }) => "timeout".into(),
        Some(e) => e
            .status()
            .map_or_else(|| "transport".into(), |s| s.to_string()),
    }
}
