//! Opening accounts: home directory, accounts file, credential vault, and a
//! ready [`igdm::Client`] for the chosen account.

use std::sync::{Arc, Mutex};

use anyhow::{Context as _, anyhow};
use secrecy::ExposeSecret;

use igdm::{AccountConfig, Accounts, Client, Home, StateFile};
use igdm_auth::{Credential, CredentialStore, Vault};
use igdm_spec::{Connector, Session};

/// Loads the embedded connector with `id`.
pub fn connector(id: &str) -> anyhow::Result<Arc<Connector>> {
    let text = igdm_connectors::by_id(id).ok_or_else(|| {
        let known: Vec<&str> = igdm_connectors::all().iter().map(|(i, _)| *i).collect();
        anyhow!("no connector {id:?} (known: {})", known.join(", "))
    })?;
    Ok(Arc::new(Connector::load(text, &format!("connectors/{id}.md"))?))
}

/// Everything a command needs to act as an account.
pub struct Ctx {
    /// The home directory.
    pub home: Home,
    /// The accounts file.
    pub accounts: Accounts,
    vault: Option<Arc<Vault>>,
    migrated: bool,
}

impl Ctx {
    /// Opens `$IGDM_HOME`.
    pub fn open() -> anyhow::Result<Self> {
        let home = Home::from_env()?;
        let accounts = Accounts::load(&home)?;
        Ok(Self { home, accounts, vault: None, migrated: false })
    }

    /// The credential vault (opened on first use).
    pub fn vault(&mut self) -> anyhow::Result<Arc<Vault>> {
        if let Some(v) = &self.vault {
            return Ok(v.clone());
        }
        self.home.ensure()?;
        let v =
            Arc::new(Vault::from_env(self.home.root()).context("opening the credential vault")?);
        self.vault = Some(v.clone());
        Ok(v)
    }

    /// The vault, after moving the session states an older igdm kept in it
    /// to the state files (once per process).
    pub async fn vault_migrated(&mut self) -> anyhow::Result<Arc<Vault>> {
        let vault = self.vault()?;
        if !self.migrated {
            super::upkeep::migrate_legacy_states(&vault, &self.home).await?;
            self.migrated = true;
        }
        Ok(vault)
    }

    /// The URL of the local store: `IGDM_DATABASE_URL`, or SQLite at
    /// `$IGDM_HOME/igdm.db` (the home directory is created for it).
    pub fn store_url(&self) -> anyhow::Result<String> {
        Ok(match std::env::var("IGDM_DATABASE_URL") {
            Ok(u) if !u.is_empty() => u,
            _ => {
                self.home.ensure()?;
                format!("sqlite://{}?mode=rwc", self.home.join("igdm.db").display())
            }
        })
    }

    /// The local store: `IGDM_DATABASE_URL`, or SQLite at `$IGDM_HOME/igdm.db`.
    pub async fn store(&self) -> anyhow::Result<igdm_store::Store> {
        let url = self.store_url()?;
        igdm_store::Store::open(&url).await.with_context(|| "opening the local store".to_owned())
    }

    /// The local store for a one-off read such as a search: as
    /// [`Ctx::store`], without the work a writer needs at open
    /// ([`igdm_store::Store::open_reader`]).
    pub async fn store_reader(&self) -> anyhow::Result<igdm_store::Store> {
        let url = match std::env::var("IGDM_DATABASE_URL") {
            Ok(u) if !u.is_empty() => u,
            _ => format!("sqlite://{}?mode=rwc", self.home.join("igdm.db").display()),
        };
        igdm_store::Store::open_reader(&url)
            .await
            .with_context(|| "opening the local store".to_owned())
    }

    /// The account `--account` names (or the only one).
    pub fn account(&self, name: Option<&str>) -> anyhow::Result<AccountConfig> {
        Ok(self.accounts.resolve(name)?.clone())
    }

    /// A client for the account, with its stored credentials. Rotated cookies
    /// are written back to the vault by [`Opened::finish`].
    pub async fn client(&mut self, name: Option<&str>) -> anyhow::Result<Opened> {
        let account = self.account(name)?;
        let connector = connector(&account.connector)?;
        let vault = self.vault_migrated().await?;
        let mut credential = vault.get(&account.name).await?.ok_or_else(|| {
            anyhow!(
                "no credentials stored for {:?}: run `igdm login {}`",
                account.name,
                account.name
            )
        })?;
        // Long-lived Instagram tokens are refreshed when under 7 days remain
        // (and at least 24 h old); the refreshed token is stored in the vault.
        if let Credential::Token(t) = &credential
            && t.kind == igdm_auth::TokenKind::InstagramUser
            && t.expires_at.is_some()
        {
            let store: Arc<dyn CredentialStore> = vault.clone();
            let manager = igdm_auth::oauth::TokenManager::new(
                store,
                account.name.clone(),
                None,
                Arc::new(igdm_auth::oauth::SystemClock),
            );
            manager.access_token().await?;
            if let Some(fresh) = vault.get(&account.name).await? {
                credential = fresh;
            }
        }
        let session = session_from(&credential);
        let latest: Arc<Mutex<Option<Session>>> = Arc::new(Mutex::new(None));
        let sink_slot = latest.clone();
        // Every send goes through the one send ledger: the local store's
        // outbox, opened at the first send.
        let ledger = Arc::new(igdm::StoreLedger::open_on_first_use(self.store_url()?));
        let client = Client::builder(account.clone(), connector, session)
            .ledger(ledger)
            .state_file(StateFile::new(&self.home, &account.name))
            .on_session_change(Arc::new(move |s: &Session| {
                if let Ok(mut slot) = sink_slot.lock() {
                    *slot = Some(s.clone());
                }
            }))
            .build()?;
        Ok(Opened { client, credential, latest, vault })
    }
}

/// A client plus what is needed to persist its session afterwards.
pub struct Opened {
    /// The client.
    pub client: Client,
    credential: Credential,
    latest: Arc<Mutex<Option<Session>>>,
    vault: Arc<Vault>,
}

impl Opened {
    /// The latest session, once a call changed it (the keep-alive reads it).
    pub fn session_slot(&self) -> Arc<Mutex<Option<Session>>> {
        self.latest.clone()
    }

    /// Whether the account's credential is a cookie session.
    pub fn holds_cookies(&self) -> bool {
        matches!(self.credential, Credential::Cookies(_))
    }

    /// The vault the credential came from.
    pub fn vault(&self) -> Arc<Vault> {
        self.vault.clone()
    }

    /// Writes rotated cookies back to the vault.
    pub async fn finish(self) -> anyhow::Result<()> {
        let changed = self.latest.lock().ok().and_then(|mut s| s.take());
        let (Some(session), Credential::Cookies(mut cookies)) = (changed, self.credential) else {
            return Ok(());
        };
        let mut any = false;
        for (name, value) in session.cookies() {
            any |= cookies.apply(name, Some(secrecy::SecretString::from(value.to_owned())));
        }
        if let Some(claim) = session.extra("ig_www_claim")
            && cookies.device.www_claim != claim
        {
            claim.clone_into(&mut cookies.device.www_claim);
            any = true;
        }
        if any {
            self.vault.put(&self.client.account().name, Credential::Cookies(cookies)).await?;
        }
        Ok(())
    }
}

/// The engine session for a stored credential.
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
