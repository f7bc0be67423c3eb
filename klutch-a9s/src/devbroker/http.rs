//! The HTTP side: routes, basic auth, the OSB version header, and one handler per endpoint.
//! Errors are OSB error bodies `{"error", "description"}` with the status spec section 3.2 (and
//! 13 for the Backup Manager) prescribes.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, head, put};
use base64::Engine as _;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Map, Value, json};

use klutch_osb::{BindingBody, Catalog, Credentials, InstanceBody};

use super::catalog;
use super::engine::{Engine, jobs};
use super::sql::{self, ParameterError, Parameters, parse_parameters};
use super::store::{self, Instance, Job, JobKind, state};
use super::{DevBrokerConfig, DevBrokerError, Result};
use crate::backup::{Backup, BackupConfig, Restore};

/// Running background jobs (aborted on drop or shutdown) and per-instance work locks.
#[derive(Debug, Default)]
pub struct Jobs {
    handles: Mutex<Vec<tokio::task::AbortHandle>>,
    locks: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
}

impl Jobs {
    fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) {
        let h = tokio::spawn(fut).abort_handle();
        let mut v = self.handles.lock().unwrap_or_else(|e| e.into_inner());
        v.retain(|h| !h.is_finished());
        v.push(h);
    }

    /// The work lock of an instance: provision and deprovision of one instance never overlap.
    fn lock(&self, seq: i64) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(seq)
            .or_default()
            .clone()
    }

    /// Aborts every running job.
    pub fn abort_all(&self) {
        for h in self
            .handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            h.abort();
        }
    }
}

struct App {
    engine: Arc<Engine>,
    catalog: Catalog,
    username: String,
    password: SecretString,
    jobs: Arc<Jobs>,
    /// Serialises the state changes of requests (a development broker needs no more).
    write: tokio::sync::Mutex<()>,
}

type Shared = Arc<App>;

impl App {
    fn provision(&self, seq: i64) {
        let (engine, lock) = (self.engine.clone(), self.jobs.lock(seq));
        self.jobs.spawn(async move {
            // The delay is spent outside the work lock, so a deprovision is not held up by it.
            if !engine.provision_delay.is_zero() {
                tokio::time::sleep(engine.provision_delay).await;
            }
            let _g = lock.lock().await;
            jobs::provision(engine, seq).await;
        });
    }

    fn deprovision(&self, seq: i64) {
        let (engine, lock) = (self.engine.clone(), self.jobs.lock(seq));
        self.jobs.spawn(async move {
            let _g = lock.lock().await;
            jobs::deprovision(engine, seq).await;
        });
    }
}

/// Prepares the state, resumes unfinished work, binds the listener and serves until `shutdown`.
pub async fn start(
    config: &DevBrokerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>, Arc<Jobs>)> {
    let engine = Arc::new(config.engine()?);
    engine.prepare().await?;
    let jobs = Arc::new(Jobs::default());
    let app = Arc::new(App {
        engine: engine.clone(),
        catalog: catalog::catalog(),
        username: config.username.clone(),
        password: config.password.clone(),
        jobs: jobs.clone(),
        write: tokio::sync::Mutex::new(()),
    });
    resume(&app).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| DevBrokerError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| DevBrokerError::Listen {
            addr: config.listen,
            source,
        })?;
    let router = router(app);
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "the development broker's listener failed");
        }
    });
    Ok((addr, server, jobs))
}

/// Restarts the work a previous broker process left unfinished.
async fn resume(app: &App) -> Result<()> {
    let c = app.engine.state().await?;
    for i in store::instances(&c).await? {
        match i.state.as_str() {
            state::DEPLOYING => {
                tracing::info!(instance = %i.instance_id, "resuming provision");
                app.provision(i.seq);
            }
            state::DELETING => {
                tracing::info!(instance = %i.instance_id, "resuming deprovision");
                app.deprovision(i.seq);
            }
            _ => {}
        }
    }
    for j in store::unfinished_jobs(&c, JobKind::Backup).await? {
        app.jobs
            .spawn(jobs::backup(app.engine.clone(), j.instance_seq, j.id));
    }
    for j in store::unfinished_jobs(&c, JobKind::Restore).await? {
        let b = j.backup_id.unwrap_or_default();
        app.jobs
            .spawn(jobs::restore(app.engine.clone(), j.instance_seq, j.id, b));
    }
    Ok(())
}

