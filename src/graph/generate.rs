//! Seeded random graph generators.
//!
//! This module owns the network models a scenario can ask for, each with its
//! parameters ([`Model`]), and [`Generated`], a graph with its planted
//! communities where the model has them. Every generator costs time linear in
//! nodes + edges (geometric skipping over candidate pairs, or the Miller–Hagberg
//! algorithm for Chung–Lu graphs), never a loop over all pairs. Randomness
//! comes from [`crate::rng::stream`] keyed by the seed and a fixed chunk index,
//! and chunk boundaries depend only on the parameters, so the same seed gives
//! the same graph on any number of threads.

use super::{BuildOptions, Graph, GraphBuilder};
use crate::error::{Error, Result};
use crate::rng::{self, purpose, Rng};
use rand::RngExt;
use rand_distr::{Distribution, Geometric, Poisson};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// A generated graph with what the model planted.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The graph.
    pub graph: Graph,
    /// Planted community of each node, for models that plant them.
    pub communities: Option<Vec<u32>>,
    /// Expected degree of each node, for degree-corrected models.
    pub expected_degrees: Option<Vec<f64>>,
    /// One line naming the model and its parameters.
    pub description: String,
}

/// Erdős–Rényi G(n, p): every pair is an edge with probability p.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
#[serde(deny_unknown_fields)]
pub struct Gnp {
    /// Number of nodes.
    #[cfg_attr(feature = "cli", arg(long))]
    pub n: usize,
    /// Edge probability, in [0, 1].
    #[cfg_attr(feature = "cli", arg(long))]
    pub p: f64,
}

/// Erdős–Rényi G(n, m): m distinct edges drawn uniformly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
#[serde(deny_unknown_fields)]
pub struct Gnm {
    /// Number of nodes.
    #[cfg_attr(feature = "cli", arg(long))]
    pub n: usize,
    /// Number of edges, at most n(n−1)/2.
    #[cfg_attr(feature = "cli", arg(long))]
    pub m: usize,
}

/// Barabási–Albert preferential attachment, started from a star on m + 1 nodes
/// (as networkx): each new node links to m distinct nodes chosen with
/// probability proportional to degree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
#[serde(deny_unknown_fields)]
pub struct Ba {
    /// Number of nodes (> m).
    #[cfg_attr(feature = "cli", arg(long))]
    pub n: usize,
    /// Edges added per new node (≥ 1).
    #[cfg_attr(feature = "cli", arg(long))]
    pub m: usize,
}

/// Watts–Strogatz small world: a ring where each node links to its k nearest
/// neighbours, each edge's far end rewired with probability beta.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
#[serde(deny_unknown_fields)]
pub struct Ws {
    /// Number of nodes (> k).
    #[cfg_attr(feature = "cli", arg(long))]
    pub n: usize,
    /// Ring degree: even, ≥ 2.
    #[cfg_attr(feature = "cli", arg(long))]
    pub k: usize,
    /// Rewiring probability, in [0, 1].
    #[cfg_attr(feature = "cli", arg(long))]
    pub beta: f64,
}

/// Planted partition (stochastic block model with one within-block probability
/// p_in and one between-block probability p_out). Blocks are contiguous id ranges.
///
/// Give the blocks as `sizes`, or `n` with `blocks` or `block_size`; give the
/// probabilities as `p_in` and `p_out`, or `mean_degree` and `mu` (the expected
/// share of a node's edges that leave its block).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
#[serde(deny_unknown_fields)]
pub struct Sbm {
    /// Number of nodes (with --blocks or --block-size).
    #[cfg_attr(feature = "cli", arg(long))]
    pub n: Option<usize>,
    /// Number of equal blocks (the first n mod blocks blocks get one extra node).
    #[cfg_attr(feature = "cli", arg(long))]
    pub blocks: Option<usize>,
    /// Block size (the last block takes the remainder).
    #[cfg_attr(feature = "cli", arg(long))]
    pub block_size: Option<usize>,
    /// Explicit block sizes, comma separated (instead of n and blocks).
    #[cfg_attr(feature = "cli", arg(long, value_delimiter = ','))]
    pub sizes: Option<Vec<usize>>,
    /// Within-block edge probability.
    #[cfg_attr(feature = "cli", arg(long))]
    pub p_in: Option<f64>,
    /// Between-block edge probability.
    #[cfg_attr(feature = "cli", arg(long))]
    pub p_out: Option<f64>,
    /// Expected mean degree (with --mu).
    #[cfg_attr(feature = "cli", arg(long))]
    pub mean_degree: Option<f64>,
    /// Mixing parameter: expected share of edges leaving the block, in [0, 1].
    #[cfg_attr(feature = "cli", arg(long))]
    pub mu: Option<f64>,
}

/// Degree-corrected SBM with power-law expected degrees and power-law community
/// sizes (LFR-like benchmark). Expected degrees are drawn from a continuous
/// power law on [k_min, max_degree] with k_min set so the mean is `mean_degree`;
/// edges are Chung–Lu within communities (weight (1−mu)·θ) and across the graph
/// (weight mu·θ, pairs inside a community refused), so realized degrees are
/// Poisson around θ and the mixing is about mu.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
#[serde(deny_unknown_fields)]
pub struct Lfr {
    /// Number of nodes.
    #[cfg_attr(feature = "cli", arg(long))]
    pub n: usize,
    /// Mean degree.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 20.0))]
    #[serde(default = "defaults::mean_degree")]
    pub mean_degree: f64,
    /// Largest expected degree.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 100.0))]
    #[serde(default = "defaults::max_degree")]
    pub max_degree: f64,
    /// Degree power-law exponent (> 1).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 2.5))]
    #[serde(default = "defaults::degree_exponent")]
    pub degree_exponent: f64,
    /// Community-size power-law exponent (> 0; LFR uses 1 to 2).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 1.5))]
    #[serde(default = "defaults::community_exponent")]
    pub community_exponent: f64,
    /// Smallest community.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 20))]
    #[serde(default = "defaults::min_community")]
    pub min_community: usize,
    /// Largest community (must exceed (1 − mu)·max_degree).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 200))]
    #[serde(default = "defaults::max_community")]
    pub max_community: usize,
    /// Mixing parameter: expected share of a node's edges leaving its community.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0.2))]
    #[serde(default = "defaults::mu")]
    pub mu: f64,
}

