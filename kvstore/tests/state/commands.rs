//! Redis edge cases of single commands, and CAS between interleaved clients.

use kvstore::state::{Command, CommandError, Limits, Reply, SetCondition};
use proptest::prelude::*;

use crate::support::{bytes, in_session, incr_by, put, Driver};

fn set(key: &str, value: &str, condition: SetCondition, get: bool) -> Command {
    Command::Set { key: bytes(key), value: bytes(value), condition, get }
}

#[test]
fn set_follows_redis_nx_xx_get_replies() {
    let mut driver = Driver::new(Limits::default());
    let nil = Reply::Bulk(None);
    assert_eq!(driver.write(set("k", "1", SetCondition::Xx, false)), nil);
    assert_eq!(driver.get("k"), None, "XX on an absent key writes nothing");
    assert_eq!(driver.write(set("k", "1", SetCondition::Nx, false)), Reply::Ok);
    assert_eq!(driver.write(set("k", "2", SetCondition::Nx, false)), nil);
    assert_eq!(driver.get("k").as_deref(), Some("1"));
    assert_eq!(driver.write(set("k", "3", SetCondition::Xx, true)), Reply::Bulk(Some(bytes("1"))));
    // NX with GET on an existing key: replies the old value, writes nothing.
    assert_eq!(driver.write(set("k", "4", SetCondition::Nx, true)), Reply::Bulk(Some(bytes("3"))));
    assert_eq!(driver.get("k").as_deref(), Some("3"));
    assert_eq!(driver.write(set("new", "5", SetCondition::None, true)), nil);
    assert_eq!(driver.get("new").as_deref(), Some("5"));
    assert_eq!(driver.write(put("p", "P")), Reply::Integer(1));
}

#[test]
fn incr_treats_absent_as_zero_and_stores_decimal_text() {
    let mut driver = Driver::new(Limits::default());
    assert_eq!(driver.write(incr_by("n", 1)), Reply::Integer(1));
    assert_eq!(driver.write(incr_by("n", -21)), Reply::Integer(-20));
    assert_eq!(driver.get("n").as_deref(), Some("-20"));
    assert_eq!(driver.write(incr_by("n", 20)), Reply::Integer(0));
    assert_eq!(driver.get("n").as_deref(), Some("0"));
}

#[test]
fn incr_overflow_is_refused_and_changes_nothing() {
    let mut driver = Driver::new(Limits::default());
    driver.write(put("max", &i64::MAX.to_string()));
    driver.write(put("min", &i64::MIN.to_string()));
    let version_before = driver.machine.get_version(b"max");
    let overflow = Reply::Error(CommandError::IncrementOverflow);
    assert_eq!(driver.write(incr_by("max", 1)), overflow);
    assert_eq!(driver.write(incr_by("min", -1)), overflow);
    assert_eq!(driver.write(incr_by("min", i64::MIN)), overflow);
    assert_eq!(driver.machine.get_version(b"max"), version_before, "no version bump");
    assert_eq!(driver.write(incr_by("max", -1)), Reply::Integer(i64::MAX - 1));
    assert_eq!(driver.write(incr_by("min", i64::MAX)), Reply::Integer(-1));
}

#[test]
fn incr_refuses_values_redis_does_not_read_as_integers() {
    let mut driver = Driver::new(Limits::default());
    for text in ["", "abc", " 1", "1 ", "+1", "-0", "01", "1.0", "9223372036854775808"] {
        driver.write(put("k", text));
        let reply = driver.write(incr_by("k", 1));
        assert_eq!(reply, Reply::Error(CommandError::NotAnInteger), "value {text:?}");
        assert_eq!(driver.get("k").as_deref(), Some(text), "value {text:?} unchanged");
    }
    assert_eq!(CommandError::NotAnInteger.to_string(), "ERR value is not an integer or out of range");
    assert_eq!(CommandError::IncrementOverflow.to_string(), "ERR increment or decrement would overflow");
}

#[test]
fn size_limit_refuses_whole_writes() {
    let limits = Limits { value_size_bytes_max: 4, ..Limits::default() };
    let mut driver = Driver::new(limits);
    let too_large = Reply::Error(CommandError::ValueTooLarge { size_bytes_max: 4 });
    assert_eq!(driver.write(Command::Append { key: bytes("k"), value: bytes("abc") }), Reply::Integer(3));
    assert_eq!(driver.write(Command::Append { key: bytes("k"), value: bytes("d") }), Reply::Integer(4));
    assert_eq!(driver.write(Command::Append { key: bytes("k"), value: bytes("e") }), too_large);
    assert_eq!(driver.get("k").as_deref(), Some("abcd"));
    let pairs = vec![(bytes("a"), bytes("ok")), (bytes("b"), bytes("too long"))];
    assert_eq!(driver.write(Command::MSet { pairs }), too_large);
    assert_eq!(driver.get("a"), None, "MSET is all or nothing");
}

