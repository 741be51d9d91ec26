//! `spillover._native`: the Python package's bindings to the `spillover`
//! library. Thin on purpose: every function calls the library's own entry
//! points (`spillover::api`, the readers, partitioners and calculators) and
//! hands back text, JSON or NumPy arrays; `python/spillover/__init__.py`
//! turns them into DataFrames and a `Report`.
//!
//! The GIL is released while the library works. A run's progress and
//! Ctrl-C are polled from the calling thread every 100 ms while a worker
//! thread runs the library; Ctrl-C cancels the run, which stops before its
//! next replicate and writes nothing. Library errors become Python
//! exceptions with the command line's message: `ValueError` for bad input,
//! `FileNotFoundError`/`PermissionError`/`OSError` for files,
//! `KeyboardInterrupt` for a cancelled run, `RuntimeError` otherwise.

use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::exceptions::{
    PyFileNotFoundError, PyKeyboardInterrupt, PyOSError, PyPermissionError, PyRuntimeError,
    PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use spillover::api::{self, Finished, Hooks};
use spillover::data::design::{make_partition, PartitionSpec};
use spillover::diagnosis::calc;
use spillover::diagnosis::engine::Cancel;
use spillover::error::Error;
use spillover::graph::io::{self, ReadOptions};
use spillover::graph::{BuildOptions, Graph};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A library error as the Python exception a caller expects, with the
/// message the command line prints.
fn to_py(e: Error) -> PyErr {
    let message = e.to_string();
    let mut root = &e;
    while let Error::Context { source, .. } = root {
        root = source;
    }
    match root {
        Error::Read { source, .. } => match source.kind() {
            std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(message),
            std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(message),
            _ => PyOSError::new_err(message),
        },
        Error::Io { .. } => PyOSError::new_err(message),
        Error::Cancelled => PyKeyboardInterrupt::new_err(message),
        Error::Internal(_) => PyRuntimeError::new_err(message),
        _ if e.is_input() => PyValueError::new_err(message),
        _ => PyRuntimeError::new_err(message),
    }
}

fn json<T: serde::Serialize>(v: &T) -> PyResult<String> {
    serde_json::to_string(v).map_err(|e| PyRuntimeError::new_err(e.to_string()))
}

/// Run `work` on a worker thread (in a pool of `threads` if given) with the
/// GIL released, polling Ctrl-C and reporting `done` of `total` to
/// `progress(done, total)` every 100 ms from this thread.
fn supervised<T: Send>(
    py: Python<'_>,
    threads: Option<usize>,
    total: u64,
    done: &AtomicU64,
    progress: Option<Py<PyAny>>,
    cancel: &Cancel,
    work: impl FnOnce() -> spillover::Result<T> + Send,
) -> PyResult<T> {
    let pool = match threads {
        Some(0) => return Err(PyValueError::new_err("threads must be at least 1")),
        Some(t) => Some(
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .map_err(|e| PyRuntimeError::new_err(e.to_string()))?,
        ),
        None => None,
    };
    let mut stopped: Option<PyErr> = None;
    let outcome = py.detach(|| {
        std::thread::scope(|s| {
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let handle = s.spawn(move || {
                let r = match &pool {
                    Some(p) => p.install(work),
                    None => work(),
                };
                let _ = tx.send(());
                r
            });
            let mut last = u64::MAX;
            loop {
                let finished = !matches!(
                    rx.recv_timeout(Duration::from_millis(100)),
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout)
                );
                Python::attach(|py| {
                    if stopped.is_none() {
                        if let Err(e) = py.check_signals() {
                            cancel.cancel();
                            stopped = Some(e);
                        }
                    }
                    let now = done.load(Ordering::Relaxed);
                    if let (Some(cb), None) = (&progress, &stopped) {
                        if now != last || finished {
                            last = now;
                            if let Err(e) = cb.call1(py, (now.min(total), total)) {
                                cancel.cancel();
                                stopped = Some(e);
                            }
                        }
                    }
                });
                if finished {
                    break;
                }
            }
            handle.join()
        })
    });
    if let Some(e) = stopped {
        return Err(e);
    }
    match outcome {
        Ok(r) => r.map_err(to_py),
        Err(_) => Err(PyRuntimeError::new_err(
            "internal error: the run panicked (please report it)",
        )),
    }
}

