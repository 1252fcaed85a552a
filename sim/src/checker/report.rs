//! What the checker says: its configuration, its verdict, and the evidence.

use std::fmt;

use bytes::Bytes;

use super::timeline::{quoted, render_text};
use crate::history::Operation;

/// Limits on the checker's work. Every limit that is reached shows in the verdict
/// ([`Verdict::Inconclusive`]) or in the violation ([`Violation::minimal`]); none passes a
/// history silently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckConfig {
    /// Steps (candidate operations tried) deciding one key may take before the key is
    /// declared inconclusive. Accepting n operations usually takes n to 2n; refuting them
    /// takes more, growing with the operations of unknown outcome (see the module notes).
    pub search_steps_max_per_key: u64,
    /// Steps, over all its searches, that shrinking a violation to a small window may take.
    pub shrink_steps_max: u64,
}

impl Default for CheckConfig {
    fn default() -> Self {
        CheckConfig { search_steps_max_per_key: 20_000_000, shrink_steps_max: 20_000_000 }
    }
}

/// The checker's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub verdict: Verdict,
    pub stats: Stats,
}

impl Report {
    pub fn is_linearizable(&self) -> bool {
        self.verdict == Verdict::Linearizable
    }

    /// The violation, if the history has one.
    pub fn violation(&self) -> Option<&Violation> {
        match &self.verdict {
            Verdict::Violation(violation) => Some(violation),
            _ => None,
        }
    }
}

/// Whether the history is linearizable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every key's sub-history, RANGE reads included, has a linearization.
    Linearizable,
    /// The first key (in byte order) found without one; later keys are not checked.
    Violation(Box<Violation>),
    /// No violation was found, but these keys exhausted the search budget: they are neither
    /// proven linearizable nor proven not to be.
    Inconclusive { keys: Vec<Bytes> },
}

/// A key whose operations admit no linearization, with a window that shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub key: Bytes,
    /// Operations of the history, unchanged, in invocation order: the window, which is not
    /// linearizable on its own, nor even with every other operation of the key relaxed to an
    /// unknown outcome; plus, when the operations before the window are summarized (see the
    /// explanation), the last of them to write each value the window involves, for context.
    pub window: Vec<Operation>,
    /// What goes wrong, in sentences.
    pub explanation: String,
    /// Ids of window operations in the longest consistent order the search found, in the
    /// order they took effect (empty when the violation is a RANGE reply on its own).
    pub consistent_order: Vec<u64>,
    /// Whether shrinking finished: no single operation can be dropped from the window without
    /// losing the violation. False when the shrink budget ran out first.
    pub minimal: bool,
    /// How many operations of the history concern the key (RANGE reads included).
    pub key_operations: usize,
}

/// What the check cost.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Operations in the history, failed ones included.
    pub operations: usize,
    /// Keys whose sub-history was searched.
    pub keys_checked: usize,
    /// Completed RANGE operations checked.
    pub ranges_checked: usize,
    /// Search steps over all keys.
    pub search_steps: u64,
    /// The most configurations one key's search remembered.
    pub cache_entries_max: usize,
    /// Search steps spent shrinking a violation.
    pub shrink_steps: u64,
}

impl fmt::Display for Report {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.verdict {
            Verdict::Linearizable => writeln!(formatter, "linearizable")?,
            Verdict::Violation(violation) => write!(formatter, "NOT LINEARIZABLE\n{violation}")?,
            Verdict::Inconclusive { keys } => {
                let keys: Vec<String> = keys.iter().map(|key| quoted(key)).collect();
                writeln!(
                    formatter,
                    "inconclusive: no violation found, but the search budget ran out on key(s) {}",
                    keys.join(", ")
                )?;
            }
        }
        let stats = &self.stats;
        writeln!(
            formatter,
            "checked {} operations over {} keys and {} ranges: {} search steps, at most {} cached configurations \
             per key, {} shrink steps",
            stats.operations,
            stats.keys_checked,
            stats.ranges_checked,
            stats.search_steps,
            stats.cache_entries_max,
            stats.shrink_steps
        )
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shrunk = if self.minimal { "minimal" } else { "not minimal: shrink budget spent" };
        writeln!(
            formatter,
            "key {}: a window of {} of its {} operations ({shrunk}) is not linearizable:",
            quoted(&self.key),
            self.window.len(),
            self.key_operations
        )?;
        write!(formatter, "{}", render_text(&self.window))?;
        writeln!(formatter, "{}", self.explanation)
    }
}
