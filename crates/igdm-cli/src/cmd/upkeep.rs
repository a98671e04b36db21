//! Session upkeep in the CLI: the one session record of each account, and
//! the keep-alive that long-running commands schedule for cookie sessions.
//!
//! - [`StateSessions`] is igdm-auth's [`SessionStore`] over the client's
//!   state file (`$IGDM_HOME/state/<account>.json`): the health a call
//!   records is the health the keep-alive decides on and `igdm accounts
//!   status` shows. Session states older versions kept in the vault are
//!   moved there once ([`migrate_legacy_states`]).
//! - [`ClientProbe`] runs the connector's `session.keep_alive` request
//!   through the account's [`igdm::Client`] (same transport, same live
//!   session, same health gate) and reports the cookies the session rotated
//!   so the keep-alive stores them in the vault.
//! - [`keep_alive_for`] builds the keep-alive of an opened account;
//!   `igdm mcp`, `igdm serve --keep-alive` and `igdm accounts keepalive`
//!   schedule it.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail};
use igdm::{Home, StateFile};
use igdm_auth::session::{
    KeepAlive, KeepAliveConfig, ProbeOutcome, Reauth, SessionProbe, Tick, next_step,
};
use igdm_auth::{
    AuthError, BoxFuture, CookieCredential, CredentialStore, SessionState, SessionStore,
    SessionUpdate, Vault,
};
use igdm_model::SessionHealth;
use igdm_spec::Session;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::ctx::{Ctx, Opened};
use crate::Global;

/// The session records of `$IGDM_HOME/state/`, as a [`SessionStore`].
#[derive(Debug, Clone)]
pub struct StateSessions {
    home: Home,
}

impl StateSessions {
    /// The records under `home`.
    pub fn new(home: Home) -> Self {
        Self { home }
    }

    fn file(&self, account: &str) -> Result<StateFile, AuthError> {
        igdm_auth::validate_account(account)?;
        Ok(StateFile::new(&self.home, account))
    }
}

fn state_error(account: &str, e: &igdm::Error) -> AuthError {
    AuthError::Io {
        action: "updating the session state of",
        path: account.into(),
        source: std::io::Error::other(e.to_string()),
    }
}

impl SessionStore for StateSessions {
    fn session<'a>(&'a self, account: &'a str) -> BoxFuture<'a, Result<SessionState, AuthError>> {
        Box::pin(async move {
            let file = self.file(account)?;
            file.read().map(|s| s.session).map_err(|e| state_error(account, &e))
        })
    }

    fn update_session<'a>(
        &'a self,
        account: &'a str,
        update: SessionUpdate<'a>,
    ) -> BoxFuture<'a, Result<SessionState, AuthError>> {
        Box::pin(async move {
            let file = self.file(account)?;
            file.update(|s| update(&mut s.session))
                .map(|s| s.session)
                .map_err(|e| state_error(account, &e))
        })
    }
}

/// Moves session states an older igdm kept in the vault into the state
/// files. A recorded logout or challenge is kept unless the state file
/// already says the account needs the user; the latest times win.
///
/// # Errors
/// Vault or state file errors.
pub async fn migrate_legacy_states(vault: &Vault, home: &Home) -> anyhow::Result<()> {
    for (account, old) in vault.take_legacy_states().await? {
        StateFile::new(home, &account).update(|s| {
            let new = &mut s.session;
            if old.blocked() && !new.blocked() {
                new.health = old.health.clone();
                new.last_error.clone_from(&old.last_error);
            }
            new.last_success_at = new.last_success_at.max(old.last_success_at);
            new.last_read_at = new.last_read_at.max(old.last_read_at);
            new.last_keep_alive_at = new.last_keep_alive_at.max(old.last_keep_alive_at);
        })?;
        tracing::info!(account, "session state moved from the vault to the state file");
    }
    Ok(())
}

/// The keep-alive request sent through the account's client.
pub struct ClientProbe {
    client: igdm::Client,
    latest: Arc<Mutex<Option<Session>>>,
}

impl ClientProbe {
    /// A probe over `opened`'s client and live session.
    pub fn new(opened: &Opened) -> Self {
        Self { client: opened.client.clone(), latest: opened.session_slot() }
    }

