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

use crate::data::design::{Assignment, Design};
use crate::graph::Graph;
use crate::rng::{self, Rng};
use rayon::prelude::*;
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
            Mapping::Fractional { q } if !(q > 0.0 && q <= 1.0) => Err(
                crate::error::Error::parameter("exposure fractional q", q, "a number in (0, 1]"),
            ),
            Mapping::KNeighbours { k: 0 } => Err(crate::error::Error::parameter(
                "exposure k-neighbours k",
                0,
                "at least 1",
            )),
            _ => Ok(()),
        }
    }
}

/// Whether node `i` is in the treated and in the control condition for the
/// node arms `z` (weights from the in-adjacency; unweighted counts for k-neighbours).
pub fn conditions(g: &Graph, m: &Mapping, z: &[u8], i: u32) -> (bool, bool) {
    let zi = z[i as usize] == 1;
    let a = crate::model::exposure::neighbour_arms(g, z, i);
    let (wt, wall, ct, deg) = (a.treated_weight, a.weight, a.treated, a.count);
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
///
/// Computed in probability space, so it stays finite for any number of
/// touching clusters. Bernoulli: a distribution over the capped count,
/// cluster by cluster. Complete (M of K): given the own cluster in the arm, the
/// number J of other touching clusters in the arm is hypergeometric and, given
/// J = j, the set is a uniform j-subset; `f[j][c]` is the share of j-subsets of
/// the clusters seen so far whose capped count is c (each row sums to 1).
///
/// # Complexity
/// Bernoulli: O(s · need) time, O(need) memory, s = touching clusters.
/// Complete: O(s · J · need) time and O(J · need) memory, J the range of
/// possible j (at most min(s, M − 1), narrower when s is close to K).
fn prob_at_least(arm: Arm, own: u32, others: &[u32], need: i64) -> f64 {
    let s1 = others.len() as u64;
    // w(j): P(own cluster and exactly j of the others in the arm).
    let w = |j: u64| (ln_binomial(s1, j) + arm.ln_pattern(j, s1)).exp();
    let need = need - own as i64;
    if need <= 0 {
        // Only the own cluster matters.
        return (0..=s1).map(w).sum();
    }
    let need = need as usize;
    let total: u64 = others.iter().map(|&c| c as u64).sum();
    if total < need as u64 {
        return 0.0;
    }
    if others.iter().all(|&c| c == 1) {
        // Every other cluster adds one neighbour (user designs): count = j.
        return (need as u64..=s1).map(w).sum();
    }
    let width = need + 1;
    match arm {
        Arm::Bernoulli(p) => {
            // dist[c]: P(capped count of the clusters seen so far = c).
            let mut dist = vec![0.0f64; width];
            dist[0] = 1.0;
            for &x in others {
                let x = x as usize;
                // Descending c: every source c' < c is read before it is updated.
                for c in (0..width).rev() {
                    let v = dist[c];
                    if v != 0.0 {
                        dist[c] = v * (1.0 - p);
                        let nc = (c + x).min(need);
                        if nc == c {
                            dist[c] += v * p;
                        } else {
                            dist[nc] += v * p;
                        }
                    }
                }
            }
            p * dist[need]
        }
        Arm::Complete { m, k } => {
            // Possible j: at most M − 1 others, and at least s1 − (K − M).
            let j_hi = s1.min(m.saturating_sub(1)) as usize;
            let j_lo = s1.saturating_sub(k - m) as usize;
            if j_lo > j_hi {
                return 0.0;
            }
            let rows = j_hi + 1;
            let mut f = vec![0.0f64; rows * width];
            f[0] = 1.0;
            let s = others.len();
            for (t, &x) in others.iter().enumerate() {
                let x = x as usize;
                let t1 = (t + 1) as f64;
                // Rows that can still reach [j_lo, j_hi] after this step.
                let lo = j_lo.saturating_sub(s - t - 1);
                let hi = (t + 1).min(j_hi);
                for j in (lo.max(1)..=hi).rev() {
                    let (a, b) = ((t + 1 - j) as f64 / t1, j as f64 / t1);
                    let (prev, cur) = f.split_at_mut(j * width);
                    let prev = &prev[(j - 1) * width..];
                    let cur = &mut cur[..width];
                    for v in cur.iter_mut() {
                        *v *= a;
                    }
                    for (c, &v) in prev.iter().enumerate() {
                        if v != 0.0 {
                            cur[(c + x).min(need)] += b * v;
                        }
                    }
                }
                // Row 0 (no cluster chosen) keeps its count: a = 1.
            }
            (j_lo..=j_hi)
                .map(|j| {
                    let v = f[j * width + need];
                    if v == 0.0 {
                        0.0
                    } else {
                        v * w(j as u64)
                    }
                })
                .sum()
        }
    }
}

/// Exact probabilities, where the design and graph allow (see the module
/// docs); `Ok(None)` otherwise. A probability that is not finite or outside
/// [0, 1] (beyond rounding) is an internal error, never clamped.
pub fn exact(
    g: &Graph,
    design: &Design,
    m: &Mapping,
) -> crate::error::Result<Option<Probabilities>> {
    let k = design.units() as u64;
    let p = design.spec.treated_share;
    if design.is_redrawn() {
        return Ok(None);
    }
    let (arm_t, arm_c) = match design.spec.assignment {
        Assignment::Bernoulli => (Arm::Bernoulli(p), Arm::Bernoulli(1.0 - p)),
        Assignment::Complete => {
            let mt = (p * k as f64).round() as u64;
            (Arm::Complete { m: mt, k }, Arm::Complete { m: k - mt, k })
        }
        _ => return Ok(None),
    };
    if g.is_weighted() && matches!(m, Mapping::Fractional { .. }) {
        return Ok(None);
    }
    let labels = design.clusters.labels();
    let n = g.node_count();
    let node = |i: u32, acc: &mut [u32], touched: &mut Vec<u32>| -> (f64, f64) {
        let pr = profile(g, labels, i, acc, touched);
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
        (pt, pc)
    };
    // Nodes in 32 fixed chunks, each with its own scratch; results in node order.
    let chunk = n.div_ceil(32).max(1);
    let pairs: Vec<(f64, f64)> = (0..n.div_ceil(chunk))
        .into_par_iter()
        .map(|ci| {
            let mut acc = vec![0u32; design.units()];
            let mut touched = Vec::new();
            (ci * chunk..((ci + 1) * chunk).min(n))
                .map(|i| node(i as u32, &mut acc, &mut touched))
                .collect::<Vec<_>>()
        })
        .collect::<Vec<_>>()
        .into_iter()
        .flatten()
        .collect();
    let (mut treated, mut control): (Vec<f64>, Vec<f64>) = pairs.into_iter().unzip();
    for (i, v) in treated.iter_mut().chain(control.iter_mut()).enumerate() {
        if !(v.is_finite() && (-1e-9..=1.0 + 1e-9).contains(v)) {
            return Err(crate::error::Error::Internal(format!(
                "exact exposure probability of node {} is {v} ({} mapping)",
                i % n,
                m.name()
            )));
        }
        // Rounding only: a sum of probabilities may exceed 1 by a few ulps.
        *v = v.clamp(0.0, 1.0);
    }
    Ok(Some(Probabilities {
        treated,
        control,
        method: Method::Exact,
    }))
}

/// Probabilities estimated from `draws` auxiliary assignments of the design.
pub fn estimated(
    g: &Graph,
    design: &Design,
    m: &Mapping,
    draws: usize,
    seed: u64,
) -> crate::error::Result<Probabilities> {
    let n = g.node_count();
    let (mut t, mut c) = (vec![0u32; n], vec![0u32; n]);
    let mut r: Rng = rng::stream(seed, &[rng::purpose::EXPOSURE, 0]);
    let (mut zc, mut z) = (Vec::new(), vec![0u8; n]);
    for _ in 0..draws {
        design.draw_full(g, &mut r, &mut zc, &mut z)?;
        // Each node's conditions in parallel over fixed chunks (counts per node: thread-count invariant).
        t.par_chunks_mut(NODE_CHUNK)
            .zip(c.par_chunks_mut(NODE_CHUNK))
            .enumerate()
            .for_each(|(ci, (t, c))| {
                for (k, (t, c)) in t.iter_mut().zip(c.iter_mut()).enumerate() {
                    let (a, b) = conditions(g, m, &z, (ci * NODE_CHUNK + k) as u32);
                    *t += u32::from(a);
                    *c += u32::from(b);
                }
            });
    }
    let d = draws.max(1) as f64;
    Ok(Probabilities {
        treated: t.iter().map(|&x| x as f64 / d).collect(),
        control: c.iter().map(|&x| x as f64 / d).collect(),
        method: Method::Estimated { draws },
    })
}

/// Nodes per parallel task in the auxiliary draws.
const NODE_CHUNK: usize = 4096;

/// Most ordered pairs of nodes sharing a cluster whose joint probabilities
/// [`PairProbabilities`] may store (about 52 bytes each).
pub const MAX_PAIRS: u64 = 50_000_000;

/// Most pair updates (pairs × auxiliary draws) [`PairProbabilities`] may make.
pub const MAX_PAIR_UPDATES: u64 = 20_000_000_000;

/// Exact probabilities if available, else estimated from `draws` assignments.
///
/// ```
/// use spillover::data::design::{Assignment, Design, DesignSpec, PartitionMethod, PartitionSpec};
/// use spillover::data::exposure::{probabilities, Mapping};
/// use spillover::graph::{BuildOptions, GraphBuilder};
/// use spillover::partition::Partition;
///
/// // A star: hub 0 with leaves 1..=4, each leaf its own cluster with the hub in cluster 0.
/// let mut b = GraphBuilder::new(5, false, false);
/// for leaf in 1..5 { b.add_edge(0, leaf, 1.0); }
/// let (g, _) = b.build(&BuildOptions::default())?;
/// let clusters = Partition::from_labels(&[0, 1, 2, 3, 4]);
/// let mut spec = DesignSpec::cluster("c", PartitionSpec::new(PartitionMethod::Planted));
/// spec.assignment = Assignment::Bernoulli;
/// let d = Design::new(spec, Some(clusters), &[0.0; 5])?;
/// let p = probabilities(&g, &d, &Mapping::Full, 0, 1)?;
/// // The hub is fully exposed when all 5 clusters are treated: 0.5^5.
/// assert!((p.treated[0] - 0.5f64.powi(5)).abs() < 1e-15);
/// # Ok::<(), spillover::Error>(())
/// ```
///
/// # Complexity
/// Exact: O(edges) for full exposure, O(s·need) per node for fractional and
/// k-neighbour exposure (s clusters touching it); estimated: O(draws × edges).
pub fn probabilities(
    g: &Graph,
    design: &Design,
    m: &Mapping,
    draws: usize,
    seed: u64,
) -> crate::error::Result<Probabilities> {
    Ok(match exact(g, design, m)? {
        Some(p) => p,
        None => estimated(g, design, m, draws, seed)?,
    })
}

/// Which clusters touch each node's closed in-neighbourhood, and for each
/// cluster the nodes it touches: the structure behind joint exposure
/// probabilities (two nodes' conditions are dependent iff they share a cluster).
pub struct Overlap {
    node_off: Vec<usize>,
    node_clusters: Vec<u32>,
    cl_off: Vec<usize>,
    cl_nodes: Vec<u32>,
}

impl Overlap {
    /// Build from cluster `labels` (dense ids below `k`).
    pub fn new(g: &Graph, labels: &[u32], k: usize) -> Overlap {
        let n = g.node_count();
        let mut node_off = Vec::with_capacity(n + 1);
        node_off.push(0);
        let mut node_clusters = Vec::new();
        let mut mark = vec![false; k];
        let mut row: Vec<u32> = Vec::new();
        for i in 0..n as u32 {
            for c in std::iter::once(labels[i as usize])
                .chain(g.in_neighbors(i).iter().map(|&j| labels[j as usize]))
            {
                if !mark[c as usize] {
                    mark[c as usize] = true;
                    row.push(c);
                }
            }
            row.sort_unstable();
            for &c in &row {
                mark[c as usize] = false;
            }
            node_clusters.extend_from_slice(&row);
            node_off.push(node_clusters.len());
            row.clear();
        }
        let mut cl_off = vec![0usize; k + 1];
        for &c in &node_clusters {
            cl_off[c as usize + 1] += 1;
        }
        for c in 0..k {
            cl_off[c + 1] += cl_off[c];
        }
        let mut cursor = cl_off.clone();
        let mut cl_nodes = vec![0u32; node_clusters.len()];
        for i in 0..n {
            for &c in &node_clusters[node_off[i]..node_off[i + 1]] {
                cl_nodes[cursor[c as usize]] = i as u32;
                cursor[c as usize] += 1;
            }
        }
        Overlap {
            node_off,
            node_clusters,
            cl_off,
            cl_nodes,
        }
    }

    /// Full-exposure conditions of every node for node arms `z` on the
    /// partition `labels` the overlap was built from: treated when every
    /// cluster touching the closed neighbourhood is treated, control when
    /// none is (the same as [`conditions`] with [`Mapping::Full`]).
    ///
    /// # Complexity
    /// O(n + Σ_i s_i): clusters, not neighbours.
    pub fn full_conditions(&self, labels: &[u32], z: &[u8]) -> (Vec<bool>, Vec<bool>) {
        let k = self.cl_off.len() - 1;
        let mut arm = vec![0u8; k];
        for (&l, &zi) in labels.iter().zip(z) {
            arm[l as usize] = zi;
        }
        (0..self.node_off.len() - 1)
            .map(|i| {
                let cl = &self.node_clusters[self.node_off[i]..self.node_off[i + 1]];
                let treated = cl.iter().filter(|&&c| arm[c as usize] == 1).count();
                (treated == cl.len(), treated == 0)
            })
            .unzip()
    }

    /// s_i: distinct clusters touching i's closed neighbourhood.
    pub fn s(&self, i: usize) -> usize {
        self.node_off[i + 1] - self.node_off[i]
    }

    /// Call `f(j, m_ij)` for every node j ≠ i sharing m_ij ≥ 1 clusters with i.
    /// `count` (one zero per node) and `touched` are scratch space.
    pub fn for_each_overlap(
        &self,
        i: usize,
        count: &mut [u32],
        touched: &mut Vec<u32>,
        mut f: impl FnMut(u32, u32),
    ) {
        for &c in &self.node_clusters[self.node_off[i]..self.node_off[i + 1]] {
            for &j in &self.cl_nodes[self.cl_off[c as usize]..self.cl_off[c as usize + 1]] {
                if j as usize == i {
                    continue;
                }
                if count[j as usize] == 0 {
                    touched.push(j);
                }
                count[j as usize] += 1;
            }
        }
        touched.sort_unstable();
        for &j in touched.iter() {
            f(j, count[j as usize]);
            count[j as usize] = 0;
        }
        touched.clear();
    }
}

/// Exact variance of the Horvitz–Thompson estimator of the full-exposure
/// contrast under cluster Bernoulli(p) (Ugander et al. 2013), over the nodes
/// with `included[i]`: with π¹ = p^s_i, π⁰ = (1 − p)^s_i and m_ij shared clusters,
/// n²·Var = Σ_i [(1/π¹ − 1)Y₁ᵢ² + (1/π⁰ − 1)Y₀ᵢ² + 2Y₁ᵢY₀ᵢ + v₁ᵢ/π¹ + v₀ᵢ/π⁰]
///        + Σ_{i≠j, m_ij>0} [(p^−m − 1)Y₁ᵢY₁ⱼ + ((1 − p)^−m − 1)Y₀ᵢY₀ⱼ + 2Y₁ᵢY₀ⱼ],
/// where Y₁, Y₀ are mean outcomes under full treatment and full control and
/// v₁, v₀ the per-replicate noise variances (which add the v/π terms).
pub fn ht_variance_full_bernoulli(
    ov: &Overlap,
    p: f64,
    y1: &[f64],
    y0: &[f64],
    v1: &[f64],
    v0: &[f64],
    included: &[bool],
) -> f64 {
    let n = y1.len();
    let count_in = included.iter().filter(|&&b| b).count() as f64;
    let mut count = vec![0u32; n];
    let mut touched = Vec::new();
    let mut total = 0.0;
    for i in 0..n {
        if !included[i] {
            continue;
        }
        total += exact_own_term(ov.s(i), p, y1[i], y0[i], v1[i], v0[i]);
        let mut pairs = 0.0;
        ov.for_each_overlap(i, &mut count, &mut touched, |j, m| {
            let j = j as usize;
            if included[j] {
                let m = m as i32;
                pairs += (p.powi(-m) - 1.0) * y1[i] * y1[j]
                    + ((1.0 - p).powi(-m) - 1.0) * y0[i] * y0[j]
                    + 2.0 * y1[i] * y0[j];
            }
        });
        total += pairs;
    }
    total / (count_in * count_in)
}

/// Most clusters an included node's neighbourhood may touch for the
/// aggregated variance sums ([`SharedSets`]): its subsets are enumerated.
pub const MAX_TOUCHED_CLUSTERS: usize = 20;

/// Most (node, cluster pair) entries [`SharedSets::new`] may enumerate.
pub const MAX_SHARED_ENTRIES: u64 = 400_000_000;

/// The sets of clusters that two or more included nodes' neighbourhoods
/// all touch: the structure that turns the pair sums of the HT variance
/// into sums over sets.
///
/// For full exposure under cluster randomization a pair (i, j) is dependent
/// through the m_ij clusters its neighbourhoods share, and every pair weight
/// the variances need is a function of m_ij that expands over the non-empty
/// subsets A of the shared clusters: g(m) = Σ_{k=1}^{m} C(m, k)·w_k, so
///
/// Σ_{i≠j} g(m_ij)·a_i·b_j = Σ_{A ≠ ∅} w_{|A|}·[(Σ_{i ⊇ A} a_i)(Σ_{j ⊇ A} b_j) − Σ_{i ⊇ A} a_i b_i],
///
/// where `i ⊇ A` means A ⊆ C_i, the clusters touching i's closed
/// neighbourhood. A set contained in one node's C_i only adds nothing, so only
/// the *shared* sets (contained in at least two included nodes' sets) are
/// kept, found level by level (a set is shared only if all its subsets are).
/// Per assignment the sums cost O(Σ_i |shared sets of i|) instead of a walk
/// over every pair of nodes sharing a cluster.
///
/// # Complexity
/// Building: O(Σ_i C(s_i, 2)) for the pairs plus the shared larger sets,
/// memory O(n + shared entries). Refused (an input error) when an included
/// node touches more than [`MAX_TOUCHED_CLUSTERS`] clusters or the pairs
/// exceed [`MAX_SHARED_ENTRIES`].
pub struct SharedSets {
    node_off: Vec<usize>,
    node_sets: Vec<u32>,
    /// |A| of each shared set.
    level: Vec<u8>,
    /// Included nodes whose C_i contains the set.
    count: Vec<u32>,
}

impl SharedSets {
    /// Find the shared sets of the included nodes' touched clusters.
    pub fn new(ov: &Overlap, included: &[bool]) -> crate::error::Result<SharedSets> {
        let n = included.len();
        let clusters = |i: usize| &ov.node_clusters[ov.node_off[i]..ov.node_off[i + 1]];
        let (mut pairs_total, mut s_max, mut s_node) = (0u64, 0usize, 0usize);
        for i in (0..n).filter(|&i| included[i]) {
            let s = ov.s(i);
            pairs_total += (s * s.saturating_sub(1) / 2) as u64;
            if s > s_max {
                (s_max, s_node) = (s, i);
            }
        }
        if s_max > MAX_TOUCHED_CLUSTERS || pairs_total > MAX_SHARED_ENTRIES {
            let advice = format!(
                " ({MAX_TOUCHED_CLUSTERS} clusters per user, {MAX_SHARED_ENTRIES} cluster pairs): \
                 raise probability_floor (users touching many clusters have tiny exposure \
                 probabilities) or use larger clusters"
            );
            let e = if s_max > MAX_TOUCHED_CLUSTERS {
                crate::error::Error::too_large(
                    format!("clusters touched by an included user's neighbourhood (user {s_node})"),
                    s_max as u64,
                    MAX_TOUCHED_CLUSTERS as u64,
                    advice,
                )
            } else {
                crate::error::Error::too_large(
                    "cluster pairs shared by included users",
                    pairs_total,
                    MAX_SHARED_ENTRIES,
                    advice,
                )
            };
            return Err(e.context("ht/hajek variance"));
        }
        // Level 1: clusters touched by at least two included nodes.
        let k = ov.cl_off.len() - 1;
        let mut c_count = vec![0u32; k];
        for i in (0..n).filter(|&i| included[i]) {
            for &c in clusters(i) {
                c_count[c as usize] += 1;
            }
        }
        let mut level = Vec::new();
        let mut count = Vec::new();
        let mut c_id = vec![u32::MAX; k];
        for c in 0..k {
            if c_count[c] >= 2 {
                c_id[c] = level.len() as u32;
                level.push(1u8);
                count.push(c_count[c]);
            }
        }
        // Per node: shared sets as (local bitmask over C_i, global id), all levels.
        let mut node_masks: Vec<Vec<(u32, u32)>> = vec![Vec::new(); n];
        for i in (0..n).filter(|&i| included[i]) {
            for (b, &c) in clusters(i).iter().enumerate() {
                if c_id[c as usize] != u32::MAX {
                    node_masks[i].push((1 << b, c_id[c as usize]));
                }
            }
        }
        // Higher levels: candidates are a node's sets of the previous level
        // extended by a larger cluster, whose subsets one smaller are all shared.
        let mut prev_level = 1u32;
        let mut is_shared = vec![false; 1usize << s_max.max(1)];
        loop {
            // Candidates of the next level: flat keys (sorted cluster ids), node, mask.
            let width = prev_level as usize + 1;
            let (mut keys, mut owners) = (Vec::<u32>::new(), Vec::<(u32, u32)>::new());
            let mut prev: Vec<u32> = Vec::new();
            for i in (0..n).filter(|&i| included[i]) {
                let cl = clusters(i);
                prev.clear();
                prev.extend(
                    node_masks[i]
                        .iter()
                        .filter(|(m, _)| m.count_ones() == prev_level)
                        .map(|&(m, _)| m),
                );
                if prev.len() < 2 {
                    continue;
                }
                for &m in &prev {
                    is_shared[m as usize] = true;
                }
                for &m in &prev {
                    let top = 31 - m.leading_zeros();
                    for b in top + 1..cl.len() as u32 {
                        let c = m | (1 << b);
                        // Every subset one smaller must be shared.
                        let mut rest = c;
                        let mut all = true;
                        while rest != 0 {
                            let bit = rest & rest.wrapping_neg();
                            rest ^= bit;
                            if !is_shared[(c ^ bit) as usize] {
                                all = false;
                                break;
                            }
                        }
                        if all {
                            keys.extend((0..cl.len()).filter(|&j| c >> j & 1 == 1).map(|j| cl[j]));
                            owners.push((i as u32, c));
                        }
                    }
                }
                for &m in &prev {
                    is_shared[m as usize] = false;
                }
            }
            if owners.is_empty() {
                break;
            }
            // Candidates in key order, and each one's run label (equal keys, equal labels).
            let key = |x: usize| &keys[x * width..(x + 1) * width];
            let (order, label): (Vec<u32>, Vec<u128>) = if width <= 4 {
                // Up to four 32-bit ids pack into one integer: a plain sort.
                let mut packed: Vec<(u128, u32)> = (0..owners.len())
                    .map(|x| {
                        let v = key(x).iter().fold(0u128, |acc, &c| acc << 32 | c as u128);
                        (v, x as u32)
                    })
                    .collect();
                packed.sort_unstable();
                packed.into_iter().map(|(v, x)| (x, v)).unzip()
            } else {
                let mut order: Vec<u32> = (0..owners.len() as u32).collect();
                order.sort_unstable_by(|&x, &y| {
                    key(x as usize).cmp(key(y as usize)).then(x.cmp(&y))
                });
                let mut label = Vec::with_capacity(order.len());
                let mut run_id = 0u128;
                for (r, &x) in order.iter().enumerate() {
                    if r > 0 && key(x as usize) != key(order[r - 1] as usize) {
                        run_id += 1;
                    }
                    label.push(run_id);
                }
                (order, label)
            };
            let mut added = false;
            let mut run = 0;
            while run < order.len() {
                let mut end = run + 1;
                while end < order.len() && label[end] == label[run] {
                    end += 1;
                }
                if end - run >= 2 {
                    let id = level.len() as u32;
                    level.push(width as u8);
                    count.push((end - run) as u32);
                    for &x in &order[run..end] {
                        let (node, mask) = owners[x as usize];
                        node_masks[node as usize].push((mask, id));
                    }
                    added = true;
                }
                run = end;
            }
            if !added {
                break;
            }
            prev_level += 1;
        }
        // Renumber sets in order of first appearance in node order, so the
        // nodes of one cluster (often neighbours in id) touch nearby memory.
        let mut renum = vec![u32::MAX; level.len()];
        let mut next = 0u32;
        let mut node_off = Vec::with_capacity(n + 1);
        node_off.push(0);
        let mut node_sets = Vec::new();
        for m in &node_masks {
            node_sets.extend(m.iter().map(|&(_, id)| {
                let r = &mut renum[id as usize];
                if *r == u32::MAX {
                    *r = next;
                    next += 1;
                }
                *r
            }));
            node_off.push(node_sets.len());
        }
        let (mut new_level, mut new_count) = (vec![0u8; level.len()], vec![0u32; level.len()]);
        for (old, &r) in renum.iter().enumerate() {
            new_level[r as usize] = level[old];
            new_count[r as usize] = count[old];
        }
        let (level, count) = (new_level, new_count);
        Ok(SharedSets {
            node_off,
            node_sets,
            level,
            count,
        })
    }

    /// The shared sets containing node i's clusters' subsets.
    fn sets(&self, i: usize) -> &[u32] {
        &self.node_sets[self.node_off[i]..self.node_off[i + 1]]
    }

    /// Number of shared sets (all levels).
    pub fn len(&self) -> usize {
        self.level.len()
    }

    /// Whether no set is shared.
    pub fn is_empty(&self) -> bool {
        self.level.is_empty()
    }

    /// For each node, the number of other included nodes sharing at least one
    /// cluster with it: Σ_{A ⊆ C_i shared} (−1)^{|A|+1}(count(A) − 1).
    pub fn sharing_counts(&self) -> Vec<f64> {
        (0..self.node_off.len() - 1)
            .map(|i| {
                self.sets(i)
                    .iter()
                    .map(|&a| {
                        let sign = if self.level[a as usize] % 2 == 1 {
                            1.0
                        } else {
                            -1.0
                        };
                        sign * (self.count[a as usize] as f64 - 1.0)
                    })
                    .sum()
            })
            .collect()
    }

    /// Σ_{i≠j, both in `members`} g(m_ij)·a_i·b_j with g(m) = Σ_k C(m, k)·w\[k\]
    /// (`w[0]` unused; `w` long enough for every level).
    pub fn pair_sum(
        &self,
        w: &[f64],
        members: &[u32],
        a: impl Fn(usize) -> f64,
        b: impl Fn(usize) -> f64,
        scratch: &mut SetScratch,
    ) -> f64 {
        scratch.fit(self.len());
        let SetScratch {
            sa,
            sb,
            sab,
            seen,
            touched,
        } = scratch;
        for &i in members {
            let i = i as usize;
            let (ai, bi) = (a(i), b(i));
            for &s in self.sets(i) {
                let s = s as usize;
                if !seen[s] {
                    seen[s] = true;
                    touched.push(s as u32);
                }
                sa[s] += ai;
                sb[s] += bi;
                sab[s] += ai * bi;
            }
        }
        let mut total = 0.0;
        for &s in touched.iter() {
            let s = s as usize;
            total += w[self.level[s] as usize] * (sa[s] * sb[s] - sab[s]);
            (sa[s], sb[s], sab[s], seen[s]) = (0.0, 0.0, 0.0, false);
        }
        touched.clear();
        total
    }

    /// Largest set size (the length `w` of [`SharedSets::pair_sum`] needs, less one).
    pub fn max_level(&self) -> usize {
        self.level.iter().copied().max().unwrap_or(0) as usize
    }
}

/// Scratch space of [`SharedSets::pair_sum`]: zeros, left zeroed.
#[derive(Debug, Default, Clone)]
pub struct SetScratch {
    sa: Vec<f64>,
    sb: Vec<f64>,
    sab: Vec<f64>,
    seen: Vec<bool>,
    touched: Vec<u32>,
}

impl SetScratch {
    fn fit(&mut self, len: usize) {
        if self.sa.len() < len {
            self.sa.resize(len, 0.0);
            self.sb.resize(len, 0.0);
            self.sab.resize(len, 0.0);
            self.seen.resize(len, false);
        }
    }
}

/// Weights w_k (k = 0..=levels) with g(m) = Σ_k C(m, k)·w_k = 1 − r^m:
/// w_k = −(r − 1)^k.
pub fn weights_one_minus_power(r: f64, levels: usize) -> Vec<f64> {
    (0..=levels).map(|k| -(r - 1.0).powi(k as i32)).collect()
}

/// The per-node constants of [`as_variances_full_sets`] for one design:
/// how many included nodes share a cluster with each node, and Σ over the
/// node's shared sets of the pair weights (treated and control).
#[derive(Debug)]
pub struct SetVariance {
    sharing: Vec<f64>,
    node_w: [Vec<f64>; 2],
    level_w: [Vec<f64>; 2],
    /// Accumulators of [`as_variances_full_sets`] kept between calls (one per
    /// concurrent replicate), with their generation: large ones are not
    /// faulted in or zeroed anew.
    pool: std::sync::Mutex<Vec<(Vec<Slot>, u32)>>,
    levels: Vec<u8>,
}

/// One shared set's running sums in [`as_variances_full_sets`]: Σ y/π for
/// the model's and the null model's outcomes, Σ 1/π, the generation that
/// wrote them (older ones read as zero) and the set's size.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    s: [f64; 2],
    p: f64,
    stamp: u32,
    level: u8,
}

