//! Graph storage, generators, readers and statistics.
//!
//! This module owns [`Graph`], the compressed-sparse-row (CSR) graph every later
//! stage works on: dense `u32` node ids `0..n`, optional `f64` edge weights,
//! undirected (each edge stored in both endpoint rows) or directed (out- and
//! in-adjacency), with the user's original node labels kept in [`NodeLabels`].
//! [`GraphBuilder`] turns an edge list into a `Graph`, dropping self-loops and
//! merging duplicate edges as asked and counting both in a [`BuildReport`].
//!
//! Submodules: [`generate`] (seeded random graph models), [`io`] (edge-list
//! readers and writers), [`stats`] (the summary behind `spillover inspect`).

pub mod generate;
pub mod io;
pub mod stats;
pub mod visit;

/// Most nodes a generated graph may have: ids are `u32`, and a simulation
/// keeps a dozen 8-byte arrays per user (about 100 bytes per node with the
/// graph's own arrays), so 250 M nodes already need about 25 GB.
pub const MAX_NODES: usize = 250_000_000;

/// Most (expected) edges a generator may produce: building a graph peaks at
/// about 57 bytes per weighted edge (BENCHMARKS.md, graph memory), so 400 M
/// edges need about 23 GB. Larger requests are refused before sampling.
pub const MAX_EDGES: u64 = 400_000_000;

use crate::error::{Error, Result};
use rayon::prelude::*;
use serde::Serialize;
use std::borrow::Cow;

/// One adjacency structure in CSR form: row `u` is `targets[offsets[u]..offsets[u + 1]]`,
/// sorted by target, with the matching `weights` when the graph is weighted.
#[derive(Debug, Clone, PartialEq)]
pub struct Csr {
    offsets: Vec<usize>,
    targets: Vec<u32>,
    weights: Option<Vec<f64>>,
}

impl Csr {
    fn row(&self, u: u32) -> std::ops::Range<usize> {
        let u = u as usize;
        self.offsets[u]..self.offsets[u + 1]
    }

    fn heap_bytes(&self) -> usize {
        self.offsets.capacity() * std::mem::size_of::<usize>()
            + self.targets.capacity() * 4
            + self.weights.as_ref().map_or(0, |w| w.capacity() * 8)
    }

    /// Transpose (for the in-adjacency of a directed graph). Rows come out sorted.
    fn transpose(&self, n: usize) -> Csr {
        let mut counts = vec![0usize; n + 1];
        for &v in &self.targets {
            counts[v as usize + 1] += 1;
        }
        for i in 0..n {
            counts[i + 1] += counts[i];
        }
        let offsets = counts.clone();
        let mut cursor = counts;
        let mut targets = vec![0u32; self.targets.len()];
        let mut weights = self.weights.as_ref().map(|w| vec![0.0; w.len()]);
        for u in 0..n {
            for k in self.offsets[u]..self.offsets[u + 1] {
                let v = self.targets[k] as usize;
                let slot = cursor[v];
                cursor[v] += 1;
                targets[slot] = u as u32;
                if let (Some(dst), Some(src)) = (weights.as_mut(), self.weights.as_ref()) {
                    dst[slot] = src[k];
                }
            }
        }
        Csr {
            offsets,
            targets,
            weights,
        }
    }
}

/// The user's names for nodes. Generated graphs use their dense ids as names.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeLabels {
    /// Node `u` is called `u`.
    Dense,
    /// Node `u` is called `text[ends[u - 1]..ends[u]]` (one buffer, no per-node allocation).
    Names {
        /// All names, concatenated.
        text: String,
        /// End offset of each name in `text`.
        ends: Vec<usize>,
    },
}

impl NodeLabels {
    /// Labels from a list of names, in dense-id order.
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Self {
        let mut text = String::new();
        let mut ends = Vec::with_capacity(names.len());
        for name in names {
            text.push_str(name.as_ref());
            ends.push(text.len());
        }
        NodeLabels::Names { text, ends }
    }

    /// The name of node `u`.
    pub fn get(&self, u: u32) -> Cow<'_, str> {
        match self {
            NodeLabels::Dense => Cow::Owned(u.to_string()),
            NodeLabels::Names { text, ends } => {
                let u = u as usize;
                let start = if u == 0 { 0 } else { ends[u - 1] };
                Cow::Borrowed(&text[start..ends[u]])
            }
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            NodeLabels::Dense => 0,
            NodeLabels::Names { text, ends } => text.capacity() + ends.capacity() * 8,
        }
    }
}

