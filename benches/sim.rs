//! Replicates per second on a 1,000,000-node planted partition (1,000 blocks,
//! mean degree 20, mu 0.2), user and cluster designs, difference in means
//! only (the replicate benches/replicate_numpy.py times) and all estimators;
//! one at a time, and in batches sharing one exposure sweep, as a run does.
//! See BENCHMARKS.md.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rayon::prelude::*;
use spillover::{diagnosis, scenario};
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

fn scenario_text(estimators: &str) -> String {
    format!(
        r#"
seed = 1
replicates = 2
[graph]
model = "sbm"
n = 1000000
blocks = 1000
mean_degree = 20.0
mu = 0.2
[outcome]
icc = 0.05
covariate_correlation = 0.5
[[design]]
name = "user"
[[design]]
name = "cluster"
unit = "cluster"
partition = {{ method = "planted" }}
[analysis]
estimators = [{estimators}]
"#
    )
}

fn bench(c: &mut Criterion) {
    for (label, est) in [
        ("dm", r#""dm-naive""#),
        (
            "all",
            r#""dm-naive", "dm-cr2", "cluster-means", "regression", "cuped""#,
        ),
    ] {
        let s = scenario::parse(&scenario_text(est), Path::new("bench.toml")).expect("valid");
        let p = scenario::prepare(&s).expect("prepared");
        let mut g = c.benchmark_group(format!("replicates_1m_{label}"));
        g.sample_size(10).measurement_time(Duration::from_secs(15));
        g.throughput(Throughput::Elements(p.config.replicates as u64));
        for (i, d) in p.designs.iter().enumerate() {
            // The exposure operator is built once per design, as in a run.
            let engine =
                diagnosis::Engine::new(&p.graph, &p.population, d, &p.config, i).expect("engine");
            let width = d.units();
            g.bench_function(d.spec.name.clone(), |b| {
                b.iter(|| {
                    let reps: Vec<diagnosis::Replicate> = (0..p.config.replicates)
                        .into_par_iter()
                        .map(|r| {
                            engine
                                .replicate(r, &mut vec![0.0; width])
                                .expect("replicate")
                        })
                        .collect();
                    black_box(reps.len())
                })
            });
        }
        g.finish();
        // As a run does it: batches of `batch_lanes` replicates, one shared
        // exposure sweep each, the batches in parallel.
        let mut g = c.benchmark_group(format!("replicates_1m_{label}_batched"));
        g.sample_size(10).measurement_time(Duration::from_secs(20));
        g.throughput(Throughput::Elements(BATCH as u64));
        for (i, d) in p.designs.iter().enumerate() {
            let engine =
                diagnosis::Engine::new(&p.graph, &p.population, d, &p.config, i).expect("engine");
            let (width, lanes) = (d.units(), engine.batch_lanes().max(1));
            g.bench_function(d.spec.name.clone(), |b| {
                b.iter(|| {
                    let firsts: Vec<usize> = (0..BATCH).step_by(lanes).collect();
                    let reps: Vec<_> = firsts
                        .into_par_iter()
                        .map_init(diagnosis::Scratch::default, |s, first| {
                            let rs = first..(first + lanes).min(BATCH);
                            engine.replicate_batch(rs, width, s, &|| {}).expect("batch")
                        })
                        .collect();
                    black_box(reps.len())
                })
            });
        }
        g.finish();
    }
}

/// Replicates per iteration of the batched benches (one chunk of a run).
const BATCH: usize = 64;

/// Exact exposure probabilities for every node of the 1M-node graph.
fn exposure_probabilities(c: &mut Criterion) {
    use spillover::data::exposure::{exact, Mapping};
    let s =
        scenario::parse(&scenario_text(r#""dm-naive""#), Path::new("bench.toml")).expect("valid");
    let p = scenario::prepare(&s).expect("prepared");
    let mut g = c.benchmark_group("exposure_probabilities_1m");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    for d in &p.designs {
        for m in [
            Mapping::Full,
            Mapping::Fractional { q: 0.75 },
            Mapping::KNeighbours { k: 5 },
        ] {
            g.bench_function(format!("{}/{}", d.spec.name, m.name()), |b| {
                b.iter(|| {
                    black_box(
                        exact(&p.graph, d, &m)
                            .expect("valid")
                            .expect("exact")
                            .treated
                            .len(),
                    )
                })
            });
        }
    }
    g.finish();
}

/// Issue 9: full-exposure HT and Hájek (with their Aronow–Samii variances,
/// model and null runs) against difference in means alone, on the
/// 1,000,000-node planted partition with 1,000 clusters of 1,000 and with
/// 10,000 clusters of 100, under cluster Bernoulli and complete randomization.
fn ht_1m(c: &mut Criterion) {
    for blocks in [1000usize, 10_000] {
        let text = |est: &str| {
            format!(
                r#"
seed = 1
replicates = 2
[graph]
model = "sbm"
n = 1000000
blocks = {blocks}
mean_degree = 20.0
mu = 0.2
[[design]]
name = "bernoulli"
unit = "cluster"
assignment = "bernoulli"
partition = {{ method = "planted" }}
[[design]]
name = "complete"
unit = "cluster"
assignment = "complete"
partition = {{ method = "planted" }}
[analysis]
estimators = [{est}]
"#
            )
        };
        let mut g = c.benchmark_group(format!("ht_1m_{blocks}_clusters"));
        g.sample_size(10).measurement_time(Duration::from_secs(10));
        g.throughput(Throughput::Elements(2));
        for (label, est) in [
            ("dm", r#""dm-naive""#),
            ("dm+ht+hajek", r#""dm-naive", "ht", "hajek""#),
        ] {
            let s = scenario::parse(&text(est), Path::new("bench.toml")).expect("valid");
            let p = scenario::prepare(&s).expect("prepared");
            for (i, d) in p.designs.iter().enumerate() {
                let started = std::time::Instant::now();
                let engine = diagnosis::Engine::new(&p.graph, &p.population, d, &p.config, i)
                    .expect("engine");
                eprintln!(
                    "{blocks} clusters, {}, {label}: design setup {:.2} s",
                    d.spec.name,
                    started.elapsed().as_secs_f64()
                );
                let width = d.units();
                g.bench_function(format!("{}/{label}", d.spec.name), |b| {
                    b.iter(|| {
                        let reps: Vec<diagnosis::Replicate> = (0..2)
                            .into_par_iter()
                            .map(|r| {
                                engine
                                    .replicate(r, &mut vec![0.0; width])
                                    .expect("replicate")
                            })
                            .collect();
                        black_box(reps.len())
                    })
                });
            }
        }
        g.finish();
    }
}

criterion_group!(benches, bench, exposure_probabilities, ht_1m);
criterion_main!(benches);
