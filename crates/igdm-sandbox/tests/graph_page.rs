//! Messenger profile (ice breakers, persistent menu), the Facebook-Login
//! surface (handover, reusable attachments) and private replies over HTTP.
#![allow(clippy::unwrap_used)]

mod graph_support;

use graph_support::receiver::Receiver;
use graph_support::{Env, assert_graph_error};
use serde_json::{Value, json};

fn questions(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"question": format!("Question {i}?"), "payload": format!("Q{i}")}))
        .collect()
}

#[tokio::test]
async fn ice_breakers_rules() {
    let env = Env::new().await;
    let set = env
        .graph("POST", "/v21.0/me/messenger_profile", Some(json!({"ice_breakers": questions(4)})))
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    // Instagram Login documents `{success: true}`.
    assert_eq!(set.body, json!({"success": true}));
    // Set in the flat (existing) format, read back in it: data[0].ice_breakers.
    let got = env
        .graph("GET", &format!("/{}/messenger_profile?fields=ice_breakers", env.id()), None)
        .await;
    let flat = got.body["data"][0]["ice_breakers"].as_array().unwrap();
    assert_eq!(flat.len(), 4, "{}", got.body);
    assert_eq!(flat[0], json!({"question": "Question 0?", "payload": "Q0"}));

    let five = env
        .graph("POST", "/me/messenger_profile", Some(json!({"ice_breakers": questions(5)})))
        .await;
    assert_eq!(
        assert_graph_error(&five, 100, None),
        "(#100) Param ice_breakers must be an array with at most 4 elements"
    );
    let localized_five = env
        .graph(
            "POST",
            "/me/messenger_profile",
            Some(json!({"ice_breakers": [{"locale": "default", "call_to_actions": questions(5)}]})),
        )
        .await;
    assert_graph_error(&localized_five, 100, None);
    let no_default = env
        .graph(
            "POST",
            "/me/messenger_profile",
            Some(json!({"ice_breakers": [{"locale": "pt_BR", "call_to_actions": questions(2)}]})),
        )
        .await;
    assert!(assert_graph_error(&no_default, 100, None).contains("locale \"default\""));
    let mixed = env
        .graph(
            "POST",
            "/me/messenger_profile",
            Some(json!({"ice_breakers": [{"locale": "default", "call_to_actions": questions(1)}, {"question": "Flat?", "payload": "F"}]})),
        )
        .await;
    assert!(assert_graph_error(&mixed, 100, None).contains("cannot mix"));

    // Localized with a default locale, through the Page flavour.
    let page = env
        .graph_as(
            &env.page_token(),
            "POST",
            "/me/messenger_profile?platform=instagram",
            Some(json!({"platform": "instagram", "ice_breakers": [
                {"locale": "default", "call_to_actions": questions(2)},
                {"locale": "pt_BR", "call_to_actions": questions(3)},
            ]})),
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.body, json!({"result": "success"}), "the Messenger Profile API's answer");
    // Set in the localized (new) format: one {call_to_actions, locale} block per locale.
    let got = env.graph("GET", "/me/messenger_profile?fields=ice_breakers", None).await;
    let blocks = got.body["data"].as_array().unwrap();
    assert_eq!(blocks.len(), 2, "{}", got.body);
    assert_eq!(blocks[0]["locale"], "default");
    assert_eq!(blocks[1]["locale"], "pt_BR");
    assert_eq!(blocks[1]["call_to_actions"].as_array().unwrap().len(), 3);

    let (_, control) = env
        .control(
            "GET",
            &format!("/_sandbox/graph/accounts/{}/messenger_profile", env.id()),
            Value::Null,
        )
        .await;
    assert_eq!(control["ice_breakers"][1]["locale"], "pt_BR", "{control}");

    let del = env
        .graph("DELETE", "/me/messenger_profile", Some(json!({"fields": ["ice_breakers"]})))
        .await;
    assert_eq!(del.body, json!({"success": true}));
    let got = env.graph("GET", "/me/messenger_profile?fields=ice_breakers", None).await;
    assert_eq!(got.body, json!({"data": []}));
}

