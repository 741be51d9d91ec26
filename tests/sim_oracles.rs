//! The Monte Carlo core against closed-form truth. Tolerances come from the
//! Monte Carlo standard errors the report itself computes (4 MC SE for means,
//! 3 MC SE for coverage), never from hand-tuned constants.

mod common;
use spillover::diagnosis;
use spillover::diagnosis::Report;

fn run(toml: &str) -> (diagnosis::Prepared, Report) {
    common::diagnose_toml(toml)
}

fn est<'a>(r: &'a Report, design: &str, estimator: &str) -> &'a diagnosis::EstimatorDiagnosis {
    let d = r.designs.iter().find(|d| d.name == design).expect("design");
    d.estimators
        .iter()
        .find(|e| e.name == estimator)
        .expect("estimator")
}

fn within(what: &str, observed: f64, expected: f64, mc_se: f64, k: f64) {
    assert!(
        (observed - expected).abs() < k * mc_se,
        "{what}: {observed} vs {expected} (± {k}·{mc_se})"
    );
}

/// E[DM] under complete randomization of the K equal planted clusters:
/// τ + γ·mean_i[ω_i − (1 − ω_i)/(K − 1)], ω_i = share of i's neighbours in its cluster.
fn expected_cluster_dm(p: &diagnosis::Prepared, tau: f64, gamma: f64) -> f64 {
    let planted = p.planted.as_ref().unwrap();
    let k = (*planted.iter().max().unwrap() + 1) as f64;
    let n = p.graph.node_count();
    let mut acc = 0.0;
    for i in 0..n as u32 {
        let nb = p.graph.in_neighbors(i);
        if nb.is_empty() {
            continue;
        }
        let w = nb
            .iter()
            .filter(|&&j| planted[j as usize] == planted[i as usize])
            .count() as f64
            / nb.len() as f64;
        acc += w - (1.0 - w) / (k - 1.0);
    }
    tau + gamma * acc / n as f64
}

/// A small planted partition: 6 blocks of 10, strong communities.
const SMALL: &str = r#"
seed = 7
replicates = 4000
[graph]
model = "sbm"
n = 60
blocks = 6
p_in = 0.5
p_out = 0.04
[outcome]
sd = 0.1
icc = 0.0
noise_share = 0.5
direct_effect = 0.3
spillover = 2.0
[[design]]
name = "user"
[[design]]
name = "cluster"
unit = "cluster"
partition = { method = "planted" }
[analysis]
estimators = ["dm-naive", "regression"]
"#;

#[test]
fn difference_in_means_matches_its_exact_expectation() {
    let (p, r) = run(SMALL);
    let n = p.graph.node_count() as f64;
    let tau = 0.3;
    let gamma = 2.0;
    let connected = p
        .population
        .inv_in_strength
        .iter()
        .filter(|&&v| v > 0.0)
        .count() as f64
        / n;
    // Global effect τ + γ·f.
    assert!((r.estimand.value - (tau + gamma * connected)).abs() < 1e-12);
    // Complete user randomization: E[DM] = τ − γ·f/(n − 1).
    let dm = est(&r, "user", "dm-naive");
    within(
        "user DM",
        dm.mean_estimate,
        tau - gamma * connected / (n - 1.0),
        dm.bias_mc_se,
        4.0,
    );
    let dm = est(&r, "cluster", "dm-naive");
    within(
        "cluster DM",
        dm.mean_estimate,
        expected_cluster_dm(&p, tau, gamma),
        dm.bias_mc_se,
        4.0,
    );
}

#[test]
fn regression_adjustment_is_unbiased_under_linear_in_means() {
    let (_, r) = run(SMALL);
    for design in ["user", "cluster"] {
        let reg = est(&r, design, "regression");
        assert_eq!(reg.replicates_ok, 4000, "{design}: {:?}", reg.failures);
        within(
            &format!("{design} regression bias"),
            reg.bias,
            0.0,
            reg.bias_mc_se,
            4.0,
        );
    }
    // …while the difference in means is not.
    let dm = est(&r, "user", "dm-naive");
    assert!(dm.bias.abs() > 10.0 * dm.bias_mc_se);
}

