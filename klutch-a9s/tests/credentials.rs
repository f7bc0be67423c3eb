//! Credential fixtures per data service: typed parsing, connection endpoints (spec 14.3),
//! Secret key sets (spec 14.4) and malformed input.

use klutch_a9s::credentials::{
    ConnectionEndpoint, CredentialsError, DataServiceKind, ParseMode, ServiceCredentials,
    connection_endpoints,
};
use klutch_a9s::flatten::flatten;
use serde_json::{Map, Value, json};

fn fixture(name: &str) -> Map<String, Value> {
    let text = match name {
        "postgresql" => include_str!("fixtures/credentials/postgresql.json"),
        "mariadb" => include_str!("fixtures/credentials/mariadb.json"),
        "mongodb" => include_str!("fixtures/credentials/mongodb.json"),
        "messaging" => include_str!("fixtures/credentials/messaging.json"),
        "messaging-nonssl" => include_str!("fixtures/credentials/messaging-nonssl.json"),
        "search" => include_str!("fixtures/credentials/search.json"),
        "logme2" => include_str!("fixtures/credentials/logme2.json"),
        "prometheus" => include_str!("fixtures/credentials/prometheus.json"),
        "keyvalue" => include_str!("fixtures/credentials/keyvalue.json"),
        "keyvalue-nested" => include_str!("fixtures/credentials/keyvalue-nested.json"),
        other => panic!("no fixture {other}"),
    };
    match serde_json::from_str(text) {
        Ok(Value::Object(m)) => m,
        other => panic!("fixture {name} is not an object: {other:?}"),
    }
}

fn ep(label: &str, host_url: &str, port: &str) -> ConnectionEndpoint {
    serde_json::from_value(json!({"label": label, "hostURL": host_url, "port": port})).unwrap()
}

fn keys(raw: &Map<String, Value>) -> Vec<String> {
    flatten(raw).keys().map(str::to_owned).collect()
}

fn words(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.split_whitespace().map(str::to_owned).collect();
    v.sort();
    v
}

