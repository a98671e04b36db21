//! Conformance of full-text search and igdm's query syntax on both backends.

mod common;

conformance!(
    diacritics_and_case_fold,
    phrases_keep_word_order,
    negation_and_or,
    sender_and_conversation_filters,
    date_attachment_and_unread_filters,
    ranking_snippets_and_paging,
    deleted_and_other_accounts_are_hidden,
    edits_reach_the_index,
);

mod cases {
    use igdm_model::{
        Attachment, AttachmentType, ContentType, Conversation, ConversationKind, Folder, Message,
        Timestamp,
    };
    use igdm_store::{Page, SearchHit, Store, parse_query};

    use crate::common::Harness;

    const ACC: &str = "me";

    fn day(y: i32, m: u32, d: u32, hour: u32) -> Timestamp {
        chrono::NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(hour, 0, 0)
            .unwrap()
            .and_utc()
            .into()
    }

    fn msg(conv: &str, id: &str, from: (&str, &str), at: Timestamp, text: &str) -> Message {
        let mut m = crate::common::text_message(conv, id, text);
        m.sender.id = from.0.into();
        m.sender.username = Some(from.1.into());
        m.timestamp = at;
        m
    }

    const ALICE: (&str, &str) = ("101", "Alice");
    const BOB: (&str, &str) = ("202", "bob");

    async fn ids(s: &Store, q: &str) -> Vec<String> {
        let page =
            s.search_text(ACC, q, 100, None).await.unwrap_or_else(|e| panic!("query {q:?}: {e}"));
        let mut ids: Vec<String> = page.items.into_iter().map(|h| h.message.id.0).collect();
        ids.sort();
        ids
    }

    pub async fn diacritics_and_case_fold(h: &Harness) {
        let s = &h.store;
        s.upsert_messages(
            ACC,
            &[
                msg("c", "1", ALICE, day(2024, 1, 1, 9), "Un café crème, s'il vous plaît"),
                msg("c", "2", ALICE, day(2024, 1, 1, 10), "CAFE au lait"),
                msg("c", "3", BOB, day(2024, 1, 1, 11), "Straße und Übermut, naïve"),
                msg("c", "4", BOB, day(2024, 1, 1, 12), "tea please"),
            ],
        )
        .await
        .unwrap();
        assert_eq!(ids(s, "cafe").await, ["1", "2"]);
        assert_eq!(ids(s, "Café").await, ["1", "2"]);
        assert_eq!(ids(s, "CRÈME").await, ["1"]);
        assert_eq!(ids(s, "ubermut naive").await, ["3"]);
        assert_eq!(ids(s, "plait").await, ["1"]);
        assert_eq!(ids(s, "coffee").await, Vec::<String>::new());
    }

