//! The documents of the bind HTTP protocol between `kubectl bind` and a backend, and the one
//! base64 codec they use.
//!
//! - `GET /export` answers a [`BindingProvider`];
//! - `GET /resources` with `Accept: application/json` answers a [`Catalogue`];
//! - `/bind` redirects to the CLI with `response=<base64url(JSON BindingResponse)>`, which
//!   carries a kubeconfig and one [`APIServiceExportRequestResponse`] (or answers the
//!   [`BindingResponse`] as JSON to a device-flow client);
//! - the device flow (our extension, advertised as [`OAuth2DeviceGrant`]): `POST
//!   /device/authorize` answers a [`DeviceAuthorizationResponse`], `POST /device/token` a
//!   [`DeviceSession`] or an [`OAuthError`].
//!
//! The backend's server (`klutch_sdk::backend::server`) writes these documents and the protocol
//! client (`klutch_sdk::backend::client`) reads them: both use these types.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use serde::{Deserialize, Serialize};

use super::export::Scope;
use super::export_request::{APIServiceExportRequest, APIServiceExportRequestSpec};
use super::wellknown;

/// The `method` of the device-grant entry of [`BindingProvider::authentication_methods`].
pub const OAUTH2_DEVICE_GRANT: &str = "OAuth2DeviceGrant";

/// What a base64 or JSON document of the protocol failed on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Not base64 in either alphabet.
    #[error("decode base64 {what}")]
    Base64 {
        /// What was decoded (`response`, `state`, `kubeconfig`).
        what: &'static str,
        /// The decoder's error.
        #[source]
        source: base64::DecodeError,
    },
    /// Not the expected JSON document.
    #[error("decode {what} JSON")]
    Json {
        /// The document.
        what: &'static str,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A well-formed document of the wrong kind or version.
    #[error("{what}: expected {expected}, got {got:?}")]
    Unexpected {
        /// The field, e.g. `BindingResponse apiVersion`.
        what: &'static str,
        /// What the protocol requires.
        expected: &'static str,
        /// What arrived.
        got: String,
    },
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Encodes as the protocol emits `state` and `response`: URL-safe alphabet with `=` padding.
///
/// ```
/// use klutch_sdk::api::wire::{decode_base64, encode_base64_url};
/// let encoded = encode_base64_url(b"\xfb\xff");
/// assert_eq!(encoded, "-_8=");
/// assert_eq!(decode_base64(&encoded, "state").unwrap(), b"\xfb\xff");
/// assert_eq!(decode_base64("+/8", "state").unwrap(), b"\xfb\xff"); // standard, unpadded
/// ```
pub fn encode_base64_url(bytes: &[u8]) -> String {
    URL_SAFE.encode(bytes)
}

/// Decodes base64 in the standard or URL-safe alphabet, padded or not; a space counts as `+`
/// (query decoding turns `+` into a space). Upstream Go CLIs decode URL-safe input with the
/// standard alphabet and fail on `-`/`_`; this codec accepts both.
pub fn decode_base64(input: &str, what: &'static str) -> Result<Vec<u8>> {
    let normalised: String = input
        .trim()
        .chars()
        .map(|c| match c {
            ' ' | '-' => '+',
            '_' => '/',
            c => c,
        })
        .filter(|c| *c != '=')
        .collect();
    let padded = format!("{normalised}{}", "=".repeat((4 - normalised.len() % 4) % 4));
    STANDARD
        .decode(padded)
        .map_err(|source| Error::Base64 { what, source })
}

/// An authentication method a backend offers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationMethod {
    /// `OAuth2CodeGrant` or [`OAUTH2_DEVICE_GRANT`].
    pub method: String,
    /// Details of the code grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2_code_grant: Option<OAuth2CodeGrant>,
    /// Details of the device grant (our extension; Klutch's CLIs skip the entry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2_device_grant: Option<OAuth2DeviceGrant>,
}

impl AuthenticationMethod {
    /// The device-grant entry of a backend reachable at `base` (`scheme://host`):
    /// `<base>/device/authorize` and `<base>/device/token`.
    ///
    /// ```
    /// let method = klutch_sdk::api::wire::AuthenticationMethod::device_grant("https://b");
    /// assert_eq!(
    ///     serde_json::to_value(&method).unwrap(),
    ///     serde_json::json!({"method": "OAuth2DeviceGrant", "oauth2DeviceGrant": {
    ///         "deviceAuthorizationURL": "https://b/device/authorize",
    ///         "tokenURL": "https://b/device/token"}})
    /// );
    /// ```
    pub fn device_grant(base: &str) -> Self {
        AuthenticationMethod {
            method: OAUTH2_DEVICE_GRANT.into(),
            oauth2_code_grant: None,
            oauth2_device_grant: Some(OAuth2DeviceGrant {
                device_authorization_url: format!("{base}/device/authorize"),
                token_url: format!("{base}/device/token"),
            }),
        }
    }
}

