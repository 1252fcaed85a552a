//! Deterministic simulation of Tally clusters: the real node code in a seeded madsim world
//! under faults, every client operation recorded, and the history checked.
//!
//! Code map:
//! - `history`: operations as the clients saw them.
//! - `world` (simulator builds only, `--cfg madsim`): the cluster of real nodes, the nemesis,
//!   the clients.

pub mod history;
#[cfg(madsim)]
pub mod world;

/// Everything that makes a run fail, in words; empty when the run passed.
#[cfg(madsim)]
pub fn judge(outcome: &world::RunOutcome) -> Vec<String> {
    outcome.liveness_failures.clone()
}
