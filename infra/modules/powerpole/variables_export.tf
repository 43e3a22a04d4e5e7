variable "audit_export_retention_days" {
  description = "Days each exported audit event is locked in the audit bucket (S3 Object Lock, compliance mode: nobody, the account root included, can delete or overwrite it before then)."
  type        = number
  default     = 400

  validation {
    condition     = var.audit_export_retention_days >= 1 && var.audit_export_retention_days <= 36500
    error_message = "audit_export_retention_days must be between 1 and 36500."
  }
}

variable "audit_export_bucket_name" {
  description = "Name of the audit export bucket; default \"<name_prefix>-audit-<account id>\"."
  type        = string
  default     = null
}

variable "export_zip_path" {
  description = "Zip of the export function (bootstrap built from lambdas/export)."
  type        = string
}

variable "export_reserved_concurrency" {
  description = "Reserved concurrency of the export function (one per stream shard is enough)."
  type        = number
  default     = 2
}

variable "audit_key_break_glass_principal_arn" {
  description = "The one IAM principal (a role or user ARN, kept for emergencies) that may disable the audit bucket's KMS key, schedule its deletion, turn off its rotation or change its key policy; everyone else, administrators included, is denied by the key policy. Terraform changes to that key policy must be applied as this principal."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/.+$", var.audit_key_break_glass_principal_arn))
    error_message = "audit_key_break_glass_principal_arn must be an IAM role or user ARN, e.g. arn:aws:iam::123456789012:role/break-glass."
  }
}

variable "audit_export_redrive_hours" {
  description = "How far back the hourly re-export looks for audit items the bucket lacks, in hours. Keep it above the time it takes to notice and fix a failing export (the export-failures alarm)."
  type        = number
  default     = 72

  validation {
    condition     = var.audit_export_redrive_hours >= 2 && var.audit_export_redrive_hours <= 8760 && floor(var.audit_export_redrive_hours) == var.audit_export_redrive_hours
    error_message = "audit_export_redrive_hours must be a whole number of hours from 2 to 8760."
  }
}
