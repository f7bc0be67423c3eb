//! `klutch-testenv` against the real binaries: it starts clusters that kubectl can use, and
//! nothing survives it, not even a SIGKILL.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

include!("../../cli_contract.rs");

cli_contract_tests!("klutch-testenv", env!("CARGO_BIN_EXE_klutch-testenv"));

fn alive(pid: u64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Polls `cond` every 100 ms for up to `secs` seconds.
fn eventually(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    cond()
}

/// Starts `klutch-testenv up` and waits until it has written its state file.
fn up(state: &Path, extra: &[&str]) -> (std::process::Child, serde_json::Value) {
    up_with_env(state, extra, &[])
}

/// [`up`] with extra environment variables.
fn up_with_env(
    state: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (std::process::Child, serde_json::Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_klutch-testenv"))
        .arg("up")
        .arg("--state")
        .arg(state)
        .args(extra)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start klutch-testenv");
    // Reading stdout until "Press Ctrl-C" means the state file is complete.
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut printed = String::new();
    for line in stdout.lines() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if line.starts_with("Press Ctrl-C") {
            break;
        }
    }
    assert!(printed.contains("kubectl --kubeconfig"), "{printed}");
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state).expect("state file")).unwrap();
    (child, state)
}

fn pids(state: &serde_json::Value) -> Vec<u64> {
    state["pids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect()
}

#[test]
fn up_serves_kubectl_and_sigkill_leaves_nothing_behind() {
    let scratch = tempfile_dir();
    let state_path = scratch.join("state.json");
    let (mut child, state) = up(&state_path, &["--cluster", "cp", "--cluster", "app"]);
    let clusters = state["clusters"].as_array().unwrap();
    assert_eq!(clusters.len(), 2);
    let run_dir = PathBuf::from(state["dir"].as_str().unwrap());
    let pids = pids(&state);
    assert_eq!(
        pids.len(),
        5,
        "etcd + 2 apiservers + 2 controller managers: {pids:?}"
    );

    // Each printed kubeconfig works with kubectl.
    let kubectl = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/testbin/kubectl");
    let kubectl = std::env::var_os("KLUTCH_TESTBIN_DIR")
        .map_or(kubectl, |d| PathBuf::from(d).join("kubectl"));
    for cluster in clusters {
        let out = Command::new(&kubectl)
            .arg("--kubeconfig")
            .arg(cluster["kubeconfig"].as_str().unwrap())
            .args(["get", "namespace", "default", "-o", "name"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "namespace/default"
        );
    }

    // SIGKILL gives the process no chance to clean up; the guards and the janitor must.
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    assert!(
        eventually(30, || pids.iter().all(|p| !alive(*p))),
        "no component survives: {pids:?}"
    );
    assert!(
        eventually(30, || !run_dir.exists()),
        "{} is removed",
        run_dir.display()
    );
    let _ = std::fs::remove_dir_all(&scratch);
}

#[test]
fn sigterm_stops_gracefully_and_removes_the_state_file() {
    let scratch = tempfile_dir();
    let state_path = scratch.join("state.json");
    let (mut child, state) = up(
        &state_path,
        &["--cluster", "solo", "--no-controller-manager"],
    );
    let run_dir = PathBuf::from(state["dir"].as_str().unwrap());
    let pids = pids(&state);
    assert_eq!(pids.len(), 2, "etcd + apiserver: {pids:?}");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(
        pids.iter().all(|p| !alive(*p)),
        "stopped before exiting: {pids:?}"
    );
    assert!(!run_dir.exists());
    assert!(!state_path.exists());
    let _ = std::fs::remove_dir_all(&scratch);
}

/// `--crossplane` (here through its environment variable) runs Crossplane core and the function
/// against the cluster: the function is registered, both show up in the state file, and SIGTERM
/// stops them with the rest.
#[test]
fn up_runs_crossplane_from_the_environment_and_stops_it() {
    let scratch = tempfile_dir();
    let state_path = scratch.join("state.json");
    let (mut child, state) = up_with_env(
        &state_path,
        &["--cluster", "cp"],
        &[("KLUTCH_TESTENV_CROSSPLANE", "cp")],
    );
    let cluster = &state["clusters"][0];
    let crossplane = &cluster["crossplane"];
    assert!(
        crossplane["functionEndpoint"]
            .as_str()
            .is_some_and(|e| e.starts_with("127.0.0.1:")),
        "{crossplane}"
    );
    let pids = pids(&state);
    assert_eq!(
        pids.len(),
        5,
        "etcd, apiserver, controller manager, core, function: {pids:?}"
    );
    let kubectl = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/testbin/kubectl");
    let kubectl = std::env::var_os("KLUTCH_TESTBIN_DIR")
        .map_or(kubectl, |d| PathBuf::from(d).join("kubectl"));
    let out = Command::new(&kubectl)
        .arg("--kubeconfig")
        .arg(cluster["kubeconfig"].as_str().unwrap())
        .args(["get", "functionrevisions.pkg.crossplane.io", "-o"])
        .arg("jsonpath={.items[0].status.endpoint}")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        crossplane["functionEndpoint"].as_str().unwrap(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(
        pids.iter().all(|p| !alive(*p)),
        "stopped before exiting: {pids:?}"
    );
    let _ = std::fs::remove_dir_all(&scratch);
}

#[test]
fn missing_binaries_fail_with_the_fix() {
    let out = Command::new(env!("CARGO_BIN_EXE_klutch-testenv"))
        .args(["up", "--bin-dir", "/nonexistent/bins"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("test binary `etcd` not found in /nonexistent/bins"),
        "{err}"
    );
    assert!(err.contains("testbins/build.sh"), "{err}");
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "klutch-testenv-cli-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let dir = PathBuf::from(dir.to_string_lossy().replace(['(', ')'], ""));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The README's main job (`scripts/demo` runs `klutch-testenv demo`): the whole journey through
/// Crossplane and provider-anynines to the development broker completes and says so, shows the
/// credentials Secret's keys but not its values, and runs `select version()` through them.
#[test]
fn demo_runs_the_whole_flow() {
    let out = Command::new(env!("CARGO_BIN_EXE_klutch-testenv"))
        .args(["demo", "--exit-after", "0"])
        .output()
        .expect("run klutch-testenv demo");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "demo failed:\n{stderr}\n{stdout}");
    for line in [
        "🔑 Successfully authenticated",
        "✅ Created APIServiceBinding postgresqlinstances.anynines.com",
        "✅ Created APIServiceBinding servicebindings.anynines.com",
        "/orders, the konnector's copy in the tenant's service namespace",
        "crossplane: claim → XPostgresqlInstance",
        "app: shop/orders is Ready=True, status.managed.state = provisioned",
        "app: Secret shop/orders-app-creds with keys host, hosts, name, password, port, uri, username (values not shown)",
        "development broker: database a9s_i",
        "app → PostgreSQL: select version()",
        "      PostgreSQL ",
        "✔ The whole journey ran in",
        "klutch-testenv: stopped",
    ] {
        assert!(stderr.contains(line), "missing {line:?} in:\n{stderr}");
    }
    assert!(
        !stderr.contains("fake-password")
            && !stdout.contains("fake-password")
            && !stderr.contains("postgres://")
            && !stdout.contains("postgres://"),
        "the demo shows the Secret's keys, never its values"
    );
    assert!(
        stdout.contains("postgresqlinstances.anynines.com"),
        "the binding table:\n{stdout}"
    );
}
