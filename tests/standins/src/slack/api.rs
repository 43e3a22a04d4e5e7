//! The Web API methods the stand-in answers, and the little state they need: the user directory,
//! user groups, the bot's messages and the open views.
//!
//! Each method returns the fields Slack returns besides `ok`, or the error code Slack uses for the
//! same mistake.

use std::collections::{HashMap, HashSet};

use axum::http::{header, HeaderMap};
use chrono::{Offset, Utc};
use serde_json::{json, Map, Value};

use super::{
    DirectoryUser, Params, RateLimits, UnknownTimeZone, API_APP_ID, BOT_ID, BOT_USER_ID,
    TEAM_DOMAIN, TEAM_ID, TEAM_NAME,
};

/// A Slack error code such as `"channel_not_found"`.
pub(crate) type ErrorCode = &'static str;
type Answer = Result<Params, ErrorCode>;

#[derive(Default)]
pub(crate) struct World {
    users: HashMap<String, DirectoryUser>,
    pub(crate) groups: HashMap<String, Vec<String>>,
    pub(crate) rate_limits: RateLimits,
    /// (channel, ts) -> the message as Slack would return it.
    messages: HashMap<(String, String), Value>,
    /// view id -> the view as Slack would return it.
    views: HashMap<String, Value>,
    opened_dms: Vec<String>,
    /// `None`: [`super::DEFAULT_GRANTED_SCOPES`].
    pub(crate) granted_scopes: Option<Vec<String>>,
    /// Channels the bot is not a member of.
    pub(crate) outside: HashSet<String>,
    last_ts: (i64, u32),
    views_opened: u32,
}

impl World {
    pub(crate) fn add_user(&mut self, user: DirectoryUser) -> Result<(), UnknownTimeZone> {
        user.tz
            .parse::<chrono_tz::Tz>()
            .map_err(|_| UnknownTimeZone(user.tz.clone()))?;
        self.users.insert(user.id.clone(), user);
        Ok(())
    }

    /// Uses up one injected rate limit for `method`; `Some(retry after seconds)` if there was one.
    pub(crate) fn take_rate_limit(&mut self, method: &str) -> Option<u64> {
        let (left, retry_after) = self.rate_limits.get_mut(method)?;
        if *left == 0 {
            return None;
        }
        *left -= 1;
        Some(*retry_after)
    }

