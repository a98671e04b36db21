//! The two backends. Almost all SQL is written once, in a dialect both
//! SQLite and PostgreSQL accept (`$N` parameters, `ON CONFLICT … DO UPDATE`,
//! `RETURNING`, `TRUE`/`FALSE`), and [`shared_store!`] expands it for each
//! backend's pool type. Each backend module supplies the rest: connecting,
//! migrations, the claim lock clause, whether Rust folds the search text, and
//! full-text search.

mod appender;
mod checkpoint;
mod pg_spare;
pub mod postgres;
pub mod sqlite;

use igdm_model::{
    Attachment, Backend, ContentType, ConversationKind, Folder, Participant, ReplyTo, SendStatus,
    Timestamp,
};

use crate::{StoreError, StoreResult};

/// Rows per multi-row `INSERT` when importing messages (16 parameters each,
/// well under both backends' bound-parameter limits).
pub(crate) const IMPORT_CHUNK: usize = 500;

/// Columns of a message row, read by [`shared_store!`]'s row mapping.
pub(crate) const MESSAGE_COLUMNS: &str = "m.seq, m.message_id, m.conversation_id, m.sender_id, m.sender_username, \
     m.sender_display_name, m.sender_is_self, m.sent_at, m.content_type, m.text, m.attachments, m.reply_to, \
     m.is_deleted, m.edited_at, m.send_status";

pub(crate) const MESSAGE_INSERT_HEAD: &str = "INSERT INTO messages (account_id, conversation_id, message_id, \
     sender_id, sender_username, sender_display_name, sender_is_self, sent_at, content_type, text, text_folded, \
     attachments, reply_to, is_deleted, edited_at, send_status) ";

/// Merge rule of a message upsert: newer copies win, `NULL`s never erase, a
/// stored newer edit is kept, deletion is sticky.
pub(crate) const MESSAGE_UPSERT_TAIL: &str = " ON CONFLICT (account_id, conversation_id, message_id) DO UPDATE SET \
     sender_id = excluded.sender_id, \
     sender_username = COALESCE(excluded.sender_username, messages.sender_username), \
     sender_display_name = COALESCE(excluded.sender_display_name, messages.sender_display_name), \
     sender_is_self = (excluded.sender_is_self OR messages.sender_is_self), \
     sent_at = excluded.sent_at, \
     content_type = excluded.content_type, \
     text = CASE WHEN messages.edited_at IS NOT NULL AND (excluded.edited_at IS NULL OR excluded.edited_at < messages.edited_at) \
         THEN messages.text ELSE COALESCE(excluded.text, messages.text) END, \
     text_folded = CASE WHEN messages.edited_at IS NOT NULL AND (excluded.edited_at IS NULL OR excluded.edited_at < messages.edited_at) \
         THEN messages.text_folded ELSE COALESCE(excluded.text_folded, messages.text_folded) END, \
     attachments = CASE WHEN excluded.attachments = '[]' THEN messages.attachments ELSE excluded.attachments END, \
     reply_to = COALESCE(excluded.reply_to, messages.reply_to), \
     is_deleted = (messages.is_deleted OR excluded.is_deleted), \
     edited_at = CASE WHEN messages.edited_at IS NULL THEN excluded.edited_at \
         WHEN excluded.edited_at IS NULL THEN messages.edited_at \
         WHEN excluded.edited_at > messages.edited_at THEN excluded.edited_at ELSE messages.edited_at END, \
     send_status = COALESCE(excluded.send_status, messages.send_status)";

pub(crate) const CONVERSATION_COLUMNS: &str = "conversation_id, kind, title, participants, unread, unread_count, \
     updated_at, muted, hidden, folder, reply_window_ends_at";

pub(crate) const OUTBOX_COLUMNS: &str = "idempotency_key, account_id, conversation_id, recipient_id, payload, state, \
     attempts, last_error, result, created_at, updated_at";

pub(crate) const EVENT_COLUMNS: &str = "id, delivery_id, dedup_key, kind, account_id, payload, state, attempts, \
     lease_owner, lease_until, last_error, created_at";

/// Applies an edit to a stored message unless it already has a newer one.
/// `$1..$3` key, `$4` text, `$5` folded text, `$6` edit time.
pub(crate) const EDIT_SQL: &str = "UPDATE messages SET text = COALESCE($4, text), \
     text_folded = COALESCE($5, text_folded), edited_at = $6 \
     WHERE account_id = $1 AND conversation_id = $2 AND message_id = $3 AND (edited_at IS NULL OR edited_at <= $6)";

pub(crate) const CLEAR_ATTACHMENTS_SQL: &str =
    "DELETE FROM attachments WHERE account_id = $1 AND conversation_id = $2 AND message_id = $3";

pub(crate) const CLEAR_REACTIONS_SQL: &str =
    "DELETE FROM reactions WHERE account_id = $1 AND conversation_id = $2 AND message_id = $3";

pub(crate) const DELETE_SQL: &str = "UPDATE messages SET is_deleted = TRUE WHERE account_id = $1 AND conversation_id = $2 AND message_id = $3";

/// Claims events whose lease ran out (their worker died). Each claim query
/// reads one partial index in its own order and stops at the limit: a single
/// query with `state = 'pending' OR lease expired ORDER BY id` made SQLite
/// walk the whole table from the oldest (done) event, so every claim cost
/// time in proportion to the events ever received.
pub(crate) const CLAIM_EXPIRED_SQL: &str = "UPDATE webhook_events SET state = 'processing', lease_owner = $1, \
     lease_until = $2, attempts = attempts + 1 WHERE id IN (SELECT id FROM webhook_events \
     WHERE state = 'processing' AND lease_until <= $3 ORDER BY lease_until LIMIT $4";

/// Counts the backlog; each event count reads the partial index of its state.
pub(crate) const EVENT_BACKLOG_SQL: &str = "SELECT \
     (SELECT COUNT(*) FROM webhook_events WHERE state = 'pending') AS pending, \
     (SELECT COUNT(*) FROM webhook_events WHERE state = 'processing') AS processing, \
     (SELECT COUNT(*) FROM webhook_events WHERE state = 'failed') AS failed, \
     (SELECT COUNT(*) FROM webhook_dead_letters) AS dead_letters, \
     (SELECT COUNT(*) FROM webhook_deliveries WHERE NOT expanded) AS unexpanded";

/// Claims pending events that are due, oldest due first.
pub(crate) const CLAIM_PENDING_SQL: &str = "UPDATE webhook_events SET state = 'processing', lease_owner = $1, \
     lease_until = $2, attempts = attempts + 1 WHERE id IN (SELECT id FROM webhook_events \
     WHERE state = 'pending' AND available_at <= $3 ORDER BY available_at LIMIT $4";

/// Converts stored microseconds to a timestamp.
pub(crate) fn ts(column: &'static str, micros: i64) -> StoreResult<Timestamp> {
    Timestamp::from_unix_micros(micros).ok_or_else(|| StoreError::corrupt(column, micros))
}

/// Converts optional stored microseconds.
pub(crate) fn opt_ts(column: &'static str, micros: Option<i64>) -> StoreResult<Option<Timestamp>> {
    micros.map(|m| ts(column, m)).transpose()
}

/// A conversation's `updated_at` as stored (0 for unknown).
pub(crate) fn updated_at_from_db(micros: i64) -> StoreResult<Option<Timestamp>> {
    if micros == 0 { Ok(None) } else { ts("conversations.updated_at", micros).map(Some) }
}

/// Decodes a JSON column into a typed value.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    column: &'static str,
    v: serde_json::Value,
) -> StoreResult<T> {
    serde_json::from_value(v).map_err(|e| StoreError::corrupt(column, e))
}

/// Encodes a typed value for a JSON column.
pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> StoreResult<serde_json::Value> {
    serde_json::to_value(v)
        .map_err(|e| StoreError::InvalidInput(format!("not representable as JSON: {e}")))
}

/// Converts an unsigned count for a signed column.
pub(crate) fn to_i64(what: &str, v: u64) -> StoreResult<i64> {
    i64::try_from(v).map_err(|_| StoreError::InvalidInput(format!("{what} {v} is too large")))
}

/// Converts a stored signed count back.
pub(crate) fn to_u64(column: &'static str, v: i64) -> StoreResult<u64> {
    u64::try_from(v).map_err(|_| StoreError::corrupt(column, v))
}

/// A `limit` argument as a page size: at least 1, at most 1000.
pub(crate) fn page_size(limit: u32) -> i64 {
    i64::from(limit.clamp(1, 1000))
}

/// The text stored in `text_folded` when the backend indexes it.
pub(crate) fn fold_for(enabled: bool, text: Option<&str>) -> Option<String> {
    if enabled { text.map(crate::fold::folded) } else { None }
}

/// Refuses message text PostgreSQL cannot store (a NUL character), on both
/// backends alike, before anything is written.
pub(crate) fn check_text(text: Option<&str>, message_id: &str) -> StoreResult<()> {
    if text.is_some_and(|t| t.contains('\0')) {
        return Err(StoreError::InvalidInput(format!(
            "text of message {message_id} contains a NUL character"
        )));
    }
    Ok(())
}

/// Parsed pieces of enum-valued columns.
pub(crate) fn parse_backend(raw: &str) -> Backend {
    Backend::parse(raw)
}
pub(crate) fn parse_kind(raw: &str) -> ConversationKind {
    ConversationKind::parse(raw)
}
pub(crate) fn parse_folder(raw: &str) -> Folder {
    Folder::parse(raw)
}
pub(crate) fn parse_content_type(raw: &str) -> ContentType {
    ContentType::parse(raw)
}
pub(crate) fn parse_send_status(raw: Option<String>) -> Option<SendStatus> {
    raw.map(|s| SendStatus::parse(&s))
}

/// Decoded JSON columns of a message.
pub(crate) fn message_json(
    attachments: serde_json::Value,
    reply_to: Option<serde_json::Value>,
) -> StoreResult<(Vec<Attachment>, Option<ReplyTo>)> {
    let attachments = from_json("messages.attachments", attachments)?;
    let reply_to = reply_to.map(|v| from_json("messages.reply_to", v)).transpose()?;
    Ok((attachments, reply_to))
}

/// Decoded participants column.
pub(crate) fn participants(v: serde_json::Value) -> StoreResult<Vec<Participant>> {
    from_json("conversations.participants", v)
}

/// Start of a UTC day in microseconds.
pub(crate) fn day_start_micros(day: chrono::NaiveDate) -> i64 {
    day.and_hms_opt(0, 0, 0).map_or(0, |t| t.and_utc().timestamp_micros())
}

/// The events of a group commit in the order they are inserted: by dedup
/// key across the whole group, so that concurrent groups sharing keys wait
/// on each other instead of deadlocking. A key repeated in the group (a
/// delivery retried while the first was queued) is inserted once, for its
/// first delivery; later occurrences are recorded as duplicates in `out`.
pub(crate) fn insertion_order<'e, E>(
    events: impl Iterator<Item = (usize, &'e E)>,
    key: impl Fn(&E) -> &str,
    out: &mut [crate::types::RecordedDelivery],
) -> Vec<(usize, &'e E)> {
    let mut order: Vec<(usize, &E)> = events.collect();
    order.sort_by(|a, b| key(a.1).cmp(key(b.1)).then(a.0.cmp(&b.0)));
    let mut first: Vec<(usize, &E)> = Vec::with_capacity(order.len());
    for (i, e) in order {
        if first.last().is_some_and(|(_, p)| key(p) == key(e)) {
            out[i].events.duplicates.push(key(e).to_owned());
        } else {
            first.push((i, e));
        }
    }
    first
}

