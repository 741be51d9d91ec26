//! The design sweep on a planted partition: RMSE falls then rises with the
//! number of clusters (bias grows with the cut share, variance with cluster size).

use spillover::diagnosis::sweep::{self, Parameter, SweepSpec};
use spillover::scenario;
use std::path::Path;

const SCENARIO: &str = r#"
seed = 9
replicates = 800
[graph]
model = "sbm"
n = 20000
blocks = 200
mean_degree = 20.0
mu = 0.2
[outcome]
mean = 10.0
icc = 0.05
direct_effect = 0.05
spillover = 0.05
[[design]]
name = "user"
[[design]]
name = "metis"
unit = "cluster"
partition = { method = "balanced", parts = 100 }
[analysis]
estimators = ["dm-cr2"]
"#;

#[test]
fn rmse_falls_then_rises_with_cluster_size() {
    let s = scenario::parse(SCENARIO, Path::new("sweep.toml")).unwrap();
    let p = scenario::prepare(&s).unwrap();
    let spec = SweepSpec {
        parameter: Parameter::Parts,
        from: 4.0,
        to: 2000.0,
        steps: 8,
        design: None,
        estimator: None,
    };
    let (points, skipped) = sweep::run(s.seed, &s.dir, &p, &spec, &|| {}).unwrap();
    // METIS may miss its 3 % balance with very few nodes per part: such values are skipped, and said.
    assert!(
        points.len() + skipped.len() == 8 && points.len() >= 6,
        "{skipped:?}"
    );
    let best = sweep::best(&points).unwrap();
    let at = points.iter().position(|q| std::ptr::eq(q, best)).unwrap();
    for q in &points {
        eprintln!(
            "{} clusters: bias {:.4}, sd {:.4}, rmse {:.4}",
            q.clusters, q.estimator.bias, q.estimator.sd, q.estimator.rmse
        );
    }
    assert!(
        at > 0 && at < points.len() - 1,
        "lowest RMSE at an end ({} clusters)",
        best.clusters
    );
    // Both ends are worse by more than 2 Monte Carlo SEs (SE of an RMSE ≈ RMSE/sqrt(2R)).
    // At 4 clusters the gap is about 0.004 (RMSE 0.038 against 0.034): 200
    // replicates (2 SE ≈ 0.005) could not resolve it (issue 14's generator
    // tried on a branch missed it), 800 (2 SE ≈ 0.0026) do, with either.
    let se = |r: f64| r / (2.0 * s.replicates as f64).sqrt();
    for end in [&points[0], &points[points.len() - 1]] {
        let gap = end.estimator.rmse - best.estimator.rmse;
        assert!(
            gap > 2.0 * (se(end.estimator.rmse).powi(2) + se(best.estimator.rmse).powi(2)).sqrt(),
            "{} vs {}",
            end.estimator.rmse,
            best.estimator.rmse
        );
    }
    // Bias grows with the number of clusters (more cut edges).
    assert!(points[0].estimator.bias.abs() < points[points.len() - 1].estimator.bias.abs());
}

/// Issue 10: granularities that give the same partition are said to, not
/// simulated again, and not offered as separate points (a Louvain resolution
/// sweep on strong planted communities settles on the planted partition).
#[test]
fn repeated_partitions_are_flagged_not_replotted() {
    let toml = r#"
seed = 4
replicates = 20
[graph]
model = "sbm"
n = 2000
blocks = 20
p_in = 0.3
p_out = 0.0005
[[design]]
name = "user"
[[design]]
name = "louvain"
unit = "cluster"
partition = { method = "louvain" }
[analysis]
estimators = ["dm-cr2"]
"#;
    let s = scenario::parse(toml, Path::new("sweep.toml")).unwrap();
    let p = scenario::prepare(&s).unwrap();
    let spec = SweepSpec {
        parameter: Parameter::Resolution,
        from: 1.0,
        to: 4.0,
        steps: 4,
        design: None,
        estimator: None,
    };
    let (points, _) = sweep::run(s.seed, &s.dir, &p, &spec, &|| {}).unwrap();
    assert_eq!(points.len(), 4);
    for q in &points {
        eprintln!(
            "{} → {} clusters, same as {:?}",
            q.value, q.clusters, q.same_partition_as
        );
    }
    assert!(points[0].same_partition_as.is_none());
    let repeated: Vec<_> = points
        .iter()
        .filter(|q| q.same_partition_as.is_some())
        .collect();
    assert!(
        !repeated.is_empty(),
        "every resolution should find the 20 planted blocks"
    );
    for q in repeated {
        assert_eq!(q.same_partition_as, Some(1.0));
        assert_eq!(q.clusters, points[0].clusters);
    }
    assert!(std::ptr::eq(sweep::best(&points).unwrap(), &points[0]));
}
