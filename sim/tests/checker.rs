//! The linearizability checker on hand-made histories: what it must accept, what it must
//! flag (and on which key), and how it reports.

use bytes::Bytes;
use sim::checker::generator::{generate, Workload};
use sim::checker::{check, render_html, CheckConfig, Report, Verdict};
use sim::history::{Call, Operation, Outcome, Return};

/// Builds a history one operation at a time; ids follow the order of the calls.
#[derive(Default)]
struct History(Vec<Operation>);

impl History {
    fn push(
        &mut self,
        client: u64,
        invoked_ns: u64,
        completed_ns: Option<u64>,
        call: Call,
        outcome: Outcome,
    ) -> &mut Self {
        let id = self.0.len() as u64;
        self.0.push(Operation { id, client, invoked_ns, completed_ns, call, outcome });
        self
    }

    fn ok(&mut self, client: u64, window_ns: (u64, u64), call: Call, reply: Return) -> &mut Self {
        self.push(client, window_ns.0, Some(window_ns.1), call, Outcome::Ok(reply))
    }

    fn unknown(&mut self, client: u64, invoked_ns: u64, call: Call) -> &mut Self {
        self.push(client, invoked_ns, None, call, Outcome::Unknown)
    }

    fn failed(&mut self, client: u64, window_ns: (u64, u64), call: Call) -> &mut Self {
        self.push(client, window_ns.0, Some(window_ns.1), call, Outcome::Failed)
    }

    fn check(&self) -> Report {
        check(&self.0, &CheckConfig::default())
    }
}