/// Fills in each delivery's event ids in its input order from the ids the
/// group stored by key (a key repeated in the group belongs to its first
/// delivery and first occurrence), and sorts its duplicates.
pub(crate) fn fill_event_ids<'k, S, K>(
    keys: impl Iterator<Item = K>,
    stored: &mut std::collections::HashMap<S, i64>,
    out: &mut [crate::types::RecordedDelivery],
) where
    S: std::borrow::Borrow<str> + std::hash::Hash + Eq,
    K: Iterator<Item = &'k str>,
{
    for (keys, rec) in keys.zip(out.iter_mut()) {
        rec.event_ids = keys.map(|k| stored.remove(k).map(crate::types::EventId)).collect();
        rec.events.inserted = rec.event_ids.iter().flatten().copied().collect();
        rec.events.duplicates.sort_unstable();
    }
}

/// Ends a sqlx group commit's bookkeeping: each first occurrence of a key
/// the group did not store (`stored`: key → new id) was a duplicate, and
/// every delivery gets its event ids in input order.
pub(crate) fn settle_events<'e>(
    events: impl Iterator<Item = &'e [crate::types::NewEvent]>,
    first: &[(usize, &crate::types::NewEvent)],
    stored: &mut std::collections::HashMap<String, i64>,
    out: &mut [crate::types::RecordedDelivery],
) {
    for (i, e) in first {
        if !stored.contains_key(e.dedup_key.as_str()) {
            out[*i].events.duplicates.push(e.dedup_key.clone());
        }
    }
    fill_event_ids(events.map(|es| es.iter().map(|e| e.dedup_key.as_str())), stored, out);
}

/// A delivery's contents as the shared group-commit code stores them.
#[derive(Clone, Copy)]
pub(crate) struct Contents<'a> {
    pub(crate) events: &'a [crate::types::NewEvent],
    pub(crate) dead_letter: Option<&'a str>,
}

/// A delivery's bookkeeping before its events are stored.
pub(crate) fn empty_record(id: i64) -> crate::types::RecordedDelivery {
    crate::types::RecordedDelivery {
        id: crate::types::DeliveryId(id),
        events: crate::types::InsertedEvents::default(),
        event_ids: Vec::new(),
        dead_letter: None,
    }
}

/// Claims unexpanded deliveries whose lease is free or ran out, oldest
/// first, from their partial index; the dialect's row lock and
/// `) RETURNING …` follow.
/// The newest migration applied to a database.
pub(crate) const APPLIED_SCHEMA_SQL: &str =
    "SELECT MAX(version) FROM _sqlx_migrations WHERE success = TRUE";

/// Whether every migration `migrator` knows is applied, given what
/// [`APPLIED_SCHEMA_SQL`] answered (an error: the table is missing).
pub(crate) fn schema_is_current<E>(
    migrator: &sqlx::migrate::Migrator,
    applied: Result<Option<i64>, E>,
) -> bool {
    let latest = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    matches!(applied, Ok(Some(v)) if v >= latest)
}

/// Where a page of search results starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SearchStart {
    /// Newest first, from the newest match.
    Newest,
    /// Newest first, after the match sent at `.0` with `seq` `.1`.
    Before(i64, i64),
    /// Best first among the newest [`crate::RELEVANCE_WINDOW`] matches
    /// (within the [`crate::RELEVANCE_CANDIDATES`] newest text matches),
    /// after this many.
    Ranked(i64),
}

impl SearchStart {
    const NEWEST_TAG: &'static str = "search-newest";
    const RANKED_TAG: &'static str = "search-relevance";

    /// The start of the page `cursor` points to (the first page without one).
    pub(crate) fn of(q: &crate::Query, cursor: Option<&str>) -> StoreResult<Self> {
        match (cursor, ranked(q)) {
            (None, false) => Ok(Self::Newest),
            (None, true) => Ok(Self::Ranked(0)),
            (Some(c), false) => {
                let (sent_at, seq) = crate::cursor::decode_pair(Self::NEWEST_TAG, c)?;
                Ok(Self::Before(sent_at, seq))
            }
            (Some(c), true) => {
                let f = crate::cursor::decode(Self::RANKED_TAG, c, 1)?;
                let offset = f[0].parse::<i64>().ok().filter(|o| *o >= 0);
                offset.map(Self::Ranked).ok_or(StoreError::InvalidCursor)
            }
        }
    }

    /// The cursor of the page after one of `limit` hits that started here
    /// and ended with the match `last` (`(sent_at, seq)`).
    pub(crate) fn next(self, limit: i64, last: (i64, i64)) -> String {
        match self {
            Self::Ranked(offset) => {
                crate::cursor::encode(Self::RANKED_TAG, &[&(offset + limit).to_string()])
            }
            Self::Newest | Self::Before(..) => {
                crate::cursor::encode(Self::NEWEST_TAG, &[&last.0.to_string(), &last.1.to_string()])
            }
        }
    }
}

/// Whether a search ranks its results: `sort:relevance` and words to rank
/// by (filters alone are always newest first).
pub(crate) fn ranked(q: &crate::Query) -> bool {
    q.order == crate::SearchOrder::Relevance && !q.token_groups().is_empty()
}

pub(crate) const CLAIM_UNEXPANDED_SQL: &str = "UPDATE webhook_deliveries SET lease_owner = $1, lease_until = $2 \
     WHERE id IN (SELECT id FROM webhook_deliveries WHERE NOT expanded \
     AND (lease_until IS NULL OR lease_until <= $3) ORDER BY id LIMIT $4";

