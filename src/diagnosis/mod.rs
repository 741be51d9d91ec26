//! Diagnosis: simulate many draws of every design and judge each design ×
//! estimator against the truth.
//!
//! [`engine`] runs replicates, [`diagnosands`] summarizes them with Monte
//! Carlo SEs, [`recommend`] picks a design × estimator, [`power`] draws power
//! curves, [`sweep`] runs one design across partition granularities and
//! [`calc`] holds the closed-form calculators. This file owns [`Prepared`]
//! (everything a diagnosis needs, built by `scenario::prepare` or by hand)
//! and [`Report`], the assembled diagnosis that `report` renders.

pub mod aging;
pub mod calc;
pub mod diagnosands;
pub mod engine;
pub mod power;
pub mod recommend;
pub mod shard;
pub mod sweep;

pub use diagnosands::*;
pub use engine::*;
pub use power::*;
pub use recommend::{Choice, Recommendation};

use crate::data::design::Design;
use crate::graph::Graph;
use crate::inquiry::Estimand;
use crate::model::Population;
use serde::Serialize;

/// Everything a scenario needs before its first replicate: the network, the
/// population, the resolved designs and the exact estimand. Building it is
/// where bad input is found, before any output is written.
pub struct Prepared {
    /// The network.
    pub graph: Graph,
    /// One line describing the network's source.
    pub graph_description: String,
    /// Planted communities, if the generator has them.
    pub planted: Option<Vec<u32>>,
    /// The finite population.
    pub population: Population,
    /// The designs, in scenario order.
    pub designs: Vec<Design>,
    /// The global average treatment effect.
    pub estimand: crate::inquiry::Estimand,
    /// Monte Carlo settings.
    pub config: SimConfig,
    /// The interactions before a time split (`[graph] split_at`): the
    /// clusters were built on it, the experiment runs on `graph`.
    pub before: Option<Graph>,
}

/// The scenario as run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioInfo {
    /// Name.
    pub name: String,
    /// Seed.
    pub seed: u64,
    /// Replicates per design.
    pub replicates: usize,
    /// Test level.
    pub alpha: f64,
}

/// The network.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GraphInfo {
    /// Where it came from.
    pub source: String,
    /// Nodes.
    pub nodes: usize,
    /// Edges (arcs if directed).
    pub edges: usize,
    /// Directed?
    pub directed: bool,
    /// Weighted?
    pub weighted: bool,
}

/// Everything `report.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The scenario.
    pub scenario: ScenarioInfo,
    /// The network.
    pub graph: GraphInfo,
    /// The global average treatment effect and its parts.
    pub estimand: Estimand,
    /// One entry per design, in scenario order.
    pub designs: Vec<DesignDiagnosis>,
    /// Which design × estimator to run, and why.
    pub recommendation: Recommendation,
    /// Power against effect size (when the scenario has a `[power_curve]`).
    pub power_curves: Vec<crate::diagnosis::PowerCurve>,
    /// The user's own metric (when the scenario has a `[population]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub population: Option<PopulationInfo>,
}

/// The real metric of a population file, measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PopulationInfo {
    /// Mean, SD, skew, isolated and dropped users, and how the metric drives the simulation.
    #[serde(flatten)]
    pub metric: crate::model::MetricSummary,
    /// The metric's ANOVA ICC over each design's clusters (in design order;
    /// `None` for user designs and where it cannot be computed).
    pub icc_by_design: Vec<Option<f64>>,
}

impl Prepared {
    /// Assemble a diagnosis set-up from parts built in code (no scenario
    /// file): the exact global effect is computed here.
    ///
    /// ```
    /// use spillover::data::design::{Design, DesignSpec, PartitionMethod, PartitionSpec};
    /// use spillover::diagnosis::{build, simulate, Prepared, SimConfig};
    /// use spillover::graph::generate::{Model, Sbm};
    /// use spillover::model::{OutcomeSpec, Population};
    /// use spillover::partition::Partition;
    ///
    /// // 600 users in 20 communities; the outcome's ICC lives in them.
    /// let gen = Model::Sbm(Sbm { n: Some(600), blocks: Some(20), mean_degree: Some(8.0), mu: Some(0.1), ..Default::default() })
    ///     .generate(1)?;
    /// let planted = Partition::from_labels(gen.communities.as_ref().unwrap());
    /// let pop = Population::draw(&OutcomeSpec::default(), &gen.graph, planted.clone(), 1)?;
    /// let user = Design::new(DesignSpec::user("user"), None, &pop.x)?;
    /// let spec = DesignSpec::cluster("communities", PartitionSpec::new(PartitionMethod::Planted));
    /// let clustered = Design::new(spec, Some(planted), &pop.x)?;
    /// let p = Prepared::new(gen.graph, "20 communities", pop, vec![user, clustered], SimConfig::new(7, 50));
    /// let runs = simulate(&p, &|| {})?;
    /// let report = build("example", &p, &runs, &[None, None]);
    /// // Cluster randomization is less biased than user randomization here.
    /// let bias = |d: usize| report.designs[d].estimators[0].bias.abs();
    /// assert!(bias(1) < bias(0));
    /// # Ok::<(), spillover::Error>(())
    /// ```
    pub fn new(
        graph: Graph,
        description: impl Into<String>,
        population: Population,
        designs: Vec<Design>,
        config: SimConfig,
    ) -> Prepared {
        let estimand = crate::inquiry::global_effect(&population);
        Prepared {
            graph,
            graph_description: description.into(),
            planted: None,
            population,
            designs,
            estimand,
            config,
            before: None,
        }
    }
}

