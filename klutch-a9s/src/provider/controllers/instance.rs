//! The `serviceinstance` controller (spec 4): provision, update and deprovision through the
//! a9s service broker.
//!
//! Crash safety: the instance id is generated and persisted (status and external-name)
//! before the first PUT, and pending operations are persisted before the next call, so a
//! restart never provisions twice and never loses an instance.

use std::sync::Arc;
use std::time::Duration;

use klutch_osb::{
    CallOptions, Catalog, DeleteOutcome, OperationKey, OperationKind, PollOutcome, PollTarget,
    Poller, PreviousValues, ProvisionOutcome, ProvisionRequest, UpdateOutcome, UpdateRequest,
};
use klutch_sdk::crossplane::ExternalError;
use klutch_sdk::crossplane::conditions::{self, READY};
use klutch_sdk::crossplane::{Creation, Deletion, ExternalClient, Managed as _, Observation};
use kube::ResourceExt as _;
use serde_json::Value;

use super::common::{self, external_name};
use crate::broker::{InstanceRecord, InstanceState, match_plan, match_service};
use crate::provider::api::{Backup, ServiceBinding, ServiceInstance, ServiceInstanceObservation};
use crate::provider::config::{BrokerEndpoint, errors};
use crate::provider::meta::{self, CLAIM_NAME_LABEL, EXTERNAL_NAME};
use crate::provider::state::{Cx, State};

/// The ServiceInstance kind.
#[derive(Debug, Default, Clone, Copy)]
pub struct InstanceController;

type Res<T> = Result<T, ExternalError>;

const PROVISION: &str = "provision";
const UPDATE: &str = "update";
const DEPROVISION: &str = "deprovision";
/// The deprovision of a failed provision (`--orphan-mitigation=auto`).
const ORPHAN_MITIGATION: &str = "orphan-mitigation";

/// The instance id: external-name, else `status.atProvider.instanceId` (v1.5 migration).
pub fn instance_id(mr: &ServiceInstance) -> Option<String> {
    external_name(mr).or_else(|| {
        mr.status
            .as_ref()
            .and_then(|s| s.at_provider.as_ref())
            .and_then(|a| a.instance_id.clone())
            .filter(|s| !s.is_empty())
    })
}

fn at_provider(mr: &mut ServiceInstance) -> &mut ServiceInstanceObservation {
    mr.status
        .get_or_insert_with(Default::default)
        .at_provider
        .get_or_insert_with(Default::default)
}

/// The desired catalog ids for the spec.
fn desired_ids(catalog: &Catalog, mr: &ServiceInstance) -> Res<(String, String, Option<Duration>)> {
    let fp = &mr.spec.for_provider;
    let service = match_service(catalog, &fp.service_name).map_err(|e| match e {
        crate::broker::BrokerExtError::MatchService { candidates, .. } if candidates.len() > 1 => {
            ExternalError::user(format!(
                "ambiguous service name {:?}: several catalog services match: {}",
                fp.service_name,
                candidates.join(", ")
            ))
        }
        _ => ExternalError::user(format!(
            "no entry for the service name {:?}",
            fp.service_name
        )),
    })?;
    let plan = match_plan(service, &fp.plan_name).map_err(|_| {
        ExternalError::user(format!("no entry for the plan name {:?}", fp.plan_name))
    })?;
    Ok((
        service.id.clone(),
        plan.id.clone(),
        plan.max_polling_duration(),
    ))
}

fn clear_pending(mr: &mut ServiceInstance) {
    let s = mr.status.get_or_insert_with(Default::default);
    s.pending_operation = None;
    s.pending_operation_type = None;
    s.pending_operation_started_at = None;
    s.pending_operation_plan_id = None;
}

fn set_pending(mr: &mut ServiceInstance, kind: &str, op: Option<OperationKey>, plan_id: &str) {
    let s = mr.status.get_or_insert_with(Default::default);
    s.pending_operation = Some(op.map(|o| o.0).unwrap_or_default());
    s.pending_operation_type = Some(kind.to_owned());
    s.pending_operation_started_at = Some(meta::now_rfc3339());
    s.pending_operation_plan_id = Some(plan_id.to_owned());
}

