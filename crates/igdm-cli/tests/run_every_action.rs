//! `igdm run` against the sandbox invokes every action each connector
//! declares, at least once: a table per connector names each action with
//! its input (placeholders filled from what earlier actions returned) and
//! what must come back. The table and the connector's `igdm actions` list
//! must name the same actions, so an action added to a connector cannot go
//! untested and the table cannot name one that is gone.

use std::collections::{BTreeSet, HashMap};

use assert_cmd::Command;
use serde_json::{Value, json};

struct Env {
    _sandbox: igdm_sandbox::RunningSandbox,
    base: String,
    home: tempfile::TempDir,
    seed: igdm_sandbox::DemoSeed,
}

async fn env() -> Env {
    let (running, seed) = igdm_test::sandbox::seeded().await;
    Env { base: running.base_url(), _sandbox: running, home: tempfile::tempdir().unwrap(), seed }
}

impl Env {
    fn igdm(&self, args: &[&str]) -> (i32, String, String) {
        let mut cmd = Command::cargo_bin("igdm").unwrap();
        cmd.args(args)
            .env("IGDM_HOME", self.home.path())
            .env_remove("IGDM_VAULT_PASSPHRASE")
            .env_remove("IGDM_ACCOUNT")
            .env_remove("IGDM_DATABASE_URL")
            .env_remove("IGDM_TOKEN")
            .timeout(std::time::Duration::from_secs(60));
        // The sandbox runs on this runtime: hand this worker's tasks on
        // while the child runs, or a task it needs may wait behind us.
        let out = tokio::task::block_in_place(|| cmd.output()).unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn json(&self, args: &[&str]) -> (i32, Value) {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let (code, out, err) = self.igdm(&all);
        let v = serde_json::from_str(out.trim())
            .unwrap_or_else(|e| panic!("not one JSON document ({e}): {out}\n{err}"));
        (code, v)
    }

    /// The sandbox's id of the account created with `username`.
    async fn account_id(&self, username: &str) -> String {
        let v = igdm_test::sandbox::control(&self.base, "GET", "/_sandbox/accounts", None).await.1;
        let account = v["accounts"].as_array().unwrap().iter().find(|a| a["username"] == username);
        account.and_then(|a| a["id"].as_str()).unwrap().to_owned()
    }

    /// Every request the sandbox counted for account `id`.
    async fn requests_of(&self, id: &str) -> u64 {
        let v = igdm_test::sandbox::stats(&self.base).await;
        v["accounts"][id]
            .as_object()
            .map_or(0, |per| per.values().map(|e| e["requests"].as_u64().unwrap_or(0)).sum())
    }

    async fn control(&self, path: &str, body: Value) -> Value {
        igdm_test::sandbox::post_ok(&self.base, path, body).await
    }

    /// A file in the test's home holding `bytes`; its path.
    fn file(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.home.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_owned()
    }
}

/// Values found by earlier steps, named for later inputs.
type Vars = HashMap<String, String>;

/// Checks a step's output beyond its envelope, and names values in it.
type After = Box<dyn Fn(&Value, &mut Vars)>;

/// What a step must answer.
enum Expect {
    /// A message send through the send ledger: `outcome` sent, a message id.
    Sent,
    /// Any other action: a list envelope or an object (an ack must say ok).
    /// Every action of the three connectors succeeds against the sandbox in
    /// the states the tables set up, so no step expects a refusal.
    Ran,
}

struct Step {
    action: &'static str,
    input: Value,
    expect: Expect,
    after: Option<After>,
    /// Whether the sandbox's `/_sandbox/stats` counts the endpoint. It
    /// counts the private API and Meta's rate-limited edges (messages,
    /// conversations), not the upload edge, user profiles, the messenger
    /// profile, attachment uploads or the handover edges: those steps prove
    /// the sandbox answered by what they return (checked in `after`) or by
    /// what a later step reads.
    counted: bool,
}

fn sent(action: &'static str, input: Value) -> Step {
    Step { action, input, expect: Expect::Sent, after: None, counted: true }
}

fn ran(action: &'static str, input: Value) -> Step {
    Step { action, input, expect: Expect::Ran, after: None, counted: true }
}

impl Step {
    fn then(mut self, f: impl Fn(&Value, &mut Vars) + 'static) -> Self {
        self.after = Some(Box::new(f));
        self
    }

