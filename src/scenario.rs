//! Scenario files: parsing and validation.
//!
//! This module owns [`Scenario`], the validated content of a TOML scenario
//! file: `seed`, `replicates`, `alpha`, a `[graph]` (a generator with its
//! parameters, or a `path` to an edge list), an `[outcome]` model, two or more
//! `[[design]]`s and an `[analysis]` section naming estimators. Unknown keys are
//! errors, every value has a default and a range check, and every error names
//! the file, the line and what was expected.

use crate::answer::EstimatorKind;
use crate::data::design::Design;
use crate::data::design::DesignSpec;
use crate::diagnosis::{ExposureConfig, PowerCurveSpec, Prepared, SimConfig};
use crate::error::{Error, Result};
use crate::graph::generate::Model;
use crate::graph::io::{Header, ThirdColumn};
use crate::graph::{Duplicates, SelfLoops};
use crate::model::OutcomeSpec;
use crate::model::Population;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

fn d_seed() -> u64 {
    1
}
fn d_replicates() -> usize {
    500
}
fn d_alpha() -> f64 {
    0.05
}
fn d_estimators() -> Vec<EstimatorKind> {
    EstimatorKind::ALL.to_vec()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    name: Option<String>,
    #[serde(default = "d_seed")]
    seed: u64,
    // Spans (toml::Spanned) give each error the line of its own key or
    // section, whatever comments or other sections say.
    replicates: Option<toml::Spanned<usize>>,
    alpha: Option<toml::Spanned<f64>>,
    graph: Option<toml::Spanned<toml::Table>>,
    outcome: Option<toml::Spanned<OutcomeSpec>>,
    #[serde(default)]
    design: Vec<toml::Spanned<DesignSpec>>,
    analysis: Option<toml::Spanned<AnalysisSpec>>,
    power_curve: Option<toml::Spanned<PowerCurveSpec>>,
    population: Option<toml::Spanned<crate::model::file::PopulationSpec>>,
}

fn d_floor() -> f64 {
    1e-3
}
fn d_draws() -> usize {
    2000
}
fn d_mapping() -> crate::data::exposure::Mapping {
    crate::data::exposure::Mapping::Full
}

/// The `[analysis]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisSpec {
    /// Estimators to run (default: the five analyst estimators; `ht` and `hajek` on request).
    #[serde(default = "d_estimators")]
    pub estimators: Vec<EstimatorKind>,
    /// Exposure mapping of `ht` and `hajek` (default full neighbourhood).
    #[serde(default = "d_mapping")]
    pub exposure: crate::data::exposure::Mapping,
    /// Nodes whose probability of either exposure condition is below this are
    /// excluded from the HT/Hájek estimand (default 0.001).
    #[serde(default = "d_floor")]
    pub probability_floor: f64,
    /// Auxiliary assignments for exposure probabilities without a closed form (default 2000).
    #[serde(default = "d_draws")]
    pub auxiliary_draws: usize,
    /// Re-randomizations per replicate for Fisher randomization p-values
    /// (default 0: off; it multiplies the cost).
    #[serde(default)]
    pub randomization_inference: usize,
}

impl Default for AnalysisSpec {
    fn default() -> Self {
        AnalysisSpec {
            estimators: d_estimators(),
            exposure: d_mapping(),
            probability_floor: d_floor(),
            auxiliary_draws: d_draws(),
            randomization_inference: 0,
        }
    }
}

/// A graph read from an edge list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileGraph {
    /// Edge list, relative to the scenario file.
    pub path: PathBuf,
    /// Read arcs (default false).
    #[serde(default)]
    pub directed: bool,
    /// Third column: auto (default), weight, timestamp, ignore.
    #[serde(default)]
    pub third_column: ThirdColumn,
    /// Header: auto (default), yes, no.
    #[serde(default)]
    pub header: Header,
    /// Self-loops: drop (default) or keep.
    #[serde(default)]
    pub self_loops: SelfLoops,
    /// Duplicates: sum (default), max, error.
    #[serde(default)]
    pub duplicates: Duplicates,
    /// Clusters that age: a timestamp splitting a message log; clusters are
    /// built on the events before it, the experiment runs on those after.
    #[serde(default)]
    pub split_at: Option<f64>,
    /// The same as a share of the events in time order, in (0, 1).
    #[serde(default)]
    pub split_at_share: Option<f64>,
}

