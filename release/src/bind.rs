//! The bind side of a control plane: klutch's CRDs, the example-backend and the export
//! templates that make the a9s claims bindable.

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use klutch_sdk::api::template::APIServiceSelector;
use klutch_sdk::api::{APIServiceExportTemplate, APIServiceExportTemplateSpec, PermissionClaim};
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

// TEMPORARY until the example-backend manifests land (branch `backend`).
fn backend_install(_opts: &Options) -> Result<Vec<Value>> {
    Ok(Vec::new())
}
fn backend_update(_opts: &Options) -> Result<Vec<Value>> {
    Ok(Vec::new())
}
fn backend_configure(_opts: &Options) -> Result<Vec<Value>> {
    Ok(Vec::new())
}
