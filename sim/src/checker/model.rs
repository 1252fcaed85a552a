//! The sequential specification of one key: what each command does to the key's value and
//! what it replies, given the value before it. This is the model the search replays.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, DefaultHasher};

use bytes::{Bytes, BytesMut};

use crate::history::Return;

/// A command restricted to one key: the key itself lives in the per-key history.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum KeyCall {
    /// `GET`: replies the value, or nil.
    Get,
    /// `SET`: stores the value, replies OK.
    Set(Bytes),
    /// `DEL`: removes the key, replies how many keys it removed (0 or 1).
    Del,
    /// `CAS`: stores `new` iff the key holds exactly `expected` (an absent key never
    /// matches); replies 1 if it stored, 0 if not.
    Cas { expected: Bytes, new: Bytes },
    /// `APPEND`: appends to the value (absent counts as empty), replies the new length.
    Append(Bytes),
    /// `INCR`: adds one to the decimal integer stored (absent counts as 0), replies the new
    /// value; a value that is not an integer, or an overflow, is an error that changes nothing.
    Incr,
    /// What one `RANGE` saw of this key: a read of the key at the range's linearization point.
    /// Its reply is the value the range returned for the key, or nil when the key was absent.
    RangeRead,
}

/// What a command does to the key.
#[derive(Debug)]
pub(crate) enum Next {
    /// The value stays as it was.
    Unchanged,
    /// The value becomes this (`None`: the key is absent).
    Becomes(Option<Bytes>),
}

/// A command applied to a value: the next value and the reply.
#[derive(Debug)]
pub(crate) struct Effect {
    pub next: Next,
    pub reply: Return,
}

/// Applies `call` to a key holding `value`.
pub(crate) fn step(call: &KeyCall, value: &Option<Bytes>) -> Effect {
    match call {
        KeyCall::Get | KeyCall::RangeRead => Effect { next: Next::Unchanged, reply: Return::Value(value.clone()) },
        KeyCall::Set(new) => Effect { next: Next::Becomes(Some(new.clone())), reply: Return::Done },
        KeyCall::Del => match value {
            Some(_) => Effect { next: Next::Becomes(None), reply: Return::Integer(1) },
            None => Effect { next: Next::Unchanged, reply: Return::Integer(0) },
        },
        KeyCall::Cas { expected, new } => {
            if value.as_ref() == Some(expected) {
                Effect { next: Next::Becomes(Some(new.clone())), reply: Return::Integer(1) }
            } else {
                Effect { next: Next::Unchanged, reply: Return::Integer(0) }
            }
        }
        KeyCall::Append(suffix) => {
            let mut joined = BytesMut::from(value.as_deref().unwrap_or_default());
            joined.extend_from_slice(suffix);
            let length = i64::try_from(joined.len()).unwrap_or(i64::MAX);
            Effect { next: Next::Becomes(Some(joined.freeze())), reply: Return::Integer(length) }
        }
        KeyCall::Incr => {
            let current = match value {
                None => Some(0),
                Some(text) => parse_integer(text),
            };
            match current.and_then(|number| number.checked_add(1)) {
                Some(next) => {
                    Effect { next: Next::Becomes(Some(Bytes::from(next.to_string()))), reply: Return::Integer(next) }
                }
                None => Effect { next: Next::Unchanged, reply: Return::Error },
            }
        }
    }
}

/// The value after an effect on `value`.
pub(crate) fn after(next: &Next, value: &Option<Bytes>) -> Option<Bytes> {
    match next {
        Next::Unchanged => value.clone(),
        Next::Becomes(next) => next.clone(),
    }
}

/// How an operation relates to an operation of unknown outcome placed just before it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Follows {
    /// Without the unknown operation, this one would reply the same and leave the same value:
    /// the unknown operation can be left out.
    Droppable,
    /// The unknown operation could take effect just after this one instead, with the same
    /// reply and the same value after both.
    Commutes,
    /// Neither: this operation notices the unknown one.
    Notices,
}

