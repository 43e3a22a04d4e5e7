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
