//! Keeping media: the bytes of message attachments downloaded into a
//! content-addressed directory before Instagram's CDN links expire.
//!
//! Files are named by the SHA-256 of their bytes (`<dir>/<2 hex>/<64 hex>`),
//! so the same picture received or synced twice is written once. The message
//! store records which file holds each attachment
//! ([`igdm_store::MediaRef`]); the files themselves are not in the database,
//! so the directory can sit beside a PostgreSQL store
//! ([`MediaStore::from_env`]: `IGDM_MEDIA_DIR`, else `$IGDM_HOME/media`).
//!
//! Limits: a file larger than [`MediaLimits::max_file_bytes`] is not kept,
//! and an account keeps new files only while the files it references (each
//! counted once) fit [`MediaLimits::account_budget_bytes`]. Both are reported,
//! not errors.
//!
//! A link the CDN refuses as expired (403, 404 or 410) is refreshed before
//! giving up: the message is read again (`get`), and when the API cannot
//! return it alone, the conversation is read again newest first until the
//! message shows up; every page read on the way updates the store and serves
//! the next expired links of the same conversation.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};
use sha2::Digest as _;
use tracing::{debug, warn};

use igdm_model::{ApiError, AttachmentType, ErrorClass, Message, Timestamp};
use igdm_store::{ConversationFilter, MediaRef, MessageStore};

use crate::ops::{page_of, params};
use crate::{Client, Error, Home};

/// Default largest file kept: 64 MiB (Instagram's own limits are 25 MB).
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Size limits of kept media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaLimits {
    /// Files larger than this are not kept.
    pub max_file_bytes: u64,
    /// The most an account's kept files may take in all (`None`: no limit).
    pub account_budget_bytes: Option<u64>,
}

impl Default for MediaLimits {
    fn default() -> Self {
        Self { max_file_bytes: DEFAULT_MAX_FILE_BYTES, account_budget_bytes: None }
    }
}

impl MediaLimits {
    /// The defaults, overridden by `IGDM_MEDIA_MAX_FILE_BYTES` and
    /// `IGDM_MEDIA_BUDGET_BYTES` (bytes, per account).
    ///
    /// # Errors
    /// When either is set to something other than a number of bytes.
    pub fn from_env() -> Result<Self, Error> {
        let read = |name: &str| -> Result<Option<u64>, Error> {
            match std::env::var(name) {
                Ok(v) if !v.trim().is_empty() => v.trim().parse().map(Some).map_err(|_| {
                    Error::Config(format!("{name} must be a number of bytes, not {v:?}"))
                }),
                _ => Ok(None),
            }
        };
        let mut limits = Self::default();
        if let Some(n) = read("IGDM_MEDIA_MAX_FILE_BYTES")? {
            limits.max_file_bytes = n;
        }
        limits.account_budget_bytes = read("IGDM_MEDIA_BUDGET_BYTES")?;
        Ok(limits)
    }
}

/// Bytes the media store was given against bytes it wrote: the measure of
/// its de-duplication.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DedupStats {
    /// Bytes handed to the store (downloaded or put).
    pub bytes_seen: u64,
    /// Bytes written to new files.
    pub bytes_written: u64,
    /// Files handed to the store.
    pub files_seen: u64,
    /// New files written.
    pub files_written: u64,
}

/// A content-addressed directory of media files.
#[derive(Debug)]
pub struct MediaStore {
    dir: PathBuf,
    limits: MediaLimits,
    http: reqwest::Client,
    bytes_seen: AtomicU64,
    bytes_written: AtomicU64,
    files_seen: AtomicU64,
    files_written: AtomicU64,
}

/// What [`MediaStore::put`] did with some bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Lower-case hex SHA-256.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Whether a new file was written (`false`: the same bytes were there).
    pub written: bool,
}

