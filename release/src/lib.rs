//! klutch's release bundles: the manifests a platform team applies to a control-plane cluster.
//!
//! | Bundle | Contents | When |
//! |---|---|---|
//! | `install-v<ver>.yaml` | the `anynines-dataservices` Configuration, provider-anynines and provider-kubernetes with their runtime configs, the bind namespace, klutch's CRDs and the example-backend (RBAC, Deployment, Service) | every release |
//! | `update-v<ver>.yaml` | only the image and package references of the above, for a routine `kubectl apply` | every release |
//! | `configure-v<ver>.yaml` | objects that need installed CRDs or local values: the provider-kubernetes ProviderConfig, the backend's configuration, the export templates, and per a9s data service a credentials Secret and ProviderConfig for its service broker and Backup Manager — with `${VARS}` placeholders | `X.Y.0` releases |
//!
//! Every object comes from the same Rust sources the binaries and CRD generators use, so a
//! bundle cannot drift from the code it installs.
//!
//! ```
//! let opts = klutch_release::Options::new("1.6.0").unwrap();
//! let bundles = klutch_release::bundles(&opts).unwrap();
//! let names: Vec<_> = bundles.iter().map(|b| b.file_name(&opts)).collect();
//! assert_eq!(names, ["install-v1.6.0.yaml", "update-v1.6.0.yaml", "configure-v1.6.0.yaml"]);
//! ```

pub mod bind;
pub mod crossplane;
pub mod dataservices;
pub mod images;
pub mod packages;
pub mod provider_configs;

use serde_json::Value;

/// Errors of building or writing bundles.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The version is not `X.Y.Z` (an optional leading `v` is allowed).
    #[error("invalid release version {0:?}: expected X.Y.Z, e.g. 1.6.0")]
    InvalidVersion(String),
    /// An object could not be turned into JSON.
    #[error("serialising {what} to JSON")]
    Json {
        /// Which object.
        what: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// A bundle could not be written as YAML.
    #[error("writing the {bundle} bundle as YAML")]
    Yaml {
        /// Which bundle.
        bundle: &'static str,
        /// The YAML error.
        #[source]
        source: serde_saphyr::ser_error::Error,
    },
    /// The CRDs could not be generated.
    #[error("generating klutch's CRDs")]
    Crds(#[source] serde_saphyr::ser_error::Error),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The default registry of klutch's images and packages (ours, not Klutch's Go images; set
/// `KLUTCH_IMAGE_REGISTRY` at build time or `--registry` at run time for another).
pub const DEFAULT_REGISTRY: &str = klutch_sdk::deploy::images::DEFAULT_REGISTRY;
/// The provider-kubernetes package the bundles install by default.
pub const DEFAULT_PROVIDER_KUBERNETES: &str =
    "xpkg.upbound.io/crossplane-contrib/provider-kubernetes:v0.17.1";

/// What to build bundles for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// The release version, `X.Y.Z` without a leading `v`.
    pub version: String,
    /// Registry and path prefix of klutch's images, without a trailing `/`.
    pub registry: String,
    /// The full provider-kubernetes package reference.
    pub provider_kubernetes_package: String,
    /// Manifest digests (`sha256:…`) of images and packages by name, e.g. from
    /// `klutch-release images`: [`Options::image`] pins those by digest.
    pub digests: std::collections::BTreeMap<String, String>,
}

impl Options {
    /// Options for a version (`1.6.0` or `v1.6.0`) with the default registry.
    ///
    /// ```
    /// let opts = klutch_release::Options::new("v1.6.0").unwrap();
    /// assert_eq!(opts.version, "1.6.0");
    /// assert!(klutch_release::Options::new("1.6").is_err());
    /// ```
    pub fn new(version: &str) -> Result<Self> {
        let v = version.strip_prefix('v').unwrap_or(version);
        let (core, pre) = v
            .split_once(['-', '+'])
            .map_or((v, None), |(c, p)| (c, Some(p)));
        let parts: Vec<&str> = core.split('.').collect();
        let numeric = |s: &&str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let pre_ok = pre.is_none_or(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+'))
        });
        if parts.len() != 3 || !parts.iter().all(numeric) || !pre_ok {
            return Err(Error::InvalidVersion(version.to_owned()));
        }
        Ok(Self {
            version: v.to_owned(),
            registry: DEFAULT_REGISTRY.to_owned(),
            provider_kubernetes_package: DEFAULT_PROVIDER_KUBERNETES.to_owned(),
            digests: std::collections::BTreeMap::new(),
        })
    }

    /// `<registry>/<name>:v<version>`, with `@<digest>` when [`Options::digests`] knows it
    /// (the tag stays for people; the runtime pulls by digest).
    ///
    /// ```
    /// let mut opts = klutch_release::Options::new("1.6.0").unwrap();
    /// opts.registry = "registry.example.com/klutch".into();
    /// assert_eq!(opts.image("konnector"), "registry.example.com/klutch/konnector:v1.6.0");
    /// opts.digests.insert("konnector".into(), "sha256:ab".into());
    /// assert_eq!(opts.image("konnector"), "registry.example.com/klutch/konnector:v1.6.0@sha256:ab");
    /// ```
    pub fn image(&self, name: &str) -> String {
        let tagged = format!("{}/{name}:v{}", self.registry, self.version);
        match self.digests.get(name) {
            Some(digest) => format!("{tagged}@{digest}"),
            None => tagged,
        }
    }

    /// Whether this is an `X.Y.0` release, the only kind that ships a `configure` bundle
    /// (patch releases change only `install` and `update`).
    pub fn is_minor_release(&self) -> bool {
        let core = self.version.split(['-', '+']).next().unwrap_or_default();
        core.rsplit('.').next() == Some("0")
    }
}

