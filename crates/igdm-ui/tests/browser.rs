//! The inbox in a real headless Chromium (chromiumoxide, Debian's
//! chromium): open the link with the token, open a thread, reply through
//! the form, and watch a customer's message arrive without a reload.
//! Screenshots of both screens go to `target/ui-screenshots/`, or to
//! `docs/ui/` with `IGDM_UI_SCREENSHOTS=docs` (to refresh the README's
//! pictures; a test run leaves the repository as it was). A missing Chromium fails
//! the test under CI and is listed as skipped elsewhere (`igdm_test::prereq`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;
use std::time::Duration;

use chromiumoxide::page::ScreenshotParams;
use chromiumoxide::{Browser, BrowserConfig, Page};
use common::{TOKEN, env, wait_for};
use futures::StreamExt as _;
use igdm_test::sandbox::post_ok;
use serde_json::json;

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `target/ui-screenshots/NAME`, or `docs/ui/NAME` when asked for.
fn shot(name: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = if std::env::var("IGDM_UI_SCREENSHOTS").as_deref() == Ok("docs") {
        root.join("docs/ui")
    } else {
        root.join("target/ui-screenshots")
    };
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// What `js` evaluates to, as a string; empty while the page is between
/// documents (a navigation under way).
async fn eval_string(page: &Page, js: &str) -> String {
    match page.evaluate(js).await {
        Ok(v) => v.into_value::<String>().unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Waits until `js` evaluates to the string `"yes"` (across navigations).
async fn until(page: &Page, js: &str, what: &str) {
    let check = format!("({js}) ? 'yes' : 'no'");
    let found = wait_for(Duration::from_secs(15), || {
        let check = check.clone();
        async move { (eval_string(page, &check).await == "yes").then_some(()) }
    })
    .await;
    assert!(found.is_some(), "never {what}");
}

/// Clicks `selector` and waits until a new document finished loading.
async fn click_and_load(page: &Page, selector: &str) {
    assert_eq!(eval_string(page, "window.igdmOld = 'old'").await, "old");
    page.find_element(selector).await.unwrap().click().await.unwrap();
    until(
        page,
        "window.igdmOld === undefined && document.readyState === 'complete'",
        &format!("loaded a new page after clicking {selector}"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_reply_and_see_a_customer_message_arrive_in_chromium() {
    let test = "read_reply_and_see_a_customer_message_arrive_in_chromium";
    let Some(exe) = igdm_test::prereq::chromium(test) else { return };
    let env = env().await;
    let profile = tempfile::tempdir().unwrap();
    let mut builder = BrowserConfig::builder()
        .chrome_executable(&exe)
        .user_data_dir(profile.path())
        .window_size(1100, 800)
        .launch_timeout(Duration::from_secs(30))
        .request_timeout(Duration::from_secs(30))
        .args(["--disable-gpu", "--no-first-run", "--disable-background-networking"]);
    if running_as_root() {
        builder = builder.no_sandbox();
    }
    let (mut browser, mut handler) = Browser::launch(builder.build().unwrap()).await.unwrap();
    let drain = tokio::spawn(async move { while handler.next().await.is_some() {} });

    // The link `igdm ui` prints: the token becomes a cookie, the address loses it.
    let page = browser.new_page(env.url(&format!("/?token={TOKEN}"))).await.unwrap();
    let home = env.url("/");
    until(
        &page,
        &format!("location.href === '{home}' && document.readyState === 'complete'"),
        "landed on the inbox without the token in the address",
    )
    .await;
    page.find_element("li.conv a").await.unwrap();
    page.save_screenshot(ScreenshotParams::builder().full_page(true).build(), shot("inbox.png"))
        .await
        .unwrap();

    // The thread: the hostile message is text, no script ran.
    click_and_load(&page, "li.conv a").await;
    assert!(eval_string(&page, "location.pathname").await.starts_with("/t/web/"));
    let first = eval_string(&page, "document.querySelector('#messages .body').textContent").await;
    assert_eq!(first, common::HOSTILE);
    assert_eq!(
        eval_string(&page, "String(document.querySelectorAll('#messages script').length)").await,
        "0"
    );

    // Reply through the form.
    page.find_element("#compose textarea")
        .await
        .unwrap()
        .click()
        .await
        .unwrap()
        .type_str("on its way")
        .await
        .unwrap();
    click_and_load(&page, "#compose button").await;
    let e = &env;
    let sent = wait_for(Duration::from_secs(10), || async move {
        e.sent_texts().await.contains(&"on its way".to_owned()).then_some(())
    })
    .await;
    if sent.is_none() {
        let at = eval_string(&page, "location.href").await;
        let body = eval_string(&page, "document.body.innerText").await;
        panic!("the reply never reached the sandbox; the page at {at} says: {body}");
    }
    let shown = eval_string(&page, "document.getElementById('messages').textContent").await;
    assert!(shown.contains("on its way"), "{shown}");

    // Live: the customer writes while the thread is open; no reload.
    let marker = "window.igdmMarker = 'kept'; 'set'";
    assert_eq!(eval_string(&page, marker).await, "set");
    until(&page, "document.body.classList.contains('live')", "opened the live stream").await;
    post_ok(
        &env.base,
        &format!("/_sandbox/customers/{}/send", env.customer),
        json!({"to": env.account_id, "text": "is it shipped yet?"}),
    )
    .await;
    until(
        &page,
        "document.getElementById('messages').textContent.includes('is it shipped yet?')",
        "showed the customer's message",
    )
    .await;
    assert_eq!(eval_string(&page, "String(window.igdmMarker)").await, "kept", "the page reloaded");
    page.save_screenshot(ScreenshotParams::builder().full_page(true).build(), shot("thread.png"))
        .await
        .unwrap();

    browser.close().await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), browser.wait()).await;
    drain.abort();
}
