//! Recurrent layers: ONNX `LSTM`, `GRU` and `RNN` as one op, [`Recurrent`], whose [`Cell`] says
//! which. They share inputs (X, W, R, B?, sequence_lens?, initial_h?, then for LSTM initial_c? and
//! P?), outputs (Y?, Y_h?, and for LSTM Y_c?), directions, activations, clip and layout; only the
//! cell's gate equations differ. Supported opsets: LSTM 1, 7, 14, 22; GRU 1, 3, 7, 14, 22; RNN 1,
//! 7, 14, 22 (opset 1's `output_sequence` only made Y optional, which it always is; `layout`
//! arrived in 14; 22 added bf16, which Kiln does not run).
//!
//! Shapes (layout 0 / layout 1), with `D` directions, `G` gates (LSTM 4 in order i, o, f, c;
//! GRU 3 in order z, r, h; RNN 1) and `H` = hidden_size:
//! X `[seq, batch, input]` / `[batch, seq, input]`; W `[D, G·H, input]`; R `[D, G·H, H]`;
//! B `[D, 2·G·H]` (W's biases, then R's); sequence_lens `[batch]` (int); initial_h, initial_c,
//! Y_h, Y_c `[D, batch, H]` / `[batch, D, H]`; P `[D, 3·H]` (peepholes i, o, f);
//! Y `[seq, D, batch, H]` / `[batch, seq, D, H]`.
//!
//! Per step, with `f`, `g`, `h` the direction's activations and every pre-activation clipped to
//! `[-clip, clip]` when `clip` is set:
//! - LSTM: `i = f(x·Wiᵀ + h·Riᵀ + Pi⊙c + b)`, `f' = f(… + Pf⊙c)` (or `1 - i` with
//!   `input_forget`), `c~ = g(x·Wcᵀ + h·Rcᵀ + b)`, `c = f'⊙c + i⊙c~`, `o = f(… + Po⊙c)`,
//!   `h = o⊙h(c)`;
//! - GRU: `z = f(x·Wzᵀ + h·Rzᵀ + b)`, `r = f(…)`, `h~ = g(x·Whᵀ + (r⊙h)·Rhᵀ + Rbh + Wbh)` (or
//!   `g(x·Whᵀ + r⊙(h·Rhᵀ + Rbh) + Wbh)` with `linear_before_reset`), `h = (1-z)⊙h~ + z⊙h`;
//! - RNN: `h = f(x·Wᵀ + h·Rᵀ + Wb + Rb)`.
//!
//! The reverse direction reads each batch row's sequence backwards within its own length; steps
//! past a row's length leave its state unchanged and write zeros to Y.

use super::infer::{InferCtx, InferError};
use crate::{DType, Dim, TensorType};

/// Which recurrent cell.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cell {
    /// `input_forget`: couple the forget gate to the input gate (`f = 1 - i`).
    Lstm {
        input_forget: bool,
    },
    /// `linear_before_reset`: apply the reset gate after the recurrent product.
    Gru {
        linear_before_reset: bool,
    },
    Rnn,
}

impl Cell {
    pub fn onnx_name(&self) -> &'static str {
        match self {
            Cell::Lstm { .. } => "LSTM",
            Cell::Gru { .. } => "GRU",
            Cell::Rnn => "RNN",
        }
    }

    /// Gates per direction: the row blocks of W and R.
    pub fn gates(&self) -> usize {
        match self {
            Cell::Lstm { .. } => 4,
            Cell::Gru { .. } => 3,
            Cell::Rnn => 1,
        }
    }

    /// The activations one direction takes, with the ONNX defaults.
    pub fn default_activations(&self) -> &'static [Activation] {
        match self {
            Cell::Lstm { .. } => &[Activation::Sigmoid, Activation::Tanh, Activation::Tanh],
            Cell::Gru { .. } => &[Activation::Sigmoid, Activation::Tanh],
            Cell::Rnn => &[Activation::Tanh],
        }
    }

    /// Whether the cell carries a cell state (initial_c input, Y_c output, peepholes).
    pub fn has_cell_state(&self) -> bool {
        matches!(self, Cell::Lstm { .. })
    }

    /// How many node inputs and outputs the op may have.
    pub fn max_inputs(&self) -> usize {
        if self.has_cell_state() {
            8
        } else {
            6
        }
    }

    pub fn max_outputs(&self) -> usize {
        if self.has_cell_state() {
            3
        } else {
            2
        }
    }
}