/// The outputs of a finished run as a dict: `files` (name → text of
/// report.json, summary.csv, balance.csv, replicates.csv), `html`
/// (report.html with its figures), `table` (the terminal table), `written`.
fn outputs_dict<'py>(
    py: Python<'py>,
    report: &spillover::diagnosis::Report,
    rendered: &spillover::report::Rendered,
    written: &[PathBuf],
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let files = PyDict::new(py);
    for (name, text) in &rendered.texts {
        files.set_item(name, text)?;
    }
    d.set_item("files", files)?;
    d.set_item("html", &rendered.html)?;
    d.set_item("table", spillover::report::table(report))?;
    let written: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    d.set_item("written", written)?;
    Ok(d)
}

fn finished_dict<'py>(py: Python<'py>, f: &Finished) -> PyResult<Bound<'py, PyDict>> {
    outputs_dict(py, &f.report, &f.rendered, &f.written)
}

/// The scenario's text: `text`, or the file at `path` when it is `None`.
fn scenario_text(text: Option<String>, path: &Path) -> PyResult<String> {
    match text {
        Some(t) => Ok(t),
        None => std::fs::read_to_string(path).map_err(|e| to_py(Error::read(path, e))),
    }
}

/// Parse and check a scenario (`text`, or the file at `path`) without
/// preparing it: raises what `run` would raise for the file itself.
#[pyfunction]
#[pyo3(signature = (text, path, replicates=None))]
fn check_scenario(
    text: Option<String>,
    path: PathBuf,
    replicates: Option<usize>,
) -> PyResult<String> {
    let text = scenario_text(text, &path)?;
    api::scenario(&text, &path, replicates).map_err(to_py)?;
    Ok(text)
}

/// A scenario dict (as JSON) as TOML text, for `spillover.run({...})`.
#[pyfunction]
fn toml_from_json(json: &str) -> PyResult<String> {
    let v: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| PyValueError::new_err(format!("scenario dict: {e}")))?;
    toml::to_string(&v).map_err(|e| {
        PyValueError::new_err(format!(
            "scenario dict: {e}: expected the structure of a scenario file (no None values)"
        ))
    })
}

/// Run a scenario given as TOML `text`, or read from `path` when `text` is
/// `None` (`path` anchors its relative paths and names it in errors). See
/// `spillover.run`.
#[pyfunction]
#[pyo3(signature = (text, path, replicates=None, threads=None, out=None, progress=None))]
fn run<'py>(
    py: Python<'py>,
    text: Option<String>,
    path: PathBuf,
    replicates: Option<usize>,
    threads: Option<usize>,
    out: Option<PathBuf>,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let text = scenario_text(text, &path)?;
    let text = text.as_str();
    let scenario = api::scenario(text, &path, replicates).map_err(to_py)?;
    let (main, power) = api::replicate_counts(&scenario);
    let done = AtomicU64::new(0);
    let cancel = Cancel::default();
    let tick = || {
        done.fetch_add(1, Ordering::Relaxed);
    };
    let finished = supervised(py, threads, main + power, &done, progress, &cancel, || {
        let hooks = Hooks {
            tick: &tick,
            tick_power: &tick,
            cancel: cancel.clone(),
            ..Default::default()
        };
        api::run(&scenario, text, &path, out.as_deref(), &hooks)
    })?;
    finished_dict(py, &finished)
}

