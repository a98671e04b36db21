//! Parses only what a response block can observe.
//!
//! At connector load, [`Shape::of`] collects the fields a `response:` block
//! reads: every path from the body or from the mapped element, by field
//! name. A value used as a whole (compared, filtered, output, tested for
//! truth) is kept entirely; an object only walked through keeps just the
//! fields read below it. Arrays are always kept whole (their length and
//! order show). [`parse`] then builds the body's `Value` without the other
//! fields, which are read (and fail) as in a full parse but never
//! allocated. Whatever an expression cannot name it cannot observe, so the
//! mapped output is the same as over the full body; a differential test
//! checks it.

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::expr::{Expr, Part, Root, Seg};
use crate::mapping::MapNode;
use crate::spec::ResponseSpec;

/// The part of a body a response block observes (by default all of it).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Shape {
    /// Keep the whole value.
    all: bool,
    /// Otherwise: the fields of an object to keep, each with its own shape.
    fields: Vec<(String, Shape)>,
}

/// Where the current value (`.`) of an expression sits in the body.
#[derive(Clone, Copy)]
enum Cur<'a> {
    /// At this path of field names.
    At(&'a [String]),
    /// Somewhere that cannot be told: reading it keeps the whole body.
    Unknown,
    /// Not in the body (elements of a parameter or of a context value).
    Elsewhere,
}

impl Default for Shape {
    fn default() -> Shape {
        Shape::everything()
    }
}

impl Shape {
    /// Everything: the plain parse.
    pub(crate) fn everything() -> Shape {
        Shape { all: true, fields: Vec::new() }
    }

    /// Nothing yet.
    fn empty() -> Shape {
        Shape { all: false, fields: Vec::new() }
    }

    /// What `response` can observe of a body.
    pub(crate) fn of(response: &ResponseSpec) -> Shape {
        let Some(mapping) = &response.mapping else {
            // Without a mapping the root itself is the output.
            return Shape::everything();
        };
        let mut s = Shape::empty();
        let top: &[String] = &[];
        let element = match &response.root {
            None => Some(Vec::new()),
            Some(e) => {
                let path = root_path(e);
                if path.is_some() {
                    s.walk_only(e, Cur::At(top));
                } else {
                    s.expr(e, Cur::At(top));
                }
                path
            }
        };
        match &element {
            Some(path) => {
                // The root itself must stay, even when the mapping reads none of it.
                s.at(path);
                s.node(mapping, Cur::At(path));
            }
            None => s.node(mapping, Cur::Unknown),
        }
        for (_, e) in &response.context {
            s.expr(e, Cur::At(top));
        }
        if let Some(p) = &response.page {
            p.next_cursor.iter().chain(&p.has_more).for_each(|e| s.expr(e, Cur::At(top)));
        }
        if let Some(t) = &response.not_found {
            s.parts(t.parts(), Cur::At(top));
        }
        for w in &response.warnings {
            w.when.iter().for_each(|e| s.expr(e, Cur::At(top)));
            s.parts(w.message.parts(), Cur::At(top));
        }
        s
    }

    fn at(&mut self, path: &[String]) -> &mut Shape {
        let mut cur = self;
        for name in path {
            if cur.all {
                return cur;
            }
            let i = match cur.fields.iter().position(|(k, _)| k == name) {
                Some(i) => i,
                None => {
                    cur.fields.push((name.clone(), Shape::empty()));
                    cur.fields.len() - 1
                }
            };
            cur = &mut cur.fields[i].1;
        }
        cur
    }

    fn keep(&mut self, path: &[String]) {
        let node = self.at(path);
        node.all = true;
        node.fields.clear();
    }

    fn node(&mut self, n: &MapNode, cur: Cur<'_>) {
        match n {
            MapNode::Expr(e) => self.expr(e, cur),
            MapNode::Const(_) => {}
            MapNode::Object(fields) => fields.iter().for_each(|(_, n)| self.node(n, cur)),
            MapNode::List(items) => items.iter().for_each(|n| self.node(n, cur)),
        }
    }

    fn parts(&mut self, parts: &[Part], cur: Cur<'_>) {
        for p in parts {
            if let Part::Expr(e) = p {
                self.expr(e, cur);
            }
        }
    }

    /// `e`'s value is used as a whole.
    fn expr(&mut self, e: &Expr, cur: Cur<'_>) {
        match e {
            Expr::Lit(_) => {}
            Expr::Interp(parts) => self.parts(parts, cur),
            Expr::Path { .. } | Expr::Then(..) => match self.walk_only(e, cur) {
                Some(path) => self.keep(&path),
                None => {
                    if let Expr::Then(base, _) = e {
                        self.expr(base, cur);
                    }
                }
            },
            Expr::Not(a) => self.expr(a, cur),
            Expr::Binary(_, a, b) => {
                self.expr(a, cur);
                self.expr(b, cur);
            }
            Expr::Cond(c, a, b) => {
                self.expr(c, cur);
                self.expr(a, cur);
                self.expr(b, cur);
            }
            Expr::Filter(base, _, args) => {
                self.expr(base, cur);
                args.iter().for_each(|a| self.expr(a, cur));
            }
        }
    }

