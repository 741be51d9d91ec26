//! The model: the population and its potential outcomes.
//!
//! This module owns [`OutcomeSpec`] (the `[outcome]` section of a scenario)
//! and [`Population`] (the fixed finite population drawn once per scenario
//! from its seed: baselines α_i with a chosen intra-cluster correlation over
//! the graph's communities, effects τ_i, a pre-period covariate). The exact
//! global effect computed from it is the inquiry's
//! ([`crate::inquiry::global_effect`]).
//!
//! Continuous outcomes: `Y_i(z) = α_i + τ_i·z_i + γ·f(e_i(z)) + ε_i`, with
//! `e_i(z)` the weighted share of i's (in-)neighbours that are treated, `f`
//! linear or a threshold `1[e ≥ θ]`, and ε_i per-replicate noise. Binary
//! outcomes: `Y_i ~ Bernoulli(logistic(logit(base_rate) + α_i + τ_i·z_i + γ·f(e_i)))`.

pub mod exposure;
pub mod file;

use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::partition::Partition;
use crate::rng::{self, Rng};
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

/// Continuous or binary metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A continuous metric (time spent, messages sent).
    #[default]
    Continuous,
    /// A rate (retention, spam reports): logistic link with a base rate.
    Binary,
}

/// How the exposure share enters the outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExposureFn {
    /// f(e) = e: linear in means.
    #[default]
    Linear,
    /// f(e) = 1[e ≥ threshold].
    Threshold,
}

/// Constant or heterogeneous direct effects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Heterogeneity {
    /// τ_i = τ.
    #[default]
    Constant,
    /// τ_i = τ · degree_i / mean degree (mean τ).
    Degree,
}

/// Which groups carry the intra-cluster correlation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IccGroups {
    /// Planted communities if the generator has them, else Louvain.
    #[default]
    Auto,
    /// The generator's planted communities (an error if there are none).
    Planted,
    /// A Louvain partition (resolution 1, the scenario's seed).
    Louvain,
}

fn d_one() -> f64 {
    1.0
}
fn d_icc() -> f64 {
    0.05
}
fn d_half() -> f64 {
    0.5
}
fn d_effect() -> f64 {
    0.1
}
fn d_base() -> f64 {
    0.1
}

/// The `[outcome]` section of a scenario. Every key has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeSpec {
    /// `continuous` (default) or `binary`.
    #[serde(default)]
    pub kind: Kind,
    /// Mean of Y(0) for continuous outcomes (default 0).
    #[serde(default)]
    pub mean: f64,
    /// SD of Y(0) (continuous) or of the latent baseline on the log-odds scale (binary); default 1.
    #[serde(default = "d_one")]
    pub sd: f64,
    /// Intra-cluster correlation of Y(0) over the ICC groups, in [0, 1); default 0.05.
    #[serde(default = "d_icc")]
    pub icc: f64,
    /// Continuous: share of the individual variance that is per-replicate noise, in [0, 1]; default 0.5.
    #[serde(default = "d_half")]
    pub noise_share: f64,
    /// τ: direct effect (outcome units; log-odds for binary); default 0.1.
    #[serde(default = "d_effect")]
    pub direct_effect: f64,
    /// `constant` (default) or `degree` (τ_i proportional to degree, mean τ).
    #[serde(default)]
    pub heterogeneity: Heterogeneity,
    /// γ: spillover effect of a fully treated neighbourhood; default 0.1.
    #[serde(default = "d_effect")]
    pub spillover: f64,
    /// `linear` (default) or `threshold`.
    #[serde(default)]
    pub exposure: ExposureFn,
    /// θ for threshold exposure, in (0, 1]; default 0.5.
    #[serde(default = "d_half")]
    pub threshold: f64,
    /// Binary: rate under control with a zero baseline; in (0, 1); default 0.1.
    #[serde(default = "d_base")]
    pub base_rate: f64,
    /// Correlation of the pre-period covariate with the baseline α, in [0, 1]; default 0 (no information).
    #[serde(default)]
    pub covariate_correlation: f64,
    /// Groups carrying the ICC: `auto` (default), `planted` or `louvain`.
    #[serde(default)]
    pub icc_groups: IccGroups,
}

