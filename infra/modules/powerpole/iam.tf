# IAM: three principals, each with one inline policy rendered from policies/ (the single source),
# and trust policies that say who may become them. The Lambda and EC2 trust policies carry no
# aws:SourceAccount condition: EC2 does not set that key when it assumes an instance role, and a
# condition on a missing key would deny every assumption.

# --- Orchestrator: the two Lambda functions ----------------------------------------------------

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
  description          = "powerpole Lambdas: launch and terminate bastions, session table, Slack and admin secrets"
  assume_role_policy   = data.aws_iam_policy_document.orchestrator_trust.json
  permissions_boundary = var.permissions_boundary_arn
  tags                 = local.tags
}

resource "aws_iam_role_policy" "orchestrator" {
  name   = "powerpole-orchestrator"
  role   = aws_iam_role.orchestrator.id
  policy = templatefile("${local.policies_dir}/orchestrator.json", local.role_policy_template_vars)
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
