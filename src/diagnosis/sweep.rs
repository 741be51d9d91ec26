//! The design sweep: one cluster design across partition granularities.
//!
//! This module owns [`SweepSpec`] (which partition parameter to vary, over
//! which range) and [`SweepPoint`] (the diagnosis of one granularity): it makes
//! the bias–variance trade-off of cluster size visible. The network and the
//! population are built once; only the swept design's partition changes.

use crate::data::design::{make_partition, Design};
use crate::diagnosis::{self as sim, Prepared};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Which partition parameter varies.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Parameter {
    /// Louvain/Leiden resolution (log-spaced steps).
    Resolution,
    /// Largest cluster size (log-spaced, rounded).
    MaxSize,
    /// Number of parts of balanced/ldg/random partitions (log-spaced, rounded).
    Parts,
}

/// What to sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepSpec {
    /// The parameter.
    pub parameter: Parameter,
    /// Lowest value.
    pub from: f64,
    /// Highest value.
    pub to: f64,
    /// Number of values (log-spaced from `from` to `to`).
    pub steps: usize,
    /// The design to sweep (default: the first cluster design).
    pub design: Option<String>,
    /// The estimator to report (default: the first the scenario names).
    pub estimator: Option<String>,
}

/// Most values a sweep may visit (each is a whole partition and simulation).
pub const MAX_STEPS: usize = 1_000;

impl SweepSpec {
    /// Check the number of steps (2 to [`MAX_STEPS`]).
    pub fn validate(&self) -> Result<()> {
        if !(2..=MAX_STEPS).contains(&self.steps) {
            return Err(Error::parameter(
                "--steps",
                self.steps,
                format!("between 2 and {MAX_STEPS}"),
            ));
        }
        Ok(())
    }
}

/// One granularity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    /// Parameter value.
    pub value: f64,
    /// Clusters in the partition.
    pub clusters: usize,
    /// Cut edge share.
    pub cut_edge_share: f64,
    /// The estimator's diagnosis at this granularity.
    pub estimator: sim::EstimatorDiagnosis,
    /// When this value gave exactly the partition of the previous value: that
    /// value (the point is not simulated again and not plotted twice).
    pub same_partition_as: Option<f64>,
}

/// Parse `A..B` into (A, B).
pub fn parse_range(text: &str) -> Result<(f64, f64)> {
    let (a, b) = text
        .split_once("..")
        .ok_or_else(|| Error::input(format!("range {text:?}: expected LOW..HIGH, e.g. 0.1..10")))?;
    let (a, b): (f64, f64) = (
        a.trim()
            .parse()
            .map_err(|_| Error::input(format!("range {text:?}: {a:?} is not a number")))?,
        b.trim()
            .parse()
            .map_err(|_| Error::input(format!("range {text:?}: {b:?} is not a number")))?,
    );
    if !(a > 0.0 && a <= b && b.is_finite()) {
        return Err(Error::input(format!(
            "range {text:?}: expected 0 < LOW ≤ HIGH"
        )));
    }
    Ok((a, b))
}

/// The log-spaced values of a sweep.
pub fn values(spec: &SweepSpec) -> Vec<f64> {
    let n = spec.steps.max(1);
    (0..n)
        .map(|i| {
            let t = if n == 1 {
                0.0
            } else {
                i as f64 / (n - 1) as f64
            };
            let v = (spec.from.ln() + t * (spec.to.ln() - spec.from.ln())).exp();
            match spec.parameter {
                Parameter::Resolution => v,
                _ => v.round().max(1.0),
            }
        })
        .collect()
}

/// The points of a sweep, and the values skipped with the reason.
pub type SweepResult = (Vec<SweepPoint>, Vec<String>);

/// What one value of a sweep came to, before repeated partitions are
/// resolved into points ([`resolve`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    /// Simulated.
    Point(Box<SweepPoint>),
    /// This value gave the partition of the value before it: its point
    /// repeats the previous point.
    Same(f64),
    /// Not simulated: the value and the reason.
    Skipped(String),
}

/// Run the sweep (`seed` and `dir`, the folder relative partition files
/// start from, as the scenario gives them); `tick` is called once per
/// finished replicate.
///
/// # Complexity
/// Per value: one partition and (unless it repeats the previous one) the
/// design's replicates.
pub fn run(
    seed: u64,
    dir: &Path,
    p: &Prepared,
    spec: &SweepSpec,
    tick: &(dyn Fn() + Sync),
) -> Result<SweepResult> {
    Ok(resolve(outcomes(seed, dir, p, spec, 0..spec.steps, tick)?))
}

/// The values of shard `k` of `n` (1 ≤ k ≤ n) of a sweep of `steps` values:
/// contiguous, as equal as they can be (empty when n > steps).
pub fn slice(steps: usize, k: usize, n: usize) -> std::ops::Range<usize> {
    let at = |i: usize| i.saturating_mul(steps) / n.max(1);
    at(k.saturating_sub(1)).min(steps)..at(k).min(steps)
}

/// Points and skipped values from the outcomes of every value, in order.
pub fn resolve(outcomes: Vec<Outcome>) -> SweepResult {
    let mut out: Vec<SweepPoint> = Vec::new();
    let mut skipped = Vec::new();
    for o in outcomes {
        match o {
            Outcome::Point(p) => out.push(*p),
            Outcome::Same(v) => {
                if let Some(last) = out.last() {
                    let mut point = last.clone();
                    point.value = v;
                    point.same_partition_as = Some(last.same_partition_as.unwrap_or(last.value));
                    out.push(point);
                }
            }
            Outcome::Skipped(s) => skipped.push(s),
        }
    }
    (out, skipped)
}

