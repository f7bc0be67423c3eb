//! The `restore` controller (spec 7): restores a Backup through the a9s Backup Manager. The
//! API cannot delete restores: a deleted Restore is released once the restore no longer runs.

use std::sync::Arc;
use std::time::Duration;

use klutch_sdk::crossplane::ExternalError;
use klutch_sdk::crossplane::conditions;
use klutch_sdk::crossplane::{Creation, Deletion, ExternalClient, Managed as _, Observation};
use kube::ResourceExt as _;
use kube::api::Api;

use super::backup::backup_id;
use super::common::{self, external_name};
use crate::backup::JobStatus;
use crate::provider::api::restore::RestoreState;
use crate::provider::api::{Backup, Restore, RestoreObservation};
use crate::provider::config::{BackupEndpoint, errors};
use crate::provider::meta::{self, EXTERNAL_CREATE_PENDING, EXTERNAL_NAME, RESTORE_ID};
use crate::provider::state::{Cx, State};

/// The Restore kind.
#[derive(Debug, Default, Clone, Copy)]
pub struct RestoreController;

type Res<T> = Result<T, ExternalError>;

fn at(mr: &mut Restore) -> &mut RestoreObservation {
    mr.status
        .get_or_insert_with(Default::default)
        .at_provider
        .get_or_insert_with(Default::default)
}

/// The restore id: external-name, `status.atProvider.restoreId` or the v1.5 annotation.
pub fn restore_id(mr: &Restore) -> Option<u64> {
    external_name(mr)
        .and_then(|v| v.parse().ok())
        .or_else(|| {
            mr.status
                .as_ref()
                .and_then(|s| s.at_provider.as_ref())
                .and_then(|a| a.restore_id)
                .and_then(|i| u64::try_from(i).ok())
        })
        .or_else(|| {
            meta::annotation(&mr.metadata.annotations, RESTORE_ID).and_then(|v| v.parse().ok())
        })
}

fn set_id(mr: &mut Restore, id: u64) {
    mr.set_annotation(EXTERNAL_NAME, id.to_string());
    mr.set_annotation(RESTORE_ID, id.to_string());
    at(mr).restore_id = i64::try_from(id).ok();
}

fn state_of(s: &JobStatus) -> Option<RestoreState> {
    Some(match s {
        JobStatus::Queued => RestoreState::Queued,
        JobStatus::Running => RestoreState::Running,
        JobStatus::Done => RestoreState::Done,
        JobStatus::Failed => RestoreState::Failed,
        JobStatus::Deleted => RestoreState::Deleted,
        _ => return None,
    })
}

impl RestoreController {
    async fn ids(&self, cx: &Cx<'_, Restore>, mr: &mut Restore) -> Res<Option<(String, u64)>> {
        let a = mr
            .status
            .as_ref()
            .and_then(|s| s.at_provider.clone())
            .unwrap_or_default();
        if let (Some(i), Some(b)) = (
            a.instance_id.filter(|s| !s.is_empty()),
            a.backup_id.and_then(|b| u64::try_from(b).ok()),
        ) {
            return Ok(Some((i, b)));
        }
        let ns = common::claim_namespace(mr);
        let items = common::by_claim::<Backup>(
            cx.client(),
            &mr.spec.for_provider.backup_name,
            ns.as_deref(),
        )
        .await?;
        if items.is_empty() && mr.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        let b = common::exactly_one(items, "Backup", "backup was not found")?;
        let iid = b
            .status
            .as_ref()
            .and_then(|s| s.at_provider.as_ref())
            .and_then(|a| a.instance_id.clone());
        match (iid, backup_id(&b)) {
            (Some(i), Some(bid)) => {
                let o = at(mr);
                o.instance_id = Some(i.clone());
                o.backup_id = i64::try_from(bid).ok();
                cx.save_status(mr).await?;
                Ok(Some((i, bid)))
            }
            _ => Err(ExternalError::user("backup is not ready")
                .with_ready(conditions::creating())
                .requeue_after(Duration::from_secs(5))),
        }
    }
}

impl ExternalClient<Restore, State> for RestoreController {
    const CONTROLLER: &'static str = "restore";
    const IDEMPOTENT_CREATE: bool = false;
    type Conn = Arc<BackupEndpoint>;

    async fn connect(&self, cx: &Cx<'_, Restore>, mr: &Restore) -> Res<Self::Conn> {
        let pc = &mr.spec.resource.provider_config_ref.name;
        let ep = cx
            .state()
            .clients
            .backup_manager(cx.client(), pc, "Restore")
            .await?;
        Ok(ep)
    }

