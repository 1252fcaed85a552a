//! Writes the seed corpora under `fuzz/corpus/<target>/`: a few valid inputs per target,
//! made by the real code where there is real code to make them (WAL segments, the peer
//! handshake and frames), in each target's input format (see the target's doc comment).
//!
//! Run from the repository root: `cargo run --manifest-path fuzz/Cargo.toml --example seeds`.

use std::fs;
use std::path::Path;

use bytes::Bytes;
use engine::{Entry, EntryKind, Membership, Message, MessageBody};
use kvstore::node::{ForwardedOutcome, ForwardedRequest, PeerMessage};
use kvstore::raft_store::{write_identity, Identity, RaftStore};
use kvstore::state::{Command, Reply, Request, SessionId};
use kvstore::storage::segment::{parse_segment_name, WAL_DIRECTORY};
use kvstore::storage::{Disk, MemDisk, Wal, WalConfig};
use kvstore::transport::frame::{encode_message, BatchEncoder};
use kvstore::transport::handshake::{encode_hello, Hello};

fn main() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let targets: [(&str, Seeds); 5] = [
        ("resp", resp_seeds()),
        ("wal_recover", wal_recover_seeds()),
        ("peer_frame", peer_frame_seeds()),
        ("engine_steps", engine_steps_seeds()),
        ("commands", commands_seeds()),
    ];
    for (target, seeds) in targets {
        let directory = corpus.join(target);
        fs::create_dir_all(&directory).expect("create the corpus directory");
        for (name, bytes) in seeds {
            fs::write(directory.join(format!("seed-{name}")), bytes).expect("write a seed");
        }
    }
}