fn fill(mr: &mut ServiceInstance, id: &str, rec: &InstanceRecord) {
    let a = at_provider(mr);
    a.instance_id = Some(rec.guid_at_tenant.clone().unwrap_or_else(|| id.to_owned()));
    a.service_id = rec.service_guid.clone().or(a.service_id.take());
    a.plan_id = rec.plan_guid.clone().or(a.plan_id.take());
    a.state = Some(rec.state.as_str().to_owned());
    a.created_at = rec.created_at.clone();
    a.provisioned_at = rec.provisioned_at.clone();
    a.updated_at = rec.updated_at.clone();
    a.deleted_at = rec.deleted_at.clone();
}

impl InstanceController {
    async fn poll(
        &self,
        ep: &BrokerEndpoint,
        cx: &Cx<'_, ServiceInstance>,
        mr: &mut ServiceInstance,
        id: &str,
        plan_max: Option<Duration>,
    ) -> Res<PollResult> {
        let s = mr.status.clone().unwrap_or_default();
        let kind_name = s
            .pending_operation_type
            .clone()
            .unwrap_or_else(|| PROVISION.into());
        let kind = match kind_name.as_str() {
            UPDATE => OperationKind::Update,
            DEPROVISION | ORPHAN_MITIGATION => OperationKind::Deprovision,
            _ => OperationKind::Provision,
        };
        let at = s.at_provider.clone().unwrap_or_default();
        let service_id = at.service_id.clone().unwrap_or_default();
        let plan_id = s
            .pending_operation_plan_id
            .clone()
            .or(at.plan_id.clone())
            .unwrap_or_default();
        let op = s
            .pending_operation
            .clone()
            .filter(|o| !o.is_empty())
            .map(OperationKey);
        let limit = plan_max.map_or(cx.state().options.max_polling_duration, |p| {
            p.min(cx.state().options.max_polling_duration)
        });
        let timed_out = s
            .pending_operation_started_at
            .as_deref()
            .and_then(common::since)
            .is_some_and(|e| e > limit);
        let target = PollTarget::instance(kind, id, service_id, plan_id, op);
        let step = if timed_out {
            None
        } else {
            let r = Poller::new(ep.broker().osb().clone())
                .poll_once(&target, 0)
                .await;
            ep.record("last_operation", &errors::outcome_osb(&r));
            Some(r.map_err(|e| errors::osb(&ep.url, e))?)
        };
        let outcome = step
            .as_ref()
            .map_or(PollOutcome::TimedOut, |s| s.outcome.clone());
        let delay = step
            .as_ref()
            .map_or(Duration::from_secs(5), |s| s.next_delay);
        Ok(match outcome {
            PollOutcome::InProgress { .. } => PollResult::Running {
                kind: kind_name,
                delay,
            },
            PollOutcome::Succeeded { .. } => {
                clear_pending(mr);
                if kind == OperationKind::Deprovision {
                    PollResult::Gone
                } else {
                    PollResult::Done
                }
            }
            PollOutcome::Gone => {
                clear_pending(mr);
                PollResult::Gone
            }
            PollOutcome::NotFound if kind == OperationKind::Deprovision => {
                clear_pending(mr);
                PollResult::Gone
            }
            PollOutcome::Failed {
                description,
                update_repeatable,
                ..
            } => {
                clear_pending(mr);
                let d = description.unwrap_or_else(|| format!("operation {kind_name} failed"));
                if kind == OperationKind::Update && !update_repeatable {
                    mr.status
                        .get_or_insert_with(Default::default)
                        .failed_update_generation = mr.metadata.generation;
                }
                PollResult::Failed(d)
            }
            PollOutcome::NotFound => {
                clear_pending(mr);
                PollResult::Failed(format!(
                    "the broker does not know the {kind_name} operation"
                ))
            }
            PollOutcome::TimedOut => {
                clear_pending(mr);
                PollResult::Failed(format!(
                    "operation {kind_name} did not finish within {}s",
                    limit.as_secs()
                ))
            }
            PollOutcome::Invalid { reason } => {
                return Err(ExternalError::user(format!(
                    "cannot poll the {kind_name} operation at {}: {reason}",
                    ep.url
                ))
                .requeue_after(delay));
            }
        })
    }

