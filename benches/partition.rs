//! Partitioner benches: Louvain and Leiden on ego-Facebook and on planted
//! partitions of 100,000 and 1,000,000 nodes (mean degree 20, mu 0.2), on the
//! default thread count. See BENCHMARKS.md for figures and the comparison with
//! networkit and igraph (benches/compare_louvain.py).

use criterion::{criterion_group, criterion_main, Criterion};
use spillover::graph::generate::{Model, Sbm};
use spillover::graph::io::{read_edge_list, ReadOptions};
use spillover::partition::{balanced, louvain, Method};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

fn planted(n: usize) -> spillover::Graph {
    Model::Sbm(Sbm {
        n: Some(n),
        blocks: Some(n / 100),
        mean_degree: Some(20.0),
        mu: Some(0.2),
        ..Default::default()
    })
    .generate(1)
    .expect("valid")
    .graph
}

fn bench(c: &mut Criterion) {
    let mut graphs: Vec<(&str, spillover::Graph)> = Vec::new();
    let fb = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/facebook_combined.txt");
    if let Ok((g, _)) = read_edge_list(&fb, &ReadOptions::default()) {
        graphs.push(("facebook", g));
    }
    graphs.push(("planted_100k", planted(100_000)));
    graphs.push(("planted_1m", planted(1_000_000)));
    let p = louvain::Params::default();
    let mut group = c.benchmark_group("partition");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for (name, g) in &graphs {
        group.bench_function(format!("louvain/{name}"), |b| {
            b.iter(|| black_box(Method::Louvain(p.clone()).run(g).expect("ok").count()))
        });
        group.bench_function(format!("leiden/{name}"), |b| {
            b.iter(|| black_box(Method::Leiden(p.clone()).run(g).expect("ok").count()))
        });
    }
    let g = &graphs
        .iter()
        .find(|(n, _)| *n == "planted_100k")
        .expect("built")
        .1;
    let bp = balanced::Params {
        parts: 1000,
        ..Default::default()
    };
    group.bench_function("metis_k1000/planted_100k", |b| {
        b.iter(|| black_box(Method::Metis(bp.clone()).run(g).expect("ok").count()))
    });
    group.bench_function("ldg_k1000/planted_100k", |b| {
        b.iter(|| black_box(Method::Ldg(bp.clone()).run(g).expect("ok").count()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
