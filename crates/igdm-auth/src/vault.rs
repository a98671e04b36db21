//! The vault: every credential of every account in one age-encrypted file,
//! `$IGDM_HOME/vault.age`.
//!
//! # Keys
//! - With `IGDM_VAULT_PASSPHRASE` set, the file is encrypted to an age scrypt
//!   recipient derived from the passphrase. The scrypt work factor (log2 N)
//!   defaults to [`Vault::DEFAULT_WORK_FACTOR`] and can be lowered with
//!   `IGDM_VAULT_SCRYPT_LOG_N` (tests use 10; decryption accepts files made
//!   with any factor up to [`Vault::MAX_WORK_FACTOR`]).
//! - Without a passphrase, igdm generates an X25519 identity once and keeps
//!   it in `$IGDM_HOME/vault.key` (mode 0600); the vault is encrypted to it.
//!   If the vault exists but the key file does not, igdm refuses to generate
//!   a new key (that would orphan the vault).
//!
//! The OS keyring is deliberately not used: on headless Linux (servers, CI,
//! containers) keyring 4 has no default store and fails with
//! `NoDefaultStore`, and one file format everywhere keeps backups and
//! behaviour identical. Protect `vault.key` like an SSH key, or use a
//! passphrase.
//!
//! # Files
//! The home directory is created 0700; the vault and key files are created
//! 0600 from the first byte (never chmod-after-write) and replaced
//! atomically (temp file in the same directory, fsync, rename, fsync of the
//! directory). Plaintext exists only in memory, in zeroized buffers.
//!
//! Writes are read-modify-write under a lock file (`vault.age.lock`, created
//! exclusively, broken when older than 30 s), so several igdm processes
//! (a CLI login while `igdm serve` rotates cookies) never lose each other's
//! updates. Reads decrypt once per file version and reuse the result.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;
use zeroize::Zeroizing;

use crate::credential::{AccountSummary, Credential};
use crate::error::{AuthError, validate_account};
use crate::store::{Accounts, BoxFuture, CredentialStore};

/// How the vault is keyed.
#[derive(Clone)]
pub enum VaultKey {
    /// An age scrypt passphrase with the work factor used when encrypting.
    Passphrase {
        /// The passphrase.
        passphrase: SecretString,
        /// log2 of the scrypt N parameter used for new encryptions.
        work_factor: u8,
    },
    /// An X25519 identity kept in this file (generated on first use).
    IdentityFile(PathBuf),
}

impl std::fmt::Debug for VaultKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Passphrase { work_factor, .. } => f
                .debug_struct("Passphrase")
                .field("passphrase", &"[REDACTED]")
                .field("work_factor", work_factor)
                .finish(),
            Self::IdentityFile(p) => f.debug_tuple("IdentityFile").field(p).finish(),
        }
    }
}

/// Identifies one version of the vault file (atomic replacement gives a new inode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    ino: u64,
    len: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl FileStamp {
    fn of(path: &Path) -> Option<Self> {
        let m = fs::metadata(path).ok()?;
        Some(Self { ino: m.ino(), len: m.len(), mtime: m.mtime(), mtime_nsec: m.mtime_nsec() })
    }
}

struct Inner {
    path: PathBuf,
    key: VaultKey,
    write_lock: Mutex<()>,
    /// The last decrypted document and the file version it came from, so
    /// repeated reads do not pay the key derivation again. Secret values in
    /// it are `SecretString`s, zeroized when dropped.
    cache: std::sync::Mutex<Option<(FileStamp, Accounts)>>,
}

/// The encrypted credential store. Cheap to clone.
#[derive(Clone)]
pub struct Vault {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("path", &self.inner.path)
            .field("key", &self.inner.key)
            .finish()
    }
}

