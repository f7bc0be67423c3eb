//! Orphan mitigation (spec 8): a pure decision function over the v2.17 table that says when a
//! failed provision/bind (or deprovision/unbind) must be followed by a deprovision/unbind.

use crate::error::{AcceptedStep, Error, ErrorCode, ErrorKind};
use crate::poll::PollOutcome;

/// The request whose result is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OmOperation {
    /// Provision (`PUT` instance), or polling its last_operation.
    Provision,
    /// Update (`PATCH` instance), or polling its last_operation.
    Update,
    /// Deprovision, or polling its last_operation.
    Deprovision,
    /// Bind or rotate, or polling its last_operation.
    Bind,
    /// Unbind, or polling its last_operation.
    Unbind,
}

/// The broker's result, reduced to what the table needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OmResult {
    /// A well-formed 200, 201 or 202.
    Success {
        /// The status.
        status: u16,
    },
    /// A 2xx whose body was malformed (or violated the spec in strict mode).
    Malformed {
        /// The status.
        status: u16,
    },
    /// The asynchronous operation ended `failed`, or its polling deadline passed.
    AsyncFailed {
        /// `instance_usable` from the last_operation body (absent = true).
        instance_usable: bool,
    },
    /// An HTTP status that is neither a success nor malformed (other 2xx, 4xx, 5xx, ...).
    Status {
        /// The status.
        status: u16,
        /// The `error` code, if any.
        code: Option<ErrorCode>,
        /// `instance_usable` from the error body (absent = true).
        instance_usable: bool,
    },
    /// The request timed out: delivery unknown.
    Timeout,
    /// The connection failed or the request was never sent (like 408).
    NotSent,
    /// The broker succeeded but the platform failed afterwards (e.g. could not persist).
    PlatformFailureAfterCreate,
}

impl OmResult {
    /// Reduces a client error to an OM result.
    pub fn from_error(e: &Error) -> Self {
        match e {
            Error::Timeout { .. } => OmResult::Timeout,
            // A transport failure after sending (reset, broken body) leaves delivery unknown.
            Error::Transport { .. } => OmResult::Timeout,
            // The create finished at the broker; the platform could not complete its side.
            Error::AfterAccepted {
                step: AcceptedStep::FetchBinding,
                ..
            } => OmResult::PlatformFailureAfterCreate,
            // The 202 was a success; the operation's end is not known yet: poll again.
            Error::AfterAccepted { .. } => OmResult::Success { status: 202 },
            Error::Connect { .. }
            | Error::Config { .. }
            | Error::InvalidRequest { .. }
            | Error::Gate(_)
            | Error::Cancelled => OmResult::NotSent,
            Error::Decode { status, .. } | Error::Protocol { status, .. } => {
                OmResult::Malformed { status: *status }
            }
            Error::Broker(b) => OmResult::Status {
                status: b.status.as_u16(),
                code: if b.kind == ErrorKind::Concurrency {
                    Some(ErrorCode::ConcurrencyError)
                } else {
                    b.code.clone()
                },
                instance_usable: b.instance_usable.unwrap_or(true),
            },
        }
    }

    /// Reduces a terminal poll outcome; `None` for outcomes that are not failures.
    pub fn from_poll(o: &PollOutcome) -> Option<Self> {
        match o {
            PollOutcome::Failed {
                instance_usable, ..
            } => Some(OmResult::AsyncFailed {
                instance_usable: *instance_usable,
            }),
            PollOutcome::TimedOut => Some(OmResult::AsyncFailed {
                instance_usable: true,
            }),
            _ => None,
        }
    }
}

/// What the platform must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrphanMitigation {
    /// Nothing.
    None,
    /// Deprovision the instance (retry until success; no originating identity).
    Deprovision,
    /// Unbind the binding (retry until success; no originating identity).
    Unbind,
}

/// Policy for OM after a failed deprovision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OmPolicy {
    /// No OM while the broker says the instance is still usable (default).
    #[default]
    RespectInstanceUsable,
    /// Always follow the table.
    Always,
}

