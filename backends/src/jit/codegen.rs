//! Cranelift code generation: one module per compiled graph — in memory (cranelift-jit) or as
//! an object file for ahead-of-time linking (cranelift-object) — for the host ISA detected by
//! cranelift-native (SSE4.1/AVX/FMA flags), and the emission of elementwise kernels — a
//! [`Program`] over a [`LoopNest`] — as
//! `extern "C" fn(operands: *const *mut f32, begin, end, host: *const *const u8)`, looping the
//! outermost extent over `begin..end` (so callers can split it across threads), the innermost in
//! f32x4 vectors plus a scalar tail. Transcendentals (exp, erf, …) are emitted inline from
//! `math` (the tail runs them on a splat, so it rounds as the vectors do); the few host functions
//! left (trigonometry, Pow) are called through the `host` table ([`HostFn::table`]), so kernels
//! import no symbols and objects link anywhere.

use super::lower::KernelSink;
use super::math::{Lanes, MathFn};
use super::program::{HostFn, Instr, LoopNest, Program};
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{
    types, AbiParam, ConstantData, Endianness, InstBuilder, MemFlagsData, SigRef, Type, Value,
};
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, FuncId, Linkage, Module};
use cranelift_object::{ObjectBuilder, ObjectModule};

/// An elementwise kernel: operand pointers (inputs then output), the range of the outermost
/// extent to cover, and the host function table.
pub type ElementwiseFn = unsafe extern "C" fn(*const *mut f32, usize, usize, *const *const u8);

const LANES: i64 = 4;
const F32_BYTES: i64 = 4;

/// Kernels being generated into one module (in memory for the JIT, an object file for AOT).
pub(crate) struct Codegen<M: Module> {
    module: M,
    ctx: Context,
    fctx: FunctionBuilderContext,
    has_fma: bool,
    linkage: Linkage,
    /// Kernel `i` is the symbol `{prefix}_kernel_{i}`.
    prefix: String,
    defined: Vec<FuncId>,
}

/// Finalized machine code; function pointers into it stay valid while it lives.
pub(crate) struct Code {
    module: Option<JITModule>,
}

// SAFETY: after `finalize_definitions` the module is never mutated again; its code pages are
// read-only and executable, so sharing the pointers into them across threads is sound.
unsafe impl Send for Code {}
unsafe impl Sync for Code {}

impl Drop for Code {
    fn drop(&mut self) {
        if let Some(m) = self.module.take() {
            // SAFETY: `Code` owns every pointer into this module (held by the plan that owns
            // `Code`), and the plan is being dropped with it.
            unsafe { m.free_memory() };
        }
    }
}

/// The host's ISA with its detected features, optimizing for speed; position-independent code
/// for objects (linked into PIE executables), fixed addresses in memory.
fn host_isa(pic: bool) -> Result<OwnedTargetIsa, String> {
    let mut flags = settings::builder();
    let set = |f: &mut settings::Builder, k: &str, v: &str| f.set(k, v).map_err(|e| format!("cranelift flag {k}: {e}"));
    set(&mut flags, "opt_level", "speed")?;
    set(&mut flags, "is_pic", if pic { "true" } else { "false" })?;
    let isa_builder =
        cranelift_native::builder().map_err(|e| format!("this CPU is not supported by Cranelift: {e}"))?;
    isa_builder.finish(settings::Flags::new(flags)).map_err(|e| format!("cranelift ISA: {e}"))
}

fn has_fma(isa: &OwnedTargetIsa) -> bool {
    isa.isa_flags().iter().any(|f| f.name == "has_fma" && f.as_bool() == Some(true))
}

impl Codegen<JITModule> {
    /// A module whose code is linked into this process.
    pub(crate) fn jit() -> Result<Self, String> {
        let isa = host_isa(false)?;
        let has_fma = has_fma(&isa);
        let module = JITModule::new(JITBuilder::with_isa(isa, default_libcall_names()));
        Ok(Codegen::with_module(module, has_fma, Linkage::Local, "kiln_jit"))
    }