/// Where the network comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum GraphSource {
    /// A generator with its parameters.
    Generated(Model),
    /// An edge list.
    File(FileGraph),
}

/// A validated scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    /// Name (default: the file's stem); names the output folder.
    pub name: String,
    /// Seed of everything random.
    pub seed: u64,
    /// Replicates per design (≥ 2).
    pub replicates: usize,
    /// Test level, in (0, 1).
    pub alpha: f64,
    /// The network.
    pub graph: GraphSource,
    /// The outcome model.
    pub outcome: OutcomeSpec,
    /// The designs to compare.
    pub designs: Vec<DesignSpec>,
    /// The estimators.
    pub analysis: AnalysisSpec,
    /// Power against effect size, if asked for.
    pub power_curve: Option<PowerCurveSpec>,
    /// The user's own population file, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub population: Option<crate::model::file::PopulationSpec>,
    /// Folder of the scenario file (relative paths start here).
    #[serde(skip)]
    pub dir: PathBuf,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Line of the first `key =` after `from` (1-based), for errors without spans.
fn line_of_key(text: &str, from_line: usize, key: &str) -> Option<usize> {
    text.lines()
        .enumerate()
        .skip(from_line.saturating_sub(1))
        .find(|(_, l)| {
            let t = l.trim_start();
            t.starts_with(key) && t[key.len()..].trim_start().starts_with('=')
        })
        .map(|(i, _)| i + 1)
}

/// The first `backticked` word of a message (serde names keys that way).
fn backticked(msg: &str) -> Option<&str> {
    let start = msg.find('`')? + 1;
    let len = msg[start..].find('`')?;
    Some(&msg[start..start + len])
}

/// Most replicates per design.
pub const MAX_REPLICATES: usize = 1_000_000;
/// Most result rows (replicates × designs × estimators, power-curve points
/// included): each is kept in memory and written to `replicates.csv`.
pub const MAX_RESULT_ROWS: u64 = 10_000_000;
/// Most re-randomizations per replicate for randomization inference.
pub const MAX_RANDOMIZATION_DRAWS: usize = 100_000;
/// Most auxiliary assignments for estimated exposure probabilities.
pub const MAX_AUXILIARY_DRAWS: usize = 1_000_000;
/// Most points of a power curve.
pub const MAX_POWER_CURVE_EFFECTS: usize = 1_000;

/// Check every size a scenario implies against the limits above; the error
/// message starts with the key to blame.
fn check_sizes(
    replicates: usize,
    designs: &[DesignSpec],
    analysis: &AnalysisSpec,
    power_curve: Option<&PowerCurveSpec>,
) -> Result<()> {
    if replicates > MAX_REPLICATES {
        return Err(Error::too_large(
            "replicates",
            replicates as u64,
            MAX_REPLICATES as u64,
            " per design",
        ));
    }
    // Columns per design: the estimators, or a saturation design's 2·levels + 1.
    let columns: u64 = designs
        .iter()
        .map(|d| {
            let sat = d.saturations.as_ref().map_or(0, |l| 2 * l.len() as u64 + 1);
            sat.max(analysis.estimators.len() as u64)
        })
        .sum();
    let rows = (replicates as u64).saturating_mul(columns);
    if rows > MAX_RESULT_ROWS {
        return Err(Error::too_large(
            format!(
                "result rows (replicates = {replicates} × {} designs and their estimators)",
                designs.len()
            ),
            rows,
            MAX_RESULT_ROWS,
            " (lower replicates)",
        ));
    }
    if analysis.randomization_inference > MAX_RANDOMIZATION_DRAWS {
        return Err(Error::too_large(
            "randomization_inference",
            analysis.randomization_inference as u64,
            MAX_RANDOMIZATION_DRAWS as u64,
            " re-randomizations per replicate",
        ));
    }
    if analysis.auxiliary_draws > MAX_AUXILIARY_DRAWS {
        return Err(Error::too_large(
            "auxiliary_draws",
            analysis.auxiliary_draws as u64,
            MAX_AUXILIARY_DRAWS as u64,
            "",
        ));
    }
    if let Some(pc) = power_curve {
        if pc.effects.len() > MAX_POWER_CURVE_EFFECTS {
            return Err(Error::too_large(
                "[power_curve] effects (points)",
                pc.effects.len() as u64,
                MAX_POWER_CURVE_EFFECTS as u64,
                "",
            ));
        }
        let r = pc.replicates.unwrap_or(replicates);
        if r > MAX_REPLICATES {
            return Err(Error::too_large(
                "[power_curve] replicates",
                r as u64,
                MAX_REPLICATES as u64,
                "",
            ));
        }
        let rows = (r as u64)
            .saturating_mul(pc.effects.len() as u64)
            .saturating_mul(designs.len() as u64);
        if rows > MAX_RESULT_ROWS {
            return Err(Error::too_large(
                format!(
                    "[power_curve] runs ({} effects × {r} replicates × {} designs)",
                    pc.effects.len(),
                    designs.len()
                ),
                rows,
                MAX_RESULT_ROWS,
                "",
            ));
        }
    }
    Ok(())
}

