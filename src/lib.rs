//! # spillover
//!
//! Which randomization design gives an honest, powerful answer for an A/B test
//! on a network where one user's treatment changes another's outcome?
//!
//! The library is organized the way a design is declared and diagnosed:
//! [`graph`] (storage, generators, readers) feeds the later stages (partitions,
//! outcome models, designs, estimators, simulation, reports). Data flows one
//! way, and every module says in its documentation which types it owns.
//! The library works without the command line: the `spillover` binary
//! (`src/main.rs`, `src/cli.rs`, feature `cli`) is a thin layer on top.

#![warn(missing_docs)]

pub mod calc;
pub mod design;
pub mod error;
pub mod estimate;
pub mod exposure;
pub mod fsutil;
pub mod graph;
pub mod outcome;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod sim;
pub mod sweep;

pub use error::{Error, Result};
pub use graph::Graph;
pub mod partition;
