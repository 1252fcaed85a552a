//! The nemesis: faults drawn from the seed, swarm-style. Each seed first draws its own fault
//! mix (which kinds of fault, how often, how long), so different seeds stress different
//! things, then a schedule from that mix.

use std::time::Duration;

use engine::NodeId;
use kvstore::storage::segment::{SEGMENT_HEADER_SIZE_BYTES, WAL_DIRECTORY};
use kvstore::storage::TornWrite;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::world::churn;
use crate::world::cluster::{Life, NodeState, SimCluster};

/// Relative weights of fault kinds for one seed; zero disables a kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultMix {
    pub partition: u64,
    pub isolate_leader_or_node: u64,
    pub one_way: u64,
    pub kill: u64,
    pub pause: u64,
    /// An fsync that fails: the node must stop, and is restarted when the fault heals.
    pub sync_failure: u64,
    /// A flipped bit in an old WAL record, then a restart: the node must refuse to start.
    /// At most a minority of nodes is damaged so in a run, so that the rest stay live.
    pub bit_flip: u64,
    /// A node's clock jumps forward, or stands still for a while (a step back of a clock
    /// that never reads backwards).
    pub clock_step: u64,
    /// Membership churn (see `churn.rs`): nodes join, are promoted, removed and replaced,
    /// and leadership moves.
    pub membership: u64,
    /// Whether a crash may keep a torn prefix of unsynced writes.
    pub torn_writes: bool,
    /// How long the quiet spell between faults lasts at most.
    pub gap_ms_max: u64,
    /// How long one fault lasts at most.
    pub fault_ms_max: u64,
    /// Raft-level message faults, in force for the whole safety phase.
    pub messages: MessageFaultRates,
}

/// Chances, per thousand peer messages, that a message is lost, duplicated or delayed (which
/// reorders it behind later ones). madsim's TCP does none of these by itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MessageFaultRates {
    pub drop_per_mille: u64,
    pub duplicate_per_mille: u64,
    pub delay_per_mille: u64,
    pub delay_ms_max: u64,
}

impl MessageFaultRates {
    /// Half the seeds run without message faults; the others draw rates up to 10% loss, 5%
    /// duplication and 10% delay of up to 2 s.
    fn draw(rng: &mut ChaCha8Rng) -> MessageFaultRates {
        if rng.next_u64() % 2 == 0 {
            return MessageFaultRates::default();
        }
        MessageFaultRates {
            drop_per_mille: rng.next_u64() % 101,
            duplicate_per_mille: rng.next_u64() % 51,
            delay_per_mille: rng.next_u64() % 101,
            delay_ms_max: 1 + rng.next_u64() % 2000,
        }
    }
}

impl FaultMix {
    /// Draws a mix: each kind on or off, with its own weight.
    pub fn draw(rng: &mut ChaCha8Rng) -> FaultMix {
        let mut weight = || if rng.next_u64() % 3 == 0 { 0 } else { 1 + rng.next_u64() % 5 };
        let mut mix = FaultMix {
            partition: weight(),
            isolate_leader_or_node: weight(),
            one_way: weight(),
            kill: weight(),
            pause: weight(),
            sync_failure: weight(),
            bit_flip: weight(),
            clock_step: weight(),
            membership: weight(),
            torn_writes: false,
            gap_ms_max: 0,
            fault_ms_max: 0,
            messages: MessageFaultRates::default(),
        };
        mix.torn_writes = rng.next_u64() % 2 == 0;
        mix.gap_ms_max = 200 + rng.next_u64() % 1500;
        mix.fault_ms_max = 300 + rng.next_u64() % 3000;
        mix.messages = MessageFaultRates::draw(rng);
        mix
    }

    fn weights(&self) -> [u64; 9] {
        [
            self.partition,
            self.isolate_leader_or_node,
            self.one_way,
            self.kill,
            self.pause,
            self.sync_failure,
            self.bit_flip,
            self.clock_step,
            self.membership,
        ]
    }
}

/// What the nemesis did, and the faults the nodes handled wrongly.
#[derive(Debug, Default)]
pub struct NemesisReport {
    /// One line per fault, with its virtual time, for the trace.
    pub log: Vec<String>,
    /// A node that kept running after a failed fsync, or started on a damaged log.
    pub failures: Vec<String>,
}

