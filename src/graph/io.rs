//! Edge-list readers and writers.
//!
//! Reads edge lists as they are published: whitespace, comma or tab separated;
//! `#` and `%` comment lines; an optional header line; an optional third column
//! that is a weight or a timestamp (a message log, where each line is one
//! message and the weight of a pair becomes its number of messages); any node
//! labels (numbers or names, not necessarily contiguous).
//!
//! Dense ids are assigned canonically: labels sorted numerically when every
//! label is a non-negative integer, else lexicographically. So the same edges in
//! any line order give the same graph, the same ids and (later) the same clusters.

use super::{BuildOptions, BuildReport, Graph, GraphBuilder, NodeLabels};
use crate::error::{Error, Result};
use serde::Serialize;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

/// How to read an optional third column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum ThirdColumn {
    /// Decide from the header name, else timestamps if every value is an integer ≥ 10^8, else weights.
    #[default]
    Auto,
    /// A positive edge weight.
    Weight,
    /// A timestamp: each line is one event; the weight of a pair is its number of lines.
    Timestamp,
    /// Ignore it (the graph is unweighted).
    Ignore,
}

/// Whether the first data line is a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Header {
    /// A header if its third field is not a number, if its fields are usual column
    /// names (src, dst, source, target, from, to, weight, time, …), or if its ids
    /// are not numbers while the next line's are.
    #[default]
    Auto,
    /// The first non-comment line is a header.
    Yes,
    /// There is no header.
    No,
}

/// Options of [`read_edge_list`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ReadOptions {
    /// Read `u v` as an arc u→v (otherwise as an undirected edge).
    pub directed: bool,
    /// How to read a third column.
    pub third_column: ThirdColumn,
    /// Header detection.
    pub header: Header,
    /// Self-loop and duplicate policies.
    pub build: BuildOptions,
    /// Most distinct nodes accepted (ids are `u32`). Lower only in tests.
    pub max_nodes: usize,
    /// Split a timestamped edge list in time (see [`read_edge_list_split`]).
    pub split: Option<TimeSplit>,
}

/// Where a message log is split in time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub enum TimeSplit {
    /// Events with timestamp < t are before the split.
    At(f64),
    /// The first share (in (0, 1)) of the events in time order are before it.
    Share(f64),
}

/// What a time split did.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SplitReport {
    /// The split time: events before it built the "before" graph.
    pub time: f64,
    /// Events (lines) before the split.
    pub events_before: usize,
    /// Events at or after it.
    pub events_after: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            directed: false,
            third_column: ThirdColumn::Auto,
            header: Header::Auto,
            build: BuildOptions::default(),
            max_nodes: u32::MAX as usize,
            split: None,
        }
    }
}

/// How the third column was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ThirdColumnUse {
    /// There was none (or it was ignored): unweighted.
    None,
    /// Edge weights.
    Weight,
    /// Timestamps: weight = number of lines per pair.
    Timestamp,
}

/// What [`read_edge_list`] found in the file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReadReport {
    /// Lines in the file.
    pub lines: usize,
    /// Comment and blank lines skipped.
    pub comment_lines: usize,
    /// The header line, if one was detected.
    pub header: Option<String>,
    /// Edge lines read.
    pub edge_lines: usize,
    /// How the third column was read.
    pub third_column: ThirdColumnUse,
    /// Self-loops dropped and duplicates merged.
    pub build: BuildReport,
    /// The time split, if one was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitReport>,
}

const SOURCE_NAMES: &[&str] = &[
    "src", "source", "from", "sender", "u", "i", "node1", "node_1", "id1", "user1",
];
const TARGET_NAMES: &[&str] = &[
    "dst",
    "target",
    "to",
    "receiver",
    "recipient",
    "v",
    "j",
    "node2",
    "node_2",
    "id2",
    "user2",
];
const TIME_NAMES: &[&str] = &[
    "time",
    "timestamp",
    "ts",
    "t",
    "unix_time",
    "date",
    "datetime",
];
const WEIGHT_NAMES: &[&str] = &["weight", "w", "count", "value", "n", "messages"];

