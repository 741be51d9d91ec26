//! Issue 9: what used to abort, panic or silently succeed on real-world input
//! is refused up front with a clear error, or propagated.

mod common;

use spillover::data::design::{
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

use std::path::{Path, PathBuf};
use std::process::Command;

/// Run the binary; returns (exit code, stdout, stderr). Never a panic or abort.
fn spill(args: &[&str], cwd: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_spillover"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("panicked") && !stderr.contains("memory allocation"),
        "{args:?} panicked or aborted: {stderr}"
    );
    let code = out.status.code().unwrap_or(-1);
    assert!(code >= 0, "{args:?} was killed by a signal: {stderr}");
    (
        code,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

/// Exit 2, no output, and every needle in the message.
fn refused(args: &[&str], cwd: &Path, needles: &[&str]) {
    let (code, stdout, stderr) = spill(args, cwd);
    assert_eq!(code, 2, "{args:?}: {stderr}");
    assert!(stdout.is_empty(), "{args:?} printed {stdout}");
    for n in needles {
        assert!(stderr.contains(n), "{args:?}: expected {n:?} in {stderr}");
    }
}

const SMALL: &str = r#"
seed = 3
replicates = 4

[graph]
model = "sbm"
n = 400
blocks = 8
mean_degree = 8.0
mu = 0.2

[[design]]
name = "user"
unit = "user"

[[design]]
name = "planted"
unit = "cluster"
partition = { method = "planted" }
"#;

/// No output folder was created under `d/output` (the lock file beside one may be).
fn assert_no_outputs(d: &Path) {
    if let Ok(entries) = std::fs::read_dir(d.join("output")) {
        for e in entries {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(name.ends_with(".lock"), "output/{name} was written");
        }
    }
}

fn scenario(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn oversized_inputs_exit_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("g.tsv");
    let out = out.to_str().unwrap();
    // Generators: expected edges n²p/2, nodes.
    refused(
        &[
            "generate", "--out", out, "gnp", "--n", "1000000", "--p", "0.5",
        ],
        d,
        &["n = 1000000, p = 0.5", "edges", "at most"],
    );
    refused(
        &[
            "generate",
            "--out",
            out,
            "gnp",
            "--n",
            "4000000000",
            "--p",
            "0.0",
        ],
        d,
        &["n = 4000000000", "250000000"],
    );
    refused(
        &[
            "generate",
            "--out",
            out,
            "ba",
            "--n",
            "100000000",
            "--m",
            "100",
        ],
        d,
        &["n = 100000000, m = 100"],
    );
    refused(
        &[
            "generate",
            "--out",
            out,
            "ws",
            "--n",
            "200000000",
            "--k",
            "1000",
            "--beta",
            "0.1",
        ],
        d,
        &["k = 1000"],
    );
    refused(
        &[
            "generate",
            "--out",
            out,
            "sbm",
            "--n",
            "200000000",
            "--blocks",
            "2",
            "--p-in",
            "0.5",
            "--p-out",
            "0.0",
        ],
        d,
        &["sbm", "edges"],
    );
    refused(
        &[
            "generate",
            "--out",
            out,
            "lfr",
            "--n",
            "100000000",
            "--mean-degree",
            "100",
        ],
        d,
        &["mean_degree = 100"],
    );
    assert!(!Path::new(out).exists());
    // Scenario sizes: replicates (file and --replicates), rows, RI draws, auxiliary draws.
    let big = scenario(
        d,
        "big.toml",
        &SMALL.replace("replicates = 4", "replicates = 1000000000000"),
    );
    refused(
        &["run", big.to_str().unwrap(), "--quiet"],
        d,
        &["big.toml:3:", "replicates = 1000000000000", "at most"],
    );
    let ok = scenario(d, "ok.toml", SMALL);
    let ok = ok.to_str().unwrap();
    refused(
        &["run", ok, "--quiet", "--replicates", "18446744073709551615"],
        d,
        &["--replicates", "at most"],
    );
    let seven = scenario(d, "seven.toml", &format!("{SMALL}\n[analysis]\nestimators = [\"dm-naive\", \"dm-cr2\", \"cluster-means\", \"regression\", \"cuped\", \"ht\", \"hajek\"]\n"));
    refused(
        &[
            "run",
            seven.to_str().unwrap(),
            "--quiet",
            "--replicates",
            "999999",
        ],
        d,
        &["result rows", "at most 10000000"],
    );
    let ri = scenario(
        d,
        "ri.toml",
        &format!("{SMALL}\n[analysis]\nrandomization_inference = 1000000000\n"),
    );
    refused(
        &["run", ri.to_str().unwrap(), "--quiet"],
        d,
        &["randomization_inference = 1000000000"],
    );
    let aux = scenario(
        d,
        "aux.toml",
        &format!("{SMALL}\n[analysis]\nestimators = [\"ht\"]\nauxiliary_draws = 1000000000\n"),
    );
    refused(
        &["run", aux.to_str().unwrap(), "--quiet"],
        d,
        &["auxiliary_draws = 1000000000"],
    );
    // The sweep's steps.
    refused(
        &[
            "sweep",
            ok,
            "--parts",
            "2..20",
            "--steps",
            "100000000000",
            "--quiet",
        ],
        d,
        &["--steps = 100000000000", "between 2 and 1000"],
    );
    // Saturation levels: at most 255, and at most one per cluster.
    let levels: Vec<String> = (0..300).map(|i| format!("{}", i as f64 / 299.0)).collect();
    let sat = SMALL.replace(
        "partition = { method = \"planted\" }",
        &format!("assignment = \"saturation\"\nsaturations = [{}]\npartition = {{ method = \"planted\" }}", levels.join(", ")),
    );
    let sat = scenario(d, "sat.toml", &sat);
    refused(
        &["run", sat.to_str().unwrap(), "--quiet"],
        d,
        &["saturation levels = 300", "at most 255"],
    );
    let sat9 = SMALL.replace(
        "partition = { method = \"planted\" }",
        "assignment = \"saturation\"\nsaturations = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]\npartition = { method = \"planted\" }",
    );
    let sat9 = scenario(d, "sat9.toml", &sat9);
    refused(
        &["run", sat9.to_str().unwrap(), "--quiet"],
        d,
        &["saturation levels = 9", "at most 8 (one level per cluster"],
    );
    assert_no_outputs(d);
}

#[test]
fn degenerate_runs_are_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Only self-loops: no edges after cleaning.
    std::fs::write(d.join("loops.txt"), "1 1\n2 2\n3 3\n").unwrap();
    let text = SMALL
        .replace(
            "model = \"sbm\"\nn = 400\nblocks = 8\nmean_degree = 8.0\nmu = 0.2",
            "path = \"loops.txt\"",
        )
        .replace(
            "partition = { method = \"planted\" }",
            "partition = { method = \"components\" }",
        );
    let s = scenario(d, "loops.toml", &text);
    refused(
        &["run", s.to_str().unwrap(), "--quiet"],
        d,
        &["no edges after cleaning"],
    );
    // gnp with p = 0.
    let text = SMALL
        .replace(
            "model = \"sbm\"\nn = 400\nblocks = 8\nmean_degree = 8.0\nmu = 0.2",
            "model = \"gnp\"\nn = 100\np = 0.0",
        )
        .replace(
            "partition = { method = \"planted\" }",
            "partition = { method = \"random\", parts = 4 }",
        );
    let s = scenario(d, "empty.toml", &text);
    refused(
        &["run", s.to_str().unwrap(), "--quiet"],
        d,
        &["no edges after cleaning"],
    );
    // More strata than clusters.
    let text = SMALL.replace(
        "partition = { method = \"planted\" }",
        "assignment = \"stratified\"\nstrata = 20\npartition = { method = \"planted\" }",
    );
    let s = scenario(d, "strata.toml", &text);
    refused(
        &["run", s.to_str().unwrap(), "--quiet"],
        d,
        &["strata = 20", "8 clusters"],
    );
    // --min-size that --max-size makes unreachable.
    std::fs::write(d.join("e.txt"), "1 2\n2 3\n3 4\n").unwrap();
    refused(
        &["partition", "e.txt", "--min-size", "50", "--max-size", "10"],
        d,
        &["--min-size 50", "--max-size 10"],
    );
    let text = SMALL.replace(
        "partition = { method = \"planted\" }",
        "partition = { method = \"louvain\", min_size = 50, max_size = 10 }",
    );
    let s = scenario(d, "minmax.toml", &text);
    refused(
        &["run", s.to_str().unwrap(), "--quiet"],
        d,
        &["min_size = 50", "max_size = 10"],
    );
    // A power curve on a model with no effect.
    let text = format!(
        "{}\n[outcome]\ndirect_effect = 0.0\nspillover = 0.0\n\n[power_curve]\neffects = [0.1]\n",
        SMALL
    );
    let s = scenario(d, "flat.toml", &text);
    refused(
        &["run", s.to_str().unwrap(), "--quiet"],
        d,
        &["global effect is 0"],
    );
    assert_no_outputs(d);
}

/// An estimator that fails in every replicate says so instead of printing numbers.
#[test]
fn an_estimator_that_never_succeeds_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Two clusters: with one cluster per arm, cluster-means has no degrees of freedom.
    let text = SMALL.replace("blocks = 8", "blocks = 2")
        + "\n[analysis]\nestimators = [\"dm-cr2\", \"cluster-means\"]\n";
    let s = scenario(d, "two.toml", &text);
    let (code, stdout, stderr) = spill(&["run", s.to_str().unwrap()], d);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("failed in all 4 replicates:"), "{stdout}");
}

