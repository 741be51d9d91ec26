//! The commands as library calls: what `spillover run`, `run --shard` and
//! `merge` do, without argument parsing or printing. The command line and
//! the Python package (`python/`) both call these, so a run gives the same
//! bytes whichever way it was started.
//!
//! This module owns the order of a run's steps: check and lock the output
//! folder, prepare the scenario, simulate, render, write (staged, then
//! swapped in). It sits on top of every other module.

use crate::diagnosis::engine::Cancel;
use crate::diagnosis::shard::{self, Shard};
use crate::diagnosis::{DesignRun, Prepared, Report};
use crate::error::{Error, Result};
use crate::scenario::Scenario;
use std::path::{Path, PathBuf};

/// What a caller hears while a run goes on, and how it stops one.
pub struct Hooks<'a> {
    /// Called once the network, population and partitions are built.
    pub prepared: &'a (dyn Fn() + Sync),
    /// Called once per finished replicate of the main run.
    pub tick: &'a (dyn Fn() + Sync),
    /// Called once per finished power-curve replicate.
    pub tick_power: &'a (dyn Fn() + Sync),
    /// Cancelled from another thread, the run stops before its next
    /// replicate with [`Error::Cancelled`] and writes nothing.
    pub cancel: Cancel,
}

fn nothing() {}

impl Default for Hooks<'_> {
    fn default() -> Self {
        Hooks {
            prepared: &nothing,
            tick: &nothing,
            tick_power: &nothing,
            cancel: Cancel::default(),
        }
    }
}

/// A finished run: the report, what it was computed from, and the files
/// written (none without an output folder).
pub struct Finished {
    /// The diagnosis.
    pub report: Report,
    /// The network, population, designs and settings.
    pub prepared: Prepared,
    /// Every replicate of every design.
    pub runs: Vec<DesignRun>,
    /// Every output rendered in memory (figures, `report.html`, the texts).
    pub rendered: crate::report::Rendered,
    /// Files written, if an output folder was given.
    pub written: Vec<PathBuf>,
}

/// Parse scenario `text` (`path` names it in errors and anchors its
/// relative paths), with an optional replicates override.
///
/// ```
/// let text = r#"
/// name = "x"
/// replicates = 50
/// [graph]
/// model = "sbm"
/// [[design]]
/// name = "user"
/// [[design]]
/// name = "communities"
/// unit = "cluster"
/// partition = { method = "louvain" }
/// "#;
/// let s = spillover::api::scenario(text, std::path::Path::new("x.toml"), Some(20))?;
/// assert_eq!(s.replicates, 20);
/// // An override is checked like the file's own value.
/// assert!(spillover::api::scenario(text, std::path::Path::new("x.toml"), Some(1)).is_err());
/// # Ok::<(), spillover::Error>(())
/// ```
pub fn scenario(text: &str, path: &Path, replicates: Option<usize>) -> Result<Scenario> {
    let mut s = crate::scenario::parse(text, path)?;
    if let Some(r) = replicates {
        s.set_replicates(r)?;
    }
    Ok(s)
}

/// Replicates a run of `s` simulates: (main run, power curve), for
/// progress bars.
pub fn replicate_counts(s: &Scenario) -> (u64, u64) {
    let designs = s.designs.len() as u64;
    let main = designs.saturating_mul(s.replicates as u64);
    // Saturation designs have no power curve.
    let curve_designs = s
        .designs
        .iter()
        .filter(|d| d.assignment != crate::data::design::Assignment::Saturation)
        .count() as u64;
    let power = s.power_curve.as_ref().map_or(0, |pc| {
        (pc.effects.len() as u64)
            .saturating_mul(curve_designs)
            .saturating_mul(pc.replicates.unwrap_or(s.replicates) as u64)
    });
    (main, power)
}

/// Build the network, population, partitions and designs of `s`; input
/// errors name the scenario file.
pub fn prepare(s: &Scenario, path: &Path) -> Result<Prepared> {
    crate::scenario::prepare(s).map_err(|e| in_file(e, path))
}

/// An input error of scenario `path`, named with it.
fn in_file(e: Error, path: &Path) -> Error {
    match e {
        e @ (Error::Input(_)
        | Error::Read { .. }
        | Error::Parameter { .. }
        | Error::TooLarge { .. }
        | Error::Context { .. }) => e.context(path.display().to_string()),
        other => other,
    }
}

