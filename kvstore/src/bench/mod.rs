//! `tally bench`: a load generator in the manner of redis-benchmark, for a mix of GETs and
//! SETs against Tally or any Redis server.
//!
//! A run goes through four steps, in [`run`]:
//! 1. Every address is probed (connect, `AUTH` and `READMODE` if asked for, `PING`), so an
//!    unreachable server or a refused option stops the run at once, naming the address.
//! 2. Unless `--no-populate`, every key is SET once, so that GETs find values.
//! 3. The clients connect and run closed loops: each keeps `pipeline` requests in flight
//!    and records every request's latency. The first `warmup` is not recorded.
//! 4. The clients' measurements are added up into a [`Summary`].
//!
//! Only GET, SET, AUTH, PING and READMODE are sent, so it measures a plain redis-server too.
//!
//! # Code map
//! - `config`: [`BenchArgs`] (the command line) and [`BenchConfig`] (the checked options).
//! - `connection`: one RESP connection, set up with `AUTH` and `READMODE`; writes a batch
//!   while reading its replies.
//! - `workload`: the seeded choice of keys and operations, and the requests' encoding.
//! - `populate`: writing every key before the run.
//! - `client`: one closed loop, and the `Window` of warm-up and measured time.
//! - `recording`: what clients measure (hdrhistogram latencies, errors by kind), and adding it up.
//! - `report`: [`Summary`], as text and as JSON.
//! - `error`: [`BenchError`], why a run could not start or finish.

mod client;
mod config;
mod connection;
mod error;
mod populate;
mod recording;
mod report;
mod workload;

use std::sync::Arc;

pub use config::{BenchArgs, BenchConfig, ConfigError, CLIENTS_MAX, PIPELINE_MAX, VALUE_SIZE_BYTES_MAX};
pub use error::BenchError;
pub use report::{Latencies, Percentiles, ReportedOptions, Summary};

use client::Window;
use connection::Connection;
use recording::Recording;
use workload::Workload;

/// Runs the benchmark `config` describes and returns its summary. Progress goes to the log.
pub async fn run(config: BenchConfig) -> Result<Summary, BenchError> {
    let config = Arc::new(config);
    for address in &config.addresses {
        probe(address, &config).await?;
    }
    let value = workload::value_of_size(config.value_size_bytes);
    if config.populate {
        tracing::info!(keys = config.keys, "populating: setting every key once");
        populate::populate(&config, &value).await?;
    }

    // Every client connects before the clock starts, so connecting is not part of the warm-up.
    let mut connections = Vec::with_capacity(config.clients);
    for index in 0..config.clients {
        connections.push(Connection::open(config.address_of_client(index), &config).await?);
    }
    let window = Window::starting_now(config.warmup, config.duration);
    tracing::info!(
        clients = config.clients,
        warmup_s = config.warmup.as_secs(),
        duration_s = config.duration.as_secs(),
        "running"
    );
    let clients: Vec<_> = connections
        .into_iter()
        .enumerate()
        .map(|(index, connection)| {
            let workload = Workload::new(&config, index, value.clone());
            tokio::spawn(client::run(connection, workload, Arc::clone(&config), window))
        })
        .collect();

    let mut total = Recording::new();
    for client in clients {
        let recording = client.await.map_err(|error| BenchError::ClientFailed { reason: error.to_string() })?;
        total.add(&recording);
    }
    Ok(Summary::new(&config, &total))
}

/// Checks that `address` accepts a connection set up as the options ask, and answers `PING`.
async fn probe(address: &str, config: &BenchConfig) -> Result<(), BenchError> {
    let mut connection = Connection::open(address, config).await?;
    match connection.set_up(&["PING"], "PING").await? {
        crate::resp::Frame::Simple(pong) if pong == "PONG" => Ok(()),
        other => Err(BenchError::UnexpectedReply {
            address: address.to_string(),
            command: "PING".to_string(),
            reply: format!("{other:?}"),
        }),
    }
}