    /// Links the module; returns the code and each kernel's entry point, in emission order.
    pub(crate) fn finish(mut self) -> Result<(Code, Vec<ElementwiseFn>), String> {
        self.module.finalize_definitions().map_err(|e| format!("cranelift: {e}"))?;
        let fns = self
            .defined
            .iter()
            .map(|&id| {
                let p = self.module.get_finalized_function(id);
                // SAFETY: every defined function has the `ElementwiseFn` signature (see `elementwise`).
                unsafe { std::mem::transmute::<*const u8, ElementwiseFn>(p) }
            })
            .collect();
        Ok((Code { module: Some(self.module) }, fns))
    }
}

impl Codegen<ObjectModule> {
    /// A module written out as a relocatable object file for the host's target; kernel symbols
    /// start with `prefix`.
    pub(crate) fn object(prefix: &str) -> Result<Self, String> {
        let isa = host_isa(true)?;
        let has_fma = has_fma(&isa);
        let builder = ObjectBuilder::new(isa, prefix, default_libcall_names()).map_err(|e| format!("object: {e}"))?;
        Ok(Codegen::with_module(ObjectModule::new(builder), has_fma, Linkage::Export, prefix))
    }

    /// The object file's bytes.
    pub(crate) fn finish_object(self) -> Result<Vec<u8>, String> {
        self.module.finish().emit().map_err(|e| format!("writing the object file: {e}"))
    }
}

impl<M: Module> Codegen<M> {
    fn with_module(module: M, has_fma: bool, linkage: Linkage, prefix: &str) -> Self {
        let ctx = module.make_context();
        let fctx = FunctionBuilderContext::new();
        Codegen { module, ctx, fctx, has_fma, linkage, prefix: prefix.to_string(), defined: Vec::new() }
    }

    /// The symbol of kernel `index`.
    pub(crate) fn symbol(prefix: &str, index: usize) -> String {
        format!("{prefix}_kernel_{index}")
    }

    /// Emits the next kernel, computing `prog` over `nest`.
    pub(crate) fn elementwise(&mut self, nest: &LoopNest, prog: &Program) -> Result<(), String> {
        let ptr = self.module.target_config().pointer_type();
        let mut sig = self.module.make_signature();
        sig.params.extend([AbiParam::new(ptr); 4]);
        let name = Self::symbol(&self.prefix, self.defined.len());
        let id = self.module.declare_function(&name, self.linkage, &sig).map_err(|e| e.to_string())?;
        self.ctx.func.signature = sig;
        let host_sigs: Vec<(HostFn, SigRef)> = prog
            .host_fns()
            .into_iter()
            .map(|f| {
                let mut s = self.module.make_signature();
                s.params.extend(std::iter::repeat_n(AbiParam::new(types::F32), f.arity()));
                s.returns.push(AbiParam::new(types::F32));
                (f, self.ctx.func.import_signature(s))
            })
            .collect();
        {
            let mut b = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
            let entry = b.create_block();
            b.append_block_params_for_function_params(entry);
            b.switch_to_block(entry);
            let params = b.block_params(entry).to_vec();
            let operands = nest.strides.len();
            let bases: Vec<Value> =
                (0..operands).map(|k| b.ins().load(ptr, MemFlagsData::trusted(), params[0], (k * 8) as i32)).collect();
            let mut e = Emitter { b, nest, prog, ptr, host: &host_sigs, table: params[3], has_fma: self.has_fma };
            e.level(0, &bases, params[1], params[2]);
            e.b.ins().return_(&[]);
            e.b.seal_all_blocks();
            e.b.finalize(self.module.target_config());
        }
        self.module.define_function(id, &mut self.ctx).map_err(|e| format!("cranelift: {e:?}"))?;
        self.module.clear_context(&mut self.ctx);
        self.defined.push(id);
        Ok(())
    }
}

