//! Lowering a graph with concrete shapes into a plan of steps. Each node becomes one of:
//! a value with no step (input, constant, or a Reshape-like alias of its input's bytes); a
//! member of a fused group (an optional Conv/MatMul/Gemm anchor plus a chain of elementwise ops
//! that read the group's running value in place, compiled into one Cranelift kernel); a native
//! host kernel (pooling, LRN, Concat); a native kernel that `native` plans (Softmax, norms,
//! reductions, movement, Resize); or a call into the interpreter's kernel for everything else
//! (control flow, integer ops, data-dependent shapes). A Concat's inputs that
//! native steps produce are placed in the Concat's output buffer, so nothing is copied. Buffers
//! get arena offsets from their lifetimes (`memory`).

use super::gemm::{block_depth, PackedLhs};
use super::host::{average_counts, ConcatPart, ConcatStep, GlobalPoolStep, LrnStep, PoolStep};
use super::linalg::{ConvAlgo, ConvStep, Mat, MatMulStep, Padded};
use super::memory::{self, Lifetime};
use super::microkernel;
use super::native::{self, NativeStep};
use super::program::{contiguous_strides, Instr, LoopNest, Program, Reg};
use super::window::Window;
use crate::ExecError;
use kiln_ir::op::{Binary, Geometry, PoolKind};
use kiln_ir::{DType, Graph, NodeId, Op, Tensor, ValueRef};
use std::collections::HashMap;

/// Index of a value in the plan.
pub(crate) type Vid = usize;

/// Where a value's elements are at run time.
#[derive(Clone, Debug)]
pub(crate) enum Storage {
    /// A constant, used in place (contiguous).
    Const(Tensor),
    /// Graph input `i`, as the caller passed it.
    Input(usize),
    /// Arena buffer `buffer` from element `offset` on (of the value's dtype, contiguous): a
    /// Concat's inputs are views into its output's buffer, so producers write their part in
    /// place.
    Buffer { buffer: usize, offset: usize },
    /// Slot `s` of the per-run table of tensors an interpreter kernel produced.
    Boxed(usize),
}

/// A value: its storage, dtype and (when known at compile time) shape.
#[derive(Clone, Debug)]
pub(crate) struct Val {
    pub storage: Storage,
    pub dtype: DType,
    pub shape: Option<Vec<usize>>,
}

/// A generated elementwise kernel applied over `outer` slices of the loop nest.
#[derive(Clone, Debug)]
pub(crate) struct Elementwise {
    pub kernel: usize,
    /// Inputs, then the output.
    pub operands: Vec<Vid>,
    pub outer: usize,
    pub inner: usize,
}

/// What a step does.
#[derive(Clone, Debug)]
pub(crate) enum StepKind {
    Elementwise(Elementwise),
    Conv(ConvStep, Option<Elementwise>),
    MatMul(MatMulStep, Option<Elementwise>),
    Pool(PoolStep),
    GlobalPool(GlobalPoolStep),
    Lrn(LrnStep),
    Concat(ConcatStep),
    Native(NativeStep),
    /// An interpreter kernel: the op, its inputs (absent optional ones as `None`), its outputs.
    Interp {
        op: Op,
        inputs: Vec<Option<Vid>>,
        outputs: Vec<Vid>,
    },
}

/// How a step runs, for `kiln inspect --plan`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Engine {
    /// A Cranelift-generated kernel.
    Cranelift,
    /// The GEMM core (plus a generated epilogue when fused).
    Gemm,
    /// A native Rust kernel.
    Host,
    /// The interpreter's kernel, called from the plan.
    Interpreter,
}

/// One step of the plan.
#[derive(Clone, Debug)]
pub(crate) struct Step {
    /// The nodes it computes (names) and their ops, in order.
    pub nodes: Vec<String>,
    pub ops: Vec<String>,
    pub engine: Engine,
    pub kind: StepKind,
    pub reads: Vec<Vid>,
    pub writes: Vec<Vid>,
}

/// A lowered graph: values, steps, where graph outputs are, the arena layout and the code.
pub(crate) struct Lowered {
    pub vals: Vec<Val>,
    pub steps: Vec<Step>,
    pub outputs: Vec<Vid>,
    pub buffer_offsets: Vec<usize>,
    pub arena_bytes: usize,
    pub boxed_slots: usize,
    /// Distinct elementwise kernels the plan calls (indices `0..kernels`).
    pub kernels: usize,
    /// A hash of every kernel's definition, so code compiled ahead of time can be checked
    /// against the plan that links it.
    pub fingerprint: u64,
}

/// Receives each distinct kernel, in index order, as lowering finds it.
pub(crate) trait KernelSink {
    fn kernel(&mut self, nest: &LoopNest, prog: &Program) -> Result<(), String>;
}

/// How a node is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Input,
    Const,
    /// Same bytes as input 0, new shape.
    Alias,
    /// Member of fused group `g`.
    Group(usize),
    Host,
    /// A kernel `native::plan` builds.
    Native,
    Interp,
}

/// Nodes computed together: an optional anchor, then elementwise members in topological order.
#[derive(Debug)]
struct Group {
    anchor: Option<NodeId>,
    members: Vec<NodeId>,
}

/// Lowers `g`, sending each distinct kernel to `sink`.
pub(crate) fn lower(g: &Graph, sink: &mut dyn KernelSink) -> Result<Lowered, ExecError> {
    let order = g.topo_order()?;
    let mut l = Lowerer {
        g,
        vals: Vec::new(),
        vid: HashMap::new(),
        steps: Vec::new(),
        sink,
        kernel_index: HashMap::new(),
        fingerprint: FNV_OFFSET,
        buffers: 0,
        boxed: 0,
        placement: HashMap::new(),
        concat_buffers: HashMap::new(),
        natives: HashMap::new(),
    };
    let (roles, groups, natives) = l.assign_roles(&order);
    l.natives = natives;
    l.placement = l.place_concat_inputs(&order, &roles, &groups);
    for &id in &order {
        l.emit(id, &roles, &groups)?;
    }
    let outputs: Vec<Vid> = g.outputs().iter().map(|v| l.vid[v]).collect();
    let lifetimes = l.lifetimes(&outputs);
    let (buffer_offsets, arena_bytes) = memory::assign(&lifetimes);
    Ok(Lowered {
        kernels: l.kernel_index.len(),
        fingerprint: l.fingerprint,
        vals: l.vals,
        steps: l.steps,
        outputs,
        buffer_offsets,
        arena_bytes,
        boxed_slots: l.boxed,
    })
}

