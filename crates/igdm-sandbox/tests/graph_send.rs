//! Send API over HTTP: limits, error bodies, messaging windows on the
//! virtual clock, recipients, reactions, sent records.
#![allow(clippy::unwrap_used)]

mod graph_support;

use graph_support::{Env, assert_graph_error};
use serde_json::{Value, json};

async fn env_with_customer() -> (Env, Value) {
    let env = Env::new().await;
    let c = env.customer("carla").await;
    env.says(&c, "hello, do you ship to Lisbon?").await;
    (env, c)
}

#[tokio::test]
async fn text_limit_is_1000_bytes() {
    let (env, c) = env_with_customer().await;
    // 500 two-byte characters = 1000 bytes: accepted.
    let ok = env.send_message(&c, json!({"text": "é".repeat(500)})).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["recipient_id"], c["igsid"]);
    assert!(ok.body["message_id"].as_str().unwrap().starts_with("aWdf"));

    let bad = env.send_message(&c, json!({"text": format!("{}a", "é".repeat(500))})).await;
    let msg = assert_graph_error(&bad, 100, None);
    assert_eq!(msg, "(#100) Length of param message[text] must be less than or equal to 1000");
    assert_eq!(bad.body["error"]["type"], "OAuthException");

    let empty = env.send_message(&c, json!({})).await;
    assert_eq!(
        assert_graph_error(&empty, 100, None),
        "(#100) Message cannot be empty, must provide valid attachment or text"
    );
}

fn quick_replies(n: usize, title_len: usize) -> Value {
    let list: Vec<Value> = (0..n)
        .map(|i| json!({"content_type": "text", "title": "t".repeat(title_len), "payload": format!("P{i}")}))
        .collect();
    json!({"text": "Pick one", "quick_replies": list})
}

#[tokio::test]
async fn quick_reply_count_and_title_limits() {
    let (env, c) = env_with_customer().await;
    assert_eq!(env.send_message(&c, quick_replies(13, 20)).await.status, 200);
    let too_many = env.send_message(&c, quick_replies(14, 5)).await;
    assert_eq!(
        assert_graph_error(&too_many, 100, None),
        "(#100) Param message[quick_replies] must be an array with at most 13 elements"
    );
    let long_title = env.send_message(&c, quick_replies(2, 21)).await;
    assert_eq!(
        assert_graph_error(&long_title, 100, None),
        "(#100) Length of param message[quick_replies][0][title] must be less than or equal to 20"
    );
    // Titles count characters, not bytes.
    let unicode = json!({"text": "x", "quick_replies": [{"content_type": "text", "title": "ü".repeat(20), "payload": "p"}]});
    assert_eq!(env.send_message(&c, unicode).await.status, 200);
}

fn generic(elements: usize, title_len: usize, subtitle_len: usize, buttons: usize) -> Value {
    let button = json!({"type": "postback", "title": "Buy", "payload": "BUY"});
    let els: Vec<Value> = (0..elements)
        .map(|_| {
            json!({
                "title": "T".repeat(title_len),
                "subtitle": "S".repeat(subtitle_len),
                "image_url": "https://cdn.example.com/p.jpg",
                "default_action": {"type": "web_url", "url": "https://shop.example.com/p"},
                "buttons": vec![button.clone(); buttons],
            })
        })
        .collect();
    json!({"attachment": {"type": "template", "payload": {"template_type": "generic", "elements": els}}})
}

