//! The RESP2 server: what redis-cli, redis-benchmark and Redis client libraries talk to.
//!
//! [`Server::serve`] accepts connections and runs one task per connection. A connection owns
//! its receive buffer and its [`Parser`](crate::resp::Parser), turns every complete request
//! into an action through the command table, sends writes and reads to the node through the
//! [`Backend`] trait, and answers pipelined requests strictly in the order they arrived.
//!
//! # Ordering within a connection
//! Replies go out in request order. Beyond that, a connection keeps the order of its own
//! operations: consecutive reads run concurrently, but a read waits for the write before it,
//! and a write waits for every request before it. So a pipelined `SET a 1` followed by `GET a`
//! reads 1, and `GET a` followed by `SET a 2` never reads 2. Writes of one connection are
//! therefore one at a time, which is also what client sessions need: a session caches only
//! its last reply, so a retried write is recognised only while it is the session's newest
//! (see [`crate::state`]). Writes from different connections still batch into one Raft
//! append.
//!
//! # Client sessions
//! A connection registers a client session on its first write
//! ([`Backend::register_session`]) and numbers its writes 1, 2, 3, ... within it, so that the
//! node may retry a write after a leader change without applying it twice. A write refused
//! because the session expired starts a fresh session on the next write.
//!
//! # Replies and error prefixes
//! - State machine replies become RESP in one place (`reply`): `Ok` is `+OK`, integers
//!   `:n`, values bulk strings or nil, arrays arrays, and command errors `-ERR ...`.
//! - `-TRYAGAIN <reason> (not applied; safe to retry)`: a write that certainly did not take
//!   effect ([`WriteError::NotApplied`]), or a read the node could not serve
//!   ([`ReadError::Unavailable`]).
//! - `-UNKNOWN <reason> (the write may or may not have been applied)`: a write whose fate
//!   could not be settled ([`WriteError::OutcomeUnknown`]). Never retry such a write blindly
//!   unless it is idempotent.
//! - `-NOAUTH Authentication required.` before `AUTH` when `requirepass` is set;
//!   `-WRONGPASS ...` for a wrong password; `-NOPROTO ...` for `HELLO 3`.
//! - Malformed input gets `-ERR Protocol error: ...` and the connection closes, as in Redis.
//!
//! # Commands beyond Redis
//! - `PUT key value`: sets the key; replies `:1`.
//! - `RANGE start end [LIMIT n] [WITHKEYS]`: the values (or key, value, key, value, ...) of the
//!   keys in `[start, end)`, in byte order. `end` is exclusive; an `end` of `+` means "to the
//!   last key" (so the literal key `+` cannot be an end; the empty string is the lowest
//!   start). Without `LIMIT`, a range holding more than
//!   [`ServerConfig::read_keys_max`] keys is refused rather than silently cut; `LIMIT` may
//!   not exceed that bound.
//! - `CAS key expected new`: sets `key` to `new` if it holds exactly `expected`; `:1` if it
//!   applied, `:0` if not. `expected` is always a value: to require that the key is absent,
//!   use `CASVER key 0 new` (or `SET key new NX`).
//! - `GETVER key`: `[value, version]`, or nil; the version is the Raft index of the write
//!   that last stored the key.
//! - `CASVER key version new`: sets `key` to `new` if its version is `version`, where `0`
//!   means "absent"; `:1` or `:0`. Unlike `CAS` it cannot be fooled by a value that changed
//!   and changed back.
//! - `READMODE [linearizable|lease|follower|stale]`: sets (or, without an argument, shows) the
//!   read mode of the connection (see `node::ReadMode`). `stale` reads this node's state as it
//!   is: fast, possibly old.
//!
//! # SCAN cursors
//! The state machine's cursors are keys, not numbers, but redis-cli `--scan` and most client
//! libraries parse the cursor as an integer. So SCAN replies with small integers that the
//! server maps to the real cursor in a bounded table ([`ServerConfig::scan_cursors_max`]
//! newest cursors). A cursor is valid only on the node that issued it and only while it is
//! among the newest ones; an expired cursor gets `-ERR invalid cursor`. The state machine's
//! own tokens (`k<hex key>`) are accepted as input too.
//!
//! # Code map
//! - `config`: [`ServerConfig`].
//! - `listener`: [`Server`], the accept loop and what connections share.
//! - `connection`: one connection's loop: buffers, ordering, flushing.
//! - `dispatch`: an action becomes a future: sessions, read modes, the ordering rules.
//! - `commands`: the command table; one small parse function per command.
//! - `local`: commands answered without the node (PING, HELLO, AUTH, CLIENT, ...).
//! - `introspection`: COMMAND, COMMAND DOCS and INFO.
//! - `reads`: RANGE's bound and SCAN's integer cursors around the node's query.
//! - `reply`: [`Reply`](crate::state::Reply) and backend errors to RESP frames.
//! - `cursors`: the SCAN cursor table.
//! - `metrics`: [`ServerMetrics`], counters and latencies per command.
//!
//! **Architecture Invariant:** no input from a client can panic the server; a bad request
//! is an error reply, and a bad frame an error reply followed by closing that connection.

mod commands;
mod config;
mod connection;
mod cursors;
mod dispatch;
mod introspection;
mod listener;
mod local;
mod metrics;
mod reads;
mod reply;

pub use config::ServerConfig;
pub use listener::{serve, Server};
pub use metrics::{CommandMetrics, MetricsSnapshot, ServerMetrics, LATENCY_BUCKET_BOUNDS_MICROS};

#[cfg(doc)]
use crate::node::{Backend, ReadError, WriteError};
