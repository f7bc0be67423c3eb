//! Every well-known string of the Klutch v1.5 wire format, verbatim: API groups, annotations,
//! labels, finalizers, field managers and fixed object names. Components refer to these constants
//! instead of repeating literals, so a typo cannot silently break compatibility.

/// The API group of the bind API.
pub const GROUP: &str = "klutch.anynines.com";
/// The only version of the bind API.
pub const VERSION: &str = "v1alpha1";
/// `GROUP/VERSION`.
pub const API_VERSION: &str = "klutch.anynines.com/v1alpha1";
/// The API group of the example backend's APIServiceExportTemplate.
pub const TEMPLATE_GROUP: &str = "example-backend.klutch.anynines.com";
/// `TEMPLATE_GROUP/VERSION`.
pub const TEMPLATE_API_VERSION: &str = "example-backend.klutch.anynines.com/v1alpha1";
/// The category every bind kind is listed under (`kubectl get kube-bindings`).
pub const CATEGORY: &str = "kube-bindings";

/// Finalizer on every consumer object the spec syncer manages.
pub const SYNCER_FINALIZER: &str = "klutch.anynines.com/syncer";
/// Finalizer on AppClusterBindings.
pub const APP_CLUSTER_BINDING_FINALIZER: &str = "klutch.anynines.com/appclusterbinding-cleanup";

/// Annotation on both copies of a synced object (value `"true"`); absent on a provider object, it
/// marks an adoption candidate.
pub const BOUND_ANNOTATION: &str = "klutch.anynines.com/bound";
/// Annotation naming the owner of a claimed object: `Provider` or `Consumer`.
pub const RESOURCE_OWNER_ANNOTATION: &str = "klutch.anynines.com/resource-owner";
/// Annotation on provider copies of cluster-scoped objects: the cluster namespace.
pub const CLUSTER_NAMESPACE_ANNOTATION: &str = "klutch.anynines.com/cluster-namespace";
/// Annotation on APIServiceExports: digest of the CRD-derived part of the spec.
pub const SOURCE_SPEC_HASH_ANNOTATION: &str = "klutch.anynines.com/source-spec-hash";
/// Annotation on service namespaces created by the backend: `<clusterNs>/<name>`.
pub const API_SERVICE_NAMESPACE_ANNOTATION: &str = "klutch.anynines.com/api-service-namespace";
/// Annotation on cluster namespaces: the identity `<sub>#<cid>` that owns the binding space.
pub const IDENTITY_ANNOTATION: &str = "example-backend.klutch.anynines.com/identity";
/// Label on everything an AppClusterBinding creates: the binding's name.
pub const APP_CLUSTER_BINDING_NAME_LABEL: &str = "klutch.anynines.com/appclusterbinding-name";
/// Label on everything an AppClusterBinding creates: the binding's namespace.
pub const APP_CLUSTER_BINDING_NAMESPACE_LABEL: &str =
    "klutch.anynines.com/appclusterbinding-namespace";
/// Label on fixture CRDs in upstream examples. Not read by any code; never require it.
pub const EXPORTED_LABEL: &str = "klutch.anynines.com/exported";
/// Manifest bootstrapper: an existing object with this annotation is never updated.
pub const CREATE_ONLY_ANNOTATION: &str = "bootstrap.klutch.anynines.com/create-only";
/// Manifest bootstrapper: marks optional parts.
pub const BATTERY_ANNOTATION: &str = "bootstrap.klutch.anynines.com/battery";

/// Server-side-apply field manager of the konnector's writes on the provider.
pub const FIELD_MANAGER: &str = "klutch.anynines.com";

/// Name of the singleton ClusterBinding in a cluster namespace.
pub const CLUSTER_BINDING_NAME: &str = "cluster";
/// Name of the provider-side ServiceAccount, its token Secret and ClusterRole.
pub const BINDER_NAME: &str = "klutch-binder";
/// Name of the issued kubeconfig Secret in a cluster namespace.
pub const KUBECONFIG_SECRET_NAME: &str = "kubeconfig";
/// The key of kubeconfig Secrets.
pub const KUBECONFIG_SECRET_KEY: &str = "kubeconfig";
/// Default prefix of cluster namespaces (`generateName: cluster-`).
pub const CLUSTER_NAMESPACE_PREFIX: &str = "cluster-";
/// The consumer namespace of bindings, kubeconfig Secrets and the konnector.
pub const CONSUMER_NAMESPACE: &str = "klutch-bind";
/// Consumer kubeconfig Secrets: `generateName` prefix.
pub const CONSUMER_KUBECONFIG_PREFIX: &str = "kubeconfig-";
/// Name of the konnector's ServiceAccount, Deployment and container.
pub const KONNECTOR_NAME: &str = "konnector";
/// ClusterRole and ClusterRoleBinding of the konnector in the consumer cluster.
pub const KONNECTOR_CLUSTER_ROLE: &str = "klutch-bind-konnector";
/// The konnector's leader-election Lease.
pub const KONNECTOR_LEASE: &str = "klutch-bind";
/// The backend's leader-election Lease.
pub const BACKEND_LEASE: &str = "klutch-bind-backend";
/// Prefix of the backend's login cookie (`klutch-bind-<sid>`).
pub const COOKIE_PREFIX: &str = "klutch-bind-";
/// `generateName` of export requests the CLI creates without a name.
pub const EXPORT_REQUEST_GENERATE_NAME: &str = "export-";

/// Kind of the document `/export` serves.
pub const BINDING_PROVIDER_KIND: &str = "BindingProvider";
/// Kind of the document `/bind` returns.
pub const BINDING_RESPONSE_KIND: &str = "BindingResponse";
/// The `apiVersion` of BindingProvider documents: the bare version, as upstream CLIs require.
pub const BINDING_PROVIDER_API_VERSION: &str = "v1alpha1";
/// The authentication method the protocol supports.
pub const OAUTH2_CODE_GRANT: &str = "OAuth2CodeGrant";
