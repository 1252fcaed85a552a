//! The README session, pipelining, ordering within a connection, and client sessions.

use std::time::Duration;

use kvstore::resp::Frame;
use kvstore::state::{Command, SessionId};

use crate::support::{bulk, bulks, request, TestServer};

#[tokio::test]
async fn the_readme_session_answers_as_documented() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    assert_eq!(client.call(&["put", "a", "A"]).await, Frame::integer(1));
    assert_eq!(client.call(&["set", "b", "B"]).await, Frame::ok());
    assert_eq!(client.call(&["range", "a", "c"]).await, bulks(&["A", "B"]));
    assert_eq!(client.call(&["range", "a", "c", "WITHKEYS"]).await, bulks(&["a", "A", "b", "B"]));
    assert_eq!(client.call(&["del", "b"]).await, Frame::integer(1));
    assert_eq!(client.call(&["get", "b"]).await, Frame::null());
}

#[tokio::test]
async fn a_hundred_pipelined_commands_get_a_hundred_replies_in_order() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut pipeline = Vec::new();
    for number in 0..100 {
        let key = format!("key{number:03}");
        let command = match number % 4 {
            0 => request(&["SET", &key, &number.to_string()]),
            1 => request(&["GET", &format!("key{:03}", number - 1)]),
            2 => request(&["INCR", "counter"]),
            _ => request(&["ECHO", &key]),
        };
        pipeline.extend(command);
    }
    client.send_raw(&pipeline).await;
    for number in 0..100 {
        let expected = match number % 4 {
            0 => Frame::ok(),
            1 => bulk(&(number - 1).to_string()),
            2 => Frame::integer(number / 4 + 1),
            _ => bulk(&format!("key{number:03}")),
        };
        assert_eq!(client.reply().await, expected, "reply {number}");
    }
}

#[tokio::test]
async fn a_pipelined_read_sees_the_write_before_it_and_not_the_one_after() {
    let server = TestServer::start().await;
    // Slow writes would let an unordered read overtake them.
    server.backend.state().write_delay = Duration::from_millis(20);
    let mut client = server.client().await;
    let mut pipeline = request(&["SET", "a", "1"]);
    pipeline.extend(request(&["GET", "a"]));
    pipeline.extend(request(&["SET", "a", "2"]));
    pipeline.extend(request(&["GET", "a"]));
    client.send_raw(&pipeline).await;
    assert_eq!(client.reply().await, Frame::ok());
    assert_eq!(client.reply().await, bulk("1"));
    assert_eq!(client.reply().await, Frame::ok());
    assert_eq!(client.reply().await, bulk("2"));
}

#[tokio::test]
async fn writes_are_numbered_one_two_three_in_one_lazily_registered_session() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    assert_eq!(client.call(&["GET", "a"]).await, Frame::null());
    assert!(server.backend.state().sessions.is_empty(), "reads register no session");
    client.call(&["SET", "a", "1"]).await;
    client.call(&["INCR", "a"]).await;
    client.call(&["DEL", "a"]).await;
    let state = server.backend.state();
    assert_eq!(state.sessions.len(), 1);
    let session = state.sessions[0];
    let numbered: Vec<(Option<SessionId>, u64)> =
        state.requests.iter().map(|request| (request.session, request.sequence)).collect();
    assert_eq!(numbered, vec![(Some(session), 1), (Some(session), 2), (Some(session), 3)]);
    assert_eq!(state.requests[1].command, Command::IncrBy { key: "a".into(), delta: 1 });
}

#[tokio::test]
async fn each_connection_has_its_own_session() {
    let server = TestServer::start().await;
    let mut first = server.client().await;
    let mut second = server.client().await;
    first.call(&["SET", "a", "1"]).await;
    second.call(&["SET", "b", "1"]).await;
    first.call(&["SET", "a", "2"]).await;
    let state = server.backend.state();
    assert_eq!(state.sessions.len(), 2);
    let sequences: Vec<u64> = state.requests.iter().map(|request| request.sequence).collect();
    assert_eq!(sequences, vec![1, 1, 2]);
}

#[tokio::test]
async fn metrics_count_calls_and_errors_per_command() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    client.call(&["SET", "a", "1"]).await;
    client.call(&["SET", "a", "1", "BOGUS"]).await;
    client.call(&["NOSUCH"]).await;
    let snapshot = server.metrics.snapshot();
    let set = snapshot.commands.iter().find(|command| command.name == "set").unwrap();
    assert_eq!((set.calls, set.errors), (2, 1));
    assert_eq!(set.latency_buckets.iter().sum::<u64>(), 2);
    assert_eq!(snapshot.unknown_commands, 1);
    assert_eq!(snapshot.connections_open, 1);
}
