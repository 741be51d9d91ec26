//! The Monte Carlo engine: one replicate of a design (assignment, exposure,
//! outcomes, every estimator, randomization inference), all replicates of a
//! design, and every design of a scenario.
//!
//! This module owns [`SimConfig`], the per-replicate results ([`Replicate`]),
//! the exposure operator, the HT/Hájek and saturation set-ups and
//! [`DesignRun`].
//!
//! Each replicate draws from its own stream keyed by (seed, design,
//! replicate); replicates run in parallel in fixed chunks and are reduced in
//! replicate order, so a scenario gives bit-identical numbers on any number of
//! threads. Every replicate also runs the null model (all effects zero) on the
//! same assignment and noise, for type-I error and the simulated design effect.

use super::Prepared;
use crate::answer::{self as estimate, EstimatorKind, Outcome};
use crate::data::design::{Design, Unit};
use crate::data::exposure::{BatchCounts, ExposureOp};
use crate::error::Result;
use crate::graph::Graph;
use crate::model::Population;
use crate::rng;
use crate::stats::anova_icc;
use rayon::prelude::*;
use serde::Serialize;

/// Exposure-mapping settings of the HT and Hájek estimators.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExposureConfig {
    /// The exposure mapping.
    pub mapping: crate::data::exposure::Mapping,
    /// Nodes whose probability of either condition is below this are excluded.
    pub floor: f64,
    /// Auxiliary assignments when no exact probability exists.
    pub draws: usize,
}

/// Monte Carlo settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimConfig {
    /// Scenario seed.
    pub seed: u64,
    /// Replicates per design.
    pub replicates: usize,
    /// Test level.
    pub alpha: f64,
    /// Estimators to run.
    pub estimators: Vec<EstimatorKind>,
    /// Exposure mapping for HT and Hájek.
    pub exposure: ExposureConfig,
    /// Re-randomizations per replicate for Fisher randomization p-values (0: off).
    pub randomization_inference: usize,
    /// Set from another thread to stop the run (checked before each replicate).
    #[serde(skip)]
    pub cancel: Cancel,
}

