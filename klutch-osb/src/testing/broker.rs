//! The fake OSB broker: a catalog, instances and bindings with synchronous or asynchronous
//! operations, on the fake-HTTP core of [`super::server`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Request, Response};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::server::{
    FakeServer, FaultAction, Incoming, Journal, Recorded, basic_auth_ok, error, json,
};
use crate::catalog::Catalog;
use crate::client::{Client, ClientBuilder};
use crate::error::{Error, Result};

/// The endpoint a request hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `GET /v2/catalog`.
    Catalog,
    /// `PUT` instance.
    Provision,
    /// `PATCH` instance.
    Update,
    /// `DELETE` instance.
    Deprovision,
    /// `GET` instance.
    FetchInstance,
    /// `GET` instance last_operation.
    InstanceLastOperation,
    /// `PUT` binding.
    Bind,
    /// `DELETE` binding.
    Unbind,
    /// `GET` binding.
    FetchBinding,
    /// `GET` binding last_operation.
    BindingLastOperation,
    /// Anything else.
    Other,
}

/// How operations complete.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Always synchronously (201/200).
    Sync,
    /// Asynchronously: 202 with an operation key when `accepts_incomplete=true`, else 422
    /// `AsyncRequired`. The operation finishes after `duration`; last_operation sends
    /// `Retry-After: <retry_after>` while in progress.
    Async {
        /// How long an operation runs.
        duration: Duration,
        /// The `Retry-After` value in seconds, if any.
        retry_after: Option<u64>,
    },
}

/// Fake broker configuration.
#[derive(Debug, Clone)]
pub struct FakeBrokerConfig {
    /// The catalog served and used to validate service and plan ids.
    pub catalog: Catalog,
    /// Sync or async operations.
    pub mode: Mode,
    /// Required basic-auth credentials (`None` = no auth).
    pub basic_auth: Option<(String, String)>,
    /// Answer 412 when `X-Broker-API-Version` is missing or below 2.13.
    pub require_version_header: bool,
    /// Asynchronous operations end `failed` instead of `succeeded`.
    pub fail_async_operations: bool,
}

impl Default for FakeBrokerConfig {
    fn default() -> Self {
        FakeBrokerConfig {
            catalog: default_catalog(),
            mode: Mode::Sync,
            basic_auth: Some(("admin".into(), "secret".into())),
            require_version_header: true,
            fail_async_operations: false,
        }
    }
}

/// The default catalog: service `fake-db` (id `fake-db-id`, bindable, retrievable) with plans
/// `small` (`small-id`) and `large` (`large-id`, rotatable, `maximum_polling_duration` 600).
pub fn default_catalog() -> Catalog {
    serde_json::from_value(json!({
        "services": [{
            "id": "fake-db-id", "name": "fake-db", "description": "A fake database",
            "bindable": true, "instances_retrievable": true, "bindings_retrievable": true,
            "plan_updateable": true, "allow_context_updates": true, "tags": ["fake"],
            "plans": [
                {"id": "small-id", "name": "small", "description": "Small", "free": true,
                 "maintenance_info": {"version": "1.0.0", "description": "initial"}},
                {"id": "large-id", "name": "large", "description": "Large", "free": false,
                 "binding_rotatable": true, "maximum_polling_duration": 600}
            ]
        }]
    }))
    .unwrap_or_default()
}

/// A request the fake broker received.
pub type RecordedRequest = Recorded<Route>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpKind {
    Create,
    Update,
    Delete,
}

#[derive(Debug, Clone)]
struct Op {
    kind: OpKind,
    key: String,
    started: Instant,
    duration: Duration,
    new_plan: Option<String>,
}

#[derive(Debug, Clone)]
struct Resource {
    service_id: String,
    plan_id: String,
    parameters: Option<Value>,
    op: Option<Op>,
    last: Option<&'static str>,
    pending_create: bool,
}

