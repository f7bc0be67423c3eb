//! Conversions between provider CRDs and APIServiceExports (backend side), and between
//! APIServiceExports and consumer CRDs (konnector side), plus the export's source-spec hash.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceColumnDefinition, CustomResourceConversion, CustomResourceDefinition,
    CustomResourceDefinitionNames, CustomResourceDefinitionSpec, CustomResourceDefinitionVersion,
    CustomResourceSubresourceScale, CustomResourceSubresourceStatus, CustomResourceSubresources,
    CustomResourceValidation, JSONSchemaProps,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::ObjectMeta;
use kube::{Resource as _, ResourceExt as _};
use sha2::{Digest, Sha224};

use super::claims::PermissionClaim;
use super::export::{
    APIServiceExportSpec, ClusterScopedIsolation, CrdNames, ExportSchema, ExportVersion,
    PrinterColumn, ScaleSubresource, Scope, Subresources,
};
use super::{APIServiceBinding, APIServiceExport};

/// Why a CRD cannot be exported (the backend reports it as `ExportsReady=False CRDInvalid`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The CRD has a scope other than `Cluster` or `Namespaced`.
    #[error("CRD {crd} has an unknown scope {scope:?}")]
    UnknownScope {
        /// The CRD's name.
        crd: String,
        /// Its scope.
        scope: String,
    },
    /// A version to export has no schema.
    #[error("version {version} of CRD {crd} has no openAPIV3Schema")]
    MissingSchema {
        /// The CRD's name.
        crd: String,
        /// The version.
        version: String,
    },
    /// No version is left to export.
    #[error("CRD {crd} has no served version to export")]
    NoVersion {
        /// The CRD's name.
        crd: String,
    },
    /// A schema could not be converted to or from JSON.
    #[error("convert the schema of version {version} of CRD {crd}")]
    Schema {
        /// The CRD's name.
        crd: String,
        /// The version.
        version: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The export spec for a provider CRD: its group, names, scope and **served** versions (only the
/// storage version when the CRD converts through a webhook, which the consumer cannot call),
/// with the permission claims from the template, never from the request.
pub fn export_spec_from_crd(
    crd: &CustomResourceDefinition,
    permission_claims: Vec<PermissionClaim>,
    informer_scope: Scope,
    cluster_scoped_isolation: Option<ClusterScopedIsolation>,
) -> Result<APIServiceExportSpec> {
    let name = crd.name_any();
    let scope = match crd.spec.scope.as_str() {
        "Cluster" => Scope::Cluster,
        "Namespaced" => Scope::Namespaced,
        other => {
            return Err(Error::UnknownScope {
                crd: name,
                scope: other.into(),
            });
        }
    };
    let webhook = crd
        .spec
        .conversion
        .as_ref()
        .is_some_and(|c| c.strategy == "Webhook");
    let mut versions = Vec::new();
    for v in &crd.spec.versions {
        if !v.served || (webhook && !v.storage) {
            continue;
        }
        let schema = v
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .ok_or_else(|| Error::MissingSchema {
                crd: name.clone(),
                version: v.name.clone(),
            })?;
        let schema = serde_json::to_value(schema).map_err(|source| Error::Schema {
            crd: name.clone(),
            version: v.name.clone(),
            source,
        })?;
        versions.push(ExportVersion {
            name: v.name.clone(),
            served: v.served,
            storage: v.storage,
            deprecated: v.deprecated,
            deprecation_warning: v.deprecation_warning.clone(),
            schema: ExportSchema {
                open_api_v3_schema: schema,
            },
            subresources: v.subresources.as_ref().map(|s| Subresources {
                status: s.status.as_ref().map(|_| serde_json::Map::new()),
                scale: s.scale.as_ref().map(|sc| ScaleSubresource {
                    spec_replicas_path: sc.spec_replicas_path.clone(),
                    status_replicas_path: sc.status_replicas_path.clone(),
                    label_selector_path: sc.label_selector_path.clone(),
                }),
            }),
            additional_printer_columns: v
                .additional_printer_columns
                .iter()
                .flatten()
                .map(|c| PrinterColumn {
                    name: c.name.clone(),
                    type_: c.type_.clone(),
                    json_path: c.json_path.clone(),
                    description: c.description.clone(),
                    format: c.format.clone(),
                    priority: c.priority,
                })
                .collect(),
        });
    }
    if versions.is_empty() {
        return Err(Error::NoVersion { crd: name });
    }
    let n = &crd.spec.names;
    Ok(APIServiceExportSpec {
        group: crd.spec.group.clone(),
        names: CrdNames {
            kind: n.kind.clone(),
            plural: n.plural.clone(),
            singular: n.singular.clone(),
            list_kind: n.list_kind.clone(),
            short_names: n.short_names.clone().unwrap_or_default(),
            categories: n.categories.clone().unwrap_or_default(),
        },
        scope,
        versions,
        informer_scope,
        cluster_scoped_isolation: if scope == Scope::Cluster {
            cluster_scoped_isolation
        } else {
            None
        },
        permission_claims,
    })
}

/// The `klutch.anynines.com/source-spec-hash` of an export spec: SHA-224 of the JSON of its
/// CRD-derived part (`group`, `names`, `scope`, `versions`), in base 62. The backend rewrites the
/// export when the provider CRD's hash changes.
pub fn source_spec_hash(spec: &APIServiceExportSpec) -> String {
    let part = serde_json::json!({
        "group": spec.group,
        "names": spec.names,
        "scope": spec.scope,
        "versions": spec.versions,
    });
    let digest = Sha224::digest(part.to_string().as_bytes());
    crate::api::ids::base62(&digest)
}

/// The consumer CRD for an export, named like it (`<plural>.<group>`), with no conversion webhook
/// and a controller owner reference to `binding`, so it is garbage-collected with the binding.
pub fn crd_from_export(
    export: &APIServiceExport,
    binding: &APIServiceBinding,
) -> Result<CustomResourceDefinition> {
    let name = export.name_any();
    let spec = &export.spec;
    let mut versions = Vec::new();
    for v in &spec.versions {
        let schema: JSONSchemaProps = serde_json::from_value(v.schema.open_api_v3_schema.clone())
            .map_err(|source| Error::Schema {
            crd: name.clone(),
            version: v.name.clone(),
            source,
        })?;
        versions.push(CustomResourceDefinitionVersion {
            name: v.name.clone(),
            served: v.served,
            storage: v.storage,
            deprecated: v.deprecated,
            deprecation_warning: v.deprecation_warning.clone(),
            schema: Some(CustomResourceValidation {
                open_api_v3_schema: Some(schema),
            }),
            subresources: v.subresources.as_ref().map(|s| CustomResourceSubresources {
                status: s
                    .status
                    .as_ref()
                    .map(|_| CustomResourceSubresourceStatus(serde_json::json!({}))),
                scale: s.scale.as_ref().map(|sc| CustomResourceSubresourceScale {
                    spec_replicas_path: sc.spec_replicas_path.clone(),
                    status_replicas_path: sc.status_replicas_path.clone(),
                    label_selector_path: sc.label_selector_path.clone(),
                }),
            }),
            additional_printer_columns: (!v.additional_printer_columns.is_empty()).then(|| {
                v.additional_printer_columns
                    .iter()
                    .map(|c| CustomResourceColumnDefinition {
                        name: c.name.clone(),
                        type_: c.type_.clone(),
                        json_path: c.json_path.clone(),
                        description: c.description.clone(),
                        format: c.format.clone(),
                        priority: c.priority,
                    })
                    .collect()
            }),
            selectable_fields: None,
        });
    }
    let names = &spec.names;
    Ok(CustomResourceDefinition {
        metadata: ObjectMeta {
            name: Some(name),
            owner_references: binding.controller_owner_ref(&()).map(|r| vec![r]),
            ..ObjectMeta::default()
        },
        spec: CustomResourceDefinitionSpec {
            group: spec.group.clone(),
            names: CustomResourceDefinitionNames {
                kind: names.kind.clone(),
                plural: names.plural.clone(),
                singular: names.singular.clone(),
                list_kind: names.list_kind.clone(),
                short_names: (!names.short_names.is_empty()).then(|| names.short_names.clone()),
                categories: (!names.categories.is_empty()).then(|| names.categories.clone()),
            },
            scope: match spec.scope {
                Scope::Cluster => "Cluster".into(),
                Scope::Namespaced => "Namespaced".into(),
            },
            versions,
            conversion: Some(CustomResourceConversion {
                strategy: "None".into(),
                webhook: None,
            }),
            preserve_unknown_fields: None,
        },
        status: None,
    })
}

/// Whether `crd` is owned by `binding`: an owner reference with API group `klutch.anynines.com`,
/// kind `APIServiceBinding`, the binding's name and UID. The konnector never touches a CRD for
/// which this is false.
pub fn is_owned_by(crd: &CustomResourceDefinition, binding: &APIServiceBinding) -> bool {
    let uid = binding.metadata.uid.as_deref();
    crd.owner_references().iter().any(|r: &OwnerReference| {
        r.api_version.split('/').next() == Some(super::wellknown::GROUP)
            && r.kind == "APIServiceBinding"
            && Some(r.name.as_str()) == binding.metadata.name.as_deref()
            && uid.is_some()
            && Some(r.uid.as_str()) == uid
    })
}