const CLUSTERED: &str = r#"
seed = 11
replicates = 1000
[graph]
model = "sbm"
n = 2000
blocks = 40
mean_degree = 10.0
mu = 0.1
[outcome]
sd = 1.0
icc = 0.2
direct_effect = 0.0
spillover = 0.0
[[design]]
name = "user"
[[design]]
name = "cluster"
unit = "cluster"
partition = { method = "planted" }
[analysis]
estimators = ["dm-naive", "dm-cr2", "cluster-means"]
"#;

#[test]
fn naive_se_covers_under_user_randomization_without_spillover() {
    let (_, r) = run(CLUSTERED);
    let e = est(&r, "user", "dm-naive");
    within(
        "user naive coverage",
        e.coverage.value,
        0.95,
        e.coverage.mc_se,
        3.0,
    );
}

#[test]
fn cluster_randomization_needs_cluster_robust_ses_and_the_design_effect_formula_holds() {
    let (_, r) = run(CLUSTERED);
    let naive = est(&r, "cluster", "dm-naive");
    assert!(
        naive.coverage.value < 0.95 - 4.0 * naive.coverage.mc_se,
        "naive coverage {} should fall short of 95 %",
        naive.coverage.value
    );
    for name in ["dm-cr2", "cluster-means"] {
        let e = est(&r, "cluster", name);
        within(
            &format!("{name} coverage"),
            e.coverage.value,
            0.95,
            e.coverage.mc_se,
            3.0,
        );
        within(
            &format!("{name} type-I error"),
            e.type1_error.value,
            0.05,
            e.type1_error.mc_se,
            3.0,
        );
    }
    let d = r.designs.iter().find(|d| d.name == "cluster").unwrap();
    let deff = &d.design_effect;
    eprintln!(
        "design effect: analytic {:.2}, simulated {:.2} ± {:.2}",
        deff.analytic, deff.simulated, deff.simulated_mc_se
    );
    within(
        "design effect",
        deff.simulated,
        deff.analytic,
        deff.simulated_mc_se,
        4.0,
    );
    // Equal clusters of 50 with ICC 0.2: 1 + 49·0.2 = 10.8 in the model.
    assert!(deff.analytic > 5.0);
}

#[test]
fn bias_shrinks_with_the_cut_edge_share() {
    let mut last: Option<(f64, f64, f64)> = None;
    for mu in [0.4, 0.2, 0.05] {
        let toml = format!(
            r#"
seed = 5
replicates = 300
[graph]
model = "sbm"
n = 2000
blocks = 20
mean_degree = 12.0
mu = {mu}
[outcome]
sd = 0.5
icc = 0.0
direct_effect = 0.1
spillover = 0.2
[[design]]
name = "user"
[[design]]
name = "cluster"
unit = "cluster"
partition = {{ method = "planted" }}
[analysis]
estimators = ["dm-naive"]
"#
        );
        let (p, r) = run(&toml);
        let d = r.designs.iter().find(|d| d.name == "cluster").unwrap();
        let e = &d.estimators[0];
        eprintln!(
            "mu {mu}: cut {:.3}, bias {:.4} ± {:.4}",
            d.cut_edge_share, e.bias, e.bias_mc_se
        );
        // Bias = −γ·(K/(K−1))·(cross-cluster neighbour share), exactly in expectation.
        let expected_bias = expected_cluster_dm(&p, 0.1, 0.2) - r.estimand.value;
        within(
            &format!("bias at mu {mu}"),
            e.bias,
            expected_bias,
            e.bias_mc_se,
            4.0,
        );
        if let Some((cut, bias, se)) = last {
            assert!(d.cut_edge_share < cut);
            // Smaller by more than 4 combined MC SEs.
            assert!(e.bias.abs() < bias.abs() - 4.0 * (e.bias_mc_se.powi(2) + se * se).sqrt());
        }
        last = Some((d.cut_edge_share, e.bias, e.bias_mc_se));
    }
}

