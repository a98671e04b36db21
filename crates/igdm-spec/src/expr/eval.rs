//! Evaluation of parsed expressions.

use std::borrow::Cow;

use serde_json::Value;

use super::{BinOp, Expr, Part, Root, Seg};

static NULL: Value = Value::Null;

/// The values an expression can see.
#[derive(Debug, Clone, Copy)]
pub struct Env<'a> {
    /// `params`.
    pub params: &'a Value,
    /// `auth`.
    pub auth: &'a Value,
    /// `device`.
    pub device: &'a Value,
    /// `api`.
    pub api: &'a Value,
    /// `request`: values fixed for one request build (`request.uuid`).
    pub request: &'a Value,
    /// `context`.
    pub context: &'a Value,
    /// `root`: the whole response body.
    pub root: &'a Value,
    /// The current value (`.`).
    pub current: &'a Value,
}

impl<'a> Env<'a> {
    /// An environment where every variable is null.
    #[must_use]
    pub fn empty() -> Env<'static> {
        Env {
            params: &NULL,
            auth: &NULL,
            device: &NULL,
            api: &NULL,
            request: &NULL,
            context: &NULL,
            root: &NULL,
            current: &NULL,
        }
    }

    /// The same environment with another current value.
    #[must_use]
    pub fn with_current<'b>(&self, current: &'b Value) -> Env<'b>
    where
        'a: 'b,
    {
        Env { current, ..*self }
    }
}

pub(crate) fn eval(e: &Expr, env: &Env<'_>) -> Result<Value, String> {
    match e {
        Expr::Lit(v) => Ok(v.clone()),
        Expr::Interp(parts) => {
            let mut out = String::new();
            for p in parts {
                match p {
                    Part::Text(t) => out.push_str(t),
                    Part::Expr(e) => out.push_str(&stringify(&eval(e, env)?)),
                }
            }
            Ok(Value::String(out))
        }
        Expr::Path { root, segs } => match variable(*root, env) {
            Some(base) => walk(base, segs, env),
            None => {
                let v = match root {
                    Root::Now => Value::String(igdm_model::Timestamp::now().to_rfc3339()),
                    _ => Value::String(uuid::Uuid::new_v4().to_string()),
                };
                walk(&v, segs, env)
            }
        },
        Expr::Not(e) => Ok(Value::Bool(!truthy(&eval(e, env)?))),
        Expr::Binary(op, l, r) => {
            let lv = eval(l, env)?;
            match op {
                BinOp::And => {
                    if !truthy(&lv) {
                        return Ok(Value::Bool(false));
                    }
                    Ok(Value::Bool(truthy(&eval(r, env)?)))
                }
                BinOp::Or => {
                    if truthy(&lv) {
                        return Ok(lv);
                    }
                    eval(r, env)
                }
                BinOp::Eq => Ok(Value::Bool(values_equal(&lv, &eval(r, env)?))),
                BinOp::Ne => Ok(Value::Bool(!values_equal(&lv, &eval(r, env)?))),
                BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                    let rv = eval(r, env)?;
                    let Some(ord) = compare(&lv, &rv) else {
                        return Ok(Value::Bool(false));
                    };
                    use std::cmp::Ordering::{Greater, Less};
                    Ok(Value::Bool(match op {
                        BinOp::Lt => ord == Less,
                        BinOp::Le => ord != Greater,
                        BinOp::Gt => ord == Greater,
                        _ => ord != Less,
                    }))
                }
            }
        }
        Expr::Cond(c, a, b) => {
            if truthy(&eval(c, env)?) {
                eval(a, env)
            } else {
                eval(b, env)
            }
        }
        Expr::Filter(base, f, args) => {
            let v = eval(base, env)?;
            let args = args.iter().map(|a| eval(a, env)).collect::<Result<Vec<_>, _>>()?;
            f.apply(v, &args)
        }
        Expr::Then(base, segs) => {
            let v = eval(base, env)?;
            walk(&v, segs, env)
        }
    }
}