/// A directed messaging network, weighted by message counts: heavy-tailed
/// sender activity (Pareto), recipients mostly in the sender's community,
/// tunable reciprocity, geometric message counts per pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
#[serde(deny_unknown_fields)]
pub struct Messaging {
    /// Number of users.
    #[cfg_attr(feature = "cli", arg(long))]
    pub n: usize,
    /// Mean number of distinct contacts a user writes to.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 10.0))]
    #[serde(default = "defaults::mean_contacts")]
    pub mean_contacts: f64,
    /// Pareto shape of sender activity (> 1; smaller is heavier-tailed).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 2.0))]
    #[serde(default = "defaults::activity_exponent")]
    pub activity_exponent: f64,
    /// Target share of arcs whose reverse arc exists, in [0, 1].
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0.5))]
    #[serde(default = "defaults::reciprocity")]
    pub reciprocity: f64,
    /// Mean messages per (sender, recipient) pair (≥ 1).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 5.0))]
    #[serde(default = "defaults::mean_messages")]
    pub mean_messages: f64,
    /// Share of contacts outside the sender's community, in [0, 1].
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0.2))]
    #[serde(default = "defaults::mu")]
    pub mu: f64,
    /// Smallest community.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 20))]
    #[serde(default = "defaults::min_community")]
    pub min_community: usize,
    /// Largest community.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 200))]
    #[serde(default = "defaults::max_community")]
    pub max_community: usize,
    /// Community-size power-law exponent.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 1.5))]
    #[serde(default = "defaults::community_exponent")]
    pub community_exponent: f64,
}

mod defaults {
    pub fn mean_degree() -> f64 {
        20.0
    }
    pub fn max_degree() -> f64 {
        100.0
    }
    pub fn degree_exponent() -> f64 {
        2.5
    }
    pub fn community_exponent() -> f64 {
        1.5
    }
    pub fn min_community() -> usize {
        20
    }
    pub fn max_community() -> usize {
        200
    }
    pub fn mu() -> f64 {
        0.2
    }
    pub fn mean_contacts() -> f64 {
        10.0
    }
    pub fn activity_exponent() -> f64 {
        2.0
    }
    pub fn reciprocity() -> f64 {
        0.5
    }
    pub fn mean_messages() -> f64 {
        5.0
    }
}

/// A network model with its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Subcommand))]
#[serde(tag = "model", rename_all = "kebab-case")]
pub enum Model {
    /// Erdős–Rényi G(n, p).
    Gnp(Gnp),
    /// Erdős–Rényi G(n, m).
    Gnm(Gnm),
    /// Barabási–Albert preferential attachment.
    Ba(Ba),
    /// Watts–Strogatz small world.
    Ws(Ws),
    /// Planted partition / stochastic block model.
    Sbm(Sbm),
    /// Degree-corrected SBM with power-law degrees and community sizes (LFR-like).
    Lfr(Lfr),
    /// Directed, weighted messaging network.
    Messaging(Messaging),
}

impl Model {
    /// Whether the model plants communities (returned in [`Generated::communities`]).
    pub fn plants_communities(&self) -> bool {
        matches!(self, Model::Sbm(_) | Model::Lfr(_) | Model::Messaging(_))
    }

    /// The expected number of edges (arcs for `messaging`, counting reciprocal
    /// arcs), from the parameters alone.
    pub fn expected_edges(&self) -> Result<f64> {
        Ok(match self {
            Model::Gnp(p) => p.n as f64 * (p.n as f64 - 1.0) / 2.0 * p.p,
            Model::Gnm(p) => p.m as f64,
            Model::Ba(p) => p.n as f64 * p.m as f64,
            Model::Ws(p) => p.n as f64 * p.k as f64 / 2.0,
            Model::Sbm(p) => {
                let r = p.resolve()?;
                let n: f64 = r.sizes.iter().map(|&s| s as f64).sum();
                let sq: f64 = r.sizes.iter().map(|&s| s as f64 * s as f64).sum();
                (sq - n) / 2.0 * r.p_in + (n * n - sq) / 2.0 * r.p_out
            }
            Model::Lfr(p) => p.n as f64 * p.mean_degree / 2.0,
            Model::Messaging(p) => p.n as f64 * p.mean_contacts * 2.0,
        })
    }

