//! The `backup` controller (spec 6): backups through the a9s Backup Manager. Backup ids are
//! chosen by the server, so creation is guarded by `external-create-pending` and recovered by
//! listing the instance's backups after a crash (spec 6.3).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use klutch_sdk::crossplane::ExternalError;
use klutch_sdk::crossplane::conditions;
use klutch_sdk::crossplane::{Creation, Deletion, ExternalClient, Managed as _, Observation};
use kube::ResourceExt as _;
use kube::api::Api;

use super::common::{self, external_name};
use super::instance;
use crate::backup::{BackupConfigUpdate, JobStatus};
use crate::provider::api::{Backup, BackupObservation, ServiceInstance};
use crate::provider::config::{BackupEndpoint, errors};
use crate::provider::meta::{self, BACKUP_ID, EXTERNAL_CREATE_PENDING, EXTERNAL_NAME};
use crate::provider::state::{Cx, State};

/// The Backup kind.
#[derive(Debug, Default, Clone, Copy)]
pub struct BackupController;

type Res<T> = Result<T, ExternalError>;

fn at(mr: &mut Backup) -> &mut BackupObservation {
    mr.status
        .get_or_insert_with(Default::default)
        .at_provider
        .get_or_insert_with(Default::default)
}

/// The backup id: external-name, `status.atProvider.id` or the v1.5 annotation.
pub fn backup_id(mr: &Backup) -> Option<u64> {
    external_name(mr)
        .and_then(|v| v.parse().ok())
        .or_else(|| {
            mr.status
                .as_ref()
                .and_then(|s| s.at_provider.as_ref())
                .and_then(|a| a.id)
                .and_then(|i| u64::try_from(i).ok())
        })
        .or_else(|| {
            meta::annotation(&mr.metadata.annotations, BACKUP_ID).and_then(|v| v.parse().ok())
        })
}

fn has_config(mr: &Backup) -> bool {
    let f = &mr.spec.for_provider;
    f.encryption_key.is_some()
        || f.encryption_key_secret_ref.is_some()
        || f.exclude_from_auto_backup.is_some()
        || f.credentials_updated_by_user.is_some()
}

/// Records a backup id on the object (external-name, annotation, status) in memory.
fn set_id(mr: &mut Backup, id: u64) {
    mr.set_annotation(EXTERNAL_NAME, id.to_string());
    mr.set_annotation(BACKUP_ID, id.to_string());
    at(mr).id = i64::try_from(id).ok();
}

impl BackupController {
    async fn instance_id(&self, cx: &Cx<'_, Backup>, mr: &mut Backup) -> Res<Option<String>> {
        if let Some(i) = mr
            .status
            .as_ref()
            .and_then(|s| s.at_provider.as_ref())
            .and_then(|a| a.instance_id.clone())
            .filter(|s| !s.is_empty())
        {
            return Ok(Some(i));
        }
        let ns = common::claim_namespace(mr);
        let items = common::by_claim::<ServiceInstance>(
            cx.client(),
            &mr.spec.for_provider.instance_name,
            ns.as_deref(),
        )
        .await?;
        if items.is_empty() && mr.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        let si = common::exactly_one(
            items,
            "ServiceInstance",
            "data service instance was not found",
        )?;
        let Some(iid) = instance::instance_id(&si) else {
            return Err(ExternalError::user("instance is not ready")
                .with_ready(conditions::creating())
                .requeue_after(Duration::from_secs(5)));
        };
        at(mr).instance_id = Some(iid.clone());
        cx.save_status(mr).await?;
        Ok(Some(iid))
    }

