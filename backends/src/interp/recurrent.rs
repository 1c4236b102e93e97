//! LSTM, GRU and RNN ([`Recurrent`]; semantics in `kiln_ir::op::recurrent`). Per direction, the
//! input projection `X·Wᵀ` (plus the biases that sit outside the gates' products) is one matrix
//! product over every time step; each step then adds one recurrent product `h·Rᵀ` and applies the
//! gate equations row by row. Rows past their sequence length keep their state and write zeros.

use super::kernel::{alloc, bail, cast_to, finish, input, opt_input, show, standard, with_float, KResult, Real};
use kiln_ir::op::{recurrent_slot as slot, Activation, Cell, Recurrent};
use kiln_ir::{Element, Tensor};
use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array2, ArrayD, ArrayView2, Axis, IxDyn};

/// Runs the layer; returns the first `num_outputs` of Y, Y_h, Y_c.
pub(crate) fn recurrent(r: &Recurrent, ins: &[Option<Tensor>], num_outputs: usize) -> KResult<Vec<Tensor>> {
    let dtype = input(ins, slot::X)?.dtype();
    with_float!(dtype, T => {
        let outs = run::<T>(r, ins)?;
        Ok(outs.into_iter().take(num_outputs.max(1)).map(|a| finish(a, dtype)).collect())
    })
}

/// The layer's extents, checked against every input.
struct Dims {
    seq: usize,
    batch: usize,
    input: usize,
    dirs: usize,
    hidden: usize,
    gates: usize,
}

/// An input as row-major `T`s after checking its shape (`None` when absent).
fn operand<T: Element>(ins: &[Option<Tensor>], i: usize, what: &str, want: &[usize]) -> KResult<Option<Vec<T>>> {
    let Some(t) = opt_input(ins, i) else { return Ok(None) };
    if t.shape() != want {
        bail!("{what} has shape {} but must be {}", show(t.shape()), show(want));
    }
    let a = cast_to::<T>(t);
    Ok(Some(standard(&a).iter().copied().collect()))
}

/// A state input (initial_h/c) in direction-major form `[dirs, batch, hidden]`.
fn state<T: Element>(r: &Recurrent, ins: &[Option<Tensor>], i: usize, what: &str, d: &Dims) -> KResult<Option<Vec<T>>> {
    let want = r.state_shape(d.batch, d.dirs, d.hidden);
    let Some(v) = operand::<T>(ins, i, what, &want)? else { return Ok(None) };
    if !r.batch_major {
        return Ok(Some(v));
    }
    let a = ArrayD::from_shape_vec(IxDyn(&want), v).expect("shape checked");
    Ok(Some(a.permuted_axes(IxDyn(&[1, 0, 2])).as_standard_layout().iter().copied().collect()))
}

