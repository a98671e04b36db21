//! Per-account state that outlives one process: session health and the write
//! ledger that pacing budgets count. (Sends are recorded in the send ledger,
//! [`crate::ledger`]; the `sends` records older files carry are ignored.)
//!
//! Stored as `$IGDM_HOME/state/<account>.json`, read-modify-written under an
//! exclusive file lock so that several `igdm` processes agree.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::time::Duration;

use chrono::Duration as ChronoDuration;
use serde::{Deserialize, Serialize};

use igdm_model::{SessionState, Timestamp};

use crate::{Error, Home};

/// The persisted state of one account: the one record of its session health
/// (also what the session upkeep and `igdm accounts status` read and write),
/// and the write ledger.
///
/// The session fields sit at the top level of the file (`health`,
/// `last_success_at`, `last_read_at`, …), as they always have.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountState {
    /// Health and the times calls last worked.
    #[serde(flatten)]
    pub session: SessionState,
    /// Times of writes in the last day, oldest first.
    #[serde(default)]
    pub writes: Vec<Timestamp>,
}

impl AccountState {
    /// Drops ledger entries older than a day.
    pub fn prune(&mut self, now: Timestamp) {
        let day_ago = Timestamp(now.0 - ChronoDuration::days(1));
        self.writes.retain(|t| *t > day_ago);
    }

    /// Writes in the window ending at `now`.
    #[must_use]
    pub fn writes_within(&self, now: Timestamp, window: Duration) -> usize {
        let window = ChronoDuration::from_std(window).unwrap_or(ChronoDuration::zero());
        self.writes.iter().filter(|t| t.0 > now.0 - window && t.0 <= now.0).count()
    }
}

/// A handle on the state file of one account.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: std::path::PathBuf,
}

impl StateFile {
    /// The state file of `account` in `home`.
    #[must_use]
    pub fn new(home: &Home, account: &str) -> Self {
        Self { path: home.join("state").join(format!("{account}.json")) }
    }

    /// Reads the state (default when missing).
    ///
    /// # Errors
    /// On I/O or decoding failure.
    pub fn read(&self) -> Result<AccountState, Error> {
        let mut file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(AccountState::default());
            }
            Err(e) => return Err(Error::io(&self.path, e)),
        };
        // A shared lock: readers never wait for each other and never rewrite the file.
        file.lock_shared().map_err(|e| Error::io(&self.path, e))?;
        let mut raw = String::new();
        file.read_to_string(&mut raw).map_err(|e| Error::io(&self.path, e))?;
        let mut state = self.decode(&raw)?;
        state.prune(Timestamp::now());
        Ok(state)
    }

    fn decode(&self, raw: &str) -> Result<AccountState, Error> {
        if raw.trim().is_empty() {
            return Ok(AccountState::default());
        }
        serde_json::from_str(raw)
            .map_err(|e| Error::Config(format!("{}: {e}", self.path.display())))
    }

    /// Locks the file, applies `f` to the state and writes it back.
    ///
    /// # Errors
    /// On I/O or decoding failure.
    pub fn update(&self, f: impl FnOnce(&mut AccountState)) -> Result<AccountState, Error> {
        self.update_with(f).map(|(s, ())| s)
    }

    /// Like [`update`](Self::update), returning what `f` returns.
    ///
    /// # Errors
    /// On I/O or decoding failure.
    pub fn update_with<T>(
        &self,
        f: impl FnOnce(&mut AccountState) -> T,
    ) -> Result<(AccountState, T), Error> {
        let dir = self.path.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let mut opts = std::fs::OpenOptions::new();
        opts.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut file: File = opts.open(&self.path).map_err(|e| Error::io(&self.path, e))?;
        file.lock().map_err(|e| Error::io(&self.path, e))?;
        let mut raw = String::new();
        file.read_to_string(&mut raw).map_err(|e| Error::io(&self.path, e))?;
        let mut state = self.decode(&raw)?;
        state.prune(Timestamp::now());
        let out = f(&mut state);
        let bytes = serde_json::to_vec_pretty(&state)
            .map_err(|e| Error::Config(format!("cannot encode state: {e}")))?;
        file.seek(SeekFrom::Start(0)).map_err(|e| Error::io(&self.path, e))?;
        file.set_len(0).map_err(|e| Error::io(&self.path, e))?;
        file.write_all(&bytes).map_err(|e| Error::io(&self.path, e))?;
        file.sync_data().map_err(|e| Error::io(&self.path, e))?;
        Ok((state, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_survives_and_prunes() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        let file = StateFile::new(&home, "me");
        let now = Timestamp::now();
        file.update(|s| {
            s.writes.push(Timestamp(now.0 - ChronoDuration::hours(30)));
            s.writes.push(Timestamp(now.0 - ChronoDuration::minutes(5)));
        })
        .unwrap();
        let s = file.read().unwrap();
        assert_eq!(s.writes.len(), 1, "entries older than a day are pruned");
        assert_eq!(s.writes_within(now, Duration::from_secs(3600)), 1);
    }

    #[test]
    fn files_written_before_the_session_record_read_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        let old = r#"{"health":{"state":"challenge","url":"https://i/challenge/1/"},
            "last_success_at":"2026-01-02T03:04:05Z","last_read_at":"2026-01-02T03:04:05Z",
            "writes":[],"sends":{"k1":{"at":"2026-01-02T03:04:05Z","state":"sent"}}}"#;
        std::fs::create_dir_all(home.join("state")).unwrap();
        std::fs::write(home.join("state").join("old.json"), old).unwrap();
        let file = StateFile::new(&home, "old");
        let s = file.read().unwrap();
        assert!(matches!(s.session.health, igdm_model::SessionHealth::Challenge { .. }));
        assert!(s.session.last_read_at.is_some() && s.session.last_keep_alive_at.is_none());
        // Written back, the session fields stay at the top level of the file.
        file.update(|s| s.session.last_error = Some("checkpoint".into())).unwrap();
        let raw: serde_json::Value =
            serde_json::from_slice(&std::fs::read(home.join("state").join("old.json")).unwrap())
                .unwrap();
        assert_eq!(raw["health"]["state"], "challenge");
        assert_eq!(raw["last_error"], "checkpoint");
        // Idempotency records of older versions are left behind: sends are
        // in the send ledger now.
        assert!(raw.get("sends").is_none());
    }
}
