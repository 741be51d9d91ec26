//! Sharded runs with an exact merge: the K-th of N disjoint slices of every
//! design's replicates, run anywhere, merged into the outputs of one run.
//!
//! A slice is a run of whole blocks of [`BLOCK`] replicates; per-replicate
//! random streams make a replicate's results independent of where it runs,
//! and per-block sums added in block order make the merged report
//! byte-identical to an unsharded run's. A shard records the scenario's text
//! and SHA-256, the program version and a SHA-256 of each design's
//! partition; [`merge`] refuses shards that disagree, repeat or are missing.

use super::engine::{assemble, run_design_part, DesignMeta, DesignPart, DesignRun, BLOCK};
use super::power::{power_counts, PowerCounts, PowerCurveSpec};
use super::sweep::{Outcome, SweepResult, SweepSpec};
use super::Prepared;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// One shard's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shard {
    /// `spillover` version that ran it.
    pub version: String,
    /// The scenario file's path as given to `run`.
    pub scenario_path: PathBuf,
    /// The scenario file's text.
    pub scenario_text: String,
    /// SHA-256 of the text, hex.
    pub scenario_sha256: String,
    /// Replicates per design (after `--replicates`).
    pub replicates: usize,
    /// This shard's number, 1-based.
    pub k: usize,
    /// Number of shards.
    pub n: usize,
    /// SHA-256 of each design's partition (cluster of every user), hex.
    pub partitions: Vec<String>,
    /// Per design: its set-up's report and this slice of its replicates.
    pub designs: Vec<(DesignMeta, DesignPart)>,
    /// With a `[power_curve]`: this slice's rejection counts of every point.
    #[serde(default)]
    pub power: Option<PowerCounts>,
}

/// The merged shards: every design's run, and the power curve's counts.
pub struct Merged {
    /// Every design's run, in design order.
    pub runs: Vec<DesignRun>,
    /// The power curve's counts over every replicate, if it has one.
    pub power: Option<PowerCounts>,
}

/// Hex SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// SHA-256 of every design's partition.
pub fn partition_hashes(p: &Prepared) -> Vec<String> {
    p.designs
        .iter()
        .map(|d| {
            let bytes: Vec<u8> = d
                .clusters
                .labels()
                .iter()
                .flat_map(|c| c.to_le_bytes())
                .collect();
            sha256(&bytes)
        })
        .collect()
}

/// The replicates of shard `k` of `n` (1-based): whole blocks, contiguous.
///
/// ```
/// use spillover::diagnosis::shard::slice;
/// // 300 replicates are 5 blocks of 64 (the last one short).
/// assert_eq!(slice(300, 1, 2), 0..128);
/// assert_eq!(slice(300, 2, 2), 128..300);
/// ```
pub fn slice(replicates: usize, k: usize, n: usize) -> std::ops::Range<usize> {
    let blocks = replicates.div_ceil(BLOCK);
    let at = |i: usize| (i.saturating_mul(blocks) / n.max(1)).saturating_mul(BLOCK);
    at(k.saturating_sub(1)).min(replicates)..at(k).min(replicates)
}

