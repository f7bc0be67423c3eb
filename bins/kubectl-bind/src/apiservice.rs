//! The `apiservice` step (spec §6.3): create the export request on the provider, wait for it,
//! install the konnector, and create the APIServiceBindings with the user's consent.
//!
//! Ours checks conflicts and asks for consent *before* it writes anything, and undoes what it
//! created when a later step fails or is interrupted.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use klutch_sdk::api::claims::SecretKey;
use klutch_sdk::api::conditions::{Condition, READY, Severity};
use klutch_sdk::api::export_request::ExportRequestPhase;
use klutch_sdk::api::naming::binding_name;
use klutch_sdk::api::wellknown::{API_VERSION, CONSUMER_NAMESPACE, EXPORT_REQUEST_GENERATE_NAME};
use klutch_sdk::api::{
    APIServiceBinding, APIServiceBindingSpec, APIServiceExportRequest, AcceptablePermissionClaim,
    ClusterSecretKeyRef, GroupResource,
};
use klutch_sdk::deploy::konnector::binding_rbac;
use kube::api::{Api, Patch, PatchParams, PostParams};

use crate::consent::{self, AcceptClaims};
use crate::error::{Error, Result};
use crate::io::Io;
use crate::konnector;
use crate::kubeconfig::{provider_client, server_and_namespace};
use crate::secret;
use crate::undo::Undo;

/// Where the provider kubeconfig comes from.
#[derive(Clone, Debug)]
pub struct Remote {
    /// The kubeconfig bytes.
    pub kubeconfig: Vec<u8>,
    /// The Secret in `klutch-bind` that already stores it (the `bind` flow), if any.
    pub secret: Option<String>,
    /// `--remote-namespace`.
    pub namespace: Option<String>,
}

/// Settings of the step.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Konnector flags.
    pub konnector: konnector::Flags,
    /// `--accept-claims`.
    pub accept_claims: Option<AcceptClaims>,
    /// How long to wait for the request and the konnector.
    pub timeout: Duration,
}

/// Parses and checks an APIServiceExportRequest manifest (YAML or JSON).
pub fn parse_manifest(text: &str) -> Result<APIServiceExportRequest> {
    let value: serde_json::Value = serde_saphyr::from_str(text)
        .map_err(|e| Error::Manifest(format!("the manifest is not YAML or JSON: {e}")))?;
    let api_version = value["apiVersion"].as_str().unwrap_or_default();
    if api_version != API_VERSION {
        return Err(Error::Manifest(format!(
            "invalid apiVersion {api_version:?}: expected {API_VERSION}"
        )));
    }
    let kind = value["kind"].as_str().unwrap_or_default();
    if kind != "APIServiceExportRequest" {
        return Err(Error::Manifest(format!(
            "invalid kind {kind:?}: expected APIServiceExportRequest"
        )));
    }
    let request: APIServiceExportRequest = serde_json::from_value(value)
        .map_err(|e| Error::Manifest(format!("invalid APIServiceExportRequest: {e}")))?;
    if request.spec.resources.is_empty() {
        return Err(Error::Manifest(
            "invalid APIServiceExportRequest: spec.resources is empty".into(),
        ));
    }
    Ok(request)
}

/// One binding to create or update.
struct Planned {
    name: String,
    bound: GroupResource,
    existing: Option<APIServiceBinding>,
    claims: Vec<AcceptablePermissionClaim>,
}

/// Whether an existing binding comes from the same provider binding space: it points to the
/// Secret we use, or to a Secret whose kubeconfig has the same server and namespace.
async fn same_provider(
    client: &kube::Client,
    binding: &APIServiceBinding,
    our_secret: Option<&str>,
    our_identity: &(String, Option<String>),
) -> Result<bool> {
    let reference = &binding.spec.kubeconfig_secret_ref;
    if reference.namespace == CONSUMER_NAMESPACE && Some(reference.name.as_str()) == our_secret {
        return Ok(true);
    }
    let Ok(bytes) = secret::read(client, &reference.namespace, &reference.name).await else {
        return Ok(false);
    };
    Ok(server_and_namespace(&bytes).is_ok_and(|identity| &identity == our_identity))
}

