use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

fn resp(src: &str) -> Expr {
    Expr::parse(src, Scope::Response, Bare::Variables).unwrap()
}

fn eval_with(src: &str, params: &Value, current: &Value) -> Value {
    let env = Env { params, current, ..Env::empty() };
    resp(src).eval(&env).unwrap()
}

#[test]
fn seed_expressions_parse() {
    for src in [
        "[].thread_id",
        "[].thread_type == 'private' ? 'direct' : 'group'",
        "[].users[].pk",
        "[].last_activity_at | divide: 1000000 | to_datetime",
        "'instagram'",
        "'{{params.conversation_id}}'",
        "[].user_id == {{context.viewer_id}}",
        "[].media | to_attachment",
        "false",
        ".status == 'ok'",
    ] {
        resp(src);
    }
    Expr::parse(
        "thread.items[?item_id=='{{params.message_id}}'] | [0]",
        Scope::Response,
        Bare::Fields,
    )
    .unwrap();
    Expr::parse("inbox.threads[*].items[0]", Scope::Response, Bare::Fields).unwrap();
    for t in [
        "{{params.reply_to ? 'swipe' : null}}",
        "[[{{params.user_id}}]]",
        "{{auth.ig_www_claim | default: '0'}}",
    ] {
        Template::parse(t, Scope::Request).unwrap();
    }
}

#[test]
fn names_are_checked_at_parse_time() {
    let e = Template::parse("x {{param.text}}", Scope::Request).unwrap_err();
    assert!(e.message.contains("unknown variable `param`"), "{e}");
    assert_eq!(e.offset, 4);
    let e = resp_err("[].timestamp | divde: 1000");
    assert!(e.message.contains("unknown filter `divde`"), "{e}");
    assert_eq!(e.offset, 15);
    assert!(Template::parse("{{context.x}}", Scope::Request).is_err());
    assert!(resp_err("status").message.contains("`.name`"));
    assert!(resp_err("[].x | default").message.contains("takes 1"));
}

fn resp_err(src: &str) -> ParseError {
    Expr::parse(src, Scope::Response, Bare::Variables).unwrap_err()
}

#[test]
fn projections_and_filters() {
    let body = json!({"thread": {"items": [{"item_id": "1", "t": 5}, {"item_id": "2", "t": 6}]}});
    let e =
        Expr::parse("thread.items[?item_id=='{{params.id}}'] | [0]", Scope::Response, Bare::Fields)
            .unwrap();
    let params = json!({"id": "2"});
    let env = Env { params: &params, current: &body, ..Env::empty() };
    assert_eq!(e.eval(&env).unwrap(), json!({"item_id": "2", "t": 6}));
    let threads = json!([{"users": [{"pk": 1}, {"pk": "2"}]}, {"users": []}]);
    assert_eq!(eval_with("[].users[].pk", &Value::Null, &threads), json!([[1, "2"], []]));
    let inbox =
        json!({"inbox": {"threads": [{"items": [{"a": 1}, {"a": 2}]}, {"items": [{"a": 3}]}]}});
    let e = Expr::parse("inbox.threads[*].items[0]", Scope::Response, Bare::Fields).unwrap();
    assert_eq!(
        e.eval(&Env { current: &inbox, ..Env::empty() }).unwrap(),
        json!([{"a": 1}, {"a": 3}])
    );
    assert_eq!(eval_with(".x[-1]", &Value::Null, &json!({"x": [1, 2, 3]})), json!(3));
}

#[test]
fn number_string_equality_and_ternary() {
    let cur = json!({"user_id": 178612345, "s": "178612345"});
    let ctx = json!({"viewer_id": "178612345"});
    let env = Env { context: &ctx, current: &cur, ..Env::empty() };
    assert_eq!(resp(".user_id == {{context.viewer_id}}").eval(&env).unwrap(), json!(true));
    assert_eq!(resp(".s == .user_id").eval(&env).unwrap(), json!(true));
    assert_eq!(resp(".user_id != 1").eval(&env).unwrap(), json!(true));
    assert_eq!(resp(".missing ? 'a' : null").eval(&env).unwrap(), Value::Null);
    assert_eq!(resp("1 == 1.0").eval(&env).unwrap(), json!(true));
}

#[test]
fn time_filters() {
    let cur = json!({"a": 1_700_000_000_123_456_i64, "b": "1700000000123456", "ms": 1_700_000_000_123_i64});
    assert_eq!(
        eval_with(".a | divide: 1000000 | to_datetime", &Value::Null, &cur),
        json!("2023-11-14T22:13:20.123456Z")
    );
    assert_eq!(
        eval_with(".b | divide: 1000000 | to_datetime", &Value::Null, &cur),
        json!("2023-11-14T22:13:20.123456Z")
    );
    assert_eq!(
        eval_with(".ms | divide: 1000 | to_datetime", &Value::Null, &cur),
        json!("2023-11-14T22:13:20.123Z")
    );
    assert_eq!(
        eval_with(".b | to_datetime: 'us'", &Value::Null, &cur),
        json!("2023-11-14T22:13:20.123456Z")
    );
    assert_eq!(eval_with(".none | divide: 1000000 | to_datetime", &Value::Null, &cur), Value::Null);
}

