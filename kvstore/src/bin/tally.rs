//! `tally`: the Tally server, and its benchmark tool.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use kvstore::bench::BenchArgs;
use kvstore::config::ConfigFile;

#[derive(Debug, Parser)]
#[command(name = "tally", version, about = "A replicated key-value store that speaks the Redis protocol")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs one node of a cluster.
    Server(Box<ServerArgs>),
    /// Measures a server with a mix of GETs and SETs from many connections, like
    /// redis-benchmark; works against redis-server too.
    Bench(BenchArgs),
    /// Changes a running cluster's membership or leadership (sends RAFT.* to a node).
    Admin(AdminArgs),
}

/// `tally admin [--node ADDR] COMMAND ...`: one RAFT.* command to any node, which forwards
/// it to the leader; prints the answer. Exits 1 if the node refused or could not complete it.
#[derive(Debug, Args)]
struct AdminArgs {
    /// A node's client address.
    #[arg(long, default_value = "127.0.0.1:7001")]
    node: String,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// The membership as that node sees it (RAFT.STATUS).
    Status,
    /// Adds node ID, listening at RAFT_ADDRESS for peers and CLIENT_ADDRESS for clients, as a
    /// learner. A node started with --join does this itself.
    AddLearner { id: u64, raft_address: String, client_address: String },
    /// Makes learner ID a voter once it has caught up.
    Promote { id: u64 },
    /// Removes voter or learner ID; a removed leader hands over first.
    Remove { id: u64 },
    /// Hands leadership to voter ID.
    Transfer { id: u64 },
}

// The simulator's build has no admin client.
#[cfg_attr(madsim, allow(dead_code))]
impl AdminCommand {
    fn words(&self) -> Vec<String> {
        match self {
            AdminCommand::Status => vec!["RAFT.STATUS".to_string()],
            AdminCommand::AddLearner { id, raft_address, client_address } => {
                vec!["RAFT.ADDLEARNER".to_string(), id.to_string(), raft_address.clone(), client_address.clone()]
            }
            AdminCommand::Promote { id } => vec!["RAFT.PROMOTE".to_string(), id.to_string()],
            AdminCommand::Remove { id } => vec!["RAFT.REMOVE".to_string(), id.to_string()],
            AdminCommand::Transfer { id } => vec!["RAFT.TRANSFER".to_string(), id.to_string()],
        }
    }
}

/// Every flag has a key of the same name (with underscores) in the optional TOML file; a flag
/// overrides the file.
#[derive(Debug, Args)]
struct ServerArgs {
    /// A TOML file with any of the settings below.
    #[arg(long)]
    config: Option<PathBuf>,
    /// This node's id (a positive integer, unique in the cluster).
    #[arg(long)]
    id: Option<u64>,
    /// The cluster's name; a data directory of another cluster is refused. Default: tally.
    #[arg(long)]
    cluster_id: Option<String>,
    /// Where Redis clients connect, e.g. 127.0.0.1:7001.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Where peers connect. Default: this node's address in --peers.
    #[arg(long)]
    raft_listen: Option<std::net::SocketAddr>,
    /// Every voter's peer address, this node's included: 1=127.0.0.1:7101,2=127.0.0.1:7102,...
    #[arg(long)]
    peers: Option<String>,
    /// This node's data directory (created if missing).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics.
    #[arg(long)]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Require AUTH with this password, as Redis' requirepass does.
    #[arg(long)]
    requirepass: Option<String>,
    /// The largest request accepted, in bytes. Default: 512 MiB, as Redis.
    #[arg(long)]
    request_size_bytes_max: Option<usize>,
    /// How often the Raft clock advances. Default: 10.
    #[arg(long)]
    tick_interval_ms: Option<u64>,
    /// Default: 100.
    #[arg(long)]
    heartbeat_interval_ms: Option<u64>,
    /// Default: 1000.
    #[arg(long)]
    election_timeout_ms_min: Option<u64>,
    /// Default: 2000.
    #[arg(long)]
    election_timeout_ms_max: Option<u64>,
    /// Every request is answered within this, with an error if need be. Default: 10000.
    #[arg(long)]
    request_timeout_ms: Option<u64>,
    /// The read mode connections start in: linearizable (default), lease, follower or stale.
    #[arg(long)]
    read_mode: Option<String>,
    /// How far clocks may drift apart over an election timeout; lease reads are safe only
    /// within it (the lease is this much shorter than the minimum election timeout). Default: 100.
    #[arg(long)]
    lease_clock_drift_ms: Option<u64>,
    /// Take a snapshot (and drop the log before it) once this many entries were applied
    /// since the last one. Default: 100000.
    #[arg(long)]
    snapshot_entries: Option<u64>,
    /// ... or once this many bytes of entries were. Default: 134217728 (128 MiB).
    #[arg(long)]
    snapshot_bytes: Option<u64>,
    /// Entries kept behind a snapshot for followers slightly behind. Default: 1024.
    #[arg(long)]
    snapshot_trailing_entries: Option<u64>,
    /// A snapshot travels to a follower in chunks of this size. Default: 1048576.
    #[arg(long)]
    snapshot_chunk_bytes: Option<usize>,
    /// Join a running cluster instead of bootstrapping one: the client addresses of some of
    /// its members (comma-separated). This node is added as a learner and learns its peers;
    /// promote it with `tally admin promote ID`. Needs --raft-listen; excludes --peers.
    #[arg(long)]
    join: Option<String>,
}

