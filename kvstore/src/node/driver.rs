//! The node loop: one task owns the Raft engine, the durable log and the state machine, and
//! turns the engine's Ready batches into I/O.
//!
//! Each turn of the loop waits for a tick, a peer message or a client request; drains whatever
//! else is already queued (so a burst of requests becomes one append and one fsync); submits
//! waiting requests (proposes them as leader, forwards them otherwise); then processes Ready
//! batches until the engine has nothing more: send `messages_now`, persist with one fsync, send
//! `messages_after_persist`, apply committed entries and answer the requests they settle.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use engine::{
    Entry, EntryKind, HardState, Index, NodeId, ProposeError, Raft, ReadId, ReadState, Ready, Role, Snapshot,
    SnapshotMeta,
};
use tokio::sync::{mpsc, oneshot, watch};

use crate::clock::Clock;
use crate::node::admin::PendingAdmin;
use crate::node::api::{
    AdminError, AdminReply, AdminRequest, MemberAddresses, NodeStatus, ReadError, ReadMode, WriteError,
};
use crate::node::metrics::NodeMetrics;
use crate::node::observer::NodeObserver;
use crate::node::peer::{ForwardedOutcome, ForwardedRequest, PeerMessage};
use crate::node::pending::{FollowerReads, Forwarded, Pending, PendingRead, PendingWrite, ReadIndexWaiter, Responder};
use crate::state::{Query, Reply, Request, StateMachine};

/// Timing of the node loop and of client requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoopConfig {
    /// How often the engine's clock advances.
    pub tick_interval_ms: u64,
    /// Every client request is answered within this, with an error if need be.
    pub request_timeout_ms: u64,
    /// A forwarded request unanswered for this long is sent again (to the leader known then).
    pub forward_patience_ms: u64,
    /// How many queued inputs one loop turn takes before it processes a Ready.
    pub batch_inputs_max: usize,
}

impl Default for LoopConfig {
    fn default() -> Self {
        LoopConfig {
            tick_interval_ms: 10,
            request_timeout_ms: 10_000,
            forward_patience_ms: 3_000,
            batch_inputs_max: 4096,
        }
    }
}

/// Durable storage for the engine's log and hard state, as the loop needs it.
pub trait LogStore: Send + 'static {
    /// Writes a Ready's entries, then its hard state, with one fsync. An error is fatal.
    fn persist(&mut self, hard_state: Option<HardState>, entries: &[Entry]) -> Result<(), String>;

    /// Writes a hard state that differs from the last one written only in its commit index,
    /// without an fsync of its own (it becomes durable with the next `persist`). An error is
    /// fatal.
    fn record_commit(&mut self, hard_state: HardState) -> Result<(), String>;

    /// The hard state that is durable now.
    fn durable_hard_state(&self) -> HardState;

    /// Something that writes a snapshot file durably from another task, on its own handle of
    /// the disk, while the loop goes on.
    fn snapshot_writer(&self) -> SnapshotWriter;

    /// The node's own snapshot `meta` is durable (written by a [`SnapshotWriter`]): drop the
    /// log before `first_kept_index` and older snapshots. An error is fatal.
    fn snapshot_saved(&mut self, meta: &SnapshotMeta, first_kept_index: Index) -> Result<(), String>;

    /// Makes a snapshot from the leader durable and the log restart after it; with
    /// `remove_older`, older snapshot files go too. An error is fatal.
    fn install_snapshot(&mut self, snapshot: &Snapshot, remove_older: bool) -> Result<(), String>;
}

/// Writes one snapshot file durably; see [`LogStore::snapshot_writer`].
pub type SnapshotWriter = Box<dyn FnOnce(&Snapshot) -> Result<(), String> + Send>;

/// Where the loop sends peer messages. The transport queues and never blocks the loop.
pub trait PeerSender: Send + 'static {
    fn send(&self, to: NodeId, message: PeerMessage);

    /// Makes a member added at run time reachable at `address`.
    fn add_peer(&self, id: NodeId, address: std::net::SocketAddr);
}

