//! The transport on real tokio over loopback: messages flow both ways, batch, survive a
//! peer restart, and strangers or garbage cost only their own connection.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::transport::frame::{encode_frame, Decoded};
use crate::transport::handshake::{decode_hello, encode_hello, Hello};
use crate::transport::{FaultDecision, SendError, Transport, TransportConfig};

const CLUSTER: &str = "tally-test";
const PATIENCE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Note {
    from: u64,
    sequence: u64,
    body: Vec<u8>,
}

fn note(from: u64, sequence: u64) -> Note {
    Note { from, sequence, body: Vec::new() }
}

type Inbox = mpsc::Receiver<(u64, Note)>;

/// Addresses that were free a moment ago: the transports' configurations must name every
/// peer's port before any of them starts.
fn free_addresses(count: usize) -> Vec<SocketAddr> {
    let listeners: Vec<_> = (0..count).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    listeners.iter().map(|listener| listener.local_addr().unwrap()).collect()
}

/// Node ids are 1-based positions in `addresses`.
fn config(node_id: u64, addresses: &[SocketAddr]) -> TransportConfig {
    let peers: BTreeMap<u64, SocketAddr> =
        (1..=addresses.len() as u64).filter(|id| *id != node_id).map(|id| (id, addresses[id as usize - 1])).collect();
    let mut config = TransportConfig::new(node_id, CLUSTER.to_string(), addresses[node_id as usize - 1], peers);
    config.reconnect_backoff_ms_min = 10;
    config.reconnect_backoff_ms_max = 100;
    config.connect_timeout_ms = 1000;
    config
}

async fn start(config: TransportConfig) -> (Transport<Note>, Inbox) {
    let (sender, inbox) = mpsc::channel(10_000);
    (Transport::start(config, sender).await.unwrap(), inbox)
}

async fn start_cluster(size: usize) -> (Vec<SocketAddr>, Vec<Transport<Note>>, Vec<Inbox>) {
    let addresses = free_addresses(size);
    let (mut transports, mut inboxes) = (Vec::new(), Vec::new());
    for node_id in 1..=size as u64 {
        let (transport, inbox) = start(config(node_id, &addresses)).await;
        transports.push(transport);
        inboxes.push(inbox);
    }
    (addresses, transports, inboxes)
}

async fn receive(inbox: &mut Inbox) -> (u64, Note) {
    tokio::time::timeout(PATIENCE, inbox.recv()).await.expect("a message within the patience").expect("inbox open")
}

/// Waits until `condition` holds, polling; panics after the patience.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn wait_connected(transport: &Transport<Note>, peer: u64) {
    eventually("connected", || transport.status().peers[&peer].outbound_connected).await;
}

/// Sends numbered notes until one arrives: messages written into a connection that was
/// dying are lost, which the transport allows.
async fn send_until_received(transport: &Transport<Note>, to: u64, inbox: &mut Inbox) -> Note {
    for sequence in 0..200 {
        transport.send(to, note(transport.node_id(), sequence)).unwrap();
        if let Ok(Some((from, received))) = tokio::time::timeout(Duration::from_millis(25), inbox.recv()).await {
            assert_eq!(from, transport.node_id());
            return received;
        }
    }
    panic!("no message from node {} reached node {to}", transport.node_id());
}

#[tokio::test]
async fn three_transports_exchange_messages_both_ways() {
    let (_addresses, transports, mut inboxes) = start_cluster(3).await;
    for transport in &transports {
        for to in (1..=3).filter(|to| *to != transport.node_id()) {
            transport.send(to, note(transport.node_id(), to)).unwrap();
        }
    }
    for (index, inbox) in inboxes.iter_mut().enumerate() {
        let node_id = index as u64 + 1;
        let mut senders = vec![receive(inbox).await, receive(inbox).await];
        senders.sort_by_key(|(from, _)| *from);
        let expected: Vec<_> =
            (1..=3).filter(|from| *from != node_id).map(|from| (from, note(from, node_id))).collect();
        assert_eq!(senders, expected, "node {node_id}");
    }
    for transport in &transports {
        let status = transport.status();
        for (peer, peer_status) in &status.peers {
            assert!(peer_status.outbound_connected, "node {} to {peer}", status.node_id);
            assert_eq!(peer_status.messages_sent, 1);
            assert_eq!(peer_status.messages_received, 1);
            assert_eq!(peer_status.messages_dropped(), 0);
        }
    }
    assert!(transports[0].status().peers[&2].inbound_connected);
}

