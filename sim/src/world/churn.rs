//! Membership churn, one of the nemesis' faults: nodes join (as learners), are promoted,
//! removed, replaced by fresh nodes, and leadership moves, all through the `RAFT.*` commands
//! an operator would send, while the other faults come and go. A node whose removal is
//! confirmed is stopped for good; a replacement is a new node (a new id, an empty disk), the
//! way a node whose disk was wiped rejoins.

use engine::NodeId;
use kvstore::resp::Frame;
use rand_chacha::rand_core::RngCore;
use rand_chacha::ChaCha8Rng;

use crate::world::cluster::{Life, NodeState, SimCluster};

/// Nodes a run may add, beyond those it started with.
const ADDED_NODES_MAX: usize = 6;

/// The membership as one node's `RAFT.STATUS` shows it.
struct Members {
    voters: Vec<NodeId>,
    learners: Vec<NodeId>,
}

/// One membership change; returns what was done, for the fault log.
pub async fn change_membership(cluster: &mut SimCluster, initial_nodes: usize, rng: &mut ChaCha8Rng) -> String {
    let up: Vec<NodeId> = cluster
        .ids()
        .into_iter()
        .filter(|id| cluster.nodes[id].state == NodeState::Up && cluster.nodes[id].life() == Life::Running)
        .collect();
    if up.is_empty() {
        return "no membership change: no node is up".to_string();
    }
    let through = up[(rng.next_u64() % up.len() as u64) as usize];
    let Some(members) = members(cluster, through).await else {
        return format!("no membership change: node {through} did not answer RAFT.STATUS");
    };
    cluster.fewest_voters = cluster.fewest_voters.min(members.voters.len());
    // Voters whose log the nemesis damaged (they stay down): removed first, and while one
    // is there, no healthy voter is removed.
    let damaged: Vec<NodeId> =
        members.voters.iter().copied().filter(|id| cluster.nodes.get(id).is_some_and(|node| node.corrupted)).collect();
    let pick = |ids: &[NodeId], rng: &mut ChaCha8Rng| ids[(rng.next_u64() % ids.len() as u64) as usize];
    let room = cluster.nodes.len() < initial_nodes + ADDED_NODES_MAX;
    match rng.next_u64() % 5 {
        0 if room => add(cluster, through),
        1 if !members.learners.is_empty() => {
            let learner = pick(&members.learners, rng);
            let reply = command(cluster, through, &["RAFT.PROMOTE", &learner.to_string()]).await;
            format!("promote {learner} through {through}: {reply}")
        }
        2 if members.voters.len() >= 4 || !members.learners.is_empty() => {
            let candidates = if members.voters.len() >= 4 { &members.voters } else { &members.learners };
            let victim = damaged.first().copied().unwrap_or_else(|| pick(candidates, rng));
            remove(cluster, through, victim).await
        }
        3 if room && members.voters.len() >= 3 => {
            // A node whose disk failed is the one to replace; with one failed, replacing a
            // healthy voter could leave no majority of healthy voters.
            let voter = damaged.first().copied().unwrap_or_else(|| pick(&members.voters, rng));
            let removed = remove(cluster, through, voter).await;
            format!("replace: {removed}; then {}", add(cluster, through))
        }
        _ => {
            let voter = pick(&members.voters, rng);
            let reply = command(cluster, through, &["RAFT.TRANSFER", &voter.to_string()]).await;
            format!("transfer leadership to {voter} through {through}: {reply}")
        }
    }
}

fn add(cluster: &mut SimCluster, through: NodeId) -> String {
    match cluster.add_joining_node(through) {
        Some(id) => format!("add node {id}, joining through {through}"),
        None => "no node added: no address left".to_string(),
    }
}

/// Removes `id`; a confirmed removal stops the node for good.
async fn remove(cluster: &mut SimCluster, through: NodeId, id: NodeId) -> String {
    let reply = command(cluster, through, &["RAFT.REMOVE", &id.to_string()]).await;
    // Whatever the answer, the removal may happen: count it, as if it were of a voter.
    cluster.fewest_voters = cluster.fewest_voters.saturating_sub(1).max(1);
    if reply == "OK" && cluster.nodes.get(&id).is_some_and(|node| node.state != NodeState::Retired) {
        cluster.retire(id);
        return format!("remove {id} through {through}: OK, stopped it");
    }
    format!("remove {id} through {through}: {reply}")
}

/// The reply as one line: `OK`, the error, or why there was none.
async fn command(cluster: &SimCluster, through: NodeId, words: &[&str]) -> String {
    let words = words.iter().map(|word| word.to_string()).collect();
    match cluster.admin(through, words).await {
        Ok(frame) => kvstore::admin_client::render(&frame),
        Err(reason) => format!("no reply ({reason})"),
    }
}

async fn members(cluster: &SimCluster, through: NodeId) -> Option<Members> {
    let Ok(Frame::Bulk(text)) = cluster.admin(through, vec!["RAFT.STATUS".to_string()]).await else { return None };
    let text = String::from_utf8_lossy(&text).into_owned();
    let list = |name: &str| -> Vec<NodeId> {
        let line = text.lines().find_map(|line| line.strip_prefix(name)).unwrap_or("");
        line.split(',').filter_map(|id| id.trim().parse().ok()).collect()
    };
    let voters = list("voters:");
    (!voters.is_empty()).then(|| Members { voters, learners: list("learners:") })
}