impl Default for OutcomeSpec {
    fn default() -> Self {
        OutcomeSpec {
            kind: Kind::Continuous,
            mean: 0.0,
            sd: 1.0,
            icc: 0.05,
            noise_share: 0.5,
            direct_effect: 0.1,
            heterogeneity: Heterogeneity::Constant,
            spillover: 0.1,
            exposure: ExposureFn::Linear,
            threshold: 0.5,
            base_rate: 0.1,
            covariate_correlation: 0.0,
            icc_groups: IccGroups::Auto,
        }
    }
}

fn range(name: &str, v: f64, ok: bool, expected: &str) -> Result<()> {
    if ok && v.is_finite() {
        Ok(())
    } else {
        Err(Error::parameter(format!("[outcome] {name}"), v, expected))
    }
}

impl OutcomeSpec {
    /// Check every value's range.
    pub fn validate(&self) -> Result<()> {
        range("sd", self.sd, self.sd > 0.0, "a number > 0")?;
        range(
            "icc",
            self.icc,
            (0.0..1.0).contains(&self.icc),
            "a number in [0, 1)",
        )?;
        range(
            "noise_share",
            self.noise_share,
            (0.0..=1.0).contains(&self.noise_share),
            "a number in [0, 1]",
        )?;
        range("mean", self.mean, true, "a finite number")?;
        range("direct_effect", self.direct_effect, true, "a finite number")?;
        range("spillover", self.spillover, true, "a finite number")?;
        range(
            "threshold",
            self.threshold,
            self.threshold > 0.0 && self.threshold <= 1.0,
            "a number in (0, 1]",
        )?;
        range(
            "base_rate",
            self.base_rate,
            self.base_rate > 0.0 && self.base_rate < 1.0,
            "a number in (0, 1)",
        )?;
        range(
            "covariate_correlation",
            self.covariate_correlation,
            (0.0..=1.0).contains(&self.covariate_correlation),
            "a number in [0, 1]",
        )
    }

    /// The same model with every effect set to zero (the null run).
    pub fn null(&self) -> OutcomeSpec {
        OutcomeSpec {
            direct_effect: 0.0,
            spillover: 0.0,
            ..self.clone()
        }
    }
}

/// The fixed finite population of a scenario.
#[derive(Debug, Clone)]
pub struct Population {
    /// Metric kind.
    pub kind: Kind,
    /// Baseline α_i (continuous: includes the mean; binary: latent log-odds offset).
    pub alpha: Vec<f64>,
    /// Direct effect τ_i.
    pub tau: Vec<f64>,
    /// Pre-period covariate.
    pub x: Vec<f64>,
    /// SD of per-replicate noise (continuous).
    pub noise_sd: f64,
    /// γ.
    pub gamma: f64,
    /// Exposure function.
    pub exposure: ExposureFn,
    /// θ.
    pub threshold: f64,
    /// logit(base_rate), binary.
    pub logit_base: f64,
    /// 1 / (in-strength without self-loops, [`exposure::in_strength`]), 0
    /// for users without other in-neighbours.
    pub inv_in_strength: Vec<f64>,
    /// The groups carrying the ICC.
    pub groups: Partition,
    /// Per-user noise SD (a population file with `metric_next`); empty: `noise_sd` for all.
    pub noise_scale: Vec<f64>,
    /// Pre-period variables whose balance between arms is reported (the
    /// metric and the covariates of a population file; empty otherwise).
    pub balance: Vec<(String, Vec<f64>)>,
    /// The categorical column of a population file: (name, categories, each user's).
    pub categories: Option<(String, Vec<String>, Vec<u32>)>,
    /// A population file's numeric covariates, which CUPED adjusts for with `x`.
    pub covariates: Vec<Vec<f64>>,
    /// What the population file's metric looks like (None for synthetic populations).
    pub metric: Option<MetricSummary>,
}

/// 1 / in-strength of every user without self-loops (0 without other in-neighbours).
fn inverse_in_strengths(graph: &Graph) -> Vec<f64> {
    (0..graph.node_count() as u32)
        .map(|i| {
            let s = exposure::in_strength(graph, i);
            if s > 0.0 {
                1.0 / s
            } else {
                0.0
            }
        })
        .collect()
}

