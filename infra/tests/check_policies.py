#!/usr/bin/env python3
"""Evaluate the rendered IAM documents (render_policies.py output) against the requests an attacker
or a colleague would make, and check who may do what (issue 21, items 1 and 6):

  - engineer.json: every SSM path onto a powerpole bastion other than StartSession with
    powerpole's document is explicitly denied (SendCommand, CreateAssociation(Batch),
    StartAutomationExecution, EC2 Instance Connect, and a session with any other document:
    AWS-StartInteractiveCommand, port forwarding, SSH, SSM-SessionManagerRunShell), even when
    the same principal also holds AmazonSSMFullAccess (modelled as Allow ssm:* on *); a session
    on one's own bastion with powerpole's document is still allowed;
  - ssm-guard-scp.json and ssm-guard-boundary.json: Run Command, associations and Instance
    Connect on powerpole instances are denied to everyone, sessions to everyone but the engineer
    roles, and nothing else is touched;
  - bastion-instance.json: no ec2messages (Run Command and State Manager cannot be delivered),
    logs only into the session log group, kms:Decrypt only of Session Manager data keys;
  - export.json: s3:PutObject only with If-None-Match: * (a request without it is refused);
    audit-key-policy.json: disabling, deleting, rotation off and policy changes denied to
    everyone but the break-glass principal, an administrator included.

The evaluator is small and explicit (Allow/Deny, Action/NotAction, Resource/NotResource with
wildcards, the condition operators these documents use, policy variables); a condition operator
it does not know fails the test rather than being ignored.

Usage: check_policies.py RENDERED_DIR   (exit 1 on any problem)
"""
from __future__ import annotations

import fnmatch
import json
import re
import sys
from pathlib import Path