impl Scenario {
    /// Set the replicates per design (a command-line override), checked
    /// against the same limits as the file's `replicates`. The power curve's
    /// own `replicates` is capped at the same number, so `--replicates 20`
    /// gives a quick look at everything.
    pub fn set_replicates(&mut self, replicates: usize) -> Result<()> {
        if replicates < 2 {
            return Err(Error::parameter("--replicates", replicates, "at least 2"));
        }
        check_sizes(
            replicates,
            &self.designs,
            &self.analysis,
            self.power_curve.as_ref(),
        )
        .map_err(|e| e.context(format!("--replicates {replicates}")))?;
        self.replicates = replicates;
        if let Some(pc) = &mut self.power_curve {
            pc.replicates = Some(pc.replicates.map_or(replicates, |r| r.min(replicates)));
        }
        Ok(())
    }
}

/// Read and validate a scenario file.
pub fn load(path: &Path) -> Result<Scenario> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::read(path, e))?;
    parse(&text, path)
}

/// Parse and validate scenario text; `path` names it in errors and anchors relative paths.
pub fn parse(text: &str, path: &Path) -> Result<Scenario> {
    let file: ScenarioFile = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(1, |s| line_of(text, s.start));
        Error::parse(path, line, e.message().trim().to_string())
    })?;
    let at = |line: usize, msg: String| Error::parse(path, line, msg);
    let key_line = |key: &str| line_of_key(text, 1, key).unwrap_or(1);
    let span_line = |start: usize| line_of(text, start);
    let (replicates, replicates_line) = file.replicates.map_or((d_replicates(), 1), |r| {
        (*r.get_ref(), span_line(r.span().start))
    });
    let (alpha, alpha_line) = file.alpha.map_or((d_alpha(), 1), |a| {
        (*a.get_ref(), span_line(a.span().start))
    });
    let (outcome, outcome_line) = file.outcome.map_or((OutcomeSpec::default(), 1), |o| {
        let line = span_line(o.span().start);
        (o.into_inner(), line)
    });
    let (analysis, analysis_line) = file.analysis.map_or((AnalysisSpec::default(), 1), |a| {
        let line = span_line(a.span().start);
        (a.into_inner(), line)
    });
    let (power_curve, pc_line) = match file.power_curve {
        Some(pc) => {
            let line = span_line(pc.span().start);
            (Some(pc.into_inner()), line)
        }
        None => (None, 1),
    };
    let file_population_strata: Option<String> = file
        .population
        .as_ref()
        .and_then(|p| p.get_ref().strata.clone());
    let design_lines: Vec<usize> = file
        .design
        .iter()
        .map(|d| span_line(d.span().start))
        .collect();
    let designs: Vec<DesignSpec> = file.design.into_iter().map(|d| d.into_inner()).collect();
    let analysis_key = |key: &str| line_of_key(text, analysis_line, key).unwrap_or(analysis_line);
    let pc_key = |key: &str| line_of_key(text, pc_line, key).unwrap_or(pc_line);
    let Some(graph) = file.graph else {
        return Err(at(1, "missing [graph] section: name a generator (model = \"sbm\", …) or an edge list (path = \"…\")".into()));
    };
    let graph_line = line_of(text, graph.span().start);
    let table = graph.into_inner();
    let graph_err = |e: toml::de::Error| {
        let msg = e.message().trim().to_string();
        let line = backticked(&msg)
            .and_then(|k| line_of_key(text, graph_line, k))
            .unwrap_or(graph_line);
        at(line, format!("[graph]: {msg}"))
    };
    let source = if table.contains_key("path") {
        if table.contains_key("model") {
            return Err(at(
                graph_line,
                "[graph]: give either `model` (a generator) or `path` (an edge list), not both"
                    .into(),
            ));
        }
        let f: FileGraph = toml::Value::Table(table).try_into().map_err(graph_err)?;
        let key = |k: &str| line_of_key(text, graph_line, k).unwrap_or(graph_line);
        match (f.split_at, f.split_at_share) {
            (Some(_), Some(_)) => {
                return Err(at(
                    key("split_at_share"),
                    "[graph]: give either split_at (a timestamp) or split_at_share, not both"
                        .into(),
                ))
            }
            (Some(t), None) if !t.is_finite() => {
                return Err(at(
                    key("split_at"),
                    format!("[graph] split_at = {t}: expected a finite timestamp"),
                ))
            }
            (None, Some(q)) if !(q > 0.0 && q < 1.0) => {
                return Err(at(
                    key("split_at_share"),
                    format!("[graph] split_at_share = {q}: expected a share in (0, 1)"),
                ))
            }
            _ => {}
        }
        GraphSource::File(f)
    } else if table.contains_key("model") {
        GraphSource::Generated(toml::Value::Table(table).try_into().map_err(graph_err)?)
    } else {
        return Err(at(graph_line, "[graph]: expected `model = \"…\"` (gnp, gnm, ba, ws, sbm, lfr, messaging) or `path = \"…\"`".into()));
    };
    if replicates < 2 {
        return Err(at(
            replicates_line,
            format!("replicates = {replicates}: expected at least 2"),
        ));
    }
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(at(
            alpha_line,
            format!("alpha = {alpha}: expected a number in (0, 1)"),
        ));
    }
    outcome.validate().map_err(|e| {
        let line = match &e {
            Error::Parameter { name, .. } => {
                let key = name.trim_start_matches("[outcome] ");
                line_of_key(text, outcome_line, key).unwrap_or(outcome_line)
            }
            _ => outcome_line,
        };
        at(line, e.to_string())
    })?;
    if designs.len() < 2 {
        return Err(at(
            1,
            format!(
                "a scenario compares designs: expected at least two [[design]] sections, found {}",
                designs.len()
            ),
        ));
    }
    for (i, d) in designs.iter().enumerate() {
        let line = design_lines[i];
        d.validate().map_err(|e| at(line, e.to_string()))?;
        for c in d.strata_by.columns() {
            let have = file_population_strata.as_deref();
            if have != Some(c) {
                return Err(at(
                    line,
                    format!(
                        "design {:?}: strata_by = {c:?}: expected size, covariate, \
                         size-and-covariate, or the [population] strata column{}",
                        d.name,
                        have.map_or(" (this scenario has none)".to_string(), |h| format!(
                            " ({h:?})"
                        ))
                    ),
                ));
            }
        }
        if designs[..i].iter().any(|o| o.name == d.name) {
            return Err(at(line, format!("design name {:?} is used twice", d.name)));
        }
    }
    if analysis.estimators.iter().any(EstimatorKind::is_exposure) {
        let line = analysis_key("exposure");
        analysis
            .exposure
            .validate()
            .map_err(|e| at(line, e.to_string()))?;
        if !(analysis.probability_floor >= 0.0 && analysis.probability_floor < 1.0) {
            return Err(at(
                analysis_key("probability_floor"),
                format!(
                    "probability_floor = {}: expected a number in [0, 1)",
                    analysis.probability_floor
                ),
            ));
        }
        if analysis.auxiliary_draws < 100 {
            return Err(at(
                analysis_key("auxiliary_draws"),
                format!(
                    "auxiliary_draws = {}: expected at least 100",
                    analysis.auxiliary_draws
                ),
            ));
        }
    }
    if let Some(pc) = &power_curve {
        let line = pc_key("effects");
        if pc.effects.is_empty() || pc.effects.iter().any(|e| !e.is_finite()) {
            return Err(at(
                line,
                "[power_curve] effects: expected a list of finite numbers".into(),
            ));
        }
        if pc.replicates.is_some_and(|r| r < 2) {
            return Err(at(
                pc_key("replicates"),
                "[power_curve] replicates: expected at least 2".into(),
            ));
        }
        if let Some(e) = pc.estimator {
            if !analysis.estimators.contains(&e) {
                return Err(at(
                    pc_key("estimator"),
                    format!(
                        "[power_curve] estimator {:?} is not among [analysis] estimators",
                        e.name()
                    ),
                ));
            }
        }
    }
    if analysis.estimators.is_empty() {
        return Err(at(
            analysis_key("estimators"),
            "estimators: expected at least one".into(),
        ));
    }
    // Each size error names its key; the line is that key's in its section.
    let size_err = |e: Error| {
        let line = match &e {
            Error::TooLarge { what, .. } => match what.as_str() {
                "replicates" => replicates_line,
                "[power_curve] replicates" => pc_key("replicates"),
                key => analysis_key(key),
            },
            _ => {
                let msg = e.to_string();
                match msg.split_whitespace().next().unwrap_or("") {
                    "effects:" => pc_key("effects"),
                    _ => replicates_line,
                }
            }
        };
        at(line, e.to_string())
    };
    check_sizes(replicates, &designs, &analysis, power_curve.as_ref()).map_err(size_err)?;
    let name = file.name.unwrap_or_else(|| {
        path.file_stem()
            .map_or("scenario".into(), |s| s.to_string_lossy().into_owned())
    });
    if name.is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
        return Err(at(
            key_line("name"),
            format!("name = {name:?}: expected a plain folder name"),
        ));
    }
    Ok(Scenario {
        name,
        seed: file.seed,
        replicates,
        alpha,
        graph: source,
        outcome,
        designs,
        analysis,
        power_curve,
        population: file.population.map(|p| p.into_inner()),
        dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
    })
}

