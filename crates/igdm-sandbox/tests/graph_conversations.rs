//! Conversations, message detail, User Profile and rate limits over HTTP.
#![allow(clippy::unwrap_used)]

mod graph_support;

use futures::future::join_all;
use graph_support::{Env, assert_graph_error};
use serde_json::{Value, json};

#[tokio::test]
async fn conversations_page_with_graph_cursors() {
    let env = Env::new().await;
    let mut customers = Vec::new();
    for i in 0..5 {
        let c = env.customer(&format!("buyer_{i}")).await;
        env.says(&c, &format!("message {i}")).await;
        customers.push(c);
    }
    let missing = env.graph("GET", "/v21.0/me/conversations", None).await;
    assert_eq!(
        assert_graph_error(&missing, 100, None),
        "(#100) The parameter platform is required"
    );

    let first = env.graph("GET", "/v21.0/me/conversations?platform=instagram&limit=2", None).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let data = first.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    // Most recent first, Graph time format.
    let t = data[0]["updated_time"].as_str().unwrap();
    assert!(t.ends_with("+0000") && t.len() == 24, "{t}");
    let cursors = &first.body["paging"]["cursors"];
    assert!(cursors["before"].is_string() && cursors["after"].is_string());
    let next = first.body["paging"]["next"].as_str().unwrap().to_owned();
    assert!(
        next.contains("after=") && next.contains("limit=2") && next.contains("access_token="),
        "{next}"
    );
    assert!(first.body["paging"].get("previous").is_none());

    // Follow `next` as a client would (the token is in the URL).
    let mut seen: Vec<String> = data.iter().map(|d| d["id"].as_str().unwrap().to_owned()).collect();
    let mut url = Some(next);
    while let Some(u) = url {
        let r = Env::resp(env.client.get(&u).send().await.unwrap()).await;
        assert_eq!(r.status, 200, "{}", r.body);
        seen.extend(
            r.body["data"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap().to_owned()),
        );
        url = r.body["paging"]["next"].as_str().map(str::to_owned);
    }
    assert_eq!(seen.len(), 5);
    let mut dedup = seen.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), 5, "pages overlap: {seen:?}");

    // `before` walks back.
    let after = first.body["paging"]["cursors"]["after"].as_str().unwrap();
    let second = env
        .graph("GET", &format!("/me/conversations?platform=instagram&limit=2&after={after}"), None)
        .await;
    let before = second.body["paging"]["cursors"]["before"].as_str().unwrap();
    let back = env
        .graph(
            "GET",
            &format!("/me/conversations?platform=instagram&limit=2&before={before}"),
            None,
        )
        .await;
    assert_eq!(back.body["data"], first.body["data"]);

    // `user_id` finds one thread.
    let igsid = customers[3]["igsid"].as_str().unwrap();
    let one = env
        .graph(
            "GET",
            &format!("/{}/conversations?platform=instagram&user_id={igsid}", env.id()),
            None,
        )
        .await;
    assert_eq!(one.body["data"].as_array().unwrap().len(), 1, "{}", one.body);
    let conv_id = one.body["data"][0]["id"].as_str().unwrap();
    let conv = env
        .graph("GET", &format!("/{conv_id}?fields=participants,updated_time,messages"), None)
        .await;
    assert_eq!(conv.status, 200, "{}", conv.body);
    let participants = conv.body["participants"]["data"].as_array().unwrap();
    assert!(participants.iter().any(|p| p["id"] == igsid && p["username"] == "buyer_3"));
    assert!(participants.iter().any(|p| p["id"] == env.id().as_str()));
    assert!(conv.body["messages"]["data"][0]["id"].as_str().unwrap().starts_with("aWdf"));
}

#[tokio::test]
async fn only_the_20_most_recent_messages_are_readable() {
    let env = Env::new().await;
    let c = env.customer("chatty").await;
    let mut mids = Vec::new();
    for i in 0..25 {
        let r = env.says(&c, &format!("line {i}")).await;
        mids.push(r["mid"].as_str().unwrap().to_owned());
    }
    let conv_id = env.says(&c, "last").await["conversation_id"].as_str().unwrap().to_owned();
    mids.push(String::new()); // "last" is the 26th; only indices 6..=25 are readable.

    let listed = env.graph("GET", &format!("/{conv_id}?fields=messages"), None).await;
    let data = listed.body["messages"]["data"].as_array().unwrap();
    assert_eq!(data.len(), 20, "{}", listed.body);
    assert!(data[0]["created_time"].as_str().unwrap().ends_with("+0000"));

    let readable = env
        .graph("GET", &format!("/{}?fields=id,created_time,from,to,message", mids[6]), None)
        .await;
    assert_eq!(readable.status, 200, "{}", readable.body);
    assert_eq!(readable.body["message"], "line 6");
    assert_eq!(readable.body["from"]["username"], "chatty");
    assert_eq!(readable.body["to"]["data"][0]["id"], env.id().as_str());

    let old = env.graph("GET", &format!("/{}?fields=message", mids[5]), None).await;
    let msg = assert_graph_error(&old, 100, None);
    assert!(msg.contains("deleted") && msg.contains("20 most recent"), "{msg}");

    // An unsent message is gone too.
    env.act(&c, json!({"unsend": {"mid": mids[24]}})).await;
    let gone = env.graph("GET", &format!("/{}?fields=message", mids[24]), None).await;
    assert_graph_error(&gone, 100, None);

    let bad_field = env.graph("GET", &format!("/{}?fields=nope", mids[20]), None).await;
    assert!(assert_graph_error(&bad_field, 100, None).contains("nonexisting field (nope)"));
}