    /// Generate the graph for `seed`.
    ///
    /// Sizes are checked first: at most [`super::MAX_NODES`] nodes and
    /// [`super::MAX_EDGES`] expected edges, else an input error naming the
    /// parameter.
    ///
    /// ```
    /// use spillover::graph::generate::{Ba, Model};
    ///
    /// let gen = Model::Ba(Ba { n: 1000, m: 3 }).generate(42)?;
    /// assert_eq!(gen.graph.node_count(), 1000);
    /// assert!(gen.graph.edge_count() > 2900);
    /// # Ok::<(), spillover::Error>(())
    /// ```
    pub fn generate(&self, seed: u64) -> Result<Generated> {
        let n = match self {
            Model::Gnp(p) => p.n,
            Model::Gnm(p) => p.n,
            Model::Ba(p) => p.n,
            Model::Ws(p) => p.n,
            Model::Sbm(_) => 1, // checked by `resolve`
            Model::Lfr(p) => p.n,
            Model::Messaging(p) => p.n,
        };
        check_nodes(n)?;
        let expected = self.expected_edges()?;
        check_edges(expected, || match self {
            Model::Gnp(p) => format!("n = {}, p = {}", p.n, p.p),
            Model::Gnm(p) => format!("m = {}", p.m),
            Model::Ba(p) => format!("n = {}, m = {}", p.n, p.m),
            Model::Ws(p) => format!("n = {}, k = {}", p.n, p.k),
            Model::Sbm(_) => "the sbm parameters (sizes, p_in, p_out or mean_degree)".into(),
            Model::Lfr(p) => format!("n = {}, mean_degree = {}", p.n, p.mean_degree),
            Model::Messaging(p) => format!("n = {}, mean_contacts = {}", p.n, p.mean_contacts),
        })?;
        match self {
            Model::Gnp(p) => gnp(p, seed),
            Model::Gnm(p) => gnm(p, seed),
            Model::Ba(p) => ba(p, seed),
            Model::Ws(p) => ws(p, seed),
            Model::Sbm(p) => sbm(p, seed),
            Model::Lfr(p) => lfr(p, seed),
            Model::Messaging(p) => messaging(p, seed),
        }
    }
}

fn check(cond: bool, msg: impl FnOnce() -> String) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(Error::input(msg()))
    }
}

fn check_prob(name: &str, p: f64) -> Result<()> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(Error::parameter(name, p, "a probability in [0, 1]"))
    }
}

fn check_nodes(n: usize) -> Result<()> {
    if n == 0 {
        return Err(Error::parameter("n", n, "at least 1 node"));
    }
    if n > super::MAX_NODES {
        return Err(Error::too_large(
            "n",
            n as u64,
            super::MAX_NODES as u64,
            " nodes (the graph and a simulation's per-user arrays must fit in memory)",
        ));
    }
    Ok(())
}

/// Refuse a model whose expected edge count passes [`super::MAX_EDGES`]
/// before anything is sampled.
fn check_edges(expected: f64, what: impl FnOnce() -> String) -> Result<()> {
    if expected <= super::MAX_EDGES as f64 {
        return Ok(());
    }
    Err(Error::too_large(
        format!("expected edges ({})", what()),
        expected.min(u64::MAX as f64) as u64,
        super::MAX_EDGES,
        " (about 60 bytes per edge while the graph is built)",
    ))
}

fn finish(
    b: GraphBuilder,
    communities: Option<Vec<u32>>,
    expected_degrees: Option<Vec<f64>>,
    description: String,
) -> Result<Generated> {
    let (graph, _) = b.build(&BuildOptions::default())?;
    Ok(Generated {
        graph,
        communities,
        expected_degrees,
        description,
    })
}

/// Number of fixed chunks rows are split into for parallel sampling.
const CHUNKS: usize = 256;

/// Visit the pairs `i < j` with `i` in `rows` and `j` in `(i, hi)`, each kept
/// with probability `p`, by geometric skipping: O(rows + kept pairs).
fn sample_upper(
    rows: std::ops::Range<u64>,
    hi: u64,
    p: f64,
    r: &mut Rng,
    mut emit: impl FnMut(u64, u64),
) {
    if p <= 0.0 || rows.is_empty() {
        return;
    }
    let geo = Geometric::new(p.min(1.0)).expect("p checked to be in (0, 1]");
    let mut i = rows.start;
    let mut j = i + 1;
    loop {
        let skip = geo.sample(r);
        j = j.saturating_add(skip);
        while j >= hi {
            let over = j - hi;
            i += 1;
            if i >= rows.end {
                return;
            }
            j = (i + 1).saturating_add(over);
        }
        emit(i, j);
        j += 1;
    }
}

/// Split rows `0..n` of the upper triangle into at most [`CHUNKS`] ranges of
/// about equal pair counts. Depends on `n` only.
fn triangle_chunks(n: u64) -> Vec<std::ops::Range<u64>> {
    let total = n * n.saturating_sub(1) / 2;
    let chunks = (CHUNKS as u64).min(n.max(1));
    let target = total.div_ceil(chunks).max(1);
    let mut out = Vec::new();
    let (mut start, mut acc) = (0u64, 0u64);
    for i in 0..n {
        acc += n - 1 - i;
        if acc >= target || i + 1 == n {
            out.push(start..i + 1);
            start = i + 1;
            acc = 0;
        }
    }
    out
}

fn par_collect<T: Send, F>(tasks: usize, f: F) -> Vec<T>
where
    F: Fn(usize) -> Vec<T> + Sync + Send,
{
    (0..tasks)
        .into_par_iter()
        .map(f)
        .collect::<Vec<Vec<T>>>()
        .into_iter()
        .flatten()
        .collect()
}

fn gnp(p: &Gnp, seed: u64) -> Result<Generated> {
    check_nodes(p.n)?;
    check_prob("p", p.p)?;
    let n = p.n as u64;
    let chunks = triangle_chunks(n);
    let edges: Vec<(u32, u32)> = par_collect(chunks.len(), |c| {
        let mut r = rng::stream(seed, &[purpose::GENERATE, 1, c as u64]);
        let mut out = Vec::new();
        sample_upper(chunks[c].clone(), n, p.p, &mut r, |i, j| {
            out.push((i as u32, j as u32))
        });
        out
    });
    let mut b = GraphBuilder::new(p.n, false, false);
    b.reserve(edges.len());
    for (u, v) in edges {
        b.add_edge(u, v, 1.0);
    }
    finish(b, None, None, format!("gnp n={} p={}", p.n, p.p))
}

fn pair_key(u: u32, v: u32) -> u64 {
    let (a, b) = if u < v { (u, v) } else { (v, u) };
    ((a as u64) << 32) | b as u64
}