impl Vault {
    /// The vault file name inside the home directory.
    pub const FILE: &'static str = "vault.age";
    /// The generated identity file name inside the home directory.
    pub const KEY_FILE: &'static str = "vault.key";
    /// Environment variable holding the passphrase.
    pub const PASSPHRASE_ENV: &'static str = "IGDM_VAULT_PASSPHRASE";
    /// Environment variable overriding the scrypt work factor (log2 N).
    pub const WORK_FACTOR_ENV: &'static str = "IGDM_VAULT_SCRYPT_LOG_N";
    /// Default scrypt work factor (log2 N = 18: about a second per unlock or
    /// write on a small machine; see `benches/vault.rs`).
    pub const DEFAULT_WORK_FACTOR: u8 = 18;
    /// The largest work factor accepted when decrypting.
    pub const MAX_WORK_FACTOR: u8 = 22;

    /// Opens (without reading) the vault in `home` with an explicit key,
    /// creating `home` with mode 0700 when missing.
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub fn open(home: impl AsRef<Path>, key: VaultKey) -> Result<Self, AuthError> {
        let home = home.as_ref();
        create_private_dir(home)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path: home.join(Self::FILE),
                key,
                write_lock: Mutex::new(()),
                cache: std::sync::Mutex::new(None),
            }),
        })
    }

    /// Opens the vault in `home`, keyed by `IGDM_VAULT_PASSPHRASE` (and
    /// `IGDM_VAULT_SCRYPT_LOG_N`) when set, else by `home/vault.key`.
    ///
    /// # Errors
    /// A bad work factor, or when the directory cannot be created.
    pub fn from_env(home: impl AsRef<Path>) -> Result<Self, AuthError> {
        let home = home.as_ref();
        let key = match std::env::var(Self::PASSPHRASE_ENV) {
            Ok(p) if !p.is_empty() => {
                let work_factor = match std::env::var(Self::WORK_FACTOR_ENV) {
                    Ok(raw) => parse_work_factor(&raw)?,
                    Err(_) => Self::DEFAULT_WORK_FACTOR,
                };
                VaultKey::Passphrase { passphrase: SecretString::from(p), work_factor }
            }
            _ => VaultKey::IdentityFile(home.join(Self::KEY_FILE)),
        };
        Self::open(home, key)
    }

    /// The vault file path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    async fn read_doc(&self) -> Result<Accounts, AuthError> {
        let inner = Arc::clone(&self.inner);
        blocking(move || inner.load()).await
    }

    async fn modify<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Accounts) -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        let _guard = self.inner.write_lock.lock().await;
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let _lock = FileLock::acquire(&inner.path)?;
            let mut doc = inner.load()?;
            let out = f(&mut doc);
            inner.save(&doc)?;
            Ok(out)
        })
        .await
    }
}

/// A cross-process write lock: `vault.age.lock`, created exclusively and
/// removed on drop. A lock older than [`FileLock::STALE`] is taken to be
/// left by a crashed process and broken.
struct FileLock(PathBuf);

impl FileLock {
    const WAIT: std::time::Duration = std::time::Duration::from_secs(10);
    const STALE: std::time::Duration = std::time::Duration::from_secs(30);

    fn acquire(vault: &Path) -> Result<Self, AuthError> {
        let mut name = vault.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let start = std::time::Instant::now();
        loop {
            match OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path) {
                Ok(mut f) => {
                    let _ = writeln!(f, "{}", std::process::id());
                    return Ok(Self(path));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let stale = fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age > Self::STALE);
                    if stale {
                        tracing::warn!(path = %path.display(), "breaking a stale vault lock");
                        let _ = fs::remove_file(&path);
                        continue;
                    }
                    if start.elapsed() > Self::WAIT {
                        return Err(AuthError::io(
                            "lock (another igdm process is writing the vault)",
                            &path,
                            e,
                        ));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(25));
                }
                Err(e) => return Err(AuthError::io("lock", &path, e)),
            }
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AuthError> + Send + 'static,
) -> Result<T, AuthError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        AuthError::io("run vault task", PathBuf::new(), std::io::Error::other(e.to_string()))
    })?
}