fn bytes(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

fn get(key: &str) -> Call {
    Call::Get(bytes(key))
}

fn set(key: &str, value: &str) -> Call {
    Call::Set(bytes(key), bytes(value))
}

fn cas(key: &str, expected: &str, new: &str) -> Call {
    Call::Cas { key: bytes(key), expected: bytes(expected), new: bytes(new) }
}

fn range(start: &str, end: &str) -> Call {
    Call::Range { start: bytes(start), end: bytes(end) }
}

fn value(text: &str) -> Return {
    Return::Value(Some(bytes(text)))
}

fn nil() -> Return {
    Return::Value(None)
}

fn pairs(items: &[(&str, &str)]) -> Return {
    Return::Pairs(items.iter().map(|(key, value)| (bytes(key), bytes(value))).collect())
}

/// Asserts a violation on `key` and returns its text.
fn assert_violation(report: &Report, key: &str) -> String {
    match &report.verdict {
        Verdict::Violation(violation) => {
            assert_eq!(violation.key, bytes(key), "{report}");
            report.to_string()
        }
        other => panic!("expected a violation on {key}, got {other:?}"),
    }
}

fn assert_linearizable(report: &Report) {
    assert!(report.is_linearizable(), "{report}");
}

#[test]
fn accepts_concurrent_overlapping_writes_and_reads() {
    let mut history = History::default();
    history
        .ok(1, (0, 10), set("k", "a"), Return::Done)
        .ok(2, (5, 15), set("k", "b"), Return::Done)
        .ok(3, (6, 8), get("k"), value("b"))
        .ok(4, (9, 20), get("k"), value("a"))
        .ok(3, (21, 22), get("k"), value("a"))
        .ok(5, (0, 30), get("other"), nil());
    assert_linearizable(&history.check());
}

#[test]
fn accepts_operations_touching_the_same_instant_in_either_order() {
    let mut history = History::default();
    history.ok(1, (0, 10), set("k", "a"), Return::Done).ok(2, (10, 12), get("k"), nil());
    assert_linearizable(&history.check());
}

#[test]
fn flags_a_stale_read_after_a_completed_write() {
    let mut history = History::default();
    history
        .ok(1, (0, 1), set("k", "a"), Return::Done)
        .ok(2, (0, 1), set("unrelated", "x"), Return::Done)
        .ok(1, (2, 3), set("k", "b"), Return::Done)
        .ok(2, (4, 5), get("k"), value("a"));
    let text = assert_violation(&history.check(), "k");
    let violation = history.check().violation().cloned().expect("a violation");
    assert_eq!(violation.window.iter().map(|operation| operation.id).collect::<Vec<_>>(), [0, 2, 3], "{text}");
    assert!(violation.minimal);
    assert!(text.contains("the first to fail is #3 (client 2) GET \"k\""), "{text}");
    assert!(text.contains("leaves the key holding \"b\""), "{text}");
}

#[test]
fn flags_two_reads_seeing_two_writes_in_opposite_orders() {
    let mut history = History::default();
    history
        .ok(1, (0, 100), set("k", "a"), Return::Done)
        .ok(2, (0, 100), set("k", "b"), Return::Done)
        .ok(3, (10, 20), get("k"), value("a"))
        .ok(3, (30, 40), get("k"), value("b"))
        .ok(4, (10, 20), get("k"), value("b"))
        .ok(4, (30, 40), get("k"), value("a"));
    assert_violation(&history.check(), "k");
}

#[test]
fn flags_a_read_of_a_value_never_written() {
    let mut history = History::default();
    history.ok(1, (0, 1), set("k", "a"), Return::Done).ok(2, (2, 3), get("k"), value("phantom"));
    let text = assert_violation(&history.check(), "k");
    assert!(text.contains("phantom"), "{text}");
}

#[test]
fn flags_a_read_of_a_failed_write() {
    let mut history = History::default();
    history.failed(1, (0, 1), set("k", "lost")).ok(2, (0, 3), get("k"), value("lost"));
    assert_violation(&history.check(), "k");
}

#[test]
fn flags_a_cas_that_failed_although_its_value_was_there() {
    let mut history = History::default();
    history.ok(1, (0, 1), set("k", "a"), Return::Done).ok(2, (2, 3), cas("k", "a", "b"), Return::Integer(0));
    assert_violation(&history.check(), "k");
}

#[test]
fn flags_a_cas_that_succeeded_against_another_value() {
    let mut history = History::default();
    history.ok(1, (0, 1), set("k", "a"), Return::Done).ok(2, (2, 3), cas("k", "x", "b"), Return::Integer(1)).ok(
        2,
        (4, 5),
        get("k"),
        value("b"),
    );
    assert_violation(&history.check(), "k");
}

#[test]
fn accepts_cas_racing_a_write() {
    let mut history = History::default();
    history
        .ok(1, (0, 1), set("k", "a"), Return::Done)
        .ok(2, (2, 10), cas("k", "a", "b"), Return::Integer(0))
        .ok(3, (3, 5), set("k", "c"), Return::Done)
        .ok(1, (11, 12), get("k"), value("c"));
    assert_linearizable(&history.check());
}

#[test]
fn flags_an_acknowledged_write_lost_by_the_end() {
    let mut history = History::default();
    history.ok(1, (0, 1), set("k", "a"), Return::Done).ok(2, (5, 6), set("k", "acknowledged"), Return::Done).ok(
        3,
        (100, 101),
        get("k"),
        value("a"),
    );
    assert_violation(&history.check(), "k");
}

#[test]
fn accepts_an_unknown_write_that_must_have_happened() {
    let mut history = History::default();
    history
        .ok(1, (0, 1), set("k", "a"), Return::Done)
        .unknown(2, 2, set("k", "b"))
        .ok(3, (10, 11), get("k"), value("b"))
        .ok(3, (12, 13), get("k"), value("b"));
    assert_linearizable(&history.check());
}

#[test]
fn accepts_an_unknown_write_that_must_not_have_happened() {
    let mut history = History::default();
    history.ok(1, (0, 1), set("k", "a"), Return::Done).unknown(2, 2, set("k", "b")).ok(
        3,
        (10, 11),
        get("k"),
        value("a"),
    );
    assert_linearizable(&history.check());
}

#[test]
fn accepts_an_unknown_write_taking_effect_long_after_its_client_gave_up() {
    let mut history = History::default();
    history
        .ok(1, (0, 1), set("k", "a"), Return::Done)
        .push(2, 2, Some(3), set("k", "b"), Outcome::Unknown)
        .ok(3, (10, 11), get("k"), value("a"))
        .ok(3, (20, 21), get("k"), value("b"));
    assert_linearizable(&history.check());
}

#[test]
fn flags_an_unknown_write_seen_and_then_undone() {
    let mut history = History::default();
    history
        .ok(1, (0, 1), set("k", "a"), Return::Done)
        .unknown(2, 2, set("k", "b"))
        .ok(3, (10, 11), get("k"), value("b"))
        .ok(3, (12, 13), get("k"), value("a"));
    assert_violation(&history.check(), "k");
}

#[test]
fn flags_a_read_of_a_value_written_only_after_the_read_completed() {
    let mut history = History::default();
    history.ok(1, (0, 1), get("k"), value("later")).unknown(2, 2, set("k", "later"));
    assert_violation(&history.check(), "k");
}

#[test]
fn follows_appends_and_increments() {
    let mut history = History::default();
    history
        .ok(1, (0, 1), Call::Append(bytes("log"), bytes("ab")), Return::Integer(2))
        .unknown(2, 2, Call::Append(bytes("log"), bytes("cd")))
        .ok(1, (3, 4), Call::Append(bytes("log"), bytes("ef")), Return::Integer(6))
        .ok(1, (5, 6), get("log"), value("abcdef"))
        .ok(1, (0, 1), Call::Incr(bytes("n")), Return::Integer(1))
        .ok(2, (0, 1), Call::Incr(bytes("n")), Return::Integer(2))
        .ok(1, (2, 3), set("n", "text"), Return::Done)
        .ok(1, (4, 5), Call::Incr(bytes("n")), Return::Error)
        .ok(1, (6, 7), Call::Del(bytes("n")), Return::Integer(1))
        .ok(1, (8, 9), Call::Del(bytes("n")), Return::Integer(0));
    assert_linearizable(&history.check());
}

#[test]
fn flags_an_increment_error_on_an_integer() {
    let mut history = History::default();
    history.ok(1, (0, 1), Call::Incr(bytes("n")), Return::Integer(1)).ok(
        1,
        (2, 3),
        Call::Incr(bytes("n")),
        Return::Error,
    );
    assert_violation(&history.check(), "n");
}

#[test]
fn accepts_ranges_consistent_with_each_key() {
    let mut history = History::default();
    history
        .ok(1, (0, 1), set("a", "1"), Return::Done)
        .ok(2, (2, 10), set("b", "2"), Return::Done)
        .ok(3, (3, 4), range("a", "c"), pairs(&[("a", "1")]))
        .ok(3, (5, 12), range("a", "c"), pairs(&[("a", "1"), ("b", "2")]))
        .ok(3, (13, 14), range("b", "+"), pairs(&[("b", "2")]))
        .ok(4, (13, 14), range("c", "a"), pairs(&[]));
    assert_linearizable(&history.check());
}

#[test]
fn flags_a_phantom_value_in_a_range() {
    let mut history = History::default();
    history.ok(1, (0, 1), set("a", "1"), Return::Done).ok(
        2,
        (2, 3),
        range("a", "z"),
        pairs(&[("a", "1"), ("b", "ghost")]),
    );
    let text = assert_violation(&history.check(), "b");
    assert!(text.contains("phantom"), "{text}");
}

#[test]
fn flags_a_range_value_written_only_after_the_range_completed() {
    let mut history = History::default();
    history.ok(2, (2, 3), range("a", "z"), pairs(&[("b", "early")])).ok(1, (5, 6), set("b", "early"), Return::Done);
    let text = assert_violation(&history.check(), "b");
    assert!(text.contains("was invoked only at 5 ns"), "{text}");
}

#[test]
fn flags_a_range_that_misses_a_key_present_throughout() {
    let mut history = History::default();
    history.ok(1, (0, 1), set("b", "2"), Return::Done).ok(2, (2, 3), range("a", "z"), pairs(&[]));
    assert_violation(&history.check(), "b");
}

#[test]
fn flags_a_range_returning_an_old_value() {
    let mut history = History::default();
    history.ok(1, (0, 1), set("b", "old"), Return::Done).ok(1, (2, 3), set("b", "new"), Return::Done).ok(
        2,
        (4, 5),
        range("a", "z"),
        pairs(&[("b", "old")]),
    );
    assert_violation(&history.check(), "b");
}

#[test]
fn flags_a_range_returning_a_key_outside_it() {
    let mut history = History::default();
    history.ok(1, (0, 1), set("z", "1"), Return::Done).ok(2, (2, 3), range("a", "c"), pairs(&[("z", "1")]));
    assert_violation(&history.check(), "z");
}

#[test]
fn a_search_over_budget_is_inconclusive_not_a_pass() {
    let history = generate(&Workload { keys: 2, operations: 300, ..Workload::default() });
    let report = check(&history, &CheckConfig { search_steps_max_per_key: 10, ..CheckConfig::default() });
    match &report.verdict {
        Verdict::Inconclusive { keys } => assert_eq!(keys.len(), 2, "{report}"),
        other => panic!("expected inconclusive, got {other:?}"),
    }
    assert!(report.to_string().contains("inconclusive"));
}

#[test]
fn shrinks_a_stale_read_at_the_end_of_a_long_history_to_a_small_window() {
    let workload = Workload { keys: 1, clients: 4, operations: 2_000, unknown_per_mille: 10, ..Workload::default() };
    let mut history = generate(&workload);
    let end_ns = history.iter().filter_map(|operation| operation.completed_ns).max().unwrap_or(0) + 10;
    let first = history.len() as u64;
    let key = bytes("key0000");
    let mut push = |offset_ns: u64, call: Call, reply: Return| {
        let id = history.len() as u64;
        let (invoked_ns, completed_ns) = (end_ns + offset_ns, Some(end_ns + offset_ns + 1));
        history.push(Operation { id, client: 99, invoked_ns, completed_ns, call, outcome: Outcome::Ok(reply) });
    };
    push(0, Call::Set(key.clone(), bytes("seen")), Return::Done);
    push(2, Call::Set(key.clone(), bytes("newer")), Return::Done);
    push(4, Call::Get(key.clone()), value("seen"));
    let report = check(&history, &CheckConfig::default());
    let violation = report.violation().unwrap_or_else(|| panic!("{report}"));
    let ids: Vec<u64> = violation.window.iter().map(|operation| operation.id).collect();
    assert_eq!(ids, [first, first + 1, first + 2], "{report}");
    assert!(violation.minimal, "{report}");
}

#[test]
fn reports_render_as_text_and_html() {
    let mut history = History::default();
    history
        .ok(1, (0, 1), set("k", "<a>"), Return::Done)
        .unknown(3, 0, set("k", "c"))
        .ok(1, (2, 3), set("k", "b"), Return::Done)
        .ok(2, (4, 5), get("k"), value("<a>"));
    let report = history.check();
    let text = report.to_string();
    assert!(text.contains("NOT LINEARIZABLE") && text.contains("key \"k\""), "{text}");
    let html = render_html(report.violation().expect("a violation"));
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("&lt;a&gt;") && !html.contains("<a>"), "values are escaped");
    assert!(html.contains("client 2"));
}

#[test]
fn the_same_history_gives_the_same_report() {
    let history = generate(&Workload { operations: 1_000, values_distinct: Some(3), ..Workload::default() });
    assert_eq!(check(&history, &CheckConfig::default()), check(&history, &CheckConfig::default()));
}
