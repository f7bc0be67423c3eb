//! Typed binding credentials for the eight a9s data services (spec 14.1, 14.2) and their
//! connection endpoints (spec 14.3).
//!
//! Parsers are lenient where real brokers vary: a scalar is accepted where an array is
//! expected and vice versa, numbers may come as strings, and dotted keys (`valkey.port`) are
//! equivalent to nested objects (`{"valkey": {"port": ...}}`). A missing required field or a
//! field of the wrong type is a [`CredentialsError`] naming the field; in
//! [`ParseMode::Strict`] unknown top-level fields are rejected too. Nothing panics.
//!
//! Passwords and URIs (which embed passwords) are [`SecretString`]s: they never appear in
//! `Debug` output.
//!
//! ```
//! use klutch_a9s::credentials::{DataServiceKind, ParseMode, ServiceCredentials};
//! let raw = serde_json::json!({
//!     "host": "pg.example.internal", "hosts": ["pg-0.example.internal"], "name": "db1",
//!     "username": "a9s-user", "password": "s3cret", "port": 5432,
//!     "uri": "postgres://a9s-user:s3cret@pg.example.internal:5432/db1"
//! });
//! let kind: DataServiceKind = "postgresql".parse().unwrap();
//! let creds = ServiceCredentials::parse(kind, raw.as_object().unwrap(), ParseMode::Lenient).unwrap();
//! assert!(!format!("{creds:?}").contains("s3cret"));
//! let endpoints = creds.connection_endpoints();
//! assert_eq!(endpoints[0].label, "SQL");
//! assert_eq!(endpoints[0].host_url, "pg.example.internal");
//! assert_eq!(endpoints[0].port, "5432");
//! ```

use std::fmt;
use std::str::FromStr;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A `Result` with this module's [`CredentialsError`].
pub type Result<T, E = CredentialsError> = std::result::Result<T, E>;

/// Why credentials could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsError {
    /// The `klutch.io/instance-type` value names no a9s data service.
    #[error("referenced data service not found: {value:?}")]
    ParseKind {
        /// The value that was not recognised.
        value: String,
    },
    /// The binding carried no credentials object.
    #[error("the {kind} binding carries no credentials")]
    MissingCredentials {
        /// The data service.
        kind: DataServiceKind,
    },
    /// A required field is absent (or `null`).
    #[error("{kind} credentials: required field {field:?} is missing")]
    MissingField {
        /// The data service.
        kind: DataServiceKind,
        /// The field (dotted path).
        field: String,
    },
    /// A field has the wrong type or an invalid value.
    #[error("{kind} credentials: field {field:?} is invalid: expected {expected}")]
    InvalidField {
        /// The data service.
        kind: DataServiceKind,
        /// The field (dotted path).
        field: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A field is not known for this data service ([`ParseMode::Strict`] only).
    #[error("{kind} credentials: unknown field {field:?}")]
    UnknownField {
        /// The data service.
        kind: DataServiceKind,
        /// The field.
        field: String,
    },
}

/// The a9s data services (spec 14.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataServiceKind {
    /// a9s PostgreSQL.
    Postgresql,
    /// a9s MariaDB.
    Mariadb,
    /// a9s MongoDB.
    Mongodb,
    /// a9s Messaging (RabbitMQ).
    Messaging,
    /// a9s Search (OpenSearch).
    Search,
    /// a9s LogMe2.
    Logme2,
    /// a9s Prometheus.
    Prometheus,
    /// a9s KeyValue (Valkey).
    Keyvalue,
}

impl DataServiceKind {
    /// All kinds, in the order of the spec.
    pub const ALL: [DataServiceKind; 8] = [
        DataServiceKind::Postgresql,
        DataServiceKind::Mariadb,
        DataServiceKind::Mongodb,
        DataServiceKind::Messaging,
        DataServiceKind::Search,
        DataServiceKind::Logme2,
        DataServiceKind::Prometheus,
        DataServiceKind::Keyvalue,
    ];