impl<M: Module> KernelSink for Codegen<M> {
    fn kernel(&mut self, nest: &LoopNest, prog: &Program) -> Result<(), String> {
        self.elementwise(nest, prog)
    }
}

/// Emission state for one kernel.
struct Emitter<'a, 'f> {
    b: FunctionBuilder<'f>,
    nest: &'a LoopNest,
    prog: &'a Program,
    ptr: Type,
    host: &'a [(HostFn, SigRef)],
    /// The host function table (kernel parameter 3).
    table: Value,
    has_fma: bool,
}

impl Emitter<'_, '_> {
    /// Loops extent `level` over `lo..hi`; `addrs` are the operands' byte addresses at index 0
    /// of this extent.
    fn level(&mut self, level: usize, addrs: &[Value], lo: Value, hi: Value) {
        if level + 1 == self.nest.dims.len() {
            return self.innermost(addrs, lo, hi);
        }
        let inner_hi = self.b.ins().iconst(self.ptr, self.nest.dims[level + 1] as i64);
        self.counted_loop(lo, hi, 1, |e, i| {
            let moved: Vec<Value> =
                addrs.iter().enumerate().map(|(k, &a)| e.offset(a, i, e.nest.strides[k][level])).collect();
            let zero = e.b.ins().iconst(e.ptr, 0);
            e.level(level + 1, &moved, zero, inner_hi);
        });
    }

    /// `addr + i * stride * 4`.
    fn offset(&mut self, addr: Value, i: Value, stride: isize) -> Value {
        if stride == 0 {
            return addr;
        }
        let off = self.b.ins().imul_imm_s(i, stride as i64 * F32_BYTES);
        self.b.ins().iadd(addr, off)
    }

    /// `for (i = lo; i + step <= hi; i += step) body(i)`; returns the first index not covered.
    fn counted_loop(&mut self, lo: Value, hi: Value, step: i64, mut body: impl FnMut(&mut Self, Value)) -> Value {
        let var = self.b.declare_var(self.ptr);
        self.b.def_var(var, lo);
        let header = self.b.create_block();
        let body_block = self.b.create_block();
        let exit = self.b.create_block();
        self.b.ins().jump(header, &[]);
        self.b.switch_to_block(header);
        let i = self.b.use_var(var);
        let next = self.b.ins().iadd_imm_s(i, step);
        let fits = self.b.ins().icmp(IntCC::SignedLessThanOrEqual, next, hi);
        self.b.ins().brif(fits, body_block, &[], exit, &[]);
        self.b.switch_to_block(body_block);
        body(self, i);
        let next = self.b.ins().iadd_imm_s(i, step);
        self.b.def_var(var, next);
        self.b.ins().jump(header, &[]);
        self.b.switch_to_block(exit);
        self.b.use_var(var)
    }

    /// The innermost extent: f32x4 vectors while every input walks it contiguously or not at
    /// all, then scalars for the rest.
    fn innermost(&mut self, addrs: &[Value], lo: Value, hi: Value) {
        let last = self.nest.dims.len() - 1;
        let inner: Vec<isize> = self.nest.strides.iter().map(|s| s[last]).collect();
        let out = inner.len() - 1;
        let vectorizable = inner.iter().all(|&s| s == 0 || s == 1);
        // Operands that do not move along this extent are loaded once.
        let hoisted: Vec<Option<Value>> = (0..out)
            .map(|k| (inner[k] == 0).then(|| self.b.ins().load(types::F32, MemFlagsData::trusted(), addrs[k], 0)))
            .collect();
        let mut rest = lo;
        if vectorizable {
            let splats: Vec<Option<Value>> =
                hoisted.iter().map(|h| h.map(|s| self.b.ins().splat(types::F32X4, s))).collect();
            rest = self.counted_loop(lo, hi, LANES, |e, i| {
                let load = |e: &mut Self, k: usize| match splats[k] {
                    Some(v) => v,
                    None => {
                        let a = e.offset(addrs[k], i, 1);
                        e.b.ins().load(types::F32X4, MemFlagsData::new().with_notrap(), a, 0)
                    }
                };
                let v = e.program(types::F32X4, load);
                let a = e.offset(addrs[out], i, 1);
                e.b.ins().store(MemFlagsData::new().with_notrap(), v, a, 0);
            });
        }
        self.counted_loop(rest, hi, 1, |e, i| {
            let load = |e: &mut Self, k: usize| match hoisted[k] {
                Some(v) => v,
                None => {
                    let a = e.offset(addrs[k], i, inner[k]);
                    e.b.ins().load(types::F32, MemFlagsData::trusted(), a, 0)
                }
            };
            let v = e.program(types::F32, load);
            let a = e.offset(addrs[out], i, inner[out]);
            e.b.ins().store(MemFlagsData::trusted(), v, a, 0);
        });
    }

