//! `Store::open`: backend choice from the URL, SQLite pragmas, re-opening.

mod common;

use igdm_store::{Store, StoreError};
use sqlx::Row as _;

#[tokio::test]
async fn plain_path_opens_sqlite_with_durable_pragmas() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested-name.db");
    let store = Store::open(path.to_str().unwrap()).await.unwrap();
    assert_eq!(store.backend_name(), "sqlite");
    assert!(path.exists());
    let Store::Sqlite(s) = &store else { panic!("expected SQLite") };
    let mut conn = s.pool().acquire().await.unwrap();
    let mode: String =
        sqlx::query("PRAGMA journal_mode").fetch_one(&mut *conn).await.unwrap().get(0);
    assert_eq!(mode, "wal");
    let sync: i64 = sqlx::query("PRAGMA synchronous").fetch_one(&mut *conn).await.unwrap().get(0);
    assert_eq!(sync, 2, "synchronous = FULL");
    let fk: i64 = sqlx::query("PRAGMA foreign_keys").fetch_one(&mut *conn).await.unwrap().get(0);
    assert_eq!(fk, 1);
    let timeout: i64 =
        sqlx::query("PRAGMA busy_timeout").fetch_one(&mut *conn).await.unwrap().get(0);
    assert!(timeout > 0);
    drop(conn);
    store.close().await;

    // Re-opening applies no migration twice and keeps the data.
    let again = Store::open(&format!("sqlite://{}", path.display())).await.unwrap();
    assert_eq!(again.event_log_counts().await.unwrap().deliveries, 0);
}

#[tokio::test]
async fn relaxed_handles_share_the_database_without_waiting_for_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("igdm.db").to_str().unwrap()).await.unwrap();
    let relaxed = store.relaxed().await.unwrap();
    let Store::Sqlite(r) = &relaxed else { panic!("expected SQLite") };
    let sync: i64 = sqlx::query("PRAGMA synchronous").fetch_one(r.pool()).await.unwrap().get(0);
    assert_eq!(sync, 1, "synchronous = NORMAL on the relaxed handle");
    let fk: i64 = sqlx::query("PRAGMA foreign_keys").fetch_one(r.pool()).await.unwrap().get(0);
    assert_eq!(fk, 1, "the other pragmas carry over");
    let at = igdm_model::Timestamp::now();
    let id = relaxed.append_delivery(b"relaxed", at).await.unwrap();
    assert_eq!(store.get_delivery(id).await.unwrap().unwrap().raw_body, b"relaxed");
    let id = store.append_delivery(b"durable", at).await.unwrap();
    assert_eq!(relaxed.get_delivery(id).await.unwrap().unwrap().raw_body, b"durable");

    let Some(h) =
        common::postgres("relaxed_handles_share_the_database_without_waiting_for_the_disk").await
    else {
        return;
    };
    let relaxed = h.store.relaxed().await.unwrap();
    let Store::Postgres(r) = &relaxed else { panic!("expected PostgreSQL") };
    let mode: String =
        sqlx::query("SHOW synchronous_commit").fetch_one(r.pool()).await.unwrap().get(0);
    assert_eq!(mode, "off");
    let schema: String =
        sqlx::query("SELECT current_schema()").fetch_one(r.pool()).await.unwrap().get(0);
    let Store::Postgres(d) = &h.store else { panic!("expected PostgreSQL") };
    let durable: String =
        sqlx::query("SELECT current_schema()").fetch_one(d.pool()).await.unwrap().get(0);
    assert_eq!(schema, durable, "same schema");
    let id = relaxed.append_delivery(b"relaxed", at).await.unwrap();
    assert_eq!(h.store.get_delivery(id).await.unwrap().unwrap().raw_body, b"relaxed");
}

#[tokio::test]
async fn unknown_scheme_is_refused_without_echoing_the_url() {
    let err = Store::open("mysql://user:hunter2@db/x").await.unwrap_err();
    assert!(matches!(&err, StoreError::UnsupportedUrl { scheme } if scheme == "mysql"));
    assert!(!err.to_string().contains("hunter2"));
}

#[tokio::test]
async fn postgres_url_opens_postgres() {
    // A fresh schema from the harness, then a second store through the public
    // URL form with the schema as the connection's search_path.
    let Some(h) = common::postgres("postgres_url_opens_postgres").await else { return };
    let Store::Postgres(pg) = &h.store else { panic!("expected PostgreSQL") };
    let schema: String =
        sqlx::query("SELECT current_schema()").fetch_one(pg.pool()).await.unwrap().get(0);
    let base = std::env::var("IGDM_TEST_DATABASE_URL").unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    let store = Store::open(&url).await.unwrap();
    assert_eq!(store.backend_name(), "postgres");
    let id = store.append_delivery(b"{}", igdm_model::Timestamp::now()).await.unwrap();
    assert!(h.store.get_delivery(id).await.unwrap().is_some());
    store.close().await;
}

