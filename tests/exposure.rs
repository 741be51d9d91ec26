//! Exact exposure probabilities against the frequencies observed in 100,000
//! simulated assignments (each within 4 binomial SEs), for full, fractional
//! and k-neighbour exposure under user and cluster designs, Bernoulli and
//! complete randomization.

use spillover::design::{
    Assignment, Design, DesignSpec, PartitionMethod, PartitionSpec, StrataBy, Unit,
};
use spillover::exposure::{conditions, exact, Mapping};
use spillover::graph::generate::{Model, Sbm};
use spillover::partition::Partition;

fn spec(unit: Unit, assignment: Assignment, p: f64) -> DesignSpec {
    DesignSpec {
        name: "d".into(),
        unit,
        assignment,
        treated_share: p,
        partition: (unit == Unit::Cluster).then_some(PartitionSpec::new(PartitionMethod::Planted)),
        strata_by: StrataBy::Size,
        strata: 4,
        saturations: None,
        saturation_shares: None,
    }
}

#[test]
fn exact_probabilities_match_simulated_frequencies() {
    let gen = Model::Sbm(Sbm {
        n: Some(240),
        blocks: Some(12),
        mean_degree: Some(6.0),
        mu: Some(0.3),
        ..Default::default()
    })
    .generate(3)
    .unwrap();
    let g = gen.graph;
    let planted = Partition::from_labels(gen.communities.as_ref().unwrap());
    let x = vec![0.0; g.node_count()];
    let sample: Vec<u32> = (0..g.node_count() as u32).step_by(8).collect();
    let draws = 100_000usize;
    let mut checked = 0;
    for unit in [Unit::User, Unit::Cluster] {
        for assignment in [Assignment::Bernoulli, Assignment::Complete] {
            let clusters = (unit == Unit::Cluster).then(|| planted.clone());
            let d = Design::new(spec(unit, assignment, 0.4), clusters, &x).unwrap();
            let mappings = [
                Mapping::Full,
                Mapping::Fractional { q: 0.75 },
                Mapping::KNeighbours { k: 2 },
            ];
            let exact: Vec<_> = mappings
                .iter()
                .map(|m| exact(&g, &d, m).expect("exact"))
                .collect();
            let mut counts = vec![vec![(0u32, 0u32); sample.len()]; mappings.len()];
            let mut r = spillover::rng::stream(99, &[unit as u64, assignment as u64]);
            let (mut zc, mut z) = (Vec::new(), vec![0u8; g.node_count()]);
            for _ in 0..draws {
                d.draw(&mut r, &mut zc, &mut z);
                for (mi, m) in mappings.iter().enumerate() {
                    for (si, &i) in sample.iter().enumerate() {
                        let (t, c) = conditions(&g, m, &z, i);
                        counts[mi][si].0 += u32::from(t);
                        counts[mi][si].1 += u32::from(c);
                    }
                }
            }
            for (mi, m) in mappings.iter().enumerate() {
                for (si, &i) in sample.iter().enumerate() {
                    for (p, hits, arm) in [
                        (exact[mi].treated[i as usize], counts[mi][si].0, "treated"),
                        (exact[mi].control[i as usize], counts[mi][si].1, "control"),
                    ] {
                        let freq = hits as f64 / draws as f64;
                        let se = (p * (1.0 - p) / draws as f64).sqrt();
                        assert!(
                            (freq - p).abs() <= 4.0 * se,
                            "{unit:?} {assignment:?} {} node {i} {arm}: exact {p}, observed {freq} (4 SE = {})",
                            m.name(),
                            4.0 * se
                        );
                        checked += 1;
                    }
                }
            }
        }
    }
    assert_eq!(checked, 2 * 2 * 3 * 30 * 2);
}
