//! Commands answered by the server itself, and the per-connection state they read and change.

use std::net::SocketAddr;

use bytes::Bytes;

use super::commands::Local;
use super::introspection;
use super::listener::Shared;
use crate::node::{Backend, ReadMode};
use crate::resp::Frame;

/// The protocol version the server speaks.
const PROTOCOL_VERSION: i64 = 2;

/// The Redis version whose behaviour the server follows, as HELLO and INFO report it.
/// Client libraries gate features on it.
pub(super) const REDIS_COMPATIBLE_VERSION: &str = "7.0.0";

/// What the server knows about one connection's client.
#[derive(Debug)]
pub(super) struct Client {
    /// Unique within the server, from 1.
    pub(super) id: u64,
    pub(super) name: Option<Bytes>,
    /// Whether the client may run commands; true from the start without `requirepass`.
    pub(super) authenticated: bool,
    pub(super) read_mode: ReadMode,
    pub(super) peer: SocketAddr,
    pub(super) local: Option<SocketAddr>,
}

/// Runs a local command and returns its reply.
pub(super) fn execute<B: Backend>(local: Local, client: &mut Client, shared: &Shared<B>) -> Frame {
    match local {
        Local::Reply(frame) => frame,
        Local::Hello { auth, name } => hello(auth, name, client, shared),
        Local::Auth { user, password } => authenticate(user.as_deref(), &password, client, shared),
        Local::ClientSetName(name) => {
            client.name = (!name.is_empty()).then_some(name);
            Frame::ok()
        }
        Local::ClientGetName => client.name.clone().map_or_else(Frame::null, Frame::bulk),
        Local::ClientId => Frame::integer(i64::try_from(client.id).unwrap_or(i64::MAX)),
        Local::ClientInfo => Frame::bulk(client_info(client)),
        Local::CommandTable => introspection::command_table(),
        Local::CommandCount => introspection::command_count(),
        Local::CommandDocs(names) => introspection::command_docs(&names),
        Local::CommandInfo(names) => introspection::command_info(&names),
        Local::CommandList => introspection::command_list(),
        Local::Info(sections) => introspection::info(&sections, client, shared),
        Local::ConfigGet(parameters) => config_get(&parameters, shared),
        Local::ReadMode(Some(mode)) => {
            client.read_mode = mode;
            Frame::ok()
        }
        Local::ReadMode(None) => Frame::bulk(client.read_mode.name()),
        Local::RaftStatus => Frame::bulk(introspection::raft_status(&shared.backend.status())),
        Local::Quit => Frame::ok(),
    }
}

/// HELLO: authenticates if asked, then refuses to go on for an unauthenticated client, as
/// Redis does, then names the client and describes the server.
fn hello<B: Backend>(
    auth: Option<(Bytes, Bytes)>,
    name: Option<Bytes>,
    client: &mut Client,
    shared: &Shared<B>,
) -> Frame {
    if let Some((user, password)) = auth {
        let reply = authenticate(Some(&user), &password, client, shared);
        if matches!(reply, Frame::Error(_)) {
            return reply;
        }
    }
    if !client.authenticated {
        return Frame::error(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH \
             <user> <pass> option can be used to authenticate the client and select the RESP protocol version at \
             the same time",
        );
    }
    if let Some(name) = name {
        client.name = (!name.is_empty()).then_some(name);
    }
    // RESP2 has no map type, so the map goes out as a flat array of keys and values.
    Frame::array(vec![
        Frame::bulk("server"),
        Frame::bulk("redis"),
        Frame::bulk("version"),
        Frame::bulk(REDIS_COMPATIBLE_VERSION),
        Frame::bulk("proto"),
        Frame::integer(PROTOCOL_VERSION),
        Frame::bulk("id"),
        Frame::integer(i64::try_from(client.id).unwrap_or(i64::MAX)),
        Frame::bulk("mode"),
        Frame::bulk("standalone"),
        Frame::bulk("role"),
        Frame::bulk("master"),
        Frame::bulk("modules"),
        Frame::array(vec![]),
    ])
}

/// AUTH against `requirepass`, with Redis' replies. The only user is `default`. Without
/// `requirepass` it has no password, so naming it succeeds whatever the password, while
/// the one-argument form is refused as a likely configuration mistake, as in Redis.
fn authenticate<B: Backend>(user: Option<&[u8]>, password: &[u8], client: &mut Client, shared: &Shared<B>) -> Frame {
    let user_known = user.is_none_or(|user| user == b"default");
    let accepted = match (&shared.config.requirepass, user) {
        (Some(expected), _) => user_known && equal_in_constant_time(password, expected.as_bytes()),
        (None, Some(_)) => user_known,
        (None, None) => {
            return Frame::error(
                "ERR AUTH <password> called without any password configured for the default user. Are you sure \
                 your configuration is correct?",
            )
        }
    };
    if accepted {
        client.authenticated = true;
        Frame::ok()
    } else {
        Frame::error("WRONGPASS invalid username-password pair or user is disabled.")
    }
}

/// Compares without stopping at the first difference, so that response times do not tell
/// an attacker how much of a guessed password was right.
fn equal_in_constant_time(left: &[u8], right: &[u8]) -> bool {
    let difference = left.iter().zip(right).fold(0u8, |difference, (a, b)| difference | (a ^ b));
    left.len() == right.len() && difference == 0
}

/// CLIENT INFO's one line, with the fields that make sense here.
fn client_info(client: &Client) -> String {
    let name = client.name.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
    let local = client.local.map(|address| address.to_string()).unwrap_or_default();
    format!("id={} addr={} laddr={local} name={name} db=0 resp=2\n", client.id, client.peer)
}

/// CONFIG GET: the parameters tools ask for, answered as a flat array of name and value.
/// Unknown parameters are left out, as in Redis.
fn config_get<B: Backend>(parameters: &[Bytes], shared: &Shared<B>) -> Frame {
    let known = [
        // Writes are durable through the Raft log, which is what appendonly means to a tool.
        ("appendonly", "yes".to_string()),
        ("save", String::new()),
        ("databases", "1".to_string()),
        ("proto-max-bulk-len", shared.config.request_size_bytes_max.to_string()),
    ];
    let mut reply = Vec::new();
    for (name, value) in known {
        if parameters.iter().any(|parameter| parameter.eq_ignore_ascii_case(name.as_bytes())) {
            reply.push(Frame::bulk(name));
            reply.push(Frame::bulk(value));
        }
    }
    Frame::array(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_comparison_is_plain_equality() {
        assert!(equal_in_constant_time(b"secret", b"secret"));
        assert!(!equal_in_constant_time(b"secret", b"secreT"));
        assert!(!equal_in_constant_time(b"secret", b"secret!"));
        assert!(!equal_in_constant_time(b"", b"x"));
        assert!(equal_in_constant_time(b"", b""));
    }
}
