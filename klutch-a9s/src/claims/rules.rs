//! CEL rules and schema helpers shared by the claim types. The messages are Klutch v1.5's, so
//! users and scripts see the same rejections.

use kube::core::{Message, Rule};

/// `{type: object, x-kubernetes-preserve-unknown-fields: true}`.
pub(crate) fn free_form_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// A list of free-form objects.
pub(crate) fn free_form_object_list(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
    })
}

/// An integer or a string (`x-kubernetes-int-or-string`).
pub(crate) fn int_or_string(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "x-kubernetes-int-or-string": true,
    })
}

pub(crate) const SERVICE_IMMUTABLE: &str = "Service is an immutable field";
pub(crate) const DOWNSIZING: &str = "Transition from bigger to smaller plan size is not supported.";

/// `service` cannot change.
pub(crate) fn service_immutable() -> Rule {
    Rule::new("self == oldSelf").message(SERVICE_IMMUTABLE)
}

/// No move to a smaller size; `sizes` from smallest to biggest (plan names contain them).
pub(crate) fn no_downsizing(sizes: &[&str]) -> Rule {
    let mut terms = Vec::new();
    for (i, smaller) in sizes.iter().enumerate() {
        for bigger in &sizes[i + 1..] {
            terms.push(format!(
                "!(self.contains('{smaller}') && oldSelf.contains('{bigger}'))"
            ));
        }
    }
    Rule::new(terms.join(" && ")).message(DOWNSIZING)
}

/// The `-ssl` flag of a plan cannot change.
pub(crate) fn ssl_unchanged() -> Rule {
    Rule::new("oldSelf.contains('ssl') == self.contains('ssl')")
        .message("Plan migrations not possible from Non-SSL to SSL and SSL to Non-SSL")
}

/// The `-bionic` flag of a plan cannot change.
pub(crate) fn bionic_unchanged() -> Rule {
    Rule::new("oldSelf.contains('bionic') == self.contains('bionic')")
        .message("Plan migrations not possible from Non-Bionic to Bionic and Bionic to Non-Bionic")
}

/// No move from a `-<clustered>-` plan to a `-single-` one.
pub(crate) fn no_clustered_to_single(clustered: &str, message: &str) -> Rule {
    Rule::new(format!(
        "!(self.contains('-single-') && oldSelf.contains('-{clustered}-'))"
    ))
    .message(Message::Message(message.to_string()))
}

/// No move from a `-single-` plan to a `-<clustered>-` one.
pub(crate) fn no_single_to_clustered(clustered: &str) -> Rule {
    Rule::new(format!(
        "!(self.contains('-{clustered}-') && oldSelf.contains('-single-'))"
    ))
    .message("Migration from single to clustered Data Service Instance is not supported.")
}

/// `self >= n`.
pub(crate) fn at_least(n: i64) -> Rule {
    Rule::new(format!("self >= {n}")).message(Message::Message(format!(
        "Must be greater than or equal to {n}"
    )))
}

/// `self <= n`.
pub(crate) fn at_most(n: i64) -> Rule {
    Rule::new(format!("self <= {n}")).message(Message::Message(format!(
        "Must be smaller than or equal to {n}"
    )))
}

/// `self > n`.
pub(crate) fn greater_than(n: i64) -> Rule {
    Rule::new(format!("self > {n}")).message(Message::Message(format!("Must be greater than {n}")))
}

/// `self >= 0` with KeyValue's wording.
pub(crate) fn not_negative() -> Rule {
    Rule::new("self >= 0").message("Must not be a negative number.")
}

/// The composition a claim uses: `spec.compositionRef.name`, or `default` when the claim names
/// none (Crossplane then selects the default composition). Upstream read
/// `self.compositionRef.name` unguarded, which fails on claims without a reference.
pub(crate) fn composition(default: &str) -> String {
    format!("(has(self.compositionRef) ? self.compositionRef.name : '{default}')")
}

/// `parameters.<p>` may only be set when `condition` holds.
pub(crate) fn parameter_only_if(parameter: &str, condition: &str, message: String) -> Rule {
    Rule::new(format!(
        "!(has(self.parameters) && has(self.parameters.{parameter})) || {condition}"
    ))
    .message(Message::Message(message))
}

/// A list of `self == '<v>'` alternatives.
pub(crate) fn one_of(subject: &str, values: &[&str]) -> String {
    let alternatives: Vec<String> = values
        .iter()
        .map(|v| format!("{subject} == '{v}'"))
        .collect();
    format!("({})", alternatives.join(" || "))
}
