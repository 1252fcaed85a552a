//! The node: one Raft group with its durable log, state machine and peers, driven by one loop
//! ([`driver`]). The server reaches it through [`NodeHandle`], which implements [`Backend`].
//!
//! Code map:
//! - `api`: the [`Backend`] trait and its types, what the server may ask.
//! - `peer`: [`PeerMessage`], what nodes say to each other (Raft traffic and forwarding).
//! - `pending`: requests accepted and not yet answered, and where each stands.
//! - `metrics`: [`NodeMetrics`], the loop's counters (proposals), for the exporter.
//! - `observer`: [`NodeObserver`], the events a node reports to the simulator's oracles.
//! - `driver`: the loop that turns Ready batches into I/O.

pub mod admin;
pub mod api;
pub mod driver;
pub mod metrics;
pub mod observer;
pub mod peer;
mod pending;

use std::collections::BTreeMap;
use std::sync::Arc;

use engine::{NodeId, PersistedState, Raft};
use tokio::sync::{mpsc, oneshot, watch};

pub use api::{
    AdminError, AdminReply, AdminRequest, Backend, MemberAddresses, MembershipStatus, NodeStatus, ReadError, ReadMode,
    WriteError,
};
pub use driver::{ClientRequest, LogStore, LoopConfig, NodeError, PeerSender, SnapshotWriter};
pub use metrics::{NodeMetrics, NodeMetricsSnapshot};
pub use observer::NodeObserver;
pub use peer::{ForwardedOutcome, ForwardedRequest, PeerMessage};

use crate::clock::Clock;
use crate::state::{Command, Limits, Query, Reply, Request, SessionId, StateMachine};
use driver::Driver;
use pending::Pending;

/// Everything a node is built from. The caller opens the store and starts the transport, so
/// the same node runs on the real file system and network, or on simulated ones.
#[derive(Debug)]
pub struct NodeParts<S, P> {
    pub id: NodeId,
    pub raft_config: engine::Config,
    pub loop_config: LoopConfig,
    pub limits: Limits,
    /// Seeds the engine's randomised election timeouts.
    pub seed: u64,
    pub persisted: PersistedState,
    pub store: S,
    pub peers: P,
    pub inbound: mpsc::Receiver<(NodeId, PeerMessage)>,
    pub clock: Arc<dyn Clock>,
    /// Told about every step of the node, if set (the simulator's oracles).
    pub observer: Option<Arc<dyn NodeObserver>>,
    /// Where the members named at start (`--peers`) and this node listen. Members added at
    /// run time carry their addresses in the membership.
    pub static_addresses: BTreeMap<NodeId, MemberAddresses>,
}

/// How the server (and the process) talks to a running node. Cheap to clone.
#[derive(Clone, Debug)]
pub struct NodeHandle {
    requests: mpsc::Sender<ClientRequest>,
    status: watch::Receiver<NodeStatus>,
    metrics: Arc<NodeMetrics>,
}

