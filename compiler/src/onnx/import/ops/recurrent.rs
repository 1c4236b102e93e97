//! Recurrent layers: LSTM, GRU, RNN → [`Recurrent`]. Their attributes are shared except the
//! cell's own flag (`input_forget`, `linear_before_reset`); opset differences are resolved here:
//! `layout` exists from opset 14 (absent means 0 before it), GRU's `linear_before_reset` from 3,
//! and opset 1's `output_sequence` needs nothing (Y is always available).

use super::Registry;
use crate::onnx::import::node::{Lowered, OpCx};
use crate::onnx::import::ImportError;
use kiln_ir::op::{recurrent_slot as slot, Activation, Cell, Direction, Recurrent};
use kiln_ir::Op;

pub(super) fn register(r: &mut Registry) {
    r.insert("LSTM", lstm);
    r.insert("GRU", gru);
    r.insert("RNN", rnn);
}

fn lstm(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let cell = Cell::Lstm { input_forget: cx.attrs.bool_or("input_forget", false)? };
    recurrent(cx, cell)
}

fn gru(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let cell = Cell::Gru { linear_before_reset: cx.attrs.bool_or("linear_before_reset", false)? };
    recurrent(cx, cell)
}

fn rnn(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    recurrent(cx, Cell::Rnn)
}

/// The attributes every recurrent op shares.
fn recurrent(cx: &mut OpCx, cell: Cell) -> Result<Lowered, ImportError> {
    let a = &cx.attrs;
    let dir_name = a.string_or("direction", "forward")?;
    let direction =
        Direction::from_onnx(&dir_name).ok_or_else(|| cx.error(format!("unknown direction '{dir_name}'")))?;
    let layout = a.int_or("layout", 0)?;
    if !(0..=1).contains(&layout) {
        return Err(cx.error(format!("layout must be 0 or 1, got {layout}")));
    }
    let clip = a.float("clip")?;
    let hidden_size = match a.int("hidden_size")? {
        Some(h) => usize::try_from(h).ok().filter(|&h| h > 0),
        // hidden_size is optional in the spec: R is [directions, gates·hidden, hidden].
        None => cx.input_type(slot::R)?.shape.get(2).and_then(|d| d.known()),
    }
    .ok_or_else(|| cx.error("hidden_size must be a positive attribute or follow from R's shape"))?;
    let per_direction = cell.default_activations().len();
    let activations = match a.string_list("activations")? {
        None => cell.default_activations().repeat(direction.count()),
        Some(names) => {
            let mut alphas = a.floats("activation_alpha")?.unwrap_or_default().into_iter();
            let mut betas = a.floats("activation_beta")?.unwrap_or_default().into_iter();
            let acts = names
                .iter()
                .map(|n| {
                    Activation::from_onnx(n, &mut alphas, &mut betas)
                        .ok_or_else(|| cx.error(format!("unknown activation '{n}'")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            // A bidirectional node given one direction's functions uses them for both.
            if acts.len() == per_direction && direction.count() == 2 {
                acts.repeat(2)
            } else {
                acts
            }
        }
    };
    let op = Recurrent { cell, direction, hidden_size, activations, clip, batch_major: layout == 1 };
    Ok(cx.same(Op::Recurrent(op)))
}
