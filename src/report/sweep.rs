//! The design sweep's outputs: `sweep.csv`, `sweep.json`, the figure
//! (`sweep.svg`, `sweep.png`, feature `plots`) and the terminal table with
//! its advice.

use super::Num;
use crate::diagnosis::sweep::{SweepPoint, SweepSpec};
use crate::error::Result;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What `sweep.json` (and `spillover sweep --json`) holds.
#[derive(Debug, Serialize)]
pub struct SweepReport<'a> {
    /// The sweep as asked for.
    pub spec: &'a SweepSpec,
    /// One point per value (repeated partitions flagged).
    pub points: &'a [SweepPoint],
    /// The point with the lowest RMSE.
    pub best: Option<&'a SweepPoint>,
    /// Values skipped, with the reason.
    pub skipped: &'a [String],
}

/// Write `sweep.csv`, `sweep.json` and (feature `plots`) `sweep.svg` and
/// `sweep.png` into `dir`, each atomically; returns the JSON text and the
/// paths written. `alpha` is drawn on the power panel.
pub fn write_all(dir: &Path, r: &SweepReport, alpha: f64) -> Result<(String, Vec<PathBuf>)> {
    let points = r.points;
    let mut written = Vec::new();
    crate::fsutil::write_atomic(&dir.join("sweep.csv"), |w| {
        #[derive(serde::Serialize)]
        struct Row<'a> {
            value: Num,
            clusters: usize,
            cut_edge_share: Num,
            estimator: &'a str,
            bias: Num,
            bias_mc_se: Num,
            sd: Num,
            rmse: Num,
            coverage: Num,
            power: Num,
            same_partition_as: Option<Num>,
        }
        let mut out = csv::Writer::from_writer(w);
        for p in points {
            let e = &p.estimator;
            out.serialize(Row {
                value: Num(p.value),
                clusters: p.clusters,
                cut_edge_share: Num(p.cut_edge_share),
                estimator: &e.name,
                bias: Num(e.bias),
                bias_mc_se: Num(e.bias_mc_se),
                sd: Num(e.sd),
                rmse: Num(e.rmse),
                coverage: Num(e.coverage.value),
                power: Num(e.power.value),
                same_partition_as: p.same_partition_as.map(Num),
            })
            .map_err(std::io::Error::other)?;
        }
        out.flush()
    })?;
    written.push(dir.join("sweep.csv"));
    let json_text = serde_json::to_string_pretty(r)
        .map_err(|e| crate::error::Error::Internal(e.to_string()))?;
    crate::fsutil::write_atomic(&dir.join("sweep.json"), |w| writeln!(w, "{json_text}"))?;
    written.push(dir.join("sweep.json"));
    #[cfg(feature = "plots")]
    {
        let fig = figure(r, alpha);
        let svg = fig.svg()?;
        crate::fsutil::write_atomic(&dir.join("sweep.svg"), |w| w.write_all(svg.as_bytes()))?;
        let png = super::plots::svg_to_png(&svg)
            .map_err(|e| crate::error::Error::Internal(format!("plot {}: {e}", fig.name)))?;
        crate::fsutil::write_atomic(&dir.join("sweep.png"), |w| w.write_all(&png))?;
        written.push(dir.join("sweep.svg"));
        written.push(dir.join("sweep.png"));
    }
    #[cfg(not(feature = "plots"))]
    let _ = alpha;
    Ok((json_text, written))
}

/// The sweep figure: |bias|, SD and RMSE, and power, against the number of
/// clusters (repeated partitions drawn once).
#[cfg(feature = "plots")]
pub fn figure(r: &SweepReport, alpha: f64) -> super::plots::Figure {
    let (points, best) = (r.points, r.best);
    let parameter = r.spec.parameter;
    use super::plots::{Figure, Panel};
    let line = |f: &dyn Fn(&SweepPoint) -> f64| -> Vec<(f64, f64)> {
        points
            .iter()
            .filter(|p| p.same_partition_as.is_none())
            .map(|p| ((p.clusters as f64).log10(), f(p)))
            .collect()
    };
    let est = points
        .first()
        .map_or(String::new(), |p| p.estimator.name.clone());
    Figure {
        name: "sweep".into(),
        title: format!(
            "{} by number of clusters ({} swept){}",
            est,
            format!("{parameter:?}").to_lowercase(),
            best.map_or(String::new(), |b| format!(
                "; lowest RMSE at {} clusters",
                b.clusters
            ))
        ),
        panels: vec![
            Panel::Lines {
                title: "bias, SD and RMSE".into(),
                x_label: "number of clusters (log scale)".into(),
                y_label: "outcome units".into(),
                series: vec![
                    ("|bias|".into(), line(&|p| p.estimator.bias.abs()), false, 0),
                    ("SD".into(), line(&|p| p.estimator.sd), false, 1),
                    ("RMSE".into(), line(&|p| p.estimator.rmse), false, 2),
                ],
                reference: None,
                y_range: None,
                log_x: true,
            },
            Panel::Lines {
                title: "power".into(),
                x_label: "number of clusters (log scale)".into(),
                y_label: "share rejecting H0".into(),
                series: vec![("power".into(), line(&|p| p.estimator.power.value), false, 0)],
                reference: Some((alpha, format!("α = {}", alpha))),
                y_range: Some((0.0, 1.0)),
                log_x: true,
            },
        ],
        cols: 2,
        size: (1200, 500),
    }
}

/// The terminal table, one row per value, with the advice (an end of the
/// range, one partition for every value, skipped values).
pub fn table(points: &[SweepPoint], best: Option<&SweepPoint>, skipped: &[String]) -> String {
    let mut t = format!(
        "{:>10} {:>9} {:>7} {:>9} {:>8} {:>8} {:>8} {:>7} {:>7}\n",
        "value", "clusters", "cut", "bias", "±mc se", "sd", "rmse", "cover", "power"
    );
    for p in points {
        let e = &p.estimator;
        if let Some(v) = p.same_partition_as {
            t += &format!(
                "{:>10.4} {:>9}   same partition as {v:.4} (not simulated again)\n",
                p.value, p.clusters
            );
            continue;
        }
        let mark = if best.is_some_and(|b| std::ptr::eq(b, p)) {
            "  ← lowest RMSE"
        } else {
            ""
        };
        t += &format!(
            "{:>10.4} {:>9} {:>6.1}% {:>9.4} {:>8.4} {:>8.4} {:>8.4} {:>6.1}% {:>6.1}%{mark}\n",
            p.value,
            p.clusters,
            100.0 * p.cut_edge_share,
            e.bias,
            e.bias_mc_se,
            e.sd,
            e.rmse,
            100.0 * e.coverage.value,
            100.0 * e.power.value
        );
    }
    if let Some(b) = best {
        let distinct: Vec<&SweepPoint> = points
            .iter()
            .filter(|p| p.same_partition_as.is_none())
            .collect();
        let at = distinct.iter().position(|p| std::ptr::eq(*p, b));
        if distinct.len() > 1 && (at == Some(0) || at == Some(distinct.len() - 1)) {
            t += "\nThe lowest RMSE sits at an end of the range: widen it to see RMSE fall and rise again.\n";
        }
        if points.len() > 1 && distinct.len() == 1 {
            t += "Every value gave the same partition: this parameter does not change the clusters here.\n";
        }
    }
    for s in skipped {
        t += &format!("skipped {s}\n");
    }
    t
}
