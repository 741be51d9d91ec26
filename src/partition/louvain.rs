//! Louvain modularity optimization (Blondel et al. 2008) with an optional
//! Leiden refinement (Traag, Waltman & van Eck 2019) and a hard cluster-size cap.
//!
//! Local moving visits nodes from a queue seeded with a random permutation of
//! dense ids (Leiden's fast local move: a node is revisited only when a
//! neighbour left its community), so the result depends only on the seed. On
//! levels of 100,000 nodes or more it runs in parallel and stays
//! deterministic: fixed chunks of the seeded order are evaluated in parallel
//! against the state before the chunk and their moves applied in order
//! (`State::move_chunked`), so the partition is the same on any number of
//! threads.
//! The Leiden refinement runs in parallel by community (communities are
//! refined independently, each in the seeded order), so it too gives the same
//! partition on any number of threads.
//! Aggregation runs in parallel over fixed blocks of communities, each row
//! computed independently, so it is deterministic on any number of threads.
//! Louvain then refines (`Params::refine`, on by default): the top level's
//! communities are carried back down level by level and nodes are moved
//! again on each, from those communities (Rotta & Noack 2011; networkit's
//! PLMR), which on graphs without community structure lifts modularity well
//! above plain Louvain's (0.254 → 0.288 on a million-node Barabási–Albert
//! graph; `BENCHMARKS.md` gives the times).
//! A maximum cluster size is respected by construction: a move that would make
//! a community exceed it is never considered.

use super::{ensure, split_disconnected, Partition};
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::rng::{self, purpose};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::VecDeque;

/// Parameters of Louvain and Leiden.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Params {
    /// Resolution γ (> 0): larger gives more, smaller clusters.
    pub resolution: f64,
    /// Seed for the visiting orders.
    pub seed: u64,
    /// Largest cluster allowed (number of nodes), if any.
    pub max_size: Option<usize>,
    /// Most levels (aggregation rounds).
    pub max_levels: usize,
    /// Leiden: most whole passes, each from the last one's result (it stops
    /// earlier once a pass leaves the partition unchanged; default
    /// [`LEIDEN_ITERATIONS`]). Louvain makes one.
    pub passes: usize,
    /// Louvain: once the top level is reached, carry its communities back
    /// down level by level and move nodes again on each, from those
    /// communities (multilevel refinement: Rotta & Noack 2011, networkit's
    /// PLMR). It only ever takes moves that raise modularity against the
    /// state it evaluates them on, at the cost of one more local-moving
    /// phase per level (on the million-node graphs of `BENCHMARKS.md`, two
    /// threads: 0.35–0.7 s more, 15–30 % of the time). Default true. Leiden
    /// ignores it: its later passes play this part.
    pub refine: bool,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            resolution: 1.0,
            seed: 1,
            max_size: None,
            max_levels: 100,
            passes: LEIDEN_ITERATIONS,
            refine: true,
        }
    }
}

/// Weighted undirected graph of one level: CSR without self-loops, plus each
/// node's self-loop weight, strength and size (original nodes it stands for).
struct Level {
    offsets: Vec<usize>,
    targets: Vec<u32>,
    /// Arc weights; empty when every arc weighs 1 (an unweighted graph's
    /// first level): a sweep then reads 8 bytes per arc (target and its
    /// community) instead of 16.
    weights: Vec<f64>,
    /// Weight of edges inside the node (each counted once).
    self_w: Vec<f64>,
    /// Strength: Σ of incident weights, internal edges counted twice.
    k: Vec<f64>,
    size: Vec<u32>,
}

impl Level {
    fn n(&self) -> usize {
        self.k.len()
    }

    /// Weight of arc `e`.
    #[inline]
    fn w(&self, e: usize) -> f64 {
        match self.weights.get(e) {
            Some(&w) => w,
            None => 1.0,
        }
    }

    /// The first level: `g`'s arcs, self-loops set apart, built in parallel
    /// blocks of nodes.
    ///
    /// # Complexity
    /// O(nodes + arcs), spread over the threads.
    fn from_graph(g: &Graph) -> Level {
        const BLOCK: usize = 16_384;
        let n = g.node_count();
        let weighted = g.is_weighted();
        let blocks: Vec<Rows> = (0..n.div_ceil(BLOCK))
            .into_par_iter()
            .map(|b| {
                let mut rows = Rows::default();
                for u in b * BLOCK..((b + 1) * BLOCK).min(n) {
                    let u = u as u32;
                    let (mut self_w, mut k, before) = (0.0, 0.0, rows.targets.len());
                    for (v, w) in g.out_edges(u) {
                        if v == u {
                            self_w += w;
                            k += 2.0 * w;
                        } else {
                            rows.targets.push(v);
                            if weighted {
                                rows.weights.push(w);
                            }
                            k += w;
                        }
                    }
                    rows.lens.push(rows.targets.len() - before);
                    rows.self_w.push(self_w);
                    rows.k.push(k);
                    rows.size.push(1);
                }
                rows
            })
            .collect();
        let mut lvl = Rows::concat(blocks);
        // Arcs that all weigh 1 need no weights.
        if lvl.weights.iter().all(|&w| w == 1.0) {
            lvl.weights = Vec::new();
        }
        lvl
    }

