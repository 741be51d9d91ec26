//! Write a synthetic population file for the ego-Facebook graph: what a
//! warehouse export of last month's per-user metrics looks like, without
//! any real user data. `scenarios/own_population.toml` reads its output.
//!
//!     cargo run --release --example make_population -- \
//!         ../shared/data/facebook_combined.txt scenarios/data/facebook_population.csv
//!
//! Columns: `user_id` (the edge list's ids, plus 60 users without edges,
//! ids 90000…), `messages_sent` and `messages_sent_next` (two months of a
//! heavy-tailed count: log-normal with a Louvain-community effect and a
//! degree effect, the second month sharing the user's level), `active_days`
//! (0–30, correlated with the level), `tenure_days`, `spam_reports` (rare
//! counts) and `country` (each community has a home country that 70 % of its
//! users share). Deterministic: the same seed writes the same file.

use rand::RngExt;
use rand_distr::{Distribution, StandardNormal};
use spillover::graph::io::{read_edge_list, ReadOptions};
use spillover::partition::{louvain, Method};
use std::fmt::Write as _;

fn main() -> spillover::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (input, output) = match args.as_slice() {
        [_, i, o] => (i.clone(), o.clone()),
        _ => {
            eprintln!("usage: make_population EDGE_LIST OUT.csv");
            std::process::exit(2);
        }
    };
    let (g, _) = read_edge_list(std::path::Path::new(&input), &ReadOptions::default())?;
    let communities = Method::Louvain(louvain::Params {
        seed: 7,
        ..Default::default()
    })
    .run(&g)?;
    let mut r = spillover::rng::stream(2026, &[42]);
    let mut normal = || -> f64 { StandardNormal.sample(&mut r) };
    let k = communities.count();
    let community_effect: Vec<f64> = (0..k).map(|_| 0.6 * normal()).collect();
    let countries = ["us", "in", "br", "gb", "de", "mx", "id", "ng"];
    let mut r = spillover::rng::stream(2026, &[43]);
    let home: Vec<usize> = (0..k).map(|_| r.random_range(0..countries.len())).collect();
    let n = g.node_count();
    let mean_log_degree = (0..n as u32)
        .map(|u| ((g.out_degree(u) + 1) as f64).ln())
        .sum::<f64>()
        / n as f64;
    let mut text = String::from(
        "user_id,messages_sent,messages_sent_next,active_days,tenure_days,spam_reports,country\n",
    );
    let mut r = spillover::rng::stream(2026, &[44]);
    let mut row = |id: String, level: f64, home: Option<usize>, r: &mut spillover::rng::Rng| {
        let z = |r: &mut spillover::rng::Rng| -> f64 { StandardNormal.sample(r) };
        let month = |r: &mut spillover::rng::Rng| (level + 0.5 * z(r)).exp().round();
        let (m1, m2) = (month(r), month(r));
        let active = (30.0 / (1.0 + (-(level - 2.0) - 0.5 * z(r)).exp())).round();
        let tenure = (365.0 * (0.5 + 0.4 * z(r)).exp()).round();
        let spam =
            f64::from(u8::from(r.random_bool(0.02))) + f64::from(u8::from(r.random_bool(0.005)));
        let country = match home {
            Some(h) if r.random_bool(0.7) => countries[h],
            _ => countries[r.random_range(0..countries.len())],
        };
        writeln!(text, "{id},{m1},{m2},{active},{tenure},{spam},{country}").unwrap();
    };
    for u in 0..n as u32 {
        let c = communities.labels()[u as usize] as usize;
        let log_degree = ((g.out_degree(u) + 1) as f64).ln() - mean_log_degree;
        let level = 2.0 + community_effect[c] + 0.4 * log_degree + 0.7 * normal_of(&mut r);
        row(g.label(u).into_owned(), level, Some(home[c]), &mut r);
    }
    // Users who signed up but have no friends yet: isolated users.
    for i in 0..60 {
        let level = 1.0 + 0.7 * normal_of(&mut r);
        row(format!("{}", 90_000 + i), level, None, &mut r);
    }
    std::fs::write(&output, text)
        .map_err(|e| spillover::Error::io(format!("writing {output}"), e))?;
    eprintln!("wrote {output}: {} users ({k} communities)", n + 60);
    Ok(())
}

fn normal_of(r: &mut spillover::rng::Rng) -> f64 {
    StandardNormal.sample(r)
}