fn gnm(p: &Gnm, seed: u64) -> Result<Generated> {
    check_nodes(p.n)?;
    let max = p.n as u64 * (p.n as u64 - 1) / 2;
    check(p.m as u64 <= max, || {
        format!(
            "m = {} exceeds the {max} possible edges on n = {} nodes",
            p.m, p.n
        )
    })?;
    let mut r = rng::stream(seed, &[purpose::GENERATE, 2]);
    let n = p.n as u32;
    // Draw the smaller of the edge set and its complement by rejection.
    let complement = p.m as u64 > max / 2;
    let want = if complement {
        max - p.m as u64
    } else {
        p.m as u64
    } as usize;
    let mut chosen: HashSet<u64> = HashSet::with_capacity(want);
    let mut order: Vec<(u32, u32)> = Vec::with_capacity(want);
    while order.len() < want {
        let u = r.random_range(0..n);
        let v = r.random_range(0..n);
        if u != v && chosen.insert(pair_key(u, v)) {
            order.push((u.min(v), u.max(v)));
        }
    }
    let mut b = GraphBuilder::new(p.n, false, false);
    if complement {
        b.reserve(p.m);
        for u in 0..n {
            for v in u + 1..n {
                if !chosen.contains(&pair_key(u, v)) {
                    b.add_edge(u, v, 1.0);
                }
            }
        }
    } else {
        b.reserve(order.len());
        for (u, v) in order {
            b.add_edge(u, v, 1.0);
        }
    }
    finish(b, None, None, format!("gnm n={} m={}", p.n, p.m))
}

fn ba(p: &Ba, seed: u64) -> Result<Generated> {
    check_nodes(p.n)?;
    check(p.m >= 1 && p.m < p.n, || {
        format!(
            "Barabási–Albert needs 1 ≤ m < n, got m = {} and n = {}",
            p.m, p.n
        )
    })?;
    let mut r = rng::stream(seed, &[purpose::GENERATE, 3]);
    let m = p.m;
    let mut b = GraphBuilder::new(p.n, false, false);
    b.reserve(m * (p.n - m));
    // Star on m + 1 nodes: node 0 is the centre.
    let mut repeated: Vec<u32> = Vec::with_capacity(2 * m * p.n);
    for v in 1..=m as u32 {
        b.add_edge(0, v, 1.0);
        repeated.push(0);
        repeated.push(v);
    }
    let mut targets: Vec<u32> = Vec::with_capacity(m);
    for source in (m + 1) as u32..p.n as u32 {
        targets.clear();
        while targets.len() < m {
            let t = repeated[r.random_range(0..repeated.len())];
            if !targets.contains(&t) {
                targets.push(t);
            }
        }
        for &t in &targets {
            b.add_edge(source, t, 1.0);
            repeated.push(t);
            repeated.push(source);
        }
    }
    finish(b, None, None, format!("ba n={} m={}", p.n, p.m))
}

fn ws(p: &Ws, seed: u64) -> Result<Generated> {
    check_nodes(p.n)?;
    check_prob("beta", p.beta)?;
    check(p.k >= 2 && p.k.is_multiple_of(2) && p.k < p.n, || {
        format!(
            "Watts–Strogatz needs an even k with 2 ≤ k < n, got k = {} and n = {}",
            p.k, p.n
        )
    })?;
    let mut r = rng::stream(seed, &[purpose::GENERATE, 4]);
    let n = p.n as u32;
    let half = (p.k / 2) as u32;
    let mut edges: Vec<(u32, u32)> = Vec::with_capacity(p.n * half as usize);
    let mut present: HashSet<u64> = HashSet::with_capacity(p.n * half as usize);
    let mut degree = vec![p.k as u32; p.n];
    for j in 1..=half {
        for u in 0..n {
            let v = (u + j) % n;
            edges.push((u, v));
            present.insert(pair_key(u, v));
        }
    }
    // Rewire as networkx does: for each offset j, for each node u, with
    // probability beta replace (u, u + j) by (u, w), w uniform and new.
    for j in 1..=half {
        for u in 0..n {
            if !r.random_bool(p.beta) || degree[u as usize] as usize >= p.n - 1 {
                continue;
            }
            let idx = (j as usize - 1) * p.n + u as usize;
            let v = edges[idx].1;
            let w = loop {
                let w = r.random_range(0..n);
                if w != u && !present.contains(&pair_key(u, w)) {
                    break w;
                }
            };
            present.remove(&pair_key(u, v));
            present.insert(pair_key(u, w));
            degree[v as usize] -= 1;
            degree[w as usize] += 1;
            edges[idx] = (u, w);
        }
    }
    let mut b = GraphBuilder::new(p.n, false, false);
    b.reserve(edges.len());
    for (u, v) in edges {
        b.add_edge(u, v, 1.0);
    }
    finish(
        b,
        None,
        None,
        format!("ws n={} k={} beta={}", p.n, p.k, p.beta),
    )
}

/// Resolved planted-partition parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct SbmResolved {
    /// Block sizes.
    pub sizes: Vec<usize>,
    /// Within-block probability.
    pub p_in: f64,
    /// Between-block probability.
    pub p_out: f64,
}

