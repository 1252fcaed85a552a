//! Every command at least once, with the reply a Redis client expects.

use kvstore::node::ReadMode;
use kvstore::resp::Frame;

use crate::support::{bulk, bulk_text, bulks, error_text, TestClient, TestServer};

async fn connected() -> (TestServer, TestClient) {
    let server = TestServer::start().await;
    let client = server.client().await;
    (server, client)
}

#[tokio::test]
async fn string_commands_reply_like_redis() {
    let (_server, mut client) = connected().await;
    assert_eq!(client.call(&["PUT", "k", "v"]).await, Frame::integer(1));
    assert_eq!(client.call(&["GET", "k"]).await, bulk("v"));
    assert_eq!(client.call(&["APPEND", "k", "w"]).await, Frame::integer(2));
    assert_eq!(client.call(&["STRLEN", "k"]).await, Frame::integer(2));
    assert_eq!(client.call(&["STRLEN", "missing"]).await, Frame::integer(0));
    assert_eq!(client.call(&["MSET", "x", "1", "y", "2"]).await, Frame::ok());
    let values = Frame::array(vec![bulk("1"), Frame::null(), bulk("2")]);
    assert_eq!(client.call(&["MGET", "x", "nope", "y"]).await, values);
    assert_eq!(client.call(&["EXISTS", "x", "nope", "x"]).await, Frame::integer(2));
    assert_eq!(client.call(&["DEL", "x", "y", "nope"]).await, Frame::integer(2));
    assert_eq!(client.call(&["DBSIZE"]).await, Frame::integer(1));
}

#[tokio::test]
async fn set_supports_nx_xx_and_get_and_refuses_expiry() {
    let (_server, mut client) = connected().await;
    assert_eq!(client.call(&["SET", "k", "1", "XX"]).await, Frame::null());
    assert_eq!(client.call(&["SET", "k", "1", "NX"]).await, Frame::ok());
    assert_eq!(client.call(&["SET", "k", "2", "NX"]).await, Frame::null());
    assert_eq!(client.call(&["set", "k", "3", "xx", "get"]).await, bulk("1"));
    assert_eq!(client.call(&["GET", "k"]).await, bulk("3"));
    assert_eq!(error_text(&client.call(&["SET", "k", "4", "NX", "XX"]).await), "ERR syntax error");
    let expiry = error_text(&client.call(&["SET", "k", "4", "EX", "10"]).await);
    assert!(expiry.contains("not supported"), "{expiry}");
    assert_eq!(client.call(&["GET", "k"]).await, bulk("3"));
}

#[tokio::test]
async fn counters_increment_and_decrement() {
    let (_server, mut client) = connected().await;
    assert_eq!(client.call(&["INCR", "n"]).await, Frame::integer(1));
    assert_eq!(client.call(&["INCRBY", "n", "10"]).await, Frame::integer(11));
    assert_eq!(client.call(&["DECR", "n"]).await, Frame::integer(10));
    assert_eq!(client.call(&["DECRBY", "n", "4"]).await, Frame::integer(6));
    let not_integer = "ERR value is not an integer or out of range";
    assert_eq!(error_text(&client.call(&["INCRBY", "n", "x"]).await), not_integer);
    client.call(&["SET", "s", "abc"]).await;
    assert_eq!(error_text(&client.call(&["INCR", "s"]).await), not_integer);
}

#[tokio::test]
async fn cas_casver_and_getver_compare_values_and_versions() {
    let (_server, mut client) = connected().await;
    assert_eq!(client.call(&["GETVER", "k"]).await, Frame::null());
    assert_eq!(client.call(&["CASVER", "k", "0", "a"]).await, Frame::integer(1));
    assert_eq!(client.call(&["CASVER", "k", "0", "b"]).await, Frame::integer(0));
    let Frame::Array(value_and_version) = client.call(&["GETVER", "k"]).await else { panic!("GETVER is an array") };
    assert_eq!(value_and_version[0], bulk("a"));
    let Frame::Integer(version) = value_and_version[1] else { panic!("the version is an integer") };
    assert!(version > 0);
    assert_eq!(client.call(&["CAS", "k", "wrong", "b"]).await, Frame::integer(0));
    assert_eq!(client.call(&["CAS", "k", "a", "b"]).await, Frame::integer(1));
    assert_eq!(client.call(&["CASVER", "k", &version.to_string(), "c"]).await, Frame::integer(0));
    assert_eq!(client.call(&["GET", "k"]).await, bulk("b"));
}

