//! A replicate's noise: standard normals and uniforms drawn eight streams at
//! a time.
//!
//! [`Noise`] holds eight xoshiro256++ streams stepped together (four 64-bit
//! lanes to an AVX2 register where the CPU has it) and turns their outputs
//! into standard normals by a ziggurat of 1,024 layers
//! (`ziggurat_tables.rs`, written by `scripts/ziggurat_tables.py`). A draw's layer and abscissa come from one
//! 64-bit output; the 99.6 % that pass the ziggurat's first test are kept
//! at once, with no branch per draw, and the rest are finished afterwards,
//! in position order, from a ninth stream (the replicate's own, which drew
//! its assignment): the wedge test, the tail beyond `R`, or a fresh draw.
//! Every value is an exact ziggurat draw, so the normals are independent
//! and standard normal whichever path made them.
//!
//! Both copies of the loop (the baseline and AVX2) do the same integer and
//! IEEE operations for every draw, so the values are identical bit for bit
//! whichever copy runs and on any thread count (the rare slow draws call
//! the platform's `exp` and `ln`, as `rand_distr`'s ziggurat does).

use super::ziggurat_tables::{F, LAYERS, R, X};
use super::Draws;
use rand::Rng;

/// Streams stepped together: position `8k + l` of a fill is lane `l`'s
/// `k`-th output.
const LANES: usize = 8;
/// Positions whose first-test failures are finished together.
const SUB: usize = 256;
/// Bits `0x4000…` over a 52-bit mantissa: a double in [2, 4).
const TWO: u64 = 0x4000_0000_0000_0000;

/// The noise of one replicate: eight xoshiro256++ streams stepped together
/// and a ninth for the rare draws the ziggurat's first test does not settle.
///
/// Filling a slice in pieces whose lengths are multiples of 8 gives the same
/// values as filling it at once; a piece of another length leaves the unused
/// outputs of its last step behind.
///
/// ```
/// let mut noise = spillover::rng::Noise::new(spillover::rng::draws(7, &[5, 0, 3]));
/// let mut z = [0.0; 1000];
/// noise.normals(&mut z);
/// let mean = z.iter().sum::<f64>() / 1000.0;
/// assert!(mean.abs() < 0.2);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Noise {
    /// State word `w` of lane `l` is `s[w][l]`.
    s: [[u64; LANES]; 4],
    fallback: Draws,
}

/// xoshiro256++ (Blackman & Vigna), one step of every lane: the same
/// function as `rand_xoshiro::Xoshiro256PlusPlus::next_u64` lane by lane.
#[inline(always)]
fn step(s: &mut [[u64; LANES]; 4]) -> [u64; LANES] {
    let mut out = [0u64; LANES];
    for l in 0..LANES {
        out[l] = s[0][l]
            .wrapping_add(s[3][l])
            .rotate_left(23)
            .wrapping_add(s[0][l]);
        let t = s[1][l] << 17;
        s[2][l] ^= s[0][l];
        s[3][l] ^= s[1][l];
        s[1][l] ^= s[2][l];
        s[0][l] ^= s[3][l];
        s[2][l] ^= t;
        s[3][l] = s[3][l].rotate_left(45);
    }
    out
}

/// The ziggurat's first step for one 64-bit output: layer `bits & 1023`,
/// `u` uniform on [-1, 1) from the top 52 bits, `x = u · X[layer]`, kept when
/// `|x| < X[layer + 1]` (inside the layer's rectangle).
#[inline(always)]
fn candidate(bits: u64) -> (f64, bool) {
    let (i, _, x) = layer_point(bits);
    (x, x.abs() < X[i + 1])
}

/// An output's layer, its u and its x = u · X[layer].
#[inline(always)]
fn layer_point(bits: u64) -> (usize, f64, f64) {
    let i = bits as usize & (LAYERS - 1);
    let u = f64::from_bits(TWO | (bits >> 12)) - 3.0;
    (i, u, u * X[i])
}

