//! Runs passes in order, re-verifying the graph after each one, and can stop after pass N for
//! bisecting a miscompile.

use crate::pass::{Pass, PassError, PassStats};
use kiln_ir::Graph;

/// An ordered list of passes and how to run them.
pub struct PassManager {
    passes: Vec<Box<dyn Pass>>,
    verify: bool,
    stop_after: Option<usize>,
}

impl Default for PassManager {
    fn default() -> Self {
        PassManager::new()
    }
}

impl PassManager {
    /// No passes; verification on in debug builds, off in release builds.
    pub fn new() -> PassManager {
        PassManager { passes: Vec::new(), verify: cfg!(debug_assertions), stop_after: None }
    }

    /// Appends a pass.
    pub fn with(mut self, pass: impl Pass + 'static) -> PassManager {
        self.passes.push(Box::new(pass));
        self
    }

    /// Verifies the graph before the first pass and after every pass (`--verify`).
    pub fn verify(mut self, on: bool) -> PassManager {
        self.verify = on;
        self
    }

    /// Runs only the first `n` passes (for bisecting).
    pub fn stop_after(mut self, n: Option<usize>) -> PassManager {
        self.stop_after = n;
        self
    }

    /// Runs the passes in order; returns one [`PassStats`] per pass run.
    pub fn run(&self, g: &mut Graph) -> Result<Vec<PassStats>, PassError> {
        self.run_observed(g, &mut |_, _| {})
    }

    /// Like [`PassManager::run`], calling `observe` with each pass's stats and the graph after it
    /// (the driver uses this to dump before/after text).
    pub fn run_observed(
        &self,
        g: &mut Graph,
        observe: &mut dyn FnMut(&PassStats, &Graph),
    ) -> Result<Vec<PassStats>, PassError> {
        if self.verify {
            g.verify().map_err(PassError::InvalidInput)?;
        }
        let count = self.stop_after.map_or(self.passes.len(), |n| n.min(self.passes.len()));
        let mut all = Vec::with_capacity(count);
        for pass in &self.passes[..count] {
            let start = std::time::Instant::now();
            let mut stats = pass.run(g)?;
            stats.millis = start.elapsed().as_secs_f64() * 1e3;
            if self.verify {
                g.verify().map_err(|source| PassError::Verify { pass: pass.name().to_string(), source })?;
            }
            observe(&stats, g);
            all.push(stats);
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DeadCode;
    use kiln_ir::op::Unary;
    use kiln_ir::{DType, GraphError, Op, TensorType};

    /// A buggy pass: declares a wrong type on the first Relu it finds.
    struct Breaks;

    impl Pass for Breaks {
        fn name(&self) -> &'static str {
            "breaks"
        }
        fn run(&self, g: &mut Graph) -> Result<PassStats, PassError> {
            let stats = PassStats::start(self.name(), g);
            let relu = g.node_ids().into_iter().find(|&id| matches!(g.node(id).op, Op::Unary(Unary::Relu)));
            if let Some(id) = relu {
                g.node_mut(id).outputs[0].ty = TensorType::known(DType::F32, &[99]);
            }
            Ok(stats.finish(g))
        }
    }

    fn graph() -> Graph {
        let mut g = Graph::new("t");
        let x = g.add_input("x", TensorType::known(DType::F32, &[2]));
        let y = g.add("y", Op::Unary(Unary::Relu), &[x]).unwrap();
        g.add("dead", Op::Unary(Unary::Exp), &[x]).unwrap();
        g.set_outputs(vec![y]);
        g
    }

    #[test]
    fn catches_a_pass_that_breaks_the_graph() {
        let mut g = graph();
        let err = PassManager::new().with(DeadCode).with(Breaks).verify(true).run(&mut g).unwrap_err();
        match err {
            PassError::Verify { pass, source: GraphError::TypeMismatch { node, .. } } => {
                assert_eq!((pass.as_str(), node.as_str()), ("breaks", "y"));
            }
            other => panic!("expected a verify error, got {other}"),
        }
    }

    #[test]
    fn stops_after_n_passes_and_reports_stats_as_json() {
        let mut g = graph();
        let pm = PassManager::new().with(DeadCode).with(Breaks).verify(true).stop_after(Some(1));
        let mut seen = Vec::new();
        let stats = pm.run_observed(&mut g, &mut |s, g| seen.push((s.pass.clone(), g.num_nodes()))).unwrap();
        assert_eq!(seen, vec![("dead-code".to_string(), 2)]);
        let mut json = serde_json::to_value(&stats[0]).unwrap();
        assert!(json["millis"].as_f64().unwrap() >= 0.0);
        json["millis"] = serde_json::json!(0.0);
        assert_eq!(
            json,
            serde_json::json!({"pass": "dead-code", "nodes_before": 3, "nodes_after": 2, "changes": {"removed": 1},
                "ops_before": {"Exp": 1, "Relu": 1}, "ops_after": {"Relu": 1}, "millis": 0.0})
        );
    }

    #[test]
    fn rejects_a_broken_input_graph() {
        let mut g = graph();
        Breaks.run(&mut g).unwrap();
        assert!(matches!(PassManager::new().verify(true).run(&mut g), Err(PassError::InvalidInput(_))));
    }
}
