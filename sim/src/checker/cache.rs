//! The search's memory of configurations it has already explored: (set of linearized
//! operations, value of the key, and the restriction on the next step when the last one was
//! an operation of unknown outcome).
//!
//! A configuration reached twice has the same future, so the second visit is skipped; this
//! is what turns the factorial search into one that is usually linear. Beyond equality, the
//! cache prunes by subsumption: a configuration that differs from an explored one only by
//! having spent more operations of unknown outcome (and being no less restricted) can do
//! nothing the explored one could not, since an unknown operation may always be left out.
//! Without this, every subset of the unknown operations spent so far would be explored
//! separately when refuting a history.
//!
//! The set is stored compactly: operations of known outcome are numbered in invocation
//! order, and those below the first one not yet linearized (`floor`) are implied, so only the
//! window from `floor` to the highest linearized one is kept. Operations of unknown outcome
//! are listed explicitly, since one that never took effect would otherwise pin the floor for
//! the rest of the history.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use super::model::StateId;

/// The set of linearized operations, maintained as the search lifts and restores them.
#[derive(Debug)]
pub(crate) struct LinearizedSet {
    /// Bit `i` is set when known operation `i` (in invocation order) is linearized.
    known: Vec<u64>,
    /// The first known operation not linearized.
    floor: u32,
    /// One past the highest linearized known operation (0 when there is none).
    ceiling: u32,
    /// The linearized operations of unknown outcome, sorted.
    unknown: Vec<u32>,
    /// XOR of one random word per known member, so that the hash costs nothing to maintain.
    fingerprint: u64,
}

impl LinearizedSet {
    pub(crate) fn new(known_count: usize) -> LinearizedSet {
        LinearizedSet {
            known: vec![0; known_count.div_ceil(64)],
            floor: 0,
            ceiling: 0,
            unknown: Vec::new(),
            fingerprint: 0,
        }
    }

    /// The ceiling, which [`LinearizedSet::remove_known`] needs back to undo an insertion.
    pub(crate) fn ceiling(&self) -> u32 {
        self.ceiling
    }

    pub(crate) fn insert_known(&mut self, index: u32) {
        debug_assert!(!self.contains_known(index), "known operation {index} linearized twice");
        self.known[index as usize / 64] |= 1 << (index % 64);
        self.fingerprint ^= zobrist(u64::from(index));
        self.ceiling = self.ceiling.max(index + 1);
        while self.floor < self.ceiling && self.contains_known(self.floor) {
            self.floor += 1;
        }
    }

    /// Undoes [`LinearizedSet::insert_known`]; `ceiling_before` is the ceiling it found.
    pub(crate) fn remove_known(&mut self, index: u32, ceiling_before: u32) {
        debug_assert!(self.contains_known(index), "known operation {index} removed but not linearized");
        self.known[index as usize / 64] &= !(1 << (index % 64));
        self.fingerprint ^= zobrist(u64::from(index));
        self.ceiling = ceiling_before;
        self.floor = self.floor.min(index);
    }

    pub(crate) fn insert_unknown(&mut self, index: u32) {
        let position = self.unknown.binary_search(&index).expect_err("unknown operation linearized twice");
        self.unknown.insert(position, index);
    }

    pub(crate) fn remove_unknown(&mut self, index: u32) {
        let position = self.unknown.binary_search(&index).expect("unknown operation removed but not linearized");
        self.unknown.remove(position);
    }

    fn contains_known(&self, index: u32) -> bool {
        self.known[index as usize / 64] & (1 << (index % 64)) != 0
    }

    /// The known part of the configuration with the key holding `state`.
    fn known_key(&self, state: StateId) -> KnownKey {
        KnownKey {
            hash: mix64(self.fingerprint ^ mix64(u64::from(state))),
            floor: self.floor,
            window: bits(&self.known, self.floor, self.ceiling),
            state,
        }
    }
}

/// The explored configurations.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    /// By known set and value: the sets of unknown operations spent, and whether the last
    /// step was an unknown one. Only ever queried and inserted into, never iterated.
    explored: HashMap<KnownKey, Vec<Spent>, BuildHasherDefault<PassThroughHasher>>,
    len: usize,
}

#[derive(Debug)]
struct Spent {
    unknown: Box<[u32]>,
    restriction: Restriction,
}

/// What the next operation must do, when the last one placed was of unknown outcome: it
/// must notice that operation (see [`super::search`]). `None`: no restriction.
pub(crate) type Restriction = Option<(u32, StateId)>;

impl Cache {
    /// Records the configuration `(set, state, restriction)`; returns false, recording
    /// nothing, if it or one that subsumes it was explored already. An explored configuration
    /// subsumes this one if it has the same known set and value, spent a subset of its
    /// unknown operations, and was restricted the same way or not at all.
    pub(crate) fn visit(&mut self, set: &LinearizedSet, state: StateId, restriction: Restriction) -> bool {
        let spent = self.explored.entry(set.known_key(state)).or_default();
        let subsumed = spent.iter().any(|explored| {
            (explored.restriction.is_none() || explored.restriction == restriction)
                && is_subset(&explored.unknown, &set.unknown)
        });
        if subsumed {
            return false;
        }
        // Explored configurations this one subsumes add nothing: whatever they would prune,
        // this one prunes too.
        let before = spent.len();
        spent.retain(|explored| {
            !((restriction.is_none() || explored.restriction == restriction)
                && is_subset(&set.unknown, &explored.unknown))
        });
        self.len -= before - spent.len();
        spent.push(Spent { unknown: set.unknown.clone().into_boxed_slice(), restriction });
        self.len += 1;
        true
    }

