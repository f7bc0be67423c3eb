//! The package's compositions, generated as `apiextensions.crossplane.io/v1` Composition
//! objects: Pipeline mode, one `patch-and-transform` step with
//! `function-patch-and-transform`.
//!
//! * `a9s-<service>`: one `dataservices.anynines.com/v1` ServiceInstance, ProviderConfig
//!   `<service>-service-broker`; service, plan, `acceptsIncomplete` and every set parameter
//!   (under the broker's key, [`A9S_PARAMETERS`]) are patched in; the instance's state comes
//!   back to `status.managed`.
//! * `a9s-servicebinding`, `a9s-backup`, `a9s-restore`: ServiceBinding, Backup, Restore of
//!   provider-anynines, ProviderConfig `<serviceInstanceType>-service-broker` /
//!   `-backup-manager`; bindings write their credentials to `<claim>-creds` in the claim's
//!   namespace.
//! * `a8s-postgresql`, `a8s-servicebinding`, `a8s-backup`, `a8s-restore`: provider-kubernetes
//!   Objects (ProviderConfig `kubernetes-provider`) wrapping the a8s operator's resources, named
//!   after the claim, in the claim's namespace.

use serde_json::{Value, json};

/// The function the compositions run; its `functionRef.name`.
pub const FUNCTION_NAME: &str = "function-patch-and-transform";
/// The organization GUID every a9s instance is provisioned in (Klutch's value).
pub const ORGANIZATION_GUID: &str = "a1d46b5c-b639-4f43-85c7-e9a0e5f01f75";
/// The space GUID every a9s instance is provisioned in (Klutch's value).
pub const SPACE_GUID: &str = "1bf71cf3-9017-4846-bffc-b9b31872bfaf";
/// Settings of the generated compositions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// The organization GUID a9s instances are provisioned in (default [`ORGANIZATION_GUID`]).
    pub organization_guid: String,
    /// The space GUID a9s instances are provisioned in (default [`SPACE_GUID`]).
    pub space_guid: String,
}

impl Default for Options {
    /// Klutch v1.5's values, so existing instances keep their broker-side accounting.
    fn default() -> Self {
        Options {
            organization_guid: ORGANIZATION_GUID.into(),
            space_guid: SPACE_GUID.into(),
        }
    }
}

/// The provider-kubernetes ProviderConfig of the a8s compositions.
pub const KUBERNETES_PROVIDER_CONFIG: &str = "kubernetes-provider";

const CLAIM_NAMESPACE: &str = "metadata.labels[crossplane.io/claim-namespace]";
const CLAIM_NAME: &str = "metadata.labels[crossplane.io/claim-name]";

/// One a9s data service as the compositions see it.
#[derive(Clone, Copy, Debug)]
pub struct A9sService {
    /// The claim's plural, e.g. `postgresqlinstances`.
    pub claim: &'static str,
    /// The composite kind, e.g. `XPostgresqlInstance`.
    pub composite_kind: &'static str,
    /// The short name: composition `a9s-<name>`, ProviderConfig `<name>-service-broker`.
    pub service: &'static str,
    /// `(claim field path below spec.parameters, broker key path)`.
    pub parameters: &'static [(&'static str, &'static str)],
}

const fn svc(
    claim: &'static str,
    composite_kind: &'static str,
    service: &'static str,
    parameters: &'static [(&'static str, &'static str)],
) -> A9sService {
    A9sService {
        claim,
        composite_kind,
        service,
        parameters,
    }
}