    /// The label value (`klutch.io/instance-type`).
    pub fn as_str(self) -> &'static str {
        match self {
            DataServiceKind::Postgresql => "postgresql",
            DataServiceKind::Mariadb => "mariadb",
            DataServiceKind::Mongodb => "mongodb",
            DataServiceKind::Messaging => "messaging",
            DataServiceKind::Search => "search",
            DataServiceKind::Logme2 => "logme2",
            DataServiceKind::Prometheus => "prometheus",
            DataServiceKind::Keyvalue => "keyvalue",
        }
    }

    /// The top-level credential keys this kind defines (for [`ParseMode::Strict`]).
    pub fn known_fields(self) -> &'static [&'static str] {
        match self {
            DataServiceKind::Postgresql | DataServiceKind::Mariadb => &[
                "host", "hosts", "name", "password", "port", "uri", "username", "cacrt",
            ],
            DataServiceKind::Mongodb => &[
                "default_database",
                "hosts",
                "password",
                "uri",
                "username",
                "cacrt",
            ],
            DataServiceKind::Messaging => &[
                "host",
                "hosts",
                "port",
                "ssl",
                "uri",
                "username",
                "password",
                "http_api_uri",
                "http_api_uris",
                "protocols",
                "cacrt",
            ],
            DataServiceKind::Search => &[
                "cacrt", "host", "hosts", "password", "port", "scheme", "username",
            ],
            DataServiceKind::Logme2 => {
                &["cacrt", "host", "password", "syslog_drain_url", "username"]
            }
            DataServiceKind::Prometheus => &[
                "prometheus_urls",
                "alertmanager_urls",
                "grafana_urls",
                "graphite_exporters",
                "graphite_exporter_port",
                "username",
                "password",
            ],
            DataServiceKind::Keyvalue => {
                &["cacrt", "host", "hosts", "load_balanced_host", "valkey"]
            }
        }
    }
}

impl fmt::Display for DataServiceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DataServiceKind {
    type Err = CredentialsError;

    /// Exact match on the label value (the Go provider matched substrings).
    fn from_str(s: &str) -> Result<Self> {
        DataServiceKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| CredentialsError::ParseKind {
                value: s.to_owned(),
            })
    }
}

/// How unknown top-level fields are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParseMode {
    /// Unknown fields are ignored (they still end up in the flattened Secret).
    #[default]
    Lenient,
    /// Unknown fields are a [`CredentialsError::UnknownField`].
    Strict,
}

/// A URL that may embed user info (`https://user:password@host`): `Debug` masks the user
/// info, [`MaskedUrl::expose`] gives the full value.
///
/// ```
/// use klutch_a9s::credentials::MaskedUrl;
/// let u = MaskedUrl::new("https://admin:pw@logme2.example:443/x");
/// assert_eq!(format!("{u:?}"), "\"https://***@logme2.example:443/x\"");
/// assert_eq!(u.expose(), "https://admin:pw@logme2.example:443/x");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct MaskedUrl(String);

impl MaskedUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        MaskedUrl(url.into())
    }

    /// The full URL, user info included. Never log the result.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for MaskedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.0;
        let (scheme, rest) = s.split_once("://").unwrap_or(("", s.as_str()));
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let masked = match rest[..end].rsplit_once('@') {
            Some((_, host)) => format!("***@{host}{}", &rest[end..]),
            None => rest.to_owned(),
        };
        if scheme.is_empty() && !s.contains("://") {
            write!(f, "{masked:?}")
        } else {
            write!(f, "{:?}", format!("{scheme}://{masked}"))
        }
    }
}

/// One network endpoint of a data service instance (the `connectionDetails` entries of a
/// Klutch `ServiceBinding` status; JSON names `label`, `hostURL`, `port`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionEndpoint {
    /// What the endpoint is for (`SQL`, `HTTP API`, `AMQP SSL`, ...).
    pub label: String,
    /// `scheme://hostname` for URLs, else the host verbatim (never with user info).
    #[serde(rename = "hostURL")]
    pub host_url: String,
    /// The port; empty when the source has no explicit port.
    pub port: String,
}

impl ConnectionEndpoint {
    fn new(label: &str, host_url: impl Into<String>, port: impl Into<String>) -> Self {
        ConnectionEndpoint {
            label: label.to_owned(),
            host_url: host_url.into(),
            port: port.into(),
        }
    }