/// Run scenario `s` (read from `text` at `path`): simulate every design,
/// build the report, and with `out` write every output there (the folder is
/// checked and locked before any work, written staged and swapped in whole).
///
/// # Complexity
/// That of [`crate::scenario::prepare`] plus designs × replicates replicates
/// (see [`crate::diagnosis::simulate`]).
pub fn run(
    s: &Scenario,
    text: &str,
    path: &Path,
    out: Option<&Path>,
    hooks: &Hooks,
) -> Result<Finished> {
    let staged = out.map(crate::fsutil::Staged::begin).transpose()?;
    // Designs without a partition run while the partitions are computed.
    let (prepared, early) = crate::scenario::prepare_running(s, &hooks.cancel, hooks.tick)
        .map_err(|e| in_file(e, path))?;
    (hooks.prepared)();
    let files = clusters_files(&prepared);
    let (report, runs) = crate::diagnosis::diagnose_with(
        &s.name,
        &prepared,
        early,
        s.power_curve.as_ref(),
        &files,
        hooks.tick,
        hooks.tick_power,
    )?;
    finish(report, prepared, runs, text, staged)
}

fn clusters_files(p: &Prepared) -> Vec<Option<String>> {
    p.designs
        .iter()
        .map(crate::report::clusters_file_name)
        .collect()
}

/// Render (and with a staged folder, write) the outputs of a finished run.
fn render_or_write(
    report: &Report,
    prepared: &Prepared,
    runs: &[DesignRun],
    text: &str,
    staged: Option<crate::fsutil::Staged>,
) -> Result<(crate::report::Rendered, Vec<PathBuf>)> {
    match staged {
        Some(staged) => {
            let done = crate::report::write_all(staged.path(), report, prepared, runs, text)?;
            // A stop asked for while rendering: nothing is swapped in.
            if prepared.config.cancel.is_cancelled() {
                return Err(Error::Cancelled);
            }
            staged.commit()?;
            Ok(done)
        }
        None => Ok((
            crate::report::render(report, prepared, runs, text)?,
            Vec::new(),
        )),
    }
}

fn finish(
    report: Report,
    prepared: Prepared,
    runs: Vec<DesignRun>,
    text: &str,
    staged: Option<crate::fsutil::Staged>,
) -> Result<Finished> {
    let (rendered, written) = render_or_write(&report, &prepared, &runs, text, staged)?;
    Ok(Finished {
        report,
        prepared,
        runs,
        rendered,
        written,
    })
}

/// Run shard `k` of `n` of scenario `s`: a slice of every design's
/// replicates and of every power-curve point's (see
/// [`crate::diagnosis::shard`]).
pub fn run_shard(
    s: &Scenario,
    text: &str,
    path: &Path,
    k: usize,
    n: usize,
    hooks: &Hooks,
) -> Result<Shard> {
    let mut prepared = prepare(s, path)?;
    prepared.config.cancel = hooks.cancel.clone();
    (hooks.prepared)();
    run_shard_prepared(&prepared, s, text, path, k, n, hooks.tick)
}

/// [`run_shard`] on a scenario already prepared (`p` from [`prepare`] of `s`).
pub fn run_shard_prepared(
    p: &Prepared,
    s: &Scenario,
    text: &str,
    path: &Path,
    k: usize,
    n: usize,
    tick: &(dyn Fn() + Sync),
) -> Result<Shard> {
    if k == 0 || k > n || n > shard::MAX_SHARDS {
        return Err(Error::parameter(
            "shard",
            format!("{k}/{n}"),
            format!("K/N with 1 ≤ K ≤ N ≤ {}", shard::MAX_SHARDS),
        ));
    }
    shard::run(p, path, text, k, n, s.power_curve.as_ref(), tick)
}

/// Merge the shards of one run into its outputs, written to `out` if given
/// (byte-identical to an unsharded run's). The scenario is re-read from the
/// shards (its relative paths anchored where the first shard's run was) and
/// prepared again: [`merge_prepared`] spares that where a prepared scenario
/// is at hand.
pub fn merge(shards: Vec<Shard>, out: Option<&Path>) -> Result<Finished> {
    let Some(first) = shards.first() else {
        return Err(Error::input("merge: no shards given"));
    };
    let path = first.scenario_path.clone();
    let text = first.scenario_text.clone();
    let mut s = crate::scenario::parse(&text, &path)?;
    if first.replicates != s.replicates {
        s.set_replicates(first.replicates)?;
    }
    let staged = out.map(crate::fsutil::Staged::begin).transpose()?;
    let prepared = prepare(&s, &path)?;
    let (report, runs) = merged_report(&prepared, &s, shards)?;
    finish(report, prepared, runs, &text, staged)
}

