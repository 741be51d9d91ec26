//! The user's own population: a `[population]` section naming a CSV, TSV or
//! Parquet file of per-user pre-period metrics, covariates and a categorical
//! stratum.
//!
//! This module owns [`PopulationSpec`] (the section) and [`UserTable`] (the
//! file, read and checked: one row per user, ids unique, numbers finite).
//! [`crate::model::Population::from_table`] turns a table matched to the
//! graph into the scenario's population.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What to do with users of the edge list that the population file lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Missing {
    /// Refuse, listing the first few (default).
    #[default]
    Error,
    /// Drop them and their edges (counted and reported).
    Drop,
}

/// The `[population]` section of a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PopulationSpec {
    /// CSV (comma) or TSV (`.tsv`, tab) file with a header, relative to the scenario.
    pub path: PathBuf,
    /// The column holding the user ids that the edge list's node labels name.
    pub id: String,
    /// The pre-period value of the outcome.
    pub metric: String,
    /// Optional second period of the metric: the period-to-period change
    /// supplies the per-replicate noise.
    #[serde(default)]
    pub metric_next: Option<String>,
    /// Numeric pre-period covariates (balance is reported for each).
    #[serde(default)]
    pub covariates: Vec<String>,
    /// A categorical column (e.g. country) that `strata_by` can name.
    #[serde(default)]
    pub strata: Option<String>,
    /// Users in the edge list but not in the file: `error` (default) or `drop`.
    #[serde(default)]
    pub missing: Missing,
}

/// Most rows a population file may have.
pub const MAX_ROWS: usize = 250_000_000;

/// A population file, read and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct UserTable {
    /// User ids, in file order.
    pub ids: Vec<String>,
    /// The metric.
    pub metric: Vec<f64>,
    /// The second period of the metric, if named.
    pub metric_next: Option<Vec<f64>>,
    /// Covariates: (column name, values).
    pub covariates: Vec<(String, Vec<f64>)>,
    /// The categorical column: (column name, category names, each row's category).
    pub strata: Option<(String, Vec<String>, Vec<u32>)>,
}

impl UserTable {
    /// Read `spec.path` (relative to `base`).
    ///
    /// Errors name the file, the line (or the column) and what was expected:
    /// an unknown column, a repeated id, a value that is not a finite number,
    /// a row with the wrong number of fields. A UTF-8 byte-order mark is
    /// skipped.
    ///
    /// # Complexity
    /// O(rows × columns); memory O(rows × named columns).
    pub fn read(spec: &PopulationSpec, base: &Path) -> Result<UserTable> {
        let path = base.join(&spec.path);
        let file = std::fs::File::open(&path).map_err(|e| Error::read(&path, e))?;
        let ext = |e: &str| path.extension().is_some_and(|x| x.eq_ignore_ascii_case(e));
        if ext("parquet") || ext("pq") {
            return Self::from_parquet(file, &path, spec);
        }
        let tsv = ext("tsv");
        Self::from_reader(std::io::BufReader::new(file), &path, tsv, spec)
    }

    /// Read a table from `reader`; `path` is only used in messages.
    pub fn from_reader<R: std::io::Read>(
        reader: R,
        path: &Path,
        tsv: bool,
        spec: &PopulationSpec,
    ) -> Result<UserTable> {
        let mut rd = csv::ReaderBuilder::new()
            .delimiter(if tsv { b'\t' } else { b',' })
            .has_headers(true)
            .from_reader(reader);
        let csv_err = |e: csv::Error| {
            let line = e.position().map_or(1, |p| p.line() as usize);
            match e.kind() {
                csv::ErrorKind::UnequalLengths {
                    expected_len, len, ..
                } => Error::parse(
                    path,
                    line,
                    format!("{len} fields: expected {expected_len}, as in the header"),
                ),
                csv::ErrorKind::Utf8 { .. } => {
                    Error::parse(path, line, "not UTF-8 text: expected a UTF-8 CSV/TSV file")
                }
                _ => Error::parse(path, line, e.to_string()),
            }
        };
        let header = rd.headers().map_err(csv_err)?.clone();
        let names: Vec<String> = header
            .iter()
            .enumerate()
            .map(|(k, h)| {
                let h = h.trim();
                // A byte-order mark (spreadsheet exports) is not part of the name.
                if k == 0 {
                    h.trim_start_matches('\u{feff}').to_string()
                } else {
                    h.to_string()
                }
            })
            .collect();
        let mut record = csv::StringRecord::new();
        let rows = std::iter::from_fn(move || match rd.read_record(&mut record) {
            Ok(true) => {
                let line = record.position().map_or(0, |p| p.line() as usize);
                Some(Ok((line, record.iter().map(str::to_string).collect())))
            }
            Ok(false) => None,
            Err(e) => Some(Err(csv_err(e))),
        });
        let at = |line: usize, msg: String| Error::parse(path, line, msg);
        Self::from_rows(names, rows, path, spec, &at)
    }

