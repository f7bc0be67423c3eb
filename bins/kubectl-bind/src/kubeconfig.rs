//! Loading kubeconfigs: the app cluster's from kubectl's flags, and the provider's that the
//! backend issued.

use kube::config::{
    AuthInfo, Cluster, Context, KubeConfigOptions, Kubeconfig, NamedAuthInfo, NamedCluster,
    NamedContext,
};

use crate::cli::KubeFlags;
use crate::error::{Error, Result};

fn kubeconfig_error(what: &str) -> impl FnOnce(kube::config::KubeconfigError) -> Error + '_ {
    move |e| Error::Kubeconfig {
        what: what.to_string(),
        reason: crate::error::one_line(&e),
    }
}

/// Applies kubectl's override flags to the context they select, like kubectl does: `--server`,
/// `--certificate-authority`, `--insecure-skip-tls-verify`, `--tls-server-name` on its cluster,
/// `--token`, `--username`, `--password` on its user, `-n` on the context.
pub fn apply_overrides(mut config: Kubeconfig, flags: &KubeFlags) -> Result<Kubeconfig> {
    let context_name = flags
        .context
        .clone()
        .or_else(|| config.current_context.clone())
        .unwrap_or_else(|| "kubectl-bind".to_string());
    if !config.contexts.iter().any(|c| c.name == context_name) {
        if flags.server.is_none() || flags.context.is_some() {
            return Err(Error::Kubeconfig {
                what: "app cluster kubeconfig".into(),
                reason: format!(
                    "context {context_name:?} not found; pass --context or --kubeconfig (or --server)"
                ),
            });
        }
        config.contexts.push(NamedContext {
            name: context_name.clone(),
            context: Some(Context {
                cluster: context_name.clone(),
                user: Some(context_name.clone()),
                ..Context::default()
            }),
            other: Default::default(),
        });
    }
    config.current_context = Some(context_name.clone());
    let context = config
        .contexts
        .iter_mut()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.as_mut())
        .ok_or_else(|| Error::Kubeconfig {
            what: "app cluster kubeconfig".into(),
            reason: format!("context {context_name:?} is empty"),
        })?;
    if let Some(cluster) = &flags.cluster {
        context.cluster = cluster.clone();
    }
    if let Some(user) = &flags.user {
        context.user = Some(user.clone());
    }
    if let Some(namespace) = &flags.namespace {
        context.namespace = Some(namespace.clone());
    }
    let cluster_name = context.cluster.clone();
    let user_name = context.user.clone().unwrap_or_else(|| cluster_name.clone());
    context.user = Some(user_name.clone());

    let cluster_overrides = flags.server.is_some()
        || flags.certificate_authority.is_some()
        || flags.insecure_skip_tls_verify
        || flags.tls_server_name.is_some();
    if cluster_overrides {
        if !config.clusters.iter().any(|c| c.name == cluster_name) {
            config.clusters.push(NamedCluster {
                name: cluster_name.clone(),
                cluster: Some(Cluster::default()),
                other: Default::default(),
            });
        }
        let cluster = config
            .clusters
            .iter_mut()
            .find(|c| c.name == cluster_name)
            .expect("inserted above");
        let cluster = cluster.cluster.get_or_insert_with(Cluster::default);
        if let Some(server) = &flags.server {
            cluster.server = Some(server.clone());
        }
        if let Some(ca) = &flags.certificate_authority {
            cluster.certificate_authority = Some(ca.display().to_string());
            cluster.certificate_authority_data = None;
        }
        if flags.insecure_skip_tls_verify {
            cluster.insecure_skip_tls_verify = Some(true);
            cluster.certificate_authority = None;
            cluster.certificate_authority_data = None;
        }
        if let Some(name) = &flags.tls_server_name {
            cluster.tls_server_name = Some(name.clone());
        }
    }
    if flags.token.is_some() || flags.username.is_some() || flags.password.is_some() {
        if !config.auth_infos.iter().any(|a| a.name == user_name) {
            config.auth_infos.push(NamedAuthInfo {
                name: user_name.clone(),
                auth_info: Some(AuthInfo::default()),
                other: Default::default(),
            });
        }
        let user = config
            .auth_infos
            .iter_mut()
            .find(|a| a.name == user_name)
            .expect("inserted above");
        let user = user.auth_info.get_or_insert_with(AuthInfo::default);
        if let Some(token) = &flags.token {
            *user = AuthInfo {
                token: Some(token.clone().into()),
                ..AuthInfo::default()
            };
        }
        if let Some(name) = &flags.username {
            user.username = Some(name.clone());
        }
        if let Some(password) = &flags.password {
            user.password = Some(password.clone().into());
        }
    }
    Ok(config)
}