#[tokio::test]
async fn a_burst_of_messages_leaves_in_few_frames_and_in_order() {
    let (_addresses, transports, mut inboxes) = start_cluster(2).await;
    wait_connected(&transports[0], 2).await;
    // The test runs on one thread, so the whole burst is queued before the sender task
    // runs again and drains it.
    for sequence in 0..1000 {
        transports[0].send(2, note(1, sequence)).unwrap();
    }
    for sequence in 0..1000 {
        assert_eq!(receive(&mut inboxes[1]).await, (1, note(1, sequence)));
    }
    let status = transports[0].status().peers[&2].clone();
    assert_eq!(status.messages_sent, 1000);
    assert!(status.frames_sent <= 2, "1000 queued messages took {} frames", status.frames_sent);
    assert_eq!(transports[1].status().peers[&1].frames_received, status.frames_sent);
}

#[tokio::test]
async fn frames_respect_the_size_limit() {
    let addresses = free_addresses(2);
    let mut small_frames = config(1, &addresses);
    small_frames.frame_size_bytes_max = 1024;
    let (sender, _sender_inbox) = start(small_frames).await;
    let (_receiver, mut inbox) = start(config(2, &addresses)).await;
    let body = vec![0xab; 100];
    for sequence in 0..100 {
        sender.send(2, Note { from: 1, sequence, body: body.clone() }).unwrap();
    }
    for sequence in 0..100 {
        assert_eq!(receive(&mut inbox).await.1.sequence, sequence);
    }
    let status = sender.status().peers[&2].clone();
    // About 104 bytes per message: at most 9 fit in 1 KiB, so at least 12 frames.
    assert!(status.frames_sent >= 12, "{} frames", status.frames_sent);
    assert!(status.bytes_sent <= status.frames_sent * (1024 + 8));
}

#[tokio::test]
async fn a_restarted_peer_is_reconnected_and_messages_flow_again() {
    let (addresses, mut transports, mut inboxes) = start_cluster(2).await;
    send_until_received(&transports[0], 2, &mut inboxes[1]).await;
    send_until_received(&transports[1], 1, &mut inboxes[0]).await;
    let old = transports.pop().unwrap();
    old.shutdown().await;
    eventually("node 1 notices", || !transports[0].status().peers[&2].outbound_connected).await;
    let (restarted, mut restarted_inbox) = start(config(2, &addresses)).await;
    send_until_received(&transports[0], 2, &mut restarted_inbox).await;
    send_until_received(&restarted, 1, &mut inboxes[0]).await;
    let status = transports[0].status().peers[&2].clone();
    assert!(status.connections_established >= 2, "{status:?}");
    assert!(status.outbound_connected && status.inbound_connected);
}

/// Connects as a raw client and sends `bytes`; returns what the transport answered before
/// closing the connection.
async fn raw_exchange(address: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut answer = Vec::new();
    // Either end-of-stream or a reset counts as being closed.
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the transport kept the connection open");
    answer
}

fn hello_bytes(cluster_id: &str, node_id: u64) -> Vec<u8> {
    let mut bytes = Vec::new();
    encode_hello(&mut bytes, &Hello { cluster_id: cluster_id.to_string(), node_id, client_address: None });
    bytes
}