/// The events of `count` deliveries, one each, numbered from `from`.
fn deliveries(from: usize, count: usize) -> Vec<Vec<igdm_store::NewEvent>> {
    (from..from + count)
        .map(|n| {
            vec![igdm_store::NewEvent {
                dedup_key: format!("acct:m{n}:message"),
                kind: igdm_model::EventKind::Message,
                account_id: "acct".into(),
                payload: serde_json::json!({"n": n}),
            }]
        })
        .collect()
}

/// Waits up to 20 s for the database file at `path` to grow 8 MiB past
/// `before`: only a checkpoint copies committed pages into it.
async fn grows_by_8_mib(path: &std::path::Path, before: u64, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let size = std::fs::metadata(path).unwrap().len();
        if size >= before + 8 * 1024 * 1024 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "database file is {size} bytes 20 s after 8 MiB of {what}: nothing checkpointed it"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_webhook_log_is_checkpointed_off_the_commit_path() {
    // Group commits run with automatic checkpoints off; a background thread
    // copies the WAL into the database file. Without it, 8 MiB of deliveries
    // would stay in the WAL and the database file would stay small.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.db");
    let store = Store::open(path.to_str().unwrap()).await.unwrap();
    let before = std::fs::metadata(&path).unwrap().len();
    let body = vec![b'x'; 4096];
    for g in 0..40 {
        let events = deliveries(g * 50, 50);
        let batch: Vec<igdm_store::NewDelivery<'_>> = events
            .iter()
            .map(|e| igdm_store::NewDelivery {
                raw_body: &body,
                received_at: igdm_model::Timestamp::now(),
                events: e,
                dead_letter: None,
            })
            .collect();
        let recorded = store.record_deliveries(&batch).await.unwrap();
        assert_eq!(recorded.len(), 50);
        assert!(recorded.iter().all(|r| r.event_ids.len() == 1 && r.event_ids[0].is_some()));
    }
    grows_by_8_mib(&path, before, "deliveries").await;
    assert_eq!(store.event_log_counts().await.unwrap().deliveries, 2000);
}

#[tokio::test]
async fn relaxed_handles_leave_checkpoints_to_a_thread_and_temporaries_in_memory() {
    // A relaxed handle's connections never checkpoint; a background thread
    // copies their commits into the database file. Without it, 8 MiB of
    // messages would stay in the WAL and the database file would stay small.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("messages.db");
    let store = Store::open(path.to_str().unwrap()).await.unwrap();
    let relaxed = store.relaxed().await.unwrap();
    let Store::Sqlite(r) = &relaxed else { panic!("expected SQLite") };
    let auto: i64 =
        sqlx::query("PRAGMA wal_autocheckpoint").fetch_one(r.pool()).await.unwrap().get(0);
    assert_eq!(auto, 0, "automatic checkpoints off on the relaxed handle");
    let temp: i64 = sqlx::query("PRAGMA temp_store").fetch_one(r.pool()).await.unwrap().get(0);
    assert_eq!(temp, 2, "temp_store = MEMORY on the relaxed handle");
    let Store::Sqlite(d) = &store else { panic!("expected SQLite") };
    let auto: i64 =
        sqlx::query("PRAGMA wal_autocheckpoint").fetch_one(d.pool()).await.unwrap().get(0);
    assert_eq!(auto, 1000, "the durable handle keeps SQLite's default");

    let before = std::fs::metadata(&path).unwrap().len();
    let text = "x".repeat(4000);
    for g in 0..40 {
        let batch: Vec<igdm_model::Message> = (0..50)
            .map(|i| {
                let mut m = common::text_message(&format!("c{i}"), &format!("m{g}-{i}"), &text);
                m.timestamp = igdm_model::Timestamp::now();
                m
            })
            .collect();
        assert_eq!(relaxed.upsert_messages("me", &batch).await.unwrap(), 50);
    }
    grows_by_8_mib(&path, before, "messages").await;
    let page = store.list_messages("me", "c7", 100, None).await.unwrap();
    assert_eq!(page.items.len(), 40, "the durable handle reads what the relaxed one wrote");
}

#[tokio::test]
async fn in_memory_databases_record_deliveries_through_the_pool() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    let events = deliveries(0, 3);
    let batch: Vec<igdm_store::NewDelivery<'_>> = events
        .iter()
        .map(|e| igdm_store::NewDelivery {
            raw_body: b"{}",
            received_at: igdm_model::Timestamp::now(),
            events: e,
            dead_letter: None,
        })
        .collect();
    let first = store.record_deliveries(&batch).await.unwrap();
    let again = store.record_deliveries(&batch).await.unwrap();
    assert!(first.iter().all(|r| r.events.inserted.len() == 1));
    assert!(again.iter().all(|r| r.events.inserted.is_empty() && r.events.duplicates.len() == 1));
    assert_eq!(store.event_log_counts().await.unwrap().deliveries, 6);
}

