//! Experimental clusters: partitioners and the cluster-quality report.
//!
//! This module owns [`Partition`] (a cluster id per node, dense and canonical),
//! [`Method`] (which partitioner, with its parameters), the quality report
//! [`Quality`] (sizes, modularity, cut edge share, within-cluster neighbour
//! share, conductance, disconnected clusters) and [`nmi`]. Partitioners work on
//! the undirected view of the graph: a directed graph is partitioned on its
//! symmetrized weights.
//!
//! Reproducibility: every randomized partitioner draws from
//! [`crate::rng::stream`] and visits nodes in seeded permutations of dense ids,
//! never in hash-map order, and parallel work is reduced in a fixed order, so
//! the same seed gives the same clusters on any number of threads.

pub mod balanced;
pub mod louvain;
pub mod simple;

use crate::error::{Error, Result};
use crate::graph::stats::DegreeSummary;
use crate::graph::Graph;
use petgraph::unionfind::UnionFind;
use serde::Serialize;
use std::collections::HashMap;

/// A cluster id for every node. Ids are dense (`0..count`) and canonical:
/// numbered in order of each cluster's smallest node id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    labels: Vec<u32>,
    count: usize,
}

impl Partition {
    /// Canonical partition from any labels (equal labels, same cluster).
    pub fn from_labels<L: Copy + Eq + std::hash::Hash>(labels: &[L]) -> Self {
        let mut ids: HashMap<L, u32> = HashMap::new();
        let mut out = Vec::with_capacity(labels.len());
        for &l in labels {
            let next = ids.len() as u32;
            out.push(*ids.entry(l).or_insert(next));
        }
        Partition {
            count: ids.len(),
            labels: out,
        }
    }

    /// Canonical partition from `u32` labels below `bound` (no hashing).
    pub fn from_dense(labels: &[u32], bound: usize) -> Self {
        let mut map = vec![u32::MAX; bound];
        let mut next = 0u32;
        let out = labels
            .iter()
            .map(|&l| {
                let m = &mut map[l as usize];
                if *m == u32::MAX {
                    *m = next;
                    next += 1;
                }
                *m
            })
            .collect();
        Partition {
            labels: out,
            count: next as usize,
        }
    }

    /// Cluster of each node.
    pub fn labels(&self) -> &[u32] {
        &self.labels
    }

    /// Number of clusters.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Cluster sizes, by cluster id.
    pub fn sizes(&self) -> Vec<usize> {
        let mut s = vec![0usize; self.count];
        for &l in &self.labels {
            s[l as usize] += 1;
        }
        s
    }

    /// Write `node<TAB>cluster` lines with the graph's labels, atomically.
    pub fn write(&self, g: &Graph, path: &std::path::Path, comment: &str) -> Result<()> {
        crate::fsutil::write_atomic(path, |w| {
            for line in comment.lines() {
                writeln!(w, "# {line}")?;
            }
            for (u, c) in self.labels.iter().enumerate() {
                writeln!(w, "{}\t{c}", g.label(u as u32))?;
            }
            Ok(())
        })
    }
}

/// Which partitioner, with its parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "method", rename_all = "kebab-case")]
pub enum Method {
    /// Louvain modularity optimization, with multilevel refinement unless
    /// [`louvain::Params::refine`] is false.
    Louvain(louvain::Params),
    /// Louvain with Leiden refinement: clusters are always connected.
    Leiden(louvain::Params),
    /// k parts of near-equal size minimizing the cut: METIS k-way.
    Metis(balanced::Params),
    /// k parts of near-equal size: restreaming linear deterministic greedy.
    Ldg(balanced::Params),
    /// Connected components.
    Components,
    /// Label propagation, seeded.
    LabelPropagation {
        /// Seed for the visiting order and ties.
        seed: u64,
    },
    /// k clusters of equal size (±1) at random.
    Random {
        /// Number of clusters.
        parts: usize,
        /// Seed.
        seed: u64,
    },
}

