//! SCAN under writes between pages: a key present for the whole iteration is
//! returned exactly once, and no key is ever returned twice.

use std::collections::BTreeSet;

use bytes::Bytes;
use kvstore::state::{Command, Limits, ScanCursor};
use proptest::prelude::*;

use crate::support::{bytes, Driver};

/// A write made between two SCAN pages.
#[derive(Clone, Debug)]
enum Churn {
    /// Creates or overwrites a volatile key.
    Create(Vec<u8>),
    /// Deletes a volatile key.
    Delete(Vec<u8>),
    /// Overwrites a stable key, which keeps it present.
    Overwrite(usize),
}

fn short_key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(vec![b'a', b'b', b'c', 0xff]), 0..4)
}

fn churn() -> impl Strategy<Value = Churn> {
    prop_oneof![
        short_key().prop_map(Churn::Create),
        short_key().prop_map(Churn::Delete),
        any::<usize>().prop_map(Churn::Overwrite),
    ]
}

proptest! {
    #[test]
    fn scan_under_writes_neither_repeats_nor_misses_stable_keys(
        stable in prop::collection::btree_set(short_key(), 1..20),
        initial_volatile in prop::collection::vec(short_key(), 0..20),
        count in 1..5usize,
        churn_per_page in prop::collection::vec(prop::collection::vec(churn(), 0..6), 0..40),
    ) {
        let stable: Vec<Vec<u8>> = stable.into_iter().collect();
        let is_stable = |key: &[u8]| stable.binary_search_by(|probe| probe.as_slice().cmp(key)).is_ok();
        let mut driver = Driver::new(Limits::default());
        for key in stable.iter().chain(&initial_volatile) {
            driver.write(Command::Put { key: Bytes::from(key.clone()), value: bytes("v") });
        }
        let mut returned: Vec<Bytes> = Vec::new();
        let mut cursor = ScanCursor::Start;
        let mut pages = churn_per_page.into_iter();
        // Each page examines at least one key and keys are only ever
        // returned in increasing order, so this many pages always suffice.
        for _ in 0..=(stable.len() + initial_volatile.len() + 40 * 6) {
            let page = driver.machine.scan(&cursor, count, None);
            returned.extend(page.keys);
            cursor = page.next;
            if cursor == ScanCursor::Start {
                break;
            }
            for write in pages.next().unwrap_or_default() {
                let command = match write {
                    Churn::Create(key) if !is_stable(&key) => Command::Put { key: key.into(), value: bytes("new") },
                    Churn::Delete(key) if !is_stable(&key) => Command::Del { keys: vec![key.into()] },
                    Churn::Overwrite(choice) => {
                        let key = stable[choice % stable.len()].clone();
                        Command::Append { key: key.into(), value: bytes("+") }
                    }
                    Churn::Create(_) | Churn::Delete(_) => continue,
                };
                driver.write(command);
            }
        }
        prop_assert_eq!(&cursor, &ScanCursor::Start, "the iteration ends");
        for pair in returned.windows(2) {
            prop_assert!(pair[0] < pair[1], "keys come in increasing order, so none repeats");
        }
        let returned: BTreeSet<Vec<u8>> = returned.iter().map(|key| key.to_vec()).collect();
        for key in &stable {
            prop_assert!(returned.contains(key), "stable key {:?} was missed", key);
        }
    }
}

#[test]
fn count_bounds_work_not_matches() {
    let mut driver = Driver::new(Limits::default());
    for key in ["a1", "a2", "b1", "b2", "b3", "c1"] {
        driver.write(crate::support::put(key, "v"));
    }
    let first = driver.machine.scan(&ScanCursor::Start, 3, Some(b"b*"));
    assert_eq!(first.keys, vec![bytes("b1")]);
    assert_eq!(first.next, ScanCursor::After(bytes("b1")));
    let second = driver.machine.scan(&first.next, 3, Some(b"b*"));
    assert_eq!(second.keys, vec![bytes("b2"), bytes("b3")]);
    assert_eq!(second.next, ScanCursor::Start, "the page reaching the last key ends it");
    let token = first.next.to_token();
    assert_eq!(ScanCursor::from_token(&token), Ok(first.next));
}
