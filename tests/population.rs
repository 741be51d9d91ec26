//! Bring your own users (issue 12): a `[population]` file drives the
//! simulation. Checked against closed forms: the metric's ICC over planted
//! clusters, the design effect it implies, isolated users in the node count
//! and in the exact global effect; and every bad input refused with its line.

mod common;

use rand::RngExt;
use rand_distr::{Distribution, StandardNormal};
use std::fmt::Write as _;
use std::path::Path;

const BLOCKS: usize = 40;
const SIZE: usize = 50;
const ISOLATED: usize = 30;
const ICC: f64 = 0.2;

/// An SBM edge list (planted blocks of 50), its clusters file and a
/// population CSV whose metric is a block effect plus noise (ICC 0.2), with
/// 30 users who have no edges; written to `dir`.
fn write_inputs(dir: &Path) {
    use spillover::graph::generate::{Model, Sbm};
    let g = Model::Sbm(Sbm {
        n: Some(BLOCKS * SIZE),
        blocks: Some(BLOCKS),
        mean_degree: Some(10.0),
        mu: Some(0.05),
        ..Default::default()
    })
    .generate(3)
    .unwrap();
    let blocks = g.communities.unwrap();
    let mut edges = String::from("source,target\n");
    for (u, v, _) in g.graph.edges() {
        writeln!(edges, "u{u},u{v}").unwrap();
    }
    std::fs::write(dir.join("edges.csv"), edges).unwrap();
    let mut clusters = String::new();
    for (u, b) in blocks.iter().enumerate() {
        writeln!(clusters, "u{u} {b}").unwrap();
    }
    let mut r = spillover::rng::stream(9, &[1]);
    let effect: Vec<f64> = (0..BLOCKS)
        .map(|_| {
            let x: f64 = StandardNormal.sample(&mut r);
            ICC.sqrt() * x
        })
        .collect();
    // A byte-order mark, as spreadsheet exports write it.
    let mut pop = String::from("\u{feff}user_id,messages,country,tenure\n");
    let countries = ["br", "in", "us"];
    for (u, &b) in blocks.iter().enumerate() {
        let noise: f64 = StandardNormal.sample(&mut r);
        let m = 10.0 + effect[b as usize] + (1.0 - ICC).sqrt() * noise;
        let c = countries[r.random_range(0..3)];
        writeln!(pop, "u{u},{m},{c},{}", r.random_range(1..100)).unwrap();
    }
    for i in 0..ISOLATED {
        writeln!(clusters, "lonely{i} lonely").unwrap();
        writeln!(pop, "lonely{i},{},us,5", 10.0 + f64::from(i as u32) / 100.0).unwrap();
    }
    std::fs::write(dir.join("users.csv"), pop).unwrap();
    std::fs::write(dir.join("clusters.txt"), clusters).unwrap();
}

fn scenario(population: &str) -> String {
    format!(
        r#"
seed = 5
replicates = 600
[graph]
path = "edges.csv"
[population]
{population}
[outcome]
noise_share = 0.5
direct_effect = 0.1
spillover = 0.2
[[design]]
name = "user"
[[design]]
name = "blocks"
unit = "cluster"
partition = {{ method = "file", path = "clusters.txt" }}
[analysis]
estimators = ["dm-cr2"]
"#
    )
}

const GOOD: &str = r#"path = "users.csv"
id = "user_id"
metric = "messages"
covariates = ["tenure"]
strata = "country""#;

