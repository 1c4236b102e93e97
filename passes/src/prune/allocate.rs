//! How many units each group loses to meet a budget (a share of FLOPs or parameters to remove).
//! Zero units go first, whatever the budget. Then:
//!
//! - `uniform`: every group loses the same share of its units, least important first;
//! - `global`: one ranking of all units by importance over their group's mean importance;
//! - `lamp`: one ranking by LAMP score (squared importance over the sum of those not smaller);
//! - `dp`: the layer-adaptive allocation ("Efficient Joint Optimization of Layer-Adaptive Weight
//!   Pruning"): each group's output distortion at each candidate share is measured alone, and a
//!   dynamic program over groups × candidates picks the shares of least summed distortion whose
//!   summed savings meet the budget (output distortion is close to additive across layers).
//!
//! Every group keeps at least one unit and at least a tenth of its channels. The budget is met on
//! the [`CostModel`]'s estimate, which is exact for the FLOPs model it was built from.

use super::apply::{CostModel, Removal};
use super::criteria::lamp;
use super::groups::{Analysis, Chan};
use std::collections::HashMap;

/// How units are allocated across groups.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Allocation {
    #[default]
    Uniform,
    Global,
    Lamp,
    Dp,
}

/// What `ratio` is a share of.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Budget {
    #[default]
    Flops,
    Params,
}

/// Measures the output distortion of removing some of one group's units, alone.
pub trait Distortion {
    /// `removed` holds unit roots of group `group` only.
    fn measure(&mut self, group: usize, removed: &[Chan]) -> Result<f64, String>;
}

/// Candidate shares for the DP allocation.
pub const CANDIDATES: [f64; 10] = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

/// What the allocation chose, with the DP's predicted summed distortion where it ran.
#[derive(Clone, Debug)]
pub struct Chosen {
    pub removal: Removal,
    pub predicted_distortion: Option<f64>,
}

/// Everything an allocation reads.
pub struct Problem<'a> {
    pub analysis: &'a Analysis,
    pub importance: &'a HashMap<Chan, f64>,
    pub zero: &'a [Chan],
    pub cost: &'a CostModel,
    pub budget: Budget,
    /// Share of the budget to remove, in [0, 1).
    pub ratio: f64,
    /// Parameters before pruning (for `Budget::Params`).
    pub params_before: u64,
}

impl Problem<'_> {
    /// Each group's removable units, least important first (zero units excluded), capped so
    /// the group keeps a unit and a tenth of its channels.
    fn ranked(&self) -> Vec<Vec<Chan>> {
        self.analysis
            .groups
            .iter()
            .map(|g| {
                let zeros = g.units.iter().filter(|u| self.zero.contains(&u.root)).count();
                let total = g.units.len() + g.blocked_units;
                let cap = (total * 9 / 10).min(g.units.len().saturating_sub(1)).saturating_sub(zeros);
                let mut units: Vec<(Chan, f64)> = g
                    .units
                    .iter()
                    .filter(|u| !self.zero.contains(&u.root))
                    .map(|u| (u.root, self.importance.get(&u.root).copied().unwrap_or(0.0)))
                    .collect();
                units.sort_by(|a, b| a.1.total_cmp(&b.1));
                units.into_iter().take(cap).map(|(c, _)| c).collect()
            })
            .collect()
    }

    fn base(&self) -> Removal {
        Removal::new(self.analysis, self.zero.iter().copied())
    }

    /// The remaining cost under the budget's measure.
    fn cost(&self, r: &Removal) -> f64 {
        let (flops, params_removed) = self.cost.estimate(self.analysis, r);
        match self.budget {
            Budget::Flops => flops as f64,
            Budget::Params => self.params_before.saturating_sub(params_removed) as f64,
        }
    }

    fn target(&self) -> f64 {
        let before = match self.budget {
            Budget::Flops => self.cost.flops_before,
            Budget::Params => self.params_before,
        };
        before as f64 * (1.0 - self.ratio)
    }

    fn with(&self, ranked: &[Vec<Chan>], counts: &[usize]) -> Removal {
        let mut r = self.base();
        for (units, &k) in ranked.iter().zip(counts) {
            units.iter().take(k).for_each(|&c| r.insert(c));
        }
        r
    }
}

