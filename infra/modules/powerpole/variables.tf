# --- Naming and tags -----------------------------------------------------------------------------

variable "name_prefix" {
  description = "Prefix for every resource name (roles, functions, security groups, KMS alias)."
  type        = string
  default     = "powerpole"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,23}$", var.name_prefix))
    error_message = "name_prefix must be 2-24 characters: lower-case letters, digits and '-', starting with a letter."
  }
}

variable "tags" {
  description = "Tags added to every resource that takes tags."
  type        = map(string)
  default     = {}
}

# --- Network -------------------------------------------------------------------------------------

variable "vpc_id" {
  description = "The VPC that holds the databases, the bastions and the Lambdas."
  type        = string

  validation {
    condition     = can(regex("^vpc-[0-9a-f]{8,17}$", var.vpc_id))
    error_message = "vpc_id must look like vpc-0123456789abcdef0."
  }
}

variable "bastion_subnet_ids" {
  description = "Private subnets the bastions may be launched in. They need no NAT and no internet route: the bastions reach AWS only through the VPC endpoints. The orchestrator may launch into these subnets only."
  type        = list(string)

  validation {
    condition     = length(var.bastion_subnet_ids) > 0 && alltrue([for s in var.bastion_subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", s))])
    error_message = "bastion_subnet_ids must name at least one subnet, each like subnet-0123456789abcdef0."
  }
}

variable "lambda_subnet_ids" {
  description = "Private subnets for the Lambda functions. They need a route to the Slack Web API (a NAT gateway or an egress proxy): Slack has no VPC endpoint."
  type        = list(string)

  validation {
    condition     = length(var.lambda_subnet_ids) > 0 && alltrue([for s in var.lambda_subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", s))])
    error_message = "lambda_subnet_ids must name at least one subnet, each like subnet-0123456789abcdef0."
  }
}

variable "endpoint_subnet_ids" {
  description = "Subnets for the interface VPC endpoints (interface_endpoints), at most one per Availability Zone; cover every zone the bastions and Lambdas use. Needed only when interface_endpoints is not empty."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for s in var.endpoint_subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", s))])
    error_message = "endpoint_subnet_ids must each look like subnet-0123456789abcdef0."
  }
}

variable "route_table_ids" {
  description = "Route tables of the bastion and Lambda subnets, for the DynamoDB gateway endpoint. The endpoint's policy admits only the powerpole table, so give route tables that no other DynamoDB user shares, or set create_dynamodb_gateway_endpoint = false."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for r in var.route_table_ids : can(regex("^rtb-[0-9a-f]{8,17}$", r))])
    error_message = "route_table_ids must each look like rtb-0123456789abcdef0."
  }
}

variable "bastion_route_table_ids" {
  description = "Route tables of the bastion subnets, for the S3 gateway endpoint through which dnf installs the MySQL client from the Amazon Linux 2023 repositories. Its policy admits s3:GetObject on the region's AL2023 repository bucket only, so give route tables that no other S3 user shares, or set create_s3_gateway_endpoint = false and provide an equivalent route."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for r in var.bastion_route_table_ids : can(regex("^rtb-[0-9a-f]{8,17}$", r))])
    error_message = "bastion_route_table_ids must each look like rtb-0123456789abcdef0."
  }
}

variable "create_s3_gateway_endpoint" {
  description = "Create the S3 gateway endpoint (AL2023 repositories only) on bastion_route_table_ids. Set false when those route tables already have an S3 gateway endpoint; its policy must then admit s3:GetObject on arn:aws:s3:::al2023-repos-<region>-de612dc2/*."
  type        = bool
  default     = true
}

variable "create_dynamodb_gateway_endpoint" {
  description = "Create the DynamoDB gateway endpoint on route_table_ids. Set false when those route tables already have one."
  type        = bool
  default     = true
}

