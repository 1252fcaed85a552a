//! Parse functions of the commands over many keys in key order: RANGE, SCAN and DBSIZE.

use bytes::Bytes;

use super::arguments::{count, is, syntax_error};
use super::{wrong_arity, Action, Read};
use crate::resp::Frame;
use crate::state::Query;

type Parsed = Result<Action, Frame>;

/// The RANGE end that means "to the last key", as `+` does in Redis' XRANGE.
const END_UNBOUNDED: &[u8] = b"+";

/// How many keys SCAN examines when the client gives no COUNT, as in Redis.
const SCAN_COUNT_DEFAULT: usize = 10;

/// `RANGE start end [LIMIT n] [WITHKEYS]`: keys in `[start, end)`.
pub(super) fn range(arguments: &[Bytes]) -> Parsed {
    let [start, end, options @ ..] = arguments else { return Err(wrong_arity("range")) };
    let end = (end.as_ref() != END_UNBOUNDED).then(|| end.clone());
    let mut limit = None;
    let mut with_keys = false;
    let mut options = options.iter();
    while let Some(option) = options.next() {
        if is(option, "WITHKEYS") {
            with_keys = true;
        } else if is(option, "LIMIT") {
            let value = options.next().ok_or_else(syntax_error)?;
            limit = Some(count(value, limit_out_of_range)?);
        } else {
            return Err(syntax_error());
        }
    }
    Ok(Action::Read(Read::Range { start: start.clone(), end, limit, with_keys }))
}

fn limit_out_of_range() -> Frame {
    Frame::error("ERR LIMIT can't be negative")
}

/// `SCAN cursor [MATCH pattern] [COUNT count]`.
pub(super) fn scan(arguments: &[Bytes]) -> Parsed {
    let [cursor, options @ ..] = arguments else { return Err(wrong_arity("scan")) };
    let mut pattern = None;
    let mut scan_count = SCAN_COUNT_DEFAULT;
    let mut options = options.iter();
    while let Some(option) = options.next() {
        let value = options.next().ok_or_else(syntax_error)?;
        if is(option, "MATCH") {
            pattern = Some(value.clone());
        } else if is(option, "COUNT") {
            // Redis answers a COUNT below 1 with a plain syntax error.
            scan_count = count(value, syntax_error)?;
            if scan_count == 0 {
                return Err(syntax_error());
            }
        } else {
            return Err(syntax_error());
        }
    }
    Ok(Action::Read(Read::Scan { cursor: cursor.clone(), count: scan_count, pattern }))
}

/// `DBSIZE`.
pub(super) fn dbsize(arguments: &[Bytes]) -> Parsed {
    if !arguments.is_empty() {
        return Err(wrong_arity("dbsize"));
    }
    Ok(Action::Read(Read::Query(Query::DbSize)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(words: &[&'static str]) -> Vec<Bytes> {
        words.iter().map(|word| Bytes::from_static(word.as_bytes())).collect()
    }

    fn parsed_range(arguments: &[&'static str]) -> (Option<Bytes>, Option<usize>, bool) {
        match range(&words(arguments)) {
            Ok(Action::Read(Read::Range { end, limit, with_keys, .. })) => (end, limit, with_keys),
            other => panic!("expected a range, got {other:?}"),
        }
    }

    #[test]
    fn range_reads_plus_as_unbounded_and_options_in_any_order() {
        assert_eq!(parsed_range(&["a", "+"]), (None, None, false));
        assert_eq!(parsed_range(&["a", "c", "withkeys", "limit", "3"]), (Some("c".into()), Some(3), true));
    }

    #[test]
    fn range_refuses_bad_options() {
        assert_eq!(range(&words(&["a", "c", "LIMIT"])).unwrap_err(), syntax_error());
        assert_eq!(range(&words(&["a", "c", "LIMIT", "-1"])).unwrap_err(), limit_out_of_range());
        assert_eq!(range(&words(&["a", "c", "BOGUS"])).unwrap_err(), syntax_error());
    }

    #[test]
    fn scan_count_must_be_positive() {
        assert_eq!(scan(&words(&["0", "COUNT", "0"])).unwrap_err(), syntax_error());
        assert_eq!(scan(&words(&["0", "COUNT"])).unwrap_err(), syntax_error());
        assert!(scan(&words(&["0", "MATCH", "a*", "COUNT", "5"])).is_ok());
    }
}
