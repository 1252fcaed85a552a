//! A cluster of engines on one thread: a network the test delivers by hand, disks that lose
//! unpersisted writes on a crash, and the oracles checked after every operation.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use crate::testkit::oracles::{check_log_matching, check_membership_after_install, Oracles, Violation};
use crate::testkit::{fnv1a, MemoryLog, FNV_OFFSET};
use crate::{
    CampaignError, ConfChange, ConfChangeError, Config, Entry, HardState, Index, Membership, Message, NodeId,
    PersistedState, ProposeError, Raft, ReadError, ReadId, ReadState, Ready, Role, Snapshot, Term, TransferError,
};

/// One node's persistence work handed out by a Ready but not yet durable.
#[derive(Debug)]
struct PendingWrite {
    hard_state: Option<HardState>,
    entries: Vec<Entry>,
    messages_after_persist: Vec<Message>,
}

#[derive(Debug)]
struct Node {
    /// `None` while crashed.
    raft: Option<Raft>,
    disk: MemoryLog,
    pending_writes: Vec<PendingWrite>,
    /// The in-memory state machine: every entry applied, from index 1 (restored from a
    /// snapshot, whose data is this list, encoded).
    applied: Vec<Entry>,
    incarnation: u64,
}

/// The test's whole world.
#[derive(Debug)]
pub struct Cluster {
    config: Config,
    seed: u64,
    now_ms: u64,
    nodes: BTreeMap<NodeId, Node>,
    /// Messages sent and not yet delivered or dropped, oldest first.
    in_flight: Vec<Message>,
    /// Directed links that lose every message.
    cut_links: BTreeSet<(NodeId, NodeId)>,
    oracles: Oracles,
    trace_hash: u64,
    delivered_count: u64,
    /// Every read released so far, with the node that released it, in order.
    reads_released: Vec<(NodeId, ReadState)>,
    /// Snapshots installed from a leader, on any node.
    snapshots_installed: usize,
    /// Membership changes and leadership transfers a leader accepted.
    conf_changes_accepted: usize,
    transfers_accepted: usize,
}

/// A one-line summary of a node, as scenario scripts print it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    pub id: NodeId,
    pub role: Option<Role>,
    pub term: Term,
    pub leader_id: Option<NodeId>,
    pub last_index: Index,
    pub last_term: Term,
    pub commit_index: Index,
    pub applied_index: Index,
}

impl Cluster {
    /// Bootstraps `ids` as the voters of a new cluster.
    pub fn new(ids: &[NodeId], config: Config, seed: u64) -> Self {
        Self::with_spares(ids, &[], config, seed)
    }

    /// Bootstraps `ids` as the voters of a new cluster, and starts `spares` with empty disks,
    /// members of nothing, ready to be added (as a node started to join a cluster would be).
    pub fn with_spares(ids: &[NodeId], spares: &[NodeId], config: Config, seed: u64) -> Self {
        let bootstrap = PersistedState::bootstrap(Membership::new(ids.iter().copied()));
        let mut cluster = Cluster {
            config,
            seed,
            now_ms: 0,
            nodes: BTreeMap::new(),
            in_flight: Vec::new(),
            cut_links: BTreeSet::new(),
            oracles: Oracles::default(),
            trace_hash: FNV_OFFSET,
            delivered_count: 0,
            reads_released: Vec::new(),
            snapshots_installed: 0,
            conf_changes_accepted: 0,
            transfers_accepted: 0,
        };
        let voters = ids.iter().map(|&id| (id, MemoryLog::from_persisted(&bootstrap)));
        let empty = spares.iter().map(|&id| (id, MemoryLog::default()));
        for (id, disk) in voters.chain(empty) {
            let node = Node { raft: None, disk, pending_writes: Vec::new(), applied: Vec::new(), incarnation: 0 };
            cluster.nodes.insert(id, node);
            cluster.start(id);
        }
        cluster
    }

