//! The replicated write commands and the request that carries them.
//!
//! A [`Request`] is what the server proposes: it is postcard-encoded with
//! [`Request::encode`] into the payload of one Raft log entry, and every replica
//! decodes it again with [`Request::decode`] when the entry commits.
//!
//! Postcard encodes an enum variant by its position and a struct by its field
//! order, and log entries outlive the code that wrote them. So: append new
//! variants and fields at the end only, never reorder or remove one.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Identifies a client session: the Raft log index of the
/// [`Command::RegisterSession`] entry that created it, so every replica derives
/// the same id without coordination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SessionId(pub u64);

/// A replicated write, wrapped with the client session that makes retries safe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The session the request belongs to, or `None` for a write that is not
    /// deduplicated (a retry of it may apply twice).
    pub session: Option<SessionId>,
    /// The client's sequence number within the session, starting at 1 and
    /// increasing by at least 1 per new write. A retry reuses the number.
    /// Ignored when `session` is `None`.
    pub sequence: u64,
    /// The write itself.
    pub command: Command,
}

/// Which existing-key condition a [`Command::Set`] requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SetCondition {
    /// Set unconditionally.
    None,
    /// Set only if the key does not exist (`SET ... NX`).
    Nx,
    /// Set only if the key already exists (`SET ... XX`).
    Xx,
}

/// A write command, as replicated in the Raft log.
///
/// The doc of each variant gives its [`Reply`](super::Reply). Every write that
/// stores a value stamps the key with the index of the entry (its version).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Creates a client session. Replies with the new session id as an integer.
    /// A lost reply leaves an unused session behind, which the session bound
    /// evicts in time; it is harmless.
    RegisterSession,
    /// `PUT key value`: sets the key. Replies integer 1.
    Put {
        /// The key to write.
        key: Bytes,
        /// The value to store.
        value: Bytes,
    },
    /// `SET key value [NX|XX] [GET]`. Without `get`, replies OK when it set the
    /// key and nil when the condition failed. With `get`, replies the previous
    /// value (nil if absent) whether or not it set the key, as Redis 7 does.
    Set {
        /// The key to write.
        key: Bytes,
        /// The value to store.
        value: Bytes,
        /// The existence condition for the write.
        condition: SetCondition,
        /// Whether to reply with the previous value.
        get: bool,
    },
    /// `DEL key...`: replies the number of keys that existed and were removed.
    /// A key named twice counts once.
    Del {
        /// The keys to remove.
        keys: Vec<Bytes>,
    },
    /// `MSET key value...`: sets every pair in order (a repeated key keeps its
    /// last value). Replies OK. All or nothing: if one value is too large,
    /// nothing is written.
    MSet {
        /// The pairs to write, in order.
        pairs: Vec<(Bytes, Bytes)>,
    },
    /// `INCR`, `DECR`, `INCRBY`, `DECRBY`: adds `delta` to the integer stored at
    /// the key (an absent key counts as 0). Replies the new value. INCR is
    /// `delta` 1 and DECR is `delta` -1; the server rejects `DECRBY` of
    /// `i64::MIN`, which cannot be negated, before it gets here.
    IncrBy {
        /// The key holding a decimal integer.
        key: Bytes,
        /// The amount to add, possibly negative.
        delta: i64,
    },
    /// `APPEND key value`: appends to the value (an absent key counts as
    /// empty). Replies the new length.
    Append {
        /// The key to extend.
        key: Bytes,
        /// The bytes to append.
        value: Bytes,
    },
    /// `CAS key expected new`: sets the key to `new` only if its current value
    /// equals `expected` (`None` means the key must be absent). Replies integer
    /// 1 if it applied, 0 if not.
    Cas {
        /// The key to compare and set.
        key: Bytes,
        /// The value the key must hold, or `None` for "absent".
        expected: Option<Bytes>,
        /// The value to store if the comparison holds.
        new: Bytes,
    },
    /// Versioned compare-and-set: sets the key to `new` only if its version (as
    /// returned by GETVER) equals `expected_version` (`None` means absent).
    /// Unlike [`Command::Cas`] it cannot be fooled by a value that changed and
    /// changed back. Replies integer 1 if it applied, 0 if not.
    CasVersion {
        /// The key to compare and set.
        key: Bytes,
        /// The version the key must have, or `None` for "absent".
        expected_version: Option<u64>,
        /// The value to store if the comparison holds.
        new: Bytes,
    },
}

/// A request or snapshot whose bytes do not decode.
#[derive(Debug, thiserror::Error)]
#[error("cannot decode {what}: {source}")]
pub struct DecodeError {
    /// What was being decoded ("request", "snapshot").
    pub what: &'static str,
    /// Why postcard refused the bytes.
    #[source]
    pub source: postcard::Error,
}

impl Request {
    /// Encodes the request as the payload of a Raft log entry.
    pub fn encode(&self) -> Vec<u8> {
        // Serialising plain owned data into a growable vector cannot fail.
        postcard::to_allocvec(self).expect("a request always serialises")
    }

    /// Decodes a Raft log entry payload written by [`Request::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Request, DecodeError> {
        postcard::from_bytes(bytes).map_err(|source| DecodeError { what: "request", source })
    }
}