/// Most categories of the strata column whose shares are balance-checked.
pub const MAX_BALANCE_CATEGORIES: usize = 20;

/// The real metric of a population file, as measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricSummary {
    /// Column name.
    pub name: String,
    /// Users.
    pub users: usize,
    /// Mean.
    pub mean: f64,
    /// Standard deviation (population).
    pub sd: f64,
    /// Skewness (population moment ratio).
    pub skew: f64,
    /// Whether the metric is 0/1 (a rate: logistic model).
    pub binary: bool,
    /// Users of the file without edges (isolated).
    pub isolated: usize,
    /// Users of the edge list the file lacked (dropped).
    pub dropped: usize,
    /// How the metric drives the simulation.
    pub model: String,
}

/// A block of users in the common case of [`Population::observe_block`]: a
/// continuous metric with one noise scale.
struct Continuous<'a> {
    sd: f64,
    gamma: f64,
    /// The threshold exposure's cut, if the exposure is thresholded.
    threshold: Option<f64>,
    /// Every user's direct effect, where `taus` is empty.
    tau: f64,
    /// Per-user direct effects, or empty.
    taus: &'a [f64],
    alpha: &'a [f64],
    z: &'a [u8],
    e: &'a [f64],
    noise: &'a [f64],
}

/// [`observe_continuous`] compiled for AVX2 (four users a step, where the
/// baseline has two): the same IEEE operations user by user.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn observe_continuous_avx2(c: &Continuous, y: &mut [f64], y0: &mut [f64]) {
    observe_continuous(c, y, y0)
}

/// Outcomes `y` (model) and `y0` (null) of the block `c`; one plain loop
/// per case, so each is branch-free and vectorizes.
#[inline(always)]
fn observe_continuous(c: &Continuous, y: &mut [f64], y0: &mut [f64]) {
    let n = c.z.len();
    let (z, alpha, e, noise) = (c.z, &c.alpha[..n], &c.e[..n], &c.noise[..n]);
    let (y, y0) = (&mut y[..n], &mut y0[..n]);
    let (sd, gamma, tau) = (c.sd, c.gamma, c.tau);
    macro_rules! rows {
        ($f:expr, $t:expr) => {
            for j in 0..n {
                let zf = f64::from(u8::from(z[j] == 1));
                let eta = alpha[j] + zf * $t(j) + gamma * $f(e[j]);
                y[j] = eta + sd * noise[j];
                y0[j] = alpha[j] + sd * noise[j];
            }
        };
    }
    match (c.threshold, c.taus.is_empty()) {
        (None, true) => rows!(|ej| ej, |_| tau),
        (Some(thr), true) => rows!(|ej| f64::from(u8::from(ej >= thr)), |_| tau),
        (None, false) => {
            let taus = &c.taus[..n];
            rows!(|ej| ej, |j: usize| taus[j])
        }
        (Some(thr), false) => {
            let taus = &c.taus[..n];
            rows!(|ej| f64::from(u8::from(ej >= thr)), |j: usize| taus[j])
        }
    }
}

