//! The data strategy: how units are assigned to treatment.
//!
//! This module owns [`DesignSpec`] (a `[[design]]` section of a scenario),
//! [`PartitionSpec`] (which clusters a cluster design randomizes) and
//! [`Design`], a resolved design that draws assignments: user-level or
//! cluster-level, by Bernoulli or complete randomization, stratified by
//! cluster size and/or baseline covariate, or in matched pairs of clusters.

use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::partition::{self, balanced, louvain, Method, Partition};
use rand::Rng;
use rand::RngExt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The unit of randomization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Unit {
    /// Each user is randomized on their own.
    #[default]
    User,
    /// Whole clusters are randomized.
    Cluster,
}

/// How units (users or clusters) are assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Assignment {
    /// Exactly round(p·units) units treated.
    #[default]
    Complete,
    /// Each unit treated independently with probability p.
    Bernoulli,
    /// Complete randomization within strata of clusters.
    Stratified,
    /// Clusters paired by size and covariate; one of each pair treated (p = 0.5).
    MatchedPairs,
    /// Two-stage saturation design: clusters randomized to saturation levels
    /// (`saturations`, in shares `saturation_shares`), then within each cluster
    /// exactly round(level × size) units treated.
    Saturation,
}

/// What strata are made of.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StrataBy {
    /// Cluster size quantiles (`size`).
    #[default]
    Size,
    /// Quantiles of the cluster mean of the pre-period covariate (`covariate`).
    Covariate,
    /// Size quantiles crossed with covariate quantiles (`size-and-covariate`).
    SizeAndCovariate,
    /// The population file's categorical column of this name (e.g. `country`):
    /// a user's category, or a cluster's most common one.
    Column(String),
    /// Several of the above crossed, e.g. `["country", "size"]`.
    Combined(Vec<StrataBy>),
}

impl StrataBy {
    fn from_name(text: String) -> StrataBy {
        match text.as_str() {
            "size" => StrataBy::Size,
            "covariate" => StrataBy::Covariate,
            "size-and-covariate" => StrataBy::SizeAndCovariate,
            _ => StrataBy::Column(text),
        }
    }

    /// The population columns this names.
    pub fn columns(&self) -> Vec<&str> {
        match self {
            StrataBy::Column(c) => vec![c.as_str()],
            StrataBy::Combined(list) => list.iter().flat_map(StrataBy::columns).collect(),
            _ => Vec::new(),
        }
    }

    /// Whether cluster size enters the strata.
    pub fn uses_size(&self) -> bool {
        match self {
            StrataBy::Size | StrataBy::SizeAndCovariate => true,
            StrataBy::Combined(list) => list.iter().any(StrataBy::uses_size),
            _ => false,
        }
    }
}

impl Serialize for StrataBy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            StrataBy::Size => s.serialize_str("size"),
            StrataBy::Covariate => s.serialize_str("covariate"),
            StrataBy::SizeAndCovariate => s.serialize_str("size-and-covariate"),
            StrataBy::Column(c) => s.serialize_str(c),
            StrataBy::Combined(list) => list.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for StrataBy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        Ok(match Raw::deserialize(d)? {
            Raw::One(text) => StrataBy::from_name(text),
            Raw::Many(list) => {
                StrataBy::Combined(list.into_iter().map(StrataBy::from_name).collect())
            }
        })
    }
}

/// Partitioning methods a cluster design (or `spillover partition --method`)
/// can name: the one vocabulary of method names; [`make_partition`] maps
/// them to the partitioners of [`crate::partition::Method`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum PartitionMethod {
    /// Louvain modularity optimization (weighted; resolution, max size, seed).
    Louvain,
    /// Louvain with Leiden refinement: every cluster connected.
    Leiden,
    /// METIS k-way: `parts` near-equal parts minimizing the cut (imbalance).
    Balanced,
    /// Restreaming linear deterministic greedy: `parts` near-equal parts (passes).
    Ldg,
    /// Connected components.
    Components,
    /// Label propagation (seed).
    LabelPropagation,
    /// `parts` clusters of equal size at random (seed).
    Random,
    /// The generator's planted communities (scenarios only).
    #[cfg_attr(feature = "cli", value(skip))]
    Planted,
    /// Clusters read from a file (node, cluster per line).
    File,
}

fn d_resolution() -> f64 {
    1.0
}
fn d_imbalance() -> f64 {
    0.03
}
fn d_passes() -> usize {
    10
}
fn d_true() -> bool {
    true
}

/// Which clusters a cluster design randomizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionSpec {
    /// Partitioning method.
    pub method: PartitionMethod,
    /// Resolution for louvain/leiden (default 1).
    #[serde(default = "d_resolution")]
    pub resolution: f64,
    /// Largest cluster for louvain/leiden.
    #[serde(default)]
    pub max_size: Option<usize>,
    /// Merge clusters smaller than this into their best-connected neighbour.
    #[serde(default)]
    pub min_size: Option<usize>,
    /// Number of parts for balanced, ldg and random.
    #[serde(default)]
    pub parts: Option<usize>,
    /// Allowed imbalance for balanced and ldg (default 0.03).
    #[serde(default = "d_imbalance")]
    pub imbalance: f64,
    /// Seed (default: the scenario's seed).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Clusters file for `file` (relative to the scenario file).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Restreaming passes for ldg; most whole passes for leiden (it stops
    /// earlier once a pass leaves the partition unchanged). Default 10.
    #[serde(default = "d_passes")]
    pub passes: usize,
    /// Louvain only: carry the top level's communities back down and move
    /// nodes again on each level (multilevel refinement; default true).
    #[serde(default = "d_true")]
    pub refine: bool,
    /// Randomized graph cluster randomization: draw a fresh louvain/leiden
    /// partition (new seed) for every replicate (default false).
    #[serde(default)]
    pub redraw: bool,
    /// With `redraw`: draw the resolution uniformly from this range each time.
    #[serde(default)]
    pub resolution_range: Option<[f64; 2]>,
}

impl PartitionSpec {
    /// Check the keys every method reads (`max_size`, `min_size`), then the
    /// ones `method` needs (`parts`, `path`, the resolution and its redraw).
    pub fn validate(&self) -> Result<()> {
        let key = |k: &str, message: &str| Err(Error::key(format!("partition {k}"), message));
        if self.max_size == Some(0) {
            return Err(Error::parameter("partition max_size", 0, "at least 1"));
        }
        if let (Some(min), Some(max)) = (self.min_size, self.max_size) {
            if min > max {
                return Err(Error::parameter(
                    "partition min_size",
                    min,
                    format!("min_size ≤ max_size = {max}"),
                ));
            }
        }
        match self.method {
            PartitionMethod::Louvain | PartitionMethod::Leiden => {
                if !(self.resolution > 0.0 && self.resolution.is_finite()) {
                    return Err(Error::parameter(
                        "partition resolution",
                        self.resolution,
                        "> 0",
                    ));
                }
                if self.method == PartitionMethod::Leiden && self.passes == 0 {
                    return Err(Error::parameter("partition passes", 0, "at least 1"));
                }
                if let Some([lo, hi]) = self.resolution_range {
                    if !self.redraw {
                        return key("resolution_range", "goes with `redraw = true`");
                    }
                    if !(lo > 0.0 && lo <= hi && hi.is_finite()) {
                        return Err(Error::parameter(
                            "partition resolution_range",
                            format!("[{lo}, {hi}]"),
                            "0 < low ≤ high",
                        ));
                    }
                }
                return Ok(());
            }
            PartitionMethod::Balanced | PartitionMethod::Ldg | PartitionMethod::Random => {
                if self.parts.is_none() {
                    return key("parts", "this partition method needs `parts`");
                }
            }
            PartitionMethod::File => {
                if self.path.is_none() {
                    return key("path", "partition method \"file\" needs `path`");
                }
            }
            PartitionMethod::Components
            | PartitionMethod::LabelPropagation
            | PartitionMethod::Planted => {}
        }
        if self.redraw {
            return key(
                "redraw",
                "`redraw` needs partition method louvain or leiden",
            );
        }
        if self.resolution_range.is_some() {
            return key("resolution_range", "goes with `redraw = true`");
        }
        Ok(())
    }

