//! Committed proposals per second through a 3-node in-memory cluster: the engine's own cost
//! (bookkeeping, batching, message building), with persistence and delivery instantaneous.
//! Run with `cargo bench -p engine`.

use std::collections::VecDeque;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use engine::{Config, Membership, Message, PersistedState, Raft, Role};

/// Three engines and a FIFO network; disks and state machines are no-ops.
struct Bench {
    nodes: Vec<Raft>,
    network: VecDeque<Message>,
}

impl Bench {
    fn new() -> Self {
        let membership = Membership::new([1, 2, 3]);
        let nodes = (1..=3)
            .map(|id| Raft::new(id, Config::default(), PersistedState::bootstrap(membership.clone()), id, 0).unwrap())
            .collect();
        let mut bench = Bench { nodes, network: VecDeque::new() };
        bench.nodes[0].campaign().unwrap();
        bench.run_until_quiet();
        assert_eq!(bench.nodes[0].role(), Role::Leader);
        bench
    }

    /// Takes every node's Ready, persists and applies at once, delivers, until nothing moves.
    fn run_until_quiet(&mut self) {
        loop {
            let mut busy = false;
            for node in &mut self.nodes {
                let mut ready = node.ready();
                busy |= !ready.is_empty();
                self.network.extend(std::mem::take(&mut ready.messages_now));
                if let Some((index, term)) = ready.persisted_position() {
                    node.on_persisted(index, term);
                }
                self.network.extend(ready.messages_after_persist);
                if let Some(last) = ready.entries_to_apply.last() {
                    node.on_applied(last.index).unwrap();
                }
            }
            while let Some(message) = self.network.pop_front() {
                busy = true;
                let to = (message.to - 1) as usize;
                self.nodes[to].step(message).unwrap();
            }
            if !busy {
                return;
            }
        }
    }

    /// Proposes a batch on the leader and runs until it is applied there.
    fn commit_batch(&mut self, command: &Bytes, batch: usize) {
        let mut last = 0;
        for _ in 0..batch {
            last = self.nodes[0].propose(command.clone()).unwrap();
        }
        self.run_until_quiet();
        assert!(self.nodes[0].log().applied_index() >= last);
    }
}

fn committed_proposals(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("committed_proposals");
    for size_bytes in [16usize, 4096] {
        for batch in [1usize, 64] {
            group.throughput(Throughput::Elements(batch as u64));
            let id = BenchmarkId::new(format!("{size_bytes}B"), format!("batch{batch}"));
            let command = Bytes::from(vec![7u8; size_bytes]);
            group.bench_with_input(id, &batch, |bencher, &batch| {
                // The in-memory log grows with every iteration; start a fresh cluster now and
                // then so that memory stays bounded over a long measurement.
                let mut cluster = Bench::new();
                let mut rounds = 0;
                bencher.iter(|| {
                    rounds += 1;
                    if rounds % 2000 == 0 {
                        cluster = Bench::new();
                    }
                    cluster.commit_batch(&command, batch);
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, committed_proposals);
criterion_main!(benches);
