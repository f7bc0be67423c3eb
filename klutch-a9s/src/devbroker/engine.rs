//! What the broker does on the PostgreSQL server: databases and roles for instances and
//! bindings, `pg_dump`/`pg_restore` for backups, and the background jobs that run provisions,
//! deprovisions, backups and restores (resumed after a restart). Every step is idempotent, so a
//! job interrupted anywhere can simply run again.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;

use rand::Rng as _;
use tokio::io::AsyncWriteExt as _;
use tokio_postgres::config::Host;
use tokio_postgres::{Client, NoTls};

use super::sql::{InstanceNames, Parameters, ident, literal};
use super::store::{self, JobKind, state};
use super::{DevBrokerError, Result};

/// How the broker reaches the server and where its tools are.
#[derive(Debug)]
pub struct Engine {
    /// Superuser connection settings (the admin URL).
    pub admin: tokio_postgres::Config,
    /// The database holding the broker's state.
    pub state_db: String,
    /// Prefix of database and role names.
    pub prefix: String,
    /// Host and port put into credentials.
    pub public_host: String,
    /// Port put into credentials.
    pub public_port: u16,
    /// Directory of `pg_dump` and `pg_restore` (`None`: from `PATH`).
    pub bin_dir: Option<PathBuf>,
    /// Delay before a provision starts its work.
    pub provision_delay: std::time::Duration,
}