/// Run shard `k` of `n` of a scenario; returns the shard's bytes.
#[pyfunction]
#[pyo3(signature = (text, path, k, n, replicates=None, threads=None))]
fn run_shard<'py>(
    py: Python<'py>,
    text: Option<String>,
    path: PathBuf,
    k: usize,
    n: usize,
    replicates: Option<usize>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyBytes>> {
    let text = scenario_text(text, &path)?;
    let text = text.as_str();
    let scenario = api::scenario(text, &path, replicates).map_err(to_py)?;
    let done = AtomicU64::new(0);
    let cancel = Cancel::default();
    let bytes = supervised(py, threads, 0, &done, None, &cancel, || {
        let hooks = Hooks {
            cancel: cancel.clone(),
            ..Default::default()
        };
        let shard = api::run_shard(&scenario, text, &path, k, n, &hooks)?;
        spillover::diagnosis::shard::to_bytes(&shard)
    })?;
    Ok(PyBytes::new(py, &bytes))
}

/// A scenario prepared once (network, population, partitions, designs), to
/// run shards and merge them without preparing again: what a Ray actor
/// holds in `spillover.ray.run`.
#[pyclass(frozen, module = "spillover._native")]
struct Session {
    scenario: spillover::scenario::Scenario,
    text: String,
    path: PathBuf,
    prepared: spillover::diagnosis::Prepared,
    threads: Option<usize>,
}

#[pymethods]
impl Session {
    /// Prepare a scenario (`text`, or the file at `path`).
    #[new]
    #[pyo3(signature = (text, path, replicates=None, threads=None))]
    fn new(
        py: Python<'_>,
        text: Option<String>,
        path: PathBuf,
        replicates: Option<usize>,
        threads: Option<usize>,
    ) -> PyResult<Session> {
        let text = scenario_text(text, &path)?;
        let scenario = api::scenario(&text, &path, replicates).map_err(to_py)?;
        let done = AtomicU64::new(0);
        let cancel = Cancel::default();
        let prepared = supervised(py, threads, 0, &done, None, &cancel, || {
            api::prepare(&scenario, &path)
        })?;
        Ok(Session {
            scenario,
            text,
            path,
            prepared,
            threads,
        })
    }

    /// Shard `k` of `n`, as bytes.
    fn run_shard<'py>(&self, py: Python<'py>, k: usize, n: usize) -> PyResult<Bound<'py, PyBytes>> {
        let done = AtomicU64::new(0);
        let cancel = self.prepared.config.cancel.clone();
        cancel.reset();
        let bytes = supervised(py, self.threads, 0, &done, None, &cancel, || {
            let shard = api::run_shard_prepared(
                &self.prepared,
                &self.scenario,
                &self.text,
                &self.path,
                k,
                n,
                &|| {},
            )?;
            spillover::diagnosis::shard::to_bytes(&shard)
        })?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// Merge shards (bytes) into the outputs of one run, as `run` returns them.
    #[pyo3(signature = (shards, out=None))]
    fn merge<'py>(
        &self,
        py: Python<'py>,
        shards: Vec<Vec<u8>>,
        out: Option<PathBuf>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let done = AtomicU64::new(0);
        let cancel = self.prepared.config.cancel.clone();
        cancel.reset();
        let merged = supervised(py, self.threads, 0, &done, None, &cancel, || {
            let shards = decode_shards(&shards)?;
            api::merge_prepared(
                &self.prepared,
                &self.scenario,
                &self.text,
                shards,
                out.as_deref(),
            )
        })?;
        outputs_dict(py, &merged.report, &merged.rendered, &merged.written)
    }
}

/// Shards from their bytes (as `run_shard` returns them), named by position in errors.
fn decode_shards(shards: &[Vec<u8>]) -> spillover::Result<Vec<spillover::diagnosis::shard::Shard>> {
    shards
        .iter()
        .enumerate()
        .map(|(i, b)| spillover::diagnosis::shard::from_bytes(b, &format!("shard {i}")))
        .collect()
}

