//! OLS with the cluster-robust CR2 variance (Bell & McCaffrey 2002;
//! Pustejovsky & Tipton 2018) and Bell–McCaffrey degrees of freedom, from
//! per-cluster sufficient statistics: the difference in means at the
//! randomization unit, the linear-in-means regression adjustment, CUPED, and
//! their stratum-fixed-effects versions for stratified designs.
//!
//! # Complexity
//! O(n·P²) per fit plus O(G·P³) for the per-cluster eigen-decompositions
//! (P ≤ 3 regressors, G clusters), whatever the cluster sizes.

use super::{
    cluster_means, cluster_means_point, dm_point, paired, paired_point, t_inference, Blocking,
    Failure, Outcome,
};
use nalgebra::{SMatrix, SVector};

/// OLS of `y` on the P regressors `x(i)` with a CR2 standard error clustered
/// by `cluster` (dense ids below `clusters`; pass `clusters == y.len()` with
/// `cluster[i] == i` for heteroskedasticity-robust HC2) and Bell–McCaffrey
/// degrees of freedom, for the contrast `c'β`.
pub fn ols_cr2<const P: usize>(
    y: &[f64],
    x: impl Fn(usize) -> [f64; P],
    cluster: &[u32],
    clusters: usize,
    contrast: [f64; P],
    alpha: f64,
) -> Outcome {
    let n = y.len();
    let mut xtx = M::<P>::zeros();
    let mut xty = V::<P>::zeros();
    for (i, &yi) in y.iter().enumerate() {
        let xi = V::<P>::from(x(i));
        xtx += xi * xi.transpose();
        xty += xi * yi;
    }
    let fit = Fit::new(xtx, xty, contrast)?;
    let mut sums = Cr2Sums::<P>::default();
    let mut ok = true;
    if clusters == n && cluster.iter().enumerate().all(|(i, &c)| c as usize == i) {
        // One unit per cluster (HC2): the leverage block is the scalar h = xᵀBx.
        for (i, &yi) in y.iter().enumerate() {
            let xi = V::<P>::from(x(i));
            let e = yi - xi.dot(&fit.beta);
            if !sums.singles(&fit, &xi, e * e, 1.0) {
                ok = false;
                break;
            }
        }
    } else {
        let mut mg = vec![M::<P>::zeros(); clusters];
        let mut sg = vec![V::<P>::zeros(); clusters];
        for (i, &yi) in y.iter().enumerate() {
            let xi = V::<P>::from(x(i));
            let g = cluster[i] as usize;
            mg[g] += xi * xi.transpose();
            sg[g] += xi * (yi - xi.dot(&fit.beta));
        }
        for g in 0..clusters {
            ok &= sums.cluster(&fit, &mg[g], &sg[g]);
        }
    }
    if !ok {
        return Err(Failure::OneClusterInArm);
    }
    sums.finish(&fit, alpha)
}

type M<const P: usize> = SMatrix<f64, P, P>;
type V<const P: usize> = SVector<f64, P>;

/// An OLS fit for a CR2 contrast: B = (XᵀX)⁻¹ (refused when singular or
/// ill-conditioned), β = B·Xᵀy, Bc, the contrast's value cᵀβ and the
/// Cholesky factor of B.
pub(crate) struct Fit<const P: usize> {
    b: M<P>,
    pub(crate) beta: V<P>,
    bc: V<P>,
    value: f64,
    l: M<P>,
}

impl<const P: usize> Fit<P> {
    /// B = (XᵀX)⁻¹.
    pub(crate) fn b(&self) -> &M<P> {
        &self.b
    }

    /// Bc.
    pub(crate) fn bc(&self) -> &V<P> {
        &self.bc
    }

    /// Fit from XᵀX and Xᵀy.
    pub(crate) fn new(xtx: M<P>, xty: V<P>, contrast: [f64; P]) -> Result<Self, Failure> {
        let Some(b) = xtx.try_inverse() else {
            return Err(Failure::Singular);
        };
        // Guard against near-singular designs (e.g. a constant regressor).
        if !b.iter().all(|v| v.is_finite()) || (b * xtx - M::<P>::identity()).abs().max() > 1e-6 {
            return Err(Failure::Singular);
        }
        let beta = b * xty;
        let c = V::<P>::from(contrast);
        let Some(chol) = b.cholesky() else {
            return Err(Failure::Singular);
        };
        Ok(Fit {
            b,
            beta,
            bc: b * c,
            value: c.dot(&beta),
            l: chol.l(),
        })
    }
}