    /// A partition by `method` with every other key at its default.
    pub fn new(method: PartitionMethod) -> Self {
        PartitionSpec {
            method,
            resolution: d_resolution(),
            max_size: None,
            min_size: None,
            parts: None,
            imbalance: d_imbalance(),
            passes: d_passes(),
            refine: d_true(),
            seed: None,
            path: None,
            redraw: false,
            resolution_range: None,
        }
    }
}

fn d_share() -> f64 {
    0.5
}
fn d_strata() -> usize {
    4
}

/// A `[[design]]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DesignSpec {
    /// Name used in tables and file names (letters, digits, `-`, `_`).
    pub name: String,
    /// `user` (default) or `cluster`.
    #[serde(default)]
    pub unit: Unit,
    /// `complete` (default), `bernoulli`, `stratified` or `matched-pairs`.
    #[serde(default)]
    pub assignment: Assignment,
    /// Share (or probability) of units treated, in (0, 1); default 0.5.
    #[serde(default = "d_share")]
    pub treated_share: f64,
    /// The clusters, for cluster designs.
    #[serde(default)]
    pub partition: Option<PartitionSpec>,
    /// What strata are made of (stratified designs); default `size`.
    #[serde(default)]
    pub strata_by: StrataBy,
    /// Number of quantile groups per stratification variable; default 4.
    #[serde(default = "d_strata")]
    pub strata: usize,
    /// Saturation levels in [0, 1] (saturation designs), e.g. [0, 0.5, 1].
    #[serde(default)]
    pub saturations: Option<Vec<f64>>,
    /// Share of clusters at each level (default equal shares).
    #[serde(default)]
    pub saturation_shares: Option<Vec<f64>>,
}

impl DesignSpec {
    /// A user-level design, complete randomization of half the users.
    pub fn user(name: &str) -> DesignSpec {
        DesignSpec {
            name: name.into(),
            unit: Unit::User,
            assignment: Assignment::Complete,
            treated_share: d_share(),
            partition: None,
            strata_by: StrataBy::default(),
            strata: d_strata(),
            saturations: None,
            saturation_shares: None,
        }
    }

    /// A cluster-level design on `partition`, complete randomization of half
    /// the clusters (set `assignment` and the strata fields for others).
    ///
    /// ```
    /// use spillover::data::design::{Assignment, Design, DesignSpec, PartitionMethod, PartitionSpec};
    /// use spillover::partition::Partition;
    ///
    /// // 10 clusters of 4 users, stratified by size (one stratum here), half treated.
    /// let clusters = Partition::from_labels(&(0..40).map(|i| i / 4).collect::<Vec<u32>>());
    /// let mut spec = DesignSpec::cluster("c", PartitionSpec::new(PartitionMethod::Planted));
    /// spec.assignment = Assignment::Stratified;
    /// spec.strata = 1;
    /// let design = Design::new(spec, Some(clusters), &[0.0; 40])?;
    /// let (mut zc, mut z) = (Vec::new(), vec![0u8; 40]);
    /// design.draw(&mut spillover::rng::stream(1, &[]), &mut zc, &mut z);
    /// assert_eq!(z.iter().map(|&v| v as usize).sum::<usize>(), 20);
    /// // Arm sizes are fixed with equal clusters: no arm-size variance.
    /// assert_eq!(design.arm_size_factor().unwrap().value, 1.0);
    /// # Ok::<(), spillover::Error>(())
    /// ```
    pub fn cluster(name: &str, partition: PartitionSpec) -> DesignSpec {
        DesignSpec {
            unit: Unit::Cluster,
            partition: Some(partition),
            ..DesignSpec::user(name)
        }
    }

    /// Check the values that do not need the graph.
    pub fn validate(&self) -> Result<()> {
        let ctx = || format!("design {:?}", self.name);
        let key = |k: &str, message: &str| Err(Error::key(k, message).context(ctx()));
        let param = |k: &str, value: String, expected: &str| {
            Err(Error::parameter(k, value, expected).context(ctx()))
        };
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return key("name", "name must be non-empty letters, digits, '-' or '_'");
        }
        if !(self.treated_share > 0.0 && self.treated_share < 1.0) {
            return param(
                "treated_share",
                self.treated_share.to_string(),
                "a number in (0, 1)",
            );
        }
        match (self.unit, &self.partition) {
            (Unit::Cluster, None) => {
                return key("partition", "a cluster design needs a [design.partition]")
            }
            (Unit::User, Some(_)) => return key("partition", "a user design takes no partition"),
            _ => {}
        }
        if self.unit == Unit::User {
            match self.assignment {
                Assignment::MatchedPairs => {
                    return key(
                        "assignment",
                        "stratified and matched-pairs assignment need unit = \"cluster\"",
                    )
                }
                Assignment::Saturation => {
                    return key("assignment", "saturation designs need unit = \"cluster\"")
                }
                Assignment::Stratified if self.strata_by.uses_size() => {
                    return key(
                        "strata_by",
                        "a stratified user design cannot stratify by size (every user is one \
                         unit): use strata_by = \"covariate\" or the [population] strata column",
                    )
                }
                _ => {}
            }
        }
        match (self.assignment, &self.saturations) {
            (Assignment::Saturation, None) => {
                return key(
                    "saturations",
                    "a saturation design needs `saturations`, e.g. [0.0, 0.5, 1.0]",
                )
            }
            (Assignment::Saturation, Some(levels)) => {
                if levels.len() < 2 || levels.iter().any(|l| !(0.0..=1.0).contains(l)) {
                    return param(
                        "saturations",
                        format!("{levels:?}"),
                        "two or more levels in [0, 1]",
                    );
                }
                if levels.len() > MAX_SATURATION_LEVELS {
                    return Err(Error::too_large(
                        "number of saturation levels",
                        levels.len() as u64,
                        MAX_SATURATION_LEVELS as u64,
                        "",
                    )
                    .context(ctx()));
                }
                if let Some(shares) = &self.saturation_shares {
                    let sum: f64 = shares.iter().sum();
                    if shares.len() != levels.len()
                        || shares.iter().any(|&x| x <= 0.0)
                        || (sum - 1.0).abs() > 1e-9
                    {
                        return param(
                            "saturation_shares",
                            format!("{shares:?}"),
                            "one positive share per level, summing to 1",
                        );
                    }
                }
            }
            _ if self.saturations.is_some() || self.saturation_shares.is_some() => {
                return key(
                    "saturations",
                    "`saturations` belong to assignment = \"saturation\"",
                )
            }
            _ => {}
        }
        if self.assignment == Assignment::MatchedPairs && self.treated_share != 0.5 {
            return key(
                "treated_share",
                "matched-pairs assignment treats one cluster per pair: treated_share must be 0.5",
            );
        }
        if self.strata < 1 {
            return param("strata", self.strata.to_string(), "at least 1");
        }
        if let Some(p) = &self.partition {
            p.validate().map_err(|e| e.context(ctx()))?;
            if p.redraw
                && !matches!(
                    self.assignment,
                    Assignment::Complete | Assignment::Bernoulli
                )
            {
                return key(
                    "partition redraw",
                    "`redraw` works with complete or bernoulli assignment",
                );
            }
        }
        Ok(())
    }
}

/// Most saturation levels a design may have (levels are stored in a byte per cluster).
pub const MAX_SATURATION_LEVELS: usize = u8::MAX as usize;

/// A resolved design, ready to draw assignments.
#[derive(Debug, Clone)]
pub struct Design {
    /// The specification.
    pub spec: DesignSpec,
    /// Randomization units: a cluster per node (each user its own for user designs).
    pub clusters: Partition,
    /// How units are assigned, with what that assignment kind needs.
    pub scheme: Scheme,
}

