//! The konnector's manifests for an app cluster (default mode): namespace `klutch-bind`,
//! ServiceAccount `konnector`, the base RBAC, and Deployment `konnector` (non-root user 65532,
//! read-only root file system, no capabilities, `RuntimeDefault` seccomp profile).
//!
//! Unlike Klutch, whose konnector ClusterRole grants `*/*/*` (spec §7 item 19), the base RBAC
//! only covers what the konnector needs before any API is bound:
//!
//! | Object | Grants |
//! |---|---|
//! | ClusterRole `klutch-bind-konnector` | CRDs get/list/watch/create; update/patch of `apiservicebindings.klutch.anynines.com` only; APIServiceBindings get/list/watch/update/patch and their status; Namespaces get/list/watch; Events create/patch |
//! | Role `klutch-bind-konnector` in `klutch-bind` | Secrets (the provider kubeconfigs) and Leases (leader election): all verbs |
//!
//! Every bound API adds its own ClusterRole and ClusterRoleBinding,
//! `klutch-bind-konnector-<binding>` ([`binding_rbac`]): the bound resource and its status, the
//! claimed resources, and update/patch/delete of the one CRD that the binding materialises.
//!
//! ```
//! use klutch_sdk::deploy::konnector::{KonnectorManifests, manifests};
//! let objects = manifests(&KonnectorManifests::new("example.com/konnector:v1.2.3"));
//! let kinds: Vec<&str> = objects.iter().map(|m| m.kind()).collect();
//! assert_eq!(kinds, ["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Deployment"]);
//! ```

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction, Namespace,
    ObjectFieldSelector, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements,
    SeccompProfile, SecurityContext, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{ApiResource, DynamicObject};

use crate::api::GroupResource;
use crate::api::wellknown::{
    CONSUMER_NAMESPACE, CREATE_ONLY_ANNOTATION, GROUP, KONNECTOR_CLUSTER_ROLE, KONNECTOR_NAME,
};
use crate::deploy::images::{DEFAULT_REGISTRY, PART_OF_LABEL, VERSION_LABEL, repository};

/// The repository of Klutch's Go konnector (anynines'): recognised, never treated as ours.
pub const KLUTCH_GO_REPOSITORY: &str = "public.ecr.aws/w5n9a2g2/klutch/konnector";

/// The repository of our konnector images, `<DEFAULT_REGISTRY>/konnector`; `kubectl bind`
/// deploys `<repository>:<its version>` unless given another repository at run time.
pub fn default_repository() -> String {
    repository(DEFAULT_REGISTRY, KONNECTOR_NAME)
}

/// Label `app: konnector` on the Deployment, its selector and pods.
pub const APP_LABEL: (&str, &str) = ("app", "konnector");
/// Label on the per-binding RBAC objects: the APIServiceBinding's name.
pub const BINDING_LABEL: &str = "klutch.anynines.com/binding";
/// Port of the konnector's `/healthz` endpoint.
pub const HEALTHZ_PORT: i32 = 8080;
/// The APIServiceBinding CRD, which the konnector installs and keeps up to date.
pub const BINDING_CRD: &str = "apiservicebindings.klutch.anynines.com";

/// What to render.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KonnectorManifests {
    /// The container image, e.g. `ghcr.io/klutch-rs/klutch/konnector:v1.6.0`.
    pub image: String,
    /// The konnector's version for the Deployment's `app.kubernetes.io/version` label, when
    /// known (installers compare it, not the tag, with their own).
    pub version: Option<String>,
    /// Replicas of the Deployment (active/passive through the Lease). Default 2.
    pub replicas: i32,
    /// The namespace of the konnector and its Lease. Default `klutch-bind`.
    pub namespace: String,
    /// `imagePullPolicy` of the container; unset lets Kubernetes choose.
    pub image_pull_policy: Option<String>,
    /// Arguments of the container. Default none (the konnector's defaults).
    pub args: Vec<String>,
}