/// Parse `K/N` (1 ≤ K ≤ N).
pub fn parse_shard(text: &str) -> Result<(usize, usize)> {
    let bad = || {
        Error::parameter(
            "--shard",
            text,
            format!("K/N with 1 ≤ K ≤ N ≤ {MAX_SHARDS}, e.g. 2/8"),
        )
    };
    let (k, n) = text.split_once('/').ok_or_else(bad)?;
    let (k, n): (usize, usize) = (
        k.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if k == 0 || k > n || n > MAX_SHARDS {
        return Err(bad());
    }
    Ok((k, n))
}

/// Most shards a run or sweep may be split into.
pub const MAX_SHARDS: usize = 10_000;

/// Run shard `k` of `n` of every design of `p`, and of its power curve.
///
/// # Complexity
/// Each design's set-up (as an unsharded run) plus its slice's replicates,
/// and the slice of every power-curve point's replicates.
#[allow(clippy::too_many_arguments)]
pub fn run(
    p: &Prepared,
    scenario_path: &Path,
    scenario_text: &str,
    k: usize,
    n: usize,
    power_curve: Option<&PowerCurveSpec>,
    tick: &(dyn Fn() + Sync),
) -> Result<Shard> {
    let range = slice(p.config.replicates, k, n);
    let designs = p
        .designs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            run_design_part(
                &p.graph,
                &p.population,
                d,
                &p.config,
                i,
                range.clone(),
                tick,
            )
        })
        .collect::<Result<_>>()?;
    Ok(Shard {
        version: env!("CARGO_PKG_VERSION").to_string(),
        scenario_path: scenario_path.to_path_buf(),
        scenario_text: scenario_text.to_string(),
        scenario_sha256: sha256(scenario_text.as_bytes()),
        replicates: p.config.replicates,
        k,
        n,
        partitions: partition_hashes(p),
        designs,
        power: power_curve
            .map(|pc| {
                let r = slice(super::power::replicates(p, pc), k, n);
                power_counts(p, pc, r, tick)
            })
            .transpose()?,
    })
}

/// A shard as bytes (MessagePack), as written to a shard file.
pub fn to_bytes(shard: &Shard) -> Result<Vec<u8>> {
    rmp_serde::to_vec(shard).map_err(|e| Error::Internal(e.to_string()))
}

/// A shard from bytes; `what` names their source in errors.
pub fn from_bytes(bytes: &[u8], what: &str) -> Result<Shard> {
    rmp_serde::from_slice(bytes).map_err(|e| {
        Error::input(format!(
            "{what}: not a spillover shard file ({e}): expected the output of `spillover run --shard`"
        ))
    })
}

/// Write a shard to `path`, atomically.
pub fn write(shard: &Shard, path: &Path) -> Result<()> {
    let bytes = to_bytes(shard)?;
    crate::fsutil::write_atomic(path, |w| w.write_all(&bytes))
}

/// Read a shard file.
pub fn read(path: &Path) -> Result<Shard> {
    let bytes = std::fs::read(path).map_err(|e| Error::read(path, e))?;
    from_bytes(&bytes, &path.display().to_string())
}