#[test]
fn a_planted_cluster_metric_gives_its_icc_and_design_effect() {
    let dir = tempfile::tempdir().unwrap();
    write_inputs(dir.path());
    let text = scenario(GOOD);
    let s = spillover::scenario::parse(&text, &dir.path().join("s.toml")).unwrap();
    let p = spillover::scenario::prepare(&s).unwrap();
    let runs = spillover::diagnosis::simulate(&p, &|| {}).unwrap();
    let r = spillover::diagnosis::build("pop", &p, &runs, &[None, None]);
    let n = BLOCKS * SIZE + ISOLATED;
    // Isolated users of the file are users: in the node count and the estimand.
    assert_eq!(r.graph.nodes, n);
    let info = r.population.as_ref().expect("population info");
    assert_eq!((info.metric.isolated, info.metric.dropped), (ISOLATED, 0));
    let connected = (0..p.graph.node_count())
        .filter(|&i| p.population.inv_in_strength[i] > 0.0)
        .count();
    assert!(connected <= BLOCKS * SIZE);
    let expect = 0.1 + 0.2 * connected as f64 / n as f64;
    assert!(
        (r.estimand.value - expect).abs() < 1e-12,
        "{} vs {expect}",
        r.estimand.value
    );
    // The metric's ICC over the planted blocks: the ANOVA estimate's
    // sampling SD for k groups of m is ≈ sqrt(2(1−ρ)²(1+(m−1)ρ)²/(m(m−1)(k−1))).
    let icc = info.icc_by_design[1].expect("icc over blocks");
    let (m, k) = (SIZE as f64, BLOCKS as f64);
    let sd = (2.0 * (1.0 - ICC).powi(2) * (1.0 + (m - 1.0) * ICC).powi(2)
        / (m * (m - 1.0) * (k - 1.0)))
        .sqrt();
    common::within_4sd("metric ICC over blocks", icc, ICC, sd);
    // Y(0) = shrunk metric + noise: its ICC is (1 − noise_share)·ICC(metric),
    // so the design effect is ≈ 1 + (m − 1)·0.5·icc (the isolated users form
    // one more cluster of 30).
    let d = &r.designs[1].design_effect;
    let closed = 1.0 + (m - 1.0) * 0.5 * icc;
    common::within_4sd("design effect", d.simulated, closed, d.simulated_mc_se);
    // Balance: under complete randomization of n users |SMD| is about
    // half-normal with scale √(1/n₁ + 1/n₀), so its mean is √(2/π) times that.
    let (n1, n0) = ((n / 2) as f64, (n - n / 2) as f64);
    let expect = (2.0 / std::f64::consts::PI).sqrt() * (1.0 / n1 + 1.0 / n0).sqrt();
    let user = r.designs[0].balance.as_ref().expect("balance");
    let names: Vec<&str> = user.variables.iter().map(|v| v.variable.as_str()).collect();
    // The metric, the covariate, and the share of each country.
    assert_eq!(names[..2], ["messages", "tenure"]);
    assert_eq!(names.len(), 5, "{names:?}");
    assert!(
        names[2..].iter().all(|n| n.starts_with("country=")),
        "{names:?}"
    );
    for v in &user.variables {
        common::within_4sd(
            &format!(
                "mean |SMD| of {} under complete user randomization",
                v.variable
            ),
            v.mean_abs_smd,
            expect,
            v.mean_abs_smd_mc_se,
        );
    }
    // Clustered on the metric's ICC, cluster randomization balances it worse.
    let blocks = &r.designs[1].balance.as_ref().unwrap().variables[0];
    assert!(
        blocks.mean_abs_smd - 4.0 * blocks.mean_abs_smd_mc_se > user.variables[0].mean_abs_smd,
        "cluster {} vs user {}",
        blocks.mean_abs_smd,
        user.variables[0].mean_abs_smd
    );
    let table = spillover::report::table(&r);
    assert!(table.contains("balance between arms"), "{table}");
    assert!(table.contains("population: metric \"messages\""), "{table}");
}

/// Run the binary in `dir`: (exit code, stderr). Never a panic.
fn spill(dir: &Path, args: &[&str]) -> (i32, String) {
    common::spill_in(env!("CARGO_BIN_EXE_spillover"), dir, args)
}

