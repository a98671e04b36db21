//! The SQLite backend: one database file in WAL mode, FTS5 for search.
//!
//! Durability: `synchronous = FULL`, so a write is on disk when its commit
//! returns (a webhook delivery survives a power cut once stored). Writers are
//! serialized by SQLite; `busy_timeout` makes a second writer wait instead of
//! failing. Claiming webhook events is one `UPDATE … RETURNING` statement,
//! atomic under SQLite's single writer. Webhook deliveries are appended by
//! the `appender` module: a synchronous connection on a thread of its own.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::backend::appender::Appender;
use crate::backend::checkpoint::Checkpointer;
use crate::backend::{SearchStart, day_start_micros};
use crate::types::{SNIPPET_END, SNIPPET_START};

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The webhook log's group commits, on a connection of their own,
    /// started by the first one and shared by clones.
    appender: std::sync::Arc<LazyAppender>,
    /// On relaxed handles on a file: the thread that checkpoints the WAL,
    /// which their connections never do themselves.
    _checkpoints: Option<std::sync::Arc<Checkpointer>>,
}

/// The database file an appender would write (none for in-memory databases
/// and relaxed handles), and the appender once started.
#[derive(Debug, Default)]
struct LazyAppender {
    path: Option<std::path::PathBuf>,
    started: std::sync::Mutex<Option<std::sync::Arc<Appender>>>,
}

/// The SQLite schema's migrations.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// How long a writer waits for SQLite's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections in the pool: readers run in parallel under WAL, writers queue.
const POOL_SIZE: u32 = 4;

/// Bytes of the database file each connection maps into memory. Every commit
/// on one connection empties the page caches of the others; with the file
/// mapped, they re-read pages from the OS cache without a `pread` and a copy
/// each (about a sixth of the webhook pipeline's CPU time before).
const MMAP_SIZE: u64 = 256 * 1024 * 1024;

