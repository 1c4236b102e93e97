//! MatMul, Gemm and 2-D convolution steps on the GEMM core (`gemm`). This module does what is
//! specific to each op: strided operand views for MatMul/Gemm (transposes cost nothing), the
//! unfolded input as the right-hand side of a general convolution (packed by the core straight
//! from the image), a zero-bordered copy of the input read in place for stride-1 convolutions,
//! the input itself for 1×1 stride-1 convolutions, weights packed when the plan is built, and
//! depthwise convolutions through the sliding-window kernel (`window`), which adds their bias
//! too. A GEMM-based convolution adds its bias, a residual and a ReLU to each tile of the
//! output while it is in cache ([`Epilogue`]); other epilogues run afterwards as generated
//! elementwise kernels on the output.

use super::exec::Ptr;
use super::gemm::{gemm, sample_row, Epilogue, Lhs, PackedLhs, Rhs, Strided};
use super::lower::Vid;
use super::microkernel::MAX_NR;
use super::pool::Workers;
use super::window::{Reduce, Window};

/// A matrix operand: its value and element strides (row, column, batch).
#[derive(Clone, Debug)]
pub(crate) struct Mat {
    pub vid: Vid,
    pub rs: isize,
    pub cs: isize,
    pub bs: isize,
}

/// `C[b] = alpha · A[b] · B[b]` for `b < batch`; C is contiguous `[batch, m, n]`.
#[derive(Clone, Debug)]
pub(crate) struct MatMulStep {
    pub batch: usize,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: Mat,
    pub b: Mat,
    pub alpha: f32,
    pub c: Vid,
}

/// How a 2-D convolution is computed.
#[derive(Clone, Debug)]
pub(crate) enum ConvAlgo {
    /// 1×1, stride 1, no padding: `Y_g = W_g · X_g` directly. With `rows` (each input
    /// channel's offset) the GEMM reads X's rows in place, otherwise it packs them.
    Pointwise { rows: Option<Vec<isize>> },
    /// One GEMM per group over the input's im2col matrix, which the GEMM packs straight from
    /// the input.
    Im2col,
    /// The input is copied into zero-bordered phase planes ([`Padded`]) whose rows the GEMM
    /// reads in place, so nothing is unfolded or packed; outputs are computed at the planes'
    /// width and their valid columns copied out. Both live in `scratch`, a buffer of
    /// [`Padded::scratch_len`].
    Shifted { padded: Padded, scratch: Vid },
    /// One input channel per output channel: a direct sliding-window kernel.
    Depthwise,
}

impl ConvAlgo {
    /// The algorithm's name in plans.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            ConvAlgo::Pointwise { .. } => "pointwise",
            ConvAlgo::Im2col => "im2col",
            ConvAlgo::Shifted { .. } => "shifted",
            ConvAlgo::Depthwise => "depthwise",
        }
    }
}

/// A 2-D convolution with concrete geometry (NCHW, weights `[Cout, Cin/g, kh, kw]`).
#[derive(Clone, Debug)]
pub(crate) struct ConvStep {
    pub algo: ConvAlgo,
    pub x: Vid,
    pub w: Vid,
    pub y: Vid,
    /// Constant weights packed for the GEMM, one per group (empty when the weights are computed
    /// at run time, or for `Depthwise`).
    pub packed: Vec<PackedLhs>,
    /// Per-channel bias the step adds itself: the depthwise kernel, or the GEMM's epilogue.
    pub bias: Option<Vid>,
    /// Not `Depthwise`: a value of the output's shape the GEMM's epilogue adds, then whether
    /// it applies ReLU (after the bias and the residual).
    pub residual: Option<Vid>,
    pub relu: bool,
    pub batch: usize,
    pub cin: usize,
    pub cout: usize,
    /// Each plane's geometry: input and output extents, kernel, stride, padding, dilation.
    pub window: Window,
    pub groups: usize,
}