/// Evaluates like [`eval`] but borrows whatever it can from the environment
/// and the expression itself (paths, literals, `||` operands, the element a
/// `lookup` finds) instead of copying it: a response mapping then copies a
/// value only when it goes into the output. Same results and errors as
/// [`eval`], which the differential tests check.
pub(crate) fn eval_ref<'a>(e: &'a Expr, env: &Env<'a>) -> Result<Cow<'a, Value>, String> {
    match e {
        Expr::Lit(v) => Ok(Cow::Borrowed(v)),
        Expr::Interp(parts) => {
            let mut out = String::new();
            for p in parts {
                match p {
                    Part::Text(t) => out.push_str(t),
                    Part::Expr(e) => push_text(&mut out, &*eval_ref(e, env)?),
                }
            }
            Ok(Cow::Owned(Value::String(out)))
        }
        Expr::Path { root, segs } => match variable(*root, env) {
            Some(base) => walk_ref(base, segs, env),
            None => eval(e, env).map(Cow::Owned),
        },
        Expr::Not(e) => Ok(Cow::Owned(Value::Bool(!truthy(&*eval_ref(e, env)?)))),
        Expr::Binary(op, l, r) => {
            let lv = eval_ref(l, env)?;
            let b = match op {
                BinOp::And => truthy(&lv) && truthy(&*eval_ref(r, env)?),
                BinOp::Or => {
                    if truthy(&lv) {
                        return Ok(lv);
                    }
                    return eval_ref(r, env);
                }
                BinOp::Eq => values_equal(&lv, &*eval_ref(r, env)?),
                BinOp::Ne => !values_equal(&lv, &*eval_ref(r, env)?),
                BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                    let rv = eval_ref(r, env)?;
                    let Some(ord) = compare(&lv, &rv) else {
                        return Ok(Cow::Owned(Value::Bool(false)));
                    };
                    use std::cmp::Ordering::{Greater, Less};
                    match op {
                        BinOp::Lt => ord == Less,
                        BinOp::Le => ord != Greater,
                        BinOp::Gt => ord == Greater,
                        _ => ord != Less,
                    }
                }
            };
            Ok(Cow::Owned(Value::Bool(b)))
        }
        Expr::Cond(c, a, b) => {
            if truthy(&*eval_ref(c, env)?) {
                eval_ref(a, env)
            } else {
                eval_ref(b, env)
            }
        }
        Expr::Filter(base, f, args) => {
            let v = eval_ref(base, env)?;
            // Literal arguments (`map_value`'s tables) borrowed in place.
            let args = args
                .iter()
                .map(|a| match a {
                    Expr::Lit(v) => Ok(Cow::Borrowed(v)),
                    other => eval_ref(other, env),
                })
                .collect::<Result<Vec<_>, _>>()?;
            f.apply_ref(v, &args)
        }
        Expr::Then(base, segs) => match eval_ref(base, env)? {
            Cow::Borrowed(v) => walk_ref(v, segs, env),
            Cow::Owned(v) => walk_ref(&v, segs, env).map(|r| Cow::Owned(r.into_owned())),
        },
    }
}

/// [`walk`] over borrowed values: a plain path borrows its target.
fn walk_ref<'a>(v: &'a Value, segs: &'a [Seg], env: &Env<'a>) -> Result<Cow<'a, Value>, String> {
    let mut cur = v;
    for (i, seg) in segs.iter().enumerate() {
        match seg {
            Seg::Field(name) => cur = field(cur, name),
            Seg::Index(n) => cur = index(cur, *n),
            Seg::Each => {
                if let Value::Array(a) = cur {
                    let rest = &segs[i + 1..];
                    return a
                        .iter()
                        .map(|e| walk_ref(e, rest, env).map(Cow::into_owned))
                        .collect::<Result<Vec<_>, _>>()
                        .map(|a| Cow::Owned(Value::Array(a)));
                }
            }
            Seg::Filter(cond) => {
                if let Value::Array(a) = cur {
                    let rest = &segs[i + 1..];
                    let mut out = Vec::new();
                    for e in a {
                        if truthy(&*eval_ref(cond, &env.with_current(e))?) {
                            out.push(walk_ref(e, rest, env)?.into_owned());
                        }
                    }
                    return Ok(Cow::Owned(Value::Array(out)));
                }
                if !cur.is_null() && !truthy(&*eval_ref(cond, &env.with_current(cur))?) {
                    return Ok(Cow::Owned(Value::Null));
                }
            }
        }
    }
    Ok(Cow::Borrowed(cur))
}

/// Appends what [`stringify`] returns without building it first.
pub(crate) fn push_text(out: &mut String, v: &Value) {
    use std::fmt::Write;
    match v {
        Value::Null => {}
        Value::String(s) => out.push_str(s),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        other => {
            let _ = write!(out, "{other}");
        }
    }
}

/// [`stringify`], borrowing a string instead of copying it.
pub(crate) fn text_of(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(s) => Cow::Borrowed(s),
        other => Cow::Owned(stringify(other)),
    }
}

/// `text_of(v) == text`, without writing integers out.
pub(crate) fn text_is(v: &Value, text: &str) -> bool {
    match v {
        Value::String(s) => s == text,
        Value::Number(n) => number_text_is(n, text),
        other => stringify(other) == text,
    }
}