impl Method {
    /// Partition `g` (directed graphs on their symmetrized weights).
    ///
    /// ```
    /// use spillover::graph::generate::{Model, Sbm};
    /// use spillover::partition::{louvain, nmi, quality, Method, Partition};
    ///
    /// let gen = Model::Sbm(Sbm { n: Some(2000), blocks: Some(20), mean_degree: Some(10.0), mu: Some(0.1), ..Default::default() })
    ///     .generate(3)?;
    /// let found = Method::Louvain(louvain::Params::default()).run(&gen.graph)?;
    /// let planted = Partition::from_labels(gen.communities.as_ref().unwrap());
    /// assert!(nmi(found.labels(), planted.labels()) > 0.9);
    /// assert!(quality(&gen.graph, &found).modularity > 0.8);
    /// # Ok::<(), spillover::Error>(())
    /// ```
    ///
    /// # Complexity
    /// Louvain/Leiden: O(edges) per local-moving pass, a few passes per
    /// level; METIS and LDG: O(edges·log parts); the others O(edges).
    pub fn run(&self, g: &Graph) -> Result<Partition> {
        let sym;
        let g = if g.is_directed() {
            sym = g.symmetrized();
            &sym
        } else {
            g
        };
        match self {
            Method::Louvain(p) => louvain::louvain(g, p, false),
            Method::Leiden(p) => louvain::louvain(g, p, true),
            Method::Metis(p) => balanced::metis(g, p),
            Method::Ldg(p) => balanced::ldg(g, p),
            Method::Components => Ok(simple::components(g)),
            Method::LabelPropagation { seed } => Ok(simple::label_propagation(g, *seed)),
            Method::Random { parts, seed } => simple::random(g.node_count(), *parts, *seed),
        }
    }
}

/// Modularity of `p` on `g` at resolution `gamma` (undirected view; weights used):
/// Q = Σ_c [ w_in(c)/m − γ·(vol(c)/2m)² ], a self-loop counting twice in a volume.
pub fn modularity(g: &Graph, p: &Partition, gamma: f64) -> f64 {
    let sym;
    let g = if g.is_directed() {
        sym = g.symmetrized();
        &sym
    } else {
        g
    };
    let mut inside = vec![0.0f64; p.count()];
    let mut vol = vec![0.0f64; p.count()];
    let mut m = 0.0;
    let l = p.labels();
    for (u, v, w) in g.edges() {
        m += w;
        let (cu, cv) = (l[u as usize] as usize, l[v as usize] as usize);
        vol[cu] += w;
        vol[cv] += w;
        if cu == cv {
            inside[cu] += w;
        }
    }
    if m == 0.0 {
        return 0.0;
    }
    inside
        .iter()
        .zip(&vol)
        .map(|(i, v)| i / m - gamma * (v / (2.0 * m)).powi(2))
        .sum()
}

/// Weighted share of edges whose ends are in different clusters.
pub fn cut_share(g: &Graph, p: &Partition) -> f64 {
    let l = p.labels();
    let (mut cut, mut all) = (0.0, 0.0);
    for (u, v, w) in g.edges() {
        if u == v {
            continue;
        }
        all += w;
        if l[u as usize] != l[v as usize] {
            cut += w;
        }
    }
    if all == 0.0 {
        0.0
    } else {
        cut / all
    }
}

/// Normalized mutual information with arithmetic-mean normalization:
/// 2·I(A; B) / (H(A) + H(B)); 1 when both partitions are a single cluster.
pub fn nmi(a: &[u32], b: &[u32]) -> f64 {
    assert_eq!(a.len(), b.len(), "partitions of different node sets");
    let n = a.len() as f64;
    if a.is_empty() {
        return 1.0;
    }
    let mut joint: HashMap<(u32, u32), f64> = HashMap::new();
    let mut pa: HashMap<u32, f64> = HashMap::new();
    let mut pb: HashMap<u32, f64> = HashMap::new();
    for (&x, &y) in a.iter().zip(b) {
        *joint.entry((x, y)).or_default() += 1.0;
        *pa.entry(x).or_default() += 1.0;
        *pb.entry(y).or_default() += 1.0;
    }
    let entropy = |m: &HashMap<u32, f64>| -> f64 {
        let mut v: Vec<f64> = m.values().copied().collect();
        v.sort_by(f64::total_cmp);
        -v.iter().map(|c| (c / n) * (c / n).ln()).sum::<f64>()
    };
    let (ha, hb) = (entropy(&pa), entropy(&pb));
    if ha + hb == 0.0 {
        return 1.0;
    }
    let mut terms: Vec<f64> = joint
        .iter()
        .map(|(&(x, y), &c)| (c / n) * ((c * n) / (pa[&x] * pb[&y])).ln())
        .collect();
    terms.sort_by(f64::total_cmp);
    let mi: f64 = terms.iter().sum();
    (2.0 * mi / (ha + hb)).clamp(0.0, 1.0)
}

