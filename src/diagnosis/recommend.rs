//! The recommendation: which design × estimator to run, said in words a PM
//! can be given.
//!
//! Rules (each from the Monte Carlo error, none from a fixed window):
//! 1. Only pairs that estimate the question's estimand, the global effect,
//!    are ranked. Exposure contrasts (HT, Hájek) and saturation effects are
//!    other estimands: listed, never ranked against it.
//! 2. A pair that fails in more than [`MAX_FAILURE_SHARE`] of replicates is
//!    not ranked. A pair is eligible unless its CI coverage is significantly below
//!    nominal: below 1 − α by more than [`Z_SIGNIFICANT`] Monte Carlo SEs
//!    (sqrt((1 − α)α/R)). A conservative interval stays eligible; its cost
//!    shows up as lower power.
//! 3. Among eligible pairs, the lowest RMSE wins; pairs whose RMSE is within
//!    2 Monte Carlo SE of the lowest are ties, broken by power.
//! 4. For the pick and the runner-up (the best eligible pair of another
//!    design), the report states the bias as a share of the effect, the power
//!    at the scenario's effect and the minimum detectable effect at 80 %
//!    power, (z₁₋α/₂ + z₀.₈)·SD from the simulated SD; it warns when the
//!    pick's power is below 80 % and says what would help.

use super::{DesignDiagnosis, DesignRun, EstimatorDiagnosis};
use crate::stats::Moments;
use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal};

/// One-sided z beyond which coverage counts as significantly below nominal
/// (2: p ≈ 0.023 one-sided; quickstart's pick is the same for seeds 11–14
/// at 1,600 replicates, see `tests/recommendation.rs`).
pub const Z_SIGNIFICANT: f64 = 2.0;

/// Largest share of replicates an estimator may fail in and still be ranked
/// (its diagnosands describe only the replicates where it could be computed).
pub const MAX_FAILURE_SHARE: f64 = 0.1;

/// One design × estimator, described for the decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Choice {
    /// Design name.
    pub design: String,
    /// Estimator name.
    pub estimator: String,
    /// RMSE against the global effect.
    pub rmse: f64,
    /// Mean estimate − global effect.
    pub bias: f64,
    /// Bias / global effect (NaN when the effect is 0).
    pub bias_share: f64,
    /// SD of the estimates.
    pub sd: f64,
    /// Mean estimated standard error.
    pub mean_se: f64,
    /// Power at the scenario's effect.
    pub power: f64,
    /// Its Monte Carlo SE.
    pub power_mc_se: f64,
    /// CI coverage.
    pub coverage: f64,
    /// Its Monte Carlo SE.
    pub coverage_mc_se: f64,
    /// Minimum detectable effect at 80 % power (two-sided α), from the simulated SD.
    pub mde80: f64,
    /// Randomization units of the design.
    pub units: usize,
}

/// The decision and the reasons for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recommendation {
    /// The design × estimator to run (None when no pair is eligible).
    pub pick: Option<Choice>,
    /// The best eligible pair of another design (or, with one design, the next pair).
    pub runner_up: Option<Choice>,
    /// RMSE(runner-up) − RMSE(pick).
    pub rmse_gap: Option<f64>,
    /// Monte Carlo SE of that gap (paired when both share a design).
    pub rmse_gap_mc_se: Option<f64>,
    /// `lowest RMSE`, or `power among RMSE ties` when the RMSE gap was within 2 MC SE.
    pub decided_by: String,
    /// Pairs that give exactly the pick's estimates (e.g. DM with another SE).
    pub same_estimates: Vec<String>,
    /// When nothing is eligible: the pair closest to eligibility and why it fails.
    pub closest: Option<Choice>,
    /// Pairs with another estimand (exposure contrasts, saturation effects), not ranked.
    pub other_estimands: Vec<String>,
    /// Warnings (low power, nothing eligible).
    pub warnings: Vec<String>,
    /// The recommendation in plain words, one paragraph per entry.
    pub text: Vec<String>,
}

