//! The replicated log as one node sees it, with the three frontiers the driver moves:
//! what has been handed out to persist, what is durable, and what has been applied.
//!
//! The log may start after index 1: entries up to the latest snapshot's index can be dropped
//! (compacted). The snapshot's `(index, term)` stays known as the log's *base*, so an append
//! that follows the base still matches.

use crate::types::{Entry, Index, Term};

/// The log plus its bookkeeping. Entries live in memory from `first_index()` on.
///
/// Frontiers, in the order they may lag each other:
/// `applied_index <= apply_handed_out_index <= min(commit_index, persisted_index)`, and
/// `persisted_index < persist_handed_out_from <= last_index + 1`. Everything up to the base
/// (the latest snapshot) is committed, durable and applied.
#[derive(Debug)]
pub struct RaftLog {
    /// `entries[i]` has index `offset + i + 1`.
    entries: Vec<Entry>,
    /// The index before the first entry held; entries up to it were compacted away.
    offset: Index,
    /// The last index and term the latest snapshot covers (`(0, 0)`: no snapshot). Entries
    /// between `offset + 1` and it may still be held, for followers slightly behind.
    base_index: Index,
    base_term: Term,
    commit_index: Index,
    /// Entries up to here are durable on this node's disk.
    persisted_index: Index,
    /// The first entry not yet given to the driver to persist.
    persist_handed_out_from: Index,
    /// Entries up to here have been given to the driver to apply.
    apply_handed_out_index: Index,
    /// The driver has applied entries up to here.
    applied_index: Index,
}

/// What a follower's append did to its log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The index of the last entry the leader sent.
    pub last_new_index: Index,
    /// Set when conflicting entries were dropped from this index on.
    pub truncated_from: Option<Index>,
}

/// Why a follower refused an append that matched its log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConflictsWithCommitted {
    pub index: Index,
}

impl RaftLog {
    /// A log restored from durable entries, all of which are persisted by definition, with no
    /// snapshot.
    pub fn restore(entries: Vec<Entry>, commit_index: Index, applied_index: Index) -> Self {
        Self::restore_after_base(0, 0, entries, commit_index, applied_index)
    }

    /// A log restored from a snapshot covering `(base_index, base_term)` and the durable
    /// entries, which must be contiguous and start at or before `base_index + 1` (checked by
    /// the caller). Everything up to the base counts as committed, durable and applied.
    pub fn restore_after_base(
        base_index: Index,
        base_term: Term,
        entries: Vec<Entry>,
        commit_index: Index,
        applied_index: Index,
    ) -> Self {
        let offset = entries.first().map_or(base_index, |first| first.index - 1);
        let last_index = entries.last().map_or(base_index, |last| last.index).max(base_index);
        let applied_index = applied_index.max(base_index);
        RaftLog {
            entries,
            offset,
            base_index,
            base_term,
            commit_index: commit_index.max(base_index),
            persisted_index: last_index,
            persist_handed_out_from: last_index + 1,
            apply_handed_out_index: applied_index,
            applied_index,
        }
    }

    pub fn last_index(&self) -> Index {
        self.entries.last().map_or(self.base_index.max(self.offset), |entry| entry.index)
    }

    pub fn last_term(&self) -> Term {
        self.entries.last().map_or(self.base_term, |entry| entry.term)
    }

    /// The first index whose entry is held; entries before it were compacted.
    pub fn first_index(&self) -> Index {
        self.offset + 1
    }

    /// The last index the latest snapshot covers (0 without one).
    pub fn snapshot_index(&self) -> Index {
        self.base_index
    }

    /// The term of the entry at [`RaftLog::snapshot_index`].
    pub fn snapshot_term(&self) -> Term {
        self.base_term
    }

    pub fn commit_index(&self) -> Index {
        self.commit_index
    }

    pub fn persisted_index(&self) -> Index {
        self.persisted_index
    }

    pub fn applied_index(&self) -> Index {
        self.applied_index
    }

    pub fn apply_handed_out_index(&self) -> Index {
        self.apply_handed_out_index
    }

    pub fn persist_handed_out_from(&self) -> Index {
        self.persist_handed_out_from
    }

