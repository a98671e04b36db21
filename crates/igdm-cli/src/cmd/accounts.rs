//! `igdm accounts add|list|remove|status|keepalive`.

use std::process::ExitCode;

use anyhow::{Context as _, anyhow, bail};
use secrecy::SecretString;
use serde_json::{Value, json};

use igdm::AccountConfig;
use igdm_auth::session::AccountStatus;
use igdm_auth::{Credential, CredentialStore, TokenCredential, TokenKind};
use igdm_model::{Backend, Timestamp};

use crate::Global;
use igdm_runtime::{Runtime, connector};

/// Account commands.
#[derive(Debug, clap::Subcommand)]
pub enum AccountsCommand {
    /// Add an account from cookies, a token, or a fresh sandbox account.
    Add(AddArgs),
    /// List the accounts.
    List,
    /// Remove an account and its credentials.
    Remove {
        /// The account name.
        name: String,
    },
    /// Each account's session health, token expiry, last successful call,
    /// write budget left and, when the user must act, the exact next step.
    Status,
    /// Keep web sessions alive in the foreground: the connector's
    /// `session.keep_alive` request, jittered, skipped after a recent real
    /// read; rotated cookies go to the vault. Stops an account at the first
    /// logout or challenge and says what to run.
    Keepalive(super::upkeep::KeepaliveArgs),
}

/// `igdm accounts add`.
#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// A local name for the account.
    pub name: String,
    /// The connector: instagram-web, instagram-graph or instagram-page.
    #[arg(long)]
    pub connector: Option<String>,
    /// A connector file of your own (any file `igdm spec validate` accepts):
    /// checked, installed under `$IGDM_HOME/connectors/` by its id, and used
    /// for this account.
    #[arg(long, conflicts_with = "connector", value_name = "PATH")]
    pub connector_file: Option<std::path::PathBuf>,
    /// Talk to this base URL instead of Instagram (a sandbox, a proxy).
    #[arg(long)]
    pub base_url: Option<String>,
    /// Cookies: a JSON object, a Netscape cookies.txt or a Cookie header (`-` for stdin).
    #[arg(long, conflicts_with_all = ["token", "sandbox"])]
    pub cookies: Option<String>,
    /// An access token (Graph); `-` reads it from stdin. Prefer IGDM_TOKEN to keep it out of shell history.
    #[arg(long, env = "IGDM_TOKEN", hide_env_values = true, conflicts_with = "sandbox")]
    pub token: Option<String>,
    /// Provision a fresh account on a running `igdm sandbox` at this URL
    /// (or, with --as, attach to one the sandbox already hosts).
    #[arg(long)]
    pub sandbox: Option<String>,
    /// With --sandbox: act as this existing sandbox account (the demo's
    /// `maya.lens` or `sunrise_bakery`) instead of creating an empty one.
    /// The connector defaults to the account's kind (personal: instagram-web,
    /// business: instagram-graph).
    #[arg(long = "as", requires = "sandbox", value_name = "USERNAME")]
    pub as_username: Option<String>,
    /// Minimum seconds between two writes (overrides the connector's pacing; jitter is then off).
    #[arg(long)]
    pub min_write_interval: Option<f64>,
    /// Writes allowed per rolling hour (overrides the connector).
    #[arg(long)]
    pub writes_per_hour: Option<u32>,
    /// Writes allowed per rolling day (overrides the connector).
    #[arg(long)]
    pub writes_per_day: Option<u32>,
}

