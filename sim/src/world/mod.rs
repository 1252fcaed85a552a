//! One simulated run: a seed builds a world of real Tally nodes and clients, a nemesis injects
//! faults during the safety phase, then every fault heals and the liveness phase demands a
//! single leader, converged commit indexes and completion of new operations within a stated
//! bound; finally every key is read. The same seed replays the same run.

pub mod churn;
pub mod clock;
pub mod cluster;
pub mod nemesis;
pub mod resp_client;
pub mod workload;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use kvstore::node::ReadMode;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::history::{Call, Operation, Outcome};
use cluster::{SimCluster, Timing};
use nemesis::FaultMix;
use resp_client::RespClient;
use workload::{Recorder, Workload};

/// What one run does.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub seed: u64,
    pub node_count: u64,
    pub client_count: u64,
    pub safety_phase_ms: u64,
    /// After every fault heals, the cluster must have one leader with converged commit
    /// indexes, and serve a write through every node, within this bound.
    pub liveness_bound_ms: u64,
    pub workload: Workload,
    pub timing: Timing,
    /// Let the nemesis step clocks even when clients read under leases. Clock steps of
    /// seconds break the lease's drift bound by design, so by default a seed with lease
    /// readers has none; the test that shows the bound matters turns them back on.
    pub clock_steps_with_lease_reads: bool,
    /// The faults to inject; `None` draws them from the seed (the usual, swarm-style).
    pub fault_mix: Option<FaultMix>,
    /// Each node's clock runs fast or slow by up to this many parts per million (default
    /// 1,000: 1 ms per second, far worse than NTP allows and still well within the lease's
    /// drift bound).
    pub clock_drift_ppm_max: u64,
}

impl RunConfig {
    /// The defaults for `seed`; one seed in four runs 5 nodes, the others 3.
    pub fn new(seed: u64) -> RunConfig {
        RunConfig {
            seed,
            node_count: if seed % 4 == 3 { 5 } else { 3 },
            client_count: 4,
            safety_phase_ms: 20_000,
            liveness_bound_ms: 15_000,
            workload: Workload { read_modes: draw_read_modes(seed), ..Workload::default() },
            timing: Timing::default(),
            clock_steps_with_lease_reads: false,
            fault_mix: None,
            clock_drift_ppm_max: 1000,
        }
    }
}

/// Each seed gives its clients linearizable read modes of its own choosing, swarm-style.
fn draw_read_modes(seed: u64) -> Vec<ReadMode> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7265_6164_6d6f_6465);
    let modes = [ReadMode::Linearizable, ReadMode::Lease, ReadMode::Follower];
    (0..4).map(|_| modes[(rng.next_u64() % modes.len() as u64) as usize]).collect()
}

/// What a run produced.
#[derive(Debug)]
pub struct RunOutcome {
    pub node_count: u64,
    pub read_modes: Vec<ReadMode>,
    pub history: Vec<Operation>,
    pub fault_mix: FaultMix,
    pub faults: Vec<String>,
    /// Liveness failures; safety is judged by the checker over `history`.
    pub liveness_failures: Vec<String>,
    /// What the cluster oracles saw go wrong inside the nodes (election safety, log matching,
    /// state machine safety, recovery), and storage faults handled wrongly.
    pub oracle_failures: Vec<String>,
    /// A fingerprint of the whole run: faults, every step the nodes reported (persists,
    /// applies, roles, terms, commits), and every operation with its times and result.
    pub trace_hash: u64,
    /// Snapshots the nodes took of their own state machines, and installed from a leader.
    pub snapshots_saved: u64,
    pub snapshots_installed: u64,
}

/// Runs one seed to completion in a fresh simulated world.
pub fn run(config: RunConfig) -> RunOutcome {
    let runtime = madsim::runtime::Runtime::with_seed_and_config(config.seed, madsim::Config::default());
    runtime.block_on(run_world(config))
}