#[test]
fn bad_population_files_exit_2_with_file_line_and_what_was_expected() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_inputs(d);
    let good = std::fs::read_to_string(d.join("users.csv")).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    // (name, file text, scenario [population] text, needles)
    let with_line = |k: usize, text: &str| {
        let mut l = lines.clone();
        l[k] = text;
        l.join("\n") + "\n"
    };
    let cases: Vec<(&str, String, String, Vec<&str>)> = vec![
        (
            "duplicate id",
            with_line(5, "u0,3.0,us,4"),
            GOOD.replace("users.csv", "bad.csv"),
            vec!["bad.csv:6:", "\"u0\" repeats line 2"],
        ),
        (
            "not a number",
            with_line(3, "u2,lots,us,4"),
            GOOD.replace("users.csv", "bad.csv"),
            vec![
                "bad.csv:4:",
                "\"messages\" = \"lots\": expected a finite number",
            ],
        ),
        (
            "not finite",
            with_line(3, "u2,inf,us,4"),
            GOOD.replace("users.csv", "bad.csv"),
            vec!["bad.csv:4:", "expected a finite number"],
        ),
        (
            "a covariate that is not a number",
            with_line(7, "u6,1.0,us,"),
            GOOD.replace("users.csv", "bad.csv"),
            vec!["bad.csv:8:", "\"tenure\" = \"\""],
        ),
        (
            "wrong field count",
            with_line(2, "u1,1.0,us"),
            GOOD.replace("users.csv", "bad.csv"),
            vec!["bad.csv:3:", "3 fields: expected 4"],
        ),
        (
            "unknown column",
            good.clone(),
            GOOD.replace("users.csv", "bad.csv")
                .replace("\"tenure\"", "\"age\""),
            vec!["bad.csv:1:", "no column \"age\"", "tenure"],
        ),
        (
            "users missing from the file",
            lines[..lines.len() - ISOLATED - 10].join("\n") + "\n",
            GOOD.replace("users.csv", "bad.csv"),
            vec![
                "10 users of the edge list are not in the population file",
                "missing = \"drop\"",
            ],
        ),
        (
            "an empty file",
            lines[0].to_string() + "\n",
            GOOD.replace("users.csv", "bad.csv"),
            vec!["bad.csv: no rows after the header"],
        ),
    ];
    for (what, file, population, needles) in cases {
        std::fs::write(d.join("bad.csv"), file).unwrap();
        std::fs::write(d.join("s.toml"), scenario(&population)).unwrap();
        let (code, stderr) = spill(d, &["run", "s.toml", "--quiet", "--replicates", "4"]);
        assert_eq!(code, 2, "{what}: {stderr}");
        for n in needles {
            assert!(stderr.contains(n), "{what}: expected {n:?} in {stderr}");
        }
        assert!(
            !d.join("output").join("s").exists(),
            "{what}: output written"
        );
    }
    // missing = "drop": the users and their edges go, and the report counts them.
    std::fs::write(
        d.join("bad.csv"),
        lines[..lines.len() - ISOLATED - 10].join("\n") + "\n",
    )
    .unwrap();
    let population = GOOD.replace("users.csv", "bad.csv") + "\nmissing = \"drop\"";
    let text = scenario(&population).replace(
        "path = \"clusters.txt\"",
        "path = \"clusters.txt\", min_size = 1",
    );
    let s = spillover::scenario::parse(&text, &d.join("s.toml")).unwrap();
    // The clusters file names the dropped users too: a clusters file must
    // name the users of the run, so the run is refused there, with a clear message.
    let err = spillover::scenario::prepare(&s)
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("is not in the graph")),
        "{err:?}"
    );
}

#[test]
fn dropped_users_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_inputs(d);
    let good = std::fs::read_to_string(d.join("users.csv")).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    // The last 10 graph users (u1990..u1999) and every isolated user are gone.
    std::fs::write(
        d.join("some.csv"),
        lines[..lines.len() - ISOLATED - 10].join("\n") + "\n",
    )
    .unwrap();
    let population = GOOD.replace("users.csv", "some.csv") + "\nmissing = \"drop\"";
    let text = scenario(&population).replace(
        "partition = { method = \"file\", path = \"clusters.txt\" }",
        "partition = { method = \"louvain\" }",
    );
    let s = spillover::scenario::parse(&text, &d.join("s.toml")).unwrap();
    let p = spillover::scenario::prepare(&s).unwrap();
    assert_eq!(p.graph.node_count(), BLOCKS * SIZE - 10);
    let m = p.population.metric.as_ref().unwrap();
    assert_eq!((m.isolated, m.dropped), (0, 10));
    // Every remaining edge joins two remaining users.
    for (u, v, _) in p.graph.edges() {
        for x in [u, v] {
            let l = p.graph.label(x);
            let k: usize = l.trim_start_matches('u').parse().unwrap();
            assert!(k < BLOCKS * SIZE - 10, "edge to dropped user {l}");
        }
    }
}

#[test]
fn assign_deploys_replicate_0_as_the_simulation_draws_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_inputs(d);
    let text = scenario(GOOD).replace("replicates = 600", "replicates = 3")
        + r#"
