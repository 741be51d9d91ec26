//! Diagnosands: what the replicates of a design say about each estimator
//! (bias, SD, RMSE, SE/SD, coverage, power, type-I error, each with its Monte
//! Carlo SE) and about the design (cut, contamination, ICC, design effects).

use super::engine::{DesignRun, ExposureDiagnosis, Replicate, SimConfig};
use crate::answer::{self as estimate, Outcome};
use crate::data::design::{Design, Unit};
use crate::graph::Graph;
use crate::model::Population;
use crate::partition::Spread;
use crate::stats::Moments;
use serde::Serialize;
use std::collections::BTreeMap;

/// A rate with its Monte Carlo standard error.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rate {
    /// The rate.
    pub value: f64,
    /// Its Monte Carlo standard error, sqrt(r(1 − r)/R).
    pub mc_se: f64,
}

impl Rate {
    pub(crate) fn of(hits: usize, total: usize) -> Option<Rate> {
        (total > 0).then(|| {
            let v = hits as f64 / total as f64;
            Rate {
                value: v,
                mc_se: (v * (1.0 - v) / total as f64).sqrt(),
            }
        })
    }
}

/// Diagnosands of one design × estimator.
#[derive(Debug, Clone, PartialEq)]
pub struct EstimatorDiagnosis {
    /// Estimator name.
    pub name: String,
    /// What it is judged against: the global effect, or its own estimand
    /// (HT/Hájek: the exposure contrast; saturation estimators: their effect).
    pub truth: f64,
    /// Replicates where the estimator could be computed (effect run).
    pub replicates_ok: usize,
    /// Replicates where it could not, by reason (effect run).
    pub failures: BTreeMap<String, usize>,
    /// Failures in the null run.
    pub null_failures: usize,
    /// Mean of the estimates.
    pub mean_estimate: f64,
    /// Mean estimate − true global effect.
    pub bias: f64,
    /// Monte Carlo SE of the bias: SD / sqrt(replicates_ok).
    pub bias_mc_se: f64,
    /// SD of the estimates over replicates.
    pub sd: f64,
    /// Root mean squared error against the true global effect.
    pub rmse: f64,
    /// Mean estimated standard error.
    pub mean_se: f64,
    /// mean_se / sd: below 1, the SEs are too small.
    pub se_sd_ratio: f64,
    /// Share of confidence intervals covering the true global effect.
    pub coverage: Rate,
    /// Share of replicates rejecting H0: effect = 0.
    pub power: Rate,
    /// Share of null-run replicates rejecting H0.
    pub type1_error: Rate,
    /// Randomization inference (when requested): share of replicates with p ≤ α.
    pub ri_power: Option<Rate>,
    /// Randomization inference in the null run: share with p ≤ α.
    pub ri_type1_error: Option<Rate>,
}

/// `report.json`'s flat layout of [`EstimatorDiagnosis`] (`coverage`,
/// `coverage_mc_se`, …): the rates as value and Monte Carlo SE side by side.
#[derive(Serialize, serde::Deserialize)]
struct FlatDiagnosis {
    name: String,
    truth: f64,
    replicates_ok: usize,
    failures: BTreeMap<String, usize>,
    null_failures: usize,
    mean_estimate: f64,
    bias: f64,
    bias_mc_se: f64,
    sd: f64,
    rmse: f64,
    mean_se: f64,
    se_sd_ratio: f64,
    coverage: f64,
    coverage_mc_se: f64,
    power: f64,
    power_mc_se: f64,
    type1_error: f64,
    type1_error_mc_se: f64,
    ri_power: Option<f64>,
    ri_power_mc_se: Option<f64>,
    ri_type1_error: Option<f64>,
    ri_type1_error_mc_se: Option<f64>,
}

impl Serialize for EstimatorDiagnosis {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        FlatDiagnosis {
            name: self.name.clone(),
            truth: self.truth,
            replicates_ok: self.replicates_ok,
            failures: self.failures.clone(),
            null_failures: self.null_failures,
            mean_estimate: self.mean_estimate,
            bias: self.bias,
            bias_mc_se: self.bias_mc_se,
            sd: self.sd,
            rmse: self.rmse,
            mean_se: self.mean_se,
            se_sd_ratio: self.se_sd_ratio,
            coverage: self.coverage.value,
            coverage_mc_se: self.coverage.mc_se,
            power: self.power.value,
            power_mc_se: self.power.mc_se,
            type1_error: self.type1_error.value,
            type1_error_mc_se: self.type1_error.mc_se,
            ri_power: self.ri_power.map(|r| r.value),
            ri_power_mc_se: self.ri_power.map(|r| r.mc_se),
            ri_type1_error: self.ri_type1_error.map(|r| r.value),
            ri_type1_error_mc_se: self.ri_type1_error.map(|r| r.mc_se),
        }
        .serialize(s)
    }
}