impl SqliteStore {
    /// The dialect's group commit (see the shared `record_group`): one job
    /// on the appender's connection; `None` (the shared sqlx code) for
    /// in-memory databases and relaxed handles, which have no appender.
    async fn record_deliveries_native(
        &self,
        batch: &[crate::types::NewDelivery<'_>],
        lease: Option<crate::types::Lease<'_>>,
    ) -> StoreResult<Option<Vec<crate::types::RecordedDelivery>>> {
        match self.appender()? {
            Some(a) => Ok(Some(a.record(batch, lease).await?)),
            None => Ok(None),
        }
    }

    /// The dialect's `append_unexpanded`: one job on the appender's
    /// connection; `None` (the shared sqlx code) where there is no appender.
    async fn append_unexpanded_native(
        &self,
        batch: &[crate::types::RawDelivery<'_>],
        lease: Option<crate::types::Lease<'_>>,
    ) -> StoreResult<Option<Vec<crate::types::DeliveryId>>> {
        match self.appender()? {
            Some(a) => Ok(Some(a.append(batch, lease).await?)),
            None => Ok(None),
        }
    }

    const NAME: &'static str = "sqlite";
    const FOLD_TEXT: bool = false;
    const CLAIM_LOCK: &'static str = "";
    const OPTIMIZE: &'static [&'static str] = &[
        "INSERT INTO messages_fts (messages_fts) VALUES ('optimize')",
        "PRAGMA analysis_limit = 1000",
        "ANALYZE",
        "PRAGMA optimize",
    ];

    /// Opens (creating if needed) the database at `url`: `sqlite://PATH`,
    /// `sqlite:PATH` or a plain file path. Applies pending migrations.
    ///
    /// # Errors
    /// When the file cannot be opened or a migration fails.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let options = if url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url)?
        } else {
            SqliteConnectOptions::new().filename(url)
        };
        Self::connect_with(options).await
    }

    /// Opens a database with caller-built options; igdm's pragmas (WAL,
    /// `synchronous = FULL`, foreign keys, a busy timeout) are applied on top.
    ///
    /// # Errors
    /// When the database cannot be opened or a migration fails.
    pub async fn connect_with(options: SqliteConnectOptions) -> StoreResult<Self> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .pragma("mmap_size", MMAP_SIZE.to_string());
        let pool =
            SqlitePoolOptions::new().max_connections(POOL_SIZE).connect_with(options).await?;
        Self::from_pool(pool).await
    }

    /// Opens an existing database at `url` for reading, without the work a
    /// writer needs: one read-only connection, no migrations applied (one
    /// query checks that none is pending), no appender, no checkpoints.
    /// `Ok(None)` when the file does not exist or its schema is older than
    /// this build (then [`SqliteStore::open`] migrates it).
    ///
    /// # Errors
    /// When the file exists but cannot be read.
    pub async fn open_reader(url: &str) -> StoreResult<Option<Self>> {
        let options = if url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url)?
        } else {
            SqliteConnectOptions::new().filename(url)
        };
        if !options.get_filename().is_file() {
            return Ok(None);
        }
        let options = options
            .read_only(true)
            .create_if_missing(false)
            .busy_timeout(BUSY_TIMEOUT)
            .pragma("mmap_size", MMAP_SIZE.to_string());
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await?;
        let store = Self { pool, appender: std::sync::Arc::default(), _checkpoints: None };
        let applied =
            sqlx::query_scalar(crate::backend::APPLIED_SCHEMA_SQL).fetch_one(store.pool()).await;
        if crate::backend::schema_is_current(&MIGRATOR, applied) {
            Ok(Some(store))
        } else {
            store.close().await;
            Ok(None)
        }
    }

    /// Uses an existing pool (already configured) and applies pending migrations.
    ///
    /// # Errors
    /// When a migration fails.
    pub async fn from_pool(pool: SqlitePool) -> StoreResult<Self> {
        MIGRATOR.run(&pool).await?;
        // In-memory databases have no file a second connection could open.
        let path = pool.connect_options().get_filename().to_owned();
        let appender = LazyAppender { path: path.is_file().then_some(path), ..Default::default() };
        Ok(Self { pool, appender: std::sync::Arc::new(appender), _checkpoints: None })
    }

    /// A second handle on the same database whose commits do not wait for
    /// the disk (`synchronous = NORMAL`). A commit still survives the
    /// process being killed; an OS crash or power cut may undo the latest
    /// such commits, and WAL recovery then keeps a prefix of all commits, so
    /// the database is consistent, only older. A later commit on a durable
    /// handle flushes every earlier one with it.
    ///
    /// For state that can be rebuilt from something stored durably, such as
    /// applying webhook events whose deliveries were committed on the
    /// durable handle: an undone claim or completion is claimed again, and
    /// applying is idempotent.
    ///
    /// Such handles write a lot (the webhook pipeline applies every event
    /// through one), so on a database file their connections leave
    /// checkpoints to a thread of their own (see `checkpoint`), and keep
    /// temporary data (statement journals, sorts) in memory instead of in
    /// short-lived files.
    #[must_use]
    pub fn relaxed(&self) -> Self {
        let mut options = (*self.pool.connect_options())
            .clone()
            .synchronous(SqliteSynchronous::Normal)
            .pragma("temp_store", "memory");
        let path = options.get_filename().to_owned();
        let checkpoints = if path.is_file() {
            match Checkpointer::for_file(&path, BUSY_TIMEOUT) {
                Ok(c) => {
                    options = options.pragma("wal_autocheckpoint", "0");
                    Some(c)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "no checkpoint thread; commits checkpoint the WAL themselves");
                    None
                }
            }
        } else {
            None
        };
        let pool = SqlitePoolOptions::new().max_connections(POOL_SIZE).connect_lazy_with(options);
        Self { pool, appender: std::sync::Arc::default(), _checkpoints: checkpoints }
    }

    /// The connection that appends webhook deliveries, started on first
    /// use so that stores which never record a delivery run no extra
    /// threads; `None` where there is no file to open it on.
    fn appender(&self) -> StoreResult<Option<std::sync::Arc<Appender>>> {
        let Some(path) = &self.appender.path else { return Ok(None) };
        let mut started = self
            .appender
            .started
            .lock()
            .map_err(|_| StoreError::LogAppender("its start-up panicked".into()))?;
        if let Some(a) = &*started {
            return Ok(Some(a.clone()));
        }
        let a = std::sync::Arc::new(Appender::open(path, BUSY_TIMEOUT, MMAP_SIZE)?);
        *started = Some(a.clone());
        Ok(Some(a))
    }

    /// The connection pool, for maintenance and benchmarks.
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Compiles the query's text part to an FTS5 expression: every term quoted
    /// (so no user text is FTS5 syntax), groups ANDed, alternatives ORed.
    fn fts_positive(q: &Query) -> Option<String> {
        let groups = q.token_groups();
        if groups.is_empty() {
            return None;
        }
        let parts: Vec<String> = groups
            .iter()
            .map(|g| {
                format!("({})", g.iter().map(|t| fts_phrase(t)).collect::<Vec<_>>().join(" OR "))
            })
            .collect();
        Some(parts.join(" AND "))
    }

    /// A page of search rows (message columns, `rank`, `snippet`), at most
    /// `limit` of them, in the page's order.
    async fn search_rows(
        &self,
        account: &str,
        q: &Query,
        limit: i64,
        start: SearchStart,
    ) -> StoreResult<Vec<DbRow>> {
        let excluded: Vec<String> = q.excluded_tokens().iter().map(|t| fts_phrase(t)).collect();
        let Some(mut expr) = Self::fts_positive(q) else {
            let mut b = QueryBuilder::<sqlx::Sqlite>::new(format!(
                "SELECT {MESSAGE_COLUMNS}, 0.0 AS rank, substr(COALESCE(m.text, ''), 1, 160) AS snippet \
                 FROM messages m JOIN conversations c ON c.account_id = m.account_id \
                 AND c.conversation_id = m.conversation_id WHERE m.account_id = "
            ));
            b.push_bind(account.to_owned()).push(" AND m.is_deleted = FALSE");
            if !excluded.is_empty() {
                b.push(" AND m.fts_key NOT IN (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ");
                b.push_bind(excluded.join(" OR ")).push(")");
            }
            Self::push_search_filters(&mut b, q);
            Self::push_search_start(&mut b, start);
            b.push(" ORDER BY m.sent_at DESC, m.seq DESC LIMIT ").push_bind(limit);
            return Ok(b.build().fetch_all(&self.pool).await?);
        };
        for e in &excluded {
            expr.push_str(" NOT ");
            expr.push_str(e);
        }
        match start {
            SearchStart::Ranked(offset) => self.ranked(account, q, &expr, limit, offset).await,
            SearchStart::Newest | SearchStart::Before(..) => {
                self.newest(account, q, &expr, limit, start).await
            }
        }
    }

    /// The `limit` newest matches of `expr` that pass the query's filters,
    /// newest first, after `start`.
    ///
    /// The index is walked newest minute first, so the walk stops once it
    /// holds `limit` matches; within a minute the index is in `seq` order,
    /// so the rest of the last minute reached is read too before sorting.
    async fn newest(
        &self,
        account: &str,
        q: &Query,
        expr: &str,
        limit: i64,
        start: SearchStart,
    ) -> StoreResult<Vec<DbRow>> {
        let below = match start {
            // Keys of later minutes cannot pass the start.
            SearchStart::Before(sent_at, _) => fts_minute(sent_at).checked_add(1 << SEQ_BITS),
            _ => None,
        };
        let walk = Walk { below, limit, start, ..Walk::default() };
        let mut rows = self.walk(account, q, expr, walk).await?;
        let full = i64::try_from(rows.len()).is_ok_and(|n| n >= limit);
        if let Some(last) = rows.last().filter(|_| full) {
            let key: i64 = last.try_get("k")?;
            let rest =
                Walk { below: Some(key), from: Some(key & !SEQ_MASK), start, ..Walk::default() };
            rows.extend(self.walk(account, q, expr, rest).await?);
        }
        let mut keyed = Vec::with_capacity(rows.len());
        for row in rows {
            keyed.push(((row.try_get::<i64, _>("sent_at")?, row.try_get::<i64, _>("seq")?), row));
        }
        keyed.sort_by_key(|(key, _)| std::cmp::Reverse(*key));
        keyed.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(keyed.into_iter().map(|(_, row)| row).collect())
    }

    /// A page of the newest [`crate::RELEVANCE_WINDOW`] matches ranked by
    /// BM25, best first, `offset` into the ranking.
    ///
    /// The window is taken from the newest [`crate::RELEVANCE_CANDIDATES`]
    /// matches of `expr` in the account (deleted messages and those outside
    /// the `before:` / `after:` days left out, the days bounding the index
    /// walk): the other filters only thin these candidates out, so a
    /// selective filter cannot make the walk read further back.
    ///
    /// FTS5's `bm25()` reads every match of each word to weigh it (a full
    /// doclist for a common word), so the window is scored here instead,
    /// with the words' weights taken from the window itself.
    async fn ranked(
        &self,
        account: &str,
        q: &Query,
        expr: &str,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Vec<DbRow>> {
        let mut b = QueryBuilder::<sqlx::Sqlite>::new(format!(
            "SELECT m.k, m.seq, m.sent_at, m.text FROM (SELECT messages_fts.rowid AS k, m.* \
             FROM messages_fts CROSS JOIN messages m ON m.seq = (messages_fts.rowid & {SEQ_MASK}) \
             WHERE messages_fts MATCH "
        ));
        b.push_bind(expr.to_owned());
        if let Some(key) = q.before.and_then(|d| fts_day_key(day_start_micros(d))) {
            b.push(" AND messages_fts.rowid < ").push_bind(key);
        }
        if let Some(key) = q.after.and_then(|d| fts_day_key(day_start_micros(d))) {
            b.push(" AND messages_fts.rowid >= ").push_bind(key);
        }
        b.push(" AND m.account_id = ").push_bind(account.to_owned());
        b.push(" AND m.is_deleted = FALSE");
        Self::push_search_dates(&mut b, q);
        b.push(" ORDER BY messages_fts.rowid DESC LIMIT ");
        b.push_bind(i64::from(crate::RELEVANCE_CANDIDATES));
        b.push(") AS m");
        if !q.in_conversation.is_empty() || q.is_unread {
            b.push(
                " CROSS JOIN conversations c ON c.account_id = m.account_id \
                 AND c.conversation_id = m.conversation_id",
            );
        }
        b.push(" WHERE TRUE");
        Self::push_search_filters(&mut b, q);
        b.push(" ORDER BY m.k DESC LIMIT ").push_bind(i64::from(crate::RELEVANCE_WINDOW));
        let rows = b.build().fetch_all(&self.pool).await?;
        let mut docs = Vec::with_capacity(rows.len());
        for row in &rows {
            let text: Option<String> = row.try_get("text")?;
            docs.push(crate::fold::tokens(text.as_deref().unwrap_or("")));
        }
        let phrases: Vec<Vec<String>> = q.token_groups().into_iter().flatten().collect();
        let scores = bm25(&docs, &phrases);
        let mut order: Vec<(f64, i64, i64, i64)> = Vec::with_capacity(rows.len());
        for (row, score) in rows.iter().zip(scores) {
            order.push((score, row.try_get("sent_at")?, row.try_get("seq")?, row.try_get("k")?));
        }
        order.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)).then(b.2.cmp(&a.2)));
        let page: Vec<(f64, i64, i64, i64)> = order
            .into_iter()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .collect();
        let (Some(low), Some(high)) =
            (page.iter().map(|p| p.3).min(), page.iter().map(|p| p.3).max())
        else {
            return Ok(Vec::new());
        };
        // The page's rows with their snippets: the part of the window that
        // holds them walked again, keeping only them.
        let scores: serde_json::Map<String, serde_json::Value> =
            page.iter().map(|p| (p.3.to_string(), p.0.into())).collect();
        let mut b = QueryBuilder::<sqlx::Sqlite>::new(format!(
            "SELECT {MESSAGE_COLUMNS}, CAST(s.value AS REAL) AS rank, \
             snippet(messages_fts, 0, '{SNIPPET_START}', '{SNIPPET_END}', '…', 16) AS snippet \
             FROM messages_fts CROSS JOIN messages m ON m.seq = (messages_fts.rowid & {SEQ_MASK}) \
             CROSS JOIN json_each("
        ));
        b.push_bind(serde_json::Value::Object(scores).to_string());
        b.push(") AS s WHERE messages_fts MATCH ").push_bind(expr.to_owned());
        b.push(" AND messages_fts.rowid >= ").push_bind(low);
        b.push(" AND messages_fts.rowid <= ").push_bind(high);
        b.push(" AND CAST(s.key AS INTEGER) = +messages_fts.rowid");
        let rows = b.build().fetch_all(&self.pool).await?;
        let position: std::collections::HashMap<i64, usize> =
            page.iter().enumerate().map(|(i, p)| (p.2, i)).collect();
        let mut keyed = Vec::with_capacity(rows.len());
        for row in rows {
            let seq: i64 = row.try_get("seq")?;
            keyed.push((position.get(&seq).copied().unwrap_or(usize::MAX), row));
        }
        keyed.sort_by_key(|(i, _)| *i);
        Ok(keyed.into_iter().map(|(_, row)| row).collect())
    }

    /// Walks the full-text index from the newest key down, joining each
    /// match to its message and applying the filters as it goes, until
    /// `limit` matches passed (`-1`: no limit). Only the rows returned
    /// pay for the columns (the snippet above all).
    async fn walk(
        &self,
        account: &str,
        q: &Query,
        expr: &str,
        walk: Walk,
    ) -> StoreResult<Vec<DbRow>> {
        let mut b = QueryBuilder::<sqlx::Sqlite>::new(format!(
            "SELECT messages_fts.rowid AS k, {MESSAGE_COLUMNS}, 0.0 AS rank, \
             snippet(messages_fts, 0, '{SNIPPET_START}', '{SNIPPET_END}', '…', 16) AS snippet \
             FROM messages_fts \
             CROSS JOIN messages m ON m.seq = (messages_fts.rowid & {SEQ_MASK})"
        ));
        if !q.in_conversation.is_empty() || q.is_unread {
            b.push(
                " CROSS JOIN conversations c ON c.account_id = m.account_id \
                 AND c.conversation_id = m.conversation_id",
            );
        }
        b.push(" WHERE messages_fts MATCH ").push_bind(expr.to_owned());
        if let Some(below) = walk.below {
            b.push(" AND messages_fts.rowid < ").push_bind(below);
        }
        if let Some(from) = walk.from {
            b.push(" AND messages_fts.rowid >= ").push_bind(from);
        }
        b.push(" AND m.account_id = ").push_bind(account.to_owned());
        b.push(" AND m.is_deleted = FALSE");
        Self::push_search_filters(&mut b, q);
        Self::push_search_start(&mut b, walk.start);
        b.push(" ORDER BY messages_fts.rowid DESC LIMIT ").push_bind(walk.limit);
        Ok(b.build().fetch_all(&self.pool).await?)
    }
}