/// Mean and quantiles of a distribution.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// Mean.
    pub mean: f64,
    /// 10th percentile.
    pub p10: f64,
    /// 25th percentile.
    pub p25: f64,
    /// Median.
    pub median: f64,
    /// 75th percentile.
    pub p75: f64,
    /// 90th percentile.
    pub p90: f64,
    /// Largest value.
    pub max: f64,
}

impl Spread {
    /// Summarize values (nearest-rank quantiles); all zeros if empty.
    pub fn of(mut v: Vec<f64>) -> Self {
        if v.is_empty() {
            return Spread {
                mean: 0.0,
                p10: 0.0,
                p25: 0.0,
                median: 0.0,
                p75: 0.0,
                p90: 0.0,
                max: 0.0,
            };
        }
        v.sort_by(f64::total_cmp);
        let q = |p: f64| crate::stats::quantile(&v, p);
        Spread {
            mean: v.iter().sum::<f64>() / v.len() as f64,
            p10: q(0.1),
            p25: q(0.25),
            median: q(0.5),
            p75: q(0.75),
            p90: q(0.9),
            max: v[v.len() - 1],
        }
    }
}

/// Cluster sizes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SizeSummary {
    /// Smallest, median, mean, 99th percentile and largest size.
    #[serde(flatten)]
    pub summary: DegreeSummary,
    /// Coefficient of variation (population SD / mean).
    pub cv: f64,
    /// Share of nodes in the largest cluster.
    pub largest_share: f64,
}

/// How good a partition is for a cluster-randomized experiment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Quality {
    /// Number of clusters.
    pub clusters: usize,
    /// Size distribution.
    pub sizes: SizeSummary,
    /// Modularity at resolution 1.
    pub modularity: f64,
    /// Weighted share of edges between clusters.
    pub cut_edge_share: f64,
    /// Per node (with at least one neighbour): weighted share of its neighbours in its own cluster.
    pub within_cluster_neighbour_share: Spread,
    /// Per cluster: cut / min(volume, rest of the volume).
    pub conductance: Spread,
    /// Clusters whose induced subgraph is not connected.
    pub disconnected_clusters: usize,
}

