//! What people do in a schedule: ask, approve, deny, end, revoke, ask for more time, decide it,
//! click cards that are no longer current, and break the glass; and what an operator does: kill a
//! replica, or leave a stray bastion or account behind for reconcile to find. Each action runs on
//! whichever replica the click reaches.
//!
//! People remember what they did and when ([`Truth`]): what they asked for, when they first
//! clicked Approve, which extensions they were told were granted, when they ended or revoked. The
//! invariants compare the world with this ground truth, not with the workflow's own records.

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
    /// A requester takes access at once (only U0DAVE is in the on-call group: Alice is refused).
    BreakGlass { who: usize, minutes: u64 },
    /// An operator's leftover: a bastion (`account: false`) or an account no session owns.
    PlantStray { account: bool },
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
            Action::BreakGlass { who, minutes } => write!(f, "{} breaks the glass for {minutes}m", REQUESTERS[*who]),
            Action::PlantStray { account: true } => write!(f, "an operator leaves a stray account"),
            Action::PlantStray { account: false } => write!(f, "an operator leaves a stray bastion"),
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

/// Break-glass and planted strays, drawn from a stream of their own (`extra`): about one schedule
/// in three breaks the glass, and one in four leaves a stray behind.
pub fn plan_extra(extra: &mut Rng, window: Duration) -> Vec<(Duration, Action)> {
    let mut out = Vec::new();
    let at = |rng: &mut Rng| Duration::from_millis(rng.below(window.as_millis() as u64 * 2 / 3));
    if extra.chance(350) {
        let (when, who, minutes) = (at(extra), usize::from(extra.chance(800)), extra.between(2, 8) as u64);
        out.push((when, Action::BreakGlass { who, minutes }));
    }
    if extra.chance(250) {
        let (when, account) = (at(extra), extra.chance(500));
        out.push((when, Action::PlantStray { account }));
    }
    out
}

/// What one person saw of one session: the ground truth the invariants hold the world to.
#[derive(Debug, Clone, Default)]
pub struct Truth {
    /// The minutes asked for (and approved as asked).
    pub minutes: u64,
    #[allow(dead_code)]
    pub breakglass: bool,
    /// When an approver first clicked Approve (or the requester broke the glass).
    pub first_approve: Option<Duration>,
    /// When the person asked (an auto-approved request is approved by that click alone).
    pub asked_at: Option<Duration>,
    /// When someone first clicked End or Revoke, whatever the answer.
    pub first_cut: Option<Duration>,
    /// When an End or Revoke was first answered "done".
    pub cut_done: Option<Duration>,
    /// The extension last asked for and accepted as asked.
    pub asked: Option<u64>,
    /// Extension minutes the approvers were told they granted.
    pub extended: u64,
    /// Extension minutes the approvers clicked to grant, whatever the answer (an answer lost
    /// after the write leaves the person thinking it failed).
    pub maybe_extended: u64,
    pub extend_clicked: bool,
}

impl Truth {
    /// Since when the session may be used by a person's decision: the first Approve click (or
    /// the break-glass), or, for a session the policy auto-approved, the request itself.
    pub fn approved_from(&self, session: &crate::domain::Session) -> Option<Duration> {
        match session.auto_approved {
            // Approved when asked; a later click on its card changes nothing.
            Some(_) => self.asked_at.or(self.first_approve),
            None => self.first_approve,
        }
    }
}

/// What an operator left behind.
#[derive(Debug, Clone)]
pub enum Stray {
    Account { user: String, host: String },
    Instance { id: String },
}

