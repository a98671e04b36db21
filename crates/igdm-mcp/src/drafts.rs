//! Drafts: writes held for the user's approval, one JSON file each under
//! `$IGDM_HOME/drafts/`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use igdm_model::Timestamp;

use crate::McpError;

/// Where a draft stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DraftStatus {
    /// Waiting for the user.
    Pending,
    /// Approved and carried out.
    Sent,
    /// Approved, but the call failed.
    Failed,
    /// Rejected by the user.
    Rejected,
}

/// A write held for approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Draft {
    /// The draft id.
    pub id: String,
    /// The account it acts as.
    pub account: String,
    /// The tool to run on approval.
    pub tool: String,
    /// Its arguments (sends carry their idempotency key, so approving twice sends once).
    pub arguments: Map<String, Value>,
    /// When the model asked for it.
    pub created_at: Timestamp,
    /// Where it stands.
    pub status: DraftStatus,
    /// When it was approved or rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<Timestamp>,
    /// The tool's output once carried out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
}

/// The drafts directory.
#[derive(Debug, Clone)]
pub struct Drafts {
    dir: PathBuf,
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

impl Drafts {
    /// Drafts kept in `dir`.
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, id: &str) -> Result<PathBuf, McpError> {
        if !valid_id(id) {
            return Err(McpError::NoDraft(id.to_owned()));
        }
        Ok(self.dir.join(format!("{id}.json")))
    }

    /// Stores a new pending draft and returns it.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn create(
        &self,
        account: &str,
        tool: &str,
        arguments: Map<String, Value>,
    ) -> Result<Draft, McpError> {
        let draft = Draft {
            id: uuid::Uuid::now_v7().simple().to_string(),
            account: account.to_owned(),
            tool: tool.to_owned(),
            arguments,
            created_at: Timestamp::now(),
            status: DraftStatus::Pending,
            decided_at: None,
            result: None,
        };
        self.save(&draft)?;
        Ok(draft)
    }

    /// Writes `draft` back.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn save(&self, draft: &Draft) -> Result<(), McpError> {
        let path = self.path(&draft.id)?;
        let bytes = serde_json::to_vec_pretty(draft).map_err(|e| McpError::Draft(e.to_string()))?;
        igdm::home::write_private(&path, &bytes).map_err(|e| McpError::Draft(e.to_string()))
    }

    /// One draft.
    ///
    /// # Errors
    /// [`McpError::NoDraft`] when there is none with that id.
    pub fn get(&self, id: &str) -> Result<Draft, McpError> {
        let path = self.path(id)?;
        let text = std::fs::read_to_string(&path).map_err(|_| McpError::NoDraft(id.to_owned()))?;
        serde_json::from_str(&text).map_err(|e| McpError::Draft(format!("{}: {e}", path.display())))
    }

    /// Every draft, oldest first.
    ///
    /// # Errors
    /// When the directory cannot be read.
    pub fn list(&self) -> Result<Vec<Draft>, McpError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(McpError::Draft(e.to_string())),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(".json") {
                match self.get(id) {
                    Ok(d) => out.push(d),
                    Err(e) => tracing::warn!(file = %name, error = %e, "skipping unreadable draft"),
                }
            }
        }
        out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Marks a pending draft rejected.
    ///
    /// # Errors
    /// When it does not exist or is no longer pending.
    pub fn reject(&self, id: &str) -> Result<Draft, McpError> {
        let mut d = self.pending(id)?;
        d.status = DraftStatus::Rejected;
        d.decided_at = Some(Timestamp::now());
        self.save(&d)?;
        Ok(d)
    }

    /// A draft that is still pending.
    ///
    /// # Errors
    /// When it does not exist or was already decided.
    pub fn pending(&self, id: &str) -> Result<Draft, McpError> {
        let d = self.get(id)?;
        if d.status != DraftStatus::Pending {
            return Err(McpError::Decided { id: id.to_owned(), status: d.status });
        }
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_list_reject_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let drafts = Drafts::new(dir.path().join("drafts"));
        assert!(drafts.list().unwrap().is_empty());
        let mut args = Map::new();
        args.insert("text".into(), Value::String("hi".into()));
        let d = drafts.create("me", "send", args).unwrap();
        assert_eq!(drafts.list().unwrap(), vec![d.clone()]);
        let r = drafts.reject(&d.id).unwrap();
        assert_eq!(r.status, DraftStatus::Rejected);
        assert!(matches!(drafts.reject(&d.id), Err(McpError::Decided { .. })));
        assert!(matches!(drafts.get("../etc/passwd"), Err(McpError::NoDraft(_))));
    }
}
