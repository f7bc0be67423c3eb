//! The shortest correct Open Service Broker lifecycle with `klutch-osb`: provision, bind,
//! unbind, deprovision, each allowed to complete asynchronously (202 + polling
//! `last_operation`) and each waited for.
//!
//! ```text
//! cargo run -p klutch-examples --example osb                       # against the in-process fake broker (async mode)
//! OSB_URL=https://broker OSB_USER=admin OSB_PASSWORD=secret \
//!   cargo run -p klutch-examples --example osb -- postgresql small  # against a real broker
//! ```
//!
//! What makes it correct:
//! * the client is given the catalog, so every call checks the catalog's gates (bindable,
//!   `bindings_retrievable`: a service without it is bound synchronously, since its
//!   credentials could not be fetched after an asynchronous bind);
//! * the `Poller::*_and_wait` helpers send `accepts_incomplete=true`, poll the operation the
//!   202 reply describes (`Reply::poll_target`) within the plan's `maximum_polling_duration`,
//!   and fetch the credentials of an asynchronously created binding;
//! * an unsuccessful end (`Completion::Unsuccessful`) or an error is run through
//!   `orphan_mitigation`, which says whether the broker may hold a resource to delete.

use std::time::Duration;

use klutch_osb::testing::{FakeBroker, FakeBrokerConfig, Mode};
use klutch_osb::{
    BindRequest, CallOptions, Client, Completion, Context, Deadline, OmOperation, OmPolicy,
    OmResult, OrphanMitigation, Poller, ProvisionRequest, orphan_mitigation,
};

/// What the lifecycle did, for the caller (and the test) to check.
#[derive(Debug)]
pub struct Report {
    /// The dashboard URL the broker returned for the instance, if any.
    pub dashboard_url: Option<String>,
    /// The credential keys of the binding (never the values: they are secrets).
    pub credential_keys: Vec<String>,
}

/// Errors of the lifecycle: a broker or client error, or an operation that ended unsuccessfully.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Provisions `instance_id` of `service`/`plan`, binds it, unbinds and deprovisions.
pub async fn lifecycle(
    client: Client,
    service: &str,
    plan: &str,
    instance_id: &str,
) -> Result<Report, Error> {
    let catalog = client.catalog().await?.outcome;
    let (svc, pl) = catalog
        .plan_by_name(service, plan)
        .ok_or_else(|| format!("no plan {service}/{plan} in the catalog"))?;
    let (service_id, plan_id) = (svc.id.clone(), pl.id.clone());
    let deadline = || Deadline::from_now(Some(Duration::from_secs(600)), pl.max_polling_duration());
    client.set_catalog(catalog.clone());
    let poller = Poller::new(client);
    let opts = CallOptions::new();

    // Provision. A Kubernetes context also yields organization_guid = clusterid and
    // space_guid = namespace (see `Context::guids`).
    let req = ProvisionRequest::new(&service_id, &plan_id)
        .context(Context::kubernetes("team-a", "cluster-1").with("instance_name", instance_id));
    let provisioned = poller
        .provision_and_wait(instance_id, &req, &opts, deadline(), None)
        .await;
    let dashboard_url = match provisioned {
        Ok(Completion::Done(outcome)) => outcome.dashboard_url().map(str::to_owned),
        Ok(Completion::Unsuccessful(why)) => {
            let om = OmResult::from_poll(&why).unwrap_or(OmResult::Timeout);
            mitigate(
                &poller,
                OmOperation::Provision,
                &om,
                instance_id,
                None,
                &service_id,
                &plan_id,
            )
            .await;
            return Err(format!("provision ended {why:?}").into());
        }
        Err(e) => {
            let om = OmResult::from_error(&e);
            mitigate(
                &poller,
                OmOperation::Provision,
                &om,
                instance_id,
                None,
                &service_id,
                &plan_id,
            )
            .await;
            return Err(e.into());
        }
    };

    // Bind; the credentials come back whether the bind finished at once or asynchronously.
    let binding_id = "binding-1";
    let bind = BindRequest::new(&service_id, &plan_id);
    let bound = poller
        .bind_and_wait(instance_id, binding_id, &bind, &opts, deadline(), None)
        .await;
    let binding = match bound {
        Ok(Completion::Done(binding)) => binding,
        Ok(Completion::Unsuccessful(why)) => {
            let om = OmResult::from_poll(&why).unwrap_or(OmResult::Timeout);
            mitigate(
                &poller,
                OmOperation::Bind,
                &om,
                instance_id,
                Some(binding_id),
                &service_id,
                &plan_id,
            )
            .await;
            return Err(format!("bind ended {why:?}").into());
        }
        Err(e) => {
            let om = OmResult::from_error(&e);
            mitigate(
                &poller,
                OmOperation::Bind,
                &om,
                instance_id,
                Some(binding_id),
                &service_id,
                &plan_id,
            )
            .await;
            return Err(e.into());
        }
    };
    let mut credential_keys: Vec<String> = binding
        .credentials
        .map(|c| c.expose().keys().cloned().collect())
        .unwrap_or_default();
    credential_keys.sort();

    // Unbind and deprovision: `Done(Deleted | Gone)` once the broker says so.
    let unbound = poller
        .unbind_and_wait(
            instance_id,
            binding_id,
            &service_id,
            &plan_id,
            &opts,
            deadline(),
            None,
        )
        .await?;
    let Completion::Done(_) = unbound else {
        return Err(format!("unbind ended {unbound:?}").into());
    };
    let deleted = poller
        .deprovision_and_wait(instance_id, &service_id, &plan_id, &opts, deadline(), None)
        .await?;
    let Completion::Done(_) = deleted else {
        return Err(format!("deprovision ended {deleted:?}").into());
    };
    Ok(Report {
        dashboard_url,
        credential_keys,
    })
}

