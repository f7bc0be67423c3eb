//! The HTML catalogue of `/resources` (spec §3.5): one card per offering, header = display name,
//! lines `Group:` and `Scope:`, and a *Bind* link whose classes are
//! `btn btn-lg btn-block btn-primary <plural>` (browser tests click `a.<plural>`).

use std::fmt::Write as _;

use crate::api::export::Scope;
use crate::backend::contract::Offering;

/// Escapes text for HTML content and attribute values (for a backend's own pages, e.g. a login
/// form that carries the `state`).
///
/// ```
/// assert_eq!(
///     klutch_sdk::backend::server::escape_html(r#"<a href="x">'&'</a>"#),
///     "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
/// );
/// ```
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn query_escape(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The page for session `sid` and `offerings` (already sorted).
pub fn render(pretty_name: &str, sid: &str, offerings: &[Offering]) -> String {
    let mut cards = String::new();
    for o in offerings {
        let scope = match o.scope {
            Scope::Cluster => "Cluster",
            Scope::Namespaced => "Namespaced",
        };
        let href = format!(
            "/bind?s={}&resource={}&group={}",
            query_escape(sid),
            query_escape(&o.resource),
            query_escape(&o.group)
        );
        let _ = write!(
            cards,
            r#"
      <div class="card mb-4 shadow-sm">
        <div class="card-header"><h4 class="my-0 font-weight-normal">{name}</h4></div>
        <div class="card-body">
          <ul class="list-unstyled mt-3 mb-4">
            <li>Group: {group}</li>
            <li>Scope: {scope}</li>
          </ul>
          <a href="{href}" class="btn btn-lg btn-block btn-primary {plural}">Bind</a>
        </div>
      </div>"#,
            name = escape_html(&o.name),
            group = escape_html(&o.group),
            href = escape_html(&href),
            plural = escape_html(&o.resource),
        );
    }
    if offerings.is_empty() {
        cards.push_str("\n      <p>There is nothing you can bind yet.</p>");
    }
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>{title}: bind an API</title>
  </head>
  <body>
    <h1>{title}</h1>
    <div class="card-deck mb-3 text-center">{cards}
    </div>
  </body>
</html>
"#,
        title = escape_html(pretty_name),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_carry_the_plural_class_and_escape_everything() {
        let offerings = vec![Offering {
            group: "anynines.com".into(),
            resource: "postgresqlinstances".into(),
            versions: vec!["v1".into()],
            scope: Scope::Namespaced,
            name: "postgresqlinstance".into(),
            claims: vec![],
        }];
        let html = render("a<b", "S1", &offerings);
        assert!(html.contains(r#"class="btn btn-lg btn-block btn-primary postgresqlinstances""#));
        assert!(
            html.contains("/bind?s=S1&amp;resource=postgresqlinstances&amp;group=anynines.com")
        );
        assert!(html.contains("Group: anynines.com"));
        assert!(html.contains("Scope: Namespaced"));
        assert!(html.contains("a&lt;b"));
        assert!(render("x", "S", &[]).contains("nothing you can bind"));
    }
}
