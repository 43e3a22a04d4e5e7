//! The module's values for one deployment: what `main.tf` renders the policies with, and the
//! configuration `config.tf` and `config_layers.tf` write, for the example's inputs.

use serde_json::json;

use crate::moto::ACCOUNT;
use crate::terraform::{self, Refs};

/// `name_prefix` in infra/examples/complete/main.tf.
pub const NAME_PREFIX: &str = "powerpole";
/// `targets.billing.db_port` in infra/examples/complete/main.tf.
pub const DB_PORT: u16 = 3306;

/// The example's inputs of `terraform.tfvars.example` the module's values depend on (the module
/// gives `deployment_id` and `audit_key_break_glass_principal_arn` no default).
pub fn example_input(name: &str) -> String {
    let path = crate::example_dir().join("terraform.tfvars.example");
    let vars = crate::tfvars::parse(&read(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    vars.get(name).and_then(serde_json::Value::as_str).unwrap_or_else(|| panic!("terraform.tfvars.example has no {name}")).to_string()
}

/// `var.deployment_id`: the example's (`terraform.tfvars.example`).
pub fn deployment_id() -> String {
    example_input("deployment_id")
}

/// `aws_kms_key.this` (kms.tf): the key of the table, the queues, the parameters and the logs.
pub fn kms_key_arn(region: &str) -> String {
    format!("arn:aws:kms:{region}:{ACCOUNT}:key/00000000-0000-0000-0000-000000000000")
}

/// `aws_kms_key.audit_export` (export.tf): the audit export bucket's own key.
pub fn audit_kms_key_arn(region: &str) -> String {
    format!("arn:aws:kms:{region}:{ACCOUNT}:key/00000000-0000-0000-0000-0000000a0d17")
}

/// What Terraform would know of this deployment's resources.
pub struct Known {
    pub vars: Refs,
    pub slack_secret_arn: String,
    pub admin_secret_arn: String,
    pub subnet_id: String,
    pub security_group_id: String,
    pub queue_url: String,
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// main.tf's `role_policy_template_vars` (which includes `key_policy_template_vars`) for this
/// deployment: names as the module builds them from `name_prefix`, ARNs of what the test made.
#[allow(clippy::too_many_arguments)]
pub fn template_vars(region: &str, table: &str, slack_secret_arn: &str, admin_secret_arn: &str, subnet_id: &str, security_group_id: &str, lambda_subnet_id: &str, lambda_security_group_id: &str) -> Refs {
    let arn = |service: &str, rest: &str| format!("arn:aws:{service}:{region}:{ACCOUNT}:{rest}");
    let role = |name: &str| format!("arn:aws:iam::{ACCOUNT}:role/{NAME_PREFIX}-{name}");
    let log_group = |name: &str| arn("logs", &format!("log-group:{name}"));
    let kms_key = kms_key_arn(region);
    let lambda_logs: Vec<String> = ["slack-handler", "slack-worker", "sweeper"].iter().map(|f| log_group(&format!("/aws/lambda/{NAME_PREFIX}-{f}"))).collect();
    let session_log_group = log_group("/powerpole/ssm-sessions");
    let export_log_group = log_group(&format!("/aws/lambda/{NAME_PREFIX}-export"));
    let vars = json!({
        "partition": "aws",
        "dns_suffix": "amazonaws.com",
        "region": region,
        "account_id": ACCOUNT,
        "orchestrator_role_arns": [role("orchestrator"), role("slack-worker")],
        "slack_handler_role_arn": role("slack-handler"),
        "serve_role_arn": role("serve"),
        "bastion_role_arn": role("bastion"),
        "security_team_role_arn": role("security-team-logs"),
        "log_group_arns": [session_log_group, lambda_logs[0], lambda_logs[1], lambda_logs[2], export_log_group],
        "kms_key_arn": kms_key,
        "table_name": table,
        "session_log_group_arn": session_log_group,
        "slack_handler_log_group_arn": lambda_logs[0],
        "slack_worker_log_group_arn": lambda_logs[1],
        "sweeper_log_group_arn": lambda_logs[2],
        "follow_up_queue_arn": arn("sqs", &format!("{NAME_PREFIX}-slack-follow-ups")),
        "audit_export_bucket_arn": format!("arn:aws:s3:::{NAME_PREFIX}-audit-{ACCOUNT}"),
        "export_failure_queue_arn": arn("sqs", &format!("{NAME_PREFIX}-export-failures")),
        "export_log_group_arn": export_log_group,
        "config_parameter_arn": arn("ssm", &format!("parameter/{NAME_PREFIX}/config")),
        "config_layers_path_arn": arn("ssm", &format!("parameter/{NAME_PREFIX}/config.d")),
        "bastion_instance_profile_arn": format!("arn:aws:iam::{ACCOUNT}:instance-profile/{NAME_PREFIX}-bastion"),
        "bastion_instance_types": ["t3.micro"],
        "bastion_ami_owners": ["amazon"],
        "bastion_ami_parameter_arn": format!("arn:aws:ssm:{region}:*:parameter/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"),
        "bastion_subnet_arns": [arn("ec2", &format!("subnet/{subnet_id}"))],
        "bastion_subnet_ids": [subnet_id],
        "bastion_security_group_ids": [security_group_id],
        "lambda_subnet_ids": [lambda_subnet_id],
        "lambda_subnet_arns": [arn("ec2", &format!("subnet/{lambda_subnet_id}"))],
        "lambda_security_group_id": lambda_security_group_id,
        "secret_arns": [slack_secret_arn, admin_secret_arn],
        "secret_kms_key_arns": [kms_key],
        "slack_secret_arn": slack_secret_arn,
        "admin_secret_arns": [admin_secret_arn],
        "requester_index_name": "by_requester",
        "deployment_id": deployment_id(),
        "session_document_arn": arn("ssm", &format!("document/{NAME_PREFIX}-session")),
        "engineer_identity_variable": "${aws:PrincipalTag/email}",
    });
    let mut vars: Refs = vars.as_object().expect("an object").iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    // audit-key-policy.json's and export.json's values (export.tf's key of the audit bucket).
    vars.insert("export_role_arn".into(), json!(role("export")));
    vars.insert("audit_key_break_glass_principal_arn".into(), json!(example_input("audit_key_break_glass_principal_arn")));
    vars.insert("audit_kms_key_arn".into(), json!(audit_kms_key_arn(region)));
    vars
}

/// config.tf's parameter and config_layers.tf's fragments, rendered from their own text:
/// (the parameter's value, the fragments by name, the fragments' path, the parameter's name).
pub fn render_configuration(known: &Known, operator_toml: &str) -> (String, Vec<(String, String)>, String, String) {
    let config_tf = read(&crate::module_dir().join("config.tf"));
    let layers_tf = read(&crate::module_dir().join("config_layers.tf"));
    let config_name = format!("/{NAME_PREFIX}/config"); // coalesce(var.config_parameter_name, "/${var.name_prefix}/config")
    let layers_path = format!("{config_name}.d"); // local.config_layers_path
    let mut refs = known.vars.clone();
    for (k, v) in [
        ("trimspace(var.powerpole_toml)", json!(operator_toml.trim())),
        ("var.deployment_id", json!(deployment_id())),
        ("aws_dynamodb_table.sessions.name", json!("powerpole")),
        ("var.slack_secret_arn", json!(known.slack_secret_arn)),
        ("var.slack_secret_keys.signing_secret", json!("signing_secret")),
        ("var.slack_secret_keys.bot_token", json!("bot_token")),
        ("aws_iam_instance_profile.bastion.name", json!(format!("{NAME_PREFIX}-bastion"))),
        ("var.bastion_instance_types[0]", json!("t3.micro")),
        ("var.bastion_ami_parameter", json!("/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64")),
        // var.targets["billing"] of main.tf (db_port 3306; no bastion_subnet_id).
        ("name", json!("billing")),
        ("target.admin_secret_arn", json!(known.admin_secret_arn)),
        ("target.db_port", json!(DB_PORT)),
        ("aws_security_group.bastion[name].id", json!(known.security_group_id)),
        ("coalesce(target.bastion_subnet_id, var.bastion_subnet_ids[0])", json!(known.subnet_id)),
    ] {
        refs.insert(k.into(), v);
    }
    let config = terraform::render(&terraform::heredoc(&config_tf, "rendered_powerpole_toml").expect("config.tf's heredoc"), &refs).unwrap_or_else(|e| panic!("config.tf: {e}"));
    let common = terraform::render(&terraform::heredoc(&layers_tf, "config_layer_common").expect("the common fragment"), &refs).unwrap_or_else(|e| panic!("config_layers.tf: {e}"));
    let target = terraform::render(&terraform::joined(&layers_tf, "config_layer_targets").expect("the per-target fragment"), &refs).unwrap_or_else(|e| panic!("config_layers.tf: {e}"));
    assert!(layers_tf.contains("\"target-${name}\" =>"), "config_layers.tf names a target's fragment `target-<name>`");
    (config, vec![("common".into(), common), ("target-billing".into(), target)], layers_path, config_name)
}

