//! Which objects a permission claim selects, and which side owns them.
//!
//! Klutch leaks unannotated consumer Secrets upward and ignores most of the selector; here the
//! whole selector applies to events from both sides, and an unannotated consumer object is only
//! treated as consumer-owned when the claim allows consumer ownership.

use std::collections::BTreeMap;

use kube::api::ObjectMeta;

use crate::api::ClaimOwner;
use crate::api::claims::ResourceSelector;
use crate::api::wellknown::RESOURCE_OWNER_ANNOTATION;

/// A claim selector that cannot be evaluated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A field selector other than `metadata.name`/`metadata.namespace` with `=`, `==` or `!=`.
    #[error(
        "unsupported field selector {selector:?}: only metadata.name and metadata.namespace with =, == or != are supported"
    )]
    InvalidFieldSelector {
        /// The selector as written.
        selector: String,
    },
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The side of the binding an object was seen on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The app cluster.
    Consumer,
    /// The control-plane cluster.
    Provider,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum FieldTerm {
    Equals { field: Field, value: String },
    NotEquals { field: Field, value: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Name,
    Namespace,
}

/// A parsed claim selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    names: Vec<String>,
    namespaces: Vec<String>,
    label_selectors: Vec<BTreeMap<String, String>>,
    field_terms: Vec<FieldTerm>,
    owner: Option<ClaimOwner>,
}

fn parse_term(term: &str) -> Result<FieldTerm> {
    let invalid = || Error::InvalidFieldSelector {
        selector: term.to_owned(),
    };
    let (key, op, value) = if let Some((k, v)) = term.split_once("!=") {
        (k, "!=", v)
    } else if let Some((k, v)) = term.split_once("==") {
        (k, "==", v)
    } else if let Some((k, v)) = term.split_once('=') {
        (k, "=", v)
    } else {
        return Err(invalid());
    };
    let field = match key.trim() {
        "metadata.name" => Field::Name,
        "metadata.namespace" => Field::Namespace,
        _ => return Err(invalid()),
    };
    let value = value.trim().to_owned();
    if value.contains(['=', '!']) {
        return Err(invalid());
    }
    Ok(if op == "!=" {
        FieldTerm::NotEquals { field, value }
    } else {
        FieldTerm::Equals { field, value }
    })
}

impl Selection {
    /// Parses a claim's selector; a field selector it cannot evaluate is an error (the konnector
    /// reports it as `Connected=False InvalidClaimSelector`).
    pub fn new(selector: &ResourceSelector) -> Result<Self> {
        let mut field_terms = Vec::new();
        for selector in &selector.field_selectors {
            for term in selector.split(',').filter(|t| !t.trim().is_empty()) {
                field_terms.push(parse_term(term)?);
            }
        }
        Ok(Selection {
            names: selector.names.clone(),
            namespaces: selector.namespaces.clone(),
            label_selectors: selector.label_selectors.clone(),
            field_terms,
            owner: selector.owner,
        })
    }

    /// Whether the object is selected. `consumer_ns` is the object's namespace as the consumer
    /// knows it (for provider objects: mapped back; `None` for cluster-scoped objects).
    pub fn matches(&self, meta: &ObjectMeta, consumer_ns: Option<&str>) -> bool {
        let name = meta.name.as_deref().unwrap_or_default();
        let wildcard_or = |list: &[String], value: &str| {
            list.is_empty() || list.iter().any(|v| v == "*" || v == value)
        };
        if !wildcard_or(&self.names, name) {
            return false;
        }
        if let Some(ns) = consumer_ns
            && !wildcard_or(&self.namespaces, ns)
        {
            return false;
        }
        let labels = meta.labels.clone().unwrap_or_default();
        if !self.label_selectors.is_empty()
            && !self
                .label_selectors
                .iter()
                .any(|sel| sel.iter().all(|(k, v)| labels.get(k) == Some(v)))
        {
            return false;
        }
        self.field_terms.iter().all(|term| {
            let actual = |field: &Field| match field {
                Field::Name => name,
                Field::Namespace => consumer_ns.unwrap_or_default(),
            };
            match term {
                FieldTerm::Equals { field, value } => actual(field) == value,
                FieldTerm::NotEquals { field, value } => actual(field) != value,
            }
        })
    }

    /// The claim's `selector.owner`, if set.
    pub fn claim_owner(&self) -> Option<ClaimOwner> {
        self.owner
    }

