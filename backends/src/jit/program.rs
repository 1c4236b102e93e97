//! What an elementwise kernel computes and over which index space: a [`Program`] (straight-line
//! f32 expression over loaded operands, one result) and a [`LoopNest`] (output extents and, per
//! operand, element strides — 0 for a broadcast dim). Fused chains, conv/GEMM epilogues,
//! BatchNorm at inference, Transpose and Expand are all a program over a loop nest.

use super::math::MathFn;
use kiln_ir::op::{Binary, Unary, Variadic};

/// Index of an instruction inside its [`Program`].
pub(crate) type Reg = usize;

/// Scalar functions generated code calls on the host through a table, one lane at a time:
/// the IR's own definitions, for the rare maps with no vector form in `math` (trigonometry,
/// hyperbolic inverses, Pow with a variable exponent).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum HostFn {
    Unary(Unary),
    Pow,
}

macro_rules! host_unary {
    ($($op:ident),* $(,)?) => {
        /// Unary ops computed by a host call, in table order.
        const HOST_UNARY: &[Unary] = &[$(Unary::$op),*];

        /// Their entry points, in the same order.
        fn host_unary_entries() -> Vec<*const u8> {
            $(
                #[allow(non_snake_case)]
                extern "C" fn $op(x: f32) -> f32 {
                    Unary::$op.eval_f64(x as f64) as f32
                }
            )*
            vec![$($op as *const u8),*]
        }
    };
}

host_unary!(Sin, Cos, Tan, Asin, Acos, Atan, Sinh, Cosh, Asinh, Acosh, Atanh);

impl HostFn {
    fn of_unary(op: Unary) -> Option<HostFn> {
        HOST_UNARY.contains(&op).then_some(HostFn::Unary(op))
    }

    pub(crate) fn arity(self) -> usize {
        match self {
            HostFn::Unary(_) => 1,
            HostFn::Pow => 2,
        }
    }

    /// Position in [`HostFn::table`].
    pub(crate) fn index(self) -> usize {
        match self {
            HostFn::Unary(op) => HOST_UNARY.iter().position(|&u| u == op).expect("built by of_unary"),
            HostFn::Pow => HOST_UNARY.len(),
        }
    }

    /// The entry points kernels call, indexed by [`HostFn::index`].
    pub(crate) fn table() -> Vec<*const u8> {
        extern "C" fn pow(a: f32, b: f32) -> f32 {
            Binary::Pow.eval_f64(a as f64, b as f64) as f32
        }
        let mut table = host_unary_entries();
        table.push(pow as *const u8);
        table
    }
}

/// One step of a program. Operands are registers defined earlier.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Instr {
    /// Operand `i` of the kernel (an input; the output is the last operand and is never loaded).
    Load(usize),
    Const(f32),
    Add(Reg, Reg),
    Sub(Reg, Reg),
    Mul(Reg, Reg),
    Div(Reg, Reg),
    Max(Reg, Reg),
    Min(Reg, Reg),
    /// `a * b + c`, fused where the CPU has FMA.
    MulAdd(Reg, Reg, Reg),
    Neg(Reg),
    Abs(Reg),
    Sqrt(Reg),
    Floor(Reg),
    Ceil(Reg),
    /// Round half to even.
    Nearest(Reg),
    /// A vectorized transcendental, computed inline.
    Math(MathFn, Reg),
    Call(HostFn, Vec<Reg>),
}

/// A straight-line expression; its result is the last instruction.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Program {
    pub instrs: Vec<Instr>,
}

impl Program {
    pub(crate) fn push(&mut self, i: Instr) -> Reg {
        self.instrs.push(i);
        self.instrs.len() - 1
    }