/// What people remember: the sessions they filed, every extension card they saw, what each
/// session was granted, and the strays an operator left.
#[derive(Default)]
pub struct People {
    sessions: Vec<SessionId>,
    cards: BTreeMap<SessionId, Vec<String>>,
    pub truth: BTreeMap<SessionId, Truth>,
    pub strays: Vec<Stray>,
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
    let now = world.time.now();
    let note = |id: &SessionId, f: &dyn Fn(&mut Truth)| f(lock(&people).truth.entry(id.clone()).or_default());
    match action {
        Action::Request { who, minutes } => {
            let id = {
                let mut p = lock(&people);
                let id = SessionId::derived_from(&format!("sim-request-{}", p.sessions.len()));
                p.sessions.push(id.clone());
                p.truth.insert(id.clone(), Truth { minutes, asked_at: Some(now), ..Truth::default() });
                id
            };
            // One request in nine is for DDL (Dave's are refused by eligibility); Alice's READs of
            // up to 5m are auto-approved while she holds no other auto-approved session.
            let role = if minutes == 10 { "DDL" } else { "READ" };
            if let Ok(draft) = wf.check_request("billing", role, &format!("{minutes}m"), "INC-1 simulated") {
                let _ = wf.request(notifier, id, &user(REQUESTERS[who]), draft).await;
            }
        }
        Action::BreakGlass { who, minutes } => {
            let id = {
                let mut p = lock(&people);
                let id = SessionId::derived_from(&format!("sim-request-{}", p.sessions.len()));
                p.sessions.push(id.clone());
                p.truth.insert(id.clone(), Truth { minutes, breakglass: true, first_approve: Some(now), ..Truth::default() });
                id
            };
            if let Ok(draft) = crate::workflow::check_breakglass(&world.config, "billing", "READ", &format!("{minutes}m"), "INC-2 on fire") {
                let _ = wf.breakglass(notifier, id, &user(REQUESTERS[who]), draft).await;
            }
        }
        Action::Approve { session: n, who } | Action::StaleApprove { session: n, who } => {
            if let Some(id) = session(n) {
                note(&id, &|t| {
                    t.first_approve.get_or_insert(now);
                });
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
                    note(&id, &|t| {
                        t.first_cut.get_or_insert(now);
                    });
                    if wf.end(notifier, &s.requester.slack_id, &id).await.is_ok() {
                        let done = world.time.now();
                        note(&id, &|t| {
                            t.cut_done.get_or_insert(done);
                        });
                    }
                }
            }
        }
        Action::Revoke { session: n, who } => {
            if let Some(id) = session(n) {
                note(&id, &|t| {
                    t.first_cut.get_or_insert(now);
                });
                if wf.revoke(notifier, &user(APPROVERS[who]), &id, "simulated revoke").await.is_ok() {
                    let done = world.time.now();
                    note(&id, &|t| {
                        t.cut_done.get_or_insert(done);
                    });
                }
            }
        }
        Action::Extend { session: n, minutes } => {
            let Some(id) = session(n) else { return };
            let Some(s) = world.store.all().into_iter().find(|s| s.id == id) else { return };
            let Ok(by) = AccessDuration::from_minutes(minutes) else { return };
            if wf.extend_request(notifier, &s.requester.slack_id, &id, by).await.is_ok() {
                note(&id, &|t| t.asked = Some(minutes));
            }
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
            if approve {
                // Any extension the requester ever asked for may be the one this click grants.
                note(&id, &|t| {
                    t.extend_clicked = true;
                    t.maybe_extended += 5;
                });
            }
            let granted = wf.decide_extension(notifier, &user(APPROVERS[who]), &id, approve, card).await.is_ok();
            if approve && granted {
                note(&id, &|t| t.extended += t.asked.unwrap_or(0));
            }
        }
        Action::PlantStray { account } => plant(&world, &people, account).await,
        Action::Crash { .. } => {}
    }
}

/// An operator's leftover, made straight in the world (no fault injected): an account on
/// `billing` for a user no session has, or a bastion tagged with a session that does not exist.
async fn plant(world: &Arc<World>, people: &Arc<Mutex<People>>, account: bool) {
    use crate::bastion::Bastions;
    use crate::grants::Grants;
    let node = crate::memory::Node::new("operator", crate::memory::Faults::none(world.time.clone()));
    let Some(target) = world.config.targets.values().next().cloned() else { return };
    let n = lock(people).strays.len();
    if account {
        let (Ok(db_user), host) = (crate::domain::DbUsername::parse(&format!("stray{n}")), format!("10.9.0.{}", n + 1)) else { return };
        let grants = crate::memory::MemGrants::new(world.grants.clone(), node);
        let request = crate::grants::AccountRequest { earlier_attempt: false, user: db_user.clone(), host: host.clone(), role: crate::domain::Role::Read };
        if grants.create_account(&target, &request).await.is_ok() {
            lock(people).strays.push(Stray::Account { user: db_user.to_string(), host });
        }
    } else {
        let bastions = crate::memory::MemBastions::new(world.bastions.clone(), node);
        let id = SessionId::derived_from(&format!("sim-stray-{n}"));
        let spec = crate::bastion::LaunchSpec::new(id, user("U0MALLORY"), "mallory@example.com", &target);
        if let Ok(instance) = bastions.launch(&spec).await {
            lock(people).strays.push(Stray::Instance { id: instance.id });
        }
    }
}
