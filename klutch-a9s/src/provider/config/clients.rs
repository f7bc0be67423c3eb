//! Broker and Backup Manager clients cached per ProviderConfig (spec 3.3): rebuilt only when
//! the ProviderConfig's spec (`generation`) or the credentials (values or Secret
//! `resourceVersion`) change, so connection pools and
//! the catalog cache (`--catalog-ttl`) survive across reconciles.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use klutch_osb::Catalog;
use klutch_sdk::crossplane::ExternalError;
use kube::api::Api;
use secrecy::ExposeSecret as _;

use super::credentials;
use super::errors;
use crate::backup::BackupManager;
use crate::broker::A9sBroker;
use crate::provider::api::{ProviderConfig, ServiceType};
use crate::provider::metrics::Metrics;
use crate::provider::options::Options;
use crate::transport::HttpConfig;

/// A connected service broker.
pub struct BrokerEndpoint {
    /// The ProviderConfig's name.
    pub config: String,
    /// The base URL.
    pub url: String,
    broker: A9sBroker,
    catalog: tokio::sync::Mutex<Option<(Instant, Arc<Catalog>)>>,
    catalog_ttl: Duration,
    metrics: Arc<Metrics>,
}

impl BrokerEndpoint {
    /// The client.
    pub fn broker(&self) -> &A9sBroker {
        &self.broker
    }

    /// Counts one request.
    pub fn record(&self, operation: &str, outcome: &str) {
        self.metrics.request("servicebroker", operation, outcome);
    }

    /// The catalog, cached for `--catalog-ttl`.
    pub async fn catalog(&self) -> Result<Arc<Catalog>, ExternalError> {
        let mut guard = self.catalog.lock().await;
        if let Some((at, c)) = guard.as_ref()
            && at.elapsed() < self.catalog_ttl
        {
            return Ok(c.clone());
        }
        let r = self.broker.osb().catalog().await;
        self.record("catalog", &errors::outcome_osb(&r));
        let c = Arc::new(r.map_err(|e| errors::osb(&self.url, e))?.outcome);
        *guard = Some((Instant::now(), c.clone()));
        Ok(c)
    }
}

/// A connected Backup Manager.
pub struct BackupEndpoint {
    /// The ProviderConfig's name.
    pub config: String,
    /// The base URL.
    pub url: String,
    client: BackupManager,
    metrics: Arc<Metrics>,
}

impl BackupEndpoint {
    /// The client.
    pub fn client(&self) -> &BackupManager {
        &self.client
    }

    /// Counts one request.
    pub fn record(&self, operation: &str, outcome: &str) {
        self.metrics.request("backupmanager", operation, outcome);
    }
}

enum Entry {
    Broker(Arc<BrokerEndpoint>),
    Backup(Arc<BackupEndpoint>),
}

/// The cache of clients, keyed by ProviderConfig name.
pub struct ClientCache {
    entries: Mutex<HashMap<String, (String, Entry)>>,
    broker_timeout: Duration,
    backup_manager_timeout: Duration,
    catalog_ttl: Duration,
    metrics: Arc<Metrics>,
}

impl ClientCache {
    /// An empty cache using the timeouts of `options`.
    pub fn new(options: &Options, metrics: Arc<Metrics>) -> Self {
        ClientCache {
            entries: Mutex::new(HashMap::new()),
            broker_timeout: options.broker_timeout,
            backup_manager_timeout: options.backup_manager_timeout,
            catalog_ttl: options.catalog_ttl,
            metrics,
        }
    }

