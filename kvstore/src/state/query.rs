//! Reads as data: the server builds a [`Query`], the node runs it against its state machine
//! once the read is safe (for linearizable reads, after the read's point in the log is applied).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::state::{Reply, ScanCursor, StateMachine};

/// One read command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Query {
    Get {
        key: Bytes,
    },
    /// GETVER: `[value, version]`, or nil if the key is absent.
    GetVersion {
        key: Bytes,
    },
    MGet {
        keys: Vec<Bytes>,
    },
    Exists {
        keys: Vec<Bytes>,
    },
    StrLen {
        key: Bytes,
    },
    /// Keys in `[start, end)` in byte order (`end: None` means to the last key).
    Range {
        start: Bytes,
        end: Option<Bytes>,
        limit: Option<usize>,
        with_keys: bool,
    },
    Scan {
        cursor: ScanCursor,
        count: usize,
        pattern: Option<Bytes>,
    },
    DbSize,
}

impl Query {
    /// Runs the read. Pure: the same machine gives the same reply.
    pub fn execute(&self, machine: &StateMachine) -> Reply {
        match self {
            Query::Get { key } => Reply::Bulk(machine.get(key)),
            Query::GetVersion { key } => match machine.get_version(key) {
                Some(value) => Reply::Array(vec![Reply::Bulk(Some(value.data)), Reply::Integer(value.version as i64)]),
                None => Reply::Bulk(None),
            },
            Query::MGet { keys } => Reply::Array(machine.mget(keys).into_iter().map(Reply::Bulk).collect()),
            Query::Exists { keys } => Reply::Integer(machine.exists(keys) as i64),
            Query::StrLen { key } => Reply::Integer(machine.strlen(key) as i64),
            Query::Range { start, end, limit, with_keys } => {
                let items = machine.range(start, end.as_deref(), *limit, *with_keys);
                Reply::Array(items.into_iter().map(|item| Reply::Bulk(Some(item))).collect())
            }
            Query::Scan { cursor, count, pattern } => {
                let page = machine.scan(cursor, *count, pattern.as_deref());
                let keys = page.keys.into_iter().map(|key| Reply::Bulk(Some(key))).collect();
                Reply::Array(vec![Reply::Bulk(Some(page.next.to_token())), Reply::Array(keys)])
            }
            Query::DbSize => Reply::Integer(machine.dbsize() as i64),
        }
    }
}
