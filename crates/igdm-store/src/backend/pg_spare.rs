//! PostgreSQL connections kept outside sqlx's pool, for the statement every
//! webhook acknowledgement waits for.
//!
//! sqlx's pool tests each connection it gets back with a round trip to the
//! server, on a task of its own, before anyone else may take it (and by
//! default once more before handing it out). Under a burst of
//! acknowledgements those round trips queued behind the commits: the writer
//! waited about as long for a free connection as for its statement. A
//! connection here goes back the moment its statement succeeded; one whose
//! statement failed, or whose caller was cancelled mid-statement, is dropped
//! instead of being returned, so a connection in an unknown state is never
//! reused.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};

/// A connection idle this long is pinged before it is used again: the
/// server may have restarted, or a firewall dropped it, in the meantime.
pub(crate) const IDLE_PING_AFTER: Duration = Duration::from_secs(5);

/// Idle connections, most recently used last.
pub(crate) struct SpareConnections {
    idle: Mutex<Vec<(PgConnection, Instant)>>,
    options: PgConnectOptions,
    max_idle: usize,
}

impl std::fmt::Debug for SpareConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpareConnections").field("max_idle", &self.max_idle).finish_non_exhaustive()
    }
}

impl SpareConnections {
    /// Connections opened with `options`, at most `max_idle` of them kept.
    pub(crate) fn new(options: PgConnectOptions, max_idle: usize) -> Self {
        Self { idle: Mutex::new(Vec::new()), options, max_idle }
    }

    fn pop(&self) -> Option<(PgConnection, Instant)> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop()
    }

    /// The most recently used idle connection, or a new one.
    pub(crate) async fn take(&self) -> Result<PgConnection, sqlx::Error> {
        while let Some((mut conn, since)) = self.pop() {
            if since.elapsed() < IDLE_PING_AFTER || conn.ping().await.is_ok() {
                return Ok(conn);
            }
            // Dead: dropping it closes the socket.
        }
        PgConnection::connect_with(&self.options).await
    }

    /// Gives back a connection whose statement succeeded.
    pub(crate) fn put(&self, conn: PgConnection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.max_idle {
            idle.push((conn, Instant::now()));
        }
    }

    /// Closes the idle connections.
    pub(crate) async fn close(&self) {
        while let Some((conn, _)) = self.pop() {
            let _ = conn.close().await;
        }
    }
}