/// Running CR2 sums over clusters: the variance, the Bell–McCaffrey terms
/// and Σ t_g t_gᵀ for the cross-cluster term.
pub(crate) struct Cr2Sums<const P: usize> {
    bm: BmSums,
    ttt: M<P>,
}

impl<const P: usize> Default for Cr2Sums<P> {
    fn default() -> Self {
        Cr2Sums {
            bm: BmSums::default(),
            ttt: M::<P>::zeros(),
        }
    }
}

impl<const P: usize> Cr2Sums<P> {
    /// Add a cluster with Gram matrix `m` = X_gᵀX_g and score `s` = X_gᵀe_g.
    /// `false` when the cluster is alone in its arm (leverage 1).
    pub(crate) fn cluster(&mut self, fit: &Fit<P>, m: &M<P>, s: &V<P>) -> bool {
        let Some((a_s, a_m, a2_m)) = cr2_cluster(m, s, &fit.l) else {
            return false;
        };
        let q = fit.bc.dot(&a_s);
        let t = a_m * fit.bc;
        let d = fit.bc.dot(&(a2_m * fit.bc));
        let tbt = t.dot(&(fit.b * t));
        self.bm.push(q * q, d, tbt, 1.0);
        self.ttt += t * t.transpose();
        true
    }

    /// Add `count` one-user clusters that share the regressors `x`, whose
    /// squared residuals sum to `r2` (HC2: the leverage block is the scalar
    /// h = xᵀBx). `false` when h reaches 1.
    pub(crate) fn singles(&mut self, fit: &Fit<P>, x: &V<P>, r2: f64, count: f64) -> bool {
        let h = x.dot(&(fit.b * x));
        if h >= 1.0 - 1e-10 {
            return false;
        }
        let xbc = x.dot(&fit.bc);
        let t = x * (xbc / (1.0 - h).sqrt());
        let d = xbc * xbc / (1.0 - h);
        let tbt = t.dot(&(fit.b * t));
        self.bm.push(d * r2, d, tbt, count);
        self.ttt += t * t.transpose() * count;
        true
    }

    /// Sums gathered elsewhere: Σq², Σd, Σtᵀbt, Σd², Σd·tᵀBt and Σttᵀ.
    pub(crate) fn from_sums(var: f64, d: f64, tbt: f64, d2: f64, dtbt: f64, ttt: M<P>) -> Self {
        Cr2Sums {
            bm: BmSums {
                var,
                sum_d: d,
                sum_tbt: tbt,
                sum_d2: d2,
                sum_dtbt: dtbt,
            },
            ttt,
        }
    }

    /// The contrast's estimate with its CR2 SE and Bell–McCaffrey df.
    pub(crate) fn finish(&self, fit: &Fit<P>, alpha: f64) -> Outcome {
        let bt = fit.b * self.ttt;
        let (se, df) = self.bm.finish((bt * bt).trace());
        t_inference(fit.value, se, df, alpha)
    }
}