/// Check that `shards` are the N slices of one run of the scenario `p` was
/// prepared from, and assemble every design's run. Refused (exit 2): shards
/// of different scenarios, versions, replicate counts or partitions, a
/// repeated or missing slice, partitions that differ from `p`'s.
pub fn merge(p: &Prepared, mut shards: Vec<Shard>) -> Result<Merged> {
    let Some(first) = shards.first() else {
        return Err(Error::input("merge: no shard files given"));
    };
    let (n, version, sha, reps) = (
        first.n,
        first.version.clone(),
        first.scenario_sha256.clone(),
        first.replicates,
    );
    let parts = first.partitions.clone();
    for s in &shards {
        let what = |field: &str, a: &str, b: &str| {
            Err(Error::input(format!(
                "merge: shard {}/{} has {field} {b}, shard {}/{} has {a}: expected shards of one run",
                first.k, first.n, s.k, s.n
            )))
        };
        if s.version != version {
            return what("spillover version", &s.version, &version);
        }
        if s.scenario_sha256 != sha {
            return what("scenario SHA-256", &s.scenario_sha256, &sha);
        }
        if s.n != n {
            return what("shard count", &s.n.to_string(), &n.to_string());
        }
        if s.replicates != reps {
            return what("replicates", &s.replicates.to_string(), &reps.to_string());
        }
        if s.partitions != parts {
            return what("partitions", "different partitions", "other partitions");
        }
    }
    if parts != partition_hashes(p) {
        return Err(Error::input(
            "merge: the shards' partitions differ from the partitions of the scenario as \
             prepared now (a partition file changed?)",
        ));
    }
    shards.sort_by_key(|s| s.k);
    every_slice_once(shards.iter().map(|s| s.k), n, "shard")?;
    let mut per_design: Vec<(Option<DesignMeta>, Vec<DesignPart>)> =
        (0..p.designs.len()).map(|_| (None, Vec::new())).collect();
    let with_power = shards.iter().filter(|s| s.power.is_some()).count();
    if with_power != 0 && with_power != shards.len() {
        return Err(Error::input(
            "merge: some shards have power-curve results and some do not: expected shards of one run",
        ));
    }
    let mut power: Option<PowerCounts> = None;
    for s in shards {
        match (&mut power, s.power) {
            (None, Some(c)) => power = Some(c),
            (Some(total), Some(c)) if same_shape(total, &c) => {
                for (t, c) in total.iter_mut().zip(c) {
                    for (t, c) in t.iter_mut().zip(c) {
                        t.0 += c.0;
                        t.1 += c.1;
                    }
                }
            }
            (_, None) => {}
            (Some(_), Some(_)) => {
                return Err(Error::input(format!(
                    "merge: shard {}/{n} has a power curve of another shape",
                    s.k
                )))
            }
        }
        if s.designs.len() != p.designs.len() {
            return Err(Error::input(format!(
                "merge: shard {}/{n} has {} designs, the scenario {}",
                s.k,
                s.designs.len(),
                p.designs.len()
            )));
        }
        for (d, (meta, part)) in s.designs.into_iter().enumerate() {
            per_design[d].0.get_or_insert(meta);
            per_design[d].1.push(part);
        }
    }
    let runs = per_design
        .into_iter()
        .enumerate()
        .map(|(d, (meta, parts))| {
            let meta = meta.unwrap_or(DesignMeta {
                exposure: None,
                estimator_names: Vec::new(),
                own_truths: Vec::new(),
            });
            assemble(&p.population, &p.designs[d], &p.config, meta, parts)
        })
        .collect();
    Ok(Merged { runs, power })
}

/// Refuse slice numbers `ks` (sorted) of `n` that repeat one or miss one.
fn every_slice_once(ks: impl Iterator<Item = usize>, n: usize, what: &str) -> Result<()> {
    let have: Vec<usize> = ks.collect();
    if n == 0 || n > MAX_SHARDS {
        return Err(Error::input(format!(
            "merge: {what}s of {n} slices: expected 1 to {MAX_SHARDS}"
        )));
    }
    if let Some(k) = have.iter().find(|&&k| k == 0 || k > n) {
        return Err(Error::input(format!(
            "merge: {what} {k}/{n}: expected 1 ≤ K ≤ N"
        )));
    }
    if let Some(w) = have.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::input(format!(
            "merge: {what} {}/{n} is given twice",
            w[0]
        )));
    }
    let missing: Vec<String> = (1..=n)
        .filter(|k| have.binary_search(k).is_err())
        .map(|k| format!("{k}/{n}"))
        .collect();
    if !missing.is_empty() {
        let more = missing.len().saturating_sub(10);
        return Err(Error::input(format!(
            "merge: missing {what}{} {}{}: expected all {n}",
            if missing.len() > 1 { "s" } else { "" },
            missing[..missing.len().min(10)].join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        )));
    }
    Ok(())
}

fn same_shape(a: &PowerCounts, b: &PowerCounts) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.len() == y.len())
}

/// One shard of a design sweep (`spillover sweep --shard K/N`): the
/// outcomes of a contiguous slice of the swept values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepShard {
    /// `spillover` version that ran it.
    pub version: String,
    /// The scenario file's path as given to `sweep`.
    pub scenario_path: PathBuf,
    /// The scenario file's text.
    pub scenario_text: String,
    /// SHA-256 of the text, hex.
    pub scenario_sha256: String,
    /// Replicates per value (after `--replicates`).
    pub replicates: usize,
    /// The sweep as asked for.
    pub spec: SweepSpec,
    /// This shard's number, 1-based.
    pub k: usize,
    /// Number of shards.
    pub n: usize,
    /// The outcome of every value of this shard's slice, in order.
    pub outcomes: Vec<Outcome>,
}