    pub(crate) fn granted_scopes(&self) -> Vec<String> {
        match &self.granted_scopes {
            Some(scopes) => scopes.clone(),
            None => super::DEFAULT_GRANTED_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    pub(crate) fn message(&self, channel: &str, ts: &str) -> Option<Value> {
        let key = (dm_channel_for(channel), ts.to_owned());
        self.messages.get(&key).cloned()
    }

    pub(crate) fn answer(&mut self, method: &str, p: &Params) -> Answer {
        match method {
            "auth.test" => Ok(auth_test()),
            "chat.postMessage" => self.post_message(p),
            "chat.update" => self.update_message(p),
            "chat.postEphemeral" => self.post_ephemeral(p),
            "chat.delete" => self.delete_message(p),
            "conversations.open" => self.open_conversation(p),
            "conversations.history" => self.history(p),
            "conversations.info" => self.conversation_info(p),
            "users.info" => self.user_info(p),
            "users.lookupByEmail" => self.lookup_by_email(p),
            "usergroups.users.list" => self.group_members(p),
            "views.open" | "views.push" => self.open_view(p),
            "views.update" => self.update_view(p),
            "views.publish" => self.publish_view(p),
            _ => Err("unknown_method"),
        }
    }

    /// A fresh message timestamp: unix seconds, then a sequence number, unique and increasing
    /// like Slack's (`1700000000.000100`).
    fn next_ts(&mut self) -> String {
        let now = Utc::now().timestamp();
        let (secs, seq) = &mut self.last_ts;
        if now > *secs {
            *secs = now;
            *seq = 0;
        }
        *seq += 1;
        format!("{secs}.{seq:06}")
    }

    /// A channel as `conversations.info` returns it; the bot is a member unless taken out.
    fn conversation_info(&self, p: &Params) -> Answer {
        let channel = required(p, "channel", "channel_not_found")?;
        let is_im = channel.starts_with('D');
        let is_member = !self.outside.contains(channel);
        Ok(fields(json!({"channel": {
            "id": channel,
            "name": channel.to_ascii_lowercase(),
            "created": 1_700_000_000,
            "is_channel": channel.starts_with('C'),
            "is_group": channel.starts_with('G'),
            "is_im": is_im,
            "is_private": !channel.starts_with('C'),
            "is_archived": false,
            "is_member": is_member,
        }})))
    }

    fn post_message(&mut self, p: &Params) -> Answer {
        let channel = dm_channel_for(required(p, "channel", "channel_not_found")?);
        if self.outside.contains(&channel) {
            return Err("not_in_channel");
        }
        let content = message_content(p)?;
        if content.is_empty() {
            return Err("no_text");
        }
        let ts = self.next_ts();
        let mut message = bot_message(&ts);
        message.extend(content);
        if let Some(thread_ts) = str_param(p, "thread_ts") {
            message.insert("thread_ts".to_owned(), json!(thread_ts));
        }
        let message = Value::Object(message);
        self.messages
            .insert((channel.clone(), ts.clone()), message.clone());
        Ok(fields(
            json!({"channel": channel, "ts": ts, "message": message}),
        ))
    }

    fn update_message(&mut self, p: &Params) -> Answer {
        let channel = dm_channel_for(required(p, "channel", "channel_not_found")?);
        let ts = required(p, "ts", "message_not_found")?.to_owned();
        let content = message_content(p)?;
        if content.is_empty() {
            return Err("no_text");
        }
        let edited_ts = self.next_ts();
        let stored = self
            .messages
            .get_mut(&(channel.clone(), ts.clone()))
            .and_then(Value::as_object_mut)
            .ok_or("message_not_found")?;
        // Like Slack: fields left out of the update keep their old value.
        stored.extend(content);
        stored.insert(
            "edited".to_owned(),
            json!({"user": BOT_USER_ID, "ts": edited_ts}),
        );
        let message = Value::Object(stored.clone());
        let text = message.get("text").cloned().unwrap_or(json!(""));
        Ok(fields(
            json!({"channel": channel, "ts": ts, "text": text, "message": message}),
        ))
    }

    fn post_ephemeral(&mut self, p: &Params) -> Answer {
        required(p, "channel", "channel_not_found")?;
        required(p, "user", "user_not_in_channel")?;
        if message_content(p)?.is_empty() {
            return Err("no_text");
        }
        Ok(fields(json!({"message_ts": self.next_ts()})))
    }

    fn delete_message(&mut self, p: &Params) -> Answer {
        let channel = dm_channel_for(required(p, "channel", "channel_not_found")?);
        let ts = required(p, "ts", "message_not_found")?.to_owned();
        self.messages
            .remove(&(channel.clone(), ts.clone()))
            .ok_or("message_not_found")?;
        Ok(fields(json!({"channel": channel, "ts": ts})))
    }

    /// The messages of a channel, newest first, after `oldest` (exclusive) when given, at most
    /// `limit` (default 100, at most 999) of them; `has_more` when more were left out. The stand-in
    /// holds only the bot's messages (nobody else posts here); no cursor paging.
    fn history(&self, p: &Params) -> Answer {
        let channel = dm_channel_for(required(p, "channel", "channel_not_found")?);
        let ts_of = |ts: &str| ts.parse::<f64>().unwrap_or(0.0);
        let oldest = str_param(p, "oldest").map(ts_of).unwrap_or(0.0);
        let limit = match p.get("limit") {
            Some(Value::Number(n)) => n.as_u64().unwrap_or(100),
            Some(Value::String(s)) => s.parse().map_err(|_| "invalid_limit")?,
            _ => 100,
        }
        .clamp(1, 999) as usize;
        let mut found: Vec<&Value> = self
            .messages
            .iter()
            .filter(|((c, ts), _)| *c == channel && ts_of(ts) > oldest)
            .map(|(_, m)| m)
            .collect();
        found.sort_by(|a, b| ts_of(b["ts"].as_str().unwrap_or("0")).total_cmp(&ts_of(a["ts"].as_str().unwrap_or("0"))));
        let has_more = found.len() > limit;
        found.truncate(limit);
        Ok(fields(json!({"messages": found, "has_more": has_more})))
    }

    fn open_conversation(&mut self, p: &Params) -> Answer {
        if let Some(channel) = str_param(p, "channel") {
            return Ok(fields(
                json!({"channel": {"id": channel}, "no_op": true, "already_open": true}),
            ));
        }
        let users = list_param(p, "users");
        let id = match users.as_slice() {
            [] => return Err("users_list_not_supplied"),
            [user] => dm_channel_for(user),
            many => format!("G{}", many.join("")),
        };
        let already_open = self.opened_dms.contains(&id);
        if !already_open {
            self.opened_dms.push(id.clone());
        }
        let mut channel = json!({"id": id});
        if bool_param(p, "return_im") {
            channel = json!({
                "id": id,
                "created": Utc::now().timestamp(),
                "is_im": users.len() == 1,
                "is_mpim": users.len() > 1,
                "is_open": true,
                "user": users.first(),
                "priority": 0,
            });
        }
        Ok(fields(json!({
            "channel": channel,
            "no_op": already_open,
            "already_open": already_open,
        })))
    }

    fn user_info(&self, p: &Params) -> Answer {
        let user = str_param(p, "user")
            .and_then(|id| self.users.get(id))
            .ok_or("user_not_found")?;
        Ok(fields(json!({"user": user_json(user)})))
    }

    fn lookup_by_email(&self, p: &Params) -> Answer {
        let email = str_param(p, "email").ok_or("users_not_found")?;
        let user = self
            .users
            .values()
            .find(|u| u.email.eq_ignore_ascii_case(email))
            .ok_or("users_not_found")?;
        Ok(fields(json!({"user": user_json(user)})))
    }

    fn group_members(&self, p: &Params) -> Answer {
        let members = str_param(p, "usergroup")
            .and_then(|id| self.groups.get(id))
            .ok_or("no_such_subteam")?;
        Ok(fields(json!({"users": members})))
    }

    /// `views.open` and `views.push`: the stand-in keeps no stack of views per user, so a pushed
    /// view is its own root.
    fn open_view(&mut self, p: &Params) -> Answer {
        required(p, "trigger_id", "invalid_arguments")?;
        let mut view = view_param(p)?;
        self.views_opened += 1;
        let id = format!("V{:010}", self.views_opened);
        let defaults = json!({
            "id": id,
            "team_id": TEAM_ID,
            "state": {"values": {}},
            "private_metadata": "",
            "callback_id": "",
            "external_id": "",
            "root_view_id": id,
            "previous_view_id": null,
            "app_id": API_APP_ID,
            "bot_id": BOT_ID,
        });
        for (key, value) in fields(defaults) {
            // The id and bookkeeping are Slack's; the content is the caller's.
            let is_slacks = matches!(key.as_str(), "id" | "team_id" | "state" | "root_view_id");
            if is_slacks || !view.contains_key(&key) {
                view.insert(key, value);
            }
        }
        view.insert("hash".to_owned(), json!(self.next_ts()));
        let view = Value::Object(view);
        self.views.insert(id, view.clone());
        Ok(fields(json!({"view": view})))
    }

    /// `views.publish`: a user's App Home tab. Slack keeps one home view per user and app, so a
    /// publish replaces the last one under the same id.
    fn publish_view(&mut self, p: &Params) -> Answer {
        let user = required(p, "user_id", "invalid_arguments")?.to_owned();
        if !self.users.contains_key(&user) {
            return Err("user_not_found");
        }
        let mut view = view_param(p)?;
        if view.get("type").and_then(Value::as_str) != Some("home") {
            return Err("invalid_arguments");
        }
        let id = format!("VH{user}");
        view.insert("id".to_owned(), json!(id));
        view.insert("team_id".to_owned(), json!(TEAM_ID));
        view.insert("app_id".to_owned(), json!(API_APP_ID));
        view.insert("bot_id".to_owned(), json!(BOT_ID));
        view.insert("hash".to_owned(), json!(self.next_ts()));
        let view = Value::Object(view);
        self.views.insert(id, view.clone());
        Ok(fields(json!({"view": view})))
    }

    fn update_view(&mut self, p: &Params) -> Answer {
        let mut content = view_param(p)?;
        let id = match (str_param(p, "view_id"), str_param(p, "external_id")) {
            (Some(id), _) => id.to_owned(),
            (None, Some(external)) => self
                .views
                .iter()
                .find(|(_, v)| v.get("external_id").and_then(Value::as_str) == Some(external))
                .map(|(id, _)| id.clone())
                .ok_or("not_found")?,
            (None, None) => return Err("not_found"),
        };
        let hash = self.next_ts();
        let stored = self
            .views
            .get_mut(&id)
            .and_then(Value::as_object_mut)
            .ok_or("not_found")?;
        if let Some(expected) = str_param(p, "hash") {
            if stored.get("hash").and_then(Value::as_str) != Some(expected) {
                return Err("hash_conflict");
            }
        }
        for key in [
            "id",
            "team_id",
            "state",
            "root_view_id",
            "previous_view_id",
            "app_id",
            "bot_id",
        ] {
            content.remove(key);
        }
        stored.extend(content);
        stored.insert("hash".to_owned(), json!(hash));
        Ok(fields(json!({"view": stored.clone()})))
    }
}

/// Reads the parameters of a Web API call: the query string, then a JSON or form body on top.
/// On a body Slack could not read, returns what could be kept and the error code Slack answers.
pub(crate) fn parse_params(
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Params, (Params, ErrorCode)> {
    let mut params = form_fields(query.unwrap_or_default().as_bytes());
    if body.is_empty() {
        return Ok(params);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/x-www-form-urlencoded")
        .to_ascii_lowercase();
    if content_type.starts_with("application/json") {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(fields)) => params.extend(fields),
            _ => {
                params.insert("_body".to_owned(), raw(body));
                return Err((params, "invalid_json"));
            }
        }
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        params.extend(form_fields(body));
    } else {
        params.insert("_body".to_owned(), raw(body));
        return Err((params, "invalid_form_data"));
    }
    Ok(params)
}

/// Checks the bot token: `Authorization: Bearer xoxb-...`, or a `token` parameter.
pub(crate) fn authorise(headers: &HeaderMap, params: &Params) -> Result<(), ErrorCode> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    match bearer.or_else(|| str_param(params, "token")) {
        None => Err("not_authed"),
        Some(token) if token.starts_with("xoxb-") && token.len() > "xoxb-".len() => Ok(()),
        Some(_) => Err("invalid_auth"),
    }
}

fn form_fields(bytes: &[u8]) -> Params {
    // Only bytes that are not UTF-8 after decoding fail; no Slack client sends those, and
    // reading them as no fields makes the call fail the way a missing argument does.
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(bytes)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect()
}

fn raw(body: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(body).into_owned())
}

