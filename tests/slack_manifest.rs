//! `powerpole slack manifest` asks for exactly the bot scopes of the Web API methods the code
//! calls. The methods are read from the source, not from a list beside this test: a new call
//! without its scope (or a scope no call needs any more) fails here.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use powerpole::slack::manifest::{scopes_of, FEATURE_SCOPES, WEB_API_METHODS};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((path.display().to_string(), std::fs::read_to_string(&path).expect("read a source file")));
        }
    }
}

/// The string literal right after `marker` on `line`, if any.
fn literal_after<'a>(line: &'a str, marker: &str) -> Vec<&'a str> {
    line.match_indices(marker).filter_map(|(at, _)| line[at + marker.len()..].split('"').next()).collect()
}

/// `chat.postMessage` -> `chatpostmessage`, `chat_post_message` -> `chatpostmessage`.
fn squashed(name: &str) -> String {
    name.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect()
}

/// The Web API methods the code calls with the bot token: every `retrying("method", ..)` (the one
/// way slack-morphism calls are made) and every `const METHOD: &str = "..."` (a direct call).
/// Also checks that every slack-morphism call (`session.some_method(`) is wrapped in a
/// `retrying` naming that same method, so no call can hide from this scan.
fn methods_called() -> BTreeSet<String> {
    let mut files = Vec::new();
    sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    let mut methods = BTreeSet::new();
    for (path, text) in &files {
        // Only slack-morphism sessions (`client.open_session(..)`) call the Web API.
        let has_sessions = text.contains(".open_session(");
        for (n, line) in text.lines().enumerate() {
            let named: Vec<&str> = literal_after(line, "retrying(\"").into_iter().chain(literal_after(line, "const METHOD: &str = \"")).collect();
            for call in line.match_indices("session.").filter(|_| has_sessions).filter_map(|(at, _)| line[at + "session.".len()..].split('(').next()) {
                if call.chars().all(|c| c.is_ascii_lowercase() || c == '_') && call.contains('_') {
                    assert!(
                        named.iter().any(|m| squashed(m) == squashed(call)),
                        "{path}:{}: `session.{call}(` is not wrapped in `retrying(\"<its Slack method>\", ..)`; wrap it so its scope is checked",
                        n + 1
                    );
                }
            }
            methods.extend(named.into_iter().filter(|m| *m != "response_url").map(str::to_string));
        }
    }
    methods
}

fn manifest_scopes(args: &[&str]) -> BTreeSet<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_powerpole")).args(["slack", "manifest"]).args(args).output().expect("run powerpole");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the manifest is JSON");
    manifest["oauth_config"]["scopes"]["bot"].as_array().expect("bot scopes").iter().map(|s| s.as_str().expect("a scope").to_string()).collect()
}

#[test]
fn the_manifest_grants_every_scope_the_code_needs_and_no_other() {
    let called = methods_called();
    assert!(called.contains("chat.postMessage") && called.contains("users.info"), "the scan found too little: {called:?}");
    let listed: BTreeSet<String> = WEB_API_METHODS.iter().map(|m| m.method.to_string()).collect();
    let unlisted: Vec<&String> = called.difference(&listed).collect();
    assert!(unlisted.is_empty(), "the code calls {unlisted:?}, which src/slack/manifest.rs does not list with its scopes");
    let stale: Vec<&String> = listed.difference(&called).collect();
    assert!(stale.is_empty(), "src/slack/manifest.rs lists {stale:?}, which the code no longer calls: remove them (and their scopes)");

    let mut needed: BTreeSet<String> = called.iter().flat_map(|m| scopes_of(m).unwrap_or_default().iter().map(|s| s.to_string())).collect();
    needed.extend(FEATURE_SCOPES.iter().map(|(s, _)| s.to_string()));
    for args in [&["--base-url", "https://pp.example.com"][..], &["--socket-mode"][..]] {
        assert_eq!(manifest_scopes(args), needed, "manifest {args:?}");
    }
}

#[test]
fn the_manifest_subscribes_to_what_the_service_serves() {
    let out = Command::new(env!("CARGO_BIN_EXE_powerpole")).args(["slack", "manifest", "--base-url", "https://pp.example.com/", "--command", "/pp"]).output().expect("run powerpole");
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the manifest is JSON");
    assert_eq!(manifest["features"]["slash_commands"][0]["command"], "/pp");
    assert_eq!(manifest["features"]["slash_commands"][0]["url"], "https://pp.example.com/slack/commands");
    assert_eq!(manifest["settings"]["interactivity"]["request_url"], "https://pp.example.com/slack/interactions");
    assert_eq!(manifest["settings"]["event_subscriptions"]["request_url"], "https://pp.example.com/slack/events");
    let events = manifest["settings"]["event_subscriptions"]["bot_events"].as_array().expect("events");
    assert!(events.contains(&"app_home_opened".into()) && events.contains(&"app_mention".into()), "{events:?}");
    assert_eq!(manifest["features"]["app_home"]["messages_tab_enabled"], true, "DMs need the Messages tab");
}

#[test]
fn a_plain_http_base_url_is_refused_with_what_to_do() {
    let out = Command::new(env!("CARGO_BIN_EXE_powerpole")).args(["slack", "manifest", "--base-url", "http://pp.example.com"]).output().expect("run powerpole");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("must be https"), "{}", String::from_utf8_lossy(&out.stderr));
}