impl Sbm {
    /// Check the parameters and turn them into block sizes and probabilities.
    pub fn resolve(&self) -> Result<SbmResolved> {
        let sizes: Vec<usize> = match (&self.sizes, self.n, self.blocks, self.block_size) {
            (Some(s), None, None, None) => s.clone(),
            (None, Some(n), Some(k), None) => {
                check(k >= 1 && k <= n, || format!("blocks must be in 1..=n, got {k}"))?;
                (0..k).map(|b| n / k + usize::from(b < n % k)).collect()
            }
            (None, Some(n), None, Some(s)) => {
                check(s >= 1 && s <= n, || format!("block_size must be in 1..=n, got {s}"))?;
                let mut v = vec![s; n / s];
                if n % s > 0 {
                    v.push(n % s);
                }
                v
            }
            _ => {
                return Err(Error::input(
                    "sbm needs the blocks as either `sizes`, or `n` with exactly one of `blocks` and `block_size`",
                ))
            }
        };
        check(!sizes.is_empty() && sizes.iter().all(|&s| s >= 1), || {
            "every block needs at least one node".to_string()
        })?;
        let n = sizes
            .iter()
            .try_fold(0usize, |acc, &s| acc.checked_add(s))
            .unwrap_or(usize::MAX);
        check_nodes(n)?;
        let (p_in, p_out) = match (self.p_in, self.p_out, self.mean_degree, self.mu) {
            (Some(a), Some(b), None, None) => (a, b),
            (None, None, Some(d), Some(mu)) => {
                check_prob("mu", mu)?;
                check(d >= 0.0 && d.is_finite(), || {
                    format!("mean_degree must be ≥ 0, got {d}")
                })?;
                // Mean over nodes of within- and between-block candidate partners.
                let nf = n as f64;
                let within: f64 = sizes.iter().map(|&s| (s * (s - 1)) as f64).sum::<f64>() / nf;
                let between: f64 = sizes
                    .iter()
                    .map(|&s| s as f64 * (nf - s as f64))
                    .sum::<f64>()
                    / nf;
                let p_in = if within > 0.0 {
                    (1.0 - mu) * d / within
                } else {
                    0.0
                };
                let p_out = if between > 0.0 { mu * d / between } else { 0.0 };
                check(within > 0.0 || mu == 1.0 || d == 0.0, || {
                    "blocks of one node cannot hold within-block edges: use mu = 1".to_string()
                })?;
                (p_in, p_out)
            }
            _ => {
                return Err(Error::input(
                    "sbm needs either `p_in` and `p_out`, or `mean_degree` and `mu`",
                ))
            }
        };
        check_prob("p_in", p_in)?;
        check_prob("p_out", p_out)?;
        Ok(SbmResolved { sizes, p_in, p_out })
    }
}

fn block_starts(sizes: &[usize]) -> Vec<u64> {
    let mut starts = Vec::with_capacity(sizes.len() + 1);
    let mut acc = 0u64;
    starts.push(0);
    for &s in sizes {
        acc += s as u64;
        starts.push(acc);
    }
    starts
}

fn sbm(p: &Sbm, seed: u64) -> Result<Generated> {
    let SbmResolved { sizes, p_in, p_out } = p.resolve()?;
    let starts = block_starts(&sizes);
    let n = *starts.last().unwrap_or(&0);
    let mut community = vec![0u32; n as usize];
    for (b, w) in starts.windows(2).enumerate() {
        community[w[0] as usize..w[1] as usize].fill(b as u32);
    }
    // Within blocks: one stream per block.
    let within: Vec<(u32, u32)> = par_collect(sizes.len(), |b| {
        let mut r = rng::stream(seed, &[purpose::GENERATE, 5, 0, b as u64]);
        let mut out = Vec::new();
        let (lo, hi) = (starts[b], starts[b + 1]);
        sample_upper(lo..hi, hi, p_in, &mut r, |i, j| {
            out.push((i as u32, j as u32))
        });
        out
    });
    // Between blocks: G(n, p_out) over all pairs, pairs inside a block refused.
    let chunks = triangle_chunks(n);
    let between: Vec<(u32, u32)> = par_collect(chunks.len(), |c| {
        let mut r = rng::stream(seed, &[purpose::GENERATE, 5, 1, c as u64]);
        let mut out = Vec::new();
        sample_upper(chunks[c].clone(), n, p_out, &mut r, |i, j| {
            if community[i as usize] != community[j as usize] {
                out.push((i as u32, j as u32));
            }
        });
        out
    });
    let mut b = GraphBuilder::new(n as usize, false, false);
    b.reserve(within.len() + between.len());
    for (u, v) in within.into_iter().chain(between) {
        b.add_edge(u, v, 1.0);
    }
    finish(
        b,
        Some(community),
        None,
        format!(
            "sbm n={n} blocks={} p_in={p_in:.6} p_out={p_out:.3e}",
            sizes.len()
        ),
    )
}

/// Mean of the continuous power law x^(−tau) on [lo, hi].
fn power_law_mean(tau: f64, lo: f64, hi: f64) -> f64 {
    let moment = |k: f64| {
        // ∫ x^(k − tau) dx on [lo, hi]
        let e = k + 1.0 - tau;
        if e.abs() < 1e-12 {
            (hi / lo).ln()
        } else {
            (hi.powf(e) - lo.powf(e)) / e
        }
    };
    moment(1.0) / moment(0.0)
}

/// Inverse-CDF draw from the continuous power law x^(−tau) on [lo, hi].
fn power_law_draw(tau: f64, lo: f64, hi: f64, u: f64) -> f64 {
    let e = 1.0 - tau;
    if e.abs() < 1e-12 {
        lo * (hi / lo).powf(u)
    } else {
        let (a, b) = (lo.powf(e), hi.powf(e));
        (a + u * (b - a)).powf(1.0 / e)
    }
}

/// Power-law community sizes in [min, max] summing to `n`. Sizes are drawn
/// until they cover `n`; the last is cut to fit, and if that leaves it below
/// `min` its nodes are spread one by one over the other communities.
pub fn community_sizes(
    n: usize,
    tau: f64,
    min: usize,
    max: usize,
    r: &mut Rng,
) -> Result<Vec<usize>> {
    check(min >= 1 && min <= max, || {
        format!("community sizes need 1 ≤ min ≤ max, got min = {min}, max = {max}")
    })?;
    check(tau > 0.0, || {
        format!("community exponent must be > 0, got {tau}")
    })?;
    let mut sizes = Vec::new();
    let mut total = 0usize;
    while total < n {
        let x = power_law_draw(tau, min as f64, max as f64 + 1.0, r.random::<f64>());
        let s = (x.floor() as usize).clamp(min, max);
        sizes.push(s);
        total += s;
    }
    let excess = total - n;
    let last = sizes.len() - 1;
    sizes[last] -= excess;
    if sizes[last] < min && sizes.len() > 1 {
        let spare = sizes.pop().unwrap_or(0);
        let k = sizes.len();
        for i in 0..spare {
            sizes[i % k] += 1;
        }
    }
    Ok(sizes)
}

