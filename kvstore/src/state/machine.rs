//! [`StateMachine`]: the keyspace and the sessions, driven by the Raft log.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::command::{Command, Request, SessionId};
use super::keyspace::{Keyspace, Value};
use super::reply::{CommandError, Reply};
use super::scan::{ScanCursor, ScanPage};
use super::session::{Admission, SessionTable};
use super::snapshot::{RestoreError, Snapshot};

/// The bounds the state machine enforces. They decide which writes apply, so
/// they are part of the replicated state: every replica must start with the
/// same limits, and a snapshot carries them to the replicas restored from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// The largest value a write may leave at a key (SET, APPEND, ...).
    pub value_size_bytes_max: usize,
    /// The most client sessions kept; registering one more evicts the least
    /// recently used. At least 1.
    pub sessions_max: usize,
}

impl Default for Limits {
    /// Redis' 512 MiB string limit, and room for 65,536 sessions.
    fn default() -> Limits {
        Limits { value_size_bytes_max: 512 * 1024 * 1024, sessions_max: 65_536 }
    }
}

/// The replicated key-value state machine.
///
/// Its methods fall into four kinds:
/// - inputs, one per committed entry, in log order:
///   [`StateMachine::apply`] for a decoded [`Request`],
///   [`StateMachine::apply_encoded`] for a raw entry payload, and
///   [`StateMachine::apply_empty`] for an entry that carries no request (a
///   new leader's empty entry, a membership change);
/// - reads ([`StateMachine::get`], [`StateMachine::range`],
///   [`StateMachine::scan`], ...), callable at any time; making them
///   linearizable (ReadIndex, leases) is the caller's business;
/// - [`StateMachine::snapshot`] and [`StateMachine::restore`], which move the
///   whole state across a snapshot;
/// - getters ([`StateMachine::applied_index`], [`StateMachine::limits`],
///   [`StateMachine::session_count`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateMachine {
    keyspace: Keyspace,
    sessions: SessionTable,
    /// The index of the last entry applied; 0 before the first.
    applied_index: u64,
    limits: Limits,
}

impl StateMachine {
    /// An empty machine, before log index 1.
    pub fn new(limits: Limits) -> StateMachine {
        assert!(limits.sessions_max >= 1, "the session bound must allow a session");
        StateMachine { keyspace: Keyspace::default(), sessions: SessionTable::default(), applied_index: 0, limits }
    }

    /// Applies the request committed at log `index` and returns its reply.
    ///
    /// # Panics
    /// If `index` is not after [`StateMachine::applied_index`]: entries must be
    /// applied once each, in log order.
    pub fn apply(&mut self, index: u64, request: Request) -> Reply {
        self.advance_to(index);
        let Request { session, sequence, command } = request;
        match (session, command) {
            (None, Command::RegisterSession) => {
                let id = self.sessions.register(index, self.limits.sessions_max);
                Reply::Integer(i64::try_from(id.0).expect("log indexes stay below 2^63"))
            }
            (Some(_), Command::RegisterSession) => CommandError::RegisterInsideSession.into(),
            (None, command) => self.execute(index, command),
            (Some(id), command) => self.execute_in_session(index, id, sequence, command),
        }
    }

    /// Decodes the payload committed at log `index` and applies it. A payload
    /// that does not decode fails the same way on every replica: it applies
    /// nothing and replies [`CommandError::Undecodable`].
    pub fn apply_encoded(&mut self, index: u64, payload: &[u8]) -> Reply {
        match Request::decode(payload) {
            Ok(request) => self.apply(index, request),
            Err(_) => {
                self.advance_to(index);
                CommandError::Undecodable.into()
            }
        }
    }

    /// Records that the entry at `index` carries no request, so that
    /// [`StateMachine::applied_index`] (and a snapshot) covers it.
    pub fn apply_empty(&mut self, index: u64) {
        self.advance_to(index);
    }

