# Network: VPC endpoints so that private subnets need no NAT for AWS APIs (and bastions none for
# their packages), and security groups chained by group id or AWS prefix list. No rule here names
# a CIDR except the Lambda's HTTPS egress to Slack (var.lambda_https_egress_cidrs), which has no
# VPC endpoint.

locals {
  # Every principal that may reach the interface endpoints, by security group.
  endpoint_clients = merge(
    { lambda = aws_security_group.lambda.id },
    { for name, sg in aws_security_group.bastion : "bastion-${name}" => sg.id },
  )

  # With private DNS off, the Lambdas name the endpoint themselves (the AWS SDK's
  # AWS_ENDPOINT_URL_<SERVICE>); only the services they call.
  lambda_endpoint_env_names = {
    ssm            = "AWS_ENDPOINT_URL_SSM"
    secretsmanager = "AWS_ENDPOINT_URL_SECRETS_MANAGER"
    kms            = "AWS_ENDPOINT_URL_KMS"
    ec2            = "AWS_ENDPOINT_URL_EC2"
    sqs            = "AWS_ENDPOINT_URL_SQS"
    sts            = "AWS_ENDPOINT_URL_STS"
  }
  lambda_endpoint_environment = {
    for name, endpoint in aws_vpc_endpoint.interface :
    local.lambda_endpoint_env_names[name] => "https://${endpoint.dns_entry[0].dns_name}"
    if !var.interface_endpoints[name].private_dns && contains(keys(local.lambda_endpoint_env_names), name)
  }
}

# --- Interface endpoints (PrivateLink) --------------------------------------------------------

resource "aws_security_group" "endpoints" {
  name        = "${var.name_prefix}-vpc-endpoints"
  description = "powerpole: HTTPS to the VPC interface endpoints, from bastions and Lambdas only"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name_prefix}-vpc-endpoints" })
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_https" {
  for_each = local.endpoint_clients

  security_group_id            = aws_security_group.endpoints.id
  description                  = "HTTPS from ${each.key}"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = each.value
  tags                         = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_https_cidr" {
  for_each = toset(var.interface_endpoint_client_cidrs)

  security_group_id = aws_security_group.endpoints.id
  description       = "HTTPS from ${each.value} (other workloads that resolve a private-DNS endpoint here)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
  tags              = local.tags
}

# Each optional (var.interface_endpoints), private DNS off unless asked for: with it on, every
# workload of the VPC resolves the service's regional name to this endpoint.
resource "aws_vpc_endpoint" "interface" {
  for_each = var.interface_endpoints

  vpc_id              = var.vpc_id
  service_name        = "com.amazonaws.${local.region}.${each.key}"
  vpc_endpoint_type   = "Interface"
  private_dns_enabled = each.value.private_dns
  subnet_ids          = var.endpoint_subnet_ids
  security_group_ids  = [aws_security_group.endpoints.id]
  tags                = merge(local.tags, { Name = "${var.name_prefix}-${each.key}" })

  lifecycle {
    precondition {
      condition     = length(var.endpoint_subnet_ids) > 0
      error_message = "interface_endpoints needs endpoint_subnet_ids (one subnet per Availability Zone the bastions and Lambdas use)."
    }
  }
}

# Endpoints the VPC already has (var.existing_endpoint_security_group_ids): powerpole's groups may
# reach them, and they admit powerpole's groups.
locals {
  existing_endpoint_paths = {
    for pair in setproduct(var.existing_endpoint_security_group_ids, keys(local.endpoint_clients)) :
    "${pair[0]}/${pair[1]}" => { endpoint_sg = pair[0], client = pair[1] }
  }
}

resource "aws_vpc_security_group_ingress_rule" "existing_endpoints_from_powerpole" {
  for_each = local.existing_endpoint_paths

  security_group_id            = each.value.endpoint_sg
  description                  = "HTTPS from powerpole (${each.value.client})"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = local.endpoint_clients[each.value.client]
  tags                         = local.tags
}