/// OLS with stratum fixed effects absorbed (clusters nested in strata): the
/// first regressor of `x` must be the intercept and `contrast[0]` 0. Fit by
/// demeaning within strata (Frisch–Waugh–Lovell); the CR2 leverage block of
/// cluster g in stratum s is 11ᵀ/n_s + X̃_g B̃ X̃_gᵀ, i.e. U_g B_s U_gᵀ with
/// U_g = [1, X̃_g] and B_s = diag(1/n_s, B̃), so the P×P machinery of
/// [`ols_cr2`] applies per stratum. Strata with a single cluster are fitted
/// exactly by their fixed effect: they are pooled into one stratum (and a
/// pool of a single cluster is dropped, carrying no information).
/// The Bell–McCaffrey degrees of freedom use the full hat matrix, fixed
/// effects included (cross-cluster terms within a stratum).
fn ols_cr2_blocked<const P: usize>(
    y: &[f64],
    x: impl Fn(usize) -> [f64; P],
    cluster: &[u32],
    stratum: &[u32],
    contrast: [f64; P],
    alpha: f64,
) -> Outcome {
    if P < 2 || contrast[0] != 0.0 {
        return Err(Failure::Singular);
    }
    let sm = StratumMeans::new(y, &x, cluster, stratum);
    let (stratum, strata, present, per_stratum) = (
        sm.stratum.as_slice(),
        sm.strata,
        &sm.present,
        &sm.per_stratum,
    );
    let (ns, sy, sx) = (&sm.ns, &sm.sy, &sm.sx);
    let clusters = stratum.len();
    let keep = |i: usize| sm.keep(cluster, i);
    // u = [1, x̃], ỹ.
    let row = |i: usize| -> (usize, V<P>, f64) {
        let s = stratum[cluster[i] as usize] as usize;
        (s, V::<P>::from(x(i)) - sx[s], y[i] - sy[s])
    };
    let mut xtx = M::<P>::zeros();
    let mut xty = V::<P>::zeros();
    for i in (0..y.len()).filter(|&i| keep(i)) {
        let (_, u, yt) = row(i);
        xtx += u * u.transpose();
        xty += u * yt;
    }
    // B̃ on the non-intercept block; position 0 is replaced per stratum.
    xtx.row_mut(0).fill(0.0);
    xtx.column_mut(0).fill(0.0);
    xtx[(0, 0)] = 1.0;
    let Some(b) = xtx.try_inverse() else {
        return Err(Failure::Singular);
    };
    if !b.iter().all(|v| v.is_finite()) || (b * xtx - M::<P>::identity()).abs().max() > 1e-6 {
        return Err(Failure::Singular);
    }
    let mut beta = b * xty;
    beta[0] = 0.0;
    let c = V::<P>::from(contrast);
    let bc = b * c; // bc[0] = 0: contrast[0] = 0 and b is block diagonal
    let value = c.dot(&beta);
    let mut mg = vec![M::<P>::zeros(); clusters];
    let mut sg = vec![V::<P>::zeros(); clusters];
    for i in (0..y.len()).filter(|&i| keep(i)) {
        let (_, u, yt) = row(i);
        let g = cluster[i] as usize;
        mg[g] += u * u.transpose();
        sg[g] += u * (yt - u.dot(&beta));
    }
    let mut bs = Vec::with_capacity(strata);
    let mut ls = Vec::with_capacity(strata);
    for &n_s in ns {
        let mut bsm = b;
        bsm[(0, 0)] = if n_s > 0.0 { 1.0 / n_s } else { 1.0 };
        let Some(chol) = bsm.cholesky() else {
            return Err(Failure::Singular);
        };
        ls.push(chol.l());
        bs.push(bsm);
    }
    let mut bm = BmSums::default();
    let mut a = vec![0.0f64; strata]; // Σ_{g∈s} u_g², u_g = t_g[0]
    let mut cs = vec![V::<P>::zeros(); strata]; // Σ_{g∈s} u_g·t̃_g
    let mut ttt = M::<P>::zeros(); // Σ t̃ t̃ᵀ
    for g in 0..clusters {
        let s = stratum[g] as usize;
        if !present[g] || per_stratum[s] < 2 {
            continue;
        }
        let (b_s, l) = (&bs[s], &ls[s]);
        let Some((a_s, a_m, a2_m)) = cr2_cluster(&mg[g], &sg[g], l) else {
            return Err(Failure::OneClusterInArm);
        };
        let q = bc.dot(&a_s);
        let t = a_m * bc;
        let d = bc.dot(&(a2_m * bc));
        let tbt = t.dot(&(b_s * t));
        bm.push(q * q, d, tbt, 1.0);
        let mut tt = t;
        tt[0] = 0.0;
        a[s] += t[0] * t[0];
        cs[s] += tt * t[0];
        ttt += tt * tt.transpose();
    }
    let bt = b * ttt;
    let mut k2 = (bt * bt).trace();
    for s in 0..strata {
        if ns[s] > 0.0 && per_stratum[s] >= 2 {
            k2 += (a[s] / ns[s]).powi(2) + 2.0 / ns[s] * cs[s].dot(&(b * cs[s]));
        }
    }
    let (se, df) = bm.finish(k2);
    t_inference(value, se, df, alpha)
}

