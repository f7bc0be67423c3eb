//! Service bindings: bind, rotate, unbind, fetch (spec 2.8–2.9, 2.11, 2.17 rotation).

use http::Method;
use serde_json::Value;

use super::exchange::{Answer, Call, retry_async_required};
use super::{CallOptions, Client, gate_entry, gate_service, non_empty, put_str, to_value};
use crate::catalog::{Plan, Service};
use crate::error::{Gate, ProtocolViolation, Result};
use crate::model::{BindRequest, BindingBody, RotateRequest};
use crate::outcome::{BindOutcome, DeleteOutcome, Reply};
use crate::parse;
use crate::target::{OperationKind, PollTarget};
use crate::version::Feature;

impl Client {
    /// `PUT .../service_bindings/{binding_id}`: bind.
    ///
    /// ```no_run
    /// # async fn run(client: klutch_osb::Client) -> klutch_osb::Result<()> {
    /// use klutch_osb::{BindOutcome, BindRequest, CallOptions};
    /// let req = BindRequest::new("svc-id", "plan-id");
    /// if let BindOutcome::Created(binding) = client.bind("instance-1", "binding-1", &req, &CallOptions::new()).await?.outcome {
    ///     let keys: Vec<_> = binding.credentials.map(|c| c.expose().keys().cloned().collect()).unwrap_or_default();
    ///     println!("credential keys: {keys:?}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn bind(
        &self,
        instance_id: &str,
        binding_id: &str,
        req: &BindRequest,
        opts: &CallOptions<'_>,
    ) -> Result<Reply<BindOutcome>> {
        let held = self.gating_catalog();
        let entry = gate_entry(
            opts,
            held.as_deref(),
            Some(&req.service_id),
            Some(&req.plan_id),
        );
        if let Some((service, plan)) = entry
            && !opts.override_gates
            && !service.effective_bindable(plan)
        {
            return Err(Gate::NotBindable.into());
        }
        // Spec 2.17: an asynchronously created binding can only be read back with fetch
        // binding, which a service without `bindings_retrievable` does not offer; such a bind
        // must be synchronous, or its credentials are lost and the binding orphaned.
        let sync_only = entry.is_some_and(|(service, _)| {
            !opts.override_gates && !service.bindings_retrievable.unwrap_or(false)
        });
        if sync_only && (opts.accepts_incomplete || opts.retry_async_required) {
            tracing::debug!(
                service_id = %req.service_id,
                "binding synchronously: the service does not declare bindings_retrievable"
            );
        }
        let sync_opts;
        let opts = if sync_only {
            sync_opts = CallOptions {
                accepts_incomplete: false,
                retry_async_required: false,
                ..opts.clone()
            };
            &sync_opts
        } else {
            opts
        };
        let reply = retry_async_required(
            opts,
            || Ok(()),
            |accepts| self.bind_once(instance_id, binding_id, req, opts, entry, accepts),
        )
        .await?;
        Ok(reply.with_poll_target(|o| {
            o.in_progress().map(|op| {
                PollTarget::binding(
                    OperationKind::Bind,
                    instance_id,
                    binding_id,
                    &req.service_id,
                    &req.plan_id,
                    op.cloned(),
                )
            })
        }))
    }

    async fn bind_once(
        &self,
        instance_id: &str,
        binding_id: &str,
        req: &BindRequest,
        opts: &CallOptions<'_>,
        entry: Option<(&Service, &Plan)>,
        accepts: bool,
    ) -> Result<Reply<BindOutcome>> {
        let path = self.binding_path(instance_id, binding_id)?;
        non_empty("service_id", &req.service_id)?;
        non_empty("plan_id", &req.plan_id)?;
        if accepts {
            self.inner.version.require(Feature::AsyncBinding)?;
        }
        let mut body = serde_json::Map::new();
        put_str(&mut body, "service_id", &req.service_id);
        put_str(&mut body, "plan_id", &req.plan_id);
        if let Some(r) = &req.bind_resource {
            body.insert("bind_resource".into(), to_value(r)?);
            if req.send_deprecated_app_guid
                && let Some(app) = &r.app_guid
            {
                put_str(&mut body, "app_guid", app);
            }
        }
        if let Some(c) = &req.context
            && self.field(Feature::ContextOnBindAndOriginatingIdentity)?
        {
            body.insert("context".into(), to_value(c)?);
        }
        if let Some(p) = &req.parameters {
            body.insert("parameters".into(), Value::Object(p.clone()));
        }
        let call = Call::new(Method::PUT, path)
            .accepts_incomplete(accepts)
            .json(body)
            .origin(self.origin(opts, req.context.as_ref())?);
        self.exchange(&call, opts, |a| bind_table(a, accepts, entry))
            .await
    }

    /// Binding rotation (2.17): `PUT .../service_bindings/{binding_id}` with
    /// `predecessor_binding_id`; `binding_id` is the new binding.
    ///
    /// ```no_run
    /// # async fn run(client: klutch_osb::Client) -> klutch_osb::Result<()> {
    /// use klutch_osb::{CallOptions, RotateRequest};
    /// let req = RotateRequest { service_id: "svc-id".into(), plan_id: "plan-id".into(), predecessor_binding_id: "binding-1".into() };
    /// let reply = client.rotate_binding("instance-1", "binding-2", &req, &CallOptions::new()).await?;
    /// println!("{:?}", reply.outcome);
    /// # Ok(()) }
    /// ```
    pub async fn rotate_binding(
        &self,
        instance_id: &str,
        binding_id: &str,
        req: &RotateRequest,
        opts: &CallOptions<'_>,
    ) -> Result<Reply<BindOutcome>> {
        self.inner.version.require(Feature::BindingRotation)?;
        let held = self.gating_catalog();
        let entry = gate_entry(
            opts,
            held.as_deref(),
            Some(&req.service_id),
            Some(&req.plan_id),
        );
        if let Some((_, plan)) = entry
            && !opts.override_gates
            && !plan.is_binding_rotatable()
        {
            return Err(Gate::NotRotatable.into());
        }
        let path = self.binding_path(instance_id, binding_id)?;
        non_empty("predecessor_binding_id", &req.predecessor_binding_id)?;
        non_empty("service_id", &req.service_id)?;
        non_empty("plan_id", &req.plan_id)?;
        let mut body = serde_json::Map::new();
        put_str(&mut body, "service_id", &req.service_id);
        put_str(&mut body, "plan_id", &req.plan_id);
        put_str(
            &mut body,
            "predecessor_binding_id",
            &req.predecessor_binding_id,
        );
        let accepts = opts.accepts_incomplete;
        let call = Call::new(Method::PUT, path)
            .accepts_incomplete(accepts)
            .json(body)
            .origin(self.origin(opts, None)?);
        let reply = self
            .exchange(&call, opts, |a| bind_table(a, accepts, entry))
            .await?;
        Ok(reply.with_poll_target(|o| {
            o.in_progress().map(|op| {
                PollTarget::binding(
                    OperationKind::Bind,
                    instance_id,
                    binding_id,
                    &req.service_id,
                    &req.plan_id,
                    op.cloned(),
                )
            })
        }))
    }

    /// `DELETE .../service_bindings/{binding_id}`: unbind.
    ///
    /// ```no_run
    /// # async fn run(client: klutch_osb::Client) -> klutch_osb::Result<()> {
    /// use klutch_osb::CallOptions;
    /// let reply = client.unbind("instance-1", "binding-1", "svc-id", "plan-id", &CallOptions::new()).await?;
    /// println!("{:?}", reply.outcome);
    /// # Ok(()) }
    /// ```
    pub async fn unbind(
        &self,
        instance_id: &str,
        binding_id: &str,
        service_id: &str,
        plan_id: &str,
        opts: &CallOptions<'_>,
    ) -> Result<Reply<DeleteOutcome>> {
        let path = self.binding_path(instance_id, binding_id)?;
        let reply = self.delete(path, service_id, plan_id, opts, true).await?;
        Ok(reply.with_poll_target(|o| {
            o.in_progress().map(|op| {
                PollTarget::binding(
                    OperationKind::Unbind,
                    instance_id,
                    binding_id,
                    service_id,
                    plan_id,
                    op.cloned(),
                )
            })
        }))
    }

    /// `GET .../service_bindings/{binding_id}` (2.14): fetch a binding (with credentials).
    ///
    /// ```no_run
    /// # async fn run(client: klutch_osb::Client) -> klutch_osb::Result<()> {
    /// use klutch_osb::CallOptions;
    /// let binding = client.fetch_binding("instance-1", "binding-1", None, None, &CallOptions::new()).await?.outcome;
    /// println!("{} endpoints", binding.endpoints.len());
    /// # Ok(()) }
    /// ```
    pub async fn fetch_binding(
        &self,
        instance_id: &str,
        binding_id: &str,
        service_id: Option<&str>,
        plan_id: Option<&str>,
        opts: &CallOptions<'_>,
    ) -> Result<Reply<BindingBody>> {
        self.inner.version.require(Feature::FetchBinding)?;
        let held = self.gating_catalog();
        if let Some(service) = gate_service(opts, held.as_deref(), service_id, plan_id)
            && !opts.override_gates
            && !service.bindings_retrievable.unwrap_or(false)
        {
            return Err(Gate::NotRetrievable.into());
        }
        let path = self.binding_path(instance_id, binding_id)?;
        let call = Call::new(Method::GET, path)
            .queries(self.hints(service_id, plan_id)?)
            .origin(self.origin(opts, None)?);
        self.exchange(&call, opts, |a| match a.status() {
            200 => a.parse(parse::binding).map(Some),
            _ => Ok(None),
        })
        .await
    }
}

