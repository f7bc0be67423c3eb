//! APIServiceExportRequest → APIServiceExport (spec §4.5.2).
//!
//! While `Pending`, per requested resource: an existing export is kept; otherwise the backend's
//! [`export_spec`](super::super::BindingBackend::export_spec) decides: a spec creates the export
//! (with the source-spec hash), a missing or invalid CRD sets `ExportsReady=False` and retries
//! for a minute, a resource the backend does not offer fails the request at once. All done →
//! `ExportsReady=True`, `Succeeded`. Still failing a minute after creation → `Failed` with
//! `terminalMessage`. Requests of any phase are deleted ten minutes after creation.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use kube::ResourceExt as _;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;

use super::lenient::{Lenient, valid_or_report};
use super::{Context, Error, Result, error_policy, kube_err, now};
use crate::api::conditions::{self, Condition, Severity};
use crate::api::convert::source_spec_hash;
use crate::api::export_request::{APIServiceExportRequestStatus, ExportRequestPhase};
use crate::api::wellknown::SOURCE_SPEC_HASH_ANNOTATION;
use crate::api::{APIServiceExport, APIServiceExportRequest};
use crate::backend::contract::{BindingBackend, ExportSpecError};

/// The condition this controller sets.
pub const EXPORTS_READY: &str = "ExportsReady";
/// Requests are deleted this long after creation.
pub const COLLECT_AFTER: Duration = Duration::from_secs(600);
/// A request still failing this long after creation fails for good.
pub const FAIL_AFTER: Duration = Duration::from_secs(60);

pub(crate) async fn run<B: BindingBackend>(ctx: Arc<Context<B>>) {
    let api = Api::<Lenient<APIServiceExportRequest>>::all(ctx.client.clone());
    Controller::new(api, watcher::Config::default())
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {})
        .await;
}

fn age(req: &APIServiceExportRequest) -> Duration {
    let created = req
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or_else(k8s_openapi::jiff::Timestamp::now, |t| t.0);
    let secs = (k8s_openapi::jiff::Timestamp::now().as_second() - created.as_second()).max(0);
    Duration::from_secs(u64::try_from(secs).unwrap_or_default())
}

enum Outcome {
    Ready,
    Retry {
        reason: &'static str,
        message: String,
    },
    Terminal(String),
}

async fn reconcile<B: BindingBackend>(
    req: Arc<Lenient<APIServiceExportRequest>>,
    ctx: Arc<Context<B>>,
) -> Result<Action> {
    let Some(req) = valid_or_report(&req, &ctx.recorder).await else {
        return Ok(Action::await_change());
    };
    let ns = req.namespace().unwrap_or_default();
    let name = req.name_any();
    let requests: Api<APIServiceExportRequest> = Api::namespaced(ctx.client.clone(), &ns);
    let age = age(req);
    let timing = ctx.timing;
    if age >= timing.collect_after {
        tracing::info!(namespace = %ns, %name, "deleting old export request");
        match requests.delete(&name, &DeleteParams::default()).await {
            Ok(_) | Err(kube::Error::Api(_)) => return Ok(Action::await_change()),
            Err(e) => return Err(kube_err("delete export request")(e)),
        }
    }
    let collect = Action::requeue(timing.collect_after - age + Duration::from_secs(1));
    let status = req.status.clone().unwrap_or_default();
    tracing::debug!(namespace = %ns, %name, ?age, phase = ?status.phase, "reconciling export request");
    if status.phase != ExportRequestPhase::Pending {
        return Ok(collect);
    }

    let exports: Api<APIServiceExport> = Api::namespaced(ctx.client.clone(), &ns);
    // Existence only: an export with an undecodable status still exists.
    let existing: Api<Lenient<APIServiceExport>> = Api::namespaced(ctx.client.clone(), &ns);
    let mut outcome = Outcome::Ready;
    for resource in &req.spec.resources {
        let export_name = crate::api::naming::binding_name(&resource.group, &resource.resource);
        if existing
            .get_opt(&export_name)
            .await
            .map_err(kube_err("get export"))?
            .is_some()
        {
            continue;
        }
        match ctx.backend.export_spec(&ns, resource).await {
            Ok(spec) => {
                let export = APIServiceExport {
                    metadata: ObjectMeta {
                        name: Some(export_name.clone()),
                        namespace: Some(ns.clone()),
                        annotations: Some(BTreeMap::from([(
                            SOURCE_SPEC_HASH_ANNOTATION.to_owned(),
                            source_spec_hash(&spec),
                        )])),
                        ..ObjectMeta::default()
                    },
                    spec,
                    status: None,
                };
                match exports.create(&PostParams::default(), &export).await {
                    Ok(_) => {
                        tracing::info!(namespace = %ns, export = %export_name, "created export")
                    }
                    Err(kube::Error::Api(s)) if s.code == 409 => {}
                    Err(kube::Error::Api(s)) if s.code == 422 => {
                        outcome = Outcome::Retry {
                            reason: "CRDInvalid",
                            message: format!("export {export_name} rejected: {}", s.message),
                        };
                    }
                    Err(e) => return Err(kube_err("create export")(e)),
                }
            }
            Err(ExportSpecError::CrdNotFound(crd)) => {
                outcome = Outcome::Retry {
                    reason: "CRDNotFound",
                    message: format!("CustomResourceDefinition {crd} not found"),
                };
            }
            Err(e @ ExportSpecError::CrdInvalid { .. }) => {
                outcome = Outcome::Retry {
                    reason: "CRDInvalid",
                    message: e.to_string(),
                };
            }
            Err(e @ ExportSpecError::NotOffered(_)) => {
                outcome = Outcome::Terminal(e.to_string());
                break;
            }
            Err(source) => {
                return Err(Error::Backend {
                    what: format!("export spec of {export_name}"),
                    source,
                });
            }
        }
    }

    let mut next = status.clone();
    let t = now();
    let action = match outcome {
        Outcome::Ready => {
            conditions::set(
                &mut next.conditions,
                Condition::true_(EXPORTS_READY, t.clone()),
            );
            next.phase = ExportRequestPhase::Succeeded;
            collect
        }
        Outcome::Terminal(message) => {
            conditions::set(
                &mut next.conditions,
                Condition::false_(
                    EXPORTS_READY,
                    Severity::Error,
                    "NotOffered",
                    message.clone(),
                    t.clone(),
                ),
            );
            next.phase = ExportRequestPhase::Failed;
            next.terminal_message = Some(message);
            collect
        }
        Outcome::Retry { reason, message } => {
            conditions::set(
                &mut next.conditions,
                Condition::false_(
                    EXPORTS_READY,
                    Severity::Error,
                    reason,
                    message.clone(),
                    t.clone(),
                ),
            );
            if age >= timing.fail_after {
                next.phase = ExportRequestPhase::Failed;
                next.terminal_message = Some(message);
                collect
            } else {
                Action::requeue(Duration::from_secs(2))
            }
        }
    };
    conditions::summarize_ready(&mut next.conditions, t);
    if next != status {
        write_status(&requests, &name, &next).await?;
    }
    tracing::debug!(namespace = %ns, %name, phase = ?next.phase, ?action, ?timing, "reconciled export request");
    Ok(action)
}

async fn write_status(
    api: &Api<APIServiceExportRequest>,
    name: &str,
    status: &APIServiceExportRequestStatus,
) -> Result<()> {
    let patch = serde_json::json!({ "status": status });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(kube_err("update export request status"))?;
    Ok(())
}
