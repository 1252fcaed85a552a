//! A node's durable storage in the test cluster: what survives a crash.

use crate::{Entry, HardState, Index, PersistedState};

/// The log and hard state a node has made durable. Writes follow the [`crate::Ready`]
/// contract: a batch of entries replaces everything stored from its first index on.
#[derive(Clone, Debug, Default)]
pub struct MemoryLog {
    pub hard_state: HardState,
    pub entries: Vec<Entry>,
}

impl MemoryLog {
    pub fn from_persisted(persisted: &PersistedState) -> Self {
        MemoryLog { hard_state: persisted.hard_state, entries: persisted.entries.clone() }
    }

    pub fn write(&mut self, hard_state: Option<HardState>, entries: &[Entry]) {
        if let Some(first) = entries.first() {
            self.entries.truncate((first.index - 1) as usize);
            self.entries.extend_from_slice(entries);
        }
        if let Some(hard_state) = hard_state {
            self.hard_state = hard_state;
        }
    }

    /// Whether the durable log holds the entry `(index, term)`.
    pub fn holds(&self, index: Index, term: crate::Term) -> bool {
        index >= 1 && self.entries.get((index - 1) as usize).is_some_and(|entry| entry.term == term)
    }

    pub fn to_persisted(&self) -> PersistedState {
        PersistedState { hard_state: self.hard_state, entries: self.entries.clone(), applied_index: 0 }
    }
}