/// A request from a local connection.
#[derive(Debug)]
pub enum ClientRequest {
    Write {
        request: Request,
        reply: oneshot::Sender<Result<Reply, WriteError>>,
    },
    Read {
        query: Query,
        mode: ReadMode,
        reply: oneshot::Sender<Result<Reply, ReadError>>,
    },
    Admin {
        request: AdminRequest,
        reply: oneshot::Sender<Result<AdminReply, AdminError>>,
    },
    /// Stops the loop after its current turn.
    Shutdown,
}

/// Why the node stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("storage failed, the node must stop: {0}")]
    Storage(String),
}

/// The loop's state.
pub struct Driver<S: LogStore, P: PeerSender> {
    pub(crate) raft: Raft,
    pub(crate) store: S,
    pub(crate) machine: StateMachine,
    pub(crate) peers: P,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: LoopConfig,
    pub(crate) requests: mpsc::Receiver<ClientRequest>,
    pub(crate) inbound: mpsc::Receiver<(NodeId, PeerMessage)>,
    pub(crate) status: watch::Sender<NodeStatus>,
    pub(crate) pending: Pending,
    pub(crate) metrics: Arc<NodeMetrics>,
    pub(crate) observer: Option<Arc<dyn NodeObserver>>,
    /// The node's own snapshot being encoded and written off the loop, if any.
    pub(crate) snapshot_task: Option<oneshot::Receiver<Result<Snapshot, String>>>,
    /// Membership changes and transfers under way (see `admin.rs`).
    pub(crate) admins: Vec<PendingAdmin>,
    /// The addresses of the members named by `--peers` (and this node's own).
    pub(crate) static_addresses: BTreeMap<NodeId, MemberAddresses>,
    /// The membership the address book below was built for.
    pub(crate) known_membership: Option<engine::Membership>,
    /// Every member's addresses: `static_addresses` overridden by the membership's metadata,
    /// rebuilt only when the membership changes (see `admin.rs`).
    pub(crate) member_addresses: BTreeMap<NodeId, MemberAddresses>,
}

impl<S: LogStore, P: PeerSender> std::fmt::Debug for Driver<S, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver").field("id", &self.raft.id()).field("role", &self.raft.role()).finish()
    }
}

enum Input {
    Tick,
    Client(ClientRequest),
    Peer(NodeId, PeerMessage),
    SnapshotWritten(Result<Snapshot, String>),
    Closed,
}

/// Runs CPU-bound work off the node loop: on a blocking thread in production; under the
/// simulator, which has no threads, as an ordinary task (it then runs deterministically).
fn spawn_off_loop(work: impl FnOnce() + Send + 'static) {
    #[cfg(madsim)]
    tokio::spawn(async move { work() });
    #[cfg(not(madsim))]
    tokio::task::spawn_blocking(work);
}

/// Waits for the snapshot task's result; a task that vanished counts as a failed write.
async fn wait_for_snapshot(task: &mut Option<oneshot::Receiver<Result<Snapshot, String>>>) -> Result<Snapshot, String> {
    match task.as_mut() {
        Some(receiver) => receiver.await.unwrap_or_else(|_| Err("the snapshot task stopped".to_string())),
        None => std::future::pending().await,
    }
}