    fn from_url(label: &str, url: &str) -> Self {
        match split_url(url) {
            Some((scheme, host, port)) => {
                ConnectionEndpoint::new(label, format!("{scheme}://{host}"), port)
            }
            None => ConnectionEndpoint::new(label, strip_user_info(url), ""),
        }
    }
}

fn strip_user_info(s: &str) -> String {
    match s.rsplit_once('@') {
        Some((_, rest)) => rest.to_owned(),
        None => s.to_owned(),
    }
}

/// Splits `scheme://[user@]host[:port][/...]` into scheme, host and the explicit port
/// (empty when absent). IPv6 hosts keep their brackets.
fn split_url(s: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = s.split_once("://")?;
    if scheme.is_empty() {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let close = v6.find(']')?;
        let host = &hostport[..close + 2];
        let port = hostport[close + 2..].strip_prefix(':').unwrap_or("");
        (host, port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, p),
            None => (hostport, ""),
        }
    };
    if host.is_empty() {
        return None;
    }
    Some((scheme, host, port))
}

/// Field access with the leniency rules of spec 14.2.
struct Fields<'a> {
    kind: DataServiceKind,
    map: &'a Map<String, Value>,
    prefix: String,
}

fn lookup<'a>(map: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = map.get(path) {
        return Some(v);
    }
    let (head, tail) = path.split_once('.')?;
    match map.get(head)? {
        Value::Object(inner) => lookup(inner, tail),
        _ => None,
    }
}

impl<'a> Fields<'a> {
    fn new(kind: DataServiceKind, map: &'a Map<String, Value>) -> Self {
        Fields {
            kind,
            map,
            prefix: String::new(),
        }
    }

    fn path(&self, field: &str) -> String {
        format!("{}{field}", self.prefix)
    }

    fn missing(&self, field: &str) -> CredentialsError {
        CredentialsError::MissingField {
            kind: self.kind,
            field: self.path(field),
        }
    }

    fn invalid(&self, field: &str, expected: &'static str) -> CredentialsError {
        CredentialsError::InvalidField {
            kind: self.kind,
            field: self.path(field),
            expected,
        }
    }

