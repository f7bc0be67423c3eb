//! APIServiceExport refresh (spec §4.5.3): exports follow their provider CRD.
//!
//! CRD gone → the export is deleted. The CRD no longer converts → `ProviderInSync=False
//! CustomResourceDefinitionUpdateFailed`. Source-spec hash differs → the CRD part of the spec
//! and the hash annotation are rewritten (claims, informer scope and isolation stay), which bumps
//! the generation so konnectors update the consumer CRD. Else `ProviderInSync=True`.

use std::sync::Arc;

use futures::StreamExt as _;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt as _;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

use super::lenient::{Lenient, valid_or_report};
use super::{Context, Result, error_policy, kube_err, now};
use crate::api::APIServiceExport;
use crate::api::conditions::{self, Condition, Severity};
use crate::api::convert::{export_spec_from_crd, source_spec_hash};
use crate::api::wellknown::SOURCE_SPEC_HASH_ANNOTATION;
use crate::backend::contract::BindingBackend;

/// The condition this controller sets.
pub const PROVIDER_IN_SYNC: &str = "ProviderInSync";

pub(crate) async fn run<B: BindingBackend>(ctx: Arc<Context<B>>) {
    let client = ctx.client.clone();
    let controller = Controller::new(
        Api::<Lenient<APIServiceExport>>::all(client.clone()),
        watcher::Config::default(),
    );
    let exports = controller.store();
    controller
        .watches(
            Api::<CustomResourceDefinition>::all(client),
            watcher::Config::default(),
            move |crd| {
                let name = crd.name_any();
                exports
                    .state()
                    .into_iter()
                    .filter(|e| e.name_any() == name)
                    .map(|e| ObjectRef::from_obj(&*e))
                    .collect::<Vec<_>>()
            },
        )
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {})
        .await;
}

async fn reconcile<B: BindingBackend>(
    export: Arc<Lenient<APIServiceExport>>,
    ctx: Arc<Context<B>>,
) -> Result<Action> {
    let Some(export) = valid_or_report(&export, &ctx.recorder).await else {
        return Ok(Action::await_change());
    };
    let ns = export.namespace().unwrap_or_default();
    let name = export.name_any();
    let exports: Api<APIServiceExport> = Api::namespaced(ctx.client.clone(), &ns);
    let crd = Api::<CustomResourceDefinition>::all(ctx.client.clone())
        .get_opt(&name)
        .await
        .map_err(kube_err("get CRD"))?;
    let Some(crd) = crd.filter(|c| c.metadata.deletion_timestamp.is_none()) else {
        tracing::info!(namespace = %ns, export = %name, "CRD is gone; deleting the export");
        match exports.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(kube_err("delete export")(e)),
        }
        return Ok(Action::await_change());
    };
    let spec = &export.spec;
    let in_sync = match export_spec_from_crd(
        &crd,
        spec.permission_claims.clone(),
        spec.informer_scope,
        spec.cluster_scoped_isolation,
    ) {
        Err(e) => Condition::false_(
            PROVIDER_IN_SYNC,
            Severity::Error,
            "CustomResourceDefinitionUpdateFailed",
            e.to_string(),
            now(),
        ),
        Ok(fresh) => {
            let hash = source_spec_hash(&fresh);
            if export.annotations().get(SOURCE_SPEC_HASH_ANNOTATION) != Some(&hash) {
                let patch = serde_json::json!({
                    "metadata": {
                        "resourceVersion": export.resource_version(),
                        "annotations": { SOURCE_SPEC_HASH_ANNOTATION: hash },
                    },
                    "spec": {
                        "group": fresh.group,
                        "names": fresh.names,
                        "scope": fresh.scope,
                        "versions": fresh.versions,
                    },
                });
                exports
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(kube_err("refresh export spec"))?;
                tracing::info!(namespace = %ns, export = %name, "refreshed export from its CRD");
                // The update triggers another reconcile, which sets the condition.
                return Ok(Action::await_change());
            }
            Condition::true_(PROVIDER_IN_SYNC, now())
        }
    };
    let status = export.status.clone().unwrap_or_default();
    let mut conds = status.conditions.clone();
    conditions::set(&mut conds, in_sync);
    conditions::summarize_ready(&mut conds, now());
    if conds != status.conditions {
        let patch = serde_json::json!({
            "metadata": { "resourceVersion": export.resource_version() },
            "status": { "conditions": conds },
        });
        exports
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(kube_err("update export status"))?;
    }
    Ok(Action::await_change())
}
