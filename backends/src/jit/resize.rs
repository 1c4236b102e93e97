//! Resize over the last two axes (every mode and coordinate transformation the interpreter
//! supports: nearest, linear, cubic, antialiased, `tf_crop_and_resize`'s extrapolation), with
//! the taps of each output row and column — input indices and weights — computed once at
//! lowering by the interpreter's own coordinate code, as ONNX Runtime precomputes its tables.
//! Parallel over output rows.

use super::exec::Ptr;
use super::pool::Workers;
use crate::interp::{roi_per_axis, source_coord, taps, Taps};
use kiln_ir::op::{Resize, ResizeCoord};
use kiln_ir::Tensor;

/// Per output index along an axis: the input taps, or `None` for the extrapolation value.
type AxisTaps = Vec<Option<Vec<(usize, f32)>>>;

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ResizeStep {
    /// Leading dims flattened (they must not change size).
    pub planes: usize,
    pub h: usize,
    pub w: usize,
    pub rows: AxisTaps,
    pub cols: AxisTaps,
    pub extrapolation: f32,
}

impl ResizeStep {
    /// Resize of `shape` to `out`; `scales`, `sizes` and `roi` are the op's constant inputs.
    /// `None` when a leading axis changes (those stay with the interpreter).
    pub(crate) fn new(
        r: &Resize,
        shape: &[usize],
        scales: Option<&[f32]>,
        sizes: Option<&[i64]>,
        roi: Option<&Tensor>,
    ) -> Option<ResizeStep> {
        let rank = shape.len();
        if rank < 2 {
            return None;
        }
        let (out, sc) = r.output_shape(shape, scales, sizes).ok()?;
        let roi = roi_per_axis(r, rank, roi).ok()?;
        // The taps the interpreter applies along axis d (none: it leaves the axis alone).
        let axis_taps = |d: usize| -> Option<Vec<Taps>> {
            let (n_in, n_out) = (shape[d], out[d]);
            if n_in == n_out && sc[d] == 1.0 && r.coord != ResizeCoord::TfCropAndResize {
                return Some((0..n_out).map(|o| Some(vec![(o, 1.0)])).collect());
            }
            if n_in == 0 && n_out > 0 {
                return None;
            }
            let s = sc[d] as f64;
            Some((0..n_out).map(|o| taps(r, source_coord(r.coord, o, s, n_in, n_out, roi[d]), n_in, s)).collect())
        };
        // Leading axes must come out as they went in.
        let identity = |t: &[Taps]| {
            t.iter().enumerate().all(|(o, taps)| {
                taps.as_ref().is_some_and(|taps| taps.iter().all(|&(i, w)| (i == o && w == 1.0) || w == 0.0))
            })
        };
        if !(0..rank - 2).all(|d| axis_taps(d).is_some_and(|t| t.len() == shape[d] && identity(&t))) {
            return None;
        }
        let axis = |d: usize| -> Option<AxisTaps> {
            let to_f32 = |t: Vec<(usize, f64)>| t.into_iter().map(|(i, w)| (i, w as f32)).collect();
            Some(axis_taps(d)?.into_iter().map(|t| t.map(to_f32)).collect())
        };
        Some(ResizeStep {
            planes: shape[..rank - 2].iter().product(),
            h: shape[rank - 2],
            w: shape[rank - 1],
            rows: axis(rank - 2)?,
            cols: axis(rank - 1)?,
            extrapolation: r.extrapolation_value,
        })
    }

    /// # Safety
    /// `x` holds `planes × h × w` values, `y` `planes × rows × cols`; no overlap.
    pub(crate) unsafe fn run(&self, workers: &Workers, x: Ptr, y: Ptr) {
        let (oh, ow) = (self.rows.len(), self.cols.len());
        let plane = self.h * self.w;
        workers.for_each(self.planes * oh, ow * 4, |t| {
            let (p, r) = (t / oh, t % oh);
            // SAFETY: output row t is this task's; taps index inside plane p of the input.
            let dst = unsafe { std::slice::from_raw_parts_mut(y.add(t * ow), ow) };
            let src = unsafe { std::slice::from_raw_parts(x.add(p * plane), plane) };
            let Some(row_taps) = &self.rows[r] else {
                dst.fill(self.extrapolation);
                return;
            };
            for (o, col) in dst.iter_mut().zip(&self.cols) {
                *o = match col {
                    None => self.extrapolation,
                    Some(col) => row_taps
                        .iter()
                        .map(|&(i, wi)| {
                            let line = &src[i * self.w..][..self.w];
                            wi * col.iter().map(|&(j, wj)| wj * line[j]).sum::<f32>()
                        })
                        .sum(),
                };
            }
        });
    }
}
