//! The bounded sweep `make test` runs: every seed must pass the liveness phase and the
//! history checks. `SIM_SEEDS=N` changes the number of seeds.

#![cfg(madsim)]

use kvstore::node::ReadMode;
use sim::world::nemesis::FaultMix;
use sim::world::{run, RunConfig};

#[test]
fn a_sweep_of_seeds_passes() {
    let seeds: u64 = std::env::var("SIM_SEEDS").ok().and_then(|value| value.parse().ok()).unwrap_or(100);
    let mut failures = Vec::new();
    let mut operations = 0;
    let mut faults = Vec::new();
    let mut five_node_runs = 0;
    let (mut snapshots_saved, mut snapshots_installed) = (0, 0);
    for seed in 0..seeds {
        let outcome = run(RunConfig { safety_phase_ms: 10_000, ..RunConfig::new(seed) });
        snapshots_saved += outcome.snapshots_saved;
        snapshots_installed += outcome.snapshots_installed;
        operations += outcome.history.len();
        faults.extend(outcome.faults.iter().cloned());
        five_node_runs += u64::from(outcome.node_count == 5);
        for failure in sim::judge(&outcome) {
            failures
                .push(format!("seed {seed}: {failure} (replay: make sim SEED={seed} SIM_ARGS='--safety-ms 10000')"));
        }
    }
    assert!(operations as u64 > seeds * 200, "the sweep did too little work: {operations} operations");
    assert!(five_node_runs * 5 >= seeds, "only {five_node_runs} of {seeds} runs had five nodes");
    // The sweep is only as good as the faults it injects: every kind must occur.
    let kinds = [
        "partition",
        "bridge",
        "majorities ring",
        "isolate",
        "(the leader)",
        "cut",
        "kill",
        "pause",
        "fail the next fsync",
        "flip bit",
        "step the clock",
        "add node",
        "promote",
        "remove",
        "replace",
        "transfer leadership",
    ];
    for kind in kinds {
        let count = faults.iter().filter(|fault| fault.contains(kind)).count();
        assert!(count * 100 >= seeds as usize, "fault {kind:?} occurred only {count} times in {seeds} seeds");
    }
    // Snapshots and their transfer are only checked if they happen.
    assert!(snapshots_saved >= seeds * 5, "only {snapshots_saved} snapshots saved in {seeds} seeds");
    assert!(snapshots_installed * 5 >= seeds, "only {snapshots_installed} snapshots installed in {seeds} seeds");
    assert!(failures.is_empty(), "{} failing seeds:\n{}", failures.len(), failures.join("\n"));
}

/// The checker has teeth on real runs: with clients reading in `READMODE stale` (served by
/// whichever node they reach, possibly behind), faults soon produce a history it rejects.
#[test]
fn stale_reads_are_flagged_within_a_few_seeds() {
    let flagged = (0..10u64).find(|&seed| {
        let mut config = RunConfig { safety_phase_ms: 10_000, ..RunConfig::new(seed) };
        config.workload.read_modes = vec![ReadMode::Stale];
        sim::judge(&run(config)).iter().any(|failure| failure.contains("NOT LINEARIZABLE"))
    });
    assert!(flagged.is_some(), "ten seeds of stale reads under faults and not one flagged: the checker is toothless");
}

/// The lease's clock-drift bound matters: step clocks by up to 3 s (a stalled clock is one
/// that drifts without bound for a while) while every client reads under leases and the
/// nemesis isolates the leader, and a stale read shows up within forty seeds: a leader whose
/// clock stands still keeps serving from its lease after the others elected a new leader and
/// committed writes. Within the bound (no steps, 1,000 ppm drift), the sweep above runs lease
/// readers green.
#[test]
fn lease_reads_beyond_the_clock_drift_bound_are_flagged() {
    let mix = FaultMix {
        partition: 0,
        isolate_leader_or_node: 5,
        one_way: 0,
        kill: 0,
        pause: 0,
        sync_failure: 0,
        bit_flip: 0,
        clock_step: 5,
        membership: 0,
        torn_writes: false,
        gap_ms_max: 100,
        fault_ms_max: 500,
        messages: Default::default(),
    };
    let config = |seed: u64, mode: ReadMode| {
        let mut config = RunConfig {
            safety_phase_ms: 20_000,
            clock_steps_with_lease_reads: true,
            fault_mix: Some(mix.clone()),
            ..RunConfig::new(seed)
        };
        config.workload.read_modes = vec![mode];
        config.workload.read_only_clients = 2;
        config
    };
    let flagged = (0..40u64).find(|&seed| {
        sim::judge(&run(config(seed, ReadMode::Lease))).iter().any(|failure| failure.contains("NOT LINEARIZABLE"))
    });
    let seed = flagged.expect("forty seeds of lease reads under clock steps and not one flagged");
    // The control: the same faults with ReadIndex reads are linearizable, so it was the lease.
    let control = sim::judge(&run(config(seed, ReadMode::Linearizable)));
    assert!(control.is_empty(), "seed {seed} fails with linearizable reads too: {control:?}");
}