impl SetVariance {
    /// Constants for treated share `p`.
    pub fn new(sets: &SharedSets, p: f64) -> SetVariance {
        let levels = sets.max_level();
        let level_w = [
            weights_one_minus_power(p, levels),
            weights_one_minus_power(1.0 - p, levels),
        ];
        let n = sets.node_off.len() - 1;
        let node_w = [0, 1].map(|c| {
            (0..n)
                .map(|i| {
                    sets.sets(i)
                        .iter()
                        .map(|&a| level_w[c][sets.level[a as usize] as usize])
                        .sum()
                })
                .collect()
        });
        SetVariance {
            sharing: sets.sharing_counts(),
            node_w,
            level_w,
            pool: std::sync::Mutex::new(Vec::new()),
            levels: sets.level.clone(),
        }
    }
}

/// The Aronow–Samii conservative variance estimates of HT and of Hájek (on
/// its linearized residuals y − m, m the condition's weighted mean) for the
/// full-exposure contrast, for the model's and the null model's outcomes at
/// once: `[run][0]` HT, `[run][1]` Hájek, with `means[run]` the Hájek means
/// (treated, control). The same sums [`as_variance_full`] walks pair by pair,
/// aggregated over shared cluster sets: Σ_{i≠j} g(m_ij)a_i a_j =
/// Σ_A w_|A| S_A² − Σ_i a_i² W_i (W_i the node's summed set weights), with
/// S_A² grown incrementally in one pass over each condition's nodes, and the
/// residual sums derived from S_A and Σ 1/π. `treated` and `control` are the
/// included nodes in each condition.
///
/// # Complexity
/// O(Σ over the nodes in a condition of their shared sets), one random access
/// each; memory O(shared sets), reused between calls.
#[allow(clippy::too_many_arguments)]
pub fn as_variances_full_sets(
    sets: &SharedSets,
    sv: &SetVariance,
    ys: [&[f64]; 2],
    means: [(f64, f64); 2],
    treated: &[u32],
    control: &[u32],
    pi1: &[f64],
    pi0: &[f64],
    n_included: usize,
) -> [[f64; 2]; 2] {
    let pooled = sv.pool.lock().ok().and_then(|mut p| p.pop());
    let (mut acc, mut generation) = pooled.unwrap_or_else(|| {
        let slots = sv
            .levels
            .iter()
            .map(|&level| Slot {
                level,
                ..Slot::default()
            })
            .collect();
        (slots, 0)
    });
    let mut total = [[0.0f64; 2]; 2];
    for (c, (members, pi)) in [(treated, pi1), (control, pi0)].into_iter().enumerate() {
        generation = generation.wrapping_add(1);
        if generation == 0 {
            acc.iter_mut().for_each(|s| s.stamp = 0);
            generation = 1;
        }
        let m = [0, 1].map(|run| if c == 0 { means[run].0 } else { means[run].1 });
        let w = &sv.level_w[c];
        for &i in members {
            let i = i as usize;
            let q = pi[i];
            let inv = 1.0 / q;
            let own = (1.0 - q) / (q * q) + (1.0 + sv.sharing[i]) / q;
            let wi = sv.node_w[c][i];
            let (mut ay, mut ar) = ([0.0f64; 2], [0.0f64; 2]);
            for run in 0..2 {
                let y = ys[run][i];
                let r = y - m[run];
                ay[run] = y * inv;
                ar[run] = r * inv;
                total[run][0] += own * y * y - wi * ay[run] * ay[run];
                total[run][1] += own * r * r - wi * ar[run] * ar[run];
            }
            for &s in sets.sets(i) {
                let slot = &mut acc[s as usize];
                if slot.stamp != generation {
                    (slot.s, slot.p, slot.stamp) = ([0.0; 2], 0.0, generation);
                }
                let wl = w[slot.level as usize];
                for run in 0..2 {
                    // (S + a)² − S² = 2aS + a², for y/π and for the residuals.
                    let sy = slot.s[run];
                    let sr = sy - m[run] * slot.p;
                    total[run][0] += wl * (2.0 * ay[run] * sy + ay[run] * ay[run]);
                    total[run][1] += wl * (2.0 * ar[run] * sr + ar[run] * ar[run]);
                    slot.s[run] += ay[run];
                }
                slot.p += inv;
            }
        }
    }
    if let Ok(mut p) = sv.pool.lock() {
        p.push((acc, generation));
    }
    let n2 = n_included as f64 * n_included as f64;
    total.map(|t| t.map(|v| v / n2))
}

