//! What the server does with hostile, broken or unlucky clients: limits, garbage,
//! disconnects, authentication, and a node that cannot serve.

use std::time::Duration;

use kvstore::node::{ReadError, WriteError};
use kvstore::resp::Frame;
use kvstore::server::ServerConfig;
use kvstore::state::{Limits, StateMachine};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{bulk, error_text, request, TestServer};

fn small_requests() -> ServerConfig {
    ServerConfig { request_size_bytes_max: 1024, ..ServerConfig::default() }
}

#[tokio::test]
async fn an_argument_larger_than_the_limit_gets_an_error_and_the_connection_closes() {
    let server = TestServer::start_with(small_requests()).await;
    let mut client = server.client().await;
    client.send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000\r\n").await;
    assert_eq!(error_text(&client.reply().await), "ERR Protocol error: invalid bulk length");
    client.expect_closed().await;
}

#[tokio::test]
async fn a_request_larger_than_the_limit_gets_an_error_and_the_connection_closes() {
    let server = TestServer::start_with(small_requests()).await;
    let mut client = server.client().await;
    let words: Vec<String> = std::iter::once("MSET".to_string()).chain((0..200).map(|n| format!("{n:010}"))).collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    client.send_raw(&request(&words)).await;
    assert!(error_text(&client.reply().await).starts_with("ERR Protocol error: request larger than 1024 bytes"));
    client.expect_closed().await;
    assert!(server.backend.state().requests.is_empty(), "nothing of the oversized request was applied");
}

#[tokio::test]
async fn garbage_gets_a_protocol_error_after_the_replies_before_it() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    client.send_raw(b"PING\r\n*1\r\n:5\r\nPING\r\n").await;
    assert_eq!(client.reply().await, Frame::simple("PONG"));
    assert_eq!(error_text(&client.reply().await), "ERR Protocol error: expected '$', got ':'");
    client.expect_closed().await;
    let mut other = server.client().await;
    assert_eq!(other.call(&["PING"]).await, Frame::simple("PONG"));
}

#[tokio::test]
async fn random_bytes_never_take_the_server_down() {
    let server = TestServer::start().await;
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for round in 0..64 {
        let length = 1 + (round * 37) % 300;
        let garbage: Vec<u8> = (0..length).map(|_| next_byte(&mut seed)).collect();
        let mut stream = TcpStream::connect(server.address).await.unwrap();
        stream.write_all(&garbage).await.unwrap();
        stream.shutdown().await.unwrap();
        let mut replies = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut replies)).await;
        assert!(read.is_ok(), "round {round}: the server did not close after the client did");
    }
    let mut client = server.client().await;
    assert_eq!(client.call(&["PING"]).await, Frame::simple("PONG"));
}

/// xorshift64: deterministic noise without a random-number crate.
fn next_byte(state: &mut u64) -> u8 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    (*state >> 24) as u8
}

#[tokio::test]
async fn a_client_leaving_mid_command_loses_what_it_completed_and_crashes_nothing() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut bytes = request(&["SET", "done", "1"]);
    bytes.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$5\r\nab");
    client.send_raw(&bytes).await;
    client.shut_down().await;
    drop(client);
    let mut other = server.client().await;
    let mut value = Frame::null();
    for _ in 0..100 {
        value = other.call(&["GET", "done"]).await;
        if value != Frame::null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(value, bulk("1"), "the complete command before the disconnect was applied");
    assert_eq!(other.call(&["GET", "half"]).await, Frame::null());
}

