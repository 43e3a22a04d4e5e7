//! Who may ask for what, whose approvals a request needs, and which requests need none: the
//! policy layer in front of the approvers (`[targets.NAME.policy]` and
//! `[targets.NAME.policy.ROLE]`).
//!
//! - **Eligibility**: per role (else for the whole target), the Slack user ids and user groups
//!   whose members may ask. Groups are read live from Slack, like approver groups. A target with
//!   no eligibility rule keeps the old behaviour: anyone in the workspace may ask (`config check`
//!   says so). Someone not eligible is refused when they ask, before anything is stored.
//! - **Limits**: a role's own `max_duration` (within the target's).
//! - **Approval rules**: per role, how many distinct approvals (`approvals`) and from whom
//!   (`approver_users`, `approver_groups`), instead of the target's approvers.
//! - **Auto-approval**: per role, for listed people or group members, up to `auto_approve_max`,
//!   optionally only within `auto_approve_hours` (Monday to Friday, in the policy's `time_zone`),
//!   and only while the person holds fewer than `max_auto_sessions` auto-approved sessions.
//!
//! Validation (`RawPolicy::validate`) is pure and reports every problem with its field path; the
//! decisions that need Slack's group membership live in [`live`]. Break-glass is not policy: it
//! has its own on-call group or list and its own limits (`workflow/breakglass.rs`).

pub mod live;

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Datelike, NaiveTime, Utc, Weekday};
use serde::Deserialize;

use crate::config::TargetConfig;
use crate::domain::{AccessDuration, Role, SlackUserId};

pub use live::{evaluate, explain, group_exists, is_role_approver, Directory, Eligibility, Verdict};

/// A set of people: listed Slack user ids and members of Slack user groups.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Who {
    pub users: Vec<SlackUserId>,
    pub groups: Vec<String>,
}

impl Who {
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.groups.is_empty()
    }

    /// As Slack renders it: `<@U1>, <!subteam^S1>`.
    pub fn mentions(&self) -> String {
        let mut parts: Vec<String> = self.users.iter().map(|u| format!("<@{u}>")).collect();
        parts.extend(self.groups.iter().map(|g| format!("<!subteam^{g}>")));
        if parts.is_empty() {
            "nobody".into()
        } else {
            parts.join(", ")
        }
    }

    /// As a terminal shows it: `U1, group S1`.
    pub fn plain(&self) -> String {
        let mut parts: Vec<String> = self.users.iter().map(|u| u.to_string()).collect();
        parts.extend(self.groups.iter().map(|g| format!("group {g}")));
        if parts.is_empty() {
            "nobody".into()
        } else {
            parts.join(", ")
        }
    }
}

/// Working hours: Monday to Friday, from `start` to `end`, in the policy's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkingHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl WorkingHours {
    /// `09:00-18:00`.
    pub fn parse(text: &str) -> Result<WorkingHours, String> {
        let bad = || format!("`{text}` is not a span of hours such as 09:00-18:00 (Monday to Friday, in time_zone)");
        let (a, b) = text.trim().split_once('-').ok_or_else(bad)?;
        let start = NaiveTime::parse_from_str(a.trim(), "%H:%M").map_err(|_| bad())?;
        let end = NaiveTime::parse_from_str(b.trim(), "%H:%M").map_err(|_| bad())?;
        if end <= start {
            return Err(format!("`{text}`: the end must be after the start (a span across midnight is not supported)"));
        }
        Ok(WorkingHours { start, end })
    }

    pub fn contains(&self, at: DateTime<Utc>, tz: chrono_tz::Tz) -> bool {
        let local = at.with_timezone(&tz);
        let weekday = !matches!(local.weekday(), Weekday::Sat | Weekday::Sun);
        let time = local.time();
        weekday && time >= self.start && time < self.end
    }
}

impl fmt::Display for WorkingHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Monday to Friday {}-{}", self.start.format("%H:%M"), self.end.format("%H:%M"))
    }
}

