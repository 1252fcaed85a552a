//! The replicated log as one node sees it, with the three frontiers the driver moves:
//! what has been handed out to persist, what is durable, and what has been applied.

use crate::types::{Entry, Index, Term};

/// The log plus its bookkeeping. Entries live in memory from index 1 on.
///
/// Frontiers, in the order they may lag each other:
/// `applied_index <= apply_handed_out_index <= min(commit_index, persisted_index)`, and
/// `persisted_index < persist_handed_out_from <= last_index + 1`.
#[derive(Debug)]
pub struct RaftLog {
    /// `entries[i]` has index `i + 1`.
    entries: Vec<Entry>,
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
    /// A log restored from durable entries, all of which are persisted by definition.
    pub fn restore(entries: Vec<Entry>, commit_index: Index, applied_index: Index) -> Self {
        let last_index = entries.len() as Index;
        RaftLog {
            entries,
            commit_index,
            persisted_index: last_index,
            persist_handed_out_from: last_index + 1,
            apply_handed_out_index: applied_index,
            applied_index,
        }
    }

    pub fn last_index(&self) -> Index {
        self.entries.len() as Index
    }

    pub fn last_term(&self) -> Term {
        self.entries.last().map_or(0, |entry| entry.term)
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

    /// The term of the entry at `index`; index 0 has term 0. `None` past the end of the log.
    pub fn term(&self, index: Index) -> Option<Term> {
        if index == 0 {
            return Some(0);
        }
        self.entry(index).map(|entry| entry.term)
    }

    pub fn entry(&self, index: Index) -> Option<&Entry> {
        let position = usize::try_from(index.checked_sub(1)?).ok()?;
        self.entries.get(position)
    }

    /// Every entry, for inspection by tests and invariants.
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
    pub fn entries_from(&self, start: Index, entries_max: usize, bytes_max: usize) -> Vec<Entry> {
        let Some(offset) = start.checked_sub(1).and_then(|o| usize::try_from(o).ok()) else {
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
            let skip = (first_new.index - prev_log_index - 1) as usize;
            self.entries.extend(entries[skip..].iter().cloned());
        }
        Ok(Appended { last_new_index, truncated_from })
    }

    /// Drops every entry from `index` on. Never called on committed entries.
    fn truncate_from(&mut self, index: Index) {
        assert!(index > self.commit_index, "committed entries are never truncated");
        self.entries.truncate((index - 1) as usize);
        self.persisted_index = self.persisted_index.min(index - 1);
        self.persist_handed_out_from = self.persist_handed_out_from.min(index);
    }

    /// The hint a follower sends with a rejection: the last index at or before `index` whose
    /// term is at most `term`. Every entry after it is certain not to match the leader's log.
    pub fn last_index_with_term_at_most(&self, index: Index, term: Term) -> (Index, Term) {
        let mut candidate = index.min(self.last_index());
        loop {
            let candidate_term = self.term(candidate).expect("index within the log");
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

    /// Records that the driver applied entries up to `index`.
    pub fn on_applied(&mut self, index: Index) -> Result<(), Index> {
        if index > self.apply_handed_out_index {
            return Err(self.apply_handed_out_index);
        }
        self.applied_index = self.applied_index.max(index);
        Ok(())
    }
}
