//! The exporter from fixed snapshots: the text it renders, and the endpoint over TCP.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use engine::Role;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;
use crate::raft_store::SYNC_DURATION_BUCKET_BOUNDS_MICROS;
use crate::server::ServerMetrics;
use crate::transport::status::PeerStatus;

const PATIENCE: Duration = Duration::from_secs(10);

fn peer(port: u16, outbound_connected: bool, inbound_connected: bool) -> PeerStatus {
    PeerStatus {
        address: SocketAddr::from(([127, 0, 0, 1], port)),
        outbound_connected,
        inbound_connected,
        client_address: None,
        last_error: None,
        connections_established: 1,
        frames_sent: 5,
        bytes_sent: 800,
        messages_sent: 9,
        frames_received: 4,
        bytes_received: 600,
        messages_received: 8,
        messages_dropped_queue_full: 2,
        messages_dropped_by_fault: 0,
        messages_dropped_unsendable: 0,
        messages_lost_on_error: 0,
        messages_dropped_unreachable: 0,
    }
}

/// A leader in term 7 that served three GETs (one an error: 80 µs, 900 µs, 900 µs) and
/// synced five batches in 80 µs each.
fn fixed_snapshots() -> Snapshots {
    let mut server = ServerMetrics::default().snapshot();
    let get = server.commands.iter_mut().find(|command| command.name == "get").expect("GET is in the table");
    get.calls = 3;
    get.errors = 1;
    get.latency_micros_sum = 1_880;
    get.latency_buckets[0] = 1;
    get.latency_buckets[3] = 2;
    server.connections_open = 2;
    let mut sync_duration_buckets = vec![0; SYNC_DURATION_BUCKET_BOUNDS_MICROS.len() + 1];
    sync_duration_buckets[2] = 5;
    Snapshots {
        server,
        node_status: NodeStatus {
            id: 1,
            role: Role::Leader,
            term: 7,
            leader_id: Some(1),
            commit_index: 42,
            applied_index: 41,
            last_log_index: 43,
            log_entries: 43,
            voters: vec![1, 2, 3],
            snapshot_index: 0,
            snapshots_saved: 0,
            snapshots_installed: 0,
            membership: Default::default(),
        },
        node_metrics: NodeMetricsSnapshot {
            write_proposals: 10,
            read_index_requests: 4,
            ..NodeMetricsSnapshot::default()
        },
        storage: StorageMetricsSnapshot {
            syncs: 5,
            sync_duration_micros_sum: 400,
            sync_duration_buckets,
            wal_bytes_written: 12_345,
        },
        transport: Some(TransportStatus {
            node_id: 1,
            peers: BTreeMap::from([(2, peer(7102, true, false)), (3, peer(7103, false, true))]),
            messages_dropped_unknown_peer: 0,
            connections_refused: 1,
            connections_over_limit: 0,
        }),
    }
}

fn rendered() -> String {
    render(&registry(Arc::new(fixed_snapshots()))).expect("renders into a string")
}

#[test]
fn the_rendered_text_holds_the_snapshot_values() {
    let text = rendered();
    let expected = [
        "tally_commands_total{command=\"get\"} 3",
        "tally_commands_total{command=\"set\"} 0",
        "tally_command_errors_total{command=\"get\"} 1",
        "tally_command_duration_seconds_bucket{le=\"0.0001\",command=\"get\"} 1",
        "tally_command_duration_seconds_bucket{le=\"0.0005\",command=\"get\"} 1",
        "tally_command_duration_seconds_bucket{le=\"0.001\",command=\"get\"} 3",
        "tally_command_duration_seconds_bucket{le=\"+Inf\",command=\"get\"} 3",
        "tally_command_duration_seconds_count{command=\"get\"} 3",
        "tally_command_duration_seconds_sum{command=\"get\"} 0.00188",
        "tally_client_connections 2",
        "tally_raft_role{role=\"leader\"} 1",
        "tally_raft_role{role=\"follower\"} 0",
        "tally_raft_term 7",
        "tally_raft_leader_id 1",
        "tally_raft_commit_index 42",
        "tally_raft_applied_index 41",
        "tally_raft_write_proposals_total 10",
        "tally_raft_read_index_requests_total 4",
        "tally_fsync_duration_seconds_count 5",
        "tally_fsync_duration_seconds_sum 0.0004",
        "tally_fsync_duration_seconds_bucket{le=\"0.00005\"} 0",
        "tally_fsync_duration_seconds_bucket{le=\"0.0001\"} 5",
        "tally_fsync_duration_seconds_bucket{le=\"+Inf\"} 5",
        "tally_wal_bytes_written_total 12345",
        "tally_peer_connected{peer=\"2\",direction=\"outbound\"} 1",
        "tally_peer_connected{peer=\"2\",direction=\"inbound\"} 0",
        "tally_peer_connected{peer=\"3\",direction=\"inbound\"} 1",
        "tally_peer_messages_sent_total{peer=\"3\"} 9",
        "tally_peer_messages_dropped_total{peer=\"2\",reason=\"queue_full\"} 2",
        "tally_peer_connections_refused_total 1",
    ];
    let lines: Vec<&str> = text.lines().collect();
    for line in expected {
        assert!(lines.contains(&line), "missing {line:?} in:\n{text}");
    }
}