fn fields(line: &str) -> impl Iterator<Item = &str> {
    line.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| !t.is_empty())
}

/// The value of `tok` when it is a decimal number written the one plain way
/// (digits only, no leading zero unless it is "0", below 10^19).
fn plain_decimal(tok: &str) -> Option<u64> {
    let b = tok.as_bytes();
    if b.is_empty() || b.len() > 19 || (b[0] == b'0' && b.len() > 1) {
        return None;
    }
    b.iter().try_fold(0u64, |v, &c| {
        c.is_ascii_digit().then(|| v * 10 + u64::from(c - b'0'))
    })
}

fn is_name(tok: &str, names: &[&str]) -> bool {
    let t = tok.trim_matches('"').to_ascii_lowercase();
    names.contains(&t.as_str())
}

fn looks_like_header(f: &[&str]) -> bool {
    (f.len() >= 3 && f[2].parse::<f64>().is_err())
        || (is_name(f[0], SOURCE_NAMES) && is_name(f[1], TARGET_NAMES))
}

/// Read an edge list from a file.
pub fn read_edge_list(path: &Path, opts: &ReadOptions) -> Result<(Graph, ReadReport)> {
    let file = std::fs::File::open(path).map_err(|e| Error::read(path, e))?;
    read_edge_list_from(BufReader::with_capacity(1 << 20, file), path, opts)
}

struct Pending {
    line_no: usize,
    text: String,
}

/// Read an edge list from any reader; `path` names it in errors.
///
/// ```
/// use spillover::graph::io::{read_edge_list_from, ReadOptions};
/// use std::path::Path;
///
/// let text = "src,dst,weight\nalice,bob,3\nbob,carol,1\n";
/// let (g, report) = read_edge_list_from(text.as_bytes(), Path::new("edges.csv"), &ReadOptions::default())?;
/// assert_eq!((g.node_count(), g.edge_count()), (3, 2));
/// assert!(g.is_weighted());
/// # let _ = report;
/// // A bad line names the file, the line and what was expected.
/// let err = read_edge_list_from("a b\nc\n".as_bytes(), Path::new("e.txt"), &ReadOptions::default()).unwrap_err();
/// assert!(err.to_string().contains("e.txt:2"));
/// # Ok::<(), spillover::Error>(())
/// ```
///
/// # Complexity
/// O(lines + edges·log(max degree)) time, O(edges) memory.
pub fn read_edge_list_from<R: BufRead>(
    reader: R,
    path: &Path,
    opts: &ReadOptions,
) -> Result<(Graph, ReadReport)> {
    read_inner(reader, path, opts).map(|(g, _, r)| (g, r))
}

/// Read a timestamped edge list split in time by `opts.split`: the graph of
/// the events at or after the split (where the experiment runs) and the graph
/// of the events before it (what clusters are built from), on the same
/// users and dense ids. Without a split the second graph is `None`.
///
/// # Complexity
/// As [`read_edge_list_from`], plus sorting the timestamps for a share.
pub fn read_edge_list_split(
    path: &Path,
    opts: &ReadOptions,
) -> Result<(Graph, Option<Graph>, ReadReport)> {
    let file = std::fs::File::open(path).map_err(|e| Error::read(path, e))?;
    read_inner(BufReader::with_capacity(1 << 20, file), path, opts)
}

