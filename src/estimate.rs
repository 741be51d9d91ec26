//! The answer strategy: estimators an analyst would run on one experiment.
//!
//! This module owns [`Estimate`] (value, standard error, degrees of freedom,
//! confidence interval, p-value), [`Failure`] (why an estimator could not be
//! computed on a replicate) and the estimators themselves:
//!
//! - difference in means with the naive i.i.d. (Welch) standard error;
//! - OLS with the cluster-robust **CR2** variance (Bell & McCaffrey 2002;
//!   Pustejovsky & Tipton 2018) and Bell–McCaffrey/Satterthwaite degrees of
//!   freedom, used for the difference in means at the randomization unit, for
//!   the linear-in-means regression adjustment (global effect β_z + f·β_e,
//!   f the share of users with in-neighbours) and for CUPED;
//! - a two-sample t-test on cluster means with G − 2 degrees of freedom.
//!
//! Designs are analysed as they were randomized ([`Blocking`]): under
//! stratified assignment the regression estimators absorb stratum fixed
//! effects (CR2 and Bell–McCaffrey df from the full hat matrix) and the
//! cluster-means test is blocked; under matched pairs the difference in means
//! and CUPED use the size-weighted paired estimator and the cluster-means
//! test the paired t-test (pairs − 1 df), the regression pair fixed effects.
//!
//! CR2 is computed from per-cluster sufficient statistics (X_gᵀX_g and X_gᵀe_g),
//! with the cluster's leverage block handled through the eigen-decomposition of
//! a P×P matrix, so its cost is linear in units whatever the cluster sizes.
//! Inference uses Student t quantiles with the stated degrees of freedom.

use nalgebra::{SMatrix, SVector};
use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

/// One estimate with its inference.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    /// Point estimate.
    pub value: f64,
    /// Standard error.
    pub se: f64,
    /// Degrees of freedom of the t reference distribution.
    pub df: f64,
    /// Lower end of the 1 − α confidence interval.
    pub ci_low: f64,
    /// Upper end of the 1 − α confidence interval.
    pub ci_high: f64,
    /// Two-sided p-value for H0: effect = 0.
    pub p_value: f64,
}

/// Why an estimator could not be computed on a replicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Failure {
    /// An arm has no units.
    EmptyArm,
    /// An arm has fewer than two clusters (or units): no variance estimate.
    OneClusterInArm,
    /// The regression design matrix is singular (e.g. no variation in exposure).
    Singular,
    /// The standard error is zero or not finite.
    DegenerateSe,
    /// No unit is in one of the two exposure conditions.
    EmptyCondition,
}

impl Failure {
    /// Short description for reports.
    pub fn describe(&self) -> &'static str {
        match self {
            Failure::EmptyArm => "an arm has no units",
            Failure::OneClusterInArm => "an arm has fewer than two clusters",
            Failure::Singular => "singular regression",
            Failure::DegenerateSe => "zero or undefined standard error",
            Failure::EmptyCondition => "no unit in an exposure condition",
        }
    }
}

/// Result of one estimator on one replicate.
pub type Outcome = Result<Estimate, Failure>;