#[tokio::test]
async fn range_is_end_exclusive_runs_to_the_end_with_plus_and_honours_limit() {
    let (_server, mut client) = connected().await;
    client.call(&["MSET", "a", "1", "b", "2", "c", "3", "d", "4"]).await;
    assert_eq!(client.call(&["RANGE", "b", "d"]).await, bulks(&["2", "3"]));
    assert_eq!(client.call(&["RANGE", "b", "+"]).await, bulks(&["2", "3", "4"]));
    assert_eq!(client.call(&["RANGE", "", "+", "LIMIT", "2", "WITHKEYS"]).await, bulks(&["a", "1", "b", "2"]));
    assert_eq!(client.call(&["RANGE", "x", "z"]).await, bulks(&[]));
    assert_eq!(error_text(&client.call(&["RANGE", "a", "z", "LIMIT"]).await), "ERR syntax error");
}

#[tokio::test]
async fn range_refuses_more_keys_than_the_bound_instead_of_cutting() {
    let config = kvstore::server::ServerConfig { read_keys_max: 2, ..Default::default() };
    let server = TestServer::start_with(config).await;
    let mut client = server.client().await;
    client.call(&["MSET", "a", "1", "b", "2", "c", "3"]).await;
    assert!(error_text(&client.call(&["RANGE", "a", "+"]).await).contains("more than 2 keys"));
    assert_eq!(client.call(&["RANGE", "a", "c"]).await, bulks(&["1", "2"]));
    assert!(error_text(&client.call(&["RANGE", "a", "+", "LIMIT", "3"]).await).contains("LIMIT"));
}

#[tokio::test]
async fn scan_walks_every_key_once_with_integer_cursors() {
    let (_server, mut client) = connected().await;
    for number in 0..25 {
        client.call(&["SET", &format!("key:{number:02}"), "v"]).await;
    }
    client.call(&["SET", "other", "v"]).await;
    let mut cursor = "0".to_string();
    let mut keys = Vec::new();
    loop {
        let reply = client.call(&["SCAN", &cursor, "MATCH", "key:*", "COUNT", "7"]).await;
        let Frame::Array(page) = reply else { panic!("a page is an array") };
        cursor = bulk_text(&page[0]);
        assert!(cursor.parse::<u64>().is_ok(), "cursor {cursor} is an integer");
        let Frame::Array(found) = &page[1] else { panic!("keys are an array") };
        keys.extend(found.iter().map(bulk_text));
        if cursor == "0" {
            break;
        }
    }
    let expected: Vec<String> = (0..25).map(|number| format!("key:{number:02}")).collect();
    assert_eq!(keys, expected);
    assert_eq!(error_text(&client.call(&["SCAN", "999"]).await), "ERR invalid cursor");
}

#[tokio::test]
async fn connection_commands_reply_like_redis() {
    let (_server, mut client) = connected().await;
    assert_eq!(client.call(&["PING"]).await, Frame::simple("PONG"));
    assert_eq!(client.call(&["ping", "hello"]).await, bulk("hello"));
    assert_eq!(client.call(&["ECHO", "hi"]).await, bulk("hi"));
    assert_eq!(client.call(&["SELECT", "0"]).await, Frame::ok());
    assert_eq!(error_text(&client.call(&["SELECT", "1"]).await), "ERR DB index is out of range");
    assert_eq!(client.call(&["CLIENT", "GETNAME"]).await, Frame::null());
    assert_eq!(client.call(&["CLIENT", "SETNAME", "tester"]).await, Frame::ok());
    assert_eq!(client.call(&["client", "getname"]).await, bulk("tester"));
    let Frame::Integer(id) = client.call(&["CLIENT", "ID"]).await else { panic!("CLIENT ID is an integer") };
    let info = bulk_text(&client.call(&["CLIENT", "INFO"]).await);
    assert!(info.starts_with(&format!("id={id} ")) && info.contains("name=tester"), "{info}");
    let unknown = error_text(&client.call(&["CLIENT", "KILL"]).await);
    assert_eq!(unknown, "ERR unknown subcommand 'KILL'. Try CLIENT HELP.");
}

#[tokio::test]
async fn hello_answers_resp2_as_a_flat_map_and_refuses_resp3() {
    let (_server, mut client) = connected().await;
    let Frame::Array(fields) = client.call(&["HELLO", "2", "SETNAME", "me"]).await else { panic!("HELLO is an array") };
    assert_eq!(fields.len() % 2, 0);
    let proto = fields.iter().position(|field| *field == bulk("proto")).unwrap();
    assert_eq!(fields[proto + 1], Frame::integer(2));
    assert_eq!(client.call(&["CLIENT", "GETNAME"]).await, bulk("me"));
    assert!(matches!(client.call(&["HELLO"]).await, Frame::Array(_)));
    assert_eq!(error_text(&client.call(&["HELLO", "3"]).await), "NOPROTO unsupported protocol version");
}

