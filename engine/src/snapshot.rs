//! Snapshots and log compaction (Raft §7).
//!
//! **Taking one.** Once enough entries (or bytes) were applied since the latest snapshot, a
//! [`crate::Ready`] carries `snapshot_due`. The driver snapshots its state machine at any
//! applied index, describes it with [`Raft::snapshot_meta`], saves it off the apply path,
//! and reports it with [`Raft::on_snapshot_saved`]. The engine then drops the log before
//! the snapshot, less `snapshot_trailing_entries` kept for followers slightly behind.
//!
//! **Sending one.** A leader that no longer holds a follower's next entry sends the latest
//! snapshot in chunks of `snapshot_chunk_bytes`, at most `snapshot_inflight_chunks` of them
//! unacknowledged. The follower answers each chunk with how many bytes it holds, so a lost
//! chunk is resent from there and a follower that restarted (and lost its partial copy)
//! starts over. When a heartbeat interval passes with no progress, the leader resends from
//! the follower's last answer.
//!
//! **Installing one.** A follower that has every chunk hands the snapshot to its driver in
//! `Ready::snapshot_to_install`. Until the driver reports [`Raft::on_snapshot_installed`]
//! (the snapshot durable, the state machine restored), the follower ignores appends and
//! applies nothing, so the state machine it replaces is never ahead of the snapshot. Then its
//! log keeps the entries after the snapshot if it held the snapshot's last entry (they match
//! the leader's), and is emptied otherwise; the membership is the snapshot's unless a later
//! configuration entry stayed in the log; and it acknowledges the snapshot's index.

use bytes::Bytes;

use crate::config::Config;
use crate::error::SnapshotError;
use crate::message::{AppendOutcome, MessageBody};
use crate::progress::{Progress, ReplicationState};
use crate::raft::{Core, Raft};
use crate::types::{Entry, EntryKind, Index, Membership, NodeId, Snapshot, SnapshotMeta};

/// A node's snapshot bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct SnapshotState {
    /// The latest snapshot saved, installed or restored: what a leader sends.
    pub(crate) latest: Option<Snapshot>,
    /// Entries and bytes handed out to apply since the latest snapshot.
    entries_since: u64,
    bytes_since: u64,
    /// `snapshot_due` was handed out and no snapshot was saved since.
    requested: bool,
    /// A snapshot from the leader, partly received.
    incoming: Option<Incoming>,
    /// A complete snapshot from the leader, not yet handed to the driver.
    to_install: Option<Snapshot>,
    /// Handed to the driver, not yet reported installed.
    installing: Option<Snapshot>,
}

#[derive(Debug)]
struct Incoming {
    meta: SnapshotMeta,
    total_bytes: u64,
    received: Vec<u8>,
}

impl SnapshotState {
    pub(crate) fn new(latest: Option<Snapshot>) -> Self {
        SnapshotState { latest, ..SnapshotState::default() }
    }

    pub(crate) fn is_installing(&self) -> bool {
        self.installing.is_some() || self.to_install.is_some()
    }

    /// Counts entries handed out to apply; says once per snapshot when one is due.
    pub(crate) fn take_due(&mut self, applied: &[Entry], config: &Config) -> bool {
        self.entries_since += applied.len() as u64;
        self.bytes_since += applied.iter().map(|entry| entry.size_bytes() as u64).sum::<u64>();
        let due = self.entries_since >= config.snapshot_entries_threshold
            || self.bytes_since >= config.snapshot_bytes_threshold;
        if due && !self.requested {
            self.requested = true;
            return true;
        }
        false
    }

    pub(crate) fn take_to_install(&mut self) -> Option<Snapshot> {
        let snapshot = self.to_install.take()?;
        self.installing = Some(snapshot.clone());
        Some(snapshot)
    }

    fn reset_counters(&mut self) {
        self.entries_since = 0;
        self.bytes_since = 0;
        self.requested = false;
    }
}

