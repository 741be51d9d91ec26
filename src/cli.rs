//! The command line: a thin layer that parses arguments, calls the library and
//! prints. It owns nothing but argument definitions and output formatting.
//!
//! Exit codes: 0 success, 2 bad input (file, parameter or usage), 1 anything else.

use clap::{Parser, Subcommand};
use spillover::api;
use spillover::data::design::PartitionMethod;
use spillover::diagnosis::calc;
use spillover::error::{Error, Result};
use spillover::graph::generate::Model;
use spillover::graph::io::{self, Header, ReadOptions, ReadReport, ThirdColumn};
use spillover::graph::stats::{self, Summary};
use spillover::graph::{BuildOptions, Duplicates, SelfLoops};
use spillover::scenario::Scenario;
use std::io::Write;
use std::path::{Path, PathBuf};

/// spillover: choose a randomization design for an A/B test on a network with interference.
#[derive(Debug, Parser)]
#[command(name = "spillover", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a random network and write it as an edge list.
    Generate(GenerateArgs),
    /// Read an edge list and print its size, degrees, components, clustering (and reciprocity).
    Inspect(InspectArgs),
    /// Partition a graph into experimental clusters and report their quality.
    Partition(PartitionArgs),
    /// Run a scenario: simulate every design × estimator and report bias, coverage and power.
    Run(RunArgs),
    /// Draw the assignment to deploy for one design: replicate 0 of that design,
    /// exactly as `run` draws it, as user_id,arm,unit[,stratum].
    Assign(AssignArgs),
    /// Merge the shard files of `run --shard K/N` into the outputs of one run
    /// (byte-identical to an unsharded run of the same scenario and seed).
    Merge(MergeArgs),
    /// Design effect of cluster randomization: 1 + ICC·[(m − 1) + m·CV²].
    Deff(DeffArgs),
    /// Power to detect an effect with a given number of users per arm.
    Power(PowerArgs),
    /// Minimum detectable effect for a given total number of users.
    Mde(MdeArgs),
    /// Clusters per arm needed to detect an effect.
    ClustersNeeded(ClustersNeededArgs),
    /// Run a scenario's cluster design across partition granularities: bias, SD,
    /// RMSE and power against the number of clusters.
    Sweep(SweepArgs),
}

#[derive(Debug, clap::Args)]
struct SweepArgs {
    /// Scenario file (TOML).
    scenario: PathBuf,
    /// Sweep the louvain/leiden resolution over LOW..HIGH (log-spaced).
    #[arg(long)]
    resolution: Option<String>,
    /// Sweep the louvain/leiden maximum cluster size over LOW..HIGH.
    #[arg(long)]
    max_size: Option<String>,
    /// Sweep the number of parts of a balanced/ldg/random partition over LOW..HIGH.
    #[arg(long)]
    parts: Option<String>,
    /// Number of values.
    #[arg(long, default_value_t = 12)]
    steps: usize,
    /// Design to sweep [default: the first cluster design].
    #[arg(long)]
    design: Option<String>,
    /// Estimator to report [default: the scenario's first].
    #[arg(long)]
    estimator: Option<String>,
    /// Replicates per value, overriding the file.
    #[arg(long)]
    replicates: Option<usize>,
    /// Output folder [default: output/<scenario name>-sweep/].
    #[arg(long)]
    out: Option<PathBuf>,
    /// No progress bar and no table.
    #[arg(long)]
    quiet: bool,
    /// Print the sweep as JSON.
    #[arg(long)]
    json: bool,
    /// Run only the K-th of N slices of the values and write a shard file
    /// to --out [default: output/<scenario name>-sweep-shards/]; `spillover
    /// merge` builds the sweep's outputs from all N.
    #[arg(long, value_name = "K/N")]
    shard: Option<String>,
}

