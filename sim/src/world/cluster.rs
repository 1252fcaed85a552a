//! The simulated cluster: real Tally processes (`kvstore::process::start`), each a madsim node
//! with its own address, simulated disk and skewed clock, which the nemesis kills, restarts,
//! pauses and partitions.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use engine::NodeId;
use kvstore::config::ProcessConfig;
use kvstore::node::PeerMessage;
use kvstore::process::ProcessHooks;
use kvstore::storage::{MemDisk, TornWrite};
use kvstore::transport::{FaultDecision, MessageFaults};
use madsim::net::NetSim;
use madsim::runtime::Handle;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::oracles::ClusterObserver;
use crate::world::clock::SkewedClock;
use crate::world::nemesis::MessageFaultRates;

pub const CLIENT_PORT: u16 = 7000;
pub const RAFT_PORT: u16 = 7100;

/// How a node is doing, as the nemesis left it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    Up,
    Down,
    Paused,
}

/// What the node's process did with its latest start, as it reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Life {
    Starting,
    Running,
    /// Opening the data failed (a corrupt log): the process exited, as in production.
    RefusedToStart(String),
    /// The node loop stopped by itself (a storage failure) and the process exited.
    Stopped(String),
}

#[derive(Debug)]
pub struct SimNode {
    pub id: NodeId,
    pub client_address: SocketAddr,
    pub disk: MemDisk,
    pub clock: Arc<SkewedClock>,
    pub state: NodeState,
    /// Set when the nemesis damaged this node's log on purpose: it must never start again.
    pub corrupted: bool,
    life: Arc<Mutex<Life>>,
    madsim_id: madsim::task::NodeId,
}

impl SimNode {
    pub fn life(&self) -> Life {
        self.life.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

fn set_life(life: &Mutex<Life>, now: Life) {
    *life.lock().unwrap_or_else(PoisonError::into_inner) = now;
}

/// One start of a node's process: runs it until its node loop stops by itself, reporting each
/// step to `life`. A process whose node stopped exits (its server and transport go too).
async fn run_process(
    config: ProcessConfig,
    disk: MemDisk,
    clock: Arc<SkewedClock>,
    hooks: ProcessHooks,
    life: Arc<Mutex<Life>>,
) {
    set_life(&life, Life::Starting);
    let mut process = match kvstore::process::start_with_hooks(&config, disk, clock, hooks).await {
        Ok(process) => process,
        Err(error) => {
            tracing::warn!(id = config.id, "node refused to start: {error:#}");
            set_life(&life, Life::RefusedToStart(format!("{error:#}")));
            return;
        }
    };
    set_life(&life, Life::Running);
    let reason = match process.node_stopped().await {
        Ok(()) => "the node loop ended".to_string(),
        Err(error) => error.to_string(),
    };
    tracing::warn!(id = config.id, "node stopped: {reason}");
    set_life(&life, Life::Stopped(reason));
    let _ = process.shutdown().await;
}

/// Timing of the simulated nodes: short, so that a run sees many elections.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub heartbeat_interval_ms: u64,
    pub election_timeout_ms_min: u64,
    pub election_timeout_ms_max: u64,
    pub request_timeout_ms: u64,
    /// Snapshots every this many applied entries, sent in small chunks: so that runs compact
    /// logs and send snapshots to nodes that fell behind (crashed, cut off, paused).
    pub snapshot_entries: u64,
    pub snapshot_trailing_entries: u64,
    pub snapshot_chunk_bytes: usize,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            heartbeat_interval_ms: 50,
            election_timeout_ms_min: 300,
            election_timeout_ms_max: 600,
            request_timeout_ms: 3000,
            snapshot_entries: 64,
            snapshot_trailing_entries: 8,
            snapshot_chunk_bytes: 512,
        }
    }
}

#[derive(Debug)]
pub struct SimCluster {
    pub nodes: BTreeMap<NodeId, SimNode>,
    cut_links: Vec<(NodeId, NodeId)>,
    /// Message faults apply while this is set (the safety phase).
    message_faults_on: Arc<AtomicBool>,
    pub observer: Arc<ClusterObserver>,
}

