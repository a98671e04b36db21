//! A whole session — browser login, cookie import, OAuth authorization and
//! token refresh, all stored in a passphrase vault — with a TRACE-level log
//! captured: no secret value may appear in the log or in any file under the
//! home directory.

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Sb;
use igdm_auth::oauth::{
    OAuthApp, OAuthClient, OAuthEndpoints, OffsetClock, TokenManager, run_authorization,
};
use igdm_auth::{Credential, CredentialStore, Vault, VaultKey};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { files(&p, out) } else { out.push(p) }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_trace_logs_or_files() {
    let log = Buf::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init()
        .unwrap();

    let home = tempfile::tempdir().unwrap();
    let passphrase = "vault-passphrase-Kq81";
    let vault = Arc::new(
        Vault::open(
            home.path(),
            VaultKey::Passphrase { passphrase: SecretString::from(passphrase), work_factor: 10 },
        )
        .unwrap(),
    );
    let sb = Sb::start().await;
    let mut secrets: Vec<String> = vec![passphrase.into(), "pw-123456".into()];

    // 1. Browser login (when a Chromium is installed).
    #[cfg(feature = "browser")]
    if common::chromium_or_skip("no_secret_in_trace_logs_or_files (browser part)") {
        sb.account("personal", "web.user", false, false).await;
        let auth = json!({"domain": "instagram.com", "cookies": ["sessionid", "csrftoken"], "connect": {"playwright": {"steps": [
            {"goto": "https://www.instagram.com/accounts/login/"},
            {"type": {"selector": "input[name=username]", "text": "{{username}}"}},
            {"type": {"selector": "input[name=password]", "text": "{{password}}"}},
            {"click": "button[type=submit]"},
            {"wait_for": {"url_matches": "https://www.instagram.com/direct/", "timeout": 30000}},
            {"extract_cookies": {"names": ["sessionid", "csrftoken", "ds_user_id", "mid", "ig_did"]}},
            "close"
        ]}}});
        let cfg = igdm_auth::AuthConfig::from_auth_value(&auth, None, None).unwrap();
        let mut opts = igdm_auth::browser::BrowserOptions {
            rewriter: Some(
                igdm_auth::browser::UrlRewriter::new("https://www.instagram.com", &sb.url())
                    .unwrap(),
            ),
            ..Default::default()
        };
        opts.inputs.insert("username".into(), "web.user".into());
        opts.inputs.insert("password".into(), "pw-123456".into());
        let login = igdm_auth::browser::browser_login(&cfg, &opts).await.unwrap();
        vault.put("web", Credential::Cookies(login.credential)).await.unwrap();
    }

    // 2. Cookie import.
    let other = sb.account("personal", "imported.user", false, false).await;
    let header = other["cookie_header"].as_str().unwrap();
    let cred = igdm_auth::import::import_cookies(
        &format!("curl 'https://www.instagram.com/' -H 'cookie: {header}'"),
        "instagram.com",
        &["sessionid".to_owned(), "csrftoken".to_owned()],
        None,
    )
    .unwrap();
    vault.put("imported", Credential::Cookies(cred)).await.unwrap();

    // 3. OAuth authorization and a refresh 54 days later.
    sb.account("business", "shop.owner", false, false).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let redirect = format!("http://127.0.0.1:{port}/cb");
    let app_secret = "app-secret-Zr93kd";
    secrets.push(app_secret.into());
    sb.post(
        "/_sandbox/apps",
        json!({"app_id": "4242", "app_secret": app_secret, "redirect_uris": [redirect]}),
    )
    .await;
    let client = OAuthClient::new(
        OAuthApp {
            app_id: "4242".into(),
            app_secret: app_secret.into(),
            redirect_uri: url::Url::parse(&redirect).unwrap(),
        },
        OAuthEndpoints::with_base_url(&sb.url()).unwrap(),
        Some(sb.url()),
    )
    .unwrap();
    let clock = Arc::new(OffsetClock::default());
    let sb_url = sb.url();
    let first = run_authorization(
        &client,
        "shop",
        vault.as_ref(),
        clock.as_ref(),
        Duration::from_secs(10),
        |u| {
            let mut form: Vec<(String, String)> = u.query_pairs().into_owned().collect();
            form.push(("username".into(), "shop.owner".into()));
            form.push(("decision".into(), "allow".into()));
            tokio::spawn(async move {
                let http = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .unwrap();
                let r = http
                    .post(format!("{sb_url}/oauth/authorize"))
                    .form(&form)
                    .send()
                    .await
                    .unwrap();
                let location = r.headers()["location"].to_str().unwrap().to_owned();
                http.get(location).send().await.unwrap();
            });
        },
    )
    .await
    .unwrap();
    secrets.push(first.access_token.expose_secret().to_owned());
    sb.advance(54 * 86_400).await;
    clock.advance(54 * 86_400);
    let store: Arc<dyn CredentialStore> = vault.clone();
    let mgr = TokenManager::new(store, "shop", Some(client), clock);
    secrets.push(mgr.access_token().await.unwrap().expose_secret().to_owned());

    // Every cookie value the vault holds is a secret too.
    for name in ["web", "imported"] {
        if let Some(Credential::Cookies(c)) = vault.get(name).await.unwrap() {
            for key in ["sessionid", "csrftoken", "mid", "ig_did"] {
                if let Some(v) = c.get(key) {
                    secrets.push(v.expose_secret().to_owned());
                }
            }
        }
    }
    assert!(secrets.len() >= 10, "{}", secrets.len());

    let text = String::from_utf8_lossy(&log.0.lock().unwrap()).into_owned();
    assert!(text.contains("credential stored in the vault"), "the capture works");
    assert!(text.contains("TRACE") || text.contains("DEBUG"), "trace-level capture");
    for s in &secrets {
        assert!(!text.contains(s.as_str()), "a secret of {} chars leaked into the log", s.len());
        // Cookie values also travel percent-decoded.
        let decoded = s.replace("%3A", ":");
        assert!(!text.contains(decoded.as_str()), "a decoded secret leaked into the log");
    }
    let mut all = Vec::new();
    files(home.path(), &mut all);
    assert!(!all.is_empty());
    for f in all {
        let bytes = std::fs::read(&f).unwrap();
        let content = String::from_utf8_lossy(&bytes);
        for s in &secrets {
            assert!(!content.contains(s.as_str()), "a secret is in {} in plaintext", f.display());
        }
    }
}