/// Read back what [`Serialize`] wrote (shard files of a sharded sweep): the
/// rates rebuilt from their value and Monte Carlo SE, every f64 as it was.
impl<'de> serde::Deserialize<'de> for EstimatorDiagnosis {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let f = FlatDiagnosis::deserialize(d)?;
        let rate = |value, mc_se| Rate { value, mc_se };
        let opt = |v: Option<f64>, se: Option<f64>| v.zip(se).map(|(v, se)| rate(v, se));
        Ok(EstimatorDiagnosis {
            name: f.name,
            truth: f.truth,
            replicates_ok: f.replicates_ok,
            failures: f.failures,
            null_failures: f.null_failures,
            mean_estimate: f.mean_estimate,
            bias: f.bias,
            bias_mc_se: f.bias_mc_se,
            sd: f.sd,
            rmse: f.rmse,
            mean_se: f.mean_se,
            se_sd_ratio: f.se_sd_ratio,
            coverage: rate(f.coverage, f.coverage_mc_se),
            power: rate(f.power, f.power_mc_se),
            type1_error: rate(f.type1_error, f.type1_error_mc_se),
            ri_power: opt(f.ri_power, f.ri_power_mc_se),
            ri_type1_error: opt(f.ri_type1_error, f.ri_type1_error_mc_se),
        })
    }
}

/// Diagnose one estimator's column of replicates against `truth`.
pub fn diagnose_estimator(
    name: &str,
    effect: &[&Outcome],
    null: &[&Outcome],
    ri: (&[Option<f64>], &[Option<f64>]),
    truth: f64,
    alpha: f64,
) -> EstimatorDiagnosis {
    let ri_rate = |ps: &[Option<f64>]| -> Option<Rate> {
        let v: Vec<f64> = ps.iter().flatten().copied().collect();
        Rate::of(v.iter().filter(|&&p| p <= alpha + 1e-12).count(), v.len())
    };
    let (ri_pow, ri_t1) = (ri_rate(ri.0), ri_rate(ri.1));
    let ok: Vec<&estimate::Estimate> = effect.iter().filter_map(|o| o.as_ref().ok()).collect();
    let mut failures = BTreeMap::new();
    for o in effect {
        if let Err(f) = o {
            *failures.entry(f.describe().to_string()).or_insert(0) += 1;
        }
    }
    let r = ok.len();
    let est = Moments::of(&ok.iter().map(|e| e.value).collect::<Vec<_>>());
    let sd = est.var().sqrt();
    let mse = ok.iter().map(|e| (e.value - truth).powi(2)).sum::<f64>() / r.max(1) as f64;
    let mean_se = ok.iter().map(|e| e.se).sum::<f64>() / r.max(1) as f64;
    let covered = ok
        .iter()
        .filter(|e| e.ci_low <= truth && truth <= e.ci_high)
        .count();
    let rejected = ok.iter().filter(|e| e.p_value < alpha).count();
    let null_ok: Vec<&estimate::Estimate> = null.iter().filter_map(|o| o.as_ref().ok()).collect();
    let null_rejected = null_ok.iter().filter(|e| e.p_value < alpha).count();
    let nan = Rate {
        value: f64::NAN,
        mc_se: f64::NAN,
    };
    let cov = Rate::of(covered, r).unwrap_or(nan);
    let pow = Rate::of(rejected, r).unwrap_or(nan);
    let t1 = Rate::of(null_rejected, null_ok.len()).unwrap_or(nan);
    EstimatorDiagnosis {
        name: name.to_string(),
        truth,
        replicates_ok: r,
        failures,
        null_failures: null.len() - null_ok.len(),
        mean_estimate: est.mean,
        bias: est.mean - truth,
        bias_mc_se: sd / (r as f64).sqrt(),
        sd,
        rmse: mse.sqrt(),
        mean_se,
        se_sd_ratio: mean_se / sd,
        coverage: cov,
        power: pow,
        type1_error: t1,
        ri_power: ri_pow,
        ri_type1_error: ri_t1,
    }
}

