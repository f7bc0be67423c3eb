//! Conditions in the cluster-api style Klutch uses (not `metav1.Condition`): a `severity`
//! besides the status, and a `Ready` condition that summarises all others.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

/// The `Ready` condition type.
pub const READY: &str = "Ready";

/// One condition of a bind object's status.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// The condition's type, e.g. `Ready` or `SecretValid`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: ConditionStatus,
    /// How bad a `False` condition is; only set when the status is `False`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "empty_as_none"
    )]
    #[schemars(schema_with = "severity_schema")]
    pub severity: Option<Severity>,
    /// When the condition last changed its status, severity, reason or message (whole seconds).
    pub last_transition_time: Time,
    /// A machine-readable reason in PascalCase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The status of a [`Condition`]. The CRD schemas list the three values (Klutch's allow any
/// string), so the API server refuses what the backend could not read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// Not known (yet).
    Unknown,
}

/// The severity of a `False` [`Condition`], ordered from worst to mildest.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[schemars(with = "String")]
pub enum Severity {
    /// Needs action.
    Error,
    /// May need action.
    Warning,
    /// Informational, e.g. "waiting for the first heartbeat".
    Info,
}

/// The schema of `severity`: one of the variants or `""` (Go components write the empty string).
fn severity_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "enum": ["Error", "Warning", "Info", ""],
    })
}

fn empty_as_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Severity>, D::Error> {
    match Option::<String>::deserialize(d)?.as_deref() {
        None | Some("") => Ok(None),
        Some("Error") => Ok(Some(Severity::Error)),
        Some("Warning") => Ok(Some(Severity::Warning)),
        Some("Info") => Ok(Some(Severity::Info)),
        Some(other) => Err(serde::de::Error::unknown_variant(
            other,
            &["Error", "Warning", "Info", ""],
        )),
    }
}

impl Condition {
    /// A `True` condition.
    pub fn true_(type_: &str, now: Time) -> Self {
        Condition {
            type_: type_.into(),
            status: ConditionStatus::True,
            severity: None,
            last_transition_time: now,
            reason: None,
            message: None,
        }
    }

    /// A `False` condition with a severity, reason and message.
    pub fn false_(
        type_: &str,
        severity: Severity,
        reason: &str,
        message: impl Into<String>,
        now: Time,
    ) -> Self {
        Condition {
            type_: type_.into(),
            status: ConditionStatus::False,
            severity: Some(severity),
            last_transition_time: now,
            reason: Some(reason.into()),
            message: Some(message.into()),
        }
    }

    /// An `Unknown` condition with a reason and message.
    pub fn unknown(type_: &str, reason: &str, message: impl Into<String>, now: Time) -> Self {
        Condition {
            type_: type_.into(),
            status: ConditionStatus::Unknown,
            severity: None,
            last_transition_time: now,
            reason: Some(reason.into()),
            message: Some(message.into()),
        }
    }

    fn same_state(&self, other: &Condition) -> bool {
        self.status == other.status
            && self.severity == other.severity
            && self.reason == other.reason
            && self.message == other.message
    }

    /// Rank for the `Ready` summary: lower is more important.
    fn rank(&self) -> u8 {
        match (self.status, self.severity) {
            (ConditionStatus::False, Some(Severity::Error)) => 0,
            (ConditionStatus::False, Some(Severity::Warning)) => 1,
            (ConditionStatus::False, _) => 2,
            (ConditionStatus::True, _) => 3,
            (ConditionStatus::Unknown, _) => 4,
        }
    }
}

/// Sets `condition` in `conditions`, keeping the old `lastTransitionTime` when neither status,
/// severity, reason nor message changed, and sorts the list (`Ready` first, then by type).
///
/// ```
/// use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
/// use klutch_sdk::api::conditions::{set, Condition};
///
/// let t0 = Time("2026-01-01T00:00:00Z".parse().unwrap());
/// let t1 = Time("2026-01-01T00:05:00Z".parse().unwrap());
/// let mut conditions = Vec::new();
/// set(&mut conditions, Condition::true_("SecretValid", t0.clone()));
/// set(&mut conditions, Condition::true_("SecretValid", t1)); // unchanged: keeps t0
/// assert_eq!(conditions[0].last_transition_time, t0);
/// ```
pub fn set(conditions: &mut Vec<Condition>, mut condition: Condition) {
    if let Some(existing) = conditions.iter_mut().find(|c| c.type_ == condition.type_) {
        if existing.same_state(&condition) {
            condition.last_transition_time = existing.last_transition_time.clone();
        }
        *existing = condition;
    } else {
        conditions.push(condition);
    }
    conditions.sort_by(|a, b| (a.type_ != READY, &a.type_).cmp(&(b.type_ != READY, &b.type_)));
}

