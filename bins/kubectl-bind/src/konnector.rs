//! Installing or upgrading the konnector in the app cluster (spec §6.5), from the manifests in
//! `klutch_sdk::deploy::konnector`.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use klutch_sdk::api::APIServiceBinding;
use klutch_sdk::api::wellknown::{CONSUMER_NAMESPACE, KONNECTOR_NAME};
use klutch_sdk::deploy::images::{PART_OF_LABEL, VERSION_LABEL};
use klutch_sdk::deploy::konnector::{
    KLUTCH_GO_REPOSITORY, KonnectorManifests, Manifest, default_repository, manifests,
};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};

use crate::error::{Error, Result};
use crate::io::Io;
use crate::undo::Undo;

/// Field manager of everything `kubectl bind` applies.
pub const FIELD_MANAGER: &str = "kubectl-bind";

/// What to do about the konnector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `--skip-konnector`.
    Skip,
    /// Apply this image (fresh install, `--konnector-image`, upgrade or downgrade).
    Apply {
        /// The image.
        image: String,
        /// The version for the Deployment's version label, when it is ours and known.
        version: Option<String>,
        /// The line to print.
        message: String,
    },
    /// Leave the installed konnector alone, printing this (unless empty).
    Keep(String),
}

/// The flags that steer the decision.
#[derive(Clone, Debug)]
pub struct Flags {
    /// `--skip-konnector`.
    pub skip: bool,
    /// `--konnector-image`.
    pub image: Option<String>,
    /// `--downgrade-konnector`.
    pub downgrade: bool,
    /// `--konnector-repository`: where our konnector images are (default
    /// [`default_repository`]).
    pub repository: String,
}

impl Default for Flags {
    fn default() -> Self {
        Flags {
            skip: false,
            image: None,
            downgrade: false,
            repository: default_repository(),
        }
    }
}

/// The konnector Deployment found in the app cluster: its first container's image and the
/// Deployment's labels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Installed {
    /// The image.
    pub image: String,
    /// The Deployment's labels.
    pub labels: BTreeMap<String, String>,
}

impl Installed {
    /// An installed konnector with this image and no labels.
    pub fn image(image: &str) -> Self {
        Installed {
            image: image.to_owned(),
            labels: BTreeMap::new(),
        }
    }
}

/// Whose konnector is installed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// Ours (by image repository or `app.kubernetes.io/part-of: klutch-rs`), with the version its
    /// version label or tag says (`None`: unknown, e.g. `latest` or a digest only).
    Ours {
        /// The version text as found (label or tag), for messages.
        shown: Option<String>,
        /// The parsed version.
        version: Option<semver::Version>,
    },
    /// Klutch's Go konnector (anynines' repository).
    KlutchGo,
    /// A konnector we do not recognise.
    Unknown,
}

/// Recognises the installed konnector: Klutch's Go one by its repository (whatever its labels
/// say), ours by `repository` or our part-of label, anything else as unknown.
pub fn classify(installed: &Installed, repository: &str) -> Found {
    let (image_repository, tag) = split_image(&installed.image);
    if image_repository == KLUTCH_GO_REPOSITORY {
        return Found::KlutchGo;
    }
    let labelled =
        installed.labels.get(PART_OF_LABEL.0).map(String::as_str) == Some(PART_OF_LABEL.1);
    if image_repository != repository && !labelled {
        return Found::Unknown;
    }
    let shown = installed
        .labels
        .get(VERSION_LABEL)
        .cloned()
        .or_else(|| tag.map(str::to_owned));
    let version = shown.as_deref().and_then(parse_version);
    Found::Ours { shown, version }
}

fn parse_version(text: &str) -> Option<semver::Version> {
    semver::Version::parse(text.strip_prefix('v').unwrap_or(text)).ok()
}

/// Splits `repo[:tag]` (a registry port is not a tag; a digest makes the tag unknown).
pub fn split_image(image: &str) -> (&str, Option<&str>) {
    if image.contains('@') {
        return (image.split('@').next().unwrap_or(image), None);
    }
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[last_slash..].rfind(':') {
        Some(colon) => (
            &image[..last_slash + colon],
            Some(&image[last_slash + colon + 1..]),
        ),
        None => (image, None),
    }
}