    /// Aggregate: one node per community of `part` (dense ids `0..count`).
    fn aggregate(&self, part: &[u32], count: usize) -> Level {
        let (start, members) = group(part, count, 0..part.len() as u32);
        // Rows in blocks small enough that a level of few communities (but
        // many arcs) still spreads over the threads.
        let block = (count / 64).clamp(16, 2048);
        let blocks: Vec<Rows> = (0..count.div_ceil(block))
            .into_par_iter()
            .map_init(
                || (vec![0.0f64; count], Vec::<u32>::new()),
                |(acc, touched), b| {
                    let mut rows = Rows::default();
                    for c in b * block..((b + 1) * block).min(count) {
                        let (mut inside, mut kc, mut size) = (0.0, 0.0, 0u32);
                        let mut len = 0;
                        for &v in &members[start[c]..start[c + 1]] {
                            let v = v as usize;
                            inside += self.self_w[v];
                            kc += self.k[v];
                            size += self.size[v];
                            let edges = self.offsets[v]..self.offsets[v + 1];
                            if touched.len() <= len + edges.len() {
                                touched.resize(len + edges.len() + 1, 0);
                            }
                            // Without branches: an arc adds its weight to
                            // `inside` or to its community's, and +0 to the
                            // other (which leaves both unchanged: they are
                            // never −0); a community's id is kept only the
                            // first time it is met.
                            for e in edges {
                                let d = part[self.targets[e] as usize];
                                let (w, here) = (self.w(e), d as usize == c);
                                inside += 0.5 * w * f64::from(u8::from(here));
                                touched[len] = d;
                                len += usize::from(acc[d as usize] == 0.0) & usize::from(!here);
                                acc[d as usize] += w * f64::from(u8::from(!here));
                            }
                        }
                        rows.lens.push(len);
                        for &d in &touched[..len] {
                            rows.targets.push(d);
                            rows.weights.push(acc[d as usize]);
                            acc[d as usize] = 0.0;
                        }
                        rows.self_w.push(inside);
                        rows.k.push(kc);
                        rows.size.push(size);
                    }
                    rows
                },
            )
            .collect();
        Rows::concat(blocks)
    }
}

/// The rows of a block of a level's nodes, built on a thread of their own:
/// each node's arc count, then the level's per-arc and per-node fields.
#[derive(Default)]
struct Rows {
    lens: Vec<usize>,
    targets: Vec<u32>,
    weights: Vec<f64>,
    self_w: Vec<f64>,
    k: Vec<f64>,
    size: Vec<u32>,
}

impl Rows {
    /// The level made of `blocks`, in order.
    fn concat(blocks: Vec<Rows>) -> Level {
        let total = |f: fn(&Rows) -> usize| blocks.iter().map(f).sum::<usize>();
        let nodes = total(|b| b.lens.len());
        let mut lvl = Level {
            offsets: Vec::with_capacity(nodes + 1),
            targets: Vec::with_capacity(total(|b| b.targets.len())),
            weights: Vec::with_capacity(total(|b| b.weights.len())),
            self_w: Vec::with_capacity(nodes),
            k: Vec::with_capacity(nodes),
            size: Vec::with_capacity(nodes),
        };
        lvl.offsets.push(0);
        for rows in blocks {
            let base = lvl.targets.len();
            lvl.offsets.extend(rows.lens.iter().scan(base, |acc, &l| {
                *acc += l;
                Some(*acc)
            }));
            lvl.targets.extend(rows.targets);
            lvl.weights.extend(rows.weights);
            lvl.self_w.extend(rows.self_w);
            lvl.k.extend(rows.k);
            lvl.size.extend(rows.size);
        }
        lvl
    }
}

/// Nodes whose neighbours' communities are gathered together before any is
/// weighed ([`State::best_moves`]).
const GATHER: usize = 16;

/// A chunk with fewer active and just-moved nodes than this is evaluated on
/// the calling thread (sharing it would cost more than it saves).
const SMALL_CHUNK: usize = 256;

/// Per-thread buffers of [`State::best_moves`].
#[derive(Default)]
struct Scratch {
    /// Weight to each community (nodes of degree above [`SMALL_DEGREE`]);
    /// zero between uses.
    acc: Vec<f64>,
    /// Neighbouring communities in the order first met, and the weight to
    /// each.
    touched: Vec<u32>,
    wsum: Vec<f64>,
    /// The gathered communities of a group's neighbours.
    nbr: Vec<u32>,
}

/// Levels with at least this many nodes move nodes in parallel chunks.
pub const PARALLEL_LEVEL: usize = 100_000;

/// Nodes whose moves are computed together in parallel local moving.
const MOVE_CHUNK: usize = 4096;

/// Nodes of at most this degree sum their weight per neighbouring community
/// in a short list rather than a dense array.
const SMALL_DEGREE: usize = 32;

/// Most sweeps of parallel local moving on one level.
const MAX_SWEEPS: usize = 100;

/// One community's totals during local moving.
#[derive(Debug, Clone, Copy, Default)]
struct Comm {
    /// Σ strength of its nodes.
    tot: f64,
    /// Original nodes it holds.
    size: u64,
    /// Nodes of this level it holds.
    members: u32,
}

/// Community bookkeeping during local moving.
struct State<'a> {
    g: &'a Level,
    comm: Vec<u32>,
    /// Each community's totals, side by side (24 bytes: one look-up reads
    /// all three, mostly from one cache line).
    cs: Vec<Comm>,
    /// γ / 2m.
    scale: f64,
    max_size: u64,
}

impl<'a> State<'a> {
    fn new(g: &'a Level, comm: Vec<u32>, gamma: f64, m2: f64, max_size: Option<usize>) -> Self {
        let n = g.n();
        let mut cs = vec![Comm::default(); n];
        for v in 0..n {
            let c = &mut cs[comm[v] as usize];
            c.tot += g.k[v];
            c.size += g.size[v] as u64;
            c.members += 1;
        }
        State {
            g,
            comm,
            cs,
            scale: gamma / m2,
            max_size: max_size.map_or(u64::MAX, |m| m as u64),
        }
    }

    /// Local moving from a seeded order; returns whether any node moved.
    /// Levels of at least [`PARALLEL_LEVEL`] nodes move in parallel chunks
    /// ([`State::move_chunked`]), smaller ones one node at a time.
    fn move_nodes(&mut self, order: &[u32]) -> bool {
        if self.g.n() >= PARALLEL_LEVEL {
            self.move_chunked(order)
        } else {
            self.move_sequential(order)
        }
    }

