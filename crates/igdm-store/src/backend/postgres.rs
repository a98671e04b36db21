//! The PostgreSQL backend: `tsvector` search over Rust-folded text, and
//! `FOR UPDATE SKIP LOCKED` claims so several `igdm serve` processes share
//! the webhook event log.

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;

use crate::types::{SNIPPET_END, SNIPPET_START};

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

const POOL_SIZE: u32 = 8;

impl PgStore {
    /// PostgreSQL has no separate append connection: its group commits are
    /// the shared code's.
    #[allow(clippy::unused_self)]
    fn appender(&self) -> StoreResult<Option<std::sync::Arc<crate::backend::appender::Appender>>> {
        Ok(None)
    }

    const NAME: &'static str = "postgres";
    const FOLD_TEXT: bool = true;
    const CLAIM_LOCK: &'static str = " FOR UPDATE SKIP LOCKED";
    const OPTIMIZE: &'static [&'static str] = &[
        "ANALYZE messages",
        "ANALYZE conversations",
        "ANALYZE attachments",
        "ANALYZE reactions",
        "ANALYZE webhook_events",
    ];

    /// Connects to `url` (`postgres://…`) and applies pending migrations.
    ///
    /// # Errors
    /// When the server cannot be reached or a migration fails.
    pub async fn open(url: &str) -> StoreResult<Self> {
        // JIT compilation costs about 100 ms per query whose estimate crosses
        // `jit_above_cost`; the store's queries are short, so it only adds latency.
        let options = PgConnectOptions::from_str(url)?.options([("jit", "off")]);
        let pool = PgPoolOptions::new().max_connections(POOL_SIZE).connect_with(options).await?;
        Self::from_pool(pool).await
    }

    /// Uses an existing pool (for example one whose `after_connect` sets a
    /// `search_path`) and applies pending migrations. Configure the pool with
    /// `jit = off` as [`PgStore::open`] does: JIT adds about 100 ms to every
    /// search over a large table.
    ///
    /// # Errors
    /// When a migration fails.
    pub async fn from_pool(pool: PgPool) -> StoreResult<Self> {
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }

    /// A second handle on the same database whose commits do not wait for
    /// the WAL flush (`synchronous_commit = off`). PostgreSQL itself
    /// crashing may undo the latest such commits (never half of one, and
    /// always the newest ones); a crash of this process loses nothing once a
    /// commit returned.
    ///
    /// For state that can be rebuilt from something stored durably, such as
    /// applying webhook events whose deliveries were committed on the
    /// durable handle: an undone claim or completion is claimed again, and
    /// applying is idempotent.
    ///
    /// The handle connects with this store's connect options and its current
    /// `search_path`; other settings an `after_connect` hook made do not
    /// carry over.
    ///
    /// # Errors
    /// When the `search_path` cannot be read.
    pub async fn relaxed(&self) -> StoreResult<Self> {
        let search_path: String =
            sqlx::query_scalar("SHOW search_path").fetch_one(&self.pool).await?;
        let options = (*self.pool.connect_options())
            .clone()
            .options([("synchronous_commit", "off"), ("search_path", search_path.as_str())]);
        let pool = PgPoolOptions::new().max_connections(POOL_SIZE).connect_lazy_with(options);
        Ok(Self { pool })
    }

    /// The connection pool, for maintenance and benchmarks.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Pushes a tsquery built from folded token lists: each list is one
    /// `phraseto_tsquery('simple', $n)` with the tokens as a bound parameter,
    /// lists joined by `op`.
    fn push_tsquery(b: &mut QueryBuilder<sqlx::Postgres>, lists: &[Vec<String>], op: &str) {
        b.push("(");
        for (i, tokens) in lists.iter().enumerate() {
            if i > 0 {
                b.push(op);
            }
            b.push("phraseto_tsquery('simple', ").push_bind(tokens.join(" ")).push(")");
        }
        b.push(")");
    }

    async fn search_rows(
        &self,
        account: &str,
        q: &Query,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Vec<DbRow>> {
        let groups = q.token_groups();
        let excluded = q.excluded_tokens();
        let mut b = QueryBuilder::<sqlx::Postgres>::new("");
        if groups.is_empty() {
            b.push(format!(
                "SELECT {MESSAGE_COLUMNS}, CAST(0 AS DOUBLE PRECISION) AS rank, \
                 substr(COALESCE(m.text, ''), 1, 160) AS snippet FROM messages m JOIN conversations c \
                 ON c.account_id = m.account_id AND c.conversation_id = m.conversation_id WHERE m.account_id = "
            ));
            b.push_bind(account.to_owned()).push(" AND m.is_deleted = FALSE");
            if !excluded.is_empty() {
                b.push(" AND NOT (m.search @@ ");
                Self::push_tsquery(&mut b, &excluded, " || ");
                b.push(")");
            }
            Self::push_search_filters(&mut b, q);
            b.push(" ORDER BY m.sent_at DESC, m.seq DESC");
        } else {
            b.push("WITH q AS (SELECT (");
            for (i, group) in groups.iter().enumerate() {
                if i > 0 {
                    b.push(" && ");
                }
                Self::push_tsquery(&mut b, group, " || ");
            }
            for e in &excluded {
                b.push(" && !!");
                Self::push_tsquery(&mut b, std::slice::from_ref(e), "");
            }
            b.push(") AS q), hits AS (SELECT m.seq, m.sent_at, CAST(ts_rank(m.search, q.q, 1) AS DOUBLE PRECISION) AS rank \
                    FROM messages m JOIN conversations c ON c.account_id = m.account_id \
                    AND c.conversation_id = m.conversation_id CROSS JOIN q WHERE m.account_id = ");
            b.push_bind(account.to_owned()).push(" AND m.is_deleted = FALSE AND m.search @@ q.q");
            Self::push_search_filters(&mut b, q);
            b.push(" ORDER BY rank DESC, m.sent_at DESC, m.seq DESC LIMIT ").push_bind(limit);
            b.push(" OFFSET ").push_bind(offset);
            b.push(format!(
                ") SELECT {MESSAGE_COLUMNS}, hits.rank, ts_headline('simple', COALESCE(m.text, ''), q.q, \
                 'StartSel=\"{SNIPPET_START}\", StopSel=\"{SNIPPET_END}\", MaxFragments=1, MaxWords=20, MinWords=6, \
                 FragmentDelimiter=\"…\"') AS snippet \
                 FROM hits JOIN messages m ON m.seq = hits.seq CROSS JOIN q \
                 ORDER BY hits.rank DESC, hits.sent_at DESC, hits.seq DESC"
            ));
            return Ok(b.build().fetch_all(&self.pool).await?);
        }
        b.push(" LIMIT ").push_bind(limit).push(" OFFSET ").push_bind(offset);
        Ok(b.build().fetch_all(&self.pool).await?)
    }
}

crate::backend::shared_store!(PgStore, sqlx::Postgres);
