//! The serialisable image of a [`StateMachine`](super::StateMachine).
//!
//! [`StateMachine::snapshot`](super::StateMachine::snapshot) is O(1): it clones
//! the persistent maps, which share every node with the live machine. The
//! apply path goes on changing the machine (copying only the paths it
//! touches) while another task encodes the [`Snapshot`] with
//! [`Snapshot::encode`]; a `Snapshot` is `Send` and `Sync` for that purpose.

use std::fmt;
use std::marker::PhantomData;

use bytes::Bytes;
use im::OrdMap;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::command::{DecodeError, SessionId};
use super::keyspace::Value;
use super::machine::Limits;
use super::session::Session;

/// Everything a replica needs to continue applying after `applied_index`:
/// keys with values and versions, sessions with cached replies, and limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub(super) applied_index: u64,
    /// Carried so that a replica restored from a peer's snapshot refuses and
    /// accepts exactly what that peer does.
    pub(super) limits: Limits,
    #[serde(deserialize_with = "deserialize_entry_by_entry")]
    pub(super) entries: OrdMap<Bytes, Value>,
    #[serde(deserialize_with = "deserialize_entry_by_entry")]
    pub(super) sessions: OrdMap<SessionId, Session>,
}

/// Decodes a map one entry at a time. `im`'s own `Deserialize` first reserves room for as
/// many entries as the bytes declare, so a few bytes declaring 2^30 entries would allocate
/// gigabytes; here memory grows only with the entries that actually arrive. The encoding
/// is `im`'s (a map), unchanged.
fn deserialize_entry_by_entry<'de, D, K, V>(deserializer: D) -> Result<OrdMap<K, V>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de> + Ord + Clone,
    V: Deserialize<'de> + Clone,
{
    struct EntryByEntry<K, V>(PhantomData<(K, V)>);

    impl<'de, K, V> Visitor<'de> for EntryByEntry<K, V>
    where
        K: Deserialize<'de> + Ord + Clone,
        V: Deserialize<'de> + Clone,
    {
        type Value = OrdMap<K, V>;

        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("a map")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<OrdMap<K, V>, A::Error> {
            let mut map = OrdMap::new();
            while let Some((key, value)) = access.next_entry()? {
                map.insert(key, value);
            }
            Ok(map)
        }
    }

    deserializer.deserialize_map(EntryByEntry(PhantomData))
}

/// Why a decoded snapshot cannot be restored: it describes a state that
/// applying entries could not have produced, so it is corrupt or foreign.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    /// The limits allow no session at all.
    #[error("snapshot limits allow no session")]
    NoSessionAllowed,
    /// A key's version is 0 or after the snapshot's applied index.
    #[error("snapshot key {key:?} has version {version}, outside 1..={applied_index}")]
    VersionOutOfRange {
        /// The key with the impossible version.
        key: Bytes,
        /// Its version.
        version: u64,
        /// The snapshot's applied index.
        applied_index: u64,
    },
    /// A value is larger than the snapshot's own limit.
    #[error("snapshot value at {key:?} has {size_bytes} bytes, above the limit {size_bytes_max}")]
    ValueTooLarge {
        /// The key of the oversized value.
        key: Bytes,
        /// The value's size.
        size_bytes: usize,
        /// The snapshot's value size limit.
        size_bytes_max: usize,
    },
    /// More sessions than the snapshot's limit.
    #[error("snapshot holds {count} sessions, above the limit {sessions_max}")]
    TooManySessions {
        /// How many sessions the snapshot holds.
        count: usize,
        /// The snapshot's session limit.
        sessions_max: usize,
    },
    /// A session's id or last activity is after the applied index, or two
    /// sessions claim the same activity index.
    #[error("snapshot session {id:?} has an impossible activity index")]
    SessionActivity {
        /// The offending session.
        id: SessionId,
    },
}

impl Snapshot {
    /// The index of the last entry the snapshot includes.
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// The number of keys in the snapshot.
    pub fn key_count(&self) -> usize {
        self.entries.len()
    }

    /// Encodes the snapshot with postcard. It walks every key, so call it off
    /// the apply path.
    pub fn encode(&self) -> Vec<u8> {
        // Serialising plain owned data into a growable vector cannot fail.
        postcard::to_allocvec(self).expect("a snapshot always serialises")
    }

    /// Decodes bytes written by [`Snapshot::encode`]. Pass the result to
    /// [`StateMachine::restore`](super::StateMachine::restore), which checks it.
    pub fn decode(bytes: &[u8]) -> Result<Snapshot, DecodeError> {
        postcard::from_bytes(bytes).map_err(|source| DecodeError { what: "snapshot", source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Command, Request, StateMachine};

    fn snapshot_of_one_key() -> Snapshot {
        let mut machine = StateMachine::new(Limits::default());
        let put = Command::Put { key: Bytes::from_static(b"k"), value: Bytes::from_static(b"value") };
        let request = Request { session: None, sequence: 0, command: put };
        machine.apply(3, request);
        machine.snapshot()
    }

    #[test]
    fn restore_refuses_a_version_after_the_applied_index() {
        let mut snapshot = snapshot_of_one_key();
        snapshot.applied_index = 2;
        let refused = StateMachine::restore(snapshot);
        assert!(matches!(refused, Err(RestoreError::VersionOutOfRange { version: 3, .. })));
    }

    #[test]
    fn restore_refuses_a_value_above_the_snapshot_limit() {
        let mut snapshot = snapshot_of_one_key();
        snapshot.limits.value_size_bytes_max = 4;
        let refused = StateMachine::restore(snapshot);
        assert!(matches!(refused, Err(RestoreError::ValueTooLarge { size_bytes: 5, .. })));
    }

    /// Found by the `commands` fuzz target: ten bytes declaring 1.4e8 keys made decoding
    /// reserve 9.9 GB. A declared count of 2^60 (for the keys, then for the sessions) makes
    /// that reservation fail outright.
    #[test]
    fn decode_allocates_nothing_for_entries_that_are_only_declared() {
        let fuzzer_found = [255, 231, 7, 231, 42, 96, 231, 231, 255, 65];
        let two_to_the_sixty = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10];
        let keys_declared = [&[0, 0, 0][..], &two_to_the_sixty].concat();
        let sessions_declared = [&[0, 0, 0, 0][..], &two_to_the_sixty].concat();
        for bytes in [&fuzzer_found[..], &keys_declared, &sessions_declared] {
            assert!(Snapshot::decode(bytes).is_err(), "{bytes:?}");
        }
    }

    #[test]
    fn decode_refuses_truncated_bytes() {
        let encoded = snapshot_of_one_key().encode();
        assert!(Snapshot::decode(&encoded[..encoded.len() - 1]).is_err());
        assert_eq!(Snapshot::decode(&encoded).ok(), Some(snapshot_of_one_key()));
    }
}