impl Population {
    /// Draw the population for `graph` with ICC over `groups`, from `seed`.
    pub fn draw(spec: &OutcomeSpec, graph: &Graph, groups: Partition, seed: u64) -> Result<Self> {
        spec.validate()?;
        let n = graph.node_count();
        let mut r: Rng = rng::stream(seed, &[rng::purpose::OUTCOME]);
        let sd2 = spec.sd * spec.sd;
        let var_u = spec.icc * sd2;
        let (var_v, var_e) = match spec.kind {
            Kind::Continuous => (
                (1.0 - spec.icc) * (1.0 - spec.noise_share) * sd2,
                (1.0 - spec.icc) * spec.noise_share * sd2,
            ),
            Kind::Binary => ((1.0 - spec.icc) * sd2, 0.0),
        };
        let normal = |r: &mut Rng| -> f64 { StandardNormal.sample(r) };
        let u: Vec<f64> = (0..groups.count())
            .map(|_| var_u.sqrt() * normal(&mut r))
            .collect();
        let base = if spec.kind == Kind::Continuous {
            spec.mean
        } else {
            0.0
        };
        let alpha: Vec<f64> = (0..n)
            .map(|i| base + u[groups.labels()[i] as usize] + var_v.sqrt() * normal(&mut r))
            .collect();
        let degree: Vec<f64> = (0..n as u32).map(|i| graph.in_degree(i) as f64).collect();
        let mean_degree = degree.iter().sum::<f64>() / n.max(1) as f64;
        let tau: Vec<f64> = match spec.heterogeneity {
            Heterogeneity::Constant => vec![spec.direct_effect; n],
            Heterogeneity::Degree if mean_degree > 0.0 => degree
                .iter()
                .map(|d| spec.direct_effect * d / mean_degree)
                .collect(),
            Heterogeneity::Degree => vec![spec.direct_effect; n],
        };
        // Covariate X = α + η with corr(X, α) = ρ in the model: Var(η) = Var(α)(1/ρ² − 1).
        let var_alpha = var_u + var_v;
        let rho = spec.covariate_correlation;
        let x: Vec<f64> = alpha
            .iter()
            .map(|&a| {
                if rho > 0.0 {
                    a + (var_alpha * (1.0 / (rho * rho) - 1.0)).sqrt() * normal(&mut r)
                } else {
                    normal(&mut r)
                }
            })
            .collect();
        let inv_in_strength = inverse_in_strengths(graph);
        Ok(Population {
            kind: spec.kind,
            alpha,
            tau,
            x,
            noise_sd: var_e.sqrt(),
            gamma: spec.spillover,
            exposure: spec.exposure,
            threshold: spec.threshold,
            logit_base: (spec.base_rate / (1.0 - spec.base_rate)).ln(),
            inv_in_strength,
            groups,
            noise_scale: Vec::new(),
            balance: Vec::new(),
            categories: None,
            covariates: Vec::new(),
            metric: None,
        })
    }

