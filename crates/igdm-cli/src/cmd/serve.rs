//! `igdm serve`: the webhook receiver and event pipeline.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use igdm_runtime::{LiveAccount, Runtime};
use igdm_webhook::{Config, EventOutput, ForwardConfig, Secrets, Server, StoreLog, WEBHOOK_PATH};

use crate::Global;

/// Options of `igdm serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (`HOST:PORT`; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Store URL (`sqlite://PATH`, a path, or `postgres://…`). Default: `$IGDM_HOME/igdm.db`.
    #[arg(long, env = "IGDM_DATABASE_URL")]
    pub database: Option<String>,
    /// Where the webhook event log (deliveries, events, dead letters) lives.
    /// Default: beside a SQLite store, a file of its own (`NAME.webhooks.db`
    /// next to `NAME.db`), so that applying events never holds the write
    /// lock acknowledgements wait for; with PostgreSQL, the store's database.
    #[arg(long, env = "IGDM_LOG_DATABASE_URL", value_name = "URL")]
    pub log_database: Option<String>,
    /// Write every processed event as one JSON line to PATH (`-` for stdout).
    #[arg(long, value_name = "PATH")]
    pub events: Option<String>,
    /// POST every processed event to URL, signed with `IGDM_FORWARD_SECRET`.
    #[arg(long, value_name = "URL")]
    pub forward: Option<String>,
    /// Publish every processed event to NATS JetStream at URL (e.g.
    /// nats://127.0.0.1:4222), at least once, with the event's id as
    /// `Nats-Msg-Id`.
    #[arg(long, value_name = "URL")]
    pub nats: Option<String>,
    /// The subject prefix for --nats: events go to PREFIX.ACCOUNT.KIND, in
    /// a stream named after the prefix (created when missing).
    #[arg(long, value_name = "PREFIX", default_value = "igdm.events", requires = "nats")]
    pub nats_subject: String,
    /// Largest accepted webhook body, in bytes.
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    pub body_limit: usize,
    /// Processing workers [default: 1 on SQLite, 2 on PostgreSQL].
    #[arg(long)]
    pub workers: Option<usize>,
    /// Longest processing waits for a busy receiver, in milliseconds: while
    /// any delivery waits for its acknowledgement, workers start no new
    /// batch, until the oldest waiting work is this old [default: 5000 on
    /// PostgreSQL, 0 on SQLite; 0 never waits].
    #[arg(long, value_name = "MS")]
    pub defer_while_busy_ms: Option<u64>,
    /// Seconds a worker holds claimed events; after a crash, its events are
    /// processed again once this passes.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub lease_secs: u64,
    /// Store events of provider account ID under the igdm account NAME (repeatable).
    #[arg(long = "account-map", value_name = "ID=NAME")]
    pub account_map: Vec<String>,
    /// Answer customers with the DM bot described in FILE (see docs/bot.md).
    #[arg(long, value_name = "FILE")]
    pub bot: Option<PathBuf>,
    /// Keep the web session of account NAME alive while serving (repeatable;
    /// the connector's `session.keep_alive`, jittered). Stops at the first
    /// logout or challenge and says on stderr what to run.
    #[arg(long = "keep-alive", value_name = "NAME", value_delimiter = ',')]
    pub keep_alive: Vec<String>,
    /// The public base URL (reachable by Meta) at which this server answers:
    /// `igdm send --photo|--video|--voice|--file` on an account whose API
    /// takes media only by URL then offers the file here, under an
    /// unguessable path that expires (`IGDM_PUBLIC_TTL_SECS`, default 3600).
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Keep the media of messages as they arrive, in the media store
    /// (`IGDM_MEDIA_DIR`, see docs/media.md), through the account the
    /// delivery belongs to (`--account-map`, or the account whose user id
    /// it names).
    #[arg(long)]
    pub media: bool,
}

