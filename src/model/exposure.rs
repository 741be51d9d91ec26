//! The one definition of a user's exposure: the treated share of the weight
//! of their *other* in-neighbours.
//!
//! Self-loops never count: a user's own arm is the direct effect τ_i·z_i,
//! so `e_i` reads only the arms of neighbours j ≠ i, and a user whose only
//! in-edge is a self-loop is isolated (e_i = 0, global effect τ_i). Every
//! consumer (the outcome model's per-replicate operator
//! [`crate::data::exposure::ExposureOp`], the exposure conditions of HT and
//! Hájek, the auxiliary draws that estimate pair probabilities, the
//! saturation design's expected exposures, the global effect) uses this
//! function or is tested equal to it.

use crate::graph::Graph;

/// What user `i` sees of its in-neighbours' arms (self-loops skipped).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct NeighbourArms {
    /// Weight of treated in-neighbours.
    pub treated_weight: f64,
    /// Weight of all in-neighbours (the in-strength).
    pub weight: f64,
    /// Number of treated in-neighbours.
    pub treated: u32,
    /// Number of in-neighbours.
    pub count: u32,
}

impl NeighbourArms {
    /// The exposure share e_i: treated weight over weight (0 without in-neighbours).
    pub fn share(&self) -> f64 {
        if self.weight > 0.0 {
            self.treated_weight / self.weight
        } else {
            0.0
        }
    }
}

/// User `i`'s in-neighbours' arms under node arms `z` (1 = treated).
///
/// ```
/// use spillover::graph::{BuildOptions, GraphBuilder, SelfLoops};
/// use spillover::model::exposure::neighbour_arms;
///
/// // 0 ← 1, 0 ← 2 and a self-loop on 0, kept.
/// let mut b = GraphBuilder::new(3, true, false);
/// for (u, v) in [(1, 0), (2, 0), (0, 0)] {
///     b.add_edge(u, v, 1.0);
/// }
/// let opts = BuildOptions { self_loops: SelfLoops::Keep, ..Default::default() };
/// let (g, _) = b.build(&opts)?;
/// let a = neighbour_arms(&g, &[1, 1, 0], 0);
/// assert_eq!((a.treated, a.count), (1, 2)); // the self-loop is not a neighbour
/// assert_eq!(a.share(), 0.5);
/// # Ok::<(), spillover::Error>(())
/// ```
///
/// # Complexity
/// O(in-degree of i).
pub fn neighbour_arms(g: &Graph, z: &[u8], i: u32) -> NeighbourArms {
    let mut a = NeighbourArms::default();
    for (j, w) in g.in_edges(i) {
        if j == i {
            continue;
        }
        a.weight += w;
        a.count += 1;
        if z[j as usize] == 1 {
            a.treated_weight += w;
            a.treated += 1;
        }
    }
    a
}

/// User `i`'s in-strength without self-loops (the weight [`neighbour_arms`]
/// divides by).
pub fn in_strength(g: &Graph, i: u32) -> f64 {
    g.in_edges(i).filter(|&(j, _)| j != i).map(|(_, w)| w).sum()
}
