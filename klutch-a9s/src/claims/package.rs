//! The whole configuration package as files: `crossplane.yaml`, one XRD per claim kind and the
//! compositions. `cargo run -p klutch-a9s --example crossplane-api` writes them to
//! `crossplane-api/` in the repository; a test keeps the committed copy current.

use serde_json::{Value, json};

use super::backup::{Backup, Restore};
use super::binding::ServiceBinding;
use super::keyvalue::KeyvalueInstance;
use super::logme2::Logme2Instance;
use super::mariadb::MariadbInstance;
use super::messaging::MessagingInstance;
use super::mongodb::MongodbInstance;
use super::postgresql::PostgresqlInstance;
use super::prometheus::PrometheusInstance;
use super::search::SearchInstance;
use super::xrd::{ClaimDefinition, xrd};
use super::{Error, Result, composition};

/// The Configuration package's name.
pub const NAME: &str = "anynines-dataservices";
/// The Crossplane versions the package supports.
pub const CROSSPLANE_CONSTRAINT: &str = ">=v1.17.1";
/// The function every composition runs.
pub const FUNCTION_PACKAGE: &str =
    "xpkg.upbound.io/crossplane-contrib/function-patch-and-transform";
/// The function's version constraint.
pub const FUNCTION_VERSION: &str = ">=v0.9.2";

/// Every claim kind's XRD, in a fixed order (instances, then binding, backup, restore).
pub fn xrds() -> Result<Vec<Value>> {
    Ok(vec![
        xrd::<PostgresqlInstance>()?,
        xrd::<MongodbInstance>()?,
        xrd::<MariadbInstance>()?,
        xrd::<MessagingInstance>()?,
        xrd::<SearchInstance>()?,
        xrd::<Logme2Instance>()?,
        xrd::<PrometheusInstance>()?,
        xrd::<KeyvalueInstance>()?,
        xrd::<ServiceBinding>()?,
        xrd::<Backup>()?,
        xrd::<Restore>()?,
    ])
}

/// The claim kinds with their composite kind and default composition, in [`xrds`]' order.
pub fn claim_kinds() -> Vec<(&'static str, &'static str, &'static str)> {
    fn entry<K: ClaimDefinition>() -> (&'static str, &'static str, &'static str) {
        (
            K::COMPOSITE_PLURAL,
            K::COMPOSITE_KIND,
            K::DEFAULT_COMPOSITION,
        )
    }
    vec![
        entry::<PostgresqlInstance>(),
        entry::<MongodbInstance>(),
        entry::<MariadbInstance>(),
        entry::<MessagingInstance>(),
        entry::<SearchInstance>(),
        entry::<Logme2Instance>(),
        entry::<PrometheusInstance>(),
        entry::<KeyvalueInstance>(),
        entry::<ServiceBinding>(),
        entry::<Backup>(),
        entry::<Restore>(),
    ]
}

