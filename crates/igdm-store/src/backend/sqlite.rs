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

    /// Uses an existing pool (already configured) and applies pending migrations.
    ///
    /// # Errors
    /// When a migration fails.
    pub async fn from_pool(pool: SqlitePool) -> StoreResult<Self> {
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
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

    async fn search_rows(
        &self,
        account: &str,
        q: &Query,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Vec<DbRow>> {
        let excluded: Vec<String> = q.excluded_tokens().iter().map(|t| fts_phrase(t)).collect();
        let mut b = match Self::fts_positive(q) {
            Some(positive) => {
                let mut expr = positive;
                for e in &excluded {
                    expr.push_str(" NOT ");
                    expr.push_str(e);
                }
                // Rank and page first; `snippet()` is costly, so it runs only
                // for the page's rows. CROSS JOIN fixes the join order: without
                // it SQLite 3.51 may walk every message of the account and
                // probe FTS5 once per row (about 100x slower).
                let mut b = QueryBuilder::<sqlx::Sqlite>::new(
                    "WITH hits AS (SELECT m.seq AS seq, m.sent_at AS sent_at, bm25(messages_fts) AS score \
                     FROM messages_fts CROSS JOIN messages m ON m.seq = messages_fts.rowid \
                     JOIN conversations c ON c.account_id = m.account_id AND c.conversation_id = m.conversation_id \
                     WHERE messages_fts MATCH ",
                );
                b.push_bind(expr.clone())
                    .push(" AND m.account_id = ")
                    .push_bind(account.to_owned());
                b.push(" AND m.is_deleted = FALSE");
                Self::push_search_filters(&mut b, q);
                b.push(" ORDER BY score, m.sent_at DESC, m.seq DESC LIMIT ").push_bind(limit);
                b.push(" OFFSET ").push_bind(offset);
                b.push(format!(
                    ") SELECT {MESSAGE_COLUMNS}, -hits.score AS rank, \
                     snippet(messages_fts, 0, '{SNIPPET_START}', '{SNIPPET_END}', '…', 16) AS snippet \
                     FROM hits CROSS JOIN messages_fts ON messages_fts.rowid = hits.seq \
                     CROSS JOIN messages m ON m.seq = hits.seq WHERE messages_fts MATCH "
                ));
                b.push_bind(expr).push(" ORDER BY hits.score, hits.sent_at DESC, hits.seq DESC");
                return Ok(b.build().fetch_all(&self.pool).await?);
            }
            None => {
                let mut b = QueryBuilder::<sqlx::Sqlite>::new(format!(
                    "SELECT {MESSAGE_COLUMNS}, 0.0 AS rank, substr(COALESCE(m.text, ''), 1, 160) AS snippet \
                     FROM messages m JOIN conversations c ON c.account_id = m.account_id \
                     AND c.conversation_id = m.conversation_id WHERE m.account_id = "
                ));
                b.push_bind(account.to_owned()).push(" AND m.is_deleted = FALSE");
                if !excluded.is_empty() {
                    b.push(" AND m.seq NOT IN (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ");
                    b.push_bind(excluded.join(" OR ")).push(")");
                }
                Self::push_search_filters(&mut b, q);
                b.push(" ORDER BY m.sent_at DESC, m.seq DESC");
                b
            }
        };
        b.push(" LIMIT ").push_bind(limit).push(" OFFSET ").push_bind(offset);
        Ok(b.build().fetch_all(&self.pool).await?)
    }
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