#[derive(Debug, clap::Args)]
struct MetricArgs {
    /// SD of a continuous metric (effects in its units; 1 gives standardized effects).
    #[arg(long, default_value_t = 1.0)]
    sd: f64,
    /// Control rate of a binary metric (then effects are absolute differences in rate).
    #[arg(long)]
    baseline: Option<f64>,
    /// Two-sided test level.
    #[arg(long, default_value_t = 0.05)]
    alpha: f64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

impl MetricArgs {
    fn metric(&self) -> spillover::diagnosis::calc::Metric {
        match self.baseline {
            Some(b) => spillover::diagnosis::calc::Metric::Binary { baseline: b },
            None => spillover::diagnosis::calc::Metric::Continuous { sd: self.sd },
        }
    }
}

#[derive(Debug, clap::Args)]
struct ClusterArgs {
    /// Mean users per cluster (omit for user-level randomization).
    #[arg(long)]
    mean_cluster_size: Option<f64>,
    /// Intra-cluster correlation of the metric.
    #[arg(long, default_value_t = 0.0)]
    icc: f64,
    /// Coefficient of variation of cluster sizes.
    #[arg(long, default_value_t = 0.0)]
    cv: f64,
}

impl ClusterArgs {
    fn clustering(&self) -> calc::Clustering {
        calc::Clustering {
            mean_cluster_size: self.mean_cluster_size,
            icc: self.icc,
            cv: self.cv,
        }
    }
}

#[derive(Debug, clap::Args)]
struct DeffArgs {
    /// Mean users per cluster.
    #[arg(long)]
    mean_cluster_size: f64,
    /// Intra-cluster correlation.
    #[arg(long)]
    icc: f64,
    /// Coefficient of variation of cluster sizes.
    #[arg(long, default_value_t = 0.0)]
    cv: f64,
    /// Number of clusters (for the effective sample size and --check).
    #[arg(long)]
    clusters: Option<usize>,
    /// Confirm the formula by simulation (clusters × size users, 2,000 replicates).
    #[arg(long)]
    check: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct PowerArgs {
    /// Effect to detect (metric units, or absolute rate difference).
    #[arg(long, allow_negative_numbers = true)]
    effect: f64,
    /// Users per arm.
    #[arg(long)]
    n_per_arm: f64,
    #[command(flatten)]
    metric: MetricArgs,
    #[command(flatten)]
    cluster: ClusterArgs,
}

#[derive(Debug, clap::Args)]
struct MdeArgs {
    /// Total users (both arms).
    #[arg(long)]
    n_total: f64,
    /// Share of users treated.
    #[arg(long, default_value_t = 0.5)]
    treated_share: f64,
    /// Target power.
    #[arg(long, default_value_t = 0.8)]
    power: f64,
    #[command(flatten)]
    metric: MetricArgs,
    #[command(flatten)]
    cluster: ClusterArgs,
}

#[derive(Debug, clap::Args)]
struct ClustersNeededArgs {
    /// Effect to detect (metric units, or absolute rate difference).
    #[arg(long, allow_negative_numbers = true)]
    effect: f64,
    /// Target power.
    #[arg(long, default_value_t = 0.8)]
    power: f64,
    #[command(flatten)]
    metric: MetricArgs,
    #[command(flatten)]
    cluster: ClusterArgs,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Scenario file (TOML).
    scenario: PathBuf,
    /// Output folder [default: output/<scenario name>/].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Worker threads [default: all cores]. Results do not depend on it.
    #[arg(long)]
    threads: Option<usize>,
    /// Replicates per design, overriding the file (for a quick look).
    #[arg(long)]
    replicates: Option<usize>,
    /// No progress bar and no table; only errors.
    #[arg(long)]
    quiet: bool,
    /// Print report.json to standard output instead of the table.
    #[arg(long)]
    json: bool,
    /// Run only the K-th of N slices of every design's replicates and write
    /// one shard file to --out [default: output/<scenario name>-shards/];
    /// `spillover merge` builds every output from the N shards.
    #[arg(long, value_name = "K/N")]
    shard: Option<String>,
}

#[derive(Debug, clap::Args)]
struct MergeArgs {
    /// Shard files, or folders holding them: shard-K-of-N.spillover from
    /// `run --shard`, or sweep-shard-K-of-N.spillover from `sweep --shard`.
    #[arg(required = true)]
    shards: Vec<PathBuf>,
    /// Output folder [default: output/<scenario name>/].
    #[arg(long)]
    out: Option<PathBuf>,
    /// No table; only errors.
    #[arg(long)]
    quiet: bool,
}

#[derive(Debug, clap::Args)]
struct AssignArgs {
    /// Scenario file (TOML).
    scenario: PathBuf,
    /// The design to draw (a [[design]] name).
    #[arg(long)]
    design: String,
    /// Seed, overriding the scenario's (the draw is replicate 0 of a run with this seed).
    #[arg(long)]
    seed: Option<u64>,
    /// Output file.
    #[arg(long, default_value = "assignment.csv")]
    out: PathBuf,
    /// Worker threads [default: all cores]. The assignment does not depend on it.
    #[arg(long)]
    threads: Option<usize>,
    /// Print nothing but errors.
    #[arg(long)]
    quiet: bool,
}

#[derive(Debug, clap::Args)]
struct PartitionArgs {
    /// Edge list of the graph (directed graphs are partitioned on symmetrized weights).
    graph: PathBuf,
    #[command(flatten)]
    read: ReadArgs,
    /// Partitioning method.
    #[arg(long, value_enum, default_value_t = PartitionMethod::Louvain)]
    method: PartitionMethod,
    /// Resolution γ for louvain/leiden (> 0; larger gives smaller clusters).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    resolution: f64,
    /// Largest cluster for louvain/leiden, respected by construction.
    #[arg(long)]
    max_size: Option<usize>,
    /// Merge clusters smaller than this into their best-connected neighbour cluster.
    #[arg(long)]
    min_size: Option<usize>,
    /// Number of parts for balanced, ldg and random.
    #[arg(long)]
    parts: Option<usize>,
    /// Allowed imbalance for balanced and ldg: largest part ≤ (1 + x)·n/k.
    #[arg(long, default_value_t = 0.03)]
    imbalance: f64,
    /// Restreaming passes for ldg; most whole passes for leiden (it stops
    /// earlier once a pass leaves the partition unchanged).
    #[arg(long, default_value_t = 10)]
    passes: usize,
    /// Louvain only: skip its multilevel refinement (plain Blondel et al.:
    /// the top level's communities are not moved again on the way down).
    #[arg(long)]
    no_refine: bool,
    /// Clusters file for --method file.
    #[arg(long)]
    clusters: Option<PathBuf>,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write `node<TAB>cluster` lines here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the quality report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct GenerateArgs {
    /// Random seed: the same seed gives the same graph on any number of threads.
    #[arg(long, global = true, default_value_t = 1)]
    seed: u64,
    /// Edge list to write (tab separated; parent folders are created).
    #[arg(long, global = true, default_value = "output/graph.tsv")]
    out: PathBuf,
    /// Also write planted communities (node, tab, community) here, for models that plant them.
    #[arg(long, global = true)]
    communities: Option<PathBuf>,
    /// Print the summary of the generated graph as JSON.
    #[arg(long, global = true)]
    json: bool,
    /// Print nothing on success.
    #[arg(long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    model: Model,
}

#[derive(Debug, clap::Args)]
struct ReadArgs {
    /// Read `u v` as an arc u→v (default: undirected edge).
    #[arg(long)]
    directed: bool,
    /// How to read a third column.
    #[arg(long, value_enum, default_value_t = ThirdColumn::Auto)]
    third_column: ThirdColumn,
    /// Whether the first non-comment line is a header.
    #[arg(long, value_enum, default_value_t = Header::Auto)]
    header: Header,
    /// What to do with self-loops.
    #[arg(long, value_enum, default_value_t = SelfLoops::Drop)]
    self_loops: SelfLoops,
    /// What to do with repeated edges (for undirected graphs `u v` and `v u` are the same edge).
    #[arg(long, value_enum, default_value_t = Duplicates::Sum)]
    duplicates: Duplicates,
}

impl ReadArgs {
    fn options(&self) -> ReadOptions {
        ReadOptions {
            directed: self.directed,
            third_column: self.third_column,
            header: self.header,
            build: BuildOptions {
                self_loops: self.self_loops,
                duplicates: self.duplicates,
            },
            ..Default::default()
        }
    }
}

#[derive(Debug, clap::Args)]
struct InspectArgs {
    /// Edge list: whitespace, comma or tab separated; `#`/`%` comments; optional header;
    /// optional third column (weight or timestamp).
    file: PathBuf,
    #[command(flatten)]
    read: ReadArgs,
    /// Seed for the clustering-coefficient sample on large graphs.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Parse the process arguments, run, and return the exit code.
pub fn main_exit() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    match run(cli) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Generate(a) => generate(a),
        Command::Inspect(a) => inspect(a),
        Command::Partition(a) => partition(a),
        Command::Run(a) => run_scenario(a),
        Command::Assign(a) => assign(a),
        Command::Merge(a) => merge(a),
        Command::Deff(a) => deff(a),
        Command::Power(a) => power_cmd(a),
        Command::Mde(a) => mde(a),
        Command::ClustersNeeded(a) => clusters_needed(a),
        Command::Sweep(a) => sweep(a),
    }
}

fn out(text: &str) -> Result<()> {
    let mut so = std::io::stdout().lock();
    so.write_all(text.as_bytes())
        .and_then(|_| so.flush())
        .map_err(|e| Error::io("cannot write to standard output", e))
}

fn generate(a: GenerateArgs) -> Result<()> {
    if a.communities.is_some() && !a.model.plants_communities() {
        return Err(Error::input(
            "--communities: this model plants no communities (sbm, lfr and messaging do)",
        ));
    }
    let g = a.model.generate(a.seed)?;
    let comment = format!("spillover generate {} seed={}", g.description, a.seed);
    io::write_edge_list(&g.graph, &a.out, &comment)?;
    if let Some(path) = &a.communities {
        let Some(c) = &g.communities else {
            return Err(Error::Internal("planted communities missing".into()));
        };
        spillover::fsutil::write_atomic(path, |w| {
            writeln!(w, "# {comment}")?;
            for (u, c) in c.iter().enumerate() {
                writeln!(w, "{}\t{c}", g.graph.label(u as u32))?;
            }
            Ok(())
        })?;
    }
    if a.quiet {
        return Ok(());
    }
    let summary = stats::summarize(&g.graph, a.seed);
    if a.json {
        let v = json::Generate {
            model: &g.description,
            seed: a.seed,
            out: &a.out,
            communities: g
                .communities
                .as_ref()
                .map(|c| c.iter().max().map_or(0, |m| m + 1)),
            summary: &summary,
        };
        out(&format!("{}\n", pretty(&v)?))
    } else {
        let mut s = format!("{}\n", g.description);
        s += &table(&summary);
        if let Some(c) = &g.communities {
            s += &row(
                "communities",
                format!("{} planted", c.iter().max().map_or(0, |m| m + 1)),
            );
        }
        s += &row("written", a.out.display().to_string());
        out(&s)
    }
}

fn inspect(a: InspectArgs) -> Result<()> {
    let (g, report) = io::read_edge_list(&a.file, &a.read.options())?;
    let summary = stats::summarize(&g, a.seed);
    if a.json {
        let v = json::Inspect {
            file: &a.file,
            read: &report,
            summary: &summary,
        };
        out(&format!("{}\n", pretty(&v)?))
    } else {
        out(&(row("file", a.file.display().to_string()) + &table(&summary) + &read_lines(&report)))
    }
}

fn pretty<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string_pretty(v).map_err(|e| Error::Internal(e.to_string()))
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn row(key: &str, value: String) -> String {
    format!("{key:<14}{value}\n")
}

fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        thousands(x as usize)
    } else {
        format!("{x:.4}")
    }
}

