//! [`LogShape`]: what the store knows of the durable log without holding its entries, and
//! the rules every batch must keep, checked alike before `persist` writes a batch and when
//! recovery replays one.

use engine::{Entry, HardState, Index, Term};

use super::error::LogDefect;

/// A run-length map from log index to a value that changes rarely along the log (a term,
/// the WAL sequence of the batch that wrote an entry): one element per change, not per
/// entry.
#[derive(Debug, Clone, Default)]
struct Runs<T> {
    /// `(first index, value)`, by increasing index; each run lasts until the next one.
    starts: Vec<(Index, T)>,
}

impl<T: Copy + PartialEq> Runs<T> {
    /// Forgets every run from `index` on.
    fn truncate_from(&mut self, index: Index) {
        while self.starts.last().is_some_and(|(start, _)| *start >= index) {
            self.starts.pop();
        }
    }

    /// Records that `value` holds from `index` on; `index` is past every earlier run.
    fn extend(&mut self, index: Index, value: T) {
        debug_assert!(self.starts.last().is_none_or(|(start, _)| *start < index), "runs are ordered");
        if self.starts.last().map(|(_, last)| *last) != Some(value) {
            self.starts.push((index, value));
        }
    }

    /// The value at `index`, if any run starts at or before it.
    fn value_at(&self, index: Index) -> Option<T> {
        let position = self.starts.partition_point(|(start, _)| *start <= index);
        position.checked_sub(1).map(|position| self.starts[position].1)
    }
}

/// The durable log as the store tracks it: its last index, the term of every entry (as
/// runs), the WAL sequence of the batch that wrote each entry (as runs, for compaction),
/// and the hard state in force.
#[derive(Debug, Clone, Default)]
pub(super) struct LogShape {
    last_index: Index,
    hard_state: HardState,
    terms: Runs<Term>,
    batch_sequences: Runs<u64>,
    /// The latest snapshot's last index and term (`(0, 0)`: none). The log holds entries from
    /// `first_index` on; the entry at the base is known by its term even when not held.
    base_index: Index,
    base_term: Term,
    first_index: Index,
}

impl LogShape {
    /// The shape of a log that starts right after a snapshot covering `(index, term)`.
    pub(super) fn after_snapshot(index: Index, term: Term) -> Self {
        LogShape { last_index: index, base_index: index, base_term: term, first_index: index + 1, ..Self::default() }
    }

    /// A snapshot covering `(index, term)` became the latest: entries after it stay if the
    /// log holds that entry (they match), otherwise the log restarts empty after it.
    pub(super) fn reset_to_snapshot(&mut self, index: Index, term: Term) {
        let holds = index <= self.last_index && self.term_at(index) == Some(term);
        if !holds {
            self.terms = Runs::default();
            self.batch_sequences = Runs::default();
            self.last_index = index;
        }
        self.base_index = index;
        self.base_term = term;
        self.first_index = self.first_index.max(index + 1);
    }

    /// The term of the entry at `index` if the log holds it (not merely its snapshot base).
    pub(super) fn held_term_at(&self, index: Index) -> Option<Term> {
        if index == 0 || index > self.last_index || index < self.first_index.max(1) {
            return None;
        }
        self.terms.value_at(index)
    }

    /// The latest snapshot's last index (0 without one).
    pub(super) fn snapshot_index(&self) -> Index {
        self.base_index
    }

    /// Whether the log holds the entry `(index, term)` (or has it as its snapshot base).
    pub(super) fn holds(&self, index: Index, term: Term) -> bool {
        index <= self.last_index && self.term_at(index) == Some(term)
    }

    pub(super) fn last_index(&self) -> Index {
        self.last_index
    }

    pub(super) fn hard_state(&self) -> HardState {
        self.hard_state
    }

    /// The term of the entry at `index`, or `None` outside the log.
    pub(super) fn term_at(&self, index: Index) -> Option<Term> {
        if index == 0 || index > self.last_index {
            return None;
        }
        if index < self.first_index.max(1) {
            return (index == self.base_index).then_some(self.base_term);
        }
        self.terms.value_at(index).or((index == self.base_index).then_some(self.base_term))
    }