/// When a request is approved without a person: who, how long at most, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoApproval {
    /// The rule's field path (`targets.billing.policy.READ`): what the card and trail name.
    pub rule: String,
    pub who: Who,
    pub max: AccessDuration,
    pub hours: Option<WorkingHours>,
}

/// One role's rule on one target.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoleRule {
    /// Who may ask for this role (`None`: the target's rule, else anyone).
    pub eligible: Option<Who>,
    pub max_duration: Option<AccessDuration>,
    /// Distinct approvals needed (`None`: the target's `required_approvals`).
    pub approvals: Option<u8>,
    /// Who approves this role (`None`: the target's approvers).
    pub approvers: Option<Who>,
    pub auto: Option<AutoApproval>,
}

/// A target's policy (empty: today's behaviour).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetPolicy {
    /// Who may ask for any role without a rule of its own (`None`: anyone).
    pub eligible: Option<Who>,
    pub roles: BTreeMap<Role, RoleRule>,
    /// Where working hours are read (default UTC).
    pub time_zone: Option<chrono_tz::Tz>,
    /// Auto-approval only while the person holds fewer auto-approved sessions than this (on any
    /// target) at once.
    pub max_auto_sessions: Option<u32>,
    /// Who grants eligibility, as the refusal names it (a channel, a team, a person).
    pub contact: Option<String>,
}

/// Who may ask for `role` on `target`, and the rule's path; `None`: anyone may.
pub fn eligibility_rule(target: &TargetConfig, role: Role) -> Option<(String, &Who)> {
    let base = format!("targets.{}.policy", target.name);
    match target.policy.roles.get(&role).and_then(|r| r.eligible.as_ref()) {
        Some(who) => Some((format!("{base}.{role}"), who)),
        None => target.policy.eligible.as_ref().map(|who| (base, who)),
    }
}

/// The longest session of `role` on `target` (the role's own maximum within the target's).
pub fn role_max(target: &TargetConfig, role: Role) -> AccessDuration {
    match target.policy.roles.get(&role).and_then(|r| r.max_duration) {
        Some(max) => max.min(target.max_duration),
        None => target.max_duration,
    }
}

/// Whether `role` has a maximum of its own.
pub fn has_role_max(target: &TargetConfig, role: Role) -> bool {
    target.policy.roles.get(&role).is_some_and(|r| r.max_duration.is_some())
}

/// Distinct approvals a `role` request on `target` needs.
pub fn approvals_needed(target: &TargetConfig, role: Role) -> usize {
    usize::from(target.policy.roles.get(&role).and_then(|r| r.approvals).unwrap_or(target.required_approvals))
}

/// Who approves `role` requests on `target`.
pub fn approvers_of(target: &TargetConfig, role: Role) -> Who {
    match target.policy.roles.get(&role).and_then(|r| r.approvers.clone()) {
        Some(who) => who,
        None => Who { users: target.approvers.users.clone(), groups: target.approvers.group.iter().cloned().collect() },
    }
}

/// The auto-approval rule of `role` on `target`, if any.
pub fn auto_rule(target: &TargetConfig, role: Role) -> Option<&AutoApproval> {
    target.policy.roles.get(&role).and_then(|r| r.auto.as_ref())
}

/// Every user group the policy (and the target's approvers and on-call) names, for `doctor`.
pub fn groups_named(target: &TargetConfig) -> Vec<(String, String)> {
    let at = |field: &str| format!("targets.{}.{field}", target.name);
    let mut out = Vec::new();
    if let Some(g) = &target.approvers.group {
        out.push((at("approver_group"), g.clone()));
    }
    if let Some(g) = target.breakglass.as_ref().and_then(|b| b.oncall_group.as_ref()) {
        out.push((at("oncall_group"), g.clone()));
    }
    if let Some(who) = &target.policy.eligible {
        out.extend(who.groups.iter().map(|g| (at("policy.eligible_groups"), g.clone())));
    }
    for (role, rule) in &target.policy.roles {
        let p = |f: &str| at(&format!("policy.{role}.{f}"));
        for (field, who) in [("eligible_groups", &rule.eligible), ("approver_groups", &rule.approvers)] {
            if let Some(who) = who {
                out.extend(who.groups.iter().map(|g| (p(field), g.clone())));
            }
        }
        if let Some(auto) = &rule.auto {
            out.extend(auto.who.groups.iter().map(|g| (p("auto_approve_groups"), g.clone())));
        }
    }
    out
}