impl KonnectorManifests {
    /// The defaults for `image`: 2 replicas in `klutch-bind`, no arguments.
    pub fn new(image: impl Into<String>) -> Self {
        KonnectorManifests {
            image: image.into(),
            version: None,
            replicas: 2,
            namespace: CONSUMER_NAMESPACE.to_string(),
            image_pull_policy: None,
            args: Vec::new(),
        }
    }
}

/// One object of the manifests, typed.
#[derive(Clone, Debug, PartialEq)]
pub enum Manifest {
    /// A Namespace.
    Namespace(Namespace),
    /// A ServiceAccount.
    ServiceAccount(ServiceAccount),
    /// A ClusterRole.
    ClusterRole(ClusterRole),
    /// A ClusterRoleBinding.
    ClusterRoleBinding(ClusterRoleBinding),
    /// A Role.
    Role(Role),
    /// A RoleBinding.
    RoleBinding(RoleBinding),
    /// A Deployment.
    Deployment(Box<Deployment>),
}

impl Manifest {
    fn meta(&self) -> &ObjectMeta {
        match self {
            Manifest::Namespace(o) => &o.metadata,
            Manifest::ServiceAccount(o) => &o.metadata,
            Manifest::ClusterRole(o) => &o.metadata,
            Manifest::ClusterRoleBinding(o) => &o.metadata,
            Manifest::Role(o) => &o.metadata,
            Manifest::RoleBinding(o) => &o.metadata,
            Manifest::Deployment(o) => &o.metadata,
        }
    }

    /// The object's kind.
    pub fn kind(&self) -> &'static str {
        self.api_resource_kind().0
    }

    fn api_resource_kind(&self) -> (&'static str, ApiResource) {
        fn of<K: kube::Resource<DynamicType = ()>>() -> ApiResource {
            ApiResource::erase::<K>(&())
        }
        match self {
            Manifest::Namespace(_) => ("Namespace", of::<Namespace>()),
            Manifest::ServiceAccount(_) => ("ServiceAccount", of::<ServiceAccount>()),
            Manifest::ClusterRole(_) => ("ClusterRole", of::<ClusterRole>()),
            Manifest::ClusterRoleBinding(_) => ("ClusterRoleBinding", of::<ClusterRoleBinding>()),
            Manifest::Role(_) => ("Role", of::<Role>()),
            Manifest::RoleBinding(_) => ("RoleBinding", of::<RoleBinding>()),
            Manifest::Deployment(_) => ("Deployment", of::<Deployment>()),
        }
    }

    /// The API resource (group, version, kind, plural) to read and write the object with.
    pub fn api_resource(&self) -> ApiResource {
        self.api_resource_kind().1
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        self.meta().name.as_deref().unwrap_or_default()
    }

    /// The object's namespace; `None` for cluster-scoped objects.
    pub fn namespace(&self) -> Option<&str> {
        self.meta().namespace.as_deref()
    }

    /// Whether an installer must create the object but never update an existing one
    /// (annotation `bootstrap.klutch.anynines.com/create-only`).
    pub fn create_only(&self) -> bool {
        self.meta()
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(CREATE_ONLY_ANNOTATION))
    }

    /// The object as JSON, with `apiVersion` and `kind`.
    pub fn to_json(&self) -> serde_json::Value {
        let value = match self {
            Manifest::Namespace(o) => serde_json::to_value(o),
            Manifest::ServiceAccount(o) => serde_json::to_value(o),
            Manifest::ClusterRole(o) => serde_json::to_value(o),
            Manifest::ClusterRoleBinding(o) => serde_json::to_value(o),
            Manifest::Role(o) => serde_json::to_value(o),
            Manifest::RoleBinding(o) => serde_json::to_value(o),
            Manifest::Deployment(o) => serde_json::to_value(o),
        };
        value.expect("Kubernetes objects serialise")
    }

    /// The object as a [`DynamicObject`] for generic clients.
    pub fn to_dynamic(&self) -> DynamicObject {
        serde_json::from_value(self.to_json()).expect("a Kubernetes object is a DynamicObject")
    }
}