/// Example claims for every kind and composition, built with the Rust types, as
/// `(file name, claims)`. They go to `examples/` in the package; the tests apply them to a real
/// apiserver and render them.
pub fn examples() -> Vec<(&'static str, Vec<Value>)> {
    use super::ServiceInstanceType as T;
    use super::backup::{BackupSpec, RestoreSpec};
    use super::binding::ServiceBindingSpec;
    use super::keyvalue::{
        KeyvalueInstanceSpec, KeyvalueParameters, KeyvaluePlan, KeyvalueService, MaxmemoryPolicy,
    };
    use super::logme2::{Logme2InstanceSpec, Logme2Parameters, Logme2Plan, Logme2Service};
    use super::mariadb::{MariadbInstanceSpec, MariadbParameters, MariadbPlan, MariadbService};
    use super::messaging::{
        MessagingInstanceSpec, MessagingParameters, MessagingPlan, MessagingService,
        MessagingTlsProtocol,
    };
    use super::mongodb::{MongodbInstanceSpec, MongodbPlan, MongodbService};
    use super::postgresql::{
        Expose, PostgresqlInstanceSpec, PostgresqlParameters, PostgresqlPlan, PostgresqlService,
        SynchronousCommit,
    };
    use super::prometheus::{PrometheusInstanceSpec, PrometheusPlan, PrometheusService};
    use super::search::{
        JavaGarbageCollector, SearchInstanceSpec, SearchParameters, SearchPlan, SearchService,
    };

    fn doc<K: serde::Serialize + kube::Resource>(mut claim: K) -> Value {
        claim.meta_mut().namespace = Some("default".into());
        serde_json::to_value(&claim).expect("a claim serialises")
    }

    let a9s_pg = PostgresqlInstance::new(
        "orders",
        PostgresqlInstanceSpec {
            parameters: Some(PostgresqlParameters {
                max_connections: Some(150),
                synchronous_commit: Some(SynchronousCommit::Local),
                wal_level_logical: Some(true),
                ..Default::default()
            }),
            ..PostgresqlInstanceSpec::new(
                PostgresqlService::A9sPostgresql17,
                PostgresqlPlan::ReplicaSmallSsl,
            )
            .a9s()
        },
    );
    let a8s_pg = PostgresqlInstance::new(
        "inventory",
        PostgresqlInstanceSpec {
            expose: Some(Expose::Internal),
            parameters: Some(PostgresqlParameters {
                max_locks_per_transaction: Some(128),
                ..Default::default()
            }),
            ..PostgresqlInstanceSpec::new(
                PostgresqlService::A9sPostgresql14,
                PostgresqlPlan::SingleMedium,
            )
            .a8s()
        },
    );
    vec![
        (
            "postgresql-a9s.yaml",
            vec![
                doc(a9s_pg),
                doc(ServiceBinding::new(
                    "orders-app",
                    ServiceBindingSpec::new("orders", T::Postgresql).a9s(),
                )),
                doc(Backup::new(
                    "orders-nightly",
                    BackupSpec::new("orders", T::Postgresql).a9s(),
                )),
                doc(Restore::new(
                    "orders-undo",
                    RestoreSpec::a9s("orders-nightly", T::Postgresql),
                )),
            ],
        ),
        (
            "postgresql-a8s.yaml",
            vec![
                doc(a8s_pg),
                doc(ServiceBinding::new(
                    "inventory-app",
                    ServiceBindingSpec::new("inventory", T::Postgresql),
                )),
                doc(Backup::new(
                    "inventory-nightly",
                    BackupSpec::new("inventory", T::Postgresql),
                )),
                doc(Restore::new(
                    "inventory-undo",
                    RestoreSpec::a8s("inventory-nightly", "inventory"),
                )),
            ],
        ),
        (
            "mongodb.yaml",
            vec![doc(MongodbInstance::new(
                "events",
                MongodbInstanceSpec::new(
                    MongodbService::A9sMongodb70,
                    MongodbPlan::ReplicaSmallSsl,
                ),
            ))],
        ),
        (
            "mariadb.yaml",
            vec![doc(MariadbInstance::new(
                "shop-db",
                MariadbInstanceSpec {
                    parameters: Some(MariadbParameters {
                        databases: Some(vec!["shop".into(), "audit".into()]),
                        ..Default::default()
                    }),
                    ..MariadbInstanceSpec::new(
                        MariadbService::A9sMariadb1011,
                        MariadbPlan::ClusterSmallSsl,
                    )
                },
            ))],
        ),
        (
            "messaging.yaml",
            vec![doc(MessagingInstance::new(
                "queue",
                MessagingInstanceSpec {
                    parameters: Some(MessagingParameters {
                        tls_protocols: Some(vec![MessagingTlsProtocol::TlsV1_3]),
                        ..Default::default()
                    }),
                    ..MessagingInstanceSpec::new(
                        MessagingService::A9sMessaging4,
                        MessagingPlan::SingleSmallSsl,
                    )
                },
            ))],
        ),
        (
            "search.yaml",
            vec![doc(SearchInstance::new(
                "find",
                SearchInstanceSpec {
                    parameters: Some(SearchParameters {
                        java_garbage_collector: Some(JavaGarbageCollector::UseG1Gc),
                        ..Default::default()
                    }),
                    ..SearchInstanceSpec::new(
                        SearchService::A9sSearch2,
                        SearchPlan::ClusterSmallSsl,
                    )
                },
            ))],
        ),
        (
            "logme2.yaml",
            vec![doc(Logme2Instance::new(
                "logs",
                Logme2InstanceSpec {
                    parameters: Some(Logme2Parameters {
                        ism_deletion_after: Some("30d".into()),
                        ..Default::default()
                    }),
                    ..Logme2InstanceSpec::new(Logme2Service::A9sLogme2, Logme2Plan::SingleSmallSsl)
                },
            ))],
        ),
        (
            "prometheus.yaml",
            vec![doc(PrometheusInstance::new(
                "metrics",
                PrometheusInstanceSpec::new(
                    PrometheusService::A9sPrometheus,
                    PrometheusPlan::Prometheus2Grafana10SingleSmall,
                ),
            ))],
        ),
        (
            "keyvalue.yaml",
            vec![doc(KeyvalueInstance::new(
                "cache",
                KeyvalueInstanceSpec {
                    parameters: Some(KeyvalueParameters {
                        maxmemory_policy: Some(MaxmemoryPolicy::AllkeysLru),
                        snapshot: Some("[]".into()),
                        ..Default::default()
                    }),
                    ..KeyvalueInstanceSpec::new(
                        KeyvalueService::A9sKeyvalue8,
                        KeyvaluePlan::SingleSmallSsl,
                    )
                },
            ))],
        ),
    ]
}

