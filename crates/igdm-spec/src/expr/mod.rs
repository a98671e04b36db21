//! The expression language shared by request templates and response mappings.
//!
//! The grammar and semantics are documented in `docs/spec-language.md`. This
//! module parses expressions and templates once (at connector load) into an
//! AST; [`Expr::eval`] and [`Template::render`] evaluate them against an
//! environment. Values substituted into an expression are data: they are
//! never parsed again.

mod eval;
mod filters;
mod parse;

pub use eval::Env;
pub(crate) use eval::{stringify, truthy, values_equal};
pub use filters::Filter;
pub use parse::ParseError;

use serde_json::Value;

/// Where an expression is used; decides which variables exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Request templates (URL, query, body, headers): no response yet.
    Request,
    /// Response expressions (root, context, mapping, page, error rules).
    Response,
}

/// How bare identifiers are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bare {
    /// A bare identifier must be a variable (`params`, `auth`, …).
    Variables,
    /// A bare identifier that is not a variable is a field of the current value
    /// (`root:`/`context:`/`page:` paths and `[? … ]` conditions).
    Fields,
}

/// A variable an expression starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    /// The validated action parameters.
    Params,
    /// The session: `auth.cookies.<name>`, `auth.access_token`, `auth.<extra>`.
    Auth,
    /// Device identity: `device.uuid`.
    Device,
    /// API settings: `api.base_url`.
    Api,
    /// Values captured by the response's `context:`.
    Context,
    /// The whole response body.
    Root,
    /// The current value (`.`/`@`, a relative path, or a bare field).
    Current,
    /// A fresh random UUID v4 on every evaluation.
    GenerateUuid,
    /// Values fixed once per request build: `request.uuid` is one UUID v4
    /// shared by every template of the same request.
    Request,
    /// The current time as RFC 3339 UTC.
    Now,
}

impl Root {
    /// The variable named `name`, if there is one.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Root> {
        Some(match name {
            "params" => Root::Params,
            "auth" => Root::Auth,
            "device" => Root::Device,
            "api" => Root::Api,
            "context" => Root::Context,
            "root" => Root::Root,
            "generate_uuid" => Root::GenerateUuid,
            "request" => Root::Request,
            "now" => Root::Now,
            _ => return None,
        })
    }

    /// Whether the variable exists in `scope`.
    #[must_use]
    pub fn available_in(self, scope: Scope) -> bool {
        !matches!(
            (self, scope),
            (Root::Context | Root::Root | Root::Current, Scope::Request)
                | (Root::Request, Scope::Response)
        )
    }
}

/// The variables a request template may use.
pub const REQUEST_VARIABLES: &str = "params, auth, device, api, request, generate_uuid, now";
/// The variables a response expression may use.
pub const RESPONSE_VARIABLES: &str = "params, auth, device, api, context, root, generate_uuid, now";

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
pub enum Seg {
    /// `.name` or `["name"]`.
    Field(String),
    /// `[n]`; negative counts from the end.
    Index(i64),
    /// `[]` or `[*]`: project the rest of the path over each element.
    Each,
    /// `[?cond]`: keep elements where `cond` is truthy, then project.
    Filter(Box<Expr>),
}

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `==` (numbers and strings compare by textual form).
    Eq,
    /// `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `&&` (yields a boolean).
    And,
    /// `||` (yields the first truthy operand, else the last).
    Or,
}

/// A piece of an interpolated string or template.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// Literal text.
    Text(String),
    /// An embedded `{{ expr }}`.
    Expr(Expr),
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal value.
    Lit(Value),
    /// A string literal containing `{{ … }}`.
    Interp(Vec<Part>),
    /// A variable followed by a path.
    Path {
        /// The variable.
        root: Root,
        /// The path below it.
        segs: Vec<Seg>,
    },
    /// `!e`.
    Not(Box<Expr>),
    /// `a op b`.
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `c ? a : b`.
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `e | filter: args`.
    Filter(Box<Expr>, Filter, Vec<Expr>),
    /// `e | [0]` / `e | .x`: a path applied to the whole value (ends a projection).
    Then(Box<Expr>, Vec<Seg>),
}

impl Expr {
    /// Parses a whole expression.
    pub fn parse(src: &str, scope: Scope, bare: Bare) -> Result<Expr, ParseError> {
        parse::parse_expr(src, scope, bare)
    }

    /// Evaluates the expression.
    pub fn eval(&self, env: &Env<'_>) -> Result<Value, String> {
        eval::eval(self, env)
    }

    /// Evaluates like [`Expr::eval`], borrowing the result from the
    /// environment or the expression where it can instead of copying it.
    pub fn eval_ref<'a>(&'a self, env: &Env<'a>) -> Result<std::borrow::Cow<'a, Value>, String> {
        eval::eval_ref(self, env)
    }

    /// The value of a plain path (fields and indexes only) without copying
    /// it; `None` for any other expression.
    #[must_use]
    pub fn lookup<'a>(&self, env: &Env<'a>) -> Option<&'a Value> {
        eval::lookup(self, env)
    }

    /// Whether the expression is a path from the `api` variable (trusted
    /// configuration, not percent-encoded in URLs).
    #[must_use]
    pub fn is_api_path(&self) -> bool {
        matches!(self, Expr::Path { root: Root::Api, .. })
    }
}

/// A template: text with `{{ expr }}` holes.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses a template.
    pub fn parse(src: &str, scope: Scope) -> Result<Template, ParseError> {
        parse::parse_template(src, scope).map(|parts| Template { parts })
    }

    /// A template that is only literal text.
    #[must_use]
    pub fn literal(text: &str) -> Template {
        Template { parts: vec![Part::Text(text.to_owned())] }
    }

    /// The parts.
    #[must_use]
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The literal text when the template has no holes.
    #[must_use]
    pub fn as_literal(&self) -> Option<String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Expr(_) => return None,
            }
        }
        Some(out)
    }

    /// Renders the template. A template that is exactly one `{{expr}}` keeps
    /// the expression's JSON type; otherwise the result is a string in which
    /// null renders empty.
    pub fn render(&self, env: &Env<'_>) -> Result<Value, String> {
        if let [Part::Expr(e)] = self.parts.as_slice() {
            return e.eval(env);
        }
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Expr(e) => out.push_str(&stringify(&e.eval(env)?)),
            }
        }
        Ok(Value::String(out))
    }

    /// Renders to text, passing each hole's text through `encode` (used to
    /// percent-encode values substituted into a URL path).
    pub fn render_with(
        &self,
        env: &Env<'_>,
        encode: impl Fn(&Expr, String) -> String,
    ) -> Result<String, String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Expr(e) => out.push_str(&encode(e, stringify(&e.eval(env)?))),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
