//! Indexing and selection kernels: CumSum/CumProd, Compress, TopK, ScatterElements, ScatterND and NonZero.
//! Negative indices count from the end; indices out of range are errors, never panics.

use super::kernel::{alloc, axis, bail, indices, input, show, slice_of, standard, strides, KResult};
use kiln_ir::op::ScatterReduction;
use kiln_ir::{with_array, ArcArrayD, Element, Tensor};

/// Normalizes index `i` into `0..n`.
fn index(i: i64, n: usize) -> KResult<usize> {
    let j = if i < 0 { i + n as i64 } else { i };
    if (0..n as i64).contains(&j) {
        Ok(j as usize)
    } else {
        bail!("index {i} is out of range for an axis of extent {n}")
    }
}

/// `shape` split around axis `a`: (product before, extent, product after).
fn around(shape: &[usize], a: usize) -> (usize, usize, usize) {
    (shape[..a].iter().product(), shape[a], shape[a + 1..].iter().product())
}

/// The row-major elements of a tensor of element type `T`.
fn elements<T: Element>(a: &ArcArrayD<T>) -> Vec<T> {
    slice_of(&standard(a)).to_vec()
}

fn rebuild<T: Element>(shape: &[usize], data: Vec<T>) -> Tensor {
    Tensor::from_array(super::kernel::array(shape, data))
}

/// `op` on two elements: in f64 for floats, in wrapping i64 for integers and bool.
fn combine<T: Element>(r: ScatterReduction, old: T, new: T) -> T {
    if T::DTYPE.is_float() {
        T::from_f64(r.combine_f64(old.to_f64(), new.to_f64()))
    } else {
        T::from_i64(r.combine_i64(old.to_i64(), new.to_i64()))
    }
}

/// CumSum (`product == false`) or CumProd along the axis given by input 1.
pub(crate) fn cumulative(product: bool, exclusive: bool, reverse: bool, ins: &[Option<Tensor>]) -> KResult<Tensor> {
    let x = input(ins, 0)?;
    let ax = match input(ins, 1)?.to_i64_vec().as_slice() {
        [a] => *a,
        other => bail!("axis must hold one value, got {other:?}"),
    };
    let a = axis(ax, x.rank())?;
    let (outer, n, inner) = around(x.shape(), a);
    let r = if product { ScatterReduction::Mul } else { ScatterReduction::Add };
    fn go<T: Element>(
        arr: &ArcArrayD<T>,
        r: ScatterReduction,
        (outer, n, inner): (usize, usize, usize),
        exclusive: bool,
        reverse: bool,
    ) -> Tensor {
        let src = elements(arr);
        let identity = T::from_i64(if r == ScatterReduction::Mul { 1 } else { 0 });
        let mut out = vec![identity; src.len()];
        for o in 0..outer {
            for i in 0..inner {
                let mut acc = identity;
                for step in 0..n {
                    let k = if reverse { n - 1 - step } else { step };
                    let at = (o * n + k) * inner + i;
                    if exclusive {
                        out[at] = acc;
                        acc = combine(r, acc, src[at]);
                    } else {
                        acc = combine(r, acc, src[at]);
                        out[at] = acc;
                    }
                }
            }
        }
        rebuild(arr.shape(), out)
    }
    Ok(with_array!(x, arr => go(arr, r, (outer, n, inner), exclusive, reverse)))
}

