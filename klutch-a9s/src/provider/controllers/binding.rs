//! The `servicebinding` controller (spec 5): bind and unbind (synchronous or asynchronous)
//! and the connection Secret, written from the broker's credentials on every Observe (so a
//! deleted Secret comes back). Binding ids are the external name, by default the MR's UID.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use klutch_osb::{
    BindOutcome, BindRequest, BindResource, BindingBody, CallOptions, DeleteOutcome, OperationKey,
    OperationKind, PollOutcome, PollTarget, Poller,
};
use klutch_sdk::crossplane::ExternalError;
use klutch_sdk::crossplane::conditions;
use klutch_sdk::crossplane::{Creation, Deletion, ExternalClient, Managed as _, Observation};
use kube::ResourceExt as _;
use kube::runtime::events::EventType;

use super::common::{self, external_name};
use super::instance;
use crate::credentials::{DataServiceKind, ParseMode, ServiceCredentials};
use crate::flatten::flatten;
use crate::provider::api::{
    ConnectionDetails, ServiceBinding, ServiceBindingObservation, ServiceInstance,
};
use crate::provider::config::{BrokerEndpoint, errors};
use crate::provider::meta::{self, BINDING_CREATED, EXTERNAL_NAME, INSTANCE_TYPE_LABEL};
use crate::provider::state::{Cx, State};

/// The ServiceBinding kind.
#[derive(Debug, Default, Clone, Copy)]
pub struct BindingController;

type Res<T> = Result<T, ExternalError>;

fn at(mr: &mut ServiceBinding) -> &mut ServiceBindingObservation {
    mr.status
        .get_or_insert_with(Default::default)
        .at_provider
        .get_or_insert_with(Default::default)
}

/// The binding id: external-name, else the MR's UID (Klutch v1.5's choice).
pub fn binding_id(mr: &ServiceBinding) -> String {
    external_name(mr).unwrap_or_else(|| mr.uid().unwrap_or_default())
}

fn ids(mr: &ServiceBinding) -> Option<(String, String, String)> {
    let a = mr.status.as_ref()?.at_provider.as_ref()?;
    Some((
        a.instance_id.clone().filter(|s| !s.is_empty())?,
        a.service_id.clone().filter(|s| !s.is_empty())?,
        a.plan_id.clone().filter(|s| !s.is_empty())?,
    ))
}

fn clear_pending(mr: &mut ServiceBinding) {
    let s = mr.status.get_or_insert_with(Default::default);
    s.pending_operation = None;
    s.pending_operation_type = None;
    s.pending_operation_started_at = None;
}

fn set_pending(mr: &mut ServiceBinding, kind: &str, op: Option<OperationKey>) {
    let s = mr.status.get_or_insert_with(Default::default);
    s.pending_operation = Some(op.map(|o| o.0).unwrap_or_default());
    s.pending_operation_type = Some(kind.to_owned());
    s.pending_operation_started_at = Some(meta::now_rfc3339());
}

/// The Secret data and the status endpoints of a binding's credentials.
fn details(mr: &mut ServiceBinding, body: &BindingBody) -> Res<BTreeMap<String, String>> {
    let Some(creds) = body.credentials.as_ref().filter(|c| !c.is_empty()) else {
        return Err(ExternalError::user(
            "The service broker returned no credentials for service binding",
        ));
    };
    if let Some(kind) = meta::label(&mr.metadata.labels, INSTANCE_TYPE_LABEL)
        .and_then(|k| k.parse::<DataServiceKind>().ok())
    {
        match ServiceCredentials::from_binding(kind, body, ParseMode::Lenient) {
            Ok(typed) => {
                at(mr).connection_details = Some(
                    typed
                        .connection_endpoints()
                        .into_iter()
                        .map(|e| ConnectionDetails {
                            host_url: Some(e.host_url),
                            port: Some(e.port),
                            label: Some(e.label),
                        })
                        .collect(),
                );
            }
            Err(e) => {
                tracing::warn!(name = %mr.name_any(), error = %e, "cannot parse the credentials as {kind}")
            }
        }
    }
    Ok(flatten(creds.expose()).into_inner())
}

