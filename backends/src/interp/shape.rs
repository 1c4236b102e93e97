//! Ops that read or build shapes: Shape, Size, ConstantOfShape and Range.

use super::kernel::{alloc, bail, input, show, KResult};
use kiln_ir::op::shape_range;
use kiln_ir::{with_array, DType, Element, Tensor};
use ndarray::{ArrayD, IxDyn};

/// The input's dims `start..end` as an i64 vector.
pub(crate) fn shape_of(start: i64, end: Option<i64>, x: &Tensor) -> Tensor {
    let dims: Vec<i64> = x.shape()[shape_range(x.rank(), start, end)].iter().map(|&d| d as i64).collect();
    Tensor::vector(dims)
}

/// ConstantOfShape(shape): filled with the one element of `value`.
pub(crate) fn constant_of_shape(value: &Tensor, ins: &[Option<Tensor>]) -> KResult<Tensor> {
    let dims = input(ins, 0)?.to_i64_vec();
    if dims.iter().any(|&d| d < 0) {
        bail!("shape {dims:?} has a negative dim");
    }
    let dims: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
    alloc(value.dtype(), &dims)?;
    if value.len() != 1 {
        bail!("value {} must hold exactly one element", show(value.shape()));
    }
    fn fill<T: Element>(v: T, dims: &[usize]) -> Tensor {
        Tensor::from_array(ArrayD::from_elem(IxDyn(dims), v))
    }
    Ok(with_array!(value, a => fill(*a.iter().next().expect("one element"), &dims)))
}

/// Range(start, limit, delta): `max(ceil((limit - start) / delta), 0)` elements `start + i * delta`.
pub(crate) fn range(ins: &[Option<Tensor>]) -> KResult<Tensor> {
    let [s, l, d] = [0, 1, 2].map(|i| input(ins, i));
    let (s, l, d) = (s?, l?, d?);
    let dtype = s.dtype();
    if [s, l, d].iter().any(|t| t.len() != 1 || t.dtype() != dtype) {
        bail!("start, limit and delta must be one-element tensors of one dtype");
    }
    if dtype.is_float() {
        let (s, l, d) = (s.to_f64_vec()[0], l.to_f64_vec()[0], d.to_f64_vec()[0]);
        if d == 0.0 || !d.is_finite() || !s.is_finite() || !l.is_finite() {
            bail!("Range needs finite start, limit and a non-zero finite delta");
        }
        let n = ((l - s) / d).ceil().max(0.0);
        let n = count(n, dtype)?;
        return Ok(Tensor::from_vec(&[n], (0..n).map(|i| s + i as f64 * d).collect::<Vec<f64>>())?.cast(dtype));
    }
    let (s, l, d) = (s.to_i64_vec()[0], l.to_i64_vec()[0], d.to_i64_vec()[0]);
    if d == 0 {
        bail!("Range delta must not be 0");
    }
    let (diff, step) = (l as i128 - s as i128, d as i128);
    let n = if diff.signum() == step.signum() { (diff.abs() + step.abs() - 1) / step.abs() } else { 0 };
    let n = count(n as f64, dtype)?;
    Ok(Tensor::from_vec(&[n], (0..n as i64).map(|i| s.wrapping_add(i.wrapping_mul(d))).collect::<Vec<i64>>())?
        .cast(dtype))
}

/// An element count, refusing absurd ones before allocating.
fn count(n: f64, dtype: DType) -> KResult<usize> {
    if n > (u64::MAX >> 1) as f64 {
        bail!("Range would produce {n} elements");
    }
    let n = n as usize;
    alloc(dtype, &[n])?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s<T: Element>(v: T) -> Option<Tensor> {
        Some(Tensor::scalar(v))
    }

    #[test]
    fn shape_and_constants() {
        let x = Tensor::zeros(DType::F32, &[2, 3, 4]).unwrap();
        assert_eq!(shape_of(1, None, &x).to_i64_vec(), vec![3, 4]);
        assert_eq!(shape_of(-3, Some(-1), &x).to_i64_vec(), vec![2, 3]);
        let c = constant_of_shape(&Tensor::vector(vec![7i32]), &[Some(Tensor::vector(vec![2i64, 2]))]).unwrap();
        assert_eq!((c.dtype(), c.to_i64_vec()), (DType::I32, vec![7; 4]));
        assert!(
            constant_of_shape(&Tensor::vector(vec![0f32]), &[Some(Tensor::vector(vec![1i64 << 40, 1 << 40]))]).is_err()
        );
    }

    #[test]
    fn ranges() {
        assert_eq!(range(&[s(1i64), s(10i64), s(3i64)]).unwrap().to_i64_vec(), vec![1, 4, 7]);
        assert_eq!(range(&[s(10i32), s(1i32), s(-4i32)]).unwrap().to_i64_vec(), vec![10, 6, 2]);
        assert_eq!(range(&[s(0i64), s(5i64), s(-1i64)]).unwrap().len(), 0);
        assert_eq!(range(&[s(0.0f32), s(1.0f32), s(0.25f32)]).unwrap().to_vec::<f32>(), vec![0.0, 0.25, 0.5, 0.75]);
        assert!(range(&[s(0i64), s(5i64), s(0i64)]).is_err());
        assert!(range(&[s(0i64), s(i64::MAX), s(1i64)]).is_err());
    }
}
