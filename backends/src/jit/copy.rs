//! Data movement as per-axis offset tables: Slice, Split, Pad (every mode), Tile and Gather with
//! constant indices all map each output coordinate along an axis to an input offset on its own,
//! so one table per output axis, built at lowering, describes the whole copy (an entry of
//! `OUTSIDE` reads the pad constant). Axes whose tables are affine and adjacent in memory are
//! merged first, so most copies move whole contiguous runs with `memcpy`. Parallel over rows.
//! Gather with indices computed at run time (token ids into an embedding table) copies whole
//! rows by the checked indices ([`GatherStep`]). A copy that is one contiguous run of an arena
//! value is not run at all: lowering makes its output a view ([`CopyStep::run_start`]).

use super::exec::Ptr;
use super::pool::Workers;
use kiln_ir::op::{PadMode, SliceAxis};

/// A table entry that reads the fill value.
const OUTSIDE: isize = isize::MIN;

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CopyStep {
    /// Per output axis (outermost first), the input offset of each coordinate.
    pub tables: Vec<Vec<isize>>,
    pub fill: f32,
    /// The last table is `start, start+1, …` (rows copy as one block).
    contiguous: bool,
}

impl CopyStep {
    fn new(tables: Vec<Vec<isize>>, fill: f32) -> CopyStep {
        let mut merged: Vec<Vec<isize>> = Vec::with_capacity(tables.len());
        for t in tables {
            match merged.last_mut() {
                Some(prev) if can_merge(prev, &t) => {
                    *prev = prev.iter().flat_map(|&p| t.iter().map(move |&q| p + q)).collect();
                }
                _ => merged.push(t),
            }
        }
        if merged.is_empty() {
            merged.push(vec![0]);
        }
        let last = merged.last().expect("at least one table");
        let contiguous = affine(last).is_some_and(|(_, step)| step == 1 || last.len() == 1);
        CopyStep { tables: merged, fill, contiguous }
    }

    /// Where the output starts in the input, when it is one contiguous run of it (a slice or
    /// split along the outermost axis that is not 1): the output can then be a view.
    pub(crate) fn run_start(&self) -> Option<usize> {
        let [only] = self.tables.as_slice() else { return None };
        (self.contiguous && !only.is_empty()).then(|| usize::try_from(only[0]).ok()).flatten()
    }

    /// A Slice of `shape` (contiguous) by the resolved per-axis `plan`.
    pub(crate) fn slice(shape: &[usize], plan: &[SliceAxis]) -> CopyStep {
        let tables = strides(shape)
            .into_iter()
            .zip(plan)
            .map(|(st, p)| (0..p.len as isize).map(|i| (p.start as isize + i * p.step as isize) * st).collect())
            .collect();
        CopyStep::new(tables, 0.0)
    }

    /// Pad of `shape` by per-axis `(begin, end)` amounts (negative crops); `None` when an axis
    /// would be negative or an empty axis is padded by reading from it.
    pub(crate) fn pad(shape: &[usize], amounts: &[(i64, i64)], mode: PadMode, fill: f32) -> Option<CopyStep> {
        let mut tables = Vec::with_capacity(shape.len());
        for ((&n, &(b, e)), st) in shape.iter().zip(amounts).zip(strides(shape)) {
            let len = usize::try_from(n as i64 + b + e).ok()?;
            if n == 0 && len > 0 && mode != PadMode::Constant {
                return None;
            }
            let source = |o: usize| crate::interp::pad_source(mode, o, b, n);
            tables.push((0..len).map(|o| source(o).map_or(OUTSIDE, |i| i as isize * st)).collect());
        }
        Some(CopyStep::new(tables, fill))
    }

    /// Tile of `shape` by `repeats` per axis.
    pub(crate) fn tile(shape: &[usize], repeats: &[usize]) -> CopyStep {
        let tables = shape
            .iter()
            .zip(repeats)
            .zip(strides(shape))
            .map(|((&n, &r), st)| (0..n * r).map(|o| (o % n) as isize * st).collect())
            .collect();
        CopyStep::new(tables, 0.0)
    }

    /// Gather along `axis` of `shape` at `indices` (flattened; negative counts from the end);
    /// `None` if an index is out of range.
    pub(crate) fn gather(shape: &[usize], axis: usize, indices: &[i64]) -> Option<CopyStep> {
        let st = strides(shape);
        let n = shape[axis] as i64;
        let mut tables: Vec<Vec<isize>> =
            (0..axis).map(|d| (0..shape[d] as isize).map(|i| i * st[d]).collect()).collect();
        let picked: Option<Vec<isize>> = indices
            .iter()
            .map(|&i| {
                let i = if i < 0 { i + n } else { i };
                (0..n).contains(&i).then_some(i as isize * st[axis])
            })
            .collect();
        tables.push(picked?);
        tables.extend((axis + 1..shape.len()).map(|d| (0..shape[d] as isize).map(|i| i * st[d]).collect()));
        Some(CopyStep::new(tables, 0.0))
    }