/// Compute the quality report.
pub fn quality(g: &Graph, p: &Partition) -> Quality {
    let sym;
    let g = if g.is_directed() {
        sym = g.symmetrized();
        &sym
    } else {
        g
    };
    let sizes = p.sizes();
    let n = p.len() as f64;
    let mean = n / sizes.len().max(1) as f64;
    let var = sizes
        .iter()
        .map(|&s| (s as f64 - mean).powi(2))
        .sum::<f64>()
        / sizes.len().max(1) as f64;
    let l = p.labels();
    let mut share = Vec::with_capacity(p.len());
    let mut vol = vec![0.0f64; p.count()];
    let mut cut = vec![0.0f64; p.count()];
    let mut uf = UnionFind::<u32>::new(p.len());
    for u in 0..g.node_count() as u32 {
        let (mut inside, mut all) = (0.0, 0.0);
        for (v, w) in g.out_edges(u) {
            if v == u {
                continue;
            }
            all += w;
            if l[v as usize] == l[u as usize] {
                inside += w;
                uf.union(u, v);
            } else {
                cut[l[u as usize] as usize] += w;
            }
        }
        vol[l[u as usize] as usize] += all;
        if all > 0.0 {
            share.push(inside / all);
        }
    }
    let total: f64 = vol.iter().sum();
    let conductance: Vec<f64> = (0..p.count())
        .map(|c| {
            let d = vol[c].min(total - vol[c]);
            if d > 0.0 {
                cut[c] / d
            } else {
                0.0
            }
        })
        .collect();
    let mut pieces = vec![0usize; p.count()];
    let mut root_seen = vec![false; p.len()];
    for u in 0..p.len() as u32 {
        let r = uf.find_mut(u) as usize;
        if !root_seen[r] {
            root_seen[r] = true;
            pieces[l[u as usize] as usize] += 1;
        }
    }
    Quality {
        clusters: p.count(),
        sizes: SizeSummary {
            summary: DegreeSummary::of(sizes.clone()),
            cv: if mean > 0.0 { var.sqrt() / mean } else { 0.0 },
            largest_share: sizes.iter().copied().max().unwrap_or(0) as f64 / n.max(1.0),
        },
        modularity: modularity(g, p, 1.0),
        cut_edge_share: cut_share(g, p),
        within_cluster_neighbour_share: Spread::of(share),
        conductance: Spread::of(conductance),
        disconnected_clusters: pieces.iter().filter(|&&k| k > 1).count(),
    }
}

/// Split every cluster into its connected pieces (on the undirected view).
pub fn split_disconnected(g: &Graph, p: &Partition) -> Partition {
    let l = p.labels();
    let mut uf = UnionFind::<u32>::new(p.len());
    for (u, v, _) in g.edges() {
        if l[u as usize] == l[v as usize] {
            uf.union(u, v);
        }
    }
    let roots: Vec<u32> = (0..p.len() as u32).map(|u| uf.find_mut(u)).collect();
    Partition::from_dense(&roots, p.len())
}

/// Merge clusters smaller than `min_size` into the neighbouring cluster they
/// share the most edge weight with (ties: lower id), smallest clusters first,
/// never making a cluster larger than `max_size`. Clusters with no neighbour
/// (or no neighbour with room) stay as they are.
pub fn merge_small(
    g: &Graph,
    p: &Partition,
    min_size: usize,
    max_size: Option<usize>,
) -> Partition {
    let mut label: Vec<u32> = p.labels().to_vec();
    let mut size = p.sizes();
    let k = p.count();
    // Union–find over clusters, so merged clusters act as one.
    let mut parent: Vec<u32> = (0..k as u32).collect();
    fn find(parent: &mut [u32], mut c: u32) -> u32 {
        while parent[c as usize] != c {
            parent[c as usize] = parent[parent[c as usize] as usize];
            c = parent[c as usize];
        }
        c
    }
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); k];
    for (u, &c) in label.iter().enumerate() {
        members[c as usize].push(u as u32);
    }
    let mut order: Vec<u32> = (0..k as u32)
        .filter(|&c| size[c as usize] < min_size)
        .collect();
    order.sort_by_key(|&c| (size[c as usize], c));
    let mut weight: HashMap<u32, f64> = HashMap::new();
    for c in order {
        let c = find(&mut parent, c);
        if size[c as usize] >= min_size {
            continue;
        }
        weight.clear();
        for &u in &members[c as usize] {
            for (v, w) in g.out_edges(u) {
                let d = find(&mut parent, label[v as usize]);
                if d != c {
                    *weight.entry(d).or_default() += w;
                }
            }
        }
        let mut best: Option<(u32, f64)> = None;
        let mut cands: Vec<(u32, f64)> = weight.iter().map(|(&d, &w)| (d, w)).collect();
        cands.sort_by_key(|&(d, _)| d);
        for (d, w) in cands {
            if max_size.is_some_and(|m| size[c as usize] + size[d as usize] > m) {
                continue;
            }
            if best.is_none_or(|(_, bw)| w > bw) {
                best = Some((d, w));
            }
        }
        if let Some((d, _)) = best {
            parent[c as usize] = d;
            size[d as usize] += size[c as usize];
            let moved = std::mem::take(&mut members[c as usize]);
            members[d as usize].extend(moved);
        }
    }
    for l in label.iter_mut() {
        *l = find(&mut parent, *l);
    }
    Partition::from_dense(&label, k)
}