    /// Records what the `[?cond]` steps of a path read and returns the path
    /// of field names it reaches in the body (`None` when it does not start
    /// in the body, or starts somewhere unknown, which keeps everything).
    fn walk_only(&mut self, e: &Expr, cur: Cur<'_>) -> Option<Vec<String>> {
        let (start, segs): (Option<Vec<String>>, Vec<&Seg>) = match e {
            Expr::Path { root, segs } => (self.start(*root, cur), segs.iter().collect()),
            Expr::Then(base, more) => match &**base {
                Expr::Path { root, segs } => {
                    (self.start(*root, cur), segs.iter().chain(more.iter()).collect())
                }
                other => {
                    // A path over a computed value: its conditions see
                    // elements of something we cannot place.
                    if more.iter().any(|s| matches!(s, Seg::Filter(_))) {
                        self.all = true;
                    }
                    self.expr(other, cur);
                    return None;
                }
            },
            _ => return None,
        };
        let Some(mut path) = start else {
            // Conditions over elements outside the body may still read `root`.
            for s in segs {
                if let Seg::Filter(c) = s {
                    self.expr(c, Cur::Elsewhere);
                }
            }
            return None;
        };
        for s in segs {
            match s {
                Seg::Field(f) => path.push(f.clone()),
                Seg::Index(_) | Seg::Each => {}
                Seg::Filter(c) => self.expr(c, Cur::At(&path.clone())),
            }
        }
        Some(path)
    }

    fn start(&mut self, root: Root, cur: Cur<'_>) -> Option<Vec<String>> {
        match (root, cur) {
            (Root::Root, _) => Some(Vec::new()),
            (Root::Current, Cur::At(p)) => Some(p.to_vec()),
            (Root::Current, Cur::Unknown) => {
                self.all = true;
                None
            }
            // Not the body: params, session, context (computed), generated.
            _ => None,
        }
    }
}

/// Where the elements a mapping applies to sit, when `root:` is a path.
fn root_path(e: &Expr) -> Option<Vec<String>> {
    let segs: Vec<&Seg> = match e {
        Expr::Path { root: Root::Current | Root::Root, segs } => segs.iter().collect(),
        Expr::Then(base, more) => match &**base {
            Expr::Path { root: Root::Current | Root::Root, segs } => {
                segs.iter().chain(more.iter()).collect()
            }
            _ => return None,
        },
        _ => return None,
    };
    Some(
        segs.into_iter()
            .filter_map(|s| match s {
                Seg::Field(f) => Some(f.clone()),
                _ => None,
            })
            .collect(),
    )
}

/// Parses a response body keeping only what `shape` observes, with
/// integers too large for 64 bits kept exact (see [`crate::bigint`]).
///
/// The body is first parsed as it is, refusing any number of 10^18 or more
/// in magnitude that would become a float: that is all the big-integer pass
/// could change, so when the parse succeeds its result is the one the pass
/// would give. Otherwise (such a number, or any error) the body goes through
/// the pass and is parsed again, which gives the result or error of record.
pub(crate) fn parse_body(body: &[u8], shape: &Shape) -> Result<Value, serde_json::Error> {
    parse_with(body, Pruned { shape, strict: true })
        .or_else(|_| parse(&crate::bigint::quote_big_integers(body), shape))
}

/// Parses `body` keeping only what `shape` observes; the same result as
/// `serde_json::from_slice` when the shape keeps everything.
pub(crate) fn parse(body: &[u8], shape: &Shape) -> Result<Value, serde_json::Error> {
    if shape.all {
        return serde_json::from_slice(body);
    }
    parse_with(body, Pruned { shape, strict: false })
}

fn parse_with(body: &[u8], seed: Pruned<'_>) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let v = seed.deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

/// Numbers at least this large in magnitude may be integers that the
/// big-integer pass would have turned into strings.
const BIG: f64 = 1e18;

/// Builds the kept part of a value. `strict` refuses floats of [`BIG`] or
/// more (an integer beyond 64 bits reads as one), so that the caller can
/// parse again after the big-integer pass.
#[derive(Clone, Copy)]
struct Pruned<'s> {
    shape: &'s Shape,
    strict: bool,
}

impl<'s> Pruned<'s> {
    fn with(self, shape: &'s Shape) -> Pruned<'s> {
        Pruned { shape, ..self }
    }
}

impl<'de> DeserializeSeed<'de> for Pruned<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        if self.shape.all && !self.strict { Value::deserialize(d) } else { d.deserialize_any(self) }
    }
}

impl<'de> Visitor<'de> for Pruned<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        if self.strict && v.abs() >= BIG {
            return Err(E::custom("a number that may be a big integer"));
        }
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(v) = seq.next_element_seed(self)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key_seed(Key(self.shape))? {
            match key {
                Some((name, shape)) => {
                    let v = map.next_value_seed(self.with(shape))?;
                    out.insert(name, v);
                }
                None => map.next_value_seed(Skip)?,
            }
        }
        Ok(Value::Object(out))
    }
}