/// Edge-weighted contamination, averaged over replicates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Contamination {
    /// Share of treated units' exposure coming from control units.
    pub treated: f64,
    /// Share of control units' exposure coming from treated units.
    pub control: f64,
}

/// Design effects.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DesignEffect {
    /// [1 + ((1 + CV²)·m̄ − 1)·max(ICC, 0)] × the arm-size factor, with the
    /// estimated ICC (the bracket is 1 for user designs).
    pub analytic: f64,
    /// E[1/N₁ + 1/N₀]·n₁n₀/n: how much varying arm sizes cost (1 with fixed arms).
    pub arm_size_factor: Option<f64>,
    /// The formula used, in words, with the arm-size factor's method.
    pub formula: String,
    /// Var(DM) under this design / Var(DM) under complete user randomization, null run.
    pub simulated: f64,
    /// Monte Carlo SE of the simulated design effect (≈ deff·sqrt(2/(R − 1))).
    pub simulated_mc_se: f64,
}

/// Diagnosis of one design.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DesignDiagnosis {
    /// Design name.
    pub name: String,
    /// `user` or `cluster`.
    pub unit: Unit,
    /// Assignment mechanism.
    pub assignment: crate::data::design::Assignment,
    /// Treated share.
    pub treated_share: f64,
    /// Whether the partition is redrawn for every replicate (cluster figures
    /// then describe the first draw).
    pub partition_redrawn: bool,
    /// Randomization units.
    pub clusters: usize,
    /// Cluster sizes.
    pub cluster_sizes: crate::partition::SizeSummary,
    /// Weighted share of edges between randomization units.
    pub cut_edge_share: f64,
    /// Realized contamination.
    pub contamination: Contamination,
    /// Per cluster contamination distribution (cluster designs).
    pub contamination_per_cluster: Option<Spread>,
    /// Estimated ICC over the design's clusters (cluster designs).
    pub icc: Option<f64>,
    /// Design effects.
    pub design_effect: DesignEffect,
    /// n / simulated design effect.
    pub effective_sample_size: f64,
    /// Where the clusters were written.
    pub clusters_file: Option<String>,
    /// The exposure contrast HT and Hájek target (when they ran).
    pub exposure: Option<ExposureDiagnosis>,
    /// Per estimator (HT and Hájek against the exposure contrast, the others against the global effect).
    pub estimators: Vec<EstimatorDiagnosis>,
    /// Balance of the population file's metric and covariates between arms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance: Option<Balance>,
    /// How the clusters aged across a time split (`[graph] split_at`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aging: Option<super::aging::Aging>,
}

