//! Installing or upgrading the konnector in the app cluster (spec §6.5), from the manifests in
//! `klutch_sdk::deploy::konnector`.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use klutch_sdk::api::APIServiceBinding;
use klutch_sdk::api::wellknown::{CONSUMER_NAMESPACE, KONNECTOR_NAME};
use klutch_sdk::deploy::konnector::{KonnectorManifests, Manifest, OFFICIAL_REPOSITORY, manifests};
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
        /// The line to print.
        message: String,
    },
    /// Leave the installed konnector alone, printing this (unless empty).
    Keep(String),
}

/// The flags that steer the decision.
#[derive(Clone, Debug, Default)]
pub struct Flags {
    /// `--skip-konnector`.
    pub skip: bool,
    /// `--konnector-image`.
    pub image: Option<String>,
    /// `--downgrade-konnector`.
    pub downgrade: bool,
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

/// Decides from the CLI's version, the image of the installed konnector (first container of
/// Deployment `klutch-bind/konnector`, `None` when absent) and the flags.
pub fn decide(cli_version: &str, installed: Option<&str>, flags: &Flags) -> Result<Action> {
    if flags.skip {
        return Ok(Action::Skip);
    }
    if let Some(image) = &flags.image {
        return Ok(Action::Apply {
            image: image.clone(),
            message: format!(
                "🚀 Deploying konnector {cli_version} to namespace {CONSUMER_NAMESPACE} with custom image \"{image}\"."
            ),
        });
    }
    let own = parse_version(cli_version);
    let official = format!("{OFFICIAL_REPOSITORY}:{cli_version}");
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
        return Ok(Action::Apply {
            image: official,
            message: format!(
                "🚀 Deploying konnector {cli_version} to namespace {CONSUMER_NAMESPACE}."
            ),
        });
    };
    let (repository, tag) = split_image(installed);
    let installed_version = match tag {
        Some("latest") => {
            return Ok(Action::Keep(
                "ℹ️ konnector of latest version already installed, skipping".into(),
            ));
        }
        Some(tag) if repository == OFFICIAL_REPOSITORY => parse_version(tag),
        _ => None,
    };
    let Some(installed_version) = installed_version else {
        return Ok(Action::Keep(
            "ℹ️ konnector of unknown version already installed, skipping".into(),
        ));
    };
    let tag = tag.unwrap_or_default();
    if is_dev {
        return Err(refuse_dev());
    }
    let own = own.expect("checked by is_dev");
    match own.cmp(&installed_version) {
        std::cmp::Ordering::Equal => Ok(Action::Keep(String::new())),
        std::cmp::Ordering::Greater => Ok(Action::Apply {
            image: official,
            message: format!("🚀 Updating konnector from {tag} to {cli_version}."),
        }),
        std::cmp::Ordering::Less if flags.downgrade => Ok(Action::Apply {
            image: official,
            message: format!("🚀 Downgrading konnector from {tag} to {cli_version}."),
        }),
        std::cmp::Ordering::Less => Ok(Action::Keep(format!(
            "⚠️ Newer konnector {tag} installed. To downgrade to {cli_version} use --downgrade-konnector."
        ))),
    }
}

/// The image of the installed konnector, if any.
pub async fn installed_image(client: &kube::Client) -> Result<Option<String>> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), CONSUMER_NAMESPACE);
    let deployment = deployments
        .get_opt(KONNECTOR_NAME)
        .await
        .map_err(Error::kube("read the konnector Deployment"))?;
    Ok(deployment.and_then(|d| d.spec?.template.spec?.containers.into_iter().next()?.image))
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
        installed_image(client).await?
    };
    match decide(&io.version, installed.as_deref(), flags)? {
        Action::Skip => Ok(()),
        Action::Keep(message) => {
            if !message.is_empty() {
                io.progress(message);
            }
            Ok(())
        }
        Action::Apply { image, message } => {
            io.progress(message);
            apply(client, &manifests(&KonnectorManifests::new(image)), undo).await
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

    fn official(tag: &str) -> String {
        format!("{OFFICIAL_REPOSITORY}:{tag}")
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
    fn the_upgrade_decision_is_semver_aware() {
        let flags = Flags::default();
        let apply = |a: Action| match a {
            Action::Apply { image, message } => (image, message),
            other => panic!("expected Apply, got {other:?}"),
        };
        // Fresh install.
        let (image, message) = apply(decide("v1.6.0", None, &flags).unwrap());
        assert_eq!(image, official("v1.6.0"));
        assert_eq!(
            message,
            "🚀 Deploying konnector v1.6.0 to namespace klutch-bind."
        );
        // Older installed: upgrade, comparing numerically (v1.10 > v1.9).
        let (image, message) = apply(decide("v1.10.0", Some(&official("v1.9.3")), &flags).unwrap());
        assert_eq!(image, official("v1.10.0"));
        assert_eq!(message, "🚀 Updating konnector from v1.9.3 to v1.10.0.");
        // Same version: nothing.
        assert_eq!(
            decide("v1.6.0", Some(&official("v1.6.0")), &flags).unwrap(),
            Action::Keep(String::new())
        );
        // Newer installed: warning, or downgrade with the flag.
        assert_eq!(
            decide("v1.6.0", Some(&official("v1.7.0")), &flags).unwrap(),
            Action::Keep("⚠️ Newer konnector v1.7.0 installed. To downgrade to v1.6.0 use --downgrade-konnector.".into())
        );
        let down = Flags {
            downgrade: true,
            ..Flags::default()
        };
        let (image, _) = apply(decide("v1.6.0", Some(&official("v1.7.0")), &down).unwrap());
        assert_eq!(image, official("v1.6.0"));
        // Pre-releases order below their release.
        let (_, message) = apply(decide("v1.7.0", Some(&official("v1.7.0-rc.1")), &flags).unwrap());
        assert!(message.contains("from v1.7.0-rc.1 to v1.7.0"));
        // Foreign repository or latest: keep.
        assert_eq!(
            decide("v1.6.0", Some("example.com/konnector:v9.9.9"), &flags).unwrap(),
            Action::Keep("ℹ️ konnector of unknown version already installed, skipping".into())
        );
        assert_eq!(
            decide("v1.6.0", Some(&official("latest")), &flags).unwrap(),
            Action::Keep("ℹ️ konnector of latest version already installed, skipping".into())
        );
        assert!(matches!(
            decide("v1.6.0", Some(&official("nightly")), &flags).unwrap(),
            Action::Keep(_)
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
            decide("v0.0.0", Some(&official("v1.0.0")), &custom).unwrap(),
            Action::Apply {
                image: "my/konnector:dev".into(),
                message: "🚀 Deploying konnector v0.0.0 to namespace klutch-bind with custom image \"my/konnector:dev\".".into()
            }
        );
        let err = decide("v0.0.0", None, &Flags::default()).unwrap_err();
        assert!(err.to_string().contains("--konnector-image"), "{err}");
        assert_eq!(err.exit_code(), 8);
        assert!(decide("v0.0.0", Some(&official("v1.0.0")), &Flags::default()).is_err());
        // A dev build still leaves an unknown konnector alone.
        assert!(matches!(
            decide("v0.0.0", Some("x/y:z"), &Flags::default()).unwrap(),
            Action::Keep(_)
        ));
    }
}