variable "interface_endpoints" {
  description = "Interface VPC endpoints to create, by short service name (ssm, ssmmessages, ec2messages, logs, kms, secretsmanager; also ec2, sqs, sts), each with private_dns (default false). Empty (the default): the module creates none and the VPC must already reach these services (endpoints of its own, or a NAT). private_dns = true makes every workload in the VPC resolve that service to this endpoint, which admits only powerpole's security groups and interface_endpoint_client_cidrs: see infra/README.md, 'Interface endpoints and other workloads'. With private_dns = false nothing changes for other workloads; the Lambdas are pointed at the endpoint (AWS_ENDPOINT_URL_<SERVICE>), the bastions' SSM agent is not (it uses the regional names: bastions in subnets without a NAT need ssm, ssmmessages, logs and kms with private DNS, here or in the VPC already)."
  type = map(object({
    private_dns = optional(bool, false)
  }))
  default = {}

  validation {
    condition     = alltrue([for s in keys(var.interface_endpoints) : contains(["ssm", "ssmmessages", "ec2messages", "logs", "kms", "secretsmanager", "ec2", "sqs", "sts"], s)])
    error_message = "interface_endpoints keys must be among ssm, ssmmessages, ec2messages, logs, kms, secretsmanager, ec2, sqs, sts (DynamoDB and S3 are gateway endpoints: create_dynamodb_gateway_endpoint, create_s3_gateway_endpoint)."
  }
}

variable "existing_endpoint_security_group_ids" {
  description = "Security groups of interface endpoints the VPC already has (with private DNS) for the services powerpole needs and interface_endpoints leaves out. The bastions and Lambdas get HTTPS egress to them, and the module adds ingress rules from powerpole's groups to them, as it does to the databases' groups."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for g in var.existing_endpoint_security_group_ids : can(regex("^sg-[0-9a-f]{8,17}$", g))])
    error_message = "existing_endpoint_security_group_ids must each look like sg-0123456789abcdef0."
  }
}

variable "interface_endpoint_client_cidrs" {
  description = "Further sources (CIDRs, e.g. the VPC's) admitted on 443 by the interface endpoints' security group, besides powerpole's own groups. Give the VPC's CIDR when an endpoint has private_dns = true and other workloads in the VPC use that service: they then resolve it to this endpoint and would otherwise be refused."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.interface_endpoint_client_cidrs : can(cidrhost(c, 0))])
    error_message = "interface_endpoint_client_cidrs must be CIDR blocks such as 10.0.0.0/16."
  }
}

variable "lambda_https_egress_cidrs" {
  description = "Destinations the Lambdas may reach on TCP 443 by CIDR: the Slack Web API (and the EC2 API unless it has an endpoint). Slack publishes no address ranges, so the default is any address through the subnet's NAT; narrow it to an egress proxy if you have one. Bastions never get this rule."
  type        = list(string)
  default     = ["0.0.0.0/0"]

  validation {
    condition     = length(var.lambda_https_egress_cidrs) > 0 && alltrue([for c in var.lambda_https_egress_cidrs : can(cidrhost(c, 0)) && !can(regex(":", c))])
    error_message = "lambda_https_egress_cidrs must be one or more IPv4 CIDR blocks."
  }
}

# --- Targets -------------------------------------------------------------------------------------