/// The decision of spec 8. Total: every input has an answer.
///
/// ```
/// use klutch_osb::{orphan_mitigation, OmOperation, OmPolicy, OmResult, OrphanMitigation};
/// let r = OmResult::Status { status: 500, code: None, instance_usable: true };
/// assert_eq!(orphan_mitigation(OmOperation::Provision, &r, OmPolicy::default()), OrphanMitigation::Deprovision);
/// assert_eq!(orphan_mitigation(OmOperation::Update, &r, OmPolicy::default()), OrphanMitigation::None);
/// ```
pub fn orphan_mitigation(op: OmOperation, result: &OmResult, policy: OmPolicy) -> OrphanMitigation {
    use OmOperation as O;
    let resource = |usable: bool| match op {
        O::Provision => OrphanMitigation::Deprovision,
        O::Deprovision if policy == OmPolicy::RespectInstanceUsable && usable => {
            OrphanMitigation::None
        }
        O::Deprovision => OrphanMitigation::Deprovision,
        O::Bind | O::Unbind => OrphanMitigation::Unbind,
        O::Update => OrphanMitigation::None,
    };
    let create_only = || match op {
        O::Provision => OrphanMitigation::Deprovision,
        O::Bind => OrphanMitigation::Unbind,
        _ => OrphanMitigation::None,
    };
    match result {
        OmResult::Success { .. } | OmResult::NotSent => OrphanMitigation::None,
        OmResult::Malformed { status: 200 } => OrphanMitigation::None,
        OmResult::Malformed { status: 201 | 202 } => create_only(),
        OmResult::Malformed { status } if (200..300).contains(status) => resource(true),
        OmResult::Malformed { .. } => OrphanMitigation::None,
        OmResult::AsyncFailed { instance_usable } => resource(*instance_usable),
        OmResult::Status {
            code: Some(ErrorCode::ConcurrencyError),
            ..
        } => OrphanMitigation::None,
        OmResult::Status {
            status,
            instance_usable,
            ..
        } => match status {
            200..=299 => resource(true),
            500..=599 => resource(*instance_usable),
            _ => OrphanMitigation::None,
        },
        OmResult::Timeout => create_only(),
        OmResult::PlatformFailureAfterCreate => create_only(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OmOperation::*;
    use OrphanMitigation as M;

    fn st(status: u16) -> OmResult {
        OmResult::Status {
            status,
            code: None,
            instance_usable: true,
        }
    }

    /// One case per row of the spec's table (section 8), plus the additional rules.
    #[test]
    fn table() {
        let p = OmPolicy::default();
        let all = [Provision, Update, Deprovision, Bind, Unbind];
        let cases: Vec<(OmOperation, OmResult, M)> = vec![
            // any | 200 | success
            (Provision, OmResult::Success { status: 200 }, M::None),
            // any | 200 malformed
            (Provision, OmResult::Malformed { status: 200 }, M::None),
            (Bind, OmResult::Malformed { status: 200 }, M::None),
            // poll instance for provision/deprovision | failed
            (
                Provision,
                OmResult::AsyncFailed {
                    instance_usable: true,
                },
                M::Deprovision,
            ),
            (
                Deprovision,
                OmResult::AsyncFailed {
                    instance_usable: false,
                },
                M::Deprovision,
            ),
            // poll binding for bind/unbind | failed
            (
                Bind,
                OmResult::AsyncFailed {
                    instance_usable: true,
                },
                M::Unbind,
            ),
            (
                Unbind,
                OmResult::AsyncFailed {
                    instance_usable: true,
                },
                M::Unbind,
            ),
            (
                Update,
                OmResult::AsyncFailed {
                    instance_usable: true,
                },
                M::None,
            ),
            // any | 201
            (Bind, OmResult::Success { status: 201 }, M::None),
            // provision | 201 malformed ; bind | 201 malformed
            (
                Provision,
                OmResult::Malformed { status: 201 },
                M::Deprovision,
            ),
            (Bind, OmResult::Malformed { status: 201 }, M::Unbind),
            // any | 202
            (Unbind, OmResult::Success { status: 202 }, M::None),
            // provision | 202 malformed ; bind | 202 malformed
            (
                Provision,
                OmResult::Malformed { status: 202 },
                M::Deprovision,
            ),
            (Bind, OmResult::Malformed { status: 202 }, M::Unbind),
            (Update, OmResult::Malformed { status: 202 }, M::None),
            // provision/deprovision | other 2xx
            (Provision, st(204), M::Deprovision),
            (
                Deprovision,
                OmResult::Status {
                    status: 204,
                    code: None,
                    instance_usable: false,
                },
                M::None,
            ),
            // bind/unbind | other 2xx
            (Bind, st(204), M::Unbind),
            (Unbind, st(206), M::Unbind),
            // update | other 2xx
            (Update, st(204), M::None),
            // any | 408
            (Provision, st(408), M::None),
            (Bind, st(408), M::None),
            // any | other 4xx
            (Provision, st(400), M::None),
            (Bind, st(409), M::None),
            (Unbind, st(422), M::None),
            // provision/deprovision | 5xx
            (Provision, st(500), M::Deprovision),
            (
                Deprovision,
                OmResult::Status {
                    status: 503,
                    code: None,
                    instance_usable: false,
                },
                M::Deprovision,
            ),
            // bind/unbind | 5xx
            (Bind, st(502), M::Unbind),
            (Unbind, st(500), M::Unbind),
            // update | 5xx
            (Update, st(500), M::None),
            // provision | timeout ; bind | timeout ; others | timeout
            (Provision, OmResult::Timeout, M::Deprovision),
            (Bind, OmResult::Timeout, M::Unbind),
            (Update, OmResult::Timeout, M::None),
            (Deprovision, OmResult::Timeout, M::None),
            (Unbind, OmResult::Timeout, M::None),
            // never after ConcurrencyError, whatever the status
            (
                Provision,
                OmResult::Status {
                    status: 500,
                    code: Some(ErrorCode::ConcurrencyError),
                    instance_usable: true,
                },
                M::None,
            ),
            (
                Bind,
                OmResult::Status {
                    status: 409,
                    code: Some(ErrorCode::ConcurrencyError),
                    instance_usable: true,
                },
                M::None,
            ),
            // connect failure behaves like 408
            (Provision, OmResult::NotSent, M::None),
            // platform failure after create
            (
                Provision,
                OmResult::PlatformFailureAfterCreate,
                M::Deprovision,
            ),
            (Bind, OmResult::PlatformFailureAfterCreate, M::Unbind),
            (Update, OmResult::PlatformFailureAfterCreate, M::None),
            // failed deprovision with a usable instance: policy decides
            (
                Deprovision,
                OmResult::AsyncFailed {
                    instance_usable: true,
                },
                M::None,
            ),
            (Deprovision, st(500), M::None),
        ];
        for (op, r, want) in &cases {
            assert_eq!(orphan_mitigation(*op, r, p), *want, "{op:?} {r:?}");
        }
        assert_eq!(
            orphan_mitigation(
                Deprovision,
                &OmResult::AsyncFailed {
                    instance_usable: true
                },
                OmPolicy::Always
            ),
            M::Deprovision
        );
        assert_eq!(
            orphan_mitigation(Deprovision, &st(500), OmPolicy::Always),
            M::Deprovision
        );
        // Total: every operation has an answer for every result shape without panicking.
        for op in all {
            for s in [
                100u16, 200, 201, 202, 204, 299, 300, 404, 410, 499, 500, 599, 600,
            ] {
                let _ = orphan_mitigation(op, &st(s), p);
                let _ = orphan_mitigation(op, &OmResult::Malformed { status: s }, p);
            }
        }
    }

    #[test]
    fn from_poll_and_error() {
        assert_eq!(
            OmResult::from_poll(&PollOutcome::TimedOut),
            Some(OmResult::AsyncFailed {
                instance_usable: true
            })
        );
        assert_eq!(OmResult::from_poll(&PollOutcome::Gone), None);
        let e = Error::Decode {
            status: 201,
            reason: crate::parse::ParseError::MissingState,
            excerpt: String::new(),
        };
        assert_eq!(
            orphan_mitigation(Provision, &OmResult::from_error(&e), OmPolicy::default()),
            M::Deprovision
        );
        let b = crate::BrokerError::from_response(
            http::StatusCode::CONFLICT,
            br#"{"error":"ConcurrencyError"}"#,
            None,
        );
        assert_eq!(
            OmResult::from_error(&b.into()),
            OmResult::Status {
                status: 409,
                code: Some(ErrorCode::ConcurrencyError),
                instance_usable: true
            }
        );
        // After the broker accepted the operation nothing is "not sent".
        let gate = Error::from(crate::Gate::NotRetrievable);
        assert_eq!(OmResult::from_error(&gate), OmResult::NotSent);
        assert!(!gate.may_have_been_sent());
        let fetch = Error::AfterAccepted {
            step: AcceptedStep::FetchBinding,
            source: Box::new(gate),
        };
        assert!(fetch.may_have_been_sent());
        assert_eq!(
            orphan_mitigation(Bind, &OmResult::from_error(&fetch), OmPolicy::default()),
            M::Unbind
        );
        let polling = Error::AfterAccepted {
            step: AcceptedStep::Polling,
            source: Box::new(Error::Cancelled),
        };
        assert_eq!(
            OmResult::from_error(&polling),
            OmResult::Success { status: 202 }
        );
    }
}
