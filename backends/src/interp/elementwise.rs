//! Elementwise kernels: unary maps, broadcasting binary ops (f32 fast paths, every other dtype
//! through the IR's scalar semantics), variadic Sum/Max/Min/Mean, Clip, Where and Dropout.

use super::kernel::{alloc, bail, input, opt_input, show, typed, KResult};
use kiln_ir::op::{broadcast_shapes, Binary, Unary, Variadic};
use kiln_ir::{map_array, with_array, ArcArrayD, DType, Element, Tensor};
use ndarray::{ArrayD, IxDyn, Zip};

/// Numpy broadcasting of two arrays through `f`.
pub(crate) fn broadcast_map<A: Element, B: Element, U: Element>(
    a: &ArcArrayD<A>,
    b: &ArcArrayD<B>,
    f: impl Fn(A, B) -> U,
) -> KResult<ArrayD<U>> {
    if a.shape() == b.shape() {
        return Ok(Zip::from(a).and(b).map_collect(|&x, &y| f(x, y)));
    }
    let Some(shape) = broadcast_shapes(&[a.shape(), b.shape()]) else {
        bail!("shapes {} and {} cannot be broadcast together", show(a.shape()), show(b.shape()));
    };
    alloc(U::DTYPE, &shape)?;
    let (av, bv) = (broadcast_view(a, &shape), broadcast_view(b, &shape));
    Ok(Zip::from(&av).and(&bv).map_collect(|&x, &y| f(x, y)))
}

/// A view of `a` broadcast to `shape`, which must be a broadcast of `a`'s shape.
fn broadcast_view<'a, T>(a: &'a ArcArrayD<T>, shape: &[usize]) -> ndarray::ArrayViewD<'a, T> {
    a.broadcast(IxDyn(shape)).expect("shape is a broadcast of the operand")
}

/// A unary map; the op's dtype rule was checked when the graph was built.
pub(crate) fn unary(op: Unary, x: &Tensor) -> Tensor {
    fn go<T: Element>(op: Unary, a: &ArcArrayD<T>) -> ArcArrayD<T> {
        if T::DTYPE.is_float() {
            a.mapv(|v| T::from_f64(op.eval_f64(v.to_f64()))).into_shared()
        } else {
            a.mapv(|v| T::from_i64(op.eval_i64(v.to_i64()))).into_shared()
        }
    }
    match (op, x) {
        (Unary::Relu, Tensor::F32(a)) => Tensor::F32(a.mapv(|v| v.max(0.0)).into_shared()),
        _ => map_array!(x, a => go(op, a)),
    }
}

/// A broadcasting binary op. Pow alone may take an exponent of another dtype; it is then
/// computed in f64 and cast back to the base's dtype.
pub(crate) fn binary(op: Binary, a: &Tensor, b: &Tensor) -> KResult<Tensor> {
    if a.dtype() != b.dtype() {
        if op != Binary::Pow {
            bail!("input dtypes differ: {} vs {}", a.dtype(), b.dtype());
        }
        return Ok(binary(op, &a.cast(DType::F64), &b.cast(DType::F64))?.cast(a.dtype()));
    }
    macro_rules! fast {
        ($x:expr, $y:expr, $f:expr) => {
            Ok(Tensor::from_array(broadcast_map($x, $y, $f)?))
        };
    }
    match (op, a, b) {
        (Binary::Add, Tensor::F32(x), Tensor::F32(y)) => fast!(x, y, |p: f32, q: f32| p + q),
        (Binary::Sub, Tensor::F32(x), Tensor::F32(y)) => fast!(x, y, |p: f32, q: f32| p - q),
        (Binary::Mul, Tensor::F32(x), Tensor::F32(y)) => fast!(x, y, |p: f32, q: f32| p * q),
        (Binary::Div, Tensor::F32(x), Tensor::F32(y)) => fast!(x, y, |p: f32, q: f32| p / q),
        _ => with_array!(a, x => binary_typed(op, x, typed(b, "input 1")?)),
    }
}

/// Any binary op on any dtype via the IR's scalar semantics (f64 for floats, i64 otherwise).
fn binary_typed<T: Element>(op: Binary, x: &ArcArrayD<T>, y: &ArcArrayD<T>) -> KResult<Tensor> {
    let float = T::DTYPE.is_float();
    let scalar = move |p: T, q: T| {
        if float {
            op.eval_f64(p.to_f64(), q.to_f64())
        } else {
            op.eval_i64(p.to_i64(), q.to_i64()) as f64
        }
    };
    if op.is_comparison() {
        return Ok(Tensor::from_array(broadcast_map(x, y, move |p, q| scalar(p, q) != 0.0)?));
    }
    if matches!(op, Binary::BitShiftLeft | Binary::BitShiftRight) {
        return Ok(Tensor::from_array(broadcast_map(x, y, move |p: T, q: T| shift(op, p, q))?));
    }
    let out = if float {
        broadcast_map(x, y, move |p: T, q: T| T::from_f64(op.eval_f64(p.to_f64(), q.to_f64())))?
    } else {
        broadcast_map(x, y, move |p: T, q: T| T::from_i64(op.eval_i64(p.to_i64(), q.to_i64())))?
    };
    Ok(Tensor::from_array(out))
}

