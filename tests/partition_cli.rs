//! `spillover partition` end to end: output file, JSON report, and bad input
//! (exit code 2, clear message, no output file).

mod common;

use std::process::Command;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_spillover"))
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

#[test]
fn partition_writes_clusters_and_reports_quality() {
    let fb = common::shared_data("facebook_combined.txt");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("clusters.tsv");
    let (code, stdout, stderr) = run(&[
        "partition",
        fb.to_str().unwrap(),
        "--method",
        "leiden",
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(v["quality"]["modularity"].as_f64().unwrap() >= 0.83);
    assert_eq!(v["quality"]["disconnected_clusters"], 0);
    let text = std::fs::read_to_string(&out).unwrap();
    let rows: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(rows.len(), 4039);
    assert!(rows.iter().all(|r| r.split('\t').count() == 2));
    // Reading the clusters back as a file partition gives the same report.
    let (code, again, stderr) = run(&[
        "partition",
        fb.to_str().unwrap(),
        "--method",
        "file",
        "--clusters",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let w: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!(v["quality"]["modularity"], w["quality"]["modularity"]);
}

/// `--no-refine` gives plain Louvain: the clusters it writes are the
/// library's with `refine: false` (through the same partition spec a
/// scenario uses), and the default's are the library's refined ones, at a
/// higher modularity from the same seed.
#[test]
fn no_refine_gives_plain_louvain() {
    use spillover::graph::io::{read_edge_list, ReadOptions};
    use spillover::partition::{louvain, quality, Method, Partition};
    let fb = common::shared_data("facebook_combined.txt");
    let (g, _) = read_edge_list(&fb, &ReadOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cli = |extra: &[&str]| {
        let out = dir.path().join("clusters.tsv");
        let mut args = vec!["partition", fb.to_str().unwrap(), "--seed", "2"];
        args.extend_from_slice(&["--out", out.to_str().unwrap()]);
        args.extend_from_slice(extra);
        let (code, _, stderr) = run(&args);
        assert_eq!(code, 0, "{stderr}");
        // The written clusters by node label, as the library's dense labels.
        let text = std::fs::read_to_string(&out).unwrap();
        let mut by_label = std::collections::HashMap::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (node, cluster) = line.split_once('\t').unwrap();
            by_label.insert(node.to_string(), cluster.parse::<u32>().unwrap());
        }
        let labels: Vec<u32> = (0..g.node_count() as u32)
            .map(|u| by_label[g.label(u).as_ref()])
            .collect();
        Partition::from_labels(&labels)
    };
    let lib = |refine| {
        let p = louvain::Params {
            seed: 2,
            refine,
            ..Default::default()
        };
        Partition::from_labels(Method::Louvain(p).run(&g).unwrap().labels())
    };
    let (refined, plain) = (cli(&[]), cli(&["--no-refine"]));
    assert_eq!(plain, lib(false));
    assert_eq!(refined, lib(true));
    let (q1, q0) = (
        quality(&g, &refined).modularity,
        quality(&g, &plain).modularity,
    );
    assert!(q1 > q0, "refined {q1}, plain {q0}");
}

#[test]
fn min_size_merges_small_clusters() {
    let fb = common::shared_data("facebook_combined.txt");
    let report = |extra: &[&str]| {
        let mut args = vec![
            "partition",
            fb.to_str().unwrap(),
            "--method",
            "label-propagation",
            "--json",
        ];
        args.extend_from_slice(extra);
        let (code, stdout, stderr) = run(&args);
        assert_eq!(code, 0, "{stderr}");
        serde_json::from_str::<serde_json::Value>(&stdout).unwrap()["quality"].clone()
    };
    let before = report(&[]);
    let after = report(&["--min-size", "50"]);
    assert!(
        before["sizes"]["min"].as_u64().unwrap() < 50,
        "the test needs small clusters to merge"
    );
    assert!(after["sizes"]["min"].as_u64().unwrap() >= 50);
    assert!(after["clusters"].as_u64() < before["clusters"].as_u64());
}

#[test]
fn bad_partition_input_exits_2_without_output() {
    let fb = common::shared_data("facebook_combined.txt");
    let fb = fb.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c.tsv");
    let o = out.to_str().unwrap();
    let missing = dir.path().join("missing.tsv");
    std::fs::write(&missing, "0\t1\n1\t1\n").unwrap();
    let unknown = dir.path().join("unknown.tsv");
    let mut text: String = (0..4039).map(|u| format!("{u}\t0\n")).collect();
    text.push_str("99999\t3\n");
    std::fs::write(&unknown, text).unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--method", "spectral"], "invalid value"),
        (vec!["--resolution", "0"], "resolution must be > 0"),
        (vec!["--resolution", "-1"], "resolution must be > 0"),
        (vec!["--max-size", "0"], "max-size must be at least 1"),
        (
            vec!["--method", "balanced", "--parts", "5000"],
            "between 1 and the node count",
        ),
        (vec!["--method", "random"], "--parts is required"),
        (
            vec!["--method", "file", "--clusters", missing.to_str().unwrap()],
            "4037 nodes of the graph have no cluster",
        ),
        (
            vec!["--method", "file", "--clusters", unknown.to_str().unwrap()],
            "is not in the graph",
        ),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["partition", fb, "--out", o];
        args.extend(extra.iter());
        let (code, _, stderr) = run(&args);
        assert_eq!(code, 2, "{extra:?}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{extra:?}: expected {needle:?} in {stderr}"
        );
        assert!(!out.exists(), "{extra:?} left an output file");
    }
}
