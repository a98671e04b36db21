//! The accounts file: which accounts exist and how to reach them. Secrets are
//! not here; they live in the credential store.

use serde::{Deserialize, Serialize};

use igdm_model::{Backend, Timestamp};

use crate::{Error, Home, home::write_private};

/// Per-account overrides of the connector's pacing policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PacingOverride {
    /// Minimum seconds between two writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_interval_secs: Option<f64>,
    /// Writes allowed per rolling hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hourly: Option<u32>,
    /// Writes allowed per rolling day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily: Option<u32>,
}

/// One configured account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountConfig {
    /// The local name (`--account NAME`).
    pub name: String,
    /// The connector id.
    pub connector: String,
    /// The surface behind the connector.
    pub backend: Backend,
    /// Base URL override (sandbox, proxy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The provider's id for the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The username, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Pacing overrides.
    #[serde(default, skip_serializing_if = "is_default")]
    pub pacing: PacingOverride,
    /// When it was added.
    pub created_at: Timestamp,
}

fn is_default(p: &PacingOverride) -> bool {
    *p == PacingOverride::default()
}

/// The set of accounts, stored as `$IGDM_HOME/accounts.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Accounts {
    /// The accounts, in the order they were added.
    pub accounts: Vec<AccountConfig>,
}

impl Accounts {
    const FILE: &'static str = "accounts.json";

    /// Loads the file; a missing file is an empty list.
    ///
    /// # Errors
    /// When the file exists but cannot be read or parsed.
    pub fn load(home: &Home) -> Result<Self, Error> {
        let path = home.join(Self::FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| Error::Config(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    /// Saves the file atomically.
    ///
    /// # Errors
    /// On I/O failure.
    pub fn save(&self, home: &Home) -> Result<(), Error> {
        home.ensure()?;
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::Config(format!("cannot encode accounts: {e}")))?;
        write_private(&home.join(Self::FILE), &bytes)
    }

    /// Finds an account by name.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&AccountConfig> {
        self.accounts.iter().find(|a| a.name == name)
    }

    /// Adds an account; the name must be new.
    ///
    /// # Errors
    /// When an account of that name exists.
    pub fn add(&mut self, account: AccountConfig) -> Result<(), Error> {
        if self.get(&account.name).is_some() {
            return Err(Error::Config(format!(
                "an account named {:?} already exists",
                account.name
            )));
        }
        self.accounts.push(account);
        Ok(())
    }

    /// Removes an account by name, returning it.
    pub fn remove(&mut self, name: &str) -> Option<AccountConfig> {
        let idx = self.accounts.iter().position(|a| a.name == name)?;
        Some(self.accounts.remove(idx))
    }

    /// Resolves `--account`: the named one, or the only one.
    ///
    /// # Errors
    /// When the name is unknown, or no name is given and there is not exactly one account.
    pub fn resolve(&self, name: Option<&str>) -> Result<&AccountConfig, Error> {
        match name {
            Some(n) => self.get(n).ok_or_else(|| {
                Error::Config(format!(
                    "no account named {n:?} (known: {})",
                    self.names().join(", ")
                ))
            }),
            None => match self.accounts.as_slice() {
                [only] => Ok(only),
                [] => Err(Error::Config(
                    "no accounts yet: add one with `igdm accounts add NAME …`".into(),
                )),
                _ => Err(Error::Config(format!(
                    "several accounts exist ({}): choose one with --account NAME",
                    self.names().join(", ")
                ))),
            },
        }
    }

    fn names(&self) -> Vec<&str> {
        self.accounts.iter().map(|a| a.name.as_str()).collect()
    }
}
