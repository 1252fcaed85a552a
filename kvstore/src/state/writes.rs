//! How each write command changes the [`Keyspace`].
//!
//! Every function here is a pure function of the keyspace, the entry index and
//! the command: no clock, no randomness, no iteration over hashed containers.
//! A write that is refused (condition failed, value too large, not an integer)
//! changes nothing, so a refused command never half-applies.

use bytes::{Bytes, BytesMut};

use super::command::{Command, SetCondition};
use super::keyspace::{Keyspace, Value};
use super::reply::{CommandError, Reply};

impl Keyspace {
    /// Applies one write command at log `index` and returns its reply.
    ///
    /// [`Command::RegisterSession`] belongs to the session table, which the
    /// [`StateMachine`](super::StateMachine) consults before calling this.
    pub(super) fn execute(&mut self, index: u64, command: Command, value_size_bytes_max: usize) -> Reply {
        let writer = Writer { keyspace: self, index, value_size_bytes_max };
        match command {
            Command::RegisterSession => {
                unreachable!("the state machine handles RegisterSession itself")
            }
            Command::Put { key, value } => writer.put(key, value),
            Command::Set { key, value, condition, get } => writer.set(key, value, condition, get),
            Command::Del { keys } => writer.del(&keys),
            Command::MSet { pairs } => writer.mset(pairs),
            Command::IncrBy { key, delta } => writer.incr_by(key, delta),
            Command::Append { key, value } => writer.append(key, value),
            Command::Cas { key, expected, new } => writer.cas(key, expected, new),
            Command::CasVersion { key, expected_version, new } => writer.cas_version(key, expected_version, new),
        }
    }
}

/// One write in progress: the keyspace it changes, the index that becomes the
/// version of whatever it stores, and the value size bound.
struct Writer<'a> {
    keyspace: &'a mut Keyspace,
    index: u64,
    value_size_bytes_max: usize,
}