fn run<T: Real>(r: &Recurrent, ins: &[Option<Tensor>]) -> KResult<Vec<ArrayD<T>>> {
    let xt = input(ins, slot::X)?;
    if xt.rank() != 3 {
        bail!("X must have rank 3, got shape {}", show(xt.shape()));
    }
    let (sa, ba) = r.seq_batch_axes();
    let d = Dims {
        seq: xt.shape()[sa],
        batch: xt.shape()[ba],
        input: xt.shape()[2],
        dirs: r.direction.count(),
        hidden: r.hidden_size,
        gates: r.cell.gates(),
    };
    let (gh, h) = (d.gates * d.hidden, d.hidden);
    let xa = cast_to::<T>(xt);
    let x_view = if r.batch_major { xa.view().permuted_axes(IxDyn(&[1, 0, 2])) } else { xa.view() };
    let x = x_view.as_standard_layout();
    let x2 = ArrayView2::from_shape((d.seq * d.batch, d.input), x.as_slice().expect("standard layout"))
        .expect("X is [seq, batch, input]");
    let w = operand::<T>(ins, slot::W, "W", &[d.dirs, gh, d.input])?.ok_or("required input W is missing")?;
    let rw = operand::<T>(ins, slot::R, "R", &[d.dirs, gh, h])?.ok_or("required input R is missing")?;
    let b = operand::<T>(ins, slot::B, "B", &[d.dirs, 2 * gh])?;
    let lens = sequence_lens(ins, &d)?;
    let init_h = state::<T>(r, ins, slot::INITIAL_H, "initial_h", &d)?;
    let (init_c, p) = if r.cell.has_cell_state() {
        (state::<T>(r, ins, slot::INITIAL_C, "initial_c", &d)?, operand::<T>(ins, slot::P, "P", &[d.dirs, 3 * h])?)
    } else {
        (None, None)
    };
    alloc(T::DTYPE, &[d.seq * d.batch, gh])?;
    alloc(T::DTYPE, &[d.seq, d.dirs, d.batch, h])?;
    let mut y = vec![T::zero(); d.seq * d.dirs * d.batch * h];
    let mut y_h = vec![T::zero(); d.dirs * d.batch * h];
    let mut y_c = y_h.clone();
    // GRU with linear_before_reset keeps Rbh inside the reset gate's product.
    let inner_rbh = matches!(r.cell, Cell::Gru { linear_before_reset: true });
    for dir in 0..d.dirs {
        let wd = ArrayView2::from_shape((gh, d.input), &w[dir * gh * d.input..(dir + 1) * gh * d.input]).expect("W");
        let rd = ArrayView2::from_shape((gh, h), &rw[dir * gh * h..(dir + 1) * gh * h]).expect("R");
        // The projection of every step at once, with the biases outside the recurrent product.
        let mut xw = Array2::<T>::zeros((d.seq * d.batch, gh));
        general_mat_mul(T::one(), &x2, &wd.t(), T::zero(), &mut xw);
        if let Some(b) = &b {
            let (wb, rb) = (&b[dir * 2 * gh..dir * 2 * gh + gh], &b[dir * 2 * gh + gh..(dir + 1) * 2 * gh]);
            for mut row in xw.rows_mut() {
                for (j, v) in row.iter_mut().enumerate() {
                    *v += wb[j] + if inner_rbh && j >= 2 * h { T::zero() } else { rb[j] };
                }
            }
        }
        let part = dir * d.batch * h..(dir + 1) * d.batch * h;
        let mut st = Step {
            r,
            acts: r.direction_activations(dir),
            clip: r.clip.map(f64::from),
            hidden: h,
            rd,
            xw: &xw,
            batch: d.batch,
            h: init_state(init_h.as_ref().map(|v| &v[part.clone()]), d.batch, h),
            c: init_state(init_c.as_ref().map(|v| &v[part.clone()]), d.batch, h),
            hr: Array2::zeros((d.batch, gh)),
            p: p.as_ref().map(|p| &p[dir * 3 * h..(dir + 1) * 3 * h]),
            rbh: b.as_ref().filter(|_| inner_rbh).map(|b| &b[dir * 2 * gh + gh + 2 * h..(dir + 1) * 2 * gh]),
        };
        let reverse = r.direction.is_reverse(dir);
        for s in 0..d.seq {
            // Row b reads time `times[b]`, or is finished (`None`).
            let times: Vec<Option<usize>> =
                lens.iter().map(|&len| (s < len).then(|| if reverse { len - 1 - s } else { s })).collect();
            st.step(&times);
            for (bi, t) in times.iter().enumerate() {
                if let Some(t) = *t {
                    let at = ((t * d.dirs + dir) * d.batch + bi) * h;
                    y[at..at + h].copy_from_slice(st.h.row(bi).as_slice().expect("row-major"));
                }
            }
        }
        let at = dir * d.batch * h;
        y_h[at..at + d.batch * h].copy_from_slice(st.h.as_slice().expect("row-major"));
        y_c[at..at + d.batch * h].copy_from_slice(st.c.as_slice().expect("row-major"));
    }
    let y = ArrayD::from_shape_vec(IxDyn(&[d.seq, d.dirs, d.batch, h]), y).expect("Y");
    let states = |v: Vec<T>| ArrayD::from_shape_vec(IxDyn(&[d.dirs, d.batch, h]), v).expect("state");
    let (y_h, y_c) = (states(y_h), states(y_c));
    if r.batch_major {
        let relayout = |a: ArrayD<T>, perm: &[usize]| a.permuted_axes(IxDyn(perm)).as_standard_layout().into_owned();
        Ok(vec![relayout(y, &[2, 0, 1, 3]), relayout(y_h, &[1, 0, 2]), relayout(y_c, &[1, 0, 2])])
    } else {
        Ok(vec![y, y_h, y_c])
    }
}

/// Each batch row's sequence length (all `seq` without sequence_lens).
fn sequence_lens(ins: &[Option<Tensor>], d: &Dims) -> KResult<Vec<usize>> {
    let Some(t) = opt_input(ins, slot::SEQUENCE_LENS) else { return Ok(vec![d.seq; d.batch]) };
    if t.shape() != [d.batch] {
        bail!("sequence_lens has shape {} but must be [{}]", show(t.shape()), d.batch);
    }
    t.to_i64_vec()
        .into_iter()
        .map(|l| match usize::try_from(l) {
            Ok(l) if l <= d.seq => Ok(l),
            _ => bail!("sequence length {l} is outside 0..={}", d.seq),
        })
        .collect()
}

fn init_state<T: Real>(v: Option<&[T]>, batch: usize, hidden: usize) -> Array2<T> {
    match v {
        Some(v) => Array2::from_shape_vec((batch, hidden), v.to_vec()).expect("state checked"),
        None => Array2::zeros((batch, hidden)),
    }
}