/// Check a promise a partitioner made; an [`Error::Internal`] if it is broken.
pub fn ensure(cond: bool, what: impl FnOnce() -> String) -> Result<()> {
    if cond {
        Ok(())
    } else {
        let what = what();
        let (method, message) = what.split_once(' ').unwrap_or((what.as_str(), ""));
        Err(Error::PartitionFailed {
            method: method.to_string(),
            message: message.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{BuildOptions, GraphBuilder};

    fn graph(n: usize, edges: &[(u32, u32)]) -> Graph {
        let mut b = GraphBuilder::new(n, false, false);
        for &(u, v) in edges {
            b.add_edge(u, v, 1.0);
        }
        b.build(&BuildOptions::default()).unwrap().0
    }

    /// Two triangles joined by one edge.
    fn barbell() -> Graph {
        graph(6, &[(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5), (2, 3)])
    }

    #[test]
    fn nmi_by_hand() {
        // H(A) = ln 2, H(B) = −(3/4 ln 3/4 + 1/4 ln 1/4), I = H(A) + H(B) − H(A,B)
        // with H(A,B) = −(2·1/2 ln 1/2 … ): worked value 0.343711.
        let v = nmi(&[0, 0, 1, 1], &[0, 0, 0, 1]);
        assert!((v - 0.343711).abs() < 1e-6, "{v}");
        assert!((nmi(&[0, 0, 1, 1], &[5, 5, 7, 7]) - 1.0).abs() < 1e-12);
        assert!(nmi(&[0, 1, 0, 1], &[0, 0, 1, 1]).abs() < 1e-12);
    }

    #[test]
    fn modularity_and_cut_by_hand() {
        // m = 7; each triangle: 3 inside edges, volume 7.
        // Q = 2·(3/7 − (7/14)²) = 6/7 − 1/2 = 0.357142...
        let g = barbell();
        let p = Partition::from_labels(&[0, 0, 0, 1, 1, 1]);
        assert!((modularity(&g, &p, 1.0) - (6.0 / 7.0 - 0.5)).abs() < 1e-12);
        // γ = 2: 6/7 − 2·(1/2) = −1/7.
        assert!((modularity(&g, &p, 2.0) - (6.0 / 7.0 - 1.0)).abs() < 1e-12);
        assert!((cut_share(&g, &p) - 1.0 / 7.0).abs() < 1e-12);
        // All in one cluster: Q = 1 − 1 = 0.
        let one = Partition::from_labels(&[0; 6]);
        assert!(modularity(&g, &one, 1.0).abs() < 1e-12);
    }

    #[test]
    fn quality_by_hand() {
        let g = barbell();
        // Cluster {0,1,2,5} is disconnected (5 is cut off from 0..2).
        let p = Partition::from_labels(&[0, 0, 0, 1, 1, 0]);
        let q = quality(&g, &p);
        assert_eq!(q.clusters, 2);
        assert_eq!(q.disconnected_clusters, 1);
        assert_eq!(q.sizes.summary.max, 4);
        // Cut: 2-3, 4-5, 3-5 → 3 of 7.
        assert!((q.cut_edge_share - 3.0 / 7.0).abs() < 1e-12);
        let split = split_disconnected(&g, &p);
        assert_eq!(split.count(), 3);
        assert_eq!(quality(&g, &split).disconnected_clusters, 0);
        // Node shares: 0:1, 1:1, 2:2/3, 3:1/3, 4:1/2, 5:0 → mean 3.5/6.
        assert!((q.within_cluster_neighbour_share.mean - 3.5 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn merge_small_joins_best_connected_neighbour() {
        let g = barbell();
        let p = Partition::from_labels(&[0, 0, 0, 1, 1, 2]);
        let m = merge_small(&g, &p, 2, None);
        assert_eq!(m.labels(), &[0, 0, 0, 1, 1, 1]);
        let capped = merge_small(&g, &p, 2, Some(2));
        assert_eq!(capped.count(), 3);
    }
}
