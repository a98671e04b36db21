//! `igdm login`, `igdm oauth` and `igdm browser-run` against a running sandbox.

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;
use std::time::Duration;

use assert_cmd::Command;
use serde_json::{Value, json};

struct Env {
    _sandbox: igdm_sandbox::RunningSandbox,
    base: String,
    home: tempfile::TempDir,
}

async fn env() -> Env {
    let sb = igdm_sandbox::Sandbox::new(igdm_sandbox::SandboxConfig::default());
    let running = sb.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    Env { base: running.base_url(), _sandbox: running, home: tempfile::tempdir().unwrap() }
}

/// Whether Chromium is there for `test`; a missing one fails the test under
/// CI and is listed as skipped elsewhere.
fn has_chromium(test: &str) -> bool {
    igdm_test::prereq::chromium(test).is_some()
}

impl Env {
    fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("igdm").unwrap();
        c.env("IGDM_HOME", self.home.path())
            .env("IGDM_VAULT_PASSPHRASE", "cli test passphrase")
            .env("IGDM_VAULT_SCRYPT_LOG_N", "10")
            .env_remove("IGDM_ACCOUNT")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .timeout(Duration::from_secs(90));
        c
    }

    fn run(
        &self,
        args: &[&str],
        stdin: Option<&str>,
        envs: &[(&str, &str)],
    ) -> (i32, String, String) {
        let mut c = self.cmd();
        c.args(args);
        for (k, v) in envs {
            c.env(k, v);
        }
        if let Some(s) = stdin {
            c.write_stdin(s.to_owned());
        }
        // The sandbox answers from this runtime: waiting for the child on a
        // worker thread without handing its tasks on can leave the one the
        // child is waiting for stuck behind it (it hung a login for 90 s).
        let out = tokio::task::block_in_place(|| c.output()).unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    async fn account(&self, kind: &str, username: &str) -> Value {
        let r = reqwest::Client::new()
            .post(format!("{}/_sandbox/accounts", self.base))
            .json(&json!({"kind": kind, "username": username, "password": "pw-cli-123"}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        r.json().await.unwrap()
    }
}

/// Reads a child's stderr to the end and returns the first line that is a URL.
async fn consent_url(stderr: std::process::ChildStderr) -> String {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.trim().starts_with("http")
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(line.trim().to_owned());
            }
        }
    });
    rx.await.expect("the consent URL is printed")
}

/// Allows the consent for `username` and returns the redirect location.
async fn consent(http: &reqwest::Client, base: &str, url: &str, username: &str) -> String {
    let u = url::Url::parse(url).unwrap();
    let mut form: Vec<(String, String)> = u.query_pairs().into_owned().collect();
    form.push(("username".into(), username.into()));
    form.push(("decision".into(), "allow".into()));
    let r = http.post(format!("{base}/oauth/authorize")).form(&form).send().await.unwrap();
    r.headers()["location"].to_str().unwrap().to_owned()
}

