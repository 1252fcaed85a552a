//! The linearizability checker on a 100,000-operation history over 100 keys and 50 clients,
//! produced by the reference workload (a simulated linearizable store with random latencies,
//! 1% failed and 1% unknown outcomes, 1% RANGE). The target is under 2 s per check.
//! Run with `cargo bench -p sim --bench checker`.

use criterion::{criterion_group, criterion_main, Criterion};
use sim::checker::generator::{generate, Workload};
use sim::checker::{check, CheckConfig};

fn workload() -> Workload {
    Workload {
        seed: 7,
        clients: 50,
        keys: 100,
        operations: 100_000,
        latency_ns_max: 2_000_000,
        failed_per_mille: 10,
        unknown_per_mille: 10,
        range_per_mille: 10,
        values_distinct: None,
    }
}

fn check_large_history(criterion: &mut Criterion) {
    let history = generate(&workload());
    let config = CheckConfig::default();
    let report = check(&history, &config);
    assert!(report.is_linearizable(), "{report}");
    eprintln!("{report}");
    let mut group = criterion.benchmark_group("checker");
    group.sample_size(10);
    group.bench_function("check 100k operations, 100 keys, 50 clients", |bencher| {
        bencher.iter(|| check(&history, &config));
    });
    group.finish();
}

criterion_group!(benches, check_large_history);
criterion_main!(benches);
