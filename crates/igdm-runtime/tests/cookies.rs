//! Cookie sessions opened through the runtime, over real HTTP to the
//! sandbox: cookies the server rotates reach the vault while the account is
//! still open, not only when it is finished.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use igdm::Home;
use igdm_auth::{Credential, CredentialStore as _};
use igdm_runtime::Runtime;
use igdm_test::sandbox::post_ok;
use secrecy::ExposeSecret;
use serde_json::json;

async fn stored_rur(rt: &Runtime) -> String {
    match rt.vault().unwrap().get("web").await.unwrap() {
        Some(Credential::Cookies(c)) => c.get("rur").unwrap().expose_secret().to_owned(),
        other => panic!("no cookies stored: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_cookies_reach_the_vault_while_the_account_is_open() {
    let sandbox = igdm_test::sandbox::start().await;
    let base = sandbox.base_url();
    let account =
        post_ok(&base, "/_sandbox/accounts", json!({"kind": "personal", "username": "web_rt"}))
            .await;
    let dir = tempfile::tempdir().unwrap();
    let mut rt = Runtime::at(Home::at(dir.path())).unwrap();
    let (config, credential) = igdm_test::clients::web_login(&base, "web", &account);
    rt.add_account(config, credential).await.unwrap();
    let first = stored_rur(&rt).await;

    let live = rt.open(Some("web")).await.unwrap();
    assert!(live.holds_cookies());
    assert!(live.keep_alive(None).is_some(), "a web session has a keep-alive");
    // Every third request of an account rotates its `rur` cookie.
    for _ in 0..3 {
        live.client().conversations().limit(5).await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while stored_rur(&rt).await == first {
        assert!(tokio::time::Instant::now() < deadline, "the rotated rur never reached the vault");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The account is still open and usable.
    live.client().conversations().limit(5).await.unwrap();
    live.finish().await.unwrap();
}