fn mse_gap_se(a: &[Option<f64>], b: &[Option<f64>], paired: bool) -> f64 {
    if paired {
        let d: Vec<f64> = a
            .iter()
            .zip(b)
            .filter_map(|(x, y)| Some((*x)? - (*y)?))
            .collect();
        (Moments::of(&d).var() / d.len() as f64).sqrt()
    } else {
        let v = |x: &[Option<f64>]| {
            let y: Vec<f64> = x.iter().flatten().copied().collect();
            Moments::of(&y).var() / y.len() as f64
        };
        (v(a) + v(b)).sqrt()
    }
}

fn squared_errors(run: &DesignRun, j: usize, truth: f64) -> Vec<Option<f64>> {
    run.replicates
        .iter()
        .map(|r| r.effect[j].as_ref().ok().map(|e| (e.value - truth).powi(2)))
        .collect()
}

fn pct(x: f64) -> String {
    if x.is_finite() {
        format!("{:.0} %", 100.0 * x)
    } else {
        "—".into()
    }
}

/// Build the recommendation from diagnosed designs and their runs.
pub fn recommend(
    designs: &[DesignDiagnosis],
    runs: &[DesignRun],
    alpha: f64,
    effect: f64,
) -> Recommendation {
    let nominal = 1.0 - alpha;
    let z = Normal::new(0.0, 1.0).map_or(1.96, |n| n.inverse_cdf(1.0 - alpha / 2.0));
    let z80 = Normal::new(0.0, 1.0).map_or(0.8416, |n| n.inverse_cdf(0.8));
    let choice = |di: usize, e: &EstimatorDiagnosis| Choice {
        design: designs[di].name.clone(),
        estimator: e.name.clone(),
        rmse: e.rmse,
        bias: e.bias,
        bias_share: if effect != 0.0 {
            e.bias / effect
        } else {
            f64::NAN
        },
        sd: e.sd,
        mean_se: e.mean_se,
        power: e.power.value,
        power_mc_se: e.power.mc_se,
        coverage: e.coverage.value,
        coverage_mc_se: e.coverage.mc_se,
        mde80: (z + z80) * e.sd,
        units: designs[di].clusters,
    };
    let mut other_estimands = Vec::new();
    let mut unusable = Vec::new();
    // (design, estimator index, rmse) of pairs targeting the global effect.
    let mut candidates: Vec<(usize, usize)> = Vec::new();
    for (di, d) in designs.iter().enumerate() {
        for (j, e) in d.estimators.iter().enumerate() {
            if runs[di].own_truths.get(j).copied().flatten().is_some() {
                let what = if e.name.contains('@') || e.name == "total" {
                    "a saturation effect"
                } else {
                    "the exposure contrast"
                };
                other_estimands.push(format!(
                    "{} / {} (targets {what}, {:.4} here)",
                    d.name, e.name, e.truth
                ));
            } else if e.replicates_ok > 1
                && e.rmse.is_finite()
                && (e.replicates_ok as f64)
                    >= (1.0 - MAX_FAILURE_SHARE) * runs[di].replicates.len() as f64
            {
                candidates.push((di, j));
            } else {
                unusable.push(format!(
                    "{} / {} (computed in only {} of {} replicates)",
                    d.name,
                    e.name,
                    e.replicates_ok,
                    runs[di].replicates.len()
                ));
            }
        }
    }
    let est = |&(di, j): &(usize, usize)| &designs[di].estimators[j];
    let cov_floor = |e: &EstimatorDiagnosis| {
        nominal - Z_SIGNIFICANT * (nominal * alpha / e.replicates_ok.max(1) as f64).sqrt()
    };
    let mut eligible: Vec<(usize, usize)> = candidates
        .iter()
        .copied()
        .filter(|c| est(c).coverage.value >= cov_floor(est(c)))
        .collect();
    // RMSEs equal to 9 significant digits are equal: estimators that give
    // the same estimates (e.g. dm-cr2 and cluster-means with equal clusters)
    // are then ordered by the scenario, not by summation-order rounding.
    let key = |x: f64| format!("{x:.8e}").parse::<f64>().unwrap_or(x);
    eligible.sort_by(|a, b| {
        key(est(a).rmse)
            .total_cmp(&key(est(b).rmse))
            .then(a.0.cmp(&b.0))
            .then(a.1.cmp(&b.1))
    });
    let mut rec = Recommendation {
        pick: None,
        runner_up: None,
        rmse_gap: None,
        rmse_gap_mc_se: None,
        decided_by: String::new(),
        same_estimates: Vec::new(),
        closest: None,
        other_estimands,
        warnings: Vec::new(),
        text: Vec::new(),
    };
    let gap = |a: (usize, usize), b: (usize, usize)| -> (f64, f64) {
        let (ea, eb) = (est(&a), est(&b));
        let sa = squared_errors(&runs[a.0], a.1, ea.truth);
        let sb = squared_errors(&runs[b.0], b.1, eb.truth);
        let se = mse_gap_se(&sb, &sa, a.0 == b.0);
        // RMSE_b − RMSE_a = (MSE_b − MSE_a)/(RMSE_b + RMSE_a).
        (eb.rmse - ea.rmse, se / (ea.rmse + eb.rmse))
    };
    let Some(&best) = eligible.first() else {
        // Nothing eligible: the pair whose coverage falls least short.
        let closest = candidates.iter().max_by(|a, b| {
            let short = |c: &(usize, usize)| {
                (est(c).coverage.value - nominal) / est(c).coverage.mc_se.max(1e-12)
            };
            short(a)
                .total_cmp(&short(b))
                .then(b.0.cmp(&a.0))
                .then(b.1.cmp(&a.1))
        });
        let w = match closest {
            Some(c) => {
                let e = est(c);
                let ch = choice(c.0, e);
                let cause = if e.se_sd_ratio < 0.9 {
                    format!(
                        "its standard errors are too small (mean SE / SD = {:.2}){}",
                        e.se_sd_ratio,
                        if e.bias.abs() > 2.0 * e.bias_mc_se {
                            format!(" and its estimates are biased by {:+.4}", e.bias)
                        } else {
                            String::new()
                        }
                    )
                } else {
                    format!(
                        "its estimates are biased by {:+.4} ({} of the effect) against an SD of {:.4}",
                        e.bias,
                        pct(ch.bias_share),
                        e.sd
                    )
                };
                let msg = format!(
                    "No design × estimator keeps its confidence intervals honest: every one covers the true effect significantly less often than {}. \
                     Closest: design {} with {}, covering {} (± {:.1} points) because {cause}. \
                     Reduce the bias (clusters that cut fewer edges) or use an estimator with honest standard errors.",
                    pct(nominal), ch.design, ch.estimator, pct(e.coverage.value), 100.0 * e.coverage.mc_se
                );
                rec.closest = Some(ch);
                msg
            }
            None => "No design × estimator targeting the global effect could be computed.".into(),
        };
        rec.warnings.push(w.clone());
        rec.text.push(w);
        return rec;
    };
    // Ties with the lowest RMSE (within 2 MC SE of the gap), broken by power.
    let mut ties: Vec<(usize, usize)> = vec![best];
    for &c in &eligible[1..] {
        let (g, se) = gap(best, c);
        if g <= 2.0 * se {
            ties.push(c);
        }
    }
    let identical = |a: (usize, usize), b: (usize, usize)| {
        a.0 == b.0 && (est(&a).rmse - est(&b).rmse).abs() <= 1e-12 * est(&a).rmse.max(1e-300)
    };
    // With no effect, "power" is the false-positive rate: no tie-break on it.
    if effect == 0.0 {
        ties.truncate(1);
    }
    let pick = *ties
        .iter()
        .max_by(|a, b| {
            est(a)
                .power
                .value
                .total_cmp(&est(b).power.value)
                .then(est(b).rmse.total_cmp(&est(a).rmse))
                .then(b.0.cmp(&a.0))
                .then(b.1.cmp(&a.1))
        })
        .unwrap_or(&best);
    rec.decided_by = if pick != best && !identical(pick, best) {
        "power among RMSE ties".into()
    } else {
        "lowest RMSE".into()
    };
    rec.same_estimates = eligible
        .iter()
        .filter(|&&c| c != pick && identical(c, pick))
        .map(|&(di, j)| format!("{} / {}", designs[di].name, designs[di].estimators[j].name))
        .collect();
    let runner = eligible
        .iter()
        .find(|c| c.0 != pick.0)
        .or_else(|| eligible.iter().find(|&&c| c != pick && !identical(c, pick)))
        .copied();
    let p = choice(pick.0, est(&pick));
    let among = if eligible.len() == 1 {
        "It is the only design × estimator pair that estimates the global effect with honest confidence intervals".to_string()
    } else {
        format!(
            "Among the {} design × estimator pairs that estimate the global effect with honest confidence intervals, it",
            eligible.len()
        )
    };
    let mut text = vec![format!(
        "Run design {} and analyse it with {}. {among}{}.",
        p.design,
        p.estimator,
        if eligible.len() == 1 {
            String::new()
        } else if rec.decided_by == "lowest RMSE" {
            " has the lowest error (RMSE)".to_string()
        } else {
            " has the most power among those whose error (RMSE) is the lowest within Monte Carlo error".to_string()
        }
    )];
    let describe = |c: &Choice| {
        format!(
            "{} / {}: on average off by {:+.4} ({} of the {:.4} effect); detects the effect in {} of experiments (± {:.0} points); smallest effect detectable with 80 % power: {:.4}; coverage of its {:.0} % intervals {}.",
            c.design,
            c.estimator,
            c.bias,
            pct(c.bias_share.abs()),
            effect,
            pct(c.power),
            100.0 * c.power_mc_se,
            c.mde80,
            100.0 * nominal,
            pct(c.coverage)
        )
    };
    text.push(format!("Pick — {}", describe(&p)));
    if let Some(u) = runner {
        let uc = choice(u.0, est(&u));
        let (g, se) = gap(pick, u);
        rec.rmse_gap = Some(g);
        rec.rmse_gap_mc_se = Some(se);
        text.push(format!(
            "Runner-up — {} Its RMSE is {} by {:.4} ± {:.4} (Monte Carlo SE){}.",
            describe(&uc),
            if g >= 0.0 { "higher" } else { "lower" },
            g.abs(),
            se,
            if g.abs() > 2.0 * se {
                ""
            } else {
                "; within Monte Carlo error, so run more replicates to separate them"
            }
        ));
        rec.runner_up = Some(uc);
    }
    if p.power < 0.8 && effect != 0.0 {
        // What the test sees is the mean estimate (effect + bias) against
        // its standard error: units scale both SD and SE by 1/sqrt(units).
        let seen = (effect + p.bias).abs();
        let spread = p.sd.max(p.mean_se);
        let needed = ((z + z80) * spread / seen).powi(2) * p.units as f64;
        let unit = if designs[pick.0].unit == crate::data::design::Unit::Cluster {
            "clusters"
        } else {
            "users"
        };
        let w = format!(
            "Low power: with design {} the test detects an effect of {:.4} in only {} of experiments. \
             Its precision comes from the number of randomization units ({} {unit}): {}; \
             more users per cluster help little when outcomes are correlated within clusters.",
            p.design,
            effect,
            pct(p.power),
            p.units,
            if needed.is_finite() && needed > p.units as f64 {
                format!("about {:.0} {unit} of the same kind would give 80 % power", needed.ceil())
            } else if needed.is_finite() {
                format!("a few more {unit} of the same kind would reach 80 % power")
            } else {
                "its bias cancels the effect, so more units alone will not help".to_string()
            }
        );
        rec.warnings.push(w.clone());
        text.push(w);
    }
    if !unusable.is_empty() {
        text.push(format!(
            "Not ranked (fails in more than {:.0} % of replicates): {}.",
            100.0 * MAX_FAILURE_SHARE,
            unusable.join("; ")
        ));
    }
    rec.pick = Some(p);
    rec.text = text;
    rec
}