/// A node's message-fault hook: a seeded RNG rolling against the rates while faults are on.
fn message_faults(rates: MessageFaultRates, seed: u64, on: Arc<AtomicBool>) -> Box<dyn MessageFaults<PeerMessage>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Box::new(move |_to: u64, _message: &PeerMessage| {
        if !on.load(Ordering::Relaxed) {
            return FaultDecision::Deliver;
        }
        let roll = rng.next_u64() % 1000;
        let (drop, duplicate) = (rates.drop_per_mille, rates.drop_per_mille + rates.duplicate_per_mille);
        if roll < drop {
            FaultDecision::Drop
        } else if roll < duplicate {
            FaultDecision::Duplicate
        } else if roll < duplicate + rates.delay_per_mille {
            FaultDecision::Delay { delay_ms: 1 + rng.next_u64() % rates.delay_ms_max.max(1) }
        } else {
            FaultDecision::Deliver
        }
    })
}

pub fn node_ip(id: NodeId) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, id as u8))
}

fn process_config(id: NodeId, node_count: u64, timing: Timing) -> ProcessConfig {
    let peers = (1..=node_count).map(|peer| (peer, SocketAddr::new(node_ip(peer), RAFT_PORT))).collect();
    let file = kvstore::config::ConfigFile {
        id: Some(id),
        cluster_id: Some("sim".to_string()),
        listen: Some(SocketAddr::new(node_ip(id), CLIENT_PORT)),
        peers: Some(peers_text(&peers)),
        data: Some(format!("/sim/node{id}").into()),
        heartbeat_interval_ms: Some(timing.heartbeat_interval_ms),
        election_timeout_ms_min: Some(timing.election_timeout_ms_min),
        election_timeout_ms_max: Some(timing.election_timeout_ms_max),
        request_timeout_ms: Some(timing.request_timeout_ms),
        snapshot_entries: Some(timing.snapshot_entries),
        snapshot_chunk_bytes: Some(timing.snapshot_chunk_bytes),
        snapshot_trailing_entries: Some(timing.snapshot_trailing_entries),
        ..Default::default()
    };
    file.resolve().expect("the simulated configuration is valid")
}

fn peers_text(peers: &BTreeMap<NodeId, SocketAddr>) -> String {
    peers.iter().map(|(id, address)| format!("{id}={address}")).collect::<Vec<_>>().join(",")
}