async fn run_world(config: RunConfig) -> RunOutcome {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let drawn = FaultMix::draw(&mut rng);
    let mut fault_mix = config.fault_mix.clone().unwrap_or(drawn);
    if config.workload.read_modes.contains(&ReadMode::Lease) && !config.clock_steps_with_lease_reads {
        fault_mix.clock_step = 0;
    }
    let drift_ppm_span = 2 * config.clock_drift_ppm_max + 1;
    let skews: Vec<(i64, u64)> = (0..config.node_count)
        .map(|_| ((rng.next_u64() % drift_ppm_span) as i64 - config.clock_drift_ppm_max as i64, rng.next_u64() % 500))
        .collect();
    let mut cluster = SimCluster::start(config.node_count, config.timing, &skews, fault_mix.messages, rng.next_u64());
    let recorder = Recorder::new(tokio::time::Instant::now());
    let stop_ns = (config.safety_phase_ms + config.liveness_bound_ms / 2) * 1_000_000;
    for client in 0..config.client_count {
        spawn_client(client, &cluster, &config, rng.next_u64(), stop_ns, recorder.clone());
    }
    let nemesis =
        nemesis::run(&mut cluster, &fault_mix, rng.next_u64(), Duration::from_millis(config.safety_phase_ms)).await;
    cluster.stop_message_faults();
    cluster.heal_everything();
    let (liveness_failures, members) = check_liveness(&cluster, &config, &recorder).await;
    // Let the clients finish their last operations before the final reads.
    tokio::time::sleep(Duration::from_millis(config.liveness_bound_ms / 2 + config.workload.reply_timeout_ms)).await;
    let reader = members.first().copied().unwrap_or(cluster.healthy_client_addresses()[0]);
    read_every_key(reader, &config, &recorder).await;
    let history = recorder.operations();
    let mut oracle_failures = nemesis.failures;
    oracle_failures.extend(cluster.observer.finish());
    let trace_hash = hash_trace(&nemesis.log, &history) ^ cluster.observer.trace_hash();
    let faults = nemesis.log;
    let (snapshots_saved, snapshots_installed) = cluster.observer.snapshot_counts();
    RunOutcome {
        node_count: config.node_count,
        read_modes: config.workload.read_modes.clone(),
        history,
        fault_mix,
        faults,
        liveness_failures,
        oracle_failures,
        trace_hash,
        snapshots_saved,
        snapshots_installed,
    }
}

fn client_ip(client: u64) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 1, client as u8 + 1))
}

fn spawn_client(client: u64, cluster: &SimCluster, config: &RunConfig, seed: u64, stop_ns: u64, recorder: Recorder) {
    let addresses = cluster.client_addresses();
    let workload = config.workload.clone();
    madsim::runtime::Handle::current()
        .create_node()
        .name(format!("client{client}"))
        .ip(client_ip(client))
        .init(move || {
            workload::run_client(client, addresses.clone(), workload.clone(), seed, stop_ns, recorder.clone())
        })
        .build();
}

/// Runs `task` on a fresh node of its own (the harness's main task has no address).
async fn on_probe_node<T: Send + 'static>(
    name: &str,
    ip: IpAddr,
    task: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    let node = madsim::runtime::Handle::current().create_node().name(name).ip(ip).build();
    node.spawn(task).await.expect("probe task")
}

