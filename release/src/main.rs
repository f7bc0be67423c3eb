//! `klutch-release`: writes klutch's release bundles for a version.
//!
//! ```text
//! klutch-release 1.6.0                     # into release/output/
//! klutch-release 1.6.0 --out-dir dist/     # somewhere else
//! klutch-release --list-vars               # the ${VARS} the configure bundle needs
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Writes klutch's release bundles (install, update and, for X.Y.0, configure) for a version.
#[derive(Debug, Parser)]
#[command(name = "klutch-release", version, about, long_about = LONG_ABOUT)]
struct Cli {
    /// The release version, X.Y.Z (a leading `v` is allowed).
    #[arg(required_unless_present = "list_vars", env = "KLUTCH_RELEASE_VERSION")]
    release: Option<String>,
    /// Where to write the bundles.
    #[arg(long, default_value = "release/output", env = "KLUTCH_RELEASE_OUT_DIR")]
    out_dir: PathBuf,
    /// Registry and path prefix of klutch's images and packages.
    #[arg(long, default_value = klutch_release::DEFAULT_REGISTRY, env = "KLUTCH_RELEASE_REGISTRY")]
    registry: String,
    /// The provider-kubernetes package to install.
    #[arg(long, default_value = klutch_release::DEFAULT_PROVIDER_KUBERNETES, env = "KLUTCH_RELEASE_PROVIDER_KUBERNETES")]
    provider_kubernetes: String,
    /// Print the ${VARS} of the configure bundle, one per line, and exit.
    #[arg(long)]
    list_vars: bool,
}

const LONG_ABOUT: &str = "Writes klutch's release bundles for a version.

install-v<ver>.yaml    every release: Crossplane configuration and providers, klutch's CRDs, the backend
update-v<ver>.yaml     every release: only the image and package references, for routine upgrades
configure-v<ver>.yaml  X.Y.0 only: ProviderConfigs, credentials, backend configuration, export templates,
                       with ${VARS} placeholders (see --list-vars)

Install order: kubectl apply --server-side -f install-v<ver>.yaml; wait until the Configuration and
Providers are Healthy; then envsubst < configure-v<ver>.yaml | kubectl apply -f -.
See docs/install.md.";

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.list_vars {
        for var in klutch_release::configure_variables() {
            println!("{var}");
        }
        return ExitCode::SUCCESS;
    }
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("klutch-release: {err}");
            let mut source = std::error::Error::source(err.as_ref());
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<(), Box<dyn std::error::Error>> {
    let mut opts = klutch_release::Options::new(cli.release.as_deref().unwrap_or_default())?;
    opts.registry = cli.registry.trim_end_matches('/').to_owned();
    opts.provider_kubernetes_package = cli.provider_kubernetes.clone();
    std::fs::create_dir_all(&cli.out_dir)
        .map_err(|e| format!("creating {}: {e}", cli.out_dir.display()))?;
    for bundle in klutch_release::bundles(&opts)? {
        let path = cli.out_dir.join(bundle.file_name(&opts));
        std::fs::write(&path, bundle.to_yaml(&opts)?)
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        println!(
            "wrote {} ({} objects)",
            path.display(),
            bundle.objects.len()
        );
    }
    Ok(())
}
