//! Test harness: a fresh store per test on each backend.
//!
//! SQLite: a database file in a temporary directory. PostgreSQL: the server
//! named by `IGDM_TEST_DATABASE_URL`, in a schema of its own
//! (`igdm_test_<random>`, set as `search_path` on every pooled connection and
//! dropped afterwards), so tests can run in parallel processes.

#![allow(dead_code)]

use std::str::FromStr as _;
use std::time::Duration;

use igdm_store::{PgStore, SqliteStore, Store};
use sqlx::Executor as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// A store and what must be cleaned up after it.
pub struct Harness {
    pub store: Store,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl Harness {
    /// PostgreSQL only: has the server end every connection of this
    /// harness's stores (pooled or not) and answers how many it ended.
    pub async fn terminate_connections(&self) -> u64 {
        let (url, schema) = self.pg.as_ref().expect("a PostgreSQL harness");
        let admin = PgPoolOptions::new().max_connections(1).connect(url).await.unwrap();
        let pids: Vec<i32> =
            sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE application_name = $1")
                .bind(schema)
                .fetch_all(&admin)
                .await
                .unwrap();
        let mut ended = 0;
        for pid in pids {
            let done: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1, 5000)")
                .bind(pid)
                .fetch_one(&admin)
                .await
                .unwrap();
            ended += u64::from(done);
        }
        admin.close().await;
        ended
    }

    /// A second store on the same database (another process would see the same).
    pub async fn reopen(&self) -> Store {
        match (&self.store, &self.pg) {
            (Store::Sqlite(_), _) => {
                let dir = self._dir.as_ref().unwrap();
                Store::Sqlite(
                    SqliteStore::open(dir.path().join("igdm.db").to_str().unwrap()).await.unwrap(),
                )
            }
            (Store::Postgres(_), Some((url, schema))) => {
                Store::Postgres(pg_store(url, schema).await.unwrap())
            }
            _ => unreachable!(),
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some((url, schema)) = self.pg.take() {
            // Drop the schema from a separate runtime: Drop cannot await.
            std::thread::spawn(move || {
                let rt =
                    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(async move {
                    if let Ok(pool) = PgPoolOptions::new().max_connections(1).connect(&url).await {
                        let _ = pool
                            .execute(sqlx::AssertSqlSafe(format!(
                                "DROP SCHEMA IF EXISTS {schema} CASCADE"
                            )))
                            .await;
                        pool.close().await;
                    }
                });
            })
            .join()
            .ok();
        }
    }
}

pub async fn sqlite() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("igdm.db");
    let store = Store::open(&format!("sqlite://{}?mode=rwc", path.display())).await.unwrap();
    Harness { store, _dir: Some(dir), pg: None }
}

fn skip(reason: &str) {
    eprintln!("SKIPPED PostgreSQL tests: set IGDM_TEST_DATABASE_URL ({reason})");
}

/// A store on its own pool whose connections use `schema` (which must exist).
pub async fn pg_store(url: &str, schema: &str) -> Result<PgStore, igdm_store::StoreError> {
    let path = schema.to_owned();
    // Named after the schema, so a test can find its own connections.
    let options = PgConnectOptions::from_str(url)?.application_name(schema);
    let pool = PgStore::pool_options()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(5))
        .after_connect(move |conn, _| {
            let path = path.clone();
            Box::pin(async move {
                conn.execute(sqlx::AssertSqlSafe(format!(
                    "SET search_path TO {path}; SET jit = off"
                )))
                .await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await?;
    PgStore::from_pool(pool).await
}

/// A PostgreSQL store in a fresh schema, or `None` (with a loud line) when no
/// server is configured or reachable.
pub async fn postgres() -> Option<Harness> {
    let Ok(url) = std::env::var("IGDM_TEST_DATABASE_URL") else {
        skip("it is unset");
        return None;
    };
    let admin = match PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(3))
        .connect(&url)
        .await
    {
        Ok(p) => p,
        Err(e) => {
            skip(&format!("cannot connect: {e}"));
            return None;
        }
    };
    let schema = format!("igdm_test_{:016x}", rand::random::<u64>());
    admin.execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).await.unwrap();
    admin.close().await;
    let store = pg_store(&url, &schema).await.unwrap();
    Some(Harness { store: Store::Postgres(store), _dir: None, pg: Some((url, schema)) })
}

/// Generates one test per case and backend: `sqlite::NAME` always runs,
/// `postgres::NAME` runs when PostgreSQL is available.
#[macro_export]
macro_rules! conformance {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let h = $crate::common::sqlite().await;
                    super::cases::$name(&h).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(h) = $crate::common::postgres().await else { return };
                    super::cases::$name(&h).await;
                }
            )+
        }
    };
}

/// A text message from customer 42 in `conv`, at a fixed time.
pub fn text_message(conv: &str, id: &str, text: &str) -> igdm_model::Message {
    igdm_model::Message {
        id: id.into(),
        conversation_id: conv.into(),
        sender: igdm_model::Sender {
            id: "42".into(),
            username: None,
            display_name: None,
            is_self: false,
        },
        timestamp: igdm_model::Timestamp::from_unix_seconds(1_700_000_000).unwrap(),
        content_type: igdm_model::ContentType::Text,
        text: Some(text.to_owned()),
        attachments: vec![],
        reactions: vec![],
        reply_to: None,
        is_deleted: false,
        edited_at: None,
        send_status: None,
    }
}