#[tokio::test]
async fn persistent_menu_rules() {
    let env = Env::new().await;
    let menu = json!([{"locale": "default", "call_to_actions": [
        {"type": "postback", "title": "Talk to a human", "payload": "HUMAN"},
        {"type": "web_url", "title": "Shop", "url": "https://shop.example.com"},
    ]}]);
    let ok =
        env.graph("POST", "/me/messenger_profile", Some(json!({"persistent_menu": menu}))).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let got = env.graph("GET", "/me/messenger_profile?fields=persistent_menu", None).await;
    assert_eq!(got.body["data"][0]["persistent_menu"], menu);
    let composer = json!([{"locale": "default", "composer_input_disabled": true, "call_to_actions": [{"type": "postback", "title": "A", "payload": "A"}]}]);
    let bad = env
        .graph("POST", "/me/messenger_profile", Some(json!({"persistent_menu": composer})))
        .await;
    assert!(assert_graph_error(&bad, 100, None).contains("not supported on Instagram"));
}

#[tokio::test]
async fn handover_protocol_controls_who_may_send() {
    let env = Env::new().await;
    let rx = Receiver::start("let-me-in").await;
    let (s, v) = env
        .control("POST", "/_sandbox/webhooks", json!({"callback_url": rx.url, "verify_token": "let-me-in", "app_secret": "x", "fields": ["messaging_handover", "standby"]}))
        .await;
    assert_eq!(s, 201, "{v}");
    let c = env.customer("handover_hana").await;
    env.says(&c, "I need a human").await;
    let page = env.page_token();
    let recipient = json!({"id": c["igsid"]});

    // The Instagram-Login flavour has no handover endpoints.
    let ig = env
        .graph(
            "POST",
            "/me/pass_thread_control",
            Some(json!({"recipient": recipient, "target_app_id": "263902037430900"})),
        )
        .await;
    assert_graph_error(&ig, 2500, None);

    let receivers = env.graph_as(&page, "GET", "/me/secondary_receivers", None).await;
    assert_eq!(receivers.body["data"][0]["id"], "263902037430900", "{}", receivers.body);
    let owner = env
        .graph_as(
            &page,
            "GET",
            &format!("/me/thread_owner?recipient={}", c["igsid"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(owner.body, json!({"data": []}), "new threads start idle");

    let pass = env
        .graph_as(&page, "POST", "/v21.0/me/pass_thread_control", Some(json!({"recipient": recipient, "target_app_id": "263902037430900", "metadata": "escalated"})))
        .await;
    assert_eq!(pass.body, json!({"success": true}), "{}", pass.body);
    let owner = env
        .graph_as(
            &page,
            "GET",
            &format!("/me/thread_owner?recipient={}", c["igsid"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(owner.body["data"][0]["thread_owner"]["app_id"], "263902037430900");

    // Our app no longer controls the thread: sends are rejected.
    // While the Page Inbox owns the thread, our app gets the customer's messages as standby.
    env.says(&c, "is anyone there?").await;
    let refused = env.send_message(&c, json!({"text": "bot reply"})).await;
    assert!(assert_graph_error(&refused, 10, None).contains("controlled by another app"));

    // Another (secondary) app cannot take control while someone owns it.
    let (s, other) = env
        .control(
            "POST",
            "/_sandbox/tokens",
            json!({"account_id": env.id(), "app_id": "555000555000555", "kind": "page"}),
        )
        .await;
    assert_eq!(s, 201, "{other}");
    let other_token = other["access_token"].as_str().unwrap();
    let take = env
        .graph_as(
            other_token,
            "POST",
            "/me/take_thread_control",
            Some(json!({"recipient": recipient})),
        )
        .await;
    assert!(assert_graph_error(&take, 10, None).contains("primary receiver"));
    let request = env
        .graph_as(
            other_token,
            "POST",
            "/me/request_thread_control",
            Some(json!({"recipient": recipient, "metadata": "please"})),
        )
        .await;
    assert_eq!(request.body, json!({"success": true}));

    // The primary takes it back and can send again.
    let take = env
        .graph_as(&page, "POST", "/me/take_thread_control", Some(json!({"recipient": recipient})))
        .await;
    assert_eq!(take.body, json!({"success": true}));
    assert_eq!(env.send_message(&c, json!({"text": "back to the bot"})).await.status, 200);

    let events = rx.wait_for_messaging(3).await;
    let standby: Vec<Value> = rx
        .posts()
        .iter()
        .flat_map(|p| p.json()["entry"][0]["standby"].as_array().cloned().unwrap_or_default())
        .collect();
    assert_eq!(standby.len(), 1, "{standby:?}");
    assert_eq!(standby[0]["message"]["text"], "is anyone there?");
    assert_eq!(
        events[0]["pass_thread_control"],
        json!({"previous_owner_app_id": "936619743392459", "new_owner_app_id": "263902037430900", "metadata": "escalated"})
    );
    assert_eq!(events[1]["request_thread_control"]["requested_owner_app_id"], "555000555000555");
    assert_eq!(events[2]["take_thread_control"]["new_owner_app_id"], "936619743392459");
    assert_eq!(events[2]["sender"]["id"], c["igsid"]);
}

#[tokio::test]
async fn reusable_attachments_need_a_page_token() {
    let env = Env::new().await;
    let c = env.customer("attach_ana").await;
    env.says(&c, "send the catalogue").await;
    let body = json!({"platform": "instagram", "message": {"attachment": {"type": "image", "payload": {"url": "https://cdn.example.com/catalogue.png", "is_reusable": true}}}});
    let ig =
        env.graph("POST", &format!("/{}/message_attachments", env.id()), Some(body.clone())).await;
    assert_graph_error(&ig, 2500, None);

    let path = format!("/v21.0/{}/message_attachments", env.page_id());
    let up = env.graph_as(&env.page_token(), "POST", &path, Some(body)).await;
    assert_eq!(up.status, 200, "{}", up.body);
    let id = up.body["attachment_id"].as_str().unwrap().to_owned();

    let send = env
        .graph_as(
            &env.page_token(),
            "POST",
            &format!("/{}/messages", env.page_id()),
            Some(json!({"recipient": {"id": c["igsid"]}, "message": {"attachment": {"type": "image", "payload": {"attachment_id": id}}}})),
        )
        .await;
    assert_eq!(send.status, 200, "{}", send.body);
    let mid = send.body["message_id"].as_str().unwrap();
    let detail = env.graph("GET", &format!("/{mid}?fields=attachments"), None).await;
    assert_eq!(
        detail.body["attachments"]["data"][0]["image_data"]["url"],
        "https://cdn.example.com/catalogue.png"
    );

    let unknown = env
        .send_message(
            &c,
            json!({"attachment": {"type": "image", "payload": {"attachment_id": "999"}}}),
        )
        .await;
    assert_graph_error(&unknown, 100, None);
    let no_platform = env
        .graph_as(&env.page_token(), "POST", &path, Some(json!({"message": {"attachment": {"type": "image", "payload": {"url": "https://x.example.com/a.png"}}}})))
        .await;
    assert_eq!(
        assert_graph_error(&no_platform, 100, None),
        "(#100) The parameter platform is required"
    );
}

#[tokio::test]
async fn private_replies_once_per_comment_within_7_days() {
    let env = Env::new().await;
    let c = env.customer("commenter_cai").await;
    let comment = env.act(&c, json!({"comment": {"text": "price?"}})).await;
    let comment_id = comment["comment_id"].as_str().unwrap();
    let reply = env.send(json!({"recipient": {"comment_id": comment_id}, "message": {"text": "It is 20 EUR, see DM"}})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["recipient_id"], c["igsid"]);
    let again = env
        .send(json!({"recipient": {"comment_id": comment_id}, "message": {"text": "again"}}))
        .await;
    assert!(assert_graph_error(&again, 10, None).contains("Only one private reply"));

    // The commented media is now one of the account's posts, so it can be shared.
    let media = comment["media_id"].as_str().unwrap();
    let (_, posts) = env
        .control("GET", &format!("/_sandbox/graph/accounts/{}/posts", env.id()), Value::Null)
        .await;
    assert_eq!(posts["data"][0]["id"], media);

    let late = env.act(&c, json!({"comment": {"text": "still there?"}})).await;
    env.advance(7 * 86_400 + 60).await;
    let r = env
        .send(json!({"recipient": {"comment_id": late["comment_id"]}, "message": {"text": "sorry for the delay"}}))
        .await;
    assert_graph_error(&r, 10, Some(2_018_278));
}

#[tokio::test]
async fn private_replies_are_limited_per_hour() {
    let env = Env::new().await;
    let (s, v) = env
        .control("POST", "/_sandbox/graph/rate_limits", json!({"private_replies_per_hour": 2}))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["private_replies_per_hour"], 2.0);
    let c = env.customer("many_comments").await;
    let mut statuses = Vec::new();
    for i in 0..3 {
        let comment = env.act(&c, json!({"comment": {"text": format!("question {i}")}})).await;
        let r = env
            .send(json!({"recipient": {"comment_id": comment["comment_id"]}, "message": {"text": "see DM"}}))
            .await;
        statuses.push(r.status);
        if r.status != 200 {
            assert_eq!(
                assert_graph_error(&r, 613, None),
                "(#613) Calls to this api have exceeded the rate limit."
            );
        }
    }
    assert_eq!(statuses, [200, 200, 400]);
}