fn owned_by(
    crd: &CustomResourceDefinition,
    binding: Option<&APIServiceBinding>,
    name: &str,
) -> bool {
    crd.metadata.owner_references.iter().flatten().any(|o| {
        o.api_version.starts_with("klutch.anynines.com/")
            && o.kind == "APIServiceBinding"
            && o.name == name
            && binding.is_none_or(|b| b.metadata.uid.as_deref() == Some(o.uid.as_str()))
    })
}

/// Checks conflicts and decides consent for every resource of the request; writes nothing.
async fn plan(
    io: &mut Io,
    client: &kube::Client,
    request: &APIServiceExportRequest,
    remote: &Remote,
    settings: &Settings,
) -> Result<Vec<Planned>> {
    let identity = server_and_namespace(&remote.kubeconfig)?;
    let bindings: Api<APIServiceBinding> = Api::namespaced(client.clone(), CONSUMER_NAMESPACE);
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut planned = Vec::new();
    for resource in &request.spec.resources {
        let name = binding_name(&resource.group, &resource.resource);
        // Before the konnector installed the APIServiceBinding CRD, the resource type itself
        // is missing (a plain 404): no binding then.
        let existing = match bindings.get_opt(&name).await {
            Ok(found) => found,
            Err(kube::Error::Api(status)) if status.code == 404 => None,
            Err(source) => {
                return Err(Error::Kube {
                    op: format!("read APIServiceBinding {name}"),
                    source,
                });
            }
        };
        if let Some(binding) = &existing
            && !same_provider(client, binding, remote.secret.as_deref(), &identity).await?
        {
            return Err(Error::ForeignBinding(name));
        }
        if let Some(crd) = crds
            .get_opt(&name)
            .await
            .map_err(Error::kube(format!("read CustomResourceDefinition {name}")))?
            && !owned_by(&crd, existing.as_ref(), &name)
        {
            return Err(Error::ForeignCrd(name));
        }
        // Claims decided before (existing binding) keep their state; new ones are asked.
        let previous: Vec<AcceptablePermissionClaim> = existing
            .as_ref()
            .map(|b| b.spec.permission_claims.clone())
            .unwrap_or_default();
        let undecided: Vec<_> = resource
            .permission_claims
            .iter()
            .filter(|c| {
                !previous
                    .iter()
                    .any(|p| p.claim.group_resource == c.group_resource)
            })
            .cloned()
            .collect();
        let mut claims = consent::decide(io, &undecided, settings.accept_claims.as_ref()).await?;
        for claim in &resource.permission_claims {
            if let Some(p) = previous
                .iter()
                .find(|p| p.claim.group_resource == claim.group_resource)
            {
                claims.push(AcceptablePermissionClaim {
                    claim: claim.clone(),
                    state: p.state,
                });
            }
        }
        planned.push(Planned {
            name,
            bound: GroupResource {
                group: resource.group.clone(),
                resource: resource.resource.clone(),
            },
            existing,
            claims,
        });
    }
    Ok(planned)
}

/// Creates the request on the provider (naming of spec §2.10) and returns its name.
async fn create_request(
    requests: &Api<APIServiceExportRequest>,
    request: &APIServiceExportRequest,
) -> Result<String> {
    let mut object = APIServiceExportRequest::new("", request.spec.clone());
    object.metadata = ObjectMeta {
        name: request.metadata.name.clone(),
        generate_name: match &request.metadata.name {
            Some(_) => None,
            None => Some(EXPORT_REQUEST_GENERATE_NAME.into()),
        },
        ..ObjectMeta::default()
    };
    match requests.create(&PostParams::default(), &object).await {
        Ok(created) => Ok(created.metadata.name.unwrap_or_default()),
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let name = object.metadata.name.take().unwrap_or_default();
            object.metadata.generate_name = Some(format!("{name}-"));
            let created = requests
                .create(&PostParams::default(), &object)
                .await
                .map_err(Error::kube(
                    "create the APIServiceExportRequest on the provider",
                ))?;
            Ok(created.metadata.name.unwrap_or_default())
        }
        Err(source) => Err(Error::Kube {
            op: "create the APIServiceExportRequest on the provider".into(),
            source,
        }),
    }
}

