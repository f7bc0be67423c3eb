//! A provision-and-poll cycle against `klutch-osb`'s fake broker: latency per cycle, and the
//! number of requests per operation, which must be the minimum `Retry-After` allows.
//!
//! ```text
//! cargo bench -p klutch-benches --bench osb_provision
//! ```
//!
//! Two scenarios: an operation that is done at the first poll (1 PUT + 1 poll), and one that
//! runs 1.5 s with `Retry-After: 1` (1 PUT + polls at 0 s, 1 s, 2 s).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, criterion_main};
use klutch_osb::testing::{FakeBroker, FakeBrokerConfig, Mode, Route};
use klutch_osb::{
    CallOptions, Client, Context, Deadline, OperationKind, PollConfig, PollTarget, Poller,
    ProvisionRequest,
};

static NEXT: AtomicU64 = AtomicU64::new(0);

async fn cycle(client: &Client, poller: &Poller) -> u32 {
    let id = format!("bench-{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let req = ProvisionRequest::new("fake-db-id", "small-id")
        .context(Context::kubernetes("bench", "bench"));
    let reply = client
        .provision(&id, &req, &CallOptions::new().asynchronous())
        .await
        .expect("provision");
    let op = reply
        .outcome
        .in_progress()
        .expect("asynchronous")
        .operation
        .clone();
    let t = PollTarget::instance(OperationKind::Provision, &id, "fake-db-id", "small-id", op);
    let r = poller.wait(&t, Deadline::none(), None).await.expect("poll");
    assert!(r.outcome.is_success(), "{:?}", r.outcome);
    r.polls
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let config = PollConfig {
        min_interval: Duration::ZERO,
        ..PollConfig::default()
    };

    for (name, duration, retry_after, samples) in [
        ("done_at_first_poll", Duration::ZERO, Some(0), 100),
        (
            "retry_after_1s_duration_1500ms",
            Duration::from_millis(1500),
            Some(1),
            10,
        ),
    ] {
        let (broker, client) = rt.block_on(async {
            let b = FakeBroker::start(FakeBrokerConfig {
                mode: Mode::Async {
                    duration,
                    retry_after,
                },
                ..FakeBrokerConfig::default()
            })
            .await
            .expect("fake broker");
            let c = b.client_builder().build().expect("client");
            (b, c)
        });
        let poller = Poller::with_config(client.clone(), config.clone());
        // Requests per operation, measured once outside the timing loop.
        broker.clear_requests();
        let polls = rt.block_on(cycle(&client, &poller));
        let puts = broker.count(Route::Provision);
        let gets = broker.count(Route::InstanceLastOperation);
        println!(
            "osb_provision/{name}: {} requests per operation ({puts} PUT + {gets} last_operation; poller counted {polls})",
            puts + gets
        );
        let mut g = c.benchmark_group("osb_provision_and_poll");
        g.sample_size(samples);
        if duration > Duration::ZERO {
            g.measurement_time(Duration::from_secs(25));
        }
        g.bench_function(name, |b| b.to_async(&rt).iter(|| cycle(&client, &poller)));
        g.finish();
        drop(broker);
    }
}

// `criterion_group!` generates an undocumented `pub fn`.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench);
}
use group::benches;
criterion_main!(benches);
