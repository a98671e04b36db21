//! The account runtime: opens an igdm account by name from `$IGDM_HOME` and
//! keeps it alive for as long as a front end holds it.
//!
//! [`Runtime`] is the one place where a stored credential becomes a working
//! [`igdm::Client`]: the credential comes out of the vault (after the one-time
//! move of session states an older igdm kept there), the engine session is
//! built from it, the client gets the account's state file (the one session
//! record `igdm accounts status` shows). [`Runtime::open`] hands back a
//! [`LiveAccount`], cheap to clone and shared by front ends (the CLI,
//! `igdm mcp`, `igdm serve` and its bot), which
//!
//! - writes rotated cookies back to the vault soon after a call changed them
//!   (and once more at [`LiveAccount::finish`]);
//! - refreshes an Instagram Login token in place before it expires, and
//!   renews it once when the API refuses it as expired (error 190), retrying
//!   the refused call once (see [`token`]);
//! - runs the keep-alive of a cookie session when asked
//!   ([`LiveAccount::schedule_keep_alive`]);
//! - stops, with the exact next step for the user, when its credential can no
//!   longer be used ([`LiveAccount::stopped`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), igdm_runtime::RuntimeError> {
//! let runtime = igdm_runtime::Runtime::from_env()?;
//! let shop = runtime.open(Some("shop")).await?;
//! let (page, _warnings) = shop.client().conversations().limit(5).await?;
//! println!("{} conversations", page.items.len());
//! shop.finish().await?;
//! # Ok(()) }
//! ```

#![warn(clippy::unwrap_used)]

mod account;
mod clock;
mod error;
pub mod media;
pub mod token;
pub mod upkeep;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use igdm::{AccountConfig, Accounts, Home};
use igdm_auth::oauth::{Clock, SystemClock};
use igdm_auth::{Credential, CredentialStore, TokenCredential, Vault};
use igdm_model::Timestamp;
use igdm_spec::record::Recorder;
use igdm_spec::{Connector, Session};
use secrecy::ExposeSecret;

pub use account::LiveAccount;
pub use clock::{SANDBOX_CLOCK_ENV, SandboxClock};
pub use error::RuntimeError;

/// The environment variable naming a directory to record every exchange
/// into, redacted ([`Runtime::recording_to`]).
pub const RECORD_ENV: &str = "IGDM_RECORD";

/// How often a long-running account looks at its token when it follows the
/// system clock (it also wakes when a refresh falls due).
const CHECK_EVERY: Duration = Duration::from_secs(3600);
/// How often it looks when it follows a sandbox's virtual clock.
const CHECK_EVERY_SANDBOX: Duration = Duration::from_millis(500);

/// The directory under `$IGDM_HOME` holding the connector files users
/// brought (`igdm accounts add --connector-file`), one `<id>.md` each.
pub const CONNECTORS_DIR: &str = "connectors";

/// Loads the embedded connector with `id`.
///
/// # Errors
/// An unknown id, or a connector that does not load.
pub fn connector(id: &str) -> Result<Arc<Connector>, RuntimeError> {
    let text = igdm_connectors::by_id(id).ok_or_else(|| {
        let known: Vec<&str> = igdm_connectors::all().iter().map(|(i, _)| *i).collect();
        RuntimeError::UnknownConnector { id: id.to_owned(), known: known.join(", ") }
    })?;
    Connector::load(text, &format!("connectors/{id}.md"))
        .map(Arc::new)
        .map_err(|e| RuntimeError::Connector { id: id.to_owned(), message: e.to_string() })
}

/// The engine session for a stored credential.
#[must_use]
pub fn session_from(credential: &Credential) -> Session {
    match credential {
        Credential::Cookies(c) => {
            let mut s = Session::new()
                .with_cookies(
                    c.cookies.iter().map(|(k, v)| (k.clone(), v.expose_secret().to_owned())),
                )
                .with_device_uuid(c.device.uuid.clone());
            s.set_extra("ig_www_claim", c.device.www_claim.clone());
            s
        }
        Credential::Token(t) => {
            let mut s = Session::new().with_access_token(t.access_token.expose_secret().to_owned());
            // The Page connector addresses `/{auth.page_id}/…` and recognizes
            // the account's own messages by `auth.user_id`.
            if let Some(page) = &t.page_id {
                s.set_extra("page_id", page.clone());
            }
            if let Some(user) = &t.user_id {
                s.set_extra("user_id", user.clone());
            }
            s
        }
        _ => Session::new(),
    }
}

