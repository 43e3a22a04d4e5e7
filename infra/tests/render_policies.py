#!/usr/bin/env python3
"""Render infra/modules/powerpole/policies/*.json the way Terraform's templatefile() does, with plausible values.

Checks, before rendering, that the templates and the Terraform agree:
  - every placeholder in a template is a key of the map the module renders it with
    (kms-key-policy.json and audit-key-policy.json: local.key_policy_template_vars; every other file: that map merged
    with local.role_policy_extra_template_vars), read from the module with python-hcl2;
  - every file in infra/modules/powerpole/policies/ is rendered by the module (no orphan policy);
  - placeholders are only `${name}` (a string) or `${jsonencode(name)}` (a list); `$${...}` is
    templatefile()'s escape for a literal `${...}` (an IAM policy variable such as
    `${aws:userid}`) and is rendered as that literal.

Usage: render_policies.py OUT_DIR   (writes OUT_DIR/<same file name>; exit 1 on any problem)
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import hcl2

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "infra" / "modules" / "powerpole" / "policies"
MODULE = ROOT / "infra" / "modules" / "powerpole"
KEY_POLICIES = {"kms-key-policy.json", "audit-key-policy.json"}

ACCOUNT = "123456789012"
REGION = "eu-west-1"
ARN_LOGS = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:"
SAMPLE = {
    "partition": "aws",
    "dns_suffix": "amazonaws.com",
    "region": REGION,
    "account_id": ACCOUNT,
    "table_name": "powerpole",
    "orchestrator_role_arns": [f"arn:aws:iam::{ACCOUNT}:role/powerpole-orchestrator", f"arn:aws:iam::{ACCOUNT}:role/powerpole-slack-worker"],
    "slack_handler_role_arn": f"arn:aws:iam::{ACCOUNT}:role/powerpole-slack-handler",
    "serve_role_arn": f"arn:aws:iam::{ACCOUNT}:role/powerpole-serve",
    "bastion_role_arn": f"arn:aws:iam::{ACCOUNT}:role/powerpole-bastion",
    "security_team_role_arn": f"arn:aws:iam::{ACCOUNT}:role/powerpole-security-team-logs",
    "bastion_instance_profile_arn": f"arn:aws:iam::{ACCOUNT}:instance-profile/powerpole-bastion",
    "kms_key_arn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "session_log_group_arn": f"{ARN_LOGS}/powerpole/ssm-sessions",
    "slack_handler_log_group_arn": f"{ARN_LOGS}/aws/lambda/powerpole-slack-handler",
    "slack_worker_log_group_arn": f"{ARN_LOGS}/aws/lambda/powerpole-slack-worker",
    "sweeper_log_group_arn": f"{ARN_LOGS}/aws/lambda/powerpole-sweeper",
    "log_group_arns": [
        f"{ARN_LOGS}/powerpole/ssm-sessions",
        f"{ARN_LOGS}/aws/lambda/powerpole-slack-handler",
        f"{ARN_LOGS}/aws/lambda/powerpole-slack-worker",
        f"{ARN_LOGS}/aws/lambda/powerpole-sweeper",
    ],
    "follow_up_queue_arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:powerpole-slack-follow-ups",
    "audit_export_bucket_arn": f"arn:aws:s3:::powerpole-audit-{ACCOUNT}",
    "export_failure_queue_arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:powerpole-export-failures",
    "export_log_group_arn": f"{ARN_LOGS}/aws/lambda/powerpole-export",
    "config_parameter_arn": f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/powerpole/config",
    "config_layers_path_arn": f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/powerpole/config.d",
    "bastion_instance_types": ["t3.micro"],
    "bastion_ami_owners": ["amazon"],
    "bastion_ami_parameter_arn": f"arn:aws:ssm:{REGION}:*:parameter/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
    "bastion_subnet_arns": [
        f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/subnet-0a1b2c3d4e5f60001",
        f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/subnet-0a1b2c3d4e5f60002",
    ],
    "bastion_subnet_ids": ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"],
    "bastion_security_group_ids": ["sg-0a1b2c3d4e5f60001"],
    "lambda_subnet_ids": ["subnet-0a1b2c3d4e5f60011", "subnet-0a1b2c3d4e5f60012"],
    "lambda_subnet_arns": [
        f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/subnet-0a1b2c3d4e5f60011",
        f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/subnet-0a1b2c3d4e5f60012",
    ],
    "lambda_security_group_id": "sg-0a1b2c3d4e5f60011",
    "secret_arns": [
        f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:powerpole/slack-AbCdEf",
        f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:powerpole/targets/billing/admin-GhIjKl",
    ],
    "secret_kms_key_arns": [f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"],
    "slack_secret_arn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:powerpole/slack-AbCdEf",
    "admin_secret_arns": [f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:powerpole/targets/billing/admin-GhIjKl"],
    "requester_index_name": "by_requester",
    "deployment_id": "default",
    "session_document_arn": f"arn:aws:ssm:{REGION}:{ACCOUNT}:document/powerpole-session",
    "engineer_identity_variable": "${aws:PrincipalTag/email}",
    "export_role_arn": f"arn:aws:iam::{ACCOUNT}:role/powerpole-export",
    "audit_key_break_glass_principal_arn": f"arn:aws:iam::{ACCOUNT}:role/break-glass",
    "audit_kms_key_arn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/5678abcd-12ab-34cd-56ef-1234567890ab",
    "engineer_principal_arn_patterns": ["arn:aws:iam::*:role/aws-reserved/sso.amazonaws.com/*AWSReservedSSO_PowerpoleEngineer_*"],
}

PLACEHOLDER = re.compile(r"\$?\$\{([^}]*)\}")
JSONENCODE = re.compile(r"^jsonencode\(([a-z_][a-z0-9_]*)\)$")
NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def unquote(value: str) -> str:
    """python-hcl2 may keep the quotes of a quoted object key; drop them."""
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


def module_template_keys() -> tuple[set[str], set[str], str]:
    """Keys of the two template-variable maps in the module's locals, and the module's text."""
    key_vars: set[str] = set()
    extra_vars: set[str] = set()
    text = ""
    for tf in sorted(MODULE.glob("*.tf")):
        body = tf.read_text()
        text += body
        with tf.open() as fh:
            parsed = hcl2.load(fh)
        for block in parsed.get("locals", []):
            if "key_policy_template_vars" in block:
                key_vars |= {unquote(k) for k in block["key_policy_template_vars"]}
            if "role_policy_extra_template_vars" in block:
                extra_vars |= {unquote(k) for k in block["role_policy_extra_template_vars"]}
    return key_vars, extra_vars, text


def render(path: Path, allowed: set[str], problems: list[str]) -> str:
    text = path.read_text()

    def substitute(match: re.Match[str]) -> str:
        if match.group(0).startswith("$$"):
            return match.group(0)[1:]  # templatefile()'s escape: a literal ${...}
        expr = match.group(1).strip()
        listed = JSONENCODE.match(expr)
        name = listed.group(1) if listed else expr
        if not listed and not NAME.match(expr):
            problems.append(f"{path.name}: unsupported placeholder ${{{expr}}}")
            return "null"
        if name not in allowed:
            problems.append(f"{path.name}: ${{{expr}}} is not passed by the Terraform module")
        if name not in SAMPLE:
            problems.append(f"{path.name}: no sample value for {name} in {Path(__file__).name}")
            return "null"
        value = SAMPLE[name]
        if listed:
            return json.dumps(value)
        if not isinstance(value, str):
            problems.append(f"{path.name}: {name} is a list: write ${{jsonencode({name})}}")
            return "null"
        return value

    return PLACEHOLDER.sub(substitute, text)


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)

    key_vars, extra_vars, module_text = module_template_keys()
    problems: list[str] = []
    if not key_vars or not extra_vars:
        problems.append("could not find key_policy_template_vars / role_policy_extra_template_vars in the module locals")

    files = sorted(POLICIES.glob("*.json"))
    if not files:
        problems.append(f"no policy files in {POLICIES}")
    for path in files:
        is_key_policy = path.name in KEY_POLICIES
        allowed = key_vars if is_key_policy else key_vars | extra_vars
        expected_map = "local.key_policy_template_vars" if is_key_policy else "local.role_policy_template_vars"
        call = re.search(r'templatefile\("\$\{local\.policies_dir\}/' + re.escape(path.name) + r'",\s*([\w.]+)\)', module_text)
        if not call:
            problems.append(f"{path.name}: not rendered by the module (no templatefile call)")
        elif call.group(1) != expected_map:
            problems.append(f"{path.name}: rendered with {call.group(1)}, expected {expected_map}")
        rendered = render(path, allowed, problems)
        try:
            json.loads(rendered)
        except json.JSONDecodeError as err:
            problems.append(f"{path.name}: rendered text is not JSON: {err}")
        (out / path.name).write_text(rendered)

    for p in problems:
        print(f"  policy template: {p}")
    if problems:
        print(f"render: FAILED ({len(problems)} problem(s))")
        return 1
    print(f"render: {len(files)} policy template(s) rendered, placeholders match the module")
    return 0


if __name__ == "__main__":
    sys.exit(main())