/// Decides from the CLI's version, the installed konnector (Deployment
/// `klutch-bind/konnector`, `None` when absent) and the flags. Versions are compared only with a
/// konnector recognised as ours ([`classify`]); Klutch's Go konnector and unknown ones are left
/// alone unless `--konnector-image` asks otherwise.
pub fn decide(cli_version: &str, installed: Option<&Installed>, flags: &Flags) -> Result<Action> {
    if flags.skip {
        return Ok(Action::Skip);
    }
    if let Some(image) = &flags.image {
        return Ok(Action::Apply {
            image: image.clone(),
            version: None,
            message: format!(
                "🚀 Deploying konnector {cli_version} to namespace {CONSUMER_NAMESPACE} with custom image \"{image}\"."
            ),
        });
    }
    let own = parse_version(cli_version);
    let ours = format!("{}:{cli_version}", flags.repository);
    let apply = |message: String| Action::Apply {
        image: ours.clone(),
        version: Some(cli_version.to_owned()),
        message,
    };
    let refuse_dev = || {
        Error::Konnector(format!(
            "this kubectl-bind is a development build ({cli_version}) and cannot pick a konnector image; pass --konnector-image <image> or --skip-konnector"
        ))
    };
    let is_dev = own
        .as_ref()
        .is_none_or(|v| v.major == 0 && v.minor == 0 && v.patch == 0);
    let Some(installed) = installed else {
        if is_dev {
            return Err(refuse_dev());
        }
        return Ok(apply(format!(
            "🚀 Deploying konnector {cli_version} to namespace {CONSUMER_NAMESPACE}."
        )));
    };
    let image = &installed.image;
    let (shown, installed_version) = match classify(installed, &flags.repository) {
        Found::KlutchGo => {
            return Ok(Action::Keep(format!(
                "ℹ️ Found Klutch's Go konnector ({image}) in namespace {CONSUMER_NAMESPACE}; leaving it alone. To replace it with this klutch konnector, pass --konnector-image {ours}."
            )));
        }
        Found::Unknown => {
            return Ok(Action::Keep(format!(
                "ℹ️ Found a konnector that is not klutch's ({image}) in namespace {CONSUMER_NAMESPACE}; leaving it alone. To replace it, pass --konnector-image <image>."
            )));
        }
        Found::Ours {
            shown,
            version: None,
        } => {
            let what = shown.map_or_else(|| "unknown".to_owned(), |s| format!("unknown ({s})"));
            return Ok(Action::Keep(format!(
                "ℹ️ Found klutch's konnector {image} of {what} version; leaving it alone."
            )));
        }
        Found::Ours {
            shown,
            version: Some(version),
        } => (shown.unwrap_or_default(), version),
    };
    if is_dev {
        return Err(refuse_dev());
    }
    let own = own.expect("checked by is_dev");
    match own.cmp(&installed_version) {
        std::cmp::Ordering::Equal => Ok(Action::Keep(String::new())),
        std::cmp::Ordering::Greater => Ok(apply(format!(
            "🚀 Updating konnector from {shown} to {cli_version}."
        ))),
        std::cmp::Ordering::Less if flags.downgrade => Ok(apply(format!(
            "🚀 Downgrading konnector from {shown} to {cli_version}."
        ))),
        std::cmp::Ordering::Less => Ok(Action::Keep(format!(
            "⚠️ Newer konnector {shown} installed. To downgrade to {cli_version} use --downgrade-konnector."
        ))),
    }
}

/// The installed konnector (Deployment `klutch-bind/konnector`), if any.
pub async fn installed(client: &kube::Client) -> Result<Option<Installed>> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), CONSUMER_NAMESPACE);
    let deployment = deployments
        .get_opt(KONNECTOR_NAME)
        .await
        .map_err(Error::kube("read the konnector Deployment"))?;
    Ok(deployment.and_then(|d| {
        let labels = d.metadata.labels.unwrap_or_default();
        let image = d
            .spec?
            .template
            .spec?
            .containers
            .into_iter()
            .next()?
            .image?;
        Some(Installed { image, labels })
    }))
}

