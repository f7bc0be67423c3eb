//! Logging of a binary: text or JSON lines on stderr through `tracing`, `RUST_LOG` overriding the
//! binary's default filter, and no ANSI colour codes when stderr is not a terminal (a pod log, a
//! file, a pipe).
//!
//! Each binary keeps its own defaults, e.g. a klog-style `--v` level or a `--debug` switch:
//!
//! ```no_run
//! use klutch_sdk::runtime::logging::{LogFormat, Logging};
//!
//! # fn demo(verbosity: u8, format: LogFormat) -> Result<(), klutch_sdk::runtime::logging::Error> {
//! let level = match verbosity {
//!     0 | 1 => "warn",
//!     2 | 3 => "info",
//!     _ => "debug",
//! };
//! Logging::new(format!("{level},kube_client=warn,hyper=warn"))
//!     .format(format)
//!     .init()?;
//! # Ok(())
//! # }
//! ```
//!
//! [`LogFormat`] is a clap value (`--log-format text|json`) and also parses with [`str::parse`].

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// The environment variable that overrides the default filter.
pub const ENV: &str = "RUST_LOG";

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// `text` or `json`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

impl std::fmt::Display for LogFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for LogFormat {
    type Err = Error;

    /// `text` or `json`, in any case.
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(Error::Format(s.to_owned())),
        }
    }
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Not `text` or `json`.
    #[error("unknown log format {0:?} (use text or json)")]
    Format(String),
    /// The binary's default filter does not parse.
    #[error("invalid default log filter {filter:?}")]
    Filter {
        /// The filter.
        filter: String,
        /// The parse error.
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    /// A global `tracing` subscriber is already installed.
    #[error("install the log subscriber")]
    Install(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How a binary logs; [`init`](Logging::init) installs it as the global subscriber.
#[derive(Clone, Debug)]
pub struct Logging {
    default_filter: String,
    format: LogFormat,
    ansi: Option<bool>,
}

impl Logging {
    /// Text logs filtered by `default_filter` (an [`EnvFilter`] directive such as
    /// `info,kube_client=warn`) unless `RUST_LOG` holds a valid filter.
    pub fn new(default_filter: impl Into<String>) -> Self {
        Logging {
            default_filter: default_filter.into(),
            format: LogFormat::Text,
            ansi: None,
        }
    }

    /// The output format.
    pub fn format(mut self, format: LogFormat) -> Self {
        self.format = format;
        self
    }

    /// Forces ANSI colours on or off (default: on only when stderr is a terminal).
    pub fn ansi(mut self, ansi: bool) -> Self {
        self.ansi = Some(ansi);
        self
    }

    /// Whether the output has ANSI colours, given whether stderr is a terminal. JSON never has.
    pub fn uses_ansi(&self, stderr_is_terminal: bool) -> bool {
        self.format == LogFormat::Text && self.ansi.unwrap_or(stderr_is_terminal)
    }

    /// The filter: `rust_log` (the value of `RUST_LOG`) when set and valid, else the default.
    ///
    /// ```
    /// use klutch_sdk::runtime::logging::Logging;
    /// let logging = Logging::new("info");
    /// assert_eq!(logging.filter(None).unwrap().to_string(), "info");
    /// assert_eq!(logging.filter(Some("debug")).unwrap().to_string(), "debug");
    /// ```
    pub fn filter(&self, rust_log: Option<&str>) -> Result<EnvFilter> {
        if let Some(filter) = rust_log.and_then(|v| EnvFilter::try_new(v).ok()) {
            return Ok(filter);
        }
        EnvFilter::try_new(&self.default_filter).map_err(|source| Error::Filter {
            filter: self.default_filter.clone(),
            source,
        })
    }

    /// Installs the global subscriber: [`filter`](Self::filter) with the process's `RUST_LOG`,
    /// lines on stderr in the chosen format.
    pub fn init(self) -> Result<()> {
        let filter = self.filter(std::env::var(ENV).ok().as_deref())?;
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(self.uses_ansi(std::io::stderr().is_terminal()));
        match self.format {
            LogFormat::Json => builder.json().try_init(),
            LogFormat::Text => builder.try_init(),
        }
        .map_err(Error::Install)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_overrides_the_default_when_valid() {
        let logging = Logging::new("warn,kube_client=warn");
        assert_eq!(
            logging.filter(None).unwrap().to_string(),
            "kube_client=warn,warn"
        );
        assert_eq!(logging.filter(Some("trace")).unwrap().to_string(), "trace");
        // An invalid RUST_LOG falls back to the default, as EnvFilter::try_from_default_env did.
        assert_eq!(
            logging.filter(Some("a=b=c")).unwrap().to_string(),
            "kube_client=warn,warn"
        );
        assert!(matches!(
            Logging::new("a=b=c").filter(None),
            Err(Error::Filter { .. })
        ));
    }

    #[test]
    fn colours_only_on_a_terminal_and_never_in_json() {
        let text = Logging::new("info");
        assert!(text.uses_ansi(true));
        assert!(!text.uses_ansi(false));
        assert!(!text.clone().ansi(false).uses_ansi(true));
        assert!(text.clone().ansi(true).uses_ansi(false));
        assert!(!Logging::new("info").format(LogFormat::Json).uses_ansi(true));
    }

    #[test]
    fn formats_parse_from_text_and_clap() {
        use clap::Parser as _;
        assert_eq!("json".parse::<LogFormat>().unwrap(), LogFormat::Json);
        assert_eq!("Text".parse::<LogFormat>().unwrap(), LogFormat::Text);
        assert!(matches!("xml".parse::<LogFormat>(), Err(Error::Format(_))));
        assert_eq!(LogFormat::Json.to_string(), "json");
        #[derive(clap::Parser)]
        struct Cli {
            #[arg(long, value_enum, default_value_t = LogFormat::Text)]
            log_format: LogFormat,
        }
        assert_eq!(
            Cli::try_parse_from(["x"]).unwrap().log_format,
            LogFormat::Text
        );
        assert_eq!(
            Cli::try_parse_from(["x", "--log-format=json"])
                .unwrap()
                .log_format,
            LogFormat::Json
        );
        assert!(Cli::try_parse_from(["x", "--log-format=xml"]).is_err());
    }
}
