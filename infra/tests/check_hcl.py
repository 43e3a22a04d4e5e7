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
    that role alone, and a Deny of sqs:SendMessage to every other principal;
  - the Lambda environment does not grow with the targets: it is rendered for 1 and for 50
    targets (each interpolation replaced by a long realistic value) and must be the same and
    under Lambda's 4 KB limit; what the module knows per target is in a Parameter Store
    fragment per target (config_layers.tf), each under the standard tier's 4 KB.

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

    problems += check_lambda_environment(resources)

    for p in problems:
        print(f"  hcl: {p}")
    print(f"hcl: {'PASS' if not problems else 'FAIL'} (session document, Lambda and serve roles, queue senders, Lambda environment; "
          f"{len(problems)} problem(s))")
    return 1 if problems else 0


# Long but realistic values for what the environment interpolates (the names a real deployment
# would have, with a 24-character name prefix), so the rendered size errs on the large side.
PREFIX = "powerpole-production-eu1"
SAMPLE_VALUES = {
    "var.log_level": "info,powerpole=debug,aws_config=warn",
    "aws_ssm_parameter.config.name": f"/{PREFIX}/config",
    "local.config_layers_path": f"/{PREFIX}/config.d",
    "aws_sqs_queue.follow_ups.url": f"https://sqs.eu-west-1.amazonaws.com/123456789012/{PREFIX}-follow-ups",
}
LAMBDA_ENV_LIMIT = 4096
FRAGMENT_LIMIT = 4096


def render(expression: str, targets: int) -> str:
    """A string expression of the environment, evaluated: each ${...} replaced by its sample value.
    `targets` is what var.targets holds; an expression that depends on it cannot be rendered."""
    def value(match: re.Match) -> str:
        inner = match.group(1).strip()
        if "var.targets" in inner or re.search(r"\bfor\b", inner):
            raise ValueError(f"{inner} depends on the targets ({targets})")
        if inner.startswith("sha256("):
            return "0" * 64
        if inner not in SAMPLE_VALUES:
            raise ValueError(f"no sample value for ${{{inner}}}: add one to SAMPLE_VALUES")
        return SAMPLE_VALUES[inner]
    return re.sub(r"\$\{(.*)\}", value, expression)


def environment_of(text: str, targets: int) -> dict[str, str]:
    """The Slack handler's environment (the largest: the shared one plus the queue URL), rendered
    from lambda.tf's `lambda_environment` local for `targets` targets."""
    block = re.search(r"lambda_environment = merge\((.*?)\n  \)", text, re.S)
    if not block:
        raise ValueError("lambda.tf has no `lambda_environment = merge(...)` local")
    body = block.group(1)
    if "var.targets" in body or re.search(r"\bfor\b", body):
        raise ValueError("the Lambda environment is built from var.targets: it grows with every target")
    literal = re.search(r"\{(.*?)\}\s*,\s*var\.lambda_environment", body, re.S)
    if not literal:
        raise ValueError("lambda_environment is not `merge({ ... }, var.lambda_environment)`")
    env = {}
    for key, expr in re.findall(r"^\s*([A-Z_][A-Z0-9_]*)\s*=\s*(.+?)\s*$", literal.group(1), re.M):
        expr = expr.strip()
        env[key] = expr[1:-1] if expr.startswith('"') else "${" + expr + "}"
    env["POWERPOLE_FOLLOW_UP_QUEUE_URL"] = "${aws_sqs_queue.follow_ups.url}"
    return {k: render(v, targets) for k, v in env.items()}


def check_lambda_environment(resources: dict) -> list[str]:
    problems: list[str] = []
    text = (MODULE / "lambda.tf").read_text()
    try:
        one, fifty = environment_of(text, 1), environment_of(text, 50)
    except ValueError as e:
        return [str(e)]
    size = sum(len(k) + len(v) for k, v in fifty.items())
    print(f"hcl: Lambda environment for 50 targets: {len(fifty)} variables, {size} bytes (limit {LAMBDA_ENV_LIMIT})")
    if one != fifty:
        problems.append("the Lambda environment differs between 1 and 50 targets")
    if size >= LAMBDA_ENV_LIMIT:
        problems.append(f"the Lambda environment for 50 targets is {size} bytes, over Lambda's {LAMBDA_ENV_LIMIT}")
    if any(k.startswith("POWERPOLE_TARGETS__") for k in fifty):
        problems.append("a per-target variable is in the Lambda environment")
    for name, function in resources.get("aws_lambda_function", {}).items():
        variables = str(first(function.get("environment", [{}])).get("variables", ""))
        if "var.targets" in variables:
            problems.append(f"aws_lambda_function.{name}: its environment is built from var.targets")
        # The audit export reads no configuration (only its bucket); every other function does.
        if name == "export":
            continue
        if "local.lambda_environment" not in variables:
            problems.append(f"aws_lambda_function.{name}: its environment is not local.lambda_environment (plus the queue URL)")
    # Per target, one fragment: the largest it can be (the longest secret ARN the validation
    # accepts in practice, a 32-character target name) stays under the standard tier's 4 KB.
    layers = (MODULE / "config_layers.tf").read_text()
    fragment = re.search(r'"target-\$\{name\}" => join\("\\n", \[\n(.*?)\n\s*\]\)', layers, re.S)
    layer_resource = resources.get("aws_ssm_parameter", {}).get("config_layer", {})
    if not fragment or "local.config_layers" not in str(layer_resource.get("for_each")):
        problems.append("config_layers.tf writes no per-target fragment (aws_ssm_parameter.config_layer over local.config_layers)")
    else:
        worst = {"name": "t" * 32, "jsonencode(target.admin_secret_arn)": '"arn:aws:secretsmanager:ap-southeast-2:123456789012:secret:' + "s" * 512 + '-AbCdEf"',
                 "target.db_port": "65535", "jsonencode(aws_security_group.bastion[name].id)": '"sg-0123456789abcdef0"',
                 "jsonencode(coalesce(target.bastion_subnet_id, var.bastion_subnet_ids[0]))": '"subnet-0123456789abcdef0"'}
        rendered = re.sub(r"\$\{(.*?)\}", lambda m: worst.get(m.group(1).strip(), "?"), fragment.group(1))
        if "?" in rendered.replace('"?"', ""):
            problems.append(f"a per-target fragment interpolates something the check does not know: {fragment.group(1)}")
        if len(rendered) >= FRAGMENT_LIMIT:
            problems.append(f"a per-target fragment can reach {len(rendered)} bytes, over the standard tier's {FRAGMENT_LIMIT}")
    return problems


if __name__ == "__main__":
    sys.exit(main())