impl MediaStore {
    /// A media store in `dir` (created 0700 when missing).
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub fn open(dir: impl Into<PathBuf>, limits: MediaLimits) -> Result<Self, Error> {
        let dir = dir.into();
        Home::at(&dir).ensure()?;
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(20))
            .timeout(std::time::Duration::from_secs(300))
            .build()
            .map_err(|e| Error::Config(format!("media downloads: {e}")))?;
        Ok(Self {
            dir,
            limits,
            http,
            bytes_seen: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            files_seen: AtomicU64::new(0),
            files_written: AtomicU64::new(0),
        })
    }

    /// `IGDM_MEDIA_DIR`, else `<home>/media`, with [`MediaLimits::from_env`].
    ///
    /// # Errors
    /// Bad limits, or a directory that cannot be created.
    pub fn from_env(home: &Home) -> Result<Self, Error> {
        let dir = std::env::var_os("IGDM_MEDIA_DIR")
            .filter(|d| !d.is_empty())
            .map_or_else(|| home.join("media"), PathBuf::from);
        Self::open(dir, MediaLimits::from_env()?)
    }

    /// The directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The limits.
    #[must_use]
    pub fn limits(&self) -> MediaLimits {
        self.limits
    }

    /// Where the file with this hash lives (whether or not it exists).
    ///
    /// # Errors
    /// When `sha256` is not 64 lower-case hex digits (never a path).
    pub fn path_of(&self, sha256: &str) -> Result<PathBuf, Error> {
        if sha256.len() != 64 || !sha256.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(Error::Media(format!("not a SHA-256: {sha256:?}")));
        }
        Ok(self.dir.join(&sha256[..2]).join(sha256))
    }

    /// Bytes seen against bytes written since the store was opened.
    #[must_use]
    pub fn dedup_stats(&self) -> DedupStats {
        DedupStats {
            bytes_seen: self.bytes_seen.load(Ordering::Relaxed),
            bytes_written: self.bytes_written.load(Ordering::Relaxed),
            files_seen: self.files_seen.load(Ordering::Relaxed),
            files_written: self.files_written.load(Ordering::Relaxed),
        }
    }

    /// Keeps `bytes`: writes them under their hash unless that file exists.
    ///
    /// # Errors
    /// Bytes over the size limit; I/O failures.
    pub async fn put(&self, bytes: &[u8]) -> Result<Stored, Error> {
        let size = bytes.len() as u64;
        if size > self.limits.max_file_bytes {
            return Err(Error::Media(format!(
                "{size} bytes is over the media size limit of {} bytes",
                self.limits.max_file_bytes
            )));
        }
        let sha256 = hex::encode(sha2::Sha256::digest(bytes));
        self.bytes_seen.fetch_add(size, Ordering::Relaxed);
        self.files_seen.fetch_add(1, Ordering::Relaxed);
        let path = self.path_of(&sha256)?;
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(Stored { sha256, size, written: false });
        }
        let owned = bytes.to_vec();
        let target = path.clone();
        tokio::task::spawn_blocking(move || crate::home::write_private(&target, &owned))
            .await
            .map_err(|e| Error::Media(format!("writing {}: {e}", path.display())))??;
        self.bytes_written.fetch_add(size, Ordering::Relaxed);
        self.files_written.fetch_add(1, Ordering::Relaxed);
        Ok(Stored { sha256, size, written: true })
    }

    /// Downloads `url` into the store (at most the size limit).
    async fn download(&self, url: &str) -> Result<Fetched, Error> {
        let resp = match self.http.get(url).send().await {
            Ok(r) => r,
            // The link's signature stays out of reports and logs.
            Err(e) => return Ok(Fetched::Failed(format!("download failed: {}", e.without_url()))),
        };
        let status = resp.status().as_u16();
        if matches!(status, 403 | 404 | 410) {
            return Ok(Fetched::Expired(status));
        }
        if !resp.status().is_success() {
            return Ok(Fetched::Failed(format!("the CDN answered {status}")));
        }
        let max = self.limits.max_file_bytes;
        if resp.content_length().is_some_and(|n| n > max) {
            return Ok(Fetched::TooLarge);
        }
        let mime = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned());
        let mut body = Vec::new();
        let mut resp = resp;
        loop {
            match resp.chunk().await {
                Ok(None) => break,
                Ok(Some(c)) => {
                    if (body.len() + c.len()) as u64 > max {
                        return Ok(Fetched::TooLarge);
                    }
                    body.extend_from_slice(&c);
                }
                Err(e) => {
                    return Ok(Fetched::Failed(format!("download broke off: {}", e.without_url())));
                }
            }
        }
        Ok(Fetched::Bytes(body, mime))
    }
}

