//! The web login page driven by plain HTTP form posts.
#![allow(clippy::unwrap_used)]

mod common;

use common::{control, start};
use serde_json::{Value, json};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap() + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect()
}

async fn login_form(c: &reqwest::Client, base: &str) -> String {
    let r = c.get(format!("{base}/accounts/login/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("name=\"username\"")
            && html.contains("name=\"password\"")
            && html.contains("type=\"submit\"")
    );
    hidden(&html, "csrfmiddlewaretoken")
}

async fn assert_logged_in(c: &reqwest::Client, base: &str, r: reqwest::Response, username: &str) {
    assert_eq!(r.status(), 302, "{:?}", r.headers());
    assert_eq!(r.headers().get("location").unwrap(), "/direct/inbox/");
    let cookies = set_cookies(&r);
    for name in ["sessionid", "csrftoken", "ds_user_id", "mid", "ig_did"] {
        let c = cookies
            .iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} in {cookies:?}"));
        assert!(c.contains("Path=/"));
        if name == "sessionid" {
            assert!(c.contains("HttpOnly"));
        }
    }
    let page = c.get(format!("{base}/direct/inbox/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains(&format!("<img data-testid=\"user-avatar\" alt=\"{username}\"")),
        "{html}"
    );
    assert!(html.contains("aria-label=\"Home\""));
    let home = c.get(format!("{base}/")).send().await.unwrap();
    assert!(home.text().await.unwrap().contains("aria-label=\"Home\""));
}

#[tokio::test]
async fn password_login_sets_a_working_session() {
    let sb = start().await;
    let base = sb.base_url();
    control(
        &base,
        "POST",
        "/_sandbox/accounts",
        Some(json!({"kind": "personal", "username": "maya", "password": "s3cret"})),
    )
    .await;
    let c = client();
    // Not logged in: the inbox redirects to the login page.
    let r = c.get(format!("{base}/direct/inbox/")).send().await.unwrap();
    assert_eq!(r.headers().get("location").unwrap(), "/accounts/login/");

    let csrf = login_form(&c, &base).await;
    let r = c
        .post(format!("{base}/accounts/login/"))
        .form(&[
            ("csrfmiddlewaretoken", csrf.as_str()),
            ("username", "maya"),
            ("password", "wrong"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("password was incorrect"));
    // Without the CSRF field: refused.
    let r = c
        .post(format!("{base}/accounts/login/"))
        .form(&[("username", "maya"), ("password", "s3cret")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let r = c
        .post(format!("{base}/accounts/login/"))
        .form(&[
            ("csrfmiddlewaretoken", csrf.as_str()),
            ("username", "maya"),
            ("password", "s3cret"),
        ])
        .send()
        .await
        .unwrap();
    let cookies = set_cookies(&r);
    assert_logged_in(&c, &base, r, "maya").await;

    // The new session works on the private API.
    let get = |n: &str| {
        cookies
            .iter()
            .find_map(|c| c.strip_prefix(&format!("{n}=")))
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned()
    };
    let header = format!(
        "sessionid={}; csrftoken={}; ds_user_id={}",
        get("sessionid"),
        get("csrftoken"),
        get("ds_user_id")
    );
    let r = reqwest::Client::new()
        .get(format!("{base}/api/v1/accounts/current_user/"))
        .header("cookie", header)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["user"]["username"], "maya");

    // Logging out deletes the session cookie.
    let r = c.get(format!("{base}/accounts/logout/")).send().await.unwrap();
    assert!(set_cookies(&r).iter().any(|c| c.starts_with("sessionid=") && c.contains("Max-Age=0")));
    sb.shutdown().await;
}

#[tokio::test]
async fn two_factor_then_challenge() {
    let sb = start().await;
    let base = sb.base_url();
    let (_, acc) = control(
        &base,
        "POST",
        "/_sandbox/accounts",
        Some(json!({"kind": "personal", "username": "guarded", "password": "pw", "two_factor": true, "challenge": true})),
    )
    .await;
    let c = client();
    let csrf = login_form(&c, &base).await;
    let r = c
        .post(format!("{base}/accounts/login/"))
        .form(&[
            ("csrfmiddlewaretoken", csrf.as_str()),
            ("username", "guarded"),
            ("password", "pw"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("name=\"verificationCode\""));
    let ident = hidden(&html, "identifier");
    let r = c
        .post(format!("{base}/accounts/login/two_factor/"))
        .form(&[("identifier", ident.as_str()), ("verificationCode", "000000x")])
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains("check the security code"));
    let code = acc["two_factor_code"].as_str().unwrap();
    let r = c
        .post(format!("{base}/accounts/login/two_factor/"))
        .form(&[("identifier", ident.as_str()), ("verificationCode", code)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let challenge = r.headers().get("location").unwrap().to_str().unwrap().to_owned();
    assert!(challenge.starts_with("/challenge/"));
    let html = c.get(format!("{base}{challenge}")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("name=\"security_code\""));
    let ident = hidden(&html, "identifier");
    let code = acc["challenge_code"].as_str().unwrap();
    let r = c
        .post(format!("{base}{challenge}"))
        .form(&[("identifier", ident.as_str()), ("security_code", code)])
        .send()
        .await
        .unwrap();
    assert_logged_in(&c, &base, r, "guarded").await;
    sb.shutdown().await;
}