/// How the operation (`call`, with `reply` if known) relates to the unknown operation
/// `unknown`, placed at value `before` and leaving `now`. `effect` is the operation's effect
/// at `now`, whose reply has already been checked.
pub(crate) fn follows(
    call: &KeyCall,
    reply: Option<&Return>,
    effect: &Effect,
    before: &Option<Bytes>,
    now: &Option<Bytes>,
    unknown: &KeyCall,
) -> Follows {
    let with_unknown = after(&effect.next, now);
    let alone = step(call, before);
    let alone_value = after(&alone.next, before);
    let same_reply = reply.is_none_or(|reply| *reply == alone.reply);
    if same_reply && alone_value == with_unknown {
        return Follows::Droppable;
    }
    let swapped = after(&step(unknown, &alone_value).next, &alone_value);
    if same_reply && swapped == with_unknown {
        Follows::Commutes
    } else {
        Follows::Notices
    }
}

/// Whether the command only reads.
pub(crate) fn is_read(call: &KeyCall) -> bool {
    matches!(call, KeyCall::Get | KeyCall::RangeRead)
}

/// Parses a decimal integer the way Redis does for INCR: optional minus sign, no leading
/// zeros, no plus sign or spaces, within `i64`.
pub(crate) fn parse_integer(text: &[u8]) -> Option<i64> {
    if text == b"0" {
        return Some(0);
    }
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    if !matches!(digits.first(), Some(b'1'..=b'9')) {
        return None;
    }
    // Accumulate downwards so that i64::MIN, whose magnitude has no positive i64, parses.
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

/// Identifier of an interned value of the key.
pub(crate) type StateId = u32;

/// Interns the values a key takes, so that the search compares and caches small integers.
///
/// The map is used only for lookups, never iterated, and its hasher has fixed keys, so the
/// search stays deterministic.
#[derive(Debug)]
pub(crate) struct States {
    values: Vec<Option<Bytes>>,
    ids: HashMap<Option<Bytes>, StateId, BuildHasherDefault<DefaultHasher>>,
}

impl States {
    /// The absent key is state 0: every key starts absent.
    pub(crate) const ABSENT: StateId = 0;

    pub(crate) fn new() -> States {
        let mut states = States { values: Vec::new(), ids: HashMap::default() };
        let absent = states.intern(None);
        assert_eq!(absent, States::ABSENT);
        states
    }

    pub(crate) fn value(&self, id: StateId) -> &Option<Bytes> {
        &self.values[id as usize]
    }

    pub(crate) fn intern(&mut self, value: Option<Bytes>) -> StateId {
        if let Some(&id) = self.ids.get(&value) {
            return id;
        }
        let id = StateId::try_from(self.values.len()).expect("fewer than 2^32 distinct values per key");
        self.values.push(value.clone());
        self.ids.insert(value, id);
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some(text: &'static str) -> Option<Bytes> {
        Some(Bytes::from_static(text.as_bytes()))
    }

    #[test]
    fn cas_never_matches_an_absent_key() {
        let call = KeyCall::Cas { expected: Bytes::new(), new: Bytes::from_static(b"x") };
        assert_eq!(step(&call, &None).reply, Return::Integer(0));
        assert_eq!(step(&call, &some("")).reply, Return::Integer(1));
    }

    #[test]
    fn incr_of_a_non_integer_is_an_error_that_changes_nothing() {
        let effect = step(&KeyCall::Incr, &some("01"));
        assert_eq!(effect.reply, Return::Error);
        assert!(matches!(effect.next, Next::Unchanged));
        assert_eq!(step(&KeyCall::Incr, &None).reply, Return::Integer(1));
        assert_eq!(step(&KeyCall::Incr, &some("-1")).reply, Return::Integer(0));
        assert_eq!(step(&KeyCall::Incr, &some("9223372036854775807")).reply, Return::Error);
    }

    #[test]
    fn append_replies_the_new_length() {
        let effect = step(&KeyCall::Append(Bytes::from_static(b"cd")), &some("ab"));
        assert_eq!(effect.reply, Return::Integer(4));
        assert!(matches!(effect.next, Next::Becomes(Some(value)) if value == "abcd"));
    }

    #[test]
    fn parse_integer_follows_redis() {
        assert_eq!(parse_integer(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_integer(b"42"), Some(42));
        for text in [&b""[..], b"-", b"-0", b"007", b"+1", b" 1", b"1x", b"9223372036854775808"] {
            assert_eq!(parse_integer(text), None, "{text:?}");
        }
    }
}
