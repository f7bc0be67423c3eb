//! `examples/custom_provider.rs` against a real kube-apiserver and a fake bucket service on
//! 127.0.0.1: a Bucket is created at the service, becomes Ready and Synced, gets its connection
//! Secret, follows a spec change, and its deletion deletes the bucket and releases the object.

#[allow(dead_code)]
#[path = "../custom_provider.rs"]
mod custom_provider;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use custom_provider::{
    Bucket, BucketParameters, BucketSpec, BucketState, GROUP, ProviderConfig, ProviderConfigSpec,
    VERSION,
};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use klutch_sdk::crossplane::api::{
    ProviderConfigUsage, ResourceSpec, SecretKeySelector, SecretReference,
};
use klutch_sdk::crossplane::{Managed as _, Options, meta};
use klutch_sdk::testenv::{TestEnv, eventually, install_crd};
use kube::ResourceExt as _;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};

const TOKEN: &str = "s3cret";
const WAIT: Duration = Duration::from_secs(60);

type Store = Arc<Mutex<BTreeMap<String, BucketState>>>;

fn authorized(h: &HeaderMap) -> Result<(), StatusCode> {
    let ok = h.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer s3cret");
    ok.then_some(()).ok_or(StatusCode::UNAUTHORIZED)
}

/// The fake bucket service: buckets in a map, endpoints derived from the id.
async fn bucket_service(store: Store) -> String {
    type Answer = Result<Json<BucketState>, StatusCode>;
    async fn read(State(s): State<Store>, Path(id): Path<String>, h: HeaderMap) -> Answer {
        authorized(&h)?;
        let found = s.lock().unwrap().get(&id).cloned();
        found.map(Json).ok_or(StatusCode::NOT_FOUND)
    }
    async fn write(
        State(s): State<Store>,
        Path(id): Path<String>,
        h: HeaderMap,
        Json(mut b): Json<BucketState>,
    ) -> Answer {
        authorized(&h)?;
        b.endpoint = Some(format!("https://{id}.buckets.example.org"));
        s.lock().unwrap().insert(id, b.clone());
        Ok(Json(b))
    }
    async fn remove(State(s): State<Store>, Path(id): Path<String>, h: HeaderMap) -> StatusCode {
        if authorized(&h).is_err() {
            return StatusCode::UNAUTHORIZED;
        }
        match s.lock().unwrap().remove(&id) {
            Some(_) => StatusCode::NO_CONTENT,
            None => StatusCode::NOT_FOUND,
        }
    }
    let app = axum::Router::new()
        .route("/buckets/{id}", get(read).put(write).delete(remove))
        .with_state(store);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test]
async fn a_bucket_is_created_published_updated_and_deleted() {
    klutch_sdk::tls::install_crypto_provider();
    let env = TestEnv::shared().await.expect("shared environment");
    let client = env["control-plane"].client().await.unwrap();
    for crd in custom_provider::crds() {
        install_crd(&client, &crd).await.unwrap();
    }
    let store = Store::default();
    let url = bucket_service(store.clone()).await;

    let ns = "bucket-provider-test";
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(ns.into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
    let token = Secret {
        metadata: ObjectMeta {
            name: Some("bucket-token".into()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([("token".into(), ByteString(TOKEN.into()))])),
        ..Secret::default()
    };
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &token)
        .await
        .unwrap();
    let pc = ProviderConfig::new(
        "bucket-service",
        ProviderConfigSpec {
            url: url.clone(),
            token_secret_ref: SecretKeySelector {
                name: "bucket-token".into(),
                namespace: ns.into(),
                key: "token".into(),
            },
        },
    );
    Api::<ProviderConfig>::all(client.clone())
        .create(&PostParams::default(), &pc)
        .await
        .unwrap();

    let options = Options {
        poll: Duration::from_secs(2),
        ..Options::default()
    };
    let provider = tokio::spawn(custom_provider::run(
        client.clone(),
        options,
        std::future::pending(),
    ));

    let mut resource = ResourceSpec::default();
    resource.provider_config_ref.name = "bucket-service".into();
    resource.write_connection_secret_to_ref = Some(SecretReference {
        name: "photos-bucket".into(),
        namespace: ns.into(),
    });
    let bucket = Bucket::new(
        "photos",
        BucketSpec {
            for_provider: BucketParameters {
                region: "eu-1".into(),
            },
            resource,
        },
    );
    let buckets = Api::<Bucket>::all(client.clone());
    buckets
        .create(&PostParams::default(), &bucket)
        .await
        .unwrap();

    // Created at the service, Ready and Synced, with external name and finalizer.
    let ready = eventually("Bucket Ready and Synced", WAIT, || async {
        let b = buckets.get("photos").await.ok()?;
        (b.is_ready() && b.is_synced()).then_some(b)
    })
    .await
    .unwrap();
    assert_eq!(ready.external_name(), Some("photos"));
    assert!(ready.finalizers().iter().any(|f| f == meta::FINALIZER));
    assert_eq!(store.lock().unwrap()["photos"].region, "eu-1");

    // The connection Secret and the ProviderConfigUsage.
    let secrets = Api::<Secret>::namespaced(client.clone(), ns);
    let secret = eventually("connection Secret", WAIT, || async {
        secrets.get("photos-bucket").await.ok()
    })
    .await
    .unwrap();
    assert_eq!(secret.type_.as_deref(), Some(meta::CONNECTION_SECRET_TYPE));
    let data = secret.data.unwrap();
    assert_eq!(data["region"].0, b"eu-1");
    assert_eq!(data["endpoint"].0, b"https://photos.buckets.example.org");
    let usage_kind = ProviderConfigUsage::api_resource(GROUP, VERSION);
    let usages = Api::<ProviderConfigUsage>::all_with(client.clone(), &usage_kind);
    let usage = usages.get(&ready.uid().unwrap()).await.unwrap();
    assert_eq!(usage.provider_config_ref.name, "bucket-service");
    assert_eq!(usage.resource_ref.kind, "Bucket");

    // A spec change reaches the service and the Secret.
    buckets
        .patch(
            "photos",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"forProvider": {"region": "us-2"}}})),
        )
        .await
        .unwrap();
    eventually(
        "region us-2 at the service and in the Secret",
        WAIT,
        || async {
            let at_service = store
                .lock()
                .unwrap()
                .get("photos")
                .map(|b| b.region.clone());
            let s = secrets.get("photos-bucket").await.ok()?;
            let published = s.data?.get("region").map(|r| r.0.clone());
            (at_service.as_deref() == Some("us-2") && published.as_deref() == Some(&b"us-2"[..]))
                .then_some(())
        },
    )
    .await
    .unwrap();

    // Deletion deletes the bucket, the Secret and then releases the object.
    buckets
        .delete("photos", &DeleteParams::default())
        .await
        .unwrap();
    eventually("Bucket gone", WAIT, || async {
        matches!(buckets.get_opt("photos").await, Ok(None)).then_some(())
    })
    .await
    .unwrap();
    assert!(store.lock().unwrap().is_empty());
    assert!(secrets.get_opt("photos-bucket").await.unwrap().is_none());
    provider.abort();
}
