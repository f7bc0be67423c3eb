//! `klutch-release`: writes klutch's release bundles for a version.
//!
//! ```text
//! klutch-release 1.6.0                     # into release/output/
//! klutch-release 1.6.0 --out-dir dist/     # somewhere else
//! klutch-release --list-vars               # the ${VARS} the configure bundle needs
//! klutch-release images --registry registry.example.com/klutch   # build and push the images
//! klutch-release 1.6.0 --digests release/output/digests-v1.6.0.json  # bundles pin images by digest
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Writes klutch's release bundles (install, update and, for X.Y.0, configure) for a version.
#[derive(Debug, Parser)]
#[command(
    name = "klutch-release",
    version,
    about,
    long_about = LONG_ABOUT,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
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
    /// A digests file written by `klutch-release images` (`{"<image>": "sha256:…"}`): the
    /// bundles then reference those images as `<registry>/<image>:v<ver>@<digest>`.
    #[arg(long, env = "KLUTCH_RELEASE_DIGESTS")]
    digests: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Build the container images from the musl release binaries and push them.
    #[command(long_about = IMAGES_ABOUT)]
    Images(ImagesArgs),
}

const IMAGES_ABOUT: &str =
    "Builds klutch's container images from the static (musl) release binaries and pushes them,
without a container engine: one reproducible layer per image (binary, CA certificates, non-root
user 65532, no shell), assembled and pushed with go-containerregistry's crane.

First build the binaries once:
  cargo build --locked --release --target x86_64-unknown-linux-musl \\
    -p example-backend -p konnector -p provider-anynines
then:
  klutch-release images --registry registry.example.com/klutch

Prints one `<image> <repository>:<tag>@<digest>` line per image and writes
<out-dir>/digests-v<version>.json for `klutch-release <version> --digests …`. Authenticate first
with `crane auth login <registry>` (or a docker config); a registry with a private CA is trusted
with --registry-ca. See docs/install.md.";

#[derive(Debug, clap::Args)]
struct ImagesArgs {
    /// The version, X.Y.Z; images are tagged v<version>. Default: this workspace's version.
    #[arg(long = "release", default_value = env!("CARGO_PKG_VERSION"), env = "KLUTCH_RELEASE_VERSION")]
    release: String,
    /// Registry and path prefix to push to.
    #[arg(long, default_value = klutch_release::DEFAULT_REGISTRY, env = "KLUTCH_RELEASE_REGISTRY")]
    registry: String,
    /// The directory of the musl release binaries.
    #[arg(
        long,
        default_value = "target/x86_64-unknown-linux-musl/release",
        env = "KLUTCH_RELEASE_BIN_DIR"
    )]
    bin_dir: PathBuf,
    /// The source revision for the org.opencontainers.image.revision label. Default: `git rev-parse HEAD`.
    #[arg(long, env = "KLUTCH_RELEASE_REVISION")]
    revision: Option<String>,
    /// The CA certificates to put into the images.
    #[arg(long, default_value = klutch_release::images::DEFAULT_CA_BUNDLE, env = "KLUTCH_RELEASE_CA_BUNDLE")]
    ca_bundle: PathBuf,
    /// The crane program.
    #[arg(long, default_value = "crane", env = "KLUTCH_CRANE")]
    crane: PathBuf,
    /// The mtime of every file in the images (seconds since 1970); keep it fixed for
    /// reproducible digests.
    #[arg(long, default_value_t = 0, env = "SOURCE_DATE_EPOCH")]
    mtime: u64,
    /// A CA certificate (PEM) that signed the registry's certificate, if not a public one.
    #[arg(long, env = "KLUTCH_RELEASE_REGISTRY_CA")]
    registry_ca: Option<PathBuf>,
    /// Build only these images (repeatable): example-backend, konnector, provider-anynines-controller.
    #[arg(long)]
    only: Vec<String>,
    /// Also build and push the Crossplane packages (provider-anynines with the controller image
    /// embedded, dataservices) with the Crossplane CLI's `xpkg build` / `xpkg push`.
    #[arg(long)]
    packages: bool,
    /// The Crossplane v1 CLI (for --packages).
    #[arg(long, default_value = "crossplane", env = "KLUTCH_CROSSPLANE")]
    crossplane: PathBuf,
    /// Where to write the layers and digests-v<version>.json.
    #[arg(long, default_value = "release/output", env = "KLUTCH_RELEASE_OUT_DIR")]
    out_dir: PathBuf,
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
    if let Some(Command::Images(args)) = &cli.command {
        return report(images(args));
    }
    if cli.list_vars {
        for var in klutch_release::configure_variables() {
            println!("{var}");
        }
        return ExitCode::SUCCESS;
    }
    report(run(&cli))
}

fn report(result: Result<(), Box<dyn std::error::Error>>) -> ExitCode {
    match result {
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
    if let Some(path) = &cli.digests {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        opts.digests = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not a digests file: {e}", path.display()))?;
    }
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

fn images(args: &ImagesArgs) -> Result<(), Box<dyn std::error::Error>> {
    let opts = klutch_release::Options::new(&args.release)?;
    let revision = match &args.revision {
        Some(r) => r.clone(),
        None => git_revision()?,
    };
    let build = klutch_release::images::ImageBuild {
        version: opts.version.clone(),
        registry: args.registry.trim_end_matches('/').to_owned(),
        revision,
        bin_dir: args.bin_dir.clone(),
        ca_bundle: args.ca_bundle.clone(),
        crane: args.crane.clone(),
        work_dir: args.out_dir.join("layers"),
        mtime: args.mtime,
        registry_ca: args.registry_ca.clone(),
        only: args.only.clone(),
    };
    let mut built = build.run()?;
    if args.packages {
        let controller = built
            .iter()
            .find(|i| i.name == "provider-anynines-controller")
            .cloned()
            .ok_or("--packages needs the provider-anynines-controller image")?;
        let packages = klutch_release::packages::PackageBuild {
            version: opts.version.clone(),
            registry: build.registry.clone(),
            crossplane: args.crossplane.clone(),
            crane: args.crane.clone(),
            registry_ca: args.registry_ca.clone(),
            provider_root: "bins/provider-anynines/package".into(),
            configuration_root: "crossplane-api".into(),
            work_dir: build.work_dir.clone(),
        };
        built.extend(packages.run(&controller)?);
    }
    let mut digests = std::collections::BTreeMap::new();
    for image in &built {
        println!("{} {}@{}", image.name, image.by_tag(), image.digest);
        digests.insert(image.name.clone(), image.digest.clone());
    }
    let path = args.out_dir.join(format!("digests-v{}.json", opts.version));
    std::fs::write(&path, serde_json::to_string_pretty(&digests)? + "\n")
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

fn git_revision() -> Result<String, Box<dyn std::error::Error>> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .map_err(|e| format!("running git rev-parse HEAD (or pass --revision): {e}"))?;
    if !out.status.success() {
        return Err("git rev-parse HEAD failed; pass --revision".into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
