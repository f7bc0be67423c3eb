//! In-process fakes for tests (feature `testing`):
//!
//! * [`FakeBackupManager`]: the a9s Backup Manager API with a state machine for backups and
//!   restores (`queued` → `running` → `done`/`failed`, `deleted` after a delete), the 409 /
//!   422 / 423 rules of spec 13, fault injection and a request log.
//! * [`FakeA9sBroker`]: the a9s broker extensions (instance record, paged instance list,
//!   HEAD health checks) in front of `klutch_osb`'s fake broker, to which every OSB request is
//!   forwarded. It records instances and bindings from the OSB traffic, adds the a9s `id` and
//!   `context` to fetch-instance answers and replaces bind credentials with the a9s shape of
//!   the configured data service.
//!
//! Both are built on `klutch_osb::testing::server`, the fake-HTTP core they share with the OSB
//! fake broker: [`FaultAction`] and [`Recorded`] are that core's.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use klutch_a9s::backup::JobStatus;
//! use klutch_a9s::testing::{FakeBackupManager, FakeBackupManagerConfig};
//! let fake = FakeBackupManager::start(FakeBackupManagerConfig::default()).await?;
//! let bm = fake.client()?;
//! let created = bm.create_backup("instance-1").await?;
//! assert_eq!(bm.get_backup("instance-1", created.id).await?.status, JobStatus::Queued);
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{Method, Request, Response, StatusCode};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use klutch_osb::testing::server::{
    FakeServer, Incoming, Journal, basic_auth_ok, error, json, respond,
};
pub use klutch_osb::testing::server::{FaultAction, Recorded};
use klutch_osb::testing::{FakeBroker, FakeBrokerConfig};

use crate::backup::{BackupManager, JobStatus};
use crate::broker::A9sBroker;
use crate::credentials::DataServiceKind;
use crate::transport::{CallError, HttpConfig};

/// A `Result` with this module's [`FakeError`].
pub type Result<T, E = FakeError> = std::result::Result<T, E>;

/// Why a fake could not be started or a client for it not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FakeError {
    /// Binding the listening socket failed.
    #[error("starting the fake server")]
    Start {
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Starting the inner OSB fake broker failed.
    #[error("starting the inner OSB fake broker")]
    StartOsb {
        /// The cause.
        #[source]
        source: klutch_osb::Error,
    },
    /// Building the HTTP client of the fake or for it failed.
    #[error("building an HTTP client")]
    Client {
        /// The cause.
        #[source]
        source: CallError,
    },
    /// Building a Backup Manager client for the fake failed.
    #[error("building a Backup Manager client")]
    BackupManagerClient {
        /// The cause.
        #[source]
        source: crate::backup::BackupManagerError,
    },
    /// Building an a9s broker client for the fake failed.
    #[error("building an a9s broker client")]
    BrokerClient {
        /// The cause.
        #[source]
        source: crate::broker::BrokerExtError,
    },
}

fn reply(status: u16, body: Value) -> Response<Body> {
    json(status, &body)
}

fn err(status: u16, code: &str, description: &str) -> Response<Body> {
    error(status, Some(code), description)
}

fn now_string() -> String {
    jiff::Timestamp::now().to_string()
}

async fn serve(app: axum::Router) -> Result<FakeServer> {
    FakeServer::start(app)
        .await
        .map_err(|source| FakeError::Start { source })
}

// ---------------------------------------------------------------------------------------------
// Fake Backup Manager
// ---------------------------------------------------------------------------------------------

/// A Backup Manager endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackupRoute {
    /// `POST /instances/{id}/backups`.
    CreateBackup,
    /// `GET /instances/{id}/backups`.
    ListBackups,
    /// `GET /instances/{id}/backups/{backup_id}`.
    GetBackup,
    /// `DELETE /instances/{id}/backups/{backup_id}`.
    DeleteBackup,
    /// `POST /instances/{id}/backups/{backup_id}/restore`.
    CreateRestore,
    /// `GET /instances/{id}/restores`.
    ListRestores,
    /// `GET /instances/{id}/restores/{restore_id}`.
    GetRestore,
    /// `GET /instances/{id}/config`.
    GetConfig,
    /// `PUT /instances/{id}`.
    UpdateConfig,
    /// `GET /instances` or `GET /v2/healthy`.
    Health,
    /// Anything else.
    Other,
}

fn backup_route(method: &Method, s: &[&str]) -> BackupRoute {
    match (method.as_str(), s) {
        ("GET", ["instances"]) | ("GET", ["v2", "healthy"]) => BackupRoute::Health,
        ("POST", ["instances", _, "backups"]) => BackupRoute::CreateBackup,
        ("GET", ["instances", _, "backups"]) => BackupRoute::ListBackups,
        ("GET", ["instances", _, "backups", _]) => BackupRoute::GetBackup,
        ("DELETE", ["instances", _, "backups", _]) => BackupRoute::DeleteBackup,
        ("POST", ["instances", _, "backups", _, "restore"]) => BackupRoute::CreateRestore,
        ("GET", ["instances", _, "restores"]) => BackupRoute::ListRestores,
        ("GET", ["instances", _, "restores", _]) => BackupRoute::GetRestore,
        ("GET", ["instances", _, "config"]) => BackupRoute::GetConfig,
        ("PUT", ["instances", _]) => BackupRoute::UpdateConfig,
        _ => BackupRoute::Other,
    }
}

