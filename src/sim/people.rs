//! What people do in a schedule: ask, approve, deny, end, revoke, ask for more time, decide it,
//! and click cards that are no longer current. Each action runs on whichever replica the click
//! reaches; its answer (accepted or refused) does not matter to the invariants.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::rng::Rng;
use super::World;
use crate::domain::{AccessDuration, SessionId, SlackUserId};
use crate::memory::lock;
use crate::notify::Posted;
use crate::workflow::Lifecycle;

const REQUESTERS: [&str; 2] = ["U0ALICE", "U0DAVE"];
const APPROVERS: [&str; 2] = ["U0BOB", "U0CAROL"];

/// One thing a person (or the operator's kill) does.
#[derive(Debug, Clone)]
pub enum Action {
    Request { who: usize, minutes: u64 },
    Approve { session: usize, who: usize },
    Deny { session: usize, who: usize },
    End { session: usize },
    Revoke { session: usize, who: usize },
    Extend { session: usize, minutes: u64 },
    /// `stale`: click the oldest extension card of the session instead of the newest.
    DecideExtension { session: usize, who: usize, approve: bool, stale: bool },
    /// An approval click on a card of a request that is long decided.
    StaleApprove { session: usize, who: usize },
    Crash { replica: usize },
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Request { who, minutes } => write!(f, "{} requests {minutes}m", REQUESTERS[*who]),
            Action::Approve { session, who } => write!(f, "{} approves request #{session}", APPROVERS[*who]),
            Action::Deny { session, who } => write!(f, "{} denies request #{session}", APPROVERS[*who]),
            Action::End { session } => write!(f, "requester ends #{session}"),
            Action::Revoke { session, who } => write!(f, "{} revokes #{session}", APPROVERS[*who]),
            Action::Extend { session, minutes } => write!(f, "requester of #{session} asks for {minutes}m more"),
            Action::DecideExtension { session, who, approve, stale } => write!(
                f,
                "{} {} the extension of #{session} on its {} card",
                APPROVERS[*who],
                if *approve { "approves" } else { "denies" },
                if *stale { "oldest" } else { "newest" }
            ),
            Action::StaleApprove { session, who } => write!(f, "{} clicks approve on the old card of #{session}", APPROVERS[*who]),
            Action::Crash { replica } => write!(f, "replica {replica} is killed"),
        }
    }
}

/// A random schedule of 4 to 16 actions within `window`.
pub fn plan(rng: &mut Rng, window: Duration, replicas: usize) -> Vec<(Duration, Action)> {
    let count = rng.between(4, 16) as usize;
    let mut requests = 0usize;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let at = Duration::from_millis(rng.below(window.as_millis() as u64 * 2 / 3));
        out.push((at, ()));
    }
    out.sort_by_key(|(at, _)| *at);
    out.into_iter()
        .map(|(at, ())| {
            let session = rng.below(requests.max(1) as u64) as usize;
            let who = rng.below(2) as usize;
            let action = match rng.below(100) {
                _ if requests == 0 => Action::Request { who, minutes: rng.between(2, 10) as u64 },
                0..=19 => Action::Request { who, minutes: rng.between(2, 10) as u64 },
                20..=37 => Action::Approve { session, who },
                38..=41 => Action::Deny { session, who },
                42..=54 => Action::End { session },
                55..=61 => Action::Revoke { session, who },
                62..=71 => Action::Extend { session, minutes: rng.between(1, 5) as u64 },
                72..=84 => Action::DecideExtension { session, who, approve: rng.chance(700), stale: rng.chance(400) },
                85..=91 => Action::StaleApprove { session, who },
                _ => Action::Crash { replica: rng.below(replicas as u64) as usize },
            };
            if matches!(action, Action::Request { .. }) {
                requests += 1;
            }
            (at, action)
        })
        .collect()
}

/// What people remember: the sessions they filed, and every extension card they saw.
#[derive(Default)]
pub struct People {
    sessions: Vec<SessionId>,
    cards: BTreeMap<SessionId, Vec<String>>,
}

fn user(id: &str) -> SlackUserId {
    SlackUserId::parse(id).expect("the simulator's user ids are valid")
}

/// Runs one action on `lifecycle`'s replica.
pub async fn act(world: Arc<World>, lifecycle: Lifecycle, people: Arc<Mutex<People>>, action: Action) {
    let wf = &lifecycle.workflow;
    let notifier = lifecycle.notifier.as_ref();
    let session = |n: usize| lock(&people).sessions.get(n).cloned();
    let approvals = world.config.targets.values().next().map(|t| t.approvals_channel.clone()).unwrap_or_default();
    match action {
        Action::Request { who, minutes } => {
            let id = {
                let mut p = lock(&people);
                let id = SessionId::derived_from(&format!("sim-request-{}", p.sessions.len()));
                p.sessions.push(id.clone());
                id
            };
            // One request in nine is for DDL (Dave's are refused by eligibility); Alice's READs of
            // up to 5m are auto-approved while she holds no other auto-approved session.
            let role = if minutes == 10 { "DDL" } else { "READ" };
            if let Ok(draft) = wf.check_request("billing", role, &format!("{minutes}m"), "INC-1 simulated") {
                let _ = wf.request(notifier, id, &user(REQUESTERS[who]), draft).await;
            }
        }
        Action::Approve { session: n, who } | Action::StaleApprove { session: n, who } => {
            if let Some(id) = session(n) {
                let _ = wf.approve(notifier, &user(APPROVERS[who]), &id, None).await;
            }
        }
        Action::Deny { session: n, who } => {
            if let Some(id) = session(n) {
                let _ = wf.deny(notifier, &user(APPROVERS[who]), &id, "not now", None).await;
            }
        }
        Action::End { session: n } => {
            if let Some(id) = session(n) {
                if let Some(s) = world.store.all().into_iter().find(|s| s.id == id) {
                    let _ = wf.end(notifier, &s.requester.slack_id, &id).await;
                }
            }
        }
        Action::Revoke { session: n, who } => {
            if let Some(id) = session(n) {
                let _ = wf.revoke(notifier, &user(APPROVERS[who]), &id, "simulated revoke").await;
            }
        }
        Action::Extend { session: n, minutes } => {
            let Some(id) = session(n) else { return };
            let Some(s) = world.store.all().into_iter().find(|s| s.id == id) else { return };
            let Ok(by) = AccessDuration::from_minutes(minutes) else { return };
            let _ = wf.extend_request(notifier, &s.requester.slack_id, &id, by).await;
            // The approvers see every extension card posted for the session.
            let approval_card = s.slack.approval_ts.clone();
            let posted: Vec<String> = world
                .slack
                .messages()
                .into_iter()
                .filter(|m| m.channel == approvals && Some(&m.ts) != approval_card.as_ref())
                .filter(|m| m.versions.first().is_some_and(|t| t.contains(id.as_str())))
                .map(|m| m.ts)
                .collect();
            lock(&people).cards.insert(id, posted);
        }
        Action::DecideExtension { session: n, who, approve, stale } => {
            let Some(id) = session(n) else { return };
            let card = {
                let p = lock(&people);
                let cards = p.cards.get(&id);
                if stale { cards.and_then(|c| c.first().cloned()) } else { cards.and_then(|c| c.last().cloned()) }
            };
            let card = card.map(|ts| Posted { channel: approvals.clone(), ts });
            let _ = wf.decide_extension(notifier, &user(APPROVERS[who]), &id, approve, card).await;
        }
        Action::Crash { .. } => {}
    }
}