/// A flag that stops a run from another thread: once [`Cancel::cancel`] is
/// called, replicates not yet started return [`Error::Cancelled`](crate::Error::Cancelled).
/// Clones share the flag; every token compares equal (it is not a setting).
#[derive(Debug, Clone, Default)]
pub struct Cancel(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Cancel {
    /// Ask the run to stop.
    pub fn cancel(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Clear a stop asked for earlier (before reusing a prepared scenario).
    pub fn reset(&self) {
        self.0.store(false, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether a stop was asked for.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl PartialEq for Cancel {
    fn eq(&self, _: &Cancel) -> bool {
        true
    }
}

impl SimConfig {
    /// `replicates` per design from `seed`, α = 0.05, the five analyst
    /// estimators (`dm-naive`, `dm-cr2`, `cluster-means`, `regression`,
    /// `cuped`), full exposure for HT/Hájek (floor 0.001, 2,000 auxiliary
    /// draws), no randomization inference: the defaults of a scenario file.
    pub fn new(seed: u64, replicates: usize) -> SimConfig {
        SimConfig {
            seed,
            replicates,
            alpha: 0.05,
            estimators: EstimatorKind::ALL.to_vec(),
            exposure: ExposureConfig {
                mapping: crate::data::exposure::Mapping::Full,
                floor: 1e-3,
                draws: 2000,
            },
            randomization_inference: 0,
            cancel: Cancel::default(),
        }
    }
}

/// One replicate of one design.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Replicate {
    /// Each estimator on the model's outcomes.
    pub effect: Vec<Outcome>,
    /// Each estimator on the null model's outcomes.
    pub null: Vec<Outcome>,
    /// Difference in means in the null run (for the simulated design effect).
    pub dm_null: Option<f64>,
    /// Edge-weighted share of treated units' exposure from control units.
    pub contamination_treated: f64,
    /// Edge-weighted share of control units' exposure from treated units.
    pub contamination_control: f64,
    /// ANOVA ICC of the null outcomes over the design's clusters (cluster designs).
    pub icc: Option<f64>,
    /// Randomization-inference p-value of each estimator (effect run), when requested.
    pub ri_effect: Vec<Option<f64>>,
    /// The same in the null run.
    pub ri_null: Vec<Option<f64>>,
    /// Standardized mean difference between arms of each of the
    /// population's balance variables (NaN where an arm is empty or has no
    /// variance); empty without a population file.
    pub balance: Vec<f64>,
}

/// The standardized mean difference between arms of `x` under node arms `z`:
/// (x̄₁ − x̄₀)/√((s₁² + s₀²)/2), sample variances within arms.
///
/// # Complexity
/// O(n).
pub fn smd(x: &[f64], z: &[u8]) -> f64 {
    let (mut t, mut c) = (
        crate::stats::Moments::default(),
        crate::stats::Moments::default(),
    );
    for (&v, &zi) in x.iter().zip(z) {
        if zi == 1 {
            t.push(v);
        } else {
            c.push(v);
        }
    }
    let pooled = ((t.var() + c.var()) / 2.0).sqrt();
    if t.n < 2.0 || c.n < 2.0 || pooled.is_nan() || pooled <= 0.0 {
        return f64::NAN;
    }
    (t.mean - c.mean) / pooled
}

/// Replicates computed together before their per-cluster sums are reduced.
const CHUNK: usize = 64;

/// Users per block of a replicate's outcome loop: the block's noise, outcomes
/// and sums stay in cache.
const OUT_BLOCK: usize = 1024;
// `rng::Noise` fills in pieces of multiples of 8 as at once: the block's
// noise then equals one fill over all users (as `tests/population.rs` draws it).
const _: () = assert!(OUT_BLOCK.is_multiple_of(8));

/// Running sums per contamination total: users add into lane (position mod
/// `LANES`), and the lanes are added in a fixed order.
const LANES: usize = 4;

/// Add a block's contamination sums to `acc`: lanes of [Σ s, Σ s·e,
/// Σ_t s, Σ_t s·e] over the block's users, `s` their in-strength
/// (`strength`, 0 without in-neighbours) and `e` their exposure, so s·e is
/// the in-weight from treated users; the treated arm's sums multiply by the
/// arm (0 or 1), without branching on it. See [`contamination_shares`].
fn contamination(z: &[u8], e: &[f64], strength: &[f64], acc: &mut [[f64; LANES]; 4]) {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::avx2() {
        // SAFETY: this CPU has AVX2.
        return unsafe { contamination_avx2(z, e, strength, acc) };
    }
    contamination_body(z, e, strength, acc)
}

/// [`contamination`] compiled for AVX2 (see [`crate::simd`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn contamination_avx2(z: &[u8], e: &[f64], strength: &[f64], acc: &mut [[f64; LANES]; 4]) {
    contamination_body(z, e, strength, acc)
}

#[inline(always)]
fn contamination_body(z: &[u8], e: &[f64], strength: &[f64], acc: &mut [[f64; LANES]; 4]) {
    let [mut s1, mut se1, mut st, mut set] = *acc;
    let (zc, ec, sc) = (
        z.chunks_exact(LANES),
        e.chunks_exact(LANES),
        strength.chunks_exact(LANES),
    );
    let (zr, er, sr) = (zc.remainder(), ec.remainder(), sc.remainder());
    for ((zc, ec), sc) in zc.zip(ec).zip(sc) {
        for l in 0..LANES {
            // The arm as 0.0 or 1.0 through a table: no branch on it.
            let t = TREATED[usize::from(zc[l])];
            let se = sc[l] * ec[l];
            s1[l] += sc[l];
            se1[l] += se;
            st[l] += t * sc[l];
            set[l] += t * se;
        }
    }
    for l in 0..zr.len() {
        let t = TREATED[usize::from(zr[l])];
        let se = sr[l] * er[l];
        s1[l] += sr[l];
        se1[l] += se;
        st[l] += t * sr[l];
        set[l] += t * se;
    }
    *acc = [s1, se1, st, set];
}

/// 1.0 for the arm 1 (treated), else 0.0: a table, since compilers turn
/// `f64::from(u8::from(z == 1))` into a branch, which random arms mispredict.
static TREATED: [f64; 256] = {
    let mut t = [0.0; 256];
    t[1] = 1.0;
    t
};

/// Contamination of each arm from the sums of [`contamination`]: the share
/// of the treated users' in-weight that comes from control users, and of
/// the control users' in-weight that comes from treated users (0 for an arm
/// without in-weight).
fn contamination_shares(acc: &[[f64; LANES]; 4]) -> (f64, f64) {
    let [s, se, st, set] = acc.map(|l| (l[0] + l[1]) + (l[2] + l[3]));
    let (wt, wc) = (st, s - st);
    let (ct, cc) = (st - set, se - set);
    let share = |x: f64, w: f64| {
        if w > 0.0 {
            (x / w).clamp(0.0, 1.0)
        } else {
            0.0
        }
    };
    (share(ct, wt), share(cc, wc))
}

/// Memory a worker may spend on a batch's exposure counts and assignments.
const BATCH_BUDGET: usize = 256 << 20;

/// Fewest replicates worth a shared exposure sweep.
const MIN_LANES: usize = 4;

/// Everything one design's replicates share: the network, population,
/// design, its exposure operator (built once) and the settings.
pub struct Engine<'a> {
    g: &'a Graph,
    pop: &'a Population,
    design: &'a Design,
    op: ExposureOp,
    cfg: &'a SimConfig,
    design_index: usize,
    /// Exposure probabilities and the pair structure, when HT or Hájek runs.
    pub ht: Option<HtSetup>,
    /// Share of users with positive in-strength (the regression contrast's f).
    connected_share: f64,
    /// Saturation estimators (saturation designs only; they replace the others).
    pub saturation: Option<Saturation>,
    /// Whether every user is a randomization unit of their own.
    singles: bool,
    /// Replicates per shared exposure sweep; 0 when the operator does not batch.
    batch_lanes: usize,
    /// Each user's in-strength (0 without in-neighbours), for contamination.
    strength: Vec<f64>,
    /// Every user's direct effect, when they share one.
    tau: Option<f64>,
    /// Whether batches stream (see [`streams`]).
    streams: bool,
}

/// One saturation-design estimator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SatSlot {
    /// Treated − untreated units in clusters at level index l.
    Direct(usize),
    /// Untreated units at level l − untreated units at the zero level.
    Spillover(usize),
    /// Treated units at the full level − untreated units at the zero level.
    Total,
}

/// Saturation estimators of a design with their exact estimands.
pub struct Saturation {
    /// The estimators.
    pub slots: Vec<SatSlot>,
    /// Their names, e.g. `direct@0.5`.
    pub names: Vec<String>,
    /// Their estimands (linear-in-means continuous models; NaN otherwise).
    pub truths: Vec<f64>,
    /// The design's saturation levels.
    levels: Vec<f64>,
}

impl Saturation {
    fn new(
        g: &Graph,
        pop: &Population,
        design: &Design,
        sat: &crate::data::design::Levels,
    ) -> Saturation {
        let lv = &sat.levels;
        let zero = lv.iter().position(|&s| s == 0.0);
        let full = lv.iter().position(|&s| s == 1.0);
        let mut slots = Vec::new();
        for (l, &s) in lv.iter().enumerate() {
            if s > 0.0 && s < 1.0 {
                slots.push(SatSlot::Direct(l));
            }
        }
        if zero.is_some() {
            for (l, &s) in lv.iter().enumerate() {
                if s > 0.0 && s < 1.0 {
                    slots.push(SatSlot::Spillover(l));
                }
            }
            if full.is_some() {
                slots.push(SatSlot::Total);
            }
        }
        let names = slots
            .iter()
            .map(|s| match *s {
                SatSlot::Direct(l) => format!("direct@{}", lv[l]),
                SatSlot::Spillover(l) => format!("spillover@{}", lv[l]),
                SatSlot::Total => "total".to_string(),
            })
            .collect();
        let exact = pop.kind == crate::model::Kind::Continuous
            && pop.exposure == crate::model::ExposureFn::Linear;
        let truths = if exact {
            let ee = expected_exposure(g, pop, design, sat);
            let n = pop.len() as f64;
            let tau = pop.tau.iter().sum::<f64>() / n;
            let mean = |f: &dyn Fn(usize) -> f64| (0..pop.len()).map(f).sum::<f64>() / n;
            slots
                .iter()
                .map(|s| match *s {
                    SatSlot::Direct(l) => tau + pop.gamma * mean(&|i| ee[i][l].1 - ee[i][l].0),
                    SatSlot::Spillover(l) => {
                        let z0 = zero.unwrap_or(0);
                        pop.gamma * mean(&|i| ee[i][l].0 - ee[i][z0].0)
                    }
                    SatSlot::Total => {
                        let (z0, z1) = (zero.unwrap_or(0), full.unwrap_or(0));
                        tau + pop.gamma * mean(&|i| ee[i][z1].1 - ee[i][z0].0)
                    }
                })
                .collect()
        } else {
            vec![f64::NAN; slots.len()]
        };
        Saturation {
            slots,
            names,
            truths,
            levels: lv.clone(),
        }
    }

    /// Estimates for one assignment (`levels[c]` = level index of cluster c).
    fn estimate(
        &self,
        design: &Design,
        levels: &[u8],
        z: &[u8],
        y: &[f64],
        alpha: f64,
    ) -> Vec<Outcome> {
        let labels = design.clusters.labels();
        let lv = &self.levels;
        let zero = lv.iter().position(|&s| s == 0.0);
        let full = lv.iter().position(|&s| s == 1.0);
        self.slots
            .iter()
            .map(|slot| {
                // Select units and their 0/1 contrast indicator.
                let keep = |i: usize| -> Option<u8> {
                    let l = levels[labels[i] as usize] as usize;
                    match *slot {
                        SatSlot::Direct(a) => (l == a).then_some(z[i]),
                        SatSlot::Spillover(a) => {
                            (z[i] == 0 && (l == a || Some(l) == zero)).then_some(u8::from(l == a))
                        }
                        SatSlot::Total => {
                            if Some(l) == full && z[i] == 1 {
                                Some(1)
                            } else if Some(l) == zero && z[i] == 0 {
                                Some(0)
                            } else {
                                None
                            }
                        }
                    }
                };
                let (mut ys, mut xs, mut cs) = (Vec::new(), Vec::new(), Vec::new());
                let mut remap = vec![u32::MAX; design.units()];
                let mut next = 0u32;
                for i in 0..y.len() {
                    if let Some(x) = keep(i) {
                        let c = labels[i] as usize;
                        if remap[c] == u32::MAX {
                            remap[c] = next;
                            next += 1;
                        }
                        ys.push(y[i]);
                        xs.push(x);
                        cs.push(remap[c]);
                    }
                }
                estimate::dm_cr2(
                    &ys,
                    &xs,
                    &cs,
                    next as usize,
                    estimate::Blocking::None,
                    alpha,
                )
            })
            .collect()
    }
}

/// For every node and saturation level a: (E[e_i | z_i = 0, a], E[e_i | z_i = 1, a])
/// under the saturation design (linear exposure), exactly: a neighbour in the
/// same cluster is treated with probability (t_a − z_i)/(m − 1); one in another
/// cluster c' with Σ_l P(c' at l | own at a)·t_l(c')/m(c'), where
/// P(c' at l | own at a) = (K_l − [l = a])/(K − 1).
fn expected_exposure(
    g: &Graph,
    pop: &Population,
    design: &Design,
    sat: &crate::data::design::Levels,
) -> Vec<Vec<(f64, f64)>> {
    let lv = &sat.levels;
    let nl = lv.len();
    let k = design.units();
    let sizes: Vec<f64> = sat.members.iter().map(|m| m.len() as f64).collect();
    let t = |l: usize, c: usize| (lv[l] * sizes[c]).round();
    let labels = design.clusters.labels();
    let kl: Vec<f64> = sat.counts.iter().map(|&x| x as f64).collect();
    (0..g.node_count())
        .map(|i| {
            let c = labels[i] as usize;
            let inv = pop.inv_in_strength[i];
            (0..nl)
                .map(|a| {
                    if inv == 0.0 {
                        return (0.0, 0.0);
                    }
                    let (mut e0, mut e1) = (0.0, 0.0);
                    for (j, w) in g.in_edges(i as u32) {
                        if j as usize == i {
                            continue; // not an exposure (crate::model::exposure)
                        }
                        let cj = labels[j as usize] as usize;
                        if cj == c {
                            let m = sizes[c];
                            if m > 1.0 {
                                e0 += w * t(a, c) / (m - 1.0);
                                e1 += w * (t(a, c) - 1.0) / (m - 1.0);
                            }
                        } else {
                            let pr: f64 = (0..nl)
                                .map(|l| {
                                    let same = if l == a { 1.0 } else { 0.0 };
                                    (kl[l] - same) / (k as f64 - 1.0) * t(l, cj) / sizes[cj]
                                })
                                .sum();
                            e0 += w * pr;
                            e1 += w * pr;
                        }
                    }
                    (e0 * inv, e1 * inv)
                })
                .collect()
        })
        .collect()
}

/// What the HT and Hájek estimators need for one design.
pub struct HtSetup {
    /// Probabilities of the two conditions.
    pub probs: crate::data::exposure::Probabilities,
    /// Nodes kept (both probabilities at least the floor).
    pub included: Vec<bool>,
    /// How many nodes are kept.
    pub n_included: usize,
    /// Clusters shared between neighbourhoods.
    pub overlap: crate::data::exposure::Overlap,
    /// Joint probabilities from auxiliary assignments, where no closed form is used.
    pub pairs: Option<crate::data::exposure::PairProbabilities>,
    /// Full exposure on a fixed partition: the shared cluster sets of the
    /// included nodes and, per node, how many included nodes share a cluster
    /// with it (the variance sums aggregated, see [`crate::data::exposure::SharedSets`]).
    pub shared: Option<(
        crate::data::exposure::SharedSets,
        crate::data::exposure::SetVariance,
    )>,
    /// The exposure contrast over included nodes, exactly.
    pub estimand: f64,
    /// Exact SD of HT under cluster Bernoulli (the design's true HT SD), where it applies.
    pub exact_sd: Option<f64>,
    /// Treated share of the design (the p of the variance formulas).
    pub p: f64,
    /// Whether the partition is redrawn every replicate.
    pub redrawn: bool,
}

impl HtSetup {
    fn new(
        g: &Graph,
        pop: &Population,
        design: &Design,
        cfg: &SimConfig,
        design_index: usize,
    ) -> Result<HtSetup> {
        let m = &cfg.exposure.mapping;
        let probs = crate::data::exposure::probabilities(
            g,
            design,
            m,
            cfg.exposure.draws,
            cfg.seed ^ (design_index as u64).wrapping_mul(0x9E37_79B9),
        )?;
        let included: Vec<bool> = probs
            .treated
            .iter()
            .zip(&probs.control)
            .map(|(&a, &b)| {
                a >= cfg.exposure.floor && b >= cfg.exposure.floor && a > 0.0 && b > 0.0
            })
            .collect();
        let overlap =
            crate::data::exposure::Overlap::new(g, design.clusters.labels(), design.units());
        let n = pop.len();
        // Full exposure under Bernoulli/complete designs has closed forms; other
        // mappings and designs get joint probabilities and condition-wise mean
        // outcomes from auxiliary assignments.
        let full = *m == crate::data::exposure::Mapping::Full;
        let estimated = matches!(
            probs.method,
            crate::data::exposure::Method::Estimated { .. }
        );
        let pairs = (!full || (estimated && !design.is_redrawn())).then(|| {
            crate::data::exposure::PairProbabilities::estimate(
                g,
                design,
                m,
                &overlap,
                cfg.exposure.draws,
                cfg.seed ^ (design_index as u64).wrapping_mul(0x51_7CC1_B727),
                &|i, z, e| pop.mean_outcome(i, z, e),
            )
        });
        let pairs = pairs.transpose()?;
        let mut included = included;
        if let (false, Some(pp)) = (full, &pairs) {
            for (i, inc) in included.iter_mut().enumerate() {
                *inc = *inc && pp.mean_t[i].is_finite() && pp.mean_c[i].is_finite();
            }
        }
        // Full exposure: treated condition means e = 1 (for nodes with neighbours), control e = 0.
        let y1: Vec<f64> = (0..n)
            .map(|i| {
                pop.mean_outcome(
                    i,
                    true,
                    if pop.inv_in_strength[i] > 0.0 {
                        1.0
                    } else {
                        0.0
                    },
                )
            })
            .collect();
        let y0: Vec<f64> = (0..n).map(|i| pop.mean_outcome(i, false, 0.0)).collect();
        let kept = included.iter().filter(|&&b| b).count();
        let contrast = |i: usize| match (&pairs, full) {
            (Some(pp), false) => pp.mean_t[i] - pp.mean_c[i],
            _ => y1[i] - y0[i],
        };
        let estimand = if kept > 0 {
            (0..n).filter(|&i| included[i]).map(contrast).sum::<f64>() / kept as f64
        } else {
            f64::NAN
        };
        let shared = match (full, &pairs, design.is_redrawn()) {
            (true, None, false) => {
                let sets = crate::data::exposure::SharedSets::new(&overlap, &included)?;
                let sv = crate::data::exposure::SetVariance::new(&sets, design.spec.treated_share);
                Some((sets, sv))
            }
            _ => None,
        };
        let exact_sd = (full
            && design.spec.assignment == crate::data::design::Assignment::Bernoulli
            && !design.is_redrawn()
            && kept > 0)
            .then(|| {
                let (v1, v0): (Vec<f64>, Vec<f64>) = match pop.kind {
                    crate::model::Kind::Continuous => {
                        let v: Vec<f64> = (0..n).map(|i| pop.noise_var(i)).collect();
                        (v.clone(), v)
                    }
                    crate::model::Kind::Binary => (
                        y1.iter().map(|p| p * (1.0 - p)).collect(),
                        y0.iter().map(|p| p * (1.0 - p)).collect(),
                    ),
                };
                let p = design.spec.treated_share;
                // Full exposure on a fixed partition has its shared sets.
                shared.as_ref().map(|(sets, _)| {
                    crate::data::exposure::ht_variance_full_bernoulli_sets(
                        &overlap, sets, p, &y1, &y0, &v1, &v0, &included,
                    )
                    .sqrt()
                })
            })
            .flatten();
        Ok(HtSetup {
            probs,
            n_included: kept,
            included,
            overlap,
            pairs,
            shared,
            estimand,
            exact_sd,
            p: design.spec.treated_share,
            redrawn: design.is_redrawn(),
        })
    }

    /// HT and Hájek point estimates only (randomization inference).
    fn points(
        &self,
        g: &Graph,
        cfg: &SimConfig,
        z: &[u8],
        y: &[f64],
    ) -> (Option<f64>, Option<f64>) {
        let (t, c): (Vec<bool>, Vec<bool>) = (0..y.len() as u32)
            .map(|i| crate::data::exposure::conditions(g, &cfg.exposure.mapping, z, i))
            .unzip();
        let (ht, hajek) = crate::data::exposure::ht_hajek(
            y,
            &t,
            &c,
            &self.probs.treated,
            &self.probs.control,
            &self.included,
        );
        (ht.is_finite().then_some(ht), hajek)
    }

    /// HT and Hájek outcomes for one assignment and outcome vector.
    /// HT and Hájek outcomes for one assignment, for each outcome vector in
    /// `ys` (the model's and the null model's): the exposure conditions and the
    /// overlap structure depend on the assignment only and are computed once.
    fn estimate(
        &self,
        g: &Graph,
        cfg: &SimConfig,
        part: &crate::partition::Partition,
        z: &[u8],
        ys: [&[f64]; 2],
    ) -> [(Outcome, Outcome, Outcome); 2] {
        let n = z.len();
        // A redrawn partition has its own overlap structure (the variance then
        // treats this replicate's partition as fixed: an approximation).
        let own_overlap;
        let overlap = if self.redrawn {
            own_overlap = crate::data::exposure::Overlap::new(g, part.labels(), part.count());
            &own_overlap
        } else {
            &self.overlap
        };
        let (t, c): (Vec<bool>, Vec<bool>) = match &self.shared {
            // Full exposure on a fixed partition: all touching clusters in one arm.
            Some(_) => overlap.full_conditions(part.labels(), z),
            None => (0..n as u32)
                .map(|i| crate::data::exposure::conditions(g, &cfg.exposure.mapping, z, i))
                .unzip(),
        };
        let (pi1, pi0) = (&self.probs.treated, &self.probs.control);
        let any = |v: &[bool]| v.iter().zip(&self.included).any(|(&a, &b)| a && b);
        if !any(&t) || !any(&c) {
            let e = Err(estimate::Failure::EmptyCondition);
            return [(e, e, e), (e, e, e)];
        }
        let members = |v: &[bool]| -> Vec<u32> {
            (0..n as u32)
                .filter(|&i| v[i as usize] && self.included[i as usize])
                .collect()
        };
        let (in_t, in_c) = (members(&t), members(&c));
        let n_included = self.n_included;
        // Point estimates and the Hájek means (each condition's weighted mean) per run.
        let points = ys.map(|y| {
            let (ht, hajek) = crate::data::exposure::ht_hajek(y, &t, &c, pi1, pi0, &self.included);
            let weighted = |members: &[u32], pi: &[f64]| {
                let (s, w) = members.iter().fold((0.0, 0.0), |(s, w), &i| {
                    (s + y[i as usize] / pi[i as usize], w + 1.0 / pi[i as usize])
                });
                s / w
            };
            (ht, hajek, (weighted(&in_t, pi1), weighted(&in_c, pi0)))
        });
        let means = points.map(|p| p.2);
        // Residuals from each condition's weighted mean (Hájek's linearization).
        let resid = |run: usize| -> Vec<f64> {
            let (mt, mc) = means[run];
            (0..n)
                .map(|i| {
                    if t[i] {
                        ys[run][i] - mt
                    } else if c[i] {
                        ys[run][i] - mc
                    } else {
                        0.0
                    }
                })
                .collect()
        };
        // variances[run] = [HT, Hájek].
        let variances: [[f64; 2]; 2] = match (&self.pairs, &self.shared) {
            (Some(pp), _) => [0, 1].map(|run| {
                let v = |y: &[f64]| {
                    crate::data::exposure::as_variance(pp, y, &t, &c, pi1, pi0, &self.included)
                };
                [v(ys[run]), v(&resid(run))]
            }),
            (None, Some((sets, sv))) => crate::data::exposure::as_variances_full_sets(
                sets, sv, ys, means, &in_t, &in_c, pi1, pi0, n_included,
            ),
            (None, None) => {
                let mut count = vec![0u32; n];
                let mut touched = Vec::new();
                [0, 1].map(|run| {
                    [ys[run].to_vec(), resid(run)].map(|y| {
                        crate::data::exposure::as_variance_full(
                            overlap,
                            self.p,
                            &y,
                            &t,
                            &c,
                            pi1,
                            pi0,
                            &self.included,
                            &mut count,
                            &mut touched,
                        )
                    })
                })
            }
        };
        // Hájek as weighted least squares of y on [1, treated condition] over
        // the included users in either condition, weights 1/π of their
        // condition, CR2 at the randomization unit: rows scaled by √w.
        let rows: Vec<(u32, bool)> = {
            let mut r: Vec<(u32, bool)> = in_t.iter().map(|&i| (i, true)).collect();
            r.extend(in_c.iter().map(|&i| (i, false)));
            r
        };
        let want_cr2 = cfg.estimators.contains(&EstimatorKind::HajekCr2);
        let sw: Vec<f64> = rows
            .iter()
            .map(|&(i, tr)| {
                let pi = if tr { pi1[i as usize] } else { pi0[i as usize] };
                (1.0 / pi).sqrt()
            })
            .collect();
        let rc: Vec<u32> = rows
            .iter()
            .map(|&(i, _)| part.labels()[i as usize])
            .collect();
        let cr2 = |y: &[f64]| -> Outcome {
            if !want_cr2 {
                return Err(estimate::Failure::Singular);
            }
            let yw: Vec<f64> = rows
                .iter()
                .zip(&sw)
                .map(|(&(i, _), w)| w * y[i as usize])
                .collect();
            estimate::ols_cr2(
                &yw,
                |r| [sw[r], if rows[r].1 { sw[r] } else { 0.0 }],
                &rc,
                part.count(),
                [0.0, 1.0],
                cfg.alpha,
            )
        };
        [0, 1].map(|run| {
            let (ht, hajek, _) = &points[run];
            let [v_ht, v_hajek] = variances[run];
            let ht_out = estimate::t_inference(*ht, v_ht.sqrt(), f64::INFINITY, cfg.alpha);
            let hajek_out = match hajek {
                None => Err(estimate::Failure::EmptyCondition),
                Some(h) => estimate::t_inference(*h, v_hajek.sqrt(), f64::INFINITY, cfg.alpha),
            };
            (ht_out, hajek_out, cr2(ys[run]))
        })
    }
}

impl<'a> Engine<'a> {
    /// Prepare design number `design_index` (its exposure operator is built here).
    pub fn new(
        g: &'a Graph,
        pop: &'a Population,
        design: &'a Design,
        cfg: &'a SimConfig,
        design_index: usize,
    ) -> Result<Self> {
        let ht = match cfg.estimators.iter().any(EstimatorKind::is_exposure) {
            true => Some(HtSetup::new(g, pop, design, cfg, design_index)?),
            false => None,
        };
        let saturation = design
            .levels()
            .map(|sat| Saturation::new(g, pop, design, sat));
        let ht = if saturation.is_some() { None } else { ht };
        let op = ExposureOp::new(g, pop, design);
        let batch_lanes = if !design.is_redrawn() {
            // Enough batches per chunk for every thread, within the memory budget.
            let per_thread = CHUNK.div_ceil(rayon::current_num_threads().max(1));
            // The packed arms take 8 bytes per user (or cluster) whatever the lanes.
            let packed = 8 * g.node_count();
            let fit = BATCH_BUDGET.saturating_sub(packed) / op.batch_bytes_per_lane(g).max(1);
            let lanes = per_thread.min(fit).min(op.max_lanes(g));
            if lanes >= MIN_LANES {
                lanes
            } else {
                0
            }
        } else {
            0
        };
        // 1 / (1 / s) as the exposure's users use it, 0 without in-neighbours.
        let strength = pop
            .inv_in_strength
            .iter()
            .map(|&inv| if inv > 0.0 { 1.0 / inv } else { 0.0 })
            .collect();
        let mut en = Engine {
            streams: false,
            batch_lanes,
            strength,
            tau: pop.uniform_tau(),
            singles: estimate::suff::one_user_per_unit(design.clusters.labels(), design.units()),
            connected_share: pop.connected_share(),
            g,
            pop,
            design,
            op,
            cfg,
            design_index,
            ht,
            saturation,
        };
        en.streams = streams(&en);
        Ok(en)
    }

    /// Whether this design's batches stream: lean replicates of a user-level
    /// design whose exposures are counted block by block and consumed at
    /// once, no per-user array kept for any replicate.
    pub fn streams(&self) -> bool {
        self.streams && self.batch_lanes > 0
    }

    /// Replicates per shared exposure sweep ([`Engine::replicate_batch`]);
    /// 0 when the operator does not batch. Set by the thread count and memory
    /// only: results do not depend on it.
    pub fn batch_lanes(&self) -> usize {
        self.batch_lanes
    }

    /// Replicates `rs` with one shared exposure sweep (when the operator
    /// batches and `rs` holds at most [`Engine::batch_lanes`] replicates;
    /// otherwise one by one), each with its per-cluster other-arm weights
    /// (`width` clusters); `tick` after each (a streamed batch, see
    /// [`Engine::streams`], ticks for all its replicates at its end). Equal,
    /// bit for bit, to running them one by one.
    ///
    /// # Complexity
    /// One exposure sweep for the batch (see [`ExposureOp::apply_batch`], or
    /// block by block with [`BatchCounts::count_block`] when it streams),
    /// then O(users + units) per replicate for the outcomes and estimators.
    pub fn replicate_batch(
        &self,
        rs: std::ops::Range<usize>,
        width: usize,
        scratch: &mut Scratch,
        tick: &(dyn Fn() + Sync),
    ) -> Result<Vec<(Replicate, Vec<f64>)>> {
        // Batched: every assignment is drawn first and their exposures come
        // from one sweep; otherwise each replicate draws and sweeps alone.
        let mut drawn = Vec::new();
        let batched = self.batch_lanes > 0 && rs.len() <= self.batch_lanes;
        if batched {
            if self.cfg.cancel.is_cancelled() {
                return Err(crate::Error::Cancelled);
            }
            drawn = rs
                .clone()
                .map(|ri| {
                    let (z, zc) = scratch.arms.pop().unwrap_or_default();
                    let (g, d) = (self.g, self.design);
                    draw_assignment_into(g, d, self.cfg.seed, self.design_index, ri, z, zc)
                })
                .collect::<Result<Vec<_>>>()?;
            if self.streams {
                return finish_streamed(self, rs, drawn, width, scratch, tick);
            }
            let zs: Vec<&[u8]> = drawn.iter().map(|d| d.z.as_slice()).collect();
            let zcs: Vec<&[u8]> = drawn.iter().map(|d| d.zc.as_slice()).collect();
            self.op
                .apply_batch(self.g, self.pop, &zs, &zcs, &mut scratch.batch);
        }
        let mut drawn = drawn.into_iter();
        rs.enumerate()
            .map(|(lane, ri)| {
                if self.cfg.cancel.is_cancelled() {
                    return Err(crate::Error::Cancelled);
                }
                let mut other = vec![0.0f64; width];
                let rep = match drawn.next() {
                    Some(d) => finish(self, ri, d, Some(lane), &mut other, scratch)?,
                    None => self.replicate_with(ri, &mut other, scratch)?,
                };
                tick();
                Ok((rep, other))
            })
            .collect()
    }

    /// Names of this design's estimators, in column order.
    pub fn estimator_names(&self) -> Vec<String> {
        match &self.saturation {
            Some(s) => s.names.clone(),
            None => self
                .cfg
                .estimators
                .iter()
                .map(|k| k.name().to_string())
                .collect(),
        }
    }

    /// Run replicate `r_index`. For cluster designs `cluster_other` gets, per
    /// cluster, the in-weight its members receive from the other arm.
    /// Fails only where a redrawn partition cannot be computed.
    pub fn replicate(&self, r_index: usize, cluster_other: &mut [f64]) -> Result<Replicate> {
        replicate(self, r_index, cluster_other, &mut Scratch::default())
    }

    /// [`Engine::replicate`] reusing the exposure and outcome buffers in
    /// `scratch` (one per worker) from one replicate to the next.
    pub fn replicate_with(
        &self,
        r_index: usize,
        cluster_other: &mut [f64],
        scratch: &mut Scratch,
    ) -> Result<Replicate> {
        replicate(self, r_index, cluster_other, scratch)
    }
}

/// Per-user buffers a worker reuses from one replicate to the next.
#[derive(Debug, Default)]
pub struct Scratch {
    e: Vec<f64>,
    y: Vec<f64>,
    y0: Vec<f64>,
    batch: BatchCounts,
    /// A streamed block's counts, lane after lane.
    counts: Vec<u8>,
    /// A streamed block's users with more than 255 in-neighbours, and
    /// their counts.
    hubs: Vec<(usize, [u32; crate::data::exposure::MAX_LANES])>,
    /// The sweep's gathered words.
    words: Vec<u64>,
    /// Arms buffers (users', units') of streamed batches, for the next batch.
    arms: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A [`Scratch`] taken from a pool and given back when dropped.
struct Pooled<'p> {
    pool: &'p std::sync::Mutex<Vec<Scratch>>,
    scratch: Scratch,
}

impl<'p> Pooled<'p> {
    fn take(pool: &'p std::sync::Mutex<Vec<Scratch>>) -> Self {
        let scratch = pool.lock().ok().and_then(|mut p| p.pop());
        Pooled {
            pool,
            scratch: scratch.unwrap_or_default(),
        }
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Ok(mut pool) = self.pool.lock() {
            pool.push(std::mem::take(&mut self.scratch));
        }
    }
}

/// `v` with `n` entries (stale values: the caller writes every one),
/// reusing its allocation.
fn sized(v: &mut Vec<f64>, n: usize) -> &mut [f64] {
    v.resize(n, 0.0);
    v
}

/// `v` as `n` zeros, reusing its allocation.
fn zeroed(v: &mut Vec<f64>, n: usize) -> &mut [f64] {
    v.clear();
    v.resize(n, 0.0);
    v
}

/// One replicate's assignment, drawn exactly as the simulation draws it,
/// with the random stream positioned where the replicate's noise starts.
pub struct DrawnAssignment {
    /// The replicate's stream after the draw: its noise is
    /// `rng::Noise::new(rng)`.
    pub rng: rng::Draws,
    /// Each unit's arm (saturation designs: each cluster's level index).
    pub zc: Vec<u8>,
    /// Each user's arm (1 = treated).
    pub z: Vec<u8>,
    /// The partition drawn for this replicate (redrawn designs only).
    pub redrawn: Option<crate::partition::Partition>,
}

/// Draw replicate `r_index` of design number `design_index` under `seed`:
/// the assignment `spillover assign` deploys for replicate 0.
///
/// # Complexity
/// O(users + units); a partition for redrawn designs.
pub fn draw_assignment(
    g: &Graph,
    design: &Design,
    seed: u64,
    design_index: usize,
    r_index: usize,
) -> Result<DrawnAssignment> {
    draw_assignment_into(
        g,
        design,
        seed,
        design_index,
        r_index,
        Vec::new(),
        Vec::new(),
    )
}

/// [`draw_assignment`] into the buffers `z` and `zc` (their contents are
/// replaced), so a worker reuses them from one batch to the next.
fn draw_assignment_into(
    g: &Graph,
    design: &Design,
    seed: u64,
    design_index: usize,
    r_index: usize,
    mut z: Vec<u8>,
    mut zc: Vec<u8>,
) -> Result<DrawnAssignment> {
    let mut rng = rng::draws(
        seed,
        &[rng::purpose::REPLICATE, design_index as u64, r_index as u64],
    );
    // Every user's arm is written by the draw: stale entries need no zeroing.
    z.resize(g.node_count(), 0);
    zc.clear();
    let redrawn = design.draw_full(g, &mut rng, &mut zc, &mut z)?;
    Ok(DrawnAssignment {
        rng,
        zc,
        z,
        redrawn,
    })
}

fn replicate(
    en: &Engine,
    r_index: usize,
    cluster_other: &mut [f64],
    scratch: &mut Scratch,
) -> Result<Replicate> {
    // Randomized graph cluster randomization redraws the partition here.
    let drawn = draw_assignment(en.g, en.design, en.cfg.seed, en.design_index, r_index)?;
    finish(en, r_index, drawn, None, cluster_other, scratch)
}

/// How one replicate is analysed, from the engine and the partition its
/// assignment was drawn on.
struct Modes<'p> {
    /// The partition (the design's, or the replicate's redrawn one).
    part: &'p crate::partition::Partition,
    /// Whether the partition was redrawn for this replicate.
    redrawn: bool,
    /// The randomization's restriction, for the analysis to follow it.
    blocking: estimate::Blocking<'p>,
    /// Whether the design randomizes clusters.
    cluster_design: bool,
    /// Whether each cluster's other-arm in-weight is summed (cluster
    /// designs on their own partition).
    per_cluster: bool,
    /// Whether the unblocked analyst estimators run on sufficient statistics.
    use_suff: bool,
    /// Whether every user is a unit of their own.
    singles: bool,
    /// Whether an estimator reads the covariate's and exposure's sums.
    extra: bool,
    /// Whether the sums are taken block by block while the outcomes are in
    /// cache ([`estimate::suff::Singles`]).
    block_sums: bool,
    /// Whether every estimator comes from those sums and nothing else reads
    /// the users' exposures and outcomes (so they live only block by block).
    lean: bool,
}

