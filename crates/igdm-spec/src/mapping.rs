//! Response mappings: a tree of expressions turned into JSON.
//!
//! Semantics (see `docs/spec-language.md`):
//! - when the selected root is an array, the mapping applies to each element
//!   (the element is the current value `.`, and a leading `[]` reads it);
//!   otherwise it applies once with the root as current value;
//! - a nested object whose fields are all null is null;
//! - a list mapping `- {fields}` zips: every field that evaluates to an array
//!   contributes its i-th element to the i-th object, other fields repeat.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::expr::{Env, Expr};

/// How a mapping's expressions are evaluated: [`borrowing`] in production,
/// [`Expr::eval`] as the reference the differential tests compare it with.
type Leaf = for<'a> fn(&'a Expr, &Env<'a>) -> Result<Value, String>;

/// Evaluates over borrowed values and copies only the result.
fn borrowing<'a>(e: &'a Expr, env: &Env<'a>) -> Result<Value, String> {
    e.eval_ref(env).map(Cow::into_owned)
}

/// A compiled mapping node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MapNode {
    /// An expression.
    Expr(Expr),
    /// A literal (YAML number, boolean or null).
    Const(Value),
    /// An object of fields.
    Object(Vec<(String, MapNode)>),
    /// A list mapping (zipped objects).
    List(Vec<MapNode>),
}

/// Where a mapped value sits (`[3].sender.id`), rendered only for warnings.
#[derive(Clone, Copy)]
pub(crate) enum Loc<'a> {
    /// The top of the result.
    Top,
    /// A field of an object.
    Field(&'a Loc<'a>, &'a str),
    /// An element of an array.
    Index(&'a Loc<'a>, usize),
}

impl std::fmt::Display for Loc<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Loc::Top => Ok(()),
            Loc::Field(parent, name) => write!(f, "{parent}.{name}"),
            Loc::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// Collects evaluation problems instead of failing the whole mapping.
#[derive(Debug, Default)]
pub(crate) struct Warnings(pub(crate) Vec<String>);

impl Warnings {
    fn push(&mut self, path: &Loc<'_>, msg: String) {
        if self.0.len() < 20 {
            self.0.push(format!("{path}: {msg}"));
        }
    }
}

impl MapNode {
    /// Evaluates the node with `env.current` as the current value.
    fn eval(&self, leaf: Leaf, env: &Env<'_>, path: &Loc<'_>, warnings: &mut Warnings) -> Value {
        match self {
            MapNode::Expr(e) => leaf(e, env).unwrap_or_else(|msg| {
                warnings.push(path, msg);
                Value::Null
            }),
            MapNode::Const(v) => v.clone(),
            MapNode::Object(fields) => eval_object(fields, leaf, env, path, warnings),
            MapNode::List(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let p = Loc::Index(path, i);
                    let evaluated = item.eval_raw(leaf, env, &p, warnings);
                    let n = item.zip_len(&evaluated).unwrap_or(1);
                    for k in 0..n {
                        let v = item.select(&evaluated, k);
                        if !v.is_null() {
                            out.push(v);
                        }
                    }
                }
                Value::Array(out)
            }
        }
    }

    /// Evaluates without null-collapsing objects (the input of `select`).
    fn eval_raw(
        &self,
        leaf: Leaf,
        env: &Env<'_>,
        path: &Loc<'_>,
        warnings: &mut Warnings,
    ) -> Value {
        match self {
            MapNode::Object(fields) => {
                let mut m = Map::with_capacity(fields.len());
                for (k, node) in fields {
                    m.insert(k.clone(), node.eval_raw(leaf, env, &Loc::Field(path, k), warnings));
                }
                Value::Object(m)
            }
            other => other.eval(leaf, env, path, warnings),
        }
    }

    /// The number of zipped elements: the longest array among expression leaves.
    fn zip_len(&self, v: &Value) -> Option<usize> {
        match (self, v) {
            (MapNode::Expr(_), Value::Array(a)) => Some(a.len()),
            (MapNode::Object(fields), Value::Object(m)) => fields
                .iter()
                .filter_map(|(k, node)| m.get(k).and_then(|child| node.zip_len(child)))
                .max(),
            _ => None,
        }
    }

    /// The `i`-th zipped element.
    fn select(&self, v: &Value, i: usize) -> Value {
        match (self, v) {
            (MapNode::Expr(_), Value::Array(a)) => a.get(i).cloned().unwrap_or(Value::Null),
            (MapNode::Object(fields), Value::Object(m)) => {
                let mut out = Map::with_capacity(fields.len());
                for (k, node) in fields {
                    out.insert(k.clone(), node.select(m.get(k).unwrap_or(&Value::Null), i));
                }
                collapse(out)
            }
            _ => v.clone(),
        }
    }
}

fn eval_object(
    fields: &[(String, MapNode)],
    leaf: Leaf,
    env: &Env<'_>,
    path: &Loc<'_>,
    warnings: &mut Warnings,
) -> Value {
    let mut m = Map::with_capacity(fields.len());
    for (k, node) in fields {
        m.insert(k.clone(), node.eval(leaf, env, &Loc::Field(path, k), warnings));
    }
    collapse(m)
}

/// An object whose fields are all null is null.
fn collapse(m: Map<String, Value>) -> Value {
    if !m.is_empty() && m.values().all(Value::is_null) { Value::Null } else { Value::Object(m) }
}

/// Applies a top-level mapping to the selected root: per element for arrays.
/// The top-level object is never collapsed to null.
pub(crate) fn apply(
    mapping: &MapNode,
    root: &Value,
    env: &Env<'_>,
    warnings: &mut Warnings,
) -> Value {
    apply_with(borrowing, mapping, root, env, warnings)
}

/// [`apply`] with the reference evaluator, [`Expr::eval`].
#[cfg(test)]
pub(crate) fn apply_reference(
    mapping: &MapNode,
    root: &Value,
    env: &Env<'_>,
    warnings: &mut Warnings,
) -> Value {
    apply_with(Expr::eval, mapping, root, env, warnings)
}

fn apply_with(
    leaf: Leaf,
    mapping: &MapNode,
    root: &Value,
    env: &Env<'_>,
    warnings: &mut Warnings,
) -> Value {
    let one = |cur: &Value, path: &Loc<'_>, warnings: &mut Warnings| -> Value {
        let env = env.with_current(cur);
        match mapping {
            MapNode::Object(fields) => {
                let mut m = Map::with_capacity(fields.len());
                for (k, node) in fields {
                    m.insert(k.clone(), node.eval(leaf, &env, &Loc::Field(path, k), warnings));
                }
                Value::Object(m)
            }
            other => other.eval(leaf, &env, path, warnings),
        }
    };
    match root {
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| one(item, &Loc::Index(&Loc::Top, i), warnings))
                .collect(),
        ),
        other => one(other, &Loc::Top, warnings),
    }
}
