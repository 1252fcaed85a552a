//! Damage to a stopped node's WAL: a flipped bit before the tail is corruption, and the
//! node must refuse to start; a torn final record is what a crash mid-write leaves, and the
//! node must cut it off, rejoin and catch up.

use std::fs;
use std::path::Path;

use kvstore::resp::Frame;

use crate::client::{bulk, Client};
use crate::support::{Cluster, PATIENCE};
use crate::wal_file::record_spans;

/// Enough writes that the middle record of the log is far from both ends.
const WRITES: usize = 40;

#[test]
fn a_bit_flipped_mid_segment_stops_the_node_naming_the_file_and_offset() {
    let mut cluster = Cluster::start("bit-flip");
    let leader = cluster.wait_for_leader(PATIENCE);
    write_keys(&mut cluster.node(leader).client(), "key", WRITES);
    let victim = if leader == 1 { 2 } else { 1 };
    cluster.wait_until_caught_up(victim, PATIENCE);
    cluster.node_mut(victim).kill();

    let segment = cluster.node(victim).wal_segments().pop().expect("the node has a segment");
    let damaged_offset_bytes = flip_a_bit_in_the_middle_record(&segment);
    let (status, stderr) = cluster.node_mut(victim).run_expecting_exit(&[]);

    assert!(!status.success(), "the node started on a corrupt WAL: {status}");
    let file_name = segment.file_name().expect("a file name").to_string_lossy().into_owned();
    assert!(stderr.contains(&file_name), "stderr does not name {file_name}:\n{stderr}");
    let offset = format!("offset {damaged_offset_bytes}");
    assert!(stderr.contains(&offset), "stderr does not name {offset}:\n{stderr}");
}

/// Flips one bit in the payload of the middle record, where a later valid record shows it
/// is not a torn write; returns the offset of that record.
fn flip_a_bit_in_the_middle_record(segment: &Path) -> usize {
    let mut bytes = fs::read(segment).expect("can read the segment");
    let spans = record_spans(&bytes);
    assert!(spans.len() >= WRITES, "expected a record per write at least, found {} records", spans.len());
    let middle = &spans[spans.len() / 2];
    assert!(!middle.payload.is_empty(), "the middle record has a payload to damage");
    let target = middle.payload.start + middle.payload.len() / 2;
    bytes[target] ^= 0x10;
    fs::write(segment, &bytes).expect("can write the segment");
    middle.offset_bytes
}

#[test]
fn a_torn_final_record_is_cut_off_and_the_node_catches_up() {
    let mut cluster = Cluster::start("torn-tail");
    let leader = cluster.wait_for_leader(PATIENCE);
    let mut leader_client = cluster.node(leader).client();
    write_keys(&mut leader_client, "before", WRITES);
    let victim = if leader == 1 { 2 } else { 1 };
    cluster.wait_until_caught_up(victim, PATIENCE);
    cluster.node_mut(victim).kill();

    let segment = cluster.node(victim).wal_segments().pop().expect("the node has a segment");
    tear_the_last_record(&segment);
    // Writes the victim misses while it is down, so that catching up means replication.
    write_keys(&mut leader_client, "during", WRITES);
    cluster.node_mut(victim).start();
    assert!(cluster.node_mut(victim).wait_until_serving(PATIENCE), "the node did not start after a torn write");
    let log = cluster.node(victim).stderr_text();
    assert!(log.contains("truncated a torn write"), "the node did not report the torn tail:\n{log}");

    cluster.wait_until_caught_up(victim, PATIENCE);
    let mut victim_client = cluster.node(victim).client();
    assert_eq!(victim_client.command(&["READMODE", "stale"]), Frame::ok());
    for (prefix, number) in [("before", WRITES - 1), ("during", 0), ("during", WRITES - 1)] {
        let key = format!("{prefix}-{number}");
        assert_eq!(victim_client.command(&["GET", &key]), bulk(&value_of(&key)), "stale GET {key} on the victim");
    }
}

/// Leaves a torn record at the end of the segment, as a crash in the middle of writing the
/// next batch would: a copy of the last record, three bytes short. (Cutting bytes off the last
/// *existing* record would destroy a batch that was synced and acknowledged, a disk that lies,
/// from which no Raft node can be expected to recover: the leader rightly ignores a follower's
/// claim not to hold an entry it acknowledged.)
fn tear_the_last_record(segment: &Path) {
    let mut bytes = fs::read(segment).expect("can read the segment");
    let last = record_spans(&bytes).pop().expect("the segment has records");
    assert_eq!(last.payload.end, bytes.len(), "the segment ends with a whole record");
    let torn_end = last.payload.end - 3.min(last.payload.len());
    let torn: Vec<u8> = bytes[last.offset_bytes..torn_end].to_vec();
    bytes.extend_from_slice(&torn);
    fs::write(segment, &bytes).expect("can write the segment");
}

fn write_keys(client: &mut Client, prefix: &str, count: usize) {
    for number in 0..count {
        let key = format!("{prefix}-{number}");
        assert_eq!(client.command_retrying(&["SET", &key, &value_of(&key)], PATIENCE), Frame::ok(), "SET {key}");
    }
}

fn value_of(key: &str) -> String {
    format!("value of {key}")
}
