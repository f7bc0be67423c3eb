//! Starting the controllers of one provider process.

use std::future::Future;
use std::sync::Arc;

use futures::FutureExt as _;
use tokio::sync::watch;

use crate::api::{Backup, Restore, ServiceBinding, ServiceInstance};
use crate::controllers::{
    BackupController, BindingController, InstanceController, RestoreController,
};
use crate::managed::reconciler::{self, Options, Shared};
use crate::metrics::Metrics;

/// Runs every controller until `shutdown` completes.
///
/// ```no_run
/// # async fn demo(client: kube::Client) {
/// use std::sync::Arc;
/// let metrics = Arc::new(provider_anynines::metrics::Metrics::new());
/// provider_anynines::run::controllers(client, Default::default(), metrics, std::future::pending()).await;
/// # }
/// ```
pub async fn controllers(
    client: kube::Client,
    options: Options,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let shared = Arc::new(Shared::new(client, options, metrics));
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
        reconciler::run::<ServiceInstance, _>(shared.clone(), InstanceController, stop()),
        reconciler::run::<ServiceBinding, _>(shared.clone(), BindingController, stop()),
        reconciler::run::<Backup, _>(shared.clone(), BackupController, stop()),
        reconciler::run::<Restore, _>(shared.clone(), RestoreController, stop()),
        crate::controllers::provider_config::run(shared.clone(), stop()),
    );
}