/// Merge shards (bytes from `run_shard`) into the outputs of one run.
#[pyfunction]
#[pyo3(signature = (shards, out=None, threads=None))]
fn merge<'py>(
    py: Python<'py>,
    shards: Vec<Vec<u8>>,
    out: Option<PathBuf>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    let done = AtomicU64::new(0);
    let cancel = Cancel::default();
    let finished = supervised(py, threads, 0, &done, None, &cancel, || {
        let shards = decode_shards(&shards)?;
        api::merge(shards, out.as_deref())
    })?;
    finished_dict(py, &finished)
}

fn parse_enum<T: serde::de::DeserializeOwned>(
    key: &str,
    value: &str,
    expected: &str,
) -> PyResult<T> {
    serde_json::from_value(serde_json::Value::String(value.to_string())).map_err(|_| {
        PyValueError::new_err(format!("{key} = {value:?}: expected one of {expected}"))
    })
}

fn build_options(self_loops: &str, duplicates: &str) -> PyResult<BuildOptions> {
    Ok(BuildOptions {
        self_loops: parse_enum("self_loops", self_loops, "drop, keep, error")?,
        duplicates: parse_enum("duplicates", duplicates, "sum, first, error")?,
    })
}

fn read_options(
    directed: bool,
    third_column: &str,
    header: &str,
    build: BuildOptions,
) -> PyResult<ReadOptions> {
    Ok(ReadOptions {
        directed,
        third_column: parse_enum(
            "third_column",
            third_column,
            "auto, weight, timestamp, ignore",
        )?,
        header: parse_enum("header", header, "auto, yes, no")?,
        build,
        ..Default::default()
    })
}

/// The graph of in-memory edges: indices into `names`.
fn edges_graph(
    names: &[String],
    src: &PyReadonlyArray1<'_, u32>,
    dst: &PyReadonlyArray1<'_, u32>,
    weights: Option<&PyReadonlyArray1<'_, f64>>,
    directed: bool,
    build: &BuildOptions,
) -> PyResult<(Graph, spillover::graph::BuildReport, Vec<u32>)> {
    let contiguous = |_| PyValueError::new_err("edges: expected contiguous arrays");
    let src = src.as_slice().map_err(contiguous)?;
    let dst = dst.as_slice().map_err(contiguous)?;
    let w = match weights {
        Some(w) => Some(w.as_slice().map_err(contiguous)?),
        None => None,
    };
    io::graph_from_edges(names, src, dst, w, directed, build, "edges").map_err(to_py)
}

/// Read an edge-list file: (JSON of {file, read, summary} as `spillover
/// inspect --json` prints it).
#[pyfunction]
#[pyo3(signature = (path, directed=false, third_column="auto", header="auto", self_loops="drop", duplicates="sum", seed=1))]
#[allow(clippy::too_many_arguments)]
fn inspect_file(
    py: Python<'_>,
    path: PathBuf,
    directed: bool,
    third_column: &str,
    header: &str,
    self_loops: &str,
    duplicates: &str,
    seed: u64,
) -> PyResult<String> {
    let opts = read_options(
        directed,
        third_column,
        header,
        build_options(self_loops, duplicates)?,
    )?;
    py.detach(|| {
        let (g, read) = io::read_edge_list(&path, &opts)?;
        let summary = spillover::graph::stats::summarize(&g, seed);
        Ok(serde_json::json!({"file": path, "read": read, "summary": summary}))
    })
    .map_err(to_py)
    .and_then(|v: serde_json::Value| json(&v))
}

/// Summarize in-memory edges (indices into `names`): JSON of {build, summary}.
#[pyfunction]
#[pyo3(signature = (names, src, dst, weights=None, directed=false, self_loops="drop", duplicates="sum", seed=1))]
#[allow(clippy::too_many_arguments)]
fn inspect_edges(
    py: Python<'_>,
    names: Vec<String>,
    src: PyReadonlyArray1<'_, u32>,
    dst: PyReadonlyArray1<'_, u32>,
    weights: Option<PyReadonlyArray1<'_, f64>>,
    directed: bool,
    self_loops: &str,
    duplicates: &str,
    seed: u64,
) -> PyResult<String> {
    let build = build_options(self_loops, duplicates)?;
    let (g, report, _) = edges_graph(&names, &src, &dst, weights.as_ref(), directed, &build)?;
    let summary = py.detach(|| spillover::graph::stats::summarize(&g, seed));
    json(&serde_json::json!({"build": report, "summary": summary}))
}

