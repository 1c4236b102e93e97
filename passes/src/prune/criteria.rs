//! How important each unit is: weight magnitude (L1, L2) over every weight slice of the unit
//! (the filters producing it and the next layers' slices reading it), BatchNorm scale, and LAMP
//! (arXiv 2010.07611: a unit's squared magnitude over the sum of those at least as large in its
//! group, so scores compare across layers). Also finds the zero units: every parameter producing
//! the channel is exactly zero and zero stays zero on the way to its readers.

use super::groups::{Analysis, Chan, Role};
use kiln_ir::{DType, Graph, Tensor};
use ndarray::Axis;
use std::collections::HashMap;

/// An importance criterion.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Criterion {
    /// Sum of absolute weights.
    #[default]
    L1,
    /// Euclidean norm of the weights.
    L2,
    /// Absolute BatchNorm scale (L2 for units without a BatchNorm).
    Bn,
    /// LAMP score of the squared L2 norm within the unit's group.
    Lamp,
}

/// Magnitudes of one unit's parameters.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct UnitStats {
    pub l1: f64,
    pub l2sq: f64,
    /// Sum of |BatchNorm scale|, if a BatchNorm sits on the unit.
    pub bn: Option<f64>,
    /// Largest |value| among the parameters producing the channel (weights, shifts, BN scale).
    pub out_max: f64,
}

/// Every unit's magnitudes, by unit root.
pub fn measure(g: &Graph, a: &Analysis) -> HashMap<Chan, UnitStats> {
    let mut stats: HashMap<Chan, UnitStats> = HashMap::new();
    for s in &a.slices {
        let Some(t) = g.node_inputs(s.node)[s.input].and_then(|v| g.const_value(v)) else { continue };
        let t = if t.dtype() == DType::F32 { t.clone() } else { t.cast(DType::F32) };
        let Tensor::F32(arr) = &t else { continue };
        let map = &a.maps[&s.by];
        if arr.shape().get(s.axis) != Some(&map.entries.len()) {
            continue;
        }
        for (i, lane) in arr.axis_iter(Axis(s.axis)).enumerate() {
            let Some(c) = map.entries[i] else { continue };
            let u = stats.entry(a.root[c as usize]).or_default();
            let (mut l1, mut l2, mut max) = (0f64, 0f64, 0f64);
            for &w in lane.iter() {
                let w = f64::from(w).abs();
                l1 += w;
                l2 += w * w;
                max = max.max(w);
            }
            match s.role {
                Role::OutWeight | Role::InWeight => {
                    u.l1 += l1;
                    u.l2sq += l2;
                }
                Role::BnScale => *u.bn.get_or_insert(0.0) += l1,
                Role::OutShift | Role::Stat => {}
            }
            if matches!(s.role, Role::OutWeight | Role::OutShift | Role::BnScale) {
                u.out_max = u.out_max.max(max);
            }
        }
    }
    stats
}

/// Units whose producing parameters are all exactly zero and whose zeros reach every reader
/// unchanged: removing them leaves the outputs as they were.
pub fn zero_units(a: &Analysis, stats: &HashMap<Chan, UnitStats>) -> Vec<Chan> {
    a.groups
        .iter()
        .flat_map(|g| &g.units)
        .filter(|u| u.zero_invariant && stats.get(&u.root).is_some_and(|s| s.out_max == 0.0))
        .map(|u| u.root)
        .collect()
}

/// Each unit's importance under `criterion` (higher is more important).
pub fn importance(a: &Analysis, stats: &HashMap<Chan, UnitStats>, criterion: Criterion) -> HashMap<Chan, f64> {
    let get = |c: Chan| stats.get(&c).copied().unwrap_or_default();
    let mut out = HashMap::new();
    for group in &a.groups {
        let plain: Vec<(Chan, f64)> = group
            .units
            .iter()
            .map(|u| {
                let s = get(u.root);
                let v = match criterion {
                    Criterion::L1 => s.l1,
                    Criterion::L2 | Criterion::Lamp => s.l2sq.sqrt(),
                    Criterion::Bn => s.bn.unwrap_or(s.l2sq.sqrt()),
                };
                (u.root, v)
            })
            .collect();
        if criterion == Criterion::Lamp {
            out.extend(lamp(&plain));
        } else {
            out.extend(plain);
        }
    }
    out
}

/// LAMP scores of magnitudes: `m_j² / Σ_{k: m_k ≥ m_j} m_k²` (ties ordered by position), in (0, 1];
/// the largest unit of a group scores 1.
pub fn lamp(units: &[(Chan, f64)]) -> Vec<(Chan, f64)> {
    let mut sorted: Vec<(Chan, f64)> = units.iter().map(|&(c, m)| (c, m * m)).collect();
    sorted.sort_by(|x, y| x.1.total_cmp(&y.1));
    let mut suffix = 0.0;
    let mut scores = Vec::with_capacity(sorted.len());
    for &(c, s) in sorted.iter().rev() {
        suffix += s;
        scores.push((c, if suffix > 0.0 { s / suffix } else { 1.0 }));
    }
    scores
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lamp_scores_by_hand() {
        let s: HashMap<Chan, f64> = lamp(&[(0, 1.0), (1, 2.0), (2, 3.0)]).into_iter().collect();
        // squares 1, 4, 9: 1/14, 4/13, 9/9.
        assert!((s[&0] - 1.0 / 14.0).abs() < 1e-12);
        assert!((s[&1] - 4.0 / 13.0).abs() < 1e-12);
        assert_eq!(s[&2], 1.0);
    }
}
