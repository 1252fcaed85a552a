//! Per-node clock skew. madsim has one global virtual clock; each simulated node reads its own
//! skewed view of it through `kvstore::clock::Clock`, which is how skew reaches the engine.

use std::sync::Mutex;

use kvstore::clock::Clock;
use tokio::time::Instant;

/// Local time = global elapsed time scaled by `1 + drift` plus an offset that may step.
#[derive(Debug)]
pub struct SkewedClock {
    origin: Instant,
    /// Parts per million the clock runs fast (positive) or slow (negative).
    drift_ppm: i64,
    state: Mutex<SkewState>,
}

#[derive(Debug)]
struct SkewState {
    offset_ms: i64,
    /// The last reading, so a reading never goes back whatever the drift does.
    last_ms: u64,
}

impl SkewedClock {
    pub fn new(drift_ppm: i64, offset_ms: u64) -> SkewedClock {
        let state = SkewState { offset_ms: offset_ms as i64, last_ms: 0 };
        SkewedClock { origin: Instant::now(), drift_ppm, state: Mutex::new(state) }
    }

    /// A sudden jump forward, as when NTP steps a clock or a VM resumes.
    pub fn step_forward(&self, step_ms: u64) {
        self.state.lock().expect("clock lock").offset_ms += step_ms as i64;
    }

    /// A step back. Readings never go back, so the clock stands still until real time
    /// catches up with its last reading: what a monotonic clock fed by a stepped one shows.
    pub fn step_back(&self, step_ms: u64) {
        self.state.lock().expect("clock lock").offset_ms -= step_ms as i64;
    }
}

impl Clock for SkewedClock {
    fn now_ms(&self) -> u64 {
        let elapsed_ms = self.origin.elapsed().as_millis() as i64;
        let skewed_ms = elapsed_ms + elapsed_ms * self.drift_ppm / 1_000_000;
        let mut state = self.state.lock().expect("clock lock");
        let reading = (skewed_ms + state.offset_ms).max(0) as u64;
        state.last_ms = state.last_ms.max(reading);
        state.last_ms
    }
}