/// What `config check` prints about each target's policy: the open targets and roles (anyone in
/// the workspace may ask), and each rule in one line.
pub fn summary(target: &TargetConfig) -> Vec<String> {
    let mut lines = Vec::new();
    let name = &target.name;
    let open: Vec<Role> = Role::ALL.iter().copied().filter(|r| eligibility_rule(target, *r).is_none()).collect();
    if open.len() == Role::ALL.len() {
        lines.push(format!(
            "targets.{name}: no eligibility rule: anyone in the Slack workspace may ask for every role (add [targets.{name}.policy] eligible_groups to restrict it)"
        ));
    } else if !open.is_empty() {
        let roles: Vec<&str> = open.iter().map(|r| r.as_str()).collect();
        lines.push(format!("targets.{name}: no eligibility rule for {}: anyone in the Slack workspace may ask for it", roles.join(", ")));
    }
    for role in Role::ALL {
        let mut parts = Vec::new();
        if let Some((_, who)) = eligibility_rule(target, role) {
            parts.push(format!("asked by {}", who.plain()));
        }
        if has_role_max(target, role) {
            parts.push(format!("up to {}", role_max(target, role)));
        }
        let rule = target.policy.roles.get(&role);
        if rule.is_some_and(|r| r.approvals.is_some() || r.approvers.is_some()) {
            parts.push(format!("{} approval(s) from {}", approvals_needed(target, role), approvers_of(target, role).plain()));
        }
        if let Some(auto) = auto_rule(target, role) {
            let hours = auto.hours.map(|h| format!(" {h} ({})", target.policy.time_zone.unwrap_or(chrono_tz::UTC))).unwrap_or_default();
            parts.push(format!("auto-approved up to {} for {}{hours}", auto.max, auto.who.plain()));
        }
        if !parts.is_empty() {
            lines.push(format!("targets.{name}.policy.{role}: {}", parts.join("; ")));
        }
    }
    lines
}

// ---------------------------------------------------------------------------------------------
// The raw form, as written, and its validation.
// ---------------------------------------------------------------------------------------------

/// `[targets.NAME.policy]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    eligible_users: Option<Vec<String>>,
    eligible_groups: Option<Vec<String>>,
    time_zone: Option<String>,
    max_auto_sessions: Option<u32>,
    contact: Option<String>,
    #[serde(rename = "READ", alias = "read")]
    read: Option<RawRoleRule>,
    #[serde(rename = "DML", alias = "dml")]
    dml: Option<RawRoleRule>,
    #[serde(rename = "DDL", alias = "ddl")]
    ddl: Option<RawRoleRule>,
}

/// `[targets.NAME.policy.ROLE]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoleRule {
    eligible_users: Option<Vec<String>>,
    eligible_groups: Option<Vec<String>>,
    max_duration: Option<String>,
    approvals: Option<u8>,
    approver_users: Option<Vec<String>>,
    approver_groups: Option<Vec<String>>,
    auto_approve_users: Option<Vec<String>>,
    auto_approve_groups: Option<Vec<String>>,
    auto_approve_max: Option<String>,
    auto_approve_hours: Option<String>,
}

/// What the validation needs to know of the target around the policy.
pub struct Context<'a> {
    pub target: &'a str,
    pub target_max: AccessDuration,
    pub required_approvals: u8,
    /// The target's approvers listed by id, and whether it has an approver group.
    pub approver_users: usize,
    pub approver_group: bool,
}

