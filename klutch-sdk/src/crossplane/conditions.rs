//! The `Ready` and `Synced` conditions of Crossplane and how they are set:
//! `lastTransitionTime` changes only when the status changes, and every written condition
//! carries the generation it was computed for.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::api::Condition;

/// The `Ready` condition type.
pub const READY: &str = "Ready";
/// The `Synced` condition type.
pub const SYNCED: &str = "Synced";

fn cond(type_: &str, status: &str, reason: &str, message: Option<String>) -> Condition {
    Condition {
        type_: type_.into(),
        status: status.into(),
        last_transition_time: Time(k8s_openapi::jiff::Timestamp::now()),
        reason: reason.into(),
        message: message.filter(|m| !m.is_empty()),
        observed_generation: None,
    }
}

/// `Ready=True Available`.
pub fn available() -> Condition {
    cond(READY, "True", "Available", None)
}

/// `Ready=True Available` with a message.
pub fn available_with(message: impl Into<String>) -> Condition {
    cond(READY, "True", "Available", Some(message.into()))
}

/// `Ready=False Creating`.
pub fn creating() -> Condition {
    cond(READY, "False", "Creating", None)
}

/// `Ready=False Creating` with a message (e.g. "operation update in progress").
pub fn creating_with(message: impl Into<String>) -> Condition {
    cond(READY, "False", "Creating", Some(message.into()))
}

/// `Ready=False Deleting`.
pub fn deleting() -> Condition {
    cond(READY, "False", "Deleting", None)
}

/// `Ready=False Unavailable` with a message.
pub fn unavailable(message: impl Into<String>) -> Condition {
    cond(READY, "False", "Unavailable", Some(message.into()))
}

/// `Synced=True ReconcileSuccess`.
pub fn reconcile_success() -> Condition {
    cond(SYNCED, "True", "ReconcileSuccess", None)
}

/// `Synced=False ReconcileError` with a message for users.
pub fn reconcile_error(message: impl Into<String>) -> Condition {
    cond(SYNCED, "False", "ReconcileError", Some(message.into()))
}

/// `Synced=False ReconcilePaused`.
pub fn reconcile_paused() -> Condition {
    cond(
        SYNCED,
        "False",
        "ReconcilePaused",
        Some("Reconciliation is paused via the pause annotation".into()),
    )
}

/// The condition of `type_`, if set.
pub fn get<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Sets `c` (replacing the condition of the same type), keeping the old
/// `lastTransitionTime` when the status did not change, and stamps `generation`.
///
/// ```
/// use klutch_sdk::crossplane::conditions::{self, available, creating};
/// let mut list = Vec::new();
/// conditions::set(&mut list, creating(), Some(1));
/// let t = list[0].last_transition_time.clone();
/// conditions::set(&mut list, conditions::creating_with("still"), Some(2));
/// assert_eq!(list[0].last_transition_time, t);
/// assert_eq!(list[0].observed_generation, Some(2));
/// conditions::set(&mut list, available(), Some(2));
/// assert_eq!(list.len(), 1);
/// ```
pub fn set(conditions: &mut Vec<Condition>, mut c: Condition, generation: Option<i64>) {
    c.observed_generation = generation;
    match conditions.iter_mut().find(|o| o.type_ == c.type_) {
        Some(old) => {
            if old.status == c.status {
                c.last_transition_time = old.last_transition_time.clone();
            }
            *old = c;
        }
        None => conditions.push(c),
    }
}

/// True when `conditions` has `type_` with status `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    get(conditions, type_).is_some_and(|c| c.status == "True")
}