impl<S: LogStore, P: PeerSender> Driver<S, P> {
    /// Runs until shut down, or until storage fails (then every pending request is answered
    /// with an error and the error is returned: the process must stop).
    pub async fn run(mut self) -> Result<(), NodeError> {
        let mut next_tick_ms = self.clock.now_ms() + self.config.tick_interval_ms;
        loop {
            let wait_ms = next_tick_ms.saturating_sub(self.clock.now_ms());
            // Biased: tokio's random branch choice is not seeded by the simulator. Peer traffic
            // first keeps the cluster healthy under client load; the tick cannot starve, since
            // its deadline is checked on every turn.
            let input = tokio::select! {
                biased;
                written = wait_for_snapshot(&mut self.snapshot_task), if self.snapshot_task.is_some() => {
                    Input::SnapshotWritten(written)
                }
                message = self.inbound.recv() => message.map_or(Input::Closed, |(from, m)| Input::Peer(from, m)),
                request = self.requests.recv() => request.map_or(Input::Closed, Input::Client),
                _ = tokio::time::sleep(Duration::from_millis(wait_ms)) => Input::Tick,
            };
            if let Input::SnapshotWritten(written) = input {
                if let Err(error) = self.on_snapshot_written(written) {
                    tracing::error!(%error, "stopping the node");
                    self.fail_everything("the node stopped after a storage failure");
                    return Err(error);
                }
                continue;
            }
            if !self.take_input(input) || !self.drain_queued_inputs() {
                self.fail_everything("the node is shutting down");
                return Ok(());
            }
            let now_ms = self.clock.now_ms();
            if now_ms >= next_tick_ms {
                self.raft.tick(now_ms);
                self.sweep(now_ms);
                next_tick_ms = now_ms + self.config.tick_interval_ms;
            }
            self.submit_waiting(now_ms);
            self.advance_admins(now_ms);
            if let Err(error) = self.process_ready() {
                tracing::error!(%error, "stopping the node");
                self.fail_everything("the node stopped after a storage failure");
                return Err(error);
            }
            self.sync_peer_addresses();
            self.advance_admins(now_ms);
            self.publish_status();
            if let Some(observer) = &self.observer {
                observer.turn_ended(&self.raft);
            }
        }
    }

    /// Returns false when the loop must stop.
    fn take_input(&mut self, input: Input) -> bool {
        match input {
            Input::Tick | Input::SnapshotWritten(_) => true,
            Input::Closed | Input::Client(ClientRequest::Shutdown) => false,
            Input::Client(request) => {
                self.on_client_request(request);
                true
            }
            Input::Peer(from, message) => {
                self.on_peer_message(from, message);
                true
            }
        }
    }

    /// Takes what is already queued, up to the batch limit, without waiting.
    fn drain_queued_inputs(&mut self) -> bool {
        for _ in 0..self.config.batch_inputs_max {
            let input = if let Ok(request) = self.requests.try_recv() {
                Input::Client(request)
            } else if let Ok((from, message)) = self.inbound.try_recv() {
                Input::Peer(from, message)
            } else {
                return true;
            };
            if !self.take_input(input) {
                return false;
            }
        }
        true
    }

    fn on_client_request(&mut self, request: ClientRequest) {
        let deadline_ms = self.clock.now_ms() + self.config.request_timeout_ms;
        match request {
            ClientRequest::Write { request, reply } => self.pending.waiting_writes.push_back(PendingWrite {
                request,
                responder: Responder::Local(reply),
                deadline_ms,
                maybe_applied: false,
            }),
            ClientRequest::Read { query, mode: ReadMode::Stale, reply } => {
                let _ = reply.send(Ok(query.execute(&self.machine)));
            }
            ClientRequest::Read { query, mode, reply } => {
                self.pending.waiting_reads.push_back(PendingRead {
                    query,
                    mode,
                    responder: Responder::Local(reply),
                    deadline_ms,
                });
            }
            ClientRequest::Admin { request, reply } => self.accept_admin(request, Responder::Local(reply), false),
            ClientRequest::Shutdown => unreachable!("handled by take_input"),
        }
    }