impl<'p> Modes<'p> {
    fn new(en: &'p Engine, redrawn: Option<&'p crate::partition::Partition>) -> Modes<'p> {
        let (pop, cfg) = (en.pop, en.cfg);
        let part = redrawn.unwrap_or(&en.design.clusters);
        let cluster_design = en.design.spec.unit == Unit::Cluster;
        let blocking = if redrawn.is_some() {
            estimate::Blocking::None
        } else {
            blocking(en.design)
        };
        // The unblocked analyst estimators run on one pass of sufficient
        // statistics (answer::suff); the user-level functions are their reference.
        let use_suff = blocking == estimate::Blocking::None
            && pop.covariates.is_empty()
            && en.saturation.is_none();
        let singles = match redrawn {
            None => en.singles,
            Some(p) => estimate::suff::one_user_per_unit(p.labels(), p.count()),
        };
        let extra = cfg
            .estimators
            .iter()
            .any(|k| matches!(k, EstimatorKind::Regression | EstimatorKind::Cuped));
        let block_sums = use_suff && singles && (pop.x.len() == pop.len() || !extra);
        let lean = block_sums
            && en.ht.is_none()
            && cfg.randomization_inference == 0
            && cfg.estimators.iter().all(|k| {
                matches!(
                    k,
                    EstimatorKind::DmNaive | EstimatorKind::DmCr2 | EstimatorKind::ClusterMeans
                )
            });
        Modes {
            part,
            redrawn: redrawn.is_some(),
            blocking,
            cluster_design,
            per_cluster: cluster_design && redrawn.is_none(),
            use_suff,
            singles,
            extra,
            block_sums,
            lean,
        }
    }
}

