//! Data movement: Concat, Split, Slice, Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Expand,
//! Tile and Pad — dtype-generic, using the IR's geometry helpers (`slice_plan`, `reshape_target`,
//! `unsqueeze_axes`, `split_sizes`, `pad_amounts`).

use super::kernel::{alloc, axis, bail, input, opt_i64s, opt_input, show, typed, KResult};
use kiln_ir::op::{
    broadcast_shapes, pad_amounts, reshape_target, slice_plan, split_sizes, unsqueeze_axes, PadMode, SliceAxis,
};
use kiln_ir::{with_array, ArcArrayD, Element, Tensor};
use ndarray::{ArrayD, Axis, IxDyn, Slice};

/// A required i64 input (shapes, axes, pads, ...).
fn i64s(ins: &[Option<Tensor>], i: usize) -> KResult<Vec<i64>> {
    Ok(input(ins, i)?.to_i64_vec())
}

/// Concat along `axis`; every other dim must agree.
pub(crate) fn concat(ax: i64, ins: &[Option<Tensor>]) -> KResult<Tensor> {
    fn go<T: Element>(first: &ArcArrayD<T>, ins: &[Option<Tensor>], a: usize) -> KResult<Tensor> {
        let mut views = Vec::with_capacity(ins.len());
        for i in 0..ins.len() {
            let t = typed::<T>(input(ins, i)?, "input")?;
            let same = t.ndim() == first.ndim() && (0..t.ndim()).all(|d| d == a || t.shape()[d] == first.shape()[d]);
            if !same {
                bail!("inputs {} and {} differ outside axis {a}", show(first.shape()), show(t.shape()));
            }
            views.push(t.view());
        }
        let mut shape = first.shape().to_vec();
        shape[a] = views.iter().map(|v| v.shape()[a]).sum();
        alloc(T::DTYPE, &shape)?;
        let out = ndarray::concatenate(Axis(a), &views).map_err(|e| e.to_string())?;
        Ok(Tensor::from_array(out))
    }
    let first = input(ins, 0)?;
    let a = axis(ax, first.rank())?;
    with_array!(first, f => go(f, ins, a))
}

/// Split along `axis` into the given sizes, or evenly into `num_outputs` pieces.
pub(crate) fn split(ax: i64, ins: &[Option<Tensor>], num_outputs: usize) -> KResult<Vec<Tensor>> {
    let x = input(ins, 0)?;
    let a = axis(ax, x.rank())?;
    let sizes = split_sizes(x.shape()[a], opt_i64s(ins, 1).as_deref(), num_outputs)?;
    let mut start = 0;
    let mut outs = Vec::with_capacity(sizes.len());
    for s in sizes {
        outs.push(with_array!(x, arr => Tensor::from_array(arr.slice_axis(Axis(a), Slice::from(start..start + s)).to_owned())));
        start += s;
    }
    Ok(outs)
}

/// The ndarray slice selecting a resolved ONNX slice (negative steps walk down from `start`).
fn nd_slice(p: SliceAxis) -> Slice {
    let (start, step, len) = (p.start as isize, p.step as isize, p.len as isize);
    match len {
        0 => Slice::new(0, Some(0), 1),
        _ if step > 0 => Slice::new(start, Some(start + (len - 1) * step + 1), step),
        _ => Slice::new(start + (len - 1) * step, Some(start + 1), step),
    }
}

/// Slice(data, starts, ends, axes?, steps?).
pub(crate) fn slice(ins: &[Option<Tensor>]) -> KResult<Tensor> {
    let x = input(ins, 0)?;
    // `slice_plan` clamps into `0..extent`, which is empty for extent 0: plan against extents of at
    // least 1, then empty those axes.
    let probe: Vec<usize> = x.shape().iter().map(|&d| d.max(1)).collect();
    let mut plan =
        slice_plan(&probe, &i64s(ins, 1)?, &i64s(ins, 2)?, opt_i64s(ins, 3).as_deref(), opt_i64s(ins, 4).as_deref())?;
    for (p, &d) in plan.iter_mut().zip(x.shape()) {
        if d == 0 {
            p.len = 0;
        }
    }
    Ok(with_array!(x, a => Tensor::from_array(a.slice_each_axis(|d| nd_slice(plan[d.axis.index()])).to_owned())))
}

