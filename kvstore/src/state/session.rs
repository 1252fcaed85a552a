//! Client sessions: a retried write applies once (the idempotent receiver).
//!
//! A client registers a session through the log ([`Command::RegisterSession`]);
//! its id is the index of that entry. Each write then carries the session id
//! and a sequence number, and the table remembers, per session, the highest
//! sequence applied and the reply it produced:
//! - a higher sequence is new: it applies, and its reply replaces the cached one;
//! - the same sequence is a retry (the client lost the reply, maybe across a
//!   leader change): it does not apply again and gets the cached reply;
//! - a lower sequence is stale: refused, since its reply is no longer kept.
//!
//! A retry is recognised by its sequence number alone; its command is not
//! compared with the first attempt's. Since only the last reply is kept, a
//! client keeps at most one write in flight per session (pipelined writes need
//! one session each, or must wait for one another).
//!
//! # Expiry
//! Sessions expire by a count bound, least recently used first, where "used"
//! is measured in log indexes: registering a session when
//! [`Limits::sessions_max`](super::Limits) exist evicts the one whose last
//! request has the lowest index. Every replica applies the same entries, so
//! every replica evicts the same session; no clock is involved. A request in an
//! evicted (or never registered) session is refused with
//! [`CommandError::SessionExpired`], never applied: an evicted session's
//! history is gone, so applying would risk a second application. For the
//! client, that refusal (like a stale one) means the outcome of its earlier
//! attempt is unknown. The bound should sit well above the number of clients
//! active at once, since a burst of registrations evicts the idlest sessions.
//!
//! [`Command::RegisterSession`]: super::Command::RegisterSession

use std::cmp::Ordering;

use im::OrdMap;
use serde::{Deserialize, Serialize};

use super::command::SessionId;
use super::reply::{CommandError, Reply};
use super::snapshot::RestoreError;

/// What the table remembers about one session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Session {
    /// The highest sequence applied in the session; 0 before the first write.
    last_sequence: u64,
    /// The reply to `last_sequence`; `None` before the first write.
    last_reply: Option<Reply>,
    /// The log index of the session's latest request: its place in LRU order.
    last_active_index: u64,
}

/// What to do with a request that arrived in a session.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Admission {
    /// A new write: apply it, then [`SessionTable::record`] its reply.
    Apply,
    /// A retry of the last write: answer this cached reply, apply nothing.
    Replay(Reply),
    /// Apply nothing and answer this error.
    Refuse(CommandError),
}

/// Every live session, with an index of them by recency for eviction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct SessionTable {
    sessions: OrdMap<SessionId, Session>,
    /// `last_active_index` to session: the first entry is the least recently
    /// used session. Unique keys, since one log index touches one session.
    by_activity: OrdMap<u64, SessionId>,
}

impl SessionTable {
    /// Registers a session at log `index`, evicting least recently used
    /// sessions so that at most `sessions_max` exist afterwards.
    pub(super) fn register(&mut self, index: u64, sessions_max: usize) -> SessionId {
        assert!(sessions_max >= 1, "the session bound must allow a session");
        while self.sessions.len() >= sessions_max {
            self.evict_least_recently_used();
        }
        let id = SessionId(index);
        let session = Session { last_sequence: 0, last_reply: None, last_active_index: index };
        assert!(self.sessions.insert(id, session).is_none(), "session ids are unique");
        assert!(self.by_activity.insert(index, id).is_none(), "one session per index");
        id
    }

    /// Decides what a request with `sequence` in session `id` does, and marks
    /// the session as used at log `index`.
    pub(super) fn admit(&mut self, id: SessionId, sequence: u64, index: u64) -> Admission {
        let Some(session) = self.sessions.get_mut(&id) else {
            return Admission::Refuse(CommandError::SessionExpired);
        };
        let previous_index = session.last_active_index;
        assert!(previous_index < index, "activity moves forward with the log");
        session.last_active_index = index;
        let admission = match (sequence.cmp(&session.last_sequence), &session.last_reply) {
            (Ordering::Greater, _) => Admission::Apply,
            (Ordering::Equal, Some(reply)) => Admission::Replay(reply.clone()),
            // Lower, or 0 before any write: nothing cached answers it.
            _ => Admission::Refuse(CommandError::StaleSequence { sequence, last_sequence: session.last_sequence }),
        };
        assert_eq!(self.by_activity.remove(&previous_index), Some(id));
        assert!(self.by_activity.insert(index, id).is_none(), "one session per index");
        admission
    }

