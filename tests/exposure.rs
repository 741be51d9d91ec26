//! Exact exposure probabilities against the frequencies observed in 100,000
//! simulated assignments (each within 4 binomial SEs), for full, fractional
//! and k-neighbour exposure under user and cluster designs, Bernoulli and
//! complete randomization.

use spillover::data::design::{
    Assignment, Design, DesignSpec, PartitionMethod, PartitionSpec, StrataBy, Unit,
};
use spillover::data::exposure::{conditions, exact, Mapping};
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
                .map(|m| exact(&g, &d, m).expect("valid").expect("exact"))
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

/// A hub whose `2s` leaves form `s` two-leaf clusters (the hub alone in its
/// own cluster), plus `extra` isolated nodes each in a cluster of its own.
fn hub_graph(s: usize, extra: usize) -> (spillover::Graph, Partition) {
    use spillover::graph::{BuildOptions, GraphBuilder};
    let n = 1 + 2 * s + extra;
    let mut b = GraphBuilder::new(n, false, false);
    for leaf in 1..=2 * s as u32 {
        b.add_edge(0, leaf, 1.0);
    }
    let (g, _) = b.build(&BuildOptions::default()).unwrap();
    let labels: Vec<u32> = (0..n as u32)
        .map(|i| match i {
            0 => 0,
            i if i as usize <= 2 * s => 1 + (i - 1) / 2,
            i => (s + 1) as u32 + (i - 1 - 2 * s as u32),
        })
        .collect();
    (g, Partition::from_labels(&labels))
}

/// Issue 9: the exact fractional probability of a hub touching thousands of
/// clusters is the binomial (Bernoulli) or hypergeometric (complete) closed
/// form, not an overflowed count clamped to 1.
#[test]
fn hub_probabilities_match_the_binomial_and_hypergeometric_closed_forms() {
    use statrs::distribution::{Binomial, DiscreteCDF, Hypergeometric};
    let m = Mapping::Fractional { q: 0.5 };
    for s in [500usize, 1500, 5000] {
        let (g, part) = hub_graph(s, 0);
        let x = vec![0.0; g.node_count()];
        let d = Design::new(
            spec(Unit::Cluster, Assignment::Bernoulli, 0.5),
            Some(part),
            &x,
        )
        .unwrap();
        let ex = exact(&g, &d, &m).unwrap().unwrap();
        // Own cluster in the arm, and at least s of the 2s leaves: ≥ s/2 pair clusters.
        let need = s.div_ceil(2) as u64;
        let truth = 0.5 * Binomial::new(0.5, s as u64).unwrap().sf(need - 1);
        eprintln!("s = {s}: hub P(treated) {} vs {truth}", ex.treated[0]);
        assert!(
            (ex.treated[0] - truth).abs() < 1e-12,
            "s = {s}: {} vs {truth}",
            ex.treated[0]
        );
        assert!((ex.control[0] - truth).abs() < 1e-12);
        if s == 1500 {
            assert!((truth - 0.2551).abs() < 1e-4, "the issue's figure: {truth}");
        }
    }
    // Complete randomization of K = 2s + 1 clusters (s touching the hub's
    // leaves, s untouched): J ~ Hypergeometric given the hub's own cluster.
    for s in [500usize, 1500] {
        let (g, part) = hub_graph(s, s);
        let k = part.count() as u64;
        let x = vec![0.0; g.node_count()];
        let d = Design::new(
            spec(Unit::Cluster, Assignment::Complete, 0.5),
            Some(part),
            &x,
        )
        .unwrap();
        let ex = exact(&g, &d, &m).unwrap().unwrap();
        let mt = (0.5 * k as f64).round() as u64;
        let need = s.div_ceil(2) as u64;
        let tail = |arm: u64| {
            arm as f64 / k as f64
                * Hypergeometric::new(k - 1, arm - 1, s as u64)
                    .unwrap()
                    .sf(need - 1)
        };
        let (t, c) = (tail(mt), tail(k - mt));
        eprintln!(
            "complete s = {s}: {} vs {t}, {} vs {c}",
            ex.treated[0], ex.control[0]
        );
        assert!(
            (ex.treated[0] - t).abs() < 1e-10,
            "{} vs {t}",
            ex.treated[0]
        );
        assert!(
            (ex.control[0] - c).abs() < 1e-10,
            "{} vs {c}",
            ex.control[0]
        );
    }
}