fn meta(name: &str, namespace: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        ..ObjectMeta::default()
    }
}

fn rule(groups: &[&str], resources: &[&str], names: &[&str], verbs: &[&str]) -> PolicyRule {
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    PolicyRule {
        api_groups: Some(strings(groups)),
        resources: Some(strings(resources)),
        resource_names: (!names.is_empty()).then(|| strings(names)),
        verbs: strings(verbs),
        ..PolicyRule::default()
    }
}

const READ: &[&str] = &["get", "list", "watch"];
const ALL: &[&str] = &[
    "get", "list", "watch", "create", "update", "patch", "delete",
];

fn konnector_subject(namespace: &str) -> Subject {
    Subject {
        kind: "ServiceAccount".into(),
        name: KONNECTOR_NAME.into(),
        namespace: Some(namespace.into()),
        ..Subject::default()
    }
}

/// The konnector's objects, in the order to apply them: Namespace, ServiceAccount, ClusterRole,
/// ClusterRoleBinding, Role, RoleBinding, Deployment. The Namespace carries
/// `bootstrap.klutch.anynines.com/create-only` (it may hold the user's bindings and Secrets; an
/// installer creates it but never rewrites it).
pub fn manifests(options: &KonnectorManifests) -> Vec<Manifest> {
    let ns = options.namespace.as_str();
    let mut namespace = meta(ns, None);
    namespace.annotations = Some(BTreeMap::from([(
        CREATE_ONLY_ANNOTATION.to_string(),
        "true".to_string(),
    )]));
    let labels = BTreeMap::from([(APP_LABEL.0.to_string(), APP_LABEL.1.to_string())]);
    let env_from_field = |name: &str, path: &str| EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    };
    let container = Container {
        name: KONNECTOR_NAME.into(),
        image: Some(options.image.clone()),
        image_pull_policy: options.image_pull_policy.clone(),
        args: (!options.args.is_empty()).then(|| options.args.clone()),
        env: Some(vec![
            env_from_field("POD_NAME", "metadata.name"),
            env_from_field("POD_NAMESPACE", "metadata.namespace"),
        ]),
        ports: Some(vec![ContainerPort {
            name: Some("healthz".into()),
            container_port: HEALTHZ_PORT,
            ..ContainerPort::default()
        }]),
        // Requests only: memory grows with the number of synced objects, so no limit is set.
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_string(), Quantity("50m".into())),
                ("memory".to_string(), Quantity("64Mi".into())),
            ])),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        readiness_probe: Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/healthz".into()),
                port: IntOrString::Int(HEALTHZ_PORT),
                ..HTTPGetAction::default()
            }),
            ..Probe::default()
        }),
        ..Container::default()
    };
    // Ours: the selector keeps `app: konnector` only (selectors are immutable), the Deployment
    // itself says who installed it and which version.
    let mut deployment_labels = labels.clone();
    deployment_labels.insert(PART_OF_LABEL.0.into(), PART_OF_LABEL.1.into());
    if let Some(version) = &options.version {
        deployment_labels.insert(VERSION_LABEL.into(), version.clone());
    }
    let deployment = Deployment {
        metadata: ObjectMeta {
            labels: Some(deployment_labels),
            ..meta(KONNECTOR_NAME, Some(ns))
        },
        spec: Some(DeploymentSpec {
            replicas: Some(options.replicas),
            selector: LabelSelector {
                match_labels: Some(labels.clone()),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(KONNECTOR_NAME.into()),
                    restart_policy: Some("Always".into()),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(65532),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".into(),
                            ..SeccompProfile::default()
                        }),
                        ..PodSecurityContext::default()
                    }),
                    containers: vec![container],
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    };
    vec![
        Manifest::Namespace(Namespace {
            metadata: namespace,
            ..Namespace::default()
        }),
        Manifest::ServiceAccount(ServiceAccount {
            metadata: meta(KONNECTOR_NAME, Some(ns)),
            ..ServiceAccount::default()
        }),
        Manifest::ClusterRole(ClusterRole {
            metadata: meta(KONNECTOR_CLUSTER_ROLE, None),
            rules: Some(vec![
                rule(
                    &["apiextensions.k8s.io"],
                    &["customresourcedefinitions"],
                    &[],
                    &["get", "list", "watch", "create"],
                ),
                rule(
                    &["apiextensions.k8s.io"],
                    &["customresourcedefinitions"],
                    &[BINDING_CRD],
                    &["update", "patch"],
                ),
                rule(
                    &[GROUP],
                    &["apiservicebindings"],
                    &[],
                    &["get", "list", "watch", "update", "patch"],
                ),
                rule(
                    &[GROUP],
                    &["apiservicebindings/status"],
                    &[],
                    &["get", "update", "patch"],
                ),
                rule(&[""], &["namespaces"], &[], READ),
                rule(
                    &["", "events.k8s.io"],
                    &["events"],
                    &[],
                    &["create", "patch"],
                ),
            ]),
            ..ClusterRole::default()
        }),
        Manifest::ClusterRoleBinding(ClusterRoleBinding {
            metadata: meta(KONNECTOR_CLUSTER_ROLE, None),
            role_ref: RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: "ClusterRole".into(),
                name: KONNECTOR_CLUSTER_ROLE.into(),
            },
            subjects: Some(vec![konnector_subject(ns)]),
        }),
        Manifest::Role(Role {
            metadata: meta(KONNECTOR_CLUSTER_ROLE, Some(ns)),
            rules: Some(vec![
                rule(&[""], &["secrets"], &[], ALL),
                rule(&["coordination.k8s.io"], &["leases"], &[], ALL),
            ]),
        }),
        Manifest::RoleBinding(RoleBinding {
            metadata: meta(KONNECTOR_CLUSTER_ROLE, Some(ns)),
            role_ref: RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: "Role".into(),
                name: KONNECTOR_CLUSTER_ROLE.into(),
            },
            subjects: Some(vec![konnector_subject(ns)]),
        }),
        Manifest::Deployment(Box::new(deployment)),
    ]
}

