//! The handshake that opens every peer connection: pure encoding, decoding and checks.
//!
//! ```text
//! offset  size  field
//! 0       4     magic "TLYP" (Tally peer), so a stray client is recognised at its first byte
//! 4       2     protocol version, u16 little-endian
//! 6       8+n   one frame (see the frame module) whose payload is a postcard Hello
//! ```
//!
//! The dialer sends its [`Hello`] first. The acceptor checks it ([`check_dialer`]) and
//! either closes the connection or answers with its own `Hello`, which the dialer checks
//! in turn ([`check_acceptor`]): that confirms it reached the node it meant to, in the
//! cluster it meant to, before it sends any message.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::frame::{decode_frame, encode_frame, Decoded, FrameDefect};

/// The first bytes of every connection.
pub const HANDSHAKE_MAGIC: [u8; 4] = *b"TLYP";

/// The protocol spoken after the handshake. A peer speaking another version is refused.
pub const PROTOCOL_VERSION: u16 = 1;

/// Bytes before the hello frame: the magic and the version.
pub const HELLO_PREFIX_SIZE_BYTES: usize = 6;

/// The largest hello payload accepted: ids and addresses are short, and a stranger must not
/// make us buffer much before it has proven anything.
pub const HELLO_SIZE_BYTES_MAX: u32 = 4096;

/// Who is on the other end of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The sender's cluster.
    pub cluster_id: String,
    /// The sender's node id.
    pub node_id: u64,
    /// The sender's client-facing address, if it has one to advertise.
    pub client_address: Option<String>,
}

/// Why handshake bytes are not a hello at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeDefect {
    /// The connection does not start with [`HANDSHAKE_MAGIC`].
    #[error("bad magic: not a Tally peer")]
    BadMagic,
    /// The peer speaks another protocol version.
    #[error("unsupported protocol version {version} (we speak {PROTOCOL_VERSION})")]
    UnsupportedVersion {
        /// The version the peer announced.
        version: u16,
    },
    /// The hello frame is damaged or oversized.
    #[error("hello frame: {0}")]
    Frame(#[from] FrameDefect),
    /// The hello payload is not a postcard [`Hello`].
    #[error("malformed hello: {reason}")]
    Malformed {
        /// What postcard reported.
        reason: String,
    },
}

/// Why a well-formed hello is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HelloRefusal {
    /// The peer belongs to another cluster.
    #[error("cluster id {received:?} is not ours ({expected:?})")]
    ClusterMismatch {
        /// Our cluster id.
        expected: String,
        /// The peer's cluster id.
        received: String,
    },
    /// The dialer's node id is not one of our peers (yet).
    #[error("node id {node_id} is not one of our peers")]
    UnknownNode {
        /// The id it claimed.
        node_id: u64,
    },
    /// The dialer claims to be us.
    #[error("node id {node_id} is our own")]
    ClaimsOurNodeId {
        /// The id it claimed.
        node_id: u64,
    },
    /// The acceptor is not the node we dialled.
    #[error("dialled node {expected} but node {received} answered")]
    UnexpectedNode {
        /// The peer we meant to reach.
        expected: u64,
        /// The node that answered.
        received: u64,
    },
}

/// Appends the magic, the version and the framed `hello` to `buffer`.
pub fn encode_hello(buffer: &mut Vec<u8>, hello: &Hello) {
    let payload = postcard::to_allocvec(hello).expect("a Hello always encodes");
    assert!(payload.len() <= HELLO_SIZE_BYTES_MAX as usize, "our own hello exceeds the limit");
    buffer.extend_from_slice(&HANDSHAKE_MAGIC);
    buffer.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    encode_frame(buffer, &payload);
}

/// Decodes the hello at the front of `bytes`. The magic is checked on whatever prefix is
/// present, so garbage is refused at its first wrong byte rather than after a timeout.
pub fn decode_hello(bytes: &[u8]) -> Result<Decoded<Hello>, HandshakeDefect> {
    let magic_present = bytes.len().min(HANDSHAKE_MAGIC.len());
    if bytes[..magic_present] != HANDSHAKE_MAGIC[..magic_present] {
        return Err(HandshakeDefect::BadMagic);
    }
    if bytes.len() < HELLO_PREFIX_SIZE_BYTES {
        return Ok(Decoded::Incomplete { bytes_needed: HELLO_PREFIX_SIZE_BYTES - bytes.len() });
    }
    let version = u16::from_le_bytes([bytes[4], bytes[5]]);
    if version != PROTOCOL_VERSION {
        return Err(HandshakeDefect::UnsupportedVersion { version });
    }
    match decode_frame(&bytes[HELLO_PREFIX_SIZE_BYTES..], HELLO_SIZE_BYTES_MAX)? {
        Decoded::Incomplete { bytes_needed } => Ok(Decoded::Incomplete { bytes_needed }),
        Decoded::Complete { value: payload, size_bytes } => Ok(Decoded::Complete {
            value: decode_hello_payload(payload)?,
            size_bytes: HELLO_PREFIX_SIZE_BYTES + size_bytes,
        }),
    }
}

fn decode_hello_payload(payload: &[u8]) -> Result<Hello, HandshakeDefect> {
    let malformed = |reason: String| HandshakeDefect::Malformed { reason };
    let (hello, rest) = postcard::take_from_bytes::<Hello>(payload).map_err(|error| malformed(error.to_string()))?;
    if !rest.is_empty() {
        return Err(malformed(format!("{} trailing bytes after the hello", rest.len())));
    }
    Ok(hello)
}

/// The acceptor's check of a dialer: same cluster, one of `peers` (the current ones, which
/// grow as peers are added), and not ourselves.
pub fn check_dialer<A>(
    hello: &Hello,
    cluster_id: &str,
    own_node_id: u64,
    peers: &BTreeMap<u64, A>,
) -> Result<(), HelloRefusal> {
    check_cluster(hello, cluster_id)?;
    if hello.node_id == own_node_id {
        return Err(HelloRefusal::ClaimsOurNodeId { node_id: hello.node_id });
    }
    if !peers.contains_key(&hello.node_id) {
        return Err(HelloRefusal::UnknownNode { node_id: hello.node_id });
    }
    Ok(())
}

/// The dialer's check of the acceptor's answer: same cluster, and the node we dialled.
pub fn check_acceptor(hello: &Hello, cluster_id: &str, expected_node_id: u64) -> Result<(), HelloRefusal> {
    check_cluster(hello, cluster_id)?;
    if hello.node_id != expected_node_id {
        return Err(HelloRefusal::UnexpectedNode { expected: expected_node_id, received: hello.node_id });
    }
    Ok(())
}

fn check_cluster(hello: &Hello, cluster_id: &str) -> Result<(), HelloRefusal> {
    if hello.cluster_id != cluster_id {
        return Err(HelloRefusal::ClusterMismatch {
            expected: cluster_id.to_string(),
            received: hello.cluster_id.clone(),
        });
    }
    Ok(())
}
