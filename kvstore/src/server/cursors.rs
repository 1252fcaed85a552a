//! SCAN cursors as integers: most clients parse the cursor as a number, but the state
//! machine's cursor is a key. The table hands out small integers for the newest cursors.
//!
//! One table serves the whole server, not one connection, because client libraries with a
//! connection pool may send the next SCAN of an iteration on another connection. Ids come
//! from a counter, never from randomness, so a simulated run stays deterministic.

use std::collections::BTreeMap;
use std::sync::Mutex;

use bytes::Bytes;

use crate::state::{CommandError, ScanCursor};

/// The newest SCAN cursors by integer id.
#[derive(Debug)]
pub(super) struct CursorTable {
    inner: Mutex<Cursors>,
    cursors_max: usize,
}

#[derive(Debug)]
struct Cursors {
    /// By id; ids only grow, so the first entry is the oldest.
    by_id: BTreeMap<u64, ScanCursor>,
    next_id: u64,
}

impl CursorTable {
    /// A table that keeps the newest `cursors_max` cursors (at least one).
    pub(super) fn new(cursors_max: usize) -> CursorTable {
        // Id 0 is the start of every iteration, so handed-out ids begin at 1.
        CursorTable {
            inner: Mutex::new(Cursors { by_id: BTreeMap::new(), next_id: 1 }),
            cursors_max: cursors_max.max(1),
        }
    }

    /// The cursor a client sent: `0`, an id from [`CursorTable::issue`], or the state
    /// machine's own token (`k<hex>`).
    pub(super) fn resolve(&self, token: &[u8]) -> Result<ScanCursor, CommandError> {
        if token.first() == Some(&b'k') {
            return ScanCursor::from_token(token);
        }
        let id: u64 =
            std::str::from_utf8(token).ok().and_then(|text| text.parse().ok()).ok_or(CommandError::InvalidCursor)?;
        if id == 0 {
            return Ok(ScanCursor::Start);
        }
        let cursors = self.lock();
        cursors.by_id.get(&id).cloned().ok_or(CommandError::InvalidCursor)
    }

    /// The integer to give the client for `cursor`, as text: `0` when the iteration is over.
    pub(super) fn issue(&self, cursor: ScanCursor) -> Bytes {
        if cursor == ScanCursor::Start {
            return Bytes::from_static(b"0");
        }
        let mut cursors = self.lock();
        let id = cursors.next_id;
        cursors.next_id += 1;
        cursors.by_id.insert(id, cursor);
        while cursors.by_id.len() > self.cursors_max {
            cursors.by_id.pop_first();
        }
        Bytes::from(id.to_string())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cursors> {
        // The table holds no invariant a panicking holder could break halfway, so a
        // poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_ids_resolve_to_their_cursor_until_they_expire() {
        let table = CursorTable::new(2);
        let first = table.issue(ScanCursor::After(Bytes::from("a")));
        let second = table.issue(ScanCursor::After(Bytes::from("b")));
        assert_eq!(table.resolve(&first), Ok(ScanCursor::After(Bytes::from("a"))));
        table.issue(ScanCursor::After(Bytes::from("c")));
        assert_eq!(table.resolve(&first), Err(CommandError::InvalidCursor));
        assert_eq!(table.resolve(&second), Ok(ScanCursor::After(Bytes::from("b"))));
    }

    #[test]
    fn zero_and_state_machine_tokens_need_no_table() {
        let table = CursorTable::new(1);
        assert_eq!(table.issue(ScanCursor::Start), Bytes::from("0"));
        assert_eq!(table.resolve(b"0"), Ok(ScanCursor::Start));
        assert_eq!(table.resolve(b"k61"), Ok(ScanCursor::After(Bytes::from("a"))));
        assert_eq!(table.resolve(b"-1"), Err(CommandError::InvalidCursor));
        assert_eq!(table.resolve(b"77"), Err(CommandError::InvalidCursor));
    }
}
