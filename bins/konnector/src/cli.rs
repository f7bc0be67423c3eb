//! Command-line flags (Klutch's names; every flag has an environment fallback).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use klutch_sdk::runtime::duration;
use klutch_sdk::runtime::logging::LogFormat;

/// The Klutch sync agent that runs in an app cluster.
#[derive(Clone, Debug, Parser)]
#[command(name = "konnector", version, about, long_about = LONG_ABOUT)]
pub struct Cli {
    /// Kubeconfig of the cluster the konnector runs in (the app cluster). Default: in-cluster
    /// credentials, else $KUBECONFIG or ~/.kube/config.
    #[arg(long, env = "KONNECTOR_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// Run on the control plane for one app cluster (as deployed by an AppClusterBinding).
    /// Not implemented yet: the konnector refuses to start with it.
    #[arg(long, env = "KONNECTOR_CONTROL_PLANE_MODE")]
    pub control_plane_mode: bool,

    /// Control-plane mode: name of the Secret with the app cluster's kubeconfig.
    #[arg(long, env = "KONNECTOR_APP_CLUSTER_KUBECONFIG_SECRET_NAME")]
    pub app_cluster_kubeconfig_secret_name: Option<String>,

    /// Control-plane mode: namespace of that Secret.
    #[arg(long, env = "KONNECTOR_APP_CLUSTER_KUBECONFIG_SECRET_NAMESPACE")]
    pub app_cluster_kubeconfig_secret_namespace: Option<String>,

    /// Control-plane mode: key of the kubeconfig in that Secret.
    #[arg(
        long,
        env = "KONNECTOR_APP_CLUSTER_KUBECONFIG_SECRET_KEY",
        default_value = "kubeconfig"
    )]
    pub app_cluster_kubeconfig_secret_key: String,

    /// Control-plane mode: the AppClusterBinding root namespace (bindings and the provider side).
    #[arg(long, env = "KONNECTOR_BINDING_ROOT_NAMESPACE")]
    pub binding_root_namespace: Option<String>,

    /// Name of the leader-election Lease (in the app cluster).
    #[arg(long, env = "KONNECTOR_LEASE_NAME", default_value = "klutch-bind")]
    pub lease_name: String,

    /// Namespace of the Lease. Default: $POD_NAMESPACE, else kube-system.
    #[arg(long, env = "KONNECTOR_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,

    /// Lease identity (unique per replica). Default: a random string.
    #[arg(long = "pod-name", env = "POD_NAME")]
    pub pod_name: Option<String>,

    /// The namespace the konnector runs in.
    #[arg(long = "pod-namespace", env = "POD_NAMESPACE")]
    pub pod_namespace: Option<String>,

    /// Address of the HTTP server with /healthz and /metrics.
    #[arg(
        long,
        env = "KONNECTOR_HEALTHZ_ADDRESS",
        default_value = "0.0.0.0:8080"
    )]
    pub healthz_address: SocketAddr,

    /// Log verbosity like Klutch's klog levels: 0-1 warnings, 2-3 info, 4-5 debug, 6+ trace.
    /// RUST_LOG, when set, overrides it.
    #[arg(short = 'v', long = "v", env = "KONNECTOR_V", default_value_t = 2)]
    pub verbosity: u8,

    /// Log format.
    #[arg(long, env = "KONNECTOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// How long a provider connection may take to list its objects before its bindings report
    /// InformersSynced=False (InformerSyncTimeout).
    #[arg(long, env = "KONNECTOR_INFORMER_SYNC_TIMEOUT", default_value = "150s", value_parser = duration::parse)]
    pub informer_sync_timeout: std::time::Duration,

    /// Interval of the ClusterBinding heartbeat (Klutch: 2.5 min; the reported interval stays 5m0s).
    #[arg(long, env = "KONNECTOR_HEARTBEAT_PERIOD", default_value = "150s", value_parser = duration::parse, hide = true)]
    pub heartbeat_period: std::time::Duration,
}

const LONG_ABOUT: &str = "The Klutch sync agent that runs in an app cluster.

It installs the APIServiceBinding CRD, and for every APIServiceBinding in the cluster connects to \
the provider named by the binding's kubeconfig Secret (one connection per distinct kubeconfig), \
creates the bound CRD, copies the spec of bound objects up to the provider, their status back \
down, mirrors the Secrets and ConfigMaps the binding's accepted permission claims select, adopts \
objects the provider creates, and reports a heartbeat and its version on the provider's \
ClusterBinding.

Two replicas are safe: only the holder of the Lease (--lease-name in --lease-namespace) works; a \
replica that loses the Lease stops and exits non-zero. GET /healthz answers JSON, GET /metrics \
Prometheus text, both on --healthz-address.

See docs/konnector.md for conditions, metrics and the permissions it needs.";
