#!/usr/bin/env python3
"""Read the Terraform module (python-hcl2) and check who may do what:

  - no resource manages the account-wide SSM-SessionManagerRunShell document; powerpole's own
    Session document is Standard_Stream, logs to the session log group with KMS encryption,
    has idle and maximum durations, and runs sessions as the user the bastion's user data makes;
  - the four Lambda functions run as four distinct roles: the Slack handler its own
    (slack-handler.json), the worker and the sweeper each their own (the orchestrator's policy),
    the audit export its own (export.json);
  - a serve role exists, trusted by ECS tasks and EC2 only, with its own policy file;
  - the follow-up queue's policy names only the Slack handler's role as a sender: an Allow for
    that role alone, and a Deny of sqs:SendMessage to every other principal.

Usage: check_hcl.py   (exit 1 on any problem; PYTHONPATH must hold python-hcl2)
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import hcl2

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "infra" / "modules" / "powerpole"
USER_DATA = ROOT / "src" / "bastion" / "user-data.sh"


def clean(value):
    """python-hcl2 keeps the quotes of string literals and block labels; drop them everywhere."""
    if isinstance(value, dict):
        return {clean(k): clean(v) for k, v in value.items() if k != "__is_block__"}
    if isinstance(value, list):
        return [clean(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def load_module() -> tuple[dict, dict, dict]:
    """resources[type][name], data[type][name], locals merged, from every .tf of the module."""
    resources: dict = {}
    data: dict = {}
    local: dict = {}
    for tf in sorted(MODULE.glob("*.tf")):
        with tf.open() as fh:
            parsed = clean(hcl2.load(fh))
        for block in parsed.get("resource", []):
            for rtype, named in block.items():
                for name, body in named.items():
                    resources.setdefault(rtype, {})[name] = body
        for block in parsed.get("data", []):
            for dtype, named in block.items():
                for name, body in named.items():
                    data.setdefault(dtype, {})[name] = body
        for block in parsed.get("locals", []):
            local.update(block)
    return resources, data, local


def ref(value) -> str:
    """An HCL expression as python-hcl2 gives it, without the ${...} around it."""
    text = value if isinstance(value, str) else str(value)
    match = re.fullmatch(r"\$\{(.*)\}", text.strip())
    return match.group(1) if match else text


def first(value):
    return value[0] if isinstance(value, list) and value else value


def main() -> int:
    resources, data, local = load_module()
    problems: list[str] = []
    text = "".join(tf.read_text() for tf in sorted(MODULE.glob("*.tf")))

    # --- Session documents ---
    if "SSM-SessionManagerRunShell" in re.sub(r"#.*", "", text):
        problems.append("the module still names SSM-SessionManagerRunShell outside comments")
    documents = resources.get("aws_ssm_document", {})
    for name, doc in documents.items():
        if "SSM-SessionManagerRunShell" in str(doc.get("name")):
            problems.append(f"aws_ssm_document.{name} manages SSM-SessionManagerRunShell")
    session_docs = {n: d for n, d in documents.items() if d.get("document_type") == "Session"}
    if len(session_docs) != 1:
        problems.append(f"expected one Session document of powerpole's own, found {sorted(session_docs)}")
    for name, doc in session_docs.items():
        content = str(doc.get("content"))
        for needle in ['sessionType = "Standard_Stream"', "cloudWatchLogGroupName = aws_cloudwatch_log_group.sessions.name",
                       "cloudWatchEncryptionEnabled = true", "kmsKeyId = aws_kms_key.this", "runAsEnabled = true",
                       "runAsDefaultUser = local.session_run_as_user", "idleSessionTimeout", "maxSessionDuration"]:
            if needle.replace(" ", "") not in content.replace(" ", "").replace("'", '"'):
                problems.append(f"aws_ssm_document.{name}: content lacks {needle}")
    run_as = local.get("session_run_as_user")
    script_user = re.search(r"^SESSION_USER=(\S+)$", USER_DATA.read_text(), re.M)
    if not script_user or run_as != script_user.group(1):
        problems.append(f"local.session_run_as_user ({run_as}) is not the SESSION_USER the user data creates "
                        f"({script_user.group(1) if script_user else 'none'})")

    # --- Lambda roles ---
    functions = resources.get("aws_lambda_function", {})
    roles = {name: ref(f.get("role")) for name, f in functions.items()}
    expected = {"slack_handler": "aws_iam_role.slack_handler.arn", "slack_worker": "aws_iam_role.slack_worker.arn",
                "sweeper": "aws_iam_role.orchestrator.arn", "export": "aws_iam_role.export.arn"}
    if roles != expected:
        problems.append(f"Lambda roles are {roles}, expected {expected}")
    iam_roles = resources.get("aws_iam_role", {})
    policies = resources.get("aws_iam_role_policy", {})
    for role, policy_file in [("slack_handler", "slack-handler.json"), ("orchestrator", "orchestrator.json"),
                              ("slack_worker", "orchestrator.json"), ("serve", "serve.json"), ("export", "export.json")]:
        if role not in iam_roles:
            problems.append(f"no aws_iam_role.{role}")
        attached = [n for n, p in policies.items() if ref(p.get("role")) == f"aws_iam_role.{role}.id"]
        files = [re.search(r"/([\w.-]+\.json)", str(policies[n].get("policy"))) for n in attached]
        if [f.group(1) if f else None for f in files] != [policy_file]:
            problems.append(f"aws_iam_role.{role} must have exactly one inline policy, {policy_file}; has {attached}")
    lambda_role_names = [iam_roles.get(r, {}).get("name") for r in ("slack_handler", "slack_worker", "orchestrator", "export")]
    if len(set(lambda_role_names)) != 4:
        problems.append(f"the four Lambda roles must have four distinct names: {lambda_role_names}")

    # --- serve's trust ---
    serve = iam_roles.get("serve", {})
    trust_ref = ref(serve.get("assume_role_policy", ""))
    trust_name = trust_ref.split(".")[2] if trust_ref.startswith("data.aws_iam_policy_document.") else None
    trust = data.get("aws_iam_policy_document", {}).get(trust_name or "", {})
    principals = [p for st in trust.get("statement", []) for p in st.get("principals", [])]
    identifiers = [ref(first(p.get("identifiers"))) for p in principals]
    if identifiers != ["var.serve_trusted_services"]:
        problems.append(f"the serve role's trust names {identifiers}, expected var.serve_trusted_services")
    if "ecs-tasks.amazonaws.com" not in text or "ec2.amazonaws.com" not in text:
        problems.append("serve_trusted_services does not default to ECS tasks and EC2")

    # --- the queue's senders ---
    queue_policy = resources.get("aws_sqs_queue_policy", {}).get("follow_ups", {})
    doc_ref = ref(queue_policy.get("policy", ""))
    doc_name = doc_ref.split(".")[2] if doc_ref.startswith("data.aws_iam_policy_document.") else ""
    doc = data.get("aws_iam_policy_document", {}).get(doc_name, {})
    senders_allowed: list[str] = []
    deny_others = False
    for st in doc.get("statement", []):
        actions = st.get("actions", [])
        if "sqs:SendMessage" not in actions and "sqs:*" not in actions:
            continue
        who = [ref(i) for p in st.get("principals", []) for i in p.get("identifiers", [])]
        if st.get("effect") == "Allow":
            senders_allowed += who
        conditions = st.get("condition", [])
        if st.get("effect") == "Deny" and who == ["*"] and any(
                c.get("test") == "ArnNotEquals" and c.get("variable") == "aws:PrincipalArn"
                and [ref(v) for v in c.get("values", [])] == ["aws_iam_role.slack_handler.arn"] for c in conditions):
            deny_others = True
    if senders_allowed != ["aws_iam_role.slack_handler.arn"]:
        problems.append(f"the follow-up queue allows sending by {senders_allowed}, expected only the Slack handler's role")
    if not deny_others:
        problems.append("the follow-up queue does not deny sqs:SendMessage to every principal but the Slack handler's role")

    for p in problems:
        print(f"  hcl: {p}")
    print(f"hcl: {'PASS' if not problems else 'FAIL'} (session document, Lambda and serve roles, queue senders; "
          f"{len(problems)} problem(s))")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
