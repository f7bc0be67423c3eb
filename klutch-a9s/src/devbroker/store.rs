//! The broker's state — instances, bindings, backups, restores — in tables of its own database
//! on the managed server (default `a9s_dev_broker`), so it survives a broker restart and lives
//! and dies with the data it describes.

use serde_json::Value;
use tokio_postgres::{Client, Row};

use super::{DevBrokerError, Result};

/// The schema, created at start (idempotent).
const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS instances (
  seq BIGSERIAL PRIMARY KEY,
  instance_id TEXT NOT NULL UNIQUE,
  service_id TEXT NOT NULL,
  plan_id TEXT NOT NULL,
  parameters JSONB NOT NULL,
  context JSONB NOT NULL,
  organization_guid TEXT NOT NULL,
  space_guid TEXT NOT NULL,
  state TEXT NOT NULL,
  op_kind TEXT NOT NULL,
  op_key TEXT NOT NULL,
  op_state TEXT NOT NULL,
  op_description TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  provisioned_at TEXT,
  deleted_at TEXT
);
CREATE TABLE IF NOT EXISTS bindings (
  seq BIGSERIAL PRIMARY KEY,
  instance_seq BIGINT NOT NULL REFERENCES instances(seq),
  binding_id TEXT NOT NULL,
  service_id TEXT NOT NULL,
  plan_id TEXT NOT NULL,
  parameters JSONB NOT NULL,
  password TEXT NOT NULL,
  created BOOLEAN NOT NULL DEFAULT false,
  deleted BOOLEAN NOT NULL DEFAULT false,
  UNIQUE (instance_seq, binding_id)
);
CREATE TABLE IF NOT EXISTS backups (
  id BIGSERIAL PRIMARY KEY,
  instance_seq BIGINT NOT NULL REFERENCES instances(seq),
  status TEXT NOT NULL,
  size BIGINT,
  dump BYTEA,
  description TEXT,
  triggered_at TEXT NOT NULL,
  finished_at TEXT
);
CREATE TABLE IF NOT EXISTS restores (
  id BIGSERIAL PRIMARY KEY,
  instance_seq BIGINT NOT NULL REFERENCES instances(seq),
  backup_id BIGINT NOT NULL REFERENCES backups(id),
  status TEXT NOT NULL,
  description TEXT,
  triggered_at TEXT NOT NULL,
  finished_at TEXT
);
CREATE TABLE IF NOT EXISTS backup_config (
  instance_seq BIGINT PRIMARY KEY REFERENCES instances(seq),
  exclude_from_auto_backup BOOLEAN NOT NULL DEFAULT false,
  encryption_key_set BOOLEAN NOT NULL DEFAULT false
);
"#;

/// Creates the tables if they are missing.
pub async fn migrate(client: &Client) -> Result<()> {
    client
        .batch_execute(SCHEMA)
        .await
        .map_err(|source| DevBrokerError::Sql {
            what: "create the state tables".into(),
            source,
        })
}

/// Now, as the a9s APIs write it: `2023-04-11T08:52:48.209Z`.
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Instance states (spec 12.3).
pub mod state {
    /// Provisioning.
    pub const DEPLOYING: &str = "deploying";
    /// Ready.
    pub const PROVISIONED: &str = "provisioned";
    /// Deprovisioning.
    pub const DELETING: &str = "deleting";
    /// Gone (the record stays, so the id is never reused).
    pub const DELETED: &str = "deleted";
    /// Provisioning failed.
    pub const FAILED: &str = "failed";
}

