//! The engine's output: every effect the driver must carry out, as data.

use serde::{Deserialize, Serialize};

use crate::message::Message;
use crate::read::ReadState;
use crate::types::{Entry, HardState, Snapshot};

/// A batch of work, taken with [`crate::Raft::ready`]. The field names carry the ordering rule:
///
/// 1. `messages_now` may leave at once. They are a leader's appends and heartbeats (which do not
///    depend on the leader's own disk, so its write runs in parallel with replication) and
///    pre-vote traffic (which promises nothing).
/// 2. `hard_state` and `entries_to_persist` must be made durable, in Ready order. Entries replace
///    whatever was stored from the first one's index on (a follower truncating a conflicting
///    suffix). Write entries before the hard state, so a durable commit index never points past
///    the durable log. Then report with [`crate::Raft::on_persisted`]. A hard state whose term
///    and vote did not change may be written lazily (its commit index promises nothing: a
///    restarted node learns it again), as long as it is not written ahead of the entries.
/// 3. `messages_after_persist` may leave only once this Ready's persistence, and every earlier
///    Ready's, is durable: they are votes and acknowledgements that promise what was written.
/// 4. `entries_to_apply` are committed and durable here; apply them in order and report with
///    [`crate::Raft::on_applied`]. Applying may lag behind everything else.
/// 5. `reads` may be answered once the state machine has applied up to each one's index.
/// 6. `snapshot_to_install` (from the leader) must be made durable and the state machine
///    restored from it, then reported with [`crate::Raft::on_snapshot_installed`]. Until then
///    the engine hands out nothing more to apply.
/// 7. `snapshot_due` asks for a snapshot of the state machine at its applied index, whenever
///    convenient (off the apply path): take it with [`crate::Raft::snapshot_meta`], save it,
///    and report it with [`crate::Raft::on_snapshot_saved`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ready {
    pub messages_now: Vec<Message>,
    pub hard_state: Option<HardState>,
    pub entries_to_persist: Vec<Entry>,
    pub messages_after_persist: Vec<Message>,
    pub entries_to_apply: Vec<Entry>,
    /// Reads that became safe: answer each once the state machine has applied its index.
    pub reads: Vec<ReadState>,
    pub snapshot_to_install: Option<Snapshot>,
    /// Set once per snapshot: the applied log passed a snapshot threshold.
    pub snapshot_due: bool,
}

impl Ready {
    pub fn is_empty(&self) -> bool {
        self.messages_now.is_empty()
            && self.hard_state.is_none()
            && self.entries_to_persist.is_empty()
            && self.messages_after_persist.is_empty()
            && self.entries_to_apply.is_empty()
            && self.reads.is_empty()
            && self.snapshot_to_install.is_none()
            && !self.snapshot_due
    }

    /// Whether the driver has anything to write before `messages_after_persist` may leave.
    pub fn needs_persist(&self) -> bool {
        self.hard_state.is_some() || !self.entries_to_persist.is_empty()
    }

    /// The last entry handed over to persist, as the `(index, term)` to report once it is durable.
    pub fn persisted_position(&self) -> Option<(crate::Index, crate::Term)> {
        self.entries_to_persist.last().map(|entry| (entry.index, entry.term))
    }
}
