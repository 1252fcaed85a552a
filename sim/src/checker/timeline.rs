//! Words and pictures for people: operations described the way a Redis client would write
//! them, and a window of operations drawn as a text timeline.

use std::collections::BTreeSet;

use crate::history::{Call, Operation, Outcome, Return};

/// Values longer than this are cut in descriptions.
const VALUE_CHARACTERS_MAX: usize = 40;

/// How many pairs of a RANGE reply a description shows.
const PAIRS_SHOWN_MAX: usize = 6;

/// The widest timeline drawn, in characters.
const TIMELINE_WIDTH_MAX: usize = 60;

/// Bytes as a quoted string, non-printable bytes escaped, long values cut.
pub fn quoted(bytes: &[u8]) -> String {
    let escaped = bytes.escape_ascii().to_string();
    if escaped.len() <= VALUE_CHARACTERS_MAX {
        return format!("\"{escaped}\"");
    }
    // `escape_ascii` output is ASCII, so any byte offset is a character boundary.
    format!("\"{}...\" ({} bytes)", &escaped[..VALUE_CHARACTERS_MAX], bytes.len())
}

/// A value, or `nil` for an absent key.
pub fn describe_value(value: Option<&[u8]>) -> String {
    value.map_or_else(|| "nil".to_string(), quoted)
}

/// The call as a command line: `SET "k" "v"`.
pub fn describe_call(call: &Call) -> String {
    match call {
        Call::Get(key) => format!("GET {}", quoted(key)),
        Call::Set(key, value) => format!("SET {} {}", quoted(key), quoted(value)),
        Call::Del(key) => format!("DEL {}", quoted(key)),
        Call::Cas { key, expected, new } => format!("CAS {} {} {}", quoted(key), quoted(expected), quoted(new)),
        Call::Append(key, value) => format!("APPEND {} {}", quoted(key), quoted(value)),
        Call::Incr(key) => format!("INCR {}", quoted(key)),
        Call::Range { start, end } => format!("RANGE {} {}", quoted(start), quoted(end)),
    }
}

/// A reply as a client would print it.
pub fn describe_return(reply: &Return) -> String {
    match reply {
        Return::Value(value) => describe_value(value.as_deref()),
        Return::Integer(number) => number.to_string(),
        Return::Pairs(pairs) => {
            let shown: Vec<String> = pairs
                .iter()
                .take(PAIRS_SHOWN_MAX)
                .map(|(key, value)| format!("{}={}", quoted(key), quoted(value)))
                .collect();
            let more = pairs.len().saturating_sub(PAIRS_SHOWN_MAX);
            let tail = if more > 0 { format!(", ... {more} more") } else { String::new() };
            format!("[{}{tail}]", shown.join(", "))
        }
        Return::Done => "OK".to_string(),
        Return::Error => "ERR".to_string(),
    }
}

/// The outcome: the reply, `failed` or `unknown`.
pub fn describe_outcome(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Ok(reply) => describe_return(reply),
        Outcome::Failed => "failed".to_string(),
        Outcome::Unknown => "unknown".to_string(),
    }
}

/// `#12 (client 3) SET "k" "v"`.
pub fn describe_operation(operation: &Operation) -> String {
    format!("#{} (client {}) {}", operation.id, operation.client, describe_call(&operation.call))
}

/// The window as a table, one line per operation in invocation order, with a bar showing
/// when it ran. Bars are drawn in event order, not to scale: each distinct instant gets its
/// own column, so overlaps stay visible however far apart the instants are. `[===]` ran
/// and completed, `[xxx]` failed, `[--->` has an unknown outcome (it may take effect at any
/// time after its invocation).
pub fn render_text(window: &[Operation]) -> String {
    let columns = Columns::new(window);
    let mut text = String::new();
    text.push_str(&format!(
        "{:>7} {:>8} {:>15} {:>15}  {:<width$}  call -> outcome\n",
        "op",
        "client",
        "invoked ns",
        "completed ns",
        "timeline",
        width = columns.width
    ));
    let mut ordered: Vec<&Operation> = window.iter().collect();
    ordered.sort_by_key(|operation| (operation.invoked_ns, operation.id));
    for operation in ordered {
        let completed = match (&operation.outcome, operation.completed_ns) {
            (Outcome::Unknown, _) | (_, None) => "?".to_string(),
            (_, Some(completed_ns)) => completed_ns.to_string(),
        };
        text.push_str(&format!(
            "{:>7} {:>8} {:>15} {:>15}  {}  {} -> {}\n",
            format!("#{}", operation.id),
            operation.client,
            operation.invoked_ns,
            completed,
            columns.bar(operation),
            describe_call(&operation.call),
            describe_outcome(&operation.outcome)
        ));
    }
    text
}

/// The instant at which an operation's bar ends, if it has one.
pub(crate) fn completion_shown(operation: &Operation) -> Option<u64> {
    match operation.outcome {
        Outcome::Unknown => None,
        _ => operation.completed_ns,
    }
}

/// Maps each distinct instant of a window to a column.
#[derive(Debug)]
pub(crate) struct Columns {
    instants: Vec<u64>,
    pub width: usize,
}

impl Columns {
    pub(crate) fn new(window: &[Operation]) -> Columns {
        let mut instants = BTreeSet::new();
        for operation in window {
            instants.insert(operation.invoked_ns);
            instants.extend(completion_shown(operation));
        }
        let instants: Vec<u64> = instants.into_iter().collect();
        let width = (instants.len() * 2 + 2).clamp(8, TIMELINE_WIDTH_MAX);
        Columns { instants, width }
    }

    /// The column of an instant, or the last column for "never" (an unknown outcome).
    pub(crate) fn column(&self, instant: Option<u64>) -> usize {
        let Some(instant) = instant else { return self.width - 1 };
        let rank = self.instants.partition_point(|&known| known < instant);
        let last = self.instants.len().saturating_sub(1).max(1);
        // Keep the last column free for the arrows of unknown outcomes.
        rank * (self.width - 2) / last
    }

    fn bar(&self, operation: &Operation) -> String {
        let start = self.column(Some(operation.invoked_ns));
        let end = self.column(completion_shown(operation)).max(start);
        let (fill, last) = match operation.outcome {
            Outcome::Ok(_) => ('=', ']'),
            Outcome::Failed => ('x', ']'),
            Outcome::Unknown => ('-', '>'),
        };
        (0..self.width)
            .map(|column| match column {
                _ if column < start || column > end => ' ',
                _ if column == start && column == end => '|',
                _ if column == start => '[',
                _ if column == end => last,
                _ => fill,
            })
            .collect()
    }
}
