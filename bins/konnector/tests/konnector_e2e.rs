//! The konnector binary between two real clusters: binding → CRD → spec up / status down,
//! truthful conditions, heartbeat, kubeconfig rotation, error conditions and unbinding.
//!
//! One test function runs the scenarios in order against one konnector process, because a
//! konnector serves every binding of its cluster and two would compete.

mod harness;

use std::time::Duration;

use harness::*;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use klutch_sdk::api::export::ClusterScopedIsolation;
use klutch_sdk::api::{APIServiceBinding, APIServiceExport, ClusterBinding};
use klutch_sdk::api::{AcceptablePermissionClaim, PermissionClaim};
use klutch_sdk::testenv::{TestEnv, install_crd};
use kube::ResourceExt as _;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use serde_json::json;

fn ar(group: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", kind), plural)
}

#[tokio::test]
async fn konnector_end_to_end() {
    klutch_sdk::tls::install_crypto_provider();
    let env = TestEnv::shared()
        .await
        .expect("start the shared environment");
    let consumer = env["app"].client().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let space = space(&env["control-plane"], "cluster-e2e").await;
    create_namespace(&consumer, "klutch-bind").await;
    let mut konnector = Konnector::start(env["app"].kubeconfig_path(), "konnector-a", dir.path());

    let result = async {
        namespaced_binding(&consumer, &space, &konnector).await;
        error_conditions(&consumer, &space).await;
        claimed_secrets(&consumer, &space).await;
        two_providers(&consumer, env, &konnector).await;
        namespaced_adoption_and_orphans(&consumer, &space).await;
        for mode in [
            ClusterScopedIsolation::Prefixed,
            ClusterScopedIsolation::Namespaced,
            ClusterScopedIsolation::None,
        ] {
            cluster_scoped(&consumer, &space, mode).await;
        }
    };
    // Show the konnector's log when a scenario fails.
    let outcome = tokio::time::timeout(
        Duration::from_secs(600),
        futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(result)),
    )
    .await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(panic)) => {
            eprintln!("--- konnector log\n{}", konnector.log_text());
            std::panic::resume_unwind(panic);
        }
        Err(_) => {
            eprintln!("--- konnector log\n{}", konnector.log_text());
            panic!("the scenarios took longer than 10 minutes");
        }
    }
    assert!(konnector.running(), "the konnector is still running");
    let status = konnector.terminate().await;
    assert!(status.success(), "SIGTERM ends it cleanly: {status:?}");
}

