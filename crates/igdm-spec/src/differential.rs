//! Differential tests: the borrowing evaluator that response mappings run
//! ([`Expr::eval_ref`], [`mapping::apply`]) against the reference
//! interpreter ([`Expr::eval`], [`mapping::apply_reference`]) on random
//! inputs. Both must give the same values, the same errors and the same
//! warnings.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::expr::{BinOp, Env, Expr, Filter, Part, Root, Seg};
use crate::mapping::{self, MapNode, Warnings};
use bytes::Bytes;

use crate::exec::{self, ActionOutput};
use crate::shape::Shape;
use crate::spec::{Action, Connector};
use crate::{ExecError, Session};

const CONNECTORS: &[(&str, &str)] = &[
    ("instagram-web.md", include_str!("../../../connectors/instagram-web.md")),
    ("instagram-graph.md", include_str!("../../../connectors/instagram-graph.md")),
    ("instagram-page.md", include_str!("../../../connectors/instagram-page.md")),
    ("seed001.md", include_str!("../tests/fixtures/seed001.md")),
];

/// Texts that the shipped mappings compare against, and a few awkward ones.
const STRINGS: &[&str] = &[
    "",
    "1",
    "2",
    " 7 ",
    "1763790000",
    "1763790000123456",
    "2024-01-02T03:04:05Z",
    "text",
    "media",
    "link",
    "like",
    "raven_media",
    "visual_media",
    "voice_media",
    "clip",
    "reel_share",
    "media_share",
    "action_log",
    "deletion",
    "image",
    "video",
    "audio",
    "share",
    "ms",
    "us",
    "pk",
    "username",
    "https://cdn.example/a.jpg",
    "❤️",
    "true",
];

/// The connectors, loaded once for all cases.
fn connectors() -> &'static [Connector] {
    static LOADED: LazyLock<Vec<Connector>> = LazyLock::new(|| {
        CONNECTORS
            .iter()
            .map(|(name, text)| Connector::load(text, name).expect("shipped connector loads"))
            .collect()
    });
    &LOADED
}

/// The field names the connectors' response expressions read, by their
/// position in a path (`thread.items` puts `thread` at 0, `items` at 1).
fn field_names(connectors: &[Connector]) -> Vec<Vec<String>> {
    fn expr(e: &Expr, out: &mut Vec<BTreeSet<String>>) {
        match e {
            Expr::Lit(_) => {}
            Expr::Interp(parts) => parts.iter().for_each(|p| {
                if let Part::Expr(e) = p {
                    expr(e, out);
                }
            }),
            Expr::Path { segs, .. } | Expr::Then(_, segs) => {
                if let Expr::Then(base, _) = e {
                    expr(base, out);
                }
                let mut pos = 0;
                for s in segs {
                    match s {
                        Seg::Field(f) => {
                            if out.len() <= pos {
                                out.push(BTreeSet::new());
                            }
                            out[pos].insert(f.clone());
                            pos += 1;
                        }
                        Seg::Filter(c) => expr(c, out),
                        Seg::Index(_) | Seg::Each => {}
                    }
                }
            }
            Expr::Not(a) => expr(a, out),
            Expr::Binary(_, a, b) => {
                expr(a, out);
                expr(b, out);
            }
            Expr::Cond(c, a, b) => {
                expr(c, out);
                expr(a, out);
                expr(b, out);
            }
            Expr::Filter(base, _, args) => {
                expr(base, out);
                args.iter().for_each(|a| expr(a, out));
            }
        }
    }
    fn node(n: &MapNode, out: &mut Vec<BTreeSet<String>>) {
        match n {
            MapNode::Expr(e) => expr(e, out),
            MapNode::Const(_) => {}
            MapNode::Object(fields) => fields.iter().for_each(|(_, n)| node(n, out)),
            MapNode::List(items) => items.iter().for_each(|n| node(n, out)),
        }
    }
    let mut out = Vec::new();
    for c in connectors {
        for a in c.actions() {
            let r = &a.op.response;
            r.root.iter().for_each(|e| expr(e, &mut out));
            r.context.iter().for_each(|(_, e)| expr(e, &mut out));
            r.mapping.iter().for_each(|m| node(m, &mut out));
            if let Some(p) = &r.page {
                p.next_cursor.iter().chain(&p.has_more).for_each(|e| expr(e, &mut out));
            }
        }
    }
    out.into_iter().map(|s| s.into_iter().collect()).collect()
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..4).prop_map(Value::from),
        Just(json!(u64::MAX)),
        Just(json!(1_763_790_000_123_456u64)),
        Just(json!(1.5)),
        prop::sample::select(STRINGS).prop_map(|s| Value::String(s.to_owned())),
    ]
}