fn router(app: Shared) -> Router {
    let osb = Router::new()
        .route("/v2/catalog", get(get_catalog))
        .route(
            "/v2/service_instances/{iid}",
            put(provision)
                .patch(update)
                .delete(deprovision)
                .get(fetch_instance),
        )
        .route(
            "/v2/service_instances/{iid}/last_operation",
            get(last_operation),
        )
        .route(
            "/v2/service_instances/{iid}/service_bindings/{bid}",
            put(bind).delete(unbind).get(fetch_binding),
        )
        .route(
            "/v2/service_instances/{iid}/service_bindings/{bid}/last_operation",
            get(binding_last_operation),
        )
        .layer(middleware::from_fn(version_header));
    Router::new()
        .merge(osb)
        .route("/instances", get(list_instances).head(health))
        .route("/instances/{iid}", get(instance_record).put(update_config))
        .route("/osb_ext/v1/healthy", head(health).get(health))
        .route("/v2/healthy", get(health))
        .route(
            "/instances/{iid}/backups",
            get(list_backups).post(create_backup),
        )
        .route(
            "/instances/{iid}/backups/{id}",
            get(get_backup).delete(delete_backup),
        )
        .route(
            "/instances/{iid}/backups/{id}/restore",
            axum::routing::post(create_restore),
        )
        .route("/instances/{iid}/restores", get(list_restores))
        .route("/instances/{iid}/restores/{id}", get(get_restore))
        .route("/instances/{iid}/config", get(get_config))
        .layer(middleware::from_fn_with_state(app.clone(), basic_auth))
        .with_state(app)
}

// ---------------------------------------------------------------------------------------------
// Responses and middleware.

fn reply(status: u16, body: Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(body)).into_response()
}

fn fail(status: u16, code: Option<&str>, description: impl Into<String>) -> Response {
    let mut body = Map::new();
    if let Some(c) = code {
        body.insert("error".into(), json!(c));
    }
    body.insert("description".into(), json!(description.into()));
    reply(status, Value::Object(body))
}

/// A handler's failure: an OSB error response, or a server-side error (500).
enum Fail {
    Reply(Box<Response>),
    Internal(DevBrokerError),
}

impl From<DevBrokerError> for Fail {
    fn from(e: DevBrokerError) -> Self {
        Fail::Internal(e)
    }
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        match self {
            Fail::Reply(r) => *r,
            Fail::Internal(e) => {
                let text = error_chain(&e);
                tracing::warn!(error = %text, "request failed");
                fail(500, None, text)
            }
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

type Res = std::result::Result<Response, Fail>;

fn reject(status: u16, code: Option<&str>, description: impl Into<String>) -> Fail {
    Fail::Reply(Box::new(fail(status, code, description)))
}

async fn basic_auth(State(app): State<Shared>, req: Request, next: Next) -> Response {
    let ok = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|d| String::from_utf8(d).ok())
        .is_some_and(|d| {
            d.split_once(':')
                .is_some_and(|(u, p)| u == app.username && p == app.password.expose_secret())
        });
    if ok {
        next.run(req).await
    } else {
        let mut r = fail(
            401,
            Some("Unauthorized"),
            "wrong or missing basic-auth credentials",
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"a9s-dev-broker\""),
        );
        r
    }
}

/// OSB requests must carry `X-Broker-API-Version: 2.<minor>` with minor ≥ 13 (412 otherwise).
async fn version_header(req: Request, next: Next) -> Response {
    let v = req
        .headers()
        .get("x-broker-api-version")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let ok = v
        .split_once('.')
        .is_some_and(|(maj, min)| maj == "2" && min.parse::<u32>().is_ok_and(|m| m >= 13));
    if ok {
        next.run(req).await
    } else {
        fail(
            412,
            Some("PreconditionFailed"),
            format!("X-Broker-API-Version `{v}` is not supported; send 2.13 to 2.17"),
        )
    }
}

fn body_object(body: &Bytes) -> std::result::Result<Map<String, Value>, Fail> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(reject(
            400,
            Some("BadRequest"),
            "the body must be a JSON object",
        )),
        Err(e) => Err(reject(
            400,
            Some("BadRequest"),
            format!("the body is not JSON: {e}"),
        )),
    }
}

fn required<'a>(m: &'a Map<String, Value>, key: &str) -> std::result::Result<&'a str, Fail> {
    m.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            reject(
                400,
                Some("BadRequest"),
                format!("`{key}` is required (a non-empty string)"),
            )
        })
}

