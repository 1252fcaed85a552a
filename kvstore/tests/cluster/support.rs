//! Real `tally` processes on loopback: a [`Cluster`] of three [`Node`]s on ephemeral ports,
//! each with a data directory and log files under one temporary directory.
//!
//! Dropping a cluster kills every process it started. If the test failed, it prints the
//! tail of every node's logs and keeps the directory for inspection; if it passed, it
//! removes the directory.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::client::{Client, POLL_INTERVAL};

/// Short Raft timings, so that elections take a fraction of a second.
pub const TICK_INTERVAL_MS: u64 = 10;
pub const HEARTBEAT_INTERVAL_MS: u64 = 50;
pub const ELECTION_TIMEOUT_MS_MIN: u64 = 300;
pub const ELECTION_TIMEOUT_MS_MAX: u64 = 600;
/// A request stuck behind a dead leader fails after this, so the test can retry it.
const SNAPSHOT_ENTRIES: u64 = 50;
const REQUEST_TIMEOUT_MS: u64 = 2_000;

/// Bound on anything that waits for the cluster: starting, electing, catching up, exiting.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// Starting a cluster is retried this often, since a port found free may be taken by the
/// time a node binds it.
const START_ATTEMPTS_MAX: usize = 3;

const CLUSTER_ID: &str = "itest";
const NODE_COUNT: u64 = 3;

/// Gives every temporary directory of this test binary a distinct name.
static DIRECTORY_COUNTER: AtomicU64 = AtomicU64::new(0);

/// One node's fixed addresses and files; the process comes and goes.
#[derive(Debug)]
pub struct Node {
    pub id: u64,
    pub client_address: SocketAddr,
    pub data_dir: PathBuf,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    /// Where the current (or last) process's output starts in each log, which accumulates
    /// over restarts for diagnosis.
    stdout_start_bytes: u64,
    stderr_start_bytes: u64,
    /// `--peers` for the nodes the cluster started with; empty for a node that joins.
    peers: String,
    /// For a node that joins: `--join` (a member's client address) and its peer address.
    join: Option<(SocketAddr, SocketAddr)>,
    child: Option<Child>,
}

/// Three nodes of one cluster, and the directory that holds their data and logs.
#[derive(Debug)]
pub struct Cluster {
    pub nodes: Vec<Node>,
    root: PathBuf,
}

impl Cluster {
    /// A fresh cluster with every node running and a leader elected.
    pub fn start(test_name: &str) -> Cluster {
        let cluster = Cluster::start_nodes(test_name, &[1, 2, 3]);
        cluster.wait_for_leader(PATIENCE);
        cluster
    }

    /// A fresh cluster in which only the nodes in `running` are started (each accepting
    /// clients when this returns); the others are configured but stopped.
    pub fn start_nodes(test_name: &str, running: &[u64]) -> Cluster {
        for attempt in 1..=START_ATTEMPTS_MAX {
            let mut cluster = Cluster::create(test_name);
            for &id in running {
                cluster.node_mut(id).start();
            }
            if running.iter().all(|&id| cluster.node_mut(id).wait_until_serving(PATIENCE)) {
                return cluster;
            }
            assert!(attempt < START_ATTEMPTS_MAX, "the cluster did not start in {START_ATTEMPTS_MAX} attempts");
            eprintln!("attempt {attempt} to start the cluster failed (a port taken?); retrying");
        }
        unreachable!("the loop returns or fails the test")
    }

    /// Directories and ports for three nodes, nothing started.
    fn create(test_name: &str) -> Cluster {
        let root = unique_directory(test_name);
        let addresses = free_loopback_addresses(2 * NODE_COUNT as usize);
        let (client_addresses, raft_addresses) = addresses.split_at(NODE_COUNT as usize);
        let ids = 1..=NODE_COUNT;
        let peers: Vec<String> =
            ids.clone().zip(raft_addresses).map(|(id, address)| format!("{id}={address}")).collect();
        let peers = peers.join(",");
        let nodes = ids
            .zip(client_addresses)
            .map(|(id, &client_address)| Node {
                id,
                client_address,
                data_dir: root.join(format!("data-{id}")),
                stdout_path: root.join(format!("node-{id}.stdout.log")),
                stderr_path: root.join(format!("node-{id}.stderr.log")),
                stdout_start_bytes: 0,
                stderr_start_bytes: 0,
                peers: peers.clone(),
                join: None,
                child: None,
            })
            .collect();
        Cluster { nodes, root }
    }