/// An instance row.
#[derive(Debug, Clone)]
pub struct Instance {
    /// Broker sequence number (the a9s record `id`; names the database and roles).
    pub seq: i64,
    /// The OSB instance id.
    pub instance_id: String,
    /// Catalog service id.
    pub service_id: String,
    /// Catalog plan id.
    pub plan_id: String,
    /// The instance's parameters as last accepted.
    pub parameters: Value,
    /// The OSB context.
    pub context: Value,
    /// Deprecated OSB field, kept for the a9s record.
    pub organization_guid: String,
    /// Deprecated OSB field, kept for the a9s record.
    pub space_guid: String,
    /// Lifecycle state ([`state`]).
    pub state: String,
    /// Last operation key.
    pub op_key: String,
    /// `in progress`, `succeeded` or `failed`.
    pub op_state: String,
    /// Why the last operation failed.
    pub op_description: Option<String>,
    /// Timestamps.
    pub created_at: String,
    /// Timestamps.
    pub updated_at: String,
    /// Timestamps.
    pub provisioned_at: Option<String>,
    /// Timestamps.
    pub deleted_at: Option<String>,
}

impl Instance {
    fn from_row(r: &Row) -> Self {
        Instance {
            seq: r.get("seq"),
            instance_id: r.get("instance_id"),
            service_id: r.get("service_id"),
            plan_id: r.get("plan_id"),
            parameters: r.get("parameters"),
            context: r.get("context"),
            organization_guid: r.get("organization_guid"),
            space_guid: r.get("space_guid"),
            state: r.get("state"),
            op_key: r.get("op_key"),
            op_state: r.get("op_state"),
            op_description: r.get("op_description"),
            created_at: r.get("created_at"),
            updated_at: r.get("updated_at"),
            provisioned_at: r.get("provisioned_at"),
            deleted_at: r.get("deleted_at"),
        }
    }
}

/// A binding row.
#[derive(Clone)]
pub struct Binding {
    /// Broker sequence number (names the login role).
    pub seq: i64,
    /// The OSB binding id.
    pub binding_id: String,
    /// Catalog service id.
    pub service_id: String,
    /// Catalog plan id.
    pub plan_id: String,
    /// The bind parameters.
    pub parameters: Value,
    /// The login role's password (never logged).
    pub password: String,
    /// Whether the role was created.
    pub created: bool,
}

impl std::fmt::Debug for Binding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Binding")
            .field("seq", &self.seq)
            .field("binding_id", &self.binding_id)
            .finish_non_exhaustive()
    }
}

impl Binding {
    fn from_row(r: &Row) -> Self {
        Binding {
            seq: r.get("seq"),
            binding_id: r.get("binding_id"),
            service_id: r.get("service_id"),
            plan_id: r.get("plan_id"),
            parameters: r.get("parameters"),
            password: r.get("password"),
            created: r.get("created"),
        }
    }
}

/// A backup or restore job row.
#[derive(Debug, Clone)]
pub struct Job {
    /// The server-chosen id.
    pub id: i64,
    /// The instance.
    pub instance_seq: i64,
    /// For restores: the backup.
    pub backup_id: Option<i64>,
    /// `queued`, `running`, `done`, `failed`, `deleted`.
    pub status: String,
    /// Dump size in bytes (backups).
    pub size: Option<i64>,
    /// Why it failed.
    pub description: Option<String>,
    /// Timestamps.
    pub triggered_at: String,
    /// Timestamps.
    pub finished_at: Option<String>,
}

fn sql(what: &str) -> impl FnOnce(tokio_postgres::Error) -> DevBrokerError + '_ {
    move |source| DevBrokerError::Sql {
        what: what.to_owned(),
        source,
    }
}

const INSTANCE_COLUMNS: &str = "seq, instance_id, service_id, plan_id, parameters, context, \
    organization_guid, space_guid, state, op_kind, op_key, op_state, op_description, created_at, \
    updated_at, provisioned_at, deleted_at";

/// The instance with this OSB id (also deleted ones).
pub async fn instance(c: &Client, instance_id: &str) -> Result<Option<Instance>> {
    let q = format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE instance_id = $1");
    let row = c
        .query_opt(&q, &[&instance_id])
        .await
        .map_err(sql("read an instance"))?;
    Ok(row.as_ref().map(Instance::from_row))
}