/// Point estimate of `ols_cr2_blocked`'s contrast (for randomization
/// inference): OLS after demeaning within strata.
pub fn blocked_point<const P: usize>(
    y: &[f64],
    x: impl Fn(usize) -> [f64; P],
    cluster: &[u32],
    stratum: &[u32],
    contrast: [f64; P],
) -> Option<f64> {
    let sm = StratumMeans::new(y, &x, cluster, stratum);
    let (stratum, sy, sx) = (sm.stratum.as_slice(), &sm.sy, &sm.sx);
    let keep = |i: usize| sm.keep(cluster, i);
    let mut xtx = SMatrix::<f64, P, P>::zeros();
    let mut xty = V::<P>::zeros();
    for (i, &yi) in y.iter().enumerate() {
        if !keep(i) {
            continue;
        }
        let s = stratum[cluster[i] as usize] as usize;
        let mut u = V::<P>::from(x(i)) - sx[s];
        u[0] = 0.0;
        xtx += u * u.transpose();
        xty += u * (yi - sy[s]);
    }
    xtx[(0, 0)] = 1.0;
    let b = xtx.try_inverse()?;
    // The same near-singularity guard as the estimator itself.
    if (b * xtx - SMatrix::<f64, P, P>::identity()).abs().max() > 1e-6 {
        return None;
    }
    let v = V::<P>::from(contrast).dot(&(b * xty));
    v.is_finite().then_some(v)
}

/// Running sums of the CR2 variance and its Bell–McCaffrey degrees of
/// freedom: per cluster q_g = cᵀB X_gᵀA_g e_g, d_g = p_gᵀp_g and
/// t_gᵀB t_g (p_g = A_g X_g B c, t_g = X_gᵀp_g).
#[derive(Default)]
struct BmSums {
    var: f64,
    sum_d: f64,
    sum_tbt: f64,
    sum_d2: f64,
    sum_dtbt: f64,
}

impl BmSums {
    /// Add `count` clusters with the same d_g and t_gᵀB t_g whose q_g² sum to `q2`.
    fn push(&mut self, q2: f64, d: f64, tbt: f64, count: f64) {
        self.var += q2;
        self.sum_d += count * d;
        self.sum_tbt += count * tbt;
        self.sum_d2 += count * d * d;
        self.sum_dtbt += count * d * tbt;
    }

    /// (SE, df) given ‖K‖², the sum of squares of the cross-cluster terms.
    fn finish(&self, cross: f64) -> (f64, f64) {
        let tr = self.sum_d - self.sum_tbt;
        let tr2 = self.sum_d2 - 2.0 * self.sum_dtbt + cross;
        (self.var.sqrt(), tr * tr / tr2)
    }
}

/// The CR2 adjustment of one cluster, with Gram matrix M_g = X_gᵀX_g, score
/// S_g = X_gᵀe_g and B = (XᵀX)⁻¹ = LLᵀ: returns (X_gᵀA_g e_g, X_gᵀA_gX_g,
/// X_gᵀA_g²X_g) for A_g = (I − X_g B X_gᵀ)^(−1/2), from the nonzero
/// eigen-structure of the leverage block (the P×P matrix LᵀM_gL), so the cost
/// does not depend on the cluster's size. `None` when a leverage eigenvalue
/// reaches 1 (a cluster that is alone in its arm).
fn cr2_cluster<const P: usize>(
    m: &SMatrix<f64, P, P>,
    sv: &SVector<f64, P>,
    l: &SMatrix<f64, P, P>,
) -> Option<(SVector<f64, P>, SMatrix<f64, P, P>, SMatrix<f64, P, P>)> {
    let sm = l.transpose() * m * l;
    let (mut a_s, mut a_m, mut a2_m) = (*sv, *m, *m);
    let eig = nalgebra::DMatrix::from_iterator(P, P, sm.iter().copied()).symmetric_eigen();
    for k in 0..P {
        let lam = eig.eigenvalues[k];
        if lam <= 1e-12 {
            continue;
        }
        if lam >= 1.0 - 1e-10 {
            return None;
        }
        let w = SVector::<f64, P>::from_iterator(eig.eigenvectors.column(k).iter().copied());
        let ml = m * (l * w); // X_gᵀ u_k · sqrt(λ)
        let f1 = 1.0 / (1.0 - lam).sqrt() - 1.0;
        let f2 = 1.0 / (1.0 - lam) - 1.0;
        let proj = (l * w).dot(sv); // u_kᵀ e · sqrt(λ)
        a_s += ml * (f1 * proj / lam);
        a_m += ml * ml.transpose() * (f1 / lam);
        a2_m += ml * ml.transpose() * (f2 / lam);
    }
    Some((a_s, a_m, a2_m))
}