    fn on_peer_message(&mut self, from: NodeId, message: PeerMessage) {
        let deadline_ms = self.clock.now_ms() + self.config.request_timeout_ms;
        match message {
            PeerMessage::Raft(message) => {
                if let Some(observer) = &self.observer {
                    observer.receiving(&self.raft, &message);
                }
                if let Err(error) = self.raft.step(message) {
                    tracing::warn!(peer = from, %error, "dropped a peer message");
                }
            }
            PeerMessage::Forward { id, request } if self.raft.role() != Role::Leader => {
                // The sender believes we lead; we do not (any more). Say so: it will retry.
                let reason = format!("node {} is not the leader", self.raft.id());
                let outcome = match request {
                    ForwardedRequest::Write(_) => ForwardedOutcome::Write(Err(WriteError::NotApplied { reason })),
                    ForwardedRequest::Read { .. } => ForwardedOutcome::Read(Err(ReadError::Unavailable { reason })),
                    ForwardedRequest::Admin { .. } => ForwardedOutcome::Admin(Err(AdminError::Unavailable { reason })),
                };
                self.peers.send(from, PeerMessage::ForwardReply { id, outcome });
            }
            PeerMessage::Forward { id, request: ForwardedRequest::Write(request) } => {
                let responder = Responder::Peer { node: from, forward_id: id };
                self.pending.waiting_writes.push_back(PendingWrite {
                    request,
                    responder,
                    deadline_ms,
                    maybe_applied: false,
                });
            }
            PeerMessage::Forward { id, request: ForwardedRequest::Admin { request, retry } } => {
                self.accept_admin(request, Responder::Peer { node: from, forward_id: id }, retry);
            }
            PeerMessage::Forward { id, request: ForwardedRequest::Read { query, mode } } => {
                let responder = Responder::Peer { node: from, forward_id: id };
                self.pending.waiting_reads.push_back(PendingRead { query, mode, responder, deadline_ms });
            }
            PeerMessage::ForwardReply { id, outcome } => self.on_forward_reply(id, outcome),
            PeerMessage::ReadIndexRequest { id } => self.on_read_index_request(from, id),
            PeerMessage::ReadIndexReply { id, index } => self.on_read_index_reply(id, index),
        }
    }

    /// A follower wants a read index for its `follower`-mode reads.
    fn on_read_index_request(&mut self, from: NodeId, request_id: u64) {
        let read_id = self.pending.allocate_forward_id();
        match self.ask_engine_for_read(read_id, false) {
            Ok(()) => {
                let waiter = ReadIndexWaiter::Follower { node: from, request_id };
                self.pending.read_indexes.insert(read_id, (self.raft.term(), waiter));
            }
            Err(_) => self.peers.send(from, PeerMessage::ReadIndexReply { id: request_id, index: None }),
        }
    }

    /// The leader's read index for our `follower`-mode reads, or its refusal (then they wait
    /// and ask again).
    fn on_read_index_reply(&mut self, request_id: u64, index: Option<Index>) {
        let Some(asked) = self.pending.follower_reads.remove(&request_id) else { return };
        match index {
            Some(index) => {
                self.pending.reads_awaiting_apply.entry(index).or_default().extend(asked.reads);
                self.serve_applied_reads();
            }
            None => self.pending.waiting_reads.extend(asked.reads),
        }
    }

    /// A leader answered a forwarded request. A failure is not final: the request goes back
    /// to waiting and is tried again (writes under the same session, so at most once) until
    /// its deadline.
    fn on_forward_reply(&mut self, id: u64, outcome: ForwardedOutcome) {
        let outcome = match outcome {
            ForwardedOutcome::Admin(outcome) => return self.on_admin_reply(id, outcome),
            other => other,
        };
        let Some(forwarded) = self.pending.forwarded.remove(&id) else { return };
        match (forwarded, outcome) {
            (Forwarded::Write { write, .. }, ForwardedOutcome::Write(Ok(reply))) => self.answer_write(write, Ok(reply)),
            (Forwarded::Read { read, .. }, ForwardedOutcome::Read(Ok(reply))) => self.answer_read(read, Ok(reply)),
            (Forwarded::Write { write, .. }, _) => self.pending.waiting_writes.push_back(write),
            (Forwarded::Read { read, .. }, _) => self.pending.waiting_reads.push_back(read),
        }
    }

