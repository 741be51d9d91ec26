//! Balanced partitioners: k parts of near-equal size that cut few edges.
//!
//! METIS k-way (through the `metis` crate, which vendors METIS 5.2) and
//! restreaming linear deterministic greedy (LDG; Stanton & Kliot 2012, restreamed
//! as in Nishimura & Ugander 2013 and used for network experiments by Saveski et
//! al. 2017). Neither partitioner's own promise is trusted: imbalance and empty
//! parts are measured after every run and a broken promise is an error.

use super::{ensure, simple::check_parts, Partition};
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::rng::{self, purpose};
use serde::Serialize;

/// Parameters of the balanced partitioners.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Params {
    /// Number of parts k.
    pub parts: usize,
    /// Allowed imbalance: the largest part may hold (1 + imbalance)·n/k nodes.
    pub imbalance: f64,
    /// Seed.
    pub seed: u64,
    /// Restreaming passes (LDG only).
    pub passes: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            parts: 2,
            imbalance: 0.03,
            seed: 1,
            passes: 10,
        }
    }
}

/// Largest part over the ideal size n/k, minus one.
pub fn imbalance(p: &Partition, parts: usize) -> f64 {
    let ideal = p.len() as f64 / parts as f64;
    p.sizes().into_iter().max().unwrap_or(0) as f64 / ideal - 1.0
}

fn check(g: &Graph, p: &Params) -> Result<()> {
    check_parts(g.node_count(), p.parts)?;
    if !(p.imbalance >= 0.0 && p.imbalance.is_finite()) {
        return Err(Error::input(format!(
            "imbalance must be ≥ 0, got {}",
            p.imbalance
        )));
    }
    Ok(())
}

/// Most nodes a part may hold: ⌊(1 + ε)·n/k⌋, but at least ⌈n/k⌉.
pub fn capacity(n: usize, parts: usize, imbalance: f64) -> usize {
    (((1.0 + imbalance) * n as f64 / parts as f64 + 1e-9).floor() as usize).max(n.div_ceil(parts))
}

/// Verify a balanced partition: k non-empty parts of at most `cap` nodes.
fn verify(part: &[u32], parts: usize, cap: usize, who: &str) -> Result<Partition> {
    let mut sizes = vec![0usize; parts];
    for &l in part {
        sizes[l as usize] += 1;
    }
    let empty = sizes.iter().filter(|&&s| s == 0).count();
    ensure(empty == 0, || {
        format!("{who} left {empty} of {parts} parts empty")
    })?;
    let largest = sizes.iter().copied().max().unwrap_or(0);
    ensure(largest <= cap, || {
        format!("{who} broke the balance: a part of {largest} nodes exceeds the {cap} allowed")
    })?;
    Ok(Partition::from_dense(part, parts))
}

/// METIS k-way, minimizing the (weighted) edge cut. Weights are rounded to
/// integers (at least 1) as METIS requires. Needs the `metis` feature (the
/// vendored METIS C library, on by default); without it this is an input
/// error pointing to `ldg`.
pub fn metis(g: &Graph, p: &Params) -> Result<Partition> {
    #[cfg(feature = "metis")]
    {
        metis_kway(g, p)
    }
    #[cfg(not(feature = "metis"))]
    {
        check(g, p)?;
        Err(Error::input(
            "method balanced (METIS): this build of spillover has no METIS \
             (the `metis` feature is off); use method ldg",
        ))
    }
}