mod enumeration {
    //! Exact probabilities against enumeration of every assignment, on random
    //! small graphs, partitions and designs.
    use super::*;
    use proptest::prelude::*;
    use spillover::graph::{BuildOptions, GraphBuilder};

    /// n, edges, raw cluster labels, cluster design, p in tenths, complete.
    type Case = (usize, Vec<(u32, u32)>, Vec<u32>, bool, u32, bool);

    fn case() -> impl Strategy<Value = Case> {
        (3usize..=8).prop_flat_map(|n| {
            (
                Just(n),
                proptest::collection::vec((0..n as u32, 0..n as u32), 0..3 * n),
                proptest::collection::vec(0u32..4, n),
                any::<bool>(),
                1u32..=9,
                any::<bool>(),
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn exact_equals_enumeration((n, edges, raw, cluster, tenths, complete) in case()) {
            let mut b = GraphBuilder::new(n, false, false);
            for &(u, v) in &edges {
                b.add_edge(u, v, 1.0);
            }
            let (g, _) = b.build(&BuildOptions::default()).unwrap();
            let p = tenths as f64 / 10.0;
            let unit = if cluster { Unit::Cluster } else { Unit::User };
            let part = cluster.then(|| Partition::from_labels(&raw));
            // A cluster design needs two clusters (refused otherwise, tested elsewhere).
            prop_assume!(part.as_ref().is_none_or(|p| p.count() >= 2));
            let assignment = if complete { Assignment::Complete } else { Assignment::Bernoulli };
            let x = vec![0.0; n];
            let d = Design::new(spec(unit, assignment, p), part, &x).unwrap();
            let labels: Vec<u32> = if cluster { d.clusters.labels().to_vec() } else { (0..n as u32).collect() };
            let k = d.units();
            let mt = (p * k as f64).round() as u32;
            for m in [
                Mapping::Full,
                Mapping::Fractional { q: 0.5 },
                Mapping::Fractional { q: 0.75 },
                Mapping::KNeighbours { k: 1 },
                Mapping::KNeighbours { k: 2 },
            ] {
                let ex = exact(&g, &d, &m).unwrap().unwrap();
                let (mut t, mut c) = (vec![0.0; n], vec![0.0; n]);
                let total = if complete {
                    (0..1u32 << k).filter(|mask| mask.count_ones() == mt).count() as f64
                } else {
                    1.0
                };
                for mask in 0u32..1 << k {
                    let ones = mask.count_ones();
                    let w = if complete {
                        if ones != mt { continue; }
                        1.0 / total
                    } else {
                        p.powi(ones as i32) * (1.0 - p).powi(k as i32 - ones as i32)
                    };
                    let z: Vec<u8> = labels.iter().map(|&l| (mask >> l & 1) as u8).collect();
                    for i in 0..n {
                        let (a, b) = conditions(&g, &m, &z, i as u32);
                        t[i] += w * f64::from(u8::from(a));
                        c[i] += w * f64::from(u8::from(b));
                    }
                }
                for i in 0..n {
                    prop_assert!((ex.treated[i] - t[i]).abs() < 1e-12, "{m:?} node {i}: {} vs {}", ex.treated[i], t[i]);
                    prop_assert!((ex.control[i] - c[i]).abs() < 1e-12, "{m:?} node {i}: {} vs {}", ex.control[i], c[i]);
                }
            }
        }
    }
}