impl BindingController {
    async fn resolve_instance(
        &self,
        cx: &Cx<'_, ServiceBinding>,
        mr: &mut ServiceBinding,
    ) -> Res<Option<(String, String, String)>> {
        if let Some(ids) = ids(mr) {
            return Ok(Some(ids));
        }
        let ns = common::claim_namespace(mr);
        let items = common::by_claim::<ServiceInstance>(
            cx.client(),
            &mr.spec.for_provider.instance_name,
            ns.as_deref(),
        )
        .await?;
        if items.is_empty() && mr.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        let si = common::exactly_one(
            items,
            "ServiceInstance",
            "data service instance was not found",
        )?;
        let a = si
            .status
            .as_ref()
            .and_then(|s| s.at_provider.clone())
            .unwrap_or_default();
        let iid = instance::instance_id(&si).or(a.instance_id);
        match (iid, a.service_id, a.plan_id) {
            (Some(i), Some(s), Some(p))
                if conditions::is_true(
                    klutch_sdk::crossplane::Managed::conditions(&si),
                    "Ready",
                ) =>
            {
                let o = at(mr);
                o.instance_id = Some(i.clone());
                o.service_id = Some(s.clone());
                o.plan_id = Some(p.clone());
                cx.save_status(mr).await?;
                Ok(Some((i, s, p)))
            }
            _ => Err(ExternalError::user("service instance is not ready")
                .with_ready(conditions::creating())
                .requeue_after(Duration::from_secs(5))),
        }
    }

    async fn fetch(
        &self,
        ep: &BrokerEndpoint,
        iid: &str,
        bid: &str,
        sid: &str,
        pid: &str,
    ) -> Res<Option<BindingBody>> {
        let r = ep
            .broker()
            .osb()
            .fetch_binding(
                iid,
                bid,
                Some(sid),
                Some(pid),
                &CallOptions::new().override_gates(),
            )
            .await;
        ep.record("fetch_binding", &errors::outcome_osb(&r));
        match r {
            Ok(b) => Ok(Some(b.outcome)),
            Err(e) if matches!(e.status(), Some(404 | 410)) => Ok(None),
            Err(e) => Err(errors::osb(&ep.url, e)),
        }
    }
}

impl ExternalClient<ServiceBinding, State> for BindingController {
    const CONTROLLER: &'static str = "servicebinding";
    type Conn = Arc<BrokerEndpoint>;

    async fn connect(&self, cx: &Cx<'_, ServiceBinding>, mr: &ServiceBinding) -> Res<Self::Conn> {
        let pc = &mr.spec.resource.provider_config_ref.name;
        let ep = cx
            .state()
            .clients
            .broker(cx.client(), pc, "ServiceBinding")
            .await?;
        Ok(ep)
    }

