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
    newest_first_equals_the_like_scan,
    relevance_orders_every_match_by_rank,
    relevance_ranks_the_newest_window,
    relevance_examines_a_bounded_number_of_candidates,
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

    /// The times `start`, `start + step` µs, `start + 2 step` µs, … by index.
    fn spaced(start: Timestamp, step: i64) -> impl Fn(usize) -> Timestamp {
        let base = start.unix_micros();
        move |i| Timestamp::from_unix_micros(base + i64::try_from(i).unwrap() * step).unwrap()
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
        let page = s.search_text(ACC, "zebra sort:relevance", 10, None).await.unwrap();
        let order: Vec<_> = page.items.iter().map(|h| h.message.id.as_str()).collect();
        assert_eq!(order.first(), Some(&"strong"));
        assert_eq!(order.last(), Some(&"weak"));
        assert!(page.items.windows(2).all(|w| w[0].rank >= w[1].rank));
        assert!(page.items.iter().all(|h| h.rank > 0.0));
        for hit in &page.items {
            assert!(hit.snippet.contains("[zebra]"), "snippet {:?}", hit.snippet);
        }

        // Paging through ranked results: every hit once, order kept.
        let paged = |q: &'static str| async move {
            let mut seen: Vec<String> = Vec::new();
            let mut cursor = None;
            loop {
                let page: Page<SearchHit> =
                    s.search(ACC, &parse_query(q), 1, cursor.as_deref()).await.unwrap();
                seen.extend(page.items.iter().map(|h| h.message.id.0.clone()));
                if !page.has_more {
                    break;
                }
                cursor = page.next_cursor;
            }
            seen
        };
        assert_eq!(paged("zebra sort:relevance").await, order);

        // The default order is newest first, unranked, with snippets.
        let page = s.search_text(ACC, "zebra", 10, None).await.unwrap();
        let newest: Vec<_> = page.items.iter().map(|h| h.message.id.as_str()).collect();
        assert_eq!(newest, ["mid", "weak", "strong"]);
        assert!(page.items.iter().all(|h| h.rank == 0.0 && h.snippet.contains("[zebra]")));
        assert_eq!(paged("zebra").await, newest);
        // A cursor belongs to its order.
        let first = s.search_text(ACC, "zebra", 1, None).await.unwrap();
        let cursor = first.next_cursor.unwrap();
        assert!(s.search_text(ACC, "zebra sort:relevance", 1, Some(&cursor)).await.is_err());

        // Filters only: newest first, rank 0.
        let page = s.search_text(ACC, "from:alice", 10, None).await.unwrap();
        let order: Vec<_> = page.items.iter().map(|h| h.message.id.as_str()).collect();
        assert_eq!(order, ["mid", "weak", "strong"]);
        assert!(page.items.iter().all(|h| h.rank == 0.0));
        assert!(s.search_text(ACC, "zebra", 10, Some("bogus")).await.is_err());
        assert!(s.search_text(ACC, "zebra sort:relevance", 10, Some("bogus")).await.is_err());
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

    /// The message ids a `LIKE` scan finds for `word` (a whole word of the
    /// generated corpus), newest first, optionally from one sender.
    async fn like_scan(s: &Store, word: &str, sender: Option<&str>) -> Vec<String> {
        let pattern = format!("% {word} %");
        let sender = sender.unwrap_or("").to_owned();
        let sql = "SELECT message_id FROM messages WHERE account_id = $1 AND is_deleted = FALSE \
                   AND (' ' || text || ' ') LIKE $2 AND ($3 = '' OR sender_id = $3) \
                   ORDER BY sent_at DESC, seq DESC";
        match s {
            Store::Sqlite(db) => {
                sqlx::query_scalar(sql)
                    .bind(ACC)
                    .bind(pattern)
                    .bind(sender)
                    .fetch_all(db.pool())
                    .await
            }
            Store::Postgres(db) => {
                sqlx::query_scalar(sql)
                    .bind(ACC)
                    .bind(pattern)
                    .bind(sender)
                    .fetch_all(db.pool())
                    .await
            }
        }
        .unwrap()
    }

    /// The hits of every page of a search, in order.
    async fn all_hits(s: &Store, q: &str, limit: u32) -> Vec<SearchHit> {
        let query = parse_query(q);
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = s.search(ACC, &query, limit, cursor.as_deref()).await.unwrap();
            seen.extend(page.items);
            if !page.has_more {
                return seen;
            }
            cursor = page.next_cursor;
        }
    }

    /// The message ids of every page of a search, in order.
    async fn all_pages(s: &Store, q: &str, limit: u32) -> Vec<String> {
        all_hits(s, q, limit).await.into_iter().map(|h| h.message.id.0).collect()
    }

    /// Stores a generated corpus: 900 messages of one to five words of a
    /// 40-word vocabulary (low-numbered words common, high ones rare), from
    /// three senders, whose times crowd into seven minutes (some in the same
    /// microsecond), written in an order unrelated to time, every 31st one
    /// deleted, and 50 copies under another account. Returns the vocabulary.
    async fn generated_corpus(s: &Store) -> Vec<String> {
        use rand::rngs::StdRng;
        use rand::seq::SliceRandom as _;
        use rand::{Rng as _, SeedableRng as _};

        let vocabulary: Vec<String> = (0..40).map(|i| format!("w{i}x")).collect();
        let mut rng = StdRng::seed_from_u64(29);
        let base = day(2024, 5, 1, 12).unix_micros();
        let mut messages: Vec<Message> = (0..900)
            .map(|i| {
                let words: Vec<&str> = (0..rng.random_range(1..6))
                    // Skewed: low-numbered words are common, high ones rare.
                    .map(|_| {
                        vocabulary[rng.random_range(0..40_usize).min(rng.random_range(0..40))]
                            .as_str()
                    })
                    .collect();
                // Seven minutes, with repeats down to the microsecond.
                let at = base + rng.random_range(0..7 * 60) * 1_000_000 + rng.random_range(0..3);
                let sender = format!("{}", rng.random_range(1..4));
                msg(
                    &format!("c{}", rng.random_range(0..5)),
                    &format!("m{i}"),
                    (&sender, &format!("user{sender}")),
                    Timestamp::from_unix_micros(at).unwrap(),
                    &words.join(" "),
                )
            })
            .collect();
        messages.shuffle(&mut rng);
        for batch in messages.chunks(97) {
            s.upsert_messages(ACC, batch).await.unwrap();
        }
        for m in messages.iter().step_by(31) {
            s.apply_deletion(ACC, m.conversation_id.as_str(), m.id.as_str(), day(2024, 6, 1, 0))
                .await
                .unwrap();
        }
        s.upsert_messages("other", &messages[..50]).await.unwrap();
        vocabulary
    }

    /// A differential test: on the generated corpus, newest-first search
    /// returns exactly the newest matches a `LIKE` scan finds, page by page,
    /// for every single word and with a sender filter.
    pub async fn newest_first_equals_the_like_scan(h: &Harness) {
        let s = &h.store;
        let vocabulary = generated_corpus(s).await;
        for word in &vocabulary {
            let expected = like_scan(s, word, None).await;
            let page = s.search_text(ACC, word, 20, None).await.unwrap();
            let got: Vec<String> = page.items.into_iter().map(|h| h.message.id.0).collect();
            assert_eq!(got, expected[..expected.len().min(20)], "{word}");
            assert_eq!(page.has_more, expected.len() > 20, "{word}");
            assert_eq!(all_pages(s, word, 7).await, expected, "{word}, pages of 7");
            let filtered = like_scan(s, word, Some("2")).await;
            assert_eq!(all_pages(s, &format!("{word} from:2"), 5).await, filtered, "{word} from:2");
        }
        // The common words fill pages: the walk stopped early.
        assert!(like_scan(s, "w0x", None).await.len() > 100);
    }

    /// On the generated corpus (fewer matches than the relevance window),
    /// `sort:relevance` pages through exactly the matches a `LIKE` scan
    /// finds, with and without a sender filter, each once, best first
    /// across pages, equal ranks newest first.
    pub async fn relevance_orders_every_match_by_rank(h: &Harness) {
        let s = &h.store;
        let vocabulary = generated_corpus(s).await;
        for word in vocabulary.iter().step_by(3) {
            for (query, sender) in [(word.clone(), None), (format!("{word} from:2"), Some("2"))] {
                let hits = all_hits(s, &format!("{query} sort:relevance"), 6).await;
                let mut got: Vec<String> = hits.iter().map(|h| h.message.id.0.clone()).collect();
                let mut expected = like_scan(s, word, sender).await;
                assert!(
                    hits.windows(2).all(|w| w[0].rank > w[1].rank
                        || (w[0].rank == w[1].rank
                            && w[0].message.timestamp >= w[1].message.timestamp)),
                    "{query}: best first, ties newest first"
                );
                assert!(hits.iter().all(|h| h.rank > 0.0), "{query}: ranked");
                got.sort();
                expected.sort();
                assert_eq!(got, expected, "{query}: every match once");
            }
        }
    }

    /// `sort:relevance` ranks the newest matches only: a strong match older
    /// than the window is left out, a strong one inside it comes first.
    pub async fn relevance_ranks_the_newest_window(h: &Harness) {
        let s = &h.store;
        let window = igdm_store::RELEVANCE_WINDOW as usize;
        let at = spaced(day(2024, 1, 1, 0), 1_000_000);
        let mut messages = vec![msg("c", "old", ALICE, at(0), "lynx lynx lynx")];
        for i in 1..=window + 5 {
            let text = format!("a lynx among many other words number {i} of a longer message");
            messages.push(msg("c", &format!("n{i}"), ALICE, at(i), &text));
        }
        messages.push(msg("c", "strong", ALICE, at(10), "lynx lynx"));
        s.upsert_messages(ACC, &messages).await.unwrap();
        let page = s.search_text(ACC, "lynx sort:relevance", 5, None).await.unwrap();
        assert_eq!(page.items[0].message.id.as_str(), "strong");
        assert!(page.items.windows(2).all(|w| w[0].rank >= w[1].rank));
        // Equal ranks stay newest first.
        let rest: Vec<_> = page.items[1..].iter().map(|h| h.message.id.as_str()).collect();
        let newest: Vec<String> = (0..4).map(|k| format!("n{}", window + 5 - k)).collect();
        assert_eq!(rest, newest);
        let ranked = all_pages(s, "lynx sort:relevance", 100).await;
        assert_eq!(ranked.len(), window);
        assert!(!ranked.iter().any(|id| id == "old"));
        // Newest first sees every match.
        let all = all_pages(s, "lynx", 100).await;
        assert_eq!(all.len(), window + 7);
        assert_eq!(all.last().map(String::as_str), Some("old"));
    }

    /// With a selective filter, `sort:relevance` examines only the newest
    /// `RELEVANCE_CANDIDATES` matches of the words: it ranks the filter's
    /// matches among them, best first, and leaves out older ones however
    /// strong, unless `before:` moves the candidates back in time.
    pub async fn relevance_examines_a_bounded_number_of_candidates(h: &Harness) {
        let s = &h.store;
        let candidates = igdm_store::RELEVANCE_CANDIDATES as usize;
        // One match a minute, so that the newest matches are the same in
        // every index order.
        let at = spaced(day(2024, 1, 1, 0), 60_000_000);
        let total = candidates + 10;
        let boundary = total - candidates;
        let bob: std::collections::HashMap<usize, (&str, &str)> = [
            (5, ("b-too-old", "lynx lynx lynx lynx")),
            (boundary, ("b-weak", "a lynx in a long message with many more words than the others")),
            (boundary + 20, ("b-strong", "lynx lynx lynx")),
            (total - 1, ("b-newest", "a lynx and few words")),
        ]
        .into_iter()
        .collect();
        let mut messages = vec![msg("c", "b-last-year", BOB, day(2023, 12, 31, 12), "lynx lynx")];
        for i in 0..total {
            messages.push(match bob.get(&i) {
                Some((id, text)) => msg("c", id, BOB, at(i), text),
                None => msg("c", &format!("a{i}"), ALICE, at(i), &format!("a lynx, number {i}")),
            });
        }
        for batch in messages.chunks(1000) {
            s.upsert_messages(ACC, batch).await.unwrap();
        }

        let hits = all_hits(s, "lynx from:bob sort:relevance", 2).await;
        let got: Vec<&str> = hits.iter().map(|h| h.message.id.as_str()).collect();
        // The three of Bob's matches among the newest candidates, best
        // first: more occurrences in fewer words rank higher.
        assert_eq!(got, ["b-strong", "b-newest", "b-weak"]);
        assert!(hits.windows(2).all(|w| w[0].rank > w[1].rank), "{got:?}: best first");
        assert!(hits.iter().all(|h| h.rank > 0.0 && h.snippet.contains("lynx")));

        // Newest first is not bounded: it finds every match of the filter.
        assert_eq!(
            all_pages(s, "lynx from:bob", 2).await,
            ["b-newest", "b-strong", "b-weak", "b-too-old", "b-last-year"]
        );
        // Without a filter the window is the newest matches, as before.
        let unfiltered = all_pages(s, "lynx sort:relevance", 500).await;
        assert_eq!(unfiltered.len(), igdm_store::RELEVANCE_WINDOW as usize);
        assert!(unfiltered.iter().any(|id| id == "b-newest"));
        assert!(!unfiltered.iter().any(|id| id == "b-strong"), "older than the window");
        // The days bound the candidates before they are counted.
        let old = all_hits(s, "lynx from:bob before:2024-01-01 sort:relevance", 2).await;
        let old: Vec<&str> = old.iter().map(|h| h.message.id.as_str()).collect();
        assert_eq!(old, ["b-last-year"]);
        // Before the second day, fewer than the candidates match: all of
        // Bob's matches up to then are ranked, the one beyond the bound
        // above included.
        let early = all_hits(s, "lynx from:bob before:2024-01-02 sort:relevance", 2).await;
        assert!(early.windows(2).all(|w| w[0].rank >= w[1].rank), "best first");
        let mut early: Vec<&str> = early.iter().map(|h| h.message.id.as_str()).collect();
        early.sort_unstable();
        assert_eq!(early, ["b-last-year", "b-strong", "b-too-old", "b-weak"]);
    }
}