    /// How many configurations are recorded (those subsumed by a later one are forgotten).
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

/// Whether sorted `small` is a subset of sorted `large`.
pub(crate) fn is_subset<T: PartialEq>(small: &[T], large: &[T]) -> bool {
    let mut large = large.iter();
    small.iter().all(|member| large.by_ref().any(|candidate| candidate == member))
}

/// The bits `[from, to)` of `words`, shifted down to start at bit 0.
fn bits(words: &[u64], from: u32, to: u32) -> Box<[u64]> {
    let length = to.saturating_sub(from) as usize;
    (0..length.div_ceil(64))
        .map(|output| {
            let offset = from as usize + output * 64;
            let (word, shift) = (offset / 64, offset % 64);
            let low = words.get(word).copied().unwrap_or(0) >> shift;
            let high = if shift == 0 { 0 } else { words.get(word + 1).copied().unwrap_or(0) << (64 - shift) };
            // Bits at or past `to` are clear: `to` is one past the highest set bit.
            low | high
        })
        .collect()
}

/// The known part of a configuration. Equality compares everything, so the cache is exact;
/// the hash is the precomputed fingerprint.
#[derive(Debug, PartialEq, Eq)]
struct KnownKey {
    hash: u64,
    floor: u32,
    window: Box<[u64]>,
    state: StateId,
}

impl Hash for KnownKey {
    fn hash<H: Hasher>(&self, hasher: &mut H) {
        hasher.write_u64(self.hash);
    }
}

/// Hands the precomputed fingerprint of a [`KnownKey`] to the table unchanged.
#[derive(Debug, Default)]
pub(crate) struct PassThroughHasher(u64);

impl Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = mix64(self.0 ^ u64::from(byte));
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// A fixed pseudo-random word per set member (Zobrist hashing).
fn zobrist(member: u64) -> u64 {
    mix64(member.wrapping_add(0x9E37_79B9_7F4A_7C15))
}

/// The SplitMix64 finalizer: a cheap, well-mixing bijection on 64-bit words.
pub(crate) fn mix64(mut value: u64) -> u64 {
    value = (value ^ (value >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    value ^ (value >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_set_reached_in_different_orders_is_one_configuration() {
        let mut first = LinearizedSet::new(200);
        let mut second = LinearizedSet::new(200);
        for index in [0, 1, 2, 70, 130] {
            first.insert_known(index);
        }
        for index in [130, 70, 2, 0, 1] {
            second.insert_known(index);
        }
        let mut cache = Cache::default();
        assert!(cache.visit(&first, 3, None));
        assert!(!cache.visit(&second, 3, None));
        assert!(cache.visit(&second, 2, None));
        second.insert_known(3);
        assert!(cache.visit(&second, 3, None));
    }

    #[test]
    fn spending_more_unknown_operations_is_subsumed() {
        let mut set = LinearizedSet::new(10);
        set.insert_known(0);
        let mut cache = Cache::default();
        set.insert_unknown(4);
        assert!(cache.visit(&set, 1, Some((4, 0))));
        set.insert_unknown(2);
        assert!(!cache.visit(&set, 1, Some((4, 0))), "a superset of spent unknowns, equally restricted");
        assert!(cache.visit(&set, 1, Some((2, 0))), "restricted otherwise: new");
        assert!(cache.visit(&set, 1, None), "less restricted: new");
        set.remove_unknown(2);
        set.remove_unknown(4);
        assert!(cache.visit(&set, 1, None), "fewer spent unknowns: new");
        set.insert_unknown(7);
        assert!(!cache.visit(&set, 1, None));
        assert!(!cache.visit(&set, 1, Some((7, 3))));
    }

    #[test]
    fn removing_restores_the_configuration() {
        let mut set = LinearizedSet::new(100);
        set.insert_known(0);
        let mut cache = Cache::default();
        assert!(cache.visit(&set, 1, None));
        let ceiling = set.ceiling();
        set.insert_known(65);
        assert!(cache.visit(&set, 1, None));
        set.remove_known(65, ceiling);
        assert!(!cache.visit(&set, 1, None));
    }

    #[test]
    fn subsets_of_sorted_slices() {
        assert!(is_subset(&[], &[1]));
        assert!(is_subset(&[1, 3], &[1, 2, 3]));
        assert!(!is_subset(&[1, 4], &[1, 2, 3]));
        assert!(!is_subset(&[2], &[]));
    }

    #[test]
    fn bits_shift_across_word_boundaries() {
        let words = [1 << 63, 0b101];
        assert_eq!(&*bits(&words, 63, 67), &[0b1011]);
        assert!(bits(&words, 5, 5).is_empty());
    }
}