fn degree_line(d: &stats::DegreeSummary) -> String {
    format!(
        "min {} · median {} · mean {:.2} · p99 {} · max {}",
        d.min,
        number(d.median),
        d.mean,
        d.p99,
        d.max
    )
}

fn table(s: &Summary) -> String {
    let mut t = String::new();
    t += &row(
        "graph",
        format!(
            "{}, {}",
            if s.directed { "directed" } else { "undirected" },
            if s.weighted { "weighted" } else { "unweighted" }
        ),
    );
    t += &row("nodes", thousands(s.nodes));
    t += &row(
        "edges",
        format!(
            "{}{}",
            thousands(s.edges),
            if s.directed { " directed pairs" } else { "" }
        ),
    );
    if s.weighted {
        t += &row("total weight", number(s.total_weight));
    }
    if s.self_loops > 0 {
        t += &row("self-loops", thousands(s.self_loops));
    }
    t += &row("density", format!("{:.6}", s.density));
    match &s.in_degree {
        Some(ind) => {
            t += &row("out-degree", degree_line(&s.degree));
            t += &row("in-degree", degree_line(ind));
        }
        None => t += &row("degree", degree_line(&s.degree)),
    }
    t += &row(
        "components",
        format!(
            "{}{} (largest {} nodes)",
            thousands(s.components.count),
            if s.directed { " weak" } else { "" },
            thousands(s.components.largest)
        ),
    );
    if let Some(sc) = &s.strong_components {
        t += &row(
            "",
            format!(
                "{} strong (largest {} nodes)",
                thousands(sc.count),
                thousands(sc.largest)
            ),
        );
    }
    let c = &s.clustering;
    t += &row(
        "clustering",
        match c.sampled_nodes {
            None => format!("{:.4} (exact)", c.average),
            Some(k) => format!(
                "{:.4} ± {:.4} (estimated from {} sampled nodes; the graph is too large for the exact value)",
                c.average,
                c.std_error,
                thousands(k)
            ),
        },
    );
    if let Some(r) = s.reciprocity {
        t += &row("reciprocity", format!("{r:.4}"));
    }
    t
}