    /// Orphan mitigation (spec 4.6, `--orphan-mitigation=auto`): deprovision a failed
    /// provision, then forget its id so that the next reconcile provisions a new instance.
    async fn mitigate(
        &self,
        ep: &BrokerEndpoint,
        cx: &Cx<'_, ServiceInstance>,
        mr: &mut ServiceInstance,
        id: &str,
        failure: &str,
    ) -> Res<Observation> {
        let at = mr
            .status
            .as_ref()
            .and_then(|s| s.at_provider.clone())
            .unwrap_or_default();
        let (sid, pid) = (
            at.service_id.unwrap_or_default(),
            at.plan_id.unwrap_or_default(),
        );
        let r = ep
            .broker()
            .osb()
            .deprovision(id, &sid, &pid, &CallOptions::new().asynchronous())
            .await;
        ep.record(DEPROVISION, &errors::outcome_osb(&r));
        match r {
            Ok(reply) => match reply.outcome {
                DeleteOutcome::InProgress { operation } => {
                    set_pending(mr, ORPHAN_MITIGATION, operation, &pid);
                    mr.set_condition(
                        conditions::creating_with(format!(
                            "provision failed: {failure}; deprovisioning the failed instance before provisioning again"
                        )),
                    );
                    cx.save_status(mr).await?;
                    Ok(Observation {
                        exists: true,
                        up_to_date: true,
                        requeue_after: Some(Duration::from_secs(5)),
                        ..Default::default()
                    })
                }
                DeleteOutcome::Deleted | DeleteOutcome::Gone => {
                    self.forget_id(cx, mr, failure).await
                }
            },
            Err(e) if matches!(e.status(), Some(404 | 410)) => {
                self.forget_id(cx, mr, failure).await
            }
            Err(e) => Err(errors::osb(&ep.url, e)),
        }
    }

    async fn forget_id(
        &self,
        cx: &Cx<'_, ServiceInstance>,
        mr: &mut ServiceInstance,
        failure: &str,
    ) -> Res<Observation> {
        clear_pending(mr);
        mr.status.get_or_insert_with(Default::default).at_provider = None;
        if let Some(a) = mr.metadata.annotations.as_mut() {
            a.remove(EXTERNAL_NAME);
        }
        cx.save_meta(mr).await?;
        mr.set_condition(conditions::creating());
        cx.save_status(mr).await?;
        Err(ExternalError::user(format!(
            "provision failed: {failure}; the failed instance was deprovisioned and provisioning starts again with a new instance id"
        ))
        .requeue_after(Duration::from_secs(1)))
    }

    async fn dependents(&self, cx: &Cx<'_, ServiceInstance>, mr: &ServiceInstance) -> Res<usize> {
        let (Some(claim), Some(ns)) = (
            meta::label(&mr.metadata.labels, CLAIM_NAME_LABEL).map(str::to_owned),
            common::claim_namespace(mr),
        ) else {
            return Ok(0);
        };
        let client = cx.client();
        let ns_sel = format!("{}={ns}", meta::CLAIM_NAMESPACE_LABEL);
        let lp = kube::api::ListParams::default().labels(&ns_sel);
        let bindings: kube::Api<ServiceBinding> = kube::Api::all(client.clone());
        let backups: kube::Api<Backup> = kube::Api::all(client.clone());
        let err = |e| ExternalError::with_source("cannot list dependent resources", e);
        let b = bindings.list(&lp).await.map_err(err)?;
        let k = backups.list(&lp).await.map_err(err)?;
        let n = b
            .items
            .iter()
            .filter(|x| x.spec.for_provider.instance_name == claim)
            .count()
            + k.items
                .iter()
                .filter(|x| x.spec.for_provider.instance_name == claim)
                .count();
        Ok(n)
    }
}

enum PollResult {
    Running { kind: String, delay: Duration },
    Done,
    Gone,
    Failed(String),
}

impl ExternalClient<ServiceInstance, State> for InstanceController {
    const CONTROLLER: &'static str = "serviceinstance";
    type Conn = Arc<BrokerEndpoint>;

    async fn connect(&self, cx: &Cx<'_, ServiceInstance>, mr: &ServiceInstance) -> Res<Self::Conn> {
        let pc = &mr.spec.resource.provider_config_ref.name;
        let ep = cx
            .state()
            .clients
            .broker(cx.client(), pc, "ServiceInstance")
            .await?;
        Ok(ep)
    }

