//! `GET <url>`: the provider's BindingProvider document, checked before anything touches the
//! cluster (spec §3.2).

use super::error::{Error, Result, one_line};
use crate::api::wire::{self, BindingProvider};

/// The checked provider.
#[derive(Clone, Debug)]
pub struct Provider {
    /// The export URL it was fetched from.
    pub url: String,
    /// The document (its device grant, our extension, is [`BindingProvider::device_grant`]).
    pub document: BindingProvider,
    /// Why the provider's version is older than this client supports
    /// ([`check_provider_version`]), to show as a warning before going on. Klutch's own CLIs
    /// refuse such providers.
    pub version_warning: Option<String>,
}

/// The oldest provider version this CLI talks to (like Go CLIs ≥ 0.3.0); `v0.0.0` development
/// builds pass.
pub const MIN_PROVIDER_VERSION: semver::Version = semver::Version::new(0, 3, 0);

/// Checks the provider's `version` (spec §3.2): `v0.0.0`, `v0.0.0-master+$Format:%H$` or a
/// semver ≥ 0.3.0.
pub fn check_provider_version(version: &str) -> std::result::Result<(), String> {
    if version == "v0.0.0-master+$Format:%H$" {
        return Ok(());
    }
    let parsed = semver::Version::parse(version.trim_start_matches('v'))
        .map_err(|e| format!("provider version {version:?} is not a semantic version ({e})"))?;
    if parsed.major == 0 && parsed.minor == 0 && parsed.patch == 0 {
        return Ok(());
    }
    let release = semver::Version::new(parsed.major, parsed.minor, parsed.patch);
    if release < MIN_PROVIDER_VERSION {
        return Err(format!(
            "provider version {version} is older than the oldest supported v{MIN_PROVIDER_VERSION}"
        ));
    }
    Ok(())
}

/// Parses and checks an `/export` answer.
pub fn parse(url: &str, status: u16, content_type: &str, body: &[u8]) -> Result<Provider> {
    if status != 200 {
        return Err(Error::NotAProvider {
            url: url.into(),
            reason: format!("HTTP {status}"),
        });
    }
    let document = BindingProvider::from_json(body).map_err(|e| match &e {
        wire::Error::Unexpected { what, .. } if what.contains("apiVersion") => {
            Error::ProtocolVersion {
                url: url.into(),
                reason: e.to_string(),
            }
        }
        wire::Error::Json { .. } if !content_type.contains("json") => Error::NotAProvider {
            url: url.into(),
            reason: format!("the answer is {content_type:?}, not a BindingProvider JSON document"),
        },
        _ => Error::NotAProvider {
            url: url.into(),
            reason: one_line(&e),
        },
    })?;
    // Go CLIs refuse such providers; this client leaves the decision to its caller (kubectl-bind
    // warns), because the protocol itself is checked by `apiVersion` and klutch's own
    // components may carry low version numbers.
    let version_warning = check_provider_version(&document.version).err();
    Ok(Provider {
        url: url.into(),
        document,
        version_warning,
    })
}

/// Checks that `url` is an http(s) URL.
pub fn validate_url(url: &str) -> Result<url::Url> {
    let parsed = url::Url::parse(url).map_err(|e| Error::InvalidUrl(format!(
        "{url:?} is not a URL ({e}); pass the provider's export URL, e.g. https://bind.example.com/export"
    )))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::InvalidUrl(format!(
            "{url:?} is not an http(s) URL; pass the provider's export URL, e.g. https://bind.example.com/export"
        )));
    }
    Ok(parsed)
}

/// Fetches and checks the provider document at `url`.
pub async fn fetch(http: &reqwest::Client, url: &str) -> Result<Provider> {
    let parsed = validate_url(url)?;
    let response = http
        .get(parsed)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| Error::ProviderUnreachable {
            url: url.into(),
            reason: one_line(&e),
        })?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = response
        .bytes()
        .await
        .map_err(|e| Error::ProviderUnreachable {
            url: url.into(),
            reason: one_line(&e),
        })?;
    parse(url, status, &content_type, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"kind":"BindingProvider","apiVersion":"v1alpha1","providerPrettyName":"anynines","version":"v1.6.0",
      "authenticationMethods":[{"method":"OAuth2CodeGrant","oauth2CodeGrant":{"authenticatedURL":"https://b/authorize"}},
      {"method":"OAuth2DeviceGrant","oauth2DeviceGrant":{"deviceAuthorizationURL":"https://b/device/authorize","tokenURL":"https://b/device/token"}}]}"#;

    #[test]
    fn version_check_follows_the_go_cli() {
        assert!(check_provider_version("v1.6.0").is_ok());
        assert!(check_provider_version("v0.3.0").is_ok());
        assert!(check_provider_version("v0.4.0-rc.1").is_ok());
        assert!(check_provider_version("v0.0.0").is_ok());
        assert!(check_provider_version("v0.0.0-master+$Format:%H$").is_ok());
        assert!(
            check_provider_version("v0.2.9")
                .unwrap_err()
                .contains("older")
        );
        assert!(
            check_provider_version("latest")
                .unwrap_err()
                .contains("not a semantic")
        );
    }

    #[test]
    fn a_good_document_parses_with_its_device_grant() {
        let provider = parse("https://b/export", 200, "application/json", GOOD.as_bytes()).unwrap();
        assert_eq!(provider.document.provider_pretty_name, "anynines");
        assert_eq!(
            provider.document.device_grant().unwrap().token_url,
            "https://b/device/token"
        );
    }

    #[test]
    fn bad_answers_are_classified() {
        let err = parse("https://b/export", 404, "text/plain", b"not found").unwrap_err();
        assert!(matches!(err, Error::NotAProvider { .. }), "{err}");
        let err = parse("https://b/", 200, "text/html", b"<html>").unwrap_err();
        assert!(err.to_string().contains("text/html"), "{err}");
        let wrong = GOOD.replace("\"v1alpha1\"", "\"v1alpha2\"");
        let err = parse(
            "https://b/export",
            200,
            "application/json",
            wrong.as_bytes(),
        )
        .unwrap_err();
        assert!(matches!(err, Error::ProtocolVersion { .. }), "{err}");
        let old = GOOD.replace("v1.6.0", "v0.1.0");
        let provider = parse("https://b/export", 200, "application/json", old.as_bytes()).unwrap();
        assert!(provider.version_warning.unwrap().contains("older"));
        let good = parse("https://b/export", 200, "application/json", GOOD.as_bytes()).unwrap();
        assert!(good.version_warning.is_none());
    }
}