/// How a resolved design assigns its units: one variant per assignment kind,
/// each holding only what that kind needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Scheme {
    /// Exactly round(p·units) units treated.
    Complete,
    /// Each unit treated independently with probability p.
    Bernoulli,
    /// Complete randomization within strata of clusters.
    Stratified(Strata),
    /// One cluster of each pair treated.
    MatchedPairs(Pairs),
    /// Clusters randomized to saturation levels, then users within clusters.
    Saturation(Levels),
}

/// The strata of a stratified design.
#[derive(Debug, Clone, PartialEq)]
pub struct Strata {
    /// Stratum of each cluster.
    pub stratum: Vec<u32>,
    /// Number of strata.
    pub count: usize,
}

/// The pairs of a matched-pairs design.
#[derive(Debug, Clone, PartialEq)]
pub struct Pairs {
    /// Pairs of clusters, matched by size and covariate.
    pub pairs: Vec<(u32, u32)>,
    /// Leftover cluster of an odd number of clusters (treated with probability 1/2).
    pub leftover: Option<u32>,
}

/// The levels of a saturation design.
#[derive(Debug, Clone, PartialEq)]
pub struct Levels {
    /// Saturation levels in [0, 1].
    pub levels: Vec<f64>,
    /// Clusters at each level.
    pub counts: Vec<usize>,
    /// Members of each cluster.
    pub members: Vec<Vec<u32>>,
}

impl Design {
    /// The strata (stratified designs).
    pub fn strata(&self) -> Option<&Strata> {
        match &self.scheme {
            Scheme::Stratified(s) => Some(s),
            _ => None,
        }
    }

    /// The pairs (matched-pairs designs).
    pub fn pairs(&self) -> Option<&Pairs> {
        match &self.scheme {
            Scheme::MatchedPairs(p) => Some(p),
            _ => None,
        }
    }

    /// The saturation levels (saturation designs).
    pub fn levels(&self) -> Option<&Levels> {
        match &self.scheme {
            Scheme::Saturation(l) => Some(l),
            _ => None,
        }
    }
}

impl Design {
    /// Whether the partition is redrawn for every assignment (randomized graph
    /// cluster randomization); `clusters` is then the first draw, for reports.
    pub fn is_redrawn(&self) -> bool {
        self.spec.partition.as_ref().is_some_and(|p| p.redraw)
    }

    /// A fresh partition for a redrawn design: seed (and resolution, with a
    /// range) drawn from `r`. A partitioner error is returned, never replaced
    /// by another partition (the exposure probabilities assume fresh draws).
    pub fn redraw_partition<R: Rng + ?Sized>(&self, g: &Graph, r: &mut R) -> Result<Partition> {
        let Some(p) = &self.spec.partition else {
            return Ok(self.clusters.clone());
        };
        let seed: u64 = r.random();
        let resolution = match p.resolution_range {
            Some([lo, hi]) if hi > lo => r.random_range(lo..hi),
            Some([lo, _]) => lo,
            None => p.resolution,
        };
        let spec = PartitionSpec {
            seed: Some(seed),
            resolution,
            ..p.clone()
        };
        make_partition(&spec, g, None, seed, std::path::Path::new(".")).map_err(|e| {
            e.context(format!(
                "design {:?}: redrawing its partition (seed {seed}, resolution {resolution}) failed",
                self.spec.name
            ))
        })
    }

    /// Draw one assignment, redrawing the partition first for redrawn designs
    /// (then returned). See [`Design::draw`].
    pub fn draw_full<R: Rng + ?Sized>(
        &self,
        g: &Graph,
        r: &mut R,
        zc: &mut Vec<u8>,
        z: &mut [u8],
    ) -> Result<Option<Partition>> {
        if self.is_redrawn() {
            let part = self.redraw_partition(g, r)?;
            self.draw_on(&part, r, zc, z);
            Ok(Some(part))
        } else {
            self.draw(r, zc, z);
            Ok(None)
        }
    }

    /// Complete or Bernoulli assignment of the clusters of `part`.
    fn draw_on<R: Rng + ?Sized>(
        &self,
        part: &Partition,
        r: &mut R,
        zc: &mut Vec<u8>,
        z: &mut [u8],
    ) {
        let k = part.count();
        let p = self.spec.treated_share;
        zc.clear();
        zc.resize(k, 0);
        if self.spec.assignment == Assignment::Bernoulli {
            for v in zc.iter_mut() {
                *v = u8::from(r.random_bool(p));
            }
        } else {
            choose_all(r, treated_count(p, k), zc);
        }
        for (zi, &c) in z.iter_mut().zip(part.labels()) {
            *zi = zc[c as usize];
        }
    }
}

/// Compute the partition a cluster design names. `planted` are the
/// generator's communities, `base` the folder relative paths start from.
pub fn make_partition(
    spec: &PartitionSpec,
    g: &Graph,
    planted: Option<&[u32]>,
    seed: u64,
    base: &std::path::Path,
) -> Result<Partition> {
    let seed = spec.seed.unwrap_or(seed);
    let lv = louvain::Params {
        resolution: spec.resolution,
        seed,
        max_size: spec.max_size,
        passes: spec.passes,
        refine: spec.refine,
        ..Default::default()
    };
    let bp = |parts: usize| balanced::Params {
        parts,
        imbalance: spec.imbalance,
        seed,
        passes: spec.passes,
    };
    let parts = spec.parts.unwrap_or(0);
    let mut p = match spec.method {
        PartitionMethod::Louvain => Method::Louvain(lv).run(g)?,
        PartitionMethod::Leiden => Method::Leiden(lv).run(g)?,
        PartitionMethod::Balanced => Method::Metis(bp(parts)).run(g)?,
        PartitionMethod::Ldg => Method::Ldg(bp(parts)).run(g)?,
        PartitionMethod::Components => Method::Components.run(g)?,
        PartitionMethod::LabelPropagation => Method::LabelPropagation { seed }.run(g)?,
        PartitionMethod::Random => Method::Random { parts, seed }.run(g)?,
        PartitionMethod::Planted => match planted {
            Some(c) => Partition::from_labels(c),
            None => {
                return Err(Error::key(
                    "partition method",
                    "partition method \"planted\": this graph has no planted communities (use a generator that plants them, or another method)",
                ))
            }
        },
        PartitionMethod::File => {
            let path = spec.path.as_ref().map(|p| base.join(p)).unwrap_or_default();
            partition::simple::from_file(g, &path)?
        }
    };
    if let Some(min) = spec.min_size {
        p = partition::merge_small(&g.symmetrized(), &p, min, spec.max_size);
    }
    Ok(p)
}

/// Strata of clusters from quantile groups of size and/or covariate, a
/// population column, or several of them crossed.
fn stratify(
    spec: &DesignSpec,
    clusters: &Partition,
    sizes: &[f64],
    xmean: &[f64],
    categories: Option<&[u32]>,
) -> Result<Strata> {
    let k = sizes.len();
    let simple = !matches!(spec.strata_by, StrataBy::Column(_) | StrataBy::Combined(_));
    let quantiles = simple
        || spec.strata_by.uses_size()
        || matches!(&spec.strata_by, StrataBy::Combined(l) if l.contains(&StrataBy::Covariate));
    {
        if quantiles && spec.strata > k {
            return Err(Error::parameter(
                "strata",
                spec.strata,
                format!(
                    "at most one stratum per cluster: the partition has {k} clusters (lower strata)"
                ),
            )
            .context(format!("design {:?}", spec.name)));
        }
    }
    let (stratum, count) =
        strata_groups(&spec.strata_by, spec, clusters, sizes, xmean, categories)?;
    if simple {
        return Ok(Strata { stratum, count });
    }
    // Column and crossed strata: dense ids in order of first appearance.
    let p = Partition::from_labels(&stratum);
    Ok(Strata {
        stratum: p.labels().to_vec(),
        count: p.count(),
    })
}