fn internal(message: String) -> ExecError {
    ExecError::Kernel { node: String::new(), op: "jit".into(), message }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

struct Lowerer<'g, 's> {
    g: &'g Graph,
    vals: Vec<Val>,
    vid: HashMap<ValueRef, Vid>,
    steps: Vec<Step>,
    sink: &'s mut dyn KernelSink,
    /// Kernels by definition, so repeated shapes share code.
    kernel_index: HashMap<String, usize>,
    fingerprint: u64,
    buffers: usize,
    boxed: usize,
    /// Concat inputs written straight into the Concat's output: (the Concat, element offset).
    placement: HashMap<ValueRef, (NodeId, usize)>,
    /// The buffer of each Concat whose output is not itself placed in another.
    concat_buffers: HashMap<NodeId, usize>,
    /// The kernel of each `Role::Native` node, planned once (weights packed once).
    natives: HashMap<NodeId, native::Kernel>,
}

/// `[n, c, l]` as `[n, c, 1, l]`: a 1-D convolution's operands as 2-D ones.
fn with_unit_height(shape: &[usize]) -> Vec<usize> {
    [&shape[..2], &[1], &shape[2..]].concat()
}

/// A 1-D window's geometry as a 2-D one whose height is 1 (kernel, stride and dilation 1, no pads).
fn geometry_with_unit_height(g: Geometry) -> Geometry {
    let lift = |v: Vec<usize>, unit: usize| [vec![unit], v].concat();
    Geometry {
        kernel: lift(g.kernel, 1),
        strides: lift(g.strides, 1),
        dilations: lift(g.dilations, 1),
        pads_begin: lift(g.pads_begin, 0),
        pads_end: lift(g.pads_end, 0),
        output: lift(g.output, 1),
    }
}

/// The concrete f32 shape of a value, if it has one.
fn f32_shape(g: &Graph, v: ValueRef) -> Option<Vec<usize>> {
    let ty = g.value_type(v);
    (ty.dtype == DType::F32).then(|| ty.concrete_shape()).flatten()
}

impl Lowerer<'_, '_> {
    // ---- roles -------------------------------------------------------------------------

    #[allow(clippy::type_complexity)]
    fn assign_roles(&self, order: &[NodeId]) -> (HashMap<NodeId, Role>, Vec<Group>, HashMap<NodeId, native::Kernel>) {
        let g = self.g;
        let mut roles = HashMap::new();
        let mut natives = HashMap::new();
        let mut groups: Vec<Group> = Vec::new();
        let outputs: Vec<ValueRef> = g.outputs().to_vec();
        for &id in order {
            let node = g.node(id);
            let role = match &node.op {
                Op::Input => Role::Input,
                Op::Constant(_) => Role::Const,
                op if is_alias(op, node.outputs.len()) && self.static_shapes(id) => Role::Alias,
                _ if !self.all_static(id) => match native::plan(g, id, false) {
                    Some(kernel) => {
                        natives.insert(id, kernel);
                        Role::Native
                    }
                    None => Role::Interp,
                },
                _ if self.is_anchor(id) => {
                    groups.push(Group { anchor: Some(id), members: vec![] });
                    Role::Group(groups.len() - 1)
                }
                _ if self.elementwise_program(id).is_some() => {
                    // Join the group whose running value this node reads in place.
                    let joined = g.node_inputs(id).into_iter().flatten().find_map(|v| {
                        let Some(Role::Group(gid)) = roles.get(&v.node).copied() else { return None };
                        let grp: &Group = &groups[gid];
                        let head = grp.members.last().copied().or(grp.anchor)?;
                        let single_reader = g.consumers(v).iter().all(|&(c, _)| c == id);
                        let same_space =
                            f32_shape(g, v) == f32_shape(g, ValueRef::first(id)) && reads_in_place(&node.op);
                        (v.node == head && v.output == 0 && single_reader && same_space && !outputs.contains(&v))
                            .then_some(gid)
                    });
                    let gid = joined.unwrap_or_else(|| {
                        groups.push(Group { anchor: None, members: vec![] });
                        groups.len() - 1
                    });
                    groups[gid].members.push(id);
                    Role::Group(gid)
                }
                op if self.host_kernel(id, op) => Role::Host,
                _ => match native::plan(g, id, true) {
                    Some(kernel) => {
                        natives.insert(id, kernel);
                        Role::Native
                    }
                    None => Role::Interp,
                },
            };
            roles.insert(id, role);
        }
        (roles, groups, natives)
    }

    /// Every input and output has a concrete shape, whatever its dtype.
    fn static_shapes(&self, id: NodeId) -> bool {
        let g = self.g;
        let node = g.node(id);
        let concrete = |v: ValueRef| g.value_type(v).concrete_shape().is_some();
        (0..node.outputs.len()).all(|o| concrete(ValueRef { node: id, output: o }))
            && g.node_inputs(id).into_iter().flatten().all(concrete)
    }

    /// Every input and output is f32 with a concrete shape, or a constant (shape inputs).
    fn all_static(&self, id: NodeId) -> bool {
        let g = self.g;
        let node = g.node(id);
        let outs_ok = (0..node.outputs.len()).all(|o| f32_shape(g, ValueRef { node: id, output: o }).is_some());
        let ins_ok =
            g.node_inputs(id).into_iter().flatten().all(|v| f32_shape(g, v).is_some() || g.const_value(v).is_some());
        outs_ok && ins_ok
    }

    fn is_anchor(&self, id: NodeId) -> bool {
        let g = self.g;
        let ins = g.node_inputs(id);
        let konst = |i: usize| ins.get(i).copied().flatten().and_then(|v| g.const_value(v)).is_some();
        let rank = |i: usize| ins.get(i).copied().flatten().and_then(|v| f32_shape(g, v)).map(|s| s.len());
        match &g.node(id).op {
            Op::Conv(_) => {
                matches!(rank(0), Some(3 | 4)) && konst(1) && ins.get(2).copied().flatten().is_none_or(|_| konst(2))
            }
            Op::MatMul => {
                let shape = |i: usize| ins.get(i).copied().flatten().and_then(|v| f32_shape(g, v));
                matches!((shape(0), shape(1)), (Some(a), Some(b)) if !a.is_empty() && !b.is_empty() && product_count(&a, &b).is_some())
            }
            Op::Gemm(_) => rank(0) == Some(2) && rank(1) == Some(2),
            _ => false,
        }
    }

    fn host_kernel(&self, id: NodeId, op: &Op) -> bool {
        let g = self.g;
        let node = g.node(id);
        let x = g.node_inputs(id).first().copied().flatten().and_then(|v| f32_shape(g, v));
        match op {
            Op::Pool(p) => {
                let dil_one = p.window.dilations.iter().all(|&d| d == 1);
                let kind_ok = matches!(p.kind, PoolKind::Max | PoolKind::Average { .. });
                node.outputs.len() == 1 && x.is_some_and(|s| s.len() == 4) && dil_one && kind_ok
            }
            Op::GlobalPool(kind) => matches!(kind, PoolKind::Max | PoolKind::Average { .. }),
            Op::Lrn(l) => l.size > 0 && x.is_some_and(|s| s.len() >= 3),
            Op::Concat { .. } => true,
            _ => false,
        }
    }

    /// The node as a program over its inputs (Load(i) = input slot i), if it is elementwise.
    fn elementwise_program(&self, id: NodeId) -> Option<Program> {
        let g = self.g;
        let ins = g.node_inputs(id);
        let mut p = Program::default();
        let load = |p: &mut Program, i: usize| p.push(Instr::Load(i));
        let scalar_const = |i: usize| -> Option<Option<f32>> {
            match ins.get(i).copied().flatten() {
                None => Some(None),
                Some(v) => g.const_value(v).filter(|t| t.len() == 1).map(|t| Some(t.to_vec::<f32>()[0])),
            }
        };
        match &g.node(id).op {
            Op::Unary(u) => {
                let x = load(&mut p, 0);
                p.unary(*u, x)?;
            }
            Op::Binary(b) => {
                let a = load(&mut p, 0);
                // Pow by a constant the program spells out reads no exponent operand.
                let by_const = match (b, scalar_const(1)) {
                    (Binary::Pow, Some(Some(e))) => p.pow_const(a, e),
                    _ => None,
                };
                if by_const.is_none() {
                    let c = load(&mut p, 1);
                    p.binary(*b, a, c)?;
                }
            }
            Op::Variadic(v) if !ins.is_empty() => {
                let regs: Vec<Reg> = (0..ins.len()).map(|i| load(&mut p, i)).collect();
                p.variadic(*v, &regs);
            }
            Op::Clip => {
                let (lo, hi) = (scalar_const(1)?, scalar_const(2)?);
                let mut x = load(&mut p, 0);
                if let Some(lo) = lo {
                    let c = p.push(Instr::Const(lo));
                    x = p.push(Instr::Max(x, c));
                }
                if let Some(hi) = hi {
                    let c = p.push(Instr::Const(hi));
                    p.push(Instr::Min(x, c));
                }
                if p.instrs.len() == 1 {
                    return None;
                }
            }
            Op::BatchNorm { .. } if g.node(id).outputs.len() == 1 && (1..5).all(|i| scalar_or_const(g, &ins, i)) => {
                // y = x·s + t with s, t folded at lowering (operands 1 and 2 of the group).
                let x = load(&mut p, 0);
                let s = load(&mut p, 1);
                let t = load(&mut p, 2);
                p.push(Instr::MulAdd(x, s, t));
            }
            Op::Transpose { .. } | Op::Expand => {
                load(&mut p, 0);
            }
            _ => return None,
        }
        Some(p)
    }

    // ---- emission ----------------------------------------------------------------------

    fn new_val(&mut self, storage: Storage, dtype: DType, shape: Option<Vec<usize>>) -> Vid {
        self.vals.push(Val { storage, dtype, shape });
        self.vals.len() - 1
    }

    fn new_buffer(&mut self, shape: Vec<usize>) -> Vid {
        self.new_typed_buffer(shape, DType::F32)
    }

    fn new_typed_buffer(&mut self, shape: Vec<usize>, dtype: DType) -> Vid {
        self.buffers += 1;
        self.new_val(Storage::Buffer { buffer: self.buffers - 1, offset: 0 }, dtype, Some(shape))
    }

    /// The buffer for native output `v` (of its graph dtype): its part of the Concat it is
    /// placed in, the buffer its own inputs were placed in (for a Concat), or a new one.
    fn output_buffer(&mut self, v: ValueRef, shape: Vec<usize>) -> Vid {
        let dtype = self.g.value_type(v).dtype;
        let home = self.home(v).or_else(|| self.concat_buffers.get(&v.node).map(|&b| (b, 0)));
        match home {
            Some((buffer, offset)) => self.new_val(Storage::Buffer { buffer, offset }, dtype, Some(shape)),
            None => self.new_typed_buffer(shape, dtype),
        }
    }

    /// Where a placed value lives: its Concat's home (recursively), or that Concat's own buffer.
    fn home(&mut self, v: ValueRef) -> Option<(usize, usize)> {
        let &(concat, offset) = self.placement.get(&v)?;
        let (buffer, base) = self.home(ValueRef::first(concat)).unwrap_or_else(|| {
            let buffers = &mut self.buffers;
            let b = *self.concat_buffers.entry(concat).or_insert_with(|| {
                *buffers += 1;
                *buffers - 1
            });
            (b, 0)
        });
        Some((buffer, base + offset))
    }

    /// Which Concat inputs native steps can write in place: the input is the fresh output of a
    /// fused group or host kernel, read by no other Concat and only once by this one, and the
    /// Concat joins whole contiguous blocks (nothing outside its axis varies).
    fn place_concat_inputs(
        &self,
        order: &[NodeId],
        roles: &HashMap<NodeId, Role>,
        groups: &[Group],
    ) -> HashMap<ValueRef, (NodeId, usize)> {
        let g = self.g;
        let mut placement = HashMap::new();
        for &c in order {
            let Op::Concat { axis } = g.node(c).op else { continue };
            let Some(out) = (roles[&c] == Role::Host).then(|| f32_shape(g, ValueRef::first(c))).flatten() else {
                continue;
            };
            let a = if axis < 0 { axis + out.len() as i64 } else { axis } as usize;
            if out[..a].iter().product::<usize>() != 1 {
                continue;
            }
            let ins = g.node_inputs(c);
            let mut offset = 0;
            for v in ins.iter().flatten() {
                let len: usize = f32_shape(g, *v).map_or(0, |s| s.iter().product());
                let fresh = match roles.get(&v.node) {
                    Some(Role::Group(gid)) => {
                        groups[*gid].members.last().copied().or(groups[*gid].anchor) == Some(v.node)
                    }
                    Some(Role::Host | Role::Native) => true,
                    _ => false,
                };
                let once = ins.iter().flatten().filter(|&u| u == v).count() == 1;
                let concats =
                    g.consumers(*v).iter().filter(|&&(n, _)| matches!(g.node(n).op, Op::Concat { .. })).count();
                if fresh && v.output == 0 && once && concats == 1 {
                    placement.insert(*v, (c, offset));
                }
                offset += len;
            }
        }
        placement
    }

    fn input_vid(&self, v: ValueRef) -> Vid {
        self.vid[&v]
    }

    fn shape(&self, v: Vid) -> Vec<usize> {
        self.vals[v].shape.clone().expect("native steps only read values of known shape")
    }

    /// A constant Conv weight `[Cout, Cin/g, kh, kw]` packed for the GEMM (whose B is read in
    /// place or not), one matrix per group; none when the weight is computed at run time.
    fn packed_weights(&self, w: Vid, groups: usize, in_place: bool) -> Vec<PackedLhs> {
        let Storage::Const(Tensor::F32(t)) = &self.vals[w].storage else { return Vec::new() };
        let Some(all) = t.as_slice() else { return Vec::new() };
        let shape = t.shape();
        let (m, k) = (shape[0] / groups, shape[1..].iter().product::<usize>());
        if m * k == 0 {
            return Vec::new();
        }
        let kernel = microkernel::best();
        all.chunks_exact(m * k).map(|g| PackedLhs::new(kernel, g, m, k, block_depth(k, in_place))).collect()
    }

    fn kernel(&mut self, nest: &LoopNest, prog: &Program) -> Result<usize, ExecError> {
        let key = format!("{nest:?}{prog:?}");
        if let Some(&i) = self.kernel_index.get(&key) {
            return Ok(i);
        }
        self.sink.kernel(nest, prog).map_err(internal)?;
        // FNV-1a over the definitions, in index order.
        for b in key.bytes() {
            self.fingerprint = (self.fingerprint ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
        let i = self.kernel_index.len();
        self.kernel_index.insert(key, i);
        Ok(i)
    }

    fn emit(&mut self, id: NodeId, roles: &HashMap<NodeId, Role>, groups: &[Group]) -> Result<(), ExecError> {
        let g = self.g;
        let node = g.node(id);
        match roles[&id] {
            Role::Input => {
                let pos = g.inputs().iter().position(|&n| n == id).expect("input nodes are listed");
                let ty = g.value_type(ValueRef::first(id));
                let v = self.new_val(Storage::Input(pos), ty.dtype, ty.concrete_shape());
                self.vid.insert(ValueRef::first(id), v);
            }
            Role::Const => {
                let Op::Constant(t) = &node.op else { unreachable!("constant role") };
                let v = self.new_val(Storage::Const(contiguous(t)), t.dtype(), Some(t.shape().to_vec()));
                self.vid.insert(ValueRef::first(id), v);
            }
            Role::Alias => {
                let src = self.input_vid(g.node_inputs(id)[0].expect("alias ops have a data input"));
                let ty = g.value_type(ValueRef::first(id));
                let v = self.new_val(self.vals[src].storage.clone(), ty.dtype, ty.concrete_shape());
                self.vid.insert(ValueRef::first(id), v);
            }
            Role::Host => self.emit_host(id)?,
            Role::Native => self.emit_native(id),
            Role::Interp => self.emit_interp(id),
            Role::Group(gid) => {
                let grp = &groups[gid];
                let last = grp.members.last().copied().or(grp.anchor).expect("groups are never empty");
                if last == id {
                    self.emit_group(grp)?;
                }
            }
        }
        Ok(())
    }

    fn emit_interp(&mut self, id: NodeId) {
        let g = self.g;
        let node = g.node(id);
        let inputs: Vec<Option<Vid>> = g.node_inputs(id).into_iter().map(|v| v.map(|v| self.vid[&v])).collect();
        let outputs: Vec<Vid> = (0..node.outputs.len())
            .map(|o| {
                let ty = &node.outputs[o].ty;
                self.boxed += 1;
                let v = self.new_val(Storage::Boxed(self.boxed - 1), ty.dtype, ty.concrete_shape());
                self.vid.insert(ValueRef { node: id, output: o }, v);
                v
            })
            .collect();
        self.steps.push(Step {
            nodes: vec![node.name.clone()],
            ops: vec![node.op.onnx_name().to_string()],
            engine: Engine::Interpreter,
            reads: inputs.iter().flatten().copied().collect(),
            writes: outputs.clone(),
            kind: StepKind::Interp { op: node.op.clone(), inputs, outputs },
        });
    }

    fn emit_host(&mut self, id: NodeId) -> Result<(), ExecError> {
        let g = self.g;
        let node = g.node(id);
        let ins: Vec<Vid> = g.node_inputs(id).into_iter().flatten().map(|v| self.vid[&v]).collect();
        let out_shape = f32_shape(g, ValueRef::first(id)).expect("host kernels have static f32 outputs");
        let y = self.output_buffer(ValueRef::first(id), out_shape.clone());
        self.vid.insert(ValueRef::first(id), y);
        let x = ins[0];
        let xs = self.shape(x);
        let kind = match &node.op {
            Op::Pool(p) => {
                let kernel = p.kernel();
                let geo = p.window.resolve(&xs[2..], kernel, p.ceil_mode).map_err(|m| self.fail(id, m))?;
                let window = Window::from_geometry(&xs[2..], &geo);
                let scale = match p.kind {
                    PoolKind::Average { count_include_pad } => {
                        let axis = |a: usize| {
                            let (n_out, n) = if a == 0 { (window.oh, window.h) } else { (window.ow, window.w) };
                            let (k, s) = (kernel[a], geo.strides[a]);
                            average_counts(n_out, n, (k, s), (geo.pads_begin[a], geo.pads_end[a]), count_include_pad)
                        };
                        let (rows, cols) = (axis(0), axis(1));
                        Some(rows.iter().flat_map(|r| cols.iter().map(move |c| 1.0 / (r * c).max(1.0))).collect())
                    }
                    _ => None,
                };
                StepKind::Pool(PoolStep { x, y, planes: xs[0] * xs[1], window, scale })
            }
            Op::GlobalPool(kind) => StepKind::GlobalPool(GlobalPoolStep {
                x,
                y,
                max: *kind == PoolKind::Max,
                planes: xs[0] * xs.get(1).copied().unwrap_or(1),
                plane: xs.iter().skip(2).product(),
            }),
            Op::Lrn(lrn) => StepKind::Lrn(LrnStep {
                x,
                y,
                batch: xs[0],
                channels: xs[1],
                plane: xs[2..].iter().product(),
                size: lrn.size,
                alpha: lrn.alpha,
                beta: lrn.beta,
                bias: lrn.bias,
            }),
            Op::Concat { axis } => {
                let rank = out_shape.len() as i64;
                let a = if *axis < 0 { axis + rank } else { *axis } as usize;
                let mut parts = Vec::new();
                let mut at = 0;
                for (v, &vid) in g.node_inputs(id).into_iter().flatten().zip(&ins) {
                    let len = self.shape(vid)[a..].iter().product::<usize>();
                    if self.placement.get(&v).is_none_or(|&(c, _)| c != id) {
                        parts.push(ConcatPart { x: vid, len, at });
                    }
                    at += len;
                }
                if parts.is_empty() {
                    // Every input was written in place: the output needs no step.
                    return Ok(());
                }
                StepKind::Concat(ConcatStep { parts, y, outer: out_shape[..a].iter().product(), row: at })
            }
            _ => unreachable!("host_kernel() admits only these ops"),
        };
        self.steps.push(Step {
            nodes: vec![node.name.clone()],
            ops: vec![node.op.onnx_name().to_string()],
            engine: Engine::Host,
            reads: ins,
            writes: vec![y],
            kind,
        });
        Ok(())
    }

    fn emit_native(&mut self, id: NodeId) {
        let g = self.g;
        let node = g.node(id);
        let kernel = self.natives.remove(&id).expect("native nodes were planned with their role");
        let ins = g.node_inputs(id);
        if let native::Kernel::Copy(parts) = &kernel {
            if self.emit_views(id, parts) {
                return;
            }
        }
        let xs: Vec<Vid> =
            (0..kernel.arity()).map(|i| self.vid[&ins[i].expect("native kernels read only present inputs")]).collect();
        let ys: Vec<Vid> = (0..node.outputs.len())
            .map(|o| {
                let v = ValueRef { node: id, output: o };
                let shape = g.value_type(v).concrete_shape().expect("native kernels have static outputs");
                let y = self.output_buffer(v, shape);
                self.vid.insert(v, y);
                y
            })
            .collect();
        let scratch = kernel.scratch_len().map(|len| self.new_buffer(vec![len]));
        self.steps.push(Step {
            nodes: vec![node.name.clone()],
            ops: vec![node.op.onnx_name().to_string()],
            engine: Engine::Host,
            // A scratch buffer lives for its step only.
            reads: xs.iter().copied().chain(scratch).collect(),
            writes: ys.clone(),
            kind: StepKind::Native(NativeStep { kernel, xs, ys, scratch }),
        });
    }

    /// Makes every output of a copy a view into its input's arena buffer, if each is one
    /// contiguous run of it and none is placed in a Concat; whether it did.
    fn emit_views(&mut self, id: NodeId, parts: &[super::copy::CopyStep]) -> bool {
        let g = self.g;
        let x = self.vid[&g.node_inputs(id)[0].expect("copies have a data input")];
        let Storage::Buffer { buffer, offset } = self.vals[x].storage else { return false };
        let starts: Option<Vec<usize>> = parts.iter().map(|p| p.run_start()).collect();
        let Some(starts) = starts else { return false };
        let outputs: Vec<ValueRef> = (0..parts.len()).map(|o| ValueRef { node: id, output: o }).collect();
        if outputs.iter().any(|v| self.placement.contains_key(v)) {
            return false;
        }
        for (v, start) in outputs.into_iter().zip(starts) {
            let ty = g.value_type(v);
            let y = self.new_val(Storage::Buffer { buffer, offset: offset + start }, ty.dtype, ty.concrete_shape());
            self.vid.insert(v, y);
        }
        true
    }

    fn fail(&self, id: NodeId, message: String) -> ExecError {
        let node = self.g.node(id);
        ExecError::Kernel { node: node.name.clone(), op: node.op.onnx_name().into(), message }
    }

    /// Emits an anchor (if any) and the group's elementwise members as one kernel.
    fn emit_group(&mut self, grp: &Group) -> Result<(), ExecError> {
        let g = self.g;
        let last = grp.members.last().copied().or(grp.anchor).expect("groups are never empty");
        let out_shape = f32_shape(g, ValueRef::first(last)).expect("group outputs are static f32");
        let y = self.output_buffer(ValueRef::first(last), out_shape.clone());
        let mut prog = Program::default();
        // Operands (vid, shape, strides); the running value's register.
        let mut operands: Vec<(Vid, Vec<usize>, Vec<isize>)> = Vec::new();
        let mut running: Option<(ValueRef, Reg)> = None;
        let mut reads: Vec<Vid> = Vec::new();
        let mut anchor_kind = None;
        if let Some(a) = grp.anchor {
            let (kind, bias) = self.anchor_step(a, y)?;
            anchor_kind = Some(kind);
            operands.push((y, out_shape.clone(), contiguous_strides(&out_shape)));
            let mut r = prog.push(Instr::Load(0));
            if let Some((bias_vid, bias_shape, scale)) = bias {
                operands.push((bias_vid, bias_shape.clone(), contiguous_strides(&bias_shape)));
                let b = prog.push(Instr::Load(operands.len() - 1));
                r = match scale {
                    Some(beta) => {
                        let c = prog.push(Instr::Const(beta));
                        prog.push(Instr::MulAdd(c, b, r))
                    }
                    None => prog.push(Instr::Add(r, b)),
                };
            }
            running = Some((ValueRef::first(a), r));
            reads.extend(self.steps_reads_of(a));
            // A conv's scratch lives for its step only.
            if let Some(scratch) = anchor_kind.as_ref().and_then(AnchorKind::scratch) {
                reads.push(scratch);
            }
        }
        for &m in &grp.members {
            let node = g.node(m);
            let ins = g.node_inputs(m);
            let mut member = self.elementwise_program(m).expect("members were admitted as elementwise");
            // Per-node operand remap: slot i → register in the group program.
            let mut slot_regs: HashMap<usize, Reg> = HashMap::new();
            if let Op::BatchNorm { epsilon } = node.op {
                let (s, t) = fold_batch_norm(g, &ins, epsilon, out_shape.len());
                for (slot, tensor) in [(1, s), (2, t)] {
                    let shape = tensor.shape().to_vec();
                    let vid = self.new_val(Storage::Const(tensor), DType::F32, Some(shape.clone()));
                    operands.push((vid, shape.clone(), contiguous_strides(&shape)));
                    reads.push(vid);
                    slot_regs.insert(slot, prog.push(Instr::Load(operands.len() - 1)));
                }
            }
            for (slot, v) in ins.iter().enumerate() {
                let Some(v) = *v else { continue };
                if slot_regs.contains_key(&slot) || !member.instrs.contains(&Instr::Load(slot)) {
                    continue;
                }
                if let Some((rv, reg)) = running {
                    if rv == v {
                        slot_regs.insert(slot, reg);
                        continue;
                    }
                }
                let vid = self.vid[&v];
                let shape = self.shape(vid);
                let strides = match &node.op {
                    Op::Transpose { perm } => {
                        let st = contiguous_strides(&shape);
                        let perm: Vec<usize> = match perm {
                            Some(p) => p.clone(),
                            None => (0..shape.len()).rev().collect(),
                        };
                        operands.push((
                            vid,
                            perm.iter().map(|&d| shape[d]).collect(),
                            perm.iter().map(|&d| st[d]).collect(),
                        ));
                        reads.push(vid);
                        slot_regs.insert(slot, prog.push(Instr::Load(operands.len() - 1)));
                        continue;
                    }
                    _ => contiguous_strides(&shape),
                };
                operands.push((vid, shape, strides));
                reads.push(vid);
                slot_regs.insert(slot, prog.push(Instr::Load(operands.len() - 1)));
            }
            // Splice the member's program into the group's.
            let mut map: Vec<Reg> = Vec::with_capacity(member.instrs.len());
            for instr in member.instrs.drain(..) {
                let r = match instr {
                    Instr::Load(slot) => slot_regs[&slot],
                    other => prog.push(remap(other, &map)),
                };
                map.push(r);
            }
            running = Some((ValueRef::first(m), *map.last().expect("member programs are never empty")));
        }
        self.vid.insert(ValueRef::first(last), y);
        let names: Vec<String> = grp.anchor.iter().chain(&grp.members).map(|&n| g.node(n).name.clone()).collect();
        let ops: Vec<String> =
            grp.anchor.iter().chain(&grp.members).map(|&n| g.node(n).op.onnx_name().to_string()).collect();
        // A convolution applies a bias, residual and ReLU itself, tile by tile.
        if let Some(AnchorKind::Conv(conv)) = &mut anchor_kind {
            if !matches!(conv.algo, ConvAlgo::Depthwise) {
                if let Some((bias, residual, relu)) = tile_epilogue(&prog, &operands, &out_shape) {
                    (conv.bias, conv.residual, conv.relu) = (bias, residual, relu);
                    prog.instrs.truncate(1);
                }
            }
        }
        // An anchor with nothing after it needs no kernel.
        let epilogue = if prog.instrs.len() > 1 || grp.anchor.is_none() {
            let nest = LoopNest::broadcast(
                &out_shape,
                &operands.iter().map(|(_, s, st)| (s.clone(), st.clone())).collect::<Vec<_>>(),
            );
            let kernel = self.kernel(&nest, &prog)?;
            let mut vids: Vec<Vid> = operands.iter().map(|(v, _, _)| *v).collect();
            vids.push(y);
            Some(Elementwise { kernel, operands: vids, outer: nest.dims[0], inner: nest.len() / nest.dims[0].max(1) })
        } else {
            None
        };
        let (engine, kind) = match (anchor_kind, epilogue) {
            (Some(AnchorKind::Conv(c)), e) => (Engine::Gemm, StepKind::Conv(c, e)),
            (Some(AnchorKind::MatMul(m)), e) => (Engine::Gemm, StepKind::MatMul(m, e)),
            (None, Some(e)) => (Engine::Cranelift, StepKind::Elementwise(e)),
            (None, None) => unreachable!("groups without anchor always get a kernel"),
        };
        self.steps.push(Step { nodes: names, ops, engine, kind, reads, writes: vec![y] });
        Ok(())
    }

    fn steps_reads_of(&self, a: NodeId) -> Vec<Vid> {
        self.g.node_inputs(a).into_iter().flatten().map(|v| self.vid[&v]).collect()
    }

    /// The anchor's own step writing into `y`, and its bias (vid, broadcastable shape, scale:
    /// `None` for a plain add, `Some(beta)` for Gemm's `beta·C`).
    #[allow(clippy::type_complexity)]
    fn anchor_step(
        &mut self,
        a: NodeId,
        y: Vid,
    ) -> Result<(AnchorKind, Option<(Vid, Vec<usize>, Option<f32>)>), ExecError> {
        let g = self.g;
        let ins = g.node_inputs(a);
        let vids: Vec<Option<Vid>> = ins.iter().map(|v| v.map(|v| self.vid[&v])).collect();
        let vid = |i: usize| vids.get(i).copied().flatten();
        match &g.node(a).op {
            Op::Conv(c) => {
                let (x, w) = (vid(0).expect("conv input"), vid(1).expect("conv weight"));
                let (mut xs, mut ws) = (self.shape(x), self.shape(w));
                let mut geo = c.window.resolve(&xs[2..], &ws[2..], false).map_err(|m| self.fail(a, m))?;
                // The bias broadcasts over the output's spatial dims, one or two.
                let bias_shape = [vec![ws[0]], vec![1; xs.len() - 2]].concat();
                if xs.len() == 3 {
                    // A 1-D convolution is a 2-D one over planes of height 1: same bytes.
                    (xs, ws, geo) = (with_unit_height(&xs), with_unit_height(&ws), geometry_with_unit_height(geo));
                }
                let depthwise = c.group == xs[1] && ws[0] == c.group && ws[1] == 1;
                let pointwise = ws[2] == 1
                    && ws[3] == 1
                    && geo.strides.iter().all(|&s| s == 1)
                    && geo.pads_begin.iter().chain(&geo.pads_end).all(|&p| p == 0);
                let window = Window::from_geometry(&xs[2..], &geo);
                let padded = Padded::new(&window, xs[1], xs[1] / c.group);
                let algo = if depthwise {
                    ConvAlgo::Depthwise
                } else if pointwise {
                    // With few output channels, packing B costs about as much as the few strips
                    // of tiles that use it (ResNet-50's 256→64 layers at 56×56: 0.72 → 0.58 ms in
                    // place); with many, packed panels are read faster.
                    let in_place = microkernel::best().shifted.is_some() && ws[0] / c.group <= 64;
                    let plane = (xs[2] * xs[3]) as isize;
                    ConvAlgo::Pointwise { rows: in_place.then(|| (0..ws[1] as isize).map(|ch| ch * plane).collect()) }
                } else if microkernel::best().shifted.is_some() && padded.worth_it(&window, xs[1] / c.group) {
                    let scratch = self.new_buffer(vec![padded.scratch_len(&window, ws[0])]);
                    ConvAlgo::Shifted { padded, scratch }
                } else {
                    ConvAlgo::Im2col
                };
                let packed = match algo {
                    ConvAlgo::Depthwise => Vec::new(),
                    ConvAlgo::Shifted { .. } | ConvAlgo::Pointwise { rows: Some(_) } => {
                        self.packed_weights(w, c.group, true)
                    }
                    _ => self.packed_weights(w, c.group, false),
                };
                let step = ConvStep {
                    algo,
                    x,
                    w,
                    y,
                    batch: xs[0],
                    cin: xs[1],
                    cout: ws[0],
                    window,
                    groups: c.group,
                    packed,
                    bias: None,
                    residual: None,
                    relu: false,
                };
                // The depthwise kernel adds its bias itself; the others leave it to the epilogue.
                let (step, bias) = if depthwise {
                    (ConvStep { bias: vid(2), ..step }, None)
                } else {
                    (step, vid(2).map(|b| (b, bias_shape, None)))
                };
                Ok((AnchorKind::Conv(step), bias))
            }
            Op::MatMul => {
                let (av, bv) = (vid(0).expect("lhs"), vid(1).expect("rhs"));
                let (ash, bsh) = (self.shape(av), self.shape(bv));
                let step = matmul_step(av, &ash, bv, &bsh, y, false, false, 1.0);
                Ok((AnchorKind::MatMul(step), None))
            }
            Op::Gemm(gm) => {
                let (av, bv) = (vid(0).expect("lhs"), vid(1).expect("rhs"));
                let (ash, bsh) = (self.shape(av), self.shape(bv));
                let step = matmul_step(av, &ash, bv, &bsh, y, gm.trans_a, gm.trans_b, gm.alpha);
                let bias = vid(2).filter(|_| gm.beta != 0.0).map(|c| {
                    let scale = (gm.beta != 1.0).then_some(gm.beta);
                    (c, self.shape(c), scale)
                });
                Ok((AnchorKind::MatMul(step), bias))
            }
            _ => unreachable!("is_anchor() admits only these ops"),
        }
    }

    /// Buffer lifetimes: from the first step writing to the last reading (or the end, for
    /// graph outputs).
    fn lifetimes(&self, outputs: &[Vid]) -> Vec<Lifetime> {
        let mut lt: Vec<Option<Lifetime>> = vec![None; self.buffers];
        let end = self.steps.len();
        let touch = |v: Vid, at: usize, lt: &mut Vec<Option<Lifetime>>| {
            if let Storage::Buffer { buffer: b, offset } = self.vals[v].storage {
                let val = &self.vals[v];
                let bytes =
                    val.shape.as_ref().map_or(0, |s| (offset + s.iter().product::<usize>()) * val.dtype.size_of());
                let e = lt[b].get_or_insert(Lifetime { bytes, first: at, last: at });
                e.bytes = e.bytes.max(bytes);
                e.first = e.first.min(at);
                e.last = e.last.max(at);
            }
        };
        for (i, s) in self.steps.iter().enumerate() {
            for &v in s.reads.iter().chain(&s.writes) {
                touch(v, i, &mut lt);
            }
        }
        for &v in outputs {
            touch(v, end, &mut lt);
        }
        lt.into_iter().map(|l| l.unwrap_or(Lifetime { bytes: 0, first: 0, last: 0 })).collect()
    }
}

/// The group's program as an epilogue the GEMM applies to each tile, if it is one:
/// `max(y + bias + residual, 0)`, each part optional and in that order, with a bias per output
/// channel and a residual of the output's shape, both contiguous. Returns (bias, residual, relu).
fn tile_epilogue(
    prog: &Program,
    operands: &[(Vid, Vec<usize>, Vec<isize>)],
    out_shape: &[usize],
) -> Option<(Option<Vid>, Option<Vid>, bool)> {
    use Instr::{Add, Const, Load, Max};
    let ins = &prog.instrs;
    if ins.first() != Some(&Load(0)) || out_shape.len() != 4 {
        return None;
    }
    let (mut bias, mut residual, mut relu) = (None, None, false);
    // `running` is the register holding the value so far; each part is two instructions.
    let (mut running, mut i) = (0, 1);
    while i < ins.len() {
        let on_running = |a: Reg, b: Reg| (a, b) == (running, i) || (a, b) == (i, running);
        match (&ins[i], ins.get(i + 1)) {
            (&Load(k), Some(&Add(a, b))) if !relu && on_running(a, b) => {
                let (vid, shape, strides) = &operands[k];
                let contiguous = *strides == contiguous_strides(shape);
                let per_channel = shape.len() == 3 && shape[0] == out_shape[1] && shape[1..] == [1, 1];
                if per_channel && contiguous && bias.is_none() && residual.is_none() {
                    bias = Some(*vid);
                } else if shape.as_slice() == out_shape && contiguous && residual.is_none() {
                    residual = Some(*vid);
                } else {
                    return None;
                }
            }
            (&Const(zero), Some(&Max(a, b))) if zero == 0.0 && !relu && on_running(a, b) => relu = true,
            _ => return None,
        }
        (running, i) = (i + 1, i + 2);
    }
    Some((bias, residual, relu))
}

enum AnchorKind {
    Conv(ConvStep),
    MatMul(MatMulStep),
}

impl AnchorKind {
    fn scratch(&self) -> Option<Vid> {
        match self {
            AnchorKind::Conv(c) => c.scratch(),
            AnchorKind::MatMul(_) => None,
        }
    }
}

/// Operand shapes as MatMul sees them: a vector lhs `[k]` is `[1,k]`, a vector rhs `[k]` is `[k,1]`.
fn promote(a: &[usize], b: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let a2 = if a.len() == 1 { vec![1, a[0]] } else { a.to_vec() };
    let b2 = if b.len() == 1 { vec![b[0], 1] } else { b.to_vec() };
    (a2, b2)
}

/// The number of products when each operand's batch dims are either all 1 or the full broadcast
/// batch shape (the cases a constant batch stride describes); `None` for partial broadcasts.
fn product_count(a: &[usize], b: &[usize]) -> Option<usize> {
    let (a2, b2) = promote(a, b);
    let (ab, bb) = (&a2[..a2.len() - 2], &b2[..b2.len() - 2]);
    let rank = ab.len().max(bb.len());
    let pad = |s: &[usize]| -> Vec<usize> { std::iter::repeat_n(1, rank - s.len()).chain(s.iter().copied()).collect() };
    let (ap, bp) = (pad(ab), pad(bb));
    let full: Vec<usize> = ap.iter().zip(&bp).map(|(&x, &y)| x.max(y)).collect();
    let ok = |p: &[usize]| p.iter().product::<usize>() == 1 || p == full.as_slice();
    (ok(&ap) && ok(&bp)).then(|| full.iter().product())
}

/// A product step for `A·B` (optionally transposed) with numpy-style batching.
#[allow(clippy::too_many_arguments)]
fn matmul_step(
    av: Vid,
    ash: &[usize],
    bv: Vid,
    bsh: &[usize],
    y: Vid,
    trans_a: bool,
    trans_b: bool,
    alpha: f32,
) -> MatMulStep {
    let (a2, b2) = promote(ash, bsh);
    let (ar, ac) = (a2[a2.len() - 2], a2[a2.len() - 1]);
    let (br, bc) = (b2[b2.len() - 2], b2[b2.len() - 1]);
    let (m, k) = if trans_a { (ac, ar) } else { (ar, ac) };
    let n = if trans_b { br } else { bc };
    let mat = |vid: Vid, shape: &[usize], trans: bool| {
        let (rows, cols) = (shape[shape.len() - 2], shape[shape.len() - 1]);
        let (rs, cs) = if trans { (1, cols as isize) } else { (cols as isize, 1) };
        let batched = shape[..shape.len() - 2].iter().product::<usize>() > 1;
        Mat { vid, rs, cs, bs: if batched { (rows * cols) as isize } else { 0 } }
    };
    MatMulStep {
        batch: product_count(ash, bsh).expect("checked by is_anchor"),
        m,
        n,
        k,
        a: mat(av, &a2, trans_a),
        b: mat(bv, &b2, trans_b),
        alpha,
        c: y,
    }
}

/// Ops whose output is their input's bytes under a new shape.
fn is_alias(op: &Op, outputs: usize) -> bool {
    matches!(op, Op::Reshape { .. } | Op::Flatten { .. } | Op::Squeeze | Op::Unsqueeze | Op::Identity)
        || (matches!(op, Op::Dropout) && outputs == 1)
}

/// Whether the op reads its data input at the output's own index (so it can continue a group).
fn reads_in_place(op: &Op) -> bool {
    !matches!(op, Op::Transpose { .. } | Op::Expand)
}

fn scalar_or_const(g: &Graph, ins: &[Option<ValueRef>], i: usize) -> bool {
    ins.get(i).copied().flatten().is_some_and(|v| g.const_value(v).is_some())
}

/// BatchNormalization at inference as `x·s + t`, `s = scale/√(var+ε)`, `t = B − mean·s`,
/// shaped `[C, 1, …]` to broadcast over NC…; computed in f64.
fn fold_batch_norm(g: &Graph, ins: &[Option<ValueRef>], eps: f32, rank: usize) -> (Tensor, Tensor) {
    let get = |i: usize| g.const_value(ins[i].expect("checked")).expect("checked").to_f64_vec();
    let (scale, bias, mean, var) = (get(1), get(2), get(3), get(4));
    let c = scale.len();
    let s: Vec<f64> = (0..c).map(|i| scale[i] / (var[i] + eps as f64).sqrt()).collect();
    let t: Vec<f32> = (0..c).map(|i| (bias[i] - mean[i] * s[i]) as f32).collect();
    let s: Vec<f32> = s.into_iter().map(|v| v as f32).collect();
    let mut shape = vec![1usize; rank.saturating_sub(1).max(1)];
    shape[0] = c;
    (Tensor::from_vec(&shape, s).expect("sizes match"), Tensor::from_vec(&shape, t).expect("sizes match"))
}

/// Rewrites an instruction's operand registers through `map`.
fn remap(i: Instr, map: &[Reg]) -> Instr {
    use Instr::*;
    let r = |x: Reg| map[x];
    match i {
        Load(_) | Const(_) => i,
        Add(a, b) => Add(r(a), r(b)),
        Sub(a, b) => Sub(r(a), r(b)),
        Mul(a, b) => Mul(r(a), r(b)),
        Div(a, b) => Div(r(a), r(b)),
        Max(a, b) => Max(r(a), r(b)),
        Min(a, b) => Min(r(a), r(b)),
        MulAdd(a, b, c) => MulAdd(r(a), r(b), r(c)),
        Neg(a) => Neg(r(a)),
        Abs(a) => Abs(r(a)),
        Sqrt(a) => Sqrt(r(a)),
        Floor(a) => Floor(r(a)),
        Ceil(a) => Ceil(r(a)),
        Nearest(a) => Nearest(r(a)),
        Math(f, a) => Math(f, r(a)),
        Call(f, args) => Call(f, args.into_iter().map(r).collect()),
    }
}

/// A contiguous (standard-layout) copy when the tensor is not already one.
pub(crate) fn contiguous(t: &Tensor) -> Tensor {
    kiln_ir::map_array!(t, a => if a.is_standard_layout() { a.clone() } else { a.as_standard_layout().into_owned().into_shared() })
}
