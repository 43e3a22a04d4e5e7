# An example network: a VPC with
# - two private bastion subnets with no route out of the VPC at all (the bastions reach SSM, logs
#   and KMS through interface endpoints, DynamoDB through the gateway endpoint);
# - two private Lambda subnets whose default route goes to a NAT gateway (the Slack Web API has no
#   VPC endpoint);
# - one public subnet for the NAT gateway;
# - a placeholder security group standing in for the Aurora cluster's.
# Created only when var.vpc_id is null: give vpc_id and the subnet, route table and database
# security group ids of an existing VPC (variables.tf) and none of this is created.

# Two named zones, pinned so that the layout never changes when AWS adds a zone.
data "aws_availability_zones" "pinned" {
  count = local.create_vpc ? 1 : 0

  state = "available"

  filter {
    name   = "zone-name"
    values = ["${var.region}a", "${var.region}b"]
  }
}

locals {
  azs = local.create_vpc ? data.aws_availability_zones.pinned[0].names : []
}

resource "aws_vpc" "this" {
  count = local.create_vpc ? 1 : 0

  cidr_block           = "10.42.0.0/16"
  enable_dns_support   = true # required by private DNS on the interface endpoints
  enable_dns_hostnames = true
  tags                 = { Name = "powerpole-example" }
}

# Flow logs, encrypted with the powerpole key (see additional_log_group_names in main.tf).
resource "aws_cloudwatch_log_group" "flow_logs" {
  count = local.create_vpc ? 1 : 0

  name              = local.flow_log_group_name
  retention_in_days = 365
  kms_key_id        = module.powerpole.kms_key_arn
}

resource "aws_flow_log" "this" {
  count = local.create_vpc ? 1 : 0

  vpc_id               = aws_vpc.this[0].id
  traffic_type         = "ALL"
  log_destination_type = "cloud-watch-logs"
  log_destination      = aws_cloudwatch_log_group.flow_logs[0].arn
  iam_role_arn         = aws_iam_role.flow_logs[0].arn
}

data "aws_iam_policy_document" "flow_logs_trust" {
  count = local.create_vpc ? 1 : 0

  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

data "aws_iam_policy_document" "flow_logs" {
  count = local.create_vpc ? 1 : 0

  statement {
    sid       = "WriteTheFlowLogGroupOnly"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = [aws_cloudwatch_log_group.flow_logs[0].arn, "${aws_cloudwatch_log_group.flow_logs[0].arn}:*"]
  }
}

resource "aws_iam_role" "flow_logs" {
  count = local.create_vpc ? 1 : 0

  name               = "powerpole-example-flow-logs"
  assume_role_policy = data.aws_iam_policy_document.flow_logs_trust[0].json
}

resource "aws_iam_role_policy" "flow_logs" {
  count = local.create_vpc ? 1 : 0

  name   = "write-flow-logs"
  role   = aws_iam_role.flow_logs[0].id
  policy = data.aws_iam_policy_document.flow_logs[0].json
}

# No rules: nothing may use the default security group.
resource "aws_default_security_group" "this" {
  count = local.create_vpc ? 1 : 0

  vpc_id = aws_vpc.this[0].id
}

resource "aws_subnet" "bastion" {
  count = local.create_vpc ? 2 : 0

  vpc_id                  = aws_vpc.this[0].id
  availability_zone       = local.azs[count.index]
  cidr_block              = cidrsubnet(aws_vpc.this[0].cidr_block, 8, count.index)
  map_public_ip_on_launch = false
  tags                    = { Name = "powerpole-bastion-${local.azs[count.index]}" }
}

resource "aws_subnet" "lambda" {
  count = local.create_vpc ? 2 : 0

  vpc_id                  = aws_vpc.this[0].id
  availability_zone       = local.azs[count.index]
  cidr_block              = cidrsubnet(aws_vpc.this[0].cidr_block, 8, 10 + count.index)
  map_public_ip_on_launch = false
  tags                    = { Name = "powerpole-lambda-${local.azs[count.index]}" }
}

resource "aws_subnet" "public" {
  count = local.create_vpc ? 1 : 0

  vpc_id                  = aws_vpc.this[0].id
  availability_zone       = local.azs[0]
  cidr_block              = cidrsubnet(aws_vpc.this[0].cidr_block, 8, 100)
  map_public_ip_on_launch = false
  tags                    = { Name = "powerpole-public-nat" }
}

resource "aws_internet_gateway" "this" {
  count = local.create_vpc ? 1 : 0

  vpc_id = aws_vpc.this[0].id
  tags   = { Name = "powerpole-example" }
}

resource "aws_eip" "nat" {
  count = local.create_vpc ? 1 : 0

  domain = "vpc"
  tags   = { Name = "powerpole-nat" }
}

resource "aws_nat_gateway" "this" {
  count = local.create_vpc ? 1 : 0

  allocation_id = aws_eip.nat[0].id
  subnet_id     = aws_subnet.public[0].id
  tags          = { Name = "powerpole-example" }

  depends_on = [aws_internet_gateway.this]
}

resource "aws_route_table" "public" {
  count = local.create_vpc ? 1 : 0

  vpc_id = aws_vpc.this[0].id
  tags   = { Name = "powerpole-public" }
}

resource "aws_route" "public_internet" {
  count = local.create_vpc ? 1 : 0

  route_table_id         = aws_route_table.public[0].id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this[0].id
}

resource "aws_route_table_association" "public" {
  count = local.create_vpc ? 1 : 0

  subnet_id      = aws_subnet.public[0].id
  route_table_id = aws_route_table.public[0].id
}

# Bastion subnets: local routes only (plus the DynamoDB gateway endpoint the module adds).
resource "aws_route_table" "bastion" {
  count = local.create_vpc ? 1 : 0

  vpc_id = aws_vpc.this[0].id
  tags   = { Name = "powerpole-bastion" }
}

resource "aws_route_table_association" "bastion" {
  count = local.create_vpc ? 2 : 0

  subnet_id      = aws_subnet.bastion[count.index].id
  route_table_id = aws_route_table.bastion[0].id
}

resource "aws_route_table" "lambda" {
  count = local.create_vpc ? 1 : 0

  vpc_id = aws_vpc.this[0].id
  tags   = { Name = "powerpole-lambda" }
}

resource "aws_route" "lambda_nat" {
  count = local.create_vpc ? 1 : 0

  route_table_id         = aws_route_table.lambda[0].id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.this[0].id
}

resource "aws_route_table_association" "lambda" {
  count = local.create_vpc ? 2 : 0

  subnet_id      = aws_subnet.lambda[count.index].id
  route_table_id = aws_route_table.lambda[0].id
}

# Stands in for the Aurora cluster's security group; the module adds its ingress rules.
resource "aws_security_group" "database" {
  count = local.create_vpc ? 1 : 0

  #checkov:skip=CKV2_AWS_5:A placeholder for the Aurora cluster's group, which the operator attaches to the cluster outside this example (checkov saw it as attached only through the per-target Lambda environment the module no longer has).
  name        = "powerpole-example-database"
  description = "Placeholder for the Aurora MySQL cluster's security group"
  vpc_id      = aws_vpc.this[0].id
  tags        = { Name = "powerpole-example-database" }
}
