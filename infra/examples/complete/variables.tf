variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1."
  }
}

variable "slack_secret_name" {
  description = "Name of the existing Secrets Manager secret with the Slack signing secret and bot token (JSON keys signing_secret and bot_token)."
  type        = string
  default     = "powerpole/slack"

  validation {
    condition     = length(var.slack_secret_name) > 0
    error_message = "slack_secret_name must not be empty."
  }
}

variable "billing_admin_secret_name" {
  description = "Name of the existing Secrets Manager secret with the admin credential of the example target database."
  type        = string
  default     = "powerpole/targets/billing/admin"

  validation {
    condition     = length(var.billing_admin_secret_name) > 0
    error_message = "billing_admin_secret_name must not be empty."
  }
}

variable "security_team_principal_arns" {
  description = "Principals allowed to assume the read-only session-log role, e.g. the security team's SSO role."
  type        = list(string)

  validation {
    condition     = length(var.security_team_principal_arns) > 0
    error_message = "Name at least one security team principal."
  }
}

variable "powerpole_toml_path" {
  description = "The powerpole.toml the functions run with (start from powerpole.toml.example in this directory)."
  type        = string
  default     = "powerpole.toml"

  validation {
    condition     = endswith(var.powerpole_toml_path, ".toml")
    error_message = "powerpole_toml_path must name a .toml file."
  }
}

variable "lambda_zip_dir" {
  description = "Directory holding the four zips: slack-handler/bootstrap.zip, slack-worker/bootstrap.zip, sweeper/bootstrap.zip and export/bootstrap.zip, as `make dist` writes them to dist/lambda/<architecture> (see infra/README.md, Build the Lambda zips)."
  type        = string
  default     = "../../../dist/lambda/x86_64"

  validation {
    condition     = length(var.lambda_zip_dir) > 0
    error_message = "lambda_zip_dir must not be empty."
  }
}

variable "deployment_id" {
  description = "This installation's id (module input deployment_id; no default): one per installation in an account, region or database server."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9-]{1,16}$", var.deployment_id))
    error_message = "deployment_id must be 1 to 16 characters from a-z, 0-9 and -."
  }
}

variable "audit_key_break_glass_principal_arn" {
  description = "The one principal that may disable, delete or re-police the audit bucket's KMS key (module input of the same name)."
  type        = string
}

# --- An existing VPC (leave vpc_id null to create the example VPC of vpc.tf) ----------------------

variable "vpc_id" {
  description = "An existing VPC to deploy into; null creates the example VPC (vpc.tf). With a VPC id, give the subnet, route table and database security group ids below."
  type        = string
  default     = null
}

variable "bastion_subnet_ids" {
  description = "Existing VPC: private subnets for the bastions."
  type        = list(string)
  default     = []

  validation {
    condition     = var.vpc_id == null || length(var.bastion_subnet_ids) > 0
    error_message = "With vpc_id, give bastion_subnet_ids."
  }
}

variable "lambda_subnet_ids" {
  description = "Existing VPC: private subnets for the Lambdas (with a NAT or an egress proxy to Slack)."
  type        = list(string)
  default     = []

  validation {
    condition     = var.vpc_id == null || length(var.lambda_subnet_ids) > 0
    error_message = "With vpc_id, give lambda_subnet_ids."
  }
}

variable "endpoint_subnet_ids" {
  description = "Existing VPC: subnets for the interface endpoints of interface_endpoints (one per zone)."
  type        = list(string)
  default     = []
}

variable "route_table_ids" {
  description = "Existing VPC: route tables of the bastion and Lambda subnets (DynamoDB gateway endpoint)."
  type        = list(string)
  default     = []
}

variable "bastion_route_table_ids" {
  description = "Existing VPC: route tables of the bastion subnets (S3 gateway endpoint for dnf)."
  type        = list(string)
  default     = []
}

variable "create_gateway_endpoints" {
  description = "Create the DynamoDB and S3 gateway endpoints (false when the route tables already have them)."
  type        = bool
  default     = true
}

variable "database_security_group_id" {
  description = "Existing VPC: the billing database's security group (the module adds ingress from the bastions and Lambdas)."
  type        = string
  default     = null

  validation {
    condition     = var.vpc_id == null || var.database_security_group_id != null
    error_message = "With vpc_id, give database_security_group_id."
  }
}

variable "interface_endpoints" {
  description = "Existing VPC: interface endpoints to create, e.g. { ssm = { private_dns = true } } (module input of the same name; none by default)."
  type = map(object({
    private_dns = optional(bool, false)
  }))
  default = {}
}

variable "existing_endpoint_security_group_ids" {
  description = "Existing VPC: security groups of the VPC's own interface endpoints that powerpole uses."
  type        = list(string)
  default     = []
}
