//! The a9s Backup Manager client (spec 13): backups, restores, the instance backup
//! configuration and the health check.
//!
//! Backup and restore ids are chosen by the server and are integers on the wire. Because of
//! that, a crash between [`BackupManager::create_backup`] and recording the returned id leaves
//! an untracked backup: record "create pending" first and reconcile with
//! [`BackupManager::list_backups`] after a restart.
//!
//! ```no_run
//! # async fn run() -> Result<(), klutch_a9s::backup::BackupManagerError> {
//! use klutch_a9s::backup::{BackupManager, JobStatus};
//! use klutch_a9s::transport::HttpConfig;
//!
//! let bm = BackupManager::new(
//!     HttpConfig::new("https://pg-backup-manager.example.com").basic_auth("admin", "secret"),
//! )?;
//! let created = bm.create_backup("instance-1").await?;
//! let backup = bm.get_backup("instance-1", created.id).await?;
//! if backup.status == JobStatus::Done {
//!     let restore = bm.create_restore("instance-1", backup.id).await?;
//!     println!("restore {} started", restore.id);
//! }
//! # Ok(()) }
//! ```

use std::fmt;
use std::time::Duration;

use http::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::transport::{
    ApiError, ApiErrorKind, CallError, HttpConfig, RawResponse, Transport, encode, non_empty,
};

/// A `Result` with this module's [`BackupManagerError`].
pub type Result<T, E = BackupManagerError> = std::result::Result<T, E>;

/// The default health endpoint (a9s Backup Managers below v68 only serve this one).
pub const DEFAULT_HEALTH_ENDPOINT: &str = "/instances";

/// The health endpoint of a9s Backup Managers v68 and later.
pub const V68_HEALTH_ENDPOINT: &str = "/v2/healthy";

/// A failed Backup Manager call, named after the operation; the cause is a [`CallError`]
/// carrying the server's status, code and message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupManagerError {
    /// The client could not be configured.
    #[error("configuring the Backup Manager client")]
    Configure {
        /// The cause.
        #[source]
        source: CallError,
    },
    /// Creating a backup failed.
    #[error("creating a backup of instance {instance_id}")]
    CreateBackup {
        /// The instance.
        instance_id: String,
        /// The cause.
        #[source]
        source: CallError,
    },
    /// Listing backups failed.
    #[error("listing the backups of instance {instance_id}")]
    ListBackups {
        /// The instance.
        instance_id: String,
        /// The cause.
        #[source]
        source: CallError,
    },
    /// Reading a backup failed.
    #[error("reading backup {backup_id} of instance {instance_id}")]
    GetBackup {
        /// The instance.
        instance_id: String,
        /// The backup.
        backup_id: u64,
        /// The cause.
        #[source]
        source: CallError,
    },
    /// Deleting a backup failed (423 while a restore uses it; 400 when storage deletion failed).
    #[error("deleting backup {backup_id} of instance {instance_id}")]
    DeleteBackup {
        /// The instance.
        instance_id: String,
        /// The backup.
        backup_id: u64,
        /// The cause.
        #[source]
        source: CallError,
    },
    /// Starting a restore failed (409 `RestoreInProgress`, 422 `BackupNonRestorableState`).
    #[error("restoring backup {backup_id} to instance {instance_id}")]
    CreateRestore {
        /// The instance.
        instance_id: String,
        /// The backup.
        backup_id: u64,
        /// The cause.
        #[source]
        source: CallError,
    },
    /// Listing restores failed.
    #[error("listing the restores of instance {instance_id}")]
    ListRestores {
        /// The instance.
        instance_id: String,
        /// The cause.
        #[source]
        source: CallError,
    },
    /// Reading a restore failed.
    #[error("reading restore {restore_id} of instance {instance_id}")]
    GetRestore {
        /// The instance.
        instance_id: String,
        /// The restore.
        restore_id: u64,
        /// The cause.
        #[source]
        source: CallError,
    },
    /// Reading the backup configuration failed.
    #[error("reading the backup configuration of instance {instance_id}")]
    GetConfig {
        /// The instance.
        instance_id: String,
        /// The cause.
        #[source]
        source: CallError,
    },
    /// Updating the backup configuration failed.
    #[error("updating the backup configuration of instance {instance_id}")]
    UpdateConfig {
        /// The instance.
        instance_id: String,
        /// The cause.
        #[source]
        source: CallError,
    },
    /// The health check could not reach the Backup Manager.
    #[error("checking the health of the Backup Manager")]
    Health {
        /// The cause.
        #[source]
        source: CallError,
    },
}