    /// The term of the entry at `index`; index 0 has term 0 (until compaction), and the
    /// snapshot's index its term. `None` past the end of the log, and before it where entries were compacted.
    pub fn term(&self, index: Index) -> Option<Term> {
        if index == 0 {
            // "Before the log" matches only while the log still starts at index 1.
            return (self.offset == 0).then_some(0);
        }
        if index == self.base_index {
            return Some(self.base_term);
        }
        self.entry(index).map(|entry| entry.term)
    }

    pub fn entry(&self, index: Index) -> Option<&Entry> {
        let position = usize::try_from(index.checked_sub(self.offset + 1)?).ok()?;
        self.entries.get(position)
    }

    /// Every entry held (from [`RaftLog::first_index`] on), for inspection by tests and
    /// invariants.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Whether this log holds the entry `(index, term)`.
    pub fn matches(&self, index: Index, term: Term) -> bool {
        self.term(index) == Some(term)
    }

    /// Whether a candidate whose log ends at `(last_index, last_term)` has a log at least as
    /// up to date as ours (Raft §5.4.1): compare last terms, then lengths.
    pub fn is_up_to_date(&self, last_index: Index, last_term: Term) -> bool {
        (last_term, last_index) >= (self.last_term(), self.last_index())
    }

    /// Entries from `start` on, at most `entries_max` of them and at most `bytes_max` bytes,
    /// but always at least one if any exist, so a large entry still moves.
    /// Nothing if `start` was compacted away.
    pub fn entries_from(&self, start: Index, entries_max: usize, bytes_max: usize) -> Vec<Entry> {
        let Some(offset) = start.checked_sub(self.offset + 1).and_then(|o| usize::try_from(o).ok()) else {
            return Vec::new();
        };
        let mut batch = Vec::new();
        let mut bytes = 0;
        for entry in self.entries.iter().skip(offset).take(entries_max) {
            bytes += entry.size_bytes();
            if !batch.is_empty() && bytes > bytes_max {
                break;
            }
            batch.push(entry.clone());
        }
        batch
    }

    /// Appends entries that extend the log directly (a leader's own proposals).
    pub fn append(&mut self, entry: Entry) {
        assert_eq!(entry.index, self.last_index() + 1, "appended entries must be contiguous");
        assert!(entry.term >= self.last_term(), "terms in the log never decrease");
        self.entries.push(entry);
    }

    /// A follower's half of AppendEntries, after the caller checked that `prev` matches.
    /// Skips entries already present, truncates from the first conflicting one, and appends
    /// the rest. Says which entry the leader sent last, and where the log was truncated.
    pub fn append_after_match(
        &mut self,
        prev_log_index: Index,
        entries: &[Entry],
    ) -> Result<Appended, ConflictsWithCommitted> {
        let last_new_index = prev_log_index + entries.len() as Index;
        let conflict = entries.iter().find(|entry| !self.matches(entry.index, entry.term));
        let mut truncated_from = None;
        if let Some(first_new) = conflict {
            if first_new.index <= self.commit_index {
                return Err(ConflictsWithCommitted { index: first_new.index });
            }
            // Only an entry we hold can be truncated; past the end we simply append.
            if first_new.index <= self.last_index() {
                truncated_from = Some(first_new.index);
            }
            self.truncate_from(first_new.index);
            // Entries the caller's match check placed at or before our base are covered by
            // the snapshot and already matched; only those after the held log are added.
            let skip = (first_new.index - prev_log_index - 1) as usize;
            self.entries.extend(entries[skip..].iter().cloned());
        }
        Ok(Appended { last_new_index, truncated_from })
    }

    /// Drops every entry from `index` on. Never called on committed entries.
    fn truncate_from(&mut self, index: Index) {
        assert!(index > self.commit_index, "committed entries are never truncated");
        self.entries.truncate((index - self.offset - 1) as usize);
        self.persisted_index = self.persisted_index.min(index - 1);
        self.persist_handed_out_from = self.persist_handed_out_from.min(index);
    }