#[tokio::test]
async fn strangers_are_refused_and_counted() {
    let addresses = free_addresses(2);
    let (transport, _inbox) = start(config(1, &addresses)).await;
    let strangers = [hello_bytes("other-cluster", 2), hello_bytes(CLUSTER, 9), hello_bytes(CLUSTER, 1)];
    for (index, stranger) in strangers.iter().enumerate() {
        assert_eq!(raw_exchange(addresses[0], stranger).await, Vec::<u8>::new(), "stranger {index}");
    }
    eventually("refusals counted", || transport.status().connections_refused == 3).await;
    // A proper peer gets an answer naming node 1, so the refusals above were about identity.
    let mut stream = TcpStream::connect(addresses[0]).await.unwrap();
    stream.write_all(&hello_bytes(CLUSTER, 2)).await.unwrap();
    let mut answer = vec![0; 256];
    let size_bytes = tokio::time::timeout(PATIENCE, stream.read(&mut answer)).await.unwrap().unwrap();
    let Ok(Decoded::Complete { value, .. }) = decode_hello(&answer[..size_bytes]) else { panic!("no hello answer") };
    assert_eq!(value.node_id, 1);
}

#[tokio::test]
async fn dialling_an_address_where_another_node_answers_is_refused() {
    let addresses = free_addresses(3);
    let mut misdirected = config(1, &addresses);
    misdirected.peers.insert(2, addresses[2]);
    let (transport, _inbox) = start(misdirected).await;
    let (_node_3, _inbox_3) = start(config(3, &addresses)).await;
    eventually("the mismatch is reported", || {
        let status = transport.status().peers[&2].clone();
        status.last_error.is_some_and(|error| error.contains("dialled node 2 but node 3 answered"))
    })
    .await;
    assert!(!transport.status().peers[&2].outbound_connected);
}

#[tokio::test]
async fn garbage_closes_only_its_own_connection() {
    // Node 2 also knows a node 3 that never runs; the raw connections below claim to be it,
    // so node 1's real connection is left alone.
    let addresses = free_addresses(3);
    let (node_1, _inbox_1) = start(config(1, &addresses)).await;
    let (node_2, mut inbox_2) = start(config(2, &addresses)).await;
    send_until_received(&node_1, 2, &mut inbox_2).await;

    assert_eq!(raw_exchange(addresses[1], b"GET / HTTP/1.1\r\n\r\n").await, Vec::<u8>::new());
    let mut oversize = hello_bytes(CLUSTER, 3);
    oversize.extend_from_slice(&u32::MAX.to_le_bytes());
    oversize.extend_from_slice(&[0; 4]);
    let mut bad_checksum = hello_bytes(CLUSTER, 3);
    bad_checksum.extend_from_slice(&[3, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3]);
    let mut not_a_batch = hello_bytes(CLUSTER, 3);
    encode_frame(&mut not_a_batch, &[0x03, 0xff]);
    for (bytes, expected_error) in
        [(oversize, "over the limit"), (bad_checksum, "checksum"), (not_a_batch, "not a valid message batch")]
    {
        let answer = raw_exchange(addresses[1], &bytes).await;
        assert!(!answer.is_empty(), "the handshake itself was valid and answered");
        eventually(expected_error, || {
            node_2.status().peers[&3].last_error.clone().is_some_and(|error| error.contains(expected_error))
        })
        .await;
    }
    assert_eq!(node_2.status().connections_refused, 1);
    assert!(inbox_2.try_recv().is_err(), "no garbage reached the node");
    let sequence = node_1.status().peers[&2].messages_sent;
    node_1.send(2, note(1, sequence)).unwrap();
    assert_eq!(receive(&mut inbox_2).await, (1, note(1, sequence)));
    assert_eq!(node_1.status().peers[&2].connections_established, 1, "node 1's stream was never disturbed");
}