fn read_inner<R: BufRead>(
    mut reader: R,
    path: &Path,
    opts: &ReadOptions,
) -> Result<(Graph, Option<Graph>, ReadReport)> {
    // foldhash rather than SipHash (README, Dependencies): ids are interned
    // by first appearance and then sorted, never taken in hash order.
    let mut interner: HashMap<Box<str>, u32, foldhash::fast::RandomState> = HashMap::default();
    let mut names: Vec<Box<str>> = Vec::new();
    let mut src: Vec<u32> = Vec::new();
    let mut dst: Vec<u32> = Vec::new();
    let mut third: Vec<f64> = Vec::new();
    let mut third_lines: Vec<usize> = Vec::new();
    let mut columns: Option<(usize, usize)> = None; // (count, line where fixed)
    let mut header: Option<String> = None;
    let mut header_decided = opts.header == Header::No;
    let mut pending: Option<Pending> = None;
    let mut report_lines = 0usize;
    let mut comment_lines = 0usize;

    let mut buf = Vec::new();
    let mut line_no = 0usize;

    // Ids written as plain decimals (no sign, no leading zero: one string
    // per number) are looked up by their value, the rest by their text; the
    // two never meet, since each such number has exactly one such spelling.
    let mut numbers: HashMap<u64, u32, foldhash::fast::RandomState> = HashMap::default();
    let mut intern = |tok: &str, line_no: usize| -> Result<u32> {
        let number = plain_decimal(tok);
        let known = match number {
            Some(v) => numbers.get(&v),
            None => interner.get(tok),
        };
        if let Some(&id) = known {
            return Ok(id);
        }
        if names.len() >= opts.max_nodes {
            return Err(Error::parse(
                path,
                line_no,
                format!(
                    "more than {} distinct nodes: node ids are stored as 32-bit integers",
                    opts.max_nodes
                ),
            ));
        }
        let id = names.len() as u32;
        let name: Box<str> = tok.into();
        match number {
            Some(v) => {
                numbers.insert(v, id);
            }
            None => {
                interner.insert(name.clone(), id);
            }
        }
        names.push(name);
        Ok(id)
    };

    let mut take = |text: &str,
                    line_no: usize,
                    columns: &mut Option<(usize, usize)>,
                    src: &mut Vec<u32>,
                    dst: &mut Vec<u32>,
                    third: &mut Vec<f64>,
                    third_lines: &mut Vec<usize>|
     -> Result<()> {
        // The first three fields and how many there are (no allocation a line).
        let (mut f, mut count) = ([""; 3], 0usize);
        for t in fields(text) {
            if let Some(slot) = f.get_mut(count) {
                *slot = t;
            }
            count += 1;
        }
        match *columns {
            None => {
                if !(2..=3).contains(&count) {
                    return Err(Error::parse(
                        path,
                        line_no,
                        format!(
                            "expected 2 or 3 columns (source, target, optional weight or timestamp), found {count}",
                        ),
                    ));
                }
                *columns = Some((count, line_no));
            }
            Some((c, first)) if c != count => {
                return Err(Error::parse(
                    path,
                    line_no,
                    format!("expected {c} columns as on line {first}, found {count}"),
                ));
            }
            _ => {}
        }
        src.push(intern(f[0], line_no)?);
        dst.push(intern(f[1], line_no)?);
        if count == 3 && opts.third_column != ThirdColumn::Ignore {
            let v: f64 = f[2].parse().map_err(|_| {
                Error::parse(
                    path,
                    line_no,
                    format!(
                        "expected a number in column 3 (weight or timestamp), found {:?}",
                        f[2]
                    ),
                )
            })?;
            if !v.is_finite() {
                return Err(Error::parse(
                    path,
                    line_no,
                    format!("expected a finite number in column 3, found {:?}", f[2]),
                ));
            }
            third.push(v);
            third_lines.push(line_no);
        }
        Ok(())
    };

    loop {
        buf.clear();
        let read = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| Error::read(path, e))?;
        if read == 0 {
            break;
        }
        line_no += 1;
        report_lines += 1;
        let text = std::str::from_utf8(&buf)
            .map_err(|_| Error::parse(path, line_no, "not valid UTF-8 text"))?;
        // A UTF-8 byte-order mark (spreadsheet and Windows exports) is not data.
        let text = if line_no == 1 {
            text.strip_prefix('\u{FEFF}').unwrap_or(text)
        } else {
            text
        };
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('%') {
            comment_lines += 1;
            continue;
        }
        if !header_decided {
            let f: Vec<&str> = fields(trimmed).collect();
            let is_header = match opts.header {
                Header::Yes => Some(true),
                Header::No => Some(false),
                Header::Auto => {
                    if let Some(p) = pending.take() {
                        // Second data line: the first was a header if its ids were
                        // not numbers while these are.
                        let pf: Vec<&str> = fields(&p.text).collect();
                        let numeric = |x: &[&str]| {
                            x.len() >= 2
                                && x[0].parse::<f64>().is_ok()
                                && x[1].parse::<f64>().is_ok()
                        };
                        header_decided = true;
                        if pf.len() >= 2 && !numeric(&pf) && numeric(&f) {
                            header = Some(p.text.clone());
                        } else {
                            take(
                                &p.text,
                                p.line_no,
                                &mut columns,
                                &mut src,
                                &mut dst,
                                &mut third,
                                &mut third_lines,
                            )?;
                        }
                        None
                    } else if f.len() >= 2 && looks_like_header(&f) {
                        Some(true)
                    } else {
                        pending = Some(Pending {
                            line_no,
                            text: trimmed.to_string(),
                        });
                        continue;
                    }
                }
            };
            match is_header {
                Some(true) => {
                    header = Some(trimmed.to_string());
                    header_decided = true;
                    continue;
                }
                Some(false) => header_decided = true,
                None => {}
            }
        }
        if header.as_deref() == Some(trimmed) {
            return Err(Error::parse(
                path,
                line_no,
                format!(
                    "this line repeats the header {trimmed:?}: expected an edge \
                     (files concatenated with their headers? remove the repeated header lines)"
                ),
            ));
        }
        take(
            trimmed,
            line_no,
            &mut columns,
            &mut src,
            &mut dst,
            &mut third,
            &mut third_lines,
        )?;
    }
    if let Some(p) = pending.take() {
        take(
            &p.text,
            p.line_no,
            &mut columns,
            &mut src,
            &mut dst,
            &mut third,
            &mut third_lines,
        )?;
    }

    if src.is_empty() {
        return Err(Error::input(format!(
            "{}: no edges found: expected lines of `source target [weight|timestamp]`, but the file {}",
            path.display(),
            if report_lines == 0 {
                "is empty".to_string()
            } else {
                format!("holds only comments, blank lines or a header ({report_lines} lines)")
            }
        )));
    }

    // How to read the third column.
    let header_third = header
        .as_deref()
        .and_then(|h| fields(h).nth(2).map(str::to_string));
    let use_third = if third.is_empty() {
        ThirdColumnUse::None
    } else {
        match opts.third_column {
            ThirdColumn::Ignore => ThirdColumnUse::None,
            ThirdColumn::Weight => ThirdColumnUse::Weight,
            ThirdColumn::Timestamp => ThirdColumnUse::Timestamp,
            ThirdColumn::Auto => match header_third.as_deref() {
                Some(h) if is_name(h, TIME_NAMES) => ThirdColumnUse::Timestamp,
                Some(h) if is_name(h, WEIGHT_NAMES) => ThirdColumnUse::Weight,
                _ if third.iter().all(|&t| t.fract() == 0.0 && t >= 1e8) => {
                    ThirdColumnUse::Timestamp
                }
                _ => ThirdColumnUse::Weight,
            },
        }
    };
    if use_third == ThirdColumnUse::Weight {
        if let Some(k) = third.iter().position(|&w| w <= 0.0) {
            return Err(Error::parse(
                path,
                third_lines[k],
                format!(
                    "expected a positive weight in column 3, found {} (use --third-column timestamp if it is a time)",
                    third[k]
                ),
            ));
        }
    }

    let (order, dense) = canonical_order(&names);
    let sorted_names: Vec<&str> = order.iter().map(|&o| &*names[o as usize]).collect();
    let labels = NodeLabels::from_names(&sorted_names);

    // A time split: events before it build the "before" graph.
    let split = match opts.split {
        None => None,
        Some(_) if use_third != ThirdColumnUse::Timestamp => {
            return Err(Error::input(format!(
                "{}: split_at needs timestamps in column 3 (a message log), but the third column \
                 was read as {}",
                path.display(),
                match use_third {
                    ThirdColumnUse::Weight => "weights",
                    _ => "absent",
                }
            )))
        }
        Some(TimeSplit::At(t)) => Some(t),
        Some(TimeSplit::Share(q)) => {
            let mut t: Vec<f64> = third.clone();
            t.sort_by(f64::total_cmp);
            let k = ((q * t.len() as f64).round() as usize).min(t.len().saturating_sub(1));
            Some(t[k])
        }
    };
    let weighted = use_third != ThirdColumnUse::None;
    let build = |keep: &dyn Fn(usize) -> bool| {
        let mut b = GraphBuilder::new(names.len(), opts.directed, weighted);
        for k in (0..src.len()).filter(|&k| keep(k)) {
            let w = if use_third == ThirdColumnUse::Weight {
                third[k]
            } else {
                1.0
            };
            b.add_edge(dense[src[k] as usize], dense[dst[k] as usize], w);
        }
        b.build_or_duplicate(&opts.build).map_err(|d| {
            Error::input(format!(
                "{}: duplicate edge {} {} (--duplicates error)",
                path.display(),
                sorted_names[d.0 as usize],
                sorted_names[d.1 as usize]
            ))
        })
    };
    let edge_lines = src.len();
    let (graph, before, build, split_report) = match split {
        None => {
            let (g, r) = build(&|_| true)?;
            (g, None, r, None)
        }
        Some(t) => {
            let (after, r) = build(&|k| third[k] >= t)?;
            let (before, _) = build(&|k| third[k] < t)?;
            let events_before = third.iter().filter(|&&x| x < t).count();
            let report = SplitReport {
                time: t,
                events_before,
                events_after: edge_lines - events_before,
            };
            let before = before.with_labels(labels.clone())?;
            (after, Some(before), r, Some(report))
        }
    };
    drop((src, dst, third));
    let graph = graph.with_labels(labels)?;
    Ok((
        graph,
        before,
        ReadReport {
            lines: report_lines,
            comment_lines,
            header,
            edge_lines,
            third_column: use_third,
            build,
            split: split_report,
        },
    ))
}

