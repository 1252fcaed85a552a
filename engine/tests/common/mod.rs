//! Random schedules of faults and inputs for an in-memory cluster, shared by the property and
//! determinism tests.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use bytes::Bytes;
use engine::testkit::Cluster;
use engine::{ConfChange, Config, NodeId, Role};
use proptest::prelude::*;

/// One step of a schedule. Node and message choices are indexes taken modulo what exists, so
/// any sequence of actions is valid and shrinking never produces a meaningless schedule.
#[derive(Clone, Debug)]
pub enum Action {
    Tick {
        elapsed_ms: u64,
    },
    Campaign {
        node: usize,
    },
    /// Proposes to the current leader if there is one, else to `node` (which refuses).
    Propose {
        node: usize,
    },
    /// Asks for a read index or a lease read: usually of the current leader, one time in three
    /// of `node`, so that a deposed leader that still believes it leads is asked too.
    Read {
        node: usize,
        lease: bool,
    },
    ProcessReady {
        node: usize,
        persist: bool,
    },
    PersistPending {
        node: usize,
    },
    /// Delivers any message in flight, not only the oldest: this is how messages reorder.
    Deliver {
        message: usize,
    },
    DeliverAll,
    /// Every live node takes and persists its Ready, then everything in flight is delivered:
    /// one round trip of progress between the fine-grained steps.
    Round,
    Drop {
        message: usize,
    },
    Duplicate {
        message: usize,
    },
    /// Splits the nodes by the bits of `mask`.
    Partition {
        mask: u8,
    },
    Heal,
    Crash {
        node: usize,
    },
    Restart {
        node: usize,
    },
    /// Asks the leader (if any) to add a learner, promote a learner or remove a member.
    ChangeMembership {
        kind: u8,
        target: usize,
    },
    /// Asks the leader (if any) to hand over to a node.
    Transfer {
        target: usize,
    },
}

pub fn action() -> impl Strategy<Value = Action> {
    let node = 0..7usize;
    let message = 0..64usize;
    prop_oneof![
        10 => (5..100u64).prop_map(|elapsed_ms| Action::Tick { elapsed_ms }),
        1 => node.clone().prop_map(|node| Action::Campaign { node }),
        10 => node.clone().prop_map(|node| Action::Propose { node }),
        8 => (node.clone(), any::<bool>()).prop_map(|(node, lease)| Action::Read { node, lease }),
        18 => (node.clone(), prop::bool::weighted(0.8)).prop_map(|(node, persist)| Action::ProcessReady { node, persist }),
        4 => node.clone().prop_map(|node| Action::PersistPending { node }),
        25 => message.clone().prop_map(|message| Action::Deliver { message }),
        6 => Just(Action::DeliverAll),
        14 => Just(Action::Round),
        5 => message.clone().prop_map(|message| Action::Drop { message }),
        3 => message.prop_map(|message| Action::Duplicate { message }),
        1 => any::<u8>().prop_map(|mask| Action::Partition { mask }),
        2 => Just(Action::Heal),
        1 => node.clone().prop_map(|node| Action::Crash { node }),
        3 => node.clone().prop_map(|node| Action::Restart { node }),
        6 => (0..3u8, node.clone()).prop_map(|(kind, target)| Action::ChangeMembership { kind, target }),
        2 => node.prop_map(|target| Action::Transfer { target }),
    ]
}

/// A configuration with short timeouts, so that a few hundred steps see several elections.
pub fn config(pre_vote: bool, check_quorum: bool) -> Config {
    Config {
        election_timeout_ms_min: 150,
        election_timeout_ms_max: 300,
        heartbeat_interval_ms: 30,
        inflight_appends_max: 4,
        append_entries_max: 8,
        pre_vote,
        check_quorum,
        // Leases need CheckQuorum; without it a lease read falls back to a read index.
        lease_reads: true,
        lease_clock_drift_ms: 20,
        ..Config::default()
    }
}

/// Snapshots every few entries, kept short behind, sent in small chunks: so a few hundred
/// steps compact logs, send snapshots to lagging followers and lose chunks on the way.
pub fn with_snapshots(config: Config) -> Config {
    Config {
        snapshot_entries_threshold: 3,
        snapshot_trailing_entries: 0,
        snapshot_chunk_bytes: 48,
        snapshot_inflight_chunks: 3,
        ..config
    }
}

/// `node_count` voters, and two spare nodes that membership changes can add.
pub fn cluster(node_count: u64, config: Config, seed: u64) -> Cluster {
    let ids: Vec<NodeId> = (1..=node_count).collect();
    let spares: Vec<NodeId> = (node_count + 1..=node_count + 2).collect();
    Cluster::with_spares(&ids, &spares, config, seed)
}