/// Reshape(data, shape) with 0 = copy (unless allowzero) and -1 = infer.
pub(crate) fn reshape(allowzero: bool, ins: &[Option<Tensor>]) -> KResult<Tensor> {
    let x = input(ins, 0)?;
    let target = i64s(ins, 1)?;
    if target.iter().filter(|&&t| t > 0).try_fold(1usize, |acc, &t| acc.checked_mul(t as usize)).is_none() {
        bail!("reshape target {target:?} overflows");
    }
    let target = reshape_target(x.shape(), &target, allowzero)?;
    Ok(x.reshape(&target)?)
}

/// Flatten to 2-D at `axis` (which may equal the rank).
pub(crate) fn flatten(ax: i64, x: &Tensor) -> KResult<Tensor> {
    let r = x.rank() as i64;
    let a = if ax < 0 { ax + r } else { ax };
    if !(0..=r).contains(&a) {
        bail!("axis {ax} is out of range for rank {r}");
    }
    let (outer, inner) = x.shape().split_at(a as usize);
    Ok(x.reshape(&[outer.iter().product(), inner.iter().product()])?)
}

/// Transpose by `perm` (default: reversed axes); the result is materialized row-major.
pub(crate) fn transpose(perm: Option<&[usize]>, x: &Tensor) -> KResult<Tensor> {
    let rank = x.rank();
    let perm: Vec<usize> = perm.map_or_else(|| (0..rank).rev().collect(), <[usize]>::to_vec);
    let mut sorted = perm.clone();
    sorted.sort_unstable();
    if sorted != (0..rank).collect::<Vec<_>>() {
        bail!("perm {perm:?} is not a permutation of rank {rank}");
    }
    Ok(with_array!(x, a => Tensor::from_array(a.view().permuted_axes(IxDyn(&perm)).as_standard_layout().into_owned())))
}

/// Squeeze(data, axes?): without axes, every unit dim.
pub(crate) fn squeeze(ins: &[Option<Tensor>]) -> KResult<Tensor> {
    let x = input(ins, 0)?;
    let shape = x.shape();
    let axes: Vec<usize> = match opt_i64s(ins, 1) {
        None => (0..shape.len()).filter(|&d| shape[d] == 1).collect(),
        Some(a) => a.iter().map(|&v| axis(v, shape.len())).collect::<KResult<_>>()?,
    };
    if let Some(&d) = axes.iter().find(|&&d| shape[d] != 1) {
        bail!("cannot squeeze axis {d} of {}: extent is not 1", show(shape));
    }
    let out: Vec<usize> = (0..shape.len()).filter(|d| !axes.contains(d)).map(|d| shape[d]).collect();
    Ok(x.reshape(&out)?)
}

/// Unsqueeze(data, axes): inserts unit dims at the (output-rank) positions.
pub(crate) fn unsqueeze(ins: &[Option<Tensor>]) -> KResult<Tensor> {
    let x = input(ins, 0)?;
    let axes = unsqueeze_axes(&i64s(ins, 1)?, x.rank())?;
    let mut rest = x.shape().iter();
    let out: Vec<usize> = (0..x.rank() + axes.len())
        .map(|i| if axes.contains(&i) { 1 } else { *rest.next().expect("rank adds up") })
        .collect();
    Ok(x.reshape(&out)?)
}

/// Expand(x, shape): bidirectional broadcast of x against the target shape.
pub(crate) fn expand(ins: &[Option<Tensor>]) -> KResult<Tensor> {
    let x = input(ins, 0)?;
    let target = i64s(ins, 1)?;
    if target.iter().any(|&d| d < 0) {
        bail!("shape {target:?} has a negative dim");
    }
    let target: Vec<usize> = target.iter().map(|&d| d as usize).collect();
    let Some(out) = broadcast_shapes(&[x.shape(), &target]) else {
        bail!("{} cannot be expanded to {}", show(x.shape()), show(&target));
    };
    alloc(x.dtype(), &out)?;
    Ok(with_array!(x, a => Tensor::from_array(a.broadcast(IxDyn(&out)).expect("broadcast checked").to_owned())))
}

