//! One Tally process: opens the durable log, starts the peer transport, the node loop and the
//! RESP server, and stops them. The `tally` binary runs it on the real file system; the
//! simulator runs [`start`] on a simulated disk and clock.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use std::collections::BTreeMap;

use engine::{Entry, HardState, Index, Membership, NodeId, Snapshot, SnapshotMeta};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::clock::{Clock, MonotonicClock};
use crate::config::ProcessConfig;
use crate::metrics::{MetricsEndpoint, ProcessSources};
use crate::node::{
    self, LogStore, LoopConfig, NodeError, NodeHandle, NodeObserver, NodeParts, PeerMessage, PeerSender,
};
use crate::node::{MemberAddresses, SnapshotWriter};
use crate::raft_store::{write_snapshot_file, Identity, RaftStore};
use crate::resp::Frame;
use crate::server::{Server, ServerConfig, ServerMetrics};
use crate::state::Limits;
use crate::storage::{Disk, FsDisk, WalConfig};
use crate::transport::{MessageFaults, Transport, TransportConfig, TransportStatus};

/// Messages waiting for the node loop; beyond this the transport's inbound side waits.
const INBOUND_QUEUE_MESSAGES_MAX: usize = 64 * 1024;

/// A started process. Stop it with [`RunningProcess::shutdown`]; dropping it leaves the server
/// task running, detached.
#[derive(Debug)]
pub struct RunningProcess {
    pub node: NodeHandle,
    pub client_address: SocketAddr,
    pub raft_address: SocketAddr,
    pub server_metrics: Arc<ServerMetrics>,
    /// Where `/metrics` is served, if `metrics_listen` was set (the bound port, for port 0).
    pub metrics_address: Option<SocketAddr>,
    node_task: JoinHandle<Result<(), NodeError>>,
    server_task: JoinHandle<()>,
    transport: Arc<Transport<PeerMessage>>,
    metrics_endpoint: Option<MetricsEndpoint>,
}

impl<D: Disk + Clone + Send + 'static> LogStore for RaftStore<D> {
    fn persist(&mut self, hard_state: Option<HardState>, entries: &[Entry]) -> Result<(), String> {
        RaftStore::persist(self, hard_state, entries).map_err(|error| error.to_string())
    }

    fn record_commit(&mut self, hard_state: HardState) -> Result<(), String> {
        RaftStore::record_commit(self, hard_state).map_err(|error| error.to_string())
    }

    fn durable_hard_state(&self) -> HardState {
        self.hard_state()
    }

    fn snapshot_writer(&self) -> SnapshotWriter {
        let mut disk = self.disk().clone();
        Box::new(move |snapshot| write_snapshot_file(&mut disk, snapshot).map_err(|error| error.to_string()))
    }

    fn snapshot_saved(&mut self, meta: &SnapshotMeta, first_kept_index: Index) -> Result<(), String> {
        RaftStore::snapshot_saved(self, meta, first_kept_index).map_err(|error| error.to_string())
    }

    fn install_snapshot(&mut self, snapshot: &Snapshot, remove_older: bool) -> Result<(), String> {
        RaftStore::install_snapshot(self, snapshot, remove_older).map_err(|error| error.to_string())
    }
}

/// The node loop's way out to the network.
struct TransportSender(Arc<Transport<PeerMessage>>);

impl PeerSender for TransportSender {
    fn send(&self, to: NodeId, message: PeerMessage) {
        // A message the transport cannot queue is dropped and counted there: Raft retries.
        let _ = self.0.send(to, message);
    }

    fn add_peer(&self, id: NodeId, address: SocketAddr) {
        if self.0.add_peer(id, address) {
            tracing::info!(peer = id, %address, "new peer");
        }
    }
}

/// What the simulator plugs into a process; a production process has neither.
#[derive(Default)]
pub struct ProcessHooks {
    /// Decides the fate of each outbound peer message: the simulator's way to lose, duplicate
    /// and reorder Raft traffic, which TCP never does.
    pub message_faults: Option<Box<dyn MessageFaults<PeerMessage>>>,
    /// Told about every step of the node, for cluster-wide oracles.
    pub observer: Option<Arc<dyn NodeObserver>>,
}

impl std::fmt::Debug for ProcessHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessHooks")
            .field("message_faults", &self.message_faults.is_some())
            .field("observer", &self.observer)
            .finish()
    }
}

/// Opens the data on `disk`, then starts the transport, node and server.
pub async fn start<D: Disk + Clone + Send + 'static>(
    config: &ProcessConfig,
    disk: D,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<RunningProcess> {
    start_with_hooks(config, disk, clock, ProcessHooks::default()).await
}

