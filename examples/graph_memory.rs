//! Measures resident memory of a 1,000,000-node, 10,000,000-edge undirected
//! weighted graph (the budget in BENCHMARKS.md). Linux only: reads /proc/self/status.
//!
//! `cargo run --release --example graph_memory`

use rand::RngExt;
use spillover::graph::{BuildOptions, GraphBuilder};

fn status(key: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "n/a".into())
}

fn main() {
    let (n, m) = (1_000_000u32, 10_000_000usize);
    let mut r = spillover::rng::stream(1, &[99]);
    let mut b = GraphBuilder::new(n as usize, false, true);
    b.reserve(m);
    let mut added = 0;
    while added < m {
        let u = r.random_range(0..n);
        let v = r.random_range(0..n);
        if u != v {
            b.add_edge(u, v, r.random_range(0.5..5.0));
            added += 1;
        }
    }
    println!("edge list held by the builder: RSS {}", status("VmRSS"));
    let t = std::time::Instant::now();
    let (g, report) = b.build(&BuildOptions::default()).expect("valid");
    println!(
        "built in {:.2?}: {} nodes, {} edges ({} duplicates merged)",
        t.elapsed(),
        g.node_count(),
        g.edge_count(),
        report.duplicates_merged
    );
    println!("graph heap bytes: {:.1} MB", g.heap_bytes() as f64 / 1e6);
    println!(
        "resident now: {}; peak resident (VmHWM): {}",
        status("VmRSS"),
        status("VmHWM")
    );
}