impl Writer<'_> {
    fn put(self, key: Bytes, value: Bytes) -> Reply {
        if let Err(error) = self.check_size(value.len()) {
            return error.into();
        }
        self.store(key, value);
        Reply::Integer(1)
    }

    fn set(self, key: Bytes, value: Bytes, condition: SetCondition, get: bool) -> Reply {
        if let Err(error) = self.check_size(value.len()) {
            return error.into();
        }
        let previous = self.keyspace.get(&key);
        let allowed = match condition {
            SetCondition::None => true,
            SetCondition::Nx => previous.is_none(),
            SetCondition::Xx => previous.is_some(),
        };
        if allowed {
            self.store(key, value);
        }
        match (get, allowed) {
            (true, _) => Reply::Bulk(previous),
            (false, true) => Reply::Ok,
            (false, false) => Reply::Bulk(None),
        }
    }

    fn del(self, keys: &[Bytes]) -> Reply {
        // Removing in order makes a repeated key count once: the second
        // removal finds nothing.
        let removed = keys.iter().filter(|key| self.keyspace.entries.remove(key.as_ref()).is_some()).count();
        count_reply(removed)
    }

    fn mset(self, pairs: Vec<(Bytes, Bytes)>) -> Reply {
        // Check every value before writing any, so MSET stays atomic.
        for (_, value) in &pairs {
            if let Err(error) = self.check_size(value.len()) {
                return error.into();
            }
        }
        for (key, value) in pairs {
            self.keyspace.entries.insert(key, self.version(value));
        }
        Reply::Ok
    }

    fn incr_by(self, key: Bytes, delta: i64) -> Reply {
        let current = match self.keyspace.entries.get(&key) {
            None => 0,
            Some(value) => match parse_integer(&value.data) {
                Some(number) => number,
                None => return CommandError::NotAnInteger.into(),
            },
        };
        let Some(next) = current.checked_add(delta) else {
            return CommandError::IncrementOverflow.into();
        };
        let text = next.to_string();
        // Checked like any other write, even though a formatted i64 has at
        // most 20 bytes: every stored value stays within the bound, which is
        // what a restored snapshot is checked against.
        if let Err(error) = self.check_size(text.len()) {
            return error.into();
        }
        self.store(key, Bytes::from(text));
        Reply::Integer(next)
    }

    fn append(self, key: Bytes, suffix: Bytes) -> Reply {
        let current = self.keyspace.get(&key).unwrap_or_default();
        let length = current.len().saturating_add(suffix.len());
        if let Err(error) = self.check_size(length) {
            return error.into();
        }
        // The old value may be shared with a snapshot or a cached reply, so it
        // is copied rather than grown in place: APPEND costs O(new length).
        let joined = if current.is_empty() {
            suffix
        } else {
            let mut joined = BytesMut::with_capacity(length);
            joined.extend_from_slice(&current);
            joined.extend_from_slice(&suffix);
            joined.freeze()
        };
        self.store(key, joined);
        count_reply(length)
    }

    fn cas(self, key: Bytes, expected: Option<Bytes>, new: Bytes) -> Reply {
        if let Err(error) = self.check_size(new.len()) {
            return error.into();
        }
        let current = self.keyspace.entries.get(&key).map(|value| &value.data);
        let matches = current == expected.as_ref();
        if matches {
            self.store(key, new);
        }
        Reply::Integer(i64::from(matches))
    }

    fn cas_version(self, key: Bytes, expected_version: Option<u64>, new: Bytes) -> Reply {
        if let Err(error) = self.check_size(new.len()) {
            return error.into();
        }
        let current = self.keyspace.entries.get(&key).map(|value| value.version);
        let matches = current == expected_version;
        if matches {
            self.store(key, new);
        }
        Reply::Integer(i64::from(matches))
    }

    fn check_size(&self, size_bytes: usize) -> Result<(), CommandError> {
        if size_bytes > self.value_size_bytes_max {
            return Err(CommandError::ValueTooLarge { size_bytes_max: self.value_size_bytes_max });
        }
        Ok(())
    }

    fn store(self, key: Bytes, data: Bytes) {
        let value = self.version(data);
        self.keyspace.entries.insert(key, value);
    }

    fn version(&self, data: Bytes) -> Value {
        Value { data, version: self.index }
    }
}

fn count_reply(count: usize) -> Reply {
    Reply::Integer(i64::try_from(count).expect("a count of keys or bytes fits in i64"))
}

/// Parses a value as Redis does for INCR (its `string2ll`): an optional `-`,
/// then digits without leading zeros ("0" alone is fine, "-0" is not), with
/// no spaces or `+`, within the i64 range.
pub(super) fn parse_integer(text: &[u8]) -> Option<i64> {
    if text == b"0" {
        return Some(0);
    }
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    // Accumulate downwards so that i64::MIN, whose magnitude has no positive
    // i64, parses without a special case.
    let mut value: i64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_sub(i64::from(digit - b'0'))?;
    }
    if negative {
        Some(value)
    } else {
        value.checked_neg()
    }
}

#[cfg(test)]
mod tests {
    use super::parse_integer;

    #[test]
    fn parse_integer_accepts_what_redis_accepts() {
        assert_eq!(parse_integer(b"0"), Some(0));
        assert_eq!(parse_integer(b"7"), Some(7));
        assert_eq!(parse_integer(b"-42"), Some(-42));
        assert_eq!(parse_integer(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_integer(b"-9223372036854775808"), Some(i64::MIN));
    }

    #[test]
    fn parse_integer_refuses_what_redis_refuses() {
        for text in [
            &b""[..],
            b"-",
            b"-0",
            b"007",
            b"+5",
            b" 5",
            b"5 ",
            b"1.5",
            b"abc",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"99999999999999999999999",
        ] {
            assert_eq!(parse_integer(text), None, "{:?}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn parse_integer_round_trips_formatting() {
        for number in [i64::MIN, -1_000, -1, 0, 1, 10, 123_456_789, i64::MAX] {
            assert_eq!(parse_integer(number.to_string().as_bytes()), Some(number));
        }
    }
}
