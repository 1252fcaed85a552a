//! Property: whatever the batches (appends, truncating appends, hard state changes), the
//! record and segment sizes, and wherever power fails (between calls, inside a `persist`
//! before its sync, after a failed sync, tearing the unsynced tail anywhere), reopening
//! recovers exactly the state after some `persist` call: the last one that returned `Ok`,
//! or the one in flight. Never a mix of two, never less than what was acknowledged.

use engine::PersistedState;
use proptest::prelude::*;

use super::*;
use crate::storage::TornWrite;

/// What the next batch changes, relative to the model's state.
#[derive(Debug, Clone)]
enum Change {
    /// Entries after the last one, in the current term, maybe advancing the commit index.
    Append { count: u8, commit_advance: u8, data_size_bytes: u8 },
    /// A new term's leader overwrites up to `back` uncommitted entries and adds its own.
    Overwrite { back: u8, count: u8 },
    /// A new term, with or without a vote.
    NewTerm { vote: Option<u64> },
    /// Only the commit index moves.
    Commit { advance: u8 },
}

/// How the `persist` call ends.
#[derive(Debug, Clone)]
enum Fate {
    /// It returns `Ok`.
    Durable,
    /// Power fails after its records reached the disk, before its sync.
    CrashBeforeSync { kept_permille: u16, zeroed_permille: u16 },
    /// Its fsync fails; then power fails.
    SyncFails { kept_permille: u16, zeroed_permille: u16 },
}

#[derive(Debug, Clone)]
enum Operation {
    Persist {
        change: Change,
        fate: Fate,
    },
    /// A restart with nothing unsynced to lose (`power_loss` drops the page cache too).
    Restart {
        power_loss: bool,
    },
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        4 => (1..6u8, 0..4u8, 0..40u8).prop_map(|(count, commit_advance, data_size_bytes)| Change::Append {
            count,
            commit_advance,
            data_size_bytes
        }),
        2 => (1..6u8, 1..5u8).prop_map(|(back, count)| Change::Overwrite { back, count }),
        1 => prop::option::of(1..4u64).prop_map(|vote| Change::NewTerm { vote }),
        2 => (1..4u8).prop_map(|advance| Change::Commit { advance }),
    ]
}

fn fate() -> impl Strategy<Value = Fate> {
    // Keeping the whole unsynced tail is the only way the in-flight batch survives; give it
    // a fair share of the cases.
    let kept_permille = prop_oneof![1 => Just(1000u16), 3 => 0..=1000u16];
    let torn = (kept_permille, 0..=1000u16);
    prop_oneof![
        8 => Just(Fate::Durable),
        2 => torn.clone().prop_map(|(kept_permille, zeroed_permille)| Fate::CrashBeforeSync {
            kept_permille,
            zeroed_permille
        }),
        1 => torn.prop_map(|(kept_permille, zeroed_permille)| Fate::SyncFails { kept_permille, zeroed_permille }),
    ]
}

fn operation() -> impl Strategy<Value = Operation> {
    prop_oneof![
        10 => (change(), fate()).prop_map(|(change, fate)| Operation::Persist { change, fate }),
        1 => any::<bool>().prop_map(|power_loss| Operation::Restart { power_loss }),
    ]
}

/// The durable state as the engine would see it.
#[derive(Debug, Clone, PartialEq)]
struct Model {
    entries: Vec<Entry>,
    hard_state: HardState,
}

impl Model {
    fn last_index(&self) -> Index {
        self.entries.len() as Index
    }

    /// The batch `change` produces, and the state after it. `batch_number` makes every
    /// entry's data unique, so an entry recovered from the wrong batch shows.
    fn plan(&self, change: &Change, batch_number: usize) -> (Option<HardState>, Vec<Entry>, Model) {
        let state = self.hard_state;
        let data = |index: Index, size: u8| format!("batch {batch_number} entry {index} {}", "x".repeat(size.into()));
        let run = |first: Index, count: u8, term: Term, size: u8| -> Vec<Entry> {
            (first..first + Index::from(count)).map(|index| entry(index, term, &data(index, size))).collect()
        };
        let (hard_state, entries) = match *change {
            Change::Append { count, commit_advance, data_size_bytes } => {
                let entries = run(self.last_index() + 1, count, state.term, data_size_bytes);
                let last_index = self.last_index() + Index::from(count);
                let commit_index = (state.commit_index + Index::from(commit_advance)).min(last_index);
                let hard_state = (commit_advance > 0).then_some(HardState { commit_index, ..state });
                (hard_state, entries)
            }
            Change::Overwrite { back, count } => {
                let first = (self.last_index() + 1).saturating_sub(back.into()).max(state.commit_index + 1);
                let term = state.term + 1;
                (Some(HardState { term, voted_for: None, ..state }), run(first, count, term, 8))
            }
            Change::NewTerm { vote } => {
                (Some(HardState { term: state.term + 1, voted_for: vote, ..state }), Vec::new())
            }
            Change::Commit { advance } => {
                let commit_index = (state.commit_index + Index::from(advance)).min(self.last_index());
                (Some(HardState { commit_index, ..state }), Vec::new())
            }
        };
        let mut after = self.clone();
        if let Some(first) = entries.first() {
            after.entries.truncate(first.index as usize - 1);
            after.entries.extend_from_slice(&entries);
        }
        after.hard_state = hard_state.unwrap_or(state);
        (hard_state, entries, after)
    }

