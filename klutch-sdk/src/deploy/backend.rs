//! The Kubernetes manifests that run `example-backend` on a provider cluster, generated from
//! Rust: Namespace, ServiceAccount, an explicit ClusterRole (no cluster-admin) and its binding,
//! the OIDC/cookie Secret, a two-replica Deployment and a Service.
//!
//! Every value a platform team configures can be a `${VAR}` placeholder that a later configure
//! step substitutes ([`ManifestOptions::placeholders`]).
//!
//! ```
//! use klutch_sdk::deploy::backend::{ManifestOptions, manifests_yaml};
//! let yaml = manifests_yaml(&ManifestOptions::placeholders()).unwrap();
//! assert!(yaml.contains("image: ${IMAGE}"));
//! ```

use serde_json::{Value, json};

/// What the manifests are rendered with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestOptions {
    /// Namespace of the backend.
    pub namespace: String,
    /// Container image.
    pub image: String,
    /// Number of replicas (they share the Lease `klutch-bind-backend`).
    pub replicas: u32,
    /// `--oidc-issuer-url`.
    pub oidc_issuer_url: String,
    /// `--oidc-issuer-client-id`.
    pub oidc_client_id: String,
    /// The backend's public URL (`--oidc-callback-url` is `<url>/callback`).
    pub backend_url: String,
    /// `--external-address`: the provider API server as consumers reach it.
    pub external_address: String,
    /// `--pretty-name`.
    pub pretty_name: String,
}

impl ManifestOptions {
    /// Placeholders `${IMAGE}`, `${OIDC_ISSUER_URL}`, `${OIDC_CLIENT_ID}`, `${BACKEND_URL}`,
    /// `${EXTERNAL_ADDRESS}`, `${PRETTY_NAME}`; the Secret's values are `${OIDC_CLIENT_SECRET}`,
    /// `${COOKIE_SIGNING_KEY}` and `${COOKIE_ENCRYPTION_KEY}`.
    pub fn placeholders() -> Self {
        ManifestOptions {
            namespace: "klutch-bind".into(),
            image: "${IMAGE}".into(),
            replicas: 2,
            oidc_issuer_url: "${OIDC_ISSUER_URL}".into(),
            oidc_client_id: "${OIDC_CLIENT_ID}".into(),
            backend_url: "${BACKEND_URL}".into(),
            external_address: "${EXTERNAL_ADDRESS}".into(),
            pretty_name: "${PRETTY_NAME}".into(),
        }
    }
}

/// The name of every object.
pub const NAME: &str = "example-backend";

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> Value {
    json!({ "apiGroups": groups, "resources": resources, "verbs": verbs })
}

/// The manifests, in apply order.
pub fn manifests(o: &ManifestOptions) -> Vec<Value> {
    const RW: [&str; 7] = [
        "get", "list", "watch", "create", "update", "patch", "delete",
    ];
    let labels = json!({ "app.kubernetes.io/name": NAME });
    let ns = &o.namespace;
    vec![
        json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns } }),
        json!({ "apiVersion": "v1", "kind": "ServiceAccount", "metadata": { "name": NAME, "namespace": ns } }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": { "name": NAME },
            "rules": [
                rule(&["klutch.anynines.com"], &["*"], &RW),
                rule(&["example-backend.klutch.anynines.com"], &["apiserviceexporttemplates"], &["get", "list", "watch"]),
                rule(&["apiextensions.k8s.io"], &["customresourcedefinitions"], &["get", "list", "watch"]),
                rule(&[""], &["namespaces", "serviceaccounts", "secrets"], &RW),
                // Tenants get rights on exported resources the backend itself never uses, so it
                // may grant what it does not hold (bind/escalate) instead of being cluster-admin.
                rule(&["rbac.authorization.k8s.io"], &["clusterroles", "clusterrolebindings", "rolebindings"], &["get", "list", "watch", "create", "update", "patch", "delete", "bind", "escalate"]),
                // The controllers' Lease, and one Lease per redeemed device code (deleted on expiry).
                rule(&["coordination.k8s.io"], &["leases"], &["get", "list", "watch", "create", "update", "patch", "delete"]),
                // Events on objects the controllers cannot decode (they skip them).
                rule(&["events.k8s.io"], &["events"], &["create", "patch"]),
            ],
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": { "name": NAME },
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NAME },
            "subjects": [{ "kind": "ServiceAccount", "name": NAME, "namespace": ns }],
        }),
        json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": { "name": NAME, "namespace": ns },
            "stringData": {
                "OIDC_CLIENT_SECRET": "${OIDC_CLIENT_SECRET}",
                "COOKIE_SIGNING_KEY": "${COOKIE_SIGNING_KEY}",
                "COOKIE_ENCRYPTION_KEY": "${COOKIE_ENCRYPTION_KEY}",
            },
        }),
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": NAME, "namespace": ns, "labels": labels },
            "spec": {
                "replicas": o.replicas,
                "selector": { "matchLabels": labels },
                "template": {
                    "metadata": { "labels": labels },
                    "spec": {
                        "serviceAccountName": NAME,
                        "containers": [{
                            "name": NAME,
                            "image": o.image,
                            "args": [
                                format!("--oidc-issuer-url={}", o.oidc_issuer_url),
                                format!("--oidc-issuer-client-id={}", o.oidc_client_id),
                                format!("--oidc-callback-url={}/callback", o.backend_url),
                                format!("--external-address={}", o.external_address),
                                format!("--pretty-name={}", o.pretty_name),
                                "--listen-address=0.0.0.0:8080".to_owned(),
                                "--trust-forwarded-headers".to_owned(),
                                "--log-format=json".to_owned(),
                            ],
                            "envFrom": [{ "secretRef": { "name": NAME } }],
                            "env": [
                                { "name": "POD_NAME", "valueFrom": { "fieldRef": { "fieldPath": "metadata.name" } } },
                                { "name": "POD_NAMESPACE", "valueFrom": { "fieldRef": { "fieldPath": "metadata.namespace" } } },
                            ],
                            "ports": [{ "name": "http", "containerPort": 8080 }],
                            "readinessProbe": { "httpGet": { "path": "/healthz", "port": "http" } },
                            "livenessProbe": { "httpGet": { "path": "/healthz", "port": "http" } },
                            "securityContext": { "runAsNonRoot": true, "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": { "drop": ["ALL"] } },
                        }],
                    },
                },
            },
        }),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": { "name": NAME, "namespace": ns, "labels": labels },
            "spec": { "selector": labels, "ports": [{ "name": "http", "port": 80, "targetPort": "http" }] },
        }),
    ]
}

/// The manifests as one multi-document YAML stream.
pub fn manifests_yaml(o: &ManifestOptions) -> Result<String, serde_saphyr::ser_error::Error> {
    let mut out = String::new();
    for m in manifests(o) {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&m)?);
    }
    Ok(out)
}