#[tokio::test]
async fn command_describes_the_table_and_docs_feed_redis_cli() {
    let (_server, mut client) = connected().await;
    let Frame::Integer(count) = client.call(&["COMMAND", "COUNT"]).await else { panic!("COUNT is an integer") };
    let Frame::Array(table) = client.call(&["COMMAND"]).await else { panic!("COMMAND is an array") };
    assert_eq!(table.len() as i64, count);
    let Frame::Array(docs) = client.call(&["COMMAND", "DOCS"]).await else { panic!("DOCS is an array") };
    assert_eq!(docs.len() as i64, 2 * count);
    let Frame::Array(get) = client.call(&["COMMAND", "DOCS", "get"]).await else { panic!("DOCS is an array") };
    assert_eq!(get[0], bulk("get"));
    let Frame::Array(info) = client.call(&["COMMAND", "INFO", "get", "nosuch"]).await else { panic!("an array") };
    assert_eq!(info[1], Frame::null());
    let Frame::Array(get_entry) = &info[0] else { panic!("an entry is an array") };
    assert_eq!(get_entry[..2], [bulk("get"), Frame::integer(2)]);
}

#[tokio::test]
async fn info_has_a_raft_section_with_the_role() {
    let (server, mut client) = connected().await;
    let raft = bulk_text(&client.call(&["INFO", "raft"]).await);
    for line in
        ["role:leader", "term:3", "leader_id:1", "commit_index:", "applied_index:", "log_entries:", "voters:1,2,3"]
    {
        assert!(raft.contains(line), "{line} missing from {raft}");
    }
    assert!(!raft.contains("# Server"));
    server.backend.state().status.role = engine::Role::PreCandidate;
    assert!(bulk_text(&client.call(&["INFO", "RAFT"]).await).contains("role:candidate"));
    let everything = bulk_text(&client.call(&["INFO"]).await);
    assert!(everything.contains("# Server\r\nredis_version:") && everything.contains("# Raft"), "{everything}");
    assert!(bulk_text(&client.call(&["INFO", "server"]).await).contains("tcp_port:"));
}

#[tokio::test]
async fn readmode_switches_the_mode_of_this_connection_only() {
    let (server, mut client) = connected().await;
    assert_eq!(client.call(&["READMODE"]).await, bulk("linearizable"));
    assert_eq!(client.call(&["READMODE", "stale"]).await, Frame::ok());
    client.call(&["GET", "k"]).await;
    let mut other = server.client().await;
    other.call(&["GET", "k"]).await;
    let modes: Vec<ReadMode> = server.backend.state().reads.iter().map(|(_, mode)| *mode).collect();
    assert_eq!(modes, vec![ReadMode::Stale, ReadMode::Linearizable]);
    assert!(error_text(&client.call(&["READMODE", "fast"]).await).starts_with("ERR READMODE"));
}

#[tokio::test]
async fn config_get_answers_what_redis_benchmark_asks() {
    let (_server, mut client) = connected().await;
    assert_eq!(client.call(&["CONFIG", "GET", "save"]).await, bulks(&["save", ""]));
    assert_eq!(client.call(&["CONFIG", "GET", "nosuch"]).await, bulks(&[]));
}

#[tokio::test]
async fn quit_replies_ok_and_closes() {
    let (_server, mut client) = connected().await;
    assert_eq!(client.call(&["QUIT"]).await, Frame::ok());
    client.expect_closed().await;
}

#[tokio::test]
async fn unknown_commands_and_wrong_arities_get_redis_errors() {
    let (_server, mut client) = connected().await;
    let unknown = error_text(&client.call(&["foo", "a", "b"]).await);
    assert_eq!(unknown, "ERR unknown command 'foo', with args beginning with: 'a' 'b' ");
    assert_eq!(error_text(&client.call(&["GET"]).await), "ERR wrong number of arguments for 'get' command");
    assert_eq!(error_text(&client.call(&["Get", "a", "b"]).await), "ERR wrong number of arguments for 'get' command");
    assert_eq!(error_text(&client.call(&["MSET", "a"]).await), "ERR wrong number of arguments for 'mset' command");
    assert_eq!(client.call(&["PING"]).await, Frame::simple("PONG"), "errors keep the connection open");
}