    fn start(&mut self, id: NodeId) {
        let node = self.nodes.get_mut(&id).expect("known node");
        let seed = self.seed ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ node.incarnation.rotate_left(32);
        let raft = Raft::new(id, self.config.clone(), node.disk.to_persisted(), seed, self.now_ms)
            .expect("a durable state the engine wrote is valid");
        self.oracles.observe_restart(id, raft.commit_index());
        upheld(self.oracles.observe_durable(id, node.disk.hard_state));
        node.raft = Some(raft);
        node.applied = node.disk.snapshot.as_ref().map(decode_state_machine).unwrap_or_default();
        let restored = node.applied.clone();
        upheld(self.oracles.observe_snapshot_restored(id, &restored));
    }

    // ----- inspection -----

    pub fn ids(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    pub fn node(&self, id: NodeId) -> Option<&Raft> {
        self.nodes.get(&id).and_then(|node| node.raft.as_ref())
    }

    pub fn disk(&self, id: NodeId) -> &MemoryLog {
        &self.nodes[&id].disk
    }

    pub fn applied(&self, id: NodeId) -> &[Entry] {
        &self.nodes[&id].applied
    }

    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    pub fn in_flight(&self) -> &[Message] {
        &self.in_flight
    }

    /// Messages delivered since the cluster started.
    pub fn delivered_count(&self) -> u64 {
        self.delivered_count
    }

    /// A fingerprint of every Ready every node produced, in order.
    pub fn trace_hash(&self) -> u64 {
        self.trace_hash
    }

    /// The live leader of the highest term, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.nodes
            .values()
            .filter_map(|node| node.raft.as_ref())
            .filter(|raft| raft.role() == Role::Leader)
            .max_by_key(|raft| raft.term())
            .map(Raft::id)
    }

    pub fn status(&self, id: NodeId) -> NodeStatus {
        let node = &self.nodes[&id];
        match &node.raft {
            Some(raft) => NodeStatus {
                id,
                role: Some(raft.role()),
                term: raft.term(),
                leader_id: raft.leader_id(),
                last_index: raft.log().last_index(),
                last_term: raft.log().last_term(),
                commit_index: raft.commit_index(),
                applied_index: raft.log().applied_index(),
            },
            None => NodeStatus {
                id,
                role: None,
                term: node.disk.hard_state.term,
                leader_id: None,
                last_index: node.disk.last_index(),
                last_term: node.disk.entries.last().map_or(0, |entry| entry.term),
                commit_index: node.disk.hard_state.commit_index,
                applied_index: 0,
            },
        }
    }

    // ----- inputs -----

    /// Moves the shared clock forward and ticks every live node.
    pub fn advance(&mut self, elapsed_ms: u64) {
        self.now_ms += elapsed_ms;
        let now_ms = self.now_ms;
        for node in self.nodes.values_mut() {
            if let Some(raft) = node.raft.as_mut() {
                raft.tick(now_ms);
            }
        }
        self.check_oracles();
    }

    pub fn campaign(&mut self, id: NodeId) -> Result<(), CampaignError> {
        let result = self.raft_mut(id).campaign();
        self.check_oracles();
        result
    }

    pub fn propose(&mut self, id: NodeId, command: Bytes) -> Result<Index, ProposeError> {
        let result = self.raft_mut(id).propose(command);
        self.check_oracles();
        result
    }

    /// Asks node `id` to change the membership.
    pub fn conf_change(&mut self, id: NodeId, change: ConfChange) -> Result<Index, ConfChangeError> {
        let result = self.raft_mut(id).propose_conf_change(change);
        self.conf_changes_accepted += usize::from(result.is_ok());
        self.check_oracles();
        result
    }

    /// Asks node `id` to hand leadership to `to`.
    pub fn transfer_leadership(&mut self, id: NodeId, to: NodeId) -> Result<(), TransferError> {
        let result = self.raft_mut(id).transfer_leadership(to);
        self.transfers_accepted += usize::from(result.is_ok());
        self.check_oracles();
        result
    }