impl BackupManagerError {
    /// The underlying call error.
    pub fn call_error(&self) -> &CallError {
        match self {
            BackupManagerError::Configure { source }
            | BackupManagerError::CreateBackup { source, .. }
            | BackupManagerError::ListBackups { source, .. }
            | BackupManagerError::GetBackup { source, .. }
            | BackupManagerError::DeleteBackup { source, .. }
            | BackupManagerError::CreateRestore { source, .. }
            | BackupManagerError::ListRestores { source, .. }
            | BackupManagerError::GetRestore { source, .. }
            | BackupManagerError::GetConfig { source, .. }
            | BackupManagerError::UpdateConfig { source, .. }
            | BackupManagerError::Health { source } => source,
        }
    }

    /// The server's error answer (status, code, message), if it answered with an error.
    pub fn api(&self) -> Option<&ApiError> {
        self.call_error().api()
    }

    /// The classified status of the server's error answer.
    pub fn kind(&self) -> Option<ApiErrorKind> {
        self.call_error().kind()
    }

    /// True when the instance, backup or restore does not exist (404).
    pub fn is_not_found(&self) -> bool {
        self.call_error().is_not_found()
    }
}

/// The state of a backup or a restore. Unknown strings are kept in [`JobStatus::Unknown`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum JobStatus {
    /// `queued`.
    Queued,
    /// `running`.
    Running,
    /// `done`.
    Done,
    /// `failed`.
    Failed,
    /// `deleted`.
    Deleted,
    /// Any other value (including a missing or non-string status, kept as `""` or as JSON).
    Unknown(String),
    /// No status was sent.
    #[default]
    Missing,
}

impl JobStatus {
    /// Parses a wire value.
    ///
    /// ```
    /// use klutch_a9s::backup::JobStatus;
    /// assert_eq!(JobStatus::parse("done"), JobStatus::Done);
    /// assert_eq!(JobStatus::parse("paused"), JobStatus::Unknown("paused".into()));
    /// ```
    pub fn parse(s: &str) -> Self {
        match s {
            "queued" => JobStatus::Queued,
            "running" => JobStatus::Running,
            "done" => JobStatus::Done,
            "failed" => JobStatus::Failed,
            "deleted" => JobStatus::Deleted,
            other => JobStatus::Unknown(other.to_owned()),
        }
    }

    /// The wire value (`""` for [`JobStatus::Missing`]).
    pub fn as_str(&self) -> &str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Failed => "failed",
            JobStatus::Deleted => "deleted",
            JobStatus::Unknown(s) => s,
            JobStatus::Missing => "",
        }
    }

    /// True for `done`, `failed` and `deleted`: the job will not change any more.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            JobStatus::Done | JobStatus::Failed | JobStatus::Deleted
        )
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for JobStatus {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for JobStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::String(s) => JobStatus::parse(&s),
            Value::Null => JobStatus::Missing,
            other => JobStatus::Unknown(other.to_string()),
        })
    }
}

/// Accepts an integer or a decimal string.
fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<u64, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| serde::de::Error::custom(format!("{n} is not a non-negative integer"))),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not an integer id"))),
        other => Err(serde::de::Error::custom(format!(
            "expected an integer id, got {other}"
        ))),
    }
}

/// Like [`lenient_u64`], but `null`, absent and unparsable values become `None`.
fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<u64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < 1.8e19)
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

fn opt_string<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) if !s.is_empty() => Some(s),
        _ => None,
    })
}

fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<bool>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Bool(b) => Some(b),
        Value::String(s) => s.parse().ok(),
        _ => None,
    })
}

/// Parses an a9s timestamp such as `2023-05-01T01:30:28.300Z`.
pub fn parse_timestamp(s: &str) -> Option<jiff::Timestamp> {
    s.parse().ok()
}

/// A backup as returned by the Backup Manager.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Backup {
    /// The server-chosen id.
    #[serde(deserialize_with = "lenient_u64")]
    pub id: u64,
    /// The size in bytes.
    #[serde(
        default,
        deserialize_with = "opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub size: Option<u64>,
    /// The state.
    #[serde(default)]
    pub status: JobStatus,
    /// When the backup was triggered (`2023-04-11T08:52:48.209Z`).
    #[serde(
        default,
        deserialize_with = "opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub triggered_at: Option<String>,
    /// When it finished; absent or null while running.
    #[serde(
        default,
        deserialize_with = "opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub finished_at: Option<String>,
    /// Whether the backup files can be downloaded.
    #[serde(
        default,
        deserialize_with = "opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub downloadable: Option<bool>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Backup {
    /// `triggered_at` as a timestamp.
    pub fn triggered_at(&self) -> Option<jiff::Timestamp> {
        self.triggered_at.as_deref().and_then(parse_timestamp)
    }

    /// `finished_at` as a timestamp.
    pub fn finished_at(&self) -> Option<jiff::Timestamp> {
        self.finished_at.as_deref().and_then(parse_timestamp)
    }
}