/// Replicate `r_index` from its drawn assignment; its exposures come from
/// lane `lane` of `scratch`'s batch counts when given, else from the operator.
fn finish(
    en: &Engine,
    r_index: usize,
    drawn: DrawnAssignment,
    lane: Option<usize>,
    cluster_other: &mut [f64],
    scratch: &mut Scratch,
) -> Result<Replicate> {
    let (g, pop, op) = (en.g, en.pop, &en.op);
    let n = pop.len();
    let DrawnAssignment {
        rng,
        zc,
        z,
        redrawn,
    } = drawn;
    let mut r = rng::Noise::new(rng);
    let m = Modes::new(en, redrawn.as_ref());
    let labels = m.part.labels();
    // With one user per unit the sums are taken block by block below, while
    // the block's outcomes are in cache; the covariate's and exposure's sums
    // only when an estimator reads them.
    let mut singles_sums = m.block_sums.then(|| estimate::suff::Singles::new(m.extra));
    let lean = m.lean;
    // Exposure: weighted share of treated in-neighbours; lean with batch
    // counts, each block's from the counts.
    let Scratch {
        e, y, y0, batch, ..
    } = scratch;
    let counts_lane = lane.filter(|&l| lean && batch.values(l).is_none());
    let e: &[f64] = match lane.map(|l| (l, batch.values(l))) {
        _ if counts_lane.is_some() => &[],
        Some((_, Some(values))) => values,
        Some((l, None)) => {
            let e = zeroed(e, n);
            batch.exposure(l, &pop.inv_in_strength, e);
            e
        }
        None => {
            let e = zeroed(e, n);
            op.apply(g, pop, &z, &zc, e);
            e
        }
    };
    // Every entry of y and y0 is written below: no need to zero them.
    let keep = if lean { 0 } else { n };
    let (y, y0) = (sized(y, keep), sized(y0, keep));
    let no_x: &[f64] = &[];
    // Contamination in lanes (see `contamination`).
    let mut cont = [[0.0f64; LANES]; 4];
    let [mut noise, mut eblock, mut yblock, mut y0block] = [[0.0f64; OUT_BLOCK]; 4];
    for base in (0..n).step_by(OUT_BLOCK) {
        let end = (base + OUT_BLOCK).min(n);
        let len = end - base;
        let inv = &pop.inv_in_strength[base..end];
        let zb = &z[base..end];
        let eb: &[f64] = match counts_lane {
            Some(l) => {
                batch.exposure_block(l, base, inv, &mut eblock[..len]);
                &eblock[..len]
            }
            None => &e[base..end],
        };
        let (yb, y0b) = if lean {
            (&mut yblock[..len], &mut y0block[..len])
        } else {
            (&mut y[base..end], &mut y0[base..end])
        };
        let nb = &mut noise[..len];
        pop.noise_fill(&mut r, nb);
        pop.observe_block(base, en.tau, zb, eb, nb, yb, y0b);
        let strength = &en.strength[base..end];
        contamination(zb, eb, strength, &mut cont);
        if m.per_cluster {
            for (j, &s) in strength.iter().enumerate() {
                if s > 0.0 {
                    let ej = eb[j];
                    let other = if zb[j] == 1 { s * (1.0 - ej) } else { s * ej };
                    cluster_other[labels[base + j] as usize] += other;
                }
            }
        }
        if let Some(sums) = &mut singles_sums {
            let x = if m.extra { &pop.x[base..end] } else { no_x };
            sums.add([&*yb, &*y0b], zb, eb, x);
        }
    }
    Ok(conclude(
        en,
        &m,
        r_index,
        &z,
        &zc,
        [y, y0],
        e,
        &cont,
        singles_sums.as_ref(),
    ))
}

