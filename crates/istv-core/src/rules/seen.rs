//! The record ids a file has accepted so far, for spotting repeats.

/// Maps a (site, record id) key hash to the row that last used it.
///
/// Open addressing with linear probing over one array of (key, row) pairs, so
/// an insert touches one cache line, and [`Seen::prefetch`] lets the rules
/// start loading that line while they judge the rest of the row: at a million
/// rows the table is 32 MB, and waiting for it was a sixth of validation time.
pub(super) struct Seen {
    /// `(key, row)`; key 0 marks an empty slot.
    slots: Vec<(u64, u64)>,
    len: usize,
    /// 64 minus log2 of the slot count.
    shift: u32,
}

/// Slots at first; the table doubles when half full.
const INITIAL_SLOTS: usize = 1024;

impl Seen {
    pub(super) fn new() -> Self {
        Seen {
            slots: vec![(0, 0); INITIAL_SLOTS],
            len: 0,
            shift: 64 - INITIAL_SLOTS.trailing_zeros(),
        }
    }

    /// Key 0 marks empty slots, so it is stored as 1: a collision of two
    /// 64-bit hashes, as likely as any other.
    fn key(hash: u64) -> u64 {
        hash.max(1)
    }

    /// Multiplicative hashing, so keys that differ only in low bits (as
    /// test keys do) still spread over the table.
    fn home(&self, key: u64) -> usize {
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    /// Starts loading the slot `hash` would go to.
    #[inline]
    pub(super) fn prefetch(&self, hash: u64) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let slot = &self.slots[self.home(Self::key(hash))];
            // SAFETY: a prefetch is a hint that never faults; the address is
            // a live element anyway.
            unsafe { _mm_prefetch::<_MM_HINT_T0>((slot as *const (u64, u64)).cast()) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = hash;
    }

    /// Records `row` under `hash`; returns the row it held before, if any.
    pub(super) fn insert(&mut self, hash: u64, row: u64) -> Option<u64> {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let key = Self::key(hash);
        let i = self.slot_of(key);
        let slot = &mut self.slots[i];
        if slot.0 == key {
            return Some(std::mem::replace(&mut slot.1, row));
        }
        *slot = (key, row);
        self.len += 1;
        None
    }

    /// The slot holding `key`, else the empty slot where it goes.
    fn slot_of(&self, key: u64) -> usize {
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        while self.slots[i].0 != key && self.slots[i].0 != 0 {
            i = (i + 1) & mask;
        }
        i
    }

    fn grow(&mut self) {
        let doubled = vec![(0, 0); self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, doubled);
        self.shift -= 1;
        for (key, row) in old.into_iter().filter(|s| s.0 != 0) {
            let i = self.slot_of(key);
            self.slots[i] = (key, row);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Seen;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn a_repeat_returns_the_earlier_row() {
        let mut s = Seen::new();
        assert_eq!(s.insert(7, 1), None);
        assert_eq!(s.insert(8, 2), None);
        assert_eq!(s.insert(7, 3), Some(1));
        assert_eq!(s.insert(7, 4), Some(3));
        // 0 and 1 share a slot, as documented.
        assert_eq!(s.insert(0, 5), None);
        assert_eq!(s.insert(1, 6), Some(5));
    }

    #[test]
    fn growth_keeps_every_key() {
        let mut s = Seen::new();
        for k in 2..100_000u64 {
            assert_eq!(s.insert(k * 0x1_0000, k), None);
        }
        assert!(s.slots.len() >= 2 * 99_998);
        for k in 2..100_000u64 {
            assert_eq!(s.insert(k * 0x1_0000, k + 1), Some(k), "key {k}");
        }
    }

    proptest! {
        /// Same answers as a standard map, keys drawn from a small range so
        /// repeats are common and probe runs collide.
        #[test]
        fn agrees_with_a_hash_map(keys in proptest::collection::vec(1u64..3000, 0..5000)) {
            let mut s = Seen::new();
            let mut m = HashMap::new();
            for (row, k) in keys.into_iter().enumerate() {
                s.prefetch(k);
                prop_assert_eq!(s.insert(k, row as u64), m.insert(k, row as u64));
            }
        }
    }
}