/// A restore as returned by the Backup Manager.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Restore {
    /// The server-chosen id.
    #[serde(deserialize_with = "lenient_u64")]
    pub id: u64,
    /// The restored backup.
    #[serde(
        default,
        deserialize_with = "opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub backup_id: Option<u64>,
    /// The state.
    #[serde(default)]
    pub status: JobStatus,
    /// When the restore was triggered.
    #[serde(
        default,
        deserialize_with = "opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub triggered_at: Option<String>,
    /// When it finished; absent or null while running.
    #[serde(
        default,
        deserialize_with = "opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub finished_at: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Restore {
    /// `triggered_at` as a timestamp.
    pub fn triggered_at(&self) -> Option<jiff::Timestamp> {
        self.triggered_at.as_deref().and_then(parse_timestamp)
    }

    /// `finished_at` as a timestamp.
    pub fn finished_at(&self) -> Option<jiff::Timestamp> {
        self.finished_at.as_deref().and_then(parse_timestamp)
    }
}

/// The answer to "create backup": the new backup's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedBackup {
    /// The server-chosen backup id.
    #[serde(deserialize_with = "lenient_u64")]
    pub id: u64,
    /// An optional message.
    #[serde(
        default,
        deserialize_with = "opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub message: Option<String>,
}

/// The answer to "create restore": the new restore's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedRestore {
    /// The server-chosen restore id.
    #[serde(deserialize_with = "lenient_u64")]
    pub id: u64,
}

/// A `{"message"?}` answer (delete backup, update configuration).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Message {
    /// The message, if any.
    #[serde(
        default,
        deserialize_with = "opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub message: Option<String>,
}

/// An instance's backup configuration (`GET /instances/{id}/config`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BackupConfig {
    /// Backups kept at least.
    #[serde(
        default,
        deserialize_with = "opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub min_backup_count: Option<u64>,
    /// Retention in days.
    #[serde(
        default,
        deserialize_with = "opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub retention_time: Option<u64>,
    /// The shortest accepted encryption key.
    #[serde(
        default,
        deserialize_with = "opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub min_encryption_key_length: Option<u64>,
    /// Whether the instance is skipped by automatic backups.
    #[serde(
        default,
        deserialize_with = "opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub exclude_from_auto_backup: Option<bool>,
    /// The backup type.
    #[serde(
        default,
        deserialize_with = "opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub backup_type: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A change of the backup configuration (`PUT /instances/{id}`); unset fields are omitted
/// and at least one must be set. The encryption key is a secret and never shown in `Debug`.
///
/// ```
/// use klutch_a9s::backup::BackupConfigUpdate;
/// let u = BackupConfigUpdate::new().encryption_key("0123456789abcdef").exclude_from_auto_backup(false);
/// assert!(!format!("{u:?}").contains("0123456789abcdef"));
/// ```
#[derive(Clone, Default)]
pub struct BackupConfigUpdate {
    /// The key backups are encrypted with (needed to decrypt downloaded backups).
    pub encryption_key: Option<SecretString>,
    /// Skip the instance in automatic backups.
    pub exclude_from_auto_backup: Option<bool>,
    /// Whether the user changed the storage credentials.
    pub credentials_updated_by_user: Option<bool>,
}

impl fmt::Debug for BackupConfigUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackupConfigUpdate")
            .field(
                "encryption_key",
                &self.encryption_key.as_ref().map(|_| "[REDACTED]"),
            )
            .field("exclude_from_auto_backup", &self.exclude_from_auto_backup)
            .field(
                "credentials_updated_by_user",
                &self.credentials_updated_by_user,
            )
            .finish()
    }
}

impl BackupConfigUpdate {
    /// An empty update (set at least one field before sending).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the encryption key.
    pub fn encryption_key(mut self, key: impl Into<String>) -> Self {
        self.encryption_key = Some(SecretString::from(key.into()));
        self
    }

