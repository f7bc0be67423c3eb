//! Unbinding and migration with the konnector binary between two real clusters (issue #19):
//!
//! - unbinding keeps the CRD and every object of the app cluster, whether the konnector runs when
//!   the binding goes or only later; a new binding of the same name resumes syncing; deletion is an
//!   explicit opt-in on the CRD;
//! - a rollback to Klutch's konnector leaves nothing it cannot delete (no finalizer Klutch does
//!   not know), and objects left by Klutch (or by an earlier version of ours, with a finalizer on
//!   the binding) are taken over;
//! - both copies of a synced object carry `klutch.anynines.com/bound: "true"`.
//!
//! Each test has clusters of its own: a konnector serves every binding of its app cluster.

mod harness;

use std::time::Duration;

use harness::*;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use klutch_sdk::api::{APIServiceBinding, APIServiceNamespace};
use klutch_sdk::testenv::{TestEnv, install_crd};
use kube::ResourceExt as _;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use serde_json::json;

const SYNCER: &str = "klutch.anynines.com/syncer";
const BOUND: &str = "klutch.anynines.com/bound";
const NAME: &str = "widgets.unbind.klutch.test";

fn widgets() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("unbind.klutch.test", "v1", "Widget"),
        "widgets",
    )
}

fn bound(o: &DynamicObject) -> bool {
    o.annotations().get(BOUND).is_some_and(|v| v == "true")
}

async fn clusters(controller_manager: bool) -> TestEnv {
    klutch_sdk::tls::install_crypto_provider();
    TestEnv::builder()
        .cluster("control-plane")
        .cluster("app")
        .controller_manager(controller_manager)
        .start()
        .await
        .expect("start the clusters")
}

/// Runs `scenario`, printing the konnector logs under `dir` when it fails.
async fn with_logs(dir: &std::path::Path, scenario: impl std::future::Future<Output = ()>) {
    let outcome = tokio::time::timeout(
        Duration::from_secs(600),
        futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(scenario)),
    )
    .await;
    let logs = || {
        let mut out = String::new();
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let lines: Vec<&str> = text.lines().filter(|l| !l.contains("DEBUG")).collect();
            out.push_str(&format!(
                "--- {}\n{}\n",
                entry.path().display(),
                lines[lines.len().saturating_sub(60)..].join("\n")
            ));
        }
        out
    };
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(panic)) => {
            eprintln!("{}", logs());
            std::panic::resume_unwind(panic);
        }
        Err(_) => panic!("the scenario took longer than 10 minutes\n{}", logs()),
    }
}

async fn export(space: &Space) {
    space
        .export(
            &crd(
                "unbind.klutch.test",
                "Widget",
                "widgets",
                "Namespaced",
                None,
            ),
            None,
            vec![],
        )
        .await;
}

async fn ready(consumer: &kube::Client) {
    eventually("binding Ready", || async {
        binding_condition(consumer, NAME, "Ready")
            .await
            .filter(|(s, _)| s == "True")
    })
    .await;
    let served = Api::<DynamicObject>::all_with(consumer.clone(), &widgets());
    eventually("widgets served", || async {
        served.list(&ListParams::default()).await.ok().map(drop)
    })
    .await;
}

async fn delete_binding(consumer: &kube::Client) {
    let api = Api::<APIServiceBinding>::namespaced(consumer.clone(), "klutch-bind");
    api.delete(NAME, &DeleteParams::default()).await.unwrap();
    eventually("binding gone", || async {
        api.get_opt(NAME).await.unwrap().is_none().then_some(())
    })
    .await;
}

async fn create_widget(api: &Api<DynamicObject>, name: &str, size: i64) {
    let mut w = DynamicObject::new(name, &widgets());
    w.data = json!({ "spec": { "size": size } });
    api.create(&PostParams::default(), &w).await.unwrap();
}

/// Waits until the app-cluster object `name` is released (no finalizer, no `bound`) and its
/// provider copy no longer `bound`; both still exist with their spec.
async fn released(mine: &Api<DynamicObject>, theirs: &Api<DynamicObject>, name: &str, size: i64) {
    eventually(&format!("{name} released in the app cluster"), || async {
        let o = mine
            .get_opt(name)
            .await
            .unwrap()
            .expect("the object is kept");
        (o.finalizers().is_empty() && !bound(&o) && o.data["spec"]["size"] == json!(size))
            .then_some(())
    })
    .await;
    eventually(&format!("{name}'s provider copy unmarked"), || async {
        let o = theirs
            .get_opt(name)
            .await
            .unwrap()
            .expect("the provider copy is kept");
        (!bound(&o)).then_some(())
    })
    .await;
}