/// Random JSON whose object keys at each depth are names the mappings read
/// at that position of a path, so random bodies reach the mapped fields.
fn json_value(pools: &[Vec<String>], pos: usize, level: usize) -> BoxedStrategy<Value> {
    if level >= 5 || pools.is_empty() {
        return leaf().boxed();
    }
    let keys = pools[pos.min(pools.len() - 1)].clone();
    prop_oneof![
        2 => leaf(),
        1 => prop::collection::vec(json_value(pools, pos, level + 1), 0..3).prop_map(Value::Array),
        3 => prop::collection::vec((prop::sample::select(keys), json_value(pools, pos + 1, level + 1)), 0..10)
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
    ]
    .boxed()
}

const FILTERS: &[Filter] = &[
    Filter::Default,
    Filter::Divide,
    Filter::Multiply,
    Filter::ToDatetime,
    Filter::ToJson,
    Filter::ToAttachment,
    Filter::ToString,
    Filter::ToNumber,
    Filter::Length,
    Filter::Lower,
    Filter::Upper,
    Filter::Trim,
    Filter::Join,
    Filter::First,
    Filter::Last,
    Filter::Entries,
    Filter::Keys,
    Filter::Values,
    Filter::Lookup,
    Filter::MapValue,
];

const OPS: &[BinOp] =
    &[BinOp::Eq, BinOp::Ne, BinOp::Lt, BinOp::Le, BinOp::Gt, BinOp::Ge, BinOp::And, BinOp::Or];

fn seg(keys: Vec<String>) -> impl Strategy<Value = Seg> {
    prop_oneof![
        3 => prop::sample::select(keys).prop_map(Seg::Field),
        1 => (-2i64..3).prop_map(Seg::Index),
        1 => Just(Seg::Each),
    ]
}

fn path(keys: Vec<String>) -> impl Strategy<Value = Expr> {
    (
        prop::sample::select(&[Root::Current, Root::Root, Root::Context, Root::Params][..]),
        prop::collection::vec(seg(keys), 0..4),
    )
        .prop_map(|(root, segs)| Expr::Path { root, segs })
}

/// Random expressions over every operator and filter (never the generated
/// variables `generate_uuid` and `now`, which differ on every evaluation).
fn expression(keys: Vec<String>) -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![leaf().prop_map(Expr::Lit), path(keys.clone())];
    leaf.prop_recursive(4, 32, 6, move |inner| {
        let boxed = inner.clone().prop_map(Box::new);
        prop_oneof![
            boxed.clone().prop_map(Expr::Not),
            (prop::sample::select(OPS), boxed.clone(), boxed.clone())
                .prop_map(|(op, a, b)| Expr::Binary(op, a, b)),
            (boxed.clone(), boxed.clone(), boxed.clone()).prop_map(|(c, a, b)| Expr::Cond(c, a, b)),
            (
                prop::sample::select(FILTERS),
                boxed.clone(),
                prop::collection::vec(inner.clone(), 0..6)
            )
                .prop_map(|(f, base, mut args)| {
                    let (min, max) = f.arity();
                    while args.len() < min {
                        args.push(Expr::Lit(Value::Null));
                    }
                    args.truncate(max.min(args.len()));
                    Expr::Filter(base, f, args)
                }),
            (boxed.clone(), prop::collection::vec(seg(keys.clone()), 1..3))
                .prop_map(|(b, segs)| Expr::Then(b, segs)),
            (boxed, prop::collection::vec(seg(keys.clone()), 0..2), inner.clone()).prop_map(
                |(b, rest, cond)| {
                    let mut segs = vec![Seg::Filter(b)];
                    segs.extend(rest);
                    guarded(cond, Expr::Path { root: Root::Current, segs })
                }
            ),
            prop::collection::vec(
                prop_oneof![
                    inner.prop_map(Part::Expr),
                    prop::sample::select(STRINGS).prop_map(|s| Part::Text(s.to_owned()))
                ],
                1..4
            )
            .prop_map(Expr::Interp),
        ]
    })
}

/// `cond ? e : null`, so filtered paths also meet conditions.
fn guarded(cond: Expr, e: Expr) -> Expr {
    Expr::Cond(Box::new(cond), Box::new(e), Box::new(Expr::Lit(Value::Null)))
}