#[derive(Debug)]
struct BrokerState {
    config: FakeBrokerConfig,
    instances: HashMap<String, Resource>,
    bindings: HashMap<(String, String), Resource>,
    next_op: u64,
}

/// What the handler shares: the broker's state and its journal.
#[derive(Debug, Clone)]
struct Shared {
    state: Arc<Mutex<BrokerState>>,
    journal: Journal<Route>,
}

/// A running fake broker; stops when dropped.
#[derive(Debug)]
pub struct FakeBroker {
    server: FakeServer,
    shared: Shared,
}

impl FakeBroker {
    /// Starts a broker on `127.0.0.1:<random port>`.
    pub async fn start(config: FakeBrokerConfig) -> Result<Self> {
        let shared = Shared {
            state: Arc::new(Mutex::new(BrokerState {
                config,
                instances: HashMap::new(),
                bindings: HashMap::new(),
                next_op: 1,
            })),
            journal: Journal::new("{\"operation\": \"x\", "),
        };
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let server = FakeServer::start(app)
            .await
            .map_err(|e| Error::config(format!("fake broker: bind: {e}")))?;
        Ok(FakeBroker { server, shared })
    }

    /// The base URL, e.g. `http://127.0.0.1:43210`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// A client builder pointed at this broker with its credentials.
    pub fn client_builder(&self) -> ClientBuilder {
        let b = Client::builder(self.url());
        match &self.lock().config.basic_auth {
            Some((u, p)) => b.basic_auth(u.clone(), p.clone()),
            None => b,
        }
    }

    fn lock(&self) -> MutexGuard<'_, BrokerState> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Injects a fault for `route` (`None` = every route) for the next `times` matching
    /// requests (`None` = until cleared).
    pub fn inject(&self, route: Option<Route>, action: FaultAction, times: Option<u32>) {
        self.shared.journal.inject(route, action, times);
    }

    /// Removes all faults.
    pub fn clear_faults(&self) {
        self.shared.journal.clear_faults();
    }

    /// Changes the mode for subsequent operations.
    pub fn set_mode(&self, mode: Mode) {
        self.lock().config.mode = mode;
    }

    /// Makes subsequent asynchronous operations end `failed`.
    pub fn set_fail_async_operations(&self, fail: bool) {
        self.lock().config.fail_async_operations = fail;
    }

    /// All requests received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.journal.requests()
    }

    /// How many requests hit `route`.
    pub fn count(&self, route: Route) -> usize {
        self.shared.journal.count(route)
    }

    /// Clears the request log.
    pub fn clear_requests(&self) {
        self.shared.journal.clear_requests();
    }

    /// True when the instance exists (including while being created or deleted).
    pub fn has_instance(&self, id: &str) -> bool {
        self.lock().instances.contains_key(id)
    }

    /// True when the binding exists.
    pub fn has_binding(&self, instance_id: &str, binding_id: &str) -> bool {
        self.lock()
            .bindings
            .contains_key(&(instance_id.to_owned(), binding_id.to_owned()))
    }
}

fn route_of(method: &Method, s: &[&str]) -> Route {
    match (method.as_str(), s) {
        ("GET", ["v2", "catalog"]) => Route::Catalog,
        ("PUT", ["v2", "service_instances", _]) => Route::Provision,
        ("PATCH", ["v2", "service_instances", _]) => Route::Update,
        ("DELETE", ["v2", "service_instances", _]) => Route::Deprovision,
        ("GET", ["v2", "service_instances", _]) => Route::FetchInstance,
        ("GET", ["v2", "service_instances", _, "last_operation"]) => Route::InstanceLastOperation,
        ("PUT", ["v2", "service_instances", _, "service_bindings", _]) => Route::Bind,
        ("DELETE", ["v2", "service_instances", _, "service_bindings", _]) => Route::Unbind,
        ("GET", ["v2", "service_instances", _, "service_bindings", _]) => Route::FetchBinding,
        (
            "GET",
            [
                "v2",
                "service_instances",
                _,
                "service_bindings",
                _,
                "last_operation",
            ],
        ) => Route::BindingLastOperation,
        _ => Route::Other,
    }
}

