//! What nodes say to each other: Raft traffic, and client requests a follower forwards to the
//! leader (and the leader's answers).

use serde::{Deserialize, Serialize};

use crate::node::api::{ReadError, WriteError};
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
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForwardedRequest {
    Write(Request),
    Read(Query),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForwardedOutcome {
    Write(Result<Reply, WriteError>),
    Read(Result<Reply, ReadError>),
}
