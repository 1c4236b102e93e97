//! Running a compiled plan: resolving each value to a pointer (constants in place, inputs as the
//! caller passed them, intermediates at their arena offset, interpreter results in per-run
//! slots), stepping through the plan, the worker pool for intra-op parallelism, and the pool of
//! arenas that makes repeated runs allocation-free and concurrent runs independent.
//!
//! # Safety
//! This is where generated code is called and raw pointers are formed. Soundness rests on the
//! lowering: every native step was built from concrete shapes that the run's inputs are checked
//! against before the first step, each buffer is sized for the largest value stored in it, and
//! the memory plan never gives two buffers alive at the same step overlapping bytes.

use super::codegen::{Code, ElementwiseFn};
use super::lower::{Elementwise, Lowered, Step, StepKind, Storage, Vid};
use super::memory::ALIGN;
use super::pool::{Workers, MIN_PARALLEL_WORK};
use super::program::HostFn;
use crate::interp::{check_inputs, dispatch, Check};
use crate::ExecError;
use kiln_ir::{DType, Element, Graph, Tensor};
use std::sync::Mutex;
use std::time::Instant;

/// A raw f32 pointer that may cross threads (each task touches disjoint elements).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ptr(pub *mut f32);
// SAFETY: kernels partition their output so tasks never write the same element.
unsafe impl Send for Ptr {}
unsafe impl Sync for Ptr {}

impl Ptr {
    /// The pointer (a method, so closures capture the whole `Ptr`).
    pub(crate) fn raw(self) -> *mut f32 {
        self.0
    }

    /// The address `i` elements further (a method, so closures capture the whole `Ptr`).
    ///
    /// # Safety
    /// The result must stay inside the buffer `self` points into.
    pub(crate) unsafe fn add(self, i: usize) -> *mut f32 {
        // SAFETY: forwarded from the caller.
        unsafe { self.0.add(i) }
    }
}

/// 64-byte aligned storage.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; ALIGN]);

/// A compiled graph ready to run.
pub(crate) struct Compiled {
    pub graph: Graph,
    pub lowered: Lowered,
    pub kernels: Vec<ElementwiseFn>,
    pub workers: Workers,
    /// [`HostFn::table`] as addresses (kernels receive it as `*const *const u8`).
    host_table: Vec<usize>,
    arenas: Mutex<Vec<Vec<Line>>>,
    /// Keeps JIT-generated code mapped (absent when the kernels were linked ahead of time).
    _code: Option<Code>,
}

impl Compiled {
    pub(crate) fn new(
        graph: Graph,
        lowered: Lowered,
        kernels: Vec<ElementwiseFn>,
        code: Option<Code>,
        workers: Workers,
    ) -> Self {
        let host_table = HostFn::table().into_iter().map(|p| p as usize).collect();
        Compiled { graph, lowered, kernels, workers, host_table, arenas: Mutex::new(Vec::new()), _code: code }
    }

    /// Runs the plan and returns the graph outputs.
    pub(crate) fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, ExecError> {
        let mut outs = Vec::with_capacity(self.lowered.outputs.len());
        self.run_with(inputs, |frame| {
            for &v in &self.lowered.outputs {
                outs.push(frame.tensor(v)?);
            }
            Ok(())
        })?;
        Ok(outs)
    }

    /// Runs the plan, writing outputs into caller-owned tensors of the right dtype and shape.
    pub(crate) fn run_into(&self, inputs: &[Tensor], outputs: &mut [Tensor]) -> Result<(), ExecError> {
        let want = self.lowered.outputs.len();
        if outputs.len() != want {
            return Err(ExecError::InputCount {
                graph: format!("{} (outputs)", self.graph.name),
                expected: want,
                got: outputs.len(),
            });
        }
        self.run_with(inputs, |frame| {
            for (o, (&v, dst)) in self.lowered.outputs.iter().zip(outputs.iter_mut()).enumerate() {
                let val = &self.lowered.vals[v];
                if val.shape.as_deref().is_some_and(|s| s == dst.shape()) && val.dtype == dst.dtype() {
                    // An arena value goes straight into the caller's buffer, with no tensor between.
                    if let (Storage::Buffer { .. }, Some(out)) = (&val.storage, f32_slice_mut(dst)) {
                        // SAFETY: the buffer holds this value's `out.len()` f32, written by a step.
                        out.copy_from_slice(unsafe { std::slice::from_raw_parts(frame.ptr(v).0, out.len()) });
                        continue;
                    }
                }
                let src = frame.tensor(v)?;
                if src.dtype() != dst.dtype() || src.shape() != dst.shape() {
                    return Err(ExecError::InputMismatch {
                        input: format!("output {o} ('{}')", self.graph.value_name(self.graph.outputs()[o])),
                        expected: format!("{}{:?}", src.dtype(), src.shape()),
                        got: format!("{}{:?}", dst.dtype(), dst.shape()),
                        message: "the output buffer must match the output's dtype and shape".into(),
                    });
                }
                copy_into(dst, &src);
            }
            Ok(())
        })
    }