    pub fn node(&self, id: u64) -> &Node {
        self.nodes.iter().find(|node| node.id == id).unwrap_or_else(|| panic!("no node {id}"))
    }

    pub fn node_mut(&mut self, id: u64) -> &mut Node {
        self.nodes.iter_mut().find(|node| node.id == id).unwrap_or_else(|| panic!("no node {id}"))
    }

    /// Configures (without starting) a new node, numbered after the others, that joins
    /// through node `through`'s client address. Returns its id.
    pub fn add_joining_node(&mut self, through: u64) -> u64 {
        let id = self.nodes.iter().map(|node| node.id).max().unwrap_or(0) + 1;
        let addresses = free_loopback_addresses(2);
        let seed = self.node(through).client_address;
        self.nodes.push(Node {
            id,
            client_address: addresses[0],
            data_dir: self.root.join(format!("data-{id}")),
            stdout_path: self.root.join(format!("node-{id}.stdout.log")),
            stderr_path: self.root.join(format!("node-{id}.stderr.log")),
            stdout_start_bytes: 0,
            stderr_start_bytes: 0,
            peers: String::new(),
            join: Some((seed, addresses[1])),
            child: None,
        });
        id
    }

    /// The ids of the nodes whose process is running.
    pub fn running_ids(&self) -> Vec<u64> {
        self.nodes.iter().filter(|node| node.child.is_some()).map(|node| node.id).collect()
    }

    /// Waits until every running node names the same leader in the same term, and that
    /// leader says it leads; returns its id. Agreement, rather than one node's claim,
    /// rules out a deposed leader that has not heard of the new term yet.
    pub fn wait_for_leader(&self, timeout: Duration) -> u64 {
        self.wait_for_leader_after_term(0, timeout)
    }

