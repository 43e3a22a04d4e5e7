//! What must hold after every schedule, checked on the world once it is quiet.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use std::time::Duration;

use super::people::{People, Stray, Truth};
use super::{World, ACTIVE, SKEW_BOUND, USABLE_BOUND};
use crate::domain::{AuditKind, Session, State};

/// The work the schedule did: counted from the world and the trails.
pub fn coverage(world: &World, people: &People) -> super::Coverage {
    let sessions = world.store.all();
    let instances = world.bastions.instances();
    let accounts = world.grants.lives();
    let mut c = super::Coverage::default();
    for s in &sessions {
        let kinds: Vec<AuditKind> = world.store.trail(&s.id).iter().map(|r| r.event.kind).collect();
        let count = |k: AuditKind| kinds.iter().filter(|x| **x == k).count() as u64;
        c.handovers += u64::from(!handover_dms(world, s).is_empty());
        c.expiries += count(AuditKind::Expired);
        c.ends += count(AuditKind::Ended);
        c.revokes += count(AuditKind::Revoked);
        c.extensions += count(AuditKind::Extended);
        c.breakglass += count(AuditKind::BreakGlass);
        let approved_from = people.truth.get(&s.id).and_then(|t| t.approved_from(s));
        if instances.iter().any(|i| i.session == s.id && approved_from.is_none_or(|a| i.launched < a)) && s.breakglass.is_none() {
            c.launched_on_request += 1;
        }
    }
    c.stray_schedules = u64::from(!people.strays.is_empty());
    for stray in &people.strays {
        let gone = match stray {
            Stray::Account { user, host } => accounts.iter().any(|l| &l.user == user && &l.host == host && l.dropped.is_some()),
            Stray::Instance { id } => instances.iter().any(|i| &i.id == id && i.terminated),
        };
        c.reconcile_removals += u64::from(gone);
    }
    c
}

/// The hand-over DMs the requester of `s` got (the "ready" message), however they read now.
fn handover_dms(world: &World, s: &Session) -> Vec<crate::memory::SentMessage> {
    let (dm, marker) = (format!("D-{}", s.requester.slack_id), crate::notify::messages::ready_marker(s));
    world.slack.messages().into_iter().filter(|m| m.channel == dm && m.versions.first().is_some_and(|v| v.contains(&marker))).collect()
}

/// Every violation, one sentence each.
pub fn check(world: &World, people: &People, crashed: bool) -> Vec<String> {
    let sessions = world.store.all();
    let mut out = Vec::new();
    let instances = world.bastions.instances();
    let accounts = world.grants.accounts();
    let by_ip: BTreeMap<String, &Session> = instances
        .iter()
        .filter_map(|i| sessions.iter().find(|s| s.id == i.session).map(|s| (i.ip.to_string(), s)))
        .collect();

    // After quiescence every session is closed, and nothing exists without a live session.
    for s in sessions.iter().filter(|s| !s.state.is_closed()) {
        out.push(format!("{} is still {} after the world went quiet", s.id, s.state));
    }
    for i in instances.iter().filter(|i| !i.terminated) {
        let state = sessions.iter().find(|s| s.id == i.session).map(|s| s.state.to_string()).unwrap_or_else(|| "unknown".into());
        out.push(format!("instance {} of session {} ({state}) is still running", i.id, i.session));
    }
    for a in &accounts {
        let owner = by_ip.get(&a.host).map(|s| format!("{} ({})", s.id, s.state)).unwrap_or_else(|| "no session".into());
        out.push(format!("account '{}'@'{}' of {owner} still exists", a.user, a.host));
    }

    let unknown = Truth::default();
    for s in &sessions {
        let trail = world.store.trail(&s.id);
        let truth = people.truth.get(&s.id).unwrap_or(&unknown);
        check_trail(s, &trail, &mut out);
        check_effects_match_trail(world, s, &trail, truth, &instances, &mut out);
        check_deadline(world, s, &trail, truth, &instances, &mut out);
        check_kept_until_deadline(world, s, truth, &instances, &mut out);
        check_gone_at_close(world, s, &instances, &mut out);
        check_handover(world, s, &trail, &mut out);
        check_notices(world, s, crashed, &mut out);
    }
    check_no_password_stored(world, &sessions, &mut out);
    check_identity_only_after_approval(world, people, &sessions, &instances, &mut out);
    check_policy(world, &sessions, &mut out);
    out
}

