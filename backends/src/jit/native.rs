//! Which ops outside the fused f32 groups run as native Rust kernels, and with what geometry:
//! [`plan`] reads a node's static shapes, dtypes and constant inputs and returns the kernel
//! (`norm`, `reduce`, `copy`, `resize`, `deconv`, `typed`) that computes it, or `None` when the
//! node must stay with the interpreter (a parameter known only at run time, a case the kernel
//! does not cover, or an input the interpreter would reject — it then reports the error).
//! Lowering plans each node once, when it chooses the node's role, and attaches the operands
//! (the node's first [`Kernel::arity`] inputs, its outputs, a scratch buffer) when it emits it.

use super::copy::{CopyStep, GatherStep};
use super::deconv::DeconvStep;
use super::exec::Ptr;
use super::lower::Vid;
use super::norm::{NormStep, SoftmaxStep};
use super::pool::Workers;
use super::reduce::{ArgStep, ReduceStep};
use super::resize::ResizeStep;
use super::typed::{self, TypedOp, TypedStep};
use kiln_ir::op::{normalize_axis, pad_amounts, reduce_axes, slice_plan, split_sizes, SliceAxis};
use kiln_ir::{DType, Graph, NodeId, Op, Tensor, ValueRef};

/// A native kernel's geometry.
#[derive(Clone, Debug)]
pub(crate) enum Kernel {
    Softmax(SoftmaxStep),
    Norm(NormStep),
    Reduce(ReduceStep),
    /// One copy per output (Split has several).
    Copy(Vec<CopyStep>),
    Resize(ResizeStep),
    Deconv(DeconvStep),
    /// Elementwise ops on values of any supported dtype.
    Typed(TypedStep),
    /// ArgMax/ArgMin (i64 output).
    Arg(ArgStep),
    /// Gather at run-time indices (input 1).
    Gather(GatherStep),
}

impl Kernel {
    /// Elements of the arena scratch buffer the kernel works in, if it needs one.
    pub(crate) fn scratch_len(&self) -> Option<usize> {
        match self {
            Kernel::Deconv(k) => Some(k.scratch_len()),
            Kernel::Softmax(_)
            | Kernel::Norm(_)
            | Kernel::Reduce(_)
            | Kernel::Copy(_)
            | Kernel::Resize(_)
            | Kernel::Typed(_)
            | Kernel::Arg(_)
            | Kernel::Gather(_) => None,
        }
    }

    /// How many of the node's inputs, from the first, the kernel reads at run time (the others
    /// were folded into its plan).
    pub(crate) fn arity(&self) -> usize {
        match self {
            Kernel::Typed(t) => t.dtypes.len() - 1,
            Kernel::Gather(_) => 2,
            Kernel::Softmax(_)
            | Kernel::Norm(_)
            | Kernel::Reduce(_)
            | Kernel::Copy(_)
            | Kernel::Resize(_)
            | Kernel::Deconv(_)
            | Kernel::Arg(_) => 1,
        }
    }
}

/// A native kernel with its operands: its [`Kernel::arity`] inputs, one output per node output,
/// and the scratch buffer when [`Kernel::scratch_len`] asks for one.
#[derive(Clone, Debug)]
pub(crate) struct NativeStep {
    pub kernel: Kernel,
    pub xs: Vec<Vid>,
    pub ys: Vec<Vid>,
    pub scratch: Option<Vid>,
}

impl NativeStep {
    /// # Safety
    /// `xs` and `ys` point at the values the kernel was planned for (`ys[i]` for output `i`),
    /// `scratch` at the scratch buffer (if any), and no output overlaps another pointer.
    /// An error is an input the kernel refuses (an index out of range).
    pub(crate) unsafe fn run(&self, workers: &Workers, xs: &[Ptr], ys: &[Ptr], scratch: Ptr) -> Result<(), String> {
        let (x, y) = (xs[0], ys[0]);
        // SAFETY (all arms): forwarded from the caller.
        unsafe {
            match &self.kernel {
                Kernel::Gather(k) => return k.run(workers, x, xs[1], y),
                Kernel::Typed(k) => k.run(workers, xs, y),
                Kernel::Arg(k) => k.run(workers, x, y),
                Kernel::Softmax(k) => k.run(workers, x, y),
                Kernel::Norm(k) => k.run(workers, x, y),
                Kernel::Reduce(k) => k.run(workers, x, y),
                Kernel::Copy(parts) => parts.iter().zip(ys).for_each(|(k, &y)| k.run(workers, x, y)),
                Kernel::Resize(k) => k.run(workers, x, y),
                Kernel::Deconv(k) => k.run(workers, x, y, scratch),
            }
        }
        Ok(())
    }
}

