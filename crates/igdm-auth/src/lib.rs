//! Accounts and authentication for igdm: the encrypted vault, browser login
//! over the DevTools protocol, cookie import, OAuth token management and
//! session upkeep.
//!
//! - [`CredentialStore`] is the seam the client library reads credentials
//!   through; [`Vault`] (age-encrypted file) and [`MemoryStore`] implement it.
//! - [`Credential`] holds every secret in a `SecretString`; no `Debug` or
//!   `Display` in this crate prints a secret value.
//! - [`browser`] runs a connector's `auth.connect.playwright` steps in
//!   Chromium (feature `browser`).
//! - [`import`] reads cookies pasted from a browser (JSON, cookies.txt,
//!   a `Cookie:` header, a cURL command).
//! - [`oauth`] implements Instagram Login and the [`oauth::TokenManager`];
//!   [`facebook`] turns a Facebook user token into a Page token (Facebook Login).
//! - [`session`] keeps cookie sessions alive and records account health in
//!   a [`SessionStore`]: the non-secret [`SessionState`] of each account,
//!   kept outside the vault (the CLI backs it with the client's state file).

#![warn(clippy::unwrap_used)]

pub mod browser;
pub mod connector;
pub mod credential;
pub mod error;
pub mod facebook;
pub mod import;
pub mod oauth;
pub mod probe;
pub mod session;
pub mod store;
pub mod vault;

pub use connector::AuthConfig;
pub use credential::{
    AccountSummary, AppSecrets, CookieCredential, Credential, DeviceIdentity, TokenCredential,
    TokenKind,
};
pub use error::{AuthError, validate_account};
pub use igdm_model::SessionState;
pub use store::{BoxFuture, CredentialStore, MemoryStore, SessionStore, SessionUpdate};
pub use vault::{Vault, VaultKey};