    /// Sets `exclude_from_auto_backup`.
    pub fn exclude_from_auto_backup(mut self, yes: bool) -> Self {
        self.exclude_from_auto_backup = Some(yes);
        self
    }

    /// Sets `credentials_updated_by_user`.
    pub fn credentials_updated_by_user(mut self, yes: bool) -> Self {
        self.credentials_updated_by_user = Some(yes);
        self
    }

    /// True when no field is set.
    pub fn is_empty(&self) -> bool {
        self.encryption_key.is_none()
            && self.exclude_from_auto_backup.is_none()
            && self.credentials_updated_by_user.is_none()
    }

    fn body(&self) -> Value {
        let mut m = Map::new();
        if let Some(k) = &self.encryption_key {
            m.insert(
                "encryption_key".into(),
                Value::String(k.expose_secret().to_owned()),
            );
        }
        if let Some(b) = self.exclude_from_auto_backup {
            m.insert("exclude_from_auto_backup".into(), Value::Bool(b));
        }
        if let Some(b) = self.credentials_updated_by_user {
            m.insert("credentials_updated_by_user".into(), Value::Bool(b));
        }
        Value::Object(m)
    }
}

/// The result of a health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// The endpoint answered with a 2xx status.
    Healthy,
    /// The endpoint answered with another status.
    Unhealthy {
        /// The status.
        status: u16,
    },
}

impl Health {
    /// True for [`Health::Healthy`].
    pub fn is_healthy(self) -> bool {
        self == Health::Healthy
    }
}

/// An a9s Backup Manager client. Cheap to clone.
///
/// Basic auth only and no version header (spec 13).
#[derive(Debug, Clone)]
pub struct BackupManager {
    transport: Transport,
    health_endpoint: String,
}

fn parse_list<T: serde::de::DeserializeOwned>(raw: &RawResponse) -> Result<Vec<T>, CallError> {
    let v: Value = raw.json()?;
    match v {
        Value::Null => Ok(vec![]),
        Value::Array(items) => items
            .into_iter()
            .map(|i| {
                serde_json::from_value(i)
                    .map_err(|e| CallError::decode(raw.status.as_u16(), e, &raw.body))
            })
            .collect(),
        other => Err(CallError::decode(
            raw.status.as_u16(),
            format!("expected a JSON array, got {}", kind_of(&other)),
            &raw.body,
        )),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn parse_message(raw: &RawResponse) -> Result<Message, CallError> {
    if raw.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Message::default());
    }
    match raw.json::<Value>()? {
        Value::Null => Ok(Message::default()),
        v @ Value::Object(_) => serde_json::from_value(v)
            .map_err(|e| CallError::decode(raw.status.as_u16(), e, &raw.body)),
        other => Err(CallError::decode(
            raw.status.as_u16(),
            format!("expected a JSON object, got {}", kind_of(&other)),
            &raw.body,
        )),
    }
}

impl BackupManager {
    /// Builds a client.
    pub fn new(config: HttpConfig) -> Result<Self> {
        Ok(BackupManager {
            transport: config
                .build()
                .map_err(|source| BackupManagerError::Configure { source })?,
            health_endpoint: DEFAULT_HEALTH_ENDPOINT.to_owned(),
        })
    }

    /// Uses another health endpoint, e.g. [`V68_HEALTH_ENDPOINT`] (a path below the base
    /// URL).
    pub fn with_health_endpoint(mut self, path: impl Into<String>) -> Self {
        let p: String = path.into();
        self.health_endpoint = if p.starts_with('/') {
            p
        } else {
            format!("/{p}")
        };
        self
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        self.transport.base_url()
    }

    fn instance_path(instance_id: &str) -> Result<String, CallError> {
        non_empty("instance_id", instance_id)?;
        Ok(format!("/instances/{}", encode(instance_id)))
    }

    async fn get(&self, path: &str) -> Result<RawResponse, CallError> {
        self.transport
            .send(Method::GET, path, &[], None, None)
            .await
    }

    /// `POST /instances/{id}/backups`: triggers a backup; the server chooses its id.
    pub async fn create_backup(&self, instance_id: &str) -> Result<CreatedBackup> {
        let err = |source| BackupManagerError::CreateBackup {
            instance_id: instance_id.to_owned(),
            source,
        };
        let path = format!("{}/backups", Self::instance_path(instance_id).map_err(err)?);
        let raw = self
            .transport
            .send(Method::POST, &path, &[], None, None)
            .await
            .map_err(err)?;
        match raw.status.as_u16() {
            200..=202 => raw.json().map_err(err),
            _ => Err(err(raw.error())),
        }
    }

