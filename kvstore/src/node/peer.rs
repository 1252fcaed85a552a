//! What nodes say to each other: Raft traffic, client requests a follower forwards to the
//! leader (and the leader's answers), and a follower's requests for a read index.

use serde::{Deserialize, Serialize};

use crate::node::api::{AdminError, AdminReply, AdminRequest, ReadError, ReadMode, WriteError};
use crate::state::{Query, Reply, Request};

/// One message on the peer transport.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerMessage {
    Raft(engine::Message),
    /// A follower asks the leader to serve a client request; `id` is the follower's.
    Forward {
        id: u64,
        request: ForwardedRequest,
    },
    /// The leader's answer to a forwarded request.
    ForwardReply {
        id: u64,
        outcome: ForwardedOutcome,
    },
    /// A follower serving a `follower`-mode read asks the leader for a read index.
    ReadIndexRequest {
        id: u64,
    },
    /// The leader's read index for request `id`: the follower answers the reads once it has
    /// applied that far. `None`: the node asked does not lead (any more); ask again.
    ReadIndexReply {
        id: u64,
        index: Option<engine::Index>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForwardedRequest {
    Write(Request),
    /// A read the leader serves in `mode` (linearizable or lease).
    Read {
        query: Query,
        mode: ReadMode,
    },
    /// `retry`: the follower forwarded it before and got no answer, so it may already be
    /// done (see `admin.rs`).
    Admin {
        request: AdminRequest,
        retry: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForwardedOutcome {
    Write(Result<Reply, WriteError>),
    Read(Result<Reply, ReadError>),
    Admin(Result<AdminReply, AdminError>),
}
