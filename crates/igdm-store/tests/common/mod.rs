//! Test harness: a fresh store per test on each backend.
//!
//! SQLite: a database file in a temporary directory. PostgreSQL: the server
//! named by `IGDM_TEST_DATABASE_URL`, in a schema of its own
//! (`igdm_test::pg::PgSchema`, dropped afterwards), so tests can run in
//! parallel processes. A missing server fails the test under CI and is listed
//! as skipped elsewhere (`igdm_test::prereq`).

#![allow(dead_code)]

use igdm_store::{PgStore, SqliteStore, Store};
use igdm_test::pg::PgSchema;
use sqlx::postgres::PgPoolOptions;

/// A store and what must be cleaned up after it.
pub struct Harness {
    pub store: Store,
    _dir: Option<tempfile::TempDir>,
    pg: Option<PgSchema>,
}

impl Harness {
    /// PostgreSQL only: has the server end every connection of this
    /// harness's stores (pooled or not) and answers how many it ended.
    pub async fn terminate_connections(&self) -> u64 {
        let schema = self.pg.as_ref().expect("a PostgreSQL harness");
        let admin = PgPoolOptions::new().max_connections(1).connect(schema.url()).await.unwrap();
        let pids: Vec<i32> =
            sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE application_name = $1")
                .bind(schema.name())
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
            (Store::Postgres(_), Some(schema)) => Store::Postgres(pg_store(schema).await.unwrap()),
            _ => unreachable!(),
        }
    }
}

pub async fn sqlite() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("igdm.db");
    let store = Store::open(&format!("sqlite://{}?mode=rwc", path.display())).await.unwrap();
    Harness { store, _dir: Some(dir), pg: None }
}

/// A store in `schema` on a small pool of its own.
pub async fn pg_store(schema: &PgSchema) -> Result<PgStore, igdm_store::StoreError> {
    schema.store_with(PgStore::pool_options().max_connections(4)).await
}

/// A PostgreSQL store in a fresh schema, or `None` once the missing server is
/// reported (a failure under CI).
pub async fn postgres(test: &str) -> Option<Harness> {
    let schema = PgSchema::create(test).await?;
    let store = pg_store(&schema).await.unwrap();
    Some(Harness { store: Store::Postgres(store), _dir: None, pg: Some(schema) })
}

/// Generates one test per case and backend: `sqlite::NAME` always runs,
/// `postgres::NAME` needs PostgreSQL (see [`postgres`]).
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
                    let Some(h) = $crate::common::postgres(concat!(module_path!(), "::", stringify!($name))).await else { return };
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
