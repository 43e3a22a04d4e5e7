use super::*;
use crate::config::Config;
use crate::domain::TargetName;

fn with_policy(policy: &str) -> Result<Config, crate::config::ConfigError> {
    Config::from_toml_str(&format!("{}\n{policy}", crate::notify::messages::fixtures::CONFIG))
}

fn billing(c: &Config) -> &TargetConfig {
    c.target(&TargetName::parse("billing").unwrap()).unwrap()
}

#[test]
fn a_target_without_a_policy_is_open_and_says_so() {
    let c = with_policy("").unwrap();
    let t = billing(&c);
    assert!(eligibility_rule(t, Role::Ddl).is_none());
    let lines = summary(t);
    assert!(lines[0].contains("no eligibility rule: anyone in the Slack workspace may ask for every role"), "{lines:?}");
}

#[test]
fn role_rules_override_the_target_and_inherit_what_they_do_not_say() {
    let c = with_policy(
        r#"
[targets.billing.policy]
eligible_groups = ["S0ENG"]
max_auto_sessions = 1
time_zone = "Europe/Paris"
[targets.billing.policy.DDL]
eligible_groups = ["S0DBA"]
approvals = 2
approver_groups = ["S0DBA"]
max_duration = "30m"
[targets.billing.policy.READ]
auto_approve_groups = ["S0ENG"]
auto_approve_max = "1h"
auto_approve_hours = "09:00-18:00"
"#,
    )
    .unwrap();
    let t = billing(&c);
    assert_eq!(eligibility_rule(t, Role::Ddl).unwrap().1.groups, ["S0DBA"]);
    assert_eq!(eligibility_rule(t, Role::Dml).unwrap().0, "targets.billing.policy");
    assert_eq!(approvals_needed(t, Role::Ddl), 2);
    assert_eq!(approvals_needed(t, Role::Read), usize::from(t.required_approvals));
    assert_eq!(role_max(t, Role::Ddl).to_string(), "30m");
    assert_eq!(role_max(t, Role::Read), t.max_duration);
    assert_eq!(auto_rule(t, Role::Read).unwrap().rule, "targets.billing.policy.READ");
    let lines = summary(t).join("\n");
    assert!(!lines.contains("no eligibility rule"), "{lines}");
    assert!(lines.contains("targets.billing.policy.DDL: asked by group S0DBA; up to 30m; 2 approval(s) from group S0DBA"), "{lines}");
    assert!(lines.contains("auto-approved up to 1h for group S0ENG Monday to Friday 09:00-18:00 (Europe/Paris)"), "{lines}");
}

#[test]
fn every_bad_rule_is_named_by_its_field_path() {
    let err = with_policy(
        r#"
[targets.billing.policy.DDL]
eligible_groups = ["dbas"]
approvals = 3
approver_users = ["U0ONE"]
[targets.billing.policy.READ]
auto_approve_groups = ["S0ENG"]
auto_approve_max = "5h"
[targets.billing.policy.DML]
eligible_users = []
max_duration = "9h"
auto_approve_users = ["U0X"]
"#,
    )
    .unwrap_err();
    let lines: Vec<String> = err.problems.iter().map(|p| p.to_string()).collect();
    let has = |path: &str, words: &str| lines.iter().any(|l| l.starts_with(path) && l.contains(words));
    assert!(has("targets.billing.policy.DDL.eligible_groups", "not a Slack user group id"), "{lines:?}");
    assert!(has("targets.billing.policy.DDL.approvals", "unreachable"), "{lines:?}");
    assert!(has("targets.billing.policy.READ.auto_approve_max", "wider than the target's max_duration"), "{lines:?}");
    assert!(has("targets.billing.policy.DML.eligible_users", "unreachable"), "{lines:?}");
    assert!(has("targets.billing.policy.DML.max_duration", "longer than the target's max_duration"), "{lines:?}");
    assert!(has("targets.billing.policy.DML.auto_approve_max", "missing"), "{lines:?}");
    assert_eq!(lines.len(), 6, "{lines:?}");
}

#[test]
fn an_auto_approval_wider_than_the_role_is_refused() {
    let err = with_policy("[targets.billing.policy.READ]\nmax_duration = \"1h\"\nauto_approve_users = [\"U0X\"]\nauto_approve_max = \"2h\"\n").unwrap_err();
    assert_eq!(err.problems[0].path, "targets.billing.policy.READ.auto_approve_max", "{err}");
    assert!(err.problems[0].message.contains("wider than the role's max_duration (1h)"), "{err}");
}

#[test]
fn working_hours_are_weekdays_in_the_time_zone() {
    use chrono::TimeZone;
    let h = WorkingHours::parse("09:00-18:00").unwrap();
    let paris: chrono_tz::Tz = "Europe/Paris".parse().unwrap();
    // Monday 2026-11-23 08:30 UTC is 09:30 in Paris; 17:30 UTC is 18:30.
    assert!(h.contains(Utc.with_ymd_and_hms(2026, 11, 23, 8, 30, 0).unwrap(), paris));
    assert!(!h.contains(Utc.with_ymd_and_hms(2026, 11, 23, 17, 30, 0).unwrap(), paris));
    assert!(!h.contains(Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap(), paris), "a Sunday");
    assert!(WorkingHours::parse("18:00-09:00").is_err());
    assert!(WorkingHours::parse("9-5").is_err());
}
