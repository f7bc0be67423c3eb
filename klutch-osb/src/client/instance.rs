//! Service instances: provision, update, deprovision, fetch (spec 2.4–2.7, 2.10).

use http::Method;
use serde_json::Value;

use super::exchange::{Call, retry_async_required};
use super::{CallOptions, Client, gate_entry, gate_service, non_empty, put_str, to_value};
use crate::error::{Error, Gate, Result};
use crate::model::{InstanceBody, ProvisionRequest, UpdateRequest};
use crate::outcome::{AsyncOperation, DeleteOutcome, ProvisionOutcome, Reply, UpdateOutcome};
use crate::parse;
use crate::target::{LastOperationQuery, OperationKind, PollTarget};
use crate::version::Feature;

impl Client {
    /// `PUT /v2/service_instances/{instance_id}`: provision.
    ///
    /// ```no_run
    /// # async fn run(client: klutch_osb::Client) -> klutch_osb::Result<()> {
    /// use klutch_osb::{CallOptions, Context, ProvisionOutcome, ProvisionRequest};
    /// let req = ProvisionRequest::new("svc-id", "plan-id").context(Context::kubernetes("ns", "cluster"));
    /// match client.provision("instance-1", &req, &CallOptions::new().asynchronous()).await?.outcome {
    ///     ProvisionOutcome::Created { .. } | ProvisionOutcome::AlreadyExists { .. } => println!("ready"),
    ///     ProvisionOutcome::InProgress(op) => println!("started, poll with {:?}", op.operation),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn provision(
        &self,
        instance_id: &str,
        req: &ProvisionRequest,
        opts: &CallOptions<'_>,
    ) -> Result<Reply<ProvisionOutcome>> {
        let reply = retry_async_required(
            opts,
            || Ok(()),
            |accepts| self.provision_once(instance_id, req, opts, accepts),
        )
        .await?;
        Ok(reply.with_poll_target(|o| {
            o.in_progress().map(|op| {
                PollTarget::instance(
                    OperationKind::Provision,
                    instance_id,
                    &req.service_id,
                    &req.plan_id,
                    op.operation.clone(),
                )
            })
        }))
    }

    async fn provision_once(
        &self,
        instance_id: &str,
        req: &ProvisionRequest,
        opts: &CallOptions<'_>,
        accepts: bool,
    ) -> Result<Reply<ProvisionOutcome>> {
        let path = self.instance_path(instance_id)?;
        non_empty("service_id", &req.service_id)?;
        non_empty("plan_id", &req.plan_id)?;
        let Some((org, space)) = req.effective_guids() else {
            return Err(Error::invalid(
                "organization_guid and space_guid are required (set them or pass a cloudfoundry/kubernetes context)",
            ));
        };
        if req.organization_guid.is_none() || req.space_guid.is_none() {
            tracing::debug!(
                organization_guid = %org,
                space_guid = %space,
                platform = req.context.as_ref().and_then(|c| c.platform()).unwrap_or(""),
                "organization_guid/space_guid taken from the context (ProvisionRequest::effective_guids)"
            );
        }
        let mut body = serde_json::Map::new();
        put_str(&mut body, "service_id", &req.service_id);
        put_str(&mut body, "plan_id", &req.plan_id);
        put_str(&mut body, "organization_guid", &org);
        put_str(&mut body, "space_guid", &space);
        if let Some(c) = &req.context
            && self.field(Feature::ContextOnInstance)?
        {
            body.insert("context".into(), to_value(c)?);
        }
        if let Some(p) = &req.parameters {
            body.insert("parameters".into(), Value::Object(p.clone()));
        }
        if let Some(mi) = &req.maintenance_info
            && self.field(Feature::MaintenanceInfo)?
        {
            body.insert("maintenance_info".into(), to_value(mi)?);
        }
        let call = Call::new(Method::PUT, path)
            .accepts_incomplete(accepts)
            .json(body)
            .origin(self.origin(opts, req.context.as_ref())?);
        self.exchange(&call, opts, |a| {
            let status = a.status();
            if !(200..=202).contains(&status) {
                return Ok(None);
            }
            let b = a.parse(parse::operation_body)?;
            Ok(Some(match status {
                200 => ProvisionOutcome::AlreadyExists {
                    dashboard_url: b.dashboard_url,
                    metadata: b.metadata,
                },
                201 => ProvisionOutcome::Created {
                    dashboard_url: b.dashboard_url,
                    metadata: b.metadata,
                },
                _ => {
                    a.solicited(accepts)?;
                    ProvisionOutcome::InProgress(AsyncOperation {
                        operation: b.operation,
                        dashboard_url: b.dashboard_url,
                        metadata: b.metadata,
                    })
                }
            }))
        })
        .await
    }

    /// `PATCH /v2/service_instances/{instance_id}`: update.
    ///
    /// ```no_run
    /// # async fn run(client: klutch_osb::Client) -> klutch_osb::Result<()> {
    /// use klutch_osb::{CallOptions, UpdateRequest};
    /// let req = UpdateRequest::new("svc-id").plan("bigger-plan-id");
    /// let reply = client.update("instance-1", &req, &CallOptions::new().asynchronous()).await?;
    /// println!("{:?}", reply.outcome);
    /// # Ok(()) }
    /// ```
    pub async fn update(
        &self,
        instance_id: &str,
        req: &UpdateRequest,
        opts: &CallOptions<'_>,
    ) -> Result<Reply<UpdateOutcome>> {
        let reply = retry_async_required(
            opts,
            || Ok(()),
            |accepts| self.update_once(instance_id, req, opts, accepts),
        )
        .await?;
        // Spec 7.1: after a plan change, poll with the previous plan id.
        let previous = req
            .previous_values
            .as_ref()
            .and_then(|p| p.plan_id.clone())
            .or_else(|| opts.catalog_entry.map(|(_, p)| p.id.clone()));
        Ok(reply.with_poll_target(|o| {
            o.in_progress().map(|op| PollTarget {
                kind: OperationKind::Update,
                instance_id: instance_id.to_owned(),
                binding_id: None,
                query: LastOperationQuery {
                    service_id: Some(req.service_id.clone()),
                    plan_id: previous,
                    operation: op.operation.clone(),
                },
            })
        }))
    }

    async fn update_once(
        &self,
        instance_id: &str,
        req: &UpdateRequest,
        opts: &CallOptions<'_>,
        accepts: bool,
    ) -> Result<Reply<UpdateOutcome>> {
        let path = self.instance_path(instance_id)?;
        non_empty("service_id", &req.service_id)?;
        if let Some(p) = &req.plan_id {
            non_empty("plan_id", p)?;
        }
        let held = self.gating_catalog();
        let current_plan = req
            .previous_values
            .as_ref()
            .and_then(|p| p.plan_id.as_deref());
        let entry = gate_entry(opts, held.as_deref(), Some(&req.service_id), current_plan);
        if let Some((service, plan)) = entry
            && let Some(new_plan) = &req.plan_id
            && new_plan != &plan.id
            && !service.effective_plan_updateable(plan)
        {
            return Err(Gate::PlanNotUpdateable.into());
        }
        if let Some(service) =
            gate_service(opts, held.as_deref(), Some(&req.service_id), current_plan)
            && req.is_context_only()
            && !service.allow_context_updates.unwrap_or(false)
        {
            return Err(Gate::ContextUpdatesNotAllowed.into());
        }
        let mut body = serde_json::Map::new();
        put_str(&mut body, "service_id", &req.service_id);
        if let Some(p) = &req.plan_id {
            put_str(&mut body, "plan_id", p);
        }
        if let Some(p) = &req.parameters {
            body.insert("parameters".into(), Value::Object(p.clone()));
        }
        if let Some(c) = &req.context
            && self.field(Feature::ContextOnInstance)?
        {
            body.insert("context".into(), to_value(c)?);
        }
        if let Some(mi) = &req.maintenance_info
            && self.field(Feature::MaintenanceInfo)?
        {
            body.insert("maintenance_info".into(), to_value(mi)?);
        }
        if let Some(pv) = &req.previous_values {
            let mut pv = pv.clone();
            if pv.maintenance_info.is_some() && !self.field(Feature::MaintenanceInfo)? {
                pv.maintenance_info = None;
            }
            body.insert("previous_values".into(), to_value(&pv)?);
        }
        let call = Call::new(Method::PATCH, path)
            .accepts_incomplete(accepts)
            .json(body)
            .origin(self.origin(opts, req.context.as_ref())?);
        self.exchange(&call, opts, |a| {
            let status = a.status();
            if status != 200 && status != 202 {
                return Ok(None);
            }
            let b = a.parse(parse::operation_body)?;
            Ok(Some(if status == 200 {
                UpdateOutcome::Updated {
                    dashboard_url: b.dashboard_url,
                    metadata: b.metadata,
                }
            } else {
                a.solicited(accepts)?;
                UpdateOutcome::InProgress(AsyncOperation {
                    operation: b.operation,
                    dashboard_url: b.dashboard_url,
                    metadata: b.metadata,
                })
            }))
        })
        .await
    }

    /// `DELETE /v2/service_instances/{instance_id}`: deprovision.
    ///
    /// ```no_run
    /// # async fn run(client: klutch_osb::Client) -> klutch_osb::Result<()> {
    /// use klutch_osb::{CallOptions, DeleteOutcome};
    /// let reply = client.deprovision("instance-1", "svc-id", "plan-id", &CallOptions::new().asynchronous()).await?;
    /// if let DeleteOutcome::Deleted | DeleteOutcome::Gone = reply.outcome { println!("gone") }
    /// # Ok(()) }
    /// ```
    pub async fn deprovision(
        &self,
        instance_id: &str,
        service_id: &str,
        plan_id: &str,
        opts: &CallOptions<'_>,
    ) -> Result<Reply<DeleteOutcome>> {
        let path = self.instance_path(instance_id)?;
        let reply = self.delete(path, service_id, plan_id, opts, false).await?;
        Ok(reply.with_poll_target(|o| {
            o.in_progress().map(|op| {
                PollTarget::instance(
                    OperationKind::Deprovision,
                    instance_id,
                    service_id,
                    plan_id,
                    op.cloned(),
                )
            })
        }))
    }

    /// `GET /v2/service_instances/{instance_id}` (2.14): fetch an instance. `service_id` and
    /// `plan_id` are optional hints (2.16).
    ///
    /// ```no_run
    /// # async fn run(client: klutch_osb::Client) -> klutch_osb::Result<()> {
    /// use klutch_osb::CallOptions;
    /// let instance = client.fetch_instance("instance-1", None, None, &CallOptions::new()).await?.outcome;
    /// println!("{:?}", instance.parameters);
    /// # Ok(()) }
    /// ```
    pub async fn fetch_instance(
        &self,
        instance_id: &str,
        service_id: Option<&str>,
        plan_id: Option<&str>,
        opts: &CallOptions<'_>,
    ) -> Result<Reply<InstanceBody>> {
        self.inner.version.require(Feature::FetchInstance)?;
        let held = self.gating_catalog();
        if let Some(service) = gate_service(opts, held.as_deref(), service_id, plan_id)
            && !opts.override_gates
            && !service.instances_retrievable.unwrap_or(false)
        {
            return Err(Gate::NotRetrievable.into());
        }
        let path = self.instance_path(instance_id)?;
        let call = Call::new(Method::GET, path)
            .queries(self.hints(service_id, plan_id)?)
            .origin(self.origin(opts, None)?);
        self.exchange(&call, opts, |a| match a.status() {
            200 => a.parse(parse::instance).map(Some),
            _ => Ok(None),
        })
        .await
    }
}