    /// The best community of each of `nodes` against the current state, into
    /// `out` (its own when nothing beats staying). The neighbours'
    /// communities of [`GATHER`] nodes are read before any of them is
    /// weighed, so that those scattered reads overlap instead of waiting one
    /// after the other.
    fn best_moves(&self, nodes: &[u32], out: &mut [u32]) {
        debug_assert_eq!(nodes.len(), out.len());
        thread_local! {
            static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
        }
        let g = self.g;
        SCRATCH.with(|cell| {
            let s = &mut *cell.borrow_mut();
            for (nodes, out) in nodes.chunks(GATHER).zip(out.chunks_mut(GATHER)) {
                s.nbr.clear();
                let mut ends = [0usize; GATHER];
                for (end, &v) in ends.iter_mut().zip(nodes) {
                    let vi = v as usize;
                    s.nbr
                        .extend_from_slice(&g.targets[g.offsets[vi]..g.offsets[vi + 1]]);
                    *end = s.nbr.len();
                }
                for t in s.nbr.iter_mut() {
                    *t = self.comm[*t as usize];
                }
                let mut start = 0;
                for ((&v, o), &end) in nodes.iter().zip(out.iter_mut()).zip(&ends) {
                    let Scratch {
                        acc,
                        touched,
                        wsum,
                        nbr,
                    } = s;
                    *o = self.best_move(v, &nbr[start..end], acc, touched, wsum);
                    start = end;
                }
            }
        })
    }

    /// The best community for `v` whose neighbours' communities are `comms`
    /// (in arc order), against the current state: its own when nothing beats
    /// staying.
    fn best_move(
        &self,
        v: u32,
        comms: &[u32],
        acc: &mut Vec<f64>,
        touched: &mut Vec<u32>,
        wsum: &mut Vec<f64>,
    ) -> u32 {
        let g = self.g;
        let vi = v as usize;
        let d = self.comm[vi];
        let kv = g.k[vi];
        let sv = g.size[vi] as u64;
        // The weight from v to each neighbouring community, in the order
        // the communities are first met.
        touched.clear();
        wsum.clear();
        let first = g.offsets[vi];
        if comms.len() <= SMALL_DEGREE {
            // A short list searched in place: no scattered writes.
            for (e, &c) in (first..).zip(comms) {
                match touched.iter().position(|&t| t == c) {
                    Some(j) => wsum[j] += g.w(e),
                    None => {
                        touched.push(c);
                        wsum.push(g.w(e));
                    }
                }
            }
        } else {
            if acc.len() < g.n() {
                acc.resize(g.n(), 0.0);
            }
            let arcs = comms.iter().enumerate().map(|(i, &c)| (c, g.w(first + i)));
            let len = sum_by_community(arcs, acc, touched, u32::MAX);
            touched.truncate(len);
            wsum.extend(touched.iter().map(|&c| acc[c as usize]));
            for &c in touched.iter() {
                acc[c as usize] = 0.0;
            }
        }
        let to_d = touched
            .iter()
            .position(|&c| c == d)
            .map_or(0.0, |j| wsum[j]);
        let mut best = d;
        let mut best_gain = to_d - self.scale * kv * (self.cs[d as usize].tot - kv);
        let alone = self.cs[d as usize].members == 1;
        for (&c, &w) in touched.iter().zip(wsum.iter()) {
            if c == d || self.cs[c as usize].size + sv > self.max_size {
                continue;
            }
            // Two nodes alone in their communities evaluated in the same
            // chunk could swap communities forever: a lone node joins
            // another lone node only when its community id is smaller
            // (Lu, Halappanavar & Kalyanaraman 2015).
            if alone && self.cs[c as usize].members == 1 && c > d {
                continue;
            }
            let gain = w - self.scale * kv * self.cs[c as usize].tot;
            if gain > best_gain {
                best_gain = gain;
                best = c;
            }
        }
        best
    }

    /// Deterministic parallel local moving: sweeps over the seeded order in
    /// fixed chunks of [`MOVE_CHUNK`] nodes. Each chunk's best moves are
    /// computed against the state left by the previous chunk (in parallel,
    /// unless the chunk has fewer than [`SMALL_CHUNK`] active and just-moved
    /// nodes: the same moves on the calling thread), then applied one by one
    /// in order (a move that would break the size cap by then is dropped),
    /// and the neighbours of moved nodes are marked for the next sweep. The chunks and the order of application do not depend
    /// on the number of threads, so neither does the partition.
    fn move_chunked(&mut self, order: &[u32]) -> bool {
        use std::sync::atomic::{AtomicBool, Ordering};
        let g = self.g;
        let n = g.n();
        let mut active = vec![true; n];
        let mut next: Vec<AtomicBool> = (0..n).map(|_| AtomicBool::new(false)).collect();
        let mut moved_any = false;
        let mut batch = Vec::with_capacity(MOVE_CHUNK);
        let mut best = Vec::with_capacity(MOVE_CHUNK);
        // Nodes moved by the last chunk whose neighbours are not marked yet.
        let mut moved = Vec::with_capacity(MOVE_CHUNK);
        // Mark for the next sweep the neighbours of `moved` now in another
        // community. Marking a chunk's moves while the next chunk is being
        // evaluated sees the same communities (no move is applied between).
        let mark_one = |v: u32, comm: &[u32], next: &[AtomicBool]| {
            let vi = v as usize;
            for e in g.offsets[vi]..g.offsets[vi + 1] {
                let u = g.targets[e] as usize;
                if comm[u] != comm[vi] {
                    next[u].store(true, Ordering::Relaxed);
                }
            }
        };
        let mark = |moved: &[u32], comm: &[u32], next: &[AtomicBool]| {
            moved.par_iter().for_each(|&v| mark_one(v, comm, next))
        };
        for _sweep in 0..MAX_SWEEPS {
            let mut moved_in_sweep = false;
            for chunk in order.chunks(MOVE_CHUNK) {
                batch.clear();
                batch.extend(chunk.iter().copied().filter(|&v| active[v as usize]));
                if batch.is_empty() {
                    continue;
                }
                let state = &*self;
                best.resize(batch.len(), 0);
                if batch.len() + moved.len() < SMALL_CHUNK {
                    // Too little work to share: the same results in place.
                    state.best_moves(&batch, &mut best);
                    for &v in &moved {
                        mark_one(v, &state.comm, &next);
                    }
                } else {
                    rayon::join(
                        || {
                            best.par_chunks_mut(GATHER)
                                .zip(batch.par_chunks(GATHER))
                                .for_each(|(out, nodes)| state.best_moves(nodes, out))
                        },
                        || mark(&moved, &state.comm, &next),
                    );
                }
                moved.clear();
                for (&v, &c) in batch.iter().zip(&best) {
                    let vi = v as usize;
                    let d = self.comm[vi];
                    let sv = g.size[vi] as u64;
                    if c == d || self.cs[c as usize].size + sv > self.max_size {
                        continue;
                    }
                    let kv = g.k[vi];
                    self.cs[d as usize].tot -= kv;
                    self.cs[d as usize].size -= sv;
                    self.cs[d as usize].members -= 1;
                    self.cs[c as usize].tot += kv;
                    self.cs[c as usize].size += sv;
                    self.cs[c as usize].members += 1;
                    self.comm[vi] = c;
                    moved.push(v);
                }
                moved_in_sweep |= !moved.is_empty();
            }
            mark(&moved, &self.comm, &next);
            moved.clear();
            if !moved_in_sweep {
                break;
            }
            moved_any = true;
            // No other thread holds `next` here: plain reads and writes.
            for (a, x) in active.iter_mut().zip(next.iter_mut()) {
                *a = std::mem::take(x.get_mut());
            }
        }
        moved_any
    }

