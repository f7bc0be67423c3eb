//! The reference backend: APIServiceExportTemplates (in any namespace) declare which provider CRDs
//! are bindable and with which permission claims.
//!
//! Templates and CRDs are cached by watches (Klutch lists both on every request, spec §7 item
//! 10). A CRD is offered when a template matches its group and plural, and the template's
//! `version` (when set) is one the CRD serves; several matching templates give one card (the
//! first by namespace/name wins); cluster-scoped CRDs only under `Cluster` consumer scope.

use std::future::Future;
use std::sync::Arc;

use futures::StreamExt as _;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Client, ResourceExt as _};

use super::contract::{Authenticator, BindingBackend, ExportSpecError, Offering, VerifiedIdentity};
use super::controllers::lenient::Lenient;
use crate::api::convert::export_spec_from_crd;
use crate::api::export::{ClusterScopedIsolation, Scope};
use crate::api::export_request::ExportRequestResource;
use crate::api::naming::binding_name;
use crate::api::{APIServiceExportSpec, APIServiceExportTemplate};

/// Settings of the reference backend.
#[derive(Clone, Debug)]
pub struct TemplateBackendConfig {
    /// `--pretty-name`.
    pub pretty_name: String,
    /// `--consumer-scope`: the exports' `informerScope`, and whether cluster-scoped CRDs are
    /// offered and tenants get cluster-wide rights.
    pub consumer_scope: Scope,
    /// `--cluster-scoped-isolation` for cluster-scoped CRDs (only `Prefixed` is implemented).
    pub cluster_scoped_isolation: ClusterScopedIsolation,
}

/// The template-driven backend with authenticator `A`.
pub struct TemplateBackend<A> {
    auth: A,
    config: TemplateBackendConfig,
    client: Client,
    /// Lenient: a template that does not decode is skipped (and logged), never stalls the cache.
    templates: Store<Lenient<APIServiceExportTemplate>>,
    crds: Store<CustomResourceDefinition>,
}

impl<A> std::fmt::Debug for TemplateBackend<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemplateBackend")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn cache<K>(api: Api<K>) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, watcher::Config::default()))
        .default_backoff()
        .touched_objects();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(item) = stream.next().await {
            if let Err(e) = item {
                tracing::warn!(error = %e, "catalogue watch failed; retrying");
            }
        }
    });
    reader
}

impl<A: Authenticator> TemplateBackend<A> {
    /// Starts the caches and waits until both have their first list.
    pub async fn start(
        client: Client,
        auth: A,
        config: TemplateBackendConfig,
    ) -> Result<Arc<Self>, kube::Error> {
        let templates = cache(Api::<Lenient<APIServiceExportTemplate>>::all(
            client.clone(),
        ));
        let crds = cache(Api::<CustomResourceDefinition>::all(client.clone()));
        // Fail early when the template CRD is not installed.
        Api::<Lenient<APIServiceExportTemplate>>::all(client.clone())
            .list(&kube::api::ListParams::default().limit(1))
            .await?;
        let _ = templates.wait_until_ready().await;
        let _ = crds.wait_until_ready().await;
        Ok(Arc::new(TemplateBackend {
            auth,
            config,
            client,
            templates,
            crds,
        }))
    }

    /// The template selecting `group`/`resource`, if any, and whether its version matches `crd`.
    fn template_for(
        &self,
        crd: &CustomResourceDefinition,
    ) -> Option<Arc<APIServiceExportTemplate>> {
        let mut matching: Vec<_> = self
            .templates
            .state()
            .into_iter()
            .filter_map(|t| match &*t {
                Lenient::Valid(t) => Some(Arc::new(t.clone())),
                Lenient::Invalid(bad) => {
                    tracing::warn!(
                        namespace = bad.metadata.namespace.as_deref().unwrap_or_default(),
                        name = bad.metadata.name.as_deref().unwrap_or_default(),
                        error = %bad.error,
                        "ignoring an APIServiceExportTemplate that does not decode"
                    );
                    None
                }
            })
            .filter(|t| {
                let sel = &t.spec.api_service_selector;
                sel.group == crd.spec.group
                    && sel.resource == crd.spec.names.plural
                    && sel.version.as_ref().is_none_or(|v| {
                        crd.spec
                            .versions
                            .iter()
                            .any(|cv| cv.served && &cv.name == v)
                    })
            })
            .collect();
        matching.sort_by_key(|t| (t.namespace(), t.name_any()));
        matching.into_iter().next()
    }

    fn offered(&self, crd: &CustomResourceDefinition) -> bool {
        crd.spec.scope == "Namespaced" || self.config.consumer_scope == Scope::Cluster
    }
}

impl<A: Authenticator> BindingBackend for TemplateBackend<A> {
    type Auth = A;

    fn authenticator(&self) -> &A {
        &self.auth
    }

    fn pretty_name(&self) -> &str {
        &self.config.pretty_name
    }

    fn catalogue(
        &self,
        _who: &VerifiedIdentity,
    ) -> impl Future<Output = Result<Vec<Offering>, ExportSpecError>> + Send {
        let mut crds = self.crds.state();
        crds.sort_by_key(|c| c.name_any());
        let offerings = crds
            .iter()
            .filter(|crd| self.offered(crd))
            .filter_map(|crd| {
                let template = self.template_for(crd)?;
                Some(Offering::from_crd(
                    crd,
                    template.spec.permission_claims.clone(),
                ))
            })
            .collect();
        async { Ok(offerings) }
    }

    async fn export_spec(
        &self,
        _cluster_ns: &str,
        resource: &ExportRequestResource,
    ) -> Result<APIServiceExportSpec, ExportSpecError> {
        let name = binding_name(&resource.group, &resource.resource);
        let crd = Api::<CustomResourceDefinition>::all(self.client.clone())
            .get_opt(&name)
            .await
            .map_err(ExportSpecError::Kube)?
            .ok_or_else(|| ExportSpecError::CrdNotFound(name.clone()))?;
        if !self.offered(&crd) {
            return Err(ExportSpecError::NotOffered(name));
        }
        let template = self
            .template_for(&crd)
            .ok_or_else(|| ExportSpecError::NotOffered(name.clone()))?;
        export_spec_from_crd(
            &crd,
            template.spec.permission_claims.clone(),
            self.config.consumer_scope,
            Some(self.config.cluster_scoped_isolation),
        )
        .map_err(|e| ExportSpecError::CrdInvalid {
            crd: name,
            message: e.to_string(),
        })
    }

    fn cluster_scoped_consumers(&self) -> bool {
        self.config.consumer_scope == Scope::Cluster
    }
}