/// Within-stratum means for absorbing stratum fixed effects, after pooling
/// single-cluster strata ([`pool_singletons`]); users of a stratum with
/// fewer than two clusters are left out ([`StratumMeans::keep`]). The
/// intercept column's mean is set to 0: it becomes the stratum's 1.
struct StratumMeans<const P: usize> {
    /// Analysis stratum of each cluster.
    stratum: Vec<u32>,
    /// Number of analysis strata.
    strata: usize,
    /// Clusters with at least one user.
    present: Vec<bool>,
    /// Non-empty clusters per stratum.
    per_stratum: Vec<usize>,
    /// Users kept per stratum.
    ns: Vec<f64>,
    /// Mean outcome per stratum.
    sy: Vec<f64>,
    /// Mean regressors per stratum (intercept entry 0).
    sx: Vec<SVector<f64, P>>,
}

impl<const P: usize> StratumMeans<P> {
    fn new(y: &[f64], x: &impl Fn(usize) -> [f64; P], cluster: &[u32], stratum: &[u32]) -> Self {
        let stratum = pool_singletons(stratum, cluster);
        let strata = stratum.iter().max().map_or(0, |&m| m as usize + 1);
        let mut present = vec![false; stratum.len()];
        for &c in cluster {
            present[c as usize] = true;
        }
        let mut per_stratum = vec![0usize; strata];
        for (c, &s) in stratum.iter().enumerate() {
            if present[c] {
                per_stratum[s as usize] += 1;
            }
        }
        let mut sm = StratumMeans {
            ns: vec![0.0; strata],
            sy: vec![0.0; strata],
            sx: vec![SVector::<f64, P>::zeros(); strata],
            stratum,
            strata,
            present,
            per_stratum,
        };
        for (i, &yi) in y.iter().enumerate() {
            if !sm.keep(cluster, i) {
                continue;
            }
            let s = sm.stratum[cluster[i] as usize] as usize;
            sm.ns[s] += 1.0;
            sm.sy[s] += yi;
            sm.sx[s] += SVector::<f64, P>::from(x(i));
        }
        for s in 0..strata {
            if sm.ns[s] > 0.0 {
                sm.sy[s] /= sm.ns[s];
                sm.sx[s] /= sm.ns[s];
                sm.sx[s][0] = 0.0;
            }
        }
        sm
    }

    /// Whether user `i` is in a stratum of two or more clusters.
    fn keep(&self, cluster: &[u32], i: usize) -> bool {
        self.per_stratum[self.stratum[cluster[i] as usize] as usize] >= 2
    }
}

/// Strata for the analysis: a stratum holding one (non-empty) cluster is
/// fitted exactly by its own fixed effect, so single-cluster strata are
/// pooled into one stratum (their clusters were treated by one complete
/// randomization of the leftover units); a pool of one cluster is then
/// dropped by the callers.
fn pool_singletons(stratum: &[u32], cluster: &[u32]) -> Vec<u32> {
    let strata = stratum.iter().max().map_or(0, |&m| m as usize + 1);
    let mut present = vec![false; stratum.len()];
    for &c in cluster {
        present[c as usize] = true;
    }
    let mut count = vec![0usize; strata];
    for (c, &s) in stratum.iter().enumerate() {
        if present[c] {
            count[s as usize] += 1;
        }
    }
    stratum
        .iter()
        .map(|&s| {
            if count[s as usize] == 1 {
                strata as u32
            } else {
                s
            }
        })
        .collect()
}

/// Point estimate of [`regression`]: β_z + f·β_e of OLS on [1, z, e], with
/// `f` the share of users that have (in-)neighbours.
pub fn regression_point(y: &[f64], z: &[u8], e: &[f64], f: f64) -> Option<f64> {
    let mut xtx = SMatrix::<f64, 3, 3>::zeros();
    let mut xty = SVector::<f64, 3>::zeros();
    for i in 0..y.len() {
        let x = SVector::<f64, 3>::new(1.0, z[i] as f64, e[i]);
        xtx += x * x.transpose();
        xty += x * y[i];
    }
    let b = xtx.try_inverse()? * xty;
    let v = b[1] + f * b[2];
    v.is_finite().then_some(v)
}

