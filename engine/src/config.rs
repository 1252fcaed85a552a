//! Tunables of one node, and their validation.

use thiserror::Error;

/// How a node behaves. Times are in milliseconds of the clock the driver passes to
/// [`crate::Raft::tick`]; they need not be wall-clock milliseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// A follower that hears nothing from a leader for a random time in
    /// `[election_timeout_ms_min, election_timeout_ms_max)` starts an election.
    pub election_timeout_ms_min: u64,
    pub election_timeout_ms_max: u64,
    /// How often a leader sends heartbeats to each follower.
    pub heartbeat_interval_ms: u64,
    /// Appends a leader may have in flight to one follower before it waits for acknowledgements.
    pub inflight_appends_max: usize,
    /// Entries and bytes one append message may carry.
    pub append_entries_max: usize,
    pub append_bytes_max: usize,
    /// Bytes of proposals a leader accepts beyond its commit index before it refuses more, so a
    /// leader without a quorum cannot grow its log without bound.
    pub uncommitted_bytes_max: usize,
    /// The largest single proposal accepted.
    pub entry_size_bytes_max: usize,
    /// Ask for votes without raising the term first, so that a node returning from a partition
    /// cannot depose a healthy leader (Raft dissertation §9.6).
    pub pre_vote: bool,
    /// A leader that has not heard from a quorum within an election timeout steps down, and
    /// followers that hear from a live leader ignore vote requests (leader stickiness).
    pub check_quorum: bool,
    /// Let the leader serve [`crate::Raft::lease_read`]s without a heartbeat round while its
    /// lease holds. Needs `check_quorum`; makes a restarted node refuse votes for one minimum
    /// election timeout.
    pub lease_reads: bool,
    /// How much shorter than the minimum election timeout the lease is: the most the clocks
    /// of two nodes may disagree about that span. Leases are safe only within this bound.
    pub lease_clock_drift_ms: u64,
    /// A snapshot is asked for once this many entries, or this many bytes of entries, were
    /// applied since the latest one (see [`crate::Ready::snapshot_due`]).
    pub snapshot_entries_threshold: u64,
    pub snapshot_bytes_threshold: u64,
    /// Entries kept behind a new snapshot, so that a follower slightly behind still gets
    /// entries rather than the whole snapshot.
    pub snapshot_trailing_entries: u64,
    /// A snapshot travels to a follower in chunks of this many bytes, at most
    /// `snapshot_inflight_chunks` of them unacknowledged.
    pub snapshot_chunk_bytes: usize,
    pub snapshot_inflight_chunks: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            election_timeout_ms_min: 1000,
            election_timeout_ms_max: 2000,
            heartbeat_interval_ms: 100,
            inflight_appends_max: 64,
            append_entries_max: 1024,
            append_bytes_max: 1 << 20,
            uncommitted_bytes_max: 64 << 20,
            entry_size_bytes_max: 16 << 20,
            pre_vote: true,
            check_quorum: true,
            lease_reads: false,
            lease_clock_drift_ms: 100,
            snapshot_entries_threshold: 100_000,
            snapshot_bytes_threshold: 64 << 20,
            snapshot_trailing_entries: 1024,
            snapshot_chunk_bytes: 1 << 20,
            snapshot_inflight_chunks: 4,
        }
    }
}

/// A configuration that cannot work, with the reason.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("election_timeout_ms_min must be at least 1")]
    ElectionTimeoutZero,
    #[error("election_timeout_ms_max ({max}) must be greater than election_timeout_ms_min ({min}) so that timeouts are randomised")]
    ElectionTimeoutRangeEmpty { min: u64, max: u64 },
    #[error("heartbeat_interval_ms ({heartbeat}) must be at least 1 and below election_timeout_ms_min ({election_min}), or followers time out between heartbeats")]
    HeartbeatTooSlow { heartbeat: u64, election_min: u64 },
    #[error("{name} must be at least 1")]
    LimitZero { name: &'static str },
    #[error("entry_size_bytes_max ({entry}) must not exceed uncommitted_bytes_max ({uncommitted}), or such an entry could never be proposed")]
    EntryLargerThanUncommittedLimit { entry: usize, uncommitted: usize },
    #[error(
        "lease_clock_drift_ms ({drift}) must be below election_timeout_ms_min ({election_min}), or no lease is left"
    )]
    LeaseDriftTooLarge { drift: u64, election_min: u64 },
}