/// Where the code grant starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuth2CodeGrant {
    /// The backend's `/authorize` URL.
    #[serde(rename = "authenticatedURL")]
    pub authenticated_url: String,
}

/// Where the device-authorization login starts (our extension of the protocol, see
/// `docs/kubectl-bind.md`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuth2DeviceGrant {
    /// `POST` here to start: form fields `s` (sid) and `c` (cid); answers a
    /// [`DeviceAuthorizationResponse`].
    #[serde(rename = "deviceAuthorizationURL")]
    pub device_authorization_url: String,
    /// `POST` here to poll: form field `device_code`; answers a [`DeviceSession`] or an
    /// [`OAuthError`].
    #[serde(rename = "tokenURL")]
    pub token_url: String,
}

/// The document `GET /export` serves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BindingProvider {
    /// `v1alpha1` (the bare version; upstream CLIs reject anything else).
    pub api_version: String,
    /// `BindingProvider`.
    pub kind: String,
    /// The provider's display name.
    pub provider_pretty_name: String,
    /// The backend's semver, `vX.Y.Z`.
    pub version: String,
    /// Methods in order of preference.
    pub authentication_methods: Vec<AuthenticationMethod>,
}

impl BindingProvider {
    /// A provider offering the OAuth2 code grant at `authorize_url`.
    pub fn oauth2(pretty_name: &str, version: &str, authorize_url: &str) -> Self {
        BindingProvider {
            api_version: wellknown::BINDING_PROVIDER_API_VERSION.into(),
            kind: wellknown::BINDING_PROVIDER_KIND.into(),
            provider_pretty_name: pretty_name.into(),
            version: version.into(),
            authentication_methods: vec![AuthenticationMethod {
                method: wellknown::OAUTH2_CODE_GRANT.into(),
                oauth2_code_grant: Some(OAuth2CodeGrant {
                    authenticated_url: authorize_url.into(),
                }),
                oauth2_device_grant: None,
            }],
        }
    }

    /// Parses `/export`'s body and checks kind and version (the bare `v1alpha1`, or, from newer
    /// backends, `klutch.anynines.com/v1alpha1`).
    pub fn from_json(body: &[u8]) -> Result<Self> {
        let provider: BindingProvider =
            serde_json::from_slice(body).map_err(|source| Error::Json {
                what: "BindingProvider",
                source,
            })?;
        if provider.kind != wellknown::BINDING_PROVIDER_KIND {
            return Err(Error::Unexpected {
                what: "BindingProvider kind",
                expected: "BindingProvider",
                got: provider.kind,
            });
        }
        if provider.api_version != wellknown::BINDING_PROVIDER_API_VERSION
            && provider.api_version != wellknown::API_VERSION
        {
            return Err(Error::Unexpected {
                what: "BindingProvider apiVersion",
                expected: "v1alpha1",
                got: provider.api_version,
            });
        }
        Ok(provider)
    }

    /// The first OAuth2 code-grant method, if any.
    pub fn oauth2_code_grant(&self) -> Option<&OAuth2CodeGrant> {
        self.authentication_methods
            .iter()
            .find(|m| m.method == wellknown::OAUTH2_CODE_GRANT)
            .and_then(|m| m.oauth2_code_grant.as_ref())
    }

    /// The first device-grant method, if any.
    pub fn device_grant(&self) -> Option<&OAuth2DeviceGrant> {
        self.authentication_methods
            .iter()
            .find(|m| m.method == OAUTH2_DEVICE_GRANT)
            .and_then(|m| m.oauth2_device_grant.as_ref())
    }
}

/// One bindable API in the [`Catalogue`] of `/resources`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogueEntry {
    /// The API group.
    pub group: String,
    /// The plural resource name.
    pub resource: String,
    /// The served versions.
    pub versions: Vec<String>,
    /// The CRD's scope.
    pub scope: Scope,
    /// Display name.
    pub name: String,
}

/// `/resources` as JSON (`Accept: application/json`): what the logged-in user may bind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalogue {
    /// The offered APIs, sorted as the catalogue shows them.
    pub resources: Vec<CatalogueEntry>,
}

