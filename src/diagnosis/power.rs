//! Power against effect size: the scenario's population with τ and γ scaled
//! so the exact global effect takes each requested value, simulated per
//! design beside the textbook curve with the design's design effect.

use super::diagnosands::Rate;
use super::engine::{run_design_part, SimConfig};
use super::Prepared;
use crate::answer::{self as estimate, EstimatorKind};
use crate::error::Result;
use serde::{Deserialize, Serialize};

/// The optional `[power_curve]` section: power against effect size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowerCurveSpec {
    /// Global effects to simulate (τ and γ scaled together to reach each).
    pub effects: Vec<f64>,
    /// Replicates per effect and design (default: the scenario's).
    #[serde(default)]
    pub replicates: Option<usize>,
    /// Estimator whose power is drawn (default: the scenario's first).
    #[serde(default)]
    pub estimator: Option<EstimatorKind>,
}

/// One design's power curve: (effect, simulated power, its MC SE, analytic power).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PowerCurve {
    /// Design name.
    pub design: String,
    /// Estimator name.
    pub estimator: String,
    /// (global effect, simulated power, Monte Carlo SE, analytic power with the design effect).
    pub points: Vec<(f64, f64, f64, f64)>,
}

/// Rejections and usable estimates of a power curve's estimator: per curve
/// design (saturation designs have none), per effect. Integer counts, so
/// the counts of disjoint replicate slices add up exactly.
pub type PowerCounts = Vec<Vec<(usize, usize)>>;

/// Replicates per point of a power curve.
pub fn replicates(p: &Prepared, spec: &PowerCurveSpec) -> usize {
    spec.replicates.unwrap_or(p.config.replicates)
}

fn estimator_index(p: &Prepared, spec: &PowerCurveSpec) -> (EstimatorKind, usize) {
    let kind = spec.estimator.unwrap_or(p.config.estimators[0]);
    let j = p
        .config
        .estimators
        .iter()
        .position(|&k| k == kind)
        .unwrap_or(0);
    (kind, j)
}

fn curve_designs(p: &Prepared) -> impl Iterator<Item = (usize, &crate::data::design::Design)> {
    p.designs
        .iter()
        .enumerate()
        .filter(|(_, d)| d.spec.assignment != crate::data::design::Assignment::Saturation)
}

/// Simulate replicates `range` (its start a multiple of
/// [`BLOCK`](super::engine::BLOCK)) of every point of the power curve and
/// count its rejections: τ and γ are scaled together so the global effect
/// takes each value, the population is otherwise unchanged.
///
/// # Complexity
/// Curve designs × effects × `range.len()` replicates.
pub fn power_counts(
    p: &Prepared,
    spec: &PowerCurveSpec,
    range: std::ops::Range<usize>,
    tick: &(dyn Fn() + Sync),
) -> Result<PowerCounts> {
    let (_, j) = estimator_index(p, spec);
    let cfg = SimConfig {
        replicates: replicates(p, spec),
        ..p.config.clone()
    };
    // τ and γ scaled so the exact global effect equals each requested value
    // (solved through the logistic link for binary metrics).
    let scales: Vec<f64> = spec
        .effects
        .iter()
        .map(|&e| crate::inquiry::effect_scale(&p.population, e))
        .collect::<Result<_>>()?;
    let mut out = Vec::new();
    for (di, d) in curve_designs(p) {
        let mut counts = Vec::new();
        for &scale in &scales {
            let mut pop = p.population.clone();
            pop.tau.iter_mut().for_each(|t| *t *= scale);
            pop.gamma *= scale;
            let (_, part) = run_design_part(&p.graph, &pop, d, &cfg, di, range.clone(), tick)?;
            let ok: Vec<&estimate::Estimate> = part
                .replicates
                .iter()
                .filter_map(|r| r.effect[j].as_ref().ok())
                .collect();
            let rej = ok.iter().filter(|e| e.p_value < cfg.alpha).count();
            counts.push((rej, ok.len()));
        }
        out.push(counts);
    }
    Ok(out)
}

/// The power curves from their counts (summed over every replicate) and
/// each design's simulated design effect (for the analytic curve: the
/// textbook power with that design effect, no bias).
pub fn curves_from_counts(
    p: &Prepared,
    spec: &PowerCurveSpec,
    deffs: &[f64],
    counts: &PowerCounts,
) -> Vec<PowerCurve> {
    let (kind, _) = estimator_index(p, spec);
    let (noise, s2) = p.population.control_variance();
    let n = p.population.len() as f64;
    curve_designs(p)
        .zip(counts)
        .map(|((di, d), counts)| {
            let points = spec
                .effects
                .iter()
                .zip(counts)
                .map(|(&effect, &(rej, ok))| {
                    let r = Rate::of(rej, ok).unwrap_or(Rate {
                        value: f64::NAN,
                        mc_se: f64::NAN,
                    });
                    let share = d.spec.treated_share;
                    let n_eff = 1.0
                        / (1.0 / (share * n) + 1.0 / ((1.0 - share) * n))
                        / deffs[di].max(1e-12);
                    // Equal-arms form with the harmonic per-arm size.
                    let analytic = crate::diagnosis::calc::power(
                        crate::diagnosis::calc::Metric::Continuous {
                            sd: (noise + s2).sqrt(),
                        },
                        effect,
                        2.0 * n_eff,
                        p.config.alpha,
                    );
                    (effect, r.value, r.mc_se, analytic)
                })
                .collect();
            PowerCurve {
                design: d.spec.name.clone(),
                estimator: kind.name().to_string(),
                points,
            }
        })
        .collect()
}

/// Power against effect size for every design (saturation designs excluded),
/// simulated ([`power_counts`] over every replicate) beside the analytic
/// curve ([`curves_from_counts`]).
pub fn power_curves(
    p: &Prepared,
    spec: &PowerCurveSpec,
    deffs: &[f64],
    tick: &(dyn Fn() + Sync),
) -> Result<Vec<PowerCurve>> {
    let counts = power_counts(p, spec, 0..replicates(p, spec), tick)?;
    Ok(curves_from_counts(p, spec, deffs, &counts))
}