#[tokio::test]
async fn generic_template_limits() {
    let (env, c) = env_with_customer().await;
    let ok = env.send_message(&c, generic(10, 80, 80, 3)).await;
    assert_eq!(ok.status, 200, "{}", ok.body);

    let cases = [
        (
            generic(11, 10, 10, 1),
            "(#100) Param message[attachment][payload][elements] must be an array with at most 10 elements",
        ),
        (
            generic(1, 81, 10, 1),
            "(#100) Length of param message[attachment][payload][elements][0][title] must be less than or equal to 80",
        ),
        (
            generic(1, 10, 81, 1),
            "(#100) Length of param message[attachment][payload][elements][0][subtitle] must be less than or equal to 80",
        ),
        (
            generic(1, 10, 10, 4),
            "(#100) Param message[attachment][payload][elements][0][buttons] must be an array with at most 3 elements",
        ),
    ];
    for (body, expected) in cases {
        let r = env.send_message(&c, body).await;
        assert_eq!(assert_graph_error(&r, 100, None), expected);
    }
}

#[tokio::test]
async fn button_template_limits() {
    let (env, c) = env_with_customer().await;
    let template = |n: usize| {
        let buttons: Vec<Value> = (0..n)
            .map(|i| json!({"type": "web_url", "title": format!("Link {i}"), "url": "https://shop.example.com"}))
            .collect();
        json!({"attachment": {"type": "template", "payload": {"template_type": "button", "text": "Choose", "buttons": buttons}}})
    };
    assert_eq!(env.send_message(&c, template(3)).await.status, 200);
    let r = env.send_message(&c, template(4)).await;
    assert_eq!(
        assert_graph_error(&r, 100, None),
        "(#100) Param message[attachment][payload][buttons] must be an array with at most 3 elements"
    );
}

#[tokio::test]
async fn attachments_heart_and_media_share() {
    let (env, c) = env_with_customer().await;
    for kind in ["image", "video", "audio", "file"] {
        let r = env
            .send_message(&c, json!({"attachment": {"type": kind, "payload": {"url": format!("https://cdn.example.com/x.{kind}")}}}))
            .await;
        assert_eq!(r.status, 200, "{kind}: {}", r.body);
    }
    let heart = env.send_message(&c, json!({"attachment": {"type": "like_heart"}})).await;
    assert_eq!(heart.status, 200, "{}", heart.body);

    let bad_url = env
        .send_message(&c, json!({"attachment": {"type": "image", "payload": {"url": "not a url"}}}))
        .await;
    assert_eq!(
        assert_graph_error(&bad_url, 100, None),
        "(#100) Param message[attachment][payload][url] must be a valid URL"
    );

    // The account's own post can be shared; a foreign one cannot.
    let (s, post) = env
        .control(
            "POST",
            &format!("/_sandbox/graph/accounts/{}/posts", env.id()),
            json!({"id": "17900000000000001"}),
        )
        .await;
    assert_eq!(s, 201, "{post}");
    let own = env
        .send_message(
            &c,
            json!({"attachment": {"type": "MEDIA_SHARE", "payload": {"id": "17900000000000001"}}}),
        )
        .await;
    assert_eq!(own.status, 200, "{}", own.body);
    let foreign = env
        .send_message(
            &c,
            json!({"attachment": {"type": "MEDIA_SHARE", "payload": {"id": "17999999999999999"}}}),
        )
        .await;
    let msg = assert_graph_error(&foreign, 100, None);
    assert!(msg.contains("must be a post owned by this Instagram account"), "{msg}");
}

#[tokio::test]
async fn standard_window_is_24_hours_on_the_virtual_clock() {
    let (env, c) = env_with_customer().await;
    env.advance(23 * 3600 + 59 * 60).await;
    let inside = env.send_message(&c, json!({"text": "still here"})).await;
    assert_eq!(inside.status, 200, "{}", inside.body);

    env.advance(2 * 60).await; // 24h01 after the customer's message
    for messaging_type in ["RESPONSE", "UPDATE"] {
        let r = env
            .send(json!({"recipient": {"id": c["igsid"]}, "messaging_type": messaging_type, "message": {"text": "late"}}))
            .await;
        let msg = assert_graph_error(&r, 10, Some(2_018_278));
        assert_eq!(msg, "(#10) This message is sent outside of allowed window.");
        assert_eq!(r.body["error"]["type"], "OAuthException");
    }
    // A new customer message reopens the window.
    env.says(&c, "hello again").await;
    assert_eq!(env.send_message(&c, json!({"text": "welcome back"})).await.status, 200);
}

