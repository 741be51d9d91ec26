//! Exposure mappings and their exact probabilities under a design.
//!
//! This module owns [`Mapping`] (full-neighbourhood, fractional-q and
//! k-neighbours exposure, each with a treated condition and its control
//! mirror), the test of whether a unit is in either condition for one
//! assignment ([`conditions`]), and [`Probabilities`]: for every node, the
//! probability under the design of being in the treated and in the control
//! condition.
//!
//! Exact probabilities, for user and cluster designs under Bernoulli(p) or
//! complete (M of K) randomization: let `s_i` be the number of distinct
//! clusters touching i's closed (in-)neighbourhood. Full exposure has the closed
//! forms `p^{s_i}` and `∏_{t<s_i} (M − t)/(K − t)` (mirror forms for control).
//! Fractional and k-neighbour exposure use an exact dynamic programme over the
//! other clusters touching the neighbourhood, each with its neighbour count,
//! counting subsets by size and (capped) count; on weighted graphs, and for
//! stratified or matched designs, probabilities are estimated from auxiliary
//! assignments instead (Aronow & Samii 2017), with their Monte Carlo error.

use crate::design::{Assignment, Design};
use crate::graph::Graph;
use crate::rng::{self, Rng};
use serde::{Deserialize, Serialize};
use statrs::function::factorial::ln_binomial;

/// An exposure mapping.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Mapping {
    /// Treated: the unit and all its (in-)neighbours are treated; control: all in control.
    Full,
    /// Treated: the unit is treated and at least a share q of its neighbours'
    /// weight is treated; control: the mirror.
    Fractional {
        /// Required share, in (0, 1].
        q: f64,
    },
    /// Treated: the unit is treated with at least k treated neighbours;
    /// control: in control with at least k control neighbours.
    KNeighbours {
        /// Required number of neighbours, ≥ 1.
        k: u32,
    },
}

impl Mapping {
    /// Short name for reports, e.g. `full`, `fractional-0.75`, `k-neighbours-2`.
    pub fn name(&self) -> String {
        match self {
            Mapping::Full => "full".into(),
            Mapping::Fractional { q } => format!("fractional-{q}"),
            Mapping::KNeighbours { k } => format!("k-neighbours-{k}"),
        }
    }

    /// Check parameters.
    pub fn validate(&self) -> crate::error::Result<()> {
        match *self {
            Mapping::Fractional { q } if !(q > 0.0 && q <= 1.0) => Err(crate::error::Error::input(
                format!("exposure fractional q = {q}: expected a number in (0, 1]"),
            )),
            Mapping::KNeighbours { k: 0 } => Err(crate::error::Error::input(
                "exposure k-neighbours k = 0: expected at least 1",
            )),
            _ => Ok(()),
        }
    }
}

/// Whether node `i` is in the treated and in the control condition for the
/// node arms `z` (weights from the in-adjacency; unweighted counts for k-neighbours).
pub fn conditions(g: &Graph, m: &Mapping, z: &[u8], i: u32) -> (bool, bool) {
    let zi = z[i as usize] == 1;
    let nb = g.in_neighbors(i);
    let w = g.in_weights(i);
    let (mut wt, mut wall, mut ct) = (0.0f64, 0.0f64, 0u32);
    for (k, &j) in nb.iter().enumerate() {
        if j == i {
            continue;
        }
        let wj = w.map_or(1.0, |w| w[k]);
        wall += wj;
        if z[j as usize] == 1 {
            wt += wj;
            ct += 1;
        }
    }
    let deg = nb.iter().filter(|&&j| j != i).count() as u32;
    match *m {
        Mapping::Full => (zi && wt == wall, !zi && wt == 0.0),
        Mapping::Fractional { q } => {
            let share = if wall > 0.0 { wt / wall } else { 1.0 };
            let cshare = if wall > 0.0 { 1.0 - share } else { 1.0 };
            (zi && share >= q - 1e-12, !zi && cshare >= q - 1e-12)
        }
        Mapping::KNeighbours { k } => (zi && ct >= k, !zi && deg - ct >= k),
    }
}

/// How probabilities were obtained.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "method")]
pub enum Method {
    /// Exact (closed form or dynamic programme).
    Exact,
    /// Estimated from auxiliary assignments.
    Estimated {
        /// Auxiliary draws.
        draws: usize,
    },
}