/// `open_reader` opens an up-to-date SQLite file read-only with no
/// migration work, and falls back to a migrating open for a missing file
/// or one whose schema is behind (here: no schema at all).
#[tokio::test]
async fn readers_open_current_files_read_only_and_migrate_others() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("igdm.db");
    let url = format!("sqlite://{}", path.display());

    // Missing: created and migrated, writable.
    let store = Store::open_reader(&url).await.unwrap();
    let msg = common::text_message("c", "1", "a reader finds this");
    store.upsert_messages("me", std::slice::from_ref(&msg)).await.unwrap();
    store.close().await;

    // Current: read-only, and it searches.
    let reader = Store::open_reader(&url).await.unwrap();
    let hits = reader.search_text("me", "reader", 20, None).await.unwrap();
    assert_eq!(hits.items.len(), 1);
    let write = reader.upsert_messages("me", std::slice::from_ref(&msg)).await;
    assert!(write.is_err(), "a reader cannot write: {write:?}");
    reader.close().await;

    // Behind (an empty file has no migrations table): migrated on open.
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let store = Store::open_reader(empty.to_str().unwrap()).await.unwrap();
    assert_eq!(store.search_text("me", "anything", 20, None).await.unwrap().items.len(), 0);
    store.upsert_messages("me", std::slice::from_ref(&msg)).await.unwrap();
    store.close().await;
}

/// A store written before search walked the index in time order (schema
/// 0004: the FTS5 rowid was `seq`) opens with this build: migration 0005
/// rebuilds the index by the time-ordered key, so the messages stored before
/// it are found newest first, whatever order they were written in, and
/// messages written after it join the same order.
#[tokio::test]
async fn a_store_from_before_the_time_ordered_index_migrates_and_searches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let url = format!("sqlite://{}", path.display());
    let migrations = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    let mut old = sqlx::migrate::Migrator::new(migrations.as_path()).await.unwrap();
    old.migrations.to_mut().retain(|m| m.version <= 4);
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path).create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    old.run(&pool).await.unwrap();
    sqlx::query(
        "INSERT INTO conversations (account_id, conversation_id, updated_at) VALUES ('me', 'c', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    // Written in an order unrelated to time: `seq` (the old rowid) rises
    // while `sent_at` jumps back and forth, minutes and years apart.
    let minutes = [7_i64, 3, 900_000, 5, 1, 42, 2, 600_000];
    for (i, minute) in minutes.iter().enumerate() {
        sqlx::query(
            "INSERT INTO messages (account_id, conversation_id, message_id, sender_id, sent_at, \
             content_type, text) VALUES ('me', 'c', $1, '42', $2, 'text', $3)",
        )
        .bind(format!("old{i}"))
        .bind(1_600_000_000_000_000 + minute * 60_000_000)
        .bind(if i % 2 == 0 { "heron and more" } else { "heron" })
        .execute(&pool)
        .await
        .unwrap();
    }
    let old_hits: i64 =
        sqlx::query_scalar("SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'heron'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(old_hits, 8, "the old index holds every message");
    pool.close().await;

    let store = Store::open(&url).await.unwrap();
    let mut newest =
        igdm_model::Timestamp::from_unix_micros(1_600_000_000_000_000 + 900_001 * 60_000_000)
            .unwrap();
    let mut fresh = common::text_message("c", "new", "heron at last");
    fresh.timestamp = newest;
    store.upsert_messages("me", std::slice::from_ref(&fresh)).await.unwrap();
    // Expected: the new message, then the old ones by minute, newest first.
    let mut order: Vec<(i64, String)> =
        minutes.iter().enumerate().map(|(i, m)| (*m, format!("old{i}"))).collect();
    order.sort_by_key(|(minute, _)| std::cmp::Reverse(*minute));
    let mut expected = vec!["new".to_owned()];
    expected.extend(order.iter().map(|(_, id)| id.clone()));
    for page_size in [20, 3] {
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page =
                store.search_text("me", "heron", page_size, cursor.as_deref()).await.unwrap();
            for hit in &page.items {
                assert!(hit.message.timestamp <= newest, "newest first");
                newest = hit.message.timestamp;
                seen.push(hit.message.id.0.clone());
            }
            if !page.has_more {
                break;
            }
            cursor = page.next_cursor;
        }
        assert_eq!(seen, expected, "pages of {page_size}");
        newest = fresh.timestamp;
    }
    let phrase = store.search_text("me", "\"heron and\"", 20, None).await.unwrap();
    let ids: Vec<String> = phrase.items.into_iter().map(|h| h.message.id.0).collect();
    let evens: Vec<String> = order
        .into_iter()
        .filter(|(_, id)| id.trim_start_matches("old").parse::<usize>().is_ok_and(|i| i % 2 == 0))
        .map(|(_, id)| id)
        .collect();
    assert_eq!(ids, evens);
    store.close().await;
}