/// Bits of a full-text key that hold the message's `seq` (the rest hold
/// its minute; see migration 0005).
const SEQ_BITS: u32 = 36;
/// The `seq` part of a full-text key.
const SEQ_MASK: i64 = (1 << SEQ_BITS) - 1;

/// The smallest full-text key of the day starting at `day_start` (Unix µs),
/// when keys order messages around it exactly: every message sent before
/// it has a smaller key, every one sent from it on a key at least as large
/// (not so outside the range of minutes keys hold, where they are clamped).
fn fts_day_key(day_start: i64) -> Option<i64> {
    let minute = day_start / 60_000_000;
    (day_start >= 0 && day_start % 60_000_000 == 0 && minute < (1 << 27) - 1)
        .then(|| fts_minute(day_start))
}

/// The smallest full-text key of the minute `sent_at` (Unix µs) falls in,
/// as migration 0005 computes it.
fn fts_minute(sent_at: i64) -> i64 {
    (sent_at.max(0) / 60_000_000).min((1 << 27) - 1) << SEQ_BITS
}

/// One walk over the full-text index.
#[derive(Debug, Clone, Copy)]
struct Walk {
    /// Only keys below this one.
    below: Option<i64>,
    /// Only keys from this one up.
    from: Option<i64>,
    /// At most this many matches (`-1`: all).
    limit: i64,
    /// The page's start (a newest-first cursor restricts the matches).
    start: SearchStart,
}