/// Each cluster's group under `by`, and the number of group ids used.
fn strata_groups(
    by: &StrataBy,
    spec: &DesignSpec,
    clusters: &Partition,
    sizes: &[f64],
    xmean: &[f64],
    categories: Option<&[u32]>,
) -> Result<(Vec<u32>, usize)> {
    let k = sizes.len();
    match by {
        StrataBy::Column(name) => {
            let Some(cat) = categories else {
                return Err(Error::key(
                    "strata_by",
                    format!(
                        "strata_by = {name:?}: expected size, covariate, size-and-covariate, or the \
                         [population] strata column"
                    ),
                )
                .context(format!("design {:?}", spec.name)));
            };
            // Each cluster's most common category (ties: the first category).
            let ncat = cat.iter().max().map_or(0, |&m| m as usize + 1);
            let mut counts: BTreeMap<(u32, u32), usize> = BTreeMap::new();
            for (i, &c) in clusters.labels().iter().enumerate() {
                *counts.entry((c, cat[i])).or_insert(0) += 1;
            }
            let mut best = vec![(0usize, u32::MAX); k];
            for (&(c, g), &m) in &counts {
                let b = &mut best[c as usize];
                if m > b.0 || (m == b.0 && g < b.1) {
                    *b = (m, g);
                }
            }
            Ok((best.iter().map(|b| b.1.min(ncat as u32)).collect(), ncat))
        }
        StrataBy::Combined(list) => {
            let mut code = vec![0u64; k];
            for part in list {
                let (g, n) = strata_groups(part, spec, clusters, sizes, xmean, categories)?;
                for (c, x) in code.iter_mut().enumerate() {
                    *x = x
                        .saturating_mul(n.max(1) as u64)
                        .saturating_add(u64::from(g[c]));
                }
            }
            let p = Partition::from_labels(&code);
            Ok((p.labels().to_vec(), p.count()))
        }
        _ => simple_strata(by, spec.strata, sizes, xmean),
    }
}

/// Quantile strata by size and/or covariate (`groups` per variable).
fn simple_strata(
    by: &StrataBy,
    groups: usize,
    sizes: &[f64],
    xmean: &[f64],
) -> Result<(Vec<u32>, usize)> {
    let k = sizes.len();
    let g = groups;
    Ok(match by {
        StrataBy::Column(_) | StrataBy::Combined(_) => {
            return Err(Error::Internal(
                "column strata are not quantile strata".into(),
            ))
        }
        StrataBy::Size => (quantile_groups(sizes, g), g),
        StrataBy::Covariate => (quantile_groups(xmean, g), g),
        StrataBy::SizeAndCovariate => {
            let s = quantile_groups(sizes, g);
            let mut out = vec![0u32; k];
            for sg in 0..g as u32 {
                let members: Vec<usize> = (0..k).filter(|&c| s[c] == sg).collect();
                let vals: Vec<f64> = members.iter().map(|&c| xmean[c]).collect();
                let q = quantile_groups(&vals, g.min(members.len().max(1)));
                for (j, &c) in members.iter().enumerate() {
                    out[c] = sg * g as u32 + q[j];
                }
            }
            let p = Partition::from_labels(&out);
            let count = p.count();
            (p.labels().to_vec(), count)
        }
    })
}

/// Clusters paired in order of size, then covariate mean.
fn match_pairs(sizes: &[f64], xmean: &[f64]) -> Pairs {
    let k = sizes.len();
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| {
        sizes[a]
            .total_cmp(&sizes[b])
            .then(xmean[a].total_cmp(&xmean[b]))
            .then(a.cmp(&b))
    });
    let (mut pairs, mut leftover) = (Vec::new(), None);
    for w in order.chunks(2) {
        match w {
            [a, b] => pairs.push((*a as u32, *b as u32)),
            [a] => leftover = Some(*a as u32),
            _ => {}
        }
    }
    Pairs { pairs, leftover }
}

/// Saturation levels with cluster counts by largest remainder.
fn saturation_levels(spec: &DesignSpec, clusters: &Partition) -> Result<Levels> {
    let k = clusters.count();
    let levels = spec.saturations.clone().unwrap_or_default();
    if levels.len() > k {
        return Err(Error::too_large(
            "number of saturation levels",
            levels.len() as u64,
            k as u64,
            " (one level per cluster: the partition has that many clusters)",
        )
        .context(format!("design {:?}", spec.name)));
    }
    let shares = spec
        .saturation_shares
        .clone()
        .unwrap_or_else(|| vec![1.0 / levels.len() as f64; levels.len()]);
    // Largest remainder: counts summing to k.
    let raw: Vec<f64> = shares.iter().map(|s| s * k as f64).collect();
    let mut counts: Vec<usize> = raw.iter().map(|x| x.floor() as usize).collect();
    let mut order: Vec<usize> = (0..raw.len()).collect();
    order.sort_by(|&a, &b| {
        (raw[b] - raw[b].floor())
            .total_cmp(&(raw[a] - raw[a].floor()))
            .then(a.cmp(&b))
    });
    let missing = k - counts.iter().sum::<usize>();
    for &l in order.iter().take(missing) {
        counts[l] += 1;
    }
    let mut members = vec![Vec::new(); k];
    for (i, &c) in clusters.labels().iter().enumerate() {
        members[c as usize].push(i as u32);
    }
    Ok(Levels {
        levels,
        counts,
        members,
    })
}

/// Quantile group (0..groups) of each value, ties broken by index.
fn quantile_groups(values: &[f64], groups: usize) -> Vec<u32> {
    let k = values.len();
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]).then(a.cmp(&b)));
    let mut out = vec![0u32; k];
    for (rank, &c) in order.iter().enumerate() {
        out[c] = ((rank * groups) / k.max(1)) as u32;
    }
    out
}

impl Design {
    /// Resolve a design on `clusters` (ignored for user designs) with covariate `x`.
    pub fn new(spec: DesignSpec, clusters: Option<Partition>, x: &[f64]) -> Result<Design> {
        Design::with_categories(spec, clusters, x, None)
    }

    /// [`Design::new`] with each user's category of the population file's
    /// strata column, for `strata_by = "<column>"`.
    pub fn with_categories(
        spec: DesignSpec,
        clusters: Option<Partition>,
        x: &[f64],
        categories: Option<&[u32]>,
    ) -> Result<Design> {
        spec.validate()?;
        let n = x.len();
        let clusters = match (spec.unit, clusters) {
            (Unit::User, _) => Partition::from_dense(&(0..n as u32).collect::<Vec<_>>(), n),
            (Unit::Cluster, Some(c)) => c,
            (Unit::Cluster, None) => {
                return Err(Error::Internal("cluster design without clusters".into()))
            }
        };
        let k = clusters.count();
        if spec.unit == Unit::Cluster && k < 2 {
            return Err(Error::parameter(
                "number of clusters",
                k,
                "at least 2 for a cluster design",
            )
            .context(format!("design {:?}", spec.name)));
        }
        let sizes: Vec<f64> = clusters.sizes().into_iter().map(|s| s as f64).collect();
        let mut xsum = vec![0.0; k];
        for (i, &c) in clusters.labels().iter().enumerate() {
            xsum[c as usize] += x[i];
        }
        let xmean: Vec<f64> = xsum.iter().zip(&sizes).map(|(s, n)| s / n).collect();
        let scheme = match spec.assignment {
            Assignment::Complete => Scheme::Complete,
            Assignment::Bernoulli => Scheme::Bernoulli,
            Assignment::Stratified => {
                Scheme::Stratified(stratify(&spec, &clusters, &sizes, &xmean, categories)?)
            }
            Assignment::MatchedPairs => Scheme::MatchedPairs(match_pairs(&sizes, &xmean)),
            Assignment::Saturation => Scheme::Saturation(saturation_levels(&spec, &clusters)?),
        };
        Ok(Design {
            spec,
            clusters,
            scheme,
        })
    }

    /// Number of randomization units.
    pub fn units(&self) -> usize {
        self.clusters.count()
    }

