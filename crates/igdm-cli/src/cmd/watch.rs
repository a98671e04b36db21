//! `igdm watch`: keeps accounts live and streams every change as a
//! normalized event (the watcher itself is `igdm::watch`).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use igdm::watch::{Hub, PollPolicy, WatchStop, Watcher};
use igdm_webhook::{EventOutput, EventSink, ForwardConfig, ForwardSink, JsonLinesSink, NatsSink};

use igdm_runtime::{LiveAccount, Runtime};

use crate::Global;

/// `igdm watch`.
#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// The accounts to watch (also `--account NAME[,NAME…]`; default: every account).
    pub names: Vec<String>,
    /// Write every event as one JSON line to PATH (`-` for stdout, the
    /// default when no other sink is given).
    #[arg(long, value_name = "PATH")]
    pub events: Option<String>,
    /// POST every event to URL, signed with `IGDM_FORWARD_SECRET`.
    #[arg(long, value_name = "URL")]
    pub forward: Option<String>,
    /// Publish every event to NATS JetStream at URL, at least once, with the
    /// event's id as `Nats-Msg-Id`.
    #[arg(long, value_name = "URL")]
    pub nats: Option<String>,
    /// The subject prefix for --nats: events go to PREFIX.ACCOUNT.KIND.
    #[arg(long, value_name = "PREFIX", default_value = "igdm.events", requires = "nats")]
    pub nats_subject: String,
    /// Poll interval right after activity (e.g. 30s); it grows while the
    /// account is idle [default: the connector's `poll_min_interval`].
    /// Instagram's own hosts refuse one below the connector's minimum; an
    /// account on an emulator (`--sandbox`) compresses time instead.
    #[arg(long, value_name = "DURATION", value_parser = parse_interval)]
    pub interval: Option<Duration>,
    /// Keep the photos, videos, voice notes and files of arriving messages
    /// in the media store (`IGDM_MEDIA_DIR`, see docs/media.md).
    #[arg(long)]
    pub media: bool,
}

/// Parses `--interval`.
pub fn parse_interval(raw: &str) -> Result<Duration, String> {
    igdm_auth::session::parse_duration(raw).map_err(|e| e.to_string())
}

/// The event log of the watchers: beside a SQLite store, a file of its own
/// (`igdm.watch.db`); with PostgreSQL, the store's database.
fn log_database(rt: &Runtime) -> anyhow::Result<String> {
    match std::env::var("IGDM_DATABASE_URL") {
        Ok(u) if !u.is_empty() => Ok(u),
        _ => {
            rt.home().ensure()?;
            Ok(format!("sqlite://{}?mode=rwc", rt.home().join("igdm.watch.db").display()))
        }
    }
}

fn shared(store: igdm_store::Store) -> Arc<dyn igdm_store::MessageStore> {
    match store {
        igdm_store::Store::Sqlite(s) => Arc::new(s),
        igdm_store::Store::Postgres(p) => Arc::new(p),
    }
}

/// The NATS JetStream sink `--nats URL --nats-subject PREFIX` asks for
/// (`igdm serve` and `igdm watch`).
pub async fn nats_sink(url: &str, prefix: &str) -> anyhow::Result<Arc<dyn EventSink>> {
    let sink = NatsSink::connect(url, prefix)
        .await
        .with_context(|| format!("connecting to NATS JetStream at {url}"))?;
    Ok(Arc::new(sink))
}

/// The sinks a watch process writes to.
#[derive(Debug, Default)]
pub struct Sinks<'a> {
    /// `--events PATH|-`.
    pub events: Option<&'a str>,
    /// `--forward URL`.
    pub forward: Option<&'a str>,
    /// `--nats URL` and `--nats-subject PREFIX`.
    pub nats: Option<(&'a str, &'a str)>,
}

