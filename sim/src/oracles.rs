//! The cluster oracles of `SCENARIOS.md`, checked throughout a run: every simulated node gets
//! the one [`ClusterObserver`] of its world through its init (`ProcessHooks::observer`) and
//! reports each step to it.
//!
//! The properties themselves are the engine's ([`engine::testkit::Oracles`]: one leader per
//! term, commit and state machine safety, leader completeness, commit on a durable quorum,
//! durable hard state that only moves forward, every message's promise checked against the
//! disk as it leaves, reads confirmed or leased, CheckQuorum contact, log matching), so the
//! in-memory cluster tests and the simulator check the same thing. This module adds what only a world with real disks can check: a restarted node recovers exactly
//! what it had made durable, no more and no less.
//!
//! The observer also folds every event into a hash, so the trace hash of a run covers what
//! the nodes persisted, applied and decided, not only what the clients saw.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use engine::testkit::{
    check_log_matching, check_membership_after_install, fnv1a, MemoryLog, Oracles, Violation, FNV_OFFSET,
};
use engine::{Entry, HardState, Index, Message, NodeId, PersistedState, Raft, ReadId, ReadState, Snapshot};
use kvstore::node::NodeObserver;

/// Log matching compares whole logs, so it runs every this many turns (and at the end).
const LOG_MATCHING_EVERY_TURNS: u64 = 256;

/// Violations kept in full; later ones are only counted.
const VIOLATIONS_KEPT: usize = 10;

#[derive(Debug, Default)]
pub struct ClusterObserver {
    state: Mutex<ObserverState>,
}

#[derive(Debug)]
struct ObserverState {
    oracles: Oracles,
    /// Each node's durable log and hard state, as the node reported making them durable.
    durable: BTreeMap<NodeId, MemoryLog>,
    violations: Vec<String>,
    violation_count: usize,
    turns: u64,
    trace_hash: u64,
    /// The highest term a leader was seen in, and that leader.
    latest_leader: Option<(u64, NodeId)>,
    snapshots_saved: u64,
    snapshots_installed: u64,
}

impl Default for ObserverState {
    fn default() -> Self {
        ObserverState {
            oracles: Oracles::default(),
            durable: BTreeMap::new(),
            violations: Vec::new(),
            violation_count: 0,
            turns: 0,
            trace_hash: FNV_OFFSET,
            latest_leader: None,
            snapshots_saved: 0,
            snapshots_installed: 0,
        }
    }
}

impl ClusterObserver {
    pub fn new() -> ClusterObserver {
        ClusterObserver::default()
    }

    fn lock(&self) -> MutexGuard<'_, ObserverState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs the checks that are too costly for every turn, then returns every violation seen
    /// (the first few in full, then how many more).
    pub fn finish(&self) -> Vec<String> {
        let mut state = self.lock();
        state.check_log_matching();
        let mut violations = state.violations.clone();
        if state.violation_count > violations.len() {
            violations.push(format!("oracles: {} more violations", state.violation_count - violations.len()));
        }
        violations
    }

    /// A fingerprint of everything the nodes reported so far.
    pub fn trace_hash(&self) -> u64 {
        self.lock().trace_hash
    }

    /// How many snapshots the nodes saved of their own, and installed from a leader.
    pub fn snapshot_counts(&self) -> (u64, u64) {
        let state = self.lock();
        (state.snapshots_saved, state.snapshots_installed)
    }

    /// The node most recently seen leading the highest term seen, if any.
    pub fn latest_leader(&self) -> Option<NodeId> {
        self.lock().latest_leader.map(|(_, id)| id)
    }
}

impl ObserverState {
    fn record(&mut self, check: Result<(), Violation>) {
        if let Err(violation) = check {
            self.violation_count += 1;
            if self.violations.len() < VIOLATIONS_KEPT {
                self.violations.push(format!("oracle: {violation}"));
            }
        }
    }

    fn feed(&mut self, words: &[u64]) {
        for word in words {
            self.trace_hash = fnv1a(self.trace_hash, &word.to_le_bytes());
        }
    }

    fn check_log_matching(&mut self) {
        let logs: Vec<(NodeId, &[Entry])> = self.durable.iter().map(|(&id, log)| (id, &log.entries[..])).collect();
        let check = check_log_matching(&logs);
        self.record(check);
    }
}

/// A restarted node must recover exactly the durable state it reported: anything less lost a
/// promise (a vote, an acknowledged entry), anything more was never synced. The exceptions:
/// the commit index, which the store writes lazily (it promises nothing), so a crash may keep
/// a later one than the last synced; and the snapshot, which may be newer than the last one
/// reported (its file was durable before the node said so). Entries are compared after the
/// recovered snapshot, which is where the store hands them out from.
fn check_recovery(id: NodeId, mirror: &MemoryLog, recovered: &PersistedState) -> Result<(), Violation> {
    let recovered_snapshot = recovered.snapshot.as_ref().map_or(0, |snapshot| snapshot.meta.index);
    if recovered_snapshot < mirror.snapshot_index() {
        return Err(format!(
            "recovery: node {id} came back with the snapshot at {recovered_snapshot}, having made {} durable",
            mirror.snapshot_index()
        ));
    }
    let mirror_entries: Vec<Entry> =
        mirror.entries.iter().filter(|entry| entry.index > recovered_snapshot).cloned().collect();
    let mirror = &MemoryLog { hard_state: mirror.hard_state, snapshot: None, entries: mirror_entries };
    let (durable, found) = (mirror.hard_state, recovered.hard_state);
    let same_promises = (found.term, found.voted_for) == (durable.term, durable.voted_for);
    if !same_promises || found.commit_index < durable.commit_index {
        return Err(format!(
            "recovery: node {id} came back with hard state {:?}, but had made {:?} durable",
            recovered.hard_state, mirror.hard_state
        ));
    }
    if recovered.entries != mirror.entries {
        let first_difference = recovered.entries.iter().zip(&mirror.entries).take_while(|(a, b)| a == b).count() + 1;
        return Err(format!(
            "recovery: node {id} came back with {} log entries, having made {} durable; they differ from index {first_difference}",
            recovered.entries.len(),
            mirror.entries.len()
        ));
    }
    Ok(())
}

