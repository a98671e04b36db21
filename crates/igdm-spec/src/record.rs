//! Recording real exchanges, redacted, so that users with real accounts can
//! contribute fixtures: one JSON file per request and response.
//!
//! What a recording keeps: the connector, the action (when the call ran one),
//! its parameters, the method, the URL path, the names of query parameters
//! and headers, the response status and content type, and both bodies with
//! secrets removed. What it never keeps: cookies, tokens, passwords, CSRF
//! values, signatures and the query strings of URLs inside bodies (CDN links
//! are signed). Ids and usernames are replaced by a keyed hash that keeps
//! their shape (digits stay digits of the same length), the same within one
//! recording directory so that references between files still line up.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::bigint::quote_big_integers;
use crate::transport::{HttpRequest, HttpResponse};

/// The file in a recording directory that holds its hashing key.
const KEY_FILE: &str = ".key";
/// What stands in for a removed secret.
pub const REDACTED: &str = "<redacted>";

/// One recorded exchange, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recording {
    /// The connector id.
    pub connector: String,
    /// The action that made the request (`auth.validate` and
    /// `session.keep_alive` for the probes); none for a raw request.
    pub action: Option<String>,
    /// The action's parameters, redacted.
    #[serde(default)]
    pub params: Value,
    /// The request.
    pub request: RecordedRequest,
    /// The response.
    pub response: RecordedResponse,
}

/// The recorded side of a request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// The URL path (ids in it hashed).
    pub path: String,
    /// Query parameters, values redacted or hashed.
    #[serde(default)]
    pub query: Vec<(String, String)>,
    /// Header names; values kept only for harmless headers.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// The body: JSON or form fields as an object, redacted; null when empty
    /// or binary.
    #[serde(default)]
    pub body: Value,
}

/// The recorded side of a response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordedResponse {
    /// HTTP status.
    pub status: u16,
    /// Its content type.
    pub content_type: Option<String>,
    /// The body as JSON, redacted; a string when it is not JSON.
    pub body: Value,
}

impl Recording {
    /// The response body as the connector's mapping reads it.
    #[must_use]
    pub fn body_bytes(&self) -> Vec<u8> {
        match &self.response.body {
            Value::String(s) => s.clone().into_bytes(),
            v => serde_json::to_vec(v).unwrap_or_default(),
        }
    }
}

/// Writes recordings into a directory (created 0700, files 0600).
pub struct Recorder {
    dir: PathBuf,
    key: [u8; 32],
    seq: AtomicU64,
}

/// The hashing key stays out of debug output: with it, hashed ids could be
/// confirmed by guessing.
impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").field("dir", &self.dir).finish_non_exhaustive()
    }
}

impl Recorder {
    /// Records into `dir`, creating it and its hashing key when missing.
    ///
    /// # Errors
    /// When the directory or its key cannot be created or read.
    pub fn new(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        set_mode(&dir, 0o700)?;
        let key_path = dir.join(KEY_FILE);
        let key = match std::fs::read(&key_path) {
            Ok(k) if k.len() == 32 => {
                let mut key = [0; 32];
                key.copy_from_slice(&k);
                key
            }
            _ => {
                let key: [u8; 32] = rand::random();
                write_private(&key_path, &key)?;
                key
            }
        };
        Ok(Self { dir, key, seq: AtomicU64::new(0) })
    }

    /// The directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Redacts and stores one exchange. A failure to write is logged, never
    /// passed on: recording must not break the call it watches.
    pub fn record(
        &self,
        connector: &str,
        action: Option<&str>,
        params: &Value,
        req: &HttpRequest,
        resp: &HttpResponse,
    ) {
        let rec = self.redact(connector, action, params, req, resp);
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f");
        let name = format!(
            "{stamp}-{}-{seq:04}-{}.json",
            std::process::id(),
            action.unwrap_or("request").replace(['/', '.'], "_")
        );
        let written = serde_json::to_vec_pretty(&rec)
            .map_err(std::io::Error::other)
            .and_then(|bytes| write_private(&self.dir.join(&name), &bytes));
        if let Err(e) = written {
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not write a recording");
        }
    }

