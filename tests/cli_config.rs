//! `powerpole config check`, run as an operator would run it.

use std::path::PathBuf;
use std::process::Command;

fn powerpole() -> Command {
    Command::new(env!("CARGO_BIN_EXE_powerpole"))
}

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn the_example_config_is_valid() {
    let out = powerpole().args(["config", "check"]).arg(repo("powerpole.example.toml")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid (1 target(s): billing)"));
}

#[test]
fn a_bad_privilege_a_bad_duration_and_a_missing_field_are_all_named_with_exit_2() {
    let dir = std::env::temp_dir().join(format!("powerpole-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    let example = std::fs::read_to_string(repo("powerpole.example.toml")).unwrap();
    let bad = example
        .replace("max_duration = \"4h\"", "max_duration = \"4 hours\"")
        .replace("READ = [\"SELECT\", \"SHOW VIEW\"]", "READ = [\"SELECT\", \"GRANT OPTION\"]")
        .replace("subnet_id = \"subnet-0123456789abcdef0\"\n", "");
    assert_ne!(bad, example);
    std::fs::write(&file, bad).unwrap();
    let out = powerpole().args(["config", "check"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("targets.billing.max_duration: `4 hours` is not a duration"), "{err}");
    assert!(err.contains("targets.billing.privileges.READ:") && err.contains("GRANT OPTION"), "{err}");
    assert!(err.contains("targets.billing.subnet_id: missing"), "{err}");
    assert!(err.contains("3 problem(s)"), "{err}");
}

#[test]
fn a_missing_file_says_where_to_start() {
    let out = powerpole().args(["config", "check", "/nonexistent/powerpole.toml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("start from powerpole.example.toml"));
}

#[test]
fn unrelated_powerpole_variables_are_not_config() {
    // Only POWERPOLE_ variables with `__` are overrides; test harness variables are not.
    let out = powerpole()
        .args(["config", "check"])
        .arg(repo("powerpole.example.toml"))
        .env("POWERPOLE_TEST_MOTO_URL", "http://127.0.0.1:1")
        .env("POWERPOLE_SLACK__API_URL", "http://127.0.0.1:9999/api")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn an_override_with_a_bad_value_is_reported_at_its_field_path() {
    let out = powerpole()
        .args(["config", "check"])
        .arg(repo("powerpole.example.toml"))
        .env("POWERPOLE_SLACK__API_URL", "ftp://example.com")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("slack.api_url: `ftp://example.com` is not an http(s) URL"));
}

#[test]
fn an_environment_override_is_applied_by_the_documented_rule() {
    let out = powerpole()
        .args(["config", "check"])
        .arg(repo("powerpole.example.toml"))
        .env("POWERPOLE_TARGETS__BILLING__MAX_DURATION", "1d")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("targets.billing.max_duration: 1d exceeds the global limit of 12h"));
}

/// The example's commented policy, switched on.
fn example_with_policy() -> String {
    let example = std::fs::read_to_string(repo("powerpole.example.toml")).unwrap();
    let start = example.find("# [targets.billing.policy]").expect("the example documents the policy");
    let end = example[start..].find("\n\n# Optional per-role privilege").map(|e| start + e).expect("the policy block ends");
    let block: String = example[start..end].lines().map(|l| l.strip_prefix("# ").unwrap_or(l)).collect::<Vec<_>>().join("\n");
    format!("{}{}\n{}", &example[..start], block.replace("\n#\n", "\n\n"), &example[end..])
}

#[test]
fn config_check_says_which_targets_anyone_may_ask_for_and_prints_each_rule() {
    let out = powerpole().args(["config", "check"]).arg(repo("powerpole.example.toml")).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("targets.billing: no eligibility rule: anyone in the Slack workspace may ask for every role"), "{text}");

    let dir = std::env::temp_dir().join(format!("powerpole-cli-policy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("policy.toml");
    std::fs::write(&file, example_with_policy()).unwrap();
    let out = powerpole().args(["config", "check"]).arg(&file).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}{text}", String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains("no eligibility rule"), "{text}");
    assert!(text.contains("targets.billing.policy.DDL: asked by group S0DBAS; up to 1h; 2 approval(s) from group S0DBAS"), "{text}");
    assert!(text.contains("targets.billing.policy.READ: asked by U0CONTRACTOR, group S0ENGINEERS; auto-approved up to 1h for group S0ENGINEERS Monday to Friday 09:00-18:00 (Europe/Paris)"), "{text}");

    // A rule that makes DDL unreachable and an auto-approval wider than the target: named, exit 2.
    let bad = example_with_policy().replace("approver_groups = [\"S0DBAS\"]", "approver_users = [\"U0ONE\"]").replace("auto_approve_max = \"1h\"", "auto_approve_max = \"5h\"");
    std::fs::write(&file, bad).unwrap();
    let out = powerpole().args(["config", "check"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("targets.billing.policy.DDL.approvals: 2 approval(s) needed but only 1 approver(s)") && err.contains("unreachable"), "{err}");
    assert!(err.contains("targets.billing.policy.READ.auto_approve_max: 5h is wider than the target's max_duration (4h)"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