/// The outcomes of values `range` (indices into [`values`]) of a sweep.
/// Whether the first value repeats the partition before it is decided by
/// partitioning the values before the range (back to the first usable one),
/// so the outcomes of disjoint ranges, concatenated, are the outcomes of the
/// whole sweep.
pub fn outcomes(
    seed: u64,
    dir: &Path,
    p: &Prepared,
    spec: &SweepSpec,
    range: std::ops::Range<usize>,
    tick: &(dyn Fn() + Sync),
) -> Result<Vec<Outcome>> {
    spec.validate()?;
    let index = match &spec.design {
        Some(name) => p
            .designs
            .iter()
            .position(|d| &d.spec.name == name)
            .ok_or_else(|| {
                Error::input(format!("--design {name:?}: no such design in the scenario"))
            })?,
        None => p
            .designs
            .iter()
            .position(|d| d.spec.partition.is_some())
            .ok_or_else(|| Error::input("the scenario has no cluster design to sweep"))?,
    };
    let base = &p.designs[index].spec;
    let part = base
        .partition
        .clone()
        .ok_or_else(|| Error::input(format!("design {:?} is not a cluster design", base.name)))?;
    use crate::data::design::PartitionMethod as M;
    let ok = match spec.parameter {
        Parameter::Resolution | Parameter::MaxSize => matches!(part.method, M::Louvain | M::Leiden),
        Parameter::Parts => matches!(part.method, M::Balanced | M::Ldg | M::Random),
    };
    if !ok {
        return Err(Error::input(format!(
            "design {:?} uses partition method {:?}, which has no {:?} to sweep",
            base.name, part.method, spec.parameter
        )));
    }
    let est_name = spec
        .estimator
        .clone()
        .unwrap_or_else(|| p.config.estimators[0].name().to_string());
    let vals = values(spec);
    let range = range.start.min(vals.len())..range.end.min(vals.len());
    let setting = |v: f64| {
        let mut ps = part.clone();
        match spec.parameter {
            Parameter::Resolution => ps.resolution = v,
            Parameter::MaxSize => ps.max_size = Some(v as usize),
            Parameter::Parts => ps.parts = Some((v as usize).min(p.graph.node_count())),
        }
        ps
    };
    // A partitioner that breaks its own promise at this granularity (e.g.
    // METIS's balance with very few nodes per part) skips the value.
    let partition = |v: f64| -> Result<std::result::Result<crate::partition::Partition, String>> {
        match make_partition(&setting(v), &p.graph, p.planted.as_deref(), seed, dir) {
            Ok(c) if c.count() < 2 => Ok(Err(format!("{v}: fewer than 2 clusters"))),
            Ok(c) => Ok(Ok(c)),
            Err(e @ Error::PartitionFailed { .. }) => Ok(Err(format!("{v}: {e}"))),
            Err(e) => Err(e),
        }
    };
    // Same clusters as the previous usable value (labels are canonical): the
    // simulation would repeat it exactly, so its result is reused and said.
    // (Not for redrawn partitions: the swept value changes every redraw.)
    let mut previous: Option<Vec<u32>> = None;
    if !part.redraw {
        for &v in vals[..range.start].iter().rev() {
            if let Ok(c) = partition(v)? {
                previous = Some(c.labels().to_vec());
                break;
            }
        }
    }
    let mut out = Vec::new();
    for &v in &vals[range] {
        let clusters = match partition(v)? {
            Ok(c) => c,
            Err(reason) => {
                out.push(Outcome::Skipped(reason));
                continue;
            }
        };
        if !part.redraw && previous.as_deref() == Some(clusters.labels()) {
            out.push(Outcome::Same(v));
            continue;
        }
        previous = Some(clusters.labels().to_vec());
        let mut dspec = base.clone();
        dspec.partition = Some(setting(v));
        let design = Design::new(dspec, Some(clusters), &p.population.x)?;
        let run = sim::run_design(&p.graph, &p.population, &design, &p.config, index, tick)?;
        let d = sim::diagnose_design(
            &p.graph,
            &p.population,
            &design,
            &run,
            &p.config,
            p.estimand.value,
            None,
        );
        let e = d
            .estimators
            .iter()
            .find(|e| e.name == est_name)
            .cloned()
            .ok_or_else(|| {
                Error::input(format!(
                    "--estimator {est_name:?}: not an estimator of this scenario"
                ))
            })?;
        out.push(Outcome::Point(Box::new(SweepPoint {
            value: v,
            clusters: d.clusters,
            cut_edge_share: d.cut_edge_share,
            estimator: e,
            same_partition_as: None,
        })));
    }
    Ok(out)
}

/// The point with the lowest RMSE (the first value of a repeated partition).
pub fn best(points: &[SweepPoint]) -> Option<&SweepPoint> {
    points
        .iter()
        .filter(|p| p.estimator.rmse.is_finite() && p.same_partition_as.is_none())
        .min_by(|a, b| a.estimator.rmse.total_cmp(&b.estimator.rmse))
}