/// The CRD exists and is not being deleted.
async fn assert_kept(crds: &Api<CustomResourceDefinition>) {
    let crd = crds.get_opt(NAME).await.unwrap().expect("the CRD is kept");
    assert!(
        crd.metadata.deletion_timestamp.is_none(),
        "the CRD is not being deleted"
    );
}

/// Item 3: a synced object carries `bound: "true"` on both copies.
#[tokio::test]
async fn both_copies_of_a_synced_object_are_marked_bound() {
    let env = clusters(false).await;
    let consumer = env["app"].client().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    create_namespace(&consumer, "klutch-bind").await;
    let space = space(&env["control-plane"], "cluster-bound").await;
    let mut konnector = Konnector::start(env["app"].kubeconfig_path(), "konnector", dir.path());
    with_logs(dir.path(), async {
        export(&space).await;
        bind(&consumer, &space, NAME, vec![]).await;
        ready(&consumer).await;
        create_namespace(&consumer, "team-b").await;
        let mine = Api::<DynamicObject>::namespaced_with(consumer.clone(), "team-b", &widgets());
        let theirs = Api::<DynamicObject>::namespaced_with(
            space.provider.clone(),
            &space.service_ns("team-b"),
            &widgets(),
        );
        create_widget(&mine, "w1", 1).await;
        let copy = eventually("provider copy", || async {
            theirs.get_opt("w1").await.unwrap()
        })
        .await;
        assert!(bound(&copy), "the provider copy is bound");
        eventually("the app-cluster object is bound", || async {
            bound(&mine.get("w1").await.unwrap()).then_some(())
        })
        .await;
        let o = mine.get("w1").await.unwrap();
        assert!(o.finalizers().contains(&SYNCER.to_owned()));
    })
    .await;
    assert!(konnector.terminate().await.success());
}

/// Item 1: unbinding keeps the CRD and the objects (live, and while the konnector was down); a
/// new binding resumes; deletion only with the opt-in annotation on the CRD. A controller manager
/// runs, so garbage collection had its chance at the CRD (owned by the deleted binding).
#[tokio::test]
async fn unbinding_keeps_the_crd_and_every_object() {
    let env = clusters(true).await;
    let consumer = env["app"].client().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    create_namespace(&consumer, "klutch-bind").await;
    let space = space(&env["control-plane"], "cluster-unbind").await;
    let mut konnector = Konnector::start(env["app"].kubeconfig_path(), "konnector-a", dir.path());
    let crds = Api::<CustomResourceDefinition>::all(consumer.clone());
    with_logs(dir.path(), async {
        export(&space).await;
        bind(&consumer, &space, NAME, vec![]).await;
        ready(&consumer).await;
        create_namespace(&consumer, "team-u").await;
        let mine = Api::<DynamicObject>::namespaced_with(consumer.clone(), "team-u", &widgets());
        let theirs = Api::<DynamicObject>::namespaced_with(
            space.provider.clone(),
            &space.service_ns("team-u"),
            &widgets(),
        );
        for (name, size) in [("u1", 1), ("u2", 2)] {
            create_widget(&mine, name, size).await;
        }
        for name in ["u1", "u2"] {
            eventually("provider copy", || async {
                theirs.get_opt(name).await.unwrap().filter(bound)
            })
            .await;
        }

        // Unbind while the konnector runs: everything stays, nothing is ours any more.
        delete_binding(&consumer).await;
        released(&mine, &theirs, "u1", 1).await;
        released(&mine, &theirs, "u2", 2).await;
        assert_kept(&crds).await;
        // Released objects can be deleted without a konnector; the provider copy stays.
        mine.delete("u2", &DeleteParams::default()).await.unwrap();
        eventually("u2 deleted in the app cluster", || async {
            mine.get_opt("u2").await.unwrap().is_none().then_some(())
        })
        .await;

        // A new binding of the same name takes the CRD over and resumes syncing u1.
        bind(&consumer, &space, NAME, vec![]).await;
        ready(&consumer).await;
        let binding = Api::<APIServiceBinding>::namespaced(consumer.clone(), "klutch-bind")
            .get(NAME)
            .await
            .unwrap();
        eventually("CRD owned by the new binding", || async {
            let crd = crds.get(NAME).await.unwrap();
            crd.owner_references()
                .iter()
                .any(|r| Some(&r.uid) == binding.metadata.uid.as_ref())
                .then_some(())
        })
        .await;
        eventually("u1 synced again", || async {
            let o = mine.get("u1").await.unwrap();
            let p = theirs.get("u1").await.unwrap();
            (o.finalizers().contains(&SYNCER.to_owned()) && bound(&o) && bound(&p)).then_some(())
        })
        .await;
        theirs
            .patch_status(
                "u1",
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": { "phase": "Rebound" } })),
            )
            .await
            .unwrap();
        eventually("status down after rebinding", || async {
            (mine.get("u1").await.unwrap().data.get("status")
                == Some(&json!({ "phase": "Rebound" })))
            .then_some(())
        })
        .await;
        // u2, deleted while unbound, comes back from its kept provider copy (adoption), never
        // the other way round.
        eventually("u2 adopted back", || async {
            mine.get_opt("u2").await.unwrap().filter(bound)
        })
        .await;

        // Unbind while the konnector is down: released when it comes back.
        konnector.terminate().await;
        delete_binding(&consumer).await;
        konnector = Konnector::start(env["app"].kubeconfig_path(), "konnector-b", dir.path());
        released(&mine, &theirs, "u1", 1).await;
        released(&mine, &theirs, "u2", 2).await;
        assert_kept(&crds).await;

        // The opt-in: a CRD annotated delete-on-unbind goes with its binding (and its objects);
        // the provider copies stay.
        bind(&consumer, &space, NAME, vec![]).await;
        ready(&consumer).await;
        eventually("u1 synced again", || async {
            mine.get("u1").await.unwrap().filter_bound()
        })
        .await;
        crds.patch(
            NAME,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "annotations": {
                "klutch.anynines.com/delete-on-unbind": "true" } } })),
        )
        .await
        .unwrap();
        delete_binding(&consumer).await;
        eventually("CRD deleted as opted in", || async {
            crds.get_opt(NAME).await.unwrap().is_none().then_some(())
        })
        .await;
        for name in ["u1", "u2"] {
            eventually(
                &format!("{name}'s provider copy kept, unmarked"),
                || async {
                    let o = theirs.get_opt(name).await.unwrap().expect("kept");
                    (!bound(&o)).then_some(())
                },
            )
            .await;
        }
    })
    .await;
    assert!(konnector.terminate().await.success());
}

