//! Matching user-given input tensors to graph inputs: names, dtypes and shapes, binding symbolic
//! dims (from `--dim` and from the given tensors' shapes), and generating the inputs not given
//! (up to a size cap).

use crate::KilnError;
use kiln_ir::{Dim, Graph, Tensor, TensorType};
use std::collections::HashMap;
use std::path::PathBuf;

/// A tensor the user supplied for a named input, with the file it came from (for messages).
#[derive(Clone, Debug)]
pub struct GivenInput {
    pub name: String,
    pub path: PathBuf,
    pub tensor: Tensor,
}

/// Where each bound symbol's value came from, for conflict messages.
type Bindings = HashMap<String, (usize, String)>;

/// Checks `--input` names against the graph before any file is read: unknown or repeated names
/// are errors listing the valid ones.
pub fn check_names<'a>(graph: &Graph, names: impl IntoIterator<Item = &'a str>) -> Result<(), KilnError> {
    let valid: Vec<String> = graph.input_values().into_iter().map(|v| graph.value_name(v).to_string()).collect();
    let mut seen = Vec::new();
    for name in names {
        if !valid.iter().any(|v| v == name) {
            return Err(KilnError::UnknownInput { name: name.to_string(), valid });
        }
        if seen.contains(&name) {
            return Err(KilnError::DuplicateInput { name: name.to_string() });
        }
        seen.push(name);
    }
    Ok(())
}

/// Binds `dims` (each must name a symbol of the inputs) and the symbols the `given` tensors fix,
/// checking those tensors' dtypes and shapes, and re-infers every type.
pub fn bind_dims(
    graph: &mut Graph,
    dims: &[(String, usize)],
    given: &HashMap<String, GivenInput>,
) -> Result<(), KilnError> {
    check_names(graph, given.keys().map(String::as_str))?;
    let symbols = graph.input_symbols();
    let mut bound: Bindings = HashMap::new();
    for (sym, n) in dims {
        if !symbols.contains(sym) {
            return Err(KilnError::UnknownDim { sym: sym.clone(), valid: symbols });
        }
        bind(&mut bound, sym, *n, format!("--dim {sym}={n}"))?;
    }
    for v in graph.input_values() {
        if let Some(g) = given.get(graph.value_name(v)) {
            unify(&mut bound, graph.value_type(v), g)?;
        }
    }
    let plain: HashMap<String, usize> = bound.into_iter().map(|(s, (n, _))| (s, n)).collect();
    Ok(graph.bind_dims(&plain)?)
}

/// Binds `dims` and the symbols the given tensors determine, re-infers the graph, and returns one
/// tensor per graph input: given ones checked against the declared types, the rest generated with
/// [`Tensor::seeded`], each of at most `max_generated` bytes. `before_generate` (the memory check)
/// runs once every type is known, before anything is allocated.
pub fn bind_and_fill(
    graph: &mut Graph,
    dims: &[(String, usize)],
    given: Vec<GivenInput>,
    max_generated: u64,
    before_generate: impl FnOnce(&Graph) -> Result<(), KilnError>,
) -> Result<Vec<Tensor>, KilnError> {
    check_names(graph, given.iter().map(|g| g.name.as_str()))?;
    let mut by_name: HashMap<String, GivenInput> = given.into_iter().map(|g| (g.name.clone(), g)).collect();
    bind_dims(graph, dims, &by_name)?;
    let mut plan = Vec::new();
    for v in graph.input_values() {
        let name = graph.value_name(v).to_string();
        let ty = graph.value_type(v);
        plan.push(match by_name.remove(&name) {
            Some(g) => Source::Given(g.tensor),
            None => match ty.concrete_shape() {
                Some(shape) => Source::Generate { name, dtype: ty.dtype, shape },
                None => {
                    let unbound = ty.shape.iter().filter_map(sym_name).collect();
                    return Err(KilnError::MissingInput { name, expected: ty.clone(), unbound });
                }
            },
        });
    }
    before_generate(graph)?;
    plan.into_iter()
        .map(|s| match s {
            Source::Given(t) => Ok(t),
            Source::Generate { name, dtype, shape } => {
                let ty = TensorType::known(dtype, &shape);
                let bytes = super::memory::value_bytes(&ty).unwrap_or(u64::MAX);
                if bytes > max_generated {
                    return Err(KilnError::GeneratedInputTooLarge { name, ty, bytes, limit: max_generated });
                }
                Tensor::seeded(dtype, &shape, &name, 0.0, 1.0).map_err(|source| KilnError::Generate { name, source })
            }
        })
        .collect()
}

/// Where one graph input's tensor comes from.
enum Source {
    Given(Tensor),
    Generate { name: String, dtype: kiln_ir::DType, shape: Vec<usize> },
}

fn sym_name(d: &Dim) -> Option<String> {
    match d {
        Dim::Sym(s) => Some(s.clone()),
        Dim::Known(_) => None,
    }
}
fn bind(bound: &mut Bindings, sym: &str, n: usize, from: String) -> Result<(), KilnError> {
    match bound.get(sym) {
        Some((m, first_from)) if *m != n => Err(KilnError::DimConflict {
            sym: sym.to_string(),
            first: *m,
            first_from: first_from.clone(),
            second: n,
            second_from: from,
        }),
        Some(_) => Ok(()),
        None => {
            bound.insert(sym.to_string(), (n, from));
            Ok(())
        }
    }
}

/// Checks a given tensor against the declared type, binding the symbols its shape determines.
fn unify(bound: &mut Bindings, declared: &TensorType, given: &GivenInput) -> Result<(), KilnError> {
    let got = given.tensor.tensor_type();
    let mismatch = || KilnError::InputType {
        name: given.name.clone(),
        path: given.path.clone(),
        expected: declared.clone(),
        got: got.clone(),
    };
    if got.dtype != declared.dtype || got.rank() != declared.rank() {
        return Err(mismatch());
    }
    for (d, &n) in declared.shape.iter().zip(given.tensor.shape()) {
        match d {
            Dim::Known(k) if *k != n => return Err(mismatch()),
            Dim::Known(_) => {}
            Dim::Sym(s) => bind(bound, s, n, format!("input '{}'", given.name))?,
        }
    }
    Ok(())
}
