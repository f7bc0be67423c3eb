//! Per a9s data service: the credentials Secrets and provider-anynines ProviderConfigs of its
//! service broker and Backup Manager, with `${VARS}` placeholders for the local values.

use serde_json::{Value, json};

use crate::crossplane::CROSSPLANE_NAMESPACE;
use crate::dataservices::{DATA_SERVICES, DataService, Endpoint};

/// The Secret and ProviderConfig of every data service and endpoint, in Klutch's order.
pub fn data_service_configs() -> Vec<Value> {
    let mut out = Vec::with_capacity(DATA_SERVICES.len() * 4);
    for service in &DATA_SERVICES {
        for endpoint in Endpoint::ALL {
            out.push(credentials_secret(service, endpoint));
            out.push(provider_config(service, endpoint));
        }
    }
    out
}

/// The credentials Secret of one endpoint: base64 user name and password from placeholders.
pub fn credentials_secret(service: &DataService, endpoint: Endpoint) -> Value {
    let [_, username, password] = service.placeholders(endpoint);
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": service.credentials_secret_name(endpoint),
            "namespace": CROSSPLANE_NAMESPACE,
        },
        "type": "Opaque",
        "data": {
            "username": format!("${{{username}}}"),
            "password": format!("${{{password}}}"),
        },
    })
}

/// The provider-anynines ProviderConfig of one endpoint.
pub fn provider_config(service: &DataService, endpoint: Endpoint) -> Value {
    let [url, _, _] = service.placeholders(endpoint);
    let secret = service.credentials_secret_name(endpoint);
    let key_ref = |key: &str| json!({ "secretRef": { "namespace": CROSSPLANE_NAMESPACE, "name": secret, "key": key } });
    json!({
        "apiVersion": "dataservices.anynines.com/v1",
        "kind": "ProviderConfig",
        "metadata": { "name": service.provider_config_name(endpoint) },
        "spec": {
            "url": format!("${{{url}}}"),
            "serviceType": endpoint.service_type(),
            "healthCheckEndpoint": endpoint.health_check_endpoint(),
            "providerCredentials": {
                "source": "Secret",
                "username": key_ref("username"),
                "password": key_ref("password"),
            },
        },
    })
}

/// Every `${VAR}` the data-service part of `configure` uses, in order.
///
/// ```
/// let vars = klutch_release::provider_configs::variables();
/// assert_eq!(vars[0], "POSTGRESQL_SERVICE_BROKER_URL");
/// assert_eq!(vars.len(), 8 * 2 * 3);
/// ```
pub fn variables() -> Vec<String> {
    DATA_SERVICES
        .iter()
        .flat_map(|s| {
            Endpoint::ALL
                .into_iter()
                .flat_map(move |e| s.placeholders(e))
        })
        .collect()
}