/// ONNX `direction`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Reverse,
    Bidirectional,
}

impl Direction {
    pub fn onnx_name(&self) -> &'static str {
        match self {
            Direction::Forward => "forward",
            Direction::Reverse => "reverse",
            Direction::Bidirectional => "bidirectional",
        }
    }

    pub fn from_onnx(s: &str) -> Option<Direction> {
        [Direction::Forward, Direction::Reverse, Direction::Bidirectional].into_iter().find(|d| d.onnx_name() == s)
    }

    pub fn count(&self) -> usize {
        match self {
            Direction::Bidirectional => 2,
            Direction::Forward | Direction::Reverse => 1,
        }
    }

    /// Whether direction number `d` (0 or 1) runs backwards in time.
    pub fn is_reverse(&self, d: usize) -> bool {
        match self {
            Direction::Forward => false,
            Direction::Reverse => true,
            Direction::Bidirectional => d == 1,
        }
    }
}

/// One of the activation functions the recurrent ops accept, with its parameters resolved.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Relu,
    Tanh,
    Sigmoid,
    /// `alpha·x + beta`.
    Affine {
        alpha: f32,
        beta: f32,
    },
    LeakyRelu {
        alpha: f32,
    },
    /// `x` where `x > alpha`, else 0.
    ThresholdedRelu {
        alpha: f32,
    },
    /// `alpha·tanh(beta·x)`.
    ScaledTanh {
        alpha: f32,
        beta: f32,
    },
    /// `clamp(alpha·x + beta, 0, 1)`.
    HardSigmoid {
        alpha: f32,
        beta: f32,
    },
    Elu {
        alpha: f32,
    },
    Softsign,
    Softplus,
}

impl Activation {
    /// The ONNX spelling.
    pub fn onnx_name(&self) -> &'static str {
        match self {
            Activation::Relu => "Relu",
            Activation::Tanh => "Tanh",
            Activation::Sigmoid => "Sigmoid",
            Activation::Affine { .. } => "Affine",
            Activation::LeakyRelu { .. } => "LeakyRelu",
            Activation::ThresholdedRelu { .. } => "ThresholdedRelu",
            Activation::ScaledTanh { .. } => "ScaledTanh",
            Activation::HardSigmoid { .. } => "HardSigmoid",
            Activation::Elu { .. } => "Elu",
            Activation::Softsign => "Softsign",
            Activation::Softplus => "Softplus",
        }
    }

    /// Parses an activation name (case-insensitive, as ONNX Runtime reads them), taking its
    /// alpha and beta from the front of `alphas`/`betas` when it has them (ONNX consumes the
    /// lists in activation order, only for functions with parameters; a short list leaves the
    /// operator's default).
    pub fn from_onnx(
        name: &str,
        alphas: &mut impl Iterator<Item = f32>,
        betas: &mut impl Iterator<Item = f32>,
    ) -> Option<Activation> {
        let mut alpha = |default: f32| alphas.next().unwrap_or(default);
        let lower = name.to_ascii_lowercase();
        let act = match lower.as_str() {
            "relu" => Activation::Relu,
            "tanh" => Activation::Tanh,
            "sigmoid" => Activation::Sigmoid,
            "affine" => Activation::Affine { alpha: alpha(1.0), beta: betas.next().unwrap_or(0.0) },
            "leakyrelu" => Activation::LeakyRelu { alpha: alpha(0.01) },
            "thresholdedrelu" => Activation::ThresholdedRelu { alpha: alpha(1.0) },
            "scaledtanh" => Activation::ScaledTanh { alpha: alpha(1.0), beta: betas.next().unwrap_or(1.0) },
            "hardsigmoid" => Activation::HardSigmoid { alpha: alpha(0.2), beta: betas.next().unwrap_or(0.5) },
            "elu" => Activation::Elu { alpha: alpha(1.0) },
            "softsign" => Activation::Softsign,
            "softplus" => Activation::Softplus,
            _ => return None,
        };
        Some(act)
    }

    /// The function's alpha and beta, where it has them (for export).
    pub fn params(&self) -> (Option<f32>, Option<f32>) {
        match *self {
            Activation::Relu | Activation::Tanh | Activation::Sigmoid | Activation::Softsign | Activation::Softplus => {
                (None, None)
            }
            Activation::LeakyRelu { alpha } | Activation::ThresholdedRelu { alpha } | Activation::Elu { alpha } => {
                (Some(alpha), None)
            }
            Activation::Affine { alpha, beta }
            | Activation::ScaledTanh { alpha, beta }
            | Activation::HardSigmoid { alpha, beta } => (Some(alpha), Some(beta)),
        }
    }

    /// Applies the function to one value.
    pub fn apply(&self, x: f64) -> f64 {
        match *self {
            Activation::Relu => x.max(0.0),
            Activation::Tanh => x.tanh(),
            Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Activation::Affine { alpha, beta } => alpha as f64 * x + beta as f64,
            Activation::LeakyRelu { alpha } => {
                if x >= 0.0 {
                    x
                } else {
                    alpha as f64 * x
                }
            }
            Activation::ThresholdedRelu { alpha } => {
                if x > alpha as f64 {
                    x
                } else {
                    0.0
                }
            }
            Activation::ScaledTanh { alpha, beta } => alpha as f64 * (beta as f64 * x).tanh(),
            Activation::HardSigmoid { alpha, beta } => (alpha as f64 * x + beta as f64).clamp(0.0, 1.0),
            Activation::Elu { alpha } => {
                if x >= 0.0 {
                    x
                } else {
                    alpha as f64 * x.exp_m1()
                }
            }
            Activation::Softsign => x / (1.0 + x.abs()),
            Activation::Softplus => {
                // ln(1 + e^x) without overflow for large x.
                if x > 30.0 {
                    x
                } else {
                    x.exp().ln_1p()
                }
            }
        }
    }
}