    /// Emits the program at type `ty` (F32 or F32X4); `load(k)` yields operand `k`.
    fn program(&mut self, ty: Type, mut load: impl FnMut(&mut Self, usize) -> Value) -> Value {
        let mut regs: Vec<Value> = Vec::with_capacity(self.prog.instrs.len());
        for instr in &self.prog.instrs {
            let r = |i: &usize| regs[*i];
            let v = match instr {
                Instr::Load(k) => load(self, *k),
                Instr::Const(c) => {
                    let s = self.b.ins().f32const(*c);
                    if ty == types::F32 {
                        s
                    } else {
                        self.b.ins().splat(ty, s)
                    }
                }
                Instr::Add(a, b) => self.b.ins().fadd(r(a), r(b)),
                Instr::Sub(a, b) => self.b.ins().fsub(r(a), r(b)),
                Instr::Mul(a, b) => self.b.ins().fmul(r(a), r(b)),
                Instr::Div(a, b) => self.b.ins().fdiv(r(a), r(b)),
                Instr::Max(a, b) => self.b.ins().fmax(r(a), r(b)),
                Instr::Min(a, b) => self.b.ins().fmin(r(a), r(b)),
                Instr::MulAdd(a, b, c) if self.has_fma => self.b.ins().fma(r(a), r(b), r(c)),
                Instr::MulAdd(a, b, c) => {
                    let p = self.b.ins().fmul(r(a), r(b));
                    self.b.ins().fadd(p, r(c))
                }
                Instr::Neg(a) => self.b.ins().fneg(r(a)),
                Instr::Abs(a) => self.b.ins().fabs(r(a)),
                Instr::Sqrt(a) => self.b.ins().sqrt(r(a)),
                Instr::Floor(a) => self.b.ins().floor(r(a)),
                Instr::Ceil(a) => self.b.ins().ceil(r(a)),
                Instr::Nearest(a) => self.b.ins().nearest(r(a)),
                Instr::Math(f, a) => self.math(ty, *f, r(a)),
                Instr::Call(f, args) => {
                    let args: Vec<Value> = args.iter().map(r).collect();
                    self.call(ty, *f, &args)
                }
            };
            regs.push(v);
        }
        *regs.last().expect("programs are never empty")
    }

    /// `f` inline on an f32x4 (a scalar goes through lane 0 of a splat).
    fn math(&mut self, ty: Type, f: MathFn, x: Value) -> Value {
        let v = if ty == types::F32 { self.b.ins().splat(types::F32X4, x) } else { x };
        let y = f.eval(&mut ClifLanes { b: &mut self.b, has_fma: self.has_fma }, v);
        if ty == types::F32 {
            self.b.ins().extractlane(y, 0)
        } else {
            y
        }
    }

