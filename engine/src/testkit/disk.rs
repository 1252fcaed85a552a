//! A node's durable storage in the test cluster: what survives a crash.

use crate::{Entry, HardState, Index, PersistedState, Snapshot, Term};

/// The snapshot, log and hard state a node has made durable. Writes follow the
/// [`crate::Ready`] contract: a batch of entries replaces everything stored from its first
/// index on. The log may start after index 1 once a snapshot covers what came before.
#[derive(Clone, Debug, Default)]
pub struct MemoryLog {
    pub hard_state: HardState,
    pub snapshot: Option<Snapshot>,
    pub entries: Vec<Entry>,
}

impl MemoryLog {
    pub fn from_persisted(persisted: &PersistedState) -> Self {
        MemoryLog {
            hard_state: persisted.hard_state,
            snapshot: persisted.snapshot.clone(),
            entries: persisted.entries.clone(),
        }
    }

    pub fn write(&mut self, hard_state: Option<HardState>, entries: &[Entry]) {
        if let Some(first) = entries.first() {
            self.entries.retain(|entry| entry.index < first.index);
            self.entries.extend_from_slice(entries);
        }
        if let Some(hard_state) = hard_state {
            self.hard_state = hard_state;
        }
    }

    /// The last index the disk covers, by entries or by the snapshot.
    pub fn last_index(&self) -> Index {
        let snapshot_index = self.snapshot_index();
        self.entries.last().map_or(snapshot_index, |entry| entry.index).max(snapshot_index)
    }

    pub fn snapshot_index(&self) -> Index {
        self.snapshot.as_ref().map_or(0, |snapshot| snapshot.meta.index)
    }

    /// Whether the durable state holds the entry `(index, term)`: in the log, or covered by
    /// the snapshot (which holds only committed entries, so whatever was committed there).
    pub fn holds(&self, index: Index, term: Term) -> bool {
        if index >= 1 && index <= self.snapshot_index() {
            return true;
        }
        self.entries.iter().any(|entry| entry.index == index && entry.term == term)
    }

    /// A snapshot of this node's own state machine was saved; entries up to `compact_to` go.
    pub fn save_snapshot(&mut self, snapshot: Snapshot, compact_to: Index) {
        self.snapshot = Some(snapshot);
        self.entries.retain(|entry| entry.index > compact_to);
    }

    /// A snapshot from the leader was installed: the entries after it stay if the log held its
    /// last entry, as in the engine.
    pub fn install_snapshot(&mut self, snapshot: Snapshot) {
        let meta = &snapshot.meta;
        let held = self.entries.iter().any(|entry| entry.index == meta.index && entry.term == meta.term);
        if held {
            self.entries.retain(|entry| entry.index > meta.index);
        } else {
            self.entries.clear();
        }
        self.snapshot = Some(snapshot);
    }

    pub fn to_persisted(&self) -> PersistedState {
        PersistedState {
            hard_state: self.hard_state,
            snapshot: self.snapshot.clone(),
            entries: self.entries.clone(),
            applied_index: self.snapshot_index(),
        }
    }
}