    /// Who owns an object seen on `side`, or `None` when the claim does not cover it:
    ///
    /// 1. a `klutch.anynines.com/resource-owner` annotation wins (an unknown value is ignored);
    /// 2. unannotated provider objects are provider-owned;
    /// 3. unannotated consumer objects are consumer-owned only if the claim's `owner` is
    ///    `Consumer` or unset, so under `owner: Provider` nothing unannotated ever goes up;
    /// 4. an owner that differs from the claim's `owner` is not covered.
    pub fn owner(&self, meta: &ObjectMeta, side: Side) -> Option<ClaimOwner> {
        let annotated = meta
            .annotations
            .as_ref()
            .and_then(|a| a.get(RESOURCE_OWNER_ANNOTATION))
            .and_then(|v| match v.as_str() {
                "Provider" => Some(ClaimOwner::Provider),
                "Consumer" => Some(ClaimOwner::Consumer),
                _ => None,
            });
        let owner = match (annotated, side) {
            (Some(owner), _) => owner,
            (None, Side::Provider) => ClaimOwner::Provider,
            (None, Side::Consumer) => match self.owner {
                None | Some(ClaimOwner::Consumer) => ClaimOwner::Consumer,
                Some(ClaimOwner::Provider) => return None,
            },
        };
        match self.owner {
            Some(wanted) if wanted != owner => None,
            _ => Some(owner),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(name: &str, labels: &[(&str, &str)], owner: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                    .collect(),
            ),
            annotations: owner
                .map(|o| [(RESOURCE_OWNER_ANNOTATION.to_string(), o.to_string())].into()),
            ..ObjectMeta::default()
        }
    }

    fn selection(f: impl FnOnce(&mut ResourceSelector)) -> Selection {
        let mut s = ResourceSelector::default();
        f(&mut s);
        Selection::new(&s).unwrap()
    }

    #[test]
    fn names_namespaces_labels_and_fields_all_apply() {
        let all = selection(|_| {});
        assert!(all.matches(&meta("a", &[], None), Some("team-a")));

        let named = selection(|s| s.names = vec!["db-creds".into()]);
        assert!(named.matches(&meta("db-creds", &[], None), Some("x")));
        assert!(!named.matches(&meta("other", &[], None), Some("x")));

        let in_ns = selection(|s| s.namespaces = vec!["team-a".into()]);
        assert!(in_ns.matches(&meta("a", &[], None), Some("team-a")));
        assert!(!in_ns.matches(&meta("a", &[], None), Some("team-b")));

        let labelled = selection(|s| {
            s.label_selectors = vec![
                [
                    ("app".to_string(), "db".to_string()),
                    ("tier".to_string(), "x".to_string()),
                ]
                .into(),
                [("keep".to_string(), "yes".to_string())].into(),
            ]
        });
        assert!(labelled.matches(&meta("a", &[("app", "db"), ("tier", "x")], None), None));
        assert!(
            labelled.matches(&meta("a", &[("keep", "yes")], None), None),
            "any selector may match"
        );
        assert!(
            !labelled.matches(&meta("a", &[("app", "db")], None), None),
            "all pairs of a selector must match"
        );

        let fields = selection(|s| {
            s.field_selectors = vec!["metadata.name!=secret-x, metadata.namespace==team-a".into()]
        });
        assert!(fields.matches(&meta("a", &[], None), Some("team-a")));
        assert!(!fields.matches(&meta("secret-x", &[], None), Some("team-a")));
        assert!(!fields.matches(&meta("a", &[], None), Some("team-b")));
    }

    #[test]
    fn unsupported_field_selectors_are_errors() {
        for bad in [
            "spec.x=1",
            "metadata.name",
            "metadata.name in (a)",
            "metadata.labels.x=y",
        ] {
            let s = ResourceSelector {
                field_selectors: vec![bad.into()],
                ..ResourceSelector::default()
            };
            assert_eq!(
                Selection::new(&s).unwrap_err(),
                Error::InvalidFieldSelector {
                    selector: bad.into()
                },
                "{bad}"
            );
        }
    }

    #[test]
    fn ownership_never_leaks_unannotated_consumer_objects_upward() {
        let provider_owned = selection(|s| s.owner = Some(ClaimOwner::Provider));
        let consumer_owned = selection(|s| s.owner = Some(ClaimOwner::Consumer));
        let any = selection(|_| {});
        let plain = meta("s", &[], None);
        // The Klutch defect: an unannotated consumer Secret under owner Provider must stay down.
        assert_eq!(provider_owned.owner(&plain, Side::Consumer), None);
        assert_eq!(
            provider_owned.owner(&plain, Side::Provider),
            Some(ClaimOwner::Provider)
        );
        assert_eq!(
            consumer_owned.owner(&plain, Side::Consumer),
            Some(ClaimOwner::Consumer)
        );
        assert_eq!(
            consumer_owned.owner(&plain, Side::Provider),
            None,
            "provider objects are not consumer-owned"
        );
        assert_eq!(
            any.owner(&plain, Side::Consumer),
            Some(ClaimOwner::Consumer)
        );
        assert_eq!(
            any.owner(&plain, Side::Provider),
            Some(ClaimOwner::Provider)
        );
        // An annotation wins, but must agree with the claim.
        let marked = meta("s", &[], Some("Provider"));
        assert_eq!(
            any.owner(&marked, Side::Consumer),
            Some(ClaimOwner::Provider)
        );
        assert_eq!(consumer_owned.owner(&marked, Side::Consumer), None);
        let garbage = meta("s", &[], Some("Somebody"));
        assert_eq!(provider_owned.owner(&garbage, Side::Consumer), None);
    }
}
