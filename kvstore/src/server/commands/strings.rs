//! Parse functions of the commands on single string values: the Redis string commands plus
//! Tally's PUT, CAS, CASVER and GETVER.
//!
//! The table has checked each command's arity before these run; the slice patterns still
//! fall back to an arity error rather than assume it, so no input can panic them.

use bytes::Bytes;

use super::arguments::{count, integer, is, not_an_integer, syntax_error};
use super::{wrong_arity, Action, Read};
use crate::resp::Frame;
use crate::state::{Command, Query, SetCondition};

type Parsed = Result<Action, Frame>;

fn write(command: Command) -> Parsed {
    Ok(Action::Write(command))
}

fn read(query: Query) -> Parsed {
    Ok(Action::Read(Read::Query(query)))
}

/// `PUT key value`.
pub(super) fn put(arguments: &[Bytes]) -> Parsed {
    let [key, value] = arguments else { return Err(wrong_arity("put")) };
    write(Command::Put { key: key.clone(), value: value.clone() })
}

/// `GET key`.
pub(super) fn get(arguments: &[Bytes]) -> Parsed {
    let [key] = arguments else { return Err(wrong_arity("get")) };
    read(Query::Get { key: key.clone() })
}

/// `GETVER key`.
pub(super) fn get_version(arguments: &[Bytes]) -> Parsed {
    let [key] = arguments else { return Err(wrong_arity("getver")) };
    read(Query::GetVersion { key: key.clone() })
}

/// `STRLEN key`.
pub(super) fn strlen(arguments: &[Bytes]) -> Parsed {
    let [key] = arguments else { return Err(wrong_arity("strlen")) };
    read(Query::StrLen { key: key.clone() })
}

/// `MGET key [key ...]`.
pub(super) fn mget(arguments: &[Bytes]) -> Parsed {
    read(Query::MGet { keys: arguments.to_vec() })
}

/// `EXISTS key [key ...]`.
pub(super) fn exists(arguments: &[Bytes]) -> Parsed {
    read(Query::Exists { keys: arguments.to_vec() })
}

/// `SET key value [NX|XX] [GET]`. Keys never expire in Tally, so the expiry options are
/// refused by name rather than as a syntax error.
pub(super) fn set(arguments: &[Bytes]) -> Parsed {
    let [key, value, options @ ..] = arguments else { return Err(wrong_arity("set")) };
    let mut condition = SetCondition::None;
    let mut get = false;
    for option in options {
        match option {
            _ if is(option, "NX") && condition != SetCondition::Xx => condition = SetCondition::Nx,
            _ if is(option, "XX") && condition != SetCondition::Nx => condition = SetCondition::Xx,
            _ if is(option, "GET") => get = true,
            _ if ["EX", "PX", "EXAT", "PXAT", "KEEPTTL"].iter().any(|name| is(option, name)) => {
                return Err(Frame::error("ERR EX, PX, EXAT, PXAT and KEEPTTL are not supported: keys do not expire"));
            }
            _ => return Err(syntax_error()),
        }
    }
    write(Command::Set { key: key.clone(), value: value.clone(), condition, get })
}

/// `DEL key [key ...]`.
pub(super) fn del(arguments: &[Bytes]) -> Parsed {
    write(Command::Del { keys: arguments.to_vec() })
}

/// `MSET key value [key value ...]`.
pub(super) fn mset(arguments: &[Bytes]) -> Parsed {
    if arguments.is_empty() || arguments.len() % 2 != 0 {
        return Err(wrong_arity("mset"));
    }
    let pairs = arguments.chunks_exact(2).map(|pair| (pair[0].clone(), pair[1].clone())).collect();
    write(Command::MSet { pairs })
}

/// `INCR key`.
pub(super) fn incr(arguments: &[Bytes]) -> Parsed {
    let [key] = arguments else { return Err(wrong_arity("incr")) };
    write(Command::IncrBy { key: key.clone(), delta: 1 })
}

