//! `kubectl bind`: bind an API from a Klutch control plane into this cluster.
//!
//! The bind protocol (provider document, browser callback, device login) is
//! `klutch_sdk::backend::client`; this crate is the command line around it: flags, prompts and
//! consent, tables, the konnector install, and undo on failure.
//!
//! The binary is a thin wrapper around [`run`], so tests and tools can drive the whole CLI
//! in-process: give it arguments and an [`Io`] (buffers instead of the terminal, a channel that
//! receives the login URL, a cancellation token instead of Ctrl-C) and get the exit code.
//!
//! ```no_run
//! # async fn demo() {
//! let (mut io, stdout, stderr) = kubectl_bind::Io::capture("");
//! let (tx, mut urls) = tokio::sync::mpsc::unbounded_channel();
//! io.login_urls = Some(tx);
//! let cli = tokio::spawn(kubectl_bind::run(
//!     ["kubectl-bind", "https://bind.example.com/export", "--accept-claims=all"],
//!     io,
//! ));
//! let login_url = urls.recv().await.unwrap(); // drive the browser step with an HTTP client
//! # let _ = login_url;
//! let code = cli.await.unwrap();
//! # let _ = (code, stdout, stderr);
//! # }
//! ```

pub mod apiservice;
pub mod bind;
pub mod cli;
pub mod consent;
pub mod error;
pub mod io;
pub mod konnector;
pub mod kubeconfig;
pub mod namespace;
pub mod secret;
pub mod table;
pub mod undo;

use std::ffi::OsString;

use clap::{CommandFactory as _, Parser as _};

pub use error::{Error, Result};
pub use io::{Io, SharedBuffer};

use crate::apiservice::{Remote, Settings};
use crate::cli::{ApiserviceArgs, Cli, Command, CommonFlags};
use crate::consent::AcceptClaims;
use crate::undo::Undo;

/// Runs `kubectl-bind` with `args` (the first is the program name) and returns the exit code.
pub async fn run<I, T>(args: I, mut io: Io) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            let text = if io.color {
                err.render().ansi().to_string()
            } else {
                err.render().to_string()
            };
            if err.use_stderr() {
                let _ = std::io::Write::write_all(&mut io.stderr, text.as_bytes());
                return 2;
            }
            let _ = io.out(text);
            return 0;
        }
    };
    match dispatch(cli, &mut io).await {
        Ok(()) => 0,
        Err(err) => {
            io.error(error::one_line(&err));
            err.exit_code()
        }
    }
}

fn settings(common: &CommonFlags) -> Result<Settings> {
    Ok(Settings {
        konnector: konnector::Flags {
            skip: common.skip_konnector,
            image: common.konnector_image.clone(),
            downgrade: common.downgrade_konnector,
            repository: common.konnector_repository.clone(),
        },
        accept_claims: common
            .accept_claims
            .as_deref()
            .map(AcceptClaims::parse)
            .transpose()?,
        timeout: common.timeout,
    })
}

fn http_client(common: &CommonFlags) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("kubectl-bind/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(std::time::Duration::from_secs(15))
        // A whole request (the backend may create a binding space during /bind).
        .timeout(std::time::Duration::from_secs(120));
    if let Some(path) = &common.provider_ca_file {
        let pem = std::fs::read(path).map_err(|source| Error::Io {
            op: format!("read --provider-ca-file {}", path.display()),
            source,
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            Error::Usage(format!(
                "--provider-ca-file {}: not PEM certificates ({e})",
                path.display()
            ))
        })?;
        builder = builder.tls_certs_merge(certs);
    }
    builder
        .build()
        .map_err(|e| Error::Usage(format!("build the HTTP client: {}", error::one_line(&e))))
}

async fn app_client(cli: &Cli) -> Result<kube::Client> {
    let config = kubeconfig::app_cluster(&cli.kube).await?;
    kube::Client::try_from(config).map_err(Error::kube("build the app cluster client"))
}

/// Runs `f` with an undo journal; rolls back on error (including Ctrl-C).
async fn with_undo<F>(io: &mut Io, client: &kube::Client, f: F) -> Result<()>
where
    F: AsyncFnOnce(&mut Io, &mut Undo) -> Result<()>,
{
    let mut undo = Undo::new(client.clone());
    let result = f(io, &mut undo).await;
    match result {
        Ok(()) => {
            undo.commit();
            Ok(())
        }
        Err(err) => {
            undo.rollback(io).await;
            Err(err)
        }
    }
}

async fn print_table(io: &mut Io, client: &kube::Client) -> Result<()> {
    let table = table::bindings(client).await?;
    io.out(table).map_err(|source| Error::Io {
        op: "print the bindings".into(),
        source,
    })
}