    async fn observe(
        &self,
        ep: &Self::Conn,
        cx: &Cx<'_, ServiceInstance>,
        mr: &mut ServiceInstance,
    ) -> Res<Observation> {
        let deleting = mr.metadata.deletion_timestamp.is_some();
        // 1. The id, generated and saved before anything is provisioned.
        let id = match instance_id(mr) {
            Some(id) => id,
            None if deleting => return Ok(Observation::default()),
            None if !cx.policies().should_create() => {
                return Err(ExternalError::user(
                    "external-name required for observe-only: set the crossplane.io/external-name annotation to the instance id",
                )
                .requeue_after(cx.options().poll));
            }
            None => {
                let r = ep.broker().unique_instance_id().await;
                ep.record(
                    "generate_instance_id",
                    if r.is_ok() { "ok" } else { "error" },
                );
                let id = r.map_err(|e| errors::broker_ext(&ep.url, e))?;
                at_provider(mr).instance_id = Some(id.clone());
                mr.set_condition(conditions::creating());
                cx.save_status(mr).await?;
                mr.set_annotation(EXTERNAL_NAME, id);
                cx.save_meta(mr).await?;
                return Ok(Observation::default());
            }
        };
        if external_name(mr).as_deref() != Some(id.as_str()) {
            // Migration of v1.5 objects: the id moves into the external name.
            mr.set_annotation(EXTERNAL_NAME, id.clone());
            cx.save_meta(mr).await?;
        }
        at_provider(mr).instance_id = Some(id.clone());

        // 2. Desired ids from the catalog (not needed to delete).
        let catalog = if deleting {
            None
        } else {
            Some(ep.catalog().await?)
        };
        let desired = catalog.as_deref().map(|c| desired_ids(c, mr)).transpose()?;
        let plan_max = desired.as_ref().and_then(|d| d.2);

        // 3. The instance record.
        let pending = mr
            .status
            .as_ref()
            .and_then(|s| s.pending_operation_type.clone());
        let r = ep.broker().instance(&id).await;
        ep.record(
            "get_instance",
            &errors::outcome_call(r.as_ref().err().and_then(|e| match e {
                crate::broker::BrokerExtError::GetInstance { source, .. } => Some(source),
                _ => None,
            })),
        );
        let record = match r {
            Ok(rec) => Some(rec),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(errors::broker_ext(&ep.url, e)),
        };
        let Some(record) = record else {
            if pending.as_deref() == Some(PROVISION) {
                // The broker accepted the PUT but has no record yet: poll.
                return match self.poll(ep, cx, mr, &id, plan_max).await? {
                    PollResult::Running { delay, .. } => {
                        mr.set_condition(conditions::creating());
                        Ok(Observation {
                            exists: true,
                            up_to_date: true,
                            requeue_after: Some(delay),
                            ..Default::default()
                        })
                    }
                    PollResult::Failed(d) => {
                        Err(ExternalError::user(d.clone()).with_ready(conditions::unavailable(d)))
                    }
                    PollResult::Done | PollResult::Gone => Ok(Observation {
                        requeue_after: Some(Duration::from_secs(1)),
                        exists: true,
                        up_to_date: true,
                        ..Default::default()
                    }),
                };
            }
            clear_pending(mr);
            return Ok(Observation::default());
        };
        fill(mr, &id, &record);

        // 6. Deleted outside Kubernetes (a9s never reuses ids).
        if record.is_deleted() {
            if pending.as_deref() == Some(ORPHAN_MITIGATION) && !deleting {
                return self
                    .forget_id(cx, mr, "the broker reported a failure")
                    .await;
            }
            clear_pending(mr);
            if deleting {
                return Ok(Observation::default());
            }
            mr.set_condition(conditions::unavailable(
                "instance was deleted outside Kubernetes; delete and recreate the claim",
            ));
            return Ok(Observation {
                exists: true,
                up_to_date: true,
                ..Default::default()
            });
        }

        // 7. A running operation.
        let mut requeue = None;
        let mut failure = None;
        let mut still_pending = false;
        if pending.is_some() {
            match self.poll(ep, cx, mr, &id, plan_max).await? {
                PollResult::Running { kind, delay } => {
                    still_pending = true;
                    requeue = Some(delay);
                    if kind == ORPHAN_MITIGATION {
                        return Ok(Observation {
                            exists: true,
                            up_to_date: true,
                            requeue_after: requeue,
                            ..Default::default()
                        });
                    }
                    if kind == DEPROVISION {
                        mr.set_condition(conditions::deleting());
                        return Ok(Observation {
                            exists: true,
                            up_to_date: true,
                            requeue_after: requeue,
                            ..Default::default()
                        });
                    }
                    mr.set_condition(conditions::creating_with(format!(
                        "operation {kind} in progress"
                    )));
                }
                PollResult::Gone if pending.as_deref() == Some(ORPHAN_MITIGATION) && !deleting => {
                    return self
                        .forget_id(cx, mr, "the broker reported a failure")
                        .await;
                }
                PollResult::Gone => return Ok(Observation::default()),
                PollResult::Done => {
                    // Read the record again: the operation changed it.
                    if let Ok(rec) = ep.broker().instance(&id).await {
                        ep.record("get_instance", "ok");
                        fill(mr, &id, &rec);
                    }
                    requeue = Some(Duration::from_secs(1));
                }
                PollResult::Failed(d)
                    if pending.as_deref() == Some(PROVISION)
                        && cx.state().options.orphan_mitigation
                        && !deleting =>
                {
                    return self.mitigate(ep, cx, mr, &id, &d).await;
                }
                PollResult::Failed(d) => failure = Some(d),
            }
        }

        // 4. Parameters as the broker reports them, once no provision runs (brokers answer 404
        // while creating).
        let mut params_known = false;
        let state_now = mr
            .status
            .as_ref()
            .and_then(|s| s.at_provider.as_ref())
            .and_then(|a| a.state.clone())
            .unwrap_or_default();
        let settled = matches!(
            InstanceState::parse(&state_now),
            InstanceState::Provisioned | InstanceState::Available | InstanceState::Failed
        );
        if !deleting && settled && !still_pending {
            let r = ep.broker().fetch_instance(&id).await;
            ep.record("fetch_instance", if r.is_ok() { "ok" } else { "error" });
            match r {
                Ok(inst) => {
                    params_known = true;
                    at_provider(mr).parameters = match inst.parameters {
                        Some(Value::Object(m)) => Some(m.into_iter().collect()),
                        _ => None,
                    };
                }
                // Unknown this round (being created or updated): no update decision.
                Err(e)
                    if e.is_not_found()
                        || e.osb().is_some_and(klutch_osb::Error::is_concurrency) => {}
                Err(e) => return Err(errors::broker_ext(&ep.url, e)),
            }
        }

        // 8. Ready from the state.
        let state = mr
            .status
            .as_ref()
            .and_then(|s| s.at_provider.as_ref())
            .and_then(|a| a.state.clone())
            .unwrap_or_default();
        if !still_pending {
            let c = match InstanceState::parse(&state) {
                InstanceState::Created | InstanceState::Deploying => conditions::creating(),
                InstanceState::Provisioned | InstanceState::Available => conditions::available(),
                InstanceState::Deleting => conditions::deleting(),
                InstanceState::Failed => conditions::unavailable(
                    failure
                        .clone()
                        .unwrap_or_else(|| "the broker reports the instance as failed".into()),
                ),
                other => {
                    conditions::unavailable(format!("unknown instance state {}", other.as_str()))
                }
            };
            mr.set_condition(c);
            if matches!(
                InstanceState::parse(&state),
                InstanceState::Created | InstanceState::Deploying | InstanceState::Deleting
            ) {
                requeue.get_or_insert(Duration::from_secs(5));
            }
        }
        if let Some(d) = failure {
            let c = if conditions::get(
                mr.status
                    .as_ref()
                    .map(|s| s.conditions.as_slice())
                    .unwrap_or(&[]),
                READY,
            )
            .is_some_and(|c| c.reason == "Available")
            {
                // A failed update leaves a usable instance.
                conditions::available_with(format!("last operation failed: {d}"))
            } else {
                conditions::unavailable(d.clone())
            };
            if !deleting {
                return Err(ExternalError::user(d).with_ready(c));
            }
        }

        // 9. Up to date: only plan and parameters count.
        let up_to_date = match &desired {
            _ if still_pending || deleting => true,
            None => true,
            Some((_, plan_id, _)) => {
                let s = mr.status.clone().unwrap_or_default();
                let observed_plan = s
                    .at_provider
                    .as_ref()
                    .and_then(|a| a.plan_id.clone())
                    .unwrap_or_default();
                let same_params = !params_known
                    || common::semantic_eq(
                        &Value::Object(common::to_map(&mr.spec.for_provider.parameters)),
                        &Value::Object(common::to_map(
                            &s.at_provider.unwrap_or_default().parameters,
                        )),
                    );
                let same = *plan_id == observed_plan && same_params;
                if !same
                    && s.failed_update_generation.is_some()
                    && s.failed_update_generation == mr.metadata.generation
                {
                    return Err(ExternalError::user(
                        "the last update failed and the broker says it cannot be repeated; change the spec to try again",
                    )
                    .requeue_after(cx.options().poll));
                }
                same
            }
        };
        Ok(Observation {
            exists: true,
            up_to_date,
            connection_details: None,
            requeue_after: requeue,
        })
    }

