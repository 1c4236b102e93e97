//! The typed op set. Each variant is one ONNX operator (or a family sharing one semantics), with
//! its attributes as typed fields. Semantics are fixed at the newest opset; the importer maps
//! older opsets onto them (attributes that later became inputs arrive as constant inputs).
//!
//! Inputs are positional and match ONNX's; optional inputs may be absent. Shape and dtype rules
//! (which are also each op's validation) live beside the attributes in the family modules.

mod control;
mod elementwise;
mod indexing;
pub mod infer;
mod movement;
mod nn;
mod recurrent;
mod reduce;

pub use control::{Loop, Scan};
pub use elementwise::{erf, Binary, Unary, Variadic};
pub use indexing::ScatterReduction;
pub use infer::{broadcast_shapes, normalize_axis, InferCtx, InferError};
pub use movement::{
    pad_amounts, reshape_target, resolve_slice, shape_range, slice_plan, split_sizes, unsqueeze_axes, PadMode, Resize,
    ResizeCoord, ResizeMode, ResizeNearest, SliceAxis,
};
pub use nn::{AutoPad, Conv, ConvTranspose, Gemm, Geometry, Lrn, Pool, PoolKind, Window};
pub use recurrent::{slot as recurrent_slot, Activation, Cell, Direction, Recurrent};
pub use reduce::ReduceOp;
pub use reduce::{reduce_axes, reduced_shape};

use crate::{DType, Graph, Tensor, TensorType};