/// Diagnose a design from its run.
pub fn diagnose_design(
    g: &Graph,
    pop: &Population,
    design: &Design,
    run: &DesignRun,
    cfg: &SimConfig,
    truth: f64,
    clusters_file: Option<String>,
) -> DesignDiagnosis {
    let reps = &run.replicates;
    let n = pop.len() as f64;
    let estimators = run
        .estimator_names
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let effect: Vec<&Outcome> = reps.iter().map(|r| &r.effect[j]).collect();
            let null: Vec<&Outcome> = reps.iter().map(|r| &r.null[j]).collect();
            let t = run.own_truths[j].unwrap_or(truth);
            let ri_e: Vec<Option<f64>> = reps.iter().map(|r| r.ri_effect[j]).collect();
            let ri_n: Vec<Option<f64>> = reps.iter().map(|r| r.ri_null[j]).collect();
            let mut d = diagnose_estimator(name, &effect, &null, (&ri_e, &ri_n), t, cfg.alpha);
            d.truth = t;
            d
        })
        .collect();
    let q = crate::partition::quality(g, &design.clusters);
    let mean =
        |f: &dyn Fn(&Replicate) -> f64| reps.iter().map(f).sum::<f64>() / reps.len().max(1) as f64;
    let icc_values: Vec<f64> = reps.iter().filter_map(|r| r.icc).collect();
    let icc =
        (!icc_values.is_empty()).then(|| icc_values.iter().sum::<f64>() / icc_values.len() as f64);
    let m_bar = n / design.units() as f64;
    let cv2 = q.sizes.cv * q.sizes.cv;
    // A negative ANOVA estimate is sampling noise around a non-negative ICC:
    // truncated at 0, so the analytic design effect is never below 1.
    let clustering = match icc {
        Some(rho) => 1.0 + ((1.0 + cv2) * m_bar - 1.0) * rho.max(0.0),
        None => 1.0,
    };
    let arms = design.arm_size_factor();
    let analytic = clustering * arms.as_ref().map_or(1.0, |a| a.value);
    let formula = format!(
        "{}{}",
        if icc.is_some() {
            "[1 + ((1 + CV²)·m̄ − 1)·max(ICC, 0)]"
        } else {
            "1"
        },
        match &arms {
            Some(a) => format!(
                " × arm-size factor E[1/N₁ + 1/N₀]·n₁n₀/n = {:.4}, {}",
                a.value, a.method
            ),
            None => " (arm-size factor not computed for this design)".into(),
        }
    );
    // Reference: complete user randomization, exactly: (σ²_noise + S²)·n/(n1·n0).
    let (noise, s2) = pop.control_variance();
    let n1 = (design.spec.treated_share * n).round();
    let reference = (noise + s2) * n / (n1 * (n - n1));
    let dm: Vec<f64> = reps.iter().filter_map(|r| r.dm_null).collect();
    let var_dm = Moments::of(&dm).var();
    let simulated = var_dm / reference;
    let simulated_mc_se = simulated * (2.0 / (dm.len() as f64 - 1.0)).sqrt();
    DesignDiagnosis {
        name: design.spec.name.clone(),
        unit: design.spec.unit,
        assignment: design.spec.assignment,
        treated_share: design.spec.treated_share,
        partition_redrawn: design.is_redrawn(),
        clusters: design.units(),
        cluster_sizes: q.sizes,
        cut_edge_share: q.cut_edge_share,
        contamination: Contamination {
            treated: mean(&|r| r.contamination_treated),
            control: mean(&|r| r.contamination_control),
        },
        contamination_per_cluster: run.cluster_contamination.clone().map(Spread::of),
        icc,
        design_effect: DesignEffect {
            analytic,
            arm_size_factor: arms.map(|a| a.value),
            formula,
            simulated,
            simulated_mc_se,
        },
        effective_sample_size: n / simulated,
        clusters_file,
        exposure: run.exposure.clone(),
        estimators,
        balance: balance(pop, reps),
        aging: None,
    }
}

/// Balance of one pre-period variable between arms, over replicates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BalanceDiagnosis {
    /// The variable (the population file's metric or a covariate).
    pub variable: String,
    /// Mean over replicates of |SMD|.
    pub mean_abs_smd: f64,
    /// Its Monte Carlo SE.
    pub mean_abs_smd_mc_se: f64,
    /// 95th percentile of |SMD| (nearest rank).
    pub p95_abs_smd: f64,
    /// Share of replicates with |SMD| > 0.1.
    pub over_0_1: Rate,
}

/// Balance of every variable, and the share of replicates where any is off.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Balance {
    /// Per variable.
    pub variables: Vec<BalanceDiagnosis>,
    /// Share of replicates with any variable's |SMD| > 0.1.
    pub any_over_0_1: Rate,
    /// Replicates where a variable's SMD could not be computed (an arm empty or constant).
    pub undefined: usize,
}

fn balance(pop: &Population, reps: &[Replicate]) -> Option<Balance> {
    if pop.balance.is_empty() {
        return None;
    }
    let rate = |hits: usize, total: usize| {
        let r = hits as f64 / total.max(1) as f64;
        Rate {
            value: r,
            mc_se: (r * (1.0 - r) / total.max(1) as f64).sqrt(),
        }
    };
    let mut undefined = 0;
    let variables = pop
        .balance
        .iter()
        .enumerate()
        .map(|(j, (name, _))| {
            let mut a: Vec<f64> = reps
                .iter()
                .map(|r| r.balance[j].abs())
                .filter(|v| v.is_finite())
                .collect();
            undefined += reps.len() - a.len();
            let m = Moments::of(&a);
            a.sort_by(f64::total_cmp);
            BalanceDiagnosis {
                variable: name.clone(),
                mean_abs_smd: m.mean,
                mean_abs_smd_mc_se: (m.var() / m.n.max(1.0)).sqrt(),
                p95_abs_smd: if a.is_empty() {
                    f64::NAN
                } else {
                    crate::stats::quantile(&a, 0.95)
                },
                over_0_1: rate(a.iter().filter(|&&v| v > 0.1).count(), a.len()),
            }
        })
        .collect();
    let any = reps
        .iter()
        .filter(|r| r.balance.iter().any(|v| v.abs() > 0.1))
        .count();
    Some(Balance {
        variables,
        any_over_0_1: rate(any, reps.len()),
        undefined,
    })
}