#[tokio::test]
async fn user_profile_needs_consent() {
    let env = Env::new().await;
    let c = env.customer("profile_pat").await;
    let igsid = c["igsid"].as_str().unwrap();
    let fields = "name,username,profile_pic,follower_count,is_user_follow_business,is_business_follow_user,is_verified_user";
    let before = env.graph("GET", &format!("/{igsid}?fields={fields}"), None).await;
    assert_eq!(
        assert_graph_error(&before, 230, None),
        "(#230) User consent is required to access user profile"
    );
    env.says(&c, "hi").await;
    let after = env.graph("GET", &format!("/v21.0/{igsid}?fields={fields}"), None).await;
    assert_eq!(after.status, 200, "{}", after.body);
    assert_eq!(after.body["username"], "profile_pat");
    assert_eq!(after.body["id"], igsid);
    assert!(after.body["follower_count"].is_u64());
    for f in ["is_user_follow_business", "is_business_follow_user", "is_verified_user"] {
        assert!(after.body[f].is_boolean(), "{f}: {}", after.body);
    }
}

#[tokio::test]
async fn conversations_api_is_limited_to_2_calls_per_second() {
    let env = Env::with_default_limits().await;
    let c = env.customer("rate_rita").await;
    env.says(&c, "hi").await;
    // A concurrent burst, so the result does not depend on how fast the machine is.
    let burst =
        join_all((0..6).map(|_| env.graph("GET", "/me/conversations?platform=instagram", None)))
            .await;
    let ok = burst.iter().filter(|r| r.status == 200).count();
    assert!((2..6).contains(&ok), "the bucket holds 2 calls: {ok} succeeded");
    let throttled = burst.into_iter().find(|r| r.status != 200);
    let t = throttled.expect("a burst of 6 must be throttled");
    assert_eq!(assert_graph_error(&t, 17, None), "(#17) User request limit reached");
    assert_eq!(t.body["error"]["is_transient"], true);
    let app: Value = serde_json::from_str(t.headers["x-app-usage"].to_str().unwrap()).unwrap();
    assert_eq!(app["call_count"], 100);
    let buc: Value =
        serde_json::from_str(t.headers["x-business-use-case-usage"].to_str().unwrap()).unwrap();
    let entry = &buc[env.id()][0];
    assert_eq!(entry["type"], "instagram");
    assert_eq!(entry["call_count"], 100);
    assert!(entry["estimated_time_to_regain_access"].is_number());

    let (_, stats) = env.control("GET", "/_sandbox/stats", Value::Null).await;
    let refused = find_refused(&stats, &env.id(), "graph_conversations");
    assert!(refused >= 1, "{stats}");

    // Page tokens get the Page throttling code.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let page_path = format!("/{}/conversations?platform=instagram", env.page_id());
    let page_token = env.page_token();
    let burst = join_all((0..6).map(|_| env.graph_as(&page_token, "GET", &page_path, None))).await;
    let page_err = burst.into_iter().find(|r| r.status != 200);
    assert_graph_error(&page_err.expect("throttled"), 32, None);
}

#[tokio::test]
async fn audio_and_video_sends_are_limited_to_10_per_second() {
    let env = Env::with_default_limits().await;
    let c = env.customer("voice_val").await;
    env.says(&c, "send me the demo").await;
    let audio = json!({"attachment": {"type": "audio", "payload": {"url": "https://cdn.example.com/a.m4a"}}});
    let burst = join_all((0..20).map(|_| env.send_message(&c, audio.clone()))).await;
    let mut refused = 0;
    for r in burst.iter().filter(|r| r.status != 200) {
        assert_eq!(
            assert_graph_error(r, 613, None),
            "(#613) Calls to this api have exceeded the rate limit."
        );
        assert!(r.headers.contains_key("x-business-use-case-usage"));
        refused += 1;
    }
    assert!(refused >= 1, "20 audio sends in a burst must exceed 10/s");
    // Text has its own, larger budget.
    assert_eq!(env.send_message(&c, json!({"text": "here it is"})).await.status, 200);
}

fn find_refused(stats: &Value, account: &str, class: &str) -> u64 {
    stats["accounts"][account][class]["refused"].as_u64().unwrap_or(0)
}