variable "targets" {
  description = <<-EOT
    The databases powerpole grants access to, keyed by target name (the same names as the
    [targets.NAME] tables of powerpole.toml). For each: the database (or proxy) security group,
    which gets ingress from this target's bastion group and the Lambdas; the MySQL port; the ARN
    of the Secrets Manager secret holding the admin credential; optionally the bastion subnet
    (default: the first of bastion_subnet_ids).
  EOT
  type = map(object({
    db_security_group_id = string
    db_port              = optional(number, 3306)
    admin_secret_arn     = string
    bastion_subnet_id    = optional(string)
  }))

  validation {
    condition     = length(var.targets) > 0 && alltrue([for name in keys(var.targets) : can(regex("^[a-z][a-z0-9_]{0,31}$", name))])
    error_message = "targets needs at least one entry; names are 1-32 characters of a-z, 0-9 and '_' (they name the [targets.NAME] tables and the module's configuration fragments)."
  }

  validation {
    condition     = alltrue([for t in values(var.targets) : can(regex("^sg-[0-9a-f]{8,17}$", t.db_security_group_id))])
    error_message = "Each target's db_security_group_id must look like sg-0123456789abcdef0."
  }

  validation {
    condition     = alltrue([for t in values(var.targets) : t.db_port >= 1 && t.db_port <= 65535 && floor(t.db_port) == t.db_port])
    error_message = "Each target's db_port must be an integer between 1 and 65535."
  }

  validation {
    condition     = alltrue([for t in values(var.targets) : can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$", t.admin_secret_arn))])
    error_message = "Each target's admin_secret_arn must be a Secrets Manager secret ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-xxxxxx)."
  }

  validation {
    condition     = alltrue([for t in values(var.targets) : t.bastion_subnet_id == null || can(regex("^subnet-[0-9a-f]{8,17}$", t.bastion_subnet_id))])
    error_message = "A target's bastion_subnet_id, when set, must look like subnet-0123456789abcdef0 (and be one of bastion_subnet_ids)."
  }
}

# --- Secrets -------------------------------------------------------------------------------------

variable "slack_secret_arn" {
  description = "ARN of the Secrets Manager secret (a JSON object) holding the Slack signing secret and bot token."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$", var.slack_secret_arn))
    error_message = "slack_secret_arn must be a Secrets Manager secret ARN."
  }
}

variable "slack_secret_keys" {
  description = "JSON keys inside the Slack secret."
  type = object({
    signing_secret = optional(string, "signing_secret")
    bot_token      = optional(string, "bot_token")
  })
  default = {}
}

variable "secrets_kms_key_arns" {
  description = "Customer managed KMS keys that encrypt the Slack or admin secrets, if any (secrets under the AWS managed aws/secretsmanager key need nothing). The orchestrator may decrypt with them only through Secrets Manager."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for k in var.secrets_kms_key_arns : can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]+$", k))])
    error_message = "secrets_kms_key_arns must be KMS key ARNs (arn:aws:kms:REGION:ACCOUNT:key/ID)."
  }
}

# --- powerpole.toml -------------------------------------------------------------------------------

variable "powerpole_toml" {
  description = <<-EOT
    The text of powerpole.toml for the Lambda functions (e.g. file("powerpole.toml")). The module
    stores it in a SecureString parameter (config_parameter_name) that the functions read at start
    (POWERPOLE_CONFIG=ssm:<name>), and writes everything it knows itself as TOML fragments under
    <name>.d (POWERPOLE_CONFIG_LAYERS), merged over the file: [store] table, [slack] mode and the Slack secret
    references, [bastion] instance_profile, instance_type and ami_parameter, and for each target
    admin_secret, port, security_group_id and subnet_id. So the file needs the rest: [slack]
    api_url and command if not the defaults, [access], [scheduler], and per target
    writer_endpoint, schemas, approvers and approvals_channel. It must not name the Slack
    secrets itself (signing_secret, bot_token): a reference there and the module's would be two
    sources. Secrets are never values in this file; powerpole refuses inline tokens.
  EOT
  type        = string

  validation {
    condition     = length(trimspace(var.powerpole_toml)) > 0 && length(var.powerpole_toml) <= 8192
    error_message = "powerpole_toml must be the non-empty text of powerpole.toml, at most 8 KB (a Parameter Store advanced parameter)."
  }

  validation {
    condition     = !can(regex("xox[abepr]-|xapp-", var.powerpole_toml))
    error_message = "powerpole_toml contains what looks like a Slack token: reference secrets (Secrets Manager), never write them into the configuration."
  }
}

variable "config_parameter_name" {
  description = "Name of the Parameter Store parameter that holds powerpole_toml (default: /<name_prefix>/config)."
  type        = string
  default     = null

  validation {
    condition     = var.config_parameter_name == null || can(regex("^/[A-Za-z0-9_./-]{1,1000}$", var.config_parameter_name))
    error_message = "config_parameter_name must be a parameter name starting with '/'."
  }
}

# --- Table, key, logs ----------------------------------------------------------------------------