    /// Fast local moving from a seeded order, one node at a time (a node is
    /// revisited only when a neighbour left its community).
    fn move_sequential(&mut self, order: &[u32]) -> bool {
        let g = self.g;
        let n = g.n();
        let mut queue: VecDeque<u32> = order.iter().copied().collect();
        let mut queued = vec![true; n];
        let (mut acc, mut touched) = (vec![0.0f64; n], Vec::<u32>::new());
        let mut moved_any = false;
        while let Some(v) = queue.pop_front() {
            let vi = v as usize;
            queued[vi] = false;
            let d = self.comm[vi];
            let kv = g.k[vi];
            let sv = g.size[vi] as u64;
            let arcs = (g.offsets[vi]..g.offsets[vi + 1])
                .map(|e| (self.comm[g.targets[e] as usize], g.w(e)));
            let len = sum_by_community(arcs, &mut acc, &mut touched, u32::MAX);
            let touched = &touched[..len];
            self.cs[d as usize].tot -= kv;
            self.cs[d as usize].size -= sv;
            let mut best = d;
            let mut best_gain = acc[d as usize] - self.scale * kv * self.cs[d as usize].tot;
            for &c in touched {
                if c == d || self.cs[c as usize].size + sv > self.max_size {
                    continue;
                }
                let gain = acc[c as usize] - self.scale * kv * self.cs[c as usize].tot;
                if gain > best_gain {
                    best_gain = gain;
                    best = c;
                }
            }
            for &c in touched {
                acc[c as usize] = 0.0;
            }
            self.cs[best as usize].tot += kv;
            self.cs[best as usize].size += sv;
            if best != d {
                self.comm[vi] = best;
                self.cs[d as usize].members -= 1;
                self.cs[best as usize].members += 1;
                moved_any = true;
                for e in g.offsets[vi]..g.offsets[vi + 1] {
                    let u = g.targets[e];
                    if !queued[u as usize] && self.comm[u as usize] != best {
                        queued[u as usize] = true;
                        queue.push_back(u);
                    }
                }
            }
        }
        moved_any
    }

    /// Leiden refinement: inside each community, merge singletons greedily into
    /// well-connected sub-communities they are linked to. Returns the refined
    /// labels (dense) and their count. Every refined sub-community is connected.
    ///
    /// Communities are refined independently (a node only ever joins a
    /// sub-community of its own community), each visiting its members in the
    /// seeded `order`, so they run in parallel and the result is the same on
    /// any number of threads, and the same as one sweep over `order`.
    ///
    /// # Complexity
    /// O(nodes + arcs), spread over the threads by community.
    fn refine(&self, order: &[u32], count: usize) -> (Vec<u32>, usize) {
        let g = self.g;
        let n = g.n();
        let (start, members) = group(&self.comm, count, order.iter().copied());
        // pos[v]: v's index among its community's members.
        let mut pos = vec![0u32; n];
        for c in 0..count {
            for (j, &v) in members[start[c]..start[c + 1]].iter().enumerate() {
                pos[v as usize] = j as u32;
            }
        }
        // Each community's slice of the output (its members' refined
        // sub-community, as a node id), cut without overlap.
        let mut out = vec![0u32; n];
        let mut slices = Vec::with_capacity(count);
        let mut rest: &mut [u32] = &mut out;
        for c in 0..count {
            let (head, tail) = rest.split_at_mut(start[c + 1] - start[c]);
            slices.push(head);
            rest = tail;
        }
        let (members, pos) = (&members, &pos);
        slices
            .into_par_iter()
            .enumerate()
            .for_each_init(Refiner::default, |rf, (c, out)| {
                rf.community(self, &members[start[c]..start[c + 1]], pos, c, out)
            });
        let mut refined = vec![0u32; n];
        for (&v, &r) in members.iter().zip(&out) {
            refined[v as usize] = r;
        }
        let p = Partition::from_dense(&refined, n);
        let count = p.count();
        (p.labels, count)
    }
}

/// The nodes of each community of `labels` (dense ids below `count`), each
/// community's in the order `nodes` gives them (a counting sort): community
/// `c` holds `members[start[c]..start[c + 1]]`.
fn group(labels: &[u32], count: usize, nodes: impl Iterator<Item = u32>) -> (Vec<usize>, Vec<u32>) {
    let mut start = vec![0usize; count + 1];
    for &c in labels {
        start[c as usize + 1] += 1;
    }
    for c in 0..count {
        start[c + 1] += start[c];
    }
    let mut members = vec![0u32; labels.len()];
    let mut cursor = start.clone();
    for v in nodes {
        let c = labels[v as usize] as usize;
        members[cursor[c]] = v;
        cursor[c] += 1;
    }
    (start, members)
}

