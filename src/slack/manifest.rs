//! The Slack app manifest (`powerpole slack manifest`), built from what the code does: the slash
//! command, interactivity, the events it subscribes to, the App Home settings that let it DM
//! people, and exactly the bot scopes of the Web API methods it calls.
//!
//! [`WEB_API_METHODS`] lists every method the code calls with the bot token, with the scopes each
//! needs. `tests/slack_manifest.rs` reads the source and fails if the code calls a method missing
//! from that list (or the list names one the code no longer calls), so a new call cannot ship
//! without its scope, and the app never asks for a scope it does not use.

use serde_json::{json, Value};

/// A Web API method the code calls with the bot token, and the bot scopes it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodScopes {
    pub method: &'static str,
    pub scopes: &'static [&'static str],
    /// Why powerpole calls it.
    pub why: &'static str,
}

/// Every Web API method powerpole calls with the bot token (kept exact by `tests/slack_manifest.rs`).
pub const WEB_API_METHODS: &[MethodScopes] = &[
    MethodScopes { method: "auth.test", scopes: &[], why: "doctor: who the bot is and which scopes it was granted" },
    MethodScopes { method: "chat.postMessage", scopes: &["chat:write"], why: "approval cards, DMs (hand-over, warning, teardown), alerts" },
    MethodScopes { method: "chat.update", scopes: &["chat:write"], why: "decisions on the card, the redacted hand-over DM" },
    MethodScopes { method: "chat.delete", scopes: &["chat:write"], why: "a hand-over DM that nothing recorded (its post answered with an error)" },
    MethodScopes { method: "conversations.open", scopes: &["im:write"], why: "the DM channel whose history is searched for such a hand-over DM" },
    MethodScopes { method: "conversations.history", scopes: &["im:history"], why: "finding such a hand-over DM at the session's end" },
    MethodScopes { method: "views.open", scopes: &[], why: "the request modal" },
    MethodScopes { method: "views.publish", scopes: &[], why: "the App Home tab (a person's sessions, an approver's waiting requests)" },
    // The e-mail is the database user name; `users:read.email` is what makes users.info return it.
    MethodScopes { method: "users.info", scopes: &["users:read", "users:read.email"], why: "the requester's e-mail and time zone" },
    MethodScopes { method: "usergroups.users.list", scopes: &["usergroups:read"], why: "approvers given as a user group; on-call groups that may break the glass" },
    // Public and private approvals channels alike.
    MethodScopes { method: "conversations.info", scopes: &["channels:read", "groups:read"], why: "doctor: is the bot in each approvals channel" },
];

/// Scopes that come with a feature rather than a method call.
pub const FEATURE_SCOPES: &[(&str, &str)] = &[
    ("commands", "the slash command"),
    ("app_mentions:read", "the `app_mention` event (answered with the usage)"),
];

/// The bot events powerpole subscribes to. `app_home_opened` needs no scope; it tells the app a
/// person opened its App Home, where its DMs live.
pub const BOT_EVENTS: &[&str] = &["app_home_opened", "app_mention"];

/// The scope `method` needs, or `None` if powerpole does not know the method (so nobody added it
/// to [`WEB_API_METHODS`]).
pub fn scopes_of(method: &str) -> Option<&'static [&'static str]> {
    WEB_API_METHODS.iter().find(|m| m.method == method).map(|m| m.scopes)
}

/// Every bot scope powerpole needs, sorted and once each.
pub fn bot_scopes() -> Vec<&'static str> {
    let mut scopes: Vec<&'static str> = WEB_API_METHODS.iter().flat_map(|m| m.scopes.iter().copied()).chain(FEATURE_SCOPES.iter().map(|(s, _)| *s)).collect();
    scopes.sort_unstable();
    scopes.dedup();
    scopes
}

/// How Slack reaches powerpole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// HTTPS request URLs under this base (`https://powerpole.example.com`, no trailing slash).
    Http { base_url: String },
    /// Socket Mode: no request URLs; needs an app-level token with `connections:write`.
    Socket,
}

/// A manifest that cannot be built as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("--base-url `{0}` is not a URL: give the public https address of `powerpole serve` or the Lambda function URL, e.g. https://powerpole.example.com")]
    NotAUrl(String),
    #[error("--base-url `{0}` must be https: Slack only sends requests to https URLs (or use --socket-mode)")]
    NotHttps(String),
    #[error("--base-url `{0}` must be a bare origin and path, without a query or fragment")]
    HasQuery(String),
    #[error("give --base-url (the public https address Slack will call) or --socket-mode")]
    NoDelivery,
    #[error("the slash command `{0}` must start with `/` and be at most 32 lowercase letters, digits, `-` or `_`")]
    BadCommand(String),
}

