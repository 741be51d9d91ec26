//! Generator tests: statistics against closed-form expectations with
//! tolerances of 4 standard deviations, and determinism across thread counts.

mod common;

use common::{degrees, mean_var, on_threads, within_4sd};
use spillover::graph::generate::{Ba, Gnm, Gnp, Lfr, Messaging, Model, Sbm, Ws};
use spillover::graph::stats;

fn gen(model: &Model, seed: u64) -> spillover::graph::generate::Generated {
    model.generate(seed).expect("valid parameters")
}

/// The same seed gives the same graph on 1 and 2 threads; another seed does not.
fn assert_deterministic(model: &Model) {
    let one = on_threads(1, || gen(model, 11));
    let two = on_threads(2, || gen(model, 11));
    assert_eq!(one.graph, two.graph, "{model:?}: 1 vs 2 threads");
    assert_eq!(one.communities, two.communities);
    let other = gen(model, 12);
    assert_ne!(one.graph, other.graph, "{model:?}: seeds 11 and 12 agree");
}

#[test]
fn gnp_edge_count_and_degree_moments() {
    let (n, p) = (3000usize, 0.004);
    let model = Model::Gnp(Gnp { n, p });
    let g = gen(&model, 1).graph;
    let pairs = (n * (n - 1) / 2) as f64;
    within_4sd(
        "G(n,p) edges",
        g.edge_count() as f64,
        pairs * p,
        (pairs * p * (1.0 - p)).sqrt(),
    );
    let d: Vec<f64> = degrees(&g).into_iter().map(|x| x as f64).collect();
    let (_, var) = mean_var(&d);
    let sigma2 = (n - 1) as f64 * p * (1.0 - p);
    // Sample variance of n near-normal values: sd ≈ σ²·sqrt(2/(n−1)).
    within_4sd(
        "G(n,p) degree variance",
        var,
        sigma2,
        sigma2 * (2.0 / (n - 1) as f64).sqrt(),
    );
    assert_deterministic(&model);
}

#[test]
fn gnm_exact_edge_count_sparse_and_dense() {
    let g = gen(&Model::Gnm(Gnm { n: 1000, m: 5000 }), 3).graph;
    assert_eq!(g.edge_count(), 5000);
    assert_eq!(g.self_loop_count(), 0);
    // Dense: drawn through the complement.
    let g = gen(&Model::Gnm(Gnm { n: 20, m: 180 }), 3).graph;
    assert_eq!(g.edge_count(), 180);
    assert!(Model::Gnm(Gnm { n: 20, m: 191 }).generate(1).is_err());
    assert_deterministic(&Model::Gnm(Gnm { n: 1000, m: 5000 }));
}

#[test]
fn barabasi_albert_edges_and_degree_distribution() {
    let (n, m) = (50_000usize, 3usize);
    let model = Model::Ba(Ba { n, m });
    let g = gen(&model, 5).graph;
    assert_eq!(g.edge_count(), m + (n - m - 1) * m);
    let d = degrees(&g);
    assert!(d.iter().all(|&k| k >= 1));
    // Bollobás et al.: P(k) = 2m(m+1) / (k(k+1)(k+2)) for k ≥ m.
    for k in m..m + 4 {
        let pk = 2.0 * (m * (m + 1)) as f64 / (k * (k + 1) * (k + 2)) as f64;
        let share = d.iter().filter(|&&x| x == k).count() as f64 / n as f64;
        within_4sd(
            &format!("BA share of degree {k}"),
            share,
            pk,
            (pk * (1.0 - pk) / n as f64).sqrt(),
        );
    }
    assert_deterministic(&Model::Ba(Ba { n: 2000, m: 2 }));
}