fn check_id(what: &str, id: &str) -> std::result::Result<(), Fail> {
    if id.is_empty() || id.len() > 255 {
        return Err(reject(
            400,
            Some("BadRequest"),
            format!("the {what} id must have 1 to 255 characters"),
        ));
    }
    Ok(())
}

fn async_required() -> Fail {
    reject(
        422,
        Some("AsyncRequired"),
        "this service plan requires client support for asynchronous service operations",
    )
}

fn params_error(e: ParameterError) -> Fail {
    match e {
        ParameterError::Malformed(t) => reject(400, Some("BadRequest"), t),
        ParameterError::Unsupported(t) => reject(422, None, t),
    }
}

/// Validates parameters without changing anything (400 for a bad value, 422 for a server-wide
/// setting the server does not have).
async fn checked(app: &App, raw: Option<&Value>) -> std::result::Result<Parameters, Fail> {
    let p = parse_parameters(raw).map_err(params_error)?;
    match app.engine.check_parameters(&p).await? {
        Ok(()) => Ok(p),
        Err((true, t)) => Err(reject(422, None, t)),
        Err((false, t)) => Err(reject(400, Some("BadRequest"), t)),
    }
}

#[derive(serde::Deserialize)]
struct AsyncQuery {
    accepts_incomplete: Option<String>,
    service_id: Option<String>,
    plan_id: Option<String>,
    operation: Option<String>,
}

impl AsyncQuery {
    fn accepts_incomplete(&self) -> bool {
        self.accepts_incomplete.as_deref() == Some("true")
    }
}

// ---------------------------------------------------------------------------------------------
// OSB: catalog and instances.

async fn get_catalog(State(app): State<Shared>) -> Response {
    reply(200, serde_json::to_value(&app.catalog).unwrap_or_default())
}

fn plan_name(app: &App, plan_id: &str) -> String {
    app.catalog
        .services
        .iter()
        .flat_map(|s| s.plans.iter())
        .find(|p| p.id == plan_id)
        .map_or_else(String::new, |p| p.name.clone())
}

async fn provision(
    State(app): State<Shared>,
    Path(iid): Path<String>,
    Query(q): Query<AsyncQuery>,
    body: Bytes,
) -> Res {
    check_id("instance", &iid)?;
    let b = body_object(&body)?;
    let service_id = required(&b, "service_id")?;
    let plan_id = required(&b, "plan_id")?;
    let org = required(&b, "organization_guid")?;
    let space = required(&b, "space_guid")?;
    if catalog::lookup(&app.catalog, service_id, plan_id).is_none() {
        return Err(reject(
            400,
            Some("BadRequest"),
            format!("service `{service_id}` has no plan `{plan_id}` in the catalog"),
        ));
    }
    let params = b.get("parameters").cloned().unwrap_or(json!({}));
    checked(&app, Some(&params)).await?;
    if !q.accepts_incomplete() {
        return Err(async_required());
    }
    let context = b.get("context").cloned().unwrap_or(json!({}));
    let _w = app.write.lock().await;
    let c = app.engine.state().await?;
    if let Some(i) = store::instance(&c, &iid).await? {
        let same = i.service_id == service_id && i.plan_id == plan_id && i.parameters == params;
        return match (i.state.as_str(), same) {
            (state::DELETED, _) => Err(reject(
                409,
                Some("Conflict"),
                "this instance id was used before; instance ids are never reused",
            )),
            (state::DEPLOYING, true) => Ok(reply(202, json!({"operation": i.op_key}))),
            (state::PROVISIONED, true) => Ok(reply(200, json!({}))),
            _ => Err(reject(
                409,
                Some("Conflict"),
                format!(
                    "instance exists (state {}) with other attributes or is being changed",
                    i.state
                ),
            )),
        };
    }
    let new = store::NewInstance {
        instance_id: &iid,
        service_id,
        plan_id,
        parameters: &params,
        context: &context,
        organization_guid: org,
        space_guid: space,
    };
    let Some(i) = store::insert_instance(&c, &new).await? else {
        return Err(reject(409, Some("Conflict"), "instance is being created"));
    };
    tracing::info!(instance = %iid, seq = i.seq, "provisioning");
    app.provision(i.seq);
    Ok(reply(202, json!({"operation": i.op_key})))
}

