//! A Crossplane managed-resource runtime: the Rust counterpart of
//! [crossplane-runtime](https://github.com/crossplane/crossplane-runtime)'s managed reconciler
//! (v1.20), for writing a Crossplane provider in Rust.
//!
//! A kind becomes a managed resource by implementing [`Managed`] (one
//! [`impl_managed!`](crate::impl_managed) line for a kube-derived type whose spec flattens
//! [`api::ResourceSpec`] and whose status has `conditions` and `observedGeneration`) and
//! [`ExternalClient`] (Connect, Observe, Create, Update, Delete against the external API).
//! [`run`] then drives it like crossplane-runtime does: management and deletion policies, the
//! pause annotation, the finalizer, external-name and the create-pending guard,
//! ProviderConfigUsage tracking, connection Secrets, `Ready`/`Synced` conditions, Events,
//! requeues and backoff.
//!
//! Nothing here names a provider: the field manager, the Event reporter, the API group of the
//! ProviderConfigUsages and the provider's own bookkeeping annotations are [`Settings`]; the
//! metric names carry the prefix of the provider's Prometheus registry ([`ReconcileMetrics`]);
//! the provider's own state (e.g. cached API clients) is the `S` of [`Provider<S>`].
//!
//! | Module | Concern |
//! |---|---|
//! | [`api`] | the common spec/status fields, `Condition`, the ProviderConfigUsage kind |
//! | [`managed`] | the [`Managed`] trait: ids, conditions, readiness |
//! | [`conditions`] | `Ready` / `Synced` with truthful reasons; `lastTransitionTime` only on status changes |
//! | [`policies`] | `managementPolicies` (incl. observe-only) and `deletionPolicy` |
//! | [`meta`] | external-name, create-pending/succeeded/failed, pause annotation, finalizers, labels |
//! | [`store`] | server-side-apply writes of owned metadata and status (write-ahead) |
//! | [`connection`] | `writeConnectionSecretToRef` Secrets |
//! | [`usage`] | ProviderConfigUsage tracking and counting |
//! | [`error`] | curated user-facing errors with requeue hints |
//! | [`settings`], [`provider`], [`metrics`] | what the provider supplies and shares |
//! | [`reconciler`] | the algorithm and the controller loop |
//!
//! A provider for a made-up bucket API, in full (`examples/custom_provider.rs` in the
//! repository is the same with an HTTP client and a test on a real apiserver):
//!
//! ```no_run
//! use std::collections::BTreeMap;
//! use klutch_sdk::crossplane::api::{Condition, ResourceSpec, conditions_schema};
//! use klutch_sdk::crossplane::{
//!     Creation, Cx, Deletion, ExternalClient, ExternalError, Managed as _, Observation,
//!     Provider, Settings, conditions,
//! };
//! use kube::CustomResource;
//! use schemars::JsonSchema;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
//! #[kube(group = "buckets.example.org", version = "v1alpha1", kind = "Bucket", status = "BucketStatus")]
//! #[serde(rename_all = "camelCase")]
//! pub struct BucketSpec {
//!     pub for_provider: BucketParameters,
//!     #[serde(flatten)]
//!     pub resource: ResourceSpec,
//! }
//!
//! #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
//! pub struct BucketParameters {
//!     pub region: String,
//! }
//!
//! #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
//! #[serde(rename_all = "camelCase")]
//! pub struct BucketStatus {
//!     #[serde(default)]
//!     #[schemars(schema_with = "conditions_schema")]
//!     pub conditions: Vec<Condition>,
//!     pub observed_generation: Option<i64>,
//! }
//!
//! klutch_sdk::impl_managed!(Bucket, BucketStatus);
//!
//! /// The external API (here: a map in memory).
//! type Store = std::sync::Mutex<BTreeMap<String, String>>;
//!
//! struct Buckets;
//!
//! impl ExternalClient<Bucket, Store> for Buckets {
//!     const CONTROLLER: &'static str = "bucket";
//!     type Conn = ();
//!
//!     async fn connect(&self, _cx: &Cx<'_, Bucket, Store>, _mr: &Bucket) -> Result<(), ExternalError> {
//!         Ok(())
//!     }
//!     async fn observe(&self, _: &(), cx: &Cx<'_, Bucket, Store>, mr: &mut Bucket) -> Result<Observation, ExternalError> {
//!         let id = mr.metadata.name.clone().unwrap_or_default();
//!         let Some(region) = cx.state().lock().unwrap().get(&id).cloned() else {
//!             return Ok(Observation::default());
//!         };
//!         mr.set_condition(conditions::available());
//!         Ok(Observation {
//!             exists: true,
//!             up_to_date: region == mr.spec.for_provider.region,
//!             connection_details: Some(BTreeMap::from([("region".into(), region)])),
//!             ..Observation::default()
//!         })
//!     }
//!     async fn create(&self, _: &(), cx: &Cx<'_, Bucket, Store>, mr: &mut Bucket) -> Result<Creation, ExternalError> {
//!         let id = mr.metadata.name.clone().unwrap_or_default();
//!         cx.state().lock().unwrap().insert(id.clone(), mr.spec.for_provider.region.clone());
//!         mr.set_external_name(id);
//!         Ok(Creation::default())
//!     }
//!     async fn update(&self, c: &(), cx: &Cx<'_, Bucket, Store>, mr: &mut Bucket) -> Result<Creation, ExternalError> {
//!         self.create(c, cx, mr).await
//!     }
//!     async fn delete(&self, _: &(), cx: &Cx<'_, Bucket, Store>, mr: &mut Bucket) -> Result<Deletion, ExternalError> {
//!         cx.state().lock().unwrap().remove(mr.external_name().unwrap_or_default());
//!         Ok(Deletion::default())
//!     }
//! }
//!
//! # async fn start() -> Result<(), kube::Error> {
//! let client = kube::Client::try_default().await?;
//! let settings = Settings::new("provider-buckets", "buckets.example.org", "v1alpha1");
//! let provider = std::sync::Arc::new(Provider::builder(client, settings).build(Store::default()));
//! klutch_sdk::crossplane::run::<Bucket, _, _>(provider, Buckets, std::future::pending()).await;
//! # Ok(()) }
//! ```

pub mod api;
pub mod conditions;
pub mod connection;
pub mod error;
pub mod managed;
pub mod meta;
pub mod metrics;
pub mod policies;
pub mod provider;
pub mod reconciler;
pub mod settings;
pub mod store;
pub mod usage;

pub use error::ExternalError;
pub use managed::{Managed, ManagedStatus};
pub use metrics::ReconcileMetrics;
pub use policies::Policies;
pub use provider::{Provider, ProviderBuilder};
pub use reconciler::{Creation, Cx, Deletion, ExternalClient, Observation, run};
pub use settings::{Options, Settings};
