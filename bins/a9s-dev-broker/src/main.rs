//! `a9s-dev-broker`: an a9s-compatible development service broker backed by a real PostgreSQL
//! server. Wiring only (flags, logs, signals); the broker is `klutch_a9s::devbroker`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use klutch_a9s::devbroker::{DevBroker, DevBrokerConfig};
use klutch_sdk::runtime::logging::{LogFormat, Logging};
use klutch_sdk::runtime::signals;

/// An a9s-compatible development broker: the OSB API, the a9s broker extensions and the Backup
/// Manager subset that provider-anynines calls, backed by a real PostgreSQL server.
///
/// Provision creates a database and an owner role, bind a login role with a random password
/// (a9s-shaped credentials), a backup is a pg_dump kept in the broker's state database. Point a
/// ProviderConfig's broker URL and Backup Manager URL both at this listener.
///
/// Example:
///   a9s-dev-broker --postgres-url postgres://postgres:pw@127.0.0.1:5432/postgres \
///     --username admin --password secret
#[derive(Debug, Parser)]
#[command(name = "a9s-dev-broker", version, about, long_about)]
struct Cli {
    /// Superuser URL of the PostgreSQL server to manage.
    #[arg(long, env = "A9S_DEV_BROKER_POSTGRES_URL", hide_env_values = true)]
    postgres_url: String,
    /// Address to listen on. Loopback by default; the API has only basic auth and no TLS.
    #[arg(long, env = "A9S_DEV_BROKER_LISTEN", default_value = "127.0.0.1:8089")]
    listen: SocketAddr,
    /// Basic-auth user the clients (provider-anynines) must send.
    #[arg(long, env = "A9S_DEV_BROKER_USERNAME", default_value = "admin")]
    username: String,
    /// Basic-auth password the clients must send.
    #[arg(long, env = "A9S_DEV_BROKER_PASSWORD", hide_env_values = true)]
    password: String,
    /// Host written into binding credentials (default: the host of --postgres-url). Set it to
    /// an address the applications can reach.
    #[arg(long, env = "A9S_DEV_BROKER_PUBLIC_HOST")]
    public_host: Option<String>,
    /// Port written into binding credentials (default: the port of --postgres-url).
    #[arg(long, env = "A9S_DEV_BROKER_PUBLIC_PORT")]
    public_port: Option<u16>,
    /// Directory holding pg_dump and pg_restore (default: the highest
    /// `/usr/lib/postgresql/<version>/bin`, else PATH).
    #[arg(long, env = "A9S_DEV_BROKER_PG_BIN_DIR")]
    pg_bin_dir: Option<PathBuf>,
    /// Database on the server that holds the broker's state (instances, bindings, backups).
    #[arg(
        long,
        env = "A9S_DEV_BROKER_STATE_DATABASE",
        default_value = "a9s_dev_broker"
    )]
    state_database: String,
    /// Prefix of the databases and roles the broker creates (`[a-z][a-z0-9_]{0,15}`).
    #[arg(long, env = "A9S_DEV_BROKER_NAME_PREFIX", default_value = "a9s")]
    name_prefix: String,
    /// Seconds to wait before a provision does its work (to watch the asynchronous flow).
    #[arg(long, env = "A9S_DEV_BROKER_PROVISION_DELAY", default_value_t = 0)]
    provision_delay: u64,
    /// Log at debug level.
    #[arg(long, env = "A9S_DEV_BROKER_DEBUG")]
    debug: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = if cli.debug {
        "debug,tokio_postgres=info,hyper=info"
    } else {
        "info"
    };
    if let Err(e) = Logging::new(filter).format(LogFormat::Text).init() {
        eprintln!("a9s-dev-broker: cannot set up logging: {e}");
        return ExitCode::FAILURE;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let mut config = DevBrokerConfig::new(cli.postgres_url, cli.username, cli.password);
    config.listen = cli.listen;
    config.public_host = cli.public_host;
    config.public_port = cli.public_port;
    config.pg_bin_dir = cli.pg_bin_dir;
    config.state_database = cli.state_database;
    config.name_prefix = cli.name_prefix;
    config.provision_delay = Duration::from_secs(cli.provision_delay);
    let shutdown = async {
        let signal = signals::shutdown().await;
        tracing::info!(%signal, "shutting down");
    };
    let result = rt.block_on(DevBroker::serve(config, shutdown, |addr| {
        tracing::info!(%addr, "a9s-dev-broker listening");
    }));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %klutch_sdk::runtime::report::error_chain(&e), "a9s-dev-broker stopped");
            ExitCode::FAILURE
        }
    }
}
