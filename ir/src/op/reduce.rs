//! Reductions over axes (ReduceSum/Mean/Max/..., ArgMax/ArgMin) and the axis bookkeeping they share.

use super::infer::{InferCtx, InferError};
use crate::{DType, Dim, TensorType};

/// What a `Reduce*` op computes over its axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    Sum,
    Mean,
    Max,
    Min,
    Prod,
    L1,
    L2,
    LogSum,
    LogSumExp,
    SumSquare,
}

impl ReduceOp {
    pub const ALL: [ReduceOp; 10] = [
        ReduceOp::Sum,
        ReduceOp::Mean,
        ReduceOp::Max,
        ReduceOp::Min,
        ReduceOp::Prod,
        ReduceOp::L1,
        ReduceOp::L2,
        ReduceOp::LogSum,
        ReduceOp::LogSumExp,
        ReduceOp::SumSquare,
    ];

    pub fn onnx_name(&self) -> &'static str {
        match self {
            ReduceOp::Sum => "ReduceSum",
            ReduceOp::Mean => "ReduceMean",
            ReduceOp::Max => "ReduceMax",
            ReduceOp::Min => "ReduceMin",
            ReduceOp::Prod => "ReduceProd",
            ReduceOp::L1 => "ReduceL1",
            ReduceOp::L2 => "ReduceL2",
            ReduceOp::LogSum => "ReduceLogSum",
            ReduceOp::LogSumExp => "ReduceLogSumExp",
            ReduceOp::SumSquare => "ReduceSumSquare",
        }
    }

    pub fn from_onnx(name: &str) -> Option<ReduceOp> {
        ReduceOp::ALL.into_iter().find(|r| r.onnx_name() == name)
    }

    /// Reduces a sequence of values (as f64) to one.
    pub fn reduce(&self, values: impl Iterator<Item = f64>) -> f64 {
        let mut n = 0usize;
        let mut acc = match self {
            ReduceOp::Max => f64::NEG_INFINITY,
            ReduceOp::Min => f64::INFINITY,
            ReduceOp::Prod => 1.0,
            _ => 0.0,
        };
        let mut values: Vec<f64> = values.collect();
        if *self == ReduceOp::LogSumExp {
            let m = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            if m.is_finite() {
                values.iter_mut().for_each(|v| *v -= m);
                return values.iter().map(|v| v.exp()).sum::<f64>().ln() + m;
            }
            return values.iter().map(|v| v.exp()).sum::<f64>().ln();
        }
        for v in values {
            n += 1;
            acc = match self {
                ReduceOp::Sum | ReduceOp::Mean | ReduceOp::LogSum => acc + v,
                ReduceOp::Max => {
                    if v.is_nan() || acc.is_nan() {
                        f64::NAN
                    } else {
                        acc.max(v)
                    }
                }
                ReduceOp::Min => {
                    if v.is_nan() || acc.is_nan() {
                        f64::NAN
                    } else {
                        acc.min(v)
                    }
                }
                ReduceOp::Prod => acc * v,
                ReduceOp::L1 => acc + v.abs(),
                ReduceOp::L2 | ReduceOp::SumSquare => acc + v * v,
                ReduceOp::LogSumExp => unreachable!("handled above"),
            };
        }
        match self {
            ReduceOp::Mean => acc / n as f64,
            ReduceOp::L2 => acc.sqrt(),
            ReduceOp::LogSum => acc.ln(),
            _ => acc,
        }
    }
}

