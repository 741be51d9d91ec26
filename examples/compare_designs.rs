//! The library from Rust, without a scenario file: build a network, a
//! population and three designs, diagnose them, and print the comparison
//! and the recommendation.
//!
//!     cargo run --release --example compare_designs

use spillover::data::design::{Assignment, Design, DesignSpec, PartitionMethod, PartitionSpec};
use spillover::diagnosis::{build, simulate, Prepared, SimConfig};
use spillover::graph::generate::{Model, Sbm};
use spillover::model::{OutcomeSpec, Population};
use spillover::partition::{louvain, Method, Partition};

fn main() -> spillover::Result<()> {
    // 10,000 users in 100 communities; 20 % of friendships cross communities.
    let gen = Model::Sbm(Sbm {
        n: Some(10_000),
        blocks: Some(100),
        mean_degree: Some(12.0),
        mu: Some(0.2),
        ..Default::default()
    })
    .generate(2026)?;
    let graph = gen.graph;
    let planted = Partition::from_labels(gen.communities.as_ref().expect("sbm has communities"));
    // Outcomes: ICC 0.05 over the communities, direct effect 0.05, spillover 0.05.
    let outcome = OutcomeSpec {
        direct_effect: 0.05,
        spillover: 0.05,
        covariate_correlation: 0.6,
        ..Default::default()
    };
    let pop = Population::draw(&outcome, &graph, planted, 2026)?;
    // Clusters found by Louvain (what a team without planted labels would use).
    let clusters = Method::Louvain(louvain::Params {
        resolution: 2.0,
        seed: 2026,
        ..Default::default()
    })
    .run(&graph)?;
    let user = Design::new(DesignSpec::user("user"), None, &pop.x)?;
    let louvain_spec = PartitionSpec::new(PartitionMethod::Louvain);
    let cluster = Design::new(
        DesignSpec::cluster("louvain", louvain_spec.clone()),
        Some(clusters.clone()),
        &pop.x,
    )?;
    let mut strat = DesignSpec::cluster("louvain-strat", louvain_spec);
    strat.assignment = Assignment::Stratified;
    let stratified = Design::new(strat, Some(clusters), &pop.x)?;
    let p = Prepared::new(
        graph,
        "SBM, 10,000 users in 100 communities",
        pop,
        vec![user, cluster, stratified],
        SimConfig::new(2026, 200),
    );
    let runs = simulate(&p, &|| {})?;
    let report = build("compare_designs", &p, &runs, &[None, None, None]);
    print!("{}", spillover::report::table(&report));
    Ok(())
}