/// A Slack user group id: `S0123ABCD`.
pub fn is_group_id(g: &str) -> bool {
    g.starts_with('S') && g.len() > 2 && g.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// Users and groups as written; `None` when neither field was written.
fn who(path: &str, users: &Option<Vec<String>>, groups: &Option<Vec<String>>, users_field: &str, groups_field: &str, problems: &mut Vec<(String, String)>) -> Option<Who> {
    if users.is_none() && groups.is_none() {
        return None;
    }
    let mut out = Who::default();
    for u in users.iter().flatten() {
        match SlackUserId::parse(u) {
            Ok(id) => out.users.push(id),
            Err(e) => problems.push((format!("{path}.{users_field}"), e.to_string())),
        }
    }
    for g in groups.iter().flatten() {
        if is_group_id(g) {
            out.groups.push(g.clone());
        } else {
            problems.push((format!("{path}.{groups_field}"), format!("`{g}` is not a Slack user group id (S0123ABCD); find it in the group's URL or with usergroups.list")));
        }
    }
    Some(out)
}

/// Both lists absent or empty as written (an invalid entry is reported on its own).
fn none_written(users: &Option<Vec<String>>, groups: &Option<Vec<String>>) -> bool {
    users.iter().flatten().count() + groups.iter().flatten().count() == 0
}

fn duration(path: String, text: &Option<String>, problems: &mut Vec<(String, String)>) -> Option<AccessDuration> {
    let text = text.as_ref()?;
    match text.parse::<AccessDuration>() {
        Ok(d) => Some(d),
        Err(e) => {
            problems.push((path, e.to_string()));
            None
        }
    }
}

impl RawPolicy {
    /// Validates into a [`TargetPolicy`], adding every problem (path, message) to `problems`.
    pub fn validate(self, cx: &Context<'_>, problems: &mut Vec<(String, String)>) -> TargetPolicy {
        let base = format!("targets.{}.policy", cx.target);
        let eligible = who(&base, &self.eligible_users, &self.eligible_groups, "eligible_users", "eligible_groups", problems);
        if eligible.is_some() && none_written(&self.eligible_users, &self.eligible_groups) {
            problems.push((format!("{base}.eligible_users"), "empty: nobody could ask for any role; list user ids or groups, or remove both fields to let anyone ask".into()));
        }
        let time_zone = match self.time_zone.as_deref() {
            None => None,
            Some(text) => match text.parse::<chrono_tz::Tz>() {
                Ok(tz) => Some(tz),
                Err(_) => {
                    problems.push((format!("{base}.time_zone"), format!("`{text}` is not an IANA time zone such as Europe/Paris")));
                    None
                }
            },
        };
        if self.max_auto_sessions == Some(0) {
            problems.push((format!("{base}.max_auto_sessions"), "0 would turn auto-approval off: remove the auto_approve_* fields instead, or allow at least 1".into()));
        }
        let mut roles = BTreeMap::new();
        for (role, raw) in [(Role::Read, self.read), (Role::Dml, self.dml), (Role::Ddl, self.ddl)] {
            if let Some(raw) = raw {
                roles.insert(role, raw.validate(&format!("{base}.{role}"), role, cx, eligible.is_some(), problems));
            }
        }
        let any_auto = roles.values().any(|r: &RoleRule| r.auto.is_some());
        if self.max_auto_sessions.is_some() && !any_auto {
            problems.push((format!("{base}.max_auto_sessions"), "set, but no role of this target is auto-approved (auto_approve_*)".into()));
        }
        if self.time_zone.is_some() && !roles.values().any(|r| r.auto.as_ref().is_some_and(|a| a.hours.is_some())) {
            problems.push((format!("{base}.time_zone"), "set, but no role has auto_approve_hours, the only thing read in it".into()));
        }
        TargetPolicy { eligible, roles, time_zone, max_auto_sessions: self.max_auto_sessions, contact: self.contact.filter(|c| !c.trim().is_empty()) }
    }
}

impl RawRoleRule {
    fn validate(self, path: &str, role: Role, cx: &Context<'_>, target_eligible: bool, problems: &mut Vec<(String, String)>) -> RoleRule {
        let eligible = who(path, &self.eligible_users, &self.eligible_groups, "eligible_users", "eligible_groups", problems);
        if eligible.is_some() && none_written(&self.eligible_users, &self.eligible_groups) {
            problems.push((format!("{path}.eligible_users"), format!("empty: nobody could ask for {role}, so the role is unreachable; list user ids or groups")));
        }
        let _ = target_eligible;
        let max_duration = duration(format!("{path}.max_duration"), &self.max_duration, problems);
        if let Some(max) = max_duration {
            if max > cx.target_max {
                problems.push((format!("{path}.max_duration"), format!("{max} is longer than the target's max_duration ({}); make it {} or less", cx.target_max, cx.target_max)));
            }
        }
        let approvers = who(path, &self.approver_users, &self.approver_groups, "approver_users", "approver_groups", problems);
        if approvers.is_some() && none_written(&self.approver_users, &self.approver_groups) {
            problems.push((format!("{path}.approver_users"), format!("empty: nobody could approve {role}; list approver ids or groups, or remove both fields to use the target's approvers")));
        }
        if self.approvals == Some(0) {
            problems.push((format!("{path}.approvals"), "must be at least 1 (for requests that need no person, use auto_approve_*)".into()));
        }
        let need = self.approvals.unwrap_or(cx.required_approvals);
        let (listed, group) = match &approvers {
            Some(who) => (who.users.len(), !who.groups.is_empty()),
            None => (cx.approver_users, cx.approver_group),
        };
        if need > 0 && !group && usize::from(need) > listed {
            problems.push((
                format!("{path}.approvals"),
                format!("{need} approval(s) needed but only {listed} approver(s) can give them and no group: {role} would be unreachable; list more approvers or a group"),
            ));
        }
        let auto_who = who(path, &self.auto_approve_users, &self.auto_approve_groups, "auto_approve_users", "auto_approve_groups", problems);
        let auto_max = duration(format!("{path}.auto_approve_max"), &self.auto_approve_max, problems);
        let hours = match self.auto_approve_hours.as_deref().map(WorkingHours::parse) {
            Some(Ok(h)) => Some(h),
            Some(Err(e)) => {
                problems.push((format!("{path}.auto_approve_hours"), e));
                None
            }
            None => None,
        };
        let auto = match (auto_who, auto_max) {
            (None, None) => {
                if self.auto_approve_hours.is_some() {
                    problems.push((format!("{path}.auto_approve_hours"), "set without auto_approve_groups/auto_approve_users and auto_approve_max".into()));
                }
                None
            }
            (Some(who), Some(max)) => {
                if none_written(&self.auto_approve_users, &self.auto_approve_groups) {
                    problems.push((format!("{path}.auto_approve_groups"), "empty: name who is auto-approved (user ids or groups), or remove the auto_approve_* fields".into()));
                }
                let role_max = max_duration.unwrap_or(cx.target_max).min(cx.target_max);
                if max > cx.target_max {
                    problems.push((format!("{path}.auto_approve_max"), format!("{max} is wider than the target's max_duration ({}); make it {} or less", cx.target_max, role_max)));
                } else if max > role_max {
                    problems.push((format!("{path}.auto_approve_max"), format!("{max} is wider than the role's max_duration ({role_max}); make it {role_max} or less")));
                }
                Some(AutoApproval { rule: path.to_string(), who, max, hours })
            }
            (Some(_), None) if self.auto_approve_max.is_none() => {
                problems.push((format!("{path}.auto_approve_max"), "missing: auto-approval is always bounded; give the longest session it approves, e.g. \"1h\"".into()));
                None
            }
            (None, Some(_)) => {
                problems.push((format!("{path}.auto_approve_groups"), "missing: name who is auto-approved (auto_approve_groups and/or auto_approve_users)".into()));
                None
            }
            (Some(_), None) => None,
        };
        RoleRule { eligible, max_duration, approvals: self.approvals, approvers, auto }
    }
}

#[cfg(test)]
mod tests;