/// The liveness phase: within the bound, one leader, converged commit indexes on every
/// member of its configuration, and a write through every member. Returns the failures and
/// the members' client addresses (nodes that were removed, or never joined, take no part).
async fn check_liveness(
    cluster: &SimCluster,
    config: &RunConfig,
    recorder: &Recorder,
) -> (Vec<String>, Vec<SocketAddr>) {
    let addresses = cluster.healthy_client_addresses();
    // Members whose log the nemesis damaged stay down on purpose.
    let damaged: Vec<String> =
        cluster.nodes.values().filter(|node| node.corrupted).map(|node| node.id.to_string()).collect();
    let bound = Duration::from_millis(config.liveness_bound_ms);
    let recorder = recorder.clone();
    let probe = async move {
        let deadline = tokio::time::Instant::now() + bound;
        let mut last_seen = String::new();
        while tokio::time::Instant::now() < deadline {
            match converged(&addresses, &damaged).await {
                Ok(members) => {
                    let failures = write_through_every_node(&members, deadline, &recorder).await;
                    return (failures, members);
                }
                Err(state) => last_seen = state,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let failure = format!(
            "liveness: no single leader with converged commit indexes within {bound:?}; last seen: {last_seen}"
        );
        (vec![failure], Vec::new())
    };
    on_probe_node("liveness-probe", IpAddr::V4(Ipv4Addr::new(10, 0, 2, 1)), probe).await
}

async fn info_raft(address: SocketAddr) -> Option<BTreeMap<String, String>> {
    let mut client = RespClient::connect(address, Duration::from_millis(500)).await.ok()?;
    let arguments = [Bytes::from_static(b"INFO"), Bytes::from_static(b"raft")];
    match client.call(&arguments, Duration::from_millis(500)).await.ok()? {
        kvstore::resp::Frame::Bulk(text) => Some(
            String::from_utf8_lossy(&text)
                .lines()
                .filter_map(|line| line.split_once(':'))
                .map(|(key, value)| (key.to_string(), value.trim().to_string()))
                .collect(),
        ),
        _ => None,
    }
}

/// `Ok` with the members' client addresses when exactly one node leads, and every member of
/// its configuration (voters and learners) but the `damaged` answers, follows it and has its
/// commit index.
async fn converged(addresses: &[SocketAddr], damaged: &[String]) -> Result<Vec<SocketAddr>, String> {
    let mut states = Vec::new();
    for &address in addresses {
        // A node that never joined (or was removed and is down) need not answer; a member
        // that does not is caught below.
        if let Some(info) = info_raft(address).await {
            states.push((address, info));
        }
    }
    let field = |info: &BTreeMap<String, String>, name: &str| info.get(name).cloned().unwrap_or_default();
    let leaders: Vec<_> = states.iter().filter(|(_, info)| field(info, "role") == "leader").collect();
    let [(_, leader)] = leaders.as_slice() else {
        return Err(format!("{} leaders among {states:?}", leaders.len()));
    };
    let ids = |name: &str| -> Vec<String> {
        field(leader, name).split(',').filter(|id| !id.is_empty()).map(str::to_string).collect()
    };
    let members: Vec<String> =
        ids("voters").into_iter().chain(ids("learners")).filter(|id| !damaged.contains(id)).collect();
    let mut member_addresses = Vec::new();
    for member in &members {
        let Some((address, info)) = states.iter().find(|(_, info)| &field(info, "node_id") == member) else {
            return Err(format!("member {member} does not answer; states {states:?}"));
        };
        let agrees = field(info, "leader_id") == field(leader, "node_id")
            && field(info, "commit_index") == field(leader, "commit_index");
        if !agrees {
            return Err(format!("member {member} has not converged: {info:?} vs leader {leader:?}"));
        }
        member_addresses.push(*address);
    }
    Ok(member_addresses)
}

async fn write_through_every_node(
    addresses: &[SocketAddr],
    deadline: tokio::time::Instant,
    recorder: &Recorder,
) -> Vec<String> {
    let mut failures = Vec::new();
    for (position, &address) in addresses.iter().enumerate() {
        let key = Bytes::from(format!("liveness{position}"));
        let call = Call::Set(key.clone(), Bytes::from_static(b"ok"));
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let outcome = match RespClient::connect(address, remaining).await {
            Ok(mut client) => {
                let arguments = [Bytes::from_static(b"SET"), key, Bytes::from_static(b"ok")];
                match client.call(&arguments, remaining).await {
                    Ok(frame) => workload::classify(&call, frame),
                    Err(_) => Outcome::Unknown,
                }
            }
            Err(_) => Outcome::Unknown,
        };
        if outcome != Outcome::Ok(crate::history::Return::Done) {
            failures
                .push(format!("liveness: a write through {address} did not complete within the bound: {outcome:?}"));
        }
        let _ = recorder;
    }
    failures
}

/// Reads every key through `address`, linearizably, as the last operations of the history.
async fn read_every_key(address: SocketAddr, config: &RunConfig, recorder: &Recorder) {
    let workload = config.workload.clone();
    let recorder = recorder.clone();
    let reader = async move {
        let mut client = match RespClient::connect(address, Duration::from_secs(2)).await {
            Ok(client) => client,
            Err(_) => return,
        };
        let keys = (0..workload.keys).map(|n| format!("k{n}")).chain((0..workload.counters).map(|n| format!("n{n}")));
        for key in keys {
            let key = Bytes::from(key);
            let call = Call::Get(key.clone());
            let invoked_ns = recorder.now_ns();
            let arguments = [Bytes::from_static(b"GET"), key];
            let reply = client.call(&arguments, Duration::from_secs(5)).await;
            let (completed_ns, outcome) = match reply {
                Ok(frame) => (Some(recorder.now_ns()), workload::classify(&call, frame)),
                Err(_) => (None, Outcome::Unknown),
            };
            recorder.record_final(Operation { id: 0, client: u64::MAX, invoked_ns, completed_ns, call, outcome });
        }
    };
    on_probe_node("final-reader", IpAddr::V4(Ipv4Addr::new(10, 0, 2, 2)), reader).await;
}

/// FNV-1a over the fault log and the history: equal for two runs of one seed.
fn hash_trace(faults: &[String], history: &[Operation]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    let mut feed = |text: String| {
        for byte in text.bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    faults.iter().for_each(|fault| feed(fault.clone()));
    history.iter().for_each(|operation| feed(format!("{operation:?}")));
    hash
}