    /// `GET /instances/{id}/backups`: all backups of an instance.
    pub async fn list_backups(&self, instance_id: &str) -> Result<Vec<Backup>> {
        let err = |source| BackupManagerError::ListBackups {
            instance_id: instance_id.to_owned(),
            source,
        };
        let path = format!("{}/backups", Self::instance_path(instance_id).map_err(err)?);
        let raw = self.get(&path).await.map_err(err)?;
        match raw.status.as_u16() {
            200 => parse_list(&raw).map_err(err),
            _ => Err(err(raw.error())),
        }
    }

    /// `GET /instances/{id}/backups/{backup_id}`.
    pub async fn get_backup(&self, instance_id: &str, backup_id: u64) -> Result<Backup> {
        let err = |source| BackupManagerError::GetBackup {
            instance_id: instance_id.to_owned(),
            backup_id,
            source,
        };
        let path = format!(
            "{}/backups/{backup_id}",
            Self::instance_path(instance_id).map_err(err)?
        );
        let raw = self.get(&path).await.map_err(err)?;
        raw.ok_json().map_err(err)
    }

    /// `DELETE /instances/{id}/backups/{backup_id}`. 423 (`Locked`) while a restore uses
    /// the backup; 400 when the storage deletion failed (the message is preserved).
    pub async fn delete_backup(&self, instance_id: &str, backup_id: u64) -> Result<Message> {
        let err = |source| BackupManagerError::DeleteBackup {
            instance_id: instance_id.to_owned(),
            backup_id,
            source,
        };
        let path = format!(
            "{}/backups/{backup_id}",
            Self::instance_path(instance_id).map_err(err)?
        );
        let raw = self
            .transport
            .send(Method::DELETE, &path, &[], None, None)
            .await
            .map_err(err)?;
        match raw.status.as_u16() {
            200..=204 => parse_message(&raw).map_err(err),
            _ => Err(err(raw.error())),
        }
    }

    /// `POST /instances/{id}/backups/{backup_id}/restore`: starts a restore (202).
    pub async fn create_restore(
        &self,
        instance_id: &str,
        backup_id: u64,
    ) -> Result<CreatedRestore> {
        let err = |source| BackupManagerError::CreateRestore {
            instance_id: instance_id.to_owned(),
            backup_id,
            source,
        };
        let path = format!(
            "{}/backups/{backup_id}/restore",
            Self::instance_path(instance_id).map_err(err)?
        );
        let raw = self
            .transport
            .send(Method::POST, &path, &[], None, None)
            .await
            .map_err(err)?;
        match raw.status.as_u16() {
            200..=202 => raw.json().map_err(err),
            _ => Err(err(raw.error())),
        }
    }

    /// `GET /instances/{id}/restores`.
    pub async fn list_restores(&self, instance_id: &str) -> Result<Vec<Restore>> {
        let err = |source| BackupManagerError::ListRestores {
            instance_id: instance_id.to_owned(),
            source,
        };
        let path = format!(
            "{}/restores",
            Self::instance_path(instance_id).map_err(err)?
        );
        let raw = self.get(&path).await.map_err(err)?;
        match raw.status.as_u16() {
            200 => parse_list(&raw).map_err(err),
            _ => Err(err(raw.error())),
        }
    }

    /// `GET /instances/{id}/restores/{restore_id}`.
    pub async fn get_restore(&self, instance_id: &str, restore_id: u64) -> Result<Restore> {
        let err = |source| BackupManagerError::GetRestore {
            instance_id: instance_id.to_owned(),
            restore_id,
            source,
        };
        let path = format!(
            "{}/restores/{restore_id}",
            Self::instance_path(instance_id).map_err(err)?
        );
        let raw = self.get(&path).await.map_err(err)?;
        raw.ok_json().map_err(err)
    }

    /// `GET /instances/{id}/config`.
    pub async fn get_config(&self, instance_id: &str) -> Result<BackupConfig> {
        let err = |source| BackupManagerError::GetConfig {
            instance_id: instance_id.to_owned(),
            source,
        };
        let path = format!("{}/config", Self::instance_path(instance_id).map_err(err)?);
        let raw = self.get(&path).await.map_err(err)?;
        raw.ok_json().map_err(err)
    }