[[design]]
name = "strat"
unit = "cluster"
assignment = "stratified"
strata_by = "covariate"
strata = 4
partition = { method = "file", path = "clusters.txt" }
[[design]]
name = "pairs"
unit = "cluster"
assignment = "matched-pairs"
partition = { method = "file", path = "clusters.txt" }
"#;
    std::fs::write(d.join("s.toml"), &text).unwrap();
    let s = spillover::scenario::parse(&text, &d.join("s.toml")).unwrap();
    let p = spillover::scenario::prepare(&s).unwrap();
    let runs = spillover::diagnosis::simulate(&p, &|| {}).unwrap();
    let n = p.graph.node_count();
    for (k, name) in ["user", "blocks", "strat", "pairs"].iter().enumerate() {
        // The library's draw, continued into the replicate's noise, gives the
        // simulation's null-run difference in means of replicate 0: the same
        // assignment and the same stream.
        let drawn =
            spillover::diagnosis::draw_assignment(&p.graph, &p.designs[k], s.seed, k, 0).unwrap();
        let pop = &p.population;
        let mut noise = vec![0.0; n];
        pop.noise_fill(
            &mut spillover::rng::Noise::new(drawn.rng.clone()),
            &mut noise,
        );
        let y0: Vec<f64> = (0..n)
            .map(|i| pop.observe_user(i, pop.null_mean_outcome(i), noise[i]))
            .collect();
        let arm = |t: u8| {
            let v: Vec<f64> = (0..n).filter(|&i| drawn.z[i] == t).map(|i| y0[i]).collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        let dm = arm(1) - arm(0);
        let sim = runs[k].replicates[0].dm_null.unwrap();
        assert!(
            (dm - sim).abs() < 1e-12,
            "{name}: {dm} vs the simulation's {sim}"
        );
        // The command writes that draw, byte-identical on 1 and 2 threads.
        let mut files = Vec::new();
        for threads in ["1", "2"] {
            let out = format!("{name}-{threads}.csv");
            let (code, stderr) = spill(
                d,
                &[
                    "assign",
                    "s.toml",
                    "--design",
                    name,
                    "--out",
                    &out,
                    "--threads",
                    threads,
                ],
            );
            assert_eq!(code, 0, "{stderr}");
            files.push(std::fs::read_to_string(d.join(&out)).unwrap());
        }
        assert_eq!(files[0], files[1], "{name}: thread count changed the file");
        let mut rows = files[0].lines();
        let header = rows.next().unwrap();
        let rows: Vec<Vec<&str>> = rows.map(|l| l.split(',').collect()).collect();
        assert_eq!(rows.len(), n);
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(r[0], p.graph.label(i as u32));
            assert_eq!(
                r[1] == "treatment",
                drawn.z[i] == 1,
                "{name}: user {}",
                r[0]
            );
        }
        let treated = rows.iter().filter(|r| r[1] == "treatment").count();
        match *name {
            "user" => {
                assert_eq!(header, "user_id,arm,unit");
                assert_eq!(treated, n / 2, "complete randomization: exact arm sizes");
            }
            "blocks" => assert_eq!(header, "user_id,arm,unit"),
            "strat" => {
                assert_eq!(header, "user_id,arm,unit,stratum");
                // Within each stratum, half of the clusters (±1 leftover) are treated.
                let mut per: std::collections::BTreeMap<
                    &str,
                    std::collections::BTreeMap<&str, &str>,
                > = Default::default();
                for r in &rows {
                    per.entry(r[3]).or_default().insert(r[2], r[1]);
                }
                for (stratum, clusters) in per {
                    let t = clusters.values().filter(|&&a| a == "treatment").count() as i64;
                    let c = clusters.len() as i64 - t;
                    assert!(
                        (t - c).abs() <= 1,
                        "stratum {stratum}: {t} treated, {c} control clusters"
                    );
                }
            }
            _ => {
                assert_eq!(header, "user_id,arm,unit,stratum");
                let mut per: std::collections::BTreeMap<
                    &str,
                    std::collections::BTreeSet<(&str, &str)>,
                > = Default::default();
                for r in &rows {
                    per.entry(r[3]).or_default().insert((r[2], r[1]));
                }
                for (pair, units) in per {
                    let arms: std::collections::BTreeSet<&str> =
                        units.iter().map(|u| u.1).collect();
                    assert!(
                        units.len() == 1 || arms.len() == 2,
                        "pair {pair}: {units:?}"
                    );
                }
            }
        }
    }
    // An unknown design lists the designs.
    let (code, stderr) = spill(d, &["assign", "s.toml", "--design", "nope"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("user, blocks, strat, pairs"), "{stderr}");
}

#[test]
fn designs_stratify_by_the_population_files_column() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_inputs(d);
    let text = scenario(GOOD).replace("replicates = 600", "replicates = 200")
        + r#"