/// The store URL of `home`: `IGDM_DATABASE_URL`, or SQLite at `$IGDM_HOME/igdm.db`.
fn store_url(home: &Home) -> String {
    match std::env::var("IGDM_DATABASE_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => format!("sqlite://{}?mode=rwc", home.join("igdm.db").display()),
    }
}

/// `$IGDM_HOME`: its accounts file, credential vault, state files and store,
/// and the clock token lifetimes are measured with.
pub struct Runtime {
    home: Home,
    accounts: Accounts,
    vault: Mutex<Option<Arc<Vault>>>,
    migrated: tokio::sync::OnceCell<()>,
    clock: Arc<dyn Clock>,
    follow: Option<Arc<SandboxClock>>,
    check_every: Duration,
    recorder: Option<Arc<Recorder>>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("home", &self.home)
            .field("follows_sandbox_clock", &self.follow.is_some())
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Opens `$IGDM_HOME` (see [`igdm::Home::from_env`]). Time is the system
    /// clock, unless `IGDM_SANDBOX_CLOCK` names a sandbox's `/_sandbox/clock`
    /// to follow (tests moving a process through virtual days).
    ///
    /// # Errors
    /// An unreadable accounts file; an `IGDM_SANDBOX_CLOCK` that is no
    /// sandbox clock URL.
    pub fn from_env() -> Result<Self, RuntimeError> {
        let mut rt = Self::at(Home::from_env()?)?;
        if let Some(url) = std::env::var(SANDBOX_CLOCK_ENV).ok().filter(|u| !u.is_empty()) {
            let clock = Arc::new(SandboxClock::new(&url)?);
            rt.clock = clock.clone();
            rt.follow = Some(clock);
            rt.check_every = CHECK_EVERY_SANDBOX;
        }
        if let Some(dir) = std::env::var_os(RECORD_ENV).filter(|d| !d.is_empty()) {
            rt = rt.recording_to(dir.into())?;
        }
        Ok(rt)
    }

    /// Opens the home at `home`, on the system clock.
    ///
    /// # Errors
    /// An unreadable accounts file.
    pub fn at(home: Home) -> Result<Self, RuntimeError> {
        let accounts = Accounts::load(&home)?;
        Ok(Self {
            home,
            accounts,
            vault: Mutex::new(None),
            migrated: tokio::sync::OnceCell::new(),
            clock: Arc::new(SystemClock),
            follow: None,
            check_every: CHECK_EVERY,
            recorder: None,
        })
    }

    /// Writes every exchange of the accounts opened from now on, redacted,
    /// into `dir` (see [`igdm_spec::record`]).
    ///
    /// # Errors
    /// When the directory or its hashing key cannot be created.
    pub fn recording_to(mut self, dir: std::path::PathBuf) -> Result<Self, RuntimeError> {
        let recorder = Recorder::new(&dir)
            .map_err(|e| RuntimeError::Recording { dir: dir.display().to_string(), source: e })?;
        self.recorder = Some(Arc::new(recorder));
        Ok(self)
    }

