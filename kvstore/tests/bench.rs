//! `tally bench` against a real single-node Tally started in this process: the node code the
//! binary runs (`kvstore::process::start`), on an in-memory disk, on loopback ports.

// The test uses real sockets; the simulator has its own tests.
#![cfg(not(madsim))]

use std::time::Duration;

use engine::Role;
use kvstore::bench::{BenchArgs, BenchError, ConfigError, Percentiles, Summary};
use kvstore::clock::MonotonicClock;
use kvstore::config::{ConfigFile, ProcessConfig};
use kvstore::process::RunningProcess;
use kvstore::storage::MemDisk;

/// Bound on the single node electing itself; it takes one election timeout (300 to 600 ms).
const ELECTION_PATIENCE: Duration = Duration::from_secs(10);

/// A one-voter cluster on ephemeral ports, with the short timings of the cluster tests so that
/// it elects itself fast.
fn single_node_config() -> ProcessConfig {
    ConfigFile {
        id: Some(1),
        cluster_id: Some("bench-test".to_string()),
        listen: Some("127.0.0.1:0".parse().unwrap()),
        peers: Some("1=127.0.0.1:0".to_string()),
        data: Some("/bench-test/node1".into()),
        heartbeat_interval_ms: Some(50),
        election_timeout_ms_min: Some(300),
        election_timeout_ms_max: Some(600),
        ..ConfigFile::default()
    }
    .resolve()
    .expect("the test configuration is valid")
}

/// Starts the node and waits until it leads, so the benchmark measures a working cluster.
async fn start_single_node() -> RunningProcess {
    let process = kvstore::process::start(&single_node_config(), MemDisk::new(), MonotonicClock::shared())
        .await
        .expect("the node starts");
    let elected = process.node.wait_for(|status| status.role == Role::Leader);
    tokio::time::timeout(ELECTION_PATIENCE, elected).await.expect("the single node elects itself");
    process
}

/// The options `tally bench` would get from these flags.
fn bench_args(flags: &[String]) -> BenchArgs {
    use clap::Parser;
    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }
    let words = std::iter::once("tally-bench".to_string()).chain(flags.iter().cloned());
    Cli::try_parse_from(words).expect("the flags parse").bench
}

fn flags(words: &[&str]) -> Vec<String> {
    words.iter().map(|word| word.to_string()).collect()
}

fn assert_ordered(kind: &str, percentiles: &Percentiles) {
    let Percentiles { p50_ms, p90_ms, p99_ms, p99_9_ms, max_ms } = *percentiles;
    assert!(p50_ms > 0.0, "{kind}: a round trip over TCP takes time: {percentiles:?}");
    assert!(
        p50_ms <= p90_ms && p90_ms <= p99_ms && p99_ms <= p99_9_ms && p99_9_ms <= max_ms,
        "{kind}: {percentiles:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_second_mixed_run_completes_reads_and_writes_without_errors() {
    let process = start_single_node().await;
    let address = process.client_address.to_string();
    let mut words = flags(&["--clients", "4", "--pipeline", "4", "--read-ratio", "0.5", "--value-size-bytes", "64"]);
    words.extend(flags(&["--keys", "200", "--duration-s", "1", "--warmup-s", "0", "--label", "in-process"]));
    words.extend(["--address".to_string(), address.clone()]);
    let config = bench_args(&words).validate().expect("valid options");

    let summary: Summary = kvstore::bench::run(config).await.expect("the run completes");
    process.shutdown().await.expect("the node stops cleanly");
    println!("{summary}");

    assert_eq!(summary.label.as_deref(), Some("in-process"));
    assert_eq!(summary.options.addresses, vec![address]);
    assert!(summary.ops > 0, "{summary}");
    assert!(summary.reads > 0 && summary.writes > 0, "both kinds ran: {summary}");
    assert_eq!(summary.ops, summary.reads + summary.writes);
    assert!(summary.errors.is_empty(), "no errors expected: {summary}");
    assert_eq!(summary.read_misses, 0, "every key was populated: {summary}");
    assert_eq!(summary.ops_per_s, summary.ops as f64, "rates are per second of the one measured second");
    assert_ordered("all", &summary.latency.all);
    assert_ordered("reads", &summary.latency.reads);
    assert_ordered("writes", &summary.latency.writes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_read_mode_stops_the_run_with_the_servers_answer() {
    let process = start_single_node().await;
    let address = process.client_address.to_string();
    let config = bench_args(&flags(&["--address", &address, "--read-mode", "eventual", "--duration-s", "1"]))
        .validate()
        .expect("the read mode is the server's to judge");

    let error = kvstore::bench::run(config).await.expect_err("the server refuses the mode");
    process.shutdown().await.expect("the node stops cleanly");

    assert!(matches!(error, BenchError::Refused { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains(&address) && message.contains("READMODE eventual") && message.contains("ERR"),
        "{message}"
    );
}

#[tokio::test]
async fn an_unreachable_address_fails_fast_and_names_the_address() {
    // A port just bound and released: nothing listens there.
    let address = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let config = bench_args(&flags(&["--address", &address, "--duration-s", "5"])).validate().unwrap();

    let started = std::time::Instant::now();
    let error = kvstore::bench::run(config).await.expect_err("nothing listens");

    assert!(matches!(error, BenchError::Unreachable { .. }), "{error:?}");
    assert!(error.to_string().starts_with(&format!("cannot connect to {address}: ")), "{error}");
    assert!(started.elapsed() < Duration::from_secs(4), "it fails before the run's 5 s: {:?}", started.elapsed());
}

#[test]
fn invalid_options_are_refused_before_anything_connects() {
    let error = bench_args(&flags(&["--read-ratio", "1.5"])).validate().unwrap_err();
    assert_eq!(error, ConfigError::ReadRatioOutOfRange { read_ratio: 1.5 });
}