/// Whether a batch of replicates can stream: their exposures counted block
/// by block from the packed arms ([`BatchCounts::count_block`]) and consumed
/// at once, with no per-user array kept for any lane. True for lean
/// replicates of a user-level design on a graph the sweep counts by node.
fn streams(en: &Engine) -> bool {
    let m = Modes::new(en, None);
    m.lean && !m.cluster_design && en.op.counts_by_node(en.g)
}

/// The replicates of a batch that streams ([`streams`]), each exactly (bit
/// for bit) what [`finish`] gives it: each block of users is counted once
/// for the whole batch, and each lane's noise, outcomes and sums follow
/// while the block's counts and per-user arrays are in cache, so those
/// arrays are read from memory once per batch rather than once per replicate.
fn finish_streamed(
    en: &Engine,
    rs: std::ops::Range<usize>,
    drawn: Vec<DrawnAssignment>,
    width: usize,
    scratch: &mut Scratch,
    tick: &(dyn Fn() + Sync),
) -> Result<Vec<(Replicate, Vec<f64>)>> {
    let (g, pop) = (en.g, en.pop);
    let n = pop.len();
    let m = Modes::new(en, None);
    let lanes = drawn.len();
    let (mut rngs, mut arms) = (Vec::with_capacity(lanes), Vec::with_capacity(lanes));
    for d in drawn {
        rngs.push(rng::Noise::new(d.rng));
        arms.push((d.z, d.zc));
    }
    let zs: Vec<&[u8]> = arms.iter().map(|(z, _)| z.as_slice()).collect();
    let Scratch {
        batch,
        counts,
        hubs,
        words,
        ..
    } = scratch;
    batch.pack(n, &zs);
    let mut cont = vec![[[0.0f64; LANES]; 4]; lanes];
    let mut sums = vec![estimate::suff::Singles::new(false); lanes];
    let [mut noise, mut eblock, mut yblock, mut y0block] = [[0.0f64; OUT_BLOCK]; 4];
    for base in (0..n).step_by(OUT_BLOCK) {
        if en.cfg.cancel.is_cancelled() {
            return Err(crate::Error::Cancelled);
        }
        let end = (base + OUT_BLOCK).min(n);
        let len = end - base;
        let inv = &pop.inv_in_strength[base..end];
        let strength = &en.strength[base..end];
        let stride = batch.count_block(g, base, len, counts, hubs, words);
        for (r, rng) in rngs.iter_mut().enumerate() {
            let nb = &mut noise[..len];
            pop.noise_fill(rng, nb);
            let zb = &zs[r][base..end];
            let eb = &mut eblock[..len];
            crate::data::exposure::exposures_from_counts(&counts[r * stride..], inv, eb);
            for (j, c) in hubs.iter() {
                eb[*j] = f64::from(c[r]) * inv[*j];
            }
            let (yb, y0b) = (&mut yblock[..len], &mut y0block[..len]);
            pop.observe_block(base, en.tau, zb, eb, nb, yb, y0b);
            contamination(zb, eb, strength, &mut cont[r]);
            sums[r].add([&*yb, &*y0b], zb, eb, &[]);
        }
    }
    let mut out = Vec::with_capacity(lanes);
    for (r, ri) in rs.enumerate() {
        let (z, zc) = &arms[r];
        let rep = conclude(en, &m, ri, z, zc, [&[], &[]], &[], &cont[r], Some(&sums[r]));
        tick();
        // A user-level design has no clusters to sum other-arm weights in.
        out.push((rep, vec![0.0; width]));
    }
    scratch.arms.extend(arms);
    Ok(out)
}

