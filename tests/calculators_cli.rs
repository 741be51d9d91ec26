//! The calculators end to end: published values through the CLI, the
//! collapse warning, and bad input (exit code 2).

use std::process::Command;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_spillover"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(args: &[&str]) -> serde_json::Value {
    let (code, stdout, stderr) = run(args);
    assert_eq!(code, 0, "{args:?}: {stderr}");
    serde_json::from_str(&stdout).unwrap()
}

#[test]
fn calculators_reproduce_published_values() {
    let v = json(&[
        "deff",
        "--mean-cluster-size",
        "20",
        "--icc",
        "0.05",
        "--cv",
        "0.65",
        "--json",
    ]);
    assert!((v["design_effect"].as_f64().unwrap() - 2.3725).abs() < 1e-12);
    let v = json(&[
        "power",
        "--effect",
        "0.01",
        "--baseline",
        "0.10",
        "--n-per-arm",
        "14751",
        "--json",
    ]);
    assert!((v["power"].as_f64().unwrap() - 0.8).abs() < 1e-4);
    let v = json(&["mde", "--n-total", "10000", "--json"]);
    assert!((v["mde"].as_f64().unwrap() - 0.0560).abs() < 5e-5);
    let v = json(&[
        "mde",
        "--n-total",
        "10000",
        "--mean-cluster-size",
        "20",
        "--icc",
        "0.05",
        "--json",
    ]);
    assert!((v["mde"].as_f64().unwrap() - 0.0782).abs() < 5e-5);
    // 393 users per arm × 1.95 = 766.4 → 39 clusters of 20.
    let v = json(&[
        "clusters-needed",
        "--effect",
        "0.2",
        "--mean-cluster-size",
        "20",
        "--icc",
        "0.05",
        "--json",
    ]);
    assert_eq!(v["clusters_per_arm"], 39.0);
    let v = json(&[
        "deff",
        "--mean-cluster-size",
        "166667",
        "--icc",
        "0.59",
        "--clusters",
        "6",
        "--json",
    ]);
    assert!(v["warning"]
        .as_str()
        .unwrap()
        .contains("Add clusters, not users"));
    assert!((v["effective_sample_size"].as_f64().unwrap() - 10.17).abs() < 0.01);
}

#[test]
fn calculator_bad_input_exits_2() {
    for args in [
        vec!["deff", "--mean-cluster-size", "20", "--icc", "1.5"],
        vec!["deff", "--mean-cluster-size", "0", "--icc", "0.1"],
        vec![
            "power",
            "--effect",
            "0.5",
            "--baseline",
            "0.7",
            "--n-per-arm",
            "100",
        ],
        vec!["mde", "--n-total", "1000", "--power", "1.2"],
        vec!["clusters-needed", "--effect", "0.1"],
        vec!["power", "--effect", "0.1"],
    ] {
        let (code, _, stderr) = run(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
