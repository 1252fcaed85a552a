//! [`ServerConfig`]: what an operator may tune about the RESP server.

use crate::node::ReadMode;
use crate::resp::ParseLimits;

/// Settings of the RESP server. `ServerConfig::default()` behaves like a stock Redis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// The largest request a client may send, counted in bytes on the wire (512 MiB by
    /// default, like Redis' `proto-max-bulk-len`). It bounds every argument too, which the
    /// parser checks as soon as an argument's length arrives. A larger request gets a
    /// protocol error and the connection closes.
    pub request_size_bytes_max: usize,
    /// When set, clients must `AUTH` with this password first, as with Redis' `requirepass`.
    pub requirepass: Option<String>,
    /// The read mode of a new connection; `READMODE` changes it per connection.
    pub default_read_mode: ReadMode,
    /// The most keys one read may return: a RANGE holding more is refused, and a SCAN COUNT
    /// is capped to it. Bounds the memory and time of one reply.
    pub read_keys_max: usize,
    /// How many SCAN cursors the server remembers; older ones expire (see the module docs).
    pub scan_cursors_max: usize,
    /// The most requests one connection may have waiting for the node at once; beyond it the
    /// connection stops reading until replies go out.
    pub pipeline_depth_max: usize,
    /// While this many reply bytes wait to be sent on a connection, it stops reading new
    /// requests, so a client that never reads cannot grow the server's memory without bound.
    pub output_buffer_bytes_max: usize,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            request_size_bytes_max: 512 * 1024 * 1024,
            requirepass: None,
            default_read_mode: ReadMode::Linearizable,
            read_keys_max: 10_000,
            scan_cursors_max: 65_536,
            pipeline_depth_max: 1024,
            output_buffer_bytes_max: 64 * 1024 * 1024,
        }
    }
}

impl ServerConfig {
    /// The parser limits that enforce [`ServerConfig::request_size_bytes_max`] on each
    /// argument; the connection bounds the whole request by the same number.
    pub(super) fn parse_limits(&self) -> ParseLimits {
        ParseLimits { bulk_size_bytes_max: self.request_size_bytes_max, ..ParseLimits::default() }
    }
}