#[test]
fn watts_strogatz_lattice_clustering_and_rewired_share() {
    let (n, k) = (10_000usize, 10usize);
    let g = gen(&Model::Ws(Ws { n, k, beta: 0.0 }), 1).graph;
    assert_eq!(g.edge_count(), n * k / 2);
    let c = stats::clustering(&g, 1).average;
    let exact = 3.0 * (k - 2) as f64 / (4.0 * (k - 1) as f64);
    assert!((c - exact).abs() < 1e-12, "ring clustering {c} vs {exact}");

    let beta = 0.3;
    let model = Model::Ws(Ws { n, k, beta });
    let g = gen(&model, 2).graph;
    assert_eq!(g.edge_count(), n * k / 2);
    let ring = |u: u32, v: u32| {
        let d = (u as i64 - v as i64).unsigned_abs() as usize;
        d.min(n - d) <= k / 2
    };
    let long = g.edges().filter(|&(u, v, _)| !ring(u, v)).count() as f64;
    let m = (n * k / 2) as f64;
    // A rewired edge lands back on the ring with probability about k/n: ignore.
    within_4sd(
        "WS rewired edges",
        long,
        beta * m,
        (m * beta * (1.0 - beta)).sqrt(),
    );
    assert_deterministic(&Model::Ws(Ws {
        n: 2000,
        k: 6,
        beta: 0.2,
    }));
}

fn within_between(g: &spillover::Graph, community: &[u32]) -> (f64, f64) {
    let (mut w, mut b) = (0.0, 0.0);
    for (u, v, _) in g.edges() {
        if community[u as usize] == community[v as usize] {
            w += 1.0;
        } else {
            b += 1.0;
        }
    }
    (w, b)
}

#[test]
fn planted_partition_edge_counts_mean_degree_and_mixing() {
    let (n, blocks, d, mu) = (20_000usize, 100usize, 20.0, 0.2);
    let model = Model::Sbm(Sbm {
        n: Some(n),
        blocks: Some(blocks),
        mean_degree: Some(d),
        mu: Some(mu),
        ..Default::default()
    });
    let Model::Sbm(params) = &model else {
        unreachable!()
    };
    let r = params.resolve().unwrap();
    let g = gen(&model, 7);
    let community = g.communities.clone().unwrap();
    let s = (n / blocks) as f64;
    let within_pairs = blocks as f64 * s * (s - 1.0) / 2.0;
    let between_pairs = (n * (n - 1) / 2) as f64 - within_pairs;
    let (ew, eb) = (within_pairs * r.p_in, between_pairs * r.p_out);
    let (vw, vb) = (ew * (1.0 - r.p_in), eb * (1.0 - r.p_out));
    let (w, b) = within_between(&g.graph, &community);
    within_4sd("SBM within-block edges", w, ew, vw.sqrt());
    within_4sd("SBM between-block edges", b, eb, vb.sqrt());
    // Mean degree 2m/n has expectation d exactly.
    let mean_degree = 2.0 * g.graph.edge_count() as f64 / n as f64;
    within_4sd(
        "SBM mean degree",
        mean_degree,
        d,
        2.0 * (vw + vb).sqrt() / n as f64,
    );
    // Realized mixing B/(W+B), delta method.
    let t = ew + eb;
    let sd_mu = ((ew * ew * vb + eb * eb * vw) / t.powi(4)).sqrt();
    within_4sd("SBM realized mu", b / (w + b), mu, sd_mu);
    assert_deterministic(&Model::Sbm(Sbm {
        sizes: Some(vec![50, 100, 150]),
        p_in: Some(0.1),
        p_out: Some(0.01),
        ..Default::default()
    }));
}

#[test]
fn sbm_bad_parameters_are_refused() {
    let bad = [
        Sbm {
            n: Some(100),
            ..Default::default()
        },
        Sbm {
            n: Some(100),
            blocks: Some(10),
            p_in: Some(0.1),
            ..Default::default()
        },
        Sbm {
            n: Some(100),
            blocks: Some(10),
            mean_degree: Some(5.0),
            mu: Some(1.5),
            ..Default::default()
        },
        Sbm {
            n: Some(100),
            blocks: Some(10),
            p_in: Some(1.1),
            p_out: Some(0.1),
            ..Default::default()
        },
        Sbm {
            n: Some(100),
            blocks: Some(0),
            p_in: Some(0.1),
            p_out: Some(0.1),
            ..Default::default()
        },
    ];
    for p in bad {
        let e = Model::Sbm(p.clone()).generate(1).expect_err("refused");
        assert_eq!(e.exit_code(), 2, "{p:?}: {e}");
    }
}