[[design]]
name = "by-country"
assignment = "stratified"
strata_by = "country"
[[design]]
name = "blocks-country"
unit = "cluster"
assignment = "stratified"
strata_by = "country"
partition = { method = "file", path = "clusters.txt" }
[[design]]
name = "blocks-country-size"
unit = "cluster"
assignment = "stratified"
strata_by = ["country", "size"]
strata = 2
partition = { method = "file", path = "clusters.txt" }
"#;
    std::fs::write(d.join("s.toml"), &text).unwrap();
    let s = spillover::scenario::parse(&text, &d.join("s.toml")).unwrap();
    let p = spillover::scenario::prepare(&s).unwrap();
    let design = &p.designs[2];
    let strata = design.strata().expect("stratified");
    let (_, names, codes) = p.population.categories.as_ref().unwrap();
    assert_eq!(strata.count, names.len(), "one stratum per country");
    // Users of one country share a stratum, and each stratum is one country.
    let mut of: std::collections::BTreeMap<u32, u32> = Default::default();
    for (i, &c) in codes.iter().enumerate() {
        assert_eq!(*of.entry(c).or_insert(strata.stratum[i]), strata.stratum[i]);
    }
    for r in 0..5 {
        let drawn = spillover::diagnosis::draw_assignment(&p.graph, design, s.seed, 2, r).unwrap();
        for s in 0..strata.count as u32 {
            let members: Vec<usize> = (0..codes.len())
                .filter(|&i| strata.stratum[i] == s)
                .collect();
            let t = members.iter().filter(|&&i| drawn.z[i] == 1).count() as i64;
            assert!(
                (2 * t - members.len() as i64).abs() <= 1,
                "stratum {s}: {t} of {}",
                members.len()
            );
        }
    }
    // Stratification does not change what a user design estimates (the
    // direct effect: biased for the global one by the spillover).
    let runs = spillover::diagnosis::simulate(&p, &|| {}).unwrap();
    let r = spillover::diagnosis::build("pop", &p, &runs, &vec![None; 5]);
    // Crossed strata refine the column's: same modal country within each.
    let (a, b) = (
        p.designs[3].strata().unwrap(),
        p.designs[4].strata().unwrap(),
    );
    assert!(
        b.count > a.count,
        "{} crossed strata vs {} countries",
        b.count,
        a.count
    );
    let mut country_of: std::collections::BTreeMap<u32, u32> = Default::default();
    for c in 0..a.stratum.len() {
        let want = *country_of.entry(b.stratum[c]).or_insert(a.stratum[c]);
        assert_eq!(
            want, a.stratum[c],
            "cluster {c}: a crossed stratum spans two countries"
        );
    }
    let (e, u) = (&r.designs[2].estimators[0], &r.designs[0].estimators[0]);
    common::within_4sd(
        "bias of the country-stratified user design vs the plain one",
        e.bias,
        u.bias,
        (e.bias_mc_se.powi(2) + u.bias_mc_se.powi(2)).sqrt(),
    );
    // A column the population file does not have is refused at its design's line.
    let bad = text.replace("strata_by = \"country\"", "strata_by = \"region\"");
    let err = spillover::scenario::parse(&bad, &d.join("s.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("strata_by = \"region\"") && err.contains("(\"country\")"),
        "{err}"
    );
}

/// users.csv as a Parquet file (snappy-compressed, as warehouses write it):
/// user_id and country as UTF-8 strings, messages as DOUBLE, tenure as INT64.
#[cfg(feature = "parquet")]
fn write_parquet(csv: &str, path: &Path) {
    use parquet::basic::Compression;
    use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use std::sync::Arc;
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let schema = Arc::new(
        parquet::schema::parser::parse_message_type(
            "message users { REQUIRED BYTE_ARRAY user_id (UTF8); REQUIRED DOUBLE messages; \
             REQUIRED BYTE_ARRAY country (UTF8); REQUIRED INT64 tenure; }",
        )
        .unwrap(),
    );
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build(),
    );
    let file = std::fs::File::create(path).unwrap();
    let mut w = SerializedFileWriter::new(file, schema, props).unwrap();
    let mut g = w.next_row_group().unwrap();
    let text =
        |k: usize| -> Vec<ByteArray> { rows.iter().map(|r| ByteArray::from(r[k])).collect() };
    for k in 0..4 {
        let mut c = g.next_column().unwrap().unwrap();
        match k {
            0 | 2 => {
                c.typed::<ByteArrayType>()
                    .write_batch(&text(k), None, None)
                    .unwrap();
            }
            1 => {
                let v: Vec<f64> = rows.iter().map(|r| r[1].parse().unwrap()).collect();
                c.typed::<DoubleType>().write_batch(&v, None, None).unwrap();
            }
            _ => {
                let v: Vec<i64> = rows.iter().map(|r| r[3].parse().unwrap()).collect();
                c.typed::<Int64Type>().write_batch(&v, None, None).unwrap();
            }
        }
        c.close().unwrap();
    }
    g.close().unwrap();
    w.close().unwrap();
}