fn read_lines(r: &ReadReport) -> String {
    let third = match r.third_column {
        io::ThirdColumnUse::None => "none (unweighted)".to_string(),
        io::ThirdColumnUse::Weight => "weights".to_string(),
        io::ThirdColumnUse::Timestamp => {
            "timestamps (one line = one message; weight = messages per pair)".to_string()
        }
    };
    let mut t = row(
        "read",
        format!(
            "{} edge lines, {} comment/blank lines, header: {}",
            thousands(r.edge_lines),
            thousands(r.comment_lines),
            r.header
                .as_deref()
                .map_or("none".to_string(), |h| format!("{h:?}"))
        ),
    );
    t += &row("third column", third);
    t += &row(
        "cleaning",
        format!(
            "{} self-loops dropped, {} duplicate edges merged",
            thousands(r.build.self_loops_dropped),
            thousands(r.build.duplicates_merged)
        ),
    );
    t
}

/// `--threads N`: the global pool's size (results do not depend on it).
fn set_threads(threads: Option<usize>) -> Result<()> {
    if let Some(t) = threads {
        if t == 0 {
            return Err(Error::input("--threads must be at least 1"));
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()
            .map_err(|e| Error::Internal(e.to_string()))?;
    }
    Ok(())
}

fn assign(a: AssignArgs) -> Result<()> {
    set_threads(a.threads)?;
    let mut scenario = spillover::scenario::load(&a.scenario)?;
    let Some(index) = scenario.designs.iter().position(|d| d.name == a.design) else {
        let names: Vec<&str> = scenario.designs.iter().map(|d| d.name.as_str()).collect();
        return Err(Error::key(
            "--design",
            format!(
                "--design {:?}: no such design in {}: expected one of {}",
                a.design,
                a.scenario.display(),
                names.join(", ")
            ),
        ));
    };
    if let Some(seed) = a.seed {
        scenario.seed = seed;
    }
    // Every design is built, so the chosen one keeps its index (its stream).
    let prepared = spillover::scenario::prepare(&scenario)
        .map_err(|e| e.context(a.scenario.display().to_string()))?;
    let drawn = spillover::diagnosis::draw_assignment(
        &prepared.graph,
        &prepared.designs[index],
        prepared.config.seed,
        index,
        0,
    )?;
    spillover::report::assign::write_assignment(&prepared, index, &drawn, &a.out)?;
    if !a.quiet {
        out(&format!(
            "{}wrote {}\n",
            spillover::report::assign::summary(&prepared, index, &drawn),
            a.out.display()
        ))?;
    }
    Ok(())
}

fn read_scenario(path: &Path, replicates: Option<usize>) -> Result<(String, Scenario)> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::read(path, e))?;
    let scenario = api::scenario(&text, path, replicates)?;
    Ok((text, scenario))
}

