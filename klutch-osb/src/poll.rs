//! Polling `last_operation` (spec 7): one-shot polls with a recommended next delay for
//! reconcilers, and a cancellable, deadline-aware wait loop honouring `Retry-After`.

use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::client::{CallOptions, Client};
use crate::error::{AcceptedStep, Error, Result};
use crate::model::OperationState;
use crate::parse;
pub use crate::target::{OperationKind, PollTarget};

/// The interpretation of one poll (spec 7.4).
#[derive(Debug, Clone, PartialEq)]
pub enum PollOutcome {
    /// Still running.
    InProgress {
        /// Progress text.
        description: Option<String>,
        /// The broker's `Retry-After`, if valid.
        retry_after: Option<Duration>,
    },
    /// Finished successfully.
    Succeeded {
        /// Text.
        description: Option<String>,
    },
    /// Finished with a failure.
    Failed {
        /// Text.
        description: Option<String>,
        /// `instance_usable` (absent = true).
        instance_usable: bool,
        /// `update_repeatable` (absent = true).
        update_repeatable: bool,
    },
    /// 410 while polling a deletion: the resource is gone (success).
    Gone,
    /// 404: for creates a failure; for deletions mapped to `Gone` by [`Poller::wait`] unless
    /// configured otherwise.
    NotFound,
    /// An unusable answer (bad body, 5xx, transport error, 410 for a create); keep polling.
    Invalid {
        /// Why.
        reason: String,
    },
    /// The deadline passed; treat as failed (and see orphan mitigation).
    TimedOut,
}

impl PollOutcome {
    /// True when polling should stop.
    pub fn is_terminal(&self) -> bool {
        !matches!(
            self,
            PollOutcome::InProgress { .. } | PollOutcome::Invalid { .. }
        )
    }

    /// True for `Succeeded` and `Gone`.
    pub fn is_success(&self) -> bool {
        matches!(self, PollOutcome::Succeeded { .. } | PollOutcome::Gone)
    }
}

/// Poller timing and policy (spec 7.2).
#[derive(Debug, Clone, PartialEq)]
pub struct PollConfig {
    /// Lower clamp for every delay (default 1 s).
    pub min_interval: Duration,
    /// Upper clamp for every delay (default 300 s).
    pub max_interval: Duration,
    /// First delay without `Retry-After` (default 2 s).
    pub initial_interval: Duration,
    /// Backoff multiplier (default 1.5).
    pub multiplier: f64,
    /// Backoff cap (default 30 s).
    pub backoff_cap: Duration,
    /// Relative jitter applied to backoff delays (default 0.1 = ±10 %).
    pub jitter: f64,
    /// Map 404 during a deletion poll to `Gone` (default true).
    pub not_found_after_delete_is_gone: bool,
    /// Per-poll request timeout (default: the client's).
    pub request_timeout: Option<Duration>,
}

impl Default for PollConfig {
    fn default() -> Self {
        PollConfig {
            min_interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(300),
            initial_interval: Duration::from_secs(2),
            multiplier: 1.5,
            backoff_cap: Duration::from_secs(30),
            jitter: 0.1,
            not_found_after_delete_is_gone: true,
            request_timeout: None,
        }
    }
}

impl PollConfig {
    /// The delay before the next poll after `attempt` polls (0-based) and an optional
    /// `Retry-After`. `Retry-After` is honoured exactly (only clamped); backoff is jittered.
    pub fn next_delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let d = match retry_after {
            Some(ra) => ra,
            None => {
                let base = self.initial_interval.as_secs_f64()
                    * self.multiplier.max(1.0).powi(attempt.min(64) as i32);
                let base = base.min(self.backoff_cap.as_secs_f64());
                let j = self.jitter.clamp(0.0, 1.0);
                let factor = 1.0 + j * (fastrand::f64() * 2.0 - 1.0);
                Duration::try_from_secs_f64(base * factor).unwrap_or(self.backoff_cap)
            }
        };
        d.clamp(self.min_interval, self.max_interval.max(self.min_interval))
    }
}

/// When the operation started and how long it may take (spec 7.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// When the 202 was received (persist it so a restarted process keeps the deadline).
    pub started_at: SystemTime,
    /// The caller's limit.
    pub limit: Option<Duration>,
    /// The plan's `maximum_polling_duration`.
    pub plan_max: Option<Duration>,
}