    /// The index of the last entry applied; 0 before the first.
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// The limits this machine enforces.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The number of live client sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    fn advance_to(&mut self, index: u64) {
        assert!(
            index > self.applied_index,
            "entry {index} applied after entry {}: entries apply once, in log order",
            self.applied_index
        );
        self.applied_index = index;
    }

    fn execute(&mut self, index: u64, command: Command) -> Reply {
        self.keyspace.execute(index, command, self.limits.value_size_bytes_max)
    }

    fn execute_in_session(&mut self, index: u64, id: SessionId, sequence: u64, command: Command) -> Reply {
        match self.sessions.admit(id, sequence, index) {
            Admission::Apply => {
                let reply = self.execute(index, command);
                self.sessions.record(id, sequence, reply.clone());
                reply
            }
            Admission::Replay(reply) => reply,
            Admission::Refuse(error) => error.into(),
        }
    }
}

/// Reads. They see every entry applied so far and change nothing.
impl StateMachine {
    /// The value at `key` (GET).
    pub fn get(&self, key: &[u8]) -> Option<Bytes> {
        self.keyspace.get(key)
    }

    /// The value at `key` with its version, the index that last wrote it
    /// (GETVER).
    pub fn get_version(&self, key: &[u8]) -> Option<Value> {
        self.keyspace.get_version(key)
    }

    /// The value at each key, in order (MGET).
    pub fn mget(&self, keys: &[Bytes]) -> Vec<Option<Bytes>> {
        self.keyspace.mget(keys)
    }

    /// How many of `keys` exist, a key named twice counting twice (EXISTS).
    pub fn exists(&self, keys: &[Bytes]) -> usize {
        self.keyspace.exists(keys)
    }

    /// The length of the value at `key`, 0 if absent (STRLEN).
    pub fn strlen(&self, key: &[u8]) -> usize {
        self.keyspace.strlen(key)
    }

    /// Values of the keys in `[start, end_exclusive)` in byte order, at most
    /// `limit`, alternating key and value when `with_keys` (RANGE).
    /// `end_exclusive` of `None` runs to the last key.
    pub fn range(
        &self,
        start: &[u8],
        end_exclusive: Option<&[u8]>,
        limit: Option<usize>,
        with_keys: bool,
    ) -> Vec<Bytes> {
        self.keyspace.range(start, end_exclusive, limit, with_keys)
    }

    /// One SCAN page: examines up to `count` keys after `cursor` and returns
    /// those matching the glob `pattern`. See [`ScanCursor`].
    pub fn scan(&self, cursor: &ScanCursor, count: usize, pattern: Option<&[u8]>) -> ScanPage {
        self.keyspace.scan(cursor, count, pattern)
    }

    /// The number of keys (DBSIZE).
    pub fn dbsize(&self) -> usize {
        self.keyspace.len()
    }
}

/// Snapshots.
impl StateMachine {
    /// An O(1) image of the whole state, to encode off the apply path.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            applied_index: self.applied_index,
            limits: self.limits,
            entries: self.keyspace.entries(),
            sessions: self.sessions.sessions(),
        }
    }

    /// Rebuilds the machine a snapshot was taken from, after checking that
    /// applying entries could have produced it (a corrupt or foreign snapshot
    /// is refused, never half-installed). The snapshot's limits replace any
    /// configured ones, so the replica agrees with the peer that took it.
    pub fn restore(snapshot: Snapshot) -> Result<StateMachine, RestoreError> {
        let Snapshot { applied_index, limits, entries, sessions } = snapshot;
        if limits.sessions_max == 0 {
            return Err(RestoreError::NoSessionAllowed);
        }
        for (key, value) in &entries {
            check_restored_value(key, value, applied_index, limits)?;
        }
        let sessions = SessionTable::from_sessions(sessions, applied_index, limits.sessions_max)?;
        Ok(StateMachine { keyspace: Keyspace::from_entries(entries), sessions, applied_index, limits })
    }
}

fn check_restored_value(key: &Bytes, value: &Value, applied_index: u64, limits: Limits) -> Result<(), RestoreError> {
    if value.version == 0 || value.version > applied_index {
        return Err(RestoreError::VersionOutOfRange { key: key.clone(), version: value.version, applied_index });
    }
    if value.data.len() > limits.value_size_bytes_max {
        return Err(RestoreError::ValueTooLarge {
            key: key.clone(),
            size_bytes: value.data.len(),
            size_bytes_max: limits.value_size_bytes_max,
        });
    }
    Ok(())
}
