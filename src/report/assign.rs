//! The assignment to deploy: one drawn randomization of a design written as
//! `user_id,arm,unit[,stratum]` with the user's own ids, and its summary
//! (arm sizes, balance of that draw).

use crate::data::design::{Scheme, Unit};
use crate::diagnosis::{smd, DrawnAssignment, Prepared};
use crate::error::Result;
use serde::Serialize;
use std::path::Path;

#[derive(Serialize)]
struct Row<'a> {
    user_id: &'a str,
    arm: &'static str,
    unit: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    stratum: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    saturation: Option<f64>,
}

/// Write `drawn` (an assignment of design number `design`) to `path`,
/// atomically: one row per user in the graph's order.
///
/// Columns: `user_id` (the user's own id), `arm` (`treatment`/`control`),
/// `unit` (the cluster number for cluster designs, the user id for user
/// designs), `stratum` (stratified designs: the stratum; matched pairs: the
/// pair), `saturation` (saturation designs: the cluster's level).
pub fn write_assignment(
    p: &Prepared,
    design: usize,
    drawn: &DrawnAssignment,
    path: &Path,
) -> Result<()> {
    let d = &p.designs[design];
    let part = drawn.redrawn.as_ref().unwrap_or(&d.clusters);
    let labels = part.labels();
    let mut pair_of: Vec<Option<u32>> = Vec::new();
    if let Scheme::MatchedPairs(pp) = &d.scheme {
        pair_of = vec![None; part.count()];
        for (k, &(a, b)) in pp.pairs.iter().enumerate() {
            pair_of[a as usize] = Some(k as u32);
            pair_of[b as usize] = Some(k as u32);
        }
        if let Some(c) = pp.leftover {
            pair_of[c as usize] = Some(pp.pairs.len() as u32);
        }
    }
    crate::fsutil::write_atomic(path, |w| {
        let mut out = csv::Writer::from_writer(w);
        for (i, &c) in labels.iter().enumerate() {
            let id = p.graph.label(i as u32);
            let unit = match d.spec.unit {
                Unit::User => id.clone(),
                Unit::Cluster => c.to_string().into(),
            };
            let stratum = match &d.scheme {
                Scheme::Stratified(s) => Some(s.stratum[c as usize]),
                Scheme::MatchedPairs(_) => pair_of[c as usize],
                _ => None,
            };
            let saturation = d.levels().map(|l| l.levels[drawn.zc[c as usize] as usize]);
            out.serialize(Row {
                user_id: &id,
                arm: if drawn.z[i] == 1 {
                    "treatment"
                } else {
                    "control"
                },
                unit: &unit,
                stratum,
                saturation,
            })
            .map_err(std::io::Error::other)?;
        }
        out.flush()
    })
}

/// Arm sizes (users and units) and the balance of this one draw, in words.
pub fn summary(p: &Prepared, design: usize, drawn: &DrawnAssignment) -> String {
    let d = &p.designs[design];
    let part = drawn.redrawn.as_ref().unwrap_or(&d.clusters);
    let treated = drawn.z.iter().filter(|&&v| v == 1).count();
    let n = drawn.z.len();
    let mut t = format!(
        "design {}: {} treated and {} control users",
        d.spec.name,
        treated,
        n - treated
    );
    if d.spec.unit == Unit::Cluster && d.levels().is_none() {
        let units_t = drawn.zc.iter().filter(|&&v| v == 1).count();
        t += &format!(
            " in {} treated and {} control clusters",
            units_t,
            part.count() - units_t
        );
    }
    t += "\n";
    let vars: Vec<(&str, &[f64])> = if p.population.balance.is_empty() {
        vec![("covariate", p.population.x.as_slice())]
    } else {
        p.population
            .balance
            .iter()
            .map(|(n, x)| (n.as_str(), x.as_slice()))
            .collect()
    };
    for (name, x) in vars {
        let s = smd(x, &drawn.z);
        t += &format!(
            "  balance of {name}: SMD {s:+.4}{}\n",
            if s.abs() > 0.1 {
                " (over 0.1: consider another seed or a stratified design)"
            } else {
                ""
            }
        );
    }
    t
}
