//! How long a `TestEnv` with two clusters takes to become ready, cold and warm, and how much
//! memory one cluster uses. Prints a Markdown table for `docs/benchmarks.md`.
//!
//! ```text
//! cargo bench -p klutch-benches --bench testenv_startup            # 5 warm iterations
//! KLUTCH_BENCH_ITERATIONS=10 cargo bench -p klutch-benches --bench testenv_startup
//! ```
//!
//! "Cold" is the first start after the kernel's page cache was dropped (when the bench may write
//! `/proc/sys/vm/drop_caches`, i.e. runs as root), so the binaries are read from disk as after a
//! build or a reboot; otherwise it is just the first start in this process. "Ready" means both
//! apiservers answer `/readyz` and both controller managers have created the `default`
//! ServiceAccount.

use std::time::{Duration, Instant};

use klutch_sdk::testenv::TestEnv;

/// Resident memory (VmRSS) in KiB of every process in process group `pgid`.
fn group_rss_kib(pgid: u32) -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut total = 0;
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the parenthesised command: state, ppid, pgrp, ...
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let pgrp: Option<u32> = rest.split_whitespace().nth(2).and_then(|f| f.parse().ok());
        if pgrp != Some(pgid) {
            continue;
        }
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            total += status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    total
}

fn drop_page_cache() -> bool {
    std::process::Command::new("sync")
        .status()
        .is_ok_and(|s| s.success())
        && std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok()
}

async fn start_two() -> (TestEnv, Duration) {
    let start = Instant::now();
    let env = TestEnv::builder()
        .cluster("control-plane")
        .cluster("app")
        .start()
        .await
        .expect("start two clusters");
    (env, start.elapsed())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this once as a smoke test.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let iterations: usize = if smoke {
        1
    } else {
        std::env::var("KLUTCH_BENCH_ITERATIONS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(5)
    };

    let dropped = !smoke && drop_page_cache();
    let (env, cold) = start_two().await;
    // Memory of one cluster after it settled: its apiserver plus its controller manager.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let cluster_kib: u64 = env["app"].pids().into_iter().map(group_rss_kib).sum();
    let all_kib: u64 = env.pids().into_iter().map(group_rss_kib).sum();
    let teardown = Instant::now();
    drop(env);
    let teardown = teardown.elapsed();

    let mut warm = Vec::new();
    for _ in 0..iterations {
        let (env, took) = start_two().await;
        warm.push(took);
        drop(env);
    }
    warm.sort();

    let cold_kind = if dropped {
        "page cache dropped"
    } else {
        "first start in this process"
    };
    println!("| measurement | value |");
    println!("|---|---|");
    println!(
        "| two clusters ready, cold ({cold_kind}) | {:.2} s |",
        cold.as_secs_f64()
    );
    println!(
        "| two clusters ready, warm (n={}) | p50 {:.2} s, min {:.2} s, max {:.2} s |",
        warm.len(),
        percentile(&warm, 0.5).as_secs_f64(),
        warm[0].as_secs_f64(),
        warm[warm.len() - 1].as_secs_f64()
    );
    println!(
        "| memory of one cluster (apiserver + controller manager, RSS) | {} MiB |",
        cluster_kib / 1024
    );
    println!(
        "| memory of the whole environment (etcd + 2 clusters, RSS) | {} MiB |",
        all_kib / 1024
    );
    println!(
        "| teardown of two clusters | {:.2} s |",
        teardown.as_secs_f64()
    );
}