fn reply(status: u16, body: Value) -> Response<Body> {
    json(status, &body)
}

fn err(status: u16, code: Option<&str>, description: &str) -> Response<Body> {
    error(status, code, description)
}

async fn handle(State(shared): State<Shared>, req: Request<Body>) -> Response<Body> {
    let req = Incoming::read(req, 16 * 1024 * 1024).await;
    // Like a real broker, finish processing even when the client gives up (timeouts): the
    // work runs in its own task, which a dropped connection does not cancel.
    tokio::spawn(process(shared, req))
        .await
        .unwrap_or_else(|_| err(500, None, "fake broker handler panicked"))
}

async fn process(shared: Shared, req: Incoming) -> Response<Body> {
    let segs = req.segments();
    let route = route_of(&req.parts.method, &segs);
    if let Some(fault) = shared.journal.admit(&req, route).await {
        return fault;
    }

    let mut st = shared.state.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = st.check_headers(&req.parts.headers) {
        return r;
    }
    let q = |name: &str| req.query_param(name).map(str::to_owned);
    let accepts = q("accepts_incomplete").as_deref() == Some("true");
    let body = req.json.clone().unwrap_or(Value::Null);
    match route {
        Route::Catalog => reply(
            200,
            serde_json::to_value(&st.config.catalog).unwrap_or(Value::Null),
        ),
        Route::Provision => st.provision(segs[2], &body, accepts),
        Route::Update => st.update(segs[2], &body, accepts),
        Route::Deprovision => st.deprovision(segs[2], q("service_id"), q("plan_id"), accepts),
        Route::FetchInstance => st.fetch_instance(segs[2]),
        Route::InstanceLastOperation => st.last_operation(segs[2], None),
        Route::Bind => st.bind(segs[2], segs[4], &body, accepts),
        Route::Unbind => st.unbind(segs[2], segs[4], q("service_id"), q("plan_id"), accepts),
        Route::FetchBinding => st.fetch_binding(segs[2], segs[4]),
        Route::BindingLastOperation => st.last_operation(segs[2], Some(segs[4])),
        Route::Other => err(404, None, "no such endpoint"),
    }
}

fn credentials(instance_id: &str, binding_id: &str) -> Value {
    json!({
        "username": format!("user-{binding_id}"),
        "password": "fake-password",
        "host": "fake-db.internal",
        "port": 5432,
        "uri": format!("postgres://user-{binding_id}:fake-password@fake-db.internal:5432/{instance_id}")
    })
}

impl BrokerState {
    fn check_headers(&self, h: &HeaderMap) -> Option<Response<Body>> {
        if !basic_auth_ok(h, self.config.basic_auth.as_ref()) {
            return Some(err(401, None, "unauthorized"));
        }
        if self.config.require_version_header {
            let v = h
                .get("x-broker-api-version")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let ok = v
                .split_once('.')
                .and_then(|(maj, min)| Some((maj.parse::<u32>().ok()?, min.parse::<u32>().ok()?)))
                .is_some_and(|(maj, min)| maj == 2 && min >= 13);
            if !ok {
                return Some(err(
                    412,
                    None,
                    "X-Broker-API-Version 2.13 or later required",
                ));
            }
        }
        None
    }

    fn new_op(&mut self, kind: OpKind, new_plan: Option<String>) -> Option<Op> {
        match self.config.mode {
            Mode::Sync => None,
            Mode::Async { duration, .. } => {
                let key = format!(
                    "op-{}+{}",
                    self.next_op,
                    match kind {
                        OpKind::Create => "create",
                        OpKind::Update => "update",
                        OpKind::Delete => "delete",
                    }
                );
                self.next_op += 1;
                Some(Op {
                    kind,
                    key,
                    started: Instant::now(),
                    duration,
                    new_plan,
                })
            }
        }
    }

