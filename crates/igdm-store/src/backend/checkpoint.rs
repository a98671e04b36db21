//! Checkpoints of a SQLite database's WAL on a thread of their own.
//!
//! SQLite's automatic checkpoint runs inside whichever commit pushes the WAL
//! past 1,000 pages: that commit copies about 4 MiB into the database file
//! and syncs it. On the webhook log that commit is one an acknowledgement
//! waits for; on the message store it is a burst of writes that every later
//! sync on the same disk (the log's included) queues behind. Handles that
//! write a lot turn automatic checkpoints off and hold a [`Checkpointer`]
//! instead, which copies committed pages every 10 ms: small, frequent
//! checkpoints off the commit path.
//!
//! One checkpointer runs per database file in the process, shared by the
//! handles that hold it, and stops when the last of them is dropped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak, mpsc};
use std::time::Duration;

use rusqlite::Connection;

/// How often committed pages are copied into the database file. A
/// checkpoint of an empty WAL costs next to nothing. The shorter the
/// interval, the less each checkpoint writes at once: in the ingest bench
/// (log and messages in separate files, 2,000 deliveries/s, processing
/// alongside) p99 acknowledgement latency was about 3.4 ms at 10 ms, 4 ms
/// at 20 ms, 5.5 ms at 50 ms and 7 ms at 200 ms; 5 ms was no better than 10.
/// The message store needs it as often as the log: on a slower machine,
/// checkpointing only the message store every 200 ms or 1 s instead of
/// 10 ms took p99 from 11-12 ms to 19-23 and 67-83 ms.
const EVERY: Duration = Duration::from_millis(10);

/// A running checkpoint thread for one database file.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    /// Dropped with the checkpointer, which ends the thread.
    _stop: mpsc::Sender<()>,
}

/// The checkpointers running in this process, by database file.
static RUNNING: Mutex<Option<HashMap<PathBuf, Weak<Checkpointer>>>> = Mutex::new(None);

impl Checkpointer {
    /// The checkpointer for the database file at `path`, started if none
    /// runs yet. Fails when its connection or its thread cannot be set up;
    /// the caller then keeps automatic checkpoints on.
    pub(crate) fn for_file(path: &Path, busy_timeout: Duration) -> Result<Arc<Self>, String> {
        let mut running = RUNNING.lock().map_err(|_| "its registry is poisoned".to_owned())?;
        let running = running.get_or_insert_with(HashMap::new);
        running.retain(|_, c| c.strong_count() > 0);
        if let Some(c) = running.get(path).and_then(Weak::upgrade) {
            return Ok(c);
        }
        let conn = Connection::open(path).map_err(|e| e.to_string())?;
        conn.busy_timeout(busy_timeout).map_err(|e| e.to_string())?;
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("igdm-sqlite-ckpt".into())
            .spawn(move || run(&conn, &stopped))
            .map_err(|e| format!("cannot start its thread: {e}"))?;
        let c = Arc::new(Self { _stop: stop });
        running.insert(path.to_owned(), Arc::downgrade(&c));
        Ok(c)
    }
}

/// Runs passive checkpoints (which never block writers or readers) until
/// `stopped` disconnects. A checkpoint that has reached the end of the WAL
/// lets the next commit start the WAL over, so the file stops growing.
fn run(conn: &Connection, stopped: &mpsc::Receiver<()>) {
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "SQLite checkpoint failed; retrying");
        }
    }
}