fn env<'a>(params: &'a Value, context: &'a Value, root: &'a Value, current: &'a Value) -> Env<'a> {
    Env { params, context, root, current, ..Env::empty() }
}

fn pools() -> Vec<Vec<String>> {
    field_names(connectors())
}

/// Every field name, for random paths.
fn keys() -> Vec<String> {
    pools().concat()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn borrowing_eval_equals_reference(
        (e, params, context, root, current) in {
            let p = pools();
            (expression(keys()), json_value(&p, 0, 0), json_value(&p, 0, 0),
             json_value(&p, 0, 0), json_value(&p, 0, 0))
        }
    ) {
        let env = env(&params, &context, &root, &current);
        let reference = e.eval(&env);
        let borrowing = e.eval_ref(&env).map(std::borrow::Cow::into_owned);
        prop_assert_eq!(borrowing, reference, "expression {:?}", e);
    }
}

/// Instagram-shaped items of the kinds the web connector tells apart.
fn realistic_items() -> Vec<Value> {
    vec![
        json!({"item_id": "31985427239878492791472871813529600", "user_id": 178_612_345, "timestamp": "1763790000123456",
               "item_type": "text", "text": "see you at 8?", "client_context": "7000000000000000001",
               "reactions": {"emojis": [{"sender_id": 5_512_345_678u64, "emoji": "❤️"}, {"sender_id": "178612345", "emoji": "😂"}]},
               "replied_to_message": {"item_id": "2", "user_id": 5_512_345_678u64, "text": "hi", "item_type": "text"}}),
        json!({"item_id": "2", "user_id": "5512345678", "timestamp": 1_763_789_000_000_000u64, "item_type": "media",
               "media": {"media_type": 2, "video_versions": [{"url": "https://cdn.example/v.mp4"}],
                         "image_versions2": {"candidates": [{"url": "https://cdn.example/a.jpg"}]}}}),
        json!({"item_id": 3, "user_id": 5_512_345_678u64, "timestamp": 1_763_789_000_000_000u64, "item_type": "raven_media",
               "visual_media": {"media": {"media_type": 1, "image_versions2": {"candidates": [{"url": "https://cdn.example/b.jpg"}]}}}}),
        json!({"item_id": "4", "user_id": 178_612_345, "timestamp": "1763789000000000", "item_type": "voice_media",
               "voice_media": {"media": {"audio": {"audio_src": "https://cdn.example/a.m4a", "duration": 4210}}}}),
        json!({"item_id": "5", "user_id": "5512345678", "timestamp": 1_763_789_000_000_000u64, "item_type": "clip",
               "clip": {"clip": {"media_type": 2, "video_versions": [{"url": "https://cdn.example/c.mp4"}], "caption": {"text": "reel"}}}}),
        json!({"item_id": "6", "user_id": 5_512_345_678u64, "timestamp": 1_763_789_000_000_000u64, "item_type": "xma_media_share",
               "generic_xma": [{"title_text": "@creator", "target_url": "https://www.instagram.com/p/B1/"}]}),
        json!({"item_id": "7", "user_id": 5_512_345_678u64, "timestamp": 1_763_789_000_000_000u64, "item_type": "action_log",
               "action_log": {"description": "Alice liked a message"}}),
        json!({"item_id": "8", "user_id": 5_512_345_678u64, "timestamp": 1_763_789_000_000_000u64, "item_type": "link",
               "link": {"text": "https://example.com", "link_context": {"link_url": "https://example.com"}}}),
        // A media object with nothing `to_attachment` reads: still truthy.
        json!({"item_id": "9", "user_id": 5_512_345_678u64, "timestamp": 1_763_789_000_000_000u64, "item_type": "media",
               "media": {"id": "9_1", "pk": 9}, "visual_media": {"media": {"image_versions2": {"candidates": [{"url": "https://cdn.example/d.jpg"}]}}}}),
        json!({"item_id": "10", "user_id": 5_512_345_678u64, "timestamp": 1_763_789_000_000_000u64, "item_type": "animated_media",
               "animated_media": {"type": "image", "payload": {"url": "https://cdn.example/e.gif"}, "images": {"fixed_height": {"url": "https://cdn.example/f.gif"}}},
               "media": {"video_versions": {"0": {"url": "https://cdn.example/g.mp4"}}, "url": "https://example.com/h"}}),
    ]
}

