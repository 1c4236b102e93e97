//! Control flow: If, Loop and Scan run their nested graphs recursively. Captured outer values are
//! the node's trailing inputs and map onto the body's trailing inputs (see `kiln_ir::op::control`).
//! Loop and Scan stop at the current limits: iterations, accumulated scan bytes, the deadline.

use super::exec::tensor_bytes;
use super::kernel::{axis, bail, input, opt_input, show, KResult};
use super::run_body;
use kiln_ir::limits::{self, Limit, LimitError, Limits};
use kiln_ir::op::{Loop, Scan};
use kiln_ir::{with_array, ArcArrayD, Element, Graph, Tensor};
use ndarray::Axis;

/// The single boolean a condition tensor holds.
fn truth(t: &Tensor, what: &str) -> KResult<bool> {
    match t.to_i64_vec().as_slice() {
        [v] => Ok(*v != 0),
        _ => bail!("{what} must hold one element, got shape {}", show(t.shape())),
    }
}

/// If(cond, captures...): captures either feed both branches whole (equal input lists) or are
/// the then-branch's inputs followed by the else-branch's.
pub(crate) fn if_op(then_b: &Graph, else_b: &Graph, ins: &[Option<Tensor>]) -> KResult<Vec<Tensor>> {
    let cond = truth(input(ins, 0)?, "condition")?;
    let captures: Vec<Tensor> = (1..ins.len()).map(|i| input(ins, i).cloned()).collect::<KResult<_>>()?;
    let (nt, ne) = (then_b.inputs().len(), else_b.inputs().len());
    let (branch, inputs) = match (cond, captures.len()) {
        (true, n) if n == nt => (then_b, &captures[..]),
        (false, n) if n == ne => (else_b, &captures[..]),
        (true, n) if n == nt + ne => (then_b, &captures[..nt]),
        (false, n) if n == nt + ne => (else_b, &captures[nt..]),
        (_, n) => bail!("{n} captured values do not fit branches taking {nt} and {ne} inputs"),
    };
    Ok(run_body(branch, inputs)?)
}

/// Stacks equally shaped tensors along a new axis `a`; `empty_item` shapes the result of zero items.
fn stack(items: &[Tensor], a: usize, empty_item: &Tensor) -> KResult<Tensor> {
    fn go<T: Element>(first: &ArcArrayD<T>, items: &[Tensor], a: usize) -> KResult<Tensor> {
        let mut views = Vec::with_capacity(items.len());
        for t in items {
            match T::array(t) {
                Some(v) if v.shape() == first.shape() => views.push(v.view()),
                _ => bail!("scan outputs differ between iterations: {} vs {}", show(first.shape()), show(t.shape())),
            }
        }
        Ok(Tensor::from_array(ndarray::stack(Axis(a), &views).map_err(|e| e.to_string())?))
    }
    match items.first() {
        Some(first) => with_array!(first, f => go(f, items, a)),
        None => {
            let mut shape = empty_item.shape().to_vec();
            shape.insert(a, 0);
            Ok(Tensor::zeros(empty_item.dtype(), &shape)?)
        }
    }
}

/// A zero-filled stand-in for a body output never produced (zero iterations), from its type.
fn placeholder(body: &Graph, output: usize) -> KResult<Tensor> {
    let ty = &body.output_types()[output];
    let shape: Vec<usize> = ty.shape.iter().map(|d| d.known().unwrap_or(0)).collect();
    Ok(Tensor::zeros(ty.dtype, &shape)?)
}

/// What a Loop or Scan may spend: iterations and the bytes of the scan outputs it accumulates,
/// against the current limits, plus the run's deadline at every iteration.
struct Budget {
    limits: Limits,
    scanned: u64,
}

impl Budget {
    fn new() -> Budget {
        Budget { limits: limits::current(), scanned: 0 }
    }

    /// Called before iteration `i` (counted from 0) runs.
    fn iteration(&self, i: u64) -> KResult<()> {
        limits::check_deadline()?;
        if i >= self.limits.max_loop_iterations {
            let what = format!("iteration {} would be one too many", i + 1);
            return Err(LimitError::new(Limit::LoopIterations, self.limits.max_loop_iterations, what).into());
        }
        Ok(())
    }

    /// Counts one iteration's scan output.
    fn scan_output(&mut self, t: &Tensor) -> KResult<()> {
        self.scanned = self.scanned.saturating_add(tensor_bytes(t));
        if self.scanned > self.limits.max_total_bytes {
            let what = format!("the scan outputs accumulated so far hold {}", limits::show_bytes(Some(self.scanned)));
            return Err(LimitError::new(Limit::TotalBytes, self.limits.max_total_bytes, what).into());
        }
        Ok(())
    }
}

