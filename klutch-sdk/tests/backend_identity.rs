//! Binding spaces belong to one identity: issuer, subject and consumer cluster, in one backend
//! instance (issue #19 items 5 and 6), on the real provider cluster with real Dex.
//!
//! - A user of a second issuer with the same `sub` as a Dex user gets a space of their own, and
//!   its token cannot read the Dex user's space (Klutch handed out the Dex user's namespace).
//! - Another backend instance (namespace prefix) gets a space of its own for the same identity.
//! - Spaces created under Klutch's old key `<sub>#<cid>` are handed out only to the issuer the
//!   operator names, and adopted then.
//! - Two replicas creating one identity's space at the same moment end with one space, many
//!   times over (Klutch: one race in eight made two).

mod backend_common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use backend_common::{browser_bind, fixture, tenant_client};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use klutch_sdk::api::wellknown::IDENTITY_ANNOTATION;
use klutch_sdk::api::wire::BindingResponse;
use klutch_sdk::backend::binding_space::ISSUER_ANNOTATION;
use klutch_sdk::backend::{
    AuthError, Authenticator, BindingIdentity, BindingSpaceConfig, BindingSpaces, ExternalCluster,
    LoginStart, Server, ServerConfig, SessionKeys, TemplateBackend, TemplateBackendConfig,
    VerifiedIdentity,
};
use klutch_sdk::testenv::browser::{Browser, bind_link, query_param};
use kube::ResourceExt as _;
use kube::api::{Api, ListParams, ObjectMeta, PostParams};

const SECOND_ISSUER: &str = "https://second-idp.example.com";

/// The second identity provider: logs the user in as `subject` at [`SECOND_ISSUER`] (a
/// separate IdP whose subjects happen to collide with Dex's).
struct SecondIdp {
    subject: String,
}

impl Authenticator for SecondIdp {
    async fn start_login(&self, state: &str, callback_url: &str) -> Result<LoginStart, AuthError> {
        let state: String = url::form_urlencoded::byte_serialize(state.as_bytes()).collect();
        Ok(LoginStart::redirect(format!(
            "{callback_url}?state={state}&code=one-time"
        )))
    }

    async fn finish_login(
        &self,
        code: &str,
        _pending: &str,
        _callback_url: &str,
    ) -> Result<VerifiedIdentity, AuthError> {
        if code != "one-time" {
            return Err(AuthError::Rejected("unknown code".into()));
        }
        Ok(VerifiedIdentity::new(SECOND_ISSUER, &self.subject))
    }
}

fn external(f: &backend_common::Fixture) -> ExternalCluster {
    let cluster = &f.env["provider"];
    ExternalCluster {
        server: cluster.url().to_owned(),
        ca_pem: Some(cluster.ca_pem().to_owned()),
        server_name: None,
    }
}

fn config(f: &backend_common::Fixture, prefix: &str) -> BindingSpaceConfig {
    BindingSpaceConfig {
        namespace_prefix: prefix.into(),
        pretty_name: "Test Provider".into(),
        external: external(f),
        token_timeout: Duration::from_secs(30),
    }
}

/// A second backend on the same cluster and prefix whose users come from [`SECOND_ISSUER`];
/// binds `plural` for `subject` on consumer cluster `cid` through its HTTP flow.
async fn bind_at_second_backend(
    f: &backend_common::Fixture,
    subject: &str,
    cid: &str,
    plural: &str,
) -> BindingResponse {
    let client = f.admin().await;
    let port = klutch_sdk::testenv::free_port().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let backend = TemplateBackend::start(
        client.clone(),
        SecondIdp {
            subject: subject.into(),
        },
        TemplateBackendConfig {
            pretty_name: "Test Provider".into(),
            consumer_scope: klutch_sdk::api::export::Scope::Namespaced,
            cluster_scoped_isolation: klutch_sdk::api::export::ClusterScopedIsolation::Prefixed,
        },
    )
    .await
    .unwrap();
    let spaces = Arc::new(BindingSpaces::new(client, config(f, "cluster")));
    let mut server_config = ServerConfig::new(SessionKeys::generate());
    server_config.callback_url = Some(format!("{base}/callback"));
    let router = Server::new(backend, spaces, server_config).router();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    let mut b = Browser::new().unwrap();
    let sid = klutch_sdk::backend::state::random_token(22);
    let start = b
        .get(&format!("{base}/authorize?p=53121&s={sid}&c={cid}"))
        .await
        .unwrap();
    assert_eq!(start.status, 302, "{}", start.body);
    let callback = b.get(start.location.as_deref().unwrap()).await.unwrap();
    assert_eq!(callback.status, 302, "callback: {}", callback.body);
    let mut link = None;
    for _ in 0..100 {
        let page = b.get(&format!("{base}/resources?s={sid}")).await.unwrap();
        assert_eq!(page.status, 200, "{}", page.body);
        link = bind_link(&page.body, plural);
        if link.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let link = link.unwrap_or_else(|| panic!("{plural} is never offered"));
    let bound = b.get(&format!("{base}{link}")).await.unwrap();
    assert_eq!(bound.status, 302, "bind: {}", bound.body);
    let location = bound.location.unwrap();
    server.abort();
    BindingResponse::decode(&query_param(&location, "response").unwrap()).unwrap()
}

async fn namespace(client: &kube::Client, name: &str) -> Namespace {
    Api::<Namespace>::all(client.clone())
        .get(name)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_user_of_another_issuer_with_the_same_subject_gets_nothing_of_the_first() {
    let f = fixture().await;
    let admin = f.admin().await;
    let (_, alice) = browser_bind(f, "alice@example.com", "cidIss1", "mangodbs").await;
    let (_, alice_ns) = tenant_client(&alice).await;
    let annotations = namespace(&admin, &alice_ns).await.annotations().clone();
    let subject = annotations[IDENTITY_ANNOTATION]
        .strip_suffix("#cidIss1")
        .expect("Klutch's identity annotation <sub>#<cid>")
        .to_owned();

    // Same sub, same consumer cluster, same backend prefix; another issuer.
    let mallory = bind_at_second_backend(f, &subject, "cidIss1", "mangodbs").await;
    let (mallory_client, mallory_ns) = tenant_client(&mallory).await;
    assert_ne!(
        mallory_ns, alice_ns,
        "a user of another issuer received alice's namespace"
    );
    let err = Api::<Secret>::namespaced(mallory_client, &alice_ns)
        .list(&ListParams::default())
        .await
        .expect_err("the second issuer's token reads alice's space");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 403),
        "{err}"
    );
    let theirs = namespace(&admin, &mallory_ns).await;
    assert_eq!(
        theirs
            .annotations()
            .get(ISSUER_ANNOTATION)
            .map(String::as_str),
        Some(SECOND_ISSUER)
    );
    assert_eq!(
        theirs.annotations()[IDENTITY_ANNOTATION],
        annotations[IDENTITY_ANNOTATION],
        "Klutch's annotation is kept as it was"
    );
    assert_eq!(
        annotations.get(ISSUER_ANNOTATION).map(String::as_str),
        Some(f.env.dex().unwrap().issuer())
    );

    // Binding again from the first issuer finds alice's space, not the other one.
    let (_, again) = browser_bind(f, "alice@example.com", "cidIss1", "mangodbs").await;
    assert_eq!(tenant_client(&again).await.1, alice_ns);
}