impl Deadline {
    /// No deadline, started now.
    pub fn none() -> Self {
        Deadline {
            started_at: SystemTime::now(),
            limit: None,
            plan_max: None,
        }
    }

    /// Started now with the given caller limit and plan maximum.
    pub fn from_now(limit: Option<Duration>, plan_max: Option<Duration>) -> Self {
        Deadline {
            started_at: SystemTime::now(),
            limit,
            plan_max,
        }
    }

    /// The time left, or `None` when unbounded.
    pub fn remaining(&self) -> Option<Duration> {
        let total = match (self.limit, self.plan_max) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        let elapsed = SystemTime::now()
            .duration_since(self.started_at)
            .unwrap_or(Duration::ZERO);
        Some(total.saturating_sub(elapsed))
    }
}

/// One poll's outcome plus the recommended delay before the next one.
#[derive(Debug, Clone, PartialEq)]
pub struct PollStep {
    /// The interpretation.
    pub outcome: PollOutcome,
    /// When to poll next (meaningful when not terminal).
    pub next_delay: Duration,
}

/// The end of [`Poller::wait`].
#[derive(Debug, Clone, PartialEq)]
pub struct WaitResult {
    /// The terminal outcome (never `InProgress`/`Invalid`).
    pub outcome: PollOutcome,
    /// How many last_operation requests were made.
    pub polls: u32,
}

/// Polls last_operation for a [`Client`].
///
/// ```no_run
/// # async fn run(client: klutch_osb::Client) -> klutch_osb::Result<()> {
/// use klutch_osb::{Deadline, OperationKind, PollTarget, Poller};
/// let target = PollTarget::instance(OperationKind::Provision, "instance-1", "svc-id", "plan-id", None);
/// let result = Poller::new(client).wait(&target, Deadline::from_now(None, None), None).await?;
/// assert!(result.outcome.is_terminal());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Poller {
    client: Client,
    config: PollConfig,
}

impl Poller {
    /// A poller with the default configuration.
    pub fn new(client: Client) -> Self {
        Poller {
            client,
            config: PollConfig::default(),
        }
    }

    /// A poller with a custom configuration.
    pub fn with_config(client: Client, config: PollConfig) -> Self {
        Poller { client, config }
    }

    /// The configuration.
    pub fn config(&self) -> &PollConfig {
        &self.config
    }

    /// One poll. `attempt` (0-based) drives the backoff when the broker sends no
    /// `Retry-After`. Returns `Err` only for answers that stop polling as errors: 400, 401,
    /// 412, a version gate or an invalid target.
    pub async fn poll_once(&self, target: &PollTarget, attempt: u32) -> Result<PollStep> {
        let mut opts = CallOptions::new();
        opts.timeout = self.config.request_timeout;
        let kind = target.kind;
        let answer = self
            .client
            .last_operation(
                &target.instance_id,
                target.binding_id.as_deref(),
                &target.query,
                &opts,
                |a| {
                    Ok(Some(match a.status() {
                        200 => {
                            let retry_after = a.retry_after();
                            let outcome = match a.try_parse(parse::last_operation) {
                                Ok(lo) => match lo.state {
                                    OperationState::InProgress => PollOutcome::InProgress {
                                        description: lo.description,
                                        retry_after,
                                    },
                                    OperationState::Succeeded => PollOutcome::Succeeded {
                                        description: lo.description,
                                    },
                                    OperationState::Failed => PollOutcome::Failed {
                                        description: lo.description,
                                        instance_usable: lo.instance_usable.unwrap_or(true),
                                        update_repeatable: lo.update_repeatable.unwrap_or(true),
                                    },
                                },
                                Err(e) => PollOutcome::Invalid {
                                    reason: e.detailed(),
                                },
                            };
                            (outcome, retry_after)
                        }
                        410 if kind.is_delete() => (PollOutcome::Gone, None),
                        410 => (
                            PollOutcome::Invalid {
                                reason: "410 Gone while polling a create or update".into(),
                            },
                            None,
                        ),
                        404 => (PollOutcome::NotFound, None),
                        // Errors that stop polling.
                        400 | 401 | 412 => return Ok(None),
                        s => (
                            PollOutcome::Invalid {
                                reason: format!("HTTP {s}"),
                            },
                            None,
                        ),
                    }))
                },
            )
            .await;
        let (outcome, retry_after) = match answer {
            Err(e @ (Error::Connect { .. } | Error::Timeout { .. } | Error::Transport { .. })) => (
                PollOutcome::Invalid {
                    reason: format!("{e}"),
                },
                None,
            ),
            Err(e) => return Err(e),
            Ok(reply) => reply.outcome,
        };
        let next_delay = self.config.next_delay(attempt, retry_after);
        Ok(PollStep {
            outcome,
            next_delay,
        })
    }