    /// Draw one assignment: `zc` gets each unit's arm (for saturation designs:
    /// each cluster's level index), `z` each node's.
    pub fn draw<R: Rng + ?Sized>(&self, r: &mut R, zc: &mut Vec<u8>, z: &mut [u8]) {
        let k = self.units();
        let p = self.spec.treated_share;
        zc.clear();
        zc.resize(k, 0);
        if let Scheme::Saturation(sat) = &self.scheme {
            let order = crate::rng::permutation(k, r);
            let mut at = 0;
            for (l, &count) in sat.counts.iter().enumerate() {
                for &c in &order[at..at + count] {
                    zc[c as usize] = l as u8;
                }
                at += count;
            }
            z.fill(0);
            for (c, m) in sat.members.iter().enumerate() {
                let t = treated_count(sat.levels[zc[c] as usize], m.len());
                choose(r, m, t, z);
            }
            return;
        }
        match &self.scheme {
            Scheme::Bernoulli => {
                for v in zc.iter_mut() {
                    *v = u8::from(r.random_bool(p));
                }
            }
            Scheme::Complete => choose_all(r, treated_count(p, k), zc),
            Scheme::Stratified(strata) => {
                let mut members: Vec<Vec<u32>> = vec![Vec::new(); strata.count];
                for (c, &s) in strata.stratum.iter().enumerate() {
                    members[s as usize].push(c as u32);
                }
                // floor(p·K_s) in each stratum; the remaining round(p·K) − Σ floor
                // go to strata with a fractional part, chosen at random, so the
                // total treated is the same as under complete randomization.
                let total = (p * k as f64).round() as usize;
                let mut counts: Vec<usize> = members
                    .iter()
                    .map(|m| (p * m.len() as f64).floor() as usize)
                    .collect();
                let mut extra: Vec<usize> = (0..members.len())
                    .filter(|&s| (p * members[s].len() as f64).fract() > 0.0)
                    .collect();
                crate::rng::shuffle(&mut extra, r);
                let missing = total.saturating_sub(counts.iter().sum());
                for &s in extra.iter().take(missing) {
                    counts[s] += 1;
                }
                for (m, &c) in members.iter().zip(&counts) {
                    choose(r, m, c, zc);
                }
            }
            Scheme::Saturation(_) => {}
            Scheme::MatchedPairs(pairs) => {
                for &(a, b) in &pairs.pairs {
                    let first = r.random_bool(0.5);
                    zc[a as usize] = u8::from(first);
                    zc[b as usize] = u8::from(!first);
                }
                if let Some(c) = pairs.leftover {
                    zc[c as usize] = u8::from(r.random_bool(0.5));
                }
            }
        }
        if self.spec.unit == Unit::User && z.len() == zc.len() {
            // Every user is a unit of their own (the identity partition).
            z.copy_from_slice(zc);
        } else {
            for (zi, &c) in z.iter_mut().zip(self.clusters.labels()) {
                *zi = zc[c as usize];
            }
        }
    }
}

/// How much the arm sizes vary under a design, as a variance factor: with
/// i.i.d. outcomes Var(DM | N₁, N₀) = σ²(1/N₁ + 1/N₀), so relative to fixed
/// arms of n₁ = round(p·n) and n − n₁ users the design multiplies the
/// variance by E[1/N₁ + 1/N₀ | both arms non-empty]·n₁(n − n₁)/n.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArmSizeFactor {
    /// The factor (1 when arm sizes are fixed).
    pub value: f64,
    /// How it was computed.
    pub method: &'static str,
}

/// Most (units × subset-size × quadrature node) steps spent on the exact
/// computation of [`Design::arm_size_factor`] under complete randomization;
/// past it a second-order expansion is used (and said).
const MAX_ARM_SIZE_WORK: f64 = 2e9;

impl Design {
    /// The arm-size variance factor of this design (`None` for saturation
    /// and redrawn designs, whose arms are not sums of fixed cluster sizes).
    ///
    /// E[1/N] is computed from the Laplace transform, E[1/N; N > 0] =
    /// ∫₀^∞ (E[e^(−tN)] − P(N = 0)) dt, by the trapezoidal rule in log t
    /// (error below 1e-12 relative; tested against enumeration), where
    /// E[e^(−tN)] is exact: a product over clusters under Bernoulli
    /// assignment (grouped by cluster size), normalized elementary symmetric
    /// polynomials of e^(−t·size) under complete or stratified assignment
    /// (with the stratified design's random allocation of leftover units), a
    /// product over pairs under matched pairs.
    ///
    /// # Complexity
    /// Bernoulli: O(distinct sizes × Q), Q ≈ 300 quadrature nodes; complete
    /// and stratified: O(Σ_s K_s·max(m_s, K_s − m_s)·Q), replaced by a
    /// second-order expansion past 2·10⁹ steps; pairs: O(K·Q).
    pub fn arm_size_factor(&self) -> Option<ArmSizeFactor> {
        if self.spec.assignment == Assignment::Saturation || self.is_redrawn() {
            return None;
        }
        let sizes: Vec<f64> = self.clusters.sizes().iter().map(|&s| s as f64).collect();
        let n: f64 = sizes.iter().sum();
        let p = self.spec.treated_share;
        let n1 = (p * n).round();
        let reference = n1 * (n - n1) / n;
        if n1 < 1.0 || n1 >= n {
            return None;
        }
        let k = sizes.len();
        let exact = "exact (Laplace transform of the arm-size distribution)";
        match self.spec.assignment {
            Assignment::Bernoulli => {
                let mut hist: BTreeMap<u64, f64> = BTreeMap::new();
                for &s in &sizes {
                    *hist.entry(s as u64).or_insert(0.0) += 1.0;
                }
                let log_mgf = |t: f64, q: f64| -> f64 {
                    hist.iter()
                        .map(|(&s, &c)| c * (1.0 - q + q * (-t * s as f64).exp()).ln())
                        .sum()
                };
                let kf = k as f64;
                let (all1, all0) = ((kf * p.ln()).exp(), (kf * (1.0 - p).ln()).exp());
                let i1 = laplace_inverse_mean(n, |t| (log_mgf(t, p)).exp() - all0);
                let i0 = laplace_inverse_mean(n, |t| (log_mgf(t, 1.0 - p)).exp() - all1);
                // Condition on both arms non-empty (the difference in means exists).
                let ok = 1.0 - all1 - all0;
                let e = (i1 - all1 / n + i0 - all0 / n) / ok;
                Some(ArmSizeFactor {
                    value: e * reference,
                    method: exact,
                })
            }
            Assignment::Complete | Assignment::Stratified => {
                let (strata, count) = match self.strata() {
                    Some(s) => (s.stratum.clone(), s.count),
                    None => (vec![0; k], 1),
                };
                let mut members: Vec<Vec<f64>> = vec![Vec::new(); count];
                for (c, &s) in strata.iter().enumerate() {
                    members[s as usize].push(sizes[c]);
                }
                // Treated counts as `draw` makes them: floor(p·K_s) per stratum,
                // the rest to strata with a fractional part chosen uniformly
                // (complete randomization: one stratum, round(p·K)).
                let total = (p * k as f64).round() as usize;
                if total == 0 || total >= k {
                    // One arm is always empty: no difference in means to vary.
                    return None;
                }
                let (base, frac): (Vec<usize>, Vec<bool>) =
                    if self.spec.assignment == Assignment::Complete {
                        (vec![total], vec![false])
                    } else {
                        members
                            .iter()
                            .map(|m| {
                                let x = p * m.len() as f64;
                                (x.floor() as usize, x.fract() > 0.0)
                            })
                            .unzip()
                    };
                let extra = total.saturating_sub(base.iter().sum());
                if sizes.iter().all(|&s| s == sizes[0]) {
                    // Every assignment treats the same number of users.
                    let (t1, t0) = (total as f64 * sizes[0], n - total as f64 * sizes[0]);
                    return Some(ArmSizeFactor {
                        value: (1.0 / t1 + 1.0 / t0) * reference,
                        method: "exact (arm sizes fixed)",
                    });
                }
                let work: f64 = members
                    .iter()
                    .zip(&base)
                    .map(|(m, &b)| {
                        let kk = m.len() as f64;
                        kk * (b as f64 + 1.0).max(kk - b as f64 + 1.0)
                    })
                    .sum::<f64>()
                    * 400.0;
                if work > MAX_ARM_SIZE_WORK {
                    // Second order: E[1/N] ≈ (1 + Var N/(E N)²)/E N, moments exact.
                    let (mean1, var1) = subset_sum_moments(&members, &base, &frac, extra);
                    let e1 = (1.0 + var1 / (mean1 * mean1)) / mean1;
                    let mean0 = n - mean1;
                    let e0 = (1.0 + var1 / (mean0 * mean0)) / mean0;
                    return Some(ArmSizeFactor {
                        value: (e1 + e0) * reference,
                        method: "second-order expansion (too many clusters for the exact sum)",
                    });
                }
                let phi = |t: f64, treated: bool| -> f64 {
                    stratified_mgf(&members, &base, &frac, extra, t, treated)
                };
                let i1 = laplace_inverse_mean(n, |t| phi(t, true));
                let i0 = laplace_inverse_mean(n, |t| phi(t, false));
                Some(ArmSizeFactor {
                    value: (i1 + i0) * reference,
                    method: exact,
                })
            }
            Assignment::MatchedPairs => {
                let pairs = self.pairs()?;
                let phi = |t: f64| -> f64 {
                    let mut log = 0.0;
                    for &(a, b) in &pairs.pairs {
                        let (wa, wb) = (
                            (-t * sizes[a as usize]).exp(),
                            (-t * sizes[b as usize]).exp(),
                        );
                        log += ((wa + wb) / 2.0).ln();
                    }
                    if let Some(c) = pairs.leftover {
                        log += ((1.0 + (-t * sizes[c as usize]).exp()) / 2.0).ln();
                    }
                    log.exp()
                };
                // N₁ and N₀ have the same distribution (one of each pair per arm).
                let i = laplace_inverse_mean(n, phi);
                Some(ArmSizeFactor {
                    value: 2.0 * i * reference,
                    method: exact,
                })
            }
            Assignment::Saturation => None,
        }
    }
}

