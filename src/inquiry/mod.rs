//! The inquiry: what a design × estimator is judged against.
//!
//! This module owns [`Estimand`] and the exact **global average treatment
//! effect** of a population (everyone treated against no one, with its direct
//! and spillover parts), and [`effect_scale`], which rescales τ and γ to reach
//! a requested global effect (power curves). The exposure contrasts of HT and
//! Hájek and the saturation effects are computed where their designs are set
//! up (`diagnosis::engine`), from the same population.

use crate::error::{Error, Result};
use crate::model::{Kind, Population};
use serde::Serialize;

/// The estimand: global average treatment effect and its parts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimand {
    /// mean_i [Y_i(everyone treated) − Y_i(no one treated)].
    pub value: f64,
    /// mean_i [Y_i(z_i = 1, no neighbour treated) − Y_i(0)].
    pub direct: f64,
    /// value − direct: what treating everyone else adds.
    pub spillover: f64,
}

/// The global average treatment effect of `pop`, exactly.
///
/// ```
/// use spillover::graph::generate::{Gnp, Model};
/// use spillover::model::{OutcomeSpec, Population};
/// use spillover::partition::Partition;
///
/// let g = Model::Gnp(Gnp { n: 500, p: 0.02 }).generate(5)?.graph;
/// let spec = OutcomeSpec { direct_effect: 0.1, spillover: 0.2, ..Default::default() };
/// let groups = Partition::from_labels(&vec![0u32; 500]);
/// let pop = Population::draw(&spec, &g, groups, 5)?;
/// // Linear in means: τ + γ·(share of users with neighbours).
/// let truth = spillover::inquiry::global_effect(&pop);
/// assert!((truth.value - (0.1 + 0.2 * pop.connected_share())).abs() < 1e-12);
/// # Ok::<(), spillover::Error>(())
/// ```
///
/// # Complexity
/// O(n).
pub fn global_effect(pop: &Population) -> Estimand {
    let n = pop.len();
    let (mut total, mut direct) = (0.0, 0.0);
    for i in 0..n {
        let e1 = if pop.inv_in_strength[i] > 0.0 {
            1.0
        } else {
            0.0
        };
        let y00 = pop.mean_outcome(i, false, 0.0);
        total += pop.mean_outcome(i, true, e1) - y00;
        direct += pop.mean_outcome(i, true, 0.0) - y00;
    }
    let (value, direct) = (total / n as f64, direct / n as f64);
    Estimand {
        value,
        direct,
        spillover: value - direct,
    }
}

/// The global effect when every τ_i and γ are multiplied by `scale`.
fn global_effect_scaled(pop: &Population, scale: f64) -> f64 {
    let n = pop.len();
    let mut total = 0.0;
    for i in 0..n {
        let e1 = if pop.inv_in_strength[i] > 0.0 {
            1.0
        } else {
            0.0
        };
        // Linear predictors with everyone treated and no one treated.
        let eta1 = pop.alpha[i] + scale * (pop.tau[i] + pop.gamma * pop.f(e1));
        let eta0 = pop.alpha[i] + scale * pop.gamma * pop.f(0.0);
        total += match pop.kind {
            Kind::Continuous => eta1 - eta0,
            Kind::Binary => {
                let p = |eta: f64| 1.0 / (1.0 + (-(pop.logit_base + eta)).exp());
                p(eta1) - p(eta0)
            }
        };
    }
    total / n as f64
}

/// The factor by which τ and γ must both be multiplied for the exact
/// global effect to equal `effect`: `effect / current` for continuous
/// metrics; for binary metrics (logistic link, not linear) solved by
/// bisection to 1e-12. An error when the model has no effect to scale,
/// or the effect cannot be reached (a rate difference beyond what the
/// logistic model can give).
///
/// # Complexity
/// O(n) continuous; O(n · 200) at most for binary metrics.
pub fn effect_scale(pop: &Population, effect: f64) -> Result<f64> {
    let base = global_effect_scaled(pop, 1.0);
    if !effect.is_finite() {
        return Err(Error::parameter("effects", effect, "finite effects"));
    }
    if effect == 0.0 {
        return Ok(0.0);
    }
    if base == 0.0 || !base.is_finite() {
        return Err(Error::input(
            "effects: the outcome model's global effect is 0 (direct_effect and spillover \
             are both zero), so there is no effect to scale: set a nonzero direct_effect or spillover",
        ));
    }
    let guess = effect / base;
    if pop.kind == Kind::Continuous {
        return Ok(guess);
    }
    // f(s) is 0 at s = 0 and monotone in s (τ_i and γ of one sign); bracket, then bisect.
    let f = |s: f64| global_effect_scaled(pop, s) - effect;
    let (mut lo, mut hi) = (0.0f64, guess);
    let mut grown = 0;
    while f(hi).signum() == f(lo).signum() && f(hi) != 0.0 {
        lo = hi;
        hi *= 2.0;
        grown += 1;
        if grown > 60 || !hi.is_finite() {
            return Err(Error::input(format!(
                "effects: a global effect of {effect} cannot be reached by scaling the \
                 direct effect and spillover of this binary metric (its largest is about {:.4})",
                global_effect_scaled(pop, lo)
            )));
        }
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        let fm = f(mid);
        if fm == 0.0 || (hi - lo).abs() <= 1e-15 * mid.abs().max(1e-300) {
            return Ok(mid);
        }
        if fm.signum() == f(lo).signum() {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(0.5 * (lo + hi))
}