/// Named inputs of one target.
type Seeds = Vec<(&'static str, Vec<u8>)>;

fn resp_seeds() -> Seeds {
    let with_flags = |flags: u8, stream: &[u8]| [&[flags][..], stream].concat();
    vec![
        ("set", with_flags(0, b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$5\r\nhello\r\n")),
        (
            "pipeline",
            with_flags(
                0,
                b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nDEL\r\n$1\r\na\r\n$0\r\n\r\n",
            ),
        ),
        ("inline", with_flags(0, b"SET key  value\r\nPING\n")),
        // Three chunk sizes (1, 2 and 5 bytes), cycled.
        (
            "chunked",
            with_flags(
                3 << 1,
                &[0, 1, 4, b'*', b'1', b'\r', b'\n', b'$', b'4', b'\r', b'\n', b'P', b'I', b'N', b'G', b'\r', b'\n'],
            ),
        ),
        (
            "replies",
            with_flags(1, b"+OK\r\n-ERR no\r\n:-42\r\n$-1\r\n*-1\r\n$3\r\nfoo\r\n*2\r\n*1\r\n:1\r\n$0\r\n\r\n"),
        ),
    ]
}

fn normal(index: u64, term: u64, command: &'static [u8]) -> Entry {
    Entry { term, index, kind: EntryKind::Normal(Bytes::from_static(command)) }
}

/// A segment in the raw format of the `wal_recover` target.
fn raw_segment(first_sequence: u64, content: &[u8]) -> Vec<u8> {
    let length = u16::try_from(content.len()).expect("a seed segment is small");
    [&[0u8][..], &first_sequence.to_le_bytes(), &length.to_le_bytes(), content].concat()
}

/// Every segment on `disk`, in the raw format, after the even mode byte.
fn raw_segments(disk: &MemDisk) -> Vec<u8> {
    let mut input = vec![0];
    for name in disk.list(WAL_DIRECTORY).expect("a log was written") {
        let first_sequence = parse_segment_name(&name).expect("only segments");
        input.extend(raw_segment(first_sequence, &disk.read(&format!("{WAL_DIRECTORY}/{name}")).expect("listed")));
    }
    input
}

fn wal_recover_seeds() -> Seeds {
    let disk = MemDisk::new();
    let config = WalConfig { segment_size_bytes_max: 64, ..WalConfig::default() };
    let (mut wal, _) = Wal::open(disk.clone(), config).expect("a fresh log opens");
    for payload in [&b"first"[..], b"second record", b"", b"fourth"] {
        wal.append(1, payload).expect("append");
    }
    wal.sync().expect("sync");
    drop(wal);

    let store_disk = MemDisk::new();
    let mut identity_disk = store_disk.clone();
    let identity = Identity { cluster_id: "fuzz".to_string(), node_id: 1 };
    write_identity(&mut identity_disk, &identity).expect("identity");
    let membership = Membership::new([1, 2, 3]);
    let (mut store, recovered) =
        RaftStore::open(store_disk.clone(), identity, membership, WalConfig::default()).expect("a fresh store");
    let mut hard_state = recovered.state.hard_state;
    hard_state.term = 2;
    let entries = [normal(2, 2, b"command"), Entry { term: 2, index: 3, kind: EntryKind::Noop }];
    store.persist(Some(hard_state), &entries).expect("persist");
    drop(store);

    // Written mode: a segment-size byte; appends (tag 0: type, length, payload) and syncs
    // (tag 1); a crash keeping 5 bytes and 3 zeros (tag 2); then flip a bit (tag 0: file,
    // position u16, bit) and truncate (tag 1: file, position u16).
    let written = [
        &[1, 40][..],
        &[0, 1, 3, b'o', b'n', b'e', 0, 2, 3, b't', b'w', b'o', 1],
        &[0, 1, 5, b't', b'h', b'r', b'e', b'e', 1, 0, 1, 4, b'f', b'o', b'u', b'r'],
        &[2, 5, 3],
        &[0, 0, 30, 0, 3, 1, 1, 50, 0],
    ]
    .concat();
    vec![("segments", raw_segments(&disk)), ("raft-store", raw_segments(&store_disk)), ("written", written)]
}

fn peer_frame_seeds() -> Seeds {
    let mut stream = Vec::new();
    let hello =
        Hello { cluster_id: "tally".to_string(), node_id: 2, client_address: Some("127.0.0.1:7002".to_string()) };
    encode_hello(&mut stream, &hello);
    let append = Message {
        from: 2,
        to: 1,
        term: 3,
        body: MessageBody::AppendRequest {
            prev_log_index: 1,
            prev_log_term: 1,
            entries: vec![normal(2, 3, b"payload")],
            leader_commit: 1,
        },
    };
    let put = Command::Put { key: Bytes::from_static(b"k"), value: Bytes::from_static(b"v") };
    let messages = [
        PeerMessage::Raft(append),
        PeerMessage::Raft(Message {
            from: 2,
            to: 1,
            term: 3,
            body: MessageBody::HeartbeatRequest { commit_index: 2, round: 1 },
        }),
        PeerMessage::Forward {
            id: 7,
            request: ForwardedRequest::Write(Request { session: Some(SessionId(4)), sequence: 1, command: put }),
        },
        PeerMessage::ForwardReply { id: 7, outcome: ForwardedOutcome::Write(Ok(Reply::Integer(1))) },
        PeerMessage::ReadIndexRequest { id: 8 },
        PeerMessage::ReadIndexReply { id: 8, index: Some(5) },
    ];
    let mut batch = BatchEncoder::new(1024);
    for message in &messages[..2] {
        batch.push(&encode_message(message).expect("encodes"));
    }
    batch.finish_into(&mut stream);
    for message in &messages[2..] {
        batch.push(&encode_message(message).expect("encodes"));
        batch.finish_into(&mut stream);
    }
    vec![("hello-frames", [&[0u8][..], &stream].concat()), ("hello-frames-sealed", [&[1u8][..], &stream].concat())]
}

/// The bytes `arbitrary` reads as variant `variant` of an enum of `count` variants.
fn variant_tag(variant: u64, count: u64) -> [u8; 4] {
    let tag = (variant << 32).div_ceil(count);
    u32::try_from(tag).expect("below 2^32").to_le_bytes()
}

/// The same, as an element of a `Vec`, which a 1 byte before each element continues.
fn element_tag(variant: u64, count: u64) -> Vec<u8> {
    [[1].as_slice(), &variant_tag(variant, count)].concat()
}

fn engine_steps_seeds() -> Seeds {
    // Variant numbers of the target's `Action`, which has 14.
    let action = |variant: u64, fields: &[u8]| [&element_tag(variant, 14)[..], fields].concat();
    let (tick, propose, round, partition, heal, crash, restart) = (0, 2, 7, 10, 11, 12, 13);
    let elect: Vec<u8> = (0..4).flat_map(|_| [action(tick, &[100]), action(round, &[])].concat()).collect();
    let replicate: Vec<u8> = (0..3).flat_map(|node| [action(propose, &[node]), action(round, &[])].concat()).collect();
    let settle: Vec<u8> = (0..6).flat_map(|_| [action(tick, &[40]), action(round, &[])].concat()).collect();
    let schedule = |pre_vote: u8, check_quorum: u8, middle: Vec<u8>| {
        [vec![pre_vote, check_quorum], 7u64.to_le_bytes().to_vec(), elect.clone(), replicate.clone(), middle].concat()
    };
    let partitioned =
        [action(partition, &[0b0010]), settle.clone(), replicate.clone(), action(heal, &[]), settle.clone()];
    let crashed = [action(crash, &[0]), settle.clone(), action(restart, &[0]), settle.clone()];
    vec![
        ("replicate", schedule(1, 1, settle.clone())),
        ("partition", schedule(1, 1, partitioned.concat())),
        ("crash-restart", schedule(0, 0, crashed.concat())),
    ]
}

fn commands_seeds() -> Seeds {
    // Variant numbers of the target's `Step` (14) and `FuzzCommand` (8). A `Vec<u8>` is a
    // 1 before each byte and a 0 after the last; an `Option` a 1 before its value.
    let step = |variant: u64, fields: &[u8]| [&element_tag(variant, 14)[..], fields].concat();
    let command = |variant: u64, fields: &[u8]| [&variant_tag(variant, 8)[..], fields].concat();
    let (write, register, get, scan, snapshot) = (0, 1, 4, 10, 12);
    let (put, incr_by, append) = (0, 4, 5);
    let put_x = command(put, &[1, 1, b'x', 0]);
    let incr = command(incr_by, &[3, 41, 0, 0, 0, 0, 0, 0, 0]);
    let append_y = command(append, &[1, 1, b'y', 0]);
    let plain = |command: &[u8]| step(write, &[[0, 0].as_slice(), command].concat());
    let in_session = |sequence: u8, command: &[u8]| step(write, &[[1, 0, sequence].as_slice(), command].concat());
    let session_writes = [
        step(register, &[]),
        in_session(1, &put_x),
        in_session(1, &append_y),
        in_session(2, &incr),
        step(get, &[1]),
        step(snapshot, &[]),
    ];
    let keyspace = [plain(&put_x), plain(&incr), plain(&append_y), step(scan, &[1, 0]), step(get, &[3])];
    vec![("sessions", session_writes.concat()), ("keyspace", keyspace.concat())]
}