/// A download's outcome.
enum Fetched {
    Bytes(Vec<u8>, Option<String>),
    /// The CDN refused the link (expired or revoked).
    Expired(u16),
    TooLarge,
    Failed(String),
}

/// Whether an attachment of this kind carries media bytes worth keeping
/// (shares and links point at pages, not files).
fn keepable(kind: &AttachmentType) -> bool {
    matches!(
        kind,
        AttachmentType::Image
            | AttachmentType::Video
            | AttachmentType::Audio
            | AttachmentType::Voice
            | AttachmentType::File
            | AttachmentType::Sticker
            | AttachmentType::Story
    )
}

/// What keeping media did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct KeepReport {
    /// Attachments kept now (downloaded, or found in the store by hash).
    pub kept: u64,
    /// Attachments that were kept already.
    pub already: u64,
    /// New files written (the rest were de-duplicated).
    pub files_written: u64,
    /// Bytes downloaded.
    pub bytes_seen: u64,
    /// Bytes written to new files.
    pub bytes_written: u64,
    /// Expired links replaced by re-reading the message or conversation.
    pub refreshed: u64,
    /// Attachments over the per-file size limit.
    pub too_large: u64,
    /// Attachments not kept because the account's budget was reached.
    pub over_budget: u64,
    /// Attachments that could not be downloaded (see the warnings).
    pub failed: u64,
    /// Why some failed, one line each (at most 20).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl KeepReport {
    fn warn(&mut self, line: String) {
        warn!("{line}");
        if self.warnings.len() < 20 {
            self.warnings.push(line);
        }
    }
}

/// Fresh links found by re-reading one conversation.
#[derive(Default)]
struct Reread {
    /// Message id → its attachments' links.
    links: HashMap<String, Vec<Option<String>>>,
    /// Where the walk stopped (`None` before the first page).
    cursor: Option<String>,
    started: bool,
    done: bool,
}

/// Keeps the media of one account's messages: the message store, the media
/// store and the client that re-reads messages whose links expired.
pub struct Keeper<'a> {
    client: &'a Client,
    store: &'a dyn MessageStore,
    media: &'a MediaStore,
    account: String,
    rereads: HashMap<String, Reread>,
    /// The account's usage, loaded on first need and kept current.
    usage: Option<u64>,
    /// Messages per page when re-reading a conversation.
    pub page_size: u32,
}

impl std::fmt::Debug for Keeper<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keeper").field("account", &self.account).finish_non_exhaustive()
    }
}

impl<'a> Keeper<'a> {
    /// A keeper for `client`'s account.
    #[must_use]
    pub fn new(client: &'a Client, store: &'a dyn MessageStore, media: &'a MediaStore) -> Self {
        Self {
            account: client.account().name.clone(),
            client,
            store,
            media,
            rereads: HashMap::new(),
            usage: None,
            page_size: 20,
        }
    }

    /// Reads and records the account's messages under `account` in the
    /// message store instead of the client's account name: a webhook
    /// receiver without an account map stores an account's events under its
    /// provider id.
    #[must_use]
    pub fn stored_as(mut self, account: impl Into<String>) -> Self {
        self.account = account.into();
        self
    }