/// Each node's probability of the treated and of the control condition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Probabilities {
    /// P(treated condition).
    pub treated: Vec<f64>,
    /// P(control condition).
    pub control: Vec<f64>,
    /// How they were obtained.
    pub method: Method,
}

/// A node's neighbourhood seen by clusters: its own cluster's neighbour count
/// and the counts of the other clusters touching it.
struct Profile {
    own: u32,
    others: Vec<u32>,
}

fn profile(g: &Graph, labels: &[u32], i: u32, acc: &mut [u32], touched: &mut Vec<u32>) -> Profile {
    let own_c = labels[i as usize];
    let mut own = 0u32;
    for &j in g.in_neighbors(i) {
        if j == i {
            continue;
        }
        let c = labels[j as usize];
        if c == own_c {
            own += 1;
        } else {
            if acc[c as usize] == 0 {
                touched.push(c);
            }
            acc[c as usize] += 1;
        }
    }
    touched.sort_unstable();
    let others = touched.iter().map(|&c| acc[c as usize]).collect();
    for &c in touched.iter() {
        acc[c as usize] = 0;
    }
    touched.clear();
    Profile { own, others }
}

/// Randomization of clusters into an arm: Bernoulli with probability `p`, or
/// exactly `m` of `k` clusters.
#[derive(Debug, Clone, Copy)]
enum Arm {
    Bernoulli(f64),
    Complete { m: u64, k: u64 },
}

impl Arm {
    /// ln P(own cluster and exactly a given set of `j` of the `others` other
    /// touching clusters are in the arm, the rest of them not).
    fn ln_pattern(&self, j: u64, others: u64) -> f64 {
        match *self {
            Arm::Bernoulli(p) => (j + 1) as f64 * p.ln() + (others - j) as f64 * (1.0 - p).ln(),
            Arm::Complete { m, k } => {
                let s = others + 1;
                if m < j + 1 || k - s < m - j - 1 {
                    f64::NEG_INFINITY
                } else {
                    ln_binomial(k - s, m - j - 1) - ln_binomial(k, m)
                }
            }
        }
    }
}

/// P(own cluster in the arm and at least `need` neighbours in the arm), where
/// the own cluster contributes `own` and each other touching cluster its count.
fn prob_at_least(arm: Arm, own: u32, others: &[u32], need: i64) -> f64 {
    let s1 = others.len() as u64;
    let need = need - own as i64;
    if need <= 0 {
        // Only the own cluster matters.
        return (0..=s1)
            .map(|j| (ln_binomial(s1, j) + arm.ln_pattern(j, s1)).exp())
            .sum();
    }
    let need = need as usize;
    let total: u64 = others.iter().map(|&c| c as u64).sum();
    if (total as usize) < need {
        return 0.0;
    }
    if others.iter().all(|&c| c == 1) {
        // Every other cluster adds one neighbour (user designs): N(j) = C(s1, j) for j ≥ need.
        return (need as u64..=s1)
            .map(|j| (ln_binomial(s1, j) + arm.ln_pattern(j, s1)).exp())
            .sum();
    }
    // N[j][c]: subsets of size j with capped count c (c = need means ≥ need).
    let width = need + 1;
    let mut n = vec![0.0f64; (others.len() + 1) * width];
    n[0] = 1.0;
    for (t, &x) in others.iter().enumerate() {
        for j in (0..=t).rev() {
            for c in (0..width).rev() {
                let v = n[j * width + c];
                if v != 0.0 {
                    let nc = (c + x as usize).min(need);
                    n[(j + 1) * width + nc] += v;
                }
            }
        }
    }
    (0..=s1 as usize)
        .map(|j| {
            let cnt = n[j * width + need];
            if cnt == 0.0 {
                0.0
            } else {
                (cnt.ln() + arm.ln_pattern(j as u64, s1)).exp()
            }
        })
        .sum()
}

