//! The module tree's promise (issue 11): dependencies point one way. Each
//! top-level module may use only the modules below it in `LAYERS`; a module
//! that imports one that imports it back fails here, naming both.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Top to bottom; a module may depend on modules after it (never before).
const LAYERS: [&str; 15] = [
    "api",
    "report",
    "scenario",
    "diagnosis",
    "answer",
    "data",
    "inquiry",
    "model",
    "partition",
    "graph",
    "stats",
    "fsutil",
    "rng",
    "simd",
    "error",
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn dependencies_point_one_way() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut deps: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
    for (rank, m) in LAYERS.iter().enumerate() {
        let mut files = Vec::new();
        if src.join(m).is_dir() {
            sources(&src.join(m), &mut files);
        }
        if src.join(format!("{m}.rs")).exists() {
            files.push(src.join(format!("{m}.rs")));
        }
        assert!(!files.is_empty(), "module {m} has no source");
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            // Unit tests may reach anywhere; the library code may not.
            // Comments (doc links included) are not imports.
            let code: String = text
                .split("#[cfg(test)]")
                .next()
                .unwrap()
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            for (k, _) in code.match_indices("crate::") {
                let name: String = code[k + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if let Some(r) = LAYERS.iter().position(|l| *l == name) {
                    if r < rank {
                        deps.entry(m).or_default().push((
                            name.clone(),
                            f.strip_prefix(&src).unwrap().display().to_string(),
                        ));
                    }
                }
            }
        }
    }
    assert!(
        deps.is_empty(),
        "upward dependencies (module, imports, in file): {deps:?}"
    );
    // Every top-level module is in LAYERS (a new module must be placed).
    let mut top: Vec<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() || p.extension().is_some_and(|x| x == "rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|n| !["lib", "main", "cli"].contains(&n.as_str()))
        .collect();
    top.sort();
    for n in &top {
        assert!(
            LAYERS.contains(&n.as_str()),
            "module {n} is not placed in LAYERS"
        );
    }
}