    /// The hint a follower sends with a rejection: the last index at or before `index` whose
    /// term is at most `term`. Every entry after it is certain not to match the leader's log.
    /// Below the held log, the base is the answer: it is committed, so it matches any leader.
    pub fn last_index_with_term_at_most(&self, index: Index, term: Term) -> (Index, Term) {
        let mut candidate = index.min(self.last_index());
        loop {
            let Some(candidate_term) = self.term(candidate) else {
                return (self.base_index, self.base_term);
            };
            if candidate_term <= term {
                return (candidate, candidate_term);
            }
            candidate -= 1;
        }
    }

    /// Moves the commit index forward; it never moves back.
    pub fn commit_to(&mut self, index: Index) -> bool {
        if index <= self.commit_index {
            return false;
        }
        assert!(index <= self.last_index(), "cannot commit {index} past the last index {}", self.last_index());
        self.commit_index = index;
        true
    }

    /// The entries the driver must now make durable, in order. Each batch replaces whatever the
    /// driver stored from its first index on.
    pub fn take_entries_to_persist(&mut self) -> Vec<Entry> {
        let start = self.persist_handed_out_from;
        let batch: Vec<Entry> = self.entries_from(start, usize::MAX, usize::MAX);
        self.persist_handed_out_from = self.last_index() + 1;
        batch
    }

    /// Records that the driver made entries up to `(index, term)` durable. An acknowledgement
    /// for an entry that has since been overwritten is ignored: its replacement will be
    /// acknowledged in turn.
    pub fn on_persisted(&mut self, index: Index, term: Term) -> bool {
        let handed_out = index < self.persist_handed_out_from;
        if !handed_out || !self.matches(index, term) || index <= self.persisted_index {
            return false;
        }
        self.persisted_index = index;
        true
    }

    /// Committed entries that are also durable here and not yet handed out for applying.
    pub fn take_entries_to_apply(&mut self) -> Vec<Entry> {
        let end = self.commit_index.min(self.persisted_index);
        if end <= self.apply_handed_out_index {
            return Vec::new();
        }
        let start = self.apply_handed_out_index + 1;
        let count = (end - start + 1) as usize;
        let batch = self.entries_from(start, count, usize::MAX);
        self.apply_handed_out_index = end;
        batch
    }

    /// Drops held entries up to `index` (at most the snapshot's index): they are in the
    /// snapshot, and kept only as long as followers slightly behind might need them.
    pub fn compact_to(&mut self, index: Index) {
        let index = index.min(self.base_index);
        if index <= self.offset {
            return;
        }
        let drop_count = ((index - self.offset) as usize).min(self.entries.len());
        self.entries.drain(..drop_count);
        self.offset = index;
    }

    /// A snapshot covering `(index, term)` became the latest. Entries after it stay.
    pub fn set_base(&mut self, index: Index, term: Term) {
        debug_assert!(index >= self.base_index, "the snapshot base never moves back");
        self.base_index = index;
        self.base_term = term;
    }

    /// A snapshot from the leader was installed: everything up to `(index, term)` is now
    /// committed, durable and applied. If the log holds that entry, the entries after it stay
    /// (they match the leader's); otherwise the whole log is replaced by the snapshot.
    pub fn install_base(&mut self, index: Index, term: Term) {
        if self.matches(index, term) && index <= self.last_index() {
            self.base_index = index;
            self.base_term = term;
            self.compact_to(index);
            self.persisted_index = self.persisted_index.max(index);
            self.persist_handed_out_from = self.persist_handed_out_from.max(index + 1);
        } else {
            self.entries.clear();
            self.offset = index;
            self.base_index = index;
            self.base_term = term;
            self.persisted_index = index;
            self.persist_handed_out_from = index + 1;
        }
        self.commit_index = self.commit_index.max(index);
        self.apply_handed_out_index = self.apply_handed_out_index.max(index);
        self.applied_index = self.applied_index.max(index);
    }

    /// Records that the driver applied entries up to `index`.
    pub fn on_applied(&mut self, index: Index) -> Result<(), Index> {
        if index > self.apply_handed_out_index {
            return Err(self.apply_handed_out_index);
        }
        self.applied_index = self.applied_index.max(index);
        Ok(())
    }
}
