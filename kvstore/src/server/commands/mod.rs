//! The command table: from a [`RawCommand`] to an [`Action`], or to an error reply.
//!
//! Each command has one small parse function (grouped by theme in `strings`, `ranges`,
//! `connection` and `raft`) and one entry in the table (`table`), which also carries what `COMMAND`
//! and `COMMAND DOCS` report. Parsing checks what Redis checks before running a command:
//! that the command exists, its arity, then its arguments; a failure is the error reply
//! Redis would send, never a panic.

mod arguments;
mod connection;
mod raft;
mod ranges;
mod strings;
mod table;

use bytes::Bytes;

use crate::node::ReadMode;
use crate::resp::{Frame, RawCommand};
use crate::state::{Command, Query};

pub(super) use table::{ArgumentDoc, ArgumentKind, CommandSpec, COMMANDS};

/// What a request asks the server to do.
#[derive(Debug)]
pub(super) enum Action {
    /// A replicated write, sent through the connection's client session.
    Write(Command),
    /// A read, run in the connection's read mode.
    Read(Read),
    /// A command the server answers itself, possibly changing the connection's state.
    Local(Local),
    /// A membership change or leadership transfer, answered once done.
    Admin(crate::node::AdminRequest),
}

/// A read, as the server must shape it before and after the node runs it.
#[derive(Debug)]
pub(super) enum Read {
    /// A query whose reply goes to the client unchanged.
    Query(Query),
    /// RANGE, which the server bounds by [`ServerConfig::read_keys_max`](super::ServerConfig).
    Range {
        start: Bytes,
        /// `None` runs to the last key.
        end: Option<Bytes>,
        limit: Option<usize>,
        with_keys: bool,
    },
    /// SCAN, whose integer cursors the server maps to the state machine's.
    Scan { cursor: Bytes, count: usize, pattern: Option<Bytes> },
}

/// A command answered without the node.
#[derive(Debug)]
pub(super) enum Local {
    /// A reply fixed at parse time (PING, ECHO, SELECT 0, ...).
    Reply(Frame),
    Hello {
        auth: Option<(Bytes, Bytes)>,
        name: Option<Bytes>,
    },
    Auth {
        user: Option<Bytes>,
        password: Bytes,
    },
    ClientSetName(Bytes),
    ClientGetName,
    ClientId,
    ClientInfo,
    CommandTable,
    CommandCount,
    CommandDocs(Vec<Bytes>),
    CommandInfo(Vec<Bytes>),
    CommandList,
    Info(Vec<Bytes>),
    ConfigGet(Vec<Bytes>),
    ReadMode(Option<ReadMode>),
    /// RAFT.STATUS: the membership as this node sees it.
    RaftStatus,
    Quit,
}

/// The index in [`COMMANDS`] of the requested command, after checking that it exists and
/// that the number of arguments fits its arity; or the error reply. The caller then checks
/// access and runs the entry's parse function, in the order Redis does.
pub(super) fn lookup(raw: &RawCommand) -> Result<usize, Frame> {
    let index = find(&raw.name).ok_or_else(|| unknown_command(raw))?;
    let spec = &COMMANDS[index];
    if arity_fits(spec.arity, raw.arguments.len() + 1) {
        Ok(index)
    } else {
        Err(wrong_arity(spec.name))
    }
}

/// The index in [`COMMANDS`] of the command called `name`, ignoring ASCII case.
pub(super) fn find(name: &[u8]) -> Option<usize> {
    COMMANDS.iter().position(|spec| spec.name.as_bytes().eq_ignore_ascii_case(name))
}

/// Redis' arity rule: a positive arity is the exact word count (name included), a negative
/// one the minimum.
fn arity_fits(arity: i64, words: usize) -> bool {
    let words = i64::try_from(words).unwrap_or(i64::MAX);
    if arity >= 0 {
        words == arity
    } else {
        words >= -arity
    }
}

/// `-ERR wrong number of arguments for 'get' command`, as Redis words it.
pub(super) fn wrong_arity(name: &str) -> Frame {
    Frame::error(format!("ERR wrong number of arguments for '{name}' command"))
}

/// Redis 7's unknown-command error, quoting the first arguments up to 128 bytes.
fn unknown_command(raw: &RawCommand) -> Frame {
    const QUOTED_BYTES_MAX: usize = 128;
    let mut quoted = String::new();
    for argument in &raw.arguments {
        if quoted.len() >= QUOTED_BYTES_MAX {
            break;
        }
        let room = QUOTED_BYTES_MAX - quoted.len();
        quoted.push_str(&format!("'{}' ", lossy_prefix(argument, room)));
    }
    let name = lossy_prefix(&raw.name, QUOTED_BYTES_MAX);
    Frame::error(format!("ERR unknown command '{name}', with args beginning with: {quoted}"))
}

/// At most `bytes_max` bytes of `data`, as text.
pub(super) fn lossy_prefix(data: &[u8], bytes_max: usize) -> String {
    String::from_utf8_lossy(&data[..data.len().min(bytes_max)]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(words: &[&'static str]) -> RawCommand {
        let mut words = words.iter().map(|word| Bytes::from_static(word.as_bytes()));
        let name = words.next().unwrap();
        RawCommand::new(name, words.collect())
    }

    #[test]
    fn names_match_without_regard_to_case() {
        assert_eq!(find(b"GeT"), find(b"get"));
        assert!(find(b"get").is_some());
        assert!(find(b"nosuch").is_none());
    }

    #[test]
    fn unknown_commands_quote_their_arguments_like_redis() {
        let expected = "ERR unknown command 'foo', with args beginning with: 'a' 'b' ";
        assert_eq!(lookup(&raw(&["foo", "a", "b"])), Err(Frame::error(expected)));
    }

    #[test]
    fn wrong_arity_names_the_command_in_lowercase() {
        let error = Frame::error("ERR wrong number of arguments for 'get' command");
        assert_eq!(lookup(&raw(&["GET"])), Err(error));
        assert_eq!(lookup(&raw(&["GET", "a", "b"])), Err(wrong_arity("get")));
        assert_eq!(lookup(&raw(&["del"])), Err(wrong_arity("del")));
        assert!(lookup(&raw(&["del", "a", "b", "c"])).is_ok());
    }

    #[test]
    fn every_table_entry_has_a_lowercase_unique_name() {
        for (index, spec) in COMMANDS.iter().enumerate() {
            assert_eq!(spec.name, spec.name.to_ascii_lowercase());
            assert_eq!(find(spec.name.as_bytes()), Some(index), "{} is listed twice", spec.name);
        }
    }
}