    /// Asks node `id` for a read index (or, with `lease`, a lease read) named `read_id`. The
    /// oracles remember how far the cluster had committed: the read must not see less.
    pub fn read(&mut self, id: NodeId, read_id: ReadId, lease: bool) -> Result<(), ReadError> {
        let raft = self.nodes.get_mut(&id).and_then(|node| node.raft.as_mut()).expect("live node");
        let result = if lease { raft.lease_read(read_id) } else { raft.read_index(read_id) };
        if result.is_ok() {
            self.oracles.observe_read_requested(raft, read_id, lease);
        }
        self.check_oracles();
        result
    }

    /// How many membership changes and leadership transfers leaders accepted so far.
    pub fn changes_accepted(&self) -> (usize, usize) {
        (self.conf_changes_accepted, self.transfers_accepted)
    }

    /// How many snapshots followers installed from a leader so far.
    pub fn snapshots_installed(&self) -> usize {
        self.snapshots_installed
    }

    /// Every read released so far, with the node that released it, in order.
    pub fn reads_released(&self) -> &[(NodeId, ReadState)] {
        &self.reads_released
    }

    /// Node `id`'s engine, for tests that call it directly (the oracles do not see it).
    pub fn node_mut(&mut self, id: NodeId) -> &mut Raft {
        self.raft_mut(id)
    }

    fn raft_mut(&mut self, id: NodeId) -> &mut Raft {
        self.nodes.get_mut(&id).and_then(|node| node.raft.as_mut()).unwrap_or_else(|| panic!("node {id} is down"))
    }

    /// Takes a node's Ready: its immediate messages leave, and its writes are queued. With
    /// `persist`, every queued write of the node then becomes durable, its acknowledgements
    /// leave, and committed entries are applied. Returns whether the Ready held anything.
    pub fn process_ready(&mut self, id: NodeId, persist: bool) -> bool {
        let Some(raft) = self.nodes.get_mut(&id).and_then(|node| node.raft.as_mut()) else {
            return false;
        };
        let ready = raft.ready();
        let had_work = !ready.is_empty();
        self.trace_hash = fnv1a(self.trace_hash, format!("{id}:{ready:?}").as_bytes());
        let Ready {
            messages_now,
            hard_state,
            entries_to_persist,
            messages_after_persist,
            entries_to_apply,
            reads,
            snapshot_to_install,
            snapshot_due,
        } = ready;
        let node = self.nodes.get_mut(&id).expect("known node");
        let raft = node.raft.as_ref().expect("live node");
        for read in reads {
            upheld(self.oracles.observe_read_released(raft, read));
            self.reads_released.push((id, read));
        }
        for message in &messages_now {
            upheld(self.oracles.observe_sent(raft, message, &node.disk));
        }
        self.in_flight.extend(messages_now);
        node.pending_writes.push(PendingWrite { hard_state, entries: entries_to_persist, messages_after_persist });
        self.apply(id, entries_to_apply);
        if let Some(snapshot) = snapshot_to_install {
            self.install_snapshot(id, snapshot);
        }
        if snapshot_due {
            self.take_snapshot(id);
        }
        if persist {
            self.persist_pending(id);
        }
        self.check_oracles();
        had_work
    }

    /// Snapshots a node's state machine at once (a real driver does it off the apply path),
    /// saves it and compacts the durable log as far as the engine compacted its own.
    pub fn take_snapshot(&mut self, id: NodeId) {
        let node = self.nodes.get_mut(&id).expect("known node");
        let raft = node.raft.as_mut().expect("live node");
        let applied_index = raft.log().applied_index();
        let meta = raft.snapshot_meta(applied_index).expect("the applied index can be snapshotted");
        let data = Bytes::from(postcard::to_allocvec(&node.applied).expect("entries encode"));
        let snapshot = Snapshot { meta, data };
        raft.on_snapshot_saved(snapshot.clone()).expect("a snapshot of what was applied is accepted");
        let compact_to = raft.log().first_index() - 1;
        node.disk.save_snapshot(snapshot, compact_to);
        self.trace_hash = fnv1a(self.trace_hash, format!("snapshot {id} at {applied_index}").as_bytes());
    }