    /// The population of a population file matched to `graph`: the real
    /// metric is each user's baseline, the effect model of `spec` applies on
    /// top (τ, heterogeneity, γ, exposure function).
    ///
    /// Continuous metric m: without `metric_next`, α_i = m̄ + √(1 − s)(m_i − m̄)
    /// and per-replicate noise N(0, s·Var m) with s = `noise_share`, so Y(0)
    /// keeps the metric's mean and variance, and the metric's skew and
    /// network correlation drive the simulation; with `metric_next` m′,
    /// α_i = m_i and user i's noise is N(0, (m′_i − m_i)²/2), the
    /// period-to-period change. A 0/1 metric is a rate: each user's
    /// propensity is their ICC group's rate, smoothed toward the overall
    /// rate r̄ as (S_g + r̄)/(n_g + 1) (a single 0/1 observation says little
    /// about one user), entering the logistic model as
    /// logit(p_i) = logit(r̄) + α_i. The CUPED/regression covariate is the
    /// metric itself (the pre-period value of the outcome).
    pub fn from_table(
        spec: &OutcomeSpec,
        graph: &Graph,
        matched: &file::Matched,
        groups: Partition,
    ) -> Result<Self> {
        spec.validate()?;
        let t = &matched.table;
        let n = graph.node_count();
        let m = &t.metric;
        let mom = crate::stats::Moments::of(m);
        let mean = mom.mean;
        let var = if mom.n > 0.0 { mom.m2 / mom.n } else { 0.0 };
        let sd = var.sqrt();
        let skew = if sd > 0.0 {
            m.iter().map(|x| ((x - mean) / sd).powi(3)).sum::<f64>() / mom.n
        } else {
            0.0
        };
        let binary = m.iter().all(|&x| x == 0.0 || x == 1.0);
        let degree: Vec<f64> = (0..n as u32).map(|i| graph.in_degree(i) as f64).collect();
        let mean_degree = degree.iter().sum::<f64>() / n.max(1) as f64;
        let tau: Vec<f64> = match spec.heterogeneity {
            Heterogeneity::Degree if mean_degree > 0.0 => degree
                .iter()
                .map(|d| spec.direct_effect * d / mean_degree)
                .collect(),
            _ => vec![spec.direct_effect; n],
        };
        let inv_in_strength = inverse_in_strengths(graph);
        let (kind, alpha, noise_sd, noise_scale, logit_base, model) = if binary {
            let rate = mean;
            if rate <= 0.0 || rate >= 1.0 {
                return Err(Error::input(format!(
                    "[population] metric {:?} is 0/1 with rate {rate}: expected both values \
                     to occur (a rate strictly between 0 and 1)",
                    matched.metric_name
                )));
            }
            let k = groups.count();
            let (mut sum, mut count) = (vec![0.0; k], vec![0.0; k]);
            for (i, &g) in groups.labels().iter().enumerate() {
                sum[g as usize] += m[i];
                count[g as usize] += 1.0;
            }
            let logit = |p: f64| (p / (1.0 - p)).ln();
            let base = logit(rate);
            let alpha = groups
                .labels()
                .iter()
                .map(|&g| logit((sum[g as usize] + rate) / (count[g as usize] + 1.0)) - base)
                .collect();
            (
                Kind::Binary,
                alpha,
                0.0,
                Vec::new(),
                base,
                "a rate: logistic model around each user's ICC-group rate, smoothed toward the \
                 overall rate"
                    .to_string(),
            )
        } else if let Some(next) = &t.metric_next {
            let scale = m
                .iter()
                .zip(next)
                .map(|(a, b)| (b - a).abs() / std::f64::consts::SQRT_2)
                .collect();
            (
                Kind::Continuous,
                m.clone(),
                0.0,
                scale,
                0.0,
                "baseline = metric; per-replicate noise from the period-to-period change \
                 N(0, (next − metric)²/2)"
                    .to_string(),
            )
        } else {
            let s = spec.noise_share;
            let shrink = (1.0 - s).sqrt();
            (
                Kind::Continuous,
                m.iter().map(|x| mean + shrink * (x - mean)).collect(),
                (s * var).sqrt(),
                Vec::new(),
                0.0,
                format!(
                    "baseline = mean + √(1 − {s})·(metric − mean); per-replicate noise \
                     N(0, {s}·Var metric)"
                ),
            )
        };
        let mut balance = vec![(matched.metric_name.clone(), m.clone())];
        balance.extend(t.covariates.iter().cloned());
        // A categorical column is balanced through its categories' shares:
        // one 0/1 indicator per category (the 20 most common, in file order).
        if let Some((name, cats, codes)) = &t.strata {
            let mut freq = vec![0usize; cats.len()];
            for &c in codes {
                freq[c as usize] += 1;
            }
            let mut order: Vec<usize> = (0..cats.len()).collect();
            order.sort_by(|&a, &b| freq[b].cmp(&freq[a]).then(a.cmp(&b)));
            order.truncate(MAX_BALANCE_CATEGORIES);
            order.sort_unstable();
            for c in order {
                balance.push((
                    format!("{name}={}", cats[c]),
                    codes
                        .iter()
                        .map(|&x| f64::from(u8::from(x as usize == c)))
                        .collect(),
                ));
            }
        }
        Ok(Population {
            kind,
            alpha,
            tau,
            x: m.clone(),
            noise_sd,
            gamma: spec.spillover,
            exposure: spec.exposure,
            threshold: spec.threshold,
            logit_base,
            inv_in_strength,
            groups,
            noise_scale,
            balance,
            categories: t.strata.clone(),
            covariates: t.covariates.iter().map(|(_, v)| v.clone()).collect(),
            metric: Some(MetricSummary {
                name: matched.metric_name.clone(),
                users: n,
                mean,
                sd,
                skew,
                binary,
                isolated: matched.isolated,
                dropped: matched.dropped,
                model,
            }),
        })
    }

    /// Per-replicate noise variance of user `i` (continuous metrics).
    pub fn noise_var(&self, i: usize) -> f64 {
        let s = self.noise_scale.get(i).copied().unwrap_or(self.noise_sd);
        s * s
    }

    /// [`Population::observe`] with user `i`'s own noise scale.
    pub fn observe_user(&self, i: usize, mean: f64, draw: f64) -> f64 {
        match (self.kind, self.noise_scale.get(i)) {
            (Kind::Continuous, Some(s)) => mean + s * draw,
            _ => self.observe(mean, draw),
        }
    }

    /// The direct effect when every user has the same one.
    ///
    /// # Complexity
    /// O(users).
    pub fn uniform_tau(&self) -> Option<f64> {
        let t = *self.tau.first()?;
        self.tau
            .iter()
            .all(|v| v.to_bits() == t.to_bits())
            .then_some(t)
    }