/// Run shard `k` of `n` of a sweep: values [`sweep_slice`] of `spec`
/// (`seed` and `dir` as for [`super::sweep::run`]).
///
/// # Complexity
/// The slice's partitions and replicates, plus the partitions before it back
/// to the first usable one (usually one).
#[allow(clippy::too_many_arguments)]
pub fn run_sweep(
    p: &Prepared,
    seed: u64,
    dir: &Path,
    scenario_path: &Path,
    scenario_text: &str,
    spec: &SweepSpec,
    k: usize,
    n: usize,
    tick: &(dyn Fn() + Sync),
) -> Result<SweepShard> {
    spec.validate()?;
    let range = sweep_slice(spec.steps, k, n);
    let outcomes = super::sweep::outcomes(seed, dir, p, spec, range, tick)?;
    Ok(SweepShard {
        version: env!("CARGO_PKG_VERSION").to_string(),
        scenario_path: scenario_path.to_path_buf(),
        scenario_text: scenario_text.to_string(),
        scenario_sha256: sha256(scenario_text.as_bytes()),
        replicates: p.config.replicates,
        spec: spec.clone(),
        k,
        n,
        outcomes,
    })
}

/// The values of sweep shard `k` of `n` (indices into the swept values).
pub use super::sweep::slice as sweep_slice;

/// A sweep shard as bytes (MessagePack).
pub fn sweep_to_bytes(shard: &SweepShard) -> Result<Vec<u8>> {
    rmp_serde::to_vec(shard).map_err(|e| Error::Internal(e.to_string()))
}

/// Read a sweep shard file.
pub fn read_sweep(path: &Path) -> Result<SweepShard> {
    let bytes = std::fs::read(path).map_err(|e| Error::read(path, e))?;
    rmp_serde::from_slice(&bytes).map_err(|e| {
        Error::input(format!(
            "{}: not a spillover sweep shard file ({e}): expected the output of \
             `spillover sweep --shard`",
            path.display()
        ))
    })
}

/// Check that `shards` are the N slices of one sweep and resolve their
/// points; refused (exit 2) as [`merge`] refuses run shards.
pub fn merge_sweep(mut shards: Vec<SweepShard>) -> Result<(SweepShard, SweepResult)> {
    let Some(first) = shards.first().cloned() else {
        return Err(Error::input("merge: no sweep shards given"));
    };
    let n = first.n;
    for s in &shards {
        let differs = |what: &str| {
            Err(Error::input(format!(
                "merge: sweep shard {}/{} has another {what} than shard {}/{}: expected \
                 shards of one sweep",
                s.k, s.n, first.k, first.n
            )))
        };
        if s.version != first.version {
            return differs("spillover version");
        }
        if s.scenario_sha256 != first.scenario_sha256 {
            return differs("scenario (SHA-256)");
        }
        if s.spec != first.spec {
            return differs("sweep (parameter, range, steps, design or estimator)");
        }
        if s.n != n || s.replicates != first.replicates {
            return differs("shard count or replicates");
        }
    }
    shards.sort_by_key(|s| s.k);
    every_slice_once(shards.iter().map(|s| s.k), n, "sweep shard")?;
    for s in &shards {
        if s.outcomes.len() != sweep_slice(s.spec.steps, s.k, n).len() {
            return Err(Error::input(format!(
                "merge: sweep shard {}/{n} has {} values, its slice {}",
                s.k,
                s.outcomes.len(),
                sweep_slice(s.spec.steps, s.k, n).len()
            )));
        }
    }
    let outcomes = shards.into_iter().flat_map(|s| s.outcomes).collect();
    Ok((first, super::sweep::resolve(outcomes)))
}
