//! The policy's decisions that need Slack: group membership, read live (as approver groups are)
//! through the [`Notifier`], once per group per decision ([`Directory`]).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{approvals_needed, approvers_of, auto_rule, eligibility_rule, has_role_max, role_max, Who};
use crate::config::TargetConfig;
use crate::domain::{AccessDuration, Role, SlackUserId, TargetName};
use crate::notify::{Notifier, NotifyError};

/// Group members read from Slack, each group once.
pub struct Directory<'a> {
    notifier: &'a dyn Notifier,
    cache: HashMap<String, Vec<SlackUserId>>,
}

/// How a person belongs to a set of people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Through {
    /// Their user id is listed.
    Listed,
    /// They are a member of this user group.
    Group(String),
}

impl Through {
    pub fn mention(&self) -> String {
        match self {
            Through::Listed => "listed by user id".into(),
            Through::Group(g) => format!("a member of <!subteam^{g}>"),
        }
    }

    pub fn plain(&self) -> String {
        match self {
            Through::Listed => "listed by user id".into(),
            Through::Group(g) => format!("a member of group {g}"),
        }
    }
}

impl<'a> Directory<'a> {
    pub fn new(notifier: &'a dyn Notifier) -> Directory<'a> {
        Directory { notifier, cache: HashMap::new() }
    }

    pub async fn members(&mut self, group: &str) -> Result<&[SlackUserId], NotifyError> {
        if !self.cache.contains_key(group) {
            let members = self.notifier.group_members(group).await?;
            self.cache.insert(group.to_string(), members);
        }
        Ok(self.cache.get(group).map(Vec::as_slice).unwrap_or_default())
    }

    /// How `user` is among `who`, if they are (listed first, then each group in order).
    pub async fn through(&mut self, who: &Who, user: &SlackUserId) -> Result<Option<Through>, NotifyError> {
        if who.users.contains(user) {
            return Ok(Some(Through::Listed));
        }
        for g in &who.groups {
            if self.members(g).await?.contains(user) {
                return Ok(Some(Through::Group(g.clone())));
            }
        }
        Ok(None)
    }
}

/// Whether a person may ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Eligibility {
    /// No eligibility rule: anyone in the workspace may ask.
    Open,
    Eligible { rule: String, through: Through },
    NotEligible { rule: String, who: Who },
}

/// Whether a request is approved without a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auto {
    /// The role has no auto-approval rule.
    NoRule,
    Approves { rule: String, through: Through },
    /// The rule exists but does not apply, and why (in words for the requester).
    Declines { rule: String, why: String },
}

/// What would happen to a request, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub target: TargetName,
    pub role: Role,
    pub user: SlackUserId,
    pub eligibility: Eligibility,
    /// The role's maximum on the target (within the global one).
    pub max: AccessDuration,
    /// Whether the maximum is the role's own rather than the target's.
    pub role_max: bool,
    pub duration: Option<AccessDuration>,
    pub approvals: usize,
    pub approvers: Who,
    pub auto: Auto,
    /// The person's live auto-approved sessions, and the cap.
    pub held: usize,
    pub cap: Option<u32>,
    pub contact: Option<String>,
}

impl Verdict {
    pub fn eligible(&self) -> bool {
        !matches!(self.eligibility, Eligibility::NotEligible { .. })
    }

    pub fn too_long(&self) -> bool {
        self.duration.is_some_and(|d| d > self.max)
    }

    /// The refusal an ineligible person reads (in Slack).
    pub fn refusal(&self) -> Option<String> {
        let Eligibility::NotEligible { who, .. } = &self.eligibility else { return None };
        let grantor = match &self.contact {
            Some(contact) => contact.clone(),
            None if who.groups.is_empty() => "the platform team who keep powerpole's configuration".into(),
            None => "a manager of that user group (or the platform team who keep powerpole's configuration)".into(),
        };
        Some(format!(
            "you may not ask for {} on `{}`: it is open to {} only. To be made eligible, ask {grantor}. Nothing was filed.",
            self.role,
            self.target,
            who.mentions()
        ))
    }

