//! The consumer namespace `klutch-bind`, where the bindings, the provider kubeconfig Secrets and
//! the konnector live.

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use klutch_sdk::api::wellknown::CONSUMER_NAMESPACE;
use kube::api::{Api, PostParams};

use crate::error::{Error, Result};
use crate::io::Io;
use crate::undo::Undo;

/// Creates `klutch-bind` if missing; returns its UID.
pub async fn ensure_namespace(
    io: &mut Io,
    client: &kube::Client,
    undo: &mut Undo,
) -> Result<String> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let mut existing = namespaces
        .get_opt(CONSUMER_NAMESPACE)
        .await
        .map_err(Error::kube("read namespace klutch-bind"))?;
    if existing
        .as_ref()
        .is_some_and(|ns| ns.metadata.deletion_timestamp.is_some())
    {
        // A namespace being deleted (e.g. by an earlier, rolled-back run) cannot take new
        // objects: wait until it is gone, then create it again.
        io.progress_part("⏳ Waiting for namespace klutch-bind to finish terminating");
        let started = tokio::time::Instant::now();
        while existing.is_some() {
            if started.elapsed() > Duration::from_secs(120) {
                io.progress("");
                return Err(Error::Usage(
                    "namespace klutch-bind is still terminating after 2 minutes; check what blocks its deletion (kubectl get ns klutch-bind -o yaml)".into(),
                ));
            }
            tokio::select! {
                () = io.cancel.cancelled() => return Err(Error::Interrupted),
                () = tokio::time::sleep(Duration::from_secs(1)) => io.progress_part("."),
            }
            existing = namespaces
                .get_opt(CONSUMER_NAMESPACE)
                .await
                .map_err(Error::kube("read namespace klutch-bind"))?;
        }
        io.progress("");
    }
    let namespace = match existing {
        Some(ns) => ns,
        None => {
            let ns = Namespace {
                metadata: ObjectMeta {
                    name: Some(CONSUMER_NAMESPACE.into()),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            };
            let created = namespaces
                .create(&PostParams::default(), &ns)
                .await
                .map_err(Error::kube("create namespace klutch-bind"))?;
            undo.created(
                kube::api::ApiResource::erase::<Namespace>(&()),
                None,
                CONSUMER_NAMESPACE,
            );
            io.progress(format!("📦 Created {CONSUMER_NAMESPACE} namespace."));
            created
        }
    };
    namespace.metadata.uid.ok_or_else(|| Error::Kubeconfig {
        what: "namespace klutch-bind".into(),
        reason: "has no UID".into(),
    })
}