/// The input of a `Shifted` convolution: each channel zero-bordered and split into its stride
/// phases (phase `(py, px)` holds the padded image's rows `t·sy + py` and columns `u·sx + px`),
/// only the phases some tap reads. Tap `(ki, kj)` reads phase `(ki·dy mod sy, kj·dx mod sx)`
/// shifted by `(⌊ki·dy/sy⌋, ⌊kj·dx/sx⌋)`, so with the outputs laid out at the phase width
/// (`q = oy·w + ox`, columns `ox ≥ ow` wasted) each row of the im2col matrix is one contiguous
/// run of a phase plane, from `rows[(c·kh + ki)·kw + kj]` on.
#[derive(Clone, Debug)]
pub(crate) struct Padded {
    /// Rows and columns of each phase plane.
    h: usize,
    w: usize,
    /// The phases stored, in order.
    phases: Vec<[usize; 2]>,
    /// Each im2col row's start within one group's planes.
    rows: Vec<isize>,
    /// Columns of the product: the outputs at the phase width, and where those are cropped
    /// anyway, rounded up to whole tiles (so no panel is narrow).
    columns: usize,
    /// Elements of the input, slack included: the wasted columns of the last output row, and
    /// the rounding, read past the last plane.
    input_len: usize,
}

impl Padded {
    /// The phase planes of `window` over `cin` channels, in groups of `cin_g`.
    pub(crate) fn new(win: &Window, cin: usize, cin_g: usize) -> Padded {
        let [(sy, dy), (sx, dx)] = [0, 1].map(|a| (win.stride[a], win.dilation[a]));
        let (h, w) = (win.oh + (win.kh - 1) * dy / sy, win.ow + (win.kw - 1) * dx / sx);
        let taps = || (0..win.kh).flat_map(|ki| (0..win.kw).map(move |kj| (ki * dy, kj * dx)));
        let mut phases: Vec<[usize; 2]> = taps().map(|(y, x)| [y % sy, x % sx]).collect();
        phases.sort_unstable();
        phases.dedup();
        let channel = phases.len() * h * w;
        let rows = (0..cin_g)
            .flat_map(|c| taps().map(move |t| (c, t)))
            .map(|(c, (y, x))| {
                let phase = phases.binary_search(&[y % sy, x % sx]).expect("every tap's phase is stored");
                (c * channel + phase * h * w + y / sy * w + x / sx) as isize
            })
            .collect();
        let columns = if w == win.ow { win.oh * w } else { (win.oh * w).next_multiple_of(MAX_NR) };
        let input_len = cin * channel + (win.kw - 1) * dx / sx + columns - win.oh * w;
        Padded { h, w, phases, rows, columns, input_len }
    }

    /// Whether this layout suits `win` over `cin_g` channels a group. It saves unfolding one
    /// input value into every tap's row; a 1×1 window has only one, which packing copies about
    /// as fast. The columns computed and thrown away must cost less than that saving (a third
    /// more, as for 3×3 over 7×7, still pays); and when the valid columns must be copied out,
    /// the product must be deep enough (64) for that copy to be small beside it — not so for a
    /// first convolution over three channels, where unfolding costs little.
    pub(crate) fn worth_it(&self, win: &Window, cin_g: usize) -> bool {
        let taps = win.kh * win.kw;
        taps > 1 && 3 * (self.w - win.ow) <= win.ow && (!self.wasted_columns(win) || cin_g * taps >= 64)
    }

    /// Elements of one channel's phase planes.
    fn channel(&self) -> usize {
        self.phases.len() * self.h * self.w
    }

    /// Whether outputs computed at the padded width must be copied out (else they are written
    /// in place).
    fn wasted_columns(&self, win: &Window) -> bool {
        self.w != win.ow
    }

    /// Scratch elements a run needs: the padded input, then the padded output if any.
    pub(crate) fn scratch_len(&self, win: &Window, cout: usize) -> usize {
        self.input_len + if self.wasted_columns(win) { cout * self.columns } else { 0 }
    }