/// Opens the hub every watcher of this process shares: the store, the
/// watchers' event log and the sinks.
pub async fn open_hub(rt: &Runtime, sinks: Sinks<'_>) -> anyhow::Result<Arc<Hub>> {
    let Sinks { events, forward, nats } = sinks;
    let messages = shared(rt.store().await.context("opening the local store")?);
    let log = shared(
        igdm_store::Store::open(&log_database(rt)?)
            .await
            .context("opening the watchers' event log")?,
    );
    let mut hub = Hub::new(messages, log);
    if let Some(out) = events {
        let sink = JsonLinesSink::open(&EventOutput::parse(out))
            .await
            .with_context(|| format!("opening the event stream {out}"))?;
        hub = hub.with_sink(Arc::new(sink) as Arc<dyn EventSink>);
    }
    if let Some(url) = forward {
        let secret = std::env::var("IGDM_FORWARD_SECRET")
            .ok()
            .filter(|v| !v.is_empty())
            .context("--forward needs IGDM_FORWARD_SECRET to sign what it sends")?;
        let sink = ForwardSink::new(ForwardConfig::new(url, secret))?;
        hub = hub.with_sink(Arc::new(sink));
    }
    if let Some((url, prefix)) = nats {
        hub = hub.with_sink(nats_sink(url, prefix).await?);
    }
    Ok(Arc::new(hub))
}

/// The accounts named on the command line (positional names and
/// `--account`, comma-separated), or every account.
fn chosen(rt: &Runtime, args: &WatchArgs, global: &Global) -> anyhow::Result<Vec<String>> {
    let mut names: Vec<String> = args.names.clone();
    if let Some(a) = &global.account {
        names.extend(a.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned));
    }
    if names.is_empty() {
        names = rt.accounts().accounts.iter().map(|a| a.name.clone()).collect();
    }
    if names.is_empty() {
        bail!("no accounts to watch: add one with `igdm accounts add` or `igdm login`");
    }
    names.dedup();
    for n in &names {
        rt.account(Some(n))?;
    }
    Ok(names)
}

/// The poll policy of an account: its connector's, with `--interval`.
pub fn policy_for(account: &LiveAccount, interval: Option<Duration>) -> anyhow::Result<PollPolicy> {
    let client = account.client();
    let policy = PollPolicy::for_connector(client.connector());
    Ok(match interval {
        Some(d) => policy.with_interval(d, client.account().base_url.is_some())?,
        None => policy,
    })
}

/// Opens the watched accounts through the runtime: the clients the
/// watchers poll are those of these [`LiveAccount`]s, which write rotated
/// cookies back to the vault, refresh an Instagram Login token before it
/// expires and keep a web session alive (the keep-alive skips its turn while
/// the polls' reads keep the session alive). [`LiveAccount::finish`] ends
/// that upkeep.
pub async fn open_accounts(rt: &Runtime, names: &[String]) -> anyhow::Result<Vec<LiveAccount>> {
    let mut opened = Vec::with_capacity(names.len());
    for name in names {
        let account = rt.open(Some(name)).await?;
        account.schedule_keep_alive();
        opened.push(account);
    }
    Ok(opened)
}

/// Why a watcher ended.
#[derive(Debug)]
pub enum Ended {
    /// The watcher stopped: asked to, or the session needs the user.
    Watcher(WatchStop),
    /// The runtime stopped the account (a token that expired or could not be
    /// refreshed, a keep-alive that met a logout or challenge): the next step.
    Account(String),
}

impl Ended {
    /// What the user must do, when the account needs them.
    #[must_use]
    pub fn needs_user(&self) -> Option<String> {
        match self {
            Self::Watcher(WatchStop::NeedsUser(e)) => {
                Some(format!("{}. {}", e.message, e.remediation))
            }
            Self::Account(step) => Some(step.clone()),
            Self::Watcher(_) => None,
        }
    }
}