/// `crossplane.yaml`: the Configuration's metadata and dependencies.
pub fn metadata() -> Value {
    json!({
        "apiVersion": "meta.pkg.crossplane.io/v1",
        "kind": "Configuration",
        "metadata": {
            "name": NAME,
            "annotations": {
                "meta.crossplane.io/maintainer": "The klutch authors",
                "meta.crossplane.io/source": "github.com/klutch-rs/klutch",
                "meta.crossplane.io/license": "Apache-2.0",
                "meta.crossplane.io/description": "Claims for a9s Data Services and a8s PostgreSQL (anynines.com/v1), composed into provider-anynines and provider-kubernetes resources.",
            },
        },
        "spec": {
            "crossplane": {"version": CROSSPLANE_CONSTRAINT},
            "dependsOn": [
                {"function": FUNCTION_PACKAGE, "version": FUNCTION_VERSION},
            ],
        },
    })
}

/// Every file of the package as `(path relative to the package root, YAML)`.
pub fn files() -> Result<Vec<(String, String)>> {
    files_with(&composition::Options::default())
}

/// Every file of the package, with compositions generated with `options` (e.g. a platform's own
/// organization and space GUIDs instead of Klutch's).
pub fn files_with(options: &composition::Options) -> Result<Vec<(String, String)>> {
    let header = "# Generated from klutch_a9s::claims by `cargo run -p klutch-a9s --example crossplane-api`. Do not edit.\n";
    let mut files = vec![(
        "crossplane.yaml".to_string(),
        to_yaml(header, &metadata(), "crossplane.yaml")?,
    )];
    for xrd in xrds()? {
        let claim = xrd["spec"]["claimNames"]["plural"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let name = xrd["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        files.push((
            format!("apis/{claim}/definition.yaml"),
            to_yaml(header, &xrd, &format!("XRD {name}"))?,
        ));
    }
    for (file, claims) in examples() {
        let mut yaml = String::from(header);
        for claim in claims {
            yaml.push_str("---\n");
            yaml.push_str(&to_yaml("", &claim, &format!("example {file}"))?);
        }
        files.push((format!("examples/{file}"), yaml));
    }
    for (claim, comp) in composition::all_with(options) {
        let name = comp["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        files.push((
            format!("apis/{claim}/composition-{name}.yaml"),
            to_yaml(header, &comp, &format!("composition {name}"))?,
        ));
    }
    Ok(files)
}

fn to_yaml(header: &str, value: &Value, what: &str) -> Result<String> {
    let yaml = serde_saphyr::to_string(value).map_err(|source| Error::Yaml {
        what: what.to_string(),
        source,
    })?;
    Ok(format!("{header}{yaml}"))
}