/// Chung–Lu edges among `nodes` (sorted by weight, descending) where the pair
/// (u, v) is an edge with probability min(1, w_u·w_v / total), by the
/// Miller–Hagberg algorithm over rows `rows` of the sorted order: O(rows + edges).
fn chung_lu_rows(
    nodes: &[u32],
    w: &[f64],
    total: f64,
    rows: std::ops::Range<usize>,
    r: &mut Rng,
    mut emit: impl FnMut(u32, u32),
) {
    let k = nodes.len();
    if total <= 0.0 {
        return;
    }
    let wt = |i: usize| w[nodes[i] as usize];
    for u in rows {
        let wu = wt(u);
        let mut v = u + 1;
        if v >= k {
            break;
        }
        let mut p = (wu * wt(v) / total).min(1.0);
        while v < k && p > 0.0 {
            if p < 1.0 {
                let x: f64 = r.random::<f64>();
                let skip = ((1.0 - x).ln() / (1.0 - p).ln()).floor();
                if skip >= (k - v) as f64 {
                    break;
                }
                v += skip as usize;
            }
            if v < k {
                let q = (wu * wt(v) / total).min(1.0);
                if r.random::<f64>() < q / p {
                    emit(nodes[u], nodes[v]);
                }
                p = q;
                v += 1;
            }
        }
    }
}

fn sort_by_weight_desc(nodes: &mut [u32], w: &[f64]) {
    nodes.sort_by(|&a, &b| {
        w[b as usize]
            .partial_cmp(&w[a as usize])
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.cmp(&b))
    });
}

/// A Fenwick tree over free slots, to draw a community with room at random.
struct Fenwick(Vec<usize>);

impl Fenwick {
    fn new(values: &[usize]) -> Self {
        let mut t = vec![0usize; values.len() + 1];
        for (i, &v) in values.iter().enumerate() {
            let mut j = i + 1;
            while j < t.len() {
                t[j] += v;
                j += j & j.wrapping_neg();
            }
        }
        Fenwick(t)
    }
    fn add(&mut self, i: usize, delta: isize) {
        let mut j = i + 1;
        while j < self.0.len() {
            self.0[j] = (self.0[j] as isize + delta) as usize;
            j += j & j.wrapping_neg();
        }
    }
    fn prefix(&self, end: usize) -> usize {
        let (mut s, mut j) = (0, end);
        while j > 0 {
            s += self.0[j];
            j -= j & j.wrapping_neg();
        }
        s
    }
    /// Smallest index i with prefix(i + 1) > target.
    fn find(&self, mut target: usize) -> usize {
        let mut pos = 0usize;
        let mut step = (self.0.len()).next_power_of_two();
        while step > 0 {
            let next = pos + step;
            if next < self.0.len() && self.0[next] <= target {
                pos = next;
                target -= self.0[next];
            }
            step /= 2;
        }
        pos
    }
}

/// Assign nodes to communities: nodes in decreasing expected internal degree,
/// each to a random community (weighted by free slots) large enough to hold its
/// internal degree, falling back to the largest community with room.
fn assign_communities(sizes: &[usize], internal: &[f64], r: &mut Rng) -> Vec<u32> {
    let n = internal.len();
    // Communities by size, descending (ties by index): eligible ones form a prefix.
    let mut by_size: Vec<usize> = (0..sizes.len()).collect();
    by_size.sort_by(|&a, &b| sizes[b].cmp(&sizes[a]).then(a.cmp(&b)));
    let sorted_sizes: Vec<usize> = by_size.iter().map(|&c| sizes[c]).collect();
    let mut free = Fenwick::new(&sorted_sizes);
    let mut left = sorted_sizes.clone();
    let mut nodes: Vec<u32> = (0..n as u32).collect();
    sort_by_weight_desc(&mut nodes, internal);
    let mut community = vec![0u32; n];
    for &u in &nodes {
        let need = internal[u as usize];
        // Eligible: size − 1 ≥ need, i.e. a prefix of the sorted communities.
        let eligible = sorted_sizes.partition_point(|&s| (s as f64 - 1.0) >= need);
        let room = free.prefix(eligible);
        let slot = if room > 0 {
            free.find(r.random_range(0..room))
        } else {
            // No eligible community has room: take the largest one that has.
            (0..left.len()).find(|&i| left[i] > 0).unwrap_or(0)
        };
        left[slot] -= 1;
        free.add(slot, -1);
        community[u as usize] = by_size[slot] as u32;
    }
    community
}