resource "aws_vpc_security_group_egress_rule" "powerpole_to_existing_endpoints" {
  for_each = local.existing_endpoint_paths

  security_group_id            = local.endpoint_clients[each.value.client]
  description                  = "HTTPS to the VPC's own interface endpoints (${each.value.endpoint_sg})"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = each.value.endpoint_sg
  tags                         = local.tags
}

# --- DynamoDB gateway endpoint ----------------------------------------------------------------

data "aws_iam_policy_document" "dynamodb_endpoint" {
  statement {
    sid    = "OnlyThePowerpoleTableFromThisAccount"
    effect = "Allow"
    actions = [
      # What the store adapter calls (its conditional writes are PutItem, alone or in
      # TransactWriteItems, which IAM authorises per contained action).
      "dynamodb:DescribeTable",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
    ]
    resources = [aws_dynamodb_table.sessions.arn, "${aws_dynamodb_table.sessions.arn}/index/*"]

    principals {
      type        = "AWS"
      identifiers = ["*"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:PrincipalAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_vpc_endpoint" "dynamodb" {
  count = var.create_dynamodb_gateway_endpoint ? 1 : 0

  vpc_id            = var.vpc_id
  service_name      = "com.amazonaws.${local.region}.dynamodb"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = var.route_table_ids
  policy            = data.aws_iam_policy_document.dynamodb_endpoint.json
  tags              = merge(local.tags, { Name = "${var.name_prefix}-dynamodb" })

  lifecycle {
    # Without route tables the endpoint exists but carries no traffic: the Lambdas in private
    # subnets then cannot reach the table (or reach it through a NAT, outside the endpoint policy).
    precondition {
      condition     = length(var.route_table_ids) > 0
      error_message = "create_dynamodb_gateway_endpoint needs route_table_ids (the route tables of the bastion and Lambda subnets); or set create_dynamodb_gateway_endpoint = false if the subnets reach DynamoDB another way."
    }
  }
}

data "aws_ec2_managed_prefix_list" "dynamodb" {
  name = "com.amazonaws.${local.region}.dynamodb"
}

# --- S3 gateway endpoint: the Amazon Linux 2023 package repositories, nothing else -----------------
#
# Bastions install the MySQL client with dnf at boot (src/bastion/launch.rs). AL2023's repositories
# are objects in one AWS-owned bucket per region, al2023-repos-<region>-de612dc2 (mirror list:
# https://al2023-repos-<region>-de612dc2.s3.dualstack.<region>.amazonaws.com/core/mirrors/...).
# A gateway endpoint on the bastion route tables reaches them without a NAT; its policy admits
# s3:GetObject on that bucket only, so the endpoint cannot carry data to any other bucket.

data "aws_iam_policy_document" "s3_endpoint" {
  statement {
    sid       = "OnlyAmazonLinux2023RepositoriesOfThisRegion"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = ["arn:${local.partition}:s3:::al2023-repos-${local.region}-de612dc2/*"]

    # dnf reads the repositories anonymously: there is no principal to narrow to.
    principals {
      type        = "*"
      identifiers = ["*"]
    }
  }
}

resource "aws_vpc_endpoint" "s3" {
  count = var.create_s3_gateway_endpoint ? 1 : 0

  vpc_id            = var.vpc_id
  service_name      = "com.amazonaws.${local.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = var.bastion_route_table_ids
  policy            = data.aws_iam_policy_document.s3_endpoint.json
  tags              = merge(local.tags, { Name = "${var.name_prefix}-s3-al2023-repos" })

  lifecycle {
    precondition {
      condition     = length(var.bastion_route_table_ids) > 0
      error_message = "create_s3_gateway_endpoint needs bastion_route_table_ids (the route tables of the bastion subnets): without it dnf cannot install the MySQL client."
    }
  }
}

data "aws_ec2_managed_prefix_list" "s3" {
  name = "com.amazonaws.${local.region}.s3"
}

# --- Bastions: one security group per target, no ingress at all -------------------------------

resource "aws_security_group" "bastion" {
  for_each = var.targets

  #checkov:skip=CKV2_AWS_5:Attached at run time: the orchestrator launches each bastion with this group (RunInstances is restricted to it in policies/orchestrator.json).
  name        = "${var.name_prefix}-bastion-${each.key}"
  description = "powerpole bastions for target ${each.key}: no ingress; egress to the database and the VPC endpoints only"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name_prefix}-bastion-${each.key}" })
}

resource "aws_vpc_security_group_egress_rule" "bastion_to_database" {
  for_each = var.targets

  security_group_id            = aws_security_group.bastion[each.key].id
  description                  = "MySQL to the ${each.key} database"
  ip_protocol                  = "tcp"
  from_port                    = each.value.db_port
  to_port                      = each.value.db_port
  referenced_security_group_id = each.value.db_security_group_id
  tags                         = local.tags
}

resource "aws_vpc_security_group_egress_rule" "bastion_to_endpoints" {
  for_each = var.targets

  security_group_id            = aws_security_group.bastion[each.key].id
  description                  = "HTTPS to the VPC interface endpoints (SSM, logs, KMS)"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.endpoints.id
  tags                         = local.tags
}

resource "aws_vpc_security_group_egress_rule" "bastion_to_s3" {
  for_each = var.targets

  security_group_id = aws_security_group.bastion[each.key].id
  description       = "HTTPS to S3 through the gateway endpoint (dnf: the AL2023 repositories only, by endpoint policy)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = data.aws_ec2_managed_prefix_list.s3.id
  tags              = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "database_from_bastion" {
  for_each = var.targets

  security_group_id            = each.value.db_security_group_id
  description                  = "MySQL from powerpole bastions (${each.key})"
  ip_protocol                  = "tcp"
  from_port                    = each.value.db_port
  to_port                      = each.value.db_port
  referenced_security_group_id = aws_security_group.bastion[each.key].id
  tags                         = local.tags
}

# --- Lambdas: the orchestrator creates and drops the per-person database accounts ---------------

resource "aws_security_group" "lambda" {
  name        = "${var.name_prefix}-lambda"
  description = "powerpole Lambdas: no ingress; egress to the databases, AWS APIs and Slack over HTTPS"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name_prefix}-lambda" })
}

resource "aws_vpc_security_group_egress_rule" "lambda_to_database" {
  for_each = var.targets

  security_group_id            = aws_security_group.lambda.id
  description                  = "MySQL (admin connection) to the ${each.key} database"
  ip_protocol                  = "tcp"
  from_port                    = each.value.db_port
  to_port                      = each.value.db_port
  referenced_security_group_id = each.value.db_security_group_id
  tags                         = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "database_from_lambda" {
  for_each = var.targets

  security_group_id            = each.value.db_security_group_id
  description                  = "MySQL from the powerpole orchestrator Lambdas (${each.key})"
  ip_protocol                  = "tcp"
  from_port                    = each.value.db_port
  to_port                      = each.value.db_port
  referenced_security_group_id = aws_security_group.lambda.id
  tags                         = local.tags
}

resource "aws_vpc_security_group_egress_rule" "lambda_to_endpoints" {
  security_group_id            = aws_security_group.lambda.id
  description                  = "HTTPS to the VPC interface endpoints"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.endpoints.id
  tags                         = local.tags
}

resource "aws_vpc_security_group_egress_rule" "lambda_to_dynamodb" {
  security_group_id = aws_security_group.lambda.id
  description       = "HTTPS to DynamoDB through the gateway endpoint"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = data.aws_ec2_managed_prefix_list.dynamodb.id
  tags              = local.tags
}

resource "aws_vpc_security_group_egress_rule" "lambda_to_slack" {
  for_each = toset(var.lambda_https_egress_cidrs)

  security_group_id = aws_security_group.lambda.id
  description       = "HTTPS to the Slack Web API (and EC2 API) through the NAT or egress proxy"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
  tags              = local.tags
}