#[cfg(unix)]
#[test]
fn output_folder_checked_first_staged_and_readable() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = scenario(d, "s.toml", SMALL);
    let s = s.to_str().unwrap();
    // --out is a file: exit 2 before any simulation.
    std::fs::write(d.join("afile"), "x").unwrap();
    refused(
        &["run", s, "--quiet", "--out", "afile"],
        d,
        &["afile", "not a folder"],
    );
    refused(
        &["run", s, "--quiet", "--out", "afile/sub"],
        d,
        &["afile/sub"],
    );
    // Files are readable by others under umask 022.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask 022 && exec {} run {s} --quiet --out o",
            env!("CARGO_BIN_EXE_spillover")
        ))
        .current_dir(d)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [
        "report.html",
        "report.json",
        "summary.csv",
        "replicates.csv",
        "plots/bias_rmse.svg",
    ] {
        let p = d.join("o").join(f);
        if p.exists() {
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o644, "{f}: {mode:o}");
        } else {
            assert!(f.starts_with("plots"), "{f} missing");
        }
    }
    assert!(d.join("o/clusters-planted.tsv").exists());
    // A rerun with a renamed design leaves no file of the old design.
    let renamed = scenario(
        d,
        "r.toml",
        &SMALL.replace("name = \"planted\"", "name = \"blocks\""),
    );
    let (code, _, stderr) = spill(
        &["run", renamed.to_str().unwrap(), "--quiet", "--out", "o"],
        d,
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(d.join("o/clusters-blocks.tsv").exists());
    assert!(
        !d.join("o/clusters-planted.tsv").exists(),
        "stale file of the old design"
    );
    // Nothing but the folder and its lock is left beside it.
    let names: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".o"))
        .collect();
    assert_eq!(names, vec![".o.lock".to_string()]);
    // A second run into a folder another run holds is refused.
    let held = spillover::fsutil::Staged::begin(&d.join("o")).unwrap();
    refused(&["run", s, "--quiet", "--out", "o"], d, &["another run"]);
    drop(held);
}

