//! The KV state machine against a reference model: a `BTreeMap` of keys to values and
//! versions, and one of client sessions, with every command written again in the plainest
//! way (after `kvstore/tests/state/model.rs`, which has no sessions).
//!
//! Input: a sequence of steps (derived with `arbitrary`): writes in or outside a session,
//! session registrations, raw entry payloads, empty entries, reads, full SCANs, and
//! snapshot round trips. Keys come from a small set so that commands collide.
//!
//! Checks: every reply and read agrees with the model; a raw payload applies exactly as
//! its decoded request would (or is refused as undecodable); a snapshot encodes, decodes
//! and restores to an equal machine; arbitrary snapshot bytes are refused or restored,
//! never a panic; at the end, the whole keyspace equals the model's.
#![no_main]

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use bytes::Bytes;
use kvstore::state::{
    Command, CommandError, Limits, Reply, Request, ScanCursor, SessionId, SetCondition, Snapshot, StateMachine,
};
use libfuzzer_sys::fuzz_target;

/// Small, so that APPEND, INCR and long SETs hit it often.
const VALUE_SIZE_BYTES_MAX: usize = 12;
/// Small, so that registrations evict sessions.
const SESSIONS_MAX: usize = 3;
const KEYS: [&[u8]; 7] = [b"", b"a", b"ab", b"b", b"b\0", b"ba", b"c"];

#[derive(Arbitrary, Debug)]
enum Step {
    /// `session` picks a session registered so far (expired ones included), or none.
    Write {
        session: Option<u8>,
        sequence: u8,
        command: FuzzCommand,
    },
    Register,
    Payload(Vec<u8>),
    Empty,
    Get(Key),
    GetVersion(Key),
    MGet(Vec<Key>),
    Exists(Vec<Key>),
    Strlen(Key),
    Range {
        start: Key,
        end: Option<Key>,
        limit: Option<u8>,
        with_keys: bool,
    },
    Scan {
        count: u8,
        pattern: Option<Vec<Piece>>,
    },
    /// Any bytes as a MATCH pattern: only the shape of the answer is checked.
    ScanRaw {
        count: u8,
        pattern: Vec<u8>,
    },
    SnapshotRoundTrip,
    RestoreBytes(Vec<u8>),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
struct Key(u8);

impl Key {
    fn bytes(self) -> Bytes {
        Bytes::from_static(KEYS[usize::from(self.0) % KEYS.len()])
    }
}

#[derive(Arbitrary, Debug)]
enum FuzzCommand {
    Put(Key, Vec<u8>),
    Set(Key, Vec<u8>, u8, bool),
    Del(Vec<Key>),
    MSet(Vec<(Key, Vec<u8>)>),
    IncrBy(Key, i64),
    Append(Key, Vec<u8>),
    Cas(Key, Option<Vec<u8>>, Vec<u8>),
    CasVersion(Key, Option<u64>, Vec<u8>),
}

impl FuzzCommand {
    fn command(self) -> Command {
        let conditions = [SetCondition::None, SetCondition::Nx, SetCondition::Xx];
        match self {
            FuzzCommand::Put(key, value) => Command::Put { key: key.bytes(), value: value.into() },
            FuzzCommand::Set(key, value, condition, get) => {
                let condition = conditions[usize::from(condition) % conditions.len()];
                Command::Set { key: key.bytes(), value: value.into(), condition, get }
            }
            FuzzCommand::Del(keys) => Command::Del { keys: keys.into_iter().map(Key::bytes).collect() },
            FuzzCommand::MSet(pairs) => {
                Command::MSet { pairs: pairs.into_iter().map(|(key, value)| (key.bytes(), value.into())).collect() }
            }
            FuzzCommand::IncrBy(key, delta) => Command::IncrBy { key: key.bytes(), delta },
            FuzzCommand::Append(key, value) => Command::Append { key: key.bytes(), value: value.into() },
            FuzzCommand::Cas(key, expected, new) => {
                Command::Cas { key: key.bytes(), expected: expected.map(Bytes::from), new: new.into() }
            }
            FuzzCommand::CasVersion(key, expected_version, new) => {
                Command::CasVersion { key: key.bytes(), expected_version, new: new.into() }
            }
        }
    }
}

/// One piece of a MATCH pattern the model understands.
#[derive(Arbitrary, Debug)]
enum Piece {
    Literal(u8),
    AnyByte,
    Star,
    /// `[ab]`, or `[^ab]` when negated.
    Class {
        negated: bool,
    },
}

impl Piece {
    fn literal(byte: u8) -> u8 {
        b"abc\0"[usize::from(byte) % 4]
    }

