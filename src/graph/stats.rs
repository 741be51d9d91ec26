//! Graph statistics: the summary `spillover inspect` prints.
//!
//! This module owns [`Summary`] and the algorithms behind it: degree summaries,
//! connected components (union–find from petgraph; strongly connected
//! components through petgraph's Tarjan for directed graphs), the average
//! local clustering coefficient (exact, or estimated from a seeded sample of
//! nodes on large graphs, with its standard error), and reciprocity.

use super::Graph;
use crate::rng;
use petgraph::unionfind::UnionFind;
use rand::RngExt;
use rayon::prelude::*;
use serde::Serialize;

/// Five-number-style summary of a degree sequence.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DegreeSummary {
    /// Smallest degree.
    pub min: usize,
    /// Median (mean of the two middle values for an even count).
    pub median: f64,
    /// Mean degree.
    pub mean: f64,
    /// 99th percentile (nearest-rank: the ⌈0.99·n⌉-th smallest).
    pub p99: usize,
    /// Largest degree.
    pub max: usize,
}

impl DegreeSummary {
    /// Summarize a sequence of degrees (empty gives all zeros).
    pub fn of(mut d: Vec<usize>) -> Self {
        if d.is_empty() {
            return DegreeSummary {
                min: 0,
                median: 0.0,
                mean: 0.0,
                p99: 0,
                max: 0,
            };
        }
        d.sort_unstable();
        let n = d.len();
        let median = crate::stats::median(&d.iter().map(|&x| x as f64).collect::<Vec<_>>());
        DegreeSummary {
            min: d[0],
            median,
            mean: d.iter().sum::<usize>() as f64 / n as f64,
            p99: crate::stats::quantile(&d, 0.99),
            max: d[n - 1],
        }
    }
}

/// The average local clustering coefficient and how it was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Clustering {
    /// Mean over nodes of the local clustering coefficient (0 for degree < 2), on
    /// the undirected simple graph (directions and weights ignored).
    pub average: f64,
    /// `None` if exact; otherwise the number of nodes sampled uniformly.
    pub sampled_nodes: Option<usize>,
    /// Standard error of the sample estimate (0 when exact).
    pub std_error: f64,
}

/// Connected components.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Components {
    /// Number of (weakly, for directed graphs) connected components.
    pub count: usize,
    /// Nodes in the largest one.
    pub largest: usize,
}

/// Everything `spillover inspect` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Whether the graph is directed.
    pub directed: bool,
    /// Whether it carries edge weights.
    pub weighted: bool,
    /// Node count.
    pub nodes: usize,
    /// Edge count (undirected edges once; directed arcs).
    pub edges: usize,
    /// Sum of edge weights (equals `edges` when unweighted).
    pub total_weight: f64,
    /// Self-loops kept in the graph.
    pub self_loops: usize,
    /// Edges over possible edges (`n(n−1)/2` undirected, `n(n−1)` directed).
    pub density: f64,
    /// Degrees (out-degrees for directed graphs).
    pub degree: DegreeSummary,
    /// In-degrees, for directed graphs.
    pub in_degree: Option<DegreeSummary>,
    /// Connected components (weak, for directed graphs).
    pub components: Components,
    /// Strongly connected components, for directed graphs.
    pub strong_components: Option<Components>,
    /// Average clustering coefficient.
    pub clustering: Clustering,
    /// Share of arcs whose reverse arc also exists, for directed graphs.
    pub reciprocity: Option<f64>,
}

/// Graphs whose exact clustering costs more than this many neighbour visits are sampled.
pub const EXACT_CLUSTERING_BUDGET: u64 = 400_000_000;
/// Nodes sampled when the clustering coefficient is estimated.
pub const CLUSTERING_SAMPLE: usize = 20_000;