/// TopK: the k largest (or smallest) values along `axis` and their indices, sorted, ties to the
/// lower index. NaN counts as larger than every number.
pub(crate) fn top_k(ax: i64, largest: bool, ins: &[Option<Tensor>]) -> KResult<Vec<Tensor>> {
    let x = input(ins, 0)?;
    let k = match input(ins, 1)?.to_i64_vec().as_slice() {
        [k] => *k,
        other => bail!("k must hold one value, got {other:?}"),
    };
    let a = axis(ax, x.rank())?;
    let (outer, n, inner) = around(x.shape(), a);
    let k = match usize::try_from(k) {
        Ok(k) if k <= n => k,
        _ => bail!("k = {k} is out of range for axis {a} of {}", show(x.shape())),
    };
    let mut shape = x.shape().to_vec();
    shape[a] = k;
    alloc(x.dtype(), &shape)?;
    let keys = x.to_f64_vec();
    let order = |p: f64, q: f64| {
        let o = p.total_cmp(&q);
        if largest {
            o.reverse()
        } else {
            o
        }
    };
    let mut picks = Vec::with_capacity(outer * k * inner);
    let mut lane: Vec<usize> = Vec::with_capacity(n);
    let mut chosen = vec![0usize; outer * k * inner];
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| (o * n + j) * inner + i;
            lane.clear();
            lane.extend(0..n);
            // A stable sort keeps equal keys in index order.
            lane.sort_by(|&p, &q| order(keys[at(p)], keys[at(q)]));
            for (j, &src) in lane[..k].iter().enumerate() {
                chosen[(o * k + j) * inner + i] = src;
            }
        }
    }
    picks.extend(chosen.iter().map(|&j| j as i64));
    let offsets: Vec<usize> = chosen
        .iter()
        .enumerate()
        .map(|(pos, &j)| {
            let (o, i) = (pos / (k * inner), pos % inner);
            (o * n + j) * inner + i
        })
        .collect();
    fn go<T: Element>(arr: &ArcArrayD<T>, offsets: &[usize], shape: &[usize]) -> Tensor {
        let src = elements(arr);
        rebuild(shape, offsets.iter().map(|&o| src[o]).collect())
    }
    let values = with_array!(x, arr => go(arr, &offsets, &shape));
    Ok(vec![values, Tensor::from_vec(&shape, picks)?])
}

fn int_indices(t: &Tensor) -> KResult<Vec<i64>> {
    if !t.dtype().is_int() {
        bail!("indices must be integers, got {}", t.dtype());
    }
    Ok(t.to_i64_vec())
}

/// Writes `updates[j]` into `data[offsets[j]]` for every j, combined per `r`.
fn scatter_into(r: ScatterReduction, data: &Tensor, updates: &Tensor, offsets: &[usize]) -> KResult<Tensor> {
    if updates.dtype() != data.dtype() {
        bail!("updates have dtype {} but data has {}", updates.dtype(), data.dtype());
    }
    fn go<T: Element>(arr: &ArcArrayD<T>, upd: &Tensor, r: ScatterReduction, offsets: &[usize]) -> Tensor {
        let mut out = elements(arr);
        let upd = elements(T::array(upd).expect("dtype checked above"));
        for (&o, &u) in offsets.iter().zip(&upd) {
            out[o] = combine(r, out[o], u);
        }
        rebuild(arr.shape(), out)
    }
    Ok(with_array!(data, arr => go(arr, updates, r, offsets)))
}

/// ScatterElements (and legacy Scatter): `out[i with axis coord indices[i]] = updates[i]`.
pub(crate) fn scatter_elements(ax: i64, r: ScatterReduction, ins: &[Option<Tensor>]) -> KResult<Tensor> {
    let (data, idx, upd) = (input(ins, 0)?, input(ins, 1)?, input(ins, 2)?);
    let a = axis(ax, data.rank())?;
    let (ds, is) = (data.shape(), idx.shape());
    if is.len() != ds.len() || upd.shape() != is {
        bail!("data {}, indices {} and updates {} do not fit", show(ds), show(is), show(upd.shape()));
    }
    if let Some(d) = (0..ds.len()).find(|&d| d != a && is[d] > ds[d]) {
        bail!("indices {} exceed data {} along axis {d}", show(is), show(ds));
    }
    let raw = int_indices(idx)?;
    let st = strides(ds);
    let mut offsets = Vec::with_capacity(raw.len());
    for (pos, &i) in indices(is).zip(&raw) {
        let mut off = 0;
        for (d, &p) in pos.iter().enumerate() {
            off += if d == a { index(i, ds[a])? } else { p } * st[d];
        }
        offsets.push(off);
    }
    scatter_into(r, data, upd, &offsets)
}

/// ScatterND: each index tuple (last dim of indices) selects a slice of data that takes the
/// matching slice of updates.
pub(crate) fn scatter_nd(r: ScatterReduction, ins: &[Option<Tensor>]) -> KResult<Tensor> {
    let (data, idx, upd) = (input(ins, 0)?, input(ins, 1)?, input(ins, 2)?);
    let (ds, is) = (data.shape(), idx.shape());
    let Some(&q) = is.last() else { bail!("indices must have rank at least 1") };
    let mut want = is[..is.len() - 1].to_vec();
    if q > ds.len() {
        bail!("index tuples of length {q} exceed data {}", show(ds));
    }
    want.extend(&ds[q..]);
    if upd.shape() != want.as_slice() {
        bail!(
            "updates {} must have shape {} for data {} and indices {}",
            show(upd.shape()),
            show(&want),
            show(ds),
            show(is)
        );
    }
    let raw = int_indices(idx)?;
    let chunk: usize = ds[q..].iter().product();
    let st = strides(&ds[..q]);
    let tuples = raw.len().checked_div(q).unwrap_or_else(|| is[..is.len() - 1].iter().product());
    let mut offsets = Vec::with_capacity(tuples * chunk);
    for t in 0..tuples {
        let mut base = 0;
        for d in 0..q {
            base += index(raw[t * q + d], ds[d])? * st[d] * chunk;
        }
        offsets.extend(base..base + chunk);
    }
    scatter_into(r, data, upd, &offsets)
}