impl Config {
    /// Checks that the values make sense together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.election_timeout_ms_min == 0 {
            return Err(ConfigError::ElectionTimeoutZero);
        }
        if self.election_timeout_ms_max <= self.election_timeout_ms_min {
            return Err(ConfigError::ElectionTimeoutRangeEmpty {
                min: self.election_timeout_ms_min,
                max: self.election_timeout_ms_max,
            });
        }
        if self.heartbeat_interval_ms == 0 || self.heartbeat_interval_ms >= self.election_timeout_ms_min {
            return Err(ConfigError::HeartbeatTooSlow {
                heartbeat: self.heartbeat_interval_ms,
                election_min: self.election_timeout_ms_min,
            });
        }
        let limits = [
            ("inflight_appends_max", self.inflight_appends_max),
            ("append_entries_max", self.append_entries_max),
            ("append_bytes_max", self.append_bytes_max),
            ("uncommitted_bytes_max", self.uncommitted_bytes_max),
            ("entry_size_bytes_max", self.entry_size_bytes_max),
            ("snapshot_entries_threshold", self.snapshot_entries_threshold as usize),
            ("snapshot_bytes_threshold", self.snapshot_bytes_threshold as usize),
            ("snapshot_chunk_bytes", self.snapshot_chunk_bytes),
            ("snapshot_inflight_chunks", self.snapshot_inflight_chunks),
        ];
        if let Some((name, _)) = limits.iter().find(|(_, value)| *value == 0) {
            return Err(ConfigError::LimitZero { name });
        }
        if self.lease_clock_drift_ms >= self.election_timeout_ms_min {
            return Err(ConfigError::LeaseDriftTooLarge {
                drift: self.lease_clock_drift_ms,
                election_min: self.election_timeout_ms_min,
            });
        }
        if self.entry_size_bytes_max > self.uncommitted_bytes_max {
            return Err(ConfigError::EntryLargerThanUncommittedLimit {
                entry: self.entry_size_bytes_max,
                uncommitted: self.uncommitted_bytes_max,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        assert_eq!(Config::default().validate(), Ok(()));
    }

    #[test]
    fn rejects_nonsense_with_the_reason() {
        let base = Config::default();
        let empty_range = Config { election_timeout_ms_max: base.election_timeout_ms_min, ..base.clone() };
        assert!(matches!(empty_range.validate(), Err(ConfigError::ElectionTimeoutRangeEmpty { .. })));
        let slow_heartbeat = Config { heartbeat_interval_ms: base.election_timeout_ms_min, ..base.clone() };
        assert!(matches!(slow_heartbeat.validate(), Err(ConfigError::HeartbeatTooSlow { .. })));
        let no_window = Config { inflight_appends_max: 0, ..base.clone() };
        assert_eq!(no_window.validate(), Err(ConfigError::LimitZero { name: "inflight_appends_max" }));
        let zero_election = Config { election_timeout_ms_min: 0, ..base.clone() };
        assert_eq!(zero_election.validate(), Err(ConfigError::ElectionTimeoutZero));
        let equal_limits = Config { entry_size_bytes_max: base.uncommitted_bytes_max, ..base.clone() };
        assert_eq!(equal_limits.validate(), Ok(()), "an entry as large as the whole uncommitted budget is allowed");
        let huge_entry = Config { entry_size_bytes_max: base.uncommitted_bytes_max + 1, ..base };
        assert!(matches!(huge_entry.validate(), Err(ConfigError::EntryLargerThanUncommittedLimit { .. })));
    }
}