variable "table_name" {
  description = "Name of the DynamoDB session and audit table ([store] table in powerpole.toml)."
  type        = string
  default     = "powerpole"

  validation {
    condition     = can(regex("^[a-zA-Z0-9_.-]{3,255}$", var.table_name))
    error_message = "table_name must be 3-255 characters of a-z, A-Z, 0-9, '_', '-' and '.'."
  }
}

variable "kms_key_deletion_window_days" {
  description = "Days a deleted KMS key can still be recovered before it and everything it encrypts is gone."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_key_deletion_window_days >= 7 && var.kms_key_deletion_window_days <= 30
    error_message = "kms_key_deletion_window_days must be between 7 and 30."
  }
}

variable "session_log_group_name" {
  description = "CloudWatch Logs group that receives every Session Manager session (what was typed and shown)."
  type        = string
  default     = "/powerpole/ssm-sessions"

  validation {
    condition     = can(regex("^[A-Za-z0-9_./#-]{1,512}$", var.session_log_group_name)) && !startswith(var.session_log_group_name, "aws/")
    error_message = "session_log_group_name must be a valid log group name (A-Z a-z 0-9 _ - / . #, not starting with aws/)."
  }
}

variable "additional_log_group_names" {
  description = "Other CloudWatch log groups in this account and region that may be encrypted with the powerpole key (e.g. the VPC's flow logs). The key policy lets CloudWatch Logs use the key for these names only."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for n in var.additional_log_group_names : can(regex("^[A-Za-z0-9_./#-]{1,512}$", n))])
    error_message = "additional_log_group_names must be valid log group names."
  }
}

variable "session_log_retention_days" {
  description = "Retention of the session logs, in days. Keep at least a year for audit."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.session_log_retention_days)
    error_message = "session_log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)."
  }
}

variable "lambda_log_retention_days" {
  description = "Retention of the Lambda functions' own logs, in days."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.lambda_log_retention_days)
    error_message = "lambda_log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ...)."
  }
}

# --- Session Manager preferences -----------------------------------------------------------------

variable "idle_session_timeout_minutes" {
  description = "Session Manager ends a session idle for this many minutes."
  type        = number
  default     = 20

  validation {
    condition     = var.idle_session_timeout_minutes >= 1 && var.idle_session_timeout_minutes <= 60 && floor(var.idle_session_timeout_minutes) == var.idle_session_timeout_minutes
    error_message = "idle_session_timeout_minutes must be a whole number from 1 to 60."
  }
}

variable "max_session_duration_minutes" {
  description = "Session Manager ends any one session after this many minutes (the bastion itself lives until the approved expiry)."
  type        = number
  default     = 480

  validation {
    condition     = var.max_session_duration_minutes >= 1 && var.max_session_duration_minutes <= 1440 && floor(var.max_session_duration_minutes) == var.max_session_duration_minutes
    error_message = "max_session_duration_minutes must be a whole number from 1 to 1440."
  }
}

variable "session_shell_profile" {
  description = "Commands Session Manager runs at the start of every Linux session."
  type        = string
  default     = "echo 'powerpole: this session is recorded for the security team.'; cd ~"

  validation {
    condition     = length(var.session_shell_profile) <= 1024
    error_message = "session_shell_profile must be at most 1024 characters."
  }
}

# --- Bastion launch shape (enforced by the orchestrator's IAM policy) -----------------------------

