//! The official-API connectors and the sandbox checked against Meta's
//! documented examples (`connectors/fixtures/graph/`), an oracle neither was
//! written from.
//!
//! 1. Every connector URL has a fixture.
//! 2. Every connector maps every documented response as the fixture says
//!    (both formats where Meta documents two, and the documented errors).
//! 3. The sandbox answers the documented request with the documented shape:
//!    the same key paths with the same JSON types.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use common::Harness;
use igdm_spec::{
    Connector, ExecError, Executor, HttpRequest, HttpResponse, Session, Transport, TransportError,
};
use igdm_test::fixtures::contains;
use serde_json::{Map, Value, json};

const CONNECTORS: [&str; 2] = ["instagram-graph", "instagram-page"];
const IG_ID: &str = "17841405822304914";
const PAGE_ID: &str = "134895793791914";

/// Every fixture file, by name.
fn fixtures() -> Vec<(String, Value)> {
    igdm_test::fixtures::load("graph")
}

fn examples(f: &Value) -> &[Value] {
    f["examples"].as_array().map_or(&[], Vec::as_slice)
}

/// `(METHOD, url template)` of every request a connector file declares
/// (actions and `auth.validate`), read from the file's text.
fn connector_routes(id: &str) -> BTreeSet<(String, String)> {
    let text = igdm_connectors::by_id(id).expect("embedded connector");
    let front = text.split("\n---\n").next().unwrap_or_default();
    let mut method = String::new();
    let mut out = BTreeSet::new();
    for line in front.lines() {
        let t = line.trim_start();
        if let Some(m) = t.strip_prefix("method: ") {
            method = m.trim().to_owned();
        } else if let Some(u) = t.strip_prefix("url: ") {
            let url = u.trim().trim_matches('"').to_owned();
            // Mapping fields and parameters are also called `url`; requests start at the API.
            if !url.starts_with("{{api.base_url}}") && !url.starts_with("https://") {
                continue;
            }
            assert!(!method.is_empty(), "{id}: a url before any method: {url}");
            out.insert((method.clone(), url));
        }
    }
    out
}

#[test]
fn every_connector_url_has_a_fixture() {
    let mut covered: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    for (name, f) in fixtures() {
        let sources = f["sources"].as_array().unwrap_or_else(|| panic!("{name}: no sources"));
        assert!(!sources.is_empty(), "{name}: no sources");
        for s in sources.iter().chain(examples(&f).iter().map(|e| &e["source"])) {
            let s = s.as_str().unwrap_or_default();
            assert!(s.starts_with("https://developers.facebook.com/"), "{name}: source {s:?}");
        }
        for r in f["routes"].as_array().unwrap_or_else(|| panic!("{name}: no routes")) {
            let c = r["connector"].as_str().expect("route connector").to_owned();
            let m = r["method"].as_str().expect("route method").to_owned();
            let u = r["url"].as_str().expect("route url").to_owned();
            covered.entry(c).or_default().insert((m, u));
        }
    }
    let mut missing = Vec::new();
    for id in CONNECTORS {
        let routes = connector_routes(id);
        assert!(routes.len() > 5, "{id}: the route scan found too little: {routes:?}");
        let have = covered.get(id).cloned().unwrap_or_default();
        for (m, u) in &routes {
            if !have.contains(&(m.clone(), u.clone())) {
                missing.push(format!("{id}: {m} {u}"));
            }
        }
        for (m, u) in &have {
            assert!(
                routes.contains(&(m.clone(), u.clone())),
                "{id}: a fixture names {m} {u}, which the connector does not call"
            );
        }
    }
    assert!(
        missing.is_empty(),
        "connector URLs without a documented-example fixture:\n{}",
        missing.join("\n")
    );
}

/// A transport that answers every request with one documented response and
/// keeps the requests it was given.
struct Documented {
    status: u16,
    body: Bytes,
    seen: Mutex<Vec<HttpRequest>>,
}

