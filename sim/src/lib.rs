//! Deterministic simulation of Tally clusters: the real node code in a seeded madsim world
//! under faults, every client operation recorded, and the history checked.
//!
//! Code map:
//! - `history`: operations as the clients saw them.
//! - `checker`: the linearizability checker that judges a history (pure, deterministic).
//! - `oracles`: [`oracles::ClusterObserver`], which every simulated node reports to, checking
//!   Raft's safety properties and crash recovery throughout a run.
//! - `world` (simulator builds only, `--cfg madsim`): the cluster of real nodes, the nemesis,
//!   the clients.

pub mod checker;
pub mod history;
pub mod oracles;
#[cfg(madsim)]
pub mod world;

/// Everything that makes a run fail, in words; empty when the run passed: liveness failures,
/// the cluster oracles' findings, and the checker's verdict on the history (a violation, or a key it could not decide).
#[cfg(madsim)]
pub fn judge(outcome: &world::RunOutcome) -> Vec<String> {
    let mut failures = outcome.liveness_failures.clone();
    failures.extend(outcome.oracle_failures.iter().cloned());
    let report = checker::check(&outcome.history, &checker::CheckConfig::default());
    match report.verdict {
        checker::Verdict::Linearizable => {}
        checker::Verdict::Violation(_) | checker::Verdict::Inconclusive { .. } => {
            failures.push(format!("history: {report}"));
        }
    }
    failures
}