/// Compute the full summary. `seed` drives the clustering sample on large graphs.
pub fn summarize(g: &Graph, seed: u64) -> Summary {
    let n = g.node_count();
    let edges = g.edge_count();
    let loops = g.self_loop_count();
    let possible = n as f64 * (n as f64 - 1.0) / if g.is_directed() { 1.0 } else { 2.0 };
    let density = if possible > 0.0 {
        (edges - loops) as f64 / possible
    } else {
        0.0
    };
    let degree = DegreeSummary::of((0..n as u32).map(|u| g.out_degree(u)).collect());
    let in_degree = g
        .is_directed()
        .then(|| DegreeSummary::of((0..n as u32).map(|u| g.in_degree(u)).collect()));
    Summary {
        directed: g.is_directed(),
        weighted: g.is_weighted(),
        nodes: n,
        edges,
        total_weight: g.total_weight(),
        self_loops: loops,
        density,
        degree,
        in_degree,
        components: components(g),
        strong_components: g.is_directed().then(|| strong_components(g)),
        clustering: clustering(g, seed),
        reciprocity: g.is_directed().then(|| reciprocity(g)),
    }
}

/// Component label of every node (weakly connected for directed graphs), as
/// dense ids `0..count` numbered by each component's smallest node.
pub fn component_labels(g: &Graph) -> Vec<u32> {
    let n = g.node_count();
    let mut uf = UnionFind::<u32>::new(n);
    for (u, v, _) in g.edges() {
        uf.union(u, v);
    }
    let mut id = vec![u32::MAX; n];
    let mut labels = vec![0u32; n];
    let mut next = 0u32;
    for u in 0..n as u32 {
        let r = uf.find_mut(u) as usize;
        if id[r] == u32::MAX {
            id[r] = next;
            next += 1;
        }
        labels[u as usize] = id[r];
    }
    labels
}

fn summarize_labels(labels: impl Iterator<Item = usize>, count: usize) -> Components {
    let mut sizes = vec![0usize; count];
    for l in labels {
        sizes[l] += 1;
    }
    Components {
        count,
        largest: sizes.iter().copied().max().unwrap_or(0),
    }
}

/// Connected components (weak for directed graphs).
pub fn components(g: &Graph) -> Components {
    let labels = component_labels(g);
    let count = labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0);
    summarize_labels(labels.iter().map(|&l| l as usize), count)
}

/// Strongly connected components of a directed graph (petgraph's Tarjan,
/// run on the CSR itself through [`super::visit`], no copy).
///
/// # Complexity
/// O(nodes + arcs).
pub fn strong_components(g: &Graph) -> Components {
    let sccs = petgraph::algo::tarjan_scc(g);
    Components {
        count: sccs.len(),
        largest: sccs.iter().map(Vec::len).max().unwrap_or(0),
    }
}

/// Share of arcs `u→v` (`u ≠ v`) whose reverse `v→u` exists (networkx's
/// `overall_reciprocity`). 0 for a graph without arcs; 1 for undirected graphs.
pub fn reciprocity(g: &Graph) -> f64 {
    if !g.is_directed() {
        return 1.0;
    }
    let (mut arcs, mut recip) = (0usize, 0usize);
    for u in 0..g.node_count() as u32 {
        for &v in g.out_neighbors(u) {
            if u == v {
                continue;
            }
            arcs += 1;
            if g.out_neighbors(v).binary_search(&u).is_ok() {
                recip += 1;
            }
        }
    }
    if arcs == 0 {
        0.0
    } else {
        recip as f64 / arcs as f64
    }
}

/// Simple undirected neighbour lists (no self-loops), for triangle counting.
fn simple_undirected(g: &Graph) -> Graph {
    g.symmetrized()
}