/// t-based inference for `value` with standard error `se` and `df` degrees of freedom.
/// An infinite `df` means the standard normal reference.
pub fn t_inference(value: f64, se: f64, df: f64, alpha: f64) -> Outcome {
    if !(se.is_finite() && se > 0.0 && df > 0.0 && value.is_finite()) {
        return Err(Failure::DegenerateSe);
    }
    if df.is_infinite() {
        let z = statrs::distribution::Normal::new(0.0, 1.0).map_err(|_| Failure::DegenerateSe)?;
        let q = z.inverse_cdf(1.0 - alpha / 2.0);
        return Ok(Estimate {
            value,
            se,
            df,
            ci_low: value - q * se,
            ci_high: value + q * se,
            p_value: (2.0 * z.sf((value / se).abs())).clamp(0.0, 1.0),
        });
    }
    let t = StudentsT::new(0.0, 1.0, df).map_err(|_| Failure::DegenerateSe)?;
    let q = t.inverse_cdf(1.0 - alpha / 2.0);
    let p = 2.0 * t.sf((value / se).abs());
    Ok(Estimate {
        value,
        se,
        df,
        ci_low: value - q * se,
        ci_high: value + q * se,
        p_value: p.clamp(0.0, 1.0),
    })
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
    let mut sum = vec![0.0f64; clusters];
    let mut count = vec![0u32; clusters];
    let mut treated = vec![0u32; clusters];
    for i in 0..y.len() {
        let g = cluster[i] as usize;
        sum[g] += y[i];
        count[g] += 1;
        treated[g] += z[i] as u32;
    }
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

/// Point estimate of [`regression`]: β_z + f·β_e of OLS on [1, z, e], with
/// `f` the share of users that have (in-)neighbours.
pub fn regression_point(y: &[f64], z: &[u8], e: &[f64], f: f64) -> Option<f64> {
    let mut xtx = SMatrix::<f64, 3, 3>::zeros();
    let mut xty = SVector::<f64, 3>::zeros();
    for i in 0..y.len() {
        let x = SVector::<f64, 3>::new(1.0, z[i] as f64, e[i]);
        xtx += x * x.transpose();
        xty += x * y[i];
    }
    let b = xtx.try_inverse()? * xty;
    let v = b[1] + f * b[2];
    v.is_finite().then_some(v)
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

/// OLS of `y` on the P regressors `x(i)` with a CR2 standard error clustered
/// by `cluster` (dense ids below `clusters`; pass `clusters == y.len()` with
/// `cluster[i] == i` for heteroskedasticity-robust HC2) and Bell–McCaffrey
/// degrees of freedom, for the contrast `c'β`.
pub fn ols_cr2<const P: usize>(
    y: &[f64],
    x: impl Fn(usize) -> [f64; P],
    cluster: &[u32],
    clusters: usize,
    contrast: [f64; P],
    alpha: f64,
) -> Outcome {
    type M<const P: usize> = SMatrix<f64, P, P>;
    type V<const P: usize> = SVector<f64, P>;
    let n = y.len();
    let mut xtx = M::<P>::zeros();
    let mut xty = V::<P>::zeros();
    for (i, &yi) in y.iter().enumerate() {
        let xi = V::<P>::from(x(i));
        xtx += xi * xi.transpose();
        xty += xi * yi;
    }
    let Some(b) = xtx.try_inverse() else {
        return Err(Failure::Singular);
    };
    // Guard against near-singular designs (e.g. a constant regressor).
    if !b.iter().all(|v| v.is_finite()) || (b * xtx - M::<P>::identity()).abs().max() > 1e-6 {
        return Err(Failure::Singular);
    }
    let beta = b * xty;
    let c = V::<P>::from(contrast);
    let bc = b * c;
    let value = c.dot(&beta);
    let Some(chol) = b.cholesky() else {
        return Err(Failure::Singular);
    };
    let l = chol.l();

    // Streaming sums over clusters.
    let mut var = 0.0; // Σ q_g²
    let (mut sum_d, mut sum_tbt, mut sum_d2, mut sum_dtbt) = (0.0, 0.0, 0.0, 0.0);
    let mut ttt = M::<P>::zeros();
    let mut bad = false;
    let mut add = |mg: &M<P>, sg: &V<P>| {
        // Nonzero eigen-structure of the leverage block H_gg = X_g B X_gᵀ.
        let s = l.transpose() * mg * l;
        let (mut a_s, mut a_m, mut a2_m) = (*sg, *mg, *mg);
        // A single unit (HC2): H_gg = h = xᵀBx has one eigenvalue, no decomposition needed.
        let eig = nalgebra::DMatrix::from_iterator(P, P, s.iter().copied()).symmetric_eigen();
        for k in 0..P {
            let lam = eig.eigenvalues[k];
            if lam <= 1e-12 {
                continue;
            }
            if lam >= 1.0 - 1e-10 {
                bad = true;
                return;
            }
            let w = V::<P>::from_iterator(eig.eigenvectors.column(k).iter().copied());
            let ml = mg * (l * w); // X_gᵀ u_k · sqrt(λ)
            let f1 = 1.0 / (1.0 - lam).sqrt() - 1.0;
            let f2 = 1.0 / (1.0 - lam) - 1.0;
            let proj = (l * w).dot(sg); // u_kᵀ e · sqrt(λ)
            a_s += ml * (f1 * proj / lam);
            a_m += ml * ml.transpose() * (f1 / lam);
            a2_m += ml * ml.transpose() * (f2 / lam);
        }
        let q = bc.dot(&a_s);
        var += q * q;
        let t = a_m * bc;
        let d = bc.dot(&(a2_m * bc));
        let tbt = t.dot(&(b * t));
        sum_d += d;
        sum_tbt += tbt;
        sum_d2 += d * d;
        sum_dtbt += d * tbt;
        ttt += t * t.transpose();
    };
    if clusters == n && cluster.iter().enumerate().all(|(i, &c)| c as usize == i) {
        // One unit per cluster (HC2): the leverage block is the scalar h = xᵀBx.
        for (i, &yi) in y.iter().enumerate() {
            let xi = V::<P>::from(x(i));
            let e = yi - xi.dot(&beta);
            let h = xi.dot(&(b * xi));
            if h >= 1.0 - 1e-10 {
                bad = true;
                break;
            }
            let xbc = xi.dot(&bc);
            let q = xbc * e / (1.0 - h).sqrt();
            var += q * q;
            let t = xi * (xbc / (1.0 - h).sqrt());
            let d = xbc * xbc / (1.0 - h);
            let tbt = t.dot(&(b * t));
            sum_d += d;
            sum_tbt += tbt;
            sum_d2 += d * d;
            sum_dtbt += d * tbt;
            ttt += t * t.transpose();
        }
    } else {
        let mut mg = vec![M::<P>::zeros(); clusters];
        let mut sg = vec![V::<P>::zeros(); clusters];
        for (i, &yi) in y.iter().enumerate() {
            let xi = V::<P>::from(x(i));
            let g = cluster[i] as usize;
            mg[g] += xi * xi.transpose();
            sg[g] += xi * (yi - xi.dot(&beta));
        }
        for g in 0..clusters {
            add(&mg[g], &sg[g]);
        }
    }
    if bad {
        return Err(Failure::OneClusterInArm);
    }
    let bt = b * ttt;
    let tr = sum_d - sum_tbt;
    let tr2 = sum_d2 - 2.0 * sum_dtbt + (bt * bt).trace();
    let df = tr * tr / tr2;
    t_inference(value, var.sqrt(), df, alpha)
}

/// How the randomization was restricted, so the analysis can follow it
/// ("analyse as you randomize").
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum Blocking<'a> {
    /// Complete or Bernoulli randomization: no restriction.
    #[default]
    None,
    /// Clusters randomized within strata: `stratum[c]` is cluster c's stratum
    /// (dense ids). Regression estimators absorb stratum fixed effects.
    Strata(&'a [u32]),
    /// One cluster of each pair treated (a leftover cluster, randomized by a
    /// coin, is not in any pair and is left out of paired analyses).
    Pairs(&'a [(u32, u32)]),
}

impl<'a> Blocking<'a> {
    /// Stratum per cluster for a fixed-effects regression: strata as given,
    /// pairs as two-cluster strata (a leftover cluster its own stratum).
    /// `None` without blocking.
    pub fn strata(&self, clusters: usize) -> Option<std::borrow::Cow<'a, [u32]>> {
        match *self {
            Blocking::None => None,
            Blocking::Strata(s) => Some(std::borrow::Cow::Borrowed(s)),
            Blocking::Pairs(pairs) => {
                let mut s = vec![u32::MAX; clusters];
                for (p, &(a, b)) in pairs.iter().enumerate() {
                    s[a as usize] = p as u32;
                    s[b as usize] = p as u32;
                }
                let unpaired = s.iter_mut().filter(|v| **v == u32::MAX);
                for (next, v) in (pairs.len() as u32..).zip(unpaired) {
                    *v = next;
                }
                Some(std::borrow::Cow::Owned(s))
            }
        }
    }
}

/// OLS with stratum fixed effects absorbed (clusters nested in strata): the
/// first regressor of `x` must be the intercept and `contrast[0]` 0. Fit by
/// demeaning within strata (Frisch–Waugh–Lovell); the CR2 leverage block of
/// cluster g in stratum s is 11ᵀ/n_s + X̃_g B̃ X̃_gᵀ, i.e. U_g B_s U_gᵀ with
/// U_g = [1, X̃_g] and B_s = diag(1/n_s, B̃), so the P×P machinery of
/// [`ols_cr2`] applies per stratum. Strata with a single cluster are fitted
/// exactly by their fixed effect: they are pooled into one stratum (and a
/// pool of a single cluster is dropped, carrying no information).
/// The Bell–McCaffrey degrees of freedom use the full hat matrix, fixed
/// effects included (cross-cluster terms within a stratum).
fn ols_cr2_blocked<const P: usize>(
    y: &[f64],
    x: impl Fn(usize) -> [f64; P],
    cluster: &[u32],
    stratum: &[u32],
    contrast: [f64; P],
    alpha: f64,
) -> Outcome {
    type M<const P: usize> = SMatrix<f64, P, P>;
    type V<const P: usize> = SVector<f64, P>;
    if P < 2 || contrast[0] != 0.0 {
        return Err(Failure::Singular);
    }
    let pooled = pool_singletons(stratum, cluster);
    let stratum = pooled.as_slice();
    let clusters = stratum.len();
    let strata = stratum.iter().max().map_or(0, |&m| m as usize + 1);
    // Clusters per stratum (non-empty ones) and stratum sums.
    let mut present = vec![false; clusters];
    for &c in cluster {
        present[c as usize] = true;
    }
    let mut per_stratum = vec![0usize; strata];
    for c in 0..clusters {
        if present[c] {
            per_stratum[stratum[c] as usize] += 1;
        }
    }
    let keep = |i: usize| per_stratum[stratum[cluster[i] as usize] as usize] >= 2;
    let mut ns = vec![0.0f64; strata];
    let mut sy = vec![0.0f64; strata];
    let mut sx = vec![V::<P>::zeros(); strata];
    for (i, &yi) in y.iter().enumerate() {
        if !keep(i) {
            continue;
        }
        let s = stratum[cluster[i] as usize] as usize;
        ns[s] += 1.0;
        sy[s] += yi;
        sx[s] += V::<P>::from(x(i));
    }
    for s in 0..strata {
        if ns[s] > 0.0 {
            sy[s] /= ns[s];
            sx[s] /= ns[s];
            sx[s][0] = 0.0; // the intercept column becomes the stratum's 1
        }
    }
    // u = [1, x̃], ỹ.
    let row = |i: usize| -> (usize, V<P>, f64) {
        let s = stratum[cluster[i] as usize] as usize;
        (s, V::<P>::from(x(i)) - sx[s], y[i] - sy[s])
    };
    let mut xtx = M::<P>::zeros();
    let mut xty = V::<P>::zeros();
    for i in (0..y.len()).filter(|&i| keep(i)) {
        let (_, u, yt) = row(i);
        xtx += u * u.transpose();
        xty += u * yt;
    }
    // B̃ on the non-intercept block; position 0 is replaced per stratum.
    xtx.row_mut(0).fill(0.0);
    xtx.column_mut(0).fill(0.0);
    xtx[(0, 0)] = 1.0;
    let Some(b) = xtx.try_inverse() else {
        return Err(Failure::Singular);
    };
    if !b.iter().all(|v| v.is_finite()) || (b * xtx - M::<P>::identity()).abs().max() > 1e-6 {
        return Err(Failure::Singular);
    }
    let mut beta = b * xty;
    beta[0] = 0.0;
    let c = V::<P>::from(contrast);
    let bc = b * c; // bc[0] = 0: contrast[0] = 0 and b is block diagonal
    let value = c.dot(&beta);
    let mut mg = vec![M::<P>::zeros(); clusters];
    let mut sg = vec![V::<P>::zeros(); clusters];
    for i in (0..y.len()).filter(|&i| keep(i)) {
        let (_, u, yt) = row(i);
        let g = cluster[i] as usize;
        mg[g] += u * u.transpose();
        sg[g] += u * (yt - u.dot(&beta));
    }
    let mut bs = Vec::with_capacity(strata);
    let mut ls = Vec::with_capacity(strata);
    for &n_s in &ns {
        let mut bsm = b;
        bsm[(0, 0)] = if n_s > 0.0 { 1.0 / n_s } else { 1.0 };
        let Some(chol) = bsm.cholesky() else {
            return Err(Failure::Singular);
        };
        ls.push(chol.l());
        bs.push(bsm);
    }
    let mut var = 0.0;
    let (mut sum_d, mut sum_tbt, mut sum_d2, mut sum_dtbt) = (0.0, 0.0, 0.0, 0.0);
    let mut a = vec![0.0f64; strata]; // Σ_{g∈s} u_g², u_g = t_g[0]
    let mut cs = vec![V::<P>::zeros(); strata]; // Σ_{g∈s} u_g·t̃_g
    let mut ttt = M::<P>::zeros(); // Σ t̃ t̃ᵀ
    for g in 0..clusters {
        let s = stratum[g] as usize;
        if !present[g] || per_stratum[s] < 2 {
            continue;
        }
        let (b_s, l) = (&bs[s], &ls[s]);
        let (m, sv) = (&mg[g], &sg[g]);
        let sm = l.transpose() * m * l;
        let (mut a_s, mut a_m, mut a2_m) = (*sv, *m, *m);
        let eig = nalgebra::DMatrix::from_iterator(P, P, sm.iter().copied()).symmetric_eigen();
        for k in 0..P {
            let lam = eig.eigenvalues[k];
            if lam <= 1e-12 {
                continue;
            }
            if lam >= 1.0 - 1e-10 {
                return Err(Failure::OneClusterInArm);
            }
            let w = V::<P>::from_iterator(eig.eigenvectors.column(k).iter().copied());
            let ml = m * (l * w);
            let f1 = 1.0 / (1.0 - lam).sqrt() - 1.0;
            let f2 = 1.0 / (1.0 - lam) - 1.0;
            let proj = (l * w).dot(sv);
            a_s += ml * (f1 * proj / lam);
            a_m += ml * ml.transpose() * (f1 / lam);
            a2_m += ml * ml.transpose() * (f2 / lam);
        }
        let q = bc.dot(&a_s);
        var += q * q;
        let t = a_m * bc;
        let d = bc.dot(&(a2_m * bc));
        let tbt = t.dot(&(b_s * t));
        sum_d += d;
        sum_tbt += tbt;
        sum_d2 += d * d;
        sum_dtbt += d * tbt;
        let mut tt = t;
        tt[0] = 0.0;
        a[s] += t[0] * t[0];
        cs[s] += tt * t[0];
        ttt += tt * tt.transpose();
    }
    let bt = b * ttt;
    let mut k2 = (bt * bt).trace();
    for s in 0..strata {
        if ns[s] > 0.0 && per_stratum[s] >= 2 {
            k2 += (a[s] / ns[s]).powi(2) + 2.0 / ns[s] * cs[s].dot(&(b * cs[s]));
        }
    }
    let tr = sum_d - sum_tbt;
    let tr2 = sum_d2 - 2.0 * sum_dtbt + k2;
    let df = tr * tr / tr2;
    t_inference(value, var.sqrt(), df, alpha)
}

/// Point estimate of `ols_cr2_blocked`'s contrast (for randomization
/// inference): OLS after demeaning within strata.
pub fn blocked_point<const P: usize>(
    y: &[f64],
    x: impl Fn(usize) -> [f64; P],
    cluster: &[u32],
    stratum: &[u32],
    contrast: [f64; P],
) -> Option<f64> {
    type V<const P: usize> = SVector<f64, P>;
    let pooled = pool_singletons(stratum, cluster);
    let stratum = pooled.as_slice();
    let strata = stratum.iter().max().map_or(0, |&m| m as usize + 1);
    let mut present = vec![false; stratum.len()];
    for &c in cluster {
        present[c as usize] = true;
    }
    let mut per_stratum = vec![0usize; strata];
    for (c, &s) in stratum.iter().enumerate() {
        if present[c] {
            per_stratum[s as usize] += 1;
        }
    }
    let keep = |i: usize| per_stratum[stratum[cluster[i] as usize] as usize] >= 2;
    let mut ns = vec![0.0f64; strata];
    let mut sy = vec![0.0f64; strata];
    let mut sx = vec![V::<P>::zeros(); strata];
    for (i, &yi) in y.iter().enumerate() {
        if !keep(i) {
            continue;
        }
        let s = stratum[cluster[i] as usize] as usize;
        ns[s] += 1.0;
        sy[s] += yi;
        sx[s] += V::<P>::from(x(i));
    }
    for s in 0..strata {
        if ns[s] > 0.0 {
            sy[s] /= ns[s];
            sx[s] /= ns[s];
        }
    }
    let mut xtx = SMatrix::<f64, P, P>::zeros();
    let mut xty = V::<P>::zeros();
    for (i, &yi) in y.iter().enumerate() {
        if !keep(i) {
            continue;
        }
        let s = stratum[cluster[i] as usize] as usize;
        let mut u = V::<P>::from(x(i)) - sx[s];
        u[0] = 0.0;
        xtx += u * u.transpose();
        xty += u * (yi - sy[s]);
    }
    xtx[(0, 0)] = 1.0;
    let b = xtx.try_inverse()?;
    // The same near-singularity guard as the estimator itself.
    if (b * xtx - SMatrix::<f64, P, P>::identity()).abs().max() > 1e-6 {
        return None;
    }
    let v = V::<P>::from(contrast).dot(&(b * xty));
    v.is_finite().then_some(v)
}

/// Strata for the analysis: a stratum holding one (non-empty) cluster is
/// fitted exactly by its own fixed effect, so single-cluster strata are
/// pooled into one stratum (their clusters were treated by one complete
/// randomization of the leftover units); a pool of one cluster is then
/// dropped by the callers.
fn pool_singletons(stratum: &[u32], cluster: &[u32]) -> Vec<u32> {
    let strata = stratum.iter().max().map_or(0, |&m| m as usize + 1);
    let mut present = vec![false; stratum.len()];
    for &c in cluster {
        present[c as usize] = true;
    }
    let mut count = vec![0usize; strata];
    for (c, &s) in stratum.iter().enumerate() {
        if present[c] {
            count[s as usize] += 1;
        }
    }
    stratum
        .iter()
        .map(|&s| {
            if count[s as usize] == 1 {
                strata as u32
            } else {
                s
            }
        })
        .collect()
}

/// Paired estimator for matched-pair cluster randomization (Imai, King &
/// Nall 2009): d_p = mean of the treated cluster − mean of the control
/// cluster, τ̂ = Σ w_p d_p / Σ w_p with w_p the pair's users (`weighted`) or
/// 1 (a paired t-test on cluster means), variance
/// P/((P − 1)W²)·Σ_p (w_p d_p − W τ̂/P)², Student t with P − 1 df.
/// Pairs whose clusters are in the same arm (not possible under the design)
/// or empty are skipped.
pub fn paired(
    y: &[f64],
    z: &[u8],
    cluster: &[u32],
    clusters: usize,
    pairs: &[(u32, u32)],
    weighted: bool,
    alpha: f64,
) -> Outcome {
    let d = pair_differences(y, z, cluster, clusters, pairs, weighted);
    if d.len() < 2 {
        return Err(Failure::OneClusterInArm);
    }
    let p = d.len() as f64;
    let w: f64 = d.iter().map(|(w, _)| w).sum();
    let tau = d.iter().map(|(w, x)| w * x).sum::<f64>() / w;
    let ss: f64 = d.iter().map(|(wp, x)| (wp * x - w * tau / p).powi(2)).sum();
    let var = p / ((p - 1.0) * w * w) * ss;
    t_inference(tau, var.sqrt(), p - 1.0, alpha)
}

/// Point estimate of [`paired`].
pub fn paired_point(
    y: &[f64],
    z: &[u8],
    cluster: &[u32],
    clusters: usize,
    pairs: &[(u32, u32)],
    weighted: bool,
) -> Option<f64> {
    let d = pair_differences(y, z, cluster, clusters, pairs, weighted);
    let w: f64 = d.iter().map(|(w, _)| w).sum();
    (w > 0.0).then(|| d.iter().map(|(w, x)| w * x).sum::<f64>() / w)
}

/// (weight, treated − control cluster mean) per usable pair.
fn pair_differences(
    y: &[f64],
    z: &[u8],
    cluster: &[u32],
    clusters: usize,
    pairs: &[(u32, u32)],
    weighted: bool,
) -> Vec<(f64, f64)> {
    let mut sum = vec![0.0f64; clusters];
    let mut count = vec![0u32; clusters];
    let mut treated = vec![0u32; clusters];
    for i in 0..y.len() {
        let g = cluster[i] as usize;
        sum[g] += y[i];
        count[g] += 1;
        treated[g] += z[i] as u32;
    }
    let arm = |g: usize| 2 * treated[g] >= count[g];
    pairs
        .iter()
        .filter_map(|&(a, b)| {
            let (a, b) = (a as usize, b as usize);
            if count[a] == 0 || count[b] == 0 || arm(a) == arm(b) {
                return None;
            }
            let (t, c) = if arm(a) { (a, b) } else { (b, a) };
            let d = sum[t] / count[t] as f64 - sum[c] / count[c] as f64;
            let w = if weighted {
                (count[a] + count[b]) as f64
            } else {
                1.0
            };
            Some((w, d))
        })
        .collect()
}

/// Difference in means as OLS on [1, z] with CR2 at the randomization unit,
/// analysed as randomized: with strata, stratum fixed effects are absorbed
/// (OLS on z within strata, CR2 and Bell–McCaffrey df from the full hat
/// matrix); with matched pairs, the size-weighted [`paired`] estimator.
pub fn dm_cr2(
    y: &[f64],
    z: &[u8],
    cluster: &[u32],
    clusters: usize,
    blocking: Blocking,
    alpha: f64,
) -> Outcome {
    arms_check(z, cluster, clusters)?;
    match blocking {
        Blocking::None => ols_cr2(
            y,
            |i| [1.0, z[i] as f64],
            cluster,
            clusters,
            [0.0, 1.0],
            alpha,
        ),
        Blocking::Strata(s) => {
            ols_cr2_blocked(y, |i| [1.0, z[i] as f64], cluster, s, [0.0, 1.0], alpha)
        }
        Blocking::Pairs(pairs) => paired(y, z, cluster, clusters, pairs, true, alpha),
    }
}

/// Linear-in-means regression adjustment: OLS on [1, z, e] (e = treated
/// neighbour share), CR2 at the randomization unit. Treating everyone moves
/// z by 1 for every user but e by 1 only for users with (in-)neighbours (a
/// user without any always has e = 0), so the global effect is
/// β_z + f·β_e with `f` the share of users with positive in-strength: the
/// contrast [0, 1, f]. With strata (or pairs, as two-cluster strata) their
/// fixed effects are absorbed.
#[allow(clippy::too_many_arguments)]
pub fn regression(
    y: &[f64],
    z: &[u8],
    e: &[f64],
    f: f64,
    cluster: &[u32],
    clusters: usize,
    blocking: Blocking,
    alpha: f64,
) -> Outcome {
    arms_check(z, cluster, clusters)?;
    let x = |i: usize| [1.0, z[i] as f64, e[i]];
    match blocking.strata(clusters) {
        None => ols_cr2(y, x, cluster, clusters, [0.0, 1.0, f], alpha),
        Some(s) => ols_cr2_blocked(y, x, cluster, &s, [0.0, 1.0, f], alpha),
    }
}

/// Point estimate of [`regression`] under `blocking`.
pub fn regression_point_in(
    y: &[f64],
    z: &[u8],
    e: &[f64],
    f: f64,
    cluster: &[u32],
    clusters: usize,
    blocking: Blocking,
) -> Option<f64> {
    match blocking.strata(clusters) {
        None => regression_point(y, z, e, f),
        Some(s) => blocked_point(y, |i| [1.0, z[i] as f64, e[i]], cluster, &s, [0.0, 1.0, f]),
    }
}

/// Point estimate of [`dm_cr2`] (and of [`cuped`] on the adjusted outcome)
/// under `blocking`.
pub fn dm_point_in(
    y: &[f64],
    z: &[u8],
    cluster: &[u32],
    clusters: usize,
    blocking: Blocking,
) -> Option<f64> {
    match blocking {
        Blocking::None => dm_point(y, z),
        Blocking::Strata(s) => blocked_point(y, |i| [1.0, z[i] as f64], cluster, s, [0.0, 1.0]),
        Blocking::Pairs(p) => paired_point(y, z, cluster, clusters, p, true),
    }
}

/// Point estimate of [`cluster_means_in`] under `blocking`.
pub fn cluster_means_point_in(
    y: &[f64],
    z: &[u8],
    cluster: &[u32],
    clusters: usize,
    blocking: Blocking,
) -> Option<f64> {
    match blocking {
        Blocking::None => cluster_means_point(y, z, cluster, clusters),
        Blocking::Strata(s) => {
            let (m, arm, ids) = cluster_level(y, z, cluster, clusters);
            blocked_point(&m, |i| [1.0, arm[i] as f64], &ids, s, [0.0, 1.0])
        }
        Blocking::Pairs(p) => paired_point(y, z, cluster, clusters, p, false),
    }
}

/// The cluster-means test analysed as randomized: unblocked, the two-sample
/// t-test ([`cluster_means`]); with strata, OLS of the cluster means on
/// treatment with stratum fixed effects and HC2 (a blocked t-test); with
/// matched pairs, the paired t-test on cluster means (P − 1 df).
pub fn cluster_means_in(
    y: &[f64],
    z: &[u8],
    cluster: &[u32],
    clusters: usize,
    blocking: Blocking,
    alpha: f64,
) -> Outcome {
    match blocking {
        Blocking::None => cluster_means(y, z, cluster, clusters, alpha),
        Blocking::Strata(s) => {
            arms_check(z, cluster, clusters)?;
            let (m, arm, ids) = cluster_level(y, z, cluster, clusters);
            ols_cr2_blocked(&m, |i| [1.0, arm[i] as f64], &ids, s, [0.0, 1.0], alpha)
        }
        Blocking::Pairs(p) => paired(y, z, cluster, clusters, p, false, alpha),
    }
}

/// Cluster means, arms and ids (cluster c at position c; empty clusters get
/// mean 0 and are never referenced by a unit, so they drop out).
fn cluster_level(
    y: &[f64],
    z: &[u8],
    cluster: &[u32],
    clusters: usize,
) -> (Vec<f64>, Vec<u8>, Vec<u32>) {
    let mut sum = vec![0.0f64; clusters];
    let mut count = vec![0u32; clusters];
    let mut treated = vec![0u32; clusters];
    for i in 0..y.len() {
        let g = cluster[i] as usize;
        sum[g] += y[i];
        count[g] += 1;
        treated[g] += z[i] as u32;
    }
    let (mut m, mut arm, mut ids) = (Vec::new(), Vec::new(), Vec::new());
    for g in 0..clusters {
        if count[g] > 0 {
            m.push(sum[g] / count[g] as f64);
            arm.push(u8::from(2 * treated[g] >= count[g]));
            ids.push(g as u32);
        }
    }
    (m, arm, ids)
}

/// CUPED: difference in means of y − θ(x − x̄), θ = cov(y, x)/var(x) pooled
/// over both arms (treated as known), analysed like [`dm_cr2`].
#[allow(clippy::too_many_arguments)]
pub fn cuped(
    y: &[f64],
    z: &[u8],
    x: &[f64],
    cluster: &[u32],
    clusters: usize,
    blocking: Blocking,
    alpha: f64,
) -> Outcome {
    arms_check(z, cluster, clusters)?;
    let adj = cuped_adjusted(y, x).ok_or(Failure::Singular)?;
    dm_cr2(&adj, z, cluster, clusters, blocking, alpha)
}

/// The CUPED-adjusted outcome y − θ(x − x̄), θ = cov(y, x)/var(x) pooled over
/// both arms; `None` when x does not vary.
pub fn cuped_adjusted(y: &[f64], x: &[f64]) -> Option<Vec<f64>> {
    let n = y.len() as f64;
    let (my, mx) = (y.iter().sum::<f64>() / n, x.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (&a, &b) in y.iter().zip(x) {
        sxy += (a - my) * (b - mx);
        sxx += (b - mx) * (b - mx);
    }
    if sxx <= 0.0 {
        return None;
    }
    let theta = sxy / sxx;
    Some(
        y.iter()
            .zip(x)
            .map(|(&a, &b)| a - theta * (b - mx))
            .collect(),
    )
}

/// Each arm needs at least two randomization units.
fn arms_check(z: &[u8], cluster: &[u32], clusters: usize) -> Result<(), Failure> {
    let mut seen = vec![0u8; clusters];
    let (mut t, mut c) = (0usize, 0usize);
    for (i, &zi) in z.iter().enumerate() {
        let g = cluster[i] as usize;
        let bit = if zi == 1 { 1 } else { 2 };
        if seen[g] & bit == 0 {
            seen[g] |= bit;
            if zi == 1 {
                t += 1
            } else {
                c += 1
            }
        }
    }
    match (t, c) {
        (0, _) | (_, 0) => Err(Failure::EmptyArm),
        (1, _) | (_, 1) => Err(Failure::OneClusterInArm),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welch_oracle() {
        // R: t.test(1:5, c(2,4,6,8)): t = −1.0190, df = 4.7494, p = 0.3578 is for
        // 1:5 vs 2,4,6,8 with means 3 and 5: SE = sqrt(2.5/5 + 6.6667/4).
        let t = Moments::of(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        let c = Moments::of(&[2.0, 4.0, 6.0, 8.0]);
        let e = welch(&t, &c, 0.05).unwrap();
        assert!((e.se - 1.47196).abs() < 1e-5, "{}", e.se);
        assert!((e.df - 4.74941).abs() < 1e-5, "{}", e.df);
        assert!((e.value + 2.0).abs() < 1e-12);
        assert!((e.p_value - 0.23519).abs() < 1e-5, "{}", e.p_value);
    }

    #[test]
    fn cr2_equals_welch_on_cluster_means_with_equal_sizes() {
        // 6 clusters of 3 units; clusters 0..3 treated.
        let y = [
            1.0, 2.0, 4.0, 3.0, 3.5, 2.0, 5.0, 6.0, 4.0, 0.5, 1.0, 2.0, 2.0, 3.0, 1.0, 0.0, 1.5,
            2.5,
        ];
        let cluster: Vec<u32> = (0..18).map(|i| i / 3).collect();
        let z: Vec<u8> = (0..18).map(|i| u8::from(i < 9)).collect();
        let cr2 = dm_cr2(&y, &z, &cluster, 6, Blocking::None, 0.05).unwrap();
        let means: Vec<f64> = (0..6)
            .map(|g| y[3 * g..3 * g + 3].iter().sum::<f64>() / 3.0)
            .collect();
        let w = welch(&Moments::of(&means[..3]), &Moments::of(&means[3..]), 0.05).unwrap();
        assert!((cr2.value - w.value).abs() < 1e-12);
        assert!((cr2.se - w.se).abs() < 1e-10, "{} vs {}", cr2.se, w.se);
        // Balanced arms: Bell–McCaffrey df = G − 2.
        assert!((cr2.df - 4.0).abs() < 1e-8, "df {}", cr2.df);
    }

    #[test]
    fn hc2_with_singletons_matches_welch_se() {
        // With one unit per cluster, CR2 is HC2, which for a two-group
        // comparison equals the Welch variance.
        let y = [1.0, 2.0, 3.0, 4.0, 5.0, 2.0, 4.0, 6.0, 8.0];
        let z = [1u8, 1, 1, 1, 1, 0, 0, 0, 0];
        let cluster: Vec<u32> = (0..9).collect();
        let cr2 = dm_cr2(&y, &z, &cluster, 9, Blocking::None, 0.05).unwrap();
        assert!((cr2.se - 1.47196).abs() < 1e-5, "{}", cr2.se);
        // Bell–McCaffrey df uses the homoskedastic working model, not the sample
        // variances (Imbens & Kolesár 2016): for two groups it is
        // (1/n1 + 1/n0)² / (1/(n1²(n1−1)) + 1/(n0²(n0−1))) = 6.567568 here.
        let (n1, n0) = (5.0f64, 4.0f64);
        let bm = (1.0 / n1 + 1.0 / n0).powi(2)
            / (1.0 / (n1 * n1 * (n1 - 1.0)) + 1.0 / (n0 * n0 * (n0 - 1.0)));
        assert!((cr2.df - bm).abs() < 1e-9, "{} vs {bm}", cr2.df);
    }

    #[test]
    fn failures_are_named() {
        let y = [1.0, 2.0, 3.0];
        assert_eq!(dm_naive(&y, &[1, 1, 1], 0.05), Err(Failure::EmptyArm));
        assert_eq!(
            dm_naive(&y, &[1, 0, 0], 0.05),
            Err(Failure::OneClusterInArm)
        );
        let cl = [0u32, 0, 1];
        assert_eq!(
            dm_cr2(&y, &[1, 1, 0], &cl, 2, Blocking::None, 0.05),
            Err(Failure::OneClusterInArm)
        );
        let e = [0.5, 0.5, 0.5];
        let z = [1u8, 0, 1];
        assert_eq!(
            regression(
                &[1.0, 2.0, 3.0, 4.0],
                &[1, 0, 1, 0],
                &[0.5; 4],
                1.0,
                &[0, 1, 2, 3],
                4,
                Blocking::None,
                0.05
            ),
            Err(Failure::Singular)
        );
        let _ = (e, z);
    }

    #[test]
    fn regression_recovers_a_linear_model_exactly() {
        // y = 1 + 2z + 3e exactly: GATE = β_z + β_e = 5 with (numerically) zero SE.
        let z = [1u8, 0, 1, 0, 1, 0];
        let e = [0.1, 0.4, 0.7, 0.2, 0.5, 0.9];
        let y: Vec<f64> = (0..6)
            .map(|i| 1.0 + 2.0 * z[i] as f64 + 3.0 * e[i])
            .collect();
        let cl: Vec<u32> = (0..6).collect();
        let r = regression(&y, &z, &e, 1.0, &cl, 6, Blocking::None, 0.05).unwrap();
        assert!((r.value - 5.0).abs() < 1e-10 && r.se < 1e-10, "{r:?}");
    }

    #[test]
    fn regression_weights_the_exposure_by_the_share_of_connected_users() {
        // Issue 10: users 6 and 7 have no neighbours (e = 0 whatever the
        // assignment). With y = 1 + 2z + 3e the global effect is
        // mean_i [2 + 3·1(i has neighbours)] = 2 + 3·6/8, not 2 + 3.
        let z = [1u8, 0, 1, 0, 1, 0, 1, 0];
        let e = [0.1, 0.4, 0.7, 0.2, 0.5, 0.9, 0.0, 0.0];
        let y: Vec<f64> = (0..8)
            .map(|i| 1.0 + 2.0 * z[i] as f64 + 3.0 * e[i])
            .collect();
        let cl: Vec<u32> = (0..8).collect();
        let f = 6.0 / 8.0;
        let r = regression(&y, &z, &e, f, &cl, 8, Blocking::None, 0.05).unwrap();
        assert!((r.value - (2.0 + 3.0 * f)).abs() < 1e-10, "{r:?}");
        let p = regression_point(&y, &z, &e, f).unwrap();
        assert!((p - (2.0 + 3.0 * f)).abs() < 1e-10, "{p}");
    }

    /// CR2 and Bell–McCaffrey df straight from the definitions, with dense
    /// n×n matrices: W the full design (fixed-effect dummies included), H its
    /// hat matrix, A_g = (I − H_gg)^(−1/2), V = cᵀB Σ W_gᵀA_g e_g e_gᵀA_g W_g B c,
    /// df = (Σλ)²/Σλ² for λ the eigenvalues of GᵀG, G's column g being
    /// (I − H)_{·g} A_g W_g B c.
    fn dense_cr2(
        y: &[f64],
        w: &nalgebra::DMatrix<f64>,
        cluster: &[u32],
        c: &[f64],
    ) -> (f64, f64, f64) {
        use nalgebra::{DMatrix, DVector};
        let n = y.len();
        let yv = DVector::from_column_slice(y);
        let b = (w.transpose() * w).try_inverse().unwrap();
        let beta = &b * w.transpose() * &yv;
        let cv = DVector::from_column_slice(c);
        let value = cv.dot(&beta);
        let h = w * &b * w.transpose();
        let resid = &yv - w * &beta;
        let g_count = *cluster.iter().max().unwrap() as usize + 1;
        let mut var = 0.0;
        let mut gmat = DMatrix::<f64>::zeros(n, g_count);
        let ih = DMatrix::<f64>::identity(n, n) - &h;
        for g in 0..g_count {
            let idx: Vec<usize> = (0..n).filter(|&i| cluster[i] as usize == g).collect();
            if idx.is_empty() {
                continue;
            }
            let m = idx.len();
            let hgg = DMatrix::from_fn(m, m, |a, bb| h[(idx[a], idx[bb])]);
            let eig = (DMatrix::<f64>::identity(m, m) - hgg).symmetric_eigen();
            let d = DMatrix::from_diagonal(&eig.eigenvalues.map(|l| 1.0 / l.sqrt()));
            let a = &eig.eigenvectors * d * eig.eigenvectors.transpose();
            let wg = DMatrix::from_fn(m, w.ncols(), |r, k| w[(idx[r], k)]);
            let eg = DVector::from_fn(m, |r, _| resid[idx[r]]);
            let p = &a * &wg * &b * &cv;
            var += p.dot(&eg).powi(2);
            for i in 0..n {
                gmat[(i, g)] = idx
                    .iter()
                    .enumerate()
                    .map(|(r, &j)| ih[(i, j)] * p[r])
                    .sum();
            }
        }
        let gg = gmat.transpose() * &gmat;
        let tr = gg.trace();
        let tr2 = (&gg * &gg).trace();
        (value, var.sqrt(), tr * tr / tr2)
    }

    type Case = (Vec<f64>, Vec<u8>, Vec<f64>, Vec<u32>, Vec<u32>);

    fn small_blocked_case(seed: u64) -> Case {
        use rand::RngExt;
        let mut r = crate::rng::stream(seed, &[]);
        // 12 clusters of 2..6 users in 3 strata, two treated clusters per
        // stratum, plus two single-cluster strata (one treated): pooled.
        let stratum: Vec<u32> = vec![0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 4];
        let treated = [1u8, 0, 1, 0, 0, 1, 1, 0, 1, 0, 0, 1, 1, 0];
        let (mut y, mut z, mut e, mut cl) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (c, &t) in treated.iter().enumerate() {
            let size = r.random_range(2..7);
            let u: f64 = r.random::<f64>() - 0.5;
            for _ in 0..size {
                let ei: f64 = r.random();
                y.push(1.0 + stratum[c] as f64 + 0.3 * t as f64 + 0.5 * ei + u + r.random::<f64>());
                z.push(t);
                e.push(ei);
                cl.push(c as u32);
            }
        }
        (y, z, e, cl, stratum)
    }

    #[test]
    fn blocked_cr2_matches_the_dense_definition() {
        for seed in 0..5 {
            let (y, z, e, cl, stratum) = small_blocked_case(seed);
            // The single-cluster strata 3 and 4 are pooled: the dense oracle
            // sees strata 0, 1, 2 and {3, 4}.
            let keep: Vec<usize> = (0..y.len()).collect();
            let n = keep.len();
            let yk: Vec<f64> = keep.iter().map(|&i| y[i]).collect();
            let ck: Vec<u32> = keep.iter().map(|&i| cl[i]).collect();
            for with_e in [false, true] {
                let p = if with_e { 6 } else { 5 };
                let w = nalgebra::DMatrix::from_fn(n, p, |r, k| {
                    let i = keep[r];
                    match k {
                        0..=3 => f64::from(stratum[cl[i] as usize].min(3) == k as u32),
                        4 => z[i] as f64,
                        _ => e[i],
                    }
                });
                let (f, c): (f64, Vec<f64>) = if with_e {
                    (0.8, vec![0.0, 0.0, 0.0, 0.0, 1.0, 0.8])
                } else {
                    (0.0, vec![0.0, 0.0, 0.0, 0.0, 1.0])
                };
                let (v, se, df) = dense_cr2(&yk, &w, &ck, &c);
                let got = if with_e {
                    regression(&y, &z, &e, f, &cl, 14, Blocking::Strata(&stratum), 0.05).unwrap()
                } else {
                    dm_cr2(&y, &z, &cl, 14, Blocking::Strata(&stratum), 0.05).unwrap()
                };
                assert!((got.value - v).abs() < 1e-10, "value {} vs {v}", got.value);
                assert!(
                    (got.se - se).abs() < 1e-10 * se.max(1.0),
                    "se {} vs {se}",
                    got.se
                );
                assert!((got.df - df).abs() < 1e-8 * df, "df {} vs {df}", got.df);
                let point = if with_e {
                    regression_point_in(&y, &z, &e, f, &cl, 14, Blocking::Strata(&stratum))
                } else {
                    dm_point_in(&y, &z, &cl, 14, Blocking::Strata(&stratum))
                };
                assert!((point.unwrap() - v).abs() < 1e-10);
            }
        }
    }

    #[test]
    fn unblocked_cr2_matches_the_dense_definition() {
        let (y, z, e, cl, _) = small_blocked_case(9);
        let n = y.len();
        let w = nalgebra::DMatrix::from_fn(n, 3, |i, k| match k {
            0 => 1.0,
            1 => z[i] as f64,
            _ => e[i],
        });
        let (v, se, df) = dense_cr2(&y, &w, &cl, &[0.0, 1.0, 0.7]);
        let got = regression(&y, &z, &e, 0.7, &cl, 14, Blocking::None, 0.05).unwrap();
        assert!(
            (got.value - v).abs() < 1e-10 && (got.se - se).abs() < 1e-10,
            "{got:?} vs {v} {se}"
        );
        assert!((got.df - df).abs() < 1e-8 * df, "df {} vs {df}", got.df);
    }

    #[test]
    fn paired_estimator_is_the_paired_t_test_on_equal_pairs() {
        // Two users per cluster, pairs (0,1), (2,3), (4,5): differences 1, 2, 4.
        let cl: Vec<u32> = vec![0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5];
        let z: Vec<u8> = vec![1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0];
        let y = vec![2.0, 2.0, 1.0, 1.0, 0.0, 0.0, 2.0, 2.0, 5.0, 5.0, 1.0, 1.0];
        let pairs = [(0, 1), (2, 3), (4, 5)];
        let r = dm_cr2(&y, &z, &cl, 6, Blocking::Pairs(&pairs), 0.05).unwrap();
        // mean 7/3, sd of (1, 2, 4) = sqrt(7/3), se = sd/sqrt(3), df 2.
        assert!((r.value - 7.0 / 3.0).abs() < 1e-12);
        assert!((r.se - (7.0f64 / 3.0 / 3.0).sqrt()).abs() < 1e-12, "{r:?}");
        assert_eq!(r.df, 2.0);
        let m = cluster_means_in(&y, &z, &cl, 6, Blocking::Pairs(&pairs), 0.05).unwrap();
        assert!((m.value - r.value).abs() < 1e-12 && (m.se - r.se).abs() < 1e-12);
    }

    #[test]
    fn one_cluster_per_stratum_is_analysed_as_unstratified() {
        // strata = K: every stratum holds one cluster; pooled, they form one
        // stratum, and the blocked analysis equals the unblocked one.
        let (y, z, e, cl, _) = small_blocked_case(3);
        let own: Vec<u32> = (0..14).collect();
        let a = dm_cr2(&y, &z, &cl, 14, Blocking::Strata(&own), 0.05).unwrap();
        let b = dm_cr2(&y, &z, &cl, 14, Blocking::None, 0.05).unwrap();
        assert!(
            (a.value - b.value).abs() < 1e-10 && (a.se - b.se).abs() < 1e-10,
            "{a:?} {b:?}"
        );
        assert!((a.df - b.df).abs() < 1e-8 * b.df);
        let a = regression(&y, &z, &e, 0.9, &cl, 14, Blocking::Strata(&own), 0.05).unwrap();
        let b = regression(&y, &z, &e, 0.9, &cl, 14, Blocking::None, 0.05).unwrap();
        assert!(
            (a.value - b.value).abs() < 1e-10 && (a.se - b.se).abs() < 1e-10,
            "{a:?} {b:?}"
        );
    }
}
