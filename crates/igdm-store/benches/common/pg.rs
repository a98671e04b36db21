//! A PostgreSQL store in a schema of its own for the benchmarks, from
//! `IGDM_BENCH_DATABASE_URL`, else the tests' server (`igdm_test::prereq`:
//! a missing server fails the smoke run under CI and is listed as skipped
//! elsewhere).

use igdm_store::{PgStore, Store};
use igdm_test::pg::PgSchema;

/// The store and its schema (dropped with it); `None` once a missing server is
/// reported.
pub async fn postgres_store(bench: &str) -> Option<(Store, PgSchema)> {
    let url = match std::env::var("IGDM_BENCH_DATABASE_URL") {
        Ok(url) => url,
        Err(_) => igdm_test::prereq::postgres(bench).await?,
    };
    let schema = PgSchema::create_on(&url).await.expect("create a bench schema");
    let pool = PgStore::pool_options().max_connections(4);
    let store = schema.store_with(pool).await.expect("migrate postgres");
    Some((Store::Postgres(store), schema))
}
