//! The command line: `kubectl bind <url>`, `kubectl bind apiservice …` and `kubectl bind
//! completion <shell>`, with kubectl's connection flags on every command.
//!
//! The doc comments of the flags are their `--help` text, written for a terminal (bare URLs,
//! `<placeholders>`), hence the rustdoc lints allowed here.
#![allow(rustdoc::bare_urls, rustdoc::invalid_html_tags)]

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Bind an API from a Klutch control plane into this cluster.
#[derive(Debug, Parser)]
#[command(
    name = "kubectl-bind",
    bin_name = "kubectl-bind",
    version,
    about = "Bind an API from a Klutch control plane into this cluster.",
    long_about = LONG_ABOUT,
    after_help = AFTER_HELP,
    args_conflicts_with_subcommands = true,
    max_term_width = 100
)]
pub struct Cli {
    /// The binding provider's export URL, e.g. https://bind.example.com/export.
    #[arg(value_name = "URL")]
    pub url: Option<String>,

    /// Flags of the login and binding.
    #[command(flatten)]
    pub bind: BindFlags,

    /// Flags shared with `apiservice`.
    #[command(flatten)]
    pub common: CommonFlags,

    /// kubectl's connection flags.
    #[command(flatten)]
    pub kube: KubeFlags,

    /// A subcommand instead of a URL.
    #[command(subcommand)]
    pub command: Option<Command>,
}

const LONG_ABOUT: &str = "Bind an API from a Klutch control plane into this cluster.

'kubectl bind <url>' fetches the provider's description from <url>, logs you in through
your browser (or, with --non-interactive, through a device code), lets you pick an API,
asks your consent for each permission the provider claims, installs the konnector and
creates the APIServiceBinding in namespace klutch-bind.";

const AFTER_HELP: &str = "Examples:
  # Log in through the browser and bind an API interactively
  kubectl bind https://bind.example.com/export

  # CI/CD: log in with a device code and accept all permission claims
  kubectl bind https://bind.example.com/export --non-interactive \\
      --resource postgresqlinstances.anynines.com --accept-claims=all

  # Print the export request instead of binding (GitOps)
  kubectl bind https://bind.example.com/export --dry-run -o yaml > request.yaml
  kubectl bind apiservice -f request.yaml --remote-kubeconfig provider.kubeconfig

Exit codes: 0 ok, 1 cluster or I/O error, 2 usage, 3 provider unreachable or not a
klutch provider, 4 login failed or timed out, 5 export request failed, 6 conflicting
binding or CRD, 7 consent missing or a required claim declined, 8 konnector install
refused, 130 interrupted.";

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Bind the APIs of an APIServiceExportRequest manifest (URL, file or stdin) with a provider
    /// kubeconfig you already have.
    #[command(after_help = APISERVICE_AFTER_HELP)]
    Apiservice(Box<ApiserviceArgs>),
    /// Print a shell completion script, e.g. `source <(kubectl-bind completion bash)`.
    Completion {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

const APISERVICE_AFTER_HELP: &str = "Examples:
  kubectl bind apiservice -f request.yaml --remote-kubeconfig provider.kubeconfig
  kubectl bind apiservice --remote-kubeconfig-namespace klutch-bind \\
      --remote-kubeconfig-name kubeconfig-x7k2p -f - < request.yaml";

/// `kubectl bind apiservice`.
#[derive(Debug, Args)]
pub struct ApiserviceArgs {
    /// URL of the APIServiceExportRequest manifest (or use -f).
    #[arg(value_name = "URL", conflicts_with = "file")]
    pub url: Option<String>,

    /// File with the APIServiceExportRequest manifest; `-` reads standard input.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<String>,

    /// Kubeconfig file of the provider (the one the backend issued).
    #[arg(long, env = "KUBECTL_BIND_REMOTE_KUBECONFIG", value_name = "FILE",
          conflicts_with_all = ["remote_kubeconfig_namespace", "remote_kubeconfig_name"])]
    pub remote_kubeconfig: Option<PathBuf>,

    /// Namespace of the Secret (key `kubeconfig`) holding the provider kubeconfig.
    #[arg(long, value_name = "NAMESPACE", requires = "remote_kubeconfig_name")]
    pub remote_kubeconfig_namespace: Option<String>,

    /// Name of the Secret (key `kubeconfig`) holding the provider kubeconfig.
    #[arg(long, value_name = "NAME", requires = "remote_kubeconfig_namespace")]
    pub remote_kubeconfig_name: Option<String>,

    /// Namespace on the provider for the request; default: the provider kubeconfig's namespace.
    #[arg(long, value_name = "NAMESPACE")]
    pub remote_namespace: Option<String>,

    /// Flags shared with `kubectl bind <url>`.
    #[command(flatten)]
    pub common: CommonFlags,
}