fn run_shard(a: &RunArgs, text: &str, scenario: &Scenario, spec: &str) -> Result<()> {
    let (k, n) = spillover::diagnosis::shard::parse_shard(spec)?;
    let dir = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("output").join(format!("{}-shards", scenario.name)));
    let shard = api::run_shard(scenario, text, &a.scenario, k, n, &api::Hooks::default())?;
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::input(format!("output folder {}: {e}", dir.display())))?;
    let path = dir.join(format!("shard-{k}-of-{n}.spillover"));
    spillover::diagnosis::shard::write(&shard, &path)?;
    if !a.quiet {
        let r = spillover::diagnosis::shard::slice(scenario.replicates, k, n);
        out(&format!(
            "shard {k}/{n}: replicates {}..{} of every design; wrote {}\n",
            r.start,
            r.end,
            path.display()
        ))?;
    }
    Ok(())
}

fn merge(a: MergeArgs) -> Result<()> {
    let mut files = Vec::new();
    for p in &a.shards {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| Error::read(p, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "spillover"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(p.clone());
        }
    }
    let is_sweep = |f: &PathBuf| {
        f.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("sweep-shard-"))
    };
    let sweeps = files.iter().filter(|f| is_sweep(f)).count();
    if sweeps > 0 {
        if sweeps < files.len() {
            return Err(Error::input(
                "merge: both sweep shards (sweep-shard-*) and run shards given: expected \
                 the shards of one run or of one sweep",
            ));
        }
        return merge_sweep(&a, &files);
    }
    let shards: Vec<spillover::diagnosis::shard::Shard> = files
        .iter()
        .map(|f| spillover::diagnosis::shard::read(f))
        .collect::<Result<_>>()?;
    let Some(first) = shards.first() else {
        return Err(Error::input("merge: no shard files (*.spillover) found"));
    };
    let dir = merge_out(&a, &first.scenario_text, &first.scenario_path, "")?;
    let done = api::merge(shards, Some(&dir))?;
    if !a.quiet {
        out(&spillover::report::table(&done.report))?;
        out(&format!(
            "\nwrote {} files to {}\n",
            done.written.len(),
            dir.display()
        ))?;
    }
    Ok(())
}