/// Compress: the slices along `axis` (x flattened when `None`) whose condition is true.
pub(crate) fn compress(ax: Option<i64>, ins: &[Option<Tensor>]) -> KResult<Tensor> {
    let (x, cond) = (input(ins, 0)?, input(ins, 1)?);
    if cond.rank() != 1 {
        bail!("condition must be 1-D, got {}", show(cond.shape()));
    }
    let (x, a) = match ax {
        Some(ax) => (x.clone(), axis(ax, x.rank())?),
        None => (x.reshape(&[x.len()])?, 0),
    };
    let n = x.shape()[a];
    let picks: Vec<i64> =
        cond.to_i64_vec().iter().enumerate().filter(|(_, &c)| c != 0).map(|(i, _)| i as i64).collect();
    if let Some(&p) = picks.iter().find(|&&p| p as usize >= n) {
        bail!("condition is true at {p}, past the extent {n} of axis {a}");
    }
    super::gather::gather(a as i64, &[Some(x), Some(Tensor::vector(picks))])
}

/// NonZero: `[rank, count]` i64 coordinates of the non-zero elements, in row-major order.
pub(crate) fn non_zero(x: &Tensor) -> KResult<Tensor> {
    fn go<T: Element>(arr: &ArcArrayD<T>) -> Vec<bool> {
        elements(arr).into_iter().map(|v| v != T::default()).collect()
    }
    let nz = with_array!(x, arr => go(arr));
    let hits: Vec<Vec<usize>> = indices(x.shape()).zip(&nz).filter(|(_, &z)| z).map(|(p, _)| p).collect();
    let (rank, count) = (x.rank(), hits.len());
    let mut out = vec![0i64; rank * count];
    for (c, pos) in hits.iter().enumerate() {
        for (d, &p) in pos.iter().enumerate() {
            out[d * count + c] = p as i64;
        }
    }
    Ok(Tensor::from_vec(&[rank, count], out)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Tensor {
        Tensor::from_vec(&[2, 3], vec![1.0f32, 2., 3., 4., 5., 6.]).unwrap()
    }

    #[test]
    fn cumsum_modes() {
        let run = |ex, rev, ax: i64| {
            cumulative(false, ex, rev, &[Some(grid()), Some(Tensor::scalar(ax))]).unwrap().to_vec::<f32>()
        };
        assert_eq!(run(false, false, 1), vec![1., 3., 6., 4., 9., 15.]);
        assert_eq!(run(true, false, 1), vec![0., 1., 3., 0., 4., 9.]);
        assert_eq!(run(false, true, 1), vec![6., 5., 3., 15., 11., 6.]);
        assert_eq!(run(true, true, -1), vec![5., 3., 0., 11., 6., 0.]);
        assert_eq!(run(false, false, 0), vec![1., 2., 3., 5., 7., 9.]);
        let ints = Tensor::vector(vec![2i32, 3, 4]);
        let p = cumulative(true, false, false, &[Some(ints), Some(Tensor::vector(vec![0i64]))]).unwrap();
        assert_eq!(p.to_vec::<i32>(), vec![2, 6, 24]);
        assert!(cumulative(false, false, false, &[Some(grid()), Some(Tensor::scalar(2i64))]).is_err());
    }

    #[test]
    fn top_k_largest_smallest_ties() {
        let x = Tensor::from_vec(&[2, 4], vec![3.0f32, 1., 3., 2., 0., 5., 5., -1.]).unwrap();
        let k = || Some(Tensor::vector(vec![2i64]));
        let out = top_k(1, true, &[Some(x.clone()), k()]).unwrap();
        assert_eq!(out[0].shape(), &[2, 2]);
        assert_eq!(out[0].to_vec::<f32>(), vec![3., 3., 5., 5.]);
        assert_eq!(out[1].to_vec::<i64>(), vec![0, 2, 1, 2]);
        let out = top_k(-1, false, &[Some(x.clone()), k()]).unwrap();
        assert_eq!((out[0].to_vec::<f32>(), out[1].to_vec::<i64>()), (vec![1., 2., -1., 0.], vec![1, 3, 3, 0]));
        let out = top_k(0, true, &[Some(x.clone()), Some(Tensor::vector(vec![1i64]))]).unwrap();
        assert_eq!((out[0].to_vec::<f32>(), out[1].to_vec::<i64>()), (vec![3., 5., 5., 2.], vec![0, 1, 1, 0]));
        assert!(top_k(1, true, &[Some(x), Some(Tensor::vector(vec![5i64]))]).is_err());
    }

    #[test]
    fn scatter_elements_reductions() {
        let idx = Tensor::from_vec(&[1, 2], vec![2i64, -3]).unwrap();
        let upd = Tensor::from_vec(&[1, 2], vec![10.0f32, 20.]).unwrap();
        let run = |r| scatter_elements(1, r, &[Some(grid()), Some(idx.clone()), Some(upd.clone())]).unwrap();
        assert_eq!(run(ScatterReduction::None).to_vec::<f32>(), vec![20., 2., 10., 4., 5., 6.]);
        assert_eq!(run(ScatterReduction::Add).to_vec::<f32>(), vec![21., 2., 13., 4., 5., 6.]);
        assert_eq!(run(ScatterReduction::Mul).to_vec::<f32>(), vec![20., 2., 30., 4., 5., 6.]);
        let dup = Tensor::from_vec(&[1, 2], vec![1i64, 1]).unwrap();
        let max = scatter_elements(1, ScatterReduction::Max, &[Some(grid()), Some(dup), Some(upd.clone())]).unwrap();
        assert_eq!(max.to_vec::<f32>(), vec![1., 20., 3., 4., 5., 6.]);
        let bad = Tensor::from_vec(&[1, 2], vec![3i64, 0]).unwrap();
        let err = scatter_elements(1, ScatterReduction::None, &[Some(grid()), Some(bad), Some(upd)]).unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
    }

    #[test]
    fn scatter_nd_rows_and_elements() {
        let rows = Tensor::from_vec(&[1, 1], vec![1i64]).unwrap();
        let upd = Tensor::from_vec(&[1, 3], vec![7.0f32, 8., 9.]).unwrap();
        let out = scatter_nd(ScatterReduction::None, &[Some(grid()), Some(rows), Some(upd)]).unwrap();
        assert_eq!(out.to_vec::<f32>(), vec![1., 2., 3., 7., 8., 9.]);
        let cells = Tensor::from_vec(&[2, 2], vec![0i64, 2, 0, 2]).unwrap();
        let upd = Tensor::vector(vec![10.0f32, 1.]);
        let out = scatter_nd(ScatterReduction::Add, &[Some(grid()), Some(cells.clone()), Some(upd.clone())]).unwrap();
        assert_eq!(out.to_vec::<f32>(), vec![1., 2., 14., 4., 5., 6.]);
        let far = Tensor::from_vec(&[1, 2], vec![2i64, 0]).unwrap();
        assert!(
            scatter_nd(ScatterReduction::None, &[Some(grid()), Some(far), Some(Tensor::vector(vec![1.0f32]))]).is_err()
        );
    }

    #[test]
    fn compress_axes() {
        let cond = || Some(Tensor::vector(vec![false, true]));
        let rows = compress(Some(0), &[Some(grid()), cond()]).unwrap();
        assert_eq!((rows.shape(), rows.to_vec::<f32>()), (&[1, 3][..], vec![4., 5., 6.]));
        let cols = compress(Some(-1), &[Some(grid()), cond()]).unwrap();
        assert_eq!((cols.shape(), cols.to_vec::<f32>()), (&[2, 1][..], vec![2., 5.]));
        let flat = compress(None, &[Some(grid()), cond()]).unwrap();
        assert_eq!(flat.to_vec::<f32>(), vec![2.]);
        let long = Some(Tensor::vector(vec![false, false, true]));
        assert!(compress(Some(0), &[Some(grid()), long]).is_err());
    }

    #[test]
    fn non_zero_coordinates() {
        let x = Tensor::from_vec(&[2, 2], vec![1i32, 0, 0, 3]).unwrap();
        let out = non_zero(&x).unwrap();
        assert_eq!((out.shape(), out.to_vec::<i64>()), (&[2, 2][..], vec![0, 1, 0, 1]));
        let none = non_zero(&Tensor::vector(vec![false, false])).unwrap();
        assert_eq!(none.shape(), &[1, 0]);
    }
}