/// The policy held: nobody ineligible has a stored request; an auto-approved session names its
/// rule, had no approver, stayed within the rule's maximum, and no person held two at once.
fn check_policy(world: &World, sessions: &[Session], out: &mut Vec<String>) {
    for s in sessions {
        let Some(target) = world.config.target(&s.target) else { continue };
        if let Some((rule, who)) = crate::policy::eligibility_rule(target, s.role) {
            if who.groups.is_empty() && !who.users.contains(&s.requester.slack_id) {
                out.push(format!("{}: {} was filed for {}, whom {rule} does not allow", s.id, s.role, s.requester.slack_id));
            }
        }
        if let Some(rule) = &s.auto_approved {
            // (An extension, decided by an approver, may take it past the rule's maximum later.)
            let within = crate::policy::auto_rule(target, s.role).is_some_and(|r| &r.rule == rule);
            if !s.approvals.is_empty() || !within {
                out.push(format!("{}: auto-approved by {rule} but approved by {} person(s) or by no such rule", s.id, s.approvals.len()));
            }
            let cap = target.policy.max_auto_sessions.unwrap_or(u32::MAX) as usize;
            let (from, to) = (s.approved_at, s.closed_at);
            let overlapping = sessions
                .iter()
                .filter(|o| o.requester.slack_id == s.requester.slack_id && o.auto_approved.is_some())
                .filter(|o| o.approved_at.zip(from).is_some_and(|(a, f)| a >= f && to.is_none_or(|t| a < t)))
                .count();
            if overlapping > cap {
                out.push(format!("{}: {} auto-approved sessions of {} were live at once (cap {cap})", s.id, overlapping, s.requester.slack_id));
            }
        }
    }
}

/// Nobody may enter a bastion before its session was approved: an instance's identity tag is set
/// only after a person clicked Approve (or broke the glass) for its session, by the world's true
/// time (launch on request launches before that, untagged).
fn check_identity_only_after_approval(world: &World, people: &People, sessions: &[Session], instances: &[crate::memory::SimInstance], out: &mut Vec<String>) {
    let planted: Vec<&str> = people.strays.iter().filter_map(|s| if let Stray::Instance { id } = s { Some(id.as_str()) } else { None }).collect();
    for i in instances.iter().filter(|i| i.identity.is_some() && !planted.contains(&i.id.as_str())) {
        let session = sessions.iter().find(|s| s.id == i.session);
        let approved_from = people.truth.get(&i.session).zip(session).and_then(|(t, s)| t.approved_from(s));
        match (i.identity_at, approved_from) {
            (Some(tagged), Some(from)) if tagged >= from => {}
            (tagged, from) => out.push(format!(
                "instance {} of session {} got its identity tag at {:?}, but the first approval click was at {:?}",
                i.id,
                i.session,
                tagged.map(|t| world.utc(t)),
                from.map(|f| world.utc(f))
            )),
        }
    }
}

/// What happened and what the trail says agree: each bastion and account of a session, and each
/// hand-over DM, has its event in the session's trail (or the teardown that removed it names it),
/// and each launch, grant, hand-over, end, revoke and extension in the trail happened in the
/// world or was clicked by a person.
fn check_effects_match_trail(world: &World, s: &Session, trail: &[crate::store::AuditRecord], truth: &Truth, instances: &[crate::memory::SimInstance], out: &mut Vec<String>) {
    let has = |k: AuditKind| trail.iter().any(|r| r.event.kind == k);
    let mentions = |what: &str| trail.iter().any(|r| r.event.detail.contains(what));
    let mine: Vec<&crate::memory::SimInstance> = instances.iter().filter(|i| i.session == s.id).collect();
    // Every bastion, whether or not its session was handed over: one undone by a worker that lost
    // its claim is named by its `undone` event, one only its tag knew by the teardown that
    // recorded it before terminating it (`Fix::RecordBeforeTerminate`).
    for i in &mine {
        if !has(AuditKind::Launched) && !mentions(&i.id) {
            out.push(format!("{}: its bastion {} was launched, but no event of its trail records it", s.id, i.id));
        }
    }
    let ips: Vec<String> = mine.iter().map(|i| i.ip.to_string()).collect();
    let lives: Vec<crate::memory::AccountLife> = world.grants.lives().into_iter().filter(|l| l.user == s.requester.db_user.as_str() && ips.contains(&l.host)).collect();
    if !lives.is_empty() && !has(AuditKind::ProvisioningStarted) {
        out.push(format!("{}: an account was made for it, but its trail never started provisioning", s.id));
    }
    let dms = handover_dms(world, s);
    if has(AuditKind::Launched) && mine.is_empty() {
        out.push(format!("{}: the trail records a launch, but no bastion was ever launched for it", s.id));
    }
    if has(AuditKind::Granted) && lives.is_empty() {
        out.push(format!("{}: the trail records a grant, but no account was ever made for it", s.id));
    }
    if has(AuditKind::HandedOver) && dms.is_empty() {
        out.push(format!("{}: the trail records a hand-over, but its requester got no hand-over DM that still exists", s.id));
    }
    if !dms.is_empty() && !has(AuditKind::HandedOver) && s.state == State::Closed(crate::domain::Outcome::Expired) {
        out.push(format!("{}: its requester got a hand-over DM, but the trail of the expired session records no hand-over", s.id));
    }
    if has(AuditKind::Ended) && truth.first_cut.is_none() {
        out.push(format!("{}: the trail records an end nobody asked for", s.id));
    }
    if has(AuditKind::Revoked) && truth.first_cut.is_none() {
        out.push(format!("{}: the trail records a revoke nobody clicked", s.id));
    }
    if has(AuditKind::Extended) && !truth.extend_clicked {
        out.push(format!("{}: the trail records an extension nobody approved", s.id));
    }
    // An auto-approval is approved by the request itself (`check_policy` holds it to its rule).
    if has(AuditKind::Approved) && truth.approved_from(s).is_none() {
        out.push(format!("{}: the trail records an approval nobody clicked", s.id));
    }
}