impl Default for Walk {
    fn default() -> Self {
        Self { below: None, from: None, limit: -1, start: SearchStart::Newest }
    }
}

/// Okapi BM25 (k1 = 1.2, b = 0.75, FTS5's constants) of each document
/// (folded tokens) for the phrases (folded token lists), with document
/// frequencies and the mean length taken from `docs`; higher is better.
fn bm25(docs: &[Vec<String>], phrases: &[Vec<String>]) -> Vec<f64> {
    const K1: f64 = 1.2;
    const B: f64 = 0.75;
    let occurrences = |doc: &[String], phrase: &[String]| -> f64 {
        if phrase.is_empty() || doc.len() < phrase.len() {
            return 0.0;
        }
        let hits = doc.windows(phrase.len()).filter(|w| *w == phrase).count();
        f64::from(u32::try_from(hits).unwrap_or(u32::MAX))
    };
    let count = |n: usize| f64::from(u32::try_from(n).unwrap_or(u32::MAX));
    let n = count(docs.len());
    let mean_len = docs.iter().map(|d| count(d.len())).sum::<f64>() / n.max(1.0);
    let tf: Vec<Vec<f64>> =
        docs.iter().map(|d| phrases.iter().map(|p| occurrences(d, p)).collect()).collect();
    let idf: Vec<f64> = (0..phrases.len())
        .map(|i| {
            let with = count(tf.iter().filter(|t| t[i] > 0.0).count());
            ((n - with + 0.5) / (with + 0.5) + 1.0).ln()
        })
        .collect();
    docs.iter()
        .zip(&tf)
        .map(|(d, t)| {
            let norm = K1 * (1.0 - B + B * count(d.len()) / mean_len.max(1.0));
            t.iter().zip(&idf).map(|(f, w)| w * f * (K1 + 1.0) / (f + norm)).sum()
        })
        .collect()
}

