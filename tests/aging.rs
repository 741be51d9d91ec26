//! Clusters that age (issue 12): on the real CollegeMsg message log, clusters
//! built on the first half of the messages cut more of the second half, and
//! the second half's contamination drives the difference-in-means bias
//! exactly as contamination does in the non-temporal model.

mod common;

fn scenario(split: &str, replicates: usize) -> String {
    let path = common::shared_data("CollegeMsg.txt");
    format!(
        r#"
seed = 4
replicates = {replicates}
[graph]
path = "{}"
directed = true
third_column = "timestamp"
{split}
[outcome]
direct_effect = 0.1
spillover = 0.15
[[design]]
name = "user"
[[design]]
name = "louvain"
unit = "cluster"
partition = {{ method = "louvain", min_size = 10 }}
[[design]]
name = "metis-40"
unit = "cluster"
partition = {{ method = "balanced", parts = 40 }}
[analysis]
estimators = ["dm-naive"]
"#,
        path.display()
    )
}

#[test]
fn clusters_built_before_the_split_decay_and_contamination_drives_the_bias() {
    let (p, r) = common::diagnose_toml(&scenario("split_at_share = 0.5", 300));
    let before = p.before.as_ref().expect("a graph before the split");
    assert_eq!(before.node_count(), p.graph.node_count());
    for d in &r.designs {
        let a = d.aging.as_ref().expect("aging");
        let e = &d.estimators[0];
        // The second half's contamination gives the DM's bias (linear in means).
        common::within_4sd(
            &format!("{}: DM bias vs the bias its contamination implies", d.name),
            e.bias,
            a.implied_bias_after,
            e.bias_mc_se,
        );
        assert_eq!(a.cut_edge_share_after, d.cut_edge_share);
        if d.name == "louvain" {
            assert!(
                a.cut_edge_share_after >= a.cut_edge_share_before,
                "louvain: cut {} after vs {} before",
                a.cut_edge_share_after,
                a.cut_edge_share_before
            );
            assert!(
                a.decay_bias < 0.0,
                "decayed clusters add bias: {}",
                a.decay_bias
            );
        }
    }
    let table = spillover::report::table(&r);
    assert!(table.contains("clusters that age"), "{table}");
    // The non-temporal model: the same relation on the whole log.
    let (mut q, whole) = common::diagnose_toml(&scenario("", 300));
    q.before = Some(q.graph.clone());
    for (i, d) in whole.designs.iter().enumerate() {
        let a = spillover::diagnosis::aging::aging(&q, i).unwrap().unwrap();
        assert_eq!(a.decay_bias, 0.0);
        let e = &d.estimators[0];
        common::within_4sd(
            &format!("{} (whole log): DM bias vs its contamination", d.name),
            e.bias,
            a.implied_bias_after,
            e.bias_mc_se,
        );
    }
    // split_at with the time a share chose gives the same run.
    let time = r.graph.source.split("after time ").nth(1).unwrap();
    let time: f64 = time.split(' ').next().unwrap().parse().unwrap();
    let (_, at) = common::diagnose_toml(&scenario(&format!("split_at = {time}"), 300));
    assert_eq!(
        serde_json::to_string(&at.designs).unwrap(),
        serde_json::to_string(&r.designs).unwrap()
    );
}

#[test]
fn bad_splits_are_refused_at_their_line() {
    let parse = |split: &str| {
        spillover::scenario::parse(&scenario(split, 10), std::path::Path::new("s.toml"))
            .and_then(|s| spillover::scenario::prepare(&s).map(|_| ()))
            .unwrap_err()
            .to_string()
    };
    let e = parse("split_at = 1\nsplit_at_share = 0.5");
    assert!(e.contains("s.toml:9:") && e.contains("not both"), "{e}");
    let e = parse("split_at_share = 1.5");
    assert!(
        e.contains("s.toml:8:") && e.contains("expected a share in (0, 1)"),
        "{e}"
    );
    let weights = scenario("split_at_share = 0.5", 10)
        .replace("third_column = \"timestamp\"", "third_column = \"weight\"");
    let e = spillover::scenario::parse(&weights, std::path::Path::new("s.toml"))
        .and_then(|s| spillover::scenario::prepare(&s).map(|_| ()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("split_at needs timestamps"), "{e}");
}
