//! Small statistics shared by every layer: running moments, quantiles and
//! the ANOVA intraclass correlation.
//!
//! Quantiles have one convention, the nearest rank: the p-quantile of n
//! sorted values is the ⌈p·n⌉-th (at least the first). The one exception is
//! [`median`] of degree and size summaries, the midpoint of the two middle
//! values for even n, as graph tools report it.

/// The nearest-rank p-quantile of `sorted` (ascending, non-empty).
///
/// ```
/// assert_eq!(spillover::stats::quantile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.0);
/// assert_eq!(spillover::stats::quantile(&[1.0, 2.0, 3.0, 4.0], 0.9), 4.0);
/// ```
pub fn quantile<T: Copy>(sorted: &[T], p: f64) -> T {
    sorted[((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// The midpoint median of `sorted` (ascending, non-empty).
pub fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// Count, mean and unbiased variance.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Moments {
    /// Count.
    pub n: f64,
    /// Mean.
    pub mean: f64,
    /// Sum of squared deviations.
    pub m2: f64,
}

impl Moments {
    /// Add one value (Welford).
    pub fn push(&mut self, x: f64) {
        self.n += 1.0;
        let d = x - self.mean;
        self.mean += d / self.n;
        self.m2 += d * (x - self.mean);
    }

    /// Moments of a slice.
    pub fn of(x: &[f64]) -> Self {
        let mut m = Moments::default();
        for &v in x {
            m.push(v);
        }
        m
    }

    /// Unbiased variance (NaN for fewer than two values).
    pub fn var(&self) -> f64 {
        if self.n < 2.0 {
            f64::NAN
        } else {
            self.m2 / (self.n - 1.0)
        }
    }
}

/// ANOVA estimator of the intra-cluster correlation of `y` over `cluster`.
pub fn anova_icc(y: &[f64], cluster: &[u32], k: usize) -> Option<f64> {
    if k < 2 || y.len() <= k {
        return None;
    }
    // Per cluster: count, Σ(y − K), Σ(y − K)² with K = y[0] (no divisions in the pass).
    let shift = y[0];
    let mut sums = vec![(0.0f64, 0.0f64, 0.0f64); k];
    for (i, &v) in y.iter().enumerate() {
        let d = v - shift;
        let s = &mut sums[cluster[i] as usize];
        s.0 += 1.0;
        s.1 += d;
        s.2 += d * d;
    }
    anova_icc_from_sums(sums.into_iter(), y.len(), k)
}

/// [`anova_icc`] from each of the `k` clusters' (count, Σ(y − K), Σ(y − K)²)
/// for any constant K, over `n` users.
pub fn anova_icc_from_sums(
    sums: impl Iterator<Item = (f64, f64, f64)>,
    n: usize,
    k: usize,
) -> Option<f64> {
    if k < 2 || n <= k {
        return None;
    }
    let n = n as f64;
    let sums: Vec<(f64, f64, f64)> = sums.collect();
    let grand = sums.iter().map(|s| s.1).sum::<f64>() / n;
    let m: Vec<Moments> = sums
        .iter()
        .map(|&(c, s1, s2)| {
            let mean = if c > 0.0 { s1 / c } else { 0.0 };
            Moments {
                n: c,
                mean,
                m2: (s2 - s1 * mean).max(0.0),
            }
        })
        .collect();
    let ssb: f64 = m
        .iter()
        .map(|g| g.n * (g.mean - grand) * (g.mean - grand))
        .sum();
    let ssw: f64 = m.iter().map(|g| g.m2).sum();
    let msb = ssb / (k as f64 - 1.0);
    let msw = ssw / (n - k as f64);
    let m0 = (n - m.iter().map(|g| g.n * g.n).sum::<f64>() / n) / (k as f64 - 1.0);
    let denom = msb + (m0 - 1.0) * msw;
    (denom > 0.0).then(|| (msb - msw) / denom)
}