/// MLE of the exponent of a continuous power law on known [lo, hi]: solves
/// mean(ln x) = E_tau[ln X] by bisection; returns (tau_hat, standard error).
fn truncated_power_law_mle(x: &[f64], lo: f64, hi: f64) -> (f64, f64) {
    // E and Var of ln X under tau, by numerical integration on a log grid.
    let moments = |tau: f64| {
        let steps = 20_000;
        let (a, b) = (lo.ln(), hi.ln());
        let h = (b - a) / steps as f64;
        let (mut z, mut m1, mut m2) = (0.0, 0.0, 0.0);
        for i in 0..=steps {
            let t = a + i as f64 * h;
            // density in t = ln x: x^(1 − tau)
            let f = ((1.0 - tau) * t).exp() * if i == 0 || i == steps { 0.5 } else { 1.0 };
            z += f;
            m1 += f * t;
            m2 += f * t * t;
        }
        let mean = m1 / z;
        (mean, m2 / z - mean * mean)
    };
    let target = x.iter().map(|v| v.ln()).sum::<f64>() / x.len() as f64;
    let (mut a, mut b) = (1.0001, 10.0);
    for _ in 0..100 {
        let mid = 0.5 * (a + b);
        if moments(mid).0 > target {
            a = mid;
        } else {
            b = mid;
        }
    }
    let tau = 0.5 * (a + b);
    (tau, 1.0 / (x.len() as f64 * moments(tau).1).sqrt())
}

#[test]
fn lfr_exponent_exact_expectations_and_mixing() {
    let p = Lfr {
        n: 4000,
        mean_degree: 15.0,
        max_degree: 60.0,
        degree_exponent: 2.5,
        community_exponent: 1.5,
        min_community: 20,
        max_community: 100,
        mu: 0.3,
    };
    let model = Model::Lfr(p.clone());
    let g = gen(&model, 3);
    let theta = g.expected_degrees.clone().unwrap();
    let community = g.communities.clone().unwrap();
    // The expected degrees follow the power law: exponent within 4 SE.
    let kmin = p.min_expected_degree().unwrap();
    let (tau, se) = truncated_power_law_mle(&theta, kmin, p.max_degree);
    within_4sd("LFR degree exponent", tau, p.degree_exponent, se);
    let (mt, _) = mean_var(&theta);
    let (_, vt) = mean_var(&theta);
    within_4sd(
        "LFR mean expected degree",
        mt,
        p.mean_degree,
        (vt / theta.len() as f64).sqrt(),
    );
    // Community sizes respect their bounds (the last may take spare nodes).
    let k = *community.iter().max().unwrap() as usize + 1;
    let mut sizes = vec![0usize; k];
    for &c in &community {
        sizes[c as usize] += 1;
    }
    assert!(sizes.iter().all(|&s| s >= p.min_community), "{sizes:?}");
    // Exact expected within and between edge counts of the Chung–Lu construction.
    let n = p.n;
    let mut s_c = vec![0.0; k];
    for u in 0..n {
        s_c[community[u] as usize] += (1.0 - p.mu) * theta[u];
    }
    let s_ext: f64 = theta.iter().map(|t| p.mu * t).sum();
    let (mut ew, mut vw, mut eb, mut vb) = (0.0, 0.0, 0.0, 0.0);
    for u in 0..n {
        for v in u + 1..n {
            if community[u] == community[v] {
                let c = community[u] as usize;
                let q = ((1.0 - p.mu).powi(2) * theta[u] * theta[v] / s_c[c]).min(1.0);
                ew += q;
                vw += q * (1.0 - q);
            } else {
                let q = (p.mu * p.mu * theta[u] * theta[v] / s_ext).min(1.0);
                eb += q;
                vb += q * (1.0 - q);
            }
        }
    }
    let (w, b) = within_between(&g.graph, &community);
    within_4sd("LFR within edges", w, ew, vw.sqrt());
    within_4sd("LFR between edges", b, eb, vb.sqrt());
    // Realized mixing against its exact expectation, and how far that is from mu.
    let t = ew + eb;
    let sd_mu = ((ew * ew * vb + eb * eb * vw) / t.powi(4)).sqrt();
    within_4sd("LFR realized mixing", b / (w + b), eb / t, sd_mu);
    eprintln!(
        "LFR: requested mu {}, expected mixing {:.4}, realized {:.4}",
        p.mu,
        eb / t,
        b / (w + b)
    );
    assert_deterministic(&model);
}