/// ∫₀^∞ g(t) dt for g(t) = E[e^(−tN)] − P(N = 0) with 1 ≤ N ≤ n, i.e.
/// E[1/N; N > 0]: the trapezoidal rule in x = ln t (the integrand g(eˣ)eˣ is
/// analytic in a strip of half-width π/2, so the error falls like
/// exp(−π²/h); h = 0.125 gives below 1e-30 beside the truncation at
/// t = 1e-13/n and t = 60 + ln n, both below 1e-12 relative).
fn laplace_inverse_mean(n: f64, g: impl Fn(f64) -> f64) -> f64 {
    let (lo, hi) = ((1e-13 / n).ln(), (60.0 + n.ln()).ln());
    let h = 0.125;
    let steps = ((hi - lo) / h).ceil() as usize;
    let mut acc = 0.0;
    for j in 0..=steps {
        let t = (lo + j as f64 * h).exp();
        let w = if j == 0 || j == steps { 0.5 } else { 1.0 };
        acc += w * g(t) * t;
    }
    // The part below t_lo, where g ≈ 1 − P(N = 0) ≤ 1: at most t_lo.
    acc * h + (lo.exp()) * g(lo.exp())
}

/// E[∏_{c∈S} w_c] for S a uniformly random j-subset of `w`, j = 0..=max_j:
/// normalized elementary symmetric polynomials, updated as convex
/// combinations (ê_j ← ((i − j)/i)·ê_j + (j/i)·w_i·ê_{j−1}), so never overflow.
fn subset_product_means(w: &[f64], max_j: usize) -> Vec<f64> {
    let mut e = vec![0.0f64; max_j + 1];
    e[0] = 1.0;
    for (i0, &wi) in w.iter().enumerate() {
        let i = (i0 + 1) as f64;
        for j in (1..=max_j.min(i0 + 1)).rev() {
            let jf = j as f64;
            e[j] = ((i - jf) / i) * e[j] + (jf / i) * wi * e[j - 1];
        }
    }
    e
}

/// E[e^(−tN)] for N the treated (or control) users of a stratified design:
/// within each stratum a uniformly random subset of its base count (plus one
/// where the stratum gets an extra unit), the `extra` units going to a
/// uniformly random set of the strata with a fractional part.
fn stratified_mgf(
    members: &[Vec<f64>],
    base: &[usize],
    frac: &[bool],
    extra: usize,
    t: f64,
    treated: bool,
) -> f64 {
    let mut fixed_log = 0.0;
    let mut pairs: Vec<(f64, f64)> = Vec::new(); // (without, with) the extra unit
    for ((m, &b), &f) in members.iter().zip(base).zip(frac) {
        let w: Vec<f64> = m.iter().map(|&s| (-t * s).exp()).collect();
        let k = m.len();
        let j = |count: usize| if treated { count } else { k - count.min(k) };
        let top = if f && b < k { b + 1 } else { b };
        let e = subset_product_means(&w, j(b).max(j(top)));
        if f {
            pairs.push((e[j(b)], e[j(top)]));
        } else {
            fixed_log += e[j(b)].ln();
        }
    }
    // Uniform choice of `extra` of the fractional strata: sequential DP.
    let fcount = pairs.len();
    let extra = extra.min(fcount);
    let mut g = vec![0.0f64; extra + 1];
    g[0] = 1.0;
    for (j, &(without, with)) in pairs.iter().enumerate() {
        let left = (fcount - j) as f64;
        for c in (0..=extra.min(j)).rev() {
            let give = (extra - c) as f64 / left;
            let v = g[c];
            g[c] = v * (1.0 - give) * without;
            if c < extra {
                g[c + 1] += v * give * with;
            }
        }
    }
    g[extra] * fixed_log.exp()
}

/// Mean and variance of the treated users of a complete or stratified design,
/// for the second-order expansion: exact within strata; the strata that get
/// an extra unit are treated as independent draws (which slightly overstates
/// the variance; this path runs only with thousands of clusters).
fn subset_sum_moments(
    members: &[Vec<f64>],
    base: &[usize],
    frac: &[bool],
    extra: usize,
) -> (f64, f64) {
    let fcount = frac.iter().filter(|&&f| f).count().max(1) as f64;
    let q = extra as f64 / fcount;
    let (mut mean, mut var) = (0.0, 0.0);
    for ((m, &b), &f) in members.iter().zip(base).zip(frac) {
        let k = m.len() as f64;
        let mu = m.iter().sum::<f64>() / k;
        let s2 = if k > 1.0 {
            m.iter().map(|s| (s - mu).powi(2)).sum::<f64>() / (k - 1.0)
        } else {
            0.0
        };
        // Sum of a simple random sample of size j: mean j·μ, variance j(k − j)/k·s².
        let at = |j: f64| (j * mu, j * (k - j) / k * s2);
        let (m0, v0) = at(b as f64);
        if f {
            let (m1, v1) = at(b as f64 + 1.0);
            let m_mix = (1.0 - q) * m0 + q * m1;
            mean += m_mix;
            var += (1.0 - q) * v0 + q * v1 + q * (1.0 - q) * (m1 - m0).powi(2);
        } else {
            mean += m0;
            var += v0;
        }
    }
    (mean, var)
}

/// How many of `units` units complete randomization at share `p` treats:
/// round(p·units).
fn treated_count(p: f64, units: usize) -> usize {
    (p * units as f64).round() as usize
}

