//! Tests of the replicated state machine (`kvstore::state`), through its
//! public API only. Each submodule checks one idea:
//! - `model`: every reply and read agrees with a plain `BTreeMap` model;
//! - `commands`: Redis edge cases of SET, INCR, APPEND, CAS, and CAS between
//!   interleaved clients;
//! - `sessions`: a retried write applies once; stale and expired sessions;
//! - `scan`: SCAN neither repeats nor misses stable keys under writes;
//! - `replay`: determinism across replicas, and snapshots.

mod commands;
mod model;
mod replay;
mod scan;
mod sessions;
mod support;
