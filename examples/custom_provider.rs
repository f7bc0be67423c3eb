//! A complete Crossplane provider for a made-up "bucket service", built only on
//! `klutch_sdk::crossplane`: the `Bucket` managed resource, its `ProviderConfig` and the calls
//! against the service; the SDK does the rest (finalizer, external-name, policies, conditions,
//! Events, ProviderConfigUsages, the connection Secret). The service's REST API (JSON, bearer
//! token): `GET`, `PUT` (create or update) and `DELETE /buckets/{id}`, 404 when there is none.
//!
//! ```text
//! cargo run -p klutch-examples --example custom_provider -- --print-crds | kubectl apply -f -
//! cargo run -p klutch-examples --example custom_provider    # reconciles in KUBECONFIG's cluster
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use klutch_sdk::crossplane::api::{
    Condition, ProviderConfigUsage, ResourceSpec, SecretKeySelector, conditions_schema,
};
use klutch_sdk::crossplane::{
    Creation, Cx, Deletion, ExternalClient, ExternalError, Managed as _, Observation, Options,
    Provider, Settings, conditions,
};
use kube::{Api, CustomResource, CustomResourceExt as _, ResourceExt as _};
use reqwest::{Method, StatusCode};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The provider's API group.
pub const GROUP: &str = "buckets.example.org";
/// Its version.
pub const VERSION: &str = "v1alpha1";

/// A bucket at the bucket service; its id (external name) defaults to the object's name.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "buckets.example.org",
    version = "v1alpha1",
    kind = "Bucket",
    status = "BucketStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct BucketSpec {
    /// The desired bucket.
    pub for_provider: BucketParameters,
    /// The common managed-resource fields.
    #[serde(flatten)]
    pub resource: ResourceSpec,
}

/// `spec.forProvider` of a Bucket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BucketParameters {
    /// Where the bucket lives.
    pub region: String,
}

/// The observed state of a Bucket.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BucketStatus {
    /// `Ready` and `Synced`.
    #[serde(default)]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The generation the last reconcile acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

klutch_sdk::impl_managed!(Bucket, BucketStatus);

/// Where the bucket service is and which Secret key holds its token.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "buckets.example.org",
    version = "v1alpha1",
    kind = "ProviderConfig"
)]
#[serde(rename_all = "camelCase")]
pub struct ProviderConfigSpec {
    /// Base URL of the bucket service.
    pub url: String,
    /// The API token.
    pub token_secret_ref: SecretKeySelector,
}

/// Every CRD of the provider.
pub fn crds() -> Vec<CustomResourceDefinition> {
    let usage = ProviderConfigUsage::crd(GROUP, VERSION, &["buckets"]);
    vec![Bucket::crd(), ProviderConfig::crd(), usage]
}

/// A bucket as the bucket service sends and receives it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BucketState {
    /// The region.
    pub region: String,
    /// Set by the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

type Ctx<'a> = Cx<'a, Bucket, reqwest::Client>;
type Res<T> = Result<T, ExternalError>;

/// A client of one bucket service (what `connect` returns).
pub struct Service {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Service {
    /// One call; `None` for 404 and bodiless answers.
    async fn call(
        &self,
        m: Method,
        id: &str,
        body: Option<&BucketState>,
    ) -> Res<Option<BucketState>> {
        let url = format!("{}/buckets/{id}", self.url);
        let mut req = self.http.request(m, &url).bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(body);
        }
        let unreachable = |e| ExternalError::with_source(format!("cannot reach {url}"), e);
        let resp = req.send().await.map_err(unreachable)?;
        match resp.status() {
            StatusCode::NOT_FOUND | StatusCode::NO_CONTENT => Ok(None),
            s if s.is_success() => Ok(Some(resp.json().await.map_err(unreachable)?)),
            s => Err(ExternalError::user(format!(
                "the bucket service answered {s}: {}",
                resp.text().await.unwrap_or_default()
            ))),
        }
    }
}

/// The bucket's id at the service: the external name, by default the object's name.
fn bucket_id(mr: &Bucket) -> String {
    mr.external_name().unwrap_or(&mr.name_any()).to_owned()
}