impl Transport for Documented {
    fn send(
        &self,
        req: HttpRequest,
    ) -> Pin<Box<dyn Future<Output = Result<HttpResponse, TransportError>> + Send + '_>> {
        self.seen.lock().expect("lock").push(req);
        let mut headers = http::HeaderMap::new();
        headers
            .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
        let resp = HttpResponse { status: self.status, headers, body: self.body.clone() };
        Box::pin(async move { Ok(resp) })
    }
}

fn session_for(id: &str) -> Session {
    let mut s = Session::new().with_access_token("documented-example-token");
    s.set_extra("user_id", IG_ID);
    if id == "instagram-page" {
        s.set_extra("page_id", PAGE_ID);
    }
    s
}

/// Runs one `maps` entry of an example against its documented response;
/// returns what went wrong.
async fn check_mapping(example: &Value, m: &Value) -> Result<(), String> {
    let id = m["connector"].as_str().ok_or("maps entry without connector")?;
    let action = m["action"].as_str().ok_or("maps entry without action")?;
    let status = u16::try_from(example["response"]["status"].as_u64().unwrap_or(200))
        .map_err(|e| e.to_string())?;
    let body = serde_json::to_vec(&example["response"]["body"]).map_err(|e| e.to_string())?;
    let transport =
        Arc::new(Documented { status, body: Bytes::from(body), seen: Mutex::new(Vec::new()) });
    let text = igdm_connectors::by_id(id).ok_or("unknown connector")?;
    let connector = Connector::load(text, &format!("{id}.md")).map_err(|e| e.to_string())?;
    let exec = Executor::new(Arc::new(connector), Arc::clone(&transport) as Arc<dyn Transport>);
    let mut session = session_for(id);
    let params: Map<String, Value> = m["params"].as_object().cloned().unwrap_or_default();
    let result = if action == "validate" {
        exec.validate(&mut session).await
    } else {
        exec.execute(action, &params, &mut session).await
    };
    let seen = transport.seen.lock().map_err(|e| e.to_string())?.clone();
    let Some(req) = seen.first() else {
        return Err(match &result {
            Err(e) => format!("no request was sent: {e}"),
            Ok(_) => "no request was sent".to_owned(),
        });
    };
    let doc_method = example["request"]["method"].as_str().unwrap_or("GET");
    if req.method.as_str() != doc_method {
        return Err(format!("sent {} where the documentation uses {doc_method}", req.method));
    }
    if let Some(query) = example["request"]["query"].as_object() {
        let sent: BTreeSet<String> = req.url.query_pairs().map(|(k, _)| k.into_owned()).collect();
        for k in query.keys() {
            if !sent.contains(k) {
                return Err(format!(
                    "the request lacks the documented query parameter `{k}`: {}",
                    req.url
                ));
            }
        }
    }
    if let Some(expected) = m.get("request_body") {
        let sent: Value = serde_json::from_slice(&req.body)
            .map_err(|e| format!("the request body is not JSON: {e}"))?;
        if !contains(&sent, expected) {
            return Err(format!("request body {sent} lacks {expected}"));
        }
    }
    if let Some(expected) = m.get("request_multipart") {
        check_multipart(req, expected)?;
    }
    match (result, m.get("expect_error")) {
        (Err(ExecError::Api(e)), Some(want)) => {
            let class = serde_json::to_value(&e.class).map_err(|e| e.to_string())?;
            if &class != want {
                return Err(format!("classified {class}, the documented error is {want}: {e}"));
            }
            Ok(())
        }
        (Err(e), _) => Err(format!("failed: {e}")),
        (Ok(out), Some(want)) => {
            Err(format!("mapped {} where an error {want} was expected", out.data))
        }
        (Ok(out), None) => {
            if let Some(expect) = m.get("expect")
                && !contains(&out.data, expect)
            {
                return Err(format!("mapped\n  {}\nexpected (subset)\n  {expect}", out.data));
            }
            if let Some(page) = m.get("expect_page") {
                let got = out
                    .page
                    .as_ref()
                    .map(|p| json!({"has_more": p.has_more, "next_cursor": p.next_cursor}));
                if !got.as_ref().is_some_and(|g| contains(g, page)) {
                    return Err(format!("page {got:?}, expected {page}"));
                }
            }
            if let Some(w) = m["expect_warning"].as_str()
                && !out.warnings.iter().any(|x| x.contains(w))
            {
                return Err(format!("no warning containing {w:?}: {:?}", out.warnings));
            }
            if !out.warnings.is_empty() && m.get("expect_warning").is_none() {
                return Err(format!("unexpected mapping warnings: {:?}", out.warnings));
            }
            Ok(())
        }
    }
}