    fn value(&self, field: &str) -> Option<&'a Value> {
        lookup(self.map, field).filter(|v| !v.is_null())
    }

    fn str_opt(&self, field: &str) -> Result<Option<String>> {
        match self.value(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            // A one-element array where a scalar is expected.
            Some(Value::Array(a)) if a.len() == 1 => match &a[0] {
                Value::String(s) => Ok(Some(s.clone())),
                Value::Number(n) => Ok(Some(n.to_string())),
                _ => Err(self.invalid(field, "a string")),
            },
            Some(_) => Err(self.invalid(field, "a string")),
        }
    }

    fn str_req(&self, field: &str) -> Result<String> {
        self.str_opt(field)?.ok_or_else(|| self.missing(field))
    }

    fn secret_opt(&self, field: &str) -> Result<Option<SecretString>> {
        Ok(self.str_opt(field)?.map(SecretString::from))
    }

    fn secret_req(&self, field: &str) -> Result<SecretString> {
        Ok(SecretString::from(self.str_req(field)?))
    }

    fn port_opt(&self, field: &str) -> Result<Option<u16>> {
        let n = match self.value(field) {
            None => return Ok(None),
            Some(Value::Number(n)) => n.as_u64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                    .map(|f| f as u64)
            }),
            Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
            Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
            Some(_) => None,
        };
        match n.and_then(|n| u16::try_from(n).ok()) {
            Some(p) => Ok(Some(p)),
            None => Err(self.invalid(field, "a port number (0-65535)")),
        }
    }

    fn port_req(&self, field: &str) -> Result<u16> {
        self.port_opt(field)?.ok_or_else(|| self.missing(field))
    }

    fn bool_opt(&self, field: &str) -> Result<Option<bool>> {
        match self.value(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) => match s.trim() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                _ => Err(self.invalid(field, "a boolean")),
            },
            Some(_) => Err(self.invalid(field, "a boolean")),
        }
    }

    /// An array of strings; a scalar counts as a one-element array, absent as empty.
    fn strings(&self, field: &str) -> Result<Vec<String>> {
        let scalar = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        match self.value(field) {
            None => Ok(vec![]),
            Some(Value::Array(a)) => a
                .iter()
                .filter(|v| !v.is_null())
                .map(|v| scalar(v).ok_or_else(|| self.invalid(field, "an array of strings")))
                .collect(),
            Some(v) => scalar(v)
                .map(|s| vec![s])
                .ok_or_else(|| self.invalid(field, "a string or an array of strings")),
        }
    }

    fn strings_req(&self, field: &str) -> Result<Vec<String>> {
        let v = self.strings(field)?;
        if v.is_empty() {
            Err(self.missing(field))
        } else {
            Ok(v)
        }
    }

    fn urls(&self, field: &str) -> Result<Vec<MaskedUrl>> {
        Ok(self.strings(field)?.into_iter().map(MaskedUrl).collect())
    }

    fn urls_req(&self, field: &str) -> Result<Vec<MaskedUrl>> {
        Ok(self
            .strings_req(field)?
            .into_iter()
            .map(MaskedUrl)
            .collect())
    }

    fn secrets(&self, field: &str) -> Result<Vec<SecretString>> {
        Ok(self
            .strings(field)?
            .into_iter()
            .map(SecretString::from)
            .collect())
    }

    fn object(&self, field: &str) -> Result<Option<Fields<'a>>> {
        match self.value(field) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(Fields {
                kind: self.kind,
                map: m,
                prefix: format!("{}{field}.", self.prefix),
            })),
            Some(_) => Err(self.invalid(field, "an object")),
        }
    }

    fn check_unknown(&self) -> Result<()> {
        let known = self.kind.known_fields();
        for key in self.map.keys() {
            let head = key.split('.').next().unwrap_or(key);
            if !known.contains(&head) {
                return Err(CredentialsError::UnknownField {
                    kind: self.kind,
                    field: key.clone(),
                });
            }
        }
        Ok(())
    }
}

/// PostgreSQL and MariaDB credentials.
#[derive(Debug, Clone)]
pub struct SqlCredentials {
    /// The primary host.
    pub host: String,
    /// All hosts (may be empty).
    pub hosts: Vec<String>,
    /// The database name.
    pub name: String,
    /// The user.
    pub username: String,
    /// The password.
    pub password: SecretString,
    /// The port.
    pub port: u16,
    /// The connection URI (embeds the password).
    pub uri: Option<SecretString>,
    /// The CA certificate (SSL plans).
    pub cacrt: Option<String>,
}

impl SqlCredentials {
    fn parse(f: &Fields<'_>) -> Result<Self> {
        Ok(SqlCredentials {
            host: f.str_req("host")?,
            hosts: f.strings("hosts")?,
            name: f.str_req("name")?,
            username: f.str_req("username")?,
            password: f.secret_req("password")?,
            port: f.port_req("port")?,
            uri: f.secret_opt("uri")?,
            cacrt: f.str_opt("cacrt")?,
        })
    }
}

/// MongoDB credentials.
#[derive(Debug, Clone)]
pub struct MongodbCredentials {
    /// The default database.
    pub default_database: String,
    /// The hosts as `host:port`.
    pub hosts: Vec<String>,
    /// The user.
    pub username: String,
    /// The password.
    pub password: SecretString,
    /// The connection URI (embeds the password).
    pub uri: Option<SecretString>,
    /// The CA certificate (SSL plans).
    pub cacrt: Option<String>,
}

impl MongodbCredentials {
    fn parse(f: &Fields<'_>) -> Result<Self> {
        Ok(MongodbCredentials {
            default_database: f.str_req("default_database")?,
            hosts: f.strings_req("hosts")?,
            username: f.str_req("username")?,
            password: f.secret_req("password")?,
            uri: f.secret_opt("uri")?,
            cacrt: f.str_opt("cacrt")?,
        })
    }
}