impl Lfr {
    /// The lower end k_min of the expected-degree power law, set so its mean is
    /// `mean_degree` (bisection: the mean grows with k_min).
    pub fn min_expected_degree(&self) -> Result<f64> {
        let (mut lo, mut hi) = (1e-9_f64, self.mean_degree);
        check(
            power_law_mean(self.degree_exponent, lo, self.max_degree) <= self.mean_degree,
            || "mean_degree too small for this exponent and max_degree".to_string(),
        )?;
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if power_law_mean(self.degree_exponent, mid, self.max_degree) < self.mean_degree {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Ok(0.5 * (lo + hi))
    }
}

fn lfr(p: &Lfr, seed: u64) -> Result<Generated> {
    check_nodes(p.n)?;
    check_prob("mu", p.mu)?;
    check(p.degree_exponent > 1.0, || {
        format!("degree_exponent must be > 1, got {}", p.degree_exponent)
    })?;
    check(p.mean_degree > 0.0 && p.max_degree > p.mean_degree, || {
        format!(
            "need 0 < mean_degree < max_degree, got {} and {}",
            p.mean_degree, p.max_degree
        )
    })?;
    check(p.max_degree < p.n as f64, || {
        format!("max_degree must be below n, got {}", p.max_degree)
    })?;
    check(
        p.max_community as f64 - 1.0 >= (1.0 - p.mu) * p.max_degree,
        || {
            format!(
                "max_community ({}) must exceed (1 − mu)·max_degree ({:.1}) so the biggest hub fits its community",
                p.max_community,
                (1.0 - p.mu) * p.max_degree
            )
        },
    )?;
    check(p.max_community <= p.n, || {
        format!("max_community ({}) exceeds n ({})", p.max_community, p.n)
    })?;
    let kmin = p.min_expected_degree()?;
    let mut r = rng::stream(seed, &[purpose::GENERATE, 6, 0]);
    let theta: Vec<f64> = (0..p.n)
        .map(|_| power_law_draw(p.degree_exponent, kmin, p.max_degree, r.random::<f64>()))
        .collect();
    let sizes = community_sizes(
        p.n,
        p.community_exponent,
        p.min_community,
        p.max_community,
        &mut r,
    )?;
    let internal: Vec<f64> = theta.iter().map(|t| (1.0 - p.mu) * t).collect();
    let community = assign_communities(&sizes, &internal, &mut r);
    // Members of each community, sorted by weight.
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); sizes.len()];
    for u in 0..p.n as u32 {
        members[community[u as usize] as usize].push(u);
    }
    for m in members.iter_mut() {
        sort_by_weight_desc(m, &theta);
    }
    let within: Vec<(u32, u32)> = par_collect(members.len(), |c| {
        let mut r = rng::stream(seed, &[purpose::GENERATE, 6, 1, c as u64]);
        let m = &members[c];
        let total: f64 = m.iter().map(|&u| internal[u as usize]).sum();
        let mut out = Vec::new();
        chung_lu_rows(m, &internal, total, 0..m.len(), &mut r, |a, b| {
            out.push((a, b))
        });
        out
    });
    let external: Vec<f64> = theta.iter().map(|t| p.mu * t).collect();
    let mut all: Vec<u32> = (0..p.n as u32).collect();
    sort_by_weight_desc(&mut all, &external);
    let total_ext: f64 = external.iter().sum();
    let per = p.n.div_ceil(CHUNKS).max(1);
    let between: Vec<(u32, u32)> = par_collect(p.n.div_ceil(per), |c| {
        let mut r = rng::stream(seed, &[purpose::GENERATE, 6, 2, c as u64]);
        let rows = c * per..((c + 1) * per).min(p.n);
        let mut out = Vec::new();
        chung_lu_rows(&all, &external, total_ext, rows, &mut r, |a, b| {
            if community[a as usize] != community[b as usize] {
                out.push((a, b));
            }
        });
        out
    });
    let mut b = GraphBuilder::new(p.n, false, false);
    b.reserve(within.len() + between.len());
    for (u, v) in within.into_iter().chain(between) {
        b.add_edge(u, v, 1.0);
    }
    finish(
        b,
        Some(community),
        Some(theta),
        format!(
            "lfr n={} mean_degree={} max_degree={} degree_exponent={} community_exponent={} communities={} mu={}",
            p.n,
            p.mean_degree,
            p.max_degree,
            p.degree_exponent,
            p.community_exponent,
            sizes.len(),
            p.mu
        ),
    )
}