/// The instance with this sequence number.
pub async fn instance_by_seq(c: &Client, seq: i64) -> Result<Option<Instance>> {
    let q = format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE seq = $1");
    let row = c
        .query_opt(&q, &[&seq])
        .await
        .map_err(sql("read an instance"))?;
    Ok(row.as_ref().map(Instance::from_row))
}

/// All instances, oldest first.
pub async fn instances(c: &Client) -> Result<Vec<Instance>> {
    let q = format!("SELECT {INSTANCE_COLUMNS} FROM instances ORDER BY seq");
    let rows = c.query(&q, &[]).await.map_err(sql("list instances"))?;
    Ok(rows.iter().map(Instance::from_row).collect())
}

/// What a new instance row holds.
#[derive(Debug, Clone)]
pub struct NewInstance<'a> {
    /// OSB id.
    pub instance_id: &'a str,
    /// Service id.
    pub service_id: &'a str,
    /// Plan id.
    pub plan_id: &'a str,
    /// Parameters.
    pub parameters: &'a Value,
    /// Context.
    pub context: &'a Value,
    /// Deprecated OSB field.
    pub organization_guid: &'a str,
    /// Deprecated OSB field.
    pub space_guid: &'a str,
}

/// Inserts an instance in state `deploying` with a running `provision` operation; `None` when
/// the id exists already (a concurrent request won).
pub async fn insert_instance(c: &Client, n: &NewInstance<'_>) -> Result<Option<Instance>> {
    let now = now();
    let q = format!(
        "INSERT INTO instances (instance_id, service_id, plan_id, parameters, context, \
         organization_guid, space_guid, state, op_kind, op_key, op_state, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'deploying', 'provision', '', 'in progress', $8, $8) \
         ON CONFLICT (instance_id) DO NOTHING RETURNING {INSTANCE_COLUMNS}"
    );
    let row = c
        .query_opt(
            &q,
            &[
                &n.instance_id,
                &n.service_id,
                &n.plan_id,
                n.parameters,
                n.context,
                &n.organization_guid,
                &n.space_guid,
                &now,
            ],
        )
        .await
        .map_err(sql("insert an instance"))?;
    let Some(row) = row else { return Ok(None) };
    let mut i = Instance::from_row(&row);
    i.op_key = format!("provision-{}", i.seq);
    c.execute(
        "UPDATE instances SET op_key = $2 WHERE seq = $1",
        &[&i.seq, &i.op_key],
    )
    .await
    .map_err(sql("record the provision operation"))?;
    Ok(Some(i))
}

/// Starts an operation: sets state and operation, only if the state is still `from`.
/// Returns whether the row changed.
pub async fn begin_operation(
    c: &Client,
    seq: i64,
    from: &[&str],
    state: &str,
    kind: &str,
) -> Result<Option<String>> {
    let key = format!("{kind}-{seq}-{}", jiff::Timestamp::now().as_millisecond());
    let from: Vec<String> = from.iter().map(|s| (*s).to_owned()).collect();
    let n = c
        .execute(
            "UPDATE instances SET state = $3, op_kind = $4, op_key = $5, op_state = 'in progress', \
             op_description = NULL, updated_at = $6 WHERE seq = $1 AND state = ANY($2)",
            &[&seq, &from, &state, &kind, &key, &now()],
        )
        .await
        .map_err(sql("start an operation"))?;
    Ok((n == 1).then_some(key))
}