/// A graph in CSR form with dense `u32` node ids.
///
/// Undirected graphs store each edge `{u, v}` in row `u` and row `v`; a kept
/// self-loop `{u, u}` is stored once, in row `u`. Directed graphs keep the
/// out-adjacency and its transpose, the in-adjacency. Rows are sorted by
/// neighbour id and hold no duplicates.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    n: usize,
    directed: bool,
    out: Csr,
    /// In-adjacency; `None` for undirected graphs (it equals `out`).
    inc: Option<Csr>,
    labels: NodeLabels,
}

impl Graph {
    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.n
    }

    /// Number of edges: undirected edges counted once (self-loops included),
    /// or directed arcs.
    pub fn edge_count(&self) -> usize {
        if self.directed {
            self.out.targets.len()
        } else {
            let loops = self.self_loop_count();
            (self.out.targets.len() - loops) / 2 + loops
        }
    }

    /// Number of stored self-loops.
    pub fn self_loop_count(&self) -> usize {
        (0..self.n as u32)
            .filter(|&u| self.out_neighbors(u).binary_search(&u).is_ok())
            .count()
    }

    /// Whether edges are directed.
    pub fn is_directed(&self) -> bool {
        self.directed
    }

    /// Whether edges carry weights (otherwise every weight is 1).
    pub fn is_weighted(&self) -> bool {
        self.out.weights.is_some()
    }

    /// Out-neighbours of `u` (all neighbours for an undirected graph), sorted.
    pub fn out_neighbors(&self, u: u32) -> &[u32] {
        &self.out.targets[self.out.row(u)]
    }

    /// Weights matching [`Graph::out_neighbors`], or `None` if unweighted.
    pub fn out_weights(&self, u: u32) -> Option<&[f64]> {
        self.out.weights.as_ref().map(|w| &w[self.out.row(u)])
    }

    /// In-neighbours of `u` (all neighbours for an undirected graph), sorted.
    pub fn in_neighbors(&self, u: u32) -> &[u32] {
        let csr = self.inc.as_ref().unwrap_or(&self.out);
        &csr.targets[csr.row(u)]
    }

    /// The whole in-adjacency as raw CSR arrays `(offsets, sources, weights)`:
    /// row `i` is `sources[offsets[i]..offsets[i + 1]]`. For hot loops that
    /// sweep every row once.
    pub fn in_csr(&self) -> (&[usize], &[u32], Option<&[f64]>) {
        let csr = self.inc.as_ref().unwrap_or(&self.out);
        (&csr.offsets, &csr.targets, csr.weights.as_deref())
    }

    /// Weights matching [`Graph::in_neighbors`], or `None` if unweighted.
    pub fn in_weights(&self, u: u32) -> Option<&[f64]> {
        let csr = self.inc.as_ref().unwrap_or(&self.out);
        csr.weights.as_ref().map(|w| &w[csr.row(u)])
    }

    /// `(neighbour, weight)` pairs of `u`'s out-row; weight 1 when unweighted.
    pub fn out_edges(&self, u: u32) -> impl Iterator<Item = (u32, f64)> + '_ {
        weighted_row(self.out_neighbors(u), self.out_weights(u))
    }

    /// `(neighbour, weight)` pairs of `u`'s in-row; weight 1 when unweighted.
    pub fn in_edges(&self, u: u32) -> impl Iterator<Item = (u32, f64)> + '_ {
        weighted_row(self.in_neighbors(u), self.in_weights(u))
    }

    /// Out-degree (degree for undirected graphs; a self-loop counts once).
    pub fn out_degree(&self, u: u32) -> usize {
        self.out.row(u).len()
    }

    /// In-degree (degree for undirected graphs).
    pub fn in_degree(&self, u: u32) -> usize {
        let csr = self.inc.as_ref().unwrap_or(&self.out);
        csr.row(u).len()
    }

    /// Sum of weights in `u`'s out-row.
    pub fn out_strength(&self, u: u32) -> f64 {
        match self.out_weights(u) {
            Some(w) => w.iter().sum(),
            None => self.out_degree(u) as f64,
        }
    }

    /// Total edge weight: each undirected edge or directed arc counted once.
    pub fn total_weight(&self) -> f64 {
        self.edges().map(|(_, _, w)| w).sum()
    }

    /// Every edge once, as `(u, v, weight)`: arcs for directed graphs, and
    /// `u <= v` for undirected ones; in increasing `(u, v)` order.
    pub fn edges(&self) -> impl Iterator<Item = (u32, u32, f64)> + '_ {
        let directed = self.directed;
        (0..self.n as u32).flat_map(move |u| {
            self.out_edges(u)
                .filter(move |&(v, _)| directed || u <= v)
                .map(move |(v, w)| (u, v, w))
        })
    }

    /// The user's labels for nodes.
    pub fn labels(&self) -> &NodeLabels {
        &self.labels
    }

    /// The user's label of node `u`.
    pub fn label(&self, u: u32) -> Cow<'_, str> {
        self.labels.get(u)
    }

    /// Replace the labels (e.g. after reading), which must name every node.
    pub fn with_labels(mut self, labels: NodeLabels) -> Result<Self> {
        if let NodeLabels::Names { ends, .. } = &labels {
            if ends.len() != self.n {
                return Err(Error::Internal(format!(
                    "{} labels for {} nodes",
                    ends.len(),
                    self.n
                )));
            }
        }
        self.labels = labels;
        Ok(self)
    }

    /// Bytes of heap memory held by the graph's arrays (capacity, not length).
    pub fn heap_bytes(&self) -> usize {
        self.out.heap_bytes()
            + self.inc.as_ref().map_or(0, Csr::heap_bytes)
            + self.labels.heap_bytes()
    }

    /// The undirected graph on the same nodes where `w({u, v}) = w(u→v) + w(v→u)`;
    /// an undirected graph is returned as it is. Partitioners use this for
    /// directed graphs. The result is weighted iff the input is directed or weighted.
    pub fn symmetrized(&self) -> Graph {
        if !self.directed {
            return self.clone();
        }
        let mut b = GraphBuilder::new(self.n, false, true);
        for (u, v, w) in self.edges() {
            b.add_edge(u, v, w);
        }
        let opts = BuildOptions {
            self_loops: SelfLoops::Keep,
            duplicates: Duplicates::Sum,
        };
        let (g, _) = b
            .build(&opts)
            .expect("symmetrizing a valid graph cannot fail: Sum never errors");
        Graph {
            labels: self.labels.clone(),
            ..g
        }
    }

    /// The graph on `n` nodes where old node `u` becomes `new_id[u]` (or is
    /// dropped with its edges when `None`), named by `labels`: how a
    /// population file adds users without edges and drops users it lacks.
    ///
    /// # Complexity
    /// O(n + edges).
    pub fn remapped(&self, new_id: &[Option<u32>], n: usize, labels: NodeLabels) -> Result<Graph> {
        let mut b = GraphBuilder::new(n, self.directed, self.is_weighted());
        for (u, v, w) in self.edges() {
            if let (Some(a), Some(c)) = (new_id[u as usize], new_id[v as usize]) {
                b.add_edge(a, c, w);
            }
        }
        let opts = BuildOptions {
            self_loops: SelfLoops::Keep,
            duplicates: Duplicates::Sum,
        };
        let (g, _) = b.build(&opts)?;
        g.with_labels(labels)
    }

    /// A petgraph copy (node index = dense id, edge weight = weight), for
    /// petgraph's algorithms where they fit; the hot paths use the CSR itself.
    pub fn to_petgraph(&self) -> petgraph::Graph<(), f64, petgraph::Directed, u32> {
        let mut pg = petgraph::Graph::with_capacity(self.n, self.edge_count());
        for _ in 0..self.n {
            pg.add_node(());
        }
        for (u, v, w) in self.edges() {
            pg.add_edge(u.into(), v.into(), w);
        }
        pg
    }

    /// An undirected petgraph copy (directed graphs are symmetrized first).
    pub fn to_petgraph_undirected(&self) -> petgraph::Graph<(), f64, petgraph::Undirected, u32> {
        let g = self.symmetrized();
        let mut pg = petgraph::Graph::with_capacity(g.n, g.edge_count());
        for _ in 0..g.n {
            pg.add_node(());
        }
        for (u, v, w) in g.edges() {
            pg.add_edge(u.into(), v.into(), w);
        }
        pg
    }
}