/// One direction's running state and what each step reads.
struct Step<'a, T> {
    r: &'a Recurrent,
    acts: &'a [Activation],
    clip: Option<f64>,
    hidden: usize,
    /// `[gates·hidden, hidden]`.
    rd: ArrayView2<'a, T>,
    /// `[seq·batch, gates·hidden]`: the projected inputs with their outer biases.
    xw: &'a Array2<T>,
    batch: usize,
    h: Array2<T>,
    c: Array2<T>,
    /// Scratch for the recurrent product `[batch, gates·hidden]`.
    hr: Array2<T>,
    /// This direction's peepholes `[3·hidden]` (i, o, f).
    p: Option<&'a [T]>,
    /// GRU with `linear_before_reset`: Rbh, the recurrent bias inside the reset product.
    rbh: Option<&'a [T]>,
}

impl<T: Real> Step<'_, T> {
    /// Activation `k` of this direction on a clipped pre-activation.
    fn act(&self, k: usize, v: T) -> T {
        let v = v.to_f64();
        let v = self.clip.map_or(v, |c| v.clamp(-c, c));
        T::from_f64(self.acts[k].apply(v))
    }

    fn step(&mut self, times: &[Option<usize>]) {
        match self.r.cell {
            Cell::Lstm { input_forget } => self.lstm(times, input_forget),
            Cell::Gru { linear_before_reset } => self.gru(times, linear_before_reset),
            Cell::Rnn => self.rnn(times),
        }
    }

    /// `hr = h·Rᵀ` over rows `rows` of R.
    fn recur(&mut self, rows: std::ops::Range<usize>) {
        let r = self.rd.slice(s![rows.clone(), ..]);
        let mut out = self.hr.slice_mut(s![.., rows]);
        general_mat_mul(T::one(), &self.h, &r.t(), T::zero(), &mut out);
    }

    /// The projected input row of batch row `b` at time `t`.
    fn x(&self, t: usize, b: usize) -> ndarray::ArrayView1<'_, T> {
        self.xw.index_axis(Axis(0), t * self.batch + b)
    }

    fn rnn(&mut self, times: &[Option<usize>]) {
        self.recur(0..self.hidden);
        for (b, t) in times.iter().enumerate() {
            let Some(t) = *t else { continue };
            for k in 0..self.hidden {
                let v = self.act(0, self.x(t, b)[k] + self.hr[(b, k)]);
                self.h[(b, k)] = v;
            }
        }
    }

    fn lstm(&mut self, times: &[Option<usize>], input_forget: bool) {
        let h = self.hidden;
        self.recur(0..4 * h);
        let one = T::one();
        for (b, t) in times.iter().enumerate() {
            let Some(t) = *t else { continue };
            for k in 0..h {
                let pre = |g: usize| self.x(t, b)[g * h + k] + self.hr[(b, g * h + k)];
                // Peepholes i, o, f.
                let peep = |g: usize| self.p.map_or(T::zero(), |p| p[g * h + k]);
                let c_prev = self.c[(b, k)];
                let i = self.act(0, pre(0) + peep(0) * c_prev);
                let f = if input_forget { one - i } else { self.act(0, pre(2) + peep(2) * c_prev) };
                let cand = self.act(1, pre(3));
                let c = f * c_prev + i * cand;
                let o = self.act(0, pre(1) + peep(1) * c);
                self.c[(b, k)] = c;
                self.h[(b, k)] = o * T::from_f64(self.acts[2].apply(c.to_f64()));
            }
        }
    }

    fn gru(&mut self, times: &[Option<usize>], linear_before_reset: bool) {
        let h = self.hidden;
        let one = T::one();
        if linear_before_reset {
            self.recur(0..3 * h);
        } else {
            // The candidate's recurrent product reads r⊙h, so it waits for the reset gate.
            self.recur(0..2 * h);
            let mut rh = Array2::<T>::zeros((self.batch, h));
            for (b, t) in times.iter().enumerate() {
                let Some(t) = *t else { continue };
                for k in 0..h {
                    let r = self.act(0, self.x(t, b)[h + k] + self.hr[(b, h + k)]);
                    rh[(b, k)] = r * self.h[(b, k)];
                }
            }
            let rh_rows = self.rd.slice(s![2 * h..3 * h, ..]);
            let mut out = self.hr.slice_mut(s![.., 2 * h..3 * h]);
            general_mat_mul(one, &rh, &rh_rows.t(), T::zero(), &mut out);
        }
        for (b, t) in times.iter().enumerate() {
            let Some(t) = *t else { continue };
            for k in 0..h {
                let pre = |g: usize| self.x(t, b)[g * h + k] + self.hr[(b, g * h + k)];
                let z = self.act(0, pre(0));
                let cand = if linear_before_reset {
                    let r = self.act(0, pre(1));
                    let rbh = self.rbh.map_or(T::zero(), |v| v[k]);
                    self.act(1, self.x(t, b)[2 * h + k] + r * (self.hr[(b, 2 * h + k)] + rbh))
                } else {
                    self.act(1, pre(2))
                };
                self.h[(b, k)] = (one - z) * cand + z * self.h[(b, k)];
            }
        }
    }
}
