//! Profile replicates on the 1,000,000-node planted partition (difference in
//! means only, or with `ht` as second argument also full-exposure HT and
//! Hájek). `cargo run --release --example replicate_profile [user|cluster] [ht]`
use spillover::{diagnosis, scenario};
use std::path::Path;
fn main() {
    let design = std::env::args().nth(1).unwrap_or_else(|| "user".into());
    let ht = std::env::args().nth(2).is_some_and(|a| a == "ht");
    let text = r#"
seed = 1
replicates = 96
[graph]
model = "sbm"
n = 1000000
blocks = 1000
mean_degree = 20.0
mu = 0.2
[[design]]
name = "user"
[[design]]
name = "cluster"
unit = "cluster"
partition = { method = "planted" }
[analysis]
estimators = ["dm-naive"]
"#;
    let text = if ht {
        text.replace(r#"["dm-naive"]"#, r#"["dm-naive", "ht", "hajek"]"#)
    } else {
        text.to_string()
    };
    let s = scenario::parse(&text, Path::new("profile.toml")).expect("valid");
    let p = scenario::prepare(&s).expect("prepared");
    let i = p
        .designs
        .iter()
        .position(|d| d.spec.name == design)
        .expect("design");
    let t = std::time::Instant::now();
    let run = diagnosis::run_design(&p.graph, &p.population, &p.designs[i], &p.config, i, &|| {})
        .expect("run");
    let dt = t.elapsed().as_secs_f64() / run.replicates.len() as f64;
    println!(
        "{design}: {:.1} ms per replicate ({} threads)",
        dt * 1e3,
        rayon::current_num_threads()
    );
}