/// Difference in means as OLS on [1, z] with CR2 at the randomization unit,
/// analysed as randomized: with strata, stratum fixed effects are absorbed
/// (OLS on z within strata, CR2 and Bell–McCaffrey df from the full hat
/// matrix); with matched pairs, the size-weighted [`paired()`](super::paired()) estimator.
///
/// ```
/// use spillover::answer::{dm_cr2, Blocking};
///
/// // 6 clusters of 2 users; clusters 0, 2, 4 treated.
/// let cluster = [0u32, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5];
/// let z = [1u8, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0];
/// let y = [2.0, 2.2, 1.0, 1.1, 2.5, 2.4, 0.9, 1.2, 2.1, 2.0, 1.0, 0.8];
/// let e = dm_cr2(&y, &z, &cluster, 6, Blocking::None, 0.05).unwrap();
/// assert!((e.value - 1.2).abs() < 1e-12);
/// assert!(e.df < 5.0); // Bell–McCaffrey: about G − 2 = 4
/// ```
///
/// # Complexity
/// O(n) plus O(G) small eigen-decompositions.
pub fn dm_cr2(
    y: &[f64],
    z: &[u8],
    cluster: &[u32],
    clusters: usize,
    blocking: Blocking,
    alpha: f64,
) -> Outcome {
    arms_check(z, cluster, clusters)?;
    match blocking {
        Blocking::None => ols_cr2(
            y,
            |i| [1.0, z[i] as f64],
            cluster,
            clusters,
            [0.0, 1.0],
            alpha,
        ),
        Blocking::Strata(s) => {
            ols_cr2_blocked(y, |i| [1.0, z[i] as f64], cluster, s, [0.0, 1.0], alpha)
        }
        Blocking::Pairs(pairs) => paired(y, z, cluster, clusters, pairs, true, alpha),
    }
}

/// Linear-in-means regression adjustment: OLS on [1, z, e] (e = treated
/// neighbour share), CR2 at the randomization unit. Treating everyone moves
/// z by 1 for every user but e by 1 only for users with (in-)neighbours (a
/// user without any always has e = 0), so the global effect is
/// β_z + f·β_e with `f` the share of users with positive in-strength: the
/// contrast [0, 1, f]. With strata (or pairs, as two-cluster strata) their
/// fixed effects are absorbed.
#[allow(clippy::too_many_arguments)]
pub fn regression(
    y: &[f64],
    z: &[u8],
    e: &[f64],
    f: f64,
    cluster: &[u32],
    clusters: usize,
    blocking: Blocking,
    alpha: f64,
) -> Outcome {
    arms_check(z, cluster, clusters)?;
    let x = |i: usize| [1.0, z[i] as f64, e[i]];
    match blocking.strata(clusters) {
        None => ols_cr2(y, x, cluster, clusters, [0.0, 1.0, f], alpha),
        Some(s) => ols_cr2_blocked(y, x, cluster, &s, [0.0, 1.0, f], alpha),
    }
}

/// Point estimate of [`regression`] under `blocking`.
pub fn regression_point_in(
    y: &[f64],
    z: &[u8],
    e: &[f64],
    f: f64,
    cluster: &[u32],
    clusters: usize,
    blocking: Blocking,
) -> Option<f64> {
    match blocking.strata(clusters) {
        None => regression_point(y, z, e, f),
        Some(s) => blocked_point(y, |i| [1.0, z[i] as f64, e[i]], cluster, &s, [0.0, 1.0, f]),
    }
}

/// Point estimate of [`dm_cr2`] (and of [`cuped`] on the adjusted outcome)
/// under `blocking`.
pub fn dm_point_in(
    y: &[f64],
    z: &[u8],
    cluster: &[u32],
    clusters: usize,
    blocking: Blocking,
) -> Option<f64> {
    match blocking {
        Blocking::None => dm_point(y, z),
        Blocking::Strata(s) => blocked_point(y, |i| [1.0, z[i] as f64], cluster, s, [0.0, 1.0]),
        Blocking::Pairs(p) => paired_point(y, z, cluster, clusters, p, true),
    }
}

/// Point estimate of [`cluster_means_in`] under `blocking`.
pub fn cluster_means_point_in(
    y: &[f64],
    z: &[u8],
    cluster: &[u32],
    clusters: usize,
    blocking: Blocking,
) -> Option<f64> {
    match blocking {
        Blocking::None => cluster_means_point(y, z, cluster, clusters),
        Blocking::Strata(s) => {
            let (m, arm, ids) = cluster_level(y, z, cluster, clusters);
            blocked_point(&m, |i| [1.0, arm[i] as f64], &ids, s, [0.0, 1.0])
        }
        Blocking::Pairs(p) => paired_point(y, z, cluster, clusters, p, false),
    }
}