    /// Caches `reply` as the answer to `sequence`, which
    /// [`SessionTable::admit`] has just admitted in session `id`.
    pub(super) fn record(&mut self, id: SessionId, sequence: u64, reply: Reply) {
        let session = self.sessions.get_mut(&id).expect("a session admitted in this entry still exists");
        assert!(sequence > session.last_sequence, "only new writes are recorded");
        session.last_sequence = sequence;
        session.last_reply = Some(reply);
    }

    /// The number of live sessions.
    pub(super) fn len(&self) -> usize {
        self.sessions.len()
    }

    /// An O(1) clone of the sessions, for a snapshot.
    pub(super) fn sessions(&self) -> OrdMap<SessionId, Session> {
        self.sessions.clone()
    }

    /// Rebuilds a table from a snapshot's sessions, checking what a table
    /// built by applying entries up to `applied_index` would satisfy.
    pub(super) fn from_sessions(
        sessions: OrdMap<SessionId, Session>,
        applied_index: u64,
        sessions_max: usize,
    ) -> Result<SessionTable, RestoreError> {
        if sessions.len() > sessions_max {
            return Err(RestoreError::TooManySessions { count: sessions.len(), sessions_max });
        }
        let mut by_activity = OrdMap::new();
        for (id, session) in &sessions {
            let possible = id.0 <= session.last_active_index
                && session.last_active_index <= applied_index
                && by_activity.insert(session.last_active_index, *id).is_none();
            if !possible {
                return Err(RestoreError::SessionActivity { id: *id });
            }
        }
        Ok(SessionTable { sessions, by_activity })
    }

    fn evict_least_recently_used(&mut self) {
        let (index, id) = self
            .by_activity
            .get_min()
            .map(|(index, id)| (*index, *id))
            .expect("a full table has a least recently used session");
        self.by_activity.remove(&index);
        assert!(self.sessions.remove(&id).is_some(), "the recency index is exact");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_with(sessions_max: usize, indexes: &[u64]) -> SessionTable {
        let mut table = SessionTable::default();
        for &index in indexes {
            table.register(index, sessions_max);
        }
        table
    }

    #[test]
    fn new_sequence_applies_and_retry_replays_cached_reply() {
        let mut table = table_with(4, &[1]);
        let id = SessionId(1);
        assert_eq!(table.admit(id, 1, 2), Admission::Apply);
        table.record(id, 1, Reply::Integer(7));
        assert_eq!(table.admit(id, 1, 3), Admission::Replay(Reply::Integer(7)));
        assert_eq!(table.admit(id, 2, 4), Admission::Apply);
    }

    #[test]
    fn lower_or_zero_sequence_is_stale() {
        let mut table = table_with(4, &[1]);
        let id = SessionId(1);
        let stale_zero = CommandError::StaleSequence { sequence: 0, last_sequence: 0 };
        assert_eq!(table.admit(id, 0, 2), Admission::Refuse(stale_zero));
        assert_eq!(table.admit(id, 5, 3), Admission::Apply);
        table.record(id, 5, Reply::Ok);
        let stale_four = CommandError::StaleSequence { sequence: 4, last_sequence: 5 };
        assert_eq!(table.admit(id, 4, 4), Admission::Refuse(stale_four));
    }

    #[test]
    fn registering_beyond_the_bound_evicts_least_recently_used() {
        let mut table = table_with(2, &[1, 2]);
        // Using session 1 makes session 2 the least recently used.
        assert_eq!(table.admit(SessionId(1), 1, 3), Admission::Apply);
        table.register(4, 2);
        assert_eq!(table.len(), 2);
        let expired = Admission::Refuse(CommandError::SessionExpired);
        assert_eq!(table.admit(SessionId(2), 1, 5), expired);
        assert_eq!(table.admit(SessionId(1), 2, 6), Admission::Apply);
        assert_eq!(table.admit(SessionId(4), 1, 7), Admission::Apply);
    }

    #[test]
    fn restoring_rejects_tables_apply_could_not_build() {
        let table = table_with(4, &[1, 2, 3]);
        let sessions = table.sessions();
        assert_eq!(SessionTable::from_sessions(sessions.clone(), 3, 4), Ok(table.clone()));
        assert_eq!(
            SessionTable::from_sessions(sessions.clone(), 3, 2),
            Err(RestoreError::TooManySessions { count: 3, sessions_max: 2 })
        );
        assert_eq!(
            SessionTable::from_sessions(sessions, 2, 4),
            Err(RestoreError::SessionActivity { id: SessionId(3) })
        );
    }
}