fn instance_body(i: &Instance) -> InstanceBody {
    let mut extra = Map::new();
    extra.insert("id".into(), json!(i.seq));
    extra.insert("context".into(), i.context.clone());
    InstanceBody {
        service_id: Some(i.service_id.clone()),
        plan_id: Some(i.plan_id.clone()),
        parameters: Some(i.parameters.clone()),
        extra,
        ..Default::default()
    }
}

async fn live_instance(app: &App, iid: &str) -> std::result::Result<Option<Instance>, Fail> {
    let c = app.engine.state().await?;
    Ok(store::instance(&c, iid)
        .await?
        .filter(|i| i.state != state::DELETED))
}

async fn fetch_instance(State(app): State<Shared>, Path(iid): Path<String>) -> Res {
    match live_instance(&app, &iid).await? {
        Some(i) if i.state != state::DEPLOYING => Ok(reply(
            200,
            serde_json::to_value(instance_body(&i)).unwrap_or_default(),
        )),
        Some(_) => Err(reject(
            404,
            Some("NotFound"),
            "the instance is being provisioned",
        )),
        None => Err(reject(404, Some("InstanceNotFound"), "no such instance")),
    }
}

async fn update(State(app): State<Shared>, Path(iid): Path<String>, body: Bytes) -> Res {
    let b = body_object(&body)?;
    let service_id = required(&b, "service_id")?;
    let _w = app.write.lock().await;
    let Some(i) = live_instance(&app, &iid).await? else {
        return Err(reject(404, Some("InstanceNotFound"), "no such instance"));
    };
    if i.state != state::PROVISIONED {
        return Err(reject(
            422,
            Some("ConcurrencyError"),
            format!(
                "the instance is {}; try again when it is provisioned",
                i.state
            ),
        ));
    }
    if service_id != i.service_id {
        return Err(reject(
            400,
            Some("BadRequest"),
            "`service_id` is not the instance's service",
        ));
    }
    let new_plan = b
        .get("plan_id")
        .and_then(Value::as_str)
        .unwrap_or(&i.plan_id)
        .to_owned();
    if catalog::lookup(&app.catalog, service_id, &new_plan).is_none() {
        return Err(reject(
            400,
            Some("BadRequest"),
            format!("service `{service_id}` has no plan `{new_plan}`"),
        ));
    }
    let (old_name, new_name) = (plan_name(&app, &i.plan_id), plan_name(&app, &new_plan));
    if catalog::is_ssl(&old_name) != catalog::is_ssl(&new_name) {
        return Err(reject(
            422,
            None,
            format!(
                "cannot change plan `{old_name}` to `{new_name}`: TLS (`-ssl`) cannot be switched"
            ),
        ));
    }
    // Parameters: only what the user specified; `null` removes a parameter.
    let mut params = i.parameters.as_object().cloned().unwrap_or_default();
    match b.get("parameters") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                if v.is_null() {
                    params.remove(k);
                } else {
                    params.insert(k.clone(), v.clone());
                }
            }
        }
        Some(other) => {
            return Err(params_error(ParameterError::Malformed(format!(
                "`parameters` must be a JSON object, got {other}"
            ))));
        }
    }
    let params = Value::Object(params);
    let p = checked(&app, Some(&params)).await?;
    app.engine
        .apply(i.seq, jobs::limit_of(&new_name, &p), &p)
        .await?;
    let c = app.engine.state().await?;
    store::record_update(&c, i.seq, &new_plan, &params).await?;
    tracing::info!(instance = %iid, plan = %new_name, "updated");
    Ok(reply(200, json!({})))
}

async fn deprovision(
    State(app): State<Shared>,
    Path(iid): Path<String>,
    Query(q): Query<AsyncQuery>,
) -> Res {
    if q.service_id.as_deref().unwrap_or("").is_empty()
        || q.plan_id.as_deref().unwrap_or("").is_empty()
    {
        return Err(reject(
            400,
            Some("BadRequest"),
            "`service_id` and `plan_id` query parameters are required",
        ));
    }
    let _w = app.write.lock().await;
    let Some(i) = live_instance(&app, &iid).await? else {
        return Ok(reply(410, json!({})));
    };
    if !q.accepts_incomplete() {
        return Err(async_required());
    }
    if i.state == state::DELETING {
        return Ok(reply(202, json!({"operation": i.op_key})));
    }
    let c = app.engine.state().await?;
    let from = [state::DEPLOYING, state::PROVISIONED, state::FAILED];
    let Some(key) =
        store::begin_operation(&c, i.seq, &from, state::DELETING, "deprovision").await?
    else {
        return Err(reject(
            422,
            Some("ConcurrencyError"),
            "another operation is running",
        ));
    };
    tracing::info!(instance = %iid, "deprovisioning");
    app.deprovision(i.seq);
    Ok(reply(202, json!({"operation": key})))
}