    /// A host call through the table, lane by lane for vectors.
    fn call(&mut self, ty: Type, f: HostFn, args: &[Value]) -> Value {
        let sig = self.host.iter().find(|(h, _)| *h == f).expect("host signatures are imported up front").1;
        let callee = self.b.ins().load(self.ptr, MemFlagsData::trusted(), self.table, (f.index() * 8) as i32);
        if ty == types::F32 {
            let call = self.b.ins().call_indirect(sig, callee, args);
            return self.b.inst_results(call)[0];
        }
        let mut acc = args[0];
        for lane in 0..LANES as u8 {
            let lane_args: Vec<Value> = args.iter().map(|&a| self.b.ins().extractlane(a, lane)).collect();
            let call = self.b.ins().call_indirect(sig, callee, &lane_args);
            let y = self.b.inst_results(call)[0];
            acc = self.b.ins().insertlane(acc, y, lane);
        }
        acc
    }
}

/// [`Lanes`] as Cranelift IR: f32x4 values, i32x4 integers and masks.
struct ClifLanes<'a, 'f> {
    b: &'a mut FunctionBuilder<'f>,
    has_fma: bool,
}

impl ClifLanes<'_, '_> {
    fn cast(&mut self, to: Type, v: Value) -> Value {
        self.b.ins().bitcast(to, MemFlagsData::new().with_endianness(Endianness::Little), v)
    }

    /// A vector constant from the constant pool (one load, often folded into its use; a splat
    /// of a scalar constant is rematerialized at every use as three instructions).
    fn vconst(&mut self, ty: Type, lane: [u8; 4]) -> Value {
        let bytes: Vec<u8> = lane.iter().copied().cycle().take(16).collect();
        let c = self.b.func.dfg.constants.insert(ConstantData::from(bytes));
        self.b.ins().vconst(ty, c)
    }
}

impl Lanes for ClifLanes<'_, '_> {
    type F = Value;
    type I = Value;
    type M = Value;
    fn splat(&mut self, c: f32) -> Value {
        self.vconst(types::F32X4, c.to_le_bytes())
    }
    fn add(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fadd(a, b)
    }
    fn sub(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fsub(a, b)
    }
    fn mul(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fmul(a, b)
    }
    fn div(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fdiv(a, b)
    }
    fn fma(&mut self, a: Value, b: Value, c: Value) -> Value {
        if self.has_fma {
            self.b.ins().fma(a, b, c)
        } else {
            let p = self.b.ins().fmul(a, b);
            self.b.ins().fadd(p, c)
        }
    }
    fn min(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fmin(a, b)
    }
    fn max(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fmax(a, b)
    }
    fn abs(&mut self, a: Value) -> Value {
        self.b.ins().fabs(a)
    }
    fn round(&mut self, a: Value) -> Value {
        self.b.ins().nearest(a)
    }
    fn lt(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fcmp(FloatCC::LessThan, a, b)
    }
    fn eq(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fcmp(FloatCC::Equal, a, b)
    }
    fn is_nan(&mut self, a: Value) -> Value {
        self.b.ins().fcmp(FloatCC::Unordered, a, a)
    }
    fn select(&mut self, m: Value, t: Value, e: Value) -> Value {
        let m = self.cast(types::F32X4, m);
        self.b.ins().bitselect(m, t, e)
    }
    fn to_int(&mut self, a: Value) -> Value {
        self.b.ins().fcvt_to_sint_sat(types::I32X4, a)
    }
    fn to_float(&mut self, a: Value) -> Value {
        self.b.ins().fcvt_from_sint(types::F32X4, a)
    }
    fn bits(&mut self, a: Value) -> Value {
        self.cast(types::I32X4, a)
    }
    fn bitcast_float(&mut self, a: Value) -> Value {
        self.cast(types::F32X4, a)
    }
    fn iconst(&mut self, c: i32) -> Value {
        self.vconst(types::I32X4, c.to_le_bytes())
    }
    fn iadd(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().iadd(a, b)
    }
    fn isub(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().isub(a, b)
    }
    fn and(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().band(a, b)
    }
    fn or(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().bor(a, b)
    }
    fn shl(&mut self, a: Value, n: u8) -> Value {
        self.b.ins().ishl_imm_u(a, i64::from(n))
    }
    fn ushr(&mut self, a: Value, n: u8) -> Value {
        self.b.ins().ushr_imm_u(a, i64::from(n))
    }
}