/// A replicate's estimates and diagnostics from its outcomes `y` (model
/// and null run; empty when lean), arms, exposures `e` (empty when lean),
/// contamination sums and block sums.
#[allow(clippy::too_many_arguments)]
fn conclude(
    en: &Engine,
    m: &Modes,
    r_index: usize,
    z: &[u8],
    zc: &[u8],
    [y, y0]: [&[f64]; 2],
    e: &[f64],
    cont: &[[f64; LANES]; 4],
    singles_sums: Option<&estimate::suff::Singles>,
) -> Replicate {
    let (g, pop, design, cfg) = (en.g, en.pop, en.design, en.cfg);
    let n = pop.len();
    let (part, labels, k) = (m.part, m.part.labels(), m.part.count());
    let (contamination_treated, contamination_control) = contamination_shares(cont);
    let suff = m.use_suff.then(|| match singles_sums {
        Some(sums) => sums.finish(),
        None => estimate::suff::Sufficient::collect([y, y0], z, e, &pop.x, labels, k, m.singles),
    });
    let run = |yv: &[f64], kind: EstimatorKind, null_run: bool| -> Outcome {
        if let Some(s) = &suff {
            let o = usize::from(null_run);
            if let Some(out) = s.estimate(kind, o, yv, z, e, en.connected_share, cfg.alpha) {
                return out;
            }
        }
        let ex = estimate::Experiment {
            y: yv,
            z,
            e,
            x: &pop.x,
            more: &pop.covariates,
            cluster: labels,
            clusters: k,
            blocking: m.blocking,
            connected_share: en.connected_share,
        };
        match estimate::analyst(kind) {
            Some(est) => est.estimate(&ex, cfg.alpha),
            // Exposure estimators come from the exposure set-up below.
            None => Err(estimate::Failure::Singular),
        }
    };
    let exposure_runs = en.ht.as_ref().map(|h| {
        let [eff, nul] = h.estimate(g, cfg, part, z, [y, y0]);
        (eff, nul)
    });
    let pick = |kind: EstimatorKind, yv: &[f64], null_run: bool| -> Outcome {
        match (kind, &exposure_runs) {
            (EstimatorKind::Ht, Some((eff, nul))) => {
                if null_run {
                    nul.0
                } else {
                    eff.0
                }
            }
            (EstimatorKind::Hajek, Some((eff, nul))) => {
                if null_run {
                    nul.1
                } else {
                    eff.1
                }
            }
            (EstimatorKind::HajekCr2, Some((eff, nul))) => {
                if null_run {
                    nul.2
                } else {
                    eff.2
                }
            }
            _ => run(yv, kind, null_run),
        }
    };
    let effect: Vec<Outcome> = cfg
        .estimators
        .iter()
        .map(|&kind| pick(kind, y, false))
        .collect();
    let null: Vec<Outcome> = cfg
        .estimators
        .iter()
        .map(|&kind| pick(kind, y0, true))
        .collect();
    let dm_null = match cfg
        .estimators
        .iter()
        .position(|&k| k == EstimatorKind::DmNaive)
    {
        Some(j) if null[j].is_ok() => null[j].as_ref().ok().map(|e| e.value),
        _ => {
            let (t, c) = match &suff {
                Some(s) => s.arm_moments(1),
                None => estimate::arm_moments(y0, z),
            };
            (t.n > 0.0 && c.n > 0.0).then_some(t.mean - c.mean)
        }
    };
    let (effect, null) = match &en.saturation {
        Some(sat) => (
            sat.estimate(design, zc, z, y, cfg.alpha),
            sat.estimate(design, zc, z, y0, cfg.alpha),
        ),
        None => (effect, null),
    };
    let (ri_effect, ri_null) = if en.saturation.is_some() || m.redrawn {
        (vec![None; effect.len()], vec![None; effect.len()])
    } else {
        randomization_p_values(en, r_index, y, y0, &effect, &null)
    };
    let balance = pop.balance.iter().map(|(_, x)| smd(x, z)).collect();
    Replicate {
        balance,
        effect,
        null,
        dm_null,
        ri_effect,
        ri_null,
        contamination_treated,
        contamination_control,
        icc: if m.cluster_design {
            match suff.as_ref().and_then(|s| s.unit_moments(1)) {
                Some(sums) => crate::stats::anova_icc_from_sums(sums, n, k),
                None => anova_icc(y0, labels, k),
            }
        } else {
            None
        },
    }
}