/// Opens each named account and schedules its keep-alive.
async fn keep_alive(rt: &Runtime, names: &[String]) -> anyhow::Result<Vec<LiveAccount>> {
    let mut out = Vec::new();
    for name in names {
        let live = rt.open(Some(name)).await?;
        if !live.schedule_keep_alive() {
            bail!(
                "{name} holds no web session with a keep-alive (only instagram-web cookie sessions need one)"
            );
        }
        super::upkeep::announce_stop(&live);
        eprintln!("igdm serve: keeping the web session of {name} alive");
        out.push(live);
    }
    Ok(out)
}

/// The receiver's secrets, from the environment.
fn secrets_from_env() -> anyhow::Result<Secrets> {
    let get = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let Some(app_secret) = get("IGDM_APP_SECRET") else {
        bail!("IGDM_APP_SECRET is not set: it is the app secret Meta signs webhook deliveries with")
    };
    let Some(verify_token) = get("IGDM_VERIFY_TOKEN") else {
        bail!(
            "IGDM_VERIFY_TOKEN is not set: it is the token you entered for the webhook subscription"
        )
    };
    Ok(Secrets::new(app_secret, verify_token))
}

/// The default event log beside a SQLite store: `DIR/NAME.webhooks.db` for
/// `DIR/NAME.db`, with the same URL options. `None` for PostgreSQL and
/// in-memory databases, whose log shares the store's database.
fn sibling_log(database: &str) -> Option<String> {
    if database.starts_with("postgres:") || database.starts_with("postgresql:") {
        return None;
    }
    let (scheme, rest) = if let Some(r) = database.strip_prefix("sqlite://") {
        ("sqlite://", r)
    } else if let Some(r) = database.strip_prefix("sqlite:") {
        ("sqlite:", r)
    } else {
        ("", database)
    };
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if path.is_empty() || path == ":memory:" || query.is_some_and(|q| q.contains("mode=memory")) {
        return None;
    }
    let stem = path.strip_suffix(".db").unwrap_or(path);
    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
    Some(format!("{scheme}{stem}.webhooks.db{query}"))
}

fn parse_account_map(raw: &[String]) -> anyhow::Result<HashMap<String, String>> {
    raw.iter()
        .map(|pair| match pair.split_once('=') {
            Some((id, name)) if !id.is_empty() && !name.is_empty() => {
                Ok((id.to_owned(), name.to_owned()))
            }
            _ => bail!("--account-map expects ID=NAME, got {pair:?}"),
        })
        .collect()
}