/// BitShift at the operand's width: shifting by a negative amount or by at least the width
/// leaves only the sign fill (0, or -1 for a right shift of a negative signed value); right shifts
/// are arithmetic for signed types and logical for unsigned ones.
fn shift<T: Element>(op: Binary, a: T, b: T) -> T {
    let width = (T::DTYPE.size_of() * 8) as i64;
    let signed = T::DTYPE.is_signed_int();
    let (a, b) = (a.to_i64(), b.to_i64());
    let v = match (op, (0..width).contains(&b)) {
        (Binary::BitShiftLeft, true) => a.wrapping_shl(b as u32),
        (_, true) if signed => a >> b,
        (_, true) => ((a as u64) >> b) as i64,
        (Binary::BitShiftRight, false) if signed && a < 0 => -1,
        _ => 0,
    };
    T::from_i64(v)
}

/// Sum/Max/Min/Mean over any number of broadcasting inputs.
pub(crate) fn variadic(op: Variadic, ins: &[Option<Tensor>]) -> KResult<Tensor> {
    let mut acc = input(ins, 0)?.clone();
    for i in 1..ins.len() {
        acc = binary(op.fold_op(), &acc, input(ins, i)?)?;
    }
    if op == Variadic::Mean {
        let n = Tensor::full(acc.dtype(), &[], ins.len() as f64)?;
        acc = binary(Binary::Div, &acc, &n)?;
    }
    Ok(acc)
}

/// Clip(x, min?, max?): bounds are scalars of x's dtype; NaN stays NaN.
pub(crate) fn clip(ins: &[Option<Tensor>]) -> KResult<Tensor> {
    let x = input(ins, 0)?;
    let bound = |i: usize| -> KResult<Option<f64>> {
        match opt_input(ins, i) {
            None => Ok(None),
            Some(t) if t.len() == 1 => Ok(Some(t.to_f64_vec()[0])),
            Some(t) => bail!("bound {i} must hold one element, got shape {}", show(t.shape())),
        }
    };
    let (lo, hi) = (bound(1)?, bound(2)?);
    fn go<T: Element>(a: &ArcArrayD<T>, lo: Option<f64>, hi: Option<f64>) -> ArcArrayD<T> {
        let (lo, hi) = (lo.unwrap_or(f64::NEG_INFINITY), hi.unwrap_or(f64::INFINITY));
        // min(max(x, lo), hi), as numpy and ONNX define it: with lo > hi everything becomes hi.
        a.mapv(|v| {
            let f = v.to_f64();
            if f > hi || (f < lo && lo > hi) {
                T::from_f64(hi)
            } else if f < lo {
                T::from_f64(lo)
            } else {
                v
            }
        })
        .into_shared()
    }
    Ok(map_array!(x, a => go(a, lo, hi)))
}

/// Where(cond, x, y) with three-way broadcasting.
pub(crate) fn select(cond: &Tensor, x: &Tensor, y: &Tensor) -> KResult<Tensor> {
    let c = typed::<bool>(cond, "condition")?;
    if x.dtype() != y.dtype() {
        bail!("branches have different dtypes: {} vs {}", x.dtype(), y.dtype());
    }
    fn go<T: Element>(c: &ArcArrayD<bool>, x: &ArcArrayD<T>, y: &Tensor) -> KResult<Tensor> {
        let y = typed::<T>(y, "input 2")?;
        let Some(shape) = broadcast_shapes(&[c.shape(), x.shape(), y.shape()]) else {
            bail!(
                "shapes {}, {} and {} cannot be broadcast together",
                show(c.shape()),
                show(x.shape()),
                show(y.shape())
            );
        };
        alloc(T::DTYPE, &shape)?;
        let (cv, xv, yv) = (broadcast_view(c, &shape), broadcast_view(x, &shape), broadcast_view(y, &shape));
        Ok(Tensor::from_array(Zip::from(&cv).and(&xv).and(&yv).map_collect(|&c, &a, &b| if c { a } else { b })))
    }
    with_array!(x, a => go(c, a, y))
}

