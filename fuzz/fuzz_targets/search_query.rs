//! Search queries: any text parses, and the parsed query runs against a real SQLite
//! store (with a few messages) without a panic or a database error, so no query text
//! can produce an FTS expression SQLite rejects.

#![no_main]

use std::sync::OnceLock;

use igdm_model::{ContentType, Message, Sender, Timestamp};
use igdm_store::{MessageStore, SqliteStore, parse_query};
use libfuzzer_sys::fuzz_target;

struct Fixture {
    rt: tokio::runtime::Runtime,
    store: SqliteStore,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let store = rt.block_on(async {
            let store = SqliteStore::open("sqlite::memory:").await.unwrap();
            let texts = ["café au lait", "see you at 5", "\"quoted\" -minus OR and", "ünïcödé 🎉 emoji"];
            let messages: Vec<Message> = texts
                .iter()
                .enumerate()
                .map(|(i, text)| Message {
                    id: format!("m{i}").into(),
                    conversation_id: "c1".into(),
                    sender: Sender { id: "42".into(), username: Some("maya".into()), display_name: None, is_self: false },
                    timestamp: Timestamp::from_unix_seconds(1_700_000_000 + i as i64).unwrap(),
                    content_type: ContentType::Text,
                    text: Some((*text).to_owned()),
                    attachments: vec![],
                    reactions: vec![],
                    reply_to: None,
                    is_deleted: false,
                    edited_at: None,
                    send_status: None,
                })
                .collect();
            store.upsert_messages("fuzz", &messages).await.unwrap();
            store
        });
        Fixture { rt, store }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let query = parse_query(text);
    let _ = (query.token_groups(), query.excluded_tokens(), query.is_empty());
    let f = fixture();
    let found = f.rt.block_on(f.store.search("fuzz", &query, 20, None));
    if let Err(e) = found {
        panic!("query {text:?} failed: {e}");
    }
});