/// Which bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BundleKind {
    /// Everything a fresh control plane needs.
    Install,
    /// Image and package references only.
    Update,
    /// Objects that need installed CRDs or local values (`${VARS}`).
    Configure,
}

impl BundleKind {
    /// `install`, `update` or `configure`.
    pub fn name(self) -> &'static str {
        match self {
            BundleKind::Install => "install",
            BundleKind::Update => "update",
            BundleKind::Configure => "configure",
        }
    }
}

/// One bundle: a list of Kubernetes objects in apply order.
#[derive(Clone, Debug, PartialEq)]
pub struct Bundle {
    /// Which bundle.
    pub kind: BundleKind,
    /// The objects, in the order `kubectl apply -f` should see them.
    pub objects: Vec<Value>,
}

impl Bundle {
    /// The file name, e.g. `install-v1.6.0.yaml`.
    pub fn file_name(&self, opts: &Options) -> String {
        format!("{}-v{}.yaml", self.kind.name(), opts.version)
    }

    /// The bundle as a multi-document YAML stream with a header comment.
    pub fn to_yaml(&self, opts: &Options) -> Result<String> {
        let mut out = format!(
            "# klutch {} bundle, version v{} (generated by klutch-release; do not edit)\n",
            self.kind.name(),
            opts.version
        );
        if self.kind == BundleKind::Configure {
            out.push_str(
                "# Fill the ${VARS} first, e.g.: envsubst < configure.yaml | kubectl apply -f -\n",
            );
        }
        for object in &self.objects {
            out.push_str("---\n");
            out.push_str(
                &serde_saphyr::to_string(object).map_err(|source| Error::Yaml {
                    bundle: self.kind.name(),
                    source,
                })?,
            );
        }
        Ok(out)
    }
}

/// Serialises a typed object into the JSON a bundle holds.
pub(crate) fn to_value<T: serde::Serialize>(what: &str, object: &T) -> Result<Value> {
    serde_json::to_value(object).map_err(|source| Error::Json {
        what: what.to_owned(),
        source,
    })
}

/// Builds the bundles of a release: `install`, `update` and, for `X.Y.0`, `configure`.
pub fn bundles(opts: &Options) -> Result<Vec<Bundle>> {
    let mut out = vec![install(opts)?, update(opts)?];
    if opts.is_minor_release() {
        out.push(configure(opts)?);
    }
    Ok(out)
}

/// The `install` bundle.
pub fn install(opts: &Options) -> Result<Bundle> {
    let mut objects = vec![
        crossplane::configuration(opts),
        crossplane::provider_anynines_runtime(),
        crossplane::provider_anynines(opts),
        crossplane::provider_kubernetes_runtime(),
        crossplane::provider_kubernetes(opts),
        crossplane::provider_kubernetes_admin(),
    ];
    objects.extend(bind::install(opts)?);
    Ok(Bundle {
        kind: BundleKind::Install,
        objects,
    })
}

/// The `update` bundle: the objects of `install` that carry an image or package reference.
pub fn update(opts: &Options) -> Result<Bundle> {
    let mut objects = vec![
        crossplane::configuration(opts),
        crossplane::provider_anynines(opts),
        crossplane::provider_kubernetes(opts),
    ];
    objects.extend(bind::update(opts)?);
    Ok(Bundle {
        kind: BundleKind::Update,
        objects,
    })
}

/// The `configure` bundle (with `${VARS}` placeholders; see [`provider_configs::variables`]).
pub fn configure(opts: &Options) -> Result<Bundle> {
    let mut objects = vec![crossplane::kubernetes_provider_config()];
    objects.extend(bind::configure(opts)?);
    objects.extend(provider_configs::data_service_configs());
    Ok(Bundle {
        kind: BundleKind::Configure,
        objects,
    })
}

/// Every `${VAR}` the `configure` bundle contains, sorted and de-duplicated: the keys of the
/// `local-vars` file `envsubst` fills it from.
///
/// ```
/// let vars = klutch_release::configure_variables();
/// assert!(vars.contains(&"POSTGRESQL_SERVICE_BROKER_URL".to_string()));
/// ```
pub fn configure_variables() -> Vec<String> {
    let opts = Options::new("0.0.0").expect("a fixed version is valid");
    let mut vars = std::collections::BTreeSet::new();
    if let Ok(bundle) = configure(&opts) {
        for object in &bundle.objects {
            collect_variables(object, &mut vars);
        }
    }
    vars.into_iter().collect()
}

fn collect_variables(value: &Value, out: &mut std::collections::BTreeSet<String>) {
    match value {
        Value::String(s) => {
            let mut rest = s.as_str();
            while let Some(start) = rest.find("${") {
                let after = &rest[start + 2..];
                let Some(end) = after.find('}') else { break };
                out.insert(after[..end].to_owned());
                rest = &after[end + 1..];
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_variables(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_variables(v, out)),
        _ => {}
    }
}
