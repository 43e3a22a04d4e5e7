//! Slack in memory: every post and DM with the history of its updates (a deleted message is
//! gone); profiles derived from the user id; user groups as set in [`SlackWorld::groups`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{lock, Injected, Node};
use crate::domain::SlackUserId;
use crate::notify::{Message, Notifier, NotifyError, Posted, Profile, View};

/// One message and every version of it (the first as posted, the last as it reads now).
#[derive(Debug, Clone)]
pub struct SentMessage {
    pub channel: String,
    pub ts: String,
    /// The user of a DM.
    pub dm_to: Option<String>,
    pub versions: Vec<String>,
    /// When it was posted (time since the world started).
    pub posted_at: std::time::Duration,
}

impl SentMessage {
    pub fn now_reads(&self) -> &str {
        self.versions.last().map(String::as_str).unwrap_or("")
    }
}

/// The workspace, shared by every node.
#[derive(Default)]
pub struct SlackWorld {
    messages: Mutex<BTreeMap<(String, String), SentMessage>>,
    /// While set, every call fails as if Slack could not be reached (an outage).
    pub down: std::sync::atomic::AtomicBool,
    /// Messages posted (or updated) per channel per second before Slack answers `ratelimited`
    /// (Slack's chat.postMessage allows about one per second per channel); 0: no limit.
    pub per_channel_per_sec: std::sync::atomic::AtomicU32,
    /// Calls per channel in the current second, for the limit.
    window: Mutex<BTreeMap<String, (u64, u32)>>,
    /// Messages ever posted (the next `ts`).
    sent: std::sync::atomic::AtomicU64,
    /// Calls refused with `ratelimited` (for tests and the benchmark).
    pub rate_limited: std::sync::atomic::AtomicU64,
    /// User groups and their members (`usergroups.users.list`); a group not here is empty.
    pub groups: Mutex<BTreeMap<String, Vec<SlackUserId>>>,
}

impl SlackWorld {
    pub fn new() -> Arc<SlackWorld> {
        Arc::new(SlackWorld::default())
    }

    /// Every message, in the order sent.
    pub fn messages(&self) -> Vec<SentMessage> {
        let mut all: Vec<SentMessage> = lock(&self.messages).values().cloned().collect();
        all.sort_by_key(|m| m.ts.parse::<u64>().unwrap_or(0));
        all
    }

    /// Counts a call on `channel` at `now`; `Err` when it is over the per-channel limit.
    fn admit(&self, method: &'static str, channel: &str, now: std::time::Duration) -> Result<(), NotifyError> {
        use std::sync::atomic::Ordering;
        if self.down.load(Ordering::SeqCst) {
            return Err(NotifyError::Unreachable { method, reason: "Slack is down (simulated outage)".into() });
        }
        let limit = self.per_channel_per_sec.load(Ordering::SeqCst);
        if limit == 0 || channel.is_empty() {
            return Ok(());
        }
        let second = now.as_secs();
        let mut window = lock(&self.window);
        let slot = window.entry(channel.to_string()).or_insert((second, 0));
        if slot.0 != second {
            *slot = (second, 0);
        }
        if slot.1 >= limit {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
            return Err(NotifyError::RateLimited { method, attempts: 1, retry_after_secs: 1 });
        }
        slot.1 += 1;
        Ok(())
    }

    fn send(&self, channel: String, dm_to: Option<String>, text: String, posted_at: std::time::Duration) -> Posted {
        let mut messages = lock(&self.messages);
        // Never reused, deletions or not.
        let ts = format!("{}", self.sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1);
        messages.insert((channel.clone(), ts.clone()), SentMessage { channel: channel.clone(), ts: ts.clone(), dm_to, versions: vec![text], posted_at });
        Posted { channel, ts }
    }
}

/// One node's Slack client.
#[derive(Clone)]
pub struct MemNotifier {
    pub world: Arc<SlackWorld>,
    pub node: Node,
}

impl MemNotifier {
    pub fn new(world: Arc<SlackWorld>, node: Node) -> MemNotifier {
        MemNotifier { world, node }
    }