/// What the connection Secret holds.
fn details(b: &BucketState) -> BTreeMap<String, String> {
    let mut d = BTreeMap::from([("region".to_owned(), b.region.clone())]);
    d.extend(b.endpoint.clone().map(|e| ("endpoint".to_owned(), e)));
    d
}

/// The Bucket kind's external operations; the provider state is a shared HTTP client.
pub struct Buckets;

impl ExternalClient<Bucket, reqwest::Client> for Buckets {
    const CONTROLLER: &'static str = "bucket";
    type Conn = Service;

    async fn connect(&self, cx: &Ctx<'_>, mr: &Bucket) -> Res<Service> {
        let failed =
            |what: String| move |e| ExternalError::with_source(format!("cannot get {what}"), e);
        let name = mr.provider_config_name();
        let pc = Api::<ProviderConfig>::all(cx.client().clone())
            .get(name)
            .await;
        let pc = pc.map_err(failed(format!("ProviderConfig {name}")))?;
        let sel = &pc.spec.token_secret_ref;
        let what = format!("Secret {}/{} key {}", sel.namespace, sel.name, sel.key);
        let secrets = Api::<Secret>::namespaced(cx.client().clone(), &sel.namespace);
        let data = secrets
            .get(&sel.name)
            .await
            .map_err(failed(what.clone()))?
            .data;
        let token = data.as_ref().and_then(|d| d.get(&sel.key));
        let token = token.ok_or_else(|| ExternalError::user(format!("{what} is missing")))?;
        Ok(Service {
            http: cx.state().clone(),
            url: pc.spec.url.trim_end_matches('/').to_owned(),
            token: String::from_utf8_lossy(&token.0).trim().to_owned(),
        })
    }

    async fn observe(&self, api: &Service, _: &Ctx<'_>, mr: &mut Bucket) -> Res<Observation> {
        let Some(found) = api.call(Method::GET, &bucket_id(mr), None).await? else {
            return Ok(Observation::default());
        };
        mr.set_condition(conditions::available());
        Ok(Observation {
            exists: true,
            up_to_date: found.region == mr.spec.for_provider.region,
            connection_details: Some(details(&found)),
            requeue_after: None,
        })
    }

    async fn create(&self, api: &Service, cx: &Ctx<'_>, mr: &mut Bucket) -> Res<Creation> {
        let creation = self.update(api, cx, mr).await?;
        mr.set_external_name(bucket_id(mr));
        Ok(creation)
    }

    async fn update(&self, api: &Service, _: &Ctx<'_>, mr: &mut Bucket) -> Res<Creation> {
        let region = mr.spec.for_provider.region.clone();
        let want = BucketState {
            region,
            endpoint: None,
        };
        let put = api.call(Method::PUT, &bucket_id(mr), Some(&want)).await?;
        Ok(Creation {
            connection_details: put.as_ref().map(details),
            requeue_after: None,
        })
    }

    async fn delete(&self, api: &Service, _: &Ctx<'_>, mr: &mut Bucket) -> Res<Deletion> {
        api.call(Method::DELETE, &bucket_id(mr), None).await?;
        Ok(Deletion::default())
    }
}

/// Runs the Bucket controller until `shutdown` completes.
pub async fn run(
    client: kube::Client,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let settings = Settings::new("provider-buckets", GROUP, VERSION);
    let provider = Provider::builder(client, settings)
        .options(options)
        .build(reqwest::Client::new());
    klutch_sdk::crossplane::run::<Bucket, _, _>(Arc::new(provider), Buckets, shutdown).await;
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "--print-crds") {
        for crd in crds() {
            println!("---\n{}", serde_json::to_string_pretty(&crd)?);
        }
        return Ok(());
    }
    klutch_sdk::tls::install_crypto_provider();
    let client = kube::Client::try_default().await?;
    let ctrl_c = async { tokio::signal::ctrl_c().await.unwrap_or_default() };
    run(client, Options::default(), ctrl_c).await;
    Ok(())
}