/// Add each of `arcs`' weights to its community's entry of `acc` and list
/// every community but `skip` once in `touched`, in the order first met;
/// returns how many are listed (`touched[..count]`). No branch on whether a
/// community is new: its id is always written, and kept by moving past it
/// only when its sum was still zero (weights are positive). `skip`'s entry
/// of `acc` takes its arcs' weights and is the caller's to reset.
#[inline]
fn sum_by_community(
    arcs: impl ExactSizeIterator<Item = (u32, f64)>,
    acc: &mut [f64],
    touched: &mut Vec<u32>,
    skip: u32,
) -> usize {
    if touched.len() <= arcs.len() {
        touched.resize(arcs.len() + 1, 0);
    }
    let mut count = 0;
    for (c, w) in arcs {
        touched[count] = c;
        count += usize::from(acc[c as usize] == 0.0) & usize::from(c != skip);
        acc[c as usize] += w;
    }
    count
}

/// Per-worker buffers of [`State::refine`], indexed by a node's position among
/// its community's members.
#[derive(Default)]
struct Refiner {
    refined: Vec<u32>,
    rtot: Vec<f64>,
    singleton: Vec<bool>,
    /// Weight from each refined sub-community to the rest of its community.
    ext: Vec<f64>,
    acc: Vec<f64>,
    touched: Vec<u32>,
    /// For each arc of the community's members (member by member, in arc
    /// order), the index of its head among the members, or the members'
    /// count when the head is in another community.
    local: Vec<u32>,
    /// Member `j`'s arcs are `local[lstart[j]..lstart[j + 1]]`.
    lstart: Vec<usize>,
}

impl Refiner {
    /// Refine community `c`, whose members are `m` (in the seeded order; `pos`
    /// maps a node to its index in `m`); `out[j]` gets the node standing for
    /// the refined sub-community of `m[j]`.
    ///
    /// The heads of the members' arcs are looked up once, before any move
    /// (their scattered reads overlap); the sweep then works on the
    /// community's own arrays, with one extra slot, index `m.len()`, that
    /// takes the weight of arcs leaving the community (so that no arc needs
    /// a branch) and is never a candidate.
    fn community(&mut self, st: &State, m: &[u32], pos: &[u32], c: usize, out: &mut [u32]) {
        let g = st.g;
        let len = m.len();
        let outside = len as u32;
        self.local.clear();
        self.lstart.clear();
        self.lstart.push(0);
        for &v in m {
            let v = v as usize;
            self.local
                .extend(g.targets[g.offsets[v]..g.offsets[v + 1]].iter().map(|&u| {
                    let (u, p) = (u as usize, pos[u as usize]);
                    if st.comm[u] as usize == c {
                        p
                    } else {
                        outside
                    }
                }));
            self.lstart.push(self.local.len());
        }
        self.refined.clear();
        self.refined.extend(0..=outside);
        self.rtot.clear();
        self.rtot.extend(m.iter().map(|&v| g.k[v as usize]));
        self.singleton.clear();
        self.singleton.resize(len, true);
        self.acc.clear();
        self.acc.resize(len + 1, 0.0);
        // Adding +0 for an arc that leaves leaves the sum's bits unchanged.
        let (local, lstart) = (&self.local, &self.lstart);
        self.ext.clear();
        self.ext.extend(m.iter().enumerate().map(|(j, &v)| {
            let first = g.offsets[v as usize];
            let mut x = 0.0;
            for (e, &p) in (first..).zip(&local[lstart[j]..lstart[j + 1]]) {
                x += g.w(e) * f64::from(u8::from(p != outside));
            }
            x
        }));
        let tot_c = st.cs[c].tot;
        for (j, &v) in m.iter().enumerate() {
            let vi = v as usize;
            if !self.singleton[j] {
                continue;
            }
            let kv = g.k[vi];
            // v must be well connected to its community.
            if self.ext[j] < st.scale * kv * (tot_c - kv) {
                continue;
            }
            // Arcs that leave add to the extra slot, never listed.
            let refined = &self.refined;
            let first = g.offsets[vi];
            let arcs = local[lstart[j]..lstart[j + 1]]
                .iter()
                .enumerate()
                .map(|(i, &p)| (refined[p as usize], g.w(first + i)));
            let count = sum_by_community(arcs, &mut self.acc, &mut self.touched, outside);
            let mut best: Option<(u32, f64)> = None;
            for &r in &self.touched[..count] {
                let ri = r as usize;
                if ri == j {
                    continue;
                }
                // The target must be well connected to the rest of its community.
                let rt = self.rtot[ri];
                if self.ext[ri] < st.scale * rt * (tot_c - rt) {
                    continue;
                }
                let gain = self.acc[ri] - st.scale * kv * rt;
                if gain >= 0.0 && best.is_none_or(|(_, bg)| gain > bg) {
                    best = Some((r, gain));
                }
            }
            if let Some((r, _)) = best {
                let ri = r as usize;
                let w_vr = self.acc[ri];
                self.refined[j] = r;
                self.rtot[ri] += kv;
                self.ext[ri] = self.ext[ri] + self.ext[j] - 2.0 * w_vr;
                self.singleton[j] = false;
                self.singleton[ri] = false;
            }
            for &r in &self.touched[..count] {
                self.acc[r as usize] = 0.0;
            }
            self.acc[len] = 0.0;
        }
        for (o, &r) in out.iter_mut().zip(&self.refined) {
            *o = m[r as usize];
        }
    }
}

fn permutation(n: usize, seed: u64, level: usize) -> Vec<u32> {
    rng::permutation(
        n,
        &mut rng::stream(seed, &[purpose::PARTITION, 1, level as u64]),
    )
}

/// Most whole passes Leiden makes by default ([`Params::passes`]).
pub const LEIDEN_ITERATIONS: usize = 10;