/// `n.to_string() == text`; integers are compared digit by digit.
fn number_text_is(n: &serde_json::Number, text: &str) -> bool {
    let (negative, magnitude) = match (n.as_u64(), n.as_i64()) {
        (Some(u), _) => (false, u),
        (None, Some(i)) => (true, i.unsigned_abs()),
        (None, None) => return n.to_string() == text,
    };
    let digits = match text.strip_prefix('-') {
        Some(rest) if negative => rest,
        _ if negative => return false,
        _ => text,
    };
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    let mut m = magnitude;
    loop {
        at -= 1;
        // `m % 10` is a single digit.
        buf[at] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    digits.as_bytes() == &buf[at..]
}

pub(crate) fn lookup<'a>(e: &Expr, env: &Env<'a>) -> Option<&'a Value> {
    let Expr::Path { root, segs } = e else { return None };
    let mut cur: &'a Value = variable(*root, env)?;
    for seg in segs {
        cur = match seg {
            Seg::Field(name) => field(cur, name),
            Seg::Index(n) => index(cur, *n),
            _ => return None,
        };
    }
    Some(cur)
}

/// The value of a stored variable; `None` for generated ones (uuid, now).
fn variable<'a>(root: Root, env: &Env<'a>) -> Option<&'a Value> {
    Some(match root {
        Root::Params => env.params,
        Root::Auth => env.auth,
        Root::Device => env.device,
        Root::Api => env.api,
        Root::Request => env.request,
        Root::Context => env.context,
        Root::Root => env.root,
        Root::Current => env.current,
        Root::GenerateUuid | Root::Now => return None,
    })
}

fn field<'a>(v: &'a Value, name: &str) -> &'a Value {
    match v {
        // Keys are unique: in a small object a scan finds what hashing the
        // name (SipHash, per lookup) would, for less.
        Value::Object(m) if m.len() <= SCAN_FIELDS => {
            m.iter().find(|(k, _)| k.as_str() == name).map_or(&NULL, |(_, v)| v)
        }
        Value::Object(m) => m.get(name).unwrap_or(&NULL),
        _ => &NULL,
    }
}

/// Objects up to this many fields are searched by scanning.
const SCAN_FIELDS: usize = 16;

/// `[n]`, negative from the end; null when out of range or not an array.
fn index(v: &Value, n: i64) -> &Value {
    match v {
        Value::Array(a) => {
            let idx = if n < 0 { i64::try_from(a.len()).unwrap_or(i64::MAX) + n } else { n };
            usize::try_from(idx).ok().and_then(|i| a.get(i)).unwrap_or(&NULL)
        }
        _ => &NULL,
    }
}

/// Follows `segs` from `v`. `[]`, `[*]` and `[?…]` project the rest of the
/// path over each element; on a value that is not an array they pass it
/// through unchanged (so `[].x` on the current element of a per-element
/// mapping reads the element's field).
fn walk(v: &Value, segs: &[Seg], env: &Env<'_>) -> Result<Value, String> {
    let mut cur = v;
    for (i, seg) in segs.iter().enumerate() {
        match seg {
            Seg::Field(name) => cur = field(cur, name),
            Seg::Index(n) => cur = index(cur, *n),
            Seg::Each => {
                if let Value::Array(a) = cur {
                    let rest = &segs[i + 1..];
                    return a
                        .iter()
                        .map(|e| walk(e, rest, env))
                        .collect::<Result<Vec<_>, _>>()
                        .map(Value::Array);
                }
            }
            Seg::Filter(cond) => {
                if let Value::Array(a) = cur {
                    let rest = &segs[i + 1..];
                    let mut out = Vec::new();
                    for e in a {
                        if truthy(&eval(cond, &env.with_current(e))?) {
                            out.push(walk(e, rest, env)?);
                        }
                    }
                    return Ok(Value::Array(out));
                }
                if !cur.is_null() && !truthy(&eval(cond, &env.with_current(cur))?) {
                    return Ok(Value::Null);
                }
            }
        }
    }
    Ok(cur.clone())
}

/// Truthiness: null, false, 0, "" and empty arrays/objects are false.
pub(crate) fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Equality where a number equals a string with the same textual form
/// (Instagram sends one id as either).
pub(crate) fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                return x == y;
            }
            if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                return x == y;
            }
            if x.is_f64() || y.is_f64() {
                return x.as_f64() == y.as_f64();
            }
            false
        }
        (Value::Number(n), Value::String(s)) | (Value::String(s), Value::Number(n)) => {
            number_text_is(n, s)
        }
        _ => a == b,
    }
}

fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => {
            let x = super::filters::as_f64(a)?;
            let y = super::filters::as_f64(b)?;
            x.partial_cmp(&y)
        }
    }
}

/// The text a value renders as in a template: strings as themselves, null as
/// nothing, numbers and booleans in JSON form, arrays and objects as compact JSON.
pub(crate) fn stringify(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}