/// The app cluster's client configuration from `--kubeconfig` (else `$KUBECONFIG`, else
/// `~/.kube/config`) and the override flags.
pub async fn app_cluster(flags: &KubeFlags) -> Result<kube::Config> {
    let loaded = match &flags.kubeconfig {
        Some(path) => {
            Some(Kubeconfig::read_from(path).map_err(kubeconfig_error("read --kubeconfig"))?)
        }
        None => match Kubeconfig::from_env().map_err(kubeconfig_error("read $KUBECONFIG"))? {
            Some(config) => Some(config),
            None => Kubeconfig::read().ok(),
        },
    };
    let config = match loaded {
        Some(config) => config,
        None if flags.server.is_some() => Kubeconfig::default(),
        None => {
            return Err(Error::Kubeconfig {
                what: "app cluster kubeconfig".into(),
                reason: "no kubeconfig found; pass --kubeconfig, set $KUBECONFIG or pass --server"
                    .into(),
            });
        }
    };
    let config = apply_overrides(config, flags)?;
    kube::Config::from_custom_kubeconfig(config, &KubeConfigOptions::default())
        .await
        .map_err(kubeconfig_error("load the app cluster kubeconfig"))
}

/// Server URL and namespace of the current context of a provider kubeconfig (the identity of a
/// provider binding space).
pub fn server_and_namespace(kubeconfig: &[u8]) -> Result<(String, Option<String>)> {
    let text = std::str::from_utf8(kubeconfig).map_err(|e| Error::Kubeconfig {
        what: "provider kubeconfig".into(),
        reason: e.to_string(),
    })?;
    let config = Kubeconfig::from_yaml(text).map_err(kubeconfig_error("provider kubeconfig"))?;
    let context_name = config
        .current_context
        .clone()
        .ok_or_else(|| Error::Kubeconfig {
            what: "provider kubeconfig".into(),
            reason: "no current-context".into(),
        })?;
    let context = config
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.as_ref())
        .ok_or_else(|| Error::Kubeconfig {
            what: "provider kubeconfig".into(),
            reason: format!("context {context_name:?} not found"),
        })?;
    let server = config
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .ok_or_else(|| Error::Kubeconfig {
            what: "provider kubeconfig".into(),
            reason: format!("cluster {:?} has no server", context.cluster),
        })?;
    Ok((server, context.namespace.clone()))
}

/// A client for the provider from the kubeconfig the backend issued.
pub async fn provider_client(kubeconfig: &[u8]) -> Result<kube::Client> {
    let text = std::str::from_utf8(kubeconfig).map_err(|e| Error::Kubeconfig {
        what: "provider kubeconfig".into(),
        reason: e.to_string(),
    })?;
    let config = Kubeconfig::from_yaml(text).map_err(kubeconfig_error("provider kubeconfig"))?;
    let config = kube::Config::from_custom_kubeconfig(config, &KubeConfigOptions::default())
        .await
        .map_err(kubeconfig_error("provider kubeconfig"))?;
    kube::Client::try_from(config).map_err(Error::kube("build the provider client"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECONFIG: &str = "apiVersion: v1
kind: Config
clusters:
- name: default
  cluster: {server: https://10.0.0.1:6443, certificate-authority-data: Zm9v}
contexts:
- name: default
  context: {cluster: default, user: default, namespace: cluster-x7k2p}
- name: other
  context: {cluster: default, user: default}
users:
- name: default
  user: {token: abc}
current-context: default
";

    #[test]
    fn server_and_namespace_come_from_the_current_context() {
        assert_eq!(
            server_and_namespace(KUBECONFIG.as_bytes()).unwrap(),
            (
                "https://10.0.0.1:6443".to_string(),
                Some("cluster-x7k2p".to_string())
            )
        );
        assert!(server_and_namespace(b"apiVersion: v1\nkind: Config\n").is_err());
    }

    #[test]
    fn flags_override_the_selected_context_like_kubectl() {
        let config = Kubeconfig::from_yaml(KUBECONFIG).unwrap();
        let flags = KubeFlags {
            context: Some("other".into()),
            namespace: Some("ns1".into()),
            server: Some("https://127.0.0.1:1".into()),
            token: Some("t2".into()),
            insecure_skip_tls_verify: true,
            ..KubeFlags::default()
        };
        let config = apply_overrides(config, &flags).unwrap();
        assert_eq!(config.current_context.as_deref(), Some("other"));
        let context = config.contexts[1].context.as_ref().unwrap();
        assert_eq!(context.namespace.as_deref(), Some("ns1"));
        let cluster = config.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://127.0.0.1:1"));
        assert_eq!(cluster.insecure_skip_tls_verify, Some(true));
        assert!(cluster.certificate_authority_data.is_none());
        let user = config.auth_infos[0].auth_info.as_ref().unwrap();
        use secrecy::ExposeSecret as _;
        assert_eq!(user.token.as_ref().unwrap().expose_secret(), "t2");

        let missing = KubeFlags {
            context: Some("nope".into()),
            ..KubeFlags::default()
        };
        let err =
            apply_overrides(Kubeconfig::from_yaml(KUBECONFIG).unwrap(), &missing).unwrap_err();
        assert!(err.to_string().contains("\"nope\" not found"), "{err}");

        // No kubeconfig at all: --server and --token make one.
        let bare = KubeFlags {
            server: Some("https://127.0.0.1:2".into()),
            token: Some("t".into()),
            ..KubeFlags::default()
        };
        let config = apply_overrides(Kubeconfig::default(), &bare).unwrap();
        assert_eq!(config.current_context.as_deref(), Some("kubectl-bind"));
        assert_eq!(config.clusters.len(), 1);
        assert_eq!(config.auth_infos.len(), 1);
    }
}
