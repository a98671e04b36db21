//! The PostgreSQL backend: `tsvector` search over Rust-folded text, and
//! `FOR UPDATE SKIP LOCKED` claims so several `igdm serve` processes share
//! the webhook event log.

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;
use std::sync::Arc;

use super::pg_spare::{IDLE_PING_AFTER, SpareConnections};

use crate::backend::SearchStart;
use crate::types::{SNIPPET_END, SNIPPET_START};

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Connections for webhook appends, outside the pool (see `pg_spare`).
    appenders: Arc<SpareConnections>,
}

/// Connections per pool ([`PgStore::pool_options`]). Webhook appends keep
/// up to as many again outside the pool, so one store holds at most twice
/// this many connections (and a store with its relaxed handle three times).
pub const POOL_SIZE: u32 = 8;

/// The PostgreSQL schema's migrations.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// [`PgStore::record_deliveries_native`]'s statement. `$1`..`$3`: each
/// delivery's receive time, body and event count; `$4`..`$8`: the events to
/// insert (the first occurrence of each key, in key order so that
/// concurrent groups wait on each other instead of deadlocking) with the
/// position of their delivery; `$9`..`$13`: state, attempts, time and
/// lease. Answers one row per delivery (`n`, `id`) and one per inserted
/// event (`id`, `dedup_key`).
const RECORD_SQL: &str = "\
WITH src AS MATERIALIZED ( \
    SELECT nextval(pg_get_serial_sequence('webhook_deliveries', 'id')) AS id, \
           d.received_at, d.raw_body, d.events, d.n - 1 AS n \
    FROM unnest($1::bigint[], $2::bytea[], $3::bigint[]) WITH ORDINALITY AS d(received_at, raw_body, events, n) \
), ev AS ( \
    INSERT INTO webhook_events (delivery_id, dedup_key, kind, account_id, payload, state, attempts, \
                                available_at, created_at, lease_owner, lease_until) \
    SELECT src.id, e.dedup_key, e.kind, e.account_id, e.payload::jsonb, $9, $10, $11, $11, $12, $13 \
    FROM unnest($4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[]) WITH ORDINALITY \
         AS e(n, dedup_key, kind, account_id, payload, ord) \
    JOIN src ON src.n = e.n \
    ORDER BY e.ord \
    ON CONFLICT (dedup_key) DO NOTHING \
    RETURNING id, dedup_key, delivery_id \
), dl AS ( \
    INSERT INTO webhook_deliveries (id, received_at, raw_body, duplicates) OVERRIDING SYSTEM VALUE \
    SELECT src.id, src.received_at, src.raw_body, \
           src.events - (SELECT count(*) FROM ev WHERE ev.delivery_id = src.id) \
    FROM src ORDER BY src.n \
) \
SELECT src.n, src.id, NULL::text AS dedup_key FROM src \
UNION ALL SELECT NULL, ev.id, ev.dedup_key FROM ev";

/// [`PgStore::append_unexpanded_native`]'s statement: `$1`, `$2` each
/// delivery's receive time and body, `$3`, `$4` the lease.
const APPEND_UNEXPANDED_SQL: &str = "\
INSERT INTO webhook_deliveries (received_at, raw_body, expanded, lease_owner, lease_until) \
SELECT d.received_at, d.raw_body, FALSE, $3, $4 \
FROM unnest($1::bigint[], $2::bytea[]) WITH ORDINALITY AS d(received_at, raw_body, n) \
ORDER BY d.n \
RETURNING id";