    async fn recover_create(
        &self,
        ep: &Self::Conn,
        cx: &Cx<'_, Restore>,
        mr: &mut Restore,
    ) -> Res<bool> {
        if restore_id(mr).is_some() {
            return Ok(true);
        }
        let Some((iid, bid)) = self.ids(cx, mr).await? else {
            return Ok(false);
        };
        let Some(pending) = meta::annotation(&mr.metadata.annotations, EXTERNAL_CREATE_PENDING)
            .and_then(|v| v.parse::<jiff::Timestamp>().ok())
        else {
            return Ok(false);
        };
        let r = ep.client().list_restores(&iid).await;
        ep.record(
            "list_restores",
            &errors::outcome_call(r.as_ref().err().map(|e| e.call_error())),
        );
        let restores = r.map_err(|e| errors::backup_manager(&ep.url, e))?;
        let claimed: Vec<u64> = Api::<Restore>::all(cx.client().clone())
            .list(&Default::default())
            .await
            .map_err(|e| ExternalError::with_source("cannot list Restores", e))?
            .items
            .iter()
            .filter(|r| r.uid() != mr.uid())
            .filter_map(restore_id)
            .collect();
        let lo = pending - jiff::SignedDuration::from_secs(5);
        let hi = pending + jiff::SignedDuration::from_secs(120);
        let candidates: Vec<u64> = restores
            .iter()
            .filter(|r| r.backup_id == Some(bid))
            .filter(|r| r.triggered_at().is_some_and(|t| t >= lo && t <= hi))
            .filter(|r| !claimed.contains(&r.id))
            .map(|r| r.id)
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
        cx: &Cx<'_, Restore>,
        mr: &mut Restore,
    ) -> Res<Observation> {
        let deleting = mr.metadata.deletion_timestamp.is_some();
        let Some((iid, _)) = self.ids(cx, mr).await? else {
            return Ok(Observation::default());
        };
        let Some(rid) = restore_id(mr) else {
            return Ok(Observation::default());
        };
        if external_name(mr).is_none() {
            set_id(mr, rid);
            cx.save_meta(mr).await?;
        }
        let r = ep.client().get_restore(&iid, rid).await;
        ep.record(
            "get_restore",
            &errors::outcome_call(r.as_ref().err().map(|e| e.call_error())),
        );
        let restore = match r {
            Ok(x) => x,
            Err(e) if e.is_not_found() && deleting => return Ok(Observation::default()),
            Err(e) if e.is_not_found() => {
                mr.set_condition(conditions::unavailable("Restore has been deleted"));
                return Ok(Observation {
                    exists: true,
                    up_to_date: true,
                    ..Default::default()
                });
            }
            Err(e) => return Err(errors::backup_manager(&ep.url, e)),
        };
        let running = matches!(restore.status, JobStatus::Queued | JobStatus::Running);
        if deleting && !running {
            return Ok(Observation::default());
        }
        let a = at(mr);
        a.state = state_of(&restore.status);
        a.triggered_at = restore.triggered_at.clone();
        a.finished_at = restore.finished_at.clone();
        let c = match &restore.status {
            JobStatus::Queued | JobStatus::Running => conditions::creating(),
            JobStatus::Done => conditions::available_with("Restore completed successfully"),
            JobStatus::Failed => conditions::unavailable("Restore has failed"),
            JobStatus::Deleted => conditions::unavailable("Restore has been deleted"),
            other => conditions::unavailable(format!("unknown restore state {}", other.as_str())),
        };
        mr.set_condition(c);
        Ok(Observation {
            exists: true,
            up_to_date: true,
            connection_details: None,
            requeue_after: running.then_some(Duration::from_secs(2)),
        })
    }

    async fn create(
        &self,
        ep: &Self::Conn,
        cx: &Cx<'_, Restore>,
        mr: &mut Restore,
    ) -> Res<Creation> {
        let (iid, bid) = self
            .ids(cx, mr)
            .await?
            .ok_or_else(|| ExternalError::user("backup is not ready"))?;
        let r = ep.client().create_restore(&iid, bid).await;
        ep.record(
            "create_restore",
            &errors::outcome_call(r.as_ref().err().map(|e| e.call_error())),
        );
        let created = r.map_err(|e| errors::backup_manager(&ep.url, e))?;
        set_id(mr, created.id);
        cx.save_meta(mr).await?;
        mr.set_condition(conditions::creating());
        cx.save_status(mr).await?;
        Ok(Creation {
            connection_details: None,
            requeue_after: Some(Duration::from_secs(2)),
        })
    }

    async fn update(
        &self,
        _ep: &Self::Conn,
        _cx: &Cx<'_, Restore>,
        _mr: &mut Restore,
    ) -> Res<Creation> {
        Ok(Creation::default())
    }

    async fn delete(
        &self,
        _ep: &Self::Conn,
        _cx: &Cx<'_, Restore>,
        mr: &mut Restore,
    ) -> Res<Deletion> {
        let state = mr
            .status
            .as_ref()
            .and_then(|s| s.at_provider.as_ref())
            .and_then(|a| a.state);
        let what = match state {
            Some(RestoreState::Queued) => "queued",
            _ => "running",
        };
        Err(
            ExternalError::user(format!("cannot delete restore that is still {what}"))
                .with_ready(conditions::deleting())
                .requeue_after(Duration::from_secs(5)),
        )
    }
}