    /// The sandbox does not count this endpoint's requests (see `counted`).
    fn uncounted(mut self) -> Self {
        self.counted = false;
        self
    }
}

/// `input` with each string `"$name"` replaced by the value named `name`.
fn fill(input: &Value, vars: &Vars) -> Value {
    match input {
        Value::String(s) if s.starts_with('$') => {
            let name = &s[1..];
            json!(vars.get(name).unwrap_or_else(|| panic!("no value named {name} yet: {vars:?}")))
        }
        Value::Array(a) => Value::Array(a.iter().map(|v| fill(v, vars)).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), fill(v, vars))).collect())
        }
        other => other.clone(),
    }
}

/// The names of the actions `igdm actions` lists for `account`, each with
/// an object input schema.
fn declared(env: &Env, account: &str) -> BTreeSet<String> {
    let (code, v) = env.json(&["--account", account, "actions"]);
    assert_eq!(code, 0, "{v}");
    v["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {v}"))
        .iter()
        .map(|a| {
            assert_eq!(a["input_schema"]["type"], "object", "{a}");
            a["name"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// Runs `steps` in order as `account` (sandbox id `sandbox_id`) after
/// checking they name exactly the actions its connector declares; returns
/// how many actions were covered.
async fn run_table(
    env: &Env,
    account: &str,
    sandbox_id: &str,
    steps: Vec<Step>,
    vars: &mut Vars,
) -> usize {
    let declared = declared(env, account);
    let table: BTreeSet<String> = steps.iter().map(|s| s.action.to_owned()).collect();
    let untested: Vec<&String> = declared.difference(&table).collect();
    let unknown: Vec<&String> = table.difference(&declared).collect();
    assert!(
        untested.is_empty(),
        "{account}: declared actions the table has no step for: {untested:?}"
    );
    assert!(unknown.is_empty(), "{account}: the table names actions not declared: {unknown:?}");

    for step in steps {
        let input = fill(&step.input, vars).to_string();
        let before = env.requests_of(sandbox_id).await;
        let (code, v) = env.json(&["--account", account, "run", step.action, "--input", &input]);
        let after = env.requests_of(sandbox_id).await;
        let what = format!("{account} {} {input}", step.action);
        match step.expect {
            Expect::Sent => {
                assert_eq!(code, 0, "{what}: {v}");
                assert_eq!(v["outcome"], "sent", "{what}: {v}");
                assert!(
                    v["idempotency_key"].as_str().is_some_and(|k| !k.is_empty()),
                    "{what}: {v}"
                );
                assert!(v["result"]["id"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {v}");
                assert!(after > before, "{what}: the sandbox saw no request");
            }
            Expect::Ran => {
                assert_eq!(code, 0, "{what}: {v}");
                assert!(v.is_object(), "{what}: not an object: {v}");
                if let Some(items) = v.get("items") {
                    assert!(items.is_array(), "{what}: {v}");
                    assert!(v["has_more"].is_boolean() && v["warnings"].is_array(), "{what}: {v}");
                    assert!(v.get("next_cursor").is_some(), "{what}: {v}");
                }
                if let Some(ok) = v.get("ok") {
                    assert_eq!(ok, &json!(true), "{what}: {v}");
                }
                if step.counted {
                    assert!(after > before, "{what}: the sandbox saw no request");
                }
            }
        }
        if let Some(f) = step.after {
            f(&v, vars);
        }
    }
    table.len()
}

/// The first item of a list output.
fn first(v: &Value) -> &Value {
    let items = v["items"].as_array().unwrap_or_else(|| panic!("no items: {v}"));
    assert!(!items.is_empty(), "an empty list: {v}");
    &items[0]
}

/// The id of the first message in a list output not sent by the account.
fn incoming(v: &Value) -> String {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["sender"]["is_self"] == false)
        .and_then(|m| m["id"].as_str())
        .unwrap_or_else(|| panic!("no incoming message: {v}"))
        .to_owned()
}

/// The id of the conversation with participant `user` in a list output.
fn conversation_with(v: &Value, user: &str) -> String {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["participants"].as_array().unwrap().iter().any(|p| p["id"] == user))
        .and_then(|c| c["id"].as_str())
        .unwrap_or_else(|| panic!("no conversation with {user}: {v}"))
        .to_owned()
}

fn jpeg() -> Vec<u8> {
    let picture = image::RgbImage::from_fn(320, 240, |x, y| {
        image::Rgb([(x * 5 + y) as u8, (x ^ (y * 3)) as u8, ((x * y) >> 4) as u8])
    });
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 85)
        .encode_image(&picture)
        .unwrap();
    bytes
}

/// A step of a web upload (rupload) of `file` named by `upload_id`: an
/// offset query answers 0 for a new upload; an upload's `media_id` is kept
/// as `media_id` for the send that follows (which the sandbox refuses
/// unless the account uploaded that media). The sandbox's stats do not
/// count the upload edge.
fn upload(
    action: &'static str,
    file: &str,
    upload_id: &str,
    media_id: Option<&'static str>,
) -> Step {
    let input = json!({
        "file": file,
        "upload_id": upload_id,
        "upload_key": "0123456789abcdef0123456789abcdef",
    });
    ran(action, input)
        .then(move |v, vars| match media_id {
            Some(name) => {
                let id = v["media_id"].as_str().unwrap_or_else(|| panic!("no media_id: {v}"));
                assert!(!id.is_empty(), "{v}");
                vars.insert(name.into(), id.to_owned());
            }
            None => assert_eq!(v["offset"], 0, "a new upload: {v}"),
        })
        .uncounted()
}

/// An MP4-branded ISO media file: an `ftyp` box and some payload.
fn mp4(brand: &[u8; 4]) -> Vec<u8> {
    let mut b = vec![0, 0, 0, 0x18];
    b.extend_from_slice(b"ftyp");
    b.extend_from_slice(brand);
    b.extend_from_slice(&[0, 0, 0, 0]);
    b.extend_from_slice(brand);
    b.extend_from_slice(b"isom");
    b.extend((0..20_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_invokes_every_web_action() {
    let env = env().await;
    let (code, out, err) = env.igdm(&[
        "accounts",
        "add",
        "web",
        "--sandbox",
        &env.base,
        "--connector",
        "instagram-web",
        "--min-write-interval",
        "0",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    let me = env.account_id("web").await;
    let id = |i: usize| env.seed.customers[i]["id"].as_str().unwrap().to_owned();
    // One conversation the account opened, answered; two message requests.
    let (code, v) = env.json(&["--account", "web", "send", "--user", &id(0), "hello there"]);
    assert_eq!(code, 0, "{v}");
    env.control(
        &format!("/_sandbox/customers/{}/send", id(0)),
        json!({"to": me, "text": "an answer about cakes"}),
    )
    .await;
    for i in [1, 2] {
        env.control(
            &format!("/_sandbox/customers/{}/send", id(i)),
            json!({"to": me, "text": "a request"}),
        )
        .await;
    }
    let mut vars = Vars::new();
    for (name, i) in [("c0", 0), ("c1", 1), ("c2", 2), ("c3", 3)] {
        vars.insert(name.into(), id(i));
    }
    vars.insert("photo".into(), env.file("beach.jpg", &jpeg()));
    vars.insert("video".into(), env.file("clip.mp4", &mp4(b"mp42")));
    vars.insert("voice".into(), env.file("note.m4a", &mp4(b"M4A ")));
    let c0 = id(0);
    let steps = vec![
        // Reads first: they name what the writes address.
        ran("list_conversations", json!({"limit": 10})).then(move |v, vars| {
            vars.insert("conv".into(), conversation_with(v, &c0));
        }),
        ran("list_pending", json!({})).then(|v, vars| {
            let (c1, c2) = (vars["c1"].clone(), vars["c2"].clone());
            vars.insert("req1".into(), conversation_with(v, &c1));
            vars.insert("req2".into(), conversation_with(v, &c2));
        }),
        ran("get_conversation", json!({"conversation_id": "$conv"})).then(|v, vars| {
            assert_eq!(v["id"].as_str(), Some(vars["conv"].as_str()), "{v}");
        }),
        ran("list", json!({"conversation_id": "$conv", "limit": 5})).then(|v, vars| {
            vars.insert("in_msg".into(), incoming(v));
        }),
        ran("get", json!({"conversation_id": "$conv", "message_id": "$in_msg"})).then(|v, vars| {
            assert_eq!(v["id"].as_str(), Some(vars["in_msg"].as_str()), "{v}");
            assert_eq!(v["text"], "an answer about cakes", "{v}");
        }),
        ran("search", json!({"query": "cakes"})).then(|v, vars| {
            assert_eq!(first(v)["conversation_id"].as_str(), Some(vars["conv"].as_str()), "{v}");
        }),
        ran("get_unread", json!({})).then(|v, _| {
            first(v);
        }),
        ran("get_presence", json!({"user_ids": ["$c0"]})).then(|v, vars| {
            assert_eq!(first(v)["user_id"].as_str(), Some(vars["c0"].as_str()), "{v}");
        }),
        // Sends.
        sent("send", json!({"conversation_id": "$conv", "text": "sent by run"})).then(|v, vars| {
            vars.insert("mine".into(), v["result"]["id"].as_str().unwrap().to_owned());
        }),
        sent("send_to_user", json!({"user_id": "$c3", "text": "a first message"})),
        sent(
            "send_link",
            json!({"conversation_id": "$conv", "text": "see https://example.com", "urls": ["https://example.com"]}),
        ),
        sent("send_like", json!({"conversation_id": "$conv"})),
        sent("media_share", json!({"conversation_id": "$conv", "media_id": "3141592653589793_42"})),
        // Uploads, then the sends of what they uploaded.
        upload("upload_photo", "$photo", "1733600000001", Some("photo_id")),
        upload("upload_video_offset", "$video", "1733600000002", None),
        upload("upload_video", "$video", "1733600000002", Some("video_id")),
        upload("upload_voice_offset", "$voice", "1733600000003", None),
        upload("upload_voice", "$voice", "1733600000003", Some("voice_id")),
        sent("send_photo", json!({"conversation_id": "$conv", "attachment_id": "$photo_id"})),
        sent(
            "send_video",
            json!({"conversation_id": "$conv", "attachment_id": "$video_id", "upload_id": "1733600000002"}),
        ),
        sent(
            "send_voice",
            json!({"conversation_id": "$conv", "attachment_id": "$voice_id", "upload_id": "1733600000003"}),
        ),
        // Acts on a message or the conversation.
        ran("react", json!({"conversation_id": "$conv", "message_id": "$in_msg", "emoji": "🔥"})),
        ran("unreact", json!({"conversation_id": "$conv", "message_id": "$in_msg"})),
        ran("mark_read", json!({"conversation_id": "$conv", "message_id": "$in_msg"})),
        ran("mark_unread", json!({"conversation_id": "$conv"})),
        ran("mute", json!({"conversation_id": "$conv"})),
        ran("unmute", json!({"conversation_id": "$conv"})),
        ran("send_typing", json!({"conversation_id": "$conv", "typing": true})),
        // Destructive, last, each on its own object.
        ran("approve", json!({"conversation_id": "$req1"})),
        ran("decline", json!({"conversation_id": "$req2"})),
        ran("delete", json!({"conversation_id": "$conv", "message_id": "$mine"})),
        ran("archive", json!({"conversation_id": "$conv"})),
    ];
    let covered = run_table(&env, "web", &me, steps, &mut vars).await;
    assert_eq!(covered, 32, "instagram-web declares 32 actions");

    // What the destructive steps did, as the account now reads it.
    let (code, pending) = env.json(&["--account", "web", "run", "list_pending"]);
    assert_eq!(code, 0, "{pending}");
    let left: Vec<&str> =
        pending["items"].as_array().unwrap().iter().filter_map(|c| c["id"].as_str()).collect();
    assert!(
        !left.contains(&vars["req1"].as_str()) && !left.contains(&vars["req2"].as_str()),
        "approved and declined requests left the folder: {pending}"
    );
    let conv = vars["conv"].clone();
    let (code, msgs) =
        env.json(&["--account", "web", "run", "list", "-p", &format!("conversation_id={conv}")]);
    assert_eq!(code, 0, "{msgs}");
    let items = msgs["items"].as_array().unwrap();
    assert!(
        items.iter().all(|m| m["id"] != vars["mine"].as_str() || m["is_deleted"] == true),
        "the unsent message is gone: {msgs}"
    );
    for kind in ["image", "video", "voice", "link", "like_heart", "media_share"] {
        assert!(items.iter().any(|m| m["content_type"] == kind), "no {kind} message: {msgs}");
    }
}

/// The steps both Meta flavours share, in order; `extra` (the Page
/// flavour's own actions) runs after the sends and before the destructive
/// steps.
fn meta_steps(extra: Vec<Step>) -> Vec<Step> {
    let mut steps = vec![
        ran("list_conversations", json!({"limit": 10})).then(|v, vars| {
            vars.insert("conv".into(), conversation_with(v, &vars["user"].clone()));
        }),
        ran("find_conversation", json!({"user_id": "$user"})).then(|v, vars| {
            assert_eq!(v["id"].as_str(), Some(vars["conv"].as_str()), "{v}");
        }),
        ran("get_conversation", json!({"conversation_id": "$conv"})).then(|v, vars| {
            assert_eq!(v["id"].as_str(), Some(vars["conv"].as_str()), "{v}");
            assert_eq!(v["participants"][0]["id"].as_str(), Some(vars["user"].as_str()), "{v}");
        }),
        ran("list", json!({"conversation_id": "$conv", "limit": 5})).then(|v, vars| {
            vars.insert("in_msg".into(), incoming(v));
        }),
        ran("get", json!({"conversation_id": "$conv", "message_id": "$in_msg"})).then(|v, vars| {
            assert_eq!(v["id"].as_str(), Some(vars["in_msg"].as_str()), "{v}");
            assert_eq!(v["text"], "do you deliver?", "{v}");
        }),
        ran("get_profile", json!({"user_id": "$user"}))
            .then(|v, vars| {
                assert_eq!(v["username"].as_str(), Some(vars["username"].as_str()), "{v}");
            })
            .uncounted(),
        sent(
            "send",
            json!({"user_id": "$user", "text": "sent by run", "conversation_id": "$conv"}),
        ),
        sent("send_to_user", json!({"user_id": "$user", "text": "to the user by id"})),
        sent(
            "send_quick_replies",
            json!({"user_id": "$user", "text": "pick one", "quick_replies": [
                {"content_type": "text", "title": "Yes", "payload": "YES"},
                {"content_type": "text", "title": "No", "payload": "NO"}]}),
        ),
        sent("send_image", json!({"user_id": "$user", "url": "https://example.com/cake.jpg"})),
        sent("send_audio", json!({"user_id": "$user", "url": "https://example.com/hello.m4a"})),
        sent("send_video", json!({"user_id": "$user", "url": "https://example.com/oven.mp4"})),
        sent("send_file", json!({"user_id": "$user", "url": "https://example.com/menu.pdf"})),
        sent("reply_to_comment", json!({"comment_id": "$comment", "text": "Shipping is free!"})),
        sent("send_like", json!({"user_id": "$user"})),
        sent("media_share", json!({"user_id": "$user", "media_id": "$post"})),
        sent(
            "send_generic_template",
            json!({"user_id": "$user", "elements": [{
                "title": "Lemon-raspberry cake",
                "subtitle": "Serves 15",
                "image_url": "https://example.com/cake.jpg",
                "buttons": [{"type": "web_url", "title": "Order", "url": "https://example.com/order"}]}]}),
        ),
        sent(
            "send_button_template",
            json!({"user_id": "$user", "text": "What next?", "buttons": [
                {"type": "postback", "title": "Talk to us", "payload": "HUMAN"},
                {"type": "web_url", "title": "Menu", "url": "https://example.com/menu"}]}),
        ),
        ran("react", json!({"user_id": "$user", "message_id": "$in_msg"})),
        ran("unreact", json!({"user_id": "$user", "message_id": "$in_msg"})),
        ran("send_typing", json!({"user_id": "$user", "typing": true})),
        ran("mark_read", json!({"user_id": "$user"})),
        ran(
            "set_ice_breakers",
            json!({"ice_breakers": [{"question": "Do you deliver?", "payload": "DELIVERY"}]}),
        )
        .uncounted(),
        ran("get_ice_breakers", json!({}))
            .then(|v, _| {
                assert_eq!(first(v)["call_to_actions"][0]["payload"], "DELIVERY", "{v}");
            })
            .uncounted(),
        ran(
            "set_persistent_menu",
            json!({"items": [{"type": "postback", "title": "Opening hours", "payload": "HOURS"}]}),
        )
        .uncounted(),
        ran("get_persistent_menu", json!({}))
            .then(|v, _| {
                assert_eq!(first(v)["call_to_actions"][0]["payload"], "HOURS", "{v}");
            })
            .uncounted(),
    ];
    steps.extend(extra);
    // Proved by `meta_profile_cleared` after the table.
    steps.extend([
        ran("delete_ice_breakers", json!({})).uncounted(),
        ran("delete_persistent_menu", json!({})).uncounted(),
    ]);
    steps
}

/// After the table: the deletes took effect (the messenger profile has
/// neither ice breakers nor a persistent menu).
fn meta_profile_cleared(env: &Env, account: &str) {
    let (code, v) = env.json(&["--account", account, "run", "get_ice_breakers"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["items"], json!([]), "ice breakers deleted: {v}");
    let (code, v) = env.json(&["--account", account, "run", "get_persistent_menu"]);
    assert_eq!(code, 0, "{v}");
    assert!(v.is_null() || v["items"] == json!([]), "persistent menu deleted: {v}");
}

/// Adds `name` on `connector` with the seeded business's token, seeds a
/// customer message, a comment and a post; the values the steps need.
async fn meta_account(env: &Env, name: &str, connector: &str, token_field: &str) -> Vars {
    let business = &env.seed.business;
    let (code, added) = env.json(&[
        "accounts",
        "add",
        name,
        "--connector",
        connector,
        "--base-url",
        &env.base,
        "--token",
        business[token_field].as_str().unwrap(),
        "--min-write-interval",
        "0",
    ]);
    assert_eq!(code, 0, "{added}");
    let customer = &env.seed.customers[1];
    let path = format!("/_sandbox/customers/{}/send", customer["id"].as_str().unwrap());
    env.control(&path, json!({"to": business["id"], "text": "do you deliver?"})).await;
    let c = env
        .control(&path, json!({"to": business["id"], "comment": {"text": "how much is shipping?"}}))
        .await;
    let post = env
        .control(
            &format!("/_sandbox/graph/accounts/{}/posts", business["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    let mut vars = Vars::new();
    vars.insert("user".into(), customer["igsid"].as_str().unwrap().to_owned());
    vars.insert("username".into(), customer["username"].as_str().unwrap().to_owned());
    vars.insert("comment".into(), c["comment_id"].as_str().unwrap().to_owned());
    vars.insert("post".into(), post["id"].as_str().unwrap().to_owned());
    vars
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_invokes_every_instagram_login_action() {
    let env = env().await;
    let mut vars = meta_account(&env, "shop", "instagram-graph", "access_token").await;
    let business = env.seed.business["id"].as_str().unwrap().to_owned();
    let covered = run_table(&env, "shop", &business, meta_steps(Vec::new()), &mut vars).await;
    assert_eq!(covered, 28, "instagram-graph declares 28 actions");
    meta_profile_cleared(&env, "shop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_invokes_every_page_action() {
    let env = env().await;
    let mut vars = meta_account(&env, "page", "instagram-page", "page_token").await;
    let mut pdf = b"%PDF-1.7\n".to_vec();
    pdf.extend((0..4_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    pdf.extend_from_slice(b"\n%%EOF\n");
    vars.insert("pdf".into(), env.file("menu.pdf", &pdf));
    let business = env.seed.business["id"].as_str().unwrap().to_owned();
    let extra = vec![
        ran("upload_attachment", json!({"type": "image", "url": "https://example.com/cake.jpg"}))
            .then(|v, vars| {
                let id = v["attachment_id"].as_str().unwrap_or_else(|| panic!("{v}"));
                vars.insert("attachment".into(), id.to_owned());
            })
        .uncounted(),
        ran(
            "upload_attachment_file",
            json!({"type": "file", "file": "$pdf", "mime": "application/pdf", "filename": "menu.pdf"}),
        )
        .then(|v, vars| {
            let id = v["attachment_id"].as_str().unwrap_or_else(|| panic!("{v}"));
            vars.insert("file_attachment".into(), id.to_owned());
        })
        .uncounted(),
        sent(
            "send_attachment",
            json!({"user_id": "$user", "type": "file", "attachment_id": "$file_attachment"}),
        ),
        ran("list_secondary_receivers", json!({})).then(|v, _| {
            assert_eq!(first(v)["id"], PAGE_INBOX_APP, "{v}");
        })
        .uncounted(),
        // The Handover Protocol: to the Page inbox, asked back, taken back.
        ran("pass_thread_control", json!({"user_id": "$user", "target_app_id": PAGE_INBOX_APP}))
        .uncounted(),
        ran("get_thread_owner", json!({"user_id": "$user"})).then(|v, _| {
            assert_eq!(v["app_id"], PAGE_INBOX_APP, "{v}");
        })
        .uncounted(),
        ran("request_thread_control", json!({"user_id": "$user"}))
        .uncounted(),
        ran("take_thread_control", json!({"user_id": "$user"}))
        .uncounted(),
    ];
    let covered = run_table(&env, "page", &business, meta_steps(extra), &mut vars).await;
    assert_eq!(covered, 36, "instagram-page declares 36 actions");
    meta_profile_cleared(&env, "page");
    // take_thread_control gave the thread back to this app.
    let user = format!("user_id={}", vars["user"]);
    let (code, owner) = env.json(&["--account", "page", "run", "get_thread_owner", "-p", &user]);
    assert_eq!(code, 0, "{owner}");
    assert!(owner["app_id"].is_string() && owner["app_id"] != PAGE_INBOX_APP, "{owner}");
    // The image attachment uploaded by URL is reusable too.
    let input =
        json!({"user_id": vars["user"], "type": "image", "attachment_id": vars["attachment"]});
    let (code, v) =
        env.json(&["--account", "page", "run", "send_attachment", "--input", &input.to_string()]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["result"]["content_type"], "image", "{v}");
}

/// Meta's Page inbox app, which the sandbox knows as a secondary receiver.
const PAGE_INBOX_APP: &str = "263902037430900";