/// The eight a9s data services and how their parameters reach the broker.
pub const A9S_PARAMETERS: [A9sService; 8] = [
    svc(
        "postgresqlinstances",
        "XPostgresqlInstance",
        "postgresql",
        &[
            ("dataChecksums", "data_checksums"),
            ("maxConnections", "max_connections"),
            ("effectiveCacheSize", "effective_cache_size"),
            ("workMem", "work_mem"),
            ("maintenanceWorkMem", "maintenance_work_mem"),
            ("tempFileLimit", "temp_file_limit"),
            ("trackIoTiming", "track_io_timing"),
            ("archiveTimeout", "archive_timeout"),
            ("statementTimeout", "statement_timeout"),
            (
                "idleInTransactionSessionTimeout",
                "idle_in_transaction_session_timeout",
            ),
            ("rolePrivileges", "role_privileges"),
            ("walLevelLogical", "wal_level_logical"),
            ("walWriterDelay", "wal_writer_delay"),
            ("maxReplicationSlots", "max_replication_slots"),
            ("maxWalSenders", "max_wal_senders"),
            ("synchronousCommit", "synchronous_commit"),
            ("clientMinMessages", "client_min_messages"),
            ("logMinMessages", "pg_log_min_messages"),
            ("logMinErrorStatement", "pg_log_min_error_statement"),
            ("logStatement", "log_statement"),
            ("logErrorVerbosity", "log_error_verbosity"),
        ],
    ),
    svc(
        "mongodbinstances",
        "XMongodbInstance",
        "mongodb",
        &[(
            "setClusterParameter.changeStreamOptions.preAndPostImages.expireAfterSeconds",
            "set_cluster_parameter.changeStreamOptions.preAndPostImages.expireAfterSeconds",
        )],
    ),
    svc(
        "mariadbinstances",
        "XMariadbInstance",
        "mariadb",
        &[
            ("binlogExpireDays", "binlog_expire_days"),
            ("databases", "databases"),
            (
                "grantPerformanceSchemaPermissions",
                "grant_performance_schema_permissions",
            ),
        ],
    ),
    svc(
        "messaginginstances",
        "XMessagingInstance",
        "messaging",
        &[
            ("consumerTimeout", "consumer_timeout"),
            ("tlsProtocols", "tls-protocols"),
            ("tlsCiphers", "tls-ciphers"),
        ],
    ),
    svc(
        "searchinstances",
        "XSearchInstance",
        "search",
        &[
            ("javaHeapspace", "java_heapspace"),
            ("javaMaxmetaspace", "java_maxmetaspace"),
            ("javaGarbageCollector", "java_garbage_collector"),
            ("tlsProtocols", "tls-protocols"),
            ("tlsCiphers", "tls-ciphers"),
        ],
    ),
    svc(
        "logme2instances",
        "XLogme2Instance",
        "logme2",
        &[
            ("javaHeapspace", "java_heapspace"),
            ("javaMaxmetaspace", "java_maxmetaspace"),
            ("javaGarbageCollector", "java_garbage_collector"),
            ("ismJobInterval", "ism_job_interval"),
            ("ismDeletionAfter", "ism_deletion_after"),
            ("ismJitter", "ism_jitter"),
            ("opensearchTlsProtocols", "opensearch-tls-protocols"),
            ("opensearchTlsCiphers", "opensearch-tls-ciphers"),
            ("fluentdUdp", "fluentd-udp"),
            ("fluentdTcp", "fluentd-tcp"),
            ("fluentdTls", "fluentd-tls"),
            ("fluentdTlsCiphers", "fluentd-tls-ciphers"),
            ("fluentdTlsVersion", "fluentd-tls-version"),
            ("fluentdTlsMinVersion", "fluentd-tls-min-version"),
            ("fluentdTlsMaxVersion", "fluentd-tls-max-version"),
            ("groks", "groks"),
        ],
    ),
    svc(
        "prometheusinstances",
        "XPrometheusInstance",
        "prometheus",
        &[
            ("mappingStrictMatch", "mapping_strict_match"),
            ("scrapeConfigs", "scrape_configs"),
        ],
    ),
    svc(
        "keyvalueinstances",
        "XKeyvalueInstance",
        "keyvalue",
        &[
            ("snapshot", "snapshot"),
            ("replBacklogSize", "repl-backlog-size"),
            ("minReplicasToWrite", "min-replicas-to-write"),
            ("minReplicasMaxLag", "min-replicas-max-lag"),
            ("lazyfreeLazyEviction", "lazyfree-lazy-eviction"),
            ("lazyfreeLazyExpire", "lazyfree-lazy-expire"),
            ("maxmemory", "maxmemory"),
            ("maxmemoryPolicy", "maxmemory-policy"),
            ("maxmemorySamples", "maxmemory-samples"),
            ("maxclients", "maxclients"),
            ("downAfterMilliseconds", "down-after-milliseconds"),
            ("failoverTimeout", "failover-timeout"),
            ("hostnameResolution", "hostname-resolution"),
            ("tlsProtocols", "tls-protocols"),
            ("tlsCiphers", "tls-ciphers"),
            ("tlsCiphersuites", "tls-ciphersuites"),
            ("luaTimeLimit", "lua-time-limit"),
            ("notifyKeyspaceEvents", "notify-keyspace-events"),
        ],
    ),
];

