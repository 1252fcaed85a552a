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
use kvstore::resp::Frame;
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
/// The address operator commands come from.
const ADMIN_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 2, 3));
pub const RAFT_PORT: u16 = 7100;

/// How a node is doing, as the nemesis left it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    Up,
    Down,
    Paused,
    /// Removed from the cluster and stopped for good.
    Retired,
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
    timing: Timing,
    rates: MessageFaultRates,
    seed: u64,
    /// Where operator commands (`RAFT.*`) are sent from.
    admin_node: AdminNode,
    /// The fewest voters the cluster has had (churn lowers it): how many logs the nemesis
    /// may damage is a minority of this, so that a majority of voters always survives.
    pub fewest_voters: usize,
}

/// The madsim node operator commands are sent from.
struct AdminNode(madsim::runtime::NodeHandle);

impl std::fmt::Debug for AdminNode {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("AdminNode")
    }
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

/// One of the `node_count` nodes the cluster starts with.
fn process_config(id: NodeId, node_count: u64, timing: Timing) -> ProcessConfig {
    let peers = (1..=node_count).map(|peer| (peer, SocketAddr::new(node_ip(peer), RAFT_PORT))).collect();
    let file = kvstore::config::ConfigFile { peers: Some(peers_text(&peers)), ..config_file(id, timing) };
    file.resolve().expect("the simulated configuration is valid")
}

/// The settings every simulated node shares.
fn config_file(id: NodeId, timing: Timing) -> kvstore::config::ConfigFile {
    kvstore::config::ConfigFile {
        id: Some(id),
        cluster_id: Some("sim".to_string()),
        listen: Some(SocketAddr::new(node_ip(id), CLIENT_PORT)),
        data: Some(format!("/sim/node{id}").into()),
        heartbeat_interval_ms: Some(timing.heartbeat_interval_ms),
        election_timeout_ms_min: Some(timing.election_timeout_ms_min),
        election_timeout_ms_max: Some(timing.election_timeout_ms_max),
        request_timeout_ms: Some(timing.request_timeout_ms),
        snapshot_entries: Some(timing.snapshot_entries),
        snapshot_chunk_bytes: Some(timing.snapshot_chunk_bytes),
        snapshot_trailing_entries: Some(timing.snapshot_trailing_entries),
        ..Default::default()
    }
}

/// A node that joins the running cluster through the first of `through` that answers (members'
/// client addresses).
fn joining_process_config(id: NodeId, through: &[SocketAddr], timing: Timing) -> ProcessConfig {
    let mut file = config_file(id, timing);
    file.join = Some(through.iter().map(SocketAddr::to_string).collect::<Vec<_>>().join(","));
    file.raft_listen = Some(SocketAddr::new(node_ip(id), RAFT_PORT));
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
        let admin_node = AdminNode(Handle::current().create_node().name("admin").ip(ADMIN_IP).build());
        let mut cluster = SimCluster {
            nodes: BTreeMap::new(),
            cut_links: Vec::new(),
            message_faults_on: Arc::new(AtomicBool::new(true)),
            observer: Arc::new(ClusterObserver::new()),
            timing,
            rates,
            seed,
            admin_node,
            fewest_voters: node_count as usize,
        };
        for id in 1..=node_count {
            let skew = skews.get(id as usize - 1).copied().unwrap_or((0, 0));
            cluster.create_node(id, process_config(id, node_count, timing), skew);
        }
        cluster
    }

    /// Starts a new node, numbered after every node so far, that joins the cluster through
    /// node `through` (it asks to be added as a learner itself). Returns its id, or `None`
    /// once the simulated network has no address left for it.
    pub fn add_joining_node(&mut self, through: NodeId) -> Option<NodeId> {
        let id = self.nodes.keys().next_back().copied().unwrap_or(0) + 1;
        if id >= 250 {
            return None;
        }
        // As an operator would, it lists several members: it asks them again on every start,
        // and the one it joined through may be gone by then.
        let mut seeds = vec![self.nodes[&through].client_address];
        seeds.extend(
            self.ids().into_iter().filter(|&other| other != through).map(|other| self.nodes[&other].client_address),
        );
        let config = joining_process_config(id, &seeds, self.timing);
        self.create_node(id, config, (0, 0));
        Some(id)
    }

    fn create_node(&mut self, id: NodeId, config: ProcessConfig, (drift_ppm, offset_ms): (i64, u64)) {
        let disk = MemDisk::new();
        let clock = Arc::new(SkewedClock::new(drift_ppm, offset_ms));
        let (init_disk, init_clock) = (disk.clone(), Arc::clone(&clock));
        let (rates, faults_on, fault_seed) =
            (self.rates, Arc::clone(&self.message_faults_on), self.seed ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let life = Arc::new(Mutex::new(Life::Starting));
        let (init_life, init_observer) = (Arc::clone(&life), Arc::clone(&self.observer));
        let madsim_node = Handle::current()
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
        self.nodes.insert(id, node);
    }

    /// Sends one command to node `through`'s client port from the admin node, as an operator
    /// would; the reply, or why there was none.
    pub async fn admin(&self, through: NodeId, words: Vec<String>) -> Result<Frame, String> {
        let address = self.nodes[&through].client_address.to_string();
        let call = async move {
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            kvstore::admin_client::call(&address, &words).await
        };
        self.admin_node.0.spawn(call).await.map_err(|error| format!("admin task: {error}"))?
    }

    /// Stops a node for good: it was removed from the cluster (or its removal was tried).
    /// Healing never restarts it, and it takes no part in the liveness phase.
    pub fn retire(&mut self, id: NodeId) {
        if self.nodes[&id].state != NodeState::Down {
            self.kill(id, |_, _| TornWrite::default());
        }
        self.nodes.get_mut(&id).expect("known node").state = NodeState::Retired;
    }

    /// The nodes not retired, in id order.
    pub fn ids(&self) -> Vec<NodeId> {
        self.nodes.values().filter(|node| node.state != NodeState::Retired).map(|node| node.id).collect()
    }

    pub fn client_addresses(&self) -> Vec<SocketAddr> {
        self.nodes.values().map(|node| node.client_address).collect()
    }

    /// The client addresses of the nodes that must serve again once every fault heals: not
    /// retired, and with a log the nemesis did not damage.
    pub fn healthy_client_addresses(&self) -> Vec<SocketAddr> {
        let live = self.nodes.values().filter(|node| !node.corrupted && node.state != NodeState::Retired);
        live.map(|node| node.client_address).collect()
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
            // A joining node that could not reach a leader gave up: let it try again.
            let join_failed = matches!(self.nodes[&id].life(), Life::RefusedToStart(_)) && !self.nodes[&id].corrupted;
            if self.nodes[&id].state == NodeState::Up && join_failed {
                self.kill(id, |_, _| TornWrite::default());
            }
            match self.nodes[&id].state {
                NodeState::Paused => self.resume(id),
                NodeState::Down => self.restart(id),
                NodeState::Up | NodeState::Retired => {}
            }
        }
    }
}