/// Ends the running operation: success moves to `state`, failure records the description.
pub async fn finish_operation(
    c: &Client,
    seq: i64,
    expected_state: &str,
    outcome: std::result::Result<&str, &str>,
) -> Result<()> {
    let now = now();
    match outcome {
        Ok(state) => c
            .execute(
                "UPDATE instances SET state = $3, op_state = 'succeeded', updated_at = $4, \
                 provisioned_at = CASE WHEN $3 = 'provisioned' THEN COALESCE(provisioned_at, $4) ELSE provisioned_at END, \
                 deleted_at = CASE WHEN $3 = 'deleted' THEN $4 ELSE deleted_at END \
                 WHERE seq = $1 AND state = $2",
                &[&seq, &expected_state, &state, &now],
            )
            .await,
        Err(description) => c
            .execute(
                "UPDATE instances SET state = CASE WHEN state = 'deploying' THEN 'failed' ELSE \
                 CASE WHEN state = 'deleting' THEN 'provisioned' ELSE state END END, \
                 op_state = 'failed', op_description = $3, updated_at = $4 \
                 WHERE seq = $1 AND state = $2",
                &[&seq, &expected_state, &description, &now],
            )
            .await,
    }
    .map_err(sql("finish an operation"))?;
    Ok(())
}

/// Records an applied update (plan and parameters) as a finished `update` operation.
pub async fn record_update(c: &Client, seq: i64, plan_id: &str, parameters: &Value) -> Result<()> {
    let key = format!("update-{seq}-{}", jiff::Timestamp::now().as_millisecond());
    c.execute(
        "UPDATE instances SET plan_id = $2, parameters = $3, op_kind = 'update', op_key = $4, \
         op_state = 'succeeded', op_description = NULL, updated_at = $5 WHERE seq = $1",
        &[&seq, &plan_id, parameters, &key, &now()],
    )
    .await
    .map_err(sql("record an update"))?;
    Ok(())
}

const BINDING_COLUMNS: &str =
    "seq, instance_seq, binding_id, service_id, plan_id, parameters, password, created";

/// The live binding `binding_id` of an instance.
pub async fn binding(c: &Client, instance_seq: i64, binding_id: &str) -> Result<Option<Binding>> {
    let q = format!(
        "SELECT {BINDING_COLUMNS} FROM bindings WHERE instance_seq = $1 AND binding_id = $2 AND NOT deleted"
    );
    let row = c
        .query_opt(&q, &[&instance_seq, &binding_id])
        .await
        .map_err(sql("read a binding"))?;
    Ok(row.as_ref().map(Binding::from_row))
}

/// Whether the binding id was used (and deleted) before on this instance.
pub async fn binding_was_deleted(c: &Client, instance_seq: i64, binding_id: &str) -> Result<bool> {
    let row = c
        .query_opt(
            "SELECT 1 FROM bindings WHERE instance_seq = $1 AND binding_id = $2 AND deleted",
            &[&instance_seq, &binding_id],
        )
        .await
        .map_err(sql("read a binding"))?;
    Ok(row.is_some())
}

/// All bindings of an instance, deleted ones included (deprovision drops every role).
pub async fn bindings(c: &Client, instance_seq: i64, live_only: bool) -> Result<Vec<Binding>> {
    let q = format!(
        "SELECT {BINDING_COLUMNS} FROM bindings WHERE instance_seq = $1 AND (NOT $2 OR NOT deleted) ORDER BY seq"
    );
    let rows = c
        .query(&q, &[&instance_seq, &live_only])
        .await
        .map_err(sql("list bindings"))?;
    Ok(rows.iter().map(Binding::from_row).collect())
}

/// Inserts a binding (role not created yet); `None` if a concurrent request inserted it.
pub async fn insert_binding(
    c: &Client,
    instance_seq: i64,
    binding_id: &str,
    service_id: &str,
    plan_id: &str,
    parameters: &Value,
    password: &str,
) -> Result<Option<Binding>> {
    let q = format!(
        "INSERT INTO bindings (instance_seq, binding_id, service_id, plan_id, parameters, password) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (instance_seq, binding_id) DO NOTHING \
         RETURNING {BINDING_COLUMNS}"
    );
    let row = c
        .query_opt(
            &q,
            &[
                &instance_seq,
                &binding_id,
                &service_id,
                &plan_id,
                parameters,
                &password,
            ],
        )
        .await
        .map_err(sql("insert a binding"))?;
    Ok(row.as_ref().map(Binding::from_row))
}