    fn matches(&self, recovered: &PersistedState) -> bool {
        self.entries == recovered.entries && self.hard_state == recovered.hard_state
    }
}

#[derive(Debug, Clone)]
struct Sizes {
    config: WalConfig,
    entries_record_size_bytes_max: usize,
}

struct Harness {
    disk: MemDisk,
    sizes: Sizes,
    store: Option<RaftStore<MemDisk>>,
    model: Model,
}

impl Harness {
    fn start(sizes: Sizes) -> Self {
        let bootstrap = PersistedState::bootstrap(membership());
        let model = Model { entries: bootstrap.entries, hard_state: bootstrap.hard_state };
        let mut harness = Harness { disk: MemDisk::new(), sizes, store: None, model };
        harness.reopen(&[]);
        harness
    }

    fn store(&mut self) -> &mut RaftStore<MemDisk> {
        self.store.as_mut().expect("the store is open")
    }

    /// Reopens the store and checks it recovered the model's state or one of `alternatives`,
    /// which becomes the model.
    fn reopen(&mut self, alternatives: &[Model]) {
        drop(self.store.take());
        let opened = open_with(&self.disk, identity(), self.sizes.config.clone());
        let (mut store, recovered) = opened.expect("recovery succeeds");
        let candidates = std::iter::once(&self.model).chain(alternatives);
        let matching = candidates.clone().find(|candidate| candidate.matches(&recovered.state));
        let Some(matching) = matching else {
            panic!("recovered {:?}\nwhich is none of {:?}", recovered.state, candidates.collect::<Vec<_>>());
        };
        self.model = matching.clone();
        assert_eq!(store.last_index(), self.model.last_index());
        assert_eq!(store.hard_state(), self.model.hard_state);
        let engine_accepts = engine::Raft::new(1, engine::Config::default(), recovered.state, 7, 0);
        assert!(engine_accepts.is_ok(), "the engine refuses the recovered state: {:?}", engine_accepts.err());
        store.entries_record_size_bytes_max = self.sizes.entries_record_size_bytes_max;
        self.store = Some(store);
    }

    fn crash(&mut self, kept_permille: u16, zeroed_permille: u16, after: Model) {
        drop(self.store.take());
        self.disk.crash(|_, unsynced_bytes| {
            let kept = unsynced_bytes * u64::from(kept_permille) / 1000;
            let zeroed = (unsynced_bytes - kept) * u64::from(zeroed_permille) / 1000;
            TornWrite { bytes_kept: kept, bytes_zeroed: zeroed }
        });
        self.reopen(&[after]);
    }

    fn run(&mut self, operation: &Operation, batch_number: usize) {
        let (change, fate) = match operation {
            Operation::Persist { change, fate } => (change, fate),
            Operation::Restart { power_loss } => {
                if *power_loss {
                    drop(self.store.take());
                    self.disk.crash_losing_unsynced();
                }
                return self.reopen(&[]);
            }
        };
        let (hard_state, entries, after) = self.model.plan(change, batch_number);
        match *fate {
            Fate::Durable => {
                self.store().persist(hard_state, &entries).expect("persist succeeds");
                self.model = after;
            }
            Fate::CrashBeforeSync { kept_permille, zeroed_permille } => {
                let store = self.store();
                let batch = store.encode_batch(hard_state, &entries).expect("the batch is valid");
                store.append_batch(batch.records).expect("appends succeed");
                self.crash(kept_permille, zeroed_permille, after);
            }
            Fate::SyncFails { kept_permille, zeroed_permille } => {
                self.disk.fail_next_sync();
                let result = self.store().persist(hard_state, &entries);
                assert!(matches!(result, Err(StoreError::Write(_))), "{result:?}");
                self.crash(kept_permille, zeroed_permille, after);
            }
        }
    }
}

fn run(sizes: Sizes, operations: &[Operation]) {
    let mut harness = Harness::start(sizes);
    for (batch_number, operation) in operations.iter().enumerate() {
        harness.run(operation, batch_number);
    }
    harness.crash(500, 500, harness.model.clone());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn recovery_returns_the_state_after_the_last_acknowledged_or_the_in_flight_batch(
        segment_size_bytes_max in 64u64..2000,
        // An unbuffered log hands every record to the disk at once, so a crash before the
        // sync can keep a whole batch; a buffered one keeps the tail in memory.
        write_buffer_size_bytes_max in prop_oneof![Just(1usize), 1usize..300],
        entries_record_size_bytes_max in 100usize..400,
        operations in prop::collection::vec(operation(), 0..40),
    ) {
        let config = WalConfig { segment_size_bytes_max, write_buffer_size_bytes_max };
        run(Sizes { config, entries_record_size_bytes_max }, &operations);
    }
}
