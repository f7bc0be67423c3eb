//! The catalog the development broker offers: the `a9s-postgresql<N>` services and plans of the
//! package's `a9s-postgresql` composition (`crate::claims::postgresql`), so claims resolve by
//! name exactly as against a real a9s broker.

use serde_json::json;

use klutch_osb::{Catalog, Plan, Service};

use crate::claims::postgresql::{A9S_SERVICES, PostgresqlPlan};

/// Ids are derived from names: `devbroker-<service>` and `devbroker-<service>-<plan>`.
const ID_PREFIX: &str = "devbroker";

/// `maximum_polling_duration` of every plan, in seconds.
const MAX_POLLING_SECONDS: u64 = 1800;

/// The service id of a service name.
pub fn service_id(service: &str) -> String {
    format!("{ID_PREFIX}-{service}")
}

/// The plan id of a service and plan name.
pub fn plan_id(service: &str, plan: &str) -> String {
    format!("{ID_PREFIX}-{service}-{plan}")
}

/// The database connection limit a plan grants (`nano` 10, `small` 50, `big` 200); the
/// `max_connections` parameter overrides it per instance.
pub fn connection_limit(plan_name: &str) -> i32 {
    if plan_name.contains("-nano") {
        10
    } else if plan_name.contains("-small") {
        50
    } else {
        200
    }
}

/// Whether a plan name is a TLS (`-ssl`) plan: a plan change may not switch this.
pub fn is_ssl(plan_name: &str) -> bool {
    plan_name.contains("-ssl")
}

/// The plans a service offers: the a9s plans, `-bionic` only with PostgreSQL 13.
fn plans_of(service: &str) -> Vec<&'static str> {
    PostgresqlPlan::ALL
        .iter()
        .filter(|p| p.is_a9s())
        .map(|p| p.as_str())
        .filter(|p| !p.contains("bionic") || service.ends_with("13"))
        .collect()
}

/// The catalog served at `GET /v2/catalog`.
pub fn catalog() -> Catalog {
    let services: Vec<_> = A9S_SERVICES
        .iter()
        .map(|s| {
            let name = s.as_str();
            let plans: Vec<_> = plans_of(name)
                .into_iter()
                .map(|p| {
                    let tls = if is_ssl(p) {
                        " The development server has no TLS: `-ssl` plans behave like their plain twins."
                    } else {
                        ""
                    };
                    json!({
                        "id": plan_id(name, p), "name": p, "free": true,
                        "description": format!(
                            "{p}: a database and owner role on the development PostgreSQL server, \
                             connection limit {}.{tls}", connection_limit(p)),
                        "bindable": true, "plan_updateable": true,
                        "maximum_polling_duration": MAX_POLLING_SECONDS,
                    })
                })
                .collect();
            json!({
                "id": service_id(name), "name": name, "bindable": true,
                "description": format!("PostgreSQL ({name}) from the klutch development broker"),
                "instances_retrievable": true, "bindings_retrievable": true,
                "plan_updateable": true, "tags": ["sql", "postgresql", "a9s-dev-broker"],
                "metadata": {"displayName": name, "providerDisplayName": "klutch a9s-dev-broker"},
                "plans": plans,
            })
        })
        .collect();
    serde_json::from_value(json!({ "services": services })).unwrap_or_default()
}

/// Finds a service and plan of the catalog by their ids.
pub fn lookup<'a>(
    catalog: &'a Catalog,
    service_id: &str,
    plan_id: &str,
) -> Option<(&'a Service, &'a Plan)> {
    let service = catalog.services.iter().find(|s| s.id == service_id)?;
    let plan = service.plans.iter().find(|p| p.id == plan_id)?;
    Some((service, plan))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_offers_every_a9s_service_with_its_plans() {
        let c = catalog();
        assert_eq!(c.services.len(), A9S_SERVICES.len());
        let pg13 = c
            .services
            .iter()
            .find(|s| s.name == "a9s-postgresql13")
            .unwrap();
        assert!(
            pg13.plans
                .iter()
                .any(|p| p.name == "postgresql-single-nano-bionic")
        );
        let pg17 = c
            .services
            .iter()
            .find(|s| s.name == "a9s-postgresql17")
            .unwrap();
        assert!(
            pg17.plans
                .iter()
                .any(|p| p.name == "postgresql-replica-small-ssl")
        );
        assert!(
            !pg17
                .plans
                .iter()
                .any(|p| p.name.contains("bionic") || p.name.contains("medium"))
        );
        let (s, p) = lookup(
            &c,
            &service_id("a9s-postgresql17"),
            &plan_id("a9s-postgresql17", "postgresql-single-small"),
        )
        .unwrap();
        assert_eq!(
            (s.name.as_str(), p.name.as_str()),
            ("a9s-postgresql17", "postgresql-single-small")
        );
        assert_eq!(connection_limit(&p.name), 50);
    }
}