/// Treat `m` of the units `0..zc.len()` chosen uniformly at random (complete
/// randomization); every other entry of `zc` is set to 0. See [`choose_by`].
///
/// # Complexity
/// O(units) expected.
fn choose_all<R: Rng + ?Sized>(r: &mut R, m: usize, zc: &mut [u8]) {
    let len = zc.len();
    let m = m.min(len);
    if len == 0 {
        return;
    }
    // `choose_by`'s first step on contiguous units: the same draws, taken
    // a block of words at a time so the comparisons run without a
    // dependence on the stream.
    let t = start_threshold(len, m);
    let mut treated = 0usize;
    let mut words = [0u64; 64];
    let mut fields = [0u16; 4 * 64];
    for chunk in zc.chunks_mut(4 * words.len()) {
        let used = &mut words[..chunk.len().div_ceil(4)];
        for w in used.iter_mut() {
            *w = r.next_u64();
        }
        // The draws' 16-bit fields in unit order (field k of word w is unit
        // 4w + k), then one comparison per unit, all independent.
        for (f, &w) in fields.chunks_exact_mut(4).zip(used.iter()) {
            for (k, fk) in f.iter_mut().enumerate() {
                *fk = (w >> (16 * k)) as u16;
            }
        }
        let t32 = t as u32;
        for (v, &f) in chunk.iter_mut().zip(fields.iter()) {
            *v = u8::from(u32::from(f) < t32);
        }
        treated += chunk.iter().fold(0u32, |a, &v| a + u32::from(v)) as usize;
    }
    correct(r, len, m, treated, |i| i, zc);
}

/// The first step's threshold of `choose_by`: a unit is treated when its
/// 16-bit draw is below it.
fn start_threshold(len: usize, m: usize) -> u64 {
    // 0..=65536; the product is at most 65536 · len / len.
    ((m as u128 * 65536 + len as u128 / 2) / len as u128) as u64
}

/// `choose_by`'s corrections: with `treated` of the `len` units (unit `i`
/// at `zc[at(i)]`) treated, untreat (or treat) units drawn uniformly among
/// all until exactly `m` are.
fn correct<R: Rng + ?Sized>(
    r: &mut R,
    len: usize,
    m: usize,
    mut treated: usize,
    at: impl Fn(usize) -> usize,
    zc: &mut [u8],
) {
    while treated > m {
        let j = at(r.random_range(0..len));
        if zc[j] == 1 {
            zc[j] = 0;
            treated -= 1;
        }
    }
    while treated < m {
        let j = at(r.random_range(0..len));
        if zc[j] == 0 {
            zc[j] = 1;
            treated += 1;
        }
    }
}

/// Treat `m` of `units` chosen uniformly at random; every other entry of
/// `zc` among `units` is set to 0, entries outside `units` are left alone.
/// `units` must be distinct (strata and clusters are): a repeated unit
/// could never be corrected and the draw would not end.
///
/// # Complexity
/// O(|units|) expected.
fn choose<R: Rng + ?Sized>(r: &mut R, units: &[u32], m: usize, zc: &mut [u8]) {
    choose_by(r, units.len(), m, |i| units[i] as usize, zc);
}

