//! `tally-sim`: runs simulated Tally clusters under faults, seed by seed, and judges each run.
//! Built for the simulator only (`RUSTFLAGS="--cfg madsim"`); `make sim` does that.

#[cfg(madsim)]
mod sweep {
    use std::ops::Range;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;
    use std::time::Instant;

    use clap::Parser;
    use kvstore::node::ReadMode;
    use sim::world::{run, RunConfig, RunOutcome};

    #[derive(Debug, Parser)]
    #[command(name = "tally-sim", about = "Deterministic simulation of Tally clusters under faults")]
    pub struct Cli {
        /// Replay one seed with full logs, and print its trace hash.
        #[arg(long)]
        seed: Option<u64>,
        /// The seeds of a sweep, as FIRST..END (END excluded).
        #[arg(long, default_value = "0..100", value_parser = parse_range)]
        seeds: Range<u64>,
        /// Seeds run in parallel (each in its own simulated world).
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// Nodes per cluster: 3 or 5. By default the seed chooses (one seed in four runs 5).
        #[arg(long)]
        nodes: Option<u64>,
        /// Length of the fault phase, in simulated milliseconds.
        #[arg(long, default_value_t = 20_000)]
        safety_ms: u64,
        /// Every client reads in this mode (linearizable, lease, follower or stale; stale is
        /// not linearizable and the checker should object). By default the seed chooses among
        /// the first three, per client.
        #[arg(long, value_parser = parse_read_mode)]
        read_mode: Option<ReadMode>,
        /// Step clocks even in seeds with lease readers (beyond the lease's drift bound).
        #[arg(long)]
        clock_steps_with_lease_reads: bool,
        /// Clients 0..N only read, so they keep reading from a node cut off from the rest.
        #[arg(long, default_value_t = 0)]
        read_only_clients: u64,
        /// How fast or slow each node's clock may run, in parts per million.
        #[arg(long, default_value_t = 1000)]
        clock_drift_ppm_max: u64,
    }

    fn parse_read_mode(text: &str) -> Result<ReadMode, String> {
        ReadMode::parse(text).ok_or_else(|| format!("{text:?} is not linearizable, lease, follower or stale"))
    }

    fn parse_range(text: &str) -> Result<Range<u64>, String> {
        let (start, end) = text.split_once("..").ok_or("expected FIRST..END")?;
        let parse = |part: &str| part.parse::<u64>().map_err(|_| format!("{part:?} is not a number"));
        Ok(parse(start)?..parse(end)?)
    }

    fn config(cli: &Cli, seed: u64) -> RunConfig {
        let mut config = RunConfig { safety_phase_ms: cli.safety_ms, ..RunConfig::new(seed) };
        config.node_count = cli.nodes.unwrap_or(config.node_count);
        if let Some(mode) = cli.read_mode {
            config.workload.read_modes = vec![mode];
        }
        config.clock_steps_with_lease_reads = cli.clock_steps_with_lease_reads;
        config.clock_drift_ppm_max = cli.clock_drift_ppm_max;
        config.workload.read_only_clients = cli.read_only_clients;
        config
    }

    fn judge(outcome: &RunOutcome) -> Vec<String> {
        sim::judge(outcome)
    }

    fn replay_command(cli: &Cli, seed: u64) -> String {
        let mut flags = format!("--safety-ms {}", cli.safety_ms);
        if let Some(nodes) = cli.nodes {
            flags += &format!(" --nodes {nodes}");
        }
        if let Some(mode) = cli.read_mode {
            flags += &format!(" --read-mode {}", mode.name());
        }
        if cli.clock_steps_with_lease_reads {
            flags += " --clock-steps-with-lease-reads";
        }
        if cli.read_only_clients > 0 {
            flags += &format!(" --read-only-clients {}", cli.read_only_clients);
        }
        if cli.clock_drift_ppm_max != 1000 {
            flags += &format!(" --clock-drift-ppm-max {}", cli.clock_drift_ppm_max);
        }
        format!("make sim SEED={seed} SIM_ARGS='{flags}'")
    }

    pub fn main() -> std::process::ExitCode {
        let cli = Cli::parse();
        match cli.seed {
            Some(seed) => replay(&cli, seed),
            None => sweep(&cli),
        }
    }

    fn replay(cli: &Cli, seed: u64) -> std::process::ExitCode {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
        let outcome = run(config(cli, seed));
        println!("seed {seed}: {} nodes, fault mix {:?}", outcome.node_count, outcome.fault_mix);
        println!("read modes: {:?}", outcome.read_modes);
        for fault in &outcome.faults {
            println!("  fault: {fault}");
        }
        println!("operations: {}", outcome.history.len());
        let failures = judge(&outcome);
        for failure in &failures {
            println!("FAILED: {failure}");
        }
        println!("trace hash: {:016x}", outcome.trace_hash);
        if failures.is_empty() {
            std::process::ExitCode::SUCCESS
        } else {
            std::process::ExitCode::FAILURE
        }
    }

    fn sweep(cli: &Cli) -> std::process::ExitCode {
        let started = Instant::now();
        let next = AtomicU64::new(cli.seeds.start);
        let failed: Mutex<Vec<(u64, Vec<String>)>> = Mutex::new(Vec::new());
        let simulated_ms = AtomicU64::new(0);
        std::thread::scope(|scope| {
            for _ in 0..cli.jobs.max(1) {
                scope.spawn(|| loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= cli.seeds.end {
                        return;
                    }
                    let config = config(cli, seed);
                    let run_ms = config.safety_phase_ms + config.liveness_bound_ms + config.workload.reply_timeout_ms;
                    let failures = judge(&run(config));
                    simulated_ms.fetch_add(run_ms, Ordering::Relaxed);
                    if !failures.is_empty() {
                        eprintln!(
                            "seed {seed} FAILED: {}\n  replay: {}",
                            failures.join("; "),
                            replay_command(cli, seed)
                        );
                        failed.lock().expect("failures").push((seed, failures));
                    }
                });
            }
        });
        let seeds = cli.seeds.end - cli.seeds.start;
        let elapsed = started.elapsed().as_secs_f64();
        let failed = failed.into_inner().expect("failures");
        println!(
            "{seeds} seeds in {elapsed:.1} s: {:.1} seeds/s, about {:.0}x faster than real time (simulated time is at least {} s per seed); {} failed",
            seeds as f64 / elapsed,
            simulated_ms.load(Ordering::Relaxed) as f64 / 1000.0 / elapsed,
            (cli.safety_ms + 15_000) / 1000,
            failed.len()
        );
        if failed.is_empty() {
            std::process::ExitCode::SUCCESS
        } else {
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(madsim)]
fn main() -> std::process::ExitCode {
    sweep::main()
}

#[cfg(not(madsim))]
fn main() -> std::process::ExitCode {
    eprintln!("tally-sim runs only in the simulator build: use `make sim` (RUSTFLAGS=\"--cfg madsim\")");
    std::process::ExitCode::from(2)
}