    /// The redacted form of one exchange.
    #[must_use]
    pub fn redact(
        &self,
        connector: &str,
        action: Option<&str>,
        params: &Value,
        req: &HttpRequest,
        resp: &HttpResponse,
    ) -> Recording {
        let path = req
            .url
            .path()
            .split('/')
            .map(|seg| if is_idlike(seg) { self.hash_text(seg) } else { seg.to_owned() })
            .collect::<Vec<_>>()
            .join("/");
        let query =
            req.url.query_pairs().map(|(k, v)| (k.to_string(), self.field(&k, &v))).collect();
        let headers = req
            .headers
            .iter()
            .map(|(k, v)| {
                let keep = KEPT_HEADERS.contains(&k.as_str());
                let value = if keep { v.to_str().unwrap_or(REDACTED) } else { REDACTED };
                (k.as_str().to_owned(), value.to_owned())
            })
            .collect();
        let multipart = req
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("multipart/"));
        // A multipart body carries file bytes: not recorded.
        let body = if req.body.is_empty() || multipart {
            Value::Null
        } else if let Ok(v) = serde_json::from_slice::<Value>(&quote_big_integers(&req.body)) {
            self.value(None, v)
        } else if std::str::from_utf8(&req.body).is_ok() {
            let form: Map<String, Value> = req
                .form_fields()
                .into_iter()
                .map(|(k, v)| {
                    // Structured fields (`recipient_users=[[123]]`) are
                    // redacted as JSON and stay text.
                    let parsed = serde_json::from_str::<Value>(&v)
                        .ok()
                        .filter(|j| j.is_object() || j.is_array());
                    let value = match parsed {
                        Some(Value::Object(obj)) => self.value(Some(&k), Value::Object(obj)),
                        Some(list) => Value::String(self.value(Some(&k), list).to_string()),
                        None => Value::String(self.field(&k, &v)),
                    };
                    (k, value)
                })
                .collect();
            Value::Object(form)
        } else {
            Value::Null
        };
        let body_json = serde_json::from_slice::<Value>(&quote_big_integers(&resp.body));
        let response = RecordedResponse {
            status: resp.status,
            content_type: resp.header("content-type").map(str::to_owned),
            body: match body_json {
                Ok(v) => self.value(None, v),
                Err(_) => Value::String(String::from_utf8_lossy(&resp.body).into_owned()),
            },
        };
        Recording {
            connector: connector.to_owned(),
            action: action.map(str::to_owned),
            params: self.value(None, params.clone()),
            request: RecordedRequest {
                method: req.method.as_str().to_owned(),
                path,
                query,
                headers,
                body,
            },
            response,
        }
    }

    /// A scalar field `key = value` of a query or form.
    fn field(&self, key: &str, value: &str) -> String {
        if is_secret_field(key) {
            REDACTED.to_owned()
        } else if is_id_key(key) || is_idlike(value) {
            self.hash_text(value)
        } else {
            value.to_owned()
        }
    }

    /// Walks a JSON value under `key`, removing secrets and hashing ids.
    fn value(&self, key: Option<&str>, v: Value) -> Value {
        let secret = key.is_some_and(is_secret_key);
        let id = key.is_some_and(is_id_key);
        match v {
            // Maps keyed by user id (`last_seen_at`) hide their keys too.
            Value::Object(m) => Value::Object(
                m.into_iter()
                    .map(|(k, v)| {
                        let v = self.value(Some(&k), v);
                        (if is_idlike(&k) { self.hash_text(&k) } else { k }, v)
                    })
                    .collect(),
            ),
            Value::Array(items) => {
                Value::Array(items.into_iter().map(|i| self.value(key, i)).collect())
            }
            Value::Null | Value::Bool(_) => v,
            _ if secret => Value::String(REDACTED.to_owned()),
            Value::Number(n)
                if id || (is_idlike(&n.to_string()) && !key.is_some_and(is_measure_key)) =>
            {
                let hashed = self.hash_text(&n.to_string());
                hashed.parse::<u64>().map_or(Value::String(hashed), Value::from)
            }
            Value::Number(_) => v,
            Value::String(s) if id || (is_idlike(&s) && !key.is_some_and(is_measure_key)) => {
                Value::String(self.hash_text(&s))
            }
            Value::String(s) if is_url(&s) => Value::String(self.url(&s)),
            Value::String(s) => Value::String(s),
        }
    }

    /// A URL inside a body: its query goes (CDN links are signed), and every
    /// run of six or more digits in it is hashed (file names carry ids).
    fn url(&self, s: &str) -> String {
        let (base, had_query) = match s.split_once('?') {
            Some((base, _)) => (base, true),
            None => (s, false),
        };
        let mut out = String::with_capacity(s.len());
        let mut digits = String::new();
        for c in base.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            self.flush_digits(&mut digits, &mut out);
            out.push(c);
        }
        self.flush_digits(&mut digits, &mut out);
        if had_query {
            out.push('?');
            out.push_str(REDACTED);
        }
        out
    }

    fn flush_digits(&self, digits: &mut String, out: &mut String) {
        if is_idlike(digits) {
            out.push_str(&self.hash_text(digits));
        } else {
            out.push_str(digits);
        }
        digits.clear();
    }

    /// A keyed hash of `text` with its shape: digits become digits of the
    /// same length (no leading zero), anything else a hex string of the same
    /// length (at least 8).
    fn hash_text(&self, text: &str) -> String {
        if text.is_empty() {
            return String::new();
        }
        let mut h = Sha256::new();
        h.update(self.key);
        h.update(text.as_bytes());
        let digest = h.finalize();
        let mut stream = digest.iter().cycle();
        let mut next = || stream.next().copied().unwrap_or(0);
        if text.bytes().all(|b| b.is_ascii_digit()) {
            (0..text.len())
                .map(|i| {
                    let d = next() % if i == 0 { 9 } else { 10 };
                    char::from(b'0' + d + u8::from(i == 0))
                })
                .collect()
        } else {
            (0..text.len().max(8))
                .map(|_| char::from(b"0123456789abcdef"[usize::from(next() % 16)]))
                .collect()
        }
    }
}

