//! Which copy of a hot loop this CPU runs.
//!
//! This module owns the run-time check behind the replicate's few loops that
//! are compiled twice, for the x86_64 baseline (SSE2) and for AVX2: the
//! outcomes of a block of users, its contamination sums, exposures from
//! treated in-neighbour counts, the normals of its noise, the sweep's
//! byte-lane sums and the arm sums of its outcomes. Both copies do
//! the same integer and IEEE operations in the same order for every user (no
//! fused multiply-add, no reassociation), so results are identical bit for
//! bit whichever copy runs; tests in each module compare the copies.

/// Whether this CPU runs the AVX2 copies (the standard library caches the
/// check, so this is a load and a test).
#[inline]
pub fn avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