    /// Copies the `cin` planes at `x` into their phase planes at `dst`, and zeros the slack.
    ///
    /// # Safety
    /// `x` holds `cin` planes of the window's input; `dst` holds `input_len` elements.
    unsafe fn fill(&self, workers: &Workers, win: &Window, cin: usize, x: Ptr, dst: Ptr) {
        let [sy, sx] = win.stride;
        let channel = self.channel();
        workers.for_each(cin, channel, |c| {
            // SAFETY: plane `c` of the input and channel `c` of the phases are in bounds.
            let (src, out) = unsafe {
                (
                    std::slice::from_raw_parts(x.add(c * win.h * win.w), win.h * win.w),
                    std::slice::from_raw_parts_mut(dst.add(c * channel), channel),
                )
            };
            for (&[py, px], plane) in self.phases.iter().zip(out.chunks_exact_mut(self.h * self.w)) {
                for (t, line) in plane.chunks_exact_mut(self.w).enumerate() {
                    match (t * sy + py).checked_sub(win.pad[0]).filter(|&iy| iy < win.h) {
                        None => line.fill(0.0),
                        Some(iy) => sample_row(line, &src[iy * win.w..][..win.w], 0, sx, win.pad[1], px),
                    }
                }
            }
        });
        // SAFETY: the slack lies inside `input_len`.
        unsafe { std::slice::from_raw_parts_mut(dst.add(cin * channel), self.input_len - cin * channel) }.fill(0.0);
    }

    /// Copies the valid columns of the `cout` padded-width output planes at `src` to `y`, then
    /// applies the epilogue (its rows are `y`'s channels) to each plane.
    ///
    /// # Safety
    /// `src` holds `cout` planes of `oh` rows of `w`, `columns` apart; `y` `cout` planes of the
    /// window's output; the epilogue as [`Epilogue::apply`] for those planes.
    unsafe fn crop(&self, workers: &Workers, win: &Window, cout: usize, src: Ptr, y: Ptr, epilogue: Option<&Epilogue>) {
        let (from, to) = (win.oh * self.w, win.oh * win.ow);
        workers.for_each(cout, from, |c| {
            // SAFETY: plane `c` of both outputs is in bounds.
            let (src, out) = unsafe {
                (
                    std::slice::from_raw_parts(src.add(c * self.columns), from),
                    std::slice::from_raw_parts_mut(y.add(c * to), to),
                )
            };
            for (line, row) in out.chunks_exact_mut(win.ow).zip(src.chunks_exact(self.w)) {
                line.copy_from_slice(&row[..win.ow]);
            }
            if let Some(e) = epilogue {
                // SAFETY: channel `c` of the output (and of the residual) is in bounds.
                unsafe { e.apply(y.raw(), to, c..c + 1, 0..to) };
            }
        });
    }
}

impl MatMulStep {
    /// # Safety
    /// `a`, `b`, `c` point at buffers of the shapes this step was lowered for.
    pub(crate) unsafe fn run(&self, workers: &Workers, a: Ptr, b: Ptr, c: Ptr) {
        for i in 0..self.batch {
            // SAFETY: offsets stay inside the batched operands by construction.
            unsafe {
                let at = |p: Ptr, m: &Mat| Strided { ptr: p.0.offset(i as isize * m.bs), rs: m.rs, cs: m.cs };
                gemm(
                    workers,
                    (self.m, self.n, self.k),
                    Lhs::Matrix { a: at(a, &self.a), alpha: self.alpha },
                    Rhs::Matrix(at(b, &self.b)),
                    c.add(i * self.m * self.n),
                    self.n,
                    None,
                )
            }
        }
    }
}

impl ConvStep {
    /// The buffer the step works in, if it needs one.
    pub(crate) fn scratch(&self) -> Option<Vid> {
        match self.algo {
            ConvAlgo::Shifted { scratch, .. } => Some(scratch),
            _ => None,
        }
    }

