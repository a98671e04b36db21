//! Conformance of accounts, conversations, messages, mutations, reactions,
//! sync cursors, raw payloads and the outbox on both backends.

mod common;

conformance!(
    accounts_and_users_merge,
    message_upsert_is_idempotent_and_never_erases,
    batch_upsert_dedupes_and_stores_attachments,
    conversations_page_and_filter,
    messages_page_newest_first,
    edits_and_deletions_before_their_message,
    reactions_add_remove_and_replace,
    sync_cursors_and_raw_payloads,
    outbox_is_idempotent,
    outbox_lists_a_conversations_sends_since_a_time,
    activity_creates_conversations_and_only_moves_forward,
    concurrent_batches_over_shared_conversations_all_commit,
);

mod cases {
    use std::collections::HashSet;

    use igdm_model::{
        Account, Attachment, AttachmentType, Backend, ContentType, Conversation, ConversationKind,
        Folder, Message, Participant, Reaction, ReplyTo, SendStatus, Timestamp, User,
    };
    use igdm_store::{
        ConversationActivity, ConversationFilter, MutationOutcome, NewOutbox, OutboxState,
        ReactionChange, StoreError, SyncCursor,
    };
    use serde_json::json;

    use crate::common::Harness;

    const ACC: &str = "me";

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_unix_seconds(1_700_000_000 + secs).unwrap()
    }

    pub fn msg(conv: &str, id: &str, secs: i64, text: Option<&str>) -> Message {
        let mut m = crate::common::text_message(conv, id, text.unwrap_or_default());
        m.text = text.map(str::to_owned);
        m.sender.username = Some("alice".into());
        m.timestamp = t(secs);
        m
    }

    fn conv(id: &str, secs: Option<i64>, unread: bool, folder: Folder) -> Conversation {
        Conversation {
            id: id.into(),
            kind: ConversationKind::Direct,
            title: Some(format!("Chat {id}")),
            participants: vec![Participant {
                id: "42".into(),
                username: Some("alice".into()),
                display_name: None,
            }],
            unread,
            unread_count: unread.then_some(2),
            updated_at: secs.map(t),
            muted: false,
            hidden: false,
            folder,
            reply_window_ends_at: None,
        }
    }

    pub async fn accounts_and_users_merge(h: &Harness) {
        let s = &h.store;
        let account = Account {
            name: ACC.into(),
            connector: "instagram-web".into(),
            backend: Backend::Web,
            user_id: Some("1".into()),
            username: Some("me_on_ig".into()),
            base_url: None,
            created_at: t(0),
        };
        s.upsert_account(&account).await.unwrap();
        s.upsert_account(&Account { username: None, ..account.clone() }).await.unwrap();
        assert_eq!(s.get_account(ACC).await.unwrap(), Some(account));
        assert_eq!(s.get_account("nobody").await.unwrap(), None);

        let user = User {
            id: "42".into(),
            username: Some("alice".into()),
            display_name: Some("Alice".into()),
            follower_count: Some(12),
            is_verified: Some(false),
            ..User::default()
        };
        s.upsert_user(ACC, &user).await.unwrap();
        let update =
            User { id: "42".into(), display_name: Some("Alice B".into()), ..User::default() };
        s.upsert_user(ACC, &update).await.unwrap();
        let got = s.get_user(ACC, "42").await.unwrap().unwrap();
        assert_eq!(got.username.as_deref(), Some("alice"));
        assert_eq!(got.display_name.as_deref(), Some("Alice B"));
        assert_eq!(got.follower_count, Some(12));
        assert_eq!(got.is_verified, Some(false));
        assert_eq!(s.get_user("other-account", "42").await.unwrap(), None);
    }

    pub async fn message_upsert_is_idempotent_and_never_erases(h: &Harness) {
        let s = &h.store;
        let mut m = msg("c1", "m1", 10, Some("hello there"));
        m.reply_to = Some(ReplyTo { message_id: Some("m0".into()), preview: Some("hi".into()) });
        m.send_status = Some(SendStatus::Sent);
        m.sender.is_self = true;
        s.upsert_message(ACC, &m).await.unwrap();
        s.upsert_message(ACC, &m).await.unwrap();
        let page = s.list_messages(ACC, "c1", 50, None).await.unwrap();
        assert_eq!(page.items, vec![m.clone()]);
        assert!(!page.has_more && page.next_cursor.is_none());

        // A poorer copy (no text, no username, no reply) erases nothing.
        let mut poor = msg("c1", "m1", 10, None);
        poor.sender.username = None;
        s.upsert_message(ACC, &poor).await.unwrap();
        assert_eq!(s.get_message(ACC, "c1", "m1").await.unwrap(), Some(m.clone()));

        // Newer data wins.
        let mut newer = m.clone();
        newer.text = Some("hello again".into());
        newer.content_type = ContentType::Link;
        s.upsert_message(ACC, &newer).await.unwrap();
        assert_eq!(s.get_message(ACC, "c1", "m1").await.unwrap(), Some(newer));

        // The conversation exists (as a stub) with the message's time as activity.
        let c = s.get_conversation(ACC, "c1").await.unwrap().unwrap();
        assert_eq!(c.updated_at, Some(t(10)));
        assert_eq!(s.list_messages("someone-else", "c1", 10, None).await.unwrap().items, vec![]);
        assert_eq!(s.get_message(ACC, "c1", "nope").await.unwrap(), None);

        // Text no backend can store is refused before anything is written.
        let bad = [msg("c1", "m7", 11, Some("ok")), msg("c1", "m8", 12, Some("nul \0 inside"))];
        assert!(matches!(s.upsert_messages(ACC, &bad).await, Err(StoreError::InvalidInput(_))));
        assert_eq!(s.get_message(ACC, "c1", "m7").await.unwrap(), None);
    }

    pub async fn batch_upsert_dedupes_and_stores_attachments(h: &Harness) {
        let s = &h.store;
        let mut with_media = msg("c2", "a", 5, None);
        with_media.content_type = ContentType::Image;
        with_media.attachments = vec![Attachment {
            kind: AttachmentType::Image,
            url: Some("https://cdn.example/x.jpg".into()),
            mime: Some("image/jpeg".into()),
            size: Some(1234),
            duration: None,
        }];
        let batch: Vec<Message> = (0..1200)
            .map(|i| msg("c1", &format!("m{}", i % 1100), i, Some(&format!("bulk message {i}"))))
            .chain([with_media.clone()])
            .collect();
        assert_eq!(s.upsert_messages(ACC, &batch).await.unwrap(), 1101);
        let mut n = 0;
        let mut cursor = None;
        loop {
            let page = s.list_messages(ACC, "c1", 500, cursor.as_deref()).await.unwrap();
            n += page.items.len();
            if !page.has_more {
                break;
            }
            cursor = page.next_cursor;
        }
        assert_eq!(n, 1100);
        // The last copy of a repeated id wins.
        assert_eq!(
            s.get_message(ACC, "c1", "m5").await.unwrap().unwrap().text.as_deref(),
            Some("bulk message 1105")
        );
        assert_eq!(s.get_message(ACC, "c2", "a").await.unwrap(), Some(with_media.clone()));
        // Re-upserting without attachments keeps them.
        s.upsert_message(ACC, &msg("c2", "a", 5, Some("caption"))).await.unwrap();
        let got = s.get_message(ACC, "c2", "a").await.unwrap().unwrap();
        assert_eq!(got.attachments, with_media.attachments);
        assert_eq!(s.upsert_messages(ACC, &[]).await.unwrap(), 0);
    }

    pub async fn conversations_page_and_filter(h: &Harness) {
        let s = &h.store;
        for (i, id) in ["a", "b", "c", "d", "e", "f", "g"].iter().enumerate() {
            let secs = i64::try_from(i).unwrap() * 10;
            let folder = if i == 3 { Folder::Pending } else { Folder::Inbox };
            s.upsert_conversation(ACC, &conv(id, Some(secs), i % 2 == 0, folder)).await.unwrap();
        }
        // Same activity time: ordered by id, and paging must not lose either.
        s.upsert_conversation(ACC, &conv("h", Some(60), false, Folder::Inbox)).await.unwrap();
        s.upsert_conversation(ACC, &conv("z", None, false, Folder::Inbox)).await.unwrap();

        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = s
                .list_conversations(ACC, &ConversationFilter::default(), 3, cursor.as_deref())
                .await
                .unwrap();
            assert!(page.items.len() <= 3);
            seen.extend(page.items.iter().map(|c| c.id.0.clone()));
            if !page.has_more {
                assert!(page.next_cursor.is_none());
                break;
            }
            cursor = page.next_cursor;
        }
        assert_eq!(seen, ["h", "g", "f", "e", "d", "c", "b", "a", "z"]);

        let unread = ConversationFilter { unread: Some(true), folder: None };
        let ids: Vec<_> = s
            .list_conversations(ACC, &unread, 50, None)
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|c| c.id.0)
            .collect();
        assert_eq!(ids, ["g", "e", "c", "a"]);
        let pending = ConversationFilter { unread: None, folder: Some(Folder::Pending) };
        let got = s.list_conversations(ACC, &pending, 50, None).await.unwrap().items;
        assert_eq!(got, vec![conv("d", Some(30), false, Folder::Pending)]);

        // A re-upsert without title or participants keeps them; activity never moves back.
        let mut bare = conv("g", Some(1), false, Folder::Inbox);
        bare.title = None;
        bare.participants = vec![];
        s.upsert_conversation(ACC, &bare).await.unwrap();
        let g = s.get_conversation(ACC, "g").await.unwrap().unwrap();
        assert_eq!(g.title.as_deref(), Some("Chat g"));
        assert_eq!(g.participants.len(), 1);
        assert_eq!(g.updated_at, Some(t(60)));

        s.mark_read(ACC, "a", true).await.unwrap();
        let a = s.get_conversation(ACC, "a").await.unwrap().unwrap();
        assert!(!a.unread);
        assert_eq!(a.unread_count, Some(0));
        s.mark_read(ACC, "b", false).await.unwrap();
        assert!(s.get_conversation(ACC, "b").await.unwrap().unwrap().unread);
        assert!(matches!(s.mark_read(ACC, "missing", true).await, Err(StoreError::NotFound(_))));
        assert!(matches!(
            s.list_conversations(ACC, &ConversationFilter::default(), 3, Some("not-a-cursor"))
                .await,
            Err(StoreError::InvalidCursor)
        ));
    }

    pub async fn messages_page_newest_first(h: &Harness) {
        let s = &h.store;
        // 25 messages, several sharing a timestamp.
        let batch: Vec<Message> =
            (0..25).map(|i| msg("c", &format!("m{i:02}"), i / 3, Some("x"))).collect();
        s.upsert_messages(ACC, &batch).await.unwrap();
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let page = s.list_messages(ACC, "c", 10, cursor.as_deref()).await.unwrap();
            all.extend(page.items);
            if !page.has_more {
                break;
            }
            cursor = page.next_cursor;
        }
        assert_eq!(all.len(), 25);
        let ids: HashSet<_> = all.iter().map(|m| m.id.0.clone()).collect();
        assert_eq!(ids.len(), 25);
        assert!(all.windows(2).all(|w| w[0].timestamp >= w[1].timestamp));
        assert_eq!(all[0].id.as_str(), "m24");
        assert!(matches!(
            s.list_messages(ACC, "c", 10, Some("00")).await,
            Err(StoreError::InvalidCursor)
        ));
    }

    pub async fn edits_and_deletions_before_their_message(h: &Harness) {
        let s = &h.store;
        // Both arrive before the messages they change.
        let edit = s.apply_edit(ACC, "c", "m1", Some("edited text"), t(100)).await.unwrap();
        assert_eq!(edit, MutationOutcome::Deferred);
        let del = s.apply_deletion(ACC, "c", "m2", t(100)).await.unwrap();
        assert_eq!(del, MutationOutcome::Deferred);
        // An older edit arriving later does not replace the newer deferred one.
        s.apply_edit(ACC, "c", "m1", Some("older edit"), t(50)).await.unwrap();

        s.upsert_messages(
            ACC,
            &[msg("c", "m1", 1, Some("original")), msg("c", "m2", 2, Some("bye"))],
        )
        .await
        .unwrap();
        let m1 = s.get_message(ACC, "c", "m1").await.unwrap().unwrap();
        assert_eq!(m1.text.as_deref(), Some("edited text"));
        assert_eq!(m1.edited_at, Some(t(100)));
        let m2 = s.get_message(ACC, "c", "m2").await.unwrap().unwrap();
        assert!(m2.is_deleted);
        assert_eq!(m2.text.as_deref(), Some("bye"));

        // A re-sync of the original copies undoes neither.
        s.upsert_messages(
            ACC,
            &[msg("c", "m1", 1, Some("original")), msg("c", "m2", 2, Some("bye"))],
        )
        .await
        .unwrap();
        let m1 = s.get_message(ACC, "c", "m1").await.unwrap().unwrap();
        assert_eq!(m1.text.as_deref(), Some("edited text"));
        assert!(s.get_message(ACC, "c", "m2").await.unwrap().unwrap().is_deleted);

        // Edits on a stored message: older ones are stale, newer ones apply.
        assert_eq!(
            s.apply_edit(ACC, "c", "m1", Some("stale"), t(99)).await.unwrap(),
            MutationOutcome::Stale
        );
        assert_eq!(
            s.apply_edit(ACC, "c", "m1", Some("newest"), t(200)).await.unwrap(),
            MutationOutcome::Applied
        );
        assert_eq!(
            s.get_message(ACC, "c", "m1").await.unwrap().unwrap().text.as_deref(),
            Some("newest")
        );
        // The deferred changes were consumed: a new message with another id is untouched.
        s.upsert_message(ACC, &msg("c", "m3", 3, Some("fresh"))).await.unwrap();
        let m3 = s.get_message(ACC, "c", "m3").await.unwrap().unwrap();
        assert!(!m3.is_deleted && m3.edited_at.is_none());
        assert_eq!(
            s.apply_deletion(ACC, "c", "m3", t(300)).await.unwrap(),
            MutationOutcome::Applied
        );
    }

    pub async fn reactions_add_remove_and_replace(h: &Harness) {
        let s = &h.store;
        let heart = ReactionChange::Add("❤️".into());
        s.apply_reaction(ACC, "c", "m1", "7", &heart).await.unwrap();
        s.apply_reaction(ACC, "c", "m1", "7", &heart).await.unwrap();
        s.upsert_message(ACC, &msg("c", "m1", 1, Some("hi"))).await.unwrap();
        s.apply_reaction(ACC, "c", "m1", "7", &ReactionChange::Add("😂".into())).await.unwrap();
        s.apply_reaction(ACC, "c", "m1", "8", &ReactionChange::Add("👍".into())).await.unwrap();
        let emojis = |m: Message| {
            m.reactions
                .into_iter()
                .map(|r| format!("{}:{}", r.sender_id, r.emoji))
                .collect::<HashSet<_>>()
        };
        let got = emojis(s.get_message(ACC, "c", "m1").await.unwrap().unwrap());
        assert_eq!(got, HashSet::from(["7:❤️".to_owned(), "7:😂".to_owned(), "8:👍".to_owned()]));

        s.apply_reaction(ACC, "c", "m1", "7", &ReactionChange::Remove(Some("❤️".into())))
            .await
            .unwrap();
        let got = emojis(s.get_message(ACC, "c", "m1").await.unwrap().unwrap());
        assert_eq!(got, HashSet::from(["7:😂".to_owned(), "8:👍".to_owned()]));
        s.apply_reaction(ACC, "c", "m1", "7", &ReactionChange::Remove(None)).await.unwrap();
        let got = emojis(s.get_message(ACC, "c", "m1").await.unwrap().unwrap());
        assert_eq!(got, HashSet::from(["8:👍".to_owned()]));

        // A synced copy with a reaction list replaces the stored list.
        let mut synced = msg("c", "m1", 1, Some("hi"));
        synced.reactions = vec![Reaction { sender_id: "9".into(), emoji: "🔥".into() }];
        s.upsert_message(ACC, &synced).await.unwrap();
        assert_eq!(
            s.get_message(ACC, "c", "m1").await.unwrap().unwrap().reactions,
            synced.reactions
        );
        // The list view carries reactions too.
        let listed = s.list_messages(ACC, "c", 10, None).await.unwrap().items;
        assert_eq!(listed[0].reactions, synced.reactions);
    }

    pub async fn sync_cursors_and_raw_payloads(h: &Harness) {
        let s = &h.store;
        assert_eq!(s.get_sync_cursor(ACC, "c").await.unwrap(), None);
        let c = SyncCursor {
            newest_seen_at: Some(t(10)),
            oldest_seen_at: Some(t(1)),
            newest_cursor: Some("new-1".into()),
            oldest_cursor: Some("old-1".into()),
            completed: false,
        };
        s.set_sync_cursor(ACC, "c", &c).await.unwrap();
        s.set_sync_cursor(ACC, "", &SyncCursor { completed: true, ..SyncCursor::default() })
            .await
            .unwrap();
        assert_eq!(s.get_sync_cursor(ACC, "c").await.unwrap(), Some(c.clone()));
        let done = SyncCursor { completed: true, oldest_cursor: None, ..c };
        s.set_sync_cursor(ACC, "c", &done).await.unwrap();
        assert_eq!(s.get_sync_cursor(ACC, "c").await.unwrap(), Some(done));
        assert!(s.get_sync_cursor(ACC, "").await.unwrap().unwrap().completed);

        let raw = json!({"item_id": "1", "timestamp": 1_700_000_000_000_000_i64, "nested": {"ü": [1, 2]}});
        assert_eq!(s.get_raw_payload(ACC, "message", "1").await.unwrap(), None);
        s.put_raw_payload(ACC, "message", "1", &raw).await.unwrap();
        assert_eq!(s.get_raw_payload(ACC, "message", "1").await.unwrap(), Some(raw));
        s.put_raw_payload(ACC, "message", "1", &json!({"v": 2})).await.unwrap();
        assert_eq!(s.get_raw_payload(ACC, "message", "1").await.unwrap(), Some(json!({"v": 2})));
    }

    pub async fn outbox_is_idempotent(h: &Harness) {
        let s = &h.store;
        let new = NewOutbox {
            idempotency_key: "send-123".into(),
            account_id: ACC.into(),
            conversation_id: Some("c".into()),
            recipient_id: None,
            payload: json!({"text": "hi"}),
        };
        let first = s.outbox_begin(&new).await.unwrap();
        assert!(first.created);
        assert_eq!(first.entry.state, OutboxState::Pending);
        assert_eq!(first.entry.attempts, 0);

        let sending = s.outbox_mark("send-123", OutboxState::Sending, None, None).await.unwrap();
        assert_eq!(sending.attempts, 1);
        let result = json!({"item_id": "999", "thread_id": "c"});
        s.outbox_mark("send-123", OutboxState::Sent, Some(&result), None).await.unwrap();

        // The same key again (even with another payload) returns the first send and its result.
        let again = s
            .outbox_begin(&NewOutbox { payload: json!({"text": "different"}), ..new.clone() })
            .await
            .unwrap();
        assert!(!again.created);
        assert_eq!(again.entry.state, OutboxState::Sent);
        assert_eq!(again.entry.result, Some(result));
        assert_eq!(again.entry.payload, json!({"text": "hi"}));
        assert_eq!(again.entry.attempts, 1);

        let other = NewOutbox {
            idempotency_key: "send-456".into(),
            recipient_id: Some("42".into()),
            ..new.clone()
        };
        s.outbox_begin(&other).await.unwrap();
        s.outbox_mark("send-456", OutboxState::Sending, None, None).await.unwrap();
        let unknown = s
            .outbox_mark("send-456", OutboxState::Unknown, None, Some("timeout after 30s"))
            .await
            .unwrap();
        assert_eq!(unknown.last_error.as_deref(), Some("timeout after 30s"));
        let third = NewOutbox { idempotency_key: "send-789".into(), ..new };
        s.outbox_begin(&third).await.unwrap();
        s.outbox_mark("send-789", OutboxState::Failed, None, Some("recipient blocked"))
            .await
            .unwrap();

        let pending: Vec<_> =
            s.outbox_pending().await.unwrap().into_iter().map(|e| e.idempotency_key).collect();
        assert_eq!(pending, ["send-456"]);
        assert!(matches!(
            s.outbox_mark("nope", OutboxState::Sent, None, None).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(s.outbox_get("nope").await.unwrap().is_none());
        let empty = NewOutbox { idempotency_key: String::new(), ..other };
        assert!(matches!(s.outbox_begin(&empty).await, Err(StoreError::InvalidInput(_))));
    }

    pub async fn outbox_lists_a_conversations_sends_since_a_time(h: &Harness) {
        let s = &h.store;
        let before = Timestamp::from_unix_seconds(Timestamp::now().unix_seconds() - 1).unwrap();
        let new = |key: &str, conv: Option<&str>, to: Option<&str>| NewOutbox {
            idempotency_key: key.into(),
            account_id: ACC.into(),
            conversation_id: conv.map(str::to_owned),
            recipient_id: to.map(str::to_owned),
            payload: json!({"text": "hi"}),
        };
        s.outbox_begin(&new("a", Some("c1"), None)).await.unwrap();
        s.outbox_begin(&new("b", None, Some("c1"))).await.unwrap();
        s.outbox_begin(&new("c", Some("c2"), Some("42"))).await.unwrap();
        s.outbox_begin(&NewOutbox { account_id: "other".into(), ..new("d", Some("c1"), None) })
            .await
            .unwrap();
        let result = json!({"id": "m-a"});
        s.outbox_mark("a", OutboxState::Sent, Some(&result), None).await.unwrap();

        let keys = |v: Vec<igdm_store::OutboxEntry>| {
            v.into_iter().map(|e| e.idempotency_key).collect::<Vec<_>>()
        };
        let c1 = s.outbox_since(ACC, "c1", before).await.unwrap();
        assert_eq!(c1[0].result, Some(result), "entries carry their results");
        assert_eq!(keys(c1), ["a", "b"], "by conversation or recipient, this account only");
        assert_eq!(keys(s.outbox_since(ACC, "42", before).await.unwrap()), ["c"]);
        let later = Timestamp::from_unix_seconds(Timestamp::now().unix_seconds() + 5).unwrap();
        assert!(s.outbox_since(ACC, "c1", later).await.unwrap().is_empty());
        assert!(matches!(
            s.outbox_mark("a", OutboxState::Unrecognized, None, None).await,
            Err(StoreError::InvalidInput(_))
        ));
    }

    fn activity(
        conv: &str,
        secs: i64,
        unread: bool,
        window_secs: Option<i64>,
    ) -> ConversationActivity {
        ConversationActivity {
            conversation_id: conv.to_owned(),
            customer_id: format!("{conv}-customer"),
            at: t(secs),
            unread,
            reply_window_ends_at: window_secs.map(t),
        }
    }

    pub async fn activity_creates_conversations_and_only_moves_forward(h: &Harness) {
        let s = &h.store;
        // A conversation the store already has, with fields activity must keep.
        let mut known = conv("known", Some(100), false, Folder::Inbox);
        known.title = Some("Known".into());
        known.muted = true;
        s.upsert_conversation(ACC, &known).await.unwrap();

        s.record_activity(
            ACC,
            &[
                activity("new", 50, true, Some(1_000)),
                // Two entries for one conversation in one call are merged:
                // the later one's flag, the later window.
                activity("known", 200, false, Some(2_000)),
                activity("known", 150, true, Some(1_500)),
            ],
        )
        .await
        .unwrap();
        let new = s.get_conversation(ACC, "new").await.unwrap().unwrap();
        assert_eq!(new.kind, ConversationKind::Direct);
        assert_eq!(new.participants.len(), 1);
        assert_eq!(new.participants[0].id.0, "new-customer");
        assert!(new.unread);
        assert_eq!(new.updated_at, Some(t(50)));
        assert_eq!(new.reply_window_ends_at, Some(t(1_000)));
        assert!(s.get_user(ACC, "new-customer").await.unwrap().is_some(), "the customer is a user");

        let k = s.get_conversation(ACC, "known").await.unwrap().unwrap();
        assert_eq!((k.updated_at, k.unread), (Some(t(200)), false));
        assert_eq!(k.reply_window_ends_at, Some(t(2_000)));
        assert_eq!((k.title.as_deref(), k.muted), (Some("Known"), true));
        assert_eq!(k.participants, known.participants, "participants kept");

        // Older activity (an out-of-order delivery) moves nothing back and
        // leaves the unread flag; an echo without a window keeps the window.
        s.record_activity(ACC, &[activity("known", 120, true, Some(1_200))]).await.unwrap();
        let k = s.get_conversation(ACC, "known").await.unwrap().unwrap();
        assert_eq!((k.updated_at, k.unread), (Some(t(200)), false));
        assert_eq!(k.reply_window_ends_at, Some(t(2_000)));
        s.record_activity(ACC, &[activity("known", 300, false, None)]).await.unwrap();
        let k = s.get_conversation(ACC, "known").await.unwrap().unwrap();
        assert_eq!((k.updated_at, k.reply_window_ends_at), (Some(t(300)), Some(t(2_000))));
        // A newer customer message marks it unread and extends the window.
        s.record_activity(ACC, &[activity("known", 400, true, Some(3_000))]).await.unwrap();
        let k = s.get_conversation(ACC, "known").await.unwrap().unwrap();
        assert_eq!((k.updated_at, k.unread), (Some(t(400)), true));
        assert_eq!(k.reply_window_ends_at, Some(t(3_000)));
        s.record_activity(ACC, &[]).await.unwrap();
    }

    /// Several writers storing batches that touch the same conversations
    /// (two webhook workers, say) all succeed: on PostgreSQL every batch
    /// locks its conversation rows in one order, so none is picked as a
    /// deadlock victim.
    pub async fn concurrent_batches_over_shared_conversations_all_commit(h: &Harness) {
        const WRITERS: usize = 4;
        const ROUNDS: usize = 15;
        const CONVERSATIONS: usize = 24;
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let s = h.store.clone();
            tasks.push(tokio::spawn(async move {
                for r in 0..ROUNDS {
                    // Every writer covers every conversation, each in its own order.
                    let mut convs: Vec<usize> = (0..CONVERSATIONS).collect();
                    convs.rotate_left((w * 7 + r * 5) % CONVERSATIONS);
                    if (w + r) % 2 == 1 {
                        convs.reverse();
                    }
                    let batch: Vec<Message> = convs
                        .iter()
                        .map(|c| {
                            let secs = i64::try_from(r * 100 + w).unwrap();
                            msg(
                                &format!("shared-{c}"),
                                &format!("w{w}-r{r}-c{c}"),
                                secs,
                                Some("hi"),
                            )
                        })
                        .collect();
                    s.upsert_messages(ACC, &batch).await?;
                    let rows: Vec<ConversationActivity> = convs
                        .iter()
                        .map(|c| {
                            let secs = i64::try_from(r * 100 + w).unwrap();
                            activity(&format!("shared-{c}"), secs, true, Some(secs + 1_000))
                        })
                        .collect();
                    s.record_activity(ACC, &rows).await?;
                }
                Ok::<(), StoreError>(())
            }));
        }
        for t in tasks {
            t.await.unwrap().expect("every concurrent batch commits");
        }
        for c in 0..CONVERSATIONS {
            let conv = format!("shared-{c}");
            let page = s_list(&h.store, &conv).await;
            assert_eq!(page, WRITERS * ROUNDS, "{conv} has every writer's messages");
            let stored = h.store.get_conversation(ACC, &conv).await.unwrap().unwrap();
            let last = i64::try_from((ROUNDS - 1) * 100 + WRITERS - 1).unwrap();
            assert_eq!(stored.updated_at, Some(t(last)), "{conv} moved to the latest activity");
        }
    }

    async fn s_list(s: &igdm_store::Store, conv: &str) -> usize {
        let mut n = 0;
        let mut cursor = None;
        loop {
            let page = s.list_messages(ACC, conv, 100, cursor.as_deref()).await.unwrap();
            n += page.items.len();
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return n,
            }
        }
    }
}
