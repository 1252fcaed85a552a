//! The message-fault hook: how a simulation injects Raft-level loss, duplication and
//! reordering.
//!
//! Simulated TCP (like real TCP) never loses, duplicates or reorders bytes, so message
//! faults are decided here, once per outbound message, by a hook the simulator supplies.
//! The transport itself holds no randomness: a hook brings its own seeded RNG, and the
//! transport asks it in a fixed order (per peer, in the order messages leave that peer's
//! queue), so a seed replays the same faults. Production transports have no hook.

/// What to do with one outbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultDecision {
    /// Send it normally.
    Deliver,
    /// Lose it (counted in [`PeerStatus::messages_dropped_by_fault`](super::PeerStatus)).
    Drop,
    /// Send it twice, back to back.
    Duplicate,
    /// Hold it back for a while; messages queued after it may overtake it, which is how
    /// reordering is injected.
    Delay {
        /// How long to hold it, in the runtime's (possibly virtual) milliseconds.
        delay_ms: u64,
    },
}

/// Decides the fate of each outbound message. Any `FnMut(u64, &M) -> FaultDecision + Send`
/// closure is one.
pub trait MessageFaults<M>: Send {
    /// Called once per message leaving the queue for peer `to`.
    fn decide(&mut self, to: u64, message: &M) -> FaultDecision;
}

impl<M, F> MessageFaults<M> for F
where
    F: FnMut(u64, &M) -> FaultDecision + Send,
{
    fn decide(&mut self, to: u64, message: &M) -> FaultDecision {
        self(to, message)
    }
}