    /// # Safety
    /// `x`, `w`, `y` (and `bias`, `residual` and `scratch` when the step has them, else null)
    /// point at buffers of the lowered shapes; `y` overlaps none of the others.
    pub(crate) unsafe fn run(&self, workers: &Workers, [x, w, y, bias, residual, scratch]: [Ptr; 6]) {
        let (cin_g, cout_g) = (self.cin / self.groups, self.cout / self.groups);
        let win = &self.window;
        let (plane_in, plane_out) = (win.h * win.w, win.oh * win.ow);
        let k = cin_g * win.kh * win.kw;
        for img in 0..self.batch {
            // SAFETY (whole block): image and group offsets stay within the NCHW buffers, and
            // the scratch holds what `Padded::scratch_len` asked for.
            unsafe {
                let x_img = Ptr(x.add(img * self.cin * plane_in));
                let y_img = Ptr(y.add(img * self.cout * plane_out));
                if matches!(self.algo, ConvAlgo::Depthwise) {
                    self.depthwise(workers, x_img, w, bias, y_img);
                    continue;
                }
                // The epilogue of the output's channels from `c0` on (rows of C).
                let residual_img = (!residual.raw().is_null()).then(|| residual.add(img * self.cout * plane_out));
                let epilogue = |c0: usize| Epilogue {
                    bias: if bias.raw().is_null() { bias.raw() } else { bias.add(c0) },
                    residual: residual_img.map_or(std::ptr::null(), |r| r.add(c0 * plane_out)),
                    relu: self.relu,
                };
                let fused = self.bias.is_some() || self.residual.is_some() || self.relu;
                // Where the GEMM writes: the output, or the padded-width output in scratch.
                let (out, ldc) = match &self.algo {
                    ConvAlgo::Shifted { padded: pad, .. } => {
                        pad.fill(workers, win, self.cin, x_img, scratch);
                        (if pad.wasted_columns(win) { scratch.add(pad.input_len) } else { y_img.raw() }, pad.columns)
                    }
                    _ => (y_img.raw(), plane_out),
                };
                for g in 0..self.groups {
                    let x_g = x_img.add(g * cin_g * plane_in);
                    let rhs = match &self.algo {
                        ConvAlgo::Shifted { padded, .. } => {
                            Rhs::Shifted { x: scratch.add(g * cin_g * padded.channel()), rows: &padded.rows }
                        }
                        ConvAlgo::Pointwise { rows: Some(rows) } => Rhs::Shifted { x: x_g, rows },
                        ConvAlgo::Pointwise { rows: None } => {
                            Rhs::Matrix(Strided { ptr: x_g, rs: plane_out as isize, cs: 1 })
                        }
                        _ => Rhs::Unfold { x: x_g, window: win },
                    };
                    let weights = match self.packed.get(g) {
                        Some(packed) => Lhs::Packed(packed),
                        None => {
                            Lhs::Matrix { a: Strided { ptr: w.add(g * cout_g * k), rs: k as isize, cs: 1 }, alpha: 1.0 }
                        }
                    };
                    // Outputs computed at the padded width get their epilogue as they are cropped.
                    let in_place = out == y_img.raw();
                    let epi = (fused && in_place).then(|| epilogue(g * cout_g));
                    gemm(workers, (cout_g, ldc, k), weights, rhs, out.add(g * cout_g * ldc), ldc, epi.as_ref());
                }
                if let ConvAlgo::Shifted { padded: pad, .. } = &self.algo {
                    if pad.wasted_columns(win) {
                        pad.crop(workers, win, self.cout, Ptr(out), y_img, fused.then(|| epilogue(0)).as_ref());
                    }
                }
            }
        }
    }

