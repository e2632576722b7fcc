// SPDX-License-Identifier: GPL-2.0
//! A small seeded generator (xorshift64), so that a random operation mix is
//! the same on every run with the same seed.

/// xorshift64 (Marsaglia, shifts 13, 7, 17).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator started at `seed`; xorshift stays at 0 forever, so a
    /// seed of 0 starts at a fixed non-zero state instead.
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// An index into a slice of `len` elements (0 when it is empty).
    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_numbers() {
        let a: Vec<u64> = (0..5)
            .scan(Rng::new(7), |r, _| Some(r.next_u64()))
            .collect();
        let b: Vec<u64> = (0..5)
            .scan(Rng::new(7), |r, _| Some(r.next_u64()))
            .collect();
        assert_eq!(a, b);
        assert!(a.iter().all(|&x| x != 0));
        // xorshift64 13/7/17 from 1: the first number is 1 ^ 1 << 13 ...
        let mut r = Rng::new(1);
        assert_eq!(r.next_u64(), 1082269761);
    }

    #[test]
    fn zero_seed_and_bounds() {
        let mut r = Rng::new(0);
        assert_ne!(r.next_u64(), 0);
        for n in [1, 2, 3, 100] {
            assert!((0..1000).all(|_| r.below(n) < n));
        }
        assert_eq!(r.below(0), 0);
        assert_eq!(r.index(0), 0);
        assert!((0..1000).all(|_| r.index(7) < 7));
    }
}