/// One pass of local moving and aggregation from the communities `start`;
/// returns the community of every node of `base` (labels below its node
/// count, dense unless Louvain refined them: the caller renumbers them).
///
/// # Complexity
/// O(arcs) per local-moving sweep, a few sweeps per level; Louvain's
/// refinement adds one local-moving phase per level. Memory: every
/// aggregated level is kept until the refinement has passed it (only the
/// last one without refinement).
fn pass(
    base: &Level,
    start: Vec<u32>,
    m2: f64,
    p: &Params,
    leiden: bool,
    iteration: usize,
) -> Vec<u32> {
    let refine = p.refine && !leiden;
    // The levels above the base (without refinement only the last is kept),
    // and for each level but the top the node of the next level each of its
    // nodes became.
    let mut levels: Vec<Option<Level>> = Vec::new();
    let mut maps: Vec<Vec<u32>> = Vec::new();
    // The communities of the top level's nodes.
    let mut comm = start;
    for lvl in 0..p.max_levels {
        let level = levels.last().and_then(Option::as_ref).unwrap_or(base);
        let key = iteration * 100_000 + lvl;
        let order = permutation(level.n(), p.seed, key);
        let mut st = State::new(
            level,
            std::mem::take(&mut comm),
            p.resolution,
            m2,
            p.max_size,
        );
        let moved = st.move_nodes(&order);
        let found = Partition::from_dense(&st.comm, level.n());
        let count = found.count();
        comm = found.labels;
        if count == level.n() {
            break; // every node alone: nothing left to aggregate
        }
        let (agg_part, agg_count) = if leiden {
            // Refinement reads community totals by the dense labels.
            st = State::new(level, comm.clone(), p.resolution, m2, p.max_size);
            let order = permutation(level.n(), p.seed, 50_000 + key);
            let (refined, refined_count) = st.refine(&order, count);
            if refined_count < level.n() {
                (refined, refined_count)
            } else if moved {
                // Refinement merged nothing but nodes moved: aggregate on the communities.
                (comm.clone(), count)
            } else {
                break;
            }
        } else {
            (comm.clone(), count)
        };
        // Next level starts from the (unrefined) communities.
        let mut next_init = vec![0u32; agg_count];
        for v in 0..level.n() {
            next_init[agg_part[v] as usize] = comm[v];
        }
        let next = level.aggregate(&agg_part, agg_count);
        if !refine {
            if let Some(last) = levels.last_mut() {
                *last = None;
            }
        }
        levels.push(Some(next));
        maps.push(agg_part);
        comm = next_init;
    }
    // Carry the top level's communities down to the base; Louvain moves
    // nodes again on each level on the way (multilevel refinement).
    for (i, map) in maps.iter().enumerate().rev() {
        comm = map.iter().map(|&u| comm[u as usize]).collect();
        // The levels above the one `map` comes from are done with.
        levels.truncate(i);
        if refine {
            // Level i: the base, or the last one kept (all are, to refine).
            let below = levels.last().and_then(Option::as_ref).unwrap_or(base);
            let order = permutation(below.n(), p.seed, iteration * 100_000 + 70_000 + i);
            let mut st = State::new(below, comm, p.resolution, m2, p.max_size);
            st.move_nodes(&order);
            comm = st.comm;
        }
    }
    comm
}