variable "bastion_instance_types" {
  description = "Instance types the orchestrator may launch; the first is the default passed to the service. Their architecture must match the AMI parameter."
  type        = list(string)
  default     = ["t3.micro"]

  validation {
    condition     = length(var.bastion_instance_types) > 0 && alltrue([for t in var.bastion_instance_types : can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", t))])
    error_message = "bastion_instance_types must list one or more instance types such as t3.micro."
  }
}

variable "bastion_ami_parameter" {
  description = "SSM parameter holding the bastion AMI id. The default is the public Amazon Linux 2023 parameter; an AMI of your own (with a mysql client baked in) goes in a parameter of your account."
  type        = string
  default     = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"

  validation {
    condition     = can(regex("^/[A-Za-z0-9_./-]+$", var.bastion_ami_parameter))
    error_message = "bastion_ami_parameter must be a parameter name starting with '/'."
  }
}

variable "bastion_ami_owners" {
  description = "Owners (account ids or 'amazon') whose AMIs the orchestrator may launch."
  type        = list(string)
  default     = ["amazon"]

  validation {
    condition     = length(var.bastion_ami_owners) > 0 && alltrue([for o in var.bastion_ami_owners : o == "amazon" || can(regex("^[0-9]{12}$", o))])
    error_message = "bastion_ami_owners must list 'amazon' and/or 12-digit account ids."
  }
}

# --- IAM -----------------------------------------------------------------------------------------

variable "security_team_principal_arns" {
  description = "IAM principals (roles, e.g. the security team's SSO permission-set role, or users) allowed to assume the read-only session-log role."
  type        = list(string)

  validation {
    condition     = length(var.security_team_principal_arns) > 0 && alltrue([for a in var.security_team_principal_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:(root|role/.+|user/.+)$", a))])
    error_message = "security_team_principal_arns must list one or more IAM role, user or account-root ARNs."
  }
}

variable "permissions_boundary_arn" {
  description = "Permissions boundary attached to every role the module creates, if your organisation requires one."
  type        = string
  default     = null

  validation {
    condition     = var.permissions_boundary_arn == null || can(regex("^arn:aws[a-z-]*:iam::([0-9]{12}|aws):policy/.+$", var.permissions_boundary_arn))
    error_message = "permissions_boundary_arn must be an IAM policy ARN."
  }
}

# --- Lambda --------------------------------------------------------------------------------------

variable "slack_handler_zip_path" {
  description = "Path of the slack-handler deployment zip (a `bootstrap` executable at its root), e.g. target/lambda/slack-handler/bootstrap.zip (see infra/README.md, Build the Lambda zips)."
  type        = string

  validation {
    condition     = endswith(var.slack_handler_zip_path, ".zip")
    error_message = "slack_handler_zip_path must name a .zip file."
  }
}

variable "slack_worker_zip_path" {
  description = "Path of the slack-worker deployment zip (a `bootstrap` executable at its root): the function that runs the Slack follow-ups from the queue."
  type        = string

  validation {
    condition     = endswith(var.slack_worker_zip_path, ".zip")
    error_message = "slack_worker_zip_path must name a .zip file."
  }
}

variable "sweeper_zip_path" {
  description = "Path of the sweeper deployment zip (a `bootstrap` executable at its root)."
  type        = string

  validation {
    condition     = endswith(var.sweeper_zip_path, ".zip")
    error_message = "sweeper_zip_path must name a .zip file."
  }
}

variable "lambda_architecture" {
  description = "Instruction set the zips were built for."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.lambda_architecture)
    error_message = "lambda_architecture must be x86_64 or arm64."
  }
}

variable "lambda_memory_mb" {
  description = "Memory of each function, in MB."
  type        = number
  default     = 256

  validation {
    condition     = var.lambda_memory_mb >= 128 && var.lambda_memory_mb <= 10240
    error_message = "lambda_memory_mb must be between 128 and 10240."
  }
}

variable "slack_handler_timeout_seconds" {
  description = "Timeout of the Slack handler. It only answers Slack (within Slack's 3 seconds) and queues the follow-up (or, for a button that opens a modal, opens it), so a few seconds are plenty."
  type        = number
  default     = 10

  validation {
    condition     = var.slack_handler_timeout_seconds >= 3 && var.slack_handler_timeout_seconds <= 900
    error_message = "slack_handler_timeout_seconds must be between 3 and 900."
  }
}

variable "slack_worker_timeout_seconds" {
  description = "Timeout of the Slack worker (one follow-up: the store, the approval card, DMs). The follow-up queue's visibility timeout is six times this, as AWS recommends for an SQS event source."
  type        = number
  default     = 30

  validation {
    condition     = var.slack_worker_timeout_seconds >= 3 && var.slack_worker_timeout_seconds <= 900
    error_message = "slack_worker_timeout_seconds must be between 3 and 900."
  }
}

variable "sweeper_timeout_seconds" {
  description = "Timeout of one sweeper tick. A tick waits for every step it starts, and provisioning waits for the bastion to come online in Session Manager ([bastion] ssm_online_timeout, default 5m): keep this above ssm_online_timeout plus a minute, or provisioning is cut off and resumed only when its lease runs out."
  type        = number
  default     = 600

  validation {
    condition     = var.sweeper_timeout_seconds >= 3 && var.sweeper_timeout_seconds <= 900
    error_message = "sweeper_timeout_seconds must be between 3 and 900."
  }
}

variable "slack_handler_reserved_concurrency" {
  description = "Concurrency reserved for (and capping) the Slack handler; -1 for none. Accounts with a low concurrency quota may need -1."
  type        = number
  default     = 10

  validation {
    condition     = var.slack_handler_reserved_concurrency >= -1
    error_message = "slack_handler_reserved_concurrency must be -1 (unreserved) or more."
  }
}

variable "slack_worker_reserved_concurrency" {
  description = "Concurrency reserved for (and capping) the Slack worker; the queue's event source mapping is capped to the same number, so it never invokes more than that (throttled deliveries would count against maxReceiveCount). -1 for none (the mapping is then uncapped)."
  type        = number
  default     = 5

  validation {
    condition     = var.slack_worker_reserved_concurrency == -1 || (var.slack_worker_reserved_concurrency >= 2 && var.slack_worker_reserved_concurrency <= 1000)
    error_message = "slack_worker_reserved_concurrency must be -1 (unreserved) or between 2 and 1000 (an SQS event source mapping's maximum concurrency is at least 2)."
  }
}

variable "slack_follow_up_max_receive_count" {
  description = "Deliveries of a Slack follow-up before it moves to the dead-letter queue. A follow-up is retried only when the worker failed before starting it (start-up, secrets, the store), so a few tries cover a passing outage."
  type        = number
  default     = 5

  validation {
    condition     = var.slack_follow_up_max_receive_count >= 1 && var.slack_follow_up_max_receive_count <= 1000
    error_message = "slack_follow_up_max_receive_count must be between 1 and 1000."
  }
}

variable "alarm_actions" {
  description = "ARNs (e.g. an SNS topic that pages) notified by every alarm (alarms.tf: sweeper errors or absence, stuck teardowns, failed provisionings; sqs.tf: the dead-letter queue), on alarm and on recovery. Empty: the alarms are only visible in CloudWatch."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.alarm_actions : can(regex("^arn:aws[a-z-]*:", a))])
    error_message = "alarm_actions must be ARNs (e.g. arn:aws:sns:REGION:ACCOUNT:TOPIC)."
  }
}

