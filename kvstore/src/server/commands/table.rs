//! The command table: every command's name, arity, key positions and documentation, as
//! `COMMAND` and `COMMAND DOCS` report them, and its parse function.
//!
//! The documentation follows Redis' `COMMAND DOCS` schema, because redis-cli builds its
//! inline hints from it: each argument has a name and a type, and optionally a token, the
//! `optional` and `multiple` flags, and nested arguments.

use bytes::Bytes;

use super::{connection, raft, ranges, strings, Action};
use crate::resp::Frame;

/// One command of the table.
#[derive(Debug)]
pub(in crate::server) struct CommandSpec {
    /// The lowercase name, as COMMAND reports it.
    pub name: &'static str,
    /// Redis' arity: the exact number of words (name included) if positive, the minimum if
    /// negative.
    pub arity: i64,
    /// COMMAND's flags, such as `write`, `readonly` and `fast`.
    pub flags: &'static [&'static str],
    /// The positions of the first and last key arguments and the step between keys (0 when
    /// the command takes no key; a last key of -1 means "through the last argument").
    pub keys: (i64, i64, i64),
    /// The Redis command group (`string`, `generic`, `connection`, `server`).
    pub group: &'static str,
    pub summary: &'static str,
    /// The Redis (or, for Tally's own commands, Tally) version that introduced the command.
    pub since: &'static str,
    pub arguments: &'static [ArgumentDoc],
    pub parse: fn(&[Bytes]) -> Result<Action, Frame>,
}

/// One argument in `COMMAND DOCS`.
#[derive(Debug)]
pub(in crate::server) struct ArgumentDoc {
    pub name: &'static str,
    pub kind: ArgumentKind,
    /// The keyword that introduces the argument, such as `LIMIT`.
    pub token: Option<&'static str>,
    pub optional: bool,
    pub multiple: bool,
}

/// The type of an argument, named as in `COMMAND DOCS`.
#[derive(Debug)]
pub(in crate::server) enum ArgumentKind {
    Key,
    String,
    Integer,
    Pattern,
    /// A keyword alone, such as `NX`.
    PureToken,
    /// Exactly one of the nested arguments.
    OneOf(&'static [ArgumentDoc]),
    /// The nested arguments in sequence.
    Block(&'static [ArgumentDoc]),
}

impl ArgumentKind {
    /// The type's name in `COMMAND DOCS`.
    pub(in crate::server) fn name(&self) -> &'static str {
        match self {
            ArgumentKind::Key => "key",
            ArgumentKind::String => "string",
            ArgumentKind::Integer => "integer",
            ArgumentKind::Pattern => "pattern",
            ArgumentKind::PureToken => "pure-token",
            ArgumentKind::OneOf(_) => "oneof",
            ArgumentKind::Block(_) => "block",
        }
    }
}

const fn argument(name: &'static str, kind: ArgumentKind) -> ArgumentDoc {
    ArgumentDoc { name, kind, token: None, optional: false, multiple: false }
}

const fn key(name: &'static str) -> ArgumentDoc {
    argument(name, ArgumentKind::Key)
}

const fn string(name: &'static str) -> ArgumentDoc {
    argument(name, ArgumentKind::String)
}

const fn integer(name: &'static str) -> ArgumentDoc {
    argument(name, ArgumentKind::Integer)
}

/// A keyword such as `NX`; its name is the keyword in lowercase.
const fn keyword(name: &'static str, token: &'static str) -> ArgumentDoc {
    ArgumentDoc { token: Some(token), ..argument(name, ArgumentKind::PureToken) }
}

impl ArgumentDoc {
    const fn optional(self) -> ArgumentDoc {
        ArgumentDoc { optional: true, ..self }
    }

    const fn multiple(self) -> ArgumentDoc {
        ArgumentDoc { multiple: true, ..self }
    }

