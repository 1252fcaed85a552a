//! Simulated clients: each connects to a random node over (simulated) TCP, speaks RESP, and
//! records every operation with its invocation and completion time and its outcome.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use kvstore::node::ReadMode;
use kvstore::resp::Frame;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;

use crate::history::{Call, Operation, Outcome, Return};
use crate::world::resp_client::RespClient;

/// What the clients do.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Keys `k0..kN` take SET, DEL, CAS, APPEND, GET and RANGE.
    pub keys: u64,
    /// Keys `n0..nN` take only INCR and GET, so INCR always meets an integer.
    pub counters: u64,
    /// A client waits this long for a reply before it calls the outcome unknown.
    pub reply_timeout_ms: u64,
    /// Each client pauses up to this long between operations.
    pub think_time_ms_max: u64,
    /// The read mode of each client's connections (client `i` uses entry `i` modulo the
    /// length); empty: the server's default, linearizable. `linearizable`, `lease` (within
    /// its clock-drift bound) and `follower` must all pass the checker; `stale` must not.
    pub read_modes: Vec<ReadMode>,
    /// Clients `0..read_only_clients` only read (GET and RANGE): a reader is then never stuck
    /// behind a write that cannot commit, so it keeps reading from a node cut off from the rest.
    pub read_only_clients: u64,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            keys: 5,
            counters: 2,
            reply_timeout_ms: 4000,
            think_time_ms_max: 30,
            read_modes: Vec::new(),
            read_only_clients: 0,
        }
    }
}

impl Workload {
    fn read_mode_of(&self, client: u64) -> Option<ReadMode> {
        (!self.read_modes.is_empty()).then(|| self.read_modes[(client % self.read_modes.len() as u64) as usize])
    }
}

/// The history shared by every client, and the clock they timestamp with.
#[derive(Clone, Debug)]
pub struct Recorder {
    origin: Instant,
    operations: Arc<Mutex<Vec<Operation>>>,
}

impl Recorder {
    pub fn new(origin: Instant) -> Recorder {
        Recorder { origin, operations: Arc::new(Mutex::new(Vec::new())) }
    }

