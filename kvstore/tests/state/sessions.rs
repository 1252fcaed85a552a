//! Client sessions: a retried write applies once and answers its first reply;
//! stale sequences and expired sessions are refused without applying.

use kvstore::state::{Command, CommandError, Limits, Reply, SessionId, Snapshot, StateMachine};

use crate::support::{bytes, in_session, incr_by, put, Driver};

#[test]
fn session_id_is_the_index_of_its_registration() {
    let mut driver = Driver::new(Limits::default());
    driver.write(put("k", "v"));
    driver.machine.apply_empty(5);
    assert_eq!(driver.next_index(), 6);
    assert_eq!(driver.register(), SessionId(6));
    assert_eq!(driver.machine.session_count(), 1);
}

#[test]
fn retry_with_same_sequence_applies_once_and_replays_the_reply() {
    let mut driver = Driver::new(Limits::default());
    let session = driver.register();
    assert_eq!(driver.apply(in_session(session, 1, incr_by("n", 1))), Reply::Integer(1));
    // Another client moves the counter; the retry must not apply again and
    // must answer what the first attempt answered.
    driver.write(incr_by("n", 10));
    assert_eq!(driver.apply(in_session(session, 1, incr_by("n", 1))), Reply::Integer(1));
    assert_eq!(driver.get("n").as_deref(), Some("11"));
    assert_eq!(driver.apply(in_session(session, 2, incr_by("n", 1))), Reply::Integer(12));
}

#[test]
fn a_cached_error_is_replayed_not_reevaluated() {
    let mut driver = Driver::new(Limits::default());
    let session = driver.register();
    driver.write(put("n", "not a number"));
    let not_integer = Reply::Error(CommandError::NotAnInteger);
    assert_eq!(driver.apply(in_session(session, 1, incr_by("n", 1))), not_integer);
    driver.write(put("n", "5"));
    assert_eq!(driver.apply(in_session(session, 1, incr_by("n", 1))), not_integer);
    assert_eq!(driver.get("n").as_deref(), Some("5"));
}

#[test]
fn stale_sequence_is_refused_without_applying() {
    let mut driver = Driver::new(Limits::default());
    let session = driver.register();
    driver.apply(in_session(session, 1, put("k", "one")));
    driver.apply(in_session(session, 3, put("k", "three")));
    let stale = Reply::Error(CommandError::StaleSequence { sequence: 2, last_sequence: 3 });
    assert_eq!(driver.apply(in_session(session, 2, put("k", "two"))), stale);
    assert_eq!(driver.get("k").as_deref(), Some("three"));
    let zero = driver.apply(in_session(session, 0, put("k", "zero")));
    assert!(matches!(zero, Reply::Error(CommandError::StaleSequence { .. })));
}

#[test]
fn evicted_session_is_refused_and_never_applies_twice() {
    let limits = Limits { sessions_max: 2, ..Limits::default() };
    let mut driver = Driver::new(limits);
    let oldest = driver.register();
    let recent = driver.register();
    assert_eq!(driver.apply(in_session(oldest, 1, incr_by("n", 1))), Reply::Integer(1));
    // `recent` has been idle longest now, so the next registration evicts it.
    let newest = driver.register();
    let expired = Reply::Error(CommandError::SessionExpired);
    assert_eq!(driver.apply(in_session(recent, 1, incr_by("n", 1))), expired);
    assert_eq!(driver.apply(in_session(oldest, 1, incr_by("n", 1))), Reply::Integer(1));
    assert_eq!(driver.apply(in_session(newest, 1, incr_by("n", 1))), Reply::Integer(2));
    driver.register();
    driver.register();
    assert_eq!(driver.apply(in_session(oldest, 1, incr_by("n", 1))), expired);
    assert_eq!(driver.get("n").as_deref(), Some("2"), "refused retries applied nothing");
    assert_eq!(driver.machine.session_count(), 2);
    assert_eq!(CommandError::SessionExpired.to_string(), "ERR session expired");
}

#[test]
fn unknown_session_and_nested_registration_are_refused() {
    let mut driver = Driver::new(Limits::default());
    let expired = Reply::Error(CommandError::SessionExpired);
    assert_eq!(driver.apply(in_session(SessionId(99), 1, put("k", "v"))), expired);
    let session = driver.register();
    let nested = driver.apply(in_session(session, 1, Command::RegisterSession));
    assert_eq!(nested, Reply::Error(CommandError::RegisterInsideSession));
    assert_eq!(driver.machine.session_count(), 1);
    assert_eq!(driver.machine.dbsize(), 0);
}

#[test]
fn dedup_survives_a_snapshot_round_trip() {
    let mut driver = Driver::new(Limits::default());
    let session = driver.register();
    let first = driver.apply(in_session(
        session,
        1,
        Command::Set { key: bytes("k"), value: bytes("new"), condition: kvstore::state::SetCondition::None, get: true },
    ));
    assert_eq!(first, Reply::Bulk(None));
    let encoded = driver.machine.snapshot().encode();
    let snapshot = Snapshot::decode(&encoded).expect("a snapshot decodes");
    driver.machine = StateMachine::restore(snapshot).expect("a snapshot restores");
    driver.write(put("k", "other"));
    // A retry is recognised by its sequence alone; its command is not re-read.
    let retry = driver.apply(in_session(session, 1, put("k", "ignored")));
    assert_eq!(retry, Reply::Bulk(None), "the cached reply, not a new one");
    assert_eq!(driver.get("k").as_deref(), Some("other"));
}
