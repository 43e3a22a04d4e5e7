# Deploys powerpole into the example VPC (vpc.tf) for one target database, "billing".
# The Slack and admin secrets already exist: they are looked up by name and passed by ARN.

data "aws_caller_identity" "current" {}

locals {
  flow_log_group_name = "/powerpole-example/vpc-flow-logs"
}

data "aws_secretsmanager_secret" "slack" {
  name = var.slack_secret_name
}

data "aws_secretsmanager_secret" "billing_admin" {
  name = var.billing_admin_secret_name
}

module "powerpole" {
  source = "../../modules/powerpole"

  name_prefix = "powerpole"
  tags        = { "cost-center" = "platform" }

  vpc_id              = aws_vpc.this.id
  bastion_subnet_ids  = aws_subnet.bastion[*].id
  lambda_subnet_ids   = aws_subnet.lambda[*].id
  endpoint_subnet_ids = aws_subnet.bastion[*].id
  route_table_ids     = [aws_route_table.bastion.id, aws_route_table.lambda.id]
  # dnf on the bastions: the S3 gateway endpoint (AL2023 repositories only) goes on these.
  bastion_route_table_ids = [aws_route_table.bastion.id]

  targets = {
    billing = {
      db_security_group_id = aws_security_group.database.id
      db_port              = 3306
      admin_secret_arn     = data.aws_secretsmanager_secret.billing_admin.arn
    }
  }

  slack_secret_arn             = data.aws_secretsmanager_secret.slack.arn
  security_team_principal_arns = var.security_team_principal_arns

  # The operator's part of powerpole.toml (see powerpole.toml.example next to this file); the
  # module writes everything it creates as TOML fragments merged over it (config_layers.tf).
  powerpole_toml = file(var.powerpole_toml_path)

  slack_handler_zip_path = "${var.lambda_zip_dir}/slack-handler/bootstrap.zip"
  slack_worker_zip_path  = "${var.lambda_zip_dir}/slack-worker/bootstrap.zip"
  sweeper_zip_path       = "${var.lambda_zip_dir}/sweeper/bootstrap.zip"
  export_zip_path        = "${var.lambda_zip_dir}/export/bootstrap.zip"

  additional_log_group_names = [local.flow_log_group_name]

  session_log_retention_days   = 365
  idle_session_timeout_minutes = 20
  max_session_duration_minutes = 240
}