/// The name of the per-binding ClusterRole and ClusterRoleBinding:
/// `klutch-bind-konnector-<binding>`.
pub fn binding_rbac_name(binding: &str) -> String {
    format!("{KONNECTOR_CLUSTER_ROLE}-{binding}")
}

/// The RBAC the konnector needs for one APIServiceBinding named `binding` (`<plural>.<group>`):
/// a ClusterRole and a ClusterRoleBinding `klutch-bind-konnector-<binding>` (label
/// `klutch.anynines.com/binding: <binding>`) granting all verbs on the bound resource, its
/// `status`, and each claimed resource (accepted claims only; duplicates removed), and
/// update/patch/delete of the bound CRD.
///
/// ```
/// use klutch_sdk::api::GroupResource;
/// use klutch_sdk::deploy::konnector::binding_rbac;
/// let bound = GroupResource { group: "anynines.com".into(), resource: "postgresqlinstances".into() };
/// let secrets = GroupResource { group: "".into(), resource: "secrets".into() };
/// let objects = binding_rbac("postgresqlinstances.anynines.com", &bound, &[secrets], "klutch-bind");
/// assert_eq!(objects[0].name(), "klutch-bind-konnector-postgresqlinstances.anynines.com");
/// ```
pub fn binding_rbac(
    binding: &str,
    bound: &GroupResource,
    claimed: &[GroupResource],
    namespace: &str,
) -> Vec<Manifest> {
    let name = binding_rbac_name(binding);
    let labels = Some(BTreeMap::from([(
        BINDING_LABEL.to_string(),
        binding.to_string(),
    )]));
    let mut rules = vec![
        rule(
            &["apiextensions.k8s.io"],
            &["customresourcedefinitions"],
            &[binding],
            &["update", "patch", "delete"],
        ),
        rule(&[&bound.group], &[&bound.resource], &[], ALL),
        rule(
            &[&bound.group],
            &[&format!("{}/status", bound.resource)],
            &[],
            &["get", "update", "patch"],
        ),
    ];
    let mut seen = vec![bound.clone()];
    for claim in claimed {
        if !seen.contains(claim) {
            seen.push(claim.clone());
            rules.push(rule(&[&claim.group], &[&claim.resource], &[], ALL));
        }
    }
    vec![
        Manifest::ClusterRole(ClusterRole {
            metadata: ObjectMeta {
                labels: labels.clone(),
                ..meta(&name, None)
            },
            rules: Some(rules),
            ..ClusterRole::default()
        }),
        Manifest::ClusterRoleBinding(ClusterRoleBinding {
            metadata: ObjectMeta {
                labels,
                ..meta(&name, None)
            },
            role_ref: RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: "ClusterRole".into(),
                name: name.clone(),
            },
            subjects: Some(vec![konnector_subject(namespace)]),
        }),
    ]
}

