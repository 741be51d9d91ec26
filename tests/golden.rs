//! Golden files: `report.json`, `summary.csv` and `replicates.csv` of every
//! bundled scenario (run with `--replicates 6`, which also caps the power
//! curve) must stay byte-identical across refactors. The fixtures in
//! `tests/golden/<scenario>/` were written by the code before the issue-11
//! restructuring and rewritten twice in issue 14: when the one-user-per-unit
//! sums and the contamination moved to fixed lanes (every float within
//! 3.3e-12 relative of the old files, no text changed), and when replicates
//! moved to the xoshiro256++ generator and exchangeable complete
//! randomization (every simulated number redrawn), and in its ninth session
//! when the noise moved to eight streams with a 1,024-layer ziggurat
//! (`rng::Noise`: every noise draw redrawn), then when the outcomes' arm
//! sums were masked rather than listed (lanes by position: every float within
//! 1.1e-10 relative, the largest a null p-value; no text changed), and in
//! its tenth when Louvain began to refine (its partitions, and the outcomes'
//! ICC groups where they are Louvain clusters, changed); regenerate them only
//! deliberately, when a change of numbers or format is intended:
//!
//! ```sh
//! SPILLOVER_UPDATE_GOLDEN=1 cargo test --profile ci --test golden
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

const FILES: [&str; 3] = ["report.json", "summary.csv", "replicates.csv"];

#[test]
fn bundled_scenarios_reproduce_their_golden_files() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut scenarios: Vec<PathBuf> = std::fs::read_dir(root.join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    scenarios.sort();
    assert!(scenarios.len() >= 7);
    let update = std::env::var_os("SPILLOVER_UPDATE_GOLDEN").is_some();
    let tmp = tempfile::tempdir().unwrap();
    let mut mismatches = Vec::new();
    for s in &scenarios {
        let name = s.file_stem().unwrap().to_string_lossy().into_owned();
        let out = tmp.path().join(&name);
        let status = Command::new(env!("CARGO_BIN_EXE_spillover"))
            .args([
                "run",
                s.to_str().unwrap(),
                "--replicates",
                "6",
                "--quiet",
                "--out",
            ])
            .arg(&out)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "{name}: run failed (SNAP scenarios need ../shared/data)"
        );
        let golden = root.join("tests/golden").join(&name);
        for f in FILES {
            let got = std::fs::read(out.join(f)).unwrap();
            let path = golden.join(f);
            if update {
                std::fs::create_dir_all(&golden).unwrap();
                std::fs::write(&path, &got).unwrap();
                continue;
            }
            let want = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (see this file's doc)", path.display()));
            if got != want {
                mismatches.push(first_difference(&path, &want, &got));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// The first differing line, for the failure message.
fn first_difference(path: &Path, want: &[u8], got: &[u8]) -> String {
    let (w, g) = (String::from_utf8_lossy(want), String::from_utf8_lossy(got));
    for (i, (a, b)) in w.lines().zip(g.lines()).enumerate() {
        if a != b {
            return format!(
                "{}:{}:\n  golden: {a}\n  now:    {b}",
                path.display(),
                i + 1
            );
        }
    }
    format!(
        "{}: {} lines golden, {} now",
        path.display(),
        w.lines().count(),
        g.lines().count()
    )
}