    async fn apply_config(
        &self,
        ep: &BackupEndpoint,
        cx: &Cx<'_, Backup>,
        mr: &mut Backup,
        iid: &str,
    ) -> Res<()> {
        if !has_config(mr) {
            return Ok(());
        }
        let f = mr.spec.for_provider.clone();
        let mut u = BackupConfigUpdate::new();
        let key = match &f.encryption_key_secret_ref {
            Some(sel) => {
                let api: Api<Secret> = Api::namespaced(cx.client().clone(), &sel.namespace);
                let s = api
                    .get_opt(&sel.name)
                    .await
                    .map_err(|e| {
                        ExternalError::with_source(
                            format!("cannot get secret {}/{}", sel.namespace, sel.name),
                            e,
                        )
                    })?
                    .ok_or_else(|| {
                        ExternalError::user(format!(
                            "cannot get secret {}/{}: not found",
                            sel.namespace, sel.name
                        ))
                    })?;
                let v = s
                    .data
                    .as_ref()
                    .and_then(|d| d.get(&sel.key))
                    .ok_or_else(|| {
                        ExternalError::user(format!(
                            "secret {}/{} has no key {:?}",
                            sel.namespace, sel.name, sel.key
                        ))
                    })?;
                Some(String::from_utf8_lossy(&v.0).trim().to_owned())
            }
            None => f.encryption_key.clone(),
        };
        if let Some(k) = key {
            u = u.encryption_key(k);
        }
        if let Some(b) = f.exclude_from_auto_backup {
            u = u.exclude_from_auto_backup(b);
        }
        if let Some(b) = f.credentials_updated_by_user {
            u = u.credentials_updated_by_user(b);
        }
        let r = ep.client().update_config(iid, &u).await;
        ep.record(
            "update_config",
            &errors::outcome_call(r.as_ref().err().map(|e| e.call_error())),
        );
        r.map_err(|e| errors::backup_manager(&ep.url, e))?;
        mr.status
            .get_or_insert_with(Default::default)
            .applied_config_generation = mr.metadata.generation;
        Ok(())
    }
}

impl ExternalClient<Backup, State> for BackupController {
    const CONTROLLER: &'static str = "backup";
    const IDEMPOTENT_CREATE: bool = false;
    type Conn = Arc<BackupEndpoint>;

    async fn connect(&self, cx: &Cx<'_, Backup>, mr: &Backup) -> Res<Self::Conn> {
        let pc = &mr.spec.resource.provider_config_ref.name;
        let ep = cx
            .state()
            .clients
            .backup_manager(cx.client(), pc, "Backup")
            .await?;
        Ok(ep)
    }

