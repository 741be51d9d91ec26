//! Rendering only: the terminal comparison table, `report.json`,
//! `summary.csv`, `replicates.csv`, the clusters files, plots
//! (`plots/*.svg`, `plots/*.png`, feature `plots`) and a self-contained
//! `report.html`, all from a diagnosis ([`Report`]). Every file is written
//! atomically (temporary file, then rename).

use crate::answer::Outcome;
use crate::diagnosis::{DesignRun, Prepared, Report};
use crate::error::Result;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

pub mod assign;
#[cfg(feature = "plots")]
pub mod plots;
pub mod sweep;

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
    if let Some(p) = &r.population {
        let m = &p.metric;
        let icc: Vec<String> = r
            .designs
            .iter()
            .zip(&p.icc_by_design)
            .filter_map(|(d, icc)| icc.map(|v| format!("{} {v:.3}", d.name)))
            .collect();
        t += &format!(
            "population: metric {:?} over {} users: mean {:.4}, sd {:.4}, skew {:.2}{}; \
             {} without edges added, {} dropped\n  model: {}\n",
            m.name,
            m.users,
            m.mean,
            m.sd,
            m.skew,
            if m.binary { " (a 0/1 rate)" } else { "" },
            m.isolated,
            m.dropped,
            m.model
        );
        if !icc.is_empty() {
            t += &format!(
                "  metric ICC over each design's clusters: {}\n",
                icc.join(", ")
            );
        }
        t += "\n";
    }
    let ri = has_ri(r);
    t += &format!(
        "{:<16} {:>8} {:>7} {:>9} {:>7}  {:<14} {:>9} {:>8} {:>8} {:>7} {:>8} {:>7} {:>7} {:>6}{}\n",
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
        "type1",
        if ri {
            format!(" {:>8} {:>8}", "RI power", "RI type1")
        } else {
            String::new()
        }
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
            if est.replicates_ok == 0 {
                let reason = est
                    .failures
                    .iter()
                    .max_by_key(|(_, &c)| c)
                    .map_or("no replicate", |(r, _)| r.as_str());
                t += &format!(
                    "{left}  {:<14} failed in all {fails} replicates: {reason}\n",
                    est.name
                );
                continue;
            }
            let ri_cols = if ri {
                format!(
                    " {:>8} {:>8}",
                    est.ri_power.map(|r| r.value).map_or("—".into(), pct),
                    est.ri_type1_error.map(|r| r.value).map_or("—".into(), pct)
                )
            } else {
                String::new()
            };
            t += &format!(
                "{left}  {:<14} {:>9.4} {:>8.4} {:>8.4} {:>7.4} {:>8.2} {:>7} {:>7} {:>6}{ri_cols}{}\n",
                est.name,
                est.bias,
                est.bias_mc_se,
                est.sd,
                est.rmse,
                est.se_sd_ratio,
                pct(est.coverage.value),
                pct(est.power.value),
                pct(est.type1_error.value),
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
    if r.designs.iter().any(|d| d.aging.is_some()) {
        let w = r
            .designs
            .iter()
            .map(|d| d.name.chars().count())
            .max()
            .unwrap_or(0)
            .max(16);
        t += &format!(
            "\n\nclusters that age: built on the interactions before the split, run on those after\n{:<w$} {:>10} {:>10} {:>15} {:>15} {:>12} {:>12} {:>11}\n",
            "design", "cut before", "cut after", "contam. before", "contam. after", "DM bias bef.", "DM bias aft.", "decay bias"
        );
        for d in &r.designs {
            let Some(a) = &d.aging else { continue };
            let c = |x: [f64; 2]| format!("{:.1}%/{:.1}%", 100.0 * x[0], 100.0 * x[1]);
            t += &format!(
                "{:<w$} {:>9.1}% {:>9.1}% {:>15} {:>15} {:>12.4} {:>12.4} {:>11.4}\n",
                d.name,
                100.0 * a.cut_edge_share_before,
                100.0 * a.cut_edge_share_after,
                c(a.contamination_before),
                c(a.contamination_after),
                a.implied_bias_before,
                a.implied_bias_after,
                a.decay_bias
            );
        }
        t += "contam.: treated/control users' mean share of in-weight from the other arm; DM bias: γ·E[f_T − f − c̄_T − c̄_C], the difference-in-means bias that contamination implies (linear-in-means); decay bias: after − before.";
    }
    if r.designs.iter().any(|d| d.balance.is_some()) {
        let w = r
            .designs
            .iter()
            .map(|d| d.name.chars().count())
            .max()
            .unwrap_or(0)
            .max(16);
        t += &format!(
            "\n\nbalance between arms (|standardized mean difference| over replicates)\n{:<w$} {:<18} {:>10} {:>10} {:>9} {:>9}\n",
            "design", "variable", "mean|SMD|", "p95|SMD|", "|SMD|>.1", "any>.1"
        );
        for d in &r.designs {
            let Some(b) = &d.balance else { continue };
            for (k, v) in b.variables.iter().enumerate() {
                t += &format!(
                    "{:<w$} {:<18} {:>10.4} {:>10.4} {:>8.1}% {:>9}\n",
                    if k == 0 { d.name.as_str() } else { "" },
                    v.variable,
                    v.mean_abs_smd,
                    v.p95_abs_smd,
                    100.0 * v.over_0_1.value,
                    if k == 0 {
                        format!("{:.1}%", 100.0 * b.any_over_0_1.value)
                    } else {
                        String::new()
                    }
                );
            }
        }
        t += "An experimentation review asks for |SMD| ≤ 0.1 on every pre-period variable; cluster designs balance worse (fewer units).";
    }
    t += "\ncut: share of edge weight between randomization units; contam.: share of a unit's exposure from the other arm.\n";
    t += "The difference in means is biased by about −spillover × contamination: fewer cut edges, less bias, but fewer units (deff).\n";
    if ri {
        t += "RI power / type1: share of replicates whose Fisher randomization p-value is at most alpha (effect and null runs).\n";
    }
    t += "\nRecommendation\n";
    for para in &r.recommendation.text {
        t += &wrap(para, 100, "  ");
    }
    if !r.recommendation.same_estimates.is_empty() {
        t += &wrap(
            &format!(
                "Same estimates as the pick: {}.",
                r.recommendation.same_estimates.join(", ")
            ),
            100,
            "  ",
        );
    }
    if !r.recommendation.other_estimands.is_empty() {
        t += &wrap(
            &format!(
                "Not ranked (another estimand): {}.",
                r.recommendation.other_estimands.join("; ")
            ),
            100,
            "  ",
        );
    }
    t
}

/// Whether any estimator has randomization-inference results.
fn has_ri(r: &Report) -> bool {
    r.designs
        .iter()
        .any(|d| d.estimators.iter().any(|e| e.ri_power.is_some()))
}

/// Word-wrap `text` at `width` columns, every line indented by `indent`.
fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            out += indent;
            out += &line;
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line += word;
    }
    if !line.is_empty() {
        out += indent;
        out += &line;
        out.push('\n');
    }
    out
}