/// Runs an accounts command.
pub async fn run(cmd: AccountsCommand, global: &Global) -> anyhow::Result<ExitCode> {
    let mut rt = Runtime::from_env()?;
    match cmd {
        AccountsCommand::Add(args) => add(&mut rt, args, global).await,
        AccountsCommand::List => {
            let list: Vec<Value> = rt
                .accounts()
                .accounts
                .iter()
                .map(|a| json!({"name": a.name, "connector": a.connector, "backend": a.backend, "username": a.username, "user_id": a.user_id, "base_url": a.base_url}))
                .collect();
            if global.json {
                super::output::complete_list(&list);
            } else if list.is_empty() {
                println!(
                    "no accounts yet: igdm accounts add NAME --connector … (--cookies FILE | --token TOKEN | --sandbox URL)"
                );
            } else {
                for a in &rt.accounts().accounts {
                    println!(
                        "{:<16} {:<16} {:<20} {}",
                        a.name,
                        a.connector,
                        a.username.as_deref().unwrap_or("-"),
                        a.base_url.as_deref().unwrap_or("instagram")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        AccountsCommand::Remove { name } => {
            let removed = rt
                .accounts_mut()
                .remove(&name)
                .ok_or_else(|| anyhow!("no account named {name:?}"))?;
            rt.save_accounts()?;
            rt.vault()?.delete(&removed.name).await?;
            let _ = std::fs::remove_file(rt.home().join("state").join(format!("{name}.json")));
            if global.json {
                println!("{}", json!({"removed": name}));
            } else {
                println!("removed {name}");
            }
            Ok(ExitCode::SUCCESS)
        }
        AccountsCommand::Status => status(&rt, global).await,
        AccountsCommand::Keepalive(args) => super::upkeep::keepalive(&rt, args, global).await,
    }
}

fn read_arg(value: &str) -> anyhow::Result<String> {
    if value == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        Ok(s)
    } else if std::path::Path::new(value).exists() {
        std::fs::read_to_string(value).with_context(|| format!("reading {value}"))
    } else {
        Ok(value.to_owned())
    }
}

async fn add(rt: &mut Runtime, args: AddArgs, global: &Global) -> anyhow::Result<ExitCode> {
    if rt.accounts().get(&args.name).is_some() {
        bail!(
            "an account named {:?} already exists (igdm accounts remove {} first)",
            args.name,
            args.name
        );
    }
    let (mut config, credential) = if let Some(url) = &args.sandbox {
        let conn = match (&args.connector_file, &args.connector) {
            (Some(file), _) => Some(rt.install_connector(file)?),
            (None, Some(id)) => Some(rt.connector(id)?),
            (None, None) => None,
        };
        provision(&args, url, conn.as_deref()).await?
    } else {
        let conn = match (&args.connector_file, &args.connector) {
            (Some(file), _) => rt.install_connector(file)?,
            (None, Some(id)) => rt.connector(id)?,
            (None, None) => bail!("--connector ID or --connector-file PATH is required"),
        };
        let connector_id = conn.id.clone();
        let now = rt.now().await;
        let credential = if let Some(c) = &args.cookies {
            let text = read_arg(c)?;
            let mut cred = igdm_auth::import::import_cookies(
                &text,
                conn.auth.domain.as_deref().unwrap_or("instagram.com"),
                &conn.auth.cookies,
                Some(args.name.clone()),
            )?;
            cred.base_url.clone_from(&args.base_url);
            Credential::Cookies(cred)
        } else if let Some(t) = &args.token {
            let token = if t == "-" { read_arg(t)?.trim().to_owned() } else { t.clone() };
            Credential::Token(TokenCredential {
                access_token: SecretString::from(token),
                expires_at: None,
                issued_at: now,
                scopes: Vec::new(),
                kind: if connector_id == "instagram-page" {
                    TokenKind::Page
                } else {
                    TokenKind::InstagramUser
                },
                user_id: None,
                page_id: None,
                app_id: None,
                base_url: args.base_url.clone(),
            })
        } else {
            bail!("give --cookies FILE, --token TOKEN or --sandbox URL");
        };
        let user_id = match &credential {
            Credential::Cookies(c) => c.user_id(),
            _ => None,
        };
        let mut config = AccountConfig {
            name: args.name.clone(),
            connector: connector_id.clone(),
            backend: conn.backend(),
            base_url: args.base_url.clone(),
            user_id,
            username: None,
            pacing: igdm::PacingOverride::default(),
            created_at: Timestamp::now(),
        };
        let mut credential = credential;
        if let Credential::Token(token) = &mut credential {
            rt.identify_token(&mut config, token).await?;
        }
        (config, credential)
    };
    config.pacing = igdm::PacingOverride {
        min_interval_secs: args.min_write_interval.filter(|s| s.is_finite() && *s >= 0.0),
        hourly: args.writes_per_hour,
        daily: args.writes_per_day,
    };
    rt.add_account(config.clone(), credential).await?;
    if global.json {
        println!(
            "{}",
            json!({"name": config.name, "connector": config.connector, "user_id": config.user_id, "username": config.username, "base_url": config.base_url})
        );
    } else {
        println!(
            "added {} ({}{})",
            config.name,
            config.connector,
            config.base_url.as_deref().map(|u| format!(" at {u}")).unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Creates an account on a running sandbox (or, with `--as`, finds the one it
/// already hosts) and returns its config and credential.
/// Without a connector, the account's kind picks one (personal:
/// instagram-web, business: instagram-graph).
pub async fn provision(
    args: &AddArgs,
    sandbox: &str,
    conn: Option<&igdm_spec::Connector>,
) -> anyhow::Result<(AccountConfig, Credential)> {
    let base = sandbox.trim_end_matches('/');
    if let Some(username) = &args.as_username {
        let body = existing_sandbox_account(base, username).await?;
        let conn = match (conn, body["kind"].as_str()) {
            (Some(c), _) => c.clone(),
            (None, Some("business")) => (*connector("instagram-graph")?).clone(),
            (None, _) => (*connector("instagram-web")?).clone(),
        };
        return account_from_sandbox(&args.name, &conn, base, &body);
    }
    let conn = match conn {
        Some(c) => c.clone(),
        None => (*connector("instagram-web")?).clone(),
    };
    let kind = if conn.backend() == Backend::Web { "personal" } else { "business" };
    let resp = reqwest::Client::new()
        .post(format!("{base}/_sandbox/accounts"))
        .json(&json!({"kind": kind, "username": args.name}))
        .send()
        .await
        .with_context(|| format!("reaching the sandbox at {base}"))?;
    let status = resp.status();
    let body: Value =
        resp.json().await.context("the sandbox answered with something that is not JSON")?;
    if !status.is_success() {
        bail!("the sandbox refused the account: {body}");
    }
    account_from_sandbox(&args.name, &conn, base, &body)
}

/// The control API's record (credentials included) of the sandbox account `username`.
async fn existing_sandbox_account(base: &str, username: &str) -> anyhow::Result<Value> {
    let resp = reqwest::Client::new()
        .get(format!("{base}/_sandbox/accounts"))
        .send()
        .await
        .with_context(|| format!("reaching the sandbox at {base}"))?;
    let status = resp.status();
    let mut body: Value =
        resp.json().await.context("the sandbox answered with something that is not JSON")?;
    if !status.is_success() {
        bail!("the sandbox did not list its accounts: {body}");
    }
    let accounts = body["accounts"].as_array_mut().map(std::mem::take).unwrap_or_default();
    let known: Vec<String> =
        accounts.iter().filter_map(|a| a["username"].as_str().map(str::to_owned)).collect();
    accounts.into_iter().find(|a| a["username"] == username).ok_or_else(|| {
        anyhow!(
            "the sandbox at {base} hosts no account {username:?} (it hosts: {}); start it with `igdm sandbox --seed demo` or leave out --as to create one",
            if known.is_empty() { "none".to_owned() } else { known.join(", ") }
        )
    })
}

/// Builds an account and its credential from the sandbox's account JSON.
pub fn account_from_sandbox(
    name: &str,
    conn: &igdm_spec::Connector,
    base: &str,
    body: &Value,
) -> anyhow::Result<(AccountConfig, Credential)> {
    let text =
        |v: &Value| v.as_str().map(str::to_owned).or_else(|| v.as_u64().map(|n| n.to_string()));
    let connector_id = conn.id.as_str();
    let backend = conn.backend();
    let credential = if backend == Backend::Web {
        let cookies =
            body["cookies"].as_object().ok_or_else(|| anyhow!("sandbox gave no cookies"))?;
        let map = cookies
            .iter()
            .filter_map(|(k, v)| text(v).map(|v| (k.clone(), SecretString::from(v))))
            .collect();
        let mut cred =
            igdm_auth::CookieCredential::new(map, "instagram.com", Some(name.to_owned()));
        cred.base_url = Some(base.to_owned());
        Credential::Cookies(cred)
    } else {
        let (token, kind) = if backend == Backend::Page {
            (text(&body["page_token"]), TokenKind::Page)
        } else {
            (text(&body["access_token"]), TokenKind::InstagramUser)
        };
        let token = token.ok_or_else(|| anyhow!("sandbox gave no token for {connector_id}"))?;
        Credential::Token(TokenCredential {
            access_token: SecretString::from(token),
            expires_at: None,
            issued_at: Timestamp::now(),
            scopes: vec![
                "instagram_business_basic".into(),
                "instagram_business_manage_messages".into(),
            ],
            kind,
            user_id: text(&body["id"]),
            page_id: text(&body["page_id"]),
            app_id: None,
            base_url: Some(base.to_owned()),
        })
    };
    let user_id = if backend == Backend::Web { text(&body["pk"]) } else { text(&body["id"]) };
    let config = AccountConfig {
        name: name.to_owned(),
        connector: connector_id.to_owned(),
        backend,
        base_url: Some(base.to_owned()),
        user_id,
        username: text(&body["username"]),
        pacing: igdm::PacingOverride::default(),
        created_at: Timestamp::now(),
    };
    Ok((config, credential))
}

/// `igdm accounts status`: every account's one session record (the state
/// file the client writes), with the token expiry from the vault and the
/// write budget left under the account's pacing.
async fn status(rt: &Runtime, global: &Global) -> anyhow::Result<ExitCode> {
    let vault = rt.vault_migrated().await?;
    let mut rows = Vec::new();
    let now = Timestamp::now();
    // Token expiry is measured on the runtime's clock (a followed sandbox clock in tests).
    let token_now = rt.now().await;
    for a in rt.accounts().accounts.clone() {
        let state = igdm::StateFile::new(rt.home(), &a.name).read()?;
        let conn = rt.connector(&a.connector)?;
        let client = igdm::Client::builder(a.clone(), conn, igdm_spec::Session::new()).build()?;
        let policy = client.pacing();
        let left = |budget: Option<u32>, secs: u64| {
            budget.map(|b| {
                let used = state.writes_within(now, std::time::Duration::from_secs(secs));
                (b as usize).saturating_sub(used)
            })
        };
        let (health, token_expires, next_step) = match vault.get(&a.name).await? {
            Some(cred) => {
                let st = AccountStatus::derive(&a.name, &cred, &state.session, token_now);
                // An Instagram Login token always expires (60 days): one
                // whose expiry the API never stated is shown as unknown. A
                // Page token without one does not expire.
                let expires = match (&cred, st.token_expires_at) {
                    (_, Some(t)) => json!(t),
                    (Credential::Token(t), None) if t.kind == TokenKind::InstagramUser => {
                        json!("unknown")
                    }
                    _ => Value::Null,
                };
                (st.health, expires, st.next_step)
            }
            None => (
                state.session.health.clone(),
                Value::Null,
                Some(format!("no credential is stored: run `igdm login {}`", a.name)),
            ),
        };
        rows.push(json!({
            "name": a.name,
            "connector": a.connector,
            "user_id": a.user_id,
            "username": a.username,
            "health": health,
            "last_success_at": state.session.last_success_at,
            "last_read_at": state.session.last_read_at,
            "last_keep_alive_at": state.session.last_keep_alive_at,
            "last_error": state.session.last_error,
            "next_step": next_step,
            "token_expires_at": token_expires,
            "writes_left_this_hour": left(policy.hourly, 3600),
            "writes_left_today": left(policy.daily, 86_400),
        }));
    }
    if global.json {
        super::output::complete_list(&rows);
    } else {
        for r in &rows {
            println!(
                "{:<16} {:<16} {:<14} last ok: {:<28} token expires: {:<26} writes left: {}/h {}/day",
                r["name"].as_str().unwrap_or(""),
                r["connector"].as_str().unwrap_or(""),
                r["health"]["state"].as_str().unwrap_or("?"),
                r["last_success_at"].as_str().unwrap_or("never"),
                r["token_expires_at"].as_str().unwrap_or("-"),
                r["writes_left_this_hour"].as_u64().map_or("∞".to_owned(), |n| n.to_string()),
                r["writes_left_today"].as_u64().map_or("∞".to_owned(), |n| n.to_string()),
            );
            if let Some(step) = r["next_step"].as_str() {
                println!("{:<16} → {step}", "");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
