//! A scripted browser for the bind protocol's login step: an HTTP client that follows redirects
//! one by one, keeps cookies per host, and fills Dex's login form — enough to drive
//! `kubectl bind`'s browser step, a backend's `/authorize → Dex → /callback → /resources →
//! /bind` flow, in tests and demos without a real browser.
//!
//! ```no_run
//! # async fn demo(login_url: &str) -> klutch_sdk::testenv::Result<()> {
//! use klutch_sdk::testenv::browser::Browser;
//!
//! let mut browser = Browser::new()?;
//! // Logs in at Dex and binds `mangodbs`; the last redirect goes to kubectl-bind's callback.
//! let done = browser
//!     .bind(login_url, "alice@example.com", "password", "mangodbs", "http://127.0.0.1:")
//!     .await?;
//! println!("kubectl bind received {done}");
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

use super::error::{Error, Result};

/// How many redirects and form posts one call follows before giving up.
const MAX_STEPS: usize = 30;

/// One response: status, resolved `Location`, body.
#[derive(Clone, Debug)]
pub struct Page {
    /// The URL that was requested.
    pub url: String,
    /// The HTTP status code.
    pub status: u16,
    /// The `Location` header resolved against [`Page::url`], if any.
    pub location: Option<String>,
    /// The body as text.
    pub body: String,
}

/// A cookie-keeping HTTP client that never follows redirects on its own.
#[derive(Clone, Debug)]
pub struct Browser {
    http: reqwest::Client,
    /// Cookies per `host:port`.
    cookies: BTreeMap<String, BTreeMap<String, String>>,
}

impl Browser {
    /// A browser with an empty cookie jar (plain HTTP and TLS with the system roots).
    pub fn new() -> Result<Self> {
        crate::tls::install_crypto_provider();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|source| Error::Http {
                what: "build the browser's HTTP client".into(),
                source,
            })?;
        Ok(Self {
            http,
            cookies: BTreeMap::new(),
        })
    }

    /// `GET url`.
    pub async fn get(&mut self, url: &str) -> Result<Page> {
        let req = self.http.get(url);
        self.send(req, url).await
    }

    /// `POST url` with a form body.
    pub async fn post_form(&mut self, url: &str, form: &[(&str, &str)]) -> Result<Page> {
        let req = self.http.post(url).form(form);
        self.send(req, url).await
    }

    /// The whole login-and-bind flow from a login URL (as `kubectl bind` prints it): follows
    /// redirects, logs in at Dex's password form as `email`, waits until the backend's catalogue
    /// offers `plural` (it fills from watches), clicks its Bind link and follows redirects until
    /// one points at a URL starting with `stop_prefix` (e.g. the CLI's local callback), which is
    /// requested too. Returns that URL.
    pub async fn bind(
        &mut self,
        login_url: &str,
        email: &str,
        password: &str,
        plural: &str,
        stop_prefix: &str,
    ) -> Result<String> {
        let mut page = self.get(login_url).await?;
        let mut catalogue_waits = 0;
        for _ in 0..MAX_STEPS * 10 {
            if let Some(location) = page.location.clone() {
                if location.starts_with(stop_prefix) {
                    let last = self.get(&location).await?;
                    if last.status >= 400 {
                        return Err(status_error(&last, "the final redirect target"));
                    }
                    return Ok(location);
                }
                page = self.get(&location).await?;
                continue;
            }
            if page.status != 200 {
                return Err(status_error(&page, "the login flow"));
            }
            if let Some(link) = bind_link(&page.body, plural) {
                let target = resolve(&page.url, &link)?;
                page = self.get(&target).await?;
            } else if page.body.contains("btn-primary") || page.url.contains("/resources") {
                // The catalogue, without our resource yet.
                catalogue_waits += 1;
                if catalogue_waits > 150 {
                    return Err(Error::Timeout {
                        what: format!("the catalogue at {} to offer {plural}", page.url),
                        waited: Duration::from_secs(30),
                    });
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                let url = page.url.clone();
                page = self.get(&url).await?;
            } else if let Some(action) = form_action(&page.body) {
                let target = resolve(&page.url, &action)?;
                page = self
                    .post_form(&target, &[("login", email), ("password", password)])
                    .await?;
            } else {
                return Err(Error::Browser(format!(
                    "the page at {} has neither a login form nor a Bind link for {plural}: {}",
                    page.url,
                    truncate(&page.body)
                )));
            }
        }
        Err(Error::Browser(format!(
            "no redirect to {stop_prefix} after {} steps",
            MAX_STEPS * 10
        )))
    }

    async fn send(&mut self, req: reqwest::RequestBuilder, url: &str) -> Result<Page> {
        let host = host_key(url)?;
        let mut req = req;
        if let Some(jar) = self.cookies.get(&host).filter(|j| !j.is_empty()) {
            let header: Vec<String> = jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            req = req.header(COOKIE, header.join("; "));
        }
        let what = || format!("GET/POST {url}");
        let resp = req.send().await.map_err(|source| Error::Http {
            what: what(),
            source,
        })?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let jar = self.cookies.entry(host).or_default();
        for set in headers.get_all(SET_COOKIE) {
            let Ok(set) = set.to_str() else { continue };
            let first = set.split(';').next().unwrap_or_default();
            if let Some((k, v)) = first.split_once('=') {
                if v.trim().is_empty() || set.contains("Max-Age=0") {
                    jar.remove(k.trim());
                } else {
                    jar.insert(k.trim().to_owned(), v.trim().to_owned());
                }
            }
        }
        let location = match headers.get(LOCATION).and_then(|l| l.to_str().ok()) {
            Some(l) => Some(resolve(url, l)?),
            None => None,
        };
        let body = resp.text().await.map_err(|source| Error::Http {
            what: what(),
            source,
        })?;
        Ok(Page {
            url: url.to_owned(),
            status,
            location,
            body,
        })
    }
}