/// A number written as Rust's `Display` writes it (shortest round-trip, no
/// exponent), so CSV numbers read the same as the JSON's and the terminal's.
pub struct Num(pub f64);

impl Serialize for Num {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// One row of `summary.csv`: a design × estimator.
#[derive(Serialize)]
struct SummaryRow<'a> {
    design: &'a str,
    unit: crate::data::design::Unit,
    clusters: usize,
    cut_edge_share: Num,
    contamination_treated: Num,
    contamination_control: Num,
    icc: Option<Num>,
    deff_analytic: Num,
    deff_simulated: Num,
    effective_sample_size: Num,
    estimator: &'a str,
    replicates_ok: usize,
    failures: usize,
    mean_estimate: Num,
    truth: Num,
    bias: Num,
    bias_mc_se: Num,
    sd: Num,
    rmse: Num,
    mean_se: Num,
    se_sd_ratio: Num,
    coverage: Num,
    coverage_mc_se: Num,
    power: Num,
    power_mc_se: Num,
    type1_error: Num,
    type1_error_mc_se: Num,
    ri_power: Option<Num>,
    ri_type1_error: Option<Num>,
}

/// One row of `replicates.csv`: a replicate × design × estimator.
#[derive(Serialize)]
struct ReplicateRow<'a> {
    replicate: usize,
    design: &'a str,
    estimator: &'a str,
    estimate: Option<Num>,
    se: Option<Num>,
    df: Option<Num>,
    ci_low: Option<Num>,
    ci_high: Option<Num>,
    p_value: Option<Num>,
    null_estimate: Option<Num>,
    null_p_value: Option<Num>,
    failure: Option<&'static str>,
}

fn csv_error(e: csv::Error) -> std::io::Error {
    std::io::Error::other(e)
}

