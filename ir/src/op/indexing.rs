//! Indexing and selection ops: running sums and products (CumSum, CumProd), Compress, TopK, the scatter family (ScatterElements,
//! legacy Scatter, ScatterND) and NonZero. Their shape/dtype rules live here; indices out of
//! range are run-time errors in the kernels.

use super::infer::{InferCtx, InferError};
use crate::{DType, Dim, TensorType};

/// How a scatter combines an update with the value already in place (`none`: overwrite).
/// ONNX: `add`/`mul` since opset 16, `max`/`min` since 18.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScatterReduction {
    None,
    Add,
    Mul,
    Max,
    Min,
}

impl ScatterReduction {
    pub const ALL: [ScatterReduction; 5] = [
        ScatterReduction::None,
        ScatterReduction::Add,
        ScatterReduction::Mul,
        ScatterReduction::Max,
        ScatterReduction::Min,
    ];

    pub fn onnx_name(self) -> &'static str {
        match self {
            ScatterReduction::None => "none",
            ScatterReduction::Add => "add",
            ScatterReduction::Mul => "mul",
            ScatterReduction::Max => "max",
            ScatterReduction::Min => "min",
        }
    }

    pub fn from_onnx(name: &str) -> Option<ScatterReduction> {
        Self::ALL.into_iter().find(|r| r.onnx_name() == name)
    }

    /// The combined value for floats.
    pub fn combine_f64(self, old: f64, new: f64) -> f64 {
        match self {
            ScatterReduction::None => new,
            ScatterReduction::Add => old + new,
            ScatterReduction::Mul => old * new,
            ScatterReduction::Max => old.max(new),
            ScatterReduction::Min => old.min(new),
        }
    }

    /// The combined value for integers (wrapping, as two's-complement hardware does).
    pub fn combine_i64(self, old: i64, new: i64) -> i64 {
        match self {
            ScatterReduction::None => new,
            ScatterReduction::Add => old.wrapping_add(new),
            ScatterReduction::Mul => old.wrapping_mul(new),
            ScatterReduction::Max => old.max(new),
            ScatterReduction::Min => old.min(new),
        }
    }
}

/// CumSum / CumProd: inputs x, axis (integer scalar or 1-element tensor). Output: x's type.
pub(super) fn infer_cumulative(cx: &InferCtx) -> Result<Vec<TensorType>, InferError> {
    let x = cx.expect_dtype(0, |d| d != DType::Bool)?;
    let axis = cx.expect_dtype(1, DType::is_int)?;
    if axis.rank() > 1 {
        return Err(cx.error(format!("axis must be a scalar, got {axis}")));
    }
    if let Some(a) = cx.const_i64(1) {
        match a.as_slice() {
            [a] => {
                cx.axis(*a, x.rank())?;
            }
            _ => return Err(cx.error(format!("axis must hold one value, got {a:?}"))),
        }
    }
    Ok(vec![x.clone()])
}

/// TopK: inputs x, k (1-element i64). Outputs: values (x's dtype), indices (i64), both x's shape
/// with `axis` replaced by k.
pub(super) fn infer_top_k(cx: &InferCtx, axis: i64) -> Result<Vec<TensorType>, InferError> {
    let x = cx.expect_dtype(0, |d| d != DType::Bool)?;
    cx.expect_dtype(1, DType::is_int)?;
    let a = cx.axis(axis, x.rank())?;
    let k = match cx.const_i64(1).as_deref() {
        Some(&[k]) => {
            let k = usize::try_from(k).map_err(|_| cx.error(format!("k must be non-negative, got {k}")))?;
            if matches!(x.shape[a], Dim::Known(n) if k > n) {
                return Err(cx.error(format!("k = {k} exceeds axis {a} of {x}")));
            }
            Dim::Known(k)
        }
        Some(k) => return Err(cx.error(format!("k must hold one value, got {k:?}"))),
        None => cx.fresh("k"),
    };
    let mut shape = x.shape.clone();
    shape[a] = k;
    Ok(vec![TensorType { dtype: x.dtype, shape: shape.clone() }, TensorType { dtype: DType::I64, shape }])
}

/// ScatterElements: inputs data, indices (int, data's rank), updates (indices' shape, data's dtype).
pub(super) fn infer_scatter_elements(cx: &InferCtx, axis: i64) -> Result<Vec<TensorType>, InferError> {
    let (data, idx, upd) = (cx.input(0)?, cx.expect_dtype(1, DType::is_int)?, cx.input(2)?);
    cx.axis(axis, data.rank())?;
    if idx.rank() != data.rank() || upd.rank() != idx.rank() {
        return Err(cx.error(format!("data {data}, indices {idx} and updates {upd} must share one rank")));
    }
    if upd.dtype != data.dtype {
        return Err(cx.bad_dtype(2, upd.dtype));
    }
    Ok(vec![data.clone()])
}