#[tokio::test]
async fn human_agent_tag_extends_to_7_days() {
    let (env, c) = env_with_customer().await;
    let tagged = |text: &str| json!({"recipient": {"id": c["igsid"]}, "messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT", "message": {"text": text}});
    env.advance(6 * 86_400).await;
    let untagged = env.send_message(&c, json!({"text": "bot"})).await;
    assert_graph_error(&untagged, 10, Some(2_018_278));
    let r = env.send(tagged("a human here")).await;
    assert_eq!(r.status, 200, "{}", r.body);

    env.advance(86_400 + 60).await; // 7 days and a minute
    let late = env.send(tagged("too late")).await;
    assert_graph_error(&late, 10, Some(2_018_278));

    let bad_tag = env
        .send(json!({"recipient": {"id": c["igsid"]}, "messaging_type": "MESSAGE_TAG", "tag": "ACCOUNT_UPDATE", "message": {"text": "x"}}))
        .await;
    assert_eq!(
        assert_graph_error(&bad_tag, 100, None),
        "(#100) Param tag must be one of {HUMAN_AGENT} - got \"ACCOUNT_UPDATE\"."
    );
}

#[tokio::test]
async fn postback_opens_the_window() {
    let env = Env::new().await;
    let c = env.customer("pete").await;
    env.act(&c, json!({"postback": {"title": "Track my order", "payload": "TRACK"}})).await;
    let r = env.send_message(&c, json!({"text": "Your order ships tomorrow"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn unknown_silent_and_unavailable_recipients() {
    let env = Env::new().await;
    let unknown =
        env.send(json!({"recipient": {"id": "1234567890123456"}, "message": {"text": "hi"}})).await;
    assert_eq!(assert_graph_error(&unknown, 100, Some(2_018_001)), "(#100) No matching user found");

    // A customer who never wrote to the account is not reachable either.
    let silent = env.customer("silent_sam").await;
    let r = env.send_message(&silent, json!({"text": "hi"})).await;
    assert_graph_error(&r, 100, Some(2_018_001));

    let blocked = env.customer("blocker").await;
    env.says(&blocked, "hi").await;
    let path =
        format!("/_sandbox/graph/customers/{}/availability", blocked["igsid"].as_str().unwrap());
    let (s, v) = env.control("POST", &path, json!({"available": false})).await;
    assert_eq!(s, 200, "{v}");
    let r = env.send_message(&blocked, json!({"text": "hi"})).await;
    assert_eq!(
        assert_graph_error(&r, 551, Some(1_545_041)),
        "(#551) This person isn't available right now."
    );
}

#[tokio::test]
async fn reactions_and_sender_actions() {
    let (env, c) = env_with_customer().await;
    let said = env.says(&c, "love your shop").await;
    let mid = said["mid"].as_str().unwrap();
    let react = env
        .send(json!({"recipient": {"id": c["igsid"]}, "sender_action": "react", "payload": {"message_id": mid, "reaction": "love"}}))
        .await;
    assert_eq!(react.status, 200, "{}", react.body);
    assert_eq!(react.body, json!({"recipient_id": c["igsid"]}));

    let detail = env.graph("GET", &format!("/{mid}?fields=reactions"), None).await;
    assert_eq!(detail.body["reactions"]["data"][0]["reaction"], "love", "{}", detail.body);

    let unreact = env
        .send(json!({"recipient": {"id": c["igsid"]}, "sender_action": "unreact", "payload": {"message_id": mid}}))
        .await;
    assert_eq!(unreact.body, json!({"recipient_id": c["igsid"]}));

    for action in ["typing_on", "typing_off", "mark_seen"] {
        let r = env.send(json!({"recipient": {"id": c["igsid"]}, "sender_action": action})).await;
        assert_eq!(r.body, json!({"recipient_id": c["igsid"]}), "{action}");
    }
    let bad = env
        .send(json!({"recipient": {"id": c["igsid"]}, "sender_action": "react", "payload": {"message_id": mid, "reaction": "wow"}}))
        .await;
    assert_eq!(
        assert_graph_error(&bad, 100, None),
        "(#100) Param payload[reaction] must be one of {love} - got \"wow\"."
    );
}

#[tokio::test]
async fn sends_are_recorded_and_echoed_into_the_thread() {
    let (env, c) = env_with_customer().await;
    let ok = env.send_message(&c, json!({"text": "Yes, we ship to Lisbon"})).await;
    assert_eq!(ok.status, 200);
    let bad = env.send_message(&c, json!({"text": "x".repeat(1001)})).await;
    assert_eq!(bad.status, 400);

    let (s, sent) =
        env.control("GET", &format!("/_sandbox/accounts/{}/sent", env.id()), Value::Null).await;
    assert_eq!(s, 200, "{sent}");
    let list = sent["sent"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{sent}");
    assert_eq!(list[0]["surface"], "graph");
    assert_eq!(list[0]["accepted"], true);
    assert_eq!(list[0]["text"], "Yes, we ship to Lisbon");
    assert_eq!(list[0]["recipient"], c["igsid"]);
    assert_eq!(list[1]["accepted"], false);
    assert!(list[1]["error"].as_str().unwrap().contains("1000"));

    // The message is in the conversation, sent by the account.
    let mid = ok.body["message_id"].as_str().unwrap();
    let detail = env.graph("GET", &format!("/{mid}?fields=from,to,message"), None).await;
    assert_eq!(detail.body["from"]["id"], env.id(), "{}", detail.body);
    assert_eq!(detail.body["to"]["data"][0]["id"], c["igsid"]);
    assert_eq!(detail.body["message"], "Yes, we ship to Lisbon");
}

#[tokio::test]
async fn form_bodies_query_tokens_and_version_prefixes() {
    let (env, c) = env_with_customer().await;
    let recipient = json!({"id": c["igsid"]}).to_string();
    let message = json!({"text": "form encoded"}).to_string();
    let url = format!("{}/v19.0/{}/messages?access_token={}", env.base, env.id(), env.token());
    let r = env
        .client
        .post(url)
        .form(&[
            ("recipient", recipient.as_str()),
            ("message", message.as_str()),
            ("messaging_type", "RESPONSE"),
        ])
        .send()
        .await
        .unwrap();
    let r = Env::resp(r).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["recipient_id"], c["igsid"]);

    // No prefix works too, and so does the Page flavour.
    let page = env
        .graph_as(
            &env.page_token(),
            "POST",
            &format!("/{}/messages", env.page_id()),
            Some(json!({"recipient": {"id": c["igsid"]}, "message": {"text": "from the page"}})),
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
}

#[tokio::test]
async fn tokens_are_checked_on_every_call() {
    let (env, c) = env_with_customer().await;
    let body = json!({"recipient": {"id": c["igsid"]}, "message": {"text": "hi"}});
    let none =
        env.client.post(format!("{}/me/messages", env.base)).json(&body).send().await.unwrap();
    let none = Env::resp(none).await;
    assert_graph_error(&none, 2500, None);

    let bad =
        env.graph_as("IGAAnot-a-real-token", "POST", "/me/messages", Some(body.clone())).await;
    assert_eq!(
        assert_graph_error(&bad, 190, Some(467)),
        "Invalid OAuth access token - Cannot parse access token"
    );
    assert_eq!(bad.body["error"]["type"], "OAuthException");

    // Someone else's account id is not reachable with this token.
    let other = env.graph("POST", "/17841499999999999/messages", Some(body)).await;
    assert_graph_error(&other, 100, Some(33));
}