#[cfg(feature = "parquet")]
#[test]
fn csv_and_parquet_give_byte_identical_reports() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_inputs(d);
    let csv = std::fs::read_to_string(d.join("users.csv")).unwrap();
    write_parquet(csv.trim_start_matches('\u{feff}'), &d.join("users.parquet"));
    let mut reports = Vec::new();
    for (file, out) in [("users.csv", "out-csv"), ("users.parquet", "out-parquet")] {
        let text = scenario(&GOOD.replace("users.csv", file))
            .replace("replicates = 600", "replicates = 20");
        std::fs::write(d.join("s.toml"), text).unwrap();
        let (code, stderr) = spill(d, &["run", "s.toml", "--quiet", "--out", out]);
        assert_eq!(code, 0, "{file}: {stderr}");
        reports.push(std::fs::read(d.join(out).join("report.json")).unwrap());
        reports.push(std::fs::read(d.join(out).join("summary.csv")).unwrap());
    }
    assert!(
        reports[0] == reports[2],
        "report.json differs between CSV and Parquet"
    );
    assert!(
        reports[1] == reports[3],
        "summary.csv differs between CSV and Parquet"
    );
    // A Parquet file without the named column: the file, and what it has.
    let text = scenario(
        &GOOD
            .replace("users.csv", "users.parquet")
            .replace("\"tenure\"", "\"age\""),
    );
    std::fs::write(d.join("s.toml"), text).unwrap();
    let (code, stderr) = spill(d, &["run", "s.toml", "--quiet", "--out", "bad"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("users.parquet") && stderr.contains("no column \"age\""),
        "{stderr}"
    );
    // Not a Parquet file at all.
    std::fs::write(d.join("junk.parquet"), "not parquet").unwrap();
    let text = scenario(&GOOD.replace("users.csv", "junk.parquet"));
    std::fs::write(d.join("s.toml"), text).unwrap();
    let (code, stderr) = spill(d, &["run", "s.toml", "--quiet", "--out", "bad"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("junk.parquet: not a readable Parquet file"),
        "{stderr}"
    );
    assert!(!d.join("bad").exists());
}

#[test]
fn a_zero_one_metric_is_a_rate_around_each_groups_smoothed_rate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_inputs(d);
    // Replace the metric by a 0/1 "retained" flag: 1 for a third of the users.
    let text = std::fs::read_to_string(d.join("users.csv")).unwrap();
    let mut out = String::new();
    for (k, line) in text.lines().enumerate() {
        let mut f: Vec<String> = line.split(',').map(str::to_string).collect();
        if k > 0 {
            f[1] = if k % 3 == 0 { "1" } else { "0" }.into();
        }
        out += &(f.join(",") + "\n");
    }
    std::fs::write(d.join("rate.csv"), out).unwrap();
    let text = scenario(&GOOD.replace("users.csv", "rate.csv"))
        .replace("replicates = 600", "replicates = 10");
    let s = spillover::scenario::parse(&text, &d.join("s.toml")).unwrap();
    let p = spillover::scenario::prepare(&s).unwrap();
    let pop = &p.population;
    let m = pop.metric.as_ref().unwrap();
    assert!(m.binary && m.model.contains("rate"), "{m:?}");
    assert_eq!(pop.kind, spillover::model::Kind::Binary);
    // Each user's control probability is their ICC group's rate smoothed
    // toward the overall rate: (S_g + r̄)/(n_g + 1).
    let y = &pop.x;
    let rate = y.iter().sum::<f64>() / y.len() as f64;
    let k = pop.groups.count();
    let (mut sum, mut count) = (vec![0.0; k], vec![0.0; k]);
    for (i, &g) in pop.groups.labels().iter().enumerate() {
        sum[g as usize] += y[i];
        count[g as usize] += 1.0;
    }
    for (i, &g) in pop.groups.labels().iter().enumerate() {
        let want = (sum[g as usize] + rate) / (count[g as usize] + 1.0);
        let got = pop.null_mean_outcome(i);
        assert!((got - want).abs() < 1e-12, "user {i}: {got} vs {want}");
    }
}
