//! New incoming messages as MCP notifications: the server tails the JSON
//! Lines file `igdm serve --events PATH` writes and sends each event to the
//! client as `notifications/igdm/event`, marked untrusted like every read.

use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use rmcp::RoleServer;
use rmcp::model::{CustomNotification, ServerNotification};
use rmcp::service::Peer;
use serde_json::{Value, json};
use tracing::{debug, warn};

use crate::output::UNTRUSTED_NOTE;

/// The notification method.
pub const EVENT_METHOD: &str = "notifications/igdm/event";

/// How often the file is checked for new lines.
const POLL: Duration = Duration::from_millis(250);

/// Reads lines appended to a file since the last call.
#[derive(Debug)]
pub struct Tail {
    path: PathBuf,
    offset: u64,
    partial: String,
}

impl Tail {
    /// Starts at the current end of `path` (earlier events are not replayed).
    #[must_use]
    pub fn from_end(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        Self { path, offset, partial: String::new() }
    }

    /// The complete lines appended since the last call.
    ///
    /// # Errors
    /// When the file exists but cannot be read.
    pub fn poll(&mut self) -> std::io::Result<Vec<String>> {
        let mut file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len();
        if len < self.offset {
            // Truncated or replaced: start over.
            self.offset = 0;
            self.partial.clear();
        }
        file.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::new();
        file.read_to_end(&mut buf)?;
        self.offset += buf.len() as u64;
        self.partial.push_str(&String::from_utf8_lossy(&buf));
        let mut lines = Vec::new();
        while let Some(i) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=i).collect();
            let line = line.trim();
            if !line.is_empty() {
                lines.push(line.to_owned());
            }
        }
        Ok(lines)
    }
}

/// The notification parameters for one event line, or `None` for a line
/// that is not an event of another person (echoes of the account's own
/// sends are skipped).
#[must_use]
pub fn event_params(account: &str, line: &str) -> Option<Value> {
    let mut event: Value = serde_json::from_str(line).ok()?;
    if !event.is_object() || event["is_echo"] == json!(true) {
        return None;
    }
    let provenance = json!({
        "account": account,
        "conversation": event.get("conversation_id").cloned().unwrap_or(Value::Null),
        "sender": event.get("sender_id").cloned().unwrap_or(Value::Null),
    });
    let m = event.as_object_mut()?;
    m.insert("untrusted".into(), json!(true));
    m.insert("provenance".into(), provenance);
    Some(json!({"event": event, "note": UNTRUSTED_NOTE}))
}

/// Sends every new event in `path` to `peer` until the peer is gone.
pub async fn forward(path: PathBuf, account: String, peer: Peer<RoleServer>) {
    let mut tail = Tail::from_end(path);
    loop {
        tokio::time::sleep(POLL).await;
        let lines = match tail.poll() {
            Ok(l) => l,
            Err(e) => {
                warn!(error = %e, "reading the events file");
                continue;
            }
        };
        for line in lines {
            let Some(params) = event_params(&account, &line) else {
                debug!("skipping an events line that is no incoming event");
                continue;
            };
            let n = ServerNotification::CustomNotification(CustomNotification::new(
                EVENT_METHOD,
                Some(params),
            ));
            if peer.send_notification(n).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn tail_reads_only_appended_complete_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        std::fs::write(&path, "{\"old\":1}\n").unwrap();
        let mut tail = Tail::from_end(&path);
        assert!(tail.poll().unwrap().is_empty());
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        write!(f, "{{\"a\":1}}\n{{\"b\"").unwrap();
        assert_eq!(tail.poll().unwrap(), vec!["{\"a\":1}".to_owned()]);
        writeln!(f, ":2}}").unwrap();
        assert_eq!(tail.poll().unwrap(), vec!["{\"b\":2}".to_owned()]);
        std::fs::write(&path, "{\"c\":3}\n").unwrap();
        assert_eq!(tail.poll().unwrap(), vec!["{\"c\":3}".to_owned()]);
    }

    #[test]
    fn events_are_marked_untrusted_and_echoes_skipped() {
        let p = event_params(
            "me",
            r#"{"kind":"message","conversation_id":"c1","sender_id":"u1","text":"hi","is_echo":false}"#,
        )
        .unwrap();
        assert_eq!(p["event"]["untrusted"], json!(true));
        assert_eq!(
            p["event"]["provenance"],
            json!({"account": "me", "conversation": "c1", "sender": "u1"})
        );
        assert_eq!(p["note"], json!(UNTRUSTED_NOTE));
        assert!(event_params("me", r#"{"kind":"message","is_echo":true}"#).is_none());
        assert!(event_params("me", "not json").is_none());
    }
}
