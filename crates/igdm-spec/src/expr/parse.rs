//! Recursive-descent parser for expressions and templates.

use serde_json::Value;

use super::{
    Bare, BinOp, Expr, Filter, Part, REQUEST_VARIABLES, RESPONSE_VARIABLES, Root, Scope, Seg,
};

/// Nesting limit, so hostile input cannot overflow the stack.
const MAX_DEPTH: usize = 64;

/// A syntax or name error at a character offset of the parsed text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at character {offset})")]
pub struct ParseError {
    /// 0-based character offset in the parsed text.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

struct Parser {
    s: Vec<char>,
    pos: usize,
    scope: Scope,
    bare: Bare,
    depth: usize,
}

type R<T> = Result<T, ParseError>;

pub(super) fn parse_expr(src: &str, scope: Scope, bare: Bare) -> R<Expr> {
    let mut p = Parser { s: src.chars().collect(), pos: 0, scope, bare, depth: 0 };
    p.ws();
    if p.at_end() {
        return Err(p.err("empty expression"));
    }
    let e = p.expr()?;
    p.ws();
    if !p.at_end() {
        return Err(p.err(format!("unexpected `{}`", p.rest_preview())));
    }
    Ok(e)
}

pub(super) fn parse_template(src: &str, scope: Scope) -> R<Vec<Part>> {
    let mut p = Parser { s: src.chars().collect(), pos: 0, scope, bare: Bare::Variables, depth: 0 };
    let mut parts = Vec::new();
    let mut text = String::new();
    while !p.at_end() {
        if p.starts_with("{{") {
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            p.pos += 2;
            parts.push(Part::Expr(p.embedded()?));
        } else {
            text.push(p.s[p.pos]);
            p.pos += 1;
        }
    }
    if !text.is_empty() || parts.is_empty() {
        parts.push(Part::Text(text));
    }
    Ok(parts)
}

impl Parser {
    fn err(&self, message: impl Into<String>) -> ParseError {
        ParseError { offset: self.pos, message: message.into() }
    }
    fn err_at(&self, offset: usize, message: impl Into<String>) -> ParseError {
        ParseError { offset, message: message.into() }
    }
    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }
    fn peek(&self) -> Option<char> {
        self.s.get(self.pos).copied()
    }
    fn peek_at(&self, n: usize) -> Option<char> {
        self.s.get(self.pos + n).copied()
    }
    fn starts_with(&self, t: &str) -> bool {
        (self.pos..).zip(t.chars()).all(|(i, c)| self.s.get(i) == Some(&c))
    }
    fn eat(&mut self, t: &str) -> bool {
        if self.starts_with(t) {
            self.pos += t.chars().count();
            true
        } else {
            false
        }
    }
    fn ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }
    fn rest_preview(&self) -> String {
        self.s[self.pos.min(self.s.len())..].iter().take(12).collect()
    }
    fn enter(&mut self) -> R<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("expression nested too deeply"));
        }
        Ok(())
    }

    /// After `{{`: an expression up to `}}`.
    fn embedded(&mut self) -> R<Expr> {
        self.enter()?;
        let saved = self.bare;
        self.bare = Bare::Variables;
        self.ws();
        if self.starts_with("}}") {
            return Err(self.err("empty `{{ }}`"));
        }
        let e = self.expr()?;
        self.ws();
        if !self.eat("}}") {
            return Err(self.err("expected `}}`"));
        }
        self.bare = saved;
        self.depth -= 1;
        Ok(e)
    }

    fn expr(&mut self) -> R<Expr> {
        self.enter()?;
        let c = self.or()?;
        self.ws();
        let out = if self.peek() == Some('?') {
            self.pos += 1;
            self.ws();
            let a = self.expr()?;
            self.ws();
            if !self.eat(":") {
                return Err(self.err("expected `:` of a `? :` conditional"));
            }
            self.ws();
            let b = self.expr()?;
            Expr::Cond(Box::new(c), Box::new(a), Box::new(b))
        } else {
            c
        };
        self.depth -= 1;
        Ok(out)
    }

    fn or(&mut self) -> R<Expr> {
        let mut l = self.and()?;
        loop {
            self.ws();
            if self.eat("||") {
                self.ws();
                let r = self.and()?;
                l = Expr::Binary(BinOp::Or, Box::new(l), Box::new(r));
            } else {
                return Ok(l);
            }
        }
    }

    fn and(&mut self) -> R<Expr> {
        let mut l = self.cmp()?;
        loop {
            self.ws();
            if self.eat("&&") {
                self.ws();
                let r = self.cmp()?;
                l = Expr::Binary(BinOp::And, Box::new(l), Box::new(r));
            } else {
                return Ok(l);
            }
        }
    }

    fn cmp(&mut self) -> R<Expr> {
        let l = self.unary()?;
        self.ws();
        let op = if self.eat("==") {
            BinOp::Eq
        } else if self.eat("!=") {
            BinOp::Ne
        } else if self.eat("<=") {
            BinOp::Le
        } else if self.eat(">=") {
            BinOp::Ge
        } else if self.eat("<") {
            BinOp::Lt
        } else if self.eat(">") {
            BinOp::Gt
        } else {
            return Ok(l);
        };
        self.ws();
        let r = self.unary()?;
        Ok(Expr::Binary(op, Box::new(l), Box::new(r)))
    }

    fn unary(&mut self) -> R<Expr> {
        self.ws();
        if self.peek() == Some('!') && self.peek_at(1) != Some('=') {
            self.pos += 1;
            self.enter()?;
            let e = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(e)));
        }
        self.pipe()
    }

    fn pipe(&mut self) -> R<Expr> {
        let mut e = self.postfix()?;
        loop {
            self.ws();
            // `||` is the or-operator, not a pipe.
            if self.peek() == Some('|') && self.peek_at(1) != Some('|') {
                self.pos += 1;
                self.ws();
                if matches!(self.peek(), Some('.' | '[')) {
                    let segs = self.path_tail()?;
                    e = Expr::Then(Box::new(e), segs);
                    continue;
                }
                let start = self.pos;
                let name =
                    self.ident().ok_or_else(|| self.err("expected a filter name after `|`"))?;
                let filter = Filter::from_name(&name).ok_or_else(|| {
                    self.err_at(
                        start,
                        format!("unknown filter `{name}` (known: {})", Filter::NAMES),
                    )
                })?;
                let mut args = Vec::new();
                self.ws();
                if self.peek() == Some(':') {
                    self.pos += 1;
                    loop {
                        self.ws();
                        args.push(self.argument()?);
                        self.ws();
                        if !self.eat(",") {
                            break;
                        }
                    }
                }
                let (min, max) = filter.arity();
                if args.len() < min || args.len() > max {
                    let want =
                        if min == max { format!("{min}") } else { format!("{min} to {max}") };
                    return Err(self.err_at(
                        start,
                        format!("filter `{name}` takes {want} argument(s), got {}", args.len()),
                    ));
                }
                e = Expr::Filter(Box::new(e), filter, args);
            } else {
                return Ok(e);
            }
        }
    }

    fn argument(&mut self) -> R<Expr> {
        if self.peek() == Some('!') {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.argument()?)));
        }
        self.postfix()
    }

    fn postfix(&mut self) -> R<Expr> {
        let e = self.primary()?;
        if matches!(self.peek(), Some('.' | '[')) {
            let segs = self.path_tail()?;
            return Ok(match e {
                Expr::Path { root, segs: mut base } => {
                    base.extend(segs);
                    Expr::Path { root, segs: base }
                }
                other => Expr::Then(Box::new(other), segs),
            });
        }
        Ok(e)
    }

    fn primary(&mut self) -> R<Expr> {
        self.ws();
        let start = self.pos;
        match self.peek() {
            None => Err(self.err("unexpected end of expression")),
            Some('\'' | '"') => self.string(),
            Some('{') => {
                if self.eat("{{") {
                    self.embedded()
                } else {
                    Err(self.err("`{` must start a `{{ … }}` substitution"))
                }
            }
            Some('(') => {
                self.pos += 1;
                let e = self.expr()?;
                self.ws();
                if !self.eat(")") {
                    return Err(self.err("expected `)`"));
                }
                Ok(e)
            }
            Some('-' | '0'..='9') => self.number(),
            Some('@') => {
                self.pos += 1;
                self.relative(start)
            }
            Some('.' | '[') => self.relative(start),
            Some(c) if c.is_alphabetic() || c == '_' => {
                let name = self.ident().unwrap_or_default();
                match name.as_str() {
                    "true" => return Ok(Expr::Lit(Value::Bool(true))),
                    "false" => return Ok(Expr::Lit(Value::Bool(false))),
                    "null" => return Ok(Expr::Lit(Value::Null)),
                    _ => {}
                }
                if let Some(root) = Root::from_name(&name) {
                    if !root.available_in(self.scope) {
                        return Err(self.err_at(
                            start,
                            format!("`{name}` is only available in response expressions"),
                        ));
                    }
                    return Ok(Expr::Path { root, segs: Vec::new() });
                }
                match self.bare {
                    Bare::Fields if self.scope == Scope::Response => {
                        Ok(Expr::Path { root: Root::Current, segs: vec![Seg::Field(name)] })
                    }
                    _ => {
                        let known = match self.scope {
                            Scope::Request => REQUEST_VARIABLES,
                            Scope::Response => RESPONSE_VARIABLES,
                        };
                        let hint = if self.scope == Scope::Response {
                            "; a field of the current value is written `.name`"
                        } else {
                            ""
                        };
                        Err(self.err_at(
                            start,
                            format!("unknown variable `{name}` (known: {known}){hint}"),
                        ))
                    }
                }
            }
            Some(c) => Err(self.err(format!("unexpected `{c}`"))),
        }
    }

    /// A path from the current value: `.x`, `[0]`, `[]`, `@`, or `.` alone.
    fn relative(&mut self, start: usize) -> R<Expr> {
        if self.scope == Scope::Request {
            return Err(
                self.err_at(start, "a relative path has no current value in a request template")
            );
        }
        let mut segs = Vec::new();
        if self.peek() == Some('.')
            && !self.peek_at(1).is_some_and(is_ident_char)
            && self.peek_at(1) != Some('[')
        {
            // `.` alone: the current value.
            self.pos += 1;
        } else if self.peek() == Some('.') && self.peek_at(1) == Some('[') {
            self.pos += 1;
        }
        if matches!(self.peek(), Some('.' | '[')) {
            segs = self.path_tail()?;
        }
        Ok(Expr::Path { root: Root::Current, segs })
    }

    fn path_tail(&mut self) -> R<Vec<Seg>> {
        let mut segs = Vec::new();
        loop {
            match self.peek() {
                Some('.') => {
                    self.pos += 1;
                    if self.peek() == Some('[') {
                        continue;
                    }
                    let name = self
                        .ident_or_digits()
                        .ok_or_else(|| self.err("expected a field name after `.`"))?;
                    segs.push(Seg::Field(name));
                }
                Some('[') => {
                    self.pos += 1;
                    self.ws();
                    match self.peek() {
                        Some(']') => {
                            self.pos += 1;
                            segs.push(Seg::Each);
                        }
                        Some('*') => {
                            self.pos += 1;
                            self.ws();
                            self.expect_close()?;
                            segs.push(Seg::Each);
                        }
                        Some('?') => {
                            self.pos += 1;
                            self.enter()?;
                            let saved = self.bare;
                            self.bare = Bare::Fields;
                            let scope = self.scope;
                            self.scope = Scope::Response;
                            let cond = self.expr()?;
                            self.scope = scope;
                            self.bare = saved;
                            self.depth -= 1;
                            self.ws();
                            self.expect_close()?;
                            segs.push(Seg::Filter(Box::new(cond)));
                        }
                        Some('\'' | '"') => {
                            let at = self.pos;
                            let Expr::Lit(Value::String(name)) = self.string()? else {
                                return Err(
                                    self.err_at(at, "a field name in `[ ]` cannot contain `{{ }}`")
                                );
                            };
                            self.ws();
                            self.expect_close()?;
                            segs.push(Seg::Field(name));
                        }
                        Some('-' | '0'..='9') => {
                            let at = self.pos;
                            let neg = self.eat("-");
                            let digits = self.digits();
                            let n: i64 = digits
                                .parse()
                                .map_err(|_| self.err_at(at, "expected an index in `[ ]`"))?;
                            self.ws();
                            self.expect_close()?;
                            segs.push(Seg::Index(if neg { -n } else { n }));
                        }
                        _ => {
                            return Err(self.err(
                                "expected `]`, `*`, `?cond`, a number or a quoted name in `[ ]`",
                            ));
                        }
                    }
                }
                _ => return Ok(segs),
            }
        }
    }

    fn expect_close(&mut self) -> R<()> {
        if self.eat("]") { Ok(()) } else { Err(self.err("expected `]`")) }
    }

    fn digits(&mut self) -> String {
        let mut out = String::new();
        while let Some(c) = self.peek().filter(char::is_ascii_digit) {
            out.push(c);
            self.pos += 1;
        }
        out
    }

    fn ident(&mut self) -> Option<String> {
        let c = self.peek()?;
        if !(c.is_alphabetic() || c == '_') {
            return None;
        }
        let mut out = String::new();
        while let Some(c) = self.peek().filter(|c| is_ident_char(*c)) {
            out.push(c);
            self.pos += 1;
        }
        Some(out)
    }

    fn ident_or_digits(&mut self) -> Option<String> {
        let mut out = String::new();
        while let Some(c) = self.peek().filter(|c| is_ident_char(*c)) {
            out.push(c);
            self.pos += 1;
        }
        (!out.is_empty()).then_some(out)
    }

    fn number(&mut self) -> R<Expr> {
        let start = self.pos;
        let mut text = String::new();
        if self.eat("-") {
            text.push('-');
        }
        let int = self.digits();
        if int.is_empty() {
            return Err(self.err_at(start, "expected a number"));
        }
        text.push_str(&int);
        let mut is_float = false;
        if self.peek() == Some('.') && self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
            text.push('.');
            text.push_str(&self.digits());
            is_float = true;
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            let save = self.pos;
            self.pos += 1;
            let mut exp = String::from("e");
            if let Some(sign) = self.peek().filter(|c| *c == '+' || *c == '-') {
                exp.push(sign);
                self.pos += 1;
            }
            let d = self.digits();
            if d.is_empty() {
                self.pos = save;
            } else {
                exp.push_str(&d);
                text.push_str(&exp);
                is_float = true;
            }
        }
        if !is_float {
            if let Ok(i) = text.parse::<i64>() {
                return Ok(Expr::Lit(Value::Number(i.into())));
            }
            if let Ok(u) = text.parse::<u64>() {
                return Ok(Expr::Lit(Value::Number(u.into())));
            }
            // Too large for 64 bits: keep the digits, never round through f64.
            return Ok(Expr::Lit(Value::String(text)));
        }
        text.parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(|n| Expr::Lit(Value::Number(n)))
            .ok_or_else(|| self.err_at(start, "invalid number"))
    }

    /// A quoted string; `{{ … }}` inside makes it an interpolated string.
    fn string(&mut self) -> R<Expr> {
        let start = self.pos;
        let Some(quote) = self.peek() else {
            return Err(self.err("expected a string"));
        };
        self.pos += 1;
        let mut parts = Vec::new();
        let mut text = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err_at(start, "unterminated string"));
            };
            if c == quote {
                self.pos += 1;
                break;
            }
            if c == '\\' {
                self.pos += 1;
                let Some(e) = self.peek() else {
                    return Err(self.err_at(start, "unterminated string"));
                };
                self.pos += 1;
                text.push(match e {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    other => other,
                });
                continue;
            }
            if self.starts_with("{{") {
                self.pos += 2;
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text)));
                }
                parts.push(Part::Expr(self.embedded()?));
                continue;
            }
            text.push(c);
            self.pos += 1;
        }
        if parts.is_empty() {
            return Ok(Expr::Lit(Value::String(text)));
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Expr::Interp(parts))
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}
