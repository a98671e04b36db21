//! `igdm ui` as a process against a sandbox account: it prints a link with
//! a fresh token once, that link opens a session, requests without the
//! token get 401, a non-loopback address is refused, and SIGTERM ends it
//! cleanly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

struct Env {
    _sandbox: igdm_sandbox::RunningSandbox,
    base: String,
    home: tempfile::TempDir,
}

async fn env() -> Env {
    let running = igdm_test::sandbox::start().await;
    Env { base: running.base_url(), _sandbox: running, home: tempfile::tempdir().unwrap() }
}

impl Env {
    fn cmd(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_igdm"));
        cmd.env("IGDM_HOME", self.home.path())
            .env_remove("IGDM_VAULT_PASSPHRASE")
            .env_remove("IGDM_ACCOUNT")
            .env_remove("IGDM_DATABASE_URL")
            .env_remove("IGDM_UI_TOKEN");
        cmd
    }

    fn igdm(&self, args: &[&str]) -> (i32, String) {
        let out = tokio::task::block_in_place(|| self.cmd().args(args).output()).unwrap();
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// Starts `igdm ui` with `vars`; returns the child and its stderr lines.
    fn ui(&self, vars: &[(&str, &str)]) -> (Child, mpsc::Receiver<String>) {
        let mut child = self
            .cmd()
            .args(["ui", "--addr", "127.0.0.1:0", "--interval", "200ms"])
            .envs(vars.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        (child, rx)
    }
}

fn line_with(rx: &mpsc::Receiver<String>, needle: &str) -> String {
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(l) if l.contains(needle) => return l,
            Ok(_) => {}
            Err(_) => panic!("igdm ui never printed {needle:?}"),
        }
    }
}

fn terminate(mut child: Child) -> i32 {
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = tokio::task::block_in_place(|| child.wait()).unwrap();
    status.code().unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_prints_a_token_link_once_and_guards_every_request() {
    let env = env().await;
    let (code, err) = env.igdm(&["accounts", "add", "shopfront", "--sandbox", &env.base]);
    assert_eq!(code, 0, "{err}");

    let (code, err) = env.igdm(&["ui", "--addr", "0.0.0.0:0"]);
    assert_ne!(code, 0);
    assert!(err.contains("not a loopback address"), "{err}");

    let (child, rx) = env.ui(&[]);
    let line = line_with(&rx, "?token=");
    let link = line.split_whitespace().find(|w| w.contains("?token=")).unwrap().to_owned();
    let root = link.split("?token=").next().unwrap().to_owned();
    let http =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = http.get(&root).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http.get(&link).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let r = http.get(&root).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("shopfront") && page.contains("private web API"), "{page}");
    assert_eq!(terminate(child), 0);
    // Nothing more was printed with the token in it.
    let token = link.split("?token=").nth(1).unwrap();
    assert!(rx.try_iter().all(|l| !l.contains(token)));

    // With IGDM_UI_TOKEN the token is the user's and is never printed.
    let mine = "a-token-of-my-own-0123456789";
    let (child, rx) = env.ui(&[("IGDM_UI_TOKEN", mine)]);
    let line = line_with(&rx, "igdm ui: serving");
    assert!(!line.contains(mine), "{line}");
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).unwrap();
    let r = http.get(url).bearer_auth(mine).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(terminate(child), 0);
}