ACCOUNT = "123456789012"
REGION = "eu-west-1"
INSTANCE = f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0123456789abcdef0"
OTHER_INSTANCE = f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0fedcba9876543210"
DOC = f"arn:aws:ssm:{REGION}:{ACCOUNT}:document/powerpole-session"
AWS_DOC = f"arn:aws:ssm:{REGION}::document/%s"
BASTION_TAGS = {"powerpole:managed": "true", "powerpole:deployment": "default", "powerpole:identity": "alice@example.com"}
ENGINEER = {"aws:PrincipalTag/email": "alice@example.com", "aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_PowerpoleEngineer_0123abcd", "aws:userid": "AROAEXAMPLE:alice@example.com"}
ADMIN = {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_AdministratorAccess_0123abcd"}
SSM_FULL_ACCESS = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ssm:*", "Resource": "*"}]}

UNKNOWN: list[str] = []


def as_list(value):
    return value if isinstance(value, list) else [value]


def like(pattern: str, value: str, ignore_case: bool = False) -> bool:
    if ignore_case:
        pattern, value = pattern.lower(), value.lower()
    return fnmatch.fnmatchcase(value, pattern)


def substitute(value: str, ctx: dict) -> str:
    return re.sub(r"\$\{([^}]+)\}", lambda m: ctx.get(m.group(1), "\x00missing"), value)


def condition_holds(op: str, key: str, wanted, ctx: dict) -> bool:
    if_exists = op.endswith("IfExists")
    base = op[: -len("IfExists")] if if_exists else op
    qualifier, _, base = base.rpartition(":")
    present = key in ctx
    if base == "Null":
        return (not present) == (str(as_list(wanted)[0]).lower() == "true")
    if not present:
        # A negated operator holds on a missing key; ...IfExists holds too.
        return if_exists or base.startswith(("StringNot", "ArnNot"))
    values = as_list(ctx[key])
    wanted = [substitute(str(w), ctx) for w in as_list(wanted)]
    tests = {
        "StringEquals": lambda v, w: v == w,
        "StringEqualsIgnoreCase": lambda v, w: v.lower() == w.lower(),
        "StringLike": lambda v, w: like(w, v),
        "ArnEquals": lambda v, w: v == w,
        "ArnLike": lambda v, w: like(w, v),
        "Bool": lambda v, w: str(v).lower() == w.lower(),
    }
    negated = {"StringNotEquals": "StringEquals", "ArnNotEquals": "ArnEquals", "ArnNotLike": "ArnLike", "StringNotLike": "StringLike"}
    if base in negated:
        test = tests[negated[base]]
        return not any(test(str(v), w) for v in values for w in wanted)
    if base not in tests:
        UNKNOWN.append(op)
        return False
    matches = [any(tests[base](str(v), w) for w in wanted) for v in values]
    return all(matches) if qualifier == "ForAllValues" else any(matches)


def statement_applies(st: dict, action: str, resource: str, ctx: dict) -> bool:
    if "Action" in st and not any(like(a, action, True) for a in as_list(st["Action"])):
        return False
    if "NotAction" in st and any(like(a, action, True) for a in as_list(st["NotAction"])):
        return False
    if "Resource" in st and not any(like(substitute(r, ctx), resource) for r in as_list(st["Resource"])):
        return False
    if "NotResource" in st and any(like(substitute(r, ctx), resource) for r in as_list(st["NotResource"])):
        return False
    for op, keys in st.get("Condition", {}).items():
        for key, wanted in keys.items():
            if not condition_holds(op, key, wanted, ctx):
                return False
    return True


def decide(policies: list[dict], action: str, resources: list[str], ctx: dict, tags: dict[str, dict] | None = None) -> str:
    """'Deny' (explicit), 'Allow' (every resource allowed, none denied) or 'Implicit'."""
    allowed_all = True
    for resource in resources:
        rctx = dict(ctx)
        for k, v in (tags or {}).get(resource, {}).items():
            rctx[f"aws:ResourceTag/{k}"] = v
            rctx[f"ssm:resourceTag/{k}"] = v
        allowed = False
        for policy in policies:
            for st in as_list(policy["Statement"]):
                if statement_applies(st, action, resource, rctx):
                    if st["Effect"] == "Deny":
                        return "Deny"
                    allowed = True
        allowed_all &= allowed
    return "Allow" if allowed_all else "Implicit"


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    d = Path(sys.argv[1])
    load = lambda name: json.loads((d / name).read_text())  # noqa: E731
    engineer, scp, boundary = load("engineer.json"), load("ssm-guard-scp.json"), load("ssm-guard-boundary.json")
    bastion, export, audit_key_policy = load("bastion-instance.json"), load("export.json"), load("audit-key-policy.json")
    tags = {INSTANCE: BASTION_TAGS, OTHER_INSTANCE: {"Name": "web-1"}}
    problems: list[str] = []
    checks = 0

    def expect(what: str, got: str, want: str) -> None:
        nonlocal checks
        checks += 1
        if got != want:
            problems.append(f"{what}: {got}, expected {want}")

    both = [engineer, SSM_FULL_ACCESS]
    # --- engineer.json, with AmazonSSMFullAccess beside it -----------------------------------------
    expect("engineer: StartSession with powerpole's document on own bastion",
           decide([engineer], "ssm:StartSession", [INSTANCE, DOC], {**ENGINEER, "ssm:SessionDocumentAccessCheck": "true"}, tags), "Allow")
    for action in ["ssm:SendCommand", "ssm:CreateAssociation", "ssm:CreateAssociationBatch"]:
        expect(f"engineer + SSM full access: {action} on a powerpole bastion",
               decide(both, action, [INSTANCE, AWS_DOC % "AWS-RunShellScript"], ENGINEER, tags), "Deny")
    expect("engineer + SSM full access: StartAutomationExecution",
           decide(both, "ssm:StartAutomationExecution", [f"arn:aws:ssm:{REGION}:{ACCOUNT}:automation-definition/AWS-RunShellScriptOnInstance:$DEFAULT"], ENGINEER), "Deny")
    for action in ["ec2-instance-connect:SendSSHPublicKey", "ec2-instance-connect:SendSerialConsoleSSHPublicKey"]:
        expect(f"engineer: {action} on a powerpole bastion", decide(both + [{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}], action, [INSTANCE], ENGINEER, tags), "Deny")
    for doc in ["AWS-StartInteractiveCommand", "AWS-StartNonInteractiveCommand", "AWS-StartPortForwardingSession",
                "AWS-StartPortForwardingSessionToRemoteHost", "AWS-StartSSHSession", "SSM-SessionManagerRunShell"]:
        expect(f"engineer + SSM full access: StartSession with {doc} on a powerpole bastion",
               decide(both, "ssm:StartSession", [INSTANCE, AWS_DOC % doc], ENGINEER, tags), "Deny")
    expect("engineer: SendCommand on an instance that is not powerpole's is not denied by this policy",
           decide(both, "ssm:SendCommand", [OTHER_INSTANCE, AWS_DOC % "AWS-RunShellScript"], ENGINEER, tags), "Allow")

    # --- the SCP and the boundary ---------------------------------------------------------------
    everything = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    for name, doc in [("scp", scp), ("boundary", boundary)]:
        for who, ctx in [("an administrator", ADMIN), ("an engineer", ENGINEER)]:
            for action in ["ssm:SendCommand", "ssm:CreateAssociation", "ec2-instance-connect:SendSSHPublicKey"]:
                expect(f"{name}: {who}: {action} on a powerpole bastion", decide([doc, everything], action, [INSTANCE], ctx, tags), "Deny")
        expect(f"{name}: an administrator: StartSession on a powerpole bastion",
               decide([doc, everything], "ssm:StartSession", [INSTANCE, DOC], ADMIN, tags), "Deny")
        expect(f"{name}: an engineer role: StartSession on a powerpole bastion is left to engineer.json",
               decide([doc, everything], "ssm:StartSession", [INSTANCE, DOC], ENGINEER, tags), "Allow")
        expect(f"{name}: an administrator: SendCommand on another instance is untouched",
               decide([doc, everything], "ssm:SendCommand", [OTHER_INSTANCE], ADMIN, tags), "Allow")
    expect("boundary: allows what it does not deny", decide([boundary], "s3:GetObject", ["arn:aws:s3:::bucket/key"], ADMIN), "Allow")

    # --- the bastion role ------------------------------------------------------------------------
    actions = {a for st in bastion["Statement"] if st["Effect"] == "Allow" for a in as_list(st["Action"])}
    checks += 1
    if any(a.startswith("ec2messages:") for a in actions):
        problems.append("bastion: still allows ec2messages (Run Command and State Manager delivery)")
    checks += 1
    if "kms:GenerateDataKey" in actions:
        problems.append("bastion: allows kms:GenerateDataKey (the agent only decrypts session data keys)")
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    expect("bastion: kms:Decrypt of a Session Manager data key",
           decide([bastion], "kms:Decrypt", [key], {"kms:EncryptionContext:aws:ssm:SessionId": "alice-0123", "kms:EncryptionContext:aws:ssm:TargetId": "i-0123456789abcdef0"}), "Allow")
    expect("bastion: kms:Decrypt of anything else (a table item, a log event)",
           decide([bastion], "kms:Decrypt", [key], {"kms:ViaService": f"dynamodb.{REGION}.amazonaws.com"}), "Implicit")
    logs = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:"
    expect("bastion: PutLogEvents into the session log group", decide([bastion], "logs:PutLogEvents", [f"{logs}/powerpole/ssm-sessions:log-stream:alice-0123"], {}), "Allow")
    expect("bastion: PutLogEvents into another log group", decide([bastion], "logs:PutLogEvents", [f"{logs}/aws/lambda/powerpole-sweeper:log-stream:x"], {}), "Implicit")
    for action in ["logs:DeleteLogStream", "logs:GetLogEvents", "logs:PutRetentionPolicy"]:
        expect(f"bastion: {action} on the session log group", decide([bastion], action, [f"{logs}/powerpole/ssm-sessions:log-stream:alice-0123"], {}), "Implicit")

    # --- the export ------------------------------------------------------------------------------
    obj = f"arn:aws:s3:::powerpole-audit-{ACCOUNT}/audit/s-1/00000001.json"
    expect("export: PutObject with If-None-Match: *", decide([export], "s3:PutObject", [obj], {"s3:if-none-match": "*"}), "Allow")
    expect("export: PutObject without If-None-Match (a new current version over a locked one)", decide([export], "s3:PutObject", [obj], {}), "Implicit")
    audit_key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/5678abcd-12ab-34cd-56ef-1234567890ab"
    admin_ctx = {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:root"}
    glass_ctx = {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/break-glass"}
    for action in ["kms:DisableKey", "kms:ScheduleKeyDeletion", "kms:PutKeyPolicy", "kms:DisableKeyRotation"]:
        expect(f"audit key: an administrator: {action}", decide([audit_key_policy], action, [audit_key], {**admin_ctx, **ADMIN}), "Deny")
        expect(f"audit key: the break-glass principal: {action}", decide([audit_key_policy], action, [audit_key], glass_ctx), "Allow")
    expect("audit key: the export role encrypts through S3",
           decide([audit_key_policy], "kms:GenerateDataKey", [audit_key], {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/powerpole-export", "kms:ViaService": f"s3.{REGION}.amazonaws.com"}), "Allow")

    for op in sorted(set(UNKNOWN)):
        problems.append(f"evaluator: condition operator {op} is not modelled")
    for p in problems:
        print(f"  policies: {p}")
    print(f"policies: {'FAILED' if problems else 'PASS'} ({checks} request(s) evaluated, {len(problems)} problem(s))")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