/// A node's own term in the exact HT variance (see [`ht_variance_full_bernoulli`]).
fn exact_own_term(s: usize, p: f64, y1: f64, y0: f64, v1: f64, v0: f64) -> f64 {
    let (p1, p0) = (p.powi(s as i32), (1.0 - p).powi(s as i32));
    (1.0 / p1 - 1.0) * y1 * y1 + (1.0 / p0 - 1.0) * y0 * y0 + 2.0 * y1 * y0 + v1 / p1 + v0 / p0
}

/// Exact variance of HT under cluster Bernoulli(p), as
/// [`ht_variance_full_bernoulli`], with the pair sums aggregated over shared
/// cluster sets.
#[allow(clippy::too_many_arguments)]
pub fn ht_variance_full_bernoulli_sets(
    ov: &Overlap,
    sets: &SharedSets,
    p: f64,
    y1: &[f64],
    y0: &[f64],
    v1: &[f64],
    v0: &[f64],
    included: &[bool],
) -> f64 {
    let members: Vec<u32> = (0..included.len() as u32)
        .filter(|&i| included[i as usize])
        .collect();
    let mut total = 0.0;
    for &i in &members {
        let i = i as usize;
        total += exact_own_term(ov.s(i), p, y1[i], y0[i], v1[i], v0[i]);
    }
    let levels = sets.max_level();
    let mut scratch = SetScratch::default();
    // p^{−m} − 1 = Σ_k C(m, k)(1/p − 1)^k; 1[m ≥ 1] = Σ_k C(m, k)(−1)^{k+1}.
    let up: Vec<f64> = (0..=levels)
        .map(|k| (1.0 / p - 1.0).powi(k as i32))
        .collect();
    let uq: Vec<f64> = (0..=levels)
        .map(|k| (1.0 / (1.0 - p) - 1.0).powi(k as i32))
        .collect();
    let any: Vec<f64> = weights_one_minus_power(0.0, levels);
    total += sets.pair_sum(&up, &members, |i| y1[i], |i| y1[i], &mut scratch);
    total += sets.pair_sum(&uq, &members, |i| y0[i], |i| y0[i], &mut scratch);
    total += 2.0 * sets.pair_sum(&any, &members, |i| y1[i], |i| y0[i], &mut scratch);
    let k = members.len() as f64;
    total / (k * k)
}