/// Runs faults until `duration` has passed, one at a time, each healed before the next.
pub async fn run(cluster: &mut SimCluster, mix: &FaultMix, seed: u64, duration: Duration) -> NemesisReport {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut report = NemesisReport::default();
    let start = tokio::time::Instant::now();
    let total: u64 = mix.weights().iter().sum();
    let initial_nodes = cluster.nodes.len();
    while start.elapsed() < duration {
        let gap_ms = rng.next_u64() % (mix.gap_ms_max + 1);
        tokio::time::sleep(Duration::from_millis(gap_ms)).await;
        if total == 0 {
            continue;
        }
        let fault_ms = 50 + rng.next_u64() % mix.fault_ms_max;
        let event = match draw_kind(mix, &mut rng) {
            MEMBERSHIP => churn::change_membership(cluster, initial_nodes, &mut rng).await,
            kind => inject(cluster, mix, kind, &mut rng),
        };
        let sync_failures_armed: Vec<bool> =
            cluster.nodes.values().map(|node| node.disk.sync_failures_pending() > 0).collect();
        report.log.push(format!("{:?} {event} for {fault_ms} ms", start.elapsed()));
        tokio::time::sleep(Duration::from_millis(fault_ms)).await;
        for failure in check_storage_fault_handling(cluster, &sync_failures_armed, &event) {
            if !report.failures.contains(&failure) {
                report.failures.push(failure);
            }
        }
        cluster.heal_everything();
    }
    report
}

/// A node whose injected fsync failure fired must have stopped (`armed` says, per node in id
/// order, whether one was waiting to fire); a node whose log was damaged must not run.
fn check_storage_fault_handling(cluster: &SimCluster, armed: &[bool], event: &str) -> Vec<String> {
    let mut failures = Vec::new();
    for (node, &armed) in cluster.nodes.values().zip(armed) {
        let life = node.life();
        if node.corrupted && matches!(life, Life::Running | Life::Stopped(_)) {
            failures.push(format!("storage: node {} started on a log the nemesis damaged", node.id));
        }
        let fired = armed && node.disk.sync_failures_pending() == 0;
        if fired && life == Life::Running {
            failures.push(format!("storage: node {} kept running after its fsync failed ({event})", node.id));
        }
    }
    failures
}

/// The position of the membership churn in [`FaultMix::weights`].
const MEMBERSHIP: usize = 8;

/// A fault kind, by its position in [`FaultMix::weights`], drawn by weight.
fn draw_kind(mix: &FaultMix, rng: &mut ChaCha8Rng) -> usize {
    let weights = mix.weights();
    let mut roll = rng.next_u64() % weights.iter().sum::<u64>();
    weights
        .iter()
        .position(|&weight| {
            if roll < weight {
                true
            } else {
                roll -= weight;
                false
            }
        })
        .expect("the roll is below the sum of the weights")
}

fn inject(cluster: &mut SimCluster, mix: &FaultMix, kind: usize, rng: &mut ChaCha8Rng) -> String {
    let ids = cluster.ids();
    let pick = |rng: &mut ChaCha8Rng| ids[(rng.next_u64() % ids.len() as u64) as usize];
    match kind {
        0 => match rng.next_u64() % 3 {
            0 => {
                let (left, right): (Vec<NodeId>, Vec<NodeId>) = ids.iter().partition(|_| rng.next_u64() % 2 == 0);
                cluster.partition(&[left.clone(), right.clone()]);
                format!("partition {left:?} | {right:?}")
            }
            1 => bridge(cluster, pick(rng)),
            _ => majorities_ring(cluster, rng),
        },
        1 => {
            // Half the time the node the cluster's oracles last saw leading, so that a leader
            // (the node with most to lose) is cut off often, not one time in three.
            let leader = cluster.observer.latest_leader().filter(|_| rng.next_u64() % 2 == 0);
            let lonely = leader.unwrap_or_else(|| pick(rng));
            let others: Vec<NodeId> = ids.iter().copied().filter(|&id| id != lonely).collect();
            cluster.partition(&[vec![lonely], others]);
            let role = if leader.is_some() { " (the leader)" } else { "" };
            format!("isolate {lonely}{role}")
        }
        2 => {
            let from = pick(rng);
            let others: Vec<NodeId> = ids.iter().copied().filter(|&id| id != from).collect();
            let to = others[(rng.next_u64() % others.len() as u64) as usize];
            cluster.cut(from, to);
            format!("cut {from} -> {to}")
        }
        3 => {
            let victim = pick(rng);
            let torn = mix.torn_writes;
            let mut torn_rng = ChaCha8Rng::seed_from_u64(rng.next_u64());
            cluster.kill(victim, |_, unsynced_bytes| torn_write(torn, &mut torn_rng, unsynced_bytes));
            format!("kill {victim}")
        }
        4 => {
            let victim = pick(rng);
            if cluster.nodes[&victim].state == NodeState::Up {
                cluster.pause(victim);
            }
            format!("pause {victim}")
        }
        5 => {
            let victim = pick(rng);
            cluster.nodes[&victim].disk.fail_next_sync();
            format!("fail the next fsync of {victim}")
        }
        6 => flip_a_bit(cluster, pick(rng), rng),
        _ => {
            let victim = pick(rng);
            let step_ms = rng.next_u64() % 3000;
            let clock = &cluster.nodes[&victim].clock;
            if rng.next_u64() % 2 == 0 {
                clock.step_forward(step_ms);
                format!("step the clock of {victim} forward by {step_ms} ms")
            } else {
                clock.step_back(step_ms);
                format!("step the clock of {victim} back by {step_ms} ms")
            }
        }
    }
}

