//! Property tests: random schedules of ticks, proposals, deliveries, drops, duplications,
//! reorderings, partitions and crash-restarts, with every oracle of `SCENARIOS.md` checked
//! after every step, and liveness demanded once the faults heal. Proptest shrinks a failure
//! to a minimal schedule.
//!
//! `PROPTEST_CASES` scales the number of schedules per test (`make test-engine-long`).

mod common;

use common::{action, apply, cluster, config, heal_and_converge, with_snapshots, Action};
use proptest::prelude::*;

fn run(node_count: u64, pre_vote: bool, check_quorum: bool, snapshots: bool, seed: u64, actions: &[Action]) {
    let mut config = config(pre_vote, check_quorum);
    if snapshots {
        config = with_snapshots(config);
    }
    let mut cluster = cluster(node_count, config, seed);
    for (step, action) in actions.iter().enumerate() {
        apply(&mut cluster, action, step);
    }
    heal_and_converge(&mut cluster);
}

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(600), ..ProptestConfig::default() })]

    #[test]
    fn three_nodes_stay_safe_and_recover(
        pre_vote in any::<bool>(),
        check_quorum in any::<bool>(),
        snapshots in any::<bool>(),
        seed in any::<u64>(),
        actions in prop::collection::vec(action(), 300..400),
    ) {
        run(3, pre_vote, check_quorum, snapshots, seed, &actions);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(400), ..ProptestConfig::default() })]

    #[test]
    fn five_nodes_stay_safe_and_recover(
        pre_vote in any::<bool>(),
        check_quorum in any::<bool>(),
        snapshots in any::<bool>(),
        seed in any::<u64>(),
        actions in prop::collection::vec(action(), 300..400),
    ) {
        run(5, pre_vote, check_quorum, snapshots, seed, &actions);
    }
}

/// Guards the guards: if the schedules stopped electing leaders, committing entries,
/// releasing reads, installing snapshots or changing membership, the safety properties above
/// would pass vacuously.
/// Measured on 200 deterministic schedules (snapshots: 0.45 installs per schedule).
#[test]
fn schedules_exercise_elections_commits_and_crashes() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let runs = 200;
    let (mut terms, mut commits, mut crashes, mut reads, mut installs) = (0, 0, 0, 0, 0);
    let (mut conf_changes, mut transfers) = (0, 0);
    for _ in 0..runs {
        let actions = prop::collection::vec(action(), 300..400).new_tree(&mut runner).expect("a schedule").current();
        let mut cluster = cluster(3, with_snapshots(config(true, true)), 1);
        for (step, action) in actions.iter().enumerate() {
            crashes += usize::from(matches!(action, Action::Crash { .. }));
            apply(&mut cluster, action, step);
        }
        let statuses: Vec<_> = cluster.ids().into_iter().map(|id| cluster.status(id)).collect();
        terms += statuses.iter().map(|status| status.term).max().unwrap_or(0);
        commits += statuses.iter().map(|status| status.commit_index).max().unwrap_or(0);
        reads += cluster.reads_released().len();
        installs += cluster.snapshots_installed();
        let (changes, handovers) = cluster.changes_accepted();
        conf_changes += changes;
        transfers += handovers;
    }
    let (terms, commits, crashes) =
        (terms as f64 / runs as f64, commits as f64 / runs as f64, crashes as f64 / runs as f64);
    assert!(terms >= 3.0, "schedules reach term {terms} on average: too few elections");
    assert!(commits >= 8.0, "schedules commit up to index {commits} on average: too little replication");
    assert!(crashes >= 2.0, "schedules crash {crashes} nodes on average: too few crashes");
    let reads = reads as f64 / runs as f64;
    assert!(reads >= 3.0, "schedules release {reads} reads on average: read safety goes unchecked");
    let installs = installs as f64 / runs as f64;
    assert!(installs >= 0.25, "schedules install {installs} snapshots on average: snapshot transfer goes unchecked");
    let (conf_changes, transfers) = (conf_changes as f64 / runs as f64, transfers as f64 / runs as f64);
    eprintln!("per schedule: {installs} snapshot installs, {conf_changes} membership changes, {transfers} transfers");
    assert!(conf_changes >= 0.5, "schedules make {conf_changes} membership changes on average: too few");
    assert!(transfers >= 0.3, "schedules start {transfers} leadership transfers on average: too few");
}