    /// Read a Parquet file (feature `parquet`): columns of integers, floats,
    /// strings or booleans; errors name the file, the row and the column.
    #[cfg(feature = "parquet")]
    pub fn from_parquet(
        file: std::fs::File,
        path: &Path,
        spec: &PopulationSpec,
    ) -> Result<UserTable> {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        use parquet::record::Field;
        let bad = |e: parquet::errors::ParquetError| {
            Error::input(format!(
                "{}: not a readable Parquet file: {e}",
                path.display()
            ))
        };
        let reader = SerializedFileReader::new(file).map_err(bad)?;
        let names: Vec<String> = reader
            .metadata()
            .file_metadata()
            .schema_descr()
            .columns()
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        let width = names.len();
        let col_names = names.clone();
        let rows = reader.get_row_iter(None).map_err(bad)?;
        let rows = rows.enumerate().map(move |(r, row)| {
            let row = row.map_err(bad)?;
            let mut fields = vec![String::new(); width];
            for (k, (_, f)) in row.get_column_iter().enumerate().take(width) {
                fields[k] = match f {
                    Field::Null => String::new(),
                    Field::Bool(b) => u8::from(*b).to_string(),
                    Field::Byte(v) => v.to_string(),
                    Field::Short(v) => v.to_string(),
                    Field::Int(v) => v.to_string(),
                    Field::Long(v) => v.to_string(),
                    Field::UByte(v) => v.to_string(),
                    Field::UShort(v) => v.to_string(),
                    Field::UInt(v) => v.to_string(),
                    Field::ULong(v) => v.to_string(),
                    Field::Float(v) => f64::from(*v).to_string(),
                    Field::Double(v) => v.to_string(),
                    Field::Str(v) => v.clone(),
                    other => {
                        return Err(Error::input(format!(
                            "{}: row {}: column {:?} holds {other:?}: expected numbers or text",
                            path.display(),
                            r + 1,
                            col_names[k]
                        )))
                    }
                };
            }
            Ok((r + 1, fields))
        });
        let at =
            |row: usize, msg: String| Error::input(format!("{}: row {row}: {msg}", path.display()));
        Self::from_rows(names, rows, path, spec, &at)
    }

    /// Without the `parquet` feature a Parquet file is refused.
    #[cfg(not(feature = "parquet"))]
    pub fn from_parquet(
        _file: std::fs::File,
        path: &Path,
        _spec: &PopulationSpec,
    ) -> Result<UserTable> {
        Err(Error::input(format!(
            "{}: reading Parquet needs spillover built with the `parquet` feature (on by default)",
            path.display()
        )))
    }