#[test]
fn the_rendered_text_is_well_formed_openmetrics() {
    let text = rendered();
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(
        text.contains("# TYPE tally_fsync_duration_seconds histogram\n# UNIT tally_fsync_duration_seconds seconds\n")
    );
    assert!(text.contains("# TYPE tally_raft_term gauge\n"));
    assert!(text.contains("# TYPE tally_wal_bytes_written counter\n"));
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        assert!(line.starts_with("tally_"), "{line:?} lacks the prefix");
        let value = line.rsplit(' ').next().expect("a value");
        assert!(value.parse::<f64>().is_ok(), "{line:?} has no numeric value");
    }
}

#[test]
fn a_stopped_transport_leaves_out_only_the_peer_families() {
    let snapshots = Snapshots { transport: None, ..fixed_snapshots() };
    let text = render(&registry(Arc::new(snapshots))).expect("renders into a string");
    assert!(!text.contains("tally_peer_"), "{text}");
    assert!(text.contains("tally_raft_term 7\n"), "{text}");
}

async fn start_endpoint() -> MetricsEndpoint {
    let listen = SocketAddr::from(([127, 0, 0, 1], 0));
    MetricsEndpoint::start(listen, Arc::new(fixed_snapshots())).await.expect("binds a loopback port")
}

/// Sends `request`, closes our side, and returns everything the endpoint answered.
async fn exchange(address: SocketAddr, request: &[u8]) -> String {
    let exchange = async {
        let mut stream = TcpStream::connect(address).await?;
        stream.write_all(request).await?;
        stream.shutdown().await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(PATIENCE, exchange).await.expect("answered in time").expect("no i/o error");
    String::from_utf8(response).expect("the endpoint answers in UTF-8")
}

fn body_of(response: &str) -> &str {
    response.split_once("\r\n\r\n").expect("a head and a body").1
}

#[tokio::test]
async fn get_metrics_answers_openmetrics_text() {
    let endpoint = start_endpoint().await;
    let response = exchange(endpoint.local_address(), b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n").await;
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.contains("\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\n"));
    let body = body_of(&response);
    assert!(response.contains(&format!("\r\nContent-Length: {}\r\n", body.len())), "{response}");
    assert!(body.contains("\ntally_raft_term 7\n"), "{body}");
    assert!(body.ends_with("# EOF\n"));
}

#[tokio::test]
async fn other_paths_and_methods_are_refused() {
    let endpoint = start_endpoint().await;
    let address = endpoint.local_address();
    let not_found = exchange(address, b"GET /other HTTP/1.1\r\n\r\n").await;
    assert!(not_found.starts_with("HTTP/1.1 404 Not Found\r\n"), "{not_found}");
    let not_allowed = exchange(address, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").await;
    assert!(not_allowed.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"), "{not_allowed}");
    assert!(not_allowed.contains("\r\nAllow: GET\r\n"), "{not_allowed}");
}

#[tokio::test]
async fn garbage_does_not_stop_the_endpoint() {
    let endpoint = start_endpoint().await;
    let address = endpoint.local_address();
    let garbage = exchange(address, b"\x00\xff\x16\x03\x01 hello\r\n\r\n").await;
    assert!(garbage.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{garbage}");
    // Exactly one byte over the limit, all of it read, so the close is clean.
    let oversized = exchange(address, &vec![b'A'; 8 * 1024 + 1]).await;
    assert!(oversized.starts_with("HTTP/1.1 431 "), "{oversized}");
    let truncated = exchange(address, b"GET /metr").await;
    assert_eq!(truncated, "", "a request cut short gets no answer");
    let after = exchange(address, b"GET /metrics HTTP/1.1\r\n\r\n").await;
    assert!(after.starts_with("HTTP/1.1 200 OK\r\n"), "{after}");
}
