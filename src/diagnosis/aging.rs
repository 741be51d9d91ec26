//! Clusters that age: a design whose clusters were built on the interactions
//! before a time split, run on the interactions after it.
//!
//! For each design this module owns the cut share and the contamination on
//! both graphs, and the difference-in-means bias each contamination implies
//! under the linear-in-means model: with constant τ,
//! DM − global effect = γ·(f_T − f − c̄_T − c̄_C) + (baseline and noise
//! imbalance, mean zero), where c̄_T (c̄_C) is the mean over treated (control)
//! users of the share of their in-weight from the other arm, f_T the share of
//! treated users with in-neighbours and f that share among all users. The bias
//! the decay causes is the difference between the two graphs' values.

use super::{draw_assignment, Prepared};
use crate::error::Result;
use crate::graph::Graph;
use rayon::prelude::*;
use serde::Serialize;

/// How one design's clusters aged between the two graphs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Aging {
    /// Share of edge weight between randomization units, before the split.
    pub cut_edge_share_before: f64,
    /// The same after the split (the graph the experiment runs on).
    pub cut_edge_share_after: f64,
    /// Mean over replicates and users of the other-arm share of in-weight
    /// (treated, control), before the split.
    pub contamination_before: [f64; 2],
    /// The same after the split.
    pub contamination_after: [f64; 2],
    /// γ·E[f_T − f − c̄_T − c̄_C] on the graph before the split: the DM bias
    /// had the clusters not aged.
    pub implied_bias_before: f64,
    /// The same on the graph after the split (what the experiment gets).
    pub implied_bias_after: f64,
    /// implied_bias_after − implied_bias_before: the bias the decay causes.
    pub decay_bias: f64,
}

/// (f_T − f − c̄_T − c̄_C, c̄_T, c̄_C) of node arms `z` on `g`.
fn implied(g: &Graph, z: &[u8]) -> (f64, f64, f64) {
    let n = g.node_count();
    let (mut nt, mut nc, mut ft, mut f) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    let (mut ct, mut cc) = (0.0f64, 0.0f64);
    for i in 0..n {
        let a = crate::model::exposure::neighbour_arms(g, z, i as u32);
        let treated = z[i] == 1;
        if treated {
            nt += 1.0;
        } else {
            nc += 1.0;
        }
        if a.weight > 0.0 {
            f += 1.0;
            let share = a.share();
            if treated {
                ft += 1.0;
                ct += 1.0 - share;
            } else {
                cc += share;
            }
        }
    }
    let (ct, cc) = (ct / nt.max(1.0), cc / nc.max(1.0));
    (ft / nt.max(1.0) - f / n.max(1) as f64 - ct - cc, ct, cc)
}

/// The aging of design number `d` over the replicates of `p` (the same
/// assignments the simulation drew); `None` without a time split.
///
/// # Complexity
/// O(replicates × (users + edges of both graphs)).
pub fn aging(p: &Prepared, d: usize) -> Result<Option<Aging>> {
    let Some(before) = &p.before else {
        return Ok(None);
    };
    let design = &p.designs[d];
    let per: Vec<[(f64, f64, f64); 2]> = (0..p.config.replicates)
        .into_par_iter()
        .map(|r| -> Result<[(f64, f64, f64); 2]> {
            let drawn = draw_assignment(&p.graph, design, p.config.seed, d, r)?;
            Ok([implied(before, &drawn.z), implied(&p.graph, &drawn.z)])
        })
        .collect::<Result<_>>()?;
    let reps = per.len().max(1) as f64;
    let mean =
        |k: usize, f: fn(&(f64, f64, f64)) -> f64| per.iter().map(|x| f(&x[k])).sum::<f64>() / reps;
    let gamma = p.population.gamma;
    let (b, a) = (gamma * mean(0, |x| x.0), gamma * mean(1, |x| x.0));
    Ok(Some(Aging {
        cut_edge_share_before: crate::partition::quality(before, &design.clusters).cut_edge_share,
        cut_edge_share_after: crate::partition::quality(&p.graph, &design.clusters).cut_edge_share,
        contamination_before: [mean(0, |x| x.1), mean(0, |x| x.2)],
        contamination_after: [mean(1, |x| x.1), mean(1, |x| x.2)],
        implied_bias_before: b,
        implied_bias_after: a,
        decay_bias: a - b,
    }))
}
