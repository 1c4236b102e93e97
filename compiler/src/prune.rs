//! The pruning API: [`Pruner`] takes a model, removes whole channels and hidden units under a
//! FLOPs or parameter budget (see `kiln_passes::prune`), cleans up with the optimizer, and
//! reports what it cost — parameters and FLOPs (by `stats`' FLOPs model) before and after, each
//! group and layer, and the output distortion measured on calibration inputs.
//!
//! ```no_run
//! use kiln::Pruner;
//! use kiln::prune::Allocation;
//! let model = kiln::onnx::import::load_file("models/light/resnet50.onnx".as_ref())?;
//! let (pruned, report) = Pruner::new().ratio(0.5).allocation(Allocation::Global).prune(model)?;
//! println!("FLOPs {} -> {}", report.flops_before, report.flops_after);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::driver::{memory::Limit, BackendKind, Session};
use crate::stats::{node_flops, ModelStats};
use crate::{KilnError, Model};
use kiln_backends::interp::{eval_node, run_graph};
use kiln_ir::{map_array, Graph, NodeId, Tensor, ValueRef};
use kiln_passes::prune::groups::Role;
pub use kiln_passes::prune::{Allocation, Budget, Criterion, GroupReport, LayerReport};
use kiln_passes::prune::{Analysis, Chan, Distortion, Options, Planner, PruneError};
use ndarray::Axis;
use std::path::PathBuf;
use std::time::Instant;

/// Pruning options; [`Pruner::prune`] runs them.
#[derive(Clone, Debug, Default)]
pub struct Pruner {
    options: Options,
    dims: Vec<(String, usize)>,
    calib: Vec<(String, PathBuf)>,
}

/// Output distortion: relative L2 of the outputs against the original's on the calibration
/// inputs (0 before pruning), and the DP allocation's predicted sum of per-layer distortions.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct DistortionReport {
    pub before: f64,
    pub after: f64,
    pub predicted: Option<f64>,
    /// `random` (seeded inputs) or `given` (`.npy` files).
    pub calibration: &'static str,
}

/// What pruning did. FLOPs and parameters are counted on the weight-folded graph before the
/// clean-up passes, so both sides count the same ops.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PruneReport {
    pub ratio: f64,
    pub budget: Budget,
    pub criterion: Criterion,
    pub allocation: Allocation,
    pub params_before: u64,
    pub params_after: u64,
    pub flops_before: u64,
    pub flops_after: u64,
    pub groups: Vec<GroupReport>,
    pub layers: Vec<LayerReport>,
    pub distortion: DistortionReport,
    /// Time to analyze, allocate and apply (calibration included), in milliseconds.
    pub prune_ms: f64,
}

impl Pruner {
    /// Defaults: ratio 0 (zero groups only), FLOPs budget, L1, uniform allocation.
    pub fn new() -> Pruner {
        Pruner::default()
    }

    /// Share of the budget (FLOPs or parameters) to remove, in [0, 1).
    pub fn ratio(mut self, ratio: f64) -> Pruner {
        self.options.ratio = ratio;
        self
    }

    pub fn budget(mut self, budget: Budget) -> Pruner {
        self.options.budget = budget;
        self
    }

    pub fn criterion(mut self, criterion: Criterion) -> Pruner {
        self.options.criterion = criterion;
        self
    }

    pub fn allocation(mut self, allocation: Allocation) -> Pruner {
        self.options.allocation = allocation;
        self
    }

    /// Leaves the groups of node `name` whole.
    pub fn protect(mut self, name: impl Into<String>) -> Pruner {
        self.options.protect.push(name.into());
        self
    }

    /// Binds a symbolic input dim (FLOPs must be known).
    pub fn dim(mut self, symbol: impl Into<String>, value: usize) -> Pruner {
        self.dims.push((symbol.into(), value));
        self
    }

    /// A calibration input from a `.npy` file; inputs not given are seeded random tensors.
    pub fn calib(mut self, input: impl Into<String>, path: impl Into<PathBuf>) -> Pruner {
        self.calib.push((input.into(), path.into()));
        self
    }

