//! An OpenID Connect [`Authenticator`]: authorization code with PKCE (S256) and a nonce, the ID
//! token verified against the issuer's published keys (signature, `iss`, `aud` = client id,
//! `exp`, `nonce`) before `sub` and `iss` are trusted, and the OAuth 2.0 device authorization
//! grant (RFC 8628) for non-interactive logins.
//!
//! Discovery, PKCE, the token exchange and ID token verification are the `openidconnect` crate's;
//! this module only connects it to reqwest and to the SDK's [`Authenticator`] contract, and adds
//! the policy of [`OidcOptions`]:
//!
//! - ID tokens must be signed with an asymmetric algorithm of an allow-list
//!   ([`DEFAULT_ID_TOKEN_ALGS`]), whatever the IdP's discovery document advertises: an `HS256`
//!   token (a MAC keyed with the client secret, which the backend and the IdP share) is refused;
//! - `iat` more than [`OidcOptions::leeway`] in the future and an empty `sub` are refused;
//! - the device grant runs with a separate **public** client ([`OidcOptions::device_client_id`]):
//!   the confidential client secret is never sent with a device request (an IdP keeps the device
//!   request's credentials and Dex up to v2.45.1 even copies them into a browser redirect). Without
//!   a device client the backend offers no device flow.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreJwsSigningAlgorithm, CoreProviderMetadata,
    CoreTokenResponse,
};
use openidconnect::{
    AsyncHttpClient, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, HttpRequest, HttpResponse, IssuerUrl, JwsSigningAlgorithm as _,
    Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse as _,
};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};

use super::contract::{
    AuthError, Authenticator, DeviceAuthorization, DevicePoll, LoginStart, VerifiedIdentity,
};

/// The scopes requested (as upstream).
pub const SCOPES: [&str; 3] = ["profile", "email", "offline_access"];

/// The ID-token signing algorithms accepted by default: every asymmetric JWS algorithm.
pub const DEFAULT_ID_TOKEN_ALGS: [&str; 10] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
];

/// How far in the future `iat` may lie by default (clock skew between IdP and backend).
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);

/// The authenticator's policy beyond where the IdP is ([`OidcConfig`]).
#[derive(Clone, Debug)]
pub struct OidcOptions {
    /// A **public** client of the IdP for the device grant (`--oidc-device-client-id`): device
    /// requests carry only this id, never the confidential secret; device ID tokens must have it
    /// as audience. `None`: no device flow.
    pub device_client_id: Option<String>,
    /// Accepted ID-token signing algorithms (`--oidc-id-token-algs`); asymmetric ones only
    /// (`HS*` and `none` are refused by [`OidcAuthenticator::discover_with`]).
    pub id_token_algs: Vec<String>,
    /// How far in the future `iat` may lie.
    pub leeway: Duration,
}

impl Default for OidcOptions {
    fn default() -> Self {
        OidcOptions {
            device_client_id: None,
            id_token_algs: DEFAULT_ID_TOKEN_ALGS
                .iter()
                .map(|a| (*a).to_owned())
                .collect(),
            leeway: DEFAULT_LEEWAY,
        }
    }
}

/// The algorithms of `names`, refusing unknown, symmetric and `none` ones.
fn parse_algs(names: &[String]) -> Result<Vec<CoreJwsSigningAlgorithm>, Error> {
    if names.is_empty() {
        return Err(Error::Algorithm {
            name: String::new(),
            reason: "the list of ID-token algorithms is empty",
        });
    }
    names
        .iter()
        .map(|name| {
            let alg: CoreJwsSigningAlgorithm = serde_json::from_value(serde_json::json!(name))
                .map_err(|_| Error::Algorithm {
                    name: name.clone(),
                    reason: "unknown JWS algorithm",
                })?;
            match alg.key_type() {
                None => Err(Error::Algorithm {
                    name: name.clone(),
                    reason: "unsigned tokens are never accepted",
                }),
                Some(_) if alg.uses_shared_secret() => Err(Error::Algorithm {
                    name: name.clone(),
                    reason: "a MAC keyed with the client secret is not a signature by the IdP",
                }),
                Some(_) => Ok(alg),
            }
        })
        .collect()
}

