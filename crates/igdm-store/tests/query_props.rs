//! Property tests: the query parser takes any string, and any query string
//! runs on both backends without a database error.

mod common;

use igdm_model::{Message, Timestamp};
use igdm_store::query::parse;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Pieces that stress both the igdm syntax and the FTS5 / tsquery grammars.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\"".to_owned()),
        Just("-".to_owned()),
        Just("OR".to_owned()),
        Just("AND".to_owned()),
        Just("NOT".to_owned()),
        Just("NEAR(".to_owned()),
        Just(")".to_owned()),
        Just("*".to_owned()),
        Just("^".to_owned()),
        Just(":".to_owned()),
        Just("'".to_owned()),
        Just("\\".to_owned()),
        Just("!".to_owned()),
        Just("&".to_owned()),
        Just("|".to_owned()),
        Just("<->".to_owned()),
        Just("{}".to_owned()),
        Just("from:".to_owned()),
        Just("in:".to_owned()),
        Just("before:2024-01-01".to_owned()),
        Just("after:2024-13-45".to_owned()),
        Just("has:attachment".to_owned()),
        Just("is:unread".to_owned()),
        Just("text:".to_owned()),
        Just("café".to_owned()),
        Just("日本".to_owned()),
        Just("\u{301}".to_owned()),
        Just("\0".to_owned()),
        "[a-z]{1,6}",
        "[0-9]{1,3}",
        " {1,2}",
    ]
}

fn query_string() -> impl Strategy<Value = String> {
    prop_oneof![prop::collection::vec(fragment(), 0..12).prop_map(|v| v.concat()), any::<String>(),]
}

proptest! {
    #![proptest_config(Config { cases: 2000, ..Config::default() })]

    #[test]
    fn parser_accepts_anything(input in any::<String>()) {
        let q = parse(&input);
        // Folding is total too.
        let _ = q.token_groups();
        let _ = q.excluded_tokens();
    }

    #[test]
    fn parser_accepts_syntax_soup(input in query_string()) {
        let q = parse(&input);
        for group in q.token_groups() {
            prop_assert!(!group.is_empty());
            for tokens in group {
                prop_assert!(tokens.iter().all(|t| t.chars().all(char::is_alphanumeric)));
            }
        }
    }
}

async fn seed(store: &igdm_store::Store) {
    let messages: Vec<Message> =
        ["café au lait", "NEAR the \"station\" OR not", "日本 text: 42", "a-b c:d"]
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let mut m = common::text_message("c", &format!("m{i}"), text);
                m.sender.id = "1".into();
                m.sender.username = Some("from".into());
                m.timestamp =
                    Timestamp::from_unix_seconds(1_700_000_000 + i64::try_from(i).unwrap())
                        .unwrap();
                m
            })
            .collect();
    store.upsert_messages("me", &messages).await.unwrap();
}

fn run_queries_against(h: common::Harness, rt: &tokio::runtime::Runtime) {
    rt.block_on(seed(&h.store));
    let config = Config { cases: 200, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new(config);
    runner
        .run(&query_string(), |input| {
            let result = rt.block_on(h.store.search_text("me", &input, 5, None));
            prop_assert!(result.is_ok(), "query {:?} failed: {:?}", input, result.err());
            Ok(())
        })
        .unwrap();
}

#[test]
fn any_query_runs_on_sqlite() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let h = rt.block_on(common::sqlite());
    run_queries_against(h, &rt);
}

#[test]
fn any_query_runs_on_postgres() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(h) = rt.block_on(common::postgres("any_query_runs_on_postgres")) else { return };
    run_queries_against(h, &rt);
}
