//! The Crossplane packages a control plane installs: the `anynines-dataservices`
//! configuration, provider-anynines and provider-kubernetes, with their runtime configs.
//!
//! Crossplane's package types have no Rust bindings, so these objects are built as JSON; the
//! bundle test applies them to a real apiserver with Crossplane's own CRDs installed.

use serde_json::{Value, json};

use crate::Options;

/// Namespace Crossplane runs in, and where provider secrets live.
pub const CROSSPLANE_NAMESPACE: &str = "crossplane-system";
/// Name of the configuration package object.
pub const CONFIGURATION_NAME: &str = "anynines-dataservices";
/// Name of provider-anynines' Provider object and its DeploymentRuntimeConfig.
pub const PROVIDER_ANYNINES: &str = "provider-anynines";
/// Name of provider-kubernetes' Provider object, DeploymentRuntimeConfig and ServiceAccount.
pub const PROVIDER_KUBERNETES: &str = "provider-kubernetes";
/// The provider-kubernetes ProviderConfig the a8s compositions use.
pub const KUBERNETES_PROVIDER_CONFIG: &str = "kubernetes-provider";

/// The `Configuration` object of the data-services package.
pub fn configuration(opts: &Options) -> Value {
    json!({
        "apiVersion": "pkg.crossplane.io/v1",
        "kind": "Configuration",
        "metadata": { "name": CONFIGURATION_NAME },
        "spec": { "package": opts.image("dataservices") },
    })
}

/// provider-anynines' `Provider` object.
pub fn provider_anynines(opts: &Options) -> Value {
    json!({
        "apiVersion": "pkg.crossplane.io/v1",
        "kind": "Provider",
        "metadata": { "name": PROVIDER_ANYNINES },
        "spec": {
            "package": opts.image("provider-anynines"),
            "runtimeConfigRef": {
                "apiVersion": "pkg.crossplane.io/v1beta1",
                "kind": "DeploymentRuntimeConfig",
                "name": PROVIDER_ANYNINES,
            },
        },
    })
}

/// provider-anynines' runtime config: a readiness probe on its probe server (`:8081/healthz`).
pub fn provider_anynines_runtime() -> Value {
    json!({
        "apiVersion": "pkg.crossplane.io/v1beta1",
        "kind": "DeploymentRuntimeConfig",
        "metadata": { "name": PROVIDER_ANYNINES },
        "spec": { "deploymentTemplate": { "spec": {
            "selector": {},
            "template": { "spec": { "containers": [{
                "name": "package-runtime",
                "readinessProbe": {
                    "httpGet": { "path": "/healthz", "port": 8081 },
                    "periodSeconds": 10,
                },
            }]}},
        }}},
    })
}

/// provider-kubernetes' `Provider` object.
pub fn provider_kubernetes(opts: &Options) -> Value {
    json!({
        "apiVersion": "pkg.crossplane.io/v1",
        "kind": "Provider",
        "metadata": { "name": PROVIDER_KUBERNETES },
        "spec": {
            "package": opts.provider_kubernetes_package,
            "runtimeConfigRef": {
                "apiVersion": "pkg.crossplane.io/v1beta1",
                "kind": "DeploymentRuntimeConfig",
                "name": PROVIDER_KUBERNETES,
            },
        },
    })
}

/// provider-kubernetes' runtime config: a fixed ServiceAccount name, so that
/// [`provider_kubernetes_admin`] can bind it.
pub fn provider_kubernetes_runtime() -> Value {
    json!({
        "apiVersion": "pkg.crossplane.io/v1beta1",
        "kind": "DeploymentRuntimeConfig",
        "metadata": { "name": PROVIDER_KUBERNETES },
        "spec": { "serviceAccountTemplate": { "metadata": { "name": PROVIDER_KUBERNETES } } },
    })
}

/// Binds provider-kubernetes' ServiceAccount to `cluster-admin`: the a8s compositions create
/// arbitrary objects through it (as in Klutch; narrow it when you know your compositions).
pub fn provider_kubernetes_admin() -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": { "name": format!("{PROVIDER_KUBERNETES}-cluster-admin") },
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "cluster-admin",
        },
        "subjects": [{
            "kind": "ServiceAccount",
            "name": PROVIDER_KUBERNETES,
            "namespace": CROSSPLANE_NAMESPACE,
        }],
    })
}

/// The provider-kubernetes ProviderConfig `kubernetes-provider` (`InjectedIdentity`).
pub fn kubernetes_provider_config() -> Value {
    json!({
        "apiVersion": "kubernetes.crossplane.io/v1alpha1",
        "kind": "ProviderConfig",
        "metadata": { "name": KUBERNETES_PROVIDER_CONFIG },
        "spec": { "credentials": { "source": "InjectedIdentity" } },
    })
}
