//! `spillover inspect` and `spillover generate` end to end, on the real SNAP
//! networks in ../shared/data and on generated graphs.

mod common;

use serde_json::Value;
use std::process::Command;

fn spillover(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_spillover"))
        .args(args)
        .output()
        .expect("run spillover");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(args: &[&str]) -> Value {
    let (code, stdout, stderr) = spillover(args);
    assert_eq!(code, 0, "spillover {args:?} failed: {stderr}");
    serde_json::from_str(&stdout).expect("JSON on stdout")
}

#[test]
fn inspect_facebook() {
    let path = common::shared_data("facebook_combined.txt");
    let v = json(&["inspect", path.to_str().unwrap(), "--json"]);
    let s = &v["summary"];
    assert_eq!(s["nodes"], 4039);
    assert_eq!(s["edges"], 88234);
    assert_eq!(s["components"]["count"], 1);
    assert_eq!(s["components"]["largest"], 4039);
    assert_eq!(s["directed"], false);
    // SNAP and networkx: average clustering 0.6055 (exact on this size).
    let c = s["clustering"]["average"].as_f64().unwrap();
    assert!((c - 0.6055).abs() < 5e-5, "clustering {c}");
    assert!(s["clustering"]["sampled_nodes"].is_null());
    // Table form names the same numbers.
    let (code, table, _) = spillover(&["inspect", path.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(
        table.contains("4,039") && table.contains("88,234"),
        "{table}"
    );
}

#[test]
fn inspect_college_msg_directed() {
    let path = common::shared_data("CollegeMsg.txt");
    let v = json(&["inspect", path.to_str().unwrap(), "--directed", "--json"]);
    let s = &v["summary"];
    assert_eq!(s["nodes"], 1899);
    assert_eq!(s["edges"], 20296);
    assert_eq!(s["total_weight"].as_f64(), Some(59835.0));
    assert_eq!(v["read"]["third_column"], "timestamp");
    assert_eq!(v["read"]["header"], "src dst time");
    assert_eq!(v["read"]["build"]["duplicates_merged"], 59835 - 20296);
    // Cross-checked with networkx (tests/helpers/crosscheck.py): reciprocity,
    // weakly and strongly connected components.
    let r = s["reciprocity"].as_f64().unwrap();
    assert!((r - 0.636381).abs() < 1e-6, "reciprocity {r}");
    assert_eq!(s["components"]["count"], 4);
    assert_eq!(s["components"]["largest"], 1893);
    assert_eq!(s["strong_components"]["largest"], 1294);
}

#[test]
fn generate_then_inspect_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sbm.tsv");
    let comm = dir.path().join("sbm-communities.tsv");
    const SBM: [&str; 9] = [
        "sbm",
        "--n",
        "2000",
        "--blocks",
        "20",
        "--mean-degree",
        "10",
        "--mu",
        "0.1",
    ];
    let generate = |out: &std::path::Path, extra: &[&str]| {
        let mut args = vec![
            "generate",
            "--seed",
            "4",
            "--json",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&SBM);
        json(&args)
    };
    let g = generate(&out, &["--communities", comm.to_str().unwrap()]);
    let i = json(&["inspect", out.to_str().unwrap(), "--json"]);
    assert_eq!(g["summary"]["edges"], i["summary"]["edges"]);
    // An edge list cannot name isolated nodes: the file holds the others.
    let isolated = g["summary"]["degree"]["min"] == 0;
    let n = i["summary"]["nodes"].as_u64().unwrap();
    assert!(n == 2000 || (isolated && n < 2000), "{n} nodes read back");
    assert_eq!(g["communities"], 20);
    let lines = std::fs::read_to_string(&comm).unwrap();
    assert_eq!(lines.lines().filter(|l| !l.starts_with('#')).count(), 2000);
    // Same seed, same file.
    let again = dir.path().join("again.tsv");
    generate(&again, &[]);
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&again).unwrap());
    // A directed weighted model round-trips its total weight.
    let msg = dir.path().join("msg.tsv");
    let g = json(&[
        "generate",
        "--out",
        msg.to_str().unwrap(),
        "--json",
        "messaging",
        "--n",
        "3000",
    ]);
    let i = json(&[
        "inspect",
        msg.to_str().unwrap(),
        "--directed",
        "--third-column",
        "weight",
        "--json",
    ]);
    assert_eq!(g["summary"]["edges"], i["summary"]["edges"]);
    assert_eq!(g["summary"]["total_weight"], i["summary"]["total_weight"]);
}

#[test]
fn every_subcommand_has_help_with_defaults() {
    for args in [
        vec!["--help"],
        vec!["generate", "--help"],
        vec!["generate", "lfr", "--help"],
        vec!["generate", "messaging", "--help"],
        vec!["generate", "sbm", "--help"],
        vec!["inspect", "--help"],
    ] {
        let (code, stdout, _) = spillover(&args);
        assert_eq!(code, 0, "{args:?}");
        assert!(stdout.contains("Usage"), "{args:?}: {stdout}");
    }
    let (_, lfr, _) = spillover(&["generate", "lfr", "--help"]);
    assert!(lfr.contains("[default: 2.5]"), "{lfr}");
}
