//! What the clients send: keys drawn uniformly from the key space, a GET with probability
//! `read_ratio` and otherwise a SET of a fixed value. Each client draws from its own ChaCha
//! stream of the run's seed, so a run's requests can be repeated exactly.

use bytes::{Bytes, BytesMut};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::config::BenchConfig;
use crate::resp::Frame;

/// The two operations of the mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Operation {
    Get,
    Set,
}

/// One client's sequence of requests.
pub(super) struct Workload {
    rng: ChaCha8Rng,
    keys: u64,
    read_ratio: f64,
    value: Bytes,
}

impl Workload {
    /// The workload of client `client_index`. `value` is what every SET writes; clients
    /// share one buffer of it.
    pub fn new(config: &BenchConfig, client_index: usize, value: Bytes) -> Workload {
        assert!(config.keys > 0, "a validated configuration has keys");
        assert!((0.0..=1.0).contains(&config.read_ratio), "a validated configuration has a ratio");
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        // One stream per client: independent sequences from one seed, none a shifted copy of another.
        rng.set_stream(client_index as u64);
        Workload { rng, keys: config.keys, read_ratio: config.read_ratio, value }
    }

    /// Draws the next operation and appends its request to `out`.
    pub fn next_request(&mut self, out: &mut BytesMut) -> Operation {
        let key = key_name(self.rng.gen_range(0..self.keys));
        if self.rng.gen_bool(self.read_ratio) {
            get_request(key).encode(out);
            Operation::Get
        } else {
            set_request(key, self.value.clone()).encode(out);
            Operation::Set
        }
    }
}

/// The name of key number `index`, in the style of redis-benchmark's `key:__rand_int__`.
pub(super) fn key_name(index: u64) -> Bytes {
    Bytes::from(format!("key:{index:012}"))
}

/// The value every SET writes. Its content does not matter to Tally or Redis, which neither
/// compress nor deduplicate values.
pub(super) fn value_of_size(size_bytes: usize) -> Bytes {
    Bytes::from(vec![b'x'; size_bytes])
}

pub(super) fn get_request(key: Bytes) -> Frame {
    Frame::array(vec![Frame::bulk("GET"), Frame::bulk(key)])
}

pub(super) fn set_request(key: Bytes, value: Bytes) -> Frame {
    Frame::array(vec![Frame::bulk("SET"), Frame::bulk(key), Frame::bulk(value)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(flags: &[&str]) -> BenchConfig {
        crate::bench::config::parse_flags(flags).validate().unwrap()
    }

    /// The requests of `count` draws, and the operations drawn.
    fn draw(workload: &mut Workload, count: usize) -> (BytesMut, Vec<Operation>) {
        let mut out = BytesMut::new();
        let operations = (0..count).map(|_| workload.next_request(&mut out)).collect();
        (out, operations)
    }

    #[test]
    fn the_same_seed_and_client_give_the_same_requests() {
        let config = config(&["--seed", "7"]);
        let value = value_of_size(8);
        let first = draw(&mut Workload::new(&config, 3, value.clone()), 100);
        let second = draw(&mut Workload::new(&config, 3, value.clone()), 100);
        assert_eq!(first, second);
        let other_client = draw(&mut Workload::new(&config, 4, value.clone()), 100);
        assert_ne!(first.0, other_client.0, "clients draw different sequences");
        let other_seed = draw(&mut Workload::new(&self::config(&["--seed", "8"]), 3, value), 100);
        assert_ne!(first.0, other_seed.0, "seeds give different sequences");
    }

    #[test]
    fn read_ratio_sets_the_mix() {
        let value = value_of_size(8);
        let (_, reads_only) = draw(&mut Workload::new(&config(&["--read-ratio", "1"]), 0, value.clone()), 500);
        assert!(reads_only.iter().all(|operation| *operation == Operation::Get));
        let (_, writes_only) = draw(&mut Workload::new(&config(&["--read-ratio", "0"]), 0, value.clone()), 500);
        assert!(writes_only.iter().all(|operation| *operation == Operation::Set));
        let (_, mixed) = draw(&mut Workload::new(&config(&["--read-ratio", "0.3"]), 0, value), 10_000);
        let reads = mixed.iter().filter(|operation| **operation == Operation::Get).count();
        assert!((2_700..=3_300).contains(&reads), "{reads} reads of 10000 at ratio 0.3");
    }

    #[test]
    fn requests_are_resp_commands_on_keys_of_the_key_space() {
        let config = config(&["--keys", "3", "--read-ratio", "0.5"]);
        let mut workload = Workload::new(&config, 0, value_of_size(5));
        let (mut out, operations) = draw(&mut workload, 200);
        let mut parser = crate::resp::Parser::for_requests(crate::resp::ParseLimits::default());
        for operation in operations {
            let frame = parser.parse(&mut out).unwrap().expect("a whole request");
            let command = crate::resp::RawCommand::from_frame(frame).unwrap().unwrap();
            let key = &command.arguments[0];
            assert!([key_name(0), key_name(1), key_name(2)].contains(key), "{key:?}");
            match operation {
                Operation::Get => assert_eq!((&command.name[..], command.arguments.len()), (&b"GET"[..], 1)),
                Operation::Set => assert_eq!(command.arguments[1], value_of_size(5)),
            }
        }
        assert!(out.is_empty());
    }
}
