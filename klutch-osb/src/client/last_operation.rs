//! Polling: instance and binding `last_operation` (spec 2.6, 2.12); the loop and the reading of
//! spec 7.4 are in [`crate::poll`].

use http::Method;

use super::exchange::{Answer, Call};
use super::{CallOptions, Client, LastOperationQuery, LastOperationReply};
use crate::error::Result;
use crate::outcome::Reply;
use crate::parse;
use crate::version::Feature;

impl Client {
    /// `GET /v2/service_instances/{instance_id}/last_operation`: one raw poll. Use
    /// [`crate::Poller`] for the interpretation of spec 7.4 and the loop.
    ///
    /// ```no_run
    /// # async fn run(client: klutch_osb::Client) -> klutch_osb::Result<()> {
    /// use klutch_osb::{CallOptions, LastOperationQuery};
    /// let q = LastOperationQuery { service_id: Some("svc-id".into()), plan_id: Some("plan-id".into()), operation: None };
    /// let reply = client.instance_last_operation("instance-1", &q, &CallOptions::new()).await?;
    /// println!("{:?}", reply.outcome.last_operation.state);
    /// # Ok(()) }
    /// ```
    pub async fn instance_last_operation(
        &self,
        instance_id: &str,
        q: &LastOperationQuery,
        opts: &CallOptions<'_>,
    ) -> Result<Reply<LastOperationReply>> {
        self.last_operation(instance_id, None, q, opts, last_operation_table)
            .await
    }

    /// `GET .../service_bindings/{binding_id}/last_operation` (2.14): one raw poll.
    ///
    /// ```no_run
    /// # async fn run(client: klutch_osb::Client) -> klutch_osb::Result<()> {
    /// use klutch_osb::{CallOptions, LastOperationQuery};
    /// let reply = client.binding_last_operation("instance-1", "binding-1", &LastOperationQuery::default(), &CallOptions::new()).await?;
    /// println!("{:?}", reply.outcome.last_operation.state);
    /// # Ok(()) }
    /// ```
    pub async fn binding_last_operation(
        &self,
        instance_id: &str,
        binding_id: &str,
        q: &LastOperationQuery,
        opts: &CallOptions<'_>,
    ) -> Result<Reply<LastOperationReply>> {
        self.last_operation(instance_id, Some(binding_id), q, opts, last_operation_table)
            .await
    }

    /// One last_operation request (of the binding when `binding_id` is set), its answer mapped
    /// by `table`: [`Self::instance_last_operation`] and the poller use different tables.
    pub(crate) async fn last_operation<T>(
        &self,
        instance_id: &str,
        binding_id: Option<&str>,
        q: &LastOperationQuery,
        opts: &CallOptions<'_>,
        table: impl FnOnce(&mut Answer) -> Result<Option<T>>,
    ) -> Result<Reply<T>> {
        let path = match binding_id {
            Some(b) => {
                self.inner.version.require(Feature::BindingLastOperation)?;
                format!("{}/last_operation", self.binding_path(instance_id, b)?)
            }
            None => format!("{}/last_operation", self.instance_path(instance_id)?),
        };
        let mut call = Call::new(Method::GET, path);
        if let Some(s) = q.service_id.as_deref().filter(|s| !s.is_empty()) {
            call = call.query("service_id", s);
        }
        if let Some(p) = q.plan_id.as_deref().filter(|s| !s.is_empty()) {
            call = call.query("plan_id", p);
        }
        if let Some(o) = q.operation.as_ref().filter(|o| !o.0.is_empty()) {
            call = call.query("operation", o.as_str());
        }
        // Never an originating identity on polling.
        self.exchange(&call, opts, table).await
    }
}

/// 200 carries the state; every other status is an error.
fn last_operation_table(a: &mut Answer) -> Result<Option<LastOperationReply>> {
    match a.status() {
        200 => Ok(Some(LastOperationReply {
            last_operation: a.parse(parse::last_operation)?,
            retry_after: a.retry_after(),
        })),
        _ => Ok(None),
    }
}