/// a8s PostgreSQL parameters: `(claim field, operator field, lower-case the value)`.
pub const A8S_POSTGRESQL_PARAMETERS: [(&str, &str, bool); 17] = [
    ("maxConnections", "maxConnections", false),
    ("tempFileLimit", "tempFileLimitKiloBytes", false),
    ("trackIoTiming", "trackIOTiming", false),
    ("archiveTimeout", "archiveTimeoutSeconds", false),
    ("statementTimeout", "statementTimeoutMillis", false),
    ("walWriterDelay", "walWriterDelayMillis", false),
    ("maxLocksPerTransaction", "maxLocksPerTransaction", false),
    ("maxReplicationSlots", "maxReplicationSlots", false),
    ("maxWalSenders", "maxWALSenders", false),
    ("synchronousCommit", "synchronousCommit", false),
    ("sslCiphers", "sslCiphers", false),
    ("sslMinProtocolVersion", "sslMinProtocolVersion", false),
    ("clientMinMessages", "clientMinMessages", true),
    ("logMinMessages", "logMinMessages", true),
    ("logMinErrorStatement", "logMinErrorStatement", true),
    ("logStatement", "logStatement", false),
    ("logErrorVerbosity", "logErrorVerbosity", false),
];

/// a8s sizes: `(plan size, volume, CPU, memory)`.
pub const A8S_SIZES: [(&str, &str, &str, &str); 4] = [
    ("nano", "3Gi", "2", "1Gi"),
    ("small", "10Gi", "2", "2Gi"),
    ("medium", "50Gi", "2", "4Gi"),
    ("big", "100Gi", "4", "16Gi"),
];

fn from(from: &str, to: &str) -> Value {
    json!({"type": "FromCompositeFieldPath", "fromFieldPath": from, "toFieldPath": to})
}

fn from_with(from: &str, to: &str, transforms: Value) -> Value {
    json!({"type": "FromCompositeFieldPath", "fromFieldPath": from, "toFieldPath": to, "transforms": transforms})
}

fn to_composite(from: &str, to: &str) -> Value {
    json!({"type": "ToCompositeFieldPath", "fromFieldPath": from, "toFieldPath": to})
}

fn format(fmt: &str) -> Value {
    json!([{"type": "string", "string": {"type": "Format", "fmt": fmt}}])
}

fn claim_labels() -> [Value; 2] {
    [
        from(CLAIM_NAMESPACE, CLAIM_NAMESPACE),
        from(CLAIM_NAME, CLAIM_NAME),
    ]
}

fn status_back(fields: &[&str], prefix: &str) -> Vec<Value> {
    fields
        .iter()
        .map(|f| to_composite(&format!("{prefix}.{f}"), &format!("status.managed.{f}")))
        .collect()
}

