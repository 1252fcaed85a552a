//! A 3-node in-memory cluster of engines ([`Cluster`]) under a schedule the input chooses:
//! ticks, campaigns, proposals, read-index and lease reads, Ready processing with and without
//! persistence, deliveries in any order, drops, duplications, partitions, crashes and restarts. The input is the
//! schedule, so coverage guidance steers it into rare interleavings.
//!
//! Input: PreVote and CheckQuorum switches, the engines' seed, then the actions (derived
//! with `arbitrary`), at most [`STEPS_MAX`] of them.
//!
//! Checks: every oracle of SCENARIOS.md and each node's invariants, which the cluster
//! checks after every operation (a correct peer's message is never refused either); then,
//! with every fault healed, one leader emerges and every node converges on its commit
//! index within 5 simulated seconds (as `engine/tests/common/mod.rs` demands, but stopping
//! as soon as it holds).
#![no_main]

use arbitrary::Arbitrary;
use bytes::Bytes;
use engine::testkit::Cluster;
use engine::{Config, NodeId, Role};
use libfuzzer_sys::fuzz_target;

/// Keeps one input from running for long.
const STEPS_MAX: usize = 2_000;

#[derive(Arbitrary, Debug)]
struct Schedule {
    pre_vote: bool,
    check_quorum: bool,
    seed: u64,
    actions: Vec<Action>,
}

/// Node and message choices are taken modulo what exists, so every action is valid.
#[derive(Arbitrary, Debug)]
enum Action {
    Tick {
        elapsed_ms: u8,
    },
    Campaign {
        node: u8,
    },
    /// To the leader if there is one, else to `node` (which refuses).
    Propose {
        node: u8,
    },
    ProcessReady {
        node: u8,
        persist: bool,
    },
    PersistPending {
        node: u8,
    },
    /// Any message in flight, not only the oldest: this is how messages reorder.
    Deliver {
        message: u8,
    },
    DeliverAll,
    /// Every live node takes and persists its Ready, then everything in flight is delivered.
    Round,
    Drop {
        message: u8,
    },
    Duplicate {
        message: u8,
    },
    /// Splits the nodes by the bits of `mask`.
    Partition {
        mask: u8,
    },
    Heal,
    Crash {
        node: u8,
    },
    Restart {
        node: u8,
    },
    /// A read index (or a lease read) of `node`, usually the leader: read safety is an oracle.
    Read {
        node: u8,
        lease: bool,
    },
}

fuzz_target!(|schedule: Schedule| {
    let config = Config {
        election_timeout_ms_min: 150,
        election_timeout_ms_max: 300,
        heartbeat_interval_ms: 30,
        inflight_appends_max: 4,
        append_entries_max: 8,
        pre_vote: schedule.pre_vote,
        check_quorum: schedule.check_quorum,
        lease_reads: true,
        lease_clock_drift_ms: 20,
        ..Config::default()
    };
    let mut cluster = Cluster::new(&[1, 2, 3], config, schedule.seed);
    for (step, action) in schedule.actions.iter().take(STEPS_MAX).enumerate() {
        apply(&mut cluster, action, step);
    }
    heal_and_converge(&mut cluster);
});

fn apply(cluster: &mut Cluster, action: &Action, step: usize) {
    let ids = cluster.ids();
    let pick = |node: u8| ids[usize::from(node) % ids.len()];
    let in_flight = cluster.in_flight().len();
    let live = |cluster: &Cluster, id: NodeId| cluster.node(id).is_some();
    match *action {
        Action::Tick { elapsed_ms } => cluster.advance(u64::from(elapsed_ms)),
        Action::Campaign { node } if live(cluster, pick(node)) => {
            // Refusals (a leader already, PreVote under way) are part of the schedule.
            let _refused_or_started = cluster.campaign(pick(node));
        }
        Action::Propose { node } => {
            let target = cluster.leader().unwrap_or(pick(node));
            if live(cluster, target) {
                let _refused_or_appended = cluster.propose(target, Bytes::from(format!("step{step}")));
            }
        }
        Action::ProcessReady { node, persist } => {
            cluster.process_ready(pick(node), persist);
        }
        Action::Read { node, lease } => {
            let target = if node % 3 == 0 { pick(node) } else { cluster.leader().unwrap_or(pick(node)) };
            if live(cluster, target) {
                let _refused_or_asked = cluster.read(target, step as u64, lease);
            }
        }
        Action::PersistPending { node } if live(cluster, pick(node)) => cluster.persist_pending(pick(node)),
        Action::Deliver { message } if in_flight > 0 => {
            cluster.deliver_at(usize::from(message) % in_flight);
        }
        Action::DeliverAll => {
            cluster.deliver_where(|_| true);
        }
        Action::Round => {
            for &id in &ids {
                cluster.process_ready(id, true);
            }
            cluster.deliver_where(|_| true);
        }
        Action::Drop { message } if in_flight > 0 => cluster.drop_at(usize::from(message) % in_flight),
        // Bounded, so that duplication cannot grow the network without limit.
        Action::Duplicate { message } if in_flight > 0 && in_flight < 256 => {
            cluster.duplicate_at(usize::from(message) % in_flight)
        }
        Action::Partition { mask } => {
            let (left, right): (Vec<NodeId>, Vec<NodeId>) = ids.iter().partition(|&&id| mask & (1 << (id % 8)) != 0);
            cluster.partition(&[left, right]);
        }
        Action::Heal => cluster.heal(),
        // Keeps one node alive; restarts bring the others back.
        Action::Crash { node } if ids.iter().filter(|&&id| live(cluster, id)).count() > 1 => cluster.crash(pick(node)),
        Action::Restart { node } if !live(cluster, pick(node)) => cluster.restart(pick(node)),
        _ => {}
    }
}

/// After the faults: heal, restart everyone, and let time pass. Within 5 simulated seconds,
/// one leader must emerge and every node must apply up to its commit index (liveness).
fn heal_and_converge(cluster: &mut Cluster) {
    cluster.heal();
    for id in cluster.ids() {
        if cluster.node(id).is_none() {
            cluster.restart(id);
        }
    }
    for _ in 0..200 {
        cluster.advance(25);
        cluster.stabilize();
        if converged(cluster).is_ok() {
            return;
        }
    }
    if let Err(failure) = converged(cluster) {
        panic!("liveness: {failure} 5 s after every fault healed");
    }
}

/// Whether one leader has committed an entry of its term and every node has applied up to
/// its commit index, or what is still missing.
fn converged(cluster: &Cluster) -> Result<(), String> {
    let leader = cluster.leader().ok_or("no leader")?;
    let leader_raft = cluster.node(leader).expect("the leader is live");
    let (term, commit_index) = (leader_raft.term(), leader_raft.commit_index());
    if leader_raft.log().term(commit_index) != Some(term) {
        return Err(format!("leader {leader} has committed no entry of its term {term}"));
    }
    for id in cluster.ids() {
        let raft = cluster.node(id).expect("all restarted");
        if raft.log().applied_index() != commit_index || raft.commit_index() != commit_index {
            return Err(format!("node {id} has not converged on the leader's commit index {commit_index}"));
        }
        if id != leader && raft.role() != Role::Follower {
            return Err(format!("node {id} is {:?} beside leader {leader}", raft.role()));
        }
    }
    Ok(())
}