    fn render(pattern: &[Piece]) -> Vec<u8> {
        let mut rendered = Vec::new();
        for piece in pattern {
            match piece {
                Piece::Literal(byte) => rendered.push(Piece::literal(*byte)),
                Piece::AnyByte => rendered.push(b'?'),
                Piece::Star => rendered.push(b'*'),
                Piece::Class { negated: false } => rendered.extend_from_slice(b"[ab]"),
                Piece::Class { negated: true } => rendered.extend_from_slice(b"[^ab]"),
            }
        }
        rendered
    }

    /// A glob matcher written for clarity: the text positions each prefix of the pattern can
    /// reach, piece by piece. (Backtracking, the obvious alternative, takes exponential time
    /// on patterns with many stars: the fuzzer found one that ran for over 30 seconds.)
    fn matches(pattern: &[Piece], text: &[u8]) -> bool {
        let mut reachable = vec![false; text.len() + 1];
        reachable[0] = true;
        for piece in pattern {
            let mut next = vec![false; text.len() + 1];
            for position in (0..=text.len()).filter(|&position| reachable[position]) {
                match piece {
                    Piece::Star => next[position..].fill(true),
                    _ if position < text.len() && piece.matches_byte(text[position]) => next[position + 1] = true,
                    _ => {}
                }
            }
            reachable = next;
        }
        reachable[text.len()]
    }

    fn matches_byte(&self, byte: u8) -> bool {
        match self {
            Piece::Literal(literal) => Piece::literal(*literal) == byte,
            Piece::AnyByte => true,
            Piece::Class { negated } => (byte == b'a' || byte == b'b') != *negated,
            Piece::Star => true,
        }
    }
}

/// The reference model.
#[derive(Debug, Default)]
struct Model {
    /// Value and version (the index that wrote it) of every key.
    values: BTreeMap<Vec<u8>, (Vec<u8>, u64)>,
    sessions: BTreeMap<u64, ModelSession>,
    /// Every session id ever registered, so that steps can name expired ones.
    registered: Vec<u64>,
}

#[derive(Debug)]
struct ModelSession {
    last_sequence: u64,
    last_reply: Option<Reply>,
    last_active_index: u64,
}

impl Model {
    fn apply(&mut self, index: u64, request: &Request) -> Reply {
        let Some(SessionId(id)) = request.session else {
            return match &request.command {
                Command::RegisterSession => self.register(index),
                command => self.execute(index, command),
            };
        };
        if request.command == Command::RegisterSession {
            return CommandError::RegisterInsideSession.into();
        }
        let Some(session) = self.sessions.get_mut(&id) else { return CommandError::SessionExpired.into() };
        session.last_active_index = index;
        let last_sequence = session.last_sequence;
        match (&session.last_reply, request.sequence) {
            (_, sequence) if sequence > last_sequence => {
                let reply = self.execute(index, &request.command);
                let session = self.sessions.get_mut(&id).expect("still registered");
                (session.last_sequence, session.last_reply) = (sequence, Some(reply.clone()));
                reply
            }
            (Some(reply), sequence) if sequence == last_sequence => reply.clone(),
            (_, sequence) => CommandError::StaleSequence { sequence, last_sequence }.into(),
        }
    }

    fn register(&mut self, index: u64) -> Reply {
        while self.sessions.len() >= SESSIONS_MAX {
            let idlest = self.sessions.iter().min_by_key(|(_, session)| session.last_active_index);
            let idlest = *idlest.expect("not empty").0;
            self.sessions.remove(&idlest);
        }
        let session = ModelSession { last_sequence: 0, last_reply: None, last_active_index: index };
        self.sessions.insert(index, session);
        self.registered.push(index);
        Reply::Integer(index as i64)
    }

