//! Time Louvain on the 100,000-node planted partition, for profiling.
//! `cargo run --release --example louvain_phases`
use spillover::graph::generate::{Model, Sbm};
use spillover::partition::{louvain, Method};
fn main() {
    let g = Model::Sbm(Sbm {
        n: Some(100_000),
        blocks: Some(1000),
        mean_degree: Some(20.0),
        mu: Some(0.2),
        ..Default::default()
    })
    .generate(1)
    .expect("valid")
    .graph;
    for _ in 0..3 {
        let t = std::time::Instant::now();
        let p = Method::Louvain(louvain::Params::default())
            .run(&g)
            .expect("ok");
        println!(
            "louvain: {:.3} s, {} clusters",
            t.elapsed().as_secs_f64(),
            p.count()
        );
    }
}
