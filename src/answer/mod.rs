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
//!
//! Files: [`means`] (difference in means with the Welch SE, the t-test on
//! cluster means), [`cr2`] (OLS with CR2 and Bell–McCaffrey df: difference in
//! means at the randomization unit, regression adjustment, CUPED, stratum
//! fixed effects), [`paired`](mod@paired) (matched pairs), [`suff`] (the
//! unblocked estimators from one pass of sufficient statistics, for the
//! simulation's inner loop). This file owns the shared
//! vocabulary: [`EstimatorKind`], [`Estimate`], [`Failure`], [`Blocking`] and
//! t-based inference.

pub mod cr2;
pub mod estimator;
pub mod means;
pub mod paired;
pub mod suff;

pub use cr2::*;
pub use estimator::{analyst, Estimator, Experiment};
pub use means::*;
pub use paired::*;

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

/// Estimators a scenario can name in `[analysis] estimators`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EstimatorKind {
    /// Difference in means, naive i.i.d. (Welch) SE.
    DmNaive,
    /// Difference in means, CR2 SE at the randomization unit, Bell–McCaffrey df.
    DmCr2,
    /// t-test on cluster means, G − 2 df.
    ClusterMeans,
    /// OLS on own treatment and treated-neighbour share, global effect β_z + f·β_e, CR2.
    Regression,
    /// Difference in means of the CUPED-adjusted outcome, CR2.
    Cuped,
    /// Horvitz–Thompson estimator of the exposure contrast (Aronow–Samii SE).
    Ht,
    /// Hájek (ratio) estimator of the exposure contrast (linearized SE).
    Hajek,
    /// Hájek as inverse-probability-weighted least squares of the outcome on
    /// the exposure condition, CR2 at the randomization unit (Bell–McCaffrey df).
    HajekCr2,
}

impl EstimatorKind {
    /// Every estimator, in report order.
    pub const ALL: [EstimatorKind; 5] = [
        EstimatorKind::DmNaive,
        EstimatorKind::DmCr2,
        EstimatorKind::ClusterMeans,
        EstimatorKind::Regression,
        EstimatorKind::Cuped,
    ];

    /// The name used in scenarios and reports.
    pub fn name(&self) -> &'static str {
        match self {
            EstimatorKind::DmNaive => "dm-naive",
            EstimatorKind::DmCr2 => "dm-cr2",
            EstimatorKind::ClusterMeans => "cluster-means",
            EstimatorKind::Regression => "regression",
            EstimatorKind::Cuped => "cuped",
            EstimatorKind::Ht => "ht",
            EstimatorKind::Hajek => "hajek",
            EstimatorKind::HajekCr2 => "hajek-cr2",
        }
    }

    /// Whether the estimator targets the exposure contrast (not the global effect).
    pub fn is_exposure(&self) -> bool {
        matches!(
            self,
            EstimatorKind::Ht | EstimatorKind::Hajek | EstimatorKind::HajekCr2
        )
    }
}

/// One estimate with its inference.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Moments;

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