/// `merge --out`, or output/<scenario name><suffix>/.
fn merge_out(a: &MergeArgs, text: &str, path: &Path, suffix: &str) -> Result<PathBuf> {
    Ok(match &a.out {
        Some(d) => d.clone(),
        None => {
            let s = api::scenario(text, path, None)?;
            PathBuf::from("output").join(format!("{}{suffix}", s.name))
        }
    })
}

fn merge_sweep(a: &MergeArgs, files: &[PathBuf]) -> Result<()> {
    let shards: Vec<spillover::diagnosis::shard::SweepShard> = files
        .iter()
        .map(|f| spillover::diagnosis::shard::read_sweep(f))
        .collect::<Result<_>>()?;
    let Some(first) = shards.first() else {
        return Err(Error::input("merge: no shard files (*.spillover) found"));
    };
    let dir = merge_out(a, &first.scenario_text, &first.scenario_path, "-sweep")?;
    let m = api::merge_sweep(shards, &dir)?;
    if !a.quiet {
        let best = spillover::diagnosis::sweep::best(&m.points);
        let mut t = spillover::report::sweep::table(&m.points, best, &m.skipped);
        t += &format!("\nwrote {} files to {}\n", m.written.len(), dir.display());
        out(&t)?;
    }
    Ok(())
}

fn run_scenario(a: RunArgs) -> Result<()> {
    use std::io::IsTerminal;
    set_threads(a.threads)?;
    let (text, scenario) = read_scenario(&a.scenario, a.replicates)?;
    if let Some(spec) = &a.shard {
        return run_shard(&a, &text, &scenario, spec);
    }
    let dir = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("output").join(&scenario.name));
    let started = std::time::Instant::now();
    let (total, power_total) = api::replicate_counts(&scenario);
    let spin = spinner(a.quiet, "building the network, population and partitions");
    let bar = if a.quiet || !std::io::stderr().is_terminal() {
        indicatif::ProgressBar::hidden()
    } else {
        let b = indicatif::ProgressBar::hidden();
        b.set_length(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} replicates {bar:40} {pos}/{len} ({eta} left)",
        ) {
            b.set_style(style);
        }
        b
    };
    let power_bar = match power_total {
        0 => indicatif::ProgressBar::hidden(),
        t => progress(a.quiet, t, "power curve"),
    };
    let visible = !a.quiet && std::io::stderr().is_terminal();
    let hooks = api::Hooks {
        prepared: &|| {
            spin.finish_and_clear();
            if visible {
                bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                bar.reset_elapsed();
            }
        },
        tick: &|| bar.inc(1),
        tick_power: &|| {
            if !bar.is_finished() {
                bar.finish_and_clear();
            }
            power_bar.inc(1)
        },
        ..Default::default()
    };
    // The output folder is checked (and locked) before any work.
    let done = api::run(&scenario, &text, &a.scenario, Some(&dir), &hooks)?;
    bar.finish_and_clear();
    power_bar.finish_and_clear();
    if a.json {
        let v = serde_json::to_value(&done.report).map_err(|e| Error::Internal(e.to_string()))?;
        return out(&format!("{}\n", pretty(&v)?));
    }
    if !a.quiet {
        out(&spillover::report::table(&done.report))?;
        out(&format!(
            "\nwrote {} files to {} in {:.1} s\n",
            done.written.len(),
            dir.display(),
            started.elapsed().as_secs_f64()
        ))?;
    }
    Ok(())
}

/// A spinner for work without a count (building the network and partitions).
fn spinner(quiet: bool, what: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if quiet || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let b = indicatif::ProgressBar::new_spinner();
    b.set_message(what.to_string());
    b.enable_steady_tick(std::time::Duration::from_millis(120));
    b
}

fn progress(quiet: bool, total: u64, what: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if quiet || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let b = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(&format!(
        "{{spinner}} {what} {{bar:40}} {{pos}}/{{len}} ({{eta}} left)"
    )) {
        b.set_style(style);
    }
    b
}