    const fn token(self, token: &'static str) -> ArgumentDoc {
        ArgumentDoc { token: Some(token), ..self }
    }
}

const WRITE: &[&str] = &["write", "denyoom"];
const WRITE_FAST: &[&str] = &["write", "denyoom", "fast"];
const DELETE: &[&str] = &["write"];
const READ: &[&str] = &["readonly"];
const READ_FAST: &[&str] = &["readonly", "fast"];
const LOCAL: &[&str] = &["fast", "stale", "loading"];
const NO_AUTH: &[&str] = &["noscript", "loading", "stale", "fast", "no_auth"];

const NO_KEYS: (i64, i64, i64) = (0, 0, 0);
/// Membership changes: not `fast` (they wait for commits), refused before AUTH like writes.
const ADMIN: &[&str] = &["admin", "noscript"];
const ONE_KEY: (i64, i64, i64) = (1, 1, 1);
const ALL_KEYS: (i64, i64, i64) = (1, -1, 1);
const KEY_VALUE_PAIRS: (i64, i64, i64) = (1, -1, 2);

const KEY: &[ArgumentDoc] = &[key("key")];
const KEYS: &[ArgumentDoc] = &[key("key").multiple()];
const KEY_VALUE: &[ArgumentDoc] = &[key("key"), string("value")];
const NOTHING: &[ArgumentDoc] = &[];

/// Every command the server knows, in the order COMMAND lists them.
pub(in crate::server) const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "get",
        arity: 2,
        flags: READ_FAST,
        keys: ONE_KEY,
        group: "string",
        summary: "Returns the string value of a key.",
        since: "1.0.0",
        arguments: KEY,
        parse: strings::get,
    },
    CommandSpec {
        name: "set",
        arity: -3,
        flags: WRITE,
        keys: ONE_KEY,
        group: "string",
        summary: "Sets the string value of a key. Keys never expire: EX, PX, EXAT, PXAT and KEEPTTL are refused.",
        since: "1.0.0",
        arguments: &[
            key("key"),
            string("value"),
            argument("condition", ArgumentKind::OneOf(&[keyword("nx", "NX"), keyword("xx", "XX")])).optional(),
            keyword("get", "GET").optional(),
        ],
        parse: strings::set,
    },
    CommandSpec {
        name: "put",
        arity: 3,
        flags: WRITE,
        keys: ONE_KEY,
        group: "string",
        summary: "Sets the value of a key and replies 1.",
        since: "0.1.0",
        arguments: KEY_VALUE,
        parse: strings::put,
    },
    CommandSpec {
        name: "del",
        arity: -2,
        flags: DELETE,
        keys: ALL_KEYS,
        group: "generic",
        summary: "Deletes one or more keys and replies how many existed.",
        since: "1.0.0",
        arguments: KEYS,
        parse: strings::del,
    },
    CommandSpec {
        name: "exists",
        arity: -2,
        flags: READ_FAST,
        keys: ALL_KEYS,
        group: "generic",
        summary: "Counts how many of the keys exist.",
        since: "1.0.0",
        arguments: KEYS,
        parse: strings::exists,
    },
    CommandSpec {
        name: "mget",
        arity: -2,
        flags: READ_FAST,
        keys: ALL_KEYS,
        group: "string",
        summary: "Returns the values of one or more keys.",
        since: "1.0.0",
        arguments: KEYS,
        parse: strings::mget,
    },
    CommandSpec {
        name: "mset",
        arity: -3,
        flags: WRITE,
        keys: KEY_VALUE_PAIRS,
        group: "string",
        summary: "Sets the values of one or more keys, all at once.",
        since: "1.0.1",
        arguments: &[argument("data", ArgumentKind::Block(KEY_VALUE)).multiple()],
        parse: strings::mset,
    },
    CommandSpec {
        name: "incr",
        arity: 2,
        flags: WRITE_FAST,
        keys: ONE_KEY,
        group: "string",
        summary: "Increments the integer value of a key by one.",
        since: "1.0.0",
        arguments: KEY,
        parse: strings::incr,
    },
    CommandSpec {
        name: "incrby",
        arity: 3,
        flags: WRITE_FAST,
        keys: ONE_KEY,
        group: "string",
        summary: "Increments the integer value of a key by a number.",
        since: "1.0.0",
        arguments: &[key("key"), integer("increment")],
        parse: strings::incrby,
    },
    CommandSpec {
        name: "decr",
        arity: 2,
        flags: WRITE_FAST,
        keys: ONE_KEY,
        group: "string",
        summary: "Decrements the integer value of a key by one.",
        since: "1.0.0",
        arguments: KEY,
        parse: strings::decr,
    },
    CommandSpec {
        name: "decrby",
        arity: 3,
        flags: WRITE_FAST,
        keys: ONE_KEY,
        group: "string",
        summary: "Decrements the integer value of a key by a number.",
        since: "1.0.0",
        arguments: &[key("key"), integer("decrement")],
        parse: strings::decrby,
    },
    CommandSpec {
        name: "append",
        arity: 3,
        flags: WRITE_FAST,
        keys: ONE_KEY,
        group: "string",
        summary: "Appends a string to the value of a key and replies the new length.",
        since: "2.0.0",
        arguments: KEY_VALUE,
        parse: strings::append,
    },
    CommandSpec {
        name: "strlen",
        arity: 2,
        flags: READ_FAST,
        keys: ONE_KEY,
        group: "string",
        summary: "Returns the length of the value of a key.",
        since: "2.2.0",
        arguments: KEY,
        parse: strings::strlen,
    },
    CommandSpec {
        name: "cas",
        arity: 4,
        flags: WRITE,
        keys: ONE_KEY,
        group: "string",
        summary: "Sets a key to a new value if it holds the expected value; replies 1 if it did, else 0.",
        since: "0.1.0",
        arguments: &[key("key"), string("expected"), string("new")],
        parse: strings::cas,
    },
    CommandSpec {
        name: "casver",
        arity: 4,
        flags: WRITE,
        keys: ONE_KEY,
        group: "string",
        summary: "Sets a key to a new value if its version (from GETVER; 0 for absent) matches; replies 1 or 0.",
        since: "0.1.0",
        arguments: &[key("key"), integer("version"), string("new")],
        parse: strings::cas_version,
    },
    CommandSpec {
        name: "getver",
        arity: 2,
        flags: READ_FAST,
        keys: ONE_KEY,
        group: "string",
        summary: "Returns the value of a key and its version, the log index that last wrote it.",
        since: "0.1.0",
        arguments: KEY,
        parse: strings::get_version,
    },
    CommandSpec {
        name: "range",
        arity: -3,
        flags: READ,
        keys: NO_KEYS,
        group: "generic",
        summary: "Returns the values of the keys from start (inclusive) to end (exclusive; + for the last key) in byte order.",
        since: "0.1.0",
        arguments: &[
            string("start"),
            string("end"),
            integer("count").token("LIMIT").optional(),
            keyword("withkeys", "WITHKEYS").optional(),
        ],
        parse: ranges::range,
    },
    CommandSpec {
        name: "scan",
        arity: -2,
        flags: READ,
        keys: NO_KEYS,
        group: "generic",
        summary: "Iterates over the keys in byte order.",
        since: "2.8.0",
        arguments: &[
            integer("cursor"),
            argument("pattern", ArgumentKind::Pattern).token("MATCH").optional(),
            integer("count").token("COUNT").optional(),
        ],
        parse: ranges::scan,
    },
    CommandSpec {
        name: "dbsize",
        arity: 1,
        flags: READ_FAST,
        keys: NO_KEYS,
        group: "server",
        summary: "Returns the number of keys.",
        since: "1.0.0",
        arguments: NOTHING,
        parse: ranges::dbsize,
    },
    CommandSpec {
        name: "ping",
        arity: -1,
        flags: LOCAL,
        keys: NO_KEYS,
        group: "connection",
        summary: "Returns PONG, or the message.",
        since: "1.0.0",
        arguments: &[string("message").optional()],
        parse: connection::ping,
    },
    CommandSpec {
        name: "echo",
        arity: 2,
        flags: LOCAL,
        keys: NO_KEYS,
        group: "connection",
        summary: "Returns the message.",
        since: "1.0.0",
        arguments: &[string("message")],
        parse: connection::echo,
    },
    CommandSpec {
        name: "select",
        arity: 2,
        flags: LOCAL,
        keys: NO_KEYS,
        group: "connection",
        summary: "Selects a database; Tally has only database 0.",
        since: "1.0.0",
        arguments: &[integer("index")],
        parse: connection::select,
    },
    CommandSpec {
        name: "hello",
        arity: -1,
        flags: NO_AUTH,
        keys: NO_KEYS,
        group: "connection",
        summary: "Handshakes with the server (RESP2 only), optionally authenticating and naming the connection.",
        since: "6.0.0",
        arguments: &[
            argument(
                "arguments",
                ArgumentKind::Block(&[
                    integer("protover"),
                    argument("auth", ArgumentKind::Block(&[string("username"), string("password")]))
                        .token("AUTH")
                        .optional(),
                    string("clientname").token("SETNAME").optional(),
                ]),
            )
            .optional(),
        ],
        parse: connection::hello,
    },
    CommandSpec {
        name: "auth",
        arity: -2,
        flags: NO_AUTH,
        keys: NO_KEYS,
        group: "connection",
        summary: "Authenticates the connection with the requirepass password.",
        since: "1.0.0",
        arguments: &[string("username").optional(), string("password")],
        parse: connection::auth,
    },
    CommandSpec {
        name: "client",
        arity: -2,
        flags: LOCAL,
        keys: NO_KEYS,
        group: "connection",
        summary: "CLIENT SETNAME name, GETNAME, ID, INFO: the connection's name and identity.",
        since: "2.4.0",
        arguments: &[string("subcommand"), string("argument").optional().multiple()],
        parse: connection::client,
    },
    CommandSpec {
        name: "readmode",
        arity: -1,
        flags: LOCAL,
        keys: NO_KEYS,
        group: "connection",
        summary: "Sets or shows the connection's read mode: linearizable (default) or stale.",
        since: "0.1.0",
        arguments: &[argument(
            "mode",
            ArgumentKind::OneOf(&[keyword("linearizable", "LINEARIZABLE"), keyword("stale", "STALE")]),
        )
        .optional()],
        parse: connection::read_mode,
    },
    CommandSpec {
        name: "quit",
        arity: -1,
        flags: NO_AUTH,
        keys: NO_KEYS,
        group: "connection",
        summary: "Closes the connection.",
        since: "1.0.0",
        arguments: NOTHING,
        parse: connection::quit,
    },
    CommandSpec {
        name: "command",
        arity: -1,
        flags: LOCAL,
        keys: NO_KEYS,
        group: "server",
        summary: "Describes the commands: COMMAND, COMMAND COUNT, COMMAND DOCS, COMMAND INFO, COMMAND LIST.",
        since: "2.8.13",
        arguments: &[string("subcommand").optional(), string("command-name").optional().multiple()],
        parse: connection::command,
    },
    CommandSpec {
        name: "info",
        arity: -1,
        flags: LOCAL,
        keys: NO_KEYS,
        group: "server",
        summary: "Returns information about the server; INFO raft shows the Raft state.",
        since: "1.0.0",
        arguments: &[string("section").optional().multiple()],
        parse: connection::info,
    },
    CommandSpec {
        name: "config",
        arity: -2,
        flags: LOCAL,
        keys: NO_KEYS,
        group: "server",
        summary: "CONFIG GET parameter: the few Redis settings that tools ask for.",
        since: "2.0.0",
        arguments: &[string("subcommand"), string("parameter").multiple()],
        parse: connection::config,
    },
    CommandSpec {
        name: "raft.addlearner",
        arity: 4,
        flags: ADMIN,
        keys: NO_KEYS,
        group: "server",
        summary: "Adds a node as a learner (it receives the log, does not vote); replies with every member's peer address.",
        since: "0.1.0",
        arguments: &[integer("id"), string("raft-address"), string("client-address")],
        parse: raft::add_learner,
    },
    CommandSpec {
        name: "raft.promote",
        arity: 2,
        flags: ADMIN,
        keys: NO_KEYS,
        group: "server",
        summary: "Makes a caught-up learner a voter, through a joint configuration; replies once done.",
        since: "0.1.0",
        arguments: &[integer("id")],
        parse: raft::promote,
    },
    CommandSpec {
        name: "raft.remove",
        arity: 2,
        flags: ADMIN,
        keys: NO_KEYS,
        group: "server",
        summary: "Removes a voter (through a joint configuration) or a learner; replies once done.",
        since: "0.1.0",
        arguments: &[integer("id")],
        parse: raft::remove,
    },
    CommandSpec {
        name: "raft.transfer",
        arity: 2,
        flags: ADMIN,
        keys: NO_KEYS,
        group: "server",
        summary: "Hands leadership to an up-to-date voter; replies once it leads.",
        since: "0.1.0",
        arguments: &[integer("id")],
        parse: raft::transfer,
    },
    CommandSpec {
        name: "raft.status",
        arity: 1,
        flags: LOCAL,
        keys: NO_KEYS,
        group: "server",
        summary: "Shows the membership as this node sees it: voters, learners, addresses, and as leader each member's progress.",
        since: "0.1.0",
        arguments: &[],
        parse: raft::status,
    },
];
