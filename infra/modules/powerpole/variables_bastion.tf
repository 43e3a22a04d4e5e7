# Variables of the bastion-access hardening (issue 10): deployment id, requester identity,
# the engineer policy, and the serve role. Kept apart from variables.tf on purpose.

variable "deployment_id" {
  description = "This deployment's id, required (no default: two installations that share one would reconcile away each other's bastions and accounts, and each one's engineers could enter the other's bastions). Written into the stored powerpole.toml as [deployment] id, carried by every bastion as the powerpole:deployment tag, and required by the IAM conditions of the orchestrator, serve and engineer policies. Give each installation in an account, region or database server its own; an installation that ran on the old default keeps \"default\" (see infra/README.md, Upgrading)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9-]{1,16}$", var.deployment_id))
    error_message = "deployment_id must be 1 to 16 characters from a-z, 0-9 and - (e.g. \"prod-eu\"): choose one per installation; an installation upgraded from a version whose default was \"default\" sets deployment_id = \"default\"."
  }
}

variable "engineer_identity_principal_tag" {
  description = "The principal tag that carries an engineer's identity as AWS sees it, compared (case-insensitively) with the bastion's powerpole:identity tag. With IAM Identity Center: an attribute for access control of this name (see infra/README.md, 'Who may enter a bastion'). Its value must be what [bastion] identity_source puts on the bastion (the Slack e-mail by default)."
  type        = string
  default     = "email"

  validation {
    condition     = can(regex("^[A-Za-z0-9+=._:/@-]{1,128}$", var.engineer_identity_principal_tag)) && !startswith(lower(var.engineer_identity_principal_tag), "aws:")
    error_message = "engineer_identity_principal_tag must be an IAM tag key (1 to 128 of A-Z a-z 0-9 + = . _ : / @ -, not starting with aws:)."
  }
}

variable "serve_trusted_services" {
  description = "Who may assume the serve role (for `powerpole serve` outside Lambda): ECS tasks and EC2 instances by default."
  type        = list(string)
  default     = ["ecs-tasks.amazonaws.com", "ec2.amazonaws.com"]

  validation {
    condition     = length(var.serve_trusted_services) > 0 && alltrue([for s in var.serve_trusted_services : contains(["ecs-tasks.amazonaws.com", "ec2.amazonaws.com"], s)])
    error_message = "serve_trusted_services may name ecs-tasks.amazonaws.com and ec2.amazonaws.com only."
  }
}
