//! Media benchmark, against a sandbox on loopback over real HTTP:
//!
//! - upload throughput: MB/s of `Client::send_media` (the messenger rupload
//!   of the whole file, then the attachment broadcast) for videos and voice
//!   notes of a few sizes;
//! - the media store's de-duplication: the same file sent `IGDM_BENCH_REPEAT`
//!   times (default 10) among as many distinct ones (on a sandbox of its
//!   own), a sync into a fresh store, then keeping the account's media (what
//!   `sync --media` does after each conversation): bytes downloaded (seen)
//!   against bytes written, and the rate of keeping.
//!
//! `cargo bench -p igdm --bench media` runs `IGDM_BENCH_ROUNDS` rounds per
//! size (default 5) and prints medians; under `cargo test` or nextest it is
//! one smoke test (`smoke`) with small files that fails if a file is kept
//! twice or a download fails.

#![allow(clippy::unwrap_used, clippy::cast_precision_loss, missing_docs)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use igdm::{Keeper, MediaKind, MediaLimits, MediaStore, PacingPolicy, SyncOptions, sync};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// An MP4-looking file of `len` bytes (an `ftyp` box, then filler unique per `seed`).
fn mp4(dir: &Path, name: &str, brand: &[u8; 4], len: usize, seed: u32) -> PathBuf {
    let mut bytes = b"\x00\x00\x00\x18ftyp".to_vec();
    bytes.extend_from_slice(brand);
    bytes.extend_from_slice(b"\x00\x00\x02\x00isommp42");
    let mut x: u32 = 0x9E37_79B9 ^ seed.wrapping_mul(2_654_435_761);
    while bytes.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        bytes.push((x >> 24) as u8);
    }
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

struct Settings {
    /// (kind, label, bytes) of the upload rows.
    sizes: Vec<(MediaKind, &'static str, usize)>,
    rounds: u64,
    repeat: u64,
    dedup_bytes: usize,
    print: bool,
}

async fn run(s: &Settings) {
    let (sandbox, seed) = igdm_test::sandbox::seeded().await;
    let base = sandbox.base_url();
    let client = igdm_test::clients::web(&base, &seed, PacingPolicy::none());
    let conv = seed.group_thread_id.clone();
    let dir = tempfile::tempdir().unwrap();

    // Upload throughput.
    if s.print {
        println!("upload (send_media: rupload + broadcast), {} rounds, medians:", s.rounds);
    }
    for (i, (kind, label, len)) in s.sizes.iter().enumerate() {
        let brand = if *kind == MediaKind::Voice { b"M4A " } else { b"isom" };
        let mut rates = Vec::new();
        let mut times = Vec::new();
        for r in 0..s.rounds {
            let seed = u32::try_from(i as u64 * 1000 + r).unwrap();
            let file = mp4(dir.path(), &format!("up-{i}-{r}.mp4"), brand, *len, seed);
            let t = Instant::now();
            let out = client.send_media(&conv, *kind, &file).await.unwrap();
            let secs = t.elapsed().as_secs_f64();
            assert_eq!(out.bytes, *len as u64);
            rates.push(*len as f64 / 1e6 / secs);
            times.push(secs * 1e3);
            std::fs::remove_file(&file).unwrap();
        }
        if s.print {
            println!(
                "  {label:<12} {len:>9} bytes  {:>8.1} ms  {:>7.1} MB/s",
                median(times),
                median(rates)
            );
        }
    }

    // De-duplication, on a sandbox of its own (so that the files above do
    // not count): one file sent `repeat` times, and as many distinct ones.
    drop(client);
    sandbox.shutdown().await;
    let (sandbox, seed) = igdm_test::sandbox::seeded().await;
    let client = igdm_test::clients::web(&sandbox.base_url(), &seed, PacingPolicy::none());
    let conv = seed.group_thread_id.clone();
    let same = mp4(dir.path(), "same.mp4", b"isom", s.dedup_bytes, 999_999);
    for r in 0..s.repeat {
        client.send_media(&conv, MediaKind::Video, &same).await.unwrap();
        let name = format!("other-{r}.mp4");
        let seed_n = u32::try_from(500_000 + r).unwrap();
        let other = mp4(dir.path(), &name, b"isom", s.dedup_bytes, seed_n);
        client.send_media(&conv, MediaKind::Video, &other).await.unwrap();
    }
    let db = dir.path().join("bench.db");
    let store =
        igdm_store::Store::open(&format!("sqlite://{}?mode=rwc", db.display())).await.unwrap();
    let media = MediaStore::open(dir.path().join("media"), MediaLimits::default()).unwrap();
    let (_, cut) = sync(&client, &*store, &SyncOptions::default(), &mut |_| {}).await.unwrap();
    assert!(!cut);
    let t = Instant::now();
    let kept = Keeper::new(&client, &*store, &media).keep_account().await.unwrap();
    let secs = t.elapsed().as_secs_f64();
    let stats = media.dedup_stats();
    // Every file once: the repeated one and the distinct ones. (The demo
    // seed's own attachments point at hosts that do not exist, `cdn.example`
    // and a reel page: those fail and are not counted.)
    assert_eq!(stats.files_written, 1 + s.repeat, "{stats:?} {kept:?}");
    assert_eq!(stats.files_seen, 2 * s.repeat, "{stats:?} {kept:?}");
    if s.print {
        println!(
            "dedup (keeping {} media messages: one {}-byte file sent {} times, {} distinct others):",
            stats.files_seen, s.dedup_bytes, s.repeat, s.repeat
        );
        println!(
            "  files seen {} / written {}; bytes seen {} / written {} ({:.1}% written)",
            stats.files_seen,
            stats.files_written,
            stats.bytes_seen,
            stats.bytes_written,
            100.0 * stats.bytes_written as f64 / stats.bytes_seen as f64,
        );
        println!(
            "  keeping took {:.0} ms: {:.1} MB/s downloaded, hashed, written and recorded",
            secs * 1e3,
            stats.bytes_seen as f64 / 1e6 / secs,
        );
    }
}

fn main() {
    igdm_test::bench_main(
        || {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
            rt.block_on(run(&Settings {
                sizes: vec![(MediaKind::Video, "video 64 KB", 64_000)],
                rounds: 1,
                repeat: 3,
                dedup_bytes: 20_000,
                print: false,
            }));
        },
        || {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
            rt.block_on(run(&Settings {
                sizes: vec![
                    (MediaKind::Voice, "voice 1 MB", 1_000_000),
                    (MediaKind::Video, "video 5 MB", 5_000_000),
                    (MediaKind::Video, "video 20 MB", 20_000_000),
                ],
                rounds: env_u64("IGDM_BENCH_ROUNDS", 5),
                repeat: env_u64("IGDM_BENCH_REPEAT", 10),
                dedup_bytes: 2_000_000,
                print: true,
            }));
        },
    );
}
