//! Reports: the comparison table, `report.json`, `summary.csv`,
//! `replicates.csv` and the clusters files.
//!
//! This module owns [`Report`] (what `report.json` holds) and the renderers.
//! Every file is written atomically (temporary file, then rename).

use crate::error::Result;
use crate::estimate::Outcome;
use crate::outcome::Estimand;
use crate::sim::{DesignDiagnosis, DesignRun, Prepared};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

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
}

/// Diagnose every design and assemble the report.
pub fn build(
    name: &str,
    p: &Prepared,
    runs: &[DesignRun],
    clusters_files: &[Option<String>],
) -> Report {
    let designs = p
        .designs
        .iter()
        .zip(runs)
        .zip(clusters_files)
        .map(|((d, run), file)| {
            crate::sim::diagnose_design(
                &p.graph,
                &p.population,
                d,
                run,
                &p.config,
                p.estimand.value,
                file.clone(),
            )
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
        designs,
    }
}

fn pct(x: f64) -> String {
    if x.is_nan() {
        "—".into()
    } else {
        format!("{:.1}%", 100.0 * x)
    }
}

/// The terminal comparison table.
pub fn table(r: &Report) -> String {
    let mut t = String::new();
    let e = &r.estimand;
    t += &format!(
        "{}: {} nodes, {} edges; {} replicates per design, alpha {}\n",
        r.scenario.name, r.graph.nodes, r.graph.edges, r.scenario.replicates, r.scenario.alpha
    );
    t += &format!(
        "estimand: global average treatment effect (everyone treated vs no one) = {:.4}  (direct {:.4} + spillover {:.4})\n\n",
        e.value, e.direct, e.spillover
    );
    t += &format!(
        "{:<16} {:>8} {:>7} {:>9} {:>7}  {:<14} {:>9} {:>8} {:>8} {:>7} {:>8} {:>7} {:>7} {:>6}\n",
        "design",
        "clusters",
        "cut",
        "contam.",
        "deff",
        "estimator",
        "bias",
        "±mc se",
        "sd",
        "rmse",
        "se/sd",
        "cover",
        "power",
        "type1"
    );
    for d in &r.designs {
        let contam = 0.5 * (d.contamination.treated + d.contamination.control);
        for (j, est) in d.estimators.iter().enumerate() {
            let left = if j == 0 {
                format!(
                    "{:<16} {:>8} {:>7} {:>9} {:>7.2}",
                    d.name,
                    d.clusters,
                    pct(d.cut_edge_share),
                    pct(contam),
                    d.design_effect.simulated
                )
            } else {
                format!("{:<16} {:>8} {:>7} {:>9} {:>7}", "", "", "", "", "")
            };
            let fails: usize = est.failures.values().sum();
            t += &format!(
                "{left}  {:<14} {:>9.4} {:>8.4} {:>8.4} {:>7.4} {:>8.2} {:>7} {:>7} {:>6}{}\n",
                est.name,
                est.bias,
                est.bias_mc_se,
                est.sd,
                est.rmse,
                est.se_sd_ratio,
                pct(est.coverage),
                pct(est.power),
                pct(est.type1_error),
                if fails > 0 {
                    format!("  ({fails} replicates failed)")
                } else {
                    String::new()
                }
            );
        }
    }
    for d in &r.designs {
        if let Some(x) = &d.exposure {
            t += &format!(
                "\n{}: ht/hajek target the {} exposure contrast = {:.4} (probabilities {}; {} nodes excluded){}",
                d.name,
                x.mapping,
                x.estimand,
                x.probabilities,
                x.excluded_nodes,
                x.ht_exact_sd.map_or(String::new(), |sd| format!("; exact HT sd {sd:.4}"))
                    + &x.probability_max_mc_se.map_or(String::new(), |se| format!("; probability MC SE ≤ {se:.4}"))
            );
            if let Some(w) = &x.warning {
                t += &format!("\n  warning: {w}");
            }
        }
    }
    t += "\ncut: share of edge weight between randomization units; contam.: share of a unit's exposure from the other arm.\n";
    t += "The difference in means is biased by about −spillover × contamination: fewer cut edges, less bias, but fewer units (deff).\n";
    t
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn write_summary(r: &Report, w: &mut dyn Write) -> std::io::Result<()> {
    writeln!(w, "design,unit,clusters,cut_edge_share,contamination_treated,contamination_control,icc,deff_analytic,deff_simulated,effective_sample_size,estimator,replicates_ok,failures,mean_estimate,truth,bias,bias_mc_se,sd,rmse,mean_se,se_sd_ratio,coverage,coverage_mc_se,power,power_mc_se,type1_error,type1_error_mc_se,ri_power,ri_type1_error")?;
    for d in &r.designs {
        for e in &d.estimators {
            writeln!(
                w,
                "{},{:?},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                csv_field(&d.name),
                d.unit,
                d.clusters,
                d.cut_edge_share,
                d.contamination.treated,
                d.contamination.control,
                d.icc.map_or(String::new(), |v| v.to_string()),
                d.design_effect.analytic,
                d.design_effect.simulated,
                d.effective_sample_size,
                e.name,
                e.replicates_ok,
                e.failures.values().sum::<usize>(),
                e.mean_estimate,
                e.truth,
                e.bias,
                e.bias_mc_se,
                e.sd,
                e.rmse,
                e.mean_se,
                e.se_sd_ratio,
                e.coverage,
                e.coverage_mc_se,
                e.power,
                e.power_mc_se,
                e.type1_error,
                e.type1_error_mc_se,
                e.ri_power.map_or(String::new(), |v| v.to_string()),
                e.ri_type1_error.map_or(String::new(), |v| v.to_string())
            )?;
        }
    }
    Ok(())
}

fn write_replicates(p: &Prepared, runs: &[DesignRun], w: &mut dyn Write) -> std::io::Result<()> {
    writeln!(w, "replicate,design,estimator,estimate,se,df,ci_low,ci_high,p_value,null_estimate,null_p_value,failure")?;
    for (d, run) in p.designs.iter().zip(runs) {
        for (ri, rep) in run.replicates.iter().enumerate() {
            for (j, name) in run.estimator_names.iter().enumerate() {
                let (eff, null): (&Outcome, &Outcome) = (&rep.effect[j], &rep.null[j]);
                let (ne, np) = match null {
                    Ok(n) => (n.value.to_string(), n.p_value.to_string()),
                    Err(_) => (String::new(), String::new()),
                };
                match eff {
                    Ok(e) => writeln!(
                        w,
                        "{ri},{},{},{},{},{},{},{},{},{ne},{np},",
                        csv_field(&d.spec.name),
                        name,
                        e.value,
                        e.se,
                        e.df,
                        e.ci_low,
                        e.ci_high,
                        e.p_value
                    )?,
                    Err(f) => writeln!(
                        w,
                        "{ri},{},{},,,,,,,{ne},{np},{}",
                        csv_field(&d.spec.name),
                        name,
                        f.describe()
                    )?,
                }
            }
        }
    }
    Ok(())
}

/// Clusters file name of a design (cluster designs only).
pub fn clusters_file_name(design: &crate::design::Design) -> Option<String> {
    (design.spec.unit == crate::design::Unit::Cluster)
        .then(|| format!("clusters-{}.tsv", design.spec.name))
}

/// Write the clusters files, `report.json`, `summary.csv` and
/// `replicates.csv` into `dir`, each atomically. Returns the paths written.
pub fn write_all(dir: &Path, r: &Report, p: &Prepared, runs: &[DesignRun]) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for d in &p.designs {
        if let Some(name) = clusters_file_name(d) {
            let path = dir.join(name);
            d.clusters.write(
                &p.graph,
                &path,
                &format!(
                    "clusters of design {} (scenario {})",
                    d.spec.name, r.scenario.name
                ),
            )?;
            written.push(path);
        }
    }
    let json = serde_json::to_string_pretty(r)
        .map_err(|e| crate::error::Error::Internal(e.to_string()))?;
    let path = dir.join("report.json");
    crate::fsutil::write_atomic(&path, |w| writeln!(w, "{json}"))?;
    written.push(path);
    let path = dir.join("summary.csv");
    crate::fsutil::write_atomic(&path, |w| write_summary(r, w))?;
    written.push(path);
    let path = dir.join("replicates.csv");
    crate::fsutil::write_atomic(&path, |w| write_replicates(p, runs, w))?;
    written.push(path);
    Ok(written)
}