    /// Keeps the media of every stored message of the account that has no
    /// kept copy yet.
    ///
    /// # Errors
    /// Store failures and API errors while re-reading (a logout, a rate
    /// limit) end the run; what was kept stays.
    pub async fn keep_account(&mut self) -> Result<KeepReport, Error> {
        let mut report = KeepReport::default();
        let mut conv_cursor: Option<String> = None;
        loop {
            let convs = self
                .store
                .list_conversations(
                    &self.account,
                    &ConversationFilter::default(),
                    100,
                    conv_cursor.as_deref(),
                )
                .await
                .map_err(store_err)?;
            for c in &convs.items {
                self.keep_conversation(c.id.as_str(), &mut report).await?;
            }
            match convs.next_cursor {
                Some(n) if convs.has_more => conv_cursor = Some(n),
                _ => break,
            }
        }
        Ok(report)
    }

    /// Keeps the media of a conversation's stored messages.
    ///
    /// # Errors
    /// As [`Keeper::keep_account`].
    pub async fn keep_conversation(
        &mut self,
        conversation_id: &str,
        report: &mut KeepReport,
    ) -> Result<(), Error> {
        let kept: std::collections::HashSet<(String, u32)> = self
            .store
            .conversation_media(&self.account, conversation_id)
            .await
            .map_err(store_err)?
            .into_iter()
            .map(|r| (r.message_id, r.position))
            .collect();
        let mut cursor: Option<String> = None;
        loop {
            let page = self
                .store
                .list_messages(&self.account, conversation_id, 500, cursor.as_deref())
                .await
                .map_err(store_err)?;
            for m in &page.items {
                for (pos, a) in m.attachments.iter().enumerate() {
                    let Ok(pos) = u32::try_from(pos) else { continue };
                    if !keepable(&a.kind) || a.url.is_none() {
                        continue;
                    }
                    if kept.contains(&(m.id.to_string(), pos)) {
                        report.already += 1;
                        continue;
                    }
                    self.keep_attachment(m, pos, report).await?;
                }
            }
            match page.next_cursor {
                Some(n) if page.has_more => cursor = Some(n),
                _ => break,
            }
        }
        Ok(())
    }

    /// Keeps the media of one message (those not kept yet) and returns its
    /// kept attachments with their files.
    ///
    /// # Errors
    /// As [`Keeper::keep_account`]; also when an attachment could not be kept.
    pub async fn keep_message(
        &mut self,
        message: &Message,
    ) -> Result<(Vec<(MediaRef, PathBuf)>, KeepReport), Error> {
        let conv = message.conversation_id.as_str();
        let id = message.id.as_str();
        let mut report = KeepReport::default();
        let before = self.store.media_refs(&self.account, conv, id).await.map_err(store_err)?;
        for (pos, a) in message.attachments.iter().enumerate() {
            let Ok(pos) = u32::try_from(pos) else { continue };
            let on_disk = before
                .iter()
                .find(|r| r.position == pos)
                .and_then(|r| self.media.path_of(&r.sha256).ok().filter(|p| p.exists()));
            if !keepable(&a.kind) || a.url.is_none() || on_disk.is_some() {
                continue;
            }
            self.keep_attachment(message, pos, &mut report).await?;
        }
        if let Some(w) = report.warnings.first() {
            return Err(Error::Media(w.clone()));
        }
        if report.too_large > 0 {
            return Err(Error::Media(format!(
                "message {id}: {} attachment(s) larger than the per-file limit of {} bytes \
                 (IGDM_MEDIA_MAX_FILE_BYTES)",
                report.too_large, self.media.limits.max_file_bytes
            )));
        }
        if report.over_budget > 0 {
            return Err(Error::Media(format!(
                "message {id}: keeping {} attachment(s) would exceed the account's media budget \
                 of {} bytes (IGDM_MEDIA_BUDGET_BYTES)",
                report.over_budget,
                self.media.limits.account_budget_bytes.unwrap_or_default()
            )));
        }
        let refs = self.store.media_refs(&self.account, conv, id).await.map_err(store_err)?;
        let mut out = Vec::with_capacity(refs.len());
        for r in refs {
            let path = self.media.path_of(&r.sha256)?;
            out.push((r, path));
        }
        Ok((out, report))
    }