/// Horvitz–Thompson and Hájek estimates of the contrast between the treated
/// and control exposure conditions, over included nodes: HT =
/// (1/n)Σ[T·Y/π¹ − C·Y/π⁰]; Hájek divides each sum by its own Σ T/π¹ (Σ C/π⁰)
/// instead of n. Hájek is `None` when a condition is empty.
pub fn ht_hajek(
    y: &[f64],
    t: &[bool],
    c: &[bool],
    pi1: &[f64],
    pi0: &[f64],
    included: &[bool],
) -> (f64, Option<f64>) {
    let (mut st, mut sc, mut wt, mut wc, mut n) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for i in 0..y.len() {
        if !included[i] {
            continue;
        }
        n += 1.0;
        if t[i] {
            st += y[i] / pi1[i];
            wt += 1.0 / pi1[i];
        }
        if c[i] {
            sc += y[i] / pi0[i];
            wc += 1.0 / pi0[i];
        }
    }
    let ht = (st - sc) / n;
    let hajek = (wt > 0.0 && wc > 0.0).then(|| st / wt - sc / wc);
    (ht, hajek)
}

/// Aronow–Samii conservative variance estimate of the HT full-exposure
/// contrast for one assignment, with joint probabilities in the cluster
/// Bernoulli(p) form (π¹¹ = p^(s_i + s_j − m_ij), and no pair sharing a cluster
/// can be in opposite conditions, whose cross terms are bounded by Young's
/// inequality). Under complete randomization this form is used as an
/// approximation. `y` may be residuals (for the Hájek linearization).
#[allow(clippy::too_many_arguments)]
pub fn as_variance_full(
    ov: &Overlap,
    p: f64,
    y: &[f64],
    t: &[bool],
    c: &[bool],
    pi1: &[f64],
    pi0: &[f64],
    included: &[bool],
    count: &mut [u32],
    touched: &mut Vec<u32>,
) -> f64 {
    let n_in = included.iter().filter(|&&b| b).count() as f64;
    let mut total = 0.0;
    for i in 0..y.len() {
        if !included[i] || !(t[i] || c[i]) {
            continue;
        }
        let (yi, p1, p0) = (y[i], pi1[i], pi0[i]);
        let mut d = 0.0; // included nodes sharing a cluster with i
        let mut pairs = 0.0;
        ov.for_each_overlap(i, count, touched, |j, m| {
            let j = j as usize;
            if !included[j] {
                return;
            }
            d += 1.0;
            let m = m as i32;
            if t[i] && t[j] {
                pairs += (1.0 - p.powi(m)) * yi * y[j] / (p1 * pi1[j]);
            }
            if c[i] && c[j] {
                pairs += (1.0 - (1.0 - p).powi(m)) * yi * y[j] / (p0 * pi0[j]);
            }
        });
        let own = if t[i] {
            (1.0 - p1) * yi * yi / (p1 * p1) + (1.0 + d) * yi * yi / p1
        } else {
            (1.0 - p0) * yi * yi / (p0 * p0) + (1.0 + d) * yi * yi / p0
        };
        total += own + pairs;
    }
    total / (n_in * n_in)
}

/// Joint probabilities of the exposure conditions for every ordered pair of
/// nodes whose neighbourhoods share a cluster (other pairs are taken as
/// independent, which is exact under Bernoulli designs), and each node's
/// expected mean outcome within each condition, estimated together from
/// auxiliary assignments.
pub struct PairProbabilities {
    /// Row offsets into `partner` and the probability arrays, one row per node.
    pub offsets: Vec<usize>,
    /// The other node of each pair.
    pub partner: Vec<u32>,
    /// P(T_i and T_j).
    pub p11: Vec<f64>,
    /// P(C_i and C_j).
    pub p00: Vec<f64>,
    /// P(T_i and C_j).
    pub p10: Vec<f64>,
    /// P(C_i and T_j).
    pub p01: Vec<f64>,
    /// Mean over draws with T_i of `mean_outcome(i, treated, e_i)`.
    pub mean_t: Vec<f64>,
    /// Mean over draws with C_i of `mean_outcome(i, control, e_i)`.
    pub mean_c: Vec<f64>,
}

impl PairProbabilities {
    /// Estimate from `draws` assignments of `design` (with the partition
    /// redrawn for redrawn designs); `mean_outcome(i, z_i, e_i)` gives a node's
    /// expected outcome for its arm and exposure share.
    pub fn estimate(
        g: &Graph,
        design: &Design,
        m: &Mapping,
        ov: &Overlap,
        draws: usize,
        seed: u64,
        mean_outcome: &(dyn Fn(usize, bool, f64) -> f64 + Sync),
    ) -> crate::error::Result<PairProbabilities> {
        let n = g.node_count();
        // Refuse what cannot scale before allocating: an upper bound on the
        // ordered pairs (a pair sharing m clusters is counted m times).
        let bound: u64 = (0..ov.cl_off.len() - 1)
            .map(|c| {
                let k = (ov.cl_off[c + 1] - ov.cl_off[c]) as u64;
                k * k.saturating_sub(1)
            })
            .sum();
        if bound > MAX_PAIRS || bound.saturating_mul(draws as u64) > MAX_PAIR_UPDATES {
            return Err(crate::error::Error::input(format!(
                "ht/hajek with the {} exposure mapping on design {:?} estimates a joint probability \
                 for every pair of users whose neighbourhoods share a cluster: up to {bound} pairs \
                 × {draws} auxiliary draws, past the limits of {MAX_PAIRS} pairs and \
                 {MAX_PAIR_UPDATES} pair updates. Use exposure = {{ kind = \"full\" }} with complete \
                 or bernoulli assignment (exact, aggregated variance), smaller clusters, or fewer \
                 auxiliary_draws",
                m.name(),
                design.spec.name
            )));
        }
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0);
        let mut partner = Vec::new();
        let mut count = vec![0u32; n];
        let mut touched = Vec::new();
        for i in 0..n {
            ov.for_each_overlap(i, &mut count, &mut touched, |j, _| partner.push(j));
            offsets.push(partner.len());
        }
        let len = partner.len();
        let (mut c11, mut c00, mut c10) = (vec![0u32; len], vec![0u32; len], vec![0u32; len]);
        let mut c01 = vec![0u32; len];
        let (mut st, mut sc, mut nt, mut nc) =
            (vec![0.0; n], vec![0.0; n], vec![0u32; n], vec![0u32; n]);
        let mut r: Rng = rng::stream(seed, &[rng::purpose::EXPOSURE, 1]);
        let (mut zc, mut z) = (Vec::new(), vec![0u8; n]);
        let (mut t, mut c) = (vec![false; n], vec![false; n]);
        let mut node_draw: Vec<(bool, bool, f64)> = Vec::with_capacity(n);
        for _ in 0..draws {
            design.draw_full(g, &mut r, &mut zc, &mut z)?;
            // Conditions and mean outcomes of every node in parallel (each
            // node's own values: thread-count invariant), then accumulated.
            (0..n)
                .into_par_iter()
                .with_min_len(NODE_CHUNK)
                .map(|i| {
                    let (a, b) = conditions(g, m, &z, i as u32);
                    if !(a || b) {
                        return (a, b, 0.0);
                    }
                    let e = crate::model::exposure::neighbour_arms(g, &z, i as u32).share();
                    (a, b, mean_outcome(i, a, e))
                })
                .collect_into_vec(&mut node_draw);
            for (i, &(a, b, v)) in node_draw.iter().enumerate() {
                t[i] = a;
                c[i] = b;
                if a {
                    st[i] += v;
                    nt[i] += 1;
                } else if b {
                    sc[i] += v;
                    nc[i] += 1;
                }
            }
            for i in 0..n {
                if !(t[i] || c[i]) {
                    continue;
                }
                for k in offsets[i]..offsets[i + 1] {
                    let j = partner[k] as usize;
                    c11[k] += u32::from(t[i] && t[j]);
                    c00[k] += u32::from(c[i] && c[j]);
                    c10[k] += u32::from(t[i] && c[j]);
                    c01[k] += u32::from(c[i] && t[j]);
                }
            }
        }
        let d = draws.max(1) as f64;
        let f = |v: Vec<u32>| v.into_iter().map(|x| x as f64 / d).collect::<Vec<f64>>();
        Ok(PairProbabilities {
            offsets,
            partner,
            p11: f(c11),
            p00: f(c00),
            p10: f(c10),
            p01: f(c01),
            mean_t: st
                .iter()
                .zip(&nt)
                .map(|(s, &k)| if k > 0 { s / k as f64 } else { f64::NAN })
                .collect(),
            mean_c: sc
                .iter()
                .zip(&nc)
                .map(|(s, &k)| if k > 0 { s / k as f64 } else { f64::NAN })
                .collect(),
        })
    }
}

/// Aronow–Samii conservative variance estimate of the HT exposure contrast for
/// one assignment, with joint probabilities `pairs` for the dependent pairs
/// (pairs sharing no cluster are independent). Where a joint probability is
/// zero its covariance term is bounded by Young's inequality, as is the
/// within-unit cross term. `y` may be residuals (Hájek linearization).
pub fn as_variance(
    pairs: &PairProbabilities,
    y: &[f64],
    t: &[bool],
    c: &[bool],
    pi1: &[f64],
    pi0: &[f64],
    included: &[bool],
) -> f64 {
    let n_in = included.iter().filter(|&&b| b).count() as f64;
    let mut total = 0.0;
    for i in 0..y.len() {
        if !included[i] || !(t[i] || c[i]) {
            continue;
        }
        let (yi, p1, p0) = (y[i], pi1[i], pi0[i]);
        // Own terms, and Young's bound for the own cross term (π¹⁰_ii = 0).
        if t[i] {
            total += (1.0 - p1) * yi * yi / (p1 * p1) + yi * yi / p1;
        } else {
            total += (1.0 - p0) * yi * yi / (p0 * p0) + yi * yi / p0;
        }
        // Pair terms. A zero joint probability's Young bound has one piece per
        // node; by symmetry both pieces of a pair are credited to its first node.
        for k in pairs.offsets[i]..pairs.offsets[i + 1] {
            let j = pairs.partner[k] as usize;
            if !included[j] {
                continue;
            }
            let (yj, q1, q0) = (y[j], pi1[j], pi0[j]);
            if t[i] {
                let p11 = pairs.p11[k];
                if p11 == 0.0 {
                    total += yi * yi / p1;
                } else if t[j] {
                    total += (p11 - p1 * q1) / p11 * yi * yj / (p1 * q1);
                }
                let p10 = pairs.p10[k];
                if p10 == 0.0 {
                    total += yi * yi / p1;
                } else if c[j] {
                    total -= 2.0 * (p10 - p1 * q0) / p10 * yi * yj / (p1 * q0);
                }
            } else {
                let p00 = pairs.p00[k];
                if p00 == 0.0 {
                    total += yi * yi / p0;
                } else if c[j] {
                    total += (p00 - p0 * q0) / p00 * yi * yj / (p0 * q0);
                }
                if pairs.p01[k] == 0.0 {
                    total += yi * yi / p0;
                }
            }
        }
    }
    total / (n_in * n_in)
}