/// Tile(x, repeats): output dim d is `x.dim(d) * repeats[d]`, element i reads `x[i mod dims]`.
pub(crate) fn tile(ins: &[Option<Tensor>]) -> KResult<Tensor> {
    let x = input(ins, 0)?;
    let reps = i64s(ins, 1)?;
    if reps.len() != x.rank() || reps.iter().any(|&r| r < 0) {
        bail!("repeats {reps:?} must hold one non-negative entry per dim of {}", show(x.shape()));
    }
    let out: Option<Vec<usize>> = x.shape().iter().zip(&reps).map(|(&d, &r)| d.checked_mul(r as usize)).collect();
    let out = out.ok_or("tiled shape overflows")?;
    alloc(x.dtype(), &out)?;
    let dims = x.shape().to_vec();
    Ok(with_array!(x, a => Tensor::from_array(ArrayD::from_shape_fn(IxDyn(&out), |idx| {
        let src: Vec<usize> = (0..dims.len()).map(|d| idx[d] % dims[d]).collect();
        a[IxDyn(&src)]
    }))))
}

/// Where output index `o` along an axis of extent `n` with `begin` padding reads from, per mode
/// (`None`: the constant).
pub(crate) fn pad_source(mode: PadMode, o: usize, begin: i64, n: usize) -> Option<usize> {
    let i = o as i128 - begin as i128;
    let n = n as i128;
    if (0..n).contains(&i) {
        return Some(i as usize);
    }
    let src = match mode {
        PadMode::Constant => return None,
        PadMode::Edge => i.clamp(0, n - 1),
        PadMode::Wrap => i.rem_euclid(n),
        PadMode::Reflect if n == 1 => 0,
        PadMode::Reflect => {
            let period = 2 * (n - 1);
            let r = i.rem_euclid(period);
            if r < n {
                r
            } else {
                period - r
            }
        }
    };
    Some(src as usize)
}

