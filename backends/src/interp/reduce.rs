//! Reductions over axes (ReduceSum/Mean/Max/Min/Prod/L1/L2/LogSum/LogSumExp/SumSquare) through
//! the IR's `ReduceOp::reduce`, and ArgMax/ArgMin.

use super::kernel::{alloc, axis, opt_i64s, KResult};
use kiln_ir::op::{reduce_axes, reduced_shape, ReduceOp};
use kiln_ir::{DType, Tensor};
use ndarray::{ArrayD, IxDyn};

/// The input as f64, with the `reduced` axes moved last (kept axes first, order preserved),
/// in row-major order.
fn grouped(x: &Tensor, reduced: &[usize]) -> Vec<f64> {
    let a = ArrayD::from_shape_vec(IxDyn(x.shape()), x.to_f64_vec()).expect("shape matches data");
    let perm: Vec<usize> = (0..x.rank()).filter(|d| !reduced.contains(d)).chain(reduced.iter().copied()).collect();
    a.permuted_axes(IxDyn(&perm)).iter().copied().collect()
}

/// A `Reduce*` op; axes come from input 1 when present.
pub(crate) fn reduce(op: ReduceOp, keepdims: bool, noop: bool, ins: &[Option<kiln_ir::Tensor>]) -> KResult<Tensor> {
    let x = super::kernel::input(ins, 0)?;
    let axes = reduce_axes(x.rank(), opt_i64s(ins, 1).as_deref(), noop)?;
    let shape = reduced_shape(x.shape(), &axes, keepdims, 1);
    alloc(DType::F64, &shape)?;
    let group: usize = axes.iter().map(|&a| x.shape()[a]).product();
    let outputs: usize = shape.iter().product();
    let data = grouped(x, &axes);
    // Bool reductions live in [0, 1]: an empty ReduceMax is false (not -inf, which casts to true).
    let range = if x.dtype() == DType::Bool { (0.0, 1.0) } else { (f64::NEG_INFINITY, f64::INFINITY) };
    let values: Vec<f64> =
        (0..outputs).map(|i| op.reduce(data[i * group..][..group].iter().copied()).clamp(range.0, range.1)).collect();
    Ok(Tensor::from_vec(&shape, values)?.cast(x.dtype()))
}

/// ArgMax (`max == true`) or ArgMin along one axis, as i64 indices.
pub(crate) fn arg(max: bool, ax: i64, keepdims: bool, select_last: bool, x: &Tensor) -> KResult<Tensor> {
    let a = axis(ax, x.rank())?;
    let len = x.shape()[a];
    let shape = reduced_shape(x.shape(), &[a], keepdims, 1);
    if len == 0 {
        super::kernel::bail!("cannot take Arg{} over an empty axis", if max { "Max" } else { "Min" });
    }
    let data = grouped(x, &[a]);
    let better = |v: f64, best: f64| (if max { v > best } else { v < best }) || (select_last && v == best);
    let values: Vec<i64> = data
        .chunks_exact(len)
        .map(|row| {
            let mut bi = 0;
            for (i, &v) in row.iter().enumerate().skip(1) {
                if better(v, row[bi]) {
                    bi = i;
                }
            }
            bi as i64
        })
        .collect();
    Ok(Tensor::from_vec(&shape, values)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x() -> Tensor {
        Tensor::from_vec(&[2, 3], vec![1.0f32, 5.0, 3.0, 4.0, 2.0, 6.0]).unwrap()
    }

    #[test]
    fn reductions_over_axes() {
        let axes = |v: Vec<i64>| Some(Tensor::vector(v));
        let sum0 = reduce(ReduceOp::Sum, false, false, &[Some(x()), axes(vec![0])]).unwrap();
        assert_eq!((sum0.shape(), sum0.to_vec::<f32>()), (&[3][..], vec![5., 7., 9.]));
        let mean1 = reduce(ReduceOp::Mean, true, false, &[Some(x()), axes(vec![-1])]).unwrap();
        assert_eq!((mean1.shape(), mean1.to_vec::<f32>()), (&[2, 1][..], vec![3., 4.]));
        let max_all = reduce(ReduceOp::Max, false, false, &[Some(x()), None]).unwrap();
        assert_eq!((max_all.shape(), max_all.to_vec::<f32>()), (&[][..], vec![6.]));
        let l2 = reduce(ReduceOp::L2, false, false, &[Some(Tensor::vector(vec![3.0f32, 4.0])), None]).unwrap();
        assert_eq!(l2.to_vec::<f32>(), vec![5.0]);
        let empty = Tensor::from_vec(&[2, 0], Vec::<bool>::new()).unwrap();
        let any = reduce(ReduceOp::Max, false, false, &[Some(empty.clone()), axes(vec![1])]).unwrap();
        let all = reduce(ReduceOp::Min, false, false, &[Some(empty), axes(vec![1])]).unwrap();
        assert_eq!((any.to_i64_vec(), all.to_i64_vec()), (vec![0, 0], vec![1, 1]));
        let noop = reduce(ReduceOp::Sum, true, true, &[Some(x()), None]).unwrap();
        assert_eq!(noop, x());
    }

    #[test]
    fn argmax_argmin() {
        assert_eq!(arg(true, 1, false, false, &x()).unwrap().to_i64_vec(), vec![1, 2]);
        assert_eq!(arg(false, 0, true, false, &x()).unwrap().shape(), &[1, 3]);
        assert_eq!(arg(false, 0, true, false, &x()).unwrap().to_i64_vec(), vec![0, 1, 0]);
        let ties = Tensor::vector(vec![2i64, 7, 7]);
        assert_eq!(arg(true, 0, false, false, &ties).unwrap().to_i64_vec(), vec![1]);
        assert_eq!(arg(true, 0, false, true, &ties).unwrap().to_i64_vec(), vec![2]);
    }
}