fn weighted_row<'a>(
    targets: &'a [u32],
    weights: Option<&'a [f64]>,
) -> impl Iterator<Item = (u32, f64)> + 'a {
    targets
        .iter()
        .enumerate()
        .map(move |(k, &v)| (v, weights.map_or(1.0, |w| w[k])))
}

/// What to do with an edge from a node to itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum SelfLoops {
    /// Drop self-loops and count them (default).
    #[default]
    Drop,
    /// Keep self-loops.
    Keep,
}

/// What to do when the same edge appears more than once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Duplicates {
    /// Merge into one edge whose weight is the sum (default).
    #[default]
    Sum,
    /// Merge into one edge whose weight is the largest.
    Max,
    /// Refuse the input.
    Error,
}

/// How [`GraphBuilder::build`] treats self-loops and duplicate edges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BuildOptions {
    /// Self-loop policy.
    pub self_loops: SelfLoops,
    /// Duplicate-edge policy.
    pub duplicates: Duplicates,
}

/// What [`GraphBuilder::build`] did to the edge list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BuildReport {
    /// Edges given to the builder.
    pub input_edges: usize,
    /// Self-loops dropped.
    pub self_loops_dropped: usize,
    /// Edges that repeated an earlier edge and were merged into it
    /// (for undirected graphs `u v` and `v u` are the same edge).
    pub duplicates_merged: usize,
}