    async fn resolve(
        &self,
        client: &kube::Client,
        name: &str,
        want: ServiceType,
        user: &str,
    ) -> Result<(ProviderConfig, HttpConfig, String), ExternalError> {
        let api: Api<ProviderConfig> = Api::all(client.clone());
        let pc = api
            .get_opt(name)
            .await
            .map_err(|e| {
                ExternalError::with_source(format!("cannot get ProviderConfig {name:?}"), e)
            })?
            .ok_or_else(|| {
                ExternalError::user(format!("cannot get ProviderConfig {name:?}: not found"))
            })?;
        if pc.spec.service_type != want {
            return Err(ExternalError::user(format!(
                "ProviderConfig {name:?} has serviceType {}, but a {user} needs a ProviderConfig with serviceType {}",
                pc.spec.service_type.as_str(),
                want.as_str()
            )));
        }
        let creds = credentials::extract(client, &pc.spec)
            .await
            .map_err(|e| ExternalError::user(format!("Extracting credentials: {e}")))?;
        let timeout = match want {
            ServiceType::Servicebroker => self.broker_timeout,
            ServiceType::Backupmanager => self.backup_manager_timeout,
        };
        let mut http = HttpConfig::new(pc.spec.url.clone()).timeout(timeout);
        if let Some((u, p)) = &creds.basic_auth {
            http = http.basic_auth(u.clone(), p.expose_secret().to_owned());
        }
        if let Some(tls) = &pc.spec.tls {
            if tls.insecure_skip_verify == Some(true) {
                http = http.insecure_skip_verify(true);
            }
            if tls.override_server_name.is_some() {
                tracing::warn!(
                    provider_config = name,
                    "tls.overrideServerName is not supported yet and is ignored"
                );
            }
        }
        if let Some(ca) = creds.ca_bundle {
            http = http.ca_bundle_pem(ca);
        }
        // The spec's generation, not the resourceVersion: status writes (health, users) must
        // not throw away the connection pool and the catalog cache.
        let key = format!(
            "{}/{}/{}",
            pc.metadata.uid.clone().unwrap_or_default(),
            pc.metadata.generation.unwrap_or_default(),
            creds.fingerprint
        );
        Ok((pc, http, key))
    }

    /// The broker client of ProviderConfig `name`, for a `user` kind (for messages).
    pub async fn broker(
        &self,
        client: &kube::Client,
        name: &str,
        user: &str,
    ) -> Result<Arc<BrokerEndpoint>, ExternalError> {
        let (pc, http, key) = self
            .resolve(client, name, ServiceType::Servicebroker, user)
            .await?;
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((k, Entry::Broker(b))) = entries.get(name)
            && *k == key
        {
            return Ok(b.clone());
        }
        let mut broker = A9sBroker::new(http).map_err(|e| {
            ExternalError::with_source(format!("invalid ProviderConfig {name:?}"), e)
        })?;
        if let Some(h) = &pc.spec.health_check_endpoint {
            broker = broker.with_health_endpoint(h.clone());
        }
        let ep = Arc::new(BrokerEndpoint {
            config: name.to_owned(),
            url: pc.spec.url.clone(),
            broker,
            catalog: tokio::sync::Mutex::new(None),
            catalog_ttl: self.catalog_ttl,
            metrics: self.metrics.clone(),
        });
        entries.insert(name.to_owned(), (key, Entry::Broker(ep.clone())));
        Ok(ep)
    }

    /// The Backup Manager client of ProviderConfig `name`.
    pub async fn backup_manager(
        &self,
        client: &kube::Client,
        name: &str,
        user: &str,
    ) -> Result<Arc<BackupEndpoint>, ExternalError> {
        let (pc, http, key) = self
            .resolve(client, name, ServiceType::Backupmanager, user)
            .await?;
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((k, Entry::Backup(b))) = entries.get(name)
            && *k == key
        {
            return Ok(b.clone());
        }
        let mut bm = BackupManager::new(http).map_err(|e| {
            ExternalError::with_source(format!("invalid ProviderConfig {name:?}"), e)
        })?;
        if let Some(h) = &pc.spec.health_check_endpoint {
            bm = bm.with_health_endpoint(h.clone());
        }
        let ep = Arc::new(BackupEndpoint {
            config: name.to_owned(),
            url: pc.spec.url.clone(),
            client: bm,
            metrics: self.metrics.clone(),
        });
        entries.insert(name.to_owned(), (key, Entry::Backup(ep.clone())));
        Ok(ep)
    }
}