#[cfg(feature = "metis")]
fn metis_kway(g: &Graph, p: &Params) -> Result<Partition> {
    check(g, p)?;
    let n = g.node_count();
    if p.parts == 1 {
        return Ok(Partition::from_dense(&vec![0; n], 1));
    }
    // METIS indexes its adjacency with 32-bit integers: refuse what would wrap.
    let arcs: u64 = (0..n as u32).map(|u| g.out_degree(u) as u64).sum();
    let limit = metis::Idx::MAX as u64;
    if arcs > limit || n as u64 > limit || p.parts as u64 > limit {
        return Err(Error::input(format!(
            "method balanced (METIS): the graph has {arcs} adjacency entries and {n} nodes, \
             METIS indexes them with 32-bit integers (at most {limit}); use method ldg or louvain"
        )));
    }
    // Integer edge weights must not wrap either.
    if g.is_weighted() {
        let total: f64 = 2.0 * g.edges().map(|(_, _, w)| w.round().max(1.0)).sum::<f64>();
        if total > limit as f64 {
            return Err(Error::input(format!(
                "method balanced (METIS): the rounded edge weights sum to {total}, \
                 past METIS's 32-bit limit {limit}; use method ldg or louvain"
            )));
        }
    }
    let mut xadj: Vec<metis::Idx> = Vec::with_capacity(n + 1);
    let mut adjncy: Vec<metis::Idx> = Vec::new();
    let mut adjwgt: Vec<metis::Idx> = Vec::new();
    xadj.push(0);
    for u in 0..n as u32 {
        for (v, w) in g.out_edges(u) {
            if v != u {
                adjncy.push(v as metis::Idx);
                adjwgt.push(w.round().max(1.0) as metis::Idx);
            }
        }
        xadj.push(adjncy.len() as metis::Idx);
    }
    let ubvec = [1.0 + p.imbalance as metis::Real];
    let mut part = vec![0 as metis::Idx; n];
    let graph = metis::Graph::new(1, p.parts as metis::Idx, &xadj, &adjncy)
        .map_err(|e| Error::Internal(format!("METIS input: {e}")))?
        .set_ubvec(&ubvec)
        .set_option(metis::option::Seed(p.seed as metis::Idx & 0x7fff_ffff));
    let graph = if g.is_weighted() {
        graph.set_adjwgt(&adjwgt)
    } else {
        graph
    };
    // METIS draws from one process-wide random state (GKlib's): two
    // partitions computed at once on different threads would interleave
    // their draws and depend on timing. One at a time keeps the seed's promise.
    let _one_at_a_time = METIS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    graph
        .part_kway(&mut part)
        .map_err(|e| Error::Internal(format!("METIS failed: {e}")))?;
    let labels: Vec<u32> = part.iter().map(|&x| x as u32).collect();
    verify(&labels, p.parts, capacity(n, p.parts, p.imbalance), "METIS")
}

/// Serializes METIS calls (see [`metis_kway`]'s body).
#[cfg(feature = "metis")]
static METIS_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Restreaming linear deterministic greedy: nodes stream in a seeded random
/// order; each goes to the part maximizing (neighbours already there) ×
/// (1 − size/capacity), capacity ⌊(1 + ε)·n/k⌋ (at least ⌈n/k⌉); later passes see
/// every neighbour's part from the previous pass.
pub fn ldg(g: &Graph, p: &Params) -> Result<Partition> {
    check(g, p)?;
    let n = g.node_count();
    let k = p.parts;
    let cap = capacity(n, k, p.imbalance);
    let mut r = rng::stream(p.seed, &[purpose::PARTITION, 4]);
    let order = rng::permutation(n, &mut r);
    const NONE: u32 = u32::MAX;
    let mut part = vec![NONE; n];
    let mut acc = vec![0.0f64; k];
    let mut touched: Vec<u32> = Vec::new();
    for _pass in 0..p.passes.max(1) {
        let mut size = vec![0usize; k];
        let prev = part.clone();
        let mut next = vec![NONE; n];
        for &u in &order {
            for (v, w) in g.out_edges(u) {
                // In a restream, nodes not yet placed this pass count where they were.
                let pv = if next[v as usize] != NONE {
                    next[v as usize]
                } else {
                    prev[v as usize]
                };
                if v == u || pv == NONE {
                    continue;
                }
                if acc[pv as usize] == 0.0 {
                    touched.push(pv);
                }
                acc[pv as usize] += w;
            }
            // Best part: highest score; ties (and no neighbours) to the smallest part, then lowest id.
            let mut best = NONE;
            let mut best_score = f64::NEG_INFINITY;
            for &c in &touched {
                let s = size[c as usize];
                if s >= cap {
                    continue;
                }
                let score = acc[c as usize] * (1.0 - s as f64 / cap as f64);
                if score > best_score
                    || (score == best_score && (s, c) < (size[best as usize], best))
                {
                    best_score = score;
                    best = c;
                }
            }
            if best == NONE || best_score <= 0.0 {
                best = (0..k as u32)
                    .min_by_key(|&c| (size[c as usize], c))
                    .unwrap_or(0);
            }
            for &c in &touched {
                acc[c as usize] = 0.0;
            }
            touched.clear();
            next[u as usize] = best;
            size[best as usize] += 1;
        }
        let same = next == part;
        part = next;
        if same {
            break;
        }
    }
    verify(&part, k, cap, "restreaming LDG")
}