impl Delivery {
    /// Checks `--base-url` / `--socket-mode` as given on the command line.
    pub fn parse(base_url: Option<&str>, socket_mode: bool) -> Result<Delivery, ManifestError> {
        match (base_url, socket_mode) {
            (_, true) => Ok(Delivery::Socket),
            (None, false) => Err(ManifestError::NoDelivery),
            (Some(raw), false) => {
                let url = url::Url::parse(raw).map_err(|_| ManifestError::NotAUrl(raw.to_string()))?;
                if url.scheme() != "https" || url.host_str().is_none() {
                    return Err(ManifestError::NotHttps(raw.to_string()));
                }
                if url.query().is_some() || url.fragment().is_some() {
                    return Err(ManifestError::HasQuery(raw.to_string()));
                }
                Ok(Delivery::Http { base_url: url.as_str().trim_end_matches('/').to_string() })
            }
        }
    }

    fn url(&self, path: &str) -> Option<String> {
        match self {
            Delivery::Http { base_url } => Some(format!("{base_url}{path}")),
            Delivery::Socket => None,
        }
    }
}

fn check_command(command: &str) -> Result<(), ManifestError> {
    let name = command.strip_prefix('/').unwrap_or("");
    let valid = !name.is_empty() && name.len() <= 32 && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if valid { Ok(()) } else { Err(ManifestError::BadCommand(command.to_string())) }
}

/// The app manifest (JSON, which Slack's "Create from manifest" accepts as it is).
pub fn manifest(delivery: &Delivery, command: &str) -> Result<Value, ManifestError> {
    check_command(command)?;
    let mut slash = json!({
        "command": command,
        "description": "Ask for just-in-time database access",
        "usage_hint": "request [target role duration reason]",
        "should_escape": false,
    });
    let mut interactivity = json!({ "is_enabled": true });
    let mut events = json!({ "bot_events": BOT_EVENTS });
    if let Some(url) = delivery.url("/slack/commands") {
        slash["url"] = json!(url);
    }
    if let Some(url) = delivery.url("/slack/interactions") {
        interactivity["request_url"] = json!(url);
    }
    if let Some(url) = delivery.url("/slack/events") {
        events["request_url"] = json!(url);
    }
    Ok(json!({
        "_metadata": { "major_version": 1, "minor_version": 1 },
        "display_information": {
            "name": "powerpole",
            "description": "Just-in-time, approved, per-person database access through ephemeral bastions",
            "background_color": "#1d3557",
        },
        "features": {
            // DMs (hand-over, warnings, teardown notices) arrive in the Messages tab; people do not
            // write to the bot, so the tab is read-only.
            "app_home": { "home_tab_enabled": true, "messages_tab_enabled": true, "messages_tab_read_only_enabled": true },
            "bot_user": { "display_name": "powerpole", "always_online": true },
            "slash_commands": [slash],
        },
        "oauth_config": { "scopes": { "bot": bot_scopes() } },
        "settings": {
            "event_subscriptions": events,
            "interactivity": interactivity,
            "org_deploy_enabled": false,
            "socket_mode_enabled": matches!(delivery, Delivery::Socket),
            "token_rotation_enabled": false,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_delivery_points_every_url_at_the_base() {
        let delivery = Delivery::parse(Some("https://pp.example.com/"), false).unwrap();
        let m = manifest(&delivery, "/powerpole").unwrap();
        assert_eq!(m["features"]["slash_commands"][0]["url"], "https://pp.example.com/slack/commands");
        assert_eq!(m["settings"]["interactivity"]["request_url"], "https://pp.example.com/slack/interactions");
        assert_eq!(m["settings"]["event_subscriptions"]["request_url"], "https://pp.example.com/slack/events");
        assert_eq!(m["settings"]["socket_mode_enabled"], false);
    }

    #[test]
    fn socket_mode_has_no_request_urls() {
        let m = manifest(&Delivery::parse(None, true).unwrap(), "/powerpole").unwrap();
        assert_eq!(m["settings"]["socket_mode_enabled"], true);
        assert!(m["features"]["slash_commands"][0].get("url").is_none());
        assert!(m["settings"]["interactivity"].get("request_url").is_none());
        assert!(m["settings"]["event_subscriptions"].get("request_url").is_none());
        assert_eq!(m["settings"]["interactivity"]["is_enabled"], true);
    }

    #[test]
    fn bad_base_urls_are_refused_with_what_to_give() {
        assert_eq!(Delivery::parse(Some("http://pp.example.com"), false), Err(ManifestError::NotHttps("http://pp.example.com".into())));
        assert!(matches!(Delivery::parse(Some("pp.example.com"), false), Err(ManifestError::NotAUrl(_))));
        assert!(matches!(Delivery::parse(Some("https://pp.example.com/?a=b"), false), Err(ManifestError::HasQuery(_))));
        assert_eq!(Delivery::parse(None, false), Err(ManifestError::NoDelivery));
        assert!(manifest(&Delivery::Socket, "powerpole").is_err());
    }

    #[test]
    fn scopes_are_sorted_unique_and_include_the_features() {
        let scopes = bot_scopes();
        let mut sorted = scopes.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(scopes, sorted);
        assert!(scopes.contains(&"commands") && scopes.contains(&"chat:write") && scopes.contains(&"users:read.email"));
    }
}