    /// Measures token lifetimes with `clock`, and lets an open account sleep
    /// at most `check_every` between two looks at its token.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>, check_every: Duration) -> Self {
        self.clock = clock;
        self.follow = None;
        self.check_every = check_every;
        self
    }

    /// The connector with `id`: an embedded one, else a file installed in
    /// this home with [`Runtime::install_connector`].
    ///
    /// # Errors
    /// An unknown id; an installed file that no longer loads.
    pub fn connector(&self, id: &str) -> Result<Arc<Connector>, RuntimeError> {
        if igdm_connectors::by_id(id).is_some() {
            return connector(id);
        }
        let path = self.installed_connector_path(id)?;
        match std::fs::read_to_string(&path) {
            Ok(text) => Connector::load(&text, &path.display().to_string())
                .map(Arc::new)
                .map_err(|e| RuntimeError::Connector { id: id.to_owned(), message: e.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => connector(id),
            Err(e) => Err(RuntimeError::Connector {
                id: id.to_owned(),
                message: format!("reading {}: {e}", path.display()),
            }),
        }
    }

    /// Checks a connector file and installs it into this home under its
    /// `id`, so that accounts can use it like an embedded connector.
    /// Installing the same text again is a no-op.
    ///
    /// # Errors
    /// A file that does not load (with its line and column); an id of an
    /// embedded connector or one that is not a plain name; a different file
    /// already installed under the id.
    pub fn install_connector(
        &self,
        file: &std::path::Path,
    ) -> Result<Arc<Connector>, RuntimeError> {
        let text = std::fs::read_to_string(file).map_err(|e| RuntimeError::Connector {
            id: file.display().to_string(),
            message: format!("reading it: {e}"),
        })?;
        let loaded = Connector::load(&text, &file.display().to_string()).map_err(|e| {
            RuntimeError::Connector { id: file.display().to_string(), message: e.to_string() }
        })?;
        let id = loaded.id.clone();
        if igdm_connectors::by_id(&id).is_some() {
            return Err(RuntimeError::Connector {
                id,
                message: "is an embedded connector's id: use --connector for it, or give the file another id".into(),
            });
        }
        let path = self.installed_connector_path(&id)?;
        let io = |e: std::io::Error| RuntimeError::Connector {
            id: id.clone(),
            message: format!("installing into {}: {e}", path.display()),
        };
        match std::fs::read_to_string(&path) {
            Ok(existing) if existing == text => {}
            Ok(_) => {
                return Err(RuntimeError::Connector {
                    id: id.clone(),
                    message: format!(
                        "another file with this id is installed at {}; remove it (and the accounts using it) first",
                        path.display()
                    ),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                std::fs::write(&path, &text).map_err(io)?;
            }
            Err(e) => return Err(io(e)),
        }
        Ok(Arc::new(loaded))
    }

    fn installed_connector_path(&self, id: &str) -> Result<std::path::PathBuf, RuntimeError> {
        let plain = !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !plain {
            return Err(RuntimeError::Connector {
                id: id.to_owned(),
                message: "a connector id is letters, digits, `-` and `_`".into(),
            });
        }
        Ok(self.home.join(CONNECTORS_DIR).join(format!("{id}.md")))
    }

    /// The home directory.
    #[must_use]
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// The accounts file as loaded.
    #[must_use]
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// The accounts file, to add or change accounts ([`Runtime::save_accounts`] writes it).
    pub fn accounts_mut(&mut self) -> &mut Accounts {
        &mut self.accounts
    }

    /// Writes the accounts file.
    ///
    /// # Errors
    /// When it cannot be written.
    pub fn save_accounts(&self) -> Result<(), RuntimeError> {
        Ok(self.accounts.save(&self.home)?)
    }

    /// The account `name` names (or the only one).
    ///
    /// # Errors
    /// No such account, or several and no name.
    pub fn account(&self, name: Option<&str>) -> Result<AccountConfig, RuntimeError> {
        Ok(self.accounts.resolve(name)?.clone())
    }

    /// The current time on the runtime's clock (a followed sandbox clock is
    /// read first).
    pub async fn now(&self) -> Timestamp {
        if let Some(f) = &self.follow
            && let Err(e) = f.sync().await
        {
            tracing::warn!(error = %e, "could not read the sandbox clock");
        }
        self.clock.now()
    }

    /// The clock token lifetimes are measured with.
    #[must_use]
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// The credential vault (opened on first use).
    ///
    /// # Errors
    /// A vault that cannot be opened or decrypted.
    pub fn vault(&self) -> Result<Arc<Vault>, RuntimeError> {
        let mut slot = self.vault.lock().map_err(|_| RuntimeError::Poisoned("vault"))?;
        if let Some(v) = &*slot {
            return Ok(v.clone());
        }
        self.home.ensure()?;
        let v = Arc::new(Vault::from_env(self.home.root())?);
        *slot = Some(v.clone());
        Ok(v)
    }

    /// The vault, after moving the session states an older igdm kept in it
    /// to the state files (once per runtime).
    ///
    /// # Errors
    /// Vault or state file errors.
    pub async fn vault_migrated(&self) -> Result<Arc<Vault>, RuntimeError> {
        let vault = self.vault()?;
        self.migrated.get_or_try_init(|| upkeep::migrate_legacy_states(&vault, &self.home)).await?;
        Ok(vault)
    }

    /// The URL of the local store: `IGDM_DATABASE_URL`, or SQLite at
    /// `$IGDM_HOME/igdm.db`.
    #[must_use]
    pub fn store_url(&self) -> String {
        store_url(&self.home)
    }

    /// The media store: `IGDM_MEDIA_DIR`, else `$IGDM_HOME/media`, with the
    /// limits of `IGDM_MEDIA_MAX_FILE_BYTES` and `IGDM_MEDIA_BUDGET_BYTES`.
    ///
    /// # Errors
    /// Bad limits, or a directory that cannot be created.
    pub fn media_store(&self) -> Result<igdm::MediaStore, RuntimeError> {
        self.home.ensure()?;
        Ok(igdm::MediaStore::from_env(&self.home)?)
    }

    /// The files `igdm serve --public-url` offers (`$IGDM_HOME/public`),
    /// each for `IGDM_PUBLIC_TTL_SECS` (default an hour).
    #[must_use]
    pub fn public_files(&self) -> igdm::public::PublicFiles {
        let ttl = std::env::var("IGDM_PUBLIC_TTL_SECS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|s| *s > 0)
            .map_or(igdm::public::DEFAULT_TTL, std::time::Duration::from_secs);
        igdm::public::PublicFiles::new(self.home.join("public"), ttl)
    }

    /// The local store: `IGDM_DATABASE_URL`, or SQLite at `$IGDM_HOME/igdm.db`.
    ///
    /// # Errors
    /// A store that cannot be opened.
    pub async fn store(&self) -> Result<igdm_store::Store, RuntimeError> {
        self.home.ensure()?;
        Ok(igdm_store::Store::open(&store_url(&self.home)).await?)
    }

    /// The local store for a one-off read such as a search: as
    /// [`Runtime::store`], without the work a writer needs at open
    /// ([`igdm_store::Store::open_reader`]).
    ///
    /// # Errors
    /// A store that cannot be opened.
    pub async fn store_reader(&self) -> Result<igdm_store::Store, RuntimeError> {
        Ok(igdm_store::Store::open_reader(&store_url(&self.home)).await?)
    }

    /// Stores `credential` in the vault and adds `config` to the accounts file.
    ///
    /// # Errors
    /// A name already taken, vault or file errors.
    pub async fn add_account(
        &mut self,
        config: AccountConfig,
        credential: Credential,
    ) -> Result<(), RuntimeError> {
        self.accounts.add(config.clone())?;
        self.vault()?.put(&config.name, credential).await?;
        self.save_accounts()
    }

    /// Asks the API whom `token` belongs to (the connector's `auth.validate`
    /// probe: `/me?fields=user_id,username` for Instagram Login; for a Page
    /// token the Page and its linked Instagram account) and records the
    /// answer on the account and the credential. Neither call says when the
    /// token expires: an Instagram Login token's expiry stays unknown until
    /// its first refresh, which a running account makes once the token is a
    /// day old.
    ///
    /// # Errors
    /// A refused token, or an answer without the account's id.
    pub async fn identify_token(
        &self,
        config: &mut AccountConfig,
        token: &mut TokenCredential,
    ) -> Result<(), RuntimeError> {
        let session = session_from(&Credential::Token(token.clone()));
        let client =
            igdm::Client::builder(config.clone(), self.connector(&config.connector)?, session)
                .build()?;
        let me = client.validate().await.map_err(|source| RuntimeError::TokenRefused {
            account: config.name.clone(),
            source: Box::new(source),
        })?;
        let text = |k: &str| {
            me.data.get(k).and_then(|v| {
                v.as_str().map(str::to_owned).or_else(|| v.as_u64().map(|n| n.to_string()))
            })
        };
        let user_id = text("id").ok_or_else(|| RuntimeError::Unidentified(me.data.to_string()))?;
        config.user_id = Some(user_id.clone());
        config.username = text("username");
        token.user_id = Some(user_id);
        token.page_id = text("page_id").or(token.page_id.take());
        Ok(())
    }

    /// Opens the account `name` names (or the only one): its credential from
    /// the vault, a client with its state file, cookie write-back and, for
    /// an Instagram Login token, the refresh schedule and the renewal on
    /// error 190. A token already due is refreshed before this returns.
    ///
    /// # Errors
    /// No such account, no stored credential, an unknown connector, an
    /// expired token (with the next step), vault or state file errors.
    pub async fn open(&self, name: Option<&str>) -> Result<LiveAccount, RuntimeError> {
        let account = self.account(name)?;
        let connector = self.connector(&account.connector)?;
        let vault = self.vault_migrated().await?;
        let credential = vault
            .get(&account.name)
            .await?
            .ok_or_else(|| RuntimeError::NoCredentials { account: account.name.clone() })?;
        if let Some(f) = &self.follow {
            f.sync().await?;
        }
        account::open(account::Parts {
            home: self.home.clone(),
            account,
            connector,
            vault,
            credential,
            clock: self.clock.clone(),
            follow: self.follow.clone(),
            check_every: self.check_every,
            store_url: store_url(&self.home),
            recorder: self.recorder.clone(),
        })
        .await
    }
}