/// One messaging protocol entry (`protocols.amqp`, `protocols.amqp_ssl`,
/// `protocols.management`).
#[derive(Debug, Clone, Default)]
pub struct ProtocolCredentials {
    /// The host.
    pub host: Option<String>,
    /// All hosts.
    pub hosts: Vec<String>,
    /// The port.
    pub port: Option<u16>,
    /// Whether TLS is used.
    pub ssl: Option<bool>,
    /// The URI (embeds the password).
    pub uri: Option<SecretString>,
    /// All URIs (embed the password).
    pub uris: Vec<SecretString>,
    /// The user.
    pub username: Option<String>,
    /// The password.
    pub password: Option<SecretString>,
    /// The path (management API).
    pub path: Option<String>,
    /// The CA certificate.
    pub cacrt: Option<String>,
}

impl ProtocolCredentials {
    fn parse(f: &Fields<'_>) -> Result<Self> {
        Ok(ProtocolCredentials {
            host: f.str_opt("host")?,
            hosts: f.strings("hosts")?,
            port: f.port_opt("port")?,
            ssl: f.bool_opt("ssl")?,
            uri: f.secret_opt("uri")?,
            uris: f.secrets("uris")?,
            username: f.str_opt("username")?,
            password: f.secret_opt("password")?,
            path: f.str_opt("path")?,
            cacrt: f.str_opt("cacrt")?,
        })
    }
}

/// Messaging (RabbitMQ) credentials.
#[derive(Debug, Clone)]
pub struct MessagingCredentials {
    /// The host.
    pub host: Option<String>,
    /// All hosts.
    pub hosts: Vec<String>,
    /// The AMQP port.
    pub port: Option<u16>,
    /// Whether TLS is used.
    pub ssl: Option<bool>,
    /// The AMQP URI (embeds the password).
    pub uri: Option<SecretString>,
    /// The user.
    pub username: String,
    /// The password.
    pub password: SecretString,
    /// The HTTP API URI (embeds the password).
    pub http_api_uri: Option<SecretString>,
    /// All HTTP API URIs.
    pub http_api_uris: Vec<SecretString>,
    /// `protocols.amqp` (non-SSL plans).
    pub amqp: Option<ProtocolCredentials>,
    /// `protocols.amqp_ssl` (SSL plans).
    pub amqp_ssl: Option<ProtocolCredentials>,
    /// `protocols.management`.
    pub management: Option<ProtocolCredentials>,
}

impl MessagingCredentials {
    fn parse(f: &Fields<'_>) -> Result<Self> {
        let protocols = f.object("protocols")?;
        let proto = |name: &str| -> Result<Option<ProtocolCredentials>> {
            match &protocols {
                Some(p) => p
                    .object(name)?
                    .map(|o| ProtocolCredentials::parse(&o))
                    .transpose(),
                None => Ok(None),
            }
        };
        // Dotted keys (`protocols.amqp.uri`) without a nested object are accepted too.
        let dotted = |name: &str| -> Result<Option<ProtocolCredentials>> {
            let prefix = format!("protocols.{name}.");
            let sub: Map<String, Value> = f
                .map
                .iter()
                .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|s| (s.to_owned(), v.clone())))
                .collect();
            if sub.is_empty() {
                return Ok(None);
            }
            let fields = Fields {
                kind: f.kind,
                map: &sub,
                prefix: prefix.clone(),
            };
            ProtocolCredentials::parse(&fields).map(Some)
        };
        let either = |name: &str| -> Result<Option<ProtocolCredentials>> {
            match proto(name)? {
                Some(p) => Ok(Some(p)),
                None => dotted(name),
            }
        };
        Ok(MessagingCredentials {
            host: f.str_opt("host")?,
            hosts: f.strings("hosts")?,
            port: f.port_opt("port")?,
            ssl: f.bool_opt("ssl")?,
            uri: f.secret_opt("uri")?,
            username: f.str_req("username")?,
            password: f.secret_req("password")?,
            http_api_uri: f.secret_opt("http_api_uri")?,
            http_api_uris: f.secrets("http_api_uris")?,
            amqp: either("amqp")?,
            amqp_ssl: either("amqp_ssl")?,
            management: either("management")?,
        })
    }
}

