//! Sharded runs (issue 13): `run --shard K/N` on each of N slices and
//! `merge` give the same report.json (power curve included), summary.csv
//! and replicates.csv, byte for byte, as one unsharded run; mismatched, repeated or missing shards
//! are refused with exit 2.

mod common;

use std::path::Path;

fn spill(dir: &Path, args: &[&str]) -> (i32, String) {
    common::spill_in(env!("CARGO_BIN_EXE_spillover"), dir, args)
}

const SCENARIO: &str = r#"
seed = 9
replicates = 200
[graph]
model = "sbm"
n = 2000
blocks = 40
mean_degree = 8.0
mu = 0.2
[[design]]
name = "user"
[[design]]
name = "blocks"
unit = "cluster"
partition = { method = "planted" }
[[design]]
name = "louvain-strat"
unit = "cluster"
assignment = "stratified"
strata_by = "covariate"
partition = { method = "louvain" }
[analysis]
estimators = ["dm-naive", "dm-cr2", "regression", "cuped", "ht", "hajek"]
randomization_inference = 10
[power_curve]
effects = [0.0, 0.05, 0.1]
replicates = 150
"#;

const FILES: [&str; 3] = ["report.json", "summary.csv", "replicates.csv"];

#[test]
fn merged_shards_are_byte_identical_to_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("s.toml"), SCENARIO).unwrap();
    let (code, e) = spill(d, &["run", "s.toml", "--quiet", "--out", "single"]);
    assert_eq!(code, 0, "{e}");
    for n in [2usize, 3] {
        let shards = format!("shards-{n}");
        for k in 1..=n {
            let spec = format!("{k}/{n}");
            let threads = if k % 2 == 0 { "1" } else { "2" };
            let (code, e) = spill(
                d,
                &[
                    "run",
                    "s.toml",
                    "--quiet",
                    "--shard",
                    &spec,
                    "--out",
                    &shards,
                    "--threads",
                    threads,
                ],
            );
            assert_eq!(code, 0, "{spec}: {e}");
        }
        let merged = format!("merged-{n}");
        let (code, e) = spill(d, &["merge", &shards, "--quiet", "--out", &merged]);
        assert_eq!(code, 0, "merge {n}: {e}");
        for f in FILES {
            let (a, b) = (
                std::fs::read(d.join("single").join(f)).unwrap(),
                std::fs::read(d.join(&merged).join(f)).unwrap(),
            );
            assert!(a == b, "{n} shards: {f} differs from the single run");
        }
        let report = std::fs::read_to_string(d.join(&merged).join("report.json")).unwrap();
        assert!(
            report.contains("\"power_curves\": [\n    {"),
            "the merged report has no power curve"
        );
    }
}

#[test]
fn merge_refuses_missing_repeated_and_foreign_shards() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("s.toml"),
        SCENARIO.replace("replicates = 200", "replicates = 130"),
    )
    .unwrap();
    std::fs::write(
        d.join("t.toml"),
        SCENARIO
            .replace("replicates = 200", "replicates = 130")
            .replace("seed = 9", "seed = 10"),
    )
    .unwrap();
    for (file, k, out) in [
        ("s.toml", "1/3", "a"),
        ("s.toml", "2/3", "a"),
        ("s.toml", "3/3", "b"),
        ("t.toml", "3/3", "c"),
    ] {
        let (code, e) = spill(d, &["run", file, "--quiet", "--shard", k, "--out", out]);
        assert_eq!(code, 0, "{e}");
    }
    let refused = |args: &[&str], needle: &str| {
        let (code, e) = spill(d, args);
        assert_eq!(code, 2, "{args:?}: {e}");
        assert!(e.contains(needle), "{args:?}: expected {needle:?} in {e}");
        assert!(!d.join("out").exists(), "{args:?} wrote output");
    };
    refused(&["merge", "a", "--out", "out"], "missing shard 3/3");
    // More shards than the limit, or K outside 1..=N, before any work.
    refused(
        &["run", "s.toml", "--shard", "1/20000", "--out", "out"],
        "N ≤ 10000",
    );
    refused(
        &["run", "s.toml", "--shard", "4/3", "--out", "out"],
        "1 ≤ K ≤ N",
    );
    refused(&["merge", "a", "c", "--out", "out"], "scenario SHA-256");
    refused(
        &[
            "merge",
            "a",
            "b/shard-3-of-3.spillover",
            "a/shard-1-of-3.spillover",
            "--out",
            "out",
        ],
        "shard 1/3 is given twice",
    );
    std::fs::write(d.join("junk.spillover"), "not a shard").unwrap();
    refused(
        &["merge", "junk.spillover", "--out", "out"],
        "not a spillover shard file",
    );
    refused(&["run", "s.toml", "--shard", "4/3"], "--shard = 4/3");
    let (code, e) = spill(d, &["merge", "a", "b", "--quiet", "--out", "out"]);
    assert_eq!(code, 0, "{e}");
}

