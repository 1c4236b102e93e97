//! Indexing: Gather, GatherElements and GatherND. Negative indices count from the end; indices
//! out of range are errors, never panics.

use super::kernel::{alloc, axis, bail, input, show, slice_of, standard, strides, KResult};
use kiln_ir::{with_array, ArcArrayD, DType, Element, Tensor};
use ndarray::{ArrayD, IxDyn};

/// Normalizes index `i` into `0..n`.
fn index(i: i64, n: usize) -> KResult<usize> {
    let j = if i < 0 { i + n as i64 } else { i };
    if (0..n as i64).contains(&j) {
        Ok(j as usize)
    } else {
        bail!("index {i} is out of range for an axis of extent {n}")
    }
}

fn int_indices(t: &Tensor) -> KResult<Vec<i64>> {
    if !t.dtype().is_int() {
        bail!("indices must be integers, got {}", t.dtype());
    }
    Ok(t.to_i64_vec())
}

/// Gather(data, indices) along `axis`: `out[pre, idx..., post] = data[pre, indices[idx...], post]`.
pub(crate) fn gather(ax: i64, ins: &[Option<Tensor>]) -> KResult<Tensor> {
    let (x, idx) = (input(ins, 0)?, input(ins, 1)?);
    let a = axis(ax, x.rank())?;
    let shape = x.shape();
    let (pre, n, post) = (shape[..a].iter().product::<usize>(), shape[a], shape[a + 1..].iter().product::<usize>());
    let picks = int_indices(idx)?.into_iter().map(|i| index(i, n)).collect::<KResult<Vec<_>>>()?;
    let mut out_shape = shape[..a].to_vec();
    out_shape.extend(idx.shape());
    out_shape.extend(&shape[a + 1..]);
    alloc(x.dtype(), &out_shape)?;
    fn go<T: Element>(
        a: &ArcArrayD<T>,
        picks: &[usize],
        pre: usize,
        n: usize,
        post: usize,
        out_shape: &[usize],
    ) -> Tensor {
        let s = standard(a);
        let src = slice_of(&s);
        let mut out = Vec::with_capacity(pre * picks.len() * post);
        for p in 0..pre {
            for &i in picks {
                out.extend_from_slice(&src[(p * n + i) * post..][..post]);
            }
        }
        Tensor::from_array(super::kernel::array(out_shape, out))
    }
    Ok(with_array!(x, arr => go(arr, &picks, pre, n, post, &out_shape)))
}

/// GatherElements(data, indices): `out[i] = data[i with axis coordinate replaced by indices[i]]`.
pub(crate) fn gather_elements(ax: i64, ins: &[Option<Tensor>]) -> KResult<Tensor> {
    let (x, idx) = (input(ins, 0)?, input(ins, 1)?);
    let a = axis(ax, x.rank())?;
    if idx.rank() != x.rank() {
        bail!("indices {} must have the rank of data {}", show(idx.shape()), show(x.shape()));
    }
    if let Some(d) = (0..x.rank()).find(|&d| d != a && idx.shape()[d] > x.shape()[d]) {
        bail!("indices {} exceed data {} along axis {d}", show(idx.shape()), show(x.shape()));
    }
    let picks = int_indices(idx)?.into_iter().map(|i| index(i, x.shape()[a])).collect::<KResult<Vec<_>>>()?;
    let dims = idx.shape().to_vec();
    fn go<T: Element>(arr: &ArcArrayD<T>, picks: &[usize], dims: &[usize], a: usize) -> Tensor {
        let mut it = picks.iter();
        Tensor::from_array(ArrayD::from_shape_fn(IxDyn(dims), |pos| {
            let mut src = ndarray::Dimension::slice(&pos).to_vec();
            src[a] = *it.next().expect("one pick per output element");
            arr[IxDyn(&src)]
        }))
    }
    Ok(with_array!(x, arr => go(arr, &picks, &dims, a)))
}