/// Renders manifests as one multi-document YAML stream (for a release bundle or `--dry-run`).
pub fn to_yaml(manifests: &[Manifest]) -> Result<String, serde_saphyr::ser_error::Error> {
    let mut out = String::new();
    for manifest in manifests {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&manifest.to_json())?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_manifests_snapshot() {
        let mut options = KonnectorManifests::new(format!("{}:v1.6.0", default_repository()));
        options.version = Some("v1.6.0".into());
        let yaml = to_yaml(&manifests(&options)).unwrap();
        insta::assert_snapshot!(yaml);
    }

    #[test]
    fn binding_rbac_snapshot_deduplicates_claims() {
        let bound = GroupResource {
            group: "anynines.com".into(),
            resource: "servicebindings".into(),
        };
        let secrets = GroupResource {
            group: String::new(),
            resource: "secrets".into(),
        };
        let configmaps = GroupResource {
            group: String::new(),
            resource: "configmaps".into(),
        };
        let objects = binding_rbac(
            "servicebindings.anynines.com",
            &bound,
            &[secrets.clone(), configmaps, secrets],
            "klutch-bind",
        );
        insta::assert_snapshot!(to_yaml(&objects).unwrap());
    }

    #[test]
    fn options_change_the_deployment_and_namespace() {
        let mut options = KonnectorManifests::new("registry.local/konnector:dev");
        options.replicas = 1;
        options.namespace = "other".into();
        options.image_pull_policy = Some("Never".into());
        options.args = vec!["-v=4".into()];
        let objects = manifests(&options);
        let Manifest::Deployment(deployment) = objects.last().unwrap() else {
            panic!("the Deployment comes last");
        };
        let spec = deployment.spec.as_ref().unwrap();
        assert_eq!(spec.replicas, Some(1));
        let container = &spec.template.spec.as_ref().unwrap().containers[0];
        assert_eq!(
            container.image.as_deref(),
            Some("registry.local/konnector:dev")
        );
        assert_eq!(container.image_pull_policy.as_deref(), Some("Never"));
        assert_eq!(container.args.as_deref(), Some(&["-v=4".to_string()][..]));
        assert!(
            objects
                .iter()
                .skip(1)
                .filter(|m| m.kind() != "ClusterRole" && m.kind() != "ClusterRoleBinding")
                .all(|m| m.namespace() == Some("other"))
        );
        assert!(objects[0].create_only());
        assert!(!objects[1].create_only());
        let dynamic = objects[6].to_dynamic();
        assert_eq!(dynamic.types.unwrap().kind, "Deployment");
        assert_eq!(objects[6].api_resource().plural, "deployments");
    }
}
