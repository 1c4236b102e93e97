//! Equality saturation over Kiln's IR with [egg]: the graph is translated into an e-graph
//! ([`lang`], with the [`analysis`] carrying dtype, shape and constant values), rewrite rules
//! from the tables in [`crate::rules`] run under explicit node, iteration and time limits, and
//! the cheapest equivalent graph under the [`cost`] model is extracted and translated back
//! ([`translate`]). Results are deterministic: ids, iteration order and tie-breaks depend only
//! on the input graph.
//!
//! The pass never makes a graph worse or breaks it: if extraction or rebuilding fails, or the
//! rebuilt graph does not verify or changes an output type, or costs more than the original, the
//! original graph is kept (and the stats say why).

pub mod analysis;
pub mod cost;
pub mod lang;
pub mod translate;

pub use analysis::{Data, EGraph, Rewrite, TensorAnalysis};
pub use lang::{ENode, OpKey};

use crate::fold::Evaluator;
use crate::pass::{Pass, PassError, PassStats};
use kiln_ir::{Graph, TensorType};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Bounds on one saturation run.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub iterations: usize,
    /// E-nodes allowed: `nodes_base + nodes_per_node ×` the graph's node count.
    pub nodes_base: usize,
    pub nodes_per_node: usize,
    pub time: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { iterations: 12, nodes_base: 2_000, nodes_per_node: 6, time: Duration::from_millis(400) }
    }
}

/// What one e-graph run did (shown by `kiln inspect --passes`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EGraphReport {
    /// E-nodes and e-classes when saturation stopped.
    pub nodes: usize,
    pub classes: usize,
    pub node_limit: usize,
    pub iterations: usize,
    pub stop_reason: String,
    /// Applications per rule (only rules that fired).
    pub rules: BTreeMap<String, usize>,
    /// Cost-model totals of the graph before and after.
    pub cost_before: f64,
    pub cost_after: f64,
    /// Classes the analysis folded to constants.
    pub folded: usize,
    /// Why the result was not used, if it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept_original: Option<String>,
}

/// The e-graph pass: saturate with a rule table, extract the cheapest graph.
pub struct EGraphPass {
    name: &'static str,
    evaluator: Arc<dyn Evaluator>,
    rules: Vec<Rewrite>,
    limits: Limits,
}

impl EGraphPass {
    /// A pass named `name` running `rules`; constant folding evaluates through `evaluator`.
    pub fn new(name: &'static str, evaluator: Arc<dyn Evaluator>, rules: Vec<Rewrite>) -> EGraphPass {
        EGraphPass { name, evaluator, rules, limits: Limits::default() }
    }

    /// Every rule table: simplification, reparameterization and fusion, explored together.
    pub fn all(evaluator: Arc<dyn Evaluator>) -> EGraphPass {
        EGraphPass::new("egraph", evaluator, crate::rules::all())
    }

    pub fn limits(mut self, limits: Limits) -> EGraphPass {
        self.limits = limits;
        self
    }

    /// Optimizes `g` in place; returns the report.
    pub fn optimize(&self, g: &mut Graph) -> Result<EGraphReport, String> {
        let (eg, tr) = translate::to_egraph(g, self.evaluator.clone()).map_err(|e| e.to_string())?;
        let before = cost::extract(&eg, &tr.roots)?.cost;
        let node_limit = self.limits.nodes_base + self.limits.nodes_per_node * g.num_nodes();
        let runner: egg::Runner<ENode, TensorAnalysis> =
            egg::Runner::new(TensorAnalysis::new(self.evaluator.clone(), vec![]))
                .with_egraph(eg)
                .with_iter_limit(self.limits.iterations)
                .with_node_limit(node_limit)
                .with_time_limit(self.limits.time)
                .with_scheduler(egg::SimpleScheduler)
                .run(&self.rules);
        let mut report = EGraphReport {
            nodes: runner.egraph.total_number_of_nodes(),
            classes: runner.egraph.number_of_classes(),
            node_limit,
            iterations: runner.iterations.len(),
            stop_reason: runner.stop_reason.as_ref().map_or_else(String::new, stop_reason),
            cost_before: before,
            folded: runner.egraph.analysis.folded,
            ..Default::default()
        };
        for it in &runner.iterations {
            for (rule, &n) in &it.applied {
                *report.rules.entry(rule.to_string()).or_default() += n;
            }
        }
        let eg = runner.egraph;
        let ext = match cost::extract(&eg, &tr.roots) {
            Ok(ext) => ext,
            Err(why) => return Ok(keep(report, why)),
        };
        report.cost_after = ext.cost;
        if ext.cost > before * (1.0 + 1e-9) {
            return Ok(keep(report, format!("extraction cost {} exceeds the original {before}", ext.cost)));
        }
        let new = match tr.to_graph(&eg, &ext) {
            Ok(new) => new,
            Err(e) => return Ok(keep(report, format!("rebuilding failed: {e}"))),
        };
        if let Err(e) = new.verify() {
            return Ok(keep(report, format!("the result does not verify: {e}")));
        }
        if let Some((i, (a, b))) =
            g.output_types().iter().zip(new.output_types()).enumerate().find(|(_, (a, b))| !same_type(a, b))
        {
            return Ok(keep(report, format!("output {i} changed type from {a} to {b}")));
        }
        *g = new;
        Ok(report)
    }
}

/// Same dtype and rank, equal where both dims are known.
fn same_type(a: &TensorType, b: &TensorType) -> bool {
    a.dtype == b.dtype
        && a.rank() == b.rank()
        && a.shape.iter().zip(&b.shape).all(|(x, y)| x.known().is_none() || y.known().is_none() || x == y)
}

fn keep(mut report: EGraphReport, why: String) -> EGraphReport {
    report.kept_original = Some(why);
    report
}

fn stop_reason(r: &egg::StopReason) -> String {
    match r {
        egg::StopReason::Saturated => "saturated".into(),
        egg::StopReason::IterationLimit(n) => format!("iteration limit ({n})"),
        egg::StopReason::NodeLimit(n) => format!("node limit ({n})"),
        egg::StopReason::TimeLimit(s) => format!("time limit ({s:.3} s)"),
        egg::StopReason::Other(s) => s.clone(),
    }
}

impl Pass for EGraphPass {
    fn name(&self) -> &'static str {
        self.name
    }

    fn run(&self, g: &mut Graph) -> Result<PassStats, PassError> {
        let mut stats = PassStats::start(self.name, g);
        match self.optimize(g) {
            Ok(report) => {
                stats.record("rewrites", report.rules.values().sum());
                stats.record("folded", report.folded);
                if report.kept_original.is_some() {
                    stats.record("kept_original", 1);
                }
                stats.egraph = Some(report);
            }
            Err(why) => {
                stats.record("kept_original", 1);
                stats.egraph = Some(EGraphReport { kept_original: Some(why), ..Default::default() });
            }
        }
        Ok(stats.finish(g))
    }
}
