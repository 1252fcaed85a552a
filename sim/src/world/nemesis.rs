//! The nemesis: faults drawn from the seed, swarm-style. Each seed first draws its own fault
//! mix (which kinds of fault, how often, how long), so different seeds stress different
//! things, then a schedule from that mix.

use std::time::Duration;

use engine::NodeId;
use kvstore::storage::TornWrite;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::world::cluster::{NodeState, SimCluster};

/// Relative weights of fault kinds for one seed; zero disables a kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultMix {
    pub partition: u64,
    pub isolate_leader_or_node: u64,
    pub one_way: u64,
    pub kill: u64,
    pub pause: u64,
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

    fn total(&self) -> u64 {
        self.partition + self.isolate_leader_or_node + self.one_way + self.kill + self.pause
    }
}

/// Runs faults until `duration` has passed, one at a time, each healed before the next.
/// Returns a log of what it did, for the trace.
pub async fn run(cluster: &mut SimCluster, mix: &FaultMix, seed: u64, duration: Duration) -> Vec<String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut log = Vec::new();
    let start = tokio::time::Instant::now();
    while start.elapsed() < duration {
        let gap_ms = rng.next_u64() % (mix.gap_ms_max + 1);
        tokio::time::sleep(Duration::from_millis(gap_ms)).await;
        if mix.total() == 0 {
            continue;
        }
        let fault_ms = 50 + rng.next_u64() % mix.fault_ms_max;
        let event = inject(cluster, mix, &mut rng);
        log.push(format!("{:?} {event} for {fault_ms} ms", start.elapsed()));
        tokio::time::sleep(Duration::from_millis(fault_ms)).await;
        cluster.heal_everything();
    }
    log
}

fn inject(cluster: &mut SimCluster, mix: &FaultMix, rng: &mut ChaCha8Rng) -> String {
    let ids = cluster.ids();
    let pick = |rng: &mut ChaCha8Rng| ids[(rng.next_u64() % ids.len() as u64) as usize];
    let mut roll = rng.next_u64() % mix.total();
    let kinds = [mix.partition, mix.isolate_leader_or_node, mix.one_way, mix.kill, mix.pause];
    let kind = kinds.iter().position(|&weight| {
        if roll < weight {
            true
        } else {
            roll -= weight;
            false
        }
    });
    match kind {
        Some(0) => {
            let (left, right): (Vec<NodeId>, Vec<NodeId>) = ids.iter().partition(|_| rng.next_u64() % 2 == 0);
            cluster.partition(&[left.clone(), right.clone()]);
            format!("partition {left:?} | {right:?}")
        }
        Some(1) => {
            let lonely = pick(rng);
            let others: Vec<NodeId> = ids.iter().copied().filter(|&id| id != lonely).collect();
            cluster.partition(&[vec![lonely], others]);
            format!("isolate {lonely}")
        }
        Some(2) => {
            let (from, to) = (pick(rng), pick(rng));
            if from != to {
                cluster.cut(from, to);
            }
            format!("cut {from} -> {to}")
        }
        Some(3) => {
            let victim = pick(rng);
            let torn = mix.torn_writes;
            let mut torn_rng = ChaCha8Rng::seed_from_u64(rng.next_u64());
            cluster.kill(victim, |_, unsynced_bytes| torn_write(torn, &mut torn_rng, unsynced_bytes));
            format!("kill {victim}")
        }
        _ => {
            let victim = pick(rng);
            if cluster.nodes[&victim].state == NodeState::Up {
                cluster.pause(victim);
            }
            format!("pause {victim}")
        }
    }
}

fn torn_write(torn: bool, rng: &mut ChaCha8Rng, unsynced_bytes: u64) -> TornWrite {
    if !torn || unsynced_bytes == 0 {
        return TornWrite { bytes_kept: 0, bytes_zeroed: 0 };
    }
    let bytes_kept = rng.next_u64() % (unsynced_bytes + 1);
    let bytes_zeroed = rng.next_u64() % (unsynced_bytes - bytes_kept + 1);
    TornWrite { bytes_kept, bytes_zeroed }
}