/// One operation of a [`Graph`].
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// A graph input; its type is the declared one.
    Input,
    /// A constant tensor (weights, folded values). Shared, never copied.
    Constant(Tensor),
    Unary(Unary),
    Binary(Binary),
    Variadic(Variadic),
    /// Inputs: x, min?, max? (scalars).
    Clip,
    Cast {
        to: DType,
    },
    /// Inputs: x, like; casts x to like's dtype.
    CastLike,
    /// Inputs: cond (bool), x, y; broadcasting select.
    Where,
    /// Inputs: x, w, b?
    Conv(Conv),
    /// Inputs: x, w, b?
    ConvTranspose(ConvTranspose),
    /// Inputs: a, b, c?
    Gemm(Gemm),
    /// Inputs: a, b (numpy matmul semantics, batched and broadcast).
    MatMul,
    /// Inference-mode batch norm. Inputs: x, scale, bias, mean, var.
    BatchNorm {
        epsilon: f32,
    },
    /// Inputs: x, scale, bias.
    InstanceNorm {
        epsilon: f32,
    },
    /// Inputs: x, scale, bias?; normalizes over axes `axis..rank`. Optional outputs: the mean and
    /// the inverse standard deviation (f32, the normalized axes kept as 1).
    LayerNorm {
        axis: i64,
        epsilon: f32,
    },
    Lrn(Lrn),
    /// MaxPool / AveragePool / LpPool over spatial windows.
    Pool(Pool),
    /// GlobalAveragePool / GlobalMaxPool: spatial dims reduced to 1.
    GlobalPool(PoolKind),
    /// `legacy`: opset < 13 semantics (flatten to 2-D at `axis`, normalize the tail).
    Softmax {
        axis: i64,
        legacy: bool,
    },
    LogSoftmax {
        axis: i64,
        legacy: bool,
    },
    Hardmax {
        axis: i64,
        legacy: bool,
    },
    /// Inputs: x, axes? (i64). No axes means all axes unless `noop_with_empty_axes`.
    Reduce {
        op: ReduceOp,
        keepdims: bool,
        noop_with_empty_axes: bool,
    },
    ArgMax {
        axis: i64,
        keepdims: bool,
        select_last_index: bool,
    },
    ArgMin {
        axis: i64,
        keepdims: bool,
        select_last_index: bool,
    },
    Concat {
        axis: i64,
    },
    /// Inputs: x, split? (i64 sizes). Without sizes, splits evenly into the node's output count.
    Split {
        axis: i64,
    },
    /// Inputs: data, starts, ends, axes?, steps?
    Slice,
    /// Inputs: data, indices.
    Gather {
        axis: i64,
    },
    /// Inputs: data, indices.
    GatherElements {
        axis: i64,
    },
    /// Inputs: data, indices.
    GatherNd {
        batch_dims: i64,
    },
    /// Inputs: data, shape (i64).
    Reshape {
        allowzero: bool,
    },
    Flatten {
        axis: i64,
    },
    /// `None`: reverse the axes.
    Transpose {
        perm: Option<Vec<usize>>,
    },
    /// Inputs: data, axes? (i64). No axes: every dim of extent 1.
    Squeeze,
    /// Inputs: data, axes (i64).
    Unsqueeze,
    /// Inputs: x, shape (i64).
    Expand,
    /// Inputs: x, repeats (i64).
    Tile,
    /// The input's shape as i64, dims `start..end`.
    Shape {
        start: i64,
        end: Option<i64>,
    },
    Size,
    /// Input: shape (i64). Output filled with `value` (a one-element tensor giving the dtype).
    ConstantOfShape {
        value: Tensor,
    },
    /// Inputs: start, limit, delta (scalars).
    Range,
    /// Inputs: data, pads (i64), constant_value?, axes?
    Pad {
        mode: PadMode,
    },
    /// Inputs: x, roi?, scales?, sizes?
    Resize(Resize),
    /// Inputs: data, ratio?, training_mode?; outputs: y, mask?. Identity at inference.
    Dropout,
    Identity,
    /// Input: cond, then every captured outer value in the order of both branches' inputs.
    If {
        then_branch: Box<Graph>,
        else_branch: Box<Graph>,
    },
    Loop(Loop),
    Scan(Scan),
    /// Inputs: x, axis (integer scalar). Running sum along `axis`; `exclusive` leaves out the
    /// element itself, `reverse` runs from the end. ONNX opsets 11, 14.
    CumSum {
        exclusive: bool,
        reverse: bool,
    },
    /// Inputs: x, axis (integer scalar). Running product, otherwise as [`Op::CumSum`]. Opset 26.
    CumProd {
        exclusive: bool,
        reverse: bool,
    },
    /// Inputs: x, condition (1-D bool). Keeps the slices along `axis` whose condition is true
    /// (a shorter condition counts as false past its end); `None` flattens x first. Opsets 9, 11.
    Compress {
        axis: Option<i64>,
    },
    /// Inputs: x, k (1-element i64; an attribute before opset 10). Outputs: the k largest
    /// (`largest`) or smallest values along `axis` and their i64 indices; ties go to the lower
    /// index. Results are always sorted (`sorted == false` leaves the order unspecified).
    TopK {
        axis: i64,
        largest: bool,
        sorted: bool,
    },
    /// Inputs: data, indices, updates. `out = data` with `out[i with axis coord indices[i]] =
    /// updates[i]`, combined per `reduction`. Also legacy `Scatter` (opsets 9-10). Opsets 11-18.
    ScatterElements {
        axis: i64,
        reduction: ScatterReduction,
    },
    /// Inputs: data, indices (i64), updates. Each index tuple (last dim of indices) selects a
    /// slice of data that takes the matching slice of updates. Opsets 11-18.
    ScatterNd {
        reduction: ScatterReduction,
    },
    /// Input: x. The i64 coordinates of its non-zero elements, `[rank, count]`. Opsets 9, 13.
    NonZero,
    /// LSTM, GRU and RNN layers. Inputs: X, W, R, B?, sequence_lens?, initial_h?, initial_c?, P?;
    /// outputs: Y?, Y_h?, Y_c? (the last and the cell-state inputs for LSTM only).
    Recurrent(Recurrent),
}

