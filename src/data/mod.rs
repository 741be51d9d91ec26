//! The data strategy: how units are grouped and assigned, and what each
//! user is exposed to.
//!
//! [`design`] owns the designs (user or cluster, by Bernoulli, complete,
//! stratified, matched-pair or saturation assignment, fixed or redrawn
//! partitions) and their arm-size distribution; [`exposure`] owns exposure
//! mappings, exposure conditions and their exact or estimated
//! probabilities. The partitions themselves live in [`crate::partition`].

pub mod design;
pub mod exposure;