    async fn keep_attachment(
        &mut self,
        m: &Message,
        pos: u32,
        report: &mut KeepReport,
    ) -> Result<(), Error> {
        let conv = m.conversation_id.as_str();
        let id = m.id.as_str();
        let Some(att) = m.attachments.get(pos as usize) else { return Ok(()) };
        let Some(mut url) = att.url.clone() else { return Ok(()) };
        let mut refreshed = false;
        let (bytes, mime) = loop {
            match self.media.download(&url).await? {
                Fetched::Bytes(b, mime) => break (b, mime),
                Fetched::TooLarge => {
                    report.too_large += 1;
                    return Ok(());
                }
                Fetched::Failed(why) => {
                    report.failed += 1;
                    report.warn(format!("message {id} attachment {pos}: {why}"));
                    return Ok(());
                }
                Fetched::Expired(status) if !refreshed => {
                    refreshed = true;
                    debug!(message = id, status, "link refused; re-reading");
                    match self.fresh_link(conv, id, pos as usize).await? {
                        Some(fresh) if fresh != url => url = fresh,
                        _ => {
                            report.failed += 1;
                            report.warn(format!(
                                "message {id} attachment {pos}: the link expired ({status}) and \
                                 re-reading the message gave no fresh one"
                            ));
                            return Ok(());
                        }
                    }
                    report.refreshed += 1;
                }
                Fetched::Expired(status) => {
                    report.failed += 1;
                    report.warn(format!(
                        "message {id} attachment {pos}: the refreshed link was refused too ({status})"
                    ));
                    return Ok(());
                }
            }
        };
        let size = bytes.len() as u64;
        let sha256 = hex::encode(sha2::Sha256::digest(&bytes));
        let known = self.store.has_media(&self.account, &sha256).await.map_err(store_err)?;
        if !known && let Some(budget) = self.media.limits.account_budget_bytes {
            let used = match self.usage {
                Some(u) => u,
                None => self.store.media_usage(&self.account).await.map_err(store_err)?.bytes,
            };
            self.usage = Some(used);
            if used.saturating_add(size) > budget {
                report.over_budget += 1;
                return Ok(());
            }
        }
        let stored = self.media.put(&bytes).await?;
        if !known {
            self.usage = self.usage.map(|u| u + size);
        }
        report.bytes_seen += size;
        if stored.written {
            report.files_written += 1;
            report.bytes_written += size;
        }
        let r = MediaRef {
            conversation_id: conv.to_owned(),
            message_id: id.to_owned(),
            position: pos,
            sha256: stored.sha256,
            size,
            mime: att.mime.clone().or(mime),
            stored_at: Timestamp::now(),
        };
        self.store.put_media_ref(&self.account, &r).await.map_err(store_err)?;
        report.kept += 1;
        Ok(())
    }

    /// A fresh link for attachment `pos` of a message: from links found by
    /// an earlier re-read, from the message read alone, or by reading the
    /// conversation again newest first until the message shows up.
    async fn fresh_link(
        &mut self,
        conv: &str,
        id: &str,
        pos: usize,
    ) -> Result<Option<String>, Error> {
        let pick = |links: &Vec<Option<String>>| links.get(pos).cloned().flatten();
        let state = self.rereads.entry(conv.to_owned()).or_default();
        if let Some(l) = state.links.remove(id) {
            return Ok(pick(&l));
        }
        if !state.started && self.client.connector().action("get").is_some() {
            let p = params(&[("conversation_id", json!(conv)), ("message_id", json!(id))]);
            match self.client.invoke("get", p).await {
                Ok(out) if !out.data.is_null() => {
                    if let Ok(m) = serde_json::from_value::<Message>(out.data) {
                        self.store.upsert_message(&self.account, &m).await.map_err(store_err)?;
                        let links: Vec<Option<String>> =
                            m.attachments.iter().map(|a| a.url.clone()).collect();
                        return Ok(pick(&links));
                    }
                }
                Ok(_) => {}
                Err(e) => debug!(message = id, error = %e, "the message alone is not readable"),
            }
        }
        loop {
            let state = self.rereads.entry(conv.to_owned()).or_default();
            if let Some(l) = state.links.remove(id) {
                return Ok(pick(&l));
            }
            if state.done {
                return Ok(None);
            }
            state.started = true;
            let p = params(&[
                ("conversation_id", json!(conv)),
                ("limit", json!(self.page_size)),
                ("cursor", state.cursor.clone().map_or(Value::Null, Value::String)),
            ]);
            let out = self.client.invoke("list", p).await?;
            let (page, _) = page_of::<Message>("list", out)?;
            self.store.upsert_messages(&self.account, &page.items).await.map_err(store_err)?;
            let state = self.rereads.entry(conv.to_owned()).or_default();
            for m in &page.items {
                state.links.insert(
                    m.id.to_string(),
                    m.attachments.iter().map(|a| a.url.clone()).collect(),
                );
            }
            match page.next_cursor {
                Some(c)
                    if page.has_more
                        && !page.items.is_empty()
                        && state.cursor.as_ref() != Some(&c) =>
                {
                    state.cursor = Some(c);
                }
                _ => state.done = true,
            }
        }
    }
}

