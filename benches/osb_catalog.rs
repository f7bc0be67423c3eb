//! Parsing a 1,000-plan catalog with `klutch-osb`'s typed catalog, against the baseline of
//! plain `serde_json` into a `serde_json::Value` (goal: within 1.5×).
//!
//! ```text
//! cargo bench -p klutch-benches --bench osb_catalog
//! ```

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_main};
use serde_json::json;

/// 20 services × 50 plans, each plan with metadata, schemas and maintenance_info, like a
/// large real broker.
fn catalog_json() -> Vec<u8> {
    let services: Vec<_> = (0..20)
        .map(|s| {
            let plans: Vec<_> = (0..50)
                .map(|p| {
                    json!({
                        "id": format!("plan-{s}-{p}-6f1c2b7e-8d3a-4b5e-9c1d-2a3b4c5d6e7f"),
                        "name": format!("plan-{p}"),
                        "description": format!("Plan {p} of service {s}: {} vCPU, {} GiB memory", p % 8 + 1, (p % 8 + 1) * 4),
                        "free": p % 3 == 0,
                        "bindable": true,
                        "plan_updateable": p % 2 == 0,
                        "maximum_polling_duration": 3600,
                        "maintenance_info": {"version": format!("1.{p}.0"), "description": "OS image update"},
                        "metadata": {
                            "displayName": format!("Plan {p}"),
                            "bullets": ["Dedicated VM", "Daily backups", "Monitoring"],
                            "costs": [{"amount": {"usd": 10.5 * p as f64, "eur": 9.8 * p as f64}, "unit": "MONTHLY"}]
                        },
                        "schemas": {
                            "service_instance": {
                                "create": {"parameters": {
                                    "$schema": "http://json-schema.org/draft-04/schema#",
                                    "type": "object",
                                    "properties": {
                                        "max_connections": {"type": "integer", "minimum": 1, "maximum": 10000},
                                        "ssl": {"type": "boolean"}
                                    }
                                }},
                                "update": {"parameters": {"$schema": "http://json-schema.org/draft-04/schema#", "type": "object"}}
                            },
                            "service_binding": {"create": {"parameters": {"$schema": "http://json-schema.org/draft-04/schema#", "type": "object"}}}
                        }
                    })
                })
                .collect();
            json!({
                "id": format!("service-{s}-0b87d5f0-1f2e-4c3d-8e9f-a0b1c2d3e4f5"),
                "name": format!("a9s-service-{s}"),
                "description": "An anynines data service",
                "bindable": true,
                "instances_retrievable": true,
                "bindings_retrievable": true,
                "plan_updateable": true,
                "tags": ["sql", "database"],
                "metadata": {"displayName": format!("Service {s}"), "providerDisplayName": "anynines"},
                "plans": plans
            })
        })
        .collect();
    serde_json::to_vec(&json!({ "services": services })).expect("serialisable")
}

fn bench(c: &mut Criterion) {
    let body = catalog_json();
    let typed = klutch_osb::parse::catalog(&body).expect("valid catalog");
    assert_eq!(
        typed.services.iter().map(|s| s.plans.len()).sum::<usize>(),
        1000
    );
    let mut g = c.benchmark_group("osb_catalog_1000_plans");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("klutch_osb_typed", |b| {
        b.iter(|| klutch_osb::parse::catalog(black_box(&body)).expect("valid"))
    });
    g.bench_function("serde_json_value", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&body)).expect("valid"))
    });
    g.finish();
}

// `criterion_group!` generates an undocumented `pub fn`.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench);
}
use group::benches;
criterion_main!(benches);