#[test]
fn binary_outcomes_and_threshold_exposure() {
    // A rate with a logistic link and no spillover: under complete user
    // randomization the difference in means is unbiased for the global effect
    // (in probability units) and the naive CI covers.
    let toml = r#"
seed = 13
replicates = 1500
[graph]
model = "gnp"
n = 1500
p = 0.004
[outcome]
kind = "binary"
base_rate = 0.2
sd = 0.5
icc = 0.1
icc_groups = "louvain"
direct_effect = 0.4
spillover = 0.0
[[design]]
name = "user"
[[design]]
name = "bern"
assignment = "bernoulli"
[analysis]
estimators = ["dm-naive", "dm-cr2"]
"#;
    let (_, r) = run(toml);
    assert!(r.estimand.value > 0.03 && r.estimand.spillover.abs() < 1e-12);
    for design in ["user", "bern"] {
        let e = est(&r, design, "dm-naive");
        within(
            &format!("{design} binary DM bias"),
            e.bias,
            0.0,
            e.bias_mc_se,
            4.0,
        );
        within(
            &format!("{design} binary coverage"),
            e.coverage.value,
            0.95,
            e.coverage.mc_se,
            3.0,
        );
    }
    // Threshold exposure: everyone treated crosses any θ ≤ 1, no one treated
    // crosses none, so the spillover part is γ × (share of nodes with neighbours).
    let toml = SMALL.replace(
        "spillover = 2.0",
        "spillover = 2.0\nexposure = \"threshold\"\nthreshold = 0.7",
    );
    let (p, r) = run(&toml.replace("replicates = 4000", "replicates = 2"));
    let n = p.graph.node_count() as f64;
    let connected = p
        .population
        .inv_in_strength
        .iter()
        .filter(|&&v| v > 0.0)
        .count() as f64
        / n;
    assert!((r.estimand.spillover - 2.0 * connected).abs() < 1e-12);
}

#[test]
fn randomization_inference_holds_its_level_with_few_clusters() {
    // 12 clusters, strong ICC: the naive t-test over-rejects; Fisher
    // randomization p-values (199 redraws, p ≤ α) hold 5 % in the null run.
    let toml = r#"
seed = 17
replicates = 800
[graph]
model = "sbm"
n = 240
blocks = 12
mean_degree = 6.0
mu = 0.1
[outcome]
icc = 0.3
direct_effect = 0.0
spillover = 0.0
[[design]]
name = "user"
[[design]]
name = "cluster"
unit = "cluster"
partition = { method = "planted" }
[analysis]
estimators = ["dm-naive", "cluster-means"]
randomization_inference = 199
"#;
    let (_, r) = run(toml);
    let naive = est(&r, "cluster", "dm-naive");
    assert!(
        naive.type1_error.value > 0.05 + 4.0 * naive.type1_error.mc_se,
        "t-test type I {}",
        naive.type1_error.value
    );
    for name in ["dm-naive", "cluster-means"] {
        let e = est(&r, "cluster", name);
        let ri = e.ri_type1_error.unwrap();
        let t1 = ri.value;
        let se = ri.mc_se.max((0.05f64 * 0.95 / 800.0).sqrt());
        eprintln!(
            "{name}: t-test type I {:.3}, RI type I {t1:.3}",
            e.type1_error.value
        );
        within(&format!("{name} RI type I"), t1, 0.05, se, 3.0);
    }
}