trait FilterBound: Sized {
    fn filter_bound(self) -> Option<()>;
}

impl FilterBound for DynamicObject {
    fn filter_bound(self) -> Option<()> {
        (bound(&self) && self.finalizers().contains(&SYNCER.to_owned())).then_some(())
    }
}

/// Plays Klutch's konnector for deletions, knowing only Klutch's finalizers: an app-cluster object
/// being deleted loses `klutch.anynines.com/syncer` after its provider copy was deleted. It knows
/// no finalizer on bindings (Klutch puts none there).
async fn klutch_deleter(consumer: kube::Client, provider: kube::Client, space_ns: String) {
    let all = Api::<DynamicObject>::all_with(consumer.clone(), &widgets());
    loop {
        if let Ok(list) = all.list(&ListParams::default()).await {
            for o in list
                .items
                .into_iter()
                .filter(|o| o.metadata.deletion_timestamp.is_some())
            {
                let ns = o.namespace().unwrap();
                let theirs = Api::<DynamicObject>::namespaced_with(
                    provider.clone(),
                    &klutch_sdk::sync::naming::service_namespace(&space_ns, &ns),
                    &widgets(),
                );
                let _ = theirs.delete(&o.name_any(), &DeleteParams::default()).await;
                let rest: Vec<String> = o
                    .finalizers()
                    .iter()
                    .filter(|f| *f != SYNCER)
                    .cloned()
                    .collect();
                let _ = Api::<DynamicObject>::namespaced_with(consumer.clone(), &ns, &widgets())
                    .patch(
                        &o.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(json!({ "metadata": { "finalizers": rest } })),
                    )
                    .await;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Item 2: forward (objects as Klutch's konnector, or an earlier version of ours with a
/// finalizer on the binding, leave them) and rollback (what ours leaves behind is deletable by a
/// controller that knows only Klutch's finalizers).
#[tokio::test]
async fn migration_both_ways_leaves_nothing_undeletable() {
    let env = clusters(false).await;
    let consumer = env["app"].client().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    create_namespace(&consumer, "klutch-bind").await;
    let space = space(&env["control-plane"], "cluster-migrate").await;
    let crds = Api::<CustomResourceDefinition>::all(consumer.clone());
    let bindings = Api::<APIServiceBinding>::namespaced(consumer.clone(), "klutch-bind");
    let mine = Api::<DynamicObject>::namespaced_with(consumer.clone(), "team-m", &widgets());
    let theirs = Api::<DynamicObject>::namespaced_with(
        space.provider.clone(),
        &space.service_ns("team-m"),
        &widgets(),
    );
    let mut konnector: Option<Konnector> = None;
    with_logs(dir.path(), async {
        // --- The app cluster as Klutch's konnector left it: the binding (here also with the
        // finalizer earlier versions of ours put on it), the CRD owned by the binding, an object
        // with Klutch's finalizer and its bound provider copy.
        let binding_crd = klutch_sdk::api::crds()
            .into_iter()
            .find(|c| c.spec.names.kind == "APIServiceBinding")
            .unwrap();
        install_crd(&consumer, &binding_crd).await.unwrap();
        export(&space).await;
        bind(&consumer, &space, NAME, vec![]).await;
        let binding = bindings
            .patch(
                NAME,
                &PatchParams::default(),
                &Patch::Merge(json!({ "metadata": { "finalizers": [SYNCER] } })),
            )
            .await
            .unwrap();
        let export = Api::<klutch_sdk::api::APIServiceExport>::namespaced(
            space.provider.clone(),
            &space.cluster_ns,
        )
        .get(NAME)
        .await
        .unwrap();
        let old_crd = klutch_sdk::api::convert::crd_from_export(&export, &binding).unwrap();
        install_crd(&consumer, &old_crd).await.unwrap();
        create_namespace(&consumer, "team-m").await;
        let mappings =
            Api::<APIServiceNamespace>::namespaced(space.provider.clone(), &space.cluster_ns);
        mappings
            .create(
                &PostParams::default(),
                &APIServiceNamespace::new("team-m", Default::default()),
            )
            .await
            .unwrap();
        eventually("service namespace", || async {
            mappings.get("team-m").await.ok()?.status?.namespace
        })
        .await;
        let mut old = DynamicObject::new("old", &widgets());
        old.data = json!({ "spec": { "size": 7 } });
        old.metadata.finalizers = Some(vec![SYNCER.into()]);
        mine.create(&PostParams::default(), &old).await.unwrap();
        let mut copy = DynamicObject::new("old", &widgets());
        copy.data = json!({ "spec": { "size": 7 } });
        copy.metadata.annotations = Some([(BOUND.to_owned(), "true".to_owned())].into());
        theirs.create(&PostParams::default(), &copy).await.unwrap();

        // --- Forward: our konnector takes all of it over.
        konnector = Some(Konnector::start(
            env["app"].kubeconfig_path(),
            "konnector",
            dir.path(),
        ));
        ready(&consumer).await;
        eventually("no finalizer on the binding", || async {
            bindings
                .get(NAME)
                .await
                .unwrap()
                .finalizers()
                .is_empty()
                .then_some(())
        })
        .await;
        eventually("the old object is synced", || async {
            mine.get("old").await.unwrap().filter_bound()
        })
        .await;
        theirs
            .patch_status(
                "old",
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": { "phase": "Ready" } })),
            )
            .await
            .unwrap();
        eventually("status down", || async {
            (mine.get("old").await.unwrap().data.get("status")
                == Some(&json!({ "phase": "Ready" })))
            .then_some(())
        })
        .await;
        create_widget(&mine, "new", 3).await;
        eventually("the new object is synced", || async {
            theirs.get_opt("new").await.unwrap().filter(bound)?;
            mine.get("new").await.unwrap().filter_bound()
        })
        .await;

        // --- Rollback: our konnector stops; Klutch's would take over.
        assert!(konnector.take().unwrap().terminate().await.success());
        let klutch_known = [SYNCER];
        for b in bindings.list(&ListParams::default()).await.unwrap() {
            assert!(
                b.finalizers().is_empty(),
                "binding {} carries finalizers Klutch's konnector never removes: {:?}",
                b.name_any(),
                b.finalizers()
            );
        }
        for o in Api::<DynamicObject>::all_with(consumer.clone(), &widgets())
            .list(&ListParams::default())
            .await
            .unwrap()
        {
            assert!(
                o.finalizers()
                    .iter()
                    .all(|f| klutch_known.contains(&f.as_str())),
                "{} carries finalizers Klutch does not know: {:?}",
                o.name_any(),
                o.finalizers()
            );
        }
        let crd = crds.get(NAME).await.unwrap();
        assert!(crd.finalizers().is_empty(), "the CRD carries no finalizer");

        let deleter = tokio::spawn(klutch_deleter(
            consumer.clone(),
            space.provider.clone(),
            space.cluster_ns.clone(),
        ));
        mine.delete("new", &DeleteParams::default()).await.unwrap();
        eventually("object deleted under Klutch", || async {
            (mine.get_opt("new").await.unwrap().is_none()
                && theirs.get_opt("new").await.unwrap().is_none())
            .then_some(())
        })
        .await;
        // Deleting the binding under Klutch: it goes at once (Klutch's konnector would run on;
        // the CRD and the objects stay).
        delete_binding(&consumer).await;
        deleter.abort();
        assert_kept(&crds).await;
        assert!(mine.get_opt("old").await.unwrap().is_some(), "old is kept");

        // --- And forward again: ours releases what the deleted binding left.
        konnector = Some(Konnector::start(
            env["app"].kubeconfig_path(),
            "konnector",
            dir.path(),
        ));
        released(&mine, &theirs, "old", 7).await;
    })
    .await;
    if let Some(mut k) = konnector {
        assert!(k.terminate().await.success());
    }
}
