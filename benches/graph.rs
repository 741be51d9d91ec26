//! Graph benches: generating a 1,000,000-node planted partition (mean degree 20)
//! and reading the ego-Facebook edge list. See BENCHMARKS.md for figures.

use criterion::{criterion_group, criterion_main, Criterion};
use spillover::graph::generate::{Model, Sbm};
use spillover::graph::io::{read_edge_list, ReadOptions};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

fn sbm_1m(c: &mut Criterion) {
    let model = Model::Sbm(Sbm {
        n: Some(1_000_000),
        blocks: Some(1_000),
        mean_degree: Some(20.0),
        mu: Some(0.2),
        ..Default::default()
    });
    let mut g = c.benchmark_group("generate");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("sbm_1m_nodes_mean_degree_20", |b| {
        b.iter(|| black_box(model.generate(1).expect("valid").graph.edge_count()))
    });
    g.finish();
}

fn read_facebook(c: &mut Criterion) {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/facebook_combined.txt");
    if !path.exists() {
        eprintln!("skipping read_facebook: {} is missing", path.display());
        return;
    }
    let mut g = c.benchmark_group("read");
    g.sample_size(20);
    g.bench_function("facebook_combined", |b| {
        b.iter(|| {
            black_box(
                read_edge_list(&path, &ReadOptions::default())
                    .expect("readable")
                    .0
                    .edge_count(),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, sbm_1m, read_facebook);
criterion_main!(benches);