    /// Number of units.
    pub fn len(&self) -> usize {
        self.alpha.len()
    }

    /// Whether the population is empty.
    pub fn is_empty(&self) -> bool {
        self.alpha.is_empty()
    }

    /// f(e).
    pub fn f(&self, e: f64) -> f64 {
        match self.exposure {
            ExposureFn::Linear => e,
            ExposureFn::Threshold => f64::from(u8::from(e >= self.threshold)),
        }
    }

    /// Expected outcome of unit `i` given its treatment and exposure (before noise):
    /// the mean for continuous outcomes, the probability for binary ones.
    pub fn mean_outcome(&self, i: usize, z: bool, e: f64) -> f64 {
        let eta = self.alpha[i] + f64::from(u8::from(z)) * self.tau[i] + self.gamma * self.f(e);
        match self.kind {
            Kind::Continuous => eta,
            Kind::Binary => 1.0 / (1.0 + (-(self.logit_base + eta)).exp()),
        }
    }

    /// Expected outcome under the null model (every effect zero).
    pub fn null_mean_outcome(&self, i: usize) -> f64 {
        match self.kind {
            Kind::Continuous => self.alpha[i],
            Kind::Binary => 1.0 / (1.0 + (-(self.logit_base + self.alpha[i])).exp()),
        }
    }

    /// Observed outcome: the mean plus noise (continuous, `draw` a standard
    /// normal) or a Bernoulli draw (binary, `draw` uniform on [0, 1)).
    pub fn observe(&self, mean: f64, draw: f64) -> f64 {
        match self.kind {
            Kind::Continuous => mean + self.noise_sd * draw,
            Kind::Binary => f64::from(u8::from(draw < mean)),
        }
    }

    /// Fill `out` with consecutive noise draws from `noise`: standard normals
    /// for a continuous metric (scaled by [`Population::observe`]), uniforms
    /// on [0, 1) for a binary one.
    ///
    /// # Complexity
    /// O(out.len()).
    pub fn noise_fill(&self, noise: &mut crate::rng::Noise, out: &mut [f64]) {
        match self.kind {
            Kind::Continuous => noise.normals(out),
            Kind::Binary => noise.uniforms(out),
        }
    }

    /// The observed outcomes of users `start..start + z.len()` under the
    /// model (`y`) and the null model (`y0`), from their arms `z`, exposures
    /// `e` and noise draws `noise`: for each user exactly
    /// [`Population::observe_user`] of [`Population::mean_outcome`] and of
    /// [`Population::null_mean_outcome`] with the same draw. `tau`, when
    /// given, is every user's direct effect (see [`Population::uniform_tau`]),
    /// so the per-user effects are not read.
    ///
    /// # Complexity
    /// O(users in the block); the common case (a continuous metric with one
    /// noise scale) is a branch-free loop.
    #[allow(clippy::too_many_arguments)]
    pub fn observe_block(
        &self,
        start: usize,
        tau: Option<f64>,
        z: &[u8],
        e: &[f64],
        noise: &[f64],
        y: &mut [f64],
        y0: &mut [f64],
    ) {
        let n = z.len();
        let (e, noise, y, y0) = (&e[..n], &noise[..n], &mut y[..n], &mut y0[..n]);
        let alpha = &self.alpha[start..start + n];
        if self.kind == Kind::Continuous && self.noise_scale.is_empty() {
            let taus = match tau {
                Some(_) => &[][..],
                None => &self.tau[start..start + n],
            };
            let threshold = (self.exposure == ExposureFn::Threshold).then_some(self.threshold);
            let c = Continuous {
                sd: self.noise_sd,
                gamma: self.gamma,
                threshold,
                tau: tau.unwrap_or(0.0),
                taus,
                alpha,
                z,
                e,
                noise,
            };
            #[cfg(target_arch = "x86_64")]
            if crate::simd::avx2() {
                // SAFETY: this CPU has AVX2.
                unsafe { observe_continuous_avx2(&c, y, y0) };
                return;
            }
            observe_continuous(&c, y, y0);
        } else {
            for j in 0..n {
                let i = start + j;
                y[j] = self.observe_user(i, self.mean_outcome(i, z[j] == 1, e[j]), noise[j]);
                y0[j] = self.observe_user(i, self.null_mean_outcome(i), noise[j]);
            }
        }
    }