    async fn create(
        &self,
        ep: &Self::Conn,
        cx: &Cx<'_, ServiceInstance>,
        mr: &mut ServiceInstance,
    ) -> Res<Creation> {
        let id = instance_id(mr)
            .ok_or_else(|| ExternalError::internal("no instance id before create"))?;
        let catalog = ep.catalog().await?;
        let (service_id, plan_id, _) = desired_ids(&catalog, mr)?;
        let fp = mr.spec.for_provider.clone();
        let mut req = ProvisionRequest::new(&service_id, &plan_id)
            .guids(&fp.organization_guid, &fp.space_guid)
            .context(common::osb_context(
                &fp.context,
                &fp.organization_guid,
                &fp.space_guid,
            ));
        if fp.parameters.is_some() {
            req = req.parameters(common::to_map(&fp.parameters));
        }
        let mut opts = CallOptions::new();
        if fp.accepts_incomplete {
            opts = opts.asynchronous();
        }
        if let Some(oi) = common::originating_identity(&fp.originating_identity)? {
            opts = opts.originating_identity(oi);
        }
        // Write-ahead: the ids to deprovision with, should the answer be lost.
        let a = at_provider(mr);
        a.service_id.get_or_insert(service_id.clone());
        a.plan_id.get_or_insert(plan_id.clone());
        let r = ep.broker().osb().provision(&id, &req, &opts).await;
        ep.record(PROVISION, &errors::outcome_osb(&r));
        match r {
            Ok(reply) => match reply.outcome {
                ProvisionOutcome::Created { .. } | ProvisionOutcome::AlreadyExists { .. } => {
                    mr.set_condition(conditions::creating());
                    Ok(Creation {
                        connection_details: None,
                        requeue_after: Some(Duration::from_secs(1)),
                    })
                }
                ProvisionOutcome::InProgress(op) => {
                    set_pending(mr, PROVISION, op.operation, &plan_id);
                    mr.set_condition(conditions::creating_with("operation provision in progress"));
                    cx.save_status(mr).await?;
                    Ok(Creation {
                        connection_details: None,
                        requeue_after: Some(Duration::from_secs(5)),
                    })
                }
            },
            Err(e) if e.is_async_required() && !fp.accepts_incomplete => Err(
                ExternalError::with_source("the broker requires acceptsIncomplete: true", e),
            ),
            Err(e) => Err(errors::osb(&ep.url, e)),
        }
    }