/// The condition of type `type_`, if present.
pub fn get<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Sets `Ready` as the summary of every other condition: the worst group wins (False/Error, then
/// False/Warning, then False/Info, then True, then Unknown). A `True` winner gives `Ready=True`;
/// `False` gives `Ready=False` with the severity, reason and message of the first condition of
/// that group (by type); `Unknown` gives `Ready=Unknown` with its reason and message. Without any
/// other condition, `Ready` is left alone.
pub fn summarize_ready(conditions: &mut Vec<Condition>, now: Time) {
    let worst = conditions
        .iter()
        .filter(|c| c.type_ != READY)
        .min_by(|a, b| a.rank().cmp(&b.rank()).then_with(|| a.type_.cmp(&b.type_)))
        .cloned();
    let Some(worst) = worst else { return };
    let ready = match worst.status {
        ConditionStatus::True => Condition::true_(READY, now),
        ConditionStatus::False => Condition {
            type_: READY.into(),
            status: ConditionStatus::False,
            severity: worst.severity,
            last_transition_time: now,
            reason: worst.reason,
            message: worst.message,
        },
        ConditionStatus::Unknown => Condition {
            type_: READY.into(),
            status: ConditionStatus::Unknown,
            severity: None,
            last_transition_time: now,
            reason: worst.reason,
            message: worst.message,
        },
    };
    set(conditions, ready);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Time {
        Time(format!("2026-01-01T00:00:{s}Z").parse().unwrap())
    }

    #[test]
    fn ready_is_sorted_first_and_transition_time_only_moves_on_change() {
        let mut cs = Vec::new();
        set(&mut cs, Condition::true_("SecretValid", t("01")));
        set(&mut cs, Condition::true_("Connected", t("01")));
        summarize_ready(&mut cs, t("02"));
        let types: Vec<&str> = cs.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["Ready", "Connected", "SecretValid"]);
        set(&mut cs, Condition::true_("SecretValid", t("05")));
        assert_eq!(
            get(&cs, "SecretValid").unwrap().last_transition_time,
            t("01")
        );
        set(
            &mut cs,
            Condition::false_(
                "SecretValid",
                Severity::Error,
                "KubeconfigSecretNotFound",
                "gone",
                t("06"),
            ),
        );
        assert_eq!(
            get(&cs, "SecretValid").unwrap().last_transition_time,
            t("06")
        );
    }

    #[test]
    fn ready_summary_takes_the_worst_group() {
        let mut cs = vec![
            Condition::true_("A", t("00")),
            Condition::unknown("B", "Pending", "wait", t("00")),
            Condition::false_("D", Severity::Info, "Slow", "info", t("00")),
            Condition::false_("C", Severity::Warning, "Meh", "warn", t("00")),
        ];
        summarize_ready(&mut cs, t("09"));
        let ready = get(&cs, READY).unwrap();
        assert_eq!(
            (ready.status, ready.severity, ready.reason.as_deref()),
            (ConditionStatus::False, Some(Severity::Warning), Some("Meh"))
        );

        let mut cs = vec![
            Condition::true_("A", t("00")),
            Condition::unknown("B", "Pending", "wait", t("00")),
        ];
        summarize_ready(&mut cs, t("09"));
        assert_eq!(
            get(&cs, READY).unwrap().status,
            ConditionStatus::True,
            "True outranks Unknown"
        );

        let mut cs = vec![Condition::unknown("B", "Pending", "wait", t("00"))];
        summarize_ready(&mut cs, t("09"));
        assert_eq!(get(&cs, READY).unwrap().reason.as_deref(), Some("Pending"));
    }

    #[test]
    fn empty_severity_from_go_components_reads_as_none() {
        let c: Condition = serde_json::from_value(serde_json::json!({
            "type": "Ready", "status": "True", "severity": "", "lastTransitionTime": "2026-01-01T00:00:00Z"
        }))
        .unwrap();
        assert_eq!(c.severity, None);
        let err = serde_json::from_value::<Condition>(serde_json::json!({
            "type": "Ready", "status": "False", "severity": "Fatal", "lastTransitionTime": "2026-01-01T00:00:00Z"
        }))
        .unwrap_err();
        assert!(err.to_string().contains("Fatal"), "{err}");
    }
}
