# An example network: a VPC with
# - two private bastion subnets with no route out of the VPC at all (the bastions reach SSM, logs
#   and KMS through interface endpoints, DynamoDB through the gateway endpoint);
# - two private Lambda subnets whose default route goes to a NAT gateway (the Slack Web API has no
#   VPC endpoint);
# - one public subnet for the NAT gateway;
# - a placeholder security group standing in for the Aurora cluster's.
# Bring your own VPC instead by passing its ids to the module.

# Two named zones, pinned so that the layout never changes when AWS adds a zone.
data "aws_availability_zones" "pinned" {
  state = "available"

  filter {
    name   = "zone-name"
    values = ["${var.region}a", "${var.region}b"]
  }
}

locals {
  azs = data.aws_availability_zones.pinned.names
}

resource "aws_vpc" "this" {
  cidr_block           = "10.42.0.0/16"
  enable_dns_support   = true # required by private DNS on the interface endpoints
  enable_dns_hostnames = true
  tags                 = { Name = "powerpole-example" }
}

# Flow logs, encrypted with the powerpole key (see additional_log_group_names in main.tf).
resource "aws_cloudwatch_log_group" "flow_logs" {
  name              = local.flow_log_group_name
  retention_in_days = 365
  kms_key_id        = module.powerpole.kms_key_arn
}

resource "aws_flow_log" "this" {
  vpc_id               = aws_vpc.this.id
  traffic_type         = "ALL"
  log_destination_type = "cloud-watch-logs"
  log_destination      = aws_cloudwatch_log_group.flow_logs.arn
  iam_role_arn         = aws_iam_role.flow_logs.arn
}

data "aws_iam_policy_document" "flow_logs_trust" {
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
  statement {
    sid       = "WriteTheFlowLogGroupOnly"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = [aws_cloudwatch_log_group.flow_logs.arn, "${aws_cloudwatch_log_group.flow_logs.arn}:*"]
  }
}

resource "aws_iam_role" "flow_logs" {
  name               = "powerpole-example-flow-logs"
  assume_role_policy = data.aws_iam_policy_document.flow_logs_trust.json
}

resource "aws_iam_role_policy" "flow_logs" {
  name   = "write-flow-logs"
  role   = aws_iam_role.flow_logs.id
  policy = data.aws_iam_policy_document.flow_logs.json
}

# No rules: nothing may use the default security group.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id
}

resource "aws_subnet" "bastion" {
  count = 2

  vpc_id                  = aws_vpc.this.id
  availability_zone       = local.azs[count.index]
  cidr_block              = cidrsubnet(aws_vpc.this.cidr_block, 8, count.index)
  map_public_ip_on_launch = false
  tags                    = { Name = "powerpole-bastion-${local.azs[count.index]}" }
}

resource "aws_subnet" "lambda" {
  count = 2

  vpc_id                  = aws_vpc.this.id
  availability_zone       = local.azs[count.index]
  cidr_block              = cidrsubnet(aws_vpc.this.cidr_block, 8, 10 + count.index)
  map_public_ip_on_launch = false
  tags                    = { Name = "powerpole-lambda-${local.azs[count.index]}" }
}

resource "aws_subnet" "public" {
  vpc_id                  = aws_vpc.this.id
  availability_zone       = local.azs[0]
  cidr_block              = cidrsubnet(aws_vpc.this.cidr_block, 8, 100)
  map_public_ip_on_launch = false
  tags                    = { Name = "powerpole-public-nat" }
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id
  tags   = { Name = "powerpole-example" }
}

resource "aws_eip" "nat" {
  domain = "vpc"
  tags   = { Name = "powerpole-nat" }
}

resource "aws_nat_gateway" "this" {
  allocation_id = aws_eip.nat.id
  subnet_id     = aws_subnet.public.id
  tags          = { Name = "powerpole-example" }

  depends_on = [aws_internet_gateway.this]
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id
  tags   = { Name = "powerpole-public" }
}

resource "aws_route" "public_internet" {
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this.id
}

resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}

# Bastion subnets: local routes only (plus the DynamoDB gateway endpoint the module adds).
resource "aws_route_table" "bastion" {
  vpc_id = aws_vpc.this.id
  tags   = { Name = "powerpole-bastion" }
}

resource "aws_route_table_association" "bastion" {
  count = 2

  subnet_id      = aws_subnet.bastion[count.index].id
  route_table_id = aws_route_table.bastion.id
}

resource "aws_route_table" "lambda" {
  vpc_id = aws_vpc.this.id
  tags   = { Name = "powerpole-lambda" }
}

resource "aws_route" "lambda_nat" {
  route_table_id         = aws_route_table.lambda.id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.this.id
}

resource "aws_route_table_association" "lambda" {
  count = 2

  subnet_id      = aws_subnet.lambda[count.index].id
  route_table_id = aws_route_table.lambda.id
}

# Stands in for the Aurora cluster's security group; the module adds its ingress rules.
resource "aws_security_group" "database" {
  #checkov:skip=CKV2_AWS_5:A placeholder for the Aurora cluster's group, which the operator attaches to the cluster outside this example (checkov saw it as attached only through the per-target Lambda environment the module no longer has).
  name        = "powerpole-example-database"
  description = "Placeholder for the Aurora MySQL cluster's security group"
  vpc_id      = aws_vpc.this.id
  tags        = { Name = "powerpole-example-database" }
}
