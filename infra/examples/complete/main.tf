# Deploys powerpole for one target database, "billing": into an existing VPC when var.vpc_id is
# set (with its subnets, route tables and the database's security group), otherwise into the
# example VPC of vpc.tf. The Slack and admin secrets already exist: they are looked up by name and
# passed by ARN.

data "aws_caller_identity" "current" {}

locals {
  flow_log_group_name = "/powerpole-example/vpc-flow-logs"

  # An existing VPC (var.vpc_id and the ids beside it), or the one vpc.tf creates.
  create_vpc                 = var.vpc_id == null
  vpc_id                     = local.create_vpc ? aws_vpc.this[0].id : var.vpc_id
  bastion_subnet_ids         = local.create_vpc ? aws_subnet.bastion[*].id : var.bastion_subnet_ids
  lambda_subnet_ids          = local.create_vpc ? aws_subnet.lambda[*].id : var.lambda_subnet_ids
  endpoint_subnet_ids        = local.create_vpc ? aws_subnet.bastion[*].id : var.endpoint_subnet_ids
  route_table_ids            = local.create_vpc ? [aws_route_table.bastion[0].id, aws_route_table.lambda[0].id] : var.route_table_ids
  bastion_route_table_ids    = local.create_vpc ? [aws_route_table.bastion[0].id] : var.bastion_route_table_ids
  database_security_group_id = local.create_vpc ? aws_security_group.database[0].id : var.database_security_group_id

  # The example VPC holds nothing but powerpole, so its endpoints take private DNS (its bastion
  # subnets have no NAT). In an existing VPC: var.interface_endpoints (none by default; see
  # infra/README.md, "Interface endpoints and other workloads").
  interface_endpoints = local.create_vpc ? {
    for service in ["ssm", "ssmmessages", "logs", "kms", "secretsmanager"] : service => { private_dns = true }
  } : var.interface_endpoints
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

  deployment_id = var.deployment_id

  vpc_id                               = local.vpc_id
  bastion_subnet_ids                   = local.bastion_subnet_ids
  lambda_subnet_ids                    = local.lambda_subnet_ids
  endpoint_subnet_ids                  = local.endpoint_subnet_ids
  interface_endpoints                  = local.interface_endpoints
  existing_endpoint_security_group_ids = var.existing_endpoint_security_group_ids
  route_table_ids                      = local.route_table_ids
  create_dynamodb_gateway_endpoint     = var.create_gateway_endpoints
  create_s3_gateway_endpoint           = var.create_gateway_endpoints
  # dnf on the bastions: the S3 gateway endpoint (AL2023 repositories only) goes on these.
  bastion_route_table_ids = local.bastion_route_table_ids

  targets = {
    billing = {
      db_security_group_id = local.database_security_group_id
      db_port              = 3306
      admin_secret_arn     = data.aws_secretsmanager_secret.billing_admin.arn
    }
  }

  slack_secret_arn             = data.aws_secretsmanager_secret.slack.arn
  security_team_principal_arns = var.security_team_principal_arns

  audit_key_break_glass_principal_arn = var.audit_key_break_glass_principal_arn

  # The operator's part of powerpole.toml (see powerpole.toml.example next to this file); the
  # module writes everything it creates as TOML fragments merged over it (config_layers.tf).
  powerpole_toml = file(var.powerpole_toml_path)

  slack_handler_zip_path = "${var.lambda_zip_dir}/slack-handler/bootstrap.zip"
  slack_worker_zip_path  = "${var.lambda_zip_dir}/slack-worker/bootstrap.zip"
  sweeper_zip_path       = "${var.lambda_zip_dir}/sweeper/bootstrap.zip"
  export_zip_path        = "${var.lambda_zip_dir}/export/bootstrap.zip"

  additional_log_group_names = local.create_vpc ? [local.flow_log_group_name] : []

  session_log_retention_days   = 365
  idle_session_timeout_minutes = 20
  max_session_duration_minutes = 240
}
