//! Turns the deepest dead end of a failed search into sentences.

use bytes::Bytes;

use super::model::KeyCall;
use super::partition::{KeyOp, SYNTHETIC_SOURCE};
use super::search::DeadEnd;
use super::shrink::Context;
use super::timeline::{describe_operation, describe_return, describe_value, quoted};
use crate::history::{Operation, Outcome, Return};

/// The longest consistent order the depth-first search found, and why nothing could follow.
pub(crate) fn explain_dead_end(key: &Bytes, searched: &[KeyOp], history: &[Operation], dead_end: &DeadEnd) -> String {
    let name = |index: usize| describe_searched(key, &searched[index], history);
    let mut text = String::new();
    if dead_end.order.is_empty() {
        text.push_str("\nNo operation can even take effect first:");
    } else {
        text.push_str("\nThe longest consistent order the search found:");
        for &index in &dead_end.order {
            let unknown = match (&searched[index].reply, searched[index].source) {
                (Some(_), _) => "",
                (None, SYNTHETIC_SOURCE) => "",
                (None, source) if matches!(history[source].outcome, Outcome::Ok(_)) => {
                    " (its reply set aside: taking effect here)"
                }
                (None, _) => " (outcome unknown: taking effect here)",
            };
            text.push_str(&format!("\n  {}{unknown}", name(index)));
        }
        text.push_str(&format!(
            "\nleaves the key holding {}, and then no operation fits:",
            describe_value(dead_end.value.as_deref())
        ));
    }
    for &(index, ref misfit) in &dead_end.refused {
        let why = match misfit {
            Some(expected) => misfit_reason(key, &searched[index], expected),
            None => "fits here, but every way on from there fails".to_string(),
        };
        text.push_str(&format!("\n  {} {why}", name(index)));
    }
    if let Some(due) = dead_end.due {
        text.push_str(&format!("\n({} must take effect before any operation invoked after it completed.)", name(due)));
    }
    text
}

/// Where the breadth-first sweep broke: every consistent order of what came before `blocked`
/// completed leaves one of `values`, and none lets `blocked` take effect with its reply.
pub(crate) fn explain_blocked(
    key: &Bytes,
    searched: &[KeyOp],
    history: &[Operation],
    blocked: usize,
    values: &[Option<Bytes>],
) -> String {
    let operation = &searched[blocked];
    let values: Vec<String> = values.iter().map(|value| describe_value(value.as_deref())).collect();
    let reply = operation.reply.as_ref().map_or_else(|| "unknown".to_string(), describe_return);
    format!(
        "No order of these operations is consistent with one value of key {}: the first to fail is {}, which \
         completed at {} ns with {reply}. Every consistent order of what completed before it leaves the key \
         holding {}; from there, no order of the operations still running lets it take effect with that reply.",
        quoted(key),
        describe_searched(key, operation, history),
        operation.completed_ns.unwrap_or_default(),
        values.join(" or ")
    )
}

/// Why an operation's recorded reply does not fit where the search wanted to place it.
fn misfit_reason(key: &Bytes, operation: &KeyOp, expected: &Return) -> String {
    let actual = operation.reply.as_ref().map_or_else(|| "unknown".to_string(), describe_return);
    if operation.call == KeyCall::RangeRead {
        let saw = |reply: &Return| match reply {
            Return::Value(None) => format!("{} absent", quoted(key)),
            Return::Value(Some(value)) => format!("{} = {}", quoted(key), quoted(value)),
            other => describe_return(other),
        };
        let actual = operation.reply.as_ref().map_or_else(|| "unknown".to_string(), saw);
        return format!("saw {actual}, but here it would see {}", saw(expected));
    }
    format!("replied {actual}, but here it would reply {}", describe_return(expected))
}

fn describe_searched(key: &Bytes, operation: &KeyOp, history: &[Operation]) -> String {
    if operation.source == SYNTHETIC_SOURCE {
        let value = match &operation.call {
            KeyCall::Set(value) => quoted(value),
            _ => "its value".to_string(),
        };
        return format!("(the operations before the window, leaving {value})");
    }
    let described = describe_operation(&history[operation.source]);
    if operation.call == KeyCall::RangeRead {
        format!("{described} (reading {})", quoted(key))
    } else {
        described
    }
}

/// A note on the operations that completed after the violation time, whose replies the
/// search ignored.
pub(crate) fn still_running_note(searched: &[KeyOp], history: &[Operation], cut_ns: u64) -> String {
    let ids: Vec<String> = searched
        .iter()
        .filter(|operation| operation.reply.is_none() && operation.source != SYNTHETIC_SOURCE)
        .map(|operation| &history[operation.source])
        .filter(|original| matches!(original.outcome, Outcome::Ok(_)))
        .filter(|original| original.completed_ns.is_some_and(|completed_ns| completed_ns > cut_ns))
        .map(|original| format!("#{}", original.id))
        .collect();
    if ids.is_empty() {
        return String::new();
    }
    format!(
        "\nThe violation shows by {cut_ns} ns; {} completed only later and count here as of unknown outcome.",
        ids.join(", ")
    )
}

/// At most this many values of a context are listed.
const VALUES_LISTED_MAX: usize = 8;

/// What the window leaves out: the operations before it, summarized by the values they can
/// leave in the key.
pub(crate) fn context_note(context: &Context, operations: &[KeyOp]) -> String {
    let mut values: Vec<String> =
        context.values.iter().take(VALUES_LISTED_MAX).map(|value| describe_value(value.as_deref())).collect();
    if context.values.len() > VALUES_LISTED_MAX {
        values.push(format!("{} other values", context.values.len() - VALUES_LISTED_MAX));
    }
    let unknown = context.operations.iter().filter(|&&index| operations[index].reply.is_none()).count();
    let mut text = format!(
        "\nThe {} operations on the key invoked before {} ns are not shown: whatever order they took effect in, \
         they leave it holding {}, and the window fails from {}.",
        context.operations.len(),
        context.start_ns,
        values.join(" or "),
        if context.values.len() == 1 { "there" } else { "each" }
    );
    if unknown > 0 {
        text.push_str(&format!(
            " {unknown} of them have an unknown outcome and may still take effect later: the search allows it."
        ));
    }
    text
}

/// What the operations shown for context are.
pub(crate) fn writers_note(writers: &[usize], operations: &[KeyOp], history: &[Operation]) -> String {
    if writers.is_empty() {
        return String::new();
    }
    let ids: Vec<String> = writers.iter().map(|&index| format!("#{}", history[operations[index].source].id)).collect();
    format!(
        "\nShown for context, not part of the window: {}, the last other operations to write a value that matters \
         here. The window fails whether they took effect (at any time after their invocation) or not.",
        ids.join(", ")
    )
}
