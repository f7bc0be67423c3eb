//! The final table of APIServiceBindings, as the API server formats it
//! (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`), printed like `kubectl get`.

use klutch_sdk::api::wellknown::{API_VERSION, CONSUMER_NAMESPACE};

use crate::error::{Error, Result};

/// Renders a `meta.k8s.io/v1` Table: columns of priority 0, upper-case headers, columns padded
/// and separated by three spaces, `date` cells as ages relative to `now`.
pub fn render(table: &serde_json::Value, now: k8s_openapi::jiff::Timestamp) -> String {
    let columns: Vec<(usize, String, String)> = table["columnDefinitions"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(_, c)| c["priority"].as_i64().unwrap_or(0) == 0)
        .map(|(i, c)| {
            (
                i,
                c["name"].as_str().unwrap_or_default().to_uppercase(),
                c["type"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let mut rows: Vec<Vec<String>> = vec![columns.iter().map(|(_, n, _)| n.clone()).collect()];
    for row in table["rows"].as_array().into_iter().flatten() {
        let cells = row["cells"].as_array().cloned().unwrap_or_default();
        rows.push(
            columns
                .iter()
                .map(|(i, _, kind)| {
                    let cell = cells.get(*i).cloned().unwrap_or_default();
                    match (kind.as_str(), &cell) {
                        ("date", serde_json::Value::String(s)) => s
                            .parse::<k8s_openapi::jiff::Timestamp>()
                            .map(|t| age(now.duration_since(t).as_secs()))
                            .unwrap_or_else(|_| s.clone()),
                        (_, serde_json::Value::String(s)) => s.clone(),
                        (_, serde_json::Value::Null) => "<none>".into(),
                        (_, other) => other.to_string(),
                    }
                })
                .collect(),
        );
    }
    let widths: Vec<usize> = (0..columns.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}   ", width = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// kubectl's short age: `45s`, `12m`, `5h`, `3d`.
pub fn age(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..120 => format!("{s}s"),
        120..7200 => format!("{}m", s / 60),
        7200..172_800 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// Fetches and renders the bindings in `klutch-bind`.
pub async fn bindings(client: &kube::Client) -> Result<String> {
    let request = http::Request::get(format!(
        "/apis/{API_VERSION}/namespaces/{CONSUMER_NAMESPACE}/apiservicebindings"
    ))
    .header(
        http::header::ACCEPT,
        "application/json;as=Table;v=v1;g=meta.k8s.io",
    )
    .body(Vec::new())
    .expect("a valid request");
    let table: serde_json::Value = client
        .request(request)
        .await
        .map_err(Error::kube("list APIServiceBindings as a table"))?;
    Ok(render(&table, k8s_openapi::jiff::Timestamp::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_renders_like_kubectl_get() {
        let table = serde_json::json!({
            "kind": "Table", "apiVersion": "meta.k8s.io/v1",
            "columnDefinitions": [
                {"name": "Name", "type": "string", "priority": 0},
                {"name": "Provider", "type": "string", "priority": 0},
                {"name": "Resources", "type": "string", "priority": 1},
                {"name": "Ready", "type": "string", "priority": 0},
                {"name": "Message", "type": "string", "priority": 0},
                {"name": "Age", "type": "date", "priority": 0}],
            "rows": [
                {"cells": ["mangodbs.mangodb.com", "anynines", "", "False", "Waiting for the konnector", "2026-01-01T00:00:00Z"]},
                {"cells": ["servicebindings.anynines.com", null, "", "True", "", "2025-12-31T20:00:00Z"]}]
        });
        let now: k8s_openapi::jiff::Timestamp = "2026-01-01T00:01:30Z".parse().unwrap();
        insta::assert_snapshot!(render(&table, now));
        assert_eq!(age(59), "59s");
        assert_eq!(age(600), "10m");
        assert_eq!(age(4 * 86400), "4d");
    }
}