/// The trail starts with the request, is numbered in order, and says how the session ended.
fn check_trail(s: &Session, trail: &[crate::store::AuditRecord], out: &mut Vec<String>) {
    if !matches!(trail.first().map(|r| r.event.kind), Some(AuditKind::Requested | AuditKind::BreakGlass)) {
        out.push(format!("{}: the trail does not start with the request (or the break-glass)", s.id));
    }
    if trail.windows(2).any(|w| w[0].seq >= w[1].seq) {
        out.push(format!("{}: the trail is out of order", s.id));
    }
    let kinds: Vec<AuditKind> = trail.iter().map(|r| r.event.kind).collect();
    let has = |k: AuditKind| kinds.contains(&k);
    if has(AuditKind::HandedOver) && !(has(AuditKind::Launched) && has(AuditKind::Granted)) {
        out.push(format!("{}: handed over without a launch and a grant in the trail", s.id));
    }
    if let State::Closed(_) = s.state {
        // What a worker undid after the close is appended after it (`undone`).
        let last = kinds.iter().rev().find(|k| **k != AuditKind::Undone).copied();
        // Revoked closes an approved session that never started provisioning.
        let closing = [AuditKind::TornDown, AuditKind::Denied, AuditKind::PendingTimedOut, AuditKind::Cancelled, AuditKind::Revoked];
        if !last.is_some_and(|k| closing.contains(&k)) {
            out.push(format!("{}: closed, but the trail ends with {:?}", s.id, last));
        }
        if has(AuditKind::ProvisioningStarted) && !has(AuditKind::TornDown) {
            out.push(format!("{}: provisioning started but the trail has no teardown", s.id));
        }
    }
}

/// The latest a session's access may end, from what its people saw: the last hand-over DM it got,
/// plus the minutes asked for and every extension an approver clicked to grant; or the moment an
/// End or Revoke was answered "done", if sooner. `None` when nobody was handed anything.
fn latest_deadline(world: &World, s: &Session, truth: &Truth) -> Option<Duration> {
    let handed = handover_dms(world, s).iter().map(|m| m.posted_at).max()?;
    let expiry = handed + Duration::from_secs(60 * (truth.minutes + truth.maybe_extended));
    Some(truth.cut_done.map_or(expiry, |cut| cut.min(expiry)))
}

/// The earliest a session's access may end, from what its people saw: its first account's
/// creation plus the minutes asked for and the extensions approvers were told they granted; or the
/// first End or Revoke click, if sooner.
fn earliest_deadline(created: Duration, truth: &Truth) -> Duration {
    let expiry = created + Duration::from_secs(60 * (truth.minutes + truth.extended));
    truth.first_cut.map_or(expiry, |cut| cut.min(expiry))
}