/// Build the network, population and designs of `s`.
///
/// ```
/// use spillover::{diagnosis, scenario};
/// use std::path::Path;
///
/// let s = scenario::parse(r#"
/// replicates = 20
/// [graph]
/// model = "sbm"
/// n = 400
/// blocks = 8
/// mean_degree = 6.0
/// mu = 0.1
/// [[design]]
/// name = "user"
/// [[design]]
/// name = "blocks"
/// unit = "cluster"
/// partition = { method = "planted" }
/// "#, Path::new("inline.toml"))?;
/// let p = scenario::prepare(&s)?;
/// let runs = diagnosis::simulate(&p, &|| {})?;
/// let report = diagnosis::build("inline", &p, &runs, &[None, None]);
/// assert_eq!(report.designs.len(), 2);
/// print!("{}", spillover::report::table(&report));
/// # Ok::<(), spillover::Error>(())
/// ```
pub fn prepare(s: &crate::scenario::Scenario) -> crate::error::Result<Prepared> {
    prepare_inner(s, None).map(|(p, _)| p)
}

/// [`prepare`], simulating every design that needs no partition while the
/// partitions are computed, so their replicates fill the cores partitioning
/// leaves idle (METIS runs on one thread). Returns each design's run in
/// scenario order (`None` for the designs with a partition, to simulate
/// next): identical to what [`crate::diagnosis::simulate`] gives them after
/// preparing. `cancel` and `tick` are the run's ([`SimConfig::cancel`],
/// once per finished replicate).
///
/// # Complexity
/// That of [`prepare`] plus the partition-free designs' replicates.
pub fn prepare_running(
    s: &crate::scenario::Scenario,
    cancel: &crate::diagnosis::Cancel,
    tick: &(dyn Fn() + Sync),
) -> crate::error::Result<(Prepared, Vec<Option<crate::diagnosis::DesignRun>>)> {
    prepare_inner(s, Some((cancel, tick)))
}