/// Power curves for binary metrics: τ and γ are scaled so the exact global
/// effect (through the logistic link) equals each requested value.
#[test]
fn binary_power_curve_scale_hits_the_requested_effect() {
    let text = format!(
        "{SMALL}\n[outcome]\nkind = \"binary\"\nbase_rate = 0.1\ndirect_effect = 0.3\nspillover = 0.3\n"
    );
    let s = spillover::scenario::parse(&text, Path::new("b.toml")).unwrap();
    let p = spillover::scenario::prepare(&s).unwrap();
    for effect in [0.005, 0.02, 0.1, -0.03] {
        let k = spillover::inquiry::effect_scale(&p.population, effect).unwrap();
        let mut pop = p.population.clone();
        pop.tau.iter_mut().for_each(|t| *t *= k);
        pop.gamma *= k;
        let got = spillover::inquiry::global_effect(&pop).value;
        assert!((got - effect).abs() < 1e-10, "{effect}: {got}");
        // Linear scaling would have missed it.
        let lin = effect / p.estimand.value;
        let mut pop = p.population.clone();
        pop.tau.iter_mut().for_each(|t| *t *= lin);
        pop.gamma *= lin;
        if effect.abs() >= 0.02 {
            assert!(
                (spillover::inquiry::global_effect(&pop).value - effect).abs() > 1e-4,
                "linear scaling is off"
            );
        }
    }
    assert!(
        spillover::inquiry::effect_scale(&p.population, 0.95).is_err(),
        "unreachable rate difference"
    );
}

/// Joint probabilities estimated from draws for every pair of users sharing a
/// cluster cannot scale: refused before simulating, naming the size and what to change.
#[test]
fn pair_probabilities_that_cannot_scale_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = SMALL.replace("n = 400\nblocks = 8", "n = 20000\nblocks = 4")
        + "\n[analysis]\nestimators = [\"ht\"]\nexposure = { kind = \"fractional\", q = 0.75 }\n";
    let s = scenario(d, "frac.toml", &text);
    refused(
        &["run", s.to_str().unwrap(), "--quiet"],
        d,
        &["fractional-0.75", "pairs", "kind = \"full\""],
    );
    assert_no_outputs(d);
}