    async fn observe(
        &self,
        ep: &Self::Conn,
        cx: &Cx<'_, ServiceBinding>,
        mr: &mut ServiceBinding,
    ) -> Res<Observation> {
        let deleting = mr.metadata.deletion_timestamp.is_some();
        let Some((iid, sid, pid)) = self.resolve_instance(cx, mr).await? else {
            return Ok(Observation::default());
        };
        let bid = binding_id(mr);
        if external_name(mr).is_none() {
            mr.set_annotation(EXTERNAL_NAME, bid.clone());
            cx.save_meta(mr).await?;
        }
        if at(mr).state.is_empty() {
            at(mr).state = "Pending".into();
        }
        // 2. A running bind or unbind.
        let pending = mr
            .status
            .as_ref()
            .and_then(|s| s.pending_operation_type.clone());
        if let Some(kind_name) = pending {
            let kind = if kind_name == "unbind" {
                OperationKind::Unbind
            } else {
                OperationKind::Bind
            };
            let op = mr
                .status
                .as_ref()
                .and_then(|s| s.pending_operation.clone())
                .filter(|o| !o.is_empty())
                .map(OperationKey);
            let target = PollTarget::binding(kind, &iid, &bid, &sid, &pid, op);
            let r = Poller::new(ep.broker().osb().clone())
                .poll_once(&target, 0)
                .await;
            ep.record("binding_last_operation", &errors::outcome_osb(&r));
            let step = r.map_err(|e| errors::osb(&ep.url, e))?;
            match step.outcome {
                PollOutcome::InProgress { .. } => {
                    mr.set_condition(if kind == OperationKind::Unbind {
                        conditions::deleting()
                    } else {
                        conditions::creating_with("operation bind in progress")
                    });
                    return Ok(Observation {
                        exists: true,
                        up_to_date: true,
                        requeue_after: Some(step.next_delay),
                        ..Default::default()
                    });
                }
                PollOutcome::Succeeded { .. } if kind == OperationKind::Bind => {
                    clear_pending(mr);
                    mr.set_annotation(BINDING_CREATED, "true");
                    cx.save_meta(mr).await?;
                }
                PollOutcome::Succeeded { .. } | PollOutcome::Gone | PollOutcome::NotFound
                    if kind == OperationKind::Unbind =>
                {
                    clear_pending(mr);
                    return Ok(Observation::default());
                }
                PollOutcome::Invalid { reason } => {
                    return Err(ExternalError::user(format!(
                        "cannot poll the {kind_name} operation at {}: {reason}",
                        ep.url
                    ))
                    .requeue_after(step.next_delay));
                }
                PollOutcome::Failed { description, .. } => {
                    clear_pending(mr);
                    let d = description.unwrap_or_else(|| format!("operation {kind_name} failed"));
                    return Err(
                        ExternalError::user(d.clone()).with_ready(conditions::unavailable(d))
                    );
                }
                other => {
                    clear_pending(mr);
                    let d = format!("operation {kind_name} ended: {other:?}");
                    return Err(
                        ExternalError::user(d.clone()).with_ready(conditions::unavailable(d))
                    );
                }
            }
        }
        // 3. Never bound.
        if meta::annotation(&mr.metadata.annotations, BINDING_CREATED) != Some("true") {
            return Ok(Observation::default());
        }
        // 4. The binding as the broker has it.
        let Some(body) = self.fetch(ep, &iid, &bid, &sid, &pid).await? else {
            return Ok(Observation::default());
        };
        let data = details(mr, &body)?;
        // Once per generation: OSB bindings are immutable, and `credentials` is output-only.
        let observed = mr.status.as_ref().and_then(|s| s.observed_generation);
        if !deleting && observed.is_some() && observed != mr.metadata.generation {
            cx.provider()
                .event(
                    mr,
                    EventType::Warning,
                    "CannotUpdateExternalResource",
                    "ServiceBinding parameters cannot be changed; recreate the binding".into(),
                )
                .await;
        }
        if !deleting
            && observed != mr.metadata.generation
            && mr.spec.for_provider.credentials.is_some()
        {
            cx.provider()
                .event(mr, EventType::Warning, "IgnoredField", "spec.forProvider.credentials is output-only and ignored; the credentials are in the connection Secret".into())
                .await;
        }
        if deleting {
            at(mr).state = "Deleting".into();
            mr.set_condition(conditions::deleting());
        } else {
            at(mr).state = "Created".into();
            mr.set_condition(conditions::available());
        }
        Ok(Observation {
            exists: true,
            up_to_date: true,
            connection_details: Some(data),
            requeue_after: None,
        })
    }

