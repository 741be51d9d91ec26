//! The command line: a thin layer that parses arguments, calls the library and
//! prints. It owns nothing but argument definitions and output formatting.
//!
//! Exit codes: 0 success, 2 bad input (file, parameter or usage), 1 anything else.

use crate::error::{Error, Result};
use crate::graph::generate::Model;
use crate::graph::io::{self, Header, ReadOptions, ReadReport, ThirdColumn};
use crate::graph::stats::{self, Summary};
use crate::graph::{BuildOptions, Duplicates, Graph, SelfLoops};
use clap::{Parser, Subcommand};
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
        crate::fsutil::write_atomic(path, |w| {
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
        let v = serde_json::json!({
            "model": g.description,
            "seed": a.seed,
            "out": a.out,
            "communities": g.communities.as_ref().map(|c| c.iter().max().map_or(0, |m| m + 1)),
            "summary": summary,
        });
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
        let v = serde_json::json!({
            "file": a.file,
            "read": report,
            "summary": summary,
        });
        out(&format!("{}\n", pretty(&v)?))
    } else {
        out(&(row("file", a.file.display().to_string())
            + &table(&summary)
            + &read_lines(&a.file, &g, &report)))
    }
}

fn pretty(v: &serde_json::Value) -> Result<String> {
    serde_json::to_string_pretty(v).map_err(|e| Error::Internal(e.to_string()))
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
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

fn read_lines(path: &Path, g: &Graph, r: &ReadReport) -> String {
    let _ = (path, g);
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