    /// Runs the plan `runs` times and returns each step's wall time per run, in milliseconds
    /// (`times[step][run]`), for `kiln bench --profile`.
    pub(crate) fn profile(&self, inputs: &[Tensor], runs: usize) -> Result<Vec<Vec<f64>>, ExecError> {
        let mut times: Vec<Vec<f64>> = self.lowered.steps.iter().map(|_| Vec::with_capacity(runs)).collect();
        for _ in 0..runs {
            self.run_steps(
                inputs,
                |frame, i, step| {
                    let start = Instant::now();
                    self.step(frame, step)?;
                    times[i].push(start.elapsed().as_secs_f64() * 1e3);
                    Ok(())
                },
                |_| Ok(()),
            )?;
        }
        Ok(times)
    }

    fn run_with(
        &self,
        inputs: &[Tensor],
        finish: impl FnOnce(&Frame) -> Result<(), ExecError>,
    ) -> Result<(), ExecError> {
        self.run_steps(inputs, |frame, _, step| self.step(frame, step), finish)
    }

    /// Sets up a frame over a pooled arena, runs every step `i` through `each(frame, i, step)`,
    /// then `finish`.
    fn run_steps(
        &self,
        inputs: &[Tensor],
        mut each: impl FnMut(&mut Frame, usize, &Step) -> Result<(), ExecError>,
        finish: impl FnOnce(&Frame) -> Result<(), ExecError>,
    ) -> Result<(), ExecError> {
        check_inputs(&self.graph, inputs, Check::Full)?;
        // Kernels read inputs in standard layout; only inputs not already in it are copied.
        let copies: Vec<Tensor>;
        let inputs = if inputs.iter().all(is_standard_layout) {
            inputs
        } else {
            copies = inputs.iter().map(super::lower::contiguous).collect();
            &copies
        };
        let lines = self.lowered.arena_bytes / ALIGN;
        let mut arena = self.arenas.lock().map_or(None, |mut a| a.pop()).unwrap_or_default();
        if arena.len() < lines {
            arena = vec![Line([0; ALIGN]); lines];
        }
        let mut frame = Frame {
            lowered: &self.lowered,
            arena: arena.as_mut_ptr() as *mut u8,
            inputs,
            boxed: vec![None; self.lowered.boxed_slots],
        };
        let result = (self.lowered.steps.iter().enumerate())
            .try_for_each(|(i, s)| {
                // The run's deadline is checked between steps (no allocation until it fails).
                kiln_ir::limits::check_deadline().map_err(|source| ExecError::Limit {
                    node: s.nodes.first().cloned().unwrap_or_default(),
                    op: s.ops.first().cloned().unwrap_or_default(),
                    source,
                })?;
                each(&mut frame, i, s)
            })
            .and_then(|()| finish(&frame));
        drop(frame);
        if let Ok(mut pool) = self.arenas.lock() {
            pool.push(arena);
        }
        result
    }