/// Search (OpenSearch) credentials.
#[derive(Debug, Clone)]
pub struct SearchCredentials {
    /// The node URLs (`https://h:9200`); a single string is accepted.
    pub host: Vec<MaskedUrl>,
    /// All hosts.
    pub hosts: Vec<String>,
    /// The user.
    pub username: String,
    /// The password.
    pub password: SecretString,
    /// The port.
    pub port: Option<u16>,
    /// The scheme (`https`).
    pub scheme: Option<String>,
    /// The CA certificate.
    pub cacrt: Option<String>,
}

impl SearchCredentials {
    fn parse(f: &Fields<'_>) -> Result<Self> {
        Ok(SearchCredentials {
            host: f.urls_req("host")?,
            hosts: f.strings("hosts")?,
            username: f.str_req("username")?,
            password: f.secret_req("password")?,
            port: f.port_opt("port")?,
            scheme: f.str_opt("scheme")?,
            cacrt: f.str_opt("cacrt")?,
        })
    }
}

/// LogMe2 credentials.
#[derive(Debug, Clone)]
pub struct Logme2Credentials {
    /// The dashboard/API URL (often embeds the credentials).
    pub host: MaskedUrl,
    /// The user.
    pub username: String,
    /// The password.
    pub password: SecretString,
    /// The syslog drain URL (may embed credentials).
    pub syslog_drain_url: Option<SecretString>,
    /// The CA certificate.
    pub cacrt: Option<String>,
}

impl Logme2Credentials {
    fn parse(f: &Fields<'_>) -> Result<Self> {
        Ok(Logme2Credentials {
            host: MaskedUrl(f.str_req("host")?),
            username: f.str_req("username")?,
            password: f.secret_req("password")?,
            syslog_drain_url: f.secret_opt("syslog_drain_url")?,
            cacrt: f.str_opt("cacrt")?,
        })
    }
}

/// Prometheus credentials.
#[derive(Debug, Clone)]
pub struct PrometheusCredentials {
    /// Prometheus URLs.
    pub prometheus_urls: Vec<MaskedUrl>,
    /// Alertmanager URLs.
    pub alertmanager_urls: Vec<MaskedUrl>,
    /// Grafana URLs.
    pub grafana_urls: Vec<MaskedUrl>,
    /// Graphite exporter hosts.
    pub graphite_exporters: Vec<String>,
    /// The graphite exporter port.
    pub graphite_exporter_port: Option<u16>,
    /// The user.
    pub username: String,
    /// The password.
    pub password: SecretString,
}

impl PrometheusCredentials {
    fn parse(f: &Fields<'_>) -> Result<Self> {
        Ok(PrometheusCredentials {
            prometheus_urls: f.urls_req("prometheus_urls")?,
            alertmanager_urls: f.urls("alertmanager_urls")?,
            grafana_urls: f.urls("grafana_urls")?,
            graphite_exporters: f.strings("graphite_exporters")?,
            graphite_exporter_port: f.port_opt("graphite_exporter_port")?,
            username: f.str_req("username")?,
            password: f.secret_req("password")?,
        })
    }
}

/// KeyValue (Valkey) credentials; `valkey.*` may be dotted keys or a nested object.
#[derive(Debug, Clone)]
pub struct KeyvalueCredentials {
    /// The host.
    pub host: String,
    /// All hosts.
    pub hosts: Vec<String>,
    /// The load-balanced host.
    pub load_balanced_host: Option<String>,
    /// `valkey.username`.
    pub username: Option<String>,
    /// `valkey.password`.
    pub password: SecretString,
    /// `valkey.port`.
    pub port: u16,
    /// The CA certificate.
    pub cacrt: Option<String>,
}

impl KeyvalueCredentials {
    fn parse(f: &Fields<'_>) -> Result<Self> {
        Ok(KeyvalueCredentials {
            host: f.str_req("host")?,
            hosts: f.strings("hosts")?,
            load_balanced_host: f.str_opt("load_balanced_host")?,
            username: f.str_opt("valkey.username")?,
            password: f.secret_req("valkey.password")?,
            port: f.port_req("valkey.port")?,
            cacrt: f.str_opt("cacrt")?,
        })
    }
}