/// No account outlives its session's deadline (from ground truth) by more than the bound. A
/// session whose teardown failed (faults, retried with backoff) has until the bound after the
/// faults stopped, if that is later.
fn check_deadline(world: &World, s: &Session, trail: &[crate::store::AuditRecord], truth: &Truth, instances: &[crate::memory::SimInstance], out: &mut Vec<String>) {
    let Some(deadline) = latest_deadline(world, s, truth) else { return };
    let failed = trail.iter().any(|r| matches!(r.event.kind, AuditKind::TeardownFailed | AuditKind::Failed));
    let by = if failed { deadline.max(ACTIVE) } else { deadline } + USABLE_BOUND;
    let ips: Vec<String> = instances.iter().filter(|i| i.session == s.id).map(|i| i.ip.to_string()).collect();
    for life in world.grants.lives().iter().filter(|l| l.user == s.requester.db_user.as_str() && ips.contains(&l.host)) {
        if life.dropped.is_none_or(|g| g > by) {
            out.push(format!(
                "{}: account '{}'@'{}' (created {}) usable until {:?}, past its deadline {} (asked {}m, extensions up to {}m, cut {:?}) + {USABLE_BOUND:?}",
                s.id,
                life.user,
                life.host,
                world.utc(life.created),
                life.dropped.map(|d| world.utc(d)),
                world.utc(deadline),
                truth.minutes,
                truth.maybe_extended,
                truth.cut_done.map(|c| world.utc(c))
            ));
        }
    }
}

/// The workflow removes what a session made by the time it closes, on its own: reconcile (which
/// also runs in the simulator, every `reconcile_every` after a `reconcile_grace`) is the backstop
/// for what a crash leaves, not the way a session ends, so its later removals do not count here.
/// Allowed: both clocks' skew and the calls' latency.
fn check_gone_at_close(world: &World, s: &Session, instances: &[crate::memory::SimInstance], out: &mut Vec<String>) {
    let Some(closed) = s.closed_at else { return };
    let by = closed + chrono::Duration::from_std(SKEW_BOUND * 2 + CLOSE_SLACK).unwrap_or_default();
    let mine: Vec<&crate::memory::SimInstance> = instances.iter().filter(|i| i.session == s.id).collect();
    for i in &mine {
        if i.terminated_at.is_none_or(|t| world.utc(t) > by) {
            out.push(format!("{}: its bastion {} was still running when the session closed at {closed}", s.id, i.id));
        }
    }
    let hosts: Vec<String> = mine.iter().map(|i| i.ip.to_string()).chain(s.account_host.clone()).collect();
    for life in world.grants.lives().iter().filter(|l| l.user == s.requester.db_user.as_str() && hosts.contains(&l.host) && world.utc(l.created) <= closed) {
        if life.dropped.is_none_or(|d| world.utc(d) > by) {
            out.push(format!("{}: its account '{}'@'{}' still existed when the session closed at {closed}", s.id, life.user, life.host));
        }
    }
}

/// The latency of the calls between a removal and the close that follows it.
const CLOSE_SLACK: std::time::Duration = std::time::Duration::from_secs(5);

/// What a session was handed stays until its deadline (from ground truth): its account and its
/// bastion are never removed before it (by reconcile, another session's rollback or a stale
/// worker). Times are compared with both clocks' skew to spare.
fn check_kept_until_deadline(world: &World, s: &Session, truth: &Truth, instances: &[crate::memory::SimInstance], out: &mut Vec<String>) {
    if handover_dms(world, s).is_empty() {
        return;
    }
    let Some(host) = s.account_host.as_deref() else { return };
    let Some(first) = world.grants.lives().into_iter().filter(|l| l.user == s.requester.db_user.as_str() && l.host == host).min_by_key(|l| l.created) else { return };
    let deadline = earliest_deadline(first.created, truth).saturating_sub(SKEW_BOUND * 2);
    for i in instances.iter().filter(|i| s.instance_id.as_deref() == Some(i.id.as_str())) {
        if let Some(at) = i.terminated_at.filter(|t| *t < deadline) {
            out.push(format!("{}: its bastion {} was terminated at {}, before its deadline {}", s.id, i.id, world.utc(at), world.utc(deadline)));
        }
    }
    if let Some(at) = first.dropped.filter(|d| *d < deadline) {
        out.push(format!("{}: its account '{}'@'{host}' was dropped at {}, before its deadline {}", s.id, first.user, world.utc(at), world.utc(deadline)));
    }
}

/// One recorded hand-over DM per handed-over session, redacted once it ended; no other hand-over
/// DM of the session left once it closed.
fn check_handover(world: &World, s: &Session, trail: &[crate::store::AuditRecord], out: &mut Vec<String>) {
    let handed_over = trail.iter().filter(|r| r.event.kind == AuditKind::HandedOver).count();
    if handed_over > 1 {
        out.push(format!("{}: handed over {handed_over} times", s.id));
    }
    if handed_over == 1 && s.slack.handover_ts.is_none() {
        out.push(format!("{}: handed over, but no hand-over DM is recorded", s.id));
    }
    let issued = world.grants.issued();
    let dm_channel = format!("D-{}", s.requester.slack_id);
    for m in world.slack.messages().into_iter().filter(|m| m.channel == dm_channel) {
        let shows = issued.iter().any(|p| m.now_reads().contains(p.as_str()));
        let recorded = s.slack.handover_ts.as_deref() == Some(m.ts.as_str());
        if shows && recorded && s.state.is_closed() {
            out.push(format!("{}: its hand-over DM {} still shows the password after the session closed", s.id, m.ts));
        }
        // Exactly one hand-over DM: any other that reads "ready" (one Slack took although its post
        // failed, or one a stopped worker never recorded) is gone once the session closed.
        if !recorded && s.state.is_closed() && m.now_reads().contains(&crate::notify::messages::ready_marker(s)) {
            out.push(format!("{}: a hand-over DM {} that nothing recorded still reads ready after the session closed", s.id, m.ts));
        }
    }
}

