//! A peer may send anything: stale, duplicated, reordered, or plain nonsense. The engine answers
//! or ignores it, or refuses it with a [`engine::StepError`], but never panics, and its
//! invariants (checked after every step in test builds) keep holding.

use bytes::Bytes;
use engine::testkit::Cluster;
use engine::{AppendOutcome, Config, Entry, EntryKind, Message, MessageBody, StepError};
use proptest::prelude::*;

fn entry() -> impl Strategy<Value = Entry> {
    (0..6u64, 0..12u64, prop::bool::ANY).prop_map(|(term, index, noop)| Entry {
        term,
        index,
        kind: if noop { EntryKind::Noop } else { EntryKind::Normal(Bytes::from_static(b"x")) },
    })
}

fn body() -> impl Strategy<Value = MessageBody> {
    let index = 0..14u64;
    let term = 0..7u64;
    prop_oneof![
        (index.clone(), term.clone())
            .prop_map(|(last_log_index, last_log_term)| MessageBody::PreVoteRequest { last_log_index, last_log_term }),
        any::<bool>().prop_map(|granted| MessageBody::PreVoteResponse { granted }),
        (index.clone(), term.clone()).prop_map(|(last_log_index, last_log_term)| MessageBody::VoteRequest {
            last_log_index,
            last_log_term,
            leadership_transfer: false
        }),
        any::<bool>().prop_map(|granted| MessageBody::VoteResponse { granted }),
        (index.clone(), term.clone(), prop::collection::vec(entry(), 0..4), index.clone()).prop_map(
            |(prev_log_index, prev_log_term, entries, leader_commit)| MessageBody::AppendRequest {
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit
            }
        ),
        index.clone().prop_map(|match_index| MessageBody::AppendResponse(AppendOutcome::Accepted { match_index })),
        (index.clone(), index.clone(), term).prop_map(|(rejected_prev_log_index, hint_index, hint_term)| {
            MessageBody::AppendResponse(AppendOutcome::Rejected { rejected_prev_log_index, hint_index, hint_term })
        }),
        (index.clone(), any::<u64>())
            .prop_map(|(commit_index, round)| MessageBody::HeartbeatRequest { commit_index, round }),
        any::<u64>().prop_map(|round| MessageBody::HeartbeatResponse { round }),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    (0..5u64, 1..4u64, 0..7u64, body()).prop_map(|(from, to, term, body)| Message { from, to, term, body })
}

/// Steps a message straight into a node, bypassing the cluster (whose oracles assume correct
/// peers): this test is about the node's own robustness.
fn step_into(cluster: &mut Cluster, message: Message) -> Result<(), StepError> {
    cluster.step_raw(message)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn garbage_from_peers_never_panics(
        setup in 0..4u8,
        messages in prop::collection::vec(message(), 1..60),
    ) {
        let mut cluster = Cluster::new(&[1, 2, 3], Config::default(), u64::from(setup));
        // Bring the nodes into different roles before the garbage arrives.
        if setup >= 1 {
            cluster.campaign(1).expect("node 1 may campaign");
        }
        if setup >= 2 {
            cluster.stabilize();
        }
        if setup >= 3 {
            cluster.propose(1, Bytes::from_static(b"a")).expect("node 1 leads");
            cluster.process_ready(1, false);
        }
        for message in messages {
            let _ = step_into(&mut cluster, message);
            for id in cluster.ids() {
                cluster.node(id).expect("live").check_invariants();
            }
        }
    }
}

#[test]
fn nonsense_is_refused_with_a_reason() {
    let mut cluster = Cluster::new(&[1, 2, 3], Config::default(), 1);
    let wrong_recipient = Message { from: 2, to: 3, term: 1, body: MessageBody::HeartbeatResponse { round: 0 } };
    assert!(matches!(cluster.step_raw_into(1, wrong_recipient), Err(StepError::WrongRecipient { to: 3, me: 1 })));
    let from_self = Message { from: 1, to: 1, term: 1, body: MessageBody::HeartbeatResponse { round: 0 } };
    assert!(matches!(cluster.step_raw(from_self), Err(StepError::ImpossibleSender { from: 1 })));
    let gap = Message {
        from: 2,
        to: 1,
        term: 2,
        body: MessageBody::AppendRequest {
            prev_log_index: 1,
            prev_log_term: 1,
            entries: vec![Entry { term: 2, index: 5, kind: EntryKind::Noop }],
            leader_commit: 1,
        },
    };
    assert!(matches!(cluster.step_raw(gap), Err(StepError::Malformed { from: 2, .. })));
    let future_entry = Message {
        from: 2,
        to: 1,
        term: 2,
        body: MessageBody::AppendRequest {
            prev_log_index: 1,
            prev_log_term: 1,
            entries: vec![Entry { term: 3, index: 2, kind: EntryKind::Noop }],
            leader_commit: 1,
        },
    };
    assert!(matches!(cluster.step_raw(future_entry), Err(StepError::Malformed { from: 2, .. })));
    assert_eq!(cluster.node(1).expect("live").term(), 1, "refused messages change nothing");
}