/// One multipart part: filename, content type, bytes.
type Part = (Option<String>, Option<String>, Vec<u8>);

/// The parts of a `multipart/form-data` request by name.
fn multipart_parts(req: &HttpRequest) -> Result<BTreeMap<String, Part>, String> {
    let ctype = req
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or("no content type")?;
    let boundary = ctype
        .strip_prefix("multipart/form-data; boundary=")
        .ok_or_else(|| format!("content type {ctype} is not multipart/form-data"))?;
    let delim = format!("--{boundary}");
    let body = &req.body[..];
    let mut parts = BTreeMap::new();
    let find = |hay: &[u8], needle: &[u8], from: usize| {
        hay.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| p + from)
    };
    let mut at = find(body, delim.as_bytes(), 0).ok_or("no first boundary")? + delim.len();
    while body.get(at..at + 2) == Some(b"\r\n") {
        let head_end = find(body, b"\r\n\r\n", at).ok_or("a part without headers")?;
        let head = String::from_utf8_lossy(&body[at + 2..head_end]).into_owned();
        let next = find(body, format!("\r\n{delim}").as_bytes(), head_end)
            .ok_or("a part without a closing boundary")?;
        let data = body[head_end + 4..next].to_vec();
        let attr = |key: &str| {
            head.split(';')
                .map(str::trim)
                .find_map(|a| a.strip_prefix(&format!("{key}=\"")))
                .and_then(|a| a.split('"').next())
                .map(str::to_owned)
        };
        let part_type = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Type: ").map(|t| t.trim().to_owned()));
        let name = attr("name").ok_or("a part without a name")?;
        parts.insert(name, (attr("filename"), part_type, data));
        at = next + 2 + delim.len();
    }
    if body.get(at..at + 2) != Some(b"--") {
        return Err("the body does not end with the closing boundary".to_owned());
    }
    Ok(parts)
}

/// Checks a multipart request against `expected`: text fields (JSON where
/// the value is structured) and file parts (`filename`, `type`, and the
/// bytes of the local `file`).
fn check_multipart(req: &HttpRequest, expected: &Value) -> Result<(), String> {
    let parts = multipart_parts(req)?;
    for (name, want) in expected.as_object().ok_or("request_multipart is not an object")? {
        let (filename, ptype, data) =
            parts.get(name).ok_or_else(|| format!("no multipart field `{name}`"))?;
        if let Some(file) = want.get("file").and_then(Value::as_str) {
            let bytes = std::fs::read(file).map_err(|e| format!("{file}: {e}"))?;
            if data != &bytes {
                return Err(format!("part `{name}` does not carry the bytes of {file}"));
            }
            if filename.as_deref() != want["filename"].as_str()
                || ptype.as_deref() != want["type"].as_str()
            {
                return Err(format!(
                    "part `{name}`: filename {filename:?}, type {ptype:?}; expected {want}"
                ));
            }
            continue;
        }
        let text = String::from_utf8_lossy(data).into_owned();
        let got =
            serde_json::from_str::<Value>(&text).ok().filter(|v| v.is_object() || v.is_array());
        let got = got.unwrap_or(Value::String(text));
        if !contains(&got, want) {
            return Err(format!("multipart field `{name}` is {got}, expected {want}"));
        }
    }
    Ok(())
}

