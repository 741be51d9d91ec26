//! Property tests (issue 9): invariants of the graph builder and of
//! partition canonicalization, on random inputs.

use proptest::prelude::*;
use spillover::graph::{BuildOptions, GraphBuilder};
use spillover::partition::Partition;
use std::collections::BTreeMap;

/// Random edge lists: n nodes, edges with small integer weights (exact sums).
fn edge_lists() -> impl Strategy<Value = (usize, Vec<(u32, u32, u32)>, bool)> {
    (1usize..25).prop_flat_map(|n| {
        (
            Just(n),
            proptest::collection::vec((0..n as u32, 0..n as u32, 1u32..5), 0..80),
            any::<bool>(),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The built graph is the edge list with self-loops dropped and
    /// duplicates summed: same pairs, same total weights, rows sorted without
    /// repeats, out- and in-adjacency mirror each other, and the report counts
    /// what was dropped and merged.
    #[test]
    fn graph_builder_invariants((n, edges, directed) in edge_lists()) {
        let mut b = GraphBuilder::new(n, directed, true);
        for &(u, v, w) in &edges {
            b.add_edge(u, v, w as f64);
        }
        let (g, report) = b.build(&BuildOptions::default()).unwrap();
        // What the graph should be.
        let mut expect: BTreeMap<(u32, u32), f64> = BTreeMap::new();
        let mut loops = 0;
        for &(u, v, w) in &edges {
            if u == v {
                loops += 1;
                continue;
            }
            let key = if directed || u < v { (u, v) } else { (v, u) };
            *expect.entry(key).or_insert(0.0) += w as f64;
        }
        prop_assert_eq!(g.node_count(), n);
        prop_assert_eq!(g.edge_count(), expect.len());
        prop_assert_eq!(report.input_edges, edges.len());
        prop_assert_eq!(report.self_loops_dropped, loops);
        prop_assert_eq!(report.duplicates_merged, edges.len() - loops - expect.len());
        let mut got: BTreeMap<(u32, u32), f64> = BTreeMap::new();
        for u in 0..n as u32 {
            let row = g.out_neighbors(u);
            prop_assert!(row.windows(2).all(|w| w[0] < w[1]), "row {u} sorted, no repeats: {row:?}");
            for (v, w) in g.out_edges(u) {
                prop_assert!(v != u, "self-loop kept");
                // The mirror entry exists with the same weight.
                let back: Vec<f64> = if directed {
                    g.in_edges(v).filter(|&(x, _)| x == u).map(|(_, w)| w).collect()
                } else {
                    g.out_edges(v).filter(|&(x, _)| x == u).map(|(_, w)| w).collect()
                };
                prop_assert_eq!(back, vec![w]);
                if directed || u < v {
                    got.insert((u, v), w);
                }
            }
        }
        prop_assert_eq!(got, expect);
        let total: f64 = edges.iter().filter(|e| e.0 != e.1).map(|e| e.2 as f64).sum();
        prop_assert_eq!(g.total_weight(), total);
    }

    /// Partitions are canonical: dense ids numbered by each cluster's smallest
    /// node, the same for any relabelling of the clusters, and the same from
    /// hashed and dense labels.
    #[test]
    fn partition_canonicalization(
        labels in proptest::collection::vec(0u32..12, 1..60),
        shift in 0u32..1000,
        flip in any::<bool>(),
    ) {
        let p = Partition::from_labels(&labels);
        let ids = p.labels();
        // Dense and numbered in order of first appearance.
        let mut next = 0u32;
        let mut seen = BTreeMap::new();
        for (&raw, &id) in labels.iter().zip(ids) {
            let e = *seen.entry(raw).or_insert_with(|| { next += 1; next - 1 });
            prop_assert_eq!(e, id);
        }
        prop_assert_eq!(p.count(), seen.len());
        // Same nodes together: a relabelling (shift, reversal) gives the same partition.
        let relabelled: Vec<u32> = labels
            .iter()
            .map(|&l| if flip { 1_000_000 - l } else { l + shift })
            .collect();
        prop_assert_eq!(&Partition::from_labels(&relabelled), &p);
        let names: Vec<String> = labels.iter().map(|l| format!("c{l}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        prop_assert_eq!(&Partition::from_labels(&refs), &p);
        prop_assert_eq!(&Partition::from_dense(&labels, 12), &p);
    }
}

/// Random graphs with kept self-loops, clusters and arms.
#[allow(clippy::type_complexity)]
fn exposure_cases(
) -> impl Strategy<Value = (usize, Vec<(u32, u32, u32)>, bool, bool, Vec<u32>, Vec<u8>)> {
    (4usize..30).prop_flat_map(|n| {
        (
            Just(n),
            proptest::collection::vec((0..n as u32, 0..n as u32, 1u32..5), 1..120),
            any::<bool>(),
            any::<bool>(),
            proptest::collection::vec(0u32..3, n),
            proptest::collection::vec(0u8..2, n),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// One exposure definition (issue 11): the per-replicate operator, by
    /// node and by cluster, equals `model::exposure::neighbour_arms` (other
    /// in-neighbours only, self-loops skipped) on graphs that keep self-loops.
    #[test]
    fn exposure_operator_equals_the_one_exposure_function(
        (n, edges, directed, weighted, mut labels, z) in exposure_cases()
    ) {
        use spillover::data::design::{Design, DesignSpec, PartitionMethod, PartitionSpec};
        use spillover::data::exposure::ExposureOp;
        use spillover::graph::SelfLoops;
        use spillover::model::{exposure::neighbour_arms, OutcomeSpec, Population};
        let mut b = GraphBuilder::new(n, directed, weighted);
        for &(u, v, w) in &edges {
            b.add_edge(u, v, w as f64);
        }
        let opts = BuildOptions { self_loops: SelfLoops::Keep, ..Default::default() };
        let (g, _) = b.build(&opts).unwrap();
        labels[0] = 0;
        labels[1] = 1; // at least two clusters
        let part = Partition::from_labels(&labels);
        let pop = Population::draw(&OutcomeSpec::default(), &g, part.clone(), 1).unwrap();
        let spec = DesignSpec::cluster("c", PartitionSpec::new(PartitionMethod::Planted));
        let design = Design::new(spec, Some(part.clone()), &vec![0.0; n]).unwrap();
        // Cluster arms from the node arms of each cluster's first member.
        let mut zc = vec![0u8; part.count()];
        for (i, &c) in part.labels().iter().enumerate().rev() {
            zc[c as usize] = z[i];
        }
        let zn: Vec<u8> = part.labels().iter().map(|&c| zc[c as usize]).collect();
        let ops = [
            ExposureOp::new(&g, &pop, &design),
            ExposureOp::ByNode { self_loops: g.self_loop_count() > 0 },
        ];
        for op in &ops {
            let mut e = vec![0.0; n];
            op.apply(&g, &pop, &zn, &zc, &mut e);
            for (i, &ei) in e.iter().enumerate() {
                let want = neighbour_arms(&g, &zn, i as u32).share();
                // The by-cluster operator stores shares in f32.
                prop_assert!((ei - want).abs() < 1e-6, "node {i}: {ei} vs {want}");
            }
        }
        // Issue 14: a batch of assignments (this one and variations of it)
        // from one sweep equals each applied alone, bit for bit.
        let zcs: Vec<Vec<u8>> = (0..8u32)
            .map(|r| zc.iter().enumerate().map(|(c, &a)| a ^ u8::from((c as u32 + r).is_multiple_of(r + 2))).collect())
            .collect();
        let zns: Vec<Vec<u8>> = zcs
            .iter()
            .map(|zc| part.labels().iter().map(|&c| zc[c as usize]).collect())
            .collect();
        for op in &ops {
            // All 8 lanes: past `max_lanes` (by node with weights or
            // self-loops: 0) the batch is applied lane by lane.
            let lanes = zcs.len();
            prop_assert_eq!(op.max_lanes(&g) == 0, matches!(op, ExposureOp::ByNode { .. }) && (weighted || g.self_loop_count() > 0));
            let zr: Vec<&[u8]> = zns[..lanes].iter().map(|z| z.as_slice()).collect();
            let zcr: Vec<&[u8]> = zcs[..lanes].iter().map(|z| z.as_slice()).collect();
            let mut batch = spillover::data::exposure::BatchCounts::default();
            op.apply_batch(&g, &pop, &zr, &zcr, &mut batch);
            for lane in 0..lanes {
                let (mut want, mut got) = (vec![0.0; n], vec![0.0; n]);
                op.apply(&g, &pop, zr[lane], zcr[lane], &mut want);
                batch.exposure(lane, &pop.inv_in_strength, &mut got);
                let same = want.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits());
                prop_assert!(same, "lane {}: {:?} vs {:?}", lane, want, got);
            }
        }
        // A user whose only in-edge is a self-loop is isolated.
        for i in 0..n as u32 {
            if neighbour_arms(&g, &zn, i).count == 0 {
                prop_assert_eq!(pop.inv_in_strength[i as usize], 0.0);
            }
        }
    }
}

/// Unweighted graphs (some with a hub of more than 255 in-neighbours, past
/// one byte lane) and a batch of 1 to 64 random assignments.
/// (nodes, arcs, directed, hub leaves, assignments).
type BatchCase = (usize, Vec<(u32, u32)>, bool, usize, Vec<Vec<u8>>);

fn batch_cases() -> impl Strategy<Value = BatchCase> {
    (2usize..40, 0usize..400).prop_flat_map(|(n, hub)| {
        let total = n + hub;
        (
            Just(n),
            proptest::collection::vec((0..total as u32, 0..total as u32), 0..150),
            any::<bool>(),
            Just(hub),
            proptest::collection::vec(proptest::collection::vec(0u8..2, total), 1..=64),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Issue 14: one shared sweep for a batch of assignments gives every
    /// assignment's exposures exactly (bit for bit) as the by-node operator
    /// applied to each alone.
    #[test]
    fn batched_exposure_counts_equal_one_sweep_per_assignment(
        (n, edges, directed, hub, zs) in batch_cases()
    ) {
        use spillover::data::design::{Design, DesignSpec};
        use spillover::data::exposure::{BatchCounts, ExposureOp};
        use spillover::model::{OutcomeSpec, Population};
        let total = n + hub;
        let mut b = GraphBuilder::new(total, directed, false);
        for &(u, v) in &edges {
            b.add_edge(u, v, 1.0);
        }
        // Node 0 hears from every hub leaf (in-degree `hub`, past 255 at times).
        for leaf in n..total {
            b.add_edge(leaf as u32, 0, 1.0);
        }
        let (g, _) = b.build(&BuildOptions::default()).unwrap();
        let part = Partition::from_labels(&vec![0u32; total]);
        let pop = Population::draw(&OutcomeSpec::default(), &g, part, 1).unwrap();
        let design = Design::new(DesignSpec::user("u"), None, &vec![0.0; total]).unwrap();
        let op = ExposureOp::new(&g, &pop, &design);
        prop_assert_eq!(op.max_lanes(&g), 64);
        let refs: Vec<&[u8]> = zs.iter().map(|z| z.as_slice()).collect();
        let mut batch = BatchCounts::default();
        op.apply_batch(&g, &pop, &refs, &vec![&[][..]; refs.len()], &mut batch);
        prop_assert_eq!(batch.lanes(), zs.len());
        for (lane, z) in zs.iter().enumerate() {
            let (mut want, mut got) = (vec![0.0; total], vec![0.0; total]);
            op.apply(&g, &pop, z, &[], &mut want);
            batch.exposure(lane, &pop.inv_in_strength, &mut got);
            for i in 0..total {
                prop_assert_eq!(want[i].to_bits(), got[i].to_bits(), "lane {} node {}", lane, i);
            }
        }
    }
}

/// Issue 14: a hub with more in-neighbours than 16 bits count (the wide
/// counters) gets its exact treated count from the batched sweep.
#[test]
fn batched_exposure_counts_a_hub_past_sixteen_bits() {
    use spillover::data::design::{Design, DesignSpec};
    use spillover::data::exposure::{BatchCounts, ExposureOp};
    use spillover::model::{OutcomeSpec, Population};
    let n = 70_001usize;
    let mut b = GraphBuilder::new(n, true, false);
    for leaf in 1..n as u32 {
        b.add_edge(leaf, 0, 1.0);
        b.add_edge(0, leaf, 1.0);
    }
    let (g, _) = b.build(&BuildOptions::default()).unwrap();
    let pop = Population::draw(
        &OutcomeSpec::default(),
        &g,
        Partition::from_labels(&vec![0u32; n]),
        1,
    )
    .unwrap();
    let design = Design::new(DesignSpec::user("u"), None, &vec![0.0; n]).unwrap();
    let op = ExposureOp::new(&g, &pop, &design);
    // Lane r treats every user whose id is a multiple of r + 1.
    let zs: Vec<Vec<u8>> = (0..9)
        .map(|r| (0..n).map(|i| u8::from(i % (r + 1) == 0)).collect())
        .collect();
    let refs: Vec<&[u8]> = zs.iter().map(|z| z.as_slice()).collect();
    let mut batch = BatchCounts::default();
    op.apply_batch(&g, &pop, &refs, &vec![&[][..]; refs.len()], &mut batch);
    for (r, z) in zs.iter().enumerate() {
        let mut e = vec![0.0; n];
        batch.exposure(r, &pop.inv_in_strength, &mut e);
        let treated_leaves = (1..n).filter(|i| i % (r + 1) == 0).count();
        assert_eq!(e[0], treated_leaves as f64 * pop.inv_in_strength[0]);
        let mut want = vec![0.0; n];
        op.apply(&g, &pop, z, &[], &mut want);
        assert_eq!(e, want);
    }
}