    fn is_async(&self) -> bool {
        matches!(self.config.mode, Mode::Async { .. })
    }

    fn valid_plan(&self, service_id: &str, plan_id: &str) -> bool {
        self.config
            .catalog
            .plan_by_id(Some(service_id), plan_id)
            .is_some()
    }

    fn provision(&mut self, id: &str, body: &Value, accepts: bool) -> Response<Body> {
        let s = |k: &str| {
            body.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let (Some(service_id), Some(plan_id)) = (s("service_id"), s("plan_id")) else {
            return err(400, None, "service_id and plan_id are required");
        };
        if s("organization_guid").is_none() || s("space_guid").is_none() {
            return err(400, None, "organization_guid and space_guid are required");
        }
        if !self.valid_plan(&service_id, &plan_id) {
            return err(400, None, "unknown service or plan");
        }
        let parameters = body.get("parameters").cloned();
        let dashboard = format!("http://dashboard.fake/{id}");
        if let Some(existing) = self.instances.get(id) {
            let same = existing.service_id == service_id
                && existing.plan_id == plan_id
                && existing.parameters == parameters;
            if !same {
                return err(409, None, "instance exists with different attributes");
            }
            return match &existing.op {
                Some(op) if op.kind == OpKind::Create && accepts => reply(
                    202,
                    json!({"operation": op.key, "dashboard_url": dashboard}),
                ),
                Some(_) => err(
                    422,
                    Some("ConcurrencyError"),
                    "another operation is in progress",
                ),
                None => reply(200, json!({"dashboard_url": dashboard})),
            };
        }
        if self.is_async() && !accepts {
            return err(
                422,
                Some("AsyncRequired"),
                "This service plan requires client support for asynchronous service operations.",
            );
        }
        let op = self.new_op(OpKind::Create, None);
        let key = op.as_ref().map(|o| o.key.clone());
        self.instances.insert(
            id.to_owned(),
            Resource {
                service_id,
                plan_id,
                parameters,
                pending_create: op.is_some(),
                op,
                last: None,
            },
        );
        match key {
            Some(k) => reply(202, json!({"operation": k, "dashboard_url": dashboard})),
            None => reply(
                201,
                json!({"dashboard_url": dashboard, "metadata": {"labels": {"fake": "true"}}}),
            ),
        }
    }

    fn update(&mut self, id: &str, body: &Value, accepts: bool) -> Response<Body> {
        let plan_id = body
            .get("plan_id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let is_async = self.is_async();
        let Some(inst) = self.instances.get(id) else {
            return err(404, None, "instance not found");
        };
        if inst.op.is_some() {
            return err(
                422,
                Some("ConcurrencyError"),
                "another operation is in progress",
            );
        }
        let service_id = inst.service_id.clone();
        if let Some(p) = &plan_id
            && !self.valid_plan(&service_id, p)
        {
            return err(400, None, "unknown plan");
        }
        if is_async && !accepts {
            return err(422, Some("AsyncRequired"), "asynchronous update required");
        }
        let op = self.new_op(OpKind::Update, plan_id.clone());
        let Some(inst) = self.instances.get_mut(id) else {
            return err(404, None, "instance not found");
        };
        if let Some(p) = body.get("parameters") {
            // Brokers merge update parameters into the instance's; `null` removes a key.
            match (inst.parameters.as_mut(), p) {
                (Some(Value::Object(cur)), Value::Object(changes)) => {
                    for (k, v) in changes {
                        if v.is_null() {
                            cur.remove(k);
                        } else {
                            cur.insert(k.clone(), v.clone());
                        }
                    }
                }
                _ => inst.parameters = Some(p.clone()),
            }
        }
        match op {
            Some(op) => {
                let k = op.key.clone();
                inst.op = Some(op);
                reply(202, json!({"operation": k}))
            }
            None => {
                if let Some(p) = plan_id {
                    inst.plan_id = p;
                }
                reply(200, json!({}))
            }
        }
    }

    fn deprovision(
        &mut self,
        id: &str,
        service_id: Option<String>,
        plan_id: Option<String>,
        accepts: bool,
    ) -> Response<Body> {
        if service_id.is_none() || plan_id.is_none() {
            return err(400, None, "service_id and plan_id are required");
        }
        if !self.instances.contains_key(id) {
            return reply(410, json!({}));
        }
        if self.is_async() && !accepts {
            return err(
                422,
                Some("AsyncRequired"),
                "asynchronous deprovision required",
            );
        }
        if self.bindings.keys().any(|(i, _)| i == id) {
            return err(422, None, "instance still has bindings");
        }
        let op = self.new_op(OpKind::Delete, None);
        match op {
            Some(op) => {
                let k = op.key.clone();
                if let Some(inst) = self.instances.get_mut(id) {
                    inst.op = Some(op);
                }
                reply(202, json!({"operation": k}))
            }
            None => {
                self.instances.remove(id);
                reply(200, json!({}))
            }
        }
    }

    /// Completes finished operations; returns whether the resource still exists.
    fn settle(fail: bool, res: &mut Resource) -> bool {
        let done = res
            .op
            .as_ref()
            .is_some_and(|op| op.started.elapsed() >= op.duration);
        if !done {
            return true;
        }
        let Some(op) = res.op.take() else { return true };
        if fail {
            res.last = Some("failed");
            // A failed create leaves the resource for orphan mitigation to delete.
            return true;
        }
        res.last = Some("succeeded");
        match op.kind {
            OpKind::Create => {
                res.pending_create = false;
                true
            }
            OpKind::Update => {
                if let Some(p) = op.new_plan {
                    res.plan_id = p;
                }
                true
            }
            OpKind::Delete => false,
        }
    }

    fn last_operation(&mut self, id: &str, binding: Option<&str>) -> Response<Body> {
        let fail = self.config.fail_async_operations;
        let retry_after = match self.config.mode {
            Mode::Async { retry_after, .. } => retry_after,
            Mode::Sync => None,
        };
        let key = (id.to_owned(), binding.unwrap_or_default().to_owned());
        let res = match binding {
            Some(_) => self.bindings.get_mut(&key),
            None => self.instances.get_mut(id),
        };
        let Some(res) = res else {
            return reply(410, json!({}));
        };
        if res.op.is_some() && !Self::settle(fail, res) {
            match binding {
                Some(_) => self.bindings.remove(&key),
                None => self.instances.remove(id),
            };
            return reply(410, json!({"state": "succeeded"}));
        }
        match (&res.op, res.last) {
            (Some(_), _) => {
                let mut r = reply(
                    200,
                    json!({"state": "in progress", "description": "working"}),
                );
                if let Some(s) = retry_after {
                    r.headers_mut().insert("retry-after", s.into());
                }
                r
            }
            (None, Some(state)) => reply(
                200,
                json!({"state": state, "description": format!("operation {state}")}),
            ),
            (None, None) => reply(200, json!({"state": "succeeded"})),
        }
    }

    fn fetch_instance(&mut self, id: &str) -> Response<Body> {
        let fail = self.config.fail_async_operations;
        let Some(res) = self.instances.get_mut(id) else {
            return err(404, None, "instance not found");
        };
        if !Self::settle(fail, res) {
            self.instances.remove(id);
            return err(404, None, "instance not found");
        }
        if res.pending_create {
            return err(404, None, "instance is being created");
        }
        if matches!(&res.op, Some(op) if op.kind == OpKind::Update) {
            return err(422, Some("ConcurrencyError"), "instance is being updated");
        }
        reply(
            200,
            json!({"service_id": res.service_id, "plan_id": res.plan_id, "dashboard_url": format!("http://dashboard.fake/{id}"),
                   "parameters": res.parameters.clone().unwrap_or(json!({}))}),
        )
    }

    fn bind(&mut self, id: &str, bid: &str, body: &Value, accepts: bool) -> Response<Body> {
        let s = |k: &str| {
            body.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let (Some(service_id), Some(plan_id)) = (s("service_id"), s("plan_id")) else {
            return err(400, None, "service_id and plan_id are required");
        };
        match self.instances.get(id) {
            None => return err(404, None, "instance not found"),
            Some(i) if i.op.is_some() => {
                return err(
                    422,
                    Some("ConcurrencyError"),
                    "instance operation in progress",
                );
            }
            Some(_) => {}
        }
        let parameters = body.get("parameters").cloned();
        let key = (id.to_owned(), bid.to_owned());
        if let Some(existing) = self.bindings.get(&key) {
            if existing.parameters != parameters {
                return err(409, None, "binding exists with different parameters");
            }
            return match &existing.op {
                Some(op) if accepts => reply(202, json!({"operation": op.key})),
                Some(_) => err(422, Some("ConcurrencyError"), "binding in progress"),
                None => reply(200, json!({"credentials": credentials(id, bid)})),
            };
        }
        // Like brokerapi-based brokers: asynchronous whenever the platform allows it, but a
        // service whose bindings cannot be fetched also binds synchronously (spec 2.17).
        let retrievable = self
            .config
            .catalog
            .service_by_id(&service_id)
            .is_some_and(|s| s.bindings_retrievable.unwrap_or(false));
        if self.is_async() && !accepts && retrievable {
            return err(422, Some("AsyncRequired"), "asynchronous bind required");
        }
        let op = if accepts {
            self.new_op(OpKind::Create, None)
        } else {
            None
        };
        let k = op.as_ref().map(|o| o.key.clone());
        self.bindings.insert(
            key,
            Resource {
                service_id,
                plan_id,
                parameters,
                pending_create: op.is_some(),
                op,
                last: None,
            },
        );
        match k {
            Some(k) => reply(202, json!({"operation": k})),
            None => reply(
                201,
                json!({"credentials": credentials(id, bid),
                       "endpoints": [{"host": "fake-db.internal", "ports": ["5432"], "protocol": "tcp"}]}),
            ),
        }
    }

    fn unbind(
        &mut self,
        id: &str,
        bid: &str,
        service_id: Option<String>,
        plan_id: Option<String>,
        accepts: bool,
    ) -> Response<Body> {
        if service_id.is_none() || plan_id.is_none() {
            return err(400, None, "service_id and plan_id are required");
        }
        let key = (id.to_owned(), bid.to_owned());
        if !self.bindings.contains_key(&key) {
            return reply(410, json!({}));
        }
        if self.is_async() && !accepts {
            return err(422, Some("AsyncRequired"), "asynchronous unbind required");
        }
        match self.new_op(OpKind::Delete, None) {
            Some(op) => {
                let k = op.key.clone();
                if let Some(b) = self.bindings.get_mut(&key) {
                    b.op = Some(op);
                }
                reply(202, json!({"operation": k}))
            }
            None => {
                self.bindings.remove(&key);
                reply(200, json!({}))
            }
        }
    }

    fn fetch_binding(&mut self, id: &str, bid: &str) -> Response<Body> {
        let fail = self.config.fail_async_operations;
        let key = (id.to_owned(), bid.to_owned());
        let Some(res) = self.bindings.get_mut(&key) else {
            return err(404, None, "binding not found");
        };
        if !Self::settle(fail, res) {
            self.bindings.remove(&key);
            return err(404, None, "binding not found");
        }
        if res.pending_create {
            return err(404, None, "binding is being created");
        }
        reply(
            200,
            json!({"credentials": credentials(id, bid), "parameters": res.parameters.clone().unwrap_or(json!({}))}),
        )
    }
}
