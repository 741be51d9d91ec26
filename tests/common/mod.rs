//! Helpers shared by the integration tests.
#![allow(dead_code)]

use spillover::graph::Graph;
use std::path::PathBuf;

/// Path of a file in `../shared/data`, failing with a clear message if it is missing.
pub fn shared_data(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("shared")
        .join("data")
        .join(name);
    assert!(
        p.exists(),
        "missing test data {}: the SNAP files live in ../shared/data beside the repository \
         (see README.md, 'Data', for where to download them)",
        p.display()
    );
    p
}

/// Run `f` on a rayon pool with `threads` threads.
pub fn on_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool")
        .install(f)
}

/// Degrees of an undirected graph.
pub fn degrees(g: &Graph) -> Vec<usize> {
    (0..g.node_count() as u32)
        .map(|u| g.out_degree(u))
        .collect()
}

/// Mean and (unbiased) variance.
pub fn mean_var(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    (
        m,
        x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1.0),
    )
}

/// Assert |observed − expected| < 4·sd, with a readable message.
pub fn within_4sd(what: &str, observed: f64, expected: f64, sd: f64) {
    assert!(
        (observed - expected).abs() < 4.0 * sd,
        "{what}: observed {observed}, expected {expected} ± 4·{sd}"
    );
}

/// Parse, prepare, simulate and diagnose a scenario given as text (named
/// `test.toml` in errors).
pub fn diagnose_toml(toml: &str) -> (spillover::diagnosis::Prepared, spillover::diagnosis::Report) {
    use spillover::{diagnosis, scenario};
    let s = scenario::parse(toml, std::path::Path::new("test.toml")).expect("valid scenario");
    let p = scenario::prepare(&s).expect("prepared");
    let runs = diagnosis::simulate(&p, &|| {}).expect("simulated");
    let files = vec![None; p.designs.len()];
    let r = diagnosis::build(&s.name, &p, &runs, &files);
    (p, r)
}

/// Run the `spillover` binary (`bin`: `env!("CARGO_BIN_EXE_spillover")`) in
/// `dir`: (exit code, stderr). Fails the test on a panic or a signal.
pub fn spill_in(bin: &str, dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(bin)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    let code = out.status.code().unwrap_or(-1);
    assert!(code >= 0, "{args:?} was killed by a signal: {stderr}");
    (code, stderr)
}