/// Typed credentials of one of the eight a9s data services.
#[derive(Debug, Clone)]
pub enum ServiceCredentials {
    /// PostgreSQL.
    Postgresql(SqlCredentials),
    /// MariaDB.
    Mariadb(SqlCredentials),
    /// MongoDB.
    Mongodb(MongodbCredentials),
    /// Messaging (boxed: it is much larger than the others).
    Messaging(Box<MessagingCredentials>),
    /// Search.
    Search(SearchCredentials),
    /// LogMe2.
    Logme2(Logme2Credentials),
    /// Prometheus.
    Prometheus(PrometheusCredentials),
    /// KeyValue.
    Keyvalue(KeyvalueCredentials),
}

impl ServiceCredentials {
    /// Parses a credentials object of a bind response for `kind`.
    pub fn parse(kind: DataServiceKind, raw: &Map<String, Value>, mode: ParseMode) -> Result<Self> {
        let f = Fields::new(kind, raw);
        if mode == ParseMode::Strict {
            f.check_unknown()?;
        }
        Ok(match kind {
            DataServiceKind::Postgresql => {
                ServiceCredentials::Postgresql(SqlCredentials::parse(&f)?)
            }
            DataServiceKind::Mariadb => ServiceCredentials::Mariadb(SqlCredentials::parse(&f)?),
            DataServiceKind::Mongodb => ServiceCredentials::Mongodb(MongodbCredentials::parse(&f)?),
            DataServiceKind::Messaging => {
                ServiceCredentials::Messaging(Box::new(MessagingCredentials::parse(&f)?))
            }
            DataServiceKind::Search => ServiceCredentials::Search(SearchCredentials::parse(&f)?),
            DataServiceKind::Logme2 => ServiceCredentials::Logme2(Logme2Credentials::parse(&f)?),
            DataServiceKind::Prometheus => {
                ServiceCredentials::Prometheus(PrometheusCredentials::parse(&f)?)
            }
            DataServiceKind::Keyvalue => {
                ServiceCredentials::Keyvalue(KeyvalueCredentials::parse(&f)?)
            }
        })
    }

    /// Parses the credentials of a bind or fetch-binding response.
    pub fn from_binding(
        kind: DataServiceKind,
        binding: &klutch_osb::BindingBody,
        mode: ParseMode,
    ) -> Result<Self> {
        match &binding.credentials {
            Some(c) => Self::parse(kind, c.expose(), mode),
            None => Err(CredentialsError::MissingCredentials { kind }),
        }
    }

    /// The data service.
    pub fn kind(&self) -> DataServiceKind {
        match self {
            ServiceCredentials::Postgresql(_) => DataServiceKind::Postgresql,
            ServiceCredentials::Mariadb(_) => DataServiceKind::Mariadb,
            ServiceCredentials::Mongodb(_) => DataServiceKind::Mongodb,
            ServiceCredentials::Messaging(_) => DataServiceKind::Messaging,
            ServiceCredentials::Search(_) => DataServiceKind::Search,
            ServiceCredentials::Logme2(_) => DataServiceKind::Logme2,
            ServiceCredentials::Prometheus(_) => DataServiceKind::Prometheus,
            ServiceCredentials::Keyvalue(_) => DataServiceKind::Keyvalue,
        }
    }