/// (fixture, kind, spec 14.4 key set, spec 14.3 endpoints)
fn table() -> Vec<(
    &'static str,
    DataServiceKind,
    Vec<String>,
    Vec<ConnectionEndpoint>,
)> {
    vec![
        (
            "postgresql",
            DataServiceKind::Postgresql,
            words("host hosts name password port uri username"),
            vec![ep(
                "SQL",
                "pcsd1f4c2b1-psql-master-alias.node.dc1.consul",
                "5432",
            )],
        ),
        (
            "mariadb",
            DataServiceKind::Mariadb,
            words("cacrt host hosts name password port uri username"),
            vec![ep("SQL", "mdd7a01e1-mariadb.node.dc1.consul", "3306")],
        ),
        (
            "search",
            DataServiceKind::Search,
            words("cacrt host hosts password port scheme username"),
            vec![
                ep("Search", "https://sd1b2c3-os-0.node.dc1.consul", "9200"),
                ep("Search", "https://sd1b2c3-os-1.node.dc1.consul", "9200"),
            ],
        ),
        (
            "mongodb",
            DataServiceKind::Mongodb,
            words("default_database hosts password uri username"),
            vec![
                ep("MongoDB", "mod4b1b1a-mongodb-0.node.dc1.consul", "27017"),
                ep("MongoDB", "mod4b1b1a-mongodb-1.node.dc1.consul", "27017"),
            ],
        ),
        (
            "logme2",
            DataServiceKind::Logme2,
            words("cacrt host password syslog_drain_url username"),
            vec![ep("Logme2", "https://lod1e2f3-os.node.dc1.consul", "9200")],
        ),
        (
            "prometheus",
            DataServiceKind::Prometheus,
            words(
                "alertmanager_urls grafana_urls graphite_exporter_port graphite_exporters password prometheus_urls username",
            ),
            vec![
                ep(
                    "Prometheus",
                    "http://prd1-prometheus-0.node.dc1.consul",
                    "9090",
                ),
                ep(
                    "Prometheus",
                    "http://prd1-prometheus-1.node.dc1.consul",
                    "9090",
                ),
                ep(
                    "Alertmanager",
                    "http://prd1-alertmanager-0.node.dc1.consul",
                    "9093",
                ),
                ep("Grafana", "http://prd1-grafana-0.node.dc1.consul", "3000"),
                ep(
                    "Graphite Exporter",
                    "prd1-graphite-exporter-0.node.dc1.consul",
                    "9109",
                ),
            ],
        ),
        (
            "keyvalue",
            DataServiceKind::Keyvalue,
            words(
                "cacrt host hosts load_balanced_host valkey.password valkey.port valkey.username",
            ),
            vec![ep("KeyValue", "kvd1e2f3.service.dc1.consul", "6379")],
        ),
        (
            "keyvalue-nested",
            DataServiceKind::Keyvalue,
            words(
                "cacrt host hosts load_balanced_host valkey.password valkey.port valkey.username",
            ),
            vec![ep("KeyValue", "kvd1e2f3.service.dc1.consul", "6379")],
        ),
        (
            "messaging",
            DataServiceKind::Messaging,
            words(
                "http_api_uri http_api_uris \
                 protocols.amqp_ssl.host protocols.amqp_ssl.hosts protocols.amqp_ssl.password \
                 protocols.amqp_ssl.port protocols.amqp_ssl.ssl protocols.amqp_ssl.uri protocols.amqp_ssl.username \
                 protocols.management.cacrt protocols.management.host protocols.management.hosts \
                 protocols.management.password protocols.management.path protocols.management.port \
                 protocols.management.ssl protocols.management.uri protocols.management.uris \
                 protocols.management.username",
            ),
            vec![
                ep("HTTP API", "https://rmq1.node.dc1.consul", "15671"),
                ep("AMQP SSL", "amqps://rmq1.node.dc1.consul", "5671"),
                ep("Management", "https://rmq1.node.dc1.consul", "15671"),
            ],
        ),
        (
            "messaging-nonssl",
            DataServiceKind::Messaging,
            words(
                "http_api_uri http_api_uris \
                 protocols.amqp.host protocols.amqp.hosts protocols.amqp.password \
                 protocols.amqp.port protocols.amqp.ssl protocols.amqp.uri protocols.amqp.username \
                 protocols.management.host protocols.management.hosts \
                 protocols.management.password protocols.management.path protocols.management.port \
                 protocols.management.ssl protocols.management.uri protocols.management.uris \
                 protocols.management.username",
            ),
            vec![
                ep("HTTP API", "http://rmq2.node.dc1.consul", "15672"),
                ep("Management", "http://rmq2.node.dc1.consul", "15672"),
                ep("AMQP", "amqp://rmq2.node.dc1.consul", "5672"),
            ],
        ),
    ]
}

#[test]
fn every_fixture_parses_with_expected_keys_and_endpoints() {
    let t = table();
    // All eight data services are covered.
    for kind in DataServiceKind::ALL {
        assert!(
            t.iter().any(|(_, k, _, _)| *k == kind),
            "{kind} not covered"
        );
    }
    for (name, kind, want_keys, want_endpoints) in t {
        let raw = fixture(name);
        for mode in [ParseMode::Lenient, ParseMode::Strict] {
            let creds = ServiceCredentials::parse(kind, &raw, mode)
                .unwrap_or_else(|e| panic!("{name} ({mode:?}): {e}"));
            assert_eq!(creds.kind(), kind, "{name}");
            assert_eq!(creds.connection_endpoints(), want_endpoints, "{name}");
            let debug = format!("{creds:?}");
            assert!(!debug.contains("a9s-password"), "{name} leaks: {debug}");
        }
        assert_eq!(keys(&raw), want_keys, "{name}");
        assert_eq!(
            connection_endpoints(kind, &raw).unwrap(),
            want_endpoints,
            "{name}"
        );
    }
}