async fn last_operation(
    State(app): State<Shared>,
    Path(iid): Path<String>,
    Query(q): Query<AsyncQuery>,
) -> Res {
    let c = app.engine.state().await?;
    let Some(i) = store::instance(&c, &iid).await? else {
        return Ok(reply(410, json!({})));
    };
    if let Some(op) = q.operation.as_deref().filter(|o| !o.is_empty())
        && op != i.op_key
    {
        return Err(reject(
            400,
            Some("BadRequest"),
            format!(
                "unknown operation `{op}`; the instance's last operation is `{}`",
                i.op_key
            ),
        ));
    }
    let mut body = json!({"state": i.op_state});
    if let Some(d) = &i.op_description {
        body["description"] = json!(d);
    }
    let mut r = reply(200, body);
    if i.op_state == "in progress" {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    Ok(r)
}

// ---------------------------------------------------------------------------------------------
// OSB: bindings.

fn credentials(app: &App, i: &Instance, b: &store::Binding) -> Credentials {
    let names = sql::InstanceNames::new(&app.engine.prefix, i.seq);
    let user = names.binding_role(b.seq);
    let (host, port) = (&app.engine.public_host, app.engine.public_port);
    let uri = format!(
        "postgres://{user}:{}@{host}:{port}/{}",
        b.password, names.database
    );
    let v = json!({
        "host": host, "hosts": [host], "name": names.database, "port": port,
        "username": user, "password": b.password, "uri": uri,
    });
    Credentials::new(v.as_object().cloned().unwrap_or_default())
}

fn binding_body(app: &App, i: &Instance, b: &store::Binding, with_params: bool) -> Value {
    let body = BindingBody {
        credentials: Some(credentials(app, i, b)),
        parameters: with_params.then(|| b.parameters.clone()),
        ..Default::default()
    };
    serde_json::to_value(body).unwrap_or_default()
}

async fn bind(
    State(app): State<Shared>,
    Path((iid, bid)): Path<(String, String)>,
    body: Bytes,
) -> Res {
    check_id("binding", &bid)?;
    let b = body_object(&body)?;
    let service_id = required(&b, "service_id")?;
    let plan_id = required(&b, "plan_id")?;
    let params = b.get("parameters").cloned().unwrap_or(json!({}));
    match &params {
        Value::Object(m) if m.is_empty() => {}
        Value::Null => {}
        Value::Object(_) => {
            return Err(reject(
                400,
                Some("BadRequest"),
                "the development broker accepts no binding parameters",
            ));
        }
        other => {
            return Err(reject(
                400,
                Some("BadRequest"),
                format!("`parameters` must be a JSON object, got {other}"),
            ));
        }
    }
    let _w = app.write.lock().await;
    let Some(i) = live_instance(&app, &iid).await? else {
        return Err(reject(404, Some("InstanceNotFound"), "no such instance"));
    };
    match i.state.as_str() {
        state::PROVISIONED => {}
        state::FAILED => {
            return Err(reject(
                422,
                Some("InstanceNotProvisioned"),
                "the instance failed to provision",
            ));
        }
        s => {
            return Err(reject(
                422,
                Some("ConcurrencyError"),
                format!("the instance is {s}; bind when it is provisioned"),
            ));
        }
    }
    if service_id != i.service_id || plan_id != i.plan_id {
        return Err(reject(
            400,
            Some("BadRequest"),
            "`service_id`/`plan_id` are not the instance's",
        ));
    }
    let c = app.engine.state().await?;
    if let Some(existing) = store::binding(&c, i.seq, &bid).await? {
        if existing.service_id != service_id || existing.plan_id != plan_id {
            return Err(reject(
                409,
                Some("Conflict"),
                "binding exists with other attributes",
            ));
        }
        if !existing.created {
            app.engine
                .create_binding(i.seq, existing.seq, &existing.password)
                .await?;
            store::set_binding(&c, existing.seq, true, false).await?;
        }
        return Ok(reply(200, binding_body(&app, &i, &existing, false)));
    }
    if store::binding_was_deleted(&c, i.seq, &bid).await? {
        return Err(reject(
            409,
            Some("Conflict"),
            "this binding id was used before",
        ));
    }
    let password = Engine::password();
    let Some(new) =
        store::insert_binding(&c, i.seq, &bid, service_id, plan_id, &json!({}), &password).await?
    else {
        return Err(reject(
            422,
            Some("ConcurrencyError"),
            "binding is being created",
        ));
    };
    app.engine.create_binding(i.seq, new.seq, &password).await?;
    store::set_binding(&c, new.seq, true, false).await?;
    tracing::info!(instance = %iid, binding = %bid, "bound");
    Ok(reply(201, binding_body(&app, &i, &new, false)))
}

async fn find_binding(
    app: &App,
    iid: &str,
    bid: &str,
) -> std::result::Result<Option<(Instance, store::Binding)>, Fail> {
    let Some(i) = live_instance(app, iid).await? else {
        return Ok(None);
    };
    let c = app.engine.state().await?;
    Ok(store::binding(&c, i.seq, bid).await?.map(|b| (i, b)))
}

async fn fetch_binding(State(app): State<Shared>, Path((iid, bid)): Path<(String, String)>) -> Res {
    match find_binding(&app, &iid, &bid).await? {
        Some((i, b)) if b.created => Ok(reply(200, binding_body(&app, &i, &b, true))),
        _ => Err(reject(404, Some("NotFound"), "no such binding")),
    }
}

async fn unbind(
    State(app): State<Shared>,
    Path((iid, bid)): Path<(String, String)>,
    Query(q): Query<AsyncQuery>,
) -> Res {
    if q.service_id.as_deref().unwrap_or("").is_empty()
        || q.plan_id.as_deref().unwrap_or("").is_empty()
    {
        return Err(reject(
            400,
            Some("BadRequest"),
            "`service_id` and `plan_id` query parameters are required",
        ));
    }
    let _w = app.write.lock().await;
    let Some((i, b)) = find_binding(&app, &iid, &bid).await? else {
        return Ok(reply(410, json!({})));
    };
    app.engine.drop_binding(i.seq, b.seq).await?;
    let c = app.engine.state().await?;
    store::set_binding(&c, b.seq, b.created, true).await?;
    tracing::info!(instance = %iid, binding = %bid, "unbound");
    Ok(reply(200, json!({})))
}

async fn binding_last_operation(
    State(app): State<Shared>,
    Path((iid, bid)): Path<(String, String)>,
) -> Res {
    match find_binding(&app, &iid, &bid).await? {
        Some(_) => Ok(reply(200, json!({"state": "succeeded"}))),
        None => Ok(reply(410, json!({}))),
    }
}

// ---------------------------------------------------------------------------------------------
// a9s broker extensions.

fn record(i: &Instance, bindings: &[store::Binding]) -> Value {
    let creds: Vec<Value> = bindings
        .iter()
        .map(|b| json!({"id": b.seq, "instance_id": i.seq, "guid_at_tenant": b.binding_id}))
        .collect();
    let mut context = i.context.as_object().cloned().unwrap_or_default();
    context.insert("organization_guid".into(), json!(i.organization_guid));
    context.insert("space_guid".into(), json!(i.space_guid));
    context.insert("parameters".into(), i.parameters.clone());
    json!({
        "id": i.seq, "guid_at_tenant": i.instance_id, "plan_guid": i.plan_id,
        "service_guid": i.service_id, "state": i.state, "context": context,
        "deployment_name": format!("devbroker-i{}", i.seq), "tenant_id": "klutch-dev",
        "provisioned_at": i.provisioned_at, "created_at": i.created_at,
        "updated_at": i.updated_at, "deleted_at": i.deleted_at,
        "deleted": i.state == state::DELETED, "is_locked": false,
        "allowed_update_time": {"type": "general", "allowed": true},
        "credentials": creds,
    })
}

async fn instance_record(State(app): State<Shared>, Path(iid): Path<String>) -> Res {
    let c = app.engine.state().await?;
    let Some(i) = store::instance(&c, &iid).await? else {
        return Err(reject(404, Some("InstanceNotFound"), "no such instance"));
    };
    let b = store::bindings(&c, i.seq, true).await?;
    Ok(reply(200, record(&i, &b)))
}

#[derive(serde::Deserialize)]
struct PageQuery {
    page: Option<u64>,
}

const PAGE_SIZE: usize = 50;

async fn list_instances(State(app): State<Shared>, Query(q): Query<PageQuery>) -> Res {
    let c = app.engine.state().await?;
    let all = store::instances(&c).await?;
    let total = all.len();
    let pages = total.div_ceil(PAGE_SIZE).max(1) as u64;
    let page = q.page.unwrap_or(1).clamp(1, pages);
    let mut resources = Vec::new();
    for i in all
        .iter()
        .skip((page as usize - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
    {
        resources.push(record(i, &store::bindings(&c, i.seq, true).await?));
    }
    let link = |p: u64| format!("/instances?page={p}");
    Ok(reply(
        200,
        json!({"total_results": total, "total_pages": pages, "current_page": page,
               "prev_url": (page > 1).then(|| link(page - 1)),
               "next_url": (page < pages).then(|| link(page + 1)),
               "resources": resources}),
    ))
}

async fn health(State(app): State<Shared>) -> Response {
    let ok = match app.engine.state().await {
        Ok(c) => c.simple_query("SELECT 1").await.is_ok(),
        Err(_) => false,
    };
    if ok {
        StatusCode::OK.into_response()
    } else {
        StatusCode::SERVICE_UNAVAILABLE.into_response()
    }
}

// ---------------------------------------------------------------------------------------------
// a9s Backup Manager.

async fn bm_instance(app: &App, iid: &str) -> std::result::Result<Instance, Fail> {
    live_instance(app, iid)
        .await?
        .ok_or_else(|| reject(404, Some("NotFound"), format!("instance {iid} not found")))
}

fn job_id(id: &str) -> std::result::Result<i64, Fail> {
    id.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| reject(404, Some("NotFound"), format!("no job {id}")))
}

fn backup_json(j: &Job) -> Value {
    let mut v = json!({"id": j.id, "size": j.size, "status": j.status,
        "triggered_at": j.triggered_at, "finished_at": j.finished_at, "downloadable": false});
    if let Some(d) = &j.description {
        v["description"] = json!(d);
    }
    let typed: Option<Backup> = serde_json::from_value(v.clone()).ok();
    typed
        .and_then(|b| serde_json::to_value(b).ok())
        .unwrap_or(v)
}

fn restore_json(j: &Job) -> Value {
    let mut v = json!({"id": j.id, "backup_id": j.backup_id, "status": j.status,
        "triggered_at": j.triggered_at, "finished_at": j.finished_at});
    if let Some(d) = &j.description {
        v["description"] = json!(d);
    }
    let typed: Option<Restore> = serde_json::from_value(v.clone()).ok();
    typed
        .and_then(|r| serde_json::to_value(r).ok())
        .unwrap_or(v)
}

async fn create_backup(State(app): State<Shared>, Path(iid): Path<String>) -> Res {
    let i = bm_instance(&app, &iid).await?;
    if i.state != state::PROVISIONED {
        return Err(reject(
            422,
            Some("InstanceNotProvisioned"),
            format!("the instance is {}", i.state),
        ));
    }
    let c = app.engine.state().await?;
    let id = store::insert_backup(&c, i.seq).await?;
    app.jobs.spawn(jobs::backup(app.engine.clone(), i.seq, id));
    tracing::info!(instance = %iid, backup = id, "backup queued");
    Ok(reply(201, json!({"id": id, "message": "job queued"})))
}

async fn list_backups(State(app): State<Shared>, Path(iid): Path<String>) -> Res {
    let i = bm_instance(&app, &iid).await?;
    let c = app.engine.state().await?;
    let all: Vec<Value> = store::jobs(&c, JobKind::Backup, i.seq)
        .await?
        .iter()
        .map(backup_json)
        .collect();
    Ok(reply(200, Value::Array(all)))
}

async fn get_backup(State(app): State<Shared>, Path((iid, id)): Path<(String, String)>) -> Res {
    let i = bm_instance(&app, &iid).await?;
    let c = app.engine.state().await?;
    match store::job_of(&c, JobKind::Backup, i.seq, job_id(&id)?).await? {
        Some(j) => Ok(reply(200, backup_json(&j))),
        None => Err(reject(404, Some("NotFound"), format!("no backup {id}"))),
    }
}

async fn delete_backup(State(app): State<Shared>, Path((iid, id)): Path<(String, String)>) -> Res {
    let i = bm_instance(&app, &iid).await?;
    let id = job_id(&id)?;
    let _w = app.write.lock().await;
    let c = app.engine.state().await?;
    if store::job_of(&c, JobKind::Backup, i.seq, id)
        .await?
        .is_none()
    {
        return Err(reject(404, Some("NotFound"), format!("no backup {id}")));
    }
    let busy = store::jobs(&c, JobKind::Restore, i.seq)
        .await?
        .iter()
        .any(|r| r.backup_id == Some(id) && matches!(r.status.as_str(), "queued" | "running"));
    if busy {
        return Err(reject(
            423,
            Some("Locked"),
            "a running restore uses this backup",
        ));
    }
    store::delete_backup(&c, id).await?;
    Ok(reply(200, json!({"message": "backup deleted"})))
}

async fn create_restore(State(app): State<Shared>, Path((iid, id)): Path<(String, String)>) -> Res {
    let i = bm_instance(&app, &iid).await?;
    let id = job_id(&id)?;
    let _w = app.write.lock().await;
    let c = app.engine.state().await?;
    let Some(b) = store::job_of(&c, JobKind::Backup, i.seq, id).await? else {
        return Err(reject(404, Some("NotFound"), format!("no backup {id}")));
    };
    if b.status != "done" {
        return Err(reject(
            422,
            Some("BackupNonRestorableState"),
            format!(
                "backup {id} is {}; only a done backup can be restored",
                b.status
            ),
        ));
    }
    let running = store::jobs(&c, JobKind::Restore, i.seq)
        .await?
        .iter()
        .any(|r| matches!(r.status.as_str(), "queued" | "running"));
    if running {
        return Err(reject(
            409,
            Some("RestoreInProgress"),
            "a restore of this instance is running",
        ));
    }
    let rid = store::insert_restore(&c, i.seq, id).await?;
    app.jobs
        .spawn(jobs::restore(app.engine.clone(), i.seq, rid, id));
    tracing::info!(instance = %iid, backup = id, restore = rid, "restore queued");
    Ok(reply(202, json!({"id": rid})))
}

async fn list_restores(State(app): State<Shared>, Path(iid): Path<String>) -> Res {
    let i = bm_instance(&app, &iid).await?;
    let c = app.engine.state().await?;
    let all: Vec<Value> = store::jobs(&c, JobKind::Restore, i.seq)
        .await?
        .iter()
        .map(restore_json)
        .collect();
    Ok(reply(200, Value::Array(all)))
}

async fn get_restore(State(app): State<Shared>, Path((iid, id)): Path<(String, String)>) -> Res {
    let i = bm_instance(&app, &iid).await?;
    let c = app.engine.state().await?;
    match store::job_of(&c, JobKind::Restore, i.seq, job_id(&id)?).await? {
        Some(j) => Ok(reply(200, restore_json(&j))),
        None => Err(reject(404, Some("NotFound"), format!("no restore {id}"))),
    }
}

/// The shortest encryption key `PUT /instances/{id}` accepts.
const MIN_KEY_LENGTH: u64 = 8;

async fn get_config(State(app): State<Shared>, Path(iid): Path<String>) -> Res {
    let i = bm_instance(&app, &iid).await?;
    let c = app.engine.state().await?;
    let (exclude, _) = store::backup_config(&c, i.seq).await?;
    let cfg = BackupConfig {
        min_encryption_key_length: Some(MIN_KEY_LENGTH),
        exclude_from_auto_backup: Some(exclude),
        ..Default::default()
    };
    let mut v = serde_json::to_value(cfg).unwrap_or_default();
    v["backup_type"] = json!("pg_dump");
    Ok(reply(200, v))
}

async fn update_config(
    State(app): State<Shared>,
    Path(iid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Res {
    let _ = headers;
    let i = bm_instance(&app, &iid).await?;
    let b = body_object(&body)?;
    let key = b.get("encryption_key").and_then(Value::as_str);
    let exclude = b.get("exclude_from_auto_backup").and_then(Value::as_bool);
    if key.is_none() && exclude.is_none() && !b.contains_key("credentials_updated_by_user") {
        return Err(reject(400, Some("BadRequest"), "nothing to update"));
    }
    if key.is_some_and(|k| (k.chars().count() as u64) < MIN_KEY_LENGTH) {
        return Err(reject(
            400,
            Some("BadRequest"),
            format!("the encryption key must have at least {MIN_KEY_LENGTH} characters"),
        ));
    }
    let c = app.engine.state().await?;
    store::set_backup_config(&c, i.seq, exclude, key.map(|_| true)).await?;
    Ok(reply(200, json!({"message": "configuration updated"})))
}
