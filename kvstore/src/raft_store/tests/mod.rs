//! Tests of the Raft store: round trips, identity, corruption, group commit, and a crash
//! property against an in-memory model.

mod basics;
mod corruption;
mod crashes;
mod identity;
mod snapshots;

use bytes::Bytes;
use engine::{Entry, EntryKind, HardState, Index, Membership, Term};

use super::{Identity, RaftStore, Recovered, StoreError};
use crate::storage::{MemDisk, WalConfig};

fn identity() -> Identity {
    Identity { cluster_id: "alpha".to_string(), node_id: 1 }
}

fn membership() -> Membership {
    Membership::new([1, 2, 3])
}

fn open_with(
    disk: &MemDisk,
    identity: Identity,
    config: WalConfig,
) -> Result<(RaftStore<MemDisk>, Recovered), StoreError> {
    RaftStore::open(disk.clone(), identity, Some(membership()), config)
}

fn open(disk: &MemDisk) -> (RaftStore<MemDisk>, Recovered) {
    open_with(disk, identity(), WalConfig::default()).expect("the store opens")
}

fn entry(index: Index, term: Term, data: &str) -> Entry {
    Entry { term, index, kind: EntryKind::Normal(Bytes::from(data.to_string())) }
}

fn hard_state(term: Term, voted_for: Option<u64>, commit_index: Index) -> HardState {
    HardState { term, voted_for, commit_index }
}