/// How to reach and use the IdP.
#[derive(Clone, Debug)]
pub struct OidcConfig {
    /// `--oidc-issuer-url`.
    pub issuer_url: String,
    /// `--oidc-issuer-client-id`.
    pub client_id: String,
    /// `--oidc-issuer-client-secret`.
    pub client_secret: SecretString,
    /// `--oidc-callback-url`: this backend's `/callback` as registered at the IdP.
    pub callback_url: String,
    /// `--oidc-ca-file` contents: trust only this CA for the IdP (else the system roots).
    pub ca_pem: Option<String>,
}

/// Failure to set up the authenticator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A URL flag is not a URL.
    #[error("{flag} is not a valid URL")]
    Url {
        /// The flag.
        flag: &'static str,
        /// The parser's error.
        #[source]
        source: url::ParseError,
    },
    /// The HTTP client could not be built (e.g. a bad CA).
    #[error("build the IdP HTTP client")]
    Http(#[source] reqwest::Error),
    /// An ID-token algorithm that is not allowed.
    #[error("ID-token algorithm {name:?} refused: {reason}")]
    Algorithm {
        /// The algorithm's name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// Discovery failed.
    #[error("discover the OpenID provider at {issuer}")]
    Discovery {
        /// The issuer URL.
        issuer: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The OIDC authenticator. Cheap to share behind the backend.
pub struct OidcAuthenticator {
    client: Client,
    /// The public client of the device grant (its ID tokens' audience).
    device_client: Option<(String, Client)>,
    http: Http,
    client_id: String,
    algs: Vec<CoreJwsSigningAlgorithm>,
    leeway: Duration,
    token_endpoint: Option<String>,
    device_endpoint: Option<String>,
}

impl std::fmt::Debug for OidcAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcAuthenticator")
            .field("client_id", &self.client_id)
            .field(
                "device_client_id",
                &self.device_client.as_ref().map(|(id, _)| id),
            )
            .field("algs", &self.algs)
            .field("device_endpoint", &self.device_endpoint)
            .finish_non_exhaustive()
    }
}

/// The pending secret of a browser login.
#[derive(Serialize, Deserialize)]
struct Pending {
    pkce: String,
    nonce: String,
}

#[derive(Deserialize)]
struct DiscoveryExtras {
    #[serde(default)]
    device_authorization_endpoint: Option<String>,
    #[serde(default)]
    token_endpoint: Option<String>,
}

impl OidcAuthenticator {
    /// Discovers the provider (`/.well-known/openid-configuration` and its keys) with the
    /// default [`OidcOptions`] (asymmetric algorithms, no device flow).
    pub async fn discover(config: OidcConfig) -> Result<Self, Error> {
        Self::discover_with(config, OidcOptions::default()).await
    }

    /// Discovers the provider and applies `options`.
    pub async fn discover_with(config: OidcConfig, options: OidcOptions) -> Result<Self, Error> {
        crate::tls::install_crypto_provider();
        let algs = parse_algs(&options.id_token_algs)?;
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30));
        if let Some(pem) = &config.ca_pem {
            let cert = reqwest::Certificate::from_pem(pem.as_bytes()).map_err(Error::Http)?;
            builder = builder.tls_certs_only([cert]);
        }
        let http = Http(builder.build().map_err(Error::Http)?);
        let issuer = IssuerUrl::new(config.issuer_url.clone()).map_err(|source| Error::Url {
            flag: "--oidc-issuer-url",
            source,
        })?;
        let discovery_err = |source: Box<dyn std::error::Error + Send + Sync>| Error::Discovery {
            issuer: config.issuer_url.clone(),
            source,
        };
        let metadata = CoreProviderMetadata::discover_async(issuer, &http)
            .await
            .map_err(|e| discovery_err(Box::new(e)))?;
        // The device endpoint is not part of the core metadata; read it from the same document.
        let doc_url = format!(
            "{}/.well-known/openid-configuration",
            config.issuer_url.trim_end_matches('/')
        );
        let extras: DiscoveryExtras = http
            .0
            .get(&doc_url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| discovery_err(Box::new(e)))?
            .json()
            .await
            .map_err(|e| discovery_err(Box::new(e)))?;
        let redirect =
            RedirectUrl::new(config.callback_url.clone()).map_err(|source| Error::Url {
                flag: "--oidc-callback-url",
                source,
            })?;
        let device_client = options.device_client_id.map(|id| {
            let client = CoreClient::from_provider_metadata(
                metadata.clone(),
                ClientId::new(id.clone()),
                None,
            )
            .set_redirect_uri(redirect.clone());
            (id, client)
        });
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(config.client_id.clone()),
            Some(ClientSecret::new(
                config.client_secret.expose_secret().to_owned(),
            )),
        )
        .set_redirect_uri(redirect);
        Ok(OidcAuthenticator {
            client,
            device_client,
            http,
            client_id: config.client_id,
            algs,
            leeway: options.leeway,
            token_endpoint: extras.token_endpoint,
            device_endpoint: extras.device_authorization_endpoint,
        })
    }

    fn verify(
        &self,
        client: &Client,
        id_token: &CoreIdToken,
        nonce: Option<&Nonce>,
    ) -> Result<VerifiedIdentity, AuthError> {
        let leeway = i64::try_from(self.leeway.as_secs()).unwrap_or(i64::MAX);
        let verifier = client
            .id_token_verifier()
            // Not what discovery advertises: the allow-list, asymmetric only.
            .set_allowed_algs(self.algs.clone())
            .set_issue_time_verifier_fn(move |iat| {
                if iat.timestamp() > crate::backend::state::now_secs().saturating_add(leeway) {
                    Err(format!("issued in the future ({iat})"))
                } else {
                    Ok(())
                }
            });
        let claims = match nonce {
            Some(nonce) => id_token.claims(&verifier, nonce),
            // The device grant has no nonce; everything else is verified the same way.
            None => id_token.claims(&verifier, |_: Option<&Nonce>| Ok(())),
        }
        .map_err(|e| AuthError::InvalidToken(Box::new(e)))?;
        if claims.subject().trim().is_empty() {
            return Err(AuthError::InvalidToken(
                "the ID token has an empty sub".into(),
            ));
        }
        Ok(VerifiedIdentity {
            issuer: claims.issuer().to_string(),
            subject: claims.subject().to_string(),
        })
    }

    async fn device_post(
        &self,
        url: &str,
        form: &[(&str, &str)],
        what: &str,
    ) -> Result<(u16, serde_json::Value), AuthError> {
        // The public device client identifies itself by id only: no secret leaves the backend.
        let (device_id, _) = self.device_client.as_ref().ok_or(AuthError::Unsupported)?;
        let mut form = form.to_vec();
        form.push(("client_id", device_id));
        let resp = self
            .http
            .0
            .post(url)
            .form(&form)
            .send()
            .await
            .map_err(|e| AuthError::Provider {
                what: what.into(),
                source: Box::new(e),
            })?;
        let status = resp.status().as_u16();
        let body = resp.json().await.map_err(|e| AuthError::Provider {
            what: what.into(),
            source: Box::new(e),
        })?;
        Ok((status, body))
    }
}