/// Output formats of `--dry-run`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// YAML documents separated by `---`.
    #[default]
    Yaml,
    /// One JSON document per request.
    Json,
}

/// Flags of `kubectl bind <url>` only.
#[derive(Debug, Args, Default)]
pub struct BindFlags {
    /// Open the login page in a browser (default: when a display is available). The URL is
    /// always printed.
    #[arg(long, env = "KUBECTL_BIND_OPEN_BROWSER", num_args = 0..=1, default_missing_value = "true",
          value_name = "BOOL")]
    pub open_browser: Option<bool>,

    /// Log in without a browser on this machine (device authorization, for CI/CD): prints a
    /// verification URL and code to open anywhere. Needs --resource.
    #[arg(long, visible_alias = "device", env = "KUBECTL_BIND_NON_INTERACTIVE")]
    pub non_interactive: bool,

    /// With --non-interactive: the API to bind, as <plural>.<group> (e.g.
    /// postgresqlinstances.anynines.com).
    #[arg(
        long,
        env = "KUBECTL_BIND_RESOURCE",
        value_name = "PLURAL.GROUP",
        requires = "non_interactive"
    )]
    pub resource: Option<String>,
}

/// Flags of both `kubectl bind <url>` and `kubectl bind apiservice`.
#[derive(Debug, Args, Default)]
pub struct CommonFlags {
    /// Print the APIServiceExportRequests instead of binding, then stop.
    #[arg(short = 'd', long)]
    pub dry_run: bool,

    /// Output format of --dry-run.
    #[arg(short = 'o', long, value_enum, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,

    /// Answer the permission-claim prompts: `all`, `none`, or a comma-separated list of claimed
    /// resources to accept (`secrets`, `configmaps`, or `<resource>.<group>`); the others are
    /// rejected. Required when standard input is not a terminal.
    #[arg(
        long,
        env = "KUBECTL_BIND_ACCEPT_CLAIMS",
        value_name = "all|none|RESOURCE[,…]"
    )]
    pub accept_claims: Option<String>,

    /// How long to wait for the login and for the export request, e.g. 90s, 10m.
    #[arg(long, env = "KUBECTL_BIND_TIMEOUT", default_value = "10m", value_parser = klutch_sdk::runtime::duration::parse,
          value_name = "DURATION")]
    pub timeout: Duration,

    /// Do not install or upgrade the konnector.
    #[arg(long, env = "KUBECTL_BIND_SKIP_KONNECTOR")]
    pub skip_konnector: bool,

    /// Deploy this konnector image (always re-applied), instead of `<repository>:<this CLI's
    /// version>`. The only way to replace Klutch's Go konnector or one not recognised as ours.
    #[arg(long, env = "KUBECTL_BIND_KONNECTOR_IMAGE", value_name = "IMAGE")]
    pub konnector_image: Option<String>,

    /// Replace an installed konnector of ours that is newer than this CLI.
    #[arg(long)]
    pub downgrade_konnector: bool,

    /// The repository of our konnector images: deployed as `<repository>:<version>`, and an
    /// installed konnector from it (or labelled app.kubernetes.io/part-of=klutch-rs) counts as
    /// ours. Klutch's Go konnector (public.ecr.aws/w5n9a2g2/klutch/konnector) never does.
    #[arg(long, env = "KUBECTL_BIND_KONNECTOR_REPOSITORY", value_name = "REPOSITORY",
          default_value_t = klutch_sdk::deploy::konnector::default_repository())]
    pub konnector_repository: String,

    /// PEM file with CA certificates to trust for the provider's https URLs, besides the
    /// system's.
    #[arg(long, env = "KUBECTL_BIND_PROVIDER_CA_FILE", value_name = "FILE")]
    pub provider_ca_file: Option<PathBuf>,

    /// Accepted for compatibility with Klutch; does nothing.
    #[arg(long, hide = true)]
    pub no_banner: bool,
}