    async fn create(
        &self,
        ep: &Self::Conn,
        cx: &Cx<'_, ServiceBinding>,
        mr: &mut ServiceBinding,
    ) -> Res<Creation> {
        let (iid, sid, pid) =
            ids(mr).ok_or_else(|| ExternalError::internal("no instance ids before bind"))?;
        let bid = binding_id(mr);
        let fp = mr.spec.for_provider.clone();
        let mut req = BindRequest::new(&sid, &pid);
        for (k, v) in fp.parameters.iter().flatten() {
            req = req.parameter(k.clone(), v.clone());
        }
        if fp.bind_resource.is_some() || fp.app_guid.is_some() {
            let br = fp.bind_resource.clone().unwrap_or_default();
            req = req.bind_resource(BindResource {
                app_guid: br.app_guid.or(fp.app_guid.clone()),
                route: br.route,
                ..Default::default()
            });
            req.send_deprecated_app_guid = fp.app_guid.is_some();
        }
        if let Some(c) = &fp.context {
            req = req.context(klutch_osb::Context(
                c.iter()
                    .map(|(k, v)| (k.clone(), v.clone().into()))
                    .collect(),
            ));
        }
        let mut opts = CallOptions::new();
        if fp.accepts_incomplete {
            opts = opts.asynchronous();
        }
        if let Some(oi) = common::originating_identity(&fp.originating_identity)? {
            opts = opts.originating_identity(oi);
        }
        let r = ep.broker().osb().bind(&iid, &bid, &req, &opts).await;
        ep.record("bind", &errors::outcome_osb(&r));
        let outcome = r.map_err(|e| errors::osb(&ep.url, e))?.outcome;
        let body = match outcome {
            BindOutcome::InProgress { operation } => {
                set_pending(mr, "bind", operation);
                mr.set_condition(conditions::creating_with("operation bind in progress"));
                cx.save_status(mr).await?;
                return Ok(Creation {
                    connection_details: None,
                    requeue_after: Some(Duration::from_secs(2)),
                });
            }
            BindOutcome::Created(b) | BindOutcome::AlreadyExists(b) => b,
        };
        let body = if body.credentials.as_ref().is_none_or(|c| c.is_empty()) {
            self.fetch(ep, &iid, &bid, &sid, &pid)
                .await?
                .unwrap_or(body)
        } else {
            body
        };
        let data = details(mr, &body)?;
        mr.set_annotation(BINDING_CREATED, "true");
        cx.save_meta(mr).await?;
        at(mr).state = "Created".into();
        mr.set_condition(conditions::available());
        Ok(Creation {
            connection_details: Some(data),
            requeue_after: Some(cx.options().poll),
        })
    }

    async fn update(
        &self,
        _ep: &Self::Conn,
        _cx: &Cx<'_, ServiceBinding>,
        _mr: &mut ServiceBinding,
    ) -> Res<Creation> {
        Ok(Creation::default())
    }

    async fn delete(
        &self,
        ep: &Self::Conn,
        cx: &Cx<'_, ServiceBinding>,
        mr: &mut ServiceBinding,
    ) -> Res<Deletion> {
        if mr
            .status
            .as_ref()
            .and_then(|s| s.pending_operation_type.as_deref())
            == Some("unbind")
        {
            return Ok(Deletion {
                requeue_after: Some(Duration::from_secs(2)),
            });
        }
        let Some((iid, sid, pid)) = ids(mr) else {
            return Ok(Deletion::default());
        };
        let bid = binding_id(mr);
        let mut opts = CallOptions::new();
        if mr.spec.for_provider.accepts_incomplete {
            opts = opts.asynchronous();
        }
        at(mr).state = "Deleting".into();
        let r = ep
            .broker()
            .osb()
            .unbind(&iid, &bid, &sid, &pid, &opts)
            .await;
        ep.record("unbind", &errors::outcome_osb(&r));
        match r {
            Ok(reply) => match reply.outcome {
                DeleteOutcome::Deleted | DeleteOutcome::Gone => Ok(Deletion {
                    requeue_after: Some(Duration::from_secs(1)),
                }),
                DeleteOutcome::InProgress { operation } => {
                    set_pending(mr, "unbind", operation);
                    cx.save_status(mr).await?;
                    Ok(Deletion {
                        requeue_after: Some(Duration::from_secs(2)),
                    })
                }
            },
            Err(e) if matches!(e.status(), Some(404 | 410)) => Ok(Deletion {
                requeue_after: Some(Duration::from_secs(1)),
            }),
            Err(e) => {
                let inner = errors::osb(&ep.url, e);
                Err(ExternalError {
                    message: format!("failed to delete ServiceBinding: {}", inner.message),
                    ..inner
                })
            }
        }
    }
}
