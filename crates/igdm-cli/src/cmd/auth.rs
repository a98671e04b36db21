//! `igdm login`, `igdm oauth` and `igdm browser-run`: getting credentials
//! into the vault.
//!
//! - `igdm login NAME` runs the connector's browser steps in Chromium (or
//!   imports cookies with `--cookies`), stores the session in the vault,
//!   registers the account, and validates it with the connector's
//!   `auth.validate` probe.
//! - `igdm oauth NAME` runs Instagram Login; with `--page` it connects a
//!   Facebook Page for the instagram-page connector, from a Facebook user
//!   token (exchanged for a long-lived one, then `/me/accounts`) or from a
//!   Page token given directly.
//! - `igdm browser-run` executes browser steps from stdin and prints the
//!   result, for host applications.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use secrecy::SecretString;
use serde_json::{Value, json};

use igdm::AccountConfig;
use igdm_auth::browser::{BrowserOptions, UrlRewriter};
use igdm_auth::oauth::{OAuthApp, OAuthClient, OAuthEndpoints, SystemClock};
use igdm_auth::{
    AuthConfig, CookieCredential, Credential, CredentialStore, TokenCredential, TokenKind,
};
use igdm_model::Timestamp;

use crate::Global;
use igdm_runtime::Runtime;

/// `igdm login`.
#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// A local name for the account.
    pub name: String,
    /// The connector (default: the account's, else instagram-web).
    #[arg(long)]
    pub connector: Option<String>,
    /// Read the connector from this file instead of the built-in ones.
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,
    /// Log in against this base URL instead of Instagram (the sandbox).
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Run the browser without a window (the default without a display).
    #[arg(long)]
    pub headless: bool,
    /// Import cookies instead of opening a browser: a file or `-` for stdin
    /// (JSON, cookies.txt, a `Cookie:` header or a copied cURL command).
    #[arg(long, value_name = "FILE|-")]
    pub cookies: Option<String>,
    /// Fill the login form with this username (unattended logins).
    #[arg(long, requires = "password_env")]
    pub username: Option<String>,
    /// The environment variable holding the password for `--username`.
    #[arg(long, value_name = "VAR", requires = "username")]
    pub password_env: Option<String>,
    /// Skip the `auth.validate` probe.
    #[arg(long)]
    pub no_validate: bool,
}

/// `igdm oauth`.
#[derive(Debug, clap::Args)]
pub struct OauthArgs {
    /// A local name for the account.
    pub name: String,
    /// The Instagram app id.
    #[arg(long, required_unless_present = "page")]
    pub app_id: Option<String>,
    /// The environment variable holding the app secret.
    #[arg(long, value_name = "VAR", required_unless_present = "page")]
    pub app_secret_env: Option<String>,
    /// The redirect URI registered for the app (a loopback URL igdm listens on).
    #[arg(long, value_name = "URL", required_unless_present = "page")]
    pub redirect_uri: Option<String>,
    /// Talk to this base URL instead of Instagram (the sandbox).
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Seconds to wait for the consent callback.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// Do not listen for the callback: paste the URL the browser was redirected to
    /// (for redirect URIs that are not on this machine).
    #[arg(long)]
    pub paste: bool,
    /// Connect a Facebook Page for the instagram-page connector instead:
    /// from a Facebook user token (`--user-token-env`, with `--app-id` and
    /// `--app-secret-env`), or a Page token you already have (`--page-token-env`).
    #[arg(long)]
    pub page: bool,
    /// The environment variable holding a short-lived Facebook user token
    /// (with `--page`): igdm exchanges it for a long-lived one and stores the
    /// Page token, which then does not expire.
    #[arg(long, value_name = "VAR", requires = "page", conflicts_with = "page_token_env")]
    pub user_token_env: Option<String>,
    /// The environment variable holding the Page token (with `--page`).
    #[arg(long, value_name = "VAR", requires = "page")]
    pub page_token_env: Option<String>,
    /// The Page id (with `--page`; needed when several Pages qualify).
    #[arg(long)]
    pub page_id: Option<String>,
}

/// `igdm browser-run`.
#[derive(Debug, clap::Args)]
pub struct BrowserRunArgs {
    /// Run without a window even when a display exists.
    #[arg(long)]
    pub headless: bool,
    /// Rewrite https://www.instagram.com URLs in the steps to this base URL.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
}

fn read_source(value: &str) -> anyhow::Result<String> {
    if value == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).context("reading stdin")?;
        Ok(s)
    } else {
        std::fs::read_to_string(value).with_context(|| format!("reading {value}"))
    }
}