fn partition_of(
    py: Python<'_>,
    g: &Graph,
    spec_json: &str,
    seed: u64,
    threads: Option<usize>,
) -> PyResult<(Vec<u32>, String)> {
    let mut spec: PartitionSpec = serde_json::from_str(spec_json)
        .map_err(|e| PyValueError::new_err(format!("partition options: {e}")))?;
    spec.seed = Some(spec.seed.unwrap_or(seed));
    spec.validate().map_err(to_py)?;
    let done = AtomicU64::new(0);
    let cancel = Cancel::default();
    let p = supervised(py, threads, 0, &done, None, &cancel, || {
        make_partition(&spec, g, None, seed, Path::new(""))
    })?;
    let q = spillover::partition::quality(g, &p);
    Ok((p.labels().to_vec(), json(&q)?))
}

/// Partition an edge-list file: (labels, cluster of each, quality JSON).
#[pyfunction]
#[pyo3(signature = (path, spec_json, directed=false, third_column="auto", header="auto", self_loops="drop", duplicates="sum", seed=1, threads=None))]
#[allow(clippy::too_many_arguments)]
fn partition_file<'py>(
    py: Python<'py>,
    path: PathBuf,
    spec_json: &str,
    directed: bool,
    third_column: &str,
    header: &str,
    self_loops: &str,
    duplicates: &str,
    seed: u64,
    threads: Option<usize>,
) -> PyResult<(Vec<String>, Bound<'py, PyArray1<u32>>, String)> {
    let opts = read_options(
        directed,
        third_column,
        header,
        build_options(self_loops, duplicates)?,
    )?;
    let (g, _) = py
        .detach(|| io::read_edge_list(&path, &opts))
        .map_err(to_py)?;
    let (clusters, quality) = partition_of(py, &g, spec_json, seed, threads)?;
    let labels: Vec<String> = (0..g.node_count() as u32)
        .map(|u| g.label(u).into_owned())
        .collect();
    Ok((labels, PyArray1::from_vec(py, clusters), quality))
}

/// Order (dense id → index into the names), clusters, quality JSON.
type Partitioned<'py> = (Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<u32>>, String);

/// Partition in-memory edges (indices into `names`): (order: dense id →
/// index into `names`, cluster of each dense id, quality JSON).
#[pyfunction]
#[pyo3(signature = (names, src, dst, spec_json, weights=None, directed=false, self_loops="drop", duplicates="sum", seed=1, threads=None))]
#[allow(clippy::too_many_arguments)]
fn partition_edges<'py>(
    py: Python<'py>,
    names: Vec<String>,
    src: PyReadonlyArray1<'py, u32>,
    dst: PyReadonlyArray1<'py, u32>,
    spec_json: &str,
    weights: Option<PyReadonlyArray1<'py, f64>>,
    directed: bool,
    self_loops: &str,
    duplicates: &str,
    seed: u64,
    threads: Option<usize>,
) -> PyResult<Partitioned<'py>> {
    let build = build_options(self_loops, duplicates)?;
    let (g, _, order) = edges_graph(&names, &src, &dst, weights.as_ref(), directed, &build)?;
    let (clusters, quality) = partition_of(py, &g, spec_json, seed, threads)?;
    Ok((
        PyArray1::from_vec(py, order),
        PyArray1::from_vec(py, clusters),
        quality,
    ))
}

fn clustering(mean_cluster_size: Option<f64>, icc: f64, cv: f64) -> calc::Clustering {
    calc::Clustering {
        mean_cluster_size,
        icc,
        cv,
    }
}

fn metric(sd: f64, baseline: Option<f64>) -> calc::Metric {
    match baseline {
        Some(b) => calc::Metric::Binary { baseline: b },
        None => calc::Metric::Continuous { sd },
    }
}