/// Headers whose values say nothing about the person or the session.
const KEPT_HEADERS: &[&str] =
    &["accept", "accept-language", "content-type", "x-ig-app-id", "x-requested-with"];

fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "token",
        "secret",
        "password",
        "passwd",
        "csrf",
        "cookie",
        "session",
        "claim",
        "signature",
        "proof",
        "nonce",
    ]
    .iter()
    .any(|s| k.contains(s))
        || matches!(k.as_str(), "auth" | "authorization" | "rur" | "ig_did" | "x-mid")
}

/// A query or form field that carries a one-time secret, beyond
/// [`is_secret_key`]: the `code` of an OAuth redirect (in bodies `code` is
/// an error code and stays).
fn is_secret_field(key: &str) -> bool {
    is_secret_key(key) || key.eq_ignore_ascii_case("code")
}

fn is_id_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k == "id"
        || k == "pk"
        || k == "pk_id"
        || k.ends_with("_id")
        || k.ends_with("_ids")
        || k.ends_with("_pk")
        || k.ends_with("_igsid")
        || k == "igsid"
        || k == "username"
        || k == "full_name"
        || k == "thread_title"
        || k == "name"
        || k == "mid"
        || k == "client_context"
}

/// A time (`timestamp`, `last_activity_at`, `snapshot_at_ms`): Instagram
/// sends many as digit strings, which are not ids.
fn is_time_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("timestamp") || k.ends_with("_at") || k.ends_with("_ms") || k.ends_with("_time")
}

/// A time or a quantity: a long number under such a key is no id.
fn is_measure_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    is_time_key(&k)
        || ["size", "count", "duration", "width", "height", "length", "bytes", "offset"]
            .iter()
            .any(|m| k.contains(m))
}