/// How `design` restricted the randomization, for the analysis to follow it.
/// Redrawn partitions are analysed per replicate without blocking.
pub fn blocking(design: &Design) -> estimate::Blocking<'_> {
    use crate::data::design::Scheme;
    match &design.scheme {
        Scheme::Stratified(s) if s.count > 1 => estimate::Blocking::Strata(&s.stratum),
        Scheme::MatchedPairs(p) => estimate::Blocking::Pairs(&p.pairs),
        _ => estimate::Blocking::None,
    }
}

/// Point estimate of `kind` for assignment `z` (exposure `e`) and fixed outcomes `y`.
fn point(en: &Engine, kind: EstimatorKind, y: &[f64], z: &[u8], e: &[f64]) -> Option<f64> {
    match estimate::analyst(kind) {
        Some(est) => est.point(&estimate::Experiment {
            y,
            z,
            e,
            x: &en.pop.x,
            more: &en.pop.covariates,
            cluster: en.design.clusters.labels(),
            clusters: en.design.units(),
            blocking: blocking(en.design),
            connected_share: en.connected_share,
        }),
        None => {
            let (ht, hajek) = en.ht.as_ref()?.points(en.g, en.cfg, z, y);
            if kind == EstimatorKind::Ht {
                ht
            } else {
                hajek
            }
        }
    }
}

/// Fisher randomization p-values for the sharp null of no effect: outcomes
/// held as observed, the design redrawn `cfg.randomization_inference` times,
/// p = (1 + #{|θ*| ≥ |θ|}) / (1 + draws). A redraw where the estimator
/// cannot be computed counts as at least as extreme (conservative).
fn randomization_p_values(
    en: &Engine,
    r_index: usize,
    y: &[f64],
    y0: &[f64],
    effect: &[Outcome],
    null: &[Outcome],
) -> (Vec<Option<f64>>, Vec<Option<f64>>) {
    let cfg = en.cfg;
    let draws = cfg.randomization_inference;
    let m = cfg.estimators.len();
    if draws == 0 {
        return (vec![None; m], vec![None; m]);
    }
    let n = y.len();
    let mut r = rng::draws(
        cfg.seed,
        &[
            rng::purpose::RANDOMIZATION_INFERENCE,
            en.design_index as u64,
            r_index as u64,
        ],
    );
    let (mut zc, mut z) = (Vec::new(), vec![0u8; n]);
    let mut e = vec![0.0f64; n];
    let needs_e = cfg.estimators.contains(&EstimatorKind::Regression);
    let (mut over_eff, mut over_null) = (vec![0usize; m], vec![0usize; m]);
    for _ in 0..draws {
        en.design.draw(&mut r, &mut zc, &mut z);
        if needs_e {
            en.op.apply(en.g, en.pop, &z, &zc, &mut e);
        }
        for (j, &kind) in cfg.estimators.iter().enumerate() {
            for (yv, obs, over) in [
                (y, &effect[j], &mut over_eff[j]),
                (y0, &null[j], &mut over_null[j]),
            ] {
                if let Ok(o) = obs {
                    match point(en, kind, yv, &z, &e) {
                        Some(v) if v.abs() < o.value.abs() - 1e-12 * o.value.abs().max(1.0) => {}
                        _ => *over += 1,
                    }
                }
            }
        }
    }
    let p = |over: usize| (1 + over) as f64 / (1 + draws) as f64;
    let pick = |outs: &[Outcome], over: &[usize]| -> Vec<Option<f64>> {
        outs.iter()
            .zip(over)
            .map(|(o, &k)| o.is_ok().then(|| p(k)))
            .collect()
    };
    (pick(effect, &over_eff), pick(null, &over_null))
}

/// All replicates of one design, in replicate order, and the per-cluster
/// contamination averaged over replicates (cluster designs).
pub struct DesignRun {
    /// Replicates, in order.
    pub replicates: Vec<Replicate>,
    /// Per cluster: share of its members' in-weight from the other arm, averaged over replicates.
    pub cluster_contamination: Option<Vec<f64>>,
    /// The exposure estimand and exclusions, when HT or Hájek ran.
    pub exposure: Option<ExposureDiagnosis>,
    /// Estimator names, in column order.
    pub estimator_names: Vec<String>,
    /// Per estimator: its own estimand when it is not the global effect.
    pub own_truths: Vec<Option<f64>>,
}

/// The exposure contrast of one design: what HT and Hájek target.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ExposureDiagnosis {
    /// Mapping name.
    pub mapping: String,
    /// `exact` or `estimated from N auxiliary assignments`.
    pub probabilities: String,
    /// For estimated probabilities: the largest Monte Carlo SE, sqrt(π(1 − π)/draws),
    /// over included nodes and both conditions.
    pub probability_max_mc_se: Option<f64>,
    /// The probability floor.
    pub floor: f64,
    /// Nodes excluded (a condition's probability below the floor).
    pub excluded_nodes: usize,
    /// Their share of all nodes.
    pub excluded_share: f64,
    /// Mean over included nodes of Y(full treated exposure) − Y(full control exposure).
    pub estimand: f64,
    /// Exact SD of HT under cluster Bernoulli randomization, where it applies.
    pub ht_exact_sd: Option<f64>,
    /// A warning for the report, e.g. when most nodes are excluded.
    pub warning: Option<String>,
}

/// Replicates per block: the unit of parallel work, of summation and of sharding.
pub const BLOCK: usize = CHUNK;

/// The replicates of a run of consecutive blocks of one design, with each
/// block's per-cluster sums of other-arm in-weight (summed in replicate
/// order within the block; blocks are summed in order when assembled, so a
/// run split into shards at block boundaries adds up exactly as one run).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DesignPart {
    /// First replicate (a multiple of [`BLOCK`]).
    pub first: usize,
    /// The replicates, in order.
    pub replicates: Vec<Replicate>,
    /// Per block: per cluster, the other-arm in-weight summed over its replicates.
    pub block_sums: Vec<Vec<f64>>,
}

/// What a design's run reports besides its replicates (from its set-up).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DesignMeta {
    /// The exposure contrast, when HT or Hájek ran.
    pub exposure: Option<ExposureDiagnosis>,
    /// Estimator names, in column order.
    pub estimator_names: Vec<String>,
    /// Per estimator: its own estimand when it is not the global effect.
    pub own_truths: Vec<Option<f64>>,
}

/// Run every replicate of `design`; `tick` is called once per finished replicate.
pub fn run_design(
    g: &Graph,
    pop: &Population,
    design: &Design,
    cfg: &SimConfig,
    design_index: usize,
    tick: &(dyn Fn() + Sync),
) -> Result<DesignRun> {
    let (meta, part) = run_design_part(g, pop, design, cfg, design_index, 0..cfg.replicates, tick)?;
    Ok(assemble(pop, design, cfg, meta, vec![part]))
}