#[test]
fn saturation_design_recovers_direct_and_spillover_effects() {
    let toml = r#"
seed = 23
replicates = 1500
[graph]
model = "sbm"
n = 1200
blocks = 30
mean_degree = 10.0
mu = 0.15
[outcome]
sd = 0.5
icc = 0.1
direct_effect = 0.3
spillover = 0.6
[[design]]
name = "user"
[[design]]
name = "saturation"
unit = "cluster"
assignment = "saturation"
saturations = [0.0, 0.5, 1.0]
partition = { method = "planted" }
[analysis]
estimators = ["dm-naive"]
"#;
    let (_, r) = run(toml);
    let d = r.designs.iter().find(|d| d.name == "saturation").unwrap();
    let names: Vec<&str> = d.estimators.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["direct@0.5", "spillover@0.5", "total"]);
    for e in &d.estimators {
        eprintln!(
            "{}: truth {:.4}, mean {:.4}, bias {:.4} ± {:.4}, coverage {:.3}",
            e.name, e.truth, e.mean_estimate, e.bias, e.bias_mc_se, e.coverage.value
        );
        assert!(
            e.truth.is_finite() && e.replicates_ok == 1500,
            "{}: {:?}",
            e.name,
            e.failures
        );
        within(&format!("{} bias", e.name), e.bias, 0.0, e.bias_mc_se, 4.0);
    }
    // Linear in means: spillover at 0.5 is about γ/2 within clusters (diluted by
    // cross-cluster edges), total about τ + γ·(within share).
    let spill = &d.estimators[1];
    assert!(spill.truth > 0.2 && spill.truth < 0.3, "{}", spill.truth);
}