/// The canonical dense ids of node labels: sorted numerically when every
/// label is a non-negative integer, else lexicographically. Returns `order`
/// (dense id → index into `names`) and its inverse `dense` (index → dense id).
///
/// ```
/// use spillover::graph::io::canonical_order;
/// let (order, dense) = canonical_order(&["10", "9", "100"]);
/// assert_eq!(order, vec![1, 0, 2]);
/// assert_eq!(dense, vec![1, 0, 2]);
/// ```
///
/// # Complexity
/// O(n log n) for n labels.
pub fn canonical_order<S: AsRef<str>>(names: &[S]) -> (Vec<u32>, Vec<u32>) {
    let numeric: Option<Vec<u64>> = names
        .iter()
        .map(|s| s.as_ref().parse::<u64>().ok())
        .collect();
    let mut order: Vec<u32> = (0..names.len() as u32).collect();
    match &numeric {
        Some(vals) => order.sort_by(|&a, &b| {
            vals[a as usize]
                .cmp(&vals[b as usize])
                .then_with(|| names[a as usize].as_ref().cmp(names[b as usize].as_ref()))
        }),
        None => order.sort_by(|&a, &b| names[a as usize].as_ref().cmp(names[b as usize].as_ref())),
    }
    let mut dense = vec![0u32; names.len()];
    for (new, &old) in order.iter().enumerate() {
        dense[old as usize] = new as u32;
    }
    (order, dense)
}

