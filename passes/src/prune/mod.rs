//! Structured pruning: removing whole channels (and the hidden units of linear layers) from a
//! graph whose weights are constants, so the result is a smaller graph of the same ops.
//!
//! - [`groups`]: the dependency analysis — which parameter slices go together, and what is
//!   left whole and why;
//! - [`criteria`]: each unit's importance (L1, L2, BatchNorm scale, LAMP) and the zero units;
//! - [`allocate`]: how many units each group loses under a FLOPs or parameter budget;
//! - [`apply`]: the graph edit, and the cost of a removal before it is made.
//!
//! [`Planner`] ties them together; [`ZeroGroups`] is the lossless part as a [`Pass`]: it removes
//! only units whose parameters are exactly zero, which leaves the graph's outputs unchanged.

pub mod allocate;
pub mod apply;
pub mod criteria;
pub mod groups;

pub use allocate::{Allocation, Budget, Distortion};
pub use apply::{ApplyError, CostModel, Removal};
pub use criteria::Criterion;
pub use groups::{analyze, Analysis, Chan, Group};

use crate::pass::{Pass, PassError, PassStats};
use kiln_ir::{Graph, GraphError, NodeId};
use std::collections::HashMap;

/// What to prune and how.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Options {
    /// Share of the budget's measure to remove, in [0, 1); 0 removes only zero units.
    pub ratio: f64,
    pub budget: Budget,
    pub criterion: Criterion,
    pub allocation: Allocation,
    /// Node names whose groups are left whole.
    pub protect: Vec<String>,
}

/// Why pruning failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PruneError {
    #[error("--ratio must be in [0, 1), got {0}")]
    Ratio(f64),
    #[error("--protect {0}: the model has no node of that name")]
    UnknownNode(String),
    #[error("{0}")]
    Cost(String),
    #[error("measuring distortion failed: {0}")]
    Distortion(String),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error(transparent)]
    Graph(#[from] GraphError),
}

/// One group as reported: its layers, members, units kept and removed, and why units are blocked.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct GroupReport {
    pub sources: Vec<String>,
    pub members: Vec<String>,
    pub units: usize,
    pub removed: usize,
    pub zero_removed: usize,
    pub blocked_units: usize,
    pub blocked: Vec<String>,
}

/// A layer's output channels before and after.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LayerReport {
    pub name: String,
    pub channels: usize,
    pub kept: usize,
}

/// The analysis of one graph and the costs and importances pruning decides on.
pub struct Planner {
    pub analysis: Analysis,
    pub importance: HashMap<Chan, f64>,
    pub zero: Vec<Chan>,
    pub cost: CostModel,
    options: Options,
    params_before: u64,
}

impl Planner {
    /// Analyzes `g` (weights must be constants). `node_flops` is the FLOPs model; `params_before`
    /// the parameter count the params budget is a share of.
    pub fn new(
        g: &Graph,
        options: &Options,
        node_flops: &dyn Fn(&Graph, NodeId) -> Option<u64>,
        params_before: u64,
    ) -> Result<Planner, PruneError> {
        if !(0.0..1.0).contains(&options.ratio) {
            return Err(PruneError::Ratio(options.ratio));
        }
        let mut analysis = analyze(g)?;
        for name in &options.protect {
            if !g.node_ids().iter().any(|&id| &g.node(id).name == name) {
                return Err(PruneError::UnknownNode(name.clone()));
            }
            for grp in analysis.groups.iter_mut().filter(|grp| {
                grp.sources.contains(name) || grp.members.iter().any(|m| m.starts_with(&format!("{name} (")))
            }) {
                grp.blocked_units += grp.units.len();
                grp.units.clear();
                grp.blocked.push(format!("protected by --protect {name}"));
            }
        }
        let stats = criteria::measure(g, &analysis);
        let zero = criteria::zero_units(&analysis, &stats);
        let importance = criteria::importance(&analysis, &stats, options.criterion);
        let cost = CostModel::new(g, &analysis, node_flops).map_err(PruneError::Cost)?;
        Ok(Planner { analysis, importance, zero, cost, options: options.clone(), params_before })
    }

    /// Chooses the units to remove (`dist` is needed by the DP allocation only); returns the
    /// removal and the DP's predicted summed distortion.
    pub fn allocate(&self, dist: Option<&mut dyn Distortion>) -> Result<(Removal, Option<f64>), PruneError> {
        let problem = allocate::Problem {
            analysis: &self.analysis,
            importance: &self.importance,
            zero: &self.zero,
            cost: &self.cost,
            budget: self.options.budget,
            ratio: self.options.ratio,
            params_before: self.params_before,
        };
        let chosen = allocate::allocate(&problem, self.options.allocation, dist).map_err(PruneError::Distortion)?;
        Ok((chosen.removal, chosen.predicted_distortion))
    }

    /// Each group with its counts under `removal`.
    pub fn groups(&self, removal: &Removal) -> Vec<GroupReport> {
        self.analysis
            .groups
            .iter()
            .map(|grp| GroupReport {
                sources: grp.sources.clone(),
                members: grp.members.clone(),
                units: grp.units.len() + grp.blocked_units,
                removed: grp.units.iter().filter(|u| removal.contains(u.root)).count(),
                zero_removed: grp
                    .units
                    .iter()
                    .filter(|u| removal.contains(u.root) && self.zero.contains(&u.root))
                    .count(),
                blocked_units: grp.blocked_units,
                blocked: grp.blocked.clone(),
            })
            .collect()
    }

    /// Each layer's output channels kept under `removal`, in analysis order.
    pub fn layers(&self, g: &Graph, removal: &Removal) -> Vec<LayerReport> {
        let rm = |c: Chan| removal.contains(c);
        let mut layers: Vec<(NodeId, LayerReport)> = self
            .analysis
            .groups
            .iter()
            .flat_map(|grp| grp.outputs.iter())
            .map(|&v| {
                let channels = self.analysis.maps[&v].entries.len();
                (
                    v.node,
                    LayerReport { name: g.node(v.node).name.clone(), channels, kept: self.analysis.kept(v, &rm).len() },
                )
            })
            .collect();
        layers.sort_by_key(|(id, _)| *id);
        layers.into_iter().map(|(_, l)| l).collect()
    }

    /// Removes `removal`'s units from `g`.
    pub fn apply(&self, g: &mut Graph, removal: &Removal) -> Result<(), PruneError> {
        Ok(apply::apply(g, &self.analysis, removal)?)
    }
}

/// Removes the units whose parameters are all exactly zero (lossless). Weights must be constants.
#[derive(Clone, Copy, Debug, Default)]
pub struct ZeroGroups;

impl Pass for ZeroGroups {
    fn name(&self) -> &'static str {
        "zero-groups"
    }

    fn run(&self, g: &mut Graph) -> Result<PassStats, PassError> {
        let mut stats = PassStats::start(self.name(), g);
        let err = |source| PassError::Graph { pass: "zero-groups".into(), source };
        let analysis = analyze(g).map_err(err)?;
        let zero = criteria::zero_units(&analysis, &criteria::measure(g, &analysis));
        let removal = Removal::new(&analysis, zero.iter().copied());
        match apply::apply(g, &analysis, &removal) {
            Ok(()) => {}
            Err(ApplyError::Graph(e)) => return Err(err(e)),
            // A value every channel of which is zero is left as it is.
            Err(ApplyError::Empty(_)) => return Ok(stats.finish(g)),
        }
        stats.record("removed_units", zero.len());
        Ok(stats.finish(g))
    }
}

#[cfg(test)]
mod tests;
