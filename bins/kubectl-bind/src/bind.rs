//! `kubectl bind <url>` (spec §6.2): provider document, namespace `klutch-bind`, login (browser
//! or device code), the provider kubeconfig Secret, then the `apiservice` step per request.

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use klutch_sdk::api::APIServiceExportRequest;
use klutch_sdk::api::ids::cluster_id;
use klutch_sdk::api::wellknown::CONSUMER_NAMESPACE;
use klutch_sdk::api::wire::{APIServiceExportRequestResponse, BindingResponse};
use kube::api::{Api, PostParams};
use rand::Rng as _;

use crate::apiservice::{self, Remote, Settings};
use crate::callback::Listener;
use crate::cli::OutputFormat;
use crate::error::{Error, Result};
use crate::io::Io;
use crate::provider::{self, Provider};
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

/// A new session id: 32 characters from a CSPRNG, `[A-Za-z0-9]` (spec §3.9).
pub fn new_session_id() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// `<authenticatedURL>?p=<port>&s=<sid>&c=<cid>`, keeping any query the URL already has.
pub fn login_url(authenticated_url: &str, port: u16, sid: &str, cid: &str) -> Result<String> {
    let mut url = url::Url::parse(authenticated_url).map_err(|e| Error::NoLoginMethod {
        url: authenticated_url.into(),
        reason: format!("authenticatedURL is not a URL: {e}"),
    })?;
    url.query_pairs_mut()
        .append_pair("p", &port.to_string())
        .append_pair("s", sid)
        .append_pair("c", cid);
    Ok(url.into())
}

/// Creates `klutch-bind` if missing; returns its UID.
pub async fn ensure_namespace(
    io: &mut Io,
    client: &kube::Client,
    undo: &mut Undo,
) -> Result<String> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let mut existing = namespaces
        .get_opt(CONSUMER_NAMESPACE)
        .await
        .map_err(Error::kube("read namespace klutch-bind"))?;
    if existing
        .as_ref()
        .is_some_and(|ns| ns.metadata.deletion_timestamp.is_some())
    {
        // A namespace being deleted (e.g. by an earlier, rolled-back run) cannot take new
        // objects: wait until it is gone, then create it again.
        io.progress_part("⏳ Waiting for namespace klutch-bind to finish terminating");
        let started = tokio::time::Instant::now();
        while existing.is_some() {
            if started.elapsed() > Duration::from_secs(120) {
                io.progress("");
                return Err(Error::Usage(
                    "namespace klutch-bind is still terminating after 2 minutes; check what blocks its deletion (kubectl get ns klutch-bind -o yaml)".into(),
                ));
            }
            tokio::select! {
                () = io.cancel.cancelled() => return Err(Error::Interrupted),
                () = tokio::time::sleep(Duration::from_secs(1)) => io.progress_part("."),
            }
            existing = namespaces
                .get_opt(CONSUMER_NAMESPACE)
                .await
                .map_err(Error::kube("read namespace klutch-bind"))?;
        }
        io.progress("");
    }
    let namespace = match existing {
        Some(ns) => ns,
        None => {
            let ns = Namespace {
                metadata: ObjectMeta {
                    name: Some(CONSUMER_NAMESPACE.into()),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            };
            let created = namespaces
                .create(&PostParams::default(), &ns)
                .await
                .map_err(Error::kube("create namespace klutch-bind"))?;
            undo.created(
                kube::api::ApiResource::erase::<Namespace>(&()),
                None,
                CONSUMER_NAMESPACE,
            );
            io.progress(format!("📦 Created {CONSUMER_NAMESPACE} namespace."));
            created
        }
    };
    namespace.metadata.uid.ok_or_else(|| Error::Kubeconfig {
        what: "namespace klutch-bind".into(),
        reason: "has no UID".into(),
    })
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
            outcome = listener.next() => break outcome,
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

fn to_request(response: &APIServiceExportRequestResponse) -> APIServiceExportRequest {
    let mut request = APIServiceExportRequest::new("", response.spec.clone());
    request.metadata.name = response.metadata.name.clone();
    request
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
    if let Some(warning) = &provider.version_warning {
        io.warn(warning);
    }
    if options.device_resource.is_some() && provider.device_grant.is_none() {
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
    let response = match (&options.device_resource, &provider.device_grant) {
        (Some(resource), Some(grant)) => {
            crate::device::login(io, http, grant, &sid, &cid, resource, timeout).await?
        }
        _ => browser_login(io, &provider, &sid, &cid, options.open_browser, timeout).await?,
    };
    io.progress(format!("🔑 Successfully authenticated to {}", options.url));
    let got = response
        .authentication
        .oauth2_code_grant
        .as_ref()
        .map(|g| g.sid.clone())
        .unwrap_or_default();
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
            &to_request(request),
            &remote,
            &options.settings,
            undo,
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_long_and_alphanumeric() {
        let a = new_session_id();
        let b = new_session_id();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn the_login_url_carries_port_session_and_cluster() {
        assert_eq!(
            login_url("https://bind.example.com/authorize", 53121, "aB3", "Qw7Lm2").unwrap(),
            "https://bind.example.com/authorize?p=53121&s=aB3&c=Qw7Lm2"
        );
        assert_eq!(
            login_url("https://b/authorize?x=1", 1, "s", "c").unwrap(),
            "https://b/authorize?x=1&p=1&s=s&c=c"
        );
        assert!(login_url("not a url", 1, "s", "c").is_err());
    }
}
