//! Local files offered at a public URL for the time Meta needs to fetch them.
//!
//! The Instagram Login flavour of the official API sends media only by a URL
//! that Meta fetches (it has no attachment upload). `igdm serve --public-url
//! URL` announces that its HTTP server answers at URL; a send of a local file
//! then copies the file under an unguessable name (256 random bits) with an
//! expiry, and sends `URL/public/<name>`. The server serves the file until it
//! expires, then forgets it.
//!
//! Everything lives in one directory (`$IGDM_HOME/public`, 0700): `url`
//! (the announced base URL), and per offer `<name>` (the bytes) and
//! `<name>.json` (`expires_at` in Unix seconds, `mime`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::debug;

use crate::error::Error;

/// A fresh unguessable token: 256 random bits as 64 hex digits. Offered
/// files are named by one; `igdm mcp --http` and `igdm ui` use one as
/// their access token.
#[must_use]
pub fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Compares two secrets in time that does not depend on where they first
/// differ.
#[must_use]
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq as _;
    a.ct_eq(b).into()
}

/// How long an offered file is served unless configured otherwise.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);

/// The offered files of one igdm home.
#[derive(Debug, Clone)]
pub struct PublicFiles {
    dir: PathBuf,
    ttl: Duration,
}

#[derive(Serialize, Deserialize)]
struct Offer {
    expires_at: i64,
    mime: String,
}

impl PublicFiles {
    /// The offers under `dir`, served for `ttl` each.
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>, ttl: Duration) -> Self {
        Self { dir: dir.into(), ttl }
    }

    /// How long each offer is served.
    #[must_use]
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn ensure(&self) -> Result<(), Error> {
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| Error::io(&self.dir, e))?;
        }
        Ok(())
    }

    /// Records that a server answers at `url` (`igdm serve --public-url`).
    ///
    /// # Errors
    /// The directory or the file cannot be written.
    pub fn announce(&self, url: &str) -> Result<(), Error> {
        self.ensure()?;
        let path = self.dir.join("url");
        std::fs::write(&path, url.trim_end_matches('/')).map_err(|e| Error::io(&path, e))
    }

    /// Withdraws the announcement (the server stopped).
    pub fn withdraw(&self) {
        let _ = std::fs::remove_file(self.dir.join("url"));
    }

    /// The base URL a running server announced.
    #[must_use]
    pub fn base_url(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.join("url")).ok().filter(|u| !u.trim().is_empty())
    }

    /// Copies `path` under a fresh unguessable name, served as `mime` until
    /// the offer expires; returns its public URL.
    ///
    /// # Errors
    /// No server announced a URL; the file cannot be copied.
    pub fn offer(&self, path: &Path, mime: &str) -> Result<String, Error> {
        let base = self.base_url().ok_or_else(|| {
            Error::Config(
                "no `igdm serve --public-url URL` is running to serve the file".to_owned(),
            )
        })?;
        self.ensure()?;
        let name = random_token();
        let target = self.dir.join(&name);
        std::fs::copy(path, &target).map_err(|e| Error::io(path, e))?;
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        let offer = Offer {
            expires_at: chrono::Utc::now().timestamp().saturating_add(ttl),
            mime: mime.into(),
        };
        let meta = self.dir.join(format!("{name}.json"));
        let text = serde_json::to_vec(&offer).map_err(|e| Error::Config(e.to_string()))?;
        std::fs::write(&meta, text).map_err(|e| Error::io(&meta, e))?;
        Ok(format!("{base}/public/{name}"))
    }

    /// The file and content type offered under `name`, while the offer
    /// lasts; an expired offer is removed.
    #[must_use]
    pub fn open(&self, name: &str) -> Option<(PathBuf, String)> {
        if name.len() != 64 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let meta = self.dir.join(format!("{name}.json"));
        let offer: Offer = serde_json::from_slice(&std::fs::read(&meta).ok()?).ok()?;
        let file = self.dir.join(name);
        if offer.expires_at < chrono::Utc::now().timestamp() {
            debug!("an expired offer is removed");
            let _ = std::fs::remove_file(&file);
            let _ = std::fs::remove_file(&meta);
            return None;
        }
        file.is_file().then_some((file, offer.mime))
    }
}