/// Loop(M?, cond?, carried..., captures...).
pub(crate) fn loop_op(l: &Loop, ins: &[Option<Tensor>]) -> KResult<Vec<Tensor>> {
    let Some(carried) = ins.len().checked_sub(2 + l.num_captures) else {
        bail!("Loop has {} inputs, fewer than M, cond and {} captures", ins.len(), l.num_captures);
    };
    let trips = opt_input(ins, 0).map(|t| t.to_i64_vec().first().copied().unwrap_or(0));
    let mut keep = opt_input(ins, 1).map(|t| truth(t, "condition")).transpose()?.unwrap_or(true);
    let mut state: Vec<Tensor> = (2..2 + carried).map(|i| input(ins, i).cloned()).collect::<KResult<_>>()?;
    let captures: Vec<Tensor> = (2 + carried..ins.len()).map(|i| input(ins, i).cloned()).collect::<KResult<_>>()?;
    let n_scan = l.body.outputs().len().checked_sub(1 + carried).ok_or("the body returns too few outputs")?;
    let mut scans: Vec<Vec<Tensor>> = vec![Vec::new(); n_scan];
    let mut budget = Budget::new();
    let mut i = 0i64;
    while keep && trips.is_none_or(|m| i < m) {
        budget.iteration(i as u64)?;
        let mut body_ins = vec![Tensor::scalar(i), Tensor::scalar(keep)];
        body_ins.extend(state.iter().cloned());
        body_ins.extend(captures.iter().cloned());
        let mut outs = run_body(&l.body, &body_ins)?.into_iter();
        keep = truth(&outs.next().ok_or("the body returned no condition")?, "body condition")?;
        state = outs.by_ref().take(carried).collect();
        for (k, t) in outs.enumerate() {
            budget.scan_output(&t)?;
            scans[k].push(t);
        }
        i += 1;
    }
    let mut result = state;
    for (k, items) in scans.iter().enumerate() {
        result.push(stack(items, 0, &placeholder(&l.body, 1 + carried + k)?)?);
    }
    Ok(result)
}

