//! Replay: turning the WAL's recovered records back into the durable Raft log, batch by
//! batch, checking every rule a batch had to keep when it was written.

use engine::{Entry, Index, Term};

use super::error::{LogDefect, StoreError};
use super::records::{
    decode_entries, decode_hard_state, decode_snapshot_record, RECORD_TYPE_ENTRIES, RECORD_TYPE_HARD_STATE,
    RECORD_TYPE_SNAPSHOT,
};
use super::shape::LogShape;
use crate::storage::segment::parse_segment_name;
use crate::storage::Record;

/// What replay rebuilt from the records.
#[derive(Debug, Default)]
pub(super) struct Replayed {
    /// The durable log, contiguous from index 1.
    pub(super) entries: Vec<Entry>,
    /// The same log as the store tracks it, with the hard state in force.
    pub(super) shape: LogShape,
    /// How many batches (hard state records) were replayed; 0 for a log never bootstrapped.
    pub(super) batches: u64,
    /// Entries records of batches that never got their closing hard state record.
    pub(super) abandoned_records: usize,
}

/// An entries record waiting for the hard state record that closes its batch.
struct Pending {
    sequence: u64,
    entries: Vec<Entry>,
}

/// Replays `records`, in sequence order. `segment_paths` (oldest first) name the file of a
/// bad record in errors.
/// Replays `records` onto a log that starts after `snapshot` (the latest snapshot's index and
/// term), if there is one. After compaction the first batches may start before it.
pub(super) fn replay(
    records: &[Record],
    segment_paths: &[String],
    snapshot: Option<(Index, Term)>,
) -> Result<Replayed, StoreError> {
    let mut replayed = Replayed::default();
    // Compaction removes whole segments, so the first one left may begin with the tail of a
    // batch whose start was removed: its hard state record finds fewer entries records than
    // it declares. Only there is that not corruption.
    let mut compacted_head = records.first().is_some_and(|record| record.sequence > 1);
    if let Some((index, term)) = snapshot {
        replayed.shape = LogShape::after_snapshot(index, term);
    }
    let mut pending: Vec<Pending> = Vec::new();
    for record in records {
        let corrupt = |defect| corrupt_at(segment_paths, record.sequence, defect);
        match record.record_type {
            RECORD_TYPE_ENTRIES => {
                let entries = decode_entries(&record.payload).map_err(corrupt)?;
                pending.push(Pending { sequence: record.sequence, entries });
            }
            RECORD_TYPE_HARD_STATE if compacted_head && is_short(&pending, record) => {
                replayed.abandoned_records += std::mem::take(&mut pending).len();
                compacted_head = false;
            }
            RECORD_TYPE_HARD_STATE => {
                compacted_head = false;
                let result = close_batch(&mut replayed, &mut pending, record);
                result.map_err(|(sequence, defect)| corrupt_at(segment_paths, sequence, defect))?;
            }
            RECORD_TYPE_SNAPSHOT => {
                let installed = decode_snapshot_record(&record.payload).map_err(corrupt)?;
                // Entries records before it without their hard state never completed.
                replayed.abandoned_records += std::mem::take(&mut pending).len();
                reset_to_snapshot(&mut replayed, installed.index, installed.term);
            }
            record_type => return Err(corrupt(LogDefect::UnknownRecordType { record_type })),
        }
    }
    // A batch without its hard state record was cut short by a crash or a failed write:
    // `persist` never returned Ok for it, so nobody relies on it.
    replayed.abandoned_records += pending.len();
    Ok(replayed)
}

/// Applies the batch a hard state record closes: its entries records, then its hard state.
/// Pending entries records before the batch belong to one that was abandoned. A defect
/// comes with the sequence of the record that has it.
/// Whether the hard state record `record` declares more entries records than are pending.
fn is_short(pending: &[Pending], record: &Record) -> bool {
    decode_hard_state(&record.payload).is_ok_and(|closing| closing.entries_records as usize > pending.len())
}

fn close_batch(replayed: &mut Replayed, pending: &mut Vec<Pending>, record: &Record) -> Result<(), (u64, LogDefect)> {
    let at_closing = |defect| (record.sequence, defect);
    let closing = decode_hard_state(&record.payload).map_err(at_closing)?;
    let declared = closing.entries_records;
    let present = pending.len();
    let batch_size = usize::try_from(declared).ok().filter(|size| *size <= present);
    let batch_size = batch_size.ok_or(LogDefect::BatchShort { declared, present }).map_err(at_closing)?;
    replayed.abandoned_records += present - batch_size;
    let batch: Vec<Pending> = pending.drain(..).skip(present - batch_size).collect();
    let batch_sequence = batch.first().map_or(record.sequence, |first| first.sequence);
    for part in &batch {
        replayed.shape.check_entries(&part.entries).map_err(|defect| (part.sequence, defect))?;
        replace_suffix(&mut replayed.entries, &part.entries);
        replayed.shape.apply_entries(&part.entries, batch_sequence);
    }
    let last_index = replayed.shape.last_index();
    // Only a held entry's term is compared with the hard state: the snapshot the shape starts
    // from may be newer than the hard state records of the WAL's first batches.
    let last_term = replayed.shape.held_term_at(last_index).unwrap_or(0);
    replayed.shape.check_hard_state(&closing.hard_state, last_index, last_term).map_err(at_closing)?;
    replayed.shape.apply_hard_state(closing.hard_state);
    replayed.batches += 1;
    Ok(())
}

/// Replaces everything from the first of `entries` on; they were checked to start within
/// the log or right after it.
/// Applies a snapshot to the replayed log by the engine's rule: entries after `(index, term)`
/// stay if the log held that entry, otherwise the log restarts empty after it.
pub(super) fn reset_to_snapshot(replayed: &mut Replayed, index: Index, term: Term) {
    if replayed.shape.holds(index, term) {
        replayed.entries.retain(|entry| entry.index > index);
    } else {
        replayed.entries.clear();
    }
    replayed.shape.reset_to_snapshot(index, term);
}

/// Replaces the log from the first of `entries` on; the log may start after index 1.
fn replace_suffix(log: &mut Vec<Entry>, entries: &[Entry]) {
    let Some(first_index) = entries.first().map(|entry| entry.index) else { return };
    let log_start = log.first().map_or(first_index, |entry| entry.index);
    let kept = usize::try_from(first_index.saturating_sub(log_start)).expect("a checked index fits in memory");
    log.truncate(kept);
    log.extend_from_slice(entries);
}

fn corrupt_at(segment_paths: &[String], sequence: u64, defect: LogDefect) -> StoreError {
    StoreError::Corrupt { path: segment_holding(segment_paths, sequence), sequence, defect }
}

/// The path of the segment whose records include `sequence`: the last one starting at or
/// before it.
fn segment_holding(segment_paths: &[String], sequence: u64) -> String {
    let first_sequence = |path: &String| {
        let name = path.rsplit('/').next().unwrap_or(path);
        parse_segment_name(name).unwrap_or(0)
    };
    let holding = segment_paths.iter().rev().find(|path| first_sequence(path) <= sequence);
    holding.cloned().unwrap_or_else(|| "the WAL".to_string())
}
