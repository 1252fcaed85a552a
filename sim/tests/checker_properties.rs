//! Properties of the linearizability checker over histories of the reference workload (a
//! simulated linearizable store under random concurrency, with failed and unknown outcomes):
//! every such history is accepted, and flagged on the right key once one read is made
//! provably wrong. (The searches are checked against a brute-force reference on small random
//! histories by the unit tests of `sim::checker`.)

use bytes::Bytes;
use proptest::prelude::*;
use sim::checker::generator::{generate, Workload};
use sim::checker::{check, CheckConfig, Verdict};
use sim::history::{Call, Operation, Outcome, Return};

/// Workloads with up to `unknown_per_mille_max` unknown outcomes per thousand operations.
fn workload(unknown_per_mille_max: u64) -> impl Strategy<Value = Workload> {
    (
        any::<u64>(),
        1u64..8,
        1u64..4,
        1usize..400,
        0u64..100,
        0..=unknown_per_mille_max,
        0u64..100,
        proptest::option::of(1u64..4),
    )
        .prop_map(
            |(
                seed,
                clients,
                keys,
                operations,
                failed_per_mille,
                unknown_per_mille,
                range_per_mille,
                values_distinct,
            )| {
                Workload {
                    seed,
                    clients,
                    keys,
                    operations,
                    latency_ns_max: 1_000,
                    failed_per_mille,
                    unknown_per_mille,
                    range_per_mille,
                    values_distinct,
                }
            },
        )
}

/// Makes one completed GET of `history` return a value that no operation had even begun to
/// write when the GET completed: a write of it, invoked later by a new client, is appended.
/// Returns the key and the id of the GET, or `None` if the history has no completed GET.
fn read_from_the_future(history: &mut Vec<Operation>, choice: usize) -> Option<(Bytes, u64)> {
    let reads: Vec<usize> = (0..history.len())
        .filter(|&index| matches!((&history[index].call, &history[index].outcome), (Call::Get(_), Outcome::Ok(_))))
        .collect();
    let read = *reads.get(choice % reads.len().max(1))?;
    let Call::Get(key) = history[read].call.clone() else { unreachable!("chosen among GETs") };
    let future = Bytes::from_static(b"from-the-future");
    history[read].outcome = Outcome::Ok(Return::Value(Some(future.clone())));
    let completed_ns = history[read].completed_ns.expect("a completed read");
    let id = history.iter().map(|operation| operation.id).max().unwrap_or(0) + 1;
    history.push(Operation {
        id,
        client: u64::MAX,
        invoked_ns: completed_ns + 1,
        completed_ns: Some(completed_ns + 2),
        call: Call::Set(key.clone(), future),
        outcome: Outcome::Ok(Return::Done),
    });
    Some((key, history[read].id))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Soundness: however many outcomes are unknown, a linearizable history is never flagged.
    /// (With many unknowns on one hot key the search budget may run out: an explicit
    /// inconclusive verdict, allowed here. An earlier version demanded acceptance up to 20%
    /// unknowns and failed now and then, on a random seed, for that reason.)
    #[test]
    fn histories_of_a_linearizable_store_are_never_flagged(workload in workload(200)) {
        let history = generate(&workload);
        let report = check(&history, &CheckConfig::default());
        prop_assert!(!matches!(report.verdict, Verdict::Violation(_)), "{:?}\n{}", workload, report);
    }

    /// Completeness within the budget: with unknown outcomes as rare as in the simulator's
    /// runs (at most 5%), every linearizable history is proven so.
    #[test]
    fn histories_of_a_linearizable_store_are_accepted(workload in workload(50)) {
        let history = generate(&workload);
        let report = check(&history, &CheckConfig::default());
        prop_assert!(report.is_linearizable(), "{:?}\n{}", workload, report);
    }

    /// Refuting is the expensive direction (every order must be ruled out), so this stays
    /// within 5% of unknown outcomes, as the simulator's workloads do; far more on one hot key
    /// can exhaust the search budget (an explicit inconclusive verdict).
    #[test]
    fn a_read_of_a_value_written_only_later_is_flagged(workload in workload(50), choice in any::<usize>()) {
        let mut history = generate(&workload);
        let Some((key, read)) = read_from_the_future(&mut history, choice) else { return Ok(()) };
        let report = check(&history, &CheckConfig::default());
        match &report.verdict {
            Verdict::Violation(violation) => {
                prop_assert_eq!(&violation.key, &key, "{}", report);
                prop_assert!(violation.window.iter().any(|operation| operation.id == read), "{}", report);
            }
            other => prop_assert!(false, "expected a violation on {:?}, got {:?}", key, other),
        }
    }
}