/// A bare number of 6 digits or more: an id wherever it stands.
fn is_idlike(s: &str) -> bool {
    s.len() >= 6 && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_url(s: &str) -> bool {
    s.starts_with("https://") || s.starts_with("http://")
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn set_mode(dir: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = (dir, mode);
    Ok(())
}

/// Reads every recording in `dir`, in name order (the order they were made).
///
/// # Errors
/// When the directory cannot be read; a file that is not a recording is
/// returned as its error, not skipped.
pub fn read_dir(dir: &Path) -> std::io::Result<Vec<(PathBuf, Result<Recording, String>)>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    Ok(files
        .into_iter()
        .map(|p| {
            let parsed = std::fs::read(&p)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Recording>(&b).map_err(|e| e.to_string()));
            (p, parsed)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange() -> (HttpRequest, HttpResponse) {
        let mut headers = http::HeaderMap::new();
        headers.insert("cookie", "sessionid=SECRETSESSION; csrftoken=CSRF".parse().unwrap());
        headers.insert("x-ig-app-id", "936619743392459".parse().unwrap());
        let req = HttpRequest {
            method: http::Method::POST,
            url: "https://i.instagram.com/api/v1/direct_v2/threads/340282366841710300949128/?access_token=TOKEN123&limit=20"
                .parse()
                .unwrap(),
            headers,
            body: bytes::Bytes::from_static(b"text=hi&client_context=6811234567890123456&_csrftoken=CSRF"),
        };
        let mut rh = http::HeaderMap::new();
        rh.insert("set-cookie", "sessionid=NEWSECRET".parse().unwrap());
        rh.insert("content-type", "application/json".parse().unwrap());
        let resp = HttpResponse {
            status: 200,
            headers: rh,
            body: bytes::Bytes::from_static(
                br#"{"thread":{"thread_id":"340282366841710300949128","users":[{"pk":1234567890,"username":"alex_rivera","profile_pic_url":"https://cdn.example/v/1234567890_n.jpg?oh=SIG&oe=1"}],"last_seen_at":{"1234567890":{"timestamp":"1700000000000001","item_id":"3011"}},"items":[{"item_id":"3011","text":"hello","timestamp":1700000000000000}]},"status":"ok"}"#,
            ),
        };
        (req, resp)
    }

    #[test]
    fn secrets_leave_and_ids_keep_their_shape() {
        let dir = tempfile::tempdir().unwrap();
        let r = Recorder::new(dir.path()).unwrap();
        let (req, resp) = exchange();
        let rec = r.redact(
            "instagram-web",
            Some("list"),
            &serde_json::json!({"thread_id": "340282366841710300949128"}),
            &req,
            &resp,
        );
        let text = serde_json::to_string(&rec).unwrap();
        for secret in [
            "SECRETSESSION",
            "CSRF",
            "TOKEN123",
            "NEWSECRET",
            "oh=SIG",
            "alex_rivera",
            "1234567890",
            "340282366841710300949128",
            "6811234567890123456",
        ] {
            assert!(!text.contains(secret), "{secret} left in {text}");
        }
        let thread = rec.response.body["thread"]["thread_id"].as_str().unwrap();
        assert_eq!(thread.len(), 24);
        assert!(thread.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(rec.params["thread_id"], thread, "the same id hashes the same everywhere");
        assert!(rec.request.path.contains(thread), "{}", rec.request.path);
        assert!(rec.response.body["thread"]["users"][0]["pk"].is_u64());
        assert_eq!(rec.response.body["thread"]["items"][0]["text"], "hello");
        assert_eq!(rec.response.body["thread"]["items"][0]["timestamp"], 1_700_000_000_000_000_u64);
        assert_eq!(rec.request.body["text"], "hi");
        let seen = rec.response.body["thread"]["last_seen_at"].as_object().unwrap();
        let (who, at) = seen.iter().next().unwrap();
        assert_eq!(who, &rec.response.body["thread"]["users"][0]["pk"].to_string());
        assert_eq!(at["timestamp"], "1700000000000001", "times are not ids");
        let pic = rec.response.body["thread"]["users"][0]["profile_pic_url"].as_str().unwrap();
        assert!(
            pic.starts_with("https://cdn.example/v/") && pic.ends_with("_n.jpg?<redacted>"),
            "{pic}"
        );
        assert!(
            rec.request.headers.iter().any(|(k, v)| k == "x-ig-app-id" && v == "936619743392459")
        );
        assert!(rec.request.query.iter().any(|(k, v)| k == "limit" && v == "20"));
    }

    #[test]
    fn files_are_private_and_read_back_with_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let (req, resp) = exchange();
        let first = Recorder::new(dir.path()).unwrap();
        first.record("instagram-web", Some("list"), &Value::Null, &req, &resp);
        let again = Recorder::new(dir.path()).unwrap();
        again.record("instagram-web", Some("list"), &Value::Null, &req, &resp);
        let read = read_dir(dir.path()).unwrap();
        assert_eq!(read.len(), 2);
        let a = read[0].1.as_ref().unwrap();
        let b = read[1].1.as_ref().unwrap();
        assert_eq!(a.response.body, b.response.body, "one directory, one key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&read[0].0).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