/// `spillover deff`: JSON and text.
#[pyfunction]
#[pyo3(signature = (mean_cluster_size, icc, cv=0.0, clusters=None, check=false))]
fn deff(
    mean_cluster_size: f64,
    icc: f64,
    cv: f64,
    clusters: Option<usize>,
    check: bool,
) -> PyResult<(String, String)> {
    let a = calc::deff(mean_cluster_size, icc, cv, clusters, check).map_err(to_py)?;
    Ok((json(&a)?, a.text))
}

/// `spillover power`: JSON and text.
#[pyfunction]
#[pyo3(signature = (effect, n_per_arm, sd=1.0, baseline=None, alpha=0.05, mean_cluster_size=None, icc=0.0, cv=0.0))]
#[allow(clippy::too_many_arguments)]
fn power(
    effect: f64,
    n_per_arm: f64,
    sd: f64,
    baseline: Option<f64>,
    alpha: f64,
    mean_cluster_size: Option<f64>,
    icc: f64,
    cv: f64,
) -> PyResult<(String, String)> {
    let a = calc::power_answer(
        metric(sd, baseline),
        effect,
        n_per_arm,
        alpha,
        clustering(mean_cluster_size, icc, cv),
    )
    .map_err(to_py)?;
    Ok((json(&a)?, a.text))
}

/// `spillover mde`: JSON and text.
#[pyfunction]
#[pyo3(signature = (n_total, treated_share=0.5, power=0.8, sd=1.0, baseline=None, alpha=0.05, mean_cluster_size=None, icc=0.0, cv=0.0))]
#[allow(clippy::too_many_arguments)]
fn mde(
    n_total: f64,
    treated_share: f64,
    power: f64,
    sd: f64,
    baseline: Option<f64>,
    alpha: f64,
    mean_cluster_size: Option<f64>,
    icc: f64,
    cv: f64,
) -> PyResult<(String, String)> {
    let a = calc::mde_answer(
        metric(sd, baseline),
        n_total,
        treated_share,
        power,
        alpha,
        clustering(mean_cluster_size, icc, cv),
    )
    .map_err(to_py)?;
    Ok((json(&a)?, a.text))
}

/// `spillover clusters-needed`: JSON and text.
#[pyfunction]
#[pyo3(signature = (effect, power=0.8, sd=1.0, baseline=None, alpha=0.05, mean_cluster_size=None, icc=0.0, cv=0.0))]
#[allow(clippy::too_many_arguments)]
fn clusters_needed(
    effect: f64,
    power: f64,
    sd: f64,
    baseline: Option<f64>,
    alpha: f64,
    mean_cluster_size: Option<f64>,
    icc: f64,
    cv: f64,
) -> PyResult<(String, String)> {
    let a = calc::clusters_needed(
        metric(sd, baseline),
        effect,
        power,
        alpha,
        clustering(mean_cluster_size, icc, cv),
    )
    .map_err(to_py)?;
    Ok((json(&a)?, a.text))
}

/// The native half of the `spillover` package.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(toml_from_json, m)?)?;
    m.add_class::<Session>()?;
    m.add_function(wrap_pyfunction!(check_scenario, m)?)?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(run_shard, m)?)?;
    m.add_function(wrap_pyfunction!(merge, m)?)?;
    m.add_function(wrap_pyfunction!(inspect_file, m)?)?;
    m.add_function(wrap_pyfunction!(inspect_edges, m)?)?;
    m.add_function(wrap_pyfunction!(partition_file, m)?)?;
    m.add_function(wrap_pyfunction!(partition_edges, m)?)?;
    m.add_function(wrap_pyfunction!(deff, m)?)?;
    m.add_function(wrap_pyfunction!(power, m)?)?;
    m.add_function(wrap_pyfunction!(mde, m)?)?;
    m.add_function(wrap_pyfunction!(clusters_needed, m)?)?;
    Ok(())
}