variable "sweeper_reserved_concurrency" {
  description = "Concurrency reserved for (and capping) the sweeper; -1 for none."
  type        = number
  default     = 2

  validation {
    condition     = var.sweeper_reserved_concurrency >= -1
    error_message = "sweeper_reserved_concurrency must be -1 (unreserved) or more."
  }
}

variable "sweeper_schedule_expression" {
  description = "EventBridge schedule of the sweeper."
  type        = string
  default     = "rate(1 minute)"

  validation {
    condition     = can(regex("^(rate\\(.+\\)|cron\\(.+\\))$", var.sweeper_schedule_expression))
    error_message = "sweeper_schedule_expression must be rate(...) or cron(...)."
  }
}

variable "log_level" {
  description = "RUST_LOG filter for the functions."
  type        = string
  default     = "info"

  validation {
    condition     = length(var.log_level) > 0
    error_message = "log_level must not be empty."
  }
}

variable "lambda_environment" {
  description = "Extra environment variables for every function, e.g. POWERPOLE_* overrides of powerpole.toml. Never put a secret here: reference Secrets Manager instead."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.lambda_environment) : can(regex("^[A-Za-z][A-Za-z0-9_]*$", k)) && !startswith(k, "AWS_")])
    error_message = "lambda_environment keys must be valid variable names and must not start with AWS_ (reserved by Lambda)."
  }
}
