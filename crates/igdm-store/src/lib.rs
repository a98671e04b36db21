//! igdm's local message store.
//!
//! One [`MessageStore`] trait, two backends sharing their SQL:
//! - SQLite ([`SqliteStore`]): a file in WAL mode with `synchronous = FULL`,
//!   foreign keys and a busy timeout; FTS5 (`unicode61 remove_diacritics 2`,
//!   external content kept in sync by triggers, rowids in time order so that
//!   newest-first search stops at the page size, `snippet()`;
//!   webhook deliveries are appended through a synchronous connection on a
//!   thread of its own; that connection and relaxed handles leave their
//!   file's checkpoints to another thread);
//! - PostgreSQL ([`PgStore`]): a `tsvector` generated from text folded in Rust
//!   ([`fold`]), a GIN index, newest first over `(sent_at, seq)`, `ts_rank`
//!   for `sort:relevance` and `ts_headline`; webhook events are
//!   claimed with `FOR UPDATE SKIP LOCKED`.
//!
//! [`Store::open`] picks the backend from a URL and dereferences to
//! `dyn MessageStore`. The trait's methods return boxed futures so that it is
//! dyn-compatible without macros. Schemas are numbered SQL migrations under
//! `migrations/sqlite/` and `migrations/postgres/`, applied on open.
//!
//! Search input goes through igdm's own syntax ([`query`]); no user text ever
//! reaches FTS5's `MATCH` grammar or `to_tsquery` unquoted.
//!
//! ```no_run
//! # async fn demo() -> Result<(), igdm_store::StoreError> {
//! let store = igdm_store::Store::open("sqlite:///tmp/igdm.db?mode=rwc").await?;
//! let hits = store.search_text("me", "cafe from:alice -late", 20, None).await?;
//! for hit in hits.items {
//!     tracing::info!(message = %hit.message.id, snippet = %hit.snippet, "hit");
//! }
//! # Ok(()) }
//! ```

#![warn(clippy::unwrap_used)]

pub mod api;
pub mod backend;
mod cursor;
pub mod error;
pub mod fold;
pub mod query;
pub mod types;

pub use api::{MessageStore, StoreFuture};
pub use backend::postgres::PgStore;
pub use backend::sqlite::SqliteStore;
pub use error::{StoreError, StoreResult};
pub use igdm_model::Page;
pub use query::{Query, RELEVANCE_CANDIDATES, RELEVANCE_WINDOW, SearchOrder, parse as parse_query};
pub use types::*;

/// A store of either backend, chosen at run time.
#[derive(Debug, Clone)]
pub enum Store {
    /// SQLite.
    Sqlite(SqliteStore),
    /// PostgreSQL.
    Postgres(PgStore),
}

impl Store {
    /// Opens the store at `url` and applies pending migrations.
    ///
    /// `postgres://` or `postgresql://` selects PostgreSQL; `sqlite:…` or a
    /// URL without a scheme (a plain path) selects SQLite, creating the file.
    /// (Reading `IGDM_DATABASE_URL` is the caller's job.)
    ///
    /// # Errors
    /// [`StoreError::UnsupportedUrl`] for another scheme; connection and
    /// migration errors otherwise.
    pub async fn open(url: &str) -> StoreResult<Self> {
        match scheme(url) {
            Some("postgres" | "postgresql") => Ok(Self::Postgres(PgStore::open(url).await?)),
            Some("sqlite") | None => Ok(Self::Sqlite(SqliteStore::open(url).await?)),
            Some(other) => Err(StoreError::UnsupportedUrl { scheme: other.to_owned() }),
        }
    }

    /// Opens the store at `url` for a reader such as a one-off search: no
    /// migrations run when none is pending (one query checks), one
    /// connection, nothing started for writers; SQLite opens the file
    /// read-only. A missing SQLite file or a schema older than this build
    /// falls back to [`Store::open`].
    ///
    /// # Errors
    /// As [`Store::open`].
    pub async fn open_reader(url: &str) -> StoreResult<Self> {
        let reader = match scheme(url) {
            Some("postgres" | "postgresql") => PgStore::open_reader(url).await?.map(Self::Postgres),
            Some("sqlite") | None => SqliteStore::open_reader(url).await?.map(Self::Sqlite),
            Some(other) => return Err(StoreError::UnsupportedUrl { scheme: other.to_owned() }),
        };
        match reader {
            Some(store) => Ok(store),
            None => Self::open(url).await,
        }
    }

    /// A second handle on the same database for rebuildable state, whose
    /// commits do not wait for the disk: see [`SqliteStore::relaxed`] and
    /// [`PgStore::relaxed`].
    ///
    /// # Errors
    /// When PostgreSQL's `search_path` cannot be read.
    pub async fn relaxed(&self) -> StoreResult<Self> {
        Ok(match self {
            Self::Sqlite(s) => Self::Sqlite(s.relaxed()),
            Self::Postgres(s) => Self::Postgres(s.relaxed().await?),
        })
    }

    /// Closes the connection pool.
    pub async fn close(&self) {
        match self {
            Self::Sqlite(s) => s.close().await,
            Self::Postgres(s) => s.close().await,
        }
    }
}

/// The URL scheme, if `url` has one (a Windows drive letter is not one).
impl Store {
    /// The store behind a shareable trait object.
    #[must_use]
    pub fn into_shared(self) -> std::sync::Arc<dyn MessageStore> {
        match self {
            Self::Sqlite(s) => std::sync::Arc::new(s),
            Self::Postgres(s) => std::sync::Arc::new(s),
        }
    }
}

fn scheme(url: &str) -> Option<&str> {
    let (head, _) = url.split_once(':')?;
    let valid = head.len() > 1
        && head.starts_with(|c: char| c.is_ascii_alphabetic())
        && head.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(head)
}

impl std::ops::Deref for Store {
    type Target = dyn MessageStore;

    fn deref(&self) -> &Self::Target {
        match self {
            Self::Sqlite(s) => s,
            Self::Postgres(s) => s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        assert_eq!(scheme("postgres://u@h/db"), Some("postgres"));
        assert_eq!(scheme("sqlite://x.db?mode=rwc"), Some("sqlite"));
        assert_eq!(scheme("/var/lib/igdm.db"), None);
        assert_eq!(scheme("C:\\igdm.db"), None);
        assert_eq!(scheme("mysql://x"), Some("mysql"));
    }
}