    fn execute(&mut self, index: u64, command: &Command) -> Reply {
        let too_large = Reply::Error(CommandError::ValueTooLarge { size_bytes_max: VALUE_SIZE_BYTES_MAX });
        match command {
            Command::RegisterSession => unreachable!("registration is not a keyspace command"),
            Command::Put { value, .. }
            | Command::Set { value, .. }
            | Command::Cas { new: value, .. }
            | Command::CasVersion { new: value, .. }
                if value.len() > VALUE_SIZE_BYTES_MAX =>
            {
                too_large
            }
            Command::Put { key, value } => {
                self.store(index, key, value);
                Reply::Integer(1)
            }
            Command::Set { key, value, condition, get } => {
                let previous = self.bulk(key);
                let exists = self.values.contains_key(key.as_ref());
                let allowed = match condition {
                    SetCondition::None => true,
                    SetCondition::Nx => !exists,
                    SetCondition::Xx => exists,
                };
                if allowed {
                    self.store(index, key, value);
                }
                match (get, allowed) {
                    (true, _) => previous,
                    (false, true) => Reply::Ok,
                    (false, false) => Reply::Bulk(None),
                }
            }
            Command::Del { keys } => {
                let mut removed = 0;
                for key in keys {
                    removed += i64::from(self.values.remove(key.as_ref()).is_some());
                }
                Reply::Integer(removed)
            }
            Command::MSet { pairs } => {
                if pairs.iter().any(|(_, value)| value.len() > VALUE_SIZE_BYTES_MAX) {
                    return too_large;
                }
                for (key, value) in pairs {
                    self.store(index, key, value);
                }
                Reply::Ok
            }
            Command::IncrBy { key, delta } => {
                let current = match self.values.get(key.as_ref()) {
                    None => 0,
                    Some((value, _)) => match canonical_integer(value) {
                        Some(number) => number,
                        None => return CommandError::NotAnInteger.into(),
                    },
                };
                match current.checked_add(*delta) {
                    None => CommandError::IncrementOverflow.into(),
                    Some(next) if next.to_string().len() > VALUE_SIZE_BYTES_MAX => too_large,
                    Some(next) => {
                        self.store(index, key, next.to_string().as_bytes());
                        Reply::Integer(next)
                    }
                }
            }
            Command::Append { key, value } => {
                let mut joined = self.values.get(key.as_ref()).map(|(value, _)| value.clone()).unwrap_or_default();
                joined.extend_from_slice(value);
                if joined.len() > VALUE_SIZE_BYTES_MAX {
                    return too_large;
                }
                self.store(index, key, &joined);
                Reply::Integer(joined.len() as i64)
            }
            Command::Cas { key, expected, new } => {
                let applies = self.values.get(key.as_ref()).map(|(value, _)| &value[..]) == expected.as_deref();
                if applies {
                    self.store(index, key, new);
                }
                Reply::Integer(i64::from(applies))
            }
            Command::CasVersion { key, expected_version, new } => {
                let applies = self.values.get(key.as_ref()).map(|(_, version)| *version) == *expected_version;
                if applies {
                    self.store(index, key, new);
                }
                Reply::Integer(i64::from(applies))
            }
        }
    }

    fn store(&mut self, index: u64, key: &[u8], value: &[u8]) {
        self.values.insert(key.to_vec(), (value.to_vec(), index));
    }

    fn bulk(&self, key: &[u8]) -> Reply {
        Reply::Bulk(self.values.get(key).map(|(value, _)| Bytes::from(value.clone())))
    }

