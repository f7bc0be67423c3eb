//! A small Open Service Broker CLI built on `klutch-osb`, for operators who want to poke a
//! broker by hand.
//!
//! ```text
//! cargo run -p klutch-examples --example osb -- --url https://broker --user admin catalog
//! OSB_PASSWORD=secret cargo run -p klutch-examples --example osb -- --url https://broker --user admin \
//!     provision --instance db-1 --service postgresql --plan small --params '{"size":1}'
//! ... bind --instance db-1 --binding b-1 --service postgresql --plan small   # prints credentials
//! ... unbind --instance db-1 --binding b-1 --service postgresql --plan small
//! ... deprovision --instance db-1 --service postgresql --plan small
//! ```

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use klutch_osb::{
    ApiVersion, BindOutcome, BindRequest, CallOptions, Catalog, Client, Context, Deadline,
    DeleteOutcome, OperationKind, PollOutcome, PollTarget, Poller, ProvisionOutcome,
    ProvisionRequest,
};

#[derive(Parser, Debug)]
#[command(about = "Talk to an Open Service Broker (OSB API 2.11-2.17)")]
struct Cli {
    /// Broker base URL.
    #[arg(long, env = "OSB_URL")]
    url: String,
    /// Basic-auth user.
    #[arg(long, env = "OSB_USER")]
    user: Option<String>,
    /// Basic-auth password.
    #[arg(long, env = "OSB_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Bearer token (instead of basic auth).
    #[arg(long, env = "OSB_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// OSB API version (2.11 to 2.17).
    #[arg(long, default_value = "2.17")]
    api_version: String,
    /// PEM file with the CA certificates to trust (replaces the system roots).
    #[arg(long)]
    ca_bundle: Option<std::path::PathBuf>,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug)]
struct Target {
    /// Service offering name.
    #[arg(long)]
    service: String,
    /// Plan name.
    #[arg(long)]
    plan: String,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List services and plans.
    Catalog,
    /// Provision an instance and wait for it.
    Provision {
        /// Instance id.
        #[arg(long)]
        instance: String,
        #[command(flatten)]
        target: Target,
        /// Parameters as a JSON object.
        #[arg(long)]
        params: Option<String>,
        /// Kubernetes namespace for the context.
        #[arg(long, default_value = "default")]
        namespace: String,
        /// Cluster id for the context.
        #[arg(long, default_value = "klutch-osb-cli")]
        cluster: String,
        /// Give up polling after this many seconds (the plan's maximum also applies).
        #[arg(long, default_value_t = 3600)]
        wait: u64,
    },
    /// Create a binding and print its credentials as JSON.
    Bind {
        /// Instance id.
        #[arg(long)]
        instance: String,
        /// Binding id.
        #[arg(long)]
        binding: String,
        #[command(flatten)]
        target: Target,
        /// Parameters as a JSON object.
        #[arg(long)]
        params: Option<String>,
    },
    /// Delete a binding.
    Unbind {
        /// Instance id.
        #[arg(long)]
        instance: String,
        /// Binding id.
        #[arg(long)]
        binding: String,
        #[command(flatten)]
        target: Target,
    },
    /// Delete an instance and wait for it.
    Deprovision {
        /// Instance id.
        #[arg(long)]
        instance: String,
        #[command(flatten)]
        target: Target,
    },
}

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            let mut src = e.source();
            while let Some(s) = src {
                eprintln!("  caused by: {s}");
                src = s.source();
            }
            ExitCode::FAILURE
        }
    }
}

fn lookup<'c>(
    catalog: &'c Catalog,
    t: &Target,
) -> AnyResult<(&'c klutch_osb::Service, &'c klutch_osb::Plan)> {
    catalog.plan_by_name(&t.service, &t.plan).ok_or_else(|| {
        format!(
            "plan {:?} of service {:?} is not in the catalog",
            t.plan, t.service
        )
        .into()
    })
}

fn params(p: &Option<String>) -> AnyResult<Option<serde_json::Map<String, serde_json::Value>>> {
    p.as_deref()
        .map(|s| {
            serde_json::from_str(s)
                .map_err(|e| format!("--params must be a JSON object: {e}").into())
        })
        .transpose()
}

async fn wait(poller: &Poller, target: PollTarget, deadline: Deadline) -> AnyResult<PollOutcome> {
    eprintln!(
        "waiting for {:?} of {} ...",
        target.kind, target.instance_id
    );
    let r = poller.wait(&target, deadline, None).await?;
    eprintln!("{:?} after {} polls", r.outcome, r.polls);
    Ok(r.outcome)
}

