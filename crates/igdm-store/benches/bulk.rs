//! Bulk import and search benchmark for both store backends.
//!
//! `cargo bench -p igdm-store --bench bulk` imports `IGDM_BENCH_MESSAGES`
//! (default 1,000,000) synthetic messages into a fresh SQLite file and, when
//! `IGDM_BENCH_DATABASE_URL` or `IGDM_TEST_DATABASE_URL` names a reachable
//! PostgreSQL server, into a fresh schema there; then it times full-text
//! searches against a `LIKE '%term%'` scan returning the same page size over
//! the same rows, and prints messages/s and latency percentiles.
//! `IGDM_BENCH_BACKENDS=sqlite` (or `postgres`) limits the backends;
//! `IGDM_BENCH_SQLITE_PATH` keeps the SQLite database at that path;
//! `IGDM_BENCH_ROUNDS` (default 10) repeats each search.
//! `scripts/bench-cli-search.sh` times the same queries as whole `igdm search`
//! processes on a database kept with `IGDM_BENCH_SQLITE_PATH`.
//! `IGDM_BENCH_RELAXED=1` imports through the store's relaxed handle;
//! `IGDM_BENCH_PRAGMA="name=value;…"` adds SQLite pragmas (experiments).
//!
//! Each query runs newest first (the default order), then as
//! `sort:relevance` (which ranks only the newest `RELEVANCE_WINDOW`
//! matches), then as the `LIKE` scan, every round. Peak RSS in process is
//! the bench process's high-water mark over the searches alone (reset
//! through `/proc/self/clear_refs` after the import).
//!
//! Under `cargo test` or nextest the binary is one smoke test (`smoke`) that
//! runs the same code on 2,000 messages and checks the results, not the times.

use std::time::{Duration, Instant};

use igdm_model::{Attachment, AttachmentType, ContentType, Message, Sender, Timestamp};
use igdm_store::{Page, Query, SearchHit, SqliteStore, Store, parse_query};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[path = "common/pg.rs"]
mod pg;
use pg::postgres_store;

const ACCOUNT: &str = "bench";
const BATCH: usize = 5_000;
const PAGE: u32 = 20;

/// A deterministic vocabulary with a Zipf-like frequency curve; about one
/// word in seven carries an accent.
struct Corpus {
    words: Vec<String>,
    cumulative: Vec<f64>,
}

impl Corpus {
    fn new(size: usize) -> Self {
        const SYLLABLES: [&str; 16] = [
            "ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "be", "da", "fe", "gu", "ho", "ji",
            "pe", "zu",
        ];
        let mut words = Vec::with_capacity(size);
        for i in 0..size {
            let mut n = i + 16 * 16;
            let mut w = String::new();
            while n > 0 {
                w.push_str(SYLLABLES[n % 16]);
                n /= 16;
            }
            if i % 7 == 3 {
                w = w.replacen('e', "é", 1);
            }
            words.push(w);
        }
        let mut total = 0.0;
        let cumulative = (1..=size)
            .map(|rank| {
                total += 1.0 / rank as f64;
                total
            })
            .collect();
        Self { words, cumulative }
    }

    fn word(&self, rng: &mut StdRng) -> &str {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let x = rng.random::<f64>() * total;
        let i = self.cumulative.partition_point(|c| *c < x).min(self.words.len() - 1);
        &self.words[i]
    }
}

fn message(i: usize, rng: &mut StdRng, corpus: &Corpus) -> Message {
    let len = rng.random_range(6..20);
    let mut text = (0..len).map(|_| corpus.word(rng)).collect::<Vec<_>>().join(" ");
    // A needle in one message of 100,000: the search a person makes for one thing.
    if i % 100_000 == 7 {
        text.push_str(" quasar");
    }
    let sender = rng.random_range(0..50);
    let attachments = if i.is_multiple_of(50) {
        vec![Attachment {
            kind: AttachmentType::Image,
            url: Some(format!("https://cdn.example/{i}.jpg")),
            mime: Some("image/jpeg".into()),
            size: Some(1000),
            duration: None,
        }]
    } else {
        vec![]
    };
    Message {
        id: format!("m{i}").into(),
        conversation_id: format!("c{}", rng.random_range(0..1000)).into(),
        sender: Sender {
            id: format!("{}", 1000 + sender).into(),
            username: Some(format!("user{sender}")),
            display_name: None,
            is_self: sender == 0,
        },
        timestamp: Timestamp::from_unix_seconds(1_600_000_000 + i64::try_from(i).unwrap_or(0) * 30)
            .unwrap_or_else(Timestamp::now),
        content_type: if attachments.is_empty() { ContentType::Text } else { ContentType::Image },
        text: Some(text),
        attachments,
        reactions: vec![],
        reply_to: None,
        is_deleted: false,
        edited_at: None,
        send_status: None,
    }
}