    async fn call<T>(&self, method: &'static str, channel: &str, effect: impl FnOnce(&SlackWorld) -> Result<T, NotifyError>) -> Result<T, NotifyError> {
        let world = self.world.clone();
        let now = self.node.time().now();
        match self.node.call(move || world.admit(method, channel, now).and_then(|()| effect(&world))).await {
            Ok(done) => done,
            Err(Injected::Error) => Err(NotifyError::Refused { method, code: "internal_error".into() }),
            Err(e @ Injected::Timeout) => Err(NotifyError::Unreachable { method, reason: e.to_string() }),
        }
    }
}

#[async_trait]
impl Notifier for MemNotifier {
    async fn post(&self, channel: &str, message: &Message) -> Result<Posted, NotifyError> {
        let (channel, text, time) = (channel.to_string(), message.readable(), self.node.time().clone());
        self.call("chat.postMessage", &channel.clone(), move |w| Ok(w.send(channel, None, text, time.now()))).await
    }

    async fn update(&self, at: &Posted, message: &Message) -> Result<(), NotifyError> {
        let (k, text) = ((at.channel.clone(), at.ts.clone()), message.readable());
        self.call("chat.update", &at.channel, move |w| match lock(&w.messages).get_mut(&k) {
            Some(m) => {
                m.versions.push(text);
                Ok(())
            }
            None => Err(NotifyError::Refused { method: "chat.update", code: "message_not_found".into() }),
        })
        .await
    }

    async fn dm(&self, user: &SlackUserId, message: &Message) -> Result<Posted, NotifyError> {
        let (user, text, time) = (user.to_string(), message.readable(), self.node.time().clone());
        self.call("chat.postMessage", &format!("D-{user}"), move |w| Ok(w.send(format!("D-{user}"), Some(user), text, time.now()))).await
    }

    /// `since` is not modelled: every DM with `user` is searched.
    async fn find_dms(&self, user: &SlackUserId, _since: Option<chrono::DateTime<chrono::Utc>>, containing: &str) -> Result<Vec<Posted>, NotifyError> {
        let (channel, containing) = (format!("D-{user}"), containing.to_string());
        self.call("conversations.history", "", move |w| {
            let mut found: Vec<Posted> =
                lock(&w.messages).values().filter(|m| m.channel == channel && m.now_reads().contains(&containing)).map(|m| Posted { channel: m.channel.clone(), ts: m.ts.clone() }).collect();
            found.sort_by_key(|p| std::cmp::Reverse(p.ts.parse::<u64>().unwrap_or(0)));
            Ok(found)
        })
        .await
    }

    async fn delete(&self, at: &Posted) -> Result<(), NotifyError> {
        let k = (at.channel.clone(), at.ts.clone());
        self.call("chat.delete", &at.channel, move |w| {
            lock(&w.messages).remove(&k);
            Ok(())
        })
        .await
    }

    async fn respond(&self, _response_url: &str, _message: &Message) -> Result<(), NotifyError> {
        self.call("response_url", "", |_| Ok(())).await
    }

    async fn open_view(&self, _trigger_id: &str, _view: &View) -> Result<(), NotifyError> {
        self.call("views.open", "", |_| Ok(())).await
    }

    async fn publish_view(&self, _user: &SlackUserId, _view: &View) -> Result<(), NotifyError> {
        self.call("views.publish", "", |_| Ok(())).await
    }

    async fn profile(&self, user: &SlackUserId) -> Result<Profile, NotifyError> {
        let email = format!("{}@example.com", user.as_str().to_ascii_lowercase());
        self.call("users.info", "", move |_| Ok(Profile { email: Some(email), tz: None })).await
    }

    async fn group_members(&self, group: &str) -> Result<Vec<SlackUserId>, NotifyError> {
        let group = group.to_string();
        self.call("usergroups.users.list", "", move |w| Ok(lock(&w.groups).get(&group).cloned().unwrap_or_default())).await
    }
}