/// A sweep whose partitions repeat across shard boundaries (every resolution
/// from 1 to 4 finds the 20 planted blocks): sharded 2 and 3 ways, the merged
/// sweep.json and sweep.csv equal one sweep's, byte for byte.
#[test]
fn merged_sweep_shards_are_byte_identical_to_one_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("s.toml"),
        r#"
seed = 4
replicates = 70
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
estimators = ["dm-cr2", "cluster-means"]
"#,
    )
    .unwrap();
    let sweep = [
        "sweep",
        "s.toml",
        "--resolution",
        "1..4",
        "--steps",
        "5",
        "--quiet",
    ];
    let (code, e) = spill(d, &[&sweep[..], &["--out", "single"]].concat());
    assert_eq!(code, 0, "{e}");
    let single = std::fs::read_to_string(d.join("single/sweep.json")).unwrap();
    assert!(single.contains("\"same_partition_as\": 1.0"), "{single}");
    for n in [2usize, 3] {
        let shards = format!("sweep-shards-{n}");
        for k in 1..=n {
            let spec = format!("{k}/{n}");
            let (code, e) = spill(
                d,
                &[&sweep[..], &["--shard", &spec, "--out", &shards]].concat(),
            );
            assert_eq!(code, 0, "{spec}: {e}");
        }
        let merged = format!("sweep-merged-{n}");
        let (code, e) = spill(d, &["merge", &shards, "--quiet", "--out", &merged]);
        assert_eq!(code, 0, "merge {n}: {e}");
        for f in ["sweep.json", "sweep.csv"] {
            let (a, b) = (
                std::fs::read(d.join("single").join(f)).unwrap(),
                std::fs::read(d.join(&merged).join(f)).unwrap(),
            );
            assert!(a == b, "{n} shards: {f} differs from the single sweep");
        }
    }
    // A shard of another sweep, or a missing one, is refused.
    let (code, e) = spill(
        d,
        &[
            "sweep",
            "s.toml",
            "--resolution",
            "1..3",
            "--steps",
            "5",
            "--quiet",
            "--shard",
            "1/2",
            "--out",
            "other",
        ],
    );
    assert_eq!(code, 0, "{e}");
    std::fs::copy(
        d.join("sweep-shards-2/sweep-shard-2-of-2.spillover"),
        d.join("other/sweep-shard-2-of-2.spillover"),
    )
    .unwrap();
    let (code, e) = spill(d, &["merge", "other", "--out", "bad"]);
    assert_eq!(code, 2, "{e}");
    assert!(e.contains("another sweep"), "{e}");
    std::fs::remove_file(d.join("sweep-shards-3/sweep-shard-2-of-3.spillover")).unwrap();
    let (code, e) = spill(d, &["merge", "sweep-shards-3", "--out", "bad"]);
    assert_eq!(code, 2, "{e}");
    assert!(e.contains("missing sweep shard 2/3"), "{e}");
    assert!(!d.join("bad").exists());
}