impl Catalogue {
    /// The binding names (`<resource>.<group>`, see [`super::naming`]) of the offered APIs.
    pub fn binding_names(&self) -> Vec<String> {
        self.resources
            .iter()
            .map(|r| super::naming::binding_name(&r.group, &r.resource))
            .collect()
    }
}

/// `POST /device/authorize`'s answer (RFC 8628 §3.2): the device code is sealed by the backend
/// and binds the IdP's code, `sid`, `cid` and the expiry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceAuthorizationResponse {
    /// Opaque; sent back when polling.
    pub device_code: String,
    /// The code the user types.
    pub user_code: String,
    /// Where the user goes.
    pub verification_uri: String,
    /// The same with the code filled in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_uri_complete: Option<String>,
    /// Seconds until the codes expire.
    pub expires_in: u64,
    /// Seconds between polls (5 when absent, as RFC 8628 says).
    #[serde(default = "five")]
    pub interval: u64,
}

fn five() -> u64 {
    5
}

/// `POST /device/token`'s success answer: the login session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSession {
    /// Value of the login cookie `klutch-bind-<sid>` (for `/resources` and `/bind`).
    pub session: String,
    /// The session id.
    pub sid: String,
    /// Seconds the session lives.
    #[serde(default)]
    pub expires_in: u64,
}

impl DeviceSession {
    /// The `Cookie` header value that carries this session.
    pub fn cookie(&self) -> String {
        format!("{}{}={}", wellknown::COOKIE_PREFIX, self.sid, self.session)
    }
}

/// An OAuth 2.0 error answer (RFC 6749 §5.2, RFC 8628 §3.5) of `POST /device/token`:
/// `authorization_pending`, `slow_down`, `expired_token`, `access_denied`, `invalid_grant`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthError {
    /// The error code.
    pub error: String,
    /// Human text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

impl OAuthError {
    /// An error with a description.
    pub fn new(error: &str, description: &str) -> Self {
        OAuthError {
            error: error.into(),
            error_description: Some(description.into()),
        }
    }
}

/// How the user authenticated for a [`BindingResponse`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BindingResponseAuthentication {
    /// The code grant's session.
    #[serde(default)]
    pub oauth2_code_grant: Option<CodeGrantSession>,
}

/// The session of a code grant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeGrantSession {
    /// The session id the CLI sent (`s`); the CLI checks it is its own.
    pub sid: String,
    /// `<iss>/<sub>` (informational).
    pub id: String,
}

/// Minimal metadata of an export request inside a [`BindingResponse`]: only the name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestMetadata {
    /// The request's name, `<resource>.<group>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// An APIServiceExportRequest as carried inside a [`BindingResponse`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct APIServiceExportRequestResponse {
    /// `klutch.anynines.com/v1alpha1`.
    pub api_version: String,
    /// `APIServiceExportRequest`.
    pub kind: String,
    /// Only the name.
    pub metadata: RequestMetadata,
    /// The requested resources.
    pub spec: APIServiceExportRequestSpec,
    /// Always `{}`.
    #[serde(default)]
    pub status: serde_json::Map<String, serde_json::Value>,
}

impl APIServiceExportRequestResponse {
    /// The APIServiceExportRequest to create on the provider: this name and spec, no namespace.
    pub fn to_export_request(&self) -> APIServiceExportRequest {
        let mut request = APIServiceExportRequest::new("", self.spec.clone());
        request.metadata.name = self.metadata.name.clone();
        request
    }
}

/// The result of `/bind`, delivered to the CLI's callback as `response=<base64url(JSON)>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BindingResponse {
    /// `klutch.anynines.com/v1alpha1`.
    pub api_version: String,
    /// `BindingResponse`.
    pub kind: String,
    /// How the user authenticated.
    pub authentication: BindingResponseAuthentication,
    /// The kubeconfig of the binding space (YAML bytes; standard base64 in JSON).
    #[serde(with = "kubeconfig_bytes")]
    pub kubeconfig: Vec<u8>,
    /// Exactly one export request.
    pub requests: Vec<APIServiceExportRequestResponse>,
}

mod kubeconfig_bytes {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        super::decode_base64(&text, "kubeconfig").map_err(serde::de::Error::custom)
    }
}

impl BindingResponse {
    /// Encodes for the redirect: base64url (padded) of the JSON.
    pub fn encode(&self) -> String {
        encode_base64_url(&serde_json::to_vec(self).expect("a BindingResponse serialises"))
    }

