//! The paired estimator of matched-pair cluster randomization.

use super::{t_inference, Failure, Outcome};

/// Paired estimator for matched-pair cluster randomization (Imai, King &
/// Nall 2009): d_p = mean of the treated cluster − mean of the control
/// cluster, τ̂ = Σ w_p d_p / Σ w_p with w_p the pair's users (`weighted`) or
/// 1 (a paired t-test on cluster means), variance
/// P/((P − 1)W²)·Σ_p (w_p d_p − W τ̂/P)², Student t with P − 1 df.
/// Pairs whose clusters are in the same arm (not possible under the design)
/// or empty are skipped.
pub fn paired(
    y: &[f64],
    z: &[u8],
    cluster: &[u32],
    clusters: usize,
    pairs: &[(u32, u32)],
    weighted: bool,
    alpha: f64,
) -> Outcome {
    let d = pair_differences(y, z, cluster, clusters, pairs, weighted);
    if d.len() < 2 {
        return Err(Failure::OneClusterInArm);
    }
    let p = d.len() as f64;
    let w: f64 = d.iter().map(|(w, _)| w).sum();
    let tau = d.iter().map(|(w, x)| w * x).sum::<f64>() / w;
    let ss: f64 = d.iter().map(|(wp, x)| (wp * x - w * tau / p).powi(2)).sum();
    let var = p / ((p - 1.0) * w * w) * ss;
    t_inference(tau, var.sqrt(), p - 1.0, alpha)
}

/// Point estimate of [`paired`].
pub fn paired_point(
    y: &[f64],
    z: &[u8],
    cluster: &[u32],
    clusters: usize,
    pairs: &[(u32, u32)],
    weighted: bool,
) -> Option<f64> {
    let d = pair_differences(y, z, cluster, clusters, pairs, weighted);
    let w: f64 = d.iter().map(|(w, _)| w).sum();
    (w > 0.0).then(|| d.iter().map(|(w, x)| w * x).sum::<f64>() / w)
}

/// (weight, treated − control cluster mean) per usable pair.
fn pair_differences(
    y: &[f64],
    z: &[u8],
    cluster: &[u32],
    clusters: usize,
    pairs: &[(u32, u32)],
    weighted: bool,
) -> Vec<(f64, f64)> {
    let (sum, count, treated) = super::means::cluster_sums(y, z, cluster, clusters);
    let arm = |g: usize| 2 * treated[g] >= count[g];
    pairs
        .iter()
        .filter_map(|&(a, b)| {
            let (a, b) = (a as usize, b as usize);
            if count[a] == 0 || count[b] == 0 || arm(a) == arm(b) {
                return None;
            }
            let (t, c) = if arm(a) { (a, b) } else { (b, a) };
            let d = sum[t] / count[t] as f64 - sum[c] / count[c] as f64;
            let w = if weighted {
                (count[a] + count[b]) as f64
            } else {
                1.0
            };
            Some((w, d))
        })
        .collect()
}
