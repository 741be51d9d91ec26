//! Closed-form sample-size calculators for cluster and user randomization.
//!
//! This module owns the standard formulas of the cluster-trial literature
//! (Donner & Klar 2000; Eldridge, Ashby & Kerry 2006; Fleiss, Levin & Paik
//! 2003) used by `spillover deff`, `power`, `mde` and `clusters-needed`:
//!
//! - design effect with unequal cluster sizes: 1 + ρ[(m̄ − 1) + m̄·CV²];
//! - continuous metrics: per-arm n = (z_{1−α/2} + z_{1−β})²·σ²·(1 + 1/r)/δ²·deff
//!   for allocation ratio r (1 for equal arms);
//! - binary metrics (Fleiss, no continuity correction): pooled variance under
//!   the null, unpooled under the alternative;
//! - and a check by simulation ([`check_deff`]).

use crate::error::{Error, Result};
use crate::rng;
use rand::RngExt;
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal};

fn z(p: f64) -> f64 {
    Normal::new(0.0, 1.0).map_or(f64::NAN, |n| n.inverse_cdf(p))
}

fn phi(x: f64) -> f64 {
    Normal::new(0.0, 1.0).map_or(f64::NAN, |n| n.cdf(x))
}

/// Design effect 1 + ρ[(m̄ − 1) + m̄·CV²] (Eldridge et al. 2006).
///
/// ```
/// // 20 users per cluster, ICC 0.05, cluster-size CV 0.65.
/// let d = spillover::diagnosis::calc::design_effect(20.0, 0.05, 0.65);
/// assert!((d - 2.3725).abs() < 1e-12);
/// ```
pub fn design_effect(mean_cluster_size: f64, icc: f64, cv: f64) -> f64 {
    1.0 + icc * ((mean_cluster_size - 1.0) + mean_cluster_size * cv * cv)
}

/// Check calculator inputs.
pub fn check_inputs(alpha: f64, power: Option<f64>, icc: f64, m: f64, cv: f64) -> Result<()> {
    let bad = |m: String| Err(Error::input(m));
    if !(alpha > 0.0 && alpha < 1.0) {
        return bad(format!("--alpha {alpha}: expected a number in (0, 1)"));
    }
    if let Some(p) = power {
        if !(p > 0.0 && p < 1.0) {
            return bad(format!("--power {p}: expected a number in (0, 1)"));
        }
    }
    if !(0.0..1.0).contains(&icc) {
        return bad(format!("--icc {icc}: expected a number in [0, 1)"));
    }
    if !(m >= 1.0 && m.is_finite()) {
        return bad(format!("--mean-cluster-size {m}: expected a number ≥ 1"));
    }
    if !(cv >= 0.0 && cv.is_finite()) {
        return bad(format!("--cv {cv}: expected a number ≥ 0"));
    }
    Ok(())
}

/// The metric: continuous with an SD, or binary with a baseline rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Metric {
    /// Continuous outcome with standard deviation `sd`.
    Continuous {
        /// Outcome SD.
        sd: f64,
    },
    /// A rate with control value `baseline`; effects are absolute differences.
    Binary {
        /// Control rate.
        baseline: f64,
    },
}

impl Metric {
    /// Validate.
    pub fn check(&self, effect: Option<f64>) -> Result<()> {
        match *self {
            Metric::Continuous { sd } if !(sd > 0.0 && sd.is_finite()) => {
                Err(Error::input(format!("--sd {sd}: expected a number > 0")))
            }
            Metric::Binary { baseline } if !(baseline > 0.0 && baseline < 1.0) => Err(
                Error::input(format!("--baseline {baseline}: expected a rate in (0, 1)")),
            ),
            Metric::Binary { baseline } => match effect {
                Some(d) if !(baseline + d > 0.0 && baseline + d < 1.0) => Err(Error::input(format!(
                    "--baseline {baseline} with --effect {d}: the treated rate {} must be in (0, 1)",
                    baseline + d
                ))),
                _ => Ok(()),
            },
            _ => Ok(()),
        }
    }
}

/// Per-arm sample size (users, before the design effect) to detect `effect`
/// with two-sided `alpha` and `power`, equal arms.
pub fn n_per_arm(metric: Metric, effect: f64, alpha: f64, power: f64) -> f64 {
    let (za, zb) = (z(1.0 - alpha / 2.0), z(power));
    match metric {
        Metric::Continuous { sd } => 2.0 * (za + zb).powi(2) * sd * sd / (effect * effect),
        Metric::Binary { baseline } => {
            let (p1, p2) = (baseline, baseline + effect);
            let pbar = 0.5 * (p1 + p2);
            let null = (2.0 * pbar * (1.0 - pbar)).sqrt();
            let alt = (p1 * (1.0 - p1) + p2 * (1.0 - p2)).sqrt();
            (za * null + zb * alt).powi(2) / (effect * effect)
        }
    }
}

