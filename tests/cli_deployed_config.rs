//! The operator's commands read the configuration the Terraform module deploys: the TOML in a
//! Parameter Store parameter and the module's fragments under `<name>.d`, merged exactly as the
//! Lambda functions merge them (the one loader, `powerpole::config_source`). Against moto.
//!
//! Needs the stand-ins: `make test`, or `scripts/standins.sh start && source .local/standins.env`.

use std::process::Command;

use powerpole::domain::SessionId;

const OPERATOR: &str = r#"
[access]
home_domains = ["example.com"]

[targets.billing]
writer_endpoint = "billing.cluster-c0ffee.eu-west-1.rds.amazonaws.com"
schemas = ["billing"]
approvers = ["U0123ABCDE"]
approvals_channel = "C0123APPROVALS"

# Written by the powerpole Terraform module (var.deployment_id).
[deployment]
id = "prod"
"#;

const COMMON: &str = r#"
[store]
table = "powerpole"

[slack]
mode = "http"
signing_secret = { secrets_manager = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:powerpole/slack-AbCdEf", key = "signing_secret" }
bot_token = { secrets_manager = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:powerpole/slack-AbCdEf", key = "bot_token" }

[bastion]
instance_profile = "powerpole-bastion"
"#;

const TARGET: &str = r#"
[targets.billing]
admin_secret = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:powerpole/targets/billing/admin-GhIjKl"
port = 3306
security_group_id = "sg-0a1b2c3d4e5f60001"
subnet_id = "subnet-0a1b2c3d4e5f60001"
"#;

fn powerpole() -> Command {
    std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL is not set: run `make test`, or `scripts/standins.sh start && source .local/standins.env`");
    Command::new(env!("CARGO_BIN_EXE_powerpole"))
}

/// The module's parameter and fragments (`layers`), under a path of this test's own.
async fn deployed(layers: &[(&str, &str)]) -> String {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let aws = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let ssm = aws_sdk_ssm::Client::new(&aws);
    let base = format!("/cli-config-test/{}/config", SessionId::random().as_str());
    ssm.put_parameter().name(&base).r#type(aws_sdk_ssm::types::ParameterType::SecureString).value(OPERATOR).send().await.expect("moto stores the parameter");
    for (name, text) in layers {
        ssm.put_parameter().name(format!("{base}.d/{name}")).r#type(aws_sdk_ssm::types::ParameterType::SecureString).value(*text).send().await.expect("moto stores a fragment");
    }
    base
}

#[tokio::test]
async fn config_check_reads_the_deployed_parameter_with_the_modules_fragments() {
    let base = deployed(&[("common", COMMON), ("target-billing", TARGET)]).await;
    let out = powerpole().args(["config", "check", &format!("ssm:{base}"), "--config-layers", &format!("ssm:{base}.d")]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The first line says what was read and that it is valid; each target's policy follows.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().next().unwrap_or_default(), format!("parameter {base} with the fragments under {base}.d: valid (1 target(s): billing)"), "{stdout}");

    // The same through the variables the functions use.
    let out = powerpole().args(["config", "check"]).env("POWERPOLE_CONFIG", format!("ssm:{base}")).env("POWERPOLE_CONFIG_LAYERS", format!("ssm:{base}.d")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn without_the_fragments_the_deployed_parameter_alone_is_incomplete_and_says_what_is_missing() {
    let base = deployed(&[("common", COMMON)]).await;
    // Without --config-layers: the operator's file alone lacks what the module writes.
    let out = powerpole().args(["config", "check", &format!("ssm:{base}")]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stdout));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with(&format!("parameter {base}: ")) && stderr.contains("targets.billing.subnet_id"), "{stderr}");
    // With only the common fragment: the target's admin secret is missing, named by its path.
    let out = powerpole().args(["config", "check", &format!("ssm:{base}"), "--config-layers", &format!("ssm:{base}.d")]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("targets.billing.admin_secret"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn a_parameter_that_cannot_be_read_exits_1_naming_it_and_fragments_must_be_in_parameter_store() {
    let out = powerpole().args(["doctor", "--config", "ssm:/cli-config-test/no-such/config"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the configuration parameter could not be read") && stderr.contains("/cli-config-test/no-such/config"), "{stderr}");
    let out = powerpole().args(["db", "admin-sql", "--config", "powerpole.example.toml", "--config-layers", "/powerpole/config.d", "--target", "billing"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("must be `ssm:/path`"), "{}", String::from_utf8_lossy(&out.stderr));
}