fn parse_work_factor(raw: &str) -> Result<u8, AuthError> {
    match raw.trim().parse::<u8>() {
        Ok(n) if (1..=Vault::MAX_WORK_FACTOR).contains(&n) => Ok(n),
        _ => Err(AuthError::Spec(format!(
            "{} must be a number from 1 to {}, got `{raw}`",
            Vault::WORK_FACTOR_ENV,
            Vault::MAX_WORK_FACTOR
        ))),
    }
}

fn create_private_dir(dir: &Path) -> Result<(), AuthError> {
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(|e| AuthError::io("create directory", dir, e))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| AuthError::io("restrict directory", dir, e))?;
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically with mode 0600 from creation.
fn write_private_atomic(path: &Path, bytes: &[u8]) -> Result<(), AuthError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("vault");
    let tmp = dir.join(format!(".{name}.tmp-{}", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| AuthError::io("create", &tmp, e))?;
        f.write_all(bytes).map_err(|e| AuthError::io("write", &tmp, e))?;
        f.sync_all().map_err(|e| AuthError::io("sync", &tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| AuthError::io("replace", path, e))?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Tightens a file that is readable by others back to 0600, with a warning.
fn ensure_private(path: &Path) -> Result<(), AuthError> {
    let meta = fs::metadata(path).map_err(|e| AuthError::io("inspect", path, e))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "secret file was accessible to others; restricting it to 0600");
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
            .map_err(|e| AuthError::io("restrict", path, e))?;
    }
    Ok(())
}

impl Inner {
    fn identity(&self, create: bool) -> Result<Option<age::x25519::Identity>, AuthError> {
        let VaultKey::IdentityFile(key_path) = &self.key else { return Ok(None) };
        if key_path.exists() {
            ensure_private(key_path)?;
            let mut text = Zeroizing::new(String::new());
            File::open(key_path)
                .and_then(|mut f| f.read_to_string(&mut text))
                .map_err(|e| AuthError::io("read key", key_path, e))?;
            let line = text
                .lines()
                .map(str::trim)
                .find(|l| l.starts_with("AGE-SECRET-KEY-"))
                .unwrap_or_default();
            let id = age::x25519::Identity::from_str(line).map_err(|_| AuthError::Corrupt {
                path: key_path.clone(),
                reason: "no age X25519 identity in the key file".into(),
            })?;
            return Ok(Some(id));
        }
        if !create {
            return Err(AuthError::WrongKey {
                path: self.path.clone(),
                reason: format!(
                    "the key file {} is missing; restore it, or set {} if this vault was made with a passphrase",
                    key_path.display(),
                    Vault::PASSPHRASE_ENV
                ),
            });
        }
        let id = age::x25519::Identity::generate();
        let body = Zeroizing::new(format!(
            "# igdm vault key: decrypts {}. Keep it private.\n# public key: {}\n{}\n",
            self.path.display(),
            id.to_public(),
            id.to_string().expose_secret()
        ));
        write_private_atomic(key_path, body.as_bytes())?;
        tracing::info!(path = %key_path.display(), "generated a new vault key");
        Ok(Some(id))
    }

    fn load(&self) -> Result<Accounts, AuthError> {
        if self.path.exists() {
            ensure_private(&self.path)?;
        }
        let stamp = FileStamp::of(&self.path);
        if let Some(stamp) = stamp
            && let Ok(guard) = self.cache.lock()
            && let Some((cached, doc)) = guard.as_ref()
            && *cached == stamp
        {
            return Ok(doc.clone());
        }
        let doc = self.load_uncached()?;
        self.remember(&doc);
        Ok(doc)
    }

    fn remember(&self, doc: &Accounts) {
        if let (Some(stamp), Ok(mut guard)) = (FileStamp::of(&self.path), self.cache.lock()) {
            *guard = Some((stamp, doc.clone()));
        }
    }

