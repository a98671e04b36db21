//! Keeping media, end to end over real HTTP against the sandbox: `igdm sync
//! --media` keeps the bytes of 200 media messages after the sandbox expired
//! every CDN link, `igdm export` writes them beside the JSONL and links them,
//! and `igdm media get` downloads what is missing.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use assert_cmd::Command;
use base64::Engine as _;
use serde_json::{Value, json};
use sha2::Digest as _;

struct Env {
    _sandbox: igdm_sandbox::RunningSandbox,
    base: String,
    home: tempfile::TempDir,
    seed: igdm_sandbox::DemoSeed,
}

async fn env() -> Env {
    let sb = igdm_sandbox::Sandbox::new(igdm_sandbox::SandboxConfig::default());
    let running = sb.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let seed = sb.seed_demo().await.unwrap();
    Env { base: running.base_url(), _sandbox: running, home: tempfile::tempdir().unwrap(), seed }
}

impl Env {
    fn igdm_env(&self, args: &[&str], vars: &[(&str, &str)]) -> (i32, String, String) {
        let mut cmd = Command::cargo_bin("igdm").unwrap();
        cmd.args(args)
            .env("IGDM_HOME", self.home.path())
            .env_remove("IGDM_VAULT_PASSPHRASE")
            .env_remove("IGDM_ACCOUNT")
            .env_remove("IGDM_DATABASE_URL")
            .env_remove("IGDM_TOKEN")
            .env_remove("IGDM_MEDIA_DIR")
            .env_remove("IGDM_MEDIA_MAX_FILE_BYTES")
            .env_remove("IGDM_MEDIA_BUDGET_BYTES")
            .timeout(std::time::Duration::from_secs(120));
        for (k, v) in vars {
            cmd.env(k, v);
        }
        // The sandbox runs on this runtime: hand this worker's tasks on
        // while the child runs.
        let out = tokio::task::block_in_place(|| cmd.output()).unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn igdm(&self, args: &[&str]) -> (i32, String, String) {
        self.igdm_env(args, &[])
    }

    fn json_env(&self, args: &[&str], vars: &[(&str, &str)]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let (code, out, err) = self.igdm_env(&all, vars);
        assert_eq!(code, 0, "igdm {args:?}: {out}\n{err}");
        serde_json::from_str(out.trim())
            .unwrap_or_else(|e| panic!("not one JSON document ({e}): {out}\n{err}"))
    }

    fn json(&self, args: &[&str]) -> Value {
        self.json_env(args, &[])
    }

    async fn control(&self, path: &str, body: Value) -> Value {
        let r = reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap()
    }

    /// Adds a fresh sandbox web account `name`; returns its sandbox id.
    async fn web_account(&self, name: &str) -> String {
        let (code, out, err) = self.igdm(&["accounts", "add", name, "--sandbox", &self.base]);
        assert_eq!(code, 0, "{out}\n{err}");
        let v: Value = reqwest::get(format!("{}/_sandbox/accounts", self.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["username"] == name)
            .and_then(|a| a["id"].as_str())
            .unwrap()
            .to_owned()
    }

    fn customer(&self, i: usize) -> String {
        self.seed.customers[i]["pk"].as_str().unwrap().to_owned()
    }

    /// `from` sends account `to` these media; returns item id → SHA-256.
    async fn seed_media(
        &self,
        to: &str,
        from: &str,
        media: &[(&str, Vec<u8>)],
    ) -> Vec<(String, String)> {
        let body: Vec<Value> = media
            .iter()
            .map(|(kind, bytes)| {
                json!({"type": kind, "base64": base64::engine::general_purpose::STANDARD.encode(bytes)})
            })
            .collect();
        let v = self
            .control("/_sandbox/media/seed", json!({"to": to, "from": from, "media": body}))
            .await;
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["item_id"].as_str().unwrap().to_owned(),
                    i["sha256"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

/// `len` bytes of `kind` (JPEG magic, or an MP4 `ftyp` box), unique per `n`.
fn payload(kind: &str, n: u32, len: usize) -> Vec<u8> {
    let mut bytes = match kind {
        "image" => vec![0xFF, 0xD8, 0xFF, 0xE0],
        "video" => b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isommp42".to_vec(),
        _ => b"\x00\x00\x00\x18ftypM4A \x00\x00\x02\x00isommp42".to_vec(),
    };
    let mut x: u32 = 0x9E37_79B9 ^ n.wrapping_mul(2_654_435_761);
    while bytes.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        bytes.push((x >> 24) as u8);
    }
    bytes
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

fn sha_of(path: &Path) -> String {
    sha(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// 200 media messages from two users: photos, videos and voice notes, of
/// which 40 repeat bytes sent before.
fn media_set(offset: u32) -> Vec<(&'static str, Vec<u8>)> {
    (0..100u32)
        .map(|i| {
            let kind = ["image", "image", "video", "audio"][(i % 4) as usize];
            // Every fifth item repeats the bytes of the item before it.
            let n = if i % 5 == 4 { i - 1 } else { i } + offset;
            let kind = if i % 5 == 4 {
                ["image", "image", "video", "audio"][((i - 1) % 4) as usize]
            } else {
                kind
            };
            (kind, payload(kind, n, 2_000 + (n as usize % 7) * 1_500))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_media_then_export_keeps_every_file_after_the_links_expired() {
    let env = env().await;
    let me = env.web_account("keeper").await;
    let mut want: HashMap<String, String> = HashMap::new();
    for (who, offset) in [(0, 0), (1, 1_000)] {
        let from = env.customer(who);
        for (item, sha256) in env.seed_media(&me, &from, &media_set(offset)).await {
            want.insert(item, sha256);
        }
    }
    assert_eq!(want.len(), 200);
    let distinct: HashSet<&String> = want.values().collect();
    assert_eq!(distinct.len(), 160);

    // A plain sync stores the messages with their CDN links; then every link expires.
    let report = env.json(&["sync"]);
    assert!(report["messages"].as_u64().unwrap() >= 200, "{report}");
    assert!(report.get("media").is_none(), "{report}");
    let expired = env.control("/_sandbox/media/expire", json!({})).await;
    assert!(expired["revoked"].as_u64().unwrap() >= 200, "{expired}");

    // Nothing changed in the inbox, so sync reads no page again: every stored
    // link is refused and refreshed by re-reading before it is kept.
    let report = env.json(&["sync", "--media"]);
    let media = &report["media"];
    assert_eq!(media["kept"], json!(200), "{report}");
    assert_eq!(media["failed"], json!(0), "{report}");
    assert_eq!(media["refreshed"], json!(200), "{report}");
    assert_eq!(media["files_written"], json!(160), "{report}");
    assert!(media["bytes_written"].as_u64() < media["bytes_seen"].as_u64(), "{report}");

    // Kept: a second pass downloads nothing.
    let again = env.json(&["sync", "--media"]);
    assert_eq!(again["media"]["kept"], json!(0), "{again}");
    assert_eq!(again["media"]["already"], json!(200), "{again}");

    // The export needs no CDN: expire again, then export beside a file.
    env.control("/_sandbox/media/expire", json!({})).await;
    let out_dir = tempfile::tempdir().unwrap();
    let file = out_dir.path().join("export.jsonl");
    let (code, out, err) =
        env.igdm(&["export", "--format", "jsonl", "--output", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}\n{err}");
    let mut checked = 0;
    for line in std::fs::read_to_string(&file).unwrap().lines() {
        let m: Value = serde_json::from_str(line).unwrap();
        let Some(sha256) = want.get(m["id"].as_str().unwrap()) else { continue };
        let media = m["media"].as_array().unwrap_or_else(|| panic!("no media: {m}"));
        assert_eq!(media.len(), 1, "{m}");
        let rel = media[0]["path"].as_str().unwrap();
        assert!(rel.starts_with("media/"), "{rel}");
        assert_eq!(&sha_of(&out_dir.path().join(rel)), sha256, "{m}");
        assert_eq!(media[0]["sha256"].as_str(), Some(sha256.as_str()));
        checked += 1;
    }
    assert_eq!(checked, 200);
    // One file per distinct content.
    assert_eq!(std::fs::read_dir(out_dir.path().join("media")).unwrap().count(), 160);

    // CSV links the same files.
    let csv_file = out_dir.path().join("export.csv");
    let (code, _, err) =
        env.igdm(&["export", "--format", "csv", "--output", csv_file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let csv = std::fs::read_to_string(&csv_file).unwrap();
    assert!(csv.lines().next().unwrap().ends_with(",media"));
    assert_eq!(csv.lines().filter(|l| l.contains(",media/")).count(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn media_get_downloads_what_is_missing_and_limits_hold() {
    let env = env().await;
    let me = env.web_account("getter").await;
    let from = env.customer(0);
    let big = payload("video", 7, 300_000);
    let items = env
        .seed_media(&me, &from, &[("image", payload("image", 1, 5_000)), ("video", big.clone())])
        .await;
    let (photo, photo_sha) = items[0].clone();
    let (video, video_sha) = items[1].clone();
    env.json(&["sync"]);
    env.control("/_sandbox/media/expire", json!({})).await;

    // Not kept yet: downloaded (through a refreshed link), then printed.
    let (code, out, err) = env.igdm(&["media", "get", &photo]);
    assert_eq!(code, 0, "{out}\n{err}");
    let path = out.trim();
    assert!(path.starts_with(env.home.path().join("media").to_str().unwrap()), "{path}");
    assert_eq!(sha_of(Path::new(path)), photo_sha);
    // Kept: the same path, without a download.
    env.control("/_sandbox/media/expire", json!({})).await;
    let v = env.json(&["media", "get", &photo]);
    assert_eq!(v["media"][0]["path"], json!(path));
    assert_eq!(v["media"][0]["sha256"], json!(photo_sha));

    // A file over the size limit is refused with the limit named.
    let (code, _, err) =
        env.igdm_env(&["media", "get", &video], &[("IGDM_MEDIA_MAX_FILE_BYTES", "100000")]);
    assert_ne!(code, 0);
    assert!(err.contains("per-file limit of 100000 bytes"), "{err}");
    // An account budget stops new files, and says so.
    let (code, _, err) =
        env.igdm_env(&["media", "get", &video], &[("IGDM_MEDIA_BUDGET_BYTES", "200000")]);
    assert_ne!(code, 0);
    assert!(err.contains("budget of 200000 bytes"), "{err}");
    // Within both: kept elsewhere when IGDM_MEDIA_DIR says so.
    let elsewhere = tempfile::tempdir().unwrap();
    let v = env.json_env(
        &["media", "get", &video],
        &[("IGDM_MEDIA_DIR", elsewhere.path().to_str().unwrap())],
    );
    let p = v["media"][0]["path"].as_str().unwrap();
    assert!(p.starts_with(elsewhere.path().to_str().unwrap()), "{p}");
    assert_eq!(sha_of(Path::new(p)), video_sha);
    assert_eq!(video_sha, sha(&big));

    // An unknown message: not found, with the next step.
    let (code, _, err) = env.igdm(&["media", "get", "nope"]);
    assert_eq!(code, i32::from(igdm::exit_code(&igdm_model::ErrorClass::NotFound)), "{err}");
    assert!(err.contains("igdm sync"), "{err}");
}

/// `igdm serve --media` keeps the media of messages that arrive by webhook:
/// a customer sends the business account a photo and a video; both files
/// land in the media store with the sandbox's bytes, recorded against the
/// message, so that `igdm media get` answers from disk after every link
/// expired.
#[tokio::test(flavor = "multi_thread")]
async fn serve_media_keeps_what_arrives_by_webhook() {
    use tokio::io::AsyncBufReadExt as _;
    const SECRET: &str = "serve-media-secret";
    const VERIFY: &str = "serve-media-verify";

    let env = env().await;
    let business = env.seed.business["id"].as_str().unwrap().to_owned();
    let minted = env
        .control("/_sandbox/tokens", json!({"account_id": business, "kind": "long_lived"}))
        .await;
    let token = minted["access_token"].as_str().unwrap();
    let (code, out, err) = env.igdm(&[
        "accounts",
        "add",
        "shop",
        "--connector",
        "instagram-graph",
        "--token",
        token,
        "--base-url",
        &env.base,
    ]);
    assert_eq!(code, 0, "{out}\n{err}");

    let map = format!("{business}=shop");
    let mut serve = tokio::process::Command::new(env!("CARGO_BIN_EXE_igdm"))
        .args(["serve", "--addr", "127.0.0.1:0", "--media", "--account-map", &map])
        .env("IGDM_HOME", env.home.path())
        .env("IGDM_APP_SECRET", SECRET)
        .env("IGDM_VERIFY_TOKEN", VERIFY)
        .env_remove("IGDM_ACCOUNT")
        .env_remove("IGDM_VAULT_PASSPHRASE")
        .env_remove("IGDM_DATABASE_URL")
        .env_remove("IGDM_LOG_DATABASE_URL")
        .env_remove("IGDM_MEDIA_DIR")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(serve.stderr.take().unwrap()).lines();
    let mut early = Vec::new();
    let hook = loop {
        let line = tokio::time::timeout(std::time::Duration::from_secs(60), lines.next_line())
            .await
            .expect("igdm serve starts within 60 s")
            .unwrap()
            .expect("igdm serve ended before listening");
        if let Some(url) = line.split("listening on ").nth(1) {
            break url.trim().to_owned();
        }
        early.push(line);
    };
    let stderr = tokio::spawn(async move {
        let mut seen = early;
        while let Ok(Some(l)) = lines.next_line().await {
            seen.push(l);
        }
        seen
    });
    env.control(
        "/_sandbox/webhooks",
        json!({"callback_url": hook, "verify_token": VERIFY, "app_secret": SECRET, "batch_window_ms": 10}),
    )
    .await;

    let photo = payload("image", 31, 40_000);
    let video = payload("video", 32, 90_000);
    let seeded = env
        .control(
            "/_sandbox/media/seed",
            json!({"to": business, "from": env.customer(0), "media": [
                {"type": "image", "base64": base64::engine::general_purpose::STANDARD.encode(&photo)},
                {"type": "video", "base64": base64::engine::general_purpose::STANDARD.encode(&video)},
            ]}),
        )
        .await;
    let items: Vec<(String, String)> = seeded["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["mid"].as_str().unwrap().to_owned(), i["sha256"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(items[0].1, sha(&photo));
    assert_eq!(items[1].1, sha(&video));

    // Both files arrive in the content-addressed store without any command.
    let media_dir = env.home.path().join("media");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    for (_, sha256) in &items {
        let path = media_dir.join(&sha256[..2]).join(sha256);
        while !(path.exists() && sha_of(&path) == *sha256) {
            assert!(
                std::time::Instant::now() < deadline,
                "serve --media did not keep {sha256} within 30 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    // SIGTERM ends the server cleanly.
    let pid = serve.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = tokio::time::timeout(std::time::Duration::from_secs(30), serve.wait())
        .await
        .expect("igdm serve stops within 30 s")
        .unwrap();
    let log = stderr.await.unwrap().join("\n");
    assert!(status.success(), "{log}");
    assert!(log.contains("keeping arriving media in"), "{log}");

    // Recorded against the message: `media get` answers from disk even
    // after every link expired.
    env.control("/_sandbox/media/expire", json!({})).await;
    for (mid, sha256) in &items {
        let v = env.json(&["--account", "shop", "media", "get", mid]);
        assert_eq!(v["media"][0]["sha256"], json!(sha256), "{v}");
        let path = v["media"][0]["path"].as_str().unwrap();
        assert_eq!(Path::new(path), media_dir.join(&sha256[..2]).join(sha256));
    }
}
