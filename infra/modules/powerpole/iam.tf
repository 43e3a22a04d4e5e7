# IAM: one role per principal, each with one inline policy rendered from policies/ (the single
# source), and trust policies that say who may become them: the Slack handler (public function
# URL: the Slack secret, the queue, the requester index and session items), the orchestrator (the sweeper) and the
# Slack worker (each its own role, one orchestrator policy),
# `powerpole serve` (ECS task or EC2), the bastions, the security team; plus the engineer policy
# that operators attach to the people who request access. The Lambda and EC2 trust policies carry no
# aws:SourceAccount condition: EC2 does not set that key when it assumes an instance role, and a
# condition on a missing key would deny every assumption.

# --- Orchestrator: the sweeper, and the Slack worker's role of its own ----------------------------------------------

data "aws_iam_policy_document" "orchestrator_trust" {
  statement {
    sid     = "LambdaService"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "orchestrator" {
  name                 = "${var.name_prefix}-orchestrator"
  description          = "powerpole worker and sweeper: launch and terminate bastions, session table, Slack and admin secrets"
  assume_role_policy   = data.aws_iam_policy_document.orchestrator_trust.json
  permissions_boundary = var.permissions_boundary_arn
  tags                 = local.tags
}

resource "aws_iam_role_policy" "orchestrator" {
  name   = "powerpole-orchestrator"
  role   = aws_iam_role.orchestrator.id
  policy = templatefile("${local.policies_dir}/orchestrator.json", local.role_policy_template_vars)
}

# The Slack worker has a role of its own, so that each Lambda function is its own principal (its
# own CloudTrail identity, its own role to narrow). It runs the same workflow steps as the sweeper
# (a decision can start a teardown), so it holds the orchestrator's policy.
resource "aws_iam_role" "slack_worker" {
  name                 = "${var.name_prefix}-slack-worker"
  description          = "powerpole Slack worker (follow-up queue): the orchestrator's policy, as its own principal"
  assume_role_policy   = data.aws_iam_policy_document.orchestrator_trust.json
  permissions_boundary = var.permissions_boundary_arn
  tags                 = local.tags
}

resource "aws_iam_role_policy" "slack_worker" {
  name   = "powerpole-orchestrator"
  role   = aws_iam_role.slack_worker.id
  policy = templatefile("${local.policies_dir}/orchestrator.json", local.role_policy_template_vars)
}

# --- Slack handler: the public function behind the URL --------------------------------------------
# A flaw here must not reach bastions, grants or admin secrets: it reads the Slack secret, queues
# verified requests, reads the requester index and session items (the Deny, Extend and Flag
# buttons open their modals after reading the session), nothing else.

resource "aws_iam_role" "slack_handler" {
  name                 = "${var.name_prefix}-slack-handler"
  description          = "powerpole Slack handler (function URL): Slack secret, follow-up queue, requester index, session items (read)"
  assume_role_policy   = data.aws_iam_policy_document.orchestrator_trust.json
  permissions_boundary = var.permissions_boundary_arn
  tags                 = local.tags
}

resource "aws_iam_role_policy" "slack_handler" {
  name   = "powerpole-slack-handler"
  role   = aws_iam_role.slack_handler.id
  policy = templatefile("${local.policies_dir}/slack-handler.json", local.role_policy_template_vars)
}

# --- serve: `powerpole serve` on ECS or EC2 ----------------------------------------------------------

data "aws_iam_policy_document" "serve_trust" {
  statement {
    sid     = "EcsTasksOrEc2"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = var.serve_trusted_services
    }
  }
}

resource "aws_iam_role" "serve" {
  name                 = "${var.name_prefix}-serve"
  description          = "powerpole serve (ECS task or EC2): what the orchestrator does, plus the start-up secret check"
  assume_role_policy   = data.aws_iam_policy_document.serve_trust.json
  permissions_boundary = var.permissions_boundary_arn
  tags                 = local.tags
}

resource "aws_iam_role_policy" "serve" {
  name   = "powerpole-serve"
  role   = aws_iam_role.serve.id
  policy = templatefile("${local.policies_dir}/serve.json", local.role_policy_template_vars)
}

resource "aws_iam_instance_profile" "serve" {
  name = "${var.name_prefix}-serve"
  role = aws_iam_role.serve.name
  tags = local.tags
}

# --- Engineers: who may enter which bastion ------------------------------------------------------------
# Attach to the people who request access (an IAM Identity Center permission set's customer
# managed policy, or an IAM role): a session only on the bastion tagged with their own identity,
# only with powerpole's session document. See infra/README.md, "Who may enter a bastion".

resource "aws_iam_policy" "engineer" {
  name        = "${var.name_prefix}-engineer"
  description = "powerpole: start sessions only on one's own bastions, only with the powerpole session document"
  policy      = templatefile("${local.policies_dir}/engineer.json", local.role_policy_template_vars)
  tags        = local.tags
}

# --- Bastion instances ---------------------------------------------------------------------------

data "aws_iam_policy_document" "bastion_trust" {
  statement {
    sid     = "Ec2Service"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "bastion" {
  name                 = "${var.name_prefix}-bastion"
  description          = "powerpole bastion instances: the SSM agent and session logging, nothing else"
  assume_role_policy   = data.aws_iam_policy_document.bastion_trust.json
  permissions_boundary = var.permissions_boundary_arn
  tags                 = local.tags
}

resource "aws_iam_role_policy" "bastion" {
  name   = "powerpole-bastion-instance"
  role   = aws_iam_role.bastion.id
  policy = templatefile("${local.policies_dir}/bastion-instance.json", local.role_policy_template_vars)
}

resource "aws_iam_instance_profile" "bastion" {
  name = "${var.name_prefix}-bastion"
  role = aws_iam_role.bastion.name
  tags = local.tags
}

# --- Security team: read-only access to the session logs ----------------------------------------

data "aws_iam_policy_document" "security_team_trust" {
  statement {
    sid     = "SecurityTeamPrincipals"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = var.security_team_principal_arns
    }
  }
}

resource "aws_iam_role" "security_team" {
  name                 = "${var.name_prefix}-security-team-logs"
  description          = "Security team: read the powerpole session logs, nothing else"
  assume_role_policy   = data.aws_iam_policy_document.security_team_trust.json
  max_session_duration = 3600
  permissions_boundary = var.permissions_boundary_arn
  tags                 = local.tags
}

resource "aws_iam_role_policy" "security_team" {
  name   = "powerpole-security-team-logs"
  role   = aws_iam_role.security_team.id
  policy = templatefile("${local.policies_dir}/security-team-logs.json", local.role_policy_template_vars)
}