    fn load_uncached(&self) -> Result<Accounts, AuthError> {
        if !self.path.exists() {
            return Ok(Accounts::default());
        }
        let file = File::open(&self.path).map_err(|e| AuthError::io("open", &self.path, e))?;
        let decryptor = age::Decryptor::new(BufReader::new(file))
            .map_err(|e| AuthError::Corrupt { path: self.path.clone(), reason: e.to_string() })?;
        let scrypt_file = decryptor.is_scrypt();
        let reader = match (&self.key, scrypt_file) {
            (VaultKey::Passphrase { passphrase, .. }, true) => {
                let mut id = age::scrypt::Identity::new(age::secrecy::SecretString::from(
                    passphrase.expose_secret().to_owned(),
                ));
                id.set_max_work_factor(Vault::MAX_WORK_FACTOR);
                decryptor
                    .decrypt(std::iter::once(&id as &dyn age::Identity))
                    .map_err(|e| self.wrong_key(&e, true))?
            }
            (VaultKey::IdentityFile(_), false) => {
                let id = self.identity(false)?.ok_or_else(|| self.wrong_key_msg("no identity"))?;
                decryptor
                    .decrypt(std::iter::once(&id as &dyn age::Identity))
                    .map_err(|e| self.wrong_key(&e, false))?
            }
            (VaultKey::Passphrase { .. }, false) => {
                return Err(self.wrong_key_msg(&format!(
                    "it was encrypted with the key file {}, not a passphrase: unset {}",
                    Vault::KEY_FILE,
                    Vault::PASSPHRASE_ENV
                )));
            }
            (VaultKey::IdentityFile(_), true) => {
                return Err(self.wrong_key_msg(&format!(
                    "it is protected by a passphrase: set {}",
                    Vault::PASSPHRASE_ENV
                )));
            }
        };
        let mut plain = Zeroizing::new(Vec::new());
        let mut reader = reader;
        reader
            .read_to_end(&mut plain)
            .map_err(|e| AuthError::Corrupt { path: self.path.clone(), reason: e.to_string() })?;
        serde_json::from_slice(&plain).map_err(|e| AuthError::Corrupt {
            path: self.path.clone(),
            reason: format!(
                "decrypted content is not an igdm accounts document (line {}, column {})",
                e.line(),
                e.column()
            ),
        })
    }

    fn wrong_key_msg(&self, reason: &str) -> AuthError {
        AuthError::WrongKey { path: self.path.clone(), reason: reason.to_owned() }
    }

    fn wrong_key(&self, e: &age::DecryptError, passphrase: bool) -> AuthError {
        match e {
            age::DecryptError::DecryptionFailed | age::DecryptError::NoMatchingKeys => self
                .wrong_key_msg(if passphrase {
                    "wrong passphrase (check IGDM_VAULT_PASSPHRASE)"
                } else {
                    "the key file does not match this vault"
                }),
            age::DecryptError::ExcessiveWork { required, .. } => self.wrong_key_msg(&format!(
                "the file needs scrypt work factor {required}, above the accepted maximum {}",
                Vault::MAX_WORK_FACTOR
            )),
            other => AuthError::Corrupt { path: self.path.clone(), reason: other.to_string() },
        }
    }

    fn save(&self, doc: &Accounts) -> Result<(), AuthError> {
        let mut doc_out = doc.clone();
        doc_out.version = 1;
        let plain =
            Zeroizing::new(serde_json::to_vec(&doc_out).map_err(|e| AuthError::Corrupt {
                path: self.path.clone(),
                reason: e.to_string(),
            })?);
        let encryptor = match &self.key {
            VaultKey::Passphrase { passphrase, work_factor } => {
                let mut r = age::scrypt::Recipient::new(age::secrecy::SecretString::from(
                    passphrase.expose_secret().to_owned(),
                ));
                r.set_work_factor(*work_factor);
                age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient))
            }
            VaultKey::IdentityFile(_) => {
                let id = self.identity(true)?.ok_or_else(|| self.wrong_key_msg("no identity"))?;
                let r = id.to_public();
                age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient))
            }
        }
        .map_err(|e| AuthError::Corrupt { path: self.path.clone(), reason: e.to_string() })?;
        let mut out = Vec::with_capacity(plain.len() + 256);
        let mut w =
            encryptor.wrap_output(&mut out).map_err(|e| AuthError::io("encrypt", &self.path, e))?;
        w.write_all(&plain).map_err(|e| AuthError::io("encrypt", &self.path, e))?;
        w.finish().map_err(|e| AuthError::io("encrypt", &self.path, e))?;
        write_private_atomic(&self.path, &out)?;
        self.remember(&doc_out);
        tracing::debug!(path = %self.path.display(), accounts = doc.credentials.len(), "vault saved");
        Ok(())
    }
}