/// Run replicates `range` of `design` (its start a multiple of [`BLOCK`]).
pub fn run_design_part(
    g: &Graph,
    pop: &Population,
    design: &Design,
    cfg: &SimConfig,
    design_index: usize,
    range: std::ops::Range<usize>,
    tick: &(dyn Fn() + Sync),
) -> Result<(DesignMeta, DesignPart)> {
    let k = design.units();
    let cluster_design = design.spec.unit == Unit::Cluster;
    let width = if cluster_design && !design.is_redrawn() {
        k
    } else {
        0
    };
    let mut replicates = Vec::with_capacity(range.len());
    let mut block_sums = Vec::new();
    // A cancelled run does not build the next design's set-up.
    if cfg.cancel.is_cancelled() {
        return Err(crate::Error::Cancelled);
    }
    let engine = Engine::new(g, pop, design, cfg, design_index)?;
    // Workers' buffers outlive a chunk: a batch's counts are tens of MB.
    let pool = std::sync::Mutex::new(Vec::new());
    let lanes = engine.batch_lanes.max(1);
    for start in range.clone().step_by(CHUNK) {
        let end = (start + CHUNK).min(range.end);
        let batches: Vec<Vec<(Replicate, Vec<f64>)>> = (start..end)
            .step_by(lanes)
            .collect::<Vec<_>>()
            .into_par_iter()
            .map_init(
                || Pooled::take(&pool),
                |pooled, first| {
                    let scratch = &mut pooled.scratch;
                    engine.replicate_batch(first..(first + lanes).min(end), width, scratch, tick)
                },
            )
            .collect::<Result<_>>()?;
        let mut sum = vec![0.0f64; width];
        for (rep, other) in batches.into_iter().flatten() {
            for (s, o) in sum.iter_mut().zip(&other) {
                *s += o;
            }
            replicates.push(rep);
        }
        block_sums.push(sum);
    }
    let meta = design_meta(&engine, pop, cfg);
    Ok((
        meta,
        DesignPart {
            first: range.start,
            replicates,
            block_sums,
        },
    ))
}

/// One design's run from its parts, in order of their first replicate.
pub fn assemble(
    pop: &Population,
    design: &Design,
    cfg: &SimConfig,
    meta: DesignMeta,
    parts: Vec<DesignPart>,
) -> DesignRun {
    let k = design.units();
    let cluster_design = design.spec.unit == Unit::Cluster;
    let width = if cluster_design && !design.is_redrawn() {
        k
    } else {
        0
    };
    let mut other_sum = vec![0.0f64; width];
    let mut replicates = Vec::with_capacity(cfg.replicates);
    for part in parts {
        for block in &part.block_sums {
            for (s, o) in other_sum.iter_mut().zip(block) {
                *s += o;
            }
        }
        replicates.extend(part.replicates);
    }
    let cluster_contamination = (cluster_design && !design.is_redrawn()).then(|| {
        let mut total = vec![0.0f64; k];
        for (i, &c) in design.clusters.labels().iter().enumerate() {
            let inv = pop.inv_in_strength[i];
            if inv > 0.0 {
                total[c as usize] += 1.0 / inv;
            }
        }
        other_sum
            .iter()
            .zip(&total)
            .map(|(o, t)| {
                if *t > 0.0 {
                    o / (t * cfg.replicates as f64)
                } else {
                    0.0
                }
            })
            .collect()
    });
    DesignRun {
        replicates,
        cluster_contamination,
        exposure: meta.exposure,
        estimator_names: meta.estimator_names,
        own_truths: meta.own_truths,
    }
}

fn design_meta(engine: &Engine, pop: &Population, cfg: &SimConfig) -> DesignMeta {
    let exposure = engine.ht.as_ref().map(|h| {
        let n = pop.len();
        let excluded = h.included.iter().filter(|&&b| !b).count();
        let share = excluded as f64 / n.max(1) as f64;
        ExposureDiagnosis {
            mapping: cfg.exposure.mapping.name(),
            probabilities: match h.probs.method {
                crate::data::exposure::Method::Exact => "exact".into(),
                crate::data::exposure::Method::Estimated { draws } => {
                    format!("estimated from {draws} auxiliary assignments")
                }
            },
            probability_max_mc_se: match h.probs.method {
                crate::data::exposure::Method::Exact => None,
                crate::data::exposure::Method::Estimated { draws } => Some(
                    h.probs
                        .treated
                        .iter()
                        .chain(&h.probs.control)
                        .zip(h.included.iter().chain(&h.included))
                        .filter(|(_, &inc)| inc)
                        .map(|(&p, _)| (p * (1.0 - p) / draws as f64).sqrt())
                        .fold(0.0, f64::max),
                ),
            },
            floor: cfg.exposure.floor,
            excluded_nodes: excluded,
            excluded_share: share,
            estimand: h.estimand,
            ht_exact_sd: h.exact_sd,
            warning: (share > 0.0).then(|| {
                format!(
                    "{excluded} of {n} nodes ({:.1}%) have an exposure probability below {} and are excluded from the HT/Hájek estimand{}",
                    100.0 * share,
                    cfg.exposure.floor,
                    if share > 0.5 { ": this design cannot support this exposure mapping for most users" } else { "" }
                )
            }),
        }
    });
    let estimator_names = engine.estimator_names();
    let own_truths = match &engine.saturation {
        Some(sat) => sat.truths.iter().map(|&t| Some(t)).collect(),
        None => cfg
            .estimators
            .iter()
            .map(|k| match (&exposure, k.is_exposure()) {
                (Some(x), true) => Some(x.estimand),
                _ => None,
            })
            .collect(),
    };
    DesignMeta {
        exposure,
        estimator_names,
        own_truths,
    }
}

/// Run every design of `p`; `tick` is called once per finished replicate.
pub fn simulate(p: &Prepared, tick: &(dyn Fn() + Sync)) -> Result<Vec<DesignRun>> {
    simulate_rest(p, Vec::new(), tick)
}

/// [`simulate`] with some designs' runs already done (`done[i]` for design
/// `i`; missing or `None` ones are simulated here, in order).
pub fn simulate_rest(
    p: &Prepared,
    done: Vec<Option<DesignRun>>,
    tick: &(dyn Fn() + Sync),
) -> Result<Vec<DesignRun>> {
    let mut done = done.into_iter();
    p.designs
        .iter()
        .enumerate()
        .map(|(i, d)| match done.next().flatten() {
            Some(run) => Ok(run),
            None => run_design(&p.graph, &p.population, d, &p.config, i, tick),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

    /// Arms (some neither 0 nor 1), exposures and in-strengths of `n` users.
    fn block(r: &mut crate::rng::Rng, n: usize) -> (Vec<u8>, Vec<f64>, Vec<f64>) {
        let z = (0..n)
            .map(|_| [0, 1, 1, 2, 255][r.random_range(0..5)])
            .collect();
        let e = (0..n).map(|_| r.random::<f64>()).collect();
        let s = (0..n).map(|_| 1.0 + 100.0 * r.random::<f64>()).collect();
        (z, e, s)
    }

    /// The contamination sums, on whichever copy this CPU runs, equal each
    /// user added on its own to lane (position mod 4), bit for bit, over
    /// blocks whose lengths are and are not multiples of the lanes.
    #[test]
    fn contamination_sums_equal_each_user_added() {
        let mut r = crate::rng::stream(23, &[]);
        for n in [0usize, 1, 3, 4, 5, 17, 1024, 1027] {
            let (z, e, s) = block(&mut r, n);
            let start = [[0.5, -1.0, 2.0, 1e-3]; 4];
            let mut got = start;
            contamination(&z, &e, &s, &mut got);
            let mut want = start;
            for i in 0..n {
                let (l, t) = (i % LANES, f64::from(u8::from(z[i] == 1)));
                want[0][l] += s[i];
                want[1][l] += s[i] * e[i];
                want[2][l] += t * s[i];
                want[3][l] += t * (s[i] * e[i]);
            }
            let bits = |x: &[[f64; LANES]; 4]| x.map(|l| l.map(f64::to_bits));
            assert_eq!(bits(&got), bits(&want), "n {n}");
        }
    }

    /// Issue 14: the AVX2 build of the contamination sums agrees with the
    /// baseline build bit for bit (both share one body, so this checks the
    /// compiler; the test above checks the body). (Without AVX2 there is
    /// nothing to compare, and the test says so.)
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_contamination_equals_the_baseline() {
        if !crate::simd::avx2() {
            eprintln!("no AVX2 on this CPU: only the baseline runs");
            return;
        }
        let mut r = crate::rng::stream(22, &[]);
        for n in [0usize, 1, 3, 4, 5, 17, 1024, 1027] {
            let (z, e, s) = block(&mut r, n);
            let start = [[0.5, -1.0, 2.0, 1e-3]; 4];
            let (mut a, mut b) = (start, start);
            contamination_body(&z, &e, &s, &mut a);
            // SAFETY: this CPU has AVX2 (checked above).
            unsafe { contamination_avx2(&z, &e, &s, &mut b) };
            let bits = |x: &[[f64; LANES]; 4]| x.map(|l| l.map(f64::to_bits));
            assert_eq!(bits(&a), bits(&b), "n {n}");
        }
    }
}