impl PgStore {
    /// The dialect's group commit (see the shared `record_group`): one
    /// statement in its own implicit transaction, so one round trip instead
    /// of five (begin, deliveries, events, commit), and one statement text
    /// for every group size, so the connection's
    /// prepared statement is reused instead of parsed and planned anew for
    /// each size. `None` when the group has a dead letter, which the shared
    /// code stores.
    ///
    /// Delivery ids come from the identity's sequence inside the statement,
    /// so events can name their delivery before it is inserted; the foreign
    /// key is checked at the end of the statement. Each delivery's
    /// `duplicates` is its event count less the events this statement
    /// inserted for it.
    async fn record_deliveries_native(
        &self,
        batch: &[NewDelivery<'_>],
        lease: Option<Lease<'_>>,
    ) -> StoreResult<Option<Vec<RecordedDelivery>>> {
        if batch.iter().any(|d| d.dead_letter.is_some()) {
            return Ok(None);
        }
        let mut out: Vec<RecordedDelivery> = batch
            .iter()
            .map(|_| RecordedDelivery {
                id: DeliveryId(0),
                events: InsertedEvents::default(),
                event_ids: Vec::new(),
                dead_letter: None,
            })
            .collect();
        let first = insertion_order(
            batch.iter().enumerate().flat_map(|(i, d)| d.events.iter().map(move |e| (i, e))),
            |e: &NewEvent| e.dedup_key.as_str(),
            &mut out,
        );
        let mut delivery_n = Vec::with_capacity(first.len());
        let mut keys = Vec::with_capacity(first.len());
        let mut kinds = Vec::with_capacity(first.len());
        let mut accounts = Vec::with_capacity(first.len());
        let mut payloads = Vec::with_capacity(first.len());
        for (i, e) in &first {
            delivery_n.push(i64::try_from(*i).unwrap_or(i64::MAX));
            keys.push(e.dedup_key.as_str());
            kinds.push(e.kind.as_str());
            accounts.push(e.account_id.as_str());
            payloads.push(
                serde_json::to_string(&e.payload)
                    .map_err(|err| StoreError::InvalidInput(format!("event payload: {err}")))?,
            );
        }
        let received: Vec<i64> = batch.iter().map(|d| d.received_at.unix_micros()).collect();
        let bodies: Vec<&[u8]> = batch.iter().map(|d| d.raw_body).collect();
        let counts: Vec<i64> =
            batch.iter().map(|d| i64::try_from(d.events.len()).unwrap_or(i64::MAX)).collect();
        // A leased event is stored as `claim_events` leaves it.
        let (state, attempts) =
            if lease.is_some() { ("processing", 1_i64) } else { ("pending", 0) };
        let now = Timestamp::now().unix_micros();
        let rows = sqlx::query(RECORD_SQL)
            .bind(&received)
            .bind(&bodies)
            .bind(&counts)
            .bind(&delivery_n)
            .bind(&keys)
            .bind(&kinds)
            .bind(&accounts)
            .bind(&payloads)
            .bind(state)
            .bind(attempts)
            .bind(now)
            .bind(lease.map(|l| l.owner))
            .bind(lease.map(|l| l.until.unix_micros()))
            .fetch_all(&self.pool)
            .await?;
        let mut stored: HashMap<String, i64> = HashMap::with_capacity(first.len());
        for row in &rows {
            let id: i64 = row.try_get("id")?;
            match row.try_get::<Option<i64>, _>("n")? {
                Some(n) => {
                    let rec =
                        usize::try_from(n).ok().and_then(|n| out.get_mut(n)).ok_or_else(|| {
                            StoreError::corrupt(
                                "webhook_deliveries.id",
                                format!("no delivery {n} in the group"),
                            )
                        })?;
                    rec.id = DeliveryId(id);
                }
                None => {
                    stored.insert(row.try_get("dedup_key")?, id);
                }
            }
        }
        if let Some(missing) = out.iter().position(|r| r.id.0 == 0) {
            return Err(StoreError::corrupt(
                "webhook_deliveries.id",
                format!("delivery {missing} of the group got no id"),
            ));
        }
        settle_events(batch.iter().map(|d| d.events), &first, &mut stored, &mut out);
        Ok(Some(out))
    }

    /// The dialect's `append_unexpanded`: one statement for the whole
    /// group, its own implicit transaction, whatever the group's size (one
    /// prepared statement). Ids come from the identity's sequence row by row
    /// in `ORDER BY` order, so sorted they line up with the input.
    async fn append_unexpanded_native(
        &self,
        batch: &[RawDelivery<'_>],
        lease: Option<Lease<'_>>,
    ) -> StoreResult<Option<Vec<DeliveryId>>> {
        let received: Vec<i64> = batch.iter().map(|d| d.received_at.unix_micros()).collect();
        let bodies: Vec<&[u8]> = batch.iter().map(|d| d.raw_body).collect();
        // A connection of its own rather than the pool's: see `pg_spare`.
        let mut conn = self.appenders.take().await?;
        let mut ids: Vec<i64> = sqlx::query_scalar(APPEND_UNEXPANDED_SQL)
            .bind(&received)
            .bind(&bodies)
            .bind(lease.map(|l| l.owner))
            .bind(lease.map(|l| l.until.unix_micros()))
            .fetch_all(&mut conn)
            .await?;
        self.appenders.put(conn);
        if ids.len() != batch.len() {
            return Err(StoreError::corrupt(
                "webhook_deliveries.id",
                format!("appending {} deliveries returned {} ids", batch.len(), ids.len()),
            ));
        }
        ids.sort_unstable();
        Ok(Some(ids.into_iter().map(DeliveryId).collect()))
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
        let pool = Self::pool_options().connect_with(options).await?;
        Self::from_pool(pool).await
    }

    /// Opens a store at `url` for reading, without the work a writer needs:
    /// one connection, no migrations applied (one query checks that none is
    /// pending). `Ok(None)` when the schema is older than this build (then
    /// [`PgStore::open`] migrates it).
    ///
    /// # Errors
    /// When the server cannot be reached.
    pub async fn open_reader(url: &str) -> StoreResult<Option<Self>> {
        let options = PgConnectOptions::from_str(url)?.options([("jit", "off")]);
        let pool = Self::pool_options().max_connections(1).connect_with(options).await?;
        let applied = sqlx::query_scalar(crate::backend::APPLIED_SCHEMA_SQL).fetch_one(&pool).await;
        if !crate::backend::schema_is_current(&MIGRATOR, applied) {
            pool.close().await;
            return Ok(None);
        }
        let options = (*pool.connect_options()).clone();
        let appenders = Arc::new(SpareConnections::new(options, 1));
        Ok(Some(Self { pool, appenders }))
    }

    /// Uses an existing pool (for example one whose `after_connect` sets a
    /// `search_path`) and applies pending migrations. Configure the pool with
    /// `jit = off` as [`PgStore::open`] does: JIT adds about 100 ms to every
    /// search over a large table, and start from [`PgStore::pool_options`].
    ///
    /// Webhook appends run on connections outside the pool, opened with its
    /// connect options and its current `search_path`; other settings an
    /// `after_connect` hook made do not carry over to them.
    ///
    /// # Errors
    /// When a migration fails or the `search_path` cannot be read.
    pub async fn from_pool(pool: PgPool) -> StoreResult<Self> {
        MIGRATOR.run(&pool).await?;
        let search_path: String = sqlx::query_scalar("SHOW search_path").fetch_one(&pool).await?;
        Ok(Self::with_pool(pool, &search_path))
    }

    /// The pool settings [`PgStore::open`] uses, for callers who build
    /// their own pool (to set a `search_path`, say) for
    /// [`PgStore::from_pool`]: [`POOL_SIZE`] connections, and a liveness
    /// check (one round trip) only for a connection that sat idle for a few
    /// seconds, not on every checkout. A connection that broke while in use
    /// fails the statement that finds out, and the pool drops it.
    #[must_use]
    pub fn pool_options() -> PgPoolOptions {
        PgPoolOptions::new().max_connections(POOL_SIZE).test_before_acquire(false).before_acquire(
            |conn, meta| {
                Box::pin(async move {
                    Ok(meta.idle_for < IDLE_PING_AFTER
                        || sqlx::Connection::ping(conn).await.is_ok())
                })
            },
        )
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
        let pool = Self::pool_options().connect_lazy_with(options);
        Ok(Self::with_pool(pool, &search_path))
    }

    /// The connection pool, for maintenance and benchmarks.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Wraps `pool`; appends get connections of their own with the pool's
    /// connect options and `search_path`.
    fn with_pool(pool: PgPool, search_path: &str) -> Self {
        let options = (*pool.connect_options()).clone().options([("search_path", search_path)]);
        let appenders = Arc::new(SpareConnections::new(options, POOL_SIZE as usize));
        Self { pool, appenders }
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.appenders.close().await;
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

    /// Pushes the whole tsquery of the query's words: groups ANDed,
    /// exclusions negated.
    fn push_full_tsquery(
        b: &mut QueryBuilder<sqlx::Postgres>,
        groups: &[Vec<Vec<String>>],
        excluded: &[Vec<String>],
    ) {
        b.push("(");
        for (i, group) in groups.iter().enumerate() {
            if i > 0 {
                b.push(" && ");
            }
            Self::push_tsquery(b, group, " || ");
        }
        for e in excluded {
            b.push(" && !!");
            Self::push_tsquery(b, std::slice::from_ref(e), "");
        }
        b.push(")");
    }

    /// A page of search rows (message columns, `rank`, `snippet`), at most
    /// `limit` of them, in the page's order.
    ///
    /// Matches are taken newest first (`ORDER BY sent_at DESC, seq DESC`
    /// with a limit), which the planner answers by walking
    /// `messages_by_account_newest` until the page is full, or from the GIN
    /// index and a sort when few messages match. Relevance ranks the newest
    /// [`crate::RELEVANCE_WINDOW`] matches only (`ts_rank` weighs each row
    /// alone, so only the window pays for it), and finds them among the
    /// newest [`crate::RELEVANCE_CANDIDATES`] text matches of the account
    /// within the query's days, the other filters thinning these out, so
    /// that a selective filter cannot make it read further back; newest
    /// first, `rank` is 0.
    async fn search_rows(
        &self,
        account: &str,
        q: &Query,
        limit: i64,
        start: SearchStart,
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
            Self::push_search_start(&mut b, start);
            b.push(" ORDER BY m.sent_at DESC, m.seq DESC LIMIT ").push_bind(limit);
            return Ok(b.build().persistent(false).fetch_all(&self.pool).await?);
        }
        // The tsquery is written out (not taken from a CTE) so that the
        // planner estimates how many rows match and picks its plan by it.
        b.push("WITH hits AS (SELECT m.seq, m.sent_at");
        if matches!(start, SearchStart::Ranked(_)) {
            b.push(", CAST(ts_rank(m.search, ");
            Self::push_full_tsquery(&mut b, &groups, &excluded);
            b.push(", 1) AS DOUBLE PRECISION) AS rank");
        } else {
            b.push(", CAST(0 AS DOUBLE PRECISION) AS rank");
        }
        if matches!(start, SearchStart::Ranked(_)) {
            // The candidates: the newest text matches, before any filter
            // but the days (which bound the index walk).
            b.push(" FROM (SELECT m.* FROM messages m WHERE m.account_id = ");
            b.push_bind(account.to_owned());
            b.push(" AND m.is_deleted = FALSE AND m.search @@ ");
            Self::push_full_tsquery(&mut b, &groups, &excluded);
            Self::push_search_dates(&mut b, q);
            b.push(" ORDER BY m.sent_at DESC, m.seq DESC LIMIT ");
            b.push_bind(i64::from(crate::RELEVANCE_CANDIDATES));
            b.push(") AS m");
        } else {
            b.push(" FROM messages m");
        }
        if !q.in_conversation.is_empty() || q.is_unread {
            b.push(
                " JOIN conversations c ON c.account_id = m.account_id \
                 AND c.conversation_id = m.conversation_id",
            );
        }
        if matches!(start, SearchStart::Ranked(_)) {
            b.push(" WHERE TRUE");
        } else {
            b.push(" WHERE m.account_id = ").push_bind(account.to_owned());
            b.push(" AND m.is_deleted = FALSE AND m.search @@ ");
            Self::push_full_tsquery(&mut b, &groups, &excluded);
        }
        Self::push_search_filters(&mut b, q);
        Self::push_search_start(&mut b, start);
        b.push(" ORDER BY m.sent_at DESC, m.seq DESC LIMIT ");
        let order = match start {
            SearchStart::Ranked(offset) => {
                b.push_bind(i64::from(crate::RELEVANCE_WINDOW));
                b.push("), page AS (SELECT * FROM hits ORDER BY rank DESC, sent_at DESC, seq DESC LIMIT ");
                b.push_bind(limit).push(" OFFSET ").push_bind(offset);
                "page.rank DESC, page.sent_at DESC, page.seq DESC"
            }
            SearchStart::Newest | SearchStart::Before(..) => {
                b.push_bind(limit).push("), page AS (SELECT * FROM hits");
                "page.sent_at DESC, page.seq DESC"
            }
        };
        b.push("), q AS (SELECT ");
        Self::push_full_tsquery(&mut b, &groups, &excluded);
        b.push(format!(
            " AS q) SELECT {MESSAGE_COLUMNS}, page.rank, \
             ts_headline('simple', COALESCE(m.text, ''), q.q, \
             'StartSel=\"{SNIPPET_START}\", StopSel=\"{SNIPPET_END}\", MaxFragments=1, MaxWords=20, MinWords=6, \
             FragmentDelimiter=\"…\"') AS snippet \
             FROM page JOIN messages m ON m.seq = page.seq CROSS JOIN q ORDER BY {order}"
        ));
        // Unnamed statements are planned with the words' own statistics
        // every time; a cached generic plan would pick one plan for common
        // and rare words alike.
        Ok(b.build().persistent(false).fetch_all(&self.pool).await?)
    }
}

crate::backend::shared_store!(PgStore, sqlx::Postgres);