/// Starts one watcher per account; each reports on stderr when its baseline
/// is taken. A watcher ends when `stop` turns true, when its session needs
/// the user, or when the runtime stops its account.
pub fn spawn(
    accounts: &[LiveAccount],
    hub: &Arc<Hub>,
    policies: Vec<PollPolicy>,
    media: Option<&Arc<igdm::MediaStore>>,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<(String, anyhow::Result<Ended>)>> {
    accounts
        .iter()
        .zip(policies)
        .map(|(account, policy)| {
            let mut watcher = Watcher::new(account.client().clone(), hub.clone(), policy);
            if let Some(m) = media {
                watcher = watcher.with_media(m.clone());
            }
            let (account, stop) = (account.clone(), stop.clone());
            tokio::spawn(async move {
                let name = account.name().to_owned();
                let res = tokio::select! {
                    res = watcher.run(stop, |n| eprintln!("igdm watch: watching {n}")) => {
                        res.map(Ended::Watcher).map_err(anyhow::Error::from)
                    }
                    step = account.wait_stopped() => Ok(Ended::Account(step)),
                };
                (name, res)
            })
        })
        .collect()
}

/// Runs `igdm watch` until every watcher stopped or SIGTERM / Ctrl-C.
pub async fn run(args: WatchArgs, global: &Global) -> anyhow::Result<ExitCode> {
    if let Some(url) = &args.forward
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        bail!("--forward must be an http:// or https:// URL, got {url:?}");
    }
    let rt = Runtime::from_env()?;
    let names = chosen(&rt, &args, global)?;
    let events = match (&args.events, &args.forward, &args.nats) {
        (Some(e), _, _) => Some(e.as_str()),
        (None, None, None) => Some("-"),
        _ => None,
    };
    let sinks = Sinks {
        events,
        forward: args.forward.as_deref(),
        nats: args.nats.as_deref().map(|u| (u, args.nats_subject.as_str())),
    };
    let hub = open_hub(&rt, sinks).await?;
    let opened = open_accounts(&rt, &names).await?;
    let policies =
        opened.iter().map(|o| policy_for(o, args.interval)).collect::<anyhow::Result<Vec<_>>>()?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let media = if args.media { Some(Arc::new(rt.media_store()?)) } else { None };
    let mut tasks = spawn(&opened, &hub, policies, media.as_ref(), &stop_rx);
    let mut code = ExitCode::SUCCESS;
    let signal = igdm_webhook::shutdown_signal();
    tokio::pin!(signal);
    while !tasks.is_empty() {
        tokio::select! {
            () = &mut signal => {
                let _ = stop_tx.send(true);
                for t in tasks.drain(..) {
                    if let Ok((name, Err(e))) = t.await {
                        eprintln!("igdm watch: {name}: {e:#}");
                    }
                }
                break;
            }
            (done, _, rest) = futures_select(std::mem::take(&mut tasks)) => {
                tasks = rest;
                match done {
                    Ok((name, Ok(end))) => {
                        if let Some(why) = end.needs_user() {
                            eprintln!(
                                "igdm watch: stopped watching {name}: {why} (then run `igdm watch` again)"
                            );
                            let class = match &end {
                                Ended::Watcher(WatchStop::NeedsUser(e)) => e.class.clone(),
                                _ => igdm_model::ErrorClass::AuthExpired,
                            };
                            code = ExitCode::from(igdm::exit_code(&class));
                        }
                    }
                    Ok((name, Err(e))) => {
                        eprintln!("igdm watch: {name}: {e:#}");
                        code = ExitCode::from(1);
                    }
                    Err(e) => {
                        eprintln!("igdm watch: a watcher failed: {e}");
                        code = ExitCode::from(1);
                    }
                }
            }
        }
    }
    for o in opened {
        o.finish().await?;
    }
    Ok(code)
}

/// The first of `tasks` to finish, and the others.
async fn futures_select<T>(
    tasks: Vec<tokio::task::JoinHandle<T>>,
) -> (Result<T, tokio::task::JoinError>, usize, Vec<tokio::task::JoinHandle<T>>) {
    if tasks.is_empty() {
        return std::future::pending().await;
    }
    futures::future::select_all(tasks).await
}
