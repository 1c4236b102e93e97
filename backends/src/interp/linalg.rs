//! Matrix products: Gemm and numpy-style MatMul (batched, broadcast, 1-D operands promoted).
//! Floats multiply through ndarray's `general_mat_mul` (matrixmultiply) in f32/f64; integers in
//! exact wrapping i64 arithmetic.

use super::kernel::{alloc, bail, cast_to, finish, input, opt_input, show, standard, with_float, KResult, Real};
use kiln_ir::op::{broadcast_shapes, Gemm};
use kiln_ir::{DType, Element, Tensor};
use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewMut2, Ix2, IxDyn};

/// `c = a @ b` for one pair of matrices; `c` starts zeroed.
type MatMulFn<T> = fn(ArrayView2<T>, ArrayView2<T>, &mut ArrayViewMut2<T>);

fn mm_float<T: Real>(a: ArrayView2<T>, b: ArrayView2<T>, c: &mut ArrayViewMut2<T>) {
    general_mat_mul(T::one(), &a, &b, T::zero(), c);
}

fn mm_int(a: ArrayView2<i64>, b: ArrayView2<i64>, c: &mut ArrayViewMut2<i64>) {
    for i in 0..a.nrows() {
        for k in 0..a.ncols() {
            let x = a[(i, k)];
            for j in 0..b.ncols() {
                c[(i, j)] = c[(i, j)].wrapping_add(x.wrapping_mul(b[(k, j)]));
            }
        }
    }
}

/// The message for a pair of operands that break `rule`.
fn bad_operands(a: &Tensor, b: &Tensor, rule: &str) -> String {
    format!("operands {}{} and {}{} {rule}", a.dtype(), show(a.shape()), b.dtype(), show(b.shape()))
}

/// Gemm: `alpha * op(A) @ op(B) + beta * C`, C broadcast to `[M, N]`.
pub(crate) fn gemm(g: &Gemm, ins: &[Option<Tensor>]) -> KResult<Tensor> {
    let (a, b, c) = (input(ins, 0)?, input(ins, 1)?, opt_input(ins, 2));
    if a.rank() != 2 || b.rank() != 2 || a.dtype() != b.dtype() {
        bail!("{}", bad_operands(a, b, "must be matrices of one dtype"));
    }
    let dtype = a.dtype();
    if dtype.is_float() {
        with_float!(dtype, T => Ok(finish(gemm_typed::<T>(g, a, b, c, mm_float::<T>)?, dtype)))
    } else {
        Ok(finish(gemm_typed::<i64>(g, a, b, c, mm_int)?, dtype))
    }
}

fn gemm_typed<T: Element + num_traits::Zero>(
    g: &Gemm,
    a: &Tensor,
    b: &Tensor,
    c: Option<&Tensor>,
    mm: MatMulFn<T>,
) -> KResult<ArrayD<T>> {
    let (a, b) = (cast_to::<T>(a), cast_to::<T>(b));
    let (av, bv) = (matrix(&a, g.trans_a), matrix(&b, g.trans_b));
    if av.ncols() != bv.nrows() {
        bail!("inner dimensions differ: op(A) is {:?}, op(B) is {:?}", av.dim(), bv.dim());
    }
    let (m, n) = (av.nrows(), bv.ncols());
    alloc(T::DTYPE, &[m, n])?;
    let mut ab = Array2::<T>::zeros((m, n));
    mm(av, bv, &mut ab.view_mut());
    let (alpha, beta) = (g.alpha as f64, g.beta as f64);
    let scale = |v: T| T::from_f64(alpha * v.to_f64());
    let Some(c) = c else {
        return Ok(if alpha == 1.0 { ab } else { ab.mapv(scale) }.into_dyn());
    };
    let c = cast_to::<T>(c);
    let Some(cv) = c.broadcast((m, n)) else {
        bail!("C {} does not broadcast to [{m},{n}]", show(c.shape()));
    };
    ab.zip_mut_with(&cv, |y, &z| *y = T::from_f64(alpha * y.to_f64() + beta * z.to_f64()));
    Ok(ab.into_dyn())
}