/// Issue 10: on a graph with isolated users the linear-in-means regression
/// targets the global effect τ + γ·f (f = share of users with neighbours), not
/// τ + γ. With (nearly) deterministic outcomes every replicate's estimate is
/// the truth.
#[test]
fn regression_is_exact_on_a_graph_with_isolated_users() {
    let (p, r) = run(r#"
seed = 4
replicates = 20
[graph]
model = "gnp"
n = 2000
p = 0.0008
[outcome]
sd = 0.000001
icc = 0.0
direct_effect = 0.1
spillover = 0.2
[[design]]
name = "user"
[[design]]
name = "user-bernoulli"
assignment = "bernoulli"
[analysis]
estimators = ["regression"]
"#);
    let f = p.population.connected_share();
    assert!(f > 0.6 && f < 0.9, "share of users with neighbours {f}");
    let truth = p.estimand.value;
    assert!((truth - (0.1 + 0.2 * f)).abs() < 1e-12, "{truth} vs τ + γf");
    for design in ["user", "user-bernoulli"] {
        let e = est(&r, design, "regression");
        assert_eq!(e.replicates_ok, 20);
        // Every replicate exact up to the 1e-6 noise: the old contrast was off by γ(1 − f) ≈ 0.05.
        assert!(e.bias.abs() < 1e-4, "{design}: bias {}", e.bias);
        assert!(e.rmse < 1e-4, "{design}: rmse {}", e.rmse);
    }
}

/// Issue 10: with no intra-cluster correlation the ANOVA ICC estimate is
/// negative about half the time; the analytic design effect is still never
/// below 1.
#[test]
fn analytic_design_effect_is_never_below_one() {
    let (_, r) = run(r#"
seed = 8
replicates = 30
[graph]
model = "sbm"
n = 3000
blocks = 1000
mean_degree = 4.0
mu = 0.5
[outcome]
icc = 0.0
[[design]]
name = "user"
[[design]]
name = "pairs"
unit = "cluster"
partition = { method = "planted" }
[analysis]
estimators = ["dm-naive"]
"#);
    for d in &r.designs {
        eprintln!(
            "{}: icc {:?}, analytic deff {}",
            d.name, d.icc, d.design_effect.analytic
        );
        assert!(
            d.design_effect.analytic >= 1.0,
            "{}: {}",
            d.name,
            d.design_effect.analytic
        );
    }
}

/// Very unequal planted clusters (10 to 104 users) with strong
/// intra-cluster correlation and a cluster-level covariate, randomized three
/// restricted ways.
fn restricted_designs(seed: u64) -> String {
    let sizes: Vec<String> = (0..96).map(|i| (10 + i).to_string()).collect();
    format!(
        r#"
seed = {seed}
replicates = 1000
[graph]
model = "sbm"
sizes = [{}]
mean_degree = 8.0
mu = 0.1
[outcome]
sd = 1.0
icc = 0.2
direct_effect = 0.2
spillover = 0.0
covariate_correlation = 0.8
[[design]]
name = "strat-covariate"
unit = "cluster"
assignment = "stratified"
strata_by = "covariate"
strata = 4
partition = {{ method = "planted" }}
[[design]]
name = "strat-size"
unit = "cluster"
assignment = "stratified"
strata_by = "size"
strata = 6
partition = {{ method = "planted" }}
[[design]]
name = "pairs"
unit = "cluster"
assignment = "matched-pairs"
partition = {{ method = "planted" }}
[analysis]
estimators = ["dm-cr2", "cluster-means", "regression", "cuped"]
"#,
        sizes.join(", ")
    )
}

/// Issue 10, "analyse as you randomize": under stratified and matched-pair
/// randomization every estimator's mean SE matches its true SD within Monte
/// Carlo error (relative MC SE of an SD ≈ 1/sqrt(2(R − 1))) and its
/// intervals cover at the nominal rate within 4 MC SE. Analysed as if
/// unstratified, the covariate-stratified SEs were 1.5–2× too large.
#[test]
fn stratified_and_matched_pair_designs_are_analysed_as_randomized() {
    // SEED=… tries another population (seeds 31–35 checked).
    let seed = std::env::var("SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(31);
    let (_, r) = run(&restricted_designs(seed));
    for d in &r.designs {
        for e in &d.estimators {
            let reps = e.replicates_ok as f64;
            assert!(reps > 990.0, "{} {}: {reps} replicates", d.name, e.name);
            let ratio_mc_se = e.se_sd_ratio * (1.0 / (2.0 * (reps - 1.0))).sqrt();
            eprintln!(
                "{:16} {:14} bias {:+.4} ± {:.4}  se/sd {:.3} ± {:.3}  coverage {:.3}",
                d.name, e.name, e.bias, e.bias_mc_se, e.se_sd_ratio, ratio_mc_se, e.coverage.value
            );
            // The cluster-means test targets the mean over clusters, which
            // equals the global effect here (constant effects, no spillover).
            within(
                &format!("{} {} bias", d.name, e.name),
                e.bias,
                0.0,
                e.bias_mc_se,
                4.0,
            );
            within(
                &format!("{} {} se/sd", d.name, e.name),
                e.se_sd_ratio,
                1.0,
                ratio_mc_se,
                4.0,
            );
            let nominal_mc_se = (0.95f64 * 0.05 / reps).sqrt();
            within(
                &format!("{} {} coverage", d.name, e.name),
                e.coverage.value,
                0.95,
                nominal_mc_se,
                4.0,
            );
        }
    }
}

/// Issue 10: with no intra-cluster correlation the only design effect of
/// cluster randomization is how much the arm sizes vary. With 30 clusters of
/// 4 users and 6 of 150, Bernoulli assignment gives a simulated design effect
/// near 2; the analytic one (now times the exact arm-size factor) agrees
/// within 4 MC SE, under complete randomization too. All variation is fresh
/// noise (`noise_share = 1`): a fixed finite population's realized
/// between-cluster variation would add its own (random) term.
#[test]
fn analytic_design_effect_counts_unequal_arm_sizes() {
    let mut sizes = vec!["4"; 30];
    sizes.extend(["150"; 6]);
    let (_, r) = run(&format!(
        r#"
seed = 12
replicates = 3000
[graph]
model = "sbm"
sizes = [{}]
mean_degree = 3.0
mu = 0.05
[outcome]
icc = 0.0
noise_share = 1.0
direct_effect = 0.1
spillover = 0.0
[[design]]
name = "bernoulli"
unit = "cluster"
assignment = "bernoulli"
partition = {{ method = "planted" }}
[[design]]
name = "complete"
unit = "cluster"
partition = {{ method = "planted" }}
[analysis]
estimators = ["dm-naive"]
"#,
        sizes.join(", ")
    ));
    for d in &r.designs {
        let de = &d.design_effect;
        eprintln!(
            "{}: simulated {:.3} ± {:.3}, analytic {:.3} (arm-size factor {:?}; {})",
            d.name, de.simulated, de.simulated_mc_se, de.analytic, de.arm_size_factor, de.formula
        );
        assert!(de.arm_size_factor.unwrap() > 1.1, "{}", d.name);
        within(
            &format!("{} design effect", d.name),
            de.analytic,
            de.simulated,
            de.simulated_mc_se,
            4.0,
        );
    }
}

/// A scenario on the directed CollegeMsg graph (pure senders, isolated
/// users) with 70 replicates, a user and a Bernoulli design, then `rest`
/// (more designs and the analysis).
fn college_scenario(seed: u64, rest: &str) -> String {
    format!(
        r#"
seed = {seed}
replicates = 70
[graph]
path = "{}"
directed = true
third_column = "ignore"
[outcome]
icc = 0.1
direct_effect = 0.2
spillover = 0.3
[[design]]
name = "user"
[[design]]
name = "bernoulli"
assignment = "bernoulli"
{rest}"#,
        common::shared_data("CollegeMsg.txt").display()
    )
}

/// Issue 14: replicates that share one exposure sweep (batches of 64 on one
/// thread, 32 on two) equal, bit for bit, replicates run one at a time with
/// their own sweep: user, Bernoulli, saturation (by node) and cluster (by
/// cluster) designs, a directed (unweighted) graph with pure senders, HT and
/// Hájek, and randomization inference.
#[test]
fn batched_replicates_equal_replicates_run_alone() {
    let toml = college_scenario(
        5,
        r#"[[design]]
name = "saturation"
unit = "cluster"
assignment = "saturation"
saturations = [0.0, 0.5, 1.0]
partition = { method = "louvain", min_size = 10 }
[[design]]
name = "louvain"
unit = "cluster"
partition = { method = "louvain", min_size = 10 }
[analysis]
estimators = ["dm-naive", "dm-cr2", "regression", "ht", "hajek"]
randomization_inference = 3
"#,
    );
    use spillover::{diagnosis, scenario};
    let s = scenario::parse(&toml, std::path::Path::new("test.toml")).expect("valid scenario");
    let p = scenario::prepare(&s).expect("prepared");
    let (g, pop, cfg) = (&p.graph, &p.population, &p.config);
    assert!(!g.is_weighted() && pop.inv_in_strength.contains(&0.0));
    for (i, d) in p.designs.iter().enumerate() {
        let engine = diagnosis::Engine::new(g, pop, d, cfg, i).expect("engine");
        let width = if d.spec.unit == spillover::data::design::Unit::Cluster {
            d.units()
        } else {
            0
        };
        let (alone, others): (Vec<diagnosis::Replicate>, Vec<Vec<f64>>) = (0..cfg.replicates)
            .map(|ri| {
                let mut other = vec![0.0; width];
                let rep = engine.replicate(ri, &mut other).expect("replicate");
                (rep, other)
            })
            .unzip();
        // Per block of 64 replicates, the per-cluster sums, in order.
        let blocks: Vec<Vec<f64>> = others
            .chunks(64)
            .map(|b| {
                let mut sum = vec![0.0; width];
                for o in b {
                    for (s, x) in sum.iter_mut().zip(o) {
                        *s += x;
                    }
                }
                sum
            })
            .collect();
        for threads in [1, 2] {
            let lanes = common::on_threads(threads, || {
                diagnosis::Engine::new(g, pop, d, cfg, i)
                    .expect("engine")
                    .batch_lanes()
            });
            // By node 64 or 32 lanes; by cluster (the Louvain design) 8.
            let want = match d.spec.name.as_str() {
                "louvain" => 8,
                _ => 64 / threads,
            };
            assert_eq!(lanes, want, "{}: batches of {lanes}", d.spec.name);
            let (_, part) = common::on_threads(threads, || {
                diagnosis::run_design_part(g, pop, d, cfg, i, 0..cfg.replicates, &|| {})
            })
            .expect("run");
            // Bit for bit: Debug prints every f64 exactly, −0.0 included.
            assert_eq!(
                format!("{:?}", part.replicates),
                format!("{alone:?}"),
                "{} on {threads} threads",
                d.spec.name
            );
            assert_eq!(format!("{:?}", part.block_sums), format!("{blocks:?}"));
        }
    }
}

/// Issue 14: with only the estimators the sums cover (difference in means,
/// naive and CR2), a replicate keeps no per-user outcomes or exposures: each
/// block of users is drawn, observed and summed in cache. Its effects, null
/// runs and contamination equal, bit for bit, those of the same replicate
/// when a regression makes it keep them, batched or run alone, on 1 and 2
/// threads: a directed graph with pure senders and isolated users, user and
/// Bernoulli designs, and a cluster design (which keeps its sums per cluster).
#[test]
fn lean_replicates_equal_replicates_that_keep_their_outcomes() {
    use spillover::{diagnosis, scenario};
    let toml = |estimators: &str| {
        college_scenario(
            8,
            &format!(
                r#"[[design]]
name = "louvain"
unit = "cluster"
partition = {{ method = "louvain", min_size = 10 }}
[analysis]
estimators = [{estimators}]
"#
            ),
        )
    };
    let run = |estimators: &str, threads: usize| {
        let s = scenario::parse(&toml(estimators), std::path::Path::new("t.toml")).expect("valid");
        let p = scenario::prepare(&s).expect("prepared");
        let (g, pop, cfg) = (&p.graph, &p.population, &p.config);
        let mut out = Vec::new();
        for (i, d) in p.designs.iter().enumerate() {
            let (_, part) = common::on_threads(threads, || {
                diagnosis::run_design_part(g, pop, d, cfg, i, 0..cfg.replicates, &|| {})
            })
            .expect("run");
            let engine = diagnosis::Engine::new(g, pop, d, cfg, i).expect("engine");
            let width = if d.spec.unit == spillover::data::design::Unit::Cluster {
                d.units()
            } else {
                0
            };
            let alone: Vec<diagnosis::Replicate> = (0..cfg.replicates)
                .map(|ri| {
                    engine
                        .replicate(ri, &mut vec![0.0; width])
                        .expect("replicate")
                })
                .collect();
            out.push((part.replicates, alone, part.block_sums));
        }
        out
    };
    // What both runs compute: the two differences in means, the null run's,
    // and the contamination.
    let key = |r: &diagnosis::Replicate| {
        format!(
            "{:?} {:?} {:?} {:?} {:?}",
            &r.effect[..2],
            &r.null[..2],
            r.dm_null,
            r.contamination_treated,
            r.contamination_control
        )
    };
    let lean = run(r#""dm-naive", "dm-cr2""#, 1);
    let kept = run(r#""dm-naive", "dm-cr2", "regression""#, 1);
    for ((l, k), name) in lean.iter().zip(&kept).zip(["user", "bernoulli", "louvain"]) {
        assert_eq!(l.0.len(), 70);
        for (a, b) in l.0.iter().zip(&k.0) {
            assert_eq!(key(a), key(b), "{name}: lean against kept");
        }
        assert_eq!(
            format!("{:?}", l.0),
            format!("{:?}", l.1),
            "{name}: batched against alone"
        );
        assert_eq!(
            format!("{:?}", l.2),
            format!("{:?}", k.2),
            "{name}: cluster sums"
        );
        assert!(l.0.iter().all(|r| r.effect.iter().all(|e| e.is_ok())));
    }
    assert_eq!(
        format!("{lean:?}"),
        format!("{:?}", run(r#""dm-naive", "dm-cr2""#, 2))
    );
}

/// Issue 14: streamed batches (lean replicates of user-level designs whose
/// exposures are counted a block of users at a time for every replicate of
/// the batch) equal, bit for bit, replicates run one at a time, on 1 and 2
/// threads. ego-Facebook has users with more than 255 neighbours (counted
/// on their own), and 69 replicates make batches of 64 and 5 on one thread
/// and of 32, 32 and 5 on two: an odd lane count, and fewer than 8.
#[test]
fn streamed_batches_equal_replicates_run_alone() {
    use spillover::{diagnosis, scenario};
    let toml = format!(
        r#"
seed = 12
replicates = 69
[graph]
path = "{}"
[outcome]
icc = 0.1
direct_effect = 0.2
spillover = 0.3
[[design]]
name = "user"
[[design]]
name = "bernoulli"
assignment = "bernoulli"
treated_share = 0.3
[analysis]
estimators = ["dm-naive", "dm-cr2", "cluster-means"]
"#,
        common::shared_data("facebook_combined.txt").display()
    );
    let s = scenario::parse(&toml, std::path::Path::new("t.toml")).expect("valid");
    let p = scenario::prepare(&s).expect("prepared");
    let (g, pop, cfg) = (&p.graph, &p.population, &p.config);
    let (off, _, _) = g.in_csr();
    assert!(off.windows(2).any(|w| w[1] - w[0] > 255), "a hub");
    for (i, d) in p.designs.iter().enumerate() {
        let engine = diagnosis::Engine::new(g, pop, d, cfg, i).expect("engine");
        let alone: Vec<diagnosis::Replicate> = (0..cfg.replicates)
            .map(|ri| engine.replicate(ri, &mut []).expect("replicate"))
            .collect();
        assert!(alone.iter().all(|r| r.effect.iter().all(|e| e.is_ok())));
        for threads in [1, 2] {
            // The batch size follows the pool's threads: ask inside it.
            let (streams, run) = common::on_threads(threads, || {
                let streams = diagnosis::Engine::new(g, pop, d, cfg, i).map(|e| e.streams());
                let run = diagnosis::run_design_part(g, pop, d, cfg, i, 0..cfg.replicates, &|| {});
                (streams, run)
            });
            assert!(streams.expect("engine"), "{} streams", d.spec.name);
            let (_, part) = run.expect("run");
            assert_eq!(
                format!("{:?}", part.replicates),
                format!("{alone:?}"),
                "{} on {threads} threads",
                d.spec.name
            );
        }
    }
}

/// Issue 14: the designs run while the partitions are computed
/// (`prepare_running`, what `spillover run` does) equal the same designs
/// simulated after preparing, and the preparation is the same.
#[test]
fn designs_run_during_preparation_equal_designs_run_after() {
    let toml = r#"
seed = 8
replicates = 40
[graph]
model = "sbm"
n = 3000
blocks = 30
mean_degree = 8.0
mu = 0.2
[outcome]
icc = 0.1
direct_effect = 0.2
spillover = 0.2
[[design]]
name = "user"
[[design]]
name = "louvain"
unit = "cluster"
partition = { method = "louvain" }
[[design]]
name = "bernoulli"
assignment = "bernoulli"
[[design]]
name = "balanced"
unit = "cluster"
partition = { method = "ldg", parts = 30 }
"#;
    use spillover::{diagnosis, scenario};
    let s = scenario::parse(toml, std::path::Path::new("test.toml")).expect("valid scenario");
    let after = scenario::prepare(&s).expect("prepared");
    let want = diagnosis::simulate(&after, &|| {}).expect("simulated");
    for threads in [1, 2] {
        let ticks = std::sync::atomic::AtomicUsize::new(0);
        let (p, early) = common::on_threads(threads, || {
            scenario::prepare_running(&s, &diagnosis::Cancel::default(), &|| {
                ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            })
        })
        .expect("prepared");
        for (a, b) in p.designs.iter().zip(&after.designs) {
            assert_eq!(a.clusters.labels(), b.clusters.labels());
        }
        let ran: Vec<bool> = early.iter().map(Option::is_some).collect();
        assert_eq!(ran, [true, false, true, false]);
        assert_eq!(ticks.into_inner(), 80);
        for (i, run) in early.into_iter().enumerate() {
            if let Some(run) = run {
                assert_eq!(
                    run.replicates, want[i].replicates,
                    "design {i}, {threads} threads"
                );
            }
        }
    }
    // Cancelled: no early run is kept, and the run that follows stops.
    let cancel = diagnosis::Cancel::default();
    cancel.cancel();
    let (p, early) = scenario::prepare_running(&s, &cancel, &|| {}).expect("prepared");
    assert!(early.iter().all(Option::is_none));
    let files = vec![None; p.designs.len()];
    let res = diagnosis::diagnose_with("t", &p, early, None, &files, &|| {}, &|| {});
    assert!(matches!(res, Err(spillover::Error::Cancelled)));
}