    fn step(&self, f: &mut Frame, s: &Step) -> Result<(), ExecError> {
        let w = &self.workers;
        // SAFETY (all arms): see the module note; pointers come from `Frame::ptr` for values of
        // the shapes each step was lowered for.
        unsafe {
            match &s.kind {
                StepKind::Elementwise(e) => self.elementwise(f, e),
                StepKind::Conv(c, epi) => {
                    let optional = |v: Option<Vid>| v.map_or(Ptr(std::ptr::null_mut()), |v| f.ptr(v));
                    let ptrs = [
                        f.ptr(c.x),
                        f.ptr(c.w),
                        f.ptr(c.y),
                        optional(c.bias),
                        optional(c.residual),
                        optional(c.scratch()),
                    ];
                    c.run(w, ptrs);
                    if let Some(e) = epi {
                        self.elementwise(f, e);
                    }
                }
                StepKind::MatMul(m, epi) => {
                    m.run(w, f.ptr(m.a.vid), f.ptr(m.b.vid), f.ptr(m.c));
                    if let Some(e) = epi {
                        self.elementwise(f, e);
                    }
                }
                StepKind::Pool(p) => p.run(w, f.ptr(p.x), f.ptr(p.y)),
                StepKind::GlobalPool(p) => p.run(w, f.ptr(p.x), f.ptr(p.y)),
                StepKind::Lrn(p) => p.run(w, f.ptr(p.x), f.ptr(p.y)),
                StepKind::Concat(c) => with_ptrs(f, c.parts.iter().map(|p| p.x), |ins| c.run(ins, f.ptr(c.y))),
                StepKind::Native(n) => {
                    let scratch = n.scratch.map_or(Ptr(std::ptr::null_mut()), |v| f.ptr(v));
                    with_ptrs(f, n.xs.iter().copied(), |xs| {
                        with_ptrs(f, n.ys.iter().copied(), |ys| n.run(w, xs, ys, scratch))
                    })
                    .map_err(|message| ExecError::Kernel {
                        node: s.nodes[0].clone(),
                        op: s.ops[0].clone(),
                        message,
                    })?;
                }
                StepKind::Interp { op, inputs, outputs } => {
                    let ins: Vec<Option<Tensor>> =
                        inputs.iter().map(|v| v.map(|v| f.tensor(v)).transpose()).collect::<Result<_, _>>()?;
                    let outs = dispatch(op, &ins, outputs.len()).map_err(|e| e.at(&s.nodes[0], op.onnx_name()))?;
                    for (&v, t) in outputs.iter().zip(outs) {
                        f.set_boxed(v, s, t)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// # Safety
    /// The kernel was generated for exactly these operands' shapes and strides.
    unsafe fn elementwise(&self, f: &Frame, e: &Elementwise) {
        with_ptrs(f, e.operands.iter().copied(), |ptrs| {
            // SAFETY: forwarded.
            unsafe { self.elementwise_with(e, ptrs) }
        })
    }

    /// # Safety
    /// As [`Compiled::elementwise`]; `ptrs` are its operands' pointers.
    unsafe fn elementwise_with(&self, e: &Elementwise, ptrs: &[Ptr]) {
        let kernel = self.kernels[e.kernel];
        let table = Ptr(self.host_table.as_ptr() as *mut f32);
        let call = |lo: usize, hi: usize| {
            // SAFETY: the kernel reads and writes only inside `lo..hi` of the outer extent.
            unsafe { kernel(ptrs.as_ptr() as *const *mut f32, lo, hi, table.raw() as *const *const u8) }
        };
        let chunk = (MIN_PARALLEL_WORK / e.inner.max(1)).max(1);
        if self.workers.threads() == 1 || e.outer * e.inner < 2 * MIN_PARALLEL_WORK || e.outer < 2 {
            call(0, e.outer);
        } else {
            let chunks = e.outer.div_ceil(chunk);
            self.workers.for_each(chunks, MIN_PARALLEL_WORK, |c| call(c * chunk, ((c + 1) * chunk).min(e.outer)));
        }
    }
}

/// The values of one run.
pub(crate) struct Frame<'a> {
    lowered: &'a Lowered,
    arena: *mut u8,
    inputs: &'a [Tensor],
    boxed: Vec<Option<Tensor>>,
}

impl Frame<'_> {
    /// Where value `v`'s first element is.
    fn ptr(&self, v: Vid) -> Ptr {
        let val = &self.lowered.vals[v];
        let raw = match &val.storage {
            Storage::Const(t) => data_ptr(t),
            Storage::Input(i) => data_ptr(&self.inputs[*i]),
            // SAFETY: buffer offsets lie inside the arena (memory::assign).
            Storage::Buffer { buffer, offset } => unsafe {
                self.arena.add(self.lowered.buffer_offsets[*buffer] + offset * val.dtype.size_of())
            },
            Storage::Boxed(s) => self.boxed[*s].as_ref().map_or(std::ptr::null_mut(), data_ptr),
        };
        Ptr(raw as *mut f32)
    }

    /// Value `v` as a tensor of its own shape (arena values are copied out).
    fn tensor(&self, v: Vid) -> Result<Tensor, ExecError> {
        let val = &self.lowered.vals[v];
        let base = match &val.storage {
            Storage::Const(t) => t.clone(),
            Storage::Input(i) => self.inputs[*i].clone(),
            Storage::Boxed(s) => self.boxed[*s].clone().ok_or_else(|| missing(v))?,
            Storage::Buffer { .. } => {
                let shape = val.shape.as_ref().ok_or_else(|| missing(v))?;
                let n: usize = shape.iter().product();
                fn read<T: Element>(p: Ptr, shape: &[usize], n: usize) -> Result<Tensor, ExecError> {
                    // SAFETY: the buffer holds `n` values of `T` written by an earlier step.
                    let data = unsafe { std::slice::from_raw_parts(p.0 as *const T, n) }.to_vec();
                    Tensor::from_vec(shape, data).map_err(|e| missing_msg(e.to_string()))
                }
                let p = self.ptr(v);
                return match val.dtype {
                    DType::F32 => read::<f32>(p, shape, n),
                    DType::I32 => read::<i32>(p, shape, n),
                    DType::I64 => read::<i64>(p, shape, n),
                    DType::Bool => read::<bool>(p, shape, n),
                    other => Err(missing_msg(format!("no arena values of dtype {other}"))),
                };
            }
        };
        match &val.shape {
            Some(shape) if shape.as_slice() != base.shape() => {
                base.reshape(shape).map_err(|e| missing_msg(e.to_string()))
            }
            _ => Ok(base),
        }
    }

    fn set_boxed(&mut self, v: Vid, s: &Step, t: Tensor) -> Result<(), ExecError> {
        let val = &self.lowered.vals[v];
        let Storage::Boxed(slot) = val.storage else { unreachable!("interpreter outputs are boxed") };
        let shape_ok = val.shape.as_ref().is_none_or(|sh| sh.as_slice() == t.shape());
        if t.dtype() != val.dtype || !shape_ok {
            return Err(ExecError::Kernel {
                node: s.nodes[0].clone(),
                op: s.ops[0].clone(),
                message: format!(
                    "produced {}{:?} but the plan expects {} {:?}",
                    t.dtype(),
                    t.shape(),
                    val.dtype,
                    val.shape
                ),
            });
        }
        self.boxed[slot] = Some(super::lower::contiguous(&t));
        Ok(())
    }
}

fn missing(v: Vid) -> ExecError {
    missing_msg(format!("value #{v} was read before it was computed"))
}

fn missing_msg(message: String) -> ExecError {
    ExecError::Kernel { node: String::new(), op: "jit".into(), message }
}

/// Operand pointers of a step, on the stack (runs must not allocate) unless there are many.
fn with_ptrs<R>(f: &Frame, vids: impl ExactSizeIterator<Item = Vid>, then: impl FnOnce(&[Ptr]) -> R) -> R {
    const ON_STACK: usize = 16;
    let n = vids.len();
    if n <= ON_STACK {
        let mut ptrs = [Ptr(std::ptr::null_mut()); ON_STACK];
        for (p, v) in ptrs.iter_mut().zip(vids) {
            *p = f.ptr(v);
        }
        then(&ptrs[..n])
    } else {
        then(&vids.map(|v| f.ptr(v)).collect::<Vec<_>>())
    }
}

fn is_standard_layout(t: &Tensor) -> bool {
    kiln_ir::with_array!(t, a => a.is_standard_layout())
}

/// A tensor's elements as one mutable f32 slice, when it is f32 in standard layout.
fn f32_slice_mut(t: &mut Tensor) -> Option<&mut [f32]> {
    match t {
        Tensor::F32(a) => a.as_slice_mut(),
        _ => None,
    }
}

/// A contiguous tensor's first element.
fn data_ptr(t: &Tensor) -> *mut u8 {
    kiln_ir::with_array!(t, a => a.as_ptr() as *mut u8)
}

/// Copies `src` into `dst`'s own storage when both are f32 (no allocation), else replaces it.
fn copy_into(dst: &mut Tensor, src: &Tensor) {
    if let (Tensor::F32(d), Tensor::F32(s)) = (&mut *dst, src) {
        if let (Some(d), Some(s)) = (d.as_slice_mut(), s.as_slice()) {
            d.copy_from_slice(s);
            return;
        }
    }
    *dst = src.clone();
}
