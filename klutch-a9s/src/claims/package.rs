//! The whole configuration package as files: `crossplane.yaml`, one XRD per claim kind and the
//! compositions. `cargo run -p klutch-a9s --example crossplane-api` writes them to
//! `crossplane-api/` in the repository; a test keeps the committed copy current.

use serde_json::{Value, json};

use super::backup::{Backup, Restore};
use super::binding::ServiceBinding;
use super::keyvalue::KeyvalueInstance;
use super::logme2::Logme2Instance;
use super::mariadb::MariadbInstance;
use super::messaging::MessagingInstance;
use super::mongodb::MongodbInstance;
use super::postgresql::PostgresqlInstance;
use super::prometheus::PrometheusInstance;
use super::search::SearchInstance;
use super::xrd::{ClaimDefinition, xrd};
use super::{Error, Result, composition};

/// The Configuration package's name.
pub const NAME: &str = "anynines-dataservices";
/// The Crossplane versions the package supports.
pub const CROSSPLANE_CONSTRAINT: &str = ">=v1.17.1";
/// The function every composition runs.
pub const FUNCTION_PACKAGE: &str =
    "xpkg.upbound.io/crossplane-contrib/function-patch-and-transform";
/// The function's version constraint.
pub const FUNCTION_VERSION: &str = ">=v0.9.2";

/// Every claim kind's XRD, in a fixed order (instances, then binding, backup, restore).
pub fn xrds() -> Result<Vec<Value>> {
    Ok(vec![
        xrd::<PostgresqlInstance>()?,
        xrd::<MongodbInstance>()?,
        xrd::<MariadbInstance>()?,
        xrd::<MessagingInstance>()?,
        xrd::<SearchInstance>()?,
        xrd::<Logme2Instance>()?,
        xrd::<PrometheusInstance>()?,
        xrd::<KeyvalueInstance>()?,
        xrd::<ServiceBinding>()?,
        xrd::<Backup>()?,
        xrd::<Restore>()?,
    ])
}

/// The claim kinds with their composite kind and default composition, in [`xrds`]' order.
pub fn claim_kinds() -> Vec<(&'static str, &'static str, &'static str)> {
    fn entry<K: ClaimDefinition>() -> (&'static str, &'static str, &'static str) {
        (
            K::COMPOSITE_PLURAL,
            K::COMPOSITE_KIND,
            K::DEFAULT_COMPOSITION,
        )
    }
    vec![
        entry::<PostgresqlInstance>(),
        entry::<MongodbInstance>(),
        entry::<MariadbInstance>(),
        entry::<MessagingInstance>(),
        entry::<SearchInstance>(),
        entry::<Logme2Instance>(),
        entry::<PrometheusInstance>(),
        entry::<KeyvalueInstance>(),
        entry::<ServiceBinding>(),
        entry::<Backup>(),
        entry::<Restore>(),
    ]
}

/// `crossplane.yaml`: the Configuration's metadata and dependencies.
pub fn metadata() -> Value {
    json!({
        "apiVersion": "meta.pkg.crossplane.io/v1",
        "kind": "Configuration",
        "metadata": {
            "name": NAME,
            "annotations": {
                "meta.crossplane.io/maintainer": "The klutch authors",
                "meta.crossplane.io/source": "github.com/klutch-rs/klutch",
                "meta.crossplane.io/license": "Apache-2.0",
                "meta.crossplane.io/description": "Claims for a9s Data Services and a8s PostgreSQL (anynines.com/v1), composed into provider-anynines and provider-kubernetes resources.",
            },
        },
        "spec": {
            "crossplane": {"version": CROSSPLANE_CONSTRAINT},
            "dependsOn": [
                {"function": FUNCTION_PACKAGE, "version": FUNCTION_VERSION},
            ],
        },
    })
}

/// Every file of the package as `(path relative to the package root, YAML)`.
pub fn files() -> Result<Vec<(String, String)>> {
    let header = "# Generated from klutch_a9s::claims by `cargo run -p klutch-a9s --example crossplane-api`. Do not edit.\n";
    let mut files = vec![(
        "crossplane.yaml".to_string(),
        to_yaml(header, &metadata(), "crossplane.yaml")?,
    )];
    for xrd in xrds()? {
        let claim = xrd["spec"]["claimNames"]["plural"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let name = xrd["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        files.push((
            format!("apis/{claim}/definition.yaml"),
            to_yaml(header, &xrd, &format!("XRD {name}"))?,
        ));
    }
    for (claim, comp) in composition::all() {
        let name = comp["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        files.push((
            format!("apis/{claim}/composition-{name}.yaml"),
            to_yaml(header, &comp, &format!("composition {name}"))?,
        ));
    }
    Ok(files)
}

fn to_yaml(header: &str, value: &Value, what: &str) -> Result<String> {
    let yaml = serde_saphyr::to_string(value).map_err(|source| Error::Yaml {
        what: what.to_string(),
        source,
    })?;
    Ok(format!("{header}{yaml}"))
}