    /// Prunes `model`; returns the pruned, optimized model and the report. Graph outputs keep
    /// their names and shapes.
    pub fn prune(&self, model: Model) -> Result<(Model, PruneReport), KilnError> {
        let start = Instant::now();
        let mut session = Session::from_model(model);
        let given = session.read_inputs(&self.calib)?;
        let calibration = if given.is_empty() { "random" } else { "given" };
        let inputs = session.prepare(&self.dims, given, Limit::from_system())?;
        session.fold()?;
        let before = ModelStats::of(session.model());
        let g = &session.model().graph;
        let planner = Planner::new(g, &self.options, &node_flops, before.parameters.unwrap_or(0))?;
        let (removal, predicted) = if self.options.allocation == Allocation::Dp {
            let mut measure = Calibrated::new(g, &planner.analysis, &inputs)?;
            planner.allocate(Some(&mut measure))?
        } else {
            planner.allocate(None)?
        };
        let mut model = session.model().clone();
        planner.apply(&mut model.graph, &removal)?;
        if model.graph.output_types() != g.output_types() {
            return Err(PruneError::Cost("pruning would change an output's shape".into()).into());
        }
        let prune_ms = start.elapsed().as_secs_f64() * 1e3;
        let after = ModelStats::of(&model);
        let mut pruned = Session::from_model(model);
        let want = session.run(BackendKind::Jit, &inputs)?;
        let got = pruned.run(BackendKind::Jit, &inputs)?;
        pruned.optimize()?;
        let report = PruneReport {
            ratio: self.options.ratio,
            budget: self.options.budget,
            criterion: self.options.criterion,
            allocation: self.options.allocation,
            params_before: before.parameters.unwrap_or(0),
            params_after: after.parameters.unwrap_or(0),
            flops_before: before.flops.unwrap_or(0),
            flops_after: after.flops.unwrap_or(0),
            groups: planner.groups(&removal),
            layers: planner.layers(g, &removal),
            distortion: DistortionReport { before: 0.0, after: relative_l2(&want, &got), predicted, calibration },
            prune_ms,
        };
        Ok((pruned.into_model(), report))
    }
}

/// `‖got − want‖ / ‖want‖` over every output together.
fn relative_l2(want: &[(String, Tensor)], got: &[(String, Tensor)]) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for ((_, w), (_, g)) in want.iter().zip(got) {
        for (a, b) in w.to_f64_vec().into_iter().zip(g.to_f64_vec()) {
            num += (a - b) * (a - b);
            den += a * a;
        }
    }
    (num / den.max(f64::MIN_POSITIVE)).sqrt()
}

/// Per-layer output distortion on calibration inputs: removing input channels `R` of a layer
/// that reads them changes its output by exactly the layer applied to `x_R` with weights `W_R`
/// (it is linear in its input channels), so that is evaluated alone and compared with the
/// layer's whole output, for every layer reading the group's channels.
struct Calibrated<'a> {
    g: &'a Graph,
    a: &'a Analysis,
    /// For each reading layer: its node, the weight slice axis, its input and its output's ‖·‖².
    readers: Vec<(NodeId, usize, ValueRef, Tensor, f64)>,
}

impl<'a> Calibrated<'a> {
    fn new(g: &'a Graph, a: &'a Analysis, inputs: &[Tensor]) -> Result<Calibrated<'a>, KilnError> {
        let reads: Vec<_> = a.slices.iter().filter(|s| s.role == Role::InWeight).collect();
        let extra: Vec<ValueRef> = reads.iter().flat_map(|s| [s.by, ValueRef::first(s.node)]).collect();
        let (_, values) =
            run_graph(g, inputs, &extra).map_err(|e| KilnError::Exec { backend: "interp", source: Box::new(e) })?;
        let readers = reads
            .iter()
            .zip(values.chunks(2))
            .map(|(s, v)| {
                let norm: f64 = v[1].to_f64_vec().iter().map(|x| x * x).sum();
                (s.node, s.axis, s.by, v[0].clone(), norm.max(f64::MIN_POSITIVE))
            })
            .collect();
        Ok(Calibrated { g, a, readers })
    }
}

impl Distortion for Calibrated<'_> {
    fn measure(&mut self, _group: usize, removed: &[Chan]) -> Result<f64, String> {
        let mut total = 0.0;
        for (node, w_axis, by, x, norm) in &self.readers {
            let map = &self.a.maps[by];
            let idx: Vec<usize> = (0..map.entries.len())
                .filter(|&i| map.entries[i].is_some_and(|c| removed.contains(&self.a.root[c as usize])))
                .collect();
            if idx.is_empty() {
                continue;
            }
            let w = self.g.node_inputs(*node)[1].and_then(|v| self.g.const_value(v)).ok_or("weights vanished")?;
            let x_r = map_array!(x, a => a.select(Axis(map.axis), &idx).into_shared());
            let w_r = map_array!(w, a => a.select(Axis(*w_axis), &idx).into_shared());
            let op = &self.g.node(*node).op;
            let delta = eval_node(op, &[Some(x_r), Some(w_r)], 1).map_err(|e| e.to_string())?;
            total += delta[0].to_f64_vec().iter().map(|d| d * d).sum::<f64>() / norm;
        }
        Ok(total)
    }
}