    /// Installs a snapshot from the leader: what was queued to persist goes first (the
    /// engine handed it out before the snapshot), then the snapshot becomes durable and the
    /// state machine is restored from it.
    fn install_snapshot(&mut self, id: NodeId, snapshot: Snapshot) {
        self.persist_pending(id);
        let index = snapshot.meta.index;
        let membership = snapshot.meta.membership.clone();
        let entries = decode_state_machine(&snapshot);
        upheld(self.oracles.observe_snapshot_restored(id, &entries));
        let node = self.nodes.get_mut(&id).expect("known node");
        node.disk.install_snapshot(snapshot);
        node.applied = entries;
        let raft = node.raft.as_mut().expect("live node");
        raft.on_snapshot_installed(index).expect("installing what was handed out");
        upheld(check_membership_after_install(raft, &membership));
        self.snapshots_installed += 1;
    }

    fn apply(&mut self, id: NodeId, entries: Vec<Entry>) {
        let Some(last) = entries.last().map(|entry| entry.index) else { return };
        upheld(self.oracles.observe_apply(id, &entries));
        let node = self.nodes.get_mut(&id).expect("known node");
        node.applied.extend(entries);
        node.raft.as_mut().expect("live node").on_applied(last).expect("applied what was handed out");
    }

    /// Makes every queued write of a node durable, in order, and releases the messages that
    /// waited for it.
    pub fn persist_pending(&mut self, id: NodeId) {
        let node = self.nodes.get_mut(&id).expect("known node");
        for write in std::mem::take(&mut node.pending_writes) {
            node.disk.write(write.hard_state, &write.entries);
            upheld(self.oracles.observe_durable(id, node.disk.hard_state));
            let raft = node.raft.as_mut().expect("live node");
            if let Some(last) = write.entries.last() {
                raft.on_persisted(last.index, last.term);
            }
            for message in &write.messages_after_persist {
                upheld(self.oracles.observe_sent(raft, message, &node.disk));
            }
            self.in_flight.extend(write.messages_after_persist);
        }
        self.check_oracles();
    }

