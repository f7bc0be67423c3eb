//! Consent per permission claim (spec §6.4): the prompt text, `--accept-claims`, and the
//! decision stored on the APIServiceBinding.

use klutch_sdk::api::naming::group_resource_name;
use klutch_sdk::api::{AcceptablePermissionClaim, ClaimOwner, ClaimState, PermissionClaim};

use crate::error::{Error, Result};
use crate::io::Io;

/// `--accept-claims`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AcceptClaims {
    /// Accept every claim.
    All,
    /// Reject every claim.
    None,
    /// Accept the listed resources (`secrets` or `<resource>.<group>`), reject the others.
    Only(Vec<String>),
}

impl AcceptClaims {
    /// Parses the flag's value.
    pub fn parse(text: &str) -> Result<AcceptClaims> {
        let text = text.trim();
        match text.to_ascii_lowercase().as_str() {
            "all" => return Ok(AcceptClaims::All),
            "none" => return Ok(AcceptClaims::None),
            _ => {}
        }
        let items: Vec<String> = text
            .split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        if items.is_empty() {
            return Err(Error::Usage(
                "--accept-claims needs all, none or a comma-separated list of resources".into(),
            ));
        }
        if let Some(bad) = items.iter().find(|i| {
            !i.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        }) {
            return Err(Error::Usage(format!(
                "--accept-claims: {bad:?} is not a resource name like secrets or widgets.example.com"
            )));
        }
        Ok(AcceptClaims::Only(items))
    }

    /// Whether the claim is accepted.
    pub fn accepts(&self, claim: &PermissionClaim) -> bool {
        match self {
            AcceptClaims::All => true,
            AcceptClaims::None => false,
            AcceptClaims::Only(items) => items.iter().any(|item| {
                *item == claim.group_resource.resource
                    || *item == group_resource_name(&claim.group_resource)
            }),
        }
    }
}

/// `<resource>` or `<resource>.<group>` (the binding-name rule of `klutch_sdk::api::naming`).
pub fn claim_name(claim: &PermissionClaim) -> String {
    group_resource_name(&claim.group_resource)
}