/// The status table of bind and rotation: 200/201 carry the binding (checked against the
/// service's `requires`), 202 the operation (without credentials).
fn bind_table(
    a: &mut Answer,
    accepts: bool,
    entry: Option<(&Service, &Plan)>,
) -> Result<Option<BindOutcome>> {
    match a.status() {
        status @ (200 | 201) => {
            let b: BindingBody = a.parse(parse::binding)?;
            if let Some((service, _)) = entry {
                if b.syslog_drain_url.is_some() && !service.requires("syslog_drain") {
                    a.violation(ProtocolViolation::UnexpectedSyslogDrain)?;
                }
                if b.route_service_url.is_some() && !service.requires("route_forwarding") {
                    a.violation(ProtocolViolation::UnexpectedRouteService)?;
                }
                if !b.volume_mounts.is_empty() && !service.requires("volume_mount") {
                    a.violation(ProtocolViolation::UnexpectedVolumeMounts)?;
                }
            }
            Ok(Some(if status == 200 {
                BindOutcome::AlreadyExists(b)
            } else {
                BindOutcome::Created(b)
            }))
        }
        202 => {
            let b = a.parse(parse::operation_body)?;
            a.solicited(accepts)?;
            if b.credentials {
                a.violation(ProtocolViolation::CredentialsInAsyncBind)?;
            }
            Ok(Some(BindOutcome::InProgress {
                operation: b.operation,
            }))
        }
        _ => Ok(None),
    }
}