/// Collects an edge list and builds a [`Graph`] in time linear in nodes + edges
/// (plus sorting each row).
#[derive(Debug, Clone)]
pub struct GraphBuilder {
    n: usize,
    directed: bool,
    src: Vec<u32>,
    dst: Vec<u32>,
    weights: Option<Vec<f64>>,
}

/// A duplicate edge found under [`Duplicates::Error`]: dense ids of its ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DuplicateEdge(pub u32, pub u32);

impl GraphBuilder {
    /// A builder for `n` nodes; `weighted` says whether [`GraphBuilder::add_edge`] weights are kept.
    pub fn new(n: usize, directed: bool, weighted: bool) -> Self {
        GraphBuilder {
            n,
            directed,
            src: Vec::new(),
            dst: Vec::new(),
            weights: weighted.then(Vec::new),
        }
    }

    /// Reserve room for `m` more edges.
    pub fn reserve(&mut self, m: usize) {
        self.src.reserve(m);
        self.dst.reserve(m);
        if let Some(w) = self.weights.as_mut() {
            w.reserve(m);
        }
    }

    /// Add an edge (the weight is ignored by an unweighted builder). Panics if
    /// an endpoint is not below `n`: callers map ids before adding.
    pub fn add_edge(&mut self, u: u32, v: u32, w: f64) {
        assert!(
            (u as usize) < self.n && (v as usize) < self.n,
            "edge ({u}, {v}) outside 0..{}",
            self.n
        );
        self.src.push(u);
        self.dst.push(v);
        if let Some(ws) = self.weights.as_mut() {
            ws.push(w);
        }
    }

    /// Append all edges of another builder over the same nodes.
    pub fn extend(&mut self, other: GraphBuilder) {
        self.src.extend(other.src);
        self.dst.extend(other.dst);
        if let (Some(a), Some(b)) = (self.weights.as_mut(), other.weights) {
            a.extend(b);
        }
    }

    /// Number of edges added so far.
    pub fn len(&self) -> usize {
        self.src.len()
    }

    /// Whether no edge was added.
    pub fn is_empty(&self) -> bool {
        self.src.is_empty()
    }

    /// Build the graph. Fails only under [`Duplicates::Error`], naming the first
    /// duplicate (lowest row) by dense ids; see [`GraphBuilder::build_or_duplicate`].
    pub fn build(self, opts: &BuildOptions) -> Result<(Graph, BuildReport)> {
        self.build_or_duplicate(opts)
            .map_err(|DuplicateEdge(u, v)| {
                Error::input(format!("duplicate edge {u} {v} (duplicates = error)"))
            })
    }