/// Exact probabilities, where the design and graph allow (see the module
/// docs); `None` otherwise.
pub fn exact(g: &Graph, design: &Design, m: &Mapping) -> Option<Probabilities> {
    let k = design.units() as u64;
    let p = design.spec.treated_share;
    let (arm_t, arm_c) = match design.spec.assignment {
        Assignment::Bernoulli => (Arm::Bernoulli(p), Arm::Bernoulli(1.0 - p)),
        Assignment::Complete => {
            let mt = (p * k as f64).round() as u64;
            (Arm::Complete { m: mt, k }, Arm::Complete { m: k - mt, k })
        }
        _ => return None,
    };
    if g.is_weighted() && matches!(m, Mapping::Fractional { .. }) {
        return None;
    }
    let labels = design.clusters.labels();
    let n = g.node_count();
    let mut acc = vec![0u32; design.units()];
    let mut touched = Vec::new();
    let (mut treated, mut control) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n as u32 {
        let pr = profile(g, labels, i, &mut acc, &mut touched);
        let deg = pr.own + pr.others.iter().sum::<u32>();
        let need = match *m {
            // All neighbours: every touching cluster in the arm.
            Mapping::Full => deg as i64,
            Mapping::Fractional { q } => (q * deg as f64 - 1e-9).ceil() as i64,
            Mapping::KNeighbours { k } => k as i64,
        };
        let (pt, pc) = if let Mapping::Full = m {
            let s1 = pr.others.len() as u64;
            (
                arm_t.ln_pattern(s1, s1).exp(),
                arm_c.ln_pattern(s1, s1).exp(),
            )
        } else {
            (
                prob_at_least(arm_t, pr.own, &pr.others, need),
                prob_at_least(arm_c, pr.own, &pr.others, need),
            )
        };
        treated.push(pt.clamp(0.0, 1.0));
        control.push(pc.clamp(0.0, 1.0));
    }
    Some(Probabilities {
        treated,
        control,
        method: Method::Exact,
    })
}

/// Probabilities estimated from `draws` auxiliary assignments of the design.
pub fn estimated(
    g: &Graph,
    design: &Design,
    m: &Mapping,
    draws: usize,
    seed: u64,
) -> Probabilities {
    let n = g.node_count();
    let (mut t, mut c) = (vec![0u32; n], vec![0u32; n]);
    let mut r: Rng = rng::stream(seed, &[rng::purpose::EXPOSURE, 0]);
    let (mut zc, mut z) = (Vec::new(), vec![0u8; n]);
    for _ in 0..draws {
        design.draw(&mut r, &mut zc, &mut z);
        for i in 0..n as u32 {
            let (a, b) = conditions(g, m, &z, i);
            t[i as usize] += u32::from(a);
            c[i as usize] += u32::from(b);
        }
    }
    let d = draws.max(1) as f64;
    Probabilities {
        treated: t.iter().map(|&x| x as f64 / d).collect(),
        control: c.iter().map(|&x| x as f64 / d).collect(),
        method: Method::Estimated { draws },
    }
}

/// Exact probabilities if available, else estimated from `draws` assignments.
pub fn probabilities(
    g: &Graph,
    design: &Design,
    m: &Mapping,
    draws: usize,
    seed: u64,
) -> Probabilities {
    exact(g, design, m).unwrap_or_else(|| estimated(g, design, m, draws, seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dp_matches_enumeration() {
        // Own cluster adds 1 neighbour; others add 2, 1, 3; need ≥ 4 in the arm.
        let others = [2u32, 1, 3];
        for arm in [Arm::Bernoulli(0.3), Arm::Complete { m: 3, k: 7 }] {
            let dp = prob_at_least(arm, 1, &others, 4);
            // Enumerate subsets of the other clusters.
            let mut brute = 0.0;
            for mask in 0u32..8 {
                let j = mask.count_ones() as u64;
                let sum: u32 = (0..3)
                    .filter(|b| mask >> b & 1 == 1)
                    .map(|b| others[b])
                    .sum();
                if 1 + sum >= 4 {
                    brute += arm.ln_pattern(j, 3).exp();
                }
            }
            assert!((dp - brute).abs() < 1e-12, "{arm:?}: {dp} vs {brute}");
        }
        // Complete: P(own and all 3 others treated) = 3/7 · 2/6 · 1/5 · 0 when M = 3 < 4.
        assert_eq!(Arm::Complete { m: 3, k: 7 }.ln_pattern(3, 3).exp(), 0.0);
        let full = Arm::Complete { m: 4, k: 7 }.ln_pattern(3, 3).exp();
        assert!((full - (4.0 / 7.0) * (3.0 / 6.0) * (2.0 / 5.0) * (1.0 / 4.0)).abs() < 1e-12);
    }
}