/// The consent text of one claim, as Klutch words it plus the selectors (ours), ending with the
/// question.
pub fn prompt_text(claim: &PermissionClaim) -> String {
    let gr = &claim.group_resource;
    let api_version = if gr.group.is_empty() {
        claim.version.clone()
    } else {
        format!("{}/{}", gr.group, claim.version)
    };
    let verb = if claim.auto_donate == Some(true) {
        "create user owned"
    } else if claim.auto_adopt == Some(true) {
        "have ownership of"
    } else {
        match claim.selector.owner {
            Some(ClaimOwner::Provider) => "write",
            Some(ClaimOwner::Consumer) => "read",
            None => "read and write",
        }
    };
    let mut text = format!(
        "The provider wants to {verb} {} objects (apiVersion: \"{api_version}\")",
        gr.resource
    );
    let names: Vec<&String> = claim.selector.names.iter().filter(|n| *n != "*").collect();
    if !names.is_empty() {
        text.push_str(" which are referenced with:\n");
        for name in names {
            text.push_str(&format!("\t- name: \"{name}\"\n"));
        }
    }
    text.push_str(" on your cluster. ");
    let namespaces: Vec<&String> = claim
        .selector
        .namespaces
        .iter()
        .filter(|n| *n != "*")
        .collect();
    if !namespaces.is_empty() {
        text.push_str(&format!(
            "Only in the namespaces {}. ",
            namespaces
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !claim.selector.label_selectors.is_empty() {
        let selectors: Vec<String> = claim
            .selector
            .label_selectors
            .iter()
            .map(|labels| {
                labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect();
        text.push_str(&format!(
            "Only objects labelled {}. ",
            selectors
                .iter()
                .map(|s| format!("\"{s}\""))
                .collect::<Vec<_>>()
                .join(" or ")
        ));
    }
    if claim.create.as_ref().and_then(|c| c.replace_existing) == Some(true) {
        text.push_str("Conflicting objects will be replaced by the provider. ");
    }
    if claim.on_conflict.recreate_when_consumer_side_deleted {
        text.push_str("Created objects will be recreated upon deletion. ");
    }
    if let Some(update) = &claim.update {
        if !update.fields.is_empty() {
            text.push_str(&format!(
                "The provider will update the fields {}. ",
                update.fields.join(", ")
            ));
        }
        if !update.preserving.is_empty() {
            text.push_str(&format!(
                "The fields {} will be preserved on updates. ",
                update.preserving.join(", ")
            ));
        }
        if update.always_recreate == Some(true) {
            text.push_str("Objects will be deleted and recreated on every update. ");
        }
    }
    let trimmed = text.trim_end().len();
    text.truncate(trimmed);
    if claim.required {
        text.push_str("\nAccepting this Permission is required in order to proceed.\n");
    } else {
        text.push_str("\nAccepting this Permission is optional.\n");
    }
    text.push_str("Do you accept this Permission? [No,Yes]\n");
    text
}

/// Parses an answer: `Some(true)` for y/yes, `Some(false)` for n/no, `None` to ask again.
pub fn parse_answer(line: &str) -> Option<bool> {
    match line.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Some(true),
        "n" | "no" => Some(false),
        _ => None,
    }
}

/// Decides every claim: from `--accept-claims`, else by asking on the terminal; a declined
/// required claim or no way to ask is an error.
pub async fn decide(
    io: &mut Io,
    claims: &[PermissionClaim],
    flag: Option<&AcceptClaims>,
) -> Result<Vec<AcceptablePermissionClaim>> {
    if claims.is_empty() {
        return Ok(Vec::new());
    }
    if flag.is_none() && !io.interactive {
        let names: Vec<String> = claims.iter().map(claim_name).collect();
        return Err(Error::ConsentNeeded(names.join(", ")));
    }
    let mut decided = Vec::with_capacity(claims.len());
    for claim in claims {
        let accepted = match flag {
            Some(flag) => flag.accepts(claim),
            None => ask(io, claim).await?,
        };
        if !accepted && claim.required {
            return Err(Error::RequiredClaimRejected(claim_name(claim)));
        }
        decided.push(AcceptablePermissionClaim {
            claim: claim.clone(),
            state: if accepted {
                ClaimState::Accepted
            } else {
                ClaimState::Rejected
            },
        });
    }
    Ok(decided)
}

async fn ask(io: &mut Io, claim: &PermissionClaim) -> Result<bool> {
    let text = prompt_text(claim);
    let io_err = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::Interrupted {
            Error::Interrupted
        } else {
            Error::Io {
                op: "ask for consent".into(),
                source,
            }
        }
    };
    io.out(&text).map_err(io_err)?;
    loop {
        let Some(line) = io.read_line().await.map_err(io_err)? else {
            return Err(Error::ConsentNeeded(claim_name(claim)));
        };
        if let Some(answer) = parse_answer(&line) {
            return Ok(answer);
        }
        io.out("Please answer Yes or No. Do you accept this Permission? [No,Yes]\n")
            .map_err(io_err)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use klutch_sdk::api::GroupResource;

    fn claim(json: serde_json::Value) -> PermissionClaim {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn accept_claims_parses_and_matches() {
        assert_eq!(AcceptClaims::parse("all").unwrap(), AcceptClaims::All);
        assert_eq!(AcceptClaims::parse("NONE").unwrap(), AcceptClaims::None);
        let only = AcceptClaims::parse("secrets, widgets.example.com").unwrap();
        let secrets = claim(serde_json::json!({"resource": "secrets", "version": "v1"}));
        let configmaps = claim(serde_json::json!({"resource": "configmaps", "version": "v1"}));
        let widgets = claim(
            serde_json::json!({"group": "example.com", "resource": "widgets", "version": "v1"}),
        );
        assert!(only.accepts(&secrets));
        assert!(!only.accepts(&configmaps));
        assert!(only.accepts(&widgets));
        assert!(AcceptClaims::All.accepts(&configmaps));
        assert!(!AcceptClaims::None.accepts(&secrets));
        assert!(AcceptClaims::parse(" , ").is_err());
        assert!(AcceptClaims::parse("Secrets!").is_err());
        assert_eq!(claim_name(&widgets), "widgets.example.com");
        let _ = GroupResource::default();
    }

    #[test]
    fn prompts_read_like_klutch() {
        let provider_secrets = claim(serde_json::json!({
            "resource": "secrets", "version": "v1", "required": false,
            "selector": {"names": ["*"], "namespaces": ["*"], "owner": "Provider"}}));
        insta::assert_snapshot!("prompt_provider_secrets", prompt_text(&provider_secrets));
        let everything = claim(serde_json::json!({
            "group": "example.com", "resource": "widgets", "version": "v2", "required": true,
            "selector": {"names": ["a", "b"], "namespaces": ["team-a"], "labelSelectors": [{"app": "x"}], "owner": "Consumer"},
            "create": {"replaceExisting": true},
            "onConflict": {"recreateWhenConsumerSideDeleted": false},
            "update": {"fields": ["spec.size"], "preserving": ["spec.paused"], "alwaysRecreate": true}}));
        insta::assert_snapshot!("prompt_everything", prompt_text(&everything));
        let adopt = claim(
            serde_json::json!({"resource": "configmaps", "version": "v1", "autoAdopt": true}),
        );
        assert!(
            prompt_text(&adopt).starts_with("The provider wants to have ownership of configmaps")
        );
        let donate = claim(
            serde_json::json!({"resource": "configmaps", "version": "v1", "autoDonate": true}),
        );
        assert!(
            prompt_text(&donate).starts_with("The provider wants to create user owned configmaps")
        );
        let both = claim(serde_json::json!({"resource": "configmaps", "version": "v1"}));
        assert!(
            prompt_text(&both).contains("read and write configmaps objects (apiVersion: \"v1\")")
        );
    }

    #[test]
    fn answers_are_yes_no_case_insensitive() {
        assert_eq!(parse_answer("Y\n"), Some(true));
        assert_eq!(parse_answer(" YES "), Some(true));
        assert_eq!(parse_answer("n"), Some(false));
        assert_eq!(parse_answer("No"), Some(false));
        assert_eq!(parse_answer("maybe"), None);
        assert_eq!(parse_answer(""), None);
    }

    #[tokio::test]
    async fn decisions_follow_flags_prompts_and_required_claims() {
        let optional = claim(serde_json::json!({"resource": "configmaps", "version": "v1"}));
        let required =
            claim(serde_json::json!({"resource": "secrets", "version": "v1", "required": true}));
        let claims = vec![optional.clone(), required.clone()];

        // No terminal, no flag: an error naming the claims.
        let (mut io, _, _) = Io::capture("");
        let err = decide(&mut io, &claims, None).await.unwrap_err();
        assert!(err.to_string().contains("configmaps, secrets"), "{err}");
        assert_eq!(err.exit_code(), 7);

        // Flag: stored states.
        let (mut io, _, _) = Io::capture("");
        let states = decide(
            &mut io,
            &claims,
            Some(&AcceptClaims::parse("secrets").unwrap()),
        )
        .await
        .unwrap();
        assert_eq!(states[0].state, ClaimState::Rejected);
        assert_eq!(states[1].state, ClaimState::Accepted);
        let err = decide(&mut io, &claims, Some(&AcceptClaims::None))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::RequiredClaimRejected(ref r) if r == "secrets"),
            "{err}"
        );

        // Interactive: re-asks on nonsense.
        let (mut io, out, _) = Io::capture("maybe\nyes\nno\n");
        io.interactive = true;
        let err = decide(&mut io, &claims, None).await.unwrap_err();
        assert!(matches!(err, Error::RequiredClaimRejected(_)));
        let (mut io, out2, _) = Io::capture("maybe\nyes\ny\n");
        io.interactive = true;
        let states = decide(&mut io, &claims, None).await.unwrap();
        assert!(states.iter().all(|s| s.state == ClaimState::Accepted));
        insta::assert_snapshot!("prompt_session", out2.contents());
        assert!(out.contents().contains("Please answer Yes or No"));
        // End of input while asking: consent missing.
        let (mut io, _, _) = Io::capture("");
        io.interactive = true;
        assert!(matches!(
            decide(&mut io, &[optional], None).await,
            Err(Error::ConsentNeeded(_))
        ));
        let _ = required;
    }
}

#[cfg(test)]
mod cancel_tests {
    use super::*;

    #[tokio::test]
    async fn ctrl_c_while_the_prompt_waits_interrupts_it() {
        /// Blocks like a terminal nobody types into, until the test lets go.
        struct Waiting(std::sync::mpsc::Receiver<()>);
        impl std::io::Read for Waiting {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                let _ = self.0.recv();
                Ok(0)
            }
        }
        let (release, wait) = std::sync::mpsc::channel();
        let (mut io, _, _) = Io::capture("");
        io.stdin = Box::new(std::io::BufReader::new(Waiting(wait)));
        io.interactive = true;
        io.cancel.cancel();
        let claim: PermissionClaim =
            serde_json::from_value(serde_json::json!({"resource": "secrets", "version": "v1"}))
                .unwrap();
        assert!(matches!(
            decide(&mut io, &[claim], None).await,
            Err(Error::Interrupted)
        ));
        drop(release);
    }
}