/// Power to detect `effect` with `n` users per arm (effective, after the design
/// effect) and two-sided `alpha` (the far tail ignored).
pub fn power(metric: Metric, effect: f64, n: f64, alpha: f64) -> f64 {
    let za = z(1.0 - alpha / 2.0);
    match metric {
        Metric::Continuous { sd } => phi(effect.abs() / (sd * (2.0 / n).sqrt()) - za),
        Metric::Binary { baseline } => {
            let (p1, p2) = (baseline, baseline + effect);
            let pbar = 0.5 * (p1 + p2);
            let null = (2.0 * pbar * (1.0 - pbar)).sqrt();
            let alt = (p1 * (1.0 - p1) + p2 * (1.0 - p2)).sqrt();
            phi((effect.abs() * n.sqrt() - za * null) / alt)
        }
    }
}

/// Minimum detectable effect with `n1` and `n0` effective users per arm
/// (continuous metrics, in the metric's units; SD units when sd = 1).
pub fn mde_continuous(sd: f64, n1: f64, n0: f64, alpha: f64, power: f64) -> f64 {
    (z(1.0 - alpha / 2.0) + z(power)) * sd * (1.0 / n1 + 1.0 / n0).sqrt()
}

/// Minimum detectable absolute difference for a binary metric with `n`
/// effective users per arm (solves the Fleiss formula by bisection).
pub fn mde_binary(baseline: f64, n: f64, alpha: f64, power_target: f64) -> f64 {
    let (mut lo, mut hi) = (0.0f64, 1.0 - baseline - 1e-9);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if power(Metric::Binary { baseline }, mid, n, alpha) < power_target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// When the design effect makes the effective sample tiny, the advice to give.
pub fn collapse_warning(
    total_users: f64,
    deff: f64,
    icc: f64,
    clusters: Option<f64>,
) -> Option<String> {
    let effective = total_users / deff;
    (effective < 200.0 || deff > 100.0).then(|| {
        let cap = if icc > 0.0 {
            format!("; with ICC {icc} each cluster is worth at most 1/ICC ≈ {:.1} independent users however large it is", 1.0 / icc)
        } else {
            String::new()
        };
        format!(
            "warning: design effect {deff:.1} collapses {total_users:.0} users to an effective sample of {effective:.1}{}{cap}. Add clusters, not users.",
            clusters.map_or(String::new(), |k| format!(" ({k:.0} clusters)"))
        )
    })
}

/// Simulated design effect for `clusters` clusters of mean size `m` (sizes
/// gamma-distributed with coefficient of variation `cv`), ICC `icc`, half the
/// clusters treated: Var(DM under cluster randomization) / Var(DM under user
/// randomization), from `reps` replicates. Returns (estimate, Monte Carlo SE).
pub fn check_deff(
    clusters: usize,
    m: f64,
    cv: f64,
    icc: f64,
    reps: usize,
    seed: u64,
) -> (f64, f64) {
    let mut r = rng::stream(seed, &[99, 1]);
    let sizes: Vec<usize> = (0..clusters)
        .map(|_| {
            if cv > 0.0 {
                let shape = 1.0 / (cv * cv);
                let g = rand_distr::Gamma::new(shape, m / shape).map_or(m, |g| g.sample(&mut r));
                g.round().max(1.0) as usize
            } else {
                m.round().max(1.0) as usize
            }
        })
        .collect();
    let n: usize = sizes.iter().sum();
    let (su, se) = (icc.sqrt(), (1.0 - icc).sqrt());
    let mut cluster_dm = Vec::with_capacity(reps);
    let mut user_dm = Vec::with_capacity(reps);
    let mut order: Vec<usize> = (0..clusters).collect();
    let mut y = Vec::with_capacity(n);
    for _ in 0..reps {
        y.clear();
        for &s in &sizes {
            let u: f64 = StandardNormal.sample(&mut r);
            for _ in 0..s {
                let e: f64 = StandardNormal.sample(&mut r);
                y.push(su * u + se * e);
            }
        }
        // Cluster randomization: half the clusters.
        crate::rng::shuffle(&mut order, &mut r);
        let mut treated = vec![false; clusters];
        for &c in &order[..clusters / 2] {
            treated[c] = true;
        }
        let (mut st, mut nt, mut sc, mut nc, mut at) = (0.0, 0.0, 0.0, 0.0, 0usize);
        for (c, &s) in sizes.iter().enumerate() {
            for &v in &y[at..at + s] {
                if treated[c] {
                    st += v;
                    nt += 1.0;
                } else {
                    sc += v;
                    nc += 1.0;
                }
            }
            at += s;
        }
        cluster_dm.push(st / nt - sc / nc);
        // User randomization of the same users: half of them.
        let (mut st, mut nt, mut sc, mut nc) = (0.0, 0.0, 0.0, 0.0);
        for &v in &y {
            if r.random_bool(0.5) {
                st += v;
                nt += 1.0;
            } else {
                sc += v;
                nc += 1.0;
            }
        }
        user_dm.push(st / nt - sc / nc);
    }
    let var = |v: &[f64]| crate::stats::Moments::of(v).var();
    let ratio = var(&cluster_dm) / var(&user_dm);
    (ratio, ratio * (4.0 / (reps as f64 - 1.0)).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn design_effects_from_eldridge_and_textbook_examples() {
        assert!((design_effect(20.0, 0.05, 0.0) - 1.95).abs() < 1e-12);
        assert!((design_effect(200.0, 0.06, 0.0) - 12.94).abs() < 1e-12);
        assert!((design_effect(20.0, 0.05, 0.65) - 2.3725).abs() < 1e-12);
        // The failure mode other tools hide: 6 clusters of about 166,667 users, ICC 0.59.
        let d = design_effect(166_667.0, 0.59, 0.0);
        assert!((d - 98_333.94).abs() < 0.01, "{d}");
        let w = collapse_warning(1_000_002.0, d, 0.59, Some(6.0)).unwrap();
        assert!(
            w.contains("Add clusters, not users") && w.contains("10.2"),
            "{w}"
        );
        assert!(collapse_warning(10_000.0, 1.95, 0.05, None).is_none());
    }

    #[test]
    fn sample_sizes_and_mdes_from_published_values() {
        // Fleiss (no continuity correction): 10 % vs 11 %, α = 0.05, power 0.8.
        let n = n_per_arm(Metric::Binary { baseline: 0.10 }, 0.01, 0.05, 0.8);
        assert_eq!(n.ceil(), 14_751.0, "{n}");
        // Standardized effect 0.2: 393 per arm.
        let n = n_per_arm(Metric::Continuous { sd: 1.0 }, 0.2, 0.05, 0.8);
        assert_eq!(n.ceil(), 393.0, "{n}");
        // MDE for N = 10,000 split evenly: 0.0560 SD, and 0.0782 with deff 1.95.
        let mde = mde_continuous(1.0, 5_000.0, 5_000.0, 0.05, 0.8);
        assert!((mde - 0.0560).abs() < 5e-5, "{mde}");
        let mde = mde_continuous(1.0, 5_000.0 / 1.95, 5_000.0 / 1.95, 0.05, 0.8);
        assert!((mde - 0.0782).abs() < 5e-5, "{mde}");
        // Power and sample size are inverses.
        let n = n_per_arm(Metric::Continuous { sd: 2.0 }, 0.3, 0.05, 0.9);
        assert!((power(Metric::Continuous { sd: 2.0 }, 0.3, n, 0.05) - 0.9).abs() < 1e-9);
        let n = n_per_arm(Metric::Binary { baseline: 0.2 }, 0.03, 0.01, 0.8);
        assert!((power(Metric::Binary { baseline: 0.2 }, 0.03, n, 0.01) - 0.8).abs() < 1e-9);
        let d = mde_binary(0.10, 14_750.76, 0.05, 0.8);
        assert!((d - 0.01).abs() < 1e-5, "{d}");
    }

    #[test]
    fn simulated_design_effect_agrees_with_the_formula() {
        for (k, m, cv, icc) in [(60usize, 20.0, 0.0, 0.05), (80, 30.0, 0.6, 0.1)] {
            let (sim, se) = check_deff(k, m, cv, icc, 2000, 3);
            let formula = design_effect(m, icc, cv);
            assert!(
                (sim - formula).abs() < 4.0 * se,
                "k {k} m {m} cv {cv}: {sim} ± {se} vs {formula}"
            );
        }
    }
}

/// The cluster part of a calculator question: mean users per cluster (`None`
/// for user-level randomization), the metric's ICC and the cluster-size CV.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clustering {
    /// Mean users per cluster (`None`: user randomization).
    pub mean_cluster_size: Option<f64>,
    /// Intra-cluster correlation of the metric.
    pub icc: f64,
    /// Coefficient of variation of cluster sizes.
    pub cv: f64,
}

impl Clustering {
    /// The design effect, after checking the inputs (1 for user randomization).
    pub fn deff(&self, alpha: f64, power: Option<f64>) -> Result<f64> {
        let m = self.mean_cluster_size.unwrap_or(1.0);
        check_inputs(alpha, power, self.icc, m, self.cv)?;
        Ok(match self.mean_cluster_size {
            Some(m) => design_effect(m, self.icc, self.cv),
            None => 1.0,
        })
    }
}

/// A simulated check of the design effect.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeffCheck {
    /// Simulated design effect.
    pub simulated: f64,
    /// Its Monte Carlo SE.
    pub mc_se: f64,
    /// Clusters simulated.
    pub clusters: usize,
}

