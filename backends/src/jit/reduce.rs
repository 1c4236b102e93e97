//! Reductions (ReduceSum, Mean, Max, Min, Prod, L1, L2, LogSum, LogSumExp, SumSquare) over any
//! constant set of axes, and ArgMax/ArgMin (i64 indices) along one axis. The input is viewed as `[outer, reduced, inner]` where `inner` is the
//! trailing block of kept axes (contiguous in both input and output) and the other kept and
//! reduced axes are flattened into offset tables built at lowering; each task reduces one outer
//! index over a block of inner positions, accumulating in f64 on the stack as the interpreter
//! does.

use super::exec::Ptr;
use super::pool::Workers;
use kiln_ir::op::ReduceOp;

/// Inner positions one task reduces side by side.
const LANES: usize = 32;

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ReduceStep {
    pub op: ReduceOp,
    /// Input offset of each output row (kept axes before the inner block).
    pub outer: Vec<usize>,
    /// Input offset of each reduced position, relative to its row.
    pub reduced: Vec<usize>,
    /// Length of the trailing kept block.
    pub inner: usize,
}

impl ReduceStep {
    /// Reduces `axes` (normalized, sorted, unique) of `shape`.
    pub(crate) fn new(op: ReduceOp, shape: &[usize], axes: &[usize]) -> ReduceStep {
        let rank = shape.len();
        // The trailing kept block.
        let split = (0..rank).rev().find(|d| axes.contains(d)).map_or(0, |d| d + 1);
        let inner: usize = shape[split..].iter().product();
        let mut outer = vec![0usize];
        let mut reduced = vec![0usize];
        let mut stride = inner;
        for d in (0..split).rev() {
            let table = if axes.contains(&d) { &mut reduced } else { &mut outer };
            // This axis varies slowest of those seen so far.
            let faster = std::mem::take(table);
            *table = (0..shape[d]).flat_map(|i| faster.iter().map(move |&o| i * stride + o)).collect();
            stride *= shape[d];
        }
        ReduceStep { op, outer, reduced, inner }
    }

    /// # Safety
    /// `x` holds the lowered input shape's values, `y` the `outer × inner` outputs; no overlap.
    pub(crate) unsafe fn run(&self, workers: &Workers, x: Ptr, y: Ptr) {
        let inner = self.inner;
        let blocks = inner.div_ceil(LANES);
        let work = self.reduced.len() * inner.min(LANES) * 2;
        workers.for_each(self.outer.len() * blocks, work, |t| {
            let (o, b) = (t / blocks, t % blocks);
            let lo = b * LANES;
            let width = LANES.min(inner - lo);
            // SAFETY: output row o, columns lo..lo+width, belong to this task alone; every input
            // offset is inside the input (built from its shape).
            unsafe { self.block(x.add(self.outer[o] + lo), y.add(o * inner + lo), width) }
        });
    }

    unsafe fn block(&self, x: *const f32, y: *mut f32, width: usize) {
        use ReduceOp::*;
        let op = self.op;
        let mut acc = [match op {
            Max => f64::NEG_INFINITY,
            Min => f64::INFINITY,
            Prod => 1.0,
            Sum | Mean | L1 | L2 | LogSum | LogSumExp | SumSquare => 0.0,
        }; LANES];
        let acc = &mut acc[..width];
        // SAFETY (both loops): each reduced offset plus a column below `width` is in bounds.
        let row = |r: usize| unsafe { std::slice::from_raw_parts(x.add(r), width) };
        let mut shift = [0.0f64; LANES];
        if op == LogSumExp {
            // The largest value per column, subtracted before exponentiating when finite.
            let shift = &mut shift[..width];
            shift.fill(f64::NEG_INFINITY);
            for &r in &self.reduced {
                shift.iter_mut().zip(row(r)).for_each(|(m, &v)| *m = m.max(v as f64));
            }
            shift.iter_mut().for_each(|m| *m = if m.is_finite() { *m } else { 0.0 });
        }
        for &r in &self.reduced {
            let vals = row(r);
            match op {
                Sum | Mean | LogSum => acc.iter_mut().zip(vals).for_each(|(a, &v)| *a += v as f64),
                Max => acc.iter_mut().zip(vals).for_each(|(a, &v)| *a = nan_or(*a, v as f64, f64::max)),
                Min => acc.iter_mut().zip(vals).for_each(|(a, &v)| *a = nan_or(*a, v as f64, f64::min)),
                Prod => acc.iter_mut().zip(vals).for_each(|(a, &v)| *a *= v as f64),
                L1 => acc.iter_mut().zip(vals).for_each(|(a, &v)| *a += (v as f64).abs()),
                L2 | SumSquare => acc.iter_mut().zip(vals).for_each(|(a, &v)| *a += v as f64 * v as f64),
                LogSumExp => acc.iter_mut().zip(vals).zip(&shift).for_each(|((a, &v), m)| *a += (v as f64 - m).exp()),
            }
        }
        let n = self.reduced.len() as f64;
        // SAFETY: `width` outputs from `y` are this task's.
        let out = unsafe { std::slice::from_raw_parts_mut(y, width) };
        for (j, (o, &a)) in out.iter_mut().zip(acc.iter()).enumerate() {
            *o = match op {
                Mean => a / n,
                L2 => a.sqrt(),
                LogSum => a.ln(),
                LogSumExp => a.ln() + shift[j],
                Sum | Max | Min | Prod | L1 | SumSquare => a,
            } as f32;
        }
    }
}