    /// Sends waiting requests on their way: proposed here if we lead, forwarded if another
    /// node does, left waiting if no leader is known.
    fn submit_waiting(&mut self, now_ms: u64) {
        let leading = self.raft.role() == Role::Leader;
        for (node, request_id) in self.pending.abandon_read_indexes(self.raft.term(), leading) {
            self.peers.send(node, PeerMessage::ReadIndexReply { id: request_id, index: None });
        }
        if leading {
            self.propose_waiting_writes();
            self.ask_read_indexes();
        } else if let Some(leader) = self.raft.leader_id().filter(|&leader| leader != self.raft.id()) {
            self.forward_waiting(leader, now_ms);
        }
    }

    fn propose_waiting_writes(&mut self) {
        while let Some(mut write) = self.pending.waiting_writes.pop_front() {
            match self.raft.propose(Bytes::from(write.request.encode())) {
                Ok(index) => {
                    self.metrics.record_write_proposal();
                    write.maybe_applied = true;
                    self.pending.proposed_writes.insert(index, (self.raft.term(), write));
                }
                Err(ProposeError::EntryTooLarge { size_bytes, limit_bytes }) => {
                    let reason =
                        format!("ERR write of {size_bytes} bytes exceeds the entry limit of {limit_bytes} bytes");
                    self.answer_write(write, Err(WriteError::NotApplied { reason }));
                }
                Err(
                    ProposeError::NotLeader { .. }
                    | ProposeError::UncommittedLimitReached { .. }
                    | ProposeError::TransferInProgress,
                ) => {
                    // Not leading after all, back-pressure, or a leadership transfer: try again on
                    // a later turn (after a transfer, at the new leader).
                    self.pending.waiting_writes.push_front(write);
                    return;
                }
            }
        }
    }

    /// Asks the engine for read indexes for every read waiting now: one under the lease for
    /// `lease` reads, one through a heartbeat round for the others (which the engine batches
    /// with every other read of that round).
    fn ask_read_indexes(&mut self) {
        if self.pending.waiting_reads.is_empty() {
            return;
        }
        let (lease, round): (Vec<PendingRead>, Vec<PendingRead>) =
            self.pending.waiting_reads.drain(..).partition(|read| read.mode == ReadMode::Lease);
        for (reads, use_lease) in [(lease, true), (round, false)] {
            if reads.is_empty() {
                continue;
            }
            let read_id = self.pending.allocate_forward_id();
            match self.ask_engine_for_read(read_id, use_lease) {
                Ok(()) => {
                    self.metrics.record_read_index_request();
                    let waiter = ReadIndexWaiter::Reads(reads);
                    self.pending.read_indexes.insert(read_id, (self.raft.term(), waiter));
                }
                Err(_) => self.pending.waiting_reads.extend(reads),
            }
        }
    }

    /// Asks the engine for a read index, under the lease or through a heartbeat round.
    fn ask_engine_for_read(&mut self, read_id: ReadId, use_lease: bool) -> Result<(), engine::ReadError> {
        let asked = if use_lease { self.raft.lease_read(read_id) } else { self.raft.read_index(read_id) };
        if let (Ok(()), Some(observer)) = (&asked, &self.observer) {
            observer.read_requested(&self.raft, read_id, use_lease);
        }
        asked
    }

    /// Read indexes the engine handed out: local reads wait for the state machine to apply
    /// that far; followers get the index.
    fn on_reads_ready(&mut self, reads: Vec<ReadState>) {
        for ReadState { id, index } in reads {
            match self.pending.read_indexes.remove(&id) {
                Some((_, ReadIndexWaiter::Reads(batch))) => {
                    self.pending.reads_awaiting_apply.entry(index).or_default().extend(batch);
                }
                Some((_, ReadIndexWaiter::Follower { node, request_id })) => {
                    self.peers.send(node, PeerMessage::ReadIndexReply { id: request_id, index: Some(index) });
                }
                None => {} // Its reads expired meanwhile.
            }
        }
        self.serve_applied_reads();
    }

