//! The store's error type.

/// Everything a store operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database URL names no backend this crate has. Only the scheme is
    /// kept: a URL may carry a password.
    #[error(
        "unsupported database URL scheme {scheme:?}: use sqlite://PATH, a plain path or postgres://"
    )]
    UnsupportedUrl {
        /// The scheme that was given.
        scheme: String,
    },
    /// The database driver failed (connection, constraint, SQL).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The SQLite connection that appends webhook deliveries failed, or its
    /// thread has stopped.
    #[error("database error (webhook log): {0}")]
    LogAppender(String),
    /// Applying the schema migrations failed.
    #[error("schema migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A paging cursor that this store did not hand out (or from another list).
    #[error("invalid paging cursor")]
    InvalidCursor,
    /// An argument the store refuses before touching the database.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The row the operation needs does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A stored value could not be turned back into its type.
    #[error("corrupt stored value in {column}: {detail}")]
    Corrupt {
        /// The column that held the value.
        column: &'static str,
        /// What was wrong with it.
        detail: String,
    },
}

impl StoreError {
    pub(crate) fn corrupt(column: &'static str, detail: impl std::fmt::Display) -> Self {
        Self::Corrupt { column, detail: detail.to_string() }
    }
}

/// Shorthand for results of store operations.
pub type StoreResult<T> = Result<T, StoreError>;