/// ScatterND: inputs data, indices (i64, last dim q ≤ rank(data)), updates
/// (`indices.shape[..-1] ++ data.shape[q..]`, data's dtype).
pub(super) fn infer_scatter_nd(cx: &InferCtx) -> Result<Vec<TensorType>, InferError> {
    let (data, idx, upd) = (cx.input(0)?, cx.expect_dtype(1, |d| d == DType::I64)?, cx.input(2)?);
    if upd.dtype != data.dtype {
        return Err(cx.bad_dtype(2, upd.dtype));
    }
    let Some(last) = idx.shape.last() else { return Err(cx.error("indices must have rank at least 1".into())) };
    if let Dim::Known(q) = last {
        if *q > data.rank() || upd.rank() != idx.rank() - 1 + data.rank() - q {
            return Err(cx.error(format!("indices {idx} and updates {upd} do not fit data {data}")));
        }
    }
    Ok(vec![data.clone()])
}

/// Compress: inputs x, condition (1-D bool). The kept extent is data-dependent.
pub(super) fn infer_compress(cx: &InferCtx, axis: Option<i64>) -> Result<Vec<TensorType>, InferError> {
    let x = cx.input(0)?;
    cx.expect_dtype(1, |d| d == DType::Bool)?;
    cx.expect_rank(1, 1)?;
    let shape = match axis {
        Some(a) => {
            let a = cx.axis(a, x.rank())?;
            let mut shape = x.shape.clone();
            shape[a] = cx.fresh("kept");
            shape
        }
        None => vec![cx.fresh("kept")],
    };
    Ok(vec![TensorType { dtype: x.dtype, shape }])
}

/// NonZero: the i64 coordinates of non-zero elements, shape `[rank, count]` (count data-dependent).
pub(super) fn infer_non_zero(cx: &InferCtx) -> Result<Vec<TensorType>, InferError> {
    let x = cx.input(0)?;
    Ok(vec![TensorType { dtype: DType::I64, shape: vec![Dim::Known(x.rank()), cx.fresh("nonzero")] }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::Op;
    use crate::Tensor;

    fn ty(dtype: DType, dims: &[usize]) -> Option<TensorType> {
        Some(TensorType { dtype, shape: dims.iter().map(|&d| Dim::Known(d)).collect() })
    }

    fn infer(op: &Op, inputs: &[Option<TensorType>], consts: &[Option<Tensor>]) -> Result<Vec<TensorType>, InferError> {
        op.infer(&InferCtx { node: "n", op: op.onnx_name(), inputs, consts, num_outputs: 2 })
    }

    #[test]
    fn top_k_shapes() {
        let op = Op::TopK { axis: -1, largest: true, sorted: true };
        let ins = [ty(DType::F32, &[3, 4]), ty(DType::I64, &[1])];
        let out = infer(&op, &ins, &[None, Some(Tensor::vector(vec![2i64]))]).unwrap();
        assert_eq!(out, vec![ty(DType::F32, &[3, 2]).unwrap(), ty(DType::I64, &[3, 2]).unwrap()]);
        assert!(infer(&op, &ins, &[None, Some(Tensor::vector(vec![5i64]))]).is_err());
    }

    #[test]
    fn scatter_and_cumsum_validation() {
        let op = Op::ScatterNd { reduction: ScatterReduction::Add };
        let ok = [ty(DType::F32, &[4, 3]), ty(DType::I64, &[2, 1]), ty(DType::F32, &[2, 3])];
        assert_eq!(infer(&op, &ok, &[]).unwrap(), vec![ty(DType::F32, &[4, 3]).unwrap()]);
        let bad = [ty(DType::F32, &[4, 3]), ty(DType::I64, &[2, 1]), ty(DType::F32, &[2])];
        assert!(infer(&op, &bad, &[]).is_err());
        let cs = Op::CumSum { exclusive: false, reverse: false };
        let ins = [ty(DType::F32, &[4]), ty(DType::I32, &[])];
        assert!(infer(&cs, &ins, &[None, Some(Tensor::scalar(1i32))]).is_err());
        assert!(infer(&cs, &ins, &[None, Some(Tensor::scalar(-1i32))]).is_ok());
    }
}