    /// Cookie values and the `www-claim` of the live session that differ
    /// from the stored credential.
    fn rotated(
        &self,
        stored: &CookieCredential,
    ) -> (Vec<(String, Option<SecretString>)>, Option<String>) {
        let Ok(guard) = self.latest.lock() else { return (Vec::new(), None) };
        let Some(session) = guard.as_ref() else { return (Vec::new(), None) };
        let rotated = session
            .cookies()
            .filter(|(name, value)| stored.get(name).is_none_or(|v| v.expose_secret() != *value))
            .map(|(name, value)| (name.to_owned(), Some(SecretString::from(value.to_owned()))))
            .collect();
        (rotated, session.extra("ig_www_claim").map(str::to_owned))
    }
}

impl SessionProbe for ClientProbe {
    fn keep_alive<'a>(&'a self, credential: &'a CookieCredential) -> BoxFuture<'a, ProbeOutcome> {
        Box::pin(async move {
            match self.client.keep_alive().await {
                Ok(()) => {
                    let (rotated, www_claim) = self.rotated(credential);
                    ProbeOutcome::Alive { rotated, www_claim }
                }
                Err(igdm::Error::Api(api)) => ProbeOutcome::Failed(api),
                Err(other) => ProbeOutcome::Failed(other.to_api_error()),
            }
        })
    }
}

/// The keep-alive of an opened account, or `None` when it holds no cookie
/// session or its connector declares no `session.keep_alive`. The interval
/// is the connector's unless `interval` overrides it; a keep-alive is
/// skipped when a real read happened within one interval.
pub fn keep_alive_for(
    opened: &Opened,
    home: &Home,
    interval: Option<Duration>,
) -> Option<KeepAlive> {
    if !opened.holds_cookies() || !opened.client.has_keep_alive() {
        return None;
    }
    let declared = opened.client.connector().session.keep_alive.as_ref().and_then(|k| k.interval);
    let every = interval.or(declared).unwrap_or(Duration::from_secs(4 * 3600));
    let credentials: Arc<dyn CredentialStore> = opened.vault();
    Some(KeepAlive::new(
        credentials,
        Arc::new(StateSessions::new(home.clone())),
        Arc::new(ClientProbe::new(opened)),
        opened.client.account().name.clone(),
        KeepAliveConfig::every(every),
    ))
}

/// Schedules the keep-alive of an opened account for the life of a
/// long-running command (`igdm mcp`, `igdm serve --keep-alive`). When the
/// account needs the user, the task stops calling and says on stderr exactly
/// what to run. Abort the handle when the command ends.
pub fn schedule(opened: &Opened, home: &Home) -> Option<tokio::task::JoinHandle<()>> {
    let ka = keep_alive_for(opened, home, None)?;
    tracing::info!(account = ka.account(), "keeping the web session alive");
    Some(tokio::spawn(async move {
        let health = ka
            .run(false, |account, tick| match tick {
                Ok(t) => tracing::debug!(account, tick = ?t, "keep-alive"),
                Err(e) => tracing::warn!(account, error = %e, "keep-alive could not run"),
            })
            .await;
        if let Some(step) = next_step(ka.account(), &health, Reauth::Browser) {
            eprintln!("igdm: keep-alive of {} stopped. {step}", ka.account());
        }
    }))
}

/// `igdm accounts keepalive`.
#[derive(Debug, clap::Args)]
pub struct KeepaliveArgs {
    /// The accounts (default: every account on the private web API).
    pub names: Vec<String>,
    /// Make one keep-alive decision per account now, print it and exit.
    #[arg(long)]
    pub once: bool,
    /// Use this interval instead of the connector's (e.g. 30m, 4h); waits
    /// are jittered by ±10%.
    #[arg(long, value_name = "DURATION", value_parser = parse_interval)]
    pub interval: Option<Duration>,
}

fn parse_interval(raw: &str) -> Result<Duration, String> {
    igdm_auth::session::parse_duration(raw).map_err(|e| e.to_string())
}

