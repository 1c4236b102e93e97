//! Rewrite rules, as tables grouped by purpose: [`simplify`] (identities, canonical forms),
//! [`reparam`] (folding what training needed into plain weights; merging parallel branches into
//! one convolution) and [`fusion`] (recognizing decomposed Softmax, LayerNorm, GELU, HardSwish;
//! MatMul + Add as Gemm). Each rule has a kebab-case name and its identity as a one-line
//! comment; guards are small named functions reading only e-class analysis data.
//!
//! Policy (after Cranelift's): no rule makes the cost worse on its own terms, and there are no
//! general commutativity or associativity rules (they blow up the e-graph); rules that care
//! about operand order list both orders.
//!
//! Rules over ops with attributes are [`OpRule`]s: a predicate picks the root op, and a function
//! reads the matched node's attributes and its input classes and builds an equivalent class
//! (computing new weights from constant analysis data where it folds something).

pub mod fusion;
pub mod guards;
pub mod reparam;
pub mod simplify;

use crate::egraph::{EGraph, ENode, OpKey, Rewrite, TensorAnalysis};
use egg::{Applier, Id, PatternAst, SearchMatches, Searcher, Subst, Symbol, Var};
use kiln_ir::Op;

/// Every table, in the order they are listed above.
pub fn all() -> Vec<Rewrite> {
    let mut rules = simplify::rules();
    rules.extend(reparam::rules());
    rules.extend(fusion::rules());
    rules
}

/// A rule rooted at an op node. `root` picks the op (attributes included); `apply` gets the
/// matched class, the op and its input classes (absent inputs are classes whose data says so)
/// and returns an equivalent class, or `None` when the rule does not apply.
#[derive(Clone, Copy)]
pub struct OpRule {
    pub root: fn(&Op) -> bool,
    pub apply: fn(&mut EGraph, Id, &Op, &[Id]) -> Option<Id>,
}

impl OpRule {
    pub fn rewrite(name: &str, root: fn(&Op) -> bool, apply: fn(&mut EGraph, Id, &Op, &[Id]) -> Option<Id>) -> Rewrite {
        let r = OpRule { root, apply };
        egg::Rewrite::new(name, r, r).expect("an op rule binds no variables")
    }
}

fn var(i: usize) -> Var {
    Var::from(i as u32)
}

impl Searcher<ENode, TensorAnalysis> for OpRule {
    fn search_eclass_with_limit(&self, eg: &EGraph, eclass: Id, limit: usize) -> Option<SearchMatches<'_, ENode>> {
        let substs: Vec<Subst> = eg[eclass]
            .nodes
            .iter()
            .filter(|n| n.ir_op().is_some_and(self.root))
            .take(limit)
            .map(|n| {
                let mut s = Subst::with_capacity(egg::Language::len(n));
                for (i, &c) in egg::Language::children(n).iter().enumerate() {
                    s.insert(var(i), c);
                }
                s
            })
            .collect();
        (!substs.is_empty()).then_some(SearchMatches { eclass, substs, ast: None })
    }

    fn vars(&self) -> Vec<Var> {
        vec![]
    }
}

impl Applier<ENode, TensorAnalysis> for OpRule {
    fn apply_one(
        &self,
        eg: &mut EGraph,
        eclass: Id,
        subst: &Subst,
        _ast: Option<&PatternAst<ENode>>,
        rule: Symbol,
    ) -> Vec<Id> {
        let mut children = Vec::new();
        while let Some(&c) = subst.get(var(children.len())) {
            children.push(eg.find(c));
        }
        let eclass = eg.find(eclass);
        let op = eg[eclass].nodes.iter().find_map(|n| match n {
            ENode::Op(k, ch)
                if (self.root)(k.op())
                    && ch.len() == children.len()
                    && ch.iter().zip(&children).all(|(&a, &b)| eg.find(a) == b) =>
            {
                Some(k.op().clone())
            }
            _ => None,
        });
        let Some(op) = op else { return vec![] };
        let node = ENode::Op(OpKey::new(op.clone()), children.clone().into_boxed_slice());
        if eg.analysis.applied.contains(&(rule, node.clone())) {
            return vec![];
        }
        let Some(new) = (self.apply)(eg, eclass, &op, &children) else { return vec![] };
        eg.analysis.applied.insert((rule, node));
        if eg.union(eclass, new) {
            vec![eclass]
        } else {
            vec![]
        }
    }
}