/// Fake Backup Manager configuration.
#[derive(Debug, Clone)]
pub struct FakeBackupManagerConfig {
    /// Required basic-auth credentials (`None` = no auth).
    pub basic_auth: Option<(String, String)>,
    /// How long a job stays `queued`.
    pub queued_for: Duration,
    /// How long a job then stays `running`.
    pub running_for: Duration,
    /// Backups end `failed` instead of `done`.
    pub fail_backups: bool,
    /// Restores end `failed` instead of `done`.
    pub fail_restores: bool,
    /// Any instance id exists (created on first use); when false, only instances added with
    /// [`FakeBackupManager::add_instance`] exist and others answer 404.
    pub accept_any_instance: bool,
    /// The size reported for finished backups.
    pub backup_size: u64,
}

impl Default for FakeBackupManagerConfig {
    fn default() -> Self {
        FakeBackupManagerConfig {
            basic_auth: Some(("admin".into(), "secret".into())),
            queued_for: Duration::from_millis(50),
            running_for: Duration::from_millis(100),
            fail_backups: false,
            fail_restores: false,
            accept_any_instance: true,
            backup_size: 1184,
        }
    }
}

#[derive(Debug, Clone)]
struct Job {
    id: u64,
    backup_id: Option<u64>,
    started: Instant,
    triggered_at: String,
    finished_at: Option<String>,
    fail: bool,
    /// A status set by the test or by a delete; wins over the timeline.
    pinned: Option<JobStatus>,
}

#[derive(Debug, Default)]
struct BmInstance {
    backups: Vec<Job>,
    restores: Vec<Job>,
    encryption_key: Option<String>,
    exclude_from_auto_backup: bool,
    credentials_updated_by_user: bool,
}

#[derive(Debug)]
struct BmState {
    config: FakeBackupManagerConfig,
    instances: HashMap<String, BmInstance>,
    next_id: u64,
}

/// What the Backup Manager handler shares: the state and the journal.
#[derive(Debug, Clone)]
struct BmShared {
    state: Arc<Mutex<BmState>>,
    journal: Journal<BackupRoute>,
}

impl Job {
    fn status(&mut self, cfg: &FakeBackupManagerConfig) -> JobStatus {
        if let Some(p) = &self.pinned {
            return p.clone();
        }
        let e = self.started.elapsed();
        if e < cfg.queued_for {
            JobStatus::Queued
        } else if e < cfg.queued_for + cfg.running_for {
            JobStatus::Running
        } else {
            if self.finished_at.is_none() {
                self.finished_at = Some(now_string());
            }
            if self.fail {
                JobStatus::Failed
            } else {
                JobStatus::Done
            }
        }
    }

    fn backup_json(&mut self, cfg: &FakeBackupManagerConfig) -> Value {
        let status = self.status(cfg);
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert(
            "size".into(),
            json!(if status == JobStatus::Done {
                cfg.backup_size
            } else {
                0
            }),
        );
        m.insert("status".into(), json!(status.as_str()));
        m.insert("triggered_at".into(), json!(self.triggered_at));
        m.insert("finished_at".into(), json!(self.finished_at));
        m.insert("downloadable".into(), json!(false));
        Value::Object(m)
    }

    fn restore_json(&mut self, cfg: &FakeBackupManagerConfig) -> Value {
        let status = self.status(cfg);
        json!({"id": self.id, "backup_id": self.backup_id, "status": status.as_str(),
               "triggered_at": self.triggered_at, "finished_at": self.finished_at})
    }
}

/// A running fake Backup Manager; stops when dropped.
#[derive(Debug)]
pub struct FakeBackupManager {
    server: FakeServer,
    shared: BmShared,
}

impl FakeBackupManager {
    /// Starts the fake on `127.0.0.1:<random port>`.
    pub async fn start(config: FakeBackupManagerConfig) -> Result<Self> {
        let shared = BmShared {
            state: Arc::new(Mutex::new(BmState {
                config,
                instances: HashMap::new(),
                next_id: 1,
            })),
            journal: Journal::new("{\"id\": "),
        };
        let app = axum::Router::new()
            .fallback(bm_handle)
            .with_state(shared.clone());
        Ok(FakeBackupManager {
            server: serve(app).await?,
            shared,
        })
    }

    fn lock(&self) -> MutexGuard<'_, BmState> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The base URL.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Connection settings with the fake's credentials.
    pub fn http_config(&self) -> HttpConfig {
        let c = HttpConfig::new(self.url());
        match &self.lock().config.basic_auth {
            Some((u, p)) => c.basic_auth(u.clone(), p.clone()),
            None => c,
        }
    }