/// The searches timed: single words from common to rare, an accented word
/// typed without its accent, a two-word phrase, a word with a filter, a word
/// in one message of 100,000, and a word in none.
fn searches(corpus: &Corpus) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = [2, 10, 30, 100, 300, 1000, 3000]
        .iter()
        .filter(|&&r| r < corpus.words.len())
        .map(|&r| (corpus.words[r].clone(), corpus.words[r].clone()))
        .collect();
    if let Some(accented) = corpus.words.iter().take(200).find(|w| w.contains('é')) {
        out.push((accented.replace('é', "e"), accented.clone()));
    }
    out.push((
        format!("\"{} {}\"", corpus.words[0], corpus.words[1]),
        format!("{} {}", corpus.words[0], corpus.words[1]),
    ));
    out.push((format!("{} from:user7", corpus.words[5]), corpus.words[5].clone()));
    out.push(("quasar".to_owned(), "quasar".to_owned()));
    out.push(("xylophone".to_owned(), "xylophone".to_owned()));
    out
}

struct Figures {
    backend: &'static str,
    messages: usize,
    import: Duration,
    /// Per query: the search / LIKE times of every round, sorted.
    queries: Vec<QueryTimes>,
    /// This process's RSS when the searches start and its peak over them,
    /// KiB (Linux only); the first holds what the import left allocated.
    search_rss_kib: Option<(u64, u64)>,
}

/// One query's times over the rounds, each list sorted.
struct QueryTimes {
    fts: Vec<Duration>,
    relevance: Vec<Duration>,
    like: Vec<Duration>,
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The median of the per-query values.
fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    match v.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2,
    }
}

impl Figures {
    fn print(&self) {
        let rate = self.messages as f64 / self.import.as_secs_f64();
        let mut all_fts: Vec<Duration> = self.queries.iter().flat_map(|q| q.fts.clone()).collect();
        let mut all_like: Vec<Duration> =
            self.queries.iter().flat_map(|q| q.like.clone()).collect();
        all_fts.sort();
        all_like.sort();
        let f50 = median(self.queries.iter().map(|q| percentile(&q.fts, 50)).collect());
        let r50 = median(self.queries.iter().map(|q| percentile(&q.relevance, 50)).collect());
        let l50 = median(self.queries.iter().map(|q| percentile(&q.like, 50)).collect());
        println!(
            "{:<8} import {:>9} messages in {:>7.1} s = {:>8.0} msg/s | median of per-query p50: search {:>7.2} ms, \
             relevance {:>7.2} ms, LIKE {:>7.2} ms | all rounds p99: search {:>7.2} ms, LIKE {:>8.2} ms | \
             RSS at first search, peak over searches {}",
            self.backend,
            self.messages,
            self.import.as_secs_f64(),
            rate,
            ms(f50),
            ms(r50),
            ms(l50),
            ms(percentile(&all_fts, 99)),
            ms(percentile(&all_like, 99)),
            self.search_rss_kib.map_or("n/a".to_owned(), |(at, peak)| format!(
                "{:.1} MiB, {:.1} MiB",
                at as f64 / 1024.0,
                peak as f64 / 1024.0
            )),
        );
    }
}

/// A field of `/proc/self/status` in KiB (`VmHWM`: the peak resident
/// set; `VmRSS`: the current one).
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resets `VmHWM` to the current resident set.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// `LIKE '%term%'` over the same rows, newest first, one page: what a store
/// without a full-text index would run.
async fn like_page(store: &Store, needle: &str) -> usize {
    let pattern = format!("%{needle}%");
    match store {
        Store::Sqlite(s) => sqlx::query(
            "SELECT seq, text FROM messages WHERE account_id = ?1 AND is_deleted = FALSE AND text LIKE ?2 \
             ORDER BY sent_at DESC LIMIT ?3",
        )
        .bind(ACCOUNT)
        .bind(pattern)
        .bind(i64::from(PAGE))
        .fetch_all(s.pool())
        .await
        .map(|r| r.len()),
        Store::Postgres(s) => sqlx::query(
            "SELECT seq, text FROM messages WHERE account_id = $1 AND is_deleted = FALSE AND text ILIKE $2 \
             ORDER BY sent_at DESC LIMIT $3",
        )
        .bind(ACCOUNT)
        .bind(pattern)
        .bind(i64::from(PAGE))
        .fetch_all(s.pool())
        .await
        .map(|r| r.len()),
    }
    .unwrap_or_else(|e| panic!("LIKE scan failed: {e}"))
}

/// One page of `query` and how long it took.
async fn timed_search(store: &Store, query: &Query) -> (Duration, Page<SearchHit>) {
    let t = Instant::now();
    let hits = store
        .search(ACCOUNT, query, PAGE, None)
        .await
        .unwrap_or_else(|e| panic!("search {query:?}: {e}"));
    (t.elapsed(), hits)
}

