//! `igdm accounts keepalive`: the keep-alive of web sessions in the
//! foreground. The keep-alive itself (the probe through the account's
//! client, the session record, the vault write-back) lives in
//! igdm-runtime; this module parses the options and prints each decision.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail};
use igdm_auth::AuthError;
use igdm_auth::session::{KeepAlive, Reauth, Tick, next_step};
use igdm_model::SessionHealth;
use igdm_runtime::Runtime;
use serde_json::{Value, json};

use crate::Global;

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
    rt: &Runtime,
    args: KeepaliveArgs,
    global: &Global,
) -> anyhow::Result<ExitCode> {
    let names: Vec<String> = if args.names.is_empty() {
        rt.accounts()
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
        let o = rt.open(Some(name)).await?;
        let ka = o.keep_alive(args.interval).ok_or_else(|| {
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

/// Prints on stderr, when `account` stops (a token that cannot be
/// refreshed, a web session that needs the user), what the user must run.
pub fn announce_stop(account: &igdm_runtime::LiveAccount) {
    let account = account.clone();
    tokio::spawn(async move {
        let step = account.wait_stopped().await;
        eprintln!("igdm: {} stopped. {step}", account.name());
    });
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
