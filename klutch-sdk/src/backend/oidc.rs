//! An OpenID Connect [`Authenticator`]: authorization code with PKCE (S256) and a nonce, the ID
//! token verified against the issuer's published keys (signature, `iss`, `aud` = client id,
//! `exp`, `nonce`) before `sub` and `iss` are trusted, and the OAuth 2.0 device authorization
//! grant (RFC 8628) for non-interactive logins.
//!
//! Discovery, PKCE, the token exchange and ID token verification are the `openidconnect` crate's;
//! this module only connects it to reqwest and to the SDK's [`Authenticator`] contract.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreProviderMetadata, CoreTokenResponse,
};
use openidconnect::{
    AsyncHttpClient, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, HttpRequest, HttpResponse, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse as _,
};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};

use super::contract::{
    AuthError, Authenticator, DeviceAuthorization, DevicePoll, LoginStart, VerifiedIdentity,
};

/// The scopes requested (as upstream).
pub const SCOPES: [&str; 3] = ["profile", "email", "offline_access"];

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
    http: Http,
    client_id: String,
    client_secret: SecretString,
    token_endpoint: Option<String>,
    device_endpoint: Option<String>,
}

impl std::fmt::Debug for OidcAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcAuthenticator")
            .field("client_id", &self.client_id)
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
    /// Discovers the provider (`/.well-known/openid-configuration` and its keys).
    pub async fn discover(config: OidcConfig) -> Result<Self, Error> {
        crate::tls::install_crypto_provider();
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
            http,
            client_id: config.client_id,
            client_secret: config.client_secret,
            token_endpoint: extras.token_endpoint,
            device_endpoint: extras.device_authorization_endpoint,
        })
    }

    fn verify(
        &self,
        id_token: &CoreIdToken,
        nonce: Option<&Nonce>,
    ) -> Result<VerifiedIdentity, AuthError> {
        let verifier = self.client.id_token_verifier();
        let claims = match nonce {
            Some(nonce) => id_token.claims(&verifier, nonce),
            // The device grant has no nonce; everything else is verified the same way.
            None => id_token.claims(&verifier, |_: Option<&Nonce>| Ok(())),
        }
        .map_err(|e| AuthError::InvalidToken(Box::new(e)))?;
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
        // Client authentication in the form body (`client_secret_post`): Dex keeps the secret of
        // the device request to redeem the code when the user approves.
        let mut form = form.to_vec();
        form.push(("client_id", &self.client_id));
        form.push(("client_secret", self.client_secret.expose_secret()));
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
        self.verify(id_token, Some(&Nonce::new(pending.nonce)))
    }

    fn supports_device_flow(&self) -> bool {
        self.device_endpoint.is_some() && self.token_endpoint.is_some()
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
        self.verify(&id_token, None).map(DevicePoll::Done)
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
