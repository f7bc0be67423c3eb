//! Child processes that cannot outlive their owner.
//!
//! Each component runs under a small `sh` guard in a process group of its own:
//!
//! - the guard forwards SIGTERM to the component and waits for it, so stopping the group is a
//!   graceful shutdown that the owner can wait for;
//! - the guard's standard input is a pipe held by the owner. When the owner goes away in any way
//!   (drop, panic, `exit`, SIGKILL), the pipe closes and the guard stops the component (SIGTERM,
//!   then SIGKILL after 3 s). That is what makes a `static` environment, which is never dropped,
//!   leave nothing behind when the test binary exits.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::{Error, Result};

/// The guard: runs "$@" in the background, forwards SIGTERM, and stops it when stdin closes.
const GUARD: &str = r#"
exec 3<&0
"$@" </dev/null 3<&- &
c=$!
trap 'kill -TERM "$c" 2>/dev/null' TERM INT HUP
(
  read -r _ <&3 || true
  kill -TERM "$c" 2>/dev/null
  i=0
  while kill -0 "$c" 2>/dev/null && [ "$i" -lt 30 ]; do sleep 0.1; i=$((i+1)); done
  kill -KILL "$c" 2>/dev/null
) </dev/null &
w=$!
exec 3<&-
s=0
while :; do
  wait "$c"; s=$?
  kill -0 "$c" 2>/dev/null || break
done
kill "$w" 2>/dev/null
exit "$s"
"#;

/// The janitor: once its stdin closes, waits for the listed process groups to end, then removes
/// the directory.
const JANITOR: &str = r#"
read -r _ || true
i=0
while [ "$i" -lt 300 ]; do
  alive=0
  for g in $(cat "$1/.pgids" 2>/dev/null); do
    if kill -0 -- "-$g" 2>/dev/null; then alive=1; fi
  done
  [ "$alive" = 0 ] && break
  sleep 0.1; i=$((i+1))
done
rm -rf -- "$1"
"#;

/// A running component (or one that has exited and not been reaped yet).
#[derive(Debug)]
pub(crate) struct Process {
    component: String,
    child: Child,
    stdin: Option<ChildStdin>,
    log: PathBuf,
    /// Set once the guard has been reaped; its pgid must not be signalled after that, since the
    /// id may be reused.
    status: Option<ExitStatus>,
}

impl Process {
    /// Starts `program` with `args` under a guard, logging stdout and stderr to `log`. The
    /// process group id is appended to `<run_dir>/.pgids` for the janitor.
    pub(crate) fn spawn(
        component: impl Into<String>,
        program: &Path,
        args: &[String],
        log: &Path,
        run_dir: &Path,
    ) -> Result<Self> {
        Self::spawn_with_env(component, program, args, log, run_dir, &[], false)
    }

    /// [`spawn`](Self::spawn) with extra environment variables; `append` keeps what the log
    /// holds already (a restarted component).
    pub(crate) fn spawn_with_env(
        component: impl Into<String>,
        program: &Path,
        args: &[String],
        log: &Path,
        run_dir: &Path,
        env: &[(&str, &std::ffi::OsStr)],
        append: bool,
    ) -> Result<Self> {
        let component = component.into();
        let out = OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(log)
            .map_err(|source| Error::Write {
                path: log.to_owned(),
                source,
            })?;
        let err = out.try_clone().map_err(|source| Error::Write {
            path: log.to_owned(),
            source,
        })?;
        let child = Command::new("sh")
            .arg("-c")
            .arg(GUARD)
            .arg("sh")
            .arg(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(|source| Error::Spawn {
                component: component.clone(),
                source,
            })?;
        let pgids = run_dir.join(".pgids");
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&pgids)
            .and_then(|mut f| writeln!(f, "{}", child.id()))
            .map_err(|source| Error::Write {
                path: pgids,
                source,
            })?;
        let mut process = Process {
            component,
            child,
            stdin: None,
            log: log.to_owned(),
            status: None,
        };
        process.stdin = process.child.stdin.take();
        Ok(process)
    }

    /// The component's name, as used in errors.
    pub(crate) fn component(&self) -> &str {
        &self.component
    }

    /// The log file.
    pub(crate) fn log(&self) -> &Path {
        &self.log
    }

    /// The process group id (the guard's pid).
    pub(crate) fn pgid(&self) -> u32 {
        self.child.id()
    }

    /// `Some` once the component has exited.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// An [`Error::Exited`] for this process, if it has exited.
    pub(crate) fn check_running(&mut self) -> Result<()> {
        match self.exited() {
            None => Ok(()),
            Some(status) => Err(Error::Exited {
                component: self.component.clone(),
                status: status.to_string(),
                log: self.log.clone(),
                tail: log_tail(&self.log, 25),
            }),
        }
    }

    /// Asks the component to shut down (SIGTERM to its group).
    pub(crate) fn terminate(&mut self) {
        self.signal(Signal::SIGTERM);
    }

    /// Kills the component at once (SIGKILL to its group) and reaps the guard.
    pub(crate) fn kill(&mut self) {
        self.signal(Signal::SIGKILL);
        if self.status.is_none() {
            self.status = self.child.wait().ok();
        }
        self.stdin = None;
    }

    /// Waits until the component has exited after [`terminate`](Self::terminate), up to
    /// `deadline`; kills it if it is still running then.
    pub(crate) fn wait_or_kill(&mut self, deadline: Instant) {
        while self.exited().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.exited().is_none() {
            tracing::warn!(component = %self.component, "did not stop in time; killing it");
        }
        self.kill();
    }

    /// Graceful stop for async callers: SIGTERM, then up to `grace` of polling, then SIGKILL.
    pub(crate) async fn stop(&mut self, grace: Duration) {
        self.terminate();
        let deadline = Instant::now() + grace;
        while self.exited().is_none() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.kill();
    }

    fn signal(&mut self, signal: Signal) {
        if self.exited().is_some() {
            return;
        }
        if let Ok(pgid) = i32::try_from(self.child.id()) {
            // ESRCH only means the group is gone already.
            let _ = killpg(Pid::from_raw(pgid), signal);
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.exited().is_none() {
            self.terminate();
            self.wait_or_kill(Instant::now() + Duration::from_secs(5));
        }
    }
}

/// Removes a run directory when its owner goes away without cleaning up (see module docs).
#[derive(Debug)]
pub(crate) struct Janitor {
    child: Child,
}

impl Janitor {
    pub(crate) fn spawn(run_dir: &Path) -> Result<Self> {
        let child = Command::new("sh")
            .arg("-c")
            .arg(JANITOR)
            .arg("sh")
            .arg(run_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|source| Error::Spawn {
                component: "janitor".into(),
                source,
            })?;
        Ok(Janitor { child })
    }

    /// Lets the janitor finish now: the owner has stopped every process and removed the
    /// directory itself (or wants it kept, in which case `keep` is true).
    pub(crate) fn finish(mut self, keep: bool) {
        if keep {
            let _ = self.child.kill();
        } else {
            drop(self.child.stdin.take());
        }
        let _ = self.child.wait();
    }
}

/// The last `lines` lines of a log file (at most 64 KiB are read), for error messages.
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(64 * 1024);
    let mut buf = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err() || file.read_to_end(&mut buf).is_err() {
        return format!("(log at {} unreadable)", path.display());
    }
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    let from = all.len().saturating_sub(lines);
    all[from..].join("\n")
}