async fn namespaced_binding(consumer: &kube::Client, space: &Space, konnector: &Konnector) {
    space
        .export(
            &crd("e2e.klutch.test", "Widget", "widgets", "Namespaced", None),
            None,
            vec![],
        )
        .await;
    // The provider tightens its schema after exporting it (the consumer CRD stays lax).
    install_crd(
        &space.provider,
        &crd(
            "e2e.klutch.test",
            "Widget",
            "widgets",
            "Namespaced",
            Some(100),
        ),
    )
    .await
    .unwrap();
    bind(consumer, space, "widgets.e2e.klutch.test", vec![]).await;

    // The binding becomes Ready with every condition true, and the CRD is ours.
    for c in [
        "SecretValid",
        "InformersSynced",
        "Heartbeating",
        "Connected",
        "SchemaInSync",
        "Ready",
    ] {
        eventually(&format!("binding condition {c}"), || async {
            binding_condition(consumer, "widgets.e2e.klutch.test", c)
                .await
                .filter(|(s, _)| s == "True")
        })
        .await;
    }
    let binding = Api::<APIServiceBinding>::namespaced(consumer.clone(), "klutch-bind")
        .get("widgets.e2e.klutch.test")
        .await
        .unwrap();
    assert_eq!(
        binding
            .status
            .as_ref()
            .unwrap()
            .provider_pretty_name
            .as_deref(),
        Some("Test Provider")
    );
    assert!(
        binding.finalizers().is_empty(),
        "no finalizer on the binding (Klutch's konnector knows none there)"
    );
    let crd = Api::<CustomResourceDefinition>::all(consumer.clone())
        .get("widgets.e2e.klutch.test")
        .await
        .unwrap();
    let owner = &crd.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("APIServiceBinding", "widgets.e2e.klutch.test")
    );
    assert_eq!(Some(owner.uid.as_str()), binding.metadata.uid.as_deref());

    // Heartbeat and version on the provider.
    let cb = eventually("heartbeat", || async {
        let cb = Api::<ClusterBinding>::namespaced(space.provider.clone(), &space.cluster_ns)
            .get("cluster")
            .await
            .ok()?;
        cb.status.as_ref()?.last_heartbeat_time.as_ref()?;
        Some(cb)
    })
    .await;
    let s = cb.status.unwrap();
    assert_eq!(s.heartbeat_interval.as_deref(), Some("5m0s"));
    assert_eq!(
        s.konnector_version,
        Some(format!("v{}", env!("CARGO_PKG_VERSION")))
    );
    assert!(
        s.conditions
            .iter()
            .any(|c| c.type_ == "ValidVersion" && format!("{:?}", c.status) == "True")
    );
    // The export mirrors the consumer side.
    eventually("export ConsumerInSync", || async {
        let e = Api::<APIServiceExport>::namespaced(space.provider.clone(), &space.cluster_ns)
            .get("widgets.e2e.klutch.test")
            .await
            .ok()?;
        let cs = e.status?.conditions;
        (cs.iter()
            .any(|c| c.type_ == "Connected" && format!("{:?}", c.status) == "True")
            && cs
                .iter()
                .any(|c| c.type_ == "ConsumerInSync" && format!("{:?}", c.status) == "True"))
        .then_some(())
    })
    .await;

    // Spec up, status down.
    create_namespace(consumer, "team-e2e").await;
    let widgets = ar("e2e.klutch.test", "Widget", "widgets");
    let mine: Api<DynamicObject> = Api::namespaced_with(consumer.clone(), "team-e2e", &widgets);
    let theirs: Api<DynamicObject> = Api::namespaced_with(
        space.provider.clone(),
        &space.service_ns("team-e2e"),
        &widgets,
    );
    let mut w = DynamicObject::new("w1", &widgets);
    w.data = json!({ "spec": { "size": 3 } });
    mine.create(&PostParams::default(), &w).await.unwrap();
    let copy = eventually("provider copy", || async {
        theirs.get_opt("w1").await.unwrap()
    })
    .await;
    assert_eq!(copy.data["spec"], json!({ "size": 3 }));
    theirs
        .patch_status(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": { "phase": "Ready" } })),
        )
        .await
        .unwrap();
    eventually("status down", || async {
        (mine.get("w1").await.unwrap().data.get("status") == Some(&json!({ "phase": "Ready" })))
            .then_some(())
    })
    .await;

    // A spec the provider rejects becomes a Warning Event on the consumer object.
    let mut big = DynamicObject::new("too-big", &widgets);
    big.data = json!({ "spec": { "size": 1000 } });
    mine.create(&PostParams::default(), &big).await.unwrap();
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(consumer.clone(), "team-e2e");
    eventually("a Warning event", || async {
        let list = events.list(&Default::default()).await.ok()?;
        list.items.into_iter().find(|e| {
            e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("too-big")
                && e.type_.as_deref() == Some("Warning")
        })
    })
    .await;
    mine.delete("too-big", &DeleteParams::default())
        .await
        .unwrap();

    // Metrics and health.
    let (code, body) = konnector.get("/healthz").await.unwrap();
    assert_eq!((code, body.as_str()), (200, r#"{"leaderElection":"ok"}"#));
    let (code, metrics) = konnector.get("/metrics").await.unwrap();
    assert_eq!(code, 200);
    assert!(
        metrics
            .lines()
            .any(|l| l == "konnector_provider_connections 1"),
        "{metrics}"
    );
    assert!(
        metrics.lines().any(|l| l == "konnector_leader 1"),
        "{metrics}"
    );

    // The konnector does not rewrite its CRD on every pass (each CRD update restarts serving).
    let crd_now = Api::<CustomResourceDefinition>::all(consumer.clone())
        .get("widgets.e2e.klutch.test")
        .await
        .unwrap();
    assert_eq!(
        crd_now.metadata.generation,
        Some(1),
        "the CRD was never rewritten"
    );

    // Kubeconfig rotation: the provider rewrites its Secret; the consumer copy follows and the
    // connection restarts with the new bytes, still syncing.
    let rotated = kubeconfig_for_rotation(space);
    put_secret(&space.provider, &space.cluster_ns, "kubeconfig", &rotated).await;
    let secrets: Api<Secret> = Api::namespaced(consumer.clone(), "klutch-bind");
    eventually("rotated consumer secret", || async {
        let s = secrets
            .get(&format!("kubeconfig-{}", space.cluster_ns))
            .await
            .ok()?;
        (s.data?.get("kubeconfig")?.0 == rotated.as_bytes()).then_some(())
    })
    .await;
    let mut w2 = DynamicObject::new("w2", &widgets);
    w2.data = json!({ "spec": { "size": 4 } });
    mine.create(&PostParams::default(), &w2).await.unwrap();
    eventually("sync after rotation", || async {
        theirs.get_opt("w2").await.unwrap()
    })
    .await;

    // Unbinding lets go of everything and deletes no data: finalizers gone, the copies kept
    // without `bound`, the CRD and the app's objects kept (konnector_unbind tests this in depth).
    Api::<APIServiceBinding>::namespaced(consumer.clone(), "klutch-bind")
        .delete("widgets.e2e.klutch.test", &DeleteParams::default())
        .await
        .unwrap();
    eventually("binding gone", || async {
        Api::<APIServiceBinding>::namespaced(consumer.clone(), "klutch-bind")
            .get_opt("widgets.e2e.klutch.test")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    eventually("objects released", || async {
        let list = mine.list(&Default::default()).await.unwrap();
        list.items
            .iter()
            .all(|o| {
                o.finalizers().is_empty() && annotated(o, "klutch.anynines.com/bound").is_none()
            })
            .then_some(())
    })
    .await;
    assert!(
        Api::<CustomResourceDefinition>::all(consumer.clone())
            .get_opt("widgets.e2e.klutch.test")
            .await
            .unwrap()
            .is_some(),
        "the CRD is kept"
    );
    assert_eq!(
        mine.list(&Default::default()).await.unwrap().items.len(),
        2,
        "w1 and w2 are kept"
    );
    for name in ["w1", "w2"] {
        eventually(&format!("{name} kept, no longer bound"), || async {
            let kept = theirs.get(name).await.expect("the provider copy is kept");
            (!klutch_sdk::sync::copy::is_bound(&kept)).then_some(())
        })
        .await;
    }
    eventually("no provider connection", || async {
        let (_, m) = konnector.get("/metrics").await?;
        m.lines()
            .any(|l| l == "konnector_provider_connections 0")
            .then_some(())
    })
    .await;
}

/// The same credentials under another context name: new bytes, same access.
fn kubeconfig_for_rotation(space: &Space) -> String {
    let mut v: serde_json::Value = serde_json::from_str(&space.kubeconfig).unwrap();
    v["contexts"][0]["name"] = json!("rotated");
    v["current-context"] = json!("rotated");
    serde_json::to_string(&v).unwrap()
}

async fn error_conditions(consumer: &kube::Client, space: &Space) {
    // No export of that name on the provider.
    bind(consumer, space, "missing.e2e.klutch.test", vec![]).await;
    eventually("APIServiceExportNotFound", || async {
        binding_condition(consumer, "missing.e2e.klutch.test", "Connected")
            .await
            .filter(|(_, r)| r.as_deref() == Some("APIServiceExportNotFound"))
    })
    .await;
    eventually("Ready False", || async {
        binding_condition(consumer, "missing.e2e.klutch.test", "Ready")
            .await
            .filter(|(s, _)| s == "False")
    })
    .await;

    // A CRD of that name exists on the consumer and is not ours: left alone.
    let foreign = crd(
        "foreign.klutch.test",
        "Gadget",
        "gadgets",
        "Namespaced",
        None,
    );
    install_crd(consumer, &foreign).await.unwrap();
    space
        .export(
            &crd(
                "foreign.klutch.test",
                "Gadget",
                "gadgets",
                "Namespaced",
                Some(5),
            ),
            None,
            vec![],
        )
        .await;
    bind(consumer, space, "gadgets.foreign.klutch.test", vec![]).await;
    eventually("ForeignCustomResourceDefinition", || async {
        binding_condition(consumer, "gadgets.foreign.klutch.test", "Connected")
            .await
            .filter(|(_, r)| r.as_deref() == Some("ForeignCustomResourceDefinition"))
    })
    .await;
    let after = Api::<CustomResourceDefinition>::all(consumer.clone())
        .get("gadgets.foreign.klutch.test")
        .await
        .unwrap();
    assert!(
        after.owner_references().is_empty(),
        "the foreign CRD is untouched"
    );

    // A binding whose Secret does not exist.
    let b = APIServiceBinding::new(
        "nosecret.e2e.klutch.test",
        klutch_sdk::api::APIServiceBindingSpec {
            kubeconfig_secret_ref: klutch_sdk::api::ClusterSecretKeyRef {
                name: "kubeconfig-nope".into(),
                namespace: "klutch-bind".into(),
                key: Default::default(),
            },
            permission_claims: vec![],
        },
    );
    Api::<APIServiceBinding>::namespaced(consumer.clone(), "klutch-bind")
        .create(&PostParams::default(), &b)
        .await
        .unwrap();
    eventually("KubeconfigSecretNotFound", || async {
        binding_condition(consumer, "nosecret.e2e.klutch.test", "SecretValid")
            .await
            .filter(|(_, r)| r.as_deref() == Some("KubeconfigSecretNotFound"))
    })
    .await;
    // Clean up: these bindings go away without hanging.
    for name in [
        "missing.e2e.klutch.test",
        "gadgets.foreign.klutch.test",
        "nosecret.e2e.klutch.test",
    ] {
        Api::<APIServiceBinding>::namespaced(consumer.clone(), "klutch-bind")
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    for name in [
        "missing.e2e.klutch.test",
        "gadgets.foreign.klutch.test",
        "nosecret.e2e.klutch.test",
    ] {
        eventually("binding deleted", || async {
            Api::<APIServiceBinding>::namespaced(consumer.clone(), "klutch-bind")
                .get_opt(name)
                .await
                .unwrap()
                .is_none()
                .then_some(())
        })
        .await;
    }
    assert!(
        Api::<CustomResourceDefinition>::all(consumer.clone())
            .get_opt("gadgets.foreign.klutch.test")
            .await
            .unwrap()
            .is_some(),
        "the foreign CRD survives"
    );
}

/// Waits until the binding `name` is Ready and its resource is served.
async fn ready(consumer: &kube::Client, name: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while binding_condition(consumer, name, "Ready")
        .await
        .filter(|(s, _)| s == "True")
        .is_none()
    {
        if tokio::time::Instant::now() > deadline {
            let b = Api::<APIServiceBinding>::namespaced(consumer.clone(), "klutch-bind")
                .get(name)
                .await
                .unwrap();
            panic!("{name} not Ready: {:#?}", b.status);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let crd = Api::<CustomResourceDefinition>::all(consumer.clone())
        .get(name)
        .await
        .unwrap();
    let served = ar(
        &crd.spec.group,
        &crd.spec.names.kind,
        &crd.spec.names.plural,
    );
    let api: Api<DynamicObject> = Api::all_with(consumer.clone(), &served);
    eventually(&format!("{name} served"), || async {
        api.list(&Default::default()).await.ok().map(drop)
    })
    .await;
}

fn annotated(o: &DynamicObject, key: &str) -> Option<String> {
    o.metadata.annotations.as_ref()?.get(key).cloned()
}

/// Adoption, orphan removal and several consumer namespaces for a namespaced resource.
async fn namespaced_adoption_and_orphans(consumer: &kube::Client, space: &Space) {
    space
        .export(
            &crd("adopt.klutch.test", "Widget", "widgets", "Namespaced", None),
            None,
            vec![],
        )
        .await;
    bind(consumer, space, "widgets.adopt.klutch.test", vec![]).await;
    ready(consumer, "widgets.adopt.klutch.test").await;
    let widgets = ar("adopt.klutch.test", "Widget", "widgets");
    for ns in ["team-ad1", "team-ad2"] {
        create_namespace(consumer, ns).await;
        let mine: Api<DynamicObject> = Api::namespaced_with(consumer.clone(), ns, &widgets);
        let mut w = DynamicObject::new("w", &widgets);
        w.data = json!({ "spec": { "size": 1 } });
        mine.create(&PostParams::default(), &w).await.unwrap();
        let theirs: Api<DynamicObject> =
            Api::namespaced_with(space.provider.clone(), &space.service_ns(ns), &widgets);
        eventually(&format!("copy in {ns}"), || async {
            theirs.get_opt("w").await.unwrap()
        })
        .await;
    }
    // The provider creates an object for the consumer: adopted down, marked bound on the provider.
    let theirs: Api<DynamicObject> = Api::namespaced_with(
        space.provider.clone(),
        &space.service_ns("team-ad1"),
        &widgets,
    );
    let mut gift = DynamicObject::new("gift", &widgets);
    gift.data = json!({ "spec": { "size": 7 } });
    gift.metadata.finalizers = Some(vec!["provider.example/keep".into()]);
    theirs.create(&PostParams::default(), &gift).await.unwrap();
    let mine: Api<DynamicObject> = Api::namespaced_with(consumer.clone(), "team-ad1", &widgets);
    let adopted = eventually("adopted", || async { mine.get_opt("gift").await.unwrap() }).await;
    assert_eq!(adopted.data["spec"], json!({ "size": 7 }));
    assert!(
        !adopted
            .finalizers()
            .contains(&"provider.example/keep".to_string()),
        "no provider finalizers come down"
    );
    eventually("provider marked bound", || async {
        klutch_sdk::sync::copy::is_bound(&theirs.get("gift").await.unwrap()).then_some(())
    })
    .await;
    theirs
        .patch(
            "gift",
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "finalizers": null } })),
        )
        .await
        .unwrap();
    // A bound provider object without a consumer object (a delete missed while down) is removed.
    let mut stale = DynamicObject::new("stale", &widgets);
    stale.data = json!({ "spec": { "size": 2 } });
    stale.metadata.annotations =
        Some([("klutch.anynines.com/bound".to_string(), "true".to_string())].into());
    theirs.create(&PostParams::default(), &stale).await.unwrap();
    eventually("stale copy removed", || async {
        theirs
            .get_opt("stale")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    assert!(
        mine.get_opt("stale").await.unwrap().is_none(),
        "and not adopted"
    );
    // Deleting a consumer namespace deletes its objects' copies, then its APIServiceNamespace.
    Api::<k8s_openapi::api::core::v1::Namespace>::all(consumer.clone())
        .delete("team-ad2", &DeleteParams::default())
        .await
        .unwrap();
    let mappings: Api<klutch_sdk::api::APIServiceNamespace> =
        Api::namespaced(space.provider.clone(), &space.cluster_ns);
    eventually("APIServiceNamespace team-ad2 deleted", || async {
        mappings
            .get_opt("team-ad2")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    let theirs2: Api<DynamicObject> = Api::namespaced_with(
        space.provider.clone(),
        &space.service_ns("team-ad2"),
        &widgets,
    );
    assert!(
        theirs2.get_opt("w").await.unwrap().is_none(),
        "the copy went with the namespace"
    );
}

/// A cluster-scoped resource under one isolation mode: spec up, status down, adoption, foreign
/// objects left alone, orphans removed, deletion.
async fn cluster_scoped(consumer: &kube::Client, space: &Space, mode: ClusterScopedIsolation) {
    let group = format!("{}.iso.klutch.test", format!("{mode:?}").to_lowercase());
    let name = format!("gizmos.{group}");
    let gizmos = ar(&group, "Gizmo", "gizmos");
    let exported = crd(&group, "Gizmo", "gizmos", "Cluster", None);
    match mode {
        ClusterScopedIsolation::Namespaced => {
            space
                .export_as(
                    &crd(&group, "Gizmo", "gizmos", "Namespaced", None),
                    &exported,
                    Some(mode),
                )
                .await;
        }
        _ => {
            space.export(&exported, Some(mode), vec![]).await;
        }
    }
    bind(consumer, space, &name, vec![]).await;
    ready(consumer, &name).await;
    let cns = &space.cluster_ns;
    let place = |n: &str| -> (Api<DynamicObject>, String) {
        match mode {
            ClusterScopedIsolation::Prefixed => (
                Api::all_with(space.provider.clone(), &gizmos),
                format!("{cns}-{n}"),
            ),
            ClusterScopedIsolation::Namespaced => (
                Api::namespaced_with(space.provider.clone(), cns, &gizmos),
                n.to_owned(),
            ),
            ClusterScopedIsolation::None => {
                (Api::all_with(space.provider.clone(), &gizmos), n.to_owned())
            }
        }
    };
    let mine: Api<DynamicObject> = Api::all_with(consumer.clone(), &gizmos);

    // Spec up into the isolated place.
    let mut g = DynamicObject::new("g1", &gizmos);
    g.data = json!({ "spec": { "size": 1 } });
    mine.create(&PostParams::default(), &g).await.unwrap();
    let (theirs, g1) = place("g1");
    let copy = eventually("cluster-scoped copy", || async {
        theirs.get_opt(&g1).await.unwrap()
    })
    .await;
    assert_eq!(copy.data["spec"], json!({ "size": 1 }));
    assert_eq!(
        annotated(&copy, "klutch.anynines.com/cluster-namespace").as_deref(),
        Some(cns.as_str())
    );
    if mode != ClusterScopedIsolation::Namespaced {
        let owner = &copy.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str()),
            ("Namespace", cns.as_str())
        );
    }
    // Status down.
    theirs
        .patch_status(
            &g1,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": { "ok": true } })),
        )
        .await
        .unwrap();
    eventually("cluster-scoped status down", || async {
        (mine.get("g1").await.unwrap().data.get("status") == Some(&json!({ "ok": true })))
            .then_some(())
    })
    .await;

    // Adoption of a provider-created object in scope.
    let (theirs, gift) = place("gift");
    let mut o = DynamicObject::new(&gift, &gizmos);
    if mode == ClusterScopedIsolation::Namespaced {
        o.metadata.namespace = Some(cns.clone());
    }
    o.metadata.annotations = Some(
        [(
            "klutch.anynines.com/cluster-namespace".to_string(),
            cns.clone(),
        )]
        .into(),
    );
    o.data = json!({ "spec": { "size": 9 } });
    theirs.create(&PostParams::default(), &o).await.unwrap();
    let adopted = eventually("cluster-scoped adoption", || async {
        mine.get_opt("gift").await.unwrap()
    })
    .await;
    assert_eq!(adopted.data["spec"], json!({ "size": 9 }));
    assert_eq!(
        annotated(&adopted, "klutch.anynines.com/cluster-namespace"),
        None,
        "isolation annotation stripped"
    );

    // Another tenant's object is never adopted nor touched.
    if mode != ClusterScopedIsolation::Namespaced {
        let (theirs, other) = match mode {
            ClusterScopedIsolation::Prefixed => (
                Api::all_with(space.provider.clone(), &gizmos),
                format!("{cns}-other"),
            ),
            _ => (
                Api::all_with(space.provider.clone(), &gizmos),
                "other".to_string(),
            ),
        };
        let mut o = DynamicObject::new(&other, &gizmos);
        o.metadata.annotations = Some(
            [(
                "klutch.anynines.com/cluster-namespace".to_string(),
                "cluster-someone-else".to_string(),
            )]
            .into(),
        );
        o.data = json!({ "spec": { "size": 5 } });
        theirs.create(&PostParams::default(), &o).await.unwrap();
        // Under None the consumer may even use the same name: the provider object stays theirs.
        if mode == ClusterScopedIsolation::None {
            let mut clash = DynamicObject::new("other", &gizmos);
            clash.data = json!({ "spec": { "size": 6 } });
            mine.create(&PostParams::default(), &clash).await.unwrap();
            let events: Api<k8s_openapi::api::events::v1::Event> = Api::all(consumer.clone());
            eventually("ForeignProviderObject event", || async {
                let list = events.list(&Default::default()).await.ok()?;
                list.items.into_iter().find(|e| {
                    e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("other")
                        && e.reason.as_deref() == Some("ForeignProviderObject")
                })
            })
            .await;
            mine.delete("other", &DeleteParams::default())
                .await
                .unwrap();
            eventually("clashing consumer object deleted", || async {
                mine.get_opt("other").await.unwrap().is_none().then_some(())
            })
            .await;
        } else {
            tokio::time::sleep(Duration::from_secs(2)).await;
            assert!(
                mine.get_opt("other").await.unwrap().is_none(),
                "not adopted"
            );
        }
        let still = theirs.get(&other).await.unwrap();
        assert_eq!(still.data["spec"], json!({ "size": 5 }), "untouched");
        theirs
            .delete(&other, &DeleteParams::default())
            .await
            .unwrap();
    }

    // Deletion: provider copy first, then the consumer object.
    mine.delete("g1", &DeleteParams::default()).await.unwrap();
    eventually("cluster-scoped consumer object gone", || async {
        mine.get_opt("g1").await.unwrap().is_none().then_some(())
    })
    .await;
    assert!(theirs.get_opt(&g1).await.unwrap().is_none(), "no orphan");

    // Unbinding keeps the adopted object on both sides; the provider copy is no longer bound.
    Api::<APIServiceBinding>::namespaced(consumer.clone(), "klutch-bind")
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    eventually("cluster-scoped object released", || async {
        let o = mine.get("gift").await.unwrap();
        (o.finalizers().is_empty() && annotated(&o, "klutch.anynines.com/bound").is_none())
            .then_some(())
    })
    .await;
    eventually("cluster-scoped provider copy unmarked", || async {
        let o = theirs.get(&gift).await.unwrap();
        annotated(&o, "klutch.anynines.com/bound")
            .is_none()
            .then_some(())
    })
    .await;
}

fn claim(resource: &str, selector: serde_json::Value) -> AcceptablePermissionClaim {
    serde_json::from_value(json!({ "group": "", "resource": resource, "version": "v1", "selector": selector, "state": "Accepted" })).unwrap()
}

/// Claimed Secrets both ways: provider-owned down, consumer-owned (labelled) up, and the
/// security case — an unannotated consumer Secret never goes up.
async fn claimed_secrets(consumer: &kube::Client, space: &Space) {
    let down = claim("secrets", json!({ "owner": "Provider" }));
    let up = claim(
        "secrets",
        json!({ "owner": "Consumer", "labelSelectors": [{ "share": "up" }] }),
    );
    let claims: Vec<PermissionClaim> = vec![down.claim.clone(), up.claim.clone()];
    space
        .export(
            &crd("claims.klutch.test", "Db", "dbs", "Namespaced", None),
            None,
            claims,
        )
        .await;
    bind(consumer, space, "dbs.claims.klutch.test", vec![down, up]).await;
    ready(consumer, "dbs.claims.klutch.test").await;
    // A bound object maps the namespace.
    create_namespace(consumer, "team-cl").await;
    let dbs = ar("claims.klutch.test", "Db", "dbs");
    let mut db = DynamicObject::new("db", &dbs);
    db.data = json!({ "spec": { "size": 1 } });
    Api::<DynamicObject>::namespaced_with(consumer.clone(), "team-cl", &dbs)
        .create(&PostParams::default(), &db)
        .await
        .unwrap();
    let svc_ns = space.service_ns("team-cl");
    let theirs: Api<Secret> = Api::namespaced(space.provider.clone(), &svc_ns);
    let mine: Api<Secret> = Api::namespaced(consumer.clone(), "team-cl");
    eventually("service namespace", || async {
        Api::<DynamicObject>::namespaced_with(space.provider.clone(), &svc_ns, &dbs)
            .get_opt("db")
            .await
            .unwrap()
    })
    .await;
    let data = |v: &str| json!({ "k": base64(v) });

    // Provider-owned: down, annotated; consumer edits reverted; consumer deletion recreated.
    let creds: Secret =
        serde_json::from_value(json!({ "metadata": { "name": "creds" }, "data": data("s3cr3t") }))
            .unwrap();
    theirs.create(&PostParams::default(), &creds).await.unwrap();
    let got = eventually("creds down", || async {
        mine.get_opt("creds").await.unwrap()
    })
    .await;
    assert_eq!(
        got.annotations()
            .get("klutch.anynines.com/resource-owner")
            .map(String::as_str),
        Some("Provider")
    );
    assert_eq!(got.data.unwrap()["k"].0, b"s3cr3t");
    mine.patch(
        "creds",
        &PatchParams::default(),
        &Patch::Merge(json!({ "data": data("hacked") })),
    )
    .await
    .unwrap();
    eventually("consumer edit reverted", || async {
        (mine.get("creds").await.ok()?.data?.get("k")?.0 == b"s3cr3t").then_some(())
    })
    .await;
    mine.delete("creds", &DeleteParams::default())
        .await
        .unwrap();
    eventually("recreated after consumer deletion", || async {
        mine.get_opt("creds")
            .await
            .unwrap()
            .filter(|s| s.metadata.deletion_timestamp.is_none())
    })
    .await;

    // The security case: an unannotated, unlabelled consumer Secret stays in the app cluster.
    let private: Secret =
        serde_json::from_value(json!({ "metadata": { "name": "private" }, "data": data("mine") }))
            .unwrap();
    mine.create(&PostParams::default(), &private).await.unwrap();
    // Consumer-owned (labelled): up, annotated on both sides.
    let shared: Secret = serde_json::from_value(json!({ "metadata": { "name": "shared", "labels": { "share": "up" } }, "data": data("ours") })).unwrap();
    mine.create(&PostParams::default(), &shared).await.unwrap();
    let copy = eventually("shared up", || async {
        theirs.get_opt("shared").await.unwrap()
    })
    .await;
    assert_eq!(
        copy.annotations()
            .get("klutch.anynines.com/resource-owner")
            .map(String::as_str),
        Some("Consumer")
    );
    eventually("consumer object annotated", || async {
        (mine
            .get("shared")
            .await
            .ok()?
            .annotations()
            .get("klutch.anynines.com/resource-owner")?
            == "Consumer")
            .then_some(())
    })
    .await;
    // By now the private Secret has been seen by both claims' syncers for a while.
    assert!(
        theirs.get_opt("private").await.unwrap().is_none(),
        "an unannotated consumer Secret never goes up"
    );
    assert!(
        mine.get("private")
            .await
            .unwrap()
            .annotations()
            .get("klutch.anynines.com/resource-owner")
            .is_none(),
        "and is not marked"
    );

    // Consumer deletion of a consumer-owned Secret deletes the provider copy; provider deletion
    // of a provider-owned one deletes the consumer copy.
    mine.delete("shared", &DeleteParams::default())
        .await
        .unwrap();
    eventually("shared gone upstairs", || async {
        theirs
            .get_opt("shared")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    theirs
        .delete("creds", &DeleteParams::default())
        .await
        .unwrap();
    eventually("creds gone downstairs", || async {
        mine.get_opt("creds").await.unwrap().is_none().then_some(())
    })
    .await;
    assert!(
        theirs.get_opt("private").await.unwrap().is_none(),
        "still not leaked"
    );
}

fn base64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A second provider connection (another cluster namespace with its own kubeconfig) next to the
/// first: both sync, each into its own namespaces.
async fn two_providers(consumer: &kube::Client, env: &TestEnv, konnector: &Konnector) {
    let second = space(&env["control-plane"], "cluster-e2e2").await;
    second
        .export(
            &crd("two.klutch.test", "Widget", "widgets", "Namespaced", None),
            None,
            vec![],
        )
        .await;
    bind(consumer, &second, "widgets.two.klutch.test", vec![]).await;
    ready(consumer, "widgets.two.klutch.test").await;
    eventually("two provider connections", || async {
        let (_, m) = konnector.get("/metrics").await?;
        m.lines()
            .any(|l| l == "konnector_provider_connections 2")
            .then_some(())
    })
    .await;
    create_namespace(consumer, "team-two").await;
    let widgets = ar("two.klutch.test", "Widget", "widgets");
    let mut w = DynamicObject::new("w", &widgets);
    w.data = json!({ "spec": { "size": 2 } });
    Api::<DynamicObject>::namespaced_with(consumer.clone(), "team-two", &widgets)
        .create(&PostParams::default(), &w)
        .await
        .unwrap();
    let theirs: Api<DynamicObject> = Api::namespaced_with(
        second.provider.clone(),
        &second.service_ns("team-two"),
        &widgets,
    );
    eventually("copy via the second provider", || async {
        theirs.get_opt("w").await.unwrap()
    })
    .await;
    let wrong: Api<DynamicObject> =
        Api::namespaced_with(second.provider.clone(), "cluster-e2e-team-two", &widgets);
    assert!(
        matches!(wrong.get_opt("w").await, Ok(None) | Err(_)),
        "nothing in the first provider's namespaces"
    );
}