impl Op {
    /// The ONNX operator type this op exports as.
    pub fn onnx_name(&self) -> &'static str {
        match self {
            Op::Input => "Input",
            Op::Constant(_) => "Constant",
            Op::Unary(u) => u.onnx_name(),
            Op::Binary(b) => b.onnx_name(),
            Op::Variadic(v) => v.onnx_name(),
            Op::Clip => "Clip",
            Op::Cast { .. } => "Cast",
            Op::CastLike => "CastLike",
            Op::Where => "Where",
            Op::Conv(_) => "Conv",
            Op::ConvTranspose(_) => "ConvTranspose",
            Op::Gemm(_) => "Gemm",
            Op::MatMul => "MatMul",
            Op::BatchNorm { .. } => "BatchNormalization",
            Op::InstanceNorm { .. } => "InstanceNormalization",
            Op::LayerNorm { .. } => "LayerNormalization",
            Op::Lrn(_) => "LRN",
            Op::Pool(p) => p.kind.onnx_name(),
            Op::GlobalPool(PoolKind::Max) => "GlobalMaxPool",
            Op::GlobalPool(PoolKind::Lp { .. }) => "GlobalLpPool",
            Op::GlobalPool(PoolKind::Average { .. }) => "GlobalAveragePool",
            Op::Softmax { .. } => "Softmax",
            Op::LogSoftmax { .. } => "LogSoftmax",
            Op::Hardmax { .. } => "Hardmax",
            Op::Reduce { op, .. } => op.onnx_name(),
            Op::ArgMax { .. } => "ArgMax",
            Op::ArgMin { .. } => "ArgMin",
            Op::Concat { .. } => "Concat",
            Op::Split { .. } => "Split",
            Op::Slice => "Slice",
            Op::Gather { .. } => "Gather",
            Op::GatherElements { .. } => "GatherElements",
            Op::GatherNd { .. } => "GatherND",
            Op::Reshape { .. } => "Reshape",
            Op::Flatten { .. } => "Flatten",
            Op::Transpose { .. } => "Transpose",
            Op::Squeeze => "Squeeze",
            Op::Unsqueeze => "Unsqueeze",
            Op::Expand => "Expand",
            Op::Tile => "Tile",
            Op::Shape { .. } => "Shape",
            Op::Size => "Size",
            Op::ConstantOfShape { .. } => "ConstantOfShape",
            Op::Range => "Range",
            Op::Pad { .. } => "Pad",
            Op::Resize(_) => "Resize",
            Op::Dropout => "Dropout",
            Op::Identity => "Identity",
            Op::If { .. } => "If",
            Op::Loop(_) => "Loop",
            Op::Scan(_) => "Scan",
            Op::CumSum { .. } => "CumSum",
            Op::CumProd { .. } => "CumProd",
            Op::Compress { .. } => "Compress",
            Op::TopK { .. } => "TopK",
            Op::ScatterElements { .. } => "ScatterElements",
            Op::ScatterNd { .. } => "ScatterND",
            Op::NonZero => "NonZero",
            Op::Recurrent(r) => r.cell.onnx_name(),
        }
    }

    /// Output types from input types (and constant input values, where known). This is also the
    /// op's validation: an error means the node is malformed.
    pub fn infer(&self, cx: &InferCtx) -> Result<Vec<TensorType>, InferError> {
        let types = self.infer_types(cx)?;
        for t in &types {
            cx.check_rank(t.rank(), "an output")?;
        }
        Ok(types)
    }

    /// The op's own shape/dtype rule (see [`Op::infer`]).
    fn infer_types(&self, cx: &InferCtx) -> Result<Vec<TensorType>, InferError> {
        match self {
            Op::Input => Err(cx.error("graph inputs carry declared types; nothing to infer".into())),
            Op::Constant(t) => Ok(vec![t.tensor_type()]),
            Op::Unary(u) => u.infer(cx),
            Op::Binary(b) => b.infer(cx),
            Op::Variadic(v) => v.infer(cx),
            Op::Clip => movement::infer_same_as_first(cx, |d| d != DType::Bool),
            Op::Cast { to } => {
                let x = cx.input(0)?;
                Ok(vec![TensorType { dtype: *to, shape: x.shape.clone() }])
            }
            Op::CastLike => {
                let (x, like) = (cx.input(0)?, cx.input(1)?);
                Ok(vec![TensorType { dtype: like.dtype, shape: x.shape.clone() }])
            }
            Op::Where => movement::infer_where(cx),
            Op::Conv(c) => c.infer(cx),
            Op::ConvTranspose(c) => c.infer(cx),
            Op::Gemm(g) => g.infer(cx),
            Op::MatMul => nn::infer_matmul(cx),
            Op::BatchNorm { .. } => nn::infer_channel_norm(cx, 4),
            Op::InstanceNorm { .. } => nn::infer_channel_norm(cx, 2),
            Op::LayerNorm { axis, .. } => nn::infer_layer_norm(cx, *axis),
            Op::Lrn(_) => movement::infer_same_as_first(cx, DType::is_float),
            Op::Pool(p) => p.infer(cx),
            Op::GlobalPool(_) => nn::infer_global_pool(cx),
            Op::Softmax { axis, .. } | Op::LogSoftmax { axis, .. } | Op::Hardmax { axis, .. } => {
                let x = cx.expect_dtype(0, DType::is_float)?;
                cx.axis(*axis, x.rank())?;
                Ok(vec![x.clone()])
            }
            Op::Reduce { op, keepdims, noop_with_empty_axes } => {
                reduce::infer_reduce(cx, *op, *keepdims, *noop_with_empty_axes)
            }
            Op::ArgMax { axis, keepdims, .. } | Op::ArgMin { axis, keepdims, .. } => {
                reduce::infer_arg(cx, *axis, *keepdims)
            }
            Op::Concat { axis } => movement::infer_concat(cx, *axis),
            Op::Split { axis } => movement::infer_split(cx, *axis),
            Op::Slice => movement::infer_slice(cx),
            Op::Gather { axis } => movement::infer_gather(cx, *axis),
            Op::GatherElements { axis } => {
                let (x, idx) = (cx.input(0)?, cx.expect_dtype(1, DType::is_int)?);
                cx.axis(*axis, x.rank())?;
                Ok(vec![TensorType { dtype: x.dtype, shape: idx.shape.clone() }])
            }
            Op::GatherNd { batch_dims } => movement::infer_gather_nd(cx, *batch_dims),
            Op::Reshape { allowzero } => movement::infer_reshape(cx, *allowzero),
            Op::Flatten { axis } => movement::infer_flatten(cx, *axis),
            Op::Transpose { perm } => movement::infer_transpose(cx, perm.as_deref()),
            Op::Squeeze => movement::infer_squeeze(cx),
            Op::Unsqueeze => movement::infer_unsqueeze(cx),
            Op::Expand => movement::infer_expand(cx),
            Op::Tile => movement::infer_tile(cx),
            Op::Shape { start, end } => movement::infer_shape(cx, *start, *end),
            Op::Size => {
                cx.input(0)?;
                Ok(vec![TensorType::scalar(DType::I64)])
            }
            Op::ConstantOfShape { value } => movement::infer_constant_of_shape(cx, value),
            Op::Range => movement::infer_range(cx),
            Op::Pad { .. } => movement::infer_pad(cx),
            Op::Resize(r) => r.infer(cx),
            Op::Dropout => {
                let x = cx.input(0)?;
                let mut out = vec![x.clone()];
                if cx.num_outputs > 1 {
                    out.push(TensorType { dtype: DType::Bool, shape: x.shape.clone() });
                }
                Ok(out)
            }
            Op::Identity => Ok(vec![cx.input(0)?.clone()]),
            Op::If { then_branch, else_branch } => control::infer_if(cx, then_branch, else_branch),
            Op::Loop(l) => l.infer(cx),
            Op::Scan(s) => s.infer(cx),
            Op::CumSum { .. } | Op::CumProd { .. } => indexing::infer_cumulative(cx),
            Op::Compress { axis } => indexing::infer_compress(cx, *axis),
            Op::TopK { axis, .. } => indexing::infer_top_k(cx, *axis),
            Op::ScatterElements { axis, .. } => indexing::infer_scatter_elements(cx, *axis),
            Op::ScatterNd { .. } => indexing::infer_scatter_nd(cx),
            Op::NonZero => indexing::infer_non_zero(cx),
            Op::Recurrent(r) => r.infer(cx),
        }
    }

    /// Nested graphs this op owns (If branches, Loop/Scan bodies).
    pub fn subgraphs(&self) -> Vec<&Graph> {
        match self {
            Op::If { then_branch, else_branch } => vec![then_branch, else_branch],
            Op::Loop(l) => vec![&l.body],
            Op::Scan(s) => vec![&s.body],
            _ => vec![],
        }
    }

    /// Mutable access to nested graphs.
    pub fn subgraphs_mut(&mut self) -> Vec<&mut Graph> {
        match self {
            Op::If { then_branch, else_branch } => vec![then_branch, else_branch],
            Op::Loop(l) => vec![&mut l.body],
            Op::Scan(s) => vec![&mut s.body],
            _ => vec![],
        }
    }

    /// Ops whose result depends on nothing but their inputs (safe to fold when inputs are constant).
    pub fn is_pure(&self) -> bool {
        !matches!(self, Op::Input)
    }
}
