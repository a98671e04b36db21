//! A fresh PostgreSQL schema per test, so tests in parallel processes share one server.

use std::str::FromStr as _;
use std::time::Duration;

use igdm_store::{PgStore, StoreError};
use sqlx::Executor as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// A schema `igdm_test_<random>` on a server, dropped (with everything in it) on drop.
#[derive(Debug)]
pub struct PgSchema {
    url: String,
    name: String,
}

impl PgSchema {
    /// A fresh schema on the test server ([`crate::prereq::postgres`]); `None` after
    /// reporting PostgreSQL missing.
    ///
    /// # Panics
    /// When the server answers but the schema cannot be created.
    pub async fn create(test: &str) -> Option<Self> {
        let url = crate::prereq::postgres(test).await?;
        Some(Self::create_on(&url).await.expect("create a test schema"))
    }

    /// A fresh schema on the server at `url`.
    ///
    /// # Errors
    /// When the server cannot be reached or refuses the schema.
    pub async fn create_on(url: &str) -> Result<Self, sqlx::Error> {
        let admin = admin(url).await?;
        let name = format!("igdm_test_{:016x}", rand::random::<u64>());
        admin.execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}"))).await?;
        admin.close().await;
        Ok(Self { url: url.to_owned(), name })
    }

    /// The server's URL (without the schema).
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The schema's name; also the `application_name` of its connections, so a test
    /// can find them in `pg_stat_activity`.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The server's URL with the schema as `search_path` (for a process under test).
    #[must_use]
    pub fn url_with_search_path(&self) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}options%5Bsearch_path%5D={}", self.url, self.name)
    }

    /// Connect options whose sessions use the schema (and no JIT, which only slows
    /// the tests' small queries).
    ///
    /// # Panics
    /// When the URL does not parse.
    #[must_use]
    pub fn connect_options(&self) -> PgConnectOptions {
        PgConnectOptions::from_str(&self.url)
            .expect("a PostgreSQL URL")
            .options([("search_path", self.name.as_str()), ("jit", "off")])
            .application_name(&self.name)
    }

    /// A store in the schema on the store's own pool settings.
    ///
    /// # Panics
    /// When the store cannot connect or migrate.
    pub async fn store(&self) -> PgStore {
        self.store_with(PgStore::pool_options()).await.expect("a PostgreSQL store")
    }

    /// A store in the schema on a pool built from `pool`.
    ///
    /// # Errors
    /// When the store cannot connect or migrate.
    pub async fn store_with(&self, pool: PgPoolOptions) -> Result<PgStore, StoreError> {
        let pool = pool
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(self.connect_options())
            .await?;
        PgStore::from_pool(pool).await
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Drop cannot await, and may run inside a runtime: use a thread of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(async move {
                let admin = admin(&url).await.ok()?;
                let sql = format!("DROP SCHEMA IF EXISTS {name} CASCADE");
                let done = admin.execute(sqlx::AssertSqlSafe(sql)).await.ok();
                admin.close().await;
                done
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("could not drop the test schema {}", self.name);
        }
    }
}

async fn admin(url: &str) -> Result<sqlx::PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await
}
