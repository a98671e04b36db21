//! `igdm ui`: the local web inbox (the server is `igdm_ui`); its accounts
//! are kept live by the same watchers as `igdm watch`.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use igdm_runtime::Runtime;
use igdm_ui::{Inbox, InboxAccount, UiOptions};

use crate::Global;

/// `igdm ui`.
#[derive(Debug, clap::Args)]
pub struct UiArgs {
    /// The address to serve on (loopback unless --allow-remote).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8420")]
    pub addr: SocketAddr,
    /// Open the inbox in the default browser (the link carries the token).
    #[arg(long)]
    pub open: bool,
    /// Allow --addr on a non-loopback address.
    #[arg(long)]
    pub allow_remote: bool,
    /// The watchers' poll interval right after activity (see `igdm watch --interval`).
    #[arg(long, value_name = "DURATION", value_parser = super::watch::parse_interval)]
    pub interval: Option<std::time::Duration>,
    /// Do not keep the media of arriving messages (by default they are kept
    /// in the media store, `IGDM_MEDIA_DIR`, so that the page shows them).
    #[arg(long)]
    pub no_media: bool,
}

/// Runs `igdm ui` until SIGTERM / Ctrl-C.
pub async fn run(args: UiArgs, global: &Global) -> anyhow::Result<ExitCode> {
    if !args.allow_remote && !args.addr.ip().is_loopback() {
        bail!("{} is not a loopback address; pass --allow-remote to serve other hosts", args.addr);
    }
    let rt = Runtime::from_env()?;
    let mut names: Vec<String> = match &global.account {
        Some(a) => {
            a.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
        }
        None => rt.accounts().accounts.iter().map(|a| a.name.clone()).collect(),
    };
    names.dedup();
    if names.is_empty() {
        bail!("no accounts to show: add one with `igdm accounts add` or `igdm login`");
    }
    let hub = super::watch::open_hub(&rt, super::watch::Sinks::default()).await?;
    let mut accounts = Vec::with_capacity(names.len());
    let mut opened = Vec::new();
    for name in &names {
        let config = rt.account(Some(name))?;
        match rt.open(Some(name)).await {
            Ok(live) => {
                live.schedule_keep_alive();
                super::upkeep::announce_stop(&live);
                accounts.push(InboxAccount::opened(live.clone()));
                opened.push(live);
            }
            Err(e) => {
                eprintln!("igdm ui: {name} could not be opened: {e}");
                accounts.push(InboxAccount {
                    name: name.clone(),
                    backend: config.backend,
                    live: Err(e.to_string()),
                });
            }
        }
    }
    let policies = opened
        .iter()
        .map(|o| super::watch::policy_for(o, args.interval))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (stop_live, stop_rx) = tokio::sync::watch::channel(false);
    let media = match rt.media_store() {
        Ok(m) => Some(std::sync::Arc::new(m)),
        Err(e) => {
            eprintln!("igdm ui: kept media will not be shown: {e}");
            None
        }
    };
    let keep = media.as_ref().filter(|_| !args.no_media);
    let watchers = super::watch::spawn(&opened, &hub, policies, keep, &stop_rx);
    let inbox = Inbox { accounts, store: hub.messages().clone(), hub: Some(hub), media };
    let (token, printed) = match std::env::var("IGDM_UI_TOKEN") {
        Ok(t) if !t.is_empty() => (t, false),
        _ => (igdm_ui::random_token(), true),
    };
    let running = igdm_ui::serve(
        inbox,
        UiOptions { addr: args.addr, token, allow_remote: args.allow_remote },
    )
    .await?;
    if printed {
        eprintln!(
            "igdm ui: open {} (the link carries this run's access token)",
            running.login_url()
        );
    } else {
        eprintln!(
            "igdm ui: serving {} (token: IGDM_UI_TOKEN; open it with ?token=…)",
            running.url()
        );
    }
    if args.open {
        open_browser(&running.login_url());
    }
    igdm_webhook::shutdown_signal().await;
    running.shutdown();
    let _ = stop_live.send(true);
    running.wait().await.context("serving the inbox")?;
    for w in watchers {
        if let Ok((name, Ok(end))) = w.await
            && let Some(why) = end.needs_user()
        {
            eprintln!("igdm ui: {name} stopped being live: {why}");
        }
    }
    for o in opened {
        o.finish().await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks the desktop to open `url`; a failure is reported, not fatal.
fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
    match std::process::Command::new(opener)
        .arg(url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        // Reaped on a thread of its own: the opener returns at once.
        Ok(mut child) => {
            std::thread::spawn(move || child.wait());
        }
        Err(e) => eprintln!("igdm ui: could not start {opener} ({e}); open the link above"),
    }
}
