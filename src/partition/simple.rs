//! Baseline partitioners: connected components, label propagation, random
//! equal-size clusters, and clusters read from a file.

use super::Partition;
use crate::error::{Error, Result};
use crate::graph::stats::component_labels;
use crate::graph::Graph;
use crate::rng::{self, purpose};
use rand::RngExt;
use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

/// Connected components (weak for directed graphs).
pub fn components(g: &Graph) -> Partition {
    Partition::from_dense(&component_labels(g), g.node_count().max(1))
}

/// Asynchronous label propagation (Raghavan et al. 2007): nodes in a seeded
/// random order adopt the label with the largest total edge weight among their
/// neighbours (ties broken at random, keeping the current label if it is among
/// the best), until no label changes or 100 sweeps.
pub fn label_propagation(g: &Graph, seed: u64) -> Partition {
    let n = g.node_count();
    let mut label: Vec<u32> = (0..n as u32).collect();
    let mut acc = vec![0.0f64; n];
    let mut touched: Vec<u32> = Vec::new();
    let mut order: Vec<u32> = (0..n as u32).collect();
    for sweep in 0..100u64 {
        let mut r = rng::stream(seed, &[purpose::PARTITION, 2, sweep]);
        rng::shuffle(&mut order, &mut r);
        let mut changed = false;
        for &u in &order {
            for (v, w) in g.out_edges(u) {
                if v == u {
                    continue;
                }
                let l = label[v as usize];
                if acc[l as usize] == 0.0 {
                    touched.push(l);
                }
                acc[l as usize] += w;
            }
            if touched.is_empty() {
                continue;
            }
            let best = touched
                .iter()
                .map(|&l| acc[l as usize])
                .fold(f64::MIN, f64::max);
            let cur = label[u as usize];
            if acc[cur as usize] < best {
                let ties: Vec<u32> = touched
                    .iter()
                    .copied()
                    .filter(|&l| acc[l as usize] == best)
                    .collect();
                label[u as usize] = ties[r.random_range(0..ties.len())];
                changed = true;
            }
            for &l in &touched {
                acc[l as usize] = 0.0;
            }
            touched.clear();
        }
        if !changed {
            break;
        }
    }
    Partition::from_dense(&label, n.max(1))
}

/// `parts` clusters of equal size (±1) on a seeded random permutation.
pub fn random(n: usize, parts: usize, seed: u64) -> Result<Partition> {
    check_parts(n, parts)?;
    let mut r = rng::stream(seed, &[purpose::PARTITION, 3]);
    let order = rng::permutation(n, &mut r);
    let mut label = vec![0u32; n];
    for (pos, &u) in order.iter().enumerate() {
        label[u as usize] = (pos % parts) as u32;
    }
    Ok(Partition::from_dense(&label, parts))
}

/// Refuse k outside 1..=n.
pub fn check_parts(n: usize, parts: usize) -> Result<()> {
    if parts == 0 || parts > n {
        return Err(Error::input(format!(
            "the number of parts must be between 1 and the node count ({n}), got {parts}"
        )));
    }
    Ok(())
}

/// Read clusters from a file of `node cluster` lines (whitespace, tab or comma
/// separated; `#` comments), naming nodes by the graph's labels. Every node must
/// appear exactly once and every named node must exist.
pub fn from_file(g: &Graph, path: &Path) -> Result<Partition> {
    let file = std::fs::File::open(path).map_err(|e| Error::read(path, e))?;
    let index: HashMap<String, u32> = (0..g.node_count() as u32)
        .map(|u| (g.label(u).into_owned(), u))
        .collect();
    let mut cluster: Vec<Option<String>> = vec![None; g.node_count()];
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line_no = i + 1;
        let line = line.map_err(|e| Error::parse(path, line_no, format!("cannot read: {e}")))?;
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with('%') {
            continue;
        }
        let f: Vec<&str> = t
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|s| !s.is_empty())
            .collect();
        if f.len() != 2 {
            return Err(Error::parse(
                path,
                line_no,
                format!("expected 2 columns (node, cluster), found {}", f.len()),
            ));
        }
        let Some(&u) = index.get(f[0]) else {
            if line_no == 1 || cluster.iter().all(Option::is_none) && f[1].parse::<f64>().is_err() {
                continue; // a header line
            }
            return Err(Error::parse(
                path,
                line_no,
                format!("node {:?} is not in the graph", f[0]),
            ));
        };
        if cluster[u as usize].is_some() {
            return Err(Error::parse(
                path,
                line_no,
                format!("node {:?} is given a cluster twice", f[0]),
            ));
        }
        cluster[u as usize] = Some(f[1].to_string());
    }
    let missing: Vec<String> = (0..g.node_count())
        .filter(|&u| cluster[u].is_none())
        .take(5)
        .map(|u| g.label(u as u32).into_owned())
        .collect();
    if !missing.is_empty() {
        let total = cluster.iter().filter(|c| c.is_none()).count();
        return Err(Error::input(format!(
            "{}: {total} nodes of the graph have no cluster (first: {})",
            path.display(),
            missing.join(", ")
        )));
    }
    let names: Vec<String> = cluster.into_iter().map(|c| c.unwrap_or_default()).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    Ok(Partition::from_labels(&refs))
}