/// An LSTM, GRU or RNN layer (see the module doc for its semantics).
#[derive(Clone, Debug, PartialEq)]
pub struct Recurrent {
    pub cell: Cell,
    pub direction: Direction,
    pub hidden_size: usize,
    /// `direction.count()` groups of the cell's activations (forward first), always complete.
    pub activations: Vec<Activation>,
    /// Pre-activation clip threshold.
    pub clip: Option<f32>,
    /// ONNX `layout = 1`: batch-major X, Y, and states.
    pub batch_major: bool,
}

/// Input slots.
pub mod slot {
    pub const X: usize = 0;
    pub const W: usize = 1;
    pub const R: usize = 2;
    pub const B: usize = 3;
    pub const SEQUENCE_LENS: usize = 4;
    pub const INITIAL_H: usize = 5;
    pub const INITIAL_C: usize = 6;
    pub const P: usize = 7;
}

impl Recurrent {
    /// The activations of direction `d`.
    pub fn direction_activations(&self, d: usize) -> &[Activation] {
        let n = self.cell.default_activations().len();
        &self.activations[d * n..(d + 1) * n]
    }

    /// `(seq, batch)` positions in X's shape for this layout.
    pub fn seq_batch_axes(&self) -> (usize, usize) {
        if self.batch_major {
            (1, 0)
        } else {
            (0, 1)
        }
    }

    /// Shape of Y for the given extents.
    pub fn y_shape<D: Clone>(&self, seq: D, batch: D, dirs: D, hidden: D) -> Vec<D> {
        if self.batch_major {
            vec![batch, seq, dirs, hidden]
        } else {
            vec![seq, dirs, batch, hidden]
        }
    }

    /// Shape of a state (initial_h/c, Y_h/c) for the given extents.
    pub fn state_shape<D: Clone>(&self, batch: D, dirs: D, hidden: D) -> Vec<D> {
        if self.batch_major {
            vec![batch, dirs, hidden]
        } else {
            vec![dirs, batch, hidden]
        }
    }

    /// Estimated FLOPs of one run: the input and recurrent products (2 per multiply-add) plus
    /// about four operations per gate element for biases, activations and state updates.
    pub fn flops(&self, seq: f64, batch: f64, input: f64) -> f64 {
        let (d, g, h) = (self.direction.count() as f64, self.cell.gates() as f64, self.hidden_size as f64);
        d * seq * batch * g * h * (2.0 * (input + h) + 4.0)
    }

