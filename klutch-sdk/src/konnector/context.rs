//! Sync contexts (§5.6): per bound export, the resource syncer and one claimed-resource syncer
//! per accepted claim. Unbinding is [`super::unbind`]'s.

use std::sync::Arc;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt as _;
use kube::api::{ApiResource, GroupVersionKind};
use tokio_util::sync::CancellationToken;

use super::claimed::ClaimSyncer;
use super::connection::Provider;
use super::status;
use super::syncer::ResourceSyncer;
use crate::api::{APIServiceBinding, APIServiceExport, ClaimState, Condition, Severity};
use crate::sync::claims::Selection;

/// The bound resource: first served version of the export.
pub fn resource(export: &APIServiceExport) -> Option<ApiResource> {
    let spec = &export.spec;
    let version = spec.versions.iter().find(|v| v.served)?;
    Some(ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(&spec.group, &version.name, &spec.names.kind),
        &spec.names.plural,
    ))
}

/// The restart key of a context: export generation, CRD UID, accepted claims.
pub fn key(
    binding: &APIServiceBinding,
    export: &APIServiceExport,
    crd: &CustomResourceDefinition,
) -> String {
    let claims: Vec<_> = binding
        .spec
        .permission_claims
        .iter()
        .filter(|c| c.state == ClaimState::Accepted)
        .collect();
    format!(
        "{}/{}/{}",
        export.metadata.generation.unwrap_or_default(),
        crd.metadata.uid.as_deref().unwrap_or_default(),
        serde_json::to_string(&claims).unwrap_or_default()
    )
}

/// `Connected=False` when a required claim of the export is not accepted
/// (`RequiredClaimRejected`) or an accepted claim's selector is invalid (`InvalidClaimSelector`).
pub fn check_claims(
    binding: &APIServiceBinding,
    export: &APIServiceExport,
) -> Result<(), Condition> {
    for claim in export.spec.permission_claims.iter().filter(|c| c.required) {
        let accepted = binding.spec.permission_claims.iter().any(|b| {
            b.state == ClaimState::Accepted && b.claim.group_resource == claim.group_resource
        });
        if !accepted {
            return Err(status::bad(
                "Connected",
                Severity::Error,
                "RequiredClaimRejected",
                format!(
                    "The required permission claim for {} was not accepted",
                    claim.group_resource.resource
                ),
            ));
        }
    }
    for claim in binding
        .spec
        .permission_claims
        .iter()
        .filter(|c| c.state == ClaimState::Accepted)
    {
        if let Err(e) = Selection::new(&claim.claim.selector) {
            return Err(status::bad(
                "Connected",
                Severity::Error,
                "InvalidClaimSelector",
                e.to_string(),
            ));
        }
    }
    Ok(())
}

/// Runs the syncers of one binding until `cancel` fires.
pub async fn run(
    p: Arc<Provider>,
    binding: APIServiceBinding,
    export: APIServiceExport,
    _crd: CustomResourceDefinition,
    cancel: CancellationToken,
) {
    let Some(ar) = resource(&export) else {
        tracing::warn!(export = %export.name_any(), "the export serves no version; nothing to sync");
        return;
    };
    tracing::info!(binding = %binding.name_any(), resource = %ar.plural, "starting the sync context");
    let placement = p.shared.placement.placement(&export);
    let syncer = ResourceSyncer::new(
        p.shared.consumer.clone(),
        p.client.clone(),
        ar,
        &p.namespace,
    )
    .with_placement(placement)
    .with_observer(p.shared.observer.clone());
    let mut tasks = Vec::new();
    for claim in binding
        .spec
        .permission_claims
        .iter()
        .filter(|c| c.state == ClaimState::Accepted)
    {
        let claim = claim.claim.clone();
        let Some(claim_ar) = claimed_resource(&p.shared.consumer, &claim).await else {
            tracing::warn!(resource = %claim.group_resource.resource, "claimed resource not found in the consumer cluster; not synced");
            continue;
        };
        match ClaimSyncer::new(
            p.shared.consumer.clone(),
            p.client.clone(),
            claim_ar,
            claim,
            &p.namespace,
        ) {
            Ok(claims) => {
                let claims = claims.with_observer(p.shared.observer.clone());
                let shutdown = cancel.clone();
                tasks.push(tokio::spawn(
                    claims.run(async move { shutdown.cancelled().await }),
                ));
            }
            Err(e) => tracing::warn!(error = %e, "claim not synced"),
        }
    }
    let shutdown = cancel.clone();
    syncer.run(async move { shutdown.cancelled().await }).await;
    for t in tasks {
        let _ = t.await;
    }
    tracing::info!(binding = %binding.name_any(), "sync context stopped");
}

/// The API resource a claim names: core Secrets and ConfigMaps directly, anything else through
/// discovery in the consumer cluster.
async fn claimed_resource(
    client: &kube::Client,
    claim: &crate::api::PermissionClaim,
) -> Option<ApiResource> {
    let gr = &claim.group_resource;
    let known = match (gr.group.as_str(), gr.resource.as_str()) {
        ("", "secrets") => Some("Secret"),
        ("", "configmaps") => Some("ConfigMap"),
        _ => None,
    };
    if let Some(kind) = known {
        return Some(ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("", &claim.version, kind),
            &gr.resource,
        ));
    }
    let gv = kube::core::GroupVersion {
        group: gr.group.clone(),
        version: claim.version.clone(),
    };
    let group = kube::discovery::oneshot::pinned_group(client, &gv)
        .await
        .ok()?;
    group
        .recommended_resources()
        .into_iter()
        .map(|(ar, _)| ar)
        .find(|ar| ar.plural == gr.resource)
}