    async fn update(
        &self,
        ep: &Self::Conn,
        cx: &Cx<'_, ServiceInstance>,
        mr: &mut ServiceInstance,
    ) -> Res<Creation> {
        let id = instance_id(mr)
            .ok_or_else(|| ExternalError::internal("no instance id before update"))?;
        let catalog = ep.catalog().await?;
        let (service_id, plan_id, _) = desired_ids(&catalog, mr)?;
        let at = mr
            .status
            .as_ref()
            .and_then(|s| s.at_provider.clone())
            .unwrap_or_default();
        let observed_plan = at.plan_id.clone().unwrap_or_default();
        let fp = mr.spec.for_provider.clone();
        let mut req = UpdateRequest::new(&service_id)
            .context(common::osb_context(
                &fp.context,
                &fp.organization_guid,
                &fp.space_guid,
            ))
            .previous_values(PreviousValues {
                plan_id: Some(observed_plan.clone()),
                ..Default::default()
            });
        if plan_id != observed_plan {
            req = req.plan(&plan_id);
        }
        req.parameters = common::parameter_diff(
            &common::to_map(&at.parameters),
            &common::to_map(&fp.parameters),
        );
        let mut opts = CallOptions::new();
        if fp.accepts_incomplete {
            opts = opts.asynchronous();
        }
        if let Some(oi) = common::originating_identity(&fp.originating_identity)? {
            opts = opts.originating_identity(oi);
        }
        let r = ep.broker().osb().update(&id, &req, &opts).await;
        ep.record(UPDATE, &errors::outcome_osb(&r));
        match r {
            Ok(reply) => match reply.outcome {
                UpdateOutcome::Updated { .. } => {
                    cx.provider()
                        .event(
                            mr,
                            kube::runtime::events::EventType::Normal,
                            "UpdatedExternalResource",
                            "Successfully requested update of external resource".into(),
                        )
                        .await;
                    Ok(Creation {
                        connection_details: None,
                        requeue_after: Some(Duration::from_secs(1)),
                    })
                }
                UpdateOutcome::InProgress(op) => {
                    // Poll with the old plan id (spec 4.4).
                    set_pending(mr, UPDATE, op.operation, &observed_plan);
                    mr.set_condition(conditions::creating_with("operation update in progress"));
                    cx.save_status(mr).await?;
                    Ok(Creation {
                        connection_details: None,
                        requeue_after: Some(Duration::from_secs(5)),
                    })
                }
            },
            Err(e) => {
                if e.broker().and_then(|b| b.update_repeatable) == Some(false) {
                    mr.status
                        .get_or_insert_with(Default::default)
                        .failed_update_generation = mr.metadata.generation;
                }
                if e.is_async_required() && !fp.accepts_incomplete {
                    return Err(ExternalError::with_source(
                        "the broker requires acceptsIncomplete: true",
                        e,
                    ));
                }
                Err(errors::osb(&ep.url, e))
            }
        }
    }