fn hard_state_words(hard_state: &HardState) -> [u64; 3] {
    [hard_state.term, hard_state.voted_for.unwrap_or(0), hard_state.commit_index]
}

impl NodeObserver for ClusterObserver {
    fn started(&self, raft: &Raft, recovered: &PersistedState) {
        let mut state = self.lock();
        let id = raft.id();
        let check = match state.durable.get(&id) {
            Some(mirror) => check_recovery(id, mirror, recovered),
            None => Ok(()),
        };
        state.record(check);
        state.durable.insert(id, MemoryLog::from_persisted(recovered));
        state.oracles.observe_restart(id, raft.commit_index());
        if let Some(snapshot) = &recovered.snapshot {
            state.oracles.observe_state_machine_at(id, snapshot.meta.index);
        }
        let check = state.oracles.observe_durable(id, recovered.hard_state);
        state.record(check);
        state.feed(&[1, id, recovered.entries.len() as u64]);
        state.feed(&hard_state_words(&recovered.hard_state));
    }

    fn persisted(&self, raft: &Raft, hard_state: Option<HardState>, entries: &[Entry]) {
        let mut state = self.lock();
        let id = raft.id();
        let log = state.durable.entry(id).or_default();
        log.write(hard_state, entries);
        let now = log.hard_state;
        let check = state.oracles.observe_durable(id, now);
        state.record(check);
        let (first, last) = (entries.first().map_or(0, |e| e.index), entries.last().map_or(0, |e| e.index));
        state.feed(&[2, id, first, last]);
        state.feed(&hard_state_words(&now));
    }

    fn sending(&self, raft: &Raft, message: &Message) {
        let mut state = self.lock();
        let state = &mut *state;
        let id = raft.id();
        let check = match state.durable.get(&id) {
            Some(log) => state.oracles.observe_sent(raft, message, log),
            None => Err(format!("node {id} sent a message before it ever started")),
        };
        state.record(check);
    }

    fn receiving(&self, raft: &Raft, message: &Message) {
        self.lock().oracles.observe_received(raft, message);
    }

    fn read_requested(&self, raft: &Raft, read_id: ReadId, lease: bool) {
        self.lock().oracles.observe_read_requested(raft, read_id, lease);
    }

    fn reads_released(&self, raft: &Raft, reads: &[ReadState]) {
        let mut state = self.lock();
        for &read in reads {
            let check = state.oracles.observe_read_released(raft, read);
            state.record(check);
        }
        state.feed(&[7, raft.id(), reads.len() as u64]);
    }

    fn applied(&self, raft: &Raft, entries: &[Entry]) {
        let mut state = self.lock();
        let check = state.oracles.observe_apply(raft.id(), entries);
        state.record(check);
        let last = entries.last().map_or(0, |entry| entry.index);
        state.feed(&[3, raft.id(), last]);
    }

    fn snapshot_saved(&self, raft: &Raft, snapshot: &Snapshot, compacted_to: Index) {
        let mut state = self.lock();
        let id = raft.id();
        state.durable.entry(id).or_default().save_snapshot(snapshot.clone(), compacted_to);
        state.snapshots_saved += 1;
        state.feed(&[5, id, snapshot.meta.index, compacted_to]);
    }

    fn snapshot_installed(&self, raft: &Raft, snapshot: &Snapshot) {
        let mut state = self.lock();
        let id = raft.id();
        state.durable.entry(id).or_default().install_snapshot(snapshot.clone());
        state.oracles.observe_state_machine_at(id, snapshot.meta.index);
        let check = check_membership_after_install(raft, &snapshot.meta.membership);
        state.record(check);
        state.snapshots_installed += 1;
        state.feed(&[6, id, snapshot.meta.index]);
    }

    fn turn_ended(&self, raft: &Raft) {
        let mut state = self.lock();
        let state = &mut *state;
        let check = {
            let durable_logs: BTreeMap<NodeId, &MemoryLog> = state.durable.iter().map(|(&id, log)| (id, log)).collect();
            state.oracles.observe_node(raft, &durable_logs)
        };
        state.record(check);
        state.turns += 1;
        if raft.role() == engine::Role::Leader && state.latest_leader.is_none_or(|(term, _)| raft.term() >= term) {
            state.latest_leader = Some((raft.term(), raft.id()));
        }
        if state.turns % LOG_MATCHING_EVERY_TURNS == 0 {
            state.check_log_matching();
        }
        state.feed(&[4, raft.id(), raft.role() as u64, raft.term(), raft.commit_index()]);
    }
}
