//! A PostgreSQL store in a schema of its own for the benchmarks, from
//! `IGDM_BENCH_DATABASE_URL` or `IGDM_TEST_DATABASE_URL`.

use std::time::Duration;

use igdm_store::Store;
use sqlx::Executor as _;

/// The tests' harness, for its pool set-up.
#[path = "../../tests/common/mod.rs"]
mod harness;

/// The store, the server's URL and the schema's name; `None` when no server
/// is configured or reachable.
pub async fn postgres_store() -> Option<(Store, String, String)> {
    let url = std::env::var("IGDM_BENCH_DATABASE_URL")
        .or_else(|_| std::env::var("IGDM_TEST_DATABASE_URL"))
        .ok()?;
    let admin = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(3))
        .connect(&url)
        .await
        .ok()?;
    let schema = format!("igdm_bench_{:016x}", rand::random::<u64>());
    admin.execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).await.ok()?;
    admin.close().await;
    let store = harness::pg_store(&url, &schema).await.expect("migrate postgres");
    Some((Store::Postgres(store), url, schema))
}

/// Drops what [`postgres_store`] created.
pub async fn drop_schema(url: &str, schema: &str) {
    if let Ok(pool) = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(url).await {
        let _ = pool
            .execute(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE")))
            .await;
        pool.close().await;
    }
}