/// A realistic item with some fields replaced by random JSON or removed.
fn mutated_item(pools: &[Vec<String>]) -> impl Strategy<Value = Value> + use<> {
    let items = realistic_items();
    let edits = prop::collection::vec(
        (prop::sample::select(pools[0].clone()), prop::option::of(json_value(pools, 1, 2))),
        0..4,
    );
    (prop::sample::select(items), edits).prop_map(|(mut item, edits)| {
        if let Some(m) = item.as_object_mut() {
            for (k, v) in edits {
                match v {
                    Some(v) => m.insert(k, v),
                    None => m.shift_remove(&k),
                };
            }
        }
        item
    })
}

/// A thread body around `items`, as `list` and `list_conversations` read it.
fn thread_body(items: &[Value]) -> Value {
    let thread = json!({
        "thread_id": "340282366841710300949128137443944319108", "viewer_id": 178_612_345,
        "thread_title": "alice", "is_group": false, "read_state": 1, "last_activity_at": 1_763_790_000_123_456u64,
        "users": [{"pk": 5_512_345_678u64, "pk_id": "5512345678", "username": "alice", "full_name": "Alice A"},
                  {"pk": "178612345", "username": "me", "full_name": "Me"}],
        "items": items, "oldest_cursor": "c1", "has_older": true,
    });
    json!({"thread": thread, "inbox": {"threads": [thread], "oldest_cursor": "c0", "has_older": false}})
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every response block of every shipped connector on realistic bodies
    /// with random edits.
    #[test]
    fn borrowing_mapping_equals_reference_on_instagram_shapes(
        (items, params) in {
            let p = pools();
            (prop::collection::vec(mutated_item(&p), 0..6), json_value(&p, 0, 0))
        }
    ) {
        let body = thread_body(&items);
        let items = Value::Array(items);
        check_every_action(&body, &items, &params)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every response block of every shipped connector, on random bodies
    /// built from the field names they read.
    #[test]
    fn borrowing_mapping_equals_reference(
        (body, items, params) in {
            let p = pools();
            (json_value(&p, 0, 0), prop::collection::vec(json_value(&p, 0, 0), 0..4),
             json_value(&p, 0, 0))
        }
    ) {
        let items = Value::Array(items);
        check_every_action(&body, &items, &params)?;
    }
}

/// Runs every response block of every connector with both evaluators.
fn check_every_action(body: &Value, items: &Value, params: &Value) -> Result<(), TestCaseError> {
    for c in connectors() {
        for a in c.actions() {
            let r = &a.op.response;
            let base = env(params, &Value::Null, body, body);
            let mut context = Map::new();
            for (k, e) in &r.context {
                let reference = e.eval(&base);
                let borrowing = e.eval_ref(&base).map(std::borrow::Cow::into_owned);
                prop_assert_eq!(&borrowing, &reference, "{} context.{}", a.name(), k);
                context.insert(k.clone(), reference.unwrap_or(Value::Null));
            }
            let context = Value::Object(context);
            let env = env(params, &context, body, body);
            let exprs = r
                .root
                .iter()
                .chain(r.page.iter().flat_map(|p| p.next_cursor.iter().chain(&p.has_more)));
            for e in exprs {
                let borrowing = e.eval_ref(&env).map(std::borrow::Cow::into_owned);
                prop_assert_eq!(borrowing, e.eval(&env), "{} {:?}", a.name(), e);
            }
            let Some(m) = &r.mapping else { continue };
            // `now` and `generate_uuid` differ on every evaluation: their
            // outputs are compared without the text of strings.
            let debug = format!("{m:?}");
            let generated = debug.contains("root: Now") || debug.contains("root: GenerateUuid");
            same_with_full_parse(c, a, body, params, generated)?;
            if generated {
                continue;
            }
            let root =
                r.root.as_ref().map_or(Ok(body.clone()), |e| e.eval(&env)).unwrap_or(Value::Null);
            for target in [&root, items, body] {
                let (mut w1, mut w2) = (Warnings::default(), Warnings::default());
                let reference = mapping::apply_reference(m, target, &env, &mut w1);
                let borrowing = mapping::apply(m, target, &env, &mut w2);
                prop_assert_eq!(&borrowing, &reference, "{} on {}", a.name(), target);
                prop_assert_eq!(&w2.0, &w1.0, "{} warnings", a.name());
            }
        }
    }
    Ok(())
}

/// Mapping a body parsed down to the action's [`Shape`] gives what mapping
/// the fully parsed body gives: data, page, warnings or error.
fn same_with_full_parse(
    c: &Connector,
    a: &Action,
    body: &Value,
    params: &Value,
    generated: bool,
) -> Result<(), TestCaseError> {
    let raw = Bytes::from(serde_json::to_vec(body).expect("serializable"));
    let vars = exec::vars(c, params.clone(), &Session::new());
    let mut full = a.op.clone();
    full.response.shape = Shape::everything();
    let show = |r: Result<ActionOutput, ExecError>| match r {
        Ok(o) => {
            let data = if generated { without_text(o.data) } else { o.data };
            Ok((data, o.page.map(|p| (p.next_cursor, p.has_more)), o.warnings))
        }
        Err(e) => Err(e.to_string()),
    };
    let pruned = show(exec::map_response(&a.op, &vars, 200, raw.clone()));
    let reference = show(exec::map_response(&full, &vars, 200, raw));
    prop_assert_eq!(pruned, reference, "{} on {}", a.name(), body);
    Ok(())
}

/// `v` with every string emptied: its structure and other values.
fn without_text(v: Value) -> Value {
    match v {
        Value::String(_) => Value::String(String::new()),
        Value::Array(a) => Value::Array(a.into_iter().map(without_text).collect()),
        Value::Object(m) => {
            Value::Object(m.into_iter().map(|(k, v)| (k, without_text(v))).collect())
        }
        other => other,
    }
}

/// The random bodies are built from the names the mappings read.
#[test]
fn field_names_include_the_web_connectors_paths() {
    let k = keys();
    for f in ["item_id", "item_type", "users", "thread", "media_type", "emojis"] {
        assert!(k.iter().any(|x| x == f), "{f} missing from {k:?}");
    }
}

/// Number literals around what the big-integer pass changes: beyond 64 bits,
/// at its edges, and floats as large.
const NUMBERS: &[&str] = &[
    "340282366841710300949128137443944319108",
    "-99999999999999999999999",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "-9223372036854775809",
    "999999999999999999",
    "1000000000000000000",
    "1e18",
    "-1E18",
    "1.5e300",
    "12345678901234567890.5",
    "123456789012345678901234567890e-10",
    "1e400",
    "0.000001",
    "178612345",
];

/// `v` serialized with every `1.5` leaf written as one of [`NUMBERS`] in turn.
fn with_numbers(v: &Value, offset: usize) -> String {
    fn mark(v: &Value, k: &mut usize) -> Value {
        match v {
            Value::Array(a) => Value::Array(a.iter().map(|x| mark(x, k)).collect()),
            Value::Object(m) => {
                Value::Object(m.iter().map(|(key, x)| (key.clone(), mark(x, k))).collect())
            }
            x if *x == json!(1.5) => {
                *k += 1;
                Value::String(format!("@@{k}@@"))
            }
            x => x.clone(),
        }
    }
    let mut k = 0;
    let mut text = mark(v, &mut k).to_string();
    for i in (1..=k).rev() {
        text = text.replace(&format!("\"@@{i}@@\""), NUMBERS[(offset + i) % NUMBERS.len()]);
    }
    text
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Parsing a body as the engine does (big-integer pass only when a
    /// number needs it) gives what the pass followed by the parse gives, for
    /// every shipped action's shape and the whole body: value or error.
    #[test]
    fn body_parse_equals_big_integer_pass_then_parse(
        (body, offset, cut) in {
            let p = pools();
            (json_value(&p, 0, 0), any::<usize>(), prop::option::weighted(0.2, any::<prop::sample::Index>()))
        }
    ) {
        let mut text = with_numbers(&body, offset).into_bytes();
        if let Some(at) = cut {
            text.truncate(at.index(text.len() + 1));
        }
        let everything = Shape::everything();
        let shapes = connectors()
            .iter()
            .flat_map(|c| c.actions().map(|a| &a.op.response.shape))
            .chain(std::iter::once(&everything));
        for shape in shapes {
            let fast = crate::shape::parse_body(&text, shape).map_err(|e| e.to_string());
            let reference = crate::shape::parse(&crate::bigint::quote_big_integers(&text), shape)
                .map_err(|e| e.to_string());
            prop_assert_eq!(fast, reference, "{}", String::from_utf8_lossy(&text));
        }
    }
}

/// The literals of [`NUMBERS`] reach the parse.
#[test]
fn numbers_are_written_into_bodies() {
    let text = with_numbers(&json!({"a": [1.5, 1.5], "b": {"c": 1.5}}), 0);
    assert_eq!(
        text,
        r#"{"a":[-99999999999999999999999,18446744073709551615],"b":{"c":18446744073709551616}}"#
    );
}