impl CredentialStore for Vault {
    fn get<'a>(&'a self, account: &'a str) -> BoxFuture<'a, Result<Option<Credential>, AuthError>> {
        Box::pin(async move {
            validate_account(account)?;
            Ok(self.read_doc().await?.credentials.remove(account))
        })
    }

    fn put<'a>(
        &'a self,
        account: &'a str,
        credential: Credential,
    ) -> BoxFuture<'a, Result<(), AuthError>> {
        Box::pin(async move {
            validate_account(account)?;
            let name = account.to_owned();
            let kind = credential.kind();
            self.modify(move |doc| {
                doc.credentials.insert(name, credential);
            })
            .await?;
            tracing::info!(account, kind, "credential stored in the vault");
            Ok(())
        })
    }

    fn delete<'a>(&'a self, account: &'a str) -> BoxFuture<'a, Result<bool, AuthError>> {
        Box::pin(async move {
            validate_account(account)?;
            let name = account.to_owned();
            self.modify(move |doc| doc.remove(&name)).await
        })
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<AccountSummary>, AuthError>> {
        Box::pin(async move { Ok(self.read_doc().await?.summaries()) })
    }
}

impl Vault {
    /// Removes the session states older versions kept in the vault and
    /// returns them, so the caller can move them to where session state now
    /// lives. Returns nothing, and writes nothing, when there are none.
    ///
    /// # Errors
    /// Vault read or write errors.
    pub async fn take_legacy_states(
        &self,
    ) -> Result<Vec<(String, igdm_model::SessionState)>, AuthError> {
        if self.read_doc().await?.states.is_empty() {
            return Ok(Vec::new());
        }
        let taken = self.modify(|doc| std::mem::take(&mut doc.states)).await?;
        tracing::info!(accounts = taken.len(), "moved session states out of the vault");
        Ok(taken.into_iter().map(|(k, v)| (k, v.into_session())).collect())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::credential::{CookieCredential, TokenCredential, TokenKind};

    fn pass(p: &str) -> VaultKey {
        VaultKey::Passphrase { passphrase: SecretString::from(p), work_factor: 10 }
    }

    fn app_credential(i: usize) -> Credential {
        Credential::App(crate::credential::AppSecrets {
            app_id: i.to_string(),
            app_secret: None,
            verify_token: None,
        })
    }

    #[tokio::test]
    async fn legacy_session_states_are_taken_out_once() {
        let dir = tempfile::tempdir().unwrap();
        let v = Vault::open(dir.path(), pass("p")).unwrap();
        v.put("a", app_credential(1)).await.unwrap();
        assert!(v.take_legacy_states().await.unwrap().is_empty());
        v.modify(|doc| {
            let old = r#"{"health":{"state":"logged_out"},"last_success":"2026-01-02T03:04:05Z"}"#;
            doc.states.insert("a".into(), serde_json::from_str(old).unwrap());
        })
        .await
        .unwrap();
        let taken = v.take_legacy_states().await.unwrap();
        assert_eq!(taken.len(), 1);
        assert!(taken[0].1.blocked());
        assert!(v.take_legacy_states().await.unwrap().is_empty(), "removed from the vault");
        assert!(v.get("a").await.unwrap().is_some(), "credentials stay");
    }

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[tokio::test]
    async fn passphrase_vault_conforms_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let v = Vault::open(&home, pass("correct horse")).unwrap();
        crate::store::conformance(&v).await;
        assert_eq!(mode(&home), 0o700);
        assert_eq!(mode(v.path()), 0o600);
        // A wrong passphrase fails clearly.
        let wrong = Vault::open(&home, pass("battery staple")).unwrap();
        let err = wrong.list().await.unwrap_err().to_string();
        assert!(err.contains("wrong passphrase"), "{err}");
        // A key-file vault cannot open a passphrase vault and says why.
        let keyed = Vault::open(&home, VaultKey::IdentityFile(home.join(Vault::KEY_FILE))).unwrap();
        let err = keyed.list().await.unwrap_err().to_string();
        assert!(err.contains("IGDM_VAULT_PASSPHRASE"), "{err}");
    }

