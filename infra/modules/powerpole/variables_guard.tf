variable "engineer_principal_arn_patterns" {
  description = "ARN patterns (aws:PrincipalArn, ArnLike) of the roles that carry the engineer policy, e.g. the IAM Identity Center permission set's roles. The SCP and the permissions boundary (guard.tf) let only these start sessions on powerpole's bastions."
  type        = list(string)
  default     = ["arn:aws:iam::*:role/aws-reserved/sso.amazonaws.com/*AWSReservedSSO_PowerpoleEngineer_*"]

  validation {
    condition     = length(var.engineer_principal_arn_patterns) > 0 && alltrue([for p in var.engineer_principal_arn_patterns : can(regex("^arn:aws[a-z-]*:(iam|sts)::[0-9*]+:.+$", p))])
    error_message = "engineer_principal_arn_patterns must list one or more IAM role ARN patterns, e.g. arn:aws:iam::*:role/aws-reserved/sso.amazonaws.com/*AWSReservedSSO_PowerpoleEngineer_*."
  }
}

variable "create_ssm_guard_boundary" {
  description = "Create the permissions boundary policies/ssm-guard-boundary.json (output ssm_guard_boundary_arn) to attach to roles of this account that hold broad SSM policies."
  type        = bool
  default     = false
}