fn auth_test() -> Params {
    fields(json!({
        "url": format!("https://{TEAM_DOMAIN}.slack.com/"),
        "team": TEAM_NAME,
        "user": "powerpole",
        "team_id": TEAM_ID,
        "user_id": BOT_USER_ID,
        "bot_id": BOT_ID,
        "is_enterprise_install": false,
    }))
}

/// The fields of a message the bot posts, before its content.
fn bot_message(ts: &str) -> Params {
    fields(json!({
        "type": "message",
        "subtype": "bot_message",
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
        "app_id": API_APP_ID,
        "team": TEAM_ID,
        "ts": ts,
    }))
}

/// The content fields of a chat call that were given: `text`, `blocks`, `attachments`,
/// `metadata`, with JSON-in-form fields parsed.
fn message_content(p: &Params) -> Answer {
    let mut content = Params::new();
    // Slack treats an empty `text` as no text.
    if let Some(text) = p
        .get("text")
        .filter(|t| !t.is_null() && t.as_str() != Some(""))
    {
        content.insert("text".to_owned(), text.clone());
    }
    for (name, error) in [
        ("blocks", "invalid_blocks"),
        ("attachments", "invalid_attachments"),
        ("metadata", "invalid_metadata_format"),
    ] {
        if let Some(value) = json_param(p, name).map_err(|()| error)? {
            content.insert(name.to_owned(), value);
        }
    }
    Ok(content)
}

