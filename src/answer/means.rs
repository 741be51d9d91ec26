//! Difference in means with the naive i.i.d. (Welch) standard error, and the
//! two-sample t-test on cluster means (G − 2 df).

use super::{t_inference, Failure, Outcome};
use crate::stats::Moments;

/// Welch's two-sample t-test of mean(treated) − mean(control).
pub fn welch(t: &Moments, c: &Moments, alpha: f64) -> Outcome {
    if t.n < 1.0 || c.n < 1.0 {
        return Err(Failure::EmptyArm);
    }
    if t.n < 2.0 || c.n < 2.0 {
        return Err(Failure::OneClusterInArm);
    }
    let (vt, vc) = (t.var() / t.n, c.var() / c.n);
    let se = (vt + vc).sqrt();
    let df = (vt + vc).powi(2) / (vt * vt / (t.n - 1.0) + vc * vc / (c.n - 1.0));
    t_inference(t.mean - c.mean, se, df, alpha)
}

/// Student's two-sample t-test with pooled variance and n_t + n_c − 2 df.
pub fn student(t: &Moments, c: &Moments, alpha: f64) -> Outcome {
    if t.n < 1.0 || c.n < 1.0 {
        return Err(Failure::EmptyArm);
    }
    if t.n < 2.0 || c.n < 2.0 {
        return Err(Failure::OneClusterInArm);
    }
    let df = t.n + c.n - 2.0;
    let pooled = (t.m2 + c.m2) / df;
    let se = (pooled * (1.0 / t.n + 1.0 / c.n)).sqrt();
    t_inference(t.mean - c.mean, se, df, alpha)
}

/// Shifted sums Σ(y − K) and Σ(y − K)² for a fast single pass without
/// divisions; K (the first value seen overall) keeps them well conditioned.
#[derive(Debug, Clone, Copy, Default)]
struct ShiftedSums {
    n: f64,
    s1: f64,
    s2: f64,
}

impl ShiftedSums {
    #[inline]
    fn push(&mut self, d: f64) {
        self.n += 1.0;
        self.s1 += d;
        self.s2 += d * d;
    }

    fn moments(&self, shift: f64) -> Moments {
        if self.n == 0.0 {
            return Moments::default();
        }
        let mean = self.s1 / self.n;
        Moments {
            n: self.n,
            mean: shift + mean,
            m2: (self.s2 - self.s1 * mean).max(0.0),
        }
    }
}

/// Moments of `y` in the treated (`z == 1`) and control arms, in one
/// branch-free pass (sums over all units and over treated units; control = all − treated).
pub fn arm_moments(y: &[f64], z: &[u8]) -> (Moments, Moments) {
    let shift = y.first().copied().unwrap_or(0.0);
    let (mut all, mut treated) = (ShiftedSums::default(), ShiftedSums::default());
    for (&v, &zi) in y.iter().zip(z) {
        let d = v - shift;
        let t = f64::from(zi);
        all.push(d);
        treated.n += t;
        treated.s1 += t * d;
        treated.s2 += t * d * d;
    }
    let control = ShiftedSums {
        n: all.n - treated.n,
        s1: all.s1 - treated.s1,
        s2: all.s2 - treated.s2,
    };
    (treated.moments(shift), control.moments(shift))
}

/// Point estimates only, for randomization inference: the difference in means.
pub fn dm_point(y: &[f64], z: &[u8]) -> Option<f64> {
    let (t, c) = arm_moments(y, z);
    (t.n > 0.0 && c.n > 0.0).then_some(t.mean - c.mean)
}

/// Point estimate of [`cluster_means`]: difference of the arms' mean cluster means.
pub fn cluster_means_point(y: &[f64], z: &[u8], cluster: &[u32], clusters: usize) -> Option<f64> {
    let (t, c) = cluster_arm_means(y, z, cluster, clusters);
    (t.n > 0.0 && c.n > 0.0).then_some(t.mean - c.mean)
}

/// Moments of the cluster means in each arm (a cluster's arm is its units' majority).
fn cluster_arm_means(y: &[f64], z: &[u8], cluster: &[u32], clusters: usize) -> (Moments, Moments) {
    let (sum, count, treated) = cluster_sums(y, z, cluster, clusters);
    let (mut t, mut c) = (Moments::default(), Moments::default());
    for g in 0..clusters {
        if count[g] > 0 {
            let m = sum[g] / count[g] as f64;
            if 2 * treated[g] >= count[g] {
                t.push(m)
            } else {
                c.push(m)
            }
        }
    }
    (t, c)
}

/// Difference in means with the naive i.i.d. standard error (Welch).
pub fn dm_naive(y: &[f64], z: &[u8], alpha: f64) -> Outcome {
    let (t, c) = arm_moments(y, z);
    welch(&t, &c, alpha)
}

/// Two-sample t-test on cluster means (G − 2 df). `cluster` holds dense ids
/// below `clusters`; treatment must be constant within a cluster (a cluster's
/// arm is taken from its units' majority).
pub fn cluster_means(y: &[f64], z: &[u8], cluster: &[u32], clusters: usize, alpha: f64) -> Outcome {
    let (t, c) = cluster_arm_means(y, z, cluster, clusters);
    student(&t, &c, alpha)
}

/// Per cluster: the sum of `y`, the number of users and the number treated.
pub(crate) fn cluster_sums(
    y: &[f64],
    z: &[u8],
    cluster: &[u32],
    clusters: usize,
) -> (Vec<f64>, Vec<u32>, Vec<u32>) {
    let mut sum = vec![0.0f64; clusters];
    let mut count = vec![0u32; clusters];
    let mut treated = vec![0u32; clusters];
    for i in 0..y.len() {
        let g = cluster[i] as usize;
        sum[g] += y[i];
        count[g] += 1;
        treated[g] += z[i] as u32;
    }
    (sum, count, treated)
}