/// A Pipeline composition named `name` for `composite_kind` composing one resource.
fn composition(name: &str, composite_kind: &str, base: Value, patches: Vec<Value>) -> Value {
    json!({
        "apiVersion": "apiextensions.crossplane.io/v1",
        "kind": "Composition",
        "metadata": {"name": name},
        "spec": {
            "compositeTypeRef": {"apiVersion": "anynines.com/v1", "kind": composite_kind},
            "mode": "Pipeline",
            "pipeline": [{
                "step": "patch-and-transform",
                "functionRef": {"name": FUNCTION_NAME},
                "input": {
                    "apiVersion": "pt.fn.crossplane.io/v1beta1",
                    "kind": "Resources",
                    "resources": [{"name": name, "base": base, "patches": patches}],
                },
            }],
        },
    })
}

/// `a9s-<service>` for one entry of [`A9S_PARAMETERS`].
fn a9s_instance(
    options: &Options,
    composite_kind: &str,
    service: &str,
    parameters: &[(&str, &str)],
) -> Value {
    let base = json!({
        "apiVersion": "dataservices.anynines.com/v1",
        "kind": "ServiceInstance",
        "spec": {
            "forProvider": {
                "acceptsIncomplete": true,
                "organizationGuid": options.organization_guid,
                "spaceGuid": options.space_guid,
            },
            "providerConfigRef": {"name": format!("{service}-service-broker")},
        },
    });
    let mut patches: Vec<Value> = claim_labels().into();
    patches.extend([
        from("spec.service", "spec.forProvider.serviceName"),
        from("spec.plan", "spec.forProvider.planName"),
        from(
            "spec.acceptsIncomplete",
            "spec.forProvider.acceptsIncomplete",
        ),
    ]);
    for (field, key) in parameters {
        patches.push(from(
            &format!("spec.parameters.{field}"),
            &format!("spec.forProvider.parameters.{key}"),
        ));
    }
    patches.extend(status_back(
        &["createdAt", "provisionedAt", "state", "updatedAt"],
        "status.atProvider",
    ));
    patches.push(to_composite(
        "status.conditions",
        "status.managed.conditions",
    ));
    composition(&format!("a9s-{service}"), composite_kind, base, patches)
}

fn a9s_servicebinding() -> Value {
    let base = json!({
        "apiVersion": "dataservices.anynines.com/v1",
        "kind": "ServiceBinding",
        "spec": {"forProvider": {"acceptsIncomplete": true}},
    });
    let mut patches = vec![from(
        "spec.serviceInstanceType",
        "metadata.labels[klutch.io/instance-type]",
    )];
    patches.extend(claim_labels());
    patches.extend([
        from("spec.instanceRef", "spec.forProvider.instanceName"),
        from(
            "spec.acceptsIncomplete",
            "spec.forProvider.acceptsIncomplete",
        ),
        from_with(
            "spec.serviceInstanceType",
            "spec.providerConfigRef.name",
            format("%s-service-broker"),
        ),
        from(CLAIM_NAMESPACE, "spec.writeConnectionSecretToRef.namespace"),
        from_with(
            CLAIM_NAME,
            "spec.writeConnectionSecretToRef.name",
            format("%s-creds"),
        ),
    ]);
    patches.extend(status_back(
        &["state", "connectionDetails"],
        "status.atProvider",
    ));
    patches.push(to_composite(
        "status.conditions",
        "status.managed.conditions",
    ));
    composition("a9s-servicebinding", "XServiceBinding", base, patches)
}

fn a9s_backup() -> Value {
    let base = json!({"apiVersion": "dataservices.anynines.com/v1", "kind": "Backup", "spec": {"forProvider": {}}});
    let mut patches: Vec<Value> = claim_labels().into();
    patches.extend([
        from("spec.instanceRef", "spec.forProvider.instanceName"),
        from_with(
            "spec.serviceInstanceType",
            "spec.providerConfigRef.name",
            format("%s-backup-manager"),
        ),
    ]);
    patches.extend(status_back(
        &[
            "downloadable",
            "finished_at",
            "id",
            "size",
            "status",
            "triggered_at",
        ],
        "status.atProvider",
    ));
    patches.push(to_composite(
        "status.conditions",
        "status.managed.conditions",
    ));
    composition("a9s-backup", "XBackup", base, patches)
}