fn sql(what: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> DevBrokerError {
    let what = what.into();
    move |source| DevBrokerError::Sql { what, source }
}

impl Engine {
    /// A connection to `database` as the superuser.
    pub async fn connect(&self, database: &str) -> Result<Client> {
        let mut cfg = self.admin.clone();
        cfg.dbname(database);
        let (client, conn) =
            cfg.connect(NoTls)
                .await
                .map_err(|source| DevBrokerError::Connect {
                    database: database.to_owned(),
                    source,
                })?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "PostgreSQL connection closed");
            }
        });
        Ok(client)
    }

    /// A connection to the state database.
    pub async fn state(&self) -> Result<Client> {
        self.connect(&self.state_db).await
    }

    /// The maintenance database of the admin URL (default `postgres`).
    fn admin_db(&self) -> String {
        self.admin.get_dbname().unwrap_or("postgres").to_owned()
    }

    /// Creates the state database (CONNECT revoked from PUBLIC) if missing, and its tables.
    pub async fn prepare(&self) -> Result<()> {
        let admin = self.connect(&self.admin_db()).await?;
        let exists = admin
            .query_opt(
                "SELECT 1 FROM pg_database WHERE datname = $1",
                &[&self.state_db],
            )
            .await
            .map_err(sql("look for the state database"))?
            .is_some();
        if !exists {
            // CREATE DATABASE may not share a (multi-statement) transaction.
            admin
                .batch_execute(&format!("CREATE DATABASE {}", ident(&self.state_db)))
                .await
                .map_err(sql("create the state database"))?;
            admin
                .batch_execute(&format!(
                    "REVOKE ALL ON DATABASE {} FROM PUBLIC",
                    ident(&self.state_db)
                ))
                .await
                .map_err(sql("revoke PUBLIC access to the state database"))?;
        }
        store::migrate(&self.state().await?).await
    }

    fn names(&self, seq: i64) -> InstanceNames {
        InstanceNames::new(&self.prefix, seq)
    }

    /// Checks parameters against the server without changing anything: every database setting
    /// is tried with `set_config(..., is_local)` in a transaction that is rolled back, and every
    /// server-wide one compared with the server's value. `Err((server_wide, text))` carries a
    /// user-facing text.
    pub async fn check_parameters(
        &self,
        p: &Parameters,
    ) -> Result<std::result::Result<(), (bool, String)>> {
        let mut c = self.connect(&self.admin_db()).await?;
        for (setting, wanted) in &p.server {
            let row = c
                .query_one("SELECT current_setting($1)", &[setting])
                .await
                .map_err(sql("read a server setting"))?;
            let current: String = row.get(0);
            if &current != wanted {
                return Ok(Err((
                    true,
                    format!(
                        "`{setting}` is `{current}` on the development server and the broker does not \
                     change server-wide settings (wanted `{wanted}`)"
                    ),
                )));
            }
        }
        let tx = c.transaction().await.map_err(sql("begin"))?;
        for (setting, value) in &p.settings {
            if let Err(e) = tx
                .query_one("SELECT set_config($1, $2, true)", &[setting, value])
                .await
            {
                let why = e
                    .as_db_error()
                    .map_or_else(|| e.to_string(), |d| d.message().to_owned());
                return Ok(Err((
                    false,
                    format!("parameter `{setting}` = `{value}`: {why}"),
                )));
            }
        }
        tx.rollback().await.map_err(sql("rollback"))?;
        Ok(Ok(()))
    }

    /// Applies connection limit and settings to an instance's database.
    pub async fn apply(&self, seq: i64, limit: i32, p: &Parameters) -> Result<()> {
        let n = self.names(seq);
        let c = self.connect(&self.admin_db()).await?;
        let mut stmts = vec![
            format!(
                "ALTER DATABASE {} CONNECTION LIMIT {limit}",
                ident(&n.database)
            ),
            format!("ALTER DATABASE {} RESET ALL", ident(&n.database)),
        ];
        for (setting, value) in &p.settings {
            stmts.push(format!(
                "ALTER DATABASE {} SET {} = {}",
                ident(&n.database),
                ident(setting),
                literal(value)
            ));
        }
        c.batch_execute(&stmts.join(";"))
            .await
            .map_err(sql(format!("configure database {}", n.database)))
    }

    async fn role_exists(c: &Client, role: &str) -> Result<bool> {
        Ok(
            c.query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role])
                .await
                .map_err(sql("look for a role"))?
                .is_some(),
        )
    }

    /// Provision: owner role, database (CONNECT only for the owner), settings. Idempotent.
    pub async fn create_instance(&self, seq: i64, limit: i32, p: &Parameters) -> Result<()> {
        let n = self.names(seq);
        let c = self.connect(&self.admin_db()).await?;
        if !Self::role_exists(&c, &n.owner).await? {
            c.batch_execute(&format!("CREATE ROLE {} NOLOGIN", ident(&n.owner)))
                .await
                .map_err(sql(format!("create role {}", n.owner)))?;
        }
        let exists = c
            .query_opt(
                "SELECT 1 FROM pg_database WHERE datname = $1",
                &[&n.database],
            )
            .await
            .map_err(sql("look for a database"))?
            .is_some();
        if !exists {
            c.batch_execute(&format!(
                "CREATE DATABASE {} OWNER {} TEMPLATE template0 ENCODING 'UTF8'",
                ident(&n.database),
                ident(&n.owner)
            ))
            .await
            .map_err(sql(format!("create database {}", n.database)))?;
        }
        c.batch_execute(&format!(
            "REVOKE ALL ON DATABASE {} FROM PUBLIC",
            ident(&n.database)
        ))
        .await
        .map_err(sql("revoke PUBLIC access"))?;
        self.apply(seq, limit, p).await
    }

    /// Ends every session of a database, or of a role (`by_role`).
    async fn terminate(c: &Client, name: &str, by_role: bool) -> Result<()> {
        let q = if by_role {
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()"
        } else {
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()"
        };
        c.query(q, &[&name])
            .await
            .map_err(sql("terminate sessions"))?;
        Ok(())
    }

    /// Deprovision: the database (sessions ended first) and every role of the instance.
    pub async fn drop_instance(&self, seq: i64, binding_seqs: &[i64]) -> Result<()> {
        let n = self.names(seq);
        let c = self.connect(&self.admin_db()).await?;
        Self::terminate(&c, &n.database, false).await?;
        c.batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            ident(&n.database)
        ))
        .await
        .map_err(sql(format!("drop database {}", n.database)))?;
        for b in binding_seqs {
            let role = n.binding_role(*b);
            Self::terminate(&c, &role, true).await?;
            c.batch_execute(&format!("DROP ROLE IF EXISTS {}", ident(&role)))
                .await
                .map_err(sql(format!("drop role {role}")))?;
        }
        c.batch_execute(&format!("DROP ROLE IF EXISTS {}", ident(&n.owner)))
            .await
            .map_err(sql(format!("drop role {}", n.owner)))
    }

    /// A random password: 32 alphanumeric characters.
    pub fn password() -> String {
        rand::rng()
            .sample_iter(rand::distr::Alphanumeric)
            .take(32)
            .map(char::from)
            .collect()
    }

    /// Bind: a login role in the owner role, acting as the owner by default (so every binding
    /// of an instance sees the same tables). Idempotent (sets the password again).
    pub async fn create_binding(&self, seq: i64, binding_seq: i64, password: &str) -> Result<()> {
        let n = self.names(seq);
        let role = n.binding_role(binding_seq);
        let c = self.connect(&self.admin_db()).await?;
        let verb = if Self::role_exists(&c, &role).await? {
            "ALTER"
        } else {
            "CREATE"
        };
        c.batch_execute(&format!(
            "{verb} ROLE {r} LOGIN PASSWORD {pw}; GRANT {o} TO {r}; ALTER ROLE {r} SET role = {ol}",
            r = ident(&role),
            pw = literal(password),
            o = ident(&n.owner),
            ol = literal(&n.owner),
        ))
        .await
        .map_err(sql(format!("create role {role}")))
    }

    /// Unbind: no more logins, sessions ended, anything the role owns handed to the owner, role
    /// dropped. Idempotent.
    pub async fn drop_binding(&self, seq: i64, binding_seq: i64) -> Result<()> {
        let n = self.names(seq);
        let role = n.binding_role(binding_seq);
        let c = self.connect(&self.admin_db()).await?;
        if !Self::role_exists(&c, &role).await? {
            return Ok(());
        }
        c.batch_execute(&format!("ALTER ROLE {} NOLOGIN", ident(&role)))
            .await
            .map_err(sql(format!("lock role {role}")))?;
        Self::terminate(&c, &role, true).await?;
        let db = self.connect(&n.database).await?;
        db.batch_execute(&format!(
            "REASSIGN OWNED BY {r} TO {o}; DROP OWNED BY {r}",
            r = ident(&role),
            o = ident(&n.owner)
        ))
        .await
        .map_err(sql(format!("hand over what role {role} owns")))?;
        drop(db);
        c.batch_execute(&format!("DROP ROLE IF EXISTS {}", ident(&role)))
            .await
            .map_err(sql(format!("drop role {role}")))
    }

    /// The `pg_dump`/`pg_restore` command with the superuser's connection settings.
    fn tool(&self, program: &str, database: &str) -> tokio::process::Command {
        let path = self
            .bin_dir
            .as_ref()
            .map_or_else(|| PathBuf::from(program), |d| d.join(program));
        let mut cmd = tokio::process::Command::new(path);
        let host = match self.admin.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "127.0.0.1".into(),
        };
        let port = self.admin.get_ports().first().copied().unwrap_or(5432);
        cmd.env("PGHOST", host)
            .env("PGPORT", port.to_string())
            .env("PGUSER", self.admin.get_user().unwrap_or("postgres"))
            .env("PGDATABASE", database)
            .env_remove("PGSERVICE")
            .kill_on_drop(true);
        if let Some(pw) = self.admin.get_password() {
            cmd.env("PGPASSWORD", String::from_utf8_lossy(pw).into_owned());
        }
        cmd
    }

    /// `pg_dump --format=custom` of an instance's database.
    pub async fn dump(&self, seq: i64) -> Result<Vec<u8>> {
        let n = self.names(seq);
        let out = self
            .tool("pg_dump", &n.database)
            .args(["--format=custom", "--no-owner"])
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|source| DevBrokerError::Tool {
                tool: "pg_dump".into(),
                message: source.to_string(),
            })?;
        if !out.status.success() {
            return Err(DevBrokerError::Tool {
                tool: "pg_dump".into(),
                message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        Ok(out.stdout)
    }

    /// `pg_restore --clean --if-exists` of a dump into an instance's database, as its owner role,
    /// in one transaction; other sessions of the database are ended first.
    pub async fn restore(&self, seq: i64, dump: &[u8]) -> Result<()> {
        let n = self.names(seq);
        Self::terminate(&self.connect(&self.admin_db()).await?, &n.database, false).await?;
        let mut child = self
            .tool("pg_restore", &n.database)
            .args([
                "--clean",
                "--if-exists",
                "--no-owner",
                "--single-transaction",
                "--exit-on-error",
            ])
            .arg(format!("--role={}", n.owner))
            .arg(format!("--dbname={}", n.database))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| DevBrokerError::Tool {
                tool: "pg_restore".into(),
                message: source.to_string(),
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            let data = dump.to_vec();
            tokio::spawn(async move {
                let _ = stdin.write_all(&data).await;
            });
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|source| DevBrokerError::Tool {
                tool: "pg_restore".into(),
                message: source.to_string(),
            })?;
        if !out.status.success() {
            return Err(DevBrokerError::Tool {
                tool: "pg_restore".into(),
                message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        Ok(())
    }
}

/// Background jobs: each runs to its end or is re-run after a restart.
pub mod jobs {
    use super::*;

    use crate::devbroker::catalog;
    use crate::devbroker::sql::parse_parameters;

    /// The connection limit of an instance: `max_connections`, else the plan's.
    pub fn limit_of(plan_name: &str, p: &Parameters) -> i32 {
        p.connection_limit
            .unwrap_or_else(|| catalog::connection_limit(plan_name))
    }

    fn plan_name(plan_id: &str) -> String {
        let c = catalog::catalog();
        c.services
            .iter()
            .flat_map(|s| s.plans.iter())
            .find(|p| p.id == plan_id)
            .map_or_else(String::new, |p| p.name.clone())
    }

    /// Provisions instance `seq` (state `deploying`).
    pub async fn provision(engine: Arc<Engine>, seq: i64) {
        let r = async {
            let c = engine.state().await?;
            let Some(i) = store::instance_by_seq(&c, seq).await? else {
                return Ok(());
            };
            if i.state != state::DEPLOYING {
                return Ok(());
            }
            let p = parse_parameters(Some(&i.parameters)).unwrap_or_default();
            let limit = limit_of(&plan_name(&i.plan_id), &p);
            let outcome = engine.create_instance(seq, limit, &p).await;
            if let Err(e) = &outcome {
                tracing::warn!(seq, error = %e, "provision failed");
            }
            let text = outcome
                .as_ref()
                .err()
                .map(|e| format!("provision failed: {e}"));
            let result = match &text {
                None => Ok(state::PROVISIONED),
                Some(t) => Err(t.as_str()),
            };
            store::finish_operation(&c, seq, state::DEPLOYING, result).await
        }
        .await;
        if let Err(e) = r {
            tracing::warn!(seq, error = %e, "provision job could not record its result; it runs again at the next start");
        }
    }

    /// Deprovisions instance `seq` (state `deleting`).
    pub async fn deprovision(engine: Arc<Engine>, seq: i64) {
        let r = async {
            let c = engine.state().await?;
            let bindings: Vec<i64> = store::bindings(&c, seq, false)
                .await?
                .iter()
                .map(|b| b.seq)
                .collect();
            let outcome = engine.drop_instance(seq, &bindings).await;
            match &outcome {
                Ok(()) => {
                    store::delete_bindings(&c, seq).await?;
                    store::delete_backups(&c, seq).await?;
                    store::finish_operation(&c, seq, state::DELETING, Ok(state::DELETED)).await
                }
                Err(e) => {
                    tracing::warn!(seq, error = %e, "deprovision failed");
                    let t = format!("deprovision failed: {e}");
                    store::finish_operation(&c, seq, state::DELETING, Err(&t)).await
                }
            }
        }
        .await;
        if let Err(e) = r {
            tracing::warn!(seq, error = %e, "deprovision job could not record its result; it runs again at the next start");
        }
    }

    /// Runs backup `id` of instance `seq`.
    pub async fn backup(engine: Arc<Engine>, seq: i64, id: i64) {
        let r = async {
            let c = engine.state().await?;
            store::set_job(&c, JobKind::Backup, id, "running", None).await?;
            match engine.dump(seq).await {
                Ok(dump) => {
                    store::store_dump(&c, id, &dump).await?;
                    store::set_job(&c, JobKind::Backup, id, "done", None).await
                }
                Err(e) => {
                    tracing::warn!(seq, id, error = %e, "backup failed");
                    let t = e.to_string();
                    store::set_job(&c, JobKind::Backup, id, "failed", Some(&t)).await
                }
            }
        }
        .await;
        if let Err(e) = r {
            tracing::warn!(seq, id, error = %e, "backup job could not record its result");
        }
    }

    /// Runs restore `id` of backup `backup_id` into instance `seq`.
    pub async fn restore(engine: Arc<Engine>, seq: i64, id: i64, backup_id: i64) {
        let r = async {
            let c = engine.state().await?;
            store::set_job(&c, JobKind::Restore, id, "running", None).await?;
            let result = match store::dump(&c, backup_id).await? {
                None => Err("the backup has no data (deleted?)".to_owned()),
                Some(d) => engine.restore(seq, &d).await.map_err(|e| e.to_string()),
            };
            match result {
                Ok(()) => store::set_job(&c, JobKind::Restore, id, "done", None).await,
                Err(t) => {
                    tracing::warn!(seq, id, error = %t, "restore failed");
                    store::set_job(&c, JobKind::Restore, id, "failed", Some(&t)).await
                }
            }
        }
        .await;
        if let Err(e) = r {
            tracing::warn!(seq, id, error = %e, "restore job could not record its result");
        }
    }
}