    pub(crate) fn infer(&self, cx: &InferCtx) -> Result<Vec<TensorType>, InferError> {
        let name = self.cell.onnx_name();
        if cx.inputs.len() > self.cell.max_inputs() {
            return Err(cx.error(format!(
                "{name} takes at most {} inputs, got {}",
                self.cell.max_inputs(),
                cx.inputs.len()
            )));
        }
        if cx.num_outputs > self.cell.max_outputs() {
            return Err(cx.error(format!(
                "{name} has at most {} outputs, got {}",
                self.cell.max_outputs(),
                cx.num_outputs
            )));
        }
        let per_direction = self.cell.default_activations().len();
        if self.activations.len() != per_direction * self.direction.count() {
            return Err(cx.error(format!(
                "{} activations given; a {} {name} takes {}",
                self.activations.len(),
                self.direction.onnx_name(),
                per_direction * self.direction.count()
            )));
        }
        if self.hidden_size == 0 {
            return Err(cx.error("hidden_size must be positive".into()));
        }
        if self.clip.is_some_and(|c| c.is_nan() || c < 0.0) {
            return Err(cx.error(format!("clip {:?} must be non-negative", self.clip)));
        }
        let x = cx.expect_dtype(slot::X, DType::is_float)?;
        if x.rank() != 3 {
            return Err(cx.error(format!("X must have rank 3, got {x}")));
        }
        let (sa, ba) = self.seq_batch_axes();
        let (seq, batch, input) = (x.shape[sa].clone(), x.shape[ba].clone(), x.shape[2].clone());
        let (d, h) = (Dim::Known(self.direction.count()), Dim::Known(self.hidden_size));
        let gh = Dim::Known(self.cell.gates() * self.hidden_size);
        let float = |i: usize, what: &str, want: Vec<Dim>| -> Result<(), InferError> {
            let Some(t) = cx.opt_input(i) else { return Ok(()) };
            if t.dtype != x.dtype {
                return Err(cx.error(format!("{what} has dtype {} but X has {}", t.dtype, x.dtype)));
            }
            expect_shape(cx, what, t, &want)
        };
        cx.input(slot::W)?;
        cx.input(slot::R)?;
        float(slot::W, "W", vec![d.clone(), gh.clone(), input])?;
        float(slot::R, "R", vec![d.clone(), gh, h.clone()])?;
        float(slot::B, "B", vec![d.clone(), Dim::Known(2 * self.cell.gates() * self.hidden_size)])?;
        if let Some(t) = cx.opt_input(slot::SEQUENCE_LENS) {
            if !t.dtype.is_int() {
                return Err(cx.bad_dtype(slot::SEQUENCE_LENS, t.dtype));
            }
            expect_shape(cx, "sequence_lens", t, std::slice::from_ref(&batch))?;
        }
        let state = self.state_shape(batch.clone(), d.clone(), h.clone());
        float(slot::INITIAL_H, "initial_h", state.clone())?;
        if self.cell.has_cell_state() {
            float(slot::INITIAL_C, "initial_c", state.clone())?;
            float(slot::P, "P", vec![d.clone(), Dim::Known(3 * self.hidden_size)])?;
        }
        let y = TensorType { dtype: x.dtype, shape: self.y_shape(seq, batch, d, h) };
        let s = TensorType { dtype: x.dtype, shape: state };
        Ok([y, s.clone(), s].into_iter().take(cx.num_outputs).collect())
    }
}

