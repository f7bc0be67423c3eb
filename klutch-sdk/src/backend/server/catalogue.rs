//! The catalogue and the bind (spec §3.5–§3.6): `/resources` shows what the logged-in user may
//! bind (HTML, or a [`Catalogue`] as JSON), `/bind` ensures the binding space and answers the
//! [`BindingResponse`] (a redirect to the CLI's callback, or JSON for the device flow).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::problem::{Problem, bad_request, internal, valid_id};
use super::{Inner, redirect_with_cookies, resources_page};
use crate::api::export_request::{APIServiceExportRequestSpec, ExportRequestResource};
use crate::api::naming::binding_name;
use crate::api::wellknown;
use crate::api::wire::{
    APIServiceExportRequestResponse, BindingResponse, BindingResponseAuthentication, Catalogue,
    CodeGrantSession, RequestMetadata,
};
use crate::backend::contract::{BindingBackend, Offering};
use crate::backend::session::{self, Session};

fn no_cache(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::EXPIRES,
        HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 UTC"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate, max-age=0"),
    );
    h.insert("x-accel-expires", HeaderValue::from_static("0"));
    resp
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

#[derive(Deserialize)]
pub(super) struct SidQuery {
    s: Option<String>,
}

fn require_session<B>(
    inner: &Inner<B>,
    headers: &HeaderMap,
    sid: Option<&str>,
) -> Result<Session, Problem> {
    let sid = sid
        .filter(|s| valid_id(s))
        .ok_or_else(|| bad_request("missing or invalid session id (s)"))?;
    Session::from_cookies(&session::parse_cookies(headers), sid, &inner.config.keys).ok_or_else(
        || {
            Problem(
                StatusCode::UNAUTHORIZED,
                "not logged in: start again with kubectl bind".into(),
            )
        },
    )
}

pub(super) async fn resources<B: BindingBackend>(
    State(inner): State<Arc<Inner<B>>>,
    headers: HeaderMap,
    Query(q): Query<SidQuery>,
) -> Result<Response, Problem> {
    let session = require_session(&inner, &headers, q.s.as_deref())?;
    let offerings = inner
        .backend
        .catalogue(&session.identity())
        .await
        .map_err(|e| internal("build the catalogue", &e))?;
    let resp = if wants_json(&headers) {
        let catalogue = Catalogue {
            resources: offerings.iter().map(Offering::catalogue_entry).collect(),
        };
        // Through a `Value`, so the keys come out sorted as they always did.
        Json(serde_json::to_value(&catalogue).expect("a catalogue serialises")).into_response()
    } else {
        axum::response::Html(resources_page::render(
            inner.backend.pretty_name(),
            &session.sid,
            &offerings,
        ))
        .into_response()
    };
    Ok(no_cache(resp))
}

#[derive(Deserialize)]
pub(super) struct BindQuery {
    s: Option<String>,
    group: Option<String>,
    resource: Option<String>,
}

pub(super) async fn bind<B: BindingBackend>(
    State(inner): State<Arc<Inner<B>>>,
    headers: HeaderMap,
    Query(q): Query<BindQuery>,
) -> Result<Response, Problem> {
    let session = require_session(&inner, &headers, q.s.as_deref())?;
    let resource = q
        .resource
        .filter(|r| !r.is_empty())
        .ok_or_else(|| bad_request("missing resource"))?;
    let group = q.group.unwrap_or_default();
    if let Some(approved) = &session.resource
        && *approved != binding_name(&group, &resource)
    {
        return Err(Problem(
            StatusCode::FORBIDDEN,
            format!("this device login was approved for {approved} only"),
        ));
    }
    let who = session.identity();
    // Decide before touching the cluster (spec §7 item 9).
    let offerings = inner
        .backend
        .catalogue(&who)
        .await
        .map_err(|e| internal("build the catalogue", &e))?;
    let offering: Offering = offerings
        .into_iter()
        .find(|o| o.group == group && o.resource == resource)
        .ok_or_else(|| {
            bad_request(format!(
                "{} is not offered to you",
                binding_name(&group, &resource)
            ))
        })?;
    if !inner.backend.authorise(&who, &offering).await {
        return Err(Problem(
            StatusCode::FORBIDDEN,
            format!("you may not bind {}", offering.export_name()),
        ));
    }
    let space = inner
        .spaces
        .ensure(&who.binding_identity(&session.cid))
        .await
        .map_err(|e| internal("ensure the binding space", &e))?;
    inner
        .backend
        .binding_space_ready(&who, &space)
        .await
        .map_err(|e| internal("binding space hook", &e))?;
    let response = binding_response(&session, &who.display_id(), &offering, space.kubeconfig);
    tracing::info!(sid = %session.sid, namespace = %space.namespace, export = %offering.export_name(), "bound");
    let resp = match &session.redirect_url {
        Some(redirect) => {
            let mut url =
                url::Url::parse(redirect).map_err(|e| internal("parse the redirect URL", &e))?;
            url.query_pairs_mut()
                .append_pair("response", &response.encode());
            redirect_with_cookies(url.as_str(), &[])
        }
        None => Json(response).into_response(),
    };
    Ok(no_cache(resp))
}

/// The BindingResponse of one bind (spec §3.6).
pub fn binding_response(
    session: &Session,
    id: &str,
    offering: &Offering,
    kubeconfig: Vec<u8>,
) -> BindingResponse {
    BindingResponse {
        api_version: wellknown::API_VERSION.into(),
        kind: wellknown::BINDING_RESPONSE_KIND.into(),
        authentication: BindingResponseAuthentication {
            oauth2_code_grant: Some(CodeGrantSession {
                sid: session.sid.clone(),
                id: id.into(),
            }),
        },
        kubeconfig,
        requests: vec![APIServiceExportRequestResponse {
            api_version: wellknown::API_VERSION.into(),
            kind: "APIServiceExportRequest".into(),
            metadata: RequestMetadata {
                name: Some(offering.export_name()),
            },
            spec: APIServiceExportRequestSpec {
                parameters: None,
                resources: vec![ExportRequestResource {
                    group: offering.group.clone(),
                    resource: offering.resource.clone(),
                    versions: Vec::new(),
                    permission_claims: offering.claims.clone(),
                }],
            },
            status: serde_json::Map::new(),
        }],
    }
}
