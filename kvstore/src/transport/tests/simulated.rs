//! The transport inside the madsim simulator: two nodes exchange messages, and a killed and
//! restarted node is reconnected to.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

// kvstore does not depend on madsim directly; madsim-tokio re-exports it for its macros.
use tokio::madsim::runtime::Handle;
use tokio::sync::mpsc;

use crate::transport::{Transport, TransportConfig};

fn config(node_id: u64, addresses: &[SocketAddr]) -> TransportConfig {
    let peers: BTreeMap<u64, SocketAddr> =
        (1..=addresses.len() as u64).filter(|id| *id != node_id).map(|id| (id, addresses[id as usize - 1])).collect();
    TransportConfig::new(node_id, "sim".to_string(), addresses[node_id as usize - 1], peers)
}

#[tokio::test]
async fn simulated_nodes_exchange_messages_and_reconnect_after_a_restart() {
    let handle = Handle::current();
    let addresses: Vec<SocketAddr> = vec!["10.0.0.1:7000".parse().unwrap(), "10.0.0.2:7000".parse().unwrap()];
    let (received_sender, mut received) = mpsc::unbounded_channel::<(u64, u64)>();
    let addresses_2 = addresses.clone();
    let node_2 = handle
        .create_node()
        .name("node-2")
        .ip(addresses[1].ip())
        .init(move || {
            let addresses = addresses_2.clone();
            let received_sender = received_sender.clone();
            async move {
                let (sender, mut inbox) = mpsc::channel(100);
                let _transport = Transport::<u64>::start(config(2, &addresses), sender).await.unwrap();
                while let Some((from, message)) = inbox.recv().await {
                    received_sender.send((from, message)).unwrap();
                }
            }
        })
        .build();
    let addresses_1 = addresses.clone();
    let node_1 = handle.create_node().name("node-1").ip(addresses[0].ip()).build();
    node_1.spawn(async move {
        let (sender, _inbox) = mpsc::channel(100);
        let transport = Transport::<u64>::start(config(1, &addresses_1), sender).await.unwrap();
        for sequence in 0.. {
            let _dropped_while_down = transport.send(2, sequence);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let (from, first) = received.recv().await.unwrap();
    assert_eq!(from, 1);
    handle.kill(node_2.id());
    tokio::time::sleep(Duration::from_secs(1)).await;
    while received.try_recv().is_ok() {}
    handle.restart(node_2.id());
    let (_, after_restart) = tokio::time::timeout(Duration::from_secs(10), received.recv()).await.unwrap().unwrap();
    // Messages sent while node 2 was down (one every 10 ms for a second) were discarded,
    // not delivered to the new incarnation as a backlog.
    assert!(after_restart > first + 80, "first {first}, after restart {after_restart}");
}

#[tokio::test]
async fn simulated_nodes_started_without_peers_talk_once_added() {
    let handle = Handle::current();
    let addresses: Vec<SocketAddr> = vec!["10.0.0.1:7000".parse().unwrap(), "10.0.0.2:7000".parse().unwrap()];
    let (received_sender, mut received) = mpsc::unbounded_channel::<(u64, u64, u64)>();
    for node_id in [1_u64, 2] {
        let (addresses, received_sender) = (addresses.clone(), received_sender.clone());
        let node =
            handle.create_node().name(format!("node-{node_id}")).ip(addresses[node_id as usize - 1].ip()).build();
        // Each node adds the other from its own context, as the node loop does.
        node.spawn(async move {
            let mut config = config(node_id, &addresses);
            let other = 3 - node_id;
            config.peers.clear();
            let (sender, mut inbox) = mpsc::channel(100);
            let transport = Transport::<u64>::start(config, sender).await.unwrap();
            assert!(transport.add_peer(other, addresses[other as usize - 1]));
            for sequence in 0.. {
                let _dropped_until_connected = transport.send(other, sequence);
                tokio::time::sleep(Duration::from_millis(10)).await;
                while let Ok((from, message)) = inbox.try_recv() {
                    received_sender.send((node_id, from, message)).unwrap();
                }
            }
        });
    }
    let mut heard_from = BTreeMap::new();
    while heard_from.len() < 2 {
        let (node_id, from, _message) =
            tokio::time::timeout(Duration::from_secs(10), received.recv()).await.unwrap().unwrap();
        heard_from.insert(node_id, from);
    }
    assert_eq!(heard_from, BTreeMap::from([(1, 2), (2, 1)]));
}