/// The native kernel for node `id`, if there is one. `f32_static`: every input is static f32
/// or constant and every output static f32 (the f32 kernels need it; the typed ones check
/// their own dtypes).
pub(crate) fn plan(g: &Graph, id: NodeId, f32_static: bool) -> Option<Kernel> {
    let node = g.node(id);
    let ins = g.node_inputs(id);
    let out = |o: usize| g.value_type(ValueRef { node: id, output: o }).concrete_shape();
    let input = |i: usize| ins.get(i).copied().flatten();
    let dtype = |i: usize| input(i).map(|v| g.value_type(v).dtype);
    let out_dtype = g.value_type(ValueRef::first(id)).dtype;
    // Shapes of the first `n` inputs, all static.
    let shapes =
        |n: usize| -> Option<Vec<Vec<usize>>> { (0..n).map(|i| g.value_type(input(i)?).concrete_shape()).collect() };
    let typed = |op: TypedOp, n: usize| -> Option<Kernel> {
        let dtypes = (0..n).map(dtype).chain([Some(out_dtype)]).collect::<Option<Vec<_>>>()?;
        TypedStep::new(op, &shapes(n)?, dtypes, &out(0)?).map(Kernel::Typed)
    };
    let f32_only = |k: Option<Kernel>| k.filter(|_| f32_static);
    let konst = |i: usize| ins.get(i).copied().flatten().map(|v| g.const_value(v));
    // An optional constant input: absent is `Some(None)`, computed at run time is `None`.
    let opt_const = |i: usize| match konst(i) {
        None => Some(None),
        Some(Some(t)) => Some(Some(t)),
        Some(None) => None,
    };
    let i64s = |i: usize| opt_const(i).map(|t| t.map(Tensor::to_i64_vec));
    let shape = g.value_type(input(0)?).concrete_shape()?;
    let single = node.outputs.len() == 1;
    let kernel = match &node.op {
        Op::Softmax { axis, legacy } | Op::LogSoftmax { axis, legacy } => {
            let log = matches!(node.op, Op::LogSoftmax { .. });
            f32_only(SoftmaxStep::new(&shape, *axis, *legacy, log).map(Kernel::Softmax))
        }
        Op::LayerNorm { axis, epsilon } if single => {
            f32_only(NormStep::layer(&shape, *axis, *epsilon, konst(1)??, opt_const(2)?).map(Kernel::Norm))
        }
        Op::InstanceNorm { epsilon } => {
            f32_only(NormStep::instance(&shape, *epsilon, konst(1)??, konst(2)??).map(Kernel::Norm))
        }
        Op::Reduce { op, keepdims: _, noop_with_empty_axes } => {
            let axes = reduce_axes(shape.len(), i64s(1)?.as_deref(), *noop_with_empty_axes).ok()?;
            f32_only(Some(Kernel::Reduce(ReduceStep::new(*op, &shape, &axes))))
        }
        Op::ArgMax { axis, keepdims: _, select_last_index } | Op::ArgMin { axis, keepdims: _, select_last_index } => {
            let a = normalize_axis(*axis, shape.len())?;
            let max = matches!(node.op, Op::ArgMax { .. });
            let ok = dtype(0) == Some(DType::F32) && out_dtype == DType::I64 && shape[a] > 0;
            ok.then(|| Kernel::Arg(ArgStep::new(&shape, a, max, *select_last_index)))
        }
        Op::Slice => {
            let plan = slice_plan(&shape, &i64s(1)??, &i64s(2)??, i64s(3)?.as_deref(), i64s(4)?.as_deref()).ok()?;
            f32_only(shape.iter().all(|&d| d > 0).then(|| Kernel::Copy(vec![CopyStep::slice(&shape, &plan)])))
        }
        Op::Split { axis } => {
            let a = normalize_axis(*axis, shape.len())?;
            let sizes = split_sizes(shape[a], i64s(1)?.as_deref(), node.outputs.len()).ok()?;
            let mut start = 0;
            let parts = sizes
                .into_iter()
                .map(|len| {
                    let mut plan: Vec<SliceAxis> =
                        shape.iter().map(|&d| SliceAxis { start: 0, step: 1, len: d }).collect();
                    plan[a] = SliceAxis { start: start as i64, step: 1, len };
                    start += len;
                    CopyStep::slice(&shape, &plan)
                })
                .collect();
            f32_only(Some(Kernel::Copy(parts)))
        }
        Op::Pad { mode } => {
            let amounts = pad_amounts(shape.len(), &i64s(1)??, i64s(3)?.as_deref()).ok()?;
            let fill = opt_const(2)?.filter(|t| !t.is_empty()).map_or(0.0, |t| t.to_f64_vec()[0] as f32);
            f32_only(CopyStep::pad(&shape, &amounts, *mode, fill).map(|c| Kernel::Copy(vec![c])))
        }
        Op::Tile => {
            let reps = i64s(1)??;
            let reps: Option<Vec<usize>> = reps.iter().map(|&r| usize::try_from(r).ok()).collect();
            let reps = reps.filter(|r| r.len() == shape.len())?;
            f32_only(Some(Kernel::Copy(vec![CopyStep::tile(&shape, &reps)])))
        }
        Op::Gather { axis } => {
            let a = normalize_axis(*axis, shape.len())?;
            match konst(1)? {
                Some(idx) => f32_only(CopyStep::gather(&shape, a, &idx.to_i64_vec()).map(|c| Kernel::Copy(vec![c]))),
                None => {
                    let wide = match dtype(1)? {
                        DType::I64 => true,
                        DType::I32 => false,
                        _ => return None,
                    };
                    let count = g.value_type(input(1)?).concrete_shape()?.iter().product();
                    let prod = |d: &[usize]| d.iter().product::<usize>();
                    let step =
                        GatherStep { outer: prod(&shape[..a]), n: shape[a], inner: prod(&shape[a + 1..]), count, wide };
                    (dtype(0) == Some(DType::F32) && out_dtype == DType::F32).then_some(Kernel::Gather(step))
                }
            }
        }
        Op::Resize(r) => {
            let scales: Option<Vec<f32>> =
                opt_const(2)?.map(|t| t.to_f64_vec().into_iter().map(|v| v as f32).collect());
            let step = ResizeStep::new(r, &shape, scales.as_deref(), i64s(3)?.as_deref(), opt_const(1)?)?;
            // The interpreter's output shape must be the one the graph declares.
            let same = out(0)? == [&shape[..shape.len() - 2], &[step.rows.len(), step.cols.len()][..]].concat();
            f32_only(same.then_some(Kernel::Resize(step)))
        }
        Op::ConvTranspose(ct) => f32_only(DeconvStep::new(ct, &shape, konst(1)??, opt_const(2)?).map(Kernel::Deconv)),
        Op::Unary(u) => typed(TypedOp::Unary(*u), 1),
        Op::Binary(b) => typed(TypedOp::Binary(*b), 2),
        Op::Where => typed(TypedOp::Where, 3),
        Op::Cast { .. } | Op::CastLike => typed(TypedOp::Cast, 1),
        Op::Expand => typed(TypedOp::Copy, 1),
        Op::Input
        | Op::Constant(_)
        | Op::Variadic(_)
        | Op::Clip
        | Op::Conv(_)
        | Op::Gemm(_)
        | Op::MatMul
        | Op::BatchNorm { .. }
        | Op::LayerNorm { .. }
        | Op::Lrn(_)
        | Op::Pool(_)
        | Op::GlobalPool(_)
        | Op::Hardmax { .. }
        | Op::Concat { .. }
        | Op::GatherElements { .. }
        | Op::GatherNd { .. }
        | Op::Reshape { .. }
        | Op::Flatten { .. }
        | Op::Transpose { .. }
        | Op::Squeeze
        | Op::Unsqueeze
        | Op::Shape { .. }
        | Op::Size
        | Op::ConstantOfShape { .. }
        | Op::Range
        | Op::Dropout
        | Op::Identity
        | Op::If { .. }
        | Op::Loop(_)
        | Op::Scan(_)
        | Op::CumSum { .. }
        | Op::CumProd { .. }
        | Op::Compress { .. }
        | Op::TopK { .. }
        | Op::ScatterElements { .. }
        | Op::ScatterNd { .. }
        | Op::NonZero
        | Op::Recurrent(_) => None,
    };
    // Every output must have a static shape (and, for typed kernels, a supported dtype).
    let outputs_ok = (0..node.outputs.len()).all(|o| {
        let ty = g.value_type(ValueRef { node: id, output: o });
        ty.concrete_shape().is_some() && typed::supported(ty.dtype)
    });
    kernel.filter(|_| outputs_ok)
}