fn write_summary(r: &Report, w: &mut dyn Write) -> std::io::Result<()> {
    let mut out = csv::Writer::from_writer(w);
    for d in &r.designs {
        for e in &d.estimators {
            out.serialize(SummaryRow {
                design: &d.name,
                unit: d.unit,
                clusters: d.clusters,
                cut_edge_share: Num(d.cut_edge_share),
                contamination_treated: Num(d.contamination.treated),
                contamination_control: Num(d.contamination.control),
                icc: d.icc.map(Num),
                deff_analytic: Num(d.design_effect.analytic),
                deff_simulated: Num(d.design_effect.simulated),
                effective_sample_size: Num(d.effective_sample_size),
                estimator: &e.name,
                replicates_ok: e.replicates_ok,
                failures: e.failures.values().sum::<usize>(),
                mean_estimate: Num(e.mean_estimate),
                truth: Num(e.truth),
                bias: Num(e.bias),
                bias_mc_se: Num(e.bias_mc_se),
                sd: Num(e.sd),
                rmse: Num(e.rmse),
                mean_se: Num(e.mean_se),
                se_sd_ratio: Num(e.se_sd_ratio),
                coverage: Num(e.coverage.value),
                coverage_mc_se: Num(e.coverage.mc_se),
                power: Num(e.power.value),
                power_mc_se: Num(e.power.mc_se),
                type1_error: Num(e.type1_error.value),
                type1_error_mc_se: Num(e.type1_error.mc_se),
                ri_power: e.ri_power.map(|r| r.value).map(Num),
                ri_type1_error: e.ri_type1_error.map(|r| r.value).map(Num),
            })
            .map_err(csv_error)?;
        }
    }
    out.flush()
}

/// `summary.csv` with the balance columns appended when the run has a
/// population file (the columns of runs without one are unchanged).
fn write_summary_with_balance(r: &Report, w: &mut dyn Write) -> std::io::Result<()> {
    if r.designs.iter().all(|d| d.balance.is_none()) {
        return write_summary(r, w);
    }
    let mut plain = Vec::new();
    write_summary(r, &mut plain)?;
    let mut rd = csv::Reader::from_reader(plain.as_slice());
    let mut out = csv::Writer::from_writer(w);
    let mut header = rd.headers().map_err(csv_error)?.clone();
    for h in [
        "balance_metric_mean_abs_smd",
        "balance_metric_p95_abs_smd",
        "balance_share_any_over_0_1",
    ] {
        header.push_field(h);
    }
    out.write_record(&header).map_err(csv_error)?;
    let rows_per_design = r.designs.iter().map(|d| d.estimators.len());
    let mut records = rd.records();
    for (d, k) in r.designs.iter().zip(rows_per_design) {
        for _ in 0..k {
            let mut rec = records
                .next()
                .ok_or_else(|| std::io::Error::other("summary rows out of step"))?
                .map_err(csv_error)?;
            match &d.balance {
                Some(b) => {
                    let m = &b.variables[0];
                    rec.push_field(&m.mean_abs_smd.to_string());
                    rec.push_field(&m.p95_abs_smd.to_string());
                    rec.push_field(&b.any_over_0_1.value.to_string());
                }
                None => (0..3).for_each(|_| rec.push_field("")),
            }
            out.write_record(&rec).map_err(csv_error)?;
        }
    }
    out.flush()
}

/// One row of `balance.csv`: a design × pre-period variable.
#[derive(Serialize)]
struct BalanceRow<'a> {
    design: &'a str,
    variable: &'a str,
    mean_abs_smd: Num,
    mean_abs_smd_mc_se: Num,
    p95_abs_smd: Num,
    share_over_0_1: Num,
    share_over_0_1_mc_se: Num,
}

fn write_balance(r: &Report, w: &mut dyn Write) -> std::io::Result<()> {
    let mut out = csv::Writer::from_writer(w);
    for d in &r.designs {
        for v in d.balance.iter().flat_map(|b| &b.variables) {
            out.serialize(BalanceRow {
                design: &d.name,
                variable: &v.variable,
                mean_abs_smd: Num(v.mean_abs_smd),
                mean_abs_smd_mc_se: Num(v.mean_abs_smd_mc_se),
                p95_abs_smd: Num(v.p95_abs_smd),
                share_over_0_1: Num(v.over_0_1.value),
                share_over_0_1_mc_se: Num(v.over_0_1.mc_se),
            })
            .map_err(csv_error)?;
        }
    }
    out.flush()
}

fn write_replicates(p: &Prepared, runs: &[DesignRun], w: &mut dyn Write) -> std::io::Result<()> {
    let mut out = csv::Writer::from_writer(w);
    for (d, run) in p.designs.iter().zip(runs) {
        for (ri, rep) in run.replicates.iter().enumerate() {
            for (j, name) in run.estimator_names.iter().enumerate() {
                let (eff, null): (&Outcome, &Outcome) = (&rep.effect[j], &rep.null[j]);
                let ok = eff.as_ref().ok();
                let field = |f: fn(&crate::answer::Estimate) -> f64| ok.map(|e| Num(f(e)));
                out.serialize(ReplicateRow {
                    replicate: ri,
                    design: &d.spec.name,
                    estimator: name,
                    estimate: field(|e| e.value),
                    se: field(|e| e.se),
                    df: field(|e| e.df),
                    ci_low: field(|e| e.ci_low),
                    ci_high: field(|e| e.ci_high),
                    p_value: field(|e| e.p_value),
                    null_estimate: null.as_ref().ok().map(|n| Num(n.value)),
                    null_p_value: null.as_ref().ok().map(|n| Num(n.p_value)),
                    failure: eff.as_ref().err().map(|f| f.describe()),
                })
                .map_err(csv_error)?;
            }
        }
    }
    out.flush()
}