fn secret_env(var: &str) -> anyhow::Result<SecretString> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Ok(SecretString::from(v)),
        _ => bail!("the environment variable {var} is not set"),
    }
}

/// Adds the account to accounts.json, or updates what the login learnt.
fn register(
    ctx: &mut Runtime,
    name: &str,
    connector: &str,
    base_url: Option<&str>,
    user_id: Option<String>,
    username: Option<String>,
) -> anyhow::Result<()> {
    if let Some(existing) = ctx.accounts_mut().accounts.iter_mut().find(|a| a.name == name) {
        if existing.connector != connector {
            bail!(
                "account {name:?} uses the {} connector, not {connector}: pick another name or `igdm accounts remove {name}`",
                existing.connector
            );
        }
        existing.base_url = base_url.map(str::to_owned);
        existing.user_id = user_id.or(existing.user_id.take());
        existing.username = username.or(existing.username.take());
    } else {
        let backend = ctx.connector(connector)?.backend();
        ctx.accounts_mut().add(AccountConfig {
            name: name.to_owned(),
            connector: connector.to_owned(),
            backend,
            base_url: base_url.map(str::to_owned),
            user_id,
            username,
            pacing: igdm::PacingOverride::default(),
            created_at: Timestamp::now(),
        })?;
    }
    ctx.save_accounts()?;
    Ok(())
}

/// Runs the connector's `auth.validate` probe with the stored credential.
async fn validate(ctx: &mut Runtime, name: &str) -> anyhow::Result<Value> {
    let opened = ctx.open(Some(name)).await?;
    let out = opened.client().validate().await;
    opened.finish().await?;
    let out = out.with_context(|| format!("the stored credential of {name} was refused"))?;
    Ok(out.data)
}

fn connector_text(args: &LoginArgs, ctx: &Runtime) -> anyhow::Result<(String, String)> {
    if let Some(path) = &args.spec {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let id = args.connector.clone().unwrap_or_else(|| "instagram-web".to_owned());
        return Ok((id, text));
    }
    let id = args
        .connector
        .clone()
        .or_else(|| ctx.accounts().get(&args.name).map(|a| a.connector.clone()))
        .unwrap_or_else(|| "instagram-web".to_owned());
    let text = igdm_connectors::by_id(&id).ok_or_else(|| anyhow!("no connector {id:?}"))?;
    Ok((id, text.to_owned()))
}

/// The connector's steps, with form-filling steps after the first `goto`
/// when `--username` is given.
fn with_fill(cfg: &mut AuthConfig, fill: bool) {
    let Some(spec) = cfg.connect.as_mut() else { return };
    if !fill {
        return;
    }
    let at = spec
        .steps
        .iter()
        .position(|s| matches!(s, igdm_auth::browser::Step::Goto { .. }))
        .map_or(0, |i| i + 1);
    let fill_steps = json!([
        {"type": {"selector": "input[name=username]", "text": "{{username}}"}},
        {"type": {"selector": "input[name=password]", "text": "{{password}}"}},
        {"click": "button[type=submit]"}
    ]);
    if let Ok(steps) = igdm_auth::browser::parse_steps(&fill_steps) {
        spec.steps.splice(at..at, steps);
    }
}

/// Runs `igdm login`.
pub async fn login(args: LoginArgs, global: &Global) -> anyhow::Result<ExitCode> {
    igdm_auth::validate_account(&args.name)?;
    let mut ctx = Runtime::from_env()?;
    let (connector_id, text) = connector_text(&args, &ctx)?;
    let mut cfg = AuthConfig::from_connector_text(&text)?;
    let base_url = args
        .base_url
        .clone()
        .or_else(|| ctx.accounts().get(&args.name).and_then(|a| a.base_url.clone()));
    let (credential, message) = if let Some(source) = &args.cookies {
        let input = read_source(source)?;
        let mut cred = igdm_auth::import::import_cookies(&input, &cfg.domain, &cfg.cookies, None)?;
        cred.base_url.clone_from(&base_url);
        (cred, None)
    } else {
        with_fill(&mut cfg, args.username.is_some());
        let mut inputs = BTreeMap::new();
        if let (Some(u), Some(var)) = (&args.username, &args.password_env) {
            inputs.insert("username".to_owned(), SecretString::from(u.clone()));
            inputs.insert("password".to_owned(), secret_env(var)?);
        }
        let spec_headless = cfg.connect.as_ref().and_then(|c| c.headless);
        let headless = igdm_auth::browser::decide_headless(args.headless, spec_headless);
        let rewriter =
            base_url.as_deref().map(|b| UrlRewriter::new(&cfg.website, b)).transpose()?;
        let opts = BrowserOptions { headless, rewriter, inputs, ..BrowserOptions::default() };
        if !headless {
            eprintln!("A browser window opens: log in to Instagram there; igdm waits.");
        }
        let login = igdm_auth::browser::browser_login(&cfg, &opts).await?;
        (login.credential, login.message)
    };
    store_cookie_login(
        &mut ctx,
        &args,
        &connector_id,
        base_url.as_deref(),
        credential,
        message,
        global,
    )
    .await
}