/// Polls the request every second until Succeeded (Ok), Failed, deleted, timeout or Ctrl-C.
async fn wait_for_request(
    io: &mut Io,
    requests: &Api<APIServiceExportRequest>,
    name: &str,
    timeout: Duration,
) -> Result<()> {
    io.progress_part(&format!(
        "⏳ Waiting for the provider to accept APIServiceExportRequest {name}"
    ));
    let started = tokio::time::Instant::now();
    let result = loop {
        match requests.get_opt(name).await {
            Ok(None) => break Err(Error::ExportRequestDeleted(name.into())),
            Ok(Some(request)) => {
                let status = request.status.unwrap_or_default();
                match status.phase {
                    ExportRequestPhase::Succeeded => break Ok(()),
                    ExportRequestPhase::Failed => {
                        break Err(Error::ExportRequestFailed {
                            name: name.into(),
                            message: status
                                .terminal_message
                                .unwrap_or_else(|| "no message".into()),
                        });
                    }
                    ExportRequestPhase::Pending => {}
                }
            }
            // The provider may be restarting: keep polling until the timeout.
            Err(e) if konnector::is_transient(&e) => {}
            Err(source) => {
                break Err(Error::Kube {
                    op: format!("read APIServiceExportRequest {name}"),
                    source,
                });
            }
        }
        if started.elapsed() >= timeout {
            break Err(Error::ExportRequestTimeout {
                name: name.into(),
                timeout,
            });
        }
        tokio::select! {
            () = io.cancel.cancelled() => break Err(Error::Interrupted),
            () = tokio::time::sleep(Duration::from_secs(1)) => io.progress_part("."),
        }
    };
    io.progress("");
    result
}

fn pending_condition() -> Condition {
    Condition::false_(
        READY,
        Severity::Info,
        "Pending",
        "Pending",
        Time(k8s_openapi::jiff::Timestamp::now()),
    )
}

/// Creates or updates one binding and its konnector RBAC.
async fn write_binding(
    io: &mut Io,
    client: &kube::Client,
    planned: &Planned,
    secret_name: &str,
    undo: &mut Undo,
) -> Result<()> {
    let accepted: Vec<GroupResource> = planned
        .claims
        .iter()
        .filter(|c| c.state == klutch_sdk::api::ClaimState::Accepted)
        .map(|c| c.claim.group_resource.clone())
        .collect();
    konnector::apply(
        client,
        &binding_rbac(&planned.name, &planned.bound, &accepted, CONSUMER_NAMESPACE),
        undo,
    )
    .await?;
    let bindings: Api<APIServiceBinding> = Api::namespaced(client.clone(), CONSUMER_NAMESPACE);
    if let Some(existing) = &planned.existing {
        let mut updated = existing.clone();
        updated.spec.permission_claims = planned.claims.clone();
        bindings
            .replace(&planned.name, &PostParams::default(), &updated)
            .await
            .map_err(Error::kube(format!(
                "update APIServiceBinding {}",
                planned.name
            )))?;
        io.progress(format!(
            "✅ Updating existing APIServiceBinding {}.",
            planned.name
        ));
        return Ok(());
    }
    let binding = APIServiceBinding::new(
        &planned.name,
        APIServiceBindingSpec {
            kubeconfig_secret_ref: ClusterSecretKeyRef {
                name: secret_name.into(),
                namespace: CONSUMER_NAMESPACE.into(),
                key: SecretKey::Kubeconfig,
            },
            permission_claims: planned.claims.clone(),
        },
    );
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .map_err(Error::kube(format!(
            "create APIServiceBinding {}",
            planned.name
        )))?;
    undo.created(
        kube::api::ApiResource::erase::<APIServiceBinding>(&()),
        Some(CONSUMER_NAMESPACE),
        &planned.name,
    );
    // Best effort, as upstream: the konnector owns the status from here on.
    let status = serde_json::json!({"status": {"conditions": [pending_condition()]}});
    let _ = bindings
        .patch_status(
            &planned.name,
            &PatchParams::default(),
            &Patch::Merge(&status),
        )
        .await;
    io.progress(format!("✅ Created APIServiceBinding {}", planned.name));
    Ok(())
}