/// A value read through and dropped. It goes through `deserialize_any` like
/// a `Value` would, so a skipped part fails exactly where and how a full
/// parse fails (invalid UTF-8 or escapes, numbers out of range, nesting
/// beyond serde_json's limit), but nothing is allocated.
#[derive(Clone, Copy)]
struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(Skip)?.is_some() {
            map.next_value_seed(Skip)?;
        }
        Ok(())
    }
}

/// An object key: the key and its shape when kept, `None` when skipped
/// (without allocating it).
struct Key<'s>(&'s Shape);

impl<'de, 's> DeserializeSeed<'de> for Key<'s> {
    type Value = Option<(String, &'s Shape)>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, 's> Visitor<'de> for Key<'s> {
    type Value = Option<(String, &'s Shape)>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        if self.0.all {
            return Ok(Some((v.to_owned(), self.0)));
        }
        Ok(self.0.fields.iter().find(|(k, _)| k == v).map(|(k, s)| (k.clone(), s)))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::spec::Connector;

    fn web() -> Connector {
        Connector::load(include_str!("../../../connectors/instagram-web.md"), "instagram-web.md")
            .expect("loads")
    }

    fn shape(c: &Connector, action: &str) -> Shape {
        c.action(action).expect("action").op.response.shape.clone()
    }

    #[test]
    fn list_conversations_skips_the_items_of_the_inbox() {
        let body = json!({
            "inbox": {"threads": [{"thread_id": "1", "items": [{"item_id": "9", "text": "hi"}],
                                   "users": [{"pk": 1, "pk_id": "1", "username": "a", "friendship_status": {"following": true}}],
                                   "last_seen_at": {"1": {"timestamp": "1"}}, "muted": false}],
                      "oldest_cursor": "c", "has_older": true},
            "status": "ok"
        });
        let v = parse(body.to_string().as_bytes(), &shape(&web(), "list_conversations")).unwrap();
        assert_eq!(
            v,
            json!({"inbox": {"threads": [{"thread_id": "1", "users": [{"pk": 1, "pk_id": "1", "username": "a"}],
                                          "muted": false}],
                             "oldest_cursor": "c", "has_older": true}})
        );
    }

    #[test]
    fn list_keeps_what_messages_read_whole() {
        let media = json!({"media_type": 1, "image_versions2": {"candidates": [{"url": "u", "width": 1}]}, "pk": 5});
        let body = json!({
            "thread": {"thread_id": "1", "viewer_id": 2, "last_seen_at": {}, "oldest_cursor": "c",
                       "users": [{"pk": 1, "username": "a", "friendship_status": {}}],
                       "items": [{"item_id": "9", "item_type": "media", "media": media,
                                  "client_context": "x", "send_attribution": "inbox"}]},
        });
        let v = parse(body.to_string().as_bytes(), &shape(&web(), "list")).unwrap();
        assert_eq!(
            v,
            json!({"thread": {"thread_id": "1", "viewer_id": 2, "oldest_cursor": "c",
                              "users": [{"pk": 1, "username": "a", "friendship_status": {}}],
                              "items": [{"item_id": "9", "item_type": "media", "media": media,
                                         "client_context": "x"}]}})
        );
    }

    #[test]
    fn the_root_stays_when_the_mapping_reads_none_of_it() {
        use crate::expr::{Bare, Scope};
        let response = ResponseSpec {
            root: Some(Expr::parse("data.items", Scope::Response, Bare::Fields).unwrap()),
            mapping: Some(MapNode::Object(vec![("ok".into(), MapNode::Const(json!(true)))])),
            ..ResponseSpec::default()
        };
        let body = br#"{"data": {"items": [{"x": 1}, 2], "more": 1}, "other": 1}"#;
        assert_eq!(
            parse(body, &Shape::of(&response)).unwrap(),
            json!({"data": {"items": [{}, 2]}})
        );
    }

    #[test]
    fn actions_without_a_mapping_parse_everything() {
        let c = web();
        for a in c.actions() {
            let r = &a.op.response;
            if r.mapping.is_none() {
                assert!(r.shape.all, "{}", a.name());
            }
        }
        let body = br#"{"a": [1, {"b": 2}], "c": "x"}"#;
        assert_eq!(
            parse(body, &Shape::everything()).unwrap(),
            serde_json::from_slice::<Value>(body).unwrap()
        );
        assert!(parse(b"{\"a\": 1} x", &shape(&c, "list")).is_err());
    }

    #[test]
    fn skipped_parts_fail_as_a_full_parse_fails() {
        let list = shape(&web(), "list");
        let deep = format!("{{\"skipped\": {}{}}}", "[".repeat(200), "]".repeat(200));
        let bad_utf8 = b"{\"skipped\": \"\xff\"}".to_vec();
        for body in [
            deep.into_bytes(),
            bad_utf8,
            br#"{"skipped": 1e400}"#.to_vec(),
            br#"{"skipped": "\ud800"}"#.to_vec(),
        ] {
            let full = serde_json::from_slice::<Value>(&body).map_err(|e| e.to_string());
            let shaped = parse(&body, &list).map_err(|e| e.to_string());
            assert!(full.is_err());
            assert_eq!(shaped, full.map(|_| json!({})));
        }
    }
}
