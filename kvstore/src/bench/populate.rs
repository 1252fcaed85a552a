//! Before the warm-up, SET every key once, so that GETs find values from the first request
//! on. A GET of a missing key is cheaper than a real read, and would flatter the server.

use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::config::BenchConfig;
use super::connection::Connection;
use super::error::BenchError;
use super::workload::{key_name, set_request};
use crate::resp::Frame;

/// SETs sent per round trip: enough to fill a batch on the server, few enough that a retry
/// repeats little.
const BATCH_KEYS: usize = 64;
/// A key answered with an error (say `TRYAGAIN` during an election) is tried this often.
const ATTEMPTS_MAX: u32 = 5;
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// Writes every key of the key space once, over as many connections as there are clients
/// (each to its client's server), and returns when all are acknowledged.
pub(super) async fn populate(config: &BenchConfig, value: &Bytes) -> Result<(), BenchError> {
    let connections = config.clients.min(usize::try_from(config.keys).unwrap_or(usize::MAX));
    let shares = (0..connections).map(|index| populate_share(config, index, connections, value));
    futures::future::try_join_all(shares).await?;
    Ok(())
}

/// Writes keys `index`, `index + stride`, `index + 2 * stride`, ... over one connection.
async fn populate_share(config: &BenchConfig, index: usize, stride: usize, value: &Bytes) -> Result<(), BenchError> {
    let mut connection = Connection::open(config.address_of_client(index), config).await?;
    let mut keys = (index as u64..config.keys).step_by(stride).map(key_name);
    loop {
        let batch: Vec<Bytes> = keys.by_ref().take(BATCH_KEYS).collect();
        if batch.is_empty() {
            return Ok(());
        }
        set_all(&mut connection, batch, value).await?;
    }
}

/// SETs every key of `pending`, retrying the ones answered with an error.
async fn set_all(connection: &mut Connection, mut pending: Vec<Bytes>, value: &Bytes) -> Result<(), BenchError> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let mut requests = BytesMut::new();
        for key in &pending {
            set_request(key.clone(), value.clone()).encode(&mut requests);
        }
        let replies = connection.call(&requests, pending.len()).await?;
        let failures: Vec<(Bytes, String)> = pending
            .iter()
            .zip(replies)
            .filter_map(|(key, reply)| match reply {
                Frame::Simple(status) if status == "OK" => None,
                Frame::Error(message) => Some((key.clone(), String::from_utf8_lossy(&message).into_owned())),
                other => Some((key.clone(), format!("an unexpected reply {other:?}"))),
            })
            .collect();
        let Some((key, message)) = failures.first() else {
            return Ok(());
        };
        if attempts == ATTEMPTS_MAX {
            return Err(BenchError::Populate {
                address: connection.address().to_string(),
                key: String::from_utf8_lossy(key).into_owned(),
                message: message.clone(),
            });
        }
        tracing::debug!(failed = failures.len(), %message, "retrying keys that could not be set");
        pending = failures.into_iter().map(|(key, _)| key).collect();
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}