/// Which axes a reduction covers: `None` from the op means every axis (or none, when
/// `noop_with_empty_axes`). Returns sorted, normalized, de-duplicated axes.
pub fn reduce_axes(rank: usize, axes: Option<&[i64]>, noop_with_empty_axes: bool) -> Result<Vec<usize>, String> {
    match axes {
        None | Some([]) if noop_with_empty_axes => Ok(vec![]),
        None | Some([]) => Ok((0..rank).collect()),
        Some(a) => {
            let mut v = a
                .iter()
                .map(|&x| {
                    super::normalize_axis(x, rank).ok_or_else(|| format!("axis {x} out of range for rank {rank}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            v.sort_unstable();
            v.dedup();
            Ok(v)
        }
    }
}

/// The shape after reducing `axes`.
pub fn reduced_shape<D: Clone>(shape: &[D], axes: &[usize], keepdims: bool, one: D) -> Vec<D> {
    shape
        .iter()
        .enumerate()
        .filter_map(|(i, d)| match (axes.contains(&i), keepdims) {
            (true, true) => Some(one.clone()),
            (true, false) => None,
            (false, _) => Some(d.clone()),
        })
        .collect()
}

pub(crate) fn infer_reduce(
    cx: &InferCtx,
    op: ReduceOp,
    keepdims: bool,
    noop: bool,
) -> Result<Vec<TensorType>, InferError> {
    // Opset 20 defines ReduceMax/ReduceMin on bool (as any/all).
    let x = cx.expect_dtype(0, |d| d != DType::Bool || matches!(op, ReduceOp::Max | ReduceOp::Min))?;
    let axes = match (cx.opt_input(1), cx.const_i64(1)) {
        (None, _) => None,
        (Some(_), Some(a)) => Some(a),
        (Some(_), None) => {
            // Axes known only at run time: the rank is known from their count, the extents are not.
            let n = cx.runtime_len(1, "axes")?;
            let rank = match (keepdims, n, noop) {
                (true, _, _) | (false, 0, true) => x.rank(),
                (false, 0, false) => 0,
                (false, n, _) => x.rank().checked_sub(n).ok_or_else(|| cx.error(format!("{n} axes for {x}")))?,
            };
            return Ok(vec![TensorType { dtype: x.dtype, shape: cx.fresh_shape(rank, "reduced") }]);
        }
    };
    let axes = reduce_axes(x.rank(), axes.as_deref(), noop).map_err(|m| cx.error(m))?;
    Ok(vec![TensorType { dtype: x.dtype, shape: reduced_shape(&x.shape, &axes, keepdims, Dim::Known(1)) }])
}

pub(crate) fn infer_arg(cx: &InferCtx, axis: i64, keepdims: bool) -> Result<Vec<TensorType>, InferError> {
    let x = cx.expect_dtype(0, |d| d != DType::Bool)?;
    let a = cx.axis(axis, x.rank())?;
    Ok(vec![TensorType { dtype: DType::I64, shape: reduced_shape(&x.shape, &[a], keepdims, Dim::Known(1)) }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reductions() {
        let v = [1.0, -2.0, 3.0];
        assert_eq!(ReduceOp::Sum.reduce(v.into_iter()), 2.0);
        assert_eq!(ReduceOp::L1.reduce(v.into_iter()), 6.0);
        assert_eq!(ReduceOp::Max.reduce(v.into_iter()), 3.0);
        assert!(
            (ReduceOp::LogSumExp.reduce(v.into_iter()) - (1f64.exp() + (-2f64).exp() + 3f64.exp()).ln()).abs() < 1e-12
        );
        assert_eq!(reduce_axes(3, Some(&[-1, 0]), false).unwrap(), vec![0, 2]);
        assert_eq!(reduce_axes(3, None, true).unwrap(), Vec::<usize>::new());
        assert_eq!(reduced_shape(&[2, 3, 4], &[1], true, 1), vec![2, 1, 4]);
    }

    #[test]
    fn runtime_axes_give_known_rank() {
        use crate::{Graph, Op, TensorType};
        let mut g = Graph::new("t");
        let x = g.add_input("x", TensorType::known(DType::F32, &[2, 3, 4]));
        let axes = g.add_input("axes", TensorType::known(DType::I64, &[2]));
        let keep = Op::Reduce { op: ReduceOp::Sum, keepdims: true, noop_with_empty_axes: false };
        let drop = Op::Reduce { op: ReduceOp::Sum, keepdims: false, noop_with_empty_axes: false };
        assert_eq!(g.add("k", keep, &[x, axes]).map(|v| g.value_type(v).rank()), Ok(3));
        assert_eq!(g.add("d", drop, &[x, axes]).map(|v| g.value_type(v).rank()), Ok(1));
        assert_eq!(g.add("u", Op::Unsqueeze, &[x, axes]).map(|v| g.value_type(v).rank()), Ok(5));
        assert_eq!(g.add("s", Op::Squeeze, &[x, axes]).map(|v| g.value_type(v).rank()), Ok(1));
    }
}