    /// The WAL sequence of the first record of the batch that wrote the entry at `index`.
    pub(super) fn batch_sequence_at(&self, index: Index) -> Option<u64> {
        if index == 0 || index > self.last_index {
            return None;
        }
        self.batch_sequences.value_at(index)
    }

    /// Checks that `entries` may replace the log from their first index on.
    pub(super) fn check_entries(&self, entries: &[Entry]) -> Result<(), LogDefect> {
        let first = entries.first().ok_or(LogDefect::EmptyEntries)?;
        if first.index == 0 {
            return Err(LogDefect::IndexZero);
        }
        if first.index > self.last_index + 1 {
            return Err(LogDefect::Gap { first_index: first.index, last_index: self.last_index });
        }
        // A follower only ever truncates an uncommitted suffix (Raft §5.3); overwriting a
        // committed entry would lose something a state machine may have applied.
        let commit_index = self.hard_state.commit_index;
        if first.index <= commit_index {
            return Err(LogDefect::OverwritesCommitted { first_index: first.index, commit_index });
        }
        let previous_term = self.term_at(first.index - 1).unwrap_or(0);
        check_run(entries, previous_term)
    }

    /// Replaces the log from the first of `entries` on; they passed [`Self::check_entries`].
    pub(super) fn apply_entries(&mut self, entries: &[Entry], batch_sequence: u64) {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return;
        };
        self.terms.truncate_from(first.index);
        self.batch_sequences.truncate_from(first.index);
        for entry in entries {
            self.terms.extend(entry.index, entry.term);
        }
        self.batch_sequences.extend(first.index, batch_sequence);
        self.last_index = last.index;
        // Recovery after compaction replays batches that start before the snapshot.
        self.first_index = self.first_index.min(first.index).max(1);
    }

    /// Checks that `next` may follow the current hard state once the log ends at
    /// `(last_index, last_term)`.
    pub(super) fn check_hard_state(
        &self,
        next: &HardState,
        last_index: Index,
        last_term: Term,
    ) -> Result<(), LogDefect> {
        let previous_term = self.hard_state.term;
        if next.term < previous_term {
            return Err(LogDefect::HardStateTermDecreases { term: next.term, previous_term });
        }
        if next.commit_index > last_index {
            return Err(LogDefect::CommitBeyondLog { commit_index: next.commit_index, last_index });
        }
        // The engine refuses to start from such a log; catch it when it is written.
        if last_term > next.term {
            return Err(LogDefect::EntryTermAboveHardState { last_index, last_term, hard_state_term: next.term });
        }
        Ok(())
    }

    /// Adopts `hard_state`; it passed [`Self::check_hard_state`].
    pub(super) fn apply_hard_state(&mut self, hard_state: HardState) {
        self.hard_state = hard_state;
    }

    /// Checks a whole batch, as `persist` receives it, against the current log.
    pub(super) fn check_batch(&self, hard_state: &HardState, entries: &[Entry]) -> Result<(), LogDefect> {
        if entries.is_empty() {
            let last_term = self.term_at(self.last_index).unwrap_or(0);
            return self.check_hard_state(hard_state, self.last_index, last_term);
        }
        self.check_entries(entries)?;
        let last = entries.last().expect("entries are not empty");
        self.check_hard_state(hard_state, last.index, last.term)
    }
}