/// The answer of `spillover deff` (its JSON), with the text it prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeffAnswer {
    /// 1 + ICC·[(m − 1) + m·CV²].
    pub design_effect: f64,
    /// Users / design effect (with a number of clusters).
    pub effective_sample_size: Option<f64>,
    /// Advice when the effective sample collapses.
    pub warning: Option<String>,
    /// The simulated check, if asked for.
    pub check: Option<DeffCheck>,
    /// What the command line prints.
    #[serde(skip)]
    pub text: String,
}

/// `spillover deff`: the design effect of `clusters` clusters of mean size
/// `mean_cluster_size`, and with `check` a simulation of it.
///
/// ```
/// let a = spillover::diagnosis::calc::deff(20.0, 0.05, 0.65, Some(100), false)?;
/// assert!((a.design_effect - 2.3725).abs() < 1e-12);
/// # Ok::<(), spillover::Error>(())
/// ```
pub fn deff(
    mean_cluster_size: f64,
    icc: f64,
    cv: f64,
    clusters: Option<usize>,
    check: bool,
) -> Result<DeffAnswer> {
    check_inputs(0.05, None, icc, mean_cluster_size, cv)?;
    let d = design_effect(mean_cluster_size, icc, cv);
    let total = clusters.map(|k| k as f64 * mean_cluster_size);
    let mut text = format!(
        "design effect {d:.4} = 1 + {icc} × [({mean_cluster_size} − 1) + {mean_cluster_size} × {cv}²]\n"
    );
    if let Some(n) = total {
        text += &format!("effective sample size {:.1} of {n:.0} users\n", n / d);
    }
    let warning = total.and_then(|n| collapse_warning(n, d, icc, clusters.map(|k| k as f64)));
    if let Some(w) = &warning {
        text += &format!("{w}\n");
    }
    let mut checked = None;
    if check {
        let k = clusters.unwrap_or(100).max(4);
        if (k as f64) * mean_cluster_size > 2e6 {
            return Err(Error::input(
                "--check simulates clusters × size users: keep it under 2,000,000",
            ));
        }
        let (sim, se) = check_deff(k, mean_cluster_size, cv, icc, 2000, 1);
        text += &format!("simulated design effect {sim:.4} ± {se:.4} (Monte Carlo SE; {k} clusters, 2,000 replicates)\n");
        checked = Some(DeffCheck {
            simulated: sim,
            mc_se: se,
            clusters: k,
        });
    }
    Ok(DeffAnswer {
        design_effect: d,
        effective_sample_size: total.map(|n| n / d),
        warning,
        check: checked,
        text,
    })
}

