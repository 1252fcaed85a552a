//! Reads that the server shapes around the node's query: RANGE is bounded, SCAN cursors are
//! mapped to integers.

use super::commands::Read;
use super::cursors::CursorTable;
use super::reply::frame_of;
use crate::resp::Frame;
use crate::state::{Query, Reply, ScanCursor};

/// What to do with the node's reply before the client sees it.
#[derive(Debug)]
pub(super) enum Shape {
    /// Nothing.
    AsIs,
    /// Refuse a RANGE that found more than `keys_max` keys, rather than cut it silently.
    Bounded { keys_max: usize, with_keys: bool },
    /// Replace the state machine's cursor with an integer from the cursor table.
    ScanPage,
}

/// The query to send for `read`, and how to shape its reply; or the error reply.
pub(super) fn prepare(read: Read, keys_max: usize, cursors: &CursorTable) -> Result<(Query, Shape), Frame> {
    match read {
        Read::Query(query) => Ok((query, Shape::AsIs)),
        Read::Range { start, end, limit: Some(limit), with_keys } => {
            if limit > keys_max {
                return Err(Frame::error(format!("ERR LIMIT may not exceed {keys_max} keys per read")));
            }
            Ok((Query::Range { start, end, limit: Some(limit), with_keys }, Shape::AsIs))
        }
        Read::Range { start, end, limit: None, with_keys } => {
            // One key more than allowed tells a range that fits from one that does not.
            let limit = Some(keys_max.saturating_add(1));
            Ok((Query::Range { start, end, limit, with_keys }, Shape::Bounded { keys_max, with_keys }))
        }
        Read::Scan { cursor, count, pattern } => {
            let cursor = cursors.resolve(&cursor).map_err(|error| frame_of(Reply::Error(error)))?;
            // COUNT is a hint in Redis, so capping it changes no client's correctness.
            let count = count.min(keys_max);
            Ok((Query::Scan { cursor, count, pattern }, Shape::ScanPage))
        }
    }
}

/// The reply the client sees.
pub(super) fn finish(reply: Reply, shape: Shape, cursors: &CursorTable) -> Frame {
    match (shape, reply) {
        (Shape::Bounded { keys_max, with_keys }, Reply::Array(items)) => {
            let keys = if with_keys { items.len() / 2 } else { items.len() };
            if keys > keys_max {
                return Frame::error(format!(
                    "ERR the range holds more than {keys_max} keys: use LIMIT, and continue after the last key"
                ));
            }
            frame_of(Reply::Array(items))
        }
        (Shape::ScanPage, Reply::Array(mut page)) if page.len() == 2 => {
            if let Reply::Bulk(Some(token)) = &page[0] {
                if let Ok(cursor) = ScanCursor::from_token(token) {
                    page[0] = Reply::Bulk(Some(cursors.issue(cursor)));
                }
            }
            frame_of(Reply::Array(page))
        }
        (_, reply) => frame_of(reply),
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn values(count: usize) -> Reply {
        Reply::Array((0..count).map(|_| Reply::Bulk(Some(Bytes::from("v")))).collect())
    }

    #[test]
    fn a_range_without_limit_is_refused_when_it_overflows() {
        let cursors = CursorTable::new(4);
        let read = Read::Range { start: Bytes::new(), end: None, limit: None, with_keys: true };
        let (query, shape) = prepare(read, 2, &cursors).unwrap();
        assert!(matches!(query, Query::Range { limit: Some(3), .. }));
        assert!(matches!(finish(values(6), shape, &cursors), Frame::Error(_)));
        let shape = Shape::Bounded { keys_max: 2, with_keys: true };
        assert!(matches!(finish(values(4), shape, &cursors), Frame::Array(items) if items.len() == 4));
    }

    #[test]
    fn a_limit_above_the_bound_is_refused() {
        let cursors = CursorTable::new(4);
        let read = Read::Range { start: Bytes::new(), end: None, limit: Some(3), with_keys: false };
        assert!(prepare(read, 2, &cursors).is_err());
    }

    #[test]
    fn scan_pages_carry_integer_cursors() {
        let cursors = CursorTable::new(4);
        let page = Reply::Array(vec![Reply::Bulk(Some(Bytes::from("k61"))), Reply::Array(vec![])]);
        let Frame::Array(items) = finish(page, Shape::ScanPage, &cursors) else { panic!("a page is an array") };
        assert_eq!(items[0], Frame::bulk("1"));
        assert_eq!(cursors.resolve(b"1"), Ok(ScanCursor::After(Bytes::from("a"))));
    }
}
