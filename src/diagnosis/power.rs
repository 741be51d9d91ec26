//! Power against effect size: the scenario's population with τ and γ scaled
//! so the exact global effect takes each requested value, simulated per
//! design beside the textbook curve with the design's design effect.

use super::diagnosands::Rate;
use super::engine::{run_design, SimConfig};
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

/// Power against effect size for every design (saturation designs excluded):
/// τ and γ are scaled together so the global effect takes each value, the
/// population is otherwise unchanged. The analytic curve is the textbook
/// power with the design's simulated design effect (no bias).
pub fn power_curves(
    p: &Prepared,
    spec: &PowerCurveSpec,
    deffs: &[f64],
    tick: &(dyn Fn() + Sync),
) -> Result<Vec<PowerCurve>> {
    let kind = spec.estimator.unwrap_or(p.config.estimators[0]);
    let j = p
        .config
        .estimators
        .iter()
        .position(|&k| k == kind)
        .unwrap_or(0);
    let cfg = SimConfig {
        replicates: spec.replicates.unwrap_or(p.config.replicates),
        ..p.config.clone()
    };
    // τ and γ scaled so the exact global effect equals each requested value
    // (solved through the logistic link for binary metrics).
    let scales: Vec<f64> = spec
        .effects
        .iter()
        .map(|&e| crate::inquiry::effect_scale(&p.population, e))
        .collect::<Result<_>>()?;
    let (noise, s2) = p.population.control_variance();
    let n = p.population.len() as f64;
    let mut out = Vec::new();
    for (di, d) in p.designs.iter().enumerate() {
        if d.spec.assignment == crate::data::design::Assignment::Saturation {
            continue;
        }
        let mut points = Vec::new();
        for (&effect, &scale) in spec.effects.iter().zip(&scales) {
            let mut pop = p.population.clone();
            pop.tau.iter_mut().for_each(|t| *t *= scale);
            pop.gamma *= scale;
            let run = run_design(&p.graph, &pop, d, &cfg, di, tick)?;
            let ok: Vec<&estimate::Estimate> = run
                .replicates
                .iter()
                .filter_map(|r| r.effect[j].as_ref().ok())
                .collect();
            let rej = ok.iter().filter(|e| e.p_value < cfg.alpha).count();
            let r = Rate::of(rej, ok.len()).unwrap_or(Rate {
                value: f64::NAN,
                mc_se: f64::NAN,
            });
            let share = d.spec.treated_share;
            let n_eff =
                1.0 / (1.0 / (share * n) + 1.0 / ((1.0 - share) * n)) / deffs[di].max(1e-12);
            // Equal-arms form with the harmonic per-arm size.
            let analytic = crate::diagnosis::calc::power(
                crate::diagnosis::calc::Metric::Continuous {
                    sd: (noise + s2).sqrt(),
                },
                effect,
                2.0 * n_eff,
                cfg.alpha,
            );
            points.push((effect, r.value, r.mc_se, analytic));
        }
        out.push(PowerCurve {
            design: d.spec.name.clone(),
            estimator: kind.name().to_string(),
            points,
        });
    }
    Ok(out)
}
