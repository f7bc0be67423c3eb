//! A scripted browser for the bind protocol's login step: an HTTP client that follows redirects
//! one by one, keeps cookies per host, and reads the few HTML elements the flow needs (forms, the
//! catalogue's Bind links, hidden inputs) — enough to drive `kubectl bind`'s browser step, a
//! backend's `/authorize → Dex → /callback → /resources → /bind` flow, and attacks on it, in tests
//! and demos without a real browser. Every test of the workspace uses this one.
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

use reqwest::header::{COOKIE, HeaderMap, LOCATION, SET_COOKIE};

use super::error::{Error, Result};

/// How many redirects and form posts one call follows before giving up.
const MAX_STEPS: usize = 30;

/// One response: status, headers, resolved `Location`, body.
#[derive(Clone, Debug)]
pub struct Page {
    /// The URL that was requested.
    pub url: String,
    /// The HTTP status code.
    pub status: u16,
    /// The `Location` header resolved against [`Page::url`], if any.
    pub location: Option<String>,
    /// The response headers (e.g. to check `Set-Cookie`).
    pub headers: HeaderMap,
    /// The body as text.
    pub body: String,
}

impl Page {
    /// The `Location` header exactly as the server sent it (relative or absolute).
    pub fn raw_location(&self) -> Option<&str> {
        self.headers.get(LOCATION).and_then(|l| l.to_str().ok())
    }

    /// Whether the answer is a redirect with a `Location`.
    pub fn is_redirect(&self) -> bool {
        (300..400).contains(&self.status) && self.location.is_some()
    }
}

/// The cookies of one host, name → value.
pub type CookieJar = BTreeMap<String, String>;

/// A cookie-keeping HTTP client that never follows redirects on its own.
#[derive(Clone, Debug)]
pub struct Browser {
    http: reqwest::Client,
    /// Cookies per `host:port`.
    cookies: BTreeMap<String, CookieJar>,
}

impl Browser {
    /// A browser with an empty cookie jar (plain HTTP and TLS with the system roots).
    pub fn new() -> Result<Self> {
        Self::build(None)
    }

    /// A browser that trusts only the CA certificates in `pem` for TLS (a test server's
    /// self-signed certificate).
    pub fn with_root_certificates(pem: &str) -> Result<Self> {
        Self::build(Some(pem))
    }

    fn build(ca_pem: Option<&str>) -> Result<Self> {
        crate::tls::install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            // `/bind` may create a binding space: as long as kubectl-bind waits.
            .timeout(Duration::from_secs(120));
        if let Some(pem) = ca_pem {
            let certs =
                reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|source| {
                    Error::Http {
                        what: "load the browser's CA certificates".into(),
                        source,
                    }
                })?;
            builder = builder.tls_certs_only(certs);
        }
        let http = builder.build().map_err(|source| Error::Http {
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

    /// Follows `page`'s redirects until a page that is not one.
    pub async fn follow(&mut self, mut page: Page) -> Result<Page> {
        for _ in 0..MAX_STEPS {
            match page.location.clone() {
                Some(location) if page.is_redirect() => page = self.get(&location).await?,
                _ => return Ok(page),
            }
        }
        Err(Error::Browser(format!(
            "more than {MAX_STEPS} redirects from {}",
            page.url
        )))
    }

    /// `GET url` and follow its redirects, like a browser opening a link.
    pub async fn open(&mut self, url: &str) -> Result<Page> {
        let page = self.get(url).await?;
        self.follow(page).await
    }

    /// The cookies this browser holds for the host of `url`.
    pub fn cookies(&self, url: &str) -> Result<CookieJar> {
        Ok(self
            .cookies
            .get(&host_key(url)?)
            .cloned()
            .unwrap_or_default())
    }

    /// One cookie for the host of `url`.
    pub fn cookie(&self, url: &str, name: &str) -> Result<Option<String>> {
        Ok(self.cookies(url)?.remove(name))
    }

    /// Sets (or replaces) one cookie for the host of `url`, as a server's `Set-Cookie` would.
    pub fn set_cookie(&mut self, url: &str, name: &str, value: &str) -> Result<()> {
        self.cookies
            .entry(host_key(url)?)
            .or_default()
            .insert(name.to_owned(), value.to_owned());
        Ok(())
    }

    /// Replaces every cookie for the host of `url` (e.g. with another browser's, to replay them).
    pub fn set_cookies(&mut self, url: &str, jar: CookieJar) -> Result<()> {
        self.cookies.insert(host_key(url)?, jar);
        Ok(())
    }

    /// Follows redirects from `page` and logs in at Dex's password form as `email`, until a
    /// redirect points at a URL starting with `stop_prefix` (e.g. the backend's `/callback`);
    /// returns that URL without requesting it.
    pub async fn login_at_dex(
        &mut self,
        mut page: Page,
        email: &str,
        password: &str,
        stop_prefix: &str,
    ) -> Result<String> {
        for _ in 0..MAX_STEPS {
            if let Some(location) = page.location.clone() {
                if location.starts_with(stop_prefix) {
                    return Ok(location);
                }
                page = self.get(&location).await?;
                continue;
            }
            if page.status != 200 {
                return Err(status_error(&page, "the login at Dex"));
            }
            let action = form_action(&page.body).ok_or_else(|| {
                Error::Browser(format!("no form on {}: {}", page.url, truncate(&page.body)))
            })?;
            let target = resolve(&page.url, &action)?;
            page = self
                .post_form(&target, &[("login", email), ("password", password)])
                .await?;
        }
        Err(Error::Browser(format!(
            "no redirect to {stop_prefix} after {MAX_STEPS} steps"
        )))
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
            headers,
            body,
        })
    }
}