/// The cluster-means test analysed as randomized: unblocked, the two-sample
/// t-test ([`cluster_means`]); with strata, OLS of the cluster means on
/// treatment with stratum fixed effects and HC2 (a blocked t-test); with
/// matched pairs, the paired t-test on cluster means (P − 1 df).
pub fn cluster_means_in(
    y: &[f64],
    z: &[u8],
    cluster: &[u32],
    clusters: usize,
    blocking: Blocking,
    alpha: f64,
) -> Outcome {
    match blocking {
        Blocking::None => cluster_means(y, z, cluster, clusters, alpha),
        Blocking::Strata(s) => {
            arms_check(z, cluster, clusters)?;
            let (m, arm, ids) = cluster_level(y, z, cluster, clusters);
            ols_cr2_blocked(&m, |i| [1.0, arm[i] as f64], &ids, s, [0.0, 1.0], alpha)
        }
        Blocking::Pairs(p) => paired(y, z, cluster, clusters, p, false, alpha),
    }
}

/// Cluster means, arms and ids (cluster c at position c; empty clusters get
/// mean 0 and are never referenced by a unit, so they drop out).
fn cluster_level(
    y: &[f64],
    z: &[u8],
    cluster: &[u32],
    clusters: usize,
) -> (Vec<f64>, Vec<u8>, Vec<u32>) {
    let (sum, count, treated) = super::means::cluster_sums(y, z, cluster, clusters);
    let (mut m, mut arm, mut ids) = (Vec::new(), Vec::new(), Vec::new());
    for g in 0..clusters {
        if count[g] > 0 {
            m.push(sum[g] / count[g] as f64);
            arm.push(u8::from(2 * treated[g] >= count[g]));
            ids.push(g as u32);
        }
    }
    (m, arm, ids)
}

/// CUPED: difference in means of y − θ(x − x̄), θ = cov(y, x)/var(x) pooled
/// over both arms (treated as known), analysed like [`dm_cr2`]; with
/// further covariates `more`, see [`cuped_adjusted`].
#[allow(clippy::too_many_arguments)]
pub fn cuped(
    y: &[f64],
    z: &[u8],
    x: &[f64],
    more: &[Vec<f64>],
    cluster: &[u32],
    clusters: usize,
    blocking: Blocking,
    alpha: f64,
) -> Outcome {
    arms_check(z, cluster, clusters)?;
    let adj = cuped_adjusted(y, x, more).ok_or(Failure::Singular)?;
    dm_cr2(&adj, z, cluster, clusters, blocking, alpha)
}

/// The CUPED-adjusted outcome y − θ(x − x̄), θ = cov(y, x)/var(x) pooled over
/// both arms; with further covariates `more`, y − (X − X̄)θ with θ the pooled
/// least-squares coefficients of y on X = [x, more…]. `None` when the
/// covariates do not vary (or are collinear).
///
/// # Complexity
/// O(n·p²) for p covariates.
pub fn cuped_adjusted(y: &[f64], x: &[f64], more: &[Vec<f64>]) -> Option<Vec<f64>> {
    if !more.is_empty() {
        return cuped_adjusted_many(y, x, more);
    }
    let n = y.len() as f64;
    // The covariate about its first value, so a constant one has sxx = 0
    // exactly (its mean need not be representable).
    let k = x.first().copied().unwrap_or(0.0);
    let (my, mx) = (
        y.iter().sum::<f64>() / n,
        x.iter().map(|&b| b - k).sum::<f64>() / n,
    );
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (&a, &b) in y.iter().zip(x) {
        sxy += (a - my) * (b - k - mx);
        sxx += (b - k - mx) * (b - k - mx);
    }
    if sxx <= 0.0 {
        return None;
    }
    let theta = sxy / sxx;
    Some(
        y.iter()
            .zip(x)
            .map(|(&a, &b)| a - theta * (b - k - mx))
            .collect(),
    )
}