fn view_param(p: &Params) -> Result<Params, ErrorCode> {
    match json_param(p, "view") {
        Ok(Some(Value::Object(view))) => Ok(view),
        _ => Err("invalid_arguments"),
    }
}

/// A user as `users.info` returns it.
fn user_json(user: &DirectoryUser) -> Value {
    let name = user.email.split('@').next().unwrap_or_default();
    let real_name = name
        .split(['.', '_', '-'])
        .filter(|part| !part.is_empty())
        .map(capitalised)
        .collect::<Vec<_>>()
        .join(" ");
    // add_user checked the zone; fall back to UTC rather than fail a lookup.
    let tz: chrono_tz::Tz = user.tz.parse().unwrap_or(chrono_tz::UTC);
    let local = Utc::now().with_timezone(&tz);
    json!({
        "id": user.id,
        "team_id": TEAM_ID,
        "name": name,
        "deleted": false,
        "real_name": real_name,
        "tz": user.tz,
        "tz_label": local.format("%Z").to_string(),
        "tz_offset": local.offset().fix().local_minus_utc(),
        "is_admin": false,
        "is_owner": false,
        "is_bot": false,
        "is_app_user": false,
        "updated": Utc::now().timestamp(),
        "profile": {
            "real_name": real_name,
            "real_name_normalized": real_name,
            "display_name": name,
            "display_name_normalized": name,
            "email": user.email,
            "team": TEAM_ID,
        },
    })
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A message sent to a user id lands in the bot's DM with that user.
fn dm_channel_for(channel: &str) -> String {
    match channel.chars().next() {
        Some('U' | 'W') => format!("D{channel}"),
        _ => channel.to_owned(),
    }
}

fn fields(value: Value) -> Params {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn str_param<'a>(p: &'a Params, name: &str) -> Option<&'a str> {
    p.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn required<'a>(p: &'a Params, name: &str, error: ErrorCode) -> Result<&'a str, ErrorCode> {
    str_param(p, name).ok_or(error)
}

fn bool_param(p: &Params, name: &str) -> bool {
    match p.get(name) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true" || s == "1",
        _ => false,
    }
}

/// A comma-separated string (as Slack documents it) or a JSON array of strings.
fn list_param(p: &Params, name: &str) -> Vec<String> {
    match p.get(name) {
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// A parameter that holds JSON: sent as JSON in a JSON body, or as a JSON string in a form.
/// `Err` if it is a string that is not JSON.
fn json_param(p: &Params, name: &str) -> Result<Option<Value>, ()> {
    match p.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => serde_json::from_str(s).map(Some).map_err(|_| ()),
        Some(other) => Ok(Some(other.clone())),
    }
}