/// Checks a shape against the expected one where both dims are known.
fn expect_shape(cx: &InferCtx, what: &str, t: &TensorType, want: &[Dim]) -> Result<(), InferError> {
    let fits = t.rank() == want.len()
        && t.shape.iter().zip(want).all(|(a, b)| match (a.known(), b.known()) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        });
    if fits {
        Ok(())
    } else {
        let want: Vec<String> = want.iter().map(Dim::to_string).collect();
        Err(cx.error(format!("{what} is {t} but must be [{}]", want.join(","))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tensor;

    fn lstm(direction: Direction) -> Recurrent {
        let acts = Cell::Lstm { input_forget: false }.default_activations().repeat(direction.count());
        Recurrent {
            cell: Cell::Lstm { input_forget: false },
            direction,
            hidden_size: 5,
            activations: acts,
            clip: None,
            batch_major: false,
        }
    }

    fn infer(op: &Recurrent, inputs: &[Option<TensorType>], outputs: usize) -> Result<Vec<TensorType>, InferError> {
        let consts: Vec<Option<Tensor>> = vec![None; inputs.len()];
        let cx = InferCtx { node: "n", op: "LSTM", inputs, consts: &consts, num_outputs: outputs };
        op.infer(&cx)
    }

    fn f32s(shape: &[usize]) -> Option<TensorType> {
        Some(TensorType::known(DType::F32, shape))
    }

    #[test]
    fn shapes_follow_direction_and_layout() {
        let op = lstm(Direction::Bidirectional);
        let ins = [f32s(&[7, 3, 4]), f32s(&[2, 20, 4]), f32s(&[2, 20, 5]), f32s(&[2, 40])];
        let out = infer(&op, &ins, 3).unwrap();
        assert_eq!(out[0], TensorType::known(DType::F32, &[7, 2, 3, 5]));
        assert_eq!(out[1], TensorType::known(DType::F32, &[2, 3, 5]));
        assert_eq!(out[2], out[1]);
        let batch_major = Recurrent { batch_major: true, ..op };
        let ins = [f32s(&[3, 7, 4]), f32s(&[2, 20, 4]), f32s(&[2, 20, 5])];
        let out = infer(&batch_major, &ins, 2).unwrap();
        assert_eq!(out[0], TensorType::known(DType::F32, &[3, 7, 2, 5]));
        assert_eq!(out[1], TensorType::known(DType::F32, &[3, 2, 5]));
    }

    #[test]
    fn malformed_nodes_are_refused() {
        let op = lstm(Direction::Forward);
        let wrong_w = [f32s(&[7, 3, 4]), f32s(&[1, 16, 4]), f32s(&[1, 20, 5])];
        let e = infer(&op, &wrong_w, 1).unwrap_err();
        assert!(e.message.contains("W is f32[1,16,4] but must be [1,20,4]"), "{e}");
        let wrong_p = [f32s(&[7, 3, 4]), f32s(&[1, 20, 4]), f32s(&[1, 20, 5]), None, None, None, None, f32s(&[1, 5])];
        assert!(infer(&op, &wrong_p, 1).unwrap_err().message.contains("P is"));
        let two_dirs_of_acts = Recurrent { activations: op.activations.repeat(2), ..op.clone() };
        let ok = [f32s(&[7, 3, 4]), f32s(&[1, 20, 4]), f32s(&[1, 20, 5])];
        assert!(infer(&two_dirs_of_acts, &ok, 1).unwrap_err().message.contains("6 activations"));
        assert!(infer(&op, &ok, 4).is_err());
        let gru = Recurrent {
            cell: Cell::Gru { linear_before_reset: false },
            activations: Cell::Gru { linear_before_reset: false }.default_activations().to_vec(),
            ..op
        };
        let gru_ins = [f32s(&[7, 3, 4]), f32s(&[1, 15, 4]), f32s(&[1, 15, 5]), None, None, None, f32s(&[1, 3, 5])];
        assert!(infer(&gru, &gru_ins, 1).unwrap_err().message.contains("at most 6 inputs"));
    }

    #[test]
    fn activations_consume_parameters_in_order() {
        let (mut alphas, mut betas) = ([0.5f32, 2.0].into_iter(), [0.1f32].into_iter());
        let a = Activation::from_onnx("LeakyRelu", &mut alphas, &mut betas).unwrap();
        let t = Activation::from_onnx("tanh", &mut alphas, &mut betas).unwrap();
        let s = Activation::from_onnx("ScaledTanh", &mut alphas, &mut betas).unwrap();
        let h = Activation::from_onnx("HardSigmoid", &mut alphas, &mut betas).unwrap();
        assert_eq!(a, Activation::LeakyRelu { alpha: 0.5 });
        assert_eq!(t, Activation::Tanh);
        assert_eq!(s, Activation::ScaledTanh { alpha: 2.0, beta: 0.1 });
        assert_eq!(h, Activation::HardSigmoid { alpha: 0.2, beta: 0.5 });
        assert!(Activation::from_onnx("Gelu", &mut alphas, &mut betas).is_none());
        assert_eq!(Activation::Sigmoid.apply(0.0), 0.5);
        assert_eq!(h.apply(10.0), 1.0);
        assert!((Activation::Softplus.apply(0.0) - 2f64.ln()).abs() < 1e-12);
        assert_eq!(Activation::Softplus.apply(100.0), 100.0);
        assert_eq!(Activation::ThresholdedRelu { alpha: 1.0 }.apply(0.5), 0.0);
    }

    #[test]
    fn flops_count_both_products() {
        let op = lstm(Direction::Forward);
        // 10 steps, batch 1, input 4: 4 gates × 5 units × (2·(4 + 5) + 4).
        assert_eq!(op.flops(10.0, 1.0, 4.0), 10.0 * 20.0 * 22.0);
    }
}