    /// Appends `x` carried through a unary op, or `None` when the op has no native form.
    pub(crate) fn unary(&mut self, op: Unary, x: Reg) -> Option<Reg> {
        use Instr::*;
        Some(match op {
            Unary::Relu => {
                let zero = self.push(Const(0.0));
                self.push(Max(x, zero))
            }
            Unary::Neg => self.push(Neg(x)),
            Unary::Abs => self.push(Abs(x)),
            Unary::Sqrt => self.push(Sqrt(x)),
            Unary::Floor => self.push(Floor(x)),
            Unary::Ceil => self.push(Ceil(x)),
            Unary::Round => self.push(Nearest(x)),
            Unary::Reciprocal => {
                let one = self.push(Const(1.0));
                self.push(Div(one, x))
            }
            Unary::LeakyRelu { alpha } => {
                // max(x,0) + alpha·min(x,0) == x if x ≥ 0 else alpha·x
                let zero = self.push(Const(0.0));
                let pos = self.push(Max(x, zero));
                let neg = self.push(Min(x, zero));
                let a = self.push(Const(alpha));
                self.push(MulAdd(a, neg, pos))
            }
            Unary::HardSigmoid { alpha, beta } => self.hard_sigmoid(x, alpha, beta),
            Unary::HardSwish => {
                // x·clamp(x + 3, 0, 6)/6: x/6 + ½ would cancel near −3 (1/6 is inexact in f32).
                let three = self.push(Const(3.0));
                let six = self.push(Const(6.0));
                let zero = self.push(Const(0.0));
                let t = self.push(Add(x, three));
                let t = self.push(Min(t, six));
                let t = self.push(Max(t, zero));
                let y = self.push(Mul(x, t));
                let sixth = self.push(Const(1.0 / 6.0));
                self.push(Mul(y, sixth))
            }
            Unary::Softsign => {
                let one = self.push(Const(1.0));
                let a = self.push(Abs(x));
                let d = self.push(Add(one, a));
                self.push(Div(x, d))
            }
            Unary::Exp => self.push(Math(MathFn::Exp, x)),
            Unary::Log => self.push(Math(MathFn::Log, x)),
            Unary::Tanh => self.push(Math(MathFn::Tanh, x)),
            Unary::Sigmoid => self.push(Math(MathFn::Sigmoid, x)),
            Unary::Erf => self.push(Math(MathFn::Erf, x)),
            Unary::Softplus => self.push(Math(MathFn::Softplus, x)),
            Unary::Mish => {
                let s = self.push(Math(MathFn::Softplus, x));
                let t = self.push(Math(MathFn::Tanh, s));
                self.push(Mul(x, t))
            }
            Unary::Gelu { tanh_approx: false } => {
                let p = self.push(Math(MathFn::NormCdf, x));
                self.push(Mul(x, p))
            }
            Unary::Gelu { tanh_approx: true } => {
                // ½(1 + tanh u) = sigmoid(2u), u = √(2/π)·(x + 0.044715·x³): no cancellation below 0.
                let k0 = 2.0 * (2.0 / std::f64::consts::PI).sqrt();
                let c0 = self.push(Const(k0 as f32));
                let c1 = self.push(Const((k0 * 0.044715) as f32));
                let x2 = self.push(Mul(x, x));
                let k = self.push(MulAdd(c1, x2, c0));
                let u = self.push(Mul(x, k));
                let s = self.push(Math(MathFn::Sigmoid, u));
                self.push(Mul(x, s))
            }
            Unary::Elu { alpha } => self.elu(x, alpha, false),
            Unary::Selu { alpha, gamma } => {
                let e = self.elu(x, alpha, false);
                let g = self.push(Const(gamma));
                self.push(Mul(e, g))
            }
            // max(0, x) + min(0, α·(e^{x/α} − 1)) is max(0, x) + α·expm1(min(0, x)/α) for α > 0.
            Unary::Celu { alpha } if alpha > 0.0 => self.elu(x, alpha, true),
            op => self.push(Call(HostFn::of_unary(op)?, vec![x])),
        })
    }