/// Marks a binding's role as created (`created`) or the binding as deleted.
pub async fn set_binding(c: &Client, seq: i64, created: bool, deleted: bool) -> Result<()> {
    c.execute(
        "UPDATE bindings SET created = $2, deleted = $3 WHERE seq = $1",
        &[&seq, &created, &deleted],
    )
    .await
    .map_err(sql("update a binding"))?;
    Ok(())
}

/// Marks every binding of an instance deleted.
pub async fn delete_bindings(c: &Client, instance_seq: i64) -> Result<()> {
    c.execute(
        "UPDATE bindings SET deleted = true WHERE instance_seq = $1",
        &[&instance_seq],
    )
    .await
    .map_err(sql("delete bindings"))?;
    Ok(())
}

fn job(r: &Row, restore: bool) -> Job {
    Job {
        id: r.get("id"),
        instance_seq: r.get("instance_seq"),
        backup_id: restore.then(|| r.get("backup_id")),
        status: r.get("status"),
        size: if restore { None } else { r.get("size") },
        description: r.get("description"),
        triggered_at: r.get("triggered_at"),
        finished_at: r.get("finished_at"),
    }
}

/// Which job table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// `backups`.
    Backup,
    /// `restores`.
    Restore,
}

impl JobKind {
    fn table(self) -> &'static str {
        match self {
            JobKind::Backup => "backups",
            JobKind::Restore => "restores",
        }
    }
    fn columns(self) -> &'static str {
        match self {
            JobKind::Backup => {
                "id, instance_seq, status, size, description, triggered_at, finished_at"
            }
            JobKind::Restore => {
                "id, instance_seq, backup_id, status, description, triggered_at, finished_at"
            }
        }
    }
}

/// The jobs of an instance, oldest first.
pub async fn jobs(c: &Client, kind: JobKind, instance_seq: i64) -> Result<Vec<Job>> {
    let q = format!(
        "SELECT {} FROM {} WHERE instance_seq = $1 ORDER BY id",
        kind.columns(),
        kind.table()
    );
    let rows = c
        .query(&q, &[&instance_seq])
        .await
        .map_err(sql("list jobs"))?;
    Ok(rows
        .iter()
        .map(|r| job(r, kind == JobKind::Restore))
        .collect())
}

/// One job of an instance.
pub async fn job_of(c: &Client, kind: JobKind, instance_seq: i64, id: i64) -> Result<Option<Job>> {
    let q = format!(
        "SELECT {} FROM {} WHERE instance_seq = $1 AND id = $2",
        kind.columns(),
        kind.table()
    );
    let row = c
        .query_opt(&q, &[&instance_seq, &id])
        .await
        .map_err(sql("read a job"))?;
    Ok(row.map(|r| job(&r, kind == JobKind::Restore)))
}

/// Jobs of every instance in `queued` or `running` (resumed at start).
pub async fn unfinished_jobs(c: &Client, kind: JobKind) -> Result<Vec<Job>> {
    let q = format!(
        "SELECT {} FROM {} WHERE status IN ('queued', 'running') ORDER BY id",
        kind.columns(),
        kind.table()
    );
    let rows = c.query(&q, &[]).await.map_err(sql("list jobs"))?;
    Ok(rows
        .iter()
        .map(|r| job(r, kind == JobKind::Restore))
        .collect())
}

/// Inserts a queued backup; returns its id.
pub async fn insert_backup(c: &Client, instance_seq: i64) -> Result<i64> {
    let row = c
        .query_one(
            "INSERT INTO backups (instance_seq, status, triggered_at) VALUES ($1, 'queued', $2) RETURNING id",
            &[&instance_seq, &now()],
        )
        .await
        .map_err(sql("insert a backup"))?;
    Ok(row.get(0))
}