async fn dispatch(cli: Cli, io: &mut Io) -> Result<()> {
    match &cli.command {
        Some(Command::Completion { shell }) => {
            let mut command = Cli::command();
            clap_complete::generate(*shell, &mut command, "kubectl-bind", &mut io.stdout);
            Ok(())
        }
        Some(Command::Apiservice(args)) => apiservice_command(io, &cli, args).await,
        None => {
            let Some(url) = cli.url.clone() else {
                return Err(Error::Usage(
                    "pass the provider's export URL (kubectl bind https://…/export) or a subcommand; see kubectl bind --help".into(),
                ));
            };
            klutch_sdk::backend::client::provider::validate_url(&url)?;
            let options = bind::Options {
                url,
                open_browser: cli.bind.open_browser,
                device_resource: if cli.bind.non_interactive {
                    Some(cli.bind.resource.clone().ok_or_else(|| {
                        Error::Usage(
                            "--non-interactive needs --resource <plural>.<group>, the API to bind"
                                .into(),
                        )
                    })?)
                } else {
                    None
                },
                dry_run: cli
                    .common
                    .dry_run
                    .then(|| cli.common.output.unwrap_or_default()),
                settings: settings(&cli.common)?,
            };
            let http = http_client(&cli.common)?;
            let client = app_client(&cli).await?;
            with_undo(io, &client, async |io, undo| {
                bind::run(io, &http, &client, &options, undo).await
            })
            .await?;
            if options.dry_run.is_none() {
                print_table(io, &client).await?;
            }
            Ok(())
        }
    }
}

async fn read_manifest(io: &mut Io, args: &ApiserviceArgs) -> Result<String> {
    match (&args.url, &args.file) {
        (Some(url), _) => {
            let response = http_client(&args.common)?
                .get(url)
                .send()
                .await
                .map_err(|e| Error::ProviderUnreachable {
                    url: url.clone(),
                    reason: error::one_line(&e),
                })?;
            if !response.status().is_success() {
                return Err(Error::Manifest(format!(
                    "GET {url}: HTTP {}",
                    response.status().as_u16()
                )));
            }
            response.text().await.map_err(|e| Error::ProviderUnreachable {
                url: url.clone(),
                reason: error::one_line(&e),
            })
        }
        (None, Some(file)) if file == "-" => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut io.stdin, &mut text).map_err(|source| {
                Error::Io {
                    op: "read the manifest from standard input".into(),
                    source,
                }
            })?;
            Ok(text)
        }
        (None, Some(file)) => std::fs::read_to_string(file).map_err(|source| Error::Io {
            op: format!("read {file}"),
            source,
        }),
        (None, None) => Err(Error::Usage(
            "pass the APIServiceExportRequest as a URL or with -f FILE (or -f - for standard input)".into(),
        )),
    }
}

async fn apiservice_command(io: &mut Io, cli: &Cli, args: &ApiserviceArgs) -> Result<()> {
    let settings = settings(&args.common)?;
    let text = read_manifest(io, args).await?;
    let request = apiservice::parse_manifest(&text)?;
    if args.common.dry_run {
        let rendered = match args.common.output.unwrap_or_default() {
            cli::OutputFormat::Yaml => format!(
                "---\n{}",
                serde_saphyr::to_string(&request)
                    .map_err(|e| Error::Manifest(format!("render the request: {e}")))?
            ),
            cli::OutputFormat::Json => {
                format!(
                    "{}\n",
                    serde_json::to_string_pretty(&request).expect("serialises")
                )
            }
        };
        return io.out(rendered).map_err(|source| Error::Io {
            op: "print the request".into(),
            source,
        });
    }
    let client = app_client(cli).await?;
    let remote = match (
        &args.remote_kubeconfig,
        &args.remote_kubeconfig_namespace,
        &args.remote_kubeconfig_name,
    ) {
        (Some(path), _, _) => Remote {
            kubeconfig: std::fs::read(path).map_err(|source| Error::Io {
                op: format!("read --remote-kubeconfig {}", path.display()),
                source,
            })?,
            secret: None,
            namespace: args.remote_namespace.clone(),
        },
        (None, Some(namespace), Some(name)) => Remote {
            kubeconfig: secret::read(&client, namespace, name).await?,
            secret: (namespace == klutch_sdk::api::wellknown::CONSUMER_NAMESPACE)
                .then(|| name.clone()),
            namespace: args.remote_namespace.clone(),
        },
        _ => {
            return Err(Error::Usage(
                "pass the provider kubeconfig with --remote-kubeconfig FILE or --remote-kubeconfig-namespace and --remote-kubeconfig-name".into(),
            ));
        }
    };
    with_undo(io, &client, async |io, undo| {
        apiservice::run(io, &client, &request, &remote, &settings, undo)
            .await
            .map(|_| ())
    })
    .await?;
    print_table(io, &client).await
}

/// Parses without running (for tests of the command line).
pub fn parse<I, T>(args: I) -> std::result::Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    Cli::try_parse_from(args)
}