    /// `max(x, 0) + α·expm1(min(x, 0))` (Elu), with `min(x, 0)/α` inside when `divide` (Celu).
    fn elu(&mut self, x: Reg, alpha: f32, divide: bool) -> Reg {
        use Instr::*;
        let zero = self.push(Const(0.0));
        let pos = self.push(Max(x, zero));
        let mut neg = self.push(Min(x, zero));
        let a = self.push(Const(alpha));
        if divide {
            neg = self.push(Div(neg, a));
        }
        let e = self.push(Math(MathFn::Expm1, neg));
        self.push(MulAdd(a, e, pos))
    }

    /// `x^e` for the constant exponents models use, as multiplies and square roots; `None` for
    /// other exponents. They agree with pow everywhere but at x = −∞ for e = ±½ (NaN there, where
    /// pow gives +∞ and +0).
    pub(crate) fn pow_const(&mut self, x: Reg, e: f32) -> Option<Reg> {
        use Instr::*;
        let square = |p: &mut Program| p.push(Mul(x, x));
        Some(match e {
            1.0 => x,
            2.0 => square(self),
            3.0 => {
                let s = square(self);
                self.push(Mul(s, x))
            }
            4.0 => {
                let s = square(self);
                self.push(Mul(s, s))
            }
            0.5 => {
                // + 0 turns sqrt(−0) = −0 into pow's +0.
                let r = self.push(Sqrt(x));
                let zero = self.push(Const(0.0));
                self.push(Add(r, zero))
            }
            -1.0 | -0.5 | -2.0 => {
                let d = match e {
                    -1.0 => x,
                    -0.5 => {
                        let r = self.push(Sqrt(x));
                        let zero = self.push(Const(0.0));
                        self.push(Add(r, zero))
                    }
                    _ => square(self),
                };
                let one = self.push(Const(1.0));
                self.push(Div(one, d))
            }
            _ => return None,
        })
    }

    /// `max(0, min(1, alpha·x + beta))`
    fn hard_sigmoid(&mut self, x: Reg, alpha: f32, beta: f32) -> Reg {
        use Instr::*;
        let a = self.push(Const(alpha));
        let b = self.push(Const(beta));
        let y = self.push(MulAdd(a, x, b));
        let one = self.push(Const(1.0));
        let zero = self.push(Const(0.0));
        let y = self.push(Min(y, one));
        self.push(Max(y, zero))
    }

    /// Appends a binary op, or `None` when it has no native f32 form.
    pub(crate) fn binary(&mut self, op: Binary, a: Reg, b: Reg) -> Option<Reg> {
        use Instr::*;
        Some(match op {
            Binary::Add => self.push(Add(a, b)),
            Binary::Sub => self.push(Sub(a, b)),
            Binary::Mul => self.push(Mul(a, b)),
            Binary::Div => self.push(Div(a, b)),
            Binary::Max => self.push(Max(a, b)),
            Binary::Min => self.push(Min(a, b)),
            Binary::Pow => self.push(Call(HostFn::Pow, vec![a, b])),
            _ => return None,
        })
    }

    /// Folds a variadic op over its operands (at least one).
    pub(crate) fn variadic(&mut self, op: Variadic, xs: &[Reg]) -> Reg {
        use Instr::*;
        let mut acc = xs[0];
        for &x in &xs[1..] {
            acc = self.push(match op {
                Variadic::Sum | Variadic::Mean => Add(acc, x),
                Variadic::Max => Max(acc, x),
                Variadic::Min => Min(acc, x),
            });
        }
        if op == Variadic::Mean && xs.len() > 1 {
            let n = self.push(Const(xs.len() as f32));
            acc = self.push(Div(acc, n));
        }
        acc
    }

    /// Host functions the program calls.
    pub(crate) fn host_fns(&self) -> Vec<HostFn> {
        let mut fns: Vec<HostFn> = Vec::new();
        for i in &self.instrs {
            if let Instr::Call(f, _) = i {
                if !fns.contains(f) {
                    fns.push(*f);
                }
            }
        }
        fns
    }
}