/// The value of query parameter `name` of `url`, decoded.
///
/// ```
/// use klutch_sdk::testenv::browser::query_param;
/// let url = "http://localhost:1/callback?code=a%2Bb&state=s";
/// assert_eq!(query_param(url, "code").as_deref(), Some("a+b"));
/// assert_eq!(query_param(url, "nope"), None);
/// ```
pub fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
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

/// Where `marker` (an attribute, `name="`…) first occurs after whitespace in `text`.
fn find_attribute(text: &str, marker: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(found) = text[from..].find(marker) {
        let at = from + found;
        if text[..at].ends_with(char::is_whitespace) {
            return Some(at);
        }
        from = at + marker.len();
    }
    None
}

/// The value of attribute `name` inside one tag (`tag` starts at `<` and ends before `>`),
/// entities decoded.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let marker = format!("{name}=\"");
    let start = find_attribute(tag, &marker)? + marker.len();
    let end = tag[start..].find('"')?;
    Some(unescape(&tag[start..start + end]))
}

/// The tag that contains byte position `pos` (from its `<` to before its `>`).
fn enclosing_tag(html: &str, pos: usize) -> Option<&str> {
    let start = html[..pos].rfind('<')?;
    let tag = &html[start..];
    Some(&tag[..tag.find('>')?])
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
    attribute(enclosing_tag(html, html.find("<form")? + 1)?, "action")
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
    let marker = format!("\"btn btn-lg btn-block btn-primary {plural}\"");
    let tag = enclosing_tag(html, html.find(&marker)?)?;
    tag.starts_with("<a").then(|| attribute(tag, "href"))?
}

/// The `value` of the first `<input>` named `name` (e.g. a hidden `state` field).
///
/// ```
/// let html = r#"<form><input type="hidden" name="state" value="a&amp;b"><input name="code"></form>"#;
/// assert_eq!(
///     klutch_sdk::testenv::browser::input_value(html, "state").as_deref(),
///     Some("a&b")
/// );
/// assert_eq!(klutch_sdk::testenv::browser::input_value(html, "code"), None);
/// ```
pub fn input_value(html: &str, name: &str) -> Option<String> {
    let tag = enclosing_tag(html, find_attribute(html, &format!("name=\"{name}\""))?)?;
    tag.starts_with("<input").then(|| attribute(tag, "value"))?
}