impl ServerArgs {
    fn into_config_file(self) -> ConfigFile {
        ConfigFile {
            id: self.id,
            cluster_id: self.cluster_id,
            listen: self.listen,
            raft_listen: self.raft_listen,
            peers: self.peers,
            data: self.data,
            metrics_listen: self.metrics_listen,
            requirepass: self.requirepass,
            request_size_bytes_max: self.request_size_bytes_max,
            tick_interval_ms: self.tick_interval_ms,
            heartbeat_interval_ms: self.heartbeat_interval_ms,
            election_timeout_ms_min: self.election_timeout_ms_min,
            election_timeout_ms_max: self.election_timeout_ms_max,
            request_timeout_ms: self.request_timeout_ms,
            read_mode: self.read_mode,
            lease_clock_drift_ms: self.lease_clock_drift_ms,
            snapshot_entries: self.snapshot_entries,
            snapshot_bytes: self.snapshot_bytes,
            snapshot_chunk_bytes: self.snapshot_chunk_bytes,
            snapshot_trailing_entries: self.snapshot_trailing_entries,
            join: self.join,
        }
    }
}

fn load_config(mut args: ServerArgs) -> Result<kvstore::config::ProcessConfig, String> {
    let file = match args.config.take() {
        Some(path) => {
            let text =
                std::fs::read_to_string(&path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
            ConfigFile::parse_toml(&text)?
        }
        None => ConfigFile::default(),
    };
    file.overridden_by(args.into_config_file()).resolve()
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    // Colours only on a terminal: `make run` and service managers write logs to files.
    let colours = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(colours)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::Server(args) => {
            let config = match load_config(*args) {
                Ok(config) => config,
                Err(error) => {
                    eprintln!("tally: {error}");
                    return ExitCode::from(2);
                }
            };
            run_server(config)
        }
        Command::Admin(args) => run_admin(args),
        Command::Bench(args) => match args.validate() {
            Ok(config) => run_bench(config),
            Err(error) => {
                eprintln!("tally bench: {error}");
                ExitCode::from(2)
            }
        },
    }
}

/// Prints the summary on standard output (progress goes to the log on standard error), and
/// writes it as JSON too if asked.
/// The async runtime the commands run on, or `None` after saying why there is none.
#[cfg(not(madsim))]
fn runtime(command: &str) -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => Some(runtime),
        Err(error) => {
            eprintln!("{command}: cannot start the async runtime: {error}");
            None
        }
    }
}

#[cfg(not(madsim))]
fn run_bench(config: kvstore::bench::BenchConfig) -> ExitCode {
    let Some(runtime) = runtime("tally bench") else { return ExitCode::FAILURE };
    let json_path = config.json.clone();
    let summary = match runtime.block_on(kvstore::bench::run(config)) {
        Ok(summary) => summary,
        Err(error) => {
            eprintln!("tally bench: {error}");
            return ExitCode::FAILURE;
        }
    };
    print!("{summary}");
    if let Some(path) = json_path {
        if let Err(error) = summary.write_json(&path) {
            eprintln!("tally bench: {error}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

#[cfg(not(madsim))]
fn run_admin(args: AdminArgs) -> ExitCode {
    let Some(runtime) = runtime("tally admin") else { return ExitCode::FAILURE };
    let words = args.command.words();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    match runtime.block_on(kvstore::admin_client::call(&args.node, &words)) {
        Ok(reply) => {
            let text = kvstore::admin_client::render(&reply).replace("\r\n", "\n");
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), format!("{}\n", text.trim_end()).as_bytes());
            if matches!(reply, kvstore::resp::Frame::Error(_)) {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(error) => {
            eprintln!("tally admin: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(madsim)]
fn run_admin(_args: AdminArgs) -> ExitCode {
    eprintln!("tally: this build is for the simulator and cannot run admin commands");
    ExitCode::FAILURE
}

/// The simulator drives its own clients; this build cannot open real sockets.
#[cfg(madsim)]
fn run_bench(_config: kvstore::bench::BenchConfig) -> ExitCode {
    eprintln!("tally: this build is for the simulator and cannot run a benchmark");
    ExitCode::FAILURE
}

#[cfg(not(madsim))]
fn run_server(config: kvstore::config::ProcessConfig) -> ExitCode {
    let Some(runtime) = runtime("tally") else { return ExitCode::FAILURE };
    match runtime.block_on(kvstore::process::run_until_signal(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let description = describe(&error);
            tracing::error!("{description}");
            eprintln!("tally: {description}");
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes in one line. Many of our error types already include their
/// cause's text in their own, so a cause whose text is already there is not repeated.
#[cfg(not(madsim))]
fn describe(error: &anyhow::Error) -> String {
    let mut description = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if description.contains(&text) {
            continue;
        }
        if !description.is_empty() {
            description.push_str(": ");
        }
        description.push_str(&text);
    }
    description
}

/// The simulator runs nodes through `kvstore::process::start`, never through this binary.
#[cfg(madsim)]
fn run_server(_config: kvstore::config::ProcessConfig) -> ExitCode {
    eprintln!("tally: this build is for the simulator and cannot run a server");
    ExitCode::FAILURE
}
