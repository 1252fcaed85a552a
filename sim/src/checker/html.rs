//! A violation as a self-contained HTML page, in the manner of porcupine's visualization: one
//! row per client, one bar per operation from invocation to completion, the longest
//! consistent order found numbered in green, the operations it could not place in red.

use std::collections::{BTreeMap, BTreeSet};

use super::report::Violation;
use super::timeline::{completion_shown, describe_call, describe_outcome, quoted};
use crate::history::{Operation, Outcome};

const STYLE: &str = "
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.25em; }
.timeline { position: relative; margin: 1em 0 1.5em 8em; border-left: 1px solid #bbb; }
.row { position: relative; height: 2.2em; border-bottom: 1px dashed #e4e4e4; }
.client { position: absolute; left: -8em; width: 7.4em; top: 0.55em; text-align: right; font-size: 0.85em; color: #555; }
.op { position: absolute; top: 0.25em; height: 1.7em; box-sizing: border-box; padding: 0 4px; border: 1px solid #777;
      border-radius: 3px; font-size: 0.75em; line-height: 1.6em; white-space: nowrap; overflow: hidden;
      text-overflow: ellipsis; background: #dde8f5; }
.op:hover { overflow: visible; z-index: 2; background: #fff6bf; }
.placed { background: #cfeccf; border-color: #2f7d2f; }
.unplaced { background: #f6d2d2; border-color: #b22; }
.unknown { border-style: dashed; background: linear-gradient(to right, #e8e8e8, #ffffff); }
.failed { background: #eee; color: #888; text-decoration: line-through; }
.order { font-weight: bold; margin-right: 4px; }
.legend span { display: inline-block; margin-right: 0.6em; padding: 0 6px; border: 1px solid #777; border-radius: 3px; font-size: 0.8em; }
pre { background: #f5f5f5; padding: 0.8em; white-space: pre-wrap; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ddd; padding: 2px 8px; text-align: left; }
";

/// The violation as a complete HTML document (no scripts, no external resources).
pub fn render_html(violation: &Violation) -> String {
    let title = format!("Not linearizable: key {}", quoted(&violation.key));
    let shrunk = if violation.minimal { "minimal" } else { "not minimal: the shrink budget ran out" };
    let mut page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n\
         <style>{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n\
         <p>A window of {} of the key's {} operations ({shrunk}) that no order can explain. \
         Bars run from invocation to completion, drawn in event order rather than to scale; hover over one for its \
         details.</p>\n",
        violation.window.len(),
        violation.key_operations,
        title = escape(&title)
    );
    page.push_str(
        "<p class=\"legend\"><span class=\"placed\">1 placed in the longest consistent order</span>\
         <span class=\"unplaced\">could not be placed</span><span class=\"unknown\">unknown outcome</span>\
         <span class=\"failed\">failed</span></p>\n",
    );
    page.push_str(&timeline(violation));
    page.push_str(&format!("<pre>{}</pre>\n", escape(&violation.explanation)));
    page.push_str(&table(violation));
    page.push_str("</body>\n</html>\n");
    page
}

/// The bars, one row per client.
fn timeline(violation: &Violation) -> String {
    let instants: Vec<u64> = violation
        .window
        .iter()
        .flat_map(|operation| [Some(operation.invoked_ns), completion_shown(operation)])
        .flatten()
        .collect::<BTreeSet<u64>>()
        .into_iter()
        .collect();
    let percent = |rank: usize| rank as f64 * 100.0 / instants.len().max(1) as f64;
    let rank = |instant: u64| instants.partition_point(|&known| known < instant);
    let orders = order_numbers(violation);
    let mut rows: BTreeMap<u64, String> = BTreeMap::new();
    for operation in &violation.window {
        let left = percent(rank(operation.invoked_ns));
        let right = completion_shown(operation).map_or(100.0, |completed_ns| percent(rank(completed_ns) + 1));
        let order = orders.get(&operation.id);
        let badge = order.map_or_else(String::new, |order| format!("<span class=\"order\">{order}</span>"));
        let label =
            format!("#{} {} → {}", operation.id, describe_call(&operation.call), describe_outcome(&operation.outcome));
        rows.entry(operation.client).or_default().push_str(&format!(
            "<div class=\"op {}\" style=\"left:{left:.3}%;width:{:.3}%\" title=\"{}\">{badge}{}</div>",
            class(operation, order.is_some()),
            (right - left).max(0.5),
            escape(&tooltip(operation)),
            escape(&label)
        ));
    }
    let mut html = String::from("<div class=\"timeline\">\n");
    for (client, bars) in rows {
        html.push_str(&format!("<div class=\"row\"><div class=\"client\">client {client}</div>{bars}</div>\n"));
    }
    html.push_str("</div>\n");
    html
}

/// Position (from 1) of each operation in the longest consistent order.
fn order_numbers(violation: &Violation) -> BTreeMap<u64, usize> {
    violation.consistent_order.iter().enumerate().map(|(position, &id)| (id, position + 1)).collect()
}

fn class(operation: &Operation, placed: bool) -> &'static str {
    match operation.outcome {
        Outcome::Failed => "failed",
        _ if placed => "placed",
        Outcome::Unknown => "unknown",
        Outcome::Ok(_) => "unplaced",
    }
}

fn tooltip(operation: &Operation) -> String {
    let completed =
        completion_shown(operation).map_or_else(|| "never (outcome unknown)".to_string(), |ns| format!("{ns} ns"));
    format!(
        "#{} client {}\n{} -> {}\ninvoked {} ns, completed {completed}",
        operation.id,
        operation.client,
        describe_call(&operation.call),
        describe_outcome(&operation.outcome),
        operation.invoked_ns
    )
}

/// The window as a table, for copying.
fn table(violation: &Violation) -> String {
    let orders = order_numbers(violation);
    let mut html = String::from(
        "<table>\n<tr><th>op</th><th>client</th><th>invoked ns</th><th>completed ns</th><th>call</th>\
         <th>outcome</th><th>order</th></tr>\n",
    );
    for operation in &violation.window {
        let completed = completion_shown(operation).map_or_else(|| "?".to_string(), |ns| ns.to_string());
        let order = orders.get(&operation.id).map_or_else(String::new, |order| order.to_string());
        html.push_str(&format!(
            "<tr><td>#{}</td><td>{}</td><td>{}</td><td>{completed}</td><td>{}</td><td>{}</td><td>{order}</td></tr>\n",
            operation.id,
            operation.client,
            operation.invoked_ns,
            escape(&describe_call(&operation.call)),
            escape(&describe_outcome(&operation.outcome))
        ));
    }
    html.push_str("</table>\n");
    html
}

/// Escapes text for HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            '\n' => escaped.push_str("&#10;"),
            other => escaped.push(other),
        }
    }
    escaped
}