/// Build a graph from edges given in memory (a data frame's columns, say):
/// `src[k]` and `dst[k]` index the distinct node labels `names`, `weights`
/// (if any) must be positive and finite. Dense ids are canonical as for a
/// file ([`canonical_order`]), so the same edges read from a file give the
/// same graph. `what` names the input in errors. Returns the graph, what the
/// builder did, and `order` (dense id → index into `names`).
///
/// ```
/// use spillover::graph::io::graph_from_edges;
/// use spillover::graph::BuildOptions;
/// let names = ["b", "a", "c"];
/// let (g, _, order) = graph_from_edges(&names, &[0, 1], &[1, 2], None, false, &BuildOptions::default(), "edges")?;
/// assert_eq!((g.node_count(), g.edge_count()), (3, 2));
/// assert_eq!(order, vec![1, 0, 2]); // a, b, c
/// # Ok::<(), spillover::Error>(())
/// ```
///
/// # Complexity
/// O(n log n + m log(max degree)) time for n labels and m edges, O(n + m) memory.
pub fn graph_from_edges<S: AsRef<str>>(
    names: &[S],
    src: &[u32],
    dst: &[u32],
    weights: Option<&[f64]>,
    directed: bool,
    build: &BuildOptions,
    what: &str,
) -> Result<(Graph, BuildReport, Vec<u32>)> {
    if names.len() > u32::MAX as usize {
        return Err(Error::TooLarge {
            what: format!("{what}: distinct nodes"),
            size: names.len() as u64,
            limit: u32::MAX as u64,
            advice: ": node ids are stored as 32-bit integers".into(),
        });
    }
    if src.len() != dst.len() || weights.is_some_and(|w| w.len() != src.len()) {
        return Err(Error::input(format!(
            "{what}: the source, target and weight columns have different lengths ({}, {}{}): \
             expected one value per edge in each",
            src.len(),
            dst.len(),
            weights.map_or(String::new(), |w| format!(", {}", w.len()))
        )));
    }
    if src.is_empty() {
        return Err(Error::input(format!(
            "{what}: no edges: expected at least one source, target pair"
        )));
    }
    let n = names.len() as u32;
    if let Some(k) = src.iter().chain(dst).position(|&u| u >= n) {
        return Err(Error::Internal(format!(
            "{what}: edge endpoint {k} is not an index into the {n} node labels"
        )));
    }
    if let Some(w) = weights {
        if let Some(k) = w.iter().position(|&x| !(x.is_finite() && x > 0.0)) {
            return Err(Error::input(format!(
                "{what}: row {k}: expected a positive, finite weight, found {}",
                w[k]
            )));
        }
    }
    let (order, dense) = canonical_order(names);
    let mut b = GraphBuilder::new(names.len(), directed, weights.is_some());
    b.reserve(src.len());
    for k in 0..src.len() {
        let w = weights.map_or(1.0, |w| w[k]);
        b.add_edge(dense[src[k] as usize], dense[dst[k] as usize], w);
    }
    let sorted: Vec<&str> = order.iter().map(|&o| names[o as usize].as_ref()).collect();
    let (graph, report) = b.build_or_duplicate(build).map_err(|d| {
        Error::input(format!(
            "{what}: duplicate edge {} {} (duplicates = error)",
            sorted[d.0 as usize], sorted[d.1 as usize]
        ))
    })?;
    let graph = graph.with_labels(NodeLabels::from_names(&sorted))?;
    Ok((graph, report, order))
}

/// Write `graph` as an edge list (tab separated: source, target, and weight if
/// weighted) with the user's labels, atomically. Undirected edges are written once.
pub fn write_edge_list(graph: &Graph, path: &Path, comment: &str) -> Result<()> {
    crate::fsutil::write_atomic(path, |w| write_edges(graph, w, comment))
}

/// Write `graph` as an edge list to any writer.
pub fn write_edges(graph: &Graph, w: &mut dyn Write, comment: &str) -> std::io::Result<()> {
    for line in comment.lines() {
        writeln!(w, "# {line}")?;
    }
    writeln!(
        w,
        "# {} graph: {} nodes, {} edges",
        if graph.is_directed() {
            "directed"
        } else {
            "undirected"
        },
        graph.node_count(),
        graph.edge_count()
    )?;
    let weighted = graph.is_weighted();
    for (u, v, wt) in graph.edges() {
        if weighted {
            writeln!(w, "{}\t{}\t{}", graph.label(u), graph.label(v), wt)?;
        } else {
            writeln!(w, "{}\t{}", graph.label(u), graph.label(v))?;
        }
    }
    Ok(())
}