async fn run(cli: Cli) -> AnyResult<()> {
    let version: ApiVersion = cli.api_version.parse()?;
    let mut b = Client::builder(&cli.url)
        .api_version(version)
        .timeout(Duration::from_secs(cli.timeout));
    if let Some(t) = &cli.token {
        b = b.bearer_auth(t);
    } else if let Some(u) = &cli.user {
        b = b.basic_auth(u, cli.password.clone().unwrap_or_default());
    }
    if let Some(ca) = &cli.ca_bundle {
        b = b.ca_bundle_pem(std::fs::read(ca)?);
    }
    let client = b.build()?;
    let poller = Poller::new(client.clone());
    let catalog = client.catalog().await?.outcome;
    match &cli.command {
        Command::Catalog => {
            for issue in catalog.validate() {
                eprintln!("catalog warning: {issue}");
            }
            for s in &catalog.services {
                println!("{} ({}) bindable={}", s.name, s.id, s.bindable);
                for p in &s.plans {
                    println!(
                        "  {} ({}) free={} bindable={} {}",
                        p.name,
                        p.id,
                        p.is_free(),
                        s.effective_bindable(p),
                        p.description
                    );
                }
            }
        }
        Command::Provision {
            instance,
            target,
            params: p,
            namespace,
            cluster,
            wait: secs,
        } => {
            let (svc, plan) = lookup(&catalog, target)?;
            let mut req = ProvisionRequest::new(&svc.id, &plan.id)
                .context(Context::kubernetes(namespace, cluster));
            req.parameters = params(p)?;
            req.maintenance_info = plan.maintenance_info.clone();
            let opts = CallOptions::new().asynchronous().catalog_entry(svc, plan);
            match client.provision(instance, &req, &opts).await?.outcome {
                ProvisionOutcome::Created { dashboard_url, .. } => {
                    println!("created; dashboard: {dashboard_url:?}")
                }
                ProvisionOutcome::AlreadyExists { dashboard_url, .. } => {
                    println!("already exists; dashboard: {dashboard_url:?}")
                }
                ProvisionOutcome::InProgress(op) => {
                    println!("provisioning started; dashboard: {:?}", op.dashboard_url);
                    let t = PollTarget::instance(
                        OperationKind::Provision,
                        instance,
                        &svc.id,
                        &plan.id,
                        op.operation,
                    );
                    let deadline = Deadline::from_now(
                        Some(Duration::from_secs(*secs)),
                        plan.max_polling_duration(),
                    );
                    match wait(&poller, t, deadline).await? {
                        PollOutcome::Succeeded { .. } => println!("provisioned"),
                        other => return Err(format!("provision did not succeed: {other:?}; consider deprovisioning (orphan mitigation)").into()),
                    }
                }
            }
        }
        Command::Bind {
            instance,
            binding,
            target,
            params: p,
        } => {
            let (svc, plan) = lookup(&catalog, target)?;
            let mut req = BindRequest::new(&svc.id, &plan.id);
            req.parameters = params(p)?;
            let opts = CallOptions::new().catalog_entry(svc, plan);
            let async_ok = version >= ApiVersion::V2_14;
            let opts = if async_ok { opts.asynchronous() } else { opts };
            let body = match client.bind(instance, binding, &req, &opts).await?.outcome {
                BindOutcome::Created(b) | BindOutcome::AlreadyExists(b) => b,
                BindOutcome::InProgress { operation } => {
                    let t = PollTarget::binding(
                        OperationKind::Bind,
                        instance,
                        binding,
                        &svc.id,
                        &plan.id,
                        operation,
                    );
                    let deadline = Deadline::from_now(None, plan.max_polling_duration());
                    if !wait(&poller, t, deadline).await?.is_success() {
                        return Err(
                            "bind did not succeed; consider unbinding (orphan mitigation)".into(),
                        );
                    }
                    client
                        .fetch_binding(
                            instance,
                            binding,
                            Some(&svc.id),
                            Some(&plan.id),
                            &CallOptions::new(),
                        )
                        .await?
                        .outcome
                }
            };
            // Printing credentials is what this command is for.
            let creds = body.credentials.map(|c| c.into_inner()).unwrap_or_default();
            println!("{}", serde_json::to_string_pretty(&creds)?);
        }
        Command::Unbind {
            instance,
            binding,
            target,
        } => {
            let (svc, plan) = lookup(&catalog, target)?;
            let opts = if version >= ApiVersion::V2_14 {
                CallOptions::new().asynchronous()
            } else {
                CallOptions::new()
            };
            match client
                .unbind(instance, binding, &svc.id, &plan.id, &opts)
                .await?
                .outcome
            {
                DeleteOutcome::Deleted => println!("unbound"),
                DeleteOutcome::Gone => println!("binding did not exist"),
                DeleteOutcome::InProgress { operation } => {
                    let t = PollTarget::binding(
                        OperationKind::Unbind,
                        instance,
                        binding,
                        &svc.id,
                        &plan.id,
                        operation,
                    );
                    let o = wait(
                        &poller,
                        t,
                        Deadline::from_now(None, plan.max_polling_duration()),
                    )
                    .await?;
                    println!(
                        "{}",
                        if o.is_success() {
                            "unbound"
                        } else {
                            "unbind failed"
                        }
                    );
                }
            }
        }
        Command::Deprovision { instance, target } => {
            let (svc, plan) = lookup(&catalog, target)?;
            match client
                .deprovision(
                    instance,
                    &svc.id,
                    &plan.id,
                    &CallOptions::new().asynchronous(),
                )
                .await?
                .outcome
            {
                DeleteOutcome::Deleted => println!("deprovisioned"),
                DeleteOutcome::Gone => println!("instance did not exist"),
                DeleteOutcome::InProgress { operation } => {
                    let t = PollTarget::instance(
                        OperationKind::Deprovision,
                        instance,
                        &svc.id,
                        &plan.id,
                        operation,
                    );
                    let o = wait(
                        &poller,
                        t,
                        Deadline::from_now(None, plan.max_polling_duration()),
                    )
                    .await?;
                    println!(
                        "{}",
                        if o.is_success() {
                            "deprovisioned"
                        } else {
                            "deprovision failed"
                        }
                    );
                }
            }
        }
    }
    Ok(())
}