    fn range(&self, start: &[u8], end: Option<&[u8]>, limit: Option<usize>, with_keys: bool) -> Vec<Bytes> {
        let in_range = |key: &&Vec<u8>| key.as_slice() >= start && end.is_none_or(|end| key.as_slice() < end);
        let selected = self.values.iter().filter(|(key, _)| in_range(key)).take(limit.unwrap_or(usize::MAX));
        let mut result = Vec::new();
        for (key, (value, _)) in selected {
            if with_keys {
                result.push(Bytes::from(key.clone()));
            }
            result.push(Bytes::from(value.clone()));
        }
        result
    }
}

/// Redis accepts exactly the integers written the way it would write them.
fn canonical_integer(text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?;
    let number: i64 = text.parse().ok()?;
    (number.to_string() == text).then_some(number)
}

fuzz_target!(|steps: Vec<Step>| {
    let limits = Limits { value_size_bytes_max: VALUE_SIZE_BYTES_MAX, sessions_max: SESSIONS_MAX };
    let mut machine = StateMachine::new(limits);
    let mut model = Model::default();
    for step in steps {
        check_step(&mut machine, &mut model, step);
    }
    let keys: Vec<Bytes> = model.values.keys().map(|key| Bytes::from(key.clone())).collect();
    assert_eq!(machine.range(b"", None, None, true), model.range(b"", None, None, true));
    for (key, (value, version)) in keys.iter().zip(model.values.values()) {
        let stored = machine.get_version(key).expect("present");
        assert_eq!((&stored.data[..], stored.version), (&value[..], *version));
    }
    assert_eq!(machine.dbsize(), model.values.len());
    assert_eq!(machine.session_count(), model.sessions.len());
});

fn check_step(machine: &mut StateMachine, model: &mut Model, step: Step) {
    let index = machine.applied_index() + 1;
    match step {
        Step::Write { session, sequence, command } => {
            let session = session.map(|pick| {
                // One past the registered ones: an id that never existed.
                let ids = &model.registered;
                SessionId(ids.get(usize::from(pick) % (ids.len() + 1)).copied().unwrap_or(u64::MAX))
            });
            let request = Request { session, sequence: u64::from(sequence), command: command.command() };
            assert_eq!(machine.apply(index, request.clone()), model.apply(index, &request), "{request:?}");
        }
        Step::Register => {
            let request = Request { session: None, sequence: 0, command: Command::RegisterSession };
            assert_eq!(machine.apply(index, request.clone()), model.apply(index, &request));
        }
        Step::Payload(payload) => {
            let expected = match Request::decode(&payload) {
                Ok(request) => model.apply(index, &request),
                Err(_) => CommandError::Undecodable.into(),
            };
            assert_eq!(machine.apply_encoded(index, &payload), expected);
        }
        Step::Empty => machine.apply_empty(index),
        Step::Get(key) => assert_eq!(Reply::Bulk(machine.get(&key.bytes())), model.bulk(&key.bytes())),
        Step::GetVersion(key) => {
            let actual = machine.get_version(&key.bytes()).map(|value| (value.data.to_vec(), value.version));
            assert_eq!(actual, model.values.get(&key.bytes()[..]).cloned());
        }
        Step::MGet(keys) => {
            let keys: Vec<Bytes> = keys.into_iter().map(Key::bytes).collect();
            let actual: Vec<Reply> = machine.mget(&keys).into_iter().map(Reply::Bulk).collect();
            assert_eq!(actual, keys.iter().map(|key| model.bulk(key)).collect::<Vec<_>>());
        }
        Step::Exists(keys) => {
            let keys: Vec<Bytes> = keys.into_iter().map(Key::bytes).collect();
            let expected = keys.iter().filter(|key| model.values.contains_key(key.as_ref())).count();
            assert_eq!(machine.exists(&keys), expected);
        }
        Step::Strlen(key) => {
            let expected = model.values.get(&key.bytes()[..]).map_or(0, |(value, _)| value.len());
            assert_eq!(machine.strlen(&key.bytes()), expected);
        }
        Step::Range { start, end, limit, with_keys } => {
            let (start, end, limit) = (start.bytes(), end.map(Key::bytes), limit.map(usize::from));
            let actual = machine.range(&start, end.as_deref(), limit, with_keys);
            assert_eq!(actual, model.range(&start, end.as_deref(), limit, with_keys));
        }
        Step::Scan { count, pattern } => {
            let rendered = pattern.as_deref().map(Piece::render);
            let returned = full_scan(machine, count, rendered.as_deref());
            let wanted = |key: &&Vec<u8>| pattern.as_deref().is_none_or(|pattern| Piece::matches(pattern, key));
            let expected: Vec<Vec<u8>> = model.values.keys().filter(wanted).cloned().collect();
            assert_eq!(returned, expected);
        }
        Step::ScanRaw { count, pattern } => {
            let returned = full_scan(machine, count, Some(&pattern));
            assert!(returned.iter().all(|key| model.values.contains_key(key)), "SCAN returned a missing key");
            assert!(returned.windows(2).all(|pair| pair[0] < pair[1]), "SCAN returned keys out of order");
        }
        Step::SnapshotRoundTrip => {
            let decoded = Snapshot::decode(&machine.snapshot().encode()).expect("a snapshot decodes");
            assert_eq!(&StateMachine::restore(decoded).expect("a snapshot restores"), machine);
        }
        Step::RestoreBytes(bytes) => {
            if let Ok(snapshot) = Snapshot::decode(&bytes) {
                // Refusing is fine; panicking is not.
                let _restored_or_refused = StateMachine::restore(snapshot);
            }
        }
    }
}

/// A whole SCAN iteration, without writes between pages.
fn full_scan(machine: &StateMachine, count: u8, pattern: Option<&[u8]>) -> Vec<Vec<u8>> {
    let count = 1 + usize::from(count % 4);
    let mut cursor = ScanCursor::Start;
    let mut returned = Vec::new();
    for _ in 0..=machine.dbsize() {
        let page = machine.scan(&cursor, count, pattern);
        assert!(page.keys.len() <= count, "count bounds the work of a page");
        returned.extend(page.keys.iter().map(|key| key.to_vec()));
        cursor = page.next;
        if cursor == ScanCursor::Start {
            return returned;
        }
    }
    panic!("a SCAN iteration did not end after one page per key");
}