    /// Polls until a terminal outcome or the deadline (`TimedOut`). Dropping the future or
    /// cancelling `cancel` stops it at any point (`Err(Cancelled)`); no connection is held
    /// while sleeping. For deletions, `NotFound` is returned as `Gone` unless configured
    /// otherwise.
    pub async fn wait(
        &self,
        target: &PollTarget,
        deadline: Deadline,
        cancel: Option<&CancellationToken>,
    ) -> Result<WaitResult> {
        let never = CancellationToken::new();
        let cancel = cancel.unwrap_or(&never);
        let end = deadline
            .remaining()
            .map(|r| tokio::time::Instant::now() + r);
        let mut polls = 0u32;
        loop {
            if end.is_some_and(|e| tokio::time::Instant::now() >= e) {
                return Ok(WaitResult {
                    outcome: PollOutcome::TimedOut,
                    polls,
                });
            }
            let step = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(Error::Cancelled),
                s = self.poll_once(target, polls) => s?,
            };
            polls += 1;
            match step.outcome {
                PollOutcome::NotFound
                    if target.kind.is_delete() && self.config.not_found_after_delete_is_gone =>
                {
                    return Ok(WaitResult {
                        outcome: PollOutcome::Gone,
                        polls,
                    });
                }
                o if o.is_terminal() => return Ok(WaitResult { outcome: o, polls }),
                PollOutcome::Invalid { reason } => {
                    tracing::debug!(%reason, "unusable last_operation answer; polling on")
                }
                _ => {}
            }
            let mut delay = step.next_delay;
            if let Some(e) = end {
                let left = e.saturating_duration_since(tokio::time::Instant::now());
                delay = delay.min(left);
            }
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(Error::Cancelled),
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_clamp_and_back_off() {
        let c = PollConfig {
            jitter: 0.0,
            ..PollConfig::default()
        };
        assert_eq!(c.next_delay(0, None), Duration::from_secs(2));
        assert_eq!(c.next_delay(1, None), Duration::from_secs(3));
        assert_eq!(c.next_delay(2, None), Duration::from_millis(4500));
        assert_eq!(c.next_delay(50, None), Duration::from_secs(30));
        assert_eq!(
            c.next_delay(0, Some(Duration::ZERO)),
            Duration::from_secs(1)
        );
        assert_eq!(
            c.next_delay(0, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(
            c.next_delay(0, Some(Duration::from_secs(100_000))),
            Duration::from_secs(300)
        );
        let j = PollConfig::default();
        for _ in 0..100 {
            let d = j.next_delay(0, None);
            assert!(
                d >= Duration::from_millis(1800) && d <= Duration::from_millis(2200),
                "{d:?}"
            );
        }
    }

    #[test]
    fn deadline_takes_the_minimum() {
        assert_eq!(Deadline::none().remaining(), None);
        let d = Deadline {
            started_at: SystemTime::now(),
            limit: Some(Duration::from_secs(100)),
            plan_max: Some(Duration::from_secs(10)),
        };
        assert!(d.remaining().unwrap() <= Duration::from_secs(10));
        let old = Deadline {
            started_at: SystemTime::now() - Duration::from_secs(60),
            limit: Some(Duration::from_secs(10)),
            plan_max: None,
        };
        assert_eq!(old.remaining(), Some(Duration::ZERO));
    }
}

/// The end of a polling-mode call (spec 6.2): either finished, or the asynchronous operation
/// ended without success.
#[derive(Debug, Clone, PartialEq)]
pub enum Completion<T> {
    /// Finished (synchronously, or asynchronously followed by a successful poll).
    Done(T),
    /// The asynchronous operation ended `Failed`, `TimedOut` or `NotFound`; see
    /// [`crate::orphan_mitigation`] with [`crate::OmResult::from_poll`].
    Unsuccessful(PollOutcome),
}

/// An error of a step after the broker accepted the operation (never "not sent").
fn accepted(step: AcceptedStep) -> impl FnOnce(Error) -> Error {
    move |e| Error::AfterAccepted {
        step,
        source: Box::new(e),
    }
}

impl Poller {
    /// Polls an accepted operation to its end: `None` on success, else the terminal outcome.
    async fn finish(
        &self,
        target: &PollTarget,
        deadline: Deadline,
        cancel: Option<&CancellationToken>,
    ) -> Result<Option<PollOutcome>> {
        let r = self
            .wait(target, deadline, cancel)
            .await
            .map_err(accepted(AcceptedStep::Polling))?;
        Ok(if r.outcome.is_success() {
            None
        } else {
            Some(r.outcome)
        })
    }

    /// Polling mode for provision: sends with `accepts_incomplete=true` and, on 202, polls
    /// until the end. `deadline.limit`/`plan_max` bound the polling. A provision that finished
    /// asynchronously is `Done(Created { .. })` with the dashboard URL and metadata of the 202.
    ///
    /// ```no_run
    /// # async fn run(client: klutch_osb::Client) -> klutch_osb::Result<()> {
    /// use klutch_osb::{CallOptions, Completion, Deadline, Poller, ProvisionRequest};
    /// let req = ProvisionRequest::new("svc-id", "plan-id").guids("org", "space");
    /// let poller = Poller::new(client);
    /// match poller.provision_and_wait("i-1", &req, &CallOptions::new(), Deadline::from_now(None, None), None).await? {
    ///     Completion::Done(outcome) => println!("ready: {outcome:?}"),
    ///     Completion::Unsuccessful(why) => println!("failed: {why:?}; deprovision (orphan mitigation)"),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn provision_and_wait(
        &self,
        instance_id: &str,
        req: &crate::ProvisionRequest,
        opts: &CallOptions<'_>,
        deadline: Deadline,
        cancel: Option<&CancellationToken>,
    ) -> Result<Completion<crate::ProvisionOutcome>> {
        let opts = CallOptions {
            accepts_incomplete: true,
            ..opts.clone()
        };
        let reply = self.client.provision(instance_id, req, &opts).await?;
        let (crate::ProvisionOutcome::InProgress(op), Some(target)) =
            (&reply.outcome, &reply.poll_target)
        else {
            return Ok(Completion::Done(reply.outcome));
        };
        Ok(match self.finish(target, deadline, cancel).await? {
            None => Completion::Done(crate::ProvisionOutcome::Created {
                dashboard_url: op.dashboard_url.clone(),
                metadata: op.metadata.clone(),
            }),
            Some(o) => Completion::Unsuccessful(o),
        })
    }

    /// Polling mode for update: sends with `accepts_incomplete=true` and, on 202, polls until
    /// the end (with the previous plan id: set `previous_values.plan_id` on a plan change, see
    /// [`crate::Reply::poll_target`]). A finished asynchronous update is
    /// `Done(Updated { .. })` with the dashboard URL and metadata of the 202.
    pub async fn update_and_wait(
        &self,
        instance_id: &str,
        req: &crate::UpdateRequest,
        opts: &CallOptions<'_>,
        deadline: Deadline,
        cancel: Option<&CancellationToken>,
    ) -> Result<Completion<crate::UpdateOutcome>> {
        let opts = CallOptions {
            accepts_incomplete: true,
            ..opts.clone()
        };
        let reply = self.client.update(instance_id, req, &opts).await?;
        let (crate::UpdateOutcome::InProgress(op), Some(target)) =
            (&reply.outcome, &reply.poll_target)
        else {
            return Ok(Completion::Done(reply.outcome));
        };
        Ok(match self.finish(target, deadline, cancel).await? {
            None => Completion::Done(crate::UpdateOutcome::Updated {
                dashboard_url: op.dashboard_url.clone(),
                metadata: op.metadata.clone(),
            }),
            Some(o) => Completion::Unsuccessful(o),
        })
    }

    /// Polling mode for bind: asks for asynchronous completion when the API version has it and
    /// the service declares `bindings_retrievable` (else binds synchronously, see
    /// [`Client::bind`]); on 202 polls until the end, then fetches the binding (the
    /// credentials) with fetch binding. An error after the broker accepted the bind is
    /// [`Error::AfterAccepted`], never "not sent".
    pub async fn bind_and_wait(
        &self,
        instance_id: &str,
        binding_id: &str,
        req: &crate::BindRequest,
        opts: &CallOptions<'_>,
        deadline: Deadline,
        cancel: Option<&CancellationToken>,
    ) -> Result<Completion<crate::BindingBody>> {
        let async_ok = self
            .client
            .api_version()
            .supports(crate::Feature::AsyncBinding);
        let opts = CallOptions {
            accepts_incomplete: async_ok,
            ..opts.clone()
        };
        let reply = self
            .client
            .bind(instance_id, binding_id, req, &opts)
            .await?;
        let target = match (reply.outcome, reply.poll_target) {
            (crate::BindOutcome::Created(b) | crate::BindOutcome::AlreadyExists(b), _) => {
                return Ok(Completion::Done(b));
            }
            (crate::BindOutcome::InProgress { operation }, target) => target.unwrap_or_else(|| {
                PollTarget::binding(
                    OperationKind::Bind,
                    instance_id,
                    binding_id,
                    &req.service_id,
                    &req.plan_id,
                    operation,
                )
            }),
        };
        if let Some(o) = self.finish(&target, deadline, cancel).await? {
            return Ok(Completion::Unsuccessful(o));
        }
        let fetch = CallOptions {
            accepts_incomplete: false,
            ..opts
        };
        let b = self
            .client
            .fetch_binding(
                instance_id,
                binding_id,
                Some(&req.service_id),
                Some(&req.plan_id),
                &fetch,
            )
            .await
            .map_err(accepted(AcceptedStep::FetchBinding))?;
        Ok(Completion::Done(b.outcome))
    }

    /// Polling mode for deprovision: `Done(Deleted | Gone)` once the instance is gone.
    pub async fn deprovision_and_wait(
        &self,
        instance_id: &str,
        service_id: &str,
        plan_id: &str,
        opts: &CallOptions<'_>,
        deadline: Deadline,
        cancel: Option<&CancellationToken>,
    ) -> Result<Completion<crate::DeleteOutcome>> {
        let opts = CallOptions {
            accepts_incomplete: true,
            ..opts.clone()
        };
        let reply = self
            .client
            .deprovision(instance_id, service_id, plan_id, &opts)
            .await?;
        self.delete_done(reply, deadline, cancel).await
    }

    /// Polling mode for unbind: `Done(Deleted | Gone)` once the binding is gone.
    #[allow(clippy::too_many_arguments)]
    pub async fn unbind_and_wait(
        &self,
        instance_id: &str,
        binding_id: &str,
        service_id: &str,
        plan_id: &str,
        opts: &CallOptions<'_>,
        deadline: Deadline,
        cancel: Option<&CancellationToken>,
    ) -> Result<Completion<crate::DeleteOutcome>> {
        let async_ok = self
            .client
            .api_version()
            .supports(crate::Feature::AsyncBinding);
        let opts = CallOptions {
            accepts_incomplete: async_ok,
            ..opts.clone()
        };
        let reply = self
            .client
            .unbind(instance_id, binding_id, service_id, plan_id, &opts)
            .await?;
        self.delete_done(reply, deadline, cancel).await
    }

    async fn delete_done(
        &self,
        reply: crate::Reply<crate::DeleteOutcome>,
        deadline: Deadline,
        cancel: Option<&CancellationToken>,
    ) -> Result<Completion<crate::DeleteOutcome>> {
        let Some(t) = reply.poll_target else {
            return Ok(Completion::Done(reply.outcome));
        };
        let r = self
            .wait(&t, deadline, cancel)
            .await
            .map_err(accepted(AcceptedStep::Polling))?;
        Ok(match r.outcome {
            PollOutcome::Succeeded { .. } => Completion::Done(crate::DeleteOutcome::Deleted),
            PollOutcome::Gone => Completion::Done(crate::DeleteOutcome::Gone),
            other => Completion::Unsuccessful(other),
        })
    }
}