/// Complete randomization of `len` units (unit `i` at `zc[at(i)]`), uniform
/// over the C(len, m) subsets of size `m` (capped at `len`).
///
/// First every unit is treated independently with probability
/// `t / 65536`, `t = round(65536 · m / len)` (one 16-bit draw per unit, four
/// per 64-bit word, in unit order). Then, while more than `m` are treated,
/// one unit drawn uniformly among all is untreated if it is treated (and
/// while fewer than `m` are, treated if it is not). The first step is
/// exchangeable (its law does not change when units are permuted) and so is
/// every correction, so the final set's law is too; it has exactly `m`
/// units, hence it is uniform over the subsets of size `m`. About
/// √(len·m/len·(1 − m/len)) units are corrected (plus up to len / 131072
/// from rounding `t`), where a Fisher–Yates draw swaps `m` scattered entries.
///
/// # Complexity
/// O(len) expected: a correcting draw succeeds with probability at least
/// min(m, len − m) / len, and the corrections expected are few enough that
/// their draws total O(len) even when m or len − m is small.
fn choose_by<R: Rng + ?Sized>(
    r: &mut R,
    len: usize,
    m: usize,
    at: impl Fn(usize) -> usize,
    zc: &mut [u8],
) {
    let m = m.min(len);
    if len == 0 {
        return;
    }
    let t = start_threshold(len, m);
    let mut treated = 0usize;
    let mut i = 0;
    while i < len {
        let word = r.next_u64();
        for k in 0..4.min(len - i) {
            let v = u8::from((word >> (16 * k)) & 0xffff < t);
            zc[at(i + k)] = v;
            treated += usize::from(v);
        }
        i += 4;
    }
    correct(r, len, m, treated, at, zc);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(unit: Unit, assignment: Assignment) -> DesignSpec {
        DesignSpec {
            name: "d".into(),
            unit,
            assignment,
            treated_share: 0.5,
            partition: (unit == Unit::Cluster)
                .then_some(PartitionSpec::new(PartitionMethod::Planted)),
            strata_by: StrataBy::Size,
            strata: 2,
            saturations: None,
            saturation_shares: None,
        }
    }

    /// Issue 14: `choose_all` (contiguous units, draws compared a block at
    /// a time) draws exactly what `choose_by` draws on the identity, and
    /// leaves the stream where it does: lengths around its 256-unit blocks
    /// and the 4-unit words, shares from none to all.
    #[test]
    fn choose_all_equals_choose_by_on_contiguous_units() {
        for len in [0usize, 1, 3, 4, 5, 255, 256, 257, 1023, 5000] {
            for share in [0.0, 0.01, 0.5, 0.77, 1.0] {
                let m = (share * len as f64).round() as usize;
                let key = [len as u64, m as u64];
                let (mut ra, mut rb) = (crate::rng::draws(3, &key), crate::rng::draws(3, &key));
                let (mut a, mut b) = (vec![9u8; len], vec![9u8; len]);
                choose_all(&mut ra, m, &mut a);
                choose_by(&mut rb, len, m, |i| i, &mut b);
                assert_eq!(a, b, "{len} units, {m} treated");
                assert_eq!(a.iter().filter(|&&v| v == 1).count(), m.min(len));
                assert_eq!(ra.next_u64(), rb.next_u64(), "{len}, {m}: the stream after");
            }
        }
    }

    /// Issue 14: complete randomization by exchangeable correction is
    /// uniform over the subsets of its size. 30,000 draws of 3 of 6 units
    /// (the first step exact at p = 1/2), of 2 of 7 (p rounded to 16 bits,
    /// so the correction always runs) and of 3 of the 6 odd units among 12
    /// (the others left as they were): Pearson's χ² over the C(n, m) subsets
    /// stays below its 1 − 10⁻⁶ quantile (19 df: 57.5; 20 df: 59.7).
    #[test]
    fn complete_randomization_is_uniform_over_subsets() {
        let odd: Vec<u32> = (0..12).filter(|i| i % 2 == 1).collect();
        let cases: [(&[u32], usize, usize, f64); 3] = [
            (&[0, 1, 2, 3, 4, 5], 3, 20, 57.5),
            (&[0, 1, 2, 3, 4, 5, 6], 2, 21, 59.7),
            (&odd, 3, 20, 57.5),
        ];
        for (case, &(units, m, subsets, limit)) in cases.iter().enumerate() {
            let mut r = crate::rng::draws(12, &[case as u64]);
            let mut counts = std::collections::BTreeMap::new();
            let draws = 30_000;
            for _ in 0..draws {
                let mut zc = vec![7u8; 12];
                choose(&mut r, units, m, &mut zc);
                let mut key = 0u32;
                for (i, &v) in zc.iter().enumerate() {
                    if units.contains(&(i as u32)) {
                        assert!(v <= 1);
                        key |= u32::from(v) << i;
                    } else {
                        assert_eq!(v, 7, "a unit outside the draw was touched");
                    }
                }
                assert_eq!(key.count_ones() as usize, m);
                *counts.entry(key).or_insert(0usize) += 1;
            }
            assert_eq!(counts.len(), subsets, "case {case}: every subset is drawn");
            let expected = draws as f64 / subsets as f64;
            let chi2: f64 = counts
                .values()
                .map(|&c| (c as f64 - expected).powi(2) / expected)
                .sum();
            assert!(
                chi2 < limit,
                "case {case}: chi2 {chi2:.1} over {subsets} subsets"
            );
        }
    }

    /// The complete draw treats exactly min(m, units) units at the edges:
    /// none, all, more than there are, one of many and all but one of many.
    #[test]
    fn complete_randomization_treats_exactly_m_at_the_edges() {
        let mut r = crate::rng::draws(3, &[]);
        for (len, m) in [
            (0, 0),
            (0, 3),
            (1, 0),
            (1, 1),
            (5, 9),
            (100_000, 1),
            (100_000, 99_999),
            (100_000, 0),
            (100_000, 100_000),
        ] {
            let mut zc = vec![9u8; len];
            choose_all(&mut r, m, &mut zc);
            assert!(zc.iter().all(|&v| v <= 1));
            let treated: usize = zc.iter().map(|&v| usize::from(v)).sum();
            assert_eq!(treated, m.min(len), "{m} of {len}");
        }
    }

    #[test]
    fn complete_and_stratified_and_pairs_treat_the_promised_counts() {
        let labels: Vec<u32> = (0..40).map(|i| i / 4).collect(); // 10 clusters of 4
        let clusters = Partition::from_labels(&labels);
        let x: Vec<f64> = (0..40).map(|i| i as f64).collect();
        let mut r = crate::rng::stream(1, &[]);
        let (mut zc, mut z) = (Vec::new(), vec![0u8; 40]);
        for a in [
            Assignment::Complete,
            Assignment::Stratified,
            Assignment::MatchedPairs,
        ] {
            let mut s = spec(Unit::Cluster, a);
            s.strata_by = StrataBy::Covariate;
            let d = Design::new(s, Some(clusters.clone()), &x).unwrap();
            for _ in 0..20 {
                d.draw(&mut r, &mut zc, &mut z);
                assert_eq!(zc.iter().map(|&v| v as usize).sum::<usize>(), 5, "{a:?}");
                assert_eq!(z.iter().map(|&v| v as usize).sum::<usize>(), 20);
                if a == Assignment::MatchedPairs {
                    for &(p, q) in &d.pairs().unwrap().pairs {
                        assert_ne!(zc[p as usize], zc[q as usize]);
                    }
                }
            }
        }
        let d = Design::new(spec(Unit::User, Assignment::Complete), None, &x).unwrap();
        d.draw(&mut r, &mut zc, &mut z);
        assert_eq!(z.iter().map(|&v| v as usize).sum::<usize>(), 20);
    }

    #[test]
    fn invalid_designs_are_refused() {
        let mut s = spec(Unit::User, Assignment::MatchedPairs);
        assert!(s.validate().is_err());
        s = spec(Unit::Cluster, Assignment::Complete);
        s.treated_share = 1.0;
        assert!(s.validate().is_err());
        s = spec(Unit::Cluster, Assignment::Complete);
        s.partition = None;
        assert!(s.validate().is_err());
    }

    fn binom(n: usize, k: usize) -> f64 {
        (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
    }

    /// E[1/N₁ + 1/N₀ | both arms non-empty]·n₁n₀/n by enumerating every
    /// cluster assignment with its probability under the design.
    fn enumerated_arm_factor(d: &Design) -> f64 {
        let sizes: Vec<f64> = d.clusters.sizes().iter().map(|&s| s as f64).collect();
        let k = sizes.len();
        let n: f64 = sizes.iter().sum();
        let p = d.spec.treated_share;
        let total = (p * k as f64).round() as usize;
        let (stratum, strata) = match d.strata() {
            Some(s) => (s.stratum.clone(), s.count),
            None => (vec![0; k], 1),
        };
        let mut strata_members = vec![0usize; strata];
        for &s in &stratum {
            strata_members[s as usize] += 1;
        }
        let base: Vec<usize> = strata_members
            .iter()
            .map(|&m| (p * m as f64).floor() as usize)
            .collect();
        let fracs = strata_members
            .iter()
            .filter(|&&m| (p * m as f64).fract() > 0.0)
            .count();
        let extra = total - base.iter().sum::<usize>();
        let (mut acc, mut mass) = (0.0, 0.0);
        for mask in 0u32..(1 << k) {
            let zc: Vec<bool> = (0..k).map(|c| mask >> c & 1 == 1).collect();
            let count = zc.iter().filter(|&&b| b).count();
            let prob = match d.spec.assignment {
                Assignment::Bernoulli => p.powi(count as i32) * (1.0 - p).powi((k - count) as i32),
                Assignment::Complete => {
                    if count == total {
                        1.0 / binom(k, total)
                    } else {
                        0.0
                    }
                }
                Assignment::Stratified => {
                    let mut per = vec![0usize; strata];
                    for c in 0..k {
                        per[stratum[c] as usize] += zc[c] as usize;
                    }
                    let mut extras = 0;
                    let mut prob = 1.0 / binom(fracs, extra);
                    for s in 0..strata {
                        let fr = (p * strata_members[s] as f64).fract() > 0.0;
                        if per[s] == base[s] + 1 && fr {
                            extras += 1;
                        } else if per[s] != base[s] {
                            prob = 0.0;
                        }
                        prob /= binom(strata_members[s], per[s]);
                    }
                    if extras == extra {
                        prob
                    } else {
                        0.0
                    }
                }
                Assignment::MatchedPairs => {
                    let pp = d.pairs().unwrap();
                    if pp
                        .pairs
                        .iter()
                        .all(|&(a, b)| zc[a as usize] != zc[b as usize])
                    {
                        0.5f64.powi(pp.pairs.len() as i32 + i32::from(pp.leftover.is_some()))
                    } else {
                        0.0
                    }
                }
                Assignment::Saturation => unreachable!(),
            };
            let n1: f64 = (0..k).filter(|&c| zc[c]).map(|c| sizes[c]).sum();
            if prob > 0.0 && n1 > 0.0 && n1 < n {
                acc += prob * (1.0 / n1 + 1.0 / (n - n1));
                mass += prob;
            }
        }
        let r1 = (p * n).round();
        acc / mass * r1 * (n - r1) / n
    }

    #[test]
    fn arm_size_factor_is_exact() {
        // 11 very unequal clusters (1 to 60 users), covariate by cluster.
        let sizes = [1usize, 2, 3, 5, 8, 13, 21, 34, 60, 4, 7];
        let labels: Vec<u32> = sizes
            .iter()
            .enumerate()
            .flat_map(|(c, &s)| std::iter::repeat_n(c as u32, s))
            .collect();
        let clusters = Partition::from_labels(&labels);
        let x: Vec<f64> = labels.iter().map(|&c| ((c * 7) % 5) as f64).collect();
        for (a, share, strata_by, strata) in [
            (Assignment::Bernoulli, 0.5, StrataBy::Size, 1),
            (Assignment::Bernoulli, 0.3, StrataBy::Size, 1),
            (Assignment::Complete, 0.5, StrataBy::Size, 1),
            (Assignment::Complete, 0.2, StrataBy::Size, 1),
            (Assignment::Stratified, 0.5, StrataBy::Size, 3),
            (Assignment::Stratified, 0.4, StrataBy::Covariate, 2),
            (Assignment::MatchedPairs, 0.5, StrataBy::Size, 1),
        ] {
            let mut s = spec(Unit::Cluster, a);
            s.treated_share = share;
            s.strata_by = strata_by;
            s.strata = strata;
            let d = Design::new(s, Some(clusters.clone()), &x).unwrap();
            let got = d.arm_size_factor().unwrap();
            let want = enumerated_arm_factor(&d);
            assert!(
                (got.value - want).abs() < 1e-10 * want,
                "{a:?} p={share}: {} vs enumerated {want}",
                got.value
            );
            assert!(
                got.value > 1.0,
                "{a:?}: unequal clusters always cost something"
            );
        }
        // Equal clusters under complete randomization: fixed arms, factor 1.
        let equal = Partition::from_labels(&(0..40).map(|i| i / 4).collect::<Vec<u32>>());
        let d = Design::new(
            spec(Unit::Cluster, Assignment::Complete),
            Some(equal),
            &[0.0; 40],
        )
        .unwrap();
        assert_eq!(d.arm_size_factor().unwrap().value, 1.0);
    }
}