/// Runs the step for one request; returns the names of the bindings it wrote.
pub async fn run(
    io: &mut Io,
    client: &kube::Client,
    request: &APIServiceExportRequest,
    remote: &Remote,
    settings: &Settings,
    undo: &mut Undo,
) -> Result<Vec<String>> {
    let namespace = match &remote.namespace {
        Some(ns) => ns.clone(),
        None => server_and_namespace(&remote.kubeconfig)?.1.ok_or_else(|| {
            Error::Usage(
                "remote namespace is required, either as flag or in the passed remote kubeconfig"
                    .into(),
            )
        })?,
    };
    let planned = plan(io, client, request, remote, settings).await?;
    crate::namespace::ensure_namespace(io, client, undo).await?;

    let provider = provider_client(&remote.kubeconfig).await?;
    let requests: Api<APIServiceExportRequest> = Api::namespaced(provider.clone(), &namespace);
    let name = create_request(&requests, request).await?;
    undo.created_in(
        provider,
        kube::api::ApiResource::erase::<APIServiceExportRequest>(&()),
        Some(&namespace),
        &name,
    );
    wait_for_request(io, &requests, &name, settings.timeout).await?;

    konnector::ensure(io, client, &settings.konnector, undo).await?;
    konnector::wait_until_bindings_listable(io, client, settings.timeout).await?;

    let secret_name = match &remote.secret {
        Some(name) => name.clone(),
        None => {
            secret::ensure(io, client, &remote.kubeconfig, undo)
                .await?
                .name
        }
    };
    let mut names = Vec::new();
    for planned in &planned {
        write_binding(io, client, planned, &secret_name, undo).await?;
        names.push(planned.name.clone());
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_must_be_export_requests() {
        let good = "apiVersion: klutch.anynines.com/v1alpha1\nkind: APIServiceExportRequest\nmetadata: {name: mangodbs.mangodb.com}\nspec:\n  resources:\n  - {group: mangodb.com, resource: mangodbs}\n";
        let request = parse_manifest(good).unwrap();
        assert_eq!(request.spec.resources[0].resource, "mangodbs");
        let json = r#"{"apiVersion":"klutch.anynines.com/v1alpha1","kind":"APIServiceExportRequest","metadata":{},"spec":{"resources":[{"resource":"foos"}]}}"#;
        assert!(parse_manifest(json).unwrap().metadata.name.is_none());
        let err = parse_manifest(&good.replace("klutch.anynines.com/v1alpha1", "v1")).unwrap_err();
        assert!(err.to_string().starts_with("invalid apiVersion"), "{err}");
        let err = parse_manifest(&good.replace("APIServiceExportRequest", "APIServiceExport"))
            .unwrap_err();
        assert!(err.to_string().starts_with("invalid kind"), "{err}");
        assert!(parse_manifest("[").is_err());
        assert!(
            parse_manifest(
                &good
                    .replace("  - {group: mangodb.com, resource: mangodbs}\n", "  []\n")
                    .replace("resources:\n", "resources:")
            )
            .is_err()
        );
        assert_eq!(binding_name("", "secrets"), "secrets");
        assert_eq!(
            binding_name("mangodb.com", "mangodbs"),
            "mangodbs.mangodb.com"
        );
    }
}