#[tokio::test]
async fn the_fault_hook_drops_duplicates_and_delays() {
    let addresses = free_addresses(2);
    let hook = |_to: u64, message: &Note| match message.sequence {
        0 => FaultDecision::Drop,
        1 => FaultDecision::Duplicate,
        2 => FaultDecision::Delay { delay_ms: 200 },
        _ => FaultDecision::Deliver,
    };
    let (sender, _inbox) = mpsc::channel(16);
    let faulty = Transport::start_with_faults(config(1, &addresses), sender, Some(Box::new(hook))).await.unwrap();
    let (_receiver, mut inbox) = start(config(2, &addresses)).await;
    for sequence in 0..6 {
        faulty.send(2, note(1, sequence)).unwrap();
    }
    let mut sequences = Vec::new();
    for _ in 0..6 {
        sequences.push(receive(&mut inbox).await.1.sequence);
    }
    assert_eq!(sequences, [1, 1, 3, 4, 5, 2], "dropped 0, doubled 1, 2 overtaken");
    let status = faulty.status().peers[&2].clone();
    assert_eq!(status.messages_dropped_by_fault, 1);
    assert_eq!(status.messages_sent, 6);
}

#[tokio::test]
async fn send_refuses_unknown_peers_and_full_queues_without_blocking() {
    let addresses = free_addresses(2);
    let mut small_queue = config(1, &addresses);
    small_queue.queue_messages_max = 4;
    // Nobody listens at node 2's address, so its queue only fills.
    let (transport, _inbox) = start(small_queue).await;
    assert_eq!(transport.send(7, note(1, 0)), Err(SendError::UnknownPeer { to: 7 }));
    let results: Vec<_> = (0..10).map(|sequence| transport.send(2, note(1, sequence))).collect();
    assert!(results[..4].iter().all(Result::is_ok), "{results:?}");
    assert!(results[4..].iter().all(|result| *result == Err(SendError::QueueFull { to: 2 })), "{results:?}");
    let status = transport.status();
    assert_eq!(status.messages_dropped_unknown_peer, 1);
    assert_eq!(status.peers[&2].messages_dropped_queue_full, 6);
    // The dial fails, and the queued messages are discarded rather than kept as a backlog.
    eventually("the queue is discarded", || transport.status().peers[&2].messages_dropped_unreachable == 4).await;
    assert!(transport.status().peers[&2].last_error.as_ref().is_some_and(|error| error.starts_with("outbound: ")));
}

#[tokio::test]
async fn shutdown_closes_the_listener() {
    let addresses = free_addresses(2);
    let (transport, _inbox) = start(config(1, &addresses)).await;
    assert!(TcpStream::connect(addresses[0]).await.is_ok());
    transport.shutdown().await;
    assert!(TcpStream::connect(addresses[0]).await.is_err());
}

#[tokio::test]
async fn a_transport_of_another_cluster_is_refused_and_says_why() {
    let addresses = free_addresses(2);
    let mut other_cluster = config(1, &addresses);
    other_cluster.cluster_id = "other-cluster".to_string();
    let (stranger, _stranger_inbox) = start(other_cluster).await;
    let (member, mut member_inbox) = start(config(2, &addresses)).await;
    stranger.send(2, note(1, 0)).unwrap();
    eventually("the stranger learns it was refused", || {
        let last_error = stranger.status().peers[&2].last_error.clone();
        last_error.is_some_and(|error| error.contains("refused by the peer"))
    })
    .await;
    assert!(member.status().connections_refused >= 1);
    assert!(!stranger.status().peers[&2].outbound_connected);
    assert!(member_inbox.try_recv().is_err(), "nothing from another cluster reaches the node");
}

/// A configuration that names no peers: they are all added while running.
fn config_without_peers(node_id: u64, addresses: &[SocketAddr]) -> TransportConfig {
    let mut config = config(node_id, addresses);
    config.peers.clear();
    config
}