    /// The lines `powerpole policy explain` prints.
    pub fn explain_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        let what = format!("{} asks for {} on {}{}", self.user, self.role, self.target, self.duration.map(|d| format!(" for {d}")).unwrap_or_default());
        out.push(what);
        out.push(match &self.eligibility {
            Eligibility::Open => "eligibility: open: the target has no eligibility rule for this role, so anyone in the workspace may ask".into(),
            Eligibility::Eligible { rule, through } => format!("eligibility: eligible, {} ({rule})", through.plain()),
            Eligibility::NotEligible { rule, who } => format!("eligibility: NOT eligible: {rule} allows only {}", who.plain()),
        });
        let whose = if self.role_max { "the role's max_duration" } else { "the target's max_duration" };
        out.push(match self.duration {
            Some(d) if d > self.max => format!("duration: {d} is over the maximum of {} ({whose}): refused", self.max),
            Some(d) => format!("duration: {d}, within the maximum of {} ({whose})", self.max),
            None => format!("duration: at most {} ({whose})", self.max),
        });
        out.push(format!("approval rule: {} distinct approval(s) from {}; never the requester's own", self.approvals, self.approvers.plain()));
        out.push(match &self.auto {
            Auto::NoRule => "auto-approval: none configured for this role".into(),
            Auto::Approves { rule, through } => format!("auto-approval: yes, by {rule} ({})", through.plain()),
            Auto::Declines { rule, why } => format!("auto-approval: no ({rule}): {why}"),
        });
        if let Some(cap) = self.cap {
            out.push(format!("auto-approved sessions held: {} of at most {cap}", self.held));
        }
        out.push(format!("outcome: {}", self.outcome()));
        out
    }

    /// In one line: refused, auto-approved, or waiting for approvals.
    pub fn outcome(&self) -> String {
        if !self.eligible() {
            return "refused when asked (not eligible); nothing is filed".into();
        }
        if self.too_long() {
            return format!("refused when asked (over the maximum of {}); nothing is filed", self.max);
        }
        match &self.auto {
            Auto::Approves { rule, .. } => format!("auto-approved by {rule}: handed over with no click, announced in the approvals channel"),
            _ => format!("filed; waits for {} approval(s) from {}", self.approvals, self.approvers.plain()),
        }
    }
}

/// Decides what would happen to `user` asking for `role` on `target` for `duration` at `now`,
/// holding `held` live auto-approved sessions. Group membership is read through `dir`.
pub async fn evaluate(
    dir: &mut Directory<'_>,
    target: &TargetConfig,
    global_max: AccessDuration,
    role: Role,
    duration: Option<AccessDuration>,
    user: &SlackUserId,
    now: DateTime<Utc>,
    held: usize,
) -> Result<Verdict, NotifyError> {
    let eligibility = match eligibility_rule(target, role) {
        None => Eligibility::Open,
        Some((rule, who)) => match dir.through(who, user).await? {
            Some(through) => Eligibility::Eligible { rule, through },
            None => Eligibility::NotEligible { rule, who: who.clone() },
        },
    };
    let max = role_max(target, role).min(global_max);
    let cap = target.policy.max_auto_sessions;
    let auto = match auto_rule(target, role) {
        None => Auto::NoRule,
        Some(rule) => {
            let declines = |why: String| Auto::Declines { rule: rule.rule.clone(), why };
            let tz = target.policy.time_zone.unwrap_or(chrono_tz::UTC);
            if matches!(eligibility, Eligibility::NotEligible { .. }) {
                declines("not eligible".into())
            } else if let Some(d) = duration.filter(|d| *d > rule.max) {
                declines(format!("{d} is longer than the {} it approves; it goes to the approvers", rule.max))
            } else if let Some(hours) = rule.hours.filter(|h| !h.contains(now, tz)) {
                declines(format!("outside working hours ({hours}, {tz}); it goes to the approvers"))
            } else {
                match dir.through(&rule.who, user).await? {
                    None => declines(format!("only {} are auto-approved; it goes to the approvers", rule.who.mentions())),
                    Some(_) if cap.is_some_and(|c| held >= c as usize) => declines(format!(
                        "you already hold {held} auto-approved session(s), the most `{}` allows at once; it goes to the approvers",
                        target.name
                    )),
                    Some(through) => Auto::Approves { rule: rule.rule.clone(), through },
                }
            }
        }
    };
    Ok(Verdict {
        target: target.name.clone(),
        role,
        user: user.clone(),
        eligibility,
        max,
        role_max: has_role_max(target, role),
        duration,
        approvals: approvals_needed(target, role),
        approvers: approvers_of(target, role),
        auto,
        held,
        cap,
        contact: target.policy.contact.clone(),
    })
}

/// As [`evaluate`], for `powerpole policy explain`: the printed lines.
#[allow(clippy::too_many_arguments)]
pub async fn explain(
    notifier: &dyn Notifier,
    target: &TargetConfig,
    global_max: AccessDuration,
    role: Role,
    duration: Option<AccessDuration>,
    user: &SlackUserId,
    now: DateTime<Utc>,
    held: usize,
) -> Result<Vec<String>, NotifyError> {
    let mut dir = Directory::new(notifier);
    Ok(evaluate(&mut dir, target, global_max, role, duration, user, now, held).await?.explain_lines())
}

/// Whether `user` may decide on `role` requests of `target` (the role's approvers, else the
/// target's).
pub async fn is_role_approver(notifier: &dyn Notifier, target: &TargetConfig, role: Role, user: &SlackUserId) -> Result<bool, NotifyError> {
    Ok(Directory::new(notifier).through(&approvers_of(target, role), user).await?.is_some())
}

/// For `doctor`: the group's member count, or Slack's refusal.
pub async fn group_exists(notifier: &dyn Notifier, group: &str) -> Result<usize, NotifyError> {
    notifier.group_members(group).await.map(|m| m.len())
}