impl Raft {
    /// Describes a snapshot of the state machine taken at `index`, which must be applied and
    /// not compacted away.
    pub fn snapshot_meta(&self, index: Index) -> Result<SnapshotMeta, SnapshotError> {
        let log = &self.core.log;
        if index > log.applied_index() {
            return Err(SnapshotError::NotApplied { index, applied: log.applied_index() });
        }
        let term = log.term(index).ok_or(SnapshotError::Compacted { index, first_index: log.first_index() })?;
        Ok(SnapshotMeta { index, term, membership: self.core.membership_at(index) })
    }

    /// The driver saved `snapshot` durably (taken after `snapshot_due`, or whenever it
    /// chose). It becomes the snapshot sent to followers, and the log before it is dropped,
    /// less the trailing entries. A snapshot older than the latest is ignored.
    pub fn on_snapshot_saved(&mut self, snapshot: Snapshot) -> Result<(), SnapshotError> {
        let index = snapshot.meta.index;
        if index <= self.core.log.snapshot_index() {
            return Ok(());
        }
        let expected = self.snapshot_meta(index)?;
        if expected != snapshot.meta {
            return Err(SnapshotError::WrongMeta { index, reason: "term or membership differs" });
        }
        let core = &mut self.core;
        core.log.set_base(index, snapshot.meta.term);
        core.log.compact_to(index.saturating_sub(core.config.snapshot_trailing_entries));
        core.snapshots.latest = Some(snapshot);
        core.snapshots.reset_counters();
        self.check_invariants_if_debug();
        Ok(())
    }

    /// The driver made the snapshot from `Ready::snapshot_to_install` durable and restored
    /// its state machine from it.
    pub fn on_snapshot_installed(&mut self, index: Index) -> Result<(), SnapshotError> {
        let core = &mut self.core;
        let installing = core.snapshots.installing.take_if(|snapshot| snapshot.meta.index == index);
        let Some(snapshot) = installing else {
            return Err(SnapshotError::NotInstalling { index });
        };
        let meta = &snapshot.meta;
        core.log.install_base(meta.index, meta.term);
        core.snapshots.latest = Some(snapshot.clone());
        core.refresh_membership();
        if let Some(leader) = core.leader_id.filter(|&leader| leader != core.id) {
            let accepted = AppendOutcome::Accepted { match_index: meta.index };
            core.send(leader, core.term, MessageBody::AppendResponse(accepted));
        }
        core.snapshots.reset_counters();
        self.check_invariants_if_debug();
        Ok(())
    }

    /// The driver could not install the snapshot from `Ready::snapshot_to_install` (its data
    /// does not decode): it is dropped, and the leader's next probe starts the transfer over.
    pub fn on_snapshot_rejected(&mut self, index: Index) -> Result<(), SnapshotError> {
        let snapshots = &mut self.core.snapshots;
        if snapshots.installing.take_if(|snapshot| snapshot.meta.index == index).is_none() {
            return Err(SnapshotError::NotInstalling { index });
        }
        Ok(())
    }

    /// A follower's half: one chunk of the leader's snapshot.
    pub(crate) fn on_snapshot_chunk(
        &mut self,
        from: NodeId,
        meta: SnapshotMeta,
        offset: u64,
        total_bytes: u64,
        data: Bytes,
    ) {
        let core = &mut self.core;
        if core.snapshots.is_installing() {
            return; // The leader asks again once it sees no progress.
        }
        let commit_index = core.log.commit_index();
        if meta.index <= commit_index {
            // We hold all it covers already (an earlier install, or entries): say how far.
            core.snapshots.incoming = None;
            let accepted = AppendOutcome::Accepted { match_index: commit_index };
            core.send(from, core.term, MessageBody::AppendResponse(accepted));
            return;
        }
        let same = core
            .snapshots
            .incoming
            .as_ref()
            .is_some_and(|incoming| incoming.meta == meta && incoming.total_bytes == total_bytes);
        if !same {
            core.snapshots.incoming = None;
            if offset == 0 {
                core.snapshots.incoming = Some(Incoming { meta: meta.clone(), total_bytes, received: Vec::new() });
            }
        }
        let held = core.snapshots.incoming.as_ref().map_or(0, |incoming| incoming.received.len() as u64);
        let Some(incoming) = core.snapshots.incoming.as_mut().filter(|_| offset == held) else {
            // Out of order, or of a snapshot we know nothing of: tell the leader where we are.
            let response = MessageBody::SnapshotChunkResponse { snapshot_index: meta.index, next_offset: held };
            core.send(from, core.term, response);
            return;
        };
        incoming.received.extend_from_slice(&data);
        let next_offset = incoming.received.len() as u64;
        if next_offset == incoming.total_bytes {
            let incoming = core.snapshots.incoming.take().expect("checked above");
            core.snapshots.to_install = Some(Snapshot { meta: incoming.meta, data: Bytes::from(incoming.received) });
        }
        core.send(from, core.term, MessageBody::SnapshotChunkResponse { snapshot_index: meta.index, next_offset });
    }

