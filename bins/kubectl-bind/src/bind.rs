//! `kubectl bind <url>` (spec §6.2): provider document, namespace `klutch-bind`, login (browser
//! or device code), the provider kubeconfig Secret, then the `apiservice` step per request.
//!
//! The protocol itself is `klutch_sdk::backend::client`; this module is the terminal around it
//! (progress, the browser, Ctrl-C, the timeout).

use std::time::Duration;

use klutch_sdk::api::ids::cluster_id;
use klutch_sdk::api::wire::{APIServiceExportRequestResponse, BindingResponse, OAuth2DeviceGrant};
use klutch_sdk::backend::client::callback::Listener;
use klutch_sdk::backend::client::provider::{self, Provider};
use klutch_sdk::backend::client::{device, login_url, new_session_id};

use crate::apiservice::{self, Remote, Settings};
use crate::cli::OutputFormat;
use crate::error::{Error, Result};
use crate::io::Io;
use crate::namespace::ensure_namespace;
use crate::secret;
use crate::undo::Undo;

/// Everything `kubectl bind <url>` needs besides the clients.
#[derive(Clone, Debug)]
pub struct Options {
    /// The provider's export URL.
    pub url: String,
    /// `--open-browser` (None: when a display is available).
    pub open_browser: Option<bool>,
    /// `--non-interactive --resource <r>`.
    pub device_resource: Option<String>,
    /// `--dry-run` with its format.
    pub dry_run: Option<OutputFormat>,
    /// The apiservice settings (timeout, konnector, consent).
    pub settings: Settings,
}

async fn browser_login(
    io: &mut Io,
    provider: &Provider,
    sid: &str,
    cid: &str,
    open_browser: Option<bool>,
    timeout: Duration,
) -> Result<BindingResponse> {
    let grant = provider
        .document
        .oauth2_code_grant()
        .ok_or_else(|| Error::NoLoginMethod {
            url: provider.url.clone(),
            reason: "server does not support OAuth2 code grant flow".into(),
        })?;
    let mut listener = Listener::start(sid).await?;
    let url = login_url(&grant.authenticated_url, listener.port, sid, cid)?;
    io.progress(format!(
        "\nTo authenticate, visit in your browser:\n\n\t{url}\n"
    ));
    if let Some(tx) = &io.login_urls {
        let _ = tx.send(url.clone());
    }
    if open_browser.unwrap_or(io.display) && !(io.browser)(&url) {
        io.warn("could not open a browser; open the URL above yourself");
    }
    let started = tokio::time::Instant::now();
    let deadline = started + timeout;
    let result = loop {
        tokio::select! {
            outcome = listener.next() => break outcome.map_err(Error::from),
            () = io.cancel.cancelled() => break Err(Error::Interrupted),
            () = tokio::time::sleep_until(deadline) => break Err(Error::LoginTimeout(timeout)),
            () = tokio::time::sleep(Duration::from_secs(1)) => {
                io.spin("Waiting for the login in the browser", started.elapsed().as_secs());
            }
        }
    };
    io.end_spin();
    result
}

/// The requests as they would be created, for `--dry-run`.
pub fn render_requests(
    requests: &[APIServiceExportRequestResponse],
    format: OutputFormat,
) -> Result<String> {
    let mut out = String::new();
    for request in requests {
        match format {
            OutputFormat::Yaml => {
                out.push_str("---\n");
                out.push_str(
                    &serde_saphyr::to_string(request)
                        .map_err(|e| Error::Manifest(format!("render the request as YAML: {e}")))?,
                );
            }
            OutputFormat::Json => {
                out.push_str(&serde_json::to_string_pretty(request).expect("requests serialise"));
                out.push('\n');
            }
        }
    }
    Ok(out)
}

/// The device login (`--non-interactive`): the code for the user on stderr, then polling until
/// the login, and the bind of `resource`.
async fn device_login(
    io: &mut Io,
    http: &reqwest::Client,
    grant: &OAuth2DeviceGrant,
    sid: &str,
    cid: &str,
    resource: &str,
    timeout: Duration,
) -> Result<BindingResponse> {
    // The consent page shows the cluster id and the API; the device session binds only these.
    let authorization = device::start(http, grant, sid, cid, resource, None).await?;
    io.progress(format!(
        "\nTo authenticate, visit {} and check that it shows the code\n\n\t{}\n\nand cluster id {cid} for {resource}\n",
        authorization.verification_uri, authorization.user_code
    ));
    let complete = authorization
        .verification_uri_complete
        .clone()
        .unwrap_or_else(|| authorization.verification_uri.clone());
    if complete != authorization.verification_uri {
        io.progress(format!("or open\n\n\t{complete}\n"));
    }
    if let Some(tx) = &io.login_urls {
        let _ = tx.send(complete);
    }
    let session = tokio::select! {
        () = io.cancel.cancelled() => return Err(Error::Interrupted),
        session = device::wait_for_session(http, grant, &authorization, sid, timeout) => session?,
    };
    Ok(device::bind(http, grant, &session, resource).await?)
}

/// Runs the whole flow. The caller rolls `undo` back on error.
pub async fn run(
    io: &mut Io,
    http: &reqwest::Client,
    client: &kube::Client,
    options: &Options,
    undo: &mut Undo,
) -> Result<()> {
    let provider = provider::fetch(http, &options.url).await?;
    if let Some(reason) = &provider.version_warning {
        // Go CLIs refuse such providers; ours warns, because the protocol itself is checked by
        // `apiVersion` and klutch's own components may carry low version numbers.
        io.warn(format!(
            "⚠️ {reason}; Klutch's own kubectl-bind would refuse it, continuing"
        ));
    }
    let device_grant = provider.document.device_grant();
    if options.device_resource.is_some() && device_grant.is_none() {
        return Err(Error::NoLoginMethod {
            url: options.url.clone(),
            reason: "the provider offers no device login (OAuth2DeviceGrant) for --non-interactive"
                .into(),
        });
    }
    let uid = ensure_namespace(io, client, undo).await?;
    let cid = cluster_id(&uid);
    let sid = new_session_id();
    let timeout = options.settings.timeout;
    let response = match (&options.device_resource, device_grant) {
        (Some(resource), Some(grant)) => {
            device_login(io, http, grant, &sid, &cid, resource, timeout).await?
        }
        _ => browser_login(io, &provider, &sid, &cid, options.open_browser, timeout).await?,
    };
    io.progress(format!("🔑 Successfully authenticated to {}", options.url));
    let got = response.session_id().to_owned();
    if got != sid {
        return Err(Error::WrongSession { expected: sid, got });
    }
    if let Some(format) = options.dry_run {
        let text = render_requests(&response.requests, format)?;
        io.out(text).map_err(|source| Error::Io {
            op: "print the requests".into(),
            source,
        })?;
        return Ok(());
    }
    let stored = secret::ensure(io, client, &response.kubeconfig, undo).await?;
    io.progress(
        "✨ Use \"-o yaml\" and \"--dry-run\" to get the APIServiceExportRequest.\n   and pass it to \"kubectl bind apiservice\" directly. Great for automation.",
    );
    let remote = Remote {
        kubeconfig: response.kubeconfig.clone(),
        secret: Some(stored.name),
        namespace: None,
    };
    for request in &response.requests {
        apiservice::run(
            io,
            client,
            &request.to_export_request(),
            &remote,
            &options.settings,
            undo,
        )
        .await?;
    }
    Ok(())
}