    pub async fn phrases_keep_word_order(h: &Harness) {
        let s = &h.store;
        s.upsert_messages(
            ACC,
            &[
                msg("c", "1", ALICE, day(2024, 1, 1, 9), "see you tomorrow at the station"),
                msg("c", "2", ALICE, day(2024, 1, 1, 10), "tomorrow you will see"),
                msg("c", "3", ALICE, day(2024, 1, 1, 11), "I don't know"),
            ],
        )
        .await
        .unwrap();
        assert_eq!(ids(s, r#""see you""#).await, ["1"]);
        assert_eq!(ids(s, "see you").await, ["1", "2"]);
        assert_eq!(ids(s, r#""you see""#).await, Vec::<String>::new());
        assert_eq!(ids(s, "don't").await, ["3"]);
        assert_eq!(ids(s, r#""DON'T KNOW""#).await, ["3"]);
    }

    pub async fn negation_and_or(h: &Harness) {
        let s = &h.store;
        s.upsert_messages(
            ACC,
            &[
                msg("c", "1", ALICE, day(2024, 1, 1, 9), "pizza with pineapple"),
                msg("c", "2", ALICE, day(2024, 1, 1, 10), "pizza margherita"),
                msg("c", "3", ALICE, day(2024, 1, 1, 11), "my cat sleeps"),
                msg("c", "4", ALICE, day(2024, 1, 1, 12), "the dog barks"),
            ],
        )
        .await
        .unwrap();
        assert_eq!(ids(s, "pizza -pineapple").await, ["2"]);
        assert_eq!(ids(s, "cat OR dog").await, ["3", "4"]);
        assert_eq!(ids(s, "cat OR dog OR margherita").await, ["2", "3", "4"]);
        assert_eq!(ids(s, "pizza cat OR dog").await, Vec::<String>::new());
        assert_eq!(ids(s, r#"-pizza"#).await, ["3", "4"]);
        assert_eq!(ids(s, r#"-pizza -"the dog""#).await, ["3"]);
        // "or" in lower case is a plain word.
        assert_eq!(ids(s, "cat or dog").await, Vec::<String>::new());
    }

    pub async fn sender_and_conversation_filters(h: &Harness) {
        let s = &h.store;
        let team = Conversation {
            id: "g1".into(),
            kind: ConversationKind::Group,
            title: Some("Team Chat".into()),
            participants: vec![],
            unread: false,
            unread_count: None,
            updated_at: None,
            muted: false,
            hidden: false,
            folder: Folder::Inbox,
            reply_window_ends_at: None,
        };
        s.upsert_conversation(ACC, &team).await.unwrap();
        s.upsert_messages(
            ACC,
            &[
                msg("g1", "1", ALICE, day(2024, 1, 1, 9), "meeting at noon"),
                msg("g1", "2", BOB, day(2024, 1, 1, 10), "meeting moved"),
                msg("d1", "3", ALICE, day(2024, 1, 1, 11), "private meeting"),
            ],
        )
        .await
        .unwrap();
        assert_eq!(ids(s, "meeting from:alice").await, ["1", "3"]);
        assert_eq!(ids(s, "meeting from:@ALICE").await, ["1", "3"]);
        assert_eq!(ids(s, "from:202").await, ["2"]);
        assert_eq!(ids(s, "from:alice from:bob").await, ["1", "2", "3"]);
        assert_eq!(ids(s, "meeting in:g1").await, ["1", "2"]);
        assert_eq!(ids(s, r#"in:"team chat""#).await, ["1", "2"]);
        assert_eq!(ids(s, "meeting in:d1 from:alice").await, ["3"]);
        assert_eq!(ids(s, "from:carol").await, Vec::<String>::new());
    }

    pub async fn date_attachment_and_unread_filters(h: &Harness) {
        let s = &h.store;
        let mut photo = msg("c2", "3", BOB, day(2024, 3, 1, 0), "holiday photo");
        photo.content_type = ContentType::Image;
        photo.attachments = vec![Attachment {
            kind: AttachmentType::Image,
            url: Some("https://cdn.example/p.jpg".into()),
            mime: None,
            size: None,
            duration: None,
        }];
        s.upsert_messages(
            ACC,
            &[
                msg("c1", "1", ALICE, day(2024, 1, 31, 23), "holiday plans"),
                msg("c1", "2", ALICE, day(2024, 2, 1, 0), "holiday booked"),
                photo,
            ],
        )
        .await
        .unwrap();
        assert_eq!(ids(s, "holiday before:2024-02-01").await, ["1"]);
        assert_eq!(ids(s, "holiday after:2024-02-01").await, ["2", "3"]);
        assert_eq!(ids(s, "after:2024-02-01 before:2024-03-01").await, ["2"]);
        assert_eq!(ids(s, "has:attachment").await, ["3"]);
        assert_eq!(ids(s, "holiday has:attachment").await, ["3"]);
        assert_eq!(ids(s, "is:unread").await, Vec::<String>::new());
        s.mark_read(ACC, "c2", false).await.unwrap();
        assert_eq!(ids(s, "holiday is:unread").await, ["3"]);
        // A bad date is a literal word, not a filter and not an error.
        assert_eq!(ids(s, "holiday before:someday").await, Vec::<String>::new());
    }

    pub async fn ranking_snippets_and_paging(h: &Harness) {
        let s = &h.store;
        let long = "a long message that mentions the zebra only once among very many other words \
                    about weather, trains, lunch plans and what happened at work yesterday afternoon";
        s.upsert_messages(
            ACC,
            &[
                msg("c", "weak", ALICE, day(2024, 1, 2, 9), long),
                msg("c", "strong", ALICE, day(2024, 1, 1, 9), "zebra zebra zebra"),
                msg("c", "mid", ALICE, day(2024, 1, 3, 9), "zebra crossing ahead, zebra"),
            ],
        )
        .await
        .unwrap();
        let page = s.search_text(ACC, "zebra", 10, None).await.unwrap();
        let order: Vec<_> = page.items.iter().map(|h| h.message.id.as_str()).collect();
        assert_eq!(order.first(), Some(&"strong"));
        assert_eq!(order.last(), Some(&"weak"));
        assert!(page.items.windows(2).all(|w| w[0].rank >= w[1].rank));
        assert!(page.items.iter().all(|h| h.rank > 0.0));
        for hit in &page.items {
            assert!(hit.snippet.contains("[zebra]"), "snippet {:?}", hit.snippet);
        }

        // Paging through search results: every hit once, order kept.
        let mut seen: Vec<String> = Vec::new();
        let mut cursor = None;
        loop {
            let page: Page<SearchHit> =
                s.search(ACC, &parse_query("zebra"), 1, cursor.as_deref()).await.unwrap();
            seen.extend(page.items.iter().map(|h| h.message.id.0.clone()));
            if !page.has_more {
                break;
            }
            cursor = page.next_cursor;
        }
        assert_eq!(seen, order);

        // Filters only: newest first, rank 0.
        let page = s.search_text(ACC, "from:alice", 10, None).await.unwrap();
        let order: Vec<_> = page.items.iter().map(|h| h.message.id.as_str()).collect();
        assert_eq!(order, ["mid", "weak", "strong"]);
        assert!(page.items.iter().all(|h| h.rank == 0.0));
        assert!(s.search_text(ACC, "zebra", 10, Some("bogus")).await.is_err());
    }

    pub async fn deleted_and_other_accounts_are_hidden(h: &Harness) {
        let s = &h.store;
        s.upsert_messages(ACC, &[msg("c", "1", ALICE, day(2024, 1, 1, 9), "secret plan")])
            .await
            .unwrap();
        s.upsert_messages("other", &[msg("c", "2", ALICE, day(2024, 1, 1, 9), "secret plan")])
            .await
            .unwrap();
        assert_eq!(ids(s, "secret").await, ["1"]);
        s.apply_deletion(ACC, "c", "1", day(2024, 1, 2, 0)).await.unwrap();
        assert_eq!(ids(s, "secret").await, Vec::<String>::new());
    }

    pub async fn edits_reach_the_index(h: &Harness) {
        let s = &h.store;
        s.upsert_message(ACC, &msg("c", "1", ALICE, day(2024, 1, 1, 9), "see you at eight"))
            .await
            .unwrap();
        s.apply_edit(ACC, "c", "1", Some("see you at nine, café?"), day(2024, 1, 1, 10))
            .await
            .unwrap();
        assert_eq!(ids(s, "eight").await, Vec::<String>::new());
        assert_eq!(ids(s, "nine cafe").await, ["1"]);
        // Re-upserting the same text again keeps one index entry.
        s.upsert_message(ACC, &msg("c", "1", ALICE, day(2024, 1, 1, 9), "see you at eight"))
            .await
            .unwrap();
        assert_eq!(ids(s, "nine").await, ["1"]);
        assert_eq!(ids(s, "eight").await, Vec::<String>::new());
        // Maintenance after a bulk import keeps the index consistent.
        s.optimize().await.unwrap();
        assert_eq!(ids(s, "nine").await, ["1"]);
    }
}
