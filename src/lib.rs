//! # spillover
//!
//! Which randomization design gives an honest, powerful answer for an A/B test
//! on a network where one user's treatment changes another's outcome?
//!
//! The module tree follows the way a design is declared and diagnosed
//! (DeclareDesign's model, inquiry, data strategy, answer strategy,
//! diagnosis). Dependencies point one way, from the top of this list to the
//! bottom; no module imports one that imports it back.
//!
//! - [`api`]: the commands as library calls (run, shard, merge), shared by
//!   the command line and the Python package.
//! - [`report`]: rendering only (table, JSON, CSV, plots, HTML, the
//!   assignment file of `spillover assign`).
//! - [`scenario`]: scenario files ↔ types, and [`scenario::prepare`], which
//!   turns a scenario into a [`diagnosis::Prepared`].
//! - [`diagnosis`]: the Monte Carlo engine, diagnosands (balance included),
//!   the recommendation, power curves, the sweep, clusters that age and the
//!   closed-form calculators.
//! - [`answer`]: the estimators and their inference.
//! - [`data`]: designs (assignment) and exposure mappings with their
//!   probabilities.
//! - [`inquiry`]: estimands (the global effect).
//! - [`model`]: the population and its potential outcomes (synthetic, or
//!   from the user's population file), and the one exposure definition.
//! - [`partition`], [`graph`]: clusters and networks.
//! - [`stats`], [`rng`], [`fsutil`], [`simd`], [`error`]: shared utilities
//!   ([`simd`]: which copy of a hot loop this CPU runs).
//!
//! The library works without the command line: the `spillover` binary
//! (`src/main.rs`, `src/cli.rs`, feature `cli`) is a thin layer on top, and
//! plotting (`plots`) and the vendored METIS (`metis`) are features.

#![warn(missing_docs)]

pub mod answer;
pub mod api;
pub mod data;
pub mod diagnosis;
pub mod error;
pub mod fsutil;
pub mod graph;
pub mod inquiry;
pub mod model;
pub mod partition;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod simd;
pub mod stats;

pub use error::{Error, Result};
pub use graph::Graph;