    /// Answers every read whose index the state machine has applied.
    fn serve_applied_reads(&mut self) {
        for read in self.pending.take_reads_applied_by(self.machine_applied_index()) {
            let reply = read.query.execute(&self.machine);
            self.answer_read(read, Ok(reply));
        }
    }

    fn machine_applied_index(&self) -> Index {
        self.raft.log().applied_index()
    }

    fn forward_waiting(&mut self, leader: NodeId, now_ms: u64) {
        while let Some(mut write) = self.pending.waiting_writes.pop_front() {
            let id = self.pending.allocate_forward_id();
            let request = ForwardedRequest::Write(write.request.clone());
            self.peers.send(leader, PeerMessage::Forward { id, request });
            write.maybe_applied = true;
            self.pending.forwarded.insert(id, Forwarded::Write { write, leader, sent_ms: now_ms });
        }
        let (local, forwarded): (Vec<PendingRead>, Vec<PendingRead>) =
            self.pending.waiting_reads.drain(..).partition(|read| read.mode == ReadMode::Follower);
        if !local.is_empty() {
            // Served here once we have applied the leader's read index: one request for all.
            let id = self.pending.allocate_forward_id();
            self.peers.send(leader, PeerMessage::ReadIndexRequest { id });
            self.pending.follower_reads.insert(id, FollowerReads { leader, sent_ms: now_ms, reads: local });
        }
        for read in forwarded {
            let id = self.pending.allocate_forward_id();
            let request = ForwardedRequest::Read { query: read.query.clone(), mode: read.mode };
            self.peers.send(leader, PeerMessage::Forward { id, request });
            self.pending.forwarded.insert(id, Forwarded::Read { read, leader, sent_ms: now_ms });
        }
    }

    /// Processes Ready batches until the engine has nothing more to do.
    fn process_ready(&mut self) -> Result<(), NodeError> {
        loop {
            let mut ready = self.raft.ready();
            if ready.is_empty() {
                return Ok(());
            }
            self.send_raft(std::mem::take(&mut ready.messages_now));
            if ready.needs_persist() {
                let no_entries = ready.entries_to_persist.is_empty() && ready.messages_after_persist.is_empty();
                match ready.hard_state {
                    // No entry and no message waits for this hard state: if only its commit
                    // index changed, the store writes it without an fsync of its own.
                    Some(hard_state) if no_entries => self.store.record_commit(hard_state),
                    hard_state => self.store.persist(hard_state, &ready.entries_to_persist),
                }
                .map_err(NodeError::Storage)?;
                if let Some(observer) = &self.observer {
                    let durable = self.store.durable_hard_state();
                    observer.persisted(&self.raft, Some(durable), &ready.entries_to_persist);
                }
                if let Some((index, term)) = ready.persisted_position() {
                    self.raft.on_persisted(index, term);
                }
            }
            let after_persist = std::mem::take(&mut ready.messages_after_persist);
            self.send_raft(after_persist);
            let reads = std::mem::take(&mut ready.reads);
            if let Some(observer) = &self.observer {
                observer.reads_released(&self.raft, &reads);
            }
            let snapshot_to_install = ready.snapshot_to_install.take();
            let snapshot_due = ready.snapshot_due;
            self.apply(ready);
            if let Some(snapshot) = snapshot_to_install {
                self.install_snapshot(snapshot)?;
            }
            if snapshot_due {
                self.start_snapshot();
            }
            self.on_reads_ready(reads);
        }
    }

    /// Snapshots the state machine (an O(1) clone of its persistent maps) and encodes and
    /// writes it on a blocking task, so the loop goes on applying meanwhile.
    fn start_snapshot(&mut self) {
        if self.snapshot_task.is_some() {
            return;
        }
        let image = self.machine.snapshot();
        let meta = match self.raft.snapshot_meta(self.machine.applied_index()) {
            Ok(meta) => meta,
            Err(error) => {
                tracing::warn!(%error, "cannot describe a snapshot now");
                return;
            }
        };
        let writer = self.store.snapshot_writer();
        let (sender, receiver) = oneshot::channel();
        spawn_off_loop(move || {
            let snapshot = Snapshot { meta, data: Bytes::from(image.encode()) };
            let _ = sender.send(writer(&snapshot).map(|()| snapshot));
        });
        self.snapshot_task = Some(receiver);
    }