    /// Decodes `response` from the callback (either alphabet) and checks kind, versions, the
    /// presence of the code-grant session and that there is a request.
    pub fn decode(response: &str) -> Result<Self> {
        let bytes = decode_base64(response, "response")?;
        let doc: BindingResponse =
            serde_json::from_slice(&bytes).map_err(|source| Error::Json {
                what: "BindingResponse",
                source,
            })?;
        if doc.kind != wellknown::BINDING_RESPONSE_KIND {
            return Err(Error::Unexpected {
                what: "BindingResponse kind",
                expected: "BindingResponse",
                got: doc.kind,
            });
        }
        if doc.api_version != wellknown::API_VERSION {
            return Err(Error::Unexpected {
                what: "BindingResponse apiVersion",
                expected: wellknown::API_VERSION,
                got: doc.api_version,
            });
        }
        if doc.authentication.oauth2_code_grant.is_none() {
            return Err(Error::Unexpected {
                what: "BindingResponse authentication",
                expected: "oauth2CodeGrant",
                got: "none".into(),
            });
        }
        if let Some(bad) = doc
            .requests
            .iter()
            .find(|r| r.api_version != wellknown::API_VERSION)
        {
            return Err(Error::Unexpected {
                what: "export request apiVersion",
                expected: wellknown::API_VERSION,
                got: bad.api_version.clone(),
            });
        }
        if doc.requests.is_empty() {
            return Err(Error::Unexpected {
                what: "BindingResponse requests",
                expected: "one export request",
                got: "none".into(),
            });
        }
        Ok(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC_EXAMPLE: &str = r#"{
      "kind": "BindingResponse", "apiVersion": "klutch.anynines.com/v1alpha1",
      "authentication": {"oauth2CodeGrant": {"sid": "aB3xYz", "id": "https://idp.example.com/dex/CiQwOGE4"}},
      "kubeconfig": "YXBpVmVyc2lvbjogdjEK",
      "requests": [{
        "kind": "APIServiceExportRequest", "apiVersion": "klutch.anynines.com/v1alpha1",
        "metadata": {"name": "servicebindings.anynines.com"},
        "spec": {"resources": [{"group": "anynines.com", "resource": "servicebindings", "permissionClaims": [
          {"resource": "secrets", "version": "v1", "required": false, "read": {},
           "selector": {"names": ["*"], "namespaces": ["*"], "owner": "Provider"},
           "onConflict": {"recreateWhenConsumerSideDeleted": true}}]}]},
        "status": {}}]
    }"#;

    #[test]
    fn the_documented_binding_response_round_trips_in_both_alphabets() {
        let doc: BindingResponse = serde_json::from_str(SPEC_EXAMPLE).unwrap();
        assert_eq!(doc.kubeconfig, b"apiVersion: v1\n");
        let claim = &doc.requests[0].spec.resources[0].permission_claims[0];
        assert_eq!(
            claim.selector.owner,
            Some(super::super::ClaimOwner::Provider)
        );
        let url = doc.encode();
        assert_eq!(BindingResponse::decode(&url).unwrap(), doc);
        let standard = STANDARD.encode(serde_json::to_vec(&doc).unwrap());
        assert_eq!(BindingResponse::decode(&standard).unwrap(), doc);
        // Query decoding turns '+' into ' '; that still decodes.
        assert_eq!(
            BindingResponse::decode(&standard.replace('+', " ")).unwrap(),
            doc
        );
        // The wire JSON keeps Klutch's field names and the empty status.
        let json: serde_json::Value = serde_json::to_value(&doc).unwrap();
        assert_eq!(json["requests"][0]["status"], serde_json::json!({}));
        assert_eq!(json["kubeconfig"], "YXBpVmVyc2lvbjogdjEK");
        assert_eq!(
            json["requests"][0]["spec"]["resources"][0]["permissionClaims"][0]["required"],
            false
        );
    }

    #[test]
    fn bad_responses_give_typed_errors() {
        assert!(matches!(
            BindingResponse::decode("%%%"),
            Err(Error::Base64 {
                what: "response",
                ..
            })
        ));
        assert!(matches!(
            BindingResponse::decode(&encode_base64_url(b"{not json")),
            Err(Error::Json { .. })
        ));
        let mut doc: serde_json::Value = serde_json::from_str(SPEC_EXAMPLE).unwrap();
        doc["apiVersion"] = "v1alpha1".into();
        let err =
            BindingResponse::decode(&encode_base64_url(doc.to_string().as_bytes())).unwrap_err();
        assert!(
            err.to_string().contains("BindingResponse apiVersion"),
            "{err}"
        );
        let mut doc: serde_json::Value = serde_json::from_str(SPEC_EXAMPLE).unwrap();
        doc["authentication"]["oauth2CodeGrant"] = serde_json::Value::Null;
        assert!(BindingResponse::decode(&encode_base64_url(doc.to_string().as_bytes())).is_err());
        let mut doc: serde_json::Value = serde_json::from_str(SPEC_EXAMPLE).unwrap();
        doc["requests"] = serde_json::json!([]);
        assert!(BindingResponse::decode(&encode_base64_url(doc.to_string().as_bytes())).is_err());
    }

    #[test]
    fn binding_provider_accepts_both_versions_and_finds_the_code_grant() {
        let provider =
            BindingProvider::oauth2("anynines", "v1.6.0", "https://bind.example.com/authorize");
        let json = serde_json::to_value(&provider).unwrap();
        assert_eq!(json["apiVersion"], "v1alpha1");
        assert_eq!(
            json["authenticationMethods"][0]["oauth2CodeGrant"]["authenticatedURL"],
            "https://bind.example.com/authorize"
        );
        let parsed = BindingProvider::from_json(json.to_string().as_bytes()).unwrap();
        assert_eq!(
            parsed.oauth2_code_grant().unwrap().authenticated_url,
            "https://bind.example.com/authorize"
        );
        let mut newer = json.clone();
        newer["apiVersion"] = "klutch.anynines.com/v1alpha1".into();
        assert!(BindingProvider::from_json(newer.to_string().as_bytes()).is_ok());
        let mut wrong = json;
        wrong["apiVersion"] = "v2".into();
        assert!(
            BindingProvider::from_json(wrong.to_string().as_bytes())
                .unwrap_err()
                .to_string()
                .contains("apiVersion")
        );
        assert!(matches!(
            BindingProvider::from_json(b"<html>"),
            Err(Error::Json { .. })
        ));
    }

    #[test]
    fn device_grant_documents_keep_their_wire_form() {
        let mut provider = BindingProvider::oauth2("p", "v1.6.0", "https://b/authorize");
        assert!(provider.device_grant().is_none());
        provider
            .authentication_methods
            .push(AuthenticationMethod::device_grant("https://b"));
        let json = serde_json::to_value(&provider).unwrap();
        assert_eq!(
            json["authenticationMethods"][0],
            serde_json::json!({"method": "OAuth2CodeGrant",
                "oauth2CodeGrant": {"authenticatedURL": "https://b/authorize"}})
        );
        let parsed = BindingProvider::from_json(json.to_string().as_bytes()).unwrap();
        assert_eq!(
            parsed.device_grant().unwrap().token_url,
            "https://b/device/token"
        );

        let started: DeviceAuthorizationResponse = serde_json::from_str(
            r#"{"device_code":"d","user_code":"ABCD-EFGH","verification_uri":"https://idp/device","expires_in":600}"#,
        )
        .unwrap();
        assert_eq!(started.interval, 5);
        let json = serde_json::to_value(&started).unwrap();
        assert!(json.get("verification_uri_complete").is_none());
        let session = DeviceSession {
            session: "v".into(),
            sid: "s".into(),
            expires_in: 3600,
        };
        assert_eq!(session.cookie(), "klutch-bind-s=v");
        assert_eq!(
            serde_json::to_value(OAuthError::new("slow_down", "poll more slowly")).unwrap(),
            serde_json::json!({"error": "slow_down", "error_description": "poll more slowly"})
        );
        let catalogue: Catalogue = serde_json::from_str(
            r#"{"resources":[{"group":"mangodb.com","resource":"mangodbs","versions":["v1"],"scope":"Namespaced","name":"mangodb"}]}"#,
        )
        .unwrap();
        assert_eq!(catalogue.binding_names(), ["mangodbs.mangodb.com"]);
    }

    #[test]
    fn a_requests_response_becomes_the_request_to_create() {
        let doc: BindingResponse = serde_json::from_str(SPEC_EXAMPLE).unwrap();
        let request = doc.requests[0].to_export_request();
        assert_eq!(
            request.metadata.name.as_deref(),
            Some("servicebindings.anynines.com")
        );
        assert!(request.metadata.namespace.is_none() && request.status.is_none());
        assert_eq!(request.spec, doc.requests[0].spec);
    }
}