/// Finds a stored message by id and keeps its media (downloading what is
/// missing, refreshing expired links): the files of its attachments.
///
/// # Errors
/// No such stored message; an attachment that could not be kept.
pub async fn media_of(
    client: &Client,
    store: &dyn MessageStore,
    media: &MediaStore,
    message_id: &str,
) -> Result<Vec<(MediaRef, PathBuf)>, Error> {
    let account = client.account().name.clone();
    let message =
        store.find_message(&account, message_id).await.map_err(store_err)?.ok_or_else(|| {
            let mut e = ApiError::new(
                ErrorClass::NotFound,
                format!("no stored message {message_id} in account {account}"),
            );
            e.remediation = "Run `igdm sync` first, then ask again.".into();
            Error::Api(e)
        })?;
    let mut keeper = Keeper::new(client, store, media);
    Ok(keeper.keep_message(&message).await?.0)
}

/// The file extension for a MIME type (`bin` when unknown).
#[must_use]
pub fn extension_for(mime: Option<&str>) -> &'static str {
    match mime.unwrap_or_default() {
        "image/jpeg" | "image/jpg" => "jpg",
        "image/png" => "png",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "video/mp4" => "mp4",
        "video/quicktime" => "mov",
        "audio/mp4" | "audio/m4a" | "audio/x-m4a" => "m4a",
        "audio/mpeg" => "mp3",
        "audio/aac" => "aac",
        "application/pdf" => "pdf",
        _ => "bin",
    }
}

fn store_err(e: igdm_store::StoreError) -> Error {
    Error::Config(format!("local store: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn only_a_sha256_names_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let m = MediaStore::open(dir.path(), MediaLimits::default()).unwrap();
        let good = "ab".repeat(32);
        assert_eq!(m.path_of(&good).unwrap(), dir.path().join("ab").join(&good));
        for bad in [
            "",
            "../etc/passwd",
            &"AB".repeat(32),
            &"ab".repeat(33),
            &format!("{}/x", "a".repeat(62)),
        ] {
            assert!(m.path_of(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn the_same_bytes_are_written_once_and_the_limit_holds() {
        let dir = tempfile::tempdir().unwrap();
        let limits = MediaLimits { max_file_bytes: 10, account_budget_bytes: None };
        let m = MediaStore::open(dir.path(), limits).unwrap();
        let a = m.put(b"hello").await.unwrap();
        assert!(a.written);
        let b = m.put(b"hello").await.unwrap();
        assert_eq!((b.sha256.as_str(), b.written), (a.sha256.as_str(), false));
        assert_eq!(std::fs::read(m.path_of(&a.sha256).unwrap()).unwrap(), b"hello");
        assert!(m.put(b"hello world").await.is_err());
        let s = m.dedup_stats();
        assert_eq!((s.bytes_seen, s.bytes_written, s.files_seen, s.files_written), (10, 5, 2, 1));
    }
}