    async fn delete(
        &self,
        ep: &Self::Conn,
        cx: &Cx<'_, ServiceInstance>,
        mr: &mut ServiceInstance,
    ) -> Res<Deletion> {
        let n = self.dependents(cx, mr).await?;
        if n > 0 {
            return Err(ExternalError::user(format!(
                "waiting for {n} dependent resources to be deleted"
            ))
            .requeue_after(Duration::from_secs(30)));
        }
        let s = mr.status.clone().unwrap_or_default();
        if matches!(
            s.pending_operation_type.as_deref(),
            Some(DEPROVISION | ORPHAN_MITIGATION)
        ) {
            return Ok(Deletion {
                requeue_after: Some(Duration::from_secs(5)),
            });
        }
        let Some(id) = instance_id(mr) else {
            return Ok(Deletion::default());
        };
        let at = s.at_provider.unwrap_or_default();
        let (service_id, plan_id) = match (at.service_id, at.plan_id) {
            (Some(s), Some(p)) => (s, p),
            _ => {
                let catalog = ep.catalog().await?;
                let (s, p, _) = desired_ids(&catalog, mr)?;
                (s, p)
            }
        };
        let mut opts = CallOptions::new();
        if mr.spec.for_provider.accepts_incomplete {
            opts = opts.asynchronous();
        }
        let r = ep
            .broker()
            .osb()
            .deprovision(&id, &service_id, &plan_id, &opts)
            .await;
        ep.record(DEPROVISION, &errors::outcome_osb(&r));
        match r {
            Ok(reply) => match reply.outcome {
                DeleteOutcome::Deleted | DeleteOutcome::Gone => Ok(Deletion {
                    requeue_after: Some(Duration::from_secs(1)),
                }),
                DeleteOutcome::InProgress { operation } => {
                    set_pending(mr, DEPROVISION, operation, &plan_id);
                    cx.save_status(mr).await?;
                    Ok(Deletion {
                        requeue_after: Some(Duration::from_secs(5)),
                    })
                }
            },
            Err(e) if e.status() == Some(404) || e.status() == Some(410) => Ok(Deletion {
                requeue_after: Some(Duration::from_secs(1)),
            }),
            Err(e) if e.is_concurrency() => Err(errors::osb(&ep.url, e)),
            Err(e) => {
                tracing::debug!(name = %mr.name_any(), "deprovision failed");
                Err(errors::osb(&ep.url, e))
            }
        }
    }
}