    /// A leader's half: a follower said how much of a snapshot it holds.
    pub(crate) fn on_snapshot_chunk_response(&mut self, from: NodeId, snapshot_index: Index, next_offset: u64) {
        let crate::raft::RoleState::Leader(leader) = &mut self.role else { return };
        if let Some(progress) = leader.progress.get_mut(&from) {
            progress.last_active_ms = self.core.now_ms;
            progress.on_snapshot_response(snapshot_index, next_offset);
        }
    }
}

impl Core {
    /// The voting membership in force at `index`: the latest configuration entry at or before
    /// it, or, if the log holds none, the latest snapshot's (which covers everything before).
    pub(crate) fn membership_at(&self, index: Index) -> Membership {
        let held = self.log.entries();
        let up_to = held.partition_point(|entry| entry.index <= index);
        membership_in(&held[..up_to])
            .map(|(_, membership)| membership)
            .or_else(|| self.snapshots.latest.as_ref().map(|snapshot| snapshot.meta.membership.clone()))
            .unwrap_or_else(|| self.membership.clone())
    }
}

/// The latest configuration entry among `entries`, with its index.
pub(crate) fn membership_in(entries: &[Entry]) -> Option<(Index, Membership)> {
    entries.iter().rev().find_map(|entry| match &entry.kind {
        EntryKind::Configuration(membership) => Some((entry.index, membership.clone())),
        _ => None,
    })
}

/// Sends a follower the chunks of its snapshot that its window allows. Returns whether any
/// left. Starts a transfer if the follower's next entry was compacted away.
pub(crate) fn send_snapshot_chunks(core: &mut Core, follower: NodeId, progress: &mut Progress) -> bool {
    if !matches!(progress.state, ReplicationState::Snapshot(_)) {
        let Some(latest) = core.snapshots.latest.clone() else {
            return false; // Nothing is compacted without a snapshot: cannot happen.
        };
        progress.start_snapshot(latest);
    }
    let ReplicationState::Snapshot(transfer) = &mut progress.state else { unreachable!("started above") };
    let total_bytes = transfer.total_bytes();
    let chunk_bytes = core.config.snapshot_chunk_bytes as u64;
    let window_bytes = chunk_bytes.saturating_mul(core.config.snapshot_inflight_chunks as u64);
    let mut sent_any = false;
    while transfer.sent_offset < total_bytes && transfer.sent_offset - transfer.acked_offset < window_bytes {
        let start = transfer.sent_offset;
        let end = total_bytes.min(start + chunk_bytes);
        let data = transfer.snapshot.data.slice(start as usize..end as usize);
        let meta = transfer.snapshot.meta.clone();
        core.send(follower, core.term, MessageBody::SnapshotChunk { meta, offset: start, total_bytes, data });
        transfer.sent_offset = end;
        sent_any = true;
    }
    if transfer.probe_wanted && transfer.sent_offset == total_bytes {
        transfer.probe_wanted = false;
        let meta = transfer.snapshot.meta.clone();
        let probe = MessageBody::SnapshotChunk { meta, offset: total_bytes, total_bytes, data: Bytes::new() };
        core.send(follower, core.term, probe);
        sent_any = true;
    }
    sent_any
}