impl Authenticator for OidcAuthenticator {
    async fn start_login(&self, state: &str, _callback_url: &str) -> Result<LoginStart, AuthError> {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = state.to_owned();
        let mut request = self
            .client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state),
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in SCOPES {
            request = request.add_scope(Scope::new(scope.into()));
        }
        let (url, _, nonce) = request.url();
        let pending = serde_json::to_string(&Pending {
            pkce: verifier.secret().clone(),
            nonce: nonce.secret().clone(),
        })
        .expect("pending login serialises");
        Ok(LoginStart {
            location: url.to_string(),
            pending,
        })
    }

    async fn finish_login(
        &self,
        code: &str,
        pending: &str,
        _callback_url: &str,
    ) -> Result<VerifiedIdentity, AuthError> {
        let pending: Pending = serde_json::from_str(pending)
            .map_err(|_| AuthError::Rejected("pending login is malformed".into()))?;
        let request = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| AuthError::Provider {
                what: "exchange the authorization code".into(),
                source: Box::new(e),
            })?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce));
        let tokens: CoreTokenResponse =
            request
                .request_async(&self.http)
                .await
                .map_err(|e| match e {
                    openidconnect::RequestTokenError::ServerResponse(resp) => {
                        AuthError::Rejected(format!("the IdP refused the code: {}", resp.error()))
                    }
                    other => AuthError::Provider {
                        what: "exchange the authorization code".into(),
                        source: Box::new(other),
                    },
                })?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| AuthError::Rejected("the IdP returned no ID token".into()))?;
        self.verify(&self.client, id_token, Some(&Nonce::new(pending.nonce)))
    }

    fn supports_device_flow(&self) -> bool {
        self.device_client.is_some()
            && self.device_endpoint.is_some()
            && self.token_endpoint.is_some()
    }

    async fn start_device(&self) -> Result<DeviceAuthorization, AuthError> {
        let url = self
            .device_endpoint
            .as_deref()
            .ok_or(AuthError::Unsupported)?;
        let scope = format!("openid {}", SCOPES.join(" "));
        let (status, body) = self
            .device_post(url, &[("scope", &scope)], "start a device authorization")
            .await?;
        if status != 200 {
            return Err(AuthError::Rejected(format!(
                "device authorization refused: {}",
                body["error"].as_str().unwrap_or("unknown error")
            )));
        }
        serde_json::from_value::<RawDevice>(body)
            .map(|d| DeviceAuthorization {
                device_code: d.device_code,
                user_code: d.user_code,
                verification_uri: d.verification_uri,
                verification_uri_complete: d.verification_uri_complete,
                expires_in: d.expires_in,
                interval: d.interval.unwrap_or(5),
            })
            .map_err(|e| AuthError::Provider {
                what: "read the device authorization".into(),
                source: Box::new(e),
            })
    }

    async fn poll_device(&self, device_code: &str) -> Result<DevicePoll, AuthError> {
        let url = self
            .token_endpoint
            .as_deref()
            .ok_or(AuthError::Unsupported)?;
        let (status, body) = self
            .device_post(
                url,
                &[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                    ("device_code", device_code),
                ],
                "poll the device authorization",
            )
            .await?;
        if status != 200 {
            return Ok(match body["error"].as_str().unwrap_or_default() {
                "authorization_pending" => DevicePoll::Pending,
                "slow_down" => DevicePoll::SlowDown,
                "access_denied" => DevicePoll::Denied,
                "expired_token" => DevicePoll::Expired,
                other => {
                    return Err(AuthError::Rejected(format!(
                        "device token refused: {other}"
                    )));
                }
            });
        }
        let raw = body["id_token"]
            .as_str()
            .ok_or_else(|| AuthError::Rejected("the IdP returned no ID token".into()))?;
        let id_token: CoreIdToken = raw
            .parse()
            .map_err(|e: serde_json::Error| AuthError::InvalidToken(Box::new(e)))?;
        let (_, client) = self.device_client.as_ref().ok_or(AuthError::Unsupported)?;
        self.verify(client, &id_token, None).map(DevicePoll::Done)
    }
}