/// Checks that entries have consecutive indexes and non-decreasing terms, starting after
/// an entry of `previous_term`.
fn check_run(entries: &[Entry], previous_term: Term) -> Result<(), LogDefect> {
    let mut previous_term = previous_term;
    for (position, entry) in entries.iter().enumerate() {
        if let Some(next) = entries.get(position + 1) {
            if next.index != entry.index + 1 {
                return Err(LogDefect::NotContiguous { index: entry.index, next_index: next.index });
            }
        }
        if entry.term < previous_term {
            return Err(LogDefect::TermDecreases { index: entry.index, term: entry.term, previous_term });
        }
        previous_term = entry.term;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::EntryKind;

    fn entries(first_index: Index, terms: &[Term]) -> Vec<Entry> {
        let indexes = first_index..;
        let pairs = indexes.zip(terms);
        pairs.map(|(index, term)| Entry { term: *term, index, kind: EntryKind::Noop }).collect()
    }

    fn shape_with(terms: &[Term], batch_sequence: u64) -> LogShape {
        let mut shape = LogShape::default();
        shape.apply_entries(&entries(1, terms), batch_sequence);
        shape
    }

    #[test]
    fn truncating_entries_replace_terms_and_batch_sequences_from_their_first_index() {
        let mut shape = shape_with(&[1, 1, 2, 2, 2], 10);
        shape.apply_entries(&entries(4, &[3, 3]), 20);
        assert_eq!(shape.last_index(), 5);
        let terms: Vec<_> = (0..=6).map(|index| shape.term_at(index)).collect();
        assert_eq!(terms, [None, Some(1), Some(1), Some(2), Some(3), Some(3), None]);
        assert_eq!(shape.batch_sequence_at(3), Some(10));
        assert_eq!(shape.batch_sequence_at(4), Some(20));
        shape.apply_entries(&entries(2, &[4]), 30);
        assert_eq!(shape.last_index(), 2);
        assert_eq!(shape.term_at(2), Some(4));
        assert_eq!(shape.term_at(3), None);
        assert_eq!(shape.batch_sequence_at(1), Some(10));
        assert_eq!(shape.batch_sequence_at(2), Some(30));
    }

    #[test]
    fn entries_must_start_within_the_log_be_contiguous_and_keep_terms_ordered() {
        let shape = shape_with(&[1, 2], 1);
        assert_eq!(shape.check_entries(&entries(3, &[2, 3])), Ok(()));
        assert_eq!(shape.check_entries(&entries(2, &[1])), Ok(()));
        assert_eq!(shape.check_entries(&[]), Err(LogDefect::EmptyEntries));
        assert_eq!(shape.check_entries(&entries(0, &[1])), Err(LogDefect::IndexZero));
        assert_eq!(shape.check_entries(&entries(4, &[2])), Err(LogDefect::Gap { first_index: 4, last_index: 2 }));
        let decreasing = LogDefect::TermDecreases { index: 3, term: 1, previous_term: 2 };
        assert_eq!(shape.check_entries(&entries(3, &[1])), Err(decreasing));
        let mut holes = entries(3, &[2, 2]);
        holes[1].index = 5;
        assert_eq!(shape.check_entries(&holes), Err(LogDefect::NotContiguous { index: 3, next_index: 5 }));
    }

    #[test]
    fn committed_entries_are_never_overwritten() {
        let mut shape = shape_with(&[1, 1, 1], 1);
        shape.apply_hard_state(HardState { term: 1, voted_for: None, commit_index: 2 });
        let overwrite = LogDefect::OverwritesCommitted { first_index: 2, commit_index: 2 };
        assert_eq!(shape.check_entries(&entries(2, &[1])), Err(overwrite));
        assert_eq!(shape.check_entries(&entries(3, &[1])), Ok(()));
    }

    #[test]
    fn hard_state_must_keep_its_term_and_commit_within_the_log() {
        let mut shape = shape_with(&[1, 2], 1);
        shape.apply_hard_state(HardState { term: 2, voted_for: None, commit_index: 0 });
        let state = |term, commit_index| HardState { term, voted_for: None, commit_index };
        assert_eq!(shape.check_batch(&state(2, 2), &[]), Ok(()));
        let beyond = LogDefect::CommitBeyondLog { commit_index: 3, last_index: 2 };
        assert_eq!(shape.check_batch(&state(2, 3), &[]), Err(beyond));
        assert_eq!(shape.check_batch(&state(3, 3), &entries(3, &[3])), Ok(()));
        let decreasing = LogDefect::HardStateTermDecreases { term: 1, previous_term: 2 };
        assert_eq!(shape.check_batch(&state(1, 0), &[]), Err(decreasing));
        let above = LogDefect::EntryTermAboveHardState { last_index: 3, last_term: 4, hard_state_term: 2 };
        assert_eq!(shape.check_batch(&state(2, 0), &entries(3, &[4])), Err(above));
    }
}