/// Starts the node loop as a task. Returns the handle and the task, which ends when the node
/// is shut down or its storage fails.
pub fn spawn<S: LogStore, P: PeerSender>(
    parts: NodeParts<S, P>,
) -> Result<(NodeHandle, tokio::task::JoinHandle<Result<(), NodeError>>), StartError> {
    let now_ms = parts.clock.now_ms();
    let recovered = parts.observer.as_ref().map(|_| parts.persisted.clone());
    let recovered_snapshot = parts.persisted.snapshot.clone();
    let raft = Raft::new(parts.id, parts.raft_config, parts.persisted, parts.seed, now_ms)?;
    if let (Some(observer), Some(recovered)) = (&parts.observer, &recovered) {
        observer.started(&raft, recovered);
    }
    let (requests_sender, requests) = mpsc::channel(64 * 1024);
    // The state machine lives in memory: it restarts from the latest snapshot (or empty) and
    // is rebuilt by applying the log after it.
    let machine = restore_machine(parts.limits, recovered_snapshot.as_ref())?;
    let placeholder = NodeStatus {
        id: parts.id,
        role: raft.role(),
        term: raft.term(),
        leader_id: None,
        commit_index: raft.commit_index(),
        applied_index: 0,
        last_log_index: raft.log().last_index(),
        log_entries: raft.log().entries().len() as u64,
        voters: raft.membership().voters.iter().copied().collect(),
        snapshot_index: raft.log().snapshot_index(),
        snapshots_saved: 0,
        snapshots_installed: 0,
        membership: MembershipStatus::default(),
    };
    let (status_sender, status) = watch::channel(placeholder);
    let metrics = Arc::new(NodeMetrics::default());
    let mut driver = Driver {
        raft,
        store: parts.store,
        machine,
        peers: parts.peers,
        clock: parts.clock,
        config: parts.loop_config,
        requests,
        inbound: parts.inbound,
        status: status_sender,
        pending: Pending { next_forward_id: first_forward_id(), ..Pending::default() },
        metrics: Arc::clone(&metrics),
        observer: parts.observer,
        snapshot_task: None,
        admins: Vec::new(),
        static_addresses: parts.static_addresses,
        known_membership: None,
        member_addresses: BTreeMap::new(),
    };
    driver.sync_peer_addresses();
    let task = tokio::spawn(driver.run());
    Ok((NodeHandle { requests: requests_sender, status, metrics }, task))
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Engine(#[from] engine::InitError),
    #[error("the snapshot at index {index} cannot be restored: {message}")]
    Snapshot { index: engine::Index, message: String },
}

fn restore_machine(limits: Limits, snapshot: Option<&engine::Snapshot>) -> Result<StateMachine, StartError> {
    let Some(snapshot) = snapshot else { return Ok(StateMachine::new(limits)) };
    let index = snapshot.meta.index;
    let image = crate::state::Snapshot::decode(&snapshot.data)
        .map_err(|error| StartError::Snapshot { index, message: error.to_string() })?;
    StateMachine::restore(image).map_err(|error| StartError::Snapshot { index, message: error.to_string() })
}

/// Where this run's forward ids start: the wall clock in nanoseconds (see
/// `Pending::next_forward_id`). Under the simulator the wall clock is simulated, so runs stay
/// deterministic.
fn first_forward_id() -> u64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX / 2)
}

impl NodeHandle {
    /// Asks the loop to stop; pending requests are answered with errors.
    pub async fn shutdown(&self) {
        let _ = self.requests.send(ClientRequest::Shutdown).await;
    }

    /// Waits until the node's status satisfies `condition`.
    pub async fn wait_for(&self, condition: impl Fn(&NodeStatus) -> bool) -> NodeStatus {
        let mut status = self.status.clone();
        let result = status.wait_for(|current| condition(current)).await.map(|current| current.clone());
        result.unwrap_or_else(|_| self.status())
    }

    /// The node loop's counters now.
    pub fn metrics(&self) -> NodeMetricsSnapshot {
        self.metrics.snapshot()
    }
}

impl Backend for NodeHandle {
    async fn register_session(&self) -> Result<SessionId, WriteError> {
        let request = Request { session: None, sequence: 0, command: Command::RegisterSession };
        match self.write(request).await? {
            Reply::Integer(id) if id > 0 => Ok(SessionId(id as u64)),
            other => {
                Err(WriteError::NotApplied { reason: format!("ERR unexpected session registration reply {other:?}") })
            }
        }
    }

    async fn write(&self, request: Request) -> Result<Reply, WriteError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || WriteError::NotApplied { reason: "the node is not running".to_string() };
        self.requests.send(ClientRequest::Write { request, reply }).await.map_err(|_| stopped())?;
        answer.await.unwrap_or_else(|_| {
            Err(WriteError::OutcomeUnknown { reason: "the node stopped while the write was in flight".to_string() })
        })
    }

    async fn read(&self, query: Query, mode: ReadMode) -> Result<Reply, ReadError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || ReadError::Unavailable { reason: "the node is not running".to_string() };
        self.requests.send(ClientRequest::Read { query, mode, reply }).await.map_err(|_| stopped())?;
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }

    async fn admin(&self, request: AdminRequest) -> Result<AdminReply, AdminError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || AdminError::Unavailable { reason: "the node is not running".to_string() };
        self.requests.send(ClientRequest::Admin { request, reply }).await.map_err(|_| stopped())?;
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }

    fn status(&self) -> NodeStatus {
        self.status.borrow().clone()
    }
}