/// How a replicate computes every user's exposure e_i, the treated share of
/// its other in-neighbours' weight (what the outcome model reads, defined by
/// [`crate::model::exposure::neighbour_arms`]; tested equal to it), built
/// once per design.
///
/// # Complexity
/// Building: O(arcs). Applying: O(arcs) by node, or O(Σ_i clusters touching
/// i) by cluster.
pub enum ExposureOp {
    /// One pass over the in-adjacency, reading each neighbour's arm.
    ByNode {
        /// Whether the graph stores self-loops (then skipped, on a slower path).
        self_loops: bool,
    },
    /// For cluster designs with good clusters: each node's in-neighbour
    /// weight pre-aggregated by the neighbour's cluster (and normalized), so a
    /// replicate reads a few (cluster, weight) pairs per node and the tiny
    /// cluster-level assignment instead of the whole adjacency.
    ByCluster {
        /// Row offsets, one row per node.
        offsets: Vec<u32>,
        /// Cluster of each entry.
        clusters: Vec<u32>,
        /// Share of the node's in-weight from that cluster (f32: the sweep is
        /// memory-bound, and shares need no more precision).
        shares: Vec<f32>,
    },
}

impl ExposureOp {
    /// The operator for `design`: by cluster when that is at most half the
    /// size of the adjacency, else by node.
    pub fn new(g: &Graph, pop: &crate::model::Population, design: &Design) -> ExposureOp {
        let by_node = ExposureOp::ByNode {
            self_loops: g.self_loop_count() > 0,
        };
        if design.spec.unit != crate::data::design::Unit::Cluster
            || design.spec.assignment == crate::data::design::Assignment::Saturation
            || design.is_redrawn()
        {
            return by_node;
        }
        let (off, src, w) = g.in_csr();
        let labels = design.clusters.labels();
        let k = design.units();
        let mut acc = vec![0.0f64; k];
        let mut touched: Vec<u32> = Vec::new();
        let mut offsets: Vec<u32> = Vec::with_capacity(g.node_count() + 1);
        offsets.push(0);
        let (mut clusters, mut shares) = (Vec::new(), Vec::new());
        for i in 0..g.node_count() {
            for e in off[i]..off[i + 1] {
                if src[e] as usize == i {
                    continue;
                }
                let c = labels[src[e] as usize];
                if acc[c as usize] == 0.0 {
                    touched.push(c);
                }
                acc[c as usize] += w.map_or(1.0, |w| w[e]);
            }
            // Sorted by cluster so the sum order (and so the result) is canonical.
            touched.sort_unstable();
            for &c in &touched {
                clusters.push(c);
                shares.push((acc[c as usize] * pop.inv_in_strength[i]) as f32);
                acc[c as usize] = 0.0;
            }
            touched.clear();
            if clusters.len() > src.len() / 2 || clusters.len() >= u32::MAX as usize {
                return by_node;
            }
            offsets.push(clusters.len() as u32);
        }
        ExposureOp::ByCluster {
            offsets,
            clusters,
            shares,
        }
    }

    /// Fill `e` for node arms `z` and unit arms `zc`.
    pub fn apply(
        &self,
        g: &Graph,
        pop: &crate::model::Population,
        z: &[u8],
        zc: &[u8],
        e: &mut [f64],
    ) {
        match self {
            ExposureOp::ByNode { self_loops: true } => {
                for (i, ei) in e.iter_mut().enumerate() {
                    *ei = crate::model::exposure::neighbour_arms(g, z, i as u32).treated_weight
                        * pop.inv_in_strength[i];
                }
            }
            ExposureOp::ByNode { self_loops: false } => {
                let (off, src, w) = g.in_csr();
                let inv = &pop.inv_in_strength;
                match w {
                    None => {
                        for (i, ei) in e.iter_mut().enumerate() {
                            let row = &src[off[i]..off[i + 1]];
                            let s: u32 = row.iter().map(|&j| u32::from(z[j as usize])).sum();
                            *ei = f64::from(s) * inv[i];
                        }
                    }
                    Some(w) => {
                        for (i, ei) in e.iter_mut().enumerate() {
                            let (a, b) = (off[i], off[i + 1]);
                            let s: f64 = src[a..b]
                                .iter()
                                .zip(&w[a..b])
                                .map(|(&j, &wj)| wj * f64::from(z[j as usize]))
                                .sum();
                            *ei = s * inv[i];
                        }
                    }
                }
            }
            ExposureOp::ByCluster {
                offsets,
                clusters,
                shares,
            } => {
                for (i, ei) in e.iter_mut().enumerate() {
                    let (a, b) = (offsets[i] as usize, offsets[i + 1] as usize);
                    *ei = clusters[a..b]
                        .iter()
                        .zip(&shares[a..b])
                        .map(|(&c, &s)| f64::from(s) * f64::from(zc[c as usize]))
                        .sum();
                }
            }
        }
    }
}

/// Most assignments one [`ExposureOp::apply_batch`] sweep serves by node (one
/// bit each in a 64-bit word per user).
pub const MAX_LANES: usize = 64;

/// Most assignments one sweep serves by cluster (each keeps a full vector of
/// exposures, so fewer).
pub const MAX_CLUSTER_LANES: usize = 8;

/// The exposures of a batch of assignments from one sweep of the operator
/// (see [`ExposureOp::apply_batch`]), or, after [`BatchCounts::pack`], only
/// the batch's packed arms, to be counted block by block
/// ([`BatchCounts::count_block`]; the lane's exposures are then NaN). Lane
/// `r` belongs to assignment `r`.
#[derive(Debug, Default)]
pub struct BatchCounts {
    n: usize,
    lanes: usize,
    /// By node: treated in-neighbour counts when every in-degree fits 16 bits.
    narrow: Vec<u16>,
    /// By node: counts otherwise.
    wide: Vec<u32>,
    /// By cluster: the exposures themselves, lane after lane.
    values: Vec<f64>,
    /// Per user (by node) or cluster (by cluster): bit r set when
    /// assignment r treats it.
    bits: Vec<u64>,
}

impl BatchCounts {
    /// Assignments in the batch.
    pub fn lanes(&self) -> usize {
        self.lanes
    }

    /// Lane `lane`'s exposures when the batch holds them whole (by cluster).
    pub fn values(&self, lane: usize) -> Option<&[f64]> {
        let lane = lane.checked_mul(self.n)?..lane.checked_add(1)?.checked_mul(self.n)?;
        self.values.get(lane).filter(|_| !self.values.is_empty())
    }

    /// Lane `lane`'s exposures of users `start..start + out.len()` into
    /// `out`, as [`BatchCounts::exposure`] gives them; `inv` holds those
    /// users' `inv_in_strength`.
    pub fn exposure_block(&self, lane: usize, start: usize, inv: &[f64], out: &mut [f64]) {
        let a = lane * self.n + start;
        let b = a + out.len();
        if let Some(v) = self.values(lane) {
            out.copy_from_slice(&v[start..start + out.len()]);
        } else if self.narrow.len() < b && self.wide.len() < b {
            // Packed arms only (or a lane out of range): no counts to give.
            out.fill(f64::NAN);
        } else if self.wide.is_empty() {
            exposures_from_counts(&self.narrow[a..b], inv, out);
        } else {
            exposures_from_counts(&self.wide[a..b], inv, out);
        }
    }

    /// Fill `e` with lane `lane`'s exposures, exactly (bit for bit) what
    /// [`ExposureOp::apply`] gives for that assignment: by node, each user's
    /// treated in-neighbour count times `inv_in_strength`.
    pub fn exposure(&self, lane: usize, inv_in_strength: &[f64], e: &mut [f64]) {
        let (a, b) = (lane * self.n, (lane + 1) * self.n);
        if let Some(v) = self.values(lane) {
            e.copy_from_slice(v);
        } else if self.narrow.len() < b && self.wide.len() < b {
            // Packed arms only (or a lane out of range): no counts to give.
            e.fill(f64::NAN);
        } else if self.wide.is_empty() {
            exposures_from_counts(&self.narrow[a..b], inv_in_strength, e);
        } else {
            exposures_from_counts(&self.wide[a..b], inv_in_strength, e);
        }
    }
}

/// Exposures `e` of users from their treated in-neighbour counts and
/// inverse in-strengths: `count · inv`, user by user (over the shortest of
/// the three). Compiled for AVX2 too, picked at run time (see
/// [`crate::simd`]): the same product either way.
pub(crate) fn exposures_from_counts<C: Copy + Into<f64>>(counts: &[C], inv: &[f64], e: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::avx2() {
        // SAFETY: this CPU has AVX2.
        return unsafe { exposures_from_counts_avx2(counts, inv, e) };
    }
    exposures_from_counts_body(counts, inv, e)
}

/// [`exposures_from_counts`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn exposures_from_counts_avx2<C: Copy + Into<f64>>(counts: &[C], inv: &[f64], e: &mut [f64]) {
    exposures_from_counts_body(counts, inv, e)
}

#[inline(always)]
fn exposures_from_counts_body<C: Copy + Into<f64>>(counts: &[C], inv: &[f64], e: &mut [f64]) {
    for ((ei, &c), &inv) in e.iter_mut().zip(counts).zip(inv) {
        *ei = c.into() * inv;
    }
}

/// Byte lanes of a word: bit k of byte b of `(w >> k) & LOW_BITS` is bit 8b + k of w.
const LOW_BITS: u64 = 0x0101_0101_0101_0101;

/// Users whose in-neighbours' packed arms the batched sweep
/// ([`ExposureOp::apply_batch`], [`BatchCounts::count_block`]) gathers at
/// once.
const GATHER: usize = 16;

/// In-arcs past the current group whose neighbours' words
/// [`sweep_range`] asks the cache for ahead of their use.
const PREFETCH: usize = 256;

/// Ask the cache for `bits[j]` (a hint: nothing happens where the
/// processor has no such instruction, and the value is not read).
#[inline(always)]
fn prefetch(bits: &[u64], j: usize) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse"))]
    if let Some(w) = bits.get(j) {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: SSE is in every x86-64 processor, and a prefetch is a hint
        // on a valid address: it neither faults nor changes memory.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(w).cast::<i8>()) };
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse")))]
    let _ = (bits, j);
}

/// Per byte lane sums of the bits of `words` (the packed arms of at most
/// 255 in-neighbours, so no byte overflows): lane r = 8b + k lives in byte b
/// of word k. The AVX2 copy where the CPU has it (the same integer sums).
#[inline]
fn swar_words(words: &[u64]) -> [u64; 8] {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::avx2() {
        // SAFETY: this CPU has AVX2.
        return unsafe { swar_words_avx2(words) };
    }
    swar_words_portable(words)
}

/// [`swar_words`] in plain Rust: 24 operations a word.
#[inline]
fn swar_words_portable(words: &[u64]) -> [u64; 8] {
    let mut acc = [0u64; 8];
    for &w in words {
        for (k, a) in acc.iter_mut().enumerate() {
            *a += (w >> k) & LOW_BITS;
        }
    }
    acc
}

/// [`swar_words`] with AVX2: the word broadcast to four 64-bit lanes and
/// shifted by 0–3 and 4–7 at once (7 operations a word instead of 24).
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn swar_words_avx2(words: &[u64]) -> [u64; 8] {
    use std::arch::x86_64::*;
    let (lo, hi) = (
        _mm256_setr_epi64x(0, 1, 2, 3),
        _mm256_setr_epi64x(4, 5, 6, 7),
    );
    let low = _mm256_set1_epi64x(LOW_BITS as i64);
    let (mut a0, mut a1) = (_mm256_setzero_si256(), _mm256_setzero_si256());
    for &w in words {
        let v = _mm256_set1_epi64x(w as i64);
        a0 = _mm256_add_epi64(a0, _mm256_and_si256(_mm256_srlv_epi64(v, lo), low));
        a1 = _mm256_add_epi64(a1, _mm256_and_si256(_mm256_srlv_epi64(v, hi), low));
    }
    let mut acc = [0u64; 8];
    // SAFETY: 4 u64 at 0 and at 4 within an 8-element array.
    unsafe {
        _mm256_storeu_si256(acc.as_mut_ptr().cast(), a0);
        _mm256_storeu_si256(acc.as_mut_ptr().add(4).cast(), a1);
    }
    acc
}

