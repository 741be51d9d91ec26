//! Seeded random streams.
//!
//! This module owns the rule that turns a user's seed into independent random
//! streams. Every piece of randomized work (a generator's chunk of rows, a
//! Monte Carlo replicate) asks for its stream by a key of small integers, so
//! the numbers it draws depend only on the seed and the key, never on which
//! thread runs it or in what order: results are bit-identical on 1 or N threads.

use rand::rngs::ChaCha8Rng;
use rand::SeedableRng;

mod normal;
mod ziggurat_tables;

pub use normal::Noise;

/// The random number generator of graph generators, partitioners, the
/// population and exposure probabilities.
pub type Rng = ChaCha8Rng;

/// The generator of Monte Carlo replicates (each replicate's assignment, the
/// seeds and rare slow draws of its [`Noise`], and the re-randomizations of
/// randomization inference):
/// xoshiro256++, several times faster per draw than ChaCha8, which matters
/// where a replicate draws a normal per user. Statistical quality is ample for
/// simulation (it passes BigCrush); it is not a cryptographic generator.
pub type Draws = rand_xoshiro::Xoshiro256PlusPlus;

/// SplitMix64 finalizer: a bijective 64-bit mixer.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A stream keyed by `seed` and a path of integers (e.g. `[PURPOSE, design, replicate]`).
///
/// Distinct keys give statistically independent ChaCha8 streams; the same key
/// always gives the same stream.
pub fn stream(seed: u64, key: &[u64]) -> Rng {
    ChaCha8Rng::from_seed(key_bytes(seed, key))
}

/// A replicate's stream ([`Draws`]) keyed by `seed` and a path of integers,
/// by the same rule as [`stream`]: distinct keys give independent streams,
/// the same key the same stream.
///
/// ```
/// use rand::RngExt;
/// let a: u64 = spillover::rng::draws(7, &[5, 0, 3]).random();
/// let b: u64 = spillover::rng::draws(7, &[5, 0, 3]).random();
/// assert_eq!(a, b);
/// ```
pub fn draws(seed: u64, key: &[u64]) -> Draws {
    // xoshiro256++ replaces an all-zero seed by a fixed one.
    Draws::from_seed(key_bytes(seed, key))
}

/// 32 seed bytes for `seed` and `key`.
fn key_bytes(seed: u64, key: &[u64]) -> [u8; 32] {
    let mut state = mix(seed ^ 0x5EED_5EED_5EED_5EED);
    for (i, &k) in key.iter().enumerate() {
        state = mix(state ^ mix(k.wrapping_add((i as u64 + 1) << 56)));
    }
    let mut bytes = [0u8; 32];
    let mut s = state;
    for chunk in bytes.chunks_mut(8) {
        s = mix(s);
        chunk.copy_from_slice(&s.to_le_bytes());
    }
    bytes
}

/// Shuffle `items` in place (Fisher–Yates). Written here rather than taken from
/// `rand::seq` so that a seed keeps giving the same order across `rand` releases.
pub fn shuffle<T, R: rand::Rng + ?Sized>(items: &mut [T], r: &mut R) {
    use rand::RngExt;
    for i in (1..items.len()).rev() {
        let j = r.random_range(0..=i);
        items.swap(i, j);
    }
}

/// A uniformly random permutation of `0..n`.
pub fn permutation<R: rand::Rng + ?Sized>(n: usize, r: &mut R) -> Vec<u32> {
    let mut p: Vec<u32> = (0..n as u32).collect();
    shuffle(&mut p, r);
    p
}

/// Stream purposes, so that different stages never share a stream by accident.
pub mod purpose {
    /// Graph generators.
    pub const GENERATE: u64 = 1;
    /// Sampling in graph statistics (e.g. clustering coefficient).
    pub const STATS: u64 = 2;
    /// Partitioners.
    pub const PARTITION: u64 = 3;
    /// The finite population of potential outcomes.
    pub const OUTCOME: u64 = 4;
    /// Monte Carlo replicates: the assignment ([`super::Draws`]), then the
    /// seeds and slow draws of the noise ([`super::Noise`]).
    pub const REPLICATE: u64 = 5;
    /// Auxiliary assignments for exposure probabilities.
    pub const EXPOSURE: u64 = 6;
    /// Re-randomizations for randomization inference.
    pub const RANDOMIZATION_INFERENCE: u64 = 7;
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

    #[test]
    fn same_key_same_stream_distinct_keys_differ() {
        let a: Vec<u64> = (0..4).map(|_| stream(7, &[1, 2]).random()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let x: u64 = stream(7, &[1, 2]).random();
        let y: u64 = stream(7, &[2, 1]).random();
        let z: u64 = stream(8, &[1, 2]).random();
        let w: u64 = stream(7, &[1, 2, 0]).random();
        assert!(x != y && x != z && x != w && y != z);
    }
}
