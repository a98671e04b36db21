//! The account node, the User Profile API and the Messenger Profile API
//! (ice breakers and persistent menu).

use std::sync::Arc;

use axum::Json;
use axum::http::Method;
use serde_json::{Map, Value, json};

use super::error::GraphError;
use super::ext::ext;
use super::{Caller, Req, nonexisting_field, requested_fields};
use crate::state::Sandbox;

/// Most ice breakers per locale.
pub const MAX_ICE_BREAKERS: usize = 4;
/// Most persistent-menu items per locale.
pub const MAX_MENU_ITEMS: usize = 20;

/// `GET /{self}`: the account's own node (`/me` with an Instagram User token:
/// in a `data` envelope, as the Instagram Login get-started page shows).
pub(crate) async fn account_node(
    sb: &Arc<Sandbox>,
    caller: &Caller,
    req: &Req,
) -> Result<Json<Value>, GraphError> {
    let fields = requested_fields(req, "id,username");
    let followers = sb
        .read(|w| {
            w.account(&caller.account_id)
                .ok()
                .and_then(|a| w.users.get(&a.pk).map(|u| u.follower_count))
        })
        .await
        .unwrap_or_default();
    sb.read(|w| {
        let a = w.account(&caller.account_id).map_err(|_| GraphError::token_invalid())?;
        let mut out = Map::new();
        if caller.flavour == super::Flavour::Page {
            // A Page token's `/me` is the Page; its Instagram account hangs off it.
            let page_id = a.graph.as_ref().map(|g| g.page_id.clone());
            for f in &fields {
                let v = match f.name.as_str() {
                    "id" => json!(page_id),
                    "name" => json!(a.full_name),
                    "instagram_business_account" => {
                        let mut ig = Map::new();
                        let sub = f.sub.as_deref().unwrap_or_default();
                        for s in sub {
                            let v = match s.name.as_str() {
                                "id" => json!(a.id),
                                "username" => json!(a.username),
                                "name" => json!(a.full_name),
                                other => return Err(nonexisting_field(other, "IGUser")),
                            };
                            ig.insert(s.name.clone(), v);
                        }
                        if sub.is_empty() {
                            ig.insert("id".into(), json!(a.id));
                        }
                        Value::Object(ig)
                    }
                    other => return Err(nonexisting_field(other, "Page")),
                };
                out.insert(f.name.clone(), v);
            }
            return Ok(Json(Value::Object(out)));
        }
        for f in &fields {
            let v = match f.name.as_str() {
                "id" => json!(a.id),
                "user_id" => json!(a.id),
                "username" => json!(a.username),
                "name" => json!(a.full_name),
                "account_type" => json!("BUSINESS"),
                "profile_picture_url" => {
                    json!(w.users.get(&a.pk).map(|u| u.profile_pic_url.clone()))
                }
                "followers_count" => json!(followers),
                other => return Err(nonexisting_field(other, "User")),
            };
            out.insert(f.name.clone(), v);
        }
        // Instagram Login's `/me` answers in the `data` envelope its get-started
        // page documents; the node under its own id answers flat.
        if req.node == "me" {
            return Ok(Json(json!({"data": [Value::Object(out)]})));
        }
        Ok(Json(Value::Object(out)))
    })
    .await
}

/// `GET /{igsid}`: profile of a customer who messaged the account.
pub(crate) async fn user_profile(
    sb: &Arc<Sandbox>,
    caller: &Caller,
    req: &Req,
) -> Result<Json<Value>, GraphError> {
    let ext = ext(sb);
    let fields = requested_fields(req, "name,profile_pic");
    sb.read(|w| {
        let account = w.account(&caller.account_id).map_err(|_| GraphError::token_invalid())?;
        let user = w
            .users
            .values()
            .find(|u| u.igsid == req.node && !u.is_account)
            .ok_or_else(|| GraphError::unknown_object(&req.node, "get"))?;
        if !account.customer_last_message_at.contains_key(&user.pk) || ext.is_unavailable(&user.pk)
        {
            return Err(GraphError::consent_required());
        }
        let mut out = Map::new();
        for f in &fields {
            let v = match f.name.as_str() {
                "id" => json!(user.igsid),
                "name" => {
                    if user.full_name.is_empty() {
                        Value::Null
                    } else {
                        json!(user.full_name)
                    }
                }
                "username" => json!(user.username),
                "profile_pic" => json!(user.profile_pic_url),
                "follower_count" => json!(user.follower_count),
                "is_user_follow_business" => json!(user.is_user_follow_business),
                "is_business_follow_user" => json!(user.is_business_follow_user),
                "is_verified_user" => json!(user.is_verified),
                other => return Err(nonexisting_field(other, "User")),
            };
            out.insert(f.name.clone(), v);
        }
        out.insert("id".into(), json!(user.igsid));
        Ok(Json(Value::Object(out)))
    })
    .await
}