/// Whether some in-degree of `g` needs more than 16 bits.
fn wide_counts(g: &Graph) -> bool {
    let (off, _, _) = g.in_csr();
    off.windows(2).any(|w| w[1] - w[0] > usize::from(u16::MAX))
}

/// Pack arms one bit per lane: bit r of `bits[i]` is `zs[r][i] & 1`
/// (entries past the end of `zs[r]` count as 0; at most 64 lanes).
///
/// # Complexity
/// O(len · lanes / 8 + len · 6): each lane's arms of 64 users become one
/// word, eight arms per multiplication, and the 64 × 64 bits are transposed.
fn pack(zs: &[&[u8]], len: usize, bits: &mut Vec<u64>) {
    bits.clear();
    bits.resize(len, 0);
    let zs = &zs[..zs.len().min(64)];
    // Groups of 64 users, TILE groups at a time: each lane's arms of a tile
    // are read in one run (a kilobyte, not 64 lanes' 64 bytes in turn).
    const TILE: usize = 16;
    let mut rows = [[0u64; 64]; TILE];
    for (t, tile) in bits.chunks_mut(64 * TILE).enumerate() {
        let start = 64 * TILE * t;
        let groups = tile.len().div_ceil(64);
        // rows[k][r]: bit j is lane r's arm of user start + 64k + j.
        for rk in rows[..groups].iter_mut() {
            *rk = [0u64; 64];
        }
        for (r, z) in zs.iter().enumerate() {
            let z = z
                .get(start..(start + 64 * TILE).min(z.len()))
                .unwrap_or(&[]);
            // Whole groups of eight as fixed-size loads (a slice of unknown
            // length would be copied by a call per group), the last padded.
            let mut eights = z.chunks_exact(8);
            for (q, eight) in (&mut eights).enumerate() {
                let mut b = [0u8; 8];
                b.copy_from_slice(eight);
                rows[q / 8][r] |= gather_low_bits(u64::from_le_bytes(b)) << (8 * (q % 8));
            }
            let rest = eights.remainder();
            if !rest.is_empty() {
                let mut b = [0u8; 8];
                b[..rest.len()].copy_from_slice(rest);
                let q = z.len() / 8;
                rows[q / 8][r] |= gather_low_bits(u64::from_le_bytes(b)) << (8 * (q % 8));
            }
        }
        for (block, rk) in tile.chunks_mut(64).zip(rows.iter_mut()) {
            transpose_bits(rk);
            block.copy_from_slice(&rk[..block.len()]);
        }
    }
}

/// The low bit of each byte of `x`, byte j's as bit j of the result.
#[inline]
fn gather_low_bits(x: u64) -> u64 {
    // Byte j's low bit times 2^(56 − 7j) lands on bit 56 + j, and no two of
    // the 64 partial products share a bit, so nothing carries.
    (x & LOW_BITS).wrapping_mul(0x0102_0408_1020_4080) >> 56
}

/// Transpose the 64 × 64 bit matrix whose row r is `a[r]` (column c = bit
/// c): afterwards bit c of `a[r]` is the old bit r of `a[c]`.
#[inline]
fn transpose_bits(a: &mut [u64; 64]) {
    let (mut j, mut m) = (32usize, 0x0000_0000_ffff_ffff_u64);
    while j != 0 {
        // Swap the upper-right and lower-left j × j blocks of every 2j × 2j
        // block on the diagonal.
        let mut k = 0;
        while k < 64 {
            let t = ((a[k] >> j) ^ a[k + j]) & m;
            a[k] ^= t << j;
            a[k + j] ^= t;
            k = (k + j + 1) & !j;
        }
        j >>= 1;
        m ^= m << j;
    }
}

/// Lane r's sum in [`swar_words`]' layout: byte r / 8 of word r mod 8.
#[inline]
fn byte_lane(acc: &[u64; 8], r: usize) -> u32 {
    ((acc[r % 8] >> (8 * (r / 8))) & 0xff) as u32
}

