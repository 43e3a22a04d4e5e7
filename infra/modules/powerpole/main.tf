# Shared lookups and the values every policy template in policies/ is rendered with.
#
# The IAM documents live in policies/ inside this module (so it works from a registry or a Git
# source), one file per principal, so that a
# reviewer reads the same JSON that Terraform deploys and infra/tests can lint it with parliament.
# They are rendered with templatefile(): a placeholder ${name} is a string, ${jsonencode(name)} a list.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  dns_suffix = data.aws_partition.current.dns_suffix
  region     = data.aws_region.current.name

  policies_dir = "${path.module}/policies"

  tags = merge(var.tags, {
    "powerpole:component" = var.name_prefix
  })

  slack_handler_function_name = "${var.name_prefix}-slack-handler"
  slack_worker_function_name  = "${var.name_prefix}-slack-worker"
  sweeper_function_name       = "${var.name_prefix}-sweeper"
  follow_up_queue_name        = "${var.name_prefix}-slack-follow-ups"
  config_parameter_name       = coalesce(var.config_parameter_name, "/${var.name_prefix}/config")

  # Log group ARNs are built from names (not read from the resources) so that the KMS key policy,
  # which the log groups depend on, can name them without a dependency cycle.
  log_group_arn_prefix        = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:"
  session_log_group_arn       = "${local.log_group_arn_prefix}${var.session_log_group_name}"
  slack_handler_log_group_arn = "${local.log_group_arn_prefix}/aws/lambda/${local.slack_handler_function_name}"
  slack_worker_log_group_arn  = "${local.log_group_arn_prefix}/aws/lambda/${local.slack_worker_function_name}"
  sweeper_log_group_arn       = "${local.log_group_arn_prefix}/aws/lambda/${local.sweeper_function_name}"

  # Built from names, like the log groups, so that policies can name them before they exist.
  follow_up_queue_arn  = "arn:${local.partition}:sqs:${local.region}:${local.account_id}:${local.follow_up_queue_name}"
  config_parameter_arn = "arn:${local.partition}:ssm:${local.region}:${local.account_id}:parameter${local.config_parameter_name}"

  ec2_arn_prefix = "arn:${local.partition}:ec2:${local.region}:${local.account_id}"

  # Public parameters (/aws/service/...) belong to no account: their ARN has an empty account
  # field, which "*" matches.
  bastion_ami_parameter_arn = format(
    "arn:%s:ssm:%s:%s:parameter%s",
    local.partition,
    local.region,
    startswith(var.bastion_ami_parameter, "/aws/service/") ? "*" : local.account_id,
    var.bastion_ami_parameter,
  )

  bastion_subnet_arns = [for id in var.bastion_subnet_ids : "${local.ec2_arn_prefix}:subnet/${id}"]
  lambda_subnet_arns  = [for id in var.lambda_subnet_ids : "${local.ec2_arn_prefix}:subnet/${id}"]

  # Values for kms-key-policy.json. Nothing here may depend on the key itself.
  key_policy_template_vars = {
    partition              = local.partition
    dns_suffix             = local.dns_suffix
    region                 = local.region
    account_id             = local.account_id
    orchestrator_role_arns = [aws_iam_role.orchestrator.arn, aws_iam_role.slack_worker.arn]
    slack_handler_role_arn = aws_iam_role.slack_handler.arn
    serve_role_arn         = aws_iam_role.serve.arn
    bastion_role_arn       = aws_iam_role.bastion.arn
    security_team_role_arn = aws_iam_role.security_team.arn
    # audit-key-policy.json (export.tf).
    export_role_arn                     = aws_iam_role.export.arn
    audit_key_break_glass_principal_arn = var.audit_key_break_glass_principal_arn
    log_group_arns = concat(
      [local.session_log_group_arn, local.slack_handler_log_group_arn, local.slack_worker_log_group_arn, local.sweeper_log_group_arn, local.export_log_group_arn],
      [for name in var.additional_log_group_names : "${local.log_group_arn_prefix}${name}"],
    )
  }

  # Further values for the role policies (orchestrator.json, slack-handler.json, serve.json,
  # engineer.json, bastion-instance.json, security-team-logs.json), rendered with both maps merged.
  role_policy_extra_template_vars = {
    kms_key_arn                 = aws_kms_key.this.arn
    table_name                  = var.table_name
    session_log_group_arn       = local.session_log_group_arn
    slack_handler_log_group_arn = local.slack_handler_log_group_arn
    slack_worker_log_group_arn  = local.slack_worker_log_group_arn
    sweeper_log_group_arn       = local.sweeper_log_group_arn
    follow_up_queue_arn         = local.follow_up_queue_arn
    # The audit export (export.tf).
    audit_export_bucket_arn  = local.audit_export_bucket_arn
    export_failure_queue_arn = local.export_failure_queue_arn
    export_log_group_arn     = local.export_log_group_arn
    audit_kms_key_arn        = aws_kms_key.audit_export.arn
    # ssm-guard-scp.json and ssm-guard-boundary.json (guard.tf).
    engineer_principal_arn_patterns = var.engineer_principal_arn_patterns
    config_parameter_arn            = local.config_parameter_arn
    config_layers_path_arn          = "arn:${local.partition}:ssm:${local.region}:${local.account_id}:parameter${local.config_layers_path}"
    bastion_instance_profile_arn    = aws_iam_instance_profile.bastion.arn
    bastion_instance_types          = var.bastion_instance_types
    bastion_ami_owners              = var.bastion_ami_owners
    bastion_ami_parameter_arn       = local.bastion_ami_parameter_arn
    bastion_subnet_arns             = local.bastion_subnet_arns
    bastion_subnet_ids              = var.bastion_subnet_ids
    bastion_security_group_ids      = [for sg in aws_security_group.bastion : sg.id]
    lambda_subnet_ids               = var.lambda_subnet_ids
    lambda_subnet_arns              = local.lambda_subnet_arns
    lambda_security_group_id        = aws_security_group.lambda.id
    secret_arns = distinct(concat(
      [var.slack_secret_arn],
      [for t in var.targets : t.admin_secret_arn],
    ))
    secret_kms_key_arns = distinct(concat([aws_kms_key.this.arn], var.secrets_kms_key_arns))
    slack_secret_arn    = var.slack_secret_arn
    admin_secret_arns   = distinct([for t in var.targets : t.admin_secret_arn])
    # The store's requester index (src/store/schema.rs REQUESTER_INDEX), all `list` reads.
    requester_index_name = "by_requester"
    deployment_id        = var.deployment_id
    session_document_arn = local.session_document_arn
    # An IAM policy variable, rendered literally: the engineer's identity as AWS sees it.
    engineer_identity_variable = "$${aws:PrincipalTag/${var.engineer_identity_principal_tag}}"
  }

  role_policy_template_vars = merge(local.key_policy_template_vars, local.role_policy_extra_template_vars)
}
