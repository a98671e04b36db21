//! The keep-alive over real HTTP against the sandbox's private API: cookie
//! and claim rotation persisted, then a logout and a challenge marking the
//! account and stopping further calls.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::Sb;
use igdm_auth::probe::HttpProbe;
use igdm_auth::session::{KeepAlive, KeepAliveConfig, Reauth, Tick, next_step};
use igdm_auth::{CookieCredential, Credential, CredentialStore, MemoryStore, SessionStore};
use igdm_model::SessionHealth;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

fn credential(account: &Value) -> CookieCredential {
    let cookies: BTreeMap<String, SecretString> = account["cookies"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), SecretString::from(v.as_str().unwrap().to_owned())))
        .collect();
    CookieCredential::new(cookies, "instagram.com", None)
}

#[tokio::test]
async fn keep_alive_rotates_then_stops_at_logout_and_challenge() {
    let sb = Sb::start().await;
    let store = Arc::new(MemoryStore::new());
    let url = HttpProbe::resolve(
        "{{api.base_url}}/direct_v2/get_presence/",
        &format!("{}/api/v1", sb.url()),
    );
    let probe = Arc::new(HttpProbe::new(url).unwrap());
    let config = KeepAliveConfig {
        skip_if_read_within: Duration::ZERO,
        ..KeepAliveConfig::every(Duration::from_secs(3600))
    };

    let a = sb.account("personal", "alive.user", false, false).await;
    store.put("alive", Credential::Cookies(credential(&a))).await.unwrap();
    let ka = KeepAlive::new(store.clone(), store.clone(), probe.clone(), "alive", config.clone());
    let old_rur = a["cookies"]["rur"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        assert!(matches!(ka.tick().await.unwrap(), Tick::Alive { .. }));
    }
    let Some(Credential::Cookies(c)) = store.get("alive").await.unwrap() else { panic!() };
    assert!(c.device.www_claim.starts_with("hmac."), "claim stored: {}", c.device.www_claim);
    assert_ne!(c.get("rur").unwrap().expose_secret(), old_rur, "the rotated rur cookie is stored");
    assert!(store.session("alive").await.unwrap().last_success_at.is_some());

    sb.post("/_sandbox/faults", json!({"account": a["id"], "mode": "login_required"})).await;
    let Tick::Marked(SessionHealth::LoggedOut { .. }) = ka.tick().await.unwrap() else {
        panic!("logged out")
    };
    let st = store.session("alive").await.unwrap();
    assert!(next_step("alive", &st.health, Reauth::Browser).unwrap().contains("igdm login alive"));
    assert!(matches!(ka.tick().await.unwrap(), Tick::SkippedBlocked(_)), "no call after a logout");

    let b = sb.account("personal", "checked.user", false, false).await;
    store.put("checked", Credential::Cookies(credential(&b))).await.unwrap();
    sb.post("/_sandbox/faults", json!({"account": b["id"], "mode": "challenge"})).await;
    let kb = KeepAlive::new(store.clone(), store.clone(), probe, "checked", config);
    let Tick::Marked(SessionHealth::Challenge { url }) = kb.tick().await.unwrap() else {
        panic!("challenge")
    };
    assert!(url.unwrap().contains("/challenge/"));
    let st = store.session("checked").await.unwrap();
    assert!(
        next_step("checked", &st.health, Reauth::Browser).unwrap().contains("igdm login checked")
    );
}