/// Once Slack is back every notice of the outbox was delivered, and exactly once: a posted
/// notice appears once, or, only if an attempt's answer was lost (an error after Slack acted)
/// or a replica crashed, at most once more per failed attempt.
fn check_notices(world: &World, s: &Session, crashed: bool, out: &mut Vec<String>) {
    use crate::domain::NoticeKind;
    for notice in &s.outbox {
        if notice.sent_at.is_none() {
            out.push(format!("{}: notice {:?} still undelivered after the world went quiet ({} attempts, last error {:?})", s.id, notice.kind, notice.attempts, notice.last_error));
            continue;
        }
        let marker = match &notice.kind {
            NoticeKind::Ended => format!("({}) has ended", s.id),
            NoticeKind::StuckTeardown { .. } => format!("Teardown of {} ", s.id),
            NoticeKind::KeptLocked { .. } => format!("Session {} on", s.id),
            // Updates in place (cards, the redaction) repeat harmlessly; no security channel here.
            _ => continue,
        };
        let copies = world.slack.messages().iter().filter(|m| m.versions.first().is_some_and(|v| v.contains(&marker))).count() as u32;
        let bound = if crashed { u32::MAX } else { 1 + notice.attempts };
        if copies == 0 || copies > bound {
            out.push(format!("{}: notice {:?} was posted {copies} time(s) after {} failed attempt(s)", s.id, notice.kind, notice.attempts));
        }
    }
}

/// No issued password appears in any stored version of any session, any audit event, or any
/// Slack message outside its requester's DM (every version of each).
fn check_no_password_stored(world: &World, sessions: &[Session], out: &mut Vec<String>) {
    let issued = world.grants.issued();
    for s in sessions {
        let mut text = String::new();
        for (_, version) in world.store.history(&s.id) {
            text.push_str(&serde_json::to_string(&version).unwrap_or_default());
        }
        for r in world.store.trail(&s.id) {
            text.push_str(&serde_json::to_string(&r.event).unwrap_or_default());
        }
        if issued.iter().any(|p| text.contains(p.as_str())) {
            out.push(format!("{}: a password reached the store", s.id));
        }
    }
    for m in world.slack.messages().iter().filter(|m| m.dm_to.is_none()) {
        if m.versions.iter().any(|v| issued.iter().any(|p| v.contains(p.as_str()))) {
            out.push(format!("a password was posted in {} (message {})", m.channel, m.ts));
        }
    }
}

/// A digest of the final world (sessions, trails, messages, instances): equal for equal seeds.
pub fn digest(world: &World) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for s in world.store.all() {
        s.id.as_str().hash(&mut h);
        s.version.hash(&mut h);
        s.state.to_string().hash(&mut h);
        for r in world.store.trail(&s.id) {
            (r.seq, r.event.kind.as_str(), r.event.at.timestamp_millis(), &r.event.detail).hash(&mut h);
        }
    }
    for m in world.slack.messages() {
        (&m.channel, &m.ts, m.versions.len()).hash(&mut h);
    }
    for i in world.bastions.instances() {
        (&i.id, i.terminated).hash(&mut h);
    }
    h.finish()
}

/// Each session's trail as one line: id, final state, and its events in order.
pub fn trails(world: &World) -> Vec<String> {
    world
        .store
        .all()
        .iter()
        .map(|s| {
            let kinds: Vec<String> = world.store.trail(&s.id).iter().map(|r| format!("{} {}", r.event.at.format("%H:%M:%S"), r.event.kind.as_str())).collect();
            let versions: Vec<String> = world
                .store
                .history(&s.id)
                .iter()
                .map(|(at, v)| format!("t+{}s v{} {} lease {:?}", at.as_secs(), v.version, v.state, v.lease_until.map(|l| l.format("%H:%M:%S").to_string())))
                .collect();
            format!("{} {}: {}\n    {}", s.id, s.state, kinds.join(" > "), versions.join("\n    "))
        })
        .collect()
}