fn api_for(client: &kube::Client, manifest: &Manifest) -> Api<DynamicObject> {
    let resource = manifest.api_resource();
    match manifest.namespace() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

/// Creates or updates (server-side apply, forced) each object; an existing object marked
/// create-only is left alone. Created objects are recorded in `undo`. Retries transient errors.
pub async fn apply(client: &kube::Client, objects: &[Manifest], undo: &mut Undo) -> Result<()> {
    for manifest in objects {
        let api = api_for(client, manifest);
        let name = manifest.name().to_string();
        let op = format!("apply {} {name}", manifest.kind());
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = apply_one(&api, manifest, &name).await;
            match result {
                Ok(created) => {
                    if created {
                        undo.created(manifest.api_resource(), manifest.namespace(), &name);
                    }
                    break;
                }
                Err(e) if attempt < 5 && is_transient(&e) => {
                    tokio::time::sleep(Duration::from_millis(200 * (1 << attempt))).await;
                }
                Err(source) => return Err(Error::Kube { op, source }),
            }
        }
    }
    Ok(())
}

/// Whether an API error is worth retrying: conflicts, throttling, server and connection errors.
pub fn is_transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(status) => matches!(status.code, 409 | 429 | 500 | 503 | 504),
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

async fn apply_one(
    api: &Api<DynamicObject>,
    manifest: &Manifest,
    name: &str,
) -> Result<bool, kube::Error> {
    let object = manifest.to_dynamic();
    if api.get_opt(name).await?.is_none() {
        match api.create(&PostParams::default(), &object).await {
            Ok(_) => return Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    if manifest.create_only() {
        return Ok(false);
    }
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&object),
    )
    .await?;
    Ok(false)
}

/// Runs the decision against the cluster and applies it.
pub async fn ensure(
    io: &mut Io,
    client: &kube::Client,
    flags: &Flags,
    undo: &mut Undo,
) -> Result<()> {
    let installed = if flags.skip {
        None
    } else {
        installed(client).await?
    };
    match decide(&io.version, installed.as_ref(), flags)? {
        Action::Skip => Ok(()),
        Action::Keep(message) => {
            if !message.is_empty() {
                io.progress(message);
            }
            Ok(())
        }
        Action::Apply {
            image,
            version,
            message,
        } => {
            io.progress(message);
            let mut options = KonnectorManifests::new(image);
            options.version = version;
            apply(client, &manifests(&options), undo).await
        }
    }
}