/// Pad(data, pads, constant_value?, axes?); negative pads crop.
pub(crate) fn pad(mode: PadMode, ins: &[Option<Tensor>]) -> KResult<Tensor> {
    let x = input(ins, 0)?;
    let amounts = pad_amounts(x.rank(), &i64s(ins, 1)?, opt_i64s(ins, 3).as_deref())?;
    let mut out = Vec::with_capacity(x.rank());
    for (d, (&n, &(b, e))) in x.shape().iter().zip(&amounts).enumerate() {
        let v = n as i128 + b as i128 + e as i128;
        if v < 0 {
            bail!("pads crop axis {d} of {} below zero", show(x.shape()));
        }
        if n == 0 && v > 0 && mode != PadMode::Constant {
            bail!("{} padding needs a non-empty axis {d}", mode.onnx_name());
        }
        out.push(usize::try_from(v).map_err(|_| format!("pads make axis {d} too large"))?);
    }
    alloc(x.dtype(), &out)?;
    let constant = opt_input(ins, 2).filter(|t| !t.is_empty()).map(|t| t.cast(x.dtype()));
    fn go<T: Element>(a: &ArcArrayD<T>, out: &[usize], amounts: &[(i64, i64)], mode: PadMode, fill: T) -> Tensor {
        let dims = a.shape().to_vec();
        Tensor::from_array(ArrayD::from_shape_fn(IxDyn(out), |idx| {
            let src: Option<Vec<usize>> =
                (0..dims.len()).map(|d| pad_source(mode, idx[d], amounts[d].0, dims[d])).collect();
            src.map_or(fill, |s| a[IxDyn(&s)])
        }))
    }
    Ok(with_array!(x, a => {
        let fill = constant.as_ref().and_then(|c| c.to_vec().first().copied()).unwrap_or_default();
        go(a, &out, &amounts, mode, fill)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        Tensor::from_vec(shape, (0..n as i64).collect()).unwrap()
    }

    fn v(x: Vec<i64>) -> Option<Tensor> {
        Some(Tensor::vector(x))
    }

    #[test]
    fn slice_with_negative_steps() {
        // x = 0..10: start -1, end -8 (= 2), step -3 -> 9, 6, 3.
        let y = slice(&[Some(seq(&[10])), v(vec![-1]), v(vec![-8]), None, v(vec![-3])]).unwrap();
        assert_eq!(y.to_i64_vec(), vec![9, 6, 3]);
        // 3x4 grid, rows reversed fully (end = i64::MIN), columns 1..3.
        let y =
            slice(&[Some(seq(&[3, 4])), v(vec![-1, 1]), v(vec![i64::MIN, 3]), v(vec![0, 1]), v(vec![-1, 1])]).unwrap();
        assert_eq!((y.shape(), y.to_i64_vec()), (&[3, 2][..], vec![9, 10, 5, 6, 1, 2]));
        let empty = slice(&[Some(seq(&[0])), v(vec![-1]), v(vec![i64::MIN]), None, v(vec![-1])]).unwrap();
        assert_eq!(empty.shape(), &[0]);
    }

    #[test]
    fn concat_split_reshape_transpose() {
        let c = concat(1, &[Some(seq(&[2, 1])), Some(seq(&[2, 2]))]).unwrap();
        assert_eq!(c.to_i64_vec(), vec![0, 0, 1, 1, 2, 3]);
        assert!(concat(0, &[Some(seq(&[2, 1])), Some(seq(&[2, 2]))]).is_err());
        let parts = split(0, &[Some(seq(&[5]))], 2).unwrap();
        assert_eq!((parts[0].to_i64_vec(), parts[1].to_i64_vec()), (vec![0, 1, 2], vec![3, 4]));
        let r = reshape(false, &[Some(seq(&[2, 3, 4])), v(vec![0, -1])]).unwrap();
        assert_eq!(r.shape(), &[2, 12]);
        assert!(reshape(false, &[Some(seq(&[2, 3])), v(vec![4, -1])]).is_err());
        let t = transpose(Some(&[1, 0]), &seq(&[2, 3])).unwrap();
        assert_eq!(t.to_i64_vec(), vec![0, 3, 1, 4, 2, 5]);
        assert_eq!(flatten(1, &seq(&[2, 3, 4])).unwrap().shape(), &[2, 12]);
        assert_eq!(flatten(0, &seq(&[2, 3])).unwrap().shape(), &[1, 6]);
        let u = unsqueeze(&[Some(seq(&[3])), v(vec![0, -1])]).unwrap();
        assert_eq!(u.shape(), &[1, 3, 1]);
        assert_eq!(squeeze(&[Some(u.clone()), None]).unwrap().shape(), &[3]);
        assert!(squeeze(&[Some(u), v(vec![1])]).is_err());
    }

    #[test]
    fn expand_tile_pad() {
        let e = expand(&[Some(seq(&[3, 1])), v(vec![2, 1, 2])]).unwrap();
        assert_eq!((e.shape(), e.to_i64_vec()), (&[2, 3, 2][..], vec![0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2]));
        let t = tile(&[Some(seq(&[2])), v(vec![3])]).unwrap();
        assert_eq!(t.to_i64_vec(), vec![0, 1, 0, 1, 0, 1]);
        let x = || Some(seq(&[3]));
        let padded = |mode| pad(mode, &[x(), v(vec![2, 3]), Some(Tensor::scalar(9i64)), None]).unwrap().to_i64_vec();
        assert_eq!(padded(PadMode::Constant), vec![9, 9, 0, 1, 2, 9, 9, 9]);
        assert_eq!(padded(PadMode::Edge), vec![0, 0, 0, 1, 2, 2, 2, 2]);
        assert_eq!(padded(PadMode::Reflect), vec![2, 1, 0, 1, 2, 1, 0, 1]);
        assert_eq!(padded(PadMode::Wrap), vec![1, 2, 0, 1, 2, 0, 1, 2]);
        let crop = pad(PadMode::Constant, &[x(), v(vec![-1, 1]), None, None]).unwrap();
        assert_eq!(crop.to_i64_vec(), vec![1, 2, 0]);
    }
}