    /// # Safety
    /// `x` holds the input the tables were built for, `y` the output; they do not overlap.
    pub(crate) unsafe fn run(&self, workers: &Workers, x: Ptr, y: Ptr) {
        let (outer, last) = self.tables.split_at(self.tables.len() - 1);
        let last = &last[0];
        let inner = last.len();
        let rows: usize = outer.iter().map(Vec::len).product();
        workers.for_each(rows, inner, |r| {
            let mut base = 0isize;
            let mut rest = r;
            let mut inside = true;
            for t in outer.iter().rev() {
                let off = t[rest % t.len()];
                rest /= t.len();
                inside &= off != OUTSIDE;
                base = base.wrapping_add(off);
            }
            // SAFETY: row r of the output is this task's; every table offset that is not
            // OUTSIDE lies inside the input (built from its shape).
            unsafe {
                let dst = std::slice::from_raw_parts_mut(y.add(r * inner), inner);
                if !inside {
                    dst.fill(self.fill);
                } else if self.contiguous {
                    std::ptr::copy_nonoverlapping(x.raw().offset(base + last[0]), dst.as_mut_ptr(), inner);
                } else {
                    for (o, &off) in dst.iter_mut().zip(last) {
                        *o = if off == OUTSIDE { self.fill } else { *x.raw().offset(base + off) };
                    }
                }
            }
        });
    }
}

/// Gather of f32 data `[outer, n, inner]` along the middle axis at `count` run-time indices
/// (i32 or i64; negative counts from the end), each copying a row of `inner`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct GatherStep {
    pub outer: usize,
    pub n: usize,
    pub inner: usize,
    pub count: usize,
    pub wide: bool,
}

impl GatherStep {
    /// # Safety
    /// `x` holds the data, `idx` `count` indices (i64 when `wide`, else i32), `y`
    /// `outer × count × inner` values; `y` overlaps neither.
    pub(crate) unsafe fn run(&self, workers: &Workers, x: Ptr, idx: Ptr, y: Ptr) -> Result<(), String> {
        let (n, inner, count) = (self.n, self.inner, self.count);
        // SAFETY: `idx` holds `count` indices of the planned width.
        let index = |j: usize| unsafe {
            if self.wide {
                *(idx.raw() as *const i64).add(j)
            } else {
                *(idx.raw() as *const i32).add(j) as i64
            }
        };
        let resolved = |j: usize| {
            let i = index(j);
            let i = if i < 0 { i + n as i64 } else { i };
            (0..n as i64).contains(&i).then_some(i as usize)
        };
        if let Some(j) = (0..count).find(|&j| resolved(j).is_none()) {
            return Err(format!("index {} is out of range for an axis of {n}", index(j)));
        }
        workers.for_each(self.outer * count, inner, |t| {
            let (o, j) = (t / count, t % count);
            let i = resolved(j).expect("checked above");
            // SAFETY: row (o, i) of the input and row t of the output are in bounds.
            unsafe { std::ptr::copy_nonoverlapping(x.add((o * n + i) * inner), y.add(t * inner), inner) };
        });
        Ok(())
    }
}

/// Contiguous strides of `shape`, in elements.
fn strides(shape: &[usize]) -> Vec<isize> {
    let mut st = vec![1isize; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        st[d] = st[d + 1] * shape[d + 1] as isize;
    }
    st
}

/// `(start, step)` when the table is an arithmetic sequence with no `OUTSIDE` entry.
fn affine(t: &[isize]) -> Option<(isize, isize)> {
    if t.contains(&OUTSIDE) {
        return None;
    }
    let (&first, step) = (t.first()?, if t.len() > 1 { t[1] - t[0] } else { 0 });
    let ok = t.iter().enumerate().all(|(i, &v)| v == first + i as isize * step);
    ok.then_some((first, step))
}

/// Whether the outer table `a` and the inner table `b` walk memory as one affine table.
fn can_merge(a: &[isize], b: &[isize]) -> bool {
    match (affine(a), affine(b)) {
        (Some((_, sa)), Some((_, sb))) => a.len() == 1 || b.len() == 1 || sa == sb * b.len() as isize,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affine_axes_merge_into_one_run() {
        // Slicing rows 1..3 of a [4, 5] matrix is one run of 10 from offset 5.
        let plan = [SliceAxis { start: 1, step: 1, len: 2 }, SliceAxis { start: 0, step: 1, len: 5 }];
        let c = CopyStep::slice(&[4, 5], &plan);
        assert_eq!(c.tables, vec![(5..15).collect::<Vec<isize>>()]);
        assert!(c.contiguous);
        // A column slice stays two axes.
        let plan = [SliceAxis { start: 0, step: 1, len: 4 }, SliceAxis { start: 1, step: 1, len: 2 }];
        assert_eq!(CopyStep::slice(&[4, 5], &plan).tables.len(), 2);
    }

    #[test]
    fn pads_read_outside_and_tiles_wrap() {
        let c = CopyStep::pad(&[3], &[(1, 2)], PadMode::Constant, 0.0).unwrap();
        assert_eq!(c.tables, vec![vec![OUTSIDE, 0, 1, 2, OUTSIDE, OUTSIDE]]);
        assert!(!c.contiguous);
        assert!(CopyStep::pad(&[3], &[(-2, -2)], PadMode::Constant, 0.0).is_none());
        assert_eq!(CopyStep::tile(&[2], &[3]).tables, vec![vec![0, 1, 0, 1, 0, 1]]);
        assert!(CopyStep::gather(&[3, 2], 0, &[3]).is_none());
        assert_eq!(CopyStep::gather(&[3, 2], 0, &[-1, 0]).unwrap().tables, vec![vec![4, 0], vec![0, 1]]);
    }
}