/// What one keep-alive decision means for the user: a JSON row, a line of
/// text and the exit code it implies (3 when the user must act).
fn describe(account: &str, tick: &Result<Tick, AuthError>) -> (Value, String, u8) {
    let needs_user = |h: &SessionHealth| {
        let step = next_step(account, h, Reauth::Browser).unwrap_or_default();
        (
            json!({"account": account, "outcome": "stopped", "health": h, "next_step": step}),
            format!("{account}: {} — keep-alive stopped. {step}", h.name()),
            igdm::exit_code(&igdm_model::ErrorClass::AuthExpired),
        )
    };
    match tick {
        Ok(Tick::Alive { rotated }) => (
            json!({"account": account, "outcome": "alive", "rotated": rotated}),
            format!("{account}: alive ({rotated} session value(s) rotated and stored)"),
            0,
        ),
        Ok(Tick::SkippedRecentRead) => (
            json!({"account": account, "outcome": "skipped_recent_read"}),
            format!("{account}: skipped, a real read kept the session alive recently"),
            0,
        ),
        Ok(Tick::TransientFailure(m)) => (
            json!({"account": account, "outcome": "transient_failure", "message": m}),
            format!("{account}: keep-alive failed for now ({m}); trying again at the next turn"),
            0,
        ),
        Ok(Tick::Marked(h) | Tick::SkippedBlocked(h)) if h.needs_user() => needs_user(h),
        Ok(Tick::Marked(h) | Tick::SkippedBlocked(h)) => (
            json!({"account": account, "outcome": "marked", "health": h}),
            format!("{account}: {}", h.name()),
            0,
        ),
        Ok(other) => (
            json!({"account": account, "outcome": format!("{other:?}")}),
            format!("{account}: {other:?}"),
            0,
        ),
        Err(e) => (
            json!({"account": account, "outcome": "error", "message": e.to_string()}),
            format!("{account}: keep-alive could not run: {e}"),
            1,
        ),
    }
}

/// Runs `igdm accounts keepalive`.
pub async fn keepalive(
    ctx: &mut Ctx,
    args: KeepaliveArgs,
    global: &Global,
) -> anyhow::Result<ExitCode> {
    let names: Vec<String> = if args.names.is_empty() {
        ctx.accounts
            .accounts
            .iter()
            .filter(|a| a.backend == igdm_model::Backend::Web)
            .map(|a| a.name.clone())
            .collect()
    } else {
        args.names.clone()
    };
    if names.is_empty() {
        bail!("no web accounts to keep alive: log one in with `igdm login NAME`");
    }
    let mut opened = Vec::new();
    let mut keep = Vec::new();
    for name in &names {
        let o = ctx.client(Some(name)).await?;
        let ka = keep_alive_for(&o, &ctx.home, args.interval).ok_or_else(|| {
            anyhow!("{name} holds no web session with a keep-alive (only cookie sessions of instagram-web need one)")
        })?;
        opened.push(o);
        keep.push(ka);
    }
    let code = if args.once {
        let mut rows = Vec::new();
        let mut code = 0u8;
        for ka in &keep {
            let (row, line, c) = describe(ka.account(), &ka.tick().await);
            if !global.json {
                println!("{line}");
            }
            rows.push(row);
            code = code.max(c);
        }
        if global.json {
            super::output::complete_list(&rows);
        }
        code
    } else {
        run_until_stopped(keep, global.json).await
    };
    for o in opened {
        o.finish().await?;
    }
    Ok(ExitCode::from(code))
}

/// Runs every keep-alive (the first decision at once) until each account
/// needs the user, or Ctrl-C. Each decision is a line on stdout (stderr with
/// `--json`, whose one document lists how each account ended).
async fn run_until_stopped(keep: Vec<KeepAlive>, json_out: bool) -> u8 {
    let mut tasks = tokio::task::JoinSet::new();
    for ka in keep {
        tasks.spawn(async move {
            let health = ka
                .run(true, |account, tick| {
                    let (_, line, _) = describe(account, tick);
                    if json_out {
                        eprintln!("{line}");
                    } else {
                        println!("{line}");
                    }
                })
                .await;
            describe(ka.account(), &Ok(Tick::Marked(health)))
        });
    }
    let mut rows = Vec::new();
    let mut code = 0u8;
    loop {
        tokio::select! {
            next = tasks.join_next() => match next {
                Some(Ok((row, _, c))) => {
                    rows.push(row);
                    code = code.max(c);
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "a keep-alive task failed");
                    code = code.max(1);
                }
                None => break,
            },
            _ = tokio::signal::ctrl_c() => {
                tasks.abort_all();
                break;
            }
        }
    }
    if json_out {
        super::output::complete_list(&rows);
    }
    code
}