/// The index space of a kernel: extents (outermost first) and, for every operand (inputs, then the
/// output), its stride in elements along each extent.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct LoopNest {
    pub dims: Vec<usize>,
    pub strides: Vec<Vec<isize>>,
}

impl LoopNest {
    /// The nest for writing a contiguous output of `out_shape` from operands given as
    /// (shape, strides) pairs that broadcast to it (numpy rules: missing leading dims and size-1
    /// dims get stride 0). Unit dims are dropped and contiguous dims merged, so the common
    /// cases become one or two loops.
    pub(crate) fn broadcast(out_shape: &[usize], operands: &[(Vec<usize>, Vec<isize>)]) -> LoopNest {
        let rank = out_shape.len();
        let mut strides: Vec<Vec<isize>> = operands
            .iter()
            .map(|(shape, st)| {
                let lead = rank - shape.len();
                (0..rank).map(|d| if d < lead || shape[d - lead] == 1 { 0 } else { st[d - lead] }).collect()
            })
            .collect();
        strides.push(contiguous_strides(out_shape));
        let mut nest = LoopNest { dims: out_shape.to_vec(), strides };
        nest.simplify();
        nest
    }

    /// Drops extent-1 dims and merges neighbours every operand walks contiguously.
    fn simplify(&mut self) {
        let keep: Vec<usize> = (0..self.dims.len()).filter(|&d| self.dims[d] != 1).collect();
        let mut dims: Vec<usize> = keep.iter().map(|&d| self.dims[d]).collect();
        let mut strides: Vec<Vec<isize>> = self.strides.iter().map(|s| keep.iter().map(|&d| s[d]).collect()).collect();
        let mut d = 0;
        while d + 1 < dims.len() {
            let inner = dims[d + 1] as isize;
            if strides.iter().all(|s| s[d] == s[d + 1] * inner) {
                dims[d] *= dims[d + 1];
                dims.remove(d + 1);
                for s in &mut strides {
                    s.remove(d);
                }
            } else {
                d += 1;
            }
        }
        if dims.is_empty() {
            dims.push(1);
            strides.iter_mut().for_each(|s| s.push(0));
        }
        self.dims = dims;
        self.strides = strides;
    }

    pub(crate) fn len(&self) -> usize {
        self.dims.iter().product()
    }
}

/// Row-major strides of a contiguous tensor.
pub(crate) fn contiguous_strides(shape: &[usize]) -> Vec<isize> {
    let mut st = vec![1isize; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        st[d] = st[d + 1] * shape[d + 1] as isize;
    }
    st
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_broadcast_collapses_to_two_loops() {
        let x = (vec![1, 8, 4, 4], contiguous_strides(&[1, 8, 4, 4]));
        let scale = (vec![8, 1, 1], contiguous_strides(&[8, 1, 1]));
        let nest = LoopNest::broadcast(&[1, 8, 4, 4], &[x, scale]);
        assert_eq!(nest.dims, vec![8, 16]);
        assert_eq!(nest.strides, vec![vec![16, 1], vec![1, 0], vec![16, 1]]);
    }

    #[test]
    fn same_shapes_collapse_to_one_loop_and_scalars_to_stride_zero() {
        let a = (vec![2, 3, 5], contiguous_strides(&[2, 3, 5]));
        let s = (vec![], vec![]);
        let nest = LoopNest::broadcast(&[2, 3, 5], &[a, s]);
        assert_eq!(nest.dims, vec![30]);
        assert_eq!(nest.strides, vec![vec![1], vec![0], vec![1]]);
    }

    #[test]
    fn transposed_operand_keeps_its_strides() {
        // out[i,j] = x[j,i] for x: [3,2] → out [2,3]
        let nest = LoopNest::broadcast(&[2, 3], &[(vec![2, 3], vec![1, 2])]);
        assert_eq!(nest.dims, vec![2, 3]);
        assert_eq!(nest.strides, vec![vec![1, 2], vec![3, 1]]);
    }
}