    #[tokio::test]
    async fn key_file_vault_round_trips_without_plaintext() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_path_buf();
        let v = Vault::open(&home, VaultKey::IdentityFile(home.join(Vault::KEY_FILE))).unwrap();
        let mut cookies = BTreeMap::new();
        cookies.insert("sessionid".to_owned(), SecretString::from("991%3AZZsessionSECRETzz"));
        v.put("a", Credential::Cookies(CookieCredential::new(cookies, "instagram.com", None)))
            .await
            .unwrap();
        v.put(
            "b",
            Credential::Token(TokenCredential {
                access_token: SecretString::from("IGAAtokenSECRETvalue"),
                expires_at: None,
                issued_at: igdm_model::Timestamp::now(),
                scopes: vec!["instagram_business_basic".into()],
                kind: TokenKind::InstagramUser,
                user_id: Some("17".into()),
                page_id: None,
                app_id: None,
                base_url: None,
            }),
        )
        .await
        .unwrap();
        assert_eq!(mode(&home.join(Vault::KEY_FILE)), 0o600);
        assert_eq!(mode(v.path()), 0o600);
        // Re-open from scratch: same key file, same content.
        let again = Vault::open(&home, VaultKey::IdentityFile(home.join(Vault::KEY_FILE))).unwrap();
        let Some(Credential::Token(t)) = again.get("b").await.unwrap() else { panic!("token") };
        assert_eq!(t.access_token.expose_secret(), "IGAAtokenSECRETvalue");
        for entry in fs::read_dir(&home).unwrap() {
            let bytes = fs::read(entry.unwrap().path()).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains("ZZsessionSECRETzz") && !text.contains("tokenSECRETvalue"));
        }
        // Losing the key file is an error, not a silent new key.
        fs::remove_file(home.join(Vault::KEY_FILE)).unwrap();
        let fresh = Vault::open(&home, VaultKey::IdentityFile(home.join(Vault::KEY_FILE))).unwrap();
        let err = fresh.list().await.unwrap_err().to_string();
        assert!(err.contains("key file"), "{err}");
        assert!(!home.join(Vault::KEY_FILE).exists());
    }

    #[tokio::test]
    async fn loosened_modes_are_restored() {
        let dir = tempfile::tempdir().unwrap();
        let v = Vault::open(dir.path(), pass("p")).unwrap();
        v.put("x", app_credential(0)).await.unwrap();
        fs::set_permissions(v.path(), fs::Permissions::from_mode(0o644)).unwrap();
        v.list().await.unwrap();
        assert_eq!(mode(v.path()), 0o600);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let a = Vault::open(dir.path(), pass("p")).unwrap();
        let b = Vault::open(dir.path(), pass("p")).unwrap();
        let mut tasks = Vec::new();
        for i in 0..8 {
            let v = if i % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(async move {
                v.put(&format!("acct{i}"), app_credential(i)).await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let c = Vault::open(dir.path(), pass("p")).unwrap();
        let doc = c.read_doc().await.unwrap();
        assert_eq!(doc.credentials.len(), 8, "every writer's update survived");
        assert!(!dir.path().join("vault.age.lock").exists());
    }

    #[test]
    fn work_factor_knob_is_validated() {
        assert_eq!(parse_work_factor("10").unwrap(), 10);
        assert!(parse_work_factor("0").is_err());
        assert!(parse_work_factor("40").is_err());
        assert!(parse_work_factor("x").is_err());
    }
}
