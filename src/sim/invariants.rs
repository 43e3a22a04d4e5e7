//! What must hold after every schedule, checked on the world once it is quiet.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use super::{World, SKEW_BOUND, USABLE_BOUND};
use crate::domain::{AuditKind, Session, State};

/// Every violation, one sentence each.
pub fn check(world: &World, crashed: bool) -> Vec<String> {
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

    for s in &sessions {
        let trail = world.store.trail(&s.id);
        check_trail(s, &trail, &mut out);
        check_deadline(world, s, &trail, &instances, &mut out);
        check_kept_until_deadline(world, s, &trail, &instances, &mut out);
        check_gone_at_close(world, s, &instances, &mut out);
        check_handover(world, s, &trail, &mut out);
        check_notices(world, s, crashed, &mut out);
    }
    check_no_password_stored(world, &sessions, &mut out);
    check_identity_only_after_approval(&sessions, &instances, &mut out);
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

/// Nobody may enter a bastion before its session was approved: an instance carries its requester's
/// identity only if the session was approved (launch on request launches before that, untagged).
fn check_identity_only_after_approval(sessions: &[Session], instances: &[crate::memory::SimInstance], out: &mut Vec<String>) {
    for i in instances.iter().filter(|i| i.identity.is_some()) {
        if !sessions.iter().any(|s| s.id == i.session && s.approved_at.is_some()) {
            out.push(format!("instance {} of session {} carries an identity, but its session was never approved", i.id, i.session));
        }
    }
}

/// The trail starts with the request, is numbered in order, and says how the session ended.
fn check_trail(s: &Session, trail: &[crate::store::AuditRecord], out: &mut Vec<String>) {
    if trail.first().map(|r| r.event.kind) != Some(AuditKind::Requested) {
        out.push(format!("{}: the trail does not start with the request", s.id));
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
        let last = kinds.last().copied();
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

/// When a session's access ends: its expiry, or the end or revoke that cut it short.
fn deadline(s: &Session, trail: &[crate::store::AuditRecord]) -> Option<chrono::DateTime<chrono::Utc>> {
    let cut = trail.iter().find(|r| matches!(r.event.kind, AuditKind::Ended | AuditKind::Revoked)).map(|r| r.event.at);
    [s.expires_at, cut].into_iter().flatten().min()
}

/// No account outlives its session's deadline by more than the bound, unless a teardown step
/// failed (which is retried and alerted, not silent).
fn check_deadline(world: &World, s: &Session, trail: &[crate::store::AuditRecord], instances: &[crate::memory::SimInstance], out: &mut Vec<String>) {
    if trail.iter().any(|r| matches!(r.event.kind, AuditKind::TeardownFailed | AuditKind::Failed)) {
        return;
    }
    let Some(deadline) = deadline(s, trail) else { return };
    let bound = chrono::Duration::from_std(USABLE_BOUND).unwrap_or_default();
    let ips: Vec<String> = instances.iter().filter(|i| i.session == s.id).map(|i| i.ip.to_string()).collect();
    for life in world.grants.lives().iter().filter(|l| l.user == s.requester.db_user.as_str() && ips.contains(&l.host)) {
        let gone = life.dropped.map(|d| world.utc(d));
        if gone.is_none_or(|g| g > deadline + bound) {
            out.push(format!(
                "{}: account '{}'@'{}' (created {}) usable until {gone:?}, past the deadline {deadline} + {USABLE_BOUND:?}",
                s.id,
                life.user,
                life.host,
                world.utc(life.created)
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

/// What a session was handed stays until its deadline: its account and its bastion are never
/// removed while it is live (by reconcile, another session's rollback or a stale worker). Times
/// are compared with both clocks' skew to spare.
fn check_kept_until_deadline(world: &World, s: &Session, trail: &[crate::store::AuditRecord], instances: &[crate::memory::SimInstance], out: &mut Vec<String>) {
    let Some(handed) = trail.iter().find(|r| r.event.kind == AuditKind::HandedOver).map(|r| r.event.at) else { return };
    let Some(deadline) = deadline(s, trail) else { return };
    let skew = chrono::Duration::from_std(SKEW_BOUND * 2).unwrap_or_default();
    for i in instances.iter().filter(|i| s.instance_id.as_deref() == Some(i.id.as_str())) {
        if let Some(at) = i.terminated_at.map(|t| world.utc(t)).filter(|t| *t + skew < deadline) {
            out.push(format!("{}: its bastion {} was terminated at {at}, before its deadline {deadline}", s.id, i.id));
        }
    }
    let Some(host) = s.account_host.as_deref() else { return };
    for life in world.grants.lives().iter().filter(|l| l.user == s.requester.db_user.as_str() && l.host == host && world.utc(l.created) <= handed + skew) {
        if let Some(at) = life.dropped.map(|d| world.utc(d)).filter(|d| *d + skew < deadline && *d + skew > handed) {
            out.push(format!("{}: its account '{}'@'{host}' was dropped at {at}, before its deadline {deadline}", s.id, life.user));
        }
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

/// No issued password appears in any stored version of any session or audit event.
fn check_no_password_stored(world: &World, sessions: &[Session], out: &mut Vec<String>) {
    let issued = world.grants.issued();
    for s in sessions {
        let mut text = serde_json::to_string(s).unwrap_or_default();
        for r in world.store.trail(&s.id) {
            text.push_str(&serde_json::to_string(&r.event).unwrap_or_default());
        }
        if issued.iter().any(|p| text.contains(p.as_str())) {
            out.push(format!("{}: a password reached the store", s.id));
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