/// The answer of `spillover power`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PowerAnswer {
    /// Power of the two-sided test.
    pub power: f64,
    /// The design effect used.
    pub design_effect: f64,
    /// Users per arm / design effect.
    pub effective_n_per_arm: f64,
    /// Advice when the effective sample collapses.
    pub warning: Option<String>,
    /// What the command line prints.
    #[serde(skip)]
    pub text: String,
}

/// `spillover power`: power to detect `effect` with `n_per_arm` users per arm.
///
/// ```
/// use spillover::diagnosis::calc::{power_answer, Clustering, Metric};
/// let user = Clustering { mean_cluster_size: None, icc: 0.0, cv: 0.0 };
/// let a = power_answer(Metric::Continuous { sd: 1.0 }, 0.1, 1571.0, 0.05, user)?;
/// assert!((a.power - 0.8).abs() < 0.001);
/// # Ok::<(), spillover::Error>(())
/// ```
pub fn power_answer(
    metric: Metric,
    effect: f64,
    n_per_arm: f64,
    alpha: f64,
    cluster: Clustering,
) -> Result<PowerAnswer> {
    metric.check(Some(effect))?;
    let d = cluster.deff(alpha, None)?;
    if n_per_arm.is_nan() || n_per_arm <= 1.0 {
        return Err(Error::input("--n-per-arm: expected more than 1 user"));
    }
    let n_eff = n_per_arm / d;
    let p = power(metric, effect, n_eff, alpha);
    let mut text = format!(
        "power {p:.4} to detect {effect} with {n_per_arm} users per arm (effective {n_eff:.1} after design effect {d:.4}), two-sided α = {alpha}\n"
    );
    let warning = collapse_warning(2.0 * n_per_arm, d, cluster.icc, None);
    if let Some(w) = &warning {
        text += &format!("{w}\n");
    }
    Ok(PowerAnswer {
        power: p,
        design_effect: d,
        effective_n_per_arm: n_eff,
        warning,
        text,
    })
}