const PROFILE_FIELDS: &[&str] = &["ice_breakers", "persistent_menu"];

/// `GET|POST|DELETE /{self}/messenger_profile`.
pub(crate) async fn messenger_profile(
    sb: &Arc<Sandbox>,
    caller: &Caller,
    req: &Req,
) -> Result<Json<Value>, GraphError> {
    if let Some(p) = req.param("platform")
        && p != "instagram"
    {
        return Err(GraphError::invalid_param(format!(
            "Param platform must be one of {{instagram}} - got \"{p}\"."
        )));
    }
    let ext = ext(sb);
    let account = caller.account_id.clone();
    match req.method {
        Method::GET => {
            let fields = req.param("fields").ok_or_else(|| GraphError::missing_param("fields"))?;
            let names: Vec<&str> =
                fields.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
            for n in &names {
                if !PROFILE_FIELDS.contains(n) {
                    return Err(GraphError::invalid_param(format!(
                        "Param fields[{n}] must be one of {{ice_breakers, persistent_menu}}"
                    )));
                }
            }
            let inner = ext.lock();
            let stored = inner.profiles.get(&account);
            let mut entry = Map::new();
            let mut locale_blocks = Vec::new();
            for n in names {
                match stored.and_then(|s| s.get(n)) {
                    // Ice breakers set in the localized format come back as one
                    // `{call_to_actions, locale}` block per locale (the "new
                    // format response"); the flat format as `{ice_breakers: [...]}`.
                    Some(Value::Array(blocks)) if n == "ice_breakers" && is_localized(blocks) => {
                        locale_blocks.extend(blocks.iter().cloned());
                    }
                    Some(v) => {
                        entry.insert(n.to_owned(), v.clone());
                    }
                    None => {}
                }
            }
            let mut data = if entry.is_empty() { vec![] } else { vec![Value::Object(entry)] };
            data.extend(locale_blocks);
            Ok(Json(json!({"data": data})))
        }
        Method::POST => {
            let mut updates = Map::new();
            if let Some(ib) = req.params.get("ice_breakers") {
                let localized = validate_ice_breakers(ib)?;
                // The flat format is kept flat: GET answers in the format that was set.
                let flat = ib.as_array().is_some_and(|a| !is_localized(a));
                let stored = if flat { localized[0]["call_to_actions"].clone() } else { localized };
                updates.insert("ice_breakers".into(), stored);
            }
            if let Some(pm) = req.params.get("persistent_menu") {
                updates.insert("persistent_menu".into(), validate_menu(pm)?);
            }
            if updates.is_empty() {
                return Err(GraphError::invalid_param(
                    "Requires one of the params: ice_breakers, persistent_menu",
                ));
            }
            ext.lock().profiles.entry(account).or_default().extend(updates);
            Ok(Json(profile_ack(caller)))
        }
        Method::DELETE => {
            let fields =
                req.params.get("fields").ok_or_else(|| GraphError::missing_param("fields"))?;
            let names: Vec<String> = match fields {
                Value::Array(a) => a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
                Value::String(s) => {
                    s.split(',').map(|x| x.trim().to_owned()).filter(|x| !x.is_empty()).collect()
                }
                _ => return Err(GraphError::invalid_param("Param fields must be an array")),
            };
            if names.is_empty() {
                return Err(GraphError::missing_param("fields"));
            }
            for n in &names {
                if !PROFILE_FIELDS.contains(&n.as_str()) {
                    return Err(GraphError::invalid_param(format!(
                        "Param fields[{n}] must be one of {{ice_breakers, persistent_menu}}"
                    )));
                }
            }
            if let Some(p) = ext.lock().profiles.get_mut(&account) {
                for n in &names {
                    p.remove(n);
                }
            }
            Ok(Json(profile_ack(caller)))
        }
        _ => Err(GraphError::unknown_object("messenger_profile", req.method.as_str())),
    }
}

