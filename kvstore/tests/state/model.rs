//! The state machine against a reference model: a `BTreeMap` of keys to
//! values (and one of keys to versions), with every command written again in
//! the plainest way. Random sequences of writes and reads must give the same
//! reply, the same read results and the same final contents.

use std::collections::BTreeMap;

use bytes::Bytes;
use kvstore::state::{Command, Limits, Reply, ScanCursor, SetCondition, StateMachine};
use proptest::prelude::*;

/// Small enough that APPEND and long SETs hit it often.
const VALUE_SIZE_BYTES_MAX: usize = 12;

/// The reference model.
#[derive(Debug, Default)]
struct Model {
    values: BTreeMap<Vec<u8>, Vec<u8>>,
    versions: BTreeMap<Vec<u8>, u64>,
}

impl Model {
    fn store(&mut self, index: u64, key: &[u8], value: &[u8]) {
        self.values.insert(key.to_vec(), value.to_vec());
        self.versions.insert(key.to_vec(), index);
    }

    fn bulk(&self, key: &[u8]) -> Reply {
        Reply::Bulk(self.values.get(key).map(|value| Bytes::from(value.clone())))
    }

    fn apply(&mut self, index: u64, command: &Command) -> Reply {
        let too_large = kvstore::state::CommandError::ValueTooLarge { size_bytes_max: VALUE_SIZE_BYTES_MAX };
        let too_large = Reply::Error(too_large);
        match command {
            Command::RegisterSession => unreachable!("the model has no sessions"),
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
                if *get {
                    previous
                } else if allowed {
                    Reply::Ok
                } else {
                    Reply::Bulk(None)
                }
            }
            Command::Del { keys } => {
                let mut removed = 0;
                for key in keys {
                    if self.values.remove(key.as_ref()).is_some() {
                        self.versions.remove(key.as_ref());
                        removed += 1;
                    }
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
            Command::IncrBy { key, delta } => self.incr_by(index, key, *delta),
            Command::Append { key, value } => {
                let mut joined = self.values.get(key.as_ref()).cloned().unwrap_or_default();
                joined.extend_from_slice(value);
                if joined.len() > VALUE_SIZE_BYTES_MAX {
                    return too_large;
                }
                self.store(index, key, &joined);
                Reply::Integer(joined.len() as i64)
            }
            Command::Cas { key, expected, new } => {
                let current = self.values.get(key.as_ref()).map(Vec::as_slice);
                let applies = current == expected.as_deref();
                if applies {
                    self.store(index, key, new);
                }
                Reply::Integer(applies as i64)
            }
            Command::CasVersion { key, expected_version, new } => {
                let applies = self.versions.get(key.as_ref()).copied() == *expected_version;
                if applies {
                    self.store(index, key, new);
                }
                Reply::Integer(applies as i64)
            }
        }
    }

    fn incr_by(&mut self, index: u64, key: &[u8], delta: i64) -> Reply {
        let current = match self.values.get(key) {
            None => 0,
            Some(value) => match canonical_integer(value) {
                Some(number) => number,
                None => {
                    return Reply::Error(kvstore::state::CommandError::NotAnInteger);
                }
            },
        };
        match current.checked_add(delta) {
            Some(next) if next.to_string().len() > VALUE_SIZE_BYTES_MAX => {
                Reply::Error(kvstore::state::CommandError::ValueTooLarge { size_bytes_max: VALUE_SIZE_BYTES_MAX })
            }
            Some(next) => {
                self.store(index, key, next.to_string().as_bytes());
                Reply::Integer(next)
            }
            None => Reply::Error(kvstore::state::CommandError::IncrementOverflow),
        }
    }
}

/// Redis accepts exactly the integers written the way it would write them.
fn canonical_integer(text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?;
    let number: i64 = text.parse().ok()?;
    (number.to_string() == text).then_some(number)
}

/// One piece of a generated glob pattern.
#[derive(Clone, Debug)]
enum Piece {
    Literal(u8),
    AnyByte,
    Star,
    /// `[ab]`, or `[^ab]` when negated.
    Class(bool),
}

fn render(pattern: &[Piece]) -> Vec<u8> {
    let mut rendered = Vec::new();
    for piece in pattern {
        match piece {
            Piece::Literal(byte) => rendered.push(*byte),
            Piece::AnyByte => rendered.push(b'?'),
            Piece::Star => rendered.push(b'*'),
            Piece::Class(false) => rendered.extend_from_slice(b"[ab]"),
            Piece::Class(true) => rendered.extend_from_slice(b"[^ab]"),
        }
    }
    rendered
}

/// A glob matcher written for clarity: the text positions each prefix of the pattern can
/// reach, piece by piece (backtracking takes exponential time on patterns with many stars).
fn glob(pattern: &[Piece], text: &[u8]) -> bool {
    let mut reachable = vec![false; text.len() + 1];
    reachable[0] = true;
    for piece in pattern {
        let mut next = vec![false; text.len() + 1];
        for position in (0..=text.len()).filter(|&position| reachable[position]) {
            let one = |byte: u8| match piece {
                Piece::Literal(literal) => *literal == byte,
                Piece::AnyByte | Piece::Star => true,
                Piece::Class(negated) => (byte == b'a' || byte == b'b') != *negated,
            };
            match piece {
                Piece::Star => next[position..].fill(true),
                _ if position < text.len() && one(text[position]) => next[position + 1] = true,
                _ => {}
            }
        }
        reachable = next;
    }
    reachable[text.len()]
}

/// A generated step: a write, or a read to compare.
#[derive(Clone, Debug)]
enum Step {
    Write(Command),
    /// CAS on the version the key has now (or a wrong one), so it can hit.
    CasCurrentVersion {
        key: Bytes,
        new: Bytes,
        off_by_one: bool,
    },
    Get(Bytes),
    GetVersion(Bytes),
    MGet(Vec<Bytes>),
    Exists(Vec<Bytes>),
    Strlen(Bytes),
    Range {
        start: Bytes,
        end: Option<Bytes>,
        limit: Option<usize>,
        with_keys: bool,
    },
    Scan {
        count: usize,
        pattern: Option<Vec<Piece>>,
    },
}

pub fn key() -> impl Strategy<Value = Bytes> {
    prop::sample::select(vec!["", "a", "ab", "b", "b\0", "ba", "c"])
        .prop_map(|text: &str| Bytes::from_static(text.as_bytes()))
}

pub fn value() -> impl Strategy<Value = Bytes> {
    let values = vec![
        "",
        "x",
        "ab",
        "0",
        "1",
        "-1",
        "41",
        "007",
        "-0",
        "hello world",
        "9223372036854775807",
        "-9223372036854775808",
        "thirteen byte",
    ];
    prop::sample::select(values).prop_map(|text: &str| Bytes::from_static(text.as_bytes()))
}

fn condition() -> impl Strategy<Value = SetCondition> {
    prop::sample::select(vec![SetCondition::None, SetCondition::Nx, SetCondition::Xx])
}

/// Every write command but RegisterSession, with arguments that collide.
pub fn command() -> impl Strategy<Value = Command> {
    let delta = prop::sample::select(vec![1, -1, 0, 7, -20, i64::MAX, i64::MIN]);
    prop_oneof![
        (key(), value()).prop_map(|(key, value)| Command::Put { key, value }),
        (key(), value(), condition(), any::<bool>())
            .prop_map(|(key, value, condition, get)| { Command::Set { key, value, condition, get } }),
        prop::collection::vec(key(), 0..4).prop_map(|keys| Command::Del { keys }),
        prop::collection::vec((key(), value()), 0..4).prop_map(|pairs| Command::MSet { pairs }),
        (key(), delta).prop_map(|(key, delta)| Command::IncrBy { key, delta }),
        (key(), value()).prop_map(|(key, value)| Command::Append { key, value }),
        (key(), prop::option::of(value()), value()).prop_map(|(key, expected, new)| Command::Cas {
            key,
            expected,
            new
        }),
        (key(), prop::option::of(0..40u64), value())
            .prop_map(|(key, expected_version, new)| { Command::CasVersion { key, expected_version, new } }),
    ]
}

fn pattern() -> impl Strategy<Value = Vec<Piece>> {
    let piece = prop_oneof![
        prop::sample::select(vec![b'a', b'b', b'c', 0]).prop_map(Piece::Literal),
        Just(Piece::AnyByte),
        Just(Piece::Star),
        any::<bool>().prop_map(Piece::Class),
    ];
    prop::collection::vec(piece, 0..4)
}

fn step() -> impl Strategy<Value = Step> {
    let keys = || prop::collection::vec(key(), 0..4);
    prop_oneof![
        6 => command().prop_map(Step::Write),
        1 => (key(), value(), any::<bool>())
            .prop_map(|(key, new, off_by_one)| Step::CasCurrentVersion { key, new, off_by_one }),
        1 => key().prop_map(Step::Get),
        1 => key().prop_map(Step::GetVersion),
        1 => keys().prop_map(Step::MGet),
        1 => keys().prop_map(Step::Exists),
        1 => key().prop_map(Step::Strlen),
        1 => (key(), prop::option::of(key()), prop::option::of(0..4usize), any::<bool>())
            .prop_map(|(start, end, limit, with_keys)| Step::Range { start, end, limit, with_keys }),
        1 => (1..4usize, prop::option::of(pattern()))
            .prop_map(|(count, pattern)| Step::Scan { count, pattern }),
    ]
}

/// Runs one step on both sides and compares what they answer.
fn check_step(machine: &mut StateMachine, model: &mut Model, step: Step) {
    let index = machine.applied_index() + 1;
    match step {
        Step::Write(command) => {
            let expected = model.apply(index, &command);
            assert_eq!(machine.apply(index, crate::support::plain(command)), expected);
        }
        Step::CasCurrentVersion { key, new, off_by_one } => {
            let version = model.versions.get(key.as_ref()).copied();
            let expected_version = version.map(|version| version + u64::from(off_by_one));
            let command = Command::CasVersion { key, expected_version, new };
            check_step(machine, model, Step::Write(command));
        }
        Step::Get(key) => assert_eq!(Reply::Bulk(machine.get(&key)), model.bulk(&key)),
        Step::GetVersion(key) => {
            let actual = machine.get_version(&key).map(|value| (value.data.to_vec(), value.version));
            let expected = model.values.get(key.as_ref()).map(|value| (value.clone(), model.versions[key.as_ref()]));
            assert_eq!(actual, expected);
        }
        Step::MGet(keys) => {
            let expected: Vec<Reply> = keys.iter().map(|key| model.bulk(key)).collect();
            let actual: Vec<Reply> = machine.mget(&keys).into_iter().map(Reply::Bulk).collect();
            assert_eq!(actual, expected);
        }
        Step::Exists(keys) => {
            let expected = keys.iter().filter(|key| model.values.contains_key(key.as_ref())).count();
            assert_eq!(machine.exists(&keys), expected);
        }
        Step::Strlen(key) => {
            let expected = model.values.get(key.as_ref()).map_or(0, Vec::len);
            assert_eq!(machine.strlen(&key), expected);
        }
        Step::Range { start, end, limit, with_keys } => {
            let actual = machine.range(&start, end.as_deref(), limit, with_keys);
            assert_eq!(actual, model_range(model, &start, end.as_deref(), limit, with_keys));
        }
        Step::Scan { count, pattern } => check_full_scan(machine, model, count, pattern),
    }
}

fn model_range(model: &Model, start: &[u8], end: Option<&[u8]>, limit: Option<usize>, with_keys: bool) -> Vec<Bytes> {
    let in_range = |key: &Vec<u8>| key.as_slice() >= start && !matches!(end, Some(end) if key.as_slice() >= end);
    let selected = model.values.iter().filter(|(key, _)| in_range(key));
    let mut result = Vec::new();
    for (key, value) in selected.take(limit.unwrap_or(usize::MAX)) {
        if with_keys {
            result.push(Bytes::from(key.clone()));
        }
        result.push(Bytes::from(value.clone()));
    }
    result
}

/// A whole SCAN iteration, without writes between pages, returns exactly the
/// matching keys in order.
fn check_full_scan(machine: &StateMachine, model: &Model, count: usize, pattern: Option<Vec<Piece>>) {
    let rendered = pattern.as_deref().map(render);
    let mut cursor = ScanCursor::Start;
    let mut returned = Vec::new();
    for _ in 0..=model.values.len() {
        let page = machine.scan(&cursor, count, rendered.as_deref());
        assert!(page.keys.len() <= count, "count bounds the work of a page");
        returned.extend(page.keys.iter().map(|key| key.to_vec()));
        cursor = page.next;
        if cursor == ScanCursor::Start {
            break;
        }
    }
    assert_eq!(cursor, ScanCursor::Start, "the iteration ends");
    let wanted = |key: &&Vec<u8>| match pattern.as_deref() {
        Some(pattern) => glob(pattern, key),
        None => true,
    };
    let expected: Vec<Vec<u8>> = model.values.keys().filter(wanted).cloned().collect();
    assert_eq!(returned, expected);
}

/// The whole keyspace, keys and versions, equals the model's.
fn check_contents(machine: &StateMachine, model: &Model) {
    let everything = machine.range(b"", None, None, true);
    let expected = model_range(model, b"", None, None, true);
    assert_eq!(everything, expected);
    assert_eq!(machine.dbsize(), model.values.len());
    for (key, version) in &model.versions {
        assert_eq!(machine.get_version(key).map(|value| value.version), Some(*version));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn machine_agrees_with_the_model(steps in prop::collection::vec(step(), 1..80)) {
        let limits = Limits { value_size_bytes_max: VALUE_SIZE_BYTES_MAX, ..Limits::default() };
        let mut machine = StateMachine::new(limits);
        let mut model = Model::default();
        for step in steps {
            check_step(&mut machine, &mut model, step);
        }
        check_contents(&machine, &model);
    }
}