fn host_key(url: &str) -> Result<String> {
    let parsed =
        url::Url::parse(url).map_err(|e| Error::Browser(format!("invalid URL {url}: {e}")))?;
    Ok(format!(
        "{}:{}",
        parsed.host_str().unwrap_or_default(),
        parsed.port_or_known_default().unwrap_or(0)
    ))
}

fn resolve(base: &str, location: &str) -> Result<String> {
    url::Url::parse(base)
        .and_then(|b| b.join(location))
        .map(String::from)
        .map_err(|e| Error::Browser(format!("cannot resolve {location} against {base}: {e}")))
}

fn status_error(page: &Page, what: &str) -> Error {
    Error::HttpStatus {
        what: format!("{what}: {}", page.url),
        status: page.status,
        body: truncate(&page.body),
    }
}

fn truncate(body: &str) -> String {
    body.chars().take(500).collect()
}

fn unescape(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&#43;", "+")
        .replace("&#x2F;", "/")
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
}

/// The `action` of the first `<form>` of an HTML page (attribute entities decoded).
///
/// ```
/// let html = r#"<form method="post" action="/dex/auth/local/login?back=&amp;state=x">"#;
/// assert_eq!(
///     klutch_sdk::testenv::browser::form_action(html).as_deref(),
///     Some("/dex/auth/local/login?back=&state=x")
/// );
/// ```
pub fn form_action(html: &str) -> Option<String> {
    let form = &html[html.find("<form")?..];
    let form = &form[..form.find('>')?];
    let start = form.find("action=\"")? + "action=\"".len();
    let end = form[start..].find('"')?;
    Some(unescape(&form[start..start + end]))
}

/// The `href` of the Bind link of `plural` on a backend's catalogue page (`/resources`): the
/// anchor whose CSS classes are `btn btn-lg btn-block btn-primary <plural>`, as in Klutch.
///
/// ```
/// let html = r#"<a href="/bind?s=abc&amp;resource=mangodbs&amp;group=mangodb.com" class="btn btn-lg btn-block btn-primary mangodbs">Bind</a>"#;
/// assert_eq!(
///     klutch_sdk::testenv::browser::bind_link(html, "mangodbs").as_deref(),
///     Some("/bind?s=abc&resource=mangodbs&group=mangodb.com")
/// );
/// assert_eq!(klutch_sdk::testenv::browser::bind_link(html, "other"), None);
/// ```
pub fn bind_link(html: &str, plural: &str) -> Option<String> {
    let marker = format!("btn btn-lg btn-block btn-primary {plural}\"");
    let pos = html.find(&marker)?;
    let tag_start = html[..pos].rfind("<a")?;
    let tag = &html[tag_start..];
    let tag = &tag[..tag.find('>')?];
    let start = tag.find("href=\"")? + "href=\"".len();
    let end = tag[start..].find('"')?;
    Some(unescape(&tag[start..start + end]))
}