/// Like [`start`], with the simulator's hooks.
pub async fn start_with_hooks<D: Disk + Clone + Send + 'static>(
    config: &ProcessConfig,
    disk: D,
    clock: Arc<dyn Clock>,
    hooks: ProcessHooks,
) -> anyhow::Result<RunningProcess> {
    let identity = Identity { cluster_id: config.cluster_id.clone(), node_id: config.id };
    // A new cluster is bootstrapped from --peers; a joining node starts empty and receives
    // the log (or a snapshot) once the leader adds it.
    let joining = !config.join.is_empty();
    let bootstrap = (!joining).then(|| Membership::new(config.peers.keys().copied()));
    let (store, recovered) = RaftStore::open(disk, identity, bootstrap, WalConfig::default())
        .with_context(|| format!("cannot open the data directory {}", config.data.display()))?;
    let mut static_addresses: BTreeMap<NodeId, MemberAddresses> = if joining {
        let fresh = recovered.state.entries.is_empty() && recovered.state.snapshot.is_none();
        join_cluster(config, fresh).await
    } else {
        config.peers.iter().map(|(&id, &raft)| (id, MemberAddresses { raft, client: None })).collect()
    };
    static_addresses.insert(config.id, MemberAddresses { raft: config.raft_listen, client: Some(config.listen) });
    report_recovery(config, &recovered);
    let storage_metrics = store.metrics();

    let (inbound_sender, inbound) = mpsc::channel(INBOUND_QUEUE_MESSAGES_MAX);
    let peers = static_addresses.iter().filter(|(&id, _)| id != config.id).map(|(&id, a)| (id, a.raft)).collect();
    let mut transport_config = TransportConfig::new(config.id, config.cluster_id.clone(), config.raft_listen, peers);
    transport_config.client_address = Some(config.listen.to_string());
    let transport = Arc::new(
        Transport::start_with_faults(transport_config, inbound_sender, hooks.message_faults)
            .await
            .context("cannot start the peer transport")?,
    );
    let raft_address = transport.local_address();

    let parts = NodeParts {
        id: config.id,
        raft_config: config.raft.clone(),
        loop_config: LoopConfig {
            tick_interval_ms: config.tick_interval_ms,
            request_timeout_ms: config.request_timeout_ms,
            ..LoopConfig::default()
        },
        limits: Limits::default(),
        seed: seed_for(&config.cluster_id, config.id),
        persisted: recovered.state,
        store,
        peers: TransportSender(Arc::clone(&transport)),
        inbound,
        clock,
        observer: hooks.observer,
        static_addresses,
    };
    let (node, node_task) = node::spawn(parts).context("cannot start the Raft node")?;

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen for clients on {}", config.listen))?;
    let client_address = listener.local_addr()?;
    let server_config = ServerConfig {
        request_size_bytes_max: config.request_size_bytes_max,
        requirepass: config.requirepass.clone(),
        default_read_mode: config.read_mode,
        ..ServerConfig::default()
    };
    let server = Server::new(node.clone(), server_config);
    let server_metrics = server.metrics();
    let server_task = tokio::spawn(async move { server.serve(listener).await });

    let metrics_endpoint = match config.metrics_listen {
        Some(listen) => {
            let sources = ProcessSources {
                server: Arc::clone(&server_metrics),
                node: node.clone(),
                storage: storage_metrics,
                transport: Arc::downgrade(&transport),
            };
            let endpoint = MetricsEndpoint::start(listen, Arc::new(sources))
                .await
                .with_context(|| format!("cannot listen for metrics scrapes on {listen}"))?;
            Some(endpoint)
        }
        None => None,
    };
    let metrics_address = metrics_endpoint.as_ref().map(MetricsEndpoint::local_address);
    tracing::info!(id = config.id, clients = %client_address, raft = %raft_address, "node started");
    Ok(RunningProcess {
        node,
        client_address,
        raft_address,
        server_metrics,
        metrics_address,
        node_task,
        server_task,
        transport,
        metrics_endpoint,
    })
}

/// Where a node started with `--join` finds its peers, through the first member at
/// `config.join` that answers (asking them all again every second until one does). A `fresh` node asks to be added as a learner (which needs a
/// leader) and takes the peer addresses from the answer. A node that joined before only asks
/// for the addresses (`RAFT.STATUS`, which any member answers by itself): the cluster may need
/// this very node to elect a leader.
async fn join_cluster(config: &ProcessConfig, fresh: bool) -> BTreeMap<NodeId, MemberAddresses> {
    let (id, raft, client) = (config.id.to_string(), config.raft_listen.to_string(), config.listen.to_string());
    let words: Vec<&str> =
        if fresh { vec!["RAFT.ADDLEARNER", id.as_str(), raft.as_str(), client.as_str()] } else { vec!["RAFT.STATUS"] };
    // A cluster without a leader cannot add anyone; it may get one again any moment, so keep
    // asking (as an operator would) rather than give up.
    loop {
        let mut failures = Vec::new();
        for seed in &config.join {
            let book = match crate::admin_client::call(&seed.to_string(), &words).await {
                Ok(reply) if fresh => parse_peer_book(&reply),
                Ok(reply) => parse_status_addresses(&reply),
                Err(reason) => Err(reason),
            };
            match book {
                Ok(book) => {
                    tracing::info!(%seed, peers = book.len(), fresh, "found the cluster's peers");
                    let addresses = book.into_iter().map(|(id, raft)| (id, MemberAddresses { raft, client: None }));
                    return addresses.collect();
                }
                Err(reason) => failures.push(format!("{seed}: {reason}")),
            }
        }
        tracing::warn!("cannot join the cluster through any --join address yet, retrying: {}", failures.join("; "));
        tokio::time::sleep(JOIN_RETRY_PAUSE).await;
    }
}