    /// Build the graph, or return the first duplicate edge under [`Duplicates::Error`].
    pub fn build_or_duplicate(
        self,
        opts: &BuildOptions,
    ) -> std::result::Result<(Graph, BuildReport), DuplicateEdge> {
        let n = self.n;
        let directed = self.directed;
        let keep_loops = opts.self_loops == SelfLoops::Keep;
        let mut report = BuildReport {
            input_edges: self.src.len(),
            ..Default::default()
        };
        // Row lengths before merging.
        let mut offsets = vec![0usize; n + 1];
        for (&u, &v) in self.src.iter().zip(&self.dst) {
            if u == v {
                if keep_loops {
                    offsets[u as usize + 1] += 1;
                } else {
                    report.self_loops_dropped += 1;
                }
                continue;
            }
            offsets[u as usize + 1] += 1;
            if !directed {
                offsets[v as usize + 1] += 1;
            }
        }
        for i in 0..n {
            offsets[i + 1] += offsets[i];
        }
        let total = offsets[n];
        let weighted = self.weights.is_some();
        // Scatter (target, weight) into rows, in input order.
        let mut entries: Vec<(u32, f64)> = vec![(0, 0.0); total];
        {
            let mut cursor = offsets.clone();
            let GraphBuilder {
                src, dst, weights, ..
            } = self;
            for (k, (&u, &v)) in src.iter().zip(&dst).enumerate() {
                let w = weights.as_ref().map_or(1.0, |ws| ws[k]);
                if u == v {
                    if keep_loops {
                        entries[cursor[u as usize]] = (v, w);
                        cursor[u as usize] += 1;
                    }
                    continue;
                }
                entries[cursor[u as usize]] = (v, w);
                cursor[u as usize] += 1;
                if !directed {
                    entries[cursor[v as usize]] = (u, w);
                    cursor[v as usize] += 1;
                }
            }
        }
        // Sort each row by target (stable, so merging order is the input order)
        // and merge duplicates in place; rows run in parallel but each row's
        // result depends only on its own entries.
        let policy = opts.duplicates;
        let mut rows = split_rows_mut(&mut entries, &offsets);
        // Per row: kept length and how many merged entries were self-loops.
        let merged: Vec<std::result::Result<(usize, usize), u32>> = rows
            .par_iter_mut()
            .enumerate()
            .map(|(u, row)| {
                row.sort_by_key(|e| e.0);
                let (mut len, mut loops) = (0usize, 0usize);
                for k in 0..row.len() {
                    if len > 0 && row[len - 1].0 == row[k].0 {
                        match policy {
                            Duplicates::Sum => row[len - 1].1 += row[k].1,
                            Duplicates::Max => row[len - 1].1 = row[len - 1].1.max(row[k].1),
                            Duplicates::Error => return Err(row[k].0),
                        }
                        loops += usize::from(row[k].0 as usize == u);
                    } else {
                        row[len] = row[k];
                        len += 1;
                    }
                }
                Ok((len, loops))
            })
            .collect();
        drop(rows);
        let mut lens = Vec::with_capacity(n);
        let (mut removed, mut removed_loops) = (0usize, 0usize);
        for (u, r) in merged.into_iter().enumerate() {
            let (len, loops) = r.map_err(|v| DuplicateEdge(u as u32, v))?;
            removed += (offsets[u + 1] - offsets[u]) - len;
            removed_loops += loops;
            lens.push(len);
        }
        report.duplicates_merged = if directed {
            removed
        } else {
            removed_loops + (removed - removed_loops) / 2
        };
        // Compact into the final arrays.
        let mut new_offsets = Vec::with_capacity(n + 1);
        new_offsets.push(0usize);
        let kept: usize = lens.iter().sum();
        let mut targets = Vec::with_capacity(kept);
        let mut weights = weighted.then(|| Vec::with_capacity(kept));
        for u in 0..n {
            let row = &entries[offsets[u]..offsets[u] + lens[u]];
            targets.extend(row.iter().map(|e| e.0));
            if let Some(w) = weights.as_mut() {
                w.extend(row.iter().map(|e| e.1));
            }
            new_offsets.push(targets.len());
        }
        drop(entries);
        let out = Csr {
            offsets: new_offsets,
            targets,
            weights,
        };
        let inc = directed.then(|| out.transpose(n));
        Ok((
            Graph {
                n,
                directed,
                out,
                inc,
                labels: NodeLabels::Dense,
            },
            report,
        ))
    }
}

/// Split `data` into the mutable rows delimited by `offsets`.
pub(crate) fn split_rows_mut<'a, T>(mut data: &'a mut [T], offsets: &[usize]) -> Vec<&'a mut [T]> {
    let mut rows = Vec::with_capacity(offsets.len().saturating_sub(1));
    for w in offsets.windows(2) {
        let (row, rest) = data.split_at_mut(w[1] - w[0]);
        rows.push(row);
        data = rest;
    }
    rows
}