fn a9s_restore() -> Value {
    let base = json!({"apiVersion": "dataservices.anynines.com/v1", "kind": "Restore", "spec": {"forProvider": {}}});
    let mut patches: Vec<Value> = claim_labels().into();
    patches.extend([
        from("spec.backupRef", "spec.forProvider.backupName"),
        from_with(
            "spec.serviceInstanceType",
            "spec.providerConfigRef.name",
            format("%s-backup-manager"),
        ),
    ]);
    patches.extend(status_back(
        &["finishedAt", "restoreId", "state", "triggeredAt"],
        "status.atProvider",
    ));
    patches.push(to_composite(
        "status.conditions",
        "status.managed.conditions",
    ));
    composition("a9s-restore", "XRestore", base, patches)
}

/// A provider-kubernetes Object wrapping `manifest`.
fn object(manifest: Value) -> Value {
    json!({
        "apiVersion": "kubernetes.crossplane.io/v1alpha1",
        "kind": "Object",
        "spec": {
            "forProvider": {"manifest": manifest},
            "providerConfigRef": {"name": KUBERNETES_PROVIDER_CONFIG},
        },
    })
}

/// The manifest is named after the claim, in the claim's namespace.
fn manifest_identity() -> [Value; 2] {
    [
        from(
            CLAIM_NAMESPACE,
            "spec.forProvider.manifest.metadata.namespace",
        ),
        from(CLAIM_NAME, "spec.forProvider.manifest.metadata.name"),
    ]
}

fn size_map(column: usize) -> Value {
    let mut map = serde_json::Map::new();
    for size in A8S_SIZES {
        let value = match column {
            1 => size.1,
            2 => size.2,
            _ => size.3,
        };
        map.insert(size.0.to_string(), json!(value));
    }
    json!([
        {"type": "string", "string": {"type": "Regexp", "regexp": {"match": "\\b(\\w+)$"}}},
        {"type": "map", "map": map},
    ])
}

fn a8s_postgresql() -> Value {
    let base = object(json!({
        "apiVersion": "postgresql.anynines.com/v1beta3",
        "kind": "Postgresql",
        "spec": {"expose": "LoadBalancer"},
    }));
    let m = "spec.forProvider.manifest.spec";
    let mut patches: Vec<Value> = manifest_identity().into();
    patches.extend([
        from_with(
            "spec.service",
            &format!("{m}.version"),
            json!([
                {"type": "string", "string": {"type": "TrimPrefix", "trim": "a9s-postgresql"}},
                {"type": "convert", "convert": {"toType": "int64"}},
            ]),
        ),
        from_with("spec.plan", &format!("{m}.volumeSize"), size_map(1)),
        from_with("spec.plan", &format!("{m}.resources.requests.cpu"), size_map(2)),
        from_with("spec.plan", &format!("{m}.resources.limits.cpu"), size_map(2)),
        from_with("spec.plan", &format!("{m}.resources.requests.memory"), size_map(3)),
        from_with("spec.plan", &format!("{m}.resources.limits.memory"), size_map(3)),
        from_with(
            "spec.plan",
            &format!("{m}.replicas"),
            json!([
                {"type": "string", "string": {"type": "Regexp", "regexp": {"match": "-(single|replica)-", "group": 1}}},
                {"type": "map", "map": {"single": "1", "replica": "3"}},
                {"type": "convert", "convert": {"toType": "int64"}},
            ]),
        ),
        from("spec.expose", &format!("{m}.expose")),
    ]);
    for (field, target, lower) in A8S_POSTGRESQL_PARAMETERS {
        let from_path = format!("spec.parameters.{field}");
        let to_path = format!("{m}.parameters.{target}");
        patches.push(if lower {
            from_with(
                &from_path,
                &to_path,
                json!([{"type": "string", "string": {"type": "Convert", "convert": "ToLower"}}]),
            )
        } else {
            from(&from_path, &to_path)
        });
    }
    patches.extend(status_back(
        &["clusterStatus", "readyReplicas"],
        "status.atProvider.manifest.status",
    ));
    composition("a8s-postgresql", "XPostgresqlInstance", base, patches)
}