fn cuped_adjusted_many(y: &[f64], x: &[f64], more: &[Vec<f64>]) -> Option<Vec<f64>> {
    let n = y.len();
    let cols: Vec<&[f64]> = std::iter::once(x)
        .chain(more.iter().map(Vec::as_slice))
        .collect();
    let p = cols.len();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / n as f64;
    let means: Vec<f64> = cols.iter().map(|c| mean(c)).collect();
    let my = mean(y);
    let mut xtx = nalgebra::DMatrix::<f64>::zeros(p, p);
    let mut xty = nalgebra::DVector::<f64>::zeros(p);
    let mut row = vec![0.0; p];
    for i in 0..n {
        for (a, c) in cols.iter().enumerate() {
            row[a] = c[i] - means[a];
        }
        for a in 0..p {
            xty[a] += row[a] * (y[i] - my);
            for b in 0..=a {
                xtx[(a, b)] += row[a] * row[b];
            }
        }
    }
    for a in 0..p {
        for b in 0..a {
            xtx[(b, a)] = xtx[(a, b)];
        }
    }
    let theta = xtx.cholesky()?.solve(&xty);
    Some(
        (0..n)
            .map(|i| {
                y[i] - cols
                    .iter()
                    .enumerate()
                    .map(|(a, c)| theta[a] * (c[i] - means[a]))
                    .sum::<f64>()
            })
            .collect(),
    )
}

/// Each arm needs at least two randomization units.
fn arms_check(z: &[u8], cluster: &[u32], clusters: usize) -> Result<(), Failure> {
    let mut seen = vec![0u8; clusters];
    let (mut t, mut c) = (0usize, 0usize);
    for (i, &zi) in z.iter().enumerate() {
        let g = cluster[i] as usize;
        let bit = if zi == 1 { 1 } else { 2 };
        if seen[g] & bit == 0 {
            seen[g] |= bit;
            if zi == 1 {
                t += 1
            } else {
                c += 1
            }
        }
    }
    match (t, c) {
        (0, _) | (_, 0) => Err(Failure::EmptyArm),
        (1, _) | (_, 1) => Err(Failure::OneClusterInArm),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod cuped_many_tests {
    use super::*;
    use rand::RngExt;

    fn mean_of(v: &[f64]) -> f64 {
        v.iter().sum::<f64>() / v.len() as f64
    }

    /// Multi-covariate CUPED equals y minus the least-squares fit on the
    /// centred covariates, solved independently (SVD), and removes an exactly
    /// linear covariate effect.
    #[test]
    fn cuped_with_covariates_is_the_pooled_least_squares_adjustment() {
        let n = 300;
        let mut r = crate::rng::stream(3, &[1]);
        let x1: Vec<f64> = (0..n).map(|_| r.random::<f64>()).collect();
        let x2: Vec<f64> = (0..n).map(|_| r.random::<f64>() * 5.0).collect();
        let x3: Vec<f64> = (0..n).map(|i| x1[i] * x2[i]).collect();
        let z: Vec<u8> = (0..n).map(|i| (i % 2) as u8).collect();
        let y: Vec<f64> = (0..n)
            .map(|i| 1.0 + 2.0 * x1[i] - 3.0 * x2[i] + 0.5 * x3[i] + 0.25 * f64::from(z[i]))
            .collect();
        let more = vec![x2.clone(), x3.clone()];
        let adj = cuped_adjusted(&y, &x1, &more).unwrap();
        let cols = [&x1, &x2, &x3];
        let a = nalgebra::DMatrix::from_fn(n, 3, |i, j| cols[j][i] - mean_of(cols[j]));
        let my = mean_of(&y);
        let b = nalgebra::DVector::from_fn(n, |i, _| y[i] - my);
        let theta = a.clone().svd(true, true).solve(&b, 1e-12).unwrap();
        let fit = &a * &theta;
        for i in 0..n {
            assert!((adj[i] - (y[i] - fit[i])).abs() < 1e-9, "row {i}");
        }
        // After adjustment only the treatment effect is left (up to its
        // small correlation with the covariates in this draw).
        let dm = |v: &[f64]| {
            let t: Vec<f64> = (0..n).filter(|&i| z[i] == 1).map(|i| v[i]).collect();
            let c: Vec<f64> = (0..n).filter(|&i| z[i] == 0).map(|i| v[i]).collect();
            mean_of(&t) - mean_of(&c)
        };
        assert!((dm(&adj) - 0.25).abs() < 0.05, "{}", dm(&adj));
        // Collinear covariates are refused, not solved.
        assert!(cuped_adjusted(&y, &x1, std::slice::from_ref(&x1)).is_none());
    }
}