/// How long a joining node waits before it asks the `--join` members again.
const JOIN_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// Reads `RAFT.ADDLEARNER`'s answer: an array of `id=host:port`, or an error reply.
fn parse_peer_book(reply: &Frame) -> Result<BTreeMap<NodeId, SocketAddr>, String> {
    let Frame::Array(items) = reply else {
        return Err(format!("refused: {}", crate::admin_client::render(reply)));
    };
    let mut book = BTreeMap::new();
    for item in items {
        let Frame::Bulk(text) = item else { return Err(format!("unexpected item {item:?}")) };
        let text = String::from_utf8_lossy(text);
        let parsed = crate::config::parse_peers(&text)?;
        book.extend(parsed);
    }
    Ok(book)
}

/// Reads the peer addresses out of `RAFT.STATUS`: its `member:ID ROLE raft=ADDRESS ...` lines.
fn parse_status_addresses(reply: &Frame) -> Result<BTreeMap<NodeId, SocketAddr>, String> {
    let Frame::Bulk(text) = reply else {
        return Err(format!("unexpected answer: {}", crate::admin_client::render(reply)));
    };
    let text = String::from_utf8_lossy(text);
    let mut book = BTreeMap::new();
    for line in text.lines().filter_map(|line| line.strip_prefix("member:")) {
        let mut words = line.split_whitespace();
        let id = words.next().and_then(|id| id.parse().ok());
        let raft = words.find_map(|word| word.strip_prefix("raft=")).and_then(|address| address.parse().ok());
        if let (Some(id), Some(raft)) = (id, raft) {
            book.insert(id, raft);
        }
    }
    if book.is_empty() {
        return Err("the answer names no member's address".to_string());
    }
    Ok(book)
}

fn report_recovery(config: &ProcessConfig, recovered: &crate::raft_store::Recovered) {
    if recovered.bootstrapped {
        tracing::info!(data = %config.data.display(), cluster = %config.cluster_id, "initialised a new data directory");
    }
    if let Some(torn) = &recovered.torn_tail {
        tracing::warn!(?torn, "truncated a torn write at the end of the log (a crash interrupted it)");
    }
    if recovered.abandoned_records > 0 {
        tracing::warn!(records = recovered.abandoned_records, "ignored an incomplete batch a crash interrupted");
    }
    let entries = recovered.state.entries.len();
    tracing::info!(entries, term = recovered.state.hard_state.term, "recovered the Raft log");
}

/// Election timeouts must differ between nodes; any stable mix of the cluster and node id does.
fn seed_for(cluster_id: &str, id: NodeId) -> u64 {
    let cluster_hash = cluster_id
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3));
    cluster_hash ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl RunningProcess {
    /// Connection states and counters of the peer transport.
    pub fn transport_status(&self) -> TransportStatus {
        self.transport.status()
    }

    /// Stops accepting clients, stops the node (answering what is in flight) and the transport.
    pub async fn shutdown(self) -> Result<(), NodeError> {
        drop(self.metrics_endpoint);
        self.server_task.abort();
        self.node.shutdown().await;
        let result = self.node_task.await.unwrap_or(Ok(()));
        if let Ok(transport) = Arc::try_unwrap(self.transport) {
            transport.shutdown().await;
        }
        result
    }

    /// Waits until the node loop ends on its own, which only a storage failure causes.
    pub async fn node_stopped(&mut self) -> Result<(), NodeError> {
        (&mut self.node_task).await.unwrap_or(Ok(()))
    }
}

/// Runs a process on the real file system until SIGINT or SIGTERM (a clean shutdown), or
/// until the node stops by itself (a storage failure: an error, so the exit code says so).
pub async fn run_until_signal(config: ProcessConfig) -> anyhow::Result<()> {
    let disk = FsDisk::open(&config.data).with_context(|| format!("cannot open {}", config.data.display()))?;
    let mut process = start(&config, disk, MonotonicClock::shared()).await?;
    tokio::select! {
        _ = shutdown_signal() => {
            tracing::info!("shutting down");
            process.shutdown().await?;
            Ok(())
        }
        result = process.node_stopped() => {
            result?;
            anyhow::bail!("the node loop ended unexpectedly")
        }
    }
}

#[cfg(not(madsim))]
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).expect("can install a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

#[cfg(madsim)]
async fn shutdown_signal() {
    // The simulator stops nodes by killing them; there are no signals.
    std::future::pending::<()>().await
}
