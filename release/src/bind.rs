//! The bind side of a control plane: klutch's CRDs, the example-backend and the export
//! templates that make the a9s claims bindable.

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use klutch_sdk::api::template::APIServiceSelector;
use klutch_sdk::api::{APIServiceExportTemplate, APIServiceExportTemplateSpec, PermissionClaim};
use klutch_sdk::deploy::backend;
use serde_json::{Value, json};

use crate::crossplane::CROSSPLANE_NAMESPACE;
use crate::dataservices::{DATA_SERVICES, OTHER_CLAIMS};
use crate::{Options, Result, to_value};

/// The namespace the backend runs in (as in Klutch).
pub const BACKEND_NAMESPACE: &str = "bind";
/// The namespace the export templates live in (as in Klutch).
pub const TEMPLATE_NAMESPACE: &str = CROSSPLANE_NAMESPACE;
/// The API group of the a9s claims.
pub const CLAIM_GROUP: &str = "anynines.com";

/// The bind part of `install`: namespace, CRDs, backend.
pub fn install(opts: &Options) -> Result<Vec<Value>> {
    let mut out = vec![to_value(
        "the backend namespace",
        &Namespace {
            metadata: ObjectMeta {
                name: Some(BACKEND_NAMESPACE.into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        },
    )?];
    for crd in klutch_sdk::api::crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        out.push(to_value(&format!("CRD {name}"), &crd)?);
    }
    out.extend(backend_install(opts)?);
    Ok(out)
}

/// The bind part of `update`: the backend's Deployment.
pub fn update(opts: &Options) -> Result<Vec<Value>> {
    backend_update(opts)
}

/// The bind part of `configure`: the backend's configuration and the export templates.
pub fn configure(opts: &Options) -> Result<Vec<Value>> {
    let mut out = backend_configure(opts)?;
    for template in export_templates() {
        let name = template.metadata.name.clone().unwrap_or_default();
        out.push(to_value(&format!("template {name}"), &template)?);
    }
    Ok(out)
}

/// One export template per a9s claim. Service bindings claim the Secrets and ConfigMaps the
/// provider writes (their credentials), owned by the provider.
///
/// ```
/// let templates = klutch_release::bind::export_templates();
/// assert_eq!(templates.len(), 11);
/// ```
pub fn export_templates() -> Vec<APIServiceExportTemplate> {
    let plurals = DATA_SERVICES
        .iter()
        .map(|s| s.claim_plural)
        .chain(OTHER_CLAIMS);
    plurals
        .map(|plural| {
            let claims = if plural == "servicebindings" {
                ["secrets", "configmaps"]
                    .into_iter()
                    .map(provider_owned_claim)
                    .collect()
            } else {
                Vec::new()
            };
            let mut template = APIServiceExportTemplate::new(
                plural,
                APIServiceExportTemplateSpec {
                    api_service_selector: APIServiceSelector {
                        group: CLAIM_GROUP.into(),
                        resource: plural.into(),
                        version: None,
                    },
                    permission_claims: claims,
                },
            );
            template.metadata.namespace = Some(TEMPLATE_NAMESPACE.into());
            template
        })
        .collect()
}

fn provider_owned_claim(resource: &str) -> PermissionClaim {
    serde_json::from_value(json!({
        "group": "",
        "resource": resource,
        "version": "v1",
        "selector": { "owner": "Provider" },
    }))
    .expect("a fixed claim is valid")
}

/// Name of the ConfigMap the backend reads its non-secret settings from (filled by `configure`).
pub const BACKEND_CONFIG: &str = "example-backend-config";

/// The backend's settings that `configure` fills from `${VARS}`: (environment variable the
/// backend reads, placeholder). Secrets go into the Secret `example-backend`, the rest into
/// [`BACKEND_CONFIG`].
pub const BACKEND_SETTINGS: [(&str, &str); 7] = [
    ("OIDC_ISSUER_URL", "BACKEND_OIDC_ISSUER_URL"),
    ("OIDC_CLIENT_ID", "BACKEND_OIDC_CLIENT_ID"),
    // The public client for `kubectl bind`'s device flow; empty: no device flow is offered.
    ("OIDC_DEVICE_CLIENT_ID", "BACKEND_OIDC_DEVICE_CLIENT_ID"),
    ("OIDC_CALLBACK_URL", "BACKEND_OIDC_CALLBACK_URL"),
    ("EXTERNAL_ADDRESS", "BACKEND_EXTERNAL_ADDRESS"),
    ("PRETTY_NAME", "BACKEND_PRETTY_NAME"),
    ("CONSUMER_SCOPE", "BACKEND_CONSUMER_SCOPE"),
];

/// The backend's manifests as [`backend::manifests`] renders them for this release, with
/// every setting read from the environment (`$(VAR)` is expanded by the kubelet from the
/// container's environment, which the ConfigMap and Secret of `configure` provide).
fn backend_manifests(opts: &Options) -> Vec<Value> {
    let from_env = |var: &str| format!("$({var})");
    let mut objects = backend::manifests(&backend::ManifestOptions {
        namespace: BACKEND_NAMESPACE.into(),
        image: opts.image("example-backend"),
        replicas: 2,
        oidc_issuer_url: from_env("OIDC_ISSUER_URL"),
        oidc_client_id: from_env("OIDC_CLIENT_ID"),
        backend_url: from_env("BACKEND_URL"),
        external_address: from_env("EXTERNAL_ADDRESS"),
        pretty_name: from_env("PRETTY_NAME"),
    });
    for object in &mut objects {
        if object["kind"] != "Deployment" {
            continue;
        }
        let Some(containers) = object["spec"]["template"]["spec"]["containers"].as_array_mut()
        else {
            continue;
        };
        for container in containers {
            // The settings come from the environment only: drop the flags that would shadow it.
            if let Some(args) = container["args"].as_array_mut() {
                args.retain(|a| {
                    let a = a.as_str().unwrap_or_default();
                    !a.contains("$(")
                });
            }
            if let Some(env_from) = container["envFrom"].as_array_mut() {
                env_from.insert(0, json!({ "configMapRef": { "name": BACKEND_CONFIG } }));
            }
        }
    }
    objects
}

fn is_secret(object: &Value) -> bool {
    object["kind"] == "Secret"
}

fn backend_install(opts: &Options) -> Result<Vec<Value>> {
    // Everything but the Secret, whose values are local (it is part of `configure`).
    Ok(backend_manifests(opts)
        .into_iter()
        .filter(|o| !is_secret(o) && o["kind"] != "Namespace")
        .collect())
}

fn backend_update(opts: &Options) -> Result<Vec<Value>> {
    Ok(backend_manifests(opts)
        .into_iter()
        .filter(|o| o["kind"] == "Deployment")
        .collect())
}

fn backend_configure(opts: &Options) -> Result<Vec<Value>> {
    let data: serde_json::Map<String, Value> = BACKEND_SETTINGS
        .iter()
        .map(|(env, var)| ((*env).to_owned(), Value::String(format!("${{{var}}}"))))
        .collect();
    let mut out = vec![json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": BACKEND_CONFIG, "namespace": BACKEND_NAMESPACE },
        "data": data,
    })];
    for mut secret in backend_manifests(opts).into_iter().filter(is_secret) {
        // `${OIDC_CLIENT_SECRET}` and the cookie keys, prefixed like every backend placeholder.
        if let Some(values) = secret["stringData"].as_object_mut() {
            for (key, value) in values.iter_mut() {
                *value = Value::String(format!("${{BACKEND_{key}}}"));
            }
        }
        out.push(secret);
    }
    Ok(out)
}