impl SimCluster {
    /// Creates and starts `node_count` nodes. `skews` gives each node's (drift ppm, offset ms);
    /// `rates` the message faults, each node's drawn from `seed`.
    pub fn start(
        node_count: u64,
        timing: Timing,
        skews: &[(i64, u64)],
        rates: MessageFaultRates,
        seed: u64,
    ) -> SimCluster {
        let handle = Handle::current();
        let message_faults_on = Arc::new(AtomicBool::new(true));
        let observer = Arc::new(ClusterObserver::new());
        let mut nodes = BTreeMap::new();
        for id in 1..=node_count {
            let (drift_ppm, offset_ms) = skews.get(id as usize - 1).copied().unwrap_or((0, 0));
            let disk = MemDisk::new();
            let clock = Arc::new(SkewedClock::new(drift_ppm, offset_ms));
            let config = process_config(id, node_count, timing);
            let (init_disk, init_clock) = (disk.clone(), Arc::clone(&clock));
            let (faults_on, fault_seed) =
                (Arc::clone(&message_faults_on), seed ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let life = Arc::new(Mutex::new(Life::Starting));
            let (init_life, init_observer) = (Arc::clone(&life), Arc::clone(&observer));
            let madsim_node = handle
                .create_node()
                .name(format!("node{id}"))
                .ip(node_ip(id))
                .init(move || {
                    let hooks = ProcessHooks {
                        message_faults: Some(message_faults(rates, fault_seed, Arc::clone(&faults_on))),
                        observer: Some(Arc::clone(&init_observer) as Arc<dyn kvstore::node::NodeObserver>),
                    };
                    let (disk, clock, life) = (init_disk.clone(), Arc::clone(&init_clock), Arc::clone(&init_life));
                    run_process(config.clone(), disk, clock, hooks, life)
                })
                .build();
            let client_address = SocketAddr::new(node_ip(id), CLIENT_PORT);
            let node = SimNode {
                id,
                client_address,
                disk,
                clock,
                state: NodeState::Up,
                corrupted: false,
                life,
                madsim_id: madsim_node.id(),
            };
            nodes.insert(id, node);
        }
        SimCluster { nodes, cut_links: Vec::new(), message_faults_on, observer }
    }

    pub fn ids(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    pub fn client_addresses(&self) -> Vec<SocketAddr> {
        self.nodes.values().map(|node| node.client_address).collect()
    }

    /// The client addresses of the nodes whose log the nemesis did not damage: the ones that
    /// must serve again once every fault heals.
    pub fn healthy_client_addresses(&self) -> Vec<SocketAddr> {
        self.nodes.values().filter(|node| !node.corrupted).map(|node| node.client_address).collect()
    }

    /// Kills a node. Its disk keeps what was synced, plus (if `torn`) a torn prefix of the
    /// unsynced tail: `torn` gives, per file, the bytes kept and the bytes left as zeros.
    pub fn kill(&mut self, id: NodeId, mut torn: impl FnMut(&str, u64) -> TornWrite) {
        let node = self.nodes.get_mut(&id).expect("known node");
        Handle::current().kill(node.madsim_id);
        node.disk.crash(&mut torn);
        node.state = NodeState::Down;
    }

    pub fn restart(&mut self, id: NodeId) {
        let node = self.nodes.get_mut(&id).expect("known node");
        Handle::current().restart(node.madsim_id);
        node.state = NodeState::Up;
    }

    /// A GC-style pause: the node's tasks stop, timers collapse, inbound bytes wait.
    pub fn pause(&mut self, id: NodeId) {
        let node = self.nodes.get_mut(&id).expect("known node");
        Handle::current().pause(node.madsim_id);
        node.state = NodeState::Paused;
    }

    pub fn resume(&mut self, id: NodeId) {
        let node = self.nodes.get_mut(&id).expect("known node");
        Handle::current().resume(node.madsim_id);
        node.state = NodeState::Up;
    }

    /// Cuts the directed link `from -> to` (madsim stalls, never breaks, a clogged stream).
    pub fn cut(&mut self, from: NodeId, to: NodeId) {
        NetSim::current().clog_link(self.nodes[&from].madsim_id, self.nodes[&to].madsim_id);
        self.cut_links.push((from, to));
    }

    /// Splits the nodes into groups that cannot reach each other.
    pub fn partition(&mut self, groups: &[Vec<NodeId>]) {
        for (position, group) in groups.iter().enumerate() {
            for other in &groups[position + 1..] {
                for &a in group {
                    for &b in other {
                        self.cut(a, b);
                        self.cut(b, a);
                    }
                }
            }
        }
    }

    pub fn heal_network(&mut self) {
        for (from, to) in std::mem::take(&mut self.cut_links) {
            NetSim::current().unclog_link(self.nodes[&from].madsim_id, self.nodes[&to].madsim_id);
        }
    }

    /// Ends message faults (loss, duplication, delay) for good: the liveness phase begins.
    pub fn stop_message_faults(&mut self) {
        self.message_faults_on.store(false, Ordering::Relaxed);
    }

    /// Ends every fault: the network heals, paused nodes resume, dead nodes restart, and a node
    /// that stopped on a storage failure is restarted (its unsynced writes lost, as after the
    /// exit of a real process whose fsync failed). Sync failures still pending are withdrawn.
    pub fn heal_everything(&mut self) {
        self.heal_network();
        for id in self.ids() {
            self.nodes[&id].disk.cancel_sync_failures();
            if self.nodes[&id].state == NodeState::Up && matches!(self.nodes[&id].life(), Life::Stopped(_)) {
                self.kill(id, |_, _| TornWrite::default());
            }
            match self.nodes[&id].state {
                NodeState::Paused => self.resume(id),
                NodeState::Down => self.restart(id),
                NodeState::Up => {}
            }
        }
    }
}