/// kubectl's global connection flags, applied to the kubeconfig like kubectl does.
#[derive(Clone, Debug, Args, Default)]
pub struct KubeFlags {
    /// Path to the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "FILE", global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, value_name = "NAME", global = true)]
    pub context: Option<String>,
    /// The kubeconfig cluster to use.
    #[arg(long, value_name = "NAME", global = true)]
    pub cluster: Option<String>,
    /// The kubeconfig user to use.
    #[arg(long, value_name = "NAME", global = true)]
    pub user: Option<String>,
    /// Namespace for this request (klutch-bind objects always live in klutch-bind).
    #[arg(short = 'n', long, value_name = "NAMESPACE", global = true)]
    pub namespace: Option<String>,
    /// The address and port of the Kubernetes API server.
    #[arg(short = 's', long, value_name = "URL", global = true)]
    pub server: Option<String>,
    /// Bearer token for authentication to the API server.
    #[arg(long, value_name = "TOKEN", global = true)]
    pub token: Option<String>,
    /// Username for basic authentication to the API server.
    #[arg(long, value_name = "NAME", global = true)]
    pub username: Option<String>,
    /// Password for basic authentication to the API server.
    #[arg(long, value_name = "PASSWORD", global = true)]
    pub password: Option<String>,
    /// Path to a cert file for the certificate authority.
    #[arg(long, value_name = "FILE", global = true)]
    pub certificate_authority: Option<PathBuf>,
    /// Do not verify the API server's certificate (insecure).
    #[arg(long, global = true)]
    pub insecure_skip_tls_verify: bool,
    /// Server name to use for server certificate validation.
    #[arg(long, value_name = "NAME", global = true)]
    pub tls_server_name: Option<String>,
    /// Log verbosity (accepted for kubectl compatibility).
    #[arg(
        short = 'v',
        long = "v",
        value_name = "LEVEL",
        global = true,
        hide_short_help = true
    )]
    pub verbosity: Option<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_and_subcommands_parse() {
        let cli = Cli::try_parse_from([
            "kubectl-bind",
            "https://bind.example.com/export",
            "--context",
            "app",
            "--accept-claims=all",
            "-d",
            "-o",
            "json",
        ])
        .unwrap();
        assert_eq!(cli.url.as_deref(), Some("https://bind.example.com/export"));
        assert_eq!(cli.kube.context.as_deref(), Some("app"));
        assert!(cli.common.dry_run);
        assert_eq!(cli.common.output, Some(OutputFormat::Json));
        let cli = Cli::try_parse_from([
            "kubectl-bind",
            "apiservice",
            "-f",
            "-",
            "--remote-kubeconfig",
            "k",
            "-n",
            "x",
        ])
        .unwrap();
        assert_eq!(cli.kube.namespace.as_deref(), Some("x"));
        let Some(Command::Apiservice(args)) = cli.command else {
            panic!("apiservice");
        };
        assert_eq!(args.file.as_deref(), Some("-"));
        // Secret name and namespace come together.
        assert!(
            Cli::try_parse_from([
                "kubectl-bind",
                "apiservice",
                "-f",
                "x",
                "--remote-kubeconfig-name",
                "s"
            ])
            .is_err()
        );
        // --resource needs --non-interactive.
        assert!(
            Cli::try_parse_from(["kubectl-bind", "http://x/export", "--resource", "a.b"]).is_err()
        );
        assert!(
            Cli::try_parse_from([
                "kubectl-bind",
                "http://x/export",
                "--device",
                "--resource",
                "a.b"
            ])
            .unwrap()
            .bind
            .non_interactive
        );
    }

    #[test]
    fn the_command_definition_is_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }
}