/// The answer to a messenger-profile change: Instagram Login documents
/// `{success: true}`, the Messenger Profile API (Page tokens) `{result: "success"}`.
fn profile_ack(caller: &Caller) -> Value {
    if caller.flavour == super::Flavour::Instagram {
        json!({"success": true})
    } else {
        json!({"result": "success"})
    }
}

/// Whether ice breakers are in the localized format (`{call_to_actions, locale}`).
fn is_localized(items: &[Value]) -> bool {
    items.iter().any(|v| v.get("call_to_actions").is_some() || v.get("locale").is_some())
}

fn str_of<'a>(obj: &'a Map<String, Value>, key: &str, param: &str) -> Result<&'a str, GraphError> {
    match obj.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) | None | Some(Value::Null) => Err(GraphError::missing_param(param)),
        Some(_) => Err(GraphError::invalid_param(format!("Param {param} must be a string"))),
    }
}

fn validate_questions(list: &Value, param: &str) -> Result<Vec<Value>, GraphError> {
    let items = list
        .as_array()
        .ok_or_else(|| GraphError::invalid_param(format!("Param {param} must be an array")))?;
    if items.is_empty() {
        return Err(GraphError::missing_param(param));
    }
    if items.len() > MAX_ICE_BREAKERS {
        return Err(GraphError::invalid_param(format!(
            "Param {param} must be an array with at most {MAX_ICE_BREAKERS} elements"
        )));
    }
    let mut out = Vec::new();
    for (i, q) in items.iter().enumerate() {
        let p = format!("{param}[{i}]");
        let obj = q
            .as_object()
            .ok_or_else(|| GraphError::invalid_param(format!("Param {p} must be an object")))?;
        let question = str_of(obj, "question", &format!("{p}[question]"))?;
        let payload = str_of(obj, "payload", &format!("{p}[payload]"))?;
        out.push(json!({"question": question, "payload": payload}));
    }
    Ok(out)
}

/// Validates ice breakers (flat or localized, never mixed) and returns the
/// localized form that GET returns.
///
/// # Errors
/// Graph 100 errors.
pub fn validate_ice_breakers(raw: &Value) -> Result<Value, GraphError> {
    let items = raw
        .as_array()
        .ok_or_else(|| GraphError::invalid_param("Param ice_breakers must be an array"))?;
    if items.is_empty() {
        return Err(GraphError::missing_param("ice_breakers"));
    }
    let localized = |v: &Value| v.get("call_to_actions").is_some() || v.get("locale").is_some();
    let n_localized = items.iter().filter(|v| localized(v)).count();
    if n_localized == 0 {
        let questions = validate_questions(raw, "ice_breakers")?;
        return Ok(json!([{"call_to_actions": questions, "locale": "default"}]));
    }
    if n_localized != items.len() {
        return Err(GraphError::invalid_param(
            "Param ice_breakers cannot mix the flat format ({question, payload}) with the localized format ({call_to_actions, locale}) in one request",
        ));
    }
    let mut out = Vec::new();
    let mut locales: Vec<String> = Vec::new();
    for (i, entry) in items.iter().enumerate() {
        let p = format!("ice_breakers[{i}]");
        let obj = entry
            .as_object()
            .ok_or_else(|| GraphError::invalid_param(format!("Param {p} must be an object")))?;
        let locale = str_of(obj, "locale", &format!("{p}[locale]"))?;
        if locales.iter().any(|l| l == locale) {
            return Err(GraphError::invalid_param(format!(
                "Param {p}[locale] repeats locale {locale}"
            )));
        }
        locales.push(locale.to_owned());
        let actions = obj
            .get("call_to_actions")
            .ok_or_else(|| GraphError::missing_param(&format!("{p}[call_to_actions]")))?;
        let questions = validate_questions(actions, &format!("{p}[call_to_actions]"))?;
        out.push(json!({"call_to_actions": questions, "locale": locale}));
    }
    if !locales.iter().any(|l| l == "default") {
        return Err(GraphError::invalid_param(
            "Param ice_breakers must contain an entry with locale \"default\"",
        ));
    }
    Ok(Value::Array(out))
}