/// Louvain (or Leiden when `leiden`) on an undirected graph. Leiden repeats
/// whole passes, each starting from the previous result, until the partition
/// no longer changes (at most [`Params::passes`]).
pub fn louvain(g: &Graph, p: &Params, leiden: bool) -> Result<Partition> {
    if !(p.resolution > 0.0 && p.resolution.is_finite()) {
        return Err(Error::input(format!(
            "resolution must be > 0, got {}",
            p.resolution
        )));
    }
    if p.max_size == Some(0) {
        return Err(Error::input("max size must be at least 1"));
    }
    if leiden && p.passes == 0 {
        return Err(Error::input("passes must be at least 1"));
    }
    let n = g.node_count();
    let base = Level::from_graph(g);
    let m2: f64 = base.k.iter().sum();
    if !m2.is_finite() {
        return Err(Error::input(format!(
            "the edge weights sum to {m2}, beyond the largest finite number: scale the weights down"
        )));
    }
    let mut final_comm: Vec<u32> = (0..n as u32).collect();
    // The communities so far, relabelled in order of first appearance.
    let mut part = Partition::from_dense(&final_comm, n);
    if m2 > 0.0 {
        let iterations = if leiden { p.passes } else { 1 };
        for it in 0..iterations {
            final_comm = pass(&base, std::mem::take(&mut final_comm), m2, p, leiden, it);
            let next = Partition::from_dense(&final_comm, n);
            let same = next == part;
            part = next;
            if same {
                break;
            }
        }
    }
    if leiden {
        // Refined sub-communities are connected; splitting each cluster into
        // its connected parts keeps the promise whatever the passes did (it
        // can only raise modularity), so every cluster is connected by
        // construction (the tests check it).
        part = split_disconnected(g, &part);
    }
    if let Some(max) = p.max_size {
        let largest = part.sizes().into_iter().max().unwrap_or(0);
        ensure(largest <= max, || {
            format!("a cluster of {largest} nodes exceeds --max-size {max}")
        })?;
    }
    Ok(part)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The refinement as one sequential sweep over the seeded order (its
    /// first form), the reference for the parallel one.
    fn refine_sequential(st: &State, order: &[u32]) -> (Vec<u32>, usize) {
        let g = st.g;
        let n = g.n();
        let mut refined: Vec<u32> = (0..n as u32).collect();
        let mut rtot = g.k.clone();
        let mut singleton = vec![true; n];
        let (mut acc, mut touched) = (vec![0.0f64; n], Vec::<u32>::new());
        let mut ext = vec![0.0f64; n];
        for (v, x) in ext.iter_mut().enumerate() {
            for e in g.offsets[v]..g.offsets[v + 1] {
                if st.comm[g.targets[e] as usize] == st.comm[v] {
                    *x += g.w(e);
                }
            }
        }
        for &v in order {
            let vi = v as usize;
            if !singleton[vi] {
                continue;
            }
            let c = st.comm[vi] as usize;
            let kv = g.k[vi];
            let tot_c = st.cs[c].tot;
            if ext[vi] < st.scale * kv * (tot_c - kv) {
                continue;
            }
            for e in g.offsets[vi]..g.offsets[vi + 1] {
                let u = g.targets[e] as usize;
                if st.comm[u] as usize != c {
                    continue;
                }
                let r = refined[u];
                if acc[r as usize] == 0.0 {
                    touched.push(r);
                }
                acc[r as usize] += g.w(e);
            }
            let mut best: Option<(u32, f64)> = None;
            for &r in &touched {
                let ri = r as usize;
                if r == v || ext[ri] < st.scale * rtot[ri] * (tot_c - rtot[ri]) {
                    continue;
                }
                let gain = acc[ri] - st.scale * kv * rtot[ri];
                if gain >= 0.0 && best.is_none_or(|(_, bg)| gain > bg) {
                    best = Some((r, gain));
                }
            }
            if let Some((r, _)) = best {
                let ri = r as usize;
                refined[vi] = r;
                rtot[ri] += kv;
                ext[ri] = ext[ri] + ext[vi] - 2.0 * acc[ri];
                singleton[vi] = false;
                singleton[ri] = false;
            }
            for &r in &touched {
                acc[r as usize] = 0.0;
            }
            touched.clear();
        }
        let p = Partition::from_dense(&refined, n);
        let count = p.count();
        (p.labels, count)
    }

    /// One node's best move written plainly (the weight to each neighbouring
    /// community summed in the order the communities are first met, the
    /// first best gain kept), the reference for [`State::best_moves`].
    fn best_move_plain(st: &State, v: u32) -> u32 {
        let g = st.g;
        let vi = v as usize;
        let (d, kv, sv) = (st.comm[vi], g.k[vi], u64::from(g.size[vi]));
        let mut sums: Vec<(u32, f64)> = Vec::new();
        for e in g.offsets[vi]..g.offsets[vi + 1] {
            let c = st.comm[g.targets[e] as usize];
            match sums.iter_mut().find(|(t, _)| *t == c) {
                Some((_, w)) => *w += g.w(e),
                None => sums.push((c, g.w(e))),
            }
        }
        let to_d = sums.iter().find(|(c, _)| *c == d).map_or(0.0, |s| s.1);
        let cs = &st.cs;
        let (mut best, mut best_gain) = (d, to_d - st.scale * kv * (cs[d as usize].tot - kv));
        for (c, w) in sums {
            let ci = c as usize;
            let lone_pair = cs[d as usize].members == 1 && cs[ci].members == 1 && c > d;
            if c == d || cs[ci].size + sv > st.max_size || lone_pair {
                continue;
            }
            let gain = w - st.scale * kv * cs[ci].tot;
            if gain > best_gain {
                (best, best_gain) = (c, gain);
            }
        }
        best
    }

    /// The gathered evaluation of a chunk's nodes (groups of [`GATHER`],
    /// degrees on both sides of [`SMALL_DEGREE`], weighted levels) gives each
    /// node the move the plain one-node evaluation gives it, from states
    /// with lone nodes and with merged communities, with and without a cap.
    #[test]
    fn gathered_best_moves_equal_the_plain_evaluation() {
        use crate::graph::generate::{Ba, Model};
        let g = Model::Ba(Ba { n: 2_000, m: 4 }).generate(9).unwrap().graph;
        let base = Level::from_graph(&g);
        let m2: f64 = base.k.iter().sum();
        assert!(base.offsets.windows(2).any(|w| w[1] - w[0] > SMALL_DEGREE));
        // Lone nodes, then communities from local moving; then a weighted level.
        let mut st = State::new(&base, (0..base.n() as u32).collect(), 1.0, m2, None);
        let singles = st.comm.clone();
        st.move_nodes(&permutation(base.n(), 1, 0));
        let merged = Partition::from_dense(&st.comm, base.n());
        // Pairs of nodes: a weighted level whose hubs have more than
        // SMALL_DEGREE neighbours.
        let pairs: Vec<u32> = (0..base.n() as u32).map(|v| v / 2).collect();
        let coarse = base.aggregate(&pairs, base.n().div_ceil(2));
        assert!(coarse
            .offsets
            .windows(2)
            .any(|w| w[1] - w[0] > SMALL_DEGREE));
        assert!(coarse.weights.iter().any(|&w| w != 1.0));
        let cases = [
            (&base, singles, None),
            (&base, merged.labels.clone(), None),
            (&base, merged.labels.clone(), Some(20)),
            (
                &coarse,
                (0..coarse.n() as u32).map(|c| c / 3).collect(),
                None,
            ),
        ];
        let mut moves = 0;
        for (level, comm, cap) in cases {
            let st = State::new(level, comm, 1.0, m2, cap);
            let nodes: Vec<u32> = permutation(level.n(), 2, 0);
            let want: Vec<u32> = nodes.iter().map(|&v| best_move_plain(&st, v)).collect();
            for len in [1, GATHER - 1, GATHER + 3, nodes.len()] {
                let mut got = vec![0u32; len.min(nodes.len())];
                st.best_moves(&nodes[..got.len()], &mut got);
                assert_eq!(got, want[..got.len()], "chunk of {len}");
            }
            moves += want
                .iter()
                .zip(&nodes)
                .filter(|(c, v)| **c != st.comm[**v as usize])
                .count();
        }
        assert!(moves > 100, "only {moves} nodes would move");
    }

    /// The first level as one sequential pass over the graph (its first
    /// form), the reference for the parallel blocks.
    fn from_graph_plain(g: &Graph) -> Level {
        let n = g.node_count();
        let (mut offsets, mut targets, mut weights) = (vec![0], Vec::new(), Vec::new());
        let (mut self_w, mut k) = (vec![0.0; n], vec![0.0; n]);
        for u in 0..n as u32 {
            let ui = u as usize;
            for (v, w) in g.out_edges(u) {
                if v == u {
                    self_w[ui] += w;
                    k[ui] += 2.0 * w;
                } else {
                    targets.push(v);
                    weights.push(w);
                    k[ui] += w;
                }
            }
            offsets.push(targets.len());
        }
        if weights.iter().all(|&w| w == 1.0) {
            weights.clear();
        }
        let size = vec![1; n];
        Level {
            offsets,
            targets,
            weights,
            self_w,
            k,
            size,
        }
    }

    /// Aggregation as one sequential pass with branches (its first form),
    /// the reference for the blocked, branch-free one.
    fn aggregate_plain(l: &Level, part: &[u32], count: usize) -> Level {
        let mut members = vec![Vec::new(); count];
        for (v, &c) in part.iter().enumerate() {
            members[c as usize].push(v);
        }
        let (mut acc, mut touched) = (vec![0.0f64; count], Vec::new());
        let mut out = Rows::default();
        for (c, m) in members.iter().enumerate() {
            let (mut inside, mut kc, mut size) = (0.0, 0.0, 0u32);
            for &v in m {
                inside += l.self_w[v];
                kc += l.k[v];
                size += l.size[v];
                for e in l.offsets[v]..l.offsets[v + 1] {
                    let d = part[l.targets[e] as usize] as usize;
                    if d == c {
                        inside += 0.5 * l.w(e);
                    } else {
                        if acc[d] == 0.0 {
                            touched.push(d);
                        }
                        acc[d] += l.w(e);
                    }
                }
            }
            out.lens.push(touched.len());
            for d in touched.drain(..) {
                out.targets.push(d as u32);
                out.weights.push(acc[d]);
                acc[d] = 0.0;
            }
            out.self_w.push(inside);
            out.k.push(kc);
            out.size.push(size);
        }
        Rows::concat(vec![out])
    }

    /// Two levels are equal, floats bit for bit.
    fn assert_same(a: &Level, b: &Level, what: &str) {
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(a.offsets, b.offsets, "{what}: offsets");
        assert_eq!(a.targets, b.targets, "{what}: targets");
        assert_eq!(bits(&a.weights), bits(&b.weights), "{what}: weights");
        assert_eq!(bits(&a.self_w), bits(&b.self_w), "{what}: self weights");
        assert_eq!(bits(&a.k), bits(&b.k), "{what}: strengths");
        assert_eq!(a.size, b.size, "{what}: sizes");
    }

    /// The first level built in parallel blocks, and aggregation without
    /// branches, equal their sequential forms bit for bit: on a weighted graph
    /// of several blocks with self-loops, on one whose weights all equal 1,
    /// and on an unweighted one, aggregated by a partition and again by a
    /// coarser one (weighted levels with self weights).
    #[test]
    fn parallel_first_level_and_aggregation_equal_their_plain_forms() {
        use crate::graph::{BuildOptions, GraphBuilder, SelfLoops};
        let n = 40_000u32;
        let build = |weight: &dyn Fn(u32) -> f64, loops: bool| {
            let mut b = GraphBuilder::new(n as usize, false, true);
            for u in 0..n {
                b.add_edge(u, (u + 1) % n, weight(u));
                b.add_edge(u, (u * 7 + 3) % n, weight(u + 1));
                if loops && u % 11 == 0 {
                    b.add_edge(u, u, weight(u + 2));
                }
            }
            let opts = BuildOptions {
                self_loops: SelfLoops::Keep,
                ..Default::default()
            };
            b.build(&opts).unwrap().0
        };
        let graphs = [
            build(&|u| 0.5 + f64::from(u % 13) / 7.0, true),
            build(&|_| 1.0, true),
            build(&|_| 1.0, false),
        ];
        for (i, g) in graphs.iter().enumerate() {
            let level = Level::from_graph(g);
            assert_same(&level, &from_graph_plain(g), &format!("graph {i}"));
            assert!(level.self_w.iter().any(|&w| w > 0.0) == (i < 2));
            let fine: Vec<u32> = (0..n).map(|v| (v * 31 % 997) / 3).collect();
            let fine = Partition::from_dense(&fine, n as usize);
            let one = level.aggregate(&fine.labels, fine.count());
            assert_same(
                &one,
                &aggregate_plain(&level, &fine.labels, fine.count()),
                "first",
            );
            let coarse: Vec<u32> = (0..one.n() as u32).map(|c| c / 5).collect();
            let coarse = Partition::from_dense(&coarse, one.n());
            let two = one.aggregate(&coarse.labels, coarse.count());
            let want = aggregate_plain(&one, &coarse.labels, coarse.count());
            assert_same(&two, &want, "second");
        }
    }

    /// Weights that sum past the largest finite number are refused, not
    /// partitioned on infinite strengths.
    #[test]
    fn weights_summing_to_infinity_are_refused() {
        use crate::graph::{BuildOptions, GraphBuilder};
        let mut b = GraphBuilder::new(3, false, true);
        b.add_edge(0, 1, 1e308);
        b.add_edge(1, 2, 1e308);
        let g = b.build(&BuildOptions::default()).unwrap().0;
        for leiden in [false, true] {
            let err = louvain(&g, &Params::default(), leiden).unwrap_err();
            assert!(
                err.to_string().contains("beyond the largest finite number"),
                "{err}"
            );
        }
    }

    /// The parallel refinement equals the sequential sweep on up to four
    /// levels (local moving from singletons, then aggregation on the refined
    /// partition, so the later levels are weighted) of two graphs, planted
    /// blocks and Barabási–Albert with hubs, on 1 and 2 threads.
    #[test]
    fn parallel_refinement_equals_the_sequential_sweep() {
        use crate::graph::generate::{Ba, Model, Sbm};
        let graphs = [
            Model::Sbm(Sbm {
                n: Some(3_000),
                blocks: Some(30),
                mean_degree: Some(12.0),
                mu: Some(0.3),
                ..Default::default()
            }),
            Model::Ba(Ba { n: 3_000, m: 3 }),
        ]
        .map(|m| m.generate(5).unwrap().graph);
        let mut compared = 0;
        for g in &graphs {
            let base = Level::from_graph(g);
            let m2: f64 = base.k.iter().sum();
            let mut level = Level::from_graph(g);
            for lvl in 0..4 {
                let order = permutation(level.n(), 3, lvl);
                let mut st = State::new(&level, (0..level.n() as u32).collect(), 1.0, m2, None);
                st.move_nodes(&order);
                let comm = Partition::from_dense(&st.comm, level.n());
                let st = State::new(&level, comm.labels.clone(), 1.0, m2, None);
                let order = permutation(level.n(), 4, lvl);
                let want = refine_sequential(&st, &order);
                for threads in [1, 2] {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .unwrap();
                    assert_eq!(pool.install(|| st.refine(&order, comm.count())), want);
                }
                compared += 1;
                if want.1 == level.n() {
                    break;
                }
                let next = level.aggregate(&want.0, want.1);
                level = next;
            }
        }
        assert!(compared >= 6, "only {compared} levels compared");
    }
}