#[test]
fn messaging_reciprocity_mixing_and_weights() {
    let p = Messaging {
        n: 20_000,
        mean_contacts: 8.0,
        activity_exponent: 3.0,
        reciprocity: 0.5,
        mean_messages: 5.0,
        mu: 0.2,
        min_community: 30,
        max_community: 150,
        community_exponent: 1.5,
    };
    let model = Model::Messaging(p.clone());
    let g = gen(&model, 9);
    assert!(g.graph.is_directed() && g.graph.is_weighted());
    let community = g.communities.clone().unwrap();
    let arcs = g.graph.edge_count() as f64;
    // Reciprocity: SE ≤ 1/sqrt(arcs) (binomial number of added reverse arcs,
    // through R(x) = (q + 2x)/(1 + x) whose slope is at most 2).
    let r = stats::reciprocity(&g.graph);
    within_4sd("messaging reciprocity", r, p.reciprocity, 1.0 / arcs.sqrt());
    // Share of arcs leaving the sender's community: binomial, inflated by at most
    // sqrt(2) because reverse arcs copy their primary arc's status.
    let cross = g
        .graph
        .edges()
        .filter(|&(u, v, _)| community[u as usize] != community[v as usize])
        .count() as f64;
    within_4sd(
        "messaging mixing",
        cross / arcs,
        p.mu,
        (2.0 * p.mu * (1.0 - p.mu) / arcs).sqrt(),
    );
    // Messages per pair: 1 + Geometric(1/M), mean M, sd sqrt(1 − 1/M)·M.
    let mean_w = g.graph.total_weight() / arcs;
    let sd_w = (1.0 - 1.0 / p.mean_messages).sqrt() * p.mean_messages;
    within_4sd(
        "messaging mean weight",
        mean_w,
        p.mean_messages,
        sd_w / arcs.sqrt(),
    );
    // Heavy-tailed senders: activity (expected contacts / mean_contacts) is
    // Pareto with shape a and scale (a − 1)/a; its MLE a_hat = N / sum ln(x/scale)
    // has SE a/sqrt(N).
    let a = p.activity_exponent;
    let act: Vec<f64> = g
        .expected_degrees
        .clone()
        .unwrap()
        .iter()
        .map(|x| x / p.mean_contacts)
        .collect();
    let scale = (a - 1.0) / a;
    let a_hat = act.len() as f64 / act.iter().map(|x| (x / scale).ln()).sum::<f64>();
    within_4sd(
        "messaging activity exponent",
        a_hat,
        a,
        a / (act.len() as f64).sqrt(),
    );
    // Realized out-degrees follow activity: mean out-degree of the top 1% by
    // activity is far above the mean.
    let mut by_act: Vec<u32> = (0..p.n as u32).collect();
    by_act.sort_by(|&x, &y| act[y as usize].total_cmp(&act[x as usize]));
    let top = &by_act[..p.n / 100];
    let top_mean = top
        .iter()
        .map(|&u| g.graph.out_degree(u) as f64)
        .sum::<f64>()
        / top.len() as f64;
    let top_expected = top
        .iter()
        .map(|&u| act[u as usize] * p.mean_contacts)
        .sum::<f64>()
        / top.len() as f64;
    // Primary contacts are Poisson(expected): out-degree ≥ that mean (reverse arcs only add).
    assert!(
        top_mean > 0.9 * top_expected && top_expected > 3.0 * p.mean_contacts,
        "{top_mean} vs {top_expected}"
    );
    assert_deterministic(&Model::Messaging(Messaging { n: 3000, ..p }));
}
