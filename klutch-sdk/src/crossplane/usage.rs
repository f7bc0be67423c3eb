//! ProviderConfigUsage tracking: after every Connect, make sure a usage named after
//! the managed resource's UID exists, labelled with the ProviderConfig's name and
//! controller-owned by the managed resource (garbage collection removes it with the MR). A
//! small cache skips the write when nothing changed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use kube::api::{Api, ListParams, ObjectMeta, Patch, PatchParams};

use super::api::{ProviderConfigUsage, Reference, TypedReference};
use super::managed::Managed;
use super::meta::PROVIDER_CONFIG_LABEL;
use super::settings::Settings;

/// Tracking failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot apply ProviderConfigUsage {name}")]
pub struct UsageError {
    /// The usage's name.
    pub name: String,
    /// The cause.
    #[source]
    pub source: kube::Error,
}

/// Remembers which usages were applied (by MR UID → ProviderConfig name).
#[derive(Debug, Default)]
pub struct UsageTracker {
    applied: Mutex<HashMap<String, String>>,
}

impl UsageTracker {
    /// A tracker with an empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies the usage of `mr` for ProviderConfig `pc` (of the kind and with the field
    /// manager of `settings`), unless this process already did.
    pub async fn track<K: Managed>(
        &self,
        client: &kube::Client,
        settings: &Settings,
        mr: &K,
        pc: &str,
    ) -> Result<(), UsageError> {
        let Some(uid) = mr.meta().uid.clone() else {
            return Ok(());
        };
        if self
            .applied
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&uid)
            .is_some_and(|p| p == pc)
        {
            return Ok(());
        }
        let usage = ProviderConfigUsage {
            metadata: ObjectMeta {
                name: Some(uid.clone()),
                labels: Some(BTreeMap::from([(
                    PROVIDER_CONFIG_LABEL.to_owned(),
                    pc.to_owned(),
                )])),
                owner_references: mr.controller_owner_ref(&()).map(|r| vec![r]),
                ..ObjectMeta::default()
            },
            provider_config_ref: Reference::named(pc),
            resource_ref: TypedReference {
                api_version: K::api_version(&()).into_owned(),
                kind: K::kind(&()).into_owned(),
                name: mr.meta().name.clone().unwrap_or_default(),
                uid: Some(uid.clone()),
            },
        };
        let mut body = serde_json::to_value(&usage).unwrap_or_default();
        body["apiVersion"] = settings.usage.api_version.clone().into();
        body["kind"] = settings.usage.kind.clone().into();
        let api: Api<ProviderConfigUsage> = Api::all_with(client.clone(), &settings.usage);
        api.patch(
            &uid,
            &PatchParams::apply(&settings.field_manager).force(),
            &Patch::Apply(body),
        )
        .await
        .map_err(|source| UsageError {
            name: uid.clone(),
            source,
        })?;
        self.applied
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(uid, pc.to_owned());
        Ok(())
    }

    /// Forgets a deleted managed resource.
    pub fn forget(&self, uid: &str) {
        self.applied
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(uid);
    }
}

/// The number of ProviderConfigUsages (of the kind in `settings`) that name ProviderConfig
/// `pc`: its users.
pub async fn users(
    client: &kube::Client,
    settings: &Settings,
    pc: &str,
) -> Result<usize, kube::Error> {
    let api: Api<ProviderConfigUsage> = Api::all_with(client.clone(), &settings.usage);
    let list = api
        .list(&ListParams::default().labels(&format!("{PROVIDER_CONFIG_LABEL}={pc}")))
        .await?;
    Ok(list.items.len())
}