/// The designs' runs started during preparation, if any.
type EarlyRuns = Vec<Option<Result<crate::diagnosis::DesignRun>>>;

fn prepare_inner(
    s: &crate::scenario::Scenario,
    early: Option<(&crate::diagnosis::Cancel, &(dyn Fn() + Sync))>,
) -> crate::error::Result<(Prepared, Vec<Option<crate::diagnosis::DesignRun>>)> {
    use crate::scenario::GraphSource;
    let mut before: Option<crate::graph::Graph> = None;
    let (graph, planted, graph_description) = match &s.graph {
        GraphSource::Generated(model) => {
            let g = model.generate(s.seed)?;
            (g.graph, g.communities, g.description)
        }
        GraphSource::File(f) => {
            let path = s.dir.join(&f.path);
            let opts = crate::graph::io::ReadOptions {
                directed: f.directed,
                third_column: f.third_column,
                header: f.header,
                build: crate::graph::BuildOptions {
                    self_loops: f.self_loops,
                    duplicates: f.duplicates,
                },
                ..Default::default()
            };
            let opts = crate::graph::io::ReadOptions {
                split: match (f.split_at, f.split_at_share) {
                    (Some(t), _) => Some(crate::graph::io::TimeSplit::At(t)),
                    (_, Some(q)) => Some(crate::graph::io::TimeSplit::Share(q)),
                    _ => None,
                },
                ..opts
            };
            let (g, b, report) = crate::graph::io::read_edge_list_split(&path, &opts)?;
            before = b;
            // The path as the scenario gives it (relative to the scenario file).
            let mut description = format!("edge list {}", f.path.display());
            if let Some(sp) = report.split {
                description += &format!(
                    " after time {} ({} events; clusters built on the {} before)",
                    sp.time, sp.events_after, sp.events_before
                );
            }
            (g, None, description)
        }
    };
    // Nothing spills over on a graph without edges, and no estimator that
    // uses exposure can be computed: refuse before simulating.
    if graph.edge_count() == graph.self_loop_count() {
        return Err(crate::error::Error::input(format!(
            "[graph] {graph_description}: no edges after cleaning ({} nodes; self-loops are \
             dropped unless self_loops = \"keep\"): expected a network with at least one edge",
            graph.node_count()
        )));
    }
    // The user's own population: match it to the graph (isolated users
    // added, missing ones dropped or refused) before anything else uses it.
    let (graph, matched) = match &s.population {
        Some(spec) => {
            let table = crate::model::file::UserTable::read(spec, &s.dir)?;
            let (g, m) =
                crate::model::file::match_graph(graph, &table, spec, &s.dir.join(&spec.path))?;
            (g, Some(m))
        }
        None => (graph, None),
    };
    // The graph before a time split names the same users: map it the same way.
    if let Some(m) = &matched {
        if let Some(b) = before.take() {
            let labels = graph.labels().clone();
            before = Some(b.remapped(&m.new_id, graph.node_count(), labels)?);
        }
    }
    if before.is_some() {
        if let Some(d) = s
            .designs
            .iter()
            .find(|d| d.partition.as_ref().is_some_and(|p| p.redraw))
        {
            return Err(crate::error::Error::key(
                "redraw",
                format!(
                    "design {:?}: `redraw` cannot be combined with [graph] split_at (redrawn \
                     partitions would be built on the interactions after the split)",
                    d.name
                ),
            ));
        }
    }
    // Planted communities are only known for the generator's nodes, in its order.
    let planted = match &matched {
        Some(m) => planted.filter(|c| c.len() == graph.node_count() && m.dropped == 0),
        None => planted,
    };
    use crate::model::IccGroups;
    let louvain = || {
        crate::partition::Method::Louvain(crate::partition::louvain::Params {
            seed: s.seed,
            ..Default::default()
        })
        .run(&graph)
    };
    let groups = match (s.outcome.icc_groups, &planted) {
        (IccGroups::Auto | IccGroups::Planted, Some(c)) => {
            crate::partition::Partition::from_labels(c)
        }
        (IccGroups::Planted, None) => {
            return Err(crate::error::Error::input(
                "[outcome] icc_groups = \"planted\": this graph has no planted communities",
            ))
        }
        _ => louvain()?,
    };
    let population = match &matched {
        Some(m) => Population::from_table(&s.outcome, &graph, m, groups)?,
        None => Population::draw(&s.outcome, &graph, groups, s.seed)?,
    };
    // A power curve that cannot be drawn is refused before anything is simulated.
    if let Some(pc) = &s.power_curve {
        for &e in &pc.effects {
            crate::inquiry::effect_scale(&population, e)?;
        }
    }
    let config = SimConfig {
        seed: s.seed,
        replicates: s.replicates,
        alpha: s.alpha,
        estimators: s.analysis.estimators.clone(),
        exposure: ExposureConfig {
            mapping: s.analysis.exposure,
            floor: s.analysis.probability_floor,
            draws: s.analysis.auxiliary_draws,
        },
        randomization_inference: s.analysis.randomization_inference,
        cancel: early.map(|(c, _)| c.clone()).unwrap_or_default(),
    };
    let make_design = |spec: &DesignSpec, clusters| {
        let categories = match &population.categories {
            Some((name, _, codes))
                if spec.strata_by.columns().iter().all(|c| c == name)
                    && !spec.strata_by.columns().is_empty() =>
            {
                Some(codes.as_slice())
            }
            _ => None,
        };
        Design::with_categories(spec.clone(), clusters, &population.x, categories)
    };
    // Set by the first failure, a partition's or an early run's (below).
    let failed = std::sync::atomic::AtomicBool::new(false);
    // The designs' partitions are independent (each has its own seeded
    // stream), so they are computed side by side; the first failing design
    // in scenario order is the one reported.
    use rayon::prelude::*;
    let partitions = || -> Vec<Result<Option<crate::partition::Partition>>> {
        s.designs
            .par_iter()
            .map(|spec| match &spec.partition {
                Some(p) => crate::data::design::make_partition(
                    p,
                    before.as_ref().unwrap_or(&graph),
                    planted.as_deref(),
                    s.seed,
                    &s.dir,
                )
                .map(Some)
                .map_err(|e| e.context(format!("design {:?}", spec.name))),
                None => Ok(None),
            })
            .inspect(|p| {
                if p.is_err() {
                    failed.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            })
            .collect()
    };
    // Meanwhile, the designs without a partition run. The first failure
    // (a partition's or an early run's) stops starting new ones; a design
    // whose early run failed is left to run again in order after
    // preparation, so errors come as before: the first failing design in
    // scenario order, in the same words.
    let running = || -> EarlyRuns {
        s.designs
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let (_, tick) = early?;
                if spec.partition.is_some() || failed.load(std::sync::atomic::Ordering::Relaxed) {
                    return None;
                }
                let design = make_design(spec, None).ok()?;
                let run =
                    crate::diagnosis::run_design(&graph, &population, &design, &config, i, tick);
                if run.is_err() {
                    failed.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                Some(run)
            })
            .collect()
    };
    let (partitions, runs) = rayon::join(partitions, running);
    let mut designs = Vec::with_capacity(s.designs.len());
    for (spec, clusters) in s.designs.iter().zip(partitions) {
        designs.push(make_design(spec, clusters?)?);
    }
    let runs = runs.into_iter().map(|r| r.and_then(|r| r.ok())).collect();
    let estimand = crate::inquiry::global_effect(&population);
    Ok((
        Prepared {
            graph,
            graph_description,
            planted,
            population,
            designs,
            estimand,
            config,
            before,
        },
        runs,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
seed = 3
replicates = 10

[graph]
model = "sbm"
n = 200
blocks = 10
mean_degree = 6.0
mu = 0.2

[outcome]
icc = 0.1

[[design]]
name = "user"

[[design]]
name = "cluster"
unit = "cluster"
partition = { method = "planted" }
"#;

    fn err(text: &str) -> String {
        parse(text, Path::new("s.toml")).unwrap_err().to_string()
    }

    #[test]
    fn a_good_scenario_parses_with_defaults() {
        let s = parse(GOOD, Path::new("dir/quick.toml")).unwrap();
        assert_eq!(s.name, "quick");
        assert_eq!((s.seed, s.replicates, s.alpha), (3, 10, 0.05));
        assert!(matches!(s.graph, GraphSource::Generated(Model::Sbm(_))));
        assert_eq!(s.designs.len(), 2);
        assert_eq!(s.analysis.estimators.len(), 5);
        assert_eq!(s.dir, Path::new("dir"));
    }

    #[test]
    fn errors_name_the_line_and_what_was_expected() {
        let e = err(&GOOD.replace("replicates = 10", "replicates = 10\ncolour = 3"));
        assert!(e.contains("s.toml:4:") && e.contains("colour"), "{e}");
        let e = err(&GOOD.replace("n = 200", "nn = 200"));
        assert!(e.contains("s.toml:7:") && e.contains("nn"), "{e}");
        let e = err(&GOOD.replace("replicates = 10", "replicates = 0"));
        assert!(e.contains(":3:") && e.contains("at least 2"), "{e}");
        let e = err(&GOOD.replace("icc = 0.1", "icc = 1.5"));
        assert!(e.contains(":13:") && e.contains("icc"), "{e}");
        let e = err(&GOOD.replace("[graph]\nmodel = \"sbm\"", "[graphs]\nmodel = \"sbm\""));
        assert!(e.contains("graphs"), "{e}");
        let e = err(&GOOD.replace("method = \"planted\"", "method = \"spectral\""));
        assert!(e.contains("spectral"), "{e}");
        let e = err("seed = [");
        assert!(e.contains("s.toml:1:"), "{e}");
    }

    #[test]
    fn replicates_override_caps_the_power_curve() {
        let text = r#"
replicates = 400
[graph]
model = "gnp"
n = 100
p = 0.05
[[design]]
name = "a"
[[design]]
name = "b"
assignment = "bernoulli"
[power_curve]
effects = [0.0, 0.1]
replicates = 150
"#;
        let mut s = parse(text, Path::new("s.toml")).unwrap();
        s.set_replicates(20).unwrap();
        assert_eq!(s.replicates, 20);
        assert_eq!(s.power_curve.as_ref().unwrap().replicates, Some(20));
        let mut s = parse(&text.replace("replicates = 150\n", ""), Path::new("s.toml")).unwrap();
        s.set_replicates(30).unwrap();
        assert_eq!(s.power_curve.as_ref().unwrap().replicates, Some(30));
        let mut s = parse(text, Path::new("s.toml")).unwrap();
        s.set_replicates(1000).unwrap();
        assert_eq!(s.power_curve.as_ref().unwrap().replicates, Some(150));
    }

    #[test]
    fn error_lines_come_from_spans_not_text_search() {
        // A commented-out [[design]] used to shift every design error by one section.
        let text = GOOD
            .replace(
                "[[design]]\nname = \"user\"",
                "# [[design]] (an old design, commented out)\n[[design]]\nname = \"user\"",
            )
            .replace(
                "partition = { method = \"planted\" }",
                "treated_share = 2.0\npartition = { method = \"planted\" }",
            );
        let e = err(&text);
        let line = text
            .lines()
            .position(|l| l == "name = \"cluster\"")
            .unwrap(); // 1-based line of [[design]]
        assert!(e.starts_with(&format!("s.toml:{line}:")), "{e}");
        // [power_curve] replicates = 1 points at that key, not the top-level one.
        let text = format!("{GOOD}\n[power_curve]\neffects = [0.1]\nreplicates = 1\n");
        let e = err(&text);
        let line = text.lines().position(|l| l == "replicates = 1").unwrap() + 1;
        assert!(e.starts_with(&format!("s.toml:{line}:")), "{e}");
        // An [outcome] key is found in its own section.
        let text = GOOD.replace("icc = 0.1", "icc = 1.5");
        let e = err(&text);
        let line = text.lines().position(|l| l == "icc = 1.5").unwrap() + 1;
        assert!(
            e.starts_with(&format!("s.toml:{line}:")) && e.contains("icc = 1.5"),
            "{e}"
        );
    }
}