/// One FTS5 phrase: the tokens inside double quotes, quotes doubled.
fn fts_phrase(tokens: &[String]) -> String {
    format!("\"{}\"", tokens.join(" ").replace('"', "\"\""))
}

crate::backend::shared_store!(SqliteStore, sqlx::Sqlite);

#[cfg(test)]
mod tests {
    use sqlx::Row as _;

    use super::SqliteStore;
    use crate::backend::{
        CLAIM_EXPIRED_SQL, CLAIM_PENDING_SQL, CLAIM_UNEXPANDED_SQL, EVENT_BACKLOG_SQL,
    };

    /// The `detail` lines of an `EXPLAIN QUERY PLAN` query.
    async fn plan(
        store: &SqliteStore,
        query: sqlx::query::Query<'_, sqlx::Sqlite, <sqlx::Sqlite as sqlx::Database>::Arguments>,
    ) -> Vec<String> {
        let rows = query.fetch_all(store.pool()).await.unwrap();
        rows.iter().map(|r| r.get::<String, _>("detail")).collect()
    }

    /// Claims must read a partial index and stop at the limit: a plan that
    /// scans `webhook_events` costs time in proportion to every event ever
    /// received, done ones included.
    #[tokio::test]
    async fn claims_read_their_partial_index_instead_of_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("plan.db").to_str().unwrap()).await.unwrap();
        for (head, index) in [
            (CLAIM_EXPIRED_SQL, "webhook_events_leased"),
            (CLAIM_PENDING_SQL, "webhook_events_ready"),
            (CLAIM_UNEXPANDED_SQL, "webhook_deliveries_unexpanded"),
        ] {
            let sql = format!("EXPLAIN QUERY PLAN {head}) RETURNING id");
            let query = sqlx::query(sqlx::AssertSqlSafe(sql));
            let plan = plan(&store, query.bind("w").bind(1_i64).bind(1_i64).bind(10_i64)).await;
            assert!(plan.iter().any(|d| d.contains(index)), "{head}: {plan:?}");
            assert!(
                // The unexpanded index holds only the backlog, so a scan of it is bounded.
                !plan.iter().any(|d| d.starts_with("SCAN webhook_events")
                    || (d.starts_with("SCAN webhook_deliveries")
                        && !d.contains("webhook_deliveries_unexpanded"))),
                "{head}: {plan:?}"
            );
        }
    }

    /// A metrics scrape counts the backlog from partial indexes: its cost
    /// must not grow with every event ever received.
    #[tokio::test]
    async fn the_backlog_is_counted_from_partial_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("plan.db").to_str().unwrap()).await.unwrap();
        let sql = format!("EXPLAIN QUERY PLAN {EVENT_BACKLOG_SQL}");
        let plan = plan(&store, sqlx::query(sqlx::AssertSqlSafe(sql))).await;
        for index in [
            "webhook_events_ready",
            "webhook_events_leased",
            "webhook_events_failed",
            "webhook_deliveries_unexpanded",
        ] {
            assert!(plan.iter().any(|d| d.contains(index)), "{index}: {plan:?}");
        }
        assert!(
            !plan.iter().any(|d| (d.starts_with("SCAN webhook_events")
                || d.starts_with("SCAN webhook_deliveries"))
                && !d.contains("INDEX")),
            "{plan:?}"
        );
    }
}
