//! Where `kubectl bind` reads and writes: the terminal for a user, buffers for tests.
//!
//! Progress goes to stderr; the consent prompt, dry-run objects and the final table go to
//! stdout (spec §6.6).

use std::io::{BufRead, IsTerminal as _, Write};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

/// A writer shared between the test and the CLI.
#[derive(Clone, Default, Debug)]
pub struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl SharedBuffer {
    /// Everything written so far, lossily decoded.
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("buffer lock")).into_owned()
    }
}

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("buffer lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Opens a URL in a browser; returns whether that worked.
pub type BrowserOpener = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// The process's terminal, or buffers in tests.
pub struct Io {
    /// Results: prompts, dry-run objects, tables.
    pub stdout: Box<dyn Write + Send>,
    /// Progress and errors.
    pub stderr: Box<dyn Write + Send>,
    /// Answers to the consent prompt.
    pub stdin: Box<dyn BufRead + Send>,
    /// Whether stdin is a terminal (else consent needs `--accept-claims`).
    pub interactive: bool,
    /// Whether to colour stderr (off under `NO_COLOR` or when stderr is not a terminal).
    pub color: bool,
    /// Whether stderr is a terminal (animated progress instead of dots).
    pub spinner: bool,
    /// Whether a browser can be opened when `--open-browser` is not given.
    pub display: bool,
    /// How to open the browser.
    pub browser: BrowserOpener,
    /// Receives every login URL the CLI prints (for tests and wrappers that drive the login).
    pub login_urls: Option<UnboundedSender<String>>,
    /// Cancelled on Ctrl-C: the CLI undoes what it did and exits with 130.
    pub cancel: CancellationToken,
    /// The CLI's version as `vX.Y.Z`; decides the konnector image.
    pub version: String,
}

/// The version this binary was built as: `KLUTCH_VERSION` at build time, else the crate version.
pub fn build_version() -> String {
    match option_env!("KLUTCH_VERSION") {
        Some(v) if !v.is_empty() => {
            if v.starts_with('v') {
                v.to_string()
            } else {
                format!("v{v}")
            }
        }
        _ => format!("v{}", env!("CARGO_PKG_VERSION")),
    }
}

impl Io {
    /// The real terminal. Ctrl-C handling is the caller's (see `main.rs`).
    pub fn stdio() -> Io {
        let stderr_tty = std::io::stderr().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let display = cfg!(any(target_os = "macos", target_os = "windows"))
            || std::env::var_os("DISPLAY").is_some()
            || std::env::var_os("WAYLAND_DISPLAY").is_some();
        Io {
            stdout: Box::new(std::io::stdout()),
            stderr: Box::new(std::io::stderr()),
            stdin: Box::new(std::io::BufReader::new(std::io::stdin())),
            interactive: std::io::stdin().is_terminal(),
            color: stderr_tty && !no_color,
            spinner: stderr_tty,
            display,
            browser: Box::new(|url| webbrowser::open(url).is_ok()),
            login_urls: None,
            cancel: CancellationToken::new(),
            version: build_version(),
        }
    }

    /// Buffers for tests: stdin from `input`, no terminal, no colour, no browser.
    pub fn capture(input: &str) -> (Io, SharedBuffer, SharedBuffer) {
        let out = SharedBuffer::default();
        let err = SharedBuffer::default();
        let io = Io {
            stdout: Box::new(out.clone()),
            stderr: Box::new(err.clone()),
            stdin: Box::new(std::io::Cursor::new(input.as_bytes().to_vec())),
            interactive: false,
            color: false,
            spinner: false,
            display: false,
            browser: Box::new(|_| false),
            login_urls: None,
            cancel: CancellationToken::new(),
            version: build_version(),
        };
        (io, out, err)
    }

    /// A line of progress on stderr.
    pub fn progress(&mut self, line: impl AsRef<str>) {
        let _ = writeln!(self.stderr, "{}", line.as_ref());
        let _ = self.stderr.flush();
    }

    /// Progress text without a newline (for dots).
    pub fn progress_part(&mut self, text: &str) {
        let _ = write!(self.stderr, "{text}");
        let _ = self.stderr.flush();
    }

    /// Redraws a one-line spinner (only on a terminal): `<frame> <label> (<seconds>s)`.
    pub fn spin(&mut self, label: &str, seconds: u64) {
        if self.spinner {
            const FRAMES: [char; 4] = ['|', '/', '-', '\\'];
            let frame = FRAMES[(seconds % 4) as usize];
            let _ = write!(self.stderr, "\r{frame} {label} ({seconds}s) ");
            let _ = self.stderr.flush();
        }
    }

    /// Ends a spinner line.
    pub fn end_spin(&mut self) {
        if self.spinner {
            let _ = write!(self.stderr, "\r\x1b[2K");
            let _ = self.stderr.flush();
        }
    }

    /// A warning on stderr (yellow on a colour terminal).
    pub fn warn(&mut self, line: impl AsRef<str>) {
        if self.color {
            let _ = writeln!(self.stderr, "\x1b[33m{}\x1b[0m", line.as_ref());
        } else {
            let _ = writeln!(self.stderr, "{}", line.as_ref());
        }
    }

    /// The final error line on stderr (red `error:` on a colour terminal).
    pub fn error(&mut self, line: impl AsRef<str>) {
        if self.color {
            let _ = writeln!(self.stderr, "\x1b[31merror:\x1b[0m {}", line.as_ref());
        } else {
            let _ = writeln!(self.stderr, "error: {}", line.as_ref());
        }
    }

    /// Text on stdout.
    pub fn out(&mut self, text: impl AsRef<str>) -> std::io::Result<()> {
        self.stdout.write_all(text.as_ref().as_bytes())?;
        self.stdout.flush()
    }

    /// Reads one line of stdin; `None` at end of input, `Err(Interrupted)` when cancelled
    /// (Ctrl-C) while waiting for the user. The blocking read runs on a blocking thread, so a
    /// cancellation does not wait for the user to press Enter.
    pub async fn read_line(&mut self) -> std::io::Result<Option<String>> {
        let mut stdin = std::mem::replace(&mut self.stdin, Box::new(std::io::empty()));
        let read = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            let result = stdin.read_line(&mut line).map(|n| (n, line));
            (stdin, result)
        });
        tokio::select! {
            joined = read => {
                let (stdin, result) = joined.map_err(std::io::Error::other)?;
                self.stdin = stdin;
                match result? {
                    (0, _) => Ok(None),
                    (_, line) => Ok(Some(line)),
                }
            }
            () = self.cancel.cancelled() => Err(std::io::Error::new(
                std::io::ErrorKind::Interrupted,
                "interrupted while waiting for an answer",
            )),
        }
    }
}