/// Clusters file name of a design (cluster designs only).
pub fn clusters_file_name(design: &crate::data::design::Design) -> Option<String> {
    (design.spec.unit == crate::data::design::Unit::Cluster)
        .then(|| format!("clusters-{}.tsv", design.spec.name))
}

/// The text outputs of a run as [`write_all`] writes them, in memory:
/// `report.json`, `summary.csv`, `balance.csv` (only with a population
/// file's covariates) and `replicates.csv`, each with its file name.
///
/// # Complexity
/// O(designs × replicates × estimators).
pub fn text_outputs(r: &Report, p: &Prepared, runs: &[DesignRun]) -> Result<Vec<(String, String)>> {
    fn text(f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<String> {
        let mut buf = Vec::new();
        f(&mut buf).map_err(|e| crate::error::Error::io("rendering the outputs", e))?;
        String::from_utf8(buf).map_err(|e| crate::error::Error::Internal(e.to_string()))
    }
    let mut out = Vec::new();
    let json = serde_json::to_string_pretty(r)
        .map_err(|e| crate::error::Error::Internal(e.to_string()))?;
    out.push(("report.json".to_string(), format!("{json}\n")));
    out.push((
        "summary.csv".to_string(),
        text(|w| write_summary_with_balance(r, w))?,
    ));
    if r.designs.iter().any(|d| d.balance.is_some()) {
        out.push(("balance.csv".to_string(), text(|w| write_balance(r, w))?));
    }
    out.push((
        "replicates.csv".to_string(),
        text(|w| write_replicates(p, runs, w))?,
    ));
    Ok(out)
}

/// Every output of a run rendered in memory, once: the figures as SVG,
/// `report.html` with them inline, and the text files of [`text_outputs`].
#[derive(Debug, Clone)]
pub struct Rendered {
    /// (figure name, SVG document); empty without the `plots` feature.
    pub figures: Vec<(String, String)>,
    /// `report.html`.
    pub html: String,
    /// (file name, text): `report.json`, `summary.csv`, `balance.csv`, `replicates.csv`.
    pub texts: Vec<(String, String)>,
}

/// Render every output of a run in memory (see [`Rendered`]).
///
/// # Complexity
/// The figures, plus O(designs × replicates × estimators) for the texts.
pub fn render(
    r: &Report,
    p: &Prepared,
    runs: &[DesignRun],
    scenario_text: &str,
) -> Result<Rendered> {
    #[allow(unused_mut)]
    let mut svgs: Vec<(String, String)> = Vec::new();
    #[cfg(feature = "plots")]
    for fig in figures(r, p, runs) {
        svgs.push((fig.name.clone(), fig.svg()?));
    }
    let html = html(r, &svgs, scenario_text);
    Ok(Rendered {
        figures: svgs,
        html,
        texts: text_outputs(r, p, runs)?,
    })
}

/// Write the plots (SVG and PNG), `report.html`, the clusters files,
/// `report.json`, `summary.csv` and `replicates.csv` into `dir`, each
/// atomically. Returns the rendered outputs and the paths written.
pub fn write_all(
    dir: &Path,
    r: &Report,
    p: &Prepared,
    runs: &[DesignRun],
    scenario_text: &str,
) -> Result<(Rendered, Vec<PathBuf>)> {
    let rendered = render(r, p, runs, scenario_text)?;
    let mut written = Vec::new();
    #[cfg(feature = "plots")]
    for (name, svg) in &rendered.figures {
        let path = dir.join("plots").join(format!("{name}.svg"));
        crate::fsutil::write_atomic(&path, |w| w.write_all(svg.as_bytes()))?;
        written.push(path);
        let png = plots::svg_to_png(svg)
            .map_err(|e| crate::error::Error::Internal(format!("plot {name}: {e}")))?;
        let path = dir.join("plots").join(format!("{name}.png"));
        crate::fsutil::write_atomic(&path, |w| w.write_all(&png))?;
        written.push(path);
    }
    let path = dir.join("report.html");
    crate::fsutil::write_atomic(&path, |w| w.write_all(rendered.html.as_bytes()))?;
    written.push(path);
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
    for (name, text) in &rendered.texts {
        let path = dir.join(name);
        crate::fsutil::write_atomic(&path, |w| w.write_all(text.as_bytes()))?;
        written.push(path);
    }
    Ok((rendered, written))
}

/// The figures of a run (feature `plots`).
#[cfg(feature = "plots")]
pub fn figures(r: &Report, p: &Prepared, runs: &[DesignRun]) -> Vec<plots::Figure> {
    use plots::{Dot, Figure, Panel};
    let mut figs = Vec::new();
    let rows: Vec<(usize, &crate::diagnosis::EstimatorDiagnosis, String)> = r
        .designs
        .iter()
        .enumerate()
        .flat_map(|(di, d)| {
            d.estimators
                .iter()
                .map(move |e| (di, e, format!("{} / {}", d.name, e.name)))
        })
        .collect();
    let dots =
        |f: &dyn Fn(&crate::diagnosis::EstimatorDiagnosis) -> (f64, Option<f64>)| -> Vec<Dot> {
            rows.iter()
                .map(|(di, e, label)| {
                    let (value, err) = f(e);
                    Dot {
                        label: label.clone(),
                        value,
                        err,
                        colour: *di,
                    }
                })
                .collect()
        };
    let height = (140 + 26 * rows.len() as u32).max(320);
    let alpha = r.scenario.alpha;
    figs.push(Figure {
        name: "bias".into(),
        title: "Bias and RMSE against the true effect (bars: ±2 Monte Carlo SE)".into(),
        panels: vec![
            Panel::Dots {
                title: "bias".into(),
                x_label: "mean estimate − truth".into(),
                dots: dots(&|e| (e.bias, Some(2.0 * e.bias_mc_se))),
                reference: Some((0.0, "no bias".into())),
                from_zero: false,
            },
            Panel::Dots {
                title: "RMSE".into(),
                x_label: "root mean squared error".into(),
                dots: dots(&|e| (e.rmse, None)),
                reference: None,
                from_zero: true,
            },
        ],
        cols: 2,
        size: (1200, height),
    });
    figs.push(Figure {
        name: "power".into(),
        title: "Power and type-I error (bars: ±2 Monte Carlo SE)".into(),
        panels: vec![
            Panel::Dots {
                title: "power".into(),
                x_label: "share of replicates rejecting H0: effect = 0".into(),
                dots: dots(&|e| (e.power.value, Some(2.0 * e.power.mc_se))),
                reference: None,
                from_zero: true,
            },
            Panel::Dots {
                title: "type-I error (null run)".into(),
                x_label: "share rejecting when every effect is zero".into(),
                dots: dots(&|e| (e.type1_error.value, Some(2.0 * e.type1_error.mc_se))),
                reference: Some((alpha, format!("nominal {alpha}"))),
                from_zero: true,
            },
        ],
        cols: 2,
        size: (1200, height),
    });
    figs.push(Figure {
        name: "coverage".into(),
        title: "Confidence-interval coverage (bars: ±2 Monte Carlo SE)".into(),
        panels: vec![Panel::Dots {
            title: "coverage".into(),
            x_label: "share of CIs covering the true effect".into(),
            dots: dots(&|e| (e.coverage.value, Some(2.0 * e.coverage.mc_se))),
            reference: Some((
                1.0 - alpha,
                format!("nominal {:.0} %", 100.0 * (1.0 - alpha)),
            )),
            from_zero: false,
        }],
        cols: 1,
        size: (900, height),
    });
    // Contamination and cluster sizes, cluster designs.
    let mut contamination = Vec::new();
    let mut sizes = Vec::new();
    for (di, (d, run)) in p.designs.iter().zip(runs).enumerate() {
        if d.spec.unit != crate::data::design::Unit::Cluster {
            continue;
        }
        if let Some(cc) = &run.cluster_contamination {
            contamination.push(Panel::Hist {
                title: format!("{}: per cluster", d.spec.name),
                x_label: "share of members' exposure from the other arm".into(),
                values: cc.clone(),
                bins: 30,
                marker: None,
                colour: di,
                log_x: false,
            });
        }
        let labels = d.clusters.labels();
        let share: Vec<f64> = (0..p.graph.node_count() as u32)
            .filter_map(|i| {
                let (mut inside, mut all) = (0.0, 0.0);
                for (j, w) in p.graph.in_edges(i) {
                    if j != i {
                        all += w;
                        if labels[j as usize] == labels[i as usize] {
                            inside += w;
                        }
                    }
                }
                (all > 0.0).then_some(inside / all)
            })
            .collect();
        contamination.push(Panel::Hist {
            title: format!("{}: per user", d.spec.name),
            x_label: "share of neighbours in the user's own cluster".into(),
            values: share,
            bins: 30,
            marker: None,
            colour: di,
            log_x: false,
        });
        sizes.push(Panel::Hist {
            title: d.spec.name.clone(),
            x_label: "cluster size (users, log scale)".into(),
            values: d
                .clusters
                .sizes()
                .iter()
                .map(|&s| (s as f64).log10())
                .collect(),
            bins: 30,
            marker: None,
            colour: di,
            log_x: true,
        });
    }
    if !contamination.is_empty() {
        let rows = contamination.len().div_ceil(2) as u32;
        figs.push(Figure {
            name: "contamination".into(),
            title: "Contamination: exposure from the other arm, and within-cluster neighbour share"
                .into(),
            panels: contamination,
            cols: 2,
            size: (1200, 60 + 320 * rows),
        });
    }
    if !sizes.is_empty() {
        let rows = sizes.len().div_ceil(2) as u32;
        figs.push(Figure {
            name: "cluster_sizes".into(),
            title: "Cluster sizes (log scale)".into(),
            panels: sizes,
            cols: 2,
            size: (1200, 60 + 300 * rows),
        });
    }
    if !r.power_curves.is_empty() {
        let mut series = Vec::new();
        for (k, c) in r.power_curves.iter().enumerate() {
            series.push((
                format!("{} (simulated)", c.design),
                c.points.iter().map(|p| (p.0, p.1)).collect(),
                false,
                k,
            ));
            series.push((
                format!("{} (analytic)", c.design),
                c.points.iter().map(|p| (p.0, p.3)).collect(),
                true,
                k,
            ));
        }
        figs.push(Figure {
            name: "power_curve".into(),
            title: format!(
                "Power against the global effect ({}; analytic: textbook formula with the design effect)",
                r.power_curves[0].estimator
            ),
            panels: vec![Panel::Lines {
                title: "power".into(),
                x_label: "global average treatment effect".into(),
                y_label: "share rejecting H0".into(),
                series,
                reference: Some((r.scenario.alpha, format!("α = {}", r.scenario.alpha))),
                y_range: Some((0.0, 1.0)),
                log_x: false,
            }],
            cols: 1,
            size: (1000, 560),
        });
    }
    // Sampling distributions, one figure per design.
    for (di, (d, run)) in r.designs.iter().zip(runs).enumerate() {
        let panels: Vec<Panel> = d
            .estimators
            .iter()
            .enumerate()
            .map(|(j, e)| Panel::Hist {
                title: e.name.clone(),
                x_label: "estimate".into(),
                values: run
                    .replicates
                    .iter()
                    .filter_map(|rep| rep.effect[j].as_ref().ok().map(|x| x.value))
                    .collect(),
                bins: 30,
                marker: Some((e.truth, format!("truth {:.4}", e.truth))),
                colour: di,
                log_x: false,
            })
            .collect();
        let rows = panels.len().div_ceil(3) as u32;
        figs.push(Figure {
            name: format!("sampling-{}", d.name),
            title: format!("Sampling distributions, design {}", d.name),
            panels,
            cols: 3,
            size: (1200, 60 + 280 * rows),
        });
    }
    // Balance of the population file's metric and covariates.
    let balance: Vec<(
        usize,
        String,
        &crate::diagnosis::diagnosands::BalanceDiagnosis,
    )> = r
        .designs
        .iter()
        .enumerate()
        .flat_map(|(di, d)| {
            d.balance.iter().flat_map(move |b| {
                b.variables
                    .iter()
                    .map(move |v| (di, format!("{} / {}", d.name, v.variable), v))
            })
        })
        .collect();
    if !balance.is_empty() {
        let dots =
            |f: &dyn Fn(&crate::diagnosis::diagnosands::BalanceDiagnosis) -> (f64, Option<f64>)| {
                balance
                    .iter()
                    .map(|(di, label, v)| {
                        let (value, err) = f(v);
                        Dot {
                            label: label.clone(),
                            value,
                            err,
                            colour: *di,
                        }
                    })
                    .collect::<Vec<_>>()
            };
        figs.push(Figure {
            name: "balance".into(),
            title: "Balance between arms of the pre-period metric and covariates (|standardized mean difference|)".into(),
            panels: vec![
                Panel::Dots {
                    title: "mean |SMD|".into(),
                    x_label: "mean over replicates (bars: ±2 Monte Carlo SE)".into(),
                    dots: dots(&|v| (v.mean_abs_smd, Some(2.0 * v.mean_abs_smd_mc_se))),
                    reference: Some((0.1, "0.1".into())),
                    from_zero: true,
                },
                Panel::Dots {
                    title: "95th percentile |SMD|".into(),
                    x_label: "95th percentile over replicates".into(),
                    dots: dots(&|v| (v.p95_abs_smd, None)),
                    reference: Some((0.1, "0.1".into())),
                    from_zero: true,
                },
            ],
            cols: 2,
            size: (1200, (140 + 26 * balance.len() as u32).max(320)),
        });
    }
    figs
}

const STYLE: &str = "body{font-family:'DejaVu Sans',Verdana,sans-serif;margin:2em;max-width:1250px;color:#222}\
table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}\
th{background:#eef}td.l{text-align:left}tr.first td{border-top:2px solid #888}.rec{background:#e8f4e8;padding:.8em;border-left:5px solid #009E73}\
.warn{background:#fff3e0;padding:.5em;border-left:5px solid #D55E00}pre{background:#f6f6f6;padding:1em;overflow-x:auto}figure{margin:1.5em 0}svg{max-width:100%;height:auto}";

/// The self-contained HTML report (plots inlined as SVG; no external
/// resources), from a `maud` template: every text is escaped by the
/// template engine; only the SVG documents the library drew itself are
/// inserted as markup.
pub fn html(r: &Report, svgs: &[(String, String)], scenario_text: &str) -> String {
    use maud::{html, PreEscaped, DOCTYPE};
    let e = &r.estimand;
    let rec = &r.recommendation;
    let ri = has_ri(r);
    let alpha = r.scenario.alpha;
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "spillover: " (r.scenario.name) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { "spillover: " (r.scenario.name) }
                p {
                    (r.graph.nodes) " users, " (r.graph.edges) " edges (" (r.graph.source) "). "
                    (r.scenario.replicates) " replicates per design, α = " (alpha) ", seed " (r.scenario.seed) "."
                }
                p {
                    b { "What is estimated." }
                    " The global average treatment effect: the mean difference between every user's outcome when everyone is treated and when no one is, computed exactly from the outcome model: "
                    b { (format!("{:.4}", e.value)) }
                    (format!(", of which {:.4} is the direct effect of a user's own treatment and {:.4} the spillover from treated neighbours.", e.direct, e.spillover))
                    " Every design × estimator below is judged against it (HT/Hájek and saturation estimators against their own estimands, shown in their rows)."
                }
                div class=(if rec.pick.is_some() { "rec" } else { "warn" }) {
                    h2 { "Recommendation" }
                    @for (i, para) in rec.text.iter().enumerate() {
                        @let warning = rec.pick.is_some() && rec.warnings.contains(para);
                        p class=[warning.then_some("warn")] {
                            @if i == 0 { b { (para) } } @else { (para) }
                        }
                    }
                    @if !rec.same_estimates.is_empty() {
                        p { "Same estimates as the pick: " (rec.same_estimates.join(", ")) "." }
                    }
                    @if !rec.other_estimands.is_empty() {
                        p { "Not ranked (another estimand): " (rec.other_estimands.join("; ")) "." }
                    }
                    p { small {
                        (format!(
                            "Rules: only pairs estimating the global effect are ranked; a pair failing in more than {:.0} % of replicates, or whose coverage is more than {} Monte Carlo SE below {:.0} %, is out; lowest RMSE wins, RMSE gaps within 2 Monte Carlo SE are ties broken by power (not at a zero effect); minimum detectable effect = ",
                            100.0 * crate::diagnosis::recommend::MAX_FAILURE_SHARE,
                            crate::diagnosis::recommend::Z_SIGNIFICANT,
                            100.0 * (1.0 - alpha)
                        ))
                        "(z" sub { "1−α/2" } " + z" sub { "0.8" } ") × simulated SD."
                    } }
                }
                @for d in &r.designs {
                    @if let Some(w) = d.exposure.as_ref().and_then(|x| x.warning.as_ref()) {
                        p class="warn" { (d.name) ": " (w) }
                    }
                }
                h2 { "Comparison" }
                table {
                    tr {
                        th { "design" } th { "clusters" } th { "cut edges" } th { "contamination" }
                        th { "design effect" br; "simulated" } th { "design effect" br; "analytic" }
                        th { "estimator" } th { "truth" } th { "bias" } th { "± MC SE" } th { "SD" } th { "RMSE" }
                        th { "SE/SD" } th { "coverage" } th { "power" } th { "type-I" }
                        @if ri { th { "RI power" } th { "RI type-I" } }
                        th { "failed" }
                    }
                    @for d in &r.designs {
                        @for (j, est) in d.estimators.iter().enumerate() {
                            tr class=[(j == 0).then_some("first")] {
                                @if j == 0 {
                                    td class="l" { (d.name) }
                                    td { (d.clusters) }
                                    td { (pct(d.cut_edge_share)) }
                                    td { (pct(0.5 * (d.contamination.treated + d.contamination.control))) }
                                    td { (format!("{:.2} ± {:.2}", d.design_effect.simulated, d.design_effect.simulated_mc_se)) }
                                    td title=(d.design_effect.formula) { (format!("{:.2}", d.design_effect.analytic)) }
                                } @else {
                                    td {} td {} td {} td {} td {} td {}
                                }
                                td class="l" { (est.name) }
                                td { (format!("{:.4}", est.truth)) }
                                td { (format!("{:.4}", est.bias)) }
                                td { (format!("{:.4}", est.bias_mc_se)) }
                                td { (format!("{:.4}", est.sd)) }
                                td { (format!("{:.4}", est.rmse)) }
                                td { (format!("{:.2}", est.se_sd_ratio)) }
                                td { (pct(est.coverage.value)) }
                                td { (pct(est.power.value)) }
                                td { (pct(est.type1_error.value)) }
                                @if ri {
                                    td { (est.ri_power.map(|r| r.value).map_or("—".into(), pct)) }
                                    td { (est.ri_type1_error.map(|r| r.value).map_or("—".into(), pct)) }
                                }
                                td { (est.failures.values().sum::<usize>()) }
                            }
                        }
                    }
                }
                p {
                    "cut edges: share of edge weight between randomization units; contamination: share of a unit's exposure from the other arm; design effect, simulated: variance of the difference in means against complete user randomization (± Monte Carlo SE); analytic: the formula below."
                    @if ri { " RI power / type-I: share of replicates whose Fisher randomization p-value is at most α, in the effect and null runs." }
                }
                ul {
                    @for d in &r.designs {
                        li { (d.name) (format!(": analytic design effect {:.2} = ", d.design_effect.analytic)) (d.design_effect.formula) }
                    }
                }
                @if let Some(pi) = &r.population {
                    h2 { "Population" }
                    p {
                        "Metric " code { (pi.metric.name) } (format!(
                            " over {} users: mean {:.4}, SD {:.4}, skew {:.2}{}; {} users without edges added, {} dropped. ",
                            pi.metric.users, pi.metric.mean, pi.metric.sd, pi.metric.skew,
                            if pi.metric.binary { " (a 0/1 rate)" } else { "" },
                            pi.metric.isolated, pi.metric.dropped
                        ))
                        "Model: " (pi.metric.model) "."
                    }
                    ul {
                        @for (d, icc) in r.designs.iter().zip(&pi.icc_by_design) {
                            @if let Some(v) = icc {
                                li { (d.name) (format!(": the metric's ICC over its clusters {v:.3}")) }
                            }
                        }
                    }
                }
                @if r.designs.iter().any(|d| d.balance.is_some()) {
                    h2 { "Balance" }
                    table {
                        tr { th { "design" } th { "variable" } th { "mean |SMD|" } th { "95th pct |SMD|" } th { "draws with |SMD| > 0.1" } th { "draws with any > 0.1" } }
                        @for d in &r.designs {
                            @if let Some(b) = &d.balance {
                                @for (k, v) in b.variables.iter().enumerate() {
                                    tr class=[(k == 0).then_some("first")] {
                                        td class="l" { @if k == 0 { (d.name) } }
                                        td class="l" { (v.variable) }
                                        td { (format!("{:.4} ± {:.4}", v.mean_abs_smd, v.mean_abs_smd_mc_se)) }
                                        td { (format!("{:.4}", v.p95_abs_smd)) }
                                        td { (pct(v.over_0_1.value)) }
                                        td { @if k == 0 { (pct(b.any_over_0_1.value)) } }
                                    }
                                }
                            }
                        }
                    }
                    p { "Standardized mean difference between arms, (x̄₁ − x̄₀)/√((s₁² + s₀²)/2), over the replicates' randomizations; an experimentation review asks for |SMD| ≤ 0.1 on every pre-period variable." }
                }
                @if r.designs.iter().any(|d| d.aging.is_some()) {
                    h2 { "Clusters that age" }
                    table {
                        tr { th { "design" } th { "cut before" } th { "cut after" } th { "contamination before" br; "treated / control" } th { "contamination after" br; "treated / control" } th { "implied DM bias" br; "before" } th { "implied DM bias" br; "after" } th { "decay bias" } }
                        @for d in &r.designs {
                            @if let Some(a) = &d.aging {
                                tr {
                                    td class="l" { (d.name) }
                                    td { (pct(a.cut_edge_share_before)) }
                                    td { (pct(a.cut_edge_share_after)) }
                                    td { (pct(a.contamination_before[0])) " / " (pct(a.contamination_before[1])) }
                                    td { (pct(a.contamination_after[0])) " / " (pct(a.contamination_after[1])) }
                                    td { (format!("{:.4}", a.implied_bias_before)) }
                                    td { (format!("{:.4}", a.implied_bias_after)) }
                                    td { (format!("{:.4}", a.decay_bias)) }
                                }
                            }
                        }
                    }
                    p { "Clusters were built on the interactions before the split; the experiment runs on those after. Implied DM bias: γ·E[f_T − f − c̄_T − c̄_C], the difference-in-means bias the contamination implies under linear-in-means spillover; decay bias: after − before." }
                }
                h2 { "Plots" }
                @for (name, svg) in svgs {
                    figure id=(name) {
                        // The SVG documents are drawn by this library (plotters escapes their text).
                        (PreEscaped(svg.find("<svg").map_or(svg.as_str(), |i| &svg[i..])))
                    }
                }
                h2 { "Scenario" }
                pre { (scenario_text) }
            }
        }
    };
    let mut out = page.into_string();
    out.push('\n');
    out
}