#[tokio::test]
async fn another_backend_instance_and_legacy_spaces_are_kept_apart() {
    let f = fixture().await;
    let admin = f.admin().await;
    let dex = f.env.dex().unwrap().issuer().to_owned();
    let who = BindingIdentity::new(&dex, "legacy-sub", "cidLeg");

    // A space Klutch (or an earlier version) created: only `<sub>#<cid>`, a generated name.
    let legacy = Api::<Namespace>::all(admin.clone())
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    generate_name: Some("cluster-".into()),
                    annotations: Some(BTreeMap::from([(
                        IDENTITY_ANNOTATION.to_owned(),
                        who.klutch_identity(),
                    )])),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            },
        )
        .await
        .unwrap()
        .name_any();

    // By default nobody is handed a legacy space: not even a user of the same issuer.
    let strict = BindingSpaces::new(admin.clone(), config(f, "cluster"));
    let fresh = strict.ensure(&who).await.unwrap().namespace;
    assert_ne!(fresh, legacy);
    assert!(
        !namespace(&admin, &legacy)
            .await
            .annotations()
            .contains_key(ISSUER_ANNOTATION)
    );
    // Clean up the fresh one so the adoption below is what the operator would see.
    Api::<Namespace>::all(admin.clone())
        .delete(&fresh, &Default::default())
        .await
        .unwrap();
    backend_common::eventually("the fresh space is gone", || {
        let admin = admin.clone();
        let fresh = fresh.clone();
        async move {
            Api::<Namespace>::all(admin)
                .get_opt(&fresh)
                .await
                .unwrap()
                .is_none()
                .then_some(())
        }
    })
    .await;

    // With the legacy issuer named, that issuer's user adopts it; another issuer's does not.
    let adopting = BindingSpaces::new(admin.clone(), config(f, "cluster")).with_legacy_issuer(&dex);
    let other = BindingIdentity::new(SECOND_ISSUER, "legacy-sub", "cidLeg");
    let others = adopting.ensure(&other).await.unwrap().namespace;
    assert_ne!(others, legacy, "another issuer adopted a legacy space");
    let adopted = adopting.ensure(&who).await.unwrap();
    assert_eq!(adopted.namespace, legacy);
    assert_eq!(
        namespace(&admin, &legacy).await.annotations()[ISSUER_ANNOTATION],
        dex
    );
    // From now on it is found by the new key, also without the legacy setting.
    assert_eq!(strict.ensure(&who).await.unwrap().namespace, legacy);
    assert_eq!(strict.find(&who).await.unwrap().len(), 1);

    // Another backend instance (prefix) on the same cluster: its own space.
    let instance = BindingSpaces::new(admin.clone(), config(f, "tenant"));
    let elsewhere = instance.ensure(&who).await.unwrap().namespace;
    assert!(elsewhere.starts_with("tenant-"), "{elsewhere}");
    assert_ne!(elsewhere, legacy);
}

#[tokio::test]
async fn two_replicas_creating_one_space_at_once_make_one() {
    let f = fixture().await;
    let admin = f.admin().await;
    let dex = f.env.dex().unwrap().issuer().to_owned();
    // Two replicas: separate clients (connections) and separate in-process locks.
    let a = BindingSpaces::new(f.admin().await, config(f, "cluster"));
    let b = BindingSpaces::new(f.admin().await, config(f, "cluster"));
    for round in 0..16 {
        let who = BindingIdentity::new(&dex, format!("racer-{round}"), "cidRace");
        let (x, y) = tokio::join!(a.ensure(&who), b.ensure(&who));
        let (x, y) = (x.unwrap(), y.unwrap());
        assert_eq!(
            x.namespace, y.namespace,
            "round {round}: two replicas handed out two spaces"
        );
        let claiming: Vec<String> = Api::<Namespace>::all(admin.clone())
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|ns| ns.annotations().get(IDENTITY_ANNOTATION) == Some(&who.klutch_identity()))
            .map(|ns| ns.name_any())
            .collect();
        assert_eq!(claiming, vec![x.namespace.clone()], "round {round}");
    }
}
