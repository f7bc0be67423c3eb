//! Starting the controllers of one provider process.

use std::future::Future;
use std::sync::Arc;

use futures::FutureExt as _;
use klutch_sdk::crossplane::{self, Settings};
use tokio::sync::watch;

use super::api::{self, Backup, Restore, ServiceBinding, ServiceInstance};
use super::controllers::{
    self, BackupController, BindingController, InstanceController, RestoreController,
};
use super::meta::{FIELD_MANAGER, PROVIDER_ANNOTATIONS};
use super::metrics::Metrics;
use super::options::Options;
use super::state::{Provider, State};

/// The runtime settings of provider-anynines: field manager and Event reporter
/// `provider-anynines`, ProviderConfigUsages in `dataservices.anynines.com/v1`, and the
/// provider's bookkeeping annotations.
pub fn settings() -> Settings {
    PROVIDER_ANNOTATIONS.iter().fold(
        Settings::new(FIELD_MANAGER, api::GROUP, api::VERSION),
        |s, a| s.owned_annotation(*a),
    )
}

/// Runs every controller until `shutdown` completes.
///
/// ```no_run
/// # async fn demo(client: kube::Client) {
/// use std::sync::Arc;
/// let metrics = Arc::new(klutch_a9s::provider::metrics::Metrics::new());
/// klutch_a9s::provider::run::controllers(client, Default::default(), metrics, std::future::pending()).await;
/// # }
/// ```
pub async fn controllers(
    client: kube::Client,
    options: Options,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let provider: Arc<Provider> = Arc::new(
        crossplane::Provider::builder(client, settings())
            .options(options.reconciler())
            .metrics(metrics.reconcile().clone())
            .build(State::new(options, metrics)),
    );
    let (tx, rx) = watch::channel(false);
    let stop = move || {
        let mut rx = rx.clone();
        async move {
            let _ = rx.wait_for(|v| *v).await;
        }
    };
    tokio::spawn(shutdown.map(move |_| {
        let _ = tx.send(true);
    }));
    tokio::join!(
        crossplane::run::<ServiceInstance, _, _>(provider.clone(), InstanceController, stop()),
        crossplane::run::<ServiceBinding, _, _>(provider.clone(), BindingController, stop()),
        crossplane::run::<Backup, _, _>(provider.clone(), BackupController, stop()),
        crossplane::run::<Restore, _, _>(provider.clone(), RestoreController, stop()),
        controllers::provider_config::run(provider.clone(), stop()),
    );
}
