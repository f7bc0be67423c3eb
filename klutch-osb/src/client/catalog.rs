//! `GET /v2/catalog`, with the optional cache and its conditional revalidation (spec 2.16).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::{Method, StatusCode};

use super::exchange::Call;
use super::{CallOptions, Client};
use crate::catalog::Catalog;
use crate::error::Result;
use crate::outcome::Reply;
use crate::parse;
use crate::version::Feature;

/// The cached catalog of a client built with a cache TTL.
pub(super) struct CatalogCache {
    pub(super) ttl: Duration,
    pub(super) entry: Mutex<Option<CachedCatalog>>,
}

#[derive(Clone)]
pub(super) struct CachedCatalog {
    catalog: Catalog,
    etag: Option<String>,
    last_modified: Option<String>,
    fetched: Instant,
}

impl CatalogCache {
    fn get(&self) -> Option<CachedCatalog> {
        self.entry.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn put(&self, c: CachedCatalog) {
        *self.entry.lock().unwrap_or_else(|p| p.into_inner()) = Some(c);
    }
}

impl Client {
    /// `GET /v2/catalog`.
    ///
    /// ```no_run
    /// # async fn run(client: klutch_osb::Client) -> klutch_osb::Result<()> {
    /// let catalog = client.catalog().await?.outcome;
    /// for service in &catalog.services {
    ///     println!("{}: {} plans", service.name, service.plans.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn catalog(&self) -> Result<Reply<Catalog>> {
        self.catalog_with(&CallOptions::new()).await
    }

    /// `GET /v2/catalog` with per-call options (no originating identity is ever sent). A
    /// catalog served from the cache, fresh or revalidated by a 304, is reported with status
    /// 200.
    pub async fn catalog_with(&self, opts: &CallOptions<'_>) -> Result<Reply<Catalog>> {
        let cache = self.inner.catalog_cache.as_ref();
        let cached = cache.and_then(CatalogCache::get);
        if let (Some(cache), Some(c)) = (cache, &cached)
            && c.fetched.elapsed() < cache.ttl
        {
            return Ok(Reply {
                outcome: c.catalog.clone(),
                status: StatusCode::OK,
                request_identity: None,
                violations: vec![],
                poll_target: None,
            });
        }
        let mut call = Call::new(Method::GET, "/v2/catalog".into());
        let mut conditional = false;
        if let Some(c) = &cached
            && self.inner.version.supports(Feature::ConditionalCatalog)
        {
            if let Some(e) = &c.etag {
                call = call.header("If-None-Match", e);
                conditional = true;
            }
            if let Some(m) = &c.last_modified {
                call = call.header("If-Modified-Since", m);
                conditional = true;
            }
        }
        self.exchange(&call, opts, |a| match a.status() {
            200 => {
                let catalog = a.parse(parse::catalog)?;
                if let Some(cache) = cache {
                    cache.put(CachedCatalog {
                        catalog: catalog.clone(),
                        etag: a.header(http::header::ETAG),
                        last_modified: a.header(http::header::LAST_MODIFIED),
                        fetched: Instant::now(),
                    });
                }
                Ok(Some(catalog))
            }
            304 if conditional => {
                let Some(mut c) = cached.clone() else {
                    return Ok(None);
                };
                c.fetched = Instant::now();
                let catalog = c.catalog.clone();
                if let Some(cache) = cache {
                    cache.put(c);
                }
                Ok(Some(catalog))
            }
            _ => Ok(None),
        })
        .await
        .map(|mut reply| {
            // A revalidated cache entry is the caller's 200: the 304 is this cache's business.
            if reply.status == StatusCode::NOT_MODIFIED {
                reply.status = StatusCode::OK;
            }
            reply
        })
    }
}