/// Runs the receiver until Ctrl-C or SIGTERM, then drains.
pub async fn run(args: ServeArgs, _global: &Global) -> anyhow::Result<ExitCode> {
    let secrets = secrets_from_env()?;
    let accounts = parse_account_map(&args.account_map)?;
    if args.body_limit < 1024 {
        bail!("--body-limit must be at least 1024 bytes");
    }
    let forward = match &args.forward {
        Some(url) => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                bail!("--forward must be an http:// or https:// URL, got {url:?}");
            }
            let secret = std::env::var("IGDM_FORWARD_SECRET")
                .ok()
                .filter(|v| !v.is_empty())
                .context("--forward needs IGDM_FORWARD_SECRET to sign what it sends")?;
            Some(ForwardConfig::new(url.clone(), secret))
        }
        None => None,
    };
    let rt = std::sync::Arc::new(Runtime::from_env()?);
    let database = match args.database {
        Some(url) => url,
        None => {
            rt.home().ensure()?;
            rt.store_url()
        }
    };
    let store = igdm_store::Store::open(&database).await.context("opening the store")?;
    let log = match args.log_database.clone().or_else(|| sibling_log(&database)) {
        Some(url) if url != database => {
            let log = igdm_store::Store::open(&url).await.context("opening the webhook log")?;
            StoreLog::from_stores(log, store).await
        }
        _ => StoreLog::from_store(store).await,
    }
    .context("opening the store for processing")?
    .with_account_names(accounts.clone());

    let mut config = Config::new(secrets);
    config.body_limit = args.body_limit;
    config.workers = args.workers;
    config.defer_while_busy = args.defer_while_busy_ms.map(std::time::Duration::from_millis);
    config.lease = std::time::Duration::from_secs(args.lease_secs.max(1));
    config.events = args.events.as_deref().map(EventOutput::parse);
    config.forward = forward;
    if let Some(url) = &args.nats {
        config.sinks.push(super::watch::nats_sink(url, &args.nats_subject).await?);
    }

    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("binding {}", args.addr))?;
    let local = listener.local_addr()?;
    let messages = log.inner().clone();
    let server = Server::new(config, log);
    let bot = match &args.bot {
        Some(file) => Some(super::bot::start(&rt, file, &database, &server, _global).await?),
        None => None,
    };
    let upkeep = keep_alive(&rt, &args.keep_alive).await?;
    let media = if args.media {
        let kept = std::sync::Arc::new(rt.media_store()?);
        eprintln!("igdm serve: keeping arriving media in {}", kept.dir().display());
        let follower =
            igdm_runtime::media::ArrivingMedia::new(rt.clone(), messages, kept, accounts);
        Some(tokio::spawn(follower.run(server.subscribe())))
    } else {
        None
    };
    eprintln!("igdm serve: listening on http://{local}{WEBHOOK_PATH}");
    let mut extra = axum::Router::new();
    let mut announced = None;
    if let Some(url) = &args.public_url {
        let public = rt.public_files();
        public.announce(url)?;
        eprintln!("igdm serve: offering files at {}/public/…", url.trim_end_matches('/'));
        extra = public_routes(public.clone());
        announced = Some(public);
    }
    let served =
        server.serve_with_shutdown_and(listener, extra, igdm_webhook::shutdown_signal()).await;
    if let Some(p) = announced {
        p.withdraw();
    }
    served?;
    if let Some(task) = media {
        // It ends once the receiver's last event is handed on.
        if tokio::time::timeout(std::time::Duration::from_secs(10), task).await.is_err() {
            eprintln!("igdm serve: stopped keeping media before the last file was kept");
        }
    }
    for live in upkeep {
        live.finish().await?;
    }
    if let Some((task, live)) = bot {
        task.abort();
        live.finish().await?;
    }
    eprintln!("igdm serve: stopped");
    Ok(ExitCode::SUCCESS)
}

/// `GET /public/{name}`: an offered file while its offer lasts, else 404.
fn public_routes(public: igdm::public::PublicFiles) -> axum::Router {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse as _;
    axum::Router::new().route(
        "/public/{name}",
        axum::routing::get(move |axum::extract::Path(name): axum::extract::Path<String>| {
            let public = public.clone();
            async move {
                let Some((path, mime)) = public.open(&name) else {
                    return StatusCode::NOT_FOUND.into_response();
                };
                match tokio::fs::read(&path).await {
                    Ok(bytes) => ([(header::CONTENT_TYPE, mime)], bytes).into_response(),
                    Err(_) => StatusCode::NOT_FOUND.into_response(),
                }
            }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::sibling_log;

    #[test]
    fn the_log_goes_beside_a_sqlite_store_and_inside_postgres() {
        assert_eq!(
            sibling_log("sqlite:///var/lib/igdm/igdm.db?mode=rwc").as_deref(),
            Some("sqlite:///var/lib/igdm/igdm.webhooks.db?mode=rwc")
        );
        assert_eq!(sibling_log("sqlite:data/x.db").as_deref(), Some("sqlite:data/x.webhooks.db"));
        assert_eq!(sibling_log("/tmp/store").as_deref(), Some("/tmp/store.webhooks.db"));
        assert_eq!(sibling_log("postgres://u@h/db"), None);
        assert_eq!(sibling_log("sqlite::memory:"), None);
        assert_eq!(sibling_log("sqlite://shared?mode=memory&cache=shared"), None);
    }
}