#[derive(Deserialize)]
struct RawDevice {
    device_code: String,
    user_code: String,
    verification_uri: String,
    #[serde(default)]
    verification_uri_complete: Option<String>,
    expires_in: u64,
    #[serde(default)]
    interval: Option<u64>,
}

/// reqwest as openidconnect's HTTP client; never follows redirects.
#[derive(Clone)]
struct Http(reqwest::Client);

/// An HTTP failure talking to the IdP.
#[derive(Debug, thiserror::Error)]
#[error("IdP HTTP request")]
pub struct HttpError(#[source] reqwest::Error);

impl<'c> AsyncHttpClient<'c> for Http {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request).map_err(HttpError)?;
            let resp = self.0.execute(request).await.map_err(HttpError)?;
            let mut builder = http::Response::builder().status(resp.status());
            for (k, v) in resp.headers() {
                builder = builder.header(k, v);
            }
            let body = resp.bytes().await.map_err(HttpError)?;
            Ok(builder
                .body(body.to_vec())
                .expect("a response from valid parts"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn only_asymmetric_algorithms_are_allowed() {
        let defaults = parse_algs(&OidcOptions::default().id_token_algs).unwrap();
        assert_eq!(defaults.len(), DEFAULT_ID_TOKEN_ALGS.len());
        assert!(defaults.iter().all(|a| !a.uses_shared_secret()));
        assert_eq!(
            parse_algs(&names(&["RS256"])).unwrap(),
            [CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256]
        );
        for bad in ["HS256", "HS512", "none", "RS999", ""] {
            let err = parse_algs(&names(&["RS256", bad])).unwrap_err();
            assert!(matches!(err, Error::Algorithm { .. }), "{bad}: {err}");
        }
        assert!(parse_algs(&[]).is_err());
    }
}
