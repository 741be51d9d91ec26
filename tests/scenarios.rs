//! Every bundled scenario parses and runs (with a few replicates here; the
//! README quotes full runs). Scenarios on the SNAP networks need ../shared/data.

use spillover::{diagnosis, scenario};
use std::path::PathBuf;

#[test]
fn every_bundled_scenario_runs() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 7, "{files:?}");
    for f in files {
        let mut s = scenario::load(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        s.replicates = 4;
        let p = scenario::prepare(&s)
            .unwrap_or_else(|e| panic!("{}: {e} (SNAP files live in ../shared/data)", f.display()));
        let runs = diagnosis::simulate(&p, &|| {}).expect("simulated");
        let files = vec![None; p.designs.len()];
        let r = diagnosis::build(&s.name, &p, &runs, &files);
        assert!(r.estimand.value.is_finite(), "{}", f.display());
        assert_eq!(r.designs.len(), s.designs.len());
    }
}