#[test]
fn other_filters() {
    let cur = json!({"l": ["a", "B"], "s": " Hi ", "n": "42", "big": "340282366920938463463374607431768211455"});
    assert_eq!(eval_with(".l | join: '-'", &Value::Null, &cur), json!("a-B"));
    assert_eq!(eval_with(".l | upper", &Value::Null, &cur), json!(["A", "B"]));
    assert_eq!(eval_with(".l | first", &Value::Null, &cur), json!("a"));
    assert_eq!(eval_with(".l | last | lower", &Value::Null, &cur), json!("b"));
    assert_eq!(eval_with(".l | length", &Value::Null, &cur), json!(2));
    assert_eq!(eval_with(".s | trim", &Value::Null, &cur), json!("Hi"));
    assert_eq!(eval_with(".n | to_number | multiply: 2", &Value::Null, &cur), json!(84));
    assert_eq!(eval_with(".l | to_json", &Value::Null, &cur), json!("[\"a\",\"B\"]"));
    assert_eq!(
        eval_with(".big", &Value::Null, &cur),
        json!("340282366920938463463374607431768211455")
    );
    assert!(resp(".big | to_number").eval(&Env { current: &cur, ..Env::empty() }).is_err());
    assert_eq!(eval_with(".x | default: 'd'", &Value::Null, &cur), json!("d"));
    let media =
        json!({"media_type": 1, "image_versions2": {"candidates": [{"url": "https://x/i.jpg"}]}});
    assert_eq!(
        eval_with(". | to_attachment", &Value::Null, &media),
        json!([{"type": "image", "url": "https://x/i.jpg", "mime": "image/jpeg"}])
    );
}

#[test]
fn template_keeps_type_of_single_expression() {
    let params = json!({"ids": ["1", "2"], "n": 20});
    let env = Env { params: &params, ..Env::empty() };
    let t = Template::parse("{{params.n}}", Scope::Request).unwrap();
    assert_eq!(t.render(&env).unwrap(), json!(20));
    let t = Template::parse("n={{params.n}}", Scope::Request).unwrap();
    assert_eq!(t.render(&env).unwrap(), json!("n=20"));
    let t = Template::parse("{{params.ids | to_json}}", Scope::Request).unwrap();
    assert_eq!(t.render(&env).unwrap(), json!("[\"1\",\"2\"]"));
}

proptest! {
    #[test]
    fn substituted_text_round_trips(text in ".*") {
        let params = json!({ "text": &text });
        let env = Env { params: &params, ..Env::empty() };
        let e = resp("'{{params.text}}'");
        prop_assert_eq!(e.eval(&env).unwrap(), Value::String(text.clone()));
        let t = Template::parse("{{params.text}}", Scope::Request).unwrap();
        prop_assert_eq!(t.render(&env).unwrap(), Value::String(text.clone()));
        let t = Template::parse("x{{params.text}}y", Scope::Request).unwrap();
        prop_assert_eq!(t.render(&env).unwrap(), Value::String(format!("x{text}y")));
    }

    #[test]
    fn parse_never_panics(src in ".{0,64}") {
        let _ = Expr::parse(&src, Scope::Response, Bare::Variables);
        let _ = Expr::parse(&src, Scope::Response, Bare::Fields);
        let _ = Template::parse(&src, Scope::Request);
    }

    #[test]
    fn parse_never_panics_on_expression_like_input(src in "[\\[\\]{}.|?:'\"a-z0-9=! _*@-]{0,40}") {
        let _ = Expr::parse(&src, Scope::Response, Bare::Variables);
        let _ = Template::parse(&src, Scope::Request);
    }

    #[test]
    fn integer_equals_its_text(n in any::<i64>(), m in any::<u64>()) {
        prop_assert!(values_equal(&json!(n), &json!(n.to_string())));
        prop_assert!(values_equal(&json!(m.to_string()), &json!(m)));
        let padded = format!("{}0", n);
        prop_assert!(!values_equal(&json!(n), &json!(padded)));
    }
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        Just(json!(0)),
        Just(json!(u64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(-1)),
    ]
}

proptest! {
    /// Comparing a value's text without writing integers out gives what
    /// comparing its written text gives.
    #[test]
    fn text_is_equals_comparing_text(
        v in number(),
        other in "-?[0-9]{0,21}",
        edit in prop::option::of((any::<prop::sample::Index>(), "[-0-9a]")),
    ) {
        let written = eval::stringify(&v);
        let shown = v.to_string();
        let mut same = written.clone();
        if let Some((at, c)) = edit {
            let i = at.index(same.len() + 1);
            if same.is_char_boundary(i) {
                same.insert_str(i, &c);
            }
        }
        for text in [written.as_str(), same.as_str(), other.as_str()] {
            prop_assert_eq!(eval::text_is(&v, text), written == text, "{} vs {:?}", v, text);
            let s = Value::String(text.to_owned());
            prop_assert_eq!(eval::values_equal(&v, &s), shown == text);
        }
    }
}
