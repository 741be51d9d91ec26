//! petgraph's graph traits on the CSR [`Graph`], so petgraph's algorithms
//! (Tarjan's strongly connected components, DFS/BFS, …) run on it without a
//! copy. Nodes are the dense `u32` ids; neighbours are out-neighbours (both
//! directions of an undirected edge are stored, so undirected graphs work as
//! they are).
//!
//! ```
//! use spillover::graph::{BuildOptions, GraphBuilder};
//!
//! // 0 → 1 → 2 → 0 is one strongly connected component; 3 hangs off it.
//! let mut b = GraphBuilder::new(4, true, false);
//! for (u, v) in [(0, 1), (1, 2), (2, 0), (2, 3)] {
//!     b.add_edge(u, v, 1.0);
//! }
//! let (g, _) = b.build(&BuildOptions::default())?;
//! let sccs = petgraph::algo::tarjan_scc(&g);
//! assert_eq!(sccs.len(), 2);
//! # Ok::<(), spillover::Error>(())
//! ```

use super::Graph;
use petgraph::visit::{GraphBase, IntoNeighbors, IntoNodeIdentifiers, NodeCount, NodeIndexable};

impl GraphBase for Graph {
    type NodeId = u32;
    type EdgeId = (u32, u32);
}

impl<'a> IntoNeighbors for &'a Graph {
    type Neighbors = std::iter::Copied<std::slice::Iter<'a, u32>>;
    fn neighbors(self, a: u32) -> Self::Neighbors {
        self.out_neighbors(a).iter().copied()
    }
}

impl IntoNodeIdentifiers for &Graph {
    type NodeIdentifiers = std::ops::Range<u32>;
    fn node_identifiers(self) -> Self::NodeIdentifiers {
        0..self.node_count() as u32
    }
}

impl NodeIndexable for &Graph {
    fn node_bound(&self) -> usize {
        self.node_count()
    }
    fn to_index(&self, a: u32) -> usize {
        a as usize
    }
    fn from_index(&self, i: usize) -> u32 {
        i as u32
    }
}

impl NodeCount for &Graph {
    fn node_count(&self) -> usize {
        Graph::node_count(self)
    }
}