/// `DECR key`.
pub(super) fn decr(arguments: &[Bytes]) -> Parsed {
    let [key] = arguments else { return Err(wrong_arity("decr")) };
    write(Command::IncrBy { key: key.clone(), delta: -1 })
}

/// `INCRBY key increment`.
pub(super) fn incrby(arguments: &[Bytes]) -> Parsed {
    let [key, delta] = arguments else { return Err(wrong_arity("incrby")) };
    write(Command::IncrBy { key: key.clone(), delta: integer(delta)? })
}

/// `DECRBY key decrement`. The decrement `i64::MIN` has no negation, so it is refused here
/// with Redis' message, before it could reach the state machine.
pub(super) fn decrby(arguments: &[Bytes]) -> Parsed {
    let [key, decrement] = arguments else { return Err(wrong_arity("decrby")) };
    let delta = integer(decrement)?.checked_neg().ok_or_else(|| Frame::error("ERR decrement would overflow"))?;
    write(Command::IncrBy { key: key.clone(), delta })
}

/// `APPEND key value`.
pub(super) fn append(arguments: &[Bytes]) -> Parsed {
    let [key, value] = arguments else { return Err(wrong_arity("append")) };
    write(Command::Append { key: key.clone(), value: value.clone() })
}

/// `CAS key expected new`: `expected` is always a value (see the module docs of the server
/// for how to require absence).
pub(super) fn cas(arguments: &[Bytes]) -> Parsed {
    let [key, expected, new] = arguments else { return Err(wrong_arity("cas")) };
    write(Command::Cas { key: key.clone(), expected: Some(expected.clone()), new: new.clone() })
}

/// `CASVER key version new`, where version 0 means "the key is absent": versions are Raft
/// indexes, which start at 1.
pub(super) fn cas_version(arguments: &[Bytes]) -> Parsed {
    let [key, version, new] = arguments else { return Err(wrong_arity("casver")) };
    let version = count(version, not_an_integer)? as u64;
    let expected_version = if version == 0 { None } else { Some(version) };
    write(Command::CasVersion { key: key.clone(), expected_version, new: new.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(words: &[&'static str]) -> Vec<Bytes> {
        words.iter().map(|word| Bytes::from_static(word.as_bytes())).collect()
    }

    fn command(parsed: Parsed) -> Command {
        match parsed {
            Ok(Action::Write(command)) => command,
            other => panic!("expected a write, got {other:?}"),
        }
    }

    #[test]
    fn set_reads_its_options_in_any_case_and_order() {
        let parsed = command(set(&words(&["k", "v", "get", "Nx"])));
        let expected = Command::Set { key: "k".into(), value: "v".into(), condition: SetCondition::Nx, get: true };
        assert_eq!(parsed, expected);
    }

    #[test]
    fn set_refuses_nx_with_xx_and_names_expiry_as_unsupported() {
        assert_eq!(set(&words(&["k", "v", "NX", "XX"])).unwrap_err(), syntax_error());
        let error = set(&words(&["k", "v", "EX", "10"])).unwrap_err();
        assert!(matches!(error, Frame::Error(message) if message.starts_with(b"ERR EX, PX")));
    }

    #[test]
    fn decrby_of_the_smallest_integer_is_refused() {
        let error = decrby(&words(&["k", "-9223372036854775808"])).unwrap_err();
        assert_eq!(error, Frame::error("ERR decrement would overflow"));
        assert_eq!(command(decrby(&words(&["k", "5"]))), Command::IncrBy { key: "k".into(), delta: -5 });
    }

    #[test]
    fn mset_needs_whole_pairs() {
        assert_eq!(mset(&words(&["a", "1", "b"])).unwrap_err(), wrong_arity("mset"));
    }

    #[test]
    fn casver_zero_means_absent() {
        let parsed = command(cas_version(&words(&["k", "0", "v"])));
        assert_eq!(parsed, Command::CasVersion { key: "k".into(), expected_version: None, new: "v".into() });
    }
}