/// Dropout at inference: the identity, plus an all-true mask when asked for.
pub(crate) fn dropout(x: &Tensor, num_outputs: usize) -> KResult<Vec<Tensor>> {
    let mut out = vec![x.clone()];
    if num_outputs > 1 {
        out.push(Tensor::full(DType::Bool, x.shape(), 1.0)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32s(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_vec(shape, v.to_vec()).unwrap()
    }

    #[test]
    fn clip_bounds_and_inverted_bounds() {
        let x = f32s(&[4], &[-5., 0.5, 5., f32::NAN]);
        let b = |v: f32| Some(Tensor::scalar(v));
        let out = clip(&[Some(x.clone()), b(0.), b(1.)]).unwrap().to_vec::<f32>();
        assert_eq!(&out[..3], &[0., 0.5, 1.]);
        assert!(out[3].is_nan());
        // numpy.clip(x, 2, 1): every value becomes the max bound.
        let out = clip(&[Some(x), b(2.), b(1.)]).unwrap().to_vec::<f32>();
        assert_eq!(&out[..3], &[1., 1., 1.]);
    }

    #[test]
    fn broadcasting_2x1x3_plus_4x1() {
        let a = f32s(&[2, 1, 3], &[0., 1., 2., 10., 11., 12.]);
        let b = f32s(&[4, 1], &[100., 200., 300., 400.]);
        let out = binary(Binary::Add, &a, &b).unwrap();
        assert_eq!(out.shape(), &[2, 4, 3]);
        let v = out.to_vec::<f32>();
        // out[i, j, k] = a[i, 0, k] + b[j, 0]
        for i in 0..2 {
            for j in 0..4 {
                for k in 0..3 {
                    let want = (10 * i + k) as f32 + 100.0 * (j + 1) as f32;
                    assert_eq!(v[i * 12 + j * 3 + k], want);
                }
            }
        }
        assert!(binary(Binary::Add, &f32s(&[2, 3], &[0.; 6]), &f32s(&[4], &[0.; 4])).is_err());
    }

    #[test]
    fn integer_and_comparison_semantics() {
        let a = Tensor::vector(vec![7i32, -7, 5]);
        let b = Tensor::vector(vec![2i32, 2, 0]);
        assert_eq!(binary(Binary::Div, &a, &b).unwrap().to_i64_vec(), vec![3, -3, 0]);
        assert_eq!(binary(Binary::Mod { fmod: false }, &a, &b).unwrap().to_i64_vec(), vec![1, 1, 0]);
        let lt = binary(Binary::Less, &a, &b).unwrap();
        assert_eq!(lt.dtype(), DType::Bool);
        assert_eq!(lt.to_i64_vec(), vec![0, 1, 0]);
        let p = binary(Binary::Pow, &Tensor::vector(vec![4.0f32, 2.0]), &Tensor::vector(vec![2i64, 3])).unwrap();
        assert_eq!(p.to_vec::<f32>(), vec![16.0, 8.0]);
    }

    #[test]
    fn bit_shifts_at_the_operand_width() {
        let a = Tensor::vector(vec![-8i8, 4, -1]);
        let right = |b: Vec<i8>| binary(Binary::BitShiftRight, &a, &Tensor::vector(b)).unwrap().to_i64_vec();
        assert_eq!(right(vec![1, 1, 0]), vec![-4, 2, -1]);
        assert_eq!(right(vec![8, 9, 127]), vec![-1, 0, -1]);
        assert_eq!(right(vec![-1, -8, -16]), vec![-1, 0, -1]);
        let u = Tensor::vector(vec![255u8, 16]);
        let by = Tensor::vector(vec![1u8, 2]);
        assert_eq!(binary(Binary::BitShiftLeft, &u, &by).unwrap().to_i64_vec(), vec![254, 64]);
        assert_eq!(binary(Binary::BitShiftRight, &u, &by).unwrap().to_i64_vec(), vec![127, 4]);
        let big = Tensor::vector(vec![u64::MAX]);
        assert_eq!(
            binary(Binary::BitShiftRight, &big, &Tensor::vector(vec![60u64])).unwrap().to_vec::<u64>(),
            vec![15]
        );
    }

    #[test]
    fn unary_variadic_clip_where() {
        let x = f32s(&[3], &[-1.0, 0.0, 2.0]);
        assert_eq!(unary(Unary::Relu, &x).to_vec::<f32>(), vec![0.0, 0.0, 2.0]);
        let s = unary(Unary::Sigmoid, &x).to_vec::<f32>();
        assert!((s[0] - 1.0 / (1.0 + 1f32.exp())).abs() < 1e-7 && s[1] == 0.5);
        assert_eq!(unary(Unary::Not, &Tensor::vector(vec![true, false])).to_i64_vec(), vec![0, 1]);
        let ins = [Some(x.clone()), Some(f32s(&[1], &[1.0])), Some(f32s(&[], &[5.0]))];
        assert_eq!(variadic(Variadic::Sum, &ins).unwrap().to_vec::<f32>(), vec![5.0, 6.0, 8.0]);
        assert_eq!(variadic(Variadic::Mean, &ins).unwrap().to_vec::<f32>(), vec![5.0 / 3.0, 2.0, 8.0 / 3.0]);
        let ins = [Some(x.clone()), Some(Tensor::scalar(-0.5f32)), None];
        assert_eq!(clip(&ins).unwrap().to_vec::<f32>(), vec![-0.5, 0.0, 2.0]);
        let c = Tensor::vector(vec![true, false, true]);
        let w = select(&c, &x, &Tensor::scalar(9.0f32)).unwrap();
        assert_eq!(w.to_vec::<f32>(), vec![-1.0, 9.0, 2.0]);
    }
}