    pub fn now_ns(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    /// Records an operation of the harness itself (the final reads).
    pub fn record_final(&self, operation: Operation) {
        self.record(operation);
    }

    fn record(&self, mut operation: Operation) {
        let mut operations = self.operations.lock().expect("history lock");
        operation.id = operations.len() as u64;
        operations.push(operation);
    }

    /// Every operation so far, in the order they were recorded.
    pub fn operations(&self) -> Vec<Operation> {
        self.operations.lock().expect("history lock").clone()
    }
}

/// One client's loop, until `stop_ns` on the recorder's clock.
pub async fn run_client(
    client: u64,
    addresses: Vec<SocketAddr>,
    workload: Workload,
    seed: u64,
    stop_ns: u64,
    recorder: Recorder,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut connection: Option<RespClient> = None;
    let mut written = 0u64;
    let timeout = Duration::from_millis(workload.reply_timeout_ms);
    while recorder.now_ns() < stop_ns {
        let think_ms = rng.next_u64() % (workload.think_time_ms_max + 1);
        tokio::time::sleep(Duration::from_millis(think_ms)).await;
        if connection.is_none() {
            let address = addresses[(rng.next_u64() % addresses.len() as u64) as usize];
            connection = connect(address, workload.read_mode_of(client)).await;
            if connection.is_none() {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        }
        written += 1;
        let call = random_call(&mut rng, &workload, client, written);
        let invoked_ns = recorder.now_ns();
        let reply = connection.as_mut().expect("connected").call(&arguments(&call), timeout).await;
        let (completed_ns, outcome) = match reply {
            Ok(frame) => (Some(recorder.now_ns()), classify(&call, frame)),
            Err(_) => {
                // The connection may be broken or stalled: start afresh on another node.
                connection = None;
                (None, Outcome::Unknown)
            }
        };
        recorder.record(Operation { id: 0, client, invoked_ns, completed_ns, call, outcome });
    }
}

async fn connect(address: SocketAddr, read_mode: Option<ReadMode>) -> Option<RespClient> {
    let mut client = RespClient::connect(address, Duration::from_secs(1)).await.ok()?;
    if let Some(mode) = read_mode {
        let arguments = [Bytes::from_static(b"READMODE"), Bytes::from_static(mode.name().as_bytes())];
        match client.call(&arguments, Duration::from_secs(1)).await.ok()? {
            Frame::Simple(_) => {}
            other => panic!("the server refused READMODE {}: {other:?}", mode.name()),
        }
    }
    Some(client)
}

fn key(prefix: &str, number: u64) -> Bytes {
    Bytes::from(format!("{prefix}{number}"))
}

/// Values are unique per client and write, so the checker can tell every write apart.
fn random_call(rng: &mut ChaCha8Rng, workload: &Workload, client: u64, sequence: u64) -> Call {
    let plain_key = key("k", rng.next_u64() % workload.keys);
    let value = Bytes::from(format!("c{client}w{sequence}"));
    let roll = rng.next_u64() % 100;
    if client < workload.read_only_clients {
        return match roll % 42 {
            0..=29 => Call::Get(plain_key),
            30..=36 => Call::Get(key("n", rng.next_u64() % workload.counters)),
            _ => Call::Range { start: key("k", 0), end: key("k", workload.keys) },
        };
    }
    match roll {
        0..=29 => Call::Get(plain_key),
        30..=49 => Call::Set(plain_key, value),
        50..=57 => Call::Del(plain_key),
        58..=67 => {
            let expected = Bytes::from(format!("c{}w{}", rng.next_u64() % 4, 1 + rng.next_u64() % sequence.max(1)));
            Call::Cas { key: plain_key, expected, new: value }
        }
        68..=77 => Call::Append(plain_key, value),
        78..=87 => Call::Incr(key("n", rng.next_u64() % workload.counters)),
        88..=94 => Call::Get(key("n", rng.next_u64() % workload.counters)),
        _ => Call::Range { start: key("k", 0), end: key("k", workload.keys) },
    }
}

fn arguments(call: &Call) -> Vec<Bytes> {
    let words = |items: &[&[u8]]| items.iter().map(|item| Bytes::copy_from_slice(item)).collect();
    match call {
        Call::Get(key) => words(&[b"GET", key]),
        Call::Set(key, value) => words(&[b"SET", key, value]),
        Call::Del(key) => words(&[b"DEL", key]),
        Call::Cas { key, expected, new } => words(&[b"CAS", key, expected, new]),
        Call::Append(key, value) => words(&[b"APPEND", key, value]),
        Call::Incr(key) => words(&[b"INCR", key]),
        Call::Range { start, end } => words(&[b"RANGE", start, end, b"WITHKEYS"]),
    }
}

/// Turns a reply into an outcome. `-TRYAGAIN` is the server's promise that nothing was
/// applied; `-UNKNOWN` and any reply we cannot read leave the outcome open.
pub fn classify(call: &Call, frame: Frame) -> Outcome {
    match frame {
        Frame::Error(message) if message.starts_with(b"TRYAGAIN") => Outcome::Failed,
        Frame::Error(message)
            if matches!(call, Call::Incr(_)) && message.starts_with(b"ERR value is not an integer") =>
        {
            Outcome::Ok(Return::Error)
        }
        Frame::Error(_) => Outcome::Unknown,
        Frame::Simple(_) => Outcome::Ok(Return::Done),
        Frame::Integer(value) => Outcome::Ok(Return::Integer(value)),
        Frame::Bulk(value) => Outcome::Ok(Return::Value(Some(value))),
        Frame::NullBulk => Outcome::Ok(Return::Value(None)),
        Frame::Array(items) if matches!(call, Call::Range { .. }) => match pairs(items) {
            Some(pairs) => Outcome::Ok(Return::Pairs(pairs)),
            None => Outcome::Unknown,
        },
        _ => Outcome::Unknown,
    }
}

fn pairs(items: Vec<Frame>) -> Option<Vec<(Bytes, Bytes)>> {
    let mut bulks = items.into_iter().map(|item| match item {
        Frame::Bulk(bytes) => Some(bytes),
        _ => None,
    });
    let mut pairs = Vec::new();
    while let Some(key) = bulks.next() {
        pairs.push((key?, bulks.next()??));
    }
    Some(pairs)
}