#[tokio::test]
async fn connectors_map_every_documented_response() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for (name, f) in fixtures() {
        for ex in examples(&f) {
            for m in ex["maps"].as_array().map_or(&[][..], Vec::as_slice) {
                checked += 1;
                if let Err(e) = check_mapping(ex, m).await {
                    failures.push(format!(
                        "{name} / {} / {} {}: {e}",
                        ex["name"].as_str().unwrap_or_default(),
                        m["connector"].as_str().unwrap_or_default(),
                        m["action"].as_str().unwrap_or_default()
                    ));
                }
            }
        }
    }
    assert!(checked > 40, "only {checked} mappings checked");
    assert!(
        failures.is_empty(),
        "{} of {checked} documented responses mapped wrongly:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

// ---------------------------------------------------------------------------
// The sandbox against the documented shapes
// ---------------------------------------------------------------------------

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Key paths (`data[].from.id`) and their JSON types; array elements share
/// one path.
fn shape(v: &Value, prefix: &str, out: &mut BTreeMap<String, &'static str>) {
    if !prefix.is_empty() {
        out.insert(prefix.to_owned(), json_type(v));
    }
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                shape(x, &p, out);
            }
        }
        Value::Array(a) => {
            for x in a {
                shape(x, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

fn listed(list: &[String], path: &str) -> bool {
    list.iter().any(|p| {
        path == p
            || path
                .strip_prefix(p.as_str())
                .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
    })
}

/// Differences between the documented shape and the sandbox's.
fn shape_differences(
    documented: &Value,
    sandbox: &Value,
    optional: &[String],
    extra: &[String],
) -> Vec<String> {
    let (mut doc, mut sb) = (BTreeMap::new(), BTreeMap::new());
    shape(documented, "", &mut doc);
    shape(sandbox, "", &mut sb);
    let mut out = Vec::new();
    for (p, t) in &doc {
        match sb.get(p) {
            None if listed(optional, p) => {}
            None => out.push(format!("missing `{p}` ({t})")),
            Some(st) if st != t => out.push(format!("`{p}` is {st}, documented as {t}")),
            Some(_) => {}
        }
    }
    for (p, t) in &sb {
        if !doc.contains_key(p) && !listed(extra, p) {
            out.push(format!("undocumented `{p}` ({t})"));
        }
    }
    out
}

/// The sandbox's values for the documentation's placeholders.
struct Ids {
    vars: BTreeMap<&'static str, String>,
}

impl Ids {
    fn fill(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => {
                let mut s = s.clone();
                for (k, val) in &self.vars {
                    s = s.replace(k, val);
                }
                Value::String(s)
            }
            Value::Array(a) => Value::Array(a.iter().map(|x| self.fill(x)).collect()),
            Value::Object(m) => {
                Value::Object(m.iter().map(|(k, x)| (k.clone(), self.fill(x))).collect())
            }
            other => other.clone(),
        }
    }
}

async fn graph_call(
    h: &Harness,
    token: &str,
    method: &str,
    path: &str,
    query: &Map<String, Value>,
    body: Option<&Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req =
        h.http.request(method, format!("{}/v21.0{path}", h.base_url())).bearer_auth(token);
    let pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
        .collect();
    req = req.query(&pairs);
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().await.expect("sandbox reachable");
    let status = resp.status().as_u16();
    let v = resp.json().await.unwrap_or(Value::Null);
    (status, v)
}

/// The placeholder values of the demo seed: the business, its Page, Alex,
/// the conversation with Alex and Alex's latest message, Jordan's story
/// mention, a post of the business and Alex's comment on it.
async fn seed_ids(h: &Harness) -> Ids {
    let b = &h.seed.business;
    let token = b["access_token"].as_str().expect("token");
    let alex = h.customer("alex_rivera")["igsid"].as_str().expect("igsid").to_owned();
    let jordan = h.customer("jordan.lee")["igsid"].as_str().map(str::to_owned);
    let conv_of = |igsid: String| async move {
        let q = json!({"platform": "instagram", "user_id": igsid});
        let (_, v) =
            graph_call(h, token, "GET", "/me/conversations", q.as_object().expect("q"), None).await;
        v["data"][0]["id"].as_str().expect("conversation of the customer").to_owned()
    };
    let alex_conv = conv_of(alex.clone()).await;
    let q = json!({"fields": "id,from,story"});
    let (_, msgs) = graph_call(
        h,
        token,
        "GET",
        &format!("/{alex_conv}/messages"),
        q.as_object().expect("q"),
        None,
    )
    .await;
    let from_alex = msgs["data"]
        .as_array()
        .and_then(|d| d.iter().find(|m| m["from"]["id"] == alex.as_str()))
        .and_then(|m| m["id"].as_str())
        .expect("a message from Alex")
        .to_owned();
    let mut story = from_alex.clone();
    if let Some(jordan) = jordan {
        let jc = conv_of(jordan).await;
        let (_, jm) = graph_call(
            h,
            token,
            "GET",
            &format!("/{jc}/messages"),
            q.as_object().expect("q"),
            None,
        )
        .await;
        if let Some(id) = jm["data"]
            .as_array()
            .and_then(|d| d.iter().find(|m| m["story"]["mention"].is_object()))
            .and_then(|m| m["id"].as_str())
        {
            story = id.to_owned();
        }
    }
    let post = h
        .control(
            &format!("/_sandbox/graph/accounts/{}/posts", b["id"].as_str().expect("id")),
            json!({}),
        )
        .await;
    let alex_pk = h.customer("alex_rivera")["pk"].as_str().expect("pk").to_owned();
    let comment = h
        .control(
            &format!("/_sandbox/customers/{alex_pk}/send"),
            json!({"to": b["id"], "comment": {"text": "Is this in stock?", "media_id": post["id"]}}),
        )
        .await;
    let mut vars = BTreeMap::new();
    vars.insert("<COMMENT_ID>", comment["comment_id"].as_str().expect("comment id").to_owned());
    vars.insert("<IG_ID>", b["ig_user_id"].as_str().expect("ig id").to_owned());
    vars.insert("<PAGE_ID>", b["page_id"].as_str().expect("page id").to_owned());
    vars.insert("<IGSID>", alex);
    vars.insert("<CONVERSATION_ID>", alex_conv);
    vars.insert("<MESSAGE_ID>", from_alex);
    vars.insert("<STORY_MESSAGE_ID>", story);
    vars.insert("<POST_ID>", post["id"].as_str().expect("post id").to_owned());
    Ids { vars }
}

/// Puts the sandbox in the state an example's response describes.
async fn set_up(h: &Harness, ids: &Ids, sandbox: &Value) {
    let b = &h.seed.business;
    let ig = b["access_token"].as_str().expect("token");
    let page = b["page_token"].as_str().expect("page token");
    let none = Map::new();
    if sandbox["window"] == true {
        let pk = h.customer("alex_rivera")["pk"].as_str().expect("pk").to_owned();
        h.control(
            &format!("/_sandbox/customers/{pk}/send"),
            json!({"to": b["id"], "text": "Hi there"}),
        )
        .await;
    }
    let setup = sandbox["setup"].as_str().unwrap_or_default();
    let (token, body) = match setup {
        "" => return,
        "ice_breakers_new" => (
            ig,
            json!({"platform": "instagram", "ice_breakers": [{"locale": "default", "call_to_actions": [{"question": "Where are you?", "payload": "WHERE"}]}]}),
        ),
        "ice_breakers_old" => (
            page,
            json!({"platform": "instagram", "ice_breakers": [{"question": "Where are you?", "payload": "WHERE"}]}),
        ),
        "persistent_menu" => (
            ig,
            json!({"platform": "instagram", "persistent_menu": [{"locale": "default", "call_to_actions": [{"type": "postback", "title": "Talk to us", "payload": "TALK"}]}]}),
        ),
        "pass_to_inbox" => {
            let body = json!({"recipient": {"id": ids.vars["<IGSID>"]}, "target_app_id": "263902037430900"});
            let (s, v) =
                graph_call(h, page, "POST", "/me/pass_thread_control", &none, Some(&body)).await;
            assert_eq!(s, 200, "set-up pass_thread_control: {v}");
            return;
        }
        other => panic!("unknown sandbox set-up {other}"),
    };
    let (s, v) = graph_call(h, token, "POST", "/me/messenger_profile", &none, Some(&body)).await;
    assert_eq!(s, 200, "set-up {setup}: {v}");
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn sandbox_answers_have_the_documented_shape() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for (name, f) in fixtures() {
        for ex in examples(&f) {
            let Some(sandbox) = ex.get("sandbox") else { continue };
            checked += 1;
            // A fresh sandbox per example: set-ups and sends do not leak into the next one.
            let h = Harness::start().await;
            h.control(
                "/_sandbox/graph/rate_limits",
                json!({"send_text_per_sec": 10000.0, "send_audio_video_per_sec": 10000.0, "conversations_per_sec": 10000.0}),
            )
            .await;
            let mut ids = seed_ids(&h).await;
            if sandbox["message"] == "story_mention" {
                let story = ids.vars["<STORY_MESSAGE_ID>"].clone();
                ids.vars.insert("<MESSAGE_ID>", story);
            }
            set_up(&h, &ids, sandbox).await;
            let token = match sandbox["flavour"].as_str() {
                Some("page") => h.seed.business["page_token"].as_str(),
                _ => h.seed.business["access_token"].as_str(),
            }
            .expect("token")
            .to_owned();
            let req = &ex["request"];
            let method = req["method"].as_str().unwrap_or("GET");
            let path = ids.fill(sandbox.get("path").unwrap_or(&req["path"]));
            let query = ids.fill(sandbox.get("query").unwrap_or(&req["query"]));
            let body = req.get("body").map(|b| ids.fill(b));
            let (status, answer) = graph_call(
                &h,
                &token,
                method,
                path.as_str().unwrap_or_default(),
                query.as_object().unwrap_or(&Map::new()),
                body.as_ref(),
            )
            .await;
            let label = format!("{name} / {}", ex["name"].as_str().unwrap_or_default());
            let want = ex["response"]["status"].as_u64().unwrap_or(200);
            if u64::from(status) != want {
                failures.push(format!("{label}: HTTP {status} (documented {want}): {answer}"));
                continue;
            }
            let diffs = shape_differences(
                &ex["response"]["body"],
                &answer,
                &strings(&sandbox["optional"]),
                &strings(&sandbox["extra"]),
            );
            if !diffs.is_empty() {
                failures.push(format!(
                    "{label}:\n  {}\n  sandbox answered {answer}",
                    diffs.join("\n  ")
                ));
            }
        }
    }
    assert!(checked > 15, "only {checked} sandbox answers checked");
    assert!(
        failures.is_empty(),
        "{} sandbox answers differ from the documented shape:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn shape_comparison_reports_renames_and_type_changes() {
    let doc = json!({"data": [{"id": "1", "updated_time": "2022-07-12T19:11:07+0000"}]});
    assert!(shape_differences(&doc, &doc, &[], &[]).is_empty());
    let renamed = json!({"data": [{"id": "1", "updated_at": "2022-07-12T19:11:07+0000"}]});
    let d = shape_differences(&doc, &renamed, &[], &[]);
    assert!(d.iter().any(|x| x.contains("missing `data[].updated_time`")), "{d:?}");
    assert!(d.iter().any(|x| x.contains("undocumented `data[].updated_at`")), "{d:?}");
    let retyped = json!({"data": [{"id": 1, "updated_time": "2022-07-12T19:11:07+0000"}]});
    let d = shape_differences(&doc, &retyped, &[], &[]);
    assert_eq!(d, vec!["`data[].id` is number, documented as string".to_owned()]);
}