fn messaging(p: &Messaging, seed: u64) -> Result<Generated> {
    check_nodes(p.n)?;
    check(p.n >= 2, || {
        "a messaging network needs at least 2 users".into()
    })?;
    check_prob("mu", p.mu)?;
    check_prob("reciprocity", p.reciprocity)?;
    check(p.activity_exponent > 1.0, || {
        format!("activity_exponent must be > 1, got {}", p.activity_exponent)
    })?;
    check(
        p.mean_messages >= 1.0 && p.mean_messages.is_finite(),
        || format!("mean_messages must be ≥ 1, got {}", p.mean_messages),
    )?;
    check(
        p.mean_contacts > 0.0 && p.mean_contacts < (p.n - 1) as f64,
        || {
            format!(
                "mean_contacts must be in (0, n − 1), got {}",
                p.mean_contacts
            )
        },
    )?;
    check(p.max_community <= p.n, || {
        format!("max_community ({}) exceeds n ({})", p.max_community, p.n)
    })?;
    let n = p.n;
    let mut r = rng::stream(seed, &[purpose::GENERATE, 7, 0]);
    let sizes = community_sizes(
        n,
        p.community_exponent,
        p.min_community,
        p.max_community,
        &mut r,
    )?;
    // Communities on a random permutation of users.
    let perm = rng::permutation(n, &mut r);
    let mut community = vec![0u32; n];
    let mut members: Vec<Vec<u32>> = Vec::with_capacity(sizes.len());
    let mut at = 0;
    for (c, &s) in sizes.iter().enumerate() {
        let m: Vec<u32> = perm[at..at + s].to_vec();
        for &u in &m {
            community[u as usize] = c as u32;
        }
        members.push(m);
        at += s;
    }
    // Pareto(shape a, scale 1) activity has mean a/(a−1): normalize to mean 1.
    let a = p.activity_exponent;
    let activity: Vec<f64> = (0..n)
        .map(|_| (1.0 - r.random::<f64>()).powf(-1.0 / a) * (a - 1.0) / a)
        .collect();
    let per = n.div_ceil(CHUNKS).max(1);
    let chunks = n.div_ceil(per);
    // Primary arcs: sender → distinct recipients.
    let primary: Vec<(u32, u32)> = par_collect(chunks, |c| {
        let mut r = rng::stream(seed, &[purpose::GENERATE, 7, 1, c as u64]);
        let mut out = Vec::new();
        let mut mine: Vec<u32> = Vec::new();
        for u in c * per..((c + 1) * per).min(n) {
            let lambda = p.mean_contacts * activity[u];
            let d = if lambda > 0.0 {
                Poisson::new(lambda)
                    .map(|ps| ps.sample(&mut r) as usize)
                    .unwrap_or(0)
            } else {
                0
            }
            .min(n - 1);
            let own = &members[community[u] as usize];
            mine.clear();
            let outside_exists = own.len() < n;
            // Heavy senders track recipients in a hash set; light ones scan `mine`.
            let mut seen: HashSet<u32> = HashSet::new();
            let big = d > 32;
            let mut inside_count = 0usize;
            for _ in 0..d {
                // Decide the category first, then look for a new recipient in it,
                // so the share of contacts outside the community stays mu
                // (until a sender has written to everyone in its community).
                let room_inside = inside_count + 1 < own.len();
                let inside = room_inside && !(outside_exists && r.random_bool(p.mu));
                if !inside && !outside_exists {
                    break;
                }
                for _ in 0..64 {
                    let v = if inside {
                        own[r.random_range(0..own.len())]
                    } else {
                        let v = r.random_range(0..n as u32);
                        if community[v as usize] == community[u] {
                            continue;
                        }
                        v
                    };
                    let new = v as usize != u
                        && if big {
                            seen.insert(v)
                        } else {
                            !mine.contains(&v)
                        };
                    if new {
                        mine.push(v);
                        inside_count += usize::from(inside);
                        break;
                    }
                }
            }
            out.extend(mine.iter().map(|&v| (u as u32, v)));
        }
        out
    });
    // Reciprocity: share q of primary arcs already reciprocated; add reverse arcs
    // to the others with probability x/(1 − q), x = (R − q)/(2 − R), so the
    // expected share of reciprocated arcs is R.
    let mut keys: Vec<u64> = primary
        .iter()
        .map(|&(u, v)| ((u as u64) << 32) | v as u64)
        .collect();
    keys.par_sort_unstable();
    let has = |u: u32, v: u32| keys.binary_search(&(((u as u64) << 32) | v as u64)).is_ok();
    let recip_now = primary.iter().filter(|&&(u, v)| has(v, u)).count();
    let q = if primary.is_empty() {
        0.0
    } else {
        recip_now as f64 / primary.len() as f64
    };
    let x = ((p.reciprocity - q) / (2.0 - p.reciprocity)).max(0.0);
    let rho = if q < 1.0 {
        (x / (1.0 - q)).min(1.0)
    } else {
        0.0
    };
    let per_arc = primary.len().div_ceil(CHUNKS).max(1);
    let geo = Geometric::new(1.0 / p.mean_messages).map_err(|e| Error::input(e.to_string()))?;
    let arcs: Vec<(u32, u32, f64)> = par_collect(primary.len().div_ceil(per_arc), |c| {
        let mut r = rng::stream(seed, &[purpose::GENERATE, 7, 2, c as u64]);
        let mut out = Vec::new();
        for &(u, v) in &primary[c * per_arc..((c + 1) * per_arc).min(primary.len())] {
            out.push((u, v, 1.0 + geo.sample(&mut r) as f64));
            if !has(v, u) && r.random_bool(rho) {
                out.push((v, u, 1.0 + geo.sample(&mut r) as f64));
            }
        }
        out
    });
    let mut b = GraphBuilder::new(n, true, true);
    b.reserve(arcs.len());
    for (u, v, w) in arcs {
        b.add_edge(u, v, w);
    }
    finish(
        b,
        Some(community),
        Some(activity.iter().map(|a| a * p.mean_contacts).collect()),
        format!(
            "messaging n={} mean_contacts={} activity_exponent={} reciprocity={} mean_messages={} mu={} communities={}",
            p.n,
            p.mean_contacts,
            p.activity_exponent,
            p.reciprocity,
            p.mean_messages,
            p.mu,
            sizes.len()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_upper_visits_every_pair_at_p_one() {
        let mut r = rng::stream(1, &[]);
        let mut seen = Vec::new();
        sample_upper(0..5, 5, 1.0, &mut r, |i, j| seen.push((i, j)));
        let all: Vec<(u64, u64)> = (0..5)
            .flat_map(|i| (i + 1..5).map(move |j| (i, j)))
            .collect();
        assert_eq!(seen, all);
    }

    #[test]
    fn triangle_chunks_cover_rows() {
        for n in [1u64, 2, 7, 1000] {
            let c = triangle_chunks(n);
            assert_eq!(c.first().map(|r| r.start), Some(0));
            assert_eq!(c.last().map(|r| r.end), Some(n));
            assert!(c.windows(2).all(|w| w[0].end == w[1].start));
        }
    }

    #[test]
    fn fenwick_find_and_prefix() {
        let mut f = Fenwick::new(&[2, 0, 3, 1]);
        assert_eq!(f.prefix(4), 6);
        let picks: Vec<usize> = (0..6).map(|t| f.find(t)).collect();
        assert_eq!(picks, vec![0, 0, 2, 2, 2, 3]);
        f.add(2, -3);
        assert_eq!(f.find(2), 3);
    }

    #[test]
    fn power_law_mean_matches_sampling_formula() {
        // tau = 2 on [1, 10]: mean = ln(10) / (1 − 1/10).
        let m = power_law_mean(2.0, 1.0, 10.0);
        assert!((m - 10f64.ln() / 0.9).abs() < 1e-12);
        assert!((power_law_draw(2.0, 1.0, 10.0, 0.0) - 1.0).abs() < 1e-12);
        assert!((power_law_draw(2.0, 1.0, 10.0, 1.0) - 10.0).abs() < 1e-9);
    }
}
