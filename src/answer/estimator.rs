//! The [`Estimator`] trait: what every analyst estimator of one experiment
//! offers (a full estimate with inference, and the point estimate alone for
//! randomization inference), over one [`Experiment`]. The engine takes
//! randomization points, and estimates under blocking or with population
//! covariates, through [`analyst`]; unblocked estimates come from
//! [`suff`](super::suff), which is tested to equal these (failures included).

use super::{Blocking, EstimatorKind, Outcome};

/// One experiment as an analyst sees it: outcomes, assignment, the
/// randomization units and how they were randomized.
#[derive(Debug, Clone, Copy)]
pub struct Experiment<'a> {
    /// Outcomes.
    pub y: &'a [f64],
    /// Treatment (0/1) per user.
    pub z: &'a [u8],
    /// Treated (in-)neighbour share per user (regression adjustment).
    pub e: &'a [f64],
    /// Pre-period covariate per user (CUPED).
    pub x: &'a [f64],
    /// Further pre-period covariates (a population file's `covariates`):
    /// CUPED adjusts for all of them with `x`. Empty for synthetic populations.
    pub more: &'a [Vec<f64>],
    /// Randomization unit of each user (dense ids below `clusters`).
    pub cluster: &'a [u32],
    /// Number of randomization units.
    pub clusters: usize,
    /// Strata or pairs of the randomization.
    pub blocking: Blocking<'a>,
    /// Share of users with (in-)neighbours (the regression's contrast).
    pub connected_share: f64,
}

/// An estimator of the global effect from one experiment.
pub trait Estimator: Sync {
    /// The kind (its name in scenarios and reports).
    fn kind(&self) -> EstimatorKind;
    /// Estimate with inference at level `alpha`.
    fn estimate(&self, x: &Experiment, alpha: f64) -> Outcome;
    /// The point estimate only (randomization inference redraws `z`).
    fn point(&self, x: &Experiment) -> Option<f64>;
}

struct DmNaive;
struct DmCr2;
struct ClusterMeans;
struct Regression;
struct Cuped;

impl Estimator for DmNaive {
    fn kind(&self) -> EstimatorKind {
        EstimatorKind::DmNaive
    }
    fn estimate(&self, x: &Experiment, alpha: f64) -> Outcome {
        super::dm_naive(x.y, x.z, alpha)
    }
    fn point(&self, x: &Experiment) -> Option<f64> {
        super::dm_point(x.y, x.z)
    }
}

impl Estimator for DmCr2 {
    fn kind(&self) -> EstimatorKind {
        EstimatorKind::DmCr2
    }
    fn estimate(&self, x: &Experiment, alpha: f64) -> Outcome {
        super::dm_cr2(x.y, x.z, x.cluster, x.clusters, x.blocking, alpha)
    }
    fn point(&self, x: &Experiment) -> Option<f64> {
        super::dm_point_in(x.y, x.z, x.cluster, x.clusters, x.blocking)
    }
}

impl Estimator for ClusterMeans {
    fn kind(&self) -> EstimatorKind {
        EstimatorKind::ClusterMeans
    }
    fn estimate(&self, x: &Experiment, alpha: f64) -> Outcome {
        super::cluster_means_in(x.y, x.z, x.cluster, x.clusters, x.blocking, alpha)
    }
    fn point(&self, x: &Experiment) -> Option<f64> {
        super::cluster_means_point_in(x.y, x.z, x.cluster, x.clusters, x.blocking)
    }
}

impl Estimator for Regression {
    fn kind(&self) -> EstimatorKind {
        EstimatorKind::Regression
    }
    fn estimate(&self, x: &Experiment, alpha: f64) -> Outcome {
        super::regression(
            x.y,
            x.z,
            x.e,
            x.connected_share,
            x.cluster,
            x.clusters,
            x.blocking,
            alpha,
        )
    }
    fn point(&self, x: &Experiment) -> Option<f64> {
        super::regression_point_in(
            x.y,
            x.z,
            x.e,
            x.connected_share,
            x.cluster,
            x.clusters,
            x.blocking,
        )
    }
}

impl Estimator for Cuped {
    fn kind(&self) -> EstimatorKind {
        EstimatorKind::Cuped
    }
    fn estimate(&self, x: &Experiment, alpha: f64) -> Outcome {
        super::cuped(
            x.y, x.z, x.x, x.more, x.cluster, x.clusters, x.blocking, alpha,
        )
    }
    fn point(&self, x: &Experiment) -> Option<f64> {
        super::cuped_adjusted(x.y, x.x, x.more)
            .and_then(|adj| super::dm_point_in(&adj, x.z, x.cluster, x.clusters, x.blocking))
    }
}

/// The analyst estimator of `kind`; `None` for the exposure estimators (HT,
/// Hájek), which need their design's exposure probabilities and live with
/// the engine's exposure set-up.
pub fn analyst(kind: EstimatorKind) -> Option<&'static dyn Estimator> {
    match kind {
        EstimatorKind::DmNaive => Some(&DmNaive),
        EstimatorKind::DmCr2 => Some(&DmCr2),
        EstimatorKind::ClusterMeans => Some(&ClusterMeans),
        EstimatorKind::Regression => Some(&Regression),
        EstimatorKind::Cuped => Some(&Cuped),
        EstimatorKind::Ht | EstimatorKind::Hajek | EstimatorKind::HajekCr2 => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_analyst_estimator_reports_its_kind_and_agrees_with_its_point() {
        let cluster: Vec<u32> = (0..12).map(|i| i / 2).collect();
        let z: Vec<u8> = (0..12).map(|i| u8::from((i / 2) % 2 == 0)).collect();
        let y: Vec<f64> = (0..12)
            .map(|i| 1.0 + 0.3 * z[i] as f64 + 0.01 * (i * i) as f64)
            .collect();
        let e: Vec<f64> = (0..12).map(|i| 0.1 * (i % 5) as f64).collect();
        let x: Vec<f64> = (0..12).map(|i| (i % 3) as f64).collect();
        let ex = Experiment {
            y: &y,
            z: &z,
            e: &e,
            x: &x,
            more: &[],
            cluster: &cluster,
            clusters: 6,
            blocking: Blocking::None,
            connected_share: 1.0,
        };
        for kind in EstimatorKind::ALL {
            let est = analyst(kind).expect("analyst estimator");
            assert_eq!(est.kind(), kind);
            let full = est.estimate(&ex, 0.05).expect("estimate");
            let point = est.point(&ex).expect("point");
            assert!((full.value - point).abs() < 1e-12, "{kind:?}");
        }
        assert!(analyst(EstimatorKind::Ht).is_none());
    }
}