/// A rank-2 array as a matrix view, optionally transposed.
fn matrix<T>(t: &kiln_ir::ArcArrayD<T>, trans: bool) -> ArrayView2<'_, T> {
    let v = t.view().into_dimensionality::<Ix2>().expect("rank checked");
    if trans {
        v.reversed_axes()
    } else {
        v
    }
}

/// MatMul with numpy semantics.
pub(crate) fn matmul(a: &Tensor, b: &Tensor) -> KResult<Tensor> {
    if a.dtype() != b.dtype() || a.rank() == 0 || b.rank() == 0 {
        bail!("{}", bad_operands(a, b, "must share a dtype and have rank >= 1"));
    }
    let dtype = a.dtype();
    if dtype.is_float() {
        with_float!(dtype, T => Ok(finish(matmul_typed::<T>(a, b, mm_float::<T>)?, dtype)))
    } else if dtype == DType::Bool {
        bail!("MatMul does not accept bool operands")
    } else {
        Ok(finish(matmul_typed::<i64>(a, b, mm_int)?, dtype))
    }
}

fn matmul_typed<T: Element + num_traits::Zero>(a: &Tensor, b: &Tensor, mm: MatMulFn<T>) -> KResult<ArrayD<T>> {
    // 1-D operands become [1, K] and [K, 1]; those unit dims are dropped from the result.
    let a_shape: Vec<usize> = if a.rank() == 1 { vec![1, a.shape()[0]] } else { a.shape().to_vec() };
    let b_shape: Vec<usize> = if b.rank() == 1 { vec![b.shape()[0], 1] } else { b.shape().to_vec() };
    let (ra, rb) = (a_shape.len(), b_shape.len());
    let (m, k, k2, n) = (a_shape[ra - 2], a_shape[ra - 1], b_shape[rb - 2], b_shape[rb - 1]);
    if k != k2 {
        bail!("inner dimensions differ: {} @ {}", show(a.shape()), show(b.shape()));
    }
    let Some(batch) = broadcast_shapes(&[&a_shape[..ra - 2], &b_shape[..rb - 2]]) else {
        bail!("batch dims of {} and {} cannot be broadcast", show(a.shape()), show(b.shape()));
    };
    let mut out_shape = batch.clone();
    out_shape.extend(a.rank().gt(&1).then_some(m));
    out_shape.extend(b.rank().gt(&1).then_some(n));
    let count: usize = batch.iter().product();
    alloc(T::DTYPE, &[count, m, n])?;
    let full = |t: &Tensor, shape: &[usize], rows: usize, cols: usize| -> ArrayD<T> {
        let arr = cast_to::<T>(t);
        let arr = standard(&arr);
        let arr = arr.view().into_shape_with_order(IxDyn(shape)).expect("same element count");
        let mut target = batch.clone();
        target.extend([rows, cols]);
        let view = arr.broadcast(IxDyn(&target)).expect("batch dims broadcast");
        view.as_standard_layout().into_owned()
    };
    let mut out = vec![T::zero(); count * m * n];
    if b_shape[..rb - 2].iter().all(|&d| d == 1) {
        // Shared right operand: one [count*M, K] @ [K, N] product.
        let av = full(a, &a_shape, m, k);
        let bv = cast_to::<T>(b);
        let bv = standard(&bv);
        let bv = bv.view().into_shape_with_order((k, n)).expect("same element count");
        let av = av.into_shape_with_order((count * m, k)).expect("same element count");
        mm(av.view(), bv, &mut ArrayViewMut2::from_shape((count * m, n), &mut out[..]).expect("output block"));
    } else {
        let (av, bv) = (full(a, &a_shape, m, k), full(b, &b_shape, k, n));
        let (av, bv) = (av.as_slice().expect("owned standard"), bv.as_slice().expect("owned standard"));
        for (i, ob) in out.chunks_exact_mut((m * n).max(1)).enumerate().take(count) {
            let x = ArrayView2::from_shape((m, k), &av[i * m * k..][..m * k]).expect("a block");
            let y = ArrayView2::from_shape((k, n), &bv[i * k * n..][..k * n]).expect("b block");
            mm(x, y, &mut ArrayViewMut2::from_shape((m, n), ob).expect("output block"));
        }
    }
    Ok(super::kernel::array(&out_shape, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], v: Vec<f32>) -> Tensor {
        Tensor::from_vec(shape, v).unwrap()
    }

    #[test]
    fn matmul_accepts_operands_not_in_row_major_layout() {
        // [[1, 3], [2, 4]] stored column-major (as a Concat or Transpose may leave it), batched.
        let stored = ArrayD::from_shape_vec(IxDyn(&[2, 2, 1]), vec![1.0f32, 2., 3., 4.]).unwrap();
        let a = Tensor::from_array(stored.reversed_axes());
        let identity = t(&[1, 2, 2], vec![1., 0., 0., 1.]);
        assert_eq!(matmul(&a, &identity).unwrap().to_vec::<f32>(), vec![1., 3., 2., 4.]);
        let shared = t(&[2, 2], vec![1., 0., 0., 1.]);
        assert_eq!(matmul(&a, &shared).unwrap().to_vec::<f32>(), vec![1., 3., 2., 4.]);
        assert_eq!(matmul(&shared, &a).unwrap().to_vec::<f32>(), vec![1., 3., 2., 4.]);
    }

    #[test]
    fn gemm_with_transposes_and_bias() {
        // A^T with A = [[1,4],[2,5],[3,6]] is [[1,2,3],[4,5,6]]; B^T with B = [[1,0,1],[0,1,1]]
        // is [[1,0],[0,1],[1,1]]. A^T B^T = [[4,5],[10,11]]; alpha 2, beta 0.5, C = [1, 2].
        let a = t(&[3, 2], vec![1., 4., 2., 5., 3., 6.]);
        let b = t(&[2, 3], vec![1., 0., 1., 0., 1., 1.]);
        let g = Gemm { alpha: 2.0, beta: 0.5, trans_a: true, trans_b: true };
        let y = gemm(&g, &[Some(a), Some(b), Some(t(&[2], vec![1., 2.]))]).unwrap();
        assert_eq!(y.shape(), &[2, 2]);
        assert_eq!(y.to_vec::<f32>(), vec![8.5, 11.0, 20.5, 23.0]);
        let ints = gemm(
            &Gemm::default(),
            &[
                Some(Tensor::from_vec(&[1, 2], vec![2i32, 3]).unwrap()),
                Some(Tensor::from_vec(&[2, 1], vec![4i32, 5]).unwrap()),
                None,
            ],
        )
        .unwrap();
        assert_eq!(ints.to_i64_vec(), vec![23]);
    }

    #[test]
    fn matmul_batched_broadcast_and_vectors() {
        // [2,1,2,2] @ [3,2,2]: batch [2,3]; a_i = i * I, b_j = [[j,1],[0,j]] -> a_i b_j = i b_j.
        let mut av = Vec::new();
        for i in 1..=2 {
            av.extend([i as f32, 0., 0., i as f32]);
        }
        let mut bv = Vec::new();
        for j in 0..3 {
            bv.extend([j as f32, 1., 0., j as f32]);
        }
        let y = matmul(&t(&[2, 1, 2, 2], av), &t(&[3, 2, 2], bv)).unwrap();
        assert_eq!(y.shape(), &[2, 3, 2, 2]);
        let v = y.to_vec::<f32>();
        for i in 1..=2 {
            for j in 0..3 {
                let base = ((i - 1) * 3 + j) * 4;
                let (i, j) = (i as f32, j as f32);
                assert_eq!(&v[base..base + 4], &[i * j, i, 0., i * j]);
            }
        }
        let m = t(&[2, 3], vec![1., 2., 3., 4., 5., 6.]);
        let vec3 = t(&[3], vec![1., 0., -1.]);
        assert_eq!(matmul(&m, &vec3).unwrap().to_vec::<f32>(), vec![-2., -2.]);
        let vec2 = t(&[2], vec![1., 1.]);
        let r = matmul(&vec2, &m).unwrap();
        assert_eq!((r.shape(), r.to_vec::<f32>()), (&[3][..], vec![5., 7., 9.]));
        assert!(matmul(&m, &m).is_err());
    }
}