/// Splits the other nodes into two halves that cannot reach each other, while `bridge` reaches
/// both: every node sees a node that sees everyone, yet no half sees the other.
fn bridge(cluster: &mut SimCluster, bridge: NodeId) -> String {
    let others: Vec<NodeId> = cluster.ids().into_iter().filter(|&id| id != bridge).collect();
    let (left, right) = others.split_at(others.len() / 2);
    for &a in left {
        for &b in right {
            cluster.cut(a, b);
            cluster.cut(b, a);
        }
    }
    format!("bridge {bridge} between {left:?} | {right:?}")
}

/// Nodes on a ring (in a seeded order), each reaching only its neighbours within distance
/// `reach`, the least that lets every node see a majority (itself included): with five nodes,
/// each sees its two neighbours, so every node sees a majority but no two see the same one.
/// With three nodes every pair is adjacent and a ring cuts nothing, so it becomes a bridge.
fn majorities_ring(cluster: &mut SimCluster, rng: &mut ChaCha8Rng) -> String {
    let mut ring = cluster.ids();
    let n = ring.len();
    if n < 5 {
        let middle = ring[(rng.next_u64() % n as u64) as usize];
        return bridge(cluster, middle);
    }
    for position in (1..n).rev() {
        ring.swap(position, (rng.next_u64() % (position as u64 + 1)) as usize);
    }
    let majority = n / 2 + 1;
    let reach = (majority - 1).div_ceil(2);
    for (a_position, &a) in ring.iter().enumerate() {
        for (b_position, &b) in ring.iter().enumerate() {
            let gap = a_position.abs_diff(b_position);
            if gap.min(n - gap) > reach {
                cluster.cut(a, b);
            }
        }
    }
    format!("majorities ring {ring:?}")
}

/// Flips a bit in the older half of the victim's newest WAL segment (a record that valid ones
/// follow, so it cannot pass for a torn write), then restarts the victim, which must refuse
/// to start. Skipped if that would damage a majority, or the log is still too short.
fn flip_a_bit(cluster: &mut SimCluster, victim: NodeId, rng: &mut ChaCha8Rng) -> String {
    let damaged = cluster.nodes.values().filter(|node| node.corrupted).count();
    let minority = (cluster.fewest_voters.max(1) - 1) / 2;
    let node = &cluster.nodes[&victim];
    let segment = node.disk.file_lengths(WAL_DIRECTORY).into_iter().next_back();
    let header = SEGMENT_HEADER_SIZE_BYTES as u64;
    let Some((path, length)) = segment.filter(|(_, length)| *length > header + 4096) else {
        return format!("no bit flip on {victim}: its log is too short");
    };
    if node.corrupted || damaged >= minority {
        return format!("no bit flip on {victim}: a minority is damaged already");
    }
    let offset = header + rng.next_u64() % ((length - header) / 2);
    let bit = (rng.next_u64() % 8) as u8;
    node.disk.flip_bit(&path, offset, bit);
    cluster.nodes.get_mut(&victim).expect("known node").corrupted = true;
    if cluster.nodes[&victim].state != NodeState::Down {
        cluster.kill(victim, |_, _| TornWrite::default());
    }
    cluster.restart(victim);
    format!("flip bit {bit} at {path}:{offset} of {victim} and restart it")
}

fn torn_write(torn: bool, rng: &mut ChaCha8Rng, unsynced_bytes: u64) -> TornWrite {
    if !torn || unsynced_bytes == 0 {
        return TornWrite { bytes_kept: 0, bytes_zeroed: 0 };
    }
    let bytes_kept = rng.next_u64() % (unsynced_bytes + 1);
    let bytes_zeroed = rng.next_u64() % (unsynced_bytes - bytes_kept + 1);
    TornWrite { bytes_kept, bytes_zeroed }
}