/// GatherND(data, indices) with `batch_dims`: each index tuple (last dim of indices) selects a
/// slice of data within its batch.
pub(crate) fn gather_nd(batch_dims: i64, ins: &[Option<Tensor>]) -> KResult<Tensor> {
    let (x, idx) = (input(ins, 0)?, input(ins, 1)?);
    if idx.dtype() != DType::I64 {
        bail!("indices must be i64, got {}", idx.dtype());
    }
    let (ds, is) = (x.shape(), idx.shape());
    let b = usize::try_from(batch_dims).map_err(|_| format!("batch_dims {batch_dims} must be non-negative"))?;
    let Some(&tuple) = is.last() else { bail!("indices must have rank at least 1") };
    if is.len() <= b || b + tuple > ds.len() || ds[..b] != is[..b] {
        bail!("indices {} do not fit data {} with batch_dims {b}", show(is), show(ds));
    }
    let batches: usize = ds[..b].iter().product();
    let per_batch: usize = is[b..is.len() - 1].iter().product();
    let chunk: usize = ds[b + tuple..].iter().product();
    let block: usize = ds[b..].iter().product();
    let st = strides(&ds[b..b + tuple]);
    let raw = idx.to_i64_vec();
    let mut offsets = Vec::with_capacity(batches * per_batch);
    for k in 0..batches * per_batch {
        let mut off = (k / per_batch) * block;
        for (d, &i) in raw[k * tuple..][..tuple].iter().enumerate() {
            off += index(i, ds[b + d])? * st[d] * chunk;
        }
        offsets.push(off);
    }
    let mut out_shape = is[..is.len() - 1].to_vec();
    out_shape.extend(&ds[b + tuple..]);
    alloc(x.dtype(), &out_shape)?;
    fn go<T: Element>(a: &ArcArrayD<T>, offsets: &[usize], chunk: usize, out_shape: &[usize]) -> Tensor {
        let s = standard(a);
        let src = slice_of(&s);
        let mut out = Vec::with_capacity(offsets.len() * chunk);
        for &o in offsets {
            out.extend_from_slice(&src[o..][..chunk]);
        }
        Tensor::from_array(super::kernel::array(out_shape, out))
    }
    Ok(with_array!(x, arr => go(arr, &offsets, chunk, &out_shape)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Tensor {
        Tensor::from_vec(&[3, 2], vec![1.0f32, 2., 3., 4., 5., 6.]).unwrap()
    }

    #[test]
    fn gather_rows_and_columns() {
        let idx = Tensor::from_vec(&[2, 2], vec![0i64, 1, -1, 0]).unwrap();
        let g = gather(0, &[Some(grid()), Some(idx)]).unwrap();
        assert_eq!((g.shape(), g.to_vec::<f32>()), (&[2, 2, 2][..], vec![1., 2., 3., 4., 5., 6., 1., 2.]));
        let g = gather(1, &[Some(grid()), Some(Tensor::scalar(1i32))]).unwrap();
        assert_eq!((g.shape(), g.to_vec::<f32>()), (&[3][..], vec![2., 4., 6.]));
        let err = gather(0, &[Some(grid()), Some(Tensor::vector(vec![3i64]))]).unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
    }

    #[test]
    fn gather_elements_and_nd() {
        let idx = Tensor::from_vec(&[2, 2], vec![1i64, 0, 2, 2]).unwrap();
        let g = gather_elements(0, &[Some(grid()), Some(idx)]).unwrap();
        assert_eq!(g.to_vec::<f32>(), vec![3., 2., 5., 6.]);
        let idx = Tensor::from_vec(&[2, 2], vec![2i64, 1, 0, 0]).unwrap();
        assert_eq!(gather_nd(0, &[Some(grid()), Some(idx)]).unwrap().to_vec::<f32>(), vec![6., 1.]);
        let rows = Tensor::from_vec(&[2, 1], vec![1i64, 2]).unwrap();
        let g = gather_nd(0, &[Some(grid()), Some(rows)]).unwrap();
        assert_eq!((g.shape(), g.to_vec::<f32>()), (&[2, 2][..], vec![3., 4., 5., 6.]));
        // batch_dims 1: batch b picks column idx[b].
        let cols = Tensor::from_vec(&[3, 1], vec![1i64, 0, 1]).unwrap();
        assert_eq!(gather_nd(1, &[Some(grid()), Some(cols)]).unwrap().to_vec::<f32>(), vec![2., 3., 6.]);
        assert!(gather_nd(0, &[Some(grid()), Some(Tensor::from_vec(&[1, 1], vec![5i64]).unwrap())]).is_err());
    }
}