/// `igdm ui` keeps the media of arriving messages by default, so that the
/// thread shows them from disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_keeps_the_media_of_arriving_messages() {
    use base64::Engine as _;
    use serde_json::json;
    use sha2::Digest as _;
    let env = env().await;
    let (code, err) = env.igdm(&["accounts", "add", "gallery", "--sandbox", &env.base]);
    assert_eq!(code, 0, "{err}");
    let (_, accounts) =
        igdm_test::sandbox::control(&env.base, "GET", "/_sandbox/accounts", None).await;
    let account = accounts["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["username"] == "gallery")
        .and_then(|a| a["id"].as_str())
        .unwrap()
        .to_owned();
    let customer =
        igdm_test::sandbox::post_ok(&env.base, "/_sandbox/customers", json!({"username": "pia"}))
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();

    let (child, rx) = env.ui(&[]);
    line_with(&rx, "?token=");
    let mut photo = vec![0xFF, 0xD8, 0xFF, 0xE0];
    photo.extend((0..30_000u32).map(|i| (i.wrapping_mul(2_246_822_519) >> 24) as u8));
    let sha256 = hex::encode(sha2::Sha256::digest(&photo));
    igdm_test::sandbox::post_ok(
        &env.base,
        "/_sandbox/media/seed",
        json!({"to": account, "from": customer, "media": [{"type": "image",
               "base64": base64::engine::general_purpose::STANDARD.encode(&photo)}]}),
    )
    .await;
    let kept = env.home.path().join("media").join(&sha256[..2]).join(&sha256);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !kept.exists() {
        assert!(std::time::Instant::now() < deadline, "igdm ui kept no photo within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(hex::encode(sha2::Sha256::digest(std::fs::read(&kept).unwrap())), sha256);
    assert_eq!(terminate(child), 0);
}

/// On an official-API account the thread says how much of the reply window
/// is left, offers HUMAN_AGENT, and lets a person take the conversation from
/// the bot and give it back, recorded where the bot reads it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_takes_a_conversation_from_the_bot_and_gives_it_back() {
    use serde_json::json;
    let env = env().await;
    let account = igdm_test::sandbox::post_ok(
        &env.base,
        "/_sandbox/accounts",
        json!({"kind": "business", "username": "shop_ui"}),
    )
    .await;
    let account_id = account["id"].as_str().unwrap().to_owned();
    let minted = igdm_test::sandbox::post_ok(
        &env.base,
        "/_sandbox/tokens",
        json!({"account_id": account_id, "kind": "long_lived"}),
    )
    .await;
    let token = minted["access_token"].as_str().unwrap();
    let (code, err) = env.igdm(&[
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
    assert_eq!(code, 0, "{err}");
    let customer =
        igdm_test::sandbox::post_ok(&env.base, "/_sandbox/customers", json!({"username": "noa"}))
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
    igdm_test::sandbox::post_ok(
        &env.base,
        &format!("/_sandbox/customers/{customer}/send"),
        json!({"to": account_id, "text": "is the blue mug back?"}),
    )
    .await;

    let mine = "a-ui-token-for-the-handover-test";
    let (child, rx) = env.ui(&[("IGDM_UI_TOKEN", mine)]);
    let line = line_with(&rx, "igdm ui: serving");
    let root = line.split_whitespace().find(|w| w.starts_with("http://")).unwrap().to_owned();
    let root = root.trim_end_matches('/').to_owned();
    let http =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = http.get(format!("{root}/?token={mine}")).send().await.unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();

    // The watcher stores the conversation; its link is on the inbox page.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let thread = loop {
        let page = http.get(format!("{root}/")).header("cookie", &cookie).send().await.unwrap();
        let page = page.text().await.unwrap();
        if let Some(at) = page.find("href=\"/t/shop/") {
            let rest = &page[at + 6..];
            break rest[..rest.find('"').unwrap()].to_owned();
        }
        assert!(std::time::Instant::now() < deadline, "no conversation listed: {page}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let page = http.get(format!("{root}{thread}")).header("cookie", &cookie).send().await.unwrap();
    let page = page.text().await.unwrap();
    assert!(page.contains("Reply window: 23 h"), "{page}");
    assert!(page.contains("name=\"human_agent\""), "{page}");
    assert!(page.contains("The bot answers this conversation."), "{page}");
    let csrf = {
        let at = page.find("name=\"csrf\" value=\"").unwrap() + 19;
        page[at..at + page[at..].find('"').unwrap()].to_owned()
    };

    let post = |action: &'static str| {
        let (http, url, cookie, csrf, origin) = (
            http.clone(),
            format!("{root}{thread}/handover"),
            cookie.clone(),
            csrf.clone(),
            root.clone(),
        );
        async move {
            let r = http
                .post(url)
                .header("cookie", cookie)
                .header("origin", origin)
                .form(&[("csrf", csrf.as_str()), ("do", action)])
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (status, page) = post("take").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("You have the conversation"), "{page}");
    assert!(page.contains("A person has this conversation"), "{page}");
    assert!(page.contains("Give back to the bot"), "{page}");
    let (status, page) = post("release").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("The bot answers again"), "{page}");
    assert!(page.contains("The bot answers this conversation."), "{page}");
    let (status, _) = post("steal").await;
    assert_eq!(status, 400);
    assert_eq!(terminate(child), 0);
}