/// Applies one action. Every cluster operation checks the oracles and panics on a violation.
pub fn apply(cluster: &mut Cluster, action: &Action, step: usize) {
    let ids = cluster.ids();
    let pick = |node: usize| ids[node % ids.len()];
    let in_flight = cluster.in_flight().len();
    match *action {
        Action::Tick { elapsed_ms } => cluster.advance(elapsed_ms),
        Action::Campaign { node } => {
            if cluster.node(pick(node)).is_some() {
                let _ = cluster.campaign(pick(node));
            }
        }
        Action::Propose { node } => {
            let target = cluster.leader().unwrap_or(pick(node));
            if cluster.node(target).is_some() {
                let _ = cluster.propose(target, Bytes::from(format!("step{step}")));
            }
        }
        Action::Read { node, lease } => {
            let target = if node % 3 == 0 { pick(node) } else { cluster.leader().unwrap_or(pick(node)) };
            if cluster.node(target).is_some() {
                let _ = cluster.read(target, step as u64, lease);
            }
        }
        Action::ProcessReady { node, persist } => {
            cluster.process_ready(pick(node), persist);
        }
        Action::PersistPending { node } => {
            if cluster.node(pick(node)).is_some() {
                cluster.persist_pending(pick(node));
            }
        }
        Action::Deliver { message } if in_flight > 0 => {
            cluster.deliver_at(message % in_flight);
        }
        Action::DeliverAll => {
            cluster.deliver_where(|_| true);
        }
        Action::Drop { message } if in_flight > 0 => cluster.drop_at(message % in_flight),
        Action::Duplicate { message } if in_flight > 0 && in_flight < 256 => cluster.duplicate_at(message % in_flight),
        Action::Round => {
            for id in &ids {
                cluster.process_ready(*id, true);
            }
            cluster.deliver_where(|_| true);
        }
        Action::Partition { mask } => {
            let (left, right): (Vec<NodeId>, Vec<NodeId>) = ids.iter().partition(|&&id| mask & (1 << (id % 8)) != 0);
            cluster.partition(&[left, right]);
        }
        Action::Heal => cluster.heal(),
        Action::Crash { node } => {
            let live = ids.iter().filter(|&&id| cluster.node(id).is_some()).count();
            // Keep a majority alive most of the time; a crash of the last nodes is still
            // allowed when restarts will follow.
            if live > 1 {
                cluster.crash(pick(node));
            }
        }
        Action::Restart { node } => {
            if cluster.node(pick(node)).is_none() {
                cluster.restart(pick(node));
            }
        }
        Action::ChangeMembership { kind, target } => {
            if let Some(leader) = cluster.leader() {
                let target = pick(target);
                let change = match kind % 3 {
                    0 => ConfChange::AddLearner { id: target, metadata: Bytes::new() },
                    1 => ConfChange::Promote(target),
                    _ => ConfChange::Remove(target),
                };
                let _ = cluster.conf_change(leader, change);
            }
        }
        Action::Transfer { target } => {
            if let Some(leader) = cluster.leader() {
                let _ = cluster.transfer_leadership(leader, pick(target));
            }
        }
        Action::Deliver { .. } | Action::Drop { .. } | Action::Duplicate { .. } => {}
    }
}

/// After the faults: heal, restart everyone, and let time pass. A single leader must emerge
/// and every member of its configuration must reach its commit index (liveness). Nodes that
/// were removed, or never added, are left out.
pub fn heal_and_converge(cluster: &mut Cluster) {
    cluster.heal();
    for id in cluster.ids() {
        if cluster.node(id).is_none() {
            cluster.restart(id);
        }
    }
    for _ in 0..200 {
        cluster.advance(25);
        cluster.stabilize();
    }
    let Some(leader) = cluster.leader() else {
        panic!("liveness: a leader within 5 s after every fault healed; nodes:\n{}", describe(cluster));
    };
    let leader_raft = cluster.node(leader).expect("leader is live");
    let (term, commit_index) = (leader_raft.term(), leader_raft.commit_index());
    assert_eq!(leader_raft.log().term(commit_index), Some(term), "the leader committed an entry of its term");
    let members = leader_raft.membership().members();
    for id in members {
        let raft = cluster.node(id).expect("all restarted");
        assert_eq!(
            raft.commit_index(),
            commit_index,
            "liveness: node {id} converged on the leader's commit; progress {:?}; nodes:\n{}",
            leader_raft.progress(id),
            describe(cluster)
        );
        assert_eq!(raft.log().applied_index(), commit_index, "liveness: node {id} applied everything");
        if id != leader {
            assert_eq!(raft.role(), Role::Follower, "one leader, the others follow");
        }
    }
}

/// Every node's status and membership, one per line, for failure messages.
fn describe(cluster: &Cluster) -> String {
    let nodes: Vec<String> = cluster
        .ids()
        .into_iter()
        .map(|id| {
            let membership = cluster.node(id).map(|raft| raft.membership().clone());
            format!("{:?} {membership:?}", cluster.status(id))
        })
        .collect();
    nodes.join("\n")
}