    /// The checks and columns shared by every format: `rows` gives each
    /// row's location (a line, or a row number) and its fields as text;
    /// `at` builds the error for a location.
    fn from_rows(
        names: Vec<String>,
        rows: impl Iterator<Item = Result<(usize, Vec<String>)>>,
        path: &Path,
        spec: &PopulationSpec,
        at: &dyn Fn(usize, String) -> Error,
    ) -> Result<UserTable> {
        let column = |name: &str| -> Result<usize> {
            names.iter().position(|h| h == name).ok_or_else(|| {
                at(
                    1,
                    format!("no column {name:?} in the header: expected one of {names:?}"),
                )
            })
        };
        let id_col = column(&spec.id)?;
        let metric_col = column(&spec.metric)?;
        let next_col = spec.metric_next.as_deref().map(column).transpose()?;
        let cov_cols: Vec<usize> = spec
            .covariates
            .iter()
            .map(|c| column(c))
            .collect::<Result<_>>()?;
        let strata_col = spec.strata.as_deref().map(column).transpose()?;
        let mut table = UserTable {
            ids: Vec::new(),
            metric: Vec::new(),
            metric_next: next_col.map(|_| Vec::new()),
            covariates: spec
                .covariates
                .iter()
                .map(|c| (c.clone(), Vec::new()))
                .collect(),
            strata: None,
        };
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut categories: HashMap<String, u32> = HashMap::new();
        let mut category_names: Vec<String> = Vec::new();
        let mut codes: Vec<u32> = Vec::new();
        for row in rows {
            let (line, record) = row?;
            if table.ids.len() >= MAX_ROWS {
                return Err(Error::too_large(
                    format!("{}: rows", path.display()),
                    table.ids.len() as u64 + 1,
                    MAX_ROWS as u64,
                    "",
                ));
            }
            let id = record[id_col].trim();
            if id.is_empty() {
                return Err(at(line, format!("empty {:?}: expected a user id", spec.id)));
            }
            if let Some(first) = seen.insert(id.to_string(), line) {
                return Err(at(
                    line,
                    format!("user {id:?} repeats line {first}: expected one row per user"),
                ));
            }
            let number = |col: usize, name: &str| -> Result<f64> {
                let text = record[col].trim();
                match text.parse::<f64>() {
                    Ok(v) if v.is_finite() => Ok(v),
                    _ => Err(at(
                        line,
                        format!("column {name:?} = {text:?}: expected a finite number"),
                    )),
                }
            };
            table.metric.push(number(metric_col, &spec.metric)?);
            if let (Some(c), Some(v)) = (next_col, table.metric_next.as_mut()) {
                v.push(number(c, spec.metric_next.as_deref().unwrap_or_default())?);
            }
            for (k, &c) in cov_cols.iter().enumerate() {
                let v = number(c, &spec.covariates[k])?;
                table.covariates[k].1.push(v);
            }
            if let Some(c) = strata_col {
                let cat = record[c].trim();
                let next = category_names.len() as u32;
                let code = *categories.entry(cat.to_string()).or_insert_with(|| {
                    category_names.push(cat.to_string());
                    next
                });
                codes.push(code);
            }
            table.ids.push(id.to_string());
        }
        if table.ids.is_empty() {
            return Err(Error::input(format!(
                "{}: no rows after the header: expected one row per user",
                path.display()
            )));
        }
        if let Some(c) = &spec.strata {
            table.strata = Some((c.clone(), category_names, codes));
        }
        Ok(table)
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the table has no users.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The rows in the order of `order` (row indices).
    pub fn reordered(&self, order: &[usize]) -> UserTable {
        let pick = |v: &[f64]| order.iter().map(|&r| v[r]).collect::<Vec<f64>>();
        UserTable {
            ids: order.iter().map(|&r| self.ids[r].clone()).collect(),
            metric: pick(&self.metric),
            metric_next: self.metric_next.as_deref().map(pick),
            covariates: self
                .covariates
                .iter()
                .map(|(n, v)| (n.clone(), pick(v)))
                .collect(),
            strata: self.strata.as_ref().map(|(n, names, codes)| {
                (
                    n.clone(),
                    names.clone(),
                    order.iter().map(|&r| codes[r]).collect(),
                )
            }),
        }
    }
}

/// The graph matched to a population file: the users of both, in the
/// graph's order, then the file's users without edges.
#[derive(Debug, Clone)]
pub struct Matched {
    /// The table in the graph's node order.
    pub table: UserTable,
    /// Users of the file without edges (added as isolated users).
    pub isolated: usize,
    /// Users of the edge list the file lacks (dropped, with `missing = "drop"`).
    pub dropped: usize,
    /// The metric's column name.
    pub metric_name: String,
    /// Each original node's id in `graph` (`None`: dropped); users of the
    /// file without edges follow the graph's nodes.
    pub new_id: Vec<Option<u32>>,
}

/// Match `table` to `graph` by node label: the graph on the matched users
/// (isolated users added, missing ones dropped; `graph` itself, relabelled,
/// when nothing changes) and what the matching did.
///
/// # Complexity
/// O(nodes + rows + edges) time, a hash map of the file's ids.
pub fn match_graph(
    graph: crate::graph::Graph,
    table: &UserTable,
    spec: &PopulationSpec,
    path: &Path,
) -> Result<(crate::graph::Graph, Matched)> {
    let n = graph.node_count();
    let row_of: HashMap<&str, usize> = table
        .ids
        .iter()
        .enumerate()
        .map(|(r, id)| (id.as_str(), r))
        .collect();
    let mut in_graph = vec![false; table.len()];
    let mut new_id: Vec<Option<u32>> = Vec::with_capacity(n);
    let mut order: Vec<usize> = Vec::with_capacity(table.len());
    let mut missing: Vec<String> = Vec::new();
    let mut dropped = 0;
    for u in 0..n as u32 {
        let label = graph.label(u);
        match row_of.get(label.as_ref()) {
            Some(&r) => {
                in_graph[r] = true;
                new_id.push(Some(order.len() as u32));
                order.push(r);
            }
            None => {
                dropped += 1;
                if missing.len() < 5 {
                    missing.push(label.into_owned());
                }
                new_id.push(None);
            }
        }
    }
    if dropped > 0 && spec.missing == Missing::Error {
        return Err(Error::input(format!(
            "{}: {dropped} users of the edge list are not in the population file (first: {}): \
             expected a row for every user, or missing = \"drop\" in [population]",
            path.display(),
            missing.join(", ")
        )));
    }
    let isolated = in_graph.iter().filter(|&&x| !x).count();
    order.extend((0..table.len()).filter(|&r| !in_graph[r]));
    let labels = crate::graph::NodeLabels::from_names(
        &order
            .iter()
            .map(|&r| table.ids[r].as_str())
            .collect::<Vec<_>>(),
    );
    let graph = if dropped == 0 && isolated == 0 {
        graph.with_labels(labels)?
    } else {
        graph.remapped(&new_id, order.len(), labels)?
    };
    let matched = Matched {
        table: table.reordered(&order),
        isolated,
        dropped,
        metric_name: spec.metric.clone(),
        new_id,
    };
    Ok((graph, matched))
}
