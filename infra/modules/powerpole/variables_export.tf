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