/// Scan(state..., scan inputs..., captures...).
pub(crate) fn scan_op(s: &Scan, ins: &[Option<Tensor>]) -> KResult<Vec<Tensor>> {
    let m = s.num_scan_inputs;
    let Some(n) = ins.len().checked_sub(m + s.num_captures) else {
        bail!("Scan has {} inputs, fewer than {m} scan inputs and {} captures", ins.len(), s.num_captures);
    };
    let all: Vec<Tensor> = (0..ins.len()).map(|i| input(ins, i).cloned()).collect::<KResult<_>>()?;
    let (mut state, rest) = (all[..n].to_vec(), &all[n..]);
    let (seqs, captures) = rest.split_at(m);
    let setting = |v: &[i64], j: usize| v.get(j).copied().unwrap_or(0);
    let axes: Vec<usize> =
        seqs.iter().enumerate().map(|(j, t)| axis(setting(&s.scan_input_axes, j), t.rank())).collect::<KResult<_>>()?;
    let len = match seqs.first() {
        Some(t) => t.shape()[axes[0]],
        None => bail!("Scan needs at least one scan input"),
    };
    if let Some((j, t)) = seqs.iter().enumerate().find(|(j, t)| t.shape()[axes[*j]] != len) {
        bail!("scan input {j} {} does not have {len} steps along axis {}", show(t.shape()), axes[j]);
    }
    let k_out = s.body.outputs().len().checked_sub(n).ok_or("the body returns too few outputs")?;
    let mut scans: Vec<Vec<Tensor>> = vec![Vec::new(); k_out];
    let mut budget = Budget::new();
    for t in 0..len {
        budget.iteration(t as u64)?;
        let mut body_ins = state.clone();
        for (j, seq) in seqs.iter().enumerate() {
            let at = if setting(&s.scan_input_directions, j) == 1 { len - 1 - t } else { t };
            body_ins.push(with_array!(seq, a => Tensor::from_array(a.index_axis(Axis(axes[j]), at).to_owned())));
        }
        body_ins.extend(captures.iter().cloned());
        let mut outs = run_body(&s.body, &body_ins)?.into_iter();
        state = outs.by_ref().take(n).collect();
        for (k, o) in outs.enumerate() {
            budget.scan_output(&o)?;
            scans[k].push(o);
        }
    }
    let mut result = state;
    for (k, mut items) in scans.into_iter().enumerate() {
        if setting(&s.scan_output_directions, k) == 1 {
            items.reverse();
        }
        let empty = placeholder(&s.body, n + k)?;
        let rank = items.first().map_or(empty.rank(), Tensor::rank) + 1;
        let a = axis(setting(&s.scan_output_axes, k), rank)?;
        result.push(stack(&items, a, &empty)?);
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_ir::op::Binary;
    use kiln_ir::{DType, Dim, Op, TensorType};

    /// A body `(iter, cond, acc, step) -> (cond, acc + step, acc)`.
    fn accumulate_body() -> Graph {
        let mut g = Graph::new("body");
        let _iter = g.add_input("iter", TensorType::scalar(DType::I64));
        let cond = g.add_input("cond", TensorType::scalar(DType::Bool));
        let acc = g.add_input("acc", TensorType::known(DType::F32, &[2]));
        let step = g.add_input("step", TensorType::known(DType::F32, &[2]));
        let next = g.add("next", Op::Binary(Binary::Add), &[acc, step]).unwrap();
        let cond_out = g.add("cond_out", Op::Identity, &[cond]).unwrap();
        let seen = g.add("seen", Op::Identity, &[acc]).unwrap();
        g.set_outputs(vec![cond_out, next, seen]);
        g
    }

    #[test]
    fn loop_carries_state_and_stacks_scans() {
        let l = Loop { body: accumulate_body(), num_captures: 1 };
        let ins = [
            Some(Tensor::scalar(3i64)),
            None,
            Some(Tensor::vector(vec![0.0f32, 1.0])),
            Some(Tensor::vector(vec![1.0f32, 10.0])),
        ];
        let outs = loop_op(&l, &ins).unwrap();
        assert_eq!(outs[0].to_vec::<f32>(), vec![3.0, 31.0]);
        assert_eq!(outs[1].shape(), &[3, 2]);
        assert_eq!(outs[1].to_vec::<f32>(), vec![0.0, 1.0, 1.0, 11.0, 2.0, 21.0]);
        let zero = [Some(Tensor::scalar(0i64)), None, ins[2].clone(), ins[3].clone()];
        assert_eq!(loop_op(&l, &zero).unwrap()[1].shape(), &[0, 2]);
    }

    #[test]
    fn scan_running_sum_both_directions() {
        // Body: (sum, x) -> (sum + x, sum + x).
        let mut g = Graph::new("body");
        let sum = g.add_input("sum", TensorType::new(DType::F32, [Dim::from(1)]));
        let x = g.add_input("x", TensorType::new(DType::F32, [Dim::from(1)]));
        let next = g.add("next", Op::Binary(Binary::Add), &[sum, x]).unwrap();
        let out = g.add("out", Op::Identity, &[next]).unwrap();
        g.set_outputs(vec![next, out]);
        let mut s = Scan {
            body: g,
            num_scan_inputs: 1,
            num_captures: 0,
            scan_input_axes: vec![],
            scan_input_directions: vec![],
            scan_output_axes: vec![],
            scan_output_directions: vec![],
        };
        let seq = Tensor::from_vec(&[3, 1], vec![1.0f32, 2.0, 3.0]).unwrap();
        let ins = [Some(Tensor::vector(vec![0.0f32])), Some(seq)];
        let outs = scan_op(&s, &ins).unwrap();
        assert_eq!((outs[0].to_vec::<f32>(), outs[1].to_vec::<f32>()), (vec![6.0], vec![1.0, 3.0, 6.0]));
        s.scan_input_directions = vec![1];
        assert_eq!(scan_op(&s, &ins).unwrap()[1].to_vec::<f32>(), vec![3.0, 5.0, 6.0]);
    }

    #[test]
    fn if_picks_a_branch() {
        let branch = |name: &str, op: Binary| {
            let mut g = Graph::new(name);
            let a = g.add_input("a", TensorType::scalar(DType::I64));
            let y = g.add("y", Op::Binary(op), &[a, a]).unwrap();
            g.set_outputs(vec![y]);
            g
        };
        let (t, e) = (branch("then", Binary::Add), branch("else", Binary::Mul));
        let run =
            |c: bool| if_op(&t, &e, &[Some(Tensor::scalar(c)), Some(Tensor::scalar(5i64))]).unwrap()[0].to_i64_vec();
        assert_eq!((run(true), run(false)), (vec![10], vec![25]));
    }
}
