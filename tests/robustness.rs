//! Issue 9: what used to abort, panic or silently succeed on real-world input
//! is refused up front with a clear error, or propagated.

mod common;

use spillover::design::{
    Assignment, Design, DesignSpec, PartitionMethod, PartitionSpec, StrataBy, Unit,
};
use spillover::graph::generate::{Model, Sbm};
use spillover::partition::Partition;

/// A partitioner failure while redrawing the partition of a randomized graph
/// cluster design is an error, not a silent reuse of the first partition.
#[test]
fn redraw_partition_errors_are_propagated() {
    let gen = Model::Sbm(Sbm {
        n: Some(200),
        blocks: Some(10),
        mean_degree: Some(6.0),
        mu: Some(0.2),
        ..Default::default()
    })
    .generate(1)
    .unwrap();
    let g = gen.graph;
    let mut p = PartitionSpec::new(PartitionMethod::Louvain);
    p.redraw = true;
    let spec = DesignSpec {
        name: "rgcr".into(),
        unit: Unit::Cluster,
        assignment: Assignment::Bernoulli,
        treated_share: 0.5,
        partition: Some(p),
        strata_by: StrataBy::Size,
        strata: 1,
        saturations: None,
        saturation_shares: None,
    };
    let x = vec![0.0; g.node_count()];
    let first = Partition::from_labels(gen.communities.as_ref().unwrap());
    let mut d = Design::new(spec, Some(first), &x).unwrap();
    let mut r = spillover::rng::stream(1, &[0]);
    let (mut zc, mut z) = (Vec::new(), vec![0u8; g.node_count()]);
    assert!(d.draw_full(&g, &mut r, &mut zc, &mut z).unwrap().is_some());
    // A partitioner that fails (here: an invalid resolution slipped past validation).
    d.spec.partition.as_mut().unwrap().resolution = -1.0;
    let err = d.draw_full(&g, &mut r, &mut zc, &mut z).unwrap_err();
    assert!(err.to_string().contains("redrawing its partition"), "{err}");
}
