//! SQL text the broker builds: quoted identifiers and literals, the names of the databases and
//! roles (derived from broker-assigned sequence numbers, never from request input), and the
//! instance parameters the broker accepts.

use serde_json::{Map, Value};

/// Quotes an identifier (`"..."`, inner quotes doubled).
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a string literal (`'...'`, inner quotes doubled; `E''` is never used, and
/// `standard_conforming_strings` is on by default since PostgreSQL 9.1).
pub fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Checks a configured name prefix: `[a-z][a-z0-9_]{0,15}`.
pub fn valid_prefix(prefix: &str) -> bool {
    let mut chars = prefix.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && prefix.len() <= 16
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The names of one instance's objects on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceNames {
    /// The database, `<prefix>_i<seq>`.
    pub database: String,
    /// The owner role (NOLOGIN), `<prefix>_i<seq>_owner`.
    pub owner: String,
    prefix: String,
    seq: i64,
}

impl InstanceNames {
    /// The names of instance number `seq`.
    pub fn new(prefix: &str, seq: i64) -> Self {
        InstanceNames {
            database: format!("{prefix}_i{seq}"),
            owner: format!("{prefix}_i{seq}_owner"),
            prefix: prefix.to_owned(),
            seq,
        }
    }

    /// The login role of binding number `binding_seq`, `<prefix>_i<seq>_b<binding_seq>`.
    pub fn binding_role(&self, binding_seq: i64) -> String {
        format!("{}_i{}_b{binding_seq}", self.prefix, self.seq)
    }
}

/// How the broker treats an instance parameter (the `spec.forProvider.parameters` names of the
/// `a9s-postgresql` composition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handling {
    /// The database's connection limit.
    ConnectionLimit,
    /// `ALTER DATABASE … SET <setting> = <value>`.
    DatabaseSetting(&'static str),
    /// A server-wide setting the broker does not change: accepted only when the server's current
    /// value already is the requested one.
    ServerSetting(&'static str),
    /// Not offered by the development broker.
    Unsupported,
}

fn handling(name: &str) -> Option<Handling> {
    use Handling::*;
    Some(match name {
        "max_connections" => ConnectionLimit,
        "effective_cache_size" => DatabaseSetting("effective_cache_size"),
        "work_mem" => DatabaseSetting("work_mem"),
        "maintenance_work_mem" => DatabaseSetting("maintenance_work_mem"),
        "temp_file_limit" => DatabaseSetting("temp_file_limit"),
        "track_io_timing" => DatabaseSetting("track_io_timing"),
        "statement_timeout" => DatabaseSetting("statement_timeout"),
        "idle_in_transaction_session_timeout" => {
            DatabaseSetting("idle_in_transaction_session_timeout")
        }
        "synchronous_commit" => DatabaseSetting("synchronous_commit"),
        "client_min_messages" => DatabaseSetting("client_min_messages"),
        "pg_log_min_messages" => DatabaseSetting("log_min_messages"),
        "pg_log_min_error_statement" => DatabaseSetting("log_min_error_statement"),
        "log_statement" => DatabaseSetting("log_statement"),
        "log_error_verbosity" => DatabaseSetting("log_error_verbosity"),
        "data_checksums" => ServerSetting("data_checksums"),
        "wal_level_logical" => ServerSetting("wal_level"),
        "archive_timeout"
        | "wal_writer_delay"
        | "max_replication_slots"
        | "max_wal_senders"
        | "role_privileges" => Unsupported,
        _ => return None,
    })
}

/// The parameters of a provision or update, checked and sorted by how they are applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parameters {
    /// `max_connections`, the database's connection limit.
    pub connection_limit: Option<i32>,
    /// `(setting, value)` pairs for `ALTER DATABASE … SET`.
    pub settings: Vec<(&'static str, String)>,
    /// `(setting, wanted value)` pairs that the server must already have.
    pub server: Vec<(&'static str, String)>,
}

/// Why parameters were refused: `Malformed` is a 400, `Unsupported` a 422.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParameterError {
    /// Not an object, an unknown name or a value of the wrong type.
    Malformed(String),
    /// Well-formed, but the development broker cannot apply it.
    Unsupported(String),
}

/// A scalar setting value: a number, a boolean or a short string of `[A-Za-z0-9_ .:-]`.
fn scalar(name: &str, v: &Value) -> Result<String, ParameterError> {
    let s = match v {
        Value::Bool(b) => if *b { "on" } else { "off" }.to_owned(),
        Value::Number(n) => n.to_string(),
        Value::String(s)
            if !s.is_empty()
                && s.len() <= 64
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || " _.:-".contains(c)) =>
        {
            s.clone()
        }
        _ => {
            return Err(ParameterError::Malformed(format!(
                "parameter `{name}`: expected a number, a boolean or a short word, got {v}"
            )));
        }
    };
    Ok(s)
}

/// Checks the `parameters` of a request. `None` and `{}` are no parameters.
pub fn parse_parameters(parameters: Option<&Value>) -> Result<Parameters, ParameterError> {
    let map = match parameters {
        None | Some(Value::Null) => return Ok(Parameters::default()),
        Some(Value::Object(m)) => m,
        Some(other) => {
            return Err(ParameterError::Malformed(format!(
                "`parameters` must be a JSON object, got {other}"
            )));
        }
    };
    parse_map(map)
}

fn parse_map(map: &Map<String, Value>) -> Result<Parameters, ParameterError> {
    let mut out = Parameters::default();
    for (name, v) in map {
        if v.is_null() {
            continue;
        }
        let Some(h) = handling(name) else {
            return Err(ParameterError::Malformed(format!(
                "unknown parameter `{name}`"
            )));
        };
        match h {
            Handling::ConnectionLimit => {
                let n = v
                    .as_i64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    .filter(|n| (1..=10_000).contains(n))
                    .ok_or_else(|| {
                        ParameterError::Malformed(format!(
                            "parameter `max_connections`: expected an integer from 1 to 10000, got {v}"
                        ))
                    })?;
                out.connection_limit = Some(n as i32);
            }
            Handling::DatabaseSetting(setting) => {
                out.settings.push((setting, scalar(name, v)?));
            }
            Handling::ServerSetting(setting) => {
                let wanted = match (setting, v) {
                    ("wal_level", Value::Bool(true)) => "logical".to_owned(),
                    ("wal_level", Value::Bool(false)) => continue,
                    ("data_checksums", Value::Bool(b)) => if *b { "on" } else { "off" }.to_owned(),
                    _ => {
                        return Err(ParameterError::Malformed(format!(
                            "parameter `{name}`: expected a boolean, got {v}"
                        )));
                    }
                };
                out.server.push((setting, wanted));
            }
            Handling::Unsupported => {
                return Err(ParameterError::Unsupported(format!(
                    "parameter `{name}` changes the whole server (or role attributes); the \
                     development broker shares one PostgreSQL server between instances and does \
                     not offer it"
                )));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identifiers_and_literals_are_quoted() {
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(literal("it's"), "'it''s'");
        assert!(valid_prefix("a9s") && valid_prefix("dev_1"));
        assert!(
            !valid_prefix("") && !valid_prefix("9a") && !valid_prefix("A") && !valid_prefix("a-b")
        );
        let n = InstanceNames::new("a9s", 7);
        assert_eq!(
            (n.database.as_str(), n.owner.as_str()),
            ("a9s_i7", "a9s_i7_owner")
        );
        assert_eq!(n.binding_role(3), "a9s_i7_b3");
    }

    #[test]
    fn parameters_are_sorted_checked_and_refused_clearly() {
        let p = parse_parameters(Some(
            &json!({"max_connections": 150, "statement_timeout": "5s",
            "track_io_timing": true, "wal_level_logical": true, "work_mem": null}),
        ))
        .unwrap();
        assert_eq!(p.connection_limit, Some(150));
        assert_eq!(
            p.settings,
            vec![
                ("statement_timeout", "5s".into()),
                ("track_io_timing", "on".into())
            ]
        );
        assert_eq!(p.server, vec![("wal_level", "logical".into())]);
        assert!(matches!(
            parse_parameters(Some(&json!("x"))),
            Err(ParameterError::Malformed(_))
        ));
        assert!(matches!(
            parse_parameters(Some(&json!({"nope": 1}))),
            Err(ParameterError::Malformed(_))
        ));
        assert!(matches!(
            parse_parameters(Some(&json!({"work_mem": "1'; drop"}))),
            Err(ParameterError::Malformed(_))
        ));
        assert!(matches!(
            parse_parameters(Some(&json!({"max_connections": 0}))),
            Err(ParameterError::Malformed(_))
        ));
        assert!(matches!(
            parse_parameters(Some(&json!({"max_wal_senders": 5}))),
            Err(ParameterError::Unsupported(_))
        ));
        assert_eq!(parse_parameters(None).unwrap(), Parameters::default());
    }
}