/// Uniform on (0, 1): 52 bits and a half, exactly representable.
fn open01(r: &mut Draws) -> f64 {
    ((r.next_u64() >> 12) as f64 + 0.5) * (1.0 / (1u64 << 52) as f64)
}

/// Uniform on [0, 1): 53 bits (written here, like [`super::shuffle`], so a
/// seed keeps its values across `rand` releases).
fn unit(r: &mut Draws) -> f64 {
    (r.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// The rest of the ziggurat for an output whose first test failed: the
/// tail (layer 0), else the wedge test with a fresh uniform, else a fresh
/// draw from `r` (the ziggurat's loop).
#[cold]
#[inline(never)]
fn finish(r: &mut Draws, mut bits: u64) -> f64 {
    loop {
        let (i, u, x) = layer_point(bits);
        if i == 0 {
            // Marsaglia's tail beyond R.
            loop {
                let t = open01(r).ln() / R;
                let y = open01(r).ln();
                if -2.0 * y >= t * t {
                    return if u < 0.0 { t - R } else { R - t };
                }
            }
        }
        if F[i + 1] + (F[i] - F[i + 1]) * unit(r) < (-0.5 * x * x).exp() {
            return x;
        }
        bits = r.next_u64();
        let (x, kept) = candidate(bits);
        if kept {
            return x;
        }
    }
}

/// The draws of a sub-block that failed the first test: their positions
/// (ascending) and bits.
struct Failed {
    at: [u16; SUB],
    bits: [u64; SUB],
    n: usize,
}

impl Failed {
    fn new() -> Failed {
        Failed {
            at: [0; SUB],
            bits: [0; SUB],
            n: 0,
        }
    }

    /// List the lanes set in `mask` of the eight draws at `at`.
    #[inline(always)]
    fn push(&mut self, mut mask: u32, at: usize, bits: &[u64; LANES]) {
        while mask != 0 {
            let l = mask.trailing_zeros() as usize;
            self.at[self.n] = (at + l) as u16;
            self.bits[self.n] = bits[l];
            self.n += 1;
            mask &= mask - 1;
        }
    }
}

impl Noise {
    /// The noise streams that follow `r`: the eight lanes seeded from its
    /// next 32 outputs (each through the SplitMix64 finalizer), and `r`
    /// itself as the ninth stream.
    pub fn new(mut r: Draws) -> Noise {
        let mut s = [[0u64; LANES]; 4];
        for l in 0..LANES {
            for w in s.iter_mut() {
                w[l] = super::mix(r.next_u64());
            }
            // xoshiro's one forbidden state (probability 2^-256).
            if s.iter().all(|w| w[l] == 0) {
                s[0][l] = 1;
            }
        }
        Noise { s, fallback: r }
    }

    /// Fill `out` with independent uniforms on [0, 1): 53 bits of each output.
    ///
    /// # Complexity
    /// O(out.len()).
    pub fn uniforms(&mut self, out: &mut [f64]) {
        let scale = 1.0 / (1u64 << 53) as f64;
        let mut s = self.s;
        for group in out.chunks_mut(LANES) {
            let bits = step(&mut s);
            for (v, b) in group.iter_mut().zip(bits) {
                *v = (b >> 11) as f64 * scale;
            }
        }
        self.s = s;
    }

    /// Fill `out` with independent standard normals.
    ///
    /// # Complexity
    /// O(out.len()); about 0.4 % of draws take the ziggurat's slow path.
    pub fn normals(&mut self, out: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        if crate::simd::avx2() {
            // SAFETY: this CPU has AVX2.
            unsafe { self.normals_avx2(out) };
            return;
        }
        self.normals_portable(out);
    }

    /// [`Noise::normals`] in plain Rust.
    fn normals_portable(&mut self, out: &mut [f64]) {
        let mut s = self.s;
        let mut failed = Failed::new();
        for sub in out.chunks_mut(SUB) {
            failed.n = 0;
            for (c, group) in sub.chunks_mut(LANES).enumerate() {
                let bits = step(&mut s);
                for (l, v) in group.iter_mut().enumerate() {
                    let (x, kept) = candidate(bits[l]);
                    *v = x;
                    // Written for every draw, kept (by counting it) for a failed one.
                    failed.at[failed.n] = (c * LANES + l) as u16;
                    failed.bits[failed.n] = bits[l];
                    failed.n += usize::from(!kept);
                }
            }
            self.finish_failed(sub, &failed);
        }
        self.s = s;
    }

    /// Finish the draws listed in `failed` (ascending positions of `sub`)
    /// from the ninth stream.
    fn finish_failed(&mut self, sub: &mut [f64], failed: &Failed) {
        for (&p, &bits) in failed.at[..failed.n].iter().zip(&failed.bits) {
            sub[usize::from(p)] = finish(&mut self.fallback, bits);
        }
    }

    /// [`Noise::normals_portable`] with AVX2: four lanes to a register and
    /// the layer table read by gathers; the same operations draw by draw.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn normals_avx2(&mut self, out: &mut [f64]) {
        use std::arch::x86_64::*;
        // Lanes 0–3 and 4–7 of each state word.
        let load = |w: &[u64; LANES], h: usize| {
            // SAFETY: 4 u64 at 4h within an 8-element array.
            unsafe { _mm256_loadu_si256(w.as_ptr().add(4 * h).cast()) }
        };
        let mut st = [[_mm256_setzero_si256(); 2]; 4];
        for (v, w) in st.iter_mut().zip(&self.s) {
            *v = [load(w, 0), load(w, 1)];
        }
        let two = _mm256_set1_epi64x(TWO as i64);
        let three = _mm256_set1_pd(3.0);
        let layer = _mm256_set1_epi64x((LAYERS - 1) as i64);
        let magnitude = _mm256_castsi256_pd(_mm256_set1_epi64x(i64::MAX));
        let (x0, x1) = (X.as_ptr(), X[1..].as_ptr());
        // Eight draws: their values (those of failed draws to be replaced),
        // their bits and a mask of the failed lanes.
        let mut group = |dst: *mut f64, raw: &mut [u64; LANES]| -> u32 {
            let mut failed = 0u32;
            for (h, lanes) in [0usize, 1].into_iter().zip([0u32, 4]) {
                let [s0, s1, s2, s3] = [st[0][h], st[1][h], st[2][h], st[3][h]];
                let a = _mm256_add_epi64(s0, s3);
                let rot = _mm256_or_si256(_mm256_slli_epi64::<23>(a), _mm256_srli_epi64::<41>(a));
                let bits = _mm256_add_epi64(rot, s0);
                let t = _mm256_slli_epi64::<17>(s1);
                let s2 = _mm256_xor_si256(s2, s0);
                let s3 = _mm256_xor_si256(s3, s1);
                let s1 = _mm256_xor_si256(s1, s2);
                let s0 = _mm256_xor_si256(s0, s3);
                let s2 = _mm256_xor_si256(s2, t);
                let s3 = _mm256_or_si256(_mm256_slli_epi64::<45>(s3), _mm256_srli_epi64::<19>(s3));
                [st[0][h], st[1][h], st[2][h], st[3][h]] = [s0, s1, s2, s3];
                let i = _mm256_and_si256(bits, layer);
                // SAFETY: i < LAYERS, and X has LAYERS + 1 entries.
                let (xi, xi1) = unsafe {
                    (
                        _mm256_i64gather_pd::<8>(x0, i),
                        _mm256_i64gather_pd::<8>(x1, i),
                    )
                };
                let mantissa = _mm256_or_si256(_mm256_srli_epi64::<12>(bits), two);
                let u = _mm256_sub_pd(_mm256_castsi256_pd(mantissa), three);
                let x = _mm256_mul_pd(u, xi);
                let kept = _mm256_cmp_pd::<_CMP_LT_OQ>(_mm256_and_pd(x, magnitude), xi1);
                // SAFETY: the caller gives 8 writable doubles.
                unsafe { _mm256_storeu_pd(dst.add(4 * h), x) };
                let mask = !(_mm256_movemask_pd(kept) as u32) & 0xf;
                if mask != 0 {
                    // SAFETY: 4 u64 at 4h within an 8-element array.
                    unsafe { _mm256_storeu_si256(raw.as_mut_ptr().add(4 * h).cast(), bits) };
                }
                failed |= mask << lanes;
            }
            failed
        };
        let mut failed = Failed::new();
        let mut raw = [0u64; LANES];
        for sub in out.chunks_mut(SUB) {
            failed.n = 0;
            let whole = sub.len() / LANES * LANES;
            for c in (0..whole).step_by(LANES) {
                let mask = group(sub[c..c + LANES].as_mut_ptr(), &mut raw);
                failed.push(mask, c, &raw);
            }
            if whole < sub.len() {
                let mut tmp = [0.0f64; LANES];
                let mask = group(tmp.as_mut_ptr(), &mut raw);
                let k = sub.len() - whole;
                sub[whole..].copy_from_slice(&tmp[..k]);
                // The unused lanes' draws are dropped, failed or not.
                failed.push(mask & ((1 << k) - 1), whole, &raw);
            }
            self.finish_failed(sub, &failed);
        }
        let store = |w: &mut [u64; LANES], h: usize, v: __m256i| {
            // SAFETY: 4 u64 at 4h within an 8-element array.
            unsafe { _mm256_storeu_si256(w.as_mut_ptr().add(4 * h).cast(), v) }
        };
        for (w, v) in self.s.iter_mut().zip(st) {
            store(w, 0, v[0]);
            store(w, 1, v[1]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::ziggurat_tables::V;
    use super::*;
    use rand::SeedableRng;

    /// Each lane is xoshiro256++ exactly: `rand_xoshiro`'s generator seeded
    /// with the lane's state gives the same outputs.
    #[test]
    fn each_lane_is_xoshiro256_plus_plus() {
        let noise = Noise::new(super::super::draws(3, &[1]));
        let mut s = noise.s;
        let mut refs: Vec<Draws> = (0..LANES)
            .map(|l| {
                let mut seed = [0u8; 32];
                for w in 0..4 {
                    seed[8 * w..8 * w + 8].copy_from_slice(&s[w][l].to_le_bytes());
                }
                Draws::from_seed(seed)
            })
            .collect();
        for _ in 0..1000 {
            let out = step(&mut s);
            for (l, r) in refs.iter_mut().enumerate() {
                assert_eq!(out[l], r.next_u64());
            }
        }
    }

    /// The reference: lane by lane, each output's first test and, where it
    /// fails, [`finish`] in position order.
    fn reference(noise: &mut Noise, n: usize) -> Vec<f64> {
        let mut out = vec![0.0; n];
        let mut failed = Vec::new();
        for g in 0..n.div_ceil(LANES) {
            let bits = step(&mut noise.s);
            for l in 0..LANES.min(n - g * LANES) {
                let (x, kept) = candidate(bits[l]);
                out[g * LANES + l] = x;
                if !kept {
                    failed.push((g * LANES + l, bits[l]));
                }
            }
        }
        for (p, bits) in failed {
            out[p] = finish(&mut noise.fallback, bits);
        }
        out
    }

    fn same_bits(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
    }

    /// Both copies of the loop give the reference's values bit for bit, for
    /// lengths around the group and the sub-block, and in pieces.
    #[test]
    fn normals_equal_the_reference_on_every_copy() {
        for n in [0, 1, 7, 8, 9, 255, 256, 257, 263, 1024, 3001] {
            let start = Noise::new(super::super::draws(5, &[n as u64]));
            let want = reference(&mut start.clone(), n);
            let mut got = vec![0.0; n];
            let mut a = start.clone();
            a.normals_portable(&mut got);
            assert!(same_bits(&got, &want), "portable, n = {n}");
            let mut b = start.clone();
            b.normals(&mut got);
            assert!(same_bits(&got, &want), "dispatched, n = {n}");
            // Pieces of multiples of 8 continue the same streams.
            let mut c = start.clone();
            let mut pieces = vec![0.0; n];
            let cut = (n / 3) / LANES * LANES;
            c.normals(&mut pieces[..cut]);
            c.normals(&mut pieces[cut..]);
            assert!(same_bits(&pieces, &want), "pieces, n = {n}");
            // Both copies leave every stream in the same state.
            assert_eq!(a, b, "after n = {n}");
        }
    }

    /// A draw that fails in the last, partial group of a fill: the lanes
    /// past the fill's end are dropped and the others finished, on both
    /// copies. (Seeds are searched until the failure is where it is wanted.)
    #[test]
    fn failures_in_a_partial_last_group_are_finished_or_dropped() {
        // The first seed whose noise fails the first test at lane `lane` of
        // step `g`, and nowhere else in steps 0..=g.
        let find = |g: usize, lane: usize| {
            (0u64..)
                .map(|k| Noise::new(super::super::draws(21, &[g as u64, lane as u64, k])))
                .find(|noise| {
                    let mut s = noise.s;
                    let fails: Vec<(usize, usize)> = (0..=g)
                        .flat_map(|i| {
                            let bits = step(&mut s);
                            (0..LANES)
                                .filter_map(move |l| (!candidate(bits[l]).1).then_some((i, l)))
                        })
                        .collect();
                    fails == [(g, lane)]
                })
                .unwrap()
        };
        for (g, lane) in [(0, 7), (0, 2), (32, 7), (32, 3)] {
            let start = find(g, lane);
            for k in 1..=LANES {
                let n = g * LANES + k;
                let want = reference(&mut start.clone(), n);
                let (mut a, mut b) = (start.clone(), start.clone());
                let (mut x, mut y) = (vec![0.0; n], vec![0.0; n]);
                a.normals_portable(&mut x);
                b.normals(&mut y);
                assert!(same_bits(&x, &want), "portable, step {g}, n = {n}");
                assert!(same_bits(&y, &want), "dispatched, step {g}, n = {n}");
                assert_eq!(a, b, "step {g}, n = {n}");
                // The failed draw took from the ninth stream exactly when it
                // lies inside the fill.
                assert_eq!(a.fallback == start.fallback, k <= lane, "step {g}, n = {n}");
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_normals_equal_the_portable_loop() {
        if !crate::simd::avx2() {
            return;
        }
        for n in [5, 64, 300, 4099] {
            let start = Noise::new(super::super::draws(8, &[n as u64]));
            let (mut a, mut b) = (start.clone(), start);
            let (mut x, mut y) = (vec![0.0; n], vec![0.0; n]);
            a.normals_portable(&mut x);
            // SAFETY: checked above.
            unsafe { b.normals_avx2(&mut y) };
            assert!(same_bits(&x, &y), "n = {n}");
            assert_eq!(a, b);
        }
    }

    /// The tables: X falls from V / f(R) through R to 0, F = exp(-X²/2),
    /// and every layer has area V (the base strip with the tail's area).
    #[test]
    fn every_layer_has_the_same_area() {
        assert_eq!(X.len(), LAYERS + 1);
        assert_eq!(X[1], R);
        assert_eq!(X[LAYERS], 0.0);
        assert!(X.windows(2).all(|w| w[0] > w[1]));
        let eps = f64::EPSILON;
        for (x, f) in X.iter().zip(&F) {
            // One rounding each in the table, `exp` and x·x (which moves
            // the exponent by up to ε·x²/2).
            assert!(
                (f - (-0.5 * x * x).exp()).abs() <= (2.0 + x * x) * eps * f,
                "F at {x}"
            );
        }
        // The tail's area, ∫_R^∞ exp(-x²/2) dx = f(R) / (R + 1/(R + 2/(R + …))),
        // Laplace's continued fraction (converged long before 200 terms at
        // R ≈ 4), to a few roundings.
        let cf = (1..200).rev().fold(R, |acc, k| R + f64::from(k) / acc);
        let base = R * F[1] + F[1] / cf;
        assert!(
            (base - V).abs() <= 16.0 * eps * V,
            "base strip {base} vs {V}"
        );
        assert!((X[0] * F[1] - V).abs() <= 4.0 * eps * V);
        for i in 1..LAYERS {
            // F[i+1] − F[i] loses the digits the two share: its rounding
            // error is up to 2ε(F[i] + F[i+1]), against a difference of V / X[i].
            let a = X[i] * (F[i + 1] - F[i]);
            let tol = 2.0 * eps * (F[i] + F[i + 1]) * X[i] + 4.0 * eps * V;
            assert!((a - V).abs() <= tol, "layer {i}: {a} vs {V}");
        }
    }

    /// The draws are standard normal: the Kolmogorov–Smirnov distance of
    /// 400,000 draws stays under the 0.1 % critical value, the sample moments
    /// within 4 standard errors, and the tail beyond R (where the slow path
    /// works) is hit as often as it should be, within 4 binomial SEs.
    #[test]
    fn draws_are_standard_normal() {
        let n = 400_000;
        let mut z = vec![0.0; n];
        Noise::new(super::super::draws(11, &[])).normals(&mut z);
        let nf = n as f64;
        let mean = z.iter().sum::<f64>() / nf;
        let var = z.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (nf - 1.0);
        let kurt = z.iter().map(|v| v.powi(4)).sum::<f64>() / nf;
        assert!(mean.abs() < 4.0 / nf.sqrt(), "mean {mean}");
        assert!(
            (var - 1.0).abs() < 4.0 * (2.0 / nf).sqrt(),
            "variance {var}"
        );
        assert!(
            (kurt - 3.0).abs() < 4.0 * (96.0 / nf).sqrt(),
            "fourth moment {kurt}"
        );
        let cdf = normal_cdf;
        let d = ks(z.clone(), cdf);
        assert!(d < 1.95 / nf.sqrt(), "KS distance {d}");
        // Beyond |R| and beyond 2.5: the tail and the wedge paths.
        for t in [2.5, 3.5, R] {
            let p = 2.0 * cdf(-t);
            let hits = z.iter().filter(|v| v.abs() > t).count() as f64;
            let se = (nf * p * (1.0 - p)).sqrt();
            assert!(
                (hits - nf * p).abs() < 4.0 * se,
                "beyond {t}: {hits} vs {}",
                nf * p
            );
        }
    }

    /// The wedge test: a draw of layer i that fails the first test lies in
    /// the wedge between X[i+1] and X[i], and [`finish`] keeps it with
    /// probability (area under the density in the wedge) / (the wedge's
    /// rectangle), by Simpson's rule; within 4 binomial SEs.
    #[test]
    fn the_wedge_test_keeps_draws_in_proportion_to_the_density() {
        let pdf = |x: f64| (-0.5 * x * x).exp();
        let mut r = super::super::draws(4, &[]);
        for i in [1usize, 2, 300, 1000, 1023] {
            let (lo, hi) = (X[i + 1], X[i]);
            let m = 2000;
            let h = (hi - lo) / m as f64;
            let under = (0..=m)
                .map(|k| {
                    let w = if k == 0 || k == m {
                        1.0
                    } else {
                        [2.0, 4.0][k % 2]
                    };
                    w * (pdf(lo + k as f64 * h) - F[i])
                })
                .sum::<f64>()
                * h
                / 3.0;
            let p = under / ((hi - lo) * (F[i + 1] - F[i]));
            let (mut tried, mut kept) = (0u32, 0u32);
            while tried < 20_000 {
                let bits = (r.next_u64() & !1023) | i as u64;
                let (x, first) = candidate(bits);
                if first {
                    continue;
                }
                tried += 1;
                kept += u32::from(finish(&mut r, bits).to_bits() == x.to_bits());
            }
            let t = f64::from(tried);
            let se = (t * p * (1.0 - p)).sqrt();
            assert!(
                (f64::from(kept) - t * p).abs() < 4.0 * se,
                "layer {i}: kept {kept} of {tried}, expected {}",
                t * p
            );
        }
    }

    /// Kolmogorov–Smirnov distance of `v` from the distribution `cdf`.
    fn ks(mut v: Vec<f64>, cdf: impl Fn(f64) -> f64) -> f64 {
        v.sort_by(f64::total_cmp);
        let n = v.len() as f64;
        v.iter()
            .enumerate()
            .map(|(k, &x)| {
                let c = cdf(x);
                (c - k as f64 / n).abs().max(((k + 1) as f64 / n - c).abs())
            })
            .fold(0.0, f64::max)
    }

    fn normal_cdf(x: f64) -> f64 {
        0.5 * statrs::function::erf::erfc(-x / std::f64::consts::SQRT_2)
    }

    /// What [`finish`] gives for draws that failed the first test, forced
    /// by choosing their bits: in the base layer, the tail beyond R (|v| − R
    /// distributed as |Z| − R given |Z| > R, each sign half the time); in
    /// the other layers, a draw it does not keep is a fresh standard normal.
    /// KS distances under the 0.1 % critical value, the sign count within 4
    /// binomial SEs.
    #[test]
    fn finished_draws_follow_the_tail_and_the_normal() {
        let mut r = super::super::draws(6, &[]);
        let (mut tail, mut positive) = (Vec::new(), 0u32);
        while tail.len() < 20_000 {
            let bits = r.next_u64() & !(LAYERS as u64 - 1);
            if candidate(bits).1 {
                continue;
            }
            let v = finish(&mut r, bits);
            positive += u32::from(v > 0.0);
            tail.push(v.abs());
        }
        let n = tail.len() as f64;
        assert!((f64::from(positive) - n / 2.0).abs() < 4.0 * (n / 4.0).sqrt());
        let d = ks(tail, |t| {
            if t < R {
                0.0
            } else {
                (normal_cdf(-R) - normal_cdf(-t)) / normal_cdf(-R)
            }
        });
        assert!(d < 1.95 / n.sqrt(), "tail KS distance {d}");
        let mut fresh = Vec::new();
        for (k, i) in (0..).zip([1usize, 500, 1023].iter().cycle()) {
            if fresh.len() >= 20_000 || k > 10_000_000 {
                break;
            }
            let bits = (r.next_u64() & !(LAYERS as u64 - 1)) | *i as u64;
            let (x, first) = candidate(bits);
            if first {
                continue;
            }
            let v = finish(&mut r, bits);
            if v.to_bits() != x.to_bits() {
                fresh.push(v);
            }
        }
        let n = fresh.len() as f64;
        let d = ks(fresh, normal_cdf);
        assert!(d < 1.95 / n.sqrt(), "restart KS distance {d}");
    }

    #[test]
    fn uniforms_lie_in_the_unit_interval_with_the_right_mean() {
        let n = 100_000;
        let mut u = vec![0.0; n];
        Noise::new(super::super::draws(2, &[])).uniforms(&mut u);
        assert!(u.iter().all(|&v| (0.0..1.0).contains(&v)));
        let mean = u.iter().sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 4.0 * (1.0 / 12.0 / n as f64).sqrt());
    }
}