    /// Like [`Cluster::wait_for_leader`], for a leader of a term above `term`.
    pub fn wait_for_leader_after_term(&self, term: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((leader, leader_term)) = self.agreed_leader() {
                if leader_term > term {
                    return leader;
                }
            }
            assert!(Instant::now() < deadline, "no leader after term {term} within {timeout:?}");
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// The leader and term every running node agrees on, if they do.
    fn agreed_leader(&self) -> Option<(u64, u64)> {
        let reports: Vec<(u64, BTreeMap<String, String>)> = self
            .running_ids()
            .into_iter()
            .map(|id| Some((id, self.node(id).try_info_raft()?)))
            .collect::<Option<_>>()?;
        let (_, first) = reports.first()?;
        let (leader, term) = (field(first, "leader_id"), field(first, "term"));
        let agreed = reports.iter().all(|(_, info)| field(info, "leader_id") == leader && field(info, "term") == term);
        let leader_says_so = reports.iter().any(|(id, info)| *id == leader && info["role"] == "leader");
        (leader != 0 && agreed && leader_says_so).then_some((leader, term))
    }

    /// Waits until node `id` has applied every entry the leader has committed by now.
    pub fn wait_until_caught_up(&self, id: u64, timeout: Duration) {
        let leader = self.wait_for_leader(timeout);
        let commit_index = field(&self.node(leader).info_raft(), "commit_index");
        let deadline = Instant::now() + timeout;
        while field(&self.node(id).info_raft(), "applied_index") < commit_index {
            assert!(Instant::now() < deadline, "node {id} did not apply up to index {commit_index} in {timeout:?}");
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Kills every running node without warning.
    pub fn kill_all(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
    }

    fn print_log_tails(&self) {
        eprintln!("--- the test failed; data and logs kept in {}", self.root.display());
        for node in &self.nodes {
            for path in [&node.stdout_path, &node.stderr_path] {
                eprintln!("--- tail of {}:\n{}", path.display(), tail(&read_text(path), 40));
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_all();
        if std::thread::panicking() {
            self.print_log_tails();
        } else if let Err(error) = fs::remove_dir_all(&self.root) {
            eprintln!("cannot remove {}: {error}", self.root.display());
        }
    }
}

impl Node {
    /// Starts the process on this node's data directory and addresses.
    pub fn start(&mut self) {
        let child = self.spawn(&[]);
        self.child = Some(child);
    }

    /// Starts a process with this node's settings but for the flags in `overrides`, runs it
    /// until it exits, and returns its status and stderr. For starts that must fail; one that
    /// does not exit within [`PATIENCE`] fails the test.
    pub fn run_expecting_exit(&mut self, overrides: &[(&str, &str)]) -> (ExitStatus, String) {
        assert!(self.child.is_none(), "node {} is already running", self.id);
        let mut child = self.spawn(overrides);
        let status = wait_for_exit(&mut child, PATIENCE);
        let status = status.unwrap_or_else(|| {
            kill_and_reap(&mut child);
            panic!("node {} with {overrides:?} kept running; it should have refused to start", self.id)
        });
        (status, self.stderr_text())
    }

    fn spawn(&mut self, overrides: &[(&str, &str)]) -> Child {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tally"));
        command.arg("server").args(self.arguments(overrides));
        // Plain text logs, whatever the environment says, since tests search them.
        command.env("RUST_LOG", "info").env("NO_COLOR", "1").stdin(Stdio::null());
        let (stdout, stdout_start_bytes) = open_log(&self.stdout_path);
        let (stderr, stderr_start_bytes) = open_log(&self.stderr_path);
        (self.stdout_start_bytes, self.stderr_start_bytes) = (stdout_start_bytes, stderr_start_bytes);
        command.stdout(stdout).stderr(stderr);
        command.spawn().expect("can start tally")
    }

    /// The node's flags, with each flag named in `overrides` given the value there instead.
    fn arguments(&self, overrides: &[(&str, &str)]) -> Vec<String> {
        let mut flags = vec![
            ("--id", self.id.to_string()),
            ("--cluster-id", CLUSTER_ID.to_string()),
            ("--listen", self.client_address.to_string()),
            ("--data", self.data_dir.display().to_string()),
            ("--tick-interval-ms", TICK_INTERVAL_MS.to_string()),
            ("--heartbeat-interval-ms", HEARTBEAT_INTERVAL_MS.to_string()),
            ("--election-timeout-ms-min", ELECTION_TIMEOUT_MS_MIN.to_string()),
            ("--election-timeout-ms-max", ELECTION_TIMEOUT_MS_MAX.to_string()),
            ("--request-timeout-ms", REQUEST_TIMEOUT_MS.to_string()),
            // Snapshots every few dozen entries, so that every test also compacts logs and
            // recovers from snapshots.
            ("--snapshot-entries", SNAPSHOT_ENTRIES.to_string()),
            ("--snapshot-trailing-entries", "10".to_string()),
            ("--snapshot-chunk-bytes", "4096".to_string()),
        ];
        match self.join {
            None => flags.push(("--peers", self.peers.clone())),
            Some((seed, raft)) => {
                flags.push(("--join", seed.to_string()));
                flags.push(("--raft-listen", raft.to_string()));
            }
        }
        let value_of = |flag: &str, default: String| {
            overrides.iter().find(|(name, _)| *name == flag).map_or(default, |(_, value)| value.to_string())
        };
        flags.into_iter().flat_map(|(flag, value)| [flag.to_string(), value_of(flag, value)]).collect()
    }

    /// Waits until the node answers PING; false if it exited first or the time ran out.
    pub fn wait_until_serving(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.has_exited() {
                return false;
            }
            if let Ok(mut client) = Client::connect(self.client_address) {
                if client.try_command(&["PING"]).is_ok() {
                    return true;
                }
            }
            std::thread::sleep(POLL_INTERVAL);
        }
        false
    }

    /// True if the process was started and has exited (it is then reaped).
    fn has_exited(&mut self) -> bool {
        let Some(child) = &mut self.child else { return false };
        let exited = child.try_wait().expect("can poll the child").is_some();
        if exited {
            self.child = None;
        }
        exited
    }

    /// SIGKILL, as a crash or power loss would stop it; nothing is flushed.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_and_reap(&mut child);
        }
    }

    /// Sends SIGTERM and returns the exit status and how long the exit took; `None` (after
    /// a SIGKILL) if the process did not exit within `timeout`.
    pub fn terminate(&mut self, timeout: Duration) -> Option<(ExitStatus, Duration)> {
        let mut child = self.child.take().expect("the node is running");
        let sent = Instant::now();
        let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("can run kill");
        assert!(status.success(), "kill -TERM failed: {status}");
        let exit = wait_for_exit(&mut child, timeout).map(|status| (status, sent.elapsed()));
        if exit.is_none() {
            kill_and_reap(&mut child);
        }
        exit
    }

    /// A new connection to this node.
    pub fn client(&self) -> Client {
        Client::connect_within(self.client_address, PATIENCE)
    }

    /// `INFO raft`; fails the test if the node does not answer.
    pub fn info_raft(&self) -> BTreeMap<String, String> {
        self.try_info_raft().unwrap_or_else(|| panic!("node {} does not answer INFO raft", self.id))
    }

    fn try_info_raft(&self) -> Option<BTreeMap<String, String>> {
        Client::connect(self.client_address).ok()?.info_raft().ok()
    }

    /// What the current (or last) process wrote to stderr.
    pub fn stderr_text(&self) -> String {
        read_text_from(&self.stderr_path, self.stderr_start_bytes)
    }

    /// The segment files of this node's WAL, in order.
    pub fn wal_segments(&self) -> Vec<PathBuf> {
        let mut segments: Vec<PathBuf> = fs::read_dir(self.data_dir.join("wal"))
            .expect("the node has a WAL directory")
            .map(|entry| entry.expect("can list the WAL directory").path())
            .filter(|path| path.extension().is_some_and(|extension| extension == "log"))
            .collect();
        segments.sort();
        segments
    }
}

/// A numeric field of `INFO raft`; fails the test if it is missing or not a number.
pub fn field(info: &BTreeMap<String, String>, name: &str) -> u64 {
    let value = info.get(name).unwrap_or_else(|| panic!("INFO raft has no {name}: {info:?}"));
    value.parse().unwrap_or_else(|_| panic!("INFO raft {name} is not a number: {value:?}"))
}

fn kill_and_reap(child: &mut Child) {
    // An error means it already exited, which is what we want.
    let _ = child.kill();
    child.wait().expect("can reap the child");
}

/// Polls until the child exits; `None` if it is still running at the deadline.
fn wait_for_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("can poll the child") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Distinct free ports on 127.0.0.1. All listeners stay open until every port is chosen,
/// so no port is returned twice; another process may still take one before a node binds it.
fn free_loopback_addresses(count: usize) -> Vec<SocketAddr> {
    let listeners: Vec<TcpListener> =
        (0..count).map(|_| TcpListener::bind("127.0.0.1:0").expect("can bind an ephemeral port")).collect();
    listeners.iter().map(|listener| listener.local_addr().expect("a bound listener has an address")).collect()
}

fn unique_directory(test_name: &str) -> PathBuf {
    let number = DIRECTORY_COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = format!("tally-cluster-{test_name}-{}-{number}", std::process::id());
    let path = std::env::temp_dir().join(name);
    // A leftover from an earlier run with the same process id would confuse the test.
    let _ = fs::remove_dir_all(&path);
    fs::create_dir_all(&path).expect("can create the test directory");
    path
}

/// Opens a log for appending, with a line that marks a new start; returns it and where
/// the new process's output begins.
fn open_log(path: &Path) -> (File, u64) {
    let mut file = OpenOptions::new().create(true).append(true).open(path).expect("can open the log");
    writeln!(file, "=== tally started at {:?} ===", SystemTime::now()).expect("can write the log");
    let start_bytes = file.metadata().expect("can stat the log").len();
    (file, start_bytes)
}

fn read_text(path: &Path) -> String {
    read_text_from(path, 0)
}

fn read_text_from(path: &Path, start_bytes: u64) -> String {
    let bytes = fs::read(path).unwrap_or_default();
    let start = usize::try_from(start_bytes).expect("a log fits in memory").min(bytes.len());
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

fn tail(text: &str, lines_max: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(lines_max)..].join("\n")
}