/// Generates `impl MessageStore` for a backend struct with a `pool` field of
/// `sqlx::Pool<$db>` and the dialect hooks `FOLD_TEXT`, `CLAIM_LOCK`, `OPTIMIZE`, `NAME`,
/// `search_impl`, `record_deliveries_native` and `append_unexpanded_native`.
macro_rules! shared_store {
    ($store:ty, $db:ty) => {
        use std::collections::HashMap;

        use futures::FutureExt as _;
        use igdm_model::{Account, Conversation, Message, Page, Reaction, Sender, Timestamp, User};
        use sqlx::types::Json;
        use sqlx::{QueryBuilder, Row as _};

        use $crate::api::{MessageStore, StoreFuture};
        use $crate::backend::*;
        use $crate::cursor;
        use $crate::query::Query;
        use $crate::types::*;
        use $crate::{StoreError, StoreResult};

        type DbRow = <$db as sqlx::Database>::Row;

        /// Maps a `media_refs` row.
        fn media_ref_row(row: &DbRow) -> StoreResult<MediaRef> {
            let position: i64 = row.try_get("position")?;
            let size: i64 = row.try_get("size")?;
            Ok(MediaRef {
                conversation_id: row.try_get("conversation_id")?,
                message_id: row.try_get("message_id")?,
                position: u32::try_from(position)
                    .map_err(|_| StoreError::corrupt("media_refs.position", position))?,
                sha256: row.try_get("sha256")?,
                size: to_u64("media_refs.size", size)?,
                mime: row.try_get("mime")?,
                stored_at: ts("media_refs.stored_at", row.try_get("stored_at")?)?,
            })
        }

        impl $store {
            /// Inserts one event inside `tx`; `None` when its dedup key is stored.
            async fn insert_event_in(
                tx: &mut sqlx::Transaction<'static, $db>,
                delivery: DeliveryId,
                e: &NewEvent,
                now: i64,
            ) -> StoreResult<Option<EventId>> {
                let id: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO webhook_events (delivery_id, dedup_key, kind, account_id, payload, state, \
                     attempts, available_at, created_at) VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6) \
                     ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
                )
                .bind(delivery.0)
                .bind(&e.dedup_key)
                .bind(e.kind.as_str())
                .bind(&e.account_id)
                .bind(Json(&e.payload))
                .bind(now)
                .fetch_optional(&mut **tx)
                .await?;
                Ok(id.map(EventId))
            }

            /// Adds to a delivery's count of duplicate events inside `tx`.
            async fn add_duplicates_in(
                tx: &mut sqlx::Transaction<'static, $db>,
                delivery: DeliveryId,
                n: usize,
            ) -> StoreResult<()> {
                if n > 0 {
                    sqlx::query("UPDATE webhook_deliveries SET duplicates = duplicates + $2 WHERE id = $1")
                        .bind(delivery.0)
                        .bind(i64::try_from(n).unwrap_or(i64::MAX))
                        .execute(&mut **tx)
                        .await?;
                }
                Ok(())
            }

            /// Appends `(id, id, …)` with every id bound.
            fn push_ids(b: &mut QueryBuilder<$db>, ids: &[EventId]) {
                b.push("(");
                let mut sep = b.separated(", ");
                for id in ids {
                    sep.push_bind(id.0);
                }
                sep.push_unseparated(")");
            }

            /// The group commit behind `record_deliveries` and
            /// `record_deliveries_leased`: the dialect's own
            /// (`record_deliveries_native`) where it has one for this group,
            /// otherwise the shared sqlx code.
            async fn record_group(
                &self,
                batch: &[NewDelivery<'_>],
                lease: Option<Lease<'_>>,
            ) -> StoreResult<Vec<RecordedDelivery>> {
                match self.record_deliveries_native(batch, lease).await? {
                    Some(recorded) => Ok(recorded),
                    None => self.record_deliveries_in(batch, lease).await,
                }
            }

            /// The shared sqlx group commit.
            async fn record_deliveries_in(
                &self,
                batch: &[NewDelivery<'_>],
                lease: Option<Lease<'_>>,
            ) -> StoreResult<Vec<RecordedDelivery>> {
                let now = Timestamp::now().unix_micros();
                let mut tx = self.pool.begin().await?;
                let raw: Vec<RawDelivery<'_>> = batch
                    .iter()
                    .map(|d| RawDelivery { raw_body: d.raw_body, received_at: d.received_at })
                    .collect();
                let ids = Self::insert_deliveries_in(&mut tx, &raw, true, None).await?;
                let mut out: Vec<RecordedDelivery> = ids.into_iter().map(|id| empty_record(id.0)).collect();
                let parts: Vec<Contents<'_>> = batch
                    .iter()
                    .map(|d| Contents { events: d.events, dead_letter: d.dead_letter })
                    .collect();
                Self::store_contents_in(&mut tx, &parts, &mut out, lease, now).await?;
                tx.commit().await?;
                Ok(out)
            }

            /// Stores, inside `tx`, the contents of deliveries already
            /// inserted (`out[i].id`): dead letters, then the events (the
            /// first occurrence of each key, in key order), then each
            /// delivery's count of duplicates.
            async fn store_contents_in(
                tx: &mut sqlx::Transaction<'static, $db>,
                parts: &[Contents<'_>],
                out: &mut [RecordedDelivery],
                lease: Option<Lease<'_>>,
                now: i64,
            ) -> StoreResult<()> {
                for (d, rec) in parts.iter().zip(out.iter_mut()) {
                    if let Some(reason) = d.dead_letter {
                        let dl: i64 = sqlx::query_scalar(
                            "INSERT INTO webhook_dead_letters (delivery_id, raw_body, reason, created_at) \
                             VALUES ($1, NULL, $2, $3) RETURNING id",
                        )
                        .bind(rec.id.0)
                        .bind(reason)
                        .bind(now)
                        .fetch_one(&mut **tx)
                        .await?;
                        tracing::warn!(dead_letter = dl, delivery = rec.id.0, %reason, "webhook dead letter");
                        rec.dead_letter = Some(dl);
                    }
                }
                let first = insertion_order(
                    parts.iter().enumerate().flat_map(|(i, d)| d.events.iter().map(move |e| (i, e))),
                    |e: &NewEvent| e.dedup_key.as_str(),
                    out,
                );
                // A leased event is stored as `claim_events` leaves it.
                let (state, attempts) = if lease.is_some() { ("processing", 1_i64) } else { ("pending", 0) };
                let owner = lease.map(|l| l.owner);
                let until = lease.map(|l| l.until.unix_micros());
                let mut stored: HashMap<String, i64> = HashMap::with_capacity(first.len());
                for chunk in first.chunks(IMPORT_CHUNK) {
                    let mut b = QueryBuilder::<$db>::new(
                        "INSERT INTO webhook_events (delivery_id, dedup_key, kind, account_id, payload, \
                         state, attempts, available_at, created_at, lease_owner, lease_until) ",
                    );
                    b.push_values(chunk, |mut row, (i, e)| {
                        row.push_bind(out[*i].id.0)
                            .push_bind(e.dedup_key.as_str())
                            .push_bind(e.kind.as_str())
                            .push_bind(e.account_id.as_str())
                            .push_bind(Json(&e.payload))
                            .push_bind(state)
                            .push_bind(attempts)
                            .push_bind(now)
                            .push_bind(now)
                            .push_bind(owner)
                            .push_bind(until);
                    });
                    b.push(" ON CONFLICT (dedup_key) DO NOTHING RETURNING id, dedup_key");
                    let rows = b.build().fetch_all(&mut **tx).await?;
                    for row in &rows {
                        stored.insert(row.try_get("dedup_key")?, row.try_get("id")?);
                    }
                }
                settle_events(parts.iter().map(|d| d.events), &first, &mut stored, out);
                for rec in out.iter() {
                    Self::add_duplicates_in(tx, rec.id, rec.events.duplicates.len()).await?;
                }
                Ok(())
            }

            /// The shared sqlx form of `append_unexpanded`.
            async fn append_unexpanded_in(
                &self,
                batch: &[RawDelivery<'_>],
                lease: Option<Lease<'_>>,
            ) -> StoreResult<Vec<DeliveryId>> {
                let mut tx = self.pool.begin().await?;
                let ids = Self::insert_deliveries_in(&mut tx, batch, false, lease).await?;
                tx.commit().await?;
                Ok(ids)
            }

            /// Inserts deliveries inside `tx`, ids in input order: expanded
            /// ones, or unexpanded ones held under `lease`.
            /// One multi-row INSERT per chunk instead of a statement per row:
            /// on PostgreSQL every statement is a round trip, and the group
            /// commit's cost is what acknowledgements wait for.
            async fn insert_deliveries_in(
                tx: &mut sqlx::Transaction<'static, $db>,
                batch: &[RawDelivery<'_>],
                expanded: bool,
                lease: Option<Lease<'_>>,
            ) -> StoreResult<Vec<DeliveryId>> {
                let owner = lease.map(|l| l.owner);
                let until = lease.map(|l| l.until.unix_micros());
                let mut out = Vec::with_capacity(batch.len());
                for chunk in batch.chunks(IMPORT_CHUNK) {
                    let mut b = QueryBuilder::<$db>::new(
                        "INSERT INTO webhook_deliveries (received_at, raw_body, expanded, lease_owner, lease_until) ",
                    );
                    b.push_values(chunk, |mut row, d| {
                        row.push_bind(d.received_at.unix_micros())
                            .push_bind(d.raw_body)
                            .push_bind(expanded)
                            .push_bind(owner)
                            .push_bind(until);
                    });
                    b.push(" RETURNING id");
                    let mut ids: Vec<i64> = b.build_query_scalar().fetch_all(&mut **tx).await?;
                    if ids.len() != chunk.len() {
                        return Err(StoreError::corrupt(
                            "webhook_deliveries.id",
                            format!("inserting {} deliveries returned {} ids", chunk.len(), ids.len()),
                        ));
                    }
                    // Ids come from the sequence (PostgreSQL) or as max + 1
                    // (SQLite) row by row in VALUES order, so sorted they
                    // line up with the chunk.
                    ids.sort_unstable();
                    out.extend(ids.into_iter().map(DeliveryId));
                }
                Ok(out)
            }

            fn row_to_delivery(row: &DbRow) -> StoreResult<Delivery> {
                Ok(Delivery {
                    id: DeliveryId(row.try_get("id")?),
                    received_at: ts("webhook_deliveries.received_at", row.try_get("received_at")?)?,
                    raw_body: row.try_get("raw_body")?,
                    duplicates: to_u64("webhook_deliveries.duplicates", row.try_get("duplicates")?)?,
                })
            }

            fn row_to_message(row: &DbRow) -> StoreResult<Message> {
                let (attachments, reply_to) = message_json(
                    row.try_get::<Json<serde_json::Value>, _>("attachments")?.0,
                    row.try_get::<Option<Json<serde_json::Value>>, _>("reply_to")?.map(|j| j.0),
                )?;
                Ok(Message {
                    id: row.try_get::<String, _>("message_id")?.into(),
                    conversation_id: row.try_get::<String, _>("conversation_id")?.into(),
                    sender: Sender {
                        id: row.try_get::<String, _>("sender_id")?.into(),
                        username: row.try_get("sender_username")?,
                        display_name: row.try_get("sender_display_name")?,
                        is_self: row.try_get("sender_is_self")?,
                    },
                    timestamp: ts("messages.sent_at", row.try_get("sent_at")?)?,
                    content_type: parse_content_type(&row.try_get::<String, _>("content_type")?),
                    text: row.try_get("text")?,
                    attachments,
                    reactions: Vec::new(),
                    reply_to,
                    is_deleted: row.try_get("is_deleted")?,
                    edited_at: opt_ts("messages.edited_at", row.try_get("edited_at")?)?,
                    send_status: parse_send_status(row.try_get("send_status")?),
                })
            }

            fn row_to_conversation(row: &DbRow) -> StoreResult<Conversation> {
                Ok(Conversation {
                    id: row.try_get::<String, _>("conversation_id")?.into(),
                    kind: parse_kind(&row.try_get::<String, _>("kind")?),
                    title: row.try_get("title")?,
                    participants: participants(row.try_get::<Json<serde_json::Value>, _>("participants")?.0)?,
                    unread: row.try_get("unread")?,
                    unread_count: row
                        .try_get::<Option<i64>, _>("unread_count")?
                        .map(|v| to_u64("conversations.unread_count", v))
                        .transpose()?,
                    updated_at: updated_at_from_db(row.try_get("updated_at")?)?,
                    muted: row.try_get("muted")?,
                    hidden: row.try_get("hidden")?,
                    folder: parse_folder(&row.try_get::<String, _>("folder")?),
                    reply_window_ends_at: opt_ts(
                        "conversations.reply_window_ends_at",
                        row.try_get("reply_window_ends_at")?,
                    )?,
                })
            }

            fn row_to_outbox(row: &DbRow) -> StoreResult<OutboxEntry> {
                let state: String = row.try_get("state")?;
                Ok(OutboxEntry {
                    idempotency_key: row.try_get("idempotency_key")?,
                    account_id: row.try_get("account_id")?,
                    conversation_id: row.try_get("conversation_id")?,
                    recipient_id: row.try_get("recipient_id")?,
                    payload: row.try_get::<Json<serde_json::Value>, _>("payload")?.0,
                    state: OutboxState::from_stored(&state),
                    attempts: u32::try_from(row.try_get::<i64, _>("attempts")?)
                        .map_err(|e| StoreError::corrupt("outbox.attempts", e))?,
                    last_error: row.try_get("last_error")?,
                    result: row.try_get::<Option<Json<serde_json::Value>>, _>("result")?.map(|j| j.0),
                    created_at: ts("outbox.created_at", row.try_get("created_at")?)?,
                    updated_at: ts("outbox.updated_at", row.try_get("updated_at")?)?,
                })
            }

            fn row_to_event(row: &DbRow) -> StoreResult<StoredEvent> {
                let state: String = row.try_get("state")?;
                Ok(StoredEvent {
                    id: EventId(row.try_get("id")?),
                    delivery_id: DeliveryId(row.try_get("delivery_id")?),
                    dedup_key: row.try_get("dedup_key")?,
                    kind: igdm_model::EventKind::parse(&row.try_get::<String, _>("kind")?),
                    account_id: row.try_get("account_id")?,
                    payload: row.try_get::<Json<serde_json::Value>, _>("payload")?.0,
                    state: EventState::parse(&state)
                        .ok_or_else(|| StoreError::corrupt("webhook_events.state", &state))?,
                    attempts: u32::try_from(row.try_get::<i64, _>("attempts")?)
                        .map_err(|e| StoreError::corrupt("webhook_events.attempts", e))?,
                    lease_owner: row.try_get("lease_owner")?,
                    lease_until: opt_ts("webhook_events.lease_until", row.try_get("lease_until")?)?,
                    last_error: row.try_get("last_error")?,
                    created_at: ts("webhook_events.created_at", row.try_get("created_at")?)?,
                })
            }

            /// Loads the reactions of the given `(conversation, message)` pairs.
            async fn load_reactions(
                &self,
                account: &str,
                keys: &[(String, String)],
            ) -> StoreResult<HashMap<(String, String), Vec<Reaction>>> {
                let mut out: HashMap<(String, String), Vec<Reaction>> = HashMap::new();
                if keys.is_empty() {
                    return Ok(out);
                }
                for chunk in keys.chunks(IMPORT_CHUNK) {
                    let mut b = QueryBuilder::<$db>::new(
                        "SELECT conversation_id, message_id, sender_id, emoji FROM reactions WHERE account_id = ",
                    );
                    b.push_bind(account.to_owned());
                    b.push(" AND (");
                    let mut sep = b.separated(" OR ");
                    for (conv, msg) in chunk {
                        sep.push("(conversation_id = ");
                        sep.push_bind_unseparated(conv.clone());
                        sep.push_unseparated(" AND message_id = ");
                        sep.push_bind_unseparated(msg.clone());
                        sep.push_unseparated(")");
                    }
                    b.push(") ORDER BY created_at, sender_id, emoji");
                    for row in b.build().fetch_all(&self.pool).await? {
                        out.entry((row.try_get("conversation_id")?, row.try_get("message_id")?))
                            .or_default()
                            .push(Reaction {
                                sender_id: row.try_get::<String, _>("sender_id")?.into(),
                                emoji: row.try_get("emoji")?,
                            });
                    }
                }
                Ok(out)
            }

            /// Maps message rows and attaches their reactions.
            async fn messages_with_reactions(&self, account: &str, rows: &[DbRow]) -> StoreResult<Vec<Message>> {
                let mut messages = rows.iter().map(Self::row_to_message).collect::<StoreResult<Vec<_>>>()?;
                let keys: Vec<(String, String)> = messages
                    .iter()
                    .map(|m| (m.conversation_id.0.clone(), m.id.0.clone()))
                    .collect();
                let mut reactions = self.load_reactions(account, &keys).await?;
                for m in &mut messages {
                    if let Some(r) = reactions.remove(&(m.conversation_id.0.clone(), m.id.0.clone())) {
                        m.reactions = r;
                    }
                }
                Ok(messages)
            }

            /// Applies edits and deletions recorded before their message arrived.
            async fn apply_pending_mutations(
                &self,
                tx: &mut sqlx::Transaction<'static, $db>,
                account: &str,
            ) -> StoreResult<()> {
                let rows = sqlx::query(
                    "SELECT p.conversation_id, p.message_id, p.kind, p.text, p.at FROM pending_mutations p \
                     JOIN messages m ON m.account_id = p.account_id AND m.conversation_id = p.conversation_id \
                     AND m.message_id = p.message_id WHERE p.account_id = $1",
                )
                .bind(account)
                .fetch_all(&mut **tx)
                .await?;
                for row in rows {
                    let conv: String = row.try_get("conversation_id")?;
                    let msg: String = row.try_get("message_id")?;
                    let kind: String = row.try_get("kind")?;
                    let text: Option<String> = row.try_get("text")?;
                    let at: i64 = row.try_get("at")?;
                    if kind == "edit" {
                        sqlx::query(EDIT_SQL)
                            .bind(account)
                            .bind(&conv)
                            .bind(&msg)
                            .bind(text.as_deref())
                            .bind(fold_for(Self::FOLD_TEXT, text.as_deref()))
                            .bind(at)
                            .execute(&mut **tx)
                            .await?;
                    } else {
                        sqlx::query(DELETE_SQL).bind(account).bind(&conv).bind(&msg).execute(&mut **tx).await?;
                    }
                    sqlx::query(
                        "DELETE FROM pending_mutations WHERE account_id = $1 AND conversation_id = $2 \
                         AND message_id = $3 AND kind = $4",
                    )
                    .bind(account)
                    .bind(&conv)
                    .bind(&msg)
                    .bind(&kind)
                    .execute(&mut **tx)
                    .await?;
                    tracing::debug!(conversation = %conv, message = %msg, %kind, "applied deferred change");
                }
                Ok(())
            }

            /// Stores a change for a message that is not stored yet.
            async fn defer_mutation(
                tx: &mut sqlx::Transaction<'static, $db>,
                key: (&str, &str, &str),
                kind: &str,
                text: Option<&str>,
                at: i64,
            ) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO pending_mutations (account_id, conversation_id, message_id, kind, text, at) \
                     VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (account_id, conversation_id, message_id, kind) DO UPDATE \
                     SET text = excluded.text, at = excluded.at WHERE excluded.at >= pending_mutations.at",
                )
                .bind(key.0)
                .bind(key.1)
                .bind(key.2)
                .bind(kind)
                .bind(text)
                .bind(at)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            async fn message_exists(
                tx: &mut sqlx::Transaction<'static, $db>,
                key: (&str, &str, &str),
            ) -> StoreResult<bool> {
                let found = sqlx::query(
                    "SELECT 1 FROM messages WHERE account_id = $1 AND conversation_id = $2 AND message_id = $3",
                )
                .bind(key.0)
                .bind(key.1)
                .bind(key.2)
                .fetch_optional(&mut **tx)
                .await?;
                Ok(found.is_some())
            }

            /// Deletes the attachment or reaction rows of `messages` before they are rewritten.
            async fn clear_child_rows(
                tx: &mut sqlx::Transaction<'static, $db>,
                sql: &'static str,
                account: &str,
                messages: &[&&Message],
            ) -> StoreResult<()> {
                for m in messages {
                    sqlx::query(sql)
                        .bind(account)
                        .bind(m.conversation_id.as_str())
                        .bind(m.id.as_str())
                        .execute(&mut **tx)
                        .await?;
                }
                Ok(())
            }

            /// Upserts the conversation rows of `messages` (foreign key of
            /// theirs), as stubs where new, moving their activity time
            /// forward: one row per conversation, in key order, like every
            /// batch that locks them.
            async fn upsert_conversation_stubs(
                tx: &mut sqlx::Transaction<'static, $db>,
                account: &str,
                messages: &[&Message],
            ) -> StoreResult<()> {
                let mut latest: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
                for m in messages {
                    let t = m.timestamp.unix_micros();
                    let e = latest.entry(m.conversation_id.as_str()).or_insert(t);
                    *e = (*e).max(t);
                }
                let latest: Vec<(&str, i64)> = latest.into_iter().collect();
                for part in latest.chunks(IMPORT_CHUNK) {
                    let mut b = QueryBuilder::<$db>::new(
                        "INSERT INTO conversations (account_id, conversation_id, updated_at, is_stub) ",
                    );
                    b.push_values(part, |mut row, (conv, t)| {
                        row.push_bind(account.to_owned()).push_bind((*conv).to_owned()).push_bind(*t).push("TRUE");
                    });
                    b.push(
                        " ON CONFLICT (account_id, conversation_id) DO UPDATE SET updated_at = CASE \
                         WHEN excluded.updated_at > conversations.updated_at THEN excluded.updated_at \
                         ELSE conversations.updated_at END",
                    );
                    b.build().execute(&mut **tx).await?;
                }
                Ok(())
            }

            /// Writes one chunk of distinct messages inside `tx`, their
            /// conversation rows already there:
            /// one multi-row upsert of the messages, then their attachment
            /// and reaction rows.
            async fn write_message_chunk(
                tx: &mut sqlx::Transaction<'static, $db>,
                account: &str,
                chunk: &[&Message],
            ) -> StoreResult<()> {
                let mut rows = Vec::with_capacity(chunk.len());
                for m in chunk {
                    let attachments = to_json(&m.attachments)?;
                    let reply_to = m.reply_to.as_ref().map(to_json).transpose()?;
                    rows.push((m, attachments, reply_to));
                }
                let mut b = QueryBuilder::<$db>::new(MESSAGE_INSERT_HEAD);
                b.push_values(rows, |mut row, (m, attachments, reply_to)| {
                    row.push_bind(account.to_owned())
                        .push_bind(m.conversation_id.0.clone())
                        .push_bind(m.id.0.clone())
                        .push_bind(m.sender.id.0.clone())
                        .push_bind(m.sender.username.clone())
                        .push_bind(m.sender.display_name.clone())
                        .push_bind(m.sender.is_self)
                        .push_bind(m.timestamp.unix_micros())
                        .push_bind(m.content_type.as_str().to_owned())
                        .push_bind(m.text.clone())
                        .push_bind(fold_for(Self::FOLD_TEXT, m.text.as_deref()))
                        .push_bind(Json(attachments))
                        .push_bind(reply_to.map(Json))
                        .push_bind(m.is_deleted)
                        .push_bind(m.edited_at.map(|t| t.unix_micros()))
                        .push_bind(m.send_status.as_ref().map(|s| s.as_str().to_owned()));
                });
                b.push(MESSAGE_UPSERT_TAIL);
                b.build().execute(&mut **tx).await?;

                // Attachment and reaction rows: a non-empty list replaces the stored one.
                let with_attachments: Vec<&&Message> = chunk.iter().filter(|m| !m.attachments.is_empty()).collect();
                let with_reactions: Vec<&&Message> = chunk.iter().filter(|m| !m.reactions.is_empty()).collect();
                Self::clear_child_rows(tx, CLEAR_ATTACHMENTS_SQL, account, &with_attachments).await?;
                if !with_attachments.is_empty() {
                    let mut items = Vec::new();
                    for m in &with_attachments {
                        for (i, a) in m.attachments.iter().enumerate() {
                            let size = a.size.map(|s| to_i64("attachment size", s)).transpose()?;
                            items.push((*m, i64::try_from(i).unwrap_or(i64::MAX), a, size));
                        }
                    }
                    for part in items.chunks(IMPORT_CHUNK) {
                        let mut b = QueryBuilder::<$db>::new(
                            "INSERT INTO attachments (account_id, conversation_id, message_id, position, kind, url, \
                             mime, size, duration) ",
                        );
                        b.push_values(part, |mut row, (m, i, a, size)| {
                            row.push_bind(account.to_owned())
                                .push_bind(m.conversation_id.0.clone())
                                .push_bind(m.id.0.clone())
                                .push_bind(*i)
                                .push_bind(a.kind.as_str().to_owned())
                                .push_bind(a.url.clone())
                                .push_bind(a.mime.clone())
                                .push_bind(*size)
                                .push_bind(a.duration);
                        });
                        b.build().execute(&mut **tx).await?;
                    }
                }
                Self::clear_child_rows(tx, CLEAR_REACTIONS_SQL, account, &with_reactions).await?;
                if !with_reactions.is_empty() {
                    let now = Timestamp::now().unix_micros();
                    let mut items: Vec<(&Message, &Reaction)> = Vec::new();
                    for m in &with_reactions {
                        let mut seen = std::collections::HashSet::new();
                        for r in &m.reactions {
                            if seen.insert((r.sender_id.as_str(), r.emoji.as_str())) {
                                items.push((**m, r));
                            }
                        }
                    }
                    for part in items.chunks(IMPORT_CHUNK) {
                        let mut b = QueryBuilder::<$db>::new(
                            "INSERT INTO reactions (account_id, conversation_id, message_id, sender_id, emoji, \
                             created_at) ",
                        );
                        b.push_values(part, |mut row, (m, r)| {
                            row.push_bind(account.to_owned())
                                .push_bind(m.conversation_id.0.clone())
                                .push_bind(m.id.0.clone())
                                .push_bind(r.sender_id.0.clone())
                                .push_bind(r.emoji.clone())
                                .push_bind(now);
                        });
                        b.build().execute(&mut **tx).await?;
                    }
                }
                Ok(())
            }

            /// Appends the `AND …` clause that starts a newest-first page
            /// after the previous page's last match.
            fn push_search_start(b: &mut QueryBuilder<$db>, start: SearchStart) {
                if let SearchStart::Before(sent_at, seq) = start {
                    b.push(" AND (m.sent_at < ").push_bind(sent_at);
                    b.push(" OR (m.sent_at = ").push_bind(sent_at);
                    b.push(" AND m.seq < ").push_bind(seq).push("))");
                }
            }

            /// Appends the `AND …` clauses of a search's `before:` / `after:` days.
            fn push_search_dates(b: &mut QueryBuilder<$db>, q: &Query) {
                if let Some(day) = q.before {
                    b.push(" AND m.sent_at < ");
                    b.push_bind(day_start_micros(day));
                }
                if let Some(day) = q.after {
                    b.push(" AND m.sent_at >= ");
                    b.push_bind(day_start_micros(day));
                }
            }

            /// Appends the `AND …` clauses of a search's filters.
            fn push_search_filters(b: &mut QueryBuilder<$db>, q: &Query) {
                if !q.from.is_empty() {
                    b.push(" AND (");
                    let mut sep = b.separated(" OR ");
                    for user in &q.from {
                        sep.push("lower(m.sender_username) = lower(");
                        sep.push_bind_unseparated(user.clone());
                        sep.push_unseparated(") OR m.sender_id = ");
                        sep.push_bind_unseparated(user.clone());
                    }
                    b.push(")");
                }
                if !q.in_conversation.is_empty() {
                    b.push(" AND (");
                    let mut sep = b.separated(" OR ");
                    for conv in &q.in_conversation {
                        sep.push("m.conversation_id = ");
                        sep.push_bind_unseparated(conv.clone());
                        sep.push_unseparated(" OR lower(c.title) = lower(");
                        sep.push_bind_unseparated(conv.clone());
                        sep.push_unseparated(")");
                    }
                    b.push(")");
                }
                Self::push_search_dates(b, q);
                if q.has_attachment {
                    b.push(
                        " AND EXISTS (SELECT 1 FROM attachments a WHERE a.account_id = m.account_id \
                         AND a.conversation_id = m.conversation_id AND a.message_id = m.message_id)",
                    );
                }
                if q.is_unread {
                    b.push(" AND c.unread = TRUE");
                }
            }

            /// Turns search rows (message columns plus `rank` and `snippet`,
            /// at most `limit + 1`) into a page that starts at `start`.
            async fn search_page(
                &self,
                account: &str,
                rows: Vec<DbRow>,
                limit: i64,
                start: SearchStart,
            ) -> StoreResult<Page<SearchHit>> {
                let has_more = i64::try_from(rows.len()).unwrap_or(i64::MAX) > limit;
                let rows: Vec<DbRow> = rows.into_iter().take(usize::try_from(limit).unwrap_or(usize::MAX)).collect();
                let last = match rows.last() {
                    Some(r) => Some((r.try_get::<i64, _>("sent_at")?, r.try_get::<i64, _>("seq")?)),
                    None => None,
                };
                let messages = self.messages_with_reactions(account, &rows).await?;
                let mut items = Vec::with_capacity(rows.len());
                for (row, message) in rows.iter().zip(messages) {
                    items.push(SearchHit {
                        message,
                        snippet: row.try_get::<Option<String>, _>("snippet")?.unwrap_or_default(),
                        rank: row.try_get("rank")?,
                    });
                }
                let next_cursor = last.filter(|_| has_more).map(|last| start.next(limit, last));
                Ok(Page { items, next_cursor, has_more })
            }
        }

        impl MessageStore for $store {
            fn backend_name(&self) -> &'static str {
                Self::NAME
            }

            fn upsert_account<'a>(&'a self, a: &'a Account) -> StoreFuture<'a, ()> {
                async move {
                    sqlx::query(
                        "INSERT INTO accounts (account_id, connector, backend, user_id, username, base_url, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (account_id) DO UPDATE SET \
                         connector = excluded.connector, backend = excluded.backend, \
                         user_id = COALESCE(excluded.user_id, accounts.user_id), \
                         username = COALESCE(excluded.username, accounts.username), \
                         base_url = excluded.base_url",
                    )
                    .bind(&a.name)
                    .bind(&a.connector)
                    .bind(a.backend.as_str())
                    .bind(a.user_id.as_ref().map(|u| u.as_str()))
                    .bind(a.username.as_deref())
                    .bind(a.base_url.as_deref())
                    .bind(a.created_at.unix_micros())
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }
                .boxed()
            }

            fn get_account<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<Account>> {
                async move {
                    let row = sqlx::query(
                        "SELECT account_id, connector, backend, user_id, username, base_url, created_at \
                         FROM accounts WHERE account_id = $1",
                    )
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(|row| {
                        Ok(Account {
                            name: row.try_get("account_id")?,
                            connector: row.try_get("connector")?,
                            backend: parse_backend(&row.try_get::<String, _>("backend")?),
                            user_id: row.try_get::<Option<String>, _>("user_id")?.map(Into::into),
                            username: row.try_get("username")?,
                            base_url: row.try_get("base_url")?,
                            created_at: ts("accounts.created_at", row.try_get("created_at")?)?,
                        })
                    })
                    .transpose()
                }
                .boxed()
            }

            fn upsert_user<'a>(&'a self, account: &'a str, u: &'a User) -> StoreFuture<'a, ()> {
                async move {
                    let followers = u.follower_count.map(|c| to_i64("follower count", c)).transpose()?;
                    sqlx::query(
                        "INSERT INTO users (account_id, user_id, username, display_name, profile_picture_url, \
                         follows_account, followed_by_account, is_verified, follower_count, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                         ON CONFLICT (account_id, user_id) DO UPDATE SET \
                         username = COALESCE(excluded.username, users.username), \
                         display_name = COALESCE(excluded.display_name, users.display_name), \
                         profile_picture_url = COALESCE(excluded.profile_picture_url, users.profile_picture_url), \
                         follows_account = COALESCE(excluded.follows_account, users.follows_account), \
                         followed_by_account = COALESCE(excluded.followed_by_account, users.followed_by_account), \
                         is_verified = COALESCE(excluded.is_verified, users.is_verified), \
                         follower_count = COALESCE(excluded.follower_count, users.follower_count), \
                         updated_at = excluded.updated_at",
                    )
                    .bind(account)
                    .bind(u.id.as_str())
                    .bind(u.username.as_deref())
                    .bind(u.display_name.as_deref())
                    .bind(u.profile_picture_url.as_deref())
                    .bind(u.follows_account)
                    .bind(u.followed_by_account)
                    .bind(u.is_verified)
                    .bind(followers)
                    .bind(Timestamp::now().unix_micros())
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }
                .boxed()
            }

            fn get_user<'a>(&'a self, account: &'a str, user_id: &'a str) -> StoreFuture<'a, Option<User>> {
                async move {
                    let row = sqlx::query(
                        "SELECT user_id, username, display_name, profile_picture_url, follows_account, \
                         followed_by_account, is_verified, follower_count FROM users \
                         WHERE account_id = $1 AND user_id = $2",
                    )
                    .bind(account)
                    .bind(user_id)
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(|row| {
                        Ok(User {
                            id: row.try_get::<String, _>("user_id")?.into(),
                            username: row.try_get("username")?,
                            display_name: row.try_get("display_name")?,
                            profile_picture_url: row.try_get("profile_picture_url")?,
                            follows_account: row.try_get("follows_account")?,
                            followed_by_account: row.try_get("followed_by_account")?,
                            is_verified: row.try_get("is_verified")?,
                            follower_count: row
                                .try_get::<Option<i64>, _>("follower_count")?
                                .map(|v| to_u64("users.follower_count", v))
                                .transpose()?,
                        })
                    })
                    .transpose()
                }
                .boxed()
            }

            fn upsert_conversation<'a>(&'a self, account: &'a str, c: &'a Conversation) -> StoreFuture<'a, ()> {
                async move {
                    let unread_count = c.unread_count.map(|v| to_i64("unread count", v)).transpose()?;
                    sqlx::query(
                        "INSERT INTO conversations (account_id, conversation_id, kind, title, participants, unread, \
                         unread_count, updated_at, muted, hidden, folder, reply_window_ends_at, is_stub) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, FALSE) \
                         ON CONFLICT (account_id, conversation_id) DO UPDATE SET \
                         kind = excluded.kind, title = COALESCE(excluded.title, conversations.title), \
                         participants = CASE WHEN excluded.participants = '[]' THEN conversations.participants \
                             ELSE excluded.participants END, \
                         unread = excluded.unread, \
                         unread_count = COALESCE(excluded.unread_count, conversations.unread_count), \
                         updated_at = CASE WHEN excluded.updated_at > conversations.updated_at \
                             THEN excluded.updated_at ELSE conversations.updated_at END, \
                         muted = excluded.muted, hidden = excluded.hidden, folder = excluded.folder, \
                         reply_window_ends_at = COALESCE(excluded.reply_window_ends_at, \
                             conversations.reply_window_ends_at), \
                         is_stub = FALSE",
                    )
                    .bind(account)
                    .bind(c.id.as_str())
                    .bind(c.kind.as_str())
                    .bind(c.title.as_deref())
                    .bind(Json(to_json(&c.participants)?))
                    .bind(c.unread)
                    .bind(unread_count)
                    .bind(c.updated_at.map_or(0, |t| t.unix_micros()))
                    .bind(c.muted)
                    .bind(c.hidden)
                    .bind(c.folder.as_str())
                    .bind(c.reply_window_ends_at.map(|t| t.unix_micros()))
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }
                .boxed()
            }

            fn record_activity<'a>(
                &'a self,
                account: &'a str,
                activity: &'a [ConversationActivity],
            ) -> StoreFuture<'a, ()> {
                async move {
                    // One row per conversation: an upsert must not touch the
                    // same row twice in one statement.
                    let mut merged: Vec<ConversationActivity> = activity.to_vec();
                    merged.sort_by(|a, b| a.conversation_id.cmp(&b.conversation_id).then(a.at.cmp(&b.at)));
                    let mut rows: Vec<ConversationActivity> = Vec::with_capacity(merged.len());
                    for a in merged {
                        match rows.last_mut() {
                            Some(last) if last.conversation_id == a.conversation_id => {
                                // `a` is the later one (sorted by time).
                                last.unread = a.unread;
                                last.at = a.at;
                                last.reply_window_ends_at =
                                    last.reply_window_ends_at.max(a.reply_window_ends_at);
                            }
                            _ => rows.push(a),
                        }
                    }
                    let now = Timestamp::now().unix_micros();
                    let mut tx = self.pool.begin().await?;
                    for chunk in rows.chunks(IMPORT_CHUNK) {
                        let mut b = QueryBuilder::<$db>::new("INSERT INTO users (account_id, user_id, updated_at) ");
                        b.push_values(chunk, |mut row, a| {
                            row.push_bind(account).push_bind(a.customer_id.as_str()).push_bind(now);
                        });
                        b.push(" ON CONFLICT (account_id, user_id) DO NOTHING");
                        b.build().execute(&mut *tx).await?;

                        let mut participants = Vec::with_capacity(chunk.len());
                        for a in chunk {
                            participants.push(to_json(&[igdm_model::Participant {
                                id: a.customer_id.as_str().into(),
                                username: None,
                                display_name: None,
                            }])?);
                        }
                        let mut b = QueryBuilder::<$db>::new(
                            "INSERT INTO conversations (account_id, conversation_id, kind, participants, unread, \
                             updated_at, folder, reply_window_ends_at, is_stub) ",
                        );
                        b.push_values(chunk.iter().zip(participants), |mut row, (a, p)| {
                            row.push_bind(account)
                                .push_bind(a.conversation_id.as_str())
                                .push_bind("direct")
                                .push_bind(Json(p))
                                .push_bind(a.unread)
                                .push_bind(a.at.unix_micros())
                                .push_bind("inbox")
                                .push_bind(a.reply_window_ends_at.map(|t| t.unix_micros()))
                                .push_bind(false);
                        });
                        b.push(
                            " ON CONFLICT (account_id, conversation_id) DO UPDATE SET \
                             unread = CASE WHEN conversations.updated_at <= excluded.updated_at \
                                 THEN excluded.unread ELSE conversations.unread END, \
                             updated_at = CASE WHEN excluded.updated_at > conversations.updated_at \
                                 THEN excluded.updated_at ELSE conversations.updated_at END, \
                             reply_window_ends_at = CASE WHEN conversations.reply_window_ends_at IS NULL \
                                 OR excluded.reply_window_ends_at > conversations.reply_window_ends_at \
                                 THEN COALESCE(excluded.reply_window_ends_at, conversations.reply_window_ends_at) \
                                 ELSE conversations.reply_window_ends_at END, \
                             is_stub = FALSE",
                        );
                        b.build().execute(&mut *tx).await?;
                    }
                    tx.commit().await?;
                    Ok(())
                }
                .boxed()
            }

            fn get_conversation<'a>(
                &'a self,
                account: &'a str,
                conversation_id: &'a str,
            ) -> StoreFuture<'a, Option<Conversation>> {
                async move {
                    let sql = format!(
                        "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE account_id = $1 AND conversation_id = $2"
                    );
                    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(account)
                        .bind(conversation_id)
                        .fetch_optional(&self.pool)
                        .await?;
                    row.as_ref().map(Self::row_to_conversation).transpose()
                }
                .boxed()
            }

            fn list_conversations<'a>(
                &'a self,
                account: &'a str,
                filter: &'a ConversationFilter,
                limit: u32,
                cursor: Option<&'a str>,
            ) -> StoreFuture<'a, Page<Conversation>> {
                async move {
                    let limit = page_size(limit);
                    let after = match cursor {
                        None => None,
                        Some(c) => {
                            let f = cursor::decode("conversations", c, 2)?;
                            let t: i64 = f[0].parse().map_err(|_| StoreError::InvalidCursor)?;
                            Some((t, f[1].clone()))
                        }
                    };
                    let mut b = QueryBuilder::<$db>::new(format!(
                        "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE account_id = "
                    ));
                    b.push_bind(account.to_owned());
                    if let Some(unread) = filter.unread {
                        b.push(" AND unread = ").push_bind(unread);
                    }
                    if let Some(folder) = &filter.folder {
                        b.push(" AND folder = ").push_bind(folder.as_str().to_owned());
                    }
                    if let Some((t, id)) = after {
                        b.push(" AND (updated_at < ").push_bind(t);
                        b.push(" OR (updated_at = ").push_bind(t);
                        b.push(" AND conversation_id < ").push_bind(id).push("))");
                    }
                    b.push(" ORDER BY updated_at DESC, conversation_id DESC LIMIT ").push_bind(limit + 1);
                    let rows = b.build().fetch_all(&self.pool).await?;
                    let has_more = i64::try_from(rows.len()).unwrap_or(i64::MAX) > limit;
                    let items = rows
                        .iter()
                        .take(usize::try_from(limit).unwrap_or(usize::MAX))
                        .map(Self::row_to_conversation)
                        .collect::<StoreResult<Vec<_>>>()?;
                    let next_cursor = match (has_more, items.last()) {
                        (true, Some(last)) => Some(cursor::encode(
                            "conversations",
                            &[&last.updated_at.map_or(0, |t| t.unix_micros()).to_string(), last.id.as_str()],
                        )),
                        _ => None,
                    };
                    Ok(Page { items, next_cursor, has_more })
                }
                .boxed()
            }

            fn mark_read<'a>(&'a self, account: &'a str, conversation_id: &'a str, read: bool) -> StoreFuture<'a, ()> {
                async move {
                    let done = sqlx::query(
                        "UPDATE conversations SET unread = $3, \
                         unread_count = CASE WHEN $3 THEN unread_count ELSE 0 END \
                         WHERE account_id = $1 AND conversation_id = $2",
                    )
                    .bind(account)
                    .bind(conversation_id)
                    .bind(!read)
                    .execute(&self.pool)
                    .await?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound(format!("conversation {conversation_id}")));
                    }
                    Ok(())
                }
                .boxed()
            }

            fn upsert_message<'a>(&'a self, account: &'a str, message: &'a Message) -> StoreFuture<'a, ()> {
                async move {
                    self.upsert_messages(account, std::slice::from_ref(message)).await?;
                    Ok(())
                }
                .boxed()
            }

            fn upsert_messages<'a>(&'a self, account: &'a str, messages: &'a [Message]) -> StoreFuture<'a, u64> {
                async move {
                    if messages.is_empty() {
                        return Ok(0);
                    }
                    for m in messages {
                        check_text(m.text.as_deref(), &m.id.0)?;
                    }
                    // One row per key (a statement may not update a row twice); the last copy wins.
                    let mut index: HashMap<(&str, &str), usize> = HashMap::new();
                    let mut distinct: Vec<&Message> = Vec::with_capacity(messages.len());
                    for m in messages {
                        match index.get(&(m.conversation_id.as_str(), m.id.as_str())) {
                            Some(&i) => distinct[i] = m,
                            None => {
                                index.insert((m.conversation_id.as_str(), m.id.as_str()), distinct.len());
                                distinct.push(m);
                            }
                        }
                    }
                    let mut tx = self.pool.begin().await?;
                    // Every conversation row of the batch first, locked in
                    // key order, so that concurrent batches over the same
                    // conversations queue behind each other instead of
                    // deadlocking (PostgreSQL aborts one of them).
                    Self::upsert_conversation_stubs(&mut tx, account, &distinct).await?;
                    // Then the messages in time order, so that the time
                    // indexes (and SQLite's full-text keys, which start with
                    // the minute sent) grow at their end rather than at
                    // random places. The sort is stable: messages sent at
                    // the same time keep their order.
                    distinct.sort_by_key(|m| m.timestamp.unix_micros());
                    for chunk in distinct.chunks(IMPORT_CHUNK) {
                        Self::write_message_chunk(&mut tx, account, chunk).await?;
                    }
                    self.apply_pending_mutations(&mut tx, account).await?;
                    tx.commit().await?;
                    Ok(u64::try_from(distinct.len()).unwrap_or(u64::MAX))
                }
                .boxed()
            }

            fn get_message<'a>(
                &'a self,
                account: &'a str,
                conversation_id: &'a str,
                message_id: &'a str,
            ) -> StoreFuture<'a, Option<Message>> {
                async move {
                    let sql = format!(
                        "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.account_id = $1 \
                         AND m.conversation_id = $2 AND m.message_id = $3"
                    );
                    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(account)
                        .bind(conversation_id)
                        .bind(message_id)
                        .fetch_all(&self.pool)
                        .await?;
                    Ok(self.messages_with_reactions(account, &rows).await?.into_iter().next())
                }
                .boxed()
            }

            fn find_message<'a>(
                &'a self,
                account: &'a str,
                message_id: &'a str,
            ) -> StoreFuture<'a, Option<Message>> {
                async move {
                    let sql = format!(
                        "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.account_id = $1 \
                         AND m.message_id = $2 ORDER BY m.sent_at DESC, m.seq DESC LIMIT 1"
                    );
                    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(account)
                        .bind(message_id)
                        .fetch_all(&self.pool)
                        .await?;
                    Ok(self.messages_with_reactions(account, &rows).await?.into_iter().next())
                }
                .boxed()
            }

            fn put_media_ref<'a>(
                &'a self,
                account: &'a str,
                media: &'a MediaRef,
            ) -> StoreFuture<'a, ()> {
                async move {
                    sqlx::query(
                        "INSERT INTO media_refs (account_id, conversation_id, message_id, position, sha256, \
                         size, mime, stored_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                         ON CONFLICT (account_id, conversation_id, message_id, position) DO UPDATE SET \
                         sha256 = excluded.sha256, size = excluded.size, mime = excluded.mime, \
                         stored_at = excluded.stored_at",
                    )
                    .bind(account)
                    .bind(&media.conversation_id)
                    .bind(&media.message_id)
                    .bind(i64::from(media.position))
                    .bind(&media.sha256)
                    .bind(to_i64("media size", media.size)?)
                    .bind(media.mime.as_deref())
                    .bind(media.stored_at.unix_micros())
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }
                .boxed()
            }

            fn media_refs<'a>(
                &'a self,
                account: &'a str,
                conversation_id: &'a str,
                message_id: &'a str,
            ) -> StoreFuture<'a, Vec<MediaRef>> {
                async move {
                    let rows = sqlx::query(
                        "SELECT conversation_id, message_id, position, sha256, size, mime, stored_at \
                         FROM media_refs WHERE account_id = $1 AND conversation_id = $2 AND message_id = $3 \
                         ORDER BY position",
                    )
                    .bind(account)
                    .bind(conversation_id)
                    .bind(message_id)
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter().map(media_ref_row).collect()
                }
                .boxed()
            }

            fn conversation_media<'a>(
                &'a self,
                account: &'a str,
                conversation_id: &'a str,
            ) -> StoreFuture<'a, Vec<MediaRef>> {
                async move {
                    let rows = sqlx::query(
                        "SELECT conversation_id, message_id, position, sha256, size, mime, stored_at \
                         FROM media_refs WHERE account_id = $1 AND conversation_id = $2 \
                         ORDER BY message_id, position",
                    )
                    .bind(account)
                    .bind(conversation_id)
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter().map(media_ref_row).collect()
                }
                .boxed()
            }

            fn has_media<'a>(&'a self, account: &'a str, sha256: &'a str) -> StoreFuture<'a, bool> {
                async move {
                    let row = sqlx::query(
                        "SELECT 1 AS one FROM media_refs WHERE account_id = $1 AND sha256 = $2 LIMIT 1",
                    )
                    .bind(account)
                    .bind(sha256)
                    .fetch_optional(&self.pool)
                    .await?;
                    Ok(row.is_some())
                }
                .boxed()
            }

            fn media_usage<'a>(&'a self, account: &'a str) -> StoreFuture<'a, MediaUsage> {
                async move {
                    let row = sqlx::query(
                        "SELECT COUNT(*) AS files, CAST(COALESCE(SUM(size), 0) AS BIGINT) AS bytes FROM \
                         (SELECT sha256, MAX(size) AS size FROM media_refs WHERE account_id = $1 \
                          GROUP BY sha256) AS kept",
                    )
                    .bind(account)
                    .fetch_one(&self.pool)
                    .await?;
                    let files: i64 = row.try_get("files")?;
                    let bytes: i64 = row.try_get("bytes")?;
                    Ok(MediaUsage {
                        files: to_u64("media_refs.files", files)?,
                        bytes: to_u64("media_refs.size", bytes)?,
                    })
                }
                .boxed()
            }

            fn list_messages<'a>(
                &'a self,
                account: &'a str,
                conversation_id: &'a str,
                limit: u32,
                cursor: Option<&'a str>,
            ) -> StoreFuture<'a, Page<Message>> {
                async move {
                    let limit = page_size(limit);
                    let after = cursor.map(|c| cursor::decode_pair("messages", c)).transpose()?;
                    let mut b = QueryBuilder::<$db>::new(format!(
                        "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.account_id = "
                    ));
                    b.push_bind(account.to_owned());
                    b.push(" AND m.conversation_id = ").push_bind(conversation_id.to_owned());
                    if let Some((t, seq)) = after {
                        b.push(" AND (m.sent_at < ").push_bind(t);
                        b.push(" OR (m.sent_at = ").push_bind(t);
                        b.push(" AND m.seq < ").push_bind(seq).push("))");
                    }
                    b.push(" ORDER BY m.sent_at DESC, m.seq DESC LIMIT ").push_bind(limit + 1);
                    let mut rows = b.build().fetch_all(&self.pool).await?;
                    let has_more = i64::try_from(rows.len()).unwrap_or(i64::MAX) > limit;
                    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
                    let next_cursor = match (has_more, rows.last()) {
                        (true, Some(last)) => {
                            let t: i64 = last.try_get("sent_at")?;
                            let seq: i64 = last.try_get("seq")?;
                            Some(cursor::encode("messages", &[&t.to_string(), &seq.to_string()]))
                        }
                        _ => None,
                    };
                    let items = self.messages_with_reactions(account, &rows).await?;
                    Ok(Page { items, next_cursor, has_more })
                }
                .boxed()
            }

            fn apply_reaction<'a>(
                &'a self,
                account: &'a str,
                conversation_id: &'a str,
                message_id: &'a str,
                sender_id: &'a str,
                change: &'a ReactionChange,
            ) -> StoreFuture<'a, ()> {
                async move {
                    match change {
                        ReactionChange::Add(emoji) => {
                            sqlx::query(
                                "INSERT INTO reactions (account_id, conversation_id, message_id, sender_id, emoji, \
                                 created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                            )
                            .bind(account)
                            .bind(conversation_id)
                            .bind(message_id)
                            .bind(sender_id)
                            .bind(emoji)
                            .bind(Timestamp::now().unix_micros())
                            .execute(&self.pool)
                            .await?;
                        }
                        ReactionChange::Remove(emoji) => {
                            sqlx::query(
                                "DELETE FROM reactions WHERE account_id = $1 AND conversation_id = $2 \
                                 AND message_id = $3 AND sender_id = $4 AND ($5 IS NULL OR emoji = $5)",
                            )
                            .bind(account)
                            .bind(conversation_id)
                            .bind(message_id)
                            .bind(sender_id)
                            .bind(emoji.as_deref())
                            .execute(&self.pool)
                            .await?;
                        }
                    }
                    Ok(())
                }
                .boxed()
            }

            fn apply_edit<'a>(
                &'a self,
                account: &'a str,
                conversation_id: &'a str,
                message_id: &'a str,
                text: Option<&'a str>,
                edited_at: Timestamp,
            ) -> StoreFuture<'a, MutationOutcome> {
                async move {
                    check_text(text, message_id)?;
                    let key = (account, conversation_id, message_id);
                    let at = edited_at.unix_micros();
                    // The write comes first so the transaction holds the write lock from its start.
                    let mut tx = self.pool.begin().await?;
                    let done = sqlx::query(EDIT_SQL)
                        .bind(account)
                        .bind(conversation_id)
                        .bind(message_id)
                        .bind(text)
                        .bind(fold_for(Self::FOLD_TEXT, text))
                        .bind(at)
                        .execute(&mut *tx)
                        .await?;
                    let outcome = if done.rows_affected() > 0 {
                        MutationOutcome::Applied
                    } else if Self::message_exists(&mut tx, key).await? {
                        MutationOutcome::Stale
                    } else {
                        Self::defer_mutation(&mut tx, key, "edit", text, at).await?;
                        MutationOutcome::Deferred
                    };
                    tx.commit().await?;
                    Ok(outcome)
                }
                .boxed()
            }

            fn apply_deletion<'a>(
                &'a self,
                account: &'a str,
                conversation_id: &'a str,
                message_id: &'a str,
                deleted_at: Timestamp,
            ) -> StoreFuture<'a, MutationOutcome> {
                async move {
                    let key = (account, conversation_id, message_id);
                    let mut tx = self.pool.begin().await?;
                    let done = sqlx::query(DELETE_SQL)
                        .bind(account)
                        .bind(conversation_id)
                        .bind(message_id)
                        .execute(&mut *tx)
                        .await?;
                    let outcome = if done.rows_affected() > 0 {
                        MutationOutcome::Applied
                    } else {
                        Self::defer_mutation(&mut tx, key, "delete", None, deleted_at.unix_micros()).await?;
                        MutationOutcome::Deferred
                    };
                    tx.commit().await?;
                    Ok(outcome)
                }
                .boxed()
            }

            fn get_sync_cursor<'a>(
                &'a self,
                account: &'a str,
                conversation_id: &'a str,
            ) -> StoreFuture<'a, Option<SyncCursor>> {
                async move {
                    let row = sqlx::query(
                        "SELECT newest_seen_at, oldest_seen_at, newest_cursor, oldest_cursor, completed \
                         FROM sync_cursors WHERE account_id = $1 AND conversation_id = $2",
                    )
                    .bind(account)
                    .bind(conversation_id)
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(|row| {
                        Ok(SyncCursor {
                            newest_seen_at: opt_ts("sync_cursors.newest_seen_at", row.try_get("newest_seen_at")?)?,
                            oldest_seen_at: opt_ts("sync_cursors.oldest_seen_at", row.try_get("oldest_seen_at")?)?,
                            newest_cursor: row.try_get("newest_cursor")?,
                            oldest_cursor: row.try_get("oldest_cursor")?,
                            completed: row.try_get("completed")?,
                        })
                    })
                    .transpose()
                }
                .boxed()
            }

            fn set_sync_cursor<'a>(
                &'a self,
                account: &'a str,
                conversation_id: &'a str,
                c: &'a SyncCursor,
            ) -> StoreFuture<'a, ()> {
                async move {
                    sqlx::query(
                        "INSERT INTO sync_cursors (account_id, conversation_id, newest_seen_at, oldest_seen_at, \
                         newest_cursor, oldest_cursor, completed, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                         ON CONFLICT (account_id, conversation_id) DO UPDATE SET \
                         newest_seen_at = excluded.newest_seen_at, oldest_seen_at = excluded.oldest_seen_at, \
                         newest_cursor = excluded.newest_cursor, oldest_cursor = excluded.oldest_cursor, \
                         completed = excluded.completed, updated_at = excluded.updated_at",
                    )
                    .bind(account)
                    .bind(conversation_id)
                    .bind(c.newest_seen_at.map(|t| t.unix_micros()))
                    .bind(c.oldest_seen_at.map(|t| t.unix_micros()))
                    .bind(c.newest_cursor.as_deref())
                    .bind(c.oldest_cursor.as_deref())
                    .bind(c.completed)
                    .bind(Timestamp::now().unix_micros())
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }
                .boxed()
            }

            fn put_raw_payload<'a>(
                &'a self,
                account: &'a str,
                kind: &'a str,
                object_id: &'a str,
                payload: &'a serde_json::Value,
            ) -> StoreFuture<'a, ()> {
                async move {
                    sqlx::query(
                        "INSERT INTO raw_payloads (account_id, object_kind, object_id, payload, fetched_at) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account_id, object_kind, object_id) \
                         DO UPDATE SET payload = excluded.payload, fetched_at = excluded.fetched_at",
                    )
                    .bind(account)
                    .bind(kind)
                    .bind(object_id)
                    .bind(Json(payload))
                    .bind(Timestamp::now().unix_micros())
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }
                .boxed()
            }

            fn get_raw_payload<'a>(
                &'a self,
                account: &'a str,
                kind: &'a str,
                object_id: &'a str,
            ) -> StoreFuture<'a, Option<serde_json::Value>> {
                async move {
                    let row = sqlx::query(
                        "SELECT payload FROM raw_payloads WHERE account_id = $1 AND object_kind = $2 AND object_id = $3",
                    )
                    .bind(account)
                    .bind(kind)
                    .bind(object_id)
                    .fetch_optional(&self.pool)
                    .await?;
                    Ok(row.map(|r| r.try_get::<Json<serde_json::Value>, _>("payload")).transpose()?.map(|j| j.0))
                }
                .boxed()
            }

            fn outbox_begin<'a>(&'a self, new: &'a NewOutbox) -> StoreFuture<'a, OutboxBegin> {
                async move {
                    if new.idempotency_key.is_empty() {
                        return Err(StoreError::InvalidInput("empty idempotency key".into()));
                    }
                    let now = Timestamp::now().unix_micros();
                    let done = sqlx::query(
                        "INSERT INTO outbox (idempotency_key, account_id, conversation_id, recipient_id, payload, \
                         state, attempts, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6) \
                         ON CONFLICT (idempotency_key) DO NOTHING",
                    )
                    .bind(&new.idempotency_key)
                    .bind(&new.account_id)
                    .bind(new.conversation_id.as_deref())
                    .bind(new.recipient_id.as_deref())
                    .bind(Json(&new.payload))
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                    let entry = self
                        .outbox_get(&new.idempotency_key)
                        .await?
                        .ok_or_else(|| StoreError::NotFound(format!("outbox entry {}", new.idempotency_key)))?;
                    Ok(OutboxBegin { entry, created: done.rows_affected() > 0 })
                }
                .boxed()
            }

            fn outbox_mark<'a>(
                &'a self,
                key: &'a str,
                state: OutboxState,
                result: Option<&'a serde_json::Value>,
                error: Option<&'a str>,
            ) -> StoreFuture<'a, OutboxEntry> {
                async move {
                    if state == OutboxState::Unrecognized {
                        return Err(StoreError::InvalidInput("an outbox state this version does not know cannot be written".into()));
                    }
                    let done = sqlx::query(
                        "UPDATE outbox SET state = $2, attempts = attempts + $3, \
                         last_error = COALESCE($4, last_error), result = COALESCE($5, result), updated_at = $6 \
                         WHERE idempotency_key = $1",
                    )
                    .bind(key)
                    .bind(state.as_str())
                    .bind(i64::from(state == OutboxState::Sending))
                    .bind(error)
                    .bind(result.map(Json))
                    .bind(Timestamp::now().unix_micros())
                    .execute(&self.pool)
                    .await?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound(format!("outbox entry {key}")));
                    }
                    self.outbox_get(key).await?.ok_or_else(|| StoreError::NotFound(format!("outbox entry {key}")))
                }
                .boxed()
            }

            fn outbox_get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<OutboxEntry>> {
                async move {
                    let sql = format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE idempotency_key = $1");
                    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(key).fetch_optional(&self.pool).await?;
                    row.as_ref().map(Self::row_to_outbox).transpose()
                }
                .boxed()
            }

            fn outbox_pending<'a>(&'a self) -> StoreFuture<'a, Vec<OutboxEntry>> {
                async move {
                    let sql = format!(
                        "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE state IN ('pending', 'sending', 'unknown') \
                         ORDER BY created_at, idempotency_key"
                    );
                    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await?;
                    rows.iter().map(Self::row_to_outbox).collect()
                }
                .boxed()
            }

            fn outbox_since<'a>(
                &'a self,
                account: &'a str,
                conversation: &'a str,
                since: Timestamp,
            ) -> StoreFuture<'a, Vec<OutboxEntry>> {
                async move {
                    let sql = format!(
                        "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE account_id = $1 \
                         AND (conversation_id = $2 OR recipient_id = $2) AND created_at >= $3 \
                         ORDER BY created_at, idempotency_key"
                    );
                    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(account)
                        .bind(conversation)
                        .bind(since.unix_micros())
                        .fetch_all(&self.pool)
                        .await?;
                    rows.iter().map(Self::row_to_outbox).collect()
                }
                .boxed()
            }

            fn append_delivery<'a>(
                &'a self,
                raw_body: &'a [u8],
                received_at: Timestamp,
            ) -> StoreFuture<'a, DeliveryId> {
                async move {
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO webhook_deliveries (received_at, raw_body) VALUES ($1, $2) RETURNING id",
                    )
                    .bind(received_at.unix_micros())
                    .bind(raw_body)
                    .fetch_one(&self.pool)
                    .await?;
                    Ok(DeliveryId(id))
                }
                .boxed()
            }

            fn get_delivery(&self, id: DeliveryId) -> StoreFuture<'_, Option<Delivery>> {
                async move {
                    let row = sqlx::query(
                        "SELECT id, received_at, raw_body, duplicates FROM webhook_deliveries WHERE id = $1",
                    )
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await?;
                    row.as_ref().map(Self::row_to_delivery).transpose()
                }
                .boxed()
            }

            fn dead_letter<'a>(&'a self, source: DeadLetterSource<'a>, reason: &'a str) -> StoreFuture<'a, i64> {
                async move {
                    let (delivery, body) = match source {
                        DeadLetterSource::Delivery(d) => (Some(d.0), None),
                        DeadLetterSource::RawBody(b) => (None, Some(b)),
                    };
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO webhook_dead_letters (delivery_id, raw_body, reason, created_at) \
                         VALUES ($1, $2, $3, $4) RETURNING id",
                    )
                    .bind(delivery)
                    .bind(body)
                    .bind(reason)
                    .bind(Timestamp::now().unix_micros())
                    .fetch_one(&self.pool)
                    .await?;
                    tracing::warn!(dead_letter = id, delivery = ?delivery, %reason, "webhook dead letter");
                    Ok(id)
                }
                .boxed()
            }

            fn insert_events<'a>(
                &'a self,
                delivery: DeliveryId,
                events: &'a [NewEvent],
            ) -> StoreFuture<'a, InsertedEvents> {
                async move {
                    let now = Timestamp::now().unix_micros();
                    let mut out = InsertedEvents::default();
                    let mut tx = self.pool.begin().await?;
                    for e in events {
                        match Self::insert_event_in(&mut tx, delivery, e, now).await? {
                            Some(id) => out.inserted.push(id),
                            None => out.duplicates.push(e.dedup_key.clone()),
                        }
                    }
                    Self::add_duplicates_in(&mut tx, delivery, out.duplicates.len()).await?;
                    tx.commit().await?;
                    Ok(out)
                }
                .boxed()
            }

            fn record_deliveries<'a>(
                &'a self,
                batch: &'a [NewDelivery<'a>],
            ) -> StoreFuture<'a, Vec<RecordedDelivery>> {
                self.record_group(batch, None).boxed()
            }

            fn record_deliveries_leased<'a>(
                &'a self,
                batch: &'a [NewDelivery<'a>],
                lease: Lease<'a>,
            ) -> StoreFuture<'a, Vec<RecordedDelivery>> {
                self.record_group(batch, Some(lease)).boxed()
            }

            fn append_unexpanded<'a>(
                &'a self,
                batch: &'a [RawDelivery<'a>],
                lease: Option<Lease<'a>>,
            ) -> StoreFuture<'a, Vec<DeliveryId>> {
                async move {
                    if batch.is_empty() {
                        return Ok(Vec::new());
                    }
                    match self.append_unexpanded_native(batch, lease).await? {
                        Some(ids) => Ok(ids),
                        None => self.append_unexpanded_in(batch, lease).await,
                    }
                }
                .boxed()
            }

            fn claim_unexpanded<'a>(
                &'a self,
                owner: &'a str,
                limit: u32,
                lease: std::time::Duration,
            ) -> StoreFuture<'a, Vec<Delivery>> {
                async move {
                    let now = Timestamp::now().unix_micros();
                    let lease = i64::try_from(lease.as_micros())
                        .map_err(|_| StoreError::InvalidInput("lease too long".into()))?;
                    let sql = format!(
                        "{CLAIM_UNEXPANDED_SQL}{}) RETURNING id, received_at, raw_body, duplicates",
                        Self::CLAIM_LOCK
                    );
                    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(owner)
                        .bind(now.saturating_add(lease))
                        .bind(now)
                        .bind(page_size(limit))
                        .fetch_all(&self.pool)
                        .await?;
                    let mut out = rows.iter().map(Self::row_to_delivery).collect::<StoreResult<Vec<_>>>()?;
                    out.sort_by_key(|d| d.id);
                    Ok(out)
                }
                .boxed()
            }

            fn release_unexpanded<'a>(
                &'a self,
                owner: &'a str,
                ids: &'a [DeliveryId],
            ) -> StoreFuture<'a, ()> {
                async move {
                    for chunk in ids.chunks(IMPORT_CHUNK) {
                        let mut b = QueryBuilder::<$db>::new(
                            "UPDATE webhook_deliveries SET lease_owner = NULL, lease_until = NULL \
                             WHERE NOT expanded AND lease_owner = ",
                        );
                        b.push_bind(owner).push(" AND id IN (");
                        let mut sep = b.separated(", ");
                        for id in chunk {
                            sep.push_bind(id.0);
                        }
                        sep.push_unseparated(")");
                        b.build().execute(&self.pool).await?;
                    }
                    Ok(())
                }
                .boxed()
            }

            fn expand_deliveries<'a>(
                &'a self,
                batch: &'a [Expansion<'a>],
                lease: Option<Lease<'a>>,
            ) -> StoreFuture<'a, Vec<Option<RecordedDelivery>>> {
                async move {
                    let now = Timestamp::now().unix_micros();
                    let mut tx = self.pool.begin().await?;
                    // Marking them expanded comes first: the rows this
                    // changes are the deliveries this call expands, and on
                    // PostgreSQL it locks them, so that a concurrent
                    // expansion of one waits, then finds it expanded.
                    let mut mine: std::collections::HashSet<i64> = std::collections::HashSet::new();
                    for chunk in batch.chunks(IMPORT_CHUNK) {
                        let mut b = QueryBuilder::<$db>::new(
                            "UPDATE webhook_deliveries SET expanded = TRUE, lease_owner = NULL, \
                             lease_until = NULL WHERE NOT expanded AND id IN (",
                        );
                        let mut sep = b.separated(", ");
                        for e in chunk {
                            sep.push_bind(e.delivery.0);
                        }
                        sep.push_unseparated(") RETURNING id");
                        let ids: Vec<i64> = b.build_query_scalar().fetch_all(&mut *tx).await?;
                        mine.extend(ids);
                    }
                    // A delivery named twice is expanded for its first entry.
                    let picked: Vec<usize> =
                        (0..batch.len()).filter(|&i| mine.remove(&batch[i].delivery.0)).collect();
                    let parts: Vec<Contents<'_>> = picked
                        .iter()
                        .map(|&i| Contents { events: batch[i].events, dead_letter: batch[i].dead_letter })
                        .collect();
                    let mut out: Vec<RecordedDelivery> =
                        picked.iter().map(|&i| empty_record(batch[i].delivery.0)).collect();
                    if !parts.is_empty() {
                        Self::store_contents_in(&mut tx, &parts, &mut out, lease, now).await?;
                    }
                    tx.commit().await?;
                    let mut results: Vec<Option<RecordedDelivery>> = vec![None; batch.len()];
                    for (i, rec) in picked.into_iter().zip(out) {
                        results[i] = Some(rec);
                    }
                    Ok(results)
                }
                .boxed()
            }

            fn claim_events<'a>(
                &'a self,
                worker: &'a str,
                limit: u32,
                lease: std::time::Duration,
            ) -> StoreFuture<'a, Vec<StoredEvent>> {
                async move {
                    let now = Timestamp::now().unix_micros();
                    let lease = i64::try_from(lease.as_micros())
                        .map_err(|_| StoreError::InvalidInput("lease too long".into()))?;
                    // Expired leases first: they are rare, and under a steady
                    // backlog of pending events they would otherwise wait.
                    let mut events = Vec::new();
                    for head in [CLAIM_EXPIRED_SQL, CLAIM_PENDING_SQL] {
                        let left = page_size(limit) - i64::try_from(events.len()).unwrap_or(i64::MAX);
                        if left <= 0 {
                            break;
                        }
                        let sql = format!("{head}{}) RETURNING {EVENT_COLUMNS}", Self::CLAIM_LOCK);
                        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                            .bind(worker)
                            .bind(now.saturating_add(lease))
                            .bind(now)
                            .bind(left)
                            .fetch_all(&self.pool)
                            .await?;
                        for row in &rows {
                            events.push(Self::row_to_event(row)?);
                        }
                    }
                    events.sort_by_key(|e| e.id);
                    Ok(events)
                }
                .boxed()
            }

            fn complete_event(&self, id: EventId) -> StoreFuture<'_, ()> {
                async move {
                    let done = sqlx::query(
                        "UPDATE webhook_events SET state = 'done', completed_at = $2, lease_owner = NULL, \
                         lease_until = NULL WHERE id = $1",
                    )
                    .bind(id.0)
                    .bind(Timestamp::now().unix_micros())
                    .execute(&self.pool)
                    .await?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound(format!("event {}", id.0)));
                    }
                    Ok(())
                }
                .boxed()
            }

            fn complete_events<'a>(&'a self, ids: &'a [EventId]) -> StoreFuture<'a, ()> {
                async move {
                    for chunk in ids.chunks(IMPORT_CHUNK) {
                        let mut b = QueryBuilder::<$db>::new(
                            "UPDATE webhook_events SET state = 'done', completed_at = ",
                        );
                        b.push_bind(Timestamp::now().unix_micros());
                        b.push(", lease_owner = NULL, lease_until = NULL WHERE id IN ");
                        Self::push_ids(&mut b, chunk);
                        b.build().execute(&self.pool).await?;
                    }
                    Ok(())
                }
                .boxed()
            }

            fn release_events<'a>(&'a self, owner: &'a str, ids: &'a [EventId]) -> StoreFuture<'a, ()> {
                async move {
                    for chunk in ids.chunks(IMPORT_CHUNK) {
                        let mut b = QueryBuilder::<$db>::new(
                            "UPDATE webhook_events SET state = 'pending', lease_owner = NULL, lease_until = NULL, \
                             attempts = attempts - 1 WHERE state = 'processing' AND lease_owner = ",
                        );
                        b.push_bind(owner);
                        b.push(" AND id IN ");
                        Self::push_ids(&mut b, chunk);
                        b.build().execute(&self.pool).await?;
                    }
                    Ok(())
                }
                .boxed()
            }

            fn fail_event<'a>(
                &'a self,
                id: EventId,
                error: &'a str,
                retry_at: Option<Timestamp>,
            ) -> StoreFuture<'a, ()> {
                async move {
                    let state = if retry_at.is_some() { EventState::Pending } else { EventState::Failed };
                    let done = sqlx::query(
                        "UPDATE webhook_events SET state = $2, last_error = $3, \
                         available_at = COALESCE($4, available_at), lease_owner = NULL, lease_until = NULL \
                         WHERE id = $1",
                    )
                    .bind(id.0)
                    .bind(state.as_str())
                    .bind(error)
                    .bind(retry_at.map(|t| t.unix_micros()))
                    .execute(&self.pool)
                    .await?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound(format!("event {}", id.0)));
                    }
                    Ok(())
                }
                .boxed()
            }

            fn get_event(&self, id: EventId) -> StoreFuture<'_, Option<StoredEvent>> {
                async move {
                    let sql = format!("SELECT {EVENT_COLUMNS} FROM webhook_events WHERE id = $1");
                    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id.0).fetch_optional(&self.pool).await?;
                    row.as_ref().map(Self::row_to_event).transpose()
                }
                .boxed()
            }

            fn event_backlog(&self) -> StoreFuture<'_, EventBacklog> {
                async move {
                    let row = sqlx::query(EVENT_BACKLOG_SQL).fetch_one(&self.pool).await?;
                    Ok(EventBacklog {
                        pending: to_u64("count", row.try_get("pending")?)?,
                        processing: to_u64("count", row.try_get("processing")?)?,
                        failed: to_u64("count", row.try_get("failed")?)?,
                        dead_letters: to_u64("count", row.try_get("dead_letters")?)?,
                        unexpanded: to_u64("count", row.try_get("unexpanded")?)?,
                    })
                }
                .boxed()
            }

            fn event_log_counts(&self) -> StoreFuture<'_, EventLogCounts> {
                async move {
                    let row = sqlx::query(
                        "SELECT (SELECT COUNT(*) FROM webhook_deliveries) AS deliveries, \
                         (SELECT CAST(COALESCE(SUM(duplicates), 0) AS BIGINT) FROM webhook_deliveries) AS dedup_hits, \
                         (SELECT COUNT(*) FROM webhook_dead_letters) AS dead_letters, \
                         (SELECT COUNT(*) FROM webhook_deliveries WHERE NOT expanded) AS unexpanded",
                    )
                    .fetch_one(&self.pool)
                    .await?;
                    let mut counts = EventLogCounts {
                        unexpanded: to_u64("count", row.try_get("unexpanded")?)?,
                        deliveries: to_u64("count", row.try_get("deliveries")?)?,
                        dedup_hits: to_u64("count", row.try_get("dedup_hits")?)?,
                        dead_letters: to_u64("count", row.try_get("dead_letters")?)?,
                        ..EventLogCounts::default()
                    };
                    let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM webhook_events GROUP BY state")
                        .fetch_all(&self.pool)
                        .await?;
                    for row in rows {
                        let n = to_u64("count", row.try_get("n")?)?;
                        match EventState::parse(&row.try_get::<String, _>("state")?) {
                            Some(EventState::Pending) => counts.pending = n,
                            Some(EventState::Processing) => counts.processing = n,
                            Some(EventState::Done) => counts.done = n,
                            Some(EventState::Failed) => counts.failed = n,
                            None => {}
                        }
                    }
                    Ok(counts)
                }
                .boxed()
            }

            fn optimize(&self) -> StoreFuture<'_, ()> {
                async move {
                    for sql in Self::OPTIMIZE {
                        sqlx::query(*sql).execute(&self.pool).await?;
                    }
                    Ok(())
                }
                .boxed()
            }

            fn search<'a>(
                &'a self,
                account: &'a str,
                query: &'a Query,
                limit: u32,
                cursor: Option<&'a str>,
            ) -> StoreFuture<'a, Page<SearchHit>> {
                async move {
                    let limit = page_size(limit);
                    let start = SearchStart::of(query, cursor)?;
                    let rows = self.search_rows(account, query, limit + 1, start).await?;
                    self.search_page(account, rows, limit, start).await
                }
                .boxed()
            }
        }
    };
}

pub(crate) use shared_store;