/// Validates a persistent menu (Instagram rules: a default locale, postback
/// and web_url items, no `composer_input_disabled`).
///
/// # Errors
/// Graph 100 errors.
pub fn validate_menu(raw: &Value) -> Result<Value, GraphError> {
    let items = raw
        .as_array()
        .ok_or_else(|| GraphError::invalid_param("Param persistent_menu must be an array"))?;
    let mut locales = Vec::new();
    for (i, entry) in items.iter().enumerate() {
        let p = format!("persistent_menu[{i}]");
        let obj = entry
            .as_object()
            .ok_or_else(|| GraphError::invalid_param(format!("Param {p} must be an object")))?;
        if obj.contains_key("composer_input_disabled") {
            return Err(GraphError::invalid_param(format!(
                "Param {p}[composer_input_disabled] is not supported on Instagram"
            )));
        }
        locales.push(str_of(obj, "locale", &format!("{p}[locale]"))?.to_owned());
        let actions = obj
            .get("call_to_actions")
            .and_then(Value::as_array)
            .ok_or_else(|| GraphError::missing_param(&format!("{p}[call_to_actions]")))?;
        if actions.is_empty() {
            return Err(GraphError::missing_param(&format!("{p}[call_to_actions]")));
        }
        if actions.len() > MAX_MENU_ITEMS {
            return Err(GraphError::invalid_param(format!(
                "Param {p}[call_to_actions] must be an array with at most {MAX_MENU_ITEMS} elements"
            )));
        }
        for (j, a) in actions.iter().enumerate() {
            let ap = format!("{p}[call_to_actions][{j}]");
            let obj = a.as_object().ok_or_else(|| {
                GraphError::invalid_param(format!("Param {ap} must be an object"))
            })?;
            if obj.contains_key("webview_height_ratio") {
                return Err(GraphError::invalid_param(format!(
                    "Param {ap}[webview_height_ratio] is not supported on Instagram"
                )));
            }
            str_of(obj, "title", &format!("{ap}[title]"))?;
            match str_of(obj, "type", &format!("{ap}[type]"))? {
                "postback" => {
                    str_of(obj, "payload", &format!("{ap}[payload]"))?;
                }
                "web_url" => {
                    let url = str_of(obj, "url", &format!("{ap}[url]"))?;
                    if url::Url::parse(url).is_err() {
                        return Err(GraphError::invalid_param(format!(
                            "Param {ap}[url] must be a valid URL"
                        )));
                    }
                }
                other => {
                    return Err(GraphError::invalid_param(format!(
                        "Param {ap}[type] must be one of {{postback, web_url}} - got \"{other}\"."
                    )));
                }
            }
        }
    }
    if !locales.iter().any(|l| l == "default") {
        return Err(GraphError::invalid_param(
            "Param persistent_menu must contain an entry with locale \"default\"",
        ));
    }
    Ok(raw.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ice_breaker_rules() {
        let q = |n: usize| {
            (0..n).map(|i| json!({"question": format!("q{i}"), "payload": "p"})).collect::<Vec<_>>()
        };
        assert!(validate_ice_breakers(&json!(q(4))).is_ok());
        assert!(validate_ice_breakers(&json!(q(5))).is_err());
        let no_default = json!([{"locale": "fr_FR", "call_to_actions": q(1)}]);
        assert!(validate_ice_breakers(&no_default).is_err());
        let mixed = json!([{"locale": "default", "call_to_actions": q(1)}, {"question": "x", "payload": "y"}]);
        assert!(validate_ice_breakers(&mixed).is_err());
    }
}