/// One user's treated in-neighbour counts from [`sweep_range`].
enum UserCounts<'a> {
    /// At most 255 in-neighbours: lane r = 8b + k's count in byte b of word k.
    Bytes(&'a [u64; 8]),
    /// More: each lane's count.
    Wide(&'a [u32]),
}

/// Each user's treated in-neighbour counts in every lane, for users
/// `range`: `put(i, counts)`. `bits` holds the packed arms (bit r of
/// `bits[j]` is lane r's arm of user j), `off`/`src` the in-adjacency (no
/// self-loops).
///
/// # Complexity
/// O(in-arcs of `range` + users · lanes); the neighbours' words are read
/// once for every lane.
fn sweep_range(
    off: &[usize],
    src: &[u32],
    bits: &[u64],
    lanes: usize,
    range: std::ops::Range<usize>,
    words: &mut Vec<u64>,
    mut put: impl FnMut(usize, UserCounts),
) {
    let mut total = [0u32; MAX_LANES];
    let lanes = lanes.min(MAX_LANES);
    // A group of up to GATHER users at a time (none with more than 255
    // in-neighbours, so at most 4,080 words): their in-neighbours' packed
    // arms are read first, in one loop of independent loads (so the
    // scattered reads overlap), then counted. A user with more in-neighbours
    // is read and counted 255 at a time on its own.
    words.clear();
    words.reserve(GATHER * 255);
    let (mut group, mut group_end) = (range.start, range.start);
    let end = range.end;
    for i in range {
        let (a, b) = (off[i], off[i + 1]);
        if b - a > 255 {
            total[..lanes].fill(0);
            for part in src[a..b].chunks(255) {
                words.clear();
                words.extend(part.iter().map(|&j| bits[j as usize]));
                let acc = swar_words(words);
                for (r, t) in total[..lanes].iter_mut().enumerate() {
                    *t += byte_lane(&acc, r);
                }
            }
            put(i, UserCounts::Wide(&total[..lanes]));
        } else {
            if i >= group_end {
                group = i;
                group_end = i;
                while group_end < end
                    && group_end - i < GATHER
                    && off[group_end + 1] - off[group_end] <= 255
                {
                    group_end += 1;
                }
                words.clear();
                words.extend(src[a..off[group_end]].iter().map(|&j| bits[j as usize]));
                // The next group's words are on their way while this one is counted.
                let ahead = off[group_end]..(off[group_end] + PREFETCH).min(off[end]);
                for &j in &src[ahead] {
                    prefetch(bits, j as usize);
                }
            }
            let row = &words[a - off[group]..b - off[group]];
            put(i, UserCounts::Bytes(&swar_words(row)));
        }
    }
}

/// Each user's treated in-neighbour count in every lane, for users `range`:
/// `put(i, counts)` with lane r's count at `counts[r]` (see [`sweep_range`]).
fn count_range(
    off: &[usize],
    src: &[u32],
    bits: &[u64],
    lanes: usize,
    range: std::ops::Range<usize>,
    words: &mut Vec<u64>,
    mut put: impl FnMut(usize, &[u32]),
) {
    let lanes = lanes.min(MAX_LANES);
    let mut total = [0u32; MAX_LANES];
    sweep_range(off, src, bits, lanes, range, words, |i, c| match c {
        UserCounts::Bytes(acc) => {
            for (r, t) in total[..lanes].iter_mut().enumerate() {
                *t = byte_lane(acc, r);
            }
            put(i, &total[..lanes]);
        }
        UserCounts::Wide(t) => put(i, t),
    });
}

/// Transpose the 8 × 8 bytes of `a`: byte b of `a[j]` goes to byte j of
/// `a[b]`.
#[inline]
fn transpose_bytes(a: &mut [u64; 8]) {
    for (half, mask) in [
        (32, 0x0000_0000_ffff_ffff_u64),
        (16, 0x0000_ffff_0000_ffff),
        (8, 0x00ff_00ff_00ff_00ff),
    ] {
        let step = half / 8;
        for j in 0..8 {
            if j & step == 0 {
                let t = ((a[j] >> half) ^ a[j + step]) & mask;
                a[j] ^= t << half;
                a[j + step] ^= t;
            }
        }
    }
}

impl BatchCounts {
    /// Start a streamed batch of `zs.len()` assignments (node arms `zs` of
    /// `n` users, at most [`MAX_LANES`]): pack them one bit per lane, for
    /// [`BatchCounts::count_block`].
    ///
    /// # Complexity
    /// O(users · lanes).
    pub fn pack(&mut self, n: usize, zs: &[&[u8]]) {
        self.n = n;
        self.lanes = zs.len().min(MAX_LANES);
        self.narrow.clear();
        self.wide.clear();
        self.values.clear();
        pack(&zs[..self.lanes], n, &mut self.bits);
    }

    /// The treated in-neighbour counts of users `start..start + len` in
    /// every lane of the packed batch ([`BatchCounts::pack`]), the counts
    /// [`ExposureOp::apply_batch`] gives: lane r's count of user `start + j`
    /// at `out[r * stride + j]` when below 256, where `stride` (returned, at
    /// least `len`) keeps the lanes off one cache set; users with more than
    /// 255 in-neighbours are in `hubs` instead, as (j, each lane's count),
    /// and their bytes in `out` are 0. `g` must be counted by node
    /// ([`ExposureOp::counts_by_node`]); `words` is scratch.
    ///
    /// # Complexity
    /// O(in-arcs of the block + len · lanes / 8): eight users' byte counts
    /// are transposed into their lanes a word at a time.
    pub fn count_block(
        &self,
        g: &Graph,
        start: usize,
        len: usize,
        out: &mut Vec<u8>,
        hubs: &mut Vec<(usize, [u32; MAX_LANES])>,
        words: &mut Vec<u64>,
    ) -> usize {
        let (off, src, _) = g.in_csr();
        // Whole words per lane, and lanes 4 KiB apart would share the cache
        // sets every group's writes land in.
        let stride = len.div_ceil(8) * 8 + 64;
        let lanes = self.lanes;
        // Every byte read (each lane's first `len`) is written below.
        out.resize(stride * lanes, 0);
        hubs.clear();
        // Eight users' byte-lane sums: group[k][j] is user j's word k.
        let mut group = [[0u64; 8]; 8];
        let mut flush = |group: &mut [[u64; 8]; 8], first: usize| {
            for (k, words) in group.iter_mut().enumerate() {
                transpose_bytes(words);
                // words[b] now holds lane 8b + k's counts of the 8 users.
                for (b, &w) in words.iter().enumerate() {
                    let r = 8 * b + k;
                    if r < lanes {
                        let at = r * stride + first;
                        out[at..at + 8].copy_from_slice(&w.to_le_bytes());
                    }
                }
            }
            *group = [[0u64; 8]; 8];
        };
        let end = start + len;
        sweep_range(off, src, &self.bits, lanes, start..end, words, |i, c| {
            let j = i - start;
            match c {
                UserCounts::Bytes(acc) => {
                    for (k, &w) in acc.iter().enumerate() {
                        group[k][j % 8] = w;
                    }
                }
                UserCounts::Wide(t) => {
                    let mut all = [0u32; MAX_LANES];
                    all[..t.len()].copy_from_slice(t);
                    hubs.push((j, all));
                }
            }
            if j % 8 == 7 || i + 1 == end {
                flush(&mut group, j - j % 8);
            }
        });
        stride
    }
}

impl ExposureOp {
    /// Most assignments [`ExposureOp::apply_batch`] serves at once on `g`: 0
    /// when it does not batch (by node on a weighted graph or one with
    /// self-loops).
    pub fn max_lanes(&self, g: &Graph) -> usize {
        match self {
            ExposureOp::ByNode { self_loops: false } if !g.is_weighted() => MAX_LANES,
            ExposureOp::ByNode { .. } => 0,
            ExposureOp::ByCluster { .. } => MAX_CLUSTER_LANES,
        }
    }

    /// Whether the sweep counts treated in-neighbours by node (an
    /// unweighted graph without self-loops, by node), so a batch can be
    /// counted block by block ([`BatchCounts::count_block`]).
    pub fn counts_by_node(&self, g: &Graph) -> bool {
        matches!(self, ExposureOp::ByNode { self_loops: false }) && !g.is_weighted()
    }

    /// Bytes a batch on `g` keeps per lane (its exposures or counts and the
    /// assignment itself), for sizing batches against memory.
    pub fn batch_bytes_per_lane(&self, g: &Graph) -> usize {
        let per_user = match self {
            ExposureOp::ByNode { .. } if wide_counts(g) => 4,
            ExposureOp::ByNode { .. } => 2,
            ExposureOp::ByCluster { .. } => 8,
        };
        g.node_count() * (1 + per_user)
    }

    /// The exposures of every assignment of a batch (node arms `zs`, unit
    /// arms `zcs`; at most [`ExposureOp::max_lanes`]) from one sweep, equal
    /// bit for bit to [`ExposureOp::apply`] on each.
    ///
    /// By node, the assignments are packed one bit per lane in a word per
    /// user and summed in byte lanes (SWAR), so the random reads of the
    /// in-adjacency are shared by the whole batch; by cluster, each (cluster,
    /// share) entry is read once for all lanes, summed in the same order.
    ///
    /// # Complexity
    /// O(arcs + users · lanes) by node; O(entries · lanes) by cluster, one
    /// read of the operator for the whole batch.
    ///
    /// A batch the fast paths do not serve (more lanes than
    /// [`ExposureOp::max_lanes`], or an operator that does not batch) is
    /// applied lane by lane with [`ExposureOp::apply`]: slower, never wrong.
    pub fn apply_batch(
        &self,
        g: &Graph,
        pop: &crate::model::Population,
        zs: &[&[u8]],
        zcs: &[&[u8]],
        out: &mut BatchCounts,
    ) {
        let n = g.node_count();
        let lanes = zs.len().min(zcs.len());
        out.n = n;
        out.lanes = lanes;
        out.narrow.clear();
        out.wide.clear();
        out.values.clear();
        if lanes == 0 {
            return;
        }
        if lanes > self.max_lanes(g) {
            out.values.resize(n * lanes, 0.0);
            for (r, e) in out.values.chunks_mut(n.max(1)).take(lanes).enumerate() {
                self.apply(g, pop, zs[r], zcs[r], e);
            }
            return;
        }
        match self {
            ExposureOp::ByNode { .. } => {
                pack(zs, n, &mut out.bits);
                let (off, src, _) = g.in_csr();
                let wide = wide_counts(g);
                if wide {
                    out.wide.resize(n * lanes, 0);
                } else {
                    out.narrow.resize(n * lanes, 0);
                }
                let bits = &out.bits;
                let mut words = Vec::new();
                if wide {
                    count_range(off, src, bits, lanes, 0..n, &mut words, |i, t| {
                        for (r, &t) in t.iter().enumerate() {
                            out.wide[r * n + i] = t;
                        }
                    });
                } else {
                    count_range(off, src, bits, lanes, 0..n, &mut words, |i, t| {
                        for (r, &t) in t.iter().enumerate() {
                            // In-degree at most u16::MAX here, so the count fits.
                            out.narrow[r * n + i] = t as u16;
                        }
                    });
                }
            }
            ExposureOp::ByCluster {
                offsets,
                clusters,
                shares,
            } => {
                let k = zcs.first().map_or(0, |z| z.len());
                pack(zcs, k, &mut out.bits);
                out.values.resize(n * lanes, 0.0);
                let bits = &out.bits;
                // The empty sum [`ExposureOp::apply`] starts from.
                let start: f64 = std::iter::empty::<f64>().sum();
                for i in 0..n {
                    let (a, b) = (offsets[i] as usize, offsets[i + 1] as usize);
                    let mut acc = [start; MAX_CLUSTER_LANES];
                    for (&c, &s) in clusters[a..b].iter().zip(&shares[a..b]) {
                        let (w, s) = (bits[c as usize], f64::from(s));
                        for (r, x) in acc.iter_mut().enumerate() {
                            *x += s * ((w >> r) & 1) as f64;
                        }
                    }
                    for (r, &x) in acc[..lanes].iter().enumerate() {
                        out.values[r * n + i] = x;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{BuildOptions, GraphBuilder};

    /// Issue 14: the byte-lane sums, on both copies, equal counting each
    /// bit position of each word on its own, for 0 to 255 words (multiples
    /// of 3 and 15 and not), all-ones words (the largest sums) included.
    #[test]
    fn swar_sums_equal_bit_counts() {
        use rand::RngExt;
        let mut r = crate::rng::stream(6, &[2]);
        for len in [0usize, 1, 2, 3, 4, 14, 15, 16, 29, 30, 31, 100, 254, 255] {
            for ones in [false, true] {
                let words: Vec<u64> = (0..len)
                    .map(|_| if ones { u64::MAX } else { r.random() })
                    .collect();
                // The copy this CPU runs (AVX2 where it has it) and the portable one.
                for acc in [swar_words(&words), swar_words_portable(&words)] {
                    for lane in 0..64 {
                        let want = words.iter().filter(|&&w| w >> lane & 1 == 1).count() as u64;
                        let got = (acc[lane % 8] >> (8 * (lane / 8))) & 0xff;
                        assert_eq!(got, want, "{len} words, lane {lane}");
                    }
                }
            }
        }
    }

    /// Issue 14: packing by multiplication and bit transposition equals
    /// setting each bit on its own: lanes from 1 to 64, lengths that are
    /// and are not multiples of 8, 64 and the 1,024-user tile, arms shorter
    /// than the length (ending inside a group, a tile, or at a tile's end),
    /// and arms other than 0 and 1 (their low bit counts).
    #[test]
    fn packed_arms_equal_bit_by_bit() {
        use rand::RngExt;
        let mut r = crate::rng::stream(5, &[1]);
        let cases = [
            (1, 1),
            (3, 7),
            (64, 64),
            (64, 200),
            (17, 129),
            (64, 1000),
            (64, 2125),
            (9, 2048),
            (9, 3072),
        ];
        for (lanes, len) in cases {
            let zs: Vec<Vec<u8>> = (0..lanes)
                .map(|l| {
                    let n = if l % 5 == 4 { len / 2 } else { len };
                    (0..n).map(|_| r.random_range(0..4u8)).collect()
                })
                .collect();
            let refs: Vec<&[u8]> = zs.iter().map(|z| z.as_slice()).collect();
            let mut bits = vec![7u64; 3];
            pack(&refs, len, &mut bits);
            assert_eq!(bits.len(), len);
            for (i, &w) in bits.iter().enumerate() {
                let want = (0..lanes).fold(0u64, |acc, l| {
                    acc | u64::from(zs[l].get(i).map_or(0, |&z| z & 1)) << l
                });
                assert_eq!(w, want, "user {i} of {len}, {lanes} lanes");
            }
        }
    }

    /// Exposures from counts, on whichever copy this CPU runs and on both
    /// copies, equal each user's count times its inverse in-strength, bit
    /// for bit, for byte, 16-bit and 32-bit counts.
    #[test]
    fn exposures_from_counts_equal_each_users_product() {
        use rand::RngExt;
        let mut r = crate::rng::stream(24, &[]);
        for n in [0usize, 1, 3, 4, 5, 17, 1024, 1027] {
            let c32: Vec<u32> = (0..n).map(|_| r.random_range(0..100_000)).collect();
            let inv: Vec<f64> = (0..n)
                .map(|_| 1.0 / (1.0 + 3e5 * r.random::<f64>()))
                .collect();
            let want: Vec<u64> = (0..n)
                .map(|i| (f64::from(c32[i]) * inv[i]).to_bits())
                .collect();
            let bits = |x: &[f64]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            let mut got = vec![7.0; n];
            exposures_from_counts(&c32, &inv, &mut got);
            assert_eq!(bits(&got), want, "u32, n {n}");
            let c16: Vec<u16> = c32.iter().map(|&c| c as u16).collect();
            let c8: Vec<u8> = c32.iter().map(|&c| c as u8).collect();
            let w16: Vec<u64> = (0..n)
                .map(|i| (f64::from(c16[i]) * inv[i]).to_bits())
                .collect();
            let w8: Vec<u64> = (0..n)
                .map(|i| (f64::from(c8[i]) * inv[i]).to_bits())
                .collect();
            exposures_from_counts(&c16, &inv, &mut got);
            assert_eq!(bits(&got), w16, "u16, n {n}");
            exposures_from_counts(&c8, &inv, &mut got);
            assert_eq!(bits(&got), w8, "u8, n {n}");
            #[cfg(target_arch = "x86_64")]
            if crate::simd::avx2() {
                let mut base = vec![7.0; n];
                exposures_from_counts_body(&c8, &inv, &mut base);
                assert_eq!(bits(&base), w8, "baseline copy, n {n}");
            } else {
                eprintln!("no AVX2 on this CPU: only the baseline runs");
            }
        }
    }

    /// A 9-node ring with one chord, in 4 clusters.
    fn ring9() -> (Graph, [u32; 9]) {
        let mut b = GraphBuilder::new(9, false, false);
        for u in 0..9u32 {
            b.add_edge(u, (u + 1) % 9, 1.0);
        }
        b.add_edge(2, 6, 1.0);
        let (g, _) = b.build(&BuildOptions::default()).unwrap();
        (g, [0, 0, 1, 1, 2, 2, 3, 3, 3])
    }

    #[test]
    fn exact_ht_variance_matches_enumeration() {
        let (g, labels) = ring9();
        let ov = Overlap::new(&g, &labels, 4);
        let p = 0.35;
        let y1: Vec<f64> = (0..9).map(|i| 2.0 + 0.3 * i as f64).collect();
        let y0: Vec<f64> = (0..9).map(|i| 1.0 - 0.2 * i as f64).collect();
        let zero = vec![0.0; 9];
        let all = vec![true; 9];
        let formula = ht_variance_full_bernoulli(&ov, p, &y1, &y0, &zero, &zero, &all);
        // Enumerate the 2^4 cluster assignments.
        let pi1: Vec<f64> = (0..9).map(|i| p.powi(ov.s(i) as i32)).collect();
        let pi0: Vec<f64> = (0..9).map(|i| (1.0 - p).powi(ov.s(i) as i32)).collect();
        let (mut m1, mut m2) = (0.0, 0.0);
        for mask in 0u32..16 {
            let k = mask.count_ones() as i32;
            let prob = p.powi(k) * (1.0 - p).powi(4 - k);
            let z: Vec<u8> = labels.iter().map(|&c| (mask >> c & 1) as u8).collect();
            let (t, c): (Vec<bool>, Vec<bool>) = (0..9u32)
                .map(|i| conditions(&g, &Mapping::Full, &z, i))
                .unzip();
            let y: Vec<f64> = (0..9)
                .map(|i| if z[i] == 1 { y1[i] } else { y0[i] })
                .collect();
            let (ht, _) = ht_hajek(&y, &t, &c, &pi1, &pi0, &all);
            m1 += prob * ht;
            m2 += prob * ht * ht;
        }
        let truth = (0..9).map(|i| y1[i] - y0[i]).sum::<f64>() / 9.0;
        assert!(
            (m1 - truth).abs() < 1e-12,
            "HT is unbiased: {m1} vs {truth}"
        );
        let var = m2 - m1 * m1;
        assert!(
            (var - formula).abs() < 1e-10 * var.max(1.0),
            "{var} vs {formula}"
        );
        // Probabilities agree with the exact-probability code path too.
        let x = vec![0.0; 9];
        let spec = crate::data::design::DesignSpec {
            name: "c".into(),
            unit: crate::data::design::Unit::Cluster,
            assignment: Assignment::Bernoulli,
            treated_share: p,
            partition: Some(crate::data::design::PartitionSpec::new(
                crate::data::design::PartitionMethod::Planted,
            )),
            strata_by: crate::data::design::StrataBy::Size,
            strata: 1,
            saturations: None,
            saturation_shares: None,
        };
        let d = Design::new(
            spec,
            Some(crate::partition::Partition::from_labels(&labels)),
            &x,
        )
        .unwrap();
        let ex = exact(&g, &d, &Mapping::Full).unwrap().unwrap();
        for i in 0..9 {
            assert!(
                (ex.treated[i] - pi1[i]).abs() < 1e-12 && (ex.control[i] - pi0[i]).abs() < 1e-12
            );
        }
    }

    /// The Aronow–Samii (2017) conservative variance, straight from its
    /// double sum, with every first- and second-order probability found by
    /// enumerating all 2^4 cluster assignments of the ring (no closed form):
    ///
    /// V̂(Ŷ_k) = Σ_i 1_i(k)(1 − π_i(k))(Y_i/π_i(k))²
    ///        + Σ_{i≠j, π_ij(k,k)>0} 1_i(k)1_j(k)(π_ij − π_iπ_j)/π_ij · Y_iY_j/(π_iπ_j)
    ///        + Σ_{i≠j, π_ij(k,k)=0} [1_i(k)Y_i²/(2π_i) + 1_j(k)Y_j²/(2π_j)],
    /// Ĉ(Ŷ_1, Ŷ_0) = Σ_{i≠j, π_ij(1,0)>0} 1_i(1)1_j(0)(π_ij − π_iπ_j)/π_ij · Y_iY_j/(π_iπ_j)
    ///        − Σ_{i,j: π_ij(1,0)=0} [1_i(1)Y_i²/(2π_i(1)) + 1_j(0)Y_j²/(2π_j(0))],
    /// V̂(τ̂) = (V̂(Ŷ_1) + V̂(Ŷ_0) − 2Ĉ)/N².
    ///
    /// Both library forms (the general one fed the enumerated joint
    /// probabilities, and the cluster-Bernoulli closed form) must equal it for
    /// every assignment and outcome vector.
    #[test]
    #[allow(clippy::needless_range_loop)]
    fn aronow_samii_matches_the_brute_force_double_sum() {
        let (g, labels) = ring9();
        let ov = Overlap::new(&g, &labels, 4);
        let p: f64 = 0.4;
        let n = 9usize;
        // Enumerate assignments: conditions per node and their probabilities.
        let mut pi = [[0.0f64; 9]; 2]; // pi[k][i], k = 1 treated, 0 control
        let mut joint = vec![[[0.0f64; 2]; 2]; n * n]; // joint[i*n+j][k][l]
        let cond = |mask: u32| -> (Vec<bool>, Vec<bool>) {
            let z: Vec<u8> = labels.iter().map(|&c| (mask >> c & 1) as u8).collect();
            (0..9u32)
                .map(|i| conditions(&g, &Mapping::Full, &z, i))
                .unzip()
        };
        for mask in 0u32..16 {
            let k = mask.count_ones() as i32;
            let w = p.powi(k) * (1.0 - p).powi(4 - k);
            let (t, c) = cond(mask);
            let d = |i: usize, kk: usize| if kk == 1 { t[i] } else { c[i] };
            for i in 0..n {
                for kk in 0..2 {
                    if d(i, kk) {
                        pi[kk][i] += w;
                    }
                    for j in 0..n {
                        for ll in 0..2 {
                            if d(i, kk) && d(j, ll) {
                                joint[i * n + j][kk][ll] += w;
                            }
                        }
                    }
                }
            }
        }
        let brute = |y: &[f64], t: &[bool], c: &[bool]| -> f64 {
            let ind = |i: usize, k: usize| if k == 1 { t[i] } else { c[i] };
            let mut v = [0.0f64; 2];
            for (k, vk) in v.iter_mut().enumerate() {
                for i in 0..n {
                    if ind(i, k) {
                        *vk += (1.0 - pi[k][i]) * (y[i] / pi[k][i]).powi(2);
                    }
                    for j in 0..n {
                        if j == i {
                            continue;
                        }
                        let pij = joint[i * n + j][k][k];
                        if pij > 0.0 {
                            if ind(i, k) && ind(j, k) {
                                *vk += (pij - pi[k][i] * pi[k][j]) / pij * y[i] * y[j]
                                    / (pi[k][i] * pi[k][j]);
                            }
                        } else {
                            if ind(i, k) {
                                *vk += y[i] * y[i] / (2.0 * pi[k][i]);
                            }
                            if ind(j, k) {
                                *vk += y[j] * y[j] / (2.0 * pi[k][j]);
                            }
                        }
                    }
                }
            }
            let mut cov = 0.0;
            for i in 0..n {
                for j in 0..n {
                    let pij = joint[i * n + j][1][0];
                    if i != j && pij > 0.0 {
                        if t[i] && c[j] {
                            cov += (pij - pi[1][i] * pi[0][j]) / pij * y[i] * y[j]
                                / (pi[1][i] * pi[0][j]);
                        }
                    } else if pij == 0.0 {
                        if t[i] {
                            cov -= y[i] * y[i] / (2.0 * pi[1][i]);
                        }
                        if c[j] {
                            cov -= y[j] * y[j] / (2.0 * pi[0][j]);
                        }
                    }
                }
            }
            (v[0] + v[1] - 2.0 * cov) / (n * n) as f64
        };
        // The general form, fed the enumerated joint probabilities of the
        // pairs that share a cluster (the others are independent).
        let (mut count, mut touched) = (vec![0u32; 9], Vec::new());
        let mut pairs = PairProbabilities {
            offsets: vec![0],
            partner: vec![],
            p11: vec![],
            p00: vec![],
            p10: vec![],
            p01: vec![],
            mean_t: vec![],
            mean_c: vec![],
        };
        for i in 0..9 {
            ov.for_each_overlap(i, &mut count, &mut touched, |j, _| {
                let jj = joint[i * n + j as usize];
                pairs.partner.push(j);
                pairs.p11.push(jj[1][1]);
                pairs.p00.push(jj[0][0]);
                pairs.p10.push(jj[1][0]);
                pairs.p01.push(jj[0][1]);
            });
            pairs.offsets.push(pairs.partner.len());
        }
        let (pi1, pi0) = (pi[1].to_vec(), pi[0].to_vec());
        let all = vec![true; 9];
        for (case, y) in [
            (0..9)
                .map(|i| 1.0 + 0.7 * i as f64 - 0.05 * (i * i) as f64)
                .collect::<Vec<f64>>(),
            (0..9)
                .map(|i| if i % 3 == 0 { -2.0 } else { 0.5 * i as f64 })
                .collect(),
        ]
        .iter()
        .enumerate()
        {
            for mask in 0u32..16 {
                let (t, c) = cond(mask);
                let want = brute(y, &t, &c);
                let general = as_variance(&pairs, y, &t, &c, &pi1, &pi0, &all);
                let full = as_variance_full(
                    &ov,
                    p,
                    y,
                    &t,
                    &c,
                    &pi1,
                    &pi0,
                    &all,
                    &mut count,
                    &mut touched,
                );
                let tol = 1e-9 * want.abs().max(1.0);
                assert!(
                    (general - want).abs() < tol,
                    "case {case}, {mask}: general {general} vs {want}"
                );
                assert!(
                    (full - want).abs() < tol,
                    "case {case}, {mask}: full {full} vs {want}"
                );
            }
        }
    }

    mod aggregated {
        //! The shared-set sums equal the pair walks they replace, on random
        //! graphs, partitions, included sets, assignments and outcomes.
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(300))]
            #[test]
            fn shared_sets_equal_the_pair_walk(
                n in 2usize..14,
                edges in proptest::collection::vec((0u32..14, 0u32..14), 0..40),
                raw in proptest::collection::vec(0u32..5, 14),
                keep in proptest::collection::vec(proptest::bool::weighted(0.8), 14),
                arms in proptest::collection::vec(any::<bool>(), 5),
                ys in proptest::collection::vec(-3.0f64..3.0, 14),
                tenths in 1u32..10,
            ) {
                let mut b = GraphBuilder::new(n, false, false);
                for &(u, v) in &edges {
                    if (u as usize) < n && (v as usize) < n {
                        b.add_edge(u, v, 1.0);
                    }
                }
                let (g, _) = b.build(&BuildOptions::default()).unwrap();
                let part = crate::partition::Partition::from_labels(&raw[..n]);
                let labels = part.labels();
                let k = part.count();
                let ov = Overlap::new(&g, labels, k);
                let included: Vec<bool> = keep[..n].to_vec();
                let p = tenths as f64 / 10.0;
                let pi1: Vec<f64> = (0..n).map(|i| p.powi(ov.s(i) as i32)).collect();
                let pi0: Vec<f64> = (0..n).map(|i| (1.0 - p).powi(ov.s(i) as i32)).collect();
                let z: Vec<u8> = labels.iter().map(|&c| u8::from(arms[c as usize])).collect();
                let (t, c) = ov.full_conditions(labels, &z);
                let (t2, c2): (Vec<bool>, Vec<bool>) =
                    (0..n as u32).map(|i| conditions(&g, &Mapping::Full, &z, i)).unzip();
                prop_assert_eq!((&t, &c), (&t2, &c2));
                let y = &ys[..n];
                let sets = SharedSets::new(&ov, &included).unwrap();
                let members = |v: &[bool]| -> Vec<u32> {
                    (0..n as u32).filter(|&i| v[i as usize] && included[i as usize]).collect()
                };
                let kept = included.iter().filter(|&&b| b).count();
                prop_assume!(kept > 0);
                let (mut count, mut touched) = (vec![0u32; n], Vec::new());
                let walk = as_variance_full(&ov, p, y, &t, &c, &pi1, &pi0, &included, &mut count, &mut touched);
                let sv = SetVariance::new(&sets, p);
                let neg: Vec<f64> = y.iter().map(|v| 2.0 - v).collect();
                let walk2 = as_variance_full(&ov, p, &neg, &t, &c, &pi1, &pi0, &included, &mut count, &mut touched);
                let mt = 0.7;
                let mc = -0.4;
                let [[h1, r1], [h2, r2]] = as_variances_full_sets(&sets, &sv, [y, &neg], [(mt, mc), (1.0, 2.0)], &members(&t), &members(&c), &pi1, &pi0, kept);
                let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(1.0);
                prop_assert!(close(walk, h1), "{} vs {}", walk, h1);
                prop_assert!(close(walk2, h2), "{} vs {}", walk2, h2);
                // Hájek: the same sum on residuals y − m (m per condition).
                let resid = |v: &[f64], mt: f64, mc: f64| -> Vec<f64> {
                    (0..n).map(|i| if t[i] { v[i] - mt } else if c[i] { v[i] - mc } else { 0.0 }).collect()
                };
                let rw1 = as_variance_full(&ov, p, &resid(y, mt, mc), &t, &c, &pi1, &pi0, &included, &mut count, &mut touched);
                let rw2 = as_variance_full(&ov, p, &resid(&neg, 1.0, 2.0), &t, &c, &pi1, &pi0, &included, &mut count, &mut touched);
                prop_assert!(close(rw1, r1), "{} vs {}", rw1, r1);
                prop_assert!(close(rw2, r2), "{} vs {}", rw2, r2);
                // A second call reuses the pooled accumulators: same answer.
                let again = as_variances_full_sets(&sets, &sv, [y, &neg], [(mt, mc), (1.0, 2.0)], &members(&t), &members(&c), &pi1, &pi0, kept);
                prop_assert_eq!(again, [[h1, r1], [h2, r2]]);
                let y0: Vec<f64> = y.iter().map(|v| 0.5 * v - 1.0).collect();
                let v = vec![0.3; n];
                let exact = ht_variance_full_bernoulli(&ov, p, y, &y0, &v, &v, &included);
                let exact_agg = ht_variance_full_bernoulli_sets(&ov, &sets, p, y, &y0, &v, &v, &included);
                prop_assert!((exact - exact_agg).abs() <= 1e-9 * exact.abs().max(1.0), "{} vs {}", exact, exact_agg);
            }
        }
    }

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