/// Local clustering coefficient of `u` using `mark` (all false on entry and exit).
fn local_clustering(g: &Graph, u: u32, mark: &mut [bool]) -> f64 {
    let nb: Vec<u32> = g
        .out_neighbors(u)
        .iter()
        .copied()
        .filter(|&v| v != u)
        .collect();
    let d = nb.len();
    if d < 2 {
        return 0.0;
    }
    for &v in &nb {
        mark[v as usize] = true;
    }
    let mut links = 0u64;
    for &v in &nb {
        for &w in g.out_neighbors(v) {
            if w != v && mark[w as usize] {
                links += 1;
            }
        }
    }
    for &v in &nb {
        mark[v as usize] = false;
    }
    // Each link between two neighbours was seen from both ends.
    links as f64 / (d as f64 * (d as f64 - 1.0))
}

/// Average local clustering coefficient (networkx's `average_clustering`),
/// exact when it costs at most [`EXACT_CLUSTERING_BUDGET`] neighbour visits,
/// else estimated from [`CLUSTERING_SAMPLE`] nodes drawn with replacement.
pub fn clustering(g: &Graph, seed: u64) -> Clustering {
    let s = simple_undirected(g);
    let n = s.node_count();
    if n == 0 {
        return Clustering {
            average: 0.0,
            sampled_nodes: None,
            std_error: 0.0,
        };
    }
    let cost: u64 = (0..n as u32).map(|u| (s.out_degree(u) as u64).pow(2)).sum();
    let (nodes, sampled): (Vec<u32>, bool) = if cost <= EXACT_CLUSTERING_BUDGET {
        ((0..n as u32).collect(), false)
    } else {
        let mut r = rng::stream(seed, &[rng::purpose::STATS, 1]);
        (
            (0..CLUSTERING_SAMPLE)
                .map(|_| r.random_range(0..n as u32))
                .collect(),
            true,
        )
    };
    let values: Vec<f64> = nodes
        .par_chunks(1024)
        .map_init(
            || vec![false; n],
            |mark, chunk| {
                chunk
                    .iter()
                    .map(|&u| local_clustering(&s, u, mark))
                    .collect::<Vec<f64>>()
            },
        )
        .flatten()
        .collect();
    let k = values.len() as f64;
    let mean = values.iter().sum::<f64>() / k;
    let std_error = if sampled {
        let var = values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (k - 1.0);
        (var / k).sqrt()
    } else {
        0.0
    };
    Clustering {
        average: mean,
        sampled_nodes: sampled.then_some(values.len()),
        std_error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{BuildOptions, GraphBuilder};

    fn graph(n: usize, directed: bool, edges: &[(u32, u32)]) -> Graph {
        let mut b = GraphBuilder::new(n, directed, false);
        for &(u, v) in edges {
            b.add_edge(u, v, 1.0);
        }
        b.build(&BuildOptions::default()).unwrap().0
    }

    #[test]
    fn degree_summary_by_hand() {
        let s = DegreeSummary::of(vec![3, 1, 2, 10]);
        assert_eq!((s.min, s.max, s.p99), (1, 10, 10));
        assert_eq!(s.median, 2.5);
        assert_eq!(s.mean, 4.0);
    }

    #[test]
    fn triangle_with_tail_clustering() {
        // Triangle 0-1-2 plus pendant 3 on node 2: C = (1 + 1 + 1/3 + 0) / 4.
        let g = graph(4, false, &[(0, 1), (1, 2), (0, 2), (2, 3)]);
        let c = clustering(&g, 1);
        assert!((c.average - (7.0 / 3.0) / 4.0).abs() < 1e-12);
        assert_eq!(c.sampled_nodes, None);
    }

    #[test]
    fn components_and_reciprocity_by_hand() {
        let g = graph(6, true, &[(0, 1), (1, 0), (1, 2), (3, 4)]);
        assert_eq!(
            components(&g),
            Components {
                count: 3,
                largest: 3
            }
        );
        // Strong: {0,1}, {2}, {3}, {4}, {5}.
        assert_eq!(
            strong_components(&g),
            Components {
                count: 5,
                largest: 2
            }
        );
        assert!((reciprocity(&g) - 0.5).abs() < 1e-12);
    }
}