fn postgresql_only(to: &str, value: &str) -> Value {
    from_with(
        "spec.serviceInstanceType",
        to,
        json!([{"type": "map", "map": {"postgresql": value}}]),
    )
}

fn a8s_servicebinding() -> Value {
    let base = object(json!({
        "apiVersion": "servicebindings.anynines.com/v1beta3",
        "kind": "ServiceBinding",
    }));
    let m = "spec.forProvider.manifest.spec.instance";
    let mut patches: Vec<Value> = manifest_identity().into();
    patches.extend([
        postgresql_only(
            &format!("{m}.apiVersion"),
            "postgresql.anynines.com/v1beta3",
        ),
        postgresql_only(&format!("{m}.kind"), "Postgresql"),
        from(CLAIM_NAMESPACE, &format!("{m}.namespace")),
        from("spec.instanceRef", &format!("{m}.name")),
    ]);
    patches.extend(status_back(
        &["implemented", "secret.name", "secret.namespace"],
        "status.atProvider.manifest.status",
    ));
    composition("a8s-servicebinding", "XServiceBinding", base, patches)
}

fn a8s_backup_or_restore(restore: bool) -> Value {
    let kind = if restore { "Restore" } else { "Backup" };
    let base = object(json!({"apiVersion": "backups.anynines.com/v1beta3", "kind": kind}));
    let m = "spec.forProvider.manifest.spec";
    let mut patches: Vec<Value> = manifest_identity().into();
    patches.extend([
        postgresql_only(
            &format!("{m}.serviceInstance.apiGroup"),
            "postgresql.anynines.com",
        ),
        postgresql_only(&format!("{m}.serviceInstance.kind"), "PostgreSQL"),
        from("spec.instanceRef", &format!("{m}.serviceInstance.name")),
    ]);
    let status: &[&str] = if restore {
        patches.push(from("spec.backupRef", &format!("{m}.backupName")));
        &[
            "conditions",
            "lastObservationTime",
            "podToPoll.ip",
            "podToPoll.namespacedName",
            "podToPoll.uid",
            "restoreID",
        ]
    } else {
        &[
            "backupID",
            "conditions",
            "lastObservationTime",
            "podUsedNamespacedName",
            "podUsedUID",
            "retries",
        ]
    };
    patches.extend(status_back(status, "status.atProvider.manifest.status"));
    let (name, composite) = if restore {
        ("a8s-restore", "XRestore")
    } else {
        ("a8s-backup", "XBackup")
    };
    composition(name, composite, base, patches)
}

/// Every composition with the claim plural it belongs to, in a fixed order.
pub fn all() -> Vec<(&'static str, Value)> {
    all_with(&Options::default())
}

/// Every composition with the claim plural it belongs to, generated with `options`.
pub fn all_with(options: &Options) -> Vec<(&'static str, Value)> {
    let mut all = Vec::new();
    for s in A9S_PARAMETERS {
        all.push((
            s.claim,
            a9s_instance(options, s.composite_kind, s.service, s.parameters),
        ));
    }
    all.push(("postgresqlinstances", a8s_postgresql()));
    all.push(("servicebindings", a9s_servicebinding()));
    all.push(("servicebindings", a8s_servicebinding()));
    all.push(("backups", a9s_backup()));
    all.push(("backups", a8s_backup_or_restore(false)));
    all.push(("restores", a9s_restore()));
    all.push(("restores", a8s_backup_or_restore(true)));
    all
}