#[test]
fn flattened_values_are_not_go_formatted() {
    let d = flatten(&fixture("mariadb"));
    assert_eq!(
        d.get("hosts"),
        Some(r#"["mdd7a01e1-mariadb-0.node.dc1.consul","mdd7a01e1-mariadb-1.node.dc1.consul"]"#)
    );
    assert_eq!(d.get("port"), Some("3306"));
    let d = flatten(&fixture("messaging"));
    assert_eq!(d.get("protocols.amqp_ssl.ssl"), Some("true"));
    assert_eq!(d.get("protocols.management.port"), Some("15671"));
    assert_eq!(
        d.get("protocols.amqp_ssl.uri"),
        Some("amqps://a9s-brk-usr:a9s-password@rmq1.node.dc1.consul:5671")
    );
    let d = flatten(&fixture("prometheus"));
    // A scalar stays a scalar; an array is JSON.
    assert_eq!(
        d.get("grafana_urls"),
        Some("http://prd1-grafana-0.node.dc1.consul:3000")
    );
    assert_eq!(
        d.get("alertmanager_urls"),
        Some(r#"["http://prd1-alertmanager-0.node.dc1.consul:9093"]"#)
    );
    let d = flatten(&fixture("keyvalue-nested"));
    assert_eq!(d.get("valkey.port"), Some("6379"));
    assert!(!format!("{d:?}").contains("a9s-password"));
}

#[test]
fn typed_fields() {
    let ServiceCredentials::Mariadb(c) = ServiceCredentials::parse(
        DataServiceKind::Mariadb,
        &fixture("mariadb"),
        ParseMode::Lenient,
    )
    .unwrap() else {
        panic!("wrong variant")
    };
    assert_eq!(c.port, 3306);
    assert_eq!(c.hosts.len(), 2);
    assert!(c.cacrt.is_some());
    assert_eq!(c.name, "mdd7a01e1");

    let ServiceCredentials::Messaging(m) = ServiceCredentials::parse(
        DataServiceKind::Messaging,
        &fixture("messaging"),
        ParseMode::Lenient,
    )
    .unwrap() else {
        panic!("wrong variant")
    };
    assert_eq!(m.ssl, Some(true));
    assert!(m.amqp.is_none());
    let ssl = m.amqp_ssl.as_ref().unwrap();
    assert_eq!(ssl.port, Some(5671));
    let mgmt = m.management.as_ref().unwrap();
    assert_eq!(mgmt.path.as_deref(), Some("/api/"));
    assert_eq!(mgmt.uris.len(), 1);

    let ServiceCredentials::Keyvalue(k) = ServiceCredentials::parse(
        DataServiceKind::Keyvalue,
        &fixture("keyvalue"),
        ParseMode::Lenient,
    )
    .unwrap() else {
        panic!("wrong variant")
    };
    assert_eq!(k.port, 6379);
    assert_eq!(k.username.as_deref(), Some("a9s-brk-usr"));

    let ServiceCredentials::Search(s) = ServiceCredentials::parse(
        DataServiceKind::Search,
        &fixture("search"),
        ParseMode::Lenient,
    )
    .unwrap() else {
        panic!("wrong variant")
    };
    assert_eq!(s.scheme.as_deref(), Some("https"));
    assert_eq!(s.host.len(), 2);
}

#[test]
fn scalars_arrays_and_strings_are_interchangeable() {
    let raw = json!({"cacrt": "c", "host": "https://s:9200", "password": "p", "username": "u", "port": "9200"});
    let eps = connection_endpoints(DataServiceKind::Search, raw.as_object().unwrap()).unwrap();
    assert_eq!(eps, vec![ep("Search", "https://s", "9200")]);

    let raw =
        json!({"default_database": "d", "hosts": "m:27017", "password": "p", "username": "u"});
    let eps = connection_endpoints(DataServiceKind::Mongodb, raw.as_object().unwrap()).unwrap();
    assert_eq!(eps, vec![ep("MongoDB", "m", "27017")]);

    // A one-element array where a string is expected.
    let raw =
        json!({"host": ["pg"], "name": "n", "password": "p", "port": 5432.0, "username": "u"});
    let eps = connection_endpoints(DataServiceKind::Postgresql, raw.as_object().unwrap()).unwrap();
    assert_eq!(eps, vec![ep("SQL", "pg", "5432")]);

    // Messaging protocols given as dotted keys.
    let raw = json!({"username": "u", "password": "p",
        "protocols.amqp.uri": "amqp://u:p@h:5672", "protocols.amqp.port": 5672});
    let eps = connection_endpoints(DataServiceKind::Messaging, raw.as_object().unwrap()).unwrap();
    assert_eq!(eps, vec![ep("AMQP", "amqp://h", "5672")]);

    // A URL without an explicit port gives an empty port; a host without a port too.
    let raw = json!({"host": "https://logme2.example", "username": "u", "password": "p"});
    let eps = connection_endpoints(DataServiceKind::Logme2, raw.as_object().unwrap()).unwrap();
    assert_eq!(eps, vec![ep("Logme2", "https://logme2.example", "")]);
    let raw = json!({"default_database": "d", "hosts": ["m"], "password": "p", "username": "u"});
    let eps = connection_endpoints(DataServiceKind::Mongodb, raw.as_object().unwrap()).unwrap();
    assert_eq!(eps, vec![ep("MongoDB", "m", "")]);
}

/// The required fields per kind (dotted paths).
fn required(kind: DataServiceKind) -> &'static [&'static str] {
    match kind {
        DataServiceKind::Postgresql | DataServiceKind::Mariadb => {
            &["host", "name", "username", "password", "port"]
        }
        DataServiceKind::Mongodb => &["default_database", "hosts", "username", "password"],
        DataServiceKind::Messaging => &["username", "password"],
        DataServiceKind::Search => &["host", "username", "password"],
        DataServiceKind::Logme2 => &["host", "username", "password"],
        DataServiceKind::Prometheus => &["prometheus_urls", "username", "password"],
        DataServiceKind::Keyvalue => &["host", "valkey.password", "valkey.port"],
    }
}

fn fixture_of(kind: DataServiceKind) -> Map<String, Value> {
    fixture(kind.as_str())
}

#[test]
fn missing_required_fields_are_named() {
    for kind in DataServiceKind::ALL {
        for field in required(kind) {
            for replacement in [None, Some(Value::Null)] {
                let mut raw = fixture_of(kind);
                match &replacement {
                    None => {
                        raw.remove(*field);
                    }
                    Some(v) => {
                        raw.insert((*field).to_owned(), v.clone());
                    }
                }
                let err = ServiceCredentials::parse(kind, &raw, ParseMode::Lenient).unwrap_err();
                assert_eq!(
                    err,
                    CredentialsError::MissingField {
                        kind,
                        field: (*field).to_owned()
                    },
                    "{kind} without {field}"
                );
                assert!(err.to_string().contains(field), "{err}");
            }
        }
    }
}

#[test]
fn wrongly_typed_fields_are_named() {
    let cases: Vec<(DataServiceKind, &str, Value)> = vec![
        (DataServiceKind::Postgresql, "port", json!("not-a-port")),
        (DataServiceKind::Postgresql, "port", json!(70000)),
        (DataServiceKind::Postgresql, "port", json!(-1)),
        (DataServiceKind::Postgresql, "host", json!({"a": 1})),
        (DataServiceKind::Mariadb, "hosts", json!([{"h": 1}])),
        (DataServiceKind::Mongodb, "hosts", json!(true)),
        (DataServiceKind::Messaging, "ssl", json!("maybe")),
        (DataServiceKind::Messaging, "protocols", json!("amqp")),
        (DataServiceKind::Search, "host", json!(42.5e0)),
        (DataServiceKind::Logme2, "password", json!([])),
        (
            DataServiceKind::Prometheus,
            "graphite_exporter_port",
            json!(1.5),
        ),
        (DataServiceKind::Keyvalue, "valkey.port", json!([1, 2])),
    ];
    for (kind, field, value) in cases {
        let mut raw = fixture_of(kind);
        raw.insert(field.to_owned(), value.clone());
        let res = ServiceCredentials::parse(kind, &raw, ParseMode::Lenient);
        match res {
            Err(CredentialsError::InvalidField {
                kind: k, field: f, ..
            }) => {
                assert_eq!((k, f.as_str()), (kind, field), "{value}")
            }
            // A float where a string is expected renders as the number's text: accepted.
            Ok(_) if value.is_f64() && field == "host" => {}
            other => panic!("{kind} {field}={value}: {other:?}"),
        }
    }
    // Nested protocol errors carry the full path.
    let mut raw = fixture("messaging");
    raw.insert("protocols".into(), json!({"amqp_ssl": {"port": "x"}}));
    assert_eq!(
        ServiceCredentials::parse(DataServiceKind::Messaging, &raw, ParseMode::Lenient)
            .unwrap_err(),
        CredentialsError::InvalidField {
            kind: DataServiceKind::Messaging,
            field: "protocols.amqp_ssl.port".into(),
            expected: "a port number (0-65535)"
        }
    );
}

#[test]
fn strict_mode_names_unknown_fields() {
    for kind in DataServiceKind::ALL {
        let mut raw = fixture_of(kind);
        raw.insert("surprise".into(), json!(1));
        assert!(ServiceCredentials::parse(kind, &raw, ParseMode::Lenient).is_ok());
        assert_eq!(
            ServiceCredentials::parse(kind, &raw, ParseMode::Strict).unwrap_err(),
            CredentialsError::UnknownField {
                kind,
                field: "surprise".into()
            }
        );
        // The unknown field is still flattened (nothing is lost in the Secret).
        assert!(flatten(&raw).get("surprise").is_some());
    }
}

#[test]
fn missing_credentials_in_a_binding() {
    let body = klutch_osb::BindingBody::default();
    assert_eq!(
        ServiceCredentials::from_binding(DataServiceKind::Search, &body, ParseMode::Lenient)
            .unwrap_err(),
        CredentialsError::MissingCredentials {
            kind: DataServiceKind::Search
        }
    );
    let body: klutch_osb::BindingBody =
        serde_json::from_value(json!({"credentials": fixture("logme2")})).unwrap();
    let c = ServiceCredentials::from_binding(DataServiceKind::Logme2, &body, ParseMode::Strict)
        .unwrap();
    assert_eq!(c.kind(), DataServiceKind::Logme2);
}

/// Every field of every fixture replaced by every odd value: parsing and flattening never
/// panic, and every error names a field.
#[test]
fn no_panics_on_odd_values() {
    let odd = [
        json!(null),
        json!(""),
        json!(0),
        json!(-1),
        json!(1e300),
        json!(true),
        json!([]),
        json!([null, 1, "x", {"a": []}]),
        json!({}),
        json!({"port": {"deep": [1]}}),
        json!("http://[::1"),
        json!("://"),
        json!("@@@:"),
        json!("x".repeat(100_000)),
    ];
    for kind in DataServiceKind::ALL {
        let base = fixture_of(kind);
        for field in base.keys() {
            for v in &odd {
                let mut raw = base.clone();
                raw.insert(field.clone(), v.clone());
                match ServiceCredentials::parse(kind, &raw, ParseMode::Lenient) {
                    Ok(c) => {
                        let _ = c.connection_endpoints();
                    }
                    Err(
                        CredentialsError::MissingField { field: f, .. }
                        | CredentialsError::InvalidField { field: f, .. },
                    ) => assert!(f.starts_with(field.as_str()), "{f} vs {field}"),
                    Err(e) => panic!("{kind}: unexpected {e}"),
                }
                let _ = flatten(&raw);
            }
        }
    }
}

/// The full Secret data per fixture, pinned so that any change of key or value rendering
/// shows up in review.
#[test]
fn secret_data_snapshot() {
    let all: std::collections::BTreeMap<&str, std::collections::BTreeMap<String, String>> = table()
        .into_iter()
        .map(|(name, _, _, _)| (name, flatten(&fixture(name)).into_inner()))
        .collect();
    insta::assert_yaml_snapshot!("secret_data", all);
}