#[tokio::test]
async fn peers_added_while_running_exchange_messages_both_ways() {
    let addresses = free_addresses(2);
    let (node_1, mut inbox_1) = start(config_without_peers(1, &addresses)).await;
    let (node_2, mut inbox_2) = start(config_without_peers(2, &addresses)).await;
    assert!(node_1.peers().is_empty() && node_1.status().peers.is_empty());
    assert_eq!(node_1.send(2, note(1, 0)), Err(SendError::UnknownPeer { to: 2 }));

    assert!(node_1.add_peer(2, addresses[1]));
    assert!(node_2.add_peer(1, addresses[0]));
    send_until_received(&node_1, 2, &mut inbox_2).await;
    send_until_received(&node_2, 1, &mut inbox_1).await;

    assert_eq!(node_1.peers(), BTreeMap::from([(2, addresses[1])]));
    let status = node_1.status();
    assert_eq!(status.peers.keys().copied().collect::<Vec<_>>(), [2]);
    assert_eq!(status.peers[&2].address, addresses[1]);
    assert!(status.peers[&2].outbound_connected && status.peers[&2].inbound_connected, "{status:?}");
    assert_eq!(status.messages_dropped_unknown_peer, 1, "only the send before add_peer");
}

#[tokio::test]
async fn a_dial_from_a_node_not_yet_a_peer_is_refused_until_it_is_added() {
    let addresses = free_addresses(2);
    // Node 1 knows node 2 from its configuration; node 2 does not know node 1 yet.
    let (node_1, _inbox_1) = start(config(1, &addresses)).await;
    let (node_2, mut inbox_2) = start(config_without_peers(2, &addresses)).await;
    node_1.send(2, note(1, 0)).unwrap();
    eventually("node 1 learns it was refused", || {
        let last_error = node_1.status().peers[&2].last_error.clone();
        last_error.is_some_and(|error| error.contains("refused by the peer"))
    })
    .await;
    assert!(node_2.status().connections_refused >= 1);
    assert!(inbox_2.try_recv().is_err(), "nothing from a stranger reaches the node");

    assert!(node_2.add_peer(1, addresses[0]));
    send_until_received(&node_1, 2, &mut inbox_2).await;
    eventually("node 2 reports the inbound stream", || node_2.status().peers[&1].inbound_connected).await;
}

#[tokio::test]
async fn add_peer_refuses_ourselves_and_known_ids_at_any_address() {
    let addresses = free_addresses(4);
    let (node_1, _inbox) = start(config(1, &addresses[..2])).await;
    assert!(!node_1.add_peer(1, addresses[0]), "ourselves");
    assert!(!node_1.add_peer(2, addresses[1]), "a configured peer");
    assert!(!node_1.add_peer(2, addresses[2]), "a configured peer at a new address");
    assert!(node_1.add_peer(3, addresses[2]));
    assert!(!node_1.add_peer(3, addresses[2]), "an added peer");
    assert!(!node_1.add_peer(3, addresses[3]), "an added peer at a new address");

    let expected = BTreeMap::from([(2, addresses[1]), (3, addresses[2])]);
    assert_eq!(node_1.peers(), expected);
    let status = node_1.status();
    let listed: BTreeMap<u64, SocketAddr> = status.peers.iter().map(|(id, peer)| (*id, peer.address)).collect();
    assert_eq!(listed, expected);
    assert_eq!(node_1.send(3, note(1, 0)), Ok(()));
}

#[tokio::test]
async fn shutdown_ends_the_sender_tasks_of_added_peers() {
    let addresses = free_addresses(1);
    let mut patient = config_without_peers(1, &addresses);
    // Longer than the patience, so only an aborted task lets go of its dial in time.
    patient.connect_timeout_ms = 2 * PATIENCE.as_millis() as u64;
    let (node_1, _inbox) = start(patient).await;
    // A silent peer accepts the dial but never answers the hello: the sender task waits in
    // the handshake, where it does not notice its queue closing.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    assert!(node_1.add_peer(2, silent.local_addr().unwrap()));
    let (mut stream, _address) = tokio::time::timeout(PATIENCE, silent.accept()).await.unwrap().unwrap();
    node_1.shutdown().await;
    let mut hello = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut hello)).await;
    assert!(read.is_ok(), "the added peer's sender task outlived shutdown");
}