    /// Delivers, in order, every message in flight that `filter` selects. Messages sent while
    /// delivering wait for the next call. Returns what was delivered (or lost to a cut link).
    pub fn deliver_where(&mut self, filter: impl Fn(&Message) -> bool) -> Vec<Message> {
        let (selected, kept): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.in_flight).into_iter().partition(|m| filter(m));
        self.in_flight = kept;
        selected.into_iter().filter(|message| self.deliver(message.clone())).collect()
    }

    /// Delivers the message at `position` in the in-flight list (out of order, for reordering).
    pub fn deliver_at(&mut self, position: usize) -> bool {
        if position >= self.in_flight.len() {
            return false;
        }
        let message = self.in_flight.remove(position);
        self.deliver(message)
    }

    /// Loses the message at `position`.
    pub fn drop_at(&mut self, position: usize) {
        if position < self.in_flight.len() {
            self.in_flight.remove(position);
        }
    }

    /// Sends the message at `position` a second time.
    pub fn duplicate_at(&mut self, position: usize) {
        if let Some(message) = self.in_flight.get(position).cloned() {
            self.in_flight.push(message);
        }
    }

    /// Loses every message in flight that `filter` selects.
    pub fn drop_where(&mut self, filter: impl Fn(&Message) -> bool) -> usize {
        let before = self.in_flight.len();
        self.in_flight.retain(|message| !filter(message));
        before - self.in_flight.len()
    }

    /// Returns whether the message reached a live node.
    fn deliver(&mut self, message: Message) -> bool {
        if self.cut_links.contains(&(message.from, message.to)) {
            return false;
        }
        let Some(raft) = self.nodes.get_mut(&message.to).and_then(|node| node.raft.as_mut()) else {
            return false;
        };
        self.trace_hash = fnv1a(self.trace_hash, format!("deliver {message:?}").as_bytes());
        self.delivered_count += 1;
        let text = message.to_string();
        self.oracles.observe_received(raft, &message);
        if let Err(error) = raft.step(message) {
            panic!("a correct peer's message was refused: {text}: {error}");
        }
        self.check_oracles();
        true
    }

    /// Steps a message into its addressee directly, without the network or the oracles: for
    /// tests of how a node copes with messages no correct peer would send.
    pub fn step_raw(&mut self, message: Message) -> Result<(), crate::StepError> {
        let to = message.to;
        self.step_raw_into(to, message)
    }

    /// Like [`Cluster::step_raw`], but into node `id` whatever the message's addressee.
    pub fn step_raw_into(&mut self, id: NodeId, message: Message) -> Result<(), crate::StepError> {
        self.raft_mut(id).step(message)
    }

    /// Runs every node to quiescence: ready, persist, deliver, until nothing moves. Time does
    /// not pass. Returns every message delivered, in order.
    pub fn stabilize(&mut self) -> Vec<Message> {
        /// Without time passing, the cluster settles in a few dozen rounds; this many means
        /// the nodes keep each other busy forever (a livelock), which is a bug.
        const ROUNDS_MAX: usize = 10_000;
        let mut delivered = Vec::new();
        for round_number in 0.. {
            if round_number == ROUNDS_MAX {
                let recent: Vec<String> = delivered.iter().rev().take(8).map(|m: &Message| m.to_string()).collect();
                panic!("the cluster did not settle in {ROUNDS_MAX} rounds without time passing; last: {recent:?}");
            }
            let mut busy = false;
            for id in self.ids() {
                busy |= self.process_ready(id, true);
            }
            let round = self.deliver_where(|_| true);
            busy |= !round.is_empty();
            delivered.extend(round);
            if !busy && self.in_flight.is_empty() {
                return delivered;
            }
        }
        unreachable!("the loop returns or panics")
    }

    // ----- faults -----

    /// Splits the cluster: links between different groups lose every message.
    pub fn partition(&mut self, groups: &[Vec<NodeId>]) {
        self.heal();
        for (position, group) in groups.iter().enumerate() {
            for other in groups.iter().skip(position + 1) {
                for &a in group {
                    for &b in other {
                        self.cut_links.insert((a, b));
                        self.cut_links.insert((b, a));
                    }
                }
            }
        }
    }

    /// Cuts one direction of one link.
    pub fn cut_link(&mut self, from: NodeId, to: NodeId) {
        self.cut_links.insert((from, to));
    }

    pub fn heal(&mut self) {
        self.cut_links.clear();
    }

    /// Stops a node. Writes it had not made durable are lost; its state machine is gone.
    pub fn crash(&mut self, id: NodeId) {
        let node = self.nodes.get_mut(&id).expect("known node");
        node.raft = None;
        node.pending_writes.clear();
        node.applied.clear();
        node.incarnation += 1;
    }

    /// Starts a crashed node from its durable state.
    pub fn restart(&mut self, id: NodeId) {
        assert!(self.node(id).is_none(), "node {id} is already running");
        self.start(id);
        self.check_oracles();
    }

    // ----- oracles -----

    /// Checks every cluster-wide safety property; panics on a violation.
    pub fn check_oracles(&mut self) {
        let durable_logs: BTreeMap<NodeId, &MemoryLog> =
            self.nodes.iter().map(|(&id, node)| (id, &node.disk)).collect();
        let live: Vec<&Raft> = self.nodes.values().filter_map(|node| node.raft.as_ref()).collect();
        for raft in &live {
            upheld(self.oracles.observe_node(raft, &durable_logs));
        }
        let logs: Vec<(NodeId, &[Entry])> = live.iter().map(|raft| (raft.id(), raft.log().entries())).collect();
        upheld(check_log_matching(&logs));
    }
}

/// The test state machine's snapshot is the list of entries it applied.
fn decode_state_machine(snapshot: &Snapshot) -> Vec<Entry> {
    postcard::from_bytes(&snapshot.data).expect("a snapshot the testkit wrote decodes")
}

/// Panics with the violation, if there is one: a scenario or property test then fails (and
/// shrinks) at the step that broke the property.
fn upheld(check: Result<(), Violation>) {
    if let Err(violation) = check {
        panic!("{violation}");
    }
}
