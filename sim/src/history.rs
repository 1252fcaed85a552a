//! What the simulated clients did: every operation with its invocation and completion times
//! and its outcome. The workload records it; the checker judges it.

use bytes::Bytes;

/// One client operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// Unique within a history, in invocation order.
    pub id: u64,
    pub client: u64,
    pub invoked_ns: u64,
    /// `None`: the operation never completed (its client stopped waiting).
    pub completed_ns: Option<u64>,
    pub call: Call,
    pub outcome: Outcome,
}

/// What the client asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    Get(Bytes),
    Set(Bytes, Bytes),
    Del(Bytes),
    /// Applies iff the current value equals `expected`; replies 1 or 0.
    Cas {
        key: Bytes,
        expected: Bytes,
        new: Bytes,
    },
    /// Replies the new length.
    Append(Bytes, Bytes),
    /// Replies the new value; on a value that is not an integer, an error and no change.
    Incr(Bytes),
    /// The (key, value) pairs in `[start, end)` in byte order.
    Range {
        start: Bytes,
        end: Bytes,
    },
}

/// What the client learned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok(Return),
    /// Certainly not applied (`-TRYAGAIN`): not part of the history's effects.
    Failed,
    /// May or may not have taken effect (`-UNKNOWN`, a timeout, a lost connection).
    Unknown,
}

/// A successful reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Return {
    Value(Option<Bytes>),
    Integer(i64),
    Pairs(Vec<(Bytes, Bytes)>),
    Done,
    /// A command error that changed nothing (INCR of a non-integer value).
    Error,
}

impl Call {
    /// The key a single-key operation touches; `None` for RANGE.
    pub fn key(&self) -> Option<&Bytes> {
        match self {
            Call::Get(key) | Call::Set(key, _) | Call::Del(key) | Call::Append(key, _) | Call::Incr(key) => Some(key),
            Call::Cas { key, .. } => Some(key),
            Call::Range { .. } => None,
        }
    }

    /// Whether the operation may change state.
    pub fn is_write(&self) -> bool {
        !matches!(self, Call::Get(_) | Call::Range { .. })
    }
}