/// Deletes what the broker may hold after a failed provision or bind (spec 8), when the
/// orphan-mitigation table says so. A real platform retries this with backoff until it
/// succeeds.
async fn mitigate(
    poller: &Poller,
    op: OmOperation,
    result: &OmResult,
    instance_id: &str,
    binding_id: Option<&str>,
    service_id: &str,
    plan_id: &str,
) {
    let d = Deadline::from_now(Some(Duration::from_secs(600)), None);
    let opts = CallOptions::new();
    let outcome = match (
        orphan_mitigation(op, result, OmPolicy::default()),
        binding_id,
    ) {
        (OrphanMitigation::Deprovision, _) => {
            poller
                .deprovision_and_wait(instance_id, service_id, plan_id, &opts, d, None)
                .await
        }
        (OrphanMitigation::Unbind, Some(b)) => {
            poller
                .unbind_and_wait(instance_id, b, service_id, plan_id, &opts, d, None)
                .await
        }
        _ => return,
    };
    eprintln!("orphan mitigation: {outcome:?}");
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (_fake, client, service, plan) = match std::env::var("OSB_URL") {
        Ok(url) => {
            let mut b = Client::builder(url);
            if let Ok(user) = std::env::var("OSB_USER") {
                b = b.basic_auth(user, std::env::var("OSB_PASSWORD").unwrap_or_default());
            }
            let [service, plan] = <[String; 2]>::try_from(args)
                .map_err(|_| "usage: osb SERVICE PLAN (with OSB_URL set)")?;
            (None, b.build()?, service, plan)
        }
        Err(_) => {
            let fake = FakeBroker::start(FakeBrokerConfig {
                mode: Mode::Async {
                    duration: Duration::from_millis(300),
                    retry_after: Some(1),
                },
                ..FakeBrokerConfig::default()
            })
            .await?;
            let client = fake.client_builder().build()?;
            println!("fake broker (asynchronous mode) at {}", fake.url());
            (Some(fake), client, "fake-db".to_owned(), "small".to_owned())
        }
    };
    let report = lifecycle(client, &service, &plan, "example-instance-1").await?;
    println!(
        "provisioned (dashboard {:?}), bound (credential keys {:?}), unbound, deprovisioned",
        report.dashboard_url, report.credential_keys
    );
    Ok(())
}