/// The answer of `spillover mde`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MdeAnswer {
    /// The minimum detectable effect.
    pub mde: f64,
    /// The design effect used.
    pub design_effect: f64,
    /// Advice when the effective sample collapses.
    pub warning: Option<String>,
    /// What the command line prints.
    #[serde(skip)]
    pub text: String,
}

/// `spillover mde`: the minimum detectable effect with `n_total` users, a
/// share `treated_share` treated, at power `power_target`.
pub fn mde_answer(
    metric: Metric,
    n_total: f64,
    treated_share: f64,
    power_target: f64,
    alpha: f64,
    cluster: Clustering,
) -> Result<MdeAnswer> {
    metric.check(None)?;
    let d = cluster.deff(alpha, Some(power_target))?;
    if !(treated_share > 0.0 && treated_share < 1.0 && n_total > 2.0) {
        return Err(Error::input(
            "--n-total must exceed 2 and --treated-share lie in (0, 1)",
        ));
    }
    let (n1, n0) = (
        n_total * treated_share / d,
        n_total * (1.0 - treated_share) / d,
    );
    let m = match metric {
        Metric::Continuous { sd } => mde_continuous(sd, n1, n0, alpha, power_target),
        Metric::Binary { baseline } => {
            mde_binary(baseline, 2.0 / (1.0 / n1 + 1.0 / n0), alpha, power_target)
        }
    };
    let mut text = format!(
        "minimum detectable effect {m:.4} with {n_total} users ({:.0}% treated), design effect {d:.4}, α = {alpha}, power {power_target}\n",
        100.0 * treated_share,
    );
    let warning = collapse_warning(n_total, d, cluster.icc, None);
    if let Some(w) = &warning {
        text += &format!("{w}\n");
    }
    Ok(MdeAnswer {
        mde: m,
        design_effect: d,
        warning,
        text,
    })
}

/// The answer of `spillover clusters-needed`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClustersNeededAnswer {
    /// Clusters per arm.
    pub clusters_per_arm: f64,
    /// Users per arm in those clusters.
    pub users_per_arm: f64,
    /// Users per arm under user randomization.
    pub n_per_arm_user_level: f64,
    /// The design effect used.
    pub design_effect: f64,
    /// What the command line prints.
    #[serde(skip)]
    pub text: String,
}

/// `spillover clusters-needed`: clusters per arm to detect `effect` at power
/// `power_target` (needs `cluster.mean_cluster_size`).
pub fn clusters_needed(
    metric: Metric,
    effect: f64,
    power_target: f64,
    alpha: f64,
    cluster: Clustering,
) -> Result<ClustersNeededAnswer> {
    metric.check(Some(effect))?;
    if effect == 0.0 {
        return Err(Error::input("--effect: expected a non-zero effect"));
    }
    let Some(m) = cluster.mean_cluster_size else {
        return Err(Error::input("--mean-cluster-size is required"));
    };
    let d = cluster.deff(alpha, Some(power_target))?;
    let n = n_per_arm(metric, effect, alpha, power_target);
    let users = n * d;
    let clusters = (users / m).ceil();
    let mut text = format!(
        "{clusters:.0} clusters per arm ({:.0} users per arm at {m} per cluster): {:.0} users per arm under user randomization × design effect {d:.4}\n",
        clusters * m,
        n.ceil()
    );
    if cluster.icc > 0.0 && m * cluster.icc > 10.0 {
        text += &format!(
            "note: with ICC {} a cluster of {m} users is worth about {:.1} independent users; smaller clusters need far fewer users in total\n",
            cluster.icc,
            m / d
        );
    }
    Ok(ClustersNeededAnswer {
        clusters_per_arm: clusters,
        users_per_arm: clusters * m,
        n_per_arm_user_level: n,
        design_effect: d,
        text,
    })
}
