//! Start two real local clusters, show that they are isolated, and print how to reach them.
//!
//! ```text
//! testbins/build.sh          # once: builds etcd, kube-apiserver, ... from pinned Go modules
//! cargo run -p klutch-examples --example local_clusters
//! ```

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use klutch_sdk::testenv::TestEnv;
use kube::api::{Api, ObjectMeta, PostParams};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let started = std::time::Instant::now();
    let env = TestEnv::builder()
        .cluster("control-plane")
        .cluster("app")
        .start()
        .await?;
    println!(
        "two clusters ready in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    // Write into the app cluster ...
    let app: Api<ConfigMap> = Api::namespaced(env["app"].client().await?, "default");
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("greeting".into()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            "hello".to_string(),
            "from the app cluster".to_string(),
        )])),
        ..ConfigMap::default()
    };
    app.create(&PostParams::default(), &cm).await?;

    // ... and the control plane does not see it.
    let control_plane: Api<ConfigMap> =
        Api::namespaced(env["control-plane"].client().await?, "default");
    let there = app.get_opt("greeting").await?.is_some();
    let here = control_plane.get_opt("greeting").await?.is_some();
    println!("ConfigMap greeting: in app = {there}, in control-plane = {here}");

    // A restricted user gets exactly what RBAC grants: nothing yet.
    let alice = env["app"].identity("alice", &["developers"])?;
    let denied = Api::<ConfigMap>::namespaced(alice.client().await?, "default")
        .list(&Default::default())
        .await;
    println!(
        "alice lists ConfigMaps: {}",
        if denied.is_err() {
            "forbidden"
        } else {
            "allowed"
        }
    );

    for cluster in env.clusters() {
        println!(
            "{:<14} {}  kubeconfig {}",
            cluster.name(),
            cluster.url(),
            cluster.kubeconfig_path().display()
        );
    }
    println!(
        "dropping the environment stops every process and removes {}",
        env.dir().display()
    );
    Ok(())
}