    async fn recover_create(
        &self,
        ep: &Self::Conn,
        cx: &Cx<'_, Backup>,
        mr: &mut Backup,
    ) -> Res<bool> {
        if backup_id(mr).is_some() {
            return Ok(true);
        }
        let Some(iid) = self.instance_id(cx, mr).await? else {
            return Ok(false);
        };
        let Some(pending) = meta::annotation(&mr.metadata.annotations, EXTERNAL_CREATE_PENDING)
            .and_then(|v| v.parse::<jiff::Timestamp>().ok())
        else {
            return Ok(false);
        };
        let r = ep.client().list_backups(&iid).await;
        ep.record(
            "list_backups",
            &errors::outcome_call(r.as_ref().err().map(|e| e.call_error())),
        );
        let backups = r.map_err(|e| errors::backup_manager(&ep.url, e))?;
        let claimed: Vec<u64> = Api::<Backup>::all(cx.client().clone())
            .list(&Default::default())
            .await
            .map_err(|e| ExternalError::with_source("cannot list Backups", e))?
            .items
            .iter()
            .filter(|b| b.uid() != mr.uid())
            .filter_map(backup_id)
            .collect();
        let lo = pending - jiff::SignedDuration::from_secs(5);
        let hi = pending + jiff::SignedDuration::from_secs(120);
        let candidates: Vec<u64> = backups
            .iter()
            .filter(|b| b.triggered_at().is_some_and(|t| t >= lo && t <= hi))
            .filter(|b| !claimed.contains(&b.id))
            .map(|b| b.id)
            .collect();
        match candidates.as_slice() {
            [id] => {
                set_id(mr, *id);
                cx.save_meta(mr).await?;
                cx.save_status(mr).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn observe(
        &self,
        ep: &Self::Conn,
        cx: &Cx<'_, Backup>,
        mr: &mut Backup,
    ) -> Res<Observation> {
        let deleting = mr.metadata.deletion_timestamp.is_some();
        let Some(iid) = self.instance_id(cx, mr).await? else {
            return Ok(Observation::default());
        };
        let Some(bid) = backup_id(mr) else {
            return Ok(Observation::default());
        };
        if external_name(mr).is_none() {
            set_id(mr, bid);
            cx.save_meta(mr).await?;
        }
        let r = ep.client().get_backup(&iid, bid).await;
        ep.record(
            "get_backup",
            &errors::outcome_call(r.as_ref().err().map(|e| e.call_error())),
        );
        let backup = match r {
            Ok(b) => Some(b),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(errors::backup_manager(&ep.url, e)),
        };
        let gone = backup
            .as_ref()
            .is_none_or(|b| b.status == JobStatus::Deleted);
        if deleting && gone {
            return Ok(Observation::default());
        }
        let mut requeue = None;
        match &backup {
            None => mr.set_condition(conditions::unavailable("Backup has been deleted")),
            Some(b) => {
                let a = at(mr);
                a.id = i64::try_from(b.id).ok();
                a.size = b.size.and_then(|s| i64::try_from(s).ok());
                a.status = Some(b.status.as_str().to_owned());
                a.triggered_at = b.triggered_at.clone();
                a.finished_at = b.finished_at.clone();
                a.downloadable = b.downloadable;
                let c = match &b.status {
                    JobStatus::Queued | JobStatus::Running => {
                        requeue = Some(Duration::from_secs(2));
                        conditions::creating()
                    }
                    JobStatus::Done => conditions::available(),
                    JobStatus::Failed => conditions::unavailable("Backup has failed"),
                    JobStatus::Deleted => conditions::unavailable("Backup has been deleted"),
                    other => {
                        conditions::unavailable(format!("unknown backup status {}", other.as_str()))
                    }
                };
                mr.set_condition(c);
            }
        }
        let applied = mr.status.as_ref().and_then(|s| s.applied_config_generation);
        let up_to_date = !has_config(mr) || applied == mr.metadata.generation;
        Ok(Observation {
            exists: true,
            up_to_date,
            connection_details: None,
            requeue_after: requeue,
        })
    }

    async fn create(&self, ep: &Self::Conn, cx: &Cx<'_, Backup>, mr: &mut Backup) -> Res<Creation> {
        let iid = self
            .instance_id(cx, mr)
            .await?
            .ok_or_else(|| ExternalError::user("instance is not ready"))?;
        self.apply_config(ep, cx, mr, &iid).await?;
        let r = ep.client().create_backup(&iid).await;
        ep.record(
            "create_backup",
            &errors::outcome_call(r.as_ref().err().map(|e| e.call_error())),
        );
        let created = r.map_err(|e| errors::backup_manager(&ep.url, e))?;
        // Write-ahead: the id is persisted before anything else happens.
        set_id(mr, created.id);
        cx.save_meta(mr).await?;
        mr.set_condition(conditions::creating());
        cx.save_status(mr).await?;
        Ok(Creation {
            connection_details: None,
            requeue_after: Some(Duration::from_secs(2)),
        })
    }

    async fn update(&self, ep: &Self::Conn, cx: &Cx<'_, Backup>, mr: &mut Backup) -> Res<Creation> {
        let iid = self
            .instance_id(cx, mr)
            .await?
            .ok_or_else(|| ExternalError::user("instance is not ready"))?;
        self.apply_config(ep, cx, mr, &iid).await?;
        Ok(Creation::default())
    }

    async fn delete(&self, ep: &Self::Conn, cx: &Cx<'_, Backup>, mr: &mut Backup) -> Res<Deletion> {
        let (Some(bid), Some(iid)) = (backup_id(mr), self.instance_id(cx, mr).await?) else {
            return Ok(Deletion::default());
        };
        let r = ep.client().delete_backup(&iid, bid).await;
        ep.record(
            "delete_backup",
            &errors::outcome_call(r.as_ref().err().map(|e| e.call_error())),
        );
        match r {
            Ok(_) => Ok(Deletion {
                requeue_after: Some(Duration::from_secs(1)),
            }),
            Err(e) if e.is_not_found() => Ok(Deletion {
                requeue_after: Some(Duration::from_secs(1)),
            }),
            Err(e) => {
                let locked = e.call_error().status() == Some(423);
                let err = errors::backup_manager(&ep.url, e);
                Err(if locked {
                    err.requeue_after(Duration::from_secs(30))
                } else {
                    err
                })
            }
        }
    }
}
