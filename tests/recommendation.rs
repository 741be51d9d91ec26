//! The recommendation (issue 10): ranks only pairs that estimate the global
//! effect, is stable across seeds, and reaches the terminal with the
//! randomization-inference columns.

mod common;
use spillover::diagnosis::Report;
use std::path::PathBuf;
use std::process::Command;

fn run(toml: &str) -> Report {
    common::diagnose_toml(toml).1
}

/// The saturation design's `direct@…`/`spillover@…` estimators and HT/Hájek
/// target other estimands, some with a far smaller RMSE against their own
/// truth; they are listed, never picked, never runner-up.
#[test]
fn different_estimands_are_never_ranked_together() {
    let r = run(r#"
seed = 5
replicates = 120
[graph]
model = "sbm"
n = 3000
blocks = 60
mean_degree = 10.0
mu = 0.1
[outcome]
icc = 0.05
direct_effect = 0.04
spillover = 0.08
[[design]]
name = "user"
[[design]]
name = "clusters"
unit = "cluster"
partition = { method = "planted" }
[[design]]
name = "saturation"
unit = "cluster"
assignment = "saturation"
saturations = [0.0, 0.5, 1.0]
partition = { method = "planted" }
[analysis]
estimators = ["dm-naive", "dm-cr2", "ht", "hajek"]
"#);
    let rec = &r.recommendation;
    let global = r.estimand.value;
    let mut other = 0;
    for d in &r.designs {
        for e in &d.estimators {
            let own = (e.truth - global).abs() > 1e-12 || e.name.contains('@');
            if own || e.name == "ht" || e.name == "hajek" {
                other += 1;
                let label = format!("{} / {}", d.name, e.name);
                assert!(
                    rec.other_estimands.iter().any(|s| s.starts_with(&label)),
                    "{label} missing from {:?}",
                    rec.other_estimands
                );
                for c in rec.pick.iter().chain(&rec.runner_up).chain(&rec.closest) {
                    assert!(
                        !(c.design == d.name && c.estimator == e.name),
                        "{label} ranked against the global effect"
                    );
                }
            }
        }
    }
    assert!(
        other >= 5,
        "the scenario must contain other estimands ({other})"
    );
    let pick = rec.pick.as_ref().expect("a pick");
    assert!(pick.estimator.starts_with("dm"), "{pick:?}");
    assert!(rec
        .text
        .iter()
        .any(|t| t.contains("detectable with 80 % power")));
}

/// Issue 10: across seeds 11–14 quickstart recommended `louvain` or
/// `louvain-strat` depending on the seed. With eligibility from the Monte
/// Carlo error, strata in the analysis and RMSE ties broken by power, the
/// recommended design is the same for every seed once the Monte Carlo
/// error separates the candidates. Issue 14 (a new replicate generator,
/// tried on a branch) showed that quickstart's 400 replicates do not: `louvain` × CUPED covers
/// about 0.925, and the eligibility line at 400 replicates is 0.928
/// (0.95 − 2 MC SE), so its eligibility, and the pick, went with the seed
/// (0.917 and 0.935 on seeds 11 and 13 with that generator). At 1,600
/// replicates the line is 0.939, which separated the pair for that
/// generator but not for the next (eight streams of normals with a
/// 1,024-layer ziggurat: 0.929 and 0.940 on seeds 13 and 14, and seed 14
/// picked `louvain` × CUPED). At 3,200 replicates the line is 0.942, about
/// 2.7 MC SE above that pair's coverage.
#[test]
fn quickstart_recommendation_is_stable_across_seeds() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/quickstart.toml");
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains("\nreplicates = 400 "));
    let text = text
        .split("[power_curve]")
        .next()
        .unwrap()
        .replace("\nreplicates = 400 ", "\nreplicates = 3200 ")
        .replace("seed = 2026", "SEED");
    let mut picks = Vec::new();
    for seed in 11..=14 {
        let r = run(&text.replace("SEED", &format!("seed = {seed}")));
        let pick = r.recommendation.pick.expect("a pick");
        eprintln!("seed {seed}: {} / {}", pick.design, pick.estimator);
        picks.push(pick.design);
    }
    assert!(picks.iter().all(|d| d == &picks[0]), "{picks:?}");
}

/// The terminal shows the recommendation after the table, and the
/// randomization-inference power and type-I columns when RI ran; a pick
/// with power below 80 % comes with a warning saying what would help.
#[test]
fn terminal_shows_the_recommendation_and_ri_columns() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("ri.toml");
    std::fs::write(
        &s,
        r#"
# <b>not bold</b> & not markup: the page escapes the scenario text
name = "ri"
seed = 9
replicates = 60
[graph]
model = "sbm"
n = 600
blocks = 12
mean_degree = 8.0
mu = 0.1
[outcome]
icc = 0.2
direct_effect = 0.05
spillover = 0.05
[[design]]
name = "user"
[[design]]
name = "clusters"
unit = "cluster"
partition = { method = "planted" }
[analysis]
estimators = ["dm-cr2", "cluster-means"]
randomization_inference = 99
"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_spillover"))
        .args(["run", s.to_str().unwrap(), "--out"])
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table_end = stdout.find("cut: share of edge weight").expect("table");
    let rec = stdout
        .find("Recommendation")
        .expect("recommendation in the terminal");
    assert!(rec > table_end, "{stdout}");
    assert!(
        stdout.contains("RI power") && stdout.contains("RI type1"),
        "{stdout}"
    );
    assert!(stdout.contains("Low power"), "{stdout}");
    let html = std::fs::read_to_string(dir.path().join("out/report.html")).unwrap();
    assert!(html.contains("RI power") && html.contains("Recommendation"));
    assert!(
        html.contains("&lt;b&gt;not bold&lt;/b&gt; &amp; not markup")
            && !html.contains("<b>not bold"),
        "the template escapes user text"
    );
}