/// Chooses the units to remove.
pub fn allocate(p: &Problem, method: Allocation, dist: Option<&mut dyn Distortion>) -> Result<Chosen, String> {
    let ranked = p.ranked();
    if p.ratio <= 0.0 {
        return Ok(Chosen { removal: p.base(), predicted_distortion: None });
    }
    let target = p.target();
    match method {
        Allocation::Uniform => {
            let counts = |share: f64| -> Vec<usize> {
                p.analysis
                    .groups
                    .iter()
                    .zip(&ranked)
                    .map(|(g, r)| (((g.units.len() + g.blocked_units) as f64 * share) as usize).min(r.len()))
                    .collect()
            };
            let (mut lo, mut hi) = (0.0, 1.0);
            for _ in 0..40 {
                let mid = (lo + hi) / 2.0;
                if p.cost(&p.with(&ranked, &counts(mid))) <= target {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            Ok(Chosen { removal: p.with(&ranked, &counts(hi)), predicted_distortion: None })
        }
        Allocation::Global | Allocation::Lamp => {
            let mut order: Vec<(f64, usize, usize, Chan)> = Vec::new();
            for (gi, units) in ranked.iter().enumerate() {
                let all: Vec<(Chan, f64)> = p.analysis.groups[gi]
                    .units
                    .iter()
                    .map(|u| (u.root, p.importance.get(&u.root).copied().unwrap_or(0.0)))
                    .collect();
                let key: HashMap<Chan, f64> = if method == Allocation::Lamp {
                    lamp(&all).into_iter().collect()
                } else {
                    let mean = all.iter().map(|u| u.1).sum::<f64>() / all.len().max(1) as f64;
                    all.iter().map(|&(c, v)| (c, if mean > 0.0 { v / mean } else { 0.0 })).collect()
                };
                order.extend(units.iter().enumerate().map(|(pos, &c)| (key[&c], pos, gi, c)));
            }
            order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
            let take = |k: usize| {
                let mut r = p.base();
                order.iter().take(k).for_each(|o| r.insert(o.3));
                r
            };
            let (mut lo, mut hi) = (0, order.len());
            while lo < hi {
                let mid = (lo + hi) / 2;
                if p.cost(&take(mid)) <= target {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            Ok(Chosen { removal: take(lo), predicted_distortion: None })
        }
        Allocation::Dp => {
            let dist = dist.ok_or("the DP allocation needs a distortion measure")?;
            dp(p, &ranked, target, dist)
        }
    }
}

/// One candidate of one group: units removed, cost saved alone, distortion alone.
struct Candidate {
    count: usize,
    saving: f64,
    distortion: f64,
}

fn dp(p: &Problem, ranked: &[Vec<Chan>], target: f64, dist: &mut dyn Distortion) -> Result<Chosen, String> {
    let base_cost = p.cost(&p.base());
    let mut table: Vec<Vec<Candidate>> = Vec::new();
    for (gi, units) in ranked.iter().enumerate() {
        let total = p.analysis.groups[gi].units.len() + p.analysis.groups[gi].blocked_units;
        let mut cands = vec![Candidate { count: 0, saving: 0.0, distortion: 0.0 }];
        for share in &CANDIDATES[1..] {
            let count = ((total as f64 * share) as usize).min(units.len());
            if count == 0 || cands.last().is_some_and(|c| c.count == count) {
                continue;
            }
            let mut counts = vec![0; ranked.len()];
            counts[gi] = count;
            let saving = base_cost - p.cost(&p.with(ranked, &counts));
            let distortion = dist.measure(gi, &units[..count])?;
            cands.push(Candidate { count, saving, distortion });
        }
        table.push(cands);
    }
    const BUCKETS: usize = 2000;
    let mut need = base_cost - target;
    let mut best = None;
    for _ in 0..20 {
        if need <= 0.0 {
            return Ok(Chosen { removal: p.base(), predicted_distortion: Some(0.0) });
        }
        let bucket = |s: f64| ((s / need * BUCKETS as f64).floor().max(0.0) as usize).min(BUCKETS);
        let mut cost = vec![f64::INFINITY; BUCKETS + 1];
        cost[0] = 0.0;
        let mut back: Vec<Vec<(usize, usize)>> = Vec::with_capacity(table.len());
        for cands in &table {
            let mut next = vec![f64::INFINITY; BUCKETS + 1];
            let mut from = vec![(0, 0); BUCKETS + 1];
            for (b, &c) in cost.iter().enumerate().filter(|(_, c)| c.is_finite()) {
                for (ci, cand) in cands.iter().enumerate() {
                    let nb = (b + bucket(cand.saving)).min(BUCKETS);
                    if c + cand.distortion < next[nb] {
                        next[nb] = c + cand.distortion;
                        from[nb] = (b, ci);
                    }
                }
            }
            cost = next;
            back.push(from);
        }
        let end = if cost[BUCKETS].is_finite() {
            BUCKETS
        } else {
            (0..=BUCKETS).rev().find(|&b| cost[b].is_finite()).unwrap_or(0)
        };
        let mut counts = vec![0; table.len()];
        let mut b = end;
        for gi in (0..table.len()).rev() {
            let (prev, ci) = back[gi][b];
            counts[gi] = table[gi][ci].count;
            b = prev;
        }
        let removal = p.with(ranked, &counts);
        let actual = p.cost(&removal);
        best = Some(Chosen { removal, predicted_distortion: Some(cost[end]) });
        if actual <= target || end < BUCKETS {
            break;
        }
        // Savings alone overstate savings together (a layer between two pruned groups is
        // counted by both): scale the need by how far short the last choice fell.
        need *= ((base_cost - target) / (base_cost - actual).max(1.0)).max(1.02);
    }
    best.ok_or_else(|| "the DP allocation found no solution".to_string())
}