#[tokio::test]
async fn authentication_is_required_when_requirepass_is_set() {
    let config = ServerConfig { requirepass: Some("secret".into()), ..ServerConfig::default() };
    let server = TestServer::start_with(config).await;
    let mut client = server.client().await;
    assert_eq!(error_text(&client.call(&["GET", "k"]).await), "NOAUTH Authentication required.");
    assert_eq!(error_text(&client.call(&["PING"]).await), "NOAUTH Authentication required.");
    assert!(error_text(&client.call(&["NOSUCH"]).await).starts_with("ERR unknown command"));
    assert!(error_text(&client.call(&["HELLO", "2"]).await).starts_with("NOAUTH HELLO must be called"));
    let wrong = error_text(&client.call(&["AUTH", "guess"]).await);
    assert_eq!(wrong, "WRONGPASS invalid username-password pair or user is disabled.");
    assert!(error_text(&client.call(&["AUTH", "admin", "secret"]).await).starts_with("WRONGPASS"));
    assert_eq!(client.call(&["AUTH", "secret"]).await, Frame::ok());
    assert_eq!(client.call(&["SET", "k", "v"]).await, Frame::ok());
    let mut other = server.client().await;
    assert!(matches!(other.call(&["HELLO", "2", "AUTH", "default", "secret"]).await, Frame::Array(_)));
    assert_eq!(other.call(&["GET", "k"]).await, bulk("v"));
}

#[tokio::test]
async fn auth_without_requirepass_is_an_error() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    assert!(error_text(&client.call(&["AUTH", "x"]).await).starts_with("ERR AUTH <password> called without"));
    // Without requirepass the default user has no password, as client libraries assume.
    assert_eq!(client.call(&["AUTH", "default", "anything"]).await, Frame::ok());
    assert!(matches!(client.call(&["HELLO", "2", "AUTH", "default", "x"]).await, Frame::Array(_)));
    assert!(error_text(&client.call(&["AUTH", "admin", "x"]).await).starts_with("WRONGPASS"));
}

#[tokio::test]
async fn node_failures_say_whether_a_retry_is_safe() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    client.call(&["SET", "k", "1"]).await;
    server.backend.state().write_failure = Some(WriteError::NotApplied { reason: "no leader".into() });
    let not_applied = error_text(&client.call(&["SET", "k", "2"]).await);
    assert!(not_applied.starts_with("TRYAGAIN no leader"), "{not_applied}");
    server.backend.state().write_failure = Some(WriteError::OutcomeUnknown { reason: "leader lost".into() });
    let unknown = error_text(&client.call(&["SET", "k", "3"]).await);
    assert!(unknown.starts_with("UNKNOWN leader lost"), "{unknown}");
    server.backend.state().read_failure = Some(ReadError::Unavailable { reason: "no quorum".into() });
    assert!(error_text(&client.call(&["GET", "k"]).await).starts_with("TRYAGAIN no quorum"));
    assert_eq!(client.call(&["SET", "k", "4"]).await, Frame::ok());
    let sequences: Vec<u64> = server.backend.state().requests.iter().map(|request| request.sequence).collect();
    assert_eq!(sequences, vec![1, 4], "failed writes still used their sequence numbers");
}

#[tokio::test]
async fn a_failed_session_registration_fails_only_that_write() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    server.backend.state().write_failure = Some(WriteError::OutcomeUnknown { reason: "leader lost".into() });
    let error = error_text(&client.call(&["SET", "k", "1"]).await);
    assert!(error.starts_with("TRYAGAIN could not register a client session"), "{error}");
    assert_eq!(client.call(&["SET", "k", "1"]).await, Frame::ok());
    assert_eq!(server.backend.state().sessions.len(), 1);
}

#[tokio::test]
async fn an_expired_session_is_replaced_on_the_next_write() {
    let server = TestServer::start().await;
    server.backend.state().machine = StateMachine::new(Limits { sessions_max: 1, ..Limits::default() });
    let mut first = server.client().await;
    let mut second = server.client().await;
    assert_eq!(first.call(&["SET", "a", "1"]).await, Frame::ok());
    // The second client's session evicts the first's.
    assert_eq!(second.call(&["SET", "b", "1"]).await, Frame::ok());
    assert_eq!(error_text(&first.call(&["SET", "a", "2"]).await), "ERR session expired");
    assert_eq!(first.call(&["SET", "a", "3"]).await, Frame::ok());
    let state = server.backend.state();
    assert_eq!(state.sessions.len(), 3);
    assert_eq!(
        state.requests.last().map(|request| (request.session, request.sequence)),
        Some((Some(state.sessions[2]), 1))
    );
}