    /// The snapshot task finished: the engine and the store compact the log behind it.
    fn on_snapshot_written(&mut self, written: Result<Snapshot, String>) -> Result<(), NodeError> {
        self.snapshot_task = None;
        let snapshot = written.map_err(|error| NodeError::Storage(format!("writing a snapshot: {error}")))?;
        let index = snapshot.meta.index;
        if let Err(error) = self.raft.on_snapshot_saved(snapshot.clone()) {
            tracing::warn!(%error, index, "the engine refused the snapshot just written");
            return Ok(());
        }
        let first_kept_index = self.raft.log().first_index();
        self.store.snapshot_saved(&snapshot.meta, first_kept_index).map_err(NodeError::Storage)?;
        self.metrics.record_snapshot_saved(snapshot.data.len());
        tracing::info!(index, bytes = snapshot.data.len(), first_kept_index, "snapshot saved, log compacted");
        if let Some(observer) = &self.observer {
            observer.snapshot_saved(&self.raft, &snapshot, first_kept_index - 1);
        }
        Ok(())
    }

    /// A snapshot from the leader: decoded and checked first (data that does not decode is
    /// refused, and the leader sends it again), made durable, then the state machine is
    /// replaced. Writes proposed here at indexes the snapshot covers are submitted again:
    /// their sessions make a write that did apply answer with its first reply.
    fn install_snapshot(&mut self, snapshot: Snapshot) -> Result<(), NodeError> {
        let index = snapshot.meta.index;
        let machine = match crate::state::Snapshot::decode(&snapshot.data)
            .map_err(|error| error.to_string())
            .and_then(|image| StateMachine::restore(image).map_err(|error| error.to_string()))
        {
            Ok(machine) => machine,
            Err(error) => {
                tracing::warn!(%error, index, "refused a snapshot from the leader");
                let _ = self.raft.on_snapshot_rejected(index);
                return Ok(());
            }
        };
        let remove_older = self.snapshot_task.is_none();
        self.store.install_snapshot(&snapshot, remove_older).map_err(NodeError::Storage)?;
        self.machine = machine;
        self.raft.on_snapshot_installed(index).expect("installing the snapshot the engine handed out");
        self.metrics.record_snapshot_installed(snapshot.data.len());
        tracing::info!(index, bytes = snapshot.data.len(), "snapshot from the leader installed");
        if let Some(observer) = &self.observer {
            observer.snapshot_installed(&self.raft, &snapshot);
        }
        let covered: Vec<Index> = self.pending.proposed_writes.range(..=index).map(|(&index, _)| index).collect();
        for covered_index in covered {
            if let Some((_, write)) = self.pending.proposed_writes.remove(&covered_index) {
                self.pending.waiting_writes.push_back(write);
            }
        }
        self.serve_applied_reads();
        Ok(())
    }

    /// Every Raft message leaves through here, whichever `Ready` field carried it, so the
    /// observer checks each against what this node has made durable by now.
    fn send_raft(&self, messages: Vec<engine::Message>) {
        for message in messages {
            if let Some(observer) = &self.observer {
                observer.sending(&self.raft, &message);
            }
            self.peers.send(message.to, PeerMessage::Raft(message));
        }
    }

    fn apply(&mut self, ready: Ready) {
        let Some(last_index) = ready.entries_to_apply.last().map(|entry| entry.index) else { return };
        if let Some(observer) = &self.observer {
            observer.applied(&self.raft, &ready.entries_to_apply);
        }
        for entry in ready.entries_to_apply {
            self.apply_entry(entry);
        }
        self.raft.on_applied(last_index).expect("applied what the engine handed out");
    }