/// Inserts a queued restore; returns its id.
pub async fn insert_restore(c: &Client, instance_seq: i64, backup_id: i64) -> Result<i64> {
    let row = c
        .query_one(
            "INSERT INTO restores (instance_seq, backup_id, status, triggered_at) VALUES ($1, $2, 'queued', $3) RETURNING id",
            &[&instance_seq, &backup_id, &now()],
        )
        .await
        .map_err(sql("insert a restore"))?;
    Ok(row.get(0))
}

/// Sets a job's status (and, when it ends, `finished_at` and the description).
pub async fn set_job(
    c: &Client,
    kind: JobKind,
    id: i64,
    status: &str,
    description: Option<&str>,
) -> Result<()> {
    let finished = matches!(status, "done" | "failed").then(now);
    let q = format!(
        "UPDATE {} SET status = $2, description = $3, finished_at = COALESCE($4, finished_at) WHERE id = $1",
        kind.table()
    );
    c.execute(&q, &[&id, &status, &description, &finished])
        .await
        .map_err(sql("update a job"))?;
    Ok(())
}

/// Stores a finished backup's dump.
pub async fn store_dump(c: &Client, id: i64, dump: &[u8]) -> Result<()> {
    let size = i64::try_from(dump.len()).unwrap_or(i64::MAX);
    c.execute(
        "UPDATE backups SET dump = $2, size = $3 WHERE id = $1",
        &[&id, &dump, &size],
    )
    .await
    .map_err(sql("store a dump"))?;
    Ok(())
}

/// A backup's dump.
pub async fn dump(c: &Client, id: i64) -> Result<Option<Vec<u8>>> {
    let row = c
        .query_opt("SELECT dump FROM backups WHERE id = $1", &[&id])
        .await
        .map_err(sql("read a dump"))?;
    Ok(row.and_then(|r| r.get(0)))
}

/// Deletes a backup: status `deleted`, dump removed.
pub async fn delete_backup(c: &Client, id: i64) -> Result<()> {
    c.execute(
        "UPDATE backups SET status = 'deleted', dump = NULL WHERE id = $1",
        &[&id],
    )
    .await
    .map_err(sql("delete a backup"))?;
    Ok(())
}

/// Deletes every backup of an instance (deprovision).
pub async fn delete_backups(c: &Client, instance_seq: i64) -> Result<()> {
    c.execute(
        "UPDATE backups SET status = 'deleted', dump = NULL WHERE instance_seq = $1",
        &[&instance_seq],
    )
    .await
    .map_err(sql("delete backups"))?;
    Ok(())
}

/// `(exclude_from_auto_backup, encryption_key_set)` of an instance.
pub async fn backup_config(c: &Client, instance_seq: i64) -> Result<(bool, bool)> {
    let row = c
        .query_opt(
            "SELECT exclude_from_auto_backup, encryption_key_set FROM backup_config WHERE instance_seq = $1",
            &[&instance_seq],
        )
        .await
        .map_err(sql("read the backup configuration"))?;
    Ok(row.map_or((false, false), |r| (r.get(0), r.get(1))))
}

/// Updates the backup configuration (unset fields stay).
pub async fn set_backup_config(
    c: &Client,
    instance_seq: i64,
    exclude: Option<bool>,
    key_set: Option<bool>,
) -> Result<()> {
    c.execute(
        "INSERT INTO backup_config (instance_seq, exclude_from_auto_backup, encryption_key_set) \
         VALUES ($1, COALESCE($2, false), COALESCE($3, false)) ON CONFLICT (instance_seq) DO UPDATE SET \
         exclude_from_auto_backup = COALESCE($2, backup_config.exclude_from_auto_backup), \
         encryption_key_set = COALESCE($3, backup_config.encryption_key_set)",
        &[&instance_seq, &exclude, &key_set],
    )
    .await
    .map_err(sql("update the backup configuration"))?;
    Ok(())
}