    /// One filter per channel: a weighted sliding window over each plane, plus the channel's
    /// bias when there is one (`bias` null otherwise).
    unsafe fn depthwise(&self, workers: &Workers, x: Ptr, w: Ptr, bias: Ptr, y: Ptr) {
        let win = &self.window;
        let (plane_in, plane_out, taps) = (win.h * win.w, win.oh * win.ow, win.kh * win.kw);
        workers.for_each(self.cout, plane_out * taps, |c| {
            // SAFETY: channel `c` of input, weights and output are in bounds.
            let (src, filt, dst) = unsafe {
                (
                    std::slice::from_raw_parts(x.add(c * plane_in), plane_in),
                    std::slice::from_raw_parts(w.add(c * taps), taps),
                    std::slice::from_raw_parts_mut(y.add(c * plane_out), plane_out),
                )
            };
            // SAFETY: a non-null bias holds one value per channel.
            let bias = if bias.raw().is_null() { 0.0 } else { unsafe { *bias.add(c) } };
            win.plane(Reduce::Dot { weights: filt, bias }, src, dst);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jit::gemm::block_depth;
    use crate::jit::gemm::tests::{assert_close, case_window, conv_definition, values, CONV_CASES};
    use crate::jit::microkernel::{all, best};

    /// The unfolding and the shifted algorithm on two images, with weights packed for every
    /// kernel (each kernel runs its own packing) and weights packed on the fly, on one and two
    /// threads, with and without the epilogue (bias, residual, ReLU), against the definition:
    /// every case of the GEMM's convolution test, plus grouped convolutions.
    #[test]
    fn convolution_algorithms_match_the_definition() {
        let grouped = [(4, 9, 9, 6, 3, 3, [1, 1], [1, 1], [1, 1], 2), (6, 10, 12, 9, 3, 3, [2, 2], [1, 1], [1, 1], 3)];
        let cases = CONV_CASES.iter().map(|&(a, b, c, d, e, f, g, h, i)| (a, b, c, d, e, f, g, h, i, 1)).chain(grouped);
        for (cin, h, w, cout, kh, kw, stride, pad, dilation, groups) in cases {
            let win = case_window(h, w, kh, kw, stride, pad, dilation);
            let (cin_g, k, batch, plane) = (cin / groups, cin / groups * kh * kw, 2, win.oh * win.ow);
            let (x, wt) = (values(batch * cin * h * w, 7), values(cout * k, 8));
            let (bias, residual) = (values(cout, 9), values(batch * cout * plane, 10));
            let conv: Vec<f64> = x
                .chunks_exact(cin * h * w)
                .flat_map(|img| conv_definition(img, &wt, cin, cout, groups, &win))
                .collect();
            let fused: Vec<f64> = conv
                .iter()
                .enumerate()
                .map(|(e, v)| (v + bias[e / plane % cout] as f64 + residual[e] as f64).max(0.0))
                .collect();
            let kernels = all().into_iter().map(Some).chain([None]);
            let variants =
                kernels.flat_map(|k| [(k, false), (k, true)]).flat_map(|(k, p)| [(k, p, false), (k, p, true)]);
            for (kernel, in_place, epilogue) in variants {
                if in_place && kernel.unwrap_or_else(best).shifted.is_none() {
                    continue;
                }
                let padded = Padded::new(&win, cin, cin_g);
                let scratch_len = if in_place { padded.scratch_len(&win, cout) } else { 0 };
                let algo = if in_place { ConvAlgo::Shifted { padded, scratch: 0 } } else { ConvAlgo::Im2col };
                let packed = kernel.map_or(Vec::new(), |kernel| {
                    let m = cout / groups;
                    wt.chunks_exact(m * k).map(|g| PackedLhs::new(kernel, g, m, k, block_depth(k, in_place))).collect()
                });
                let (bias_vid, residual_vid) = if epilogue { (Some(1), Some(2)) } else { (None, None) };
                let step = ConvStep {
                    algo,
                    x: 0,
                    w: 0,
                    y: 0,
                    packed,
                    bias: bias_vid,
                    residual: residual_vid,
                    relu: epilogue,
                    batch,
                    cin,
                    cout,
                    window: win,
                    groups,
                };
                let want = if epilogue { &fused } else { &conv };
                for threads in [1, 2] {
                    let workers = Workers::new(threads).unwrap();
                    let mut scratch = vec![f32::NAN; scratch_len];
                    let mut y = vec![f32::NAN; want.len()];
                    let ptr = |p: *const f32| Ptr(p as *mut f32);
                    let or_null = |p: *const f32| ptr(if epilogue { p } else { std::ptr::null() });
                    let ptrs = [
                        ptr(x.as_ptr()),
                        ptr(wt.as_ptr()),
                        Ptr(y.as_mut_ptr()),
                        or_null(bias.as_ptr()),
                        or_null(residual.as_ptr()),
                        Ptr(scratch.as_mut_ptr()),
                    ];
                    // SAFETY: every buffer has the extent the step was built for.
                    unsafe { step.run(&workers, ptrs) };
                    let name = kernel.map_or("unpacked".to_string(), |k| format!("{}x{}", k.mr, k.nr));
                    let what = format!("{}, {name} kernel, {threads} threads, {groups} groups", step.algo.name());
                    assert_close(&y, want, &format!("{what}, epilogue {epilogue}, {win:?}"));
                }
            }
        }
    }
}
