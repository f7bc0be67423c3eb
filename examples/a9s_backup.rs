//! Backs up an a9s data service instance and restores it from that backup, with
//! `klutch-a9s`'s Backup Manager client.
//!
//! ```text
//! # Against a real a9s Backup Manager:
//! A9S_BM_PASSWORD=secret cargo run -p klutch-examples --example a9s_backup -- \
//!     --url https://pg-backup-manager.example --user admin --instance <instance-id> \
//!     [--ca-bundle ca.pem] [--encryption-key <16+ chars>] [--keep-backup]
//! # Without --url, against the in-process fake Backup Manager (feature `testing`):
//! cargo run -p klutch-examples --example a9s_backup
//! ```

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use klutch_a9s::backup::{BackupConfigUpdate, BackupManager, JobStatus};
use klutch_a9s::testing::{FakeBackupManager, FakeBackupManagerConfig};
use klutch_a9s::transport::HttpConfig;

#[derive(Parser, Debug)]
#[command(about = "Back up an a9s instance and restore it (a9s Backup Manager API)")]
struct Cli {
    /// Backup Manager base URL; without it an in-process fake is started.
    #[arg(long, env = "A9S_BM_URL")]
    url: Option<String>,
    /// Basic-auth user.
    #[arg(long, env = "A9S_BM_USER")]
    user: Option<String>,
    /// Basic-auth password.
    #[arg(long, env = "A9S_BM_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// PEM file with the CA certificates to trust (replaces the system roots).
    #[arg(long)]
    ca_bundle: Option<std::path::PathBuf>,
    /// The a9s instance id.
    #[arg(
        long,
        default_value = "261a5e05-7312-4d61-bab8-30be9ff45a13-1706777923"
    )]
    instance: String,
    /// Sets this backup encryption key first (at least the instance's minimum length).
    #[arg(long, env = "A9S_BM_ENCRYPTION_KEY", hide_env_values = true)]
    encryption_key: Option<String>,
    /// Keeps the backup after the restore (it is deleted by default).
    #[arg(long)]
    keep_backup: bool,
    /// Gives up waiting for a backup or restore after this many seconds.
    #[arg(long, default_value_t = 1800)]
    wait_secs: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            let mut src = e.source();
            while let Some(s) = src {
                eprintln!("  caused by: {s}");
                src = s.source();
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    // Keeps the fake alive for the whole run when no URL was given.
    let mut _fake = None;
    let mut config = match &cli.url {
        Some(url) => match (&cli.user, &cli.password) {
            (Some(u), Some(p)) => HttpConfig::new(url).basic_auth(u, p),
            _ => return Err("--user and --password (or A9S_BM_PASSWORD) are required".into()),
        },
        None => {
            let fake = FakeBackupManager::start(FakeBackupManagerConfig {
                queued_for: Duration::from_millis(300),
                running_for: Duration::from_millis(700),
                ..FakeBackupManagerConfig::default()
            })
            .await?;
            println!(
                "no --url given: using a fake Backup Manager at {}",
                fake.url()
            );
            let c = fake.http_config();
            _fake = Some(fake);
            c
        }
    };
    if let Some(path) = &cli.ca_bundle {
        config = config.ca_bundle_pem(std::fs::read(path)?);
    }
    let bm = BackupManager::new(config)?;
    let instance = cli.instance.as_str();
    let deadline = Duration::from_secs(cli.wait_secs);

    let cfg = bm.get_config(instance).await?;
    println!(
        "backup configuration: retention {:?} days, at least {:?} backups, type {:?}",
        cfg.retention_time, cfg.min_backup_count, cfg.backup_type
    );
    if let Some(key) = &cli.encryption_key {
        bm.update_config(
            instance,
            &BackupConfigUpdate::new().encryption_key(key.clone()),
        )
        .await?;
        println!("encryption key updated");
    }

    // The server chooses the backup id: a real controller records "create pending" before
    // this call and reconciles with list_backups after a crash.
    let backup = bm.create_backup(instance).await?;
    println!("backup {} triggered", backup.id);
    let status = wait(deadline, || async {
        Ok(bm.get_backup(instance, backup.id).await?.status)
    })
    .await?;
    if status != JobStatus::Done {
        return Err(format!("backup {} ended {status}", backup.id).into());
    }
    let b = bm.get_backup(instance, backup.id).await?;
    println!(
        "backup {} done: {} bytes, finished at {}",
        b.id,
        b.size.unwrap_or(0),
        b.finished_at.as_deref().unwrap_or("?")
    );

    let restore = bm.create_restore(instance, backup.id).await?;
    println!("restore {} of backup {} started", restore.id, backup.id);
    let status = wait(deadline, || async {
        Ok(bm.get_restore(instance, restore.id).await?.status)
    })
    .await?;
    if status != JobStatus::Done {
        return Err(format!("restore {} ended {status}", restore.id).into());
    }
    println!("restore {} done", restore.id);

    if !cli.keep_backup {
        bm.delete_backup(instance, backup.id).await?;
        println!("backup {} deleted", backup.id);
    }
    let backups = bm.list_backups(instance).await?;
    println!("{} backup(s) known for the instance:", backups.len());
    for b in backups {
        println!(
            "  {} {} {}",
            b.id,
            b.status,
            b.triggered_at.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

/// Polls `status` until it is terminal, with a growing delay capped at 10 s.
async fn wait<F, Fut>(
    deadline: Duration,
    mut status: F,
) -> Result<JobStatus, Box<dyn std::error::Error>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<JobStatus, Box<dyn std::error::Error>>>,
{
    let start = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(200);
    loop {
        let s = status().await?;
        println!("  ... {s}");
        if s.is_terminal() {
            return Ok(s);
        }
        if start.elapsed() > deadline {
            return Err(format!("still {s} after {} s", deadline.as_secs()).into());
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 3 / 2).min(Duration::from_secs(10));
    }
}
