//! Time as the node sees it. Production reads the monotonic clock; the simulator substitutes a
//! clock with its own offset, drift and sudden steps per node, which is how clock skew reaches
//! the engine (madsim has one global clock and no per-node skew).

use std::sync::Arc;

use tokio::time::Instant;

/// A monotonic millisecond clock.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// Milliseconds since an arbitrary, fixed origin. Never decreases.
    fn now_ms(&self) -> u64;
}

/// The process's monotonic clock (virtual time under the simulator).
#[derive(Debug)]
pub struct MonotonicClock {
    origin: Instant,
}

impl MonotonicClock {
    /// A shared clock starting now.
    pub fn shared() -> Arc<dyn Clock> {
        Arc::new(MonotonicClock { origin: Instant::now() })
    }
}

impl Clock for MonotonicClock {
    fn now_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }
}
