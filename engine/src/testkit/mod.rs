//! An in-memory cluster of engines with a network and disks the test controls, and the
//! cluster-wide oracles of `SCENARIOS.md`, checked after every operation.
//!
//! Scenario scripts, property tests, benchmarks and fuzz targets all drive the engine through
//! [`Cluster`], so each oracle is written once. Enabled by the `testkit` feature.

// Shared by the oracle modules below, which see it by textual scope.
/// Returns the violation `$($message)+` unless `$condition` holds.
macro_rules! ensure {
    ($condition:expr, $($message:tt)+) => {
        if !$condition {
            return Err(format!($($message)+));
        }
    };
}

mod cluster;
mod disk;
mod leadership;
mod oracles;

pub use cluster::{Cluster, NodeStatus};
pub use disk::MemoryLog;
pub use oracles::{check_log_matching, check_membership_after_install, Oracles, Violation};

/// FNV-1a: a tiny, stable hash for trace fingerprints (std's hashers may change between releases).
pub fn fnv1a(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

/// The FNV-1a starting value.
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