    /// The connection endpoints (spec 14.3), in the order of the spec's table.
    pub fn connection_endpoints(&self) -> Vec<ConnectionEndpoint> {
        use secrecy::ExposeSecret;
        match self {
            ServiceCredentials::Postgresql(c) | ServiceCredentials::Mariadb(c) => {
                vec![ConnectionEndpoint::new(
                    "SQL",
                    c.host.clone(),
                    c.port.to_string(),
                )]
            }
            ServiceCredentials::Search(c) => c
                .host
                .iter()
                .map(|u| ConnectionEndpoint::from_url("Search", u.expose()))
                .collect(),
            ServiceCredentials::Logme2(c) => {
                vec![ConnectionEndpoint::from_url("Logme2", c.host.expose())]
            }
            ServiceCredentials::Mongodb(c) => c
                .hosts
                .iter()
                .map(|h| match h.rsplit_once(':') {
                    Some((host, port)) if !host.ends_with(':') => {
                        ConnectionEndpoint::new("MongoDB", host, port)
                    }
                    _ => ConnectionEndpoint::new("MongoDB", h.clone(), ""),
                })
                .collect(),
            ServiceCredentials::Prometheus(c) => {
                let mut v: Vec<ConnectionEndpoint> = Vec::new();
                for (label, urls) in [
                    ("Prometheus", &c.prometheus_urls),
                    ("Alertmanager", &c.alertmanager_urls),
                    ("Grafana", &c.grafana_urls),
                ] {
                    v.extend(
                        urls.iter()
                            .map(|u| ConnectionEndpoint::from_url(label, u.expose())),
                    );
                }
                let port = c
                    .graphite_exporter_port
                    .map(|p| p.to_string())
                    .unwrap_or_default();
                v.extend(c.graphite_exporters.iter().map(|h| {
                    ConnectionEndpoint::new("Graphite Exporter", h.clone(), port.clone())
                }));
                v
            }
            ServiceCredentials::Messaging(c) => {
                let mut v = Vec::new();
                if let Some(u) = &c.http_api_uri {
                    v.push(ConnectionEndpoint::from_url("HTTP API", u.expose_secret()));
                }
                for (label, proto) in [
                    ("AMQP SSL", &c.amqp_ssl),
                    ("Management", &c.management),
                    ("AMQP", &c.amqp),
                ] {
                    if let Some(u) = proto.as_ref().and_then(|p| p.uri.as_ref()) {
                        v.push(ConnectionEndpoint::from_url(label, u.expose_secret()));
                    }
                }
                v
            }
            ServiceCredentials::Keyvalue(c) => {
                vec![ConnectionEndpoint::new(
                    "KeyValue",
                    c.host.clone(),
                    c.port.to_string(),
                )]
            }
        }
    }
}

/// Parses `kind` from a label value and the credentials in one step and returns the
/// connection endpoints.
///
/// ```
/// use klutch_a9s::credentials::{DataServiceKind, connection_endpoints};
/// let raw = serde_json::json!({"host": "https://admin:pw@logme2.example:443", "username": "u", "password": "p"});
/// let eps = connection_endpoints(DataServiceKind::Logme2, raw.as_object().unwrap()).unwrap();
/// assert_eq!(eps[0].host_url, "https://logme2.example");
/// assert_eq!(eps[0].port, "443");
/// ```
pub fn connection_endpoints(
    kind: DataServiceKind,
    credentials: &Map<String, Value>,
) -> Result<Vec<ConnectionEndpoint>> {
    Ok(ServiceCredentials::parse(kind, credentials, ParseMode::Lenient)?.connection_endpoints())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_is_exact_match() {
        for k in DataServiceKind::ALL {
            assert_eq!(k.as_str().parse::<DataServiceKind>(), Ok(k));
        }
        for bad in [
            "",
            "PostgreSQL",
            "a9s-postgresql",
            "postgresql11",
            "mongo",
            "search ",
        ] {
            assert_eq!(
                bad.parse::<DataServiceKind>(),
                Err(CredentialsError::ParseKind { value: bad.into() })
            );
        }
        assert_eq!(
            "x".parse::<DataServiceKind>().unwrap_err().to_string(),
            "referenced data service not found: \"x\""
        );
    }

    #[test]
    fn url_splitting() {
        assert_eq!(
            split_url("https://u:p@h.example:9200/x?y"),
            Some(("https", "h.example", "9200"))
        );
        assert_eq!(
            split_url("https://h.example"),
            Some(("https", "h.example", ""))
        );
        assert_eq!(split_url("http://[::1]:80/"), Some(("http", "[::1]", "80")));
        assert_eq!(split_url("http://[::1]/"), Some(("http", "[::1]", "")));
        assert_eq!(split_url("http://[::1"), None);
        assert_eq!(split_url("no-scheme:1"), None);
        assert_eq!(split_url("://h"), None);
        assert_eq!(split_url("http://"), None);
        assert_eq!(
            ConnectionEndpoint::from_url("X", "user:pw@host"),
            ConnectionEndpoint::new("X", "host", "")
        );
    }
}