fn sweep(a: SweepArgs) -> Result<()> {
    use spillover::diagnosis::sweep::{self as sw, Parameter, SweepSpec};
    let (parameter, range) = match (&a.resolution, &a.max_size, &a.parts) {
        (Some(r), None, None) => (Parameter::Resolution, r),
        (None, Some(r), None) => (Parameter::MaxSize, r),
        (None, None, Some(r)) => (Parameter::Parts, r),
        _ => {
            return Err(Error::input(
                "give exactly one of --resolution, --max-size, --parts (LOW..HIGH)",
            ))
        }
    };
    let (from, to) = sw::parse_range(range)?;
    let spec = SweepSpec {
        parameter,
        from,
        to,
        steps: a.steps,
        design: a.design.clone(),
        estimator: a.estimator.clone(),
    };
    spec.validate()?;
    let (text, scenario) = read_scenario(&a.scenario, a.replicates)?;
    if let Some(shard) = &a.shard {
        return sweep_shard(&a, &text, &scenario, &spec, shard);
    }
    // The output folder is checked (and locked) before any work.
    let staged = spillover::fsutil::Staged::begin(
        &a.out
            .clone()
            .unwrap_or_else(|| PathBuf::from("output").join(format!("{}-sweep", scenario.name))),
    )?;
    let spin = spinner(a.quiet, "building the network, population and partitions");
    let prepared = api::prepare(&scenario, &a.scenario)?;
    spin.finish_and_clear();
    let bar = progress(
        a.quiet,
        (a.steps as u64).saturating_mul(scenario.replicates as u64),
        "sweep",
    );
    let (points, skipped) = sw::run(scenario.seed, &scenario.dir, &prepared, &spec, &|| {
        bar.inc(1)
    })?;
    bar.finish_and_clear();
    let best = sw::best(&points);
    let dir = staged.target().to_path_buf();
    let sweep_report = spillover::report::sweep::SweepReport {
        spec: &spec,
        points: &points,
        best,
        skipped: &skipped,
    };
    let (json_text, written) =
        spillover::report::sweep::write_all(staged.path(), &sweep_report, scenario.alpha)?;
    staged.commit()?;
    if a.json {
        return out(&format!("{json_text}\n"));
    }
    if a.quiet {
        return Ok(());
    }
    let mut t = spillover::report::sweep::table(&points, best, &skipped);
    let names: Vec<String> = written
        .iter()
        .filter_map(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
        .collect();
    t += &format!("\nwrote {} to {}\n", names.join(", "), dir.display());
    out(&t)
}

fn sweep_shard(
    a: &SweepArgs,
    text: &str,
    scenario: &Scenario,
    spec: &spillover::diagnosis::sweep::SweepSpec,
    shard: &str,
) -> Result<()> {
    use spillover::diagnosis::shard as sh;
    let (k, n) = sh::parse_shard(shard)?;
    let dir = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("output").join(format!("{}-sweep-shards", scenario.name)));
    let prepared = api::prepare(scenario, &a.scenario)?;
    let s = sh::run_sweep(
        &prepared,
        scenario.seed,
        &scenario.dir,
        &a.scenario,
        text,
        spec,
        k,
        n,
        &|| {},
    )?;
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::input(format!("output folder {}: {e}", dir.display())))?;
    let path = dir.join(format!("sweep-shard-{k}-of-{n}.spillover"));
    let bytes = sh::sweep_to_bytes(&s)?;
    spillover::fsutil::write_atomic(&path, |w| w.write_all(&bytes))?;
    if !a.quiet {
        let r = sh::sweep_slice(spec.steps, k, n);
        out(&format!(
            "sweep shard {k}/{n}: values {}..{} of {}; wrote {}\n",
            r.start,
            r.end,
            spec.steps,
            path.display()
        ))?;
    }
    Ok(())
}

fn print_json_or<T: serde::Serialize>(json: bool, v: T, text: String) -> Result<()> {
    if json {
        out(&format!("{}\n", pretty(&v)?))
    } else {
        out(&text)
    }
}

fn deff(a: DeffArgs) -> Result<()> {
    let v = calc::deff(a.mean_cluster_size, a.icc, a.cv, a.clusters, a.check)?;
    print_json_or(a.json, &v, v.text.clone())
}

fn power_cmd(a: PowerArgs) -> Result<()> {
    let c = a.cluster.clustering();
    let v = calc::power_answer(a.metric.metric(), a.effect, a.n_per_arm, a.metric.alpha, c)?;
    print_json_or(a.metric.json, &v, v.text.clone())
}

fn mde(a: MdeArgs) -> Result<()> {
    let c = a.cluster.clustering();
    let v = calc::mde_answer(
        a.metric.metric(),
        a.n_total,
        a.treated_share,
        a.power,
        a.metric.alpha,
        c,
    )?;
    print_json_or(a.metric.json, &v, v.text.clone())
}

fn clusters_needed(a: ClustersNeededArgs) -> Result<()> {
    let c = a.cluster.clustering();
    let v = calc::clusters_needed(a.metric.metric(), a.effect, a.power, a.metric.alpha, c)?;
    print_json_or(a.metric.json, &v, v.text.clone())
}