/// The whole diagnosis of a prepared scenario: simulate every design,
/// assemble the [`Report`] (clusters files named by `clusters_files`), and
/// with a power curve, simulate it too. `tick` is called once per finished
/// replicate of the main run, `tick_power` once per power-curve replicate.
/// Returns the report and the runs (for `replicates.csv`).
pub fn diagnose(
    name: &str,
    p: &Prepared,
    power_curve: Option<&PowerCurveSpec>,
    clusters_files: &[Option<String>],
    tick: &(dyn Fn() + Sync),
    tick_power: &(dyn Fn() + Sync),
) -> crate::error::Result<(Report, Vec<DesignRun>)> {
    diagnose_with(
        name,
        p,
        Vec::new(),
        power_curve,
        clusters_files,
        tick,
        tick_power,
    )
}

/// [`diagnose`] with some designs' runs already done (`runs[i]` for design
/// `i`, as [`crate::scenario::prepare_running`] gives them); the others are
/// simulated here.
pub fn diagnose_with(
    name: &str,
    p: &Prepared,
    runs: Vec<Option<DesignRun>>,
    power_curve: Option<&PowerCurveSpec>,
    clusters_files: &[Option<String>],
    tick: &(dyn Fn() + Sync),
    tick_power: &(dyn Fn() + Sync),
) -> crate::error::Result<(Report, Vec<DesignRun>)> {
    let runs = simulate_rest(p, runs, tick)?;
    let mut report = build(name, p, &runs, clusters_files);
    if let Some(pc) = power_curve {
        let deffs = simulated_deffs(&report);
        report.power_curves = power_curves(p, pc, &deffs, tick_power)?;
    }
    Ok((report, runs))
}

/// Each design's simulated design effect (what the power curve's analytic
/// line uses).
pub fn simulated_deffs(report: &Report) -> Vec<f64> {
    report
        .designs
        .iter()
        .map(|d| d.design_effect.simulated)
        .collect()
}

/// Diagnose every design and assemble the report (see [`Prepared::new`] for
/// a whole diagnosis from code).
///
/// # Complexity
/// O(designs × (replicates × estimators + edges)) on top of the simulation.
pub fn build(
    name: &str,
    p: &Prepared,
    runs: &[DesignRun],
    clusters_files: &[Option<String>],
) -> Report {
    let designs: Vec<DesignDiagnosis> = p
        .designs
        .iter()
        .zip(runs)
        .zip(clusters_files)
        .enumerate()
        .map(|(i, ((d, run), file))| {
            let mut diagnosis = crate::diagnosis::diagnose_design(
                &p.graph,
                &p.population,
                d,
                run,
                &p.config,
                p.estimand.value,
                file.clone(),
            );
            // Redrawn designs are refused with a time split, so the draws cannot fail.
            diagnosis.aging = aging::aging(p, i).ok().flatten();
            diagnosis
        })
        .collect();
    Report {
        scenario: ScenarioInfo {
            name: name.to_string(),
            seed: p.config.seed,
            replicates: p.config.replicates,
            alpha: p.config.alpha,
        },
        graph: GraphInfo {
            source: p.graph_description.clone(),
            nodes: p.graph.node_count(),
            edges: p.graph.edge_count(),
            directed: p.graph.is_directed(),
            weighted: p.graph.is_weighted(),
        },
        estimand: p.estimand,
        recommendation: recommend::recommend(&designs, runs, p.config.alpha, p.estimand.value),
        power_curves: Vec::new(),
        population: p.population.metric.clone().map(|metric| PopulationInfo {
            metric,
            icc_by_design: p
                .designs
                .iter()
                .map(|d| {
                    (d.spec.unit == crate::data::design::Unit::Cluster)
                        .then(|| {
                            crate::stats::anova_icc(
                                &p.population.x,
                                d.clusters.labels(),
                                d.clusters.count(),
                            )
                        })
                        .flatten()
                })
                .collect(),
        }),
        designs,
    }
}