    /// `PUT /instances/{id}` with the set fields of `update` (at least one).
    pub async fn update_config(
        &self,
        instance_id: &str,
        update: &BackupConfigUpdate,
    ) -> Result<Message> {
        let err = |source| BackupManagerError::UpdateConfig {
            instance_id: instance_id.to_owned(),
            source,
        };
        if update.is_empty() {
            return Err(err(CallError::invalid(
                "a backup configuration update must set at least one field",
            )));
        }
        let path = Self::instance_path(instance_id).map_err(err)?;
        let raw = self
            .transport
            .send(Method::PUT, &path, &[], Some(&update.body()), None)
            .await
            .map_err(err)?;
        match raw.status.as_u16() {
            200..=204 => parse_message(&raw).map_err(err),
            _ => Err(err(raw.error())),
        }
    }

    /// `GET {health endpoint}`: [`Health::Healthy`] for any 2xx.
    pub async fn health(&self) -> Result<Health> {
        self.health_with_timeout(None).await
    }

    /// Like [`BackupManager::health`] with a per-call timeout.
    pub async fn health_with_timeout(&self, timeout: Option<Duration>) -> Result<Health> {
        let raw = self
            .transport
            .send(Method::GET, &self.health_endpoint, &[], None, timeout)
            .await
            .map_err(|source| BackupManagerError::Health { source })?;
        Ok(if raw.status.is_success() {
            Health::Healthy
        } else {
            Health::Unhealthy {
                status: raw.status.as_u16(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fixtures_parse_field_by_field() {
        let b: Backup = serde_json::from_value(json!({"id": 5, "size": 1184, "status": "done",
            "triggered_at": "2023-04-11T08:52:48.209Z", "finished_at": "2023-04-11T08:53:16.411Z",
            "downloadable": false}))
        .unwrap();
        assert_eq!(b.id, 5);
        assert_eq!(b.size, Some(1184));
        assert_eq!(b.status, JobStatus::Done);
        assert_eq!(b.triggered_at.as_deref(), Some("2023-04-11T08:52:48.209Z"));
        assert_eq!(
            b.finished_at().map(|t| t.as_millisecond()),
            Some(1_681_203_196_411)
        );
        assert_eq!(b.downloadable, Some(false));
        assert!(b.extra.is_empty());

        let r: Restore =
            serde_json::from_value(json!({"id": 7, "backup_id": 5, "status": "running",
            "triggered_at": "2023-05-01T01:30:28.300Z", "finished_at": null, "extra_field": 1}))
            .unwrap();
        assert_eq!(r.id, 7);
        assert_eq!(r.backup_id, Some(5));
        assert_eq!(r.status, JobStatus::Running);
        assert!(r.triggered_at().is_some());
        assert_eq!(r.finished_at, None);
        assert_eq!(r.extra.get("extra_field"), Some(&json!(1)));
    }

    #[test]
    fn lenient_fields() {
        let b: Backup =
            serde_json::from_value(json!({"id": "12", "size": "100", "status": 3})).unwrap();
        assert_eq!(b.id, 12);
        assert_eq!(b.size, Some(100));
        assert_eq!(b.status, JobStatus::Unknown("3".into()));
        let b: Backup = serde_json::from_value(json!({"id": 1, "status": null})).unwrap();
        assert_eq!(b.status, JobStatus::Missing);
        assert!(!b.status.is_terminal());
        assert!(serde_json::from_value::<Backup>(json!({"id": -1})).is_err());
        assert!(serde_json::from_value::<Backup>(json!({"id": "x"})).is_err());
        assert!(serde_json::from_value::<Backup>(json!({})).is_err());
    }

    #[test]
    fn statuses_round_trip() {
        for s in ["queued", "running", "done", "failed", "deleted", "paused"] {
            let st = JobStatus::parse(s);
            assert_eq!(st.as_str(), s);
            assert_eq!(serde_json::to_value(&st).unwrap(), json!(s));
        }
        assert!(JobStatus::Deleted.is_terminal());
        assert!(!JobStatus::Queued.is_terminal());
    }

    #[test]
    fn config_update_body_omits_unset_fields() {
        let u = BackupConfigUpdate::new().exclude_from_auto_backup(true);
        assert_eq!(u.body(), json!({"exclude_from_auto_backup": true}));
        let u = BackupConfigUpdate::new()
            .encryption_key("k")
            .credentials_updated_by_user(false);
        assert_eq!(
            u.body(),
            json!({"encryption_key": "k", "credentials_updated_by_user": false})
        );
        assert!(BackupConfigUpdate::new().is_empty());
    }
}
