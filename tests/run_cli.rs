//! `spillover run` end to end: outputs, determinism across thread counts, and
//! malformed scenarios (clear error with the line, exit code 2, no output).

use std::path::Path;
use std::process::Command;

fn spillover(args: &[&str]) -> (i32, String, String) {
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

const SCENARIO: &str = r#"
name = "tiny"
seed = 3
replicates = 40
[graph]
model = "sbm"
n = 1000
blocks = 20
mean_degree = 8.0
mu = 0.2
[outcome]
icc = 0.1
covariate_correlation = 0.5
[[design]]
name = "user"
[[design]]
name = "clusters"
unit = "cluster"
partition = { method = "louvain", resolution = 2.0 }
[[design]]
name = "pairs"
unit = "cluster"
assignment = "matched-pairs"
partition = { method = "planted" }
"#;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn run_writes_every_output_and_is_identical_on_one_and_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let s = write(dir.path(), "tiny.toml", SCENARIO);
    let (o1, o2) = (dir.path().join("t1"), dir.path().join("t2"));
    let (c1, _, e1) = spillover(&[
        "run",
        &s,
        "--threads",
        "1",
        "--quiet",
        "--out",
        o1.to_str().unwrap(),
    ]);
    let (c2, table, e2) = spillover(&["run", &s, "--threads", "2", "--out", o2.to_str().unwrap()]);
    assert_eq!((c1, c2), (0, 0), "{e1}{e2}");
    assert!(
        table.contains("estimand") && table.contains("dm-cr2"),
        "{table}"
    );
    for f in [
        "report.json",
        "summary.csv",
        "replicates.csv",
        "clusters-clusters.tsv",
        "clusters-pairs.tsv",
    ] {
        assert!(o1.join(f).exists(), "{f} missing");
        assert_eq!(
            std::fs::read(o1.join(f)).unwrap(),
            std::fs::read(o2.join(f)).unwrap(),
            "{f} differs between 1 and 2 threads"
        );
    }
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(o1.join("report.json")).unwrap()).unwrap();
    assert_eq!(v["scenario"]["name"], "tiny");
    assert_eq!(v["graph"]["nodes"], 1000);
    assert!(v["estimand"]["value"].as_f64().is_some());
    let d = &v["designs"][1];
    for key in [
        "name",
        "unit",
        "clusters",
        "cut_edge_share",
        "contamination",
        "icc",
        "design_effect",
        "effective_sample_size",
        "clusters_file",
        "estimators",
    ] {
        assert!(!d[key].is_null(), "designs[].{key} missing");
    }
    for key in [
        "name",
        "mean_estimate",
        "bias",
        "bias_mc_se",
        "sd",
        "rmse",
        "mean_se",
        "coverage",
        "power",
        "type1_error",
    ] {
        assert!(
            !d["estimators"][0][key].is_null(),
            "estimators[].{key} missing"
        );
    }
    // Plots and a self-contained HTML report.
    for f in [
        "bias",
        "power",
        "coverage",
        "contamination",
        "cluster_sizes",
        "sampling-user",
    ] {
        for ext in ["svg", "png"] {
            let path = o1.join("plots").join(format!("{f}.{ext}"));
            assert!(
                std::fs::metadata(&path)
                    .map(|m| m.len() > 1000)
                    .unwrap_or(false),
                "{} missing",
                path.display()
            );
        }
    }
    let html = std::fs::read_to_string(o1.join("report.html")).unwrap();
    assert!(
        html.contains("<table>") && html.matches("<svg").count() >= 6,
        "report.html lacks table or plots"
    );
    assert!(
        html.contains("global average treatment effect") && html.contains("Recommendation")
            || html.contains("none is recommended")
    );
    assert!(
        !html.contains("http://") && !html.contains("https://")
            || html.matches("http").count() == html.matches("http://www.w3.org").count(),
        "report.html must not load external resources"
    );
    // 3 designs × 5 estimators × 40 replicates + header.
    let rows = std::fs::read_to_string(o1.join("replicates.csv"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(rows, 3 * 5 * 40 + 1);
    // --replicates overrides the file.
    let o3 = dir.path().join("t3");
    let (c, stdout, e) = spillover(&[
        "run",
        &s,
        "--replicates",
        "5",
        "--json",
        "--out",
        o3.to_str().unwrap(),
    ]);
    assert_eq!(c, 0, "{e}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["scenario"]["replicates"], 5);
}

#[test]
fn malformed_scenarios_get_a_clear_error_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, String, &str)> = vec![
        ("syntax", SCENARIO.replace("seed = 3", "seed = = 3"), ":3:"),
        (
            "unknown key",
            SCENARIO.replace("seed = 3", "seed = 3\nsede = 4"),
            "sede",
        ),
        (
            "unknown graph key",
            SCENARIO.replace("blocks = 20", "blocs = 20"),
            ":8:",
        ),
        (
            "missing graph",
            SCENARIO.replace(
                "[graph]\nmodel = \"sbm\"\nn = 1000\nblocks = 20\nmean_degree = 8.0\nmu = 0.2\n",
                "",
            ),
            "missing [graph]",
        ),
        (
            "p outside (0, 1)",
            SCENARIO.replace("mu = 0.2", "mu = 1.5"),
            "mu = 1.5: expected a probability",
        ),
        (
            "treated share",
            SCENARIO.replace("name = \"user\"", "name = \"user\"\ntreated_share = 1.5"),
            "treated_share",
        ),
        (
            "replicates = 0",
            SCENARIO.replace("replicates = 40", "replicates = 0"),
            ":4:",
        ),
        (
            "unknown partition method",
            SCENARIO.replace("method = \"louvain\"", "method = \"spectral\""),
            "spectral",
        ),
        (
            "one design",
            SCENARIO
                .split("[[design]]")
                .take(2)
                .collect::<Vec<_>>()
                .join("[[design]]"),
            "at least two",
        ),
        (
            "missing edge list",
            SCENARIO.replace(
                "model = \"sbm\"\nn = 1000\nblocks = 20\nmean_degree = 8.0\nmu = 0.2",
                "path = \"nowhere.txt\"",
            ),
            "nowhere.txt",
        ),
    ];
    for (what, text, needle) in cases {
        let s = write(dir.path(), "bad.toml", &text);
        let out = dir.path().join(format!("out-{}", what.replace(' ', "-")));
        let (code, _, stderr) = spillover(&["run", &s, "--quiet", "--out", out.to_str().unwrap()]);
        assert_eq!(code, 2, "{what}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{what}: expected {needle:?} in {stderr}"
        );
        assert!(
            stderr.contains("bad.toml"),
            "{what}: names the file: {stderr}"
        );
        assert!(!out.exists(), "{what}: left output behind");
    }
}

#[test]
fn power_curve_section_adds_curves_and_a_plot() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{SCENARIO}\n[power_curve]\neffects = [0.0, 0.2]\nreplicates = 6\nestimator = \"dm-cr2\"\n"
    );
    let s = write(dir.path(), "pc.toml", &text);
    let o = dir.path().join("out");
    let (code, stdout, e) = spillover(&[
        "run",
        &s,
        "--replicates",
        "6",
        "--json",
        "--out",
        o.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{e}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let curves = v["power_curves"].as_array().unwrap();
    assert_eq!(curves.len(), 3);
    assert_eq!(curves[0]["points"].as_array().unwrap().len(), 2);
    assert!(o.join("plots/power_curve.svg").exists() && o.join("plots/power_curve.png").exists());
    // A bad section is refused with its line.
    let bad = write(
        dir.path(),
        "bad.toml",
        &format!("{SCENARIO}\n[power_curve]\neffects = []\n"),
    );
    let (code, _, e) = spillover(&[
        "run",
        &bad,
        "--quiet",
        "--out",
        dir.path().join("b").to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{e}");
    assert!(e.contains("effects"), "{e}");
}