    /// Per-unit noise variance averaged over units, and the finite-population
    /// variance (n − 1) of the mean outcome under control: together the
    /// variance of Y(0) a user-level design faces.
    pub fn control_variance(&self) -> (f64, f64) {
        let n = self.len();
        let means: Vec<f64> = (0..n).map(|i| self.mean_outcome(i, false, 0.0)).collect();
        let m = crate::stats::Moments::of(&means);
        let noise = match self.kind {
            Kind::Continuous if self.noise_scale.is_empty() => self.noise_sd * self.noise_sd,
            Kind::Continuous => (0..n).map(|i| self.noise_var(i)).sum::<f64>() / n.max(1) as f64,
            Kind::Binary => means.iter().map(|p| p * (1.0 - p)).sum::<f64>() / n.max(1) as f64,
        };
        (noise, m.var())
    }

    /// Share of users with positive in-strength: those whose exposure can
    /// move (the others always have e = 0).
    pub fn connected_share(&self) -> f64 {
        let n = self.len();
        self.inv_in_strength.iter().filter(|&&v| v > 0.0).count() as f64 / n.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{BuildOptions, GraphBuilder};

    /// Issue 14: the AVX2 build of the outcome loop agrees with the
    /// baseline build bit for bit, in all four cases (exposure or
    /// threshold, one direct effect or one per user), for arms other than 0
    /// and 1 and lengths around the vector widths: it checks the compiler
    /// (no fused or reordered operations), since both builds share one
    /// body; `observed_blocks_equal_each_users_outcome` checks the body
    /// against each user's outcome. (Without AVX2 there is nothing to
    /// compare, and the test says so.)
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_outcomes_equal_the_baseline() {
        use rand::RngExt;
        if !crate::simd::avx2() {
            eprintln!("no AVX2 on this CPU: only the baseline runs");
            return;
        }
        let mut r = crate::rng::stream(21, &[]);
        for n in [0usize, 1, 3, 4, 5, 17, 1024, 1027] {
            let v = |r: &mut crate::rng::Rng, s: f64| -> Vec<f64> {
                (0..n).map(|_| s * (r.random::<f64>() - 0.3)).collect()
            };
            let (alpha, taus, e, noise) = (
                v(&mut r, 5.0),
                v(&mut r, 0.2),
                v(&mut r, 1.0),
                v(&mut r, 3.0),
            );
            let z: Vec<u8> = (0..n)
                .map(|_| [0, 1, 1, 2, 255][r.random_range(0..5)])
                .collect();
            for threshold in [None, Some(0.25)] {
                for per_user in [false, true] {
                    let c = Continuous {
                        sd: 0.7,
                        gamma: -0.3,
                        threshold,
                        tau: 0.15,
                        taus: if per_user { &taus[..] } else { &[][..] },
                        alpha: &alpha,
                        z: &z,
                        e: &e,
                        noise: &noise,
                    };
                    let (mut y, mut y0) = (vec![0.0; n], vec![0.0; n]);
                    let (mut ya, mut y0a) = (vec![1.0; n], vec![1.0; n]);
                    observe_continuous(&c, &mut y, &mut y0);
                    // SAFETY: this CPU has AVX2 (checked above).
                    unsafe { observe_continuous_avx2(&c, &mut ya, &mut y0a) };
                    let bits = |x: &[f64]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                    let case = format!("n {n}, threshold {threshold:?}, per-user tau {per_user}");
                    assert_eq!(bits(&y), bits(&ya), "{case}");
                    assert_eq!(bits(&y0), bits(&y0a), "{case}");
                }
            }
        }
    }

    #[test]
    fn estimand_linear_in_means_is_tau_plus_gamma_times_connected_share() {
        // Path 0-1-2 and isolated node 3: f = 3/4 of nodes have neighbours.
        let mut b = GraphBuilder::new(4, false, false);
        b.add_edge(0, 1, 1.0);
        b.add_edge(1, 2, 1.0);
        let (g, _) = b.build(&BuildOptions::default()).unwrap();
        let spec = OutcomeSpec {
            direct_effect: 0.3,
            spillover: 0.2,
            ..Default::default()
        };
        let groups = Partition::from_labels(&[0, 0, 1, 1]);
        let pop = Population::draw(&spec, &g, groups, 1).unwrap();
        let est = crate::inquiry::global_effect(&pop);
        assert!((est.value - (0.3 + 0.2 * 0.75)).abs() < 1e-12);
        assert!((est.direct - 0.3).abs() < 1e-12);
    }

    /// Issue 14: a block of outcomes equals, bit for bit, each user's
    /// `observe_user` of `mean_outcome` and `null_mean_outcome`: continuous
    /// and binary metrics, linear and threshold exposure, constant and
    /// degree-scaled effects (with and without the shared τ), per-user
    /// noise scales.
    #[test]
    fn observed_blocks_equal_each_users_outcome() {
        use rand::RngExt;
        let mut b = GraphBuilder::new(60, false, false);
        for i in 0..59u32 {
            b.add_edge(i, i + 1, 1.0);
            b.add_edge(i, (i * 7 + 3) % 60, 1.0);
        }
        let (g, _) = b.build(&BuildOptions::default()).unwrap();
        let groups = Partition::from_labels(&(0..60).map(|i| i / 10).collect::<Vec<_>>());
        let mut r = rng::stream(3, &[]);
        // Arms other than 0 and 1 count as control, as everywhere.
        let z: Vec<u8> = (0..60)
            .map(|_| [0, 1, 1, 2, 255][r.random_range(0..5)])
            .collect();
        let e: Vec<f64> = (0..60).map(|_| r.random::<f64>()).collect();
        let draws: Vec<f64> = (0..60).map(|_| r.random::<f64>() * 4.0 - 2.0).collect();
        let mut checked = 0;
        for kind in [Kind::Continuous, Kind::Binary] {
            for exposure in [ExposureFn::Linear, ExposureFn::Threshold] {
                for heterogeneity in [Heterogeneity::Constant, Heterogeneity::Degree] {
                    for scaled in [false, true] {
                        let spec = OutcomeSpec {
                            kind,
                            exposure,
                            heterogeneity,
                            direct_effect: 0.3,
                            spillover: 0.2,
                            threshold: 0.5,
                            ..Default::default()
                        };
                        let mut pop = Population::draw(&spec, &g, groups.clone(), 1).unwrap();
                        if scaled {
                            pop.noise_scale = (0..60).map(|i| 0.5 + i as f64 / 60.0).collect();
                        }
                        let uniform = pop.uniform_tau();
                        assert_eq!(uniform.is_some(), heterogeneity == Heterogeneity::Constant);
                        for tau in [None, uniform] {
                            let (mut y, mut y0) = (vec![0.0; 60], vec![0.0; 60]);
                            for start in [0, 17, 43] {
                                let end = (start + 26).min(60);
                                let c = start..end;
                                pop.observe_block(
                                    start,
                                    tau,
                                    &z[c.clone()],
                                    &e[c.clone()],
                                    &draws[c.clone()],
                                    &mut y[c.clone()],
                                    &mut y0[c],
                                );
                            }
                            for i in 0..60 {
                                let want = pop.observe_user(
                                    i,
                                    pop.mean_outcome(i, z[i] == 1, e[i]),
                                    draws[i],
                                );
                                let null = pop.observe_user(i, pop.null_mean_outcome(i), draws[i]);
                                assert_eq!(y[i].to_bits(), want.to_bits(), "{kind:?} {exposure:?}");
                                assert_eq!(y0[i].to_bits(), null.to_bits());
                            }
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 32);
    }

    #[test]
    fn out_of_range_values_are_refused() {
        for bad in [
            OutcomeSpec {
                icc: 1.0,
                ..Default::default()
            },
            OutcomeSpec {
                sd: 0.0,
                ..Default::default()
            },
            OutcomeSpec {
                threshold: 0.0,
                ..Default::default()
            },
            OutcomeSpec {
                base_rate: 1.0,
                ..Default::default()
            },
        ] {
            assert_eq!(bad.validate().unwrap_err().exit_code(), 2);
        }
    }
}
