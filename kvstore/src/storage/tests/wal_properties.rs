//! Property: whatever the batch sizes, segment sizes and crash points, recovery returns a
//! prefix of what was appended, in order, containing every record that was synced.

use proptest::prelude::*;

use super::*;
use crate::storage::segment::{HeaderDefect, SegmentDefect};
use crate::storage::TornWrite;

#[derive(Debug, Clone)]
enum Operation {
    Append {
        record_type: u8,
        payload: Vec<u8>,
    },
    Sync,
    /// Removes segments before a point chosen as a fraction of the synced records.
    Compact {
        fraction_permille: u16,
    },
    /// Power loss (keeping the chosen fractions of the unsynced tail) or, if
    /// `power_loss` is false, a process crash that keeps everything written.
    Crash {
        power_loss: bool,
        kept_permille: u16,
        zeroed_permille: u16,
    },
}

fn operation() -> impl Strategy<Value = Operation> {
    let payload = prop::collection::vec(any::<u8>(), 0..48);
    prop_oneof![
        6 => (1..=u8::MAX, payload)
            .prop_map(|(record_type, payload)| Operation::Append { record_type, payload }),
        3 => Just(Operation::Sync),
        1 => (0..=1000u16).prop_map(|fraction_permille| Operation::Compact { fraction_permille }),
        1 => (any::<bool>(), 0..=1000u16, 0..=1000u16).prop_map(
            |(power_loss, kept_permille, zeroed_permille)| Operation::Crash {
                power_loss,
                kept_permille,
                zeroed_permille,
            }
        ),
    ]
}

/// What the log must contain: the records since the oldest retained segment.
#[derive(Debug, Default)]
struct Model {
    first_sequence: u64,
    records: Vec<(u8, Vec<u8>)>,
    synced_count: usize,
}

impl Model {
    /// Checks a recovery against the model and adopts it as the new truth.
    fn check_recovery(&mut self, recovery: &Recovery) {
        let recovered = &recovery.records;
        assert!(recovered.len() >= self.synced_count, "a synced record was lost");
        assert!(recovered.len() <= self.records.len(), "a record came from nowhere");
        for (index, record) in recovered.iter().enumerate() {
            let (record_type, payload) = &self.records[index];
            assert_eq!(record.sequence, self.first_sequence + index as u64);
            assert_eq!(record.record_type, *record_type);
            assert_eq!(&record.payload[..], &payload[..]);
        }
        if let Some(torn) = &recovery.torn_tail {
            // Nothing dropped happens only for a new segment whose header never reached
            // the file; the repair rewrites the header.
            let empty_segment = SegmentDefect::Header(HeaderDefect::Truncated { bytes_present: 0 });
            assert!(torn.bytes_dropped > 0 || torn.defect == empty_segment, "{torn:?}");
        }
        self.records.truncate(recovered.len());
        self.synced_count = recovered.len();
    }

    fn compact(&mut self, first_sequence: u64) {
        let dropped = (first_sequence - self.first_sequence) as usize;
        assert!(dropped <= self.synced_count, "compaction removed the active segment");
        self.records.drain(..dropped);
        self.synced_count -= dropped;
        self.first_sequence = first_sequence;
    }
}

fn crash(disk: &MemDisk, power_loss: bool, kept_permille: u16, zeroed_permille: u16) {
    if !power_loss {
        return;
    }
    disk.crash(|_, unsynced_bytes| {
        let kept = unsynced_bytes * u64::from(kept_permille) / 1000;
        let zeroed = (unsynced_bytes - kept) * u64::from(zeroed_permille) / 1000;
        TornWrite { bytes_kept: kept, bytes_zeroed: zeroed }
    });
}

fn run(config: WalConfig, operations: Vec<Operation>) {
    let disk = MemDisk::new();
    let (mut wal, recovery) = open(&disk, config.clone());
    let mut model = Model { first_sequence: 1, ..Model::default() };
    model.check_recovery(&recovery);
    for operation in operations {
        match operation {
            Operation::Append { record_type, payload } => {
                let sequence = wal.append(record_type, &payload).unwrap();
                assert_eq!(sequence, model.first_sequence + model.records.len() as u64);
                model.records.push((record_type, payload));
            }
            Operation::Sync => {
                wal.sync().unwrap();
                model.synced_count = model.records.len();
                let last = model.first_sequence + model.records.len() as u64 - 1;
                assert_eq!(wal.last_synced_sequence(), last);
            }
            Operation::Compact { fraction_permille } => {
                let synced = model.synced_count as u64 * u64::from(fraction_permille) / 1000;
                wal.remove_segments_before(model.first_sequence + synced).unwrap();
                model.compact(wal.first_sequence());
            }
            Operation::Crash { power_loss, kept_permille, zeroed_permille } => {
                drop(wal);
                crash(&disk, power_loss, kept_permille, zeroed_permille);
                let (reopened, recovery) = open(&disk, config.clone());
                assert_eq!(reopened.first_sequence(), model.first_sequence);
                model.check_recovery(&recovery);
                wal = reopened;
            }
        }
    }
    drop(wal);
    crash(&disk, true, 500, 500);
    let (_, recovery) = open(&disk, config);
    model.check_recovery(&recovery);
}

proptest! {
    #[test]
    fn recovery_returns_a_prefix_holding_every_synced_record(
        segment_size_bytes_max in 24u64..400,
        write_buffer_size_bytes_max in 1usize..200,
        operations in prop::collection::vec(operation(), 0..80),
    ) {
        let config = WalConfig { segment_size_bytes_max, write_buffer_size_bytes_max };
        run(config, operations);
    }
}
