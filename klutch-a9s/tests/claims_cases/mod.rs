//! Claim cases shared by the apiserver tests (`claims_validation`) and the Crossplane tests
//! (`claims_render`, through `crossplane beta validate`).

use serde_json::{Value, json};

/// A claim document.
pub fn claim(kind: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "anynines.com/v1",
        "kind": kind,
        "metadata": {"name": "case"},
        "spec": spec,
    })
}

/// Our create cases for every claim: the document and `None` (accepted) or the expected part
/// of the rejection.
pub fn create_cases() -> Vec<(&'static str, Value, Option<&'static str>)> {
    let pg = |spec: Value| claim("PostgresqlInstance", spec);
    let mongo = |spec: Value| claim("MongodbInstance", spec);
    let maria = |spec: Value| claim("MariadbInstance", spec);
    let msg = |spec: Value| claim("MessagingInstance", spec);
    let search = |spec: Value| claim("SearchInstance", spec);
    let logme = |spec: Value| claim("Logme2Instance", spec);
    let prom = |spec: Value| claim("PrometheusInstance", spec);
    let kv = |spec: Value| claim("KeyvalueInstance", spec);
    let sb = |spec: Value| claim("ServiceBinding", spec);
    let backup = |spec: Value| claim("Backup", spec);
    let restore = |spec: Value| claim("Restore", spec);
    let a9s_pg = |extra: Value| {
        let mut spec = json!({"service": "a9s-postgresql15", "plan": "postgresql-single-small", "compositionRef": {"name": "a9s-postgresql"}});
        spec.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        pg(spec)
    };
    let single_kv = |parameters: Value| {
        kv(
            json!({"service": "a9s-keyvalue8", "plan": "keyvalue-single-small-ssl", "parameters": parameters}),
        )
    };
    vec![
        // PostgreSQL
        (
            "pg without compositionRef uses a8s (defect 35)",
            pg(json!({"service": "a9s-postgresql14", "plan": "postgresql-single-nano"})),
            None,
        ),
        (
            "pg without compositionRef rejects a9s-only parameters",
            pg(
                json!({"service": "a9s-postgresql14", "plan": "postgresql-single-nano", "parameters": {"dataChecksums": "enabled"}}),
            ),
            Some("parameters.dataChecksums is not supported for a8s-postgresql"),
        ),
        (
            "pg without compositionRef rejects a9s services",
            pg(json!({"service": "a9s-postgresql17", "plan": "postgresql-single-nano"})),
            Some("Unsupported service used for postgresql"),
        ),
        (
            "pg a9s 13 bionic",
            pg(
                json!({"service": "a9s-postgresql13", "plan": "postgresql-replica-big-ssl-bionic", "compositionRef": {"name": "a9s-postgresql"}}),
            ),
            None,
        ),
        (
            "pg a9s 15 bionic",
            a9s_pg(json!({"plan": "postgresql-single-small-bionic"})),
            Some("Bionic plans are only supported by a9s PostgreSQL 13"),
        ),
        (
            "pg a9s replica-nano",
            a9s_pg(json!({"plan": "postgresql-replica-nano"})),
            Some("Unsupported plan used for postgresql"),
        ),
        (
            "pg a9s all a9s parameters",
            a9s_pg(
                json!({"parameters": {"dataChecksums": "disabled", "maxConnections": 100, "effectiveCacheSize": "1GB", "workMem": "4MB", "maintenanceWorkMem": "64MB", "idleInTransactionSessionTimeout": 0, "rolePrivileges": ["CREATEDB", "REPLICATION"], "walLevelLogical": true}}),
            ),
            None,
        ),
        (
            "pg a9s maxLocksPerTransaction",
            a9s_pg(json!({"parameters": {"maxLocksPerTransaction": 64}})),
            Some("parameters.maxLocksPerTransaction is not supported for a9s-postgresql"),
        ),
        (
            "pg a9s sslCiphers",
            a9s_pg(json!({"parameters": {"sslCiphers": "HIGH"}})),
            Some("parameters.sslCiphers is not supported for a9s-postgresql"),
        ),
        (
            "pg a9s sslMinProtocolVersion",
            a9s_pg(json!({"parameters": {"sslMinProtocolVersion": "TLSv1.2"}})),
            Some("parameters.sslMinProtocolVersion is not supported for a9s-postgresql"),
        ),
        (
            "pg tempFileLimit -1",
            a9s_pg(json!({"parameters": {"tempFileLimit": -1}})),
            None,
        ),
        (
            "pg tempFileLimit 0",
            a9s_pg(json!({"parameters": {"tempFileLimit": 0}})),
            Some("Must be either -1 (no limit) or a limit specified in kilobytes"),
        ),
        (
            "pg idleInTransactionSessionTimeout -1",
            a9s_pg(json!({"parameters": {"idleInTransactionSessionTimeout": -1}})),
            Some("Must be greater than or equal to 0"),
        ),
        (
            "pg walWriterDelay 0",
            a9s_pg(json!({"parameters": {"walWriterDelay": 0}})),
            Some("Must be greater than 0"),
        ),
        (
            "pg maxReplicationSlots -1",
            a9s_pg(json!({"parameters": {"maxReplicationSlots": -1}})),
            Some("Must be greater than or equal to 0"),
        ),
        (
            "pg maxWalSenders -1",
            a9s_pg(json!({"parameters": {"maxWalSenders": -1}})),
            Some("Must be greater than or equal to 0"),
        ),
        (
            "pg a8s maxLocksPerTransaction 9",
            pg(
                json!({"service": "a9s-postgresql13", "plan": "postgresql-single-nano", "parameters": {"maxLocksPerTransaction": 9}}),
            ),
            Some("Must be greater than or equal to 10"),
        ),
        (
            "pg unknown plan",
            a9s_pg(json!({"plan": "postgresql-single-huge"})),
            Some("Unsupported value: \"postgresql-single-huge\""),
        ),
        (
            "pg unknown synchronousCommit",
            a9s_pg(json!({"parameters": {"synchronousCommit": "maybe"}})),
            Some("Unsupported value: \"maybe\""),
        ),
        (
            "pg a8s expose Internal",
            pg(
                json!({"service": "a9s-postgresql13", "plan": "postgresql-replica-medium", "expose": "Internal"}),
            ),
            None,
        ),
        (
            "pg expose Public",
            pg(
                json!({"service": "a9s-postgresql13", "plan": "postgresql-replica-medium", "expose": "Public"}),
            ),
            Some("Unsupported value: \"Public\""),
        ),
        (
            "pg without plan",
            pg(json!({"service": "a9s-postgresql13"})),
            Some("spec.plan: Required value"),
        ),
        // MongoDB
        (
            "mongodb expireAfterSeconds off",
            mongo(
                json!({"service": "a9s-mongodb70", "plan": "mongodbsspl-replica-big-ssl", "parameters": {"setClusterParameter": {"changeStreamOptions": {"preAndPostImages": {"expireAfterSeconds": "off"}}}}}),
            ),
            None,
        ),
        (
            "mongodb expireAfterSeconds 3600",
            mongo(
                json!({"service": "a9s-mongodb50", "plan": "mongodbsspl-single-nano", "parameters": {"setClusterParameter": {"changeStreamOptions": {"preAndPostImages": {"expireAfterSeconds": 3600}}}}}),
            ),
            None,
        ),
        (
            "mongodb expireAfterSeconds on",
            mongo(
                json!({"service": "a9s-mongodb50", "plan": "mongodbsspl-single-nano", "parameters": {"setClusterParameter": {"changeStreamOptions": {"preAndPostImages": {"expireAfterSeconds": "on"}}}}}),
            ),
            Some("must be 'off' or an integer >= 0"),
        ),
        (
            "mongodb expireAfterSeconds -1",
            mongo(
                json!({"service": "a9s-mongodb50", "plan": "mongodbsspl-single-nano", "parameters": {"setClusterParameter": {"changeStreamOptions": {"preAndPostImages": {"expireAfterSeconds": -1}}}}}),
            ),
            Some("must be 'off' or an integer >= 0"),
        ),
        (
            "mongodb unknown service",
            mongo(json!({"service": "a9s-mongodb60", "plan": "mongodbsspl-single-nano"})),
            Some("Unsupported value: \"a9s-mongodb60\""),
        ),
        // MariaDB
        (
            "mariadb 10.11 ssl",
            maria(
                json!({"service": "a9s-mariadb1011", "plan": "mariadb-cluster-big-ssl", "parameters": {"binlogExpireDays": 1, "databases": ["a", "b"], "grantPerformanceSchemaPermissions": true}}),
            ),
            None,
        ),
        (
            "mariadb 10.11 without ssl",
            maria(json!({"service": "a9s-mariadb1011", "plan": "mariadb-single-nano"})),
            Some("MariaDB v10.11 only supports ssl plans"),
        ),
        (
            "mariadb binlogExpireDays 0",
            maria(
                json!({"service": "a9s-mariadb106", "plan": "mariadb-single-nano", "parameters": {"binlogExpireDays": 0}}),
            ),
            Some("should be greater than or equal to 1"),
        ),
        // Messaging
        (
            "messaging parameters",
            msg(
                json!({"service": "a9s-messaging4", "plan": "messaging-cluster-small-ssl", "parameters": {"consumerTimeout": 1800000, "tlsProtocols": ["tlsv1.2", "tlsv1.3"], "tlsCiphers": ["x"]}}),
            ),
            None,
        ),
        (
            "messaging consumerTimeout too small",
            msg(
                json!({"service": "a9s-messaging313", "plan": "messaging-single-nano", "parameters": {"consumerTimeout": 1000}}),
            ),
            Some("consumerTimeout in body should be greater than or equal to"),
        ),
        (
            "messaging TLS 1.1",
            msg(
                json!({"service": "a9s-messaging313", "plan": "messaging-single-nano", "parameters": {"tlsProtocols": ["tlsv1.1"]}}),
            ),
            Some("Unsupported value: \"tlsv1.1\""),
        ),
        // Search
        (
            "search parameters",
            search(
                json!({"service": "a9s-search2", "plan": "search-cluster-medium-ssl", "parameters": {"javaHeapspace": 256, "javaMaxmetaspace": 1024, "javaGarbageCollector": "UseG1GC", "tlsProtocols": ["TLSv1.3"]}}),
            ),
            None,
        ),
        (
            "search javaHeapspace 255",
            search(
                json!({"service": "a9s-search2", "plan": "search-single-nano-ssl", "parameters": {"javaHeapspace": 255}}),
            ),
            Some("Must be greater than or equal to 256"),
        ),
        (
            "search javaMaxmetaspace 1025",
            search(
                json!({"service": "a9s-search2", "plan": "search-single-nano-ssl", "parameters": {"javaMaxmetaspace": 1025}}),
            ),
            Some("Must be smaller than or equal to 1024"),
        ),
        (
            "search without ssl",
            search(json!({"service": "a9s-search2", "plan": "search-single-nano"})),
            Some("Unsupported value: \"search-single-nano\""),
        ),
        // LogMe2
        (
            "logme2 fluentd port 65536",
            logme(
                json!({"service": "a9s-logme2", "plan": "logme-single-small-ssl", "parameters": {"fluentdTls": 65536}}),
            ),
            Some("Must be smaller than or equal to 65535"),
        ),
        (
            "logme2 fluentd port 0",
            logme(
                json!({"service": "a9s-logme2", "plan": "logme-single-small-ssl", "parameters": {"fluentdUdp": 0}}),
            ),
            Some("Must be greater than 0"),
        ),
        (
            "logme2 min TLS without max (defect 37)",
            logme(
                json!({"service": "a9s-logme2", "plan": "logme-single-small-ssl", "parameters": {"fluentdTlsMinVersion": "TLS1_2"}}),
            ),
            Some("must both be set"),
        ),
        (
            "logme2 ismJitter -0.5",
            logme(
                json!({"service": "a9s-logme2", "plan": "logme-single-small-ssl", "parameters": {"ismJitter": -0.5}}),
            ),
            Some("Must be greater than or equal to 0"),
        ),
        (
            "logme2 ismJobInterval 0",
            logme(
                json!({"service": "a9s-logme2", "plan": "logme-single-small-ssl", "parameters": {"ismJobInterval": 0}}),
            ),
            Some("Must be greater than 0"),
        ),
        (
            "logme2 grok without pattern",
            logme(
                json!({"service": "a9s-logme2", "plan": "logme-single-small-ssl", "parameters": {"groks": [{}]}}),
            ),
            Some("pattern: Required value"),
        ),
        // Prometheus
        (
            "prometheus scrapeConfigs",
            prom(
                json!({"service": "a9s-prometheus", "plan": "prometheus2-grafana10-single-big", "parameters": {"mappingStrictMatch": false, "scrapeConfigs": [{"job_name": "x", "static_configs": [{"targets": ["a:9090"]}]}]}}),
            ),
            None,
        ),
        (
            "prometheus unknown plan",
            prom(json!({"service": "a9s-prometheus", "plan": "prometheus-cluster-small"})),
            Some("Unsupported value"),
        ),
        // KeyValue
        (
            "keyvalue replica with replica-only parameters",
            kv(
                json!({"service": "a9s-keyvalue8", "plan": "keyvalue-replica-small-ssl", "parameters": {"hostnameResolution": "enabled", "downAfterMilliseconds": 1, "failoverTimeout": 1, "minReplicasMaxLag": 1, "minReplicasToWrite": 0, "replBacklogSize": "10mb", "snapshot": "[]", "maxmemory": "0", "notifyKeyspaceEvents": ""}}),
            ),
            None,
        ),
        (
            "keyvalue single hostnameResolution",
            single_kv(json!({"hostnameResolution": "enabled"})),
            Some("parameters.hostnameResolution is only supported for clustered plans"),
        ),
        (
            "keyvalue single downAfterMilliseconds",
            single_kv(json!({"downAfterMilliseconds": 1})),
            Some("parameters.downAfterMilliseconds is only supported for clustered plans"),
        ),
        (
            "keyvalue single failoverTimeout",
            single_kv(json!({"failoverTimeout": 1})),
            Some("parameters.failoverTimeout is only supported for clustered plans"),
        ),
        (
            "keyvalue single minReplicasMaxLag",
            single_kv(json!({"minReplicasMaxLag": 1})),
            Some("parameters.minReplicasMaxLag is only supported for clustered plans"),
        ),
        (
            "keyvalue single minReplicasToWrite",
            single_kv(json!({"minReplicasToWrite": 1})),
            Some("parameters.minReplicasToWrite is only supported for clustered plans"),
        ),
        (
            "keyvalue single replBacklogSize",
            single_kv(json!({"replBacklogSize": "1mb"})),
            Some("parameters.replBacklogSize is only supported for clustered plans"),
        ),
        (
            "keyvalue snapshot rules",
            single_kv(json!({"snapshot": "['save 900 1','save 300 10']"})),
            None,
        ),
        (
            "keyvalue bad snapshot",
            single_kv(json!({"snapshot": "save 900 1"})),
            Some("Must either be `[]`"),
        ),
        (
            "keyvalue bad maxmemory",
            single_kv(json!({"maxmemory": "12x"})),
            Some("Must be `dynamic`, `0` or number greater than 0"),
        ),
        (
            "keyvalue bad notifyKeyspaceEvents",
            single_kv(json!({"notifyKeyspaceEvents": "g"})),
            Some("Must only contain legal characters and at least one K or E"),
        ),
        (
            "keyvalue negative maxclients",
            single_kv(json!({"maxclients": -1})),
            Some("Must not be a negative number."),
        ),
        (
            "keyvalue minReplicasMaxLag 0",
            kv(
                json!({"service": "a9s-keyvalue8", "plan": "keyvalue-replica-small-ssl", "parameters": {"minReplicasMaxLag": 0}}),
            ),
            Some("Must be higher than 0."),
        ),
        (
            "keyvalue tlsProtocols pair",
            single_kv(
                json!({"tlsProtocols": "TLSv1.3 TLSv1.2", "lazyfreeLazyEviction": "yes", "maxmemoryPolicy": "noeviction"}),
            ),
            None,
        ),
        // ServiceBinding, Backup, Restore
        (
            "binding a8s postgresql",
            sb(json!({"instanceRef": "pg", "serviceInstanceType": "postgresql"})),
            None,
        ),
        (
            "binding a8s mongodb",
            sb(json!({"instanceRef": "m", "serviceInstanceType": "mongodb"})),
            Some("Selected service instance type is not supported."),
        ),
        (
            "binding a9s mongodb",
            sb(
                json!({"instanceRef": "m", "serviceInstanceType": "mongodb", "acceptsIncomplete": false, "region": "us-east-1", "policy": "x", "compositionRef": {"name": "a9s-servicebinding"}}),
            ),
            None,
        ),
        (
            "binding bad region",
            sb(
                json!({"instanceRef": "m", "serviceInstanceType": "mongodb", "region": "mars-1", "compositionRef": {"name": "a9s-servicebinding"}}),
            ),
            Some("Unsupported value: \"mars-1\""),
        ),
        (
            "binding unknown type",
            sb(
                json!({"instanceRef": "m", "serviceInstanceType": "redis", "compositionRef": {"name": "a9s-servicebinding"}}),
            ),
            Some("Unsupported value: \"redis\""),
        ),
        (
            "backup default composition keyvalue",
            backup(json!({"instanceRef": "kv", "serviceInstanceType": "keyvalue"})),
            Some("Selected service instance type is not supported."),
        ),
        (
            "backup empty composition name counts as a8s",
            backup(
                json!({"instanceRef": "kv", "serviceInstanceType": "keyvalue", "compositionRef": {"name": ""}}),
            ),
            Some("Selected service instance type is not supported."),
        ),
        (
            "restore a9s without instanceRef",
            restore(
                json!({"backupRef": "b", "serviceInstanceType": "messaging", "compositionRef": {"name": "a9s-restore"}}),
            ),
            None,
        ),
        (
            "restore a8s without instanceRef",
            restore(
                json!({"backupRef": "b", "serviceInstanceType": "postgresql", "compositionRef": {"name": "a8s-restore"}}),
            ),
            Some("restores without instance ref are not supported for a8s"),
        ),
        (
            "restore default without instanceRef",
            restore(json!({"backupRef": "b", "serviceInstanceType": "postgresql"})),
            Some("restores without instance ref are not supported for a8s"),
        ),
        (
            "restore a8s empty instanceRef",
            restore(
                json!({"backupRef": "b", "instanceRef": "", "serviceInstanceType": "postgresql"}),
            ),
            Some("restores without instance ref are not supported for a8s"),
        ),
        (
            "restore a8s postgresql",
            restore(
                json!({"backupRef": "b", "instanceRef": "pg", "serviceInstanceType": "postgresql"}),
            ),
            None,
        ),
        (
            "restore a8s search",
            restore(json!({"backupRef": "b", "instanceRef": "s", "serviceInstanceType": "search"})),
            Some("Selected service instance type is not supported."),
        ),
        (
            "restore without backupRef",
            restore(
                json!({"serviceInstanceType": "search", "compositionRef": {"name": "a9s-restore"}}),
            ),
            Some("spec.backupRef: Required value"),
        ),
        (
            "claim name longer than 63",
            {
                let mut doc =
                    backup(json!({"instanceRef": "pg", "serviceInstanceType": "postgresql"}));
                doc["metadata"]["name"] = json!("x".repeat(64));
                doc
            },
            Some("Too long"),
        ),
    ]
}
