//! [`Server`]: the accept loop, and the state its connections share.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;

use super::config::ServerConfig;
use super::connection;
use super::cursors::CursorTable;
use super::metrics::ServerMetrics;
use crate::node::Backend;

/// How long to pause after a failed accept (such as running out of file descriptors), so
/// that the loop does not spin while the condition lasts.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(50);

/// A RESP server in front of one node.
///
/// Build it with [`Server::new`], hand [`Server::metrics`] to an exporter, then run
/// [`Server::serve`].
pub struct Server<B: Backend> {
    shared: Arc<Shared<B>>,
}

/// What every connection of a server uses.
pub(super) struct Shared<B: Backend> {
    pub(super) backend: B,
    pub(super) config: ServerConfig,
    pub(super) metrics: Arc<ServerMetrics>,
    pub(super) cursors: CursorTable,
    /// When the server was built, for INFO's uptime (virtual time in the simulator).
    pub(super) started: Instant,
    next_client_id: AtomicU64,
}

impl<B: Backend> Shared<B> {
    /// A fresh connection id; ids start at 1 and never repeat within a server.
    pub(super) fn next_client_id(&self) -> u64 {
        self.next_client_id.fetch_add(1, Ordering::Relaxed)
    }
}

impl<B: Backend> Server<B> {
    /// A server that sends commands to `backend`.
    pub fn new(backend: B, config: ServerConfig) -> Server<B> {
        let cursors = CursorTable::new(config.scan_cursors_max);
        let shared = Shared {
            backend,
            config,
            metrics: Arc::new(ServerMetrics::default()),
            cursors,
            started: Instant::now(),
            next_client_id: AtomicU64::new(1),
        };
        Server { shared: Arc::new(shared) }
    }

    /// The server's counters, to read with [`ServerMetrics::snapshot`].
    pub fn metrics(&self) -> Arc<ServerMetrics> {
        Arc::clone(&self.shared.metrics)
    }

    /// Accepts connections from `listener` and serves each in a task of its own, until the
    /// returned future is dropped. Dropping it stops accepting; connections already open
    /// run on until their clients leave.
    pub async fn serve(&self, listener: TcpListener) {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    if let Err(error) = stream.set_nodelay(true) {
                        tracing::debug!(%peer, %error, "could not disable Nagle's algorithm");
                    }
                    tokio::spawn(connection::run(Arc::clone(&self.shared), stream, peer));
                }
                Err(error) => {
                    tracing::warn!(%error, "accepting a client connection failed");
                    tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
                }
            }
        }
    }
}

/// Serves RESP clients on `listener` with `backend` until the future is dropped: a shortcut
/// for [`Server::new`] then [`Server::serve`] when no one reads the metrics.
pub async fn serve<B: Backend>(listener: TcpListener, backend: B, config: ServerConfig) {
    Server::new(backend, config).serve(listener).await;
}

impl<B: Backend> fmt::Debug for Server<B> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("Server").field("config", &self.shared.config).finish_non_exhaustive()
    }
}