    /// Applies one committed entry and answers the requests it settles. A request proposed at
    /// this index in another term lost its place in the log: it was not applied, so it is
    /// submitted again.
    fn apply_entry(&mut self, entry: Entry) {
        let Entry { index, term, kind } = entry;
        let reply = match &kind {
            EntryKind::Normal(data) if !data.is_empty() => Some(self.machine.apply_encoded(index, data)),
            _ => {
                self.machine.apply_empty(index);
                None
            }
        };
        if let Some((proposed_term, write)) = self.pending.proposed_writes.remove(&index) {
            match reply {
                Some(reply) if proposed_term == term => self.answer_write(write, Ok(reply)),
                _ => self.pending.waiting_writes.push_back(write),
            }
        }
    }

    /// Periodic upkeep: re-send forwards whose leader changed or went quiet, and answer every
    /// request whose deadline passed.
    fn sweep(&mut self, now_ms: u64) {
        self.pending.take_stale_forwards(self.raft.leader_id(), now_ms, self.config.forward_patience_ms);
        let (writes, reads) = self.pending.take_expired(now_ms);
        let timeout_ms = self.config.request_timeout_ms;
        for write in writes {
            let error = if write.maybe_applied {
                WriteError::OutcomeUnknown {
                    reason: format!("no answer within {timeout_ms} ms: the write may or may not have been applied"),
                }
            } else {
                WriteError::NotApplied {
                    reason: format!("no leader within {timeout_ms} ms: the write was not applied"),
                }
            };
            self.answer_write(write, Err(error));
        }
        for read in reads {
            let reason = format!("no leader answered within {timeout_ms} ms");
            self.answer_read(read, Err(ReadError::Unavailable { reason }));
        }
    }

    fn answer_write(&self, write: PendingWrite, outcome: Result<Reply, WriteError>) {
        write.responder.answer(outcome, &self.peers, ForwardedOutcome::Write);
    }

    fn answer_read(&self, read: PendingRead, outcome: Result<Reply, ReadError>) {
        read.responder.answer(outcome, &self.peers, ForwardedOutcome::Read);
    }

    /// Answers everything in flight: writes that may have reached a log get "outcome unknown".
    fn fail_everything(&mut self, reason: &str) {
        self.fail_admins(reason);
        let far_future_ms = u64::MAX;
        let (writes, reads) = self.pending.take_expired(far_future_ms);
        for write in writes {
            let reason = reason.to_string();
            let error = if write.maybe_applied {
                WriteError::OutcomeUnknown { reason }
            } else {
                WriteError::NotApplied { reason }
            };
            self.answer_write(write, Err(error));
        }
        for read in reads {
            self.answer_read(read, Err(ReadError::Unavailable { reason: reason.to_string() }));
        }
    }

    pub(crate) fn current_status(&self) -> NodeStatus {
        let log = self.raft.log();
        let metrics = self.metrics.snapshot();
        NodeStatus {
            id: self.raft.id(),
            role: self.raft.role(),
            term: self.raft.term(),
            leader_id: self.raft.leader_id(),
            commit_index: self.raft.commit_index(),
            applied_index: log.applied_index(),
            last_log_index: log.last_index(),
            log_entries: log.entries().len() as u64,
            voters: self.raft.membership().voters.iter().copied().collect(),
            snapshot_index: log.snapshot_index(),
            snapshots_saved: metrics.snapshots_saved,
            snapshots_installed: metrics.snapshots_installed,
            membership: self.membership_status(),
        }
    }

    fn publish_status(&self) {
        let status = self.current_status();
        self.status.send_if_modified(|current| {
            if (current.role, current.term, current.leader_id) != (status.role, status.term, status.leader_id) {
                tracing::info!(role = ?status.role, term = status.term, leader = ?status.leader_id, "raft state changed");
            }
            let changed = *current != status;
            *current = status;
            changed
        });
    }
}