async fn store_cookie_login(
    ctx: &mut Runtime,
    args: &LoginArgs,
    connector_id: &str,
    base_url: Option<&str>,
    mut credential: CookieCredential,
    message: Option<String>,
    global: &Global,
) -> anyhow::Result<ExitCode> {
    let vault = ctx.vault()?;
    // Keep the device identity of an existing session: never regenerate device ids.
    if let Some(Credential::Cookies(old)) = vault.get(&args.name).await? {
        credential.device = old.device;
        credential.created_at = old.created_at;
    }
    let user_id = credential.user_id();
    let username = credential.label.clone();
    vault.put(&args.name, Credential::Cookies(credential)).await?;
    register(ctx, &args.name, connector_id, base_url, user_id.clone(), username.clone())?;
    // A fresh login clears a past logout or challenge mark (the write ledger stays).
    igdm::StateFile::new(ctx.home(), &args.name).update(|s| {
        s.session.health = igdm_model::SessionHealth::Healthy;
        s.session.last_error = None;
    })?;
    if !args.no_validate {
        let validated = validate(ctx, &args.name).await?;
        let v_user = validated.get("username").and_then(Value::as_str).map(str::to_owned);
        let v_id = validated.get("id").or_else(|| validated.get("user_id")).and_then(|v| {
            v.as_str().map(str::to_owned).or_else(|| v.as_u64().map(|n| n.to_string()))
        });
        if v_user.is_some() || v_id.is_some() {
            register(
                ctx,
                &args.name,
                connector_id,
                base_url,
                v_id.or(user_id.clone()),
                v_user.or(username.clone()),
            )?;
        }
    }
    let shown = ctx.accounts().get(&args.name).cloned();
    let username = shown.as_ref().and_then(|a| a.username.clone());
    if global.json {
        println!(
            "{}",
            json!({"account": args.name, "connector": connector_id, "username": username,
                   "user_id": shown.and_then(|a| a.user_id), "validated": !args.no_validate,
                   "message": message})
        );
    } else {
        let message = message.unwrap_or_else(|| {
            format!("Connected {} as @{}.", args.name, username.as_deref().unwrap_or("?"))
        });
        println!("{message}");
        if args.no_validate {
            println!("(not validated: run `igdm accounts status` to check the session)");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `igdm oauth`.
pub async fn oauth(args: OauthArgs, global: &Global) -> anyhow::Result<ExitCode> {
    igdm_auth::validate_account(&args.name)?;
    let mut ctx = Runtime::from_env()?;
    let vault = ctx.vault()?;
    if args.page && args.user_token_env.is_some() {
        return facebook_page(&mut ctx, &args, global).await;
    }
    if args.page {
        let var = args.page_token_env.as_deref().ok_or_else(|| {
            anyhow!(
                "--page needs --user-token-env VAR (with --app-id and --app-secret-env) or --page-token-env VAR"
            )
        })?;
        let token = TokenCredential {
            access_token: secret_env(var)?,
            expires_at: None,
            issued_at: Timestamp::now(),
            scopes: Vec::new(),
            kind: TokenKind::Page,
            user_id: None,
            page_id: args.page_id.clone(),
            app_id: args.app_id.clone(),
            base_url: args.base_url.clone(),
        };
        vault.put(&args.name, Credential::Token(token)).await?;
        register(
            &mut ctx,
            &args.name,
            "instagram-page",
            args.base_url.as_deref(),
            args.page_id.clone(),
            None,
        )?;
        report_token(&args.name, "instagram-page", None, global);
        return Ok(ExitCode::SUCCESS);
    }
    let (Some(app_id), Some(secret_var), Some(redirect)) =
        (&args.app_id, &args.app_secret_env, &args.redirect_uri)
    else {
        bail!("give --app-id, --app-secret-env and --redirect-uri (or --page)");
    };
    let app = OAuthApp {
        app_id: app_id.clone(),
        app_secret: secret_env(secret_var)?,
        redirect_uri: url::Url::parse(redirect)
            .with_context(|| format!("--redirect-uri {redirect}"))?,
    };
    let endpoints = match &args.base_url {
        Some(b) => OAuthEndpoints::with_base_url(b)?,
        None => OAuthEndpoints::instagram(),
    };
    let client = OAuthClient::new(app, endpoints, args.base_url.clone())?;
    let store: Arc<dyn CredentialStore> = vault;
    let token = if args.paste {
        let state = igdm_auth::oauth::new_state();
        let url = client.authorize_url(igdm_auth::oauth::MESSAGING_SCOPES, &state);
        let mut err = std::io::stderr();
        let _ =
            writeln!(err, "Open this address in a browser, log in and allow access:\n\n  {url}\n");
        let _ = writeln!(err, "Then paste the address the browser was sent to:");
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).context("reading the redirect URL")?;
        let code = igdm_auth::oauth::code_from_redirect(&line, &state)?;
        igdm_auth::oauth::complete_authorization(
            &client,
            &args.name,
            store.as_ref(),
            &SystemClock,
            &code,
        )
        .await?
    } else {
        igdm_auth::oauth::run_authorization(
            &client,
            &args.name,
            store.as_ref(),
            &SystemClock,
            Duration::from_secs(args.timeout),
            |url| {
                // A closed stderr must not abort the authorization.
                let mut err = std::io::stderr();
                let _ = writeln!(
                    err,
                    "Open this address in a browser, log in and allow access:\n\n  {url}\n"
                );
                let _ =
                    writeln!(err, "Waiting for the redirect to {} …", client.app().redirect_uri);
            },
        )
        .await?
    };
    register(
        &mut ctx,
        &args.name,
        "instagram-graph",
        args.base_url.as_deref(),
        token.user_id.clone(),
        None,
    )?;
    report_token(&args.name, "instagram-graph", token.expires_at, global);
    Ok(ExitCode::SUCCESS)
}

/// `igdm oauth NAME --page --user-token-env VAR`: Facebook Login. The user
/// token is exchanged for a long-lived one, the user's Pages are read from
/// `/me/accounts`, the Page token is stored and checked with the
/// connector's `auth.validate` probe.
async fn facebook_page(
    ctx: &mut Runtime,
    args: &OauthArgs,
    global: &Global,
) -> anyhow::Result<ExitCode> {
    let (Some(app_id), Some(secret_var), Some(user_var)) =
        (&args.app_id, &args.app_secret_env, &args.user_token_env)
    else {
        bail!(
            "--user-token-env needs --app-id and --app-secret-env (the token exchange uses the app secret)"
        );
    };
    let endpoints = match &args.base_url {
        Some(b) => igdm_auth::facebook::FacebookEndpoints::with_base_url(b)?,
        None => igdm_auth::facebook::FacebookEndpoints::facebook()?,
    };
    let fb = igdm_auth::facebook::FacebookLogin::new(
        app_id.clone(),
        secret_env(secret_var)?,
        endpoints,
        args.base_url.clone(),
    )?;
    let store: Arc<dyn CredentialStore> = ctx.vault()?;
    let token = igdm_auth::facebook::connect_page(
        &fb,
        &args.name,
        store.as_ref(),
        &SystemClock,
        &secret_env(user_var)?,
        args.page_id.as_deref(),
    )
    .await?;
    register(
        ctx,
        &args.name,
        "instagram-page",
        args.base_url.as_deref(),
        token.user_id.clone(),
        None,
    )?;
    validate(ctx, &args.name).await?;
    if global.json {
        println!(
            "{}",
            json!({"account": args.name, "connector": "instagram-page", "page_id": token.page_id,
                   "instagram_id": token.user_id, "expires_at": token.expires_at})
        );
    } else {
        println!(
            "Stored the Page token of {} (Page {}); derived from a long-lived user token, it does not expire.",
            args.name,
            token.page_id.as_deref().unwrap_or("?")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn report_token(name: &str, connector: &str, expires: Option<Timestamp>, global: &Global) {
    if global.json {
        println!("{}", json!({"account": name, "connector": connector, "expires_at": expires}));
    } else {
        match expires {
            Some(e) => println!(
                "Stored the token of {name} ({connector}); it expires at {e} and is refreshed automatically."
            ),
            None => println!("Stored the token of {name} ({connector})."),
        }
    }
}

/// Runs `igdm browser-run`.
pub async fn browser_run(args: BrowserRunArgs, _global: &Global) -> anyhow::Result<ExitCode> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).context("reading the steps from stdin")?;
    let rewriter = args
        .base_url
        .as_deref()
        .map(|b| UrlRewriter::new(UrlRewriter::INSTAGRAM_WEB, b))
        .transpose()?;
    let opts = BrowserOptions { rewriter, ..BrowserOptions::default() };
    let out = igdm_auth::browser::run_protocol(&input, opts, args.headless).await;
    println!("{out}");
    Ok(if out["success"] == json!(true) { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