async fn run(store: &Store, n: usize, rounds: usize, check: bool) -> Figures {
    let corpus = Corpus::new(5_000);
    let mut rng = StdRng::seed_from_u64(7);
    let relaxed = std::env::var("IGDM_BENCH_RELAXED").is_ok_and(|v| v == "1");
    let writer =
        if relaxed { store.relaxed().await.expect("relaxed handle") } else { store.clone() };
    let started = Instant::now();
    let mut i = 0;
    while i < n {
        let end = (i + BATCH).min(n);
        let batch: Vec<Message> = (i..end).map(|k| message(k, &mut rng, &corpus)).collect();
        writer
            .upsert_messages(ACCOUNT, &batch)
            .await
            .unwrap_or_else(|e| panic!("import failed: {e}"));
        i = end;
    }
    let import = started.elapsed();
    if relaxed {
        writer.close().await;
    }
    let started = Instant::now();
    store.optimize().await.unwrap_or_else(|e| panic!("optimize failed: {e}"));
    println!(
        "  {:<8} optimize after import: {:.1} s",
        store.backend_name(),
        started.elapsed().as_secs_f64()
    );

    let mut figures = Figures {
        backend: store.backend_name(),
        messages: n,
        import,
        queries: vec![],
        search_rss_kib: None,
    };
    reset_peak_rss();
    let rss_before = status_kib("VmRSS:");
    for (query, needle) in searches(&corpus) {
        let parsed = parse_query(&query);
        let ranked = parse_query(&format!("{query} sort:relevance"));
        let mut matches = 0;
        let (mut fts, mut relevance, mut like) =
            (Vec::with_capacity(rounds), Vec::with_capacity(rounds), Vec::with_capacity(rounds));
        for _ in 0..rounds {
            let (took, hits) = timed_search(store, &parsed).await;
            fts.push(took);
            let (took, best) = timed_search(store, &ranked).await;
            relevance.push(took);
            let t = Instant::now();
            let scanned = like_page(store, &needle).await;
            like.push(t.elapsed());
            matches = hits.items.len();
            if check {
                // Every token match is also a substring match; the unaccented
                // query is the one case LIKE cannot answer.
                if !hits.items.is_empty() && !query.contains("from:") && query == needle {
                    assert!(scanned > 0, "{query:?}: search found rows that LIKE did not");
                }
                if query.starts_with(&corpus.words[2]) {
                    assert_eq!(hits.items.len(), PAGE as usize, "a common word fills a page");
                }
                assert!(
                    hits.items.windows(2).all(|w| w[0].message.timestamp >= w[1].message.timestamp),
                    "{query:?}: newest first"
                );
                assert_eq!(best.items.len(), hits.items.len(), "{query:?}: one page either way");
                assert!(
                    best.items.windows(2).all(|w| w[0].rank >= w[1].rank),
                    "{query:?}: best first"
                );
            }
        }
        fts.sort();
        relevance.sort();
        like.sort();
        println!(
            "  {:<8} {:<28} page {:>2} | search p50 {:>8.2} ms p99 {:>8.2} ms | relevance p50 {:>8.2} ms \
             p99 {:>8.2} ms | LIKE p50 {:>8.2} ms p99 {:>8.2} ms",
            figures.backend,
            query,
            matches,
            ms(percentile(&fts, 50)),
            ms(percentile(&fts, 99)),
            ms(percentile(&relevance, 50)),
            ms(percentile(&relevance, 99)),
            ms(percentile(&like, 50)),
            ms(percentile(&like, 99)),
        );
        figures.queries.push(QueryTimes { fts, relevance, like });
    }
    figures.search_rss_kib = rss_before.zip(status_kib("VmHWM:"));
    figures
}

async fn sqlite_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    // IGDM_BENCH_SQLITE_PATH keeps the database for inspection.
    let path = std::env::var("IGDM_BENCH_SQLITE_PATH")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| dir.path().join("bench.db"));
    let mut options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path);
    for pragma in std::env::var("IGDM_BENCH_PRAGMA").unwrap_or_default().split(';') {
        if let Some((k, v)) = pragma.split_once('=') {
            options = options.pragma(k.trim().to_owned(), v.trim().to_owned());
        }
    }
    let store = SqliteStore::connect_with(options).await.expect("open sqlite");
    (Store::Sqlite(store), dir)
}

async fn main_async(n: usize, rounds: usize, check: bool) {
    let backends =
        std::env::var("IGDM_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    if backends.contains("sqlite") {
        let (store, _dir) = sqlite_store().await;
        run(&store, n, rounds, check).await.print();
        store.close().await;
    }
    if backends.contains("postgres")
        && let Some((store, _schema)) = postgres_store("igdm-store bench bulk (PostgreSQL)").await
    {
        run(&store, n, rounds, check).await.print();
        store.close().await;
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    if has("--list") {
        // The test-harness protocol nextest speaks: one test, none ignored.
        if !has("--ignored") {
            println!("smoke: test");
        }
        return;
    }
    let bench = has("--bench");
    // A name filter (from `cargo test NAME`) that does not select the smoke test.
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    if !bench && !filters.is_empty() && !filters.iter().any(|f| "smoke".contains(f.as_str())) {
        println!("0 passed, 0 failed");
        return;
    }
    let n = std::env::var("IGDM_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(if bench { 1_000_000 } else { 2_000 });
    let rounds = std::env::var("IGDM_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if bench { 10 } else { 2 });
    // RUST_LOG=sqlx=debug shows every statement with its time.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(main_async(n, rounds, !bench));
    if !bench {
        println!("1 passed, 0 failed");
    }
}
