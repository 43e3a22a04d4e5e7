# The deployment id (powerpole's `[deployment] id`): what this installation's bastions are tagged
# with (powerpole:deployment) and its database accounts are marked with. Two installations sharing
# a region or a database server must have different ids; reconcile in one never touches the other's.

variable "deployment_id" {
  description = "This installation's deployment id ([deployment] id): 1 to 16 characters from a-z, 0-9 and -. Different for each installation sharing an AWS account, region or database server (e.g. \"staging\", \"prod\")."
  type        = string
  default     = "default"

  validation {
    condition     = can(regex("^[a-z0-9-]{1,16}$", var.deployment_id))
    error_message = "deployment_id must be 1 to 16 characters from a-z, 0-9 and - (it is part of a MySQL role name, at most 32 characters)."
  }
}
