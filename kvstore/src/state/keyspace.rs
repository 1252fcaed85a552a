//! The versioned key map and its read queries.
//!
//! Keys live in an [`im::OrdMap`] in byte order, so RANGE and SCAN are range
//! queries and cloning the whole map for a snapshot is O(1): the clone shares
//! every node, and later writes copy only the path they touch.

use std::ops::Bound;

use bytes::Bytes;
use im::OrdMap;
use serde::{Deserialize, Serialize};

/// A stored value and the Raft index of the entry that last wrote it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Value {
    /// The bytes stored at the key.
    pub data: Bytes,
    /// The log index of the last write to the key: its version. Versions are
    /// never 0, because Raft indexes start at 1.
    pub version: u64,
}

/// Every key and its [`Value`], in byte order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Keyspace {
    /// Private to the state module: only `writes` changes it, and `scan`
    /// walks it.
    pub(super) entries: OrdMap<Bytes, Value>,
}

impl Keyspace {
    /// Wraps a map restored from a snapshot.
    pub(super) fn from_entries(entries: OrdMap<Bytes, Value>) -> Keyspace {
        Keyspace { entries }
    }

    /// An O(1) clone of the map, for a snapshot.
    pub(super) fn entries(&self) -> OrdMap<Bytes, Value> {
        self.entries.clone()
    }

    /// The value at `key`.
    pub(super) fn get(&self, key: &[u8]) -> Option<Bytes> {
        self.entries.get(key).map(|value| value.data.clone())
    }

    /// The value at `key` with its version (GETVER).
    pub(super) fn get_version(&self, key: &[u8]) -> Option<Value> {
        self.entries.get(key).cloned()
    }

    /// The value at each key, in order (MGET).
    pub(super) fn mget(&self, keys: &[Bytes]) -> Vec<Option<Bytes>> {
        keys.iter().map(|key| self.get(key)).collect()
    }

    /// How many of `keys` exist, counting a key named twice twice, as Redis'
    /// EXISTS does.
    pub(super) fn exists(&self, keys: &[Bytes]) -> usize {
        keys.iter().filter(|key| self.entries.contains_key(key.as_ref())).count()
    }

    /// The length of the value at `key`, 0 if absent (STRLEN).
    pub(super) fn strlen(&self, key: &[u8]) -> usize {
        self.entries.get(key).map_or(0, |value| value.data.len())
    }

    /// The number of keys (DBSIZE).
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The values of the keys in `[start, end_exclusive)`, in byte order, at
    /// most `limit` of them (RANGE). `end_exclusive` of `None` means "to the
    /// last key". With `with_keys` the result alternates key, value.
    pub(super) fn range(
        &self,
        start: &[u8],
        end_exclusive: Option<&[u8]>,
        limit: Option<usize>,
        with_keys: bool,
    ) -> Vec<Bytes> {
        let end = match end_exclusive {
            // Reversed or empty bounds are a client's choice and select
            // nothing; the tree's range query must never see them.
            Some(end) if end <= start => return Vec::new(),
            Some(end) => Bound::Excluded(end),
            None => Bound::Unbounded,
        };
        let selected = self.entries.range::<_, [u8]>((Bound::Included(start), end));
        let mut result = Vec::new();
        for (key, value) in selected.take(limit.unwrap_or(usize::MAX)) {
            if with_keys {
                result.push(key.clone());
            }
            result.push(value.data.clone());
        }
        result
    }
}