fn partition(a: PartitionArgs) -> Result<()> {
    use spillover::data::design::{make_partition, PartitionSpec};
    use spillover::partition as part;
    let needs_parts = matches!(
        a.method,
        PartitionMethod::Balanced | PartitionMethod::Ldg | PartitionMethod::Random
    );
    if needs_parts && a.parts.is_none() {
        return Err(Error::input("--parts is required for this method"));
    }
    if let Some(s) = a.max_size {
        if s < 1 {
            return Err(Error::input("--max-size must be at least 1"));
        }
        if let Some(min) = a.min_size.filter(|&m| m > s) {
            return Err(Error::input(format!(
                "--min-size {min} cannot be reached with --max-size {s}: expected --min-size ≤ --max-size"
            )));
        }
    }
    if a.method == PartitionMethod::File && a.clusters.is_none() {
        return Err(Error::input("--method file needs --clusters FILE"));
    }
    let (g, _) = io::read_edge_list(&a.graph, &a.read.options())?;
    let spin = spinner(a.json, "partitioning");
    // The same dispatch as a scenario's [design.partition].
    let spec = PartitionSpec {
        resolution: a.resolution,
        max_size: a.max_size,
        min_size: a.min_size,
        parts: a.parts,
        imbalance: a.imbalance,
        passes: a.passes,
        refine: !a.no_refine,
        seed: Some(a.seed),
        path: a.clusters.clone(),
        ..PartitionSpec::new(a.method)
    };
    let t = std::time::Instant::now();
    let p = make_partition(&spec, &g, None, a.seed, Path::new(""))?;
    let seconds = t.elapsed().as_secs_f64();
    spin.finish_and_clear();
    let q = part::quality(&g, &p);
    if let Some(out) = &a.out {
        p.write(
            &g,
            out,
            &format!(
                "spillover partition {} method={:?} seed={}{}",
                a.graph.display(),
                a.method,
                a.seed,
                if a.no_refine { " no-refine" } else { "" }
            ),
        )?;
    }
    if a.json {
        let v = json::Partition {
            graph: &a.graph,
            method: format!("{:?}", a.method).to_lowercase(),
            seconds,
            out: a.out.as_deref(),
            quality: &q,
        };
        return out(&format!("{}\n", pretty(&v)?));
    }
    let s = &q.sizes.summary;
    let mut t = row(
        "method",
        format!("{:?} ({seconds:.3} s)", a.method).to_lowercase(),
    );
    t += &row("clusters", thousands(q.clusters));
    t += &row(
        "sizes",
        format!(
            "min {} · median {:.1} · mean {:.1} · max {} · CV {:.2} · largest holds {:.1}% of nodes",
            s.min, s.median, s.mean, s.max, q.sizes.cv, 100.0 * q.sizes.largest_share
        ),
    );
    t += &row("modularity", format!("{:.4}", q.modularity));
    t += &row(
        "cut edges",
        format!(
            "{:.2}% of edge weight crosses clusters",
            100.0 * q.cut_edge_share
        ),
    );
    let w = &q.within_cluster_neighbour_share;
    t += &row(
        "within share",
        format!(
            "per node: mean {:.3} · p10 {:.3} · median {:.3} · p90 {:.3}",
            w.mean, w.p10, w.median, w.p90
        ),
    );
    let c = &q.conductance;
    t += &row(
        "conductance",
        format!(
            "per cluster: mean {:.3} · median {:.3} · max {:.3}",
            c.mean, c.median, c.max
        ),
    );
    t += &row(
        "disconnected",
        format!("{} clusters", q.disconnected_clusters),
    );
    if let Some(o) = &a.out {
        t += &row("written", o.display().to_string());
    }
    out(&t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(88234), "88,234");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}

/// The `--json` outputs, one typed struct per command: the JSON has a schema.
mod json {
    use serde::Serialize;
    use spillover::graph::io::ReadReport;
    use spillover::graph::stats::Summary;
    use std::path::Path;

    /// `spillover generate --json`.
    #[derive(Serialize)]
    pub struct Generate<'a> {
        pub model: &'a str,
        pub seed: u64,
        pub out: &'a Path,
        pub communities: Option<u32>,
        pub summary: &'a Summary,
    }

    /// `spillover inspect --json`.
    #[derive(Serialize)]
    pub struct Inspect<'a> {
        pub file: &'a Path,
        pub read: &'a ReadReport,
        pub summary: &'a Summary,
    }

    /// `spillover partition --json`.
    #[derive(Serialize)]
    pub struct Partition<'a> {
        pub graph: &'a Path,
        pub method: String,
        pub seconds: f64,
        pub out: Option<&'a Path>,
        pub quality: &'a spillover::partition::Quality,
    }
}