/// ArgMax or ArgMin of f32 values along the middle axis of `[outer, n, inner]`, as i64: the
/// first extreme (or the last, with `select_last_index`); NaN never wins a comparison.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ArgStep {
    pub max: bool,
    pub last: bool,
    pub outer: usize,
    pub n: usize,
    pub inner: usize,
}

impl ArgStep {
    pub(crate) fn new(shape: &[usize], axis: usize, max: bool, last: bool) -> ArgStep {
        let prod = |d: &[usize]| d.iter().product::<usize>();
        ArgStep { max, last, outer: prod(&shape[..axis]), n: shape[axis], inner: prod(&shape[axis + 1..]) }
    }

    /// # Safety
    /// `x` holds `outer × n × inner` f32, `y` `outer × inner` i64.
    pub(crate) unsafe fn run(&self, workers: &Workers, x: Ptr, y: Ptr) {
        let (n, inner) = (self.n, self.inner);
        workers.for_each(self.outer, n * inner, |o| {
            for j in 0..inner {
                let (mut best, mut at) = (f32::NAN, 0usize);
                for k in 0..n {
                    // SAFETY: (o, k, j) is inside the input.
                    let v = unsafe { *x.add((o * n + k) * inner + j) };
                    let better = if self.max { v > best } else { v < best };
                    let tie = self.last && v == best;
                    if k == 0 || better || tie {
                        (best, at) = (v, k);
                    }
                }
                // SAFETY: output (o, j) is this task's.
                unsafe { *(y.raw() as *mut i64).add(o * inner + j) = at as i64 };
            }
        });
    }
}

/// `f(a, v)`, or NaN if either is NaN (the interpreter's Max/Min propagate NaN).
fn nan_or(a: f64, v: f64, f: fn(f64, f64) -> f64) -> f64 {
    if a.is_nan() || v.is_nan() {
        f64::NAN
    } else {
        f(a, v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_split_kept_and_reduced_axes() {
        // [2, 3, 4] reducing axis 1: rows at 0 and 12, reduced offsets 0, 4, 8, inner 4.
        let r = ReduceStep::new(ReduceOp::Sum, &[2, 3, 4], &[1]);
        assert_eq!((r.outer, r.reduced, r.inner), (vec![0, 12], vec![0, 4, 8], 4));
        // Reducing axes 0 and 2: one row per middle index, inner 1.
        let r = ReduceStep::new(ReduceOp::Sum, &[2, 3, 4], &[0, 2]);
        assert_eq!(r.outer, vec![0, 4, 8]);
        assert_eq!(r.reduced, vec![0, 1, 2, 3, 12, 13, 14, 15]);
        assert_eq!(r.inner, 1);
        // No axes: a copy.
        let r = ReduceStep::new(ReduceOp::Sum, &[2, 3], &[]);
        assert_eq!((r.outer, r.reduced, r.inner), (vec![0], vec![0], 6));
    }
}