fn parse(out: &str, err: &str) -> Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out}\n{err}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_browser_and_cookies_then_browser_run() {
    let env = env().await;
    env.account("personal", "cli.user").await;
    if has_chromium("login_with_browser_and_cookies_then_browser_run (browser part)") {
        let (code, out, err) = env.run(
            &[
                "--json",
                "login",
                "web",
                "--base-url",
                &env.base,
                "--username",
                "cli.user",
                "--password-env",
                "IGDM_TEST_PW",
                "--headless",
            ],
            None,
            &[("IGDM_TEST_PW", "pw-cli-123")],
        );
        assert_eq!(code, 0, "{out}\n{err}");
        let v = parse(&out, &err);
        assert_eq!(v["username"], "cli.user");
        assert_eq!(v["validated"], true);
        assert!(!out.contains("pw-cli-123") && !err.contains("pw-cli-123"));

        let steps = json!({"launch": {"headless": true}, "inputs": {"u": "cli.user", "p": "pw-cli-123"}, "steps": [
            {"goto": "https://www.instagram.com/accounts/login/"},
            {"type": {"selector": "input[name=username]", "text": "{{u}}"}},
            {"type": {"selector": "input[name=password]", "text": "{{p}}"}},
            {"click": "button[type=submit]"},
            {"wait_for": {"any": [{"url_matches": "https://www.instagram.com/direct/"}], "timeout": 30000}},
            {"extract_cookies": {"names": ["sessionid", "ds_user_id"]}},
            {"extract": {"selector": "img[data-testid='user-avatar']", "attribute": "alt", "as": "username"}},
            "close"
        ]});
        let (code, out, err) =
            env.run(&["browser-run", "--base-url", &env.base], Some(&steps.to_string()), &[]);
        assert_eq!(code, 0, "{out}\n{err}");
        let v = parse(&out, &err);
        assert_eq!(v["success"], true);
        assert_eq!(v["extracted"]["username"], "cli.user");
        assert!(v["cookies"]["sessionid"].as_str().unwrap().contains("%3A"));
        let (code, out, _) = env.run(
            &["browser-run", "--headless", "--base-url", &env.base],
            Some(r##"{"steps":[{"goto":"https://www.instagram.com/accounts/login/"},{"wait_for":{"selector":"#never","timeout":300}}]}"##),
            &[],
        );
        assert_eq!(code, 1);
        assert_eq!(parse(&out, "")["code"], "timeout");
    }

    // Cookie import from a copied cURL command, validated against the sandbox.
    let other = env.account("personal", "imp.user").await;
    let curl = format!(
        "curl 'https://www.instagram.com/api/v1/direct_v2/inbox/' -H 'cookie: {}'",
        other["cookie_header"].as_str().unwrap()
    );
    let (code, out, err) = env.run(
        &["--json", "login", "imp", "--cookies", "-", "--base-url", &env.base],
        Some(&curl),
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(parse(&out, &err)["username"], "imp.user");
    // Missing cookies are named; nothing is stored.
    let (code, _, err) = env.run(
        &["login", "bad", "--cookies", "-", "--base-url", &env.base],
        Some("sessionid=1%3Aa; csrftoken=b"),
        &[],
    );
    assert_eq!(code, 1);
    assert!(err.contains("missing required cookies: ds_user_id, mid, ig_did"), "{err}");
    // A dead session is refused by the validate probe.
    let (code, _, err) = env.run(
        &["login", "dead", "--cookies", "-", "--base-url", &env.base],
        Some("sessionid=1%3Aa%3A1; csrftoken=b; ds_user_id=1; mid=m; ig_did=d"),
        &[],
    );
    assert_eq!(code, 1);
    assert!(err.contains("refused"), "{err}");
    let files: Vec<_> =
        std::fs::read_dir(env.home.path()).unwrap().map(|e| e.unwrap().path()).collect();
    for f in files.iter().filter(|f| f.is_file()) {
        let text = String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned();
        assert!(!text.contains(other["cookies"]["sessionid"].as_str().unwrap()), "{}", f.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_through_the_binary_and_page_tokens() {
    let env = env().await;
    env.account("business", "cli.shop").await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let redirect = format!("http://127.0.0.1:{port}/cb");
    let http =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    http.post(format!("{}/_sandbox/apps", env.base))
        .json(
            &json!({"app_id": "5151", "app_secret": "cli-app-secret", "redirect_uris": [redirect]}),
        )
        .send()
        .await
        .unwrap();

    let bin = assert_cmd::cargo::cargo_bin("igdm");
    let mut child = std::process::Command::new(bin)
        .args([
            "--json",
            "oauth",
            "shop",
            "--app-id",
            "5151",
            "--app-secret-env",
            "IGDM_TEST_SECRET",
            "--redirect-uri",
            &redirect,
            "--base-url",
            &env.base,
            "--timeout",
            "30",
        ])
        .env("IGDM_HOME", env.home.path())
        .env("IGDM_VAULT_PASSPHRASE", "cli test passphrase")
        .env("IGDM_VAULT_SCRYPT_LOG_N", "10")
        .env("IGDM_TEST_SECRET", "cli-app-secret")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = consent_url(child.stderr.take().unwrap()).await;
    let location = consent(&http, &env.base, &url, "cli.shop").await;
    http.get(location).send().await.unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    let v = parse(&stdout, "");
    assert_eq!(v["connector"], "instagram-graph");
    assert!(v["expires_at"].is_string());

    // --paste: the redirect URL (with its `#_`) is pasted on stdin instead.
    let bin = assert_cmd::cargo::cargo_bin("igdm");
    let mut child = std::process::Command::new(bin)
        .args([
            "--json",
            "oauth",
            "pasted",
            "--paste",
            "--app-id",
            "5151",
            "--app-secret-env",
            "IGDM_TEST_SECRET",
            "--redirect-uri",
            &redirect,
            "--base-url",
            &env.base,
        ])
        .env("IGDM_HOME", env.home.path())
        .env("IGDM_VAULT_PASSPHRASE", "cli test passphrase")
        .env("IGDM_VAULT_SCRYPT_LOG_N", "10")
        .env("IGDM_TEST_SECRET", "cli-app-secret")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = consent_url(child.stderr.take().unwrap()).await;
    let location = consent(&http, &env.base, &url, "cli.shop").await;
    assert!(location.ends_with("#_"));
    let mut stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, format!("{location}\n").as_bytes()).unwrap();
    drop(stdin);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    assert_eq!(parse(&stdout, "")["account"], "pasted");

    let (code, out, err) = env.run(
        &[
            "--json",
            "oauth",
            "page",
            "--page",
            "--page-token-env",
            "IGDM_TEST_PAGE",
            "--page-id",
            "1789",
            "--base-url",
            &env.base,
        ],
        None,
        &[("IGDM_TEST_PAGE", "EAApagetoken")],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(parse(&out, &err)["connector"], "instagram-page");
    let (code, _, err) =
        env.run(&["oauth", "nopage", "--page", "--page-token-env", "IGDM_UNSET_VAR"], None, &[]);
    assert_eq!(code, 1);
    assert!(err.contains("IGDM_UNSET_VAR is not set"), "{err}");
}

/// The `auth` and `session` blocks of the original connector description
/// (seed 001), verbatim: Playwright-style steps written for the real site.
const SEED_001: &str = r#"---
id: instagram
name: Instagram
website: https://www.instagram.com
auth:
  type: cookies
  domain: instagram.com
  cookies:
    - sessionid      # Main session token
    - csrftoken      # CSRF token (must match x-csrftoken header)
    - ds_user_id     # User's Instagram ID
    - mid            # Machine ID
    - ig_did         # Device ID
  connect:
    playwright:
      launch:
        headless: false
      steps:
        - goto: "https://www.instagram.com/accounts/login/"
        - wait_for:
            any:
              - url_matches: "https://www.instagram.com/$"
              - url_matches: "https://www.instagram.com/direct/"
              - selector: "[aria-label='Home']"
            timeout: 300000
        - assert_cookies:
            - sessionid
            - csrftoken
            - ds_user_id
        - extract_cookies:
            names: [sessionid, csrftoken, ds_user_id, mid, ig_did]
            optional: [rur, ig_www_claim]
        - extract:
            selector: "img[data-testid='user-avatar']"
            attribute: "alt"
            as: "username"
        - close
      on_success:
        message: "Connected to Instagram as @{{username}}!"
      on_error:
        challenge_required:
          message: "Instagram requires verification. Please complete it in the browser."
        timeout:
          message: "Login timed out. Please try again."
session:
  keep_alive:
    interval: "4h"
---

# Instagram
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_the_seed_connector_file() {
    let env = env().await;
    if !has_chromium("login_with_the_seed_connector_file") {
        return;
    }
    env.account("personal", "seed.user").await;
    let spec = env.home.path().join("seed-001.md");
    std::fs::write(&spec, SEED_001).unwrap();
    let spec = spec.to_str().unwrap();
    let (code, out, err) = env.run(
        &[
            "login",
            "seeded",
            "--spec",
            spec,
            "--base-url",
            &env.base,
            "--username",
            "seed.user",
            "--password-env",
            "IGDM_TEST_PW",
            "--headless",
        ],
        None,
        &[("IGDM_TEST_PW", "pw-cli-123")],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(out.trim(), "Connected to Instagram as @seed.user!");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facebook_user_token_becomes_a_page_account() {
    let env = env().await;
    let shop = env.account("business", "fb.shop").await;
    let http = reqwest::Client::new();
    http.post(format!("{}/_sandbox/apps", env.base))
        .json(&json!({"app_id": "6161", "app_secret": "fb-cli-secret", "redirect_uris": []}))
        .send()
        .await
        .unwrap();
    let minted: Value = http
        .post(format!("{}/_sandbox/fb/user_tokens", env.base))
        .json(&json!({"account_id": shop["id"], "app_id": "6161"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let user_token = minted["access_token"].as_str().unwrap();
    let page_args = |name: &'static str| {
        vec![
            "--json",
            "oauth",
            name,
            "--page",
            "--user-token-env",
            "IGDM_TEST_FB_USER",
            "--app-id",
            "6161",
            "--app-secret-env",
            "IGDM_TEST_FB_SECRET",
            "--base-url",
            &env.base,
        ]
    };
    let (code, out, err) = env.run(
        &page_args("fbpage"),
        None,
        &[("IGDM_TEST_FB_USER", user_token), ("IGDM_TEST_FB_SECRET", "fb-cli-secret")],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let v = parse(&out, &err);
    assert_eq!(v["connector"], "instagram-page");
    assert_eq!(v["page_id"], shop["page_id"]);
    assert_eq!(v["instagram_id"], shop["id"]);
    assert!(v["expires_at"].is_null(), "a Page token from a long-lived user token does not expire");
    assert!(!out.contains(user_token) && !err.contains(user_token));
    // The stored Page token serves the account.
    let (code, out, err) = env.run(&["--json", "--account", "fbpage", "conversations"], None, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = env.run(&["--json", "accounts", "status"], None, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    let st = parse(&out, &err);
    assert_eq!(st["items"][0]["health"]["state"], "healthy", "{st}");
    assert!(st["items"][0]["token_expires_at"].is_null(), "{st}");

    // A refused user token is explained, and nothing is registered.
    let (code, out, err) = env.run(
        &page_args("refused"),
        None,
        &[("IGDM_TEST_FB_USER", "EAAnotatoken"), ("IGDM_TEST_FB_SECRET", "fb-cli-secret")],
    );
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("Facebook user token was refused"), "{err}");
    let (_, out, _) = env.run(&["--json", "accounts", "list"], None, &[]);
    assert!(!out.contains("refused"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_runs_headed_under_an_xvfb_display() {
    let env = env().await;
    if !has_chromium("login_runs_headed_under_an_xvfb_display") {
        return;
    }
    let Some(x) = igdm_test::prereq::xvfb("login_runs_headed_under_an_xvfb_display") else {
        return;
    };
    env.account("personal", "headed.user").await;
    // No --headless: with a display, the login opens a browser window.
    let (code, out, err) = env.run(
        &[
            "--json",
            "login",
            "headed",
            "--base-url",
            &env.base,
            "--username",
            "headed.user",
            "--password-env",
            "IGDM_TEST_PW",
        ],
        None,
        &[("IGDM_TEST_PW", "pw-cli-123"), ("DISPLAY", &x.display), ("IGDM_LOG", "igdm_auth=debug")],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("A browser window opens"), "{err}");
    // The log may be coloured: compare without the escape sequences.
    let mut plain = String::new();
    let mut in_escape = false;
    for c in err.chars() {
        match (in_escape, c) {
            (false, '\u{1b}') => in_escape = true,
            (true, 'm') => in_escape = false,
            (false, c) => plain.push(c),
            (true, _) => {}
        }
    }
    assert!(plain.contains("launching Chromium"), "{plain}");
    assert!(plain.contains("headless=false"), "Chromium ran headed: {plain}");
    let v = parse(&out, &err);
    assert_eq!(v["username"], "headed.user");
    assert_eq!(v["validated"], true);
    assert!(!out.contains("pw-cli-123") && !err.contains("pw-cli-123"));
}