    /// A client for the fake.
    pub fn client(&self) -> Result<BackupManager> {
        BackupManager::new(self.http_config())
            .map_err(|source| FakeError::BackupManagerClient { source })
    }

    /// Makes an instance exist (needed when `accept_any_instance` is false).
    pub fn add_instance(&self, instance_id: &str) {
        self.lock()
            .instances
            .entry(instance_id.to_owned())
            .or_default();
    }

    /// Removes an instance and its backups and restores.
    pub fn remove_instance(&self, instance_id: &str) {
        self.lock().instances.remove(instance_id);
    }

    /// Pins the status of a backup (e.g. to keep it `running`); `None` = follow the timeline.
    pub fn set_backup_status(&self, instance_id: &str, backup_id: u64, status: Option<JobStatus>) {
        if let Some(j) = self
            .lock()
            .instances
            .get_mut(instance_id)
            .and_then(|i| i.backups.iter_mut().find(|b| b.id == backup_id))
        {
            j.pinned = status;
        }
    }

    /// Pins the status of a restore; `None` = follow the timeline.
    pub fn set_restore_status(
        &self,
        instance_id: &str,
        restore_id: u64,
        status: Option<JobStatus>,
    ) {
        if let Some(j) = self
            .lock()
            .instances
            .get_mut(instance_id)
            .and_then(|i| i.restores.iter_mut().find(|r| r.id == restore_id))
        {
            j.pinned = status;
        }
    }

    /// Makes subsequent backups fail (or succeed again).
    pub fn set_fail_backups(&self, fail: bool) {
        self.lock().config.fail_backups = fail;
    }

    /// Makes subsequent restores fail (or succeed again).
    pub fn set_fail_restores(&self, fail: bool) {
        self.lock().config.fail_restores = fail;
    }

    /// The encryption key last set for an instance (tests only; a secret elsewhere).
    pub fn encryption_key(&self, instance_id: &str) -> Option<String> {
        self.lock()
            .instances
            .get(instance_id)
            .and_then(|i| i.encryption_key.clone())
    }

    /// Injects a fault for `route` (`None` = every route) for the next `times` matching
    /// requests (`None` = until cleared).
    pub fn inject(&self, route: Option<BackupRoute>, action: FaultAction, times: Option<u32>) {
        self.shared.journal.inject(route, action, times);
    }

    /// Removes all faults.
    pub fn clear_faults(&self) {
        self.shared.journal.clear_faults();
    }

    /// All requests received so far.
    pub fn requests(&self) -> Vec<Recorded<BackupRoute>> {
        self.shared.journal.requests()
    }

    /// How many requests hit `route`.
    pub fn count(&self, route: BackupRoute) -> usize {
        self.shared.journal.count(route)
    }
}

async fn bm_handle(State(shared): State<BmShared>, req: Request<Body>) -> Response<Body> {
    let req = Incoming::read(req, 1024 * 1024).await;
    let segs = req.segments();
    let route = backup_route(&req.parts.method, &segs);
    if let Some(fault) = shared.journal.admit(&req, route).await {
        return fault;
    }
    let mut st = shared.state.lock().unwrap_or_else(|p| p.into_inner());
    if !basic_auth_ok(&req.parts.headers, st.config.basic_auth.as_ref()) {
        return err(401, "Unauthorized", "Invalid credentials");
    }
    st.handle(route, &segs, req.json.clone())
}

fn parse_id(s: &str) -> Option<u64> {
    s.parse().ok()
}

impl BmState {
    fn instance(&mut self, id: &str) -> Option<&mut BmInstance> {
        if self.config.accept_any_instance {
            Some(self.instances.entry(id.to_owned()).or_default())
        } else {
            self.instances.get_mut(id)
        }
    }