#[test]
fn del_counts_each_existing_key_once() {
    let mut driver = Driver::new(Limits::default());
    driver.write(put("a", "1"));
    driver.write(put("b", "2"));
    let keys = vec![bytes("a"), bytes("a"), bytes("b"), bytes("missing")];
    assert_eq!(driver.write(Command::Del { keys }), Reply::Integer(2));
    assert_eq!(driver.machine.dbsize(), 0);
}

#[test]
fn versions_are_the_index_of_the_last_effective_write() {
    let mut driver = Driver::new(Limits::default());
    driver.write(put("k", "a"));
    assert_eq!(driver.machine.get_version(b"k").map(|value| value.version), Some(1));
    driver.write(set("k", "b", SetCondition::Nx, false));
    driver.write(Command::Cas { key: bytes("k"), expected: Some(bytes("zz")), new: bytes("c") });
    assert_eq!(driver.machine.get_version(b"k").map(|value| value.version), Some(1), "refused writes keep the version");
    driver.write(Command::Append { key: bytes("k"), value: bytes("") });
    assert_eq!(driver.machine.get_version(b"k").map(|value| value.version), Some(4));
}

#[test]
fn value_cas_is_fooled_by_a_value_that_came_back_but_version_cas_is_not() {
    let mut driver = Driver::new(Limits::default());
    driver.write(put("k", "A"));
    let seen = driver.machine.get_version(b"k").expect("k was written");
    driver.write(put("k", "B"));
    driver.write(put("k", "A"));
    let by_version = Command::CasVersion { key: bytes("k"), expected_version: Some(seen.version), new: bytes("C") };
    assert_eq!(driver.write(by_version), Reply::Integer(0));
    let by_value = Command::Cas { key: bytes("k"), expected: Some(seen.data), new: bytes("C") };
    assert_eq!(driver.write(by_value), Reply::Integer(1));
    let when_absent = Command::Cas { key: bytes("other"), expected: None, new: bytes("X") };
    assert_eq!(driver.write(when_absent), Reply::Integer(1));
    assert_eq!(driver.get("other").as_deref(), Some("X"));
}

/// What a client of the interleaving test does next.
#[derive(Clone, Copy, Debug)]
struct Move {
    client: usize,
    /// Whether the client compares versions rather than values.
    by_version: bool,
    /// Whether the client's CAS entry is committed twice (a retry after a
    /// lost reply), which must not count twice.
    retried: bool,
}

fn cas_for(observed: &Option<kvstore::state::Value>, by_version: bool) -> Command {
    let current: i64 = observed.as_ref().map_or(0, |value| std::str::from_utf8(&value.data).unwrap().parse().unwrap());
    let new = bytes(&(current + 1).to_string());
    if by_version {
        Command::CasVersion { key: bytes("n"), expected_version: observed.as_ref().map(|value| value.version), new }
    } else {
        Command::Cas { key: bytes("n"), expected: observed.as_ref().map(|value| value.data.clone()), new }
    }
}

proptest! {
    /// Clients read a counter, then CAS it to the next value, in a random
    /// interleaving; some CAS entries are committed twice. The counter ends
    /// equal to the number of CAS replies of 1: no update is lost and no
    /// retry counts twice.
    #[test]
    fn cas_counter_loses_no_update_under_interleaving(
        moves in prop::collection::vec(
            (0..3usize, any::<bool>(), prop::bool::weighted(0.2))
                .prop_map(|(client, by_version, retried)| Move { client, by_version, retried }),
            1..60,
        )
    ) {
        let mut driver = Driver::new(Limits::default());
        let sessions = [driver.register(), driver.register(), driver.register()];
        let mut sequences = [0u64; 3];
        // What each client read, once it has read and not yet written.
        let mut observed: [Option<Option<kvstore::state::Value>>; 3] = Default::default();
        let mut successes = 0;
        for Move { client, by_version, retried } in moves {
            let Some(seen) = observed[client].take() else {
                observed[client] = Some(driver.machine.get_version(b"n"));
                continue;
            };
            sequences[client] += 1;
            let request = in_session(sessions[client], sequences[client], cas_for(&seen, by_version));
            let reply = driver.apply(request.clone());
            if retried {
                prop_assert_eq!(driver.apply(request), reply.clone());
            }
            match reply {
                Reply::Integer(1) => successes += 1,
                Reply::Integer(0) => {}
                other => prop_assert!(false, "CAS replied {:?}", other),
            }
        }
        let counter = driver.get("n").map_or(0, |text| text.parse::<i64>().unwrap());
        prop_assert_eq!(counter, successes);
    }
}
