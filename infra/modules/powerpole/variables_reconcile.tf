variable "reconcile_schedule_expression" {
  description = "EventBridge schedule of reconcile (the sweeper function invoked with {\"action\": \"reconcile\"}): removes this deployment's bastions and accounts that no live session owns, and posts what it removed in the approvals channel."
  type        = string
  default     = "rate(10 minutes)"

  validation {
    condition     = can(regex("^(rate\\(.+\\)|cron\\(.+\\))$", var.reconcile_schedule_expression))
    error_message = "reconcile_schedule_expression must be rate(...) or cron(...)."
  }
}