    fn handle(&mut self, route: BackupRoute, s: &[&str], body: Option<Value>) -> Response<Body> {
        if route == BackupRoute::Health {
            return reply(200, json!([]));
        }
        if route == BackupRoute::Other {
            return err(404, "NotFound", "No such endpoint");
        }
        let cfg = self.config.clone();
        let id = self.next_id;
        let instance_id = s.get(1).copied().unwrap_or_default();
        let Some(inst) = self.instance(instance_id) else {
            return err(404, "NotFound", "Instance not found");
        };
        let job_id = s.get(3).and_then(|x| parse_id(x));
        match route {
            BackupRoute::CreateBackup => {
                inst.backups.push(Job {
                    id,
                    backup_id: None,
                    started: Instant::now(),
                    triggered_at: now_string(),
                    finished_at: None,
                    fail: cfg.fail_backups,
                    pinned: None,
                });
                self.next_id += 1;
                reply(201, json!({"id": id, "message": "job queued"}))
            }
            BackupRoute::ListBackups => {
                let v: Vec<Value> = inst
                    .backups
                    .iter_mut()
                    .map(|b| b.backup_json(&cfg))
                    .collect();
                reply(200, Value::Array(v))
            }
            BackupRoute::GetBackup => {
                match inst.backups.iter_mut().find(|b| Some(b.id) == job_id) {
                    Some(b) => reply(200, b.backup_json(&cfg)),
                    None => err(404, "NotFound", "Backup not found"),
                }
            }
            BackupRoute::DeleteBackup => {
                let Some(bid) = job_id.filter(|b| inst.backups.iter().any(|x| x.id == *b)) else {
                    return err(404, "NotFound", "Backup not found");
                };
                let in_use = inst
                    .restores
                    .iter_mut()
                    .any(|r| r.backup_id == Some(bid) && !r.status(&cfg).is_terminal());
                if in_use {
                    return err(423, "Locked", "Backup is used by a running restore");
                }
                if let Some(b) = inst.backups.iter_mut().find(|b| b.id == bid) {
                    b.pinned = Some(JobStatus::Deleted);
                }
                reply(200, json!({"message": "backup deleted"}))
            }
            BackupRoute::CreateRestore => {
                let Some(b) = inst.backups.iter_mut().find(|b| Some(b.id) == job_id) else {
                    return err(404, "NotFound", "Backup not found");
                };
                let bid = b.id;
                if b.status(&cfg) != JobStatus::Done {
                    return err(
                        422,
                        "BackupNonRestorableState",
                        "The backup is not in a restorable state",
                    );
                }
                if inst
                    .restores
                    .iter_mut()
                    .any(|r| !r.status(&cfg).is_terminal())
                {
                    return err(
                        409,
                        "RestoreInProgress",
                        "A restore is already in progress for this instance",
                    );
                }
                inst.restores.push(Job {
                    id,
                    backup_id: Some(bid),
                    started: Instant::now(),
                    triggered_at: now_string(),
                    finished_at: None,
                    fail: cfg.fail_restores,
                    pinned: None,
                });
                self.next_id += 1;
                reply(202, json!({"id": id}))
            }
            BackupRoute::ListRestores => {
                let v: Vec<Value> = inst
                    .restores
                    .iter_mut()
                    .map(|r| r.restore_json(&cfg))
                    .collect();
                reply(200, Value::Array(v))
            }
            BackupRoute::GetRestore => {
                match inst.restores.iter_mut().find(|r| Some(r.id) == job_id) {
                    Some(r) => reply(200, r.restore_json(&cfg)),
                    None => err(404, "NotFound", "Restore not found"),
                }
            }
            BackupRoute::GetConfig => reply(
                200,
                json!({"min_backup_count": 3, "retention_time": 10, "min_encryption_key_length": 8,
                       "exclude_from_auto_backup": inst.exclude_from_auto_backup, "backup_type": "full"}),
            ),
            BackupRoute::UpdateConfig => {
                let Some(Value::Object(m)) = body else {
                    return err(400, "BadRequest", "A JSON object is required");
                };
                if m.is_empty() {
                    return err(400, "BadRequest", "No configuration field given");
                }
                if let Some(k) = m.get("encryption_key") {
                    match k.as_str() {
                        Some(k) if k.len() >= 8 => inst.encryption_key = Some(k.to_owned()),
                        _ => {
                            return err(
                                400,
                                "BadRequest",
                                "The encryption key must be at least 8 characters long",
                            );
                        }
                    }
                }
                if let Some(b) = m.get("exclude_from_auto_backup").and_then(Value::as_bool) {
                    inst.exclude_from_auto_backup = b;
                }
                if let Some(b) = m
                    .get("credentials_updated_by_user")
                    .and_then(Value::as_bool)
                {
                    inst.credentials_updated_by_user = b;
                }
                reply(200, json!({"message": "configuration updated"}))
            }
            BackupRoute::Health | BackupRoute::Other => err(404, "NotFound", "No such endpoint"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fake a9s broker
// ---------------------------------------------------------------------------------------------

/// An a9s broker endpoint of the fake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum A9sRoute {
    /// `GET /instances/{id}`.
    InstanceRecord,
    /// `GET /instances` (any page).
    InstanceList,
    /// `HEAD /instances` or `HEAD /osb_ext/v1/healthy`.
    Health,
    /// Anything forwarded to the OSB fake broker (inject OSB faults there, see
    /// [`FakeA9sBroker::osb`]).
    Osb,
}

/// Fake a9s broker configuration.
#[derive(Debug, Clone)]
pub struct FakeA9sBrokerConfig {
    /// The inner OSB fake broker (catalog, sync/async mode, auth).
    pub osb: FakeBrokerConfig,
    /// The data service whose credential shape bind answers carry.
    pub kind: DataServiceKind,
    /// Records per `GET /instances` page.
    pub page_size: usize,
}

impl Default for FakeA9sBrokerConfig {
    fn default() -> Self {
        FakeA9sBrokerConfig {
            osb: FakeBrokerConfig::default(),
            kind: DataServiceKind::Postgresql,
            page_size: 2,
        }
    }
}

#[derive(Debug, Clone)]
struct A9sInstanceRecord {
    db_id: i64,
    guid: String,
    service_id: String,
    plan_id: String,
    state: &'static str,
    context: Value,
    created_at: String,
    updated_at: String,
    provisioned_at: Option<String>,
    deleted_at: Option<String>,
    bindings: Vec<(i64, String)>,
    /// The plan of an asynchronous update, applied when it succeeds.
    pending_plan: Option<String>,
}

impl A9sInstanceRecord {
    fn json(&self) -> Value {
        let creds: Vec<Value> = self
            .bindings
            .iter()
            .map(|(id, guid)| json!({"id": id, "instance_id": self.db_id, "guid_at_tenant": guid}))
            .collect();
        json!({
            "id": self.db_id, "guid_at_tenant": self.guid, "plan_guid": self.plan_id,
            "service_guid": self.service_id, "state": self.state, "context": self.context,
            "dashboard_url": format!("http://dashboard.fake/{}", self.guid),
            "deployment_name": format!("d{:06x}", self.db_id), "tenant_id": "klutch",
            "provisioned_at": self.provisioned_at, "created_at": self.created_at,
            "updated_at": self.updated_at, "deleted_at": self.deleted_at,
            "allowed_update_time": {"type": "general", "allowed": true},
            "is_locked": false, "credentials": creds
        })
    }

    fn set_state(&mut self, state: &'static str) {
        self.state = state;
        self.updated_at = now_string();
        match state {
            "provisioned" if self.provisioned_at.is_none() => {
                self.provisioned_at = Some(self.updated_at.clone())
            }
            "deleted" => self.deleted_at = Some(self.updated_at.clone()),
            _ => {}
        }
    }
}

#[derive(Debug)]
struct A9sState {
    kind: DataServiceKind,
    page_size: usize,
    auth: Option<(String, String)>,
    inner_url: String,
    http: reqwest::Client,
    records: Vec<A9sInstanceRecord>,
    next_db_id: i64,
    self_url: String,
}

/// What the a9s front's handler shares: the state and the journal.
#[derive(Debug, Clone)]
struct A9sShared {
    state: Arc<Mutex<A9sState>>,
    journal: Journal<A9sRoute>,
}

/// A running fake a9s broker (extensions plus the forwarded OSB fake); stops when dropped.
#[derive(Debug)]
pub struct FakeA9sBroker {
    server: FakeServer,
    inner: FakeBroker,
    shared: A9sShared,
}

impl FakeA9sBroker {
    /// Starts the OSB fake broker and the a9s front on random ports.
    pub async fn start(config: FakeA9sBrokerConfig) -> Result<Self> {
        let auth = config.osb.basic_auth.clone();
        let inner = FakeBroker::start(config.osb)
            .await
            .map_err(|source| FakeError::StartOsb { source })?;
        let http = crate::transport::build_http_client(None, false, Duration::from_secs(5))
            .map_err(|source| FakeError::Client { source })?;
        let shared = A9sShared {
            state: Arc::new(Mutex::new(A9sState {
                kind: config.kind,
                page_size: config.page_size.max(1),
                auth,
                inner_url: inner.url(),
                http,
                records: Vec::new(),
                next_db_id: 1,
                self_url: String::new(),
            })),
            journal: Journal::new("{\"id\": "),
        };
        let app = axum::Router::new()
            .fallback(a9s_handle)
            .with_state(shared.clone());
        let server = serve(app).await?;
        shared
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .self_url = server.url();
        Ok(FakeA9sBroker {
            server,
            inner,
            shared,
        })
    }

    fn lock(&self) -> MutexGuard<'_, A9sState> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The base URL of the a9s front (OSB requests are forwarded from here).
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The inner OSB fake broker (for its request log and OSB fault injection).
    pub fn osb(&self) -> &FakeBroker {
        &self.inner
    }

    /// Connection settings with the fake's credentials.
    pub fn http_config(&self) -> HttpConfig {
        let c = HttpConfig::new(self.url());
        match &self.lock().auth {
            Some((u, p)) => c.basic_auth(u.clone(), p.clone()),
            None => c,
        }
    }

    /// A client for the fake.
    pub fn client(&self) -> Result<A9sBroker> {
        A9sBroker::new(self.http_config()).map_err(|source| FakeError::BrokerClient { source })
    }

    /// Injects a fault for an extension route (`None` = every route, OSB forwarding included)
    /// for the next `times` matching requests (`None` = until cleared).
    pub fn inject(&self, route: Option<A9sRoute>, action: FaultAction, times: Option<u32>) {
        self.shared.journal.inject(route, action, times);
    }

    /// Removes all faults of the a9s front.
    pub fn clear_faults(&self) {
        self.shared.journal.clear_faults();
    }

    /// All requests the a9s front received (OSB ones included, as [`A9sRoute::Osb`]).
    pub fn requests(&self) -> Vec<Recorded<A9sRoute>> {
        self.shared.journal.requests()
    }

    /// How many requests hit `route`.
    pub fn count(&self, route: A9sRoute) -> usize {
        self.shared.journal.count(route)
    }

    /// The a9s state of an instance (`deploying`, `provisioned`, `deleted`, ...).
    pub fn instance_state(&self, instance_id: &str) -> Option<String> {
        self.lock()
            .records
            .iter()
            .find(|r| r.guid == instance_id)
            .map(|r| r.state.to_owned())
    }

    /// Adds an instance record directly (e.g. to provoke an id collision).
    pub fn add_record(&self, instance_id: &str, service_id: &str, plan_id: &str) {
        let mut st = self.lock();
        st.add_record(instance_id, service_id, plan_id, json!({}), "provisioned");
    }
}

impl A9sState {
    fn add_record(
        &mut self,
        guid: &str,
        service_id: &str,
        plan_id: &str,
        context: Value,
        state: &'static str,
    ) {
        let now = now_string();
        let db_id = self.next_db_id;
        self.next_db_id += 1;
        self.records.push(A9sInstanceRecord {
            db_id,
            guid: guid.to_owned(),
            service_id: service_id.to_owned(),
            plan_id: plan_id.to_owned(),
            state: "created",
            context,
            created_at: now.clone(),
            updated_at: now,
            provisioned_at: None,
            deleted_at: None,
            bindings: Vec::new(),
            pending_plan: None,
        });
        if let Some(r) = self.records.last_mut() {
            r.set_state(state);
        }
    }

    /// The live (not deleted) record of an id.
    fn live(&mut self, guid: &str) -> Option<&mut A9sInstanceRecord> {
        self.records
            .iter_mut()
            .rev()
            .find(|r| r.guid == guid && r.state != "deleted")
    }

    fn is_live(&self, guid: &str) -> bool {
        self.records
            .iter()
            .any(|r| r.guid == guid && r.state != "deleted")
    }

    fn latest(&self, guid: &str) -> Option<&A9sInstanceRecord> {
        self.records.iter().rev().find(|r| r.guid == guid)
    }
}

fn a9s_route(method: &Method, s: &[&str]) -> A9sRoute {
    match (method.as_str(), s) {
        ("HEAD", ["instances"]) | ("HEAD", ["osb_ext", "v1", "healthy"]) => A9sRoute::Health,
        ("GET", ["instances"]) => A9sRoute::InstanceList,
        ("GET", ["instances", _]) => A9sRoute::InstanceRecord,
        _ => A9sRoute::Osb,
    }
}

async fn a9s_handle(State(shared): State<A9sShared>, req: Request<Body>) -> Response<Body> {
    let req = Incoming::read(req, 16 * 1024 * 1024).await;
    let seg_refs = req.segments();
    let route = a9s_route(&req.parts.method, &seg_refs);
    if let Some(fault) = shared.journal.admit(&req, route).await {
        return fault;
    }
    let state = &shared.state;
    if route == A9sRoute::Osb {
        return forward(state, &req, &seg_refs).await;
    }
    {
        let st = state.lock().unwrap_or_else(|p| p.into_inner());
        if !basic_auth_ok(&req.parts.headers, st.auth.as_ref()) {
            return err(401, "Unauthorized", "Invalid credentials");
        }
    }
    match route {
        A9sRoute::Health => respond(200, String::new()),
        A9sRoute::InstanceRecord => {
            let id = seg_refs.get(1).copied().unwrap_or_default().to_owned();
            refresh(state, &id).await;
            let st = state.lock().unwrap_or_else(|p| p.into_inner());
            match st.latest(&id) {
                Some(r) => reply(200, r.json()),
                None => err(404, "InstanceNotFound", "Instance not found"),
            }
        }
        A9sRoute::InstanceList => {
            let page: usize = req
                .parts
                .uri
                .query()
                .unwrap_or("")
                .split('&')
                .find_map(|kv| kv.strip_prefix("page="))
                .and_then(|p| p.parse().ok())
                .unwrap_or(1)
                .max(1);
            let st = state.lock().unwrap_or_else(|p| p.into_inner());
            let total = st.records.len();
            let pages = total.div_ceil(st.page_size).max(1);
            let items: Vec<Value> = st
                .records
                .iter()
                .skip((page - 1) * st.page_size)
                .take(st.page_size)
                .map(A9sInstanceRecord::json)
                .collect();
            let link = |p: usize| format!("{}/instances?page={p}", st.self_url);
            reply(
                200,
                json!({"total_results": total, "total_pages": pages, "current_page": page,
                       "prev_url": if page > 1 { Some(link(page - 1)) } else { None },
                       "next_url": if page < pages { Some(link(page + 1)) } else { None },
                       "resources": items}),
            )
        }
        A9sRoute::Osb => err(500, "InternalError", "unreachable route"),
    }
}

/// Settles a deploying or deleting record by polling the inner broker.
async fn refresh(state: &Arc<Mutex<A9sState>>, guid: &str) {
    let (http, url, auth) = {
        let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
        let inner = st.inner_url.clone();
        let http = st.http.clone();
        let auth = st.auth.clone();
        let Some(r) = st.live(guid) else { return };
        if r.state != "deploying" && r.state != "deleting" {
            return;
        }
        let url = format!(
            "{inner}/v2/service_instances/{}/last_operation?service_id={}&plan_id={}",
            crate::transport::encode(guid),
            crate::transport::encode(&r.service_id),
            crate::transport::encode(&r.plan_id)
        );
        (http, url, auth)
    };
    let mut rb = http
        .get(url)
        .header(klutch_osb::client::VERSION_HEADER, "2.14");
    if let Some((u, p)) = &auth {
        rb = rb.basic_auth(u, Some(p));
    }
    let Ok(resp) = rb.send().await else { return };
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
    observe_last_operation(&mut st, guid, status, &body);
}

fn observe_last_operation(st: &mut A9sState, guid: &str, status: u16, body: &Value) {
    let Some(r) = st.live(guid) else { return };
    let s = body.get("state").and_then(Value::as_str);
    if r.pending_plan.is_some() && status == 200 && matches!(s, Some("succeeded" | "failed")) {
        let plan = r.pending_plan.take();
        if s == Some("succeeded")
            && let Some(p) = plan
        {
            r.plan_id = p;
            r.updated_at = now_string();
        }
    }
    match (r.state, status, s) {
        ("deploying", 200, Some("succeeded")) => r.set_state("provisioned"),
        ("deploying", 200, Some("failed")) => r.set_state("failed"),
        ("deleting", 410, _) | ("deleting", 200, Some("succeeded")) => r.set_state("deleted"),
        ("deleting", 200, Some("failed")) => r.set_state("failed"),
        _ => {}
    }
}

/// Forwards an OSB request to the inner fake broker and updates the a9s records from the
/// exchange.
async fn forward(state: &Arc<Mutex<A9sState>>, req: &Incoming, s: &[&str]) -> Response<Body> {
    let parts = &req.parts;
    let json_body = &req.json;
    let (http, inner, kind) = {
        let st = state.lock().unwrap_or_else(|p| p.into_inner());
        (st.http.clone(), st.inner_url.clone(), st.kind)
    };
    let path_q = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes())
        .unwrap_or(reqwest::Method::GET);
    let mut rb = http.request(method, format!("{inner}{path_q}"));
    for (k, v) in &parts.headers {
        if k.as_str() != "host" && k.as_str() != "content-length" {
            rb = rb.header(k.as_str(), v.as_bytes());
        }
    }
    if !req.body.is_empty() {
        rb = rb.body(req.body.to_vec());
    }
    let resp = match rb.send().await {
        Ok(r) => r,
        Err(_) => {
            return err(
                502,
                "BadGateway",
                "the inner OSB fake broker did not answer",
            );
        }
    };
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body_bytes = resp.bytes().await.unwrap_or_default();
    let mut body: Option<Value> = serde_json::from_slice(&body_bytes).ok();
    {
        let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
        let method = parts.method.as_str();
        match (method, s) {
            ("PUT", ["v2", "service_instances", id])
                if matches!(status, 200..=202) && !st.is_live(id) =>
            {
                let b = json_body.clone().unwrap_or(Value::Null);
                let str_of = |k: &str| b.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                let context = json!({
                    "organization_guid": str_of("organization_guid"),
                    "space_guid": str_of("space_guid"),
                    "parameters": b.get("parameters").cloned().unwrap_or(json!({})),
                });
                let state_name = if status == 202 {
                    "deploying"
                } else {
                    "provisioned"
                };
                st.add_record(
                    id,
                    &str_of("service_id"),
                    &str_of("plan_id"),
                    context,
                    state_name,
                );
            }
            ("DELETE", ["v2", "service_instances", id]) => {
                if let Some(r) = st.live(id) {
                    match status {
                        200 | 410 => r.set_state("deleted"),
                        202 => r.set_state("deleting"),
                        _ => {}
                    }
                }
            }
            ("PATCH", ["v2", "service_instances", id]) if matches!(status, 200 | 202) => {
                let plan = json_body
                    .as_ref()
                    .and_then(|b| b.get("plan_id"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                if let (Some(r), Some(p)) = (st.live(id), plan) {
                    if status == 202 {
                        r.pending_plan = Some(p);
                    } else {
                        r.plan_id = p;
                        r.updated_at = now_string();
                    }
                }
            }
            ("GET", ["v2", "service_instances", id, "last_operation"]) => {
                observe_last_operation(&mut st, id, status, body.as_ref().unwrap_or(&Value::Null));
            }
            ("GET", ["v2", "service_instances", id]) if status == 200 => {
                // The a9s broker adds the non-spec `id` and `context`.
                let context = st.live(id).map(|r| r.context.clone());
                if let Some(Value::Object(m)) = body.as_mut() {
                    m.insert("id".into(), json!(id));
                    if let Some(c) = context {
                        m.insert("context".into(), c);
                    }
                }
            }
            ("PUT", ["v2", "service_instances", id, "service_bindings", bid])
                if matches!(status, 200 | 201) =>
            {
                if let Some(Value::Object(m)) = body.as_mut() {
                    m.insert("credentials".into(), fake_credentials(kind, id, bid));
                }
                let next = st.next_db_id;
                if let Some(r) = st.live(id)
                    && !r.bindings.iter().any(|(_, b)| b == bid)
                {
                    r.bindings.push((next, (*bid).to_owned()));
                    st.next_db_id += 1;
                }
            }
            ("GET", ["v2", "service_instances", id, "service_bindings", bid]) if status == 200 => {
                if let Some(Value::Object(m)) = body.as_mut() {
                    m.insert("credentials".into(), fake_credentials(kind, id, bid));
                }
            }
            ("DELETE", ["v2", "service_instances", id, "service_bindings", bid])
                if matches!(status, 200 | 410) =>
            {
                if let Some(r) = st.live(id) {
                    r.bindings.retain(|(_, b)| b != bid);
                }
            }
            _ => {}
        }
    }
    let out = match body {
        Some(v) => v.to_string().into_bytes(),
        None => body_bytes.to_vec(),
    };
    let mut b = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY))
        .header("content-type", "application/json");
    if let Some(r) = retry_after {
        b = b.header("retry-after", r);
    }
    b.body(Body::from(out))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// Realistic a9s credentials of `kind` for a binding (the shapes of spec 14.2).
///
/// ```
/// use klutch_a9s::credentials::{DataServiceKind, ParseMode, ServiceCredentials};
/// use klutch_a9s::testing::fake_credentials;
/// for kind in DataServiceKind::ALL {
///     let v = fake_credentials(kind, "i-1", "b-1");
///     let parsed = ServiceCredentials::parse(kind, v.as_object().unwrap(), ParseMode::Strict);
///     assert!(parsed.is_ok(), "{kind}");
/// }
/// ```
pub fn fake_credentials(kind: DataServiceKind, instance_id: &str, binding_id: &str) -> Value {
    let user = format!("a9s-{}", binding_id.chars().take(16).collect::<String>());
    let pw = "fake-password";
    let short: String = instance_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect();
    let host = format!("{short}.service.fake.consul");
    let cacrt = "-----BEGIN CERTIFICATE-----\nFAKE\n-----END CERTIFICATE-----\n";
    match kind {
        DataServiceKind::Postgresql => json!({
            "host": host, "hosts": [format!("{short}-pg-0.node.fake.consul")], "name": short,
            "password": pw, "port": 5432, "username": user,
            "uri": format!("postgres://{user}:{pw}@{host}:5432/{short}")
        }),
        DataServiceKind::Mariadb => json!({
            "cacrt": cacrt, "host": host, "hosts": [format!("{short}-mariadb-0.node.fake.consul")],
            "name": short, "password": pw, "port": 3306, "username": user,
            "uri": format!("mysql://{user}:{pw}@{host}:3306/{short}")
        }),
        DataServiceKind::Mongodb => json!({
            "default_database": short, "hosts": [format!("{short}-mongodb-0.node.fake.consul:27017")],
            "password": pw, "username": user,
            "uri": format!("mongodb://{user}:{pw}@{short}-mongodb-0.node.fake.consul:27017/{short}")
        }),
        DataServiceKind::Messaging => {
            let amqp = format!("amqps://{user}:{pw}@{host}:5671");
            let api = format!("https://{user}:{pw}@{host}:15671/api/");
            json!({
                "host": host, "hosts": [host], "port": 5671, "ssl": true, "uri": amqp,
                "username": user, "password": pw, "http_api_uri": api, "http_api_uris": [api],
                "protocols": {
                    "amqp_ssl": {"host": host, "hosts": [host], "port": 5671, "ssl": true,
                                 "uri": amqp, "username": user, "password": pw},
                    "management": {"cacrt": cacrt, "host": host, "hosts": [host], "port": 15671,
                                   "ssl": true, "path": "/api/", "uri": api, "uris": [api],
                                   "username": user, "password": pw}
                }
            })
        }
        DataServiceKind::Search => json!({
            "cacrt": cacrt, "host": [format!("https://{host}:9200")], "hosts": [host],
            "password": pw, "port": 9200, "scheme": "https", "username": user
        }),
        DataServiceKind::Logme2 => json!({
            "cacrt": cacrt, "host": format!("https://{user}:{pw}@{host}:9200"), "password": pw,
            "syslog_drain_url": format!("syslog-tls://{host}:6514"), "username": user
        }),
        DataServiceKind::Prometheus => json!({
            "prometheus_urls": [format!("http://{short}-prometheus-0.node.fake.consul:9090")],
            "alertmanager_urls": [format!("http://{short}-alertmanager-0.node.fake.consul:9093")],
            "grafana_urls": [format!("http://{short}-grafana-0.node.fake.consul:3000")],
            "graphite_exporters": [format!("{short}-graphite-0.node.fake.consul")],
            "graphite_exporter_port": 9109, "username": user, "password": pw
        }),
        DataServiceKind::Keyvalue => json!({
            "cacrt": cacrt, "host": host, "hosts": [format!("{short}-valkey-0.node.fake.consul")],
            "load_balanced_host": format!("{short}-lb.service.fake.consul"),
            "valkey.password": pw, "valkey.port": 6379, "valkey.username": user
        }),
    }
}