/// Waits until APIServiceBindings can be listed (the konnector installed their CRD), printing
/// one dot per second.
pub async fn wait_until_bindings_listable(
    io: &mut Io,
    client: &kube::Client,
    timeout: Duration,
) -> Result<()> {
    let bindings: Api<APIServiceBinding> = Api::namespaced(client.clone(), CONSUMER_NAMESPACE);
    let started = tokio::time::Instant::now();
    let mut announced = false;
    loop {
        match bindings.list(&ListParams::default().limit(1)).await {
            Ok(_) => {
                if announced {
                    io.progress("");
                }
                return Ok(());
            }
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            // The apiserver may be restarting: keep polling until the timeout.
            Err(e) if is_transient(&e) => {}
            Err(source) => {
                return Err(Error::Kube {
                    op: "list APIServiceBindings".into(),
                    source,
                });
            }
        }
        if !announced {
            io.progress_part("   Waiting for the konnector to be ready");
            announced = true;
        }
        if started.elapsed() > timeout {
            io.progress("");
            return Err(Error::Konnector(format!(
                "the konnector did not install the APIServiceBinding CRD within {}s; check `kubectl -n {CONSUMER_NAMESPACE} get pods` and its logs",
                timeout.as_secs()
            )));
        }
        tokio::select! {
            () = io.cancel.cancelled() => {
                io.progress("");
                return Err(Error::Interrupted);
            }
            () = tokio::time::sleep(Duration::from_secs(1)) => io.progress_part("."),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(tag: &str) -> Installed {
        Installed::image(&format!("{}:{tag}", default_repository()))
    }

    fn go(tag: &str) -> Installed {
        Installed::image(&format!("{KLUTCH_GO_REPOSITORY}:{tag}"))
    }

    fn applied(a: Action) -> (String, Option<String>, String) {
        match a {
            Action::Apply {
                image,
                version,
                message,
            } => (image, version, message),
            other => panic!("expected Apply, got {other:?}"),
        }
    }

    #[test]
    fn images_split_into_repository_and_tag() {
        assert_eq!(split_image("a/b:v1"), ("a/b", Some("v1")));
        assert_eq!(split_image("reg:5000/b"), ("reg:5000/b", None));
        assert_eq!(split_image("reg:5000/b:v2"), ("reg:5000/b", Some("v2")));
        assert_eq!(split_image("a/b@sha256:00"), ("a/b", None));
        assert_eq!(split_image("b"), ("b", None));
    }

    #[test]
    fn our_default_repository_is_not_klutchs_go_repository() {
        assert_ne!(default_repository(), KLUTCH_GO_REPOSITORY);
        assert!(default_repository().ends_with("/konnector"));
    }

    #[test]
    fn the_upgrade_decision_is_semver_aware_for_our_konnector() {
        let flags = Flags::default();
        // Fresh install: our image, with the version label.
        let (image, version, message) = applied(decide("v1.6.0", None, &flags).unwrap());
        assert_eq!(image, format!("{}:v1.6.0", default_repository()));
        assert_eq!(version.as_deref(), Some("v1.6.0"));
        assert_eq!(
            message,
            "🚀 Deploying konnector v1.6.0 to namespace klutch-bind."
        );
        // Older installed: upgrade, comparing numerically (v1.10 > v1.9).
        let (image, _, message) =
            applied(decide("v1.10.0", Some(&ours("v1.9.3")), &flags).unwrap());
        assert_eq!(image, format!("{}:v1.10.0", default_repository()));
        assert_eq!(message, "🚀 Updating konnector from v1.9.3 to v1.10.0.");
        // Same version: nothing.
        assert_eq!(
            decide("v1.6.0", Some(&ours("v1.6.0")), &flags).unwrap(),
            Action::Keep(String::new())
        );
        // Newer installed: warning, or downgrade with the flag.
        assert_eq!(
            decide("v1.6.0", Some(&ours("v1.7.0")), &flags).unwrap(),
            Action::Keep("⚠️ Newer konnector v1.7.0 installed. To downgrade to v1.6.0 use --downgrade-konnector.".into())
        );
        let down = Flags {
            downgrade: true,
            ..Flags::default()
        };
        let (image, _, _) = applied(decide("v1.6.0", Some(&ours("v1.7.0")), &down).unwrap());
        assert_eq!(image, format!("{}:v1.6.0", default_repository()));
        // Pre-releases order below their release.
        let (_, _, message) =
            applied(decide("v1.7.0", Some(&ours("v1.7.0-rc.1")), &flags).unwrap());
        assert!(message.contains("from v1.7.0-rc.1 to v1.7.0"));
        // Ours of unknown version (latest, nightly): keep, saying what was found.
        let latest = decide("v1.6.0", Some(&ours("latest")), &flags).unwrap();
        assert_eq!(
            latest,
            Action::Keep(format!(
                "ℹ️ Found klutch's konnector {}:latest of unknown (latest) version; leaving it alone.",
                default_repository()
            ))
        );
    }

    #[test]
    fn klutchs_go_konnector_is_never_upgraded_or_downgraded() {
        let down = Flags {
            downgrade: true,
            ..Flags::default()
        };
        for tag in ["v1.5.0", "v1.6.0", "v9.9.9"] {
            for flags in [&Flags::default(), &down] {
                let action = decide("v1.6.0", Some(&go(tag)), flags).unwrap();
                let Action::Keep(message) = action else {
                    panic!("Go konnector {tag} must be kept, got {action:?}");
                };
                assert!(message.contains("Klutch's Go konnector"), "{message}");
                assert!(
                    message.contains(&format!("{KLUTCH_GO_REPOSITORY}:{tag}")),
                    "{message}"
                );
                assert!(message.contains("--konnector-image"), "{message}");
            }
        }
        // Even when someone labelled it as ours.
        let mut labelled = go("v1.0.0");
        labelled
            .labels
            .insert(PART_OF_LABEL.0.into(), PART_OF_LABEL.1.into());
        assert_eq!(classify(&labelled, &default_repository()), Found::KlutchGo);
        // Asked explicitly: replaced.
        let custom = Flags {
            image: Some(format!("{}:v1.6.0", default_repository())),
            ..Flags::default()
        };
        assert!(matches!(
            decide("v1.6.0", Some(&go("v1.5.0")), &custom).unwrap(),
            Action::Apply { .. }
        ));
    }

    #[test]
    fn unknown_konnectors_are_left_alone_and_named() {
        let action = decide(
            "v1.6.0",
            Some(&Installed::image("example.com/konnector:v1.0.0")),
            &Flags::default(),
        )
        .unwrap();
        assert_eq!(
            action,
            Action::Keep("ℹ️ Found a konnector that is not klutch's (example.com/konnector:v1.0.0) in namespace klutch-bind; leaving it alone. To replace it, pass --konnector-image <image>.".into())
        );
    }

    #[test]
    fn ours_is_recognised_by_label_or_configured_repository() {
        // A mirror: recognised by our label, versioned by the version label (the image is pinned
        // by digest, so it has no tag).
        let mirrored = Installed {
            image: "mirror.example.com/konnector@sha256:00".into(),
            labels: BTreeMap::from([
                (PART_OF_LABEL.0.to_owned(), PART_OF_LABEL.1.to_owned()),
                (VERSION_LABEL.to_owned(), "v1.5.0".to_owned()),
            ]),
        };
        assert_eq!(
            classify(&mirrored, &default_repository()),
            Found::Ours {
                shown: Some("v1.5.0".into()),
                version: Some(semver::Version::new(1, 5, 0))
            }
        );
        let (_, _, message) =
            applied(decide("v1.6.0", Some(&mirrored), &Flags::default()).unwrap());
        assert_eq!(message, "🚀 Updating konnector from v1.5.0 to v1.6.0.");
        // A repository configured at run time: deployed and recognised without labels.
        let flags = Flags {
            repository: "registry.example.com/klutch/konnector".into(),
            ..Flags::default()
        };
        let (image, _, _) = applied(decide("v1.6.0", None, &flags).unwrap());
        assert_eq!(image, "registry.example.com/klutch/konnector:v1.6.0");
        let older = Installed::image("registry.example.com/klutch/konnector:v1.5.1");
        assert!(matches!(
            decide("v1.6.0", Some(&older), &flags).unwrap(),
            Action::Apply { .. }
        ));
        // The default repository is then just another unknown one.
        assert!(matches!(
            classify(&ours("v1.5.0"), &flags.repository),
            Found::Unknown
        ));
    }

    #[test]
    fn flags_override_and_dev_builds_refuse() {
        let skip = Flags {
            skip: true,
            ..Flags::default()
        };
        assert_eq!(decide("v0.0.0", None, &skip).unwrap(), Action::Skip);
        let custom = Flags {
            image: Some("my/konnector:dev".into()),
            ..Flags::default()
        };
        assert_eq!(
            decide("v0.0.0", Some(&ours("v1.0.0")), &custom).unwrap(),
            Action::Apply {
                image: "my/konnector:dev".into(),
                version: None,
                message: "🚀 Deploying konnector v0.0.0 to namespace klutch-bind with custom image \"my/konnector:dev\".".into()
            }
        );
        let err = decide("v0.0.0", None, &Flags::default()).unwrap_err();
        assert!(err.to_string().contains("--konnector-image"), "{err}");
        assert_eq!(err.exit_code(), 8);
        assert!(decide("v0.0.0", Some(&ours("v1.0.0")), &Flags::default()).is_err());
        // A dev build still leaves an unknown konnector alone.
        assert!(matches!(
            decide(
                "v0.0.0",
                Some(&Installed::image("x/y:z")),
                &Flags::default()
            )
            .unwrap(),
            Action::Keep(_)
        ));
    }
}