/// What a merge of shards gives: the report, the runs, the rendered outputs
/// and the files written.
pub struct Merged {
    /// The diagnosis.
    pub report: Report,
    /// Every replicate of every design.
    pub runs: Vec<DesignRun>,
    /// Every output rendered in memory.
    pub rendered: crate::report::Rendered,
    /// Files written, if an output folder was given.
    pub written: Vec<PathBuf>,
}

/// Merge shards of scenario `s` (its `text`) with `p` already prepared from
/// it; the shards' scenario and partitions are checked against `p`.
pub fn merge_prepared(
    p: &Prepared,
    s: &Scenario,
    text: &str,
    shards: Vec<Shard>,
    out: Option<&Path>,
) -> Result<Merged> {
    if let Some(first) = shards.first() {
        if first.scenario_sha256 != shard::sha256(text.as_bytes()) {
            return Err(Error::input(
                "merge: the shards are of another scenario than the one prepared",
            ));
        }
        if first.replicates != p.config.replicates {
            return Err(Error::input(format!(
                "merge: the shards ran {} replicates per design, the prepared scenario {}",
                first.replicates, p.config.replicates
            )));
        }
    }
    let staged = out.map(crate::fsutil::Staged::begin).transpose()?;
    let (report, runs) = merged_report(p, s, shards)?;
    let (rendered, written) = render_or_write(&report, p, &runs, text, staged)?;
    Ok(Merged {
        report,
        runs,
        rendered,
        written,
    })
}

fn curve_design_count(p: &Prepared) -> usize {
    p.designs
        .iter()
        .filter(|d| d.spec.assignment != crate::data::design::Assignment::Saturation)
        .count()
}

fn merged_report(
    p: &Prepared,
    s: &Scenario,
    shards: Vec<Shard>,
) -> Result<(Report, Vec<DesignRun>)> {
    let merged = shard::merge(p, shards)?;
    let runs = merged.runs;
    let mut report = crate::diagnosis::build(&s.name, p, &runs, &clusters_files(p));
    match (&s.power_curve, &merged.power) {
        (Some(pc), Some(counts))
            if counts.len() == curve_design_count(p)
                && counts.iter().all(|c| c.len() == pc.effects.len()) =>
        {
            let deffs = crate::diagnosis::simulated_deffs(&report);
            report.power_curves =
                crate::diagnosis::power::curves_from_counts(p, pc, &deffs, counts);
        }
        (None, None) => {}
        _ => {
            return Err(Error::input(
                "merge: the shards' power-curve results do not match the scenario's [power_curve]",
            ))
        }
    }
    Ok((report, runs))
}

/// A merged sweep: the shards' sweep, its points and skipped values, the
/// `sweep.json` text and the files written.
pub struct MergedSweep {
    /// The sweep as asked for.
    pub spec: crate::diagnosis::sweep::SweepSpec,
    /// One point per value.
    pub points: Vec<crate::diagnosis::sweep::SweepPoint>,
    /// Values skipped, with the reason.
    pub skipped: Vec<String>,
    /// `sweep.json`.
    pub json: String,
    /// Files written.
    pub written: Vec<PathBuf>,
}

/// Merge the shards of one sweep (`spillover sweep --shard K/N`) and write
/// the sweep's outputs to `out` (byte-identical to an unsharded sweep's).
pub fn merge_sweep(shards: Vec<shard::SweepShard>, out: &Path) -> Result<MergedSweep> {
    let staged = crate::fsutil::Staged::begin(out)?;
    let (first, (points, skipped)) = shard::merge_sweep(shards)?;
    let s = crate::scenario::parse(&first.scenario_text, &first.scenario_path)?;
    let best = crate::diagnosis::sweep::best(&points);
    let report = crate::report::sweep::SweepReport {
        spec: &first.spec,
        points: &points,
        best,
        skipped: &skipped,
    };
    let (json, written) = crate::report::sweep::write_all(staged.path(), &report, s.alpha)?;
    staged.commit()?;
    Ok(MergedSweep {
        spec: first.spec,
        points,
        skipped,
        json,
        written,
    })
}
